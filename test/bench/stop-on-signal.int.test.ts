import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../support/wait.js';

/**
 * A bench stopped by a signal to its own PID (`kill PID`, or Ctrl-C where only it gets the signal)
 * leaves nothing behind: the function processes it started, which do not notice their parent
 * has gone, are killed by their PIDs, and its temporary directories removed.
 */

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A bench-like process: starts what `script` starts, prints it as one JSON line, then waits. */
async function startBench(script: string): Promise<{ pid: number; left: Record<string, unknown> }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((done, failed) => {
    createInterface({ input: child.stdout }).once('line', done);
    child.once('exit', (code) => failed(new Error(`the bench exited (${code}) before it started`)));
  });
  return { pid: child.pid ?? -1, left: JSON.parse(line) as Record<string, unknown> };
}

const built = (file: string) => pathToFileURL(resolve('dist/bench', file)).href;

describe('a bench stopped by a signal', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`kills the function processes it started and removes its temporary directories (${signal})`, async () => {
      const bench = await startBench(`
        import { NOOP_SOURCE, startFunction } from ${JSON.stringify(built('function-host.js'))};
        import { benchTempDir } from ${JSON.stringify(built('stop-on-signal.js'))};
        const dir = await benchTempDir('governor-bench-signal-');
        const fn = await startFunction({ source: NOOP_SOURCE });
        console.log(JSON.stringify({ fn: fn.pid, dir }));
        setInterval(() => {}, 1000);
      `);
      const fn = Number(bench.left['fn']);
      const dir = String(bench.left['dir']);
      try {
        expect(alive(fn)).toBe(true);
        await stat(dir);
        process.kill(bench.pid, signal);
        await waitUntil(
          'the bench to end',
          () => alive(bench.pid),
          (a) => !a,
        );
        await waitUntil(
          'its function process to end',
          () => alive(fn),
          (a) => !a,
          {
            timeoutMs: 10_000,
          },
        );
        await expect(stat(dir)).rejects.toThrow(/ENOENT/);
      } finally {
        // Whatever the outcome, nothing of this test's is left running (each by its own PID).
        for (const pid of [bench.pid, fn]) if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
    }, 60_000);
  }
});
