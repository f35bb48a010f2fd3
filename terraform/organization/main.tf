/**
 * The organisation (or folders) variant: one dispatch function that finds the projects and sends
 * one work message per project to the work topic; a push subscription with an OIDC token that
 * delivers each to the unit function, which governs that one project; Pub/Sub retries and, after
 * max_delivery_attempts, a dead-letter topic watched by an alert policy. docs/organization.md
 * draws it and lists what the organisation must grant.
 */

data "google_project" "host" {
  project_id = var.project_id
}

locals {
  # The longest gap, in minutes, between two dispatches of the schedule, read as the
  # single-project module reads its own (terraform/monitoring.tf): 1, N for "*/N", 60 for once an
  # hour, null for the schedules whose gap is not plain, which are not checked.
  schedule_gap_minutes = (
    can(regex("^\\s*\\*(\\s+\\*){4}\\s*$", var.schedule)) ? 1 :
    can(regex("^\\s*\\*/[0-9]+(\\s+\\*){4}\\s*$", var.schedule)) ? (tonumber(regex("^\\s*\\*/([0-9]+)", var.schedule)[0]) >= 60 ? 60 : tonumber(regex("^\\s*\\*/([0-9]+)", var.schedule)[0])) :
    can(regex("^\\s*[0-9]+(\\s+\\*){4}\\s*$", var.schedule)) ? 60 : null
  )
  # The dispatch function's timeout_seconds (function.tf), which bounds when a dispatch answers.
  dispatch_timeout_seconds = 120

  scopes = length(var.folder_ids) == 0 ? ["organizations/${var.organization_id}"] : [for f in var.folder_ids : "folders/${f}"]

  governor_member = "serviceAccount:${google_service_account.governor.email}"
  invoker_member  = "serviceAccount:${google_service_account.invoker.email}"
  # https://cloud.google.com/pubsub/docs/handling-failures#grant_forwarding_permissions
  pubsub_agent = "serviceAccount:service-${data.google_project.host.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # Cloud Functions' own source bucket, which the build fetches the archive from (function.tf).
  function_sources_bucket = "gcf-v2-sources-${data.google_project.host.number}-${var.region}"

  # Exactly what the code calls, in every governed project (the single-project module's read
  # permissions, terraform/iam.tf) plus the search that finds the projects.
  org_read_permissions = [
    "run.locations.list",
    "run.services.list",
    "run.services.get",
    "run.revisions.get",
    "run.operations.get",
    "run.workerpools.get",
    "run.workerpools.list",
    "run.executions.list",
    "monitoring.timeSeries.list",
    "monitoring.timeSeries.create",
    "monitoring.metricDescriptors.create",
    "cloudquotas.quotas.get",
    # Cloud Asset Inventory SearchAllResources, src/adapters/assets.ts, on the organisation or
    # folder searched: https://cloud.google.com/asset-inventory/docs/access-control#required_permissions
    "cloudasset.assets.searchAllResources",
  ]
  # ListLocations (run.locations.list) is called only when the policy names no regions.
  lists_regions = !can(var.policy.regions)
  org_role_read = [for p in local.org_read_permissions : p if local.lists_regions || p != "run.locations.list"]
  # The write only when asked (var.write) and a run may write: the policy enforces, or lets a
  # request ask to (function.allow.enforce); a dry run never calls UpdateService.
  org_may_write = var.write && (try(var.policy.mode, "enforce") != "dry-run" || try(var.policy.function.allow.enforce, false) == true)
  # Services.UpdateService (max instances) needs actAs on the service's runtime account:
  # https://cloud.google.com/run/docs/reference/iam/permissions
  org_write_permissions = ["run.services.update", "iam.serviceAccounts.actAs"]
  # Quota requests (docs/quota-requests.md), only when the policy turns them on: Create and
  # UpdateQuotaPreference need cloudquotas.quotas.update on the project
  # (https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences/create).
  org_quota_request_permissions = try(var.policy.quotaRequests.enabled, false) == true ? ["cloudquotas.quotas.update"] : []
  # In the host project alone (governor_host, below).
  host_permissions = ["serviceusage.services.use"]

  policy = merge(var.policy, {
    version  = 1
    projects = try(var.policy.projects, [])
    discovery = merge(
      length(var.folder_ids) == 0 ? { organization = var.organization_id } : { folders = var.folder_ids },
      var.discovery.include == null ? {} : { include = var.discovery.include },
      { exclude = var.discovery.exclude, cacheTtl = var.discovery.cache_ttl },
      var.discovery.labels == null ? {} : { labels = var.discovery.labels },
    )
    # The policy's own fanout settings (staleAfter, splitAbove) are kept; the topic is the module's.
    fanout = merge(try(var.policy.fanout, {}), { topic = google_pubsub_topic.work.id })
    # Every unit publishes its alerts; without a topic a run's alerts would have nowhere to go.
    alerts = merge({ topic = google_pubsub_topic.alerts.id }, try(var.policy.alerts, {}))
  })

  # GOVERNOR_MAX_DELIVERY_ATTEMPTS: the work subscription's dead_letter_policy (pubsub.tf), from the
  # same variable: the unit alerts governor.degraded when a push's deliveryAttempt reaches it.
  environment = {
    GOVERNOR_POLICY                = jsonencode(local.policy)
    GOVERNOR_STATE_STORE           = "firestore"
    GOVERNOR_FIRESTORE_DATABASE    = google_firestore_database.state.name
    GOVERNOR_RUN_DEADLINE          = "${var.timeout_seconds - 30}s"
    GOVERNOR_MAX_DELIVERY_ATTEMPTS = tostring(var.max_delivery_attempts)
    GOOGLE_CLOUD_PROJECT           = var.project_id
  }
}

# SearchAllResources is made from the host project (the governor's account lives there), whose
# Cloud Asset API must be enabled: "Enable the Cloud Asset Inventory API in the project you're
# running Cloud Asset Inventory commands from" (https://cloud.google.com/asset-inventory/docs/search-resources).
# Without it every dispatch's search is refused (PERMISSION_DENIED, SERVICE_DISABLED) at run time.
resource "google_project_service" "cloudasset" {
  count = var.enable_apis ? 1 : 0

  project                    = var.project_id
  service                    = "cloudasset.googleapis.com"
  disable_on_destroy         = false
  disable_dependent_services = false
}

# Every unit reads its pools' quotas with the Cloud Quotas API (GetQuotaInfo), and files quota
# requests with it when the policy turns them on. For a client-based API the project whose API must
# be enabled is the quota project, for a service account "the project associated with the service
# account" (https://cloud.google.com/docs/quotas/set-quota-project): the host project. Google does
# not say whether Cloud Quotas is client- or resource-based ("Replace PROJECT_ID with the ID of the
# project that needs access to the Cloud Quotas API",
# https://cloud.google.com/docs/quotas/development-environment), so it is enabled here, where it
# costs nothing; a governed project whose own API is disabled is read as an unknown quota
# (docs/organization.md). The single-project module enables it with the others (terraform/main.tf).
resource "google_project_service" "cloudquotas" {
  count = var.enable_apis ? 1 : 0

  project                    = var.project_id
  service                    = "cloudquotas.googleapis.com"
  disable_on_destroy         = false
  disable_dependent_services = false
}

# The search is made from the host project, the governor's account's. Cloud Asset Inventory
# lists serviceusage.services.use among the permissions "required to work with asset metadata",
# beside the Cloud Asset roles (https://cloud.google.com/asset-inventory/docs/roles-permissions),
# and asks it on the project a request is billed to
# (https://cloud.google.com/asset-inventory/docs/configuring-permissions); its per-method table
# names cloudasset.assets.searchAllResources alone for the search
# (https://cloud.google.com/asset-inventory/docs/access-control). Where Google's pages differ the
# module fails safe: the permission is granted, on the host project only, in a role of its own (an
# organisation custom role, as whoever applies may create those already). Every unit's Cloud
# Quotas calls are made from the same project.
resource "google_organization_iam_custom_role" "governor_host" {
  org_id      = var.organization_id
  role_id     = "${replace(var.name, "-", "_")}_host"
  title       = "Cloud Run GPU governor host project (${var.name})"
  description = "Use the APIs enabled in the host project, where the governor's searches and quota reads are made from."
  permissions = local.host_permissions
}

resource "google_project_iam_member" "governor_host" {
  project = var.project_id
  role    = google_organization_iam_custom_role.governor_host.name
  member  = local.governor_member
}

resource "google_service_account" "governor" {
  project      = var.project_id
  account_id   = var.name
  display_name = "Cloud Run GPU governor (organisation)"
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name}-invoker"
  display_name = "Cloud Run GPU governor invoker (scheduler and work push)"
}

# One custom role, at the organisation: custom roles cannot be created on folders.
resource "google_organization_iam_custom_role" "governor" {
  org_id      = var.organization_id
  role_id     = replace(var.name, "-", "_")
  title       = "Cloud Run GPU governor (organisation)"
  description = "Find Cloud Run GPU projects, read their quotas and usage, write GPU services' max instances (${var.name})."
  permissions = concat(local.org_role_read, local.org_may_write ? local.org_write_permissions : [], local.org_quota_request_permissions)
}

resource "google_organization_iam_member" "governor" {
  count = length(var.folder_ids) == 0 ? 1 : 0

  org_id = var.organization_id
  role   = google_organization_iam_custom_role.governor.name
  member = local.governor_member
}

resource "google_folder_iam_member" "governor" {
  for_each = toset(var.folder_ids)

  folder = "folders/${each.value}"
  role   = google_organization_iam_custom_role.governor.name
  member = local.governor_member
}

# The projects the policy lists are governed whatever discovery finds, inside the governed folders
# or not: each gets the role itself (redundant for a project under a grant above it). The
# organisation's custom role is granted on a project as the provider's own example does
# (https://registry.terraform.io/providers/hashicorp/google/latest/docs/data-sources/organization_iam_custom_role).
# Whether Google lets a project of another organisation take it we could not read: if not, the
# apply fails on that project, which is better than every run of it failing on PERMISSION_DENIED.
resource "google_project_iam_member" "governor_listed" {
  for_each = toset(try(var.policy.projects, []))

  project = each.key
  role    = google_organization_iam_custom_role.governor.name
  member  = local.governor_member
}

# The state store: a Firestore database of the governor's own in the host project. Without it the
# functions would use the project's "(default)" database, which a new project does not have (every
# run would fail) and which other applications may share (roles/datastore.user there reaches their
# data). https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/firestore_database
resource "google_firestore_database" "state" {
  project                 = var.project_id
  name                    = var.state.database_id
  location_id             = coalesce(var.state.location_id, var.region)
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.state.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.state.deletion_protection ? "ABANDON" : "DELETE"
}

# The governor reaches that database only, as in the single-project module (terraform/iam.tf).
resource "google_project_iam_member" "state" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.governor_member

  condition {
    title       = "${var.name} state only"
    description = "Only the Firestore database ${google_firestore_database.state.name}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.state.name}\" || resource.name.startsWith(\"projects/${var.project_id}/databases/${google_firestore_database.state.name}/\")"
  }
}
