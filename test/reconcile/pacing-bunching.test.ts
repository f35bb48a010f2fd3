import { describe, expect, it } from 'vitest';
import { createSimPorts } from '../../src/emulator/ports.js';
import { idleFleet, pacedPolicy } from '../support/paced-fleet.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { virtualTime } from '../support/virtual-time.js';

const PROJECT = 'bunch-project';
const SLOW = 'asia-east1'; // first in the plan's order: its writes take the gate first
const FAST = 'us-central1';

const model = () => idleFleet(PROJECT, { [SLOW]: 2, [FAST]: 6 });
const policy = pacedPolicy(PROJECT, [SLOW, FAST]);

/**
 * A write waits for its region's slot before it takes one of the run's `writeConcurrency` places;
 * when the places are all held (here by another region's slow writes), it may get one long after
 * its slot's time. It must not then start beside the writes of the next minute's slots: Cloud
 * Run's write quota is per project, region and minute (reconcile/pacing.ts).
 */
describe('writes that waited for the concurrency gate', () => {
  it('start no more than writesPerMinute to one region in any 60 s', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const start = Date.parse('2026-11-27T13:00:00Z');
    const time = virtualTime(start);
    const writes: { region: string; at: number }[] = [];
    const run = {
      ...sim.run,
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        writes.push({ region: u.region, at: time.now() });
        // The slow region's writes hold their places for 55 s (a slow operation).
        if (u.region === SLOW) await time.sleep(55_000);
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        clock: () => m.now,
        wallClock: time.now,
        sleep: time.sleep,
      },
      { runId: 'bunched', deadlineMs: 10 * 60_000, writerId: 'me' },
    );
    expect(report.writes.filter((w) => w.cause === 'written')).toHaveLength(8);
    const fast = writes.filter((w) => w.region === FAST).map((w) => w.at - start);
    // Before, the fast region's first two writes, held at the gate until 55 s, started beside its
    // two slots of 60 s: four in 5 s, at a quota of two a minute.
    expect(fast).toEqual([60_000, 60_000, 120_000, 120_000, 180_000, 180_000]);
    for (const w of fast)
      expect(
        fast.filter((x) => x >= w && x < w + 60_000).length,
        `from ${w / 1000} s`,
      ).toBeLessThanOrEqual(2);
  });
});
