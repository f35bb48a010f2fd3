import type { Plan, PlanChange, PlanPool, PlanService } from './plan.js';
import { compareText, poolKey, samePool } from './pool.js';
import { serviceKey } from './snapshot.js';
import { renderReason, type PlanWhy } from './why.js';

/** What a governed service had before the governor first changed it, as its annotations say. */
export interface RestoreTarget {
  project: string;
  region: string;
  name: string;
  etag: string;
  /**
   * What to put back; null when neither the annotation nor the revision gives a usable max (the
   * service is left as it is).
   */
  to: number | null;
  /** original-max: its own service-level max; revision-max: it had none, so the revision's. */
  source: 'original-max' | 'revision-max';
}

/**
 * The plan of `governor restore`: every governed service back to the max it had before the
 * governor first changed it, decreases first within each pool, pools in key order. Acting on it
 * keeps the same quota rules as any run: an increase is written only as far as the pool has room.
 *
 * It is the plan that is shown, confirmed and carried out: each governed row says what restore
 * does to it (`to`, `why`, `reason`), each pool's `capsAfter` is what the restore leaves, and it
 * carries no conditions (`alerts` empty): a restore decides nothing about starvation or pressure,
 * so it must neither fire nor resolve them (the run judges no scope for conditions).
 */
export function restorePlan(plan: Plan, targets: readonly RestoreTarget[]): Plan {
  const byService = new Map(targets.map((t) => [serviceKey(t), t]));
  const changes: PlanChange[] = [];
  const services: PlanService[] = plan.services.map((row) => {
    if (!row.managed) return row;
    const target = byService.get(serviceKey(row));
    if (!target || target.to === null) {
      const why: PlanWhy = {
        basis: { kind: 'restore-none', why: target ? 'no-original' : 'never-changed' },
      };
      return { ...row, to: row.from, why, reason: renderReason(why) };
    }
    const why: PlanWhy = { basis: { kind: 'restore', to: target.to, source: target.source } };
    const reason = renderReason(why);
    if (target.to !== row.from) {
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
        reason,
      });
    }
    return { ...row, to: target.to, why, reason };
  });
  const ordered = [...changes].sort(
    (a, b) =>
      compareText(poolKey(a), poolKey(b)) ||
      Number(a.to > a.from) - Number(b.to > b.from) ||
      compareText(a.name, b.name),
  );
  const pools: PlanPool[] = plan.pools.map((p) => ({
    ...p,
    capsAfter: services
      .filter((r) => r.managed && samePool(r, p))
      .reduce((sum, r) => sum + r.to * r.gpusPerInstance, 0),
  }));
  return { ...plan, pools, services, changes: ordered, deferred: [], alerts: [] };
}

/** How far a restore got, for people: what is back, what waits, and what to do about it. */
export interface RestoreProgress {
  /** Governed services the restore concerns (those with a max to put back). */
  total: number;
  /** Of those, the ones at their max from before the governor now. */
  restored: number;
  /** Per pool, the services still away from it, and why. */
  waiting: {
    pool: string;
    services: { name: string; at: number; target: number }[];
    /** GPUs the targets of the pool's governed services need, against its budget. */
    needs: number;
    budget: number | null;
  }[];
}

/**
 * What a restore run achieved, from its plan and the caps it wrote (`written`: service key → the
 * max written). Pure.
 */
export function restoreProgress(plan: Plan, written: ReadonlyMap<string, number>): RestoreProgress {
  const rows = plan.services.filter((r) => r.managed && r.why.basis.kind === 'restore');
  const now = (r: PlanService) => written.get(serviceKey(r)) ?? r.from;
  const away = rows.filter((r) => now(r) !== r.to);
  const waiting = plan.pools
    .map((p) => {
      const mine = away.filter((r) => samePool(r, p));
      return {
        pool: poolKey(p),
        services: mine.map((r) => ({ name: r.name, at: now(r), target: r.to })),
        needs: plan.services
          .filter((r) => r.managed && samePool(r, p))
          .reduce((sum, r) => sum + r.to * r.gpusPerInstance, 0),
        budget: p.budget,
      };
    })
    .filter((w) => w.services.length > 0);
  return { total: rows.length, restored: rows.length - away.length, waiting };
}
