import { z } from 'zod';
import { Alert } from '../core/alert.js';
import type { Plan } from '../core/plan.js';
import { quotasSeen } from '../core/run-alerts.js';
import type { WriteResult } from '../core/write-result.js';
import type { Logger } from '../log.js';
import type { RunRecord, StateStore } from '../ports/index.js';

/**
 * A run's record in each project it held, and the events a run could not publish: kept in its
 * record, sent by the next run, then recorded again without them.
 */

/** What a run's record is made of (its RunReport). */
export interface RunSummary {
  runId: string;
  mode: Plan['mode'];
  outcome: 'ok' | 'failed' | 'lease-held' | 'declined';
  plan: Plan | null;
  writes: readonly WriteResult[];
  published: number;
  error: string | null;
  /** Events the run could not publish. */
  undelivered: readonly Alert[];
}

/** Events earlier runs could not publish, oldest run first, with the records that hold them. */
export async function pendingEvents(
  store: StateStore,
  project: string,
): Promise<{ alerts: Alert[]; records: RunRecord[] }> {
  const records = (await store.listRuns(project))
    .filter((r) => r.undelivered !== undefined)
    .reverse();
  const alerts: Alert[] = [];
  for (const r of records) {
    const parsed = z.array(Alert).safeParse(safeJson(r.undelivered ?? '[]'));
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
export async function markDelivered(
  store: StateStore,
  log: Logger,
  project: string,
  records: readonly RunRecord[],
): Promise<void> {
  for (const r of records) {
    const rest: RunRecord = { ...r };
    delete rest.undelivered;
    try {
      await store.recordRun(project, rest);
    } catch (e) {
      // The next run sends them again: at least once, as Pub/Sub itself (alerts carry an id).
      log.log(
        'WARNING',
        `${project}: sent the undelivered events of ${r.runId} but could not record it: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
}

/** Records the run in each project it held: what it wrote, the quotas it read, what it could not send. */
export async function recordRuns(
  store: StateStore,
  log: Logger,
  projects: readonly string[],
  report: RunSummary,
  startedWall: number,
  finishedWall: number,
): Promise<void> {
  for (const project of projects) {
    const writes = report.writes.filter((w) => w.project === project);
    const deferred = report.plan?.deferred.filter((d) => d.project === project).length ?? 0;
    const byCause = skipsByCause(writes, deferred);
    const undelivered = report.undelivered.filter((a) => a.project === project);
    try {
      await store.recordRun(project, {
        runId: report.runId,
        startedAt: new Date(startedWall).toISOString(),
        finishedAt: new Date(finishedWall).toISOString(),
        mode: report.mode,
        outcome: report.outcome === 'declined' ? 'ok' : report.outcome,
        changes: writes.filter((w) => w.outcome === 'written').length,
        skips: writes.filter((w) => w.outcome !== 'written').length + deferred,
        ...(Object.keys(byCause).length > 0 ? { skipsByCause: byCause } : {}),
        alerts: report.published,
        error: report.error,
        quotas: report.plan ? quotasSeen(report.plan, project) : {},
        // Events this run could not publish: the next run sends them (see pendingEvents).
        ...(undelivered.length > 0 ? { undelivered: JSON.stringify(undelivered) } : {}),
      });
    } catch (e) {
      log.log(
        'ERROR',
        `${project}: could not record the run: ${e instanceof Error ? e.message : String(e)}${undelivered.length > 0 ? `; ${undelivered.length} undelivered event(s) are lost` : ''}`,
      );
    }
  }
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
