import type { Fleet } from '../emulator/fleet.js';
import { MINUTE_MS } from '../emulator/model.js';
import { Accounting, type MinuteRow } from './accounting.js';
import { Heap } from '../core/allocate.js';
import { exactFill } from './exact-fill.js';
import { withHeadroom } from '../core/demand.js';
import { reserveOf } from '../core/pool.js';
import { equalSplit, oracleSplit, overCommit, peakProportional } from './baselines.js';
import { poolAt, type PolicyView, type PoolInfo, type SimContext } from './context.js';
import type { Strategy, StrategyResult } from './result.js';

/**
 * The strategies the governor is judged against (docs/simulation.md "Baselines"): which caps each
 * baseline writes once at the start, and the clairvoyant oracle, which needs no fleet model: it
 * re-splits every minute knowing that minute's demand.
 */

/** The oracle's split of every minute, per service id (instances). */
export function idealSplits(
  pools: readonly PoolInfo[],
  want: ReadonlyMap<string, Int32Array>,
  view: PolicyView,
  startMs: number,
  minutes: number,
): Map<string, Int32Array> {
  const ideal = new Map<string, Int32Array>();
  for (const pool of pools) {
    for (const m of pool.members) ideal.set(m.id, new Int32Array(minutes));
    for (let t = 0; t < minutes; t++) {
      const at = startMs + t * MINUTE_MS;
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
        poolAt(pool, t).available,
      );
      for (const m of pool.members) (ideal.get(m.id) as Int32Array)[t] = split.get(m.id) ?? 0;
    }
  }
  return ideal;
}

/** The fleet a strategy starts from: a baseline's static caps written in; else the fleet's own. */
export function fleetFor(strategy: Strategy, ctx: SimContext): Fleet {
  return withCaps(ctx.input.fleet, baselineCaps(strategy, ctx.pools, ctx.want));
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

/** The oracle: every minute at its ideal split, a write whenever a cap changes. */
/**
 * One minute of a service held at `cap` instances, with no start-up or idle tail (the oracles'
 * world); a change of the cap `written` since the last minute counts as a write.
 */
function cappedMinute(
  acc: Accounting,
  last: Map<string, number>,
  t: number,
  member: MinuteRow['member'],
  want: number,
  cap: number,
  written: number,
): MinuteRow {
  if (last.get(member.id) !== written) {
    if (t > 0) acc.wrote(member.id);
    last.set(member.id, written);
  }
  const row = atCap(member, want, cap);
  return written === cap ? row : { ...row, written: written * member.gpus };
}

/** One minute of a service held at `cap` instances, with no start-up or idle tail. */
function atCap(member: MinuteRow['member'], want: number, cap: number): MinuteRow {
  const refused = Math.max(0, want - cap) * member.gpus;
  return {
    member,
    want,
    cap: cap * member.gpus,
    served: Math.min(want, cap) * member.gpus,
    refused,
    refusedCap: refused,
    idle: 0,
  };
}

export function runOracle(ctx: SimContext, progress: () => void): StrategyResult {
  const acc = new Accounting(ctx, ctx.startMs);
  const last = new Map<string, number>();
  for (let t = 0; t < ctx.minutes; t++) {
    for (const pool of ctx.pools) {
      const rows = pool.members.map((member) => {
        const a = ctx.ideal.get(member.id)?.[t] ?? 0;
        // The cap written is at least 1; the minute is accounted at the ideal split itself.
        return cappedMinute(
          acc,
          last,
          t,
          member,
          ctx.want.get(member.id)?.[t] ?? 0,
          a,
          Math.max(1, a),
        );
      });
      acc.minute(pool, t, rows);
    }
    progress();
  }
  return acc.result('oracle', { violations: [], violationCount: null, failedRuns: [] });
}

/**
 * The cadence-limited oracle: the best any governor can do when caps change only every
 * `windowMinutes` (the governor's tick; or a longer window, which bounds writes), with perfect
 * hindsight of each window's demand. At the start of each window it sets whole-instance caps
 * within the budget (the least GPUs available over the window, less the reserve and the caps of
 * unmanaged services), every governed service at least at its floor, then hands out instances
 * highest priority first, each where it serves the most of the window's minutes (a service's
 * k-th instance serves the minutes it wants at least k). Each service's minutes served are
 * concave in its cap, so this greedy is optimal for the window when a tier's services have the
 * same GPUs per instance; a tier that mixes them is split exactly (`greedyFill`). Computed, not
 * played, like the clairvoyant oracle: no start-up, no idle tail, refusals Σ max(0, want − cap) ×
 * GPUs, and never more served in a minute than the pool holds (`withinPool`). Brute force checks
 * it on small pools (test/simulate/oracle-optimality.test.ts).
 *
 * With `evidence`, the same greedy without hindsight: each window's caps are chosen on the
 * `evidence.minutes` minutes a governor could see at its start (Monitoring `evidence.lag` minutes
 * behind), true demand rather than what the caps let show, and still no start-up, no idle tail
 * and no calm (rules 5 and 8 do not bind it). It is a reference, not a bound: it adds no
 * headroom and reads only those minutes, so a rule that does (the governor at 1.0×) can refuse
 * less (docs/decision-quality.md "Where the gap is").
 */
/**
 * The caps the cadence-limited oracle (no `evidence`: hindsight of each window) sets, and the GPUs
 * it refuses, per service id per minute, as `runCadenceOracle` reports them (`withinPool`
 * included): what the diagnosis measures the governor's excess against.
 */
export function cadenceCaps(
  ctx: SimContext,
  windowMinutes: number,
): { caps: Map<string, Int32Array>; refused: Map<string, Float64Array> } {
  const caps = new Map<string, number>();
  const table = new Map<string, Int32Array>();
  const refused = new Map<string, Float64Array>();
  for (const pool of ctx.pools)
    for (const m of pool.members) {
      table.set(m.id, new Int32Array(ctx.minutes));
      refused.set(m.id, new Float64Array(ctx.minutes));
    }
  for (let t = 0; t < ctx.minutes; t++) {
    if (t % windowMinutes === 0) {
      const end = Math.min(ctx.minutes, t + windowMinutes);
      for (const pool of ctx.pools) decideWindow(ctx, pool, t, end, caps);
    }
    for (const pool of ctx.pools) {
      const rows = pool.members.map((member) =>
        atCap(member, ctx.want.get(member.id)?.[t] ?? 0, caps.get(member.id) ?? 0),
      );
      for (const r of withinPool(ctx, pool, t, rows)) {
        const row = table.get(r.member.id);
        if (row) row[t] = caps.get(r.member.id) ?? 0;
        const out = refused.get(r.member.id);
        if (out) out[t] = r.refused;
      }
    }
  }
  return { caps: table, refused };
}

export function runCadenceOracle(
  ctx: SimContext,
  strategy: Strategy,
  windowMinutes: number,
  progress: () => void,
  evidence: { minutes: number; lag: number } | null = null,
  priority: PriorityOracle | null = null,
): StrategyResult {
  const acc = new Accounting(ctx, ctx.startMs);
  const caps = new Map<string, number>();
  const last = new Map<string, number>();
  for (let t = 0; t < ctx.minutes; t++) {
    if (t % windowMinutes === 0) {
      const end = Math.min(ctx.minutes, t + windowMinutes);
      // Without hindsight: the minutes visible at t (those ≤ t − lag), `evidence.minutes` of them,
      // those of the warm-up included, as Monitoring shows them to a governor (none before it).
      const seen = evidence
        ? { from: t - evidence.lag - evidence.minutes + 1, to: t - evidence.lag + 1 }
        : { from: t, to: end };
      for (const pool of ctx.pools) decideWindow(ctx, pool, t, end, caps, seen, priority);
    }
    for (const pool of ctx.pools) {
      const rows = pool.members.map((member) => {
        const cap = caps.get(member.id) ?? 0;
        return cappedMinute(acc, last, t, member, ctx.want.get(member.id)?.[t] ?? 0, cap, cap);
      });
      acc.minute(pool, t, withinPool(ctx, pool, t, rows));
    }
    progress();
  }
  return acc.result(strategy, { violations: [], violationCount: null, failedRuns: [] });
}

/**
 * Instances a service wants in minute `m` of the run: of the warm-up where `m` is negative, none
 * before it.
 */
function wantAt(ctx: SimContext, id: string, m: number): number {
  if (m >= 0) return ctx.want.get(id)?.[m] ?? 0;
  const before = ctx.wantBefore?.get(id);
  return before?.[before.length + m] ?? 0;
}

/**
 * A minute's rows within the GPUs the pool has. The caps fit the budget, so this changes nothing
 * unless the floors and the unmanaged services' caps alone are above it (a pool cut below its
 * floors): then the pool cannot hold every instance the caps allow, and the best it can do is
 * the clairvoyant split of what the caps let through (unmanaged first, then by priority).
 */
function withinPool(ctx: SimContext, pool: PoolInfo, t: number, rows: MinuteRow[]): MinuteRow[] {
  const { available } = poolAt(pool, t);
  if (rows.reduce((a, r) => a + r.served, 0) <= available) return rows;
  const at = ctx.startMs + t * MINUTE_MS;
  const split = oracleSplit(
    rows.map((r) => {
      const s = ctx.view.settings(r.member, at);
      const through = r.served / r.member.gpus;
      return {
        name: r.member.id,
        gpus: r.member.gpus,
        want: through,
        priority: s.priority,
        weight: s.weight,
        fixedCap: s.managed ? null : through,
      };
    }),
    available,
  );
  return rows.map((r) => {
    const served = (split.get(r.member.id) ?? 0) * r.member.gpus;
    return { ...r, served, refused: r.want * r.member.gpus - served };
  });
}

/**
 * The best at the tick that keeps the policy's priority (`policy-oracle`, docs/decision-quality.md
 * "What the policy's priority costs"): hindsight of each tick as the cadence-limited oracle, and
 * rule 6 as the governor keeps it. A higher priority's demand, ceil(peak × (1 + headroom)) with
 * the peak the most instances in use over the lookback as Monitoring shows it at the tick (`lag`
 * minutes late), is served before a lower priority gets more than its floor and what it has in
 * use (unless that one is preemptible). In use is this oracle's own: a minute's is min(instances
 * wanted, its cap then) for the peak (no idle tail, which would raise the demand), and for what a
 * lower priority keeps, the most any minute of the idle tail wanted, up to its cap (the idle tail
 * counted, which leaves less for the demand). Both choices favour the oracle. It is a reference,
 * not a bound on every governor: a governor could hold a lower priority's instances in use on
 * purpose to keep a higher one below its demand, which this per-tick greedy never plans for.
 */
export class PriorityOracle {
  /** Per service id per minute: the cap this oracle held it at. */
  private readonly caps = new Map<string, Int32Array>();
  constructor(
    private readonly minutes: number,
    private readonly lag: number,
    private readonly idleMinutes: number,
  ) {}

  /**
   * A service's demand as the policy defines it, from the minutes visible at `t`: `want(m)` the
   * instances it wanted in minute m, held at this oracle's cap then, or in the warm-up (m < 0) at
   * `fleetCap`, the cap it had then.
   */
  demand(
    id: string,
    want: (m: number) => number,
    fleetCap: number,
    lookback: number,
    headroom: number,
    t: number,
  ): number {
    let peak = 0;
    for (let m = t - this.lag - lookback + 1; m <= t - this.lag; m++)
      peak = Math.max(peak, Math.min(want(m), this.capAt(id, m, fleetCap)));
    return withHeadroom(peak, headroom);
  }

  /** What a service has in use in the newest minute visible at `t` (its idle tail counted). */
  inUse(id: string, want: (m: number) => number, fleetCap: number, t: number): number {
    const newest = t - this.lag;
    let most = 0;
    for (let m = newest - this.idleMinutes; m <= newest; m++) most = Math.max(most, want(m));
    return Math.min(most, this.capAt(id, newest, fleetCap));
  }

  private capAt(id: string, m: number, fleetCap: number): number {
    return m < 0 ? fleetCap : (this.rowOf(id)[m] ?? 0);
  }

  /** Record the cap a service is held at over minutes [from, to). */
  held(id: string, from: number, to: number, cap: number): void {
    this.rowOf(id).fill(cap, from, to);
  }

  private rowOf(id: string): Int32Array {
    let row = this.caps.get(id);
    if (!row) this.caps.set(id, (row = new Int32Array(this.minutes)));
    return row;
  }
}

function decideWindow(
  ctx: SimContext,
  pool: PoolInfo,
  from: number,
  to: number,
  caps: Map<string, number>,
  seen: { from: number; to: number } = { from, to },
  priority: PriorityOracle | null = null,
): void {
  const at = ctx.startMs + from * MINUTE_MS;
  let available = Infinity;
  let quota = Infinity;
  for (let t = from; t < to; t++) {
    const now = poolAt(pool, t);
    available = Math.min(available, now.available);
    quota = Math.min(quota, now.quota);
  }
  let left = available - reserveOf(ctx.policy, pool.id);
  const slots: (GreedySlot & { id: string; demand: number; inUse: number; preempt: boolean })[] =
    [];
  for (const [order, m] of pool.members.entries()) {
    const s = ctx.view.settings(m, at);
    if (!s.managed) {
      caps.set(m.id, m.fleetCap);
      left -= m.fleetCap * m.gpus;
      continue;
    }
    const floor = ctx.view.floor(m, s);
    const ceiling = Math.max(floor, Math.min(s.max ?? Infinity, Math.floor(quota / m.gpus)));
    const want = (minute: number) => wantAt(ctx, m.id, minute);
    const atLeast: number[] = [];
    for (let t = seen.from; t < seen.to; t++) {
      const w = Math.min(want(t), ceiling);
      for (let k = 1; k <= w; k++) atLeast[k] = (atLeast[k] ?? 0) + 1;
    }
    const lookback = Math.round(s.lookbackMs / MINUTE_MS);
    slots.push({
      id: m.id,
      demand: priority
        ? Math.min(ceiling, priority.demand(m.id, want, m.fleetCap, lookback, s.headroom, from))
        : 0,
      inUse: priority ? Math.min(ceiling, priority.inUse(m.id, want, m.fleetCap, from)) : 0,
      preempt: s.preempt,
      order,
      gpus: m.gpus,
      weight: s.weight,
      priority: s.priority,
      level: floor,
      ceiling,
      atLeast,
    });
    left -= floor * m.gpus;
  }
  if (!priority) greedyFill(slots, left);
  else {
    // Highest priority first: the tier's best split with hindsight, then each of its services
    // raised to its demand, before any lower priority gets more than its floor and its in use.
    const priorities = [...new Set(slots.map((s) => s.priority))].sort((a, b) => b - a);
    for (const p of priorities) {
      const tier = slots.filter((s) => s.priority === p);
      const before = tier.reduce((a, s) => a + s.level * s.gpus, 0);
      greedyFill(tier, left);
      left -= tier.reduce((a, s) => a + s.level * s.gpus, 0) - before;
      if (!slots.some((s) => s.priority < p)) continue;
      const kept = slots
        .filter((s) => s.priority < p && !s.preempt)
        .reduce((a, s) => a + Math.max(0, s.inUse - s.level) * s.gpus, 0);
      for (const s of tier) {
        while (s.level < s.demand && s.gpus <= left - kept) {
          s.level += 1;
          left -= s.gpus;
        }
      }
    }
    for (const s of slots) priority.held(s.id, from, to, s.level);
  }
  for (const s of slots) caps.set(s.id, s.level);
}

/** One service in the greedy split of the best at the tick (and of the reference without hindsight). */
export interface GreedySlot {
  order: number;
  gpus: number;
  weight: number;
  priority: number;
  /** Instances: starts at the floor, raised by `greedyFill`. */
  level: number;
  ceiling: number;
  /** (Weighted) minutes of the window wanting at least k instances, for k = 1, 2, … */
  atLeast: number[];
}

/**
 * The best split of `left` GPUs above the floors, tier by tier, highest priority first: each tier
 * serves the most GPU-minutes of the window it can, then leaves what it did not need to the next.
 * Within a tier whose services all have the same GPUs per instance, each next instance goes where
 * the most minutes of the window would use it (ties by weighted max-min, then order): served
 * minutes are concave in the cap, so this greedy is optimal. A tier with different GPUs per
 * instance is a knapsack, which the greedy can get wrong: it is split exactly (`exactFill`).
 */
export function greedyFill(slots: readonly GreedySlot[], left: number): void {
  const tiers = [...new Set(slots.map((s) => s.priority))].sort((a, b) => b - a);
  for (const p of tiers) {
    const tier = slots.filter((s) => s.priority === p);
    if (new Set(tier.map((s) => s.gpus)).size <= 1) {
      left = fillTier(tier, left);
      continue;
    }
    const exact = tier.map((s) => ({
      gpus: s.gpus,
      level: s.level,
      ceiling: s.ceiling,
      gain: (k: number) => s.atLeast[k] ?? 0,
    }));
    left -= exactFill(exact, left);
    tier.forEach((s, i) => (s.level = exact[i]?.level ?? s.level));
  }
}

/** One tier of the same GPUs per instance, one instance at a time; returns the GPUs left. */
function fillTier(slots: readonly GreedySlot[], left: number): number {
  const gain = (s: GreedySlot) => s.atLeast[s.level + 1] ?? 0;
  const heap = new Heap<GreedySlot>((a, b) => {
    const x = gain(a);
    const y = gain(b);
    if (x !== y) return x > y;
    const na = ((a.level + 1) * a.gpus) / a.weight;
    const nb = ((b.level + 1) * b.gpus) / b.weight;
    return na < nb || (na === nb && a.order < b.order);
  });
  for (const s of slots) if (s.level < s.ceiling && gain(s) > 0) heap.push(s);
  while (heap.size > 0 && left > 0) {
    const s = heap.pop() as GreedySlot;
    if (s.gpus > left) continue;
    s.level += 1;
    left -= s.gpus;
    if (s.level < s.ceiling && gain(s) > 0) heap.push(s);
  }
  return left;
}
