# A dispatch that has stopped: nothing is governed any more, and no unit fails to say so. The
# organisation's projects are found at run time, so there is no per-project "has not run" policy
# as in the single-project module (terraform/monitoring.tf); what the module watches is the
# dispatch itself, a metric-absence condition (https://cloud.google.com/monitoring/alerts/metric-absence)
# on its answers that succeeded: run.googleapis.com/request_count of the dispatch's Cloud Run
# service, response_code_class 2xx (https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run).
# A failed dispatch answers 500, so it fires when the job is paused, the dispatch fails at every
# call, or it is not called at all. Absence is judged per time series and each revision has its
# own: a redeploy would look like a stop, so the revisions' series are combined into one first.
# Monitoring meets an absence condition only once the metric has had a point: it arms itself
# with the first dispatch that succeeds. A policy reads every project of its metrics scope
# (https://cloud.google.com/monitoring/settings): the filter names the dispatch's own project.
resource "google_monitoring_alert_policy" "dispatch_not_running" {
  count = var.dispatch_absent_minutes == null ? 0 : 1

  project      = var.project_id
  display_name = "${var.name}: no successful dispatch for ${var.dispatch_absent_minutes} minutes"
  combiner     = "OR"

  conditions {
    display_name = "no 2xx answer of ${google_cloudfunctions2_function.dispatch.name}"

    condition_absent {
      filter   = "resource.type = \"cloud_run_revision\" AND resource.labels.project_id = \"${var.project_id}\" AND resource.labels.service_name = \"${google_cloudfunctions2_function.dispatch.name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"2xx\""
      duration = "${var.dispatch_absent_minutes * 60}s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  # Without channels the policy only opens incidents in the console.
  notification_channels = var.notification_channels

  # Two healthy dispatches' 2xx are up to the schedule's gap plus the dispatch's timeout apart: an
  # absence no longer would fire between them.
  lifecycle {
    precondition {
      condition     = local.schedule_gap_minutes == null || var.dispatch_absent_minutes * 60 > local.schedule_gap_minutes * 60 + local.dispatch_timeout_seconds
      error_message = "dispatch_absent_minutes is no longer than a healthy pause between two dispatches (the schedule's gap plus the dispatch's 120 s timeout): the policy would fire between dispatches. Raise it above that, or set it to null for no policy."
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The dispatch of the Cloud Run GPU governor `${var.name}` has answered no request successfully for ${var.dispatch_absent_minutes} minutes: no work message was sent, so no project of the organisation was governed. While it does not run, every service keeps the max instances it has. Check the scheduler job `${var.name}-dispatch` (paused?) and the dispatch function's logs."
  }
}
