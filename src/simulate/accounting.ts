import { MINUTE_MS } from '../emulator/model.js';
import { poolAt, type Member, type PoolInfo, type SimContext } from './context.js';
import {
  STRATEGY_LABELS,
  type GpuMinutes,
  type PoolMetrics,
  type PoolSeries,
  type RefusalCauses,
  type ServiceMetrics,
  type Strategy,
  type StrategyResult,
} from './result.js';

/**
 * The per-minute accounting of one strategy: every minute of every pool adds what each service
 * wanted, was served, was refused and held idle, under which cap; at the end the sums become the
 * strategy's metrics (docs/simulation.md "Metrics").
 */

/** A raise this soon after a lowering, with no refusal in between, is a reversal. */
const REVERSAL_MINUTES = 30;

/** One service in one minute. */
export interface MinuteRow {
  member: Member;
  want: number;
  /** GPUs: cap, served, refused, idle. */
  cap: number;
  served: number;
  refused: number;
  refusedCap: number;
  idle: number;
  /**
   * GPUs: the cap written, where it is not `cap` (the clairvoyant oracle accounts a minute at its
   * split but writes at least 1): what a reversal is counted on, as the writes are.
   */
  written?: number;
}

/** What the governor's run adds beside the minutes (baselines: none). */
interface RunRecord {
  violations: readonly string[];
  /** Null for a baseline: nothing checks its writes. */
  violationCount: number | null;
  failedRuns: readonly string[];
  causes?: RefusalCauses;
  idempotence?: { cases: number; failures: number; examples: string[] };
}

type PoolSums = PoolMetrics & { shareErrSum: number };

export class Accounting {
  private readonly services = new Map<string, ServiceMetrics>();
  private readonly pools = new Map<string, PoolSums>();
  private readonly series: PoolSeries[] = [];
  /** Per service: its cap last minute, and its latest lowering (minute, refused since). */
  private readonly capTrack = new Map<
    string,
    { cap: number; lowered: number | null; refusedSince: boolean }
  >();

  /** `startMs`: minute 0 of the run, from which each minute's settings are read. */
  constructor(
    private readonly ctx: SimContext,
    private readonly startMs: number,
  ) {
    for (const p of ctx.pools) {
      for (const m of p.members) this.services.set(m.id, newServiceMetrics(ctx, p, m, startMs));
      this.pools.set(p.key, newPoolSums(p));
      if (ctx.options.series ?? true) this.series.push(newSeries(p, ctx.minutes));
    }
  }

  /** A write to a service's cap. */
  wrote(id: string): void {
    const sm = this.services.get(id);
    if (sm) sm.writes += 1;
  }

  /** Adds one minute of one pool. */
  minute(pool: PoolInfo, t: number, rows: readonly MinuteRow[]): void {
    const pm = this.pools.get(pool.key);
    if (!pm) return;
    const series = this.series.find((s) => s.pool === pool.key);
    let demand = 0;
    let refused = 0;
    let caps = 0;
    for (const r of rows) {
      const sm = this.services.get(r.member.id);
      if (sm) {
        addMinute(sm, r);
        this.trackReversal(sm, r, t);
      }
      addMinute(pm, r);
      demand += r.want * r.member.gpus;
      refused += r.refused;
      caps += r.cap;
      if (series) {
        const c = series.caps[r.member.name];
        if (c) c[t] = r.cap;
      }
    }
    const { available } = poolAt(pool, t);
    if (caps > available) pm.capsOverQuotaMinutes += 1;
    if (series) {
      series.demand[t] = demand;
      series.refused[t] = refused;
    }
    if (demand > available && available > 0) {
      pm.scarceMinutes += 1;
      let diff = 0;
      for (const r of rows)
        diff += Math.abs(r.served - (this.ctx.ideal.get(r.member.id)?.[t] ?? 0) * r.member.gpus);
      pm.shareErrSum += diff / (2 * available);
    }
    if (this.inverted(available, rows, caps, this.startMs + t * MINUTE_MS))
      pm.priorityInversions += 1;
  }

  /**
   * A priority inversion: someone refused while a lower-priority service keeps cap it does not
   * use and the refused GPUs could only have come from others' caps.
   *
   * Whether such a lower priority exists depends on the refused service only through its
   * priority: the lowest priority among those holding cap above their use answers it for every
   * refused service at once. Holding each refused service against every other cost services²
   * a minute: 5,000 services over two hours, within the most a simulation plays, ran for hours.
   */
  private inverted(available: number, rows: readonly MinuteRow[], caps: number, atMs: number) {
    const refusedRows = rows.filter((r) => r.refused > 0);
    if (refusedRows.length === 0) return false;
    const view = this.ctx.view;
    const settings = new Map(rows.map((r) => [r.member.id, view.settings(r.member, atMs)]));
    // The lowest priority of a service keeping cap above its floor and its demand.
    let lowestHolding = Infinity;
    for (const b of rows) {
      const sb = settings.get(b.member.id);
      if (!sb) continue;
      const floorGpus = view.floor(b.member, sb) * b.member.gpus;
      if (b.cap > Math.max(floorGpus, b.want * b.member.gpus))
        lowestHolding = Math.min(lowestHolding, sb.priority);
    }
    return refusedRows.some((a) => {
      const pa = settings.get(a.member.id)?.priority ?? 0;
      return caps + a.refused > available && lowestHolding < pa;
    });
  }

  /**
   * A reversal: a cap raised back within REVERSAL_MINUTES after it was lowered, although the
   * service was not refused at its lowered cap in between (its demand did not rise past it).
   */
  private trackReversal(sm: ServiceMetrics, r: MinuteRow, t: number): void {
    const track = this.capTrack.get(r.member.id);
    const cap = r.written ?? r.cap;
    if (!track) {
      this.capTrack.set(r.member.id, { cap, lowered: null, refusedSince: false });
      return;
    }
    if (cap < track.cap) {
      track.lowered = t;
      track.refusedSince = false;
    } else if (cap > track.cap && track.lowered !== null) {
      if (t - track.lowered <= REVERSAL_MINUTES && !track.refusedSince) sm.reversals += 1;
      track.lowered = null;
    }
    if (r.refusedCap > 0) track.refusedSince = true;
    track.cap = cap;
  }

  /** The strategy's metrics from the sums. */
  result(strategy: Strategy, run: RunRecord): StrategyResult {
    const hours = this.ctx.minutes / 60;
    const { violationCount } = run;
    const pools: PoolMetrics[] = [...this.pools.values()].map(({ shareErrSum, ...p }) => {
      const writes = [...this.services.values()]
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
    const services = [...this.services.values()];
    const writes = services.reduce((a, s) => a + s.writes, 0);
    const result: StrategyResult = {
      strategy,
      label: STRATEGY_LABELS[strategy],
      pools,
      services,
      totals: {
        refusedGpuMinutes: pools.reduce((a, p) => a + p.refusedGpuMinutes, 0),
        idleGpuMinutes: pools.reduce((a, p) => a + p.idleGpuMinutes, 0),
        writesPerServiceHour: writes / Math.max(1, services.length) / hours,
        reversalsPerServiceDay:
          services.reduce((a, s) => a + s.reversals, 0) /
          Math.max(1, services.length) /
          (hours / 24),
        invariantViolations: violationCount,
        failedRuns: run.failedRuns.length,
      },
      violations: run.violations.slice(0, 20),
      failedRuns: run.failedRuns.slice(0, 20),
      series: this.series,
    };
    if (run.causes) result.causes = run.causes;
    if (run.idempotence) result.idempotence = run.idempotence;
    return result;
  }
}

function noGpuMinutes(): GpuMinutes {
  return {
    demandGpuMinutes: 0,
    refusedGpuMinutes: 0,
    refusedCapGpuMinutes: 0,
    refusedQuotaGpuMinutes: 0,
    idleGpuMinutes: 0,
  };
}

/** One minute of one service, added to its own sums and to its pool's alike. */
function addMinute(sums: GpuMinutes, r: MinuteRow): void {
  sums.demandGpuMinutes += r.want * r.member.gpus;
  sums.refusedGpuMinutes += r.refused;
  sums.refusedCapGpuMinutes += r.refusedCap;
  sums.refusedQuotaGpuMinutes += r.refused - r.refusedCap;
  sums.idleGpuMinutes += r.idle;
}

function newServiceMetrics(
  ctx: SimContext,
  p: PoolInfo,
  m: Member,
  startMs: number,
): ServiceMetrics {
  const s = ctx.view.settings(m, startMs);
  return {
    pool: p.key,
    name: m.name,
    managed: s.managed,
    priority: s.priority,
    weight: s.weight,
    ...noGpuMinutes(),
    writes: 0,
    reversals: 0,
  };
}

function newPoolSums(p: PoolInfo): PoolSums {
  return {
    pool: p.key,
    quota: p.quota,
    available: p.available,
    services: p.members.length,
    ...noGpuMinutes(),
    writes: 0,
    writesPerServiceHour: 0,
    scarceMinutes: 0,
    shareError: null,
    priorityInversions: 0,
    capsOverQuotaMinutes: 0,
    invariantViolations: null,
    shareErrSum: 0,
  };
}

function newSeries(p: PoolInfo, minutes: number): PoolSeries {
  return {
    pool: p.key,
    quota: p.quota,
    available: p.available,
    quotaChanges: p.changes.map((c) => ({ minute: c.minute, quota: c.quota })),
    services: p.members.map((m) => m.name),
    demand: new Array<number>(minutes).fill(0),
    caps: Object.fromEntries(p.members.map((m) => [m.name, new Array<number>(minutes).fill(0)])),
    refused: new Array<number>(minutes).fill(0),
  };
}
