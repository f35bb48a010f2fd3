import { performance } from 'node:perf_hooks';
import { plan } from '../src/core/planner.js';
import { BENCH_AT, syntheticFleet } from './fleet.js';

export interface PlannerRow {
  services: number;
  pools: number;
  medianMs: number;
  minMs: number;
  runs: number;
  changes: number;
}

/** Times the planner alone (parsing excluded) on synthetic fleets of growing size. */
export function benchPlanner(
  sizes: readonly [number, number][] = [
    [1_000, 10],
    [10_000, 200],
    [100_000, 2_000],
  ],
): PlannerRow[] {
  const rows: PlannerRow[] = [];
  for (const [services, pools] of sizes) {
    const { snapshot, policy } = syntheticFleet(services, pools);
    const runs = services >= 100_000 ? 5 : 15;
    plan(snapshot, policy, BENCH_AT); // warm-up: JIT and caches
    plan(snapshot, policy, BENCH_AT);
    const times: number[] = [];
    let changes = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const p = plan(snapshot, policy, BENCH_AT);
      times.push(performance.now() - t0);
      changes = p.changes.length;
    }
    times.sort((a, b) => a - b);
    rows.push({
      services,
      pools,
      medianMs: round(times[Math.floor(times.length / 2)] ?? NaN),
      minMs: round(times[0] ?? NaN),
      runs,
      changes,
    });
  }
  return rows;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
