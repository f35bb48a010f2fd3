/**
 * Regional units through the function's entry points, against the emulator (Cloud Run,
 * Monitoring, Cloud Quotas, Cloud Asset Inventory) and Google's real Pub/Sub emulator: with
 * `fanout.splitAbove`, a dispatch sends a project of two regions as two work messages, one per
 * region; the two units run at once, each with its own lease, state and run record, and each
 * writes only its own region. A run of the whole project (another actor on the same store) and a
 * regional unit of it never write at the same time, and no pool ever goes above its quota (the
 * emulator's invariant monitor). Two units of one project that run at once keep apart what they
 * tell: their own `unit/*` metric series, and their own project-wide conditions (dedupKey), as a
 * subscriber of the alert topic sees them.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { FleetInput } from '../../src/emulator/fleet.js';
import type { Alert } from '../../src/core/alert.js';
import { METRIC_PREFIX } from '../../src/core/governor-metrics.js';
import { textLogger } from '../../src/log.js';
import { orgView, renderOrgView } from '../../src/org/view.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import { createRuntime } from '../../src/runtime.js';
import { sharedPubSubEmulator, type SharedEmulator } from '../support/shared-emulators.js';
import { QUICK_POLL_ENV } from '../support/fixtures.js';

// Its own project in the run's shared Pub/Sub emulator (test/support/shared-emulators.ts).
const HOME = 'regional-home-proj';
const TOPIC = `projects/${HOME}/topics/gpu-governor-work`;
const ALERTS = 'gpu-governor-alerts';
const ORG = '123456789012';
const BIG = 'gpu-big-proj';
const SMALL = 'gpu-small-proj';
const REGIONS = ['europe-west4', 'us-central1'] as const;
const QUOTA = 4;

// The big project: 3 services in each of two regions (6 > splitAbove 4), each region's caps at 6
// on a quota of 4 (over budget: the governor lowers them). The small one: 2 services, one region.
const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 30,
  projects: [
    {
      id: BIG,
      pools: REGIONS.map((region) => ({ region, quota: QUOTA })),
      services: REGIONS.flatMap((region) =>
        [0, 1, 2].map((i) => ({
          name: `llm-${region}-${i}`,
          region,
          gpu: {},
          maxInstances: 2,
          demand: 1,
        })),
      ),
    },
    {
      id: SMALL,
      pools: [{ region: 'us-central1', quota: QUOTA }],
      services: [0, 1].map((i) => ({
        name: `llm-${i}`,
        region: 'us-central1',
        gpu: {},
        maxInstances: 1,
        demand: 1,
      })),
    },
  ],
  topics: [],
  hierarchy: { organization: ORG, folders: [], projects: {}, searchDenied: [] },
};

const POLICY = {
  version: 1,
  discovery: { organization: ORG },
  fanout: { topic: TOPIC, splitAbove: 4 },
  alerts: { topic: `projects/${HOME}/topics/${ALERTS}` },
  defaults: { headroom: 0, scaleDownDelay: '0s' },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
};

let emulator: RunningEmulator;
let pubsub: SharedEmulator;
let admin: PubSub;
let subscription: Subscription;
let alertSubscription: Subscription;
/** Every alert published to the alert topic, as a subscriber receives it. */
const alerts: { data: Alert; attributes: Record<string, string> }[] = [];
let dispatchServer: Server;
let unitServer: Server;
let dir: string;
const saved = { ...process.env };

const base = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
async function listen(server: Server): Promise<Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
async function post(server: Server, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(base(server), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}
const push = (data: Buffer | string) => ({
  message: { data: Buffer.from(data).toString('base64'), messageId: '1' },
  subscription: 'projects/x/subscriptions/y',
});
const message = (project: string, region?: string) =>
  JSON.stringify({
    version: 1,
    kind: 'govern',
    project,
    ...(region ? { region } : {}),
    dispatchId: 'd-test',
    issuedAt: new Date().toISOString(),
  });

beforeAll(async () => {
  pubsub = await sharedPubSubEmulator(HOME);
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  admin = new PubSub({ projectId: HOME, apiEndpoint: pubsub.endpoint });
  const [topic] = await admin.createTopic('gpu-governor-work');
  [subscription] = await topic.createSubscription('capture');
  const [alertTopic] = await admin.createTopic(ALERTS);
  [alertSubscription] = await alertTopic.createSubscription('alerts-capture');
  alertSubscription.on(
    'message',
    (m: { data: Buffer; attributes: Record<string, string>; ack(): void }) => {
      alerts.push({ data: JSON.parse(m.data.toString()) as Alert, attributes: m.attributes });
      m.ack();
    },
  );
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 20 });
  dir = await mkdtemp(join(tmpdir(), 'regional-fn-'));
  Object.assign(process.env, {
    ...emulator.env,
    ...QUICK_POLL_ENV,
    GOVERNOR_POLICY: JSON.stringify(POLICY),
    GOVERNOR_STATE_DIR: dir,
    GOVERNOR_RUN_DEADLINE: '60s',
    PUBSUB_EMULATOR_HOST: pubsub.endpoint,
  });
  await import('../../src/function/index.js');
  dispatchServer = await listen(getTestServer('governorDispatch'));
  unitServer = await listen(getTestServer('governorUnit'));
});

afterAll(async () => {
  await new Promise((r) => dispatchServer?.close(r));
  await new Promise((r) => unitServer?.close(r));
  await alertSubscription?.close();
  await admin?.close();
  await emulator?.stop();
  await rm(dir, { recursive: true, force: true });
  process.env = saved;
});

async function pullAll(
  expected: number,
): Promise<{ data: Buffer; attributes: Record<string, string>; ack(): void }[]> {
  const got: { data: Buffer; attributes: Record<string, string>; ack(): void }[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`pulled ${got.length} of ${expected}`)),
      20_000,
    );
    subscription.on(
      'message',
      (m: { data: Buffer; attributes: Record<string, string>; ack(): void }) => {
        got.push(m);
        if (got.length === expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    );
  });
  await subscription.close();
  return got;
}

/**
 * Every raise so far left its pool within the quota (a decrease of a pool over budget may only go
 * down: it is no breach), the monitor saw no violation, and every pool ends within its quota.
 */
function expectWithinQuota(): void {
  const over = emulator
    .writes()
    .filter((w) => w.after.maxInstances > w.before.maxInstances)
    .filter((w) => w.pool === null || w.pool.capsGpus > QUOTA)
    .map((w) => `${w.service.project}/${w.service.region}/${w.service.name}: ${w.pool?.capsGpus}`);
  expect(over).toEqual([]);
  expect(emulator.violations().violations).toEqual([]);
  for (const region of REGIONS) {
    const caps = emulator
      .state()
      .services.filter((s) => s.project === BIG && s.region === region)
      .reduce((sum, s) => sum + s.maxInstances, 0);
    expect(caps, region).toBeLessThanOrEqual(QUOTA);
  }
}

/**
 * A run of the whole big project on the same store, as `governor apply` would make it: with the
 * organisation's policy, or (`plain`) with a command line's own that sets no fan-out at all.
 */
async function wholeProjectRun(runId: string, plain = false) {
  const own = { ...POLICY, discovery: undefined, fanout: undefined };
  const policy = parsePolicy({ ...(plain ? own : POLICY), projects: [BIG] });
  const options = parseRuntimeOptions(process.env);
  const lines: string[] = [];
  const runtime = await createRuntime(policy, options, textLogger({ write: (s) => lines.push(s) }));
  try {
    const report = await reconcile(policy, runtime, {
      runId,
      deadlineMs: 60_000,
      leaseAttempts: 1,
    });
    return { report, log: lines.join('') };
  } finally {
    await runtime.close();
  }
}

/** Waits until the subscriber has received every alert the unit run said it published. */
async function receivedAll(answer: { status: number; text: string }): Promise<string> {
  const { runId, alertsPublished } = JSON.parse(answer.text) as {
    runId: string;
    alertsPublished: number;
  };
  const until = Date.now() + 20_000;
  while (alerts.filter((a) => a.data.runId === runId).length < alertsPublished) {
    if (Date.now() > until) throw new Error(`run ${runId}: not all of its alerts arrived`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return runId;
}

/**
 * Stores a firing `governor.degraded` (observation) condition under `key` (a project, or a
 * regional unit's `project@region`), as a run of that unit left it 5 minutes ago; returns the
 * condition's dedupKey.
 */
async function seedObservationCondition(
  store: ReturnType<typeof createFileStateStore>,
  project: string,
  region: string | null,
): Promise<string> {
  const unitKey = region === null ? project : `${project}@${region}`;
  const key = `governor.degraded:${region === null ? project : `${project}/${region}`}:observation`;
  const firing = new Date(emulator.now().getTime() - 5 * 60_000).toISOString();
  const before = await store.loadConditions(unitKey);
  await store.saveConditions(
    unitKey,
    {
      ...before.state,
      [key]: {
        type: 'governor.degraded',
        severity: 'WARNING',
        project,
        region,
        accelerator: null,
        zonalRedundancy: null,
        service: null,
        summary: `The governor could not read everything in ${project}${region === null ? '' : ` (${region})`}`,
        details: { reason: 'observation' },
        firingSince: firing,
        lastNotifiedAt: firing,
        lastSeenAt: firing,
        notifications: 1,
      },
    },
    before.version,
  );
  return key;
}

async function waitForLease(key: string): Promise<void> {
  const store = createFileStateStore({ dir });
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if ((await store.readLease(key)) !== null) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no lease on ${key} within 30 s`);
}

describe('regional units', () => {
  it('splits the big project into one unit per region and governs both at once', async () => {
    const d = await post(dispatchServer, {});
    expect(d.status, d.text).toBe(200);
    expect(JSON.parse(d.text)).toMatchObject({ units: 3, published: 3, failed: [] });

    const messages = await pullAll(3);
    for (const m of messages) m.ack();
    const units = messages
      .map((m) => JSON.parse(m.data.toString()) as { project: string; region?: string })
      .map((m) => `${m.project}${m.region ? `@${m.region}` : ''}`)
      .sort();
    expect(units).toEqual([`${BIG}@europe-west4`, `${BIG}@us-central1`, SMALL]);
    // Subscriptions can filter on the region.
    const attrs = messages.map((m) => m.attributes).filter((a) => a.project === BIG);
    expect(attrs.map((a) => a.region).sort()).toEqual([...REGIONS]);

    // Before any unit ran, the organisation view names each, a regional one as `project (region)`.
    const store = createFileStateStore({ dir });
    const policy = parsePolicy(POLICY);
    const before = await orgView(policy, store, {
      nowMs: emulator.now().getTime(),
      wallMs: Date.now(),
      clock: 'emulator',
    });
    expect(before.units.map((u) => [u.project, u.region ?? null])).toEqual([
      [BIG, 'europe-west4'],
      [BIG, 'us-central1'],
      [SMALL, null],
    ]);
    const text = renderOrgView(before, policy.alerts.pressure);
    expect(text).toContain(`${BIG} (europe-west4): never ran`);
    expect(text).toContain(`${BIG} (us-central1): never ran`);
    expect(text).toContain(`${SMALL}: never ran`);
    expect(JSON.parse(JSON.stringify(before)).units[0]).toMatchObject({ region: 'europe-west4' });

    // The units run at once, as Pub/Sub pushes them.
    const answers = await Promise.all(messages.map((m) => post(unitServer, push(m.data))));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    // At the same instant (the emulator's clock stands still), yet each unit's own figures were
    // taken: one series per unit, Monitoring's one point per 5 s per series notwithstanding.
    const duration = emulator
      .metricsWritten(`${METRIC_PREFIX}unit/duration`)
      .map((m) => [m.resource.labels['project_id'], m.metric.labels['unit'], m.points.length])
      .sort();
    expect(duration).toEqual([
      [BIG, 'europe-west4', 1],
      [BIG, 'us-central1', 1],
      [SMALL, 'project', 1],
    ]);
    expect(
      emulator
        .metricsWritten(`${METRIC_PREFIX}unit/writes`)
        .filter((m) => m.resource.labels['project_id'] === BIG)
        .map((m) => m.metric.labels['unit']),
    ).toHaveLength(6);

    // Each regional unit has its own run record, with its own region's pools only.
    for (const region of REGIONS) {
      const key = `${BIG}@${region}`;
      const runs = await store.listRuns(key);
      expect(runs, key).toHaveLength(1);
      expect(runs[0]?.outcome).toBe('ok');
      expect(Object.keys(runs[0]?.pools ?? {})).toEqual([`${BIG}/${region}/nvidia-l4/zonal`]);
      expect(await store.readLease(key)).toBeNull();
    }
    // Nothing was kept under the whole project's key.
    expect(await store.listRuns(BIG)).toEqual([]);
    expect((await store.listRuns(SMALL)).map((r) => r.outcome)).toEqual(['ok']);
    // Both regions were brought within their quota, by their own unit.
    const written = new Set(
      emulator
        .writes()
        .filter((w) => w.service.project === BIG)
        .map((w) => w.service.region),
    );
    expect([...written].sort()).toEqual([...REGIONS]);
    expectWithinQuota();

    const after = await orgView(policy, store, {
      nowMs: emulator.now().getTime(),
      wallMs: Date.now(),
      clock: 'emulator',
    });
    expect(after.totals).toMatchObject({ units: 3, ok: 3, failing: 0, stuck: 0 });
    expect(after.units.find((u) => u.region === 'us-central1')?.pools.map((p) => p.pool)).toEqual([
      `${BIG}/us-central1/nvidia-l4/zonal`,
    ]);
  }, 180_000);

  it('refuses a region the policy leaves out, or discovery did not count, writing nothing', async () => {
    const writes = emulator.writes().length;
    const cases: [string, string, RegExp][] = [
      ['uncounted region', message(BIG, 'asia-east1'), /counts no Cloud Run service/],
      ['unsplit project', message(SMALL, 'europe-west4'), /counts no Cloud Run service/],
      ['a zone', message(BIG, 'us-central1-a'), /invalid/],
      ['the separator', message(BIG, 'us-central1@x'), /invalid/],
    ];
    for (const [name, data, why] of cases) {
      const lines: string[] = [];
      const { handleUnitPush } = await import('../../src/function/org.js');
      const answer = await handleUnitPush(
        push(data),
        process.env,
        textLogger({ write: (s) => lines.push(s) }),
      );
      expect(answer.status, name).toBe(204);
      expect(lines.join(''), name).toMatch(why);
    }
    // A policy that does not split refuses every regional unit.
    process.env.GOVERNOR_POLICY = JSON.stringify({
      ...POLICY,
      fanout: { topic: TOPIC },
    });
    try {
      const lines: string[] = [];
      const { handleUnitPush } = await import('../../src/function/org.js');
      const answer = await handleUnitPush(
        push(message(BIG, 'europe-west4')),
        process.env,
        textLogger({ write: (s) => lines.push(s) }),
      );
      expect(answer.status).toBe(204);
      expect(lines.join('')).toMatch(/sets no fanout\.splitAbove/);
    } finally {
      process.env.GOVERNOR_POLICY = JSON.stringify(POLICY);
    }
    // A policy whose regions leave one out refuses its unit.
    process.env.GOVERNOR_POLICY = JSON.stringify({ ...POLICY, regions: ['us-central1'] });
    try {
      const lines: string[] = [];
      const { handleUnitPush } = await import('../../src/function/org.js');
      const answer = await handleUnitPush(
        push(message(BIG, 'europe-west4')),
        process.env,
        textLogger({ write: (s) => lines.push(s) }),
      );
      expect(answer.status).toBe(204);
      expect(lines.join('')).toMatch(/regions \(us-central1\) leave out europe-west4/);
    } finally {
      process.env.GOVERNOR_POLICY = JSON.stringify(POLICY);
    }
    expect(emulator.writes()).toHaveLength(writes);
    const store = createFileStateStore({ dir });
    expect(await store.listRuns(`${BIG}@asia-east1`)).toEqual([]);
  }, 60_000);

  it('a run of the whole project and a regional unit never write at the same time', async () => {
    const store = createFileStateStore({ dir });
    // More demand everywhere: each run has raises to make, so each would write.
    for (const region of REGIONS)
      for (const i of [0, 1, 2])
        emulator.setDemand({ project: BIG, region, service: `llm-${region}-${i}`, demand: 2 });
    emulator.advance(10 * 60_000);
    // Slow listings from here: a run holds its lease for over 10 s, longer than another's three
    // requests for it (2 s apart), so the two surely meet.
    emulator.setFaults({
      seed: 3,
      latency: [{ method: 'ListServices', minMs: 10_000, maxMs: 10_500 }],
    });

    // The whole project first; a regional unit pushed while it holds its lease is refused.
    const whole = wholeProjectRun('run-whole-1');
    await waitForLease(BIG);
    const unit = await post(unitServer, push(message(BIG, 'us-central1')));
    const first = await whole;
    expect(first.report.outcome, first.log).toBe('ok');
    expect(unit.status, unit.text).toBe(500);
    expect(JSON.parse(unit.text)).toMatchObject({
      region: 'us-central1',
      outcome: 'lease-held',
      written: 0,
    });
    expect(unit.text).toContain('a run of the whole project gpu-big-proj');
    // The whole project's run is recorded under the project's key, beside the units' own.
    expect((await store.listRuns(BIG)).map((r) => r.runId)).toEqual(['run-whole-1']);
    const byWhole = emulator.writes().filter((w) => w.service.project === BIG).length;

    // A regional unit first; a run of the whole project started meanwhile does nothing.
    for (const region of REGIONS)
      for (const i of [0, 1, 2])
        emulator.setDemand({ project: BIG, region, service: `llm-${region}-${i}`, demand: 0 });
    emulator.advance(40 * 60_000);
    const before = emulator.writes().length;
    const regional = post(unitServer, push(message(BIG, 'europe-west4')));
    await waitForLease(`${BIG}@europe-west4`);
    const second = await wholeProjectRun('run-whole-2');
    expect(second.report.outcome, second.log).toBe('lease-held');
    expect(second.log).toMatch(/the regional unit gpu-big-proj \(europe-west4\)/);
    // So does one under a command line's policy with no fan-out: the leases are the store's.
    const plain = await wholeProjectRun('run-whole-3', true);
    expect(plain.report.outcome, plain.log).toBe('lease-held');
    expect(plain.log).toMatch(/the regional unit gpu-big-proj \(europe-west4\)/);
    expect((await regional).status).toBe(200);
    // Only the regional unit wrote, and only in its region.
    const late = emulator.writes().slice(before);
    expect(late.map((w) => w.service.region).filter((r) => r !== 'europe-west4')).toEqual([]);
    expect(byWhole).toBeGreaterThan(0);
    expectWithinQuota();
    emulator.setFaults({});
    // Every lease was given back.
    for (const key of [BIG, `${BIG}@us-central1`, `${BIG}@europe-west4`])
      expect(await store.readLease(key), key).toBeNull();
  }, 180_000);
  it("a regional unit's project-wide condition is its own: the other unit neither fires nor resolves it", async () => {
    const store = createFileStateStore({ dir });
    const key = (region: string) => `governor.degraded:${BIG}/${region}:observation`;
    /** What a subscriber saw of one condition, by its dedupKey, in order. */
    const seen = (region: string) =>
      alerts.filter((a) => a.data.dedupKey === key(region)).map((a) => a.data.status);
    const denyListings = () =>
      emulator.setFaults({
        seed: 5,
        errors: [{ method: 'ListServices', code: 'PERMISSION_DENIED', rate: 1 }],
      });
    const run = async (region: string) => {
      const answer = await post(unitServer, push(message(BIG, region)));
      expect(answer.status, answer.text).toBe(200);
      return receivedAll(answer);
    };
    expect(seen('europe-west4')).toEqual([]);
    expect(seen('us-central1')).toEqual([]);

    // Both units cannot list their services, at once: each fires its own condition, once.
    emulator.advance(60_000);
    denyListings();
    await Promise.all(REGIONS.map(run));
    expect(seen('europe-west4')).toEqual(['firing']);
    expect(seen('us-central1')).toEqual(['firing']);
    const fired = alerts.filter((a) => REGIONS.some((r) => a.data.dedupKey === key(r)));
    for (const a of fired) {
      expect(a.data).toMatchObject({ project: BIG, accelerator: null, service: null });
      expect(a.attributes).toMatchObject({ project: BIG, region: a.data.region });
      expect(a.data.summary).toContain(`${BIG} (${a.data.region})`);
    }
    expect(fired.map((a) => a.data.region).sort()).toEqual([...REGIONS]);

    // us-central1 recovers while europe-west4 still cannot list: only its own condition resolves.
    emulator.advance(60_000);
    emulator.setFaults({});
    await run('us-central1');
    expect(seen('us-central1')).toEqual(['firing', 'resolved']);
    expect(seen('europe-west4')).toEqual(['firing']);
    emulator.advance(60_000);
    denyListings();
    await run('europe-west4');
    // Still firing (renotified only after renotifyAfter), and kept in its unit's state.
    expect(seen('europe-west4')).toEqual(['firing']);
    expect(Object.keys((await store.loadConditions(`${BIG}@europe-west4`)).state)).toContain(
      key('europe-west4'),
    );
    expect(Object.keys((await store.loadConditions(`${BIG}@us-central1`)).state)).not.toContain(
      key('us-central1'),
    );

    // europe-west4 recovers: its condition resolves, once.
    emulator.advance(60_000);
    emulator.setFaults({});
    await run('europe-west4');
    await run('europe-west4');
    expect(seen('europe-west4')).toEqual(['firing', 'resolved']);
    expect(seen('us-central1')).toEqual(['firing', 'resolved']);
    // None of it was ever keyed by the project alone, as a whole project's would be.
    expect(
      alerts.filter((a) => a.data.dedupKey === `governor.degraded:${BIG}:observation`),
    ).toEqual([]);
    expectWithinQuota();
  }, 180_000);

  it('a project the fan-out governs whole takes back what a short split of it left', async () => {
    // As a split of gpu-small-proj a few minutes long would have left it: a project-wide condition
    // of its unit of us-central1, still firing in that unit's state.
    const store = createFileStateStore({ dir });
    const unitKey = `${SMALL}@us-central1`;
    const key = await seedObservationCondition(store, SMALL, 'us-central1');
    emulator.advance(60_000);
    const answer = await post(unitServer, push(message(SMALL)));
    expect(answer.status, answer.text).toBe(200);
    await receivedAll(answer);
    expect(alerts.filter((a) => a.data.dedupKey === key).map((a) => a.data.status)).toEqual([
      'resolved',
    ]);
    expect((await store.loadConditions(unitKey)).state).toEqual({});
  }, 60_000);

  it('a regional unit that stops is named by the one that runs on, until it runs again', async () => {
    const key = `governor.degraded:${BIG}/us-central1:units-stopped`;
    const seen = () => alerts.filter((a) => a.data.dedupKey === key).map((a) => a.data.status);
    const run = async (region: string) => {
      const answer = await post(unitServer, push(message(BIG, region)));
      expect(answer.status, answer.text).toBe(200);
      return receivedAll(answer);
    };
    emulator.setFaults({});
    emulator.advance(60_000);
    await Promise.all(REGIONS.map(run));
    expect(seen()).toEqual([]);
    // europe-west4's unit stops running; us-central1's runs on, past fanout.staleAfter (30m).
    emulator.advance(31 * 60_000);
    await run('us-central1');
    expect(seen()).toEqual(['firing']);
    const fired = alerts.find((a) => a.data.dedupKey === key);
    expect(fired?.data).toMatchObject({
      type: 'governor.degraded',
      severity: 'ERROR',
      region: 'us-central1',
    });
    expect(fired?.data.summary).toContain(`1 regional unit of ${BIG} has not run for over 30m`);
    expect(fired?.data.summary).toContain('europe-west4 (last run planned at');
    // It runs again: us-central1's next run resolves it, once.
    emulator.advance(60_000);
    await run('europe-west4');
    await run('us-central1');
    await run('us-central1');
    expect(seen()).toEqual(['firing', 'resolved']);
    // Every such condition of this file's runs (the earlier tests let a unit wait too) resolved.
    const byKey = new Map<string, string[]>();
    for (const a of alerts.filter((x) => x.data.dedupKey.endsWith(':units-stopped')))
      byKey.set(a.data.dedupKey, [...(byKey.get(a.data.dedupKey) ?? []), a.data.status]);
    for (const statuses of byKey.values()) expect(statuses).toEqual(['firing', 'resolved']);
  }, 120_000);

  it('refuses a whole-project message for a project the kept discovery splits now, writing nothing', async () => {
    // A message of the whole big project: one a dispatch sent before the split, redelivered after
    // it, or one anybody who can publish sends. The dispatch that split the project sent its
    // regional units; a run of the whole project would take back what they keep firing (and
    // resolve their own project-wide conditions), and hold each of them off while it runs.
    const store = createFileStateStore({ dir });
    const unitKey = `${BIG}@us-central1`;
    await seedObservationCondition(store, BIG, 'us-central1');
    const kept = (await store.loadConditions(unitKey)).state;
    const runs = (await store.listRuns(BIG)).map((r) => r.runId);
    const writes = emulator.writes().length;
    const published = alerts.length;
    const lines: string[] = [];
    const { handleUnitPush } = await import('../../src/function/org.js');
    const answer = await handleUnitPush(
      push(message(BIG)),
      process.env,
      textLogger({ write: (s) => lines.push(s) }),
    );
    expect(answer.status).toBe(204);
    expect(lines.join('')).toMatch(
      /ignored a work message: gpu-big-proj: the kept discovery splits it into regional units \(europe-west4, us-central1\)/,
    );
    // A project the policy also lists is split all the same: the kept discovery decides, as it
    // does for the dispatch, which splits every project it sends.
    lines.length = 0;
    const listed = await handleUnitPush(
      push(message(BIG)),
      { ...process.env, GOVERNOR_POLICY: JSON.stringify({ ...POLICY, projects: [BIG] }) },
      textLogger({ write: (s) => lines.push(s) }),
    );
    expect(listed.status).toBe(204);
    expect(lines.join('')).toMatch(/the kept discovery splits it into regional units/);
    expect((await store.listRuns(BIG)).map((r) => r.runId)).toEqual(runs);
    expect((await store.loadConditions(unitKey)).state).toEqual(kept);
    expect(emulator.writes()).toHaveLength(writes);
    // Nothing was resolved or fired for it (the alert topic's subscriber has had time to see it).
    await new Promise((r) => setTimeout(r, 500));
    expect(alerts).toHaveLength(published);
  }, 60_000);

  it('refuses a regional message for a project the kept discovery does not split, writing nothing', async () => {
    // The small project lies in one region: the dispatch sends it whole. A regional message for
    // it (sent while it was split, redelivered after, or by anybody who can publish) would take
    // over the whole project's project-wide conditions and resolve them under its own keys.
    const store = createFileStateStore({ dir });
    await seedObservationCondition(store, SMALL, null);
    const kept = (await store.loadConditions(SMALL)).state;
    const writes = emulator.writes().length;
    const published = alerts.length;
    const lines: string[] = [];
    const { handleUnitPush } = await import('../../src/function/org.js');
    const answer = await handleUnitPush(
      push(message(SMALL, 'us-central1')),
      process.env,
      textLogger({ write: (s) => lines.push(s) }),
    );
    expect(answer.status).toBe(204);
    expect(lines.join('')).toMatch(
      /ignored a work message: gpu-small-proj \(us-central1\): the kept discovery does not split gpu-small-proj/,
    );
    expect(await store.listRuns(`${SMALL}@us-central1`)).toEqual([]);
    expect((await store.loadConditions(SMALL)).state).toEqual(kept);
    expect(emulator.writes()).toHaveLength(writes);
    await new Promise((r) => setTimeout(r, 500));
    expect(alerts).toHaveLength(published);
  }, 60_000);
});
