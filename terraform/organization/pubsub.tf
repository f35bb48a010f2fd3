resource "google_pubsub_topic" "work" {
  project = var.project_id
  name    = "${var.name}-work"
  # A work message older than the policy's fanout.staleAfter is dropped by the unit anyway.
  message_retention_duration = "3600s"
}

# The alerts of every unit (docs/alerts.md), in the host project: the policy's alerts.topic is
# this topic unless the policy names another, whose publish grant is then the deployer's to give.
# The module makes no subscription on it, and a topic without one drops what is published, so it
# keeps messages seven days, as the single-project module's alert topic does by default: "messages
# published to the topic in the last message_retention_duration are always available to
# subscribers. For instance, it allows any attached subscription to seek to a timestamp that is up
# to message_retention_duration in the past" (Topic,
# https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics). A subscription made
# after the first alerts can seek back to them.
resource "google_pubsub_topic" "alerts" {
  project                    = var.project_id
  name                       = "${var.name}-alerts"
  message_retention_duration = "604800s"
}

resource "google_pubsub_topic_iam_member" "governor_publishes_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = local.governor_member
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-work-dead-letter"
}

# Dead letters are kept here for people to look at (and counted by the alert policy below).
# It never expires: nothing reads it while all goes well, and a subscription without an
# expiration_policy is deleted after 31 days without activity ("If `expiration_policy` is not
# set, a default policy with `ttl` of 31 days will be used", Subscription.expiration_policy,
# https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions); dead letters
# would then go to a topic without subscriptions, which drops them, and the alert would never fire.
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}-work-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dispatch_publishes_work" {
  project = var.project_id
  topic   = google_pubsub_topic.work.name
  role    = "roles/pubsub.publisher"
  member  = local.governor_member
}

locals {
  # A unit that crashed (its instance lost, out of memory) holds its project's lease for its time
  # to live: the run deadline (timeout_seconds - 30, main.tf) plus a minute (LEASE_MARGIN_MS in
  # src/reconcile/reconcile.ts), so timeout_seconds + 30. Each redelivery meanwhile finds the lease
  # held and fails. With a 10 s minimum backoff the max_delivery_attempts - 1 redeliveries were
  # spent in about 150 s, and the message was dead-lettered while the lease still stood. The
  # minimum delay between deliveries is spread so that they span the lease. Pub/Sub applies it
  # on a best-effort basis ("the delay between consecutive deliveries may not match the
  # configuration": RetryPolicy, https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions#retrypolicy),
  # 0 to 600 s; the next dispatch recovers a message dead-lettered all the same.
  work_minimum_backoff = min(600, max(10, ceil((var.timeout_seconds + 30) / (var.max_delivery_attempts - 1))))
}

# Push with an OIDC token of the invoker (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions):
# a 2xx answer acknowledges, anything else is redelivered with backoff, then dead-lettered.
resource "google_pubsub_subscription" "work" {
  project              = var.project_id
  name                 = "${var.name}-work"
  topic                = google_pubsub_topic.work.id
  ack_deadline_seconds = var.timeout_seconds

  push_config {
    push_endpoint = google_cloudfunctions2_function.unit.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.unit.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${local.work_minimum_backoff}s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering: Pub/Sub's service agent publishes to the dead-letter topic and acknowledges on
# the work subscription: https://cloud.google.com/pubsub/docs/handling-failures#grant_forwarding_permissions
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscribes_work" {
  project      = var.project_id
  subscription = google_pubsub_subscription.work.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# A unit dead-lettered is alerted: any message waiting on the dead-letter subscription (of this
# project: a policy reads every project of its metrics scope, https://cloud.google.com/monitoring/settings).
resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "${var.name}: work dead-lettered"
  combiner     = "OR"

  conditions {
    display_name = "dead-lettered work messages"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.project_id = \"${var.project_id}\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  # Without channels the policy only opens incidents in the console.
  notification_channels = var.notification_channels
}
