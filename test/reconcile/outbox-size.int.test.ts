/**
 * An event larger than one outbox entry may hold, over Google's Firestore emulator: a pool of
 * thousands of services makes a rebalance event over Firestore's 1 MiB document
 * (https://cloud.google.com/firestore/quotas). Before, storing it failed the run, every run,
 * before any alert went out (and, enforcing, before any write: the planned event is stored first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { alertBytes, MAX_ALERT_BYTES } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { sharedFirestoreEmulator } from '../support/shared-emulators.js';

const PROJECT = 'big-pool';
const REGION = 'us-central1';
/** 7,500 of them lowered or raised in one pool: about 1.1 MB of changes in one event. */
const SERVICES = 15_000;

let store: StateStore;
let other: StateStore;

beforeAll(async () => {
  const firestore = await sharedFirestoreEmulator('outbox-size');
  process.env.FIRESTORE_EMULATOR_HOST = firestore.endpoint;
  const collection = `os-${Math.random().toString(16).slice(2)}`;
  store = createFirestoreStateStore({
    projectId: 'outbox-size',
    collection,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
  });
  // Another governor's client on the same database.
  other = createFirestoreStateStore({
    projectId: 'outbox-size',
    collection,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
  });
});

afterAll(async () => {
  await store?.close();
  await other?.close();
  delete process.env.FIRESTORE_EMULATOR_HOST;
});

describe('an event over what one outbox entry holds', () => {
  it('is stored and published with its longest list cut, saying how much; the run does not fail', async () => {
    const model = new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        // Enough minutes for the usage to be read (3 minutes late); the model plays each of them
        // for all 15,000 services, so no more than that.
        warmupMinutes: 10,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            // More services in one region than Cloud Run's default allows: a raised limit.
            perRegionLimit: SERVICES,
            pools: [{ region: REGION, quota: SERVICES }],
            services: Array.from({ length: SERVICES }, (_, i) => ({
              name: `s${String(i).padStart(5, '0')}-${'x'.repeat(40)}`,
              region: REGION,
              gpu: {},
              maxInstances: i % 2 ? 3 : 1,
              demand: i % 2 ? 0 : 3,
            })),
          },
        ],
      }),
    );
    const policy = parsePolicy({
      version: 1,
      mode: 'dry-run',
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: {} }],
      limits: { maxChangesPerRun: 10_000 },
    });
    const sink = new RecordingSink();
    const log = memoryLogger();
    const deps = {
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      sink,
      log,
      now: async () => model.now,
      sleep: async () => {},
    };
    const report = await reconcile(
      policy,
      { ...deps, store },
      { runId: 'r-big', deadlineMs: 120_000 },
    );
    expect(report.outcome).toBe('ok');
    const changes = report.plan?.changes.length ?? 0;
    expect(changes).toBe(SERVICES / 2);
    const planned = sink.delivered.filter((a) => a.type === 'rebalance.planned');
    expect(planned).toHaveLength(1);
    const event = planned[0];
    if (!event) throw new Error('no rebalance.planned');
    expect(alertBytes(event)).toBeLessThanOrEqual(MAX_ALERT_BYTES);
    const kept = (event.details['changes'] as unknown[]).length;
    expect(kept).toBeGreaterThan(changes / 2);
    expect(kept).toBeLessThan(changes);
    expect(event.details['truncated']).toEqual({ changes: { kept, of: changes } });
    // Its summary still counts every change; the cut is logged.
    expect(event.summary).toContain(`${changes} changes`);
    expect(
      log.lines.filter((l) => l.severity === 'WARNING' && l.message.includes('details.truncated')),
    ).toHaveLength(1);
    // Published, so gone from the outbox; the other client sees the same.
    expect(await other.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
  }, 120_000);
});
