import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeBreaches } from '../../src/core/invariants.js';

describe('writeBreaches: the rules one write keeps', () => {
  const pool = { capsGpus: 7, budgetGpus: 8 };
  const ok = { managed: true, before: 2, after: 3, bounds: { floor: 1, ceiling: 8 }, pool };

  it('finds nothing wrong with a write within the rules', () => {
    expect(writeBreaches(ok)).toEqual([]);
  });

  it('names each broken rule, with the numbers it broke', () => {
    expect(writeBreaches({ ...ok, managed: false })).toEqual([{ rule: 3, kind: 'unmanaged' }]);
    expect(writeBreaches({ ...ok, after: 9 })).toEqual([
      { rule: 2, kind: 'out-of-bounds', floor: 1, ceiling: 8 },
    ]);
    expect(writeBreaches({ ...ok, pool: { ...pool, capsGpus: 9 } })).toEqual([
      { rule: 1, kind: 'over-quota', capsGpus: 9, budgetGpus: 8 },
    ]);
    expect(
      writeBreaches({ ...ok, managed: false, after: 9, pool: { ...pool, capsGpus: 10 } }).map(
        (b) => b.rule,
      ),
    ).toEqual([3, 2, 1]);
  });

  it('lets a decrease leave a pool over budget, never a raise, whatever the floors', () => {
    expect(writeBreaches({ ...ok, after: 1, pool: { ...pool, capsGpus: 9 } })).toEqual([]);
    expect(writeBreaches({ ...ok, after: 2, pool: { ...pool, capsGpus: 9 } })).toEqual([]);
    // The floors do not fit (an infeasible pool): the quota still comes first.
    expect(writeBreaches({ ...ok, pool: { capsGpus: 9, budgetGpus: 8 } })).toEqual([
      { rule: 1, kind: 'over-quota', capsGpus: 9, budgetGpus: 8 },
    ]);
  });

  it('a raise toward a floor may stop short of it (the quota first); no write moves away from the bounds', () => {
    const bounds = { floor: 3, ceiling: 8 };
    expect(writeBreaches({ before: 1, after: 2, bounds })).toEqual([]);
    expect(writeBreaches({ before: 2, after: 1, bounds })).toHaveLength(1);
    expect(writeBreaches({ before: 4, after: 2, bounds })).toHaveLength(1);
    expect(writeBreaches({ before: 10, after: 9, bounds })).toEqual([]);
    expect(writeBreaches({ before: 7, after: 9, bounds })).toHaveLength(1);
  });

  it('a floor above the ceiling wins: a write anywhere between them is within bounds', () => {
    expect(writeBreaches({ before: 1, after: 4, bounds: { floor: 5, ceiling: 3 } })).toEqual([]);
    expect(writeBreaches({ before: 1, after: 6, bounds: { floor: 5, ceiling: 3 } })).toHaveLength(
      1,
    );
    // Lowered from above them: into them is within bounds, below the ceiling is not.
    expect(writeBreaches({ before: 6, after: 4, bounds: { floor: 5, ceiling: 3 } })).toEqual([]);
    expect(writeBreaches({ before: 6, after: 2, bounds: { floor: 5, ceiling: 3 } })).toHaveLength(
      1,
    );
  });

  it('checks only the rules whose facts it is given', () => {
    expect(writeBreaches({ before: 1, after: 100 })).toEqual([]);
    expect(writeBreaches({ before: 1, after: 100, managed: true })).toEqual([]);
  });

  it("rule 1 is the emulator's quota check: raised, and used + reserve over the quota", () => {
    const n = fc.integer({ min: 0, max: 40 });
    fc.assert(
      fc.property(n, n, n, n, n, (before, after, used, reserve, quota) => {
        const breached = writeBreaches({
          before,
          after,
          pool: { capsGpus: used, budgetGpus: quota - reserve },
        }).some((b) => b.kind === 'over-quota');
        const expected = after > before && used + reserve > quota;
        expect(breached).toBe(expected);
      }),
    );
  });
});
