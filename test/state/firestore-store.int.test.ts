/**
 * The Firestore store against Google's real Firestore emulator, started here (a failure to start
 * it fails the tests): the shared contract, the documents as stored, what is read back being
 * parsed, and a stopped emulator failing fast with a typed error.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';

import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { UnavailableError } from '../../src/core/errors.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { makeAlert } from '../../src/core/conditions.js';
import { decideNotifications, type ConditionState } from '../../src/core/notify.js';
import type { PressureLedger } from '../../src/core/quota-pressure.js';
import {
  ClockSkewError,
  StateCorruptError,
  StateTooLargeError,
  type RunRecord,
  type StateStore,
} from '../../src/ports/index.js';
import {
  FIRESTORE_CALL_TIMEOUT_MS,
  startFirestoreEmulator,
} from '../support/firestore-emulator.js';
import { quietRun } from '../support/fixtures.js';
import type { RunningEmulator } from '../support/java-emulator.js';
import {
  CONTRACT_KEEP_RUNS,
  CONTRACT_OUTBOX_LIMIT,
  freshProject,
  stateStoreContract,
  newerRunRecordContract,
  unreadableConditionsContract,
  unreadableCountContract,
  unreadableLeaseContract,
  unreadableOutboxContract,
} from './contract.js';
import { transpileForNode } from './transpile.js';

const projectId = 'governor-test';
const collection = 'gpu-governor';
const at = '2026-11-27T10:00:00.000Z';

/** An outbox entry of `project`, ready to publish, told apart by `n` (its run). */
const outboxEntry = (project: string, n: number) => ({
  alert: makeAlert(
    { at, runId: `run-${n}` },
    { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
    { type: 'rebalance.applied', status: 'event', severity: 'INFO', summary: 's', details: {} },
  ),
  state: 'ready' as const,
  storedAt: at,
});

let emulator: RunningEmulator;
let store: StateStore;
let raw: Firestore;

beforeAll(async () => {
  emulator = await startFirestoreEmulator();
  vi.stubEnv('FIRESTORE_EMULATOR_HOST', emulator.endpoint);
  store = createFirestoreStateStore({
    projectId,
    keepRuns: CONTRACT_KEEP_RUNS,
    outboxLimit: CONTRACT_OUTBOX_LIMIT,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
  });
  raw = new Firestore({ projectId });
});

afterAll(async () => {
  await store?.close();
  await raw?.terminate();
  await emulator?.stop();
  vi.unstubAllEnvs();
});

stateStoreContract('Firestore store', () => store);

unreadableLeaseContract(
  'Firestore store',
  () => store,
  async (project, value) => {
    // A unit key (`project@region`) is stored under its escaped id, as the store names it.
    await raw.doc(`${collection}/${encodeURIComponent(project)}/state/lease`).set(value);
  },
);

/** Two unreadable outbox entries, stored beside the readable ones, bypassing the store. */
async function plantUnreadableEntries(project: string): Promise<void> {
  const box = `${collection}/${project}/outbox`;
  await raw
    .doc(`${box}/zzz`)
    .set({ json: 'garbage', state: 'ready', storedAt: '2026-01-01T00:00:00Z', order: '0' });
  // No time it was stored, and a newer version's state.
  await raw.doc(`${box}/yyy`).set({ json: '{}', state: 'sent-by-v9', order: '1' });
}

unreadableOutboxContract(
  'Firestore store',
  () => store,
  plantUnreadableEntries,
  async (project) => (await raw.collection(`${collection}/${project}/outbox-set-aside`).get()).size,
);

// A document holds any fields and a field any type
// (https://firebase.google.com/docs/firestore/manage-data/data-types): before, each of these
// failed every run that read the count.
unreadableCountContract('Firestore store', {
  open: () => store,
  openOther: () =>
    createFirestoreStateStore({
      projectId,
      outboxLimit: CONTRACT_OUTBOX_LIMIT,
      timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    }),
  variants: [
    { what: 'a negative count ({dropped: -5})', value: { dropped: -5 }, quote: '{"dropped":-5}' },
    { what: 'a string ({dropped: "x"})', value: { dropped: 'x' }, quote: '{"dropped":"x"}' },
    { what: 'no count ({})', value: {}, quote: '{}' },
    {
      what: 'a string of 100 KB',
      value: { dropped: 'y'.repeat(100_000) },
      quote: /^\{"dropped":"y{87}…$/,
    },
  ],
  plant: async (project, value) => {
    await raw.doc(`${collection}/${project}/state/outbox`).set(value as Record<string, unknown>);
  },
  stored: async (project) => (await raw.doc(`${collection}/${project}/state/outbox`).get()).data(),
  asStored: (n) => ({ dropped: n }),
  plantEntries: plantUnreadableEntries,
});

// Before, one such record made the whole state unreadable: every run failed after its writes,
// before publishing any alert, for good after a rollback.
unreadableConditionsContract('Firestore store', {
  open: () => store,
  openOther: () => createFirestoreStateStore({ projectId, timeoutMs: FIRESTORE_CALL_TIMEOUT_MS }),
  plant: async (project, records) => {
    const ref = raw.doc(`${collection}/${project}/state/conditions`);
    const stored = JSON.parse(String((await ref.get()).get('json'))) as object;
    await ref.update({ json: JSON.stringify({ ...stored, ...records }) });
  },
  stored: async (project) =>
    JSON.parse(
      String((await raw.doc(`${collection}/${project}/state/conditions`).get()).get('json')),
    ) as Record<string, unknown>,
});

// Before, one field a newer version added to a record's pools or ledger failed every run after
// its writes, before any alert.
newerRunRecordContract('Firestore store', {
  open: () => store,
  rewrite: async (project, runId, change) => {
    const ref = raw.doc(`${collection}/${project}/runs/${runId}`);
    const data = (await ref.get()).data();
    if (data === undefined) throw new Error(`no document ${ref.path}`);
    change(data);
    await ref.set(data);
  },
});

describe('Firestore store: documents', () => {
  it('lays out conditions, lease and runs under the collection, per project', async () => {
    const project = freshProject();
    await store.saveConditions(project, {}, null);
    await store.acquireLease(project, 'alpha', 60_000, at);
    await store.recordRun(project, {
      runId: 'run/1',
      startedAt: at,
      finishedAt: at,
      mode: 'dry-run',
      outcome: 'ok',
      changes: 0,
      skips: 0,
      alerts: 0,
      error: null,
    });
    const base = `${collection}/${project}`;
    expect((await raw.doc(`${base}/state/conditions`).get()).data()).toMatchObject({ json: '{}' });
    expect((await raw.doc(`${base}/state/lease`).get()).data()).toMatchObject({
      holder: 'alpha',
      expiresAt: '2026-11-27T10:01:00.000Z',
    });
    const runs = await raw.collection(`${base}/runs`).get();
    expect(runs.docs.map((d) => d.id)).toEqual(['run%2F1']);
    expect(runs.docs[0]?.data()).toMatchObject({ runId: 'run/1', mode: 'dry-run' });
  });

  it('uses another collection when told to', async () => {
    const other = createFirestoreStateStore({ projectId, collection: 'elsewhere' });
    try {
      const project = freshProject();
      await other.acquireLease(project, 'alpha', 60_000, at);
      expect((await raw.doc(`elsewhere/${project}/state/lease`).get()).exists).toBe(true);
      expect(await store.acquireLease(project, 'beta', 60_000, at)).toMatchObject({
        acquired: true,
      });
    } finally {
      await other.close();
    }
  });

  it('reports stored documents that do not parse as StateCorruptError', async () => {
    const project = freshProject();
    const base = `${collection}/${project}`;
    await raw.doc(`${base}/state/conditions`).set({ json: '[{"type": "nope"}]', savedAt: at });
    await expect(store.loadConditions(project)).rejects.toBeInstanceOf(StateCorruptError);
    await raw.doc(`${base}/state/conditions`).set({ json: 'not json', savedAt: at });
    await expect(store.loadConditions(project)).rejects.toBeInstanceOf(StateCorruptError);
    await raw.doc(`${base}/state/conditions`).set({ gz: Buffer.from('not gzip'), savedAt: at });
    await expect(store.loadConditions(project)).rejects.toBeInstanceOf(StateCorruptError);
    await raw.doc(`${base}/state/lease`).set({ holder: 7 });
    await expect(store.acquireLease(project, 'a', 60_000, at)).rejects.toBeInstanceOf(
      StateCorruptError,
    );
  });

  it("takes no lease on a machine whose clock is more than 30 s from Firestore's", async () => {
    const DAY = 86_400_000;
    const offBy = (ms: number) =>
      createFirestoreStateStore({ projectId, wallClock: () => Date.now() + ms });
    const project = freshProject();
    const now = () => new Date().toISOString();
    for (const [skew, word] of [
      [-DAY, 'behind'],
      [DAY, 'ahead of'],
    ] as const) {
      const skewed = offBy(skew);
      try {
        // A day behind, its lease would have expired for everyone else at once; a day ahead, it
        // would hold them off a day. Each would time the lease on its own clock.
        const asked = new Date(Date.now() + skew).toISOString();
        const error: unknown = await skewed.acquireLease(project, 'skewed', 60_000, asked).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ClockSkewError);
        expect(String(error)).toContain(`86,400 s ${word} Firestore's`);
        expect((await raw.doc(`${collection}/${project}/state/lease`).get()).exists).toBe(false);
        await expect(skewed.renewLease(project, 'skewed', 60_000, asked)).rejects.toBeInstanceOf(
          ClockSkewError,
        );
      } finally {
        await skewed.close();
      }
    }
    // Within the skew two machines may have, the lease is taken.
    const close = offBy(20_000);
    try {
      expect(await close.acquireLease(project, 'close', 60_000, now())).toMatchObject({
        acquired: true,
      });
    } finally {
      await close.close();
    }
  });

  it('keeps a lease from another machine until its run ends, with each clock as far off as a lease may be taken on', async () => {
    // A lease is timed on its taker's clock and judged on each reader's own: a holder's clock
    // behind and a reader's ahead put its expiry, for that reader, earlier by both offsets. The
    // lease outlives its run's deadline by LEASE_MARGIN_MS (a minute): 45 s each way made it
    // end for the reader 30 s before the holder's deadline, and both wrote the same pools.
    const deadlineMs = 120_000;
    const ttlMs = deadlineMs + 60_000;
    const project = freshProject();
    const offBy = (ms: number) =>
      createFirestoreStateStore({
        projectId,
        timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
        wallClock: () => Date.now() + ms,
      });
    const behind = offBy(-45_000);
    try {
      const asked = new Date(Date.now() - 45_000).toISOString();
      await expect(behind.acquireLease(project, 'behind', ttlMs, asked)).rejects.toBeInstanceOf(
        ClockSkewError,
      );
    } finally {
      await behind.close();
    }
    // Within what is allowed, the other side finds it held up to the holder's deadline.
    const [holder, reader] = [offBy(-25_000), offBy(25_000)];
    try {
      const start = Date.now();
      const taken = new Date(start - 25_000).toISOString();
      expect(await holder.acquireLease(project, 'holder', ttlMs, taken)).toMatchObject({
        acquired: true,
      });
      // The reader's time just before the holder's deadline (start + deadlineMs, real time).
      const late = new Date(start + deadlineMs - 1_000 + 25_000).toISOString();
      expect(await reader.acquireLease(project, 'reader', ttlMs, late)).toMatchObject({
        acquired: false,
        heldBy: 'holder',
      });
    } finally {
      await Promise.all([holder.close(), reader.close()]);
    }
  });

  it('sets aside an outbox document with no `order` field, as any other it cannot read', async () => {
    // A query ordered by a field leaves out every document without it
    // (https://firebase.google.com/docs/reference/js/firestore.queryorderbyconstraint): read so,
    // this entry was never published, never set aside, never counted.
    const project = freshProject();
    await store.putOutbox(project, [
      {
        alert: makeAlert(
          { at, runId: 'r' },
          { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
          {
            type: 'rebalance.applied',
            status: 'event',
            severity: 'INFO',
            summary: 's',
            details: {},
          },
        ),
        state: 'ready',
        storedAt: at,
      },
    ]);
    const box = `${collection}/${project}/outbox`;
    const [stored] = (await raw.collection(box).get()).docs;
    await raw
      .doc(`${box}/no-order`)
      .set({ json: stored?.get('json'), state: 'ready', storedAt: at });
    const read = await store.listOutbox(project);
    expect(read.entries).toHaveLength(1);
    expect(read.setAside?.map((s) => s.id)).toEqual(['no-order']);
    expect(read.dropped).toBe(1);
    expect((await raw.collection(`${collection}/${project}/outbox-set-aside`).get()).size).toBe(1);
    expect((await raw.doc(`${box}/no-order`).get()).exists).toBe(false);
  });

  it('sets aside an outbox document with a field a newer version added, as the file store does', async () => {
    // Firestore keeps no schema (https://firebase.google.com/docs/firestore/data-model): a field
    // this version does not know is stored and read back. Read leniently, the entry was published
    // with the field left out, where the file store sets the same entry aside.
    const project = freshProject();
    const entry = (runId: string) => ({
      alert: makeAlert(
        { at, runId },
        { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
        { type: 'rebalance.applied', status: 'event', severity: 'INFO', summary: 's', details: {} },
      ),
      state: 'ready' as const,
      storedAt: at,
    });
    await store.putOutbox(project, [entry('r1'), entry('r2')]);
    const box = `${collection}/${project}/outbox`;
    const docs = (await raw.collection(box).get()).docs;
    const newer = docs.find((d) => JSON.parse(String(d.get('json'))).runId === 'r2');
    if (newer === undefined) throw new Error('no stored entry of r2');
    // What this version writes, and nothing else: its own bookkeeping is no unknown field.
    expect(Object.keys(newer.data()).sort()).toEqual(['json', 'order', 'state', 'storedAt']);
    await newer.ref.update({ deliverAfter: '2026-11-27T11:00:00.000Z' });
    const read = await store.listOutbox(project);
    expect(read.entries).toEqual([entry('r1')]);
    expect(read.setAside).toEqual([
      { id: newer.id, faults: [{ path: 'deliverAfter', message: 'unknown key' }] },
    ]);
    expect(read.dropped).toBe(1);
    expect((await raw.doc(newer.ref.path).get()).exists).toBe(false);
    const kept = (await raw.collection(`${collection}/${project}/outbox-set-aside`).get()).docs;
    expect(kept.map((d) => d.get('stored'))).toEqual([
      { ...newer.data(), deliverAfter: '2026-11-27T11:00:00.000Z' },
    ]);
    expect(await store.listOutbox(project)).toEqual({ entries: [entry('r1')], dropped: 1 });
  });

  it('drops by the bound only readable entries beyond it, wherever an unreadable one sits', async () => {
    // An unreadable entry does not count in the bound. Stored after the oldest entries, it was
    // counted until then: one readable entry more than the bound asked was dropped.
    expect(CONTRACT_OUTBOX_LIMIT).toBe(4);
    const project = freshProject();
    const entry = (n: number) => outboxEntry(project, n);
    await store.putOutbox(project, [1, 2, 3].map(entry));
    // After the three, by its order; the new entries go after it.
    await raw
      .doc(`${collection}/${project}/outbox/late-garbage`)
      .set({ json: 'garbage', state: 'ready', storedAt: at, order: '~' });
    expect(await store.putOutbox(project, [4, 5].map(entry))).toBe(1);
    const read = await store.listOutbox(project);
    expect(read.entries.map((e) => e.alert.runId)).toEqual(['run-2', 'run-3', 'run-4', 'run-5']);
    expect(read.setAside?.map((s) => s.id)).toEqual(['late-garbage']);
    expect(read.dropped).toBe(2);
  });

  it('sets aside an unreadable outbox document as large as a document may be; the runs go on', async () => {
    // Kept whole beside its faults, it is over the 1 MiB a document holds
    // (https://cloud.google.com/firestore/quotas): before, setting it aside failed, and so did
    // every read of the outbox after it, for good.
    const project = freshProject();
    const box = `${collection}/${project}/outbox`;
    const big = { json: 'y'.repeat(1_048_300), state: 'ready', storedAt: at, order: '0' };
    await raw.doc(`${box}/big`).set(big);
    const read = await store.listOutbox(project);
    expect(read.entries).toEqual([]);
    expect(read.setAside?.map((s) => s.id)).toEqual(['big']);
    expect(read.dropped).toBe(1);
    expect((await raw.doc(`${box}/big`).get()).exists).toBe(false);
    const [kept] = (await raw.collection(`${collection}/${project}/outbox-set-aside`).get()).docs;
    const stored: unknown = kept?.get('stored');
    expect(stored).toBeInstanceOf(Uint8Array);
    expect(JSON.parse(gunzipSync(stored as Uint8Array).toString('utf8'))).toEqual(big);
    expect(JSON.stringify(kept?.get('faults'))).toContain('gzipped');
    expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 1 });
    // Bytes that do not compress: what fits of its JSON text is kept, and how much.
    await raw.doc(`${box}/noise`).set({ ...big, json: randomBytes(1_048_300) });
    expect((await store.listOutbox(project)).setAside?.map((s) => s.id)).toEqual(['noise']);
    const noise = (
      await raw.collection(`${collection}/${project}/outbox-set-aside`).get()
    ).docs.find((d) => d.get('id') === 'noise');
    expect(noise?.get('stored')).toMatch(/^\{"json":\{"type":"Buffer","data":\[\d/);
    expect(JSON.stringify(noise?.get('faults'))).toMatch(/cut to [\d]+ of [\d]+ bytes/);
    expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 2 });
  });

  it('sets aside an unreadable outbox document nested as deep as a document may be; the runs go on', async () => {
    // A document's maps nest at most 20 deep (https://cloud.google.com/firestore/quotas): kept
    // whole under `stored`, one level deeper, the move failed, and with it every read of the
    // outbox, for good.
    const project = freshProject();
    let nested: Record<string, unknown> = { leaf: 1 };
    for (let i = 1; i < 20; i++) nested = { n: nested };
    const box = `${collection}/${project}/outbox`;
    const deep = { json: 'garbage', state: 'ready', storedAt: at, order: '0', extra: nested };
    await raw.doc(`${box}/deep`).set(deep);
    const read = await store.listOutbox(project);
    expect(read.setAside?.map((s) => s.id)).toEqual(['deep']);
    expect(read.dropped).toBe(1);
    expect((await raw.doc(`${box}/deep`).get()).exists).toBe(false);
    const [kept] = (await raw.collection(`${collection}/${project}/outbox-set-aside`).get()).docs;
    const stored: unknown = kept?.get('stored');
    expect(stored).toBeInstanceOf(Uint8Array);
    expect(JSON.parse(gunzipSync(stored as Uint8Array).toString('utf8'))).toEqual(deep);
    expect(JSON.stringify(kept?.get('faults'))).toContain('nested too deep');
    expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 1 });
  });

  it('sets aside an unreadable outbox document whose id is as long as an id may be; the runs go on', async () => {
    // A document id is at most 1,500 bytes (https://cloud.google.com/firestore/quotas): the
    // set-aside copy named `<id>@<when>` was over it, the move failed, and with it every read of
    // the outbox, for good.
    const project = freshProject();
    const id = 'x'.repeat(1_490);
    const box = `${collection}/${project}/outbox`;
    await raw
      .doc(`${box}/${id}`)
      .set({ json: 'garbage', state: 'ready', storedAt: at, order: '0' });
    const read = await store.listOutbox(project);
    expect(read.setAside?.map((s) => s.id)).toEqual([id]);
    expect(read.dropped).toBe(1);
    expect((await raw.doc(`${box}/${id}`).get()).exists).toBe(false);
    const kept = (await raw.collection(`${collection}/${project}/outbox-set-aside`).get()).docs;
    expect(kept.map((d) => d.get('id'))).toEqual([id]);
    expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 1 });
  });

  it('refuses stored JSON text nested thousands of levels deep, naming the document, as the file store does', async () => {
    // JSON.parse reads it, but JSON.stringify recurses once per level and overflows the stack:
    // read as an alert, it failed every run that published or saved it, naming nothing.
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const project = freshProject();
    const alert = makeAlert(
      { at, runId: 'r' },
      { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
      { type: 'rebalance.applied', status: 'event', severity: 'INFO', summary: 's', details: {} },
    );
    const json = JSON.stringify(alert).replace('"details":{}', `"details":{"x":${deep(20_000)}}`);
    const box = `${collection}/${project}/outbox`;
    await raw.doc(`${box}/deep`).set({ json, state: 'ready', storedAt: at, order: '0' });
    const read = await store.listOutbox(project);
    expect(read.entries).toEqual([]);
    expect(read.setAside).toEqual([
      {
        id: 'deep',
        faults: [{ path: 'json', message: expect.stringMatching(/nested more than 100 deep/) }],
      },
    ]);
    const conditions = `${collection}/${project}/state/conditions`;
    await raw.doc(conditions).set({ json: `{"k":${deep(20_000)}}`, savedAt: at });
    const error: unknown = await store.loadConditions(project).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StateCorruptError);
    expect(String(error)).toContain(conditions);
    expect(String(error)).toContain('nested more than 100 deep');
  });

  it('removes published entries and acknowledges the dropped count together, or neither, across a crash', async () => {
    // One logical update: the entries published and the count of dropped ones the run announced.
    // Made in two commits (the entries removed, then the count acknowledged), a run killed
    // between them left the count standing, and the next announcement counted the same dropped
    // entries again. The count's document is held here by another writer's transaction (the
    // server client libraries lock what a transaction reads:
    // https://cloud.google.com/firestore/docs/transaction-data-contention), so the call stops
    // there; its process is then killed (SIGKILL), as a function instance may be.
    expect(CONTRACT_OUTBOX_LIMIT).toBe(4);
    const project = freshProject();
    const entry = (n: number) => outboxEntry(project, n);
    expect(await store.putOutbox(project, [1, 2, 3, 4, 5].map(entry))).toBe(1);
    const box = await store.listOutbox(project);
    expect(box).toMatchObject({ dropped: 1 });
    const countRef = raw.doc(`${collection}/${project}/state/outbox`);
    const outbox = raw.collection(`${collection}/${project}/outbox`);
    const compiled = await transpileForNode(join(import.meta.dirname, 'outbox-child.ts'));
    let release!: () => void;
    const released = new Promise<void>((done) => (release = done));
    let locked!: () => void;
    const isLocked = new Promise<void>((done) => (locked = done));
    const holder = raw.runTransaction(
      async (tx) => {
        await tx.get(countRef);
        locked();
        await released;
      },
      { maxAttempts: 1 },
    );
    try {
      await isLocked;
      const child = spawn(
        process.execPath,
        [
          compiled.script,
          projectId,
          project,
          JSON.stringify(box.entries.map((e) => e.alert.id)),
          '1',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
      );
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      // Until the entries are gone (the first commit made) or long enough for the call to be
      // waiting on the count; then the process dies where it is.
      const until = Date.now() + 4_000;
      while (Date.now() < until && (await outbox.get()).size > 0) await sleep(100);
      child.kill('SIGKILL');
      await exited;
    } finally {
      release();
      await holder.catch(() => undefined);
      await rm(compiled.dir, { recursive: true, force: true });
    }
    const after = await store.listOutbox(project);
    const both = after.entries.length === 0 && after.dropped === 0;
    const neither = after.entries.length === 4 && after.dropped === 1;
    expect({
      entries: after.entries.length,
      dropped: after.dropped,
      together: both || neither,
    }).toEqual({
      entries: after.entries.length,
      dropped: after.dropped,
      together: true,
    });
  });

  it('prunes the run records it can rank past one it cannot, and leaves that one alone', async () => {
    // A document among the runs that another program or a hand wrote, with no readable runId
    // and startedAt: listRuns never reads it (it has no startedAtMs), but pruning ranked every
    // document and refused the call on it. Each run then logged "could not record the run" though
    // its record was stored, and nothing was pruned again: the collection grew by one document a
    // run, all of them read at every run.
    const project = freshProject();
    const garbage = raw.doc(`${collection}/${project}/runs/garbage`);
    await garbage.set({ note: 'not a run' });
    for (let i = 1; i <= CONTRACT_KEEP_RUNS + 2; i++) {
      const t = new Date(Date.parse(at) + i * 60_000).toISOString();
      await store.recordRun(project, quietRun(`run-${i}`, t));
    }
    expect((await store.listRuns(project)).map((r) => r.runId)).toEqual([
      'run-5',
      'run-4',
      'run-3',
    ]);
    const left = await raw.collection(`${collection}/${project}/runs`).get();
    expect(left.size).toBe(CONTRACT_KEEP_RUNS + 1);
    expect((await garbage.get()).data()).toEqual({ note: 'not a run' });
  });

  it('an unreadable governor id names the document and what to do, as the file store does; it is left as it was', async () => {
    // It named the document and the pattern only: no run starts on it, and the file store's
    // error says how to mend it and what removing it costs.
    const other = `gid-${randomBytes(4).toString('hex')}`;
    const ref = raw.doc(`${other}/%governor`);
    await ref.set({ id: 'garbage id!!' });
    const own = createFirestoreStateStore({
      projectId,
      collection: other,
      timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    });
    try {
      const error: unknown = await own.governorId().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StateCorruptError);
      const message = (error as Error).message;
      expect(message).toContain(`Unreadable document ${other}/%governor:`);
      expect(message).toMatch(/mend it .*gov- and 12 hex digits/);
      expect(message).toMatch(/or remove it: the next run makes a new id/);
      expect((await ref.get()).data()).toEqual({ id: 'garbage id!!' });
    } finally {
      await own.close();
    }
  });

  it('lets two clients race for the lease: exactly one wins', async () => {
    const project = freshProject();
    const clients = [1, 2, 3].map(() => createFirestoreStateStore({ projectId }));
    try {
      const results = await Promise.all(
        clients.map((c, i) => c.acquireLease(project, `client-${i}`, 60_000, at)),
      );
      expect(results.filter((r) => r.acquired)).toHaveLength(1);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

/**
 * A project's firing conditions, one `service.starved` per service spread over `pools` pools, as
 * the planner raises them (about 560 bytes of JSON each). `noise` adds to each record that many
 * random hex characters, which no compression shrinks.
 */
function starvedState(services: number, pools: number, noise = 0): ConditionState {
  const current = Array.from({ length: services }, (_, i) =>
    makeAlert(
      { at, runId: 'r' },
      {
        project: 'p',
        region: `region-${i % pools}`,
        accelerator: 'nvidia-l4',
        zonalRedundancy: i % 2 === 0,
      },
      {
        type: 'service.starved',
        severity: 'WARNING',
        service: `inference-${i}`,
        summary: `inference-${i} gets 2 instances, short of its demand of 5`,
        details: {
          cap: 2,
          demand: 5,
          peak: 4,
          inUse: 2,
          shortfall: 3,
          ...(noise > 0 ? { noise: randomBytes(noise / 2).toString('hex') } : {}),
        },
      },
    ),
  );
  return decideNotifications({
    previous: {},
    current,
    events: [],
    now: at,
    renotifyAfterMs: 3_600_000,
    runId: 'r',
    scope: ['p'],
  }).next;
}

/**
 * A run record whose pressure ledger covers `pools` pools over 14 days, each with a tracked quota
 * request whose `stateDetail` and `traceId` are as long as a record allows; `random` fills them
 * with random characters, which no compression shrinks much.
 */
function bigRunRecord(runId: string, pools: number, random = false): RunRecord {
  const text = (n: number) =>
    random
      ? randomBytes(n).toString('base64').slice(0, n)
      : 'quota request pending '.repeat(n).slice(0, n);
  const ledger: PressureLedger = { at, pools: {}, requests: {} };
  for (let i = 0; i < pools; i++) {
    const key = `p/region-${i}/nvidia-l4/zonal`;
    ledger.pools[key] = {
      project: 'p',
      region: `region-${i}`,
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      days: Array.from({ length: 14 }, (_, d) => ({
        day: `2026-11-${String(d + 10).padStart(2, '0')}`,
        minutes: 1440,
        minutesAtBudget: 700 + d,
        refusedGpuMinutes: 123_456 + i,
        peakWanted: 40 + d,
        quota: 32,
        budget: 30 - d,
      })),
    };
    (ledger.requests ??= {})[key] = {
      name: `projects/p/locations/global/quotaPreferences/gpu-governor-region-${i}-nvidia-l4`,
      quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
      preferredValue: 48,
      from: 32,
      filedAt: at,
      by: 'governor',
      state: 'pending',
      decidedAt: null,
      grantedValue: null,
      stateDetail: text(2000),
      traceId: text(500),
    };
  }
  return quietRun(runId, at, { at, pressure: ledger });
}

describe("Firestore store: Firestore's 1 MiB document limit", () => {
  // https://cloud.google.com/firestore/quotas: a document is at most 1 MiB (1,048,576 bytes), a
  // field value at most 1,048,487 bytes.
  it('saves and reads back a condition state whose JSON is over 1 MiB (4,000 conditions)', async () => {
    const project = freshProject();
    const state = starvedState(4_000, 200);
    expect(Buffer.byteLength(JSON.stringify(state))).toBeGreaterThan(1_900_000);
    const first = await store.saveConditions(project, state, null);
    expect(await store.loadConditions(project)).toEqual({ state, version: first });
    // An update, with the version as precondition, and a small state written over the large one.
    const second = await store.saveConditions(project, {}, first);
    expect(await store.loadConditions(project)).toEqual({ state: {}, version: second });
    // A small state keeps its readable JSON text.
    expect((await raw.doc(`${collection}/${project}/state/conditions`).get()).data()).toMatchObject(
      { json: '{}' },
    );
    const third = await store.saveConditions(project, state, second);
    expect(await store.loadConditions(project)).toEqual({ state, version: third });
  });

  it('refuses, in one line naming the sizes, a state too large even compressed; the saved one stays', async () => {
    const project = freshProject();
    const small = starvedState(3, 1);
    const version = await store.saveConditions(project, small, null);
    const huge = starvedState(1_000, 10, 3_000);
    const error = await store.saveConditions(project, huge, version).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StateTooLargeError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(
      /^the alert state of proj-[0-9a-f]{8} \(1000 firing conditions\) is [\d,]+ bytes compressed \([\d,]+ as JSON\), over the 1,040,000 bytes one Firestore document holds here/,
    );
    expect(await store.loadConditions(project)).toEqual({ state: small, version });
  });

  it('records and lists a run record over 1 MiB (a pressure ledger of 300 pools)', async () => {
    const project = freshProject();
    const record = bigRunRecord('big-run', 300);
    expect(Buffer.byteLength(JSON.stringify(record))).toBeGreaterThan(1_200_000);
    await store.recordRun(project, record);
    expect(await store.listRuns(project, 1)).toEqual([record]);
    // Ranked and pruned among the others as before: the newest CONTRACT_KEEP_RUNS are kept.
    for (let i = 1; i <= CONTRACT_KEEP_RUNS; i++) {
      const t = new Date(Date.parse(at) + i * 60_000).toISOString();
      await store.recordRun(project, {
        ...record,
        runId: `small-${i}`,
        startedAt: t,
        finishedAt: t,
        pressure: { at: t, pools: {} },
      });
    }
    expect((await store.listRuns(project, 10)).map((r) => r.runId)).toEqual([
      'small-3',
      'small-2',
      'small-1',
    ]);
  });

  it('refuses, in one line naming the sizes, a run record too large even compressed', async () => {
    const project = freshProject();
    const record = bigRunRecord('huge-run', 1_000, true);
    const error = await store.recordRun(project, record).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StateTooLargeError);
    expect((error as Error).message).toMatch(
      /^the record of run huge-run of proj-[0-9a-f]{8} is [\d,]+ bytes compressed \([\d,]+ as JSON\), over the 1,040,000 bytes one Firestore document holds here[^\n]*$/,
    );
    expect(await store.listRuns(project, 10)).toEqual([]);
  });
});

describe('Firestore store: unavailable', () => {
  it('fails with UnavailableError within its time bound once the emulator is gone', async () => {
    const bounded = createFirestoreStateStore({ projectId, timeoutMs: 2_000 });
    try {
      // The emulator's first transactions are slow (its JVM still warming up): 3.8 to 8 s on 2
      // busy cores, then 0.1 to 0.2 s. Made through the file's store, whose bound is not the
      // subject, so that the bounded store's first call, which must succeed for its client to be
      // connected when the emulator goes, is not held to 2 s against a cold emulator (this test
      // run alone, or first, failed there).
      await store.acquireLease(freshProject(), 'alpha', 60_000, at);
      const project = freshProject();
      await bounded.acquireLease(project, 'alpha', 60_000, at);
      await emulator.stop();
      for (const call of [
        () => bounded.loadConditions(project),
        () => bounded.saveConditions(project, {}, null),
        () => bounded.acquireLease(project, 'alpha', 60_000, at),
        () =>
          bounded.recordRun(project, {
            runId: 'r',
            startedAt: at,
            finishedAt: at,
            mode: 'enforce',
            outcome: 'failed',
            changes: 0,
            skips: 0,
            alerts: 0,
            error: 'x',
          }),
      ]) {
        const error: unknown = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnavailableError);
        // Ended by the store's own bound, not by the client's retries (about 45 s).
        expect((error as Error).message).toContain('did not finish within 2000 ms');
      }
    } finally {
      await bounded.close();
    }
  });
});
