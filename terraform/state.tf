/**
 * Alert condition state (firing since, last notified) lives in Firestore between runs. Per-service
 * state lives on the services themselves, as gpu-governor.dev/ annotations.
 */

resource "google_firestore_database" "state" {
  count = var.state.create_database ? 1 : 0

  project                 = var.project_id
  name                    = var.state.database_id
  location_id             = coalesce(var.state.location_id, var.region)
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.state.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.state.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.apis]
}
