import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGooglePorts } from '../adapters/index.js';
import { durationMs } from '../core/duration.js';
import type { Policy } from '../core/policy.js';
import { compileRules, type Settings } from '../core/rules.js';
import { demandAt } from '../emulator/demand.js';
import type { Fleet } from '../emulator/fleet.js';
import { startEmulator } from '../emulator/index.js';
import { effectiveMax, FleetModel, MINUTE_MS, type ServiceState } from '../emulator/model.js';
import type { Logger } from '../log.js';
import type { ObservePorts } from '../observe/observe.js';
import type { MaxInstancesUpdate } from '../ports.js';
import { reconcile, RunFailedError } from '../reconcile/reconcile.js';
import { equalSplit, oracleSplit, overCommit, peakProportional } from './baselines.js';
import { createMemoryStateStore } from './memory-store.js';
import { createSimPorts, watchWrites } from './ports.js';
import type { SimulationInput } from './scenario.js';

/**
 * The simulator: the real planner and reconcile run minute by minute on a virtual clock against
 * the emulator's fleet model, beside the baselines, all on the same demand. docs/simulation.md
 * explains the loop, the metrics and the baselines.
 */

export const STRATEGIES = [
  'governor',
  'fleet-caps',
  'equal-split',
  'peak-proportional',
  'over-commit',
  'oracle',
] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const STRATEGY_LABELS: Record<Strategy, string> = {
  governor: 'governor',
  'fleet-caps': "fleet's static caps",
  'equal-split': 'static equal split',
  'peak-proportional': 'static, proportional to peak',
  'over-commit': 'over-commit (all at quota)',
  oracle: 'clairvoyant oracle',
};

export interface SimulationOptions {
  hours: number;
  /** Virtual minutes between governor runs (Cloud Scheduler's cadence). */
  tickMinutes?: number;
  /** Minutes before a Monitoring point is visible. */
  lagMinutes?: number;
  strategies?: readonly Strategy[];
  /** Run the governor through the gRPC emulator and Google's clients instead of in-memory ports. */
  viaEmulator?: boolean;
  /** Called as virtual minutes are done, across all strategies. */
  onProgress?: (done: number, total: number, what: string) => void;
  /** Keeps per-minute series for the report (default true). */
  series?: boolean;
  /** Governor only: sorts its refused GPU-minutes by cause (`causes`; default false). */
  diagnose?: boolean;
}

export interface ServiceMetrics {
  pool: string;
  name: string;
  priority: number;
  weight: number;
  demandGpuMinutes: number;
  refusedGpuMinutes: number;
  /** Of which: above the service's cap. */
  refusedCapGpuMinutes: number;
  /** Of which: the pool had no free GPU. */
  refusedQuotaGpuMinutes: number;
  idleGpuMinutes: number;
  writes: number;
}

export interface PoolMetrics {
  pool: string;
  quota: number;
  available: number;
  services: number;
  demandGpuMinutes: number;
  refusedGpuMinutes: number;
  idleGpuMinutes: number;
  writes: number;
  writesPerServiceHour: number;
  /** Minutes in which the pool's demand exceeded what it has. */
  scarceMinutes: number;
  /** Mean over scarce minutes of the share of the pool served differently from the oracle's weighted split (0–1). */
  shareError: number | null;
  /** Minutes in which a service was refused while a lower-priority one held cap it did not use. */
  priorityInversions: number;
  /** Minutes in which the pool's caps summed above what it has (over-commit by design). */
  capsOverQuotaMinutes: number;
  /** Governor only: broken SPEC rules seen at a write (null for baselines). */
  invariantViolations: number | null;
}

export interface PoolSeries {
  pool: string;
  quota: number;
  available: number;
  services: string[];
  /** Per minute, GPUs wanted by the pool's services. */
  demand: number[];
  /** Per service, per minute: the cap in GPUs (for the oracle: its split). */
  caps: Record<string, number[]>;
  /** Per minute: GPUs refused in the pool. */
  refused: number[];
}

/**
 * Governor only, with `diagnose`: each refused GPU-minute by cause (docs/simulation.md
 * "Why the governor refuses"). Every refusal of a capped strategy is at a cap (the caps sum within
 * the pool), so the question is where the GPUs the refused service could not have were.
 */
export interface RefusalCauses {
  /** Refused while every GPU of the pool was held by a busy instance: no cap could have helped. */
  poolBusy: number;
  /** Refused while the pool's GPUs were all held, some by idle instances (their idle tail). */
  poolIdleHeld: number;
  /** Refused at the cap while the pool had free GPUs, split by the refused service's last plan: */
  free: {
    /** The cap was below the service's own demand estimate (the pool was scarce by the estimates). */
    shortOfDemand: number;
    /** The cap met the estimate but demand rose past it since (lag, lookback, headroom too small). */
    aboveEstimate: number;
  };
  /** Where the free GPUs sat, in the same minutes (GPU-minutes, at most the refusal): */
  freeRoomAt: {
    /** Cap room of others given as burst room in their last plan. */
    burst: number;
    /** Cap room of others kept by the scale-down delay. */
    sticky: number;
    /** Cap room of others within their own demand estimate (headroom, peak). */
    demand: number;
    /** GPUs no cap covered (the caps summed below the pool). */
    uncapped: number;
  };
  /** Ticks whose plan left some service short of its demand estimate (scarce), and all ticks. */
  scarceTicks: number;
  ticks: number;
}

export interface StrategyResult {
  strategy: Strategy;
  label: string;
  pools: PoolMetrics[];
  services: ServiceMetrics[];
  totals: {
    refusedGpuMinutes: number;
    idleGpuMinutes: number;
    writesPerServiceHour: number;
    invariantViolations: number | null;
  };
  /** First few violations, in words. */
  violations: string[];
  /** Governor runs that failed (and why). */
  failedRuns: string[];
  series: PoolSeries[];
  /** Governor only, with `diagnose`. */
  causes?: RefusalCauses;
}

export interface Headline {
  /** (static equal split − governor) ÷ (static equal split − oracle), refused GPU-minutes; null without a gap. */
  gapClosed: number | null;
  /** Governor ÷ static equal split, refused GPU-minutes; null when the split refuses nothing. */
  refusedVsEqualSplit: number | null;
  writesPerServiceHour: number;
  invariantViolations: number;
}

export interface SimulationResult {
  label: string;
  start: string;
  minutes: number;
  tickMinutes: number;
  lagMinutes: number;
  viaEmulator: boolean;
  strategies: StrategyResult[];
  headline: Headline | null;
}

interface Member {
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

interface PoolInfo {
  key: string;
  quota: number;
  /** Quota less worker pools and manually scaled services. */
  available: number;
  members: Member[];
}

const svcId = (s: { project: string; region: string; name: string }): string =>
  `${s.project}/${s.region}/${s.name}`;

/** The pools of a fleet and the GPU services (automatic scaling) in each. */
function poolsOf(model: FleetModel): PoolInfo[] {
  const out: PoolInfo[] = [];
  for (const p of model.pools()) {
    const key = `${p.project}/${p.region}/${p.accelerator}/${p.zonalRedundancy ? 'zonal' : 'no-zonal'}`;
    const inPool = model.listServices().filter((s) => {
      const k = model.poolOf(s);
      return (
        k !== undefined &&
        k.project === p.project &&
        k.region === p.region &&
        k.accelerator === p.accelerator &&
        k.zonalRedundancy === p.zonalRedundancy
      );
    });
    const manual = inPool.filter((s) => s.spec.scalingMode === 'MANUAL');
    const auto = inPool.filter((s) => s.spec.scalingMode !== 'MANUAL');
    if (auto.length === 0) continue;
    const quota = p.quota ?? 0;
    const manualGpus = manual.reduce(
      (a, s) => a + (s.spec.manualInstanceCount ?? 0) * (s.spec.gpu?.count ?? 0),
      0,
    );
    out.push({
      key,
      quota,
      available: Math.max(0, quota - p.workerPoolGpus - p.jobGpus - manualGpus),
      members: auto.map((s) => ({
        id: svcId(s),
        name: s.name,
        project: s.project,
        region: s.region,
        gpus: s.spec.gpu?.count ?? 1,
        labels: s.labels,
        accelerator: s.spec.gpu?.accelerator ?? 'nvidia-l4',
        minInstances: Math.max(s.minInstances, s.revisionMinInstances),
        fleetCap: effectiveMax(s),
      })),
    });
  }
  return out;
}

/** Instances wanted per service per minute (what the fleet model will ask for), from the start. */
function demandTable(
  input: SimulationInput,
  model: FleetModel,
  minutes: number,
): Map<string, Int32Array> {
  const ctx = { timezone: input.fleet.timezone, startMs: model.startMs, traces: input.traces };
  const table = new Map<string, Int32Array>();
  for (const s of model.listServices()) {
    const want = new Int32Array(minutes);
    for (let m = 0; m < minutes; m++) {
      want[m] = Math.max(
        0,
        Math.ceil(demandAt(s.demand, model.startMs + m * MINUTE_MS, ctx) - 1e-9),
      );
    }
    table.set(svcId(s), want);
  }
  return table;
}

function withCaps(fleet: Fleet, caps: ReadonlyMap<string, number> | null): Fleet {
  if (!caps) return fleet;
  return {
    ...fleet,
    projects: fleet.projects.map((p) => ({
      ...p,
      services: p.services.map((s) => {
        const cap = caps.get(`${p.id}/${s.region}/${s.name}`);
        return cap === undefined ? s : { ...s, maxInstances: cap, revisionMaxInstances: undefined };
      }),
    })),
  };
}

const quietLogger: Logger = { log: () => undefined };

class PolicyView {
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

/** Runs every strategy on the same demand. */
export async function simulate(
  input: SimulationInput,
  policy: Policy,
  options: SimulationOptions,
): Promise<SimulationResult> {
  const tick = options.tickMinutes ?? 5;
  const lag = options.lagMinutes ?? 3;
  const minutes = Math.max(1, Math.round(options.hours * 60));
  const strategies = options.strategies ?? STRATEGIES;
  const probe = new FleetModel(input.fleet, { traces: input.traces, historyMinutes: 1 });
  const pools = poolsOf(probe);
  const want = demandTable(input, probe, minutes);
  const view = new PolicyView(policy);
  const total = minutes * strategies.length;
  let done = 0;
  const progress = (what: string) => {
    done += 1;
    if (options.onProgress && (done % 30 === 0 || done === total))
      options.onProgress(done, total, what);
  };

  // The oracle's split each minute, also the ideal for the share error.
  const ideal = new Map<string, Int32Array>();
  for (const pool of pools) {
    for (const m of pool.members) ideal.set(m.id, new Int32Array(minutes));
    for (let t = 0; t < minutes; t++) {
      const at = probe.startMs + t * MINUTE_MS;
      const split = oracleSplit(
        pool.members.map((m) => {
          const s = view.settings(m, at);
          return {
            name: m.id,
            gpus: m.gpus,
            want: want.get(m.id)?.[t] ?? 0,
            priority: s.priority,
            weight: s.weight,
            fixedCap: s.managed ? null : m.fleetCap,
          };
        }),
        pool.available,
      );
      for (const m of pool.members) (ideal.get(m.id) as Int32Array)[t] = split.get(m.id) ?? 0;
    }
  }

  const results: StrategyResult[] = [];
  for (const strategy of strategies) {
    const result =
      strategy === 'oracle'
        ? runOracle(pools, want, ideal, minutes, view, probe.startMs, options.series ?? true, () =>
            progress(strategy),
          )
        : await runModel(strategy, input, policy, pools, want, ideal, view, {
            minutes,
            tick,
            lag,
            options,
            progress: () => progress(strategy),
          });
    results.push(result);
  }
  return {
    label: input.label,
    start: new Date(probe.startMs).toISOString(),
    minutes,
    tickMinutes: tick,
    lagMinutes: lag,
    viaEmulator: options.viaEmulator ?? false,
    strategies: results,
    headline: headline(results),
  };
}

export function headline(results: readonly StrategyResult[]): Headline | null {
  const get = (s: Strategy) => results.find((r) => r.strategy === s);
  const gov = get('governor');
  const equal = get('equal-split');
  const oracle = get('oracle');
  if (!gov || !equal || !oracle) return null;
  const g = gov.totals.refusedGpuMinutes;
  const e = equal.totals.refusedGpuMinutes;
  const o = oracle.totals.refusedGpuMinutes;
  return {
    gapClosed: e - o > 0 ? (e - g) / (e - o) : null,
    refusedVsEqualSplit: e > 0 ? g / e : null,
    writesPerServiceHour: gov.totals.writesPerServiceHour,
    invariantViolations: gov.totals.invariantViolations ?? 0,
  };
}

interface Accumulator {
  services: Map<string, ServiceMetrics>;
  pools: Map<string, PoolMetrics & { shareErrSum: number }>;
  series: PoolSeries[];
}

function newAccumulator(
  pools: readonly PoolInfo[],
  view: PolicyView,
  startMs: number,
  minutes: number,
  keepSeries: boolean,
): Accumulator {
  const services = new Map<string, ServiceMetrics>();
  const poolMetrics = new Map<string, PoolMetrics & { shareErrSum: number }>();
  const series: PoolSeries[] = [];
  for (const p of pools) {
    for (const m of p.members) {
      const s = view.settings(m, startMs);
      services.set(m.id, {
        pool: p.key,
        name: m.name,
        priority: s.priority,
        weight: s.weight,
        demandGpuMinutes: 0,
        refusedGpuMinutes: 0,
        refusedCapGpuMinutes: 0,
        refusedQuotaGpuMinutes: 0,
        idleGpuMinutes: 0,
        writes: 0,
      });
    }
    poolMetrics.set(p.key, {
      pool: p.key,
      quota: p.quota,
      available: p.available,
      services: p.members.length,
      demandGpuMinutes: 0,
      refusedGpuMinutes: 0,
      idleGpuMinutes: 0,
      writes: 0,
      writesPerServiceHour: 0,
      scarceMinutes: 0,
      shareError: null,
      priorityInversions: 0,
      capsOverQuotaMinutes: 0,
      invariantViolations: null,
      shareErrSum: 0,
    });
    if (keepSeries) {
      series.push({
        pool: p.key,
        quota: p.quota,
        available: p.available,
        services: p.members.map((m) => m.name),
        demand: new Array<number>(minutes).fill(0),
        caps: Object.fromEntries(
          p.members.map((m) => [m.name, new Array<number>(minutes).fill(0)]),
        ),
        refused: new Array<number>(minutes).fill(0),
      });
    }
  }
  return { services, pools: poolMetrics, series };
}

interface MinuteRow {
  member: Member;
  want: number;
  /** GPUs: cap, served, refused, idle. */
  cap: number;
  served: number;
  refused: number;
  refusedCap: number;
  idle: number;
}

/** Adds one minute of one pool to the accumulator. */
function account(
  acc: Accumulator,
  pool: PoolInfo,
  t: number,
  rows: readonly MinuteRow[],
  ideal: ReadonlyMap<string, Int32Array>,
  view: PolicyView,
  atMs: number,
): void {
  const pm = acc.pools.get(pool.key);
  if (!pm) return;
  const series = acc.series.find((s) => s.pool === pool.key);
  let demand = 0;
  let refused = 0;
  let caps = 0;
  for (const r of rows) {
    const sm = acc.services.get(r.member.id);
    if (sm) {
      sm.demandGpuMinutes += r.want * r.member.gpus;
      sm.refusedGpuMinutes += r.refused;
      sm.refusedCapGpuMinutes += r.refusedCap;
      sm.refusedQuotaGpuMinutes += r.refused - r.refusedCap;
      sm.idleGpuMinutes += r.idle;
    }
    demand += r.want * r.member.gpus;
    refused += r.refused;
    caps += r.cap;
    pm.idleGpuMinutes += r.idle;
    if (series) {
      const c = series.caps[r.member.name];
      if (c) c[t] = r.cap;
    }
  }
  pm.demandGpuMinutes += demand;
  pm.refusedGpuMinutes += refused;
  if (caps > pool.available) pm.capsOverQuotaMinutes += 1;
  if (series) {
    series.demand[t] = demand;
    series.refused[t] = refused;
  }
  if (demand > pool.available && pool.available > 0) {
    pm.scarceMinutes += 1;
    let diff = 0;
    for (const r of rows)
      diff += Math.abs(r.served - (ideal.get(r.member.id)?.[t] ?? 0) * r.member.gpus);
    pm.shareErrSum += diff / (2 * pool.available);
  }
  // A priority inversion: someone refused while a lower-priority service keeps cap it does not
  // use and the refused GPUs could only have come from others' caps.
  const refusedRows = rows.filter((r) => r.refused > 0);
  if (refusedRows.length > 0) {
    const settings = new Map(rows.map((r) => [r.member.id, view.settings(r.member, atMs)]));
    const inverted = refusedRows.some((a) => {
      const pa = settings.get(a.member.id)?.priority ?? 0;
      if (caps + a.refused <= pool.available) return false;
      return rows.some((b) => {
        const sb = settings.get(b.member.id);
        if (!sb || sb.priority >= pa) return false;
        const floorGpus = view.floor(b.member, sb) * b.member.gpus;
        return b.cap > Math.max(floorGpus, b.want * b.member.gpus);
      });
    });
    if (inverted) pm.priorityInversions += 1;
  }
}

function finish(
  strategy: Strategy,
  acc: Accumulator,
  minutes: number,
  violations: string[],
  violationCount: number | null,
  failedRuns: string[],
): StrategyResult {
  const hours = minutes / 60;
  const pools: PoolMetrics[] = [...acc.pools.values()].map(({ shareErrSum, ...p }) => {
    const writes = [...acc.services.values()]
      .filter((s) => s.pool === p.pool)
      .reduce((a, s) => a + s.writes, 0);
    return {
      ...p,
      writes,
      writesPerServiceHour: writes / Math.max(1, p.services) / hours,
      shareError: p.scarceMinutes > 0 ? shareErrSum / p.scarceMinutes : null,
      invariantViolations: violationCount === null ? null : violationCount,
    };
  });
  const services = [...acc.services.values()];
  const writes = services.reduce((a, s) => a + s.writes, 0);
  return {
    strategy,
    label: STRATEGY_LABELS[strategy],
    pools,
    services,
    totals: {
      refusedGpuMinutes: pools.reduce((a, p) => a + p.refusedGpuMinutes, 0),
      idleGpuMinutes: pools.reduce((a, p) => a + p.idleGpuMinutes, 0),
      writesPerServiceHour: writes / Math.max(1, services.length) / hours,
      invariantViolations: violationCount,
    },
    violations: violations.slice(0, 20),
    failedRuns: failedRuns.slice(0, 20),
    series: acc.series,
  };
}

function runOracle(
  pools: readonly PoolInfo[],
  want: ReadonlyMap<string, Int32Array>,
  ideal: ReadonlyMap<string, Int32Array>,
  minutes: number,
  view: PolicyView,
  startMs: number,
  keepSeries: boolean,
  progress: () => void,
): StrategyResult {
  const acc = newAccumulator(pools, view, startMs, minutes, keepSeries);
  const last = new Map<string, number>();
  for (let t = 0; t < minutes; t++) {
    const at = startMs + t * MINUTE_MS;
    for (const pool of pools) {
      const rows: MinuteRow[] = pool.members.map((member) => {
        const w = want.get(member.id)?.[t] ?? 0;
        const a = ideal.get(member.id)?.[t] ?? 0;
        const cap = Math.max(1, a);
        if (last.get(member.id) !== cap) {
          if (t > 0) {
            const sm = acc.services.get(member.id);
            if (sm) sm.writes += 1;
          }
          last.set(member.id, cap);
        }
        const refused = Math.max(0, w - a) * member.gpus;
        return {
          member,
          want: w,
          cap: a * member.gpus,
          served: Math.min(w, a) * member.gpus,
          refused,
          refusedCap: refused,
          idle: 0,
        };
      });
      account(acc, pool, t, rows, ideal, view, at);
    }
    progress();
  }
  return finish('oracle', acc, minutes, [], null, []);
}

interface RunContext {
  minutes: number;
  tick: number;
  lag: number;
  options: SimulationOptions;
  progress: () => void;
}

/** Static caps of a baseline, per service id; null: the fleet's own. */
function baselineCaps(
  strategy: Strategy,
  pools: readonly PoolInfo[],
  want: ReadonlyMap<string, Int32Array>,
): Map<string, number> | null {
  if (strategy === 'fleet-caps' || strategy === 'governor') return null;
  const caps = new Map<string, number>();
  for (const pool of pools) {
    const members = pool.members.map((m) => ({ name: m.id, gpus: m.gpus }));
    const split =
      strategy === 'equal-split'
        ? equalSplit(members, pool.available)
        : strategy === 'peak-proportional'
          ? peakProportional(
              pool.members.map((m) => ({
                name: m.id,
                gpus: m.gpus,
                peakGpus: Math.max(0, ...(want.get(m.id) ?? [])) * m.gpus,
              })),
              pool.available,
            )
          : overCommit(members, pool.quota);
    for (const [k, v] of split) caps.set(k, v);
  }
  return caps;
}

async function runModel(
  strategy: Strategy,
  input: SimulationInput,
  policy: Policy,
  pools: readonly PoolInfo[],
  want: ReadonlyMap<string, Int32Array>,
  ideal: ReadonlyMap<string, Int32Array>,
  view: PolicyView,
  rc: RunContext,
): Promise<StrategyResult> {
  const fleet = withCaps(input.fleet, baselineCaps(strategy, pools, want));
  const historyMinutes =
    fleet.warmupMinutes + rc.minutes + durationMs(policy.defaults.lookback) / MINUTE_MS + 10;
  const governed = strategy === 'governor';
  const via = governed && (rc.options.viaEmulator ?? false);

  let model: FleetModel;
  let ports: ObservePorts | null = null;
  let advance: (toMs: number) => Promise<void>;
  let now: () => Promise<number>;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    if (via) {
      // The same fleet through the gRPC emulator: demand series go to files the emulator reads.
      const dir = await mkdtemp(join(tmpdir(), 'governor-sim-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const files = new Map<string, string>();
      let i = 0;
      for (const [key, series] of input.traces) {
        const file = join(dir, `demand-${i++}.csv`);
        await writeFile(file, `value\n${series.map((v) => String(v)).join('\n')}\n`);
        files.set(key, file);
      }
      const onDisk: Fleet = {
        ...fleet,
        projects: fleet.projects.map((p) => ({
          ...p,
          services: p.services.map((s) =>
            s.demand.trace
              ? {
                  ...s,
                  demand: {
                    trace: {
                      ...s.demand.trace,
                      file: files.get(s.demand.trace.file) ?? s.demand.trace.file,
                    },
                  },
                }
              : s,
          ),
        })),
      };
      const emulator = await startEmulator({
        fleet: onDisk,
        speed: 'manual',
        operationDelayMs: 0,
        metricsLagMs: rc.lag * MINUTE_MS,
        historyMinutes,
        pageSize: 100,
      });
      cleanups.push(() => emulator.stop());
      const google = createGooglePorts({ ...process.env, ...emulator.env });
      cleanups.unshift(() => google.close());
      model = emulator.model;
      ports = google;
      now = async () => emulator.now().getTime();
      advance = async (toMs) => {
        const by = toMs - emulator.now().getTime();
        if (by > 0) emulator.advance(by);
      };
    } else {
      model = new FleetModel(fleet, { traces: input.traces, historyMinutes });
      if (governed) ports = createSimPorts(model, { lagMs: rc.lag * MINUTE_MS });
      now = async () => model.now;
      advance = async (toMs) => model.advanceTo(toMs);
    }

    const acc = newAccumulator(pools, view, model.startMs, rc.minutes, rc.options.series ?? true);
    const violations: string[] = [];
    let violationCount = 0;
    const failedRuns: string[] = [];
    const byId = new Map(
      pools.flatMap((p) => p.members.map((m) => [m.id, { pool: p, member: m }] as const)),
    );
    const store = createMemoryStateStore();

    const checkWrite = (update: MaxInstancesUpdate): void => {
      const id = svcId(update);
      const sm = acc.services.get(id);
      if (sm) sm.writes += 1;
      const found = byId.get(id);
      if (!found) return;
      const { pool, member } = found;
      const at = model.now;
      const s = view.settings(member, at);
      const problem = (text: string) => {
        violationCount += 1;
        if (violations.length < 20)
          violations.push(`${new Date(at).toISOString()} ${member.name}: ${text}`);
      };
      const floor = view.floor(member, s);
      const caps = pool.members.reduce((a, m) => a + capOf(model, m) * m.gpus, 0);
      const floors = pool.members.reduce((a, m) => {
        const ms = view.settings(m, at);
        return a + (ms.managed ? view.floor(m, ms) : capOf(model, m)) * m.gpus;
      }, 0);
      for (const text of writeProblems({
        managed: s.managed,
        before: capBefore.get(id) ?? update.maxInstances,
        after: update.maxInstances,
        floor,
        ceiling: Math.min(s.max ?? Infinity, Math.floor(pool.quota / member.gpus)),
        capsGpus: caps,
        floorsGpus: floors,
        budgetGpus: pool.available - reserveOf(policy, member),
      })) {
        problem(text);
      }
      capBefore.set(id, update.maxInstances);
    };
    const capBefore = new Map<string, number>();
    const watched: ObservePorts | null = ports
      ? { ...ports, run: watchWrites(ports.run, checkWrite) }
      : null;
    if (watched) {
      // Writes made through the ports must know the cap before them: remember it as observed.
      for (const p of pools) for (const m of p.members) capBefore.set(m.id, capOf(model, m));
    }

    const diag = governed && (rc.options.diagnose ?? false) ? newDiagnosis() : null;
    for (let t = 0; t < rc.minutes; t++) {
      const at = model.startMs + t * MINUTE_MS;
      if (t > 0) await advance(at);
      for (const pool of pools) {
        const rows: MinuteRow[] = pool.members.map((member) => {
          const s = model.getService(member) as ServiceState;
          const row = model.history(s).at(-1);
          const g = member.gpus;
          const cap = capOf(model, member) * g;
          const w = want.get(member.id)?.[t] ?? 0;
          if (!row || row.at !== at)
            return { member, want: w, cap, served: 0, refused: w * g, refusedCap: 0, idle: 0 };
          return {
            member,
            want: w,
            cap,
            served: row.active * g,
            refused: (row.refusedCap + row.refusedQuota) * g,
            refusedCap: row.refusedCap * g,
            idle: row.idle * g,
          };
        });
        account(acc, pool, t, rows, ideal, view, at);
        if (diag) diagnoseMinute(diag, pool, rows);
      }
      if (watched && t % rc.tick === 0) {
        for (const p of pools) for (const m of p.members) capBefore.set(m.id, capOf(model, m));
        try {
          const report = await reconcile(
            policy,
            {
              ports: watched,
              store,
              sink: null,
              log: quietLogger,
              now,
              wallClock: () => model.now,
              sleep: async () => undefined,
            },
            { runId: `sim-${t}`, deadlineMs: 240_000 },
          );
          if (diag && report.plan) notePlan(diag, report.plan.services);
        } catch (e) {
          if (!(e instanceof RunFailedError)) throw e;
          failedRuns.push(`${new Date(at).toISOString()}: ${e.message}`);
        }
      }
      rc.progress();
    }
    const result = finish(
      strategy,
      acc,
      rc.minutes,
      violations,
      governed ? violationCount : null,
      failedRuns,
    );
    if (diag) result.causes = diag.causes;
    return result;
  } finally {
    for (const c of cleanups) await c();
  }
}

interface PlannedCap {
  /** The plan left it below its own demand estimate. */
  short: boolean;
  /** Instances given as burst room, and kept by the scale-down delay. */
  burst: number;
  sticky: number;
}

interface Diagnosis {
  causes: RefusalCauses;
  planned: Map<string, PlannedCap>;
}

function newDiagnosis(): Diagnosis {
  return {
    causes: {
      poolBusy: 0,
      poolIdleHeld: 0,
      free: { shortOfDemand: 0, aboveEstimate: 0 },
      freeRoomAt: { burst: 0, sticky: 0, demand: 0, uncapped: 0 },
      scarceTicks: 0,
      ticks: 0,
    },
    planned: new Map(),
  };
}

/** Reads what the last plan meant for each service from its reason (instrumentation only). */
function notePlan(
  d: Diagnosis,
  services: readonly {
    project: string;
    region: string;
    name: string;
    managed: boolean;
    reason: string;
  }[],
): void {
  let scarce = false;
  for (const s of services) {
    if (!s.managed) continue;
    const short = s.reason.includes('short of demand');
    scarce ||= short;
    d.planned.set(svcId(s), {
      short,
      burst: Number(/\+(\d+) burst room/.exec(s.reason)?.[1] ?? 0),
      sticky: Number(/keeps (\d+) above its share/.exec(s.reason)?.[1] ?? 0),
    });
  }
  d.causes.ticks += 1;
  if (scarce) d.causes.scarceTicks += 1;
}

/** One minute of one pool: where the refused GPUs went. */
function diagnoseMinute(d: Diagnosis, pool: PoolInfo, rows: readonly MinuteRow[]): void {
  const refused = rows.reduce((a, r) => a + r.refused, 0);
  if (refused <= 0) return;
  const held = rows.reduce((a, r) => a + r.served + r.idle, 0);
  const idle = rows.reduce((a, r) => a + r.idle, 0);
  const free = Math.max(0, pool.available - held);
  const mis = Math.min(refused, free);
  const full = refused - mis;
  const c = d.causes;
  c.poolIdleHeld += Math.min(full, idle);
  c.poolBusy += full - Math.min(full, idle);
  if (mis <= 0) return;
  let left = mis;
  for (const r of rows) {
    if (r.refused <= 0 || left <= 0) continue;
    const take = Math.min(r.refused, left);
    left -= take;
    if (d.planned.get(r.member.id)?.short) c.free.shortOfDemand += take;
    else c.free.aboveEstimate += take;
  }
  const room = { burst: 0, sticky: 0, demand: 0, uncapped: 0 };
  room.uncapped = Math.max(0, pool.available - rows.reduce((a, r) => a + r.cap, 0));
  for (const r of rows) {
    const spare = Math.max(0, r.cap - r.served - r.idle);
    if (spare <= 0) continue;
    const p = d.planned.get(r.member.id);
    const burst = Math.min(spare, (p?.burst ?? 0) * r.member.gpus);
    const sticky = Math.min(spare - burst, (p?.sticky ?? 0) * r.member.gpus);
    room.burst += burst;
    room.sticky += sticky;
    room.demand += spare - burst - sticky;
  }
  const total = room.burst + room.sticky + room.demand + room.uncapped;
  if (total <= 0) return;
  c.freeRoomAt.burst += (mis * room.burst) / total;
  c.freeRoomAt.sticky += (mis * room.sticky) / total;
  c.freeRoomAt.demand += (mis * room.demand) / total;
  c.freeRoomAt.uncapped += (mis * room.uncapped) / total;
}

function capOf(model: FleetModel, m: Member): number {
  const s = model.getService(m);
  return s ? effectiveMax(s) : 0;
}

function reserveOf(policy: Policy, m: Member): number {
  const pool = policy.pools.find(
    (p) =>
      p.region === m.region &&
      p.accelerator === m.accelerator &&
      (p.project === undefined || p.project === m.project),
  );
  return pool?.reserve ?? policy.reserve;
}

export interface WriteFacts {
  /** A policy rule governs the service. */
  managed: boolean;
  before: number;
  after: number;
  floor: number;
  ceiling: number;
  /** The pool's caps (GPUs) right after the write. */
  capsGpus: number;
  /** The pool's floors (GPUs), unmanaged services at their caps. */
  floorsGpus: number;
  budgetGpus: number;
}

/** The SPEC rules one write breaks, in words (empty: none). */
export function writeProblems(w: WriteFacts): string[] {
  const out: string[] = [];
  if (!w.managed) out.push('an unmanaged service was written (rule 3)');
  const lo = Math.min(w.floor, w.ceiling);
  const hi = Math.max(w.floor, w.ceiling);
  if (w.after < lo || w.after > hi)
    out.push(`written ${w.after}, outside floor ${w.floor} / ceiling ${w.ceiling} (rule 2)`);
  if (w.after > w.before && w.capsGpus > w.budgetGpus && w.floorsGpus <= w.budgetGpus) {
    out.push(
      `raised ${w.before} → ${w.after} leaving the pool's caps at ${w.capsGpus} GPUs, above the budget ${w.budgetGpus} (rule 1)`,
    );
  }
  return out;
}
