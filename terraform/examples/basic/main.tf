/**
 * One project, one region: the governor shares the region's L4 quota between every GPU service,
 * starting in dry-run (it plans and alerts, and writes nothing).
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

  policy = {
    version  = 1
    projects = [var.project_id]
    regions  = [var.region]
    mode     = "dry-run"
    defaults = {
      min      = 1
      headroom = 0.2
    }
    services = [
      { match = {} },
    ]
  }
}
