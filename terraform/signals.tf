# Cloud Run's 429s: the requests it refused because a service was at its max instances (they
# pend up to Google's window, then fail). Google describes run.googleapis.com/request_count as
# excluding them; Cloud Run's request log has them. This logs-based counter metric counts them
# per revision, so the governor reads every service's refusals with one ListTimeSeries per
# project (logging.googleapis.com/user/gpu_governor_refused_requests). Its name is fixed: the
# governor reads it by that name, and one definition per project serves every deployment.
#
# Sources:
# - 429 at max instances: https://cloud.google.com/run/docs/about-instance-autoscaling;
#   request_count "Excludes requests that are not reaching your container instances (e.g. ...
#   when maximum number of instances is reached)":
#   https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run.
# - The filter is in the Logging query language
#   (https://cloud.google.com/logging/docs/view/logging-query-language). A container that answers
#   429 itself matches it too: the governor counts those as refusals (docs/observing.md).
# - DELTA, INT64, unit "1" and no labels is the counter a LogMetric gets by default, and its
#   metric_kind and value_type "cannot be updated once initially configured"
#   (https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics). No label
#   extractors: each series carries its log entry's monitored resource, cloud_run_revision, whose
#   service_name and location labels the governor groups by.
# - The metric counts only entries received after it is created (no backfill), may reach
#   Monitoring up to 10 minutes late, and counts excluded logs too:
#   https://cloud.google.com/logging/docs/logs-based-metrics/troubleshooting and
#   https://cloud.google.com/logging/docs/logs-based-metrics.
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
