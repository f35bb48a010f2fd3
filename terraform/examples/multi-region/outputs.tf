output "function_uri" {
  description = "HTTPS URI of the governor function."
  value       = module.gpu_governor.function_uri
}

output "service_account_email" {
  description = "The governor's runtime service account."
  value       = module.gpu_governor.service_account_email
}

output "alert_topic_id" {
  description = "The topic the governor publishes alerts to."
  value       = module.gpu_governor.alert_topic_id
}

output "alert_subscription_id" {
  description = "Pull subscription to the alerts (warnings and worse)."
  value       = module.gpu_governor.alert_subscription_id
}

output "dead_letter_topic_id" {
  description = "Where alerts that could not be delivered end up."
  value       = module.gpu_governor.dead_letter_topic_id
}

output "scheduler_job_name" {
  description = "The Cloud Scheduler job that runs the governor."
  value       = module.gpu_governor.scheduler_job_name
}
