import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_SIMULATED_SERVICE_MINUTES } from '../../src/simulate/scenario.js';
import { cliIn } from '../support/cli-run.js';

const dir = mkdtempSync(join(tmpdir(), 'simulate-size-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const lines = (n: number, line: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => line(i)).join('\n');

/** The hours a refusal advises, and the warm-up its minutes include. */
function advice(stderr: string, hoursAsked: number): { hours: number | null; warmup: number } {
  const minutes = Number(/over (\d+) minutes \(warm-up included\)/.exec(stderr)?.[1]);
  const hours = /at most ([\d.]+) h/.exec(stderr)?.[1];
  return {
    hours: hours === undefined ? null : Number(hours),
    warmup: minutes - Math.ceil(hoursAsked * 60),
  };
}

describe('a simulation too large to play', () => {
  it('advises a length that fits once the warm-up is counted, as the refusal counts it', async () => {
    const fleet = file(
      'fleet-100.yaml',
      `version: 1\nprojects:\n  - id: sim-project\n    pools: [{ region: us-central1, quota: 10 }]\n    services:\n${lines(100, (i) => `      - { name: s${i}, region: us-central1, gpu: { accelerator: nvidia-l4 }, maxInstances: 1, demand: 1 }`)}\n`,
    );
    const scenario = file(
      'scenario-800.yaml',
      `scenario: 1\nproject: sim-project\nquota: 10\nhours: 24\nservices:\n${lines(800, (i) => `  - { name: s${i}, maxInstances: 1, demand: { shape: { kind: constant, value: 1 } } }`)}\n`,
    );
    for (const [path, units, hoursAsked, flags] of [
      [fleet, 100, 200, ['--hours', '200']],
      [scenario, 800, 24, []],
    ] as const) {
      const r = await cliIn(
        process.env,
        'simulate',
        '--policy',
        'examples/sim-policy.yaml',
        '--fleet',
        path,
        ...flags,
      );
      expect(r.code).toBe(2);
      const { hours, warmup } = advice(r.stderr, hoursAsked);
      expect(hours).not.toBeNull();
      // Taken at its word, the advice plays: its hours and the warm-up fit the limit.
      expect(units * (warmup + Math.ceil((hours ?? 0) * 60))).toBeLessThanOrEqual(
        MAX_SIMULATED_SERVICE_MINUTES,
      );
    }
  });

  it('never advises the length that was just refused', async () => {
    // 10,000 services fit 100 minutes: an hour and its hour of warm-up do not.
    const scenario = file(
      'scenario-10000.yaml',
      `scenario: 1\nproject: sim-project\nquota: 10\nhours: 1\nservices:\n${lines(10_000, (i) => `  - { name: s${i}, maxInstances: 1, demand: { shape: { kind: constant, value: 1 } } }`)}\n`,
    );
    const r = await cliIn(
      process.env,
      'simulate',
      '--policy',
      'examples/sim-policy.yaml',
      '--fleet',
      scenario,
    );
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(2);
    const { hours, warmup } = advice(r.stderr, 1);
    if (hours !== null) {
      expect(hours).toBeLessThan(1);
      expect(10_000 * (warmup + Math.ceil(hours * 60))).toBeLessThanOrEqual(
        MAX_SIMULATED_SERVICE_MINUTES,
      );
    }
  }, 30_000);
});
