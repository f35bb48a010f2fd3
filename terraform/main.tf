/**
 * The governor's project, the APIs it needs, and the values every file shares.
 * The function is in function.tf, its trigger in scheduler.tf, alerts in pubsub.tf,
 * identities and permissions in iam.tf, the alert condition store in state.tf, and the governor's
 * own dashboard and not-running alert policy in monitoring.tf.
 */

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge({ app = "gpu-governor" }, var.labels)
  http   = var.trigger == "http"

  # The policy as given (YAML or JSON text, or an object), then as the function receives it:
  # JSON text with alerts.topic filled in with the module's alert topic.
  policy_input      = try(yamldecode(var.policy), var.policy)
  policy_topic      = try(local.policy_input.alerts.topic, null)
  governed_projects = toset(local.policy_input.projects)
  policy = merge(local.policy_input, {
    alerts = merge({ topic = google_pubsub_topic.alerts.id }, try(local.policy_input.alerts, {}))
  })

  alert_topic_name = coalesce(var.alerts.topic_name, "${var.name}-alerts")
  subscribe        = var.alerts.subscription != null

  database_id = var.state.create_database ? google_firestore_database.state[0].name : var.state.database_id

  # NODE_ENV: Express, under functions-framework, puts stack traces in its error pages outside
  # production (the function defaults it too, for deployments made without this module).
  environment = merge(var.function.environment, {
    GOVERNOR_POLICY               = jsonencode(local.policy)
    GOVERNOR_STATE_STORE          = "firestore"
    GOVERNOR_FIRESTORE_DATABASE   = local.database_id
    GOVERNOR_FIRESTORE_COLLECTION = var.state.collection
    GOVERNOR_RUN_DEADLINE         = var.function.run_deadline
    GOOGLE_CLOUD_PROJECT          = var.project_id
    NODE_ENV                      = "production"
  })

  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudquotas.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project                    = var.project_id
  service                    = each.key
  disable_on_destroy         = false
  disable_dependent_services = false
}
