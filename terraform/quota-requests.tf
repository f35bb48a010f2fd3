/**
 * Quota requests (docs/quota-requests.md): the governor may file a QuotaPreference only when
 * var.quota_requests is true. CreateQuotaPreference and UpdateQuotaPreference need
 * cloudquotas.quotas.update on the project
 * (https://cloud.google.com/docs/quotas/reference/rest/v1/folders.locations.quotaPreferences/patch,
 * "IAM Permissions"); reading preferences back (Get/ListQuotaPreferences) uses the read role's
 * cloudquotas.quotas.get (GetQuotaPreference's "IAM Permissions",
 * https://cloud.google.com/docs/quotas/reference/rest/v1/organizations.locations.quotaPreferences/get;
 * the list page we could read names none: a denial is logged and the run goes on).
 */

locals {
  governor_quota_request_permissions = ["cloudquotas.quotas.update"]
  quota_request_projects             = var.quota_requests ? local.governed_projects : toset([])
}

resource "google_project_iam_custom_role" "governor_quota_requests" {
  for_each = local.quota_request_projects

  project     = each.key
  role_id     = "${replace(var.name, "-", "_")}_quota_requests"
  title       = "Cloud Run GPU governor quota requests"
  description = "File GPU quota increase requests for pools under sustained pressure (${var.name})."
  permissions = local.governor_quota_request_permissions
}

resource "google_project_iam_member" "governor_quota_requests" {
  for_each = local.quota_request_projects

  project = each.key
  role    = google_project_iam_custom_role.governor_quota_requests[each.key].id
  member  = local.governor_member
}
