import { createMonitoringAdapter } from '../src/adapters/monitoring.js';
import { durationMs } from '../src/core/duration.js';
import { parsePolicy } from '../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../src/emulator/index.js';

/**
 * The emulator for the function benchmarks (bench/function-host.ts), in a process of its own, so
 * that neither the fleet nor the emulator's answers count in the function's memory:
 *
 *   node dist/bench/emulator-child.js SERVICES | FLEET_FILE
 *
 * Builds a fleet of SERVICES GPU services over BENCH_REGIONS regions of one project (or reads a
 * fleet file), starts the emulator on it (virtual clock stopped, operations done at once), prints
 * one JSON line with the variables that point a governor at it, and runs until SIGTERM or until
 * its stdin closes (its parent has gone).
 *
 * For a fleet of SERVICES, the emulator's Monitoring answers are computed before the line is
 * printed and then served from memory (`memoizeMetrics`): at 10,000 services the emulator takes
 * longer to compute one than the governor's clients wait for it (20 s an attempt), and how fast the
 * emulator computes is not what the bench measures. The warm-up asks what a run of the default
 * policy asks (its lookback and staleAfter windows, at the emulator's stopped clock).
 */

export const BENCH_PROJECT = 'bench-project';
export const BENCH_REGIONS = 20;
export const BENCH_TOPIC = `projects/${BENCH_PROJECT}/topics/governor-alerts`;

export function benchFleet(services: number) {
  const regions = Array.from({ length: BENCH_REGIONS }, (_, i) => `bench-region${i + 1}`);
  return {
    start: '2026-11-27T12:00:00Z',
    warmupMinutes: 35,
    topics: [BENCH_TOPIC],
    projects: [
      {
        id: BENCH_PROJECT,
        // A fleet in its steady state: caps of 2 to 4 instances, demands of 0 to 2 within them,
        // quotas with room. The run still changes many caps (idle services come down), but few
        // services are starved: every alert is a condition the state store keeps.
        pools: regions.map((region) => ({
          region,
          quota: Math.ceil((services / regions.length) * 3),
        })),
        services: Array.from({ length: services }, (_, i) => ({
          name: `svc-${i}`,
          region: regions[i % regions.length] ?? 'bench-region1',
          gpu: {},
          maxInstances: 2 + (Math.floor(i / BENCH_REGIONS) % 3),
          demand: i % 3,
          // Configured as Google recommends (docs/rules.md), so that the audit finds nothing: a
          // fleet where every service is misconfigured would alert 10,000 times in one run.
          startupProbeSeconds: 240,
        })),
      },
    ],
  };
}

const isMain = process.argv[1] === new URL(import.meta.url).pathname;
if (isMain) {
  const arg = process.argv[2] ?? '1000';
  const services = Number(arg);
  const generated = Number.isInteger(services) && services > 0;
  const emulator = await startEmulator({
    fleet: generated ? benchFleet(services) : arg,
    speed: 'manual',
    operationDelayMs: 0,
    // The run looks back 30 minutes (the policy's default lookback): an hour of history is enough.
    historyMinutes: 60,
    memoizeMetrics: generated,
  });
  if (generated) await warmMetrics(emulator);
  process.stdout.write(JSON.stringify({ env: emulator.env }) + '\n');
  const stop = () => {
    void emulator.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The parent holds our stdin: when it ends, the parent is gone, and so is the emulator.
  process.stdin.once('end', stop);
  process.stdin.resume();
}

/** Asks the emulator, once, the four metric queries of a default policy's observation. */
async function warmMetrics(emulator: RunningEmulator): Promise<void> {
  const defaults = parsePolicy({ version: 1, projects: [BENCH_PROJECT] }).defaults;
  const now = emulator.model.now;
  const window = { startMs: now - durationMs(defaults.lookback), endMs: now };
  const recent = { startMs: now - durationMs(defaults.staleAfter), endMs: now };
  const monitoring = createMonitoringAdapter({
    emulatorHost: emulator.host,
    retry: { attemptTimeoutMs: 30 * 60_000 },
  });
  try {
    await monitoring.instanceCounts(BENCH_PROJECT, window);
    await monitoring.gpuUtilization(BENCH_PROJECT, recent);
    await monitoring.servedRequests(BENCH_PROJECT, window);
    await monitoring.refusedRequests(BENCH_PROJECT, window);
  } finally {
    await monitoring.close();
  }
}
