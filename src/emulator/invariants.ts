import { z } from 'zod';
import { issuesLine } from '../core/document.js';
import { writeBreaches } from '../core/invariants.js';
import { Accelerator, Region } from './fleet.js';
import { DEFAULT_ACCELERATOR, samePool, type PoolId } from '../core/pool.js';
import {
  effectiveMax,
  gpusPerInstance,
  manualCount,
  type FleetModel,
  type ServiceKey,
  type ServiceState,
} from './model.js';
import { serviceRevisions } from './resources.js';

/**
 * The invariant monitor: after every write (UpdateService in the emulator, `updateMaxInstances` in
 * the in-memory chaos runs) it checks the promises of rules 1 and 3 (docs/rules.md) for the written pool and
 * records every violation with the write that caused it:
 *
 * - `over-quota`: the write raised a cap and left the pool's caps (every service's effective max x
 *   GPUs, a manually scaled one at its instance count) + worker pools + reserve above the quota,
 *   whether or not the governed floors fit (floors yield to the quota; `floorsFit` in the
 *   violation says which it was). A decrease is never a violation: an over-budget pool may only
 *   go down. And, where the caller passes the model with its reads (the in-process chaos runs): a
 *   raise that, with the governor's other raises since its last listing of the region, takes more
 *   than the room that listing and its read of the quota showed, whatever another writer did since.
 * - `unmanaged`: a write to a service the registered policy leaves unmanaged.
 * - `reconciling`: a write to a service that was reconciling when it was last read.
 *
 * - `uncompensated`: a raise that took its pool over the quota in Cloud Run's window (below), which
 *   the governor then saw (it listed the region again) and did not try to lower back.
 *
 * Cloud Run has no multi-service transaction, so between the governor's last read of a pool and
 * its raise (one round trip) another writer may fill the pool or cut the quota: a raise that then
 * leaves the pool over the quota is a **race**, kept apart (`races()`), not an `over-quota`
 * violation, when the monitor saw another actor change that pool after the governor last read it
 * (the region's services, or the pool's quota). Such a raise must come back down in the same run
 * once the governor sees the pool again (`judgeRaces`, called after each run).
 *
 * The window is one round trip only because the governor reads the pool again just before its
 * raises (docs/performance.md, "The window"): a raise sent on the run's first read of the pool
 * (its observation), with the decreases and the rest of the run between that read and the raise,
 * is not inside Cloud Run's window. So another writer's change counts as a race only when the
 * governor read again, in the same run, what it changed: the region listed twice, the quota read
 * twice (or never: a quota the policy sets is not read). Else the raise is an `over-quota`
 * violation. A run ends at `judgeRaces`.
 *
 * What is governed, the reserve and the floors come from a spec the test registers
 * ({@link InvariantSpec}); without one, every service is governed, the reserve is 0 and a
 * service's floor is max(1, its min instances). Whether a write breaks a rule is decided by
 * core/invariants.ts, as for the simulator's write checks; this monitor gathers the pool's facts
 * from the model and keeps what it finds.
 */

const InvariantPoolSpec = z.strictObject({
  project: z.string().min(1),
  region: Region,
  accelerator: Accelerator.default(DEFAULT_ACCELERATOR),
  zonalRedundancy: z.boolean().default(true),
  reserve: z.number().int().min(0).optional(),
  /** GPUs the governed floors take in this pool (default: max(1, min) x GPUs per service). */
  floorGpus: z.number().int().min(0).optional(),
});

export const InvariantSpec = z.strictObject({
  /** GPUs kept free in every pool without its own `reserve`. */
  reserve: z.number().int().min(0).default(0),
  pools: z.array(InvariantPoolSpec).default([]),
  /** Services the governor must never write. */
  unmanaged: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        project: z.string().min(1).optional(),
        region: z.string().min(1).optional(),
      }),
    )
    .default([]),
});
export type InvariantSpec = z.infer<typeof InvariantSpec>;
export type InvariantSpecInput = z.input<typeof InvariantSpec>;

export type ViolationKind = 'over-quota' | 'unmanaged' | 'reconciling' | 'uncompensated';

export interface Violation {
  readonly kind: ViolationKind;
  /** The write's sequence number (the emulator's write log) or the caller's counter. */
  readonly seq: number;
  readonly at: string;
  readonly service: ServiceKey;
  readonly before: number;
  readonly after: number;
  /** The pool right after the write: caps + worker pools + reserve, against the quota. */
  readonly pool: { used: number; quota: number | null; reserve: number; floorsFit: boolean } | null;
  readonly message: string;
}

interface PoolLoad {
  /** Caps of every service + worker pool GPUs. */
  readonly used: number;
  readonly quota: number | null;
  readonly reserve: number;
  readonly floorsFit: boolean;
}

const keyOf = (k: ServiceKey): string => `${k.project}/${k.region}/${k.name}`;
const regionOf = (k: { project: string; region: string }): string => `${k.project}/${k.region}`;
const poolOf = (p: {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}): string => `${p.project}/${p.region}/${p.accelerator}/${p.zonalRedundancy}`;

/** A raise inside Cloud Run's window that left its pool over quota, and when it happened. */
interface Race {
  readonly violation: Violation;
  readonly tick: number;
  /** What the other writer changed after the governor's read: the pool's caps, its quota. */
  readonly caps: boolean;
  readonly quota: boolean;
  judged: boolean;
}

export class InvariantMonitor {
  private spec: InvariantSpec = InvariantSpec.parse({});
  private readonly found: Violation[] = [];
  private readonly lastSeenReconciling = new Map<string, boolean>();
  private readonly raceList: Race[] = [];
  /** A logical clock: reads, other actors' changes and write attempts, in order. */
  private tick = 0;
  private readonly listedAt = new Map<string, number>();
  private readonly listAttemptedAt = new Map<string, number>();
  private readonly quotaReadAt = new Map<string, number>();
  private readonly quotaAttemptedAt = new Map<string, number>();
  private readonly otherCapsAt = new Map<string, number>();
  private readonly otherQuotaAt = new Map<string, number>();
  private readonly attemptedAt = new Map<string, number>();
  /** Answered listings of each region, and reads of each pool's quota, in the current run. */
  private readonly listingsInRun = new Map<string, number>();
  private readonly quotaReadsInRun = new Map<string, number>();
  /**
   * Per pool, when the caller passes the model with its reads: what the governor's last listing of
   * the region showed the pool to hold (caps and worker pools, GPUs), the quota its last read of the
   * quota in this run showed, and the GPUs its raises applied since that listing.
   */
  private readonly heldAtListing = new Map<string, number>();
  private readonly quotaAtRead = new Map<string, number | null>();
  private readonly raisedSinceListing = new Map<string, number>();
  /** Writes checked. */
  checks = 0;

  configure(input: InvariantSpecInput): InvariantSpec {
    const parsed = InvariantSpec.safeParse(input);
    if (!parsed.success) {
      throw new Error(`bad invariant spec: ${issuesLine(parsed.error)}`);
    }
    this.spec = parsed.data;
    return this.spec;
  }

  violations(): readonly Violation[] {
    return [...this.found];
  }

  /** Raises that left their pool over quota inside Cloud Run's window (see the header). */
  races(): readonly Violation[] {
    return this.raceList.map((r) => r.violation);
  }

  /** The governor asked for the services of a region (whatever the answer). */
  listAttempt(project: string, region: string): void {
    this.listAttemptedAt.set(regionOf({ project, region }), ++this.tick);
  }

  /** The governor listed the services of a region (the answer was sent). */
  listed(project: string, region: string, model?: FleetModel): void {
    const key = regionOf({ project, region });
    this.listedAt.set(key, ++this.tick);
    this.listingsInRun.set(key, (this.listingsInRun.get(key) ?? 0) + 1);
    if (!model) return;
    // One service of each of the region's pools stands for its pool: its load is the pool's.
    const pools = new Map<string, ServiceKey>();
    for (const s of model.listServices(project)) {
      const pool = s.region === region ? model.poolOf(s) : undefined;
      if (pool && !pools.has(poolOf(pool))) pools.set(poolOf(pool), s);
    }
    for (const [p, s] of pools) {
      const load = this.poolLoad(model, s);
      if (!load) continue;
      this.heldAtListing.set(p, load.used);
      this.raisedSinceListing.set(p, 0);
    }
  }

  /** The governor asked for a pool's quota (whatever the answer). */
  quotaAttempt(pool: {
    project: string;
    region: string;
    accelerator: string;
    zonalRedundancy: boolean;
  }): void {
    this.quotaAttemptedAt.set(poolOf(pool), ++this.tick);
  }

  /** The governor read a pool's quota (the answer was sent). */
  quotaRead(
    pool: {
      project: string;
      region: string;
      accelerator: string;
      zonalRedundancy: boolean;
    },
    model?: FleetModel,
  ): void {
    const key = poolOf(pool);
    if (model) this.quotaAtRead.set(key, model.quotaFor(pool) ?? null);
    this.quotaReadAt.set(key, ++this.tick);
    this.quotaReadsInRun.set(key, (this.quotaReadsInRun.get(key) ?? 0) + 1);
  }

  /** Another actor changed a pool: a service's max or deployment (`caps`), or its quota. */
  otherActed(
    pool: { project: string; region: string; accelerator: string; zonalRedundancy: boolean },
    what: 'caps' | 'quota',
  ): void {
    (what === 'caps' ? this.otherCapsAt : this.otherQuotaAt).set(poolOf(pool), ++this.tick);
  }

  /** The governor sent a write for this service (whatever became of it). */
  writeAttempt(key: ServiceKey): void {
    this.attemptedAt.set(keyOf(key), ++this.tick);
  }

  /**
   * After a governor run: a race of the run whose pool is still over quota and whose raise is
   * still in place (not deploying, its max still what the governor wrote) is an `uncompensated`
   * violation when the governor did not look at the pool again (no listing of the region, or no
   * read of the quota, after the race, for what the race changed), or looked and saw it (the reads
   * were answered) yet sent no write for that service since. A look that failed (an injected
   * error) is not judged: the run says so in its log; nor is a pool another writer changed again
   * after the governor's last look (a new window, no write of the governor's in it); nor a raise
   * whose service that look saw reconciling (rule 3 keeps the governor's hands off it; the next
   * run plans on the pool as it then is), nor one whose service another writer switched to manual
   * scaling since (its max counts for nothing then, and it is no longer the governor's).
   */
  judgeRaces(model: FleetModel): void {
    this.listingsInRun.clear();
    this.quotaReadsInRun.clear();
    this.quotaAtRead.clear();
    this.heldAtListing.clear();
    this.raisedSinceListing.clear();
    for (const race of this.raceList) {
      if (race.judged) continue;
      race.judged = true;
      const v = race.violation;
      const s = model.getService(v.service);
      if (!s || s.deployingUntil !== null || effectiveMax(s) !== v.after) continue;
      // Switched to manual scaling since (by another writer): its max counts for nothing now
      // (a MANUAL service runs its manual count or min, "ignore max instances", poolLoad), so
      // lowering it would free nothing, and it is no longer the governor's to write (rule 3).
      if (s.spec.scalingMode === 'MANUAL') continue;
      const pool = model.poolOf(s);
      if (!pool) continue;
      const after = (m: Map<string, number>, k: string) => (m.get(k) ?? 0) > race.tick;
      // A read of the pool again is a listing of its region and a read of its quota; a race is
      // seen once what it changed (the caps, the quota) has been read again. A read that was
      // tried and not answered (an injected error) leaves the race unjudged.
      const region = regionOf(v.service);
      const listed = after(this.listedAt, region);
      const quotaRead = after(this.quotaReadAt, poolOf(pool));
      const failed =
        (after(this.listAttemptedAt, region) && !listed) ||
        (after(this.quotaAttemptedAt, poolOf(pool)) && !quotaRead);
      const saw = (!race.caps || listed) && (!race.quota || quotaRead);
      // Another writer changed the pool again after the governor's last look: a new window,
      // which no write of the governor's caused; the next run sees it.
      const since = (read: Map<string, number>, key: string) =>
        Math.max(race.tick, read.get(key) ?? 0);
      const stale =
        (this.otherCapsAt.get(poolOf(pool)) ?? 0) > since(this.listedAt, region) ||
        (this.otherQuotaAt.get(poolOf(pool)) ?? 0) > since(this.quotaReadAt, poolOf(pool));
      const tried = after(this.attemptedAt, keyOf(v.service));
      // Seen reconciling on its last read (its own update's operation still running, or a
      // deployment): the governor may not write it (rule 3), so the next run must see to it.
      const handsOff = listed && this.lastSeenReconciling.get(keyOf(v.service)) === true;
      const load = this.poolLoad(model, v.service);
      const over = load !== null && load.quota !== null && load.used + load.reserve > load.quota;
      if (!over || tried || failed || stale || handsOff) continue;
      this.record({
        ...v,
        kind: 'uncompensated',
        pool: load,
        message: `${keyOf(v.service)} raised ${v.before} → ${v.after} inside Cloud Run's window left its pool over quota, and the governor ${saw ? 'saw the pool again' : 'never read the pool again'} without lowering it (now ${load.used} GPUs + reserve ${load.reserve} over the quota ${load.quota})`,
      });
    }
  }

  /** A read of the service answered with this `reconciling`. */
  saw(key: ServiceKey, reconciling: boolean): void {
    this.lastSeenReconciling.set(keyOf(key), reconciling);
  }

  isUnmanaged(key: ServiceKey): boolean {
    return this.spec.unmanaged.some(
      (u) =>
        u.name === key.name &&
        (u.project === undefined || u.project === key.project) &&
        (u.region === undefined || u.region === key.region),
    );
  }

  /** Before a write is applied: a write to an unmanaged or last-seen-reconciling service. */
  beforeWrite(key: ServiceKey, seq: number, at: string, before: number, after: number): void {
    const breaches = writeBreaches({ before, after, managed: !this.isUnmanaged(key) });
    if (breaches.some((b) => b.kind === 'unmanaged')) {
      this.record({
        kind: 'unmanaged',
        seq,
        at,
        service: key,
        before,
        after,
        pool: null,
        message: `write to the unmanaged service ${keyOf(key)} (${before} → ${after})`,
      });
    }
    if (this.lastSeenReconciling.get(keyOf(key)) === true) {
      this.record({
        kind: 'reconciling',
        seq,
        at,
        service: key,
        before,
        after,
        pool: null,
        message: `write to ${keyOf(key)}, which was reconciling when last read (${before} → ${after})`,
      });
    }
  }

  /** After a write landed: the pool's load against its quota. `before`/`after`: effective max. */
  afterWrite(
    model: FleetModel,
    key: ServiceKey,
    seq: number,
    at: string,
    before: number,
    after: number,
  ): Violation | null {
    this.checks += 1;
    const overRead = this.overItsRead(model, key, seq, at, before, after);
    if (overRead) return this.record(overRead);
    const load = this.poolLoad(model, key);
    if (!load || load.quota === null) return null;
    const breached = writeBreaches({
      before,
      after,
      pool: { capsGpus: load.used, budgetGpus: load.quota - load.reserve },
    }).some((b) => b.kind === 'over-quota');
    if (!breached) return null;
    const violation: Violation = {
      kind: 'over-quota',
      seq,
      at,
      service: key,
      before,
      after,
      pool: load,
      message: `${keyOf(key)} raised ${before} → ${after} left its pool at ${load.used} GPUs + reserve ${load.reserve} over the quota ${load.quota}${load.floorsFit ? '' : ' (the floors do not fit: they yield to the quota, so no raise may take the pool over)'}`,
    };
    const raced = this.raced(model, key);
    if (raced.stale) {
      return this.record({
        ...violation,
        message: `${violation.message}; another writer changed the pool after the governor's first read of it in this run, and the governor raised without reading it again`,
      });
    }
    if (raced.caps || raced.quota) {
      this.raceList.push({ violation, tick: ++this.tick, ...raced, judged: false });
      return violation;
    }
    return this.record(violation);
  }

  /**
   * A raise that, with the governor's other raises since its last listing of the region, takes
   * more than the room that listing and the run's read of the quota showed: the raises decided on
   * one read must fit it together, whatever another writer did since (known only when the caller
   * passed the model with its reads).
   */
  private overItsRead(
    model: FleetModel,
    key: ServiceKey,
    seq: number,
    at: string,
    before: number,
    after: number,
  ): Violation | null {
    const s = model.getService(key);
    const pool = s ? model.poolOf(s) : undefined;
    if (!s || !pool) return null;
    const p = poolOf(pool);
    const held = this.heldAtListing.get(p);
    const quota = this.quotaAtRead.get(p);
    if (held === undefined || quota === undefined || quota === null) return null;
    const raised = (this.raisedSinceListing.get(p) ?? 0) + (after - before) * gpusPerInstance(s);
    this.raisedSinceListing.set(p, raised);
    const reserve = this.reserveOf(pool);
    if (after <= before || held + raised + reserve <= quota) return null;
    return {
      kind: 'over-quota',
      seq,
      at,
      service: key,
      before,
      after,
      pool: this.poolLoad(model, key),
      message: `${keyOf(key)} raised ${before} → ${after}: with the governor's raises since its last read of the pool (${raised} GPUs), more than the room that read showed (${held} GPUs held + reserve ${reserve}, quota ${quota})`,
    };
  }

  /**
   * What another actor changed in the written service's pool since the governor last read it;
   * `stale`: it did, and that read was the run's first of what it changed (no read again before
   * the raise, so not Cloud Run's one-round-trip window).
   */
  private raced(
    model: FleetModel,
    key: ServiceKey,
  ): { caps: boolean; quota: boolean; stale: boolean } {
    const s = model.getService(key);
    const pool = s ? model.poolOf(s) : undefined;
    if (!pool) return { caps: false, quota: false, stale: false };
    const p = poolOf(pool);
    const caps = (this.otherCapsAt.get(p) ?? 0) > (this.listedAt.get(regionOf(key)) ?? 0);
    const quota = (this.otherQuotaAt.get(p) ?? 0) > (this.quotaReadAt.get(p) ?? 0);
    const listings = this.listingsInRun.get(regionOf(key)) ?? 0;
    const quotaReads = this.quotaReadsInRun.get(p) ?? 0;
    const stale = (caps && listings < 2) || (quota && quotaReads === 1);
    return { caps, quota, stale };
  }

  /** GPUs the registered spec keeps free in a pool: its own `reserve`, or the spec's. */
  private reserveOf(pool: PoolId): number {
    return this.spec.pools.find((p) => samePool(p, pool))?.reserve ?? this.spec.reserve;
  }

  /** The load of the pool a service belongs to; null for a service without a GPU. */
  poolLoad(model: FleetModel, key: ServiceKey): PoolLoad | null {
    const s = model.getService(key);
    const pool = s ? model.poolOf(s) : undefined;
    if (!s || !pool) return null;
    const quota = model.quotaFor(pool) ?? null;
    const own = this.spec.pools.find((p) => samePool(p, pool));
    const reserve = this.reserveOf(pool);
    let caps = 0;
    let unmanaged = 0;
    let floors = 0;
    for (const m of model.listServices(pool.project)) {
      const held = revisionGpus(model, m, pool);
      caps += held.capped + held.tagged;
      // Nothing the governor writes bounds a tagged revision outside the traffic split.
      unmanaged += held.tagged;
      const p = model.poolOf(m);
      if (!p || !samePool(p, pool)) continue;
      const manual = m.spec.scalingMode === 'MANUAL';
      if (manual || this.isUnmanaged(m)) unmanaged += held.capped;
      else floors += Math.max(1, m.minInstances, m.revisionMinInstances) * gpusPerInstance(m);
    }
    const usage = model.pool(pool);
    // Worker pools and running job tasks hold GPUs the services cannot have.
    const workerGpus = (usage?.workerPoolGpus ?? 0) + (usage?.jobGpus ?? 0);
    const floorsGpus = (own?.floorGpus ?? floors) + unmanaged + workerGpus;
    return {
      used: caps + workerGpus,
      quota,
      reserve,
      floorsFit: quota === null ? true : floorsGpus + reserve <= quota,
    };
  }

  private record(v: Violation): Violation {
    this.found.push(v);
    return v;
  }
}

/**
 * The GPUs of `pool` a service may hold, by Google's rules, from its revisions as the emulator
 * made them (not from what the governor reads, nor by its rules): the judge of rule 1.
 *
 * - The revisions in the traffic split (a share of the traffic) each run at most their own
 *   revision-level max, and together at most the service-level max: "the cap in force is the
 *   lower" of the two for one revision, and the service-level max bounds "the total instance
 *   count for the service in all revisions with specified traffic"
 *   (https://cloud.google.com/run/docs/configuring/max-instances;
 *   ServiceScaling.max_instance_count, google/cloud/run/v2/vendor_settings.proto). A max left
 *   unset is what Cloud Run derives from the regional quota (quota ÷ GPUs per instance, 100
 *   without a quota). Each revision's instances hold its own GPUs, in its own pool.
 * - A revision outside the split, only tagged, is started and bounded by its own max alone:
 *   "Tagged revisions are started, but only count toward the service-level maximum instances if
 *   they are a part of a traffic split" (same page). An untagged revision without traffic runs
 *   nothing.
 * - A manually scaled service runs its manual count (or its min instances), "ignore max
 *   instances" (ScalingMode.MANUAL), divided among the revisions of the split, in its
 *   template's pool; a revision only tagged runs its own min instances, "not counted toward the
 *   service's manual instance total", or without one "at most 1 instance"
 *   (https://cloud.google.com/run/docs/configuring/services/manual-scaling, "Traffic splits for
 *   manual scaling").
 *
 * `capped`: what the service-level settings bound; `tagged`: what nothing the governor writes does.
 */
function revisionGpus(
  model: FleetModel,
  s: ServiceState,
  pool: PoolId,
): { capped: number; tagged: number } {
  // One revision, taking all the traffic (most services): its cap in force.
  if (s.split === null && s.tagged === null && s.latestIndex === s.revisionIndex) {
    const template = model.poolOf(s);
    if (!template || !samePool(template, pool)) return { capped: 0, tagged: 0 };
    const manual = s.spec.scalingMode === 'MANUAL';
    return { capped: (manual ? manualCount(s) : effectiveMax(s)) * gpusPerInstance(s), tagged: 0 };
  }
  const quota = model.quotaFor({ ...pool, region: pool.region });
  const own = (max: number, gpus: number): number =>
    max > 0 ? max : quota === undefined ? 100 : Math.floor(quota / Math.max(1, gpus));
  const inPool = (gpu: { accelerator: string; zonalRedundancy: boolean } | undefined) =>
    gpu !== undefined && samePool({ project: s.project, region: s.region, ...gpu }, pool);
  const revs = serviceRevisions(s);
  const manual = s.spec.scalingMode === 'MANUAL';
  let tagged = 0;
  for (const r of revs)
    if (r.percent === 0 && r.ready && r.tag !== undefined && r.gpu && inPool(r.gpu))
      tagged +=
        (manual ? Math.max(1, r.minInstances) : own(r.maxInstances, r.gpu.count)) * r.gpu.count;
  if (manual) {
    const template = model.poolOf(s);
    const capped = template && samePool(template, pool) ? manualCount(s) * gpusPerInstance(s) : 0;
    return { capped, tagged };
  }
  let gpus = 0;
  let widest = 0;
  for (const r of revs) {
    if (r.percent === 0 || !r.gpu || !inPool(r.gpu)) continue;
    gpus += own(r.maxInstances, r.gpu.count) * r.gpu.count;
    widest = Math.max(widest, r.gpu.count);
  }
  const capped = s.maxInstances > 0 ? Math.min(gpus, s.maxInstances * widest) : gpus;
  return { capped, tagged };
}
