import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The window between the read that allows a raise and the raise is one round trip, even when
 * Cloud Run's write quota makes writes wait: a wait for the quota comes before the read, never
 * between the read and the write. Two decreases and four raises in one region, three writes a
 * minute: the decreases take two slots, the raises go in batches, each after its own fresh read.
 */

const PROJECT = 'pace-project';
const REGION = 'us-central1';

function model(): FleetModel {
  const busy = ['busy-c', 'busy-d', 'busy-e', 'busy-f'].map((n) => [n, 1, 2] as const);
  return new FleetModel(
    validateFleet(onePoolFleet(PROJECT, REGION, 12, [['idle-a', 4, 0], ['idle-b', 4, 0], ...busy])),
  );
}

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
  services: [{ match: {} }],
  limits: { writesPerMinute: 3 },
});

describe('act under the write quota', () => {
  it('no raise waits between the read that allowed it and its write', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let t = Date.parse('2026-11-27T13:00:00Z');
    const events: { what: string; at: number }[] = [];
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        events.push({ what: 'read', at: t });
        return sim.run.listServices(p, r);
      },
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        const s = m.getService(u);
        events.push({
          what: (s?.maxInstances ?? 0) < u.maxInstances ? 'raise' : 'lower',
          at: t,
        });
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        clock: () => m.now,
        wallClock: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
      { runId: 'paced', deadlineMs: 4 * 60_000, writerId: 'me' },
    );
    const raised = report.writes.filter((w) => w.planned > w.from);
    expect(raised).toHaveLength(4);
    // Every raise was written, within the run.
    expect(raised.map((w) => w.cause)).toEqual(['written', 'written', 'written', 'written']);
    // Each raise comes at the same instant as the read just before it: no wait in between.
    const raises = events.filter((e) => e.what === 'raise');
    expect(raises.length).toBe(4);
    for (const r of raises) {
      const i = events.indexOf(r);
      const read = events
        .slice(0, i)
        .filter((e) => e.what === 'read')
        .pop();
      expect(read, 'a read before every raise').toBeDefined();
      expect(r.at - (read?.at ?? 0)).toBe(0);
    }
    // And the quota holds: never more than three writes in any minute.
    const writes = events.filter((e) => e.what !== 'read').map((e) => e.at);
    for (const w of writes)
      expect(writes.filter((x) => x >= w && x < w + 60_000).length).toBeLessThanOrEqual(3);
    // The pool ends within its quota.
    expect(m.listServices().reduce((a, s) => a + s.maxInstances, 0)).toBeLessThanOrEqual(12);
  });
});
