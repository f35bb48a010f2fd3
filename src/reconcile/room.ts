import { beyondSkew } from '../core/duration.js';
import type { Plan, PlanPool } from '../core/plan.js';
import { effectiveMax, poolBudget, samePool, type PoolId } from '../core/pool.js';
import {
  countedPoolRevisions,
  countedRevisions,
  type RevisionHolding,
} from '../core/revision-pools.js';
import { ANNOTATIONS, writtenAtOf } from '../observe/annotations.js';
import { cutText } from '../core/errors.js';
import { manualInstances, type GpuSpec, type ObservedService } from '../core/service.js';
import type { ObservedJobExecution, ObservedWorkerPool } from '../ports/index.js';

/**
 * What one read of a pool (its region's services, and its quota) says about room for increases.
 * Used twice per pool by the act step: on the fresh read just before the increases, and on the
 * read just after them (verify, and lower the governor's own raises back if another writer filled
 * the pool in between).
 */

/** One read of a pool: every service of its region, and its quota (null: unknown). */
export interface PoolRead {
  services: readonly ObservedService[];
  quota: number | null;
  /**
   * Its region's worker pools and running job executions as listed (on a verify read whose own
   * listing failed, the read's before the increases): with the services, what else holds the
   * pool's GPUs ({@link otherUsageOf}). Absent: that usage as observed for the plan.
   */
  others?: {
    workerPools: readonly ObservedWorkerPool[];
    executions: readonly ObservedJobExecution[];
  };
}

/** Anything of a region that may hold GPUs. */
type Holder = { project: string; region: string; gpu: GpuSpec | null };

/** Whether `x` holds GPUs of `pool`. */
function holdsIn<T extends Holder>(pool: PlanPool, x: T): x is T & { gpu: GpuSpec } {
  return x.gpu !== null && samePool(pool, { project: x.project, region: x.region, ...x.gpu });
}

/**
 * What else holds the pool's GPUs on a read: manually scaled services, worker pools (and the
 * revisions of their instance splits of another pool, {@link countedPoolRevisions}), job tasks.
 * A manually scaled service is counted as the observation counts it ({@link manualInstances}):
 * one that sets no manual instance count runs its min instances (ScalingMode.MANUAL: "Scale to
 * exactly min instances and ignore max instances",
 * https://cloud.google.com/php/docs/reference/cloud-run/latest/V2.ServiceScaling.ScalingMode), so
 * counting it at 0 here would leave room for raises that is not there, and a verify read that
 * does not see a pool over its quota.
 */
export function otherUsageOf(
  pool: PlanPool,
  services: readonly ObservedService[],
  workerPools: readonly ObservedWorkerPool[],
  executions: readonly ObservedJobExecution[],
): number {
  let gpus = listedServiceGpus(pool, services);
  for (const w of workerPools) {
    if (holdsIn(pool, w)) gpus += w.manualInstanceCount * w.gpu.count;
    // The revisions of its instance split of another pool, counted as observation counts them.
    for (const h of countedPoolRevisions(w)) if (samePool(pool, h)) gpus += h.gpus;
  }
  for (const e of executions) if (holdsIn(pool, e)) gpus += e.runningTasks * e.gpu.count;
  return gpus;
}

/**
 * The GPUs of the pool that its region's listed services hold outside the governed caps: those
 * of its manually scaled services, and those of serving revisions of another pool than their
 * service's template ({@link countedRevisions}, counted as observation counts them).
 */
function listedServiceGpus(pool: PlanPool, services: readonly ObservedService[]): number {
  let gpus = 0;
  for (const s of services) {
    if (s.scalingMode === 'MANUAL' && holdsIn(pool, s)) gpus += manualInstances(s) * s.gpu.count;
    for (const h of countedRevisions(s, () => pool.quota)) if (samePool(pool, h)) gpus += h.gpus;
  }
  return gpus;
}

/**
 * A serving revision of `s` that holds GPUs of another pool than `pool` and would hold more there
 * were the service-level max `to`, or null. A revision in the traffic split whose own max (or,
 * unset, its pool's unset max) is above the service-level max is held to that max, which bounds
 * "the total instance count for the service in all revisions with specified traffic"
 * (ServiceScaling.max_instance_count in google/cloud/run/v2/vendor_settings.proto) and takes
 * effect at once ("Service-level: immediately",
 * https://cloud.google.com/run/docs/configuring/max-instances). Raising it lets that revision take
 * more of its own pool ({@link countedRevisions}, counted as observation counts it): room of a
 * pool the raise is not decided on. `quotaOf`: each pool's quota, for a revision without a max.
 */
export function grownElsewhere(
  pool: PlanPool,
  s: ObservedService,
  to: number,
  quotaOf: (pool: PoolId) => number | null,
): RevisionHolding | null {
  const now = countedRevisions(s, quotaOf);
  const raised = countedRevisions({ ...s, serviceMaxInstances: to }, quotaOf);
  // The same revisions in the same order, only the service-level max differs.
  for (const [i, h] of raised.entries())
    if (!samePool(pool, h) && h.gpus > (now[i]?.gpus ?? 0)) return h;
  return null;
}

/** The automatically scaled GPU services of the pool, among those listed in its region. */
export function inPool(pool: PlanPool, services: readonly ObservedService[]): ObservedService[] {
  return services.filter((s) => s.scalingMode !== 'MANUAL' && holdsIn(pool, s));
}

/** GPUs one instance of the service holds (1 for a service read without its GPU count). */
export function instanceGpus(s: ObservedService): number {
  return s.gpu?.count ?? 1;
}

/** A cap in GPUs: effective max × GPUs per instance. */
function capGpus(s: ObservedService): number {
  return effectiveMax(s) * instanceGpus(s);
}

interface PoolRoom {
  /** What the governed services may hold together, on this read. */
  allowed: number;
  /** What they hold now. */
  governed: number;
  /** allowed − governed: what increases may still add (negative: over). */
  room: number;
}

/**
 * The room for the governed services of a pool on one read of it:
 * budget = quota − reserve − unmanaged caps − other unmanaged usage (worker pools, running job
 * tasks, manually scaled services), all as now read (the other usage as observed for the plan
 * when the read does not carry it).
 *
 * A service the plan did not know counts as unmanaged. The budget bounds every pool, an infeasible
 * one too (its floors do not fit): floors yield to the quota (docs/rules.md, promise 1), so a raise
 * toward a floor stops where the budget does. The room is never the floors' sum, which counts a
 * deploying service at its floor while its cap still holds GPUs.
 */
export function roomOf(plan: Plan, pool: PlanPool, read: PoolRead): PoolRoom {
  const rows = plan.services.filter((r) => samePool(r, pool));
  const managed = new Set(rows.filter((r) => r.managed).map((r) => r.name));
  const otherUsage = read.others
    ? otherUsageOf(pool, read.services, read.others.workerPools, read.others.executions)
    : pool.unmanagedGpus -
      rows.filter((r) => !r.managed).reduce((a, r) => a + r.from * r.gpusPerInstance, 0);
  let governed = 0;
  let unmanaged = 0;
  for (const s of inPool(pool, read.services)) {
    if (managed.has(s.name)) governed += capGpus(s);
    else unmanaged += capGpus(s);
  }
  const budget = poolBudget({
    quota: read.quota,
    reserve: pool.reserve,
    unmanagedCapsGpus: unmanaged,
    otherUsageGpus: otherUsage,
  });
  if (budget === null) return { allowed: governed, governed, room: 0 };
  return { allowed: budget, governed, room: budget - governed };
}

/** Another governor's stamp on a service of the pool, recent enough to mean it is writing now. */
export interface OtherWriter {
  writer: string;
  at: string;
  service: string;
  /**
   * The stamp is later than the reader's clock by more than the clock skew allowed
   * (MAX_CLOCK_SKEW_MS, core/duration.ts): a wrong clock or a hand edit wrote it. It holds the
   * pool all the same (no write is the safe side), until that time and a lease.
   */
  ahead: boolean;
  /**
   * The stamp's time is no time the governor writes (RFC 3339 with its offset): `at` is then its
   * text as found. When that governor wrote is unknown, so it may be writing now; the pool is held
   * until its stamp is corrected or removed (or its next write stamps a readable time).
   */
  unreadable: boolean;
}

/**
 * The most recent stamp of another governor on the pool's services within `ttlMs` of `nowMs`, or
 * null. Each governor stamps its id and the time on every service it writes (ANNOTATIONS.writer,
 * ANNOTATIONS.writtenAt, on the wall clock like a lease): two governors with separate state
 * stores (so separate leases) see each other here, at Google's side.
 */
export function otherWriter(
  pool: PlanPool,
  read: PoolRead,
  self: string,
  nowMs: number,
  ttlMs: number,
): OtherWriter | null {
  let found: OtherWriter | null = null;
  let unreadable: OtherWriter | null = null;
  for (const s of inPool(pool, read.services)) {
    const writer = s.annotations[ANNOTATIONS.writer];
    if (!writer || sameGovernor(writer, self)) continue;
    // Read as the governor writes it (observe/annotations.ts), as last-changed and last-lowered
    // are: Date.parse took "garbage 2026" as 2026-01-01 and a time without an offset in this
    // machine's zone, so a stamp could count as fresh on one machine and as old on another.
    const stamp = writtenAtOf(s.annotations);
    if ('absent' in stamp) continue; // removed: the documented way to end a hold
    if ('unreadable' in stamp) {
      // When that governor wrote is unknown, so it may be writing now: holding the pool is the
      // safe side (two governors writing one pool can take it over its quota; a held pool only
      // waits, with an alert naming the stamp to correct or remove). Reading it as no stamp
      // would let a hand edit or a broken clock switch the exclusion off.
      unreadable ??= {
        writer,
        at: cutText(stamp.unreadable, STAMP_SHOWN),
        service: s.name,
        ahead: false,
        unreadable: true,
      };
      continue;
    }
    const ms = Date.parse(stamp.at);
    if (nowMs - ms > ttlMs) continue;
    if (!found || Date.parse(found.at) < ms)
      found = {
        writer,
        at: stamp.at,
        service: s.name,
        ahead: beyondSkew(stamp.at, nowMs),
        unreadable: false,
      };
  }
  // A readable fresh stamp is named first: its hold ends on its own.
  return found ?? unreadable;
}

/** How much of an unreadable stamp a message shows (it is anyone's text). */
const STAMP_SHOWN = 60;

/** A stamp's store id: `<name>/gov-<12 hex>` (see reconcile's writerStamp). */
const STAMP_ID = /\/(gov-[0-9a-f]{12})$/;

/**
 * Whether a stamp is this governor's: the same store id when both carry one (the names of two
 * runs on one store may differ: the function and a laptop sharing its Firestore), else the same
 * text.
 */
export function sameGovernor(stamp: string, self: string): boolean {
  const theirs = STAMP_ID.exec(stamp)?.[1];
  const mine = STAMP_ID.exec(self)?.[1];
  return theirs !== undefined && mine !== undefined ? theirs === mine : stamp === self;
}
