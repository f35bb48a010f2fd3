import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { clientConfig } from '../../src/adapters/client-config.js';
import type { GooglePorts } from '../../src/adapters/index.js';
import type { QuotaPreferenceAdapter } from '../../src/adapters/quota-preferences.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { unitKey } from '../../src/core/units.js';
import {
  decideQuotaPreference,
  quotaPreferences,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import type { memoryLogger } from '../../src/log.js';
import type { QuotaRequestPort, StateStore } from '../../src/ports/index.js';
import { UnavailableError } from '../../src/core/errors.js';
import { reconcile, RunFailedError, type RunReport } from '../../src/reconcile/reconcile.js';
import { projectUnitStore, regionalUnitStore } from '../../src/reconcile/unit-lease.js';
import {
  openQuotaWorld,
  quotaPools,
  seedPressureWeek,
  twoRegionFleet,
  type QuotaWorld,
} from '../support/quota-world.js';
import { mortal, pick } from '../support/mortal.js';
import { waitUntil } from '../support/wait.js';

/**
 * The pressure ledger across regional units (docs/organization.md, "Regional units"): a project
 * split into one unit per region keeps its week of evidence and its pending quota requests, each
 * with the unit that owns its pool, and a project governed whole again takes them back. Real runs
 * against the emulator over gRPC, the real Cloud Quotas client, one file state store shared by
 * every unit (as the function's units share one Firestore collection). The two regional units
 * start at the same moment; another actor files by hand between a run's read and its write; a
 * unit dies right after Google filed its request, before it recorded anything. Through all of it
 * a quota request is filed at most once per pool, and each event is published once.
 */

const P = 'qu-project';
const US = 'us-central1';
const EU = 'europe-west4';
const { hot: HOT, calm: CALM } = quotaPools(P);
const QUOTA_ID = 'NvidiaL4GpuAllocPerProjectRegion';

const fleet = () => twoRegionFleet(P);

const policyOf = (regions: string[]): Policy =>
  parsePolicy({
    version: 1,
    projects: [P],
    regions,
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    quotaRequests: {
      enabled: true,
      contactEmail: 'ops@example.com',
      justification: 'Search inference.',
      maxIncrease: 4,
    },
  });

let world: QuotaWorld;
let emulator: RunningEmulator;
let ports: GooglePorts;
let prefs: QuotaPreferenceAdapter;
let base: StateStore;
let log: ReturnType<typeof memoryLogger>;
let other: CloudQuotasClient;
let beforeCreate: (() => Promise<void>) | null;
const reports: RunReport[] = [];

beforeEach(async () => {
  beforeCreate = null;
  reports.length = 0;
  world = await openQuotaWorld(P, {
    emulator: {
      fleet: fleet(),
      operationDelayMs: 20,
      faults: async ({ method }) => {
        if (method.endsWith('/CreateQuotaPreference') && beforeCreate) {
          const act = beforeCreate;
          beforeCreate = null; // the other actor's own create passes through here too
          await act();
        }
        return undefined;
      },
    },
    seed: false,
  });
  ({ emulator, ports, prefs, store: base, log } = world);
  other = new CloudQuotasClient(clientConfig({ emulatorHost: emulator.host }).options);
});

afterEach(async () => {
  await other.close();
  await world.close();
});

/** The whole project's store: its regional units are those of both regions. */
const wholeStore = () => projectUnitStore(base, () => Promise.resolve([US, EU]));

let seq = 0;
function start(
  region: string | undefined,
  store: StateStore = region === undefined ? wholeStore() : regionalUnitStore(base, region),
  q: QuotaRequestPort = prefs,
  wholeNow = false,
): Promise<RunReport> {
  return reconcile(
    policyOf(region === undefined ? [US, EU] : [region]),
    {
      ports,
      store,
      sink: null,
      log,
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
      quotaRequests: q,
    },
    {
      runId: `run-${++seq}`,
      deadlineMs: 60_000,
      ...(region ? { region } : {}),
      ...(wholeNow ? { wholeNow } : {}),
    },
  );
}

async function run(region?: string, wholeNow = false): Promise<RunReport> {
  const r = await start(region, undefined, undefined, wholeNow);
  reports.push(r);
  return r;
}

/** Both regional units, started at the same moment. */
async function both(): Promise<{ us: RunReport; eu: RunReport }> {
  const [us, eu] = await Promise.all([run(US), run(EU)]);
  return { us, eu };
}

const quotaTypes = (r: RunReport) =>
  r.alerts.map((a) => a.type).filter((t) => t.startsWith('quota.'));
const ledgerOf = async (key: string) =>
  (await base.listRuns(key)).find((r) => r.pressure !== undefined)?.pressure;
const atBudget = (l: Awaited<ReturnType<typeof ledgerOf>>, pool: string) =>
  (l?.pools[pool]?.days ?? []).reduce((s, d) => s + d.minutesAtBudget, 0);

/** Every message published over the runs, by id: each exactly once. */
function publishedOnce(): Map<string, Alert> {
  const byId = new Map<string, Alert>();
  for (const a of reports.flatMap((r) => r.alerts)) {
    expect(byId.has(a.id), `${a.id} published twice`).toBe(false);
    byId.set(a.id, a);
  }
  return byId;
}

describe('a project newly split keeps its pressure ledger', () => {
  it("each regional unit starts from the project's week, its own region only, and files once", async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    const { us, eu } = await both();
    // The week of evidence argues for the hot pool at once, as it would have for the project.
    expect(quotaTypes(us)).toEqual(['quota.requested']);
    expect(quotaTypes(eu)).toEqual([]);
    const filed = quotaPreferences(emulator.model);
    expect(filed).toHaveLength(1);
    expect(filed[0]?.dimensions).toEqual({ region: US });
    // 6 × 360 from the project's week, and the 5 minutes since its last run (11:55).
    expect(filed[0]?.justification).toContain('at its budget for 2165 minutes');
    const usLedger = await ledgerOf(unitKey({ project: P, region: US }));
    const euLedger = await ledgerOf(unitKey({ project: P, region: EU }));
    expect(Object.keys(usLedger?.pools ?? {})).toEqual([HOT]);
    expect(Object.keys(euLedger?.pools ?? {})).toEqual([CALM]);
    expect(usLedger?.pools[HOT]?.days).toHaveLength(7);
    expect(euLedger?.pools[CALM]?.days).toHaveLength(7);
    expect(usLedger?.requests?.[HOT]?.state).toBe('pending');
    expect(euLedger?.requests).toBeUndefined();
    // The project's own records are only read.
    expect(await base.listRuns(P)).toHaveLength(1);
    expect(log.lines.map((l) => l.message).join('\n')).toContain(
      `${P}: no pressure ledger of this unit yet: took what is newer from the whole project (1 pool(s), 0 tracked quota request(s))`,
    );

    // Later runs read their own ledger: nothing adopted again, nothing filed again.
    for (let i = 0; i < 2; i++) {
      emulator.advance(5 * 60_000);
      const next = await both();
      expect([...quotaTypes(next.us), ...quotaTypes(next.eu)]).toEqual([]);
    }
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect(atBudget(await ledgerOf(unitKey({ project: P, region: US })), HOT)).toBe(2165 + 10);
    publishedOnce();
  });

  it("a request pending in the project's ledger is tracked by the unit of its pool, and its decision told once", async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    // Governed whole: the project files for its hot pool.
    expect(quotaTypes(await run())).toEqual(['quota.requested']);
    const [filed] = quotaPreferences(emulator.model);
    expect((await ledgerOf(P))?.requests?.[HOT]?.state).toBe('pending');

    // Split: both units at once. Only the unit of us-central1 tracks the request.
    emulator.advance(5 * 60_000);
    const split = await both();
    expect([...quotaTypes(split.us), ...quotaTypes(split.eu)]).toEqual([]);
    expect((await ledgerOf(unitKey({ project: P, region: US })))?.requests?.[HOT]).toMatchObject({
      name: filed?.name,
      by: 'governor',
      state: 'pending',
    });
    expect((await ledgerOf(unitKey({ project: P, region: EU })))?.requests).toBeUndefined();
    expect(quotaPreferences(emulator.model)).toHaveLength(1);

    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: filed?.name ?? '',
      decision: 'granted',
    });
    emulator.advance(5 * 60_000);
    const decided = await both();
    expect(quotaTypes(decided.us).sort()).toEqual(['quota.changed', 'quota.granted']);
    expect(quotaTypes(decided.eu)).toEqual([]);
    emulator.advance(5 * 60_000);
    const after = await both();
    expect([...quotaTypes(after.us), ...quotaTypes(after.eu)]).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });

  it('another actor files for the pool between the unit read and its write: nothing doubled, the unit tracks theirs', async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    beforeCreate = async () => {
      await other.createQuotaPreference({
        parent: `projects/${P}/locations/global`,
        quotaPreferenceId: 'by-hand',
        quotaPreference: {
          service: 'run.googleapis.com',
          quotaId: QUOTA_ID,
          dimensions: { region: US },
          quotaConfig: { preferredValue: '12' },
          contactEmail: 'someone@example.com',
        },
      });
    };
    const first = await both();
    expect([...quotaTypes(first.us), ...quotaTypes(first.eu)]).toEqual([]);
    emulator.advance(5 * 60_000);
    await both();
    expect(quotaPreferences(emulator.model).map((p) => p.name.split('/').pop())).toEqual([
      'by-hand',
    ]);
    expect((await ledgerOf(unitKey({ project: P, region: US })))?.requests?.[HOT]).toMatchObject({
      by: 'found',
      preferredValue: 12,
    });
  });
});

describe('a regional unit that dies right after Google filed its request', () => {
  it('adopts again, settles its planned request against the preferences, and never files twice', async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    let dead = false;
    const dying: QuotaRequestPort = mortal(
      {
        quotaIdOf: (a, z) => prefs.quotaIdOf(a, z),
        listPreferences: (p) => prefs.listPreferences(p),
        getPreference: (n) => prefs.getPreference(n),
        updatePreference: (i) => prefs.updatePreference(i),
        createPreference: async (input) => {
          await prefs.createPreference(input);
          dead = true;
          return new Promise(() => {});
        },
      },
      () => dead,
    );
    // The two units start at once; us-central1's process dies mid-run (no record, no cleanup).
    const usStore = mortal(pick(regionalUnitStore(base, US)), () => dead);
    void start(US, usStore, dying).catch(() => {});
    const eu = await run(EU);
    await waitUntil('the run to die', () => dead, Boolean, { timeoutMs: 30_000 });
    expect(quotaTypes(eu)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    const usKey = unitKey({ project: P, region: US });
    expect(await base.listRuns(usKey)).toEqual([]);
    const [orphan] = (await base.listOutbox(usKey)).entries.filter(
      (e) => e.state === 'pending-outcome' && e.alert.type === 'quota.requested',
    );
    expect(orphan).toBeDefined();
    // Cleared as a person would (`governor unlock`); time moves on.
    expect(await base.breakLease(usKey)).toBe(true);
    emulator.advance(5 * 60_000);

    const next = await run(US);
    expect(next.outcome).toBe('ok');
    const quota = next.alerts.filter((a) => a.type.startsWith('quota.'));
    // The planned event, settled as filed; nothing filed anew.
    expect(quota.map((a) => [a.id, a.details['outcome']])).toEqual([
      [orphan?.alert.id, 'confirmed-by-observation'],
    ]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    const ledger = await ledgerOf(usKey);
    expect(ledger?.requests?.[HOT]).toMatchObject({ state: 'pending', by: 'governor' });
    // The week was adopted again from the project's records, untouched by the dead run: its
    // 2160 minutes and the 10 since its last run (11:55), counted once.
    expect(atBudget(ledger, HOT)).toBe(2170);
    expect(Object.keys(ledger?.pools ?? {})).toEqual([HOT]);
    emulator.advance(5 * 60_000);
    expect(quotaTypes(await run(US))).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });
});

describe("a unit that cannot read the other side's records", () => {
  it('fails the run, records no ledger that misses them, and adopts them next time', async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    const unreachable: StateStore = {
      ...pick(base),
      listRuns: (key) =>
        key === P
          ? Promise.reject(new UnavailableError('the store did not answer'))
          : base.listRuns(key),
    };
    const failed = await start(US, regionalUnitStore(unreachable, US)).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(RunFailedError);
    expect((failed as RunFailedError).report.error).toMatch(/the store did not answer/);
    const usKey = unitKey({ project: P, region: US });
    expect((await base.listRuns(usKey)).map((r) => [r.outcome, r.pressure])).toEqual([
      ['failed', undefined],
    ]);
    expect(quotaPreferences(emulator.model)).toHaveLength(0);
    emulator.advance(5 * 60_000);
    const next = await run(US);
    expect(quotaTypes(next)).toEqual(['quota.requested']);
    expect(atBudget(await ledgerOf(usKey), HOT)).toBe(2170);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });
});

/**
 * Both regional units every 5 minutes, `rounds` times; then Google grants the preference `name`
 * and the next round's unit of us-central1 tells it (with the new quota).
 */
async function splitThenGranted(rounds: number, name: string): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    emulator.advance(5 * 60_000);
    await both();
  }
  decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'granted' });
  emulator.advance(5 * 60_000);
  expect(quotaTypes((await both()).us).sort()).toEqual(['quota.changed', 'quota.granted']);
}

describe('a project governed whole again', () => {
  it("takes its regional units' newer ledgers back, requests and all, after a gap in its own", async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    // Whole first (its own ledger), then split: the us-central1 unit files.
    await run();
    emulator.advance(5 * 60_000);
    const split = await both();
    expect(quotaTypes(split.us)).toEqual([]);
    expect(quotaTypes(await run())).toEqual([]); // whole within the hour: no gap, its own ledger
    // …then split for longer than an hour, the pool's request filed and granted meanwhile.
    emulator.advance(5 * 60_000);
    expect((await ledgerOf(P))?.requests?.[HOT]?.state).toBe('pending');
    const filed = quotaPreferences(emulator.model)[0];
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    await splitThenGranted(14, filed?.name ?? '');

    // Whole again: the project's own ledger is over an hour old, so it reads its units'.
    emulator.advance(5 * 60_000);
    const whole = await run();
    // The grant was told by the unit: the project knows it and tells it no second time.
    expect(quotaTypes(whole)).toEqual([]);
    const ledger = await ledgerOf(P);
    expect(ledger?.requests?.[HOT]).toMatchObject({ name: filed?.name, state: 'granted' });
    expect(Object.keys(ledger?.pools ?? {}).sort()).toEqual([CALM, HOT]);
    const usLedger = await ledgerOf(unitKey({ project: P, region: US }));
    // The units' minutes, not the project's stale ones: the split's hour and more is kept.
    expect(atBudget(ledger, HOT)).toBeGreaterThanOrEqual(atBudget(usLedger, HOT));
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      new RegExp(
        `${P}: this unit's pressure ledger is from .*: took what is newer from ${US}, ${EU}`,
      ),
    );
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });

  it('after a split of 15 minutes, when the fan-out governs it whole now', async () => {
    await seedPressureWeek(base, P, { hot: HOT, calm: CALM });
    // Whole: it files for the pool under pressure. Then split for a quarter of an hour, in which
    // Google grants the request and the us-central1 unit tells it.
    await run();
    const filed = quotaPreferences(emulator.model)[0];
    expect((await ledgerOf(P))?.requests?.[HOT]?.state).toBe('pending');
    await splitThenGranted(2, filed?.name ?? '');
    // Whole again, its own ledger 15 minutes old: a regional unit ran since, so it reads theirs,
    // and tells the grant (and the new quota) no second time.
    emulator.advance(5 * 60_000);
    const whole = await run(undefined, true);
    expect(quotaTypes(whole)).toEqual([]);
    expect((await ledgerOf(P))?.requests?.[HOT]).toMatchObject({
      name: filed?.name,
      state: 'granted',
    });
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      new RegExp(`${P}: this unit's pressure ledger is from .*: took what is newer from`),
    );
    emulator.advance(5 * 60_000);
    expect(quotaTypes(await run(undefined, true))).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });
});
