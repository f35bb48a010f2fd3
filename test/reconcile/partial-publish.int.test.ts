import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { createGooglePorts } from '../../src/adapters/index.js';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { RpcError, startEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile, RunFailedError } from '../../src/reconcile/reconcile.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * A publish that fails for one pool's ordering key while another pool's messages went out (the
 * real Pub/Sub client against the emulator's Publisher, its Publish refused for one key): the
 * next run sends what failed, and does not repeat what went out. Each condition still fires once
 * and resolves once, and an event that went out is not sent again.
 */

const PROJECT = 'pp-project';
const US = 'us-central1';
const EU = 'europe-west4';
const TOPIC = `projects/${PROJECT}/topics/alerts`;
const EU_KEY = `${PROJECT}/${EU}/nvidia-l4/zonal`;

/**
 * One pool's publish is refused in the first run; with `clearFails`, the store also fails to remove
 * the acknowledged events from the outbox in that run (the condition state must still record what
 * went out, so the next run does not send the US pool's conditions again as new episodes).
 */
async function onePoolFails(clearFails: boolean): Promise<void> {
  let refuse: string | null = EU_KEY;
  const emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      startupSeconds: 30,
      idleMinutes: 0,
      warmupMinutes: 40,
      topics: [TOPIC],
      projects: [
        {
          id: PROJECT,
          pools: [
            { region: US, quota: 4 },
            { region: EU, quota: 4 },
          ],
          services: [
            // us-central1: caps of 5 over a quota of 4 (pool.over-budget, fixed by the run).
            { name: 'idle', region: US, gpu: {}, maxInstances: 4, demand: 0 },
            { name: 'busy', region: US, gpu: {}, maxInstances: 1, demand: 3 },
            { name: 'eu', region: EU, gpu: {}, maxInstances: 6, demand: 1 },
          ],
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 20,
    faults: ({ method, request }) =>
      method.endsWith('Publisher/Publish') &&
      refuse !== null &&
      JSON.stringify(request).includes(`"${refuse}"`)
        ? new RpcError(status.UNAVAILABLE, 'unavailable for the test')
        : undefined,
  });
  const ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  const sink = createPubSubAlertSink({
    topic: TOPIC,
    emulatorHost: emulator.host,
    maxAttempts: 1,
  });
  const files = createFileStateStore({ dir: mkdtempSync(join(tmpdir(), 'governor-state-')) });
  let failClear = clearFails;
  const store: typeof files = {
    ...files,
    // The calls after the publish pass the dropped count announced; the one before does not.
    removeOutbox: (project, ids, ...announced) =>
      failClear && announced.length > 0
        ? Promise.reject(new Error('store unavailable for the test'))
        : files.removeOutbox(project, ids, ...announced),
  };
  try {
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [US, EU],
      defaults: { headroom: 0 },
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
      alerts: { topic: TOPIC, renotifyAfter: '1h' },
    });
    const deps = {
      ports,
      store,
      sink,
      log: memoryLogger(),
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
    };
    const sent = () => emulator.published(TOPIC).map((m) => JSON.parse(m.data ?? 'null') as Alert);
    const failed = await reconcile(policy, deps, { runId: 'run-1', deadlineMs: 60_000 }).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(RunFailedError);
    // The run's failure names as undelivered only what did not go out: the EU pool's.
    const undelivered = (failed as RunFailedError).report.undelivered;
    expect(undelivered.length).toBeGreaterThan(0);
    expect(undelivered.every((a) => a.region === EU)).toBe(true);
    const first = sent();
    expect(first.length).toBeGreaterThan(0);
    expect(first.every((a) => a.region === US)).toBe(true);
    expect(first.map((a) => [a.type, a.status])).toContainEqual(['pool.over-budget', 'firing']);
    // And the run's report counts what did go out as published, not as nothing.
    const failedReport = (failed as RunFailedError).report;
    expect(failedReport.published).toBe(first.length);
    expect(failedReport.alerts.map((a) => a.id).sort()).toEqual(first.map((a) => a.id).sort());

    refuse = null;
    failClear = false;
    for (const runId of ['run-2', 'run-3']) {
      emulator.advance(5 * 60_000);
      const report = await reconcile(policy, deps, { runId, deadlineMs: 60_000 });
      expect(report.outcome).toBe('ok');
    }
    const all = sent();
    // Nothing is sent twice under one id (but what an outbox kept, under its own ids), and
    // each condition fired once, in both pools: one id per dedupKey.
    const ids = all.map((a) => a.id);
    if (!clearFails) expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    expect(firingIdsPerKey(all).filter(([, n]) => n !== 1)).toEqual([]);
    expect(all.some((a) => a.status === 'firing' && a.dedupKey.includes(EU_KEY))).toBe(true);
    // The over-budget conditions the first run fixed resolve, once: the EU pool's firing, refused
    // by Pub/Sub, was kept in the outbox and goes out first, under the first run's id. Order holds
    // within a pool (its ordering key, core/run-alerts.ts orderingKey), not across pools: one
    // run's publishes of two pools may arrive either way round.
    const overBudget = [
      ...new Set(all.filter((a) => a.type === 'pool.over-budget').map((a) => a.id)),
    ].map((id) => {
      const a = all.find((m) => m.id === id);
      return [a?.region, a?.status, a?.runId];
    });
    expect(overBudget).toHaveLength(4);
    expect(overBudget.filter(([region]) => region === US)).toEqual([
      [US, 'firing', 'run-1'],
      [US, 'resolved', 'run-2'],
    ]);
    expect(overBudget.filter(([region]) => region === EU)).toEqual([
      [EU, 'firing', 'run-1'],
      [EU, 'resolved', 'run-2'],
    ]);
    // The EU pool's events, refused in the first run, went out later with their own ids.
    const rebalances = all.filter((a) => a.type === 'rebalance.applied').map((a) => a.id);
    expect([...new Set(rebalances)]).toEqual([
      `run-1:rebalance.applied:${PROJECT}/${US}/nvidia-l4/zonal:event`,
      `run-1:rebalance.applied:${EU_KEY}:event`,
    ]);
    // Sent by a later run, they still name the run that made them, and its time.
    const late = all.filter((a) => a.type === 'rebalance.applied' && a.region === EU);
    expect(late.map((a) => [a.runId, a.time])).toEqual(late.map(() => ['run-1', first[0]?.time]));
  } finally {
    await Promise.all([ports.close(), sink.close(), files.close()]);
    await emulator.stop();
  }
}

/** Per condition (dedupKey) that fired, how many ids its firing messages had. */
function firingIdsPerKey(all: readonly Alert[]): [string, number][] {
  const ids = new Map<string, Set<string>>();
  for (const a of all)
    if (a.status === 'firing') ids.set(a.dedupKey, (ids.get(a.dedupKey) ?? new Set()).add(a.id));
  return [...ids].map(([key, of]) => [key, of.size]);
}

it(
  'one pool fails to publish: the next run sends it, and repeats nothing the other pool sent',
  () => onePoolFails(false),
  60_000,
);

it(
  'one pool fails to publish and the store fails to clear the outbox: what went out is still recorded',
  () => onePoolFails(true),
  60_000,
);

/**
 * Every message went out, then the store failed to remove the published events from the outbox:
 * the condition state is saved all the same, so the next run does not send the same conditions
 * again as new episodes under new ids (the events left in the outbox go out again under their
 * own ids, which subscribers deduplicate on).
 */
it('a store failing to clear the outbox after a full publish still records the conditions sent', async () => {
  const REGION = 'us-central1';
  const emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      startupSeconds: 30,
      idleMinutes: 0,
      warmupMinutes: 40,
      topics: [TOPIC],
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 2 }],
          services: [
            // Over the quota (pool.over-budget until lowered) and starved for good.
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
  const sink = createPubSubAlertSink({ topic: TOPIC, emulatorHost: emulator.host, maxAttempts: 1 });
  const files = createFileStateStore({ dir: mkdtempSync(join(tmpdir(), 'governor-state-')) });
  let failClear = true;
  const store: typeof files = {
    ...files,
    // The call after the publish passes the dropped count announced; the one before it does not.
    removeOutbox: (project, ids, ...announced) =>
      failClear && announced.length > 0
        ? Promise.reject(new Error('store unavailable for the test'))
        : files.removeOutbox(project, ids, ...announced),
  };
  try {
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      defaults: { headroom: 0 },
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
      alerts: { topic: TOPIC, renotifyAfter: '1h' },
    });
    const deps = {
      ports,
      store,
      sink,
      log: memoryLogger(),
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
    };
    const sent = () => emulator.published(TOPIC).map((m) => JSON.parse(m.data ?? 'null') as Alert);
    const failed = await reconcile(policy, deps, { runId: 'run-1', deadlineMs: 60_000 }).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(RunFailedError);
    const first = sent().filter((a) => a.status === 'firing');
    expect(first.map((a) => a.type)).toContain('service.starved');

    failClear = false;
    emulator.advance(5 * 60_000);
    expect((await reconcile(policy, deps, { runId: 'run-2', deadlineMs: 60_000 })).outcome).toBe(
      'ok',
    );
    const all = sent();
    // Each condition fired once, under one id; the messages that stayed in the outbox went out
    // again, same id.
    expect(firingIdsPerKey(all).filter(([, n]) => n !== 1)).toEqual([]);
    const events = all.filter((a) => a.status === 'event');
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((a) => a.id)).size).toBeLessThan(events.length);
  } finally {
    await Promise.all([ports.close(), sink.close(), files.close()]);
    await emulator.stop();
  }
}, 60_000);
