import {
  executionOrder,
  isUrgent,
  type Plan,
  type PlanChange,
  type PlanPool,
  type PlanService,
} from './plan.js';
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
  /**
   * The annotation as found when it is not a max (not the decimal whole number the governor
   * writes): `to` is then null, and the restore says so and writes nothing to the service.
   */
  unreadable?: string;
}

/**
 * The plan of `governor restore`: every governed service back to the max it had before the
 * governor first changed it, in the order of any plan (executionOrder: urgent pools first, then
 * pools in key order, each pool's decreases before its increases, by name within each), at most
 * `limit` changes (limits.maxChangesPerRun): the rest are `deferred`, each service staying at its
 * cap until a later restore, as in every plan. Acting on it keeps the same quota rules as every run:
 * an increase is written only as far as the pool has room.
 *
 * It is the plan that is shown, confirmed and carried out: each governed row says what restore
 * does to it (`to`, `why`, `reason`), each pool's `capsAfter` is what the restore leaves, and it
 * carries no conditions (`alerts` empty): a restore decides nothing about starvation or pressure,
 * so it must neither fire nor resolve them (the run judges no scope for conditions).
 */
export function restorePlan(plan: Plan, targets: readonly RestoreTarget[], limit: number): Plan {
  const byService = new Map(targets.map((t) => [serviceKey(t), t]));
  const changes: PlanChange[] = [];
  for (const row of plan.services) {
    if (!row.managed) continue;
    const target = byService.get(serviceKey(row));
    if (!target || target.to === null || target.to === row.from) continue;
    const why = restoreWhy(target);
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
  const ordered = executionOrder(
    [...plan.pools]
      .sort((a, b) => compareText(poolKey(a), poolKey(b)))
      .map((p) => ({
        urgent: isUrgent(p.status),
        changes: changes.filter((c) => samePool(c, p)).sort((a, b) => compareText(a.name, b.name)),
      })),
    (c) => c.to < c.from,
  );
  // Held back by the limit: stays at its cap, planned for a later restore (as in any plan).
  const deferred = ordered.slice(limit).map((c): PlanChange => {
    const why: PlanWhy = { ...c.why, deferred: { limit, stays: c.from, planned: c.to } };
    return { ...c, why, reason: renderReason(why) };
  });
  const rowOf = new Map([...ordered.slice(0, limit), ...deferred].map((c) => [serviceKey(c), c]));
  const services: PlanService[] = plan.services.map((row) => {
    if (!row.managed) {
      // Changed by the governor, and not governed now: hands off (rule 3), but said.
      const target = byService.get(serviceKey(row));
      if (!target || target.to === row.from) return row;
      const why: PlanWhy = { ...row.why, notRestored: { before: target.to } };
      return { ...row, why, reason: renderReason(why) };
    }
    const change = rowOf.get(serviceKey(row));
    if (change) {
      const to = change.why.deferred ? row.from : change.to;
      return { ...row, to, why: change.why, reason: change.reason };
    }
    const why = restoreWhy(byService.get(serviceKey(row)));
    return { ...row, to: row.from, why, reason: renderReason(why) };
  });
  const pools: PlanPool[] = plan.pools.map((p) => ({
    ...p,
    capsAfter: services
      .filter((r) => r.managed && samePool(r, p))
      .reduce((sum, r) => sum + r.to * r.gpusPerInstance, 0),
  }));
  return {
    ...plan,
    pools,
    services,
    changes: ordered.slice(0, limit),
    deferred,
    alerts: [],
  };
}

/** Why restore sets a row where it does: back to its max from before, or nothing to put back. */
function restoreWhy(target: RestoreTarget | undefined): PlanWhy {
  if (target?.unreadable !== undefined)
    return { basis: { kind: 'restore-none', why: 'unreadable', annotation: target.unreadable } };
  return target && target.to !== null
    ? { basis: { kind: 'restore', to: target.to, source: target.source } }
    : { basis: { kind: 'restore-none', why: target ? 'no-original' : 'never-changed' } };
}

/** Where a service is: what a gcloud command needs to name it. */
interface ServicePlace {
  project: string;
  region: string;
  name: string;
}

const placeOf = (r: PlanService): ServicePlace => ({
  project: r.project,
  region: r.region,
  name: r.name,
});

/** How far a restore got, for people: what is back, what waits, and what to do about it. */
interface RestoreProgress {
  /** Governed services the restore concerns (those with a max to put back). */
  total: number;
  /** Of those, the ones at their max from before the governor now. */
  restored: number;
  /**
   * Changes this run did not make because of limits.maxChangesPerRun (`limit`): left for the next
   * restore.
   */
  deferred: { count: number; limit: number } | null;
  /**
   * Governed services left as they are because their original-max annotation is not a max
   * (someone edited it): `service` is project/region/name, `annotation` the text found.
   */
  unreadable: { service: string; place: ServicePlace; annotation: string }[];
  /**
   * Services the governor changed that the policy no longer governs: restore leaves them as they
   * are (`at`), away from their max from before the governor (`before`; null: none).
   */
  notGoverned: { service: string; place: ServicePlace; at: number; before: number | null }[];
  /** Per pool, the services still away from it, and why. */
  waiting: {
    pool: string;
    /** `deferred`: held back by limits.maxChangesPerRun, not for want of room. */
    services: { name: string; at: number; target: number; deferred: boolean }[];
    /** GPUs the targets of the pool's governed services need, against its budget. */
    needs: number;
    budget: number | null;
  }[];
}

/** What restore puts a row back to (its `to` is its cap while deferred). */
function targetOf(r: PlanService): number {
  return r.why.basis.kind === 'restore' ? r.why.basis.to : r.to;
}

/**
 * What a restore run achieved, from its plan and the caps it wrote (`written`: service key → the
 * max written). Pure.
 */
export function restoreProgress(plan: Plan, written: ReadonlyMap<string, number>): RestoreProgress {
  const rows = plan.services.filter((r) => r.managed && r.why.basis.kind === 'restore');
  const now = (r: PlanService) => written.get(serviceKey(r)) ?? r.from;
  const away = rows.filter((r) => now(r) !== targetOf(r));
  const waiting = plan.pools
    .map((p) => {
      const mine = away.filter((r) => samePool(r, p));
      return {
        pool: poolKey(p),
        services: mine.map((r) => ({
          name: r.name,
          at: now(r),
          target: targetOf(r),
          deferred: r.why.deferred !== undefined,
        })),
        needs: plan.services
          .filter((r) => r.managed && samePool(r, p))
          .reduce((sum, r) => sum + targetOf(r) * r.gpusPerInstance, 0),
        budget: p.budget,
      };
    })
    .filter((w) => w.services.length > 0);
  const limit = plan.deferred[0]?.why.deferred?.limit;
  const unreadable = plan.services.flatMap((r) => {
    const b = r.why.basis;
    return r.managed && b.kind === 'restore-none' && b.why === 'unreadable'
      ? [{ service: serviceKey(r), place: placeOf(r), annotation: b.annotation ?? '' }]
      : [];
  });
  const notGoverned = plan.services.flatMap((r) =>
    r.why.notRestored
      ? [
          {
            service: serviceKey(r),
            place: placeOf(r),
            at: r.from,
            before: r.why.notRestored.before,
          },
        ]
      : [],
  );
  return {
    total: rows.length,
    restored: rows.length - away.length,
    deferred: limit === undefined ? null : { count: plan.deferred.length, limit },
    unreadable,
    notGoverned,
    waiting,
  };
}
