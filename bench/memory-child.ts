import { parsePolicy } from '../src/core/policy.js';
import { FleetModel } from '../src/emulator/model.js';
import { validateFleet } from '../src/emulator/fleet.js';
import { reconcile } from '../src/reconcile/reconcile.js';
import { createMemoryStateStore } from '../src/adapters/memory/state-store.js';
import { createSimPorts } from '../src/emulator/ports.js';

/**
 * Run in a child process by bench/memory.ts: one governor run (observe, plan, write) over 10,000
 * services on the in-memory ports, printing the peak resident set size seen, as JSON.
 */
const SERVICES = Number(process.argv[2] ?? 10_000);
let peak = process.memoryUsage().rss;
const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
const regions = Array.from({ length: 20 }, (_, i) => `bench-region${i + 1}`);
const fleet = validateFleet({
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 35,
  projects: [
    {
      id: 'bench-project',
      pools: regions.map((region) => ({
        region,
        quota: Math.ceil((SERVICES / regions.length) * 2),
      })),
      services: Array.from({ length: SERVICES }, (_, i) => ({
        name: `svc-${i}`,
        region: regions[i % regions.length] ?? 'bench-region1',
        gpu: {},
        maxInstances: 1 + (i % 4),
        demand: i % 3,
      })),
    },
  ],
});
const baseline = process.memoryUsage().rss;
const model = new FleetModel(fleet, { historyMinutes: 60 });
const policy = parsePolicy({
  version: 1,
  projects: ['bench-project'],
  services: [{ match: {} }],
  limits: { maxChangesPerRun: 10_000, writesPerMinute: 6000 },
});
const t0 = performance.now();
const report = await reconcile(
  policy,
  {
    ports: createSimPorts(model, { lagMs: 180_000 }),
    store: createMemoryStateStore(),
    sink: null,
    log: { log: () => undefined },
    now: async () => model.now,
    wallClock: () => model.now,
    sleep: async () => undefined,
  },
  { runId: 'bench-memory', deadlineMs: 240_000 },
);
const runMs = performance.now() - t0;
peak = Math.max(peak, process.memoryUsage().rss);
clearInterval(sample);
process.stdout.write(
  JSON.stringify({
    services: SERVICES,
    peakRssMb: peak / 2 ** 20,
    baselineRssMb: baseline / 2 ** 20,
    runMs,
    writes: report.writes.filter((w) => w.outcome === 'written').length,
    outcome: report.outcome,
  }) + '\n',
);
