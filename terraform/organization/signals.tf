# Cloud Run's 429s, as the single-project module counts them (terraform/signals.tf, which says
# why): the logs-based counter metric gpu_governor_refused_requests that every unit reads in its
# project. The projects discovery finds are known at run time only, so the module defines it in
# the projects listed in refusals_metric_projects; docs/organization.md gives the command for the
# others. Where it is missing, the 429s of that project stay unknown and each of its runs raises
# governor.degraded (refused requests unreadable).
resource "google_logging_metric" "refused_requests" {
  for_each = toset(var.refusals_metric_projects)

  project     = each.key
  name        = "gpu_governor_refused_requests"
  description = "Requests Cloud Run answered 429 (read by the Cloud Run GPU governor)."
  filter      = "resource.type=\"cloud_run_revision\" AND log_id(\"run.googleapis.com/requests\") AND httpRequest.status=429"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}
