import { describe, expect, it } from 'vitest';
import { makeAlert, starvedAsLeft } from '../../src/core/conditions.js';
import type { WriteResult } from '../../src/core/write-result.js';
import { POOL, writeResult } from '../support/fixtures.js';

/** The plan's starved condition for `a`: planned to 3, wanting 6, peak 4. */
const starved = makeAlert({ at: '2026-12-01T12:00:00Z', runId: 'r' }, POOL, {
  type: 'service.starved',
  severity: 'WARNING',
  service: 'a',
  summary: 'a gets 3 instances, short of its demand of 6',
  details: { cap: 3, demand: 6, peak: 4, inUse: 3, shortfall: 3 },
});

const write = (w: Partial<WriteResult>): WriteResult => writeResult({ from: 5, planned: 3, ...w });

const left = (...writes: WriteResult[]) =>
  starvedAsLeft([starved], writes).map((a) => [a.summary, a.details.cap, a.details.shortfall]);

describe('starvedAsLeft', () => {
  it("keeps the plan's word when the write landed as planned, or none was made", () => {
    expect(left(write({}))).toEqual([[starved.summary, 3, 3]]);
    expect(left()).toEqual([[starved.summary, 3, 3]]);
    expect(left(write({ name: 'b', outcome: 'failed', cause: 'denied', written: null }))).toEqual([
      [starved.summary, 3, 3],
    ]);
  });

  it('drops it when the cap kept is above the peak (a lowering not written)', () => {
    for (const cause of ['denied', 'failed', 'deadline', 'no-room', 'other-governor'] as const)
      expect(left(write({ outcome: 'skipped', cause, written: null }))).toEqual([]);
  });

  it('restates it at the cap in force when that is still starved', () => {
    // A lowering from 4 not written: 4 is at the peak, below the demand.
    expect(left(write({ from: 4, outcome: 'failed', cause: 'denied', written: null }))).toEqual([
      ['a gets 4 instances, short of its demand of 6', 4, 2],
    ]);
    // A raise from 1 to 3 written short (room ran out), and one lowered back in the same run.
    expect(left(write({ from: 1, written: 2 }))).toEqual([
      ['a gets 2 instances, short of its demand of 6', 2, 4],
    ]);
    expect(
      left(write({ from: 1 }), write({ from: 3, planned: 3, written: 1, cause: 'compensated' })),
    ).toEqual([['a gets 1 instance, short of its demand of 6', 1, 5]]);
  });

  it("keeps the plan's word when the cap in force is unknown", () => {
    for (const cause of ['uncertain', 'etag', 'changed', 'conflict', 'gone', 'unreadable'] as const)
      expect(left(write({ outcome: 'skipped', cause, written: null }))).toEqual([
        [starved.summary, 3, 3],
      ]);
  });

  it('leaves every other condition alone', () => {
    const other = { ...starved, type: 'pool.pressure' as const, service: null };
    expect(starvedAsLeft([other], [write({ outcome: 'failed', cause: 'denied' })])).toEqual([
      other,
    ]);
  });
});
