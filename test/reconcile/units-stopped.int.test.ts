import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { parsePolicy } from '../../src/core/policy.js';
import { unitKey } from '../../src/core/units.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { reconcile, type RunReport } from '../../src/reconcile/reconcile.js';
import { regionalUnitStore } from '../../src/reconcile/unit-lease.js';
import { twoRegionFleet } from '../support/quota-world.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * A regional unit that stops running while another of its project runs (docs/organization.md,
 * "Regional units"): the fan-out's "has not run" policy merges the project's units, so the running
 * ones say it, once, from the first of them by region name, and it resolves once the stopped one
 * runs again. Real runs against the emulator over gRPC, one file state store shared by the units,
 * on the emulator's clock (the run records' time).
 */

const P = 'stop-project';
const US = 'us-central1';
const EU = 'europe-west4';
const ASIA = 'asia-east1';
const MIN = 60_000;

let emulator: RunningEmulator;
let ports: GooglePorts;
let base: StateStore;
let seq = 0;

beforeEach(async () => {
  emulator = await startEmulator({
    fleet: twoRegionFleet(P),
    speed: 'manual',
    operationDelayMs: 20,
  });
  ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  base = createFileStateStore({ dir: mkdtempSync(join(tmpdir(), 'governor-stop-')) });
});

afterEach(async () => {
  await Promise.all([ports.close(), base.close()]);
  await emulator.stop();
});

/** One run of the regional unit `region`, beside `units` (the regions the fan-out splits into). */
async function run(
  region: string,
  units: string[] = [US, EU],
  foundAt: string | null = null,
): Promise<RunReport> {
  return reconcile(
    parsePolicy({
      version: 1,
      projects: [P],
      regions: [region],
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
    }),
    {
      ports,
      store: regionalUnitStore(base, region, { regions: units, foundAt }),
      sink: null,
      log: memoryLogger(),
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
    },
    { runId: `run-${++seq}`, deadlineMs: 60_000, region },
  );
}

/** What a run said about units that stopped: [status, dedupKey, the regions named]. */
function stopped(r: RunReport): [string, string, string[]][] {
  return r.alerts
    .filter((a) => a.dedupKey.endsWith(':units-stopped'))
    .map((a) => {
      // A resolve carries what the condition last said as `lastDetails`.
      const details = (a.status === 'resolved' ? a.details['lastDetails'] : a.details) as {
        units?: { region: string }[];
      };
      return [a.status, a.dedupKey, (details.units ?? []).map((u) => u.region)];
    });
}

describe('a regional unit that stopped', () => {
  it('is named once by the unit that runs on, and resolved once it runs again', async () => {
    expect(stopped(await run(US))).toEqual([]);
    expect(stopped(await run(EU))).toEqual([]);
    emulator.advance(20 * MIN);
    expect(stopped(await run(US))).toEqual([]);
    expect(stopped(await run(EU))).toEqual([]);
    // europe-west4 stops: 35 minutes later (more than fanout.staleAfter, 30m) us-central1 says so.
    emulator.advance(35 * MIN);
    const said = await run(US);
    expect(stopped(said)).toEqual([['firing', `governor.degraded:${P}/${US}:units-stopped`, [EU]]]);
    expect(said.alerts.find((a) => a.dedupKey.endsWith(':units-stopped'))?.severity).toBe('ERROR');
    // Still stopped: no new message until renotifyAfter.
    emulator.advance(5 * MIN);
    expect(stopped(await run(US))).toEqual([]);
    // It runs again: it says nothing of us-central1 (which runs), and us-central1 resolves it.
    emulator.advance(1 * MIN);
    expect(stopped(await run(EU))).toEqual([]);
    expect(stopped(await run(US))).toEqual([
      ['resolved', `governor.degraded:${P}/${US}:units-stopped`, [EU]],
    ]);
    emulator.advance(5 * MIN);
    expect(stopped(await run(US))).toEqual([]);
  });

  it('a unit whose newest run is dated later than now (a wrong clock or a hand edit) is named once it stops', async () => {
    await run(US);
    await run(EU);
    const eu = unitKey({ project: P, region: EU });
    const [newest] = await base.listRuns(eu);
    if (!newest) throw new Error('no run of europe-west4');
    await base.recordRun(eu, { ...newest, at: '2099-01-01T00:00:00.000Z' });
    emulator.advance(35 * MIN);
    // Taken at its word, europe-west4 ran "in 2099" and would not be named before then.
    expect(stopped(await run(US))).toEqual([
      ['firing', `governor.degraded:${P}/${US}:units-stopped`, [EU]],
    ]);
  });

  it('the other way round, from europe-west4', async () => {
    await run(US);
    await run(EU);
    emulator.advance(31 * MIN);
    expect(stopped(await run(EU))).toEqual([
      ['firing', `governor.degraded:${P}/${EU}:units-stopped`, [US]],
    ]);
  });

  it('a unit that never ran is named once the others have run for staleAfter; by the first of them', async () => {
    // asia-east1 is a unit of the split that never runs; europe-west4 is the first running one.
    const units = [US, EU, ASIA];
    expect(stopped(await run(US, units))).toEqual([]);
    expect(stopped(await run(EU, units))).toEqual([]);
    emulator.advance(20 * MIN);
    expect(stopped(await run(US, units))).toEqual([]);
    expect(stopped(await run(EU, units))).toEqual([]);
    // Their first runs are now 35 minutes old, their last 15: asia-east1 is named.
    emulator.advance(15 * MIN);
    expect(stopped(await run(EU, units))).toEqual([
      ['firing', `governor.degraded:${P}/${EU}:units-stopped`, [ASIA]],
    ]);
    expect(stopped(await run(US, units))).toEqual([]);
  });

  it('a region the discovery counted only just now is not named before it had the time to run', async () => {
    const units = [US, EU, ASIA];
    const old = new Date(Date.now() - 60 * MIN).toISOString();
    await run(US, units, old);
    await run(EU, units, old);
    emulator.advance(20 * MIN);
    await run(US, units, old);
    await run(EU, units, old);
    emulator.advance(15 * MIN);
    // A discovery found a minute ago (on the wall clock) added asia-east1 to the split.
    const fresh = new Date(Date.now() - 1 * MIN).toISOString();
    expect(stopped(await run(EU, units, fresh))).toEqual([]);
    expect(stopped(await run(EU, units, old))).toEqual([
      ['firing', `governor.degraded:${P}/${EU}:units-stopped`, [ASIA]],
    ]);
  });
});
