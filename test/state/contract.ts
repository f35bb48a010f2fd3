/**
 * The StateStore contract, written once and run against every store (the file store, the memory
 * store and the Firestore store against the real emulator). Each test works on a project of its
 * own, so the tests share one store without seeing each other's data.
 */
import { randomUUID } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { MAX_ALERT_BYTES } from '../../src/core/alert.js';
import { makeAlert } from '../../src/core/conditions.js';
import { decideNotifications } from '../../src/core/notify.js';
import type { ConditionState } from '../../src/core/notify.js';
import { ConflictError } from '../../src/core/errors.js';
import {
  LeaseCorruptError,
  StateCorruptError,
  StateTooLargeError,
  MAX_RUN_ERROR_LENGTH,
  type OutboxEntry,
  type RunRecord,
  type StateStore,
} from '../../src/ports/index.js';
import { unitKey } from '../../src/core/units.js';
import { projectUnitStore, regionalUnitStore } from '../../src/reconcile/unit-lease.js';

/** The stores under test keep this many run records. */
export const CONTRACT_KEEP_RUNS = 3;
/** The stores under test keep this many undelivered alert messages per project. */
export const CONTRACT_OUTBOX_LIMIT = 4;

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();
const MINUTE = 60_000;

export function freshProject(): string {
  return `proj-${randomUUID().slice(0, 8)}`;
}

function someState(demand: number): ConditionState {
  const alert = makeAlert(
    { at: at(0), runId: 'r' },
    { project: 'p', region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: false },
    {
      type: 'pool.pressure',
      severity: 'WARNING',
      summary: `Demand is ${demand} GPUs`,
      // Free-form details, nested arrays and nulls included, must come back as they went.
      details: { demand, matrix: [[1, 2], [3]], note: null, nested: { ok: true } },
    },
  );
  return decideNotifications({
    previous: {},
    current: [alert],
    events: [],
    now: at(0),
    renotifyAfterMs: 3_600_000,
    runId: 'r',
    scope: ['p'],
  }).next;
}

function outboxEntry(n: number, overrides: Partial<OutboxEntry> = {}): OutboxEntry {
  const alert = makeAlert(
    { at: at(n * MINUTE), runId: `run-${n}` },
    { project: 'p', region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
    {
      type: 'rebalance.applied',
      status: 'event',
      severity: 'INFO',
      summary: `run ${n} changed 1 cap`,
      details: { writes: [{ service: 'a', from: 3, to: n }], nested: [[n]] },
    },
  );
  return { alert, state: 'ready', storedAt: at(n * MINUTE), ...overrides };
}

function runRecord(n: number, overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: `run-${n}`,
    startedAt: at(n * MINUTE),
    finishedAt: at(n * MINUTE + 5_000),
    mode: 'enforce',
    outcome: 'ok',
    changes: n,
    skips: 0,
    alerts: 1,
    error: null,
    ...overrides,
  };
}

/** `open` gives the store under test (opened once, by the caller's hooks). */
export function stateStoreContract(name: string, open: () => StateStore): void {
  describe(`${name}: conditions`, () => {
    it('reads an empty state and no version for a project never saved', async () => {
      expect(await open().loadConditions(freshProject())).toEqual({ state: {}, version: null });
    });

    it('saves and reads back the state, with a new version each time', async () => {
      const store = open();
      const project = freshProject();
      const v1 = await store.saveConditions(project, someState(9), null);
      expect(await store.loadConditions(project)).toEqual({ state: someState(9), version: v1 });
      const v2 = await store.saveConditions(project, someState(10), v1);
      expect(v2).not.toBe(v1);
      expect(await store.loadConditions(project)).toEqual({ state: someState(10), version: v2 });
      const v3 = await store.saveConditions(project, {}, v2);
      expect(await store.loadConditions(project)).toEqual({ state: {}, version: v3 });
    });

    it('refuses a save over a version it did not read (optimistic concurrency)', async () => {
      const store = open();
      const project = freshProject();
      const v1 = await store.saveConditions(project, someState(1), null);
      // A second "first" save, and a save from a stale read, both lose.
      await expect(store.saveConditions(project, someState(2), null)).rejects.toBeInstanceOf(
        ConflictError,
      );
      const v2 = await store.saveConditions(project, someState(3), v1);
      await expect(store.saveConditions(project, someState(4), v1)).rejects.toThrow(
        /changed since it was read/,
      );
      expect(await store.loadConditions(project)).toEqual({ state: someState(3), version: v2 });
    });

    it('lets exactly one of two writers that read the same version save', async () => {
      const store = open();
      const project = freshProject();
      const v1 = await store.saveConditions(project, someState(1), null);
      const outcomes = await Promise.allSettled([
        store.saveConditions(project, someState(2), v1),
        store.saveConditions(project, someState(3), v1),
      ]);
      const saved = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(saved).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]?.status === 'rejected' && refused[0].reason).toBeInstanceOf(ConflictError);
    });

    it('keeps projects apart', async () => {
      const store = open();
      const [a, b] = [freshProject(), freshProject()];
      await store.saveConditions(a, someState(1), null);
      expect(await store.loadConditions(b)).toEqual({ state: {}, version: null });
    });

    it('refuses a state that does not fit the schema before writing anything', async () => {
      const store = open();
      const project = freshProject();
      const bad = { k: { type: 'nope' } } as unknown as ConditionState;
      const error: unknown = await store.saveConditions(project, bad, null).then(
        () => null,
        (e: unknown) => e,
      );
      // One line naming the record and the field, as a malformed run record is refused.
      expect(error).toBeInstanceOf(RangeError);
      const message = (error as Error).message;
      expect(message).toMatch(/^Invalid condition state: k\.type: /);
      expect(message).not.toContain('\n');
      expect(await store.loadConditions(project)).toEqual({ state: {}, version: null });
    });
  });

  describe(`${name}: run records`, () => {
    it('keeps the most recent runs, newest first, replacing a record with the same runId', async () => {
      const store = open();
      const project = freshProject();
      expect(await store.listRuns(project)).toEqual([]);
      // Recorded out of order: the store sorts by startedAt.
      for (const n of [2, 1, 5, 3, 4]) await store.recordRun(project, runRecord(n));
      await store.recordRun(project, runRecord(4, { outcome: 'failed', error: 'publish failed' }));
      // Maps keyed by pool keys (slashes, dots) come back as they went; an optional field set
      // to undefined is absent.
      const quotas = { 'p/us-central1/nvidia-l4/zonal': 8, 'p/x.y/nvidia-l4/no-zonal': null };
      await store.recordRun(project, runRecord(5, { quotas, undelivered: undefined }));
      expect(await store.listRuns(project)).toEqual([
        runRecord(5, { quotas }),
        runRecord(4, { outcome: 'failed', error: 'publish failed' }),
        runRecord(3),
      ]);
      expect(CONTRACT_KEEP_RUNS).toBe(3);
      // At most `limit`, the newest first; a limit above what is kept gives what is kept.
      expect(await store.listRuns(project, 1)).toEqual([runRecord(5, { quotas })]);
      expect((await store.listRuns(project, 2)).map((r) => r.runId)).toEqual([
        runRecord(5).runId,
        runRecord(4).runId,
      ]);
      expect(await store.listRuns(project, 10)).toHaveLength(3);
      expect(await store.listRuns(freshProject(), 1)).toEqual([]);
    });

    it('lists a record from the future (a wrong clock, a hand edit) after all others, and prunes it first', async () => {
      const store = open();
      const project = freshProject();
      const future = runRecord(9, {
        runId: 'run-from-2099',
        startedAt: '2099-01-01T00:00:00.000Z',
        finishedAt: '2099-01-01T00:00:00.000Z',
        quotas: { 'p/us-central1/nvidia-l4/zonal': 999 },
      });
      await store.recordRun(project, runRecord(1));
      await store.recordRun(project, future);
      await store.recordRun(project, runRecord(2));
      // Never the newest: its quotas are not the ones the next run compares with.
      expect((await store.listRuns(project, 1)).map((r) => r.runId)).toEqual(['run-2']);
      expect((await store.listRuns(project)).map((r) => r.runId)).toEqual([
        'run-2',
        'run-1',
        'run-from-2099',
      ]);
      // Three kept: the next record prunes it, not the oldest genuine one.
      await store.recordRun(project, runRecord(3));
      expect((await store.listRuns(project)).map((r) => r.runId)).toEqual([
        'run-3',
        'run-2',
        'run-1',
      ]);
    });

    it('refuses a limit that is not a positive whole number, before reading', async () => {
      const store = open();
      for (const bad of [0, -1, 1.5, Number.NaN])
        await expect(store.listRuns(freshProject(), bad)).rejects.toThrow(/limit/);
    });

    it("cuts a record's error to MAX_RUN_ERROR_LENGTH when it is written", async () => {
      const store = open();
      const project = freshProject();
      await store.recordRun(project, runRecord(1, { error: 'e'.repeat(1_000_000) }));
      const [kept] = await store.listRuns(project);
      expect(kept?.error).toHaveLength(MAX_RUN_ERROR_LENGTH);
      expect(kept?.error?.endsWith('e…')).toBe(true);
    });

    it('refuses a malformed run record', async () => {
      const store = open();
      const bad = { ...runRecord(1), changes: -1 };
      await expect(store.recordRun(freshProject(), bad)).rejects.toThrow(/changes/);
    });

    it('refuses a record with thousands of faults in one short line (a log entry is at most 256 KiB)', async () => {
      // https://cloud.google.com/logging/quotas: the line that logs the refusal is one LogEntry.
      const store = open();
      const days = Array.from({ length: 14 }, (_, d) => ({
        day: `2026-11-${String(d + 10).padStart(2, '0')}`,
        minutes: -1,
        minutesAtBudget: -1,
        refusedGpuMinutes: -1,
        peakWanted: -1,
        quota: -1,
        budget: 1,
      }));
      const pools = Object.fromEntries(
        Array.from({ length: 200 }, (_, i) => [
          `p/region-${i}/nvidia-l4/zonal`,
          {
            project: 'p',
            region: `region-${i}`,
            accelerator: 'nvidia-l4',
            zonalRedundancy: true,
            days,
          },
        ]),
      );
      const bad = { ...runRecord(1), pressure: { at: at(0), pools } };
      const error = await store.recordRun(freshProject(), bad).then(
        () => null,
        (e: unknown) => e,
      );
      const message = (error as Error).message;
      expect(message).toMatch(/^Invalid run record: pressure\.pools\./);
      expect(message).toContain('and 13995 more problems');
      expect(message).not.toContain('\n');
      expect(message.length).toBeLessThan(2_000);
    });
  });

  describe(`${name}: lease`, () => {
    const ttl = 5 * MINUTE;

    it('grants a free lease, refuses a second holder until it expires, then grants it', async () => {
      const store = open();
      const project = freshProject();
      expect(await store.acquireLease(project, 'alpha', ttl, at(0))).toEqual({
        acquired: true,
        heldBy: 'alpha',
        acquiredAt: at(0),
        expiresAt: at(ttl),
      });
      expect(await store.acquireLease(project, 'beta', ttl, at(ttl - 1))).toEqual({
        acquired: false,
        heldBy: 'alpha',
        acquiredAt: at(0),
        expiresAt: at(ttl),
      });
      // The holder may take it again (a new run of the same governor).
      expect(await store.acquireLease(project, 'alpha', ttl, at(MINUTE))).toMatchObject({
        acquired: true,
        expiresAt: at(MINUTE + ttl),
      });
      expect(await store.acquireLease(project, 'beta', ttl, at(MINUTE + ttl))).toEqual({
        acquired: true,
        heldBy: 'beta',
        acquiredAt: at(MINUTE + ttl),
        expiresAt: at(MINUTE + 2 * ttl),
      });
    });

    it('renews for its holder only', async () => {
      const store = open();
      const project = freshProject();
      expect(await store.renewLease(project, 'alpha', ttl, at(0))).toEqual({ acquired: false });
      await store.acquireLease(project, 'alpha', ttl, at(0));
      expect(await store.renewLease(project, 'alpha', ttl, at(4 * MINUTE))).toEqual({
        acquired: true,
        heldBy: 'alpha',
        acquiredAt: at(0),
        expiresAt: at(4 * MINUTE + ttl),
      });
      // Renewed: still held at the first expiry.
      expect(await store.acquireLease(project, 'beta', ttl, at(ttl))).toMatchObject({
        acquired: false,
        heldBy: 'alpha',
      });
      expect(await store.renewLease(project, 'beta', ttl, at(ttl))).toMatchObject({
        acquired: false,
        heldBy: 'alpha',
      });
      // Expired and taken by another: the old holder's renewal fails.
      await store.acquireLease(project, 'beta', ttl, at(4 * MINUTE + ttl));
      expect(await store.renewLease(project, 'alpha', ttl, at(4 * MINUTE + ttl + 1))).toMatchObject(
        { acquired: false, heldBy: 'beta' },
      );
    });

    it('releases for its holder only, and a released lease is free', async () => {
      const store = open();
      const project = freshProject();
      await store.acquireLease(project, 'alpha', ttl, at(0));
      expect(await store.releaseLease(project, 'beta')).toBe(false);
      expect(await store.acquireLease(project, 'beta', ttl, at(1))).toMatchObject({
        acquired: false,
      });
      expect(await store.releaseLease(project, 'alpha')).toBe(true);
      expect(await store.releaseLease(project, 'alpha')).toBe(false);
      expect(await store.renewLease(project, 'alpha', ttl, at(2))).toEqual({ acquired: false });
      expect(await store.acquireLease(project, 'beta', ttl, at(3))).toMatchObject({
        acquired: true,
        heldBy: 'beta',
      });
    });

    it('grants the lease to exactly one of several holders racing for it', async () => {
      const store = open();
      const project = freshProject();
      const holders = ['h1', 'h2', 'h3', 'h4', 'h5'];
      const results = await Promise.all(
        holders.map((h) => store.acquireLease(project, h, ttl, at(0))),
      );
      const winners = results.filter((r) => r.acquired);
      expect(winners).toHaveLength(1);
      const winner = winners[0]?.heldBy;
      for (const r of results) expect(r.heldBy).toBe(winner);
    });

    it('caps a stored expiry beyond now + ttl, so that a lease set to year 9999 ends', async () => {
      const store = open();
      const project = freshProject();
      // A lease held until 9999: written on a wrong clock, or by hand (an old run at the emulator's
      // virtual time, a person). The first request caps it at its own now + ttl, and stores that.
      const forever = '9999-12-31T23:59:59.000Z';
      await store.acquireLease(project, 'alpha', ttl, at(0));
      await store.renewLease(project, 'alpha', Date.parse(forever) - T0, at(0));
      expect(await store.readLease(project)).toMatchObject({ holder: 'alpha', expiresAt: forever });
      expect(await store.acquireLease(project, 'beta', ttl, at(MINUTE))).toEqual({
        acquired: false,
        heldBy: 'alpha',
        acquiredAt: at(0),
        expiresAt: at(MINUTE + ttl),
      });
      expect(await store.readLease(project)).toMatchObject({ expiresAt: at(MINUTE + ttl) });
      // Later requests do not push it further.
      expect(await store.acquireLease(project, 'beta', ttl, at(2 * MINUTE))).toMatchObject({
        acquired: false,
        expiresAt: at(MINUTE + ttl),
      });
      expect(await store.acquireLease(project, 'beta', ttl, at(MINUTE + ttl))).toMatchObject({
        acquired: true,
        heldBy: 'beta',
      });
    });

    it('reads the lease as stored, and breaks it whoever holds it', async () => {
      const store = open();
      const project = freshProject();
      expect(await store.readLease(project)).toBeNull();
      expect(await store.breakLease(project)).toBe(false);
      await store.acquireLease(project, 'alpha', ttl, at(0));
      expect(await store.readLease(project)).toEqual({
        holder: 'alpha',
        acquiredAt: at(0),
        expiresAt: at(ttl),
      });
      expect(await store.breakLease(project)).toBe(true);
      expect(await store.readLease(project)).toBeNull();
      expect(await store.acquireLease(project, 'beta', ttl, at(1))).toMatchObject({
        acquired: true,
      });
      // The old holder's release no longer takes the new holder's lease.
      expect(await store.releaseLease(project, 'alpha')).toBe(false);
    });

    it('breakLease with the lease shown breaks only that lease, not one taken since', async () => {
      const store = open();
      const project = freshProject();
      expect(await store.breakLease(project, 'unreadable')).toBe(false);
      await store.acquireLease(project, 'alpha', ttl, at(0));
      const shown = await store.readLease(project);
      if (shown === null) throw new Error('no lease');
      // Expired, and taken by another run before the person confirmed.
      await store.acquireLease(project, 'beta', ttl, at(ttl + 1));
      expect(await store.breakLease(project, shown)).toBe(false);
      expect(await store.breakLease(project, 'unreadable')).toBe(false);
      expect(await store.readLease(project)).toMatchObject({ holder: 'beta' });
      // Renewed by its holder, it is still the lease shown.
      const beta = await store.readLease(project);
      if (beta === null) throw new Error('no lease');
      await store.renewLease(project, 'beta', ttl, at(ttl + 2));
      expect(await store.breakLease(project, beta)).toBe(true);
      expect(await store.readLease(project)).toBeNull();
      expect(await store.breakLease(project, beta)).toBe(false);
    });

    it('breakLease with the lease shown leaves one its holder took again since', async () => {
      // The same holder (another program reusing a name), released and taken anew: another lease.
      const store = open();
      const project = freshProject();
      await store.acquireLease(project, 'alpha', ttl, at(0));
      const shown = await store.readLease(project);
      if (shown === null) throw new Error('no lease');
      expect(await store.releaseLease(project, 'alpha')).toBe(true);
      await store.acquireLease(project, 'alpha', ttl, at(1_000));
      expect(await store.breakLease(project, shown)).toBe(false);
      expect(await store.readLease(project)).toMatchObject({
        holder: 'alpha',
        acquiredAt: at(1_000),
      });
    });

    it('refuses nonsense arguments before touching the store', async () => {
      const store = open();
      const project = freshProject();
      await expect(store.acquireLease(project, 'alpha', 0, at(0))).rejects.toThrow(RangeError);
      await expect(store.acquireLease(project, '', ttl, at(0))).rejects.toThrow(RangeError);
      // A holder longer than a stored lease may have: refused, never stored.
      await expect(store.acquireLease(project, 'h'.repeat(257), ttl, at(0))).rejects.toThrow(
        /holder must be at most 256 characters, not 257/,
      );
      await expect(store.renewLease(project, 'alpha', ttl, 'later')).rejects.toThrow(RangeError);
      expect(await store.acquireLease(project, 'beta', ttl, at(0))).toMatchObject({
        acquired: true,
      });
    });
  });

  describe(`${name}: governor id`, () => {
    it('is made once and the same on every call', async () => {
      const store = open();
      const id = await store.governorId();
      expect(id).toMatch(/^gov-[0-9a-f]{12}$/);
      expect(await Promise.all([store.governorId(), store.governorId()])).toEqual([id, id]);
    });
  });

  describe(`${name}: outbox`, () => {
    it('keeps entries oldest first; an entry with a known id replaces it in its place', async () => {
      const store = open();
      const project = freshProject();
      expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 0 });
      const planned = outboxEntry(1, { state: 'pending-outcome' });
      expect(await store.putOutbox(project, [planned, outboxEntry(2)])).toBe(0);
      expect(await store.putOutbox(project, [outboxEntry(3)])).toBe(0);
      // The outcome replaces the planned entry; it keeps the first storedAt and its place.
      const outcome = { ...outboxEntry(1), storedAt: at(9 * MINUTE) };
      outcome.alert = { ...outcome.alert, summary: 'run 1 changed 2 caps' };
      await store.putOutbox(project, [outcome]);
      expect(await store.listOutbox(project)).toEqual({
        entries: [{ ...outcome, storedAt: at(MINUTE) }, outboxEntry(2), outboxEntry(3)],
        dropped: 0,
      });
      await store.removeOutbox(project, [outboxEntry(2).alert.id, 'not-there']);
      expect((await store.listOutbox(project)).entries.map((e) => e.alert.summary)).toEqual([
        'run 1 changed 2 caps',
        'run 3 changed 1 cap',
      ]);
    });

    it('refuses an entry over MAX_ALERT_BYTES in one line naming it; nothing of the call is written', async () => {
      // Firestore keeps an entry in one document of at most 1 MiB
      // (https://cloud.google.com/firestore/quotas): every store refuses what one could not keep.
      const store = open();
      const project = freshProject();
      await store.putOutbox(project, [outboxEntry(1)]);
      const big = outboxEntry(2);
      big.alert = {
        ...big.alert,
        details: {
          writes: Array.from({ length: 8_000 }, (_, i) => ({
            service: `service-${i}`.padEnd(49, 'x'),
            from: 3,
            to: 2,
            reason: 'demand of 0 GPUs over the last 60 minutes: lowered toward the floor',
          })),
        },
      };
      const bytes = Buffer.byteLength(JSON.stringify(big.alert));
      expect(bytes).toBeGreaterThan(MAX_ALERT_BYTES);
      const error = await store.putOutbox(project, [outboxEntry(3), big]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StateTooLargeError);
      const message = (error as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toBe(
        `the rebalance.applied event ${big.alert.id} is ${bytes.toLocaleString('en-US')} bytes as JSON, over the ${MAX_ALERT_BYTES.toLocaleString('en-US')} bytes one outbox entry may hold; nothing of it was stored`,
      );
      expect(await store.listOutbox(project)).toEqual({ entries: [outboxEntry(1)], dropped: 0 });
    });

    it('beyond its bound drops the oldest and counts them until announced', async () => {
      const store = open();
      const project = freshProject();
      expect(CONTRACT_OUTBOX_LIMIT).toBe(4);
      await store.putOutbox(
        project,
        [1, 2, 3].map((n) => outboxEntry(n)),
      );
      expect(
        await store.putOutbox(
          project,
          [4, 5, 6].map((n) => outboxEntry(n)),
        ),
      ).toBe(2);
      const box = await store.listOutbox(project);
      expect(box.entries.map((e) => e.alert.runId)).toEqual(['run-3', 'run-4', 'run-5', 'run-6']);
      expect(box.dropped).toBe(2);
      expect(await store.putOutbox(project, [outboxEntry(7)])).toBe(1);
      expect((await store.listOutbox(project)).dropped).toBe(3);
      await store.removeOutbox(project, [outboxEntry(4).alert.id], 3);
      expect(await store.listOutbox(project)).toMatchObject({ dropped: 0 });
      expect((await store.listOutbox(project)).entries).toHaveLength(3);
    });

    it('an announcement of more drops than are counted leaves the count at 0, never below', async () => {
      // Another writer may have announced some of them meanwhile.
      const store = open();
      const project = freshProject();
      expect(CONTRACT_OUTBOX_LIMIT).toBe(4);
      expect(
        await store.putOutbox(
          project,
          [1, 2, 3, 4, 5].map((n) => outboxEntry(n)),
        ),
      ).toBe(1);
      await store.removeOutbox(project, [], 3);
      expect(await store.listOutbox(project)).toMatchObject({ dropped: 0 });
      expect(await store.putOutbox(project, [outboxEntry(6)])).toBe(1);
      expect(await store.listOutbox(project)).toMatchObject({ dropped: 1 });
    });

    it('keeps entries in the order they were stored, whatever their storedAt says', async () => {
      // A firing message stored by one run and its resolution stored by the next go out in that
      // order, even when the second run's clock reads earlier (another machine, a clock stepped
      // back) or both were stored within one millisecond.
      const store = open();
      const project = freshProject();
      const first = outboxEntry(5);
      const behind = outboxEntry(3);
      const sameMs = outboxEntry(2, { storedAt: behind.storedAt });
      await store.putOutbox(project, [first]);
      await store.putOutbox(project, [behind]);
      await store.putOutbox(project, [sameMs]);
      expect((await store.listOutbox(project)).entries).toEqual([first, behind, sameMs]);
      // The bound drops the first stored, not the one dated earliest.
      expect(await store.putOutbox(project, [outboxEntry(1), outboxEntry(0)])).toBe(1);
      expect(await store.listOutbox(project)).toEqual({
        entries: [behind, sameMs, outboxEntry(1), outboxEntry(0)],
        dropped: 1,
      });
    });

    it('is not evicted with the run records', async () => {
      const store = open();
      const project = freshProject();
      await store.putOutbox(project, [outboxEntry(1)]);
      for (const n of [1, 2, 3, 4, 5, 6]) await store.recordRun(project, runRecord(n));
      expect(await store.listOutbox(project)).toEqual({ entries: [outboxEntry(1)], dropped: 0 });
    });

    it('refuses a malformed entry before writing anything', async () => {
      const store = open();
      const project = freshProject();
      const bad = { ...outboxEntry(1), state: 'maybe' } as unknown as OutboxEntry;
      await expect(store.putOutbox(project, [outboxEntry(2), bad])).rejects.toThrow(RangeError);
      expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 0 });
    });
  });

  describe(`${name}: unit keys (regional units)`, () => {
    it("keeps a regional unit's conditions, runs, lease and outbox apart from its project's", async () => {
      const store = open();
      const project = freshProject();
      const west = unitKey({ project, region: 'europe-west4' });
      const central = unitKey({ project, region: 'us-central1' });
      await store.saveConditions(west, someState(7), null);
      await store.recordRun(west, runRecord(1));
      await store.putOutbox(west, [outboxEntry(1)]);
      expect((await store.acquireLease(west, 'regional', 60_000, at(0))).acquired).toBe(true);
      // The project and the other region see none of it, and take their own lease at once.
      for (const other of [project, central]) {
        expect(await store.loadConditions(other), other).toEqual({ state: {}, version: null });
        expect(await store.listRuns(other), other).toEqual([]);
        expect(await store.listOutbox(other), other).toEqual({ entries: [], dropped: 0 });
        expect(await store.readLease(other), other).toBeNull();
        expect((await store.acquireLease(other, 'other', 60_000, at(0))).acquired, other).toBe(
          true,
        );
      }
      // And the regional unit reads back what it stored.
      expect((await store.loadConditions(west)).state).toEqual(someState(7));
      expect((await store.listRuns(west)).map((r) => r.runId)).toEqual(['run-1']);
      expect((await store.listOutbox(west)).entries).toEqual([outboxEntry(1)]);
      expect(await store.readLease(west)).toMatchObject({ holder: 'regional' });
    });

    it('lets exactly one of a regional unit and a run of its whole project hold a lease', async () => {
      const store = open();
      for (let round = 0; round < 4; round++) {
        const project = freshProject();
        const regional = regionalUnitStore(store, 'us-central1');
        const whole = projectUnitStore(store, () => Promise.resolve(['us-central1', 'us-east4']));
        // Both at once, in either order: at most one keeps a lease (both may step back).
        const asks = [
          regional.acquireLease(project, 'regional-run', 60_000, at(0)),
          whole.acquireLease(project, 'project-run', 60_000, at(0)),
        ];
        const [r, w] = await Promise.all(round % 2 === 0 ? asks : [...asks].reverse());
        const granted = [r, w].filter((x) => x?.acquired).length;
        expect(granted, `round ${round}`).toBeLessThanOrEqual(1);
        // A refused side holds nothing: it gave its own lease back.
        const held = [
          await store.readLease(project),
          await store.readLease(`${project}@us-central1`),
        ]
          .filter((l) => l !== null)
          .map((l) => l?.holder);
        expect(held.length, `round ${round}`).toBe(granted);
      }
    });

    it('gives the project lease back when the regions to check cannot be read', async () => {
      const store = open();
      const project = freshProject();
      const whole = projectUnitStore(store, () =>
        Promise.reject(new Error('discovery unreadable')),
      );
      await expect(whole.acquireLease(project, 'project-run', 60_000, at(0))).rejects.toThrow(
        'discovery unreadable',
      );
      expect(await store.readLease(project)).toBeNull();
    });

    // Before, a release that failed too (the store gone meanwhile) was the error told, and why the
    // lease was given back (the regions unknown) was lost.
    it('tells why the regions could not be read, not that giving the lease back failed too', async () => {
      const store = open();
      const project = freshProject();
      const failingRelease: StateStore = {
        ...store,
        releaseLease: () => Promise.reject(new Error('store gone')),
      };
      const whole = projectUnitStore(failingRelease, () =>
        Promise.reject(new Error('discovery unreadable')),
      );
      await expect(whole.acquireLease(project, 'project-run', 60_000, at(0))).rejects.toThrow(
        'discovery unreadable',
      );
    });

    it('lets a lease of the other side stamped to expire in 2099 (a wrong clock) go within a time-to-live', async () => {
      const store = open();
      const project = freshProject();
      const central = unitKey({ project, region: 'us-central1' });
      const regional = regionalUnitStore(store, 'us-central1');
      const whole = projectUnitStore(store, () => Promise.resolve(['us-central1']));
      const wrong = '2099-01-01T00:00:00.000Z';
      // A run of the whole project on a clock in 2099, then never again (the project is split).
      expect((await store.acquireLease(project, 'wrong-clock', 60_000, wrong)).acquired).toBe(true);
      // The regional unit does not overrun it at once (its holder may be alive) ...
      expect(await regional.acquireLease(project, 'regional-run', 60_000, at(0))).toMatchObject({
        acquired: false,
        expiresAt: at(MINUTE),
      });
      expect(await store.readLease(project)).toMatchObject({
        holder: 'wrong-clock',
        expiresAt: at(MINUTE),
      });
      // ... but once a time-to-live has passed with no renewal, it runs, rather than in 2099.
      expect(
        (await regional.acquireLease(project, 'regional-run', 60_000, at(2 * MINUTE))).acquired,
      ).toBe(true);
      expect(await regional.releaseLease(project, 'regional-run')).toBe(true);
      // And the other way: a regional unit's lease stamped so, then the project governed whole.
      expect((await store.acquireLease(central, 'wrong-unit', 60_000, wrong)).acquired).toBe(true);
      expect(
        (await whole.acquireLease(project, 'project-run', 60_000, at(3 * MINUTE))).acquired,
      ).toBe(false);
      expect(
        (await whole.acquireLease(project, 'project-run', 60_000, at(5 * MINUTE))).acquired,
      ).toBe(true);
    });

    it("lets either side take its lease at the instant the other side's expires, as the store would grant that one", async () => {
      const store = open();
      const project = freshProject();
      const central = unitKey({ project, region: 'us-central1' });
      const regional = regionalUnitStore(store, 'us-central1');
      const whole = projectUnitStore(store, () => Promise.resolve(['us-central1']));
      // The run of the whole project holds its lease until at(MINUTE), unrenewed.
      expect((await store.acquireLease(project, 'project-run', 60_000, at(0))).acquired).toBe(true);
      expect(
        (await regional.acquireLease(project, 'regional-run', 60_000, at(MINUTE - 1))).acquired,
      ).toBe(false);
      // At its expiry anyone may take it, so it holds the regional unit off no longer.
      expect(
        (await regional.acquireLease(project, 'regional-run', 60_000, at(MINUTE))).acquired,
      ).toBe(true);
      // The regional unit's lease now runs to at(2 * MINUTE): the same, the other way.
      expect(await store.readLease(central)).toMatchObject({ expiresAt: at(2 * MINUTE) });
      expect(
        (await whole.acquireLease(project, 'project-run', 60_000, at(2 * MINUTE - 1))).acquired,
      ).toBe(false);
      expect(
        (await whole.acquireLease(project, 'project-run', 60_000, at(2 * MINUTE))).acquired,
      ).toBe(true);
    });

    it("caps a lease of the other side that outlives the reader's time-to-live by any amount", async () => {
      const store = open();
      const project = freshProject();
      const regional = regionalUnitStore(store, 'us-central1');
      // The run of the whole project took its lease for 90 s; the regional unit asks for 60 s.
      expect((await store.acquireLease(project, 'long-run', 90_000, at(0))).acquired).toBe(true);
      expect(await regional.acquireLease(project, 'regional-run', 60_000, at(0))).toMatchObject({
        acquired: false,
        expiresAt: at(MINUTE),
      });
      // Capped to the reader's time-to-live, as the store caps it for anyone who asks.
      expect(
        (await regional.acquireLease(project, 'regional-run', 60_000, at(MINUTE + 1_000))).acquired,
      ).toBe(true);
    });

    it('refuses a run of the whole project while any of its regional units holds a lease, not only the first', async () => {
      const store = open();
      const project = freshProject();
      const east = regionalUnitStore(store, 'us-east4');
      const whole = projectUnitStore(store, () => Promise.resolve(['us-central1', 'us-east4']));
      expect((await east.acquireLease(project, 'east-run', 60_000, at(0))).acquired).toBe(true);
      expect(await whole.acquireLease(project, 'project-run', 60_000, at(0))).toMatchObject({
        acquired: false,
        heldBy: expect.stringContaining('east-run') as unknown,
      });
      // Given back: the regional unit's run is the one writer.
      expect(await store.readLease(project)).toBeNull();
    });

    it("refuses a regional unit while its project's run holds the lease, and the other way", async () => {
      const store = open();
      const project = freshProject();
      const regional = regionalUnitStore(store, 'us-central1');
      const whole = projectUnitStore(store, () => Promise.resolve(['us-central1']));
      expect((await whole.acquireLease(project, 'project-run', 60_000, at(0))).acquired).toBe(true);
      const refused = await regional.acquireLease(project, 'regional-run', 60_000, at(0));
      expect(refused).toMatchObject({ acquired: false });
      expect(refused.heldBy).toMatch(/project-run \(a run of the whole project/);
      expect(await store.readLease(unitKey({ project, region: 'us-central1' }))).toBeNull();
      // Another region's unit is not the project's: refused just the same.
      expect(
        (await regionalUnitStore(store, 'us-east4').acquireLease(project, 'r2', 60_000, at(0)))
          .acquired,
      ).toBe(false);
      // Once the project's lease expires, the regional unit takes its own.
      expect(
        (await regional.acquireLease(project, 'regional-run', 60_000, at(2 * MINUTE))).acquired,
      ).toBe(true);
      const blocked = await whole.acquireLease(project, 'project-run-2', 60_000, at(2 * MINUTE));
      expect(blocked).toMatchObject({ acquired: false });
      expect(blocked.heldBy).toMatch(/regional-run \(the regional unit .* \(us-central1\)\)/);
      // The project run gave back the project lease it had taken (expired or not, it is not its).
      expect((await store.readLease(project))?.holder).not.toBe('project-run-2');
      // Two regional units of one project run at once.
      expect(
        (
          await regionalUnitStore(store, 'us-east4').acquireLease(
            project,
            'r2',
            60_000,
            at(2 * MINUTE),
          )
        ).acquired,
      ).toBe(true);
      // Released, the project's run takes the project once more.
      expect(await regional.releaseLease(project, 'regional-run')).toBe(true);
      const again = projectUnitStore(store, () => Promise.resolve(['us-central1']));
      expect(
        (await again.acquireLease(project, 'project-run-3', 60_000, at(2 * MINUTE))).acquired,
      ).toBe(true);
    });

    // Before, a renewal asked the store for its own key only: a run whose lease expired while a
    // person took minutes to confirm renewed it (nobody had taken that key), though the other side
    // had taken its own meanwhile, and both wrote the same pools.
    it('refuses a renewal while the other side took its lease during the gap, and gives it back', async () => {
      const store = open();
      const project = freshProject();
      const central = unitKey({ project, region: 'us-central1' });
      const regional = regionalUnitStore(store, 'us-central1');
      const whole = projectUnitStore(store, () => Promise.resolve(['us-central1']));
      expect((await whole.acquireLease(project, 'project-run', 60_000, at(0))).acquired).toBe(true);
      // The project's lease expired: the regional unit takes its own.
      expect(
        (await regional.acquireLease(project, 'regional-run', 60_000, at(2 * MINUTE))).acquired,
      ).toBe(true);
      const renewed = await whole.renewLease(project, 'project-run', 60_000, at(2.5 * MINUTE));
      expect(renewed).toMatchObject({ acquired: false });
      expect(renewed.heldBy).toMatch(/regional-run \(the regional unit .* \(us-central1\)\)/);
      expect(await store.readLease(project)).toBeNull();
      expect((await store.readLease(central))?.holder).toBe('regional-run');
      // The other way: the regional unit's lease expired, a run of the whole project took its own.
      expect(await regional.releaseLease(project, 'regional-run')).toBe(true);
      expect(
        (await regional.acquireLease(project, 'regional-run-2', 60_000, at(4 * MINUTE))).acquired,
      ).toBe(true);
      expect(
        (await whole.acquireLease(project, 'project-run-2', 60_000, at(6 * MINUTE))).acquired,
      ).toBe(true);
      const back = await regional.renewLease(project, 'regional-run-2', 60_000, at(6.5 * MINUTE));
      expect(back).toMatchObject({ acquired: false });
      expect(back.heldBy).toMatch(/project-run-2 \(a run of the whole project/);
      expect(await store.readLease(central)).toBeNull();
      // With no other side holding its lease, a renewal is granted as before.
      expect(
        (await whole.renewLease(project, 'project-run-2', 60_000, at(6.5 * MINUTE))).acquired,
      ).toBe(true);
    });
  });
}

/** Leases no governor writes: a hand edit, another program, a newer version (attack reports). */
export const UNREADABLE_LEASES: readonly (readonly [string, Record<string, unknown>])[] = [
  ['expiresAt "NaN"', { holder: 'x', acquiredAt: '2026-01-01T00:00:00Z', expiresAt: 'NaN' }],
  ['expiresAt a number', { holder: 'x', acquiredAt: '2026-01-01T00:00:00Z', expiresAt: 12345 }],
  [
    'an unknown field',
    {
      holder: 'x',
      acquiredAt: '2026-01-01T00:00:00Z',
      expiresAt: '2026-01-01T00:00:00Z',
      extra: 1,
    },
  ],
  ['an empty document', {}],
  [
    'a holder of 1 MB (expired)',
    {
      holder: 'h'.repeat(1_000_000),
      acquiredAt: '2026-01-01T00:00:00Z',
      expiresAt: '2026-01-01T00:00:00Z',
    },
  ],
];

/**
 * What a store does with a lease it cannot read: every lease call fails naming the lease and the
 * fix (`governor unlock`), never echoing what it holds, and `breakLease` removes it, nothing else.
 * `plant` stores `value` as the project's lease, bypassing the store.
 */
export function unreadableLeaseContract(
  name: string,
  open: () => StateStore,
  plant: (project: string, value: Record<string, unknown>) => Promise<void>,
): void {
  describe(`${name}: an unreadable lease`, () => {
    for (const [what, value] of UNREADABLE_LEASES) {
      it(`${what}: every lease call names the fix; breakLease removes it and nothing else`, async () => {
        const store = open();
        const project = freshProject();
        await store.recordRun(project, runRecord(1));
        await plant(project, value);
        for (const call of [
          () => store.acquireLease(project, 'alpha', 60_000, at(0)),
          () => store.renewLease(project, 'alpha', 60_000, at(0)),
          () => store.releaseLease(project, 'alpha'),
          () => store.readLease(project),
        ]) {
          const error: unknown = await call().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(LeaseCorruptError);
          const message = (error as Error).message;
          expect(message).toContain('governor unlock');
          expect(message.length).toBeLessThan(2_000);
        }
        // Shown as a readable lease, it is not the one shown: left alone.
        const other = { holder: 'alpha', acquiredAt: at(0), expiresAt: at(60_000) };
        expect(await store.breakLease(project, other)).toBe(false);
        expect(await store.breakLease(project, 'unreadable')).toBe(true);
        expect(await store.readLease(project)).toBeNull();
        expect(await store.acquireLease(project, 'alpha', 60_000, at(0))).toMatchObject({
          acquired: true,
        });
        expect((await store.listRuns(project)).map((r) => r.runId)).toEqual(['run-1']);
      });
    }

    // Before, the lease a side had just taken stayed held (until its expiry, the run deadline and
    // a minute) when the other side's lease could not be read: the run failed, and gave back only
    // the leases it knew it held.
    it("the other side's lease unreadable: a regional unit, or a run of the whole project, gives its own lease back", async () => {
      const store = open();
      const unreadable = UNREADABLE_LEASES[0]?.[1] ?? {};
      const project = freshProject();
      await store.recordRun(project, runRecord(1));
      await plant(project, unreadable);
      const regional = regionalUnitStore(store, 'us-central1');
      await expect(
        regional.acquireLease(project, 'regional-run', 60_000, at(0)),
      ).rejects.toBeInstanceOf(LeaseCorruptError);
      expect(await store.readLease(unitKey({ project, region: 'us-central1' }))).toBeNull();

      const other = freshProject();
      const central = unitKey({ project: other, region: 'us-central1' });
      await store.recordRun(central, runRecord(1));
      await plant(central, unreadable);
      const whole = projectUnitStore(store, () => Promise.resolve(['us-central1']));
      await expect(whole.acquireLease(other, 'project-run', 60_000, at(0))).rejects.toBeInstanceOf(
        LeaseCorruptError,
      );
      expect(await store.readLease(other)).toBeNull();
    });
  });
}

/**
 * What a store does with outbox entries it cannot read (garbage, a newer version's field): each is
 * set aside (kept in the store's quarantine, counted as dropped so the run says so) and the rest
 * of the outbox reads and works as before: one bad entry never stops the runs. `plant` stores two
 * unreadable entries bypassing the store; `kept` counts what the quarantine holds.
 */
export function unreadableOutboxContract(
  name: string,
  open: () => StateStore,
  plant: (project: string) => Promise<void>,
  kept: (project: string) => Promise<number>,
): void {
  describe(`${name}: unreadable outbox entries`, () => {
    it('are set aside, counted and reported once; the rest of the outbox works', async () => {
      const store = open();
      const project = freshProject();
      await store.putOutbox(project, [outboxEntry(1)]);
      await plant(project);
      const first = await store.listOutbox(project);
      expect(first.entries.map((e) => e.alert.id)).toEqual([outboxEntry(1).alert.id]);
      expect(first.dropped).toBe(2);
      expect(first.setAside).toHaveLength(2);
      for (const s of first.setAside ?? []) expect(s.faults.length).toBeGreaterThan(0);
      expect(await kept(project)).toBe(2);
      // Reported once; counted until announced, as dropped entries are.
      const again = await store.listOutbox(project);
      expect(again.setAside).toBeUndefined();
      expect(again.dropped).toBe(2);
      await store.putOutbox(project, [outboxEntry(2)]);
      await store.removeOutbox(project, [outboxEntry(1).alert.id], 2);
      expect(await store.listOutbox(project)).toEqual({ entries: [outboxEntry(2)], dropped: 0 });
      expect(await kept(project)).toBe(2);
    });

    it('are set aside by a writer too, before it adds its entries', async () => {
      const store = open();
      const project = freshProject();
      await store.putOutbox(project, [outboxEntry(1)]);
      await plant(project);
      await store.putOutbox(project, [outboxEntry(2)]);
      const box = await store.listOutbox(project);
      expect(box.entries.map((e) => e.alert.id)).toEqual([
        outboxEntry(1).alert.id,
        outboxEntry(2).alert.id,
      ]);
      expect(box.dropped).toBe(2);
      expect(await kept(project)).toBe(2);
    });

    it('are never dropped by the bound: they do not count in it, and are set aside', async () => {
      // Dropped, they were deleted: never set aside for a person to look at.
      const store = open();
      const project = freshProject();
      expect(CONTRACT_OUTBOX_LIMIT).toBe(4);
      await store.putOutbox(project, [outboxEntry(1)]);
      await plant(project);
      expect(
        await store.putOutbox(
          project,
          [2, 3, 4, 5].map((n) => outboxEntry(n)),
        ),
      ).toBe(1);
      const box = await store.listOutbox(project);
      expect(box.entries.map((e) => e.alert.runId)).toEqual(['run-2', 'run-3', 'run-4', 'run-5']);
      expect(box.setAside).toHaveLength(2);
      expect(box.dropped).toBe(3);
      expect(await kept(project)).toBe(2);
    });
  });
}

/** One unreadable count of dropped entries, as a store holds it, and how a read must quote it. */
interface UnreadableCountVariant {
  what: string;
  /** What `plant` stores: the file's `outboxDropped`, or the Firestore count document. */
  value: unknown;
  /** The quote the read reports (a RegExp where it is cut short). */
  quote: string | RegExp;
}

/**
 * What a store does with a count of dropped outbox entries it cannot read (a hand edit, another
 * program): every read goes on, the count reads as at least 1 with what was stored named (quoted,
 * cut short), the rest of the project's state reads and works, writers that do not count leave it
 * as it is, and the announcement (`removeOutbox` with the count read) stores a number, so the next
 * read is clean. `plant` stores `value` as the count bypassing the store; `stored` reads the count
 * back as stored, and `asStored(n)` is a valid count of n as the store keeps it; `openOther` opens
 * a second client on the same store (another writer; closed by the test); `plantEntries` stores
 * unreadable outbox entries (as for unreadableOutboxContract).
 */
export function unreadableCountContract(
  name: string,
  options: {
    open: () => StateStore;
    openOther: () => StateStore;
    variants: readonly UnreadableCountVariant[];
    plant: (project: string, value: unknown) => Promise<void>;
    stored: (project: string) => Promise<unknown>;
    asStored: (n: number) => unknown;
    plantEntries: (project: string) => Promise<void>;
  },
): void {
  const { open, openOther, variants, plant, stored, asStored, plantEntries } = options;
  describe(`${name}: an unreadable count of dropped outbox entries`, () => {
    for (const { what, value, quote } of variants) {
      it(`${what}: reads as at least 1, named; the rest works; the announcement stores a number`, async () => {
        const store = open();
        const project = freshProject();
        await store.saveConditions(project, someState(1), null);
        await store.recordRun(project, runRecord(1));
        await store.putOutbox(project, [outboxEntry(1)]);
        await plant(project, value);
        const box = await store.listOutbox(project);
        expect(box.entries).toEqual([outboxEntry(1)]);
        expect(box.dropped).toBe(1);
        const unreadable = box.droppedUnreadable;
        expect(unreadable?.where).toContain(project);
        if (typeof quote === 'string') expect(unreadable?.stored).toBe(quote);
        else expect(unreadable?.stored).toMatch(quote);
        expect(unreadable?.stored.length).toBeLessThanOrEqual(100);
        expect(unreadable?.faults.length).toBeGreaterThan(0);
        // The rest of the project's state reads and works.
        expect((await store.loadConditions(project)).state).toEqual(someState(1));
        expect((await store.listRuns(project)).map((r) => r.runId)).toEqual(['run-1']);
        expect(await store.acquireLease(project, 'alpha', 60_000, at(0))).toMatchObject({
          acquired: true,
        });
        await store.recordRun(project, runRecord(2));
        // Writers that do not count leave it as stored: the next read still names it.
        await store.putOutbox(project, [outboxEntry(2)]);
        await store.removeOutbox(project, [outboxEntry(2).alert.id]);
        expect(await stored(project)).toEqual(value);
        expect((await store.listOutbox(project)).droppedUnreadable).toEqual(unreadable);
        // Announced: a number, and a clean read.
        await store.removeOutbox(project, [outboxEntry(1).alert.id], box.dropped);
        expect(await stored(project)).toEqual(asStored(0));
        expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 0 });
        expect(await store.releaseLease(project, 'alpha')).toBe(true);
      });
    }

    const [first] = variants;
    if (!first) return;

    it(`${first.what}: drops another writer makes between the read and the announcement stay counted`, async () => {
      const store = open();
      const other = openOther();
      try {
        const project = freshProject();
        const full = Array.from({ length: CONTRACT_OUTBOX_LIMIT }, (_, i) => outboxEntry(i + 1));
        await store.putOutbox(project, full);
        await plant(project, first.value);
        const box = await store.listOutbox(project);
        expect(box.dropped).toBe(1);
        expect(box.droppedUnreadable).toBeDefined();
        // Another writer fills the outbox past its bound: its 2 drops are counted from the
        // unreadable count's lower bound, 1.
        expect(await other.putOutbox(project, [outboxEntry(11), outboxEntry(12)])).toBe(2);
        expect(await stored(project)).toEqual(asStored(3));
        await store.removeOutbox(
          project,
          box.entries.map((e) => e.alert.id),
          box.dropped,
        );
        expect(await stored(project)).toEqual(asStored(2));
        expect(await store.listOutbox(project)).toEqual({
          entries: [outboxEntry(11), outboxEntry(12)],
          dropped: 2,
        });
      } finally {
        await other.close();
      }
    });

    it(`${first.what}, beside unreadable entries: both reported, the entries counted on top`, async () => {
      const store = open();
      const project = freshProject();
      await store.putOutbox(project, [outboxEntry(1)]);
      await plantEntries(project);
      await plant(project, first.value);
      const box = await store.listOutbox(project);
      expect(box.setAside).toHaveLength(2);
      expect(box.droppedUnreadable?.stored).toEqual(
        typeof first.quote === 'string' ? first.quote : expect.stringMatching(first.quote),
      );
      // At least 1, plus the 2 set aside; setting them aside wrote a number.
      expect(box.dropped).toBe(3);
      expect(await stored(project)).toEqual(asStored(3));
      await store.removeOutbox(project, [outboxEntry(1).alert.id], box.dropped);
      expect(await store.listOutbox(project)).toEqual({ entries: [], dropped: 0 });
    });
  });
}

/**
 * What a store does with stored condition records it cannot read (a newer version's alert type or
 * field: two versions run side by side during a deploy, and the older one runs again after a
 * rollback): the others read as before, the unreadable ones are named (key and why) and kept as
 * stored by every save, its own and another writer's, so the version that wrote them finds them
 * again; a save that judges the same key afresh replaces it; versioning still holds. `plant` adds
 * `records` to the project's stored state bypassing the store; `stored` reads the stored state
 * back as it is; `openOther` opens a second client on the same store (another writer; closed by
 * the test).
 */
export function unreadableConditionsContract(
  name: string,
  options: {
    open: () => StateStore;
    openOther: () => StateStore;
    plant: (project: string, records: Record<string, unknown>) => Promise<void>;
    stored: (project: string) => Promise<Record<string, unknown>>;
  },
): void {
  const readable = someState(1);
  const record = Object.values(readable)[0];
  const newer = {
    // An alert type this version does not know, and a field it does not know.
    'pool.hot-spare:p/us-central1/nvidia-l4/zonal': { ...record, type: 'pool.hot-spare' },
    'pool.pressure:p/europe-west4/nvidia-l4/zonal': { ...record, escalation: 2 },
  };
  describe(`${name}: condition records a newer version wrote`, () => {
    it('the rest reads; they are named, and kept as stored by every save', async () => {
      const store = options.open();
      const project = freshProject();
      const v1 = await store.saveConditions(project, readable, null);
      await options.plant(project, newer);
      const loaded = await store.loadConditions(project);
      expect(loaded.state).toEqual(readable);
      expect(loaded.version).not.toBe(v1);
      expect(loaded.unreadable?.map((u) => u.key).sort()).toEqual(Object.keys(newer).sort());
      const why = JSON.stringify(loaded.unreadable);
      expect(why).toContain('type');
      expect(why).toContain('escalation');
      // This version resolves what it reads; what it cannot read stays, as it was stored.
      const v2 = await store.saveConditions(project, {}, loaded.version);
      expect(await options.stored(project)).toEqual(newer);
      const again = await store.loadConditions(project);
      expect(again).toMatchObject({ state: {}, version: v2 });
      expect(again.unreadable).toHaveLength(2);
      // A save that judges one of their keys afresh replaces that one only.
      const hot = Object.keys(newer)[0] as string;
      const fresh = { [hot]: record };
      await store.saveConditions(project, fresh as ConditionState, v2);
      expect(await options.stored(project)).toEqual({ ...newer, ...fresh });
      expect((await store.loadConditions(project)).unreadable?.map((u) => u.key)).toEqual([
        Object.keys(newer)[1],
      ]);
    });

    it("another writer's save keeps them too, and a stale version is still refused", async () => {
      const store = options.open();
      const other = options.openOther();
      try {
        const project = freshProject();
        await store.saveConditions(project, readable, null);
        await options.plant(project, newer);
        const loaded = await store.loadConditions(project);
        // The other writer saves at the version this one read, without having read it itself.
        const v2 = await other.saveConditions(project, {}, loaded.version);
        expect(await options.stored(project)).toEqual(newer);
        await expect(store.saveConditions(project, readable, loaded.version)).rejects.toThrow(
          ConflictError,
        );
        expect(await options.stored(project)).toEqual(newer);
        await store.saveConditions(project, readable, v2);
        expect(await options.stored(project)).toEqual({ ...newer, ...readable });
      } finally {
        await other.close();
      }
    });
  });
}

/**
 * Run records a newer version wrote (versions run side by side during a deploy; after a rollback
 * the older one reads what the newer wrote): fields this version does not know, at any depth, are
 * left out and the record reads (parseRunRecord); a value it cannot read is still refused, naming
 * where. `rewrite` changes the stored record of `runId` in place, bypassing the store, as a newer
 * version's write would.
 */
export function newerRunRecordContract(
  name: string,
  options: {
    open: () => StateStore;
    rewrite: (
      project: string,
      runId: string,
      change: (record: Record<string, unknown>) => void,
    ) => Promise<void>;
  },
): void {
  const pool = 'p/us-central1/nvidia-l4/zonal';
  const record = runRecord(1, {
    pools: { [pool]: { budget: 5, caps: 5, demand: 6, inUse: 4, status: 'pressure' } },
    pressure: {
      at: at(MINUTE),
      pools: {
        [pool]: {
          project: 'p',
          region: 'us-central1',
          accelerator: 'nvidia-l4',
          zonalRedundancy: true,
          days: [
            {
              day: '2026-11-27',
              minutes: 5,
              minutesAtBudget: 5,
              refusedGpuMinutes: 3,
              peakWanted: 6,
              quota: 6,
              budget: 5,
            },
          ],
        },
      },
    },
  });
  type Node = Record<string, Record<string, unknown>>;

  describe(`${name}: run records a newer version wrote`, () => {
    it('a field this version does not know, at any depth, is left out and the record reads', async () => {
      const store = options.open();
      const project = freshProject();
      await store.recordRun(project, record);
      await options.rewrite(project, record.runId, (r) => {
        r['preemptions'] = 2;
        ((r['pools'] as Node)[pool] as Record<string, unknown>)['preempted'] = 1;
        const days = (((r['pressure'] as Node)['pools'] as Node)[pool] as Record<string, unknown>)[
          'days'
        ] as Record<string, unknown>[];
        (days[0] as Record<string, unknown>)['preemptedGpuMinutes'] = 7;
      });
      expect(await store.listRuns(project)).toEqual([record]);
      // And the store goes on: the next record is kept beside it.
      await store.recordRun(project, runRecord(2));
      expect((await store.listRuns(project)).map((r) => r.runId)).toEqual(['run-2', 'run-1']);
    });

    it('a value this version cannot read is refused, naming the record and the field', async () => {
      const store = options.open();
      const project = freshProject();
      await store.recordRun(project, record);
      await options.rewrite(project, record.runId, (r) => {
        r['outcome'] = 'preempted';
        r['preemptions'] = 2;
      });
      const error = await store.listRuns(project).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StateCorruptError);
      expect((error as Error).message).toContain('outcome');
    });
  });
}
