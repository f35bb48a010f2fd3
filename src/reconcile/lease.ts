import { durationMs } from '../core/duration.js';
import { leaseHeldAlert, type HeldLease } from '../core/run-alerts.js';
import { oneLine } from '../core/text.js';
import { ConflictError, errorMessage } from '../core/errors.js';
import type { LeaseResult } from '../ports/index.js';
import { beforeDeadline } from './act.js';
import { publish, sendWithoutLease } from './alerts.js';
import {
  alertGrace,
  leaseNow,
  logRunFailed,
  RunFailedError,
  runBound,
  type ReconcileDeps,
  type ReconcileOptions,
  type Run,
} from './run.js';

/**
 * The run's leases. The lease (one writer per project and store) is taken on the wall clock,
 * never on the emulator's virtual clock: leases are shared with governors on other clocks. A run
 * asks for a held lease `leaseAttempts` times, `leaseRetryMs` apart; still refused, it does
 * nothing in that project, alerts `governor.degraded` (reason lease) and ends `lease-held`, which
 * the CLI and the function report as a failure. The store caps an expiry beyond now +
 * time-to-live, so a lease set to year 9999 ends too; `governor unlock` breaks one at once. How
 * a regional unit's lease and its whole project's keep each other out: unit-lease.ts.
 */

/** The lease outlives the run deadline by this much (alerts, records, a slow store). */
export const LEASE_MARGIN_MS = 60_000;

/** How long a lease is taken for (see takeLeases): a little longer than a run may take. */
export function leaseTtlMs(options: Pick<ReconcileOptions, 'deadlineMs'>): number {
  return options.deadlineMs + LEASE_MARGIN_MS;
}

/**
 * One writer per project: a lease a little longer than the run may take, on the wall clock. A
 * lease another holds is asked for again a few times; returns the projects taken.
 */
export async function takeLeases(run: Run): Promise<string[]> {
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
      const { lease, asked, stamped } = await askForLease(run, project, attempts);
      asking = null;
      if (lease.acquired) {
        held.push(project);
        run.leaseDeadline = Math.min(run.leaseDeadline, leaseDeadlineOf(run, lease, stamped));
        continue;
      }
      const refused: HeldLease = {
        project,
        ...(lease.heldBy ? { heldBy: lease.heldBy } : {}),
        ...(lease.acquiredAt ? { acquiredAt: lease.acquiredAt } : {}),
        ...(lease.expiresAt ? { expiresAt: lease.expiresAt } : {}),
        attempts: asked,
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
    await releaseAll(deps, held, run.holder);
    if (asking !== null) await releaseAll(deps, [asking], run.holder, errorMessage(e));
    throw new RunFailedError(report, e);
  }
  return held;
}

/**
 * The run's deadline on the lease clock for a lease it holds: the lease's expiry as the store
 * answered it (else its stamp, `stamped`, plus its time to live), less the minute it outlives the
 * run. The run stops there if that comes before its own deadline (run.ts, deadlineClock).
 */
function leaseDeadlineOf(run: Run, lease: LeaseResult, stamped: number): number {
  const expires = lease.expiresAt === undefined ? NaN : Date.parse(lease.expiresAt);
  return (Number.isNaN(expires) ? stamped + leaseTtlMs(run.options) : expires) - LEASE_MARGIN_MS;
}

/**
 * Asks up to `attempts` times, waiting between, while the deadline leaves room; `asked`: how
 * often; `stamped`: the time of the lease clock the last request was stamped with.
 */
async function askForLease(
  run: Run,
  project: string,
  attempts: number,
): Promise<{ lease: LeaseResult; asked: number; stamped: number }> {
  const { deps, options } = run;
  const ttlMs = leaseTtlMs(options);
  const retryMs = options.leaseRetryMs ?? 2_000;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const bound = runBound(run);
  for (let attempt = 1; ; attempt += 1) {
    const stamped = leaseNow(run);
    const lease = await beforeDeadline(
      () => deps.store.acquireLease(project, run.holder, ttlMs, new Date(stamped).toISOString()),
      bound,
      `taking the lease of ${project}`,
    );
    if (lease.acquired || attempt >= attempts || bound.clock() + retryMs >= run.deadline) {
      return { lease, asked: attempt, stamped };
    }
    await sleep(retryMs);
  }
}

/**
 * After a confirmation prompt (the plan's, or a quota request's): a person may take minutes to
 * answer, and the leases were taken
 * for the run's deadline and a margin only, so an answer after 4 minutes would find every write
 * past the deadline (skipped, "deadline") and, after 5, the lease expired. The run renews every
 * lease it holds from the answer and counts its deadline again from it. A lease that cannot be
 * renewed (broken by `governor unlock`, or expired and taken by another run) stays as it is: the
 * act step reads the lease before its raises and makes none on a lease another holds (its
 * decreases are safe whoever writes). A store that cannot answer fails the run before any write.
 */
export async function renewAfterPrompt(run: Run): Promise<void> {
  const { deps, options, held } = run;
  // On the time elapsed, as at the start (reconcile.ts); the leases are renewed on the lease
  // clock, and the run's deadline on it is the earliest of the renewed leases', as the store
  // answered them (as takeLeases counts it). One not renewed is no longer this run's: it bounds
  // nothing (the act step makes no raise on it).
  const answered = run.elapsed();
  const deadline = answered + options.deadlineMs;
  let leaseDeadline = Infinity;
  for (const project of held) {
    const stamped = leaseNow(run);
    const renewed = await beforeDeadline(
      () =>
        deps.store.renewLease(
          project,
          run.holder,
          leaseTtlMs(options),
          new Date(stamped).toISOString(),
        ),
      { deadline, clock: run.elapsed },
      `renewing the lease of ${project} after the confirmation`,
    );
    if (renewed.acquired)
      leaseDeadline = Math.min(leaseDeadline, leaseDeadlineOf(run, renewed, stamped));
  }
  run.deadline = deadline;
  run.leaseDeadline = leaseDeadline;
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
 * governor.degraded (reason lease) for each project whose lease another held. This run does not own
 * the project's state: the alert is stored in the outbox, its state saved versioned and it is
 * published, through the store's atomic calls only (alerts.ts sendWithoutLease), so that a run
 * killed before the save has the next send it again under the same id; the holder's next run,
 * judging the whole project, resolves it.
 */
export async function alertLeaseHeld(run: Run): Promise<void> {
  const { deps, report, ctx } = run;
  const grace = alertGrace(run);
  for (const refused of report.leaseHeld) {
    const { project } = refused;
    try {
      const loaded = await beforeDeadline(
        () => deps.store.loadConditions(project),
        grace,
        `reading the alert state of ${project}`,
      );
      const { unsaved } = await sendWithoutLease(
        { store: deps.store, log: deps.log, bound: grace, wall: run.wall },
        project,
        leaseHeldAlert(ctx, refused),
        {
          now: ctx.at,
          runId: ctx.runId,
          renotifyAfterMs: durationMs(run.policy.alerts.renotifyAfter),
        },
        loaded,
        (outgoing) => publish(run, project, outgoing, []),
      );
      if (unsaved !== undefined) throw unsaved;
    } catch (e) {
      // The holder kept saving its own state meanwhile: what went out stays in the outbox, and the
      // next run sends it again under the same id.
      const what = e instanceof ConflictError ? 'could not save' : 'could not publish or save';
      const message = `${project}: ${what} the lease alert: ${errorMessage(e)}`;
      deps.log.log('ERROR', message);
      report.error ??= message;
    }
  }
}

/**
 * Gives the leases back; a store that cannot be reached lets them expire instead. `takenWith`:
 * the fault the taking of these leases failed with, which the run reports already. A release that
 * fails with it too is not told again: the store refused both the same way (a state file it
 * cannot read, a folder in its place, a lock another process holds), so the taking wrote no
 * lease, and "it expires by itself" would send a person looking for one. A taking that got no
 * answer fails otherwise ("the run deadline passed while taking …", Firestore naming the call),
 * so a release that then fails is still told.
 */
export async function releaseAll(
  deps: ReconcileDeps,
  projects: string[],
  holder: string,
  takenWith?: string,
): Promise<void> {
  for (const project of projects) {
    try {
      await deps.store.releaseLease(project, holder);
    } catch (e) {
      if (takenWith !== undefined && errorMessage(e) === takenWith) continue;
      deps.log.log(
        'WARNING',
        `${project}: could not release the lease (it expires by itself): ${errorMessage(e)}`,
      );
    }
  }
}
