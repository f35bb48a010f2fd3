/**
 * The file store: the shared contract, then what only files have (the documents on disk, the
 * lock file, and processes racing each other).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { UnavailableError, UpstreamError } from '../../src/core/errors.js';
import {
  createFileStateStore,
  DEFAULT_STATE_DIR,
  DISCOVERY_FILE,
} from '../../src/adapters/file-store.js';
import { processExists, processSpace } from '../../src/adapters/file-lock.js';
import { makeAlert } from '../../src/core/conditions.js';
import {
  StateCorruptError,
  StateTooLargeError,
  type OutboxEntry,
  type StateStore,
} from '../../src/ports/index.js';
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
import { quietRun } from '../support/fixtures.js';
import { transpileForNode } from './transpile.js';

let dir: string;
let store: StateStore;
const cleanups: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'governor-file-store-'));
  cleanups.push(dir);
  store = createFileStateStore({
    dir,
    keepRuns: CONTRACT_KEEP_RUNS,
    outboxLimit: CONTRACT_OUTBOX_LIMIT,
  });
});

afterAll(async () => {
  await store?.close();
  for (const path of cleanups) await rm(path, { recursive: true, force: true });
});

stateStoreContract('file store', () => store);

unreadableLeaseContract(
  'file store',
  () => store,
  async (project, value) => {
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...doc, lease: value }));
  },
);

/** Two unreadable outbox entries, stored beside the readable ones, bypassing the store. */
async function plantUnreadableEntries(project: string): Promise<void> {
  const file = join(dir, `${encodeURIComponent(project)}.json`);
  const doc = JSON.parse(await readFile(file, 'utf8')) as { outbox: Record<string, unknown>[] };
  const [good] = doc.outbox;
  doc.outbox.push(
    { json: 'garbage', state: 'ready', storedAt: '2026-01-01T00:00:00Z' },
    // A newer version's field.
    { ...good, alert: { ...(good?.alert as object), id: 'from-a-newer-version', newField: 1 } },
  );
  await writeFile(file, JSON.stringify(doc));
}

unreadableOutboxContract(
  'file store',
  () => store,
  plantUnreadableEntries,
  async (project) => {
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    const doc = JSON.parse(await readFile(file, 'utf8')) as { outboxSetAside?: unknown[] };
    return doc.outboxSetAside?.length ?? 0;
  },
);

/** The state file's fields, as stored. */
async function stateFile(project: string): Promise<Record<string, unknown>> {
  const file = join(dir, `${encodeURIComponent(project)}.json`);
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
}

// Before, one such count made the whole state file unreadable: leases, run records and outbox.
unreadableCountContract('file store', {
  open: () => store,
  openOther: () => createFileStateStore({ dir, outboxLimit: CONTRACT_OUTBOX_LIMIT }),
  variants: [
    { what: 'a negative count (-3)', value: -3, quote: '-3' },
    { what: 'a string ("x")', value: 'x', quote: '"x"' },
    { what: 'a fraction (1.5)', value: 1.5, quote: '1.5' },
    { what: 'null', value: null, quote: 'null' },
    { what: 'a string of 1 MB', value: 'y'.repeat(1_000_000), quote: /^"y{98}…$/ },
  ],
  plant: async (project, value) => {
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    await writeFile(file, JSON.stringify({ ...(await stateFile(project)), outboxDropped: value }));
  },
  stored: async (project) => (await stateFile(project))['outboxDropped'],
  asStored: (n) => n,
  plantEntries: plantUnreadableEntries,
});

// Before, one such record made the whole state file unreadable: no lease, so no run at all.
unreadableConditionsContract('file store', {
  open: () => store,
  openOther: () => createFileStateStore({ dir }),
  plant: async (project, records) => {
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    const doc = await stateFile(project);
    const conditions = doc['conditions'] as { version: number; state: object };
    await writeFile(
      file,
      JSON.stringify({
        ...doc,
        conditions: {
          ...conditions,
          version: conditions.version + 1,
          state: { ...conditions.state, ...records },
        },
      }),
    );
  },
  stored: async (project) =>
    stateFile(project).then((d) => (d['conditions'] as { state: Record<string, unknown> }).state),
});

// Before, one field a newer version added to a run record made the whole state file unreadable.
newerRunRecordContract('file store', {
  open: () => store,
  rewrite: async (project, runId, change) => {
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    const doc = await stateFile(project);
    const runs = doc['runs'] as Record<string, unknown>[];
    const run = runs.find((r) => r['runId'] === runId);
    if (run === undefined) throw new Error(`no record ${runId} in ${file}`);
    change(run);
    await writeFile(file, JSON.stringify(doc));
  },
});

const at = '2026-11-27T10:00:00.000Z';

describe('file store: on disk', () => {
  it('keeps one governor id per directory', async () => {
    const other = await mkdtemp(join(tmpdir(), 'governor-file-store-other-'));
    cleanups.push(other);
    const id = await store.governorId();
    expect(await createFileStateStore({ dir }).governorId()).toBe(id);
    expect(await readFile(join(dir, 'governor-id'), 'utf8')).toBe(`${id}\n`);
    expect(await createFileStateStore({ dir: other }).governorId()).not.toBe(id);
  });

  // Before, it named the file and the pattern, not what to do about it.
  it('an unreadable governor id names the file and what to do; it is left as it was', async () => {
    const other = await mkdtemp(join(tmpdir(), 'governor-file-store-id-'));
    cleanups.push(other);
    const file = join(other, 'governor-id');
    await writeFile(file, 'garbage id!!\n');
    const error: unknown = await createFileStateStore({ dir: other })
      .governorId()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateCorruptError);
    const message = (error as Error).message;
    expect(message).toContain(`Unreadable governor id file ${file}:`);
    expect(message).toMatch(/mend it .*gov- and 12 hex digits/);
    expect(message).toMatch(/or remove it: the next run makes a new id/);
    expect(await readFile(file, 'utf8')).toBe('garbage id!!\n');
  });

  it('a folder that is a file says so, not ENOTDIR', async () => {
    const plain = join(dir, 'plain-file');
    await writeFile(plain, 'not a folder');
    const error = await createFileStateStore({ dir: plain })
      .loadConditions(freshProject())
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as Error).message).toMatch(
      /^State store: reading .*plain-file\/.*\.json failed: a part of the path that should be a folder is not one$/,
    );
  });

  it('a folder that cannot be made under a pseudo-file-system fails, not spins', async () => {
    // procfs answers ENOENT to a mkdir in /proc although /proc exists, which Node.js's recursive
    // mkdir retries for ever (100% CPU, the run never ending): the store makes its folder itself.
    const error = await createFileStateStore({ dir: join('/proc', 'governor-state', 'x') })
      .governorId()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as Error).message).toMatch(
      /^State store: creating \/proc\/governor-state\/x failed: no such file/,
    );
  }, 10_000);

  it('keeps a key a newer version added to the file, and refuses a newer schema naming it', async () => {
    const project = freshProject();
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    await store.saveConditions(project, {}, null);
    const newer = { hotSpares: { 'us-central1': 1 } };
    await writeFile(file, JSON.stringify({ ...(await stateFile(project)), ...newer }));
    // Every kind of change works beside it, and writes it back as it was.
    const lease = await store.acquireLease(project, 'alpha', 60_000, '2026-11-27T10:00:00.000Z');
    expect(lease.acquired).toBe(true);
    await store.recordRun(project, quietRun('run-1', '2026-11-27T10:00:00.000Z'));
    const { version } = await store.loadConditions(project);
    await store.saveConditions(project, {}, version);
    await store.releaseLease(project, 'alpha');
    expect((await store.listRuns(project)).map((r) => r.runId)).toEqual(['run-1']);
    expect(await stateFile(project)).toMatchObject(newer);
    // A file whose schema a newer version changed is not read, and the error says which field.
    await writeFile(file, JSON.stringify({ ...(await stateFile(project)), schema: 2 }));
    const error = await store.loadConditions(project).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StateCorruptError);
    expect((error as Error).message).toContain('schema');
  });

  it('keeps an outbox of large events within what the file may hold: the oldest dropped and counted', async () => {
    // Events of up to 1 MB each (MAX_ALERT_BYTES) while Pub/Sub is down: at the default bound of
    // 500 entries the file would pass the 64 MiB it may hold after about 65. Before, every later
    // run failed at storing its planned events, before its writes and before it could publish
    // what the outbox held, so the outbox never drained while the fleet kept changing.
    const project = freshProject();
    const small = createFileStateStore({ dir, maxFileBytes: 200_000 });
    const big = (n: number): OutboxEntry => ({
      alert: makeAlert(
        { at, runId: `run-${n}` },
        { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
        {
          type: 'rebalance.applied',
          status: 'event',
          severity: 'INFO',
          summary: `run ${n}`,
          details: { blob: 'x'.repeat(30_000) },
        },
      ),
      state: 'ready',
      storedAt: at,
    });
    let dropped = 0;
    for (let n = 1; n <= 10; n++) dropped += await small.putOutbox(project, [big(n)]);
    const box = await small.listOutbox(project);
    const kept = box.entries.map((e) => e.alert.runId);
    expect(kept.at(-1)).toBe('run-10');
    expect(kept).toEqual(
      Array.from({ length: kept.length }, (_, i) => `run-${11 - kept.length + i}`),
    );
    expect(dropped).toBe(10 - kept.length);
    expect(box.dropped).toBe(dropped);
    expect(dropped).toBeGreaterThan(0);
    expect((await stat(join(dir, `${project}.json`))).size).toBeLessThanOrEqual(200_000);
  });

  it('refuses a change it cannot fit in what the file may hold, naming it; the file as it was stays', async () => {
    // What no change may drop (an outbox entry nobody can read, kept to be set aside) fills it.
    const project = freshProject();
    const file = join(dir, `${project}.json`);
    const small = createFileStateStore({ dir, maxFileBytes: 50_000 });
    await small.saveConditions(project, {}, null);
    const text = JSON.stringify({
      ...(await stateFile(project)),
      outbox: [{ garbage: 'g'.repeat(60_000) }],
    });
    await writeFile(file, text);
    const refused = await small.acquireLease(project, 'alpha', 60_000, at).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(StateTooLargeError);
    expect((refused as Error).message).toMatch(
      new RegExp(
        `^state file ${file.replace(/[.*+?^$()|[\]\\]/g, '\\$&')} would be [\\d,]+ bytes, over the 50000 bytes this store writes; not written, the file as it was is kept$`,
      ),
    );
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('refuses a state file nested far deeper than the governor writes, naming it, and writes nothing', async () => {
    const project = freshProject();
    const file = join(dir, `${encodeURIComponent(project)}.json`);
    await store.saveConditions(project, {}, null);
    // A key this version does not know, nested 5,000 deep: kept as stored, it would make every
    // later write overflow the stack with an error that names nothing.
    const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
    const text = JSON.stringify(await stateFile(project)).replace(/}$/, `,"deep":${deep}}`);
    await writeFile(file, text);
    const error = await store
      .acquireLease(project, 'alpha', 60_000, '2026-11-27T10:00:00.000Z')
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(StateCorruptError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toContain('nested more than 100 deep');
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('defaults to .governor/state', () => {
    expect(DEFAULT_STATE_DIR).toBe(join('.governor', 'state'));
  });

  it('keeps one readable JSON document per project and leaves no temporary or lock file', async () => {
    const project = freshProject();
    const v1 = await store.saveConditions(project, {}, null);
    await store.acquireLease(project, 'alpha', 60_000, at);
    const files = (await readdir(dir)).filter((f) => f.startsWith(project));
    expect(files).toEqual([`${project}.json`]);
    const doc: unknown = JSON.parse(await readFile(join(dir, `${project}.json`), 'utf8'));
    expect(doc).toMatchObject({
      schema: 1,
      project,
      conditions: { version: Number(v1), state: {} },
      lease: { holder: 'alpha' },
    });
    expect((await readdir(dir)).filter((f) => /\.(tmp|lock)$/.test(f))).toEqual([]);
  });

  it('lists no more runs than it keeps, though the file holds more kept by a store that kept more', async () => {
    // A governor whose keepRuns was lowered reads a file the earlier setting filled: it lists
    // what it keeps, as Firestore's store does, before any save of its own prunes the file.
    const project = freshProject();
    for (const n of [1, 2, 3])
      await store.recordRun(project, {
        runId: `run-${n}`,
        startedAt: `2026-11-27T10:0${n}:00.000Z`,
        finishedAt: `2026-11-27T10:0${n}:05.000Z`,
        mode: 'enforce',
        outcome: 'ok',
        changes: n,
        skips: 0,
        alerts: 0,
        error: null,
      });
    const before = await readFile(join(dir, `${project}.json`), 'utf8');
    const fewer = createFileStateStore({ dir, keepRuns: 2 });
    expect((await fewer.listRuns(project)).map((r) => r.runId)).toEqual(['run-3', 'run-2']);
    expect((await fewer.listRuns(project, 5)).map((r) => r.runId)).toEqual(['run-3', 'run-2']);
    expect((await fewer.listRuns(project, 1)).map((r) => r.runId)).toEqual(['run-3']);
    // Read only: the file is as the other store left it.
    expect(await readFile(join(dir, `${project}.json`), 'utf8')).toBe(before);
    await fewer.close();
  });

  it('names a project id with awkward characters safely', async () => {
    const project = `../${freshProject()}/x`;
    await store.saveConditions(project, {}, null);
    expect((await store.loadConditions(project)).version).not.toBeNull();
    expect((await readdir(dir)).some((f) => f === `${encodeURIComponent(project)}.json`)).toBe(
      true,
    );
  });

  it('reports a file that is not JSON, or not the schema, as StateCorruptError with the fault', async () => {
    const project = freshProject();
    await writeFile(join(dir, `${project}.json`), '{ not json');
    await expect(store.loadConditions(project)).rejects.toThrow(StateCorruptError);
    await writeFile(
      join(dir, `${project}.json`),
      JSON.stringify({ schema: 1, project, conditions: null, lease: { holder: 7 }, runs: [] }),
    );
    const error: unknown = await store.acquireLease(project, 'a', 1, at).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateCorruptError);
    expect((error as StateCorruptError).message).toMatch(
      /Unreadable lease in state file .*\n\s+- holder:/,
    );
  });

  it('reads a state file an editor saved with a byte order mark, and writes it back without one', async () => {
    // Mended by hand as the run's error asks, in an editor that saves UTF-8 with a BOM: every run
    // failed on "not JSON (Unexpected token '\uFEFF')", an invisible character. JSON readers may
    // ignore one (https://www.rfc-editor.org/rfc/rfc8259#section-8.1).
    const project = freshProject();
    const file = join(dir, `${project}.json`);
    const conditions = { version: 3, state: {} };
    const doc = { schema: 1, project, conditions, lease: null, runs: [] };
    await writeFile(file, `\uFEFF${JSON.stringify(doc)}`);
    expect((await store.loadConditions(project)).version).toBe('3');
    await store.saveConditions(project, {}, '3');
    const text = await readFile(file, 'utf8');
    expect(text.charCodeAt(0)).not.toBe(0xfeff);
    expect((JSON.parse(text) as { conditions: { version: number } }).conditions.version).toBe(4);
  });

  it('refuses a condition state stored as null as StateCorruptError, as any state that is not an object', async () => {
    // Read as an empty state, every firing condition was forgotten (sent again as new, never
    // resolved), and the next save wrote over what was stored.
    const project = freshProject();
    const file = join(dir, `${project}.json`);
    const conditions = { version: 2, state: null };
    const text = JSON.stringify({ schema: 1, project, conditions, lease: null, runs: [] });
    await writeFile(file, text);
    const error: unknown = await store.loadConditions(project).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateCorruptError);
    expect((error as StateCorruptError).message).toContain('not an object of condition records');
    await expect(store.saveConditions(project, {}, '2')).rejects.toThrow(StateCorruptError);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('saves over a condition state at the largest version a file holds, and reads it back', async () => {
    // A hand edit: one more was written as 2^53, a version the store refuses to read, and every
    // later call on the project failed on its own file.
    const project = freshProject();
    const file = join(dir, `${project}.json`);
    const top = String(Number.MAX_SAFE_INTEGER);
    const conditions = { version: Number.MAX_SAFE_INTEGER, state: {} };
    await writeFile(
      file,
      JSON.stringify({ schema: 1, project, conditions, lease: null, runs: [], outbox: [] }),
    );
    expect(await store.loadConditions(project)).toEqual({ state: {}, version: top });
    const next = await store.saveConditions(project, {}, top);
    expect(next).not.toBe(top);
    expect(await store.loadConditions(project)).toEqual({ state: {}, version: next });
    // Optimistic concurrency holds across it: a save over the version read before is refused.
    await expect(store.saveConditions(project, {}, top)).rejects.toThrow(
      /changed since it was read/,
    );
    expect(await store.saveConditions(project, {}, next)).not.toBe(next);
  });

  it('refuses a state file over 64 MiB as StateCorruptError, reading no more than that', async () => {
    const project = freshProject();
    const file = join(dir, `${project}.json`);
    // Sparse: 64 MiB and one byte of zeros, on disk as a few blocks.
    await writeFile(file, '');
    await truncate(file, 64 * 1024 * 1024 + 1);
    const error: unknown = await store.loadConditions(project).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateCorruptError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toContain('over 64 MiB, more than the governor writes');
    await rm(file);
    await expect(store.loadConditions(project)).resolves.toBeDefined();
  });

  it('waits for a lock held by a live process, then fails with UnavailableError naming it', async () => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    await writeFile(lock, JSON.stringify({ token: 'other', host: hostname(), pid: process.pid }));
    const impatient = createFileStateStore({ dir, lockTimeoutMs: 200 });
    const error: unknown = await impatient
      .acquireLease(project, 'a', 60_000, at)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toContain(lock);
    // It gave up at its own lockTimeoutMs (the default would be 10 s).
    expect((error as Error).message).toContain('stayed locked for 200 ms');
    await rm(lock);
    expect(await impatient.acquireLease(project, 'a', 60_000, at)).toMatchObject({
      acquired: true,
    });
  });

  it('breaks a lock left by a process that died', async () => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid;
    await new Promise((done) => child.once('exit', done));
    expect(pid).toBeDefined();
    await writeFile(
      lock,
      JSON.stringify({ token: 'dead', host: hostname(), pid, space: processSpace() }),
    );
    const impatient = createFileStateStore({ dir, lockTimeoutMs: 200 });
    expect(await impatient.acquireLease(project, 'a', 60_000, at)).toMatchObject({
      acquired: true,
    });
    expect((await readdir(dir)).filter((f) => f.startsWith(`${project}.json.`))).toEqual([]);
  });

  // Containers of one pod share the host name and the volume, each with its own PID namespace:
  // a PID that names no process here may be a live holder there. Such a lock waits for its age.
  it.each([
    ['another PID namespace of this host name', `${processSpace()}-elsewhere`],
    ['no process space (an earlier version)', undefined],
  ])('does not judge by its PID a fresh lock of %s: it waits', async (_, space) => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid;
    await new Promise((done) => child.once('exit', done));
    await writeFile(lock, JSON.stringify({ token: 'there', host: hostname(), pid, space }));
    const error: unknown = await createFileStateStore({ dir, lockTimeoutMs: 300 })
      .acquireLease(project, 'a', 60_000, at)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toContain(`held by PID ${pid} on ${hostname()}`);
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ token: 'there' });
  });
});

const impatient = () => createFileStateStore({ dir, lockTimeoutMs: 300 });

describe('file store: locks in the way', () => {
  const aged = async (file: string, seconds: number): Promise<void> => {
    const then = new Date(Date.now() - seconds * 1000);
    await utimes(file, then, then);
  };

  it.each([
    ['empty', ''],
    ['garbage', 'not a lock {'],
    ['of another shape', JSON.stringify({ pid: 'x' })],
    // Read whole, this would name this live process; over 64 KiB it is not read whole.
    [
      'over 64 KiB',
      JSON.stringify({ token: 'x'.repeat(100_000), host: hostname(), pid: process.pid }),
    ],
  ])('breaks a lock that is %s', async (_, content) => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    await writeFile(lock, content);
    await aged(lock, 5);
    expect(await impatient().acquireLease(project, 'a', 60_000, at)).toMatchObject({
      acquired: true,
    });
    expect((await readdir(dir)).filter((f) => f.startsWith(`${project}.json.`))).toEqual([]);
  });

  it('waits for an empty lock within its grace (its holder may be writing it), then names it', async () => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    await writeFile(lock, '');
    // Dated 5 s ahead, within the 10 s a lock may be off before it is judged abandoned: younger
    // than the 1 s grace at every look, however slow this machine is.
    const soon = new Date(Date.now() + 5_000);
    await utimes(lock, soon, soon);
    const error: unknown = await impatient()
      .acquireLease(project, 'a', 60_000, at)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toContain('held by an unreadable lock');
    expect(await readFile(lock, 'utf8')).toBe('');
  });

  it('breaks a lock older than staleLockMs even when it names a live process', async () => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    // This very process: alive, and not the one holding anything.
    await writeFile(lock, JSON.stringify({ token: 'old', host: hostname(), pid: process.pid }));
    await aged(lock, 60);
    expect(await impatient().acquireLease(project, 'a', 60_000, at)).toMatchObject({
      acquired: true,
    });
  });

  it.each([
    ['empty', ''],
    ['of another host', JSON.stringify({ token: 't', host: 'elsewhere', pid: 1 })],
    [
      'of a dead process here',
      JSON.stringify({ token: 't', host: hostname(), pid: 999_999, space: processSpace() }),
    ],
    ['of this live process', JSON.stringify({ token: 't', host: hostname(), pid: process.pid })],
  ])(
    'breaks a lock that is %s, dated in 2099 (its age would stay negative)',
    async (_, content) => {
      const project = freshProject();
      const lock = join(dir, `${project}.json.lock`);
      await writeFile(lock, content);
      const future = new Date('2099-01-01T00:00:00Z');
      await utimes(lock, future, future);
      expect(await impatient().acquireLease(project, 'a', 60_000, at)).toMatchObject({
        acquired: true,
      });
      expect((await readdir(dir)).filter((f) => f.startsWith(`${project}.json.`))).toEqual([]);
    },
  );

  it.each([0, -1, 1.5])(
    'breaks a fresh lock naming PID %s (kill(pid, 0) succeeds for 0 and -1)',
    async (pid) => {
      const project = freshProject();
      const lock = join(dir, `${project}.json.lock`);
      await writeFile(lock, JSON.stringify({ token: 't', host: hostname(), pid }));
      // Judged as garbage: broken after its grace, well before the store gives up (3 s).
      const patient = createFileStateStore({ dir, lockTimeoutMs: 3_000 });
      expect(await patient.acquireLease(project, 'a', 60_000, at)).toMatchObject({
        acquired: true,
      });
    },
  );

  it.each(['state file', 'lock'])(
    'refuses a FIFO as the %s at once, naming it; the process keeps working',
    async (which) => {
      const project = freshProject();
      const file = join(dir, `${project}.json`);
      const fifo = which === 'lock' ? `${file}.lock` : file;
      await promisify(execFile)('mkfifo', [fifo]);
      // More calls than libuv has threads (4): before, each open() blocked one for good. They
      // queue on the store's lock, each holder failing at once: a patient store, so that on a
      // loaded machine the last in the queue still reaches the FIFO rather than the lock timeout.
      const patient = createFileStateStore({ dir, lockTimeoutMs: 15_000 });
      const calls = Array.from({ length: 8 }, () =>
        patient.acquireLease(project, 'a', 60_000, at).catch((e: unknown) => e),
      );
      for (const error of await Promise.all(calls)) {
        expect(error).toBeInstanceOf(UpstreamError);
        expect((error as Error).message).toContain(
          `${fifo} is a FIFO (named pipe), not a regular file`,
        );
      }
      if (which === 'state file') {
        await expect(impatient().loadConditions(project)).rejects.toThrow(/not a regular file/);
      }
      await rm(fifo);
      expect(await impatient().acquireLease(project, 'a', 60_000, at)).toMatchObject({
        acquired: true,
      });
      // Another project, files as usual: the thread pool is free.
      expect(await impatient().listRuns(freshProject())).toEqual([]);
    },
    20_000,
  );

  // Before, a dangling link as the lock spun for good (link() found the name taken, open() found
  // nothing behind it: "released meanwhile", try again), and a link as the state file was read
  // through, then replaced by a file of its own at the first write: the file it pointed to was
  // left behind, stale, silently.
  it.each([
    ['lock', 'dangling', false],
    ['lock', 'to a file', true],
    ['state file', 'dangling', false],
    ['state file', 'to a file', true],
  ])(
    'refuses a symbolic link as the %s (%s) at once, naming it; nothing written',
    async (which, _, target) => {
      const project = freshProject();
      const file = join(dir, `${project}.json`);
      const path = which === 'lock' ? `${file}.lock` : file;
      const elsewhere = await mkdtemp(join(tmpdir(), 'governor-link-target-'));
      cleanups.push(elsewhere);
      const pointed = join(elsewhere, 'target.json');
      if (target) {
        // A document of this very project: read through the link, it would pass every check.
        await writeFile(
          pointed,
          JSON.stringify({ schema: 1, project, conditions: null, lease: null, runs: [] }),
        );
        if (which === 'lock') await utimes(pointed, new Date(0), new Date(0));
      }
      await symlink(pointed, path);
      const error: unknown = await impatient()
        .acquireLease(project, 'a', 60_000, at)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as Error).message).toMatch(
        new RegExp(`^State store: ${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&')} is a symbolic link`),
      );
      expect((error as Error).message).toContain('remove the link');
      expect((error as Error).message).not.toContain('\n');
      // The link and what it points to, as they were.
      expect((await lstat(path)).isSymbolicLink()).toBe(true);
      expect(await readdir(elsewhere)).toEqual(target ? ['target.json'] : []);
      await rm(path);
      expect(await impatient().acquireLease(project, 'a', 60_000, at)).toMatchObject({
        acquired: true,
      });
    },
    10_000,
  );

  it('says who holds a lock it waited for in vain, and when it will be broken', async () => {
    const project = freshProject();
    const lock = join(dir, `${project}.json.lock`);
    await writeFile(lock, JSON.stringify({ token: 'live', host: 'elsewhere', pid: 42 }));
    const error: unknown = await impatient()
      .acquireLease(project, 'a', 60_000, at)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toContain('held by PID 42 on elsewhere');
    expect((error as Error).message).toContain('broken once 10 s old');
    await rm(lock);
  });
});

describe('file store: a process killed or starved in the middle', () => {
  let script: string;
  let preload: string;

  /**
   * The children a test started and has not seen exit, killed by their own PID once it ends: a
   * test failing midway would otherwise leave one stopped (SIGSTOP) or holding a lock for good.
   */
  const running = new Set<ChildProcess>();
  function started(p: ChildProcess): ChildProcess {
    running.add(p);
    p.once('exit', () => running.delete(p));
    return p;
  }
  afterEach(async () => {
    const left = [...running];
    running.clear();
    await Promise.all(
      left.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((done) => p.once('exit', done));
        p.kill('SIGKILL');
        await exited;
      }),
    );
  });

  beforeAll(async () => {
    const compiled = await transpileForNode(join(import.meta.dirname, 'lock-child.ts'));
    const compiledPreload = await transpileForNode(
      join(import.meta.dirname, '../support/crash-at.ts'),
    );
    cleanups.push(compiled.dir, compiledPreload.dir);
    script = compiled.script;
    preload = compiledPreload.script;
  });

  /** Runs lock-child under the crash-at preload; resolves with its stdout once it exits. */
  function child(project: string, args: string[], env: Record<string, string> = {}) {
    const p = spawn(process.execPath, ['--import', preload, script, dir, project, ...args], {
      env: { ...process.env, CRASH_FILTER: `${dir}/${project}.json`, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started(p);
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<{ code: number | null; stdout: string }>((done, fail) => {
      p.on('error', fail);
      p.on('exit', (code) => done({ code, stdout }));
    });
    const said = (line: string) =>
      new Promise<void>((done, fail) => {
        const seen = () => stdout.split('\n').includes(line);
        p.stdout.on('data', () => {
          if (seen()) done();
        });
        void exited.then((e) =>
          fail(new Error(`exited (${e.code}) before "${line}": ${e.stdout}`)),
        );
      });
    return { process: p, exited, said };
  }

  it('a holder stalled past the stale limit has its write refused; the change of the process that broke its lock stays', async () => {
    // Where the first process stalls: after it read the document under the lock and decided,
    // before it writes the new document (its temporary file), as a process swapped out would.
    const traced = freshProject();
    const trace = join(dir, `${traced}.trace`);
    expect((await child(traced, ['acquire', 'first'], { CRASH_TRACE: trace }).exited).code).toBe(0);
    const steps = (await readFile(trace, 'utf8')).trim().split('\n');
    await rm(trace);
    const at = steps.findIndex((l) => /^\d+ open .*\.json\.\d+\.[0-9a-f-]+\.tmp$/.test(l)) + 1;
    expect(at, steps.join('\n')).toBeGreaterThan(0);

    const project = freshProject();
    const first = child(project, ['acquire', 'first'], {
      CRASH_AT: String(at),
      CRASH_WHEN: 'before',
      CRASH_SIGNAL: 'SIGSTOP',
    });
    await first.said('paused');
    // Stalled past the stale limit (10 s), without waiting 10 s: its lock is dated a minute back.
    const lock = join(dir, `${project}.json.lock`);
    const then = new Date(Date.now() - 60_000);
    await utimes(lock, then, then);

    // Another process breaks the stale lock and takes the lease.
    const second = await child(project, ['acquire', 'second']).exited;
    expect(second.code, second.stdout).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ acquired: true });

    // The first goes on: it decided on the free lease it read, but its write is refused.
    first.process.kill('SIGCONT');
    const late = await first.exited;
    // The second's change stands (before, the first's late write put its own lease over it).
    expect((await impatient().readLease(project))?.holder).toBe('second');
    expect(late.code, late.stdout).toBe(1);
    expect(late.stdout).toMatch(/^failed State store: the write was refused, nothing written: /m);
    expect(late.stdout).toContain('broke it as stale');
    // Nothing is left beside the document.
    expect((await readdir(dir)).filter((f) => f.startsWith(`${project}.json`))).toEqual([
      `${project}.json`,
    ]);
  });

  // Before, the rename was not flushed: on a power cut or a kernel crash just after a change
  // returned (the outbox stored before the caps are written, say), the file could come back as it
  // was before the change (fsync(2): "Calling fsync() does not necessarily ensure that the entry
  // in the directory containing the file has also reached disk").
  it('a change is on disk when it returns: the folder is flushed after the rename', async () => {
    const project = freshProject();
    const trace = join(dir, `${project}.trace`);
    const done = await child(project, ['save'], {
      CRASH_FILTER: dir,
      CRASH_CALLS: 'rename,sync',
      CRASH_TRACE: trace,
    }).exited;
    expect(done.code, done.stdout).toBe(0);
    const steps = (await readFile(trace, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.replace(/^\d+ /, '').replace(/\.\d+\.[0-9a-f-]+\.tmp$/, '.<temp>'));
    await rm(trace);
    expect(steps).toEqual([
      `sync ${project}.json.<temp>`,
      `rename ${project}.json`,
      `sync ${basename(dir)}`,
    ]);
  });

  // Before, only a project's file had what a killed process left beside it removed: a temporary
  // discovery cache (megabytes at organisation scale) or governor id stayed for good, one more
  // each time a process died there.
  it.each([
    ['the discovery cache', 'discovery', '%discovery.json', 'rename'],
    ['the governor id', 'id', 'governor-id', 'link'],
  ])(
    'a process killed while it writes %s leaves nothing for good',
    async (_, action, name, call) => {
      const own = await mkdtemp(join(tmpdir(), 'governor-file-store-left-'));
      cleanups.push(own);
      const killed = spawn(process.execPath, ['--import', preload, script, own, 'p', action], {
        env: {
          ...process.env,
          CRASH_FILTER: join(own, name),
          CRASH_CALLS: call,
          CRASH_AT: '1',
          CRASH_WHEN: 'before',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      expect(await new Promise((done) => killed.once('exit', (_c, signal) => done(signal)))).toBe(
        'SIGKILL',
      );
      const left = (await readdir(own)).filter((f) => f.endsWith('.tmp'));
      expect(left).toHaveLength(1);
      // Older than a stale lock: no live process takes that long over one write.
      await utimes(
        join(own, left[0] ?? ''),
        new Date(Date.now() - 60_000),
        new Date(Date.now() - 60_000),
      );
      const next = createFileStateStore({ dir: own });
      await next.saveDiscovery({ key: 'k', foundAt: at, projects: ['alpha-proj'] });
      await next.governorId();
      expect((await readdir(own)).sort()).toEqual([DISCOVERY_FILE, 'governor-id']);
    },
  );

  /**
   * A folder every user may write (with `mode`), and `acquire a` in it by a child running as
   * nobody (65534): root reads and signals anything, another user does not.
   */
  async function sharedFolder(mode: number): Promise<string> {
    const open = await mkdtemp(join(tmpdir(), 'governor-file-store-user-'));
    await chmod(open, mode);
    cleanups.push(open);
    return open;
  }
  async function acquireAsNobody(
    open: string,
    project: string,
    env: Record<string, string> = {},
  ): Promise<{ code: unknown; stdout: string }> {
    // The tests' temporary folder, traversable for the child (restored below).
    const parent = dirname(open);
    const mode = (await stat(parent)).mode & 0o777;
    await chmod(parent, mode | 0o111);
    try {
      const child = spawn(process.execPath, [script, open, project, 'acquire', 'a'], {
        env: { ...process.env, CHILD_UID: '65534', ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      started(child);
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const code = await new Promise((done) => child.once('exit', done));
      return { code, stdout };
    } finally {
      await chmod(parent, mode);
    }
  }

  // Before, it said "permission denied" and no more: not whose permission, nor what to do.
  it.each(['state file', 'lock'])(
    'a %s this user may not read: one line naming it and the fix; nothing written',
    async (which) => {
      const project = freshProject();
      const open = await sharedFolder(0o777);
      const file = join(open, `${project}.json`);
      const path = which === 'lock' ? `${file}.lock` : file;
      await writeFile(path, which === 'lock' ? '' : '{}', { mode: 0o600 });
      const { code, stdout } = await acquireAsNobody(open, project);
      expect(code, stdout).toBe(1);
      expect(stdout).toMatch(
        new RegExp(
          `^failed State store: .* ${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&')} failed: permission denied`,
        ),
      );
      expect(stdout).toContain('the user running the governor must be able to read and write');
      expect(stdout.trim().split('\n')).toHaveLength(1);
      expect(await readFile(path, 'utf8')).toBe(which === 'lock' ? '' : '{}');
    },
  );

  // kill(pid, 0) fails with EPERM for a process of another user (kill(2)): it exists, and its lock
  // is held, not abandoned.
  it('waits for a fresh lock held by a live process of another user', async () => {
    const project = freshProject();
    const open = await sharedFolder(0o777);
    const lock = join(open, `${project}.json.lock`);
    // This test's own process (root), alive.
    const held = JSON.stringify({ token: 'root', host: hostname(), pid: process.pid });
    await writeFile(lock, held, { mode: 0o644 });
    const { code, stdout } = await acquireAsNobody(open, project, { LOCK_TIMEOUT_MS: '300' });
    expect(code, stdout).toBe(1);
    expect(stdout).toMatch(/^failed State file lock .* stayed locked for 300 ms \(held by PID /);
    expect(await readFile(lock, 'utf8')).toBe(held);
  });

  // In a sticky folder (/tmp's mode) only a file's owner may rename it away: rename(2) fails with
  // EPERM (or EACCES) for another user. Breaking a stale lock of another user is that refusal,
  // told as one, with what to do.
  it('a stale lock of another user in a sticky folder: one line naming it and the fix', async () => {
    const project = freshProject();
    const open = await sharedFolder(0o1777);
    const lock = join(open, `${project}.json.lock`);
    const held = JSON.stringify({ token: 'root', host: hostname(), pid: process.pid });
    await writeFile(lock, held, { mode: 0o644 });
    const then = new Date(Date.now() - 60_000);
    await utimes(lock, then, then);
    const { code, stdout } = await acquireAsNobody(open, project);
    expect(code, stdout).toBe(1);
    expect(stdout).toMatch(/^failed State store: breaking .*\.json\.lock failed: /);
    expect(stdout).toContain('the user running the governor must be able to read and write');
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(await readFile(lock, 'utf8')).toBe(held);
  });

  it('a process killed while it holds the lock does not lock out the next one', async () => {
    const project = freshProject();
    const child = spawn(process.execPath, [script, dir, project, 'hold'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started(child);
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('locked')) done();
      });
      child.once('exit', (code) => fail(new Error(`the child exited (${code}) before locking`)));
    });
    // A waiter queued behind the live holder, with a lock too young to be stale for the whole of
    // its wait: only seeing the holder dead lets it in. Its wait is generous, as a guard against
    // hanging alone; that it gets in at all is the check, on any machine's speed.
    const waiting = createFileStateStore({
      dir,
      lockTimeoutMs: 20_000,
      staleLockMs: 600_000,
    }).saveConditions(project, {}, null);
    await new Promise((done) => setTimeout(done, 100));
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
    // ...gets the lock once the holder is dead.
    expect(await waiting).toBe('1');
    expect((await readdir(dir)).filter((f) => f.startsWith(`${project}.json.`))).toEqual([]);
  });

  it('a live holder in another PID namespace of this host name keeps its lock', async () => {
    // Containers of one pod share the host name and the state volume, each with its own PID
    // namespace. unshare(1) starts the holder in a new one (the tests run as root; it fails loudly
    // otherwise), its PID set high through ns_last_pid so that no process here has it.
    const project = freshProject();
    const child = spawn(
      'unshare',
      [
        '--pid',
        '--fork',
        '--mount-proc',
        '/bin/sh',
        '-c',
        'echo $(( $(cat /proc/sys/kernel/pid_max) - 10 )) > /proc/sys/kernel/ns_last_pid && "$0" "$@"; exit $?',
        process.execPath,
        script,
        dir,
        project,
        'hold',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
    );
    started(child);
    try {
      await new Promise<void>((done, fail) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('locked')) done();
        });
        child.once('exit', (code) => fail(new Error(`the holder exited (${code}) before locking`)));
      });
      const lock = join(dir, `${project}.json.lock`);
      const owner = JSON.parse(await readFile(lock, 'utf8')) as { pid: number; space: string };
      expect(processExists(owner.pid), 'its PID names no process here').toBe(false);
      expect(owner.space).not.toBe(processSpace());
      const error: unknown = await createFileStateStore({
        dir,
        lockTimeoutMs: 500,
        staleLockMs: 600_000,
      })
        .saveConditions(project, {}, null)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain(`held by PID ${owner.pid} on ${hostname()}`);
      expect(JSON.parse(await readFile(lock, 'utf8'))).toEqual(owner);
    } finally {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    }
  });

  it('a write that fails for want of space leaves no lock behind', async () => {
    const project = freshProject();
    // A file size limit of 0 makes every write to a file fail (EFBIG), as a full disk (ENOSPC)
    // does: the child cannot write its lock's content, nor the state file.
    const failed = await promisify(execFile)('/bin/sh', [
      '-c',
      `ulimit -f 0; exec "${process.execPath}" "${script}" "${dir}" "${project}" save`,
    ]).catch((e: unknown) => e as { stdout: string; code: number });
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stdout: string }).stdout).toMatch(/^failed .*creating the lock/);
    expect((await readdir(dir)).filter((f) => f.startsWith(`${project}.json`))).toEqual([]);
    // The next run does not wait for anything.
    expect(await impatient().saveConditions(project, {}, null)).toBe('1');
  });
});

describe('file store: processes racing', () => {
  let script: string;

  beforeAll(async () => {
    const compiled = await transpileForNode(join(import.meta.dirname, 'race-child.ts'));
    cleanups.push(compiled.dir);
    script = compiled.script;
  });

  async function race(what: 'lease' | 'save', contenders: number): Promise<unknown[]> {
    const project = freshProject();
    const startAt = String(Date.now() + 1_000);
    const outputs = await Promise.all(
      Array.from({ length: contenders }, (_, i) =>
        promisify(execFile)(process.execPath, [script, dir, project, `proc-${i}`, startAt, what]),
      ),
    );
    return outputs.map(({ stdout }) => JSON.parse(stdout) as unknown);
  }

  it('of two processes taking the lease at once, exactly one wins', async () => {
    for (let round = 0; round < 3; round += 1) {
      const results = (await race('lease', 2)) as { acquired: boolean; heldBy: string }[];
      expect(results.filter((r) => r.acquired)).toHaveLength(1);
      expect(results[0]?.heldBy).toBe(results[1]?.heldBy);
    }
  });

  it('of two processes saving over the same version, exactly one succeeds', async () => {
    for (let round = 0; round < 3; round += 1) {
      const results = (await race('save', 2)) as { saved: boolean }[];
      expect(results.filter((r) => r.saved)).toHaveLength(1);
    }
  });
});
