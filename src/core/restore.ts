import type { Plan, PlanChange } from './plan.js';
import { compareText, poolKey } from './pool.js';
import { serviceKey } from './snapshot.js';
import { renderReason, type PlanWhy } from './why.js';

/** What a governed service had before the governor first changed it, as its annotations say. */
export interface RestoreTarget {
  project: string;
  region: string;
  name: string;
  etag: string;
  /** null: nothing usable to put back (the service is left as it is). */
  to: number | null;
  source: 'original-max' | 'revision-max';
}

/**
 * The plan of `governor restore`: every governed service back to the max it had before the
 * governor first changed it, decreases first within each pool, pools in key order. Acting on it
 * keeps the same quota rules as any run: an increase is written only as far as the pool has room.
 */
export function restorePlan(plan: Plan, targets: readonly RestoreTarget[]): Plan {
  const byService = new Map(targets.map((t) => [serviceKey(t), t]));
  const changes: PlanChange[] = [];
  for (const row of plan.services) {
    if (!row.managed) continue;
    const target = byService.get(serviceKey(row));
    if (!target || target.to === null || target.to === row.from) continue;
    const why: PlanWhy = { basis: { kind: 'restore', to: target.to, source: target.source } };
    changes.push({
      project: row.project,
      region: row.region,
      name: row.name,
      accelerator: row.accelerator,
      zonalRedundancy: row.zonalRedundancy,
      from: row.from,
      to: target.to,
      gpusPerInstance: row.gpusPerInstance,
      etag: target.etag,
      why,
      reason: renderReason(why),
    });
  }
  const ordered = [...changes].sort(
    (a, b) =>
      compareText(poolKey(a), poolKey(b)) ||
      Number(a.to > a.from) - Number(b.to > b.from) ||
      compareText(a.name, b.name),
  );
  return { ...plan, changes: ordered, deferred: [] };
}
