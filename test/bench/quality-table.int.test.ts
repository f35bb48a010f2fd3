import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

/** `node dist/bench/quality-table.js [file]`: a bench run's quality rows as Markdown tables. */

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const table = (file: string) =>
  promisify(execFile)(process.execPath, [resolve('dist/bench/quality-table.js'), file]);

describe('the quality tables of a bench run', () => {
  it('show a run with no gap to close, where the governor refused more, as worse than any gap closed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-quality-table-'));
    // The equal split refused as little as the best at the tick; the governor refused more.
    const run = (seed: number, governor: number) => ({
      kind: 'traces',
      quotaFactor: 1,
      seed,
      refused: { governor, 'equal-split': 40, 'cadence-oracle': 40 },
      refusedTop: { governor, 'cadence-oracle': 40 },
      gapClosed: null,
      gapClosedByPolicyOracle: null,
      writesPerServiceHour: 0.5,
      reversalsPerServiceDay: 0,
      invariantViolations: 0,
      failedRuns: 0,
      causes: null,
    });
    const file = join(dir, 'results-quality.json');
    await writeFile(file, JSON.stringify({ quality: [run(7, 40), run(11, 300)] }));
    const { stdout } = await table(file);
    const cells = stdout
      .split('\n')
      .find((l) => l.startsWith('| traces alone | 1× |'))
      ?.split('|')
      .map((c) => c.trim());
    expect(cells?.slice(3, 5)).toEqual(['-Infinity', '-Infinity']);
  });

  it('round each figure toward its worse side, so one just short of its target never reads as met', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-quality-table-'));
    const run = (seed: number, gapClosed: number, writesPerServiceHour: number) => ({
      kind: 'mixed',
      quotaFactor: 0.8,
      seed,
      refused: { governor: 100, 'equal-split': 200, 'cadence-oracle': 50 },
      refusedTop: { governor: 0, 'cadence-oracle': 0 },
      gapClosed,
      gapClosedByPolicyOracle: null,
      writesPerServiceHour,
      reversalsPerServiceDay: 0.29,
      invariantViolations: 0,
      failedRuns: 0,
      causes: null,
    });
    const file = join(dir, 'results-quality.json');
    // Worst seed 0.796 (a miss of ≥ 0.8), mean 0.8975; 1.201 writes a service an hour.
    await writeFile(file, JSON.stringify({ quality: [run(7, 0.796, 1.2), run(42, 0.999, 1.201)] }));
    const { stdout } = await table(file);
    const cells = stdout
      .split('\n')
      .find((l) => l.startsWith('| mixed fleet | 0.8× |'))
      ?.split('|')
      .map((c) => c.trim());
    expect(cells?.slice(3, 7)).toEqual(['0.89', '0.79', '1.21', '0.29']);
  });

  it.each([
    ['missing', null, /missing\.json: cannot read it \(ENOENT/],
    ['not JSON', '{', /not-JSON\.json: not JSON/],
    ['without rows', '{}', /without-rows\.json: no "quality" rows/],
  ])('refuse a file %s in one line, without a stack trace', async (what, text, message) => {
    dir = await mkdtemp(join(tmpdir(), 'governor-quality-table-'));
    const name = what.replace(/ /g, '-') + '.json';
    if (text !== null) await writeFile(join(dir, name), text);
    const failed = await table(join(dir, name)).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(2);
    const stderr = failed?.stderr ?? '';
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});
