import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import type { FleetInput } from '../../src/emulator/index.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A governed service redeployed with `--no-traffic` and one GPU an instance, while the revision
 * that serves, in the same pool, holds two an instance: its instances are that revision's, so its
 * cap holds two GPUs an instance. Through the emulator and Google's clients, which count a
 * service's cap at its serving revision's GPUs.
 */

const PROJECT = 'revgpus-project';
const REGION = 'us-central1';
const POOL = { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true };
const QUOTA = 8;

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  idleMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: QUOTA }],
      services: [
        {
          name: 'grown',
          region: REGION,
          gpu: { count: 2 },
          maxInstances: 1,
          demand: { constant: 4 },
          noTrafficRevision: { gpu: { count: 1 } },
        },
        { name: 'steady', region: REGION, gpu: {}, maxInstances: 4, demand: { constant: 4 } },
      ],
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 4 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

const runOn = emulatorRuns();

describe('a governed service whose serving revision holds more GPUs an instance than its template', () => {
  it('is counted and raised at the GPUs its serving revision holds: the pool stays within its quota', async () => {
    const { report, emulator: started } = await runOn(fleet, policy, { runId: 'revgpus' });
    // Counted at one GPU an instance, it was raised from 1 to 4 on 3 GPUs of room: 12 GPUs of
    // caps on the quota of 8.
    expect(report.plan?.services.find((s) => s.name === 'grown')?.gpusPerInstance).toBe(2);
    expect(started.violations().violations).toEqual([]);
    expect(started.model.pool(POOL)?.capsGpus).toBeLessThanOrEqual(QUOTA);
    expect(report.writes.find((w) => w.name === 'grown')).toMatchObject({
      cause: 'written',
      from: 1,
      written: 2,
    });
  });
});
