import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  median,
  NOOP_SOURCE,
  startEmulatorProcess,
  startFunction,
  type RunningEmulatorProcess,
} from './function-host.js';
import { benchTempDir, removeBenchTempDir } from './stop-on-signal.js';

/**
 * The Cloud Function's cold start, as deployed: functions-framework's command started on the built
 * function in a fresh process, `starts` times (the median is the figure):
 *
 * - listening: from spawning the process to the first accepted connection on its port;
 * - first run: the first request on that instance, answered (it loads the run's code and Google's
 *   clients, then observes, plans and alerts: a dry run of the demo policy over examples/fleet.yaml,
 *   the emulator in a process of its own);
 * - the floor: the same start with a function that does nothing (bench/noop-function.ts), what the
 *   framework and Node take whatever the function;
 * - module load: what each step of a start and of the first run adds, imported in order in a fresh
 *   process, median of `loadRepeats` processes.
 */

export interface ColdStartResult {
  starts: number;
  /** Medians, ms. */
  listeningMs: number;
  noopListeningMs: number;
  firstRunMs: number;
  /** From spawning the process to the first run's answer. */
  startToFirstAnswerMs: number;
  samples: Array<{ listeningMs: number; firstRunMs: number }>;
  noopSamples: number[];
  /** Median ms each step adds, in the order a cold start and its first run load them. */
  moduleLoad: Array<{ step: string; ms: number }>;
}

const FRAMEWORK_SERVER = 'node_modules/@google-cloud/functions-framework/build/src/server.js';
const IMPORT_CHILD = fileURLToPath(new URL('./import-child.js', import.meta.url));

/** The steps of a start and of its first run, each a module as built. */
const LOAD_STEPS: ReadonlyArray<{ step: string; module: string }> = [
  { step: 'functions-framework (its server: express, body parsers)', module: FRAMEWORK_SERVER },
  { step: 'the function entry (src/function/index.ts)', module: 'dist/src/function/index.js' },
  {
    step: 'first run: the run (handler, policy, planner, reconcile; zod, yaml, luxon)',
    module: 'dist/src/function/handler.js',
  },
  {
    step: 'first run: Cloud Run, Monitoring, Cloud Quotas clients (google-gax, gRPC)',
    module: 'dist/src/adapters/index.js',
  },
  { step: 'first run: Pub/Sub client', module: 'dist/src/adapters/pubsub.js' },
  {
    step: 'first run: Firestore client (the deployed state store)',
    module: 'dist/src/adapters/firestore-store.js',
  },
];

export async function benchColdStart(starts = 10, loadRepeats = 5): Promise<ColdStartResult> {
  const emulator = await startEmulatorProcess('examples/fleet.yaml');
  try {
    // The demo policy as a dry run: every start sees the same fleet, and publishes its alerts.
    const demo = parseYaml(await readFile('examples/demo-policy.yaml', 'utf8')) as object;
    const policy = JSON.stringify({ ...demo, mode: 'dry-run' });
    const samples: ColdStartResult['samples'] = [];
    const noopSamples: number[] = [];
    for (let i = 0; i < starts; i++) {
      // Interleaved, each first in turn, so that a change in the machine's load (or whatever
      // the previous start left warm) touches both alike.
      if (i % 2 === 0) noopSamples.push(await noopStart());
      samples.push(await governorStart(emulator, policy));
      if (i % 2 === 1) noopSamples.push(await noopStart());
    }
    const moduleLoad = await profileModuleLoad(loadRepeats);
    return {
      starts,
      listeningMs: median(samples.map((s) => s.listeningMs)),
      noopListeningMs: median(noopSamples),
      firstRunMs: median(samples.map((s) => s.firstRunMs)),
      startToFirstAnswerMs: median(samples.map((s) => s.listeningMs + s.firstRunMs)),
      samples,
      noopSamples,
      moduleLoad,
    };
  } finally {
    await emulator.stop();
  }
}

async function noopStart(): Promise<number> {
  const fn = await startFunction({ source: NOOP_SOURCE });
  await fn.stop();
  return fn.listeningMs;
}

async function governorStart(
  emulator: RunningEmulatorProcess,
  policy: string,
): Promise<{ listeningMs: number; firstRunMs: number }> {
  const stateDir = await benchTempDir('governor-bench-cold-');
  try {
    const fn = await startFunction({
      env: { ...emulator.env, GOVERNOR_POLICY: policy, GOVERNOR_STATE_DIR: stateDir },
    });
    try {
      const first = await fn.run();
      if (first.status !== 200)
        throw new Error(`the first run answered ${first.status}: ${JSON.stringify(first.body)}`);
      return { listeningMs: fn.listeningMs, firstRunMs: first.ms };
    } finally {
      await fn.stop();
    }
  } finally {
    await removeBenchTempDir(stateDir);
  }
}

async function profileModuleLoad(repeats: number): Promise<ColdStartResult['moduleLoad']> {
  const runs: number[][] = [];
  for (let i = 0; i < repeats; i++) {
    const { stdout } = await promisify(execFile)(process.execPath, [
      IMPORT_CHILD,
      ...LOAD_STEPS.map((s) => pathToFileURL(resolve(s.module)).href),
    ]);
    const steps = JSON.parse(stdout.trim()) as Array<{ ms: number }>;
    runs.push(steps.map((s) => s.ms));
  }
  return LOAD_STEPS.map((s, i) => ({ step: s.step, ms: median(runs.map((r) => r[i] ?? NaN)) }));
}
