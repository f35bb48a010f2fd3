/**
 * The two conditions a run sends without holding the project's lease: `governor.degraded` (reason
 * `lease`) of a run refused the lease, and (reason `delivery`) of an organisation's unit whose
 * delivery failed. Each is stored in the outbox with its id before the state that counts it is
 * saved and before it is published, so a run killed between the publish and the save has the next
 * such run send it again under its first id (or nothing), never under a new one; the run that holds
 * the lease resolves it once. Another governor holds the lease, and writes the state, meanwhile.
 * Real clients: Google's Pub/Sub emulator (a subscription with ordering) and, as the state store,
 * memory, a state file and Google's Firestore emulator.
 *
 * Each test is a world of its own (its topic and subscription, its store, its fleet model), so the
 * tests of a describe run side by side (`describe.concurrent`): most of each is the quiet time in
 * which a duplicate would arrive, which they can wait out together. Each Firestore world has a
 * database of its own (databasesFor says why).
 */
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { memoryLogger } from '../../src/log.js';
import { alertFailedDelivery } from '../../src/org/unit.js';
import type { AlertSink, StateStore } from '../../src/ports/index.js';
import { reconcile, type ReconcileDeps } from '../../src/reconcile/reconcile.js';
import { databasesFor, FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { onePoolFleet } from '../support/fixtures.js';
import { mortal, pick } from '../support/mortal.js';
import { sharedFirestoreEmulator, sharedPubSubEmulator } from '../support/shared-emulators.js';
import { waitUntil } from '../support/wait.js';

const PROJECT = 'ua-project';
const REGION = 'us-central1';
/** A message beyond those awaited (a duplicate) would arrive in this quiet time. */
const QUIET_MS = 1_500;
/** Another governor's run, holding the project's lease. */
const HOLDER = 'gov-0123456789ab/run-holder@elsewhere:1';
/**
 * An organisation unit's time bound, as long as the runs' deadline: a unit past it sends its alert
 * without the outbox, which is right, but not what these tests are about.
 */
const UNIT_TIMEOUT_MS = 60_000;

let admin: PubSub;
/** The Firestore databases (projects) not in use by a world. */
const freeDatabases = databasesFor('ua-state', 6);

beforeAll(async () => {
  const pubsub = await sharedPubSubEmulator(PROJECT);
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  admin = new PubSub({ projectId: PROJECT });
  process.env.FIRESTORE_EMULATOR_HOST = (await sharedFirestoreEmulator(...freeDatabases)).endpoint;
});

afterAll(async () => {
  await admin?.close();
  delete process.env.PUBSUB_EMULATOR_HOST;
  delete process.env.FIRESTORE_EMULATOR_HOST;
});

type StoreKind = 'memory' | 'file' | 'firestore';
const KINDS: readonly StoreKind[] = ['memory', 'file', 'firestore'];

interface World {
  store: StateStore;
  sink: AlertSink;
  received: Alert[];
  policy: ReturnType<typeof parsePolicy>;
  deps: (store: StateStore, sink: AlertSink) => ReconcileDeps;
  /** A store and a sink that stop answering for good once Pub/Sub acknowledged a publish. */
  dying: () => { store: StateStore; sink: AlertSink; dead: () => boolean };
}

async function inWorld(kind: StoreKind, body: (w: World) => Promise<void>): Promise<void> {
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
    alerts: { topic: topicName, renotifyAfter: '1h' },
  });
  const dir = kind === 'file' ? await mkdtemp(join(tmpdir(), 'ua-state-')) : null;
  const database = kind === 'firestore' ? takeDatabase() : null;
  const store =
    database !== null
      ? createFirestoreStateStore({
          projectId: database,
          collection: `ua-${tag}`,
          timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
        })
      : dir !== null
        ? createFileStateStore({ dir })
        : createMemoryStateStore();
  const sink = createPubSubAlertSink({ topic: topicName, maxAttempts: 2, minBackoffMs: 10 });
  const deps = (s: StateStore, k: AlertSink): ReconcileDeps => ({
    ports: createSimPorts(model, { lagMs: 3 * 60_000 }),
    store: s,
    sink: k,
    log: memoryLogger(),
    now: async () => model.now,
    sleep: async () => {},
  });
  const dying = () => {
    let dead = false;
    return {
      store: mortal(pick(store), () => dead),
      sink: mortal<AlertSink>(
        {
          publish: async (messages) => {
            const results = await sink.publish(messages);
            dead = true;
            return results;
          },
        },
        () => dead,
      ),
      dead: () => dead,
    };
  };
  try {
    await body({ store, sink, received, policy, deps, dying });
  } finally {
    await subscription.close();
    await Promise.all([sink.close(), store.close()]);
    if (dir !== null) await rm(dir, { recursive: true, force: true });
    if (database !== null) freeDatabases.push(database);
  }
}

function takeDatabase(): string {
  const database = freeDatabases.pop();
  if (database === undefined)
    throw new Error('more Firestore worlds at once than databases reserved (freeDatabases)');
  return database;
}

/** The other governor writes the project's condition state, as its run would, while it holds the lease. */
async function holderSaves(store: StateStore): Promise<void> {
  const { state, version } = await store.loadConditions(PROJECT);
  await store.saveConditions(PROJECT, state, version);
}

/**
 * The holder's run ends (its lease broken): the next run takes the lease and resolves `key`, told
 * once under its first id `first` (toldOnce); nothing of it is left in the outbox or the state.
 */
async function nextRunResolvesOnce(
  w: Pick<World, 'store' | 'sink' | 'received' | 'policy' | 'deps'>,
  key: string,
  first: string,
): Promise<void> {
  await w.store.breakLease(PROJECT);
  const governed = await reconcile(w.policy, w.deps(w.store, w.sink), {
    runId: 'run-holder',
    deadlineMs: 60_000,
  });
  expect(governed.outcome).toBe('ok');
  await toldOnce(w.received, key, first);
  expect((await w.store.listOutbox(PROJECT)).entries).toEqual([]);
  expect(Object.keys((await w.store.loadConditions(PROJECT)).state)).not.toContain(key);
}

/** Every message of `key`, once the quiet time passed: one id per status, firing before resolved. */
async function toldOnce(received: readonly Alert[], key: string, first: string): Promise<void> {
  await waitUntil(
    `${key} to resolve`,
    () => received.some((a) => a.dedupKey === key && a.status === 'resolved'),
    Boolean,
    { timeoutMs: 30_000 },
  );
  await new Promise((r) => setTimeout(r, QUIET_MS));
  const of = received.filter((a) => a.dedupKey === key);
  expect([...new Set(of.filter((a) => a.status === 'firing').map((a) => a.id))]).toEqual([first]);
  expect(new Set(of.filter((a) => a.status === 'resolved').map((a) => a.id)).size).toBe(1);
  // Copies dropped by id, a subscriber hears it fire, then resolve.
  const seen = of.filter((a, i) => of.findIndex((b) => b.id === a.id) === i).map((a) => a.status);
  expect(seen).toEqual(['firing', 'resolved']);
}

describe.concurrent('a condition sent without the lease keeps its id after a crash', () => {
  for (const kind of KINDS) {
    it(
      `governor.degraded (lease), ${kind} store: the next refused run sends no new id`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, dying, sink }) => {
          const key = `governor.degraded:${PROJECT}:lease`;
          expect(
            (await store.acquireLease(PROJECT, HOLDER, 10 * 60_000, new Date().toISOString()))
              .acquired,
          ).toBe(true);
          const first = dying();
          void reconcile(policy, deps(first.store, first.sink), {
            runId: 'run-refused-1',
            deadlineMs: 60_000,
            leaseAttempts: 1,
          }).catch(() => {});
          await waitUntil('the refused run to die', first.dead, Boolean, { timeoutMs: 30_000 });
          await holderSaves(store);
          const again = await reconcile(policy, deps(store, sink), {
            runId: 'run-refused-2',
            deadlineMs: 60_000,
            leaseAttempts: 1,
          });
          expect(again.outcome).toBe('lease-held');
          await holderSaves(store);
          // The holder's run ends; the next run takes the lease and resolves the condition.
          await nextRunResolvesOnce(
            { store, sink, received, policy, deps },
            key,
            `run-refused-1:${key}:firing`,
          );
        }),
      90_000,
    );

    it(
      `governor.degraded (delivery), ${kind} store: the next failed delivery sends no new id`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, dying, sink }) => {
          const key = `governor.degraded:${PROJECT}:delivery`;
          const failed = (attempt: number) => ({
            project: PROJECT,
            verdict: { kind: 'last', attempt, maxAttempts: 5 } as const,
            cause: 'the run deadline passed while observing',
            messageId: '7',
            dispatchId: 'd-1',
          });
          // Another governor holds the lease and writes the state meanwhile.
          await store.acquireLease(PROJECT, HOLDER, 10 * 60_000, new Date().toISOString());
          const first = dying();
          const unit = (runId: string, s: StateStore, k: AlertSink) => ({
            store: s,
            sink: k,
            log: memoryLogger(),
            nowMs: Date.now(),
            runId,
            timeoutMs: UNIT_TIMEOUT_MS,
          });
          void alertFailedDelivery(
            policy,
            unit('unit-1', first.store, first.sink),
            failed(5),
          ).catch(() => {});
          await waitUntil('the unit to die', first.dead, Boolean, { timeoutMs: 30_000 });
          await holderSaves(store);
          const again = await alertFailedDelivery(policy, unit('unit-2', store, sink), failed(6));
          expect(again.outcome).not.toBe('unpublished');
          await holderSaves(store);
          await nextRunResolvesOnce(
            { store, sink, received, policy, deps },
            key,
            `unit-1:${key}:firing`,
          );
        }),
      90_000,
    );
  }
});

describe.concurrent("the holder's run meets a refused run's message in the outbox", () => {
  for (const kind of KINDS) {
    it(
      `${kind} store: it resolves the condition once, whichever saved first`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, dying, sink }) => {
          const key = `governor.degraded:${PROJECT}:lease`;
          // Once the holder has read the condition state, a run refused the lease stores its alert,
          // saves its state and dies once Pub/Sub took it: the holder's run then finds it in the
          // outbox, sends it again, resolves it, and saves over the refused run's state.
          let refused: ReturnType<typeof dying> | null = null;
          const racing: StateStore = Object.assign(Object.create(store) as StateStore, {
            loadConditions: async (project: string) => {
              const loaded = await store.loadConditions(project);
              if (refused === null) {
                const r = dying();
                refused = r;
                void reconcile(policy, deps(r.store, r.sink), {
                  runId: 'run-refused',
                  deadlineMs: 60_000,
                  leaseAttempts: 1,
                }).catch(() => {});
                await waitUntil('the refused run to die', r.dead, Boolean, { timeoutMs: 30_000 });
              }
              return loaded;
            },
          });
          const first = await reconcile(policy, deps(racing, sink), {
            runId: 'run-holder-1',
            deadlineMs: 60_000,
          });
          expect(first.outcome).toBe('ok');
          expect(Object.keys((await store.loadConditions(PROJECT)).state)).not.toContain(key);
          const next = await reconcile(policy, deps(store, sink), {
            runId: 'run-holder-2',
            deadlineMs: 60_000,
          });
          expect(next.outcome).toBe('ok');
          await toldOnce(received, key, `run-refused:${key}:firing`);
          expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
        }),
      90_000,
    );

    it(
      `${kind} store: the refused run saving after the holder does not fire it again`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, sink }) => {
          const key = `governor.degraded:${PROJECT}:lease`;
          await store.acquireLease(PROJECT, HOLDER, 10 * 60_000, new Date().toISOString());
          // The refused run has stored its alert; before it saves its state, the lease ends and a
          // run takes it, sends the stored alert, resolves it and saves.
          const holder: { report: Awaited<ReturnType<typeof reconcile>> | null } = { report: null };
          const late: StateStore = Object.assign(Object.create(store) as StateStore, {
            saveConditions: async (
              ...args: Parameters<StateStore['saveConditions']>
            ): Promise<string> => {
              if (holder.report === null) {
                await store.breakLease(PROJECT);
                holder.report = await reconcile(policy, deps(store, sink), {
                  runId: 'run-holder-1',
                  deadlineMs: 60_000,
                });
              }
              return store.saveConditions(...args);
            },
          });
          const refused = await reconcile(policy, deps(late, sink), {
            runId: 'run-refused',
            deadlineMs: 60_000,
            leaseAttempts: 1,
          });
          expect(refused.outcome).toBe('lease-held');
          expect(holder.report?.outcome).toBe('ok');
          expect(Object.keys((await store.loadConditions(PROJECT)).state)).not.toContain(key);
          const next = await reconcile(policy, deps(store, sink), {
            runId: 'run-holder-2',
            deadlineMs: 60_000,
          });
          expect(next.outcome).toBe('ok');
          await toldOnce(received, key, `run-refused:${key}:firing`);
          expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
        }),
      90_000,
    );
  }
});

/**
 * Every episode of `key` once the quiet time passed, by the `firingSince` its messages name: the
 * ids of its `firing` and `resolved` messages, copies dropped.
 */
/**
 * The holder's next run (run-holder-2) resolves the episode the second refused run fired: each
 * of the two episodes fired once and resolved once, by its own run, and nothing is left.
 */
async function nextHolderResolvesSecondEpisode(
  w: Pick<World, 'store' | 'sink' | 'received' | 'policy' | 'deps'>,
  key: string,
): Promise<void> {
  const next = await reconcile(w.policy, w.deps(w.store, w.sink), {
    runId: 'run-holder-2',
    deadlineMs: 60_000,
  });
  expect(next.outcome).toBe('ok');
  const episodes = await episodesOf(w.received, key, 2);
  expect([...episodes.values()]).toEqual([
    { firing: [`run-refused-1:${key}:firing`], resolved: [`run-holder-1:${key}:resolved`] },
    { firing: [`run-refused-2:${key}:firing`], resolved: [`run-holder-2:${key}:resolved`] },
  ]);
  expect((await w.store.listOutbox(PROJECT)).entries).toEqual([]);
  expect(Object.keys((await w.store.loadConditions(PROJECT)).state)).not.toContain(key);
}

async function episodesOf(
  received: readonly Alert[],
  key: string,
  resolves: number,
): Promise<Map<string, { firing: string[]; resolved: string[] }>> {
  await waitUntil(
    `${key} to resolve ${resolves} time(s)`,
    () =>
      new Set(
        received.filter((a) => a.dedupKey === key && a.status === 'resolved').map((a) => a.id),
      ).size >= resolves,
    Boolean,
    { timeoutMs: 30_000 },
  );
  await new Promise((r) => setTimeout(r, QUIET_MS));
  const episodes = new Map<string, { firing: string[]; resolved: string[] }>();
  for (const a of received) {
    if (a.dedupKey !== key || a.status === 'event') continue;
    const since = String(a.details['firingSince']);
    const e = episodes.get(since) ?? { firing: [], resolved: [] };
    const ids = a.status === 'firing' ? e.firing : e.resolved;
    if (!ids.includes(a.id)) ids.push(a.id);
    episodes.set(since, e);
  }
  return episodes;
}

describe.concurrent(
  'runs refused the lease stamped later than the holder, meeting its resolve',
  () => {
    for (const kind of KINDS) {
      it(
        `${kind} store: a run refused while the holder publishes its resolve fires a new episode, each resolved once`,
        () =>
          inWorld(kind, async ({ store, received, policy, deps, dying, sink }) => {
            const key = `governor.degraded:${PROJECT}:lease`;
            // A refused run starts after the holder's run did (it asks for the lease while that run
            // holds it): its firing is stamped later than the holder's resolve of it.
            const later = (s: StateStore, k: AlertSink, ms: number): ReconcileDeps => {
              const d = deps(s, k);
              return { ...d, now: async () => (await d.now()) + ms };
            };
            // Once the holder's run read the condition state, a refused run stores its alert, saves
            // the state and dies once Pub/Sub took it: the holder finds it in the outbox and resolves
            // it. While the holder publishes the two, before it removes them from the outbox, a
            // second refused run reads the holder's state and the outbox.
            let first: ReturnType<typeof dying> | null = null;
            const racing: StateStore = Object.assign(Object.create(store) as StateStore, {
              loadConditions: async (project: string) => {
                const loaded = await store.loadConditions(project);
                if (first === null) {
                  const r = dying();
                  first = r;
                  void reconcile(policy, later(r.store, r.sink, 20_000), {
                    runId: 'run-refused-1',
                    deadlineMs: 60_000,
                    leaseAttempts: 1,
                  }).catch(() => {});
                  await waitUntil('the refused run to die', r.dead, Boolean, { timeoutMs: 30_000 });
                }
                return loaded;
              },
            });
            let second: Awaited<ReturnType<typeof reconcile>> | null = null;
            const publishing = {
              publish: async (messages: Parameters<AlertSink['publish']>[0]) => {
                if (
                  second === null &&
                  messages.some((m) => m.attributes['status'] === 'resolved')
                ) {
                  second = await reconcile(policy, later(store, sink, 30_000), {
                    runId: 'run-refused-2',
                    deadlineMs: 60_000,
                    leaseAttempts: 1,
                  });
                }
                return sink.publish(messages);
              },
            } as AlertSink;
            const holder = await reconcile(policy, deps(racing, publishing), {
              runId: 'run-holder-1',
              deadlineMs: 60_000,
            });
            expect(holder.outcome).toBe('ok');
            expect((second as { outcome: string } | null)?.outcome).toBe('lease-held');
            // The second refused run's episode is told, and counted: the holder's next run resolves
            // it, not the first episode a second time.
            await nextHolderResolvesSecondEpisode({ store, sink, received, policy, deps }, key);
          }),
        90_000,
      );
    }
  },
);

describe.concurrent('the holder killed after its save, before its publish', () => {
  for (const kind of KINDS) {
    it(
      `${kind} store: a refused run after it fires a new episode, and its next run resolves that one`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, dying, sink }) => {
          const key = `governor.degraded:${PROJECT}:lease`;
          const later = (s: StateStore, k: AlertSink, ms: number): ReconcileDeps => {
            const d = deps(s, k);
            return { ...d, now: async () => (await d.now()) + ms };
          };
          // The holder's run finds a refused run's alert (stamped later than its start) in the
          // outbox, resolves it, saves its state, and dies as it publishes: both messages stay in
          // the outbox, the firing before the resolve.
          let dead = false;
          let first: ReturnType<typeof dying> | null = null;
          const holderStore = mortal<StateStore>(
            {
              ...pick(store),
              loadConditions: async (project: string) => {
                const loaded = await store.loadConditions(project);
                if (first === null) {
                  const r = dying();
                  first = r;
                  void reconcile(policy, later(r.store, r.sink, 20_000), {
                    runId: 'run-refused-1',
                    deadlineMs: 60_000,
                    leaseAttempts: 1,
                  }).catch(() => {});
                  await waitUntil('the refused run to die', r.dead, Boolean, {
                    timeoutMs: 30_000,
                  });
                }
                return loaded;
              },
            },
            () => dead,
          );
          const holderSink = {
            publish: () => {
              dead = true;
              return new Promise(() => {});
            },
          } as unknown as AlertSink;
          void reconcile(policy, deps(holderStore, holderSink), {
            runId: 'run-holder-1',
            deadlineMs: 60_000,
          }).catch(() => {});
          await waitUntil('the holder to die', () => dead, Boolean, { timeoutMs: 30_000 });
          expect(
            (await store.listOutbox(PROJECT)).entries
              .map((e) => e.alert)
              .filter((a) => a.dedupKey === key)
              .map((a) => a.id),
          ).toEqual([`run-refused-1:${key}:firing`, `run-holder-1:${key}:resolved`]);
          const again = await reconcile(policy, later(store, sink, 30_000), {
            runId: 'run-refused-2',
            deadlineMs: 60_000,
            leaseAttempts: 1,
          });
          expect(again.outcome).toBe('lease-held');
          await store.breakLease(PROJECT);
          await nextHolderResolvesSecondEpisode({ store, sink, received, policy, deps }, key);
        }),
      90_000,
    );
  }
});

describe.concurrent('a failed delivery alerted while the holder runs', () => {
  for (const kind of KINDS) {
    it(
      `${kind} store: the holder's run whose writes fail does not resolve it`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, dying, sink }) => {
          const key = `governor.degraded:${PROJECT}:delivery`;
          // Every write of the holder's run fails.
          const failing = (s: StateStore, k: AlertSink): ReconcileDeps => {
            const d = deps(s, k);
            return {
              ...d,
              ports: {
                ...d.ports,
                run: {
                  ...d.ports.run,
                  updateMaxInstances: async () => {
                    throw new Error('the write failed');
                  },
                },
              },
            };
          };
          // Once the holder's run read the condition state, a unit alerts its failed last delivery:
          // stores it, saves the state and dies once Pub/Sub took it, leaving it in the outbox.
          let unit: ReturnType<typeof dying> | null = null;
          const racing: StateStore = Object.assign(Object.create(store) as StateStore, {
            loadConditions: async (project: string) => {
              const loaded = await store.loadConditions(project);
              if (unit === null) {
                const u = dying();
                unit = u;
                void alertFailedDelivery(
                  policy,
                  {
                    store: u.store,
                    sink: u.sink,
                    log: memoryLogger(),
                    // On the clock of the runs.
                    nowMs: await deps(store, sink).now(),
                    runId: 'unit-1',
                    timeoutMs: UNIT_TIMEOUT_MS,
                  },
                  {
                    project: PROJECT,
                    verdict: { kind: 'last', attempt: 5, maxAttempts: 5 },
                    cause: 'the run deadline passed while observing',
                    messageId: '7',
                    dispatchId: 'd-1',
                  },
                ).catch(() => {});
                await waitUntil('the unit to die', u.dead, Boolean, { timeoutMs: 30_000 });
              }
              return loaded;
            },
          });
          const failed = await reconcile(policy, failing(racing, sink), {
            runId: 'run-failed',
            deadlineMs: 60_000,
          }).catch(() => null);
          expect(failed?.writes.some((w) => w.outcome === 'failed') ?? true).toBe(true);
          expect(Object.keys((await store.loadConditions(PROJECT)).state)).toContain(key);
          // The project's next run that succeeds resolves it, once.
          const governed = await reconcile(policy, deps(store, sink), {
            runId: 'run-governed',
            deadlineMs: 60_000,
          });
          expect(governed.outcome).toBe('ok');
          await toldOnce(received, key, `unit-1:${key}:firing`);
          expect(
            received.filter((a) => a.dedupKey === key && a.status === 'resolved')[0]?.runId,
          ).toBe('run-governed');
          expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
        }),
      90_000,
    );
  }
});

describe.concurrent('a run refused the lease killed before its save', () => {
  for (const kind of KINDS) {
    it(
      `${kind} store: the next refused run sends its stored alert under its id, and nothing new`,
      () =>
        inWorld(kind, async ({ store, received, policy, deps, sink }) => {
          const key = `governor.degraded:${PROJECT}:lease`;
          await store.acquireLease(PROJECT, HOLDER, 10 * 60_000, new Date().toISOString());
          // Killed as it saves the state: its alert is in the outbox, counted nowhere, not sent.
          let dead = false;
          const dying = mortal<StateStore>(
            {
              ...pick(store),
              saveConditions: () => {
                dead = true;
                return new Promise<string>(() => {});
              },
            },
            () => dead,
          );
          void reconcile(
            policy,
            deps(
              dying,
              mortal(sink, () => dead),
            ),
            {
              runId: 'run-refused-1',
              deadlineMs: 60_000,
              leaseAttempts: 1,
            },
          ).catch(() => {});
          await waitUntil('the refused run to die', () => dead, Boolean, { timeoutMs: 30_000 });
          expect((await store.listOutbox(PROJECT)).entries.map((e) => e.alert.id)).toEqual([
            `run-refused-1:${key}:firing`,
          ]);
          await holderSaves(store);
          const again = await reconcile(policy, deps(store, sink), {
            runId: 'run-refused-2',
            deadlineMs: 60_000,
            leaseAttempts: 1,
          });
          expect(again.outcome).toBe('lease-held');
          await nextRunResolvesOnce(
            { store, sink, received, policy, deps },
            key,
            `run-refused-1:${key}:firing`,
          );
        }),
      90_000,
    );
  }
});
