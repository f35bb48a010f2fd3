import { performance } from 'node:perf_hooks';
import { plan } from '../src/core/planner.js';
import { BENCH_AT, syntheticFleet } from './fleet.js';

export interface PlannerRow {
  services: number;
  pools: number;
  medianMs: number;
  minMs: number;
  /**
   * Median CPU time of the process over one plan (the garbage collector's threads included): on a
   * shared, loaded machine it varies far less than the wall time, which includes waiting for a core.
   */
  cpuMedianMs: number;
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
    const cpu: number[] = [];
    let changes = 0;
    for (let i = 0; i < runs; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const p = plan(snapshot, policy, BENCH_AT);
      times.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      changes = p.changes.length;
    }
    times.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    rows.push({
      services,
      pools,
      medianMs: round(times[Math.floor(times.length / 2)] ?? NaN),
      minMs: round(times[0] ?? NaN),
      cpuMedianMs: round(cpu[Math.floor(cpu.length / 2)] ?? NaN),
      runs,
      changes,
    });
  }
  return rows;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
