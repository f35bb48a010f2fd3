import { hostname } from 'node:os';

import {
  type AlertSink,
  type LeaseResult,
  type ObservePorts,
  type Outbox,
  type OutboxEntry,
  type QuotaRequestPort,
  type RunRecord,
  type StateStore,
  type VersionedConditions,
  type ConditionState,
  type OtherUnit,
  fromTheFuture,
  plannedAt,
  runAgeMs,
  runDatedAhead,
  PartialPublishError,
} from '../ports/index.js';
import { alertBytes, fitWhole, MAX_ALERT_BYTES, type Alert } from '../core/alert.js';
import { auditAlerts, auditServices, type AuditFinding } from '../core/audit.js';
import { durationMs } from '../core/duration.js';
import { conditionsAsLeft } from '../core/conditions.js';
import { governorMetrics } from '../core/governor-metrics.js';
import {
  acknowledgedState,
  claimConditions,
  decideNotifications,
  DEMAND_RESOLVE_AFTER_MS,
  handOverConditions,
  rebaseConditions,
  takeBackConditions,
  type NotifyOutput,
} from '../core/notify.js';
import type { CheckItem } from '../core/permissions.js';
import type { Plan } from '../core/plan.js';
import { plan as makePlan } from '../core/planner.js';
import { fanoutStaleAfter, NO_PROJECTS, type Policy } from '../core/policy.js';
import { REGION_NAME, stoppedSiblings } from '../core/units.js';
import { renderProblem, type ObservationProblem } from '../core/problems.js';
import { oneLine, plural, someOf } from '../core/text.js';
import {
  adoptLedger,
  adoptQuotas,
  lookAtOtherUnits,
  newestLedger,
  rollPressure,
  type PressureLedger,
} from '../core/quota-pressure.js';
import { quotaRequestsDegradedAlert } from '../core/quota-requests.js';
import { restorePlan } from '../core/restore.js';
import {
  contendedAlert,
  degradedAlert,
  heldDeliveryCondition,
  goneConditions,
  judgedScope,
  unjudgedConditions,
  metricsDegradedAlert,
  leaseHeldAlert,
  alertMessage,
  outboxDroppedAlert,
  overAfterRaisesAlerts,
  unverifiedRaisesAlerts,
  unraisedAlerts,
  plannedEvents,
  quotaChanges,
  runEvents,
  settlePlannedEvent,
  unitsStoppedAlert,
  type HeldLease,
  type OverAfterRaises,
  type UnverifiedRaises,
  type RunContext,
} from '../core/run-alerts.js';
import {
  ConflictError,
  cutText,
  GovernorError,
  InputError,
  errorMessage,
  faultText,
} from '../errors.js';
import type { Fault } from '../errors.js';
import { ERROR_EVENT, RUN_FAILED_FIELD, type Logger } from '../log.js';
import { originalMaxes } from '../observe/annotations.js';
import { observe } from '../observe/observe.js';
import type { ObservedService } from '../core/service.js';
import { withUnsetMax } from '../observe/unset-max.js';
import { samePool } from '../core/pool.js';
import { actOnPlan, beforeDeadline, type WriteResult } from './act.js';
import { createPacer } from './pacing.js';
import { preflightServices, preflightTopic } from './preflight.js';
import { runQuotaRequests, type QuotaRequestToConfirm } from './quota-requests.js';
import { legacyUndelivered, recordRuns, stripLegacyUndelivered } from './run-record.js';

/**
 * One governor run, as a pipeline: lease → observe → plan → outbox → act → alert → record. The
 * steps that decide (the plan, the restore plan, events, quota changes, the degraded condition,
 * where conditions may resolve) are pure and live in core; this file only sequences them with the
 * reads and writes, each bounded by the run deadline. The CLI (`governor apply`) and the Cloud
 * Function both call this and only this.
 *
 * The lease (one writer per project and store) is taken on the wall clock, never on the
 * emulator's virtual clock: leases are shared with governors on other clocks. A run asks for a
 * held lease `leaseAttempts` times, `leaseRetryMs` apart; still refused, it does nothing in that
 * project, alerts `governor.degraded` (reason lease) and ends `lease-held`, which the CLI and the
 * function report as a failure. The store caps an expiry beyond now + time-to-live, so a lease
 * set to year 9999 ends too; `governor unlock` breaks one at once.
 *
 * Events are never only in memory: before the first write, the run stores the `rebalance.applied`
 * it expects (pending outcome) in the store's outbox; once it knows how its writes went it
 * replaces them with its real events, publishes the outbox oldest first, and removes what Pub/Sub
 * acknowledged. A run that died in between leaves its planned events behind: the next run settles
 * them against what it observes (a change shows as applied only if the service has the planned
 * max now) and sends them first.
 */

/** How long after the write deadline alerts may still be published and their state saved. */
export const ALERT_GRACE_MS = 10_000;

/** The lease outlives the run deadline by this much (alerts, records, a slow store). */
export const LEASE_MARGIN_MS = 60_000;

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
  /**
   * The clock of the lease; default the wall clock. Only a world that is virtual as a whole (the
   * chaos harness: an in-memory store no one else shares) may pass its virtual clock.
   */
  leaseClock?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Cloud Quotas preferences, for `quotaRequests` (absent: no request is ever filed). */
  quotaRequests?: QuotaRequestPort;
}

export interface ReconcileOptions {
  runId: string;
  /** Overrides the policy's mode (e.g. a dry run from the command line). */
  mode?: Policy['mode'];
  /** No write starts after this long (ms); shorter than the function's timeout. */
  deadlineMs: number;
  /** Asked once the plan is known and before any write; false: nothing is written or published. */
  confirm?: (plan: Plan) => Promise<boolean>;
  /**
   * Asked before each quota request is filed (`quotaRequests`), whatever the plan's answer: the
   * plan's prompt is about cap changes, and a plan with none asks nothing. False: that request is
   * not filed this run. Absent: filed without asking.
   */
  confirmQuotaRequest?: (request: QuotaRequestToConfirm) => Promise<boolean>;
  /** Put governed services back to the max they had before the governor first changed them. */
  restore?: boolean;
  /**
   * This governor's name, stamped with its store's id on what it writes (RuntimeOptions.governorId;
   * default `gpu-governor`).
   */
  writerId?: string;
  /** How many times to ask for a lease another holds before giving up. Default 3. */
  leaseAttempts?: number;
  /** How long to wait between those requests (ms). Default 2 s. */
  leaseRetryMs?: number;
  /** How a person clears a held lease, for the message. Default `governor unlock --policy <file>`. */
  unlockHint?: string;
  /**
   * The region of a regional unit (core/units.ts), whose policy governs that one region only:
   * its project-wide alerts name the region (so their dedupKey is the unit's own) and its
   * `unit/*` metrics carry it. Absent: a run of whole projects.
   */
  region?: string;
  /**
   * A run of a whole project that the fan-out governs whole now (its organisation's policy does
   * not split it): it takes back what the project's regional units left firing at every run, and
   * their ledgers when one of them ran after its own last run, however short the split was.
   * Without it, a run of a whole project does both only after a gap of over an hour in its own
   * ledger (a command line's run, which cannot tell a split that ended from one that goes on).
   */
  wholeNow?: boolean;
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
  /** This governor's id (from its state store); null when the store could not say. */
  governorId: string | null;
  /** Projects another governor held; nothing was done there. */
  leaseHeld: HeldLease[];
  /** What observation could not read. */
  problems: ObservationProblem[];
  /** The fleet audit's findings (every rule a GPU service breaks). */
  findings: AuditFinding[];
  error: string | null;
  /** This run's events it could not publish; kept in the outbox for the next run to send. */
  undelivered: Alert[];
  /** Per project, the pressure ledger this run rolled forward (recorded with the run). */
  pressure: Record<string, PressureLedger>;
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
  /** This run, as it names itself in the lease: governor, run, host and process. */
  holder: string;
  /**
   * Per project, the planned `quota.requested` events runs that ended before reporting left in
   * the outbox (read before the writes); the quota request step settles them.
   */
  quotaOrphans: Map<string, Alert[]>;
  /**
   * The projects whose outbox's count of dropped entries this run found unreadable: named once
   * (logUnreadableCount), and announced as a count whose number is unknown.
   */
  unreadableCounts: Set<string>;
  /** The pools the act step left over their budget just after its raises (see act.ts, verify). */
  overAfterRaises: OverAfterRaises[];
  /** The pools whose read just after this run's raises failed: not verified (act.ts, verify). */
  unverifiedRaises: UnverifiedRaises[];
}

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
    await recordRuns(deps.store, deps.log, held, report, run.startedWall, run.wall());
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
  const mode = options.mode ?? policy.mode;
  const nowMs = await deps.now();
  const deadline = startedWall + options.deadlineMs;
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
      { deadline, clock: wall },
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
    deadline,
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
    overAfterRaises: [],
    unverifiedRaises: [],
  };
}

/**
 * One writer per project: a lease a little longer than the run may take, on the wall clock. A
 * lease another holds is asked for again a few times; returns the projects taken.
 */
async function takeLeases(run: Run): Promise<string[]> {
  const { deps, options, report } = run;
  const held: string[] = [];
  const attempts = Math.max(1, options.leaseAttempts ?? 3);
  // The project whose lease request is under way: a request without an answer (a timeout, the
  // store unreachable) may still have been committed, "even if the operation has completed
  // successfully" (Google's client libraries on DEADLINE_EXCEEDED,
  // https://cloud.google.com/java/docs/reference/gax/latest/com.google.api.gax.rpc.DeadlineExceededException),
  // so it is given back too: releasing is only ever done for this run's holder, a no-op otherwise.
  let asking: string | null = null;
  try {
    for (const project of run.policy.projects) {
      asking = project;
      const lease = await askForLease(run, project, attempts);
      asking = null;
      if (lease.acquired) {
        held.push(project);
        continue;
      }
      const refused: HeldLease = {
        project,
        ...(lease.heldBy ? { heldBy: lease.heldBy } : {}),
        ...(lease.acquiredAt ? { acquiredAt: lease.acquiredAt } : {}),
        ...(lease.expiresAt ? { expiresAt: lease.expiresAt } : {}),
      };
      report.leaseHeld.push(refused);
      deps.log.log('ERROR', describeHeldLease(refused, options.unlockHint));
    }
  } catch (e) {
    // The store cannot say who writes: nobody does. Give back what was taken (or may have been),
    // and fail loudly.
    report.outcome = 'failed';
    report.error = `the lease could not be taken: ${errorMessage(e)}`;
    logRunFailed(deps.log, report);
    await releaseAll(deps, asking === null ? held : [...held, asking], run.holder);
    throw new RunFailedError(report, e);
  }
  return held;
}

async function askForLease(run: Run, project: string, attempts: number): Promise<LeaseResult> {
  const { deps, options } = run;
  const ttlMs = leaseTtlMs(options);
  const retryMs = options.leaseRetryMs ?? 2_000;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  for (let attempt = 1; ; attempt += 1) {
    const lease = await beforeDeadline(
      () =>
        deps.store.acquireLease(
          project,
          run.holder,
          ttlMs,
          new Date((deps.leaseClock ?? run.wall)()).toISOString(),
        ),
      { deadline: run.deadline, clock: run.wall },
      `taking the lease of ${project}`,
    );
    if (lease.acquired || attempt >= attempts || run.wall() + retryMs >= run.deadline) {
      return lease;
    }
    await sleep(retryMs);
  }
}

/** One line: who holds the lease, since and until when, and how to clear it. */
function describeHeldLease(l: HeldLease, unlockHint = 'governor unlock --policy <file>'): string {
  return (
    // The holder is the state store's text, which any writer of the store may have set: one line.
    `${l.project}: nothing done: the lease is held by ${oneLine(l.heldBy ?? 'an unknown holder')}` +
    `${l.acquiredAt ? ` since ${l.acquiredAt}` : ''} until ${l.expiresAt ?? 'an unknown time'}; ` +
    `if no other governor is running, clear it with \`${unlockHint}\``
  );
}

/**
 * governor.degraded (reason lease) for each project whose lease another held. Published and its
 * state saved like any condition (the save is versioned, so it cannot overwrite the holder's);
 * the holder's next run, judging the whole project, resolves it.
 */
async function alertLeaseHeld(run: Run): Promise<void> {
  const { deps, report, ctx } = run;
  const grace = alertGrace(run);
  const attempts = Math.max(1, run.options.leaseAttempts ?? 3);
  for (const refused of report.leaseHeld) {
    const { project } = refused;
    try {
      const { state: previous, version } = await beforeDeadline(
        () => deps.store.loadConditions(project),
        grace,
        `reading the alert state of ${project}`,
      );
      const notifications = decideNotifications({
        previous,
        current: [leaseHeldAlert(ctx, refused, attempts)],
        events: [],
        now: ctx.at,
        renotifyAfterMs: durationMs(run.policy.alerts.renotifyAfter),
        runId: ctx.runId,
        scope: [],
      });
      await publish(run, project, notifications.publish, []);
      await beforeDeadline(
        () => deps.store.saveConditions(project, notifications.next, version),
        grace,
        `saving the alert state of ${project}`,
      );
    } catch (e) {
      // The holder saved its own state meanwhile: the next refused run fires again (at least once).
      const what = e instanceof ConflictError ? 'could not save' : 'could not publish or save';
      const message = `${project}: ${what} the lease alert: ${errorMessage(e)}`;
      deps.log.log('ERROR', message);
      report.error ??= message;
    }
  }
}

interface Decided {
  plan: Plan;
  /** Every service the observation read, before this run wrote anything. */
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
    ? restorePlan(planned, originalMaxes(observation.services), scoped.limits.maxChangesPerRun)
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
  const bound = { deadline: run.deadline, clock: run.wall };
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
 * grant (the write is then denied and reported as any denied write). Only advice, so it is asked
 * beside the first writes rather than before them, and never fails the run: a check that cannot
 * be made is a warning too.
 */
async function checkServices(run: Run, plan: Plan): Promise<void> {
  const { deps } = run;
  let items: CheckItem[];
  try {
    items = await beforeDeadline(
      () => preflightServices(plan, run.mode, deps.ports.run),
      { deadline: run.deadline, clock: run.wall },
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
    writerId: writerStamp(run),
    // Another governor's stamp counts as long as its lease could: the same TTL as ours.
    otherWriterTtlMs: leaseTtlMs(options),
    onOverAfterRaises: (over) => run.overAfterRaises.push(over),
    onUnverified: (unverified) => run.unverifiedRaises.push(unverified),
    leaseLost: async (project) => {
      const lease = await deps.store.readLease(project);
      if (lease?.holder === run.holder) return null;
      return lease ? `is now held by ${oneLine(lease.holder)}` : 'is now held by no one';
    },
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

/** How long a lease is taken for (see takeLeases): a little longer than a run may take. */
function leaseTtlMs(options: ReconcileOptions): number {
  return options.deadlineMs + LEASE_MARGIN_MS;
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

/**
 * Each outbox entry the store set aside as unreadable in this read (`Outbox.setAside`), in one
 * ERROR line each: its id, where it now is, and why. It is also counted in the outbox's dropped
 * messages, so `governor.degraded` (reason `outbox`) tells subscribers.
 */
function logSetAside(run: Run, project: string, box: Outbox): void {
  for (const entry of box.setAside ?? []) {
    const why = entry.faults.map(faultText);
    run.deps.log.log(
      'ERROR',
      `${project}: outbox entry ${entry.id} cannot be read and was set aside, not published (${why.join('; ') || 'no detail'}); see docs/alerts.md`,
    );
  }
}

/**
 * The stored condition records this version cannot read (`VersionedConditions.unreadable`: a
 * newer version's alert type or field, a hand edit), in one ERROR line per run: how many, the
 * first few keys and why. The run goes on without them: they are not published, re-notified or
 * resolved here, and the store keeps them as stored for the version that reads them.
 */
function logUnreadableConditions(run: Run, project: string, loaded: VersionedConditions): void {
  const unreadable = loaded.unreadable ?? [];
  if (unreadable.length === 0) return;
  const first = unreadable
    .slice(0, 3)
    .map((u) => `${cutText(u.key, 200)} (${u.faults.map(faultText).join('; ') || 'no detail'})`);
  const more = unreadable.length > 3 ? `, and ${unreadable.length - 3} more` : '';
  run.deps.log.log(
    'ERROR',
    `${project}: ${unreadable.length} stored alert condition(s) cannot be read by this version and are left as stored, neither published nor resolved by it: ${first.join(', ')}${more}. A newer version of the governor wrote them (it reads them again), or a hand edit did; see docs/applying.md, "Upgrades and rollbacks"`,
  );
}

/**
 * The outbox's count of dropped entries, when the store could not read it
 * (`Outbox.droppedUnreadable`), in one ERROR line per run: where it is, what it holds (quoted,
 * cut short) and why. The run goes on: the count is taken as at least 1, announced by
 * `governor.degraded` (reason `outbox`) as a number unknown, and replaced by a number once
 * announced.
 */
function logUnreadableCount(run: Run, project: string, box: Outbox): void {
  const count = box.droppedUnreadable;
  if (!count || run.unreadableCounts.has(project)) return;
  run.unreadableCounts.add(project);
  const why = count.faults.map(faultText);
  run.deps.log.log(
    'ERROR',
    `${project}: the outbox's count of dropped entries cannot be read (${count.where} holds ${count.stored}: ${why.join('; ') || 'no detail'}); counted as at least 1 dropped, the number unknown, for governor.degraded (reason outbox) to announce; see docs/alerts.md`,
  );
}

/**
 * Before any write: settles the planned events of runs that ended before reporting (against what
 * this run observed, in the outbox read beside it), and stores this run's own planned events.
 * Nothing is written unless this succeeded, so an event is always stored before the writes it
 * describes.
 */
async function prepareOutbox(
  run: Run,
  project: string,
  decided: Decided,
  box: Outbox,
): Promise<void> {
  const { deps, ctx } = run;
  const bound = { deadline: run.deadline, clock: run.wall };
  const pending = box.entries.filter((e) => e.state === 'pending-outcome');
  // Planned quota requests are settled against the quota preferences, by the quota request step.
  const left = pending.filter((e) => e.alert.type !== 'quota.requested');
  run.quotaOrphans.set(
    project,
    pending.filter((e) => e.alert.type === 'quota.requested').map((e) => e.alert),
  );
  let settled: OutboxEntry[] = [];
  if (left.length > 0) {
    const max = new Map(
      decided.observed
        .filter((s) => s.project === project)
        .map((s) => [`${s.region}/${s.name}`, s.serviceMaxInstances]),
    );
    const maxOf = (region: string, name: string) => max.get(`${region}/${name}`) ?? null;
    // Every planned event is settled and kept, confirmed or not: none is dropped unpublished.
    settled = left.map((entry) => ({
      ...entry,
      alert: settlePlannedEvent(entry.alert, maxOf, ctx.runId),
      state: 'ready',
    }));
    const confirmed = settled.filter(
      (e) => e.alert.details['outcome'] === 'confirmed-by-observation',
    ).length;
    deps.log.log(
      'WARNING',
      `${project}: ${left.length} planned event(s) of runs that ended before reporting: ${confirmed} confirmed by observation, ${left.length - confirmed} not confirmed (announced as such)`,
    );
  }
  const planned = run.mode === 'enforce' ? plannedEvents(ctx, project, decided.plan) : [];
  // The settled events and this run's planned ones in one store call (one round trip).
  const stored = [...settled, ...planned.map((alert) => entry(run, alert, 'pending-outcome'))];
  if (stored.length > 0) {
    await beforeDeadline(
      () => deps.store.putOutbox(project, stored),
      bound,
      planned.length > 0
        ? `storing the planned events of ${project}`
        : `settling the outbox of ${project}`,
    );
  }
}

/**
 * An outbox entry of `alert`, fitted to what one entry holds (fitted below), so that a pool of
 * thousands of services does not make every run fail at storing its events, before its writes or
 * after them. The writes a cut event leaves out have each their own line (act.ts), and its
 * summary counts them all.
 */
function entry(run: Run, alert: Alert, state: OutboxEntry['state']): OutboxEntry {
  return { alert: fitted(run, alert), state, storedAt: new Date(run.wall()).toISOString() };
}

/**
 * `alert` within the MAX_ALERT_BYTES one alert may hold (core/alert.ts fitWhole: the longest lists
 * of its details cut, `details.truncated` saying how many items were kept of how many; then, if
 * need be, its largest details left out, named with their size in `details.omitted`, and its
 * summary cut), logged as a WARNING when anything was cut. Every message is fitted before it is
 * stored and again before it is published: a condition's details grow with the fleet, and a
 * record read back from the store may be larger than any the governor writes (a hand edit, a
 * corrupt file). Pub/Sub refuses a message over 10 MB
 * (https://cloud.google.com/pubsub/quotas#resource_limits), and with it every message of its
 * ordering key, the pool, at every run.
 */
function fitted(run: Run, alert: Alert): Alert {
  const fit = fitWhole(alert);
  if (fit.truncated === null && fit.omitted === null && fit.summaryCut === null) return fit.alert;
  const cuts = [
    ...(fit.truncated === null
      ? []
      : [
          `its details keep ${Object.entries(fit.truncated)
            .map(([key, t]) => `${key}: ${t.kept} of ${t.of}`)
            .join(', ')} (details.truncated)`,
        ]),
    ...(fit.omitted === null
      ? []
      : [
          `${Object.entries(fit.omitted)
            .map(([key, bytes]) => `${key} (${bytes} bytes)`)
            .join(', ')} omitted (details.omitted)`,
        ]),
    ...(fit.summaryCut === null ? [] : [`its summary cut from ${fit.summaryCut} characters`]),
  ];
  const bytes = alertBytes(fit.alert);
  run.deps.log.log(
    'WARNING',
    `${alert.project}: the ${alert.type} ${alert.status === 'event' ? 'event' : 'alert'} ${cutText(alert.id, 200)} is over the ${MAX_ALERT_BYTES} bytes one alert may hold; ${cuts.join('; ')}${bytes > MAX_ALERT_BYTES ? `; still ${bytes} bytes` : ''}`,
  );
  return fit.alert;
}

/**
 * alertProject for every held project, one after another (each bounded by the alert grace), and
 * each on its own: a project whose alerting fails (its run records or conditions unreadable, its
 * store failing) does not keep the projects after it from publishing theirs. Otherwise one such
 * project, failing at every run, would hold back every other project's alerts for good. Every
 * project is tried; then the run fails with each project's error, the first as the cause.
 */
async function alertEachProject(
  run: Run,
  held: readonly string[],
  decided: Decided,
  metricErrors: ReadonlyMap<string, string>,
): Promise<void> {
  const failures: { project: string; error: unknown }[] = [];
  for (const project of held) {
    try {
      await alertProject(run, project, decided, metricErrors.get(project) ?? null);
    } catch (error) {
      failures.push({ project, error });
    }
  }
  const [first] = failures;
  if (first === undefined) return;
  if (failures.length === 1) throw first.error;
  throw new GovernorError(
    `alerting failed in ${failures.length} projects: ${failures
      .map((f) => `${f.project}: ${errorMessage(f.error)}`)
      .join('; ')}`,
    { cause: first.error },
  );
}

/**
 * The project's alerts: the plan's conditions and the degraded ones, decided against the stored
 * state; this run's events, stored in the outbox (replacing its planned ones); then the outbox
 * published oldest first with the conditions before this run's events, what was acknowledged
 * removed, and the state saved. Alerts and their state get a short grace after the write
 * deadline, never more: the run must answer before the function's timeout (terraform keeps 15 s
 * between the two).
 */
async function alertProject(
  run: Run,
  project: string,
  decided: Decided,
  metricsError: string | null,
): Promise<void> {
  const { deps, report, ctx } = run;
  const { plan, problems } = decided;
  const grace = alertGrace(run);
  // Told as the writes left the fleet, not as planned (a lowering denied): core/conditions.ts.
  const conditions = conditionsAsLeft(
    [...plan.alerts, ...decided.misconfigured].filter((a) => a.project === project),
    plan,
    report.writes,
    run.mode,
  );
  const degraded = degradedAlert(ctx, project, problems);
  if (degraded) conditions.push(degraded);
  if (metricsError !== null) conditions.push(metricsDegradedAlert(ctx, project, metricsError));
  const contended = contendedAlert(ctx, project, report.writes);
  if (contended) conditions.push(contended);
  conditions.push(...overAfterRaisesAlerts(ctx, project, run.overAfterRaises, conditions));
  conditions.push(...unverifiedRaisesAlerts(ctx, project, run.unverifiedRaises));
  conditions.push(...unraisedAlerts(ctx, project, plan, report.writes));
  const lastRun = await beforeDeadline(
    () => deps.store.listRuns(project),
    grace,
    `reading the last run of ${project}`,
  );
  // Records are stamped on the wall clock (the store's, as the lease), not the plan's time.
  const ahead = lastRun.filter((r) => fromTheFuture(r, run.wall()));
  if (ahead.length > 0) {
    deps.log.log(
      'WARNING',
      `${project}: ${ahead.length} run record(s) dated ahead of the wall clock (${ahead
        .slice(0, 3)
        .map((r) => `${r.runId} at ${r.startedAt}`)
        .join(
          ', ',
        )}${ahead.length > 3 ? ', …' : ''}): a writer with a wrong clock, or a hand edit; they are not taken as the last run and are pruned first`,
    );
  }
  await moveLegacyUndelivered(run, project, lastRun);
  const stopped = await stoppedUnits(run, project, lastRun);
  if (stopped) conditions.push(stopped);
  // A restore's plan is not the governing one: it says nothing of pressure.
  const quotaEvents: Alert[] = [];
  // The quotas quota.changed compares with: the unit's last run's, or after a gap the newest its
  // project's other units read (see adoptFromOtherUnits).
  let seenQuotas = lastRun[0]?.quotas;
  // Whether this run looked at the other units of its project (a gap in its own ledger).
  let looked = false;
  const settledRequests: Alert[] = [];
  const withdrawn: string[] = [];
  if (!run.options.restore) {
    const own = newestLedger(lastRun, ctx.at);
    const look =
      lookAtOtherUnits(own, ctx.at) ||
      (run.options.wholeNow === true &&
        own !== undefined &&
        (await unitsRanSince(run, project, own.at)));
    const adopted = look ? await adoptFromOtherUnits(run, project, own, lastRun[0]) : null;
    const before = adopted ? adopted.ledger : own;
    if (adopted) seenQuotas = adopted.quotas;
    looked = adopted !== null;
    const requests = await runQuotaRequests({
      policy: run.policy,
      port: deps.quotaRequests,
      quotas: deps.ports.quotas,
      ctx,
      project,
      ledger: rollPressure(before, plan, project),
      mode: run.mode,
      log: deps.log,
      orphans: run.quotaOrphans.get(project) ?? [],
      // The planned quota.requested, stored before the preference is filed (docs/rules.md, "Alerts").
      stage: (planned) =>
        beforeDeadline(
          () => deps.store.putOutbox(project, [entry(run, planned, 'pending-outcome')]),
          grace,
          `storing the planned quota request of ${project}`,
        ).then(() => undefined),
      bound: (call, what) => beforeDeadline(call, grace, what),
      ...(run.options.confirmQuotaRequest ? { confirm: run.options.confirmQuotaRequest } : {}),
    });
    report.pressure[project] = requests.ledger;
    quotaEvents.push(...requests.events);
    settledRequests.push(...requests.settled);
    withdrawn.push(...requests.withdrawn);
    const degradedRequests = quotaRequestsDegradedAlert(ctx, project, requests.failures);
    if (degradedRequests) conditions.push(degradedRequests);
  }
  const events = [
    ...runEvents(ctx, project, plan, report.writes, run.mode),
    ...quotaChanges(ctx, project, plan, seenQuotas),
    ...quotaEvents,
  ];
  const loaded = await beforeDeadline(
    () => deps.store.loadConditions(project),
    grace,
    `reading the alert state of ${project}`,
  );
  logUnreadableConditions(run, project, loaded);
  // A regional unit first takes over what its project left firing when it was governed whole;
  // a project governed whole again after a gap, what its regional units left; one the fan-out
  // governs whole now, at every run (a unit's state read each; nothing written when it is empty),
  // so that a split however short, or followed by a command line's run, leaves nothing behind.
  const { state: previous, version } =
    looked || run.options.wholeNow === true
      ? await takeBack(run, project, await handOver(run, project, loaded))
      : await handOver(run, project, loaded);
  // A unit's failed delivery (organisation scale) is resolved by a run that succeeds, not by one
  // whose writes failed (the function answers it 500, and the delivery fails again).
  if (report.writes.some((w) => w.project === project && w.outcome === 'failed'))
    conditions.push(...heldDeliveryCondition(ctx, project, previous));
  // Ids first: the planned events carry the ids their real events get here.
  const decidedEvents = decideNotifications({
    previous: {},
    current: [],
    events,
    now: ctx.at,
    renotifyAfterMs: 0,
    runId: ctx.runId,
    scope: [],
  }).publish;
  const outcome = new Set(decidedEvents.map((e) => e.id));
  const notHappened = [
    ...plannedEvents(ctx, project, plan)
      .map((e) => e.id)
      .filter((id) => !outcome.has(id)),
    ...withdrawn,
  ];
  await beforeDeadline(
    async () => {
      // Settled planned requests of earlier runs keep their ids (and so their place).
      await deps.store.putOutbox(
        project,
        [...settledRequests, ...decidedEvents].map((e) => entry(run, e, 'ready')),
      );
      await deps.store.removeOutbox(project, notHappened);
    },
    grace,
    `storing the events of ${project}`,
  );
  const box = await beforeDeadline(
    () => deps.store.listOutbox(project),
    grace,
    `reading the outbox of ${project}`,
  );
  logSetAside(run, project, box);
  logUnreadableCount(run, project, box);
  if (box.dropped > 0) {
    conditions.push(
      outboxDroppedAlert(
        ctx,
        project,
        box.dropped,
        box.entries.length,
        run.unreadableCounts.has(project),
      ),
    );
  }
  const notifications = decideNotifications({
    previous,
    current: conditions,
    events: [],
    now: ctx.at,
    renotifyAfterMs: durationMs(run.policy.alerts.renotifyAfter),
    resolveAfterMs: DEMAND_RESOLVE_AFTER_MS,
    runId: ctx.runId,
    // A restore judges no condition (its plan is not the governing one): none may resolve.
    scope: run.options.restore ? [] : judgedScope(project, plan, problems, Object.values(previous)),
    unjudged: unjudgedConditions(project, plan),
    gone: run.options.restore ? [] : goneConditions(project, plan, problems, previous),
  });
  const ready = box.entries.filter((e) => e.state === 'ready').map((e) => e.alert);
  const earlier = ready.filter((a) => a.runId !== ctx.runId);
  const mine = ready.filter((a) => a.runId === ctx.runId);
  const outgoing = [...earlier, ...notifications.publish, ...mine];
  // Some messages may go out when others fail (another pool's, on its own ordering key): the
  // outbox forgets those and the state counts them, so the next run neither repeats a firing
  // under a new id nor loses a resolved one; what did not go out is sent again by the next run.
  await publish(run, project, outgoing, mine, (acknowledged) =>
    keepAcknowledged(run, project, {
      acknowledged,
      ready,
      dropped: box.dropped,
      previous,
      notifications,
      version,
    }),
  );
  // Once every message is acknowledged: a failed publish leaves the outbox and the state as they
  // were, but for what it did publish (above), so the next run sends again what this one could not.
  await beforeDeadline(
    () =>
      deps.store.removeOutbox(
        project,
        ready.map((a) => a.id),
        box.dropped,
      ),
    grace,
    `removing the published events of ${project}`,
  );
  await saveRebased(run, project, previous, notifications.next, version);
}

/** Attempts at saving a run's condition state over another writer's before the run fails. */
const SAVE_ATTEMPTS = 3;

/**
 * Saves the condition state this run decided from `base` (read at `version`). When another writer
 * saved in between (a run refused the lease, saving its `governor.degraded`), the state is read
 * again and this run's decisions are laid over it (core/notify.ts rebaseConditions), rather than
 * failing a run whose alerts already went out: its next run would send them again under new ids.
 */
async function saveRebased(
  run: Run,
  project: string,
  base: ConditionState,
  mine: ConditionState,
  version: string | null,
): Promise<void> {
  const grace = alertGrace(run);
  let state = mine;
  let expected = version;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await beforeDeadline(
        () => run.deps.store.saveConditions(project, state, expected),
        grace,
        `saving the alert state of ${project}`,
      );
      return;
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= SAVE_ATTEMPTS) throw e;
      const fresh = await beforeDeadline(
        () => run.deps.store.loadConditions(project),
        grace,
        `reading the alert state of ${project} again`,
      );
      run.deps.log.log(
        'INFO',
        `${project}: the alert state was saved by another run since this one read it; this run's conditions are laid over it`,
      );
      state = rebaseConditions(base, mine, fresh.state);
      expected = fresh.version;
    }
  }
}

/**
 * The ids of the messages a failed publish still got acknowledged: a PartialPublishError (the
 * sink port's) lists one result per message given, `undefined` for those not published. Any other
 * error: none.
 */
function acknowledgedIds(error: unknown, outgoing: readonly Alert[]): Set<string> {
  if (!(error instanceof PartialPublishError) || error.results.length !== outgoing.length)
    return new Set();
  const { results } = error;
  return new Set(outgoing.filter((_, i) => results[i] !== undefined).map((a) => a.id));
}

/**
 * After a publish that failed part-way: the acknowledged events leave the outbox, and the
 * condition state records what went out (core/notify.ts acknowledgedState). Best effort: if the
 * store fails too, the run's error stands and the next run sends everything again, as before.
 */
async function keepAcknowledged(
  run: Run,
  project: string,
  p: {
    acknowledged: ReadonlySet<string>;
    ready: readonly Alert[];
    dropped: number;
    previous: ConditionState;
    notifications: NotifyOutput;
    version: string | null;
  },
): Promise<void> {
  const grace = alertGrace(run);
  // The count of dropped events is announced by governor.degraded (reason outbox): cleared only
  // when that message went out.
  const announced = p.notifications.publish.some(
    (a) =>
      a.type === 'governor.degraded' &&
      a.details['reason'] === 'outbox' &&
      p.acknowledged.has(a.id),
  );
  try {
    await beforeDeadline(
      () =>
        run.deps.store.removeOutbox(
          project,
          p.ready.filter((a) => p.acknowledged.has(a.id)).map((a) => a.id),
          announced ? p.dropped : 0,
        ),
      grace,
      `removing the published events of ${project}`,
    );
    const state = acknowledgedState(p.previous, p.notifications, p.acknowledged);
    await saveRebased(run, project, p.previous, state, p.version);
  } catch (e) {
    run.deps.log.log(
      'WARNING',
      `${project}: could not record the ${p.acknowledged.size} alert(s) published before the publish failed; the next run sends them again: ${errorMessage(e)}`,
    );
  }
}

/**
 * What a unit takes from the other side of its project after a gap in its own ledger
 * (core/quota-pressure.ts lookAtOtherUnits: none yet, or none within the last hour): a regional
 * unit from its project's records, a project from its regional units' (docs/organization.md,
 * "Regional units"). The ledger it rolls forward is its own with what the other side knows newer
 * (adoptLedger: evidence and tracked quota requests, each pool with the unit that owns it), and
 * the quotas `quota.changed` compares with are per pool the newest either side read
 * (adoptQuotas: a change the other side told is not told again). The other side's records are only
 * read, never written, so a run that fails before it records adopts the same again next time. A
 * store that cannot be read fails the run (as the unit's own records would): going on without
 * would record a ledger that misses the other side's for good.
 */
async function adoptFromOtherUnits(
  run: Run,
  project: string,
  own: PressureLedger | undefined,
  last: RunRecord | undefined,
): Promise<{
  ledger: PressureLedger | undefined;
  quotas: Record<string, number | null> | undefined;
} | null> {
  const { deps } = run;
  const others = deps.store.otherUnits?.bind(deps.store);
  if (!others) return null;
  const sides = await beforeDeadline(
    async () =>
      Promise.all(
        (await others(project)).map(async (u) => ({ region: u.region, runs: await u.listRuns() })),
      ),
    alertGrace(run),
    `reading the run records of the other units of ${project}`,
  );
  const ledgers = sides.flatMap((side) => {
    const ledger = newestLedger(side.runs, run.ctx.at);
    return ledger ? [{ region: side.region, ledger }] : [];
  });
  const quotasOf = (region: string | null, r: RunRecord | undefined) =>
    r?.quotas ? [{ region, at: plannedAt(r), quotas: r.quotas }] : [];
  const ledger = adoptLedger(run.options.region, own, ledgers);
  const quotas = adoptQuotas(
    run.options.region,
    quotasOf(null, last)[0],
    sides.flatMap((side) => quotasOf(side.region, side.runs[0])),
  );
  const newer = ledgers.filter((l) => !own || Date.parse(l.ledger.at) > Date.parse(own.at));
  if (newer.length > 0) {
    const from = newer.map((l) => l.region ?? 'the whole project').join(', ');
    deps.log.log(
      'INFO',
      `${project}: ${own ? `this unit's pressure ledger is from ${own.at}` : 'no pressure ledger of this unit yet'}: took what is newer from ${from} (${Object.keys(ledger?.pools ?? {}).length} pool(s), ${Object.keys(ledger?.requests ?? {}).length} tracked quota request(s))`,
    );
  }
  return { ledger, quotas };
}

/**
 * A regional unit's look at its project's other regional units (core/units.ts stoppedSiblings):
 * governor.degraded (reason units-stopped) when some have not run for over `fanout.staleAfter`
 * and this unit is the one to say so; null otherwise, which resolves it where it fired. Their run
 * records are only read. A store that cannot be read fails the run, as the unit's own would.
 */
async function stoppedUnits(
  run: Run,
  project: string,
  own: readonly RunRecord[],
): Promise<Alert | null> {
  const region = run.options.region;
  const siblings = run.deps.store.siblingUnits?.bind(run.deps.store);
  if (region === undefined || !siblings) return null;
  const { foundAt, units } = await beforeDeadline(
    async () => {
      const found = await siblings(project);
      return { foundAt: found.foundAt, units: await newestRuns(found.units) };
    },
    alertGrace(run),
    `reading the run records of the other regional units of ${project}`,
  );
  // Each age on its own clock: a run's `at` on the runs' clock (the emulator's, against it), its
  // start and the discovery on the wall clock.
  const now = { nowMs: Date.parse(run.ctx.at), wallMs: run.wall() };
  // A run dated later than now is judged as none: a unit that stopped after it would never be named.
  const ageOf = (r: RunRecord | undefined) =>
    r && !runDatedAhead(r, now) ? runAgeMs(r, now) : null;
  const staleAfter = fanoutStaleAfter(run.policy);
  const verdict = stoppedSiblings({
    region,
    siblings: units.flatMap(({ region, newest }) =>
      region === null
        ? []
        : [{ region, lastRunAt: newest ? plannedAt(newest) : null, ageMs: ageOf(newest) }],
    ),
    firstRunAgeMs: ageOf(own.at(-1)),
    countedForMs: foundAt === null ? null : now.wallMs - Date.parse(foundAt),
    staleAfterMs: durationMs(staleAfter),
  });
  return verdict.reporter ? unitsStoppedAlert(run.ctx, project, verdict.stopped, staleAfter) : null;
}

/**
 * Whether a regional unit of the project ran after `since` (this whole project's newest ledger):
 * the project was split meanwhile, however briefly. Each unit's newest record only (one read).
 */
async function unitsRanSince(run: Run, project: string, since: string): Promise<boolean> {
  const others = run.deps.store.otherUnits?.bind(run.deps.store);
  if (run.options.region !== undefined || !others) return false;
  const units = await beforeDeadline(
    async () => newestRuns((await others(project)).filter((u) => u.region !== null)),
    alertGrace(run),
    `reading the newest runs of the regional units of ${project}`,
  );
  // On the runs' clock: a run that planned nothing (no `at`) governed nothing either.
  return units.some(
    ({ newest }) => newest?.at !== undefined && Date.parse(newest.at) > Date.parse(since),
  );
}

/** Each unit's newest run record, if any: one record's read each. */
async function newestRuns(
  units: readonly OtherUnit[],
): Promise<{ region: string | null; newest: RunRecord | undefined }[]> {
  return Promise.all(
    units.map(async (u) => ({ region: u.region, newest: (await u.listRuns(1))[0] })),
  );
}

/** How many times a handover is tried when another unit of the project saved meanwhile. */
const HANDOVER_ATTEMPTS = 4;

/**
 * The handover of conditions to a regional unit (core/notify.ts claimConditions,
 * handOverConditions; docs/organization.md, "Regional units"): the conditions of its region, and
 * the project's own project-wide ones, move from the state the project left when it was governed
 * whole into the unit's, in three versioned saves (VersionedConditions):
 *
 * 1. the project's state with what the unit takes marked for it: of two regional units of the
 *    project racing for a project-wide condition, the one that saves second gets a ConflictError,
 *    reads again, and finds it marked for the other;
 * 2. the unit's own state with what is marked for it added;
 * 3. the project's state without it.
 * A run that dies after any step leaves the marks: the next run of the unit takes what is marked
 * for it (whatever it already keeps stays as it is), and no other unit takes it. The unit's run
 * then re-judges what it took, and publishes and saves as for any condition: each resolves once.
 */
async function handOver(
  run: Run,
  project: string,
  loaded: VersionedConditions,
): Promise<VersionedConditions> {
  const region = run.options.region;
  const others = run.deps.store.otherUnits?.bind(run.deps.store);
  if (region === undefined || !others) return loaded;
  const whole = (
    await beforeDeadline(() => others(project), alertGrace(run), `finding ${project}'s state`)
  ).find((u) => u.region === null);
  if (!whole) return loaded;
  return moveConditions(run, project, loaded, whole, {
    said: 'took over',
    claim: (theirs) => {
      const claim = claimConditions(theirs, project, region);
      return claim.claimed.length > 0 ? claim.whole : null;
    },
    take: (own, theirs) => {
      const next = handOverConditions(own, theirs, region);
      return { own: next.own, rest: next.whole, moved: next.moved };
    },
  });
}

/**
 * The handover back to a project governed whole again (core/notify.ts takeBackConditions), done
 * by a run of the whole project that looked at its regional units (a gap in its own ledger: a
 * project governed whole without a break reads nothing more). Per regional unit, two versioned
 * saves: the project's state with the unit's conditions added, then the unit's state emptied. A
 * run that dies in between leaves them in both; the next finds them already the project's and
 * only empties the unit's. A conflict on a unit's state (its failed-delivery alert, written
 * outside any lease) is retried from a fresh read.
 */
async function takeBack(
  run: Run,
  project: string,
  loaded: VersionedConditions,
): Promise<VersionedConditions> {
  const others = run.deps.store.otherUnits?.bind(run.deps.store);
  if (run.options.region !== undefined || !others) return loaded;
  const units = await beforeDeadline(
    () => others(project),
    alertGrace(run),
    `reading the regional units of ${project}`,
  );
  let state = loaded;
  for (const unit of units) {
    const region = unit.region;
    if (region === null) continue;
    state = await moveConditions(run, project, state, unit, {
      said: 'took back',
      take: (own, theirs) => ({ ...takeBackConditions(own, theirs, region), rest: {} }),
    });
  }
  return state;
}

/**
 * One move of conditions from another unit of the project (`other`) into this run's state, for
 * the handovers above. `claim`, when it returns a state, is saved on the other's side first (a
 * mark of what this unit takes); `take` says what moves and what the other keeps. This run's
 * state is saved with what it did not keep yet, then the other's without what moved, each
 * versioned. A conflict (another unit saved meanwhile) starts again from a fresh read, up to
 * HANDOVER_ATTEMPTS times; then the run fails, before anything is published, and the next
 * finishes the move.
 */
async function moveConditions(
  run: Run,
  project: string,
  mine: VersionedConditions,
  other: OtherUnit,
  how: {
    said: string;
    claim?: (theirs: ConditionState) => ConditionState | null;
    take: (
      own: ConditionState,
      theirs: ConditionState,
    ) => { own: ConditionState; rest: ConditionState; moved: string[] };
  },
): Promise<VersionedConditions> {
  const { deps } = run;
  const grace = alertGrace(run);
  const label =
    other.region === null ? 'the whole project' : `the regional unit of ${other.region}`;
  let { state: own, version } = mine;
  for (let attempt = 1; ; attempt += 1) {
    try {
      let theirs = await beforeDeadline(
        () => other.loadConditions(),
        grace,
        `reading the alert state ${label} ${project} left`,
      );
      const claimed = how.claim?.(theirs.state) ?? null;
      if (claimed !== null) {
        const marked = await beforeDeadline(
          () => other.saveConditions(claimed, theirs.version),
          grace,
          `claiming the conditions ${label} ${project} left`,
        );
        theirs = { state: claimed, version: marked };
      }
      const next = how.take(own, theirs.state);
      if (next.moved.length === 0) return { state: own, version };
      if (next.moved.some((k) => own[k] === undefined)) {
        const merged = next.own;
        version = await beforeDeadline(
          () => deps.store.saveConditions(project, merged, version),
          grace,
          `saving the conditions ${project} takes from ${label}`,
        );
        own = merged;
      }
      const expected = theirs.version;
      await beforeDeadline(
        () => other.saveConditions(next.rest, expected),
        grace,
        `taking the conditions off ${label} ${project}`,
      );
      deps.log.log(
        'INFO',
        `${project}: ${how.said} ${next.moved.length} condition(s) ${label} left firing: ${someOf(next.moved, 10)}`,
      );
      return { state: own, version };
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= HANDOVER_ATTEMPTS) throw e;
    }
  }
}

/** The deadline of a run's alert work: its own, plus the grace alerts get after it. */
function alertGrace(run: Run): { deadline: number; clock: () => number } {
  return { deadline: run.deadline + ALERT_GRACE_MS, clock: run.wall };
}

/** Events earlier versions kept in run records go to the outbox, and leave the records. */
async function moveLegacyUndelivered(
  run: Run,
  project: string,
  runs: readonly RunRecord[],
): Promise<void> {
  const legacy = legacyUndelivered(runs);
  if (legacy.records.length === 0) return;
  const grace = alertGrace(run);
  await beforeDeadline(
    () =>
      run.deps.store.putOutbox(
        project,
        legacy.alerts.map((a) => entry(run, a, 'ready')),
      ),
    grace,
    `moving the undelivered events of ${project} to the outbox`,
  );
  await stripLegacyUndelivered(run.deps.store, project, legacy.records);
}

/** Publishes and logs the project's alerts; on failure keeps this run's events in the report. */
async function publish(
  run: Run,
  project: string,
  outgoing: Alert[],
  decided: Alert[],
  afterPartial?: (acknowledged: ReadonlySet<string>) => Promise<void>,
): Promise<void> {
  const { deps, report } = run;
  if (outgoing.length === 0) return;
  // Conditions are not stored fitted, and a stored message may be larger than the governor stores.
  outgoing = outgoing.map((a) => fitted(run, a));
  const sink = deps.sink;
  if (sink) {
    try {
      await beforeDeadline(
        () => sink.publish(outgoing.map(alertMessage)),
        alertGrace(run),
        `publishing ${outgoing.length} alert(s) of ${project}`,
      );
    } catch (e) {
      // What went out is told as published; the rest is decided again by the next run (the
      // state is not saved for it), events stay in the outbox, and this run's record names its
      // own that did not go out.
      const sent = acknowledgedIds(e, outgoing);
      announce(
        run,
        outgoing.filter((a) => sent.has(a.id)),
      );
      report.undelivered.push(...decided.filter((a) => !sent.has(a.id)));
      if (sent.size > 0) await afterPartial?.(sent);
      throw e;
    }
  }
  announce(run, outgoing);
}

/** Alerts Pub/Sub acknowledged: logged as alerts, and counted in the run's report. */
function announce(run: Run, published: readonly Alert[]): void {
  for (const a of published) {
    const severity =
      a.status !== 'firing' || a.severity === 'INFO'
        ? 'INFO'
        : a.severity === 'WARNING'
          ? 'WARNING'
          : 'ERROR';
    // `alert` marks the line as an alert, not a fault of the run: a terminal prints these as
    // alerts (from `report.alerts`), not as log lines (see ALERT_FIELD in log.ts).
    run.deps.log.log(severity, `alert ${a.type} ${a.status}: ${a.summary}`, { alert: a.dedupKey });
  }
  run.report.published += published.length;
  run.report.alerts.push(...published);
}

/**
 * One structured ERROR line for a run that failed: its id, the error, what it wrote and what it
 * could not publish. When the state store and Pub/Sub are both down this line is the only place
 * the failure goes (the function logs JSON lines, which Cloud Logging reads as structured entries:
 * https://cloud.google.com/logging/docs/structured-logging); nothing was
 * written then, as no write starts before its events are stored. It is the failure's one error
 * event (ERROR_EVENT in log.ts): its message opens with the same words whatever the run, the run's
 * id at its end; whoever reports the run after it logs its summary below ERROR.
 */
function logRunFailed(log: Logger, report: RunReport): void {
  const count = (o: WriteResult['outcome']) => report.writes.filter((w) => w.outcome === o).length;
  log.log('ERROR', runFailedMessage(report.error ?? 'unknown error', report.runId), {
    ...ERROR_EVENT,
    [RUN_FAILED_FIELD]: {
      runId: report.runId,
      error: report.error,
      written: count('written'),
      failedWrites: count('failed'),
      published: report.published,
      undelivered: report.undelivered.map((a) => ({ id: a.id, type: a.type, project: a.project })),
    },
  });
}

/**
 * The message of a failed run's error event: the same opening words for every run (Error
 * Reporting groups by them), then why, then the run's id.
 */
export function runFailedMessage(why: string, runId: string): string {
  return `run failed: ${why} (${runId})`;
}

/** Gives the leases back; a store that cannot be reached lets them expire instead. */
async function releaseAll(deps: ReconcileDeps, projects: string[], holder: string): Promise<void> {
  for (const project of projects) {
    try {
      await deps.store.releaseLease(project, holder);
    } catch (e) {
      deps.log.log(
        'WARNING',
        `${project}: could not release the lease (it expires by itself): ${errorMessage(e)}`,
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
