import type { PolicyWarning } from './policy-fit.js';

/**
 * The permissions a governor run needs, and how to grant each one: the predefined role that holds
 * it, and the setting of the Terraform module that grants it (terraform/README.md, "Identities and
 * permissions", is the table this follows). Pure data, for `governor check` and the preflight of
 * every run.
 */

interface PermissionGrant {
  /** The call that needs it. */
  call: string;
  /** A predefined role that holds it (and where to grant it). */
  role: string;
  /** What the Terraform module sets to grant it. */
  terraform: string;
}

const READ_ROLE = "the module's read role, granted in every project of the policy's `projects`";

export const PERMISSION_GRANTS = {
  'run.locations.list': {
    call: 'Locations.ListLocations (when the policy names no regions)',
    role: 'roles/run.viewer on the project',
    terraform: `${READ_ROLE}, which holds it when the policy names no \`regions\``,
  },
  'run.services.list': {
    call: 'Services.ListServices',
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  'run.services.get': {
    call: 'Services.GetService (the read before each write)',
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  'run.revisions.get': {
    call: "Revisions.GetRevision (the serving revisions' own max and GPU, for a service whose latest revision does not serve or that has a revision only tagged, or a worker pool split onto older revisions)",
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  // The same GetRevision on a worker pool's revision: Google names no permission for it
  // (https://cloud.google.com/run/docs/managing/workerpool-revisions names only roles), so the
  // worker pool's own read is granted beside run.revisions.get: Cloud Run Viewer holds both.
  'run.workerpools.get': {
    call: "Revisions.GetRevision on a worker pool's revision (Google names no permission for it: granted beside run.revisions.get)",
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  'run.operations.get': {
    call: 'Operations.GetOperation (waiting for a write)',
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  'run.workerpools.list': {
    call: 'WorkerPools.ListWorkerPools',
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  'run.executions.list': {
    call: 'Executions.ListExecutions (running GPU jobs)',
    role: 'roles/run.viewer on the project',
    terraform: READ_ROLE,
  },
  'monitoring.timeSeries.list': {
    call: 'MetricService.ListTimeSeries',
    role: 'roles/monitoring.viewer on the project',
    terraform: READ_ROLE,
  },
  'monitoring.timeSeries.create': {
    call: "MetricService.CreateTimeSeries (the governor's own metrics, once per run)",
    role: 'roles/monitoring.metricWriter on the project',
    terraform: READ_ROLE,
  },
  // A metric's first write creates its descriptor
  // (https://cloud.google.com/monitoring/custom-metrics/creating-metrics#auto-creation); whether
  // that needs this permission Google does not say, so it is granted as Monitoring Metric Writer
  // grants it beside monitoring.timeSeries.create.
  'monitoring.metricDescriptors.create': {
    call: "MetricService.CreateTimeSeries, the first write of each of the governor's own metrics (which creates its descriptor)",
    role: 'roles/monitoring.metricWriter on the project',
    terraform: READ_ROLE,
  },
  'cloudquotas.quotas.get': {
    call: 'CloudQuotas.GetQuotaInfo (and Get/ListQuotaPreferences, with quotaRequests on)',
    role: 'roles/cloudquotas.viewer on the project',
    terraform: READ_ROLE,
  },
  // https://cloud.google.com/docs/quotas/permissions ("Permissions for changing quota"; the
  // predefined role is Quota Administrator).
  'cloudquotas.quotas.update': {
    call: 'CloudQuotas.CreateQuotaPreference / UpdateQuotaPreference (quotaRequests, opt-in)',
    role: 'the Quota Administrator role, or a custom role holding it, on the project',
    terraform: 'set `quota_requests = true`',
  },
  'run.services.update': {
    call: 'Services.UpdateService (scaling.max_instance_count)',
    role: 'roles/run.developer on the service',
    terraform: 'add the service to `write_access.services` (or set `write_access.project_wide`)',
  },
  'iam.serviceAccounts.actAs': {
    call: 'Services.UpdateService, on the runtime service account',
    role: 'roles/iam.serviceAccountUser on the service’s runtime account',
    terraform:
      'add the runtime account to `governed_service_accounts.emails`; the default compute account is granted while `governed_service_accounts.default_compute_account` is true (the default)',
  },
  'pubsub.topics.publish': {
    call: 'Publisher.Publish (alerts)',
    role: 'roles/pubsub.publisher on the topic',
    terraform:
      'the module grants it on its own alert topic: use `alert_topic_id` as `alerts.topic`',
  },
} as const satisfies Record<string, PermissionGrant>;

export type GovernorPermission = keyof typeof PERMISSION_GRANTS;

/**
 * The permissions a denial's text names: Cloud Run and IAM quote it ("Permission
 * 'run.services.list' denied on resource ...", "Permission 'iam.serviceaccounts.actAs' denied on
 * service account ..."), Monitoring does not ("Permission monitoring.timeSeries.list denied (or
 * the resource may not exist)"); Google's permission errors name "the permission that you need"
 * (https://cloud.google.com/iam/docs/permission-error-messages).
 */
export function permissionsNamedIn(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/[Pp]ermissions? '?([A-Za-z]+(?:\.[A-Za-z]+)+?)'? (?:is )?denied/g))
    if (m[1]) found.add(m[1]);
  return [...found];
}

/**
 * The permission of {@link PERMISSION_GRANTS} a name from Google stands for, whatever its case
 * (IAM writes `iam.serviceaccounts.actAs`); null for one the governor never needs.
 */
export function governorPermission(name: string): GovernorPermission | null {
  const lower = name.toLowerCase();
  const known = Object.keys(PERMISSION_GRANTS) as GovernorPermission[];
  return known.find((p) => p.toLowerCase() === lower) ?? null;
}

/** One line saying how to grant a permission. */
export function howToGrant(permission: GovernorPermission): string {
  const g: PermissionGrant = PERMISSION_GRANTS[permission];
  return `grant ${g.role} (Terraform: ${g.terraform})`;
}

/** What `governor check` found for one thing it checked. */
export interface CheckItem {
  /** What was checked: `project p`, `region p/us-central1`, `service p/r/s`, `topic …`. */
  subject: string;
  /** The permission checked; null for a check of something else (credentials, the topic's existence). */
  permission: GovernorPermission | null;
  /** ok: held; missing: not held (or the call was refused); unverified: cannot be tested here. */
  status: 'ok' | 'missing' | 'unverified' | 'error';
  /** How it was checked, or what went wrong. */
  detail: string;
  /** How to fix a missing one. */
  fix: string | null;
}

export interface CheckReport {
  items: CheckItem[];
  /** Services the policy governs (and so were tested). */
  governed: number;
  /**
   * What the policy says that reaches nothing seen (core/policy-fit.ts): advice, never a failed
   * check. Absent in a report that did not read the fleet.
   */
  warnings?: PolicyWarning[];
}

/** Whether the run can do what it plans: nothing missing and nothing failed. */
export function checkPassed(report: CheckReport): boolean {
  return report.items.every((i) => i.status === 'ok' || i.status === 'unverified');
}

export function missingItem(
  subject: string,
  permission: GovernorPermission,
  detail: string,
): CheckItem {
  return { subject, permission, status: 'missing', detail, fix: howToGrant(permission) };
}

export function okItem(
  subject: string,
  permission: GovernorPermission | null,
  detail: string,
): CheckItem {
  return { subject, permission, status: 'ok', detail, fix: null };
}
