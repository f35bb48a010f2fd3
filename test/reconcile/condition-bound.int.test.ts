/**
 * A run whose conditions do not all fit in the outbox (its bound drops the oldest entries to make
 * room) and that dies after saving its condition state, before the publish: the next run still
 * sends every condition's firing, before its resolve. The state counts as sent only what the
 * outbox kept until Pub/Sub takes the rest. Real clients: the governor's emulator for Cloud Run,
 * Google's Pub/Sub emulator (a subscription with ordering) and Google's Firestore emulator.
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

const PROJECT = 'cbound-project';
const REGION = 'us-central1';
/** A message beyond those awaited (a duplicate) would arrive in this quiet time. */
const QUIET_MS = 1_500;

let admin: PubSub;
let firestoreEndpoint: string;

beforeAll(async () => {
  const pubsub = await sharedPubSubEmulator(PROJECT);
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  admin = new PubSub({ projectId: PROJECT });
  firestoreEndpoint = (await sharedFirestoreEmulator('cbound-state')).endpoint;
  process.env.FIRESTORE_EMULATOR_HOST = firestoreEndpoint;
});

afterAll(async () => {
  await admin?.close();
  delete process.env.PUBSUB_EMULATOR_HOST;
  delete process.env.FIRESTORE_EMULATOR_HOST;
});

async function boundThenRunAgain(): Promise<void> {
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
            // pool.over-budget (lowered by the first run, resolved by the second) and both starved.
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
  // One entry: fewer than the first run's three conditions (and its events).
  const store = createFirestoreStateStore({
    projectId: 'cbound-state',
    collection: `cbound-${tag}`,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    outboxLimit: 1,
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
          if (dead) return new Promise<string>(() => {});
          const saved = await store.saveConditions(key, state, version);
          dead = true;
          return saved;
        },
      },
      () => dead,
    );
    const dyingSink: AlertSink = mortal({ publish: (m) => sink.publish(m) }, () => dead);
    void reconcile(policy, deps(dying, dyingSink), { runId: 'run-1', deadlineMs: 60_000 }).catch(
      () => {},
    );
    await waitUntil('the first run to die', () => dead, Boolean, { timeoutMs: 30_000 });
    await store.breakLease(PROJECT);
    emulator.advance(5 * 60_000);
    const second = await reconcile(policy, deps(store, sink), {
      runId: 'run-2',
      deadlineMs: 60_000,
    });
    expect(second.outcome).toBe('ok');
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
  } finally {
    await subscription.close();
    await Promise.all([ports.close(), sink.close(), store.close()]);
    await emulator.stop();
  }
}

describe('conditions beyond the outbox bound', () => {
  it(
    'are each sent by the next run when the run dies after saving its state',
    () => boundThenRunAgain(),
    90_000,
  );
});
