import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What a bench leaves behind when it is stopped by a signal to its own PID (`kill PID`, or Ctrl-C
 * where only it gets the signal): its `finally` blocks never run, and a process it started that
 * does not watch for its parent (functions-framework, `governor emulator`) keeps running. Here
 * each such process and temporary directory is registered while it lives; on SIGINT, SIGTERM,
 * SIGHUP or the process's exit, every process still running is killed by its own PID (SIGKILL:
 * the only signal a synchronous hook can count on) and every directory removed, then the
 * signal's default action (ending the bench) follows. Google's Java emulators have the same hook
 * of their own (test/support/java-emulator.ts).
 */

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let installed = false;

function leaveNothing(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', leaveNothing);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => {
      leaveNothing();
      // Had nobody else asked for the signal, its default action (ending the process) is due.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
}

/** A child process killed by its PID should the bench be stopped before it stops the child. */
export function stopWithBench(child: ChildProcess): void {
  install();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** A temporary directory removed should the bench be stopped before it removes it. */
export async function benchTempDir(prefix: string): Promise<string> {
  install();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** Removes a directory of {@link benchTempDir}. */
export async function removeBenchTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  dirs.delete(dir);
}
