/**
 * A run that fires more conditions than the outbox holds (500 entries) while Pub/Sub is down: its
 * events, stored before its writes, stay in the outbox until they are published (docs/alerts.md),
 * and every condition still fires once. Google's Firestore emulator keeps the state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { RunFailedError } from '../../src/reconcile/run.js';
import { FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { sharedFirestoreEmulator } from '../support/shared-emulators.js';

const PROJECT = 'many-conditions';
const REGION = 'us-central1';
/** Each starved: more conditions than the outbox's 500 entries. */
const SERVICES = 600;

let store: StateStore;

beforeAll(async () => {
  const firestore = await sharedFirestoreEmulator('outbox-events-kept');
  process.env.FIRESTORE_EMULATOR_HOST = firestore.endpoint;
  store = createFirestoreStateStore({
    projectId: 'outbox-events-kept',
    collection: `oek-${Math.random().toString(16).slice(2)}`,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
  });
});

afterAll(async () => {
  await store?.close();
  delete process.env.FIRESTORE_EMULATOR_HOST;
});

describe('a run firing more conditions than the outbox holds, Pub/Sub down', () => {
  it('keeps its events in the outbox for the next run, and each condition fires once', async () => {
    const model = new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 10,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            perRegionLimit: SERVICES,
            pools: [{ region: REGION, quota: 10 }],
            services: Array.from({ length: SERVICES }, (_, i) => ({
              name: `s${String(i).padStart(3, '0')}`,
              region: REGION,
              gpu: {},
              maxInstances: 2,
              demand: 3,
            })),
          },
        ],
      }),
    );
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
    });
    // Pub/Sub refuses every message of the first run.
    const sink = new RecordingSink(() => 0);
    sink.failRate = 1;
    const deps = {
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      sink,
      log: memoryLogger(),
      now: async () => model.now,
      sleep: async () => {},
      store,
    };
    const failed = await reconcile(policy, deps, { runId: 'run-1', deadlineMs: 300_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(RunFailedError);
    const first = (failed as RunFailedError).report;
    const events = first.undelivered.filter((a) => a.status === 'event');
    expect(events.length).toBeGreaterThan(0);
    sink.failRate = 0;
    const second = await reconcile(policy, deps, { runId: 'run-2', deadlineMs: 300_000 });
    expect(second.outcome).toBe('ok');
    const delivered = new Set(sink.delivered.map((a) => a.id));
    expect(events.map((e) => e.id).filter((id) => !delivered.has(id))).toEqual([]);
    // Every condition was told firing once, before any resolve: those the first run stored
    // under its ids, the rest decided again by the second.
    const fired = [
      ...new Set(sink.delivered.filter((a) => a.status !== 'event').map((a) => a.dedupKey)),
    ];
    expect(fired.length).toBeGreaterThan(500);
    const told = (key: string) =>
      sink.delivered.filter((a) => a.dedupKey === key).map((a) => a.status);
    expect(
      fired.filter((key) => !['firing', 'firing,resolved'].includes(told(key).join(','))),
    ).toEqual([]);
  }, 300_000);
});
