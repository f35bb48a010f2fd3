import { describe, expect, it } from 'vitest';
import { BENCH_SEEDS } from '../../src/simulate/scenarios.js';
import { qualitySubset, SCENARIO_KINDS } from '../../bench/quality.js';

/** The decision-quality subset `npm run bench` runs, from BENCH_SCENARIOS and BENCH_SEEDS. */

describe('the decision-quality subset', () => {
  it('is every scenario and every bench seed when neither is set', () => {
    expect(qualitySubset({})).toEqual({ kinds: [...SCENARIO_KINDS], seeds: [...BENCH_SEEDS] });
  });

  it('is the scenarios and seeds listed', () => {
    expect(qualitySubset({ BENCH_SCENARIOS: 'traces, noisy', BENCH_SEEDS: '7,11' })).toEqual({
      kinds: ['traces', 'noisy'],
      seeds: [7, 11],
    });
  });

  it.each([
    [{ BENCH_SEEDS: ',' }, /BENCH_SEEDS: no seed/],
    [{ BENCH_SCENARIOS: ' , ' }, /BENCH_SCENARIOS: no scenario/],
    [{ BENCH_SEEDS: '7,x' }, /BENCH_SEEDS: x is not a whole number/],
    [{ BENCH_SEEDS: '7.5' }, /BENCH_SEEDS: 7.5 is not a whole number/],
    [{ BENCH_SEEDS: '7,7' }, /BENCH_SEEDS: 7 twice/],
    [{ BENCH_SCENARIOS: 'mixed,bogus' }, /BENCH_SCENARIOS: unknown scenario bogus/],
    [{ BENCH_SCENARIOS: 'cut,cut' }, /BENCH_SCENARIOS: cut twice/],
  ])('refuses %o rather than run an empty or miscounted subset', (env, message) => {
    expect(() => qualitySubset(env)).toThrow(message);
  });
});
