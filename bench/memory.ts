import { parsePolicy } from '../src/core/policy.js';
import { startFirestoreEmulator } from '../test/support/firestore-emulator.js';
import { BENCH_PROJECT, BENCH_TOPIC } from './emulator-child.js';
import {
  benchPolicyJson,
  median,
  startEmulatorProcess,
  startFunction,
  type ProcessMemory,
  type RunAnswer,
} from './function-host.js';

/**
 * The function's memory where it matters: functions-framework on the built function in a process
 * of its own (as deployed), running against the emulator in another process over a fleet of
 * `services` services. Each repeat is a fresh function process that serves two runs, the way a
 * warm instance serves the scheduler's next tick:
 *
 * - peak RSS: the function process's resident high-water mark once the first run has answered
 *   (the framework, the Google clients, one observation, plan, writes and alerts);
 * - heap after a run: the V8 heap in use after a full garbage collection, i.e. what the process
 *   still holds between runs; after the second run it shows whether anything piles up.
 *
 * The policy governs every service with the default limits (50 changes a run) but the pacing of
 * writes lifted (it only waits, neither allocating nor computing), and publishes its alerts to the
 * emulator's Pub/Sub; the state is kept in Firestore (Google's emulator, a JVM started here and
 * stopped by its PID), as the Terraform module deploys it.
 */

export interface MemoryRow {
  services: number;
  repeats: number;
  /** Medians over the repeats, in MiB (2^20 bytes). */
  idleRssMb: number;
  idleHeapMb: number;
  peakRssMb: number;
  heapAfterRunMb: number;
  heapAfterSecondRunMb: number;
  peakRssAfterSecondRunMb: number;
  /** Medians over the repeats, ms: the first run includes loading what a run needs. */
  firstRunMs: number;
  secondRunMs: number;
  /** Median CPU time (user + system) the function spent on the first run (loading included). */
  cpuPerRunMs: number;
  /** The same, on the second run. */
  cpuSecondRunMs: number;
  /** The V8 heap limit the function ran with (--max-old-space-size), or null for Node's own. */
  heapLimitMb: number | null;
  written: number;
  outcome: string;
  samples: Array<{
    idle: ProcessMemory;
    afterRun: ProcessMemory;
    afterSecondRun: ProcessMemory;
    firstRunMs: number;
    secondRunMs: number;
  }>;
}

const MiB = 2 ** 20;

/** The changes a run of the bench's policy may write: its limits.maxChangesPerRun. */
export const MEMORY_RUN_CHANGES = parsePolicy(
  JSON.parse(benchPolicyJson(BENCH_PROJECT, BENCH_TOPIC)) as unknown,
).limits.maxChangesPerRun;

/**
 * Why a run's answer is not the run the figures describe, or null: it must end `ok` having
 * written every change it was due, the first MEMORY_RUN_CHANGES of those planned (the rest
 * deferred), none skipped or failed. The bench fleet plans far more than that (its idle services,
 * a third, come down; the two runs plan 212 and 162 changes at 1,000 services, 2,012 and 1,962 at
 * 10,000): each run writes exactly the limit.
 */
export function memoryRunWhole(body: Record<string, unknown>): string | null {
  if (body.outcome !== 'ok') return `it ended ${String(body.outcome)}, not ok`;
  const count = (k: string) => (typeof body[k] === 'number' ? body[k] : NaN);
  const [written, skipped, failed, deferred] = ['written', 'skipped', 'failed', 'deferred'].map(
    count,
  ) as [number, number, number, number];
  const due = Math.min(MEMORY_RUN_CHANGES, written + skipped + failed + deferred);
  if (written === due && skipped === 0 && failed === 0) return null;
  const n = (x: number) => (Number.isNaN(x) ? '?' : String(x));
  return `it wrote ${n(written)} changes where ${n(due)} were due (limits.maxChangesPerRun; ${n(deferred)} more deferred)${skipped || failed ? `, ${n(skipped)} skipped, ${n(failed)} failed` : ''}`;
}

export async function benchMemory(
  services: number,
  repeats = 3,
  heapLimitMb: number | null = null,
): Promise<MemoryRow> {
  const samples: MemoryRow['samples'] = [];
  let last: RunAnswer | null = null;
  const firestore = await startFirestoreEmulator();
  try {
    for (let i = 0; i < repeats; i++) {
      const emulator = await startEmulatorProcess(services);
      try {
        const fn = await startFunction({
          probe: true,
          ...(heapLimitMb === null ? {} : { heapLimitMb }),
          env: {
            ...emulator.env,
            GOVERNOR_POLICY: benchPolicyJson(BENCH_PROJECT, BENCH_TOPIC),
            GOVERNOR_STATE_STORE: 'firestore',
            // A collection of its own: each process starts with no state, as a first deployment.
            GOVERNOR_FIRESTORE_COLLECTION: `bench-${services}-${i}-${Date.now()}`,
            FIRESTORE_EMULATOR_HOST: firestore.endpoint,
            GOOGLE_CLOUD_PROJECT: BENCH_PROJECT,
            // The emulator answers 10,000 services' lists and writes far slower than Cloud Run
            // (it recomputes its fleet): a deadline that leaves it the time, so the run is whole.
            GOVERNOR_RUN_DEADLINE: '20m',
          },
        });
        try {
          const idle = await fn.memory();
          const first = await fn.run();
          if (first.status !== 200)
            throw new Error(`the run answered ${first.status}: ${JSON.stringify(first.body)}`);
          const firstShort = memoryRunWhole(first.body);
          if (firstShort !== null) throw new Error(`the first run is not whole: ${firstShort}`);
          const afterRun = await fn.memory();
          const second = await fn.run();
          if (second.status !== 200)
            throw new Error(
              `the second run answered ${second.status}: ${JSON.stringify(second.body)}`,
            );
          const secondShort = memoryRunWhole(second.body);
          if (secondShort !== null) throw new Error(`the second run is not whole: ${secondShort}`);
          const afterSecondRun = await fn.memory();
          samples.push({
            idle,
            afterRun,
            afterSecondRun,
            firstRunMs: first.ms,
            secondRunMs: second.ms,
          });
          last = first;
        } finally {
          await fn.stop();
        }
      } finally {
        await emulator.stop();
      }
    }
  } finally {
    await firestore.stop();
  }
  const mb = (pick: (s: MemoryRow['samples'][number]) => number) => median(samples.map(pick)) / MiB;
  return {
    services,
    repeats,
    idleRssMb: mb((s) => s.idle.rssBytes),
    idleHeapMb: mb((s) => s.idle.heapUsedBytes),
    peakRssMb: mb((s) => s.afterRun.peakRssBytes),
    heapAfterRunMb: mb((s) => s.afterRun.heapUsedBytes),
    heapAfterSecondRunMb: mb((s) => s.afterSecondRun.heapUsedBytes),
    peakRssAfterSecondRunMb: mb((s) => s.afterSecondRun.peakRssBytes),
    firstRunMs: median(samples.map((s) => s.firstRunMs)),
    secondRunMs: median(samples.map((s) => s.secondRunMs)),
    cpuPerRunMs: median(samples.map((s) => (s.afterRun.cpuMicros - s.idle.cpuMicros) / 1000)),
    cpuSecondRunMs: median(
      samples.map((s) => (s.afterSecondRun.cpuMicros - s.afterRun.cpuMicros) / 1000),
    ),
    heapLimitMb,
    written: Number(last?.body.written ?? 0),
    outcome: String(last?.body.outcome ?? 'none'),
    samples,
  };
}
