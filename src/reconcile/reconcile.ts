import type { AlertSink, ObservePorts, StateStore } from '../ports/index.js';
import { alertAttributes, type Alert } from '../core/alert.js';
import { auditAlerts, auditServices, type AuditFinding } from '../core/audit.js';
import { durationMs } from '../core/duration.js';
import { governorMetrics } from '../core/governor-metrics.js';
import { decideNotifications } from '../core/notify.js';
import type { Plan } from '../core/plan.js';
import { plan as makePlan } from '../core/planner.js';
import type { Policy } from '../core/policy.js';
import { renderProblem, type ObservationProblem } from '../core/problems.js';
import { restorePlan } from '../core/restore.js';
import {
  contendedAlert,
  degradedAlert,
  judgedScope,
  metricsDegradedAlert,
  orderingKey,
  quotaChanges,
  runEvents,
  type RunContext,
} from '../core/run-alerts.js';
import { GovernorError } from '../errors.js';
import type { Logger } from '../log.js';
import { originalMaxes } from '../observe/annotations.js';
import { observe } from '../observe/observe.js';
import type { ObservedService } from '../core/service.js';
import { withUnsetMax } from '../observe/unset-max.js';
import { samePool } from '../core/pool.js';
import { actOnPlan, beforeDeadline, type WriteResult } from './act.js';
import { createPacer } from './pacing.js';
import { preflightRun } from './preflight.js';
import { markDelivered, pendingEvents, recordRuns } from './run-record.js';

/**
 * One governor run, as a pipeline: lease → observe → plan → act → alert → record. The steps that
 * decide (the plan, the restore plan, events, quota changes, the degraded condition, where
 * conditions may resolve) are pure and live in core; this file only sequences them with the
 * reads and writes, each bounded by the run deadline. The CLI (`governor apply`) and the Cloud
 * Function both call this and only this.
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
  /** This governor's id, stamped on what it writes (RuntimeOptions.governorId; default `gpu-governor`). */
  writerId?: string;
}

export interface RunReport {
  runId: string;
  mode: Policy['mode'];
  outcome: 'ok' | 'failed' | 'lease-held' | 'declined';
  plan: Plan | null;
  writes: WriteResult[];
  published: number;
  /** The alert messages of this run, as published (or only logged, without a topic), in order. */
  alerts: Alert[];
  /** Projects another governor held; nothing was done there. */
  leaseHeld: { project: string; heldBy?: string; expiresAt?: string }[];
  /** What observation could not read. */
  problems: ObservationProblem[];
  /** The fleet audit's findings (every rule a GPU service breaks). */
  findings: AuditFinding[];
  error: string | null;
  /** Events this run could not publish; kept in its run record for the next run to send. */
  undelivered: Alert[];
}

/** What every step of one run shares. */
interface Run {
  policy: Policy;
  deps: ReconcileDeps;
  options: ReconcileOptions;
  mode: Policy['mode'];
  wall: () => number;
  startedWall: number;
  /** Wall-clock instant after which no write starts. */
  deadline: number;
  nowMs: number;
  ctx: RunContext;
  report: RunReport;
}

export async function reconcile(
  policy: Policy,
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<RunReport> {
  const run = await startRun(policy, deps, options);
  const { report } = run;
  const held = await takeLeases(run);
  if (held.length === 0) {
    report.outcome = 'lease-held';
    return report;
  }
  try {
    const decided = await observeAndPlan(run, held);
    await preflight(run, decided.plan);
    const asked = run.mode === 'enforce' && decided.plan.changes.length > 0 && !!options.confirm;
    if (!(await confirmed(run, decided.plan))) {
      report.outcome = 'declined';
      return report;
    }
    // After a confirmation prompt the observation may be minutes old: act reads again first.
    if (run.mode === 'enforce')
      report.writes = await act(run, decided.plan, asked ? undefined : decided.observed);
    const metricErrors = await writeMetrics(run, held, decided.plan);
    for (const project of held)
      await alertProject(run, project, decided, metricErrors.get(project) ?? null);
    const failed = report.writes.filter((w) => w.outcome === 'failed').length;
    if (failed > 0) {
      report.outcome = 'failed';
      report.error = `${failed} write${failed === 1 ? '' : 's'} failed`;
    }
    return report;
  } catch (e) {
    report.outcome = 'failed';
    report.error = e instanceof Error ? e.message : String(e);
    throw new RunFailedError(report, e);
  } finally {
    await recordRuns(deps.store, deps.log, held, report, run.startedWall, run.wall());
    await releaseAll(deps, held, options.runId);
  }
}

async function startRun(
  policy: Policy,
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<Run> {
  const wall = deps.wallClock ?? Date.now;
  const startedWall = wall();
  const mode = options.mode ?? policy.mode;
  const nowMs = await deps.now();
  return {
    policy,
    deps,
    options,
    mode,
    wall,
    startedWall,
    deadline: startedWall + options.deadlineMs,
    nowMs,
    ctx: { at: new Date(nowMs).toISOString(), runId: options.runId },
    report: {
      runId: options.runId,
      mode,
      outcome: 'ok',
      plan: null,
      writes: [],
      published: 0,
      alerts: [],
      leaseHeld: [],
      problems: [],
      findings: [],
      error: null,
      undelivered: [],
    },
  };
}

/** One writer per project: a lease a little longer than the run may take. Returns those taken. */
async function takeLeases(run: Run): Promise<string[]> {
  const { deps, options, report } = run;
  const held: string[] = [];
  try {
    for (const project of run.policy.projects) {
      const lease = await beforeDeadline(
        () =>
          deps.store.acquireLease(project, options.runId, options.deadlineMs + 60_000, run.ctx.at),
        { deadline: run.deadline, clock: run.wall },
        `taking the lease of ${project}`,
      );
      if (lease.acquired) {
        held.push(project);
        continue;
      }
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
  } catch (e) {
    // The store cannot say who writes: nobody does. Give back what was taken, and fail loudly.
    report.outcome = 'failed';
    report.error = `the lease could not be taken: ${e instanceof Error ? e.message : String(e)}`;
    deps.log.log('ERROR', report.error);
    await releaseAll(deps, held, options.runId);
    throw new RunFailedError(report, e);
  }
  return held;
}

interface Decided {
  plan: Plan;
  /** Every service the observation read. */
  observed: ObservedService[];
  problems: ObservationProblem[];
  /** service.misconfigured conditions from the fleet audit. */
  misconfigured: Alert[];
}

/** Observes the projects held, plans (or plans the restore), and audits the fleet. */
async function observeAndPlan(run: Run, held: string[]): Promise<Decided> {
  const { deps, options, report } = run;
  const scoped: Policy = { ...run.policy, projects: held, mode: run.mode };
  const observation = await beforeDeadline(
    () => observe(scoped, deps.ports, run.nowMs),
    { deadline: run.deadline, clock: run.wall },
    'observing',
  );
  report.problems = observation.problems;
  for (const p of observation.problems) deps.log.log('WARNING', renderProblem(p));
  const planned = makePlan(observation.snapshot, scoped, run.ctx.at, {
    runId: options.runId,
    shouldStop: () => run.wall() > run.deadline,
  });
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
  const misconfigured = auditAlerts(report.findings, run.ctx);
  return { plan, observed: observation.services, problems: observation.problems, misconfigured };
}

/**
 * Before any write: the alert topic can be published to (else the run stops: nothing written
 * that no one would hear of), and each service to write grants `run.services.update` (else a
 * warning naming what to grant; the write is then denied and reported as any denied write).
 */
async function preflight(run: Run, plan: Plan): Promise<void> {
  const { deps } = run;
  const items = await beforeDeadline(
    () => preflightRun(run.policy, plan, run.mode, deps.ports.run, deps.sink),
    { deadline: run.deadline, clock: run.wall },
    'checking permissions',
  );
  for (const i of items.filter((x) => x.status === 'missing' || x.status === 'error')) {
    deps.log.log(
      'WARNING',
      `${i.subject}: ${i.permission ?? 'check'} ${i.status}: ${i.detail}${i.fix ? `; ${i.fix}` : ''}`,
    );
  }
}

/** Whether to go on: asked only when there is something to write. */
async function confirmed(run: Run, plan: Plan): Promise<boolean> {
  const ask = run.options.confirm;
  if (run.mode !== 'enforce' || plan.changes.length === 0 || !ask) return true;
  return ask(plan);
}

async function act(
  run: Run,
  plan: Plan,
  observed: ObservedService[] | undefined,
): Promise<WriteResult[]> {
  const { policy, deps, options } = run;
  return actOnPlan(plan, {
    // A service that sets no max is counted at what Cloud Run derives from the quota, as planned.
    run: withUnsetMax(
      deps.ports.run,
      (id) => plan.pools.find((p) => samePool(p, id))?.quota ?? null,
    ),
    pacer: createPacer(policy.limits.writesPerMinute, run.wall, deps.sleep),
    log: deps.log,
    nowIso: run.ctx.at,
    deadline: run.deadline,
    clock: run.wall,
    writeConcurrency: policy.limits.writeConcurrency,
    quotas: deps.ports.quotas,
    ...(observed ? { observed } : {}),
    writerId: options.writerId ?? 'gpu-governor',
    // Another governor's stamp counts as long as its lease could: the same TTL as ours.
    otherWriterTtlMs: leaseTtlMs(options),
  });
}

/** How long a lease is taken for (see takeLeases): a little longer than a run may take. */
function leaseTtlMs(options: ReconcileOptions): number {
  return options.deadlineMs + 60_000;
}

/**
 * The run's own figures as custom metrics (core/governor-metrics.ts), one write per project once
 * the caps are written, so the dashboard shows what this run left. Best effort: a failure is a
 * warning and a `governor.degraded` condition (see alertProject), never a failed run, since the
 * caps and alerts matter more than the chart of them. Returns the error per project that failed.
 */
async function writeMetrics(run: Run, held: string[], plan: Plan): Promise<Map<string, string>> {
  const { deps, report } = run;
  const errors = new Map<string, string>();
  const monitoring = deps.ports.monitoring;
  if (!monitoring.writeGovernorMetrics) return errors;
  const write = monitoring.writeGovernorMetrics.bind(monitoring);
  for (const project of held) {
    const seconds = (run.wall() - run.startedWall) / 1000;
    const points = governorMetrics(project, plan, report.writes, seconds);
    try {
      const outcome = await beforeDeadline(
        () => write(project, run.nowMs, points),
        { deadline: run.deadline + ALERT_GRACE_MS, clock: run.wall },
        `writing the governor's metrics of ${project}`,
      );
      if (outcome === 'too-soon')
        deps.log.log(
          'INFO',
          `${project}: the governor's metrics already have points from a run less than 5 s ago; this run's were not needed`,
        );
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      errors.set(project, error);
      deps.log.log('WARNING', `${project}: the governor's metrics were not written: ${error}`);
    }
  }
  return errors;
}

/**
 * The project's alerts: the plan's conditions and the degraded one, decided against the stored
 * state, with this run's events and those earlier runs could not send; published, then the
 * state saved. Alerts and their state get a short grace after the write deadline, never more:
 * the run must answer before the function's timeout (terraform keeps 15 s between the two).
 */
async function alertProject(
  run: Run,
  project: string,
  decided: Decided,
  metricsError: string | null,
): Promise<void> {
  const { deps, report, ctx } = run;
  const { plan, problems } = decided;
  const grace = { deadline: run.deadline + ALERT_GRACE_MS, clock: run.wall };
  const conditions = [...plan.alerts, ...decided.misconfigured].filter(
    (a) => a.project === project,
  );
  const degraded = degradedAlert(ctx, project, problems);
  if (degraded) conditions.push(degraded);
  if (metricsError !== null) conditions.push(metricsDegradedAlert(ctx, project, metricsError));
  const contended = contendedAlert(ctx, project, report.writes);
  if (contended) conditions.push(contended);
  const lastRun = await beforeDeadline(
    () => deps.store.listRuns(project),
    grace,
    `reading the last run of ${project}`,
  );
  const events = [
    ...runEvents(ctx, project, plan, report.writes, run.mode),
    ...quotaChanges(ctx, project, plan, lastRun[0]?.quotas),
  ];
  const { state: previous, version } = await beforeDeadline(
    () => deps.store.loadConditions(project),
    grace,
    `reading the alert state of ${project}`,
  );
  const notifications = decideNotifications({
    previous,
    current: conditions,
    events,
    now: ctx.at,
    renotifyAfterMs: durationMs(run.policy.alerts.renotifyAfter),
    runId: ctx.runId,
    // A restore judges no condition (its plan is not the governing one): none may resolve.
    scope: run.options.restore ? [] : judgedScope(project, plan, problems),
  });
  // Events an earlier run could not publish go first: they happened first.
  const pending = await beforeDeadline(
    () => pendingEvents(deps.store, project),
    grace,
    `reading the undelivered events of ${project}`,
  );
  await publish(run, project, [...pending.alerts, ...notifications.publish], notifications.publish);
  // Only once every message is acknowledged: a failed publish leaves the state as it was, so
  // the next run sends again what this one could not.
  await beforeDeadline(
    () => deps.store.saveConditions(project, notifications.next, version),
    grace,
    `saving the alert state of ${project}`,
  );
  await markDelivered(deps.store, deps.log, project, pending.records);
}

/** Publishes and logs the project's alerts; on failure keeps this run's events in the report. */
async function publish(
  run: Run,
  project: string,
  outgoing: Alert[],
  decided: Alert[],
): Promise<void> {
  const { deps, report } = run;
  if (outgoing.length === 0) return;
  const sink = deps.sink;
  if (sink) {
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
        { deadline: run.deadline + ALERT_GRACE_MS, clock: run.wall },
        `publishing ${outgoing.length} alert(s) of ${project}`,
      );
    } catch (e) {
      // Conditions are decided again by the next run (the state is not saved); events
      // are not, so they go into this run's record for the next run to send.
      report.undelivered.push(...decided.filter((a) => a.status === 'event'));
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
    // `alert` marks the line as an alert, not a fault of the run: a terminal prints these as
    // alerts (from `report.alerts`), not as log lines (see ALERT_FIELD in log.ts).
    deps.log.log(severity, `alert ${a.type} ${a.status}: ${a.summary}`, { alert: a.dedupKey });
  }
  report.published += outgoing.length;
  report.alerts.push(...outgoing);
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
