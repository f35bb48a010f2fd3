# Cloud Run's 429s: the requests it refused because a service was at its max instances (they
# pend up to Google's window, then fail). Google describes run.googleapis.com/request_count as
# excluding them; Cloud Run's request log has them. This logs-based counter metric counts them
# per revision, so the governor reads every service's refusals with one ListTimeSeries per
# project (logging.googleapis.com/user/gpu_governor_refused_requests). Its name is fixed: the
# governor reads it by that name, and one definition per project serves every deployment.
resource "google_logging_metric" "refused_requests" {
  for_each = local.governed_projects

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
