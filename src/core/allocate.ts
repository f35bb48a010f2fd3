/**
 * Whole-instance weighted max-min: the allocation rule. Two moves, both greedy and deterministic:
 *
 * - `fill` hands out GPUs to the service whose level (GPUs ÷ weight) is lowest, until each reaches
 *   its upper bound or the GPUs run out. This is water-filling: the result is weighted max-min fair
 *   over the bounds, within one instance of the ideal continuous shares.
 * - `cut` takes GPUs back from the service whose level is highest, down to lower bounds, until the
 *   excess is gone: the same rule in reverse.
 *
 * Ties go to the slot's `order` (its place in name order), so the outcome does not depend on the
 * order of the input.
 *
 * The rule is stated one instance at a time (the loops at the end of this file), and that is what
 * the answers are. Moving the GPUs that way costs O(log n) per instance, so pools of 100,000 GPUs
 * took seconds to plan; the moves are made in bulk instead, with the same answers. The greedy gives
 * instances in increasing order of (level after the instance × cost ÷ weight, order): each
 * slot's own sequence rises with its level, so the loop merges them. While what is handed out
 * does not exceed the GPUs there are, no slot meets an instance it cannot afford, so a whole
 * prefix of that order can go at once: every instance whose normalized level is at most a
 * threshold, found by binary search over the doubles, each slot's count found with the very
 * expression the loop compares. The loop then finishes from there: the tie group at the
 * threshold and what a slot dropping out leaves (about one instance per slot). `cut` is the
 * mirror. O(n × 64) for the search, O(n log n) for the loop; below `BULK_FROM` instances per slot
 * the loop alone is cheaper and runs alone. test/core/allocate.test.ts compares both with the
 * one-at-a-time greedy.
 *
 * Bounds (`upper`, `lower`) are read once per slot before any move and again by the loop: a bound
 * must not move as the slot's level moves toward it (a fixed bound, or max(level, fixed) for
 * `upper` and min(level, fixed) for `lower`, read the same). Levels, bounds and costs are whole
 * numbers, costs positive, weights positive.
 */

export interface Slot {
  /** Instances held now; updated in place. */
  level: number;
  /** GPUs per instance. */
  cost: number;
  weight: number;
  /** Tie-break: lower comes first. Unique per slot. */
  order: number;
}

type Better<T> = (a: T, b: T) => boolean;

/** A binary heap: `better(a, b)` puts a nearer the top. */
export class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly better: Better<T>) {}
  get size(): number {
    return this.items.length;
  }
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const item = a[i] as T;
      const above = a[parent] as T;
      if (!this.better(item, above)) break;
      // Swapped through locals: a destructuring swap builds an array each time, which the
      // optimizing compiler does not always remove (about 3 MB a plan of 10,000 services).
      a[i] = above;
      a[parent] = item;
      i = parent;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < a.length && this.better(a[l] as T, a[best] as T)) best = l;
        if (r < a.length && this.better(a[r] as T, a[best] as T)) best = r;
        if (best === i) break;
        const item = a[i] as T;
        a[i] = a[best] as T;
        a[best] = item;
        i = best;
      }
    }
    return top;
  }
}

const norm = (s: Slot, level = s.level): number => (level * s.cost) / s.weight;

/**
 * The bulk pass runs when the loop would move more than this many instances per slot: below it,
 * the heap alone (a few comparisons an instance) costs less than the search (about 64 counts a
 * slot).
 */
const BULK_FROM = 16;

// A double's place among all doubles, as an integer: the binary search runs over these, so that it
// takes at most 64 steps whatever the scale of the levels.
const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);
const MAGNITUDE = 0x7fff_ffff_ffff_ffffn;
function rank(x: number): bigint {
  f64[0] = x;
  const bits = i64[0] as bigint;
  return bits < 0n ? -(bits & MAGNITUDE) : bits;
}
function unrank(r: bigint): number {
  i64[0] = r < 0n ? -r : r;
  const x = f64[0] as number;
  return r < 0n ? -x : x;
}

/** The highest level in [from, to] whose norm is at most t (`from` when none above it is). */
function highestAtMost(s: Slot, from: number, to: number, t: number): number {
  if (!(norm(s, from + 1) <= t)) return from;
  if (norm(s, to) <= t) return to;
  // norm(a) ≤ t < norm(b); the estimate and its neighbour settle it, else bisection does.
  let a = from + 1;
  let b = to;
  const guess = Math.floor((t * s.weight) / s.cost);
  if (guess > a && guess < b) {
    if (norm(s, guess) <= t) a = guess;
    else b = guess;
    if (a === guess && a + 1 < b) {
      if (norm(s, a + 1) <= t) a += 1;
      else b = a + 1;
    } else if (b === guess && b - 1 > a) {
      if (norm(s, b - 1) <= t) a = b - 1;
      else b -= 1;
    }
  }
  while (b - a > 1) {
    const m = a + Math.floor((b - a) / 2);
    if (norm(s, m) <= t) a = m;
    else b = m;
  }
  return a;
}

/** The lowest level in [to, from] such that every level above it up to `from` has norm ≥ t. */
function lowestAtLeast(s: Slot, from: number, to: number, t: number): number {
  if (!(norm(s, from) >= t)) return from;
  if (norm(s, to + 1) >= t) return to;
  // norm(a) < t ≤ norm(b): the answer is b − 1 for the lowest such b.
  let a = to + 1;
  let b = from;
  const guess = Math.ceil((t * s.weight) / s.cost);
  if (guess > a && guess < b) {
    if (norm(s, guess) >= t) b = guess;
    else a = guess;
    if (b === guess && b - 1 > a) {
      if (norm(s, b - 1) >= t) b -= 1;
      else a = b - 1;
    } else if (a === guess && a + 1 < b) {
      if (norm(s, a + 1) >= t) b = a + 1;
      else a += 1;
    }
  }
  while (b - a > 1) {
    const m = a + Math.floor((b - a) / 2);
    if (norm(s, m) >= t) b = m;
    else a = m;
  }
  return b - 1;
}

/**
 * Raises slots toward `upper(slot)` with `gpus` to spend, lowest level first. A slot whose next
 * instance costs more than what is left drops out. Returns the GPUs left. `bulkFrom`: see
 * BULK_FROM (0 runs the bulk pass whenever there is something to move).
 */
export function fill<S extends Slot>(
  slots: readonly S[],
  upper: (s: S) => number,
  gpus: number,
  bulkFrom = BULK_FROM,
): number {
  const live: S[] = [];
  const bound: number[] = [];
  let room = 0;
  let cheapest = Infinity;
  for (const s of slots) {
    const u = upper(s);
    if (s.level < u) {
      live.push(s);
      bound.push(u);
      room += u - s.level;
      cheapest = Math.min(cheapest, s.cost);
    }
  }
  // The loop moves at most this many instances: below BULK_FROM a slot, it alone is cheaper.
  const moves = Math.min(room, gpus / cheapest);
  const left = moves > bulkFrom * live.length ? fillInBulk(live, bound, gpus) : gpus;
  return fillOneByOne(live, upper, left);
}

/**
 * Hands out at once every instance whose norm is at most the highest threshold whose instances
 * all fit in `gpus`: the loop would hand out exactly those first, none dropping out, since before
 * each of them what is left covers it and all that follow it. Returns the GPUs left.
 */
function fillInBulk<S extends Slot>(
  live: readonly S[],
  bound: readonly number[],
  gpus: number,
): number {
  // A slot's reach within the bulk pass: one instance past what the GPUs pay for is enough to
  // tell a threshold that does not fit (a reach cut shorter would hide it).
  const top: number[] = [];
  let instances = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < live.length; i++) {
    const s = live[i] as S;
    const u = Math.min(bound[i] as number, s.level + Math.floor(gpus / s.cost) + 1);
    top.push(u);
    instances += u - s.level;
    if (u > s.level) {
      lo = Math.min(lo, norm(s, s.level + 1));
      hi = Math.max(hi, norm(s, u));
    }
  }
  if (!Number.isFinite(instances)) return gpus;
  if (Number.isNaN(lo) || Number.isNaN(hi)) return gpus;
  // GPUs of every instance with norm ≤ t, or Infinity once past `gpus`.
  const spent = (t: number): number => {
    let total = 0;
    for (let i = 0; i < live.length; i++) {
      const s = live[i] as S;
      total += (highestAtMost(s, s.level, top[i] as number, t) - s.level) * s.cost;
      if (total > gpus) return Infinity;
    }
    return total;
  };
  let t: number;
  if (spent(hi) <= gpus) t = hi;
  else if (!(spent(lo) <= gpus)) return gpus;
  else {
    let a = rank(lo); // fits
    let b = rank(hi); // does not
    while (b - a > 1n) {
      const m = (a + b) >> 1n;
      if (spent(unrank(m)) <= gpus) a = m;
      else b = m;
    }
    t = unrank(a);
  }
  let left = gpus;
  for (let i = 0; i < live.length; i++) {
    const s = live[i] as S;
    const to = highestAtMost(s, s.level, top[i] as number, t);
    left -= (to - s.level) * s.cost;
    s.level = to;
  }
  return left;
}

/** The rule itself: one instance at a time through a heap, from the slots' levels as they are. */
function fillOneByOne<S extends Slot>(
  live: readonly S[],
  upper: (s: S) => number,
  gpus: number,
): number {
  // Compare the level after the next instance: the slot that would stand lowest gets it.
  const heap = new Heap<S>((a, b) => {
    const x = norm(a, a.level + 1);
    const y = norm(b, b.level + 1);
    return x < y || (x === y && a.order < b.order);
  });
  let left = gpus;
  if (left <= 0) return left;
  for (const s of live) if (s.level < upper(s)) heap.push(s);
  while (heap.size > 0 && left > 0) {
    const s = heap.pop() as S;
    if (s.cost > left) continue;
    s.level += 1;
    left -= s.cost;
    if (s.level < upper(s)) heap.push(s);
  }
  return left;
}

/**
 * Lowers slots toward `lower(slot)` until `excess` GPUs are given back, highest level first.
 * Returns the excess that could not be given back (0 when it all was; negative when the last
 * instance taken overshot by part of its cost). `bulkFrom`: as for `fill`.
 */
export function cut<S extends Slot>(
  slots: readonly S[],
  lower: (s: S) => number,
  excess: number,
  bulkFrom = BULK_FROM,
): number {
  const live: S[] = [];
  const bound: number[] = [];
  let room = 0;
  let cheapest = Infinity;
  for (const s of slots) {
    const l = lower(s);
    if (s.level > l) {
      live.push(s);
      bound.push(l);
      room += s.level - l;
      cheapest = Math.min(cheapest, s.cost);
    }
  }
  const moves = Math.min(room, excess / cheapest + 1);
  const left = moves > bulkFrom * live.length ? cutInBulk(live, bound, excess) : excess;
  return cutOneByOne(live, lower, left);
}

/**
 * Takes back at once every instance whose norm is at least the lowest threshold whose instances
 * give back no more than `excess`: the loop would take exactly those first, what is left staying
 * above 0 before each. Returns the excess left.
 */
function cutInBulk<S extends Slot>(
  live: readonly S[],
  bound: readonly number[],
  excess: number,
): number {
  // As in fillInBulk: one instance past what `excess` asks for.
  const bottom: number[] = [];
  let instances = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < live.length; i++) {
    const s = live[i] as S;
    const l = Math.max(bound[i] as number, s.level - Math.floor(excess / s.cost) - 1);
    bottom.push(l);
    instances += s.level - l;
    if (l < s.level) {
      hi = Math.max(hi, norm(s));
      lo = Math.min(lo, norm(s, l + 1));
    }
  }
  if (!Number.isFinite(instances)) return excess;
  if (Number.isNaN(lo) || Number.isNaN(hi)) return excess;
  // GPUs of every instance with norm ≥ t, or Infinity once past `excess`.
  const taken = (t: number): number => {
    let total = 0;
    for (let i = 0; i < live.length; i++) {
      const s = live[i] as S;
      total += (s.level - lowestAtLeast(s, s.level, bottom[i] as number, t)) * s.cost;
      if (total > excess) return Infinity;
    }
    return total;
  };
  let t: number;
  if (taken(lo) <= excess) t = lo;
  else if (!(taken(hi) <= excess)) return excess;
  else {
    let a = rank(lo); // too much
    let b = rank(hi); // fits
    while (b - a > 1n) {
      const m = (a + b) >> 1n;
      if (taken(unrank(m)) <= excess) b = m;
      else a = m;
    }
    t = unrank(b);
  }
  let left = excess;
  for (let i = 0; i < live.length; i++) {
    const s = live[i] as S;
    const to = lowestAtLeast(s, s.level, bottom[i] as number, t);
    left -= (s.level - to) * s.cost;
    s.level = to;
  }
  return left;
}

/** The rule itself, in reverse: one instance at a time, the highest norm first. */
function cutOneByOne<S extends Slot>(
  live: readonly S[],
  lower: (s: S) => number,
  excess: number,
): number {
  const heap = new Heap<S>((a, b) => {
    const x = norm(a);
    const y = norm(b);
    return x > y || (x === y && a.order > b.order);
  });
  let left = excess;
  if (left <= 0) return left;
  for (const s of live) if (s.level > lower(s)) heap.push(s);
  while (heap.size > 0 && left > 0) {
    const s = heap.pop() as S;
    s.level -= 1;
    left -= s.cost;
    if (s.level > lower(s)) heap.push(s);
  }
  return left;
}
