/**
 * The lock file that makes one read-modify-write of a state file exclusive between processes.
 *
 * Taking it: the lock's content (a token of this call, host, PID, time) is written whole to a
 * temporary file of its own, then hard-linked to the lock's name. link() fails with EEXIST when
 * the name exists (POSIX link(); the Linux open(2) manual recommends exactly this over O_EXCL for
 * lock files, as it also holds on NFS), so of several processes one takes the lock, and a lock
 * never exists without its whole content: when the disk is full (ENOSPC) the temporary file
 * fails, it is removed, and no lock is left behind.
 *
 * A lock in the way is broken, rather than waited for, when
 * - it is empty or not a lock this code writes (garbage), and older than `GARBAGE_GRACE_MS`: an
 *   earlier version created the file first and wrote it after, so an empty lock may be a second
 *   old;
 * - its holder was a process of this process space that no longer exists (`processSpace`: this
 *   host, this boot and this PID namespace; a PID means nothing outside them);
 * - it is older (by its mtime) than `staleMs`, whoever's PID it names (PIDs are reused): a lock is
 *   held for one small read-modify-write, so an old one was abandoned;
 * - its mtime is more than `staleMs` in the future (a wrong clock, `touch -d 2099`): its age
 *   would stay negative, and the lock never broken, however it was left.
 * A lock that names no process (PID 0 or below: `kill(0, 0)` signals the caller's own process
 * group and succeeds, `kill(-1, 0)` every process) is garbage, never a live holder.
 * Breaking is done by one process at a time, under a second lock beside the first (`LOCK.break`,
 * taken the same way): several processes often judge one abandoned lock at once, and one slowed
 * for a moment between judging and breaking would otherwise break the lock another breaker has
 * just taken, while that holder, past its fence, is committing; a third process taking the freed
 * name would then read and write beside it, and one of the two writes would be lost. Under the
 * break lock the lock is looked at again, and broken only while it is still the file judged. It
 * is renamed aside, and what was moved is checked to be that file (a holder stalled past
 * `staleMs` may release it and another take it in between: that one is linked back). The same
 * inode is not enough: a file created after the judged one was removed may get its inode number
 * again (file systems reuse freed inodes, tmpfs and ext4 at once), so the size and modification
 * time must match too (rename() changes neither). A break lock is held for those few system calls
 * only; one left by a process that died in them is broken as every lock is, by its holder's absence
 * or its age, when a lock is next to break, and removed with the other leftovers by the state file's
 * next change (file-store.ts removeLeftovers). Any other lock is waited for up to `timeoutMs`, then the call fails with
 * UnavailableError naming the lock, its holder, and how to clear it.
 *
 * Fencing. Breaking a stale lock is right for a holder that died, but a holder that merely stalled
 * (SIGSTOP, swapping, an fsync that took seconds) past `staleMs` is still running: it would go on
 * and write what it decided on a read that another process has since written over. So a holder
 * commits only through `fence`: just before the rename of the new document over the old, it reads
 * the lock again and finds there the token it wrote, or refuses the write (LockLostError, nothing
 * written). What remains: the check and the rename are two steps, not one atomic one (POSIX has no
 * rename conditional on another file), so a holder that stalls for more than `staleMs` exactly
 * between them still overwrites. That window is the few system calls from reading the lock to the
 * rename, instead of the whole read-modify-write with its fsync (the step most likely to stall);
 * and it is not silent: the holder then finds its lock gone when it releases it, and fails loudly
 * there. For a store meant for one machine (the CLI's default; state shared across machines is the
 * Firestore store, with transactions) that is acceptable.
 *
 * The lock is opened without blocking and read only when it is a regular file
 * (`openRegularFile`): a FIFO in its place would block open() for good, one libuv thread per
 * call, until the pool is exhausted and the process never recovers. A symbolic link in its place
 * is refused, not followed: a dangling one would otherwise be taken for a lock released between
 * link() and open(), and tried again forever.
 */
import { randomUUID } from 'node:crypto';
import { constants, readFileSync, readlinkSync, type Stats } from 'node:fs';
import {
  link,
  lstat,
  mkdir,
  open,
  readlink,
  rename,
  stat,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { z } from 'zod';

import { PermissionError, UnavailableError, UpstreamError, errorMessage } from '../core/errors.js';
import { fileFaultText, readHandleCapped } from '../read-capped.js';

interface FileLockOptions {
  /** How long to wait for a live holder. */
  timeoutMs: number;
  /** A lock older than this (mtime) is broken, whoever holds it. */
  staleMs: number;
}

/** How old an empty or unreadable lock must be to be broken. */
const GARBAGE_GRACE_MS = 1_000;

/** The most of a lock file read: its owner is a few hundred bytes of JSON. */
const MAX_LOCK_BYTES = 64 << 10;

const LockContent = z.object({
  token: z.string().min(1),
  host: z.string(),
  // kill(0, 0) and kill(-1, 0) succeed: such a PID names no holder.
  pid: z.number().int().positive(),
  /** Where `pid` names a process (`processSpace`); absent from locks of earlier versions. */
  space: z.string().optional(),
});
type LockContent = z.infer<typeof LockContent>;

/**
 * The holder's check that the lock is still its own, made just before its commit (see Fencing
 * above); throws LockLostError when it is not.
 */
export type Fence = () => Promise<void>;

/** The lock was broken as stale (its holder stalled past `staleMs`): nothing was written. */
class LockLostError extends UpstreamError {}

/** Runs `fn` while holding the lock file `lock`; `fn` commits only after `fence` passes. */
export async function withFileLock<T>(
  lock: string,
  options: FileLockOptions,
  fn: (fence: Fence) => Promise<T>,
): Promise<T> {
  const mine = {
    token: randomUUID(),
    host: hostname(),
    pid: process.pid,
    ...spaceField(),
    since: new Date().toISOString(),
  };
  const deadline = Date.now() + options.timeoutMs;
  let lastTry = false;
  while (!(await tryLock(lock, mine))) {
    const found = await inspect(lock);
    // Released meanwhile (null) or abandoned (broken here): try again at once. Every way round
    // this loop passes the deadline; past it, a lock gone or just broken gets one last try, so
    // other processes taking the lock in turn between this process's looks cannot keep it here.
    const held = found !== null && !abandoned(found, options.staleMs) ? found : null;
    // The last try failed: the look after it names the holder, when one holds the lock now (one
    // given its lock back by breakLock, say), rather than saying others took it in turn.
    if (lastTry) throw new UnavailableError(waitedInVain(lock, held, options));
    // Another process breaking it now is waited for as a holder is, its break lock named.
    const breaker =
      found !== null && held === null ? await breakLock(lock, found, mine, options.staleMs) : null;
    if (Date.now() >= deadline) {
      if (held !== null) throw new UnavailableError(waitedInVain(lock, held, options));
      if (breaker !== null)
        throw new UnavailableError(waitedInVain(breakLockOf(lock), breaker, options));
      lastTry = true;
    } else if (held !== null || breaker !== null) {
      await sleep(5 + Math.random() * 20);
    }
  }
  let lost = false;
  const fence: Fence = async () => {
    const seen = await inspect(lock);
    if (seen?.owner?.token === mine.token) return;
    lost = true;
    throw new LockLostError(
      `State store: the write was refused, nothing written: this process held the lock ${lock} ` +
        `for over ${Math.round(options.staleMs / 1000)} s (stalled), so another process broke it ` +
        `as stale and may have changed the file since; run again (a fresh read decides it anew)`,
    );
  };
  let result: T;
  try {
    result = await fn(fence);
  } catch (error) {
    // A lock found lost is no longer this process's to remove (it may be another's now). A
    // failure to release it must not replace why the work failed, which is what the caller
    // branches on (a corrupt or oversized state file, a lost lock): that stays the outcome, its
    // message saying the release failed too.
    if (!lost) await unlock(lock, mine.token).catch((release: unknown) => note(error, release));
    throw error;
  }
  if (!lost) await unlock(lock, mine.token);
  return result;
}

/** Adds to a failure's message that releasing the lock failed as well. */
function note(error: unknown, release: unknown): void {
  if (!(error instanceof Error)) return;
  const why = errorMessage(release);
  error.message = `${error.message} (and releasing the lock failed: ${why})`;
}

/**
 * Why the wait for the lock ended in vain; `held` is the live holder's lock at the last look, null
 * when the lock was gone or broken there (others took it again each time this process tried).
 */
function waitedInVain(lock: string, held: Seen | null, options: FileLockOptions): string {
  const after = `it is broken once ${Math.round(options.staleMs / 1000)} s old, or remove it if no governor is running`;
  if (held === null) {
    return (
      `State file lock ${lock} was taken by other processes every time this one tried, for ` +
      `${options.timeoutMs} ms; ${after}`
    );
  }
  const holder =
    held.owner === null ? 'an unreadable lock' : `PID ${held.owner.pid} on ${held.owner.host}`;
  return `State file lock ${lock} stayed locked for ${options.timeoutMs} ms (held by ${holder}); ${after}`;
}

/** Creates the lock whole (temporary file, then link); false when another holds it. */
async function tryLock(lock: string, content: object): Promise<boolean> {
  const temp = `${lock}.${randomUUID()}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(content), 'utf8');
    } finally {
      await handle.close();
    }
    return await linkUnlessTaken(temp, lock);
  } catch (error) {
    throw fsError(error, `creating the lock ${lock}`);
  } finally {
    await removeIfThere(temp);
  }
}

interface Seen {
  ino: number;
  size: number;
  mtimeMs: number;
  ageMs: number;
  /** null: empty, or not a lock this code writes. */
  owner: LockContent | null;
}

/** The lock as it is now (one open file, so inode, age and content agree); null when gone. */
async function inspect(lock: string): Promise<Seen | null> {
  let handle;
  try {
    handle = await openRegularFile(lock);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw fsError(error, `opening ${lock}`);
  }
  try {
    const info = await handle.stat();
    // A lock holds one small JSON owner; anything larger is garbage, judged as such.
    const bytes = await readHandleCapped(handle, MAX_LOCK_BYTES);
    const owner = bytes === null ? null : parseLock(bytes.toString('utf8'));
    return {
      ino: info.ino,
      size: info.size,
      mtimeMs: info.mtimeMs,
      ageMs: Date.now() - info.mtimeMs,
      owner,
    };
  } catch (error) {
    throw fsError(error, `reading ${lock}`);
  } finally {
    await handle.close();
  }
}

function abandoned(seen: Seen, staleMs: number): boolean {
  // Dated further ahead than a stale lock is old: no clock of a live holder puts it there.
  if (seen.ageMs < -staleMs) return true;
  if (seen.owner === null) return seen.ageMs > GARBAGE_GRACE_MS;
  if (seen.ageMs > staleMs) return true;
  return inThisSpace(seen.owner) && !processExists(seen.owner.pid);
}

/**
 * Whether the lock's PID names a process this one can look for: written in the same process space
 * (host, boot, PID namespace). A host name alone is not enough: containers of one pod share it
 * (and the volume the state folder is on) but each has its own PID namespace, where a holder's PID
 * names another process or none; so do two machines of one name on a shared disk, each booted on
 * its own. A lock that names no space (an earlier version's, or a system without /proc) is judged
 * by its age alone, at most 10 s: the fail-safe side.
 */
function inThisSpace(owner: LockContent): boolean {
  const here = processSpace();
  return here !== null && owner.host === hostname() && owner.space === here;
}

let space: string | null | undefined;

/**
 * Where a PID names a process, on Linux: the boot (`/proc/sys/kernel/random/boot_id`, new at each
 * boot) and the PID namespace (`/proc/self/ns/pid`, a link naming the namespace's inode, the same
 * for every process in it: namespaces(7), "The /proc/[pid]/ns/ directory"). Null where /proc does
 * not tell (another system): such a process never judges a lock by its PID.
 */
export function processSpace(): string | null {
  if (space !== undefined) return space;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid');
    space = boot && ns ? `${boot}/${ns}` : null;
  } catch {
    space = null; // no /proc: never judged by PID, only by age
  }
  return space;
}

/** The lock's `space` field, when this system tells it. */
function spaceField(): { space?: string } {
  const here = processSpace();
  return here === null ? {} : { space: here };
}

/** The lock that one process at a time holds to break `lock` (see the module's comment). */
function breakLockOf(lock: string): string {
  return `${lock}.break`;
}

/**
 * Breaks the lock judged abandoned, under the break lock (see the module's comment). Returns the
 * break lock when another live process holds it (breaking the lock now): nothing was done.
 */
async function breakLock(
  lock: string,
  judged: Seen,
  mine: LockContent,
  staleMs: number,
): Promise<Seen | null> {
  const breaking = breakLockOf(lock);
  // A break lock its process left when it died is broken, then tried once more.
  for (let tries = 1; !(await tryLock(breaking, mine)); tries += 1) {
    const other = await inspect(breaking);
    if (other !== null && !abandoned(other, staleMs)) return other;
    if (other !== null) await moveAside(breaking, other);
    if (tries === 2) return null; // taken by others each time: look at the lock again
  }
  try {
    const now = await inspect(lock);
    if (now !== null && sameFile(now, judged)) await moveAside(lock, judged);
  } catch (error) {
    await unlock(breaking, mine.token).catch((release: unknown) => note(error, release));
    throw error;
  }
  await unlock(breaking, mine.token);
  return null;
}

/** Moves the lock aside and removes it, if it is still the one judged; else puts it back. */
async function moveAside(lock: string, judged: Seen): Promise<void> {
  const aside = `${lock}.broken-${randomUUID()}`;
  try {
    await rename(lock, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return; // another process broke or released it first
    throw fsError(error, `breaking ${lock}`);
  }
  try {
    const moved = await stat(aside);
    if (!sameFile(moved, judged)) {
      // Released and taken again between judging and moving: give the new holder its lock back.
      // Should a third process have taken the name meanwhile, the new holder finds its lock
      // gone when it releases it, and fails loudly there.
      await linkUnlessTaken(aside, lock);
    }
  } catch (error) {
    throw fsError(error, `breaking ${lock}`);
  } finally {
    await removeIfThere(aside);
  }
}

/** Whether the file moved aside is the lock judged (see the module's comment on inodes reused). */
function sameFile(moved: Pick<Stats, 'ino' | 'size' | 'mtimeMs'>, judged: Seen): boolean {
  return moved.ino === judged.ino && moved.size === judged.size && moved.mtimeMs === judged.mtimeMs;
}

async function unlock(lock: string, token: string): Promise<void> {
  const seen = await inspect(lock);
  if (seen?.owner?.token !== token) {
    throw new UpstreamError(
      `Lock ${lock} was taken from this process while it held it (held too long, so broken as stale)`,
    );
  }
  try {
    await unlink(lock);
  } catch (error) {
    throw fsError(error, `removing ${lock}`);
  }
}

function parseLock(text: string): LockContent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) return null; // empty or garbage: judged by age
    throw error;
  }
  const parsed = LockContent.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/** Whether a process of this id runs on this host (signal 0 tests without sending). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return errnoCode(error) !== 'ESRCH';
  }
}

/**
 * Opens a state or lock file for reading without waiting (O_NONBLOCK: a FIFO opens at once
 * instead of blocking a libuv thread until a writer comes) nor following a symbolic link
 * (O_NOFOLLOW, refused naming where it points), then refuses anything but a regular file (fstat),
 * naming the path and what it is; the pattern of emulator/fleet.ts readTrace. Read
 * it with read-capped.ts readHandleCapped. Errors of open() (ENOENT…) are thrown as they come.
 */
export async function openRegularFile(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | NOFOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ELOOP') throw await linkRefusal(path, error);
    throw error;
  }
  let info: Stats;
  try {
    info = await handle.stat();
  } catch (error) {
    await handle.close();
    throw fsError(error, `reading ${path}`);
  }
  if (!info.isFile()) {
    await handle.close();
    throw new UpstreamError(
      `State store: ${path} is ${fileKind(info)}, not a regular file: nothing was read from it; ` +
        `remove it (the governor writes only regular files there)`,
    );
  }
  return handle;
}

/**
 * O_NOFOLLOW: a symbolic link as the last part of the path fails open() with ELOOP (POSIX open()),
 * rather than being followed. The governor never writes a link there: a dangling one as the lock
 * made link() find the name taken and open() find nothing behind it, forever; one as the state
 * file was read through, then replaced by a file of its own at the first rename, leaving what it
 * pointed to behind, stale. Absent on Windows, which has no such links in this sense.
 */
const NOFOLLOW: number = (constants as { O_NOFOLLOW?: number }).O_NOFOLLOW ?? 0;

/** The error for a symbolic link where a state or lock file belongs, naming where it points. */
async function linkRefusal(path: string, error: unknown): Promise<Error> {
  let target: string;
  try {
    if (!(await lstat(path)).isSymbolicLink()) return fsError(error, `reading ${path}`);
    target = await readlink(path);
  } catch (inner) {
    return fsError(inner, `reading ${path}`);
  }
  return new UpstreamError(
    `State store: ${path} is a symbolic link (to ${JSON.stringify(target)}), not a regular file: ` +
      `nothing was read from it or written; remove the link, or put the file it points to in its ` +
      `place (the governor writes only regular files there)`,
    { cause: error },
  );
}

function fileKind(info: Stats): string {
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isDirectory()) return 'a directory';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a file';
}

/**
 * Links `name` to `file`, unless `name` exists: link() never replaces a name, so of the processes
 * that race for one, exactly one gets it. False when another had it first.
 */
export async function linkUnlessTaken(file: string, name: string): Promise<boolean> {
  try {
    await link(file, name);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
}

export async function removeIfThere(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw fsError(error, `removing ${file}`);
  }
}

export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

export function fsError(error: unknown, what: string): Error {
  if (error instanceof UpstreamError) return error;
  const code = errnoCode(error);
  const message = `State store: ${what} failed: ${fileFaultText(error)}`;
  if (code === 'EACCES' || code === 'EPERM') {
    return new PermissionError(
      `${message} (the user running the governor must be able to read and write the state ` +
        `folder and every file in it: give it back to that user, or run as the user who owns it)`,
      { cause: error },
    );
  }
  return new UpstreamError(message, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * `mkdir -p`: the folder and those above it that are missing. Not `mkdir(dir, { recursive: true })`:
 * on a pseudo-file-system Node.js's recursive mkdir never returns. procfs answers ENOENT to a
 * mkdir below /proc although /proc exists, and Node.js then makes the parent (EEXIST, so done)
 * and tries the folder again, for ever, at 100% CPU: a state folder or report under /proc left
 * the command running after its run had ended. Here a folder still missing once its parent is
 * there fails with that ENOENT. A folder that exists is fine; a file in its place fails with
 * EEXIST or ENOTDIR, as mkdir answers.
 */
export async function makeFolder(dir: string, mode?: number): Promise<void> {
  try {
    await folderOnce(dir, mode);
    return;
  } catch (error) {
    const parent = dirname(dir);
    if ((error as NodeJS.ErrnoException | null)?.code !== 'ENOENT' || parent === dir) throw error;
  }
  await makeFolder(dirname(dir), mode);
  await folderOnce(dir, mode);
}

/**
 * One mkdir of `dir`: a folder already there (or made meanwhile by another process) is what was
 * asked for; anything else in its place, or any other failure, is thrown as mkdir answered.
 */
async function folderOnce(dir: string, mode?: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException | null)?.code !== 'EEXIST') throw error;
    if (!(await stat(dir).catch(() => null))?.isDirectory()) throw error;
  }
}
