import { describe, expect, it } from 'vitest';
import { likelihood, readEvidence, refusalText, wantedInstances } from '../../src/core/evidence.js';
import { minutes } from '../support/fixtures.js';

/**
 * The per-minute evidence (src/core/evidence.ts; README, "How the governor decides"): which
 * minutes are read, and what a minute with refusals wanted.
 */

const OBSERVED = Date.parse('2026-11-27T15:00:00Z');
const LOOKBACK = 30 * 60_000;
const RECLAIM = 10 * 60_000;

describe('the minutes read', () => {
  it('are those whose minute ends within the lookback: one ending at its start is older', () => {
    // Each point is stamped at the end of its minute. With a lookback of 30m observed at 15:00,
    // the point stamped 14:30 covers 14:29 to 14:30, before the window; 14:31's is in it.
    // 30 points, a spike of 9 in the oldest: ending at `newest`, the oldest ends 29 min before.
    const read = (newest: string) => {
      const pm = minutes([9, ...Array(29).fill(1)], undefined, undefined, newest);
      const ev = readEvidence(
        { current: 1, peak: 1, sampledAt: newest, perMinute: pm },
        OBSERVED,
        LOOKBACK,
        RECLAIM,
      );
      if (!ev) throw new Error('no evidence');
      return ev;
    };
    const outside = read('2026-11-27T14:59:00Z'); // the spike's minute ends 14:30
    expect(outside.profile).toHaveLength(29);
    expect(outside.most).toBe(1);
    expect(likelihood(outside, 2)).toBe(0);
    const inside = read('2026-11-27T15:00:00Z'); // ends 14:31
    expect(inside.profile).toHaveLength(30);
    expect(inside.most).toBe(9);
  });
});

describe('the refusals counted', () => {
  it('are those of the reclaim window, or of the lookback when the window is longer', () => {
    // 429s in the newest minute and in the one 14 minutes before it.
    const refused = Array(20).fill(0);
    refused[5] = 10;
    refused[19] = 10;
    const usage = {
      current: 2,
      peak: 2,
      sampledAt: '2026-11-27T14:59:00Z',
      perMinute: minutes(Array(20).fill(2), refused, undefined, '2026-11-27T14:59:00Z'),
    };
    const within = (reclaimMs: number) => readEvidence(usage, OBSERVED, LOOKBACK, reclaimMs);
    expect(within(RECLAIM)?.refusals).toMatchObject({ minutes: 1, window: 10 });
    expect(within(20 * 60_000)?.refusals).toMatchObject({ minutes: 2, window: 20 });
    // A reclaim window of 10h over a lookback of 30m: no minute older than the lookback is
    // read, so its refusals are those of the 30 minutes, and the reason says so.
    expect(within(600 * 60_000)?.refusals).toMatchObject({ minutes: 2, window: 30 });
  });

  it('are those of the newest reclaim-window minutes: 10m counts the newest 10, not an 11th', () => {
    const refusedAt = (age: number) => {
      const refused = Array(20).fill(0);
      refused[19 - age] = 10;
      const pm = minutes(Array(20).fill(2), refused, undefined, '2026-11-27T14:59:00Z');
      const usage = { current: 2, peak: 2, sampledAt: '2026-11-27T14:59:00Z', perMinute: pm };
      return readEvidence(usage, OBSERVED, LOOKBACK, RECLAIM)?.refusals?.minutes;
    };
    expect(refusedAt(9)).toBe(1);
    expect(refusedAt(10)).toBe(0);
  });

  it('are counted over the reclaim window rounded to whole minutes: 89s is 1, 90s is 2', () => {
    const pm = minutes(Array(5).fill(2), [0, 0, 0, 10, 10], undefined, '2026-11-27T14:59:00Z');
    const usage = { current: 2, peak: 2, sampledAt: '2026-11-27T14:59:00Z', perMinute: pm };
    const refusals = (ms: number) => readEvidence(usage, OBSERVED, LOOKBACK, ms)?.refusals;
    expect(refusals(89_000)).toMatchObject({ minutes: 1, window: 1 });
    expect(refusals(90_000)).toMatchObject({ minutes: 2, window: 2 });
  });
});

describe('anticipation', () => {
  it('counts the next step of a rise as one more minute, one minute newer than the newest', () => {
    // Wanted 1, 2, 3 in the newest three minutes: the step 4 counts as a minute of its own.
    const usage = {
      current: 3,
      peak: 3,
      sampledAt: '2026-11-27T14:59:00Z',
      perMinute: minutes([1, 2, 3], undefined, undefined, '2026-11-27T14:59:00Z'),
    };
    const ev = readEvidence(usage, OBSERVED, LOOKBACK, RECLAIM);
    expect(ev?.rising).toEqual({ wanted: [1, 2, 3], next: 4 });
    // Weights halve over the reclaim window (10 min): the newest minute weighs 1, the one
    // before 2^(−1/10), and the anticipated one, a minute newer, 2^(1/10).
    const w = (age: number) => Math.pow(2, -age / 10);
    const total = w(-1) + w(0) + w(1) + w(2);
    expect(ev && likelihood(ev, 4)).toBeCloseTo(w(-1) / total, 12);
    expect(ev && likelihood(ev, 3)).toBeCloseTo((w(-1) + w(0)) / total, 12);
  });
});

describe('instances wanted in a minute', () => {
  it('is what was in use without refusals, and at least one more with any', () => {
    expect(wantedInstances(3, 300, 0)).toBe(3);
    // 2 in use, 200 served, 50 refused: ceil(2 × 250 ÷ 200) = 3.
    expect(wantedInstances(2, 200, 50)).toBe(3);
    // Refused and none served: one more than it had.
    expect(wantedInstances(2, 0, 5)).toBe(3);
    // A refusal too few for the ratio to reach the next instance still wants one more (README:
    // "at least in use + 1"), as does a minute that refused requests with none in use.
    expect(wantedInstances(4, 1e12, 1)).toBe(5);
    expect(wantedInstances(0, 100, 5)).toBe(1);
  });
});

describe('the refusals counted over a lookback of a part minute', () => {
  it('are those of every minute read when the reclaim window is longer', () => {
    // A lookback of 30m30s observed at 15:00 reads 31 minutes: the oldest, stamped 14:30, ends
    // within it. A reclaim window of 10h counts the refusals of every minute read.
    const refused = Array(31).fill(0);
    refused[0] = 10;
    const usage = {
      current: 2,
      peak: 2,
      sampledAt: '2026-11-27T15:00:00Z',
      perMinute: minutes(Array(31).fill(2), refused, undefined, '2026-11-27T15:00:00Z'),
    };
    const ev = readEvidence(usage, OBSERVED, LOOKBACK + 30_000, 600 * 60_000);
    expect(ev?.profile).toHaveLength(31);
    expect(ev?.lastRefusedMs).toBe(Date.parse('2026-11-27T14:30:00Z'));
    expect(ev?.refusals).toMatchObject({ minutes: 1, window: 31 });
  });
});

describe('a refusal without served counts', () => {
  it('is told as served unknown, not as none served', () => {
    // The served requests could not be read (absent), the 429s could: the minute wants one more
    // than it had (the ratio cannot be taken), and its reason does not claim that none was served.
    const pm = minutes([2, 2], [0, 50], undefined, '2026-11-27T15:00:00Z');
    delete (pm as { served?: number[] }).served;
    const ev = readEvidence(
      { current: 2, peak: 2, sampledAt: '2026-11-27T15:00:00Z', perMinute: pm },
      OBSERVED,
      LOOKBACK,
      RECLAIM,
    );
    expect(ev?.refusals?.wanted).toMatchObject({ instances: 3, inUse: 2, refused: 50 });
    const text = ev?.refusals ? refusalText(ev.refusals) : '';
    expect(text).not.toContain('none served');
    expect(text).toContain('served not read');
  });
});

describe('a refusal in a minute with none in use', () => {
  it('is told as one more than in use, not as a product of 0 that reads 0', () => {
    // 0 in use, 100 served, 5 refused: the ratio gives 0 × 105 ÷ 100 = 0, the minute wants 1.
    const pm = minutes([2, 0], [0, 5], [200, 100], '2026-11-27T15:00:00Z');
    const ev = readEvidence(
      { current: 0, peak: 2, sampledAt: '2026-11-27T15:00:00Z', perMinute: pm },
      OBSERVED,
      LOOKBACK,
      RECLAIM,
    );
    expect(ev?.refusals?.wanted).toMatchObject({ instances: 1, inUse: 0, served: 100, refused: 5 });
    const text = ev?.refusals ? refusalText(ev.refusals) : '';
    expect(text).toBe(
      'refused 1 min of the last 10; wanted 1 (in use 0, 5 refused, 100 served: one more than in use)',
    );
  });
});
