import { describe, expect, it } from 'vitest';
import { plan } from '../../src/core/planner.js';
import type { Snapshot } from '../../src/core/snapshot.js';
import { governAll, minutes, POOL, snapshotService as svc } from '../support/fixtures.js';

/**
 * Time in a plan: the snapshot is what was observed at its `takenAt`; the plan's time (`--at`)
 * is the policy's clock (windows, delays), not a new age for the observation.
 */

const TAKEN = '2026-11-27T15:00:00.000Z';

function snapshot(): Snapshot {
  return {
    version: 1,
    takenAt: TAKEN,
    pools: [{ ...POOL, quota: 4 }],
    services: [
      // At its cap of 2 and refused in the newest three minutes (14:55–14:57): it wanted 3.
      svc('busy', 2, {
        current: 2,
        peak: 2,
        perMinute: minutes([2, 2, 2, 2, 2, 2], [0, 0, 0, 50, 50, 50]),
      }),
      // Idle over the whole lookback: its room above its use may move to busy.
      svc('idle', 2, { current: 0, peak: 0, perMinute: minutes([0, 0, 0, 0, 0, 0]) }),
    ],
    unmanagedUsage: [],
  };
}

const decisions = (at: string) => {
  const p = plan(snapshot(), governAll({ defaults: { headroom: 0 } }), at);
  return {
    services: p.services.map((s) => ({
      name: s.name,
      to: s.to,
      demand: s.demand,
      reason: s.reason,
    })),
    changes: p.changes.map((c) => `${c.name} ${c.from}→${c.to}`),
  };
};

describe('planning a snapshot for another instant', () => {
  it('reads the per-minute evidence as observed, whether the instant is later or earlier', () => {
    const atTaken = decisions(TAKEN);
    // The refusals move busy's room: the plan at the snapshot's own time.
    expect(atTaken.changes).toEqual(['idle 2→1', 'busy 2→3']);
    expect(atTaken.services.find((s) => s.name === 'busy')?.reason).toContain('refused 3 min');
    // Two hours later (say, to see a schedule window), the same minutes say the same thing: they
    // are not forgotten while the snapshot's peak and in-use are kept.
    expect(decisions('2026-11-27T17:00:00.000Z')).toEqual(atTaken);
    // Ten minutes earlier, before the refusals were sampled: the same evidence, as observed.
    expect(decisions('2026-11-27T14:50:00.000Z')).toEqual(atTaken);
    expect(decisions('2027-11-27T15:00:00.000Z')).toEqual(atTaken);
  });
});

describe('the reclaim window against the lookback', () => {
  it('counts refusals over the lookback alone, and the reason says so, when the window is longer', () => {
    // 429s at 14:51, six minutes before the newest minute (14:57), inside a 10m lookback.
    const s: Snapshot = {
      ...snapshot(),
      services: [
        svc('busy', 2, {
          current: 2,
          peak: 2,
          perMinute: minutes([2, 2, 2, 2, 2, 2, 2, 2, 2], [0, 0, 50, 0, 0, 0, 0, 0, 0]),
        }),
        svc('idle', 2, { current: 0, peak: 0, perMinute: minutes([0, 0, 0, 0, 0, 0, 0, 0, 0]) }),
      ],
    };
    const reason = (reclaimWindow: string) =>
      plan(s, governAll({ defaults: { headroom: 0, lookback: '10m', reclaimWindow } }), TAKEN)
        .services[0]?.reason;
    expect(reason('10m')).toContain('refused 1 min of the last 10;');
    // Only ten minutes are read: the reason does not claim 600.
    expect(reason('600m')).toContain('refused 1 min of the last 10;');
    expect(reason('5m')).toContain('no 429s in the last 5 min');
  });
});
