/**
 * A run that dies in the middle of sending its conditions (a SIGKILL, in-process: the store and
 * the sink stop answering at one step) has the next run send them again under the same `id` and
 * `dedupKey`, so a subscriber drops the second copy by `id`. Real clients: the governor's emulator
 * for Cloud Run, Google's Pub/Sub emulator (a subscription with ordering) and Google's Firestore
 * emulator for the state store. And a run whose conditions do not all fit in the outbox (its bound
 * drops the oldest entries to make room) and that dies after saving its condition state, before
 * the publish: the next run still sends every condition's firing, before its resolve; the state
 * counts as sent only what the outbox kept until Pub/Sub takes the rest.
 */
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGooglePorts } from '../../src/adapters/index.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import type { AlertSink, StateStore } from '../../src/ports/index.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';
import { mortal, pick } from '../support/mortal.js';
import { sharedFirestoreEmulator, sharedPubSubEmulator } from '../support/shared-emulators.js';
import { waitUntil } from '../support/wait.js';

const PROJECT = 'cid-project';
const REGION = 'us-central1';
/** A message beyond those awaited (a duplicate) would arrive in this quiet time. */
const QUIET_MS = 1_500;

let admin: PubSub;
let firestoreEndpoint: string;

beforeAll(async () => {
  const pubsub = await sharedPubSubEmulator(PROJECT);
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  admin = new PubSub({ projectId: PROJECT });
  firestoreEndpoint = (await sharedFirestoreEmulator('cid-state')).endpoint;
  process.env.FIRESTORE_EMULATOR_HOST = firestoreEndpoint;
});

afterAll(async () => {
  await admin?.close();
  delete process.env.PUBSUB_EMULATOR_HOST;
  delete process.env.FIRESTORE_EMULATOR_HOST;
});

/** Where the first run dies. */
type CrashPoint =
  | 'after Pub/Sub acknowledged the publish'
  | 'just before the condition state is saved'
  | 'just after the condition state is saved';

/**
 * Runs the fleet once, killing the run at `crash`, then again; `received` is every message the
 * subscription got. `outboxLimit`: the store's bound on outbox entries.
 */
async function crashThenRunAgain(
  crash: CrashPoint,
  check: (received: readonly Alert[], store: StateStore) => Promise<void>,
  outboxLimit?: number,
): Promise<void> {
  const tag = Math.random().toString(16).slice(2, 10);
  const topicName = `projects/${PROJECT}/topics/alerts-${tag}`;
  const [topic] = await admin.createTopic(`alerts-${tag}`);
  const [subscription]: [Subscription, ...unknown[]] = await topic.createSubscription(
    `all-${tag}`,
    { enableMessageOrdering: true },
  );
  const received: Alert[] = [];
  subscription.on('message', (m: Message) => {
    received.push(JSON.parse(m.data.toString('utf8')) as Alert);
    m.ack();
  });
  const emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      startupSeconds: 30,
      idleMinutes: 0,
      warmupMinutes: 40,
      topics: [topicName],
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 2 }],
          services: [
            // Caps of 6 over a quota of 2: pool.over-budget, which the first run lowers (and the
            // second resolves), and both starved for good.
            { name: 'a', region: REGION, gpu: {}, maxInstances: 3, demand: 3 },
            { name: 'b', region: REGION, gpu: {}, maxInstances: 3, demand: 3 },
          ],
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 20,
  });
  const ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  const sink = createPubSubAlertSink({ topic: topicName, maxAttempts: 2 });
  const store = createFirestoreStateStore({
    projectId: 'cid-state',
    collection: `cid-${tag}`,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    ...(outboxLimit === undefined ? {} : { outboxLimit }),
  });
  const policy = parsePolicy({
    version: 1,
    projects: [PROJECT],
    regions: [REGION],
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    alerts: { topic: topicName, renotifyAfter: '1h' },
  });
  const deps = (s: StateStore, k: AlertSink) => ({
    ports,
    store: s,
    sink: k,
    log: memoryLogger(),
    now: () => Promise.resolve(emulator.now().getTime()),
    sleep: async () => {},
  });
  try {
    let dead = false;
    const dying: StateStore = mortal(
      {
        ...pick(store),
        saveConditions: async (key, state, version) => {
          if (crash === 'just before the condition state is saved') dead = true;
          if (dead) return new Promise<string>(() => {});
          const saved = await store.saveConditions(key, state, version);
          if (crash === 'just after the condition state is saved') dead = true;
          return saved;
        },
      },
      () => dead,
    );
    const dyingSink: AlertSink = mortal(
      {
        publish: async (messages) => {
          const results = await sink.publish(messages);
          if (crash === 'after Pub/Sub acknowledged the publish') dead = true;
          return results;
        },
      },
      () => dead,
    );
    void reconcile(policy, deps(dying, dyingSink), { runId: 'run-1', deadlineMs: 60_000 }).catch(
      () => {},
    );
    await waitUntil('the first run to die', () => dead, Boolean, { timeoutMs: 30_000 });
    // Cleared as a person would (`governor unlock`); time moves on.
    await store.breakLease(PROJECT);
    emulator.advance(5 * 60_000);
    const second = await reconcile(policy, deps(store, sink), {
      runId: 'run-2',
      deadlineMs: 60_000,
    });
    expect(second.outcome).toBe('ok');
    await check(received, store);
  } finally {
    await subscription.close();
    await Promise.all([ports.close(), sink.close(), store.close()]);
    await emulator.stop();
  }
}

/** Every condition's firing under one id, whichever run sent it and how many times. */
async function sentOnceUnderOneId(received: readonly Alert[], store: StateStore): Promise<void> {
  await waitUntil(
    'the over-budget condition to resolve',
    () => received.some((a) => a.type === 'pool.over-budget' && a.status === 'resolved'),
    Boolean,
    { timeoutMs: 30_000 },
  );
  await new Promise((r) => setTimeout(r, QUIET_MS));
  const firing = received.filter((a) => a.status === 'firing');
  const idsOf = new Map<string, Set<string>>();
  for (const a of firing) idsOf.set(a.dedupKey, (idsOf.get(a.dedupKey) ?? new Set()).add(a.id));
  expect([...idsOf].filter(([, ids]) => ids.size > 1).map(([key, ids]) => [key, [...ids]])).toEqual(
    [],
  );
  const overBudget = received.filter((a) => a.type === 'pool.over-budget');
  expect(new Set(overBudget.filter((a) => a.status === 'firing').map((a) => a.id))).toEqual(
    new Set([`run-1:${overBudget[0]?.dedupKey}:firing`]),
  );
  expect(overBudget.filter((a) => a.status === 'resolved')).toHaveLength(1);
  expect(firing.map((a) => a.dedupKey)).toContain(
    `service.starved:${PROJECT}/${REGION}/nvidia-l4/zonal:a`,
  );
  // Nothing is left for a third run to send.
  expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
}

describe('a condition sent again after a crash keeps its id', () => {
  for (const crash of [
    'after Pub/Sub acknowledged the publish',
    'just before the condition state is saved',
    'just after the condition state is saved',
  ] as const) {
    it(`the first run dies ${crash}`, () => crashThenRunAgain(crash, sentOnceUnderOneId), 90_000);
  }
});

/** Both services still starved, each told firing once; the lowered pool never resolved unfired. */
async function everyConditionSent(received: readonly Alert[]): Promise<void> {
  const starvedFiring = () =>
    received.filter((a) => a.type === 'service.starved' && a.status === 'firing');
  await waitUntil(
    'both services starved to be told',
    () => new Set(starvedFiring().map((a) => a.service)).size === 2,
    Boolean,
    { timeoutMs: 30_000 },
  );
  await new Promise((r) => setTimeout(r, QUIET_MS));
  // Still starved: each told firing once (the second run's, or the first's sent again).
  expect(starvedFiring()).toHaveLength(2);
  // Lowered by the first run: never told resolved unless told firing first.
  const overBudget = received.filter((a) => a.type === 'pool.over-budget').map((a) => a.status);
  expect([[], ['firing', 'resolved']]).toContainEqual(overBudget);
}

describe('conditions beyond the outbox bound', () => {
  it(
    'are each sent by the next run when the run dies after saving its state',
    // One entry: fewer than the first run's three conditions (and its events).
    () => crashThenRunAgain('just after the condition state is saved', everyConditionSent, 1),
    90_000,
  );
});
