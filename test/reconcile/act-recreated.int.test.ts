import { describe, expect, it } from 'vitest';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A governed service deleted and created again under the same name by another writer, in the one
 * round trip between the read its raise is decided on and the raise. The new service is a new
 * resource (Cloud Run gives it a new `uid` and `create_time`,
 * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services), here in the
 * pool without zonal redundancy: the raise, sent with the old service's etag, must not land on it.
 *
 * Pools of us-central1 nvidia-l4: with zonal redundancy, quota 12 (svc-a wants 4 at max 1,
 * ext-render at max 1); without, quota 5 (ext-nz at max 3).
 */

const PROJECT = 'recreate-project';
const REGION = 'us-central1';

const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: REGION, quota: 12 },
        { region: REGION, zonalRedundancy: false, quota: 5 },
      ],
      services: [
        { name: 'svc-a', region: REGION, gpu: {}, maxInstances: 1, demand: 4 },
        { name: 'ext-render', region: REGION, gpu: {}, maxInstances: 1, demand: 0 },
        {
          name: 'ext-nz',
          region: REGION,
          gpu: { zonalRedundancy: false },
          maxInstances: 3,
          demand: 0,
        },
      ],
    },
  ],
};

const policy: Policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 4 },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 6000 },
});

const runOn = emulatorRuns();

/** A run whose raise of svc-a finds it deleted and created again without zonal redundancy. */
function run() {
  let recreated = false;
  return runOn(fleet, policy, {
    runId: 'recreate',
    deadlineMs: 30_000,
    emulator: {
      operationDelayMs: 20,
      invariants: { unmanaged: [{ name: 'ext-render' }, { name: 'ext-nz' }] },
    },
    faults: ({ method, request }, emulator) => {
      const name = (request as { service?: { name?: string } }).service?.name ?? '';
      if (recreated || !method.endsWith('/UpdateService') || !name.endsWith('/services/svc-a'))
        return undefined;
      recreated = true;
      // The raise is on its way: svc-a is deleted and created again without zonal redundancy.
      emulator.deleteService({ project: PROJECT, region: REGION, service: 'svc-a' });
      emulator.createService({
        project: PROJECT,
        service: {
          name: 'svc-a',
          region: REGION,
          gpu: { zonalRedundancy: false },
          maxInstances: 1,
        },
      });
      return undefined;
    },
  });
}

describe('act: a governed service deleted and created again between the read and its raise', () => {
  it('in another GPU pool: the raise, sent with the old etag, is refused and nothing lands there', async () => {
    const { report, emulator } = await run();
    expect(report.writes.find((w) => w.name === 'svc-a')).toMatchObject({
      from: 1,
      outcome: 'skipped',
      cause: 'conflict',
    });
    const nz = emulator.state().pools.find((p) => p.region === REGION && !p.zonalRedundancy);
    // ext-nz's 3 and the new svc-a's 1: the raise decided on the other pool took none of it.
    expect(nz?.capsGpus).toBe(4);
    expect(emulator.state().services.find((s) => s.name === 'svc-a')?.maxInstances).toBe(1);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });
});
