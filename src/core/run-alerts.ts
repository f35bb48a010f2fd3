import {
  alertAttributes,
  MAX_ORDERING_KEY_BYTES,
  restated,
  wholeAttributes,
  type Alert,
} from './alert.js';
import { writesInPool } from './as-left.js';
import { alertPoolKey, dedupKeyOf, makeAlert, projectWide, type AlertPlace } from './conditions.js';
import { recordAlert, withUniqueIds, type ConditionState } from './notify.js';
import type { Plan, PlanPool } from './plan.js';
import { compareText, poolKey, poolWords, samePool } from './pool.js';
import { problemsOf, renderProblem, type ObservationProblem } from './problems.js';
import { unitLabel, type SiblingRun } from './units.js';
import type { DeliveryVerdict } from './work.js';
import type { WriteResult } from './write-result.js';
import { cutUtf8, oneLine, plural, someOf, utf8Length } from './text.js';

/**
 * What one run tells about one project, besides the plan's own conditions: the events of its
 * writes (or of its dry run), quota changes since the previous run, the `governor.degraded`
 * condition for what observation could not read, and where an absent condition may resolve.
 * Pure: the run passes in what it observed, planned, wrote and recorded last time.
 */

export interface RunContext {
  at: string;
  runId: string;
  /**
   * The region of a regional unit (core/units.ts); absent for a run of whole projects. A regional
   * unit's project-wide conditions (observation, lease, outbox, metrics, another governor, quota
   * requests) carry it as their `region`, so their dedupKey is the unit's own: conditions are kept
   * per unit, and two units of one project must not fire and resolve one key.
   */
  region?: string;
}

/** rebalance.planned (dry run), rebalance.applied and apply.failed, per pool of the project. */
export function runEvents(
  ctx: RunContext,
  project: string,
  plan: Plan,
  writes: readonly WriteResult[],
  mode: Plan['mode'],
): Alert[] {
  const events: Alert[] = [];
  for (const pool of plan.pools.filter((p) => p.project === project)) {
    const changes = plan.changes.filter((c) => samePool(c, pool));
    const inPool = new Set(changes.map((c) => c.name));
    const mine = writes.filter(
      (w) => w.project === pool.project && w.region === pool.region && inPool.has(w.name),
    );
    if (mode === 'dry-run' && changes.length > 0) {
      events.push(
        makeAlert(ctx, pool, {
          type: 'rebalance.planned',
          status: 'event',
          severity: 'INFO',
          summary: `Dry run: ${plural(changes.length, 'change')} planned in ${poolWords(pool)}, none written`,
          details: {
            changes: changes.map((c) => ({
              service: c.name,
              from: c.from,
              to: c.to,
              reason: c.reason,
            })),
            capsBefore: pool.capsBefore,
            capsAfter: pool.capsAfter,
            budget: pool.budget,
          },
        }),
      );
    }
    const applied = appliedEvent(ctx, pool, mine);
    if (applied) events.push(applied);
    for (const w of mine.filter((x) => x.outcome === 'failed')) {
      events.push(
        makeAlert(ctx, pool, {
          type: 'apply.failed',
          status: 'event',
          severity: 'ERROR',
          service: w.name,
          summary: failedSummary(w),
          details: {
            from: w.from,
            to: w.planned,
            reason: w.reason,
            cause: w.cause,
            ...(w.permissions ? { permissions: w.permissions } : {}),
            ...(w.resource ? { resource: w.resource } : {}),
          },
        }),
      );
    }
  }
  return events;
}

/**
 * One line on a failed write. A denied one says what to grant, and where: the permission the
 * error names, or the two a scaling write needs (run.services.update on the service, and
 * iam.serviceAccounts.actAs on the service's runtime service account, which Google asks of
 * whoever updates a service).
 */
function failedSummary(w: WriteResult): string {
  if (w.cause !== 'denied')
    return `Could not set ${w.name} from ${w.from} to ${w.planned}: ${w.reason}`;
  const perms = w.permissions ?? [];
  // actAs is held on the runtime service account: when the error named only the service, say so.
  const onService = w.resource !== undefined && /\/services\/[^/]+$/.test(w.resource);
  const actAsOnly =
    perms.length > 0 && perms.every((p) => /^iam\.serviceAccounts\.actAs$/i.test(p));
  const where =
    w.resource === undefined
      ? ''
      : actAsOnly && onService
        ? ` on the runtime service account of ${w.resource}`
        : ` on ${w.resource}`;
  const what =
    perms.length > 0
      ? `it lacks ${perms.join(' and ')}${where}`
      : 'it lacks run.services.update on the service or iam.serviceAccounts.actAs on its runtime service account';
  return `Permission denied: the governor may not change the max instances of ${w.name} (${what}); grant it to the governor's service account`;
}

/**
 * governor.degraded, per project, while another governor writes some of its pools: its stamp on a
 * service of the pool is fresher than a lease, so this run wrote nothing there (`other-governor`).
 */
export function contendedAlert(
  ctx: RunContext,
  project: string,
  writes: readonly WriteResult[],
): Alert | null {
  const held = writes.filter((w) => w.project === project && w.cause === 'other-governor');
  if (held.length === 0) return null;
  return makeAlert(ctx, projectWide(ctx, project), {
    type: 'governor.degraded',
    severity: 'WARNING',
    key: 'other-governor',
    // The first skip's reason names the other governor, the service it stamped and when.
    summary: `Another governor is writing in ${unitLabel({ project, ...ctx })}: ${plural(held.length, 'change')} not made where it wrote within a lease${held[0] ? `; ${held[0].reason}` : ''}. Stop one of them, or give both the same state store`,
    details: {
      reason: 'other-governor',
      skipped: held.map((w) => ({ service: w.name, region: w.region, reason: w.reason })),
    },
  });
}

function appliedEvent(
  ctx: RunContext,
  pool: PlanPool,
  writes: readonly WriteResult[],
): Alert | null {
  const written = writes.filter((w) => w.outcome === 'written');
  if (written.length === 0) return null;
  const lowered = written.filter((w) => w.cause === 'compensated').length;
  // A fence changes no cap: it writes back the max its service has (act.ts compensate).
  const fenced = written.filter((w) => w.cause === 'fenced');
  const changed = new Set(written.filter((w) => w.cause !== 'fenced').map((w) => w.name)).size;
  return makeAlert(ctx, pool, {
    type: 'rebalance.applied',
    status: 'event',
    severity: 'INFO',
    // A raise lowered back in the same run is two writes of one cap: counted once, and said.
    summary: `${plural(changed, 'cap')} changed in ${poolWords(pool)}${
      lowered > 0 ? ` (${plural(lowered, 'raise')} lowered back in the same run)` : ''
    }${fenced.length > 0 ? `; ${plural(fenced.length, 'raise')} that got no answer fenced off, no cap changed` : ''}`,
    details: {
      writes: written.map((w) => ({
        service: w.name,
        from: w.from,
        to: w.written,
        reason: w.reason,
      })),
      skipped: writes
        .filter((w) => w.outcome === 'skipped')
        .map((w) => ({ service: w.name, reason: w.reason, cause: w.cause })),
      budget: pool.budget,
    },
  });
}

/**
 * The `rebalance.applied` events a run would send if every planned change were written, stored
 * before the writes (`details.outcome: 'pending-outcome'`). Each has the id of the event the run
 * sends once it knows how the writes went, which replaces it.
 */
export function plannedEvents(ctx: RunContext, project: string, plan: Plan): Alert[] {
  const writes: WriteResult[] = plan.changes
    .filter((c) => c.project === project)
    .map((c) => ({
      project: c.project,
      region: c.region,
      name: c.name,
      from: c.from,
      planned: c.to,
      written: c.to,
      outcome: 'written',
      cause: 'written',
      reason: c.reason,
    }));
  const events: Alert[] = [];
  for (const pool of plan.pools.filter((p) => p.project === project)) {
    const inPool = new Set(plan.changes.filter((c) => samePool(c, pool)).map((c) => c.name));
    const mine = writes.filter((w) => w.region === pool.region && inPool.has(w.name));
    const event = appliedEvent(ctx, pool, mine);
    if (event) {
      events.push(
        restated(
          event,
          `${event.summary} (planned; the run has not yet reported how its writes went)`,
          { outcome: 'pending-outcome' },
        ),
      );
    }
  }
  return withUniqueIds(events, ctx.runId);
}

/**
 * A planned event left by a run that ended before it said how its writes went (killed, or the
 * store failed), settled against what this run observed: the changes whose service now has the
 * planned max are reported as applied (`writes`), the others as not confirmed (`unconfirmed`, with
 * the max seen now). Never dropped, even when none of them shows: the governor cannot tell a write
 * that was never made from one another writer changed since, and an event stored before a write
 * stays until it is published (`outcome: not-confirmed`, its `writes` empty).
 * `maxOf(region, service)` is the service's max instances as observed, null when not seen.
 */
export function settlePlannedEvent(
  event: Alert,
  maxOf: (region: string, service: string) => number | null,
  settledBy: string,
): Alert {
  const planned = Array.isArray(event.details.writes) ? event.details.writes : [];
  const confirmed: unknown[] = [];
  const unconfirmed: unknown[] = [];
  for (const w of planned) {
    const service = typeof w === 'object' && w !== null && 'service' in w ? w.service : null;
    const to = typeof w === 'object' && w !== null && 'to' in w ? w.to : null;
    const seen =
      typeof service === 'string' && event.region !== null ? maxOf(event.region, service) : null;
    if (seen !== null && seen === to) confirmed.push(w);
    else unconfirmed.push(typeof w === 'object' && w !== null ? { ...w, seenNow: seen } : w);
  }
  const where = [event.region, event.accelerator].filter((x) => x !== null).join(' ');
  const ended = `run ${event.runId} ended before reporting`;
  return {
    ...event,
    summary:
      confirmed.length > 0
        ? `${plural(confirmed.length, 'cap')} changed in ${where} (${ended}; confirmed by observation)`
        : `${plural(unconfirmed.length, 'planned change')} in ${where} not confirmed (${ended}; none shows now: not made, or changed since)`,
    details: {
      ...event.details,
      writes: confirmed,
      unconfirmed,
      outcome: confirmed.length > 0 ? 'confirmed-by-observation' : 'not-confirmed',
      settledBy,
    },
  };
}

/** Who holds a lease, as a run that could not take it saw it. */
export interface HeldLease {
  project: string;
  heldBy?: string;
  acquiredAt?: string;
  expiresAt?: string;
  /**
   * How many times the run asked: `leaseAttempts`, or fewer when the run's deadline left no
   * room to wait and ask again.
   */
  attempts: number;
}

/** governor.degraded (reason lease): another governor held the project's lease; nothing done. */
export function leaseHeldAlert(ctx: RunContext, held: HeldLease): Alert {
  return makeAlert(ctx, projectWide(ctx, held.project), {
    type: 'governor.degraded',
    severity: 'ERROR',
    key: 'lease',
    // A run of this governor or of another on the same store: the lease ends by itself (a run
    // that crashed keeps it until then); breaking it while its run still writes lets two write.
    summary: `${unitLabel({ ...ctx, project: held.project })} is not governed: another run (${held.heldBy ?? 'unknown'}) holds its lease until ${held.expiresAt ?? 'an unknown time'}; the lease ends by itself then, or, if that run has died, \`governor unlock\` clears it sooner`,
    details: {
      reason: 'lease',
      heldBy: held.heldBy ?? null,
      acquiredAt: held.acquiredAt ?? null,
      expiresAt: held.expiresAt ?? null,
      attempts: held.attempts,
      clear: 'governor unlock --policy <policy file>, once no other governor runs',
    },
  });
}

/**
 * governor.degraded (reason units-stopped): regional units of the project this regional unit
 * runs beside have not run for over `staleAfter` (core/units.ts stoppedSiblings), so their
 * pools are not governed. Raised by one running unit; resolves once each has run again.
 */
export function unitsStoppedAlert(
  ctx: RunContext,
  project: string,
  stopped: readonly Pick<SiblingRun, 'region' | 'lastRunAt'>[],
  staleAfter: string,
): Alert | null {
  if (stopped.length === 0) return null;
  const named = stopped.map(
    (s) =>
      `${s.region} (${s.lastRunAt ? `last run planned at ${s.lastRunAt}` : 'no run recorded'})`,
  );
  return makeAlert(ctx, projectWide(ctx, project), {
    type: 'governor.degraded',
    severity: 'ERROR',
    key: 'units-stopped',
    summary: `${plural(stopped.length, 'regional unit')} of ${project} ha${stopped.length === 1 ? 's' : 've'} not run for over ${staleAfter}, so ${stopped.length === 1 ? 'its pools are' : 'their pools are'} not governed: ${named.join(', ')}`,
    details: {
      reason: 'units-stopped',
      staleAfter,
      units: stopped.map((s) => ({ region: s.region, lastRunAt: s.lastRunAt })),
    },
  });
}

/** A failed delivery of a work message (organisation scale) that was, or may be, its last. */
export interface FailedDelivery {
  project: string;
  /** The region of a regional unit (core/units.ts); absent for a whole project. */
  region?: string;
  /**
   * `stale`: a redelivery (its `attempt` above 1, so the deliveries before it failed) that came
   * after the message went stale: it is acknowledged, never run, so it reaches neither its last
   * delivery nor the dead-letter topic.
   */
  verdict:
    | Exclude<DeliveryVerdict, { kind: 'retried' }>
    | { kind: 'stale'; attempt: number; maxAttempts: number | null };
  /** Why the unit failed: the run's error, on one line. */
  cause: string;
  messageId: string | null;
  dispatchId: string;
}

/** Characters of a failure's cause an alert carries at most. */
const MAX_CAUSE_CHARS = 500;

/**
 * governor.degraded (reason delivery): the unit of a project failed what was, or may be, the last
 * delivery of its work message, so Pub/Sub moves the message to the dead-letter topic and the
 * project is not governed until a later dispatch succeeds. A condition: it fires once (again after
 * `renotifyAfter`) and a later run that reads the whole project resolves it.
 */
export function deliveryFailedAlert(ctx: RunContext, f: FailedDelivery): Alert {
  const v = f.verdict;
  const cause = oneLine(f.cause).slice(0, MAX_CAUSE_CHARS) || 'unknown';
  const which =
    v.kind === 'last'
      ? `failed its last delivery (${v.attempt} of ${v.maxAttempts}); the work message goes to the dead-letter topic`
      : v.kind === 'stale'
        ? `failed ${v.attempt - 1} ${v.attempt === 2 ? 'delivery' : 'deliveries'} and its work message went stale`
        : `failed a delivery that may be its last (${v.why})`;
  const where = f.region === undefined ? {} : { region: f.region };
  const unit = unitLabel({ project: f.project, ...where });
  return makeAlert(ctx, projectWide(where, f.project), {
    type: 'governor.degraded',
    severity: 'ERROR',
    key: 'delivery',
    summary: `${unit} is not governed: its unit ${which}: ${cause}`,
    details: {
      reason: 'delivery',
      attempt: v.attempt,
      maxAttempts: v.maxAttempts,
      deadLettered: v.kind === 'last' ? true : v.kind === 'stale' ? false : null,
      cause,
      messageId: f.messageId,
      dispatchId: f.dispatchId,
    },
  });
}

/**
 * The delivery condition (deliveryFailedAlert) of a project whose run failed (a write failed):
 * still firing, as the state has it, so that the failed run does not resolve it. Only a run that
 * succeeds resolves it. [] when it does not fire.
 */
export function heldDeliveryCondition(
  ctx: RunContext,
  project: string,
  previous: ConditionState,
): Alert[] {
  return Object.entries(previous)
    .filter(
      ([, r]) =>
        r.project === project &&
        r.type === 'governor.degraded' &&
        r.details['reason'] === 'delivery',
    )
    .map(([key, record]) =>
      recordAlert(key, record, {
        id: `${ctx.runId}:${key}`,
        status: 'firing',
        summary: record.summary,
        details: record.details,
        runId: ctx.runId,
        time: ctx.at,
      }),
    );
}

/**
 * governor.degraded (reason outbox): the outbox overflowed, and its oldest events were dropped.
 * `droppedUnknown`: the stored count of them could not be read, so `dropped` is a lower bound
 * (the unreadable count taken as 1) and the true number is unknown; the details say so.
 */
export function outboxDroppedAlert(
  ctx: RunContext,
  project: string,
  dropped: number,
  backlog: number,
  droppedUnknown = false,
): Alert {
  const unit = unitLabel({ project, ...ctx });
  return makeAlert(ctx, projectWide(ctx, project), {
    type: 'governor.degraded',
    severity: 'ERROR',
    key: 'outbox',
    summary: droppedUnknown
      ? `An unknown number of alert events of ${unit} (at least ${dropped}) could not be published and were dropped (the stored count of them was unreadable)`
      : `${plural(dropped, 'alert event')} of ${unit} could not be published and ${dropped === 1 ? 'was' : 'were'} dropped (the outbox was full, or an entry could not be read and was set aside)`,
    details: { reason: 'outbox', dropped, backlog, ...(droppedUnknown ? { droppedUnknown } : {}) },
  });
}

/**
 * The quotas a run read, per pool key, to compare with the next run's: a quota the policy sets
 * is the team's own choice, not news, so it is kept as null.
 */
export function quotasSeen(plan: Plan, project: string): Record<string, number | null> {
  return Object.fromEntries(
    plan.pools
      .filter((p) => p.project === project)
      .map((p) => [poolKey(p), p.quotaSource === 'policy' ? null : p.quota]),
  );
}

/** quota.changed: a pool's quota differs from what the previous run read (both known). */
export function quotaChanges(
  ctx: RunContext,
  project: string,
  plan: Plan,
  previous: Readonly<Record<string, number | null>> | undefined,
): Alert[] {
  if (!previous) return [];
  const events: Alert[] = [];
  for (const pool of plan.pools.filter((p) => p.project === project)) {
    const before = previous[poolKey(pool)];
    if (before === undefined || before === null) continue;
    if (pool.quota === null || pool.quotaSource === 'policy' || before === pool.quota) continue;
    events.push(
      makeAlert(ctx, pool, {
        type: 'quota.changed',
        status: 'event',
        severity: 'INFO',
        summary: `The GPU quota of ${poolWords(pool)} changed from ${before} to ${pool.quota}`,
        details: { from: before, to: pool.quota, source: pool.quotaSource },
      }),
    );
  }
  return events;
}

/**
 * A pool the act step's verify read found over its budget just after this run's raises (another
 * writer filled it, or the quota was cut, in the round trip before them), still over once this
 * run lowered back what it could: `caps` is what its governed services hold then, `budget` what
 * they may hold on that read.
 */
export interface OverAfterRaises {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
  quota: number | null;
  budget: number;
  caps: number;
}

/**
 * `pool.over-budget` for each pool of the project the verify read left over its budget, unless
 * the run's conditions already hold one for the pool (the same dedupKey as the planner's, so the
 * next run, which plans from the pool as it is, keeps it firing or resolves it).
 */
export function overAfterRaisesAlerts(
  ctx: RunContext,
  project: string,
  over: readonly OverAfterRaises[],
  conditions: readonly Alert[],
): Alert[] {
  const out: Alert[] = [];
  for (const o of over.filter((x) => x.project === project)) {
    const where = poolWords(o);
    const alert = makeAlert(ctx, o, {
      type: 'pool.over-budget',
      severity: 'ERROR',
      summary: `Caps in ${where} sum to ${o.caps} GPUs just after this run's raises, over the budget of ${o.budget}: another writer raised a max, or the quota was cut, in the round trip before them, and what this run raised could not all be lowered back; the next run lowers the pool`,
      details: {
        quota: o.quota,
        budget: o.budget,
        capsAfter: o.caps,
        over: o.caps - o.budget,
        source: 'verify',
      },
    });
    if (
      !conditions.some((c) => c.dedupKey === alert.dedupKey) &&
      !out.some((c) => c.dedupKey === alert.dedupKey)
    )
      out.push(alert);
  }
  return out;
}

/**
 * A pool this run raised whose read just after the raises failed (`error`, as the adapter worded
 * it: a read refused for the minute's read quota names RESOURCE_EXHAUSTED): `raises` of this
 * run's raises may have landed, and whether another writer or a quota cut took the pool over its
 * quota in the round trip before them is not known.
 */
export interface UnverifiedRaises {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
  raises: number;
  error: string;
}

/**
 * `governor.degraded` (reason `unverified`) for each pool of the project whose read after this
 * run's raises failed: the act step could neither confirm that the pool stayed within its quota
 * nor lower its raises back, so a race it exists to catch would go unseen until the next run
 * (which plans from the pool as it is, lowering it if it is over, and so resolves this). One per
 * pool, keyed on the pool, so that it resolves where the next run judges the pool.
 */
export function unverifiedRaisesAlerts(
  ctx: RunContext,
  project: string,
  unverified: readonly UnverifiedRaises[],
): Alert[] {
  const out: Alert[] = [];
  for (const u of unverified.filter((x) => x.project === project)) {
    const alert = makeAlert(ctx, u, {
      type: 'governor.degraded',
      severity: 'WARNING',
      key: 'unverified',
      summary: `${plural(u.raises, 'raise')} in ${poolWords(u)} could not be checked against the quota: the pool could not be read again just after them (${oneLine(u.error)}); if another writer filled the pool meanwhile it stays over its quota until the next run reads and lowers it`,
      details: { reason: 'unverified', raises: u.raises, error: u.error },
    });
    if (!out.some((c) => c.dedupKey === alert.dedupKey)) out.push(alert);
  }
  return out;
}

/**
 * `governor.degraded` (reason `pool-unreadable`) for each pool of the project whose raises this
 * run held back because the pool could not be read again just before them (act's fresh read: its
 * services, worker pools and job executions). Nothing else tells them when nothing else in the
 * pool was written (no `rebalance.applied` carries them, and a skip is no `apply.failed`), and a
 * read refused at every run (a request quota spent, a permission missing on one of those lists)
 * would keep the services at their caps with no sign that the governor meant to raise them. A
 * condition, keyed on the pool: it fires once, and the next run that judges the pool resolves it.
 * A raise held back for no room is not one: the pool being full is what the plan's conditions say.
 */
export function unraisedAlerts(
  ctx: RunContext,
  project: string,
  plan: Plan,
  writes: readonly WriteResult[],
): Alert[] {
  const out: Alert[] = [];
  for (const pool of plan.pools.filter((p) => p.project === project)) {
    const held = writesInPool(plan, pool, writes).filter((w) => w.cause === 'pool-unreadable');
    const [first] = held;
    if (first === undefined) continue;
    out.push(
      makeAlert(ctx, pool, {
        type: 'governor.degraded',
        severity: 'WARNING',
        key: 'pool-unreadable',
        summary: `${plural(held.length, 'raise')} in ${poolWords(pool)} not made: ${oneLine(first.reason)}`,
        details: {
          reason: 'pool-unreadable',
          services: held.map((w) => w.name),
          raises: held.map((w) => ({ service: w.name, from: w.from, to: w.planned })),
          why: first.reason,
        },
      }),
    );
  }
  return out;
}

/**
 * Whether a read was refused for a request quota: the adapters word a RESOURCE_EXHAUSTED with
 * its code (adapters/grpc-errors.ts), as Google's "Quota exceeded for quota metric ..." follows.
 */
function refusedForQuota(p: ObservationProblem): boolean {
  return /\bRESOURCE_EXHAUSTED\b/.test(p.error);
}

/** What to do when every listing was refused for a request quota (not for a permission). */
const QUOTA_HINT =
  "Google refused the reads for a request quota, RESOURCE_EXHAUSTED: the error names the quota and the project it is charged to; docs/performance.md, Google's request quotas";

/** governor.degraded for what observation could not read in the project; null when all was read. */
export function degradedAlert(
  ctx: RunContext,
  project: string,
  problems: readonly ObservationProblem[],
): Alert | null {
  const mine = problemsOf(problems, project);
  if (mine.length === 0) return null;
  // A region whose services could not be listed is skipped whole: nothing there is governed,
  // which is as grave as a held lease (ERROR), not a partial read (WARNING).
  const unlisted = mine.filter((p) => p.subject === 'services');
  const regions = unlistedRegions(project, problems);
  const skipped = regions.has(null)
    ? ['any region (its regions could not be listed)']
    : [...regions].filter((r) => r !== null).sort(compareText);
  const unit = unitLabel({ project, ...ctx });
  return makeAlert(ctx, projectWide(ctx, project), {
    type: 'governor.degraded',
    severity: skipped.length > 0 ? 'ERROR' : 'WARNING',
    key: 'observation',
    summary:
      skipped.length > 0
        ? `${unit} is not governed in ${someOf(skipped, 3)}: its services could not be listed (${plural(mine.length, 'problem')}; ${unlisted.every(refusedForQuota) ? QUOTA_HINT : 'governor check names a missing permission'})`
        : `The governor could not read everything in ${unit}: ${plural(mine.length, 'problem')}`,
    details: { reason: 'observation', problems: mine.map(renderProblem) },
  });
}

/**
 * The governor could not write its own metrics to Cloud Monitoring: its dashboard goes stale and
 * the "governor has not run" alert policy may fire while it runs. A condition of its own (key
 * `metrics`), apart from the observation one: it resolves at the next run that writes them.
 */
export function metricsDegradedAlert(ctx: RunContext, project: string, error: string): Alert {
  return makeAlert(ctx, projectWide(ctx, project), {
    type: 'governor.degraded',
    severity: 'WARNING',
    key: 'metrics',
    summary: `The governor could not write its metrics to Cloud Monitoring in ${unitLabel({ project, ...ctx })}: its dashboard is stale`,
    details: { reason: 'metrics', error },
  });
}

/**
 * Where this run could judge the conditions of a project, so where an absent one may resolve:
 * the whole project when everything was read, else only the pools it planned with a known quota
 * outside any region it could not list, and the pools that are gone. A pool whose region could not
 * be listed, or whose quota is unknown, keeps its conditions as they were (fail static: not
 * knowing is not the same as fixed).
 *
 * A pool is gone when a stored condition (`stored`: the places of the project's stored
 * conditions) names it, its region was listed (or is no longer governed), and the plan has no
 * such pool: its last GPU service was deleted, moved to another GPU type or redundancy, or lost
 * its GPU. Nothing there can hold any more, so its conditions resolve even while another pool has
 * a problem that lasts (a quota Cloud Quotas does not know, a metric not defined): judged only on
 * the whole project, they would fire for as long as that problem does.
 */
export function judgedScope(
  project: string,
  plan: Plan,
  problems: readonly ObservationProblem[],
  stored: readonly AlertPlace[] = [],
): string[] {
  const mine = problemsOf(problems, project);
  const pools = plan.pools.filter((p) => p.project === project);
  const unlisted = unlistedRegions(project, problems);
  const known = pools.filter((p) => p.budget !== null && !unlisted.has(p.region));
  if (mine.length === 0 && known.length === pools.length) return [project];
  const gone = goneIn(project, plan, unlisted);
  const gonePools = new Set(stored.flatMap((place) => gone.pool(place) ?? []));
  return [...known.map((p) => poolKey(p)), ...[...gonePools].sort(compareText)];
}

/**
 * The run's own conditions in the project, as dedupKeys: what the run judges of itself whatever it
 * could read of the fleet (it holds the lease; it read the outbox; it wrote its metrics or not).
 * A pool whose quota stays unknown keeps the project from being judged whole (judgedScope), yet
 * these resolve at the next run without them (docs/alerts.md, "The types"): kept for as long as
 * that pool is unknown, a lease refused once would stay firing for good, its resolve never sent.
 */
export function runJudgedConditions(ctx: RunContext, project: string): string[] {
  const where = projectWide(ctx, project);
  return ['lease', 'metrics', 'outbox'].map((key) =>
    dedupKeyOf('governor.degraded', where, null, key),
  );
}

/**
 * The regions of the project whose services could not be listed (a `services` problem); `null`
 * among them when its regions could not be listed at all.
 */
function unlistedRegions(
  project: string,
  problems: readonly ObservationProblem[],
): ReadonlySet<string | null> {
  return new Set(
    problemsOf(problems, project)
      .filter((p) => p.subject === 'services')
      .map((p) => p.region),
  );
}

/**
 * What this run knows is gone in the project, for a stored condition's place: only where its
 * region was listed (or is no longer governed), and nothing when its regions could not be listed.
 * `pool`: the pool's key when the place names a pool the plan does not have, else null.
 * `service`: whether the plan has no service of the place's name in the place's pool.
 */
function goneIn(
  project: string,
  plan: Plan,
  unlisted: ReadonlySet<string | null>,
): {
  pool: (place: AlertPlace) => string | null;
  service: (place: AlertPlace & Pick<Alert, 'service'>) => boolean;
} {
  // With no region listed (`null`: the project's regions unknown), nothing is known gone.
  if (unlisted.has(null)) return { pool: () => null, service: () => false };
  const planned = new Set(plan.pools.filter((p) => p.project === project).map((p) => poolKey(p)));
  const present = new Set(
    plan.services.filter((s) => s.project === project).map((s) => `${poolKey(s)}:${s.name}`),
  );
  const seen = (place: AlertPlace): string | null => {
    const key = alertPoolKey(place);
    return key !== null && place.project === project && !unlisted.has(place.region) ? key : null;
  };
  return {
    pool: (place) => {
      const key = seen(place);
      return key !== null && !planned.has(key) ? key : null;
    },
    service: (place) => {
      const key = seen(place);
      return key !== null && place.service !== null && !present.has(`${key}:${place.service}`);
    },
  };
}

/**
 * The conditions of the project this run could not judge although it observed their pool: the
 * `service.starved` of each governed service whose usage is unknown (fail static holds its cap)
 * or that is deploying. The planner judges starvation only on known usage, so their absence from
 * the plan says nothing: a firing one is kept as it is (`unjudged` of decideNotifications).
 */
export function unjudgedConditions(project: string, plan: Plan): string[] {
  return plan.services
    .filter(
      (s) =>
        s.project === project &&
        s.managed &&
        (s.why.basis.kind === 'usage-unknown' || s.why.basis.kind === 'deploying'),
    )
    .map((s) => dedupKeyOf('service.starved', s, s.name));
}

/**
 * The stored conditions of the project about a service that is gone from its pool: its region was
 * listed, and the plan has no service of that name in that pool (deleted, moved to another GPU
 * type or zonal redundancy, its GPU removed). They resolve even where the pool is not judged (its
 * quota unknown): what is known to be gone is not "not knowing" (`gone` of decideNotifications).
 * So do the conditions of a pool that is gone (its region listed, no such pool in the plan, as
 * judgedScope finds it): with nothing left in it to hold, a demand condition there resolves at
 * once rather than after the hold of `resolveAfterMs`.
 */
export function goneConditions(
  project: string,
  plan: Plan,
  problems: readonly ObservationProblem[],
  stored: ConditionState,
): string[] {
  const gone = goneIn(project, plan, unlistedRegions(project, problems));
  return Object.entries(stored)
    .filter(([, r]) => (r.service === null ? gone.pool(r) !== null : gone.service(r)))
    .map(([k]) => k)
    .sort(compareText);
}

/** An alert as the one Pub/Sub message subscribers read (docs/alerts.md): data, attributes, key. */
export function alertMessage(a: Alert): {
  data: Alert;
  attributes: Record<string, string>;
  orderingKey: string;
} {
  return { data: a, attributes: alertAttributes(a), orderingKey: orderingKey(a) };
}

/**
 * What of an alert its Pub/Sub message carries cut (alertMessage): each attribute and the
 * ordering key longer than Pub/Sub takes, with its length in bytes. Empty for every alert the
 * governor makes; a message read back from the store may name anything.
 */
export function messageCuts(a: Alert): string[] {
  const message = alertMessage(a);
  const cuts = Object.entries(wholeAttributes(a))
    .filter(([key, value]) => message.attributes[key] !== value)
    .map(([key, value]) => `its ${key} attribute (${utf8Length(value)} bytes)`);
  const key = alertPoolKey(a) ?? a.project;
  if (message.orderingKey !== key) cuts.push(`its ordering key (${utf8Length(key)} bytes)`);
  return cuts;
}

/**
 * Pub/Sub ordering key of an alert: its pool, or its project when it has no pool; cut to
 * MAX_ORDERING_KEY_BYTES (core/alert.ts), the same cut for every message of that pool.
 */
export function orderingKey(a: Alert): string {
  return cutUtf8(alertPoolKey(a) ?? a.project, MAX_ORDERING_KEY_BYTES);
}
