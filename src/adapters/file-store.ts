/**
 * The state store in local files, the CLI's default: one JSON document per project,
 * `<dir>/<project>.json` (default dir `.governor/state`), holding the condition state and its
 * version, the lease and the last run records.
 *
 * Every change is a read-modify-write under a lock file (`<file>.lock`, created with O_EXCL, so
 * of two processes only one can create it) and lands with write-temp-then-rename, so a reader
 * sees the old document or the new one, never half of one, and a crash mid-write loses nothing.
 * A lock whose owner died (its PID is gone on this host) is broken; any other lock is waited for
 * up to `lockTimeoutMs`, then the call fails with UnavailableError naming the lock file.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';

import { PermissionError, UnavailableError, UpstreamError } from '../errors.js';
import {
  checkKeep,
  checkLeaseRequest,
  checkProject,
  checkRunRecord,
  ConditionState,
  decideLease,
  DEFAULT_KEEP_RUNS,
  keepRuns,
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

export const DEFAULT_STATE_DIR = join('.governor', 'state');

export interface FileStateStoreOptions {
  /** Default `.governor/state` under the working directory. */
  dir?: string;
  /** Run records kept per project. Default 50. */
  keepRuns?: number;
  /** How long to wait for another process's lock. Default 10 s. */
  lockTimeoutMs?: number;
}

const ProjectDocument = z.strictObject({
  schema: z.literal(1),
  project: z.string(),
  conditions: z
    .strictObject({ version: z.number().int().min(1), state: ConditionState })
    .nullable(),
  lease: Lease.nullable(),
  runs: z.array(RunRecord),
});
type ProjectDocument = z.infer<typeof ProjectDocument>;

const LockContent = z.object({ token: z.string(), host: z.string(), pid: z.number().int() });

export function createFileStateStore(options: FileStateStoreOptions = {}): StateStore {
  const dir = resolve(options.dir ?? DEFAULT_STATE_DIR);
  const keep = checkKeep(options.keepRuns ?? DEFAULT_KEEP_RUNS);
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;

  const fileOf = (project: string): string =>
    join(dir, `${encodeURIComponent(checkProject(project))}.json`);

  /** Reads, lets `change` decide, and writes what it returns (unless null). */
  async function update<T>(
    project: string,
    change: (doc: ProjectDocument) => { doc: ProjectDocument | null; result: T },
  ): Promise<T> {
    const file = fileOf(project);
    await ensureDir(dirname(file));
    return withLock(file, lockTimeoutMs, async () => {
      const { doc, result } = change(await readDocument(file, project));
      if (doc !== null) await writeAtomically(file, `${JSON.stringify(doc, null, 2)}\n`);
      return result;
    });
  }

  async function lease(project: string, request: LeaseRequest): Promise<LeaseResult> {
    checkLeaseRequest(request);
    return update(project, (doc) => {
      const { write, result } = decideLease(doc.lease, request);
      return { doc: write === null ? null : { ...doc, lease: write }, result };
    });
  }

  return {
    async loadConditions(project): Promise<VersionedConditions> {
      const doc = await readDocument(fileOf(project), project);
      return doc.conditions === null
        ? { state: {}, version: null }
        : { state: doc.conditions.state, version: String(doc.conditions.version) };
    },

    async saveConditions(project, state, expectedVersion) {
      const checked = ConditionState.parse(state);
      return update(project, (doc) => {
        const current = doc.conditions === null ? null : String(doc.conditions.version);
        if (current !== expectedVersion) {
          throw versionConflict(project, expectedVersion, current);
        }
        const version = (doc.conditions?.version ?? 0) + 1;
        return {
          doc: { ...doc, conditions: { version, state: checked } },
          result: String(version),
        };
      });
    },

    async recordRun(project, record) {
      const checked = checkRunRecord(record);
      await update(project, (doc) => ({
        doc: { ...doc, runs: keepRuns(doc.runs, checked, keep) },
        result: undefined,
      }));
    },

    async listRuns(project) {
      return sortRuns((await readDocument(fileOf(project), project)).runs);
    },

    acquireLease: (project, holder, ttlMs, now) =>
      lease(project, { kind: 'acquire', holder, ttlMs, now }),

    renewLease: (project, holder, ttlMs, now) =>
      lease(project, { kind: 'renew', holder, ttlMs, now }),

    releaseLease: (project, holder) =>
      update(project, (doc) =>
        doc.lease?.holder === holder
          ? { doc: { ...doc, lease: null }, result: true }
          : { doc: null, result: false },
      ),

    close: () => Promise.resolve(),
  };
}

async function readDocument(file: string, project: string): Promise<ProjectDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      return { schema: 1, project, conditions: null, lease: null, runs: [] };
    }
    throw fsError(error, `reading ${file}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new StateCorruptError(
      `state file ${file}`,
      [
        {
          path: '',
          message: `not JSON (${error instanceof Error ? error.message : String(error)})`,
        },
      ],
      { cause: error },
    );
  }
  const doc = parseStored(ProjectDocument, raw, `state file ${file}`);
  if (doc.project !== project) {
    throw new UpstreamError(`State file ${file} belongs to project ${doc.project}, not ${project}`);
  }
  return doc;
}

/** Writes a sibling temporary file, flushes it to disk, then renames it over the target. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch((cleanup: unknown) => {
      if (errnoCode(cleanup) !== 'ENOENT') throw fsError(cleanup, `removing ${temp}`);
    });
    throw fsError(error, `writing ${file}`);
  }
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw fsError(error, `creating ${dir}`);
  }
}

/**
 * Runs `fn` while holding `<file>.lock`. The lock file names its owner (host, PID and a token of
 * this call), so only its owner removes it, and a lock left by a process that died on this host
 * can be recognised and broken.
 */
async function withLock<T>(file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const mine = { token: randomUUID(), host: hostname(), pid: process.pid };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify(mine), 'utf8');
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw fsError(error, `creating ${lock}`);
    }
    if (await breakAbandoned(lock)) continue;
    if (Date.now() >= deadline) {
      throw new UnavailableError(
        `State file ${file} stayed locked for ${timeoutMs} ms; ` +
          `if no governor is running, remove ${lock}`,
      );
    }
    await sleep(5 + Math.random() * 20);
  }
  try {
    return await fn();
  } finally {
    await unlock(lock, mine.token);
  }
}

/** Removes the lock if its owner was a process on this host that no longer exists. */
async function breakAbandoned(lock: string): Promise<boolean> {
  let owner: z.infer<typeof LockContent>;
  try {
    const parsed = LockContent.safeParse(JSON.parse(await readFile(lock, 'utf8')));
    // Unreadable: its owner is between creating and writing it. Wait, as for any live owner.
    if (!parsed.success) return false;
    owner = parsed.data;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return true; // released meanwhile: try again at once
    if (error instanceof SyntaxError) return false;
    throw fsError(error, `reading ${lock}`);
  }
  if (owner.host !== hostname() || processExists(owner.pid)) return false;
  // Rename first, so that of several processes breaking the same lock only one removes it.
  const aside = `${lock}.abandoned-${randomUUID()}`;
  try {
    await rename(lock, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return true;
    throw fsError(error, `breaking ${lock}`);
  }
  await unlink(aside).catch((error: unknown) => {
    throw fsError(error, `removing ${aside}`);
  });
  return true;
}

async function unlock(lock: string, token: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(lock, 'utf8');
  } catch (error) {
    throw fsError(error, `reading ${lock} to release it`);
  }
  if (lockToken(text) !== token) {
    throw new UpstreamError(`Lock ${lock} was taken from this process while it held it`);
  }
  try {
    await unlink(lock);
  } catch (error) {
    throw fsError(error, `removing ${lock}`);
  }
}

function lockToken(text: string): string | null {
  try {
    const parsed = LockContent.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.token : null;
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return errnoCode(error) !== 'ESRCH';
  }
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function fsError(error: unknown, what: string): Error {
  if (error instanceof UpstreamError) return error;
  const code = errnoCode(error);
  const message = `State store: ${what} failed: ${error instanceof Error ? error.message : String(error)}`;
  if (code === 'EACCES' || code === 'EPERM') return new PermissionError(message, { cause: error });
  return new UpstreamError(message, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
