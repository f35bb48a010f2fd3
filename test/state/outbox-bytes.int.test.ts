/**
 * The outbox's bound in bytes: at most MAX_OUTBOX_BYTES of alert JSON per project, its entries
 * together, in every store (ports/state.ts outboxOverflow), beside its bound in entries. Each run
 * reads the outbox whole: 500 entries of up to 1 MB each would be 500 MB, which no Cloud Function
 * of the default 512 MiB can hold. Over it, the oldest are dropped and counted, as over the count.
 * Firestore through Google's emulator, the file store on disk, the memory store.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { alertBytes, MAX_ALERT_BYTES } from '../../src/core/alert.js';
import { makeAlert } from '../../src/core/conditions.js';
import { MAX_OUTBOX_BYTES, type OutboxEntry, type StateStore } from '../../src/ports/index.js';
import { FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { sharedFirestoreEmulator } from '../support/shared-emulators.js';

const PROJECT = 'bytes-project';
const at = '2026-11-27T10:00:00.000Z';

/** An event of `n`'s run of nearly the most one entry holds. */
function large(n: number): OutboxEntry {
  const alert = makeAlert(
    { at, runId: `run-${n}` },
    { project: PROJECT, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
    {
      type: 'rebalance.applied',
      status: 'event',
      severity: 'INFO',
      summary: 's',
      details: { blob: 'x'.repeat(MAX_ALERT_BYTES - 2_000) },
    },
  );
  return { alert, state: 'ready', storedAt: at };
}

let firestore: StateStore;

beforeAll(async () => {
  const emulator = await sharedFirestoreEmulator('outbox-bytes');
  process.env.FIRESTORE_EMULATOR_HOST = emulator.endpoint;
  firestore = createFirestoreStateStore({
    projectId: 'outbox-bytes',
    collection: `ob-${Math.random().toString(16).slice(2)}`,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
  });
});

afterAll(async () => {
  await firestore?.close();
  delete process.env.FIRESTORE_EMULATOR_HOST;
});

/** One more large entry than the bound in bytes holds, one call each, as runs store them. */
async function overTheBound(store: StateStore): Promise<void> {
  const entries = Array.from({ length: 17 }, (_, i) => large(i + 1));
  const each = alertBytes(entries[0]!.alert);
  expect(each * 16).toBeLessThanOrEqual(MAX_OUTBOX_BYTES);
  expect(each * 17).toBeGreaterThan(MAX_OUTBOX_BYTES);
  const dropped: number[] = [];
  for (const e of entries) dropped.push(await store.putOutbox(PROJECT, [e]));
  // The 17th drops the oldest, counted: far below the 500 entries the store keeps.
  expect(dropped).toEqual([...Array<number>(16).fill(0), 1]);
  const box = await store.listOutbox(PROJECT);
  expect(box.dropped).toBe(1);
  expect(box.entries.map((e) => e.alert.runId)).toEqual(entries.slice(1).map((e) => e.alert.runId));
  const total = box.entries.reduce((sum, e) => sum + alertBytes(e.alert), 0);
  expect(total).toBeLessThanOrEqual(MAX_OUTBOX_BYTES);
  // Announced and removed, as a run does: nothing is left over the bound.
  await store.removeOutbox(
    PROJECT,
    box.entries.map((e) => e.alert.id),
    box.dropped,
  );
  expect(await store.listOutbox(PROJECT)).toEqual({ entries: [], dropped: 0 });
}

describe('the outbox holds at most MAX_OUTBOX_BYTES: the oldest beyond it are dropped, counted', () => {
  it('Firestore (its emulator)', () => overTheBound(firestore), 120_000);
  it(
    'the file store',
    () =>
      overTheBound(createFileStateStore({ dir: mkdtempSync(join(tmpdir(), 'governor-bytes-')) })),
    120_000,
  );
  it('the memory store', () => overTheBound(createMemoryStateStore()));
});
