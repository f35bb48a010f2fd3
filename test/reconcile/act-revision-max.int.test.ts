import { describe, expect, it } from 'vitest';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A raise of a service whose serving revision sets a lower max of its own: the governor writes the
 * service-level max, and the cap in force is the lower of the two
 * (https://cloud.google.com/run/docs/configuring/max-instances), so the raise lands only up to the
 * revision's max. Another writer fills the pool in the raise's round trip: the raise, the
 * governor's own, must still come back in the same run.
 *
 * Quota 12: svc-a wants 4 at max 1, its revision's own max 2; svc-b, svc-c, svc-d held at 1 by the
 * policy; ext-render (not governed) at max 1.
 */

const PROJECT = 'revmax-project';
const REGION = 'us-central1';
const QUOTA = 12;

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
        ...(['a', 'b', 'c', 'd'] as const).map((n) => ({
          name: `svc-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 1,
          ...(n === 'a' ? { revisionMaxInstances: 2 } : {}),
          demand: n === 'a' ? 4 : 1,
        })),
        { name: 'ext-render', region: REGION, gpu: {}, maxInstances: 1, demand: 0 },
      ],
    },
  ],
};

const policy: Policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 4 },
  services: [
    { match: { name: 'ext-*' }, managed: false },
    { match: { name: 'svc-a' } },
    { match: {}, max: 1 },
  ],
  limits: { writesPerMinute: 6000 },
});

const runOn = emulatorRuns();

/** A run in whose raise of svc-a another writer takes every GPU left with svc-a at 1. */
function run() {
  let filled = false;
  return runOn(fleet, policy, {
    runId: 'revmax',
    deadlineMs: 30_000,
    emulator: { operationDelayMs: 20, invariants: { unmanaged: [{ name: 'ext-render' }] } },
    faults: ({ method, request }, emulator) => {
      const name = (request as { service?: { name?: string } }).service?.name ?? '';
      if (filled || !method.endsWith('/UpdateService') || !name.endsWith('/services/svc-a'))
        return undefined;
      filled = true;
      // In the raise's round trip, ext-render takes every GPU left with svc-a at 1.
      emulator.edit({ service: 'ext-render', maxInstances: 8 });
      return undefined;
    },
  });
}

describe("act: a raise held by the serving revision's own max", () => {
  it('lands only up to that max, and still comes back when another writer fills the pool meanwhile', async () => {
    const { report, emulator } = await run();
    expect(report.writes.find((w) => w.name === 'svc-a' && w.cause === 'written')).toMatchObject({
      from: 1,
      written: 4,
    });
    const a = () => emulator.state().services.find((s) => s.name === 'svc-a');
    // Lowered back to where it was: the cap in force 1 again.
    expect(a()?.effectiveMax).toBe(1);
    expect(
      report.writes.find((w) => w.name === 'svc-a' && w.cause === 'compensated'),
    ).toBeDefined();
    expect(emulator.state().pools.find((p) => p.region === REGION)?.capsGpus).toBeLessThanOrEqual(
      QUOTA,
    );
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });
});
