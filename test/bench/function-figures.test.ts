import { describe, expect, it } from 'vitest';
import type { ColdStartResult } from '../../bench/cold-start.js';
import { functionFigures } from '../../bench/function.js';
import type { MemoryRow } from '../../bench/memory.js';
import { FUNCTION_RESOURCES } from '../support/fixtures.js';

/** The function's figures in `npm run bench` (bench/function.ts): a missed target says why. */
const resources = FUNCTION_RESOURCES;

const coldStart = (listeningMs: number): ColdStartResult => ({
  starts: 10,
  listeningMs,
  noopListeningMs: 600,
  firstRunMs: 3000,
  startToFirstAnswerMs: listeningMs + 3000,
  samples: [],
  noopSamples: [],
  moduleLoad: [
    { step: 'functions-framework (its server: express, body parsers)', ms: 300 },
    { step: 'the function entry (src/function/index.ts)', ms: 450 },
  ],
});

const memory = (services: number, peakRssMb: number): MemoryRow => ({
  services,
  repeats: 3,
  idleRssMb: 90,
  idleHeapMb: 20,
  peakRssMb,
  heapAfterRunMb: 60,
  heapAfterSecondRunMb: 60,
  peakRssAfterSecondRunMb: peakRssMb,
  firstRunMs: 4000,
  secondRunMs: 3000,
  cpuPerRunMs: 5000,
  cpuSecondRunMs: 3000,
  heapLimitMb: 256,
  written: 50,
  outcome: 'ok',
  samples: [],
});

describe("the function's figures", () => {
  it('say nothing more when met', () => {
    const figures = functionFigures(coldStart(580), [memory(1_000, 238)], resources);
    expect(figures.map((f) => [f.figure, f.met, f.why])).toEqual([
      ['function cold start → listening, median of 10 (ms)', true, undefined],
      ['function first run on a cold instance (ms)', true, undefined],
      ['function peak RSS, one run, 1,000 services (MiB)', true, undefined],
      ['GiB-s / vCPU-s per run, 1,000 services, warm', true, undefined],
    ]);
  });

  it('say why a missed cold start or peak memory was missed', () => {
    const figures = functionFigures(
      coldStart(1_400),
      [memory(1_000, 300), memory(10_000, 400)],
      resources,
    );
    const of = (start: string) => figures.find((f) => f.figure.startsWith(start));
    expect(of('function cold start')?.met).toBe(false);
    expect(of('function cold start')?.why).toBe(
      'a function doing nothing listens in 600 ms here, in the same run; loading the function entry (src/function/index.ts) takes 450 ms (module load above)',
    );
    expect(of('function peak RSS, one run, 1,000')?.met).toBe(false);
    expect(of('function peak RSS, one run, 1,000')?.why).toBe(
      'idle 90 MiB, heap after the run 60 MiB: the rest of the peak is what the run held at once (its observation, plan, writes and alerts; docs/performance.md, "The function: memory, cold start and cost")',
    );
    expect(of('function peak RSS, one run, 10,000')?.met).toBe(true);
  });
});
