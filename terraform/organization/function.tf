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

# Cloud Build builds both functions as an account of the module's own, into an image repository of
# the module's own, as in the single-project module (terraform/function.tf, terraform/iam.tf). The
# default build account of a project created since July 2024 is the default compute account, which
# "may be using a default Cloud Build service account with insufficient permissions for building a
# function": https://cloud.google.com/functions/docs/securing/build-custom-sa
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "Cloud Run GPU governor build (organisation)"
  description  = "Cloud Build identity for building the ${var.name} functions."
}

# build_config.docker_repository must be a DOCKER repository in the function's project and region:
# https://cloud.google.com/ruby/docs/reference/google-cloud-functions-v2/latest/Google-Cloud-Functions-V2-BuildConfig
resource "google_artifact_registry_repository" "function" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name}-function"
  format        = "DOCKER"
  description   = "Images of the ${var.name} functions, built by Cloud Build."
}

# The roles Google documents for a function's build account, each on the one resource it needs:
# https://cloud.google.com/run/docs/configuring/services/build-service-account
# Logs have no narrower resource than the project.
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build_writes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.function.location
  repository = google_artifact_registry_repository.function.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.build.email}"
}

# The build fetches the archive from Cloud Functions' own copy of it, in its source bucket
# gcf-v2-sources-PROJECT_NUMBER-REGION (https://cloud.google.com/functions/docs/building): read
# access there, through a condition on the bucket's name, as in the single-project module
# (terraform/iam.tf, build_reads_function_sources, which says why).
resource "google_project_iam_member" "build_reads_function_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title       = "${var.name} build: function sources only"
    description = "Only Cloud Functions' source bucket ${local.function_sources_bucket}, which the build fetches the archive from."
    expression  = "resource.name == \"projects/_/buckets/${local.function_sources_bucket}\" || resource.name.startsWith(\"projects/_/buckets/${local.function_sources_bucket}/\")"
  }
}

# The dispatch: one run at a time, each a few seconds (a search at most once per cache_ttl).
# Both functions take requests from anywhere on the network (ALLOW_ALL) and refuse every caller
# without roles/run.invoker, which only the invoker account holds: "Ingress settings and IAM
# authentication methods are two ways of managing access to a service. They are independent of
# each other" (https://cloud.google.com/run/docs/securing/ingress). Internal-only ingress would
# hold only if Cloud Scheduler's HTTP target and the Pub/Sub push count as internal sources there,
# which has not been tried against Google: a wrong guess would refuse every dispatch and push.
resource "google_cloudfunctions2_function" "dispatch" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-dispatch"

  build_config {
    runtime           = "nodejs22"
    entry_point       = "governorDispatch"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.function.id
    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  # Memory and CPU said outright: the API's defaults are 256M, and a CPU "calculated from
  # available memory" (ServiceConfig,
  # https://cloud.google.com/php/docs/reference/cloud-functions/latest/V2.ServiceConfig).
  service_config {
    service_account_email            = google_service_account.governor.email
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = 120
    ingress_settings                 = "ALLOW_ALL"
    environment_variables            = local.environment
  }

  depends_on = [
    google_project_service.cloudasset,
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_function_sources,
  ]
}

# The unit: one project per request, at most unit_concurrency at once; Pub/Sub's push backs off
# when instances are all busy (429), which is the flow control.
resource "google_cloudfunctions2_function" "unit" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-unit"

  build_config {
    runtime           = "nodejs22"
    entry_point       = "governorUnit"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.function.id
    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  # A unit is a whole governor run of one project: the memory and CPU of the single-project
  # module's function (512Mi, 1 vCPU), not the API's defaults (256M, and a fraction of a vCPU
  # "calculated from available memory"). docs/performance.md measured a run's peak at 238 MiB for
  # 1,000 services and 343 MiB for 10,000.
  service_config {
    service_account_email            = google_service_account.governor.email
    min_instance_count               = 0
    max_instance_count               = var.unit_concurrency
    max_instance_request_concurrency = 1
    available_memory                 = var.unit_memory
    available_cpu                    = "1"
    timeout_seconds                  = var.timeout_seconds
    ingress_settings                 = "ALLOW_ALL"
    environment_variables            = local.environment
  }

  depends_on = [
    google_project_service.cloudquotas,
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_writes_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_function_sources,
  ]
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

  # No retry (Cloud Scheduler's default, said outright): the next scheduled dispatch is the retry.
  # A retry would publish every work message again while the first ones' units still hold their
  # leases, and each such delivery would fail and spend one of its max_delivery_attempts.
  # "If retry_count is zero, a job attempt will not be retried if it fails. Instead the Cloud
  # Scheduler system will wait for the next scheduled execution time":
  # https://cloud.google.com/php/docs/reference/cloud-scheduler/1.10.0/V1.RetryConfig
  retry_config {
    retry_count = 0
  }

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
