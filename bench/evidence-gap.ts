import { fileURLToPath } from 'node:url';
import { createMemoryStateStore } from '../src/adapters/memory/state-store.js';
import { wantedInstances } from '../src/core/evidence.js';
import { parsePolicy, type Policy, type PolicyInput } from '../src/core/policy.js';
import { concurrencyOf, FleetModel, MINUTE_MS, type MinuteSample } from '../src/emulator/model.js';
import { createSimPorts } from '../src/emulator/ports.js';
import type { Logger } from '../src/log.js';
import type { MetricSeries, MonitoringPort, ObservePorts, TimeWindow } from '../src/ports/index.js';
import { reconcile } from '../src/reconcile/reconcile.js';
import {
  demandTable,
  PolicyView,
  poolAt,
  poolsOf,
  type PoolInfo,
} from '../src/simulate/context.js';
import { buildScenario, parseScenario, type SimulationInput } from '../src/simulate/scenario.js';
import {
  BENCH_SEEDS,
  benchPolicy,
  mixedFleetScenario,
  noisyNeighbourPolicy,
  noisyNeighbourScenario,
  quotaCutScenario,
  TRACE_DIR,
  tracesAloneScenario,
} from '../src/simulate/scenarios.js';
import { gapClosed, simulate } from '../src/simulate/simulate.js';
import { listEnv, meanWorst } from './quality.js';
import { greedyFill, type GreedySlot } from '../src/simulate/strategies.js';
import { errorMessage } from '../src/core/errors.js';

/**
 * What splitting on recent minutes has that the rule lacks (docs/decision-quality.md, the section
 * of that name): the mixed fleet at 0.6× and 0.8× over the bench seeds, with one difference between
 * the governor and the best at the tick without hindsight (`evidence-oracle`) changed at a time.
 * An analysis beside the bench, not part of it, and nothing in the product depends on it. Its
 * variants change:
 *
 * - the evidence the real governor reads: a Monitoring port that shows what the simulator knows
 *   and Cloud Run does not (the true demand of a minute, in whole or in part);
 * - the policy: the priority-10 service's headroom, the lookback (for analysis only: the bench's
 *   policy is not changed);
 * - the split: the evidence-oracle's greedy played in the fleet model (so that it pays start-up
 *   and the idle tail as the governor does) on true or observed evidence, over 10 flat minutes or
 *   30 minutes with a 10-minute half-life.
 *
 *   npm run build && node dist/bench/evidence-gap.js
 *   VARIANTS=governor,h0 SEEDS=7,11 FACTORS=0.6 SCENARIO=traces node dist/bench/evidence-gap.js
 *   SCENARIO=noisy KINDS=observed,true node dist/bench/evidence-gap.js
 *
 * Gap closed = (equal split − variant) ÷ (equal split − best at the tick), in refused
 * GPU-minutes, as the bench reports it; printed as mean (worst seed).
 */

const TICK = 5;
const LAG = 3;
const HOURS = 24;
const quiet: Logger = { log: () => undefined };

/**
 * What the governor's Monitoring shows:
 * - `observed`: as the simulator's Monitoring serves it (in use = active + idle; 429s as Cloud
 *   Run's pending queue lets them out);
 * - `busy`: in use = active instances only (the instance count's `state` label), 429s as observed;
 * - `true`: in use = the busy instances, and every instance wanted above them shown as 429s in the
 *   same minute, so that in use × (served + refused) ÷ served is the minute's true demand;
 * - `true-with-idle`: the same, in use counting idle instances;
 * - `true-where-429` / `true-where-no-429`: observed, except the minutes with (without) a 429,
 *   which show their true demand;
 * - `saturation`: observed, and a minute that wanted more than it held and showed no 429 shows one
 *   instance's worth of 429s (wanted = held + 1: that it was short, not by how much);
 *   `saturation-2`: the same only when the minute before was short too;
 * - `full-2`: what a rule on `container/max_request_concurrencies` could read: a minute with no
 *   429 in which every active instance reached its concurrency (the model's `peakConcurrency`),
 *   as did the minute before, shows one instance's worth of 429s; `full-4-flat`: four minutes
 *   running, in use unchanged across them; `full-2-at-cap`: `full-2` in minutes at the cap in
 *   force then (held ≥ the minute's cap);
 * - `util-target` / `util-full`: observed, and a minute's GPU utilization taken as instances
 *   wanted: ceil(in use × utilization ÷ 0.8), or in use + 1 at full utilization (the fleet model's
 *   utilization is demand ÷ instances held, capped at 1);
 * - `no-util`: observed without GPU utilization; `true-no-util`: `true` without it;
 * - `queue-growth`: observed, and the growth of Cloud Run's pending queue over the minute counted
 *   with its 429s (arrivals = served + failed + the queue's growth): what a rise of the requests'
 *   wait, read from `request_latencies` by Little's law, could show at best.
 */
export const EVIDENCE_KINDS = [
  'observed',
  'busy',
  'true',
  'true-with-idle',
  'true-where-429',
  'true-where-no-429',
  'saturation',
  'saturation-2',
  'full-2',
  'full-4-flat',
  'full-2-at-cap',
  'util-target',
  'util-full',
  'no-util',
  'true-no-util',
  'queue-growth',
  'queue-growth-2',
] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

/** Requests an instance serves a minute in the altered series (any constant does). */
const R = 100;

const wantOf = (r: MinuteSample) => Math.max(0, Math.ceil(r.demand - 1e-9));
const heldOf = (r: MinuteSample) => r.active + r.idle;

/** One minute as `kind` shows it: in use, requests served and refused (429). */
export function shownMinute(
  r: MinuteSample,
  kind: EvidenceKind,
  before: readonly MinuteSample[] = [],
  concurrency = 4,
): { inUse: number; served: number; refused: number } {
  const observed = { inUse: heldOf(r), served: r.requests.served, refused: r.requests.refused };
  const exact = (inUse: number) => {
    const base = Math.max(1, inUse);
    return { inUse, served: base * R, refused: Math.max(0, wantOf(r) - base) * R };
  };
  switch (kind) {
    case 'observed':
      return observed;
    case 'busy':
      return { ...observed, inUse: r.active };
    case 'true':
    case 'true-no-util':
      return exact(Math.max(1, r.active));
    case 'true-with-idle':
      return exact(heldOf(r));
    case 'true-where-429':
      return r.requests.refused > 0 ? exact(heldOf(r)) : observed;
    case 'true-where-no-429':
      return r.requests.refused === 0 ? exact(heldOf(r)) : observed;
    case 'no-util':
      return observed;
    case 'util-target':
    case 'util-full': {
      // A minute's GPU utilization as evidence of instances wanted: ceil(in use × utilization ÷
      // 0.8) (the policy's default target), or in use + 1 at full utilization.
      const held = heldOf(r);
      const w =
        kind === 'util-target'
          ? Math.ceil((held * r.utilization) / 0.8 - 1e-9)
          : r.utilization >= 0.999
            ? held + 1
            : held;
      const shown = wantedInstances(held, r.requests.served, r.requests.refused);
      return w > shown && held > 0
        ? { inUse: held, served: held * R, refused: (w - held) * R }
        : observed;
    }
    case 'saturation-2':
    case 'full-2':
    case 'full-4-flat':
    case 'full-2-at-cap': {
      // `before`: the minutes before this one, newest last.
      const run = kind === 'full-4-flat' ? 4 : 2;
      const minutes = [...before.slice(-(run - 1)), r];
      const short = (x: MinuteSample) =>
        kind === 'saturation-2'
          ? x.requests.refused === 0 && heldOf(x) > 0 && wantOf(x) > heldOf(x)
          : x.requests.refused === 0 &&
            x.active > 0 &&
            x.peakConcurrency >= concurrency - 1e-9 &&
            (kind !== 'full-4-flat' || heldOf(x) === heldOf(r)) &&
            (kind !== 'full-2-at-cap' || heldOf(x) >= x.cap);
      const held = heldOf(r);
      return minutes.length === run && minutes.every(short)
        ? { inUse: held, served: held * R, refused: R }
        : observed;
    }
    case 'queue-growth':
    case 'queue-growth-2': {
      const growth = (x: MinuteSample, prev: MinuteSample | undefined) =>
        Math.max(0, x.requests.pending - (prev?.requests.pending ?? 0));
      const prev = before.at(-1);
      const grew = growth(r, prev);
      // `queue-growth-2`: the queue grew the minute before too (or that minute is not in view).
      const twice =
        kind === 'queue-growth' || prev === undefined || growth(prev, before.at(-2)) > 0;
      return grew > 0 && twice && r.requests.served > 0
        ? { ...observed, refused: r.requests.refused + grew }
        : observed;
    }
    case 'saturation': {
      const held = heldOf(r);
      const short = r.requests.refused === 0 && held > 0 && wantOf(r) > held;
      return short ? { inUse: held, served: held * R, refused: R } : observed;
    }
  }
}

/** The simulator's Monitoring with every minute shown as `kind` shows it (same lag). */
export function evidenceMonitoring(
  model: FleetModel,
  lagMs: number,
  kind: EvidenceKind,
  observed: MonitoringPort,
): MonitoringPort {
  if (kind === 'observed') return observed;
  const series = (
    project: string,
    window: TimeWindow,
    field: 'inUse' | 'served' | 'refused',
  ): MetricSeries[] => {
    const last = Math.min(model.now - lagMs, window.endMs);
    const out: MetricSeries[] = [];
    for (const s of model.listServices(project)) {
      const points: MetricSeries['points'] = [];
      const rows = model.history(s);
      const concurrency = concurrencyOf(s.spec);
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] as MinuteSample;
        if (row.at < window.startMs) continue;
        if (row.at > last) break;
        const v = shownMinute(row, kind, rows.slice(Math.max(0, i - 3), i), concurrency)[field];
        // As Cloud Run writes them: no instance count at zero, no request count without requests.
        if (field === 'inUse' ? heldOf(row) > 0 : v > 0) points.push({ at: row.at, value: v });
      }
      if (points.length > 0) out.push({ service: s.name, region: s.region, points });
    }
    return out;
  };
  return {
    ...observed,
    ...(kind === 'no-util' || kind === 'true-no-util' ? { gpuUtilization: async () => [] } : {}),
    instanceCounts: async (p, w) => series(p, w, 'inUse'),
    servedRequests: async (p, w) => series(p, w, 'served'),
    refusedRequests: async (p, w) => series(p, w, 'refused'),
  };
}

/** Refused GPU-minutes of the minute at `at` (the simulator's accounting: above cap + no GPU). */
function refusedAt(
  model: FleetModel,
  pools: readonly PoolInfo[],
  at: number,
  only: ReadonlySet<string> | null = null,
): number {
  let refused = 0;
  for (const pool of pools)
    for (const m of pool.members) {
      if (only && !only.has(m.name)) continue;
      const row = model.history(m).at(-1);
      if (row && row.at === at) refused += (row.refusedCap + row.refusedQuota) * m.gpus;
    }
  return refused;
}

/** A quota change of the scenario (the quota cut) at minute `t`, as the simulator applies it. */
function cutQuota(model: FleetModel, pools: readonly PoolInfo[], t: number): void {
  for (const pool of pools)
    for (const c of pool.changes) if (c.minute === t) model.setQuota(pool.id, c.quota);
}

function newModel(input: SimulationInput, minutes: number): FleetModel {
  const historyMinutes = input.fleet.warmupMinutes + minutes + 40;
  return new FleetModel(input.fleet, { traces: input.traces, historyMinutes });
}

/**
 * The real reconcile every tick on `policy`, reading Monitoring as `kind` shows it; the refused
 * GPU-minutes of every service, or of the services named in `only`.
 */
export async function playGovernor(
  input: SimulationInput,
  policy: Policy,
  kind: EvidenceKind,
  minutes = HOURS * 60,
  only: ReadonlySet<string> | null = null,
): Promise<number> {
  const model = newModel(input, minutes);
  const pools = poolsOf(model, input.quotaChanges);
  const sim = createSimPorts(model, { lagMs: LAG * MINUTE_MS });
  const ports: ObservePorts = {
    ...sim,
    monitoring: evidenceMonitoring(model, LAG * MINUTE_MS, kind, sim.monitoring),
  };
  const store = createMemoryStateStore();
  let refused = 0;
  for (let t = 0; t < minutes; t++) {
    const at = model.startMs + t * MINUTE_MS;
    if (t > 0) model.advanceTo(at);
    cutQuota(model, pools, t);
    refused += refusedAt(model, pools, at, only);
    if (t % TICK === 0) {
      await reconcile(
        policy,
        {
          ports,
          store,
          sink: null,
          log: quiet,
          now: async () => model.now,
          wallClock: () => model.now,
          sleep: async () => undefined,
        },
        { runId: `gap-${t}`, deadlineMs: 240_000 },
      );
    }
  }
  return refused;
}

export interface GreedyWindow {
  minutes: number;
  /** Minutes for a minute's weight to halve; null: every minute weighs the same. */
  halfLife: number | null;
}
export const FLAT10: GreedyWindow = { minutes: 10, halfLife: null };
export const DECAY30: GreedyWindow = { minutes: 30, halfLife: 10 };

/**
 * The evidence-oracle's greedy (src/simulate/strategies.ts) played in the fleet model: every
 * tick, on the minutes visible then (`LAG` late), whole instances highest priority first, each
 * where its (weighted) minutes wanting at least k are most; caps written into the model, so that
 * start-up and the idle tail are paid. `capsFromTick`: the caps hold from the tick's own minute,
 * as the computed oracle's do; otherwise from the next, as a governor's do.
 */
export async function playGreedy(
  input: SimulationInput,
  policy: Policy,
  kind: 'true' | 'observed',
  window: GreedyWindow,
  capsFromTick = false,
  minutes = HOURS * 60,
): Promise<number> {
  const model = newModel(input, minutes);
  const pools = poolsOf(model, input.quotaChanges);
  const want = demandTable(input, model, minutes);
  const view = new PolicyView(policy);
  type Slot = GreedySlot & { member: PoolInfo['members'][number] };
  const wantedAt = (m: PoolInfo['members'][number], u: number): number => {
    if (kind === 'true') return want.get(m.id)?.[u] ?? 0;
    const rows = model.history(m);
    const last = rows.at(-1);
    if (!last) return 0;
    const row = rows[rows.length - 1 - (last.at - (model.startMs + u * MINUTE_MS)) / MINUTE_MS];
    return row ? wantedInstances(heldOf(row), row.requests.served, row.requests.refused) : 0;
  };
  const decide = (t: number, at: number) => {
    const newest = t - LAG;
    for (const pool of pools) {
      // The GPUs of the coming minutes (the quota cut is known to no one in advance; here, as in
      // the computed reference, the caps of a tick fit the least of its minutes).
      const now = poolAt(pool, Math.min(minutes - 1, t + TICK - 1));
      let left = now.available;
      const slots: Slot[] = pool.members.map((m, order) => {
        const s = view.settings(m, at);
        const floor = view.floor(m, s);
        const ceiling = Math.max(
          floor,
          Math.min(s.max ?? Infinity, Math.floor(now.quota / m.gpus)),
        );
        const atLeast: number[] = [];
        for (let age = 0; age < window.minutes && newest - age >= 0; age++) {
          const weight = window.halfLife === null ? 1 : Math.pow(2, -age / window.halfLife);
          const w = Math.min(wantedAt(m, newest - age), ceiling);
          for (let k = 1; k <= w; k++) atLeast[k] = (atLeast[k] ?? 0) + weight;
        }
        left -= floor * m.gpus;
        return {
          member: m,
          order,
          gpus: m.gpus,
          weight: s.weight,
          priority: s.priority,
          level: floor,
          ceiling,
          atLeast,
        };
      });
      greedyFill(slots, left);
      for (const s of slots) model.update(s.member, { maxInstances: s.level });
    }
  };
  let refused = 0;
  for (let t = 0; t < minutes; t++) {
    const at = model.startMs + t * MINUTE_MS;
    if (capsFromTick && t % TICK === 0) decide(t, at);
    if (t > 0) model.advanceTo(at);
    cutQuota(model, pools, t);
    refused += refusedAt(model, pools, at);
    if (!capsFromTick && t % TICK === 0) decide(t, at);
  }
  return refused;
}

const withPolicy = (patch: (p: PolicyInput) => PolicyInput = (p) => p): Policy =>
  parsePolicy(patch(benchPolicy()));
/** The priority-10 service's headroom at 0 (analysis only; the bench keeps its 20%). */
const headroom0 = (p: PolicyInput): PolicyInput => ({
  ...p,
  services: [{ match: { name: 'chat-nyc' }, priority: 10, weight: 2, headroom: 0 }, { match: {} }],
});
/** The policy with some of its defaults changed. */
const withDefaults =
  (changed: PolicyInput['defaults']) =>
  (p: PolicyInput): PolicyInput => ({ ...p, defaults: { ...p.defaults, ...changed } });
/** Ten minutes, each weighing (almost) the same: a half-life far longer than the lookback. */
const flat10 = withDefaults({ lookback: '10m', reclaimWindow: '600m' });
const lookback10 = withDefaults({ lookback: '10m' });
/** No reverse delay, no scale-down delay, no headroom for anyone. */
const bare = withDefaults({ headroom: 0, reverseDelay: '0m', scaleDownDelay: '0m' });

const BENCH = withPolicy();
const H0 = withPolicy(headroom0);
const H0_FLAT10 = withPolicy((p) => flat10(headroom0(p)));

interface Variant {
  name: string;
  what: string;
  run: (input: SimulationInput, minutes: number) => Promise<number>;
}

export const VARIANTS: readonly Variant[] = [
  // A longer memory, in the policy (analysis only: the bench's policy keeps 30m and 10m).
  ...(
    [
      ['60m', '10m'],
      ['60m', '30m'],
      ['120m', '60m'],
      ['30m', '30m'],
    ] as const
  ).map(([lookback, reclaimWindow]) => ({
    name: `lb${lookback}-hl${reclaimWindow}`,
    what: `bench policy, lookback ${lookback}, reclaim window ${reclaimWindow}`,
    run: (i: SimulationInput, m: number) =>
      playGovernor(i, withPolicy(withDefaults({ lookback, reclaimWindow })), 'observed', m),
  })),
  {
    name: 'h0-flat10-true-noutil',
    what: 'h0, 10 flat, true demand, no GPU utilization read',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'true-no-util', m),
  },
  {
    name: 'h0-true-noutil',
    what: 'h0, true demand, no GPU utilization read',
    run: (i, m) => playGovernor(i, H0, 'true-no-util', m),
  },
  {
    name: 'gov-no-util',
    what: 'bench policy, no GPU utilization read',
    run: (i, m) => playGovernor(i, BENCH, 'no-util', m),
  },
  {
    name: 'gov-util-target',
    what: 'bench policy, each minute wanted ≥ ceil(in use × utilization ÷ 0.8)',
    run: (i, m) => playGovernor(i, BENCH, 'util-target', m),
  },
  {
    name: 'gov-util-full',
    what: 'bench policy, a minute at full utilization wanted in use + 1',
    run: (i, m) => playGovernor(i, BENCH, 'util-full', m),
  },
  {
    name: 'governor',
    what: 'the governor, bench policy',
    run: (i, m) => playGovernor(i, BENCH, 'observed', m),
  },
  {
    name: 'gov-sat',
    what: 'bench policy, + saturation shown where no 429',
    run: (i, m) => playGovernor(i, BENCH, 'saturation', m),
  },
  ...(['saturation-2', 'full-2', 'full-4-flat', 'full-2-at-cap'] as const).map((k) => ({
    name: `gov-${k}`,
    what: `bench policy, + ${k}`,
    run: (i: Parameters<typeof playGovernor>[0], m: Parameters<typeof playGovernor>[3]) =>
      playGovernor(i, BENCH, k, m),
  })),
  {
    name: 'gov-queue-growth',
    what: "bench policy, + the pending queue's growth as refused",
    run: (i, m) => playGovernor(i, BENCH, 'queue-growth', m),
  },
  {
    name: 'gov-queue-growth-2',
    what: "bench policy, + the pending queue's growth as refused, 2 min running",
    run: (i, m) => playGovernor(i, BENCH, 'queue-growth-2', m),
  },
  {
    name: 'gov-true',
    what: 'bench policy, + true demand',
    run: (i, m) => playGovernor(i, BENCH, 'true', m),
  },
  { name: 'h0', what: "chat-nyc's headroom 0", run: (i, m) => playGovernor(i, H0, 'observed', m) },
  // Every service's headroom (analysis only: the bench's policy keeps 0.2).
  ...[0, 0.4, 0.6].map((headroom) => ({
    name: `headroom${headroom}`,
    what: `headroom ${headroom} for every service`,
    run: (i: SimulationInput, m: number) =>
      playGovernor(i, withPolicy(withDefaults({ headroom })), 'observed', m),
  })),
  {
    name: 'h0-busy',
    what: 'h0, in use = active only',
    run: (i, m) => playGovernor(i, H0, 'busy', m),
  },
  { name: 'h0-true', what: 'h0, true demand', run: (i, m) => playGovernor(i, H0, 'true', m) },
  {
    name: 'h0-sat',
    what: 'h0, saturation shown where no 429',
    run: (i, m) => playGovernor(i, H0, 'saturation', m),
  },
  {
    name: 'h0-flat10',
    what: 'h0, 10 flat minutes (lookback 10m)',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'observed', m),
  },
  {
    name: 'h0-flat10-busy',
    what: 'h0, 10 flat, in use = active only',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'busy', m),
  },
  {
    name: 'h0-flat10-true',
    what: 'h0, 10 flat, true demand',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'true', m),
  },
  {
    name: 'h0-lb10-true',
    what: 'h0, lookback 10m (half-life 10m), true demand',
    run: (i, m) =>
      playGovernor(
        i,
        withPolicy((p) => lookback10(headroom0(p))),
        'true',
        m,
      ),
  },
  {
    name: 'h0-flat10-true-idle',
    what: 'h0, 10 flat, true demand, in use incl. idle',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'true-with-idle', m),
  },
  {
    name: 'h0-flat10-true429',
    what: 'h0, 10 flat, true demand only in minutes with a 429',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'true-where-429', m),
  },
  {
    name: 'h0-flat10-trueno429',
    what: 'h0, 10 flat, true demand only in minutes without a 429',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'true-where-no-429', m),
  },
  {
    name: 'h0-flat10-sat',
    what: 'h0, 10 flat, saturation shown where no 429',
    run: (i, m) => playGovernor(i, H0_FLAT10, 'saturation', m),
  },
  {
    name: 'bare-flat10-true',
    what: 'no headroom, reverse or scale-down delay; 10 flat; true demand',
    run: (i, m) =>
      playGovernor(
        i,
        withPolicy((p) => bare(flat10(headroom0(p)))),
        'true',
        m,
      ),
  },
  {
    name: 'greedy-true-flat10-t',
    what: 'greedy played, true, 10 flat, caps from the tick',
    run: (i, m) => playGreedy(i, BENCH, 'true', FLAT10, true, m),
  },
  {
    name: 'greedy-true-flat10',
    what: 'greedy played, true, 10 flat, caps from the next minute',
    run: (i, m) => playGreedy(i, BENCH, 'true', FLAT10, false, m),
  },
  {
    name: 'greedy-obs-flat10',
    what: 'greedy played, observed, 10 flat',
    run: (i, m) => playGreedy(i, BENCH, 'observed', FLAT10, false, m),
  },
  {
    name: 'greedy-true-decay30',
    what: 'greedy played, true, 30 min half-life 10',
    run: (i, m) => playGreedy(i, BENCH, 'true', DECAY30, false, m),
  },
  {
    name: 'greedy-obs-decay30',
    what: 'greedy played, observed, 30 min half-life 10',
    run: (i, m) => playGreedy(i, BENCH, 'observed', DECAY30, false, m),
  },
];

/** The scenarios the analysis can run on the bench's policy (the noisy neighbour has its own). */
const SCENARIOS = {
  mixed: (f: number, seed: number) => mixedFleetScenario(f, HOURS, seed),
  traces: (f: number, seed: number) => tracesAloneScenario(f, 6, seed),
  cut: (f: number, seed: number) => quotaCutScenario(f, HOURS, seed),
};

/** A setting the analysis cannot run with: told in one line, exit 2, before anything runs. */
class BadSetting extends Error {}

/**
 * A comma-separated list of numbers (`SEEDS`: whole numbers; `FACTORS`: quota factors above 0,
 * as 0.6), or `fallback` when unset, read as the bench reads its subsets (quality.ts listEnv): an
 * entry `Number` would read as NaN or 0, a list of none and an entry twice are refused.
 */
function numbers(name: 'SEEDS' | 'FACTORS', fallback: readonly number[]): number[] {
  const what = name === 'SEEDS' ? 'whole numbers' : 'quota factors above 0, as 0.6';
  const refused = () =>
    new BadSetting(
      `${name} must be a comma-separated list of ${what}, not ${JSON.stringify(process.env[name])}`,
    );
  const written = name === 'SEEDS' ? /^-?\d+$/ : /^\d+(\.\d+)?$/;
  try {
    return listEnv(process.env, name, what, fallback, (s) => {
      if (!written.test(s) || (name === 'FACTORS' && Number(s) <= 0)) throw refused();
      return Number(s);
    });
  } catch (e) {
    throw e instanceof BadSetting ? e : refused();
  }
}

/**
 * A comma-separated list of names out of `known` (`VARIANTS`, `KINDS`), or `fallback` when unset,
 * read as `numbers` reads its lists: an unknown name, a list of none and a name twice are refused.
 */
function namesOf(
  name: 'VARIANTS' | 'KINDS',
  known: readonly string[],
  fallback: readonly string[],
) {
  try {
    return listEnv(process.env, name, 'name', fallback, (s) => {
      if (!known.includes(s)) throw new BadSetting(`${name}: unknown ${s} (${known.join(', ')})`);
      return s;
    });
  } catch (e) {
    throw e instanceof BadSetting ? e : new BadSetting((e as Error).message);
  }
}

/** Figures per row name and quota factor, one per seed; a cell: mean (worst seed). */
class Figures {
  private readonly rows = new Map<string, Map<number, number[]>>();
  constructor(
    private readonly digits: number,
    private readonly worse: 'low' | 'high',
  ) {}
  push(name: string, f: number, x: number): void {
    const byFactor = this.rows.get(name) ?? new Map<number, number[]>();
    this.rows.set(name, byFactor);
    byFactor.set(f, [...(byFactor.get(f) ?? []), x]);
  }
  names(): string[] {
    return [...this.rows.keys()];
  }
  cell(name: string, f: number): string {
    const xs = this.rows.get(name)?.get(f);
    if (!xs || xs.length === 0) return '—';
    const { mean, worst } = meanWorst(xs, this.worse);
    return `${mean.toFixed(this.digits)} (${worst.toFixed(this.digits)})`;
  }
}

/**
 * The noisy neighbour (`SCENARIO=noisy`), on its own policy: the highest priority's refused
 * GPU-minutes (its target: ≤ 1.1× the best at the tick's) with the governor reading Monitoring as
 * each of `KINDS` shows it, beside the best at the tick and the references, mean (worst seed).
 */
async function noisyTop(seeds: readonly number[], factors: readonly number[]): Promise<void> {
  const policy = parsePolicy(noisyNeighbourPolicy());
  const kinds = namesOf('KINDS', EVIDENCE_KINDS, [
    'observed',
    'true',
    'true-where-no-429',
    'saturation-2',
  ]) as EvidenceKind[];
  const strategies = ['cadence-oracle', 'policy-evidence-oracle', 'evidence-oracle'] as const;
  const figures = new Figures(0, 'high');
  for (const f of factors) {
    for (const seed of seeds) {
      const parsed = parseScenario(noisyNeighbourScenario(f, HOURS, seed));
      const input = await buildScenario(parsed, TRACE_DIR, `noisy ${f}× seed ${seed}`);
      const base = await simulate(input, policy, {
        hours: parsed.hours,
        tickMinutes: TICK,
        lagMinutes: LAG,
        series: false,
        strategies: [...strategies],
      });
      const top = Math.max(...(base.strategies[0]?.services ?? []).map((s) => s.priority));
      const names = new Set(
        (base.strategies[0]?.services ?? []).filter((s) => s.priority === top).map((s) => s.name),
      );
      for (const k of strategies) {
        const r = base.strategies.find((s) => s.strategy === k);
        figures.push(
          k,
          f,
          (r?.services ?? [])
            .filter((s) => names.has(s.name))
            .reduce((a, s) => a + s.refusedGpuMinutes, 0),
        );
      }
      for (const k of kinds) {
        const r = await playGovernor(input, policy, k, parsed.hours * 60, names);
        figures.push(`governor, ${k}`, f, r);
        process.stderr.write(`${f}× seed ${seed} ${k}: top priority refused ${r}\n`);
      }
    }
  }
  console.log(`| highest priority refused GPU-min | ${factors.map((f) => `${f}×`).join(' | ')} |`);
  console.log(`| --- | ${factors.map(() => '---').join(' | ')} |`);
  for (const name of figures.names())
    console.log(`| ${name} | ${factors.map((f) => figures.cell(name, f)).join(' | ')} |`);
}

async function main(): Promise<void> {
  if (process.env['SCENARIO'] === 'noisy') {
    const seeds = numbers('SEEDS', BENCH_SEEDS);
    return noisyTop(seeds, numbers('FACTORS', [0.6, 0.8, 1]));
  }
  const all = VARIANTS.map((v) => v.name);
  const only = namesOf('VARIANTS', all, all);
  const variants = VARIANTS.filter((v) => only.includes(v.name));
  const seeds = numbers('SEEDS', BENCH_SEEDS);
  const factors = numbers('FACTORS', [0.6, 0.8]);
  const scenario = (process.env['SCENARIO'] ?? 'mixed') as keyof typeof SCENARIOS;
  if (!Object.hasOwn(SCENARIOS, scenario))
    throw new BadSetting(
      `SCENARIO: unknown ${scenario} (${[...Object.keys(SCENARIOS), 'noisy'].join(', ')})`,
    );
  const gaps = new Figures(3, 'low');
  for (const f of factors) {
    for (const seed of seeds) {
      const parsed = parseScenario(SCENARIOS[scenario](f, seed));
      const input = await buildScenario(parsed, TRACE_DIR, `${scenario} ${f}× seed ${seed}`);
      const base = await simulate(input, BENCH, {
        hours: parsed.hours,
        tickMinutes: TICK,
        lagMinutes: LAG,
        series: false,
        strategies: [
          'equal-split',
          'cadence-oracle',
          'evidence-oracle',
          'policy-oracle',
          'policy-evidence-oracle',
        ],
      });
      const refused = (k: string) =>
        base.strategies.find((s) => s.strategy === k)?.totals.refusedGpuMinutes ?? NaN;
      const e = refused('equal-split');
      const c = refused('cadence-oracle');
      const gap = (g: number) => gapClosed(e, g, c) ?? NaN;
      gaps.push('evidence-oracle', f, gap(refused('evidence-oracle')));
      gaps.push('policy-oracle', f, gap(refused('policy-oracle')));
      gaps.push('policy-evidence-oracle', f, gap(refused('policy-evidence-oracle')));
      for (const v of variants) {
        const r = await v.run(input, parsed.hours * 60);
        gaps.push(v.name, f, gap(r));
        process.stderr.write(
          `${f}× seed ${seed} ${v.name}: refused ${r} gap ${gap(r).toFixed(3)}\n`,
        );
      }
    }
  }
  const rows = [
    { name: 'evidence-oracle', what: 'the evidence-oracle as the bench computes it' },
    {
      name: 'policy-oracle',
      what: "the best at the tick within the policy's priority (a reference)",
    },
    {
      name: 'policy-evidence-oracle',
      what: "the evidence-oracle within the policy's priority (no hindsight; a reference)",
    },
    ...variants,
  ];
  console.log(`| variant | what | ${factors.map((f) => `${f}×`).join(' | ')} |`);
  console.log(`| --- | --- | ${factors.map(() => '---').join(' | ')} |`);
  for (const v of rows)
    console.log(
      `| ${v.name} | ${v.what} | ${factors.map((f) => gaps.cell(v.name, f)).join(' | ')} |`,
    );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(errorMessage(e));
    process.exit(e instanceof BadSetting ? 2 : 1);
  });
}
