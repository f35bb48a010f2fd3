/**
 * One project, several regions, both L4 pools in each (with and without zonal redundancy), and a
 * pull subscription to the alerts, filtered to warnings and worse. The policy enforces, so the
 * services the governor may update are listed (write_access); it can update no others.
 */

provider "google" {
  project = var.project_id
  region  = var.region
}

module "gpu_governor" {
  source = "../.."

  project_id     = var.project_id
  region         = var.region
  source_archive = var.source_archive

  policy = templatefile("${path.module}/policy.yaml.tftpl", {
    project_id = var.project_id
    regions    = var.governed_regions
  })

  schedule  = "*/5 * * * *"
  time_zone = "Etc/UTC"

  function = {
    timeout_seconds = 300
    run_deadline    = "240s"
  }

  # The policy enforces: the governor may update these services, and no others.
  write_access = {
    services = var.writable_services
  }

  # They run as these accounts (and as the default compute account, the module's default).
  governed_service_accounts = {
    emails = var.service_accounts
  }

  alerts = {
    subscription = {
      filter                = "attributes.severity != \"INFO\""
      max_delivery_attempts = 10
    }
  }
}
