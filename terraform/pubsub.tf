/**
 * Alerts: one topic the governor publishes to, and optionally a subscription with a dead-letter
 * topic. Pub/Sub topic schemas are Avro or Protocol Buffer only, so the alert JSON Schema
 * (schema/alert.schema.json) cannot be attached; alerts.schema attaches one you supply.
 */

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_schema" "alerts" {
  count = var.alerts.schema == null ? 0 : 1

  project    = var.project_id
  name       = "${local.alert_topic_name}-schema"
  type       = var.alerts.schema.type
  definition = var.alerts.schema.definition

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "alerts" {
  project                    = var.project_id
  name                       = local.alert_topic_name
  labels                     = local.labels
  message_retention_duration = var.alerts.message_retention_duration

  # Topic ids are unique in a project: an alert topic named as the Pub/Sub variant's trigger topic
  # would fail the apply halfway (ALREADY_EXISTS), and the two must never be one topic.
  lifecycle {
    precondition {
      condition     = local.http || local.alert_topic_name != "${var.name}-trigger"
      error_message = "alerts.topic_name must not be the trigger topic's name (<name>-trigger) when trigger = \"pubsub\": choose another alert topic name."
    }
  }

  dynamic "schema_settings" {
    for_each = var.alerts.schema == null ? [] : [var.alerts.schema.encoding]

    content {
      schema   = google_pubsub_schema.alerts[0].id
      encoding = schema_settings.value
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  count = local.subscribe ? 1 : 0

  project                    = var.project_id
  name                       = "${local.alert_topic_name}-dead-letter"
  labels                     = local.labels
  message_retention_duration = var.alerts.message_retention_duration

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "alerts" {
  count = local.subscribe ? 1 : 0

  project                    = var.project_id
  name                       = coalesce(var.alerts.subscription.name, "${local.alert_topic_name}-subscription")
  topic                      = google_pubsub_topic.alerts.id
  labels                     = local.labels
  filter                     = var.alerts.subscription.filter
  ack_deadline_seconds       = var.alerts.subscription.ack_deadline_seconds
  message_retention_duration = var.alerts.subscription.message_retention_duration
  enable_message_ordering    = var.alerts.subscription.enable_message_ordering

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[0].id
    max_delivery_attempts = var.alerts.subscription.max_delivery_attempts
  }

  dynamic "push_config" {
    for_each = var.alerts.subscription.push_endpoint == null ? [] : [var.alerts.subscription]

    content {
      push_endpoint = push_config.value.push_endpoint

      # Always signed (the variable's validation requires the account): Pub/Sub adds an OIDC token of
      # this account to every push, for the endpoint to verify.
      # (audience: the endpoint unless push_audience is set; the deployer needs actAs on the account)
      # https://cloud.google.com/dotnet/docs/reference/Google.Cloud.PubSub.V1/latest/Google.Cloud.PubSub.V1.PushConfig.Types.OidcToken
      oidc_token {
        service_account_email = push_config.value.push_service_account_email
        audience              = push_config.value.push_audience
      }
    }
  }

  # "The user-managed service account must be in the same project as the push subscription"
  # (https://cloud.google.com/pubsub/docs/create-push-subscription, prerequisites for enabling
  # authentication): an account of project_id, its App Engine default account, or its default
  # compute account.
  lifecycle {
    precondition {
      condition = (
        var.alerts.subscription.push_service_account_email == null
        || endswith(coalesce(var.alerts.subscription.push_service_account_email, "-"), "@${var.project_id}.iam.gserviceaccount.com")
        || contains(["${var.project_id}@appspot.gserviceaccount.com", "${data.google_project.this.number}-compute@developer.gserviceaccount.com"], var.alerts.subscription.push_service_account_email)
      )
      error_message = "alerts.subscription.push_service_account_email must be a service account of project_id, the subscription's project: Pub/Sub signs pushes only with an account of the push subscription's own project."
    }

    # Subscription ids are unique in a project: this one and the dead-letter subscription
    # (<topic>-dead-letter, below) cannot share a name; the second would fail the apply halfway.
    precondition {
      condition     = coalesce(var.alerts.subscription.name, "${local.alert_topic_name}-subscription") != "${local.alert_topic_name}-dead-letter"
      error_message = "alerts.subscription.name must not be the name of the dead-letter subscription the module creates beside it (<alert topic>-dead-letter): choose another name."
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Messages on a topic without subscriptions are dropped: keep the dead letters.
resource "google_pubsub_subscription" "dead_letter" {
  count = local.subscribe ? 1 : 0

  project                    = var.project_id
  name                       = "${local.alert_topic_name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[0].id
  labels                     = local.labels
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering: Pub/Sub's service agent forwards undeliverable messages, so it publishes to the
# dead-letter topic and acknowledges on the alert subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  count = local.subscribe ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  count = local.subscribe ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.alerts[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
