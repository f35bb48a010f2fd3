import { PubSub, type Message } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { reconcile, type ReconcileDeps } from '../../src/reconcile/reconcile.js';
import { sharedPubSubEmulator } from '../support/shared-emulators.js';
import { onePoolFleet } from '../support/fixtures.js';
import { waitUntil } from '../support/wait.js';

/**
 * Two runs at once on one store: the second cannot take the lease, so it alerts
 * `governor.degraded` (reason lease) and saves that condition, while the holder is between
 * reading the condition state and saving it. The holder's save must not then fail its run (it
 * published its alerts, and would send them again under new ids); it keeps the other run's
 * condition, which the holder's next run resolves, once. Alerts through Google's Pub/Sub emulator.
 */

const PROJECT = 'lr-project';
const REGION = 'us-central1';
const TOPIC = `projects/${PROJECT}/topics/alerts`;

let admin: PubSub;
beforeAll(async () => {
  const emulator = await sharedPubSubEmulator(PROJECT);
  vi.stubEnv('PUBSUB_EMULATOR_HOST', emulator.endpoint);
  admin = new PubSub({ projectId: PROJECT });
});
afterAll(async () => {
  await admin?.close();
  vi.unstubAllEnvs();
});

describe('a run refused the lease saves its alert while the holder alerts', () => {
  it("the holder's run still succeeds, keeps the other's condition and resolves it next run", async () => {
    const [topic] = await admin.createTopic('alerts');
    const [sub] = await topic.createSubscription('all', { enableMessageOrdering: true });
    const received: Alert[] = [];
    sub.on('message', (m: Message) => {
      received.push(JSON.parse(m.data.toString('utf8')) as Alert);
      m.ack();
    });
    const model = new FleetModel(
      validateFleet(
        onePoolFleet(PROJECT, REGION, 4, [
          ['idle', 3, 0],
          ['busy', 1, 3],
        ]),
      ),
    );
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      defaults: { headroom: 0, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
      alerts: { topic: TOPIC },
    });
    const store = createMemoryStateStore();
    const sink = createPubSubAlertSink({ topic: TOPIC, maxAttempts: 2, minBackoffMs: 10 });
    const deps = (s: StateStore): ReconcileDeps => ({
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      store: s,
      sink,
      log: memoryLogger(),
      now: async () => model.now,
      sleep: async () => {},
    });
    const other: { report: Awaited<ReturnType<typeof reconcile>> | null } = { report: null };
    // The holder's store: once the holder has read the condition state, the other run goes.
    const racing: StateStore = Object.assign(Object.create(store) as StateStore, {
      loadConditions: async (project: string) => {
        const loaded = await store.loadConditions(project);
        other.report ??= await reconcile(policy, deps(store), {
          runId: 'run-other',
          deadlineMs: 60_000,
          leaseAttempts: 1,
        });
        return loaded;
      },
    });
    try {
      const first = await reconcile(policy, deps(racing), { runId: 'run-1', deadlineMs: 60_000 });
      expect(other.report?.outcome).toBe('lease-held');
      expect(first.outcome).toBe('ok');
      const lease = `governor.degraded:${PROJECT}:lease`;
      const state = (await store.loadConditions(PROJECT)).state;
      expect(Object.keys(state)).toContain(lease);
      expect(Object.keys(state).length).toBeGreaterThan(1);

      model.advance(5 * 60_000);
      const second = await reconcile(policy, deps(store), { runId: 'run-2', deadlineMs: 60_000 });
      expect(second.outcome).toBe('ok');
      await waitUntil(
        'the lease condition resolved',
        () => received.filter((a) => a.dedupKey === lease).map((a) => a.status),
        (s) => s.includes('resolved'),
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(received.filter((a) => a.dedupKey === lease).map((a) => a.status)).toEqual([
        'firing',
        'resolved',
      ]);
      // Every other condition fired once, in the holder's first run.
      const firing = received.filter((a) => a.status === 'firing').map((a) => a.dedupKey);
      expect(firing.filter((k, i) => firing.indexOf(k) !== i)).toEqual([]);
    } finally {
      await sub.close();
      await sink.close();
    }
  }, 120_000);
});
