import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** `node dist/bench/alert-noise.js`: arguments it cannot run with are refused before anything plays. */
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [resolve('dist/bench/alert-noise.js'), ...args], {
    timeout: 30_000,
  }).then(
    () => null,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

describe('the alert-noise analysis, given arguments it cannot run with', () => {
  it.each([[['nope']], [['toString']], [['mixed', '0']], [['mixed', '48', 'x']]])(
    '%o: refused in one line, exit 2, nothing played',
    async (args) => {
      const failed = await run(args);
      expect(failed?.code).toBe(2);
      expect(failed?.stdout).toBe('');
      const lines = (failed?.stderr ?? '').trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^usage: alert-noise\.js \[mixed\|noisy\|cut\]/);
    },
  );
});
