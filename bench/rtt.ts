import { setTimeout as delay } from 'node:timers/promises';
import { createGooglePorts } from '../src/adapters/index.js';
import { parsePolicy } from '../src/core/policy.js';
import { startEmulator } from '../src/emulator/index.js';
import { reconcile } from '../src/reconcile/reconcile.js';
import { createMemoryStateStore } from '../src/adapters/memory/state-store.js';

/**
 * One governor run against the emulator with every RPC delayed by an injected round-trip time:
 * 100 services in one region, 10 of which need a change (5 down, 5 up). The run's wall time in
 * RTTs says how many round trips it waits for one after another (parallel reads count once).
 * Pacing is lifted (writesPerMinute high) so that only round trips are measured.
 *
 * A dry run first warms the clients (they load their protos on the first call) and the emulator
 * (which builds the fleet's metric history on the first read), so that the figure is round trips,
 * not start-up. `rounds` counts the waves of calls the run waited for, from the emulator's call
 * log: a call that starts at least one RTT after the first call of the current wave starts the
 * next. It does not depend on how busy the machine is, as the wall time does.
 */
export async function benchRtt(rttMs = 50): Promise<{
  rttMs: number;
  wallMs: number;
  ratio: number;
  rounds: number;
  rpcs: number;
  writes: number;
  /** The run's outcome: its figures are judged only when it is `ok` (bench/rtt-verdict.ts). */
  outcome: string;
}> {
  const services = Array.from({ length: 100 }, (_, i) => ({
    name: `svc-${String(i).padStart(3, '0')}`,
    region: 'us-central1',
    gpu: {},
    // The policy's max is 2: 5 services above it come down, 5 saturated at 1 go up, 90 stay.
    maxInstances: i < 5 ? 6 : i < 10 ? 1 : 2,
    demand: i < 5 ? 1 : i < 10 ? 3 : 1,
  }));
  const emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 35,
      projects: [{ id: 'bench-project', pools: [{ region: 'us-central1', quota: 240 }], services }],
    },
    speed: 'manual',
    operationDelayMs: 0,
    pageSize: 100,
    // The emulator runs in this process: its Monitoring answers, computed by the warm-up's reads
    // at the same stopped clock, are served again from memory, so that the wall time is the
    // governor's round trips and CPU rather than the emulator's work (an hour of history covers
    // the 30-minute lookback).
    historyMinutes: 60,
    memoizeMetrics: true,
    faults: async () => {
      await delay(rttMs);
      return undefined;
    },
  });
  const ports = createGooglePorts({ emulatorHost: emulator.host });
  try {
    const policy = parsePolicy({
      version: 1,
      projects: ['bench-project'],
      regions: ['us-central1'],
      defaults: { min: 1, max: 2, headroom: 0 },
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
    });
    const deps = {
      ports,
      store: createMemoryStateStore(),
      sink: null,
      log: { log: () => undefined },
      now: async () => emulator.now().getTime(),
    };
    await reconcile(policy, deps, { runId: 'bench-warm-up', deadlineMs: 240_000, mode: 'dry-run' });
    emulator.resetCalls();
    const t0 = performance.now();
    const report = await reconcile(policy, deps, { runId: 'bench-rtt', deadlineMs: 240_000 });
    const wallMs = performance.now() - t0;
    const writes = report.writes.filter((w) => w.outcome === 'written').length;
    const calls = emulator.calls();
    return {
      rttMs,
      wallMs,
      ratio: wallMs / rttMs,
      rounds: waves(
        calls.map((c) => Date.parse(c.wallTime)),
        rttMs,
      ),
      rpcs: calls.length,
      writes,
      outcome: report.outcome,
    };
  } finally {
    await ports.close();
    await emulator.stop();
  }
}

/** Waves of calls: each starts with a call at least `rttMs` after the previous wave's first. */
function waves(starts: readonly number[], rttMs: number): number {
  let count = 0;
  let waveStart = -Infinity;
  for (const t of [...starts].sort((a, b) => a - b)) {
    if (t - waveStart >= rttMs) {
      count += 1;
      waveStart = t;
    }
  }
  return count;
}
