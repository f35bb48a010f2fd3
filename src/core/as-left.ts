import type { Plan, PlanPool } from './plan.js';
import { samePool } from './pool.js';
import { serviceKey } from './snapshot.js';
import type { WriteResult } from './write-result.js';

/**
 * The caps a run's writes left in force, as opposed to the ones it planned: what the accounts of a
 * run that speak of the fleet (the governor's metrics, the run record's pools) are judged on. A
 * service's cap is the one its last landed write set, in the order the writes were made (a raise,
 * then its lowering back), else the cap it was observed with: a write denied, skipped, refused or
 * not made leaves it as it was. A write that may or may not have landed (`uncertain`) is counted
 * at the observed cap: the run cannot tell, and the next run reads the cap in force.
 */

/** The cap (instances) the landed writes of one service set last; null when none landed. */
export function capWritten(writes: readonly WriteResult[]): number | null {
  let cap: number | null = null;
  for (const w of writes) if (w.outcome === 'written' && w.written !== null) cap = w.written;
  return cap;
}

/** The writes of the run to one service, in the order they were made. */
export function writesOf(
  writes: readonly WriteResult[],
  s: { project: string; region: string | null; name: string },
): WriteResult[] {
  return writes.filter(
    (w) => w.project === s.project && w.region === s.region && w.name === s.name,
  );
}

/** Each service's cap after the run, in instances, keyed by serviceKey (core/snapshot.ts). */
export function capsAsLeft(
  plan: Plan,
  project: string,
  writes: readonly WriteResult[],
): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of plan.services)
    if (s.project === project) out.set(serviceKey(s), capWritten(writesOf(writes, s)) ?? s.from);
  return out;
}

/** The GPUs the governed services of `pool` hold at the caps `caps` (from capsAsLeft). */
export function poolCapsAsLeft(
  plan: Plan,
  pool: PlanPool,
  caps: ReadonlyMap<string, number>,
): number {
  return plan.services
    .filter((s) => s.managed && samePool(s, pool))
    .reduce((a, s) => a + (caps.get(serviceKey(s)) ?? s.from) * s.gpusPerInstance, 0);
}

/**
 * Causes after which the run does not know the cap in force: a write that may or may not have
 * landed, or a service someone else changed or deleted since it was observed. An alert that would
 * restate the plan as left keeps the plan's word where one of these touched what it is about.
 */
export const CAP_UNKNOWN: ReadonlySet<WriteResult['cause']> = new Set([
  'uncertain',
  'etag',
  'changed',
  'conflict',
  'gone',
  'unreadable',
]);

/** The writes of the run in `pool` (its governed services), in the order they were made. */
export function writesInPool(
  plan: Plan,
  pool: PlanPool,
  writes: readonly WriteResult[],
): WriteResult[] {
  const names = new Set(
    plan.services.filter((s) => s.managed && samePool(s, pool)).map((s) => s.name),
  );
  return writes.filter(
    (w) => w.project === pool.project && w.region === pool.region && names.has(w.name),
  );
}
