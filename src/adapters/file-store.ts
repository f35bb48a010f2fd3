/**
 * The state store in local files, the CLI's default: one JSON document per project,
 * `<dir>/<project>.json` (default dir `.governor/state`), holding the condition state and its
 * version, the lease, the last run records and the outbox; `<dir>/governor-id`, this governor's
 * id; and `<dir>/%discovery.json`, the organisation's discovery cache (DISCOVERY_FILE).
 *
 * Every change is a read-modify-write under a lock file (`<file>.lock`) and lands with
 * write-temp-then-rename, so a reader sees the old document or the new one, never half of one,
 * and a crash mid-write loses nothing. What a process killed in the middle left beside the file
 * (temporary files, a lock moved aside to be broken) is removed by a later change once it is
 * older than a stale lock; so is what one left beside the discovery cache (by the next save) or
 * the governor id (by the run that makes it). See `file-lock.ts` for the lock.
 */
import { DiscoveryCache } from '../core/discovery.js';
import { jsonErrorText, nestingFault } from '../core/document.js';
import type { DiscoveryCacheStore } from '../ports/index.js';
import { randomUUID } from 'node:crypto';
import { open, readdir, rename, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';

import { cutText, UpstreamError } from '../core/errors.js';
import { MAX_DOCUMENT_BYTES, readHandleCapped, sizeText } from '../read-capped.js';
import {
  errnoCode,
  type Fence,
  fsError,
  linkUnlessTaken,
  makeFolder,
  openRegularFile,
  removeIfThere,
  withFileLock,
} from './file-lock.js';
import {
  addToOutbox,
  checkKeep,
  checkLeaseRequest,
  checkOutboxEntries,
  checkOutboxLimit,
  checkProject,
  checkLimit,
  checkRunRecord,
  checkConditionState,
  decideLease,
  DEFAULT_KEEP_RUNS,
  acknowledgeDropped,
  DroppedCount,
  DEFAULT_OUTBOX_LIMIT,
  GovernorId,
  governorIdFix,
  keepRuns,
  keepUnreadable,
  Lease,
  newGovernorId,
  type OutboxEntry,
  parseStored,
  parseRunRecord,
  parseStoredKnown,
  parseStoredLease,
  readConditions,
  readDroppedCount,
  RunRecord,
  SetAsideEntry,
  sortOutOutbox,
  sortRuns,
  stillTheLease,
  StateCorruptError,
  StateTooLargeError,
  versionConflict,
  type LeaseRequest,
  type LeaseResult,
  type StateStore,
  type UnreadableCount,
  type VersionedConditions,
} from '../ports/index.js';

export const DEFAULT_STATE_DIR = join('.governor', 'state');

/**
 * The organisation's discovery cache, beside the projects' files. A project's file is its id
 * percent-encoded (encodeURIComponent), so a `%` there is always followed by two hex digits: no
 * project maps to `%discovery.json`, as none maps to Firestore's `%discovery`. (It was
 * `discovery.json`, the file of a project named `discovery`, a valid project id: that project
 * was governed once, then its state was read as the cache and a saved cache replaced its state.)
 */
export const DISCOVERY_FILE = '%discovery.json';

interface FileStateStoreOptions {
  /** Default `.governor/state` under the working directory. */
  dir?: string;
  /** Run records kept per project. Default 50. */
  keepRuns?: number;
  /** Undelivered alert messages kept per project. Default 500. */
  outboxLimit?: number;
  /** How long to wait for another process's lock. Default 15 s. */
  lockTimeoutMs?: number;
  /** A lock older than this is broken, whoever holds it. Default 10 s. */
  staleLockMs?: number;
  /** The wall clock that judges run records from the future (tests). Default `Date.now`. */
  wallClock?: () => number;
  /**
   * The largest state file written (tests). Default, and at most, MAX_DOCUMENT_BYTES: what the
   * store reads back.
   */
  maxFileBytes?: number;
}

/**
 * A project's state file. Keys this version does not know (a newer version's: versions run side
 * by side during a deploy, and after a rollback the older one reads what the newer wrote) are
 * kept as stored by every write, never a reason to refuse the file; `schema` changes when a
 * version writes what an older one must not read.
 */
const documentFields = {
  schema: z.literal(1),
  project: z.string(),
  /**
   * `state` is read record by record where it is used (readConditions): one a newer version wrote
   * is left out of what a run reads, and kept as stored by every save.
   */
  conditions: z.strictObject({ version: z.number().int().min(1), state: z.unknown() }).nullable(),
  /**
   * Parsed where it is used (leaseOf), so that a lease nobody can read makes only the lease
   * unreadable: `breakLease` (`governor unlock`) removes it, and the rest of the file is kept.
   */
  lease: z.unknown(),
  /** Each read by parseRunRecord (readDocument): a newer version's fields are left out. */
  runs: z.array(z.unknown()),
  /**
   * Absent in documents written before the outbox. Each entry parsed apart (sortOutOutbox): one
   * nobody can read is kept by other changes and set aside into `outboxSetAside` by the next
   * `listOutbox`, which names it; never a reason to stop.
   */
  outbox: z.array(z.unknown()).optional(),
  /**
   * Entries dropped and not yet announced; absent: none. Parsed where it is used (countOf), so
   * that a count nobody can read makes only the count unknown, never the rest of the file: it
   * reads as at least 1, and the next change that counts replaces it with a number.
   */
  outboxDropped: z.unknown().optional(),
  /** Unreadable outbox entries set aside, as they were stored, for a person to look at. */
  outboxSetAside: z.array(SetAsideEntry).optional(),
};
const ProjectDocument = z.looseObject(documentFields);
/**
 * The document as stored, its run records read. The keys this version does not know are there
 * too, untyped: a change spreads the document it read, so they are written back as they were.
 */
type StoredDocument = Omit<z.infer<z.ZodObject<typeof documentFields>>, 'runs'> & {
  runs: RunRecord[];
};
/** The document as a change sees it: its outbox read, what could not be read set aside. */
type ProjectDocument = Omit<StoredDocument, 'outbox'> & {
  outbox?: OutboxEntry[];
};

export function createFileStateStore(
  options: FileStateStoreOptions = {},
): StateStore & DiscoveryCacheStore {
  const dir = resolve(options.dir ?? DEFAULT_STATE_DIR);
  const keep = checkKeep(options.keepRuns ?? DEFAULT_KEEP_RUNS);
  const outboxLimit = checkOutboxLimit(options.outboxLimit ?? DEFAULT_OUTBOX_LIMIT);
  const lock = {
    timeoutMs: options.lockTimeoutMs ?? 15_000,
    staleMs: options.staleLockMs ?? 10_000,
  };

  const wall = options.wallClock ?? Date.now;
  const maxBytes = Math.min(options.maxFileBytes ?? MAX_DOCUMENT_BYTES, MAX_DOCUMENT_BYTES);

  const fileOf = (project: string): string =>
    join(dir, `${encodeURIComponent(checkProject(project))}.json`);

  /** The document's count of dropped entries; an unreadable one reads as 1, and says so. */
  const countOf = (doc: StoredDocument | ProjectDocument, project: string) =>
    readDroppedCount(
      doc.outboxDropped,
      `outboxDropped in state file ${fileOf(project)}`,
      DroppedCount.default(0),
    );

  /**
   * Reads, lets `change` decide, and writes what it returns (unless null). The change sees the
   * outbox entries that read; those nobody can read are kept as they are stored, after the others,
   * unless `setAside` (listOutbox): then they are set aside (written so even when `change` writes
   * nothing), counted as dropped, and `change` is told which, so that the run that set them aside
   * names them; and it is told when the count of dropped entries was unreadable as read (setting
   * aside replaced it with a number).
   */
  async function update<T>(
    project: string,
    change: (
      doc: ProjectDocument,
      setAside: readonly SetAsideEntry[],
      unreadableCount: UnreadableCount | undefined,
    ) => { doc: ProjectDocument | null; result: T },
    options: {
      setAside?: boolean;
      /**
       * A smaller document and result for a change whose file would be `over` bytes larger than
       * the file may be; null when there is none (the change is then refused).
       */
      shrink?: (
        doc: ProjectDocument,
        result: T,
        over: number,
      ) => { doc: ProjectDocument; result: T } | null;
    } = {},
  ): Promise<T> {
    const file = fileOf(project);
    await ensureDir(dirname(file));
    return withFileLock(`${file}.lock`, lock, async (fence) => {
      await removeLeftovers(file, lock.staleMs);
      const read = await readDocument(file, project);
      const sorted = sortOutOutbox(read.outbox ?? [], new Date(wall()).toISOString());
      const setAside = options.setAside === true ? sorted.setAside : [];
      const kept = options.setAside === true ? [] : sorted.setAside.map((e) => e.stored);
      const count = countOf(read, project);
      const clean: ProjectDocument =
        setAside.length === 0
          ? { ...read, outbox: sorted.entries }
          : {
              ...read,
              outbox: sorted.entries,
              outboxDropped: count.dropped + setAside.length,
              outboxSetAside: [...(read.outboxSetAside ?? []), ...setAside],
            };
      const changed = change(clean, setAside, count.unreadable);
      let result = changed.result;
      const first = changed.doc ?? (setAside.length > 0 ? clean : null);
      if (first !== null) {
        let next: ProjectDocument = first;
        const textOf = (d: ProjectDocument) =>
          `${JSON.stringify({ ...d, outbox: [...(d.outbox ?? []), ...kept] } satisfies StoredDocument, null, 2)}\n`;
        let text = textOf(next);
        // Never a file this store would refuse to read back (readStateFile): that would stop
        // every later run of the project. Refused before writing, the file as it was stays.
        let bytes = Buffer.byteLength(text);
        while (bytes > maxBytes) {
          const smaller: { doc: ProjectDocument; result: T } | null =
            options.shrink?.(next, result, bytes - maxBytes) ?? null;
          if (smaller === null) {
            throw new StateTooLargeError(
              `state file ${file} would be ${bytes.toLocaleString('en-US')} bytes, over the ${sizeText(maxBytes)} this store writes; not written, the file as it was is kept`,
            );
          }
          ({ doc: next, result } = smaller);
          text = textOf(next);
          bytes = Buffer.byteLength(text);
        }
        // Committed only while the lock is still this call's (file-lock.ts, Fencing).
        await writeAtomically(file, text, fence);
      }
      return result;
    });
  }

  /**
   * The document's condition records, read one by one (readConditions). Only a document with no
   * conditions saved has none; a stored state of null is not an object of records: unreadable as
   * a whole (StateCorruptError), as in Firestore, never read as no firing conditions.
   */
  const conditionsOf = (doc: StoredDocument | ProjectDocument, project: string) =>
    readConditions(
      doc.conditions === null ? {} : doc.conditions.state,
      `conditions in state file ${fileOf(project)}`,
    );

  /** The document's lease, or LeaseCorruptError naming the file. */
  const leaseOf = (doc: StoredDocument | ProjectDocument, project: string): Lease | null =>
    parseStoredLease(doc.lease, `lease in state file ${fileOf(project)}`);

  async function lease(project: string, request: LeaseRequest): Promise<LeaseResult> {
    checkLeaseRequest(request);
    return update(project, (doc) => {
      const { write, result } = decideLease(leaseOf(doc, project), request);
      return { doc: write === null ? null : { ...doc, lease: write }, result };
    });
  }

  const discoveryFile = join(dir, DISCOVERY_FILE);
  return {
    governorId: () => readOrMakeGovernorId(dir, lock.staleMs),

    async loadDiscovery() {
      const text = await readStateFile(discoveryFile, 'discovery cache');
      if (text === null) return null;
      refuseDeepNesting(text, `discovery cache ${discoveryFile}`);
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        throw new StateCorruptError(`discovery cache ${discoveryFile}`, [
          { path: '', message: 'not JSON' },
        ]);
      }
      // A newer version's fields are left out (parseStoredKnown): the cache stays readable.
      return parseStoredKnown(DiscoveryCache, raw, `discovery cache ${discoveryFile}`);
    },

    async saveDiscovery(cache) {
      await ensureDir(dir);
      await removeLeftovers(discoveryFile, lock.staleMs);
      await writeAtomically(discoveryFile, `${JSON.stringify(DiscoveryCache.parse(cache))}\n`);
    },

    async loadConditions(project): Promise<VersionedConditions> {
      const doc = await readDocument(fileOf(project), project);
      if (doc.conditions === null) return { state: {}, version: null };
      const { state, unreadable } = conditionsOf(doc, project);
      return {
        state,
        version: String(doc.conditions.version),
        ...(unreadable.length > 0 ? { unreadable } : {}),
      };
    },

    async saveConditions(project, state, expectedVersion) {
      const checked = checkConditionState(state);
      return update(project, (doc) => {
        const current = doc.conditions === null ? null : String(doc.conditions.version);
        if (current !== expectedVersion) {
          throw versionConflict(project, expectedVersion, current);
        }
        // What this version cannot read stays as stored, for the version that can.
        const kept = doc.conditions === null ? {} : conditionsOf(doc, project).kept;
        const version = nextVersion(doc.conditions?.version ?? 0);
        return {
          doc: { ...doc, conditions: { version, state: keepUnreadable(checked, kept) } },
          result: String(version),
        };
      });
    },

    async recordRun(project, record) {
      const checked = checkRunRecord(record);
      await update(project, (doc) => ({
        doc: { ...doc, runs: keepRuns(doc.runs, checked, keep, wall()) },
        result: undefined,
      }));
    },

    async listRuns(project, limit) {
      const runs = sortRuns((await readDocument(fileOf(project), project)).runs, wall());
      // At most what this store keeps: a file filled under a larger keepRuns is pruned only at
      // its next save (Firestore's store lists the same way).
      return runs.slice(0, checkLimit(limit, keep));
    },

    acquireLease: (project, holder, ttlMs, now) =>
      lease(project, { kind: 'acquire', holder, ttlMs, now }),

    renewLease: (project, holder, ttlMs, now) =>
      lease(project, { kind: 'renew', holder, ttlMs, now }),

    releaseLease: (project, holder) =>
      update(project, (doc) =>
        leaseOf(doc, project)?.holder === holder
          ? { doc: { ...doc, lease: null }, result: true }
          : { doc: null, result: false },
      ),

    async readLease(project) {
      return leaseOf(await readDocument(fileOf(project), project), project);
    },

    // Whatever the lease holds, readable or not (the one way to remove one nobody can read);
    // with `seen`, only while it is still that lease.
    breakLease: (project, seen) =>
      update(project, (doc) =>
        doc.lease === null ||
        doc.lease === undefined ||
        (seen !== undefined && !stillTheLease(doc.lease, seen))
          ? { doc: null, result: false }
          : { doc: { ...doc, lease: null }, result: true },
      ),

    async putOutbox(project, entries) {
      const checked = checkOutboxEntries(entries);
      const counted = (doc: ProjectDocument, outbox: OutboxEntry[], dropped: number) => {
        const count = countOf(doc, project);
        return {
          ...doc,
          outbox,
          // An unreadable count is left as stored unless this adds to it (then at least 1 more).
          outboxDropped:
            count.unreadable && dropped === 0 ? doc.outboxDropped : count.dropped + dropped,
        };
      };
      return update(
        project,
        (doc) => {
          const next = addToOutbox(doc.outbox ?? [], checked, outboxLimit);
          return { doc: counted(doc, next.entries, next.dropped), result: next.dropped };
        },
        {
          // Bounded by bytes too: events of up to MAX_ALERT_BYTES each would pass what the file
          // may hold long before the bound in entries, and a change refused for it stops every
          // run that stores events, before its writes and before it publishes the outbox. The
          // oldest go first, counted and announced as the bound's (unreadable ones stay).
          shrink: (doc, dropped, over) => {
            const outbox = doc.outbox ?? [];
            let freed = 0;
            let n = 0;
            while (n < outbox.length && freed < over) freed += entryFileBytes(outbox[n++]);
            if (n === 0) return null;
            return { doc: counted(doc, outbox.slice(n), n), result: dropped + n };
          },
        },
      );
    },

    async listOutbox(project) {
      const doc = await readDocument(fileOf(project), project);
      const sorted = sortOutOutbox(doc.outbox ?? [], new Date(wall()).toISOString());
      if (sorted.setAside.length === 0) {
        const count = countOf(doc, project);
        return {
          entries: sorted.entries,
          dropped: count.dropped,
          ...(count.unreadable ? { droppedUnreadable: count.unreadable } : {}),
        };
      }
      // Set aside under the lock, from a fresh read: another writer may have changed it since.
      return update(
        project,
        (fresh, setAside, unreadable) => ({
          doc: null,
          result: {
            entries: fresh.outbox ?? [],
            dropped: countOf(fresh, project).dropped,
            ...(setAside.length > 0
              ? { setAside: setAside.map((e) => ({ id: e.id, faults: e.faults })) }
              : {}),
            ...(unreadable ? { droppedUnreadable: unreadable } : {}),
          },
        }),
        { setAside: true },
      );
    },

    async removeOutbox(project, ids, droppedAnnounced = 0) {
      const gone = new Set(ids);
      await update(project, (doc) => {
        const count = countOf(doc, project);
        return {
          doc: {
            ...doc,
            outbox: (doc.outbox ?? []).filter((e) => !gone.has(e.alert.id)),
            // An unreadable count nobody announced yet is left for the run that will.
            outboxDropped:
              count.unreadable && droppedAnnounced <= 0
                ? doc.outboxDropped
                : acknowledgeDropped(count, droppedAnnounced),
          },
          result: undefined,
        };
      });
    },

    close: () => Promise.resolve(),
  };
}

/**
 * The version a save stores after `version`: one more, or 1 again past the largest whole number
 * the file's schema reads (a hand edit may store it). Written as one more, the file would be one
 * this store refuses to read, and every later call on the project would fail on it. Going back to
 * 1 keeps each save's version other than the one before it, which is what a save is checked
 * against.
 */
function nextVersion(version: number): number {
  return version >= Number.MAX_SAFE_INTEGER ? 1 : version + 1;
}

/**
 * About the bytes one outbox entry takes in the state file: its JSON as written there (two levels
 * deep, four more spaces a line) and its separator.
 */
function entryFileBytes(entry: OutboxEntry | undefined): number {
  const text = JSON.stringify(entry, null, 2) ?? '';
  return Buffer.byteLength(text) + 4 * text.split('\n').length + 2;
}

/**
 * The id kept in `<dir>/governor-id`; made on first use. The file is written whole under a
 * temporary name, then linked to its name: link() fails when the name exists, so of two first
 * runs exactly one id is kept, and nobody reads a half-written one.
 */
async function readOrMakeGovernorId(dir: string, leftoverMs: number): Promise<string> {
  const file = join(dir, 'governor-id');
  const existing = await readGovernorId(file);
  if (existing !== null) return existing;
  await ensureDir(dir);
  // What a first run killed before the link left (removeLeftovers).
  await removeLeftovers(file, leftoverMs);
  const temp = `${file}.${randomUUID()}.tmp`;
  try {
    await writeFileSynced(temp, `${newGovernorId()}\n`);
    // Another first run may have kept its id first: then that one is used.
    await linkUnlessTaken(temp, file);
  } catch (error) {
    throw fsError(error, `writing ${file}`);
  } finally {
    await removeIfThere(temp);
  }
  // Lost to a power cut, a new id would read this one's stamps as another governor's.
  await syncFolder(dir, file);
  const made = await readGovernorId(file);
  if (made === null) throw new UpstreamError(`State store: ${file} vanished after it was written`);
  return made;
}

/**
 * A state file's text; null when it does not exist. One larger than MAX_DOCUMENT_BYTES is
 * refused as corrupt (the governor writes far less), without reading more than the limit; one
 * that is not a regular file (a FIFO, a device, a directory) is refused unread, naming it.
 */
async function readStateFile(file: string, what: string): Promise<string | null> {
  let handle;
  try {
    handle = await openRegularFile(file);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw fsError(error, `reading ${file}`);
  }
  let bytes: Buffer | null;
  try {
    bytes = await readHandleCapped(handle, MAX_DOCUMENT_BYTES);
  } catch (error) {
    throw fsError(error, `reading ${file}`);
  } finally {
    await handle.close();
  }
  if (bytes === null) {
    throw new StateCorruptError(`${what} ${file}`, [
      { path: '', message: `over ${sizeText(MAX_DOCUMENT_BYTES)}, more than the governor writes` },
    ]);
  }
  // A byte order mark before the text is passed over: an editor may save one when a person mends
  // the file as a run's error asks, and JSON.parse refused it as an invisible "Unexpected token".
  // JSON readers "MAY ignore the presence of a byte order mark rather than treating it as an
  // error" (https://www.rfc-editor.org/rfc/rfc8259#section-8.1); the next write leaves it out.
  const text = bytes.toString('utf8');
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

async function readGovernorId(file: string): Promise<string | null> {
  const text = await readStateFile(file, 'governor id file');
  if (text === null) return null;
  try {
    return parseStored(GovernorId, text.trim(), `governor id file ${file}`);
  } catch (error) {
    if (error instanceof StateCorruptError) error.message += `\n${governorIdFix('one line')}`;
    throw error;
  }
}

async function readDocument(file: string, project: string): Promise<StoredDocument> {
  const text = await readStateFile(file, 'state file');
  if (text === null) {
    return { schema: 1, project, conditions: null, lease: null, runs: [], outbox: [] };
  }
  refuseDeepNesting(text, `state file ${file}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new StateCorruptError(
      `state file ${file}`,
      [
        {
          path: '',
          message: `not JSON (${jsonErrorText(error)})`,
        },
      ],
      { cause: error },
    );
  }
  const doc = parseStored(ProjectDocument, raw, `state file ${file}`);
  if (doc.project !== project) {
    // Another project's file under this one's name (copied, renamed): read as this project's, its
    // lease and outbox would be taken for this project's.
    throw new StateCorruptError(`state file ${file}`, [
      {
        path: 'project',
        message: `the file of project ${cutText(doc.project, 200)}, not of ${project}`,
      },
    ]);
  }
  return {
    ...doc,
    runs: doc.runs.map((r, i) => parseRunRecord(r, `state file ${file}, runs[${i}]`)),
  };
}

/**
 * A stored file nested far deeper than the governor ever writes (its documents nest about ten
 * levels) is refused before it is parsed, naming it: keys this version does not know are kept as
 * stored, and one nested thousands of levels deep would make every later write fail with a stack
 * overflow that names nothing (`nestingFault`, the same bound as the policy's documents).
 */
function refuseDeepNesting(text: string, what: string): void {
  const fault = nestingFault(text);
  if (fault !== null) throw new StateCorruptError(what, [fault]);
}

/**
 * Writes a sibling temporary file, flushes it to disk, then renames it over the target; with a
 * `fence`, only once it passes, just before the rename (after the flush, the slow step). Then
 * flushes the folder, so that the rename itself is on disk when this returns (syncFolder).
 */
async function writeAtomically(file: string, text: string, fence?: Fence): Promise<void> {
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await writeFileSynced(temp, text);
    await fence?.();
    await rename(temp, file);
  } catch (error) {
    await removeIfThere(temp);
    throw fsError(error, `writing ${file}`);
  }
  await syncFolder(dirname(file), file);
}

/**
 * Flushes a folder's entries to disk after a rename or link in it. fsync() of a file does not
 * flush the entry naming it (https://man7.org/linux/man-pages/man2/fsync.2.html: "an explicit
 * fsync() on a file descriptor for the directory is also needed"): without this, a power cut or a
 * kernel crash just after a change returned could bring the file back as it was before it, the
 * outbox stored before the caps were written among what is lost. A file system that cannot flush
 * a folder (EINVAL, ENOTSUP), and Windows, where a folder cannot be opened so, keep what they
 * offer; any other failure fails the change (it is visible, but may not last), naming `file`.
 */
async function syncFolder(folder: string, file: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EINVAL' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return;
    throw fsError(error, `flushing ${file} to disk (written, but it may not last a power cut)`);
  }
}

/**
 * Removes what a process killed in the middle of a change left beside `file`: its temporary
 * files, a lock (or break lock) it had moved aside to break, and a break lock it held, once older
 * than `ageMs` (no live process takes that long over one change; a lock held that long is broken
 * as stale anyway: file-lock.ts). Called under the
 * lock for a project's file; for the discovery cache and the governor id, written without one,
 * the age alone keeps another process's write in progress.
 */
async function removeLeftovers(file: string, ageMs: number): Promise<void> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw fsError(error, `listing ${dir}`);
  }
  const leftovers = names.filter(
    (n) =>
      n.startsWith(prefix) &&
      (n.endsWith('.tmp') ||
        n === `${prefix}lock.break` ||
        n.startsWith(`${prefix}lock.broken-`) ||
        n.startsWith(`${prefix}lock.break.broken-`)),
  );
  for (const name of leftovers) {
    const path = join(dir, name);
    try {
      if (Date.now() - (await stat(path)).mtimeMs > ageMs) await removeIfThere(path);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw fsError(error, `removing ${path}`);
    }
  }
}

/** Creates `file` (it must not exist) with `text`, flushed to disk. */
async function writeFileSynced(file: string, text: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await makeFolder(dir, 0o700);
  } catch (error) {
    throw fsError(error, `creating ${dir}`);
  }
}
