import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { MAX_ALERT_BYTES, type Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile, type ReconcileDeps } from '../../src/reconcile/reconcile.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { sharedPubSubEmulator } from '../support/shared-emulators.js';
import { onePoolFleet } from '../support/fixtures.js';
import { waitUntil } from '../support/wait.js';

/**
 * A state file a person or another program edited so that a record still reads, but Pub/Sub
 * cannot take the message it makes, through Google's Pub/Sub emulator:
 * - larger than any message Pub/Sub takes (10 MB:
 *   https://cloud.google.com/pubsub/quotas#resource_limits): a condition to resolve whose stored
 *   details are huge, and an outbox event with a huge string. Sent as stored, Pub/Sub refuses it
 *   at every run, and with it every alert of its pool, for good (the ordering key is the pool).
 *   Each is sent cut to what one alert may hold, saying so, and the run goes on.
 * - an event with no project: it would have an empty ordering key, which the publisher refuses
 *   before sending anything of the project. It is set aside like any unreadable entry.
 */

const PROJECT = 'ov-project';
const REGION = 'us-central1';
const POOL = `${PROJECT}/${REGION}/nvidia-l4/zonal`;

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

/** A pool of 4 GPUs, an idle service capped at 3 and a busy one at 1 (starved). */
const fleet = () =>
  new FleetModel(
    validateFleet(
      onePoolFleet(PROJECT, REGION, 4, [
        ['idle', 3, 0],
        ['busy', 1, 3],
      ]),
    ),
  );

/** A topic with a subscription receiving into `received`, a file store, and the run's deps. */
async function setUp(topicId: string) {
  const [topic] = await admin.createTopic(topicId);
  const [sub] = await topic.createSubscription(`${topicId}-all`, { enableMessageOrdering: true });
  const received: { alert: Alert; bytes: number }[] = [];
  sub.on('message', (m: Message) => {
    received.push({ alert: JSON.parse(m.data.toString('utf8')) as Alert, bytes: m.data.length });
    m.ack();
  });
  const dir = await mkdtemp(join(tmpdir(), 'governor-hostile-'));
  const model = fleet();
  const policy = parsePolicy({
    version: 1,
    projects: [PROJECT],
    defaults: { headroom: 0, scaleDownDelay: '0s' },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    alerts: { topic: `projects/${PROJECT}/topics/${topicId}` },
  });
  const store = createFileStateStore({ dir });
  // One attempt, soon given up: a message Pub/Sub refuses fails the run at once.
  const sink = createPubSubAlertSink({
    topic: `projects/${PROJECT}/topics/${topicId}`,
    maxAttempts: 1,
    attemptTimeoutMs: 5_000,
  });
  const log = memoryLogger();
  const deps: ReconcileDeps = {
    ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
    store,
    sink,
    log,
    now: async () => model.now,
    sleep: async () => {},
  };
  const file = join(dir, `${PROJECT}.json`);
  return {
    model,
    policy,
    store,
    log,
    deps,
    received,
    /** Changes the state file as a person with an editor would. */
    edit: async (change: (doc: StoredDoc) => void) => {
      const doc = JSON.parse(await readFile(file, 'utf8')) as StoredDoc;
      change(doc);
      await writeFile(file, JSON.stringify(doc));
    },
    close: async () => {
      await sub.close();
      await Promise.all([sink.close(), store.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface StoredDoc {
  conditions: { state: Record<string, unknown> };
  outbox?: unknown[];
  outboxSetAside?: { id: string }[];
}

/** An event of the pool, as a run of another day left it in the outbox. */
const leftEvent = (details: Record<string, unknown>): Alert => ({
  version: 1,
  id: `run-0:quota.changed:${POOL}:event`,
  type: 'quota.changed',
  status: 'event',
  severity: 'INFO',
  project: PROJECT,
  region: REGION,
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
  service: null,
  summary: 'The GPU quota changed',
  details,
  runId: 'run-0',
  time: '2026-11-27T12:39:00Z',
  dedupKey: `quota.changed:${POOL}`,
});

describe('a state record too large for Pub/Sub', () => {
  it('is published cut to what one alert holds, saying so, and the run goes on', async () => {
    const t = await setUp('alerts');
    try {
      await reconcile(t.policy, t.deps, { runId: 'run-1', deadlineMs: 60_000 });

      // The hand edit: 11 MB in a condition that no longer holds, and in an event left to send.
      const huge = 'x'.repeat(11_000_000);
      const gone = `pool.infeasible:${POOL}`;
      const event = leftEvent({ from: 3, to: 4, note: huge });
      await t.edit((doc) => {
        doc.conditions.state[gone] = {
          type: 'pool.infeasible',
          project: PROJECT,
          region: REGION,
          accelerator: 'nvidia-l4',
          zonalRedundancy: true,
          service: null,
          severity: 'CRITICAL',
          summary: 'Floors need more than the budget',
          details: { floors: 9, note: huge },
          firingSince: '2026-11-27T12:40:00Z',
          lastNotifiedAt: '2026-11-27T12:40:00Z',
          lastSeenAt: '2026-11-27T12:40:00Z',
          notifications: 1,
        };
        doc.outbox = [
          ...(doc.outbox ?? []),
          { alert: event, state: 'ready', storedAt: '2026-11-27T12:39:00.000Z' },
        ];
      });

      t.model.advance(5 * 60_000);
      const report = await reconcile(t.policy, t.deps, { runId: 'run-2', deadlineMs: 60_000 });
      expect(report.outcome).toBe('ok');
      await waitUntil(
        'the resolved condition and the event',
        () => t.received,
        (got) =>
          got.some((r) => r.alert.dedupKey === gone) && got.some((r) => r.alert.id === event.id),
      );
      const resolved = t.received.find((r) => r.alert.dedupKey === gone);
      expect(resolved?.alert.status).toBe('resolved');
      expect(resolved?.bytes).toBeLessThanOrEqual(MAX_ALERT_BYTES);
      expect(resolved?.alert.details['resolvedAt']).toBe(resolved?.alert.time);
      expect(resolved?.alert.details['omitted']).toEqual({
        lastDetails: expect.any(Number) as number,
      });
      const sent = t.received.find((r) => r.alert.id === event.id);
      expect(sent?.bytes).toBeLessThanOrEqual(MAX_ALERT_BYTES);
      expect(sent?.alert.details).toMatchObject({ from: 3, to: 4 });
      expect(sent?.alert.details['omitted']).toEqual({ note: expect.any(Number) as number });
      // Each cut is logged, and nothing of them is left to send again.
      expect(
        t.log.lines.filter((l) => l.severity === 'WARNING' && /omitted/.test(l.message)),
      ).toHaveLength(2);
      expect((await t.store.listOutbox(PROJECT)).entries).toEqual([]);
    } finally {
      await t.close();
    }
  }, 120_000);
});

describe('a stored alert with no project', () => {
  it('is set aside and announced, and every other alert of the project goes out', async () => {
    const t = await setUp('alerts-no-project');
    try {
      await reconcile(t.policy, t.deps, { runId: 'run-1', deadlineMs: 60_000 });
      // A project-wide event (no pool: its ordering key would be its project) with no project.
      const event: Alert = {
        ...leftEvent({ from: 3, to: 4 }),
        project: '',
        region: null,
        accelerator: null,
        zonalRedundancy: null,
      };
      await t.edit((doc) => {
        doc.outbox = [
          ...(doc.outbox ?? []),
          { alert: event, state: 'ready', storedAt: '2026-11-27T12:39:00.000Z' },
        ];
      });
      const before = t.received.length;
      t.model.advance(5 * 60_000);
      t.model.setQuota(
        { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true },
        6,
      );
      const report = await reconcile(t.policy, t.deps, { runId: 'run-2', deadlineMs: 60_000 });
      expect(report.outcome).toBe('ok');
      await waitUntil(
        "the second run's alerts",
        () => t.received.slice(before),
        (got) =>
          got.some((r) => r.alert.type === 'quota.changed') &&
          got.some((r) => r.alert.details['reason'] === 'outbox'),
      );
      expect(t.received.some((r) => r.alert.id === event.id)).toBe(false);
      // Set aside as it was stored, for a person to look at.
      await t.edit((doc) => {
        expect(doc.outboxSetAside?.map((e) => e.id)).toEqual([event.id]);
      });
    } finally {
      await t.close();
    }
  }, 120_000);
});
