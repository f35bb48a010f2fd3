output "function_uri" {
  description = "HTTPS URI of the governor function (the scheduler job's target and OIDC audience)."
  value       = google_cloudfunctions2_function.governor.service_config[0].uri
}

output "function_name" {
  description = "Name of the governor function."
  value       = google_cloudfunctions2_function.governor.name
}

output "service_account_email" {
  description = "Email of the governor's runtime service account."
  value       = google_service_account.governor.email
}

output "invoker_service_account_email" {
  description = "Email of the service account that alone may invoke the function (scheduler OIDC token, or the Eventarc trigger)."
  value       = google_service_account.invoker.email
}

output "build_service_account_email" {
  description = "Email of the service account Cloud Build builds the function with."
  value       = local.build_service_account
}

output "alert_topic_id" {
  description = "Id (projects/<p>/topics/<t>) of the topic the governor publishes alerts to."
  value       = google_pubsub_topic.alerts.id
}

output "dead_letter_topic_id" {
  description = "Id of the alert subscription's dead-letter topic; null without a subscription."
  value       = local.subscribe ? google_pubsub_topic.dead_letter[0].id : null
}

output "alert_subscription_id" {
  description = "Id of the alert subscription; null when alerts.subscription is not set."
  value       = local.subscribe ? google_pubsub_subscription.alerts[0].id : null
}

output "trigger_topic_id" {
  description = "Id of the topic the scheduler publishes to when trigger = \"pubsub\"; null otherwise."
  value       = local.http ? null : google_pubsub_topic.trigger[0].id
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job (in region), for gcloud scheduler jobs run/pause/resume."
  value       = google_cloud_scheduler_job.governor.name
}

output "custom_role_ids" {
  description = "The governor's custom role in each governed project, by project id."
  value       = { for project, role in google_project_iam_custom_role.governor : project => role.id }
}

output "firestore_database" {
  description = "Id of the Firestore database holding the alert condition state."
  value       = local.database_id
}

output "source_object" {
  description = "gs:// URL of the deployed source archive; its name carries the archive's SHA-256."
  value       = "gs://${google_storage_bucket_object.source.bucket}/${google_storage_bucket_object.source.name}"
}
