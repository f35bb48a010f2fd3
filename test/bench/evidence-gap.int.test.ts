import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** `node dist/bench/evidence-gap.js`: its settings are checked before anything is played. */
const run = (env: Record<string, string>) =>
  promisify(execFile)(process.execPath, [resolve('dist/bench/evidence-gap.js')], {
    env: { ...process.env, ...env },
  }).then(
    () => null,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

describe('the evidence-gap analysis, given settings it cannot run with', () => {
  it.each([
    [{ SEEDS: 'seven' }, /^SEEDS must be a comma-separated list of whole numbers, not "seven"$/],
    [{ SEEDS: ',' }, /^SEEDS must be/],
    [{ FACTORS: '0' }, /^FACTORS must be a comma-separated list of quota factors above 0/],
    [{ SCENARIO: 'noisy', FACTORS: 'x' }, /^FACTORS must be/],
    [{ SCENARIO: 'toString' }, /^SCENARIO: unknown toString \(mixed, traces, cut, noisy\)$/],
    [{ VARIANTS: 'nope' }, /^VARIANTS: unknown nope /],
    [{ SCENARIO: 'noisy', KINDS: 'nope' }, /^KINDS: unknown nope \(observed, /],
    [{ VARIANTS: ',' }, /^VARIANTS: no name in ","$/],
    [{ VARIANTS: 'governor,governor' }, /^VARIANTS: governor twice$/],
    [{ SCENARIO: 'noisy', KINDS: ' , ' }, /^KINDS: no name in " , "$/],
  ])('%o: refused in one line, exit 2, nothing played', async (env, message) => {
    const failed = await run(env);
    expect(failed?.code).toBe(2);
    expect(failed?.stdout).toBe('');
    const lines = (failed?.stderr ?? '').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});
