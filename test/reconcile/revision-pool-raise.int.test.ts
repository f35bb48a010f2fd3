import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { status } from '@grpc/grpc-js';
import { RpcError, type FleetInput } from '../../src/emulator/index.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A governed service redeployed with another GPU pool and `--no-traffic`: its template is in the
 * no-zonal pool, while the revision that serves, which sets no max of its own, holds zonal GPUs.
 * The service-level max bounds that revision's instances (ServiceScaling.max_instance_count, "the
 * total instance count for the service in all revisions with specified traffic"), so raising it
 * lets the serving revision take more of the zonal pool. Through the emulator and Google's
 * clients, which count the service's cap in its serving revision's pool.
 */

const PROJECT = 'revraise-project';
const REGION = 'us-central1';
const ZONAL = { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true };

/** `servingMax`: the serving revision's own max (absent: unset); `max`: the service-level max. */
const fleet = (max: number, servingMax?: number): FleetInput => ({
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  idleMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: REGION, quota: 4 },
        { region: REGION, zonalRedundancy: false, quota: 8 },
      ],
      services: [
        {
          name: 'moved',
          region: REGION,
          gpu: {},
          maxInstances: max,
          ...(servingMax === undefined ? {} : { revisionMaxInstances: servingMax }),
          demand: { constant: 4 },
          noTrafficRevision: { gpu: { zonalRedundancy: false } },
        },
        // Governed, in the zonal pool, using all the cap it has.
        { name: 'steady', region: REGION, gpu: {}, maxInstances: 3, demand: { constant: 3 } },
      ],
    },
  ],
});

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 4 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

const runEmulator = emulatorRuns();

async function runOn(max: number, servingMax?: number, revisionsDenied = false) {
  const { report, emulator } = await runEmulator(fleet(max, servingMax), policy, {
    runId: 'revraise',
    // The governor may not read revisions (run.revisions.get not granted).
    faults: ({ method }) =>
      revisionsDenied && method.endsWith('/GetRevision')
        ? new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied')
        : undefined,
  });
  return { report, zonal: emulator.model.pool(ZONAL), violations: emulator.violations() };
}

describe('a governed service whose serving revision is in another pool than its template', () => {
  it('is not raised when that would let its serving revision take more of its own pool', async () => {
    // The zonal pool: steady 3 and moved's serving revision, bounded by the service-level max 1,
    // fill the quota of 4. Raising moved to 4 on the no-zonal pool's room (8) took the zonal pool
    // to 7 GPUs of caps.
    const { report, zonal, violations } = await runOn(1);
    expect([...(zonal?.services ?? [])].sort()).toEqual(['moved', 'steady']);
    expect(report.plan?.services.find((s) => s.name === 'moved')?.to).toBe(4);
    expect(zonal?.capsGpus).toBeLessThanOrEqual(4);
    expect(violations.violations).toEqual([]);
    const moved = report.writes.find((w) => w.name === 'moved');
    expect(moved?.written ?? null).toBeNull();
    expect(moved?.cause).toBe('no-room');
    expect(moved?.reason).toMatch(
      /^no room it may take: service\/moved revision moved-\S+ \(serving in another pool than its template\) holds GPUs of the us-central1 nvidia-l4 pool/,
    );
    // Every run skips it while that revision serves, and a revision cannot be changed: the
    // reason says what ends it, as a command to copy.
    expect(moved?.reason).toContain('every run until that revision stops serving');
    expect(moved?.reason).toContain(
      `gcloud run services update-traffic moved --project ${PROJECT} --region ${REGION} --to-latest`,
    );
    expect(moved?.reason).not.toContain('that revision sets a max of its own');
  });

  it('is raised when its serving revision sets a max of its own that the raise does not lift', async () => {
    // Own max 1, under the service-level max 2: the zonal pool counts it at 1 whatever the raise.
    const { report, zonal, violations } = await runOn(2, 1);
    expect(report.writes.find((w) => w.name === 'moved')).toMatchObject({
      cause: 'written',
      written: 4,
    });
    expect(zonal?.capsGpus).toBeLessThanOrEqual(4);
    expect(violations.violations).toEqual([]);
  });

  it('is not raised while its serving revisions cannot be read: which pool they draw on is unknown', async () => {
    const { report, zonal, violations } = await runOn(1, undefined, true);
    // Uncounted in the zonal pool, the revision left room there: steady was raised to 4 beside
    // it and moved to 4 on its template's pool, 8 GPUs of caps on the quota of 4.
    expect(zonal?.capsGpus).toBeLessThanOrEqual(4);
    expect(violations.violations).toEqual([]);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.map((w) => [w.name, w.cause]).sort()).toEqual([
      ['moved', 'pool-unreadable'],
      ['steady', 'pool-unreadable'],
    ]);
    for (const w of raises)
      expect(w.reason).toContain('the serving revisions of moved could not be read');
  });
});
