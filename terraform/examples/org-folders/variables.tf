variable "project_id" {
  type        = string
  description = "The host project."
}

variable "region" {
  type        = string
  description = "Region of the functions, the scheduler job and the state database."
  default     = "us-central1"
}

variable "organization_id" {
  type        = string
  description = "The organisation number."
}

variable "folder_ids" {
  type        = list(string)
  description = "The folders to govern, by number (for example three: [\"111111111111\", \"222222222222\", \"333333333333\"]): folders of organization_id that exist (the role is granted on each, and a folder that does not exist fails the apply)."
}
