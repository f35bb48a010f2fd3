import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { memoryLogger } from '../../src/log.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A raise decided on its read waits for one of the run's `limits.writeConcurrency` places; a
 * write of another region in flight holds it meanwhile. A raise whose place comes with less of the
 * run left than a write and a read take is not sent: it could be neither read back nor lowered
 * back before the run deadline, should another writer fill the pool in the round trip before it.
 *
 * On a fake wall clock over the emulator's model: a read takes 100 ms, a write 3 s, and the
 * decrease of `idle` (us-central1, over its quota of 2) 57.5 s, its operation slow. With one place, the raise of `svc-a`
 * (europe-west4, decided on a read at the start of the act step) waits for it. Right after that
 * read, another writer raises the unmanaged `ext` until the pool of europe-west4 is full.
 */

const PROJECT = 'place-project';
const EAST = 'us-central1';
const WEST = 'europe-west4';
const QUOTA = 8;
const READ_MS = 100;
const WRITE_MS = 3_000;
const DEADLINE_MS = 60_000;

function model(): FleetModel {
  const service = (name: string, region: string, max: number, demand: number) => ({
    name,
    region,
    gpu: {},
    maxInstances: max,
    demand: { constant: demand },
  });
  return new FleetModel(
    validateFleet({
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [
            // Over its quota: idle comes down to fit.
            { region: EAST, quota: 2 },
            { region: WEST, quota: QUOTA },
          ],
          services: [
            service('idle', EAST, 4, 0),
            service('svc-a', WEST, 1, 4),
            service('ext', WEST, 1, 0),
          ],
        },
      ],
    }),
  );
}

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [EAST, WEST],
  defaults: { headroom: 0, max: 4, scaleDownDelay: '0s' },
  services: [{ match: { name: 'ext' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 6000, writeConcurrency: 1 },
});

async function runWith(decreaseMs: number) {
  const m = model();
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  let t = Date.parse('2026-11-27T13:00:00Z');
  let acting = false;
  let filled = false;
  const westCaps = () =>
    m.listServices().reduce((a, s) => a + (s.region === WEST ? s.maxInstances : 0), 0);
  const run = {
    ...sim.run,
    listServices: async (p: string, r: string) => {
      t += READ_MS;
      const read = await sim.run.listServices(p, r);
      // The read before the raises (the first of europe-west4 once the writes began): right
      // after it, another writer fills that pool.
      if (acting && r === WEST && !filled) {
        filled = true;
        const ext = m.findService('ext', PROJECT, WEST);
        m.update(ext, { maxInstances: ext.maxInstances + (QUOTA - westCaps()) });
      }
      return read;
    },
    updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
      acting = true;
      // The decrease's operation is slow; the raise waits for its place meanwhile.
      if (u.name === 'idle') {
        await new Promise((done) => setTimeout(done, 20));
        t += decreaseMs;
      } else t += WRITE_MS;
      return sim.run.updateMaxInstances(u);
    },
  };
  const log = memoryLogger();
  const report = await reconcileReport(
    policy,
    {
      ports: { ...sim, run },
      log,
      clock: () => m.now,
      wallClock: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    },
    { runId: 'place', deadlineMs: DEADLINE_MS, writerId: 'me' },
  );
  return { report, log, filled, westCaps: westCaps() };
}

describe('a raise waiting for its place', () => {
  it('is still sent when its place comes with enough of the run left to verify it', async () => {
    const { report, filled, westCaps } = await runWith(WRITE_MS);
    expect(filled).toBe(true);
    const raise = report.writes.find((w) => w.name === 'svc-a' && w.cause !== 'compensated');
    expect(raise?.cause).toBe('written');
    // Read back and lowered back: the pool ends within its quota.
    expect(report.writes.some((w) => w.name === 'svc-a' && w.cause === 'compensated')).toBe(true);
    expect(westCaps).toBeLessThanOrEqual(QUOTA);
  });

  it('is not sent when its place comes with too little of the run left to read it back', async () => {
    const { report, log, filled, westCaps } = await runWith(57_500);
    expect(filled).toBe(true);
    expect(report.writes.find((w) => w.name === 'idle')?.cause).toBe('written');
    const raise = report.writes.find((w) => w.name === 'svc-a');
    expect(raise?.cause).toBe('deadline');
    expect(raise?.reason).toMatch(/^too little of the run was left to verify it/);
    expect(westCaps).toBeLessThanOrEqual(QUOTA);
    expect(log.lines.some((l) => l.message.includes('not verified'))).toBe(false);
  });
});
