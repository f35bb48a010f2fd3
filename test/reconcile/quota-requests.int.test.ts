import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { clientConfig } from '../../src/adapters/client-config.js';
import type { GooglePorts } from '../../src/adapters/index.js';
import type { QuotaPreferenceAdapter } from '../../src/adapters/quota-preferences.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import {
  decideQuotaPreference,
  quotaPreferences,
  RpcError,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import type { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { reconcile, type RunReport } from '../../src/reconcile/reconcile.js';
import {
  filedBySomeone,
  openQuotaWorld,
  quotaPools,
  twoRegionFleet,
  type QuotaWorld,
} from '../support/quota-world.js';

/**
 * Quota requests in real runs: the emulator over gRPC, the real Cloud Quotas client, the file
 * state store. A week of pressure is in the newest record; the run files once, never twice while
 * pending, hears the decision, and uses a granted quota; another actor's preference is respected.
 */

const P = 'qr-project';
const US = 'us-central1';
const EU = 'europe-west4';
const { hot: HOT } = quotaPools(P);

const fleet = () => twoRegionFleet(P);

const policyOf = (requests: object = { enabled: true, contactEmail: 'ops@example.com' }): Policy =>
  parsePolicy({
    version: 1,
    projects: [P],
    regions: [US, EU],
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    quotaRequests: { justification: 'Search inference.', maxIncrease: 4, ...requests },
  });

let world: QuotaWorld;
let emulator: RunningEmulator;
let ports: GooglePorts;
let prefs: QuotaPreferenceAdapter;
let store: StateStore;
let log: ReturnType<typeof memoryLogger>;
let other: CloudQuotasClient;
let beforeCreate: (() => Promise<void>) | null;
let beforeList: (() => void) | null;
let quotaInfoDenied: boolean;

beforeEach(async () => {
  beforeCreate = null;
  beforeList = null;
  quotaInfoDenied = false;
  world = await openQuotaWorld(P, {
    emulator: {
      fleet: fleet(),
      operationDelayMs: 20,
      faults: async ({ method }) => {
        if (method.endsWith('/GetQuotaInfo') && quotaInfoDenied)
          return new RpcError(
            status.PERMISSION_DENIED,
            "Permission 'cloudquotas.quotas.get' denied",
          );
        if (method.endsWith('/ListQuotaPreferences') && beforeList) {
          const act = beforeList;
          beforeList = null;
          act();
        }
        if (method.endsWith('/CreateQuotaPreference') && beforeCreate) {
          const act = beforeCreate;
          beforeCreate = null; // the other actor's own create passes through here too
          await act();
        }
        return undefined;
      },
    },
  });
  ({ emulator, ports, prefs, store, log } = world);
  other = new CloudQuotasClient(clientConfig({ emulatorHost: emulator.host }).options);
});

afterEach(async () => {
  await other.close();
  await world.close();
});

let seq = 0;
async function run(
  policy: Policy,
  withPort = true,
  options: Partial<Parameters<typeof reconcile>[2]> = {},
): Promise<RunReport> {
  return reconcile(
    policy,
    {
      ports,
      store,
      sink: null,
      log,
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
      ...(withPort ? { quotaRequests: prefs } : {}),
    },
    { runId: `run-${++seq}`, deadlineMs: 60_000, ...options },
  );
}

const types = (r: RunReport) => r.alerts.map((a) => a.type).filter((t) => t.startsWith('quota.'));
const tracked = async () => (await store.listRuns(P))[0]?.pressure?.requests?.[HOT];

describe('quota requests in a run', () => {
  it('files one request for the pool under pressure, with the evidence, never twice while pending; a grant is used next run', async () => {
    const first = await run(policyOf());
    expect(types(first)).toEqual(['quota.requested']);
    const requested = first.alerts.find((a) => a.type === 'quota.requested');
    expect(requested).toMatchObject({ region: US, status: 'event', severity: 'INFO' });
    // This run's busy service is refused at its cap: it wants more than 8, and a request asks at
    // most 4 + maxIncrease 4.
    expect(requested?.details).toMatchObject({ from: 4, preferredValue: 8 });
    const filed = quotaPreferences(emulator.model);
    expect(filed).toHaveLength(1);
    expect(filed[0]).toMatchObject({
      quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
      dimensions: { region: US },
      preferredValue: 8,
      contactEmail: 'ops@example.com',
      reconciling: true,
    });
    expect(filed[0]?.justification).toMatch(
      /^Search inference\. Cloud Run GPU pool us-central1 nvidia-l4: over the last 6 day\(s\)/,
    );
    expect(filed[0]?.justification).toContain('at its budget for 2165 minutes'); // 6 × 360 + this run's 5;
    expect((await tracked())?.state).toBe('pending');

    for (let i = 0; i < 3; i++) {
      emulator.advance(5 * 60_000);
      expect(types(await run(policyOf()))).toEqual([]);
    }
    expect(quotaPreferences(emulator.model)).toHaveLength(1);

    const name = filed[0]?.name ?? '';
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'granted' });
    emulator.advance(5 * 60_000);
    const granted = await run(policyOf());
    expect(types(granted).sort()).toEqual(['quota.changed', 'quota.granted']);
    expect(granted.alerts.find((a) => a.type === 'quota.granted')?.details).toMatchObject({
      grantedValue: 8,
      preferredValue: 8,
    });
    expect(granted.alerts.find((a) => a.type === 'quota.changed')?.details).toMatchObject({
      from: 4,
      to: 8,
    });
    const pool = granted.plan?.pools.find((p) => p.region === US);
    expect(pool?.quota).toBe(8);
    expect(pool?.budget).toBe(8);
    expect((await tracked())?.state).toBe('granted');
    // Within the cooldown nothing more is filed, whatever the pressure.
    emulator.advance(5 * 60_000);
    expect(types(await run(policyOf()))).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('a denial is an event with Google state detail, and nothing is filed again within the cooldown', async () => {
    await run(policyOf());
    const name = quotaPreferences(emulator.model)[0]?.name ?? '';
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name,
      decision: 'denied',
      stateDetail: 'Not enough capacity in us-central1',
    });
    emulator.advance(5 * 60_000);
    const decidedAt = emulator.now().toISOString();
    const denied = await run(policyOf());
    expect(types(denied)).toEqual(['quota.denied']);
    // Dated when the run read the decision: the cooldown counts from it, not from the filing.
    expect(await tracked()).toMatchObject({ state: 'denied', decidedAt });
    const alert = denied.alerts.find((a) => a.type === 'quota.denied');
    expect(alert?.severity).toBe('WARNING');
    expect(alert?.summary).toContain('Not enough capacity in us-central1');
    expect(alert?.details).toMatchObject({ grantedValue: 4, preferredValue: 8 });
    emulator.advance(5 * 60_000);
    expect(types(await run(policyOf()))).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('a decision dated later than now (a wrong clock or a hand edit) is dated by the next run, so its cooldown ends', async () => {
    await run(policyOf());
    const name = quotaPreferences(emulator.model)[0]?.name ?? '';
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'denied' });
    emulator.advance(5 * 60_000);
    expect(types(await run(policyOf()))).toEqual(['quota.denied']);
    const [newest] = await store.listRuns(P);
    const decided = newest?.pressure?.requests?.[HOT];
    if (!newest?.pressure?.requests || !decided) throw new Error('no tracked request');
    await store.recordRun(P, {
      ...newest,
      pressure: {
        ...newest.pressure,
        requests: {
          ...newest.pressure.requests,
          [HOT]: { ...decided, decidedAt: '2099-01-01T00:00:00.000Z' },
        },
      },
    });
    emulator.advance(5 * 60_000);
    const at = emulator.now().toISOString();
    expect(types(await run(policyOf()))).toEqual([]);
    // Kept as it was, the cooldown would end in 2099: nothing would be filed for the pool again.
    expect((await tracked())?.decidedAt).toBe(at);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('another actor files for the same quota between the governor read and its write: nothing doubled, and the next run tracks theirs', async () => {
    beforeCreate = async () => {
      await filedBySomeone(other, P, { id: 'by-hand', value: 12, region: US });
    };
    const first = await run(policyOf());
    expect(types(first)).toEqual([]);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      /no quota request filed: another change won the race/,
    );
    expect(quotaPreferences(emulator.model).map((p) => p.name.split('/').pop())).toEqual([
      'by-hand',
    ]);
    emulator.advance(5 * 60_000);
    expect(types(await run(policyOf()))).toEqual([]);
    expect(await tracked()).toMatchObject({ by: 'found', state: 'pending', preferredValue: 12 });
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: `projects/${P}/locations/global/quotaPreferences/by-hand`,
      decision: 'granted',
    });
    emulator.advance(5 * 60_000);
    expect(types(await run(policyOf())).sort()).toEqual(['quota.changed', 'quota.granted']);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it("someone's pending preference for every region of the quota: tracked for the pool, never overridden by a regional one", async () => {
    // A preference without a region applies to every region that has no preference of its own
    // (resources.proto, QuotaPreference.dimensions). A regional one filed now would take the
    // region out of the person's larger request once both were granted: 8 instead of 20.
    const wide = await filedBySomeone(other, P, { id: 'every-region', value: 20, region: null });
    const first = await run(policyOf());
    expect(types(first)).toEqual([]);
    expect(quotaPreferences(emulator.model).map((p) => p.name.split('/').pop())).toEqual([
      'every-region',
    ]);
    expect(await tracked()).toMatchObject({
      name: wide.name,
      by: 'found',
      state: 'pending',
      preferredValue: 20,
    });
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: wide.name ?? '',
      decision: 'denied',
      stateDetail: 'Not for every region',
    });
    emulator.advance(5 * 60_000);
    const decided = await run(policyOf());
    expect(types(decided)).toEqual(['quota.denied']);
    expect(decided.alerts.find((a) => a.type === 'quota.denied')?.region).toBe(US);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('a lower earlier preference is raised with its etag, not doubled', async () => {
    const earlier = await filedBySomeone(other, P, { id: 'old', value: 5, region: US });
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: earlier.name ?? '',
      decision: 'denied',
    });
    const r = await run(policyOf());
    expect(types(r)).toEqual(['quota.requested']);
    const all = quotaPreferences(emulator.model);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ name: earlier.name, preferredValue: 8, reconciling: true });
  });

  it('after the cooldown, a denied preference that asks what a request would ask is not asked again', async () => {
    await run(policyOf());
    const [filed] = quotaPreferences(emulator.model);
    const name = filed?.name ?? '';
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'denied' });
    emulator.advance(5 * 60_000);
    expect(types(await run(policyOf()))).toEqual(['quota.denied']);
    const [newest] = await store.listRuns(P);
    const decided = newest?.pressure?.requests?.[HOT];
    if (!newest?.pressure?.requests || !decided) throw new Error('no tracked request');
    const longAgo = new Date(emulator.now().getTime() - 8 * 86_400_000).toISOString();
    await store.recordRun(P, {
      ...newest,
      pressure: {
        ...newest.pressure,
        requests: { ...newest.pressure.requests, [HOT]: { ...decided, decidedAt: longAgo } },
      },
    });
    emulator.advance(5 * 60_000);
    // The denied preference still asks 8, all a request may ask (4 + maxIncrease 4).
    expect(types(await run(policyOf()))).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([
      expect.objectContaining({ name, preferredValue: 8, reconciling: false }),
    ]);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(/already asks for 8/);
  });

  it("the region's own lower preference is raised, not left for a pending one for every region", async () => {
    // The region's own preference decides its quota, whatever the one for every region asks
    // (QuotaPreference.dimensions).
    const own = await filedBySomeone(other, P, { id: 'old', value: 5, region: US });
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: own.name ?? '',
      decision: 'denied',
    });
    await filedBySomeone(other, P, { id: 'every-region', value: 20, region: null });
    const r = await run(policyOf());
    expect(types(r)).toEqual(['quota.requested']);
    expect(quotaPreferences(emulator.model).find((p) => p.name === own.name)).toMatchObject({
      preferredValue: 8,
      reconciling: true,
    });
    expect(await tracked()).toMatchObject({ name: own.name, by: 'governor', state: 'pending' });
  });

  it('the quota raised by someone else to the very value a request would ask: nothing filed', async () => {
    beforeList = () => void emulator.setQuota({ project: P, region: US, quota: 8 });
    const r = await run(policyOf());
    expect(types(r)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
  });

  /** Google's quota of the hot pool now (the emulator's), whatever the policy says. */
  const googleQuota = () =>
    emulator.state().pools.find((p) => p.region === US && p.zonalRedundancy)?.quota;

  it("a quota the policy caps below Google's is never 'raised' by a request that would lower Google's", async () => {
    // Google grants 16; the policy holds the pool to 4 (leaving the rest to others), so the pool is
    // at its budget all week. A request for 4 + 4 = 8 would be a decrease at Google's side.
    emulator.setQuota({ project: P, region: US, quota: 16 });
    const capped = parsePolicy({ ...policyOf(), pools: [{ region: US, quota: 4 }] });
    const r = await run(capped);
    expect(types(r)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    expect(googleQuota()).toBe(16);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      /no quota request filed: .*quota is 16 at Google now/,
    );
  });

  it("maxIncrease counts from Google's quota, not from a higher one the policy sets", async () => {
    // The policy plans the pool on 4 GPUs while Google's quota is 2: the request may ask at most
    // maxIncrease (4) above the 2 Google has, whatever the run planned with.
    emulator.setQuota({ project: P, region: US, quota: 2 });
    const r = await run(parsePolicy({ ...policyOf(), pools: [{ region: US, quota: 4 }] }));
    expect(types(r)).toEqual(['quota.requested']);
    const requested = r.alerts.find((a) => a.type === 'quota.requested');
    expect(requested?.details).toMatchObject({ from: 2, preferredValue: 6 });
    expect(quotaPreferences(emulator.model).map((p) => p.preferredValue)).toEqual([6]);
  });

  it('the quota raised by someone else after the run read it: no request for less is filed', async () => {
    // Between the observation (quota 4) and the filing, someone raises the quota to 16.
    beforeList = () => void emulator.setQuota({ project: P, region: US, quota: 16 });
    const r = await run(policyOf());
    expect(types(r)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    expect(googleQuota()).toBe(16);
  });

  it("a request is told against Google's quota when it was filed: one denied after the quota rose is not a partial grant", async () => {
    // The run planned with 4; someone raises Google's quota to 5 before it files for 8. Google
    // then denies: the granted value stays 5 (QuotaConfig.granted_value, "Granted quota value"),
    // which is the quota the request was filed against, so nothing of it was granted.
    beforeList = () => void emulator.setQuota({ project: P, region: US, quota: 5 });
    const r = await run(policyOf());
    const requested = r.alerts.find((a) => a.type === 'quota.requested');
    expect(requested?.details).toMatchObject({ from: 5, preferredValue: 8 });
    expect(requested?.summary).toMatch(/of 8 in .*\(now 5\)/);
    expect(await tracked()).toMatchObject({ from: 5, preferredValue: 8, state: 'pending' });

    const [filed] = quotaPreferences(emulator.model);
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: filed?.name ?? '',
      decision: 'denied',
      stateDetail: 'Not enough capacity',
    });
    emulator.advance(5 * 60_000);
    const next = await run(policyOf());
    const denied = next.alerts.find((a) => a.type === 'quota.denied');
    expect(denied?.details).toMatchObject({ from: 5, grantedValue: 5, preferredValue: 8 });
    expect(denied?.summary).toMatch(/did not grant the GPU quota of 8/);
    expect(denied?.summary).not.toMatch(/granted part/);
  });

  it("Google's quota that cannot be read again before filing: nothing filed, governor.degraded names the call", async () => {
    beforeList = () => void (quotaInfoDenied = true);
    const r = await run(policyOf());
    expect(types(r)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    const degraded = r.alerts.find(
      (a) => a.type === 'governor.degraded' && a.details['reason'] === 'quota-requests',
    );
    expect(JSON.stringify(degraded?.details)).toContain(
      'quotaInfos/NvidiaL4GpuAllocPerProjectRegion',
    );
    expect(JSON.stringify(degraded?.details)).toContain('cloudquotas.quotas.get');
  });

  it('a run that asks a person (governor apply without --yes) files a request only once they confirm that request', async () => {
    // The plan's prompt is about cap changes, and a plan with none asks nothing: a quota request,
    // a write at Google seen by Google's staff, is asked for on its own.
    const asked: unknown[] = [];
    const declined = await run(policyOf(), true, {
      confirm: async () => true,
      confirmQuotaRequest: async (r) => {
        asked.push(r);
        return false;
      },
    });
    expect(types(declined)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    expect(asked).toEqual([
      expect.objectContaining({
        project: P,
        region: US,
        accelerator: 'nvidia-l4',
        from: 4,
        preferredValue: 8,
        kind: 'create',
      }),
    ]);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      /no quota request filed: not confirmed/,
    );
    expect((await store.listOutbox(P)).entries).toEqual([]);
    expect(await tracked()).toBeUndefined();
    emulator.advance(5 * 60_000);
    const yes = await run(policyOf(), true, { confirmQuotaRequest: async () => true });
    expect(types(yes)).toEqual(['quota.requested']);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  /**
   * A run whose person answers the quota request's prompt 10 minutes later, on a wall clock the
   * answer moves: the run's deadline (1 minute) and its lease (2) are long over by then. `meanwhile`
   * runs at the answer, on the wall clock's time then.
   */
  async function answeredLate(runId: string, meanwhile: (at: number) => Promise<void>) {
    let t = Date.now();
    const report = await reconcile(
      policyOf(),
      {
        ports,
        store,
        sink: null,
        log,
        now: () => Promise.resolve(emulator.now().getTime()),
        sleep: async () => {},
        quotaRequests: prefs,
        wallClock: () => t,
      },
      {
        runId,
        deadlineMs: 60_000,
        confirmQuotaRequest: async () => {
          t += 10 * 60_000;
          await meanwhile(t);
          return true;
        },
      },
    );
    return { report, t };
  }

  it('files a request confirmed minutes later: the leases and the deadline count from the answer', async () => {
    // On a wall clock that the person's 10 minutes move: the run's deadline (1 minute) and its
    // lease (2) were long over at the answer. Before, the planned event could not be stored
    // ("the run deadline had passed") and nothing was filed.
    const atAnswer: Awaited<ReturnType<StateStore['readLease']>>[] = [];
    const { report, t } = await answeredLate('run-late-answer', async () => {
      atAnswer.push(await store.readLease(P));
    });
    expect(report.outcome).toBe('ok');
    expect(types(report)).toEqual(['quota.requested']);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect((await store.listOutbox(P)).entries).toEqual([]);
    // At the answer the lease had run out (taken for 2 minutes); it was renewed before the filing.
    expect(atAnswer).toHaveLength(1);
    expect(Date.parse(atAnswer[0]?.expiresAt ?? '')).toBeLessThan(t);
    expect(await tracked()).toMatchObject({ preferredValue: 8, state: 'pending' });
  });

  it('files nothing when another run took the lease while the person answered', async () => {
    // The lease (2 minutes) ran out during a 10-minute answer and another run of the same store
    // took it: that run may be filing for the same pool. The raises make none on a lease another
    // holds (act.ts); the filing makes none either.
    const { report } = await answeredLate('run-late-answer-lost', async (at) => {
      const other = await store.acquireLease(P, 'other-run', 120_000, new Date(at).toISOString());
      expect(other.acquired).toBe(true);
    });
    expect(types(report)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(0);
    expect((await store.listOutbox(P)).entries).toEqual([]);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      /no quota request filed: the lease of .* is now held by other-run/,
    );
    // The other run's lease is left to it.
    expect((await store.readLease(P))?.holder).toBe('other-run');
  });

  it('files nothing beside a preference for every region someone filed while the person answered', async () => {
    // What the run listed before the prompt is minutes old at the answer: a preference for every
    // region filed meanwhile is the pool's pending request (as when listed before the prompt), and
    // a regional one filed beside it would take the region out of it once granted.
    const { report } = await answeredLate('run-late-answer-wide', async () => {
      await filedBySomeone(other, P, { id: 'every-region', value: 20, region: null });
    });
    expect(types(report)).toEqual([]);
    expect(quotaPreferences(emulator.model).map((p) => p.name.split('/').pop())).toEqual([
      'every-region',
    ]);
    expect((await store.listOutbox(P)).entries).toEqual([]);
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      /no quota request filed: .*changed while the request was being confirmed/,
    );
  });

  it("files nothing for less than Google's quota raised while the person answered", async () => {
    // Asked 4 → 8; the quota is 8 at the answer: a preference for 8 would raise nothing, and a
    // lower one would be a decrease, which Google applies at once.
    const { report } = await answeredLate('run-late-answer-raised', async () => {
      emulator.setQuota({ project: P, region: US, quota: 8 });
    });
    expect(types(report)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    expect(await tracked()).toBeUndefined();
  });

  it('files nothing for a pool the run no longer governs (its region dropped from the policy), whatever its week of pressure', async () => {
    // The ledger keeps the us-central1 pool's days after the policy drops the region: the
    // run did not observe or plan that pool, and writes nothing at Google for it.
    const r = await run(parsePolicy({ ...policyOf(), regions: [EU] }));
    expect(r.plan?.pools.map((p) => p.region)).toEqual([EU]);
    expect(types(r)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
  });

  it('files nothing when off, in a dry run, or without the port; the recommendation is still recorded', async () => {
    expect(types(await run(policyOf({ enabled: false })))).toEqual([]);
    emulator.advance(60_000);
    const dry = parsePolicy({ ...policyOf(), mode: 'dry-run' });
    expect(types(await run(dry))).toEqual([]);
    emulator.advance(60_000);
    expect(types(await run(policyOf(), false))).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(0);
    expect((await store.listRuns(P))[0]?.pressure?.pools[HOT]?.days.length).toBe(7);
  });
});
