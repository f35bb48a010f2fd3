/**
 * The lock loop against an interleaving no timing can hold: every time this process links its lock
 * into place, another process has just taken it; every time it looks at the holder, that process
 * has just released it. The file system is the real one; the test only decides, at this process's
 * own link() and open() of the lock, what the other process did just before.
 *
 * An integration file although it starts nothing: it replaces node:fs/promises for the lock's
 * module, which needs a module registry of its own; the unit files share one per worker
 * (vitest.config.ts), where the lock's module may already be loaded with the real one.
 */
import type { Stats } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile, unlink } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { UnavailableError } from '../../src/core/errors.js';

const other = vi.hoisted(() => ({
  lock: null as string | null,
  takes: 0,
  releases: 0,
  /** A lock the other process releases just before this process moves it aside to break it. */
  breaking: null as string | null,
  /** A lock the other process releases and takes again (a new file) at that moment, once. */
  retaking: null as string | null,
  /**
   * How the lock taken again compares with the one judged, where it is made to match it in all
   * but one of what identifies a file: null, a new file as it comes.
   */
  retakeAs: null as 'other-inode' | 'other-mtime' | 'other-size' | null,
  /** The lock judged and the one taken again, as stat() saw them (retakeAs only). */
  retaken: null as { judged: Stats; taken: Stats } | null,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const owner = JSON.stringify({ token: 'other', host: 'elsewhere', pid: 4242 });
  return {
    ...real,
    // Just before this process links its lock: the other process takes it.
    link: async (from: string, to: string) => {
      if (to === other.lock) {
        await real.writeFile(to, owner, { flag: 'wx' }).catch(() => undefined);
        other.takes += 1;
      }
      return real.link(from, to);
    },
    // Just before this process looks at the holder: the other process releases it.
    open: async (...args: Parameters<typeof real.open>) => {
      if (args[0] === other.lock) {
        await real.unlink(args[0]).catch(() => undefined);
        other.releases += 1;
      }
      return real.open(...args);
    },
    // Just before this process moves a lock it judged abandoned aside: the other releases it.
    rename: async (from: string, to: string) => {
      if (from === other.breaking) {
        await real.unlink(from).catch(() => undefined);
        other.releases += 1;
      }
      if (from === other.retaking) {
        other.retaking = null;
        const judged = await real.stat(from);
        const padded = owner.padEnd(judged.size, ' ');
        if (other.retakeAs === null) {
          await real.unlink(from);
          await real.writeFile(from, owner, { flag: 'wx' });
        } else if (other.retakeAs === 'other-inode') {
          // A new file of the same size and modification time: the old one still exists when it
          // is made, so it cannot have the old one's inode number.
          await real.writeFile(`${from}.new`, padded);
          await real.utimes(`${from}.new`, judged.atime, judged.mtime);
          await real.rename(`${from}.new`, from);
        } else {
          // An inode number reused at once (tmpfs and ext4 do), written over in place here.
          await real.writeFile(from, other.retakeAs === 'other-size' ? owner : padded);
          const mtime =
            other.retakeAs === 'other-mtime' ? new Date(judged.mtimeMs + 5_000) : judged.mtime;
          await real.utimes(from, judged.atime, mtime);
        }
        other.retaken = { judged, taken: await real.stat(from) };
        other.takes += 1;
      }
      return real.rename(from, to);
    },
  };
});

const { withFileLock, processSpace } = await import('../../src/adapters/file-lock.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lock-race-'));
  other.takes = 0;
  other.releases = 0;
});
afterEach(async () => {
  other.lock = null;
  other.breaking = null;
  other.retaking = null;
  other.retakeAs = null;
  other.retaken = null;
  await rm(dir, { recursive: true, force: true });
});

/** A lock of a process on this host that no longer exists (a PID far above any pid_max), dated now. */
async function writeDeadLock(lock: string, padTo = 0): Promise<void> {
  await writeFile(
    lock,
    JSON.stringify({ token: 't', host: hostname(), pid: 2 ** 30, space: processSpace() }).padEnd(
      padTo,
    ),
  );
}

/** withFileLock on `lock`, waiting up to `timeoutMs`, for work that only notes it ran: what it ended in. */
async function lockedWork(
  lock: string,
  timeoutMs = 200,
): Promise<{ outcome: unknown; ran: boolean }> {
  let ran = false;
  const outcome = await withFileLock(lock, { timeoutMs, staleMs: 60_000 }, async () => {
    ran = true;
  }).then(
    () => 'took the lock',
    (error: unknown) => error,
  );
  return { outcome, ran };
}

/** The other process's lock, taken anew while this one broke the old, was given back to it. */
async function expectGivenBack(lock: string, { outcome, ran }: { outcome: unknown; ran: boolean }) {
  expect(ran).toBe(false);
  expect(outcome).toBeInstanceOf(UnavailableError);
  expect((outcome as Error).message).toContain('held by PID 4242 on elsewhere');
  expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ token: 'other' });
}

describe('file lock: taken and released by others between two looks', () => {
  it('gives up at its deadline, naming the lock and why, and never runs its work', async () => {
    const lock = join(dir, 'p.json.lock');
    other.lock = lock;
    // A loop that never gives up fails by this test's timeout: a hang guard, generous against
    // the 200 ms it waits, rather than a bound on the time taken.
    const { outcome, ran } = await lockedWork(lock);
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect((outcome as Error).message).toContain(lock);
    expect((outcome as Error).message).toMatch(/taken by other processes every time/);
    expect(ran).toBe(false);
    // Each try found the lock taken and each look after it found it released, the look after
    // the last try past the deadline too (so it names no holder): as many takes as releases,
    // however many the machine's speed allowed.
    expect(other.releases).toBeGreaterThanOrEqual(2);
    expect(other.takes).toBe(other.releases);
  }, 20_000);

  it('takes a lock the others leave alone, even past its deadline once it broke a dead one', async () => {
    const lock = join(dir, 'p.json.lock');
    await writeDeadLock(lock);
    const answer = await withFileLock(lock, { timeoutMs: 0, staleMs: 60_000 }, async () => 'mine');
    expect(answer).toBe('mine');
    await expect(unlink(lock)).rejects.toThrow(/ENOENT/);
  });

  // Waiting 0 ms, the deadline has passed once the lock is given back, and the one last try finds
  // it taken: the holder is named all the same (a slow machine takes that way at 200 ms too).
  it.each([0, 200])(
    'gives back a lock taken anew while this process was breaking the one it judged (waiting %i ms)',
    async (timeoutMs) => {
      const lock = join(dir, 'p.json.lock');
      // Judged abandoned (a process that no longer exists); by the time it is moved aside, another
      // process has taken the lock anew: that lock is live, and is put back, not removed. The new
      // file may well get the removed one's inode number (tmpfs and ext4 reuse it at once): judged
      // by the inode alone, it was taken for the old lock and removed, and this process ran its work
      // under the other's lock.
      await writeDeadLock(lock);
      other.retaking = lock;
      const worked = await lockedWork(lock, timeoutMs);
      expect(other.takes).toBe(1);
      await expectGivenBack(lock, worked);
    },
  );

  it.each([
    ['another inode number', 'other-inode'],
    ['another modification time', 'other-mtime'],
    ['another size', 'other-size'],
  ] as const)(
    'gives back a lock taken anew that differs from the one judged only by %s',
    async (_, retakeAs) => {
      const lock = join(dir, 'p.json.lock');
      // The dead holder's lock, padded so that the other's fits its size, dated to a whole
      // second (so that its modification time can be given to another file exactly).
      await writeDeadLock(lock, 256);
      const at = new Date(Math.floor(Date.now() / 1_000) * 1_000 - 10_000);
      await utimes(lock, at, at);
      other.retaking = lock;
      other.retakeAs = retakeAs;
      // Waiting 0 ms: the deadline passes while the lock is broken (see above).
      const worked = await lockedWork(lock, 0);
      // The lock taken again differs from the judged one in that alone.
      const { judged, taken } = other.retaken ?? expect.fail('the lock was not taken again');
      expect([
        taken.ino !== judged.ino,
        taken.mtimeMs !== judged.mtimeMs,
        taken.size !== judged.size,
      ]).toEqual([
        retakeAs === 'other-inode',
        retakeAs === 'other-mtime',
        retakeAs === 'other-size',
      ]);
      await expectGivenBack(lock, worked);
    },
  );

  it('takes a lock whose holder released it while this process was breaking it', async () => {
    const lock = join(dir, 'p.json.lock');
    // Judged abandoned (a process that no longer exists), gone by the time it is moved aside:
    // another process broke or released it first, which is no failure.
    await writeDeadLock(lock);
    other.breaking = lock;
    const answer = await withFileLock(lock, { timeoutMs: 1_000, staleMs: 60_000 }, async () => {
      other.breaking = null;
      return 'mine';
    });
    expect(answer).toBe('mine');
    expect(other.releases).toBe(1);
    await expect(unlink(lock)).rejects.toThrow(/ENOENT/);
  });
});

describe('file lock: released after work that failed', () => {
  it("reports the work's own failure, not the lock found taken when releasing it", async () => {
    const lock = join(dir, 'p.json.lock');
    // The work stalls, its lock is broken as stale meanwhile (gone here), then the work fails on
    // its own account: that failure is the outcome, and its message says the lock was lost too.
    const outcome = await withFileLock(lock, { timeoutMs: 1_000, staleMs: 60_000 }, async () => {
      await unlink(lock);
      throw new TypeError('the work failed');
    }).then(
      () => 'succeeded',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(TypeError);
    expect((outcome as Error).message).toMatch(/^the work failed \(and releasing the lock /);
    expect((outcome as Error).message).toContain('was taken from this process');
  });

  it('refuses the commit of a holder whose lock another process broke and holds now; leaves that lock', async () => {
    const lock = join(dir, 'p.json.lock');
    const theirs = JSON.stringify({ token: 'theirs', host: 'elsewhere', pid: 4242 });
    let committed = false;
    const outcome = await withFileLock(
      lock,
      { timeoutMs: 1_000, staleMs: 60_000 },
      async (fence) => {
        // Stalled past the stale limit: another process broke the lock and took it.
        await unlink(lock);
        await writeFile(lock, theirs);
        await fence();
        committed = true;
      },
    ).then(
      () => 'committed',
      (error: unknown) => error,
    );
    expect(committed).toBe(false);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/the write was refused, nothing written/);
    // The lock is the other's now: not released, nor said to have failed to be.
    expect((outcome as Error).message).not.toContain('releasing the lock failed');
    expect(await readFile(lock, 'utf8')).toBe(theirs);
  });

  it('still fails a work that succeeded when its lock was taken from it meanwhile', async () => {
    const lock = join(dir, 'p.json.lock');
    const outcome = withFileLock(lock, { timeoutMs: 1_000, staleMs: 60_000 }, async () => {
      await unlink(lock);
      return 'done';
    });
    await expect(outcome).rejects.toThrow(/was taken from this process/);
  });
});
