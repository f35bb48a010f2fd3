import { fill, type Slot } from '../core/allocate.js';
import { compareText } from '../core/pool.js';
import { exactFill } from './exact-fill.js';

/**
 * The baselines' caps, and the clairvoyant oracle's split. Each works on one pool: the GPUs
 * `available` to its services (the quota less worker pools and manually scaled services) and the
 * services with their GPUs per instance. All return whole instances, at least 1 (a max of 0 means
 * "unset" on Cloud Run).
 */

interface PoolMember {
  /** Unique within the pool; ties go to the lower name. */
  name: string;
  gpus: number;
}

/** Every service gets the same share of the pool (the remainder to the first names). */
export function equalSplit(members: readonly PoolMember[], available: number): Map<string, number> {
  return proportional(
    members.map((m) => ({ ...m, share: 1 })),
    available,
  );
}

/** Shares in proportion to each service's peak demand (GPUs) over the period. */
export function peakProportional(
  members: readonly (PoolMember & { peakGpus: number })[],
  available: number,
): Map<string, number> {
  const total = members.reduce((a, m) => a + m.peakGpus, 0);
  return proportional(
    members.map((m) => ({ ...m, share: total === 0 ? 1 : m.peakGpus })),
    available,
  );
}

/** Every service may take the whole pool (Cloud Run's own check, one service at a time). */
export function overCommit(members: readonly PoolMember[], quota: number): Map<string, number> {
  return new Map(members.map((m) => [m.name, Math.max(1, Math.floor(quota / m.gpus))]));
}

/** Largest remainder in GPUs, then whole instances; every service at least one instance. */
function proportional(
  members: readonly (PoolMember & { share: number })[],
  available: number,
): Map<string, number> {
  const sorted = [...members].sort((a, b) => compareText(a.name, b.name));
  const total = sorted.reduce((a, m) => a + m.share, 0) || 1;
  const caps = new Map<string, number>();
  // Everyone's one instance first (a max of 0 is not a cap), then the rest by share.
  const ones = sorted.reduce((a, m) => a + m.gpus, 0);
  const spread = ones <= available ? available - ones : available;
  const base = ones <= available ? 1 : 0;
  let left = spread;
  const rest: { name: string; frac: number; gpus: number }[] = [];
  for (const m of sorted) {
    const ideal = (spread * m.share) / total / m.gpus;
    const n = Math.floor(ideal);
    caps.set(m.name, n + base);
    left -= n * m.gpus;
    rest.push({ name: m.name, frac: ideal - n, gpus: m.gpus });
  }
  rest.sort((a, b) => b.frac - a.frac || compareText(a.name, b.name));
  for (const r of rest) {
    if (left < r.gpus) continue;
    caps.set(r.name, (caps.get(r.name) ?? 0) + 1);
    left -= r.gpus;
  }
  for (const [name, n] of caps) caps.set(name, Math.max(1, n));
  return caps;
}

interface OracleMember extends PoolMember {
  /** Instances wanted this minute. */
  want: number;
  priority: number;
  weight: number;
  /** Unmanaged: served up to its own fixed cap, never re-split. */
  fixedCap: number | null;
}

/**
 * The clairvoyant split of one minute: knowing every service's demand, unmanaged services first
 * (up to their caps), then priority tiers, highest first, each raised toward its demand by
 * weighted max-min (the planner's own `fill`). Returns instances per service. With one GPU per
 * instance the refused GPUs, Σ(want − alloc), equal max(0, Σ want − available): no policy can
 * refuse less in that minute. A tier with different GPUs per instance, where max-min can leave
 * GPUs unused that another split would serve, gets the most it can be served (`exactFill`).
 */
export function oracleSplit(
  members: readonly OracleMember[],
  available: number,
): Map<string, number> {
  const alloc = new Map<string, number>();
  let left = available;
  for (const m of members) {
    if (m.fixedCap === null) continue;
    const n = Math.max(0, Math.min(m.want, m.fixedCap, Math.floor(left / m.gpus)));
    alloc.set(m.name, n);
    left -= n * m.gpus;
  }
  const governed = members
    .filter((m) => m.fixedCap === null)
    .sort((a, b) => compareText(a.name, b.name));
  const tiers = [...new Set(governed.map((m) => m.priority))].sort((a, b) => b - a);
  for (const p of tiers) {
    const slots: (Slot & { name: string; want: number })[] = governed
      .filter((m) => m.priority === p)
      .map((m, i) => ({
        name: m.name,
        want: m.want,
        level: 0,
        cost: m.gpus,
        weight: m.weight,
        order: i,
      }));
    const room = Math.max(0, left);
    left = fill(slots, (s) => s.want, room);
    // With different GPUs per instance max-min can leave GPUs a whole instance cannot use that
    // another split would (3 GPUs: 1 + 2 where max-min gives 1 + 1): then the most the tier can
    // be served, exactly.
    const wanted = slots.reduce((a, s) => a + s.want * s.cost, 0);
    if (new Set(slots.map((s) => s.cost)).size > 1 && room - left < Math.min(room, wanted)) {
      const exact = slots.map((s) => ({
        gpus: s.cost,
        level: 0,
        ceiling: s.want,
        gain: (k: number) => (k <= s.want ? 1 : 0),
      }));
      const spent = exactFill(exact, room);
      if (spent > room - left) {
        slots.forEach((s, i) => (s.level = exact[i]?.level ?? 0));
        left = room - spent;
      }
    }
    for (const s of slots) alloc.set(s.name, s.level);
  }
  return alloc;
}
