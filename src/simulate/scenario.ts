import { dirname, resolve } from 'node:path';
import { isValidTimeZone } from '../core/schedule.js';
import { z } from 'zod';
import { parseDocument, zodFaults } from '../core/document.js';
import { InputError, UsageError } from '../core/errors.js';
import { MAX_DOCUMENT_BYTES, readInputText } from '../read-capped.js';
import { DEFAULT_ACCELERATOR, MAX_QUOTA_GPUS } from '../core/pool.js';
import { MAX_ADVANCE_SERVICE_MINUTES } from '../emulator/control.js';
import {
  Accelerator,
  FleetError,
  Labels,
  loadTraces,
  MAX_INSTANCES_WANTED,
  MAX_STARTUP_SECONDS,
  MAX_TRACE_SPAN_MINUTES,
  perRegionLimitFor,
  traceFiles,
  validateFleet,
  type Fleet,
  type FleetInput,
} from '../emulator/fleet.js';
import { seedOf, synthesize, SyntheticShape } from './synthetic.js';
import {
  instancesPerMinute,
  readAzureTrace,
  ServiceTimeModel,
  type TraceRequest,
} from './trace-model.js';

/**
 * What a simulation runs on: a fleet for the emulator's `FleetModel` and the per-minute demand of
 * its services. Two sources:
 *
 * - an emulator fleet file (docs/emulator.md), whose demand is what the emulator would play;
 * - a scenario file (`scenario: 1`, see docs/simulation.md): one pool of GPU services whose demand
 *   is built here, from the Azure traces through the service-time model (trace-model.ts), from
 *   the seeded synthetic shapes (synthetic.ts), or a shape with the per-minute texture of a trace.
 *
 * Either way the result is a plain `Fleet`: scenario demand becomes per-minute `trace` series held
 * in memory (keyed `sim:<service>`), so the fleet model plays it minute by minute.
 */

export interface SimulationInput {
  /** A short name for reports. */
  label: string;
  fleet: Fleet;
  traces: Map<string, number[]>;
  /** Hours the source suggests (a scenario's `hours`); the command line may override it. */
  hours: number | null;
  /** Quota changes during the run (a scenario's `quotaCut`): from `minute` on, `quota` GPUs. */
  quotaChanges?: { minute: number; quota: number }[];
  /** The trace files it was read from, resolved: a report must not replace one. */
  sources?: string[];
}

const TraceTexture = z.strictObject({
  file: z.string().min(1).describe('Azure LLM trace CSV, relative to the scenario file.'),
  offsetMinutes: z.number().int().min(0).default(0).describe('Minute of the trace played first.'),
  scale: z.number().min(0).default(1).describe('Multiplies the instances (trace alone).'),
  model: ServiceTimeModel.default(ServiceTimeModel.parse({})),
});

const ScenarioDemand = z
  .strictObject({
    shape: SyntheticShape.optional().describe('The envelope, in instances.'),
    trace: TraceTexture.optional().describe(
      'Alone: instances from the trace. With a shape: the per-minute texture (normalised to mean 1).',
    ),
    noise: z.number().min(0).max(2).default(0).describe('Multiplicative noise spread.'),
  })
  .refine(
    (d) => d.shape !== undefined || d.trace !== undefined,
    'expected a shape, a trace, or both',
  );

const ScenarioService = z.strictObject({
  name: z.string().regex(/^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/, 'expected a Cloud Run name'),
  labels: Labels.default({}),
  gpus: z.number().int().min(1).max(8).default(1).describe('GPUs per instance.'),
  maxInstances: z.number().int().min(1).max(1000).describe("Today's static max instances."),
  minInstances: z.number().int().min(0).max(1000).default(0),
  startupSeconds: z.number().min(0).max(MAX_STARTUP_SECONDS).optional(),
  demand: ScenarioDemand,
});

/**
 * The longest simulation, in hours (31 days): a scenario's `hours`, `--hours`, and `replay
 * --since`. As long as a trace of request arrivals may span, for the same reason: the demand is
 * played minute by minute.
 */
export const MAX_SIMULATED_HOURS = MAX_TRACE_SPAN_MINUTES / 60;

/**
 * The most service-minutes one simulation plays (services, worker pools and jobs, times the
 * minutes simulated with the warm-up): a week of a fleet of 100, the most one advance of the
 * emulator's clock may run, for the same reason: the fleet model steps every one of them every
 * minute, for each strategy compared, and keeps their series for the report. About 2 KB and a third
 * of a millisecond each: 300 services over a day took 139 s and 900 MB, and 3,000 over 31 days
 * grew past 4.8 GB before anything was shown.
 */
export const MAX_SIMULATED_SERVICE_MINUTES = MAX_ADVANCE_SERVICE_MINUTES;

/**
 * Refuses a simulation of `units` services, worker pools and jobs over `minutes` (its
 * `warmupMinutes` included) past {@link MAX_SIMULATED_SERVICE_MINUTES}, naming what to shorten:
 * the longest run of that fleet that fits once its warm-up is counted too, as `advise` words it
 * for the command (null: no such run that command can ask for).
 */
function checkSimulationSize(
  label: string,
  units: number,
  minutes: number,
  warmupMinutes = 0,
  advise: (hours: number) => string | null = (hours) => `simulate at most ${hours} h of this fleet`,
  what = 'services, worker pools and jobs',
): void {
  if (units * minutes <= MAX_SIMULATED_SERVICE_MINUTES) return;
  const fit = Math.floor(MAX_SIMULATED_SERVICE_MINUTES / Math.max(1, units)) - warmupMinutes;
  // Whole hours, or tenths of an hour below one (`--hours` takes 0.5).
  const hours = fit >= 60 ? Math.floor(fit / 60) : Math.floor(fit / 6) / 10;
  const advice = hours > 0 ? advise(hours) : null;
  throw new InputError(
    `${label}: ${units} ${what} over ${minutes} minutes (warm-up included) are ${units * minutes} service-minutes; a simulation plays at most ${MAX_SIMULATED_SERVICE_MINUTES}: ${advice === null ? 'simulate fewer services' : `${advice}, or fewer services`}`,
    [],
  );
}

/**
 * {@link checkSimulationSize} of an input played for `hours`: its services, worker pools and jobs
 * over its warm-up and those hours, as the simulation counts them. `advise` as there.
 */
export function checkInputSize(
  input: SimulationInput,
  hours: number,
  advise?: (hours: number) => string | null,
): void {
  const { fleet } = input;
  // The model steps each execution of a job every minute, as it steps a service.
  const jobs = fleet.projects.flatMap((p) => p.jobs);
  const executions = jobs.reduce((n, j) => n + Math.max(1, j.executions.length), 0);
  checkSimulationSize(
    input.label,
    fleet.projects.reduce((n, p) => n + p.services.length + p.workerPools.length, 0) + executions,
    fleet.warmupMinutes + Math.max(1, Math.round(hours * 60)),
    fleet.warmupMinutes,
    advise,
    executions > jobs.length
      ? 'services, worker pools and job executions'
      : 'services, worker pools and jobs',
  );
}

/** Hours simulated when neither the scenario nor `--hours` says. */
export const DEFAULT_SIMULATED_HOURS = 24;

/** The minute of the run a quota cut at `atHour` holds from. */
const cutMinute = (atHour: number): number => Math.round(atHour * 60);

/** Whether a cut at `atHour` falls within the minutes a run of `hours` plays (as simulate counts them). */
const cutWithin = (atHour: number, hours: number): boolean =>
  cutMinute(atHour) < Math.max(1, Math.round(hours * 60));

export const Scenario = z
  .strictObject({
    scenario: z.literal(1),
    start: z.iso.datetime({ offset: true }).default('2026-11-27T00:00:00Z'),
    timezone: z
      .string()
      // The policy's own test of a zone: luxon's `setZone` also takes "local" and "system" (the
      // machine's zone, so a report changed with TZ) and "UTC+5" (a fixed offset).
      .refine(isValidTimeZone, 'expected an IANA time zone such as "Europe/Paris"')
      .default('UTC')
      .describe('Time zone the report shows times in.'),
    hours: z.number().positive().max(MAX_SIMULATED_HOURS).default(DEFAULT_SIMULATED_HOURS),
    project: z
      .string()
      .regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/)
      .default('sim-project'),
    region: z
      .string()
      .regex(/^[a-z]+-[a-z]+\d+$/)
      .default('us-central1'),
    accelerator: Accelerator.default(DEFAULT_ACCELERATOR),
    quota: z
      .number()
      .int()
      .min(0)
      .max(MAX_QUOTA_GPUS)
      .optional()
      .describe('GPUs of the pool (at most the most a policy may give a pool).'),
    quotaFactor: z
      .number()
      .positive()
      .optional()
      .describe("Quota as a multiple of the fleet's aggregate peak demand (GPUs)."),
    quotaPeakOf: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'The services whose aggregate peak quotaFactor multiplies (default: every service). A noisy neighbour with a backlog would otherwise set the quota by itself.',
      ),
    quotaCut: z
      .strictObject({
        atHour: z
          .number()
          .min(0)
          .describe("Hours after start when the quota is cut: within the scenario's hours."),
        factor: z.number().positive().max(1).describe('The new quota as a share of the old.'),
      })
      .optional()
      .describe('A quota cut in the middle of the run: from then on the pool has fewer GPUs.'),
    startupSeconds: z.number().min(0).max(MAX_STARTUP_SECONDS).default(35),
    idleMinutes: z.number().int().min(0).max(60).default(2),
    warmupMinutes: z.number().int().min(0).max(1440).default(60),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(1)
      .describe(
        "Seed of the synthetic demand, 0 to 4294967295: the generator keeps 32 bits, so a larger one would play a smaller one's series.",
      ),
    services: z.array(ScenarioService).min(1),
  })
  .refine((s) => (s.quota === undefined) !== (s.quotaFactor === undefined), {
    message: 'expected exactly one of quota, quotaFactor',
    path: ['quota'],
  })
  .superRefine((s, ctx) => {
    // A cut after the run would silently never happen.
    if (s.quotaCut && !cutWithin(s.quotaCut.atHour, s.hours)) {
      ctx.addIssue({
        code: 'custom',
        path: ['quotaCut', 'atHour'],
        message: `${s.quotaCut.atHour} is not within the scenario's hours (${s.hours})`,
      });
    }
    // The fleet model plays the run's first minute as it is built, before any change of quota:
    // a cut then would hold the oracles and the accounting to a quota the model did not play.
    if (s.quotaCut && cutMinute(s.quotaCut.atHour) < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['quotaCut', 'atHour'],
        message: `${s.quotaCut.atHour} is the run's first minute: a cut must come after it (a quota cut from the start is the quota itself)`,
      });
    }
    const names = new Set<string>();
    s.services.forEach((svc, i) => {
      if (names.has(svc.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', i, 'name'],
          message: `duplicate service ${svc.name}`,
        });
      }
      names.add(svc.name);
    });
    // An unknown name would count nothing, and the quota would silently shrink to 1 GPU.
    s.quotaPeakOf?.forEach((name, i) => {
      if (!names.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['quotaPeakOf', i],
          message: `no service named ${name} in this scenario`,
        });
      }
    });
  });
export type Scenario = z.infer<typeof Scenario>;
export type ScenarioInput = z.input<typeof Scenario>;

/**
 * Reads `--fleet`: a scenario file or an emulator fleet file. `hours` (`--hours`) replaces a
 * scenario's own: its demand and its quota are built for the hours simulated, as a series built
 * for fewer would loop back through its warm-up.
 */
export async function loadSimulationInput(path: string, hours?: number): Promise<SimulationInput> {
  const text = await readInputText(path, 'fleet', MAX_DOCUMENT_BYTES);
  const raw = parseDocument(text, `fleet ${path}`);
  const baseDir = dirname(resolve(path));
  if (raw !== null && typeof raw === 'object' && 'scenario' in raw) {
    const scenario = parseScenario(raw, `scenario ${path}`);
    if (hours === undefined) return buildScenario(scenario, baseDir, path);
    // A cut after the run would silently never happen.
    if (scenario.quotaCut && !cutWithin(scenario.quotaCut.atHour, hours)) {
      throw new UsageError(
        `--hours ${hours}: ends before the quota cut of the scenario, at hour ${scenario.quotaCut.atHour} (quotaCut.atHour); ask for more hours`,
      );
    }
    return buildScenario({ ...scenario, hours }, baseDir, path);
  }
  try {
    const fleet = validateFleet(raw, `fleet ${path}`);
    const tooBig = quotaFaults(fleet);
    if (tooBig.length > 0) throw new InputError(`fleet ${path} is not valid`, tooBig);
    const traces = await loadTraces(fleet, baseDir);
    const sources = traceFiles(fleet).map((file) => resolve(baseDir, file));
    return { label: path, fleet, traces, hours: null, sources };
  } catch (e) {
    if (e instanceof FleetError) throw new InputError(e.message, [], { cause: e });
    throw e;
  }
}

/**
 * Pools whose quota the simulation cannot plan: the emulator serves any quota (a test of the Cloud
 * Quotas adapter's own refusal needs one), but the simulator's in-memory ports skip that adapter,
 * and the planner's demand step places a pool's GPUs one instance at a time (each where it is
 * likeliest used), so 10^12 GPUs wanted would run for hours.
 */
function quotaFaults(fleet: Fleet): { path: string; message: string }[] {
  return fleet.projects.flatMap((project, p) =>
    project.pools.flatMap((pool, i) =>
      pool.quota !== undefined && pool.quota > MAX_QUOTA_GPUS
        ? [
            {
              path: `projects[${p}].pools[${i}].quota`,
              message: `${pool.quota} GPUs; a pool may have at most ${MAX_QUOTA_GPUS} (the planner's demand step places a pool's GPUs one instance at a time)`,
            },
          ]
        : [],
    ),
  );
}

export function parseScenario(raw: unknown, what = 'scenario'): Scenario {
  const parsed = Scenario.safeParse(raw);
  if (!parsed.success)
    throw new InputError(`${what} is not valid`, zodFaults(parsed.error, Scenario));
  return parsed.data;
}

/** Per-minute demand of each service from `start − warmup`, for `warmup + hours×60` minutes. */
async function scenarioDemand(
  s: Scenario,
  baseDir: string,
  traceCache = new Map<string, TraceRequest[]>(),
): Promise<Map<string, number[]>> {
  const startMs = Date.parse(s.start) - s.warmupMinutes * 60_000;
  const minutes = s.warmupMinutes + Math.ceil(s.hours * 60);
  const out = new Map<string, number[]>();
  for (const svc of s.services) {
    const d = svc.demand;
    const seed = seedOf(svc.name, s.seed);
    let series: number[];
    // The series starts with the warm-up; a step's `atMinute` is a minute of the simulation,
    // counted from `start` as `quotaCut.atHour` and `--hours` are.
    const shape =
      d.shape?.kind === 'step'
        ? { ...d.shape, atMinute: d.shape.atMinute + s.warmupMinutes }
        : d.shape;
    const envelope = shape ? synthesize(shape, startMs, minutes, seed, d.noise) : null;
    const tr = d.trace;
    if (tr) {
      const path = resolve(baseDir, tr.file);
      let requests = traceCache.get(path);
      if (!requests) {
        requests = await readAzureTrace(baseDir, tr.file);
        traceCache.set(path, requests);
      }
      const per = instancesPerMinute(requests, tr.model);
      const mean = per.reduce((a, b) => a + b, 0) / Math.max(1, per.length) || 1;
      const at = (m: number): number => per[(m + tr.offsetMinutes) % per.length] ?? 0;
      series = envelope
        ? envelope.map((v, m) => (v * at(m)) / mean)
        : Array.from({ length: minutes }, (_, m) => at(m) * tr.scale);
    } else series = envelope ?? [];
    out.set(svc.name, series);
  }
  return out;
}

/** The fleet (one project, one pool) and its demand series for the fleet model. */
export async function buildScenario(
  s: Scenario,
  baseDir: string,
  label = 'scenario',
): Promise<SimulationInput> {
  checkSimulationSize(
    label,
    s.services.length,
    s.warmupMinutes + Math.ceil(s.hours * 60),
    s.warmupMinutes,
  );
  const demand = await scenarioDemand(s, baseDir);
  const tooMuch = s.services.flatMap((svc, i) => {
    let most = 0;
    for (const v of demand.get(svc.name) ?? []) most = Math.max(most, v);
    return most > MAX_INSTANCES_WANTED
      ? [
          {
            path: `services[${i}].demand`,
            message: `wants ${Math.ceil(most)} instances in a minute; a service may want at most ${MAX_INSTANCES_WANTED} (the simulation plays every instance)`,
          },
        ]
      : [];
  });
  if (tooMuch.length > 0) throw new InputError(`${label} is not valid`, tooMuch);
  const gpusOf = new Map(s.services.map((x) => [x.name, x.gpus]));
  let quota = s.quota;
  if (quota === undefined) {
    // Aggregate peak: the most GPUs the whole fleet wants in any minute of the simulated period.
    const minutes = s.warmupMinutes + Math.ceil(s.hours * 60);
    const counted = s.quotaPeakOf ? new Set(s.quotaPeakOf) : null;
    let peak = 0;
    for (let m = s.warmupMinutes; m < minutes; m++) {
      let sum = 0;
      for (const [name, series] of demand)
        if (!counted || counted.has(name))
          sum += Math.ceil((series[m] ?? 0) - 1e-9) * (gpusOf.get(name) ?? 1);
      peak = Math.max(peak, sum);
    }
    quota = Math.max(1, Math.round(peak * (s.quotaFactor ?? 1)));
    if (quota > MAX_QUOTA_GPUS) {
      throw new InputError(`${label} is not valid`, [
        {
          path: 'quotaFactor',
          message: `makes the quota ${quota.toLocaleString('en-US', { useGrouping: false })} GPUs; a pool may have at most ${MAX_QUOTA_GPUS}`,
        },
      ]);
    }
  }
  const traces = new Map<string, number[]>();
  const services = s.services.map((svc) => {
    const key = `sim:${svc.name}`;
    traces.set(key, demand.get(svc.name) ?? [0]);
    return {
      name: svc.name,
      region: s.region,
      labels: svc.labels,
      gpu: { accelerator: s.accelerator, count: svc.gpus },
      maxInstances: svc.maxInstances,
      minInstances: svc.minInstances,
      ...(svc.startupSeconds === undefined ? {} : { startupSeconds: svc.startupSeconds }),
      // Minute 0 of the series is start − warmup; the model plays minute 0 at `start`.
      demand: {
        trace: { file: key, normalize: false, scale: 1, offsetMinutes: s.warmupMinutes },
      },
    };
  });
  const fleet: FleetInput = {
    version: 1,
    start: s.start,
    timezone: s.timezone,
    startupSeconds: s.startupSeconds,
    idleMinutes: s.idleMinutes,
    warmupMinutes: s.warmupMinutes,
    projects: [
      {
        id: s.project,
        // A what-if may hold more services in its region than Cloud Run's default allows.
        perRegionLimit: perRegionLimitFor(services),
        pools: [{ region: s.region, accelerator: s.accelerator, quota }],
        services,
      },
    ],
  };
  const quotaChanges = s.quotaCut
    ? [
        {
          minute: cutMinute(s.quotaCut.atHour),
          quota: Math.max(1, Math.round(quota * s.quotaCut.factor)),
        },
      ]
    : [];
  let valid: Fleet;
  try {
    valid = validateFleet(fleet, label);
  } catch (e) {
    // The scenario's schema should catch every fault first; one that slips through is still bad
    // input, named, not an unexpected failure.
    if (e instanceof FleetError) throw new InputError(e.message, [], { cause: e });
    throw e;
  }
  const sources = [
    ...new Set(
      s.services.flatMap((svc) =>
        svc.demand.trace ? [resolve(baseDir, svc.demand.trace.file)] : [],
      ),
    ),
  ];
  return { label, fleet: valid, traces, hours: s.hours, quotaChanges, sources };
}
