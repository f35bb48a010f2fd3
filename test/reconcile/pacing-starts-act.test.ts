import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { idleFleet, pacedPolicy, busiestMinute } from '../support/paced-fleet.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { virtualTime } from '../support/virtual-time.js';

/**
 * Writes are counted by the pacer when they start (reconcile/pacing.ts): a decrease whose place
 * came up to a second after its slot, or later, never starts beside the next minute's writes, and
 * the quota is per project and region (Cloud Run's "Write requests per minute per region" is
 * WritePerMinutePerProjectRegion: https://cloud.google.com/run/quotas).
 */

const START = Date.parse('2026-11-27T13:00:00Z');

/** One run of act under virtual time, each write to `slowRegion` holding its place `holdMs`. */
async function paced(
  model: FleetModel,
  policy: ReturnType<typeof parsePolicy>,
  slow: { region: string; holdMs: number } | null,
) {
  const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
  const time = virtualTime(START);
  const writes: { project: string; region: string; at: number }[] = [];
  const run = {
    ...sim.run,
    updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
      writes.push({ project: u.project, region: u.region, at: time.now() - START });
      if (slow && u.region === slow.region) await time.sleep(slow.holdMs);
      return sim.run.updateMaxInstances(u);
    },
  };
  const report = await reconcileReport(
    policy,
    { ports: { ...sim, run }, clock: () => model.now, wallClock: time.now, sleep: time.sleep },
    { runId: 'counted', deadlineMs: 10 * 60_000, writerId: 'me' },
  );
  return { report, writes };
}

describe('writes counted when they start', () => {
  const SLOW = 'asia-east1'; // first in the plan's order: its writes take the places first
  const FAST = 'us-central1';
  it.each([900, 999, 1_500])(
    'never start more than writesPerMinute in any 60 s of a region when they waited %i ms for a place',
    async (holdMs) => {
      const model = idleFleet('counted-project', { [SLOW]: 2, [FAST]: 8 });
      const { report, writes } = await paced(model, pacedPolicy('counted-project', [SLOW, FAST]), {
        region: SLOW,
        holdMs,
      });
      expect(report.writes.filter((w) => w.cause === 'written')).toHaveLength(10);
      const fast = writes.filter((w) => w.region === FAST).map((w) => w.at);
      // Before, at 900 ms: the first two, held at the gate, started at 0.9 s, counted at 0, and the
      // next minute's two at 60 s: four in 60 s at two a minute.
      expect(busiestMinute(fast), `writes at ${fast.join(', ')}`).toBeLessThanOrEqual(2);
    },
  );

  it('give each project its own budget in a region', async () => {
    const REGION = 'us-central1';
    const projects = ['counted-a', 'counted-b'];
    const model = new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: projects.map((id) => ({
          id,
          pools: [{ region: REGION, quota: 2 }],
          services: [0, 1].map((i) => ({
            name: `idle-${i}`,
            region: REGION,
            gpu: {},
            maxInstances: 3,
            demand: { constant: 0 },
          })),
        })),
      }),
    );
    const policy = parsePolicy({
      version: 1,
      projects,
      regions: [REGION],
      defaults: { max: 3, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      limits: { writesPerMinute: 2, writeConcurrency: 4 },
    });
    const { report, writes } = await paced(model, policy, null);
    expect(report.writes.filter((w) => w.cause === 'written')).toHaveLength(4);
    // Two writes a minute in each project's region: all four at once. Before, keyed by region
    // alone, the second project's two waited a minute behind the first's.
    expect(writes.map((w) => `${w.project} ${w.at}`).sort()).toEqual([
      'counted-a 0',
      'counted-a 0',
      'counted-b 0',
      'counted-b 0',
    ]);
  });
});
