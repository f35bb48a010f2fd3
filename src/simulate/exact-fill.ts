/**
 * The exact split of one priority tier's GPUs when its services have different GPUs per instance:
 * the oracles' yardstick (docs/simulation.md "Baselines"). With the same GPUs per instance for
 * every service of a tier, handing out one instance at a time where it serves the most is
 * optimal (served minutes are concave in the cap); with different ones it is a knapsack, and
 * the greedy can leave GPUs unused or spend them where they serve less (3 GPUs left: two 1-GPU
 * instances serving 5 minutes each, or one 3-GPU instance serving 4, worth 12 GPU-minutes).
 *
 * A dynamic programme over the GPUs spent: each service's value is concave in its extra
 * instances, so each step is a max-plus convolution with a concave kernel, whose best choice
 * moves monotonically (divide and conquer, O(B log B) per service, B the GPUs worth spending).
 */

export interface ExactSlot {
  /** GPUs per instance. */
  gpus: number;
  /** Instances now; raised in place. */
  level: number;
  /** At most this many instances. */
  ceiling: number;
  /** Minutes (or weight) served by the k-th instance, non-increasing in k. */
  gain: (k: number) => number;
}

/**
 * Raises the slots within `left` GPUs so that Σ gpus × gain over the instances added is the
 * largest possible, spending the fewest GPUs that reach it (what is left goes to lower
 * priorities). Returns the GPUs spent.
 */
export function exactFill(slots: readonly ExactSlot[], left: number): number {
  if (left <= 0 || slots.length === 0) return 0;
  // Each slot's useful extra instances: up to its ceiling, and only while they serve something.
  const extra = slots.map((s) => {
    let k = 0;
    while (s.level + k < s.ceiling && s.gain(s.level + k + 1) > 0 && (k + 1) * s.gpus <= left)
      k += 1;
    return k;
  });
  const budget = Math.min(
    left,
    slots.reduce((a, s, i) => a + (extra[i] ?? 0) * s.gpus, 0),
  );
  if (budget <= 0) return 0;
  // value[b]: the most GPU-minutes served with at most b GPUs, over the slots so far.
  let value = new Float64Array(budget + 1);
  const choices: Int32Array[] = [];
  slots.forEach((s, idx) => {
    const k = extra[idx] ?? 0;
    // F(j): GPU-minutes served by j extra instances (concave: gains are non-increasing).
    const F = new Float64Array(k + 1);
    for (let j = 1; j <= k; j++) F[j] = (F[j - 1] ?? 0) + s.gpus * s.gain(s.level + j);
    const next = new Float64Array(budget + 1);
    const choice = new Int32Array(budget + 1);
    const g = s.gpus;
    for (let r = 0; r < g && r <= budget; r++) {
      const len = Math.floor((budget - r) / g) + 1;
      const a = (i: number) => value[r + i * g] ?? 0;
      // c[j] = max over i in [j − k, j] of a[i] + F[j − i]; the best i is monotone in j.
      const solve = (jlo: number, jhi: number, ilo: number, ihi: number): void => {
        if (jlo > jhi) return;
        const j = (jlo + jhi) >> 1;
        let best = -Infinity;
        let arg = Math.max(ilo, j - k);
        for (let i = Math.max(ilo, j - k); i <= Math.min(ihi, j); i++) {
          const v = a(i) + (F[j - i] ?? 0);
          if (v >= best) {
            best = v;
            arg = i;
          }
        }
        next[r + j * g] = best;
        choice[r + j * g] = j - arg;
        solve(jlo, j - 1, ilo, arg);
        solve(j + 1, jhi, arg, ihi);
      };
      solve(0, len - 1, 0, len - 1);
    }
    value = next;
    choices.push(choice);
  });
  // The fewest GPUs that reach the most served.
  const most = value[budget] ?? 0;
  let b = 0;
  while ((value[b] ?? 0) < most) b += 1;
  const spent = b;
  for (let idx = slots.length - 1; idx >= 0; idx--) {
    const s = slots[idx] as ExactSlot;
    const k = choices[idx]?.[b] ?? 0;
    s.level += k;
    b -= k * s.gpus;
  }
  return spent - b;
}
