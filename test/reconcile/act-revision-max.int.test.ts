import { describe, expect, it } from 'vitest';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A raise of a service whose serving revision comes to set a lower max of its own: the governor
 * writes the service-level max, and the cap in force is the lower of the two
 * (https://cloud.google.com/run/docs/configuring/max-instances). The planner plans no cap above
 * a revision's own max it has read (below), so the raise meets one only when a deploy lowers it
 * after the raise landed, before the read that verifies it; another writer fills the pool in the
 * same round trip. The raise, the governor's own, must still come back in the same run.
 *
 * Quota 12: svc-a wants 4 at max 1; svc-b, svc-c, svc-d held at 1 by the policy; ext-render (not
 * governed) at max 1.
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

/**
 * A run in whose raise of svc-a, once the raise was sent, a deploy gives svc-a a revision of max 2
 * and another writer takes every GPU left with svc-a at 1.
 */
function run() {
  let sent = false;
  let acted = false;
  return runOn(fleet, policy, {
    runId: 'revmax',
    deadlineMs: 30_000,
    emulator: { operationDelayMs: 20, invariants: { unmanaged: [{ name: 'ext-render' }] } },
    faults: ({ method, request }, emulator) => {
      if (acted) return undefined;
      const name = (request as { service?: { name?: string } }).service?.name ?? '';
      if (!sent) {
        sent = method.endsWith('/UpdateService') && name.endsWith('/services/svc-a');
        return undefined;
      }
      // The first call after the raise (its operation's poll, or the verify read): it landed.
      acted = true;
      emulator.deploy({ service: 'svc-a', seconds: 0, revisionMaxInstances: 2 });
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

/**
 * The same service left alone: demand 6 at a revision max of 2, beside svc-e refused at its cap.
 * Planned past the revision's max, every run wrote svc-a's service-level max 6 again (2 writes an
 * hour each 10 minutes of runs: rule 7 broken), the cap in force stayed 2, and the 4 instances
 * planned for it were refused to svc-e.
 */
const calm = {
  ...fleet,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: QUOTA }],
      services: [
        {
          name: 'svc-a',
          region: REGION,
          gpu: {},
          maxInstances: 3,
          revisionMaxInstances: 2,
          demand: 6,
        },
        { name: 'svc-e', region: REGION, gpu: {}, maxInstances: 3, demand: 12 },
      ],
    },
  ],
};

describe("plan: the serving revision's own max is the service's ceiling", () => {
  it('gives the room it bounds to others, and planning again writes nothing, though another writer edits meanwhile', async () => {
    const open = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
    });
    const { report, emulator, again } = await runOn(calm, open, { runId: 'calm-0' });
    const state = (name: string) => emulator.state().services.find((s) => s.name === name);
    // svc-a is not written past its revision's 2; svc-e takes the other 10.
    expect(report.writes.filter((w) => w.name === 'svc-a')).toEqual([]);
    expect(state('svc-a')?.effectiveMax).toBe(2);
    expect(state('svc-e')?.effectiveMax).toBe(QUOTA - 2);
    const later = [];
    for (let run = 1; run <= 3; run++) {
      emulator.advance(5 * 60_000);
      later.push(...(await again(`calm-${run}`)).writes);
    }
    expect(later).toEqual([]);
    // Another writer sets svc-a's service-level max to 1 by hand: the next run gives it back
    // up to its revision's 2 (svc-e, refused, keeps what the quota leaves), never past it.
    emulator.edit({ service: 'svc-a', maxInstances: 1 });
    emulator.advance(5 * 60_000);
    const back = await again('calm-edited');
    expect(back.writes.find((w) => w.name === 'svc-a')).toMatchObject({ from: 1, written: 2 });
    expect(state('svc-a')?.effectiveMax).toBe(2);
    emulator.advance(5 * 60_000);
    expect((await again('calm-after')).writes).toEqual([]);
    expect(emulator.state().pools.find((p) => p.region === REGION)?.capsGpus).toBeLessThanOrEqual(
      QUOTA,
    );
    expect(emulator.violations().violations).toEqual([]);
  });
});
