import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processSpace } from '../../src/adapters/file-lock.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import type { StateStore } from '../../src/ports/index.js';
import { transpileForNode } from '../state/transpile.js';

/**
 * Crash in the middle of every step of the file store's lock and of a lease: a process using the
 * store is killed with SIGKILL just before, and just after, each of its file system changes (see
 * test/support/crash-at.ts), for every one of them. After each kill the next process must get on
 * at once (no lock left that it waits for), read a whole document (never half of one), and find
 * the lease either as it was or as the dead process took it; a lease a dead process took is
 * named, and `breakLease` (what `governor unlock` calls) clears it. What the dead process left
 * beside the document (temporary files, a lock moved aside, a break lock) is gone after the next
 * change.
 */

const cleanups: string[] = [];
let dir: string;
let child: string;
let preload: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'governor-lock-crash-'));
  cleanups.push(dir);
  const compiledChild = await transpileForNode(join(import.meta.dirname, '../state/lock-child.ts'));
  const compiledPreload = await transpileForNode(
    join(import.meta.dirname, '../support/crash-at.ts'),
  );
  cleanups.push(compiledChild.dir, compiledPreload.dir);
  child = compiledChild.script;
  preload = compiledPreload.script;
});

afterAll(async () => {
  await Promise.all(cleanups.map((d) => rm(d, { recursive: true, force: true })));
});

let projects = 0;
const freshProject = () => `crash-${process.pid}-${(projects += 1)}`;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/** Runs the child under the preload; `crash` picks the step it dies at. */
function runChild(project: string, args: string[], env: Record<string, string>): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', preload, child, dir, project, ...args], {
      env: { ...process.env, CRASH_FILTER: `${dir}/${project}.json`, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ code, signal, stdout }));
  });
}

/** The steps an uninterrupted child makes, one line each. */
async function stepsOf(setup: (project: string) => Promise<void>, args: string[]) {
  const project = freshProject();
  await setup(project);
  const trace = join(dir, `${project}.trace`);
  const done = await runChild(project, args, { CRASH_TRACE: trace });
  expect(done.code, done.stdout).toBe(0);
  const lines = (await readFile(trace, 'utf8')).trim().split('\n');
  await rm(trace);
  return lines;
}

/** A PID that no process has: a child that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0']);
  const pid = p.pid;
  await new Promise((done) => p.on('exit', done));
  if (pid === undefined) throw new Error('no pid');
  return pid;
}

/**
 * The next process's store waits for no lock at all (a lock timeout of 0): a lock the dead process
 * left that is not broken at once as abandoned fails its first call, on any machine's speed,
 * where a bound on the time taken would pass or fail with the machine's load.
 */
const store = (): StateStore => createFileStateStore({ dir, lockTimeoutMs: 0 });
const aged = async (file: string, seconds: number): Promise<void> => {
  const then = new Date(Date.now() - seconds * 1000);
  await utimes(file, then, then);
};
const names = async (project: string) =>
  (await readdir(dir)).filter((f) => f.startsWith(`${project}.json`)).sort();

interface Case {
  name: string;
  args: string[];
  setup: (project: string) => Promise<void>;
  /** The lease holders a reader may find after a kill: as before, or as the child left it. */
  holders: (string | null)[];
  /** Crash only up to this step (the steps after it are those of another case). */
  lastStep?: (steps: string[]) => number;
}

/**
 * Where to crash: before the first step, after every step, and before a step that follows an
 * `open` (the file's content is written in between). Elsewhere "before step n" is the same
 * state on disk as "after step n - 1".
 */
function crashPoints(steps: string[], last: number): { n: number; when: 'before' | 'after' }[] {
  const points: { n: number; when: 'before' | 'after' }[] = [{ n: 1, when: 'before' }];
  for (let n = 1; n <= last; n += 1) {
    if (n > 1 && steps[n - 2]?.split(' ')[1] === 'open') points.push({ n, when: 'before' });
    points.push({ n, when: 'after' });
  }
  return points;
}

const CASES: Case[] = [
  {
    name: 'taking a free lease',
    args: ['acquire', 'child'],
    setup: async () => {},
    holders: [null, 'child'],
  },
  {
    name: 'taking a lease past a lock its dead holder left',
    args: ['acquire', 'child'],
    setup: async (project) => {
      const lock = join(dir, `${project}.json.lock`);
      const pid = await deadPid();
      await writeFile(
        lock,
        JSON.stringify({ token: 't', host: hostname(), pid, space: processSpace() }),
      );
    },
    holders: [null, 'child'],
    // Up to the broken lock's removal; then the steps of taking a free lease.
    lastStep: (steps) => steps.findIndex((s) => /^\d+ unlink .*\.broken-/.test(s)) + 2,
  },
  {
    name: 'giving a lease back',
    args: ['release', 'child'],
    setup: async (project) => {
      await createFileStateStore({ dir }).acquireLease(
        project,
        'child',
        60_000,
        new Date().toISOString(),
      );
    },
    holders: ['child', null],
  },
];

describe('crash at every step of the file lock and the lease', () => {
  for (const c of CASES) {
    it(`${c.name}: the next process gets on at once and finds the lease whole`, async () => {
      const steps = await stepsOf(c.setup, c.args);
      expect(steps.length).toBeGreaterThan(3);
      const points = crashPoints(steps, c.lastStep?.(steps) ?? steps.length);
      let killed = 0;
      for (const { n, when } of points) {
        const project = freshProject();
        await c.setup(project);
        const died = await runChild(project, c.args, { CRASH_AT: String(n), CRASH_WHEN: when });
        const where = `killed ${when} step ${steps[n - 1] ?? n} of ${c.name}`;
        expect(died.signal, where).toBe('SIGKILL');
        killed += 1;
        // What it left is as old as a stale lock by the time the next change comes.
        for (const name of await names(project)) await aged(join(dir, name), 60);

        // The next process: no wait for the dead one's lock, and a whole document.
        const next = store();
        const lease = await next.readLease(project);
        expect(c.holders, where).toContain(lease?.holder ?? null);
        const now = new Date().toISOString();
        const taken = await next.acquireLease(project, 'next', 60_000, now).catch((e: unknown) => {
          throw new Error(`${where}: ${String(e)}`);
        });
        if (lease === null) expect(taken.acquired, where).toBe(true);
        else {
          // A lease the dead process held is named; unlock clears it.
          expect(taken, where).toMatchObject({ acquired: false, heldBy: lease.holder });
          expect(await next.breakLease(project), where).toBe(true);
          expect(await next.acquireLease(project, 'next', 60_000, now), where).toMatchObject({
            acquired: true,
          });
        }
        // No lock, no temporary file, no lock moved aside: the document alone.
        expect(await names(project), where).toEqual([`${project}.json`]);
      }
      expect(killed).toBe(points.length);
    }, 240_000);
  }
});

describe('the crash preload refuses a setting it cannot read', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['a step that is no number', { CRASH_AT: 'three' }, /CRASH_AT must be a step number/],
    ['step 0', { CRASH_AT: '0' }, /CRASH_AT must be a step number/],
    ['a moment other than before or after', { CRASH_AT: '1', CRASH_WHEN: 'during' }, /CRASH_WHEN/],
    ['a signal other than SIGSTOP', { CRASH_AT: '1', CRASH_SIGNAL: 'SIGTERM' }, /CRASH_SIGNAL/],
    ['a call that is no step', { CRASH_CALLS: 'rename,write' }, /"write"/],
  ];
  for (const [name, env, said] of cases) {
    it(`${name}: exits 2 before any step, saying which setting`, async () => {
      const project = freshProject();
      const p = spawn(
        process.execPath,
        ['--import', preload, child, dir, project, 'acquire', 'x'],
        {
          env: { ...process.env, CRASH_FILTER: `${dir}/${project}.json`, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((done) => p.on('exit', done));
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(said);
      // Nothing was made: the child never ran.
      expect((await readdir(dir)).filter((n) => n.startsWith(project))).toEqual([]);
    });
  }
});
