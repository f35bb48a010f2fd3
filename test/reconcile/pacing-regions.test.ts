import { describe, expect, it } from 'vitest';
import { createSimPorts } from '../../src/emulator/ports.js';
import { idleFleet, pacedPolicy } from '../support/paced-fleet.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { virtualTime } from '../support/virtual-time.js';

/**
 * Cloud Run's write quota is per project and region: a region with more writes than its
 * minute's quota waits for its own quota and for nothing else. Before, a write waited for its region's quota
 * while holding one of the run's `writeConcurrency` places, so a large fleet whose first region
 * had a backlog (3,000 services: 350 decreases in one region, 30 writes a minute) held every
 * place for the whole run: the other five regions wrote nothing, and the run, its last writes
 * waiting for a slot past the deadline, failed before its alerts.
 */

const PROJECT = 'pace-project';
const BUSY = 'asia-east1'; // first in the plan's order
const SMALL = 'us-central1';

const model = () => idleFleet(PROJECT, { [BUSY]: 12, [SMALL]: 2 });
const policy = pacedPolicy(PROJECT, [BUSY, SMALL]);

describe('act under a per-region write quota', () => {
  it("one region's backlog neither holds back another region's writes nor the run past its deadline", async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const start = Date.parse('2026-11-27T13:00:00Z');
    const time = virtualTime(start);
    const writes: { region: string; at: number }[] = [];
    const run = {
      ...sim.run,
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        writes.push({ region: u.region, at: time.now() });
        return sim.run.updateMaxInstances(u);
      },
    };
    const deadlineMs = 90_000;
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        clock: () => m.now,
        wallClock: time.now,
        sleep: time.sleep,
      },
      { runId: 'paced', deadlineMs, writerId: 'me' },
    );
    expect(report.plan?.changes).toHaveLength(14);
    // The small region's two decreases went out at once, beside the busy region's first two.
    const small = report.writes.filter((w) => w.region === SMALL);
    expect(small.map((w) => w.cause)).toEqual(['written', 'written']);
    expect(writes.filter((w) => w.region === SMALL).map((w) => w.at)).toEqual([start, start]);
    // The busy region wrote what its quota allowed before the deadline (2 a minute: at 0 and
    // 60 s) and skipped the rest at once, without waiting for slots past the deadline.
    const busy = report.writes.filter((w) => w.region === BUSY);
    expect(busy.filter((w) => w.cause === 'written')).toHaveLength(4);
    expect(busy.filter((w) => w.cause === 'deadline')).toHaveLength(8);
    for (const region of [BUSY, SMALL]) {
      const at = writes.filter((w) => w.region === region).map((w) => w.at);
      for (const w of at)
        expect(at.filter((x) => x >= w && x < w + 60_000).length).toBeLessThanOrEqual(2);
    }
    // The run ended by its deadline, and went on to its alerts and its record.
    expect(time.now() - start).toBeLessThanOrEqual(deadlineMs);
    expect(report.error).toBeNull();
    expect(report.outcome).toBe('ok');
  });
});
