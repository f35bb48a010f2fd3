import type { Alert } from '../core/alert.js';
import type { AuditFinding } from '../core/audit.js';
import type { Plan } from '../core/plan.js';
import type { Policy } from '../core/policy.js';
import type { ObservationProblem } from '../core/problems.js';
import type { PressureLedger } from '../core/quota-pressure.js';
import type {
  HeldLease,
  OverAfterRaises,
  RunContext,
  UnverifiedRaises,
} from '../core/run-alerts.js';
import type { ObservedService } from '../core/service.js';
import type { RevisionMemo } from '../observe/serving-revisions.js';
import { oneLine } from '../core/text.js';
import { GovernorError, errorMessage } from '../core/errors.js';
import { ERROR_EVENT, RUN_FAILED_FIELD, type Logger } from '../log.js';
import type { AlertSink, ObservePorts, QuotaRequestPort, StateStore } from '../ports/index.js';
import type { WriteResult } from './act.js';
import type { QuotaRequestToConfirm } from './quota-requests.js';

/**
 * What one governor run is made of, for every step of it (reconcile.ts and the modules it
 * calls): what it is given, what it reports, the state its steps share, and how it fails.
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
  /**
   * The wall clock, for the times this run stamps or compares with other machines' (the lease,
   * the run records, the stamps on the services it writes, the outbox); default Date.now. Given
   * without `elapsedClock`, it is a virtual world's one clock (its `sleep` moves it), and the
   * run's deadline and pacing run on it too.
   */
  wallClock?: () => number;
  /**
   * The time elapsed (ms from any origin), on which the run's deadline is counted, its durations
   * measured and its writes paced (reconcile/pacing.ts, reconcile/elapsed.ts): a clock no step of the
   * wall clock moves. Default performance.now(), or `wallClock` when that is given.
   */
  elapsedClock?: () => number;
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
export interface Run {
  policy: Policy;
  deps: ReconcileDeps;
  options: ReconcileOptions;
  mode: Policy['mode'];
  /** The wall clock: for the times stamped or compared with other machines', never a deadline. */
  wall: () => number;
  startedWall: number;
  /**
   * The time elapsed (ReconcileDeps.elapsedClock, forward only): the run's deadline and the
   * durations it measures. A wall clock that steps back would otherwise lengthen the run in real
   * time, past the lease other governors judge on their own clocks (lease.ts).
   */
  elapsed: () => number;
  startedElapsed: number;
  /** The instant of `elapsed` after which no write starts. */
  deadline: number;
  /**
   * The instant of the lease clock (ReconcileDeps.leaseClock, else the wall clock) after which no
   * write starts either: the earliest expiry of the leases this run holds, less the minute a
   * lease outlives its run (lease.ts). Other governors judge a lease on their clocks, so a wall
   * clock that jumps forward past it ends the run there (deadlineClock). Infinity before any
   * lease is taken.
   */
  leaseDeadline: number;
  nowMs: number;
  ctx: RunContext;
  report: RunReport;
  /** This run, as it names itself in the lease: governor, run, host and process. */
  holder: string;
  /** The projects whose lease this run took (set once taken). */
  held: readonly string[];
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
  /**
   * What this run read of its serving revisions, by full name: observation and the write path's
   * reads share it, so the run reads each revision once (observe/serving-revisions.ts). This
   * run's alone: the next run reads them again.
   */
  revisions: RevisionMemo;
}

export interface Decided {
  plan: Plan;
  /** Every service the observation read, before this run wrote anything. */
  observed: ObservedService[];
  problems: ObservationProblem[];
  /** service.misconfigured conditions from the fleet audit. */
  misconfigured: Alert[];
  /** Their dedupKeys the audit could not judge whole (core/audit.ts auditFleet, `unjudged`). */
  unjudgedAudit: string[];
  /** The dedupKeys of every service the audit judged (core/audit.ts auditFleet): none is gone. */
  audited: string[];
}

/** The time of the lease clock (ReconcileDeps.leaseClock, else the wall clock) now. */
export function leaseNow(run: Pick<Run, 'deps' | 'wall'>): number {
  return (run.deps.leaseClock ?? run.wall)();
}

/**
 * The clock a run's deadline is read on: the time elapsed, set ahead by as much as the lease's
 * deadline (`leaseDeadline`, on the lease clock) is nearer than the run's own, so that the run
 * stops at whichever comes first. The time elapsed alone bounds a run whose wall clock steps
 * back (its lease ends in real time all the same); the lease's deadline bounds one whose wall
 * clock jumps forward (the lease may end sooner for the governors that judge it). Never a
 * measure of a duration: those are `run.elapsed`.
 */
export function deadlineClock(run: Run): () => number {
  return () => {
    const leaseLeft = run.leaseDeadline - leaseNow(run);
    return Math.max(run.elapsed(), run.deadline - leaseLeft);
  };
}

/**
 * The run's deadline as beforeDeadline takes it. Read when each call starts: a confirmation
 * prompt answered meanwhile counts the run's deadline anew (lease.ts, renewAfterPrompt).
 */
export function runBound(run: Run): { readonly deadline: number; clock: () => number } {
  return {
    get deadline() {
      return run.deadline;
    },
    clock: deadlineClock(run),
  };
}

/** The deadline of a run's alert work: its own, plus the grace alerts get after it. */
export function alertGrace(run: Run): { readonly deadline: number; clock: () => number } {
  return {
    get deadline() {
      return run.deadline + ALERT_GRACE_MS;
    },
    clock: deadlineClock(run),
  };
}

/** Null while the run holds the project's lease; else who holds it now, as a phrase. */
export async function leaseLost(run: Run, project: string): Promise<string | null> {
  const lease = await run.deps.store.readLease(project);
  if (lease?.holder === run.holder) return null;
  return lease ? `is now held by ${oneLine(lease.holder)}` : 'is now held by no one';
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
export function logRunFailed(log: Logger, report: RunReport): void {
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

/** The run failed after it started (an API, a publish, the store); the report says how far it got. */
export class RunFailedError extends GovernorError {
  constructor(
    readonly report: RunReport,
    cause: unknown,
  ) {
    super(`run ${report.runId} failed: ${errorMessage(cause)}`, {
      cause,
    });
  }
}
