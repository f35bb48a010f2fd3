import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { status } from '@grpc/grpc-js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { createPubSubAlertSink, type PubSubAlertSink } from '../../src/adapters/pubsub.js';
import { DEMAND_CONDITIONS, DEMAND_RESOLVE_AFTER_MS } from '../../src/core/notify.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { RpcError, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import {
  reconcile,
  RunFailedError,
  type ReconcileDeps,
  type RunReport,
} from '../../src/reconcile/reconcile.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { restoreSummary } from '../../src/cli/apply-command.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import type { StateStore } from '../../src/ports/index.js';
import {
  sharedFirestoreEmulator,
  sharedPubSubEmulator,
  type SharedEmulator,
} from '../support/shared-emulators.js';
import { FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { waitUntil } from '../support/wait.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * The reconcile run against the emulator (real Cloud Run, Monitoring and Quotas clients over
 * gRPC), the real Pub/Sub emulator and the file state store: the order and safety of writes,
 * re-validation, fail-static on failed writes, alerts and their state, the lease.
 */

const PROJECT = 'rc-project';
const REGION = 'us-central1';
const TOPIC = `projects/${PROJECT}/topics/alerts`;
/** How long to listen for a message that should not come. */
const QUIET_MS = 300;

// Quota 6, one GPU held by a worker pool: budget 5. `idle` holds 4 and uses nothing; `busy`
// needs 3 but may use 1; `steady` uses its 1. The plan lowers idle before it raises busy.
const fleet = () => ({
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 6 }],
      services: [
        {
          name: 'idle',
          region: REGION,
          gpu: {},
          maxInstances: 4,
          demand: 0,
          annotations: { owner: 'team-a' },
        },
        { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: 3 },
        { name: 'steady', region: REGION, gpu: {}, maxInstances: 1, demand: 1 },
      ],
      workerPools: [{ name: 'encoder', region: REGION, gpu: {}, manualInstanceCount: 1 }],
    },
  ],
});

const policyOf = (extra: object = {}): Policy =>
  parsePolicy({
    version: 1,
    projects: [PROJECT],
    regions: [REGION],
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    alerts: { topic: TOPIC, renotifyAfter: '1h' },
    ...extra,
  });

let pubsubEmulator: SharedEmulator;
let admin: PubSub;
let subscription: Subscription;
const received: Message[] = [];
let faults: ((method: string, request: unknown) => RpcError | undefined) | null = null;
let emulator: RunningEmulator;

/** A service's annotations in the emulator now. */
const annotationsOf = (name: string) =>
  emulator.state().services.find((s) => s.name === name)?.annotations ?? {};

/** Someone sets annotations on a service of the fleet, keeping its others. */
const annotate = (name: string, extra: Record<string, string>) =>
  emulator.edit({
    project: PROJECT,
    region: REGION,
    service: name,
    annotations: { ...annotationsOf(name), ...extra },
  });
let ports: GooglePorts;
let sink: PubSubAlertSink;
let store: StateStore;
let log: ReturnType<typeof memoryLogger>;

beforeAll(async () => {
  pubsubEmulator = await sharedPubSubEmulator(PROJECT);
  process.env.PUBSUB_EMULATOR_HOST = pubsubEmulator.endpoint;
  admin = new PubSub({ projectId: PROJECT });
  const [topic] = await admin.createTopic('alerts');
  [subscription] = await topic.createSubscription('all', { enableMessageOrdering: true });
  subscription.on('message', (m: Message) => {
    received.push(m);
    m.ack();
  });
});

afterAll(async () => {
  await subscription?.close();
  await admin?.close();
  delete process.env.PUBSUB_EMULATOR_HOST;
});

beforeEach(async () => {
  faults = null;
  emulator = await startEmulator({
    fleet: fleet(),
    speed: 'manual',
    operationDelayMs: 50,
    faults: ({ method, request }) => faults?.(method, request),
  });
  ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  sink = createPubSubAlertSink({
    topic: TOPIC,
    maxAttempts: 2,
    minBackoffMs: 10,
    maxBackoffMs: 20,
  });
  store = createFileStateStore({ dir: mkdtempSync(join(tmpdir(), 'governor-state-')) });
  log = memoryLogger();
  received.length = 0;
});

afterEach(async () => {
  await Promise.all([ports.close(), sink.close(), store.close()]);
  await emulator.stop();
});

const deps = (): ReconcileDeps => ({
  ports,
  store,
  sink,
  log,
  now: () => Promise.resolve(emulator.now().getTime()),
  sleep: async () => {},
});
const run = (policy: Policy, extra: object = {}): Promise<RunReport> =>
  reconcile(policy, deps(), {
    runId: `run-${Math.random().toString(16).slice(2)}`,
    deadlineMs: 60_000,
    ...extra,
  });

/**
 * Every message received once `count` have come. Then a quiet period: a message beyond `count`
 * (an extra or a duplicate) would arrive in it, and no condition can be polled for its absence.
 */
async function messages(count: number): Promise<Record<string, unknown>[]> {
  await waitUntil(
    `${count} message(s)`,
    () => received.length,
    (n) => n >= count,
  );
  await new Promise((r) => setTimeout(r, QUIET_MS));
  return received.map((m) => JSON.parse(m.data.toString('utf8')) as Record<string, unknown>);
}

/**
 * Runs `body` with the run's state store on Firestore (Google's emulator, a collection of its
 * own) and a raw client on the same database to plant documents; both closed after.
 */
async function onFirestore(body: (raw: Firestore, collection: string) => Promise<void>) {
  const projectId = 'rc-state';
  const firestore = await sharedFirestoreEmulator(projectId);
  process.env.FIRESTORE_EMULATOR_HOST = firestore.endpoint;
  const collection = `rc-${Math.random().toString(16).slice(2)}`;
  const raw = new Firestore({ projectId });
  try {
    await store.close();
    store = createFirestoreStateStore({
      projectId,
      collection,
      timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    });
    await body(raw, collection);
  } finally {
    await raw.terminate();
    delete process.env.FIRESTORE_EMULATOR_HOST;
  }
}

/** Governed caps + unmanaged usage after every write, from the emulator's own write log. */
function poolTotalsAfterEachWrite(): number[] {
  return emulator.writes().map((w) => (w.pool ? w.pool.capsGpus + w.pool.workerPoolGpus : NaN));
}

describe('reconcile', () => {
  it('lowers before it raises, and the pool stays within quota after every write', async () => {
    const report = await run(policyOf());
    expect(report.outcome).toBe('ok');
    const writes = emulator
      .writes()
      .map((w) => [w.service.name, w.before.maxInstances, w.after.maxInstances]);
    expect(writes[0]).toEqual(['idle', 4, expect.any(Number)]);
    expect(writes.map((w) => w[0])).toContain('busy');
    expect(writes.findIndex((w) => w[0] === 'busy')).toBeGreaterThan(
      writes.findIndex((w) => w[0] === 'idle'),
    );
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
    // The governor's own annotations, and the user's kept.
    const idle = emulator.writes()[0]?.after.annotations ?? {};
    expect(idle).toMatchObject({ owner: 'team-a', 'gpu-governor.dev/original-max': '4' });
    expect(idle['gpu-governor.dev/reason']).toContain('idle over the lookback');
    const busy = emulator.writes().find((w) => w.service.name === 'busy')?.after.annotations ?? {};
    expect(busy['gpu-governor.dev/last-changed']).toBe(emulator.now().toISOString());
  });

  it('planning again right after changes nothing (level-triggered and idempotent)', async () => {
    await run(policyOf());
    const before = emulator.writes().length;
    const again = await run(policyOf());
    expect(again.plan?.changes).toEqual([]);
    expect(emulator.writes().length).toBe(before);
  });

  it('publishes each alert once, with attributes and a pool ordering key, every message valid against the committed schema', async () => {
    await run(policyOf());
    const first = await messages(1);
    const types = first.map((m) => m.type);
    expect(types).toContain('rebalance.applied');
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(
      JSON.parse(readFileSync('schema/alert.schema.json', 'utf8')) as object,
    );
    for (const m of first) expect(validate(m), JSON.stringify(validate.errors)).toBe(true);
    const applied = received.find(
      (m) => JSON.parse(m.data.toString()).type === 'rebalance.applied',
    );
    expect(applied?.attributes).toMatchObject({
      type: 'rebalance.applied',
      status: 'event',
      project: PROJECT,
      region: REGION,
    });
    expect(applied?.orderingKey).toBe(`${PROJECT}/${REGION}/nvidia-l4/zonal`);
  });

  it('fires a condition once, keeps quiet while it holds, and resolves it once', async () => {
    // Scarcity: a tiny quota leaves busy starved.
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 4 });
    await run(policyOf());
    // The fleet breaks audit rules too (no CPU or probe set): those conditions hold throughout.
    const firing = (await messages(1))
      .filter((m) => m.status === 'firing' && m.type !== 'service.misconfigured')
      .map((m) => m.dedupKey);
    expect(firing.length).toBeGreaterThan(0);
    received.length = 0;
    await run(policyOf()); // still scarce: nothing fires again (over-budget, fixed by run 1, resolves)
    const second = await messages(1);
    expect(second.filter((m) => m.status === 'firing')).toEqual([]);
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 12 });
    received.length = 0;
    await run(policyOf());
    const third = await messages(1);
    // The conditions judged on demand are held until absent for DEMAND_RESOLVE_AFTER_MS: not
    // resolved yet, and resolved by the first run after it.
    const demand = (ms: Record<string, unknown>[]) =>
      ms.filter((m) => m.status === 'resolved' && DEMAND_CONDITIONS.has(String(m.type)));
    expect(demand(third)).toEqual([]);
    emulator.advance(DEMAND_RESOLVE_AFTER_MS);
    received.length = 0;
    await run(policyOf());
    const fourth = await messages(1);
    expect(demand(fourth).length).toBeGreaterThan(0);
    const resolved = [...second, ...third, ...fourth]
      .filter((m) => m.status === 'resolved')
      .map((m) => m.dedupKey);
    for (const key of firing)
      expect(
        resolved.filter((k) => k === key),
        `${String(key)} in ${JSON.stringify([firing, resolved, fourth.map((m) => [m.type, m.status, m.summary])])}`,
      ).toHaveLength(1);
    expect(second.filter((m) => m.status === 'resolved').map((m) => m.type)).toEqual([
      'pool.over-budget',
    ]);
  });

  it('does not resolve a pool condition while the pool quota is unknown, and resolves it once it is known again', async () => {
    await run(policyOf()); // quota 6, caps 6 > budget 5: pool.over-budget fires, the caps come down
    const firing = (await messages(1)).filter(
      (m) => m.type === 'pool.over-budget' && m.status === 'firing',
    );
    expect(firing).toHaveLength(1);
    emulator.setQuota({ project: PROJECT, region: REGION, quota: null });
    received.length = 0;
    await run(policyOf());
    const blind = await messages(1);
    expect(blind.filter((m) => m.status === 'resolved').map((m) => m.type)).not.toContain(
      'pool.over-budget',
    );
    expect(blind.some((m) => m.type === 'governor.degraded' && m.status === 'firing')).toBe(true);
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 6 });
    received.length = 0;
    await run(policyOf());
    const seen = await messages(1);
    expect(seen.filter((m) => m.status === 'resolved').map((m) => m.type)).toContain(
      'pool.over-budget',
    );
  });

  it('sends quota.changed when a pool quota differs from what the previous run read', async () => {
    await run(policyOf());
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 9 });
    received.length = 0;
    await run(policyOf());
    const changed = (await messages(1)).filter((m) => m.type === 'quota.changed');
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({
      status: 'event',
      severity: 'INFO',
      details: { from: 6, to: 9 },
    });
  });

  /**
   * A condition a newer version left firing, of an alert type this version does not know (during
   * a deploy both run; after a rollback only this one does): the run governs and publishes as
   * before, names it in an ERROR line, and leaves it as stored for the newer version. Before, it
   * made the whole state unreadable: the file store took no lease (no run at all), Firestore failed
   * every run after its writes, before any alert, for good (only the newer version resolves it).
   */
  async function governsBesideNewerCondition(
    stored: () => Promise<Record<string, unknown>>,
    plant: (records: Record<string, unknown>) => Promise<void>,
  ): Promise<void> {
    await run(policyOf());
    const [key, record] = Object.entries(await stored())[0] ?? [];
    if (!key) throw new Error('the first run saved no condition');
    const newer = {
      [`pool.hot-spare:${PROJECT}/${REGION}/nvidia-l4/zonal`]: {
        ...(record as object),
        type: 'pool.hot-spare',
      },
    };
    await plant(newer);
    emulator.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 9 });
    emulator.advance(5 * 60_000);
    received.length = 0;
    log.lines.length = 0;
    const report = await run(policyOf());
    expect(report.outcome, JSON.stringify(report.error)).toBe('ok');
    expect(report.writes.some((w) => w.name === 'idle' && w.outcome === 'written')).toBe(true);
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
    expect((await messages(1)).map((m) => m.type)).toContain('rebalance.applied');
    const named = log.lines.filter((l) => l.message.includes('cannot be read by this version'));
    expect(named).toHaveLength(1);
    expect(named[0]?.severity).toBe('ERROR');
    expect(named[0]?.message).toContain(Object.keys(newer)[0]);
    // It sends the reader to the page that explains it.
    expect(named[0]?.message).toContain('see docs/applying.md, "Upgrades and rollbacks"');
    expect(await stored()).toMatchObject(newer);
  }

  it('file store: a condition a newer version left firing neither stops the run nor its alerts, and stays', async () => {
    await store.close();
    const dir = mkdtempSync(join(tmpdir(), 'governor-state-'));
    store = createFileStateStore({ dir });
    const file = join(dir, `${encodeURIComponent(PROJECT)}.json`);
    type Doc = { conditions: { version: number; state: Record<string, unknown> } };
    const read = () => JSON.parse(readFileSync(file, 'utf8')) as Doc;
    await governsBesideNewerCondition(
      async () => read().conditions.state,
      async (records) => {
        const doc = read();
        doc.conditions.state = { ...doc.conditions.state, ...records };
        doc.conditions.version += 1;
        writeFileSync(file, JSON.stringify(doc));
      },
    );
  });

  it('Firestore store (its emulator): a condition a newer version left firing, the same', async () => {
    await onFirestore(async (raw, collection) => {
      const ref = raw.doc(`${collection}/${PROJECT}/state/conditions`);
      const stored = async () =>
        JSON.parse(String((await ref.get()).get('json'))) as Record<string, unknown>;
      await governsBesideNewerCondition(stored, async (records) => {
        await ref.update({ json: JSON.stringify({ ...(await stored()), ...records }) });
      });
    });
  });

  it('a run record dated in the future and an unreadable queued alert neither stop it nor repeat an alert', async () => {
    await store.close();
    const dir = mkdtempSync(join(tmpdir(), 'governor-state-'));
    store = createFileStateStore({ dir });
    await run(policyOf());
    const key = `${PROJECT}/${REGION}/nvidia-l4/zonal`;
    // A writer with a wrong clock (or a hand edit) left a record of 2099 that read a quota of 999;
    // a newer version left a queued alert this one cannot read.
    const [newest] = await store.listRuns(PROJECT);
    if (!newest?.pressure) throw new Error('the first run recorded no pressure');
    await store.recordRun(PROJECT, {
      ...newest,
      runId: 'planted-2099',
      startedAt: '2099-01-01T00:00:00.000Z',
      quotas: { ...newest.quotas, [key]: 999 },
      pressure: { ...newest.pressure, at: '2099-01-01T00:00:00.000Z' },
    });
    const file = join(dir, `${encodeURIComponent(PROJECT)}.json`);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { outbox?: unknown[] };
    doc.outbox = [
      ...(doc.outbox ?? []),
      { json: 'garbage', state: 'ready', storedAt: '2026-01-01T00:00:00Z' },
    ];
    writeFileSync(file, JSON.stringify(doc));
    // Someone raises a service by hand past the quota: the run must still bring the pool back.
    emulator.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 9 });
    for (let i = 0; i < 2; i++) {
      emulator.advance(5 * 60_000);
      received.length = 0;
      log.lines.length = 0;
      const report = await run(policyOf());
      expect(report.outcome, JSON.stringify(report)).toBe('ok');
      for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
      const sent = await messages(1);
      // The quota read 6 both times: no quota.changed from 999, on either run.
      expect(sent.filter((m) => m.type === 'quota.changed')).toEqual([]);
      const warned = log.lines.filter((l) => l.message.includes('dated ahead'));
      expect(warned).toHaveLength(1);
      expect(warned[0]?.message).toContain('planted-2099 at 2099-01-01T00:00:00.000Z');
      const setAside = log.lines.filter((l) =>
        l.message.includes('cannot be read and was set aside'),
      );
      // Set aside by the first run that read it, and named once.
      expect(setAside.length).toBe(i === 0 ? 1 : 0);
      if (i === 0) expect(setAside[0]?.severity).toBe('ERROR');
    }
    expect(
      emulator.writes().some((w) => w.service.name === 'idle' && w.before.maxInstances === 9),
    ).toBe(true);
    // The pressure history rolled on from the genuine record, not frozen at 2099.
    const runs = await store.listRuns(PROJECT);
    expect(runs[0]?.runId).not.toBe('planted-2099');
    expect(runs[0]?.pressure?.at).not.toContain('2099');
    expect(runs.at(-1)?.runId).toBe('planted-2099');
  });

  it('records each pool pressure in the run record, rolled forward from the newest record that has it', async () => {
    await run(policyOf());
    const first = (await store.listRuns(PROJECT))[0]?.pressure;
    const key = `${PROJECT}/${REGION}/nvidia-l4/zonal`;
    expect(first?.pools[key]?.days[0]).toMatchObject({ minutes: 0, quota: 6, budget: 5 });
    emulator.advance(5 * 60_000);
    await run(policyOf());
    const runs = await store.listRuns(PROJECT);
    const second = runs[0]?.pressure;
    expect(second?.at).not.toBe(first?.at);
    expect(second?.pools[key]?.days[0]?.minutes).toBe(5);
    // A restore adds nothing to the ledger: it carries it as it found it, and the next run rolls on.
    await run(policyOf(), { restore: true });
    expect((await store.listRuns(PROJECT))[0]?.pressure).toEqual(second);
    emulator.advance(5 * 60_000);
    await run(policyOf());
    expect((await store.listRuns(PROJECT))[0]?.pressure?.pools[key]?.days[0]?.minutes).toBe(10);
  });

  it('keeps the ledger through runs that roll none, however few records the store keeps', async () => {
    await store.close();
    store = createFileStateStore({
      dir: mkdtempSync(join(tmpdir(), 'governor-state-')),
      keepRuns: 1,
    });
    const key = `${PROJECT}/${REGION}/nvidia-l4/zonal`;
    await run(policyOf());
    emulator.advance(5 * 60_000);
    await run(policyOf());
    const rolled = (await store.listRuns(PROJECT))[0]?.pressure;
    expect(rolled?.pools[key]?.days[0]?.minutes).toBe(5);
    // A restore, and a run declined at its prompt: each record is the only one kept.
    await run(policyOf(), { restore: true });
    expect((await store.listRuns(PROJECT))[0]?.pressure).toEqual(rolled);
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 4 });
    const declined = await run(policyOf(), { confirm: async () => false });
    expect(declined.outcome).toBe('declined');
    const runs = await store.listRuns(PROJECT);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.pressure).toEqual(rolled);
    emulator.advance(5 * 60_000);
    await run(policyOf());
    // The history goes on from the ledger's own time: the 5 minutes before, and these 5.
    expect((await store.listRuns(PROJECT))[0]?.pressure?.pools[key]?.days[0]?.minutes).toBe(10);
  });

  it('skips a service that started deploying after it was observed, with a reason, and raises no one with its room', async () => {
    const report = await run(policyOf(), {
      confirm: async () => {
        emulator.deploy({ service: 'idle', project: PROJECT, region: REGION, seconds: 600 });
        return true;
      },
    });
    const idle = report.writes.find((w) => w.name === 'idle');
    expect(idle?.outcome).toBe('skipped');
    expect(idle?.reason).toContain('deployment is in progress');
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
    expect(emulator.writes().some((w) => w.service.name === 'idle')).toBe(false);
  });

  it('a failed decrease leaves its increase unmade or smaller: never over quota, and the run fails loudly', async () => {
    faults = (method, request) => {
      const name = JSON.stringify(request);
      return method.endsWith('/UpdateService') && name.includes('/services/idle')
        ? new RpcError(status.INTERNAL, 'injected')
        : undefined;
    };
    const report = await run(policyOf());
    expect(report.outcome).toBe('failed');
    expect(report.writes.find((w) => w.name === 'idle')?.outcome).toBe('failed');
    const busy = report.writes.find((w) => w.name === 'busy');
    expect(busy?.outcome === 'skipped' || (busy?.written ?? 0) < (busy?.planned ?? 0)).toBe(true);
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
    const events = (await messages(1)).map((m) => m.type);
    expect(events).toContain('apply.failed');
  });

  it('dry-run writes nothing and publishes rebalance.planned', async () => {
    const report = await run(policyOf({ mode: 'dry-run' }));
    expect(report.writes).toEqual([]);
    expect(emulator.writes()).toEqual([]);
    expect((await messages(1)).map((m) => m.type)).toContain('rebalance.planned');
  });

  it('a publish that fails fails the run and does not advance the condition state, so the next run sends it', async () => {
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 4 });
    const broken = createPubSubAlertSink({
      topic: `projects/${PROJECT}/topics/missing`,
      maxAttempts: 1,
    });
    await expect(
      reconcile(
        policyOf(),
        { ...deps(), sink: broken },
        { runId: 'run-broken', deadlineMs: 60_000 },
      ),
    ).rejects.toThrow(RunFailedError);
    await broken.close();
    expect((await store.loadConditions(PROJECT)).version).toBeNull();
    await run(policyOf());
    expect((await messages(1)).filter((m) => m.status === 'firing').length).toBeGreaterThan(0);
  });

  it('one writer per project: a second governor finds the lease held, asks again, does nothing and says so', async () => {
    // The lease is on the wall clock, whatever the emulator's virtual time (days behind it here).
    const lease = await store.acquireLease(
      PROJECT,
      'other-governor',
      60_000,
      new Date().toISOString(),
    );
    expect(lease.acquired).toBe(true);
    const report = await run(policyOf(), { leaseAttempts: 2, leaseRetryMs: 10 });
    expect(report.outcome).toBe('lease-held');
    expect(report.leaseHeld[0]).toMatchObject({
      heldBy: 'other-governor',
      expiresAt: lease.expiresAt,
    });
    expect(emulator.writes()).toEqual([]);
    const said = log.lines.find((l) => l.message.includes('the lease is held by other-governor'));
    expect(said?.message).toContain(`until ${lease.expiresAt ?? '?'}`);
    expect(said?.message).toContain('governor unlock');
    // Loudly: governor.degraded (reason lease), which a run holding the lease later resolves.
    const degraded = (await messages(1)).filter((m) => m.type === 'governor.degraded');
    expect(degraded).toMatchObject([
      { status: 'firing', details: { reason: 'lease', heldBy: 'other-governor', attempts: 2 } },
    ]);
    await store.releaseLease(PROJECT, 'other-governor');
    received.length = 0;
    expect((await run(policyOf())).outcome).toBe('ok');
    expect(
      (await messages(1)).filter((m) => m.type === 'governor.degraded').map((m) => m.status),
    ).toEqual(['resolved']);
  });

  it('restore puts services back to their max from before the governor, within the quota', async () => {
    await run(policyOf());
    expect(emulator.writes().length).toBeGreaterThan(0);
    const report = await run(policyOf(), { restore: true });
    expect(report.outcome).toBe('ok');
    const restored = report.writes
      .filter((w) => w.outcome === 'written')
      .map((w) => [w.name, w.written]);
    expect(restored).toContainEqual(['busy', 1]);
    // idle goes back toward 4 only as far as the pool has room (quota 6, encoder 1, busy 1, steady 1).
    const idle = report.writes.find((w) => w.name === 'idle');
    expect(idle?.written ?? 0).toBeLessThanOrEqual(3);
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
  });

  it('a lease broken while the run writes (governor unlock on a live run): no raise after it, its decreases still made', async () => {
    const report = await run(policyOf(), {
      // Between the plan and the writes: someone breaks the lease, and another run takes it.
      confirm: async () => {
        expect(await store.breakLease(PROJECT)).toBe(true);
        const taken = await store.acquireLease(
          PROJECT,
          'gov-x/run-other@elsewhere:1',
          60_000,
          new Date().toISOString(),
        );
        expect(taken.acquired).toBe(true);
        return true;
      },
    });
    const made = emulator.writes().map((w) => [w.service.name, w.after.maxInstances]);
    // Lowering idle is safe whoever else writes; raising busy on a lease another run now holds is
    // not: two runs of one store do not see each other's stamps. Before, busy was raised to 3.
    expect(made).toEqual([['idle', 1]]);
    const busy = report.writes.find((w) => w.name === 'busy');
    expect(busy).toMatchObject({ outcome: 'skipped', cause: 'other-governor', written: null });
    expect(busy?.reason).toContain('lease');
    expect(busy?.reason).toContain('gov-x/run-other@elsewhere:1');
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(/lease of rc-project was broken/);
    // The other run's lease is left to it.
    expect(await store.readLease(PROJECT)).toMatchObject({ holder: 'gov-x/run-other@elsewhere:1' });
  });

  it('restore names a service the governor changed that the policy no longer governs, and leaves it', async () => {
    await run(policyOf());
    expect(emulator.writes()[0]).toMatchObject({
      service: { name: 'idle' },
      before: { maxInstances: 4 },
      after: { maxInstances: 1 },
    });
    // Since then, the policy leaves idle alone: restore may not write it (hands off).
    const handsOff = policyOf({
      services: [{ match: { name: 'idle' }, managed: false }, { match: {} }],
    });
    const before = emulator.writes().length;
    const report = await run(handsOff, { restore: true });
    expect(report.outcome).toBe('ok');
    expect(
      emulator
        .writes()
        .slice(before)
        .map((w) => w.service.name),
    ).not.toContain('idle');
    const idle = report.plan?.services.find((s) => s.name === 'idle');
    expect(idle?.why.notRestored).toEqual({ before: 4 });
    expect(idle?.reason).toContain('restore: not governed now, so not written');
    // Before, the summary said nothing of it: the person restoring never learnt that idle
    // still holds the max the governor gave it.
    const told = report.plan ? restoreSummary(report.plan, report) : '';
    expect(told).toContain(
      `${PROJECT}/${REGION}/idle (1, its max before the governor was 4): the governor changed it, but the policy no longer governs it`,
    );
    // The command to put it back names its project and region: copied as printed, it updates
    // this service, not a namesake in gcloud's default project.
    expect(told).toContain(
      `(gcloud run services update idle --project ${PROJECT} --region ${REGION} --max 4 puts it back by hand`,
    );
  });

  it('restore leaves a service whose original-max annotation is not a max as it is, and says so', async () => {
    await run(policyOf());
    // idle went 4 → 1; someone edits its annotation to text Number() would read as 4.
    expect(annotationsOf('idle')['gpu-governor.dev/original-max']).toBe('4');
    annotate('idle', { 'gpu-governor.dev/original-max': '0x4' });
    const before = emulator.writes().length;
    const report = await run(policyOf(), { restore: true });
    expect(report.outcome).toBe('ok');
    // busy goes back to 1; idle is not written at all (before: raised toward "4").
    expect(
      emulator
        .writes()
        .slice(before)
        .map((w) => w.service.name),
    ).toEqual(['busy']);
    const idle = report.plan?.services.find((s) => s.name === 'idle');
    expect(idle?.why.basis).toEqual({
      kind: 'restore-none',
      why: 'unreadable',
      annotation: '0x4',
    });
    expect(idle?.reason).toContain('gpu-governor.dev/original-max annotation "0x4" is not a max');
    const told = report.plan ? restoreSummary(report.plan, report) : '';
    expect(told).toContain(
      `${PROJECT}/${REGION}/idle: its gpu-governor.dev/original-max annotation "0x4" is not a max`,
    );
    expect(told).toContain(
      `(set its max by hand: gcloud run services update idle --project ${PROJECT} --region ${REGION} --max N)`,
    );
  });

  it('restore makes at most limits.maxChangesPerRun writes, decreases first, and says what waits for the next restore', async () => {
    await run(policyOf());
    const governed = Object.fromEntries(emulator.writes().map((w) => [w.service.name, w.after]));
    expect(governed).toMatchObject({ idle: { maxInstances: 1 }, busy: { maxInstances: 3 } });
    const limited = policyOf({ limits: { writesPerMinute: 6000, maxChangesPerRun: 1 } });

    // Before, restore wrote both (busy back to 1, idle up to 3), whatever the limit.
    let before = emulator.writes().length;
    const first = await run(limited, { restore: true });
    expect(first.outcome).toBe('ok');
    const made = (from: number) =>
      emulator
        .writes()
        .slice(from)
        .map((w) => [w.service.name, w.before.maxInstances, w.after.maxInstances]);
    expect(made(before)).toEqual([['busy', 3, 1]]);
    expect(first.plan?.deferred.map((c) => [c.name, c.from, c.to])).toEqual([['idle', 1, 4]]);
    const told = first.plan ? restoreSummary(first.plan, first) : '';
    expect(told).toContain(
      '1 change(s) left for the next restore: this run made at most 1 (limits.maxChangesPerRun)',
    );
    expect(told).toContain('idle (1, back to 4, by the next restore)');
    expect(told).not.toContain('no room');

    // The next restore raises idle; another writer raises steady in the middle (after the plan,
    // before the writes): idle goes up only as far as the room steady left (budget 5: busy 1,
    // steady 2, so idle 2).
    before = emulator.writes().length;
    const second = await run(limited, {
      restore: true,
      confirm: () => {
        emulator.edit({ project: PROJECT, region: REGION, service: 'steady', maxInstances: 2 });
        return Promise.resolve(true);
      },
    });
    expect(made(before)).toEqual([['idle', 1, 2]]);
    expect(second.plan?.deferred).toEqual([]);
    const then = second.plan ? restoreSummary(second.plan, second) : '';
    expect(then).not.toContain('left for the next restore');
    expect(then).toContain('idle (2, back to 4)');
    // idle 4, busy 1 and steady 1 need 6 GPUs: more than the budget, whatever the room.
    expect(then).toContain('restore cannot finish until the quota grows by 1 GPUs');
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
  });

  it('restore does not blame the room for a decrease someone else changed the service under', async () => {
    await run(policyOf());
    // idle's max before the governor is taken as its 1 now: only busy (3, back to 1) is restored,
    // and every max from before fits the budget.
    annotate('idle', { 'gpu-governor.dev/original-max': '1' });
    const before = emulator.writes().length;
    const report = await run(policyOf(), {
      restore: true,
      // Someone edits busy after the plan, before its decrease: the decrease is not sent.
      confirm: () => {
        annotate('busy', { owner: 'team-b' });
        return Promise.resolve(true);
      },
    });
    expect(emulator.writes().length).toBe(before);
    expect(report.writes.find((w) => w.name === 'busy')).toMatchObject({
      outcome: 'skipped',
      cause: 'etag',
    });
    const told = report.plan ? restoreSummary(report.plan, report) : '';
    expect(told).toContain('busy (3, back to 1)');
    // A decrease needs no room: the pool's room is not what held it back.
    expect(told).not.toContain('no room');
    expect(told).toContain('not written by this run');
  });

  it('restore says a raise written short waits for room in the pool', async () => {
    await run(policyOf());
    // idle back to 3, busy back to 1, steady at 1: the maxes from before fit the budget of 5.
    annotate('idle', { 'gpu-governor.dev/original-max': '3' });
    const report = await run(policyOf(), {
      restore: true,
      // Another writer raises steady after the plan: idle has room for 2 only.
      confirm: () => {
        emulator.edit({ project: PROJECT, region: REGION, service: 'steady', maxInstances: 2 });
        return Promise.resolve(true);
      },
    });
    expect(report.writes.find((w) => w.name === 'idle')).toMatchObject({
      outcome: 'written',
      planned: 3,
      written: 2,
    });
    const told = report.plan ? restoreSummary(report.plan, report) : '';
    expect(told).toContain('idle (2, back to 3)');
    expect(told).toContain('The pool has no room for them yet');
    expect(told).not.toContain('not written by this run');
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
  });
});

/**
 * A count of dropped outbox entries nobody can read (a hand edit, another program): before, every
 * run failed on it, and in the file store it made the whole state file unreadable.
 */
describe('reconcile: an unreadable count of dropped outbox entries', () => {
  const NAMED = "the outbox's count of dropped entries cannot be read";

  /**
   * With the count planted by `plant` (before the run, or during it by `during`): the run governs,
   * names the count in one ERROR line quoting `quote`, announces governor.degraded (reason
   * outbox) as a number unknown, and stores a number (`clean`); the next run is quiet about it.
   */
  async function governsThrough(options: {
    plant?: () => Promise<void>;
    during?: () => Promise<void>;
    quote: string;
    where: string;
    stored: () => Promise<unknown>;
    clean: unknown;
  }): Promise<void> {
    await run(policyOf());
    await options.plant?.();
    // Someone raises a service by hand past the quota: the run must still bring the pool back.
    emulator.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 9 });
    emulator.advance(5 * 60_000);
    received.length = 0;
    log.lines.length = 0;
    const during = options.during;
    const report = await run(
      policyOf(),
      during
        ? {
            confirm: async () => {
              await during();
              return true;
            },
          }
        : {},
    );
    expect(report.outcome, JSON.stringify(report)).toBe('ok');
    expect(
      emulator.writes().some((w) => w.service.name === 'idle' && w.before.maxInstances === 9),
    ).toBe(true);
    for (const total of poolTotalsAfterEachWrite()) expect(total).toBeLessThanOrEqual(6);
    const outbox = (sent: Record<string, unknown>[]) =>
      sent.filter((m) => m.dedupKey === `governor.degraded:${PROJECT}:outbox`);
    expect(outbox(await messages(1))).toMatchObject([
      {
        status: 'firing',
        severity: 'ERROR',
        details: { reason: 'outbox', dropped: 1, droppedUnknown: true },
      },
    ]);
    const named = log.lines.filter((l) => l.message.includes(NAMED));
    expect(named).toHaveLength(1);
    expect(named[0]?.severity).toBe('ERROR');
    expect(named[0]?.message).toContain(`${options.where} holds ${options.quote}:`);
    expect(await options.stored()).toEqual(options.clean);
    // The next run finds a number: nothing named, the condition resolved.
    emulator.advance(5 * 60_000);
    received.length = 0;
    log.lines.length = 0;
    expect((await run(policyOf())).outcome).toBe('ok');
    expect(outbox(await messages(1)).map((m) => m.status)).toEqual(['resolved']);
    expect(log.lines.filter((l) => l.message.includes(NAMED))).toEqual([]);
    expect(await store.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
  }

  const fileStore = async (): Promise<{ file: string; plant: (v: unknown) => Promise<void> }> => {
    await store.close();
    const dir = mkdtempSync(join(tmpdir(), 'governor-state-'));
    store = createFileStateStore({ dir });
    const file = join(dir, `${encodeURIComponent(PROJECT)}.json`);
    return {
      file,
      plant: async (value) => {
        const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        writeFileSync(file, JSON.stringify({ ...doc, outboxDropped: value }));
      },
    };
  };
  const storedIn = (file: string) => async () =>
    (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>).outboxDropped;

  it('file store, a count of -3: the run governs, names it once, announces it; then a number', async () => {
    const { file, plant } = await fileStore();
    await governsThrough({
      plant: () => plant(-3),
      quote: '-3',
      where: `outboxDropped in state file ${file}`,
      stored: storedIn(file),
      clean: 0,
    });
  });

  it('file store, a count another writer spoils during the run: that run names and announces it', async () => {
    const { file, plant } = await fileStore();
    await governsThrough({
      during: () => plant('x'),
      quote: '"x"',
      where: `outboxDropped in state file ${file}`,
      stored: storedIn(file),
      clean: 0,
    });
  });

  it('Firestore store (its emulator), a count document of {}: the same', async () => {
    await onFirestore(async (raw, collection) => {
      const count = raw.doc(`${collection}/${PROJECT}/state/outbox`);
      await governsThrough({
        plant: () => count.set({}).then(() => undefined),
        quote: '{}',
        where: `document ${count.path}`,
        stored: async () => (await count.get()).data(),
        clean: { dropped: 0 },
      });
    });
  });
});

/**
 * Entries dropped while governor.degraded (reason outbox) is already firing: that run does not
 * send it again (not due for `renotifyAfter`), so it must not clear the count either; before, the
 * count went to 0 unannounced and the next run resolved the alert.
 */
describe('reconcile: outbox drops while their alert already fires', () => {
  it('keeps the count until a message announces it, then resolves', async () => {
    await store.close();
    const dir = mkdtempSync(join(tmpdir(), 'governor-state-'));
    store = createFileStateStore({ dir });
    const file = join(dir, `${encodeURIComponent(PROJECT)}.json`);
    const plant = (dropped: number): void => {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...doc, outboxDropped: dropped }));
    };
    const outbox = (sent: Record<string, unknown>[]) =>
      sent.filter((m) => m.dedupKey === `governor.degraded:${PROJECT}:outbox`);
    // Every message the run published, once all have come (a fixed wait lost a firing alert that
    // came later on a loaded machine, and counted it to the run after).
    const published = async (): Promise<Record<string, unknown>[]> => {
      const report = await run(policyOf());
      expect(report.outcome).toBe('ok');
      return messages(report.published);
    };
    const nextRun = async (): Promise<Record<string, unknown>[]> => {
      emulator.advance(5 * 60_000);
      received.length = 0;
      return outbox(await published());
    };
    await published();
    plant(1);
    expect(await nextRun()).toMatchObject([
      { status: 'firing', details: { reason: 'outbox', dropped: 1 } },
    ]);
    expect((await store.listOutbox(PROJECT)).dropped).toBe(0);
    // Two more dropped (an outbox over its limit) while the alert fires.
    plant(2);
    expect(await nextRun()).toEqual([]);
    expect((await store.listOutbox(PROJECT)).dropped).toBe(2);
    // Runs every 5 minutes: the alert stays firing until it is due again (1 h), and says 2.
    const sent: Record<string, unknown>[] = [];
    for (let i = 0; i < 13 && sent.length === 0; i++) sent.push(...(await nextRun()));
    expect(sent).toMatchObject([{ status: 'firing', details: { reason: 'outbox', dropped: 2 } }]);
    expect((await store.listOutbox(PROJECT)).dropped).toBe(0);
    expect((await nextRun()).map((m) => m.status)).toEqual(['resolved']);
  });
});
