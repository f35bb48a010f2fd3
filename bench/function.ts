import { benchColdStart, type ColdStartResult } from './cold-start.js';
import { nodeHeapLimitMb, runCost, terraformDefaults, type FunctionResources } from './cost.js';
import { benchMemory, type MemoryRow } from './memory.js';
import { figureAdder, TARGET_LISTENING_MS, TARGET_RSS_MB, type Figure } from './targets.js';

/**
 * The Cloud Function's own figures, as deployed (docs/performance.md, "The function: memory, cold
 * start and cost"): its memory over one run at 1,000 and 10,000 services, its cold start, and
 * what a run costs in Cloud Run's billing units. `npm run bench` prints them with the rest;
 * `npm run bench:function` alone.
 */

export interface FunctionBench {
  lines: string[];
  figures: Figure[];
  results: {
    resources: FunctionResources;
    heapLimitMb: number;
    coldStart: ColdStartResult;
    memory: MemoryRow[];
  };
}

export interface FunctionBenchOptions {
  /** Fresh starts for the cold start (its median is the figure); at least 10 for the target. */
  starts?: number;
  /** Function processes per fleet size for the memory (medians). */
  memoryRepeats?: number;
  /** Fleet sizes for the memory. */
  sizes?: readonly number[];
  /** Runs each part under its name, so that a failure says which (bench/failure.ts). */
  step?: <T>(name: string, run: () => Promise<T>) => Promise<T>;
}

export async function benchFunction(options: FunctionBenchOptions = {}): Promise<FunctionBench> {
  const starts = options.starts ?? 10;
  const repeats = options.memoryRepeats ?? 3;
  const sizes = options.sizes ?? [1_000, 10_000];
  const step = options.step ?? ((_name, run) => run());
  const resources = await step("reading the function's resources (terraform/variables.tf)", () =>
    terraformDefaults(),
  );
  const heapLimitMb = nodeHeapLimitMb(resources.memory);

  const coldStart = await step('the cold start', () => benchColdStart(starts));
  const memory: MemoryRow[] = [];
  for (const services of sizes)
    memory.push(
      await step(`the memory at ${services.toLocaleString('en-US')} services`, () =>
        benchMemory(services, repeats, heapLimitMb),
      ),
    );

  const lines: string[] = [];
  const figures: Figure[] = [];
  const ms = (n: number) => `${Math.round(n).toLocaleString('en-US')} ms`;
  const mib = (n: number) => `${n.toFixed(0)} MiB`;
  const whole = (n: number | undefined) =>
    n === undefined ? '?' : Math.round(n).toLocaleString('en-US');

  lines.push(
    `The function as deployed: functions-framework on dist/, the emulator in another process`,
  );
  lines.push(
    `(Terraform defaults: ${resources.memory}, ${resources.cpu} vCPU, schedule "${resources.schedule}"; V8 heap limit ${heapLimitMb} MiB as Node sets it in ${resources.memory})`,
  );
  lines.push('');
  lines.push(`  cold start, median of ${coldStart.starts} fresh processes`);
  lines.push(`    listening                               ${ms(coldStart.listeningMs)}`);
  lines.push(`    listening, a function that does nothing ${ms(coldStart.noopListeningMs)}`);
  lines.push(`    first run (dry run, examples/fleet.yaml) ${ms(coldStart.firstRunMs)}`);
  lines.push(`    process start → first run answered      ${ms(coldStart.startToFirstAnswerMs)}`);
  lines.push('  module load, in start order, median of fresh processes');
  for (const s of coldStart.moduleLoad) lines.push(`    ${ms(s.ms).padStart(9)}  ${s.step}`);
  lines.push('');
  lines.push(
    `  memory over one run (50 changes at most, alerts to Pub/Sub), median of ${repeats} processes`,
  );
  lines.push(
    '    services   idle RSS   peak RSS   heap after run   after a 2nd run: peak, heap   1st run     2nd run   CPU: 1st, 2nd run',
  );
  for (const r of memory) {
    lines.push(
      `    ${r.services.toLocaleString('en-US').padStart(8)} ${mib(r.idleRssMb).padStart(10)} ${mib(r.peakRssMb).padStart(10)} ${mib(r.heapAfterRunMb).padStart(16)} ${`${mib(r.peakRssAfterSecondRunMb)}, ${mib(r.heapAfterSecondRunMb)}`.padStart(29)} ${ms(r.firstRunMs).padStart(11)} ${ms(r.secondRunMs).padStart(11)} ${`${ms(r.cpuPerRunMs)}, ${ms(r.cpuSecondRunMs)}`.padStart(19)}`,
    );
  }
  lines.push('');
  lines.push(
    `  cost of a run in Cloud Run's units (${resources.memory}, ${resources.cpu} vCPU, billed to the next 100 ms), and a 30-day month of them at "${resources.schedule}" (${resources.runsPerMonth?.toLocaleString('en-US') ?? '?'} runs)`,
  );
  lines.push(
    '    run                                          billed s    GiB-s   vCPU-s   GiB-s/month   vCPU-s/month',
  );
  const costRows: Array<[string, number]> = [
    ['examples/fleet.yaml, cold start + 1st run', coldStart.startToFirstAnswerMs],
  ];
  for (const r of memory) {
    const n = r.services.toLocaleString('en-US');
    costRows.push([`${n} services, cold start + 1st run`, coldStart.listeningMs + r.firstRunMs]);
    costRows.push([`${n} services, warm instance`, r.secondRunMs]);
    costRows.push([`${n} services, warm, its CPU time alone`, r.cpuSecondRunMs]);
  }
  for (const [label, runMs] of costRows) {
    const c = runCost(runMs, resources);
    lines.push(
      `    ${label.padEnd(44)} ${c.billedSeconds.toFixed(1).padStart(9)} ${c.gibSeconds.toFixed(1).padStart(8)} ${c.vcpuSeconds.toFixed(1).padStart(8)} ${whole(c.perMonth?.gibSeconds).padStart(13)} ${whole(c.perMonth?.vcpuSeconds).padStart(14)}`,
    );
  }
  lines.push(
    '    Billed time is wall time. Here a run mostly waits on the emulator (slower than Google at',
  );
  lines.push(
    '    thousands of services) and on this shared machine: the wall rows are upper bounds, the CPU row a',
  );
  lines.push(
    '    lower one. Prices per unit: cloud.google.com/run/pricing (by region; not printed here).',
  );

  figures.push(...functionFigures(coldStart, memory, resources));
  return { lines, figures, results: { resources, heapLimitMb, coldStart, memory } };
}

/** The function's figures, each with its target, and why when a target is missed. */
export function functionFigures(
  coldStart: ColdStartResult,
  memory: readonly MemoryRow[],
  resources: FunctionResources,
): Figure[] {
  const figures: Figure[] = [];
  const whole = (n: number | undefined) =>
    n === undefined ? '?' : Math.round(n).toLocaleString('en-US');
  const add = figureAdder(figures);
  const entry = coldStart.moduleLoad.find((s) => s.step.startsWith('the function entry'));
  add(
    `function cold start → listening, median of ${coldStart.starts} (ms)`,
    coldStart.listeningMs,
    `${coldStart.listeningMs.toFixed(0)} (framework alone ${coldStart.noopListeningMs.toFixed(0)})`,
    `≤ ${TARGET_LISTENING_MS}`,
    coldStart.listeningMs <= TARGET_LISTENING_MS,
    `a function doing nothing listens in ${coldStart.noopListeningMs.toFixed(0)} ms here, in the same run${entry ? `; loading ${entry.step} takes ${entry.ms.toFixed(0)} ms (module load above)` : ''}`,
  );
  add(
    'function first run on a cold instance (ms)',
    coldStart.firstRunMs,
    coldStart.firstRunMs.toFixed(0),
    '—',
    true,
    '',
  );
  for (const r of memory) {
    const n = r.services.toLocaleString('en-US');
    const target = TARGET_RSS_MB[r.services];
    add(
      `function peak RSS, one run, ${n} services (MiB)`,
      r.peakRssMb,
      `${r.peakRssMb.toFixed(0)} (heap after the run ${r.heapAfterRunMb.toFixed(0)})`,
      target === undefined ? '—' : `≤ ${target}`,
      target === undefined || r.peakRssMb <= target,
      `idle ${r.idleRssMb.toFixed(0)} MiB, heap after the run ${r.heapAfterRunMb.toFixed(0)} MiB: the rest of the peak is what the run held at once (its observation, plan, writes and alerts; docs/performance.md, "The function: memory, cold start and cost")`,
    );
  }
  const warm = memory[0];
  if (warm) {
    const c = runCost(warm.secondRunMs, resources);
    add(
      `GiB-s / vCPU-s per run, ${warm.services.toLocaleString('en-US')} services, warm`,
      c.gibSeconds,
      `${c.gibSeconds.toFixed(1)} / ${c.vcpuSeconds.toFixed(1)} (a month: ${whole(c.perMonth?.gibSeconds)} / ${whole(c.perMonth?.vcpuSeconds)})`,
      '—',
      true,
      '',
    );
  }
  return figures;
}
