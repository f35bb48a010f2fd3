import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createGooglePorts } from '../../src/adapters/index.js';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator } from '../../src/emulator/index.js';
import { UnavailableError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { reconcile, RunFailedError } from '../../src/reconcile/reconcile.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * One project whose alerting fails (its stored conditions cannot be read: a store fault, an
 * unreadable document) must not hold back the alerts of the projects after it. Before, the run
 * alerted project by project and stopped at the first failure, so a project failing at every run
 * kept every project after it silent for good: their events stayed in the outbox, their
 * conditions never fired. The real Pub/Sub client publishes to the emulator's topic; the state
 * store is the file store, its reads of one project's conditions refused while the fault lasts.
 */

const FIRST = 'ai-first';
const SECOND = 'ai-second';
const REGION = 'us-central1';
const TOPIC = `projects/${FIRST}/topics/alerts`;

it("a project whose alerts fail does not keep the next project's alerts from going out", async () => {
  // Each project: caps of 5 over a quota of 4 (pool.over-budget), which the run fixes.
  const project = (id: string) => ({
    id,
    pools: [{ region: REGION, quota: 4 }],
    services: [
      { name: 'idle', region: REGION, gpu: {}, maxInstances: 4, demand: 0 },
      { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: 3 },
    ],
  });
  const emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      startupSeconds: 30,
      idleMinutes: 0,
      warmupMinutes: 40,
      topics: [TOPIC],
      projects: [project(FIRST), project(SECOND)],
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
  let refused = new Set([FIRST]);
  const store: StateStore = {
    ...files,
    loadConditions: (p) =>
      refused.has(p)
        ? Promise.reject(
            new UnavailableError(`reading the conditions of ${p}: unavailable for the test`),
          )
        : files.loadConditions(p),
  };
  try {
    const policy = parsePolicy({
      version: 1,
      projects: [FIRST, SECOND],
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
    const caps = (id: string) =>
      emulator
        .state()
        .services.filter((s) => s.project === id)
        .reduce((n, s) => n + s.effectiveMax, 0);
    const sent = () => emulator.published(TOPIC).map((m) => JSON.parse(m.data ?? 'null') as Alert);
    const failed = await reconcile(policy, deps, { runId: 'run-1', deadlineMs: 60_000 }).catch(
      (e: unknown) => e,
    );
    // The run fails, naming the project whose alerts failed...
    expect(failed).toBeInstanceOf(RunFailedError);
    expect((failed as RunFailedError).report.error).toContain(`conditions of ${FIRST}`);
    // ...after both projects' caps were written within quota...
    for (const id of [FIRST, SECOND]) expect(caps(id)).toBeLessThanOrEqual(4);
    // ...and the second project's alerts went out all the same.
    const first = sent();
    expect(first.every((a) => a.project === SECOND)).toBe(true);
    expect(first.map((a) => [a.type, a.status])).toEqual(
      expect.arrayContaining([
        ['pool.over-budget', 'firing'],
        ['rebalance.applied', 'event'],
      ]),
    );
    expect((await store.listOutbox(SECOND)).entries).toEqual([]);
    expect((await store.listOutbox(FIRST)).entries.length).toBeGreaterThan(0);

    // Another writer raises a cap of the second project over the quota before the next run.
    emulator.edit({ project: SECOND, region: REGION, service: 'idle', maxInstances: 4 });
    expect(caps(SECOND)).toBeGreaterThan(4);
    emulator.advance(5 * 60_000);
    refused = new Set();
    const report = await reconcile(policy, deps, { runId: 'run-2', deadlineMs: 60_000 });
    expect(report.outcome).toBe('ok');
    const all = sent();
    // The first project's events, kept in its outbox, go out; nothing is sent twice.
    const ids = all.map((a) => a.id);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    expect(all.filter((a) => a.type === 'rebalance.applied').map((a) => a.id)).toEqual(
      expect.arrayContaining([
        `run-1:rebalance.applied:${FIRST}/${REGION}/nvidia-l4/zonal:event`,
        `run-1:rebalance.applied:${SECOND}/${REGION}/nvidia-l4/zonal:event`,
      ]),
    );
    for (const id of [FIRST, SECOND]) expect(caps(id)).toBeLessThanOrEqual(4);

    // Both projects failing: each tried, and the run's error names both.
    refused = new Set([FIRST, SECOND]);
    emulator.advance(5 * 60_000);
    const both = await reconcile(policy, deps, { runId: 'run-3', deadlineMs: 60_000 }).catch(
      (e: unknown) => e,
    );
    expect(both).toBeInstanceOf(RunFailedError);
    const error = (both as RunFailedError).report.error ?? '';
    expect(error).toContain('alerting failed in 2 projects');
    expect(error).toContain(`conditions of ${FIRST}`);
    expect(error).toContain(`conditions of ${SECOND}`);
  } finally {
    await Promise.all([ports.close(), sink.close(), files.close()]);
    await emulator.stop();
  }
}, 60_000);

/**
 * The run's error names the project whose alerts failed even when the failure itself does not (a
 * store's UNAVAILABLE, say): with many projects, it is the one way to tell which failed.
 */
it('one project failing: the run error names it, whatever the failure says', async () => {
  const project = (id: string) => ({
    id,
    pools: [{ region: REGION, quota: 4 }],
    services: [{ name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: 3 }],
  });
  const emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      startupSeconds: 30,
      idleMinutes: 0,
      warmupMinutes: 40,
      topics: [TOPIC],
      projects: [project(FIRST), project(SECOND)],
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
  const store: StateStore = {
    ...files,
    loadConditions: (p) =>
      p === SECOND
        ? Promise.reject(new UnavailableError('unavailable for the test'))
        : files.loadConditions(p),
  };
  try {
    const policy = parsePolicy({
      version: 1,
      projects: [FIRST, SECOND],
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
    const failed = await reconcile(policy, deps, { runId: 'run-1', deadlineMs: 60_000 }).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(RunFailedError);
    const error = (failed as RunFailedError).report.error ?? '';
    expect(error).toContain(SECOND);
    expect(error).not.toContain(FIRST);
    expect(error).toContain('unavailable for the test');
  } finally {
    await Promise.all([ports.close(), sink.close(), files.close()]);
    await emulator.stop();
  }
}, 60_000);
