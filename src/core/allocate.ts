/**
 * Whole-instance weighted max-min: the allocation rule. Two moves, both greedy one instance at a
 * time and both deterministic:
 *
 * - `fill` hands out GPUs to the service whose level (GPUs ÷ weight) is lowest, until each reaches
 *   its upper bound or the GPUs run out. This is water-filling: the result is weighted max-min fair
 *   over the bounds, within one instance of the ideal continuous shares.
 * - `cut` takes GPUs back from the service whose level is highest, down to lower bounds, until the
 *   excess is gone: the same rule in reverse.
 *
 * Ties go to the slot's `order` (its place in name order), so the outcome does not depend on the
 * order of the input. Cost per move is O(log n); moves are bounded by the GPUs moved.
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
      if (!this.better(a[i] as T, a[parent] as T)) break;
      [a[i], a[parent]] = [a[parent] as T, a[i] as T];
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
        [a[i], a[best]] = [a[best] as T, a[i] as T];
        i = best;
      }
    }
    return top;
  }
}

const norm = (s: Slot, level = s.level): number => (level * s.cost) / s.weight;

/**
 * Raises slots toward `upper(slot)` with `gpus` to spend, lowest level first. A slot whose next
 * instance costs more than what is left drops out. Returns the GPUs left.
 */
export function fill<S extends Slot>(
  slots: readonly S[],
  upper: (s: S) => number,
  gpus: number,
): number {
  // Compare the level after the next instance: the slot that would stand lowest gets it.
  const heap = new Heap<S>((a, b) => {
    const x = norm(a, a.level + 1);
    const y = norm(b, b.level + 1);
    return x < y || (x === y && a.order < b.order);
  });
  for (const s of slots) if (s.level < upper(s)) heap.push(s);
  let left = gpus;
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
 * instance taken overshot by part of its cost).
 */
export function cut<S extends Slot>(
  slots: readonly S[],
  lower: (s: S) => number,
  excess: number,
): number {
  const heap = new Heap<S>((a, b) => {
    const x = norm(a);
    const y = norm(b);
    return x > y || (x === y && a.order > b.order);
  });
  for (const s of slots) if (s.level > lower(s)) heap.push(s);
  let left = excess;
  while (heap.size > 0 && left > 0) {
    const s = heap.pop() as S;
    s.level -= 1;
    left -= s.cost;
    if (s.level > lower(s)) heap.push(s);
  }
  return left;
}
