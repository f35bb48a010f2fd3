import { describe, expect, it } from 'vitest';
import { poolConditions, usageUnknownAsLeft } from '../../src/core/conditions.js';
import type { PlanPool } from '../../src/core/plan.js';
import type { WriteResult } from '../../src/core/write-result.js';
import { POOL, writeResult } from '../support/fixtures.js';

/**
 * `governor.degraded` (usage-unknown) of a pool whose budget lowers `a` (usage unknown) from 6
 * to 3 all the same, while `b`, also of unknown usage, is held at 2. When a's lowering is not
 * written, its cap is held too: the alert must not say it was lowered.
 */
const pool = {
  ...POOL,
  budget: null,
  quota: 10,
  reserve: 0,
  unmanagedGpus: 0,
  capsBefore: 8,
  capsAfter: 5,
  demand: 0,
  floors: 2,
  status: 'ok',
  note: null,
} as unknown as PlanPool;
const unknown = (name: string, from: number, to: number) => ({
  name,
  from,
  to,
  want: 0,
  demand: null,
  peak: null,
  inUse: null,
  usageUnknown: true,
  usageNote: 'no usage series',
});
const [usage] = poolConditions(
  { at: '2026-12-01T12:00:00Z', runId: 'r', pressure: 2 },
  { ...pool, budget: 10 },
  [unknown('a', 6, 3), unknown('b', 2, 2)],
);

const write = (w: Partial<WriteResult>): WriteResult => writeResult({ from: 6, planned: 3, ...w });

const left = (...writes: WriteResult[]) =>
  usageUnknownAsLeft([usage!], writes).map((a) => [a.summary, a.details['services']]);

describe('usageUnknownAsLeft', () => {
  it("keeps the plan's words when the lowering landed, or may have", () => {
    expect(usage?.summary).toBe(
      'Usage unknown for 2 services in us-central1 nvidia-l4: their caps are held, except 1 lowered because the budget or a ceiling requires it',
    );
    expect(left(write({}))).toEqual([[usage?.summary, usage?.details['services']]]);
    expect(left(write({ outcome: 'failed', cause: 'uncertain', written: null }))).toEqual([
      [usage?.summary, usage?.details['services']],
    ]);
  });

  it('says the cap was held when the lowering was not written', () => {
    expect(left(write({ outcome: 'failed', cause: 'denied', written: null }))).toEqual([
      [
        'Usage unknown for 2 services in us-central1 nvidia-l4: their caps are held',
        [
          { name: 'a', note: 'no usage series', from: 6, to: 6, planned: 3 },
          { name: 'b', note: 'no usage series', from: 2, to: 2 },
        ],
      ],
    ]);
  });
});
