import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * The min instances of a service whose traffic is pinned on an older revision: the template shows
 * the latest revision (deployed with `--no-traffic`, min 1), while the revision that serves keeps 3
 * min instances of its own. A revision-level min starts its instances whenever the revision is in
 * the traffic split ("Revisions and minimum instances",
 * https://cloud.google.com/run/docs/configuring/min-instances), so the service keeps 3 warm and its
 * floor is 3, not the template's 1. svc-busy wants the whole pool; another writer raises svc-busy's
 * max by hand between the runs.
 */

const PROJECT = 'revmin-project';
const REGION = 'us-central1';
const QUOTA = 8;

const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: QUOTA }],
      services: [
        {
          name: 'svc-pinned',
          region: REGION,
          gpu: {},
          maxInstances: 4,
          revisionMinInstances: 3,
          noTrafficRevision: { minInstances: 1 },
          demand: 0,
        },
        { name: 'svc-busy', region: REGION, gpu: {}, maxInstances: 4, demand: 12 },
      ],
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

const runOn = emulatorRuns();

describe("plan: the serving revision's own min instances are the service's", () => {
  it('never plans the pinned service below what its serving revision keeps warm', async () => {
    const { report, emulator, again } = await runOn(fleet, policy, { runId: 'revmin-0' });
    const planned = (r: typeof report) => r.plan?.services.find((s) => s.name === 'svc-pinned');
    expect(planned(report)?.floor).toBe(3);
    expect(planned(report)?.to).toBeGreaterThanOrEqual(3);
    const cap = () => emulator.state().services.find((s) => s.name === 'svc-pinned')?.effectiveMax;
    expect(cap()).toBeGreaterThanOrEqual(3);
    // Another writer gives svc-busy the pool by hand; the next run still keeps svc-pinned at 3.
    emulator.edit({ service: 'svc-busy', maxInstances: 8 });
    emulator.advance(5 * 60_000);
    const next = await again('revmin-1');
    expect(planned(next)?.floor).toBe(3);
    expect(planned(next)?.to).toBeGreaterThanOrEqual(3);
    expect(cap()).toBeGreaterThanOrEqual(3);
    expect(emulator.violations().violations).toEqual([]);
  });
});
