/**
 * The governor's own dashboard and the alert policy for a governor that has stopped running, in
 * each governed project: every run writes its figures there as custom metrics
 * custom.googleapis.com/gpu_governor/* on the `global` resource (src/core/governor-metrics.ts),
 * which needs monitoring.timeSeries.create (iam.tf).
 */

locals {
  metric_prefix = "custom.googleapis.com/gpu_governor"
  # Written by every run that gets past its writes, one series per unit (label `unit`: the
  # project, or each region of a project governed by region): no point in any means no run.
  run_metric = "${local.metric_prefix}/unit/duration"
  dashboard  = jsondecode(file("${path.module}/dashboards/governor.json"))

  # The "Latest run" scorecard turns yellow "near the run deadline": unit/duration is the seconds
  # from a run's start to its metrics, and the run stops starting writes at its deadline
  # (function.run_deadline, GOVERNOR_RUN_DEADLINE). The file says 200, five sixths of the default
  # 240 s; the dashboard created gets five sixths of the deadline the function is given.
  run_deadline_seconds = tonumber(regex("^([0-9]+)(s|m)$", var.function.run_deadline)[0]) * (regex("^([0-9]+)(s|m)$", var.function.run_deadline)[1] == "m" ? 60 : 1)
  latest_run_warning   = floor(local.run_deadline_seconds * 5 / 6)

  # The longest gap, in minutes, between two runs of the schedule, for the schedules whose gap is
  # plain: every minute (1), every N minutes (N; "*/N" runs at the minutes divisible by N, so
  # no gap is longer), or once an hour (60), every other field "*". null for the others (hours,
  # days, lists, ranges), which the not-running policy's precondition does not check.
  schedule_gap_minutes = (
    can(regex("^\\s*\\*(\\s+\\*){4}\\s*$", var.schedule)) ? 1 :
    can(regex("^\\s*\\*/[0-9]+(\\s+\\*){4}\\s*$", var.schedule)) ? (tonumber(regex("^\\s*\\*/([0-9]+)", var.schedule)[0]) >= 60 ? 60 : tonumber(regex("^\\s*\\*/([0-9]+)", var.schedule)[0])) :
    can(regex("^\\s*[0-9]+(\\s+\\*){4}\\s*$", var.schedule)) ? 60 : null
  )

  # The tiles as the file has them, the scorecard with that threshold (a tile's place is its
  # xPos and yPos, not its index). Two lists, not a conditional between a tile and its changed
  # copy: Terraform wants both results of a conditional of one type.
  dashboard_tiles = concat(
    [for t in local.dashboard.mosaicLayout.tiles : t if try(t.widget.scorecard, null) == null],
    [for t in local.dashboard.mosaicLayout.tiles : merge(t, {
      widget = merge(t.widget, {
        scorecard = merge(t.widget.scorecard, {
          thresholds = [for th in t.widget.scorecard.thresholds : merge(th, { value = local.latest_run_warning })]
        })
      })
    }) if try(t.widget.scorecard, null) != null],
  )
}

# A dashboard and an alert policy read every project of their project's metrics scope ("When you
# create an alerting policy in the scoping project for that metrics scope, the policy monitors the
# metrics in the three projects": https://cloud.google.com/monitoring/settings), and every governed
# project holds the same metric types on `global`, told apart by its only label, project_id. So
# each project's dashboard opens on its own project (the JSON file's pinned project_id filter,
# given that project as its default value: DashboardFilter.string_value,
# https://cloud.google.com/monitoring/dashboards/filter-permanent), and its policy watches its own
# project's runs: else a project whose scope holds another governed project would chart the two
# as one and page, under its own name, when the other stops.

# https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/monitoring_dashboard
# The dashboard JSON is the Dashboard resource of the Monitoring API (mosaicLayout, 12 columns):
# https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards
resource "google_monitoring_dashboard" "governor" {
  for_each = var.monitoring.dashboard ? local.governed_projects : toset([])

  project = each.key
  dashboard_json = jsonencode(merge(local.dashboard, {
    displayName      = "Cloud Run GPU governor (${var.name})"
    mosaicLayout     = merge(local.dashboard.mosaicLayout, { tiles = local.dashboard_tiles })
    # Not a conditional between the two filter objects: Terraform wants both results of one type.
    dashboardFilters = concat(
      [for f in local.dashboard.dashboardFilters : f if f.labelKey != "project_id"],
      [{ filterType = "RESOURCE_LABEL", labelKey = "project_id", stringValue = each.key }],
    )
  }))

  depends_on = [google_project_service.apis]
}

# The run metric's descriptor, as the governor's first write would create it (GAUGE, DOUBLE, one
# STRING label `unit`: src/core/governor-metrics.ts). Monitoring refuses an alert policy on a
# user-defined metric that has no descriptor yet ("Error 404: Cannot find metric(s) that match
# type", as for a metric written only by a function:
# https://github.com/world-federation-of-advertisers/cross-media-measurement/issues/4350), and the
# governor writes its first point only at its first run, after the apply: so the module creates
# the descriptor, and the policy below names the metric through it, which orders the two. The
# provider's own example does the same ("Monitoring Metric Descriptor Alert",
# https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/monitoring_metric_descriptor).
# Creating a descriptor that exists already (one a run created) updates it, "except that metric
# labels are never removed" (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.metricDescriptors/create).
# In every governed project, with or without the policy: deleting a descriptor "makes the metric
# type's existing data unusable" (the resource's page above), so turning the policy off does not
# delete it; it goes with a project that is no longer governed, and on destroy.
resource "google_monitoring_metric_descriptor" "run" {
  for_each = local.governed_projects

  project      = each.key
  type         = local.run_metric
  metric_kind  = "GAUGE"
  value_type   = "DOUBLE"
  display_name = "Cloud Run GPU governor run duration"
  description  = "Seconds from the start of a Cloud Run GPU governor run to the writing of its metrics, one series per unit (written by every run)."

  labels {
    key         = "unit"
    value_type  = "STRING"
    description = "The unit that ran: project for a project governed whole, else the region of a regional unit."
  }

  depends_on = [google_project_service.apis]
}

# A metric-absence condition: it is met when the run metric has had no point for the duration,
# after at most 23.5 hours, and only once the metric has had a point since the policy was created
# or changed: https://cloud.google.com/monitoring/alerts/metric-absence
# Absence is judged per time series ("in violation when a time series for the specified metric of a
# monitored resource does not include any data in the specified duration", and any series triggers:
# AlertPolicy.Condition.MetricAbsence, google/monitoring/v3/alert.proto), and the run metric has
# one series per unit. A project split into regional units leaves its `unit = project` series
# without points, and one governed whole again leaves its regional series: so the series are
# combined into one per project first (`aggregations`, "how to combine the retrieved time series
# together", the same proto), and the condition means that no unit of the project has run. A
# regional unit that stops while another of its project runs shows in `governor status --org`
# (stuck units) and in the dead-letter alert policy of the organisation module, not here.
# https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/monitoring_alert_policy
resource "google_monitoring_alert_policy" "not_running" {
  for_each = var.monitoring.not_running_minutes == null ? toset([]) : local.governed_projects

  project      = each.key
  display_name = "Cloud Run GPU governor ${var.name} has not run for ${var.monitoring.not_running_minutes} minutes"
  combiner     = "OR"

  conditions {
    display_name = "No run of ${var.name} for ${var.monitoring.not_running_minutes} minutes"
    condition_absent {
      filter   = "metric.type=\"${google_monitoring_metric_descriptor.run[each.key].type}\" AND resource.type=\"global\" AND resource.labels.project_id=\"${each.key}\""
      duration = "${var.monitoring.not_running_minutes * 60}s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.project_id"]
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.monitoring.notification_channels
  user_labels           = local.labels

  documentation {
    mime_type = "text/markdown"
    content   = "The Cloud Run GPU governor `${var.name}` has written no run metric (`${local.run_metric}`, any unit) in project `${each.key}` for ${var.monitoring.not_running_minutes} minutes: it is not running, or its runs fail before the end. While it does not run, every service keeps the max instances it has (nothing is raised for a busy service). Check the scheduler job (paused?), the function's logs, and the `governor.degraded` alerts on the alert topic."
  }

  # A metric-absence condition is met when its series has had no point for the duration
  # (https://cloud.google.com/monitoring/alerts/metric-absence). Two healthy runs' points are up
  # to the schedule's gap apart, and the run deadline more (a quick run, then one that writes its
  # metrics at its deadline): an absence no longer would fire between healthy runs.
  lifecycle {
    precondition {
      condition     = local.schedule_gap_minutes == null || var.monitoring.not_running_minutes * 60 > local.schedule_gap_minutes * 60 + local.run_deadline_seconds
      error_message = "monitoring.not_running_minutes is no longer than a healthy pause between two runs (the schedule's gap plus function.run_deadline): the has-not-run policy would fire between runs. Raise it above that, or set it to null for no policy."
    }
  }

  depends_on = [google_project_service.apis]
}
