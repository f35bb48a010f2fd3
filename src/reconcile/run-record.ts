import { z } from 'zod';
import { Alert } from '../core/alert.js';
import { capsAsLeft, poolCapsAsLeft } from '../core/as-left.js';
import type { Plan } from '../core/plan.js';
import { newestLedger, type PressureLedger } from '../core/quota-pressure.js';
import { poolKey } from '../core/pool.js';
import { quotasSeen } from '../core/run-alerts.js';
import type { WriteResult } from '../core/write-result.js';
import { capFaults, zodFaults } from '../core/document.js';
import type { Logger } from '../log.js';
import type { RunRecord, StateStore } from '../ports/index.js';
import { errorMessage, type Fault } from '../core/errors.js';

/**
 * A run's record in each project it held. Records written by earlier versions may still hold the
 * events a run could not publish (`undelivered`): the next run moves them into the outbox and
 * records those runs again without them.
 */

/** What a run's record is made of (its RunReport). */
interface RunSummary {
  runId: string;
  mode: Plan['mode'];
  outcome: 'ok' | 'failed' | 'lease-held' | 'declined';
  plan: Plan | null;
  writes: readonly WriteResult[];
  /** The alert messages the run published (or only logged, without a topic), every project's. */
  alerts: readonly Pick<Alert, 'project'>[];
  error: string | null;
  /** This run's events it could not publish (they stay in the outbox). */
  undelivered: readonly Alert[];
  /** Per project, the pressure ledger this run rolled forward (absent: none to record). */
  pressure?: Readonly<Record<string, PressureLedger>>;
}

/**
 * The events kept in records of earlier versions, oldest run first, with the records they came
 * from; and the records whose events cannot be read (garbage, a hand edit), with why. Those are
 * left as they are: a stored message nobody can read never stops the runs (docs/alerts.md).
 */
export function legacyUndelivered(runs: readonly RunRecord[]): {
  alerts: Alert[];
  records: RunRecord[];
  unreadable: { record: RunRecord; faults: Fault[] }[];
} {
  const alerts: Alert[] = [];
  const records: RunRecord[] = [];
  const unreadable: { record: RunRecord; faults: Fault[] }[] = [];
  for (const r of runs.filter((r) => r.undelivered !== undefined).reverse()) {
    const parsed = z.array(Alert).safeParse(parseJsonOrNull(r.undelivered ?? '[]'));
    if (parsed.success) {
      alerts.push(...parsed.data);
      records.push(r);
    } else {
      unreadable.push({ record: r, faults: capFaults(zodFaults(parsed.error), 5) });
    }
  }
  return { alerts, records, unreadable };
}

function parseJsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    if (error instanceof SyntaxError) return null; // reported as not an array of alerts
    throw error;
  }
}

/** Records the runs again without their undelivered events, now in the outbox. */
export async function stripLegacyUndelivered(
  store: StateStore,
  project: string,
  records: readonly RunRecord[],
): Promise<void> {
  for (const r of records) {
    const rest: RunRecord = { ...r };
    delete rest.undelivered;
    await store.recordRun(project, rest);
  }
}

/**
 * Records the run in each project it held: what it wrote, the quotas it read, what it could not
 * send, and the pressure ledger. A run that rolled none (a restore, one that failed or was declined
 * before it got there) carries the newest as it found it (newestLedger at `at`, the run's time):
 * the ledger rides the newest record, and without it a store that keeps few records would prune
 * the last record holding it, and with it the days of evidence and the quota requests it tracks.
 */
export async function recordRuns(
  store: StateStore,
  log: Logger,
  projects: readonly string[],
  report: RunSummary,
  startedWall: number,
  finishedWall: number,
  at: string,
): Promise<void> {
  for (const project of projects) {
    const writes = report.writes.filter((w) => w.project === project);
    const deferred = report.plan?.deferred.filter((d) => d.project === project).length ?? 0;
    const byCause = skipsByCause(writes, deferred);
    const undelivered = report.undelivered.filter((a) => a.project === project);
    // A run that never reached its alert work (declined, or failed before it) reads the records
    // here; a restore's alert work already carried the ledger it read. Records that cannot be read
    // (a newer version's values, a store down) have no ledger to carry: the run is recorded all the
    // same, as before this read, and the log says so.
    const pressure =
      report.pressure?.[project] ??
      (await store.listRuns(project).then(
        (runs) => newestLedger(runs, at),
        (e: unknown) => {
          log.log(
            'WARNING',
            `${project}: the run records could not be read to carry the pressure ledger forward: ${errorMessage(e)}`,
          );
          return undefined;
        },
      ));
    try {
      await store.recordRun(project, {
        runId: report.runId,
        startedAt: new Date(startedWall).toISOString(),
        finishedAt: new Date(finishedWall).toISOString(),
        ...(report.plan ? { at: report.plan.at } : {}),
        mode: report.mode,
        outcome: report.outcome === 'declined' ? 'ok' : report.outcome,
        changes: writes.filter((w) => w.outcome === 'written').length,
        skips: writes.filter((w) => w.outcome !== 'written').length + deferred,
        ...(Object.keys(byCause).length > 0 ? { skipsByCause: byCause } : {}),
        // This project's own: a run of several projects publishes each one's alerts apart.
        alerts: report.alerts.filter((a) => a.project === project).length,
        error: report.error,
        quotas: report.plan ? quotasSeen(report.plan, project) : {},
        ...(report.plan ? { pools: poolsOf(report.plan, project, report) } : {}),
        // Events this run could not publish: they stay in the outbox for the next run to send.
        ...(undelivered.length > 0 ? { undeliveredIds: undelivered.map((a) => a.id) } : {}),
        ...(pressure ? { pressure } : {}),
      });
    } catch (e) {
      log.log(
        'ERROR',
        `${project}: could not record the run: ${errorMessage(e)}${undelivered.length > 0 ? `; its ${undelivered.length} undelivered event(s) are still in the outbox` : ''}`,
      );
    }
  }
}

/**
 * Each pool of `project`, for the organisation view: its caps as the run's writes left them
 * (core/as-left.ts), or as planned in a dry run, which writes nothing and shows what it would do.
 */
function poolsOf(
  plan: Plan,
  project: string,
  report: Pick<RunSummary, 'mode' | 'writes'>,
): NonNullable<RunRecord['pools']> {
  const left = report.mode === 'dry-run' ? null : capsAsLeft(plan, project, report.writes);
  const out: NonNullable<RunRecord['pools']> = {};
  for (const p of plan.pools) {
    if (p.project !== project) continue;
    out[poolKey(p)] = {
      budget: p.budget,
      caps: left === null ? p.capsAfter : poolCapsAsLeft(plan, p, left),
      demand: p.demand,
      inUse: p.inUse,
      status: p.status,
    };
  }
  return out;
}

/**
 * Writes planned and not made, by cause (`deferred`: held back by `limits.maxChangesPerRun`). A
 * raise lowered back in the same run (`compensated`) is a write made, not counted here.
 */
export function skipsByCause(
  writes: readonly Pick<WriteResult, 'outcome' | 'cause'>[],
  deferred = 0,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of writes) if (w.outcome !== 'written') out[w.cause] = (out[w.cause] ?? 0) + 1;
  if (deferred > 0) out['deferred'] = deferred;
  return out;
}
