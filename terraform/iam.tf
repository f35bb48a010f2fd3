/**
 * Three identities, none of them a default account, none with keys:
 * - the governor (the function's runtime identity), with exactly the permissions the code uses;
 * - the invoker, the only principal allowed to run the function (Cloud Scheduler's OIDC token, or the
 *   Eventarc trigger in the Pub/Sub variant);
 * - the builder, which Cloud Build uses to build the function (unless build_service_account is given).
 */

resource "google_service_account" "governor" {
  project      = var.project_id
  account_id   = var.name
  display_name = "Cloud Run GPU governor"
  description  = "Runtime identity of the ${var.name} function: reads quotas and usage, writes GPU services' max instances, publishes alerts."
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name}-invoker"
  display_name = "Cloud Run GPU governor invoker"
  description  = "Starts runs of the ${var.name} function; holds roles/run.invoker on it and nothing else."
}

resource "google_service_account" "build" {
  count = var.build_service_account == null ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "Cloud Run GPU governor build"
  description  = "Cloud Build identity for building the ${var.name} function."
}

locals {
  governor_member          = "serviceAccount:${google_service_account.governor.email}"
  build_service_account    = var.build_service_account == null ? google_service_account.build[0].email : var.build_service_account
  build_service_account_id = "projects/${var.project_id}/serviceAccounts/${local.build_service_account}"

  # Exactly what the governor calls: Cloud Run Admin v2 (list, get, update services; poll the
  # update's operation), Cloud Monitoring (instance counts, GPU utilization) and Cloud Quotas.
  governor_permissions = [
    "cloudquotas.quotas.get",
    "monitoring.timeSeries.list",
    "run.operations.get",
    "run.services.get",
    "run.services.list",
    "run.services.update",
  ]

  # Google's documented roles for a custom function build account.
  build_roles = var.build_service_account == null ? toset([
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
    "roles/storage.objectAdmin",
  ]) : toset([])
}

# One custom role in every project the policy governs, granted there to the governor.
resource "google_project_iam_custom_role" "governor" {
  for_each = local.governed_projects

  project     = each.key
  role_id     = replace(var.name, "-", "_")
  title       = "Cloud Run GPU governor"
  description = "Read GPU quotas and usage, and update Cloud Run services' max instances (${var.name})."
  permissions = local.governor_permissions
}

resource "google_project_iam_member" "governor" {
  for_each = local.governed_projects

  project = each.key
  role    = google_project_iam_custom_role.governor[each.key].id
  member  = local.governor_member
}

# Updating a service can require acting as its runtime identity.
resource "google_service_account_iam_member" "governor_acts_as" {
  for_each = toset(var.governed_service_accounts)

  service_account_id = "projects/-/serviceAccounts/${each.key}"
  role               = "roles/iam.serviceAccountUser"
  member             = local.governor_member
}

# Alert condition state: the governor's Firestore database, and no other.
resource "google_project_iam_member" "governor_state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.governor_member

  condition {
    title       = "${var.name} state only"
    description = "Only the Firestore database ${local.database_id}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${local.database_id}\" || resource.name.startsWith(\"projects/${var.project_id}/databases/${local.database_id}/\")"
  }
}

# Publishing is granted on the alert topic itself, never on the project.
resource "google_pubsub_topic_iam_member" "governor_publishes_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = local.governor_member
}

# The invoker alone may run the function.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.governor.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

resource "google_project_iam_member" "build" {
  for_each = local.build_roles

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${local.build_service_account}"
}
