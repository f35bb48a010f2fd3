import { status } from '@grpc/grpc-js';
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { clientConfig } from '../../src/adapters/client-config.js';
import type { GooglePorts } from '../../src/adapters/index.js';
import type { QuotaPreferenceAdapter } from '../../src/adapters/quota-preferences.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import {
  decideQuotaPreference,
  quotaPreferences,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import { RpcError } from '../../src/emulator/rpc.js';
import type { memoryLogger } from '../../src/log.js';
import type { QuotaRequestPort, StateStore } from '../../src/ports/index.js';
import { reconcile, type RunReport } from '../../src/reconcile/reconcile.js';
import { preferenceId } from '../../src/reconcile/quota-requests.js';
import {
  filedBySomeone,
  openQuotaWorld,
  quotaPools,
  twoRegionFleet,
  type QuotaWorld,
} from '../support/quota-world.js';
import { mortal, pick } from '../support/mortal.js';
import { waitUntil } from '../support/wait.js';

/**
 * Quota requests are as safe as cap writes (docs/rules.md, "Alerts": an event is stored before the writes
 * it describes and kept until it is published; a denied permission names the permission and the
 * resource). Real runs against the emulator over gRPC with the real Cloud Quotas client and the
 * file state store:
 *
 * - the planned `quota.requested` is in the outbox before the preference is filed;
 * - a run that dies between storing it and filing, or between filing and reporting, leaves it for
 *   the next run, which files at most once in all and publishes it exactly once, settled against
 *   the preferences it lists (confirmed or not), with another actor changing things in between;
 * - a failing preference call (denied, unavailable, invalid) raises `governor.degraded` and never
 *   stops the caps from being governed.
 *
 * "Dies" is a process that stops at that point: from then on none of its calls to the store or to
 * Cloud Quotas answers (no finally, no cleanup, the lease left held), as after a SIGKILL.
 */

const P = 'qs-project';
const US = 'us-central1';
const EU = 'europe-west4';
const { hot: HOT } = quotaPools(P);
const PARENT = `projects/${P}/locations/global`;

// europe-west4 is over its quota (caps 6 on 4): every run has a cap to lower there.
const fleet = (denied: string[] = []) => twoRegionFleet(P, { extra: true, denied });

const policy: Policy = parsePolicy({
  version: 1,
  projects: [P],
  regions: [US, EU],
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
let store: StateStore;
let log: ReturnType<typeof memoryLogger>;
let other: CloudQuotasClient;
/** Answers a Cloud Quotas preference RPC with an error instead of its handler (once each). */
let fault: ((method: string) => Promise<RpcError | undefined>) | null;
const reports: RunReport[] = [];

async function setUp(denied: string[] = []): Promise<void> {
  fault = null;
  reports.length = 0;
  world = await openQuotaWorld(P, {
    emulator: {
      fleet: fleet(denied),
      operationDelayMs: 20,
      faults: async ({ method }) =>
        method.includes('QuotaPreference') && fault ? fault(method) : undefined,
    },
    retry: { maxAttempts: 2, minBackoffMs: 10, maxBackoffMs: 20, attemptTimeoutMs: 5_000 },
  });
  ({ emulator, ports, prefs, store, log } = world);
  other = new CloudQuotasClient(clientConfig({ emulatorHost: emulator.host }).options);
}

afterEach(async () => {
  await other.close();
  await world.close();
});

let seq = 0;
function start(
  s: StateStore = store,
  q: QuotaRequestPort = prefs,
): { runId: string; done: Promise<RunReport> } {
  const runId = `run-${++seq}`;
  const done = reconcile(
    policy,
    {
      ports,
      store: s,
      sink: null,
      log,
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
      quotaRequests: q,
    },
    { runId, deadlineMs: 60_000 },
  );
  return { runId, done };
}

async function run(): Promise<RunReport> {
  const r = await start().done;
  reports.push(r);
  return r;
}

const quotaAlerts = (r: RunReport) => r.alerts.filter((a) => a.type.startsWith('quota.'));
const degraded = (r: RunReport) =>
  r.alerts.find((a) => a.type === 'governor.degraded' && a.dedupKey.endsWith(':quota-requests'));
const tracked = async () => (await store.listRuns(P))[0]?.pressure?.requests?.[HOT];
/** The planned quota requests in the outbox (a dead run leaves its planned caps events too). */
const pendingInOutbox = async () =>
  (await store.listOutbox(P)).entries.filter(
    (e) => e.state === 'pending-outcome' && e.alert.type === 'quota.requested',
  );

/** Every message published over the runs, by id: each exactly once. */
function publishedOnce(): Map<string, Alert> {
  const byId = new Map<string, Alert>();
  for (const a of reports.flatMap((r) => r.alerts)) {
    expect(byId.has(a.id), `${a.id} published twice`).toBe(false);
    byId.set(a.id, a);
  }
  return byId;
}

/** A run that dies right after storing its planned quota request, before filing it. */
async function dieAfterStoring(): Promise<void> {
  let dead = false;
  const base = store;
  const dying: StateStore = mortal(
    {
      ...pick(base),
      putOutbox: async (project, entries) => {
        const n = await base.putOutbox(project, entries);
        if (
          entries.some((e) => e.state === 'pending-outcome' && e.alert.type === 'quota.requested')
        )
          dead = true;
        return n;
      },
    },
    () => dead,
  );
  void start(
    dying,
    mortal(prefs, () => dead),
  ).done.catch(() => {});
  await waitUntil('the run to die', () => dead, Boolean, { timeoutMs: 30_000 });
  await settleDeath();
}

/** A run that dies right after Google filed its preference, before it heard the answer. */
async function dieAfterFiling(): Promise<void> {
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
  void start(
    mortal(pick(store), () => dead),
    dying,
  ).done.catch(() => {});
  await waitUntil('the run to die', () => dead, Boolean, { timeoutMs: 30_000 });
  await settleDeath();
}

/** The dead run's lease is cleared as a person would (`governor unlock`), time moves on. */
async function settleDeath(): Promise<void> {
  expect(await store.breakLease(P)).toBe(true);
  emulator.advance(5 * 60_000);
}

describe('quota.requested is stored before the preference is filed', () => {
  beforeEach(() => setUp());

  it('the planned event is in the outbox (pending outcome) when CreateQuotaPreference arrives, and the real one replaces it', async () => {
    const seenAtCreate: string[] = [];
    fault = async (method) => {
      if (method.endsWith('/CreateQuotaPreference')) {
        for (const e of await pendingInOutbox())
          seenAtCreate.push(`${e.alert.type} ${String(e.alert.details['outcome'])}`);
      }
      return undefined;
    };
    const r = await run();
    expect(seenAtCreate).toEqual(['quota.requested pending-outcome']);
    const requested = quotaAlerts(r);
    expect(requested.map((a) => a.type)).toEqual(['quota.requested']);
    expect(requested[0]?.details['outcome']).toBeUndefined();
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect((await store.listOutbox(P)).entries).toEqual([]);
  });

  it('another actor files first between the read and the create: nothing filed, the planned event withdrawn, nothing published', async () => {
    fault = async (method) => {
      if (!method.endsWith('/CreateQuotaPreference')) return undefined;
      fault = null; // the other actor's own create passes through here too
      await filedBySomeone(other, P, { id: 'by-hand', value: 12, region: US });
      return undefined;
    };
    const r = await run();
    expect(quotaAlerts(r)).toEqual([]);
    expect(degraded(r)).toBeUndefined();
    expect((await store.listOutbox(P)).entries).toEqual([]);
    expect(quotaPreferences(emulator.model).map((p) => p.name.split('/').pop())).toEqual([
      'by-hand',
    ]);
  });
});

describe('a run that dies around filing', () => {
  beforeEach(() => setUp());

  it('dies after storing, before filing: the next run files once, and the stored event is published once as not filed', async () => {
    await dieAfterStoring();
    expect(quotaPreferences(emulator.model)).toHaveLength(0);
    const [orphan] = await pendingInOutbox();
    expect(orphan?.alert.type).toBe('quota.requested');

    const next = await run();
    expect(next.outcome).toBe('ok');
    const quota = quotaAlerts(next);
    const settled = quota.find((a) => a.id === orphan?.alert.id);
    expect(settled?.details).toMatchObject({ outcome: 'not-confirmed', seenNow: null });
    expect(settled?.summary).toMatch(
      /not confirmed .*no preference for this quota shows: not filed/,
    );
    // This run files it, once, and says so with its own event.
    const filed = quota.filter((a) => a.id !== orphan?.alert.id);
    expect(filed.map((a) => [a.type, a.runId, a.details['outcome']])).toEqual([
      ['quota.requested', next.runId, undefined],
    ]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect((await store.listOutbox(P)).entries).toEqual([]);

    emulator.advance(5 * 60_000);
    expect(quotaAlerts(await run())).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    const once = publishedOnce();
    expect([...once.values()].filter((a) => a.type === 'quota.requested')).toHaveLength(2);
  });

  it('dies after storing; the next run cannot list at first: nothing filed for the pool until the planned request is settled', async () => {
    await dieAfterStoring();
    const [orphan] = await pendingInOutbox();
    // The first listing fails (both of the adapter's attempts); a later one would answer.
    let failing = 2;
    fault = async (method) => {
      if (!method.endsWith('/ListQuotaPreferences') || failing === 0) return undefined;
      failing--;
      return new RpcError(status.UNAVAILABLE, 'The service is currently unavailable.');
    };
    const next = await run();
    expect(quotaAlerts(next)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    expect(await pendingInOutbox()).toEqual([orphan]);

    emulator.advance(5 * 60_000);
    const after = await run();
    const quota = quotaAlerts(after);
    expect(quota.find((a) => a.id === orphan?.alert.id)?.details['outcome']).toBe('not-confirmed');
    expect(quota.filter((a) => a.id !== orphan?.alert.id).map((a) => [a.type, a.runId])).toEqual([
      ['quota.requested', after.runId],
    ]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });

  it('dies after storing; another actor files for the quota before the next run: nothing more filed, theirs tracked, the event published once as not confirmed', async () => {
    await dieAfterStoring();
    await filedBySomeone(other, P, { id: 'by-hand', value: 12, region: US });
    const next = await run();
    const quota = quotaAlerts(next);
    expect(quota).toHaveLength(1);
    expect(quota[0]?.details).toMatchObject({
      outcome: 'not-confirmed',
      seenNow: { preference: `${PARENT}/quotaPreferences/by-hand`, preferredValue: 12 },
    });
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect(await tracked()).toMatchObject({ by: 'found', state: 'pending', preferredValue: 12 });
    expect(await pendingInOutbox()).toEqual([]);
    publishedOnce();
  });

  it('dies after filing, before reporting: the next run finds it pending, files nothing, and publishes the stored event once as confirmed', async () => {
    await dieAfterFiling();
    const filed = quotaPreferences(emulator.model);
    expect(filed).toHaveLength(1);
    const [orphan] = await pendingInOutbox();
    expect(orphan?.alert.details['preference']).toBe(filed[0]?.name);

    const next = await run();
    const quota = quotaAlerts(next);
    expect(quota.map((a) => [a.id, a.details['outcome']])).toEqual([
      [orphan?.alert.id, 'confirmed-by-observation'],
    ]);
    expect(quota[0]?.summary).toMatch(/confirmed by observation: pending/);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    // Filed when the dead run filed it, not when this run found it.
    expect(await tracked()).toMatchObject({
      by: 'governor',
      state: 'pending',
      preferredValue: 8,
      filedAt: orphan?.alert.time,
    });
    expect(orphan?.alert.time).not.toBe(next.plan?.at);
    expect(await pendingInOutbox()).toEqual([]);

    // Google grants it: the run after hears it, and uses the quota.
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: filed[0]?.name ?? '',
      decision: 'granted',
    });
    emulator.advance(5 * 60_000);
    const granted = await run();
    expect(
      quotaAlerts(granted)
        .map((a) => a.type)
        .sort(),
    ).toEqual(['quota.changed', 'quota.granted']);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });

  it('dies after filing; Google grants it before the next run: confirmed, granted, changed, and never filed again', async () => {
    await dieAfterFiling();
    const name = quotaPreferences(emulator.model)[0]?.name ?? '';
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'granted' });
    const next = await run();
    const byType = Object.fromEntries(quotaAlerts(next).map((a) => [a.type, a]));
    expect(Object.keys(byType).sort()).toEqual([
      'quota.changed',
      'quota.granted',
      'quota.requested',
    ]);
    expect(byType['quota.requested']?.details['outcome']).toBe('confirmed-by-observation');
    expect(byType['quota.requested']?.summary).toMatch(/confirmed by observation: granted/);
    expect(next.plan?.pools.find((p) => p.region === US)?.quota).toBe(8);
    emulator.advance(5 * 60_000);
    expect(quotaAlerts(await run())).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    publishedOnce();
  });

  it('dies after filing; another actor raises that preference before the next run: not confirmed (changed since), tracked, not filed again', async () => {
    await dieAfterFiling();
    const [mine] = await other.getQuotaPreference({
      name: quotaPreferences(emulator.model)[0]?.name ?? '',
    });
    await other.updateQuotaPreference({
      quotaPreference: { name: mine.name, etag: mine.etag, quotaConfig: { preferredValue: '12' } },
      updateMask: { paths: ['quota_config.preferred_value'] },
    });
    const next = await run();
    const quota = quotaAlerts(next);
    expect(quota).toHaveLength(1);
    expect(quota[0]?.details).toMatchObject({
      outcome: 'not-confirmed',
      seenNow: { preference: mine.name, preferredValue: 12, reconciling: true },
    });
    expect(quota[0]?.summary).toMatch(/asks for 12: not filed, or changed since/);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect(await tracked()).toMatchObject({ state: 'pending', preferredValue: 12 });
    publishedOnce();
  });
});

describe('a listing Google answers with an unreachable location', () => {
  beforeEach(() => setUp());

  it('dies after filing; the next listing misses it (global unreachable): the stored event is kept, never announced as not filed, nothing filed; confirmed once reachable', async () => {
    await dieAfterFiling();
    const filed = quotaPreferences(emulator.model);
    expect(filed).toHaveLength(1);
    const [orphan] = await pendingInOutbox();

    // ListQuotaPreferencesResponse.unreachable: "Locations that could not be reached"
    // (cloudquotas.proto). The answer is no error, and the preference filed is not in it.
    emulator.setFaults({ paging: { unreachableRate: 1 } });
    const blind = await run();
    expect(blind.outcome).toBe('ok');
    expect(quotaAlerts(blind)).toEqual([]);
    const failures = degraded(blind)?.details['failures'] as Record<string, unknown>[];
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures)
      expect(f).toMatchObject({ call: 'list', resource: PARENT, kind: 'failed' });
    expect(String(failures[0]?.['error'])).toMatch(/could not reach global.*incomplete/);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect((await pendingInOutbox()).map((e) => e.alert.id)).toEqual([orphan?.alert.id]);

    emulator.setFaults({});
    emulator.advance(5 * 60_000);
    const next = await run();
    expect(quotaAlerts(next).map((a) => [a.id, a.details['outcome']])).toEqual([
      [orphan?.alert.id, 'confirmed-by-observation'],
    ]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect(await tracked()).toMatchObject({ by: 'governor', state: 'pending' });
    publishedOnce();
  });
});

describe('a failing Cloud Quotas call degrades quota requests, never the governing', () => {
  const capsLowered = (r: RunReport) =>
    r.writes.filter((w) => w.outcome === 'written' && w.region === EU).length;

  it('create denied (cloudquotas.quotas.update): caps governed, governor.degraded names the permission and the resource, resolved once granted', async () => {
    await setUp(['cloudquotas.quotas.update']);
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(capsLowered(r)).toBeGreaterThan(0);
    expect(quotaAlerts(r)).toEqual([]);
    const d = degraded(r);
    expect(d).toMatchObject({ status: 'firing', severity: 'WARNING', project: P });
    expect(d?.summary).toContain('cloudquotas.quotas.update');
    expect(d?.summary).toContain(PARENT);
    expect(d?.details['failures']).toEqual([
      expect.objectContaining({
        call: 'create',
        kind: 'denied',
        resource: PARENT,
        permissions: ['cloudquotas.quotas.update'],
      }),
    ]);
    expect((await store.listOutbox(P)).entries).toEqual([]);
    expect(quotaPreferences(emulator.model)).toHaveLength(0);

    // The permission is granted: the next run files, and the condition resolves.
    const project = emulator.model.fleet.projects[0] as { iam?: { denied: string[] } };
    if (project.iam) project.iam.denied = [];
    emulator.advance(5 * 60_000);
    const next = await run();
    expect(quotaAlerts(next).map((a) => a.type)).toEqual(['quota.requested']);
    expect(degraded(next)?.status).toBe('resolved');
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it.each([
    ['UNAVAILABLE', status.UNAVAILABLE, 'The service is currently unavailable.'],
    ['INVALID_ARGUMENT', status.INVALID_ARGUMENT, 'Request contains an invalid argument.'],
    [
      'PERMISSION_DENIED',
      status.PERMISSION_DENIED,
      `Permission 'cloudquotas.quotas.get' denied on resource '${PARENT}' (or it may not exist).`,
    ],
  ])('list answers %s: caps governed, nothing filed, governor.degraded', async (_, code, text) => {
    await setUp();
    fault = async (method) =>
      method.endsWith('/ListQuotaPreferences') ? new RpcError(code, text) : undefined;
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(capsLowered(r)).toBeGreaterThan(0);
    expect(quotaAlerts(r)).toEqual([]);
    const failures = degraded(r)?.details['failures'];
    expect(failures).toEqual([
      expect.objectContaining({
        call: 'list',
        resource: PARENT,
        kind: code === status.PERMISSION_DENIED ? 'denied' : 'failed',
      }),
    ]);
    if (code === status.PERMISSION_DENIED)
      expect(degraded(r)?.summary).toContain(
        `permission cloudquotas.quotas.get denied on ${PARENT}`,
      );
    expect(quotaPreferences(emulator.model)).toHaveLength(0);
    expect((await store.listOutbox(P)).entries).toEqual([]);
  });

  it('create unavailable (it may have been made): the planned event is kept and settled by the next run, which does not file twice', async () => {
    await setUp();
    // Google files it, but the answer never arrives.
    fault = async (method) => {
      if (!method.endsWith('/CreateQuotaPreference')) return undefined;
      fault = null;
      await filedBySomeone(other, P, {
        id: 'gpu-governor-us-central1-placeholder',
        value: 8,
        region: US,
        contactEmail: 'ops@example.com',
      });
      return new RpcError(status.UNAVAILABLE, 'The service is currently unavailable.');
    };
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(capsLowered(r)).toBeGreaterThan(0);
    expect(degraded(r)?.details['failures']).toEqual([
      expect.objectContaining({ call: 'create', kind: 'failed' }),
    ]);
    expect(quotaAlerts(r)).toEqual([]);
    expect(await pendingInOutbox()).toHaveLength(1);

    emulator.advance(5 * 60_000);
    const next = await run();
    const quota = quotaAlerts(next);
    expect(quota).toHaveLength(1);
    // Another name than planned asks for the same value: it cannot be told from another actor's.
    expect(quota[0]?.details['outcome']).toBe('not-confirmed');
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect(degraded(next)?.status).toBe('resolved');
    expect(await pendingInOutbox()).toEqual([]);
  });

  it("update unavailable on a preference the pool tracks as denied: settled as the governor's request, and its grant told", async () => {
    await setUp();
    // Someone's request for 5 is found pending, tracked, then denied; its cooldown is over.
    const old = await filedBySomeone(other, P, { id: 'old', value: 5, region: US });
    const name = old.name ?? '';
    await run();
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'denied' });
    emulator.advance(5 * 60_000);
    expect(quotaAlerts(await run()).map((a) => a.type)).toEqual(['quota.denied']);
    const [newest] = await store.listRuns(P);
    const denied = newest?.pressure?.requests?.[HOT];
    if (!newest?.pressure?.requests || !denied) throw new Error('no tracked request');
    const longAgo = new Date(emulator.now().getTime() - 8 * 86_400_000).toISOString();
    await store.recordRun(P, {
      ...newest,
      pressure: {
        ...newest.pressure,
        requests: { ...newest.pressure.requests, [HOT]: { ...denied, decidedAt: longAgo } },
      },
    });
    // The run raises it to 8; Google applies the change, but the answer never arrives.
    fault = async (method) => {
      if (!method.endsWith('/UpdateQuotaPreference')) return undefined;
      fault = null;
      const [now] = await other.getQuotaPreference({ name });
      await other.updateQuotaPreference({
        quotaPreference: { name, etag: now.etag, quotaConfig: { preferredValue: '8' } },
        updateMask: { paths: ['quota_config.preferred_value'] },
      });
      return new RpcError(status.UNAVAILABLE, 'The service is currently unavailable.');
    };
    emulator.advance(5 * 60_000);
    const raised = await run();
    expect(degraded(raised)?.details['failures']).toEqual([
      expect.objectContaining({ call: 'update', kind: 'failed' }),
    ]);
    expect(await pendingInOutbox()).toHaveLength(1);
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'granted' });

    emulator.advance(5 * 60_000);
    const next = await run();
    const byType = Object.fromEntries(quotaAlerts(next).map((a) => [a.type, a]));
    expect(byType['quota.requested']?.details['outcome']).toBe('confirmed-by-observation');
    expect(byType['quota.granted']?.details).toMatchObject({ preference: name, grantedValue: 8 });
    expect(await tracked()).toMatchObject({
      name,
      by: 'governor',
      state: 'granted',
      preferredValue: 8,
      decidedAt: emulator.now().toISOString(),
    });
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('create answered INTERNAL after Google filed it: the planned event is kept, and the next run confirms it', async () => {
    await setUp();
    // google/rpc/code.proto says of INTERNAL only that "some invariants expected by the
    // underlying system have been broken", not that nothing was filed.
    fault = async (method) => {
      if (!method.endsWith('/CreateQuotaPreference')) return undefined;
      fault = null;
      const [planned] = await pendingInOutbox();
      const name = String(planned?.alert.details['preference']);
      await filedBySomeone(other, P, {
        id: name.split('/').pop() ?? '',
        value: 8,
        region: US,
        contactEmail: 'ops@example.com',
      });
      return new RpcError(status.INTERNAL, 'Internal error encountered.');
    };
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(quotaAlerts(r)).toEqual([]);
    expect(degraded(r)?.details['failures']).toEqual([
      expect.objectContaining({ call: 'create', kind: 'failed' }),
    ]);
    expect(await pendingInOutbox()).toHaveLength(1);

    emulator.advance(5 * 60_000);
    const next = await run();
    expect(quotaAlerts(next).map((a) => [a.type, a.details['outcome']])).toEqual([
      ['quota.requested', 'confirmed-by-observation'],
    ]);
    expect(await tracked()).toMatchObject({ by: 'governor', state: 'pending', preferredValue: 8 });
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('create refused INVALID_ARGUMENT: nothing filed, the planned event withdrawn', async () => {
    await setUp();
    fault = async (method) =>
      method.endsWith('/CreateQuotaPreference')
        ? new RpcError(status.INVALID_ARGUMENT, 'Request contains an invalid argument.')
        : undefined;
    const r = await run();
    expect(quotaAlerts(r)).toEqual([]);
    expect(degraded(r)?.details['failures']).toEqual([
      expect.objectContaining({ call: 'create', kind: 'failed' }),
    ]);
    expect(await pendingInOutbox()).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
  });

  it('reading a tracked request is denied: governor.degraded names cloudquotas.quotas.get and the preference', async () => {
    await setUp();
    await run();
    const name = quotaPreferences(emulator.model)[0]?.name ?? '';
    fault = async (method) =>
      method.endsWith('/GetQuotaPreference')
        ? new RpcError(
            status.PERMISSION_DENIED,
            `Permission 'cloudquotas.quotas.get' denied on resource '${name}' (or it may not exist).`,
          )
        : undefined;
    emulator.advance(5 * 60_000);
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(degraded(r)?.summary).toContain(`permission cloudquotas.quotas.get denied on ${name}`);
    expect(await tracked()).toMatchObject({ state: 'pending' });
  });
});

describe("the governor's preference id taken by another preference", () => {
  beforeEach(() => setUp());

  /**
   * Someone files, under the id the governor files the hot pool's request under, the quota's
   * preference for every region, which Google denies: Cloud Quotas has no call to delete a
   * preference, so the id stays taken. Its name.
   */
  const takeGovernorsId = async (): Promise<string> => {
    const quotaId = prefs.quotaIdOf('nvidia-l4', true);
    const [theirs] = await other.createQuotaPreference({
      parent: PARENT,
      quotaPreferenceId: preferenceId(US, quotaId),
      quotaPreference: {
        service: 'run.googleapis.com',
        quotaId,
        quotaConfig: { preferredValue: '8' },
        contactEmail: 'someone@example.com',
      },
    });
    const name = theirs.name ?? '';
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'denied' });
    return name;
  };

  it('a create answered ABORTED, the preferences as they were: a lost race still, no refusal', async () => {
    fault = async (method) => {
      if (!method.endsWith('/CreateQuotaPreference')) return undefined;
      fault = null;
      return new RpcError(status.ABORTED, 'the request was aborted');
    };
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(degraded(r)).toBeUndefined();
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(/another change won the race/);
    expect(quotaPreferences(emulator.model)).toEqual([]);
  });

  it('another writer filed under that id for every region: not a lost race; named as degraded, run after run', async () => {
    const name = await takeGovernorsId();
    const taken = 'its id is taken by another preference';
    const first = await run();
    expect(first.outcome).toBe('ok');
    expect(quotaAlerts(first)).toEqual([]);
    // Before, the run logged "another change won the race" at INFO and said nothing more: the
    // pool under pressure never got a request, run after run, and no one was told why.
    const [failure] = degraded(first)?.details['failures'] as { resource: string; error: string }[];
    expect(failure?.resource).toBe(name);
    expect(failure?.error).toContain(taken);
    expect(failure?.error).toContain('file the request by hand');
    expect((await store.listOutbox(P)).entries).toEqual([]);
    // The next run finds it so again: the condition stays firing, not resolved.
    emulator.advance(5 * 60_000);
    const said = () => log.lines.filter((l) => l.message.includes(taken)).length;
    const before = said();
    const next = await run();
    expect(degraded(next)).toBeUndefined();
    expect(said()).toBeGreaterThan(before);
    expect(log.lines.some((l) => /governor\.degraded resolved/.test(l.message))).toBe(false);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
  });

  it('the listing again fails: taken as a race, and the failure is logged', async () => {
    await takeGovernorsId();
    // The list after the refused create fails: nothing tells a race from a taken id.
    let created = false;
    fault = async (method) => {
      if (method.endsWith('/CreateQuotaPreference')) created = true;
      else if (created && method.endsWith('/ListQuotaPreferences'))
        return new RpcError(status.UNAVAILABLE, 'the service is unavailable');
      return undefined;
    };
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(degraded(r)).toBeUndefined();
    const said = log.lines.map((l) => `${l.severity} ${l.message}`).join('\n');
    expect(said).toMatch(/another change won the race/);
    expect(said).toMatch(
      /WARNING .*could not be listed again to tell a lost race from an id taken/,
    );
  });
});
