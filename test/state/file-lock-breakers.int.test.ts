/**
 * Two processes judge the same abandoned lock. One breaks it and takes the lock; the other, slowed
 * for a moment between judging and breaking, must not then move that live lock out of the way, or
 * a third process takes the name while the first holder, past its fence, is still committing: two
 * read-modify-writes at once, and one of them lost. The file system is the real one; the test
 * only holds one look at the lock (open() answered, the content not yet read) until the first
 * holder is inside its work, and lets a third process in at the moment the lock's name is free.
 *
 * An integration file although it starts nothing: it replaces node:fs/promises for the lock's
 * module, which needs a module registry of its own (vitest.config.ts).
 */
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const hook = vi.hoisted(() => ({
  /** The lock whose next look is held, and what holds it (resolved by the test). */
  lock: null as string | null,
  hold: null as Promise<void> | null,
  held: null as (() => void) | null,
  /** Looks at the lock since the held one went on. */
  looksAfter: 0,
  resumed: false,
  /** Called after a lock is moved aside while the held look's process is breaking (at most once). */
  afterMoveAside: null as (() => Promise<void>) | null,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const handle = await real.open(...args);
      if (args[0] === hook.lock) {
        if (hook.hold !== null) {
          const hold = hook.hold;
          hook.hold = null;
          hook.held?.();
          await hold;
          hook.resumed = true;
        } else if (hook.resumed) hook.looksAfter += 1;
      }
      return handle;
    },
    rename: async (from: string, to: string) => {
      await real.rename(from, to);
      if (hook.resumed && to.includes('.broken-') && hook.afterMoveAside !== null) {
        const then = hook.afterMoveAside;
        hook.afterMoveAside = null;
        await then();
      }
    },
  };
});

const { processSpace, withFileLock } = await import('../../src/adapters/file-lock.js');

/** The `space` field this process writes in its locks, where the system tells one. */
const spaceOf = (): { space?: string } => {
  const space = processSpace();
  return space === null ? {} : { space };
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lock-breakers-'));
});
afterEach(async () => {
  Object.assign(hook, {
    lock: null,
    hold: null,
    held: null,
    looksAfter: 0,
    resumed: false,
    afterMoveAside: null,
  });
  await rm(dir, { recursive: true, force: true });
});

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

async function until(what: string, done: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('file lock: two processes breaking the same abandoned lock', () => {
  it('never removes the lock the first breaker took: one holder at a time, no write lost', async () => {
    const lock = join(dir, 'p.json.lock');
    const options = { timeoutMs: 5_000, staleMs: 10_000 };
    // Abandoned: a minute old (past staleMs), its holder gone.
    await writeFile(lock, JSON.stringify({ token: 'dead', host: hostname(), pid: 2 ** 22 + 7 }));
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);

    let state = 0;
    const inside = new Set<string>();
    const overlaps: string[] = [];
    const failures: string[] = [];
    /** One read-modify-write under the lock; `before` runs between the fence and the commit. */
    const work = (who: string, before: () => Promise<void> = async () => undefined) =>
      withFileLock(lock, options, async (fence) => {
        if (inside.size > 0) overlaps.push(`${who} began while ${[...inside].join(', ')} held it`);
        inside.add(who);
        const read = state;
        await fence();
        await before();
        state = read + 1;
        inside.delete(who);
      }).catch((e: unknown) => {
        inside.delete(who);
        failures.push(`${who}: ${(e as Error).message}`);
      });

    // The second breaker looks at the abandoned lock and is held there (its look is answered).
    const looked = gate();
    const resume = gate();
    Object.assign(hook, { lock, hold: resume.wait, held: looked.open });
    const second = work('second');
    await looked.wait;

    // The first breaker breaks it, takes the lock, passes its fence, and waits to commit.
    const fenced = gate();
    const commit = gate();
    const first = work('first', async () => {
      fenced.open();
      await commit.wait;
    });
    await fenced.wait;

    // Should the second breaker move the first's lock aside, a third process takes the name then.
    let third: Promise<void> | null = null;
    const thirdCommit = gate();
    hook.afterMoveAside = async () => {
      third = work('third', () => thirdCommit.wait);
      await until('the third process to take the lock', () => inside.has('third'));
    };
    resume.open();
    // The second breaker is back to waiting (it looked at the lock twice more), or the third holds.
    await until(
      'the second breaker to look again',
      () => hook.looksAfter >= 2 || inside.has('third'),
    );
    commit.open();
    await first;
    thirdCommit.open();
    await Promise.all([second, third]);

    expect(overlaps).toEqual([]);
    expect(failures).toEqual([]);
    expect(third, "the first holder's lock was moved aside").toBeNull();
    expect(state).toBe(2);
  });
});

describe('file lock: the break lock', () => {
  const options = { timeoutMs: 400, staleMs: 10_000 };
  const abandonedLock = async (lock: string) => {
    await writeFile(lock, JSON.stringify({ token: 'dead', host: hostname(), pid: 2 ** 22 + 7 }));
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
  };

  it('left by a breaker that died is broken by its age, and the abandoned lock after it', async () => {
    const lock = join(dir, 'p.json.lock');
    await abandonedLock(lock);
    await abandonedLock(`${lock}.break`);
    await expect(withFileLock(lock, options, async () => 'done')).resolves.toBe('done');
    await expect(readdir(dir)).resolves.toEqual([]);
  });

  it('held by a live breaker is waited for, and the abandoned lock left to it', async () => {
    const lock = join(dir, 'p.json.lock');
    await abandonedLock(lock);
    // This process, just now: a live breaker, for as long as it takes.
    const breaker = { token: 'breaking', host: hostname(), pid: process.pid };
    await writeFile(`${lock}.break`, JSON.stringify({ ...breaker, ...spaceOf() }));
    const ran = vi.fn();
    await expect(withFileLock(lock, options, ran)).rejects.toThrow(
      new RegExp(
        `lock .*p\\.json\\.lock\\.break stayed locked for 400 ms \\(held by PID ${process.pid} on `,
      ),
    );
    expect(ran).not.toHaveBeenCalled();
    expect((await readdir(dir)).sort()).toEqual(['p.json.lock', 'p.json.lock.break']);
  });
});
