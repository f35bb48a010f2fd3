/**
 * Cloud Scheduler starts a run: with trigger = "http" it calls the function with an OIDC token of
 * the invoker account; with trigger = "pubsub" it publishes to a trigger topic, and the function's
 * Eventarc trigger (running as the invoker account) delivers the message.
 */

resource "google_pubsub_topic" "trigger" {
  count = local.http ? 0 : 1

  project                    = var.project_id
  name                       = "${var.name}-trigger"
  labels                     = local.labels
  message_retention_duration = "600s"

  depends_on = [google_project_service.apis]
}

# Who may start a run in the Pub/Sub variant: anyone who can publish to the trigger topic. A
# message's data is the request, and it gets only what the policy's function.allow permits (by
# default no other mode and no restore). This
# binding is authoritative for roles/pubsub.publisher on the topic: Cloud Scheduler's service agent,
# which publishes a Pub/Sub target's messages, is its only member, and a publisher added to the topic
# by hand is removed at the next apply. Grants inherited from the project (owners, editors,
# roles/pubsub.publisher or .editor or .admin on the project) cannot be removed here; see the README.
# https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/pubsub_topic_iam
resource "google_pubsub_topic_iam_binding" "trigger_publishers" {
  count = local.http ? 0 : 1

  project = var.project_id
  topic   = google_pubsub_topic.trigger[0].name
  role    = "roles/pubsub.publisher"
  members = [local.scheduler_service_agent]
}

locals {
  scheduler_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
}

resource "google_cloud_scheduler_job" "governor" {
  project     = var.project_id
  region      = var.region
  name        = var.name
  description = "Runs the Cloud Run GPU governor."
  schedule    = var.schedule
  time_zone   = var.time_zone
  paused      = var.paused
  # The run's timeout plus 30 s to answer: at most 1800 s, Cloud Scheduler's limit for HTTP targets
  # (function.timeout_seconds is at most 1770, variables.tf).
  attempt_deadline = local.http ? "${var.function.timeout_seconds + 30}s" : null

  retry_config {
    retry_count          = var.scheduler_retry.retry_count
    min_backoff_duration = var.scheduler_retry.min_backoff_duration
    max_backoff_duration = var.scheduler_retry.max_backoff_duration
    max_doublings        = var.scheduler_retry.max_doublings
    max_retry_duration   = var.scheduler_retry.max_retry_duration
  }

  dynamic "http_target" {
    for_each = local.http ? [google_cloudfunctions2_function.governor.service_config[0].uri] : []

    content {
      http_method = "POST"
      uri         = http_target.value

      oidc_token {
        service_account_email = google_service_account.invoker.email
        audience              = http_target.value
      }
    }
  }

  dynamic "pubsub_target" {
    for_each = local.http ? [] : [google_pubsub_topic.trigger[0].id]

    content {
      topic_name = pubsub_target.value
      data       = base64encode("{}")
      attributes = { source = "cloud-scheduler" }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_cloud_run_v2_service_iam_member.invoker,
    google_pubsub_topic_iam_binding.trigger_publishers,
  ]
}
