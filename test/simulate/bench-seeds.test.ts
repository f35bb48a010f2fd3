import { describe, expect, it } from 'vitest';
import { FleetModel } from '../../src/emulator/model.js';
import { demandTable } from '../../src/simulate/context.js';
import { buildScenario, parseScenario, type ScenarioInput } from '../../src/simulate/scenario.js';
import {
  BENCH_SEEDS,
  mixedFleetScenario,
  noisyNeighbourScenario,
  quotaCutScenario,
  TRACE_DIR,
  tracesAloneScenario,
} from '../../src/simulate/scenarios.js';

/**
 * The bench's seeds (docs/simulation.md "Bench"): at least five, and each gives its scenario a
 * different demand (the noisy neighbour once played the same day under every seed). What a seed
 * varies in the traces alone is only where each one-hour loop of requests starts.
 */

async function demandOf(scenario: ScenarioInput): Promise<Map<string, Int32Array>> {
  const parsed = parseScenario(scenario);
  const input = await buildScenario(parsed, TRACE_DIR);
  const probe = new FleetModel(input.fleet, { traces: input.traces, historyMinutes: 1 });
  return demandTable(input, probe, parsed.hours * 60);
}

const key = (t: Map<string, Int32Array>) =>
  [...t.entries()].map(([id, w]) => `${id}:${w.join(',')}`).join('|');

describe('the bench seeds', () => {
  it('are at least five, and each plays a scenario a different demand', async () => {
    expect(BENCH_SEEDS.length).toBeGreaterThanOrEqual(5);
    for (const build of [
      (seed: number) => mixedFleetScenario(0.8, 6, seed),
      (seed: number) => tracesAloneScenario(0.8, 6, seed),
      (seed: number) => noisyNeighbourScenario(0.8, 6, seed),
      (seed: number) => quotaCutScenario(0.8, 6, seed),
    ]) {
      const seen = new Set<string>();
      for (const seed of BENCH_SEEDS) seen.add(key(await demandOf(build(seed))));
      expect(seen.size).toBe(BENCH_SEEDS.length);
    }
  });

  it('replay one hour of requests in the traces alone: each service loops within the hour', async () => {
    // The trace files span 59 (conversation) and 58 (code) minutes: every service's demand repeats
    // with that period, whatever the seed, as docs/simulation.md "Bench" says.
    for (const seed of [BENCH_SEEDS[0], BENCH_SEEDS[1]]) {
      const table = await demandOf(tracesAloneScenario(0.8, 6, seed));
      for (const [id, w] of table) {
        const period = id.includes('conv') ? 59 : 58;
        for (let m = period; m < w.length; m++)
          expect(w[m], `${id} minute ${m}`).toBe(w[m - period]);
      }
    }
  });
});
