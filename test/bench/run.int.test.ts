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

  it("refuses SOAK_SNAPSHOTS past the soak's last run or round, which would never be taken", async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-bench-run-'));
    for (const [target, last] of [
      ['regional', '300 runs'],
      ['org', '60 rounds'],
    ] as const) {
      const run = promisify(execFile)(process.execPath, [resolve('dist/bench/run.js')], {
        cwd: dir,
        env: { ...process.env, BENCH_ONLY: 'soak', SOAK_TARGET: target, SOAK_SNAPSHOTS: '20,400' },
      });
      await expect(run, target).rejects.toMatchObject({
        code: 2,
        stderr: `SOAK_SNAPSHOTS: 400 is past the soak's ${last} (SOAK_RUNS), so no snapshot would be taken after it\n`,
      });
    }
    await expect(readFile(join(dir, 'bench', 'results-soak.json'), 'utf8')).rejects.toThrow(
      /ENOENT/,
    );
  }, 60_000);

  it('the benches run directly refuse a size that is not a whole number before running anything', async () => {
    const cases = [
      [
        'profile-planner.js',
        'PROFILE_RUNS',
        'ten',
        'PROFILE_RUNS must be a whole number from 1 to 100,000, not "ten"\n',
      ],
      [
        'profile-planner.js',
        'PROFILE_SERVICES',
        '1e4',
        'PROFILE_SERVICES must be a whole number from 1 to 1,000,000, not "1e4"\n',
      ],
      [
        'profile-planner.js',
        'PROFILE_POOLS',
        '0',
        'PROFILE_POOLS must be a whole number from 1 to 100,000, not "0"\n',
      ],
      [
        'org.js',
        'BENCH_ORG_PROJECTS',
        '-5',
        'BENCH_ORG_PROJECTS must be a whole number from 1 to 100,000, not "-5"\n',
      ],
      [
        'org.js',
        'BENCH_ORG_CONCURRENCY',
        'many',
        'BENCH_ORG_CONCURRENCY must be a whole number from 1 to 100,000, not "many"\n',
      ],
      [
        'org-procs.js',
        'BENCH_ORG_WORKERS',
        '2.5',
        'BENCH_ORG_WORKERS must be a whole number from 1 to 100,000, not "2.5"\n',
      ],
      [
        'org-procs.js',
        'BENCH_ORG_INSTANCES',
        'x',
        'BENCH_ORG_INSTANCES must be a whole number from 1 to 100,000, not "x"\n',
      ],
    ] as const;
    for (const [file, name, value, stderr] of cases) {
      const run = promisify(execFile)(process.execPath, [resolve('dist/bench', file)], {
        env: { ...process.env, [name]: value },
        // Refused at once; a bench that ran anyway is stopped here rather than left running.
        timeout: 20_000,
      });
      await expect(run, `${file} ${name}=${value}`).rejects.toMatchObject({ code: 2, stderr });
    }
  }, 180_000);
});
