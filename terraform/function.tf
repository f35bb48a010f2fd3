resource "google_storage_bucket" "source" {
  count = var.source_bucket_name == null ? 1 : 0

  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  depends_on = [google_project_service.apis]
}

# Named by the archive's SHA-256: a new build is a new object, which redeploys the function.
resource "google_storage_bucket_object" "source" {
  bucket       = var.source_bucket_name == null ? google_storage_bucket.source[0].name : var.source_bucket_name
  name         = "${var.name}/function-${filesha256(var.source_archive)}.zip"
  source       = var.source_archive
  content_type = "application/zip"
}

# The function's image repository, so that the build account writes to this repository only rather
# than to the project's shared gcf-artifacts. build_config.docker_repository must be a DOCKER
# repository in the function's project and region:
# https://cloud.google.com/ruby/docs/reference/google-cloud-functions-v2/latest/Google-Cloud-Functions-V2-BuildConfig
resource "google_artifact_registry_repository" "function" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name}-function"
  format        = "DOCKER"
  description   = "Images of the ${var.name} function, built by Cloud Build."
  labels        = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "governor" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = "Cloud Run GPU governor: keeps the GPU services' max instances within the regional GPU quota."
  labels      = local.labels

  build_config {
    runtime           = "nodejs22"
    entry_point       = local.http ? "governorHttp" : "governorEvent"
    service_account   = local.build_service_account_id
    docker_repository = google_artifact_registry_repository.function.id

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
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    available_cpu                    = var.function.available_cpu
    available_memory                 = var.function.available_memory
    timeout_seconds                  = var.function.timeout_seconds
    ingress_settings                 = local.http ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.environment
  }

  dynamic "event_trigger" {
    for_each = local.http ? [] : [google_pubsub_topic.trigger[0].id]

    content {
      trigger_region = var.region
      event_type     = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic   = event_trigger.value
      # A failed run is not redelivered: the next scheduled run is the retry. Retries would redeliver
      # the same tick for up to 24 hours with backoff of 10 to 600 s
      # (https://cloud.google.com/functions/docs/bestpractices/retries), each a whole run queued
      # behind fresh ticks (one instance, one request at a time), replaying a stale message's
      # payload, and, for a failure that persists (a denied permission), failing again and again.
      retry_policy          = "RETRY_POLICY_DO_NOT_RETRY"
      service_account_email = google_service_account.invoker.email
    }
  }

  lifecycle {
    precondition {
      condition     = local.http || var.function.timeout_seconds <= 540
      error_message = "With trigger = \"pubsub\" the function is event-driven, and event-driven functions time out after at most 540 seconds: lower function.timeout_seconds."
    }

    precondition {
      condition     = local.policy_topic == null || local.policy_topic == "projects/${var.project_id}/topics/${local.alert_topic_name}"
      error_message = "The policy's alerts.topic names another topic than the module's alert topic; the governor may publish to the module's topic only. Remove alerts.topic from the policy or set alerts.topic_name."
    }

    # An enforcing governor that may write no service would only ever be denied: say so at plan time.
    precondition {
      condition     = try(local.policy_input.mode, "enforce") == "dry-run" || local.governor_writes
      error_message = "The policy enforces (mode: enforce, the default) but the governor may write no service: list the services it may write in write_access.services, set write_access.project_wide = true, or set mode: dry-run in the policy."
    }

    # A policy that files quota requests needs the permission to: say so at plan time.
    precondition {
      condition     = !try(local.policy_input.quotaRequests.enabled, false) || var.quota_requests
      error_message = "The policy sets quotaRequests.enabled: true but the module does not let the governor file quota requests: set quota_requests = true, or turn quotaRequests off in the policy."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_function_sources,
  ]
}
