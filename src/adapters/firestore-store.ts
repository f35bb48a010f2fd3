/**
 * The state store in Firestore (native mode), the Cloud Function's: it survives between
 * invocations and is shared by every instance, so the lease can keep to one writer per project.
 * The only file that imports `@google-cloud/firestore`.
 *
 * Layout, under one collection (default `gpu-governor`), per governed project:
 *   <collection>/<project>/state/conditions   { json: <ConditionState as JSON text>, savedAt },
 *                                             or { gz: <that text gzipped>, savedAt } when the
 *                                             text is too long for one document (below)
 *   <collection>/<project>/state/lease        { holder, acquiredAt, expiresAt }
 *   <collection>/<project>/runs/<runId>       a RunRecord, plus startedAtMs to sort by; or,
 *                                             when too long for one document (below),
 *                                             { runId, startedAt, startedAtMs, gz: <the
 *                                             record's JSON text gzipped> }
 *   <collection>/<project>/outbox/<alertId>   { json: <Alert as JSON text>, state, storedAt, order }
 *   <collection>/<project>/state/outbox       { dropped }: entries the bound dropped, unannounced
 *   <collection>/%governor                    { id }: this governor's id (no project id maps to
 *                                             it: `%` is escaped in project ids)
 * The condition state and alerts are stored as JSON text: alert details are free-form JSON
 * (nested arrays, which Firestore refuses), and the text parses back through the same zod schema
 * as a file.
 *
 * Concurrency: the conditions' version is the document's update time; a save is a `create` when
 * no version was read, else an `update` with that update time as precondition ("the target
 * document must exist and have been last updated at that time", Precondition.update_time,
 * https://cloud.google.com/ruby/docs/reference/google-cloud-firestore-v1/latest/Google-Cloud-Firestore-V1-Precondition),
 * so the server refuses a save over another writer's. Google does not say which code that
 * refusal carries: ALREADY_EXISTS, FAILED_PRECONDITION and NOT_FOUND all read as a conflict
 * (refusedPrecondition). The lease, the outbox, the count of dropped entries with the first
 * removals, and the governor id are each read and written in one transaction: "the documents
 * retrieved by its read operations must remain unmodified by operations outside the transaction";
 * the server client libraries (this one) lock what a transaction reads, so another writer waits or
 * one of them fails, and the client runs a failed transaction again, up to `transactionAttempts`,
 * after which it fails with ABORTED ("Too much contention on these documents"), a ConflictError
 * here (https://cloud.google.com/firestore/docs/transaction-data-contention).
 * The outbox is read whole and sorted by one field (`order`), which keeps the order its entries
 * were stored in whatever the writers' clocks say (`nextOrder`). It is bounded as every store
 * bounds it (ports/state.ts outboxOverflow): at most `outboxLimit` entries and MAX_OUTBOX_BYTES
 * (16 MiB) of alert JSON, so a read of it is too, but for entries nobody can read, which that read
 * sets aside. Firestore has no query for a document's size, so adding to an outbox that may pass
 * the bound in bytes (more than 16 entries, each up to 1 MiB) reads its documents whole inside the
 * transaction, as one over the bound in entries already was: what the bound holds.
 *
 * Size: a document is at most 1 MiB (1,048,576 bytes) and a field value at most 1,048,487 bytes
 * (https://cloud.google.com/firestore/quotas). The condition state is the one document that grows
 * with the fleet: one record of about 500 bytes per firing condition, so a project with a few
 * thousand services starved or misconfigured at once is over 1 MiB of JSON (2.5 MB for a project
 * of 10,000 services in 200 pools, 4,416 of them starved). Such a state is stored gzipped (JSON of
 * conditions shrinks 10 to 30 times); one still over {@link MAX_FIELD_BYTES} compressed is
 * refused with StateTooLargeError before anything is written, so the state saved before stays
 * whole. A run record grows with the project's pools: its pools, quotas and 14 days of pressure
 * ledger are about 2 KB a pool, up to 4.5 KB with a tracked quota request (890 KB for 200 pools,
 * 1.3 MB for 300): one over {@link MAX_RUN_INLINE_BYTES} of JSON is stored the same way, beside
 * the fields that rank and prune it, and refused the same way when still too large; so is the
 * organisation's discovery (about 65 bytes a project). Every other document holds one alert, one
 * lease or one count, each bounded: an outbox entry's alert is at most MAX_ALERT_BYTES of JSON
 * (core/alert.ts; ports/state.ts refuses more before anything is written; the run fits its events
 * to it, core/alert.ts fitAlert), with room left for the document's name and other fields. A
 * commit is bounded by its request size, 10 MiB, not by a count of writes (the same page lists
 * no such count any more; older copies said 500): adding to the outbox writes every event of a run
 * in one transaction, about 0.8 KB each, so a run stays far below it at the default of 50 changes
 * and comes near it only with `limits.maxChangesPerRun` near its maximum of 10,000 and every write
 * failing (5,680 events were 4.6 MB).
 *
 * Time bounds: every call is bounded by `timeoutMs`, after which it fails with UnavailableError.
 * The client's own retries cannot be relied on for this: against a server that refuses
 * connections, a `get` gives up after about 45 s (five attempts, each waiting for a connection)
 * and a `create` was seen waiting for minutes, with no timer of its own. A call that timed out
 * may still be pending inside the client; `close` waits for such calls up to `timeoutMs` and, if
 * they are still pending, leaves the client to them rather than terminating it under them (the
 * client then rejects them from internal promises no one handles). Pending calls hold no handle
 * that keeps the process alive.
 *
 * Emulator: the client connects to `FIRESTORE_EMULATOR_HOST` (host:port) when it is set, with no
 * credentials (https://cloud.google.com/firestore/docs/emulator). It reads the variable itself
 * and throws from its constructor on a malformed one: runtime-options.ts refuses such a value
 * first, as bad input.
 */
import { DiscoveryCache } from '../core/discovery.js';
import type { DiscoveryCacheStore } from '../ports/index.js';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

import {
  DocumentReference,
  FieldValue,
  Firestore,
  GeoPoint,
  Timestamp,
} from '@google-cloud/firestore';
import type { CollectionReference, DocumentSnapshot, Transaction } from '@google-cloud/firestore';
import { status } from '@grpc/grpc-js';
import { z } from 'zod';

import { translateGrpcError } from './grpc-errors.js';
import { grpcCode } from './retry.js';
import { capFaults, errorMessage, UnavailableError, type Fault } from '../core/errors.js';
import { jsonErrorText, nestingFault, zodFaults } from '../core/document.js';
import { Alert, alertBytes } from '../core/alert.js';
import { MAX_CLOCK_SKEW_MS } from '../core/duration.js';
import { compareText } from '../core/pool.js';
import { plural, utf8Length } from '../core/text.js';
import {
  acknowledgeDropped,
  checkKeep,
  checkLeaseRequest,
  checkOutboxEntries,
  checkOutboxLimit,
  DEFAULT_OUTBOX_LIMIT,
  MAX_OUTBOX_BYTES,
  outboxOverflow,
  GovernorId,
  governorIdFix,
  newGovernorId,
  OutboxEntry,
  checkProject,
  checkLimit,
  checkRunRecord,
  checkConditionState,
  decideLease,
  DEFAULT_KEEP_RUNS,
  keepUnreadable,
  Lease,
  MAX_LEASE_CLOCK_SKEW_MS,
  parseRunRecord,
  parseStoredKnown,
  parseStored,
  readConditions,
  parseStoredLease,
  readDroppedCount,
  RunRecord,
  type SetAsideEntry,
  type SetAsideReport,
  sortRuns,
  stillTheLease,
  StateCorruptError,
  StateTooLargeError,
  ClockSkewError,
  versionConflict,
  type LeaseRequest,
  type LeaseResult,
  type StateStore,
  type UnreadableCount,
  type VersionedConditions,
} from '../ports/index.js';

const DEFAULT_COLLECTION = 'gpu-governor';

export interface FirestoreStateStoreOptions {
  /** The project that hosts the database; default: the client's (credentials, environment). */
  projectId?: string;
  /** Default `(default)`. */
  databaseId?: string;
  /** The root collection. Default `gpu-governor`. */
  collection?: string;
  /** Run records kept per project. Default 50. */
  keepRuns?: number;
  /** Undelivered alert messages kept per project. Default 500. */
  outboxLimit?: number;
  /** The longest any one call may take, retries included. Default 20 s. */
  timeoutMs?: number;
  /** Attempts of a lease transaction when writers collide. Default 5. */
  transactionAttempts?: number;
  /**
   * The wall clock that judges run records from the future, and that a lease request checks
   * against Firestore's (tests). Default `Date.now`.
   */
  wallClock?: () => number;
}

const ConditionsDocument = z.object({ json: z.string(), savedAt: z.string() });
/** A document stored gzipped (see "Size" above): read as such whenever it has a `gz` field. */
const Gzipped = z.object({ gz: z.instanceof(Uint8Array) });
/**
 * The most bytes the store puts in the one field of the conditions document: Firestore's
 * 1,048,487 bytes for a field value and 1 MiB for the document
 * (https://cloud.google.com/firestore/quotas), less room for the document's name (a project id
 * escaped, up to 600 bytes), its field names and `savedAt`
 * (https://cloud.google.com/firestore/docs/storage-size).
 */
const MAX_FIELD_BYTES = 1_040_000;
/**
 * The most JSON of a run record stored as fields. Firestore counts 8 bytes for every number and
 * one more for every string and field name (https://cloud.google.com/firestore/docs/storage-size),
 * so a record's document may be larger than its JSON: 1/4 is kept for that.
 */
const MAX_RUN_INLINE_BYTES = 780_000;
/** The most a stored gzipped state may unpack to: 64 MiB, as the file store reads at most. */
const MAX_UNPACKED_BYTES = 64 * 1024 * 1024;
/**
 * An outbox document: an entry as every store keeps it (OutboxEntry), with its alert as JSON text
 * (`json`, read by the same Alert schema) and its place in the outbox (`order`). As strict as
 * OutboxEntry: Firestore keeps any field a writer adds
 * (https://firebase.google.com/docs/firestore/data-model), and an entry with one this version
 * does not know (a newer version's) is unreadable, set aside as the file store sets it aside,
 * never published without it.
 */
const OutboxDocument = OutboxEntry.omit({ alert: true }).extend({
  json: z.string(),
  order: z.string(),
});
const OutboxPlace = OutboxDocument.pick({ storedAt: true, order: true });
/**
 * The count of dropped entries, read apart (countOf). Firestore keeps no schema: a field may hold
 * any of its types (https://firebase.google.com/docs/firestore/manage-data/data-types) and the
 * documents of a collection may have different fields
 * (https://firebase.google.com/docs/firestore/data-model), so a count written by hand or by
 * another program may be anything: unreadable, never a reason to stop.
 */
const OutboxCount = z.object({ dropped: z.number().int().min(0) });
const GovernorDocument = z.object({ id: GovernorId });
const DiscoveryDocument = z.object({ json: z.string() });
/** Entries removed per transaction (a commit is bounded in writes). */
const REMOVE_CHUNK = 400;
/**
 * A run document: the record's fields (the sort key `startedAtMs` is dropped on reading), unless
 * it is stored gzipped.
 */
/** What ranks a run document for pruning. */
const RunKey = RunRecord.pick({ runId: true, startedAt: true });

export function createFirestoreStateStore(
  options: FirestoreStateStoreOptions = {},
): StateStore & DiscoveryCacheStore {
  const collection = options.collection ?? DEFAULT_COLLECTION;
  const keep = checkKeep(options.keepRuns ?? DEFAULT_KEEP_RUNS);
  const outboxLimit = checkOutboxLimit(options.outboxLimit ?? DEFAULT_OUTBOX_LIMIT);
  const timeoutMs = options.timeoutMs ?? 20_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a finite number above 0, not ${timeoutMs}`);
  }
  const maxAttempts = options.transactionAttempts ?? 5;
  const wall = options.wallClock ?? Date.now;

  const db = new Firestore({
    ...(options.projectId === undefined ? {} : { projectId: options.projectId }),
    ...(options.databaseId === undefined ? {} : { databaseId: options.databaseId }),
    // An optional field a caller spelled out as undefined is simply absent, as in JSON.
    ignoreUndefinedProperties: true,
  });

  const projectDoc = (project: string): DocumentReference =>
    db.collection(collection).doc(docId(checkProject(project)));
  const stateDoc = (project: string, name: 'conditions' | 'lease' | 'outbox'): DocumentReference =>
    projectDoc(project).collection('state').doc(name);
  const runsOf = (project: string) => projectDoc(project).collection('runs');
  const outboxOf = (project: string) => projectDoc(project).collection('outbox');

  /** The client's calls not yet settled (some may have outlived their time bound). */
  const pending = new Set<Promise<unknown>>();
  let closed = false;

  /** Runs one store call within the time bound, translating its failure. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new Error(`Firestore state store is closed (${what})`);
    const op = (async () => fn())();
    pending.add(op);
    const forget = (): void => {
      pending.delete(op);
    };
    op.then(forget, forget);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new UnavailableError(`Firestore: ${what} did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([op, timeout]);
    } catch (error) {
      throw translateGrpcError(error, `Firestore: ${what}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async function lease(project: string, request: LeaseRequest): Promise<LeaseResult> {
    checkLeaseRequest(request);
    const ref = stateDoc(project, 'lease');
    return call(`${request.kind} the lease of ${project}`, () =>
      db.runTransaction(
        async (tx) => {
          const snap = await tx.get(ref);
          checkClock(snap.readTime.toMillis(), wall(), project);
          const { write, result } = decideLease(leaseOf(snap, ref), request);
          if (write !== null) tx.set(ref, write);
          return result;
        },
        { maxAttempts },
      ),
    );
  }

  /**
   * Moves one unreadable outbox entry into `<project>/outbox-set-aside` (as it was stored, with its
   * faults) and counts it as dropped, in one transaction; null when it was removed or became
   * readable meanwhile (another writer replaced it), in which case it stays.
   */
  async function setAsideEntry(
    project: string,
    ref: DocumentReference,
  ): Promise<SetAsideEntry | null> {
    const countRef = stateDoc(project, 'outbox');
    return call(`setting aside ${ref.path}`, () =>
      db.runTransaction(
        async (tx) => {
          const [snap, count] = await Promise.all([tx.get(ref), tx.get(countRef)]);
          if (!snap.exists) return null;
          const read = outboxEntryOf(snap.data(), ref.path);
          if ('entry' in read) return null;
          const setAsideAt = new Date(wall()).toISOString();
          const kept: SetAsideEntry = {
            id: ref.id,
            stored: snap.data(),
            faults: read.faults,
            setAsideAt,
          };
          const target = projectDoc(project)
            .collection('outbox-set-aside')
            .doc(setAsideId(ref.id, setAsideAt));
          tx.set(target, fitSetAside(kept, target.path));
          tx.delete(ref);
          tx.set(countRef, { dropped: countOf(count, countRef.path).dropped + 1 });
          return kept;
        },
        { maxAttempts },
      ),
    );
  }

  /**
   * Per project, the condition records this client read and could not (readConditions), at the
   * version it read them: what a save at that version keeps as stored.
   */
  const keptConditions = new Map<string, { version: string; kept: Record<string, unknown> }>();

  /** The unreadable condition records stored at `version`; ConflictError when it no longer is. */
  async function keptAt(
    project: string,
    ref: DocumentReference,
    version: string,
  ): Promise<Record<string, unknown>> {
    const known = keptConditions.get(project);
    if (known?.version === version) return known.kept;
    const snap = await call(`reading ${ref.path}`, () => ref.get());
    const found = snap.exists && snap.updateTime ? encodeVersion(snap.updateTime) : null;
    if (found !== version) throw versionConflict(project, version, found);
    return conditionsOf(snap.data(), ref.path).kept;
  }

  async function readOrMakeGovernorId(): Promise<string> {
    const ref = db.collection(collection).doc('%governor');
    // Made once and never changed: a plain read finds it in one round trip, where a transaction
    // takes two (its read, then its commit). Only a store without one yet needs the transaction.
    const found = await call(`reading ${ref.path}`, () => ref.get());
    if (found.exists) return governorIdOf(found.data(), ref.path);
    return call(`reading ${ref.path}`, () =>
      db.runTransaction(
        async (tx) => {
          const snap = await tx.get(ref);
          if (snap.exists) return governorIdOf(snap.data(), ref.path);
          const id = newGovernorId();
          tx.create(ref, { id });
          return id;
        },
        { maxAttempts },
      ),
    );
  }

  return {
    governorId: readOrMakeGovernorId,

    async loadDiscovery() {
      const ref = db.collection(collection).doc('%discovery');
      const snap = await call(`reading ${ref.path}`, () => ref.get());
      if (!snap.exists) return null;
      const text = storedJson(DiscoveryDocument, snap.data(), ref.path);
      // A newer version's fields are left out (parseStoredKnown): the cache stays readable.
      return parseStoredKnown(DiscoveryCache, parseJson(text, ref.path), `document ${ref.path}`);
    },

    async saveDiscovery(cache) {
      const ref = db.collection(collection).doc('%discovery');
      // One field of JSON text, about 65 bytes a project: gzipped beyond about 16,000 projects.
      const checked = DiscoveryCache.parse(cache);
      const body = packJson(
        JSON.stringify(checked),
        `the discovery of ${checked.projects.length} project(s)`,
        'not saved, the discovery saved before is kept',
      );
      await call(`writing ${ref.path}`, () => ref.set(body));
    },

    async loadConditions(project): Promise<VersionedConditions> {
      const ref = stateDoc(project, 'conditions');
      const snap = await call(`reading ${ref.path}`, () => ref.get());
      if (!snap.exists || snap.updateTime === undefined) return { state: {}, version: null };
      const version = encodeVersion(snap.updateTime);
      const { state, kept, unreadable } = conditionsOf(snap.data(), ref.path);
      keptConditions.set(project, { version, kept });
      return { state, version, ...(unreadable.length > 0 ? { unreadable } : {}) };
    },

    async saveConditions(project, state, expectedVersion) {
      const ref = stateDoc(project, 'conditions');
      const checked = checkConditionState(state);
      // What this version cannot read stays as stored, for the version that can: the records
      // kept at the version read (the update below is conditional on it, so they are still
      // those), read again when that read was not this client's.
      const kept = expectedVersion === null ? {} : await keptAt(project, ref, expectedVersion);
      const body = conditionsBody(project, keepUnreadable(checked, kept));
      const savedAt = new Date().toISOString();
      const lastUpdateTime =
        expectedVersion === null ? null : decodeVersion(project, expectedVersion);
      const written = await call(`writing ${ref.path}`, async () => {
        try {
          // An update keeps the fields it does not name: the other form's is deleted.
          return lastUpdateTime === null
            ? await ref.create({ ...body, savedAt })
            : await ref.update(
                'gz' in body
                  ? { ...body, savedAt, json: FieldValue.delete() }
                  : { ...body, savedAt, gz: FieldValue.delete() },
                { lastUpdateTime },
              );
        } catch (error) {
          if (!refusedPrecondition(error)) throw error;
          const found = await ref.get();
          const version = found.updateTime === undefined ? null : encodeVersion(found.updateTime);
          throw versionConflict(project, expectedVersion, version, error);
        }
      });
      const version = encodeVersion(written.writeTime);
      const left = Object.entries(kept).filter(([key]) => !Object.hasOwn(checked, key));
      keptConditions.set(project, { version, kept: Object.fromEntries(left) });
      return version;
    },

    async recordRun(project, record) {
      const checked = checkRunRecord(record);
      const runs = runsOf(project);
      const body = runBody(project, checked);
      await call(`recording run ${checked.runId} of ${project}`, async () => {
        await runs
          .doc(docId(checked.runId))
          .set({ ...body, startedAtMs: Date.parse(checked.startedAt) });
        // The newest `keep` as listRuns ranks them (records from the future last): two fields of
        // each record read, as the offset query read each record before. A document without a
        // readable runId and startedAt (another program's, a hand edit) is neither ranked nor
        // removed: refused here, it stopped every later prune, and the collection grew by one
        // document a run. listRuns reads only documents with a startedAtMs: one of them it
        // cannot read is refused there, naming it.
        const all = await runs.select('runId', 'startedAt').get();
        if (all.size <= keep) return;
        const ranked = sortRuns(
          all.docs.flatMap((doc) => {
            const key = RunKey.safeParse(doc.data());
            return key.success ? [{ ...key.data, doc }] : [];
          }),
          wall(),
        );
        const batch = db.batch();
        for (const old of ranked.slice(keep)) batch.delete(old.doc.ref);
        await batch.commit();
      });
    },

    async listRuns(project, limit) {
      const runs = runsOf(project);
      const most = checkLimit(limit, keep);
      // Two queries on one field (no composite index): the records up to now plus the allowed
      // skew, newest first, and those beyond it, which come last (fromTheFuture).
      const cutoff = wall() + MAX_CLOCK_SKEW_MS;
      const [past, future] = await call(`listing runs of ${project}`, () =>
        Promise.all([
          runs.where('startedAtMs', '<=', cutoff).orderBy('startedAtMs', 'desc').limit(most).get(),
          runs.where('startedAtMs', '>', cutoff).orderBy('startedAtMs', 'desc').limit(most).get(),
        ]),
      );
      const read = [...past.docs, ...future.docs].map((doc) => {
        const where = `document ${doc.ref.path}`;
        const data = doc.data();
        if (!isGzipped(data)) {
          // startedAtMs is the store's own, beside the record (recordRun).
          const record: Record<string, unknown> = { ...data };
          delete record['startedAtMs'];
          return parseRunRecord(record, where);
        }
        const text = unpack(parseStored(Gzipped, data, where).gz, doc.ref.path);
        return parseRunRecord(parseJson(text, doc.ref.path), where);
      });
      return sortRuns(read, wall()).slice(0, most);
    },

    acquireLease: (project, holder, ttlMs, now) =>
      lease(project, { kind: 'acquire', holder, ttlMs, now }),

    renewLease: (project, holder, ttlMs, now) =>
      lease(project, { kind: 'renew', holder, ttlMs, now }),

    releaseLease(project, holder) {
      const ref = stateDoc(project, 'lease');
      return call(`releasing the lease of ${project}`, () =>
        db.runTransaction(
          async (tx) => {
            const stored = await readLease(tx, ref);
            if (stored?.holder !== holder) return false;
            tx.delete(ref);
            return true;
          },
          { maxAttempts },
        ),
      );
    },

    async readLease(project) {
      const ref = stateDoc(project, 'lease');
      const snap = await call(`reading ${ref.path}`, () => ref.get());
      return snap.exists ? parseStoredLease(snap.data(), `lease document ${ref.path}`) : null;
    },

    breakLease(project, seen) {
      const ref = stateDoc(project, 'lease');
      return call(`breaking the lease of ${project}`, () =>
        db.runTransaction(
          async (tx) => {
            const snap = await tx.get(ref);
            if (!snap.exists) return false;
            if (seen !== undefined && !stillTheLease(snap.data(), seen)) return false;
            tx.delete(ref);
            return true;
          },
          { maxAttempts },
        ),
      );
    },

    async putOutbox(project, entries) {
      const checked = checkOutboxEntries(entries);
      const box = outboxOf(project);
      const countRef = stateDoc(project, 'outbox');
      return call(`adding to the outbox of ${project}`, () =>
        db.runTransaction(
          async (tx) => {
            // Every read before the first write, as a transaction requires.
            const kept = inStoredOrder((await tx.get(box.select('storedAt', 'order'))).docs);
            const count = await tx.get(countRef);
            // An entry whose place cannot be read is not known here (one with the same id is
            // replaced); listOutbox sets it aside.
            const place = new Map(
              kept.flatMap((d) => {
                const known = OutboxPlace.safeParse(d.data());
                return known.success ? [[d.id, known.data] as const] : [];
              }),
            );
            const ids = kept.map((d) => d.id);
            const writes = new Map<
              string,
              { json: string; state: string; storedAt: string; order: string }
            >();
            // A new entry goes after every one stored (see nextOrder).
            let last = kept.map(orderOf).findLast((o) => o !== null) ?? null;
            checked.forEach((entry, i) => {
              const id = docId(entry.alert.id);
              const known = place.get(id);
              const storedAt = known?.storedAt ?? entry.storedAt;
              const order = known?.order ?? nextOrder(last, storedAt, i);
              if (!known) {
                if (!ids.includes(id)) ids.push(id);
                last = order;
              }
              place.set(id, { storedAt, order });
              writes.set(id, {
                json: JSON.stringify(entry.alert),
                state: entry.state,
                storedAt,
                order,
              });
            });
            const drop = await oldestReadable(tx, box, ids, writes, outboxLimit);
            for (const [id, body] of writes) tx.set(box.doc(id), body);
            for (const id of drop) tx.delete(box.doc(id));
            const dropped = drop.length;
            if (dropped > 0) {
              tx.set(countRef, { dropped: countOf(count, countRef.path).dropped + dropped });
            }
            return dropped;
          },
          { maxAttempts },
        ),
      );
    },

    async listOutbox(project) {
      const box = outboxOf(project);
      const countRef = stateDoc(project, 'outbox');
      const [snap, count] = await call(`reading the outbox of ${project}`, () =>
        Promise.all([box.get(), countRef.get()]),
      );
      const read = inStoredOrder(snap.docs).map((d) => ({
        ref: d.ref,
        read: outboxEntryOf(d.data(), d.ref.path),
      }));
      const entries = read.flatMap((r) => ('entry' in r.read ? [r.read.entry] : []));
      const unreadable = read.filter((r) => !('entry' in r.read));
      // An entry nobody can read is set aside (quarantined, not deleted), each in a transaction
      // that leaves it where another writer made it readable meanwhile: that one is read next time.
      const setAside: SetAsideReport[] = [];
      for (const { ref } of unreadable) {
        const moved = await setAsideEntry(project, ref);
        if (moved) setAside.push({ id: moved.id, faults: moved.faults });
      }
      // Setting aside counted each as dropped: the count is read again only then. One unreadable
      // as first read is reported (setting aside replaced it with a number).
      const first = countOf(count, countRef.path);
      const counted =
        setAside.length > 0
          ? countOf(
              await call(`reading the outbox of ${project}`, () => countRef.get()),
              countRef.path,
            )
          : first;
      const droppedUnreadable = first.unreadable ?? counted.unreadable;
      return {
        entries,
        dropped: counted.dropped,
        ...(setAside.length > 0 ? { setAside } : {}),
        ...(droppedUnreadable ? { droppedUnreadable } : {}),
      };
    },

    async removeOutbox(project, ids, droppedAnnounced = 0) {
      const box = outboxOf(project);
      const countRef = stateDoc(project, 'outbox');
      const chunks: string[][] = [];
      for (let i = 0; i < ids.length; i += REMOVE_CHUNK)
        chunks.push(ids.slice(i, i + REMOVE_CHUNK));
      // The count the run announced is acknowledged in one transaction with the first entries it
      // removes: as two commits, a run that died between them left the count standing, and the
      // next announcement counted the same dropped entries again. Entries of later chunks left
      // behind by such a death are only published again, under their own ids.
      if (droppedAnnounced > 0) {
        const first = chunks.shift() ?? [];
        await call(`acknowledging the dropped count of ${project}`, () =>
          db.runTransaction(
            async (tx) => {
              const count = await tx.get(countRef);
              for (const id of first) tx.delete(box.doc(docId(id)));
              if (!count.exists) return;
              // An unreadable count reads as 1: announced, it is replaced by a number.
              tx.set(countRef, {
                dropped: acknowledgeDropped(countOf(count, countRef.path), droppedAnnounced),
              });
            },
            { maxAttempts },
          ),
        );
      }
      for (const chunk of chunks) {
        await call(`removing from the outbox of ${project}`, async () => {
          const batch = db.batch();
          for (const id of chunk) batch.delete(box.doc(docId(id)));
          await batch.commit();
        });
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      if (await settleWithin([...pending], timeoutMs)) await db.terminate();
    },
  };
}

/** The stored governor id, or StateCorruptError naming the document and what to do about it. */
function governorIdOf(data: unknown, path: string): string {
  try {
    return parseStored(GovernorDocument, data, `document ${path}`).id;
  } catch (error) {
    if (error instanceof StateCorruptError) error.message += `\n${governorIdFix('its id field')}`;
    throw error;
  }
}

/** The server refused a write because the document is not as expected. */
function refusedPrecondition(error: unknown): boolean {
  const code = grpcCode(error);
  return (
    code === status.ALREADY_EXISTS ||
    code === status.FAILED_PRECONDITION ||
    code === status.NOT_FOUND
  );
}

async function readLease(tx: Transaction, ref: DocumentReference): Promise<Lease | null> {
  return leaseOf(await tx.get(ref), ref);
}

function leaseOf(snap: DocumentSnapshot, ref: DocumentReference): Lease | null {
  return snap.exists ? parseStoredLease(snap.data(), `lease document ${ref.path}`) : null;
}

/**
 * Refuses to take or renew a lease on a machine whose clock is more than MAX_LEASE_CLOCK_SKEW_MS
 * away from Firestore's. A lease is timed on the clock of whoever takes it, and every governor
 * judges it on its own: one taken on a clock a day behind has expired for everyone else at once,
 * and two runs would write the same pool together; one taken a day ahead holds everyone off for a
 * day. Firestore's read time (the server's clock, the same for every governor) is the reference.
 */
function checkClock(serverMs: number, hereMs: number, project: string): void {
  const skewMs = hereMs - serverMs;
  if (Math.abs(skewMs) <= MAX_LEASE_CLOCK_SKEW_MS) return;
  const seconds = Math.round(Math.abs(skewMs) / 1000).toLocaleString('en-US');
  throw new ClockSkewError(
    `this machine's clock is ${seconds} s ${skewMs < 0 ? 'behind' : 'ahead of'} Firestore's ` +
      `(${new Date(hereMs).toISOString()} here, ${new Date(serverMs).toISOString()} at Firestore): ` +
      `a lease of ${project} timed on it would let two governors write at once or hold them off, ` +
      `so none was taken and nothing was written. Set the clock right (NTP) and run again.`,
  );
}

/** Whether every promise settled within `ms`. */
async function settleWithin(promises: readonly Promise<unknown>[], ms: number): Promise<boolean> {
  if (promises.length === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    return await Promise.race([Promise.allSettled(promises).then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A Firestore document id for a project or run id (`/` and other specials escaped). */
function docId(id: string): string {
  const escaped = encodeURIComponent(id).replace(/\./g, '%2E');
  if (/^__.*__$/.test(escaped)) return `%5F${escaped.slice(1)}`;
  return escaped;
}

/** An update time as an opaque version: seconds and nanoseconds, nothing lost. */
function encodeVersion(time: Timestamp): string {
  return `${time.seconds}.${String(time.nanoseconds).padStart(9, '0')}`;
}

function decodeVersion(project: string, version: string): Timestamp {
  const match = /^(\d+)\.(\d{9})$/.exec(version);
  if (match === null)
    throw new RangeError(`Not a version of ${project}: ${JSON.stringify(version)}`);
  return new Timestamp(Number(match[1]), Number(match[2]));
}

/**
 * The stored count of dropped entries (no document: 0); one nobody can read reads as 1 and says
 * so. Writers that add to it or acknowledge it write a number from there.
 */
function countOf(
  snap: { exists: boolean; data(): unknown },
  path: string,
): { dropped: number; unreadable?: UnreadableCount } {
  return snap.exists
    ? readDroppedCount(
        snap.data(),
        `document ${path}`,
        OutboxCount.transform((d) => d.dropped),
      )
    : { dropped: 0 };
}

/**
 * The entries to drop so that at most `limit` readable ones stay, and at most `maxBytes` of their
 * alert JSON together (ports/state.ts outboxOverflow, the rule of every store): the oldest
 * readable of `ids` (the outbox in order, then the new entries, which `writes` stores). An entry
 * nobody can read found among them is not dropped and not counted: dropping deletes, and it is
 * kept to be set aside (listOutbox) for a person to look at, as the file store keeps it. Only when
 * the outbox may be over a bound (more than `limit` entries, or more than a document's most,
 * 1 MiB, each could pass `maxBytes`) are its stored documents read whole, inside the transaction:
 * all of them, since an unreadable one anywhere (stored after the oldest, by its `order`) does not
 * count in the bound, and judged from the oldest alone it was counted, one readable entry more
 * dropped for it. What is read is the outbox the bound holds: at most `maxBytes`, and the entries
 * nobody can read, which the next listOutbox sets aside.
 */
async function oldestReadable(
  tx: Transaction,
  box: CollectionReference,
  ids: readonly string[],
  writes: ReadonlyMap<string, { json: string }>,
  limit: number,
  maxBytes: number = MAX_OUTBOX_BYTES,
): Promise<string[]> {
  const stored = ids.filter((id) => !writes.has(id));
  const written = [...writes.values()].reduce((sum, w) => sum + utf8Length(w.json), 0);
  if (ids.length <= limit && written + stored.length * MAX_FIRESTORE_DOCUMENT_BYTES <= maxBytes)
    return [];
  const snaps = stored.length === 0 ? [] : await tx.getAll(...stored.map((id) => box.doc(id)));
  const bytes = new Map<string, number>();
  for (const snap of snaps) {
    const read = snap.exists ? outboxEntryOf(snap.data(), snap.ref.path) : null;
    if (read !== null && 'entry' in read) bytes.set(snap.id, alertBytes(read.entry.alert));
  }
  for (const [id, w] of writes) bytes.set(id, utf8Length(w.json));
  const readable = ids.filter((id) => bytes.has(id));
  return readable.slice(
    0,
    outboxOverflow(
      readable.map((id) => bytes.get(id) ?? 0),
      limit,
      maxBytes,
    ),
  );
}

/** The longest document id Firestore takes (https://cloud.google.com/firestore/quotas). */
const MAX_DOCUMENT_ID_BYTES = 1_500;

/**
 * The id of an entry's set-aside copy: `<its id>@<when>`, or, when that is longer than a document
 * id may be (an id another program gave its document, up to the same 1,500 bytes), a digest of
 * its id in its place: the copy names the whole id in its `id` field. Over it, the move failed,
 * and with it every read of the outbox, for good.
 */
function setAsideId(id: string, setAsideAt: string): string {
  const plain = `${id}@${setAsideAt}`;
  if (Buffer.byteLength(plain) <= MAX_DOCUMENT_ID_BYTES) return plain;
  return `sha256-${createHash('sha256').update(id).digest('hex')}@${setAsideAt}`;
}

/** The most a Firestore document holds (https://cloud.google.com/firestore/quotas). */
const MAX_FIRESTORE_DOCUMENT_BYTES = 1_048_576;

/**
 * A set-aside entry as it fits one document. Kept whole beside its faults, an entry stored near
 * the 1 MiB a document holds (by another program, by hand) is over it, and one whose maps nest
 * the 20 levels a document may is one level deeper: the move failed, and with it every read of
 * the outbox, for good. Then `stored` holds its JSON text gzipped, and a fault says so; should
 * even that not fit (over 1 MiB that does not compress), the text cut to fit, and a fault says
 * how much of it was cut.
 */
function fitSetAside(entry: SetAsideEntry, path: string): SetAsideEntry {
  const noted = (stored: unknown, message: string): SetAsideEntry => ({
    ...entry,
    stored,
    faults: [...entry.faults, { path: '', message }],
  });
  const fits = (e: SetAsideEntry) => documentBytes(path, e) <= MAX_FIRESTORE_DOCUMENT_BYTES;
  const shallow = depthOf(entry) <= MAX_FIRESTORE_DEPTH;
  if (shallow && fits(entry)) return entry;
  const tooLarge = shallow
    ? 'too large to keep beside its faults in one document (1 MiB)'
    : `nested too deep to keep beside its faults in one document (${MAX_FIRESTORE_DEPTH} levels)`;
  const text = JSON.stringify(entry.stored) ?? 'null';
  const gzipped = noted(gzipSync(text), `${tooLarge}: stored holds its JSON text gzipped`);
  if (fits(gzipped)) return gzipped;
  const bytes = Buffer.byteLength(text);
  const cutNote = (kept: number) =>
    `${tooLarge}, even gzipped: stored holds its JSON text cut to ${kept} of ${bytes} bytes`;
  // The room left beside the longest note; a cut may end in a broken character (3 bytes).
  const room = MAX_FIRESTORE_DOCUMENT_BYTES - documentBytes(path, noted('', cutNote(bytes))) - 4;
  const cut = Buffer.from(text).subarray(0, Math.max(0, room)).toString('utf8');
  return noted(cut, cutNote(Buffer.byteLength(cut)));
}

/** The deepest a document's maps and arrays nest (https://cloud.google.com/firestore/quotas). */
const MAX_FIRESTORE_DEPTH = 20;

/**
 * How deep a document's fields nest, as the client counts it: a map or an array is one level more
 * than the deepest value in it; anything else (text, a number, bytes, a time) none.
 */
function depthOf(fields: Record<string, unknown>): number {
  const depth = (v: unknown): number => {
    if (Array.isArray(v)) return 1 + v.reduce((n: number, x) => Math.max(n, depth(x)), 0);
    if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) {
      return 0;
    }
    return 1 + Object.values(v).reduce((n: number, x) => Math.max(n, depth(x)), 0);
  };
  return Object.values(fields).reduce((n: number, x) => Math.max(n, depth(x)), 0);
}

/**
 * A document's size as Firestore counts it (https://cloud.google.com/firestore/docs/storage-size):
 * its name (each collection and document id, as a string, plus 16), its fields (each name as a
 * string, plus its value) and 32 more. A map is counted as a document's fields plus 32, more than
 * the page may count, so that what is judged to fit does.
 */
function documentBytes(path: string, fields: Record<string, unknown>): number {
  const text = (s: string) => Buffer.byteLength(s) + 1;
  const name = path.split('/').reduce((n, id) => n + text(id), 16);
  const value = (v: unknown): number => {
    if (typeof v === 'string') return text(v);
    if (v === null || v === undefined || typeof v === 'boolean') return 1;
    if (typeof v === 'number' || v instanceof Timestamp || v instanceof Date) return 8;
    if (v instanceof Uint8Array) return v.length;
    if (v instanceof GeoPoint) return 16;
    if (v instanceof DocumentReference)
      return v.path.split('/').reduce((n, id) => n + text(id), 16);
    if (Array.isArray(v)) return v.reduce((n: number, x) => n + value(x), 0);
    if (typeof v === 'object') {
      return Object.entries(v).reduce((n, [k, x]) => n + text(k) + value(x), 32);
    }
    return 8;
  };
  return name + value(fields);
}

/** An outbox document's `order`, when it is text (any other is unreadable: set aside). */
function orderOf(doc: { get(field: string): unknown }): string | null {
  const order = doc.get('order');
  return typeof order === 'string' ? order : null;
}

/**
 * The outbox's documents in the order they were stored: by `order`, then by id, as a query
 * ordered by `order` sorts them (ties by document name:
 * https://cloud.google.com/firestore/docs/reference/rest/v1/StructuredQuery, `orderBy`). Sorted
 * here, from a read of the whole collection (at most the outbox's bound), because such a query
 * leaves out every document without the field
 * (https://firebase.google.com/docs/reference/js/firestore.queryorderbyconstraint): one written
 * by hand or by another program was then never published, set aside nor counted. A document with
 * no `order` text comes first: it is unreadable, set aside by the next `listOutbox`.
 */
function inStoredOrder<D extends { id: string; get(field: string): unknown }>(
  docs: readonly D[],
): D[] {
  return [...docs].sort((a, b) => {
    const x = orderOf(a);
    const y = orderOf(b);
    if (x !== y) return x === null ? -1 : y === null ? 1 : compareText(x, y);
    return compareText(a.id, b.id);
  });
}

/**
 * The `order` of a new outbox entry stored at `storedAt`, `i`th of its call: `<storedAt>|<i>`
 * (six digits), unless that does not come after `last`, the greatest order stored (null: none),
 * in which case the one just after it. The outbox is kept in the order entries were stored, as
 * the other stores keep it, whatever the writers' clocks say: a run whose clock reads earlier
 * than the last run's (another machine; a clock stepped back), or two calls within one
 * millisecond, would otherwise put a resolution before the firing message it resolves (ties sort
 * by document id). Still text of the same form, so an earlier version reads it.
 */
function nextOrder(last: string | null, storedAt: string, i: number): string {
  const own = `${new Date(storedAt).toISOString()}|${String(i).padStart(6, '0')}`;
  if (last === null || compareText(own, last) > 0) return own;
  const m = /^(.*)\|(\d{6})$/.exec(last);
  if (m === null) return `${last}|000000`;
  const n = Number(m[2]) + 1;
  if (n <= 999_999) return `${m[1]}|${String(n).padStart(6, '0')}`;
  const t = Date.parse(m[1] ?? '');
  return Number.isFinite(t) ? `${new Date(t + 1).toISOString()}|000000` : `${last}|000000`;
}

/** A stored outbox document as an entry, or the faults that make it unreadable. */
function outboxEntryOf(data: unknown, path: string): { entry: OutboxEntry } | { faults: Fault[] } {
  const doc = OutboxDocument.safeParse(data);
  if (!doc.success) return { faults: capFaults(zodFaults(doc.error)) };
  const deep = nestingFault(doc.data.json);
  if (deep !== null) return { faults: [{ path: 'json', message: deepText(deep) }] };
  let json: unknown;
  try {
    json = JSON.parse(doc.data.json);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return { faults: [{ path: 'json', message: `not JSON in ${path}` }] };
  }
  const alert = Alert.safeParse(json);
  if (!alert.success) return { faults: capFaults(zodFaults(alert.error)) };
  return { entry: { alert: alert.data, state: doc.data.state, storedAt: doc.data.storedAt } };
}

/** A stored conditions document, record by record (readConditions). */
function conditionsOf(data: unknown, path: string): ReturnType<typeof readConditions> {
  return readConditions(
    parseJson(storedJson(ConditionsDocument, data, path), path),
    `document ${path}`,
  );
}

/**
 * The stored form of a condition state: its JSON text, or that text gzipped when it is longer
 * than a field may be; refused when even that is too long (see "Size" above).
 */
function conditionsBody(
  project: string,
  state: Readonly<Record<string, unknown>>,
): { json: string } | { gz: Buffer } {
  const n = Object.keys(state).length;
  return packJson(
    JSON.stringify(state),
    `the alert state of ${project} (${plural(n, 'firing condition')})`,
    'not saved, the state saved before is kept',
  );
}

/**
 * JSON text as one field: as it is when it is at most `inlineMax` bytes, else gzipped; refused
 * with StateTooLargeError, naming `what`, its sizes and `outcome`, when even that is too long.
 */
function packJson(
  json: string,
  what: string,
  outcome: string,
  inlineMax = MAX_FIELD_BYTES,
): { json: string } | { gz: Buffer } {
  const bytes = Buffer.byteLength(json);
  if (bytes <= inlineMax) return { json };
  const gz = gzipSync(json);
  if (gz.length <= MAX_FIELD_BYTES) return { gz };
  const n = (x: number) => x.toLocaleString('en-US');
  throw new StateTooLargeError(
    `${what} is ${n(gz.length)} bytes compressed (${n(bytes)} as JSON), over the ${n(MAX_FIELD_BYTES)} bytes one Firestore document holds here (1 MiB at most: https://cloud.google.com/firestore/quotas); ${outcome}`,
  );
}

/**
 * The stored form of a run record: its fields, or (too long for that) the fields that rank and
 * prune it beside the whole record gzipped; refused when even that is too long.
 */
function runBody(
  project: string,
  record: RunRecord,
): RunRecord | (Pick<RunRecord, 'runId' | 'startedAt'> & { gz: Buffer }) {
  const packed = packJson(
    JSON.stringify(record),
    `the record of run ${record.runId} of ${project}`,
    'not recorded',
    MAX_RUN_INLINE_BYTES,
  );
  return 'gz' in packed
    ? { runId: record.runId, startedAt: record.startedAt, gz: packed.gz }
    : record;
}

/**
 * The JSON text of a document that keeps it in one field: its `json` field as `plain` reads it,
 * or its `gz` field unpacked when it is stored gzipped (see "Size" above).
 */
function storedJson(plain: z.ZodType<{ json: string }>, data: unknown, path: string): string {
  const where = `document ${path}`;
  return isGzipped(data)
    ? unpack(parseStored(Gzipped, data, where).gz, path)
    : parseStored(plain, data, where).json;
}

/** Whether a stored document is in its gzipped form (it has a `gz` field). */
function isGzipped(data: unknown): boolean {
  return typeof data === 'object' && data !== null && 'gz' in data;
}

/** The JSON text of a gzipped state or record, refused beyond {@link MAX_UNPACKED_BYTES} or when corrupt. */
function unpack(gz: Uint8Array, path: string): string {
  try {
    return gunzipSync(gz, { maxOutputLength: MAX_UNPACKED_BYTES }).toString('utf8');
  } catch (error) {
    throw new StateCorruptError(
      `document ${path}`,
      [{ path: 'gz', message: `not gzipped JSON of at most 64 MiB (${errorMessage(error)})` }],
      { cause: error },
    );
  }
}

/**
 * Stored JSON text as a value, or StateCorruptError naming the document: text that is not JSON,
 * or JSON nested far deeper than the governor writes (nestingFault, the file store's bound).
 * JSON.parse reads the latter, but JSON.stringify recurses once per level: written back or
 * published, thousands of levels overflow the stack, failing every run with an error that names
 * nothing. Firestore keeps whatever text another program stores in a field.
 */
function parseJson(text: string, path: string): unknown {
  const deep = nestingFault(text);
  if (deep !== null) {
    throw new StateCorruptError(`document ${path}`, [{ path: '', message: deepText(deep) }]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new StateCorruptError(
      `document ${path}`,
      [{ path: 'json', message: `not JSON (${jsonErrorText(error)})` }],
      { cause: error },
    );
  }
}

/** A nesting fault of stored JSON text, in one message: what, and where in the text. */
function deepText(fault: Fault): string {
  return `${fault.message} (${fault.path} of its JSON text)`;
}
