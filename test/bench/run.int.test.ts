import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * `npm run bench` with BENCH_ONLY (bench/run.ts): a part run alone reports that part, and no
 * verdict on a part it did not run.
 */

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('npm run bench, one part', () => {
  it('BENCH_ONLY=quality says nothing of the planner it did not time', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-run-'));
    // The built bench, in a directory of its own: it writes bench/results-quality.json there.
    const { stdout } = await promisify(execFile)(process.execPath, [resolve('dist/bench/run.js')], {
      cwd: dir,
      env: {
        ...process.env,
        BENCH_ONLY: 'quality',
        BENCH_SCENARIOS: 'traces',
        BENCH_SEEDS: '7',
      },
      maxBuffer: 16 * 2 ** 20,
    });
    expect(stdout).toContain('Decision quality');
    expect(stdout).not.toContain('Planner');
    expect(stdout).not.toContain('10,000 services');
    expect(stdout).not.toContain('NaN');
    const written = JSON.parse(
      await readFile(join(dir, 'bench', 'results-quality.json'), 'utf8'),
    ) as { planner: { rows: unknown[] } };
    expect(written.planner.rows).toEqual([]);
  }, 120_000);

  it('refuses a subset of no seed before running anything, and writes no results', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-run-'));
    const run = promisify(execFile)(process.execPath, [resolve('dist/bench/run.js')], {
      cwd: dir,
      env: { ...process.env, BENCH_ONLY: 'quality', BENCH_SEEDS: ',' },
    });
    await expect(run).rejects.toMatchObject({ code: 2, stderr: 'BENCH_SEEDS: no seed in ","\n' });
    await expect(readFile(join(dir, 'bench', 'results-quality.json'), 'utf8')).rejects.toThrow(
      /ENOENT/,
    );
  }, 60_000);

  it('refuses SOAK_SNAPSHOTS that are not run numbers before soaking anything, and writes no results', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-run-'));
    for (const target of ['regional', 'org']) {
      const run = promisify(execFile)(process.execPath, [resolve('dist/bench/run.js')], {
        cwd: dir,
        env: { ...process.env, BENCH_ONLY: 'soak', SOAK_TARGET: target, SOAK_SNAPSHOTS: '20,x' },
      });
      await expect(run, target).rejects.toMatchObject({
        code: 2,
        stderr:
          'SOAK_SNAPSHOTS must list whole numbers of runs or rounds from 1, as 20,60: not "x"\n',
      });
    }
    await expect(readFile(join(dir, 'bench', 'results-soak.json'), 'utf8')).rejects.toThrow(
      /ENOENT/,
    );
    await expect(readFile(join(dir, 'bench', 'results-org-soak.json'), 'utf8')).rejects.toThrow(
      /ENOENT/,
    );
  }, 60_000);
});
