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

output "scheduler_job_name" {
  description = "The Cloud Scheduler job that runs the governor."
  value       = module.gpu_governor.scheduler_job_name
}
