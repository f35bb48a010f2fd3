import pLimit from 'p-limit';
import type { Plan } from '../core/plan.js';
import {
  governorPermission,
  howToGrant,
  missingItem,
  okItem,
  type CheckItem,
  type CheckReport,
  type GovernorPermission,
} from '../core/permissions.js';
import type { Policy } from '../core/policy.js';
import { gpuPool, quotaFromPolicy, poolKey, type PoolId } from '../core/pool.js';
import { fleetOfListings, policyWarnings } from '../core/policy-fit.js';
import { compileRules } from '../core/rules.js';
import { groupBy } from '../core/collections.js';
import { plural } from '../core/text.js';
import {
  CredentialsError,
  GovernorError,
  NotFoundError,
  PermissionError,
  errorMessage,
} from '../core/errors.js';
import {
  needsServingRevisions,
  RUN_READS_PER_MINUTE,
  type GpuSpec,
  type ObservedService,
  type RevisionKind,
} from '../core/service.js';
import type { AlertSink, ObservedWorkerPool, ObservePorts } from '../ports/index.js';
import { createPacer, type Pacer } from './pacing.js';

/**
 * Whether a run can do what it plans, asked before it writes anything.
 *
 * - Cloud Run services: `Services.TestIamPermissions` on each service (it needs no permission of
 *   its own, and answers the subset of the permissions asked that the caller holds: Cloud Run's
 *   reference, https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/testIamPermissions,
 *   and google/iam/v1/iam_policy.proto). Only `run.services.*` can be tested on a service:
 *   `iam.serviceAccounts.actAs` is held on the runtime service account, which no client the
 *   governor has can test, so it is reported as unverified.
 * - The alert topic: Pub/Sub's `TestIamPermissions` on the topic (`topic.iam.testPermissions`).
 *   It answers an empty set for a topic that does not exist, so "not granted" and "no such topic"
 *   read the same, and the message says both.
 * - Listings, Monitoring and Cloud Quotas: Monitoring v3 and Cloud Quotas v1 have no
 *   TestIamPermissions (neither metric_service.proto nor cloudquotas.proto declares one), and the
 *   list permissions are checked on the parent: the smallest real read is the probe
 *   (`governor check` only). `monitoring.timeSeries.create`, for the governor's own metrics, has
 *   no read to probe it: unverified.
 * - `run.operations.get` (waiting for each write): GetOperation of an operation that does not
 *   exist, NOT_FOUND meaning allowed, as Google checks permissions first (AIP-211,
 *   https://google.aip.dev/211); in enforce mode only (`governor check` only).
 */

/** The run cannot publish its alerts, or cannot be checked: it stops before writing. */
class PreflightError extends GovernorError {}

const READ_CONCURRENCY = 8;

function describe(e: unknown): string {
  return errorMessage(e);
}

/**
 * A refused read: the permission missing, or (API disabled, credentials refused, another failure)
 * an error. A missing one is the permission probed for, or one of `alternatives` when the denial
 * names it (a worker pool's revision, whose permission Google does not name, may be refused for
 * `run.workerpools.get`).
 */
function refusedItem(
  subject: string,
  permission: GovernorPermission,
  e: unknown,
  alternatives: readonly GovernorPermission[] = [],
): CheckItem {
  if (e instanceof PermissionError && e.refusal === 'permission') {
    const named = e.permissions
      .map(governorPermission)
      .find((p) => p !== null && alternatives.includes(p));
    return missingItem(subject, named ?? permission, describe(e));
  }
  // No role mends these (the adapters tell them apart: grpc-errors.ts).
  const fix = !(e instanceof PermissionError)
    ? null
    : e.refusal === 'credentials'
      ? 'Google refused the credentials themselves (expired, revoked, or of another universe): log in again (gcloud auth application-default login) or renew the service account key; no role grants it'
      : 'enable the API the message names in the project it names (or, with user credentials, set a quota project); no role grants it';
  return { subject, permission, status: 'error', detail: describe(e), fix };
}

/** A read used as a permission probe: ok, missing (denied), or an error of another kind. */
async function probe(
  subject: string,
  permission: GovernorPermission,
  read: () => Promise<unknown>,
  detail: string,
  alternatives: readonly GovernorPermission[] = [],
): Promise<CheckItem> {
  try {
    await read();
    return okItem(subject, permission, detail);
  } catch (e) {
    return refusedItem(subject, permission, e, alternatives);
  }
}

/** The alert topic: may the caller publish to it? */
async function checkTopic(policy: Policy, sink: AlertSink | null): Promise<CheckItem> {
  const topic = policy.alerts.topic;
  if (!topic || !sink) {
    return {
      subject: 'alerts',
      permission: null,
      status: 'unverified',
      detail: 'the policy sets no alerts.topic: alerts are only logged',
      fix: null,
    };
  }
  const subject = `topic ${topic}`;
  if (!sink.canPublish) {
    return {
      subject,
      permission: 'pubsub.topics.publish',
      status: 'unverified',
      detail: 'this alert sink cannot be tested',
      fix: null,
    };
  }
  try {
    if (await sink.canPublish()) {
      return okItem(subject, 'pubsub.topics.publish', 'TestIamPermissions on the topic');
    }
    return missingItem(
      subject,
      'pubsub.topics.publish',
      'not granted, or the topic does not exist (TestIamPermissions answers both the same way)',
    );
  } catch (e) {
    // A refusal is told as every probe's is: a grant missing, the API disabled, credentials refused.
    if (e instanceof PermissionError) return refusedItem(subject, 'pubsub.topics.publish', e);
    return {
      subject,
      permission: 'pubsub.topics.publish',
      status: 'error',
      detail: describe(e),
      fix: e instanceof CredentialsError ? null : 'check that Pub/Sub can be reached',
    };
  }
}

/**
 * TestIamPermissions of `wanted` on each service; one item per service and permission. At most
 * `concurrency` at once; with a `pacer`, each also waits for a read slot of its project and region
 * (keyed `project/region`, the scope of Cloud Run's read quota).
 */
async function checkServices(
  services: readonly { project: string; region: string; name: string }[],
  wanted: readonly GovernorPermission[],
  run: ObservePorts['run'],
  concurrency = READ_CONCURRENCY,
  pacer?: Pacer,
): Promise<CheckItem[]> {
  const limit = pLimit(concurrency);
  const test = run.testPermissions?.bind(run);
  // Each call is paced and counted when it starts (Pacer.run), whatever order the places come in.
  const paced = async <T>(key: string, call: () => Promise<T>): Promise<T> => {
    if (!pacer) return limit(call);
    const done = await pacer.run(key, limit, call, Infinity);
    if (!done) throw new GovernorError(`bug: a paced call with no deadline was not made (${key})`);
    return done.value;
  };
  const perService = await Promise.all(
    services.map((s) =>
      paced(`${s.project}/${s.region}`, async (): Promise<CheckItem[]> => {
        const subject = `service ${s.project}/${s.region}/${s.name}`;
        if (!test) {
          return wanted.map((p) => ({
            subject,
            permission: p,
            status: 'unverified' as const,
            detail: 'these ports cannot test permissions',
            fix: null,
          }));
        }
        let granted: string[];
        try {
          granted = await test(s.project, s.region, s.name, wanted);
        } catch (e) {
          return [{ subject, permission: null, status: 'error', detail: describe(e), fix: null }];
        }
        return wanted.map((p) =>
          granted.includes(p)
            ? okItem(subject, p, 'TestIamPermissions on the service')
            : missingItem(subject, p, 'TestIamPermissions on the service: not granted'),
        );
      }),
    ),
  );
  return perService.flat();
}

/**
 * `run.operations.get`, which every write needs to wait for its operation: one GetOperation of an
 * operation that does not exist, in a region the policy writes in (the permission is granted on the
 * project). Without it a write is applied and then reported as failed.
 */
async function checkOperations(
  project: string,
  region: string,
  run: ObservePorts['run'],
): Promise<CheckItem> {
  const subject = `project ${project}`;
  const read = run.probeOperations?.bind(run);
  if (!read) {
    return {
      subject,
      permission: 'run.operations.get',
      status: 'unverified',
      detail: 'these ports cannot probe operations',
      fix: null,
    };
  }
  return probe(
    subject,
    'run.operations.get',
    () => read(project, region),
    'read an operation that does not exist (NOT_FOUND: allowed; Cloud Run has no TestIamPermissions for operations)',
  );
}

/**
 * `run.revisions.get`, by reading a serving revision of a service whose latest revision does not
 * serve, or a revision only tagged beside one whose latest revision serves, or a revision of a
 * worker pool's instance split (`kind`). NOT_FOUND (deleted since the listing)
 * still shows the permission held: Google checks permission before existence ("Permission must be
 * checked prior to checking if the resource or parent exists", AIP-211,
 * https://google.aip.dev/211).
 */
async function checkRevisions(
  s: ObservedService | ObservedWorkerPool,
  run: ObservePorts['run'],
  kind: RevisionKind,
): Promise<CheckItem> {
  const subject = `${kind === 'services' ? 'service' : 'worker pool'} ${s.project}/${s.region}/${s.name}`;
  const read = run.getRevisionMax?.bind(run);
  const revision = s.servingRevisions?.[0]?.name ?? '';
  if (!read) {
    return {
      subject,
      permission: 'run.revisions.get',
      status: 'unverified',
      detail: 'these ports cannot read revisions',
      fix: null,
    };
  }
  return probe(
    subject,
    'run.revisions.get',
    async () => {
      try {
        await read(s.project, s.region, s.name, revision, kind);
      } catch (e) {
        if (e instanceof NotFoundError) return;
        throw e;
      }
    },
    kind === 'services' && s.templateServes !== false
      ? `read its revision ${revision}, only tagged (without the permission nothing in its region is raised: which pool it holds GPUs of, and how many, is unknown)`
      : kind === 'services'
        ? `read its serving revision ${revision} (its latest revision does not serve; without the permission it is counted at its pool's quota ÷ GPUs per instance, the GPUs of a serving revision of another pool go uncounted, and a revision only tagged leaves nothing in its region raised)`
        : `read revision ${revision} of its instance split (its latest revision does not run all its instances; without the permission which pools they hold is unknown, and nothing in the region is raised)`,
    // Google names no permission for a worker pool's revision: its denial may name this one.
    kind === 'services' ? [] : ['run.workerpools.get'],
  );
}

/**
 * The topic half of a run's preflight: one TestIamPermissions, asked in the run's first round
 * beside the observation (it depends on nothing the run reads). Throws {@link PreflightError}
 * when alerts cannot be published: the run must not write what it could not tell anyone about
 * (rule 9, docs/rules.md).
 */
export async function preflightTopic(policy: Policy, sink: AlertSink | null): Promise<CheckItem> {
  const topic = await checkTopic(policy, sink);
  if (topic.status === 'missing' || topic.status === 'error') {
    const what =
      topic.status === 'missing'
        ? `pubsub.topics.publish is not granted on ${policy.alerts.topic ?? '?'}, or the topic does not exist`
        : topic.detail;
    throw new PreflightError(
      `${what}${topic.fix ? `; ${topic.fix}` : ''}. Nothing was written: a run that cannot publish its alerts does not write.`,
    );
  }
  return topic;
}

/**
 * At most this many TestIamPermissions of a run at once: the plan's changes (50 by default,
 * `limits.maxChangesPerRun`) in one wave. They are reads, far under Cloud Run's read quota per
 * region and minute (docs/performance.md, "Pacing").
 */
const RUN_CHECK_CONCURRENCY = 50;

/**
 * The services half: `run.services.update` on each service the plan will write (one
 * TestIamPermissions each, all at once). Only known once the plan is, and only advice: a missing
 * permission does not stop the run (that write is denied and reported as every denied write is, and
 * the other services are governed), so the run asks it beside its first writes instead of
 * waiting for it (docs/performance.md).
 */
export async function preflightServices(
  plan: Plan,
  mode: Policy['mode'],
  run: ObservePorts['run'],
): Promise<CheckItem[]> {
  if (mode !== 'enforce' || plan.changes.length === 0) return [];
  return checkServices(plan.changes, ['run.services.update'], run, RUN_CHECK_CONCURRENCY);
}

/**
 * The TestIamPermissions `governor check` makes per minute in a project and region, at most: the
 * governor's share of Cloud Run's read quota ({@link RUN_READS_PER_MINUTE}, which cites it). The
 * check asks one per governed service: unpaced, 1,000 services of a region (Cloud Run's most) went
 * out in about two seconds, past that quota, and the governor's own runs, deploys and the console,
 * which spend the same quota, were refused meanwhile. Half of it leaves them the rest: up to 300
 * at once, the next 300 a minute later (the pacer's per-minute window, as for writes).
 */
const CHECK_READS_PER_MINUTE = RUN_READS_PER_MINUTE;

/** How `governor check` paces its reads: the budget, and the clock and sleep (for tests). */
interface CheckPacing {
  readsPerMinute?: number;
  /**
   * A virtual clock, which `sleep` moves. Default: the reads are paced on the time elapsed
   * (performance.now(), which no step of the wall clock moves: reconcile/pacing.ts).
   */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Told once per project when its services' checks must wait for the read quota. */
  onWait?: (message: string) => void;
}

/**
 * `governor check`: every permission a run needs, checked in the project(s) of the policy. The
 * listings are probed by listing (their permissions are checked on the parent and cannot be
 * tested on a service); each governed service by TestIamPermissions; operations by reading one
 * that does not exist; Monitoring by its smallest read; Cloud Quotas by reading each pool's quota
 * the policy does not set; the topic by TestIamPermissions.
 */
export async function checkPolicy(
  policy: Policy,
  ports: ObservePorts,
  sink: AlertSink | null,
  nowMs: number,
  pacing: CheckPacing = {},
): Promise<CheckReport> {
  const items: CheckItem[] = [];
  const readsPerMinute = pacing.readsPerMinute ?? CHECK_READS_PER_MINUTE;
  const pacer = createPacer(readsPerMinute, pacing.now, pacing.sleep);
  const resolve = compileRules(policy, nowMs);
  let governed = 0;
  // What was listed, for the policy's fit to the fleet; unknown once a listing failed.
  const listedServices: ObservedService[] = [];
  const listedOthers: { project: string; region: string; gpu: GpuSpec | null }[] = [];
  let fleetKnown = true;
  for (const project of policy.projects) {
    let regions: readonly string[] | undefined = policy.regions;
    if (!regions) {
      try {
        regions = await ports.run.listRegions(project);
        items.push(okItem(`project ${project}`, 'run.locations.list', 'listed the regions'));
      } catch (e) {
        fleetKnown = false;
        items.push(
          e instanceof PermissionError
            ? refusedItem(`project ${project}`, 'run.locations.list', e)
            : {
                subject: `project ${project}`,
                permission: null,
                status: 'error',
                detail: describe(e),
                fix: null,
              },
        );
        continue;
      }
    }
    const services: ObservedService[] = [];
    const workerPools: ObservedWorkerPool[] = [];
    for (const region of regions) {
      const subject = `region ${project}/${region}`;
      items.push(
        await probe(
          subject,
          'run.services.list',
          async () => services.push(...(await ports.run.listServices(project, region))),
          'listed the services',
        ),
        await probe(
          subject,
          'run.workerpools.list',
          async () => workerPools.push(...(await ports.run.listWorkerPools(project, region))),
          'listed the worker pools',
        ),
        await probe(
          subject,
          'run.executions.list',
          async () =>
            listedOthers.push(...(await ports.run.listRunningExecutions(project, region))),
          'listed the job executions',
        ),
      );
      if (items.slice(-3).some((i) => i.status !== 'ok')) fleetKnown = false;
    }
    listedServices.push(...services);
    listedOthers.push(...workerPools);
    const monitoring = ports.monitoring.probe?.bind(ports.monitoring);
    items.push(
      monitoring
        ? await probe(
            `project ${project}`,
            'monitoring.timeSeries.list',
            () => monitoring(project, nowMs),
            'read instance counts (Monitoring has no TestIamPermissions)',
          )
        : {
            subject: `project ${project}`,
            permission: 'monitoring.timeSeries.list',
            status: 'unverified',
            detail: 'these ports cannot probe Monitoring',
            fix: null,
          },
    );
    if (ports.monitoring.writeGovernorMetrics) {
      // A write is the only test of it, and a test point would be a figure on the dashboard.
      items.push({
        subject: `project ${project}`,
        permission: 'monitoring.timeSeries.create',
        status: 'unverified',
        detail:
          "the governor's own metrics: Monitoring has no TestIamPermissions and a test would write a point; without it each run raises governor.degraded (metrics) and still writes the caps",
        fix: howToGrant('monitoring.timeSeries.create'),
      });
    }
    if (policy.quotaRequests?.enabled) {
      // Cloud Quotas has no TestIamPermissions, and a test preference would be a quota request.
      items.push({
        subject: `project ${project}`,
        permission: 'cloudquotas.quotas.update',
        status: 'unverified',
        detail:
          'quota requests (quotaRequests.enabled): Cloud Quotas has no TestIamPermissions and a test would file a request; without it a request is logged as refused and the caps are still written',
        fix: howToGrant('cloudquotas.quotas.update'),
      });
    }
    const gpu = services.filter((s) => s.gpu !== null && s.scalingMode !== 'MANUAL');
    const pools = new Map<string, PoolId>();
    for (const s of gpu) {
      if (!s.gpu) continue;
      const id = gpuPool({ project, region: s.region, gpu: s.gpu });
      if (quotaFromPolicy(policy, id) === null) pools.set(poolKey(id), id);
    }
    for (const [key, id] of pools) {
      items.push(
        await probe(
          `pool ${key}`,
          'cloudquotas.quotas.get',
          async () => {
            try {
              await ports.quotas.gpuQuota(id);
            } catch (e) {
              // Allowed to read, but Cloud Quotas has no such quota id: the permission is there.
              if (e instanceof NotFoundError) return;
              throw e;
            }
          },
          'read the quota (Cloud Quotas has no TestIamPermissions)',
        ),
      );
    }
    // run.revisions.get serves only services whose latest revision does not serve (with a GPU
    // or not: an older revision may serve with one) or that have a revision only tagged, and
    // worker pools whose instances are split onto other revisions than the template's: probed by
    // reading one of their serving revisions, when there is one.
    const unserved = services.find(needsServingRevisions);
    const split = workerPools.find(
      (w) => w.templateServes === false && (w.servingRevisions ?? []).length > 0,
    );
    if (unserved) items.push(await checkRevisions(unserved, ports.run, 'services'));
    else if (split) items.push(await checkRevisions(split, ports.run, 'workerPools'));
    const mine = gpu.filter(
      (s) => resolve({ ...s, accelerator: s.gpu?.accelerator ?? '' }).managed,
    );
    governed += mine.length;
    const listed = items.every(
      (i) =>
        i.permission !== 'run.services.list' ||
        !i.subject.startsWith(`region ${project}/`) ||
        i.status === 'ok',
    );
    if (mine.length === 0 && listed) {
      items.push({
        subject: `project ${project}`,
        permission: null,
        status: 'error',
        detail: `the policy governs no GPU service here (${gpu.length} GPU service(s) read, none matched by a managed rule): nothing would be written`,
        fix: 'check the rules under `services` (and `regions`)',
      });
    }
    const wanted: GovernorPermission[] =
      policy.mode === 'enforce'
        ? ['run.services.get', 'run.services.update']
        : ['run.services.get'];
    const busiest = [...groupBy(mine, (s) => s.region)].sort(
      ([, a], [, b]) => b.length - a.length,
    )[0];
    if (busiest && busiest[1].length > readsPerMinute)
      pacing.onWait?.(
        `${project}: ${plural(busiest[1].length, 'governed service')} in ${busiest[0]}: their TestIamPermissions go ${readsPerMinute} a minute per region (Cloud Run's read quota), about ${plural(Math.ceil(busiest[1].length / readsPerMinute) - 1, 'minute')}`,
      );
    items.push(...(await checkServices(mine, wanted, ports.run, READ_CONCURRENCY, pacer)));
    const first = mine[0];
    if (policy.mode === 'enforce' && first) {
      items.push(await checkOperations(project, first.region, ports.run));
    }
    if (policy.mode === 'enforce' && mine.length > 0) {
      items.push({
        subject: `project ${project}`,
        permission: 'iam.serviceAccounts.actAs',
        status: 'unverified',
        detail:
          'held on each governed service’s runtime service account, which TestIamPermissions on the service cannot test; Google documents it for updating a service',
        fix: howToGrant('iam.serviceAccounts.actAs'),
      });
    }
  }
  items.push(await checkTopic(policy, sink));
  // Where a listing failed the fleet is partly unknown: only what needs no fleet is said.
  const warnings = policyWarnings(
    policy,
    fleetKnown ? fleetOfListings(listedServices, listedOthers) : undefined,
  );
  return { items, governed, warnings };
}
