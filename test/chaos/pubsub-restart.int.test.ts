import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { afterAll, describe, expect, it } from 'vitest';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { jsonLogger, memoryLogger } from '../../src/log.js';
import { reconcile, RunFailedError, type ReconcileDeps } from '../../src/reconcile/reconcile.js';
import type { StateStore } from '../../src/ports/index.js';
import { UnavailableError } from '../../src/core/errors.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { startPubSubEmulator } from '../support/pubsub-emulator.js';
import { sharedPubSubEmulator } from '../support/shared-emulators.js';
import type { RunningEmulator } from '../support/java-emulator.js';
import { onePoolFleet } from '../support/fixtures.js';
import { waitUntil } from '../support/wait.js';

/**
 * Rule 9 with Google's real Pub/Sub emulator stopped and started again: the run that cannot
 * publish fails loudly and keeps what it could not send; the first run after the restart sends
 * it (its conditions again, its events from the failed run's record). Pub/Sub is stopped on an
 * emulator of the test's own, and back on the one the run's files share, a new one to the test as
 * after a restart: one JVM started per test rather than two.
 */

const PROJECT = 'ps-project';
const REGION = 'us-central1';
const saved = process.env.PUBSUB_EMULATOR_HOST;
const running: RunningEmulator[] = [];

afterAll(async () => {
  await Promise.all(running.map((e) => e.stop()));
  if (saved === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
  else process.env.PUBSUB_EMULATOR_HOST = saved;
});

/** The pool every test here runs: 4 GPUs, an idle service capped at 3 and a busy one at 1. */
const twoServices = () =>
  new FleetModel(
    validateFleet(
      onePoolFleet(PROJECT, REGION, 4, [
        ['idle', 3, 0],
        ['busy', 1, 3],
      ]),
    ),
  );

/** Where a test publishes: a topic of its own, so that each test's messages are its own. */
const topicPath = (topic: string) => `projects/${PROJECT}/topics/${topic}`;

/**
 * A Pub/Sub emulator of the test's own, to stop: its topic and a subscription listening to it.
 * Pub/Sub back after it is stopped is another emulator (`backUp`), as after a restart.
 */
async function pubsub(topic: string): Promise<{
  emulator: RunningEmulator;
  received: Alert[];
  close(): Promise<void>;
}> {
  const emulator = await startPubSubEmulator();
  running.push(emulator);
  return { emulator, ...(await listen(emulator.endpoint, topic)) };
}

/**
 * Pub/Sub back up, or never down: the emulator the run's files share (never stopped here: a new
 * emulator to this test, as after a restart, without waiting for another JVM to start), with the
 * test's topic created on it and a subscription listening to it.
 */
async function backUp(topic: string): Promise<{ received: Alert[]; close(): Promise<void> }> {
  return listen((await sharedPubSubEmulator(PROJECT)).endpoint, topic);
}

/** The topic created on the emulator at `endpoint`, and every message published to it. */
async function listen(
  endpoint: string,
  topicId: string,
): Promise<{ received: Alert[]; close(): Promise<void> }> {
  process.env.PUBSUB_EMULATOR_HOST = endpoint;
  const admin = new PubSub({ projectId: PROJECT });
  const [topic] = await admin.createTopic(topicId);
  const [sub] = await topic.createSubscription(`all-${topicId}`, { enableMessageOrdering: true });
  const received: Alert[] = [];
  sub.on('message', (m: Message) => {
    received.push(JSON.parse(m.data.toString('utf8')) as Alert);
    m.ack();
  });
  return {
    received,
    close: async () => {
      await sub.close();
      await admin.close();
    },
  };
}

describe('the Pub/Sub emulator stopped and restarted', () => {
  it('a run that cannot publish fails loudly, and the next run sends what it could not', async () => {
    const model = twoServices();
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      defaults: { headroom: 0, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
      alerts: { topic: topicPath('alerts-restart') },
    });
    const store = createMemoryStateStore();
    const deps = (sink: ReconcileDeps['sink']): ReconcileDeps => ({
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      store,
      sink,
      log: memoryLogger(),
      now: async () => model.now,
      sleep: async () => {},
    });
    const retry = { maxAttempts: 2, minBackoffMs: 10, maxBackoffMs: 20, attemptTimeoutMs: 3_000 };

    const first = await pubsub('alerts-restart');
    const sink1 = createPubSubAlertSink({ topic: topicPath('alerts-restart'), ...retry });
    await reconcile(policy, deps(sink1), { runId: 'run-1', deadlineMs: 60_000 });
    await waitUntil(
      "the first run's alerts",
      () => first.received.length,
      (n) => n > 0,
    );
    await first.close();
    await first.emulator.stop();

    // Pub/Sub is down: a change to write (and announce), and a run that cannot announce it.
    model.setDemand({ project: PROJECT, region: REGION, name: 'idle' }, { constant: 2 });
    model.setQuota(
      { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true },
      6,
    );
    model.advance(10 * 60_000);
    // The preflight sees that Pub/Sub cannot be reached: that run stops before writing anything.
    const maxes = () => model.listServices().map((x) => x.maxInstances);
    const before = maxes();
    await expect(
      reconcile(policy, deps(sink1), { runId: 'run-2a', deadlineMs: 60_000 }),
    ).rejects.toThrow(/Nothing was written/);
    expect(maxes()).toEqual(before);
    // Pub/Sub going down after the preflight (a sink that cannot be tested stands for that):
    // the run writes, cannot publish, fails loudly and keeps its events.
    const untested: ReconcileDeps['sink'] = { publish: (m) => sink1.publish(m) };
    let failed: RunFailedError | null = null;
    try {
      await reconcile(policy, deps(untested), { runId: 'run-2', deadlineMs: 60_000 });
    } catch (e) {
      if (!(e instanceof RunFailedError)) throw e;
      failed = e;
    }
    await sink1.close();
    expect(failed?.report.outcome).toBe('failed');
    const lost = failed?.report.undelivered ?? [];
    expect(lost.length).toBeGreaterThan(0);
    // Kept in the outbox, and named by the failed run's record.
    expect((await store.listRuns(PROJECT))[0]?.undeliveredIds).toEqual(lost.map((a) => a.id));
    expect((await store.listOutbox(PROJECT)).entries.map((e) => e.alert.id)).toEqual(
      expect.arrayContaining(lost.map((a) => a.id)),
    );

    // Back up (a new emulator, as after a restart): the next run sends them.
    const second = await backUp('alerts-restart');
    const sink2 = createPubSubAlertSink({ topic: topicPath('alerts-restart'), ...retry });
    try {
      model.advance(5 * 60_000);
      await reconcile(policy, deps(sink2), { runId: 'run-3', deadlineMs: 60_000 });
      const ids = new Set(lost.map((a) => a.id));
      await waitUntil(
        'the alerts the failed run could not send',
        () => second.received.filter((a) => ids.has(a.id)).length,
        (n) => n === ids.size,
      );
      expect(
        second.received
          .filter((a) => ids.has(a.id))
          .map((a) => a.id)
          .sort(),
      ).toEqual([...ids].sort());
      expect(await store.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
    } finally {
      await sink2.close();
      await second.close();
    }
  }, 120_000);

  it('runs with Pub/Sub down lose no event to run-record eviction, and an overflowing outbox says how many it dropped', async () => {
    const model = twoServices();
    // A dry run: nothing is written, so every run plans the same changes and announces them
    // (rebalance.planned), one event per run.
    const policy = parsePolicy({
      version: 1,
      mode: 'dry-run',
      projects: [PROJECT],
      defaults: { headroom: 0, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      alerts: { topic: topicPath('alerts-evict') },
    });
    // Three run records, four events: both far below what a real store keeps, same rules.
    const memory = createMemoryStateStore({ keepRuns: 3, outboxLimit: 4 });
    // Every message ever stored, by id: the conditions the runs decided go into the outbox too.
    const everStored = new Set<string>();
    const store: typeof memory = {
      ...memory,
      putOutbox: (project, entries) => {
        for (const e of entries) everStored.add(e.alert.id);
        return memory.putOutbox(project, entries);
      },
    };
    const deps = (sink: ReconcileDeps['sink']): ReconcileDeps => ({
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      store,
      sink,
      log: memoryLogger(),
      now: async () => model.now,
      sleep: async () => {},
    });
    const retry = { maxAttempts: 2, minBackoffMs: 10, maxBackoffMs: 20, attemptTimeoutMs: 3_000 };

    const first = await pubsub('alerts-evict');
    const down = createPubSubAlertSink({ topic: topicPath('alerts-evict'), ...retry });
    // Pub/Sub going down after each run's preflight (which stops a run that cannot publish before
    // it does anything): a sink that cannot be tested stands for that.
    const untested: ReconcileDeps['sink'] = { publish: (m) => down.publish(m) };
    await first.close();
    await first.emulator.stop();
    const planned: string[] = [];
    for (let n = 1; n <= 6; n += 1) {
      model.advance(5 * 60_000);
      const failed = await reconcile(policy, deps(untested), {
        runId: `down-${n}`,
        deadlineMs: 60_000,
      }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(RunFailedError);
      const report = (failed as RunFailedError).report;
      planned.push(
        ...report.undelivered.filter((a) => a.type === 'rebalance.planned').map((a) => a.id),
      );
    }
    await down.close();
    expect(planned).toHaveLength(6);
    // The records of runs 1 to 3 are gone; their events are not, but for the two the bound dropped
    // (counted).
    expect((await store.listRuns(PROJECT)).map((r) => r.runId)).toEqual([
      'down-6',
      'down-5',
      'down-4',
    ]);
    const box = await store.listOutbox(PROJECT);
    // The first run's conditions, stored after its event, went with the two oldest events.
    expect(everStored.size).toBeGreaterThan(6);
    expect(box.dropped).toBe(everStored.size - 4);
    expect(box.entries.map((e) => e.alert.id)).toEqual(planned.slice(2));

    const second = await backUp('alerts-evict');
    const up = createPubSubAlertSink({ topic: topicPath('alerts-evict'), ...retry });
    try {
      model.advance(5 * 60_000);
      const report = await reconcile(policy, deps(up), { runId: 'up-1', deadlineMs: 60_000 });
      expect(report.outcome).toBe('ok');
      // Every event the bound kept, oldest first, and the run's own.
      await waitUntil(
        'the kept events and the run own',
        () => second.received.filter((a) => a.type === 'rebalance.planned').length,
        (n) => n >= 4,
      );
      expect(
        second.received.filter((a) => a.type === 'rebalance.planned').map((a) => a.runId),
      ).toEqual(['down-4', 'down-5', 'down-6', 'up-1']);
      // The overflow alert fired in a run that could not send it, was stored, and went the way of
      // the oldest messages (counted itself): it is already firing, so the count stands, every
      // message the bound dropped in it, until the alert is due again (renotifyAfter, 1h).
      const standing = await store.listOutbox(PROJECT);
      expect(standing).toEqual({ entries: [], dropped: everStored.size - 4 });
      model.advance(60 * 60_000);
      expect(
        (await reconcile(policy, deps(up), { runId: 'up-2', deadlineMs: 60_000 })).outcome,
      ).toBe('ok');
      await waitUntil(
        'the overflow alert',
        () => second.received.filter((a) => a.type === 'governor.degraded').length,
        (n) => n >= 1,
      );
      expect(second.received.filter((a) => a.type === 'governor.degraded')).toMatchObject([
        { status: 'firing', details: { reason: 'outbox', dropped: standing.dropped } },
      ]);
      expect(await store.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
    } finally {
      await up.close();
      await second.close();
    }
  }, 180_000);

  it('55 runs with Pub/Sub unreachable, more than the 50 run records kept, then Pub/Sub back: every event is sent', async () => {
    const model = twoServices();
    // A dry run: every run plans the same changes and announces them (rebalance.planned).
    const policy = parsePolicy({
      version: 1,
      mode: 'dry-run',
      projects: [PROJECT],
      defaults: { headroom: 0, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      alerts: { topic: topicPath('alerts-fifty') },
    });
    // The CLI's store with its default bounds: 50 run records, 500 undelivered messages. Before the
    // outbox, a failed run kept its events in its run record, so the records of the first five
    // runs, evicted before Pub/Sub came back, took their events with them.
    const RUNS_DOWN = 55;
    const dir = await mkdtemp(join(tmpdir(), 'governor-pubsub-fifty-'));
    const store = createFileStateStore({ dir });
    const deps = (sink: ReconcileDeps['sink']): ReconcileDeps => ({
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      store,
      sink,
      log: memoryLogger(),
      now: async () => model.now,
      sleep: async () => {},
    });
    const retry = { maxAttempts: 2, minBackoffMs: 10, maxBackoffMs: 20, attemptTimeoutMs: 3_000 };
    try {
      const first = await pubsub('alerts-fifty');
      const down = createPubSubAlertSink({ topic: topicPath('alerts-fifty'), ...retry });
      // Down after each run's preflight, as above.
      const untested: ReconcileDeps['sink'] = { publish: (m) => down.publish(m) };
      await first.close();
      await first.emulator.stop();
      const undelivered: string[] = [];
      for (let n = 1; n <= RUNS_DOWN; n += 1) {
        model.advance(5 * 60_000);
        const failed = await reconcile(policy, deps(untested), {
          runId: `down-${String(n).padStart(2, '0')}`,
          deadlineMs: 60_000,
        }).catch((e: unknown) => e);
        expect(failed).toBeInstanceOf(RunFailedError);
        const report = (failed as RunFailedError).report;
        expect(report.outcome).toBe('failed');
        undelivered.push(
          ...report.undelivered.filter((a) => a.type === 'rebalance.planned').map((a) => a.runId),
        );
      }
      await down.close();
      expect(undelivered).toHaveLength(RUNS_DOWN);
      expect(await store.listOutbox(PROJECT)).toMatchObject({ dropped: 0 });
      // Each run's event, and the conditions the first run decided (fired once, sent once).
      const kept = (await store.listOutbox(PROJECT)).entries.map((e) => e.alert);
      expect(kept.filter((a) => a.status === 'event')).toHaveLength(RUNS_DOWN);
      const conditions = kept.filter((a) => a.status !== 'event');
      expect(conditions.filter((a) => a.runId === 'down-01').length).toBeGreaterThan(0);
      // Later runs sent none again, but for the re-notifications due once an hour.
      expect(
        conditions.filter((a) => a.runId !== 'down-01' && a.details['renotify'] !== true),
      ).toEqual([]);
      expect((await store.listRuns(PROJECT)).map((r) => r.runId)).not.toContain('down-05');

      const second = await backUp('alerts-fifty');
      const up = createPubSubAlertSink({ topic: topicPath('alerts-fifty'), ...retry });
      try {
        model.advance(5 * 60_000);
        const report = await reconcile(policy, deps(up), { runId: 'up-01', deadlineMs: 60_000 });
        expect(report.outcome).toBe('ok');
        const sent = await waitUntil(
          'the kept events and the run own',
          () => second.received.filter((a) => a.type === 'rebalance.planned').map((a) => a.runId),
          (ids) => ids.length >= RUNS_DOWN + 1,
        );
        // Every one, oldest first, once; none dropped, so no overflow alert.
        expect(sent).toEqual([...undelivered, 'up-01']);
        expect(
          second.received.filter(
            (a) => a.type === 'governor.degraded' && a.details['reason'] === 'outbox',
          ),
        ).toEqual([]);
        expect(await store.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
        expect((await store.listRuns(PROJECT)).map((r) => r.runId)).toHaveLength(50);
      } finally {
        await up.close();
        await second.close();
      }
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('events of writes with the state store failing', () => {
  const policy = parsePolicy({
    version: 1,
    projects: [PROJECT],
    defaults: { headroom: 0, scaleDownDelay: '0s' },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    alerts: { topic: topicPath('alerts-store') },
  });
  const retry = { maxAttempts: 2, minBackoffMs: 10, maxBackoffMs: 20, attemptTimeoutMs: 3_000 };
  /** The store, failing every outbox write of the given state while `down.on`. */
  const failing = (
    store: StateStore,
    state: 'pending-outcome' | 'ready',
    down: { on: boolean },
  ): StateStore => ({
    ...store,
    putOutbox: async (project, entries) => {
      if (down.on && entries.some((e) => e.state === state))
        throw new UnavailableError('UNAVAILABLE: the state store is unavailable (test)');
      return store.putOutbox(project, entries);
    },
  });
  const maxes = (model: FleetModel) =>
    Object.fromEntries(model.listServices().map((x) => [x.name, x.maxInstances]));

  it('a run that wrote but could not store how it went, its writes undone by another writer before the next run: the next run still announces them, as not confirmed', async () => {
    const model = twoServices();
    const base = createMemoryStateStore();
    const down = { on: true };
    const store = failing(base, 'ready', down);
    const ps = await backUp('alerts-store');
    const sink = createPubSubAlertSink({ topic: topicPath('alerts-store'), ...retry });
    const deps = (): ReconcileDeps => ({
      ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
      store,
      sink,
      log: memoryLogger(),
      now: async () => model.now,
      sleep: async () => {},
    });
    try {
      const before = maxes(model);
      const failed = await reconcile(policy, deps(), { runId: 'wrote', deadlineMs: 60_000 }).catch(
        (e: unknown) => e,
      );
      expect(failed).toBeInstanceOf(RunFailedError);
      const written = maxes(model);
      expect(written).not.toEqual(before);
      // Its planned event is in the outbox, stored before the writes.
      expect((await base.listOutbox(PROJECT)).entries).toMatchObject([
        { state: 'pending-outcome', alert: { runId: 'wrote', type: 'rebalance.applied' } },
      ]);
      // Another writer puts every cap back before the next run looks: nothing the event
      // describes shows, yet the writes were made.
      for (const [name, max] of Object.entries(before))
        model.update({ project: PROJECT, region: REGION, name }, { maxInstances: max });
      down.on = false;
      model.advance(5 * 60_000);
      const report = await reconcile(policy, deps(), { runId: 'next', deadlineMs: 60_000 });
      expect(report.outcome).toBe('ok');
      await waitUntil(
        "the failed run's event",
        () => ps.received.filter((a) => a.runId === 'wrote').length,
        (n) => n >= 1,
      );
      const settled = ps.received.filter((a) => a.runId === 'wrote');
      expect(settled).toHaveLength(1);
      expect(settled[0]).toMatchObject({
        type: 'rebalance.applied',
        details: { outcome: 'not-confirmed', writes: [], settledBy: 'next' },
      });
      const unconfirmed = settled[0]?.details['unconfirmed'] as {
        service: string;
        to: number;
        seenNow: number | null;
      }[];
      expect(
        unconfirmed.map((w) => [w.service, w.to, w.seenNow]).sort(([a], [b]) => (a! < b! ? -1 : 1)),
      ).toEqual(
        Object.keys(written)
          .filter((name) => written[name] !== before[name])
          .sort()
          .map((name) => [name, written[name], before[name]]),
      );
      expect(settled[0]?.summary).toMatch(/not confirmed/);
      expect(await base.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
    } finally {
      await sink.close();
      await ps.close();
    }
  }, 120_000);

  it('the store failing before the events are stored and Pub/Sub down: nothing is written, and the failure is one structured ERROR line', async () => {
    const model = twoServices();
    const store = failing(createMemoryStateStore(), 'pending-outcome', { on: true });
    // Pub/Sub down after the preflight: a sink that cannot be tested and never answers.
    const sink: ReconcileDeps['sink'] = {
      publish: async () => {
        throw new UnavailableError('UNAVAILABLE: Pub/Sub is unreachable (test)');
      },
    };
    const lines: string[] = [];
    const before = maxes(model);
    const failed = await reconcile(
      policy,
      {
        ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
        store,
        sink,
        log: jsonLogger({ write: (s: string) => lines.push(s) }),
        now: async () => model.now,
        sleep: async () => {},
      },
      { runId: 'unstored', deadlineMs: 60_000 },
    ).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(RunFailedError);
    expect((failed as RunFailedError).report.plan?.changes.length).toBeGreaterThan(0);
    expect(maxes(model)).toEqual(before);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const failures = entries.filter((e) => 'runFailed' in e);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      severity: 'ERROR',
      message: 'run failed: UNAVAILABLE: the state store is unavailable (test) (unstored)',
      '@type': 'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent',
      runFailed: { runId: 'unstored', written: 0, failedWrites: 0, published: 0 },
    });
  });
});
