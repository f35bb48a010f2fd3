import type { PlanService } from '../core/plan.js';
import type { MinuteRow } from './accounting.js';
import { poolAt, svcId, type PoolInfo } from './context.js';
import { noExcess, type ExcessCauses, type RefusalCauses } from './result.js';

/**
 * The governor's refusals by cause (docs/decision-quality.md "Why the governor refuses"), with
 * `diagnose`: each plan says what it meant for each service, and each minute with refused GPUs
 * says where the GPUs the refused services could not have were.
 */

interface PlannedCap {
  /** The plan left it below its own demand estimate. */
  short: boolean;
  /** Its plan saw refusals (or saturation) in its evidence. */
  refused: boolean;
  /** Its plan kept it at its cap for the reverse delay. */
  reverseHeld: boolean;
  priority: number;
  /** Instances given as burst room, and kept by the scale-down delay. */
  burst: number;
  sticky: number;
}

export interface Diagnosis {
  causes: RefusalCauses;
  planned: Map<string, PlannedCap>;
  /** The best at the same tick's caps per service id per minute (strategies.ts `cadenceCaps`). */
  cadence: ReadonlyMap<string, Int32Array>;
  /** The GPUs the best at the same tick refuses per service id per minute, as it reports them. */
  cadenceRefused: ReadonlyMap<string, Float64Array>;
}

export function newDiagnosis(best: {
  caps: ReadonlyMap<string, Int32Array>;
  refused: ReadonlyMap<string, Float64Array>;
}): Diagnosis {
  return {
    cadence: best.caps,
    cadenceRefused: best.refused,
    causes: {
      poolBusy: 0,
      poolIdleHeld: 0,
      free: { shortOfDemand: 0, aboveEstimate: 0 },
      freeRoomAt: { burst: 0, sticky: 0, demand: 0, uncapped: 0 },
      scarceTicks: 0,
      ticks: 0,
      excess: noExcess(),
      excessByService: {},
    },
    planned: new Map(),
  };
}

/** What the last plan meant for each service, from its structured `why` (instrumentation only). */
export function notePlan(d: Diagnosis, services: readonly PlanService[]): void {
  let scarce = false;
  for (const s of services) {
    if (!s.managed) continue;
    const short = s.why.shortBy !== undefined;
    scarce ||= short;
    d.planned.set(svcId(s), {
      short,
      refused: s.why.basis.kind === 'demand' && s.why.basis.estimate.saturated,
      reverseHeld: s.why.reverseHeld !== undefined,
      priority: s.priority ?? 0,
      burst: (s.why.burstKept?.instances ?? 0) + (s.why.burstShared ?? 0),
      sticky: s.why.sticky?.kept ?? 0,
    });
  }
  d.causes.ticks += 1;
  if (scarce) d.causes.scarceTicks += 1;
}

/**
 * One minute `t` of one pool: where the refused GPUs went. The pool's GPUs are those of that
 * minute (after a quota cut, the cut quota's).
 */
export function diagnoseMinute(
  d: Diagnosis,
  pool: PoolInfo,
  t: number,
  rows: readonly MinuteRow[],
): void {
  const { available } = poolAt(pool, t);
  excessMinute(d, available, t, rows);
  const refused = rows.reduce((a, r) => a + r.refused, 0);
  if (refused <= 0) return;
  const held = rows.reduce((a, r) => a + r.served + r.idle, 0);
  const idle = rows.reduce((a, r) => a + r.idle, 0);
  const free = Math.max(0, available - held);
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
  room.uncapped = Math.max(0, available - rows.reduce((a, r) => a + r.cap, 0));
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

/**
 * The governor's refusals above the best at the same tick's, service by service, by cause
 * (`RefusalCauses.excess`). The free GPUs of the minute go to the refused services in name order:
 * the part of a service's excess they cover is judged by its last plan, the rest by who held the
 * pool's GPUs.
 */
function excessMinute(
  d: Diagnosis,
  available: number,
  t: number,
  rows: readonly MinuteRow[],
): void {
  const held = rows.reduce((a, r) => a + r.served + r.idle, 0);
  const idle = rows.reduce((a, r) => a + r.idle, 0);
  let free = Math.max(0, available - held);
  const cadenceCap = (r: MinuteRow) => d.cadence.get(r.member.id)?.[t] ?? 0;
  const byService = d.causes.excessByService;
  for (const r of rows) {
    // What the best at the tick refused (its caps' refusals, or more where the floors alone are
    // above the pool): so the causes less `ahead` sum to the difference of the two totals.
    const best = d.cadenceRefused.get(r.member.id)?.[t] ?? r.want * r.member.gpus;
    const own = (byService[r.member.name] ??= noExcess());
    const add = (k: keyof ExcessCauses, x: number) => {
      if (x <= 0) return;
      own[k] += x;
      d.causes.excess[k] += x;
    };
    add('ahead', best - r.refused);
    const excess = r.refused - best;
    if (excess <= 0) continue;
    const p = d.planned.get(r.member.id);
    const covered = Math.min(excess, free);
    free -= covered;
    if (covered > 0) {
      if (!p || !p.short) add(p?.refused ? 'step' : 'lag', covered);
      else if (p.reverseHeld) add('hysteresis', covered);
      else {
        // Where the room sat: above a higher priority's use, or elsewhere.
        let higher = 0;
        let other = 0;
        for (const o of rows) {
          if (o === r) continue;
          const spare = Math.max(0, o.cap - o.served - o.idle);
          const op = d.planned.get(o.member.id)?.priority ?? 0;
          if (op > p.priority) higher += spare;
          else other += spare;
        }
        const h = higher + other > 0 ? (covered * higher) / (higher + other) : 0;
        add('headroom', h);
        add('ranked', covered - h);
      }
    }
    const full = excess - covered;
    if (full <= 0) continue;
    const prio = p?.priority ?? 0;
    // Every GPU held: lower priorities above the best at the tick's split, idle instances, or
    // busy instances of the same or higher priority.
    let lower = 0;
    for (const o of rows) {
      const op = d.planned.get(o.member.id)?.priority ?? 0;
      if (o !== r && op < prio)
        lower += Math.max(0, o.served + o.idle - cadenceCap(o) * o.member.gpus);
    }
    const l = Math.min(full, lower);
    add('lowerInUse', l);
    const i = Math.min(full - l, idle);
    add('idleTail', i);
    add('othersInUse', full - l - i);
  }
}
