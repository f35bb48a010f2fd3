# Three folders of an organisation, governed from one host project.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "gpu_governor_org" {
  source = "../../organization"

  project_id      = var.project_id
  region          = var.region
  organization_id = var.organization_id
  folder_ids      = var.folder_ids
  source_archive  = "${path.root}/../../../dist/function.zip"

  discovery = {
    exclude = ["*-sandbox"]
  }
  unit_concurrency      = 20
  max_delivery_attempts = 5

  policy = {
    mode     = "dry-run"
    defaults = { headroom = 0.2 }
    services = [{ match = {} }]
  }
}
