output "work_topic" {
  description = "The work topic."
  value       = module.gpu_governor_org.work_topic
}
