import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { unitKey } from '../../src/core/units.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { twoRegionFleet } from '../support/quota-world.js';
import { reconcile, type RunReport } from '../../src/reconcile/reconcile.js';
import { projectUnitStore, regionalUnitStore } from '../../src/reconcile/unit-lease.js';
import { mortal, pick } from '../support/mortal.js';
import { waitUntil } from '../support/wait.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * The handover of conditions when a project is split into regional units (docs/organization.md,
 * "Regional units"; core/notify.ts handOverConditions): what the whole project left firing in its
 * state moves to the unit of its region, which re-judges it: a condition that still holds keeps
 * firing without a new message, one that ended resolves once, and the project's own project-wide
 * conditions resolve once, saying the project is now governed per region. Real runs against the
 * emulator over gRPC, one file state store shared by every unit; the two units start at the same
 * moment and read the project's state before either saves (so one of them must retry), another
 * writer moves caps between reads and writes, and a unit dies between its two saves.
 */

const P = 'ho-project';
const US = 'us-central1';
const EU = 'europe-west4';
const HOT = `${P}/${US}/nvidia-l4/zonal`;
const OVER = `${P}/${EU}/nvidia-l4/zonal`;
const PRESSURE = `pool.pressure:${HOT}`;
const OVER_BUDGET = `pool.over-budget:${OVER}`;
const PROJECT_WIDE = `governor.degraded:${P}:observation`;
const US_KEY = unitKey({ project: P, region: US });
const EU_KEY = unitKey({ project: P, region: EU });

// us-central1 wants twice its quota (pool.pressure while it lasts); europe-west4's caps are over
// its quota (pool.over-budget until the governor lowers them).
const fleet = () => twoRegionFleet(P, { extra: true });

const policyOf = (regions: string[]): Policy =>
  parsePolicy({
    version: 1,
    projects: [P],
    regions,
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
  });

let emulator: RunningEmulator;
let ports: GooglePorts;
let base: StateStore;
let log: ReturnType<typeof memoryLogger>;
const reports: RunReport[] = [];

beforeEach(async () => {
  reports.length = 0;
  emulator = await startEmulator({ fleet: fleet(), speed: 'manual', operationDelayMs: 20 });
  ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  base = createFileStateStore({ dir: mkdtempSync(join(tmpdir(), 'governor-ho-')) });
  log = memoryLogger();
});

afterEach(async () => {
  await Promise.all([ports.close(), base.close()]);
  await emulator.stop();
});

let seq = 0;
function start(
  region: string | undefined,
  store?: StateStore,
  wholeNow = false,
): Promise<RunReport> {
  const s =
    store ??
    (region === undefined
      ? projectUnitStore(base, () => Promise.resolve([US, EU]))
      : regionalUnitStore(base, region));
  return reconcile(
    policyOf(region === undefined ? [US, EU] : [region]),
    {
      ports,
      store: s,
      sink: null,
      log,
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
    },
    {
      runId: `run-${++seq}`,
      deadlineMs: 60_000,
      ...(region ? { region } : {}),
      ...(wholeNow ? { wholeNow } : {}),
    },
  );
}

async function run(region?: string, store?: StateStore, wholeNow = false): Promise<RunReport> {
  const r = await start(region, store, wholeNow);
  reports.push(r);
  return r;
}

/** The messages of every run about one dedupKey, as [status, run's unit] pairs. */
function about(key: string, from: RunReport[] = reports): string[] {
  return from.flatMap((r) =>
    r.alerts.filter((a) => a.dedupKey === key).map((a: Alert) => a.status),
  );
}

/**
 * Adds to the state under `key` a project-wide condition `dedupKey` (governor.degraded, reason
 * observation) of `region` (null: the whole project's), as a run that could not read something
 * leaves it: a record shaped from the pool.pressure a run left under `from`.
 */
async function leaveObservation(
  key: string,
  dedupKey: string,
  region: string | null,
  summary: string,
  from: string = key,
): Promise<void> {
  const pressure = (await base.loadConditions(from)).state[PRESSURE];
  if (!pressure) throw new Error(`no pool.pressure in the state of ${from}`);
  const { state, version } = await base.loadConditions(key);
  await base.saveConditions(
    key,
    {
      ...state,
      [dedupKey]: {
        ...pressure,
        type: 'governor.degraded',
        region,
        accelerator: null,
        zonalRedundancy: null,
        summary,
        details: { reason: 'observation' },
      },
    },
    version,
  );
}

/** The project governed whole once: its state keeps what fired, and one project-wide condition. */
async function governedWhole(): Promise<void> {
  const whole = await run();
  expect(about(PRESSURE, [whole])).toEqual(['firing']);
  expect(about(OVER_BUDGET, [whole])).toEqual(['firing']);
  await leaveObservation(P, PROJECT_WIDE, null, 'Could not read the services of europe-west4');
  emulator.advance(5 * 60_000);
}

/** A store whose reads of the project's own conditions wait for `n` readers the first time. */
function barrier(n: number, meanwhile: () => void): StateStore {
  let waiting: (() => void)[] = [];
  let open = false;
  return {
    ...pick(base),
    loadConditions: async (key) => {
      const state = await base.loadConditions(key);
      if (key !== P || open) return state;
      await new Promise<void>((done) => {
        waiting.push(done);
        if (waiting.length >= n) {
          open = true;
          meanwhile();
          for (const w of waiting) w();
          waiting = [];
        }
      });
      return state;
    },
  };
}

describe('a project newly split: its regional units take over what it left firing', () => {
  it('both units at once, reading the project state together: each condition resolves once or keeps firing silently', async () => {
    await governedWhole();
    // Another actor raises us-central1's quota while both units hold what they read.
    const shared = barrier(2, () => emulator.setQuota({ project: P, region: US, quota: 5 }));
    const [us, eu] = await Promise.all([
      run(US, regionalUnitStore(shared, US)),
      run(EU, regionalUnitStore(shared, EU)),
    ]);
    expect(us.outcome).toBe('ok');
    expect(eu.outcome).toBe('ok');
    // The pool still under pressure: its unit keeps it firing, without a new message.
    expect(about(PRESSURE, [us, eu])).toEqual([]);
    expect(Object.keys((await base.loadConditions(US_KEY)).state)).toContain(PRESSURE);
    // The caps the whole project lowered: over budget no more, resolved once, by its unit.
    expect(about(OVER_BUDGET, [eu])).toEqual(['resolved']);
    expect(about(OVER_BUDGET, [us])).toEqual([]);
    // The project's own project-wide condition: resolved once, by one unit, saying why.
    const pw = [us, eu].flatMap((r) => r.alerts.filter((a) => a.dedupKey === PROJECT_WIDE));
    expect(pw.map((a) => a.status)).toEqual(['resolved']);
    expect(pw[0]?.summary).toMatch(/the project is now governed per region/);
    // Nothing of the project's is left behind, and both units read it at once (one retried).
    expect((await base.loadConditions(P)).state).toEqual({});
    expect(log.lines.filter((l) => l.message.includes('took over')).length).toBe(2);

    // Later runs: nothing about them again; the pressure is its unit's now.
    for (let i = 0; i < 2; i++) {
      emulator.advance(5 * 60_000);
      await Promise.all([run(US), run(EU)]);
    }
    expect(about(PROJECT_WIDE)).toEqual(['resolved']);
    expect(about(OVER_BUDGET)).toEqual(['firing', 'resolved']);
    expect(about(PRESSURE)).toEqual(['firing']);
    const ids = reports.flatMap((r) => r.alerts.map((a) => a.id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('a unit whose own state another writer saved meanwhile reads it again and finishes the move', async () => {
    // The unit's state is also written outside its lease (a failed delivery's alert, a refused
    // run's lease alert): the unit's save of what it takes then meets a newer version. Retried
    // from the version it read first, every attempt conflicted and the run failed.
    await governedWhole();
    let raced = false;
    const racing: StateStore = {
      ...pick(base),
      saveConditions: async (key, state, version) => {
        if (key === US_KEY && !raced) {
          raced = true;
          const now = await base.loadConditions(US_KEY);
          await base.saveConditions(US_KEY, now.state, now.version);
        }
        return base.saveConditions(key, state, version);
      },
    };
    const us = await run(US, regionalUnitStore(racing, US));
    expect(raced).toBe(true);
    expect(us.outcome).toBe('ok');
    expect(Object.keys((await base.loadConditions(US_KEY)).state)).toContain(PRESSURE);
    expect(Object.keys((await base.loadConditions(P)).state)).not.toContain(PRESSURE);
  });

  it('a unit that dies between its own save and the project save finishes the move next time, nothing told twice', async () => {
    await governedWhole();
    let dead = false;
    const dying: StateStore = mortal(
      {
        ...pick(base),
        saveConditions: async (key, state, version) => {
          const v = await base.saveConditions(key, state, version);
          if (key === US_KEY) dead = true;
          return v;
        },
      },
      () => dead,
    );
    void start(US, regionalUnitStore(dying, US)).catch(() => {});
    const eu = await run(EU);
    await waitUntil('the run to die', () => dead, Boolean, { timeoutMs: 30_000 });
    // The dead unit's state holds what it took; the project's still does too.
    expect(Object.keys((await base.loadConditions(US_KEY)).state)).toContain(PRESSURE);
    expect(Object.keys((await base.loadConditions(P)).state)).toContain(PRESSURE);
    expect(about(OVER_BUDGET, [eu])).toEqual(['resolved']);
    // Cleared as a person would (`governor unlock`); time moves on.
    expect(await base.breakLease(US_KEY)).toBe(true);
    emulator.advance(5 * 60_000);
    const us = await run(US);
    expect(us.outcome).toBe('ok');
    expect(about(PRESSURE, [us])).toEqual([]);
    expect((await base.loadConditions(P)).state).toEqual({});
    // The project-wide condition: resolved once in all, by whichever unit took it.
    expect(about(PROJECT_WIDE)).toEqual(['resolved']);
    emulator.advance(5 * 60_000);
    await Promise.all([run(US), run(EU)]);
    expect(about(PROJECT_WIDE)).toEqual(['resolved']);
    expect(about(OVER_BUDGET)).toEqual(['firing', 'resolved']);
    expect(about(PRESSURE)).toEqual(['firing']);
    expect(Object.keys((await base.loadConditions(EU_KEY)).state)).not.toContain(OVER_BUDGET);
  });
});

describe('a handover of thousands of conditions', () => {
  it('logs one short line naming a few of them and how many more (a log entry is at most 256 KiB)', async () => {
    // https://cloud.google.com/logging/quotas: each line the function logs is one LogEntry.
    await governedWhole();
    const { state, version } = await base.loadConditions(P);
    const pressure = state[PRESSURE];
    if (!pressure) throw new Error('no pool.pressure in the project state');
    const starved = Object.fromEntries(
      Array.from({ length: 4_000 }, (_, i) => [
        `service.starved:${HOT}:inference-service-number-${i}`,
        {
          ...pressure,
          type: 'service.starved' as const,
          service: `inference-service-number-${i}`,
          summary: `inference-service-number-${i} gets 1 instance, short of its demand of 3`,
          details: { cap: 1, demand: 3 },
        },
      ]),
    );
    await base.saveConditions(P, { ...state, ...starved }, version);
    const us = await run(US);
    expect(us.outcome).toBe('ok');
    const line = log.lines.find((l) => l.message.includes('took over'))?.message ?? '';
    expect(line).toMatch(/took over 400\d condition\(s\) the whole project left firing: /);
    expect(line).toMatch(/ and 39\d\d more$/);
    expect(line.length).toBeLessThan(2_000);
  });
});

describe('a project governed whole again takes back what its regional units left firing', () => {
  it('after a gap, once, even when the first run dies between its two saves', async () => {
    await governedWhole();
    await Promise.all([run(US), run(EU)]);
    // Split for more than an hour; then another actor raises the quota (the pool, saturated,
    // wants all of it: still under pressure).
    for (let i = 0; i < 13; i++) {
      emulator.advance(5 * 60_000);
      await Promise.all([run(US), run(EU)]);
    }
    // The last run of the unit of us-central1 left a project-wide condition of its own firing.
    const UNIT_WIDE = `governor.degraded:${P}/${US}:observation`;
    await leaveObservation(US_KEY, UNIT_WIDE, US, 'Could not read the services of us-central1');
    emulator.setQuota({ project: P, region: US, quota: 10 });
    emulator.advance(5 * 60_000);
    const before = reports.length;

    // The first run of the whole project dies right after saving what it took back.
    let dead = false;
    let saves = 0;
    const dying: StateStore = mortal(
      {
        ...pick(base),
        saveConditions: async (key, st, v) => {
          const out = await base.saveConditions(key, st, v);
          if (key === P && ++saves === 1) dead = true;
          return out;
        },
      },
      () => dead,
    );
    void start(
      undefined,
      projectUnitStore(dying, () => Promise.resolve([US, EU])),
    ).catch(() => {});
    await waitUntil('the run to die', () => dead, Boolean, { timeoutMs: 30_000 });
    expect(Object.keys((await base.loadConditions(P)).state)).toContain(PRESSURE);
    expect(Object.keys((await base.loadConditions(US_KEY)).state)).toContain(PRESSURE);
    expect(await base.breakLease(P)).toBe(true);
    emulator.advance(5 * 60_000);

    const whole = await run();
    expect(whole.outcome).toBe('ok');
    // Still under pressure: the project keeps it firing, without a new message.
    expect(about(PRESSURE, [whole])).toEqual([]);
    expect(Object.keys((await base.loadConditions(P)).state)).toContain(PRESSURE);
    const unitWide = whole.alerts.filter((a) => a.dedupKey === UNIT_WIDE);
    expect(unitWide.map((a) => a.status)).toEqual(['resolved']);
    expect(unitWide[0]?.summary).toMatch(/the project is governed whole again/);
    expect((await base.loadConditions(US_KEY)).state).toEqual({});
    expect((await base.loadConditions(EU_KEY)).state).toEqual({});
    emulator.advance(5 * 60_000);
    await run();
    const since = reports.slice(before);
    expect(about(PRESSURE, since)).toEqual([]);
    expect(about(UNIT_WIDE, since)).toEqual(['resolved']);
    expect(about(UNIT_WIDE)).toEqual(['resolved']);
    const ids = reports.flatMap((r) => r.alerts.map((a) => a.id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('after a split of 20 minutes, when the fan-out governs it whole now; not from a command line', async () => {
    await governedWhole();
    await Promise.all([run(US), run(EU)]);
    emulator.advance(5 * 60_000);
    await Promise.all([run(US), run(EU)]);
    // What the unit of europe-west4 left: a project-wide condition of its own, still firing (a
    // record shaped from us-central1's pool.pressure).
    const UNIT_WIDE = `governor.degraded:${P}/${EU}:observation`;
    await leaveObservation(
      EU_KEY,
      UNIT_WIDE,
      EU,
      'Could not read the services of europe-west4',
      US_KEY,
    );
    emulator.advance(10 * 60_000);
    const before = reports.length;
    // A command line's run of the whole project, 20 minutes after the split began: it cannot tell
    // the split ended, so it leaves the units' states alone.
    await run();
    expect(Object.keys((await base.loadConditions(EU_KEY)).state)).toContain(UNIT_WIDE);
    // The organisation's run of the whole project: the fan-out governs it whole now.
    emulator.advance(5 * 60_000);
    const whole = await run(undefined, undefined, true);
    expect(whole.outcome).toBe('ok');
    expect(about(UNIT_WIDE, [whole])).toEqual(['resolved']);
    expect((await base.loadConditions(US_KEY)).state).toEqual({});
    expect((await base.loadConditions(EU_KEY)).state).toEqual({});
    // Once: the next runs, of either kind, say nothing more of it.
    emulator.advance(5 * 60_000);
    await run(undefined, undefined, true);
    await run();
    expect(about(UNIT_WIDE, reports.slice(before))).toEqual(['resolved']);
    const ids = reports.flatMap((r) => r.alerts.map((a) => a.id));
    expect(new Set(ids).size).toBe(ids.length);
  });
});
