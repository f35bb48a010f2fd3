/**
 * Three identities, none of them a default account, none with keys:
 * - the governor (the function's runtime identity), with exactly the permissions the code uses;
 * - the invoker, the only principal allowed to run the function (Cloud Scheduler's OIDC token, or the
 *   Eventarc trigger in the Pub/Sub variant);
 * - the builder, which Cloud Build uses to build the function (unless build_service_account is given).
 */

resource "google_service_account" "governor" {
  project      = var.project_id
  account_id   = var.name
  display_name = "Cloud Run GPU governor"
  description  = "Runtime identity of the ${var.name} function: reads quotas and usage, writes GPU services' max instances, publishes alerts."
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name}-invoker"
  display_name = "Cloud Run GPU governor invoker"
  description  = "Starts runs of the ${var.name} function; holds roles/run.invoker on it and nothing else."
}

resource "google_service_account" "build" {
  count = var.build_service_account == null ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "Cloud Run GPU governor build"
  description  = "Cloud Build identity for building the ${var.name} function."
}

locals {
  governor_member          = "serviceAccount:${google_service_account.governor.email}"
  build_service_account    = var.build_service_account == null ? google_service_account.build[0].email : var.build_service_account
  build_service_account_id = "projects/${var.project_id}/serviceAccounts/${local.build_service_account}"
  create_build_account     = var.build_service_account == null
  # Cloud Functions' own source bucket in the function's project and region (see
  # build_reads_function_sources, below).
  function_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"

  # Exactly what the governor's code calls, grouped by call; terraform/README.md lists each call with
  # the documentation of its permission. Cloud Run permission names:
  # https://cloud.google.com/run/docs/reference/iam/permissions
  # Granted on each governed project: a list permission is checked on the parent
  # (projects/P/locations/R) and cannot be narrowed to single services, worker pools or jobs.
  governor_read_permissions = [
    # Cloud Run Admin v2, src/adapters/cloud-run.ts
    "run.locations.list", # Locations.ListLocations: the regions, when the policy names none
    "run.services.list",  # Services.ListServices: every governed region
    "run.services.get",   # Services.GetService: the fresh read (etag) before each write
    "run.operations.get", # Operations.GetOperation: waiting for an UpdateService to finish
    # Revisions.GetRevision: the serving revisions' own max and GPU of a service whose latest
    # revision does not serve (traffic pinned or split, a rollout, a failed revision):
    # https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/get
    "run.revisions.get",
    # The same GetRevision on a worker pool's revision (workerPools/W/revisions/R, the rpc's other
    # HTTP binding in google/cloud/run/v2/revision.proto): Google names no permission for it, and
    # documents worker pool revisions under the worker pool's roles
    # (https://cloud.google.com/run/docs/managing/workerpool-revisions, "Required roles"). Where
    # Google is silent the module fails safe: run.workerpools.get goes beside run.revisions.get,
    # both held by Cloud Run Viewer (https://cloud.google.com/iam/docs/roles-permissions/run).
    "run.workerpools.get",
    "run.workerpools.list", # WorkerPools.ListWorkerPools: GPU worker pools are unmanaged usage
    # Cloud Run jobs hold GPUs while their tasks run: unmanaged usage. One ListExecutions per region
    # with parent jobs/- (every job) needs run.executions.list on the parent and nothing else, so no
    # run.jobs.list (the code never calls ListJobs):
    # https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/list
    "run.executions.list", # Executions.ListExecutions: the running executions of every job
    # Cloud Monitoring, src/adapters/monitoring.ts: instance counts, GPU utilization, 429s
    "monitoring.timeSeries.list", # MetricService.ListTimeSeries
    # Cloud Monitoring, src/adapters/monitoring.ts: the governor's own metrics, once per run
    # (custom.googleapis.com/gpu_governor/*, for the dashboard and the not-running alert policy)
    "monitoring.timeSeries.create", # MetricService.CreateTimeSeries
    # The first write of each metric creates its descriptor ("auto-creation",
    # https://cloud.google.com/monitoring/custom-metrics/creating-metrics#auto-creation); Google
    # does not say whether that write also checks monitoring.metricDescriptors.create. The module
    # fails safe and grants it, as Monitoring Metric Writer, the role Google documents for writing
    # metrics, holds both (https://cloud.google.com/iam/docs/roles-permissions/monitoring).
    "monitoring.metricDescriptors.create",
    # Cloud Quotas, src/adapters/quotas.ts: the regional GPU quota
    # https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.services.quotaInfos/get
    "cloudquotas.quotas.get", # CloudQuotas.GetQuotaInfo
    # The permission preflight (governor check) calls Services.TestIamPermissions, which needs no
    # permission: https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/testIamPermissions
  ]

  # run.locations.list serves one call, ListLocations when the policy names no regions: a policy
  # that names its regions never makes it, and its role goes without.
  lists_regions             = !can(local.policy_input.regions)
  governor_role_permissions = [for p in local.governor_read_permissions : p if local.lists_regions || p != "run.locations.list"]

  # The one write: Services.UpdateService with update_mask scaling.max_instance_count (+ annotations).
  # Never granted project-wide unless write_access.project_wide says so; see governor_writes below.
  governor_write_permissions = ["run.services.update"]

  # A run writes only in enforce mode: the policy's, or one a request may ask for
  # (function.allow.enforce). A policy that can never enforce gets no write grant at all.
  may_write = try(local.policy_input.mode, "enforce") != "dry-run" || try(local.policy_input.function.allow.enforce, false) == true

  # Services the governor may write, by "project/region/name".
  writable_services = {
    for service in var.write_access.services :
    "${coalesce(service.project, var.project_id)}/${service.region}/${service.name}" => merge(service, {
      project = coalesce(service.project, var.project_id)
    }) if local.may_write
  }
  governor_writes = local.may_write && (var.write_access.project_wide || length(local.writable_services) > 0)

  # Runtime accounts of the governed services that the governor may act as (only when it may write):
  # the default compute account of each governed project, and the accounts listed.
  acts_as = local.governor_writes ? toset(concat(
    var.governed_service_accounts.default_compute_account ? [
      for project in local.governed_projects :
      "${data.google_project.governed[project].number}-compute@developer.gserviceaccount.com"
    ] : [],
    var.governed_service_accounts.emails,
  )) : toset([])
}

# The number of each governed project, for its default compute account.
data "google_project" "governed" {
  for_each = local.governed_projects

  project_id = each.key
}

# One read role in every project the policy governs, granted there to the governor.
resource "google_project_iam_custom_role" "governor" {
  for_each = local.governed_projects

  project     = each.key
  role_id     = replace(var.name, "-", "_")
  title       = "Cloud Run GPU governor"
  description = "Read GPU quotas and usage, Cloud Run services, worker pools and jobs; write the governor's own metrics (${var.name})."
  permissions = local.governor_role_permissions
}

resource "google_project_iam_member" "governor" {
  for_each = local.governed_projects

  project = each.key
  role    = google_project_iam_custom_role.governor[each.key].id
  member  = local.governor_member
}

# The write role: run.services.update alone, granted on each writable service (not on the project).
resource "google_project_iam_custom_role" "governor_writer" {
  for_each = local.governed_projects

  project     = each.key
  role_id     = "${replace(var.name, "-", "_")}_writer"
  title       = "Cloud Run GPU governor writer"
  description = "Update the max instances of the Cloud Run services it is granted on (${var.name})."
  permissions = local.governor_write_permissions
}

# Service-level bindings: Cloud Run roles can be granted on individual services
# (https://cloud.google.com/run/docs/reference/iam/roles, "Lowest-level resources where you can grant
# this role: Cloud Run service"); UpdateService is then allowed on these services only.
# Resource: https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/cloud_run_v2_service_iam
# No IAM condition is relied on instead: run.googleapis.com is not among the services Google lists
# as recognising resource attributes in conditions as far as we could read
# (https://cloud.google.com/iam/docs/conditions-resource-attributes), and Config Connector documents
# RunService as "Supports IAM Conditions: No"
# (https://cloud.google.com/config-connector/docs/reference/resource-docs/run/runservice).
# Where Google is silent, a condition that is silently ignored would grant every service: fail safe.
resource "google_cloud_run_v2_service_iam_member" "governor_writes" {
  for_each = local.writable_services

  project  = each.value.project
  location = each.value.region
  name     = each.value.name
  role     = google_project_iam_custom_role.governor_writer[each.value.project].id
  member   = local.governor_member

  lifecycle {
    precondition {
      condition     = contains(tolist(local.governed_projects), each.value.project)
      error_message = "write_access.services lists a service in a project the policy does not govern: add the project to the policy's projects, or remove the service."
    }
  }
}

# Opt-in only: every service of every governed project, including services created later.
resource "google_project_iam_member" "governor_writes_project_wide" {
  for_each = var.write_access.project_wide && local.may_write ? local.governed_projects : toset([])

  project = each.key
  role    = google_project_iam_custom_role.governor_writer[each.key].id
  member  = local.governor_member
}

# Creating or updating a Cloud Run service requires iam.serviceAccounts.actAs on its runtime
# service account (https://cloud.google.com/run/docs/configuring/services/service-identity);
# whether a scaling-only update does is not documented, so it is granted (on these accounts only,
# and only when the governor may write at all).
resource "google_service_account_iam_member" "governor_acts_as" {
  for_each = local.acts_as

  service_account_id = "projects/-/serviceAccounts/${each.key}"
  role               = "roles/iam.serviceAccountUser"
  member             = local.governor_member
}

# Alert condition state: the governor's Firestore database, and no other.
resource "google_project_iam_member" "governor_state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.governor_member

  condition {
    title       = "${var.name} state only"
    description = "Only the Firestore database ${local.database_id}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${local.database_id}\" || resource.name.startsWith(\"projects/${var.project_id}/databases/${local.database_id}/\")"
  }
}

# Publishing is granted on the alert topic itself, never on the project.
resource "google_pubsub_topic_iam_member" "governor_publishes_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = local.governor_member
}

# The invoker alone may run the function. service_config[0].service is the function's Cloud Run
# service as projects/{project}/locations/{region}/services/{service} (ServiceConfig.service,
# https://cloud.google.com/php/docs/reference/cloud-functions/latest/V2.ServiceConfig), a long name
# the provider's google_cloud_run_v2_service_iam_* parse as well as a short one
# (CloudRunV2ServiceIamUpdaterProducer, google/services/cloudrunv2/iam_cloud_run_v2_service.go).
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.governor.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

# The build account's roles, each on the one resource it needs rather than the project. Google
# documents logging.logWriter, artifactregistry.writer and storage.objectAdmin for a function's
# build account: https://cloud.google.com/run/docs/configuring/services/build-service-account
# Logs have no narrower resource than the project.
resource "google_project_iam_member" "build_logs" {
  count = local.create_build_account ? 1 : 0

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${local.build_service_account}"
}

# The function's image goes to the module's own repository (build_config.docker_repository).
resource "google_artifact_registry_repository_iam_member" "build_writes_images" {
  count = local.create_build_account ? 1 : 0

  project    = var.project_id
  location   = google_artifact_registry_repository.function.location
  repository = google_artifact_registry_repository.function.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${local.build_service_account}"
}

# The source archive is read from the source bucket (by Cloud Functions, which copies it, below).
resource "google_storage_bucket_iam_member" "build_reads_source" {
  count = local.create_build_account ? 1 : 0

  bucket = google_storage_bucket_object.source.bucket
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${local.build_service_account}"
}

# The build does not read the archive where the module uploads it: Cloud Functions copies it into
# a source bucket of its own ("After the code is uploaded, function code is stored in a separate
# source bucket", gcf-v2-sources-PROJECT_NUMBER-REGION: https://cloud.google.com/functions/docs/building),
# and the build fetches it from there. A build account that cannot read that bucket fails every
# build with "Access to bucket gcf-v2-sources-... denied. You must grant Storage Object Viewer
# permission to <account>" (the provider's own test of a function built by an account of its own:
# https://github.com/hashicorp/terraform-provider-google/issues/20571). That bucket is created by
# the first deployment, so it cannot be granted on before: the grant is on the project, with a
# condition on the bucket's name and its objects' (Cloud Storage names them
# projects/_/buckets/BUCKET and projects/_/buckets/BUCKET/objects/OBJECT:
# https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name).
resource "google_project_iam_member" "build_reads_function_sources" {
  count = local.create_build_account ? 1 : 0

  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${local.build_service_account}"

  condition {
    title       = "${var.name} build: function sources only"
    description = "Only Cloud Functions' source bucket ${local.function_sources_bucket}, which the build fetches the archive from."
    expression  = "resource.name == \"projects/_/buckets/${local.function_sources_bucket}\" || resource.name.startsWith(\"projects/_/buckets/${local.function_sources_bucket}/\")"
  }
}
