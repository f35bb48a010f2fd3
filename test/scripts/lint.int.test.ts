import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../support/wait.js';

/**
 * `npm run lint` as a process (needs `npm run build`): stopped while its checks run, it stops
 * them too. A CI job's timeout or a `kill` reaches the lint's own process only, not the checks it
 * started, which went on in the background for minutes, writing to a closed pipe.
 */
const root = join(import.meta.dirname, '../..');

/** The processes `pid` started (Linux: /proc). */
function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let started: number[] = [];
afterEach(() => {
  // A check this test left running (as the lint did before) is stopped here, by its own id.
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  started = [];
});

describe('npm run lint', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    'stopped by %s, stops the checks it started',
    async (signal, code) => {
      const lint = spawn(process.execPath, [join(root, 'dist/scripts/lint.js')], {
        cwd: root,
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      const exited = new Promise<number | null>((resolve) => lint.on('close', resolve));
      const pid = lint.pid as number;
      started = await waitUntil(
        'the lint to start its checks',
        () => childrenOf(pid),
        (children) => children.length > 0,
      );
      lint.kill(signal);
      expect(await exited).toBe(code);
      await waitUntil(
        'the checks to end',
        () => started.filter(alive),
        (left) => left.length === 0,
        { timeoutMs: 10_000 },
      );
    },
    30_000,
  );
});
