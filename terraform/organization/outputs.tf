output "work_topic" {
  description = "The work topic (one message per project per dispatch)."
  value       = google_pubsub_topic.work.id
}

output "dead_letter_subscription" {
  description = "Where work messages that failed every delivery wait for a person."
  value       = google_pubsub_subscription.dead_letter.id
}

output "governor_service_account" {
  description = "The governor's identity; granted the custom role on the organisation or each folder, and on each project the policy lists."
  value       = google_service_account.governor.email
}

output "role" {
  description = "The custom role (organisation level) and its permissions."
  value = {
    name        = google_organization_iam_custom_role.governor.name
    permissions = google_organization_iam_custom_role.governor.permissions
  }
}

output "alert_topic" {
  description = "Where every unit publishes its alerts (docs/alerts.md), unless the policy names another topic."
  value       = google_pubsub_topic.alerts.id
}
