/**
 * The state store in Firestore (native mode), the Cloud Function's: it survives between
 * invocations and is shared by every instance, so the lease can keep to one writer per project.
 * The only file that imports `@google-cloud/firestore`.
 *
 * Layout, under one collection (default `gpu-governor`), per governed project:
 *   <collection>/<project>/state/conditions   { json: <ConditionState as JSON text>, savedAt }
 *   <collection>/<project>/state/lease        { holder, acquiredAt, expiresAt }
 *   <collection>/<project>/runs/<runId>       a RunRecord, plus startedAtMs to sort by
 * The condition state is stored as JSON text: alert details are free-form JSON (nested arrays,
 * which Firestore refuses), and the text parses back through the same zod schema as a file.
 *
 * Concurrency: the conditions' version is the document's update time; a save is a `create` when
 * no version was read, else an `update` with that update time as precondition, so the server
 * refuses a save over another writer's. The lease is read and written in one transaction.
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
 * credentials.
 */
import { Firestore, Timestamp } from '@google-cloud/firestore';
import type { DocumentReference, Transaction } from '@google-cloud/firestore';
import { status } from '@grpc/grpc-js';
import { z } from 'zod';

import { translateGrpcError } from './grpc-errors.js';
import { grpcCode } from './retry.js';
import { UnavailableError } from '../errors.js';
import {
  checkKeep,
  checkLeaseRequest,
  checkProject,
  checkRunRecord,
  ConditionState,
  decideLease,
  DEFAULT_KEEP_RUNS,
  Lease,
  parseStored,
  RunRecord,
  sortRuns,
  StateCorruptError,
  versionConflict,
  type LeaseRequest,
  type LeaseResult,
  type StateStore,
  type VersionedConditions,
} from '../ports/index.js';

export const DEFAULT_COLLECTION = 'gpu-governor';

export interface FirestoreStateStoreOptions {
  /** The project that hosts the database; default: the client's (credentials, environment). */
  projectId?: string;
  /** Default `(default)`. */
  databaseId?: string;
  /** The root collection. Default `gpu-governor`. */
  collection?: string;
  /** Run records kept per project. Default 50. */
  keepRuns?: number;
  /** The longest any one call may take, retries included. Default 20 s. */
  timeoutMs?: number;
  /** Attempts of a lease transaction when writers collide. Default 5. */
  transactionAttempts?: number;
}

const ConditionsDocument = z.object({ json: z.string(), savedAt: z.string() });
/** A run document: the record's fields (the sort key `startedAtMs` is dropped on reading). */
const RunDocument = z.object(RunRecord.shape);

export function createFirestoreStateStore(options: FirestoreStateStoreOptions = {}): StateStore {
  const collection = options.collection ?? DEFAULT_COLLECTION;
  const keep = checkKeep(options.keepRuns ?? DEFAULT_KEEP_RUNS);
  const timeoutMs = options.timeoutMs ?? 20_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a finite number above 0, not ${timeoutMs}`);
  }
  const maxAttempts = options.transactionAttempts ?? 5;

  const db = new Firestore({
    ...(options.projectId === undefined ? {} : { projectId: options.projectId }),
    ...(options.databaseId === undefined ? {} : { databaseId: options.databaseId }),
    // An optional field a caller spelled out as undefined is simply absent, as in JSON.
    ignoreUndefinedProperties: true,
  });

  const projectDoc = (project: string): DocumentReference =>
    db.collection(collection).doc(docId(checkProject(project)));
  const stateDoc = (project: string, name: 'conditions' | 'lease'): DocumentReference =>
    projectDoc(project).collection('state').doc(name);
  const runsOf = (project: string) => projectDoc(project).collection('runs');

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
          const { write, result } = decideLease(await readLease(tx, ref), request);
          if (write !== null) tx.set(ref, write);
          return result;
        },
        { maxAttempts },
      ),
    );
  }

  return {
    async loadConditions(project): Promise<VersionedConditions> {
      const ref = stateDoc(project, 'conditions');
      const snap = await call(`reading ${ref.path}`, () => ref.get());
      if (!snap.exists || snap.updateTime === undefined) return { state: {}, version: null };
      const doc = parseStored(ConditionsDocument, snap.data(), `document ${ref.path}`);
      return {
        state: parseStored(ConditionState, parseJson(doc.json, ref.path), `document ${ref.path}`),
        version: encodeVersion(snap.updateTime),
      };
    },

    async saveConditions(project, state, expectedVersion) {
      const ref = stateDoc(project, 'conditions');
      const data = {
        json: JSON.stringify(ConditionState.parse(state)),
        savedAt: new Date().toISOString(),
      };
      const lastUpdateTime =
        expectedVersion === null ? null : decodeVersion(project, expectedVersion);
      const written = await call(`writing ${ref.path}`, async () => {
        try {
          return lastUpdateTime === null
            ? await ref.create(data)
            : await ref.update(data, { lastUpdateTime });
        } catch (error) {
          if (!refusedPrecondition(error)) throw error;
          const found = await ref.get();
          const version = found.updateTime === undefined ? null : encodeVersion(found.updateTime);
          throw versionConflict(project, expectedVersion, version, error);
        }
      });
      return encodeVersion(written.writeTime);
    },

    async recordRun(project, record) {
      const checked = checkRunRecord(record);
      const runs = runsOf(project);
      await call(`recording run ${checked.runId} of ${project}`, async () => {
        await runs
          .doc(docId(checked.runId))
          .set({ ...checked, startedAtMs: Date.parse(checked.startedAt) });
        const old = await runs.orderBy('startedAtMs', 'desc').offset(keep).select().get();
        if (old.empty) return;
        const batch = db.batch();
        for (const doc of old.docs) batch.delete(doc.ref);
        await batch.commit();
      });
    },

    async listRuns(project) {
      const runs = runsOf(project);
      const snap = await call(`listing runs of ${project}`, () =>
        runs.orderBy('startedAtMs', 'desc').limit(keep).get(),
      );
      return sortRuns(
        snap.docs.map((doc) => parseStored(RunDocument, doc.data(), `document ${doc.ref.path}`)),
      );
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

    async close() {
      if (closed) return;
      closed = true;
      if (await settleWithin([...pending], timeoutMs)) await db.terminate();
    },
  };
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
  const snap = await tx.get(ref);
  return snap.exists ? parseStored(Lease, snap.data(), `document ${ref.path}`) : null;
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

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new StateCorruptError(
      `document ${path}`,
      [{ path: 'json', message: `not JSON (${error instanceof Error ? error.message : ''})` }],
      { cause: error },
    );
  }
}
