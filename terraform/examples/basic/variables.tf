variable "project_id" {
  type        = string
  description = "Project that hosts the governor and whose GPU services it governs."
}

variable "region" {
  type        = string
  description = "Region of the function and of the governed GPU services."
  default     = "us-central1"
}

variable "source_archive" {
  type        = string
  description = "Path of the archive built by npm run package."
  default     = "../../../dist/function.zip"
}
