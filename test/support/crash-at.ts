/**
 * A preload (`node --import <this file, transpiled>`) that kills its own process with SIGKILL at
 * one chosen step of its file system changes, for the crash tests: a process dies there as it
 * would on a power cut or an OOM kill, with no `finally` and no cleanup.
 *
 * The steps are the calls of `node:fs/promises` that change the disk (`mkdir`, `open` to write,
 * `link`, `rename`, `unlink`) whose path contains `CRASH_FILTER` (every call when unset), and
 * only those named in `CRASH_CALLS` (comma-separated, e.g. `rename`) when it is set.
 * The process's own modules import the same functions, which this file replaces before they
 * run (`syncBuiltinESMExports` updates the ES module bindings of the built-in module).
 *
 * - `sync` in `CRASH_CALLS` makes each flush to disk a step too (`FileHandle.sync`, of a file or
 *   of a folder, named by the path it was opened with); never a step otherwise.
 * - `CRASH_TRACE=<file>`: append one line per step (`<n> <call> <file name>`), crash nowhere.
 * - `CRASH_AT=<n>` and `CRASH_WHEN=before|after`: SIGKILL just before step n is made, or just
 *   after it completed (succeeded or failed).
 * - `CRASH_SIGNAL=SIGSTOP` (with `CRASH_AT`): stall there instead of dying: print `paused` on
 *   stdout, stop (SIGSTOP), and go on where it was once the test sends SIGCONT; a process that
 *   stalls as one swapped out or starved would.
 */
import { appendFileSync, writeSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { basename } from 'node:path';

type AsyncFn = (...args: unknown[]) => Promise<unknown>;

const require = createRequire(import.meta.url);
const fsp = require('node:fs/promises') as Record<string, AsyncFn>;

/**
 * A setting this file cannot read stops the process before its first step: a misspelt step or
 * call would otherwise crash nowhere, and a test expecting a crash would read its absence.
 */
function refuse(message: string): never {
  writeSync(2, `crash-at: ${message}\n`);
  process.exit(2);
}

/** The calls of node:fs/promises made steps; `sync` (a flush) is one too, when named. */
const FILE_CALLS = ['mkdir', 'open', 'link', 'rename', 'unlink'] as const;
const CALLS: readonly string[] = [...FILE_CALLS, 'sync'];
// A setting set to the empty string is unset, as the governor reads its own.
const env = process.env;
if (env.CRASH_AT && !/^[1-9][0-9]{0,8}$/.test(env.CRASH_AT))
  refuse(`CRASH_AT must be a step number from 1, not ${JSON.stringify(env.CRASH_AT)}`);
if (env.CRASH_WHEN && env.CRASH_WHEN !== 'before' && env.CRASH_WHEN !== 'after')
  refuse(`CRASH_WHEN must be before or after, not ${JSON.stringify(env.CRASH_WHEN)}`);
if (env.CRASH_SIGNAL && env.CRASH_SIGNAL !== 'SIGSTOP')
  refuse(`CRASH_SIGNAL can only be SIGSTOP, not ${JSON.stringify(env.CRASH_SIGNAL)}`);
// Unset: every call is a step.
const calls = env.CRASH_CALLS ? env.CRASH_CALLS.split(',') : null;
const unknownCall = calls?.find((c) => !CALLS.includes(c));
if (unknownCall !== undefined)
  refuse(`CRASH_CALLS names ${JSON.stringify(unknownCall)}; the steps are ${CALLS.join(', ')}`);

const filter = env.CRASH_FILTER ?? '';
const trace = env.CRASH_TRACE;
const at = Number(env.CRASH_AT ?? '0');
const when = env.CRASH_WHEN === 'before' ? 'before' : 'after';
const stall = env.CRASH_SIGNAL === 'SIGSTOP';
let count = 0;

/** Stops this process until SIGCONT (CRASH_SIGNAL=SIGSTOP), else dies. */
function halt(): void {
  if (!stall) die();
  // Written at once (not through the stream's buffer): the test waits for it.
  writeSync(1, 'paused\n');
  process.kill(process.pid, 'SIGSTOP');
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is not delivered synchronously on every platform: never go on meanwhile.
  for (;;) {
    /* wait for the signal */
  }
}

/** The path each handle was opened with, for the `sync` steps. */
const opened = new WeakMap<object, string>();
const syncs = calls?.includes('sync') === true;

/** One step: traced, and where the process halts when it is the chosen one. */
async function step<T>(name: string, target: string, call: () => Promise<T>): Promise<T> {
  count += 1;
  const n = count;
  if (trace) appendFileSync(trace, `${n} ${name} ${basename(target)}\n`);
  if (n === at && when === 'before') halt();
  try {
    return await call();
  } finally {
    // After the call, whether it succeeded or failed (a link onto a lock that exists fails).
    if (n === at && when === 'after') halt();
  }
}

if (syncs) {
  const probe = (await fsp.open?.(process.execPath, 'r')) as { close(): Promise<void> };
  const proto = Object.getPrototypeOf(probe) as { sync: (this: object) => Promise<void> };
  await probe.close();
  const original = proto.sync;
  proto.sync = function (this: object) {
    const path = opened.get(this) ?? '';
    if (!path.includes(filter)) return original.call(this);
    return step('sync', path, () => original.call(this));
  };
  const open = fsp.open;
  if (open === undefined) throw new Error('node:fs/promises has no open');
  fsp.open = async (...args: unknown[]) => {
    const handle = (await open(...args)) as object;
    opened.set(handle, String(args[0]));
    return handle;
  };
}

for (const name of FILE_CALLS) {
  if (calls !== null && !calls.includes(name)) continue;
  const original = fsp[name];
  if (original === undefined) throw new Error(`node:fs/promises has no ${name}`);
  fsp[name] = async (...args: unknown[]) => {
    const path = String(args[0]);
    const target = name === 'link' || name === 'rename' ? String(args[1]) : path;
    if (!path.includes(filter) && !target.includes(filter)) return original(...args);
    // Opening to read changes nothing: not a step.
    if (name === 'open' && !/[wax+]/.test(String(args[1] ?? 'r'))) return original(...args);
    return step(name, target, () => original(...args));
  };
}
syncBuiltinESMExports();
