import { hostname } from 'node:os';

import { auditAlerts, auditFleet } from '../core/audit.js';
import { governorMetrics } from '../core/governor-metrics.js';
import type { CheckItem } from '../core/permissions.js';
import { quotaInPlan, type Plan } from '../core/plan.js';
import { plan as makePlan } from '../core/planner.js';
import { NO_PROJECTS, type Policy } from '../core/policy.js';
import { renderProblem } from '../core/problems.js';
import { restorePlan } from '../core/restore.js';
import type { ObservedService } from '../core/service.js';
import { plural } from '../core/text.js';
import { REGION_NAME } from '../core/units.js';
import { errorMessage, InputError, type Fault } from '../core/errors.js';
import { originalMaxes } from '../observe/annotations.js';
import { observe } from '../observe/observe.js';
import { RevisionMemo } from '../observe/serving-revisions.js';
import { withUnsetMax } from '../observe/unset-max.js';
import type { Outbox } from '../ports/index.js';
import { actOnPlan, beforeDeadline, type WriteResult } from './act.js';
import { alertEachProject } from './alerts.js';
import { alertLeaseHeld, leaseTtlMs, releaseAll, renewAfterPrompt, takeLeases } from './lease.js';
import { logSetAside, logUnreadableCount, prepareOutbox } from './outbox.js';
import { elapsedClock } from './elapsed.js';
import { createPacer } from './pacing.js';
import { preflightServices, preflightTopic } from './preflight.js';
import { recordRuns } from './run-record.js';
import {
  alertGrace,
  deadlineClock,
  leaseLost,
  logRunFailed,
  RunFailedError,
  runBound,
  type Decided,
  type ReconcileDeps,
  type ReconcileOptions,
  type Run,
  type RunReport,
} from './run.js';

// What the CLI, the function and the tools call a run with, and get back: imported from here.
export {
  ALERT_GRACE_MS,
  RunFailedError,
  runFailedMessage,
  type ReconcileDeps,
  type ReconcileOptions,
  type RunReport,
} from './run.js';
export { LEASE_MARGIN_MS } from './lease.js';

/**
 * One governor run, as a pipeline: lease → observe → plan → outbox → act → alert → record. The
 * steps that decide (the plan, the restore plan, events, quota changes, the degraded condition,
 * where conditions may resolve) are pure and live in core; the run only sequences them with the
 * reads and writes, each bounded by the run deadline. The CLI (`governor apply`) and the Cloud
 * Function both call this and only this.
 *
 * Each step's detail lives beside this file: the shape of a run and how it fails (run.ts), the
 * leases (lease.ts), the outbox (outbox.ts), act (act.ts), the alerts (alerts.ts) and what a
 * unit takes from the other units of its project (other-units.ts), the run records
 * (run-record.ts).
 */

export async function reconcile(
  policy: Policy,
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<RunReport> {
  if (policy.projects.length === 0)
    throw new InputError('the policy names no project to govern', [
      { path: 'projects', message: NO_PROJECTS },
    ]);
  checkUnitRegion(policy, options.region);
  const run = await startRun(policy, deps, options);
  const { report } = run;
  const held = await takeLeases(run);
  run.held = held;
  // A quota request's prompt, after the writes, may take minutes too (lease.ts).
  const askQuota = options.confirmQuotaRequest;
  if (askQuota)
    run.options = {
      ...options,
      confirmQuotaRequest: async (request) => {
        const yes = await askQuota(request);
        await renewAfterPrompt(run);
        return yes;
      },
    };
  if (report.leaseHeld.length > 0) await alertLeaseHeld(run);
  if (held.length === 0) {
    report.outcome = 'lease-held';
    return report;
  }
  // The services' permission check runs beside the writes; it never rejects (see checkServices).
  let checks: Promise<void> = Promise.resolve();
  try {
    // One round: the observation, the topic's preflight and the outboxes, all at once.
    const { decided, outboxes } = await firstRound(run, held);
    const asked = run.mode === 'enforce' && decided.plan.changes.length > 0 && !!options.confirm;
    checks = checkServices(run, decided.plan);
    // A person answering the prompt sees what the check found first; a run without one does not
    // wait for it.
    if (asked) await checks;
    if (!(await confirmed(run, decided.plan))) {
      report.outcome = 'declined';
      return report;
    }
    // The answer may have taken minutes: the leases and the deadline count from it (lease.ts).
    if (asked) await renewAfterPrompt(run);
    // Every held project's events stored before the first write (at once: they are independent).
    await settleAll(
      held.map((project, i) => prepareOutbox(run, project, decided, outboxes[i] as Outbox)),
    );
    // After a confirmation prompt the observation may be minutes old: act reads again first.
    if (run.mode === 'enforce')
      report.writes = await act(run, decided.plan, asked ? undefined : decided.observed);
    await checks;
    const metricErrors = await writeMetrics(run, held, decided.plan);
    await alertEachProject(run, held, decided, metricErrors);
    const failed = report.writes.filter((w) => w.outcome === 'failed').length;
    if (failed > 0) {
      report.outcome = 'failed';
      report.error = `${plural(failed, 'write')} failed`;
    } else if (report.leaseHeld.length > 0) {
      report.outcome = 'lease-held';
    }
    return report;
  } catch (e) {
    report.outcome = 'failed';
    report.error = errorMessage(e);
    logRunFailed(deps.log, report);
    throw new RunFailedError(report, e);
  } finally {
    await checks;
    // Finished as long after its start as the run took (the time elapsed): a wall clock that
    // stepped meanwhile would date the end before the start, or minutes after the real one.
    const finished = run.startedWall + (run.elapsed() - run.startedElapsed);
    await recordRuns(deps.store, deps.log, held, report, run.startedWall, finished, run.ctx.at);
    await releaseAll(deps, held, run.holder);
  }
}

/**
 * A regional unit's run governs its one region: its policy's `regions` must be exactly it, else
 * the run would write, and alert on, regions that are not its unit's.
 */
function checkUnitRegion(policy: Policy, region: string | undefined): void {
  if (region === undefined) return;
  const faults: Fault[] = [];
  if (!REGION_NAME.test(region))
    faults.push({
      path: 'region',
      message: `must be a Cloud Run region such as "us-central1", not ${JSON.stringify(region.slice(0, 60))}`,
    });
  else if (policy.regions?.length !== 1 || policy.regions[0] !== region)
    faults.push({
      path: 'regions',
      message: `a regional unit of ${region} governs that region only, not ${policy.regions === undefined ? 'every region' : policy.regions.join(', ') || 'no region'}`,
    });
  if (faults.length > 0) throw new InputError('invalid regional unit', faults);
}

async function startRun(
  policy: Policy,
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<Run> {
  const wall = deps.wallClock ?? Date.now;
  const startedWall = wall();
  // The deadline on the time elapsed: no step of the wall clock lengthens the run; one forward
  // past the lease's end ends it there (run.ts, deadlineClock).
  const elapsed = elapsedClock(deps.elapsedClock, deps.wallClock);
  const startedElapsed = elapsed();
  const mode = options.mode ?? policy.mode;
  const nowMs = await deps.now();
  const deadline = startedElapsed + options.deadlineMs;
  const report: RunReport = {
    runId: options.runId,
    mode,
    outcome: 'ok',
    plan: null,
    governorId: null,
    writes: [],
    published: 0,
    leaseHeld: [],
    problems: [],
    findings: [],
    error: null,
    undelivered: [],
    pressure: {},
    alerts: [],
  };
  try {
    report.governorId = await beforeDeadline(
      () => deps.store.governorId(),
      { deadline, clock: elapsed },
      "reading the governor's id",
    );
  } catch (e) {
    report.outcome = 'failed';
    report.error = `the state store could not say which governor this is: ${errorMessage(e)}`;
    logRunFailed(deps.log, report);
    throw new RunFailedError(report, e);
  }
  return {
    policy,
    deps,
    options,
    mode,
    wall,
    startedWall,
    elapsed,
    startedElapsed,
    deadline,
    leaseDeadline: Infinity,
    nowMs,
    ctx: {
      at: new Date(nowMs).toISOString(),
      runId: options.runId,
      ...(options.region === undefined ? {} : { region: options.region }),
    },
    report,
    holder: `${report.governorId}/${options.runId}@${hostname()}:${process.pid}`,
    quotaOrphans: new Map(),
    unreadableCounts: new Set(),
    held: [],
    overAfterRaises: [],
    unverifiedRaises: [],
    revisions: new RevisionMemo(),
  };
}

/** Observes the projects held, plans (or plans the restore), and audits the fleet. */
async function observeAndPlan(run: Run, held: string[]): Promise<Decided> {
  const { deps, options, report } = run;
  const scoped: Policy = { ...run.policy, projects: held, mode: run.mode };
  const observation = await beforeDeadline(
    () => observe(scoped, deps.ports, run.nowMs, run.revisions),
    runBound(run),
    'observing',
  );
  report.problems = observation.problems;
  for (const p of observation.problems) deps.log.log('WARNING', renderProblem(p));
  const planned = makePlan(observation.snapshot, scoped, run.ctx.at, {
    runId: options.runId,
    shouldStop: () => deadlineClock(run)() > run.deadline,
  });
  const plan = options.restore
    ? restorePlan(planned, originalMaxes(observation.services), scoped.limits.maxChangesPerRun)
    : planned;
  report.plan = plan;
  // The fleet audit: one service.misconfigured condition per service that breaks a rule.
  const audit = auditFleet({
    services: observation.services,
    snapshot: observation.snapshot,
    policy: scoped,
  });
  report.findings = audit.findings;
  const misconfigured = auditAlerts(report.findings, run.ctx);
  return {
    plan,
    observed: observation.services,
    problems: observation.problems,
    misconfigured,
    unjudgedAudit: audit.unjudged,
    audited: audit.audited,
  };
}

/**
 * The run's first round, all at once: the observation (then the plan), the topic's preflight,
 * and each held project's outbox. None depends on another, and none writes. The topic's
 * preflight stops the run before any write when alerts cannot be published; its error comes
 * first when several fail.
 */
async function firstRound(
  run: Run,
  held: string[],
): Promise<{ decided: Decided; outboxes: Outbox[] }> {
  const { deps } = run;
  const bound = runBound(run);
  const [, decided, outboxes] = await settleAll([
    beforeDeadline(() => preflightTopic(run.policy, deps.sink), bound, 'checking the alert topic'),
    observeAndPlan(run, held),
    settleAll(
      held.map((project) =>
        beforeDeadline(
          async () => {
            // Named where it is read: a run declined or failed after this read still says so.
            const box = await deps.store.listOutbox(project);
            logSetAside(run, project, box);
            logUnreadableCount(run, project, box);
            return box;
          },
          bound,
          `reading the outbox of ${project}`,
        ),
      ),
    ),
  ] as const);
  return { decided, outboxes };
}

/**
 * Each service the plan will write grants `run.services.update`, else a warning naming what to
 * grant (the write is then denied and reported as every denied write is). Only advice, so it is asked
 * beside the first writes rather than before them, and never fails the run: a check that cannot
 * be made is a warning too.
 */
async function checkServices(run: Run, plan: Plan): Promise<void> {
  const { deps } = run;
  let items: CheckItem[];
  try {
    items = await beforeDeadline(
      () => preflightServices(plan, run.mode, deps.ports.run),
      runBound(run),
      'checking the permissions of the services to write',
    );
  } catch (e) {
    deps.log.log(
      'WARNING',
      `the permissions of the services to write were not checked: ${errorMessage(e)}`,
    );
    return;
  }
  for (const i of items.filter((x) => x.status === 'missing' || x.status === 'error')) {
    deps.log.log(
      'WARNING',
      `${i.subject}: ${i.permission ?? 'check'} ${i.status}: ${i.detail}${i.fix ? `; ${i.fix}` : ''}`,
    );
  }
}

/**
 * Like Promise.all, but waits for every task to end before it throws (the first error in the
 * order given): no read or store call of a failed step outlives the run.
 */
async function settleAll<T extends readonly unknown[]>(
  tasks: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
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
    // A service that sets no max is counted at what Cloud Run derives from the quota, as planned;
    // a revision observation read is not read again.
    run: withUnsetMax(deps.ports.run, (id) => quotaInPlan(plan, id), run.revisions),
    // Paced on the time elapsed, as the deadline given to each write is counted.
    pacer: createPacer(policy.limits.writesPerMinute, run.elapsed, deps.sleep),
    log: deps.log,
    nowIso: run.ctx.at,
    deadline: run.deadline,
    clock: deadlineClock(run),
    elapsed: run.elapsed,
    wall: run.wall,
    writeConcurrency: policy.limits.writeConcurrency,
    quotas: deps.ports.quotas,
    ...(observed ? { observed } : {}),
    writerId: writerStamp(run),
    // Another governor's stamp counts as long as its lease could: the same TTL as ours.
    otherWriterTtlMs: leaseTtlMs(options),
    onOverAfterRaises: (over) => run.overAfterRaises.push(over),
    onUnverified: (unverified) => run.unverifiedRaises.push(unverified),
    leaseLost: (project) => leaseLost(run, project),
  });
}

/**
 * What this governor stamps on the services it writes: its name for people (RuntimeOptions'
 * governorId) and its store's id. The store's id is what tells governors apart: every run on one
 * store shares it (and the store's lease excludes them), governors on different stores (two
 * state directories on one machine, a laptop beside the function) have different ones, and those
 * see each other only here.
 */
function writerStamp(run: Run): string {
  return `${run.options.writerId ?? 'gpu-governor'}/${run.report.governorId ?? 'unknown'}`;
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
    const seconds = (run.elapsed() - run.startedElapsed) / 1000;
    const points = governorMetrics(project, plan, report.writes, seconds, run.options.region);
    try {
      const outcome = await beforeDeadline(
        () => write(project, run.nowMs, points),
        alertGrace(run),
        `writing the governor's metrics of ${project}`,
      );
      if (outcome === 'too-soon')
        deps.log.log(
          'INFO',
          `${project}: the governor's metrics already have points from a run less than 5 s ago; this run's were not needed`,
        );
    } catch (e) {
      const error = errorMessage(e);
      errors.set(project, error);
      deps.log.log('WARNING', `${project}: the governor's metrics were not written: ${error}`);
    }
  }
  return errors;
}
