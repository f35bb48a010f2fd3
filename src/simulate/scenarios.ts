import { join } from 'node:path';
import type { PolicyInput } from '../core/policy.js';
import { shippedPath } from '../read-capped.js';
import type { ScenarioInput } from './scenario.js';

/**
 * The scenarios docs/rules.md "How decisions are judged" asks for, used by `npm run bench` and
 * shipped as examples/sim-*.yaml: a mixed fleet in one pool (busy hours at different times of day,
 * one mostly idle, one step change, per-minute texture from the Azure traces) at a quota of a
 * given multiple of its aggregate peak, and the traces alone.
 */

/** examples/traces of the package, from the sources or from dist/ alike. */
export const TRACE_DIR = shippedPath(join('examples', 'traces'));

const CONV = 'azure-llm-2023-conv.csv';
const CODE = 'azure-llm-2023-code.csv';

export function mixedFleetScenario(quotaFactor: number, hours = 24, seed = 7): ScenarioInput {
  const texture = (file: string, offsetMinutes: number) => ({ file, offsetMinutes });
  return {
    scenario: 1,
    start: '2026-11-24T00:00:00Z',
    hours,
    project: 'sim-project',
    quotaFactor,
    seed,
    services: [
      {
        name: 'chat-nyc',
        maxInstances: 5,
        labels: { tier: 'prod' },
        demand: {
          shape: {
            kind: 'diurnal',
            base: 0.5,
            peak: 7,
            peakHour: 14,
            timezone: 'America/New_York',
          },
          trace: texture(CONV, 0),
        },
      },
      {
        name: 'chat-berlin',
        maxInstances: 4,
        demand: {
          shape: { kind: 'diurnal', base: 0.5, peak: 6, peakHour: 13, timezone: 'Europe/Berlin' },
          trace: texture(CONV, 20),
        },
      },
      {
        name: 'code-tokyo',
        maxInstances: 3,
        demand: {
          shape: { kind: 'diurnal', base: 0.3, peak: 5, peakHour: 11, timezone: 'Asia/Tokyo' },
          trace: texture(CODE, 0),
        },
      },
      {
        name: 'code-sf',
        maxInstances: 3,
        demand: {
          shape: {
            kind: 'diurnal',
            base: 0.3,
            peak: 4,
            peakHour: 15,
            timezone: 'America/Los_Angeles',
          },
          trace: texture(CODE, 30),
        },
      },
      {
        name: 'summarize',
        maxInstances: 2,
        demand: {
          shape: { kind: 'step', before: 1, after: 4, atMinute: Math.round(hours * 60 * 0.4) },
          trace: texture(CONV, 40),
        },
      },
      {
        name: 'ocr-burst',
        maxInstances: 2,
        demand: {
          shape: { kind: 'bursty', base: 0.4, burstPeak: 3, burstsPerHour: 0.5, burstMinutes: 20 },
          noise: 0.15,
        },
      },
      {
        name: 'batch-embed',
        maxInstances: 2,
        demand: { shape: { kind: 'idle', active: 3, sessionsPerDay: 3, sessionMinutes: 25 } },
      },
    ],
  };
}

/**
 * Two traces, each shifted into three services: pure minute-level burstiness. Each trace file holds
 * one hour of requests, looped; the seed moves where the loops start (and so how the two traces
 * line up), so every seed replays the same requests (docs/simulation.md "Bench").
 */
export function tracesAloneScenario(quotaFactor: number, hours = 6, seed = 7): ScenarioInput {
  const shift = seed === 7 ? 0 : (seed * 97) % 720;
  const services = [CONV, CODE].flatMap((file, i) =>
    [0, 20, 40].map((offsetMinutes, j) => ({
      name: `${i === 0 ? 'conv' : 'code'}-${j + 1}`,
      maxInstances: 3,
      demand: { trace: { file, offsetMinutes: offsetMinutes + shift, scale: i === 0 ? 0.6 : 2 } },
    })),
  );
  return {
    scenario: 1,
    start: '2026-11-24T00:00:00Z',
    hours,
    project: 'sim-project',
    quotaFactor,
    seed,
    services,
  };
}

/**
 * The noisy neighbour: three latency-sensitive services at priority 10 (chat in New York and
 * Berlin with the conversation trace's texture, code in San Francisco with the code trace's)
 * beside a batch service at priority 0 whose backlog would take every GPU of the pool (its demand
 * is the latency services' aggregate peak, all day). The quota is a multiple of the latency
 * services' aggregate peak: the batch backlog would otherwise set it by itself. The seed moves the
 * minutes of the traces played.
 */
export function noisyNeighbourScenario(quotaFactor: number, hours = 24, seed = 7): ScenarioInput {
  // Its shapes draw nothing at random: the seed moves the traces' texture, as for the traces alone.
  const shift = seed === 7 ? 0 : (seed * 97) % 720;
  const texture = (file: string, offsetMinutes: number) => ({
    file,
    offsetMinutes: offsetMinutes + shift,
  });
  return {
    scenario: 1,
    start: '2026-11-24T00:00:00Z',
    hours,
    project: 'sim-project',
    quotaFactor,
    quotaPeakOf: ['chat-nyc', 'chat-berlin', 'code-sf'],
    seed,
    services: [
      {
        name: 'chat-nyc',
        maxInstances: 4,
        labels: { tier: 'latency' },
        demand: {
          shape: { kind: 'diurnal', base: 1, peak: 6, peakHour: 14, timezone: 'America/New_York' },
          trace: texture(CONV, 0),
        },
      },
      {
        name: 'chat-berlin',
        maxInstances: 4,
        labels: { tier: 'latency' },
        demand: {
          shape: { kind: 'diurnal', base: 1, peak: 5, peakHour: 13, timezone: 'Europe/Berlin' },
          trace: texture(CONV, 20),
        },
      },
      {
        name: 'code-sf',
        maxInstances: 3,
        labels: { tier: 'latency' },
        demand: {
          shape: {
            kind: 'diurnal',
            base: 0.5,
            peak: 4,
            peakHour: 15,
            timezone: 'America/Los_Angeles',
          },
          trace: texture(CODE, 30),
        },
      },
      {
        name: 'batch-backlog',
        maxInstances: 3,
        labels: { tier: 'batch' },
        // Instances wanted all day: the latency services' aggregate peak (chat 6 + 5, code 4
        // with the traces' texture), so the backlog alone would fill the pool at 1.0×.
        demand: { shape: { kind: 'constant', value: 15 } },
      },
    ],
  };
}

/**
 * The mixed fleet with its quota cut in the middle of the day: at 12:00 UTC the pool keeps 70%
 * of its GPUs (a quota adjustment, or another team's reservation, taken away).
 */
export function quotaCutScenario(quotaFactor: number, hours = 24, seed = 7): ScenarioInput {
  return {
    ...mixedFleetScenario(quotaFactor, hours, seed),
    quotaCut: { atHour: hours / 2, factor: 0.7 },
  };
}

/**
 * The seeds every bench scenario runs with (chosen before any tuning of the planner, and not
 * changed since): the mean and the worst over them are reported.
 */
export const BENCH_SEEDS = [7, 11, 19, 23, 42] as const;

/** The quota factors every bench scenario runs at (× the aggregate peak). */
export const BENCH_QUOTA_FACTORS = [0.6, 0.8, 1.0] as const;

/** The policy the bench runs: govern every service; chat-nyc (production) first. */
export function benchPolicy(project = 'sim-project'): PolicyInput {
  return {
    version: 1,
    projects: [project],
    defaults: {
      min: 1,
      headroom: 0.2,
      scaleDownDelay: '15m',
      lookback: '30m',
      reclaimWindow: '10m',
      reverseDelay: '30m',
    },
    services: [{ match: { name: 'chat-nyc' }, priority: 10, weight: 2 }, { match: {} }],
    limits: { maxChangesPerRun: 50, writesPerMinute: 60 },
  };
}

/**
 * The noisy neighbour's policy: the latency services first (priority 10), the batch backlog last
 * and preemptible (`preempt: true`: its in-use instances may be cut for a higher priority, which
 * is what the setting is for).
 */
export function noisyNeighbourPolicy(project = 'sim-project'): PolicyInput {
  const base = benchPolicy(project);
  return {
    ...base,
    services: [
      { match: { labels: { tier: 'latency' } }, priority: 10 },
      { match: { labels: { tier: 'batch' } }, priority: 0, preempt: true },
      { match: {} },
    ],
  };
}
