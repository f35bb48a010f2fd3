import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { onePoolFleet } from '../support/fixtures.js';
import { busiestMinute } from '../support/paced-fleet.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A run whose wall clock jumps forward (an NTP step, a virtual machine
 * resumed) after its fifth write: the writes are paced on the time elapsed (`elapsedClock`), so the writes counted
 * before the jump still count, and no real minute holds more than `writesPerMinute` of them. Two
 * decreases and four raises in one region, three writes a minute.
 */

const PROJECT = 'jump-project';
const REGION = 'us-central1';

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
  services: [{ match: {} }],
  limits: { writesPerMinute: 3 },
});

describe('the writes under a wall clock that jumps forward', () => {
  for (const jump of [45_000, 600_000])
    it(`by ${jump / 1000} s: no real minute holds more than writesPerMinute writes`, async () => {
      const busy = ['busy-c', 'busy-d', 'busy-e', 'busy-f'].map((n) => [n, 1, 2] as const);
      const m = new FleetModel(
        validateFleet(
          onePoolFleet(PROJECT, REGION, 12, [['idle-a', 4, 0], ['idle-b', 4, 0], ...busy]),
        ),
      );
      const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
      let t = Date.parse('2026-11-27T13:00:00Z');
      let jumped = 0;
      const writes: number[] = [];
      const run = {
        ...sim.run,
        updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
          writes.push(t);
          if (writes.length === 5) jumped += jump;
          return sim.run.updateMaxInstances(u);
        },
      };
      const report = await reconcileReport(
        policy,
        {
          ports: { ...sim, run },
          clock: () => m.now,
          wallClock: () => t + jumped,
          elapsedClock: () => t,
          sleep: async (ms) => {
            t += ms;
          },
        },
        // Room on the wall clock for the jump and the writes after it.
        { runId: 'jumped', deadlineMs: jump + 30 * 60_000, writerId: 'me' },
      );
      expect(writes.length).toBeGreaterThan(3);
      expect(busiestMinute(writes), writes.join(', ')).toBeLessThanOrEqual(3);
      expect(report.writes.filter((w) => w.planned > w.from).map((w) => w.cause)).toEqual([
        'written',
        'written',
        'written',
        'written',
      ]);
    });
});
