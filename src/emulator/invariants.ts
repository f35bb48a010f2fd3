import { z } from 'zod';
import { writeBreaches } from '../core/invariants.js';
import { samePool } from '../core/pool.js';
import { effectiveMax, gpusPerInstance, type FleetModel, type ServiceKey } from './model.js';

/**
 * The invariant monitor: after every write (UpdateService in the emulator, `updateMaxInstances` in
 * the in-memory chaos runs) it checks the promises of rules 1 and 3 (docs/rules.md) for the written pool and
 * records every violation with the write that caused it:
 *
 * - `over-quota`: the write raised a cap and left the pool's caps (every service's effective max x
 *   GPUs, a manually scaled one at its instance count) + worker pools + reserve above the quota,
 *   while the governed floors fit (floors + unmanaged caps + worker pools + reserve ≤ quota). A
 *   decrease is never a violation: an over-budget pool may only go down.
 * - `unmanaged`: a write to a service the registered policy leaves unmanaged.
 * - `reconciling`: a write to a service that was reconciling when it was last read.
 *
 * What is governed, the reserve and the floors come from a spec the test registers
 * ({@link InvariantSpec}); without one, every service is governed, the reserve is 0 and a
 * service's floor is max(1, its min instances). Whether a write breaks a rule is decided by
 * core/invariants.ts, as for the simulator's write checks; this monitor gathers the pool's facts
 * from the model and keeps what it finds.
 */

export const InvariantPoolSpec = z.strictObject({
  project: z.string().min(1),
  region: z.string().min(1),
  accelerator: z.string().min(1).default('nvidia-l4'),
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

export type ViolationKind = 'over-quota' | 'unmanaged' | 'reconciling';

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

export interface PoolLoad {
  /** Caps of every service + worker pool GPUs. */
  readonly used: number;
  readonly quota: number | null;
  readonly reserve: number;
  readonly floorsFit: boolean;
}

/** A pool's load with what its floors would take (floors, unmanaged caps, worker pools). */
interface PoolTotals extends PoolLoad {
  readonly floorsGpus: number;
}

const keyOf = (k: ServiceKey): string => `${k.project}/${k.region}/${k.name}`;

export class InvariantMonitor {
  private spec: InvariantSpec = InvariantSpec.parse({});
  private readonly found: Violation[] = [];
  private readonly lastSeenReconciling = new Map<string, boolean>();
  /** Writes checked. */
  checks = 0;

  configure(input: InvariantSpecInput): InvariantSpec {
    const parsed = InvariantSpec.safeParse(input);
    if (!parsed.success) {
      throw new Error(
        `bad invariant spec: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
      );
    }
    this.spec = parsed.data;
    return this.spec;
  }

  violations(): readonly Violation[] {
    return [...this.found];
  }

  reset(): void {
    this.found.length = 0;
    this.checks = 0;
    this.lastSeenReconciling.clear();
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
    const totals = this.poolTotals(model, key);
    if (!totals || totals.quota === null) return null;
    const { used, quota, reserve, floorsFit, floorsGpus } = totals;
    const breached = writeBreaches({
      before,
      after,
      pool: { capsGpus: used, floorsGpus, budgetGpus: quota - reserve },
    }).some((b) => b.kind === 'over-quota');
    if (!breached) return null;
    const load: PoolLoad = { used, quota, reserve, floorsFit };
    return this.record({
      kind: 'over-quota',
      seq,
      at,
      service: key,
      before,
      after,
      pool: load,
      message: `${keyOf(key)} raised ${before} → ${after} left its pool at ${load.used} GPUs + reserve ${load.reserve} over the quota ${load.quota}`,
    });
  }

  /** The load of the pool a service belongs to; null for a service without a GPU. */
  poolLoad(model: FleetModel, key: ServiceKey): PoolLoad | null {
    const totals = this.poolTotals(model, key);
    if (!totals) return null;
    const { used, quota, reserve, floorsFit } = totals;
    return { used, quota, reserve, floorsFit };
  }

  private poolTotals(model: FleetModel, key: ServiceKey): PoolTotals | null {
    const s = model.getService(key);
    const pool = s ? model.poolOf(s) : undefined;
    if (!s || !pool) return null;
    const quota = model.quotaFor(pool) ?? null;
    const own = this.spec.pools.find((p) => samePool(p, pool));
    const reserve = own?.reserve ?? this.spec.reserve;
    let caps = 0;
    let unmanaged = 0;
    let floors = 0;
    for (const m of model.listServices()) {
      const p = model.poolOf(m);
      if (!p || !samePool(p, pool)) continue;
      const gpus = gpusPerInstance(m);
      const manual = m.spec.scalingMode === 'MANUAL';
      const cap = (manual ? (m.spec.manualInstanceCount ?? 0) : effectiveMax(m)) * gpus;
      caps += cap;
      if (manual || this.isUnmanaged(m)) unmanaged += cap;
      else floors += Math.max(1, m.minInstances, m.revisionMinInstances) * gpus;
    }
    const usage = model.pools().find((p) => samePool(p, pool));
    // Worker pools and running job tasks hold GPUs the services cannot have.
    const workerGpus = (usage?.workerPoolGpus ?? 0) + (usage?.jobGpus ?? 0);
    const floorsGpus = (own?.floorGpus ?? floors) + unmanaged + workerGpus;
    return {
      used: caps + workerGpus,
      quota,
      reserve,
      floorsFit: quota === null ? true : floorsGpus + reserve <= quota,
      floorsGpus,
    };
  }

  private record(v: Violation): Violation {
    this.found.push(v);
    return v;
  }
}
