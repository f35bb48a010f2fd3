import { writeFile } from 'node:fs/promises';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { startFirestoreEmulator } from '../test/support/firestore-emulator.js';
import {
  benchPolicyJson,
  startEmulatorProcess,
  startFunction,
  type ProcessMemory,
  type RunningEmulatorProcess,
} from './function-host.js';
import { benchTempDir, removeBenchTempDir } from './stop-on-signal.js';

/**
 * The soak: does anything pile up in a warm instance over a long life? A deployed function is kept
 * warm for hours or days and Cloud Scheduler calls it every 5 minutes, so one process serves
 * hundreds of runs. Here functions-framework runs the built function in a process of its own (as
 * bench/memory.ts starts it) against the emulator in another, the state in the file store (or,
 * with `store: 'firestore'`, in Google's Firestore emulator, as bench/memory.ts keeps it); before
 * each run the emulator's virtual clock moves 5 minutes through its admin API (POST /advance), so
 * demand, usage, caps and alerts change from run to run as they would. After every run both
 * processes report, through bench/function-probe.ts, their V8 heap after a full garbage
 * collection, their RSS and their active resources (sockets, timers, handles).
 *
 * The fleet: SOAK_SERVICES services (default 40) over 4 regions of one project, each with a daily
 * curve of demand peaking at its own hour, the quotas tight enough that peaks starve some services
 * (so conditions open and close, and alerts are published).
 *
 *   BENCH_ONLY=soak npm run bench              (SOAK_RUNS runs, default 300: 25 virtual hours;
 *                                               SOAK_STORE=firestore for the Firestore emulator)
 *
 * The trend is fitted after a warm-up (the first WARMUP_FRACTION of the runs: lazy loading, the
 * Google clients' first channels, V8's code caches): a least-squares slope in bytes per run, and
 * the median of the last quarter against the median of the second quarter.
 */

export const SOAK_PROJECT = 'soak-project';
export const SOAK_TOPIC = `projects/${SOAK_PROJECT}/topics/governor-alerts`;
const REGIONS = 4;
const TICK_MS = 5 * 60_000;
const WARMUP_FRACTION = 0.2;

export function soakFleet(services: number) {
  const regions = Array.from({ length: REGIONS }, (_, i) => `soak-region${i + 1}`);
  const perRegion = Math.ceil(services / REGIONS);
  return {
    version: 1,
    start: '2026-11-27T00:00:00Z',
    warmupMinutes: 35,
    topics: [SOAK_TOPIC],
    projects: [
      {
        id: SOAK_PROJECT,
        // Peaks add up to more than the quota: at the busiest hours some services are starved.
        pools: regions.map((region) => ({ region, quota: Math.ceil(perRegion * 2.5) })),
        services: Array.from({ length: services }, (_, i) => ({
          name: `svc-${i}`,
          region: regions[i % REGIONS] ?? 'soak-region1',
          gpu: {},
          maxInstances: 3,
          startupProbeSeconds: 240,
          demand: { diurnal: { base: 0, peak: 1 + (i % 5), peakHour: (i * 5) % 24 } },
        })),
      },
    ],
  };
}

export interface SoakSample {
  run: number;
  ms: number;
  outcome: string;
  written: number;
  alerts: number;
  fn: ProcessMemory;
  emulator: ProcessMemory;
}

export interface Trend {
  /** Least-squares slope after the warm-up, bytes per run. */
  bytesPerRun: number;
  /** Median of the last quarter of the runs minus the median of the second quarter, bytes. */
  lateMinusEarlyBytes: number;
  first: number;
  last: number;
  max: number;
}

export interface SoakResult {
  runs: number;
  services: number;
  store: 'file' | 'firestore';
  virtualHours: number;
  wallSeconds: number;
  cores: number;
  load: { before: number[]; after: number[] };
  outcomes: Record<string, number>;
  written: number;
  fn: { heap: Trend; rss: Trend; external: Trend; handles: Trend };
  emulator: { heap: Trend; rss: Trend; handles: Trend };
  samples: SoakSample[];
  snapshots: { run: number; fn: string; emulator: string }[];
}

export async function benchSoak(
  options: {
    runs?: number;
    services?: number;
    progress?: (s: SoakSample) => void;
    /** After these runs, a heap snapshot of each process (files in the working directory). */
    snapshotAfter?: readonly number[];
    /** Where the state is kept: the file store (default) or Google's Firestore emulator. */
    store?: 'file' | 'firestore';
  } = {},
): Promise<SoakResult> {
  const runs = options.runs ?? 300;
  const services = options.services ?? 40;
  const loadBefore = loadavg();
  const t0 = performance.now();
  const samples: SoakSample[] = [];
  const snapshots: SoakResult['snapshots'] = [];
  const store = options.store ?? 'file';
  const firestore = store === 'firestore' ? await startFirestoreEmulator() : null;
  // Made once the emulator has started, so that one that fails to start leaves no directory.
  const dir = await benchTempDir('governor-soak-');
  try {
    const fleetFile = join(dir, 'fleet.json');
    await writeFile(fleetFile, JSON.stringify(soakFleet(services)));
    const emulator = await startEmulatorProcess(fleetFile, { probe: true });
    try {
      const fn = await startFunction({
        probe: true,
        env: {
          ...emulator.env,
          GOVERNOR_POLICY: benchPolicyJson(SOAK_PROJECT, SOAK_TOPIC),
          ...(firestore
            ? {
                GOVERNOR_STATE_STORE: 'firestore',
                GOVERNOR_FIRESTORE_COLLECTION: `soak-${Date.now()}`,
                FIRESTORE_EMULATOR_HOST: firestore.endpoint,
              }
            : { GOVERNOR_STATE_STORE: 'file', GOVERNOR_STATE_DIR: join(dir, 'state') }),
          GOOGLE_CLOUD_PROJECT: SOAK_PROJECT,
        },
      });
      try {
        for (let run = 1; run <= runs; run++) {
          await advance(emulator, TICK_MS);
          const answer = await fn.run();
          if (answer.status !== 200)
            throw new Error(
              `run ${run} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 500)}`,
            );
          const sample: SoakSample = {
            run,
            ms: answer.ms,
            outcome: String(answer.body.outcome ?? 'none'),
            written: Number(answer.body.written ?? 0),
            alerts: Number(answer.body.alertsPublished ?? 0),
            fn: await fn.memory(),
            emulator: await emulator.memory(),
          };
          samples.push(sample);
          options.progress?.(sample);
          if (options.snapshotAfter?.includes(run))
            snapshots.push({ run, fn: await fn.snapshot(), emulator: await emulator.snapshot() });
        }
      } finally {
        await fn.stop();
      }
    } finally {
      await emulator.stop();
    }
  } finally {
    await firestore?.stop();
    await removeBenchTempDir(dir);
  }
  const outcomes: Record<string, number> = {};
  for (const s of samples) outcomes[s.outcome] = (outcomes[s.outcome] ?? 0) + 1;
  const handles = (m: ProcessMemory) => Object.values(m.activeResources).reduce((a, b) => a + b, 0);
  return {
    runs,
    services,
    store,
    virtualHours: (runs * TICK_MS) / 3_600_000,
    wallSeconds: (performance.now() - t0) / 1000,
    cores: cpus().length,
    load: { before: loadBefore, after: loadavg() },
    outcomes,
    written: samples.reduce((a, s) => a + s.written, 0),
    fn: {
      heap: trend(samples.map((s) => s.fn.heapUsedBytes)),
      rss: trend(samples.map((s) => s.fn.rssBytes)),
      external: trend(samples.map((s) => s.fn.externalBytes)),
      handles: trend(samples.map((s) => handles(s.fn))),
    },
    emulator: {
      heap: trend(samples.map((s) => s.emulator.heapUsedBytes)),
      rss: trend(samples.map((s) => s.emulator.rssBytes)),
      handles: trend(samples.map((s) => handles(s.emulator))),
    },
    samples,
    snapshots,
  };
}

export async function advance(emulator: RunningEmulatorProcess, ms: number): Promise<void> {
  const admin = emulator.env.GOVERNOR_EMULATOR_ADMIN;
  if (!admin) throw new Error('the emulator gave no admin URL');
  const res = await fetch(`${admin}/advance`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ms }),
  });
  if (!res.ok) throw new Error(`POST /advance answered ${res.status}: ${await res.text()}`);
}

/** The trend of `values` (one per run) after the warm-up. */
export function trend(values: readonly number[]): Trend {
  const from = Math.floor(values.length * WARMUP_FRACTION);
  const ys = values.slice(from);
  const n = ys.length;
  const xMean = (n - 1) / 2;
  const yMean = ys.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - xMean) * (y - yMean);
    den += (x - xMean) ** 2;
  });
  const quarter = Math.floor(values.length / 4);
  const med = (xs: readonly number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? NaN : (s[Math.floor(s.length / 2)] ?? NaN);
  };
  return {
    bytesPerRun: den === 0 ? 0 : num / den,
    lateMinusEarlyBytes: med(values.slice(-quarter)) - med(values.slice(quarter, 2 * quarter)),
    first: values[0] ?? NaN,
    last: values.at(-1) ?? NaN,
    max: Math.max(...values),
  };
}

const MiB = 2 ** 20;

export function soakLines(r: SoakResult): string[] {
  const mb = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const bytes = (t: Trend) =>
    `${mb(t.first)} → ${mb(t.last)} (max ${mb(t.max)}); after warm-up ${kb(t.bytesPerRun)}/run, last quarter − second quarter ${kb(t.lateMinusEarlyBytes)}`;
  const count = (t: Trend) =>
    `${t.first} → ${t.last} (max ${t.max}); after warm-up ${t.bytesPerRun.toFixed(3)}/run`;
  return [
    `Soak: ${r.runs} runs of one warm function (${r.services} services, ${r.store} store, ${r.virtualHours.toFixed(0)} virtual hours, 5 min apart), ${r.written} writes, outcomes ${JSON.stringify(r.outcomes)}; ${r.wallSeconds.toFixed(0)} s wall, ${r.cores} cores, load ${r.load.before[0]?.toFixed(1)} → ${r.load.after[0]?.toFixed(1)}`,
    `  function heap after GC: ${bytes(r.fn.heap)}`,
    `  function RSS:           ${bytes(r.fn.rss)}`,
    `  function external:      ${bytes(r.fn.external)}`,
    `  function handles:       ${count(r.fn.handles)}`,
    `  emulator heap after GC: ${bytes(r.emulator.heap)}`,
    `  emulator RSS:           ${bytes(r.emulator.rss)}`,
    `  emulator handles:       ${count(r.emulator.handles)}`,
  ];
}
