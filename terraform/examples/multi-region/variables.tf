variable "project_id" {
  type        = string
  description = "Project that hosts the governor and whose GPU services it governs."
}

variable "region" {
  type        = string
  description = "Region of the function, the scheduler job and the state database."
  default     = "us-central1"
}

variable "governed_regions" {
  type        = list(string)
  description = "Regions whose L4 pools (with and without zonal redundancy) the governor shares out."
  default     = ["us-central1", "europe-west4"]

  validation {
    condition     = length(var.governed_regions) > 0
    error_message = "governed_regions must list at least one region."
  }
}

variable "writable_services" {
  type = list(object({
    region = string
    name   = string
  }))
  description = "The GPU services the governor may update (their max instances), each by region and name: services of project_id that exist (each is granted on by name, and a service that does not exist fails the apply)."

  validation {
    condition     = length(var.writable_services) > 0
    error_message = "writable_services must list at least one service: the policy enforces."
  }
}

variable "service_accounts" {
  type        = list(string)
  description = "Runtime service accounts of the governed services (the governor may need to act as them to update the services)."
  default     = []
}

variable "source_archive" {
  type        = string
  description = "Path of the archive built by npm run package."
  default     = "../../../dist/function.zip"
}
