import { performance } from 'node:perf_hooks';
import { settingOrExit, wholeNumberSetting } from '../src/chaos/settings.js';
import { plan } from '../src/core/planner.js';
import { BENCH_AT, syntheticFleet } from './fleet.js';

/**
 * The planner alone, for a profiler: builds the benchmark's fleet (PROFILE_SERVICES services over
 * PROFILE_POOLS pools, default 10,000 over 200) and plans it PROFILE_RUNS times (default 50).
 *
 *   npm run build && node --cpu-prof --cpu-prof-dir=prof dist/bench/profile-planner.js
 */
const size = (name: string, fallback: number, max: number): number =>
  settingOrExit(wholeNumberSetting(process.env, name, fallback, 1, max));
const services = size('PROFILE_SERVICES', 10_000, 1_000_000);
const pools = size('PROFILE_POOLS', 200, 100_000);
const runs = size('PROFILE_RUNS', 50, 100_000);
const { snapshot, policy } = syntheticFleet(services, pools);
// Wall time, and the process's CPU time (all its threads, the garbage collector's included): on a
// loaded machine the CPU time says more about the planner's own work than the wall time does.
const wall: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < runs; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  plan(snapshot, policy, BENCH_AT);
  wall.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
console.log(
  `${services} services / ${pools} pools, ${runs} runs: median ${median(wall).toFixed(1)} ms wall, ${median(cpu).toFixed(1)} ms CPU; min ${Math.min(...wall).toFixed(1)} ms wall`,
);
