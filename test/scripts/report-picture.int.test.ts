import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../support/wait.js';

/**
 * `npm run report-picture` as a process (needs `npm run build`), in a directory of its own with
 * the examples it reads and a temporary directory (TMPDIR) of its own: whatever ends it, it
 * leaves no temporary directory behind, and a failure is one line, not a stack trace.
 */
const root = join(import.meta.dirname, '../..');

let scratch: string | undefined;
afterEach(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts the script; `exited` settles when it ends. */
function start(env: NodeJS.ProcessEnv): {
  temp: string;
  cwd: string;
  kill: (signal: NodeJS.Signals) => void;
  exited: Promise<Exit>;
} {
  scratch = mkdtempSync(join(tmpdir(), 'governor-report-picture-test-'));
  const cwd = join(scratch, 'project');
  const temp = join(scratch, 'tmp');
  mkdirSync(join(cwd, 'docs'), { recursive: true });
  mkdirSync(temp);
  symlinkSync(join(root, 'examples'), join(cwd, 'examples'), 'dir');
  const child = spawn(process.execPath, [join(root, 'dist/scripts/report-picture.js')], {
    cwd,
    env: { ...process.env, TMPDIR: temp, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { temp, cwd, kill: (signal) => child.kill(signal), exited };
}

describe('npm run report-picture', () => {
  it('without Chromium: one line naming the binary and CHROMIUM, exit 1, no temporary directory left', async () => {
    const run = start({ CHROMIUM: '/nonexistent/chromium' });
    const exit = await run.exited;
    expect(exit.stderr).toContain('/nonexistent/chromium');
    expect(exit.stderr).toContain('CHROMIUM');
    expect(exit.stderr.trim().split('\n'), exit.stderr).toHaveLength(1);
    expect(exit.code).toBe(1);
    expect(readdirSync(run.temp)).toEqual([]);
    expect(readdirSync(join(run.cwd, 'docs'))).toEqual([]);
  }, 60_000);

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'stopped by %s while it simulates, leaves no temporary directory',
    async (signal) => {
      // A binary that runs, so that the script gets to its simulation; it is stopped there, before
      // any browser is launched.
      const run = start({ CHROMIUM: process.execPath });
      await waitUntil('its temporary directory', () => readdirSync(run.temp).length > 0);
      run.kill(signal);
      const exit = await run.exited;
      expect(exit.stderr).not.toMatch(/\n\s+at /);
      expect(exit.code, JSON.stringify(exit)).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(readdirSync(run.temp)).toEqual([]);
    },
    60_000,
  );
});
