import type { Fleet } from '../emulator/fleet.js';
import { MINUTE_MS } from '../emulator/model.js';
import { Accounting, type MinuteRow } from './accounting.js';
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
export function runOracle(ctx: SimContext, progress: () => void): StrategyResult {
  const acc = new Accounting(ctx, ctx.startMs);
  const last = new Map<string, number>();
  for (let t = 0; t < ctx.minutes; t++) {
    for (const pool of ctx.pools) {
      const rows: MinuteRow[] = pool.members.map((member) => {
        const w = ctx.want.get(member.id)?.[t] ?? 0;
        const a = ctx.ideal.get(member.id)?.[t] ?? 0;
        const cap = Math.max(1, a);
        if (last.get(member.id) !== cap) {
          if (t > 0) acc.wrote(member.id);
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
      acc.minute(pool, t, rows);
    }
    progress();
  }
  return acc.result('oracle', { violations: [], violationCount: null, failedRuns: [] });
}
