/**
 * The rules (docs/rules.md) a single write of a service's max instances must keep, decided in one place for
 * both watchers of writes: the simulator's write checks and the emulator's invariant monitor.
 * Each gathers the facts it knows about the write and renders the breaches in its own words.
 *
 * - Rule 3: a service no policy rule governs is never written.
 * - Rule 2: a write never takes a cap out of its bounds, nor further from them (whichever way
 *   round floor and ceiling are: a floor above the ceiling wins, as in the planner). A raise
 *   toward a floor may stop short of it: in a pool whose floors do not fit, the quota comes first.
 * - Rule 1: a write that raises a cap never leaves the pool's caps above its budget, whether or
 *   not the floors fit (floors yield to the quota). A decrease is never a breach: an over-budget
 *   pool may only go down.
 *
 * A fact left out is a rule not checked: the emulator knows no floors or ceilings, and checks
 * rule 3 before the write lands and rule 1 after.
 */

/** The pool right after a write, in GPUs, all counted the same way. */
interface PoolAfterWrite {
  /** What the caps take. */
  capsGpus: number;
  /** What the caps may take: the quota less the reserve (and less whatever the caps leave out). */
  budgetGpus: number;
}

interface WriteFacts {
  /** The cap before and after the write (instances). */
  before: number;
  after: number;
  /** Whether a policy rule governs the service (rule 3). */
  managed?: boolean;
  /** The instance bounds the cap must keep (rule 2). */
  bounds?: { floor: number; ceiling: number };
  /** The written service's pool right after the write (rule 1). */
  pool?: PoolAfterWrite;
}

export type WriteBreach =
  | { rule: 3; kind: 'unmanaged' }
  | { rule: 2; kind: 'out-of-bounds'; floor: number; ceiling: number }
  | { rule: 1; kind: 'over-quota'; capsGpus: number; budgetGpus: number };

/** The rules one write breaks, in rule 3, 2, 1 order (empty: none). */
export function writeBreaches(w: WriteFacts): WriteBreach[] {
  const out: WriteBreach[] = [];
  if (w.managed === false) out.push({ rule: 3, kind: 'unmanaged' });
  if (w.bounds) {
    const { floor, ceiling } = w.bounds;
    const below = w.after < Math.min(floor, ceiling) && w.after < w.before;
    const above = w.after > Math.max(floor, ceiling) && w.after > w.before;
    if (below || above) out.push({ rule: 2, kind: 'out-of-bounds', floor, ceiling });
  }
  const p = w.pool;
  if (p && w.after > w.before && p.capsGpus > p.budgetGpus)
    out.push({ rule: 1, kind: 'over-quota', capsGpus: p.capsGpus, budgetGpus: p.budgetGpus });
  return out;
}
