resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "${var.name}/function-${filesha256(var.source_archive)}.zip"
  source = var.source_archive
}

# The dispatch: one run at a time, each a few seconds (a search at most once per cache_ttl).
resource "google_cloudfunctions2_function" "dispatch" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-dispatch"

  build_config {
    runtime     = "nodejs22"
    entry_point = "governorDispatch"
    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.governor.email
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    timeout_seconds                  = 120
    ingress_settings                 = "ALLOW_ALL"
    environment_variables            = local.environment
  }

  depends_on = [google_project_service.cloudasset]
}

# The unit: one project per request, at most unit_concurrency at once; Pub/Sub's push backs off
# when instances are all busy (429), which is the flow control.
resource "google_cloudfunctions2_function" "unit" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-unit"

  build_config {
    runtime     = "nodejs22"
    entry_point = "governorUnit"
    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.governor.email
    min_instance_count               = 0
    max_instance_count               = var.unit_concurrency
    max_instance_request_concurrency = 1
    timeout_seconds                  = var.timeout_seconds
    ingress_settings                 = "ALLOW_ALL"
    environment_variables            = local.environment
  }
}

resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = {
    dispatch = google_cloudfunctions2_function.dispatch.name
    unit     = google_cloudfunctions2_function.unit.name
  }

  project  = var.project_id
  location = var.region
  service  = each.value
  role     = "roles/run.invoker"
  member   = local.invoker_member
}

resource "google_cloud_scheduler_job" "dispatch" {
  project   = var.project_id
  region    = var.region
  name      = "${var.name}-dispatch"
  schedule  = var.schedule
  time_zone = "Etc/UTC"

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.dispatch.service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.dispatch.service_config[0].uri
    }
  }
}
