import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * How `npm run bench` and `npm run bench:function` end when something goes wrong
 * (docs/performance.md, "When a bench fails"): bad input in one line and exit code 2 before
 * anything runs; a step that fails in one line naming the step and why, exit code 1; never a
 * stack trace. Each case picks the cheapest part that reproduces it.
 */

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const bench = (
  file: string,
  options: { cwd?: string; env?: Record<string, string>; args?: string[] } = {},
) =>
  promisify(execFile)(process.execPath, [resolve('dist/bench', file), ...(options.args ?? [])], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    // Refused or failed at once; a bench that ran on regardless is stopped here.
    timeout: 60_000,
    maxBuffer: 16 * 2 ** 20,
  });

/** The error of a run expected to fail: its exit code and stderr. */
async function failure(run: Promise<unknown>): Promise<{ code: number; stderr: string }> {
  try {
    await run;
  } catch (e) {
    const { code, stderr } = e as { code: number; stderr: string };
    return { code, stderr };
  }
  throw new Error('the bench succeeded');
}

/** One line, and nothing of a stack trace in it. */
function expectOneLine(stderr: string): void {
  expect(stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at |node:internal|Node\.js v\d/);
}

describe('a bench that fails', () => {
  it('npm run bench: a step that throws ends in one line naming it, exit code 1', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-fail-'));
    // A file where the results' directory should be: the last step, writing them, fails.
    await writeFile(join(dir, 'bench'), '');
    const { code, stderr } = await failure(
      bench('run.js', {
        cwd: dir,
        env: { BENCH_ONLY: 'quality', BENCH_SCENARIOS: 'traces', BENCH_SEEDS: '7' },
      }),
    );
    expect(code).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toMatch(/^bench failed: writing bench\/results-quality\.json: EEXIST/);
  }, 120_000);

  it('npm run bench:function: a missing file ends in one line naming the step, exit code 1', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-fail-'));
    const { code, stderr } = await failure(bench('function-run.js', { cwd: dir }));
    expect(code).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toMatch(
      /^bench failed: reading the function's resources \(terraform\/variables\.tf\): ENOENT.*terraform\/variables\.tf/,
    );
  }, 60_000);

  it('npm run bench:function: a child process that dies ends in one line without its stack trace', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-fail-'));
    // The resources are there, the built emulator is not: the process started for it dies.
    await mkdir(join(dir, 'terraform'));
    await copyFile(resolve('terraform/variables.tf'), join(dir, 'terraform/variables.tf'));
    const { code, stderr } = await failure(bench('function-run.js', { cwd: dir }));
    expect(code).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toMatch(
      /^bench failed: the cold start: the emulator exited \(1\): .*Cannot find module/,
    );
  }, 60_000);

  it('refuses arguments, which neither bench reads, before running anything', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-fail-'));
    for (const file of ['run.js', 'function-run.js']) {
      const { code, stderr } = await failure(bench(file, { cwd: dir, args: ['quality'] }));
      expect(code, file).toBe(2);
      expect(stderr, file).toMatch(
        /^npm run bench(:function)? takes no arguments .*: not "quality"\n$/,
      );
    }
  }, 60_000);

  it('npm run bench refuses a BENCH_PROGRESS other than 1 or 0 before running anything', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-fail-'));
    for (const only of ['soak', 'quality']) {
      const { code, stderr } = await failure(
        bench('run.js', { cwd: dir, env: { BENCH_ONLY: only, BENCH_PROGRESS: 'yes' } }),
      );
      expect(code, only).toBe(2);
      expect(stderr, only).toBe('BENCH_PROGRESS must be 1 (a line per run) or 0, not "yes"\n');
    }
  }, 60_000);

  it('npm run bench refuses a bad organisation size before it runs the parts before it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-fail-'));
    const { code, stderr } = await failure(
      bench('run.js', { cwd: dir, env: { BENCH_ORG_PROJECTS: 'many' } }),
    );
    expect(code).toBe(2);
    expect(stderr).toBe(
      'BENCH_ORG_PROJECTS must be a whole number from 1 to 100,000, not "many"\n',
    );
    await expect(readFile(join(dir, 'bench', 'results.json'), 'utf8')).rejects.toThrow(/ENOENT/);
  }, 60_000);
});
