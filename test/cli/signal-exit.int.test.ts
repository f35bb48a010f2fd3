import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Ctrl-C and SIGTERM stop a command that is not writing at once, even while it waits on a file
 * for good: a named pipe no one writes, given as `--policy`. Node's process.exit waits for every
 * file call in flight, so before, the process outlived both signals and only SIGKILL ended it.
 */

describe('a signal while a command waits on a file no one writes', () => {
  let dir: string;
  let fifo: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-signal-'));
    fifo = join(dir, 'policy.yaml');
    execFileSync('mkfifo', [fifo]);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} stops it, as the signal itself (the shell's 128 + its number)`, async () => {
      const child = spawn(process.execPath, ['bin/governor.js', 'validate', '--policy', fifo], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // Long enough for the CLI to be waiting on the pipe's open.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      child.kill(signal);
      const ended = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve({ code: null, signal: 'still running 10 s after the signal' });
        }, 10_000);
        child.on('close', (code, s) => {
          clearTimeout(timer);
          resolve({ code, signal: s });
        });
      });
      expect(ended).toEqual({ code: null, signal });
      expect(stderr).not.toMatch(/\bat .*\.js:\d+/);
    }, 20_000);
  }
});
