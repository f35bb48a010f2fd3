/**
 * `governor check` asks Cloud Run's TestIamPermissions once per governed service, and Cloud Run
 * counts those against its read quota per minute, project and region. Through the emulator and
 * Google's client: the emulator counts the calls in flight, the client the time each starts (on
 * a virtual clock), and every service still gets its answer. Before, the check sent every
 * service's call as soon as one of its 8 places was free: a region's 30 in the first minute, at
 * a budget of 10.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { checkPolicy } from '../../src/reconcile/preflight.js';
import { virtualTime } from '../support/virtual-time.js';

const PROJECT = 'check-pace-project';
const BUSY = 'us-central1';
const SMALL = 'europe-west4';
const PER_MINUTE = 10;
const counts = { [BUSY]: 30, [SMALL]: 6 };

const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: Object.keys(counts).map((region) => ({ region, quota: 100 })),
      services: Object.entries(counts).flatMap(([region, n]) =>
        Array.from({ length: n }, (_, i) => ({
          name: `svc-${i}`,
          region,
          gpu: {},
          maxInstances: 2,
          ...(region === BUSY && i === 7 ? { iam: { denied: ['run.services.update'] } } : {}),
        })),
      ),
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: Object.keys(counts),
  services: [{ match: {} }],
});

let emulator: RunningEmulator;
let ports: GooglePorts;
let inFlight = 0;
let mostInFlight = 0;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet,
    speed: 'manual',
    faults: async ({ method }) => {
      if (!method.endsWith('Services/TestIamPermissions')) return undefined;
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      // A little latency, as over a network, so that calls sent together overlap here.
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight -= 1;
      return undefined;
    },
  });
  ports = createGooglePorts({ emulatorHost: emulator.host });
});

afterAll(async () => {
  await ports.close();
  await emulator.stop();
});

describe('governor check under Cloud Run read quota', () => {
  it("paces each region's TestIamPermissions per minute, a few in flight, and answers every service", async () => {
    const start = Date.parse('2026-11-27T12:00:00Z');
    // The clock does not move while calls are at the emulator: they take no virtual time.
    let answering = 0;
    const time = virtualTime(start, () => answering > 0);
    const sent: { region: string; at: number }[] = [];
    const test = ports.run.testPermissions?.bind(ports.run);
    if (!test) throw new Error('the Cloud Run adapter tests permissions');
    const run: GooglePorts['run'] = Object.assign(Object.create(ports.run) as GooglePorts['run'], {
      testPermissions: (...args: Parameters<typeof test>) => {
        sent.push({ region: args[1], at: time.now() });
        answering += 1;
        return test(...args).finally(() => (answering -= 1));
      },
    });
    const waits: string[] = [];
    const report = await checkPolicy(policy, { ...ports, run }, null, start, {
      readsPerMinute: PER_MINUTE,
      now: time.now,
      sleep: time.sleep,
      onWait: (m) => waits.push(m),
    });

    // Every service answered, each permission once; the denied one named.
    const services = report.items.filter((i) => i.subject.startsWith('service '));
    expect(services).toHaveLength(2 * (counts[BUSY] + counts[SMALL]));
    expect(new Set(services.map((i) => `${i.subject} ${i.permission}`)).size).toBe(services.length);
    expect(services.filter((i) => i.status !== 'ok').map((i) => i.subject)).toEqual([
      `service ${PROJECT}/${BUSY}/svc-7`,
    ]);
    expect(sent).toHaveLength(counts[BUSY] + counts[SMALL]);

    // At most 8 in flight at the emulator, and never more than the budget in any minute of a region.
    expect(mostInFlight).toBeGreaterThan(1);
    expect(mostInFlight).toBeLessThanOrEqual(8);
    for (const region of Object.keys(counts)) {
      const at = sent.filter((s) => s.region === region).map((s) => s.at);
      for (const t of at)
        expect(at.filter((x) => x >= t && x < t + 60_000).length).toBeLessThanOrEqual(PER_MINUTE);
    }
    // The small region was not held back by the busy one; the busy one took three minutes.
    expect(sent.filter((s) => s.region === SMALL).every((s) => s.at === start)).toBe(true);
    expect(Math.max(...sent.map((s) => s.at)) - start).toBeGreaterThanOrEqual(2 * 60_000);
    // The wait was said once, with the region and how long.
    expect(waits).toEqual([
      `${PROJECT}: 30 governed services in ${BUSY}: their TestIamPermissions go 10 a minute per region (Cloud Run's read quota), about 2 minutes`,
    ]);
  });
});
