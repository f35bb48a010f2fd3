import type { Policy } from '../core/policy.js';
import { DEFAULT_ACCELERATOR, poolIdOf, poolKey, samePool, type PoolId } from '../core/pool.js';
import { compileRules, type Settings } from '../core/rules.js';
import { demandAt } from '../emulator/demand.js';
import { effectiveMax, manualCount, MINUTE_MS, type FleetModel } from '../emulator/model.js';
import type { SimulationOptions } from './result.js';
import type { SimulationInput } from './scenario.js';

/**
 * What every strategy of one simulation shares, built once (simulate.ts) and passed as one
 * object: the pools and the GPU services in each, the instances each service wants every minute,
 * the oracle's split of every minute, the policy's settings, and the run's cadence.
 */

export interface Member {
  id: string;
  name: string;
  project: string;
  region: string;
  gpus: number;
  labels: Record<string, string>;
  accelerator: string;
  minInstances: number;
  fleetCap: number;
}

export interface PoolInfo {
  id: PoolId;
  key: string;
  quota: number;
  /** Quota less worker pools, running job tasks and manually scaled services. */
  available: number;
  members: Member[];
  /** Quota changes during the run (a quota cut), in minute order: from `minute` on. */
  changes: { minute: number; quota: number; available: number }[];
}

/** A pool's quota and available GPUs at minute `t` of the run (after any quota change). */
export function poolAt(pool: PoolInfo, t: number): { quota: number; available: number } {
  let now = { quota: pool.quota, available: pool.available };
  for (const c of pool.changes) if (c.minute <= t) now = c;
  return now;
}

export interface SimContext {
  input: SimulationInput;
  policy: Policy;
  options: SimulationOptions;
  pools: readonly PoolInfo[];
  /** Instances wanted per service id per minute (what the fleet model will ask for). */
  want: ReadonlyMap<string, Int32Array>;
  /**
   * The same in the warm-up before minute 0 (its first minute first, minute −1 last): what
   * Monitoring shows a governor at its first ticks, and so the oracles that read its evidence.
   */
  wantBefore?: ReadonlyMap<string, Int32Array>;
  /** The oracle's split per service id per minute (instances), also the ideal for the share error. */
  ideal: ReadonlyMap<string, Int32Array>;
  view: PolicyView;
  /** The fleet's start, minute 0. */
  startMs: number;
  minutes: number;
  /** Virtual minutes between governor runs. */
  tick: number;
  /** Minutes before a Monitoring point is visible. */
  lag: number;
}

export const svcId = (s: { project: string; region: string; name: string }): string =>
  `${s.project}/${s.region}/${s.name}`;

/** The pools of a fleet and the GPU services (automatic scaling) in each. */
export function poolsOf(
  model: FleetModel,
  quotaChanges: readonly { minute: number; quota: number }[] = [],
): PoolInfo[] {
  const out: PoolInfo[] = [];
  for (const p of model.pools()) {
    const id = poolIdOf(p);
    const inPool = model.listServices().filter((s) => {
      const k = model.poolOf(s);
      return k !== undefined && samePool(k, id);
    });
    const manual = inPool.filter((s) => s.spec.scalingMode === 'MANUAL');
    const auto = inPool.filter((s) => s.spec.scalingMode !== 'MANUAL');
    if (auto.length === 0) continue;
    const quota = p.quota ?? 0;
    const manualGpus = manual.reduce((a, s) => a + manualCount(s) * (s.spec.gpu?.count ?? 0), 0);
    const held = p.workerPoolGpus + p.jobGpus + manualGpus;
    out.push({
      id,
      key: poolKey(id),
      quota,
      available: Math.max(0, quota - held),
      changes: [...quotaChanges]
        .sort((a, b) => a.minute - b.minute)
        .map((c) => ({ ...c, available: Math.max(0, c.quota - held) })),
      members: auto.map((s) => ({
        id: svcId(s),
        name: s.name,
        project: s.project,
        region: s.region,
        gpus: s.spec.gpu?.count ?? 1,
        labels: s.labels,
        accelerator: s.spec.gpu?.accelerator ?? DEFAULT_ACCELERATOR,
        minInstances: Math.max(s.minInstances, s.revisionMinInstances),
        fleetCap: effectiveMax(s),
      })),
    });
  }
  return out;
}

/**
 * Instances wanted per service per minute (what the fleet model will ask for), `minutes` of them
 * from minute `from` of the run (the start; a negative one is in the warm-up).
 */
export function demandTable(
  input: SimulationInput,
  model: FleetModel,
  minutes: number,
  from = 0,
): Map<string, Int32Array> {
  const ctx = { timezone: input.fleet.timezone, startMs: model.startMs, traces: input.traces };
  const table = new Map<string, Int32Array>();
  for (const s of model.listServices()) {
    const want = new Int32Array(minutes);
    for (let m = 0; m < minutes; m++) {
      want[m] = Math.max(
        0,
        Math.ceil(demandAt(s.demand, model.startMs + (from + m) * MINUTE_MS, ctx) - 1e-9),
      );
    }
    table.set(svcId(s), want);
  }
  return table;
}

/** The policy's settings for a member at a minute, compiled once per minute. */
export class PolicyView {
  private cache = new Map<
    number,
    (s: Parameters<ReturnType<typeof compileRules>>[0]) => Settings
  >();
  constructor(private readonly policy: Policy) {}
  settings(m: Member, atMs: number): Settings {
    // Windows change on whole minutes; compile once per minute.
    let resolve = this.cache.get(atMs);
    if (!resolve) {
      if (this.cache.size > 4) this.cache.clear();
      resolve = compileRules(this.policy, atMs);
      this.cache.set(atMs, resolve);
    }
    return resolve({
      project: m.project,
      region: m.region,
      accelerator: m.accelerator,
      name: m.name,
      labels: m.labels,
    });
  }
  floor(m: Member, s: Settings): number {
    return Math.max(1, m.minInstances, s.min);
  }
}

/** A member's cap in force in the model now (instances). */
export function capOf(model: FleetModel, m: Member): number {
  const s = model.getService(m);
  return s ? effectiveMax(s) : 0;
}
