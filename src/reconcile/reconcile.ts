import type { Alert } from '../core/alert.js';
import { makeAlert } from '../core/conditions.js';
import { durationMs } from '../core/duration.js';
import { decideNotifications } from '../core/notify.js';
import type { Plan } from '../core/plan.js';
import { plan as makePlan } from '../core/planner.js';
import type { Policy } from '../core/policy.js';
import { poolKey } from '../core/pool-key.js';
import { alertAttributes } from '../core/alert.js';
import { GovernorError } from '../errors.js';
import { auditAlerts, auditServices, type AuditFinding } from '../core/audit.js';
import type { Logger } from '../log.js';
import { observe, type ObservePorts } from '../observe/observe.js';
import type { RunRecord, StateStore } from '../state/store.js';
import { z } from 'zod';
import { Alert as AlertSchema } from '../core/alert.js';
import { originalMaxes } from '../observe/annotations.js';
import { restorePlan } from '../core/restore.js';
import type { AlertSink } from '../adapters/pubsub.js';
import { actOnPlan, beforeDeadline, type WriteResult } from './act.js';
import { createPacer } from './pacing.js';

/**
 * One governor run: lease → observe → plan → act → alert → record. The CLI (`governor apply`) and
 * the Cloud Function both call this and only this.
 */

/** How long after the write deadline alerts may still be published and their state saved. */
export const ALERT_GRACE_MS = 10_000;

export interface ReconcileDeps {
  ports: ObservePorts;
  store: StateStore;
  /** Where alerts go; null: they are only logged (no topic in the policy). */
  sink: AlertSink | null;
  log: Logger;
  /** The run's time (the emulator's clock against the emulator). */
  now: () => Promise<number>;
  /** Wall clock for deadlines and pacing. */
  wallClock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ReconcileOptions {
  runId: string;
  /** Overrides the policy's mode (e.g. a dry run from the command line). */
  mode?: Policy['mode'];
  /** No write starts after this long (ms); shorter than the function's timeout. */
  deadlineMs: number;
  /** Asked once the plan is known and before any write; false: nothing is written or published. */
  confirm?: (plan: Plan) => Promise<boolean>;
  /** Put governed services back to the max they had before the governor first changed them. */
  restore?: boolean;
}

export interface RunReport {
  runId: string;
  mode: Policy['mode'];
  outcome: 'ok' | 'failed' | 'lease-held' | 'declined';
  plan: Plan | null;
  writes: WriteResult[];
  published: number;
  /** Projects another governor held; nothing was done there. */
  leaseHeld: { project: string; heldBy?: string; expiresAt?: string }[];
  problems: string[];
  /** The fleet audit's findings (every rule a GPU service breaks). */
  findings: AuditFinding[];
  error: string | null;
  /** Events this run could not publish; kept in its run record for the next run to send. */
  undelivered: Alert[];
}

export async function reconcile(
  policy: Policy,
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<RunReport> {
  const wall = deps.wallClock ?? Date.now;
  const startedWall = wall();
  const deadline = startedWall + options.deadlineMs;
  const mode = options.mode ?? policy.mode;
  const nowMs = await deps.now();
  const nowIso = new Date(nowMs).toISOString();
  const report: RunReport = {
    runId: options.runId,
    mode,
    outcome: 'ok',
    plan: null,
    writes: [],
    published: 0,
    leaseHeld: [],
    problems: [],
    findings: [],
    error: null,
    undelivered: [],
  };

  // One writer per project: a lease a little longer than the run may take.
  const held: string[] = [];
  try {
    for (const project of policy.projects) {
      const lease = await beforeDeadline(
        () => deps.store.acquireLease(project, options.runId, options.deadlineMs + 60_000, nowIso),
        { deadline, clock: wall },
        `taking the lease of ${project}`,
      );
      if (lease.acquired) held.push(project);
      else {
        report.leaseHeld.push({
          project,
          ...(lease.heldBy ? { heldBy: lease.heldBy } : {}),
          ...(lease.expiresAt ? { expiresAt: lease.expiresAt } : {}),
        });
        deps.log.log(
          'WARNING',
          `${project}: another governor (${lease.heldBy ?? 'unknown'}) holds the lease until ${lease.expiresAt ?? '?'}: nothing done here`,
        );
      }
    }
  } catch (e) {
    // The store cannot say who writes: nobody does. Give back what was taken, and fail loudly.
    report.outcome = 'failed';
    report.error = `the lease could not be taken: ${e instanceof Error ? e.message : String(e)}`;
    deps.log.log('ERROR', report.error);
    await releaseAll(deps, held, options.runId);
    throw new RunFailedError(report, e);
  }
  if (held.length === 0) {
    report.outcome = 'lease-held';
    return report;
  }
  try {
    const scoped: Policy = { ...policy, projects: held, mode };
    const observation = await beforeDeadline(
      () => observe(scoped, deps.ports, nowMs),
      { deadline, clock: wall },
      'observing',
    );
    report.problems = observation.problems;
    for (const p of observation.problems) deps.log.log('WARNING', p);
    const planned = makePlan(observation.snapshot, scoped, nowIso, { runId: options.runId });
    const plan = options.restore
      ? restorePlan(planned, originalMaxes(observation.services))
      : planned;
    report.plan = plan;
    // The fleet audit: one service.misconfigured condition per service that breaks a rule.
    report.findings = auditServices({
      services: observation.services,
      snapshot: observation.snapshot,
      policy: scoped,
    });
    const misconfigured = auditAlerts(report.findings, { at: nowIso, runId: options.runId });

    if (
      mode === 'enforce' &&
      plan.changes.length > 0 &&
      options.confirm &&
      !(await options.confirm(plan))
    ) {
      report.outcome = 'declined';
      return report;
    }
    if (mode === 'enforce') {
      report.writes = await actOnPlan(plan, {
        run: deps.ports.run,
        pacer: createPacer(policy.limits.writesPerMinute, wall, deps.sleep),
        log: deps.log,
        nowIso,
        deadline,
        clock: wall,
        writeConcurrency: policy.limits.writeConcurrency,
        quotas: deps.ports.quotas,
      });
    }
    const failed = report.writes.filter((w) => w.outcome === 'failed');

    // Alerts: the plan's conditions (plus what observation could not read), this run's events.
    for (const project of held) {
      const conditions = [...plan.alerts, ...misconfigured].filter((a) => a.project === project);
      const problems = observation.problems.filter((p) => p.startsWith(`${project}`));
      if (problems.length > 0) {
        conditions.push(
          makeAlert(
            { at: nowIso, runId: options.runId },
            { project, region: null, accelerator: null, zonalRedundancy: null },
            {
              type: 'governor.degraded',
              severity: 'WARNING',
              key: 'observation',
              summary: `The governor could not read everything in ${project}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
              details: { reason: 'observation', problems },
            },
          ),
        );
      }
      const events = eventsFor(project, plan, report.writes, mode, nowIso, options.runId);
      events.push(
        ...quotaChanges(
          project,
          plan,
          (await deps.store.listRuns(project))[0]?.quotas,
          nowIso,
          options.runId,
        ),
      );
      // Alerts and their state get a short grace after the write deadline, never more: the run
      // must answer before the function's timeout (terraform keeps 15 s between the two).
      const grace = { deadline: deadline + ALERT_GRACE_MS, clock: wall };
      const { previous, version } = await beforeDeadline(
        () => load(deps.store, project),
        grace,
        `reading the alert state of ${project}`,
      );
      const decided = decideNotifications({
        previous,
        current: conditions,
        events,
        now: nowIso,
        renotifyAfterMs: durationMs(policy.alerts.renotifyAfter),
        runId: options.runId,
        scope: judgedScope(project, plan, problems),
      });
      // Events an earlier run could not publish go first: they happened first.
      const pending = await beforeDeadline(
        () => pendingEvents(deps.store, project),
        grace,
        `reading the undelivered events of ${project}`,
      );
      const outgoing = [...pending.alerts, ...decided.publish];
      if (outgoing.length > 0) {
        if (deps.sink) {
          const sink = deps.sink;
          try {
            await beforeDeadline(
              () =>
                sink.publish(
                  outgoing.map((a) => ({
                    data: a,
                    attributes: alertAttributes(a),
                    orderingKey: orderingKey(a),
                  })),
                ),
              grace,
              `publishing ${outgoing.length} alert(s) of ${project}`,
            );
          } catch (e) {
            // Conditions are decided again by the next run (the state is not saved); events
            // are not, so they go into this run's record for the next run to send.
            report.undelivered.push(...decided.publish.filter((a) => a.status === 'event'));
            throw e;
          }
        }
        for (const a of outgoing) {
          const severity =
            a.status !== 'firing' || a.severity === 'INFO'
              ? 'INFO'
              : a.severity === 'WARNING'
                ? 'WARNING'
                : 'ERROR';
          deps.log.log(severity, `alert ${a.type} ${a.status}: ${a.summary}`, {
            alert: a.dedupKey,
          });
        }
      }
      report.published += outgoing.length;
      // Only once every message is acknowledged: a failed publish leaves the state as it was, so
      // the next run sends again what this one could not.
      await beforeDeadline(
        () => deps.store.saveConditions(project, decided.next, version),
        grace,
        `saving the alert state of ${project}`,
      );
      await markDelivered(deps, project, pending.records);
    }
    if (failed.length > 0) {
      report.outcome = 'failed';
      report.error = `${failed.length} write${failed.length === 1 ? '' : 's'} failed`;
    }
    return report;
  } catch (e) {
    report.outcome = 'failed';
    report.error = e instanceof Error ? e.message : String(e);
    throw new RunFailedError(report, e);
  } finally {
    await record(deps, held, report, startedWall, wall);
    await releaseAll(deps, held, options.runId);
  }
}

/** Gives the leases back; a store that cannot be reached lets them expire instead. */
async function releaseAll(deps: ReconcileDeps, projects: string[], runId: string): Promise<void> {
  for (const project of projects) {
    try {
      await deps.store.releaseLease(project, runId);
    } catch (e) {
      deps.log.log(
        'WARNING',
        `${project}: could not release the lease (it expires by itself): ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
}

/** The run failed after it started (an API, a publish, the store); the report says how far it got. */
export class RunFailedError extends GovernorError {
  constructor(
    readonly report: RunReport,
    cause: unknown,
  ) {
    super(`run ${report.runId} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** Events earlier runs could not publish, oldest run first, with the records that hold them. */
async function pendingEvents(
  store: StateStore,
  project: string,
): Promise<{ alerts: Alert[]; records: RunRecord[] }> {
  const records = (await store.listRuns(project))
    .filter((r) => r.undelivered !== undefined)
    .reverse();
  const alerts: Alert[] = [];
  for (const r of records) {
    const parsed = z.array(AlertSchema).safeParse(safeJson(r.undelivered ?? '[]'));
    if (parsed.success) alerts.push(...parsed.data);
  }
  return { alerts, records };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** Records the runs again without their undelivered events, now sent. */
async function markDelivered(
  deps: ReconcileDeps,
  project: string,
  records: readonly RunRecord[],
): Promise<void> {
  for (const r of records) {
    const rest: RunRecord = { ...r };
    delete rest.undelivered;
    try {
      await deps.store.recordRun(project, rest);
    } catch (e) {
      // The next run sends them again: at least once, as Pub/Sub itself (alerts carry an id).
      deps.log.log(
        'WARNING',
        `${project}: sent the undelivered events of ${r.runId} but could not record it: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
}

async function load(store: StateStore, project: string) {
  const { state, version } = await store.loadConditions(project);
  return { previous: state, version };
}

/**
 * Where this run could judge the conditions, so where an absent one may resolve: the whole
 * project when everything was read, else only the pools it saw with a known quota. A pool of a
 * region that could not be listed, or whose quota is unknown, keeps its conditions as they were
 * (fail static: not knowing is not the same as fixed).
 */
function judgedScope(project: string, plan: Plan, problems: string[]): string[] {
  const pools = plan.pools.filter((p) => p.project === project);
  const known = pools.filter((p) => p.budget !== null);
  if (problems.length === 0 && known.length === pools.length) return [project];
  return known.map((p) => poolKey(p));
}

function orderingKey(a: Alert): string {
  if (a.region === null || a.accelerator === null || a.zonalRedundancy === null) return a.project;
  return poolKey({
    project: a.project,
    region: a.region,
    accelerator: a.accelerator,
    zonalRedundancy: a.zonalRedundancy,
  });
}

function eventsFor(
  project: string,
  plan: Plan,
  writes: WriteResult[],
  mode: Policy['mode'],
  at: string,
  runId: string,
): Alert[] {
  const events: Alert[] = [];
  const ctx = { at, runId };
  for (const pool of plan.pools.filter((p) => p.project === project)) {
    const key = poolKey(pool);
    const inPool = new Set(plan.changes.filter((c) => poolKey(c) === key).map((c) => c.name));
    const mine = writes.filter(
      (w) => w.project === pool.project && w.region === pool.region && inPool.has(w.name),
    );
    const changes = plan.changes.filter((c) => poolKey(c) === key);
    if (mode === 'dry-run' && changes.length > 0) {
      events.push(
        makeAlert(ctx, pool, {
          type: 'rebalance.planned',
          status: 'event',
          severity: 'INFO',
          summary: `Dry run: ${changes.length} change${changes.length === 1 ? '' : 's'} planned in ${pool.region} ${pool.accelerator}, none written`,
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
    const written = mine.filter((w) => w.outcome === 'written');
    if (written.length > 0) {
      events.push(
        makeAlert(ctx, pool, {
          type: 'rebalance.applied',
          status: 'event',
          severity: 'INFO',
          summary: `${written.length} cap${written.length === 1 ? '' : 's'} changed in ${pool.region} ${pool.accelerator}`,
          details: {
            writes: written.map((w) => ({
              service: w.name,
              from: w.from,
              to: w.written,
              reason: w.reason,
            })),
            skipped: mine
              .filter((w) => w.outcome === 'skipped')
              .map((w) => ({ service: w.name, reason: w.reason })),
            budget: pool.budget,
          },
        }),
      );
    }
    for (const w of mine.filter((x) => x.outcome === 'failed')) {
      events.push(
        makeAlert(ctx, pool, {
          type: 'apply.failed',
          status: 'event',
          severity: 'ERROR',
          service: w.name,
          summary: `Could not set ${w.name} from ${w.from} to ${w.planned}: ${w.reason}`,
          details: { from: w.from, to: w.planned, reason: w.reason },
        }),
      );
    }
  }
  return events;
}

/** quota.changed: a pool's quota differs from what the previous run read (both known). */
function quotaChanges(
  project: string,
  plan: Plan,
  previous: Record<string, number | null> | undefined,
  at: string,
  runId: string,
): Alert[] {
  if (!previous) return [];
  const events: Alert[] = [];
  for (const pool of plan.pools.filter((p) => p.project === project)) {
    const before = previous[poolKey(pool)];
    if (
      before === undefined ||
      before === null ||
      pool.quota === null ||
      pool.quotaSource === 'policy'
    )
      continue;
    if (before === pool.quota) continue;
    events.push(
      makeAlert({ at, runId }, pool, {
        type: 'quota.changed',
        status: 'event',
        severity: 'INFO',
        summary: `The GPU quota of ${pool.region} ${pool.accelerator}${pool.zonalRedundancy ? '' : ' (no zonal redundancy)'} changed from ${before} to ${pool.quota}`,
        details: { from: before, to: pool.quota, source: pool.quotaSource },
      }),
    );
  }
  return events;
}

async function record(
  deps: ReconcileDeps,
  projects: string[],
  report: RunReport,
  startedWall: number,
  wall: () => number,
): Promise<void> {
  for (const project of projects) {
    const writes = report.writes.filter((w) => w.project === project);
    const undelivered = report.undelivered.filter((a) => a.project === project);
    try {
      await deps.store.recordRun(project, {
        runId: report.runId,
        startedAt: new Date(startedWall).toISOString(),
        finishedAt: new Date(wall()).toISOString(),
        mode: report.mode,
        outcome: report.outcome === 'declined' ? 'ok' : report.outcome,
        changes: writes.filter((w) => w.outcome === 'written').length,
        skips:
          writes.filter((w) => w.outcome !== 'written').length +
          (report.plan?.deferred.filter((d) => d.project === project).length ?? 0),
        alerts: report.published,
        error: report.error,
        quotas: Object.fromEntries(
          (report.plan?.pools ?? [])
            .filter((p) => p.project === project)
            // A quota the policy sets is the team's own choice, not news.
            .map((p) => [poolKey(p), p.quotaSource === 'policy' ? null : p.quota]),
        ),
        // Events this run could not publish: the next run sends them (see pendingEvents).
        ...(undelivered.length > 0 ? { undelivered: JSON.stringify(undelivered) } : {}),
      });
    } catch (e) {
      deps.log.log(
        'ERROR',
        `${project}: could not record the run: ${e instanceof Error ? e.message : String(e)}${undelivered.length > 0 ? `; ${undelivered.length} undelivered event(s) are lost` : ''}`,
      );
    }
  }
}
