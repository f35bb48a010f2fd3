import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { DURATION_PATTERN } from '../../src/core/duration.js';
import { parsePolicy } from '../../src/core/policy.js';
import { LEASE_MARGIN_MS } from '../../src/reconcile/reconcile.js';
import { REGION_NAME } from '../../src/core/units.js';
import {
  block,
  evaluateCondition,
  isBody,
  loadConfig,
  resource,
  type Body,
  type Config,
} from './hcl.js';

/** Structural checks of the organisation variant (terraform/organization) and its example. */

let org: Config;
let single: Config;
let example: Config;
beforeAll(async () => {
  [org, single, example] = await Promise.all([
    loadConfig('terraform/organization'),
    loadConfig('terraform'),
    loadConfig('terraform/examples/org-folders'),
  ]);
});

describe('the organisation role', () => {
  it('holds exactly the single-project read permissions, the search, and the write when asked', () => {
    const read = org.locals['org_read_permissions'] as string[];
    const singleRead = single.locals['governor_read_permissions'] as string[];
    expect([...read].sort()).toEqual(
      [...singleRead, 'cloudasset.assets.searchAllResources'].sort(),
    );
    expect(org.locals['org_write_permissions']).toEqual([
      'run.services.update',
      'iam.serviceAccounts.actAs',
    ]);
    const role = resource(org, 'google_organization_iam_custom_role', 'governor');
    expect(role['org_id']).toBe('${var.organization_id}');
    expect(String(role['permissions'])).toBe(
      '${concat(local.org_role_read, local.org_may_write ? local.org_write_permissions : [], local.org_quota_request_permissions)}',
    );
    // The write only when asked and when a run may write (a dry-run policy never calls UpdateService).
    expect(org.locals['org_may_write']).toBe(
      '${var.write && (try(var.policy.mode, "enforce") != "dry-run" || try(var.policy.function.allow.enforce, false) == true)}',
    );
    // run.locations.list only for a policy without regions, the one case that lists them.
    expect(org.locals['lists_regions']).toBe('${!can(var.policy.regions)}');
    expect(org.locals['org_role_read']).toBe(
      '${[for p in local.org_read_permissions : p if local.lists_regions || p != "run.locations.list"]}',
    );
    // The quota request permission only when the policy files quota requests.
    expect(org.locals['org_quota_request_permissions']).toBe(
      '${try(var.policy.quotaRequests.enabled, false) == true ? ["cloudquotas.quotas.update"] : []}',
    );
  });

  it('is granted on each folder, or on the organisation when no folder is named', () => {
    const folder = resource(org, 'google_folder_iam_member', 'governor');
    expect(folder['for_each']).toBe('${toset(var.folder_ids)}');
    expect(folder['role']).toBe('${google_organization_iam_custom_role.governor.name}');
    const whole = resource(org, 'google_organization_iam_member', 'governor');
    expect(whole['count']).toBe('${length(var.folder_ids) == 0 ? 1 : 0}');
    // Nothing broader: no other grant above the host project.
    const above = [...org.resources.keys()].filter((k) =>
      /^google_(organization|folder)_iam_(member|binding|policy)\./.test(k),
    );
    expect(above.sort()).toEqual([
      'google_folder_iam_member.governor',
      'google_organization_iam_member.governor',
    ]);
  });
});

describe("the policy's own projects", () => {
  // A project the policy lists is governed whatever discovery finds (docs/organization.md), and
  // may lie outside the governed folders: without a grant there, every unit of it fails on
  // PERMISSION_DENIED until it is dead-lettered. The organisation's custom role can be granted on
  // any resource of the organisation (https://cloud.google.com/iam/docs/roles-overview#custom).
  it('are each granted the custom role', () => {
    const grant = resource(org, 'google_project_iam_member', 'governor_listed');
    expect(grant['for_each']).toBe('${toset(try(var.policy.projects, []))}');
    expect(grant['project']).toBe('${each.key}');
    expect(grant['role']).toBe('${google_organization_iam_custom_role.governor.name}');
    expect(grant['member']).toBe('${local.governor_member}');
  });

  // Each is a project ID as the policy takes it (src/core/units.ts ProjectId), checked before the
  // grant is planned: a malformed one would otherwise fail the apply midway, or every run.
  it.each([
    [['my-project', 'gpu-team-2'], true],
    [['example.com:legacy-project'], true],
    [[], true],
    [['My Project'], false],
    [['a/b'], false],
    [['-project'], false],
    [['p'.repeat(31)], false],
  ])('%j is accepted at plan time: %s, as the policy takes it', (projects, accepted) => {
    let policyTakes = true;
    try {
      parsePolicy({ version: 1, projects, discovery: { organization: '1' } });
    } catch {
      policyTakes = false;
    }
    expect(policyTakes).toBe(accepted);
    const results = ((org.variables.get('policy')?.['validation'] as Body[]) ?? [])
      .filter((v) => String(v['condition']).includes('var.policy.projects'))
      .map((v) => ({
        ok: evaluateCondition(String(v['condition']), { policy: { projects } }),
        message: String(v['error_message']),
      }));
    expect(results.length).toBe(1);
    expect(results[0]?.ok).toBe(accepted);
    expect(results[0]?.message).toMatch(/^policy\.projects /);
  });
});

describe('the host project', () => {
  // Cloud Asset Inventory lists serviceusage.services.use among what viewing asset metadata
  // requires (https://cloud.google.com/asset-inventory/docs/roles-permissions), on the project a
  // request is billed to (https://cloud.google.com/asset-inventory/docs/configuring-permissions):
  // the search is made from the host project, so it is granted there, alone, and nowhere else.
  it("grants serviceusage.services.use on the host project alone, for the dispatch's search", () => {
    expect(org.locals['host_permissions']).toEqual(['serviceusage.services.use']);
    const role = resource(org, 'google_organization_iam_custom_role', 'governor_host');
    expect(role['org_id']).toBe('${var.organization_id}');
    expect(role['permissions']).toBe('${local.host_permissions}');
    const grant = resource(org, 'google_project_iam_member', 'governor_host');
    expect(grant['project']).toBe('${var.project_id}');
    expect(grant['role']).toBe('${google_organization_iam_custom_role.governor_host.name}');
    expect(grant['member']).toBe('${local.governor_member}');
    expect(grant['for_each']).toBeUndefined();
    // Not in the role granted across the governed scope.
    expect(org.locals['org_read_permissions']).not.toContain('serviceusage.services.use');
    const doc = readFileSync('docs/organization.md', 'utf8');
    expect(doc).toMatch(/`serviceusage\.services\.use`[^|]*\|[^|]*the host project/);
  });

  // Everything the module makes in the host project is made by whoever applies it: the roles
  // terraform/README.md lists for the single-project module's project_id, but Eventarc's (no
  // Pub/Sub trigger here) and iam.roleAdmin (no project-level custom role here).
  it('is documented with the roles whoever applies the module needs there', () => {
    const readme = readFileSync('terraform/README.md', 'utf8');
    const whoDeploys =
      /\*\*Who deploys\.\*\* In `project_id`:([\s\S]*?)In\s+every\s+project\s+of\s+the\s+policy/.exec(
        readme,
      )?.[1];
    expect(whoDeploys).toBeDefined();
    const roles = [...(whoDeploys ?? '').matchAll(/`(roles\/[A-Za-z.]+)`/g)]
      .map((m) => m[1] ?? '')
      .filter((r) => r !== 'roles/eventarc.admin' && r !== 'roles/iam.roleAdmin');
    expect(roles.length).toBeGreaterThan(8);
    const docs = readFileSync('docs/organization.md', 'utf8');
    for (const role of roles) expect(docs, role).toContain(`\`${role}\``);
  });

  it("enables the Cloud Asset API the dispatch's search is made from, unless told not to", () => {
    // https://cloud.google.com/asset-inventory/docs/search-resources: enabled in the project the
    // calls are made from (the governor's account's project), or every search is refused.
    const api = resource(org, 'google_project_service', 'cloudasset');
    expect(api['service']).toBe('cloudasset.googleapis.com');
    expect(api['project']).toBe('${var.project_id}');
    expect(api['count']).toBe('${var.enable_apis ? 1 : 0}');
    expect(api['disable_on_destroy']).toBe(false);
    expect(org.variables.get('enable_apis')?.['default']).toBe(true);
    const dispatch = resource(org, 'google_cloudfunctions2_function', 'dispatch');
    expect(dispatch['depends_on']).toContain('${google_project_service.cloudasset}');
  });

  it('enables the Cloud Quotas API every unit reads quotas with, unless told not to', () => {
    // The units' GetQuotaInfo (src/adapters/quotas.ts) is made as the governor's account, whose
    // project is the quota project of a client-based API
    // (https://cloud.google.com/docs/quotas/set-quota-project); without the API enabled there, every
    // pool's quota could be unknown and nothing ever raised.
    const api = resource(org, 'google_project_service', 'cloudquotas');
    expect(api['service']).toBe('cloudquotas.googleapis.com');
    expect(api['project']).toBe('${var.project_id}');
    expect(api['count']).toBe('${var.enable_apis ? 1 : 0}');
    expect(api['disable_on_destroy']).toBe(false);
    const unit = resource(org, 'google_cloudfunctions2_function', 'unit');
    expect(unit['depends_on']).toContain('${google_project_service.cloudquotas}');
  });
});

describe('the work topic', () => {
  it('pushes to the unit function with an OIDC token, retries, then dead-letters', () => {
    const sub = resource(org, 'google_pubsub_subscription', 'work');
    const push = block(sub, 'push_config');
    expect(push?.['push_endpoint']).toBe(
      '${google_cloudfunctions2_function.unit.service_config[0].uri}',
    );
    const oidc = block(push, 'oidc_token');
    expect(oidc?.['service_account_email']).toBe('${google_service_account.invoker.email}');
    const dlq = block(sub, 'dead_letter_policy');
    expect(dlq?.['dead_letter_topic']).toBe('${google_pubsub_topic.dead_letter.id}');
    expect(dlq?.['max_delivery_attempts']).toBe('${var.max_delivery_attempts}');
    expect(block(sub, 'retry_policy')).toMatchObject({
      minimum_backoff: '${local.work_minimum_backoff}s',
      maximum_backoff: '600s',
    });
    expect(sub['ack_deadline_seconds']).toBe('${var.timeout_seconds}');
  });

  it("spreads the redeliveries over a crashed unit's lease, so its message is not dead-lettered while it stands", () => {
    // The lease a unit takes lives for its run deadline plus LEASE_MARGIN_MS; the module sets the
    // deadline to timeout_seconds - 30 (GOVERNOR_RUN_DEADLINE), so the lease lives
    // timeout_seconds - 30 + 60 seconds.
    const env = org.locals['environment'] as Record<string, string>;
    const deadlineCut = Number(
      /^\$\{var\.timeout_seconds - (\d+)\}s$/.exec(env['GOVERNOR_RUN_DEADLINE'] ?? '')?.[1],
    );
    const beyondTimeout = LEASE_MARGIN_MS / 1000 - deadlineCut;
    expect(beyondTimeout).toBe(30);
    expect(org.locals['work_minimum_backoff']).toBe(
      `\${min(600, max(10, ceil((var.timeout_seconds + ${beyondTimeout}) / (var.max_delivery_attempts - 1))))}`,
    );
    // The same expression over every value the variables' validations allow.
    const backoff = (timeout: number, attempts: number): number =>
      Math.min(600, Math.max(10, Math.ceil((timeout + beyondTimeout) / (attempts - 1))));
    for (let timeout = 60; timeout <= 600; timeout += 1) {
      for (let attempts = 5; attempts <= 100; attempts += 1) {
        const s = backoff(timeout, attempts);
        expect(s).toBeLessThanOrEqual(600);
        // attempts - 1 redeliveries, each at least the minimum backoff after the one before.
        expect((attempts - 1) * s).toBeGreaterThanOrEqual(timeout + beyondTimeout);
      }
    }
    expect(backoff(300, 5)).toBe(83);
  });

  it('tells the unit function the max delivery attempts of the same variable as the dead-letter policy', () => {
    const env = org.locals['environment'] as Record<string, string>;
    expect(env['GOVERNOR_MAX_DELIVERY_ATTEMPTS']).toBe('${tostring(var.max_delivery_attempts)}');
    const dlq = block(resource(org, 'google_pubsub_subscription', 'work'), 'dead_letter_policy');
    expect(dlq?.['max_delivery_attempts']).toBe('${var.max_delivery_attempts}');
    // The unit's environment is that one (its run deadline leaves it time to alert and answer
    // within the function's timeout, which is the subscription's ack deadline).
    const unit = block(resource(org, 'google_cloudfunctions2_function', 'unit'), 'service_config');
    expect(unit?.['environment_variables']).toBe('${local.environment}');
    expect(env['GOVERNOR_RUN_DEADLINE']).toBe('${var.timeout_seconds - 30}s');
    expect(unit?.['timeout_seconds']).toBe('${var.timeout_seconds}');
    // The functions' own project names the trace on their log lines (projects/P/traces/T).
    expect(env['GOOGLE_CLOUD_PROJECT']).toBe('${var.project_id}');
  });

  it('keeps its state in a Firestore database it creates, reached through a condition on its name', () => {
    // Without GOVERNOR_FIRESTORE_DATABASE the functions use "(default)", which a new host project
    // does not have and which other applications may share.
    const db = resource(org, 'google_firestore_database', 'state');
    expect(db['type']).toBe('FIRESTORE_NATIVE');
    expect(db['name']).toBe('${var.state.database_id}');
    const env = org.locals['environment'] as Record<string, string>;
    expect(env['GOVERNOR_FIRESTORE_DATABASE']).toBe('${google_firestore_database.state.name}');
    const grant = resource(org, 'google_project_iam_member', 'state');
    expect(grant['role']).toBe('roles/datastore.user');
    expect(String(block(grant, 'condition')?.['expression'])).toContain(
      'resource.name == "projects/${var.project_id}/databases/${google_firestore_database.state.name}"',
    );
    const id = /regex\("([^"]+)"/.exec(
      String((org.variables.get('state')?.['validation'] as Body[])[0]?.['condition']),
    )?.[1];
    expect(id).toBeDefined();
    expect(new RegExp(JSON.parse(`"${id}"`) as string).test('(default)')).toBe(false);
    expect(new RegExp(JSON.parse(`"${id}"`) as string).test('gpu-governor-org')).toBe(true);
  });

  it("lets Pub/Sub's service agent forward dead letters, and alerts on them", () => {
    const pub = resource(org, 'google_pubsub_topic_iam_member', 'agent_publishes_dead_letters');
    expect(pub).toMatchObject({ role: 'roles/pubsub.publisher', member: '${local.pubsub_agent}' });
    const sub = resource(org, 'google_pubsub_subscription_iam_member', 'agent_subscribes_work');
    expect(sub).toMatchObject({ role: 'roles/pubsub.subscriber', member: '${local.pubsub_agent}' });
    const alert = resource(org, 'google_monitoring_alert_policy', 'dead_letters');
    // Without channels an alert policy only opens incidents in the console: nobody is told.
    expect(alert['notification_channels']).toBe('${var.notification_channels}');
    const channels = (org.variables.get('notification_channels')?.['validation'] as Body[])[0];
    const channel = /regex\("((?:[^"\\]|\\.)*)"/.exec(String(channels?.['condition']))?.[1];
    const singleChannel = /regex\("((?:[^"\\]|\\.)*)"/.exec(
      String(
        (single.variables.get('monitoring')?.['validation'] as Body[])
          .map((v) => String(v['condition']))
          .find((c) => c.includes('notification_channels')),
      ),
    )?.[1];
    expect(channel).toBeDefined();
    expect(channel).toBe(singleChannel);
    const cond = block(alert, 'conditions');
    const filter = String(block(cond, 'condition_threshold')?.['filter']);
    expect(filter).toContain('subscription/num_undelivered_messages');
    // The module's own subscription, not a namesake in another project of the metrics scope.
    expect(filter).toContain('resource.labels.project_id = "${var.project_id}"');
  });
});

describe('the alert topic', () => {
  // Topic.message_retention_duration: "If this field is set, messages published to the topic in
  // the last message_retention_duration are always available to subscribers. For instance, it
  // allows any attached subscription to seek to a timestamp that is up to
  // message_retention_duration in the past. If this field is not set, message retention is
  // controlled by settings on individual subscriptions"
  // (https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics). The module makes no
  // subscription on it: without retention, whatever the units alert before one is made is lost.
  it("keeps the units' alerts as long as the single-project module's topic does", () => {
    const topic = resource(org, 'google_pubsub_topic', 'alerts');
    const singleDefault = /message_retention_duration\s*=\s*optional\(string, "(\d+s)"\)/.exec(
      String(single.variables.get('alerts')?.['type']),
    )?.[1];
    expect(singleDefault).toBe('604800s');
    expect(topic['message_retention_duration']).toBe(singleDefault);
  });
});

describe('the dispatch job', () => {
  // RetryConfig.retry_count: "The default value of retry_count is zero. If retry_count is zero, a
  // job attempt will not be retried if it fails. Instead the Cloud Scheduler system will wait for
  // the next scheduled execution time"
  // (https://cloud.google.com/php/docs/reference/cloud-scheduler/1.10.0/V1.RetryConfig). A retry
  // would send every work message again while the first ones' units still hold their leases: each
  // such delivery fails (lease held) and spends one of its max_delivery_attempts.
  it('is not retried by Cloud Scheduler, and the docs say that the next dispatch is the retry', () => {
    const job = resource(org, 'google_cloud_scheduler_job', 'dispatch');
    expect(block(job, 'retry_config')?.['retry_count']).toBe(0);
    const docs = readFileSync('docs/organization.md', 'utf8');
    expect(docs).not.toMatch(/Scheduler's retry/);
    expect(docs).toMatch(/the next\s+scheduled\s+dispatch\s+sends\s+every\s+message\s+again/);
  });

  // The job sets no attempt deadline, so an HTTP target's default applies: "For HTTP targets, the
  // default is 3 minutes" (Job.attempt_deadline,
  // https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Scheduler.V1/latest/Google.Cloud.Scheduler.V1.Job).
  // The dispatch's timeout stays inside it, and leaves room after its search, which src/function/org.ts
  // bounds at 60 s ("at most 60 s of the dispatch's 120 s timeout"): a longer timeout would have
  // the job give up on a dispatch still sending its messages and count it failed.
  it("answers within the job's default attempt deadline, with time after its search", () => {
    const job = resource(org, 'google_cloud_scheduler_job', 'dispatch');
    expect(job['attempt_deadline']).toBeUndefined();
    const timeout = block(
      resource(org, 'google_cloudfunctions2_function', 'dispatch'),
      'service_config',
    )?.['timeout_seconds'];
    expect(typeof timeout).toBe('number');
    expect(timeout as number).toBeLessThan(180);
    expect(timeout as number).toBeGreaterThan(60);
    expect(readFileSync('src/function/org.ts', 'utf8')).toContain(
      `at most 60 s of the dispatch's ${String(timeout)} s timeout`,
    );
  });
});

describe('the refusals metric the units read in every governed project', () => {
  // Each unit reads logging.googleapis.com/user/gpu_governor_refused_requests in its project
  // (src/adapters/monitoring.ts); where it is not defined Monitoring knows no such metric, the
  // 429s stay unknown and every run raises governor.degraded. The single-project module defines
  // it in each governed project (signals.tf); the organisation's projects are found at run time.
  it('is defined by the module in the projects it is given, exactly as signals.tf defines it', () => {
    const mine = resource(org, 'google_logging_metric', 'refused_requests');
    const theirs = resource(single, 'google_logging_metric', 'refused_requests');
    expect(mine['for_each']).toBe('${toset(var.refusals_metric_projects)}');
    expect(mine['project']).toBe('${each.key}');
    for (const field of ['name', 'filter', 'metric_descriptor']) {
      expect(mine[field], field).toEqual(theirs[field]);
    }
    const variable = org.variables.get('refusals_metric_projects');
    expect(variable?.['default']).toEqual([]);
    const condition = String((variable?.['validation'] as Body[])[0]?.['condition']);
    const pattern = /regex\("((?:[^"\\]|\\.)*)"/.exec(condition)?.[1];
    const singleProject = /regex\("((?:[^"\\]|\\.)*)"/.exec(
      String((single.variables.get('project_id')?.['validation'] as Body[])[0]?.['condition']),
    )?.[1];
    expect(pattern).toBe(singleProject);
  });

  it('is documented for the projects discovery finds, with the same filter', () => {
    const filter = String(resource(single, 'google_logging_metric', 'refused_requests')['filter']);
    for (const file of ['docs/organization.md', 'terraform/organization/README.md']) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).toContain('gpu_governor_refused_requests');
      expect(text, file).toContain('refusals_metric_projects');
    }
    const docs = readFileSync('docs/organization.md', 'utf8');
    expect(docs).toContain(`--log-filter='${filter}'`);
    expect(docs).toMatch(/roles\/logging\.configWriter/);
  });
});

describe('a dispatch that stops', () => {
  // The organisation's projects are found at run time: the module has no per-project "has not
  // run" policy as the single-project module does (monitoring.tf). What it can watch is the
  // dispatch: a metric-absence condition (https://cloud.google.com/monitoring/alerts/metric-absence)
  // on its answers that succeeded.
  it('fires an alert policy when the dispatch has answered no 2xx for the given minutes', () => {
    const policy = resource(org, 'google_monitoring_alert_policy', 'dispatch_not_running');
    expect(policy['count']).toBe('${var.dispatch_absent_minutes == null ? 0 : 1}');
    expect(policy['project']).toBe('${var.project_id}');
    expect(policy['notification_channels']).toBe('${var.notification_channels}');
    const absent = block(block(policy, 'conditions'), 'condition_absent');
    const filter = String(absent?.['filter']);
    expect(filter).toContain('metric.type = "run.googleapis.com/request_count"');
    expect(filter).toContain('resource.type = "cloud_run_revision"');
    expect(filter).toContain(
      'resource.labels.service_name = "${google_cloudfunctions2_function.dispatch.name}"',
    );
    expect(filter).toContain('metric.labels.response_code_class = "2xx"');
    // Its own project's dispatch only: a policy reads every project of its metrics scope
    // (https://cloud.google.com/monitoring/settings).
    expect(filter).toContain('resource.labels.project_id = "${var.project_id}"');
    expect(absent?.['duration']).toBe('${var.dispatch_absent_minutes * 60}s');
    // A redeploy starts a new revision, whose series replaces the old one's: absence is judged
    // per series, so the revisions' series are combined into one first.
    expect(block(absent, 'aggregations')).toMatchObject({
      cross_series_reducer: 'REDUCE_SUM',
      group_by_fields: ['resource.label.service_name'],
    });
    // The same bounds as the single-project module's not_running_minutes.
    const mine = (org.variables.get('dispatch_absent_minutes')?.['validation'] as Body[])[0];
    const theirs = (single.variables.get('monitoring')?.['validation'] as Body[])[0];
    expect(String(mine?.['condition'])).toContain('>= 10');
    expect(String(mine?.['condition'])).toContain('<= 1410');
    expect(String(theirs?.['condition'])).toContain('<= 1410');
    expect(org.variables.get('dispatch_absent_minutes')?.['default']).toBe(20);
  });

  // A metric-absence condition is met when its series has had no point for its duration
  // (https://cloud.google.com/monitoring/alerts/metric-absence): between two healthy dispatches
  // lie the schedule's gap and up to the dispatch's timeout, so a shorter absence fires between them.
  it('refuses at plan time an absence no longer than a healthy pause between dispatches', () => {
    const policy = resource(org, 'google_monitoring_alert_policy', 'dispatch_not_running');
    const preconditions =
      (block(policy, 'lifecycle')?.['precondition'] as Body[] | undefined) ?? [];
    expect(preconditions.length).toBeGreaterThan(0);
    const timeout = block(
      resource(org, 'google_cloudfunctions2_function', 'dispatch'),
      'service_config',
    )?.['timeout_seconds'];
    expect(timeout).toBe(120);
    expect(org.locals['dispatch_timeout_seconds']).toBe(timeout);
    const accepted = (schedule: string, minutes: number) => {
      const gap = evaluateCondition(String(org.locals['schedule_gap_minutes']), { schedule });
      return preconditions.every(
        (c) =>
          evaluateCondition(String(c['condition']), {
            dispatch_absent_minutes: minutes,
            local: { schedule_gap_minutes: gap, dispatch_timeout_seconds: timeout },
          }) === true,
      );
    };
    expect(accepted('*/5 * * * *', 20)).toBe(true);
    expect(accepted('*/15 * * * *', 20)).toBe(true);
    expect(accepted('*/30 * * * *', 20)).toBe(false);
    expect(accepted('0 * * * *', 20)).toBe(false);
    expect(accepted('0 * * * *', 63)).toBe(true);
    expect(accepted('0 6 * * *', 20)).toBe(true);
    // The same reading of the schedule as the single-project module's.
    expect(org.locals['schedule_gap_minutes']).toBe(single.locals['schedule_gap_minutes']);
    expect(String(preconditions[0]?.['error_message'])).toContain('dispatch_absent_minutes');
  });

  it('and the docs no longer promise a "has not run" policy in an organisation deployment', () => {
    const docs = readFileSync('docs/organization.md', 'utf8');
    expect(docs).not.toMatch(/If every unit of a project stops, the "has not run" policy fires/);
    expect(docs).toContain('dispatch_absent_minutes');
  });
});

describe("the functions' memory and CPU", () => {
  // ServiceConfig.available_memory: "Defaults to 256M"; available_cpu: "Default value is
  // calculated from available memory"
  // (https://cloud.google.com/php/docs/reference/cloud-functions/latest/V2.ServiceConfig). A unit
  // is a whole governor run of a project, which docs/performance.md measured at 238 MiB peak for
  // 1,000 services and 343 MiB for 10,000: the single-project module gives it 512Mi and 1 vCPU.
  it('give each unit what a single-project run gets, not the API defaults', () => {
    const unit = block(resource(org, 'google_cloudfunctions2_function', 'unit'), 'service_config');
    expect(unit?.['available_memory']).toBe('${var.unit_memory}');
    expect(unit?.['available_cpu']).toBe('1');
    const type = String(single.variables.get('function')?.['type']);
    expect(type).toContain('available_memory = optional(string, "512Mi")');
    expect(type).toContain('available_cpu    = optional(string, "1")');
    expect(org.variables.get('unit_memory')?.['default']).toBe('512Mi');
    const pattern = (config: Config, name: string) =>
      /regex\("((?:[^"\\]|\\.)*)"/.exec(
        String(
          ((config.variables.get(name)?.['validation'] as Body[]) ?? [])
            .map((v) => String(v['condition']))
            .find((c) => c.includes('memory')),
        ),
      )?.[1];
    expect(pattern(org, 'unit_memory')).toBeDefined();
    expect(pattern(org, 'unit_memory')).toBe(pattern(single, 'function'));
    const dispatch = block(
      resource(org, 'google_cloudfunctions2_function', 'dispatch'),
      'service_config',
    );
    expect(dispatch).toMatchObject({ available_memory: '512Mi', available_cpu: '1' });
  });
  // The unit function runs with 1 vCPU, and Cloud Run refuses more than 4 GiB of memory with
  // fewer than 2 vCPUs (https://cloud.google.com/run/docs/configuring/services/memory-limits,
  // "Required minimum CPUs"), nor less than 128 MiB ("Minimum memory", same page): such a
  // unit_memory would fail the apply after the build.
  it.each([
    ['512Mi', true],
    ['4Gi', true],
    ['4096Mi', true],
    ['4294M', true],
    ['4G', true],
    ['8Gi', false],
    ['4097Mi', false],
    ['4295M', false],
    ['5G', false],
    ['1Ti', false],
    ['128Mi', true],
    ['127Mi', false],
    ['0Mi', false],
    ['100M', false],
  ])('unit_memory %s is accepted: %s, as Cloud Run takes it with 1 vCPU', (memory, accepted) => {
    expect(
      block(resource(org, 'google_cloudfunctions2_function', 'unit'), 'service_config'),
    ).toMatchObject({ available_cpu: '1' });
    const results = ((org.variables.get('unit_memory')?.['validation'] as Body[]) ?? []).map(
      (v) => ({
        ok: evaluateCondition(String(v['condition']), { unit_memory: memory }),
        message: String(v['error_message']),
      }),
    );
    expect(results.every((r) => r.ok === true)).toBe(accepted);
    for (const r of results.filter((r) => r.ok !== true)) {
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/^unit_memory /);
    }
  });
});

describe('subscriptions', () => {
  // Subscription.expiration_policy: "If `expiration_policy` is not set, a *default policy* with
  // `ttl` of 31 days will be used ... If `expiration_policy` is set, but `expiration_policy.ttl`
  // is not set, the subscription never expires" (google/pubsub/v1/pubsub.proto;
  // https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions). A
  // subscription that only keeps dead letters has no subscriber, so it would be deleted after 31
  // quiet days: the dead letters then go to a topic without subscriptions (dropped) and the alert
  // policy watching the subscription never fires.
  it('never expire, in either module', () => {
    for (const config of [single, org]) {
      const subscriptions = [...config.resources].filter(([key]) =>
        key.startsWith('google_pubsub_subscription.'),
      );
      expect(subscriptions.length, config.dir).toBeGreaterThan(0);
      for (const [key, body] of subscriptions) {
        expect(block(body, 'expiration_policy'), `${config.dir}: ${key}`).toEqual({ ttl: '' });
      }
    }
  });
});

describe('the functions', () => {
  it('bound the concurrency: one dispatch, unit_concurrency units of one request each', () => {
    const dispatch = block(
      resource(org, 'google_cloudfunctions2_function', 'dispatch'),
      'service_config',
    );
    expect(dispatch).toMatchObject({ max_instance_count: 1, max_instance_request_concurrency: 1 });
    const unit = resource(org, 'google_cloudfunctions2_function', 'unit');
    expect(block(unit, 'build_config')?.['entry_point']).toBe('governorUnit');
    expect(block(unit, 'service_config')).toMatchObject({
      max_instance_count: '${var.unit_concurrency}',
      max_instance_request_concurrency: 1,
    });
    expect(
      block(resource(org, 'google_cloudfunctions2_function', 'dispatch'), 'build_config')?.[
        'entry_point'
      ],
    ).toBe('governorDispatch');
  });

  // Since July 2024 a new project's default Cloud Build account may lack what a function build
  // needs (https://cloud.google.com/functions/docs/securing/build-custom-sa), and it is the default
  // compute account: both functions build as an account of their own, as in terraform/.
  it('build as an account of their own, into an image repository of their own', () => {
    for (const name of ['dispatch', 'unit']) {
      const build = block(resource(org, 'google_cloudfunctions2_function', name), 'build_config');
      expect(build?.['service_account'], name).toBe('${google_service_account.build.id}');
      expect(build?.['docker_repository'], name).toBe(
        '${google_artifact_registry_repository.function.id}',
      );
    }
    expect(resource(org, 'google_service_account', 'build')['account_id']).toBe(
      '${var.name}-build',
    );
    expect(resource(org, 'google_artifact_registry_repository', 'function')['format']).toBe(
      'DOCKER',
    );
    // The roles Google documents for a function's build account
    // (https://cloud.google.com/run/docs/configuring/services/build-service-account), each on the
    // one resource it needs, as the single-project module grants them.
    const member = 'serviceAccount:${google_service_account.build.email}';
    expect(resource(org, 'google_project_iam_member', 'build_logs')).toMatchObject({
      role: 'roles/logging.logWriter',
      member,
    });
    expect(
      resource(org, 'google_artifact_registry_repository_iam_member', 'build_writes_images'),
    ).toMatchObject({
      repository: '${google_artifact_registry_repository.function.name}',
      role: 'roles/artifactregistry.writer',
      member,
    });
    expect(resource(org, 'google_storage_bucket_iam_member', 'build_reads_source')).toMatchObject({
      bucket: '${google_storage_bucket.source.name}',
      role: 'roles/storage.objectAdmin',
      member,
    });
    for (const name of ['dispatch', 'unit']) {
      const deps = resource(org, 'google_cloudfunctions2_function', name)['depends_on'];
      for (const binding of [
        'google_project_iam_member.build_logs',
        'google_artifact_registry_repository_iam_member.build_writes_images',
        'google_storage_bucket_iam_member.build_reads_source',
      ]) {
        expect(deps, `${name} waits for ${binding}`).toContain(`\${${binding}}`);
      }
    }
  });

  // As in the single-project module (terraform/iam.tf): the build fetches the archive from Cloud
  // Functions' own source bucket (https://cloud.google.com/functions/docs/building).
  it("the build account reads Cloud Functions' source bucket, through a condition on its name", () => {
    expect(org.locals['function_sources_bucket']).toBe(
      'gcf-v2-sources-${data.google_project.host.number}-${var.region}',
    );
    const binding = resource(org, 'google_project_iam_member', 'build_reads_function_sources');
    expect(binding).toMatchObject({
      project: '${var.project_id}',
      role: 'roles/storage.objectViewer',
      member: 'serviceAccount:${google_service_account.build.email}',
    });
    expect(block(binding, 'condition')?.['expression']).toBe(
      'resource.name == "projects/_/buckets/${local.function_sources_bucket}" || resource.name.startsWith("projects/_/buckets/${local.function_sources_bucket}/")',
    );
    for (const name of ['dispatch', 'unit'])
      expect(resource(org, 'google_cloudfunctions2_function', name)['depends_on']).toContain(
        '${google_project_iam_member.build_reads_function_sources}',
      );
  });

  // The unit is told timeout_seconds - 30 as GOVERNOR_RUN_DEADLINE and max_delivery_attempts as
  // GOVERNOR_MAX_DELIVERY_ATTEMPTS, both whole numbers only: a fraction would pass the plan and
  // then fail every unit run on its configuration.
  it.each([
    ['timeout_seconds', 300, true],
    ['timeout_seconds', 300.5, false],
    ['max_delivery_attempts', 5, true],
    ['max_delivery_attempts', 5.5, false],
    ['unit_concurrency', 20, true],
    ['unit_concurrency', 2.5, false],
  ])('%s = %s is accepted: %s (whole numbers only)', (name, value, accepted) => {
    const results = ((org.variables.get(name)?.['validation'] as Body[]) ?? []).map((v) => ({
      ok: evaluateCondition(String(v['condition']), { [name]: value }),
      message: String(v['error_message']),
    }));
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((r) => r.ok === true)).toBe(accepted);
    for (const r of results.filter((r) => r.ok !== true)) {
      expect(r.ok).toBe(false);
      expect(r.message.startsWith(`${name} `)).toBe(true);
    }
    if (name === 'timeout_seconds' && accepted) {
      expect(DURATION_PATTERN.test(`${value - 30}s`)).toBe(true);
    }
  });

  it('rejects a delivery-attempt count Pub/Sub would refuse', () => {
    const v = org.variables.get('max_delivery_attempts') as Body;
    const validation = (v['validation'] as Body[])[0];
    expect(String(validation?.['condition'])).toContain('>= 5');
    expect(String(validation?.['condition'])).toContain('<= 100');
  });
});

describe('examples/org-folders', () => {
  it('is a complete root module: pins Terraform and the provider like the module, configures it', () => {
    const tf = example.terraform[0];
    expect(tf?.['required_version']).toBe(org.terraform[0]?.['required_version']);
    expect(block(tf, 'required_providers')?.['google']).toEqual(
      block(org.terraform[0], 'required_providers')?.['google'],
    );
    expect(example.providers.has('google')).toBe(true);
    const text = [...example.text.values()].join('\n');
    for (const m of text.matchAll(/\bvar\.([a-z_][a-z0-9_]*)/g)) {
      expect(example.variables.has(m[1] ?? ''), m[0]).toBe(true);
    }
    for (const [variable, body] of example.variables) {
      expect(body['type'], variable).toBeDefined();
      expect(body['description'], variable).toBeDefined();
    }
  });

  it('governs the folders it is given through the organisation module', () => {
    const mod = example.modules.get('gpu_governor_org');
    expect(mod?.['source']).toBe('../../organization');
    // The folders are the user's own: a made-up default would fail the apply halfway, at the
    // first grant on a folder that does not exist.
    const folders = example.variables.get('folder_ids');
    expect(folders).toBeDefined();
    expect(folders && 'default' in folders).toBe(false);
    expect(String(folders?.['type'])).toBe('${list(string)}');
    for (const key of Object.keys(mod ?? {}).filter((k) => k !== 'source'))
      expect(org.variables.has(key), key).toBe(true);
    for (const [name, v] of org.variables)
      if (!('default' in v)) expect(mod, name).toHaveProperty(name);
  });
});

/**
 * The policy the organisation module hands the functions (GOVERNOR_POLICY), as its `policy` local
 * assembles it from the module's inputs. There is no terraform binary here, so the expression is
 * mirrored below, and the test first checks that the module's text is still that expression.
 */
const POLICY_EXPRESSION = `merge(var.policy, {
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
  })`;

interface OrgInputs {
  projectId: string;
  name: string;
  organizationId: string;
  folderIds: string[];
  policy: Body;
  /** The module's `discovery` variable as given (its optional attributes' defaults applied here). */
  discovery: Body;
}

function assembledPolicy(i: OrgInputs): Body {
  const d = i.discovery;
  return {
    ...i.policy,
    version: 1,
    projects: i.policy['projects'] ?? [],
    discovery: {
      ...(i.folderIds.length === 0 ? { organization: i.organizationId } : { folders: i.folderIds }),
      ...(d['include'] == null ? {} : { include: d['include'] }),
      exclude: d['exclude'] ?? [],
      cacheTtl: d['cache_ttl'] ?? '1h',
      ...(d['labels'] == null ? {} : { labels: d['labels'] }),
    },
    // google_pubsub_topic's id is projects/{{project}}/topics/{{name}} (the provider's import id).
    fanout: {
      ...(isBody(i.policy['fanout']) ? i.policy['fanout'] : {}),
      topic: `projects/${i.projectId}/topics/${i.name}-work`,
    },
    alerts: {
      topic: `projects/${i.projectId}/topics/${i.name}-alerts`,
      ...(isBody(i.policy['alerts']) ? i.policy['alerts'] : {}),
    },
  };
}

describe('the policy the organisation module assembles', () => {
  const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
  const validate = () => {
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    return ajv.compile(JSON.parse(readFileSync('schema/policy.schema.json', 'utf8')) as object);
  };

  it('is still the expression mirrored here', () => {
    expect(squash(String(org.locals['policy']))).toBe(squash(`\${${POLICY_EXPRESSION}}`));
    expect(org.variables.get('name')?.['default']).toBe('gpu-governor-org');
    expect(resource(org, 'google_pubsub_topic', 'work')['name']).toBe('${var.name}-work');
  });

  it("validates against the policy schema with examples/org-folders' inputs", () => {
    const mod = example.modules.get('gpu_governor_org') ?? {};
    expect(isBody(mod['policy'])).toBe(true);
    const policy = assembledPolicy({
      projectId: 'gpu-host',
      name: String(org.variables.get('name')?.['default']),
      organizationId: '123456789012',
      // The folder numbers the example's description gives (it has no default).
      folderIds: ['111111111111', '222222222222', '333333333333'],
      policy: mod['policy'] as Body,
      discovery: mod['discovery'] as Body,
    });
    const check = validate();
    expect(check(policy), JSON.stringify(check.errors)).toBe(true);
    const parsed = parsePolicy(policy);
    expect(parsed.discovery?.folders).toEqual(['111111111111', '222222222222', '333333333333']);
    expect(parsed.discovery?.exclude).toEqual(['*-sandbox']);
    expect(parsed.fanout?.topic).toBe('projects/gpu-host/topics/gpu-governor-org-work');
    // The units' alerts go to the module's topic, on which the governor may publish.
    expect(parsed.alerts?.topic).toBe('projects/gpu-host/topics/gpu-governor-org-alerts');
    expect(resource(org, 'google_pubsub_topic', 'alerts')['name']).toBe('${var.name}-alerts');
    const grant = resource(org, 'google_pubsub_topic_iam_member', 'governor_publishes_alerts');
    expect(grant['topic']).toBe('${google_pubsub_topic.alerts.name}');
    expect(grant['role']).toBe('roles/pubsub.publisher');
    expect(grant['member']).toBe('${local.governor_member}');
    expect(parsed.mode).toBe('dry-run');
  });

  it('validates for the whole organisation, with every discovery filter, and with quota requests', () => {
    const check = validate();
    for (const [folderIds, discovery, policy] of [
      [[], {}, {}],
      [
        ['42'],
        { include: ['ml-*'], exclude: [], labels: { team: 'search' }, cache_ttl: '15m' },
        { alerts: { topic: 'projects/gpu-host/topics/alerts' } },
      ],
      [[], {}, { fanout: { splitAbove: 40, staleAfter: '20m' }, services: [{ match: {} }] }],
      [
        [],
        {},
        {
          services: [{ match: {} }],
          quotaRequests: { enabled: true, contactEmail: 'gpu@example.com', maxIncrease: 8 },
        },
      ],
    ] as [string[], Body, Body][]) {
      const assembled = assembledPolicy({
        projectId: 'gpu-host',
        name: 'gpu-governor-org',
        organizationId: '123456789012',
        folderIds,
        policy,
        discovery,
      });
      expect(check(assembled), JSON.stringify(check.errors)).toBe(true);
      expect(() => parsePolicy(assembled)).not.toThrow();
      // What the policy says of the fan-out reaches the functions; only the topic is the module's.
      const fanout = isBody(policy['fanout']) ? policy['fanout'] : {};
      expect(parsePolicy(assembled).fanout).toMatchObject({
        ...fanout,
        topic: 'projects/gpu-host/topics/gpu-governor-org-work',
      });
    }
  });

  it('refuses at plan time a policy the module would silently rewrite, or one that is not an object', () => {
    const conditions = (
      (org.variables.get('policy')?.['validation'] as Body[] | undefined) ?? []
    ).map((v): [string, string] => [String(v['condition']), String(v['error_message'])]);
    const about = (what: RegExp) => conditions.find(([c]) => what.test(c));
    // YAML or JSON text would fail merge() with a message that does not name the variable.
    expect(about(/can\(keys\(var\.policy\)\)/)?.[1]).toMatch(/^policy must be an object/);
    // discovery comes from organization_id, folder_ids and the discovery variable.
    expect(about(/var\.policy\.discovery/)?.[1]).toMatch(/discovery variable/);
    // fanout.topic is the module's work topic.
    expect(about(/var\.policy\.fanout\.topic/)?.[1]).toMatch(/work topic/);
    expect(about(/var\.policy\.version/)?.[1]).toMatch(/version/);
  });

  // The policy refuses an empty regions list (src/core/policy.ts), so every unit run would fail on
  // it: refused at plan time, as the single-project module does.
  // Nor does it take a region name that is no Cloud Run region's (RegionName in src/core/units.ts).
  it.each([
    [['us-central1'], true],
    [['us-central1', 'europe-west4', 'northamerica-northeast1'], true],
    [[], false],
    [['US'], false],
    [['us-central1-a'], false],
    [['us-central1', 'projects/p/locations/us-east1'], false],
  ])('policy.regions %j is accepted: %s', (regions, accepted) => {
    const parse = () => parsePolicy({ version: 1, projects: ['p-000001'], regions });
    if (accepted) expect(parse).not.toThrow();
    else expect(parse).toThrow(/regions/);
    const results = ((org.variables.get('policy')?.['validation'] as Body[]) ?? [])
      .filter((v) => /\.regions/.test(String(v['condition'])))
      .map((v) => ({
        ok: evaluateCondition(String(v['condition']), { policy: { regions } }),
        message: String(v['error_message']),
      }));
    expect(results.length).toBe(1);
    expect(results[0]?.ok).toBe(accepted);
    expect(results[0]?.message).toMatch(/^policy\.regions/);
    // The policy's own pattern, which Terraform's RE2 takes as it is.
    const condition = ((org.variables.get('policy')?.['validation'] as Body[]) ?? [])
      .map((v) => String(v['condition']))
      .find((c) => c.includes('.regions'));
    expect(condition).toContain(`regex("${REGION_NAME.source}", r)`);
  });
});

describe('the variables', () => {
  const validationsOf = (config: Config, name: string): Body[] =>
    (config.variables.get(name)?.['validation'] as Body[] | undefined) ?? [];
  const patternOf = (config: Config, name: string, index = 0): string => {
    const m = /regex\("((?:[^"\\]|\\.)*)"/.exec(
      String(validationsOf(config, name)[index]?.['condition']),
    );
    if (m?.[1] === undefined) throw new Error(`${name}: no regex in its validation`);
    return JSON.parse(`"${m[1]}"`) as string;
  };

  it('check the project, the region and the schedule as the single-project module does', () => {
    for (const name of ['project_id', 'region', 'schedule']) {
      expect(validationsOf(org, name).length, name).toBeGreaterThan(0);
      expect(patternOf(org, name), name).toBe(patternOf(single, name));
      expect(String(validationsOf(org, name)[0]?.['error_message']), name).toMatch(
        new RegExp(`^${name} `),
      );
    }
  });

  it('check discovery.labels and discovery.include as the policy does, at plan time', () => {
    // The policy refuses labels no Cloud Run resource can carry and an empty include (either
    // would find no project); the module refuses them before deploying a dispatch that fails.
    const conditions = validationsOf(org, 'discovery').map((v) => String(v['condition']));
    const index = (what: RegExp) => conditions.findIndex((c) => what.test(c));
    const accepted = (discovery: Record<string, unknown>) => {
      try {
        parsePolicy({ version: 1, discovery: { organization: '1', ...discovery } });
        return true;
      } catch {
        return false;
      }
    };
    const keyAt = index(/keys\(coalesce\(var\.discovery\.labels, \{\}\)\)/);
    const valueAt = index(/values\(coalesce\(var\.discovery\.labels, \{\}\)\)/);
    expect(keyAt).toBeGreaterThan(-1);
    expect(valueAt).toBeGreaterThan(-1);
    const key = new RegExp(patternOf(org, 'discovery', keyAt), 'u');
    const value = new RegExp(patternOf(org, 'discovery', valueAt), 'u');
    for (const k of [
      'team',
      'équipe',
      'a_b-c',
      'k'.repeat(63),
      'Team',
      '1team',
      'a.b',
      'k'.repeat(64),
    ]) {
      expect(key.test(k), k).toBe(accepted({ labels: { [k]: 'v' } }));
    }
    for (const v of ['', 'on', 'données', 'v'.repeat(63), 'Gold', 'a/b', 'v'.repeat(64)]) {
      expect(value.test(v), v).toBe(accepted({ labels: { team: v } }));
    }
    expect(
      conditions.some((c) => c.includes('length(coalesce(var.discovery.labels, {})) <= 64')),
    ).toBe(true);
    expect(
      accepted({ labels: Object.fromEntries([...Array(65).keys()].map((i) => [`k${i}`, 'v'])) }),
    ).toBe(false);
    expect(conditions.some((c) => c.includes('try(length(var.discovery.include) > 0, true)'))).toBe(
      true,
    );
    expect(accepted({ include: [] })).toBe(false);
  });

  // The policy takes at most 100 folders, and at most 100 include and 100 exclude globs of 1 to
  // 100 characters each (src/core/discovery.ts): more, or an empty glob, and every dispatch and
  // every unit fails on its policy. Refused at plan time instead, naming the variable.
  it.each([
    ['folder_ids', { folder_ids: ['1'.repeat(12)] }, true],
    ['folder_ids', { folder_ids: Array.from({ length: 100 }, (_, i) => String(1000 + i)) }, true],
    ['folder_ids', { folder_ids: Array.from({ length: 101 }, (_, i) => String(1000 + i)) }, false],
    ['discovery', { discovery: { include: ['ml-*'], exclude: ['*-sandbox'] } }, true],
    ['discovery', { discovery: { exclude: [''] } }, false],
    ['discovery', { discovery: { include: [''] } }, false],
    ['discovery', { discovery: { exclude: ['p'.repeat(100)] } }, true],
    ['discovery', { discovery: { exclude: ['p'.repeat(101)] } }, false],
    ['discovery', { discovery: { include: ['p'.repeat(101)] } }, false],
    ['discovery', { discovery: { include: Array.from({ length: 100 }, (_, i) => `p${i}`) } }, true],
    [
      'discovery',
      { discovery: { include: Array.from({ length: 101 }, (_, i) => `p${i}`) } },
      false,
    ],
    [
      'discovery',
      { discovery: { exclude: Array.from({ length: 101 }, (_, i) => `p${i}`) } },
      false,
    ],
  ] as [string, { folder_ids?: string[]; discovery?: Body }, boolean][])(
    '%s %# is accepted at plan time exactly when the policy takes it',
    (name, given, accepted) => {
      const discovery: Body = {
        include: null,
        exclude: [],
        labels: null,
        cache_ttl: '1h',
        ...given.discovery,
      };
      const vars = { folder_ids: given.folder_ids ?? [], discovery };
      const assembled = assembledPolicy({
        projectId: 'gpu-host',
        name: 'gpu-governor-org',
        organizationId: '123456789012',
        folderIds: vars.folder_ids,
        policy: { services: [{ match: {} }] },
        discovery,
      });
      let policyTakes = true;
      try {
        parsePolicy(assembled);
      } catch {
        policyTakes = false;
      }
      expect(policyTakes).toBe(accepted);
      // The labels' checks (keys(), values() and Unicode classes) are tested on their own above.
      const results = validationsOf(org, name)
        .filter((v) => !String(v['condition']).includes('var.discovery.labels'))
        .map((v) => ({
          ok: evaluateCondition(String(v['condition']), vars),
          message: String(v['error_message']),
        }));
      expect(results.every((r) => r.ok === true)).toBe(accepted);
      for (const r of results.filter((r) => r.ok !== true)) {
        expect(r.ok).toBe(false);
        expect(r.message.startsWith(name)).toBe(true);
      }
    },
  );

  it('check discovery.cache_ttl as the policy checks a duration, at plan time', () => {
    const condition = validationsOf(org, 'discovery')
      .map((v) => String(v['condition']))
      .find((c) => c.includes('cache_ttl'));
    expect(condition).toBeDefined();
    // One pattern: the policy's own, which Terraform's RE2 takes as it is.
    expect(patternOf(org, 'discovery')).toBe(DURATION_PATTERN.source);
    const re = new RegExp(patternOf(org, 'discovery'));
    for (const ttl of [
      ...['1h', '15m', '90s', '1h30m', '2d', '1ms', '1m1ms', '1d2h3m4s5ms'],
      ...['1 hour', '60', 'h', '', '1h1h', '30m1h', '1ms1s', 'ms'],
    ]) {
      let accepted = true;
      try {
        parsePolicy({
          version: 1,
          discovery: { organization: '1', cacheTtl: ttl },
          services: [{ match: {} }],
        });
      } catch {
        accepted = false;
      }
      expect(re.test(ttl), ttl).toBe(accepted);
    }
  });
});

// https://cloud.google.com/firestore/docs/locations: a region, or a multi-region such as nam5 or
// eur3. A location the database cannot have fails the apply part way, after the functions' build.
describe('state.location_id', () => {
  it.each([
    ['terraform', () => single],
    ['terraform/organization', () => org],
  ])('%s checks it at plan time', (_dir, config) => {
    const condition = ((config().variables.get('state')?.['validation'] as Body[]) ?? [])
      .map((v) => String(v['condition']))
      .find((c) => c.includes('location_id'));
    expect(condition).toContain('var.state.location_id == null');
    const m = /regex\("((?:[^"\\]|\\.)*)"/.exec(String(condition));
    const re = new RegExp(JSON.parse(`"${m?.[1] ?? ''}"`) as string);
    for (const ok of ['us-central1', 'europe-west4', 'nam5', 'eur3', 'northamerica-northeast1']) {
      expect(re.test(ok), ok).toBe(true);
    }
    for (const bad of ['US', 'us', 'europe', 'us-central1-a', 'EU', '']) {
      expect(re.test(bad), bad).toBe(false);
    }
  });
});

// CreateDatabaseRequest.database_id: "4-63 characters. Valid characters are /[a-z][0-9]-/ with
// first character a letter and the last a letter or a number. Must not be UUID-like
// /[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/"
// (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Firestore.Admin.V1/latest/Google.Cloud.Firestore.Admin.V1.CreateDatabaseRequest).
// An ID the API refuses fails the apply part way, after the functions' build.
describe('state.database_id', () => {
  it.each([
    ['terraform', () => single],
    ['terraform/organization', () => org],
  ])('%s refuses at plan time an ID Firestore would refuse', (_dir, config) => {
    const validations = (config().variables.get('state')?.['validation'] as Body[]) ?? [];
    const accepts = (id: string) =>
      validations.every(
        (v) =>
          evaluateCondition(String(v['condition']), {
            state: { database_id: id, location_id: null, collection: 'gpu-governor' },
          }) === true,
      );
    for (const ok of ['gpu-governor', 'gpu-governor-org', 'abcd', 'state-2026']) {
      expect(accepts(ok), ok).toBe(true);
    }
    for (const bad of [
      '(default)',
      'abc',
      'Gpu-governor',
      '1gpu',
      'gpu-',
      'abcdef01-2345-6789-abcd-ef0123456789',
      'state-abcdef01-2345-6789-abcd-ef0123456789',
    ]) {
      expect(accepts(bad), bad).toBe(false);
    }
  });
});
