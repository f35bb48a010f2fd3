import { closeSync, constants, fstatSync, openSync, realpathSync } from 'node:fs';
import {
  MAX_DOCUMENT_BYTES,
  MAX_TRACE_BYTES,
  readCappedSync,
  readInputText,
  sizeText,
} from '../read-capped.js';
import { capFaults, faultText, InputError, MESSAGE_FAULTS } from '../core/errors.js';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { formatPath, parseDocument, StringMap } from '../core/document.js';
import { ACCELERATOR_NAME, DEFAULT_ACCELERATOR } from '../core/pool.js';
import { reservedAnnotationPrefix } from '../core/service.js';
import { tracePeak } from './trace-scale.js';
import { FleetHierarchy } from './hierarchy.js';
import { topicNameFault } from '../core/units.js';
import { shown } from './rpc.js';

/**
 * The fleet file: what the emulator pretends a Google Cloud project holds (GPU pools and their
 * quotas, services, worker pools, jobs and their executions) and how much each service is asked to serve over time.
 * The zod schemas below are the single source of the `Fleet` type; docs/emulator.md describes
 * the format for people.
 */

/**
 * A fleet file that does not parse or does not validate. `faults` names every faulty path; the
 * message lists the first {@link MESSAGE_FAULTS} of them and how many more there are.
 */
export class FleetError extends Error {
  override readonly name = 'FleetError';
  constructor(
    message: string,
    readonly faults: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when Cloud Run keeps this annotation key for itself and rejects it from users. */
export function isReservedAnnotation(key: string): boolean {
  return reservedAnnotationPrefix(key) !== undefined;
}

/**
 * Service.annotations "follows Kubernetes annotations' namespacing, limits, and rules"
 * (google/cloud/run/v2/service.proto). Kubernetes: a key is an optional prefix, a DNS subdomain
 * of at most 253 characters, and "/", then a name of at most 63 characters "beginning and ending
 * with an alphanumeric character ([a-z0-9A-Z]) with dashes (-), underscores (_), dots (.), and
 * alphanumerics between"
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/#syntax-and-character-set);
 * keys and values together are at most 256 KiB (kubernetes/apimachinery
 * pkg/api/validation/objectmeta.go, TotalAnnotationSizeLimitB, summing the bytes of every key and
 * value). Without these a client could store megabytes in the model and in every write record.
 */
const ANNOTATION_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const ANNOTATIONS_MAX_BYTES = 256 << 10;

/**
 * What Cloud Run refuses in a service's annotations (a key it cannot hold, over 256 KiB in all),
 * the reserved namespaces apart ({@link isReservedAnnotation}); undefined when none.
 */
export function annotationsFault(annotations: Record<string, string>): string | undefined {
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations)) {
    const slash = key.lastIndexOf('/');
    const prefix = slash === -1 ? undefined : key.slice(0, slash);
    const name = slash === -1 ? key : key.slice(slash + 1);
    const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix));
    if (!prefixOk || !ANNOTATION_NAME.test(name)) {
      return `key "${shown(key)}" is not valid: an optional DNS-subdomain prefix (at most 253 characters) and "/", then a name of at most 63 letters, digits, "-", "_" and ".", beginning and ending with a letter or digit`;
    }
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (bytes > ANNOTATIONS_MAX_BYTES) {
    return `keys and values take ${bytes} bytes; they must take at most ${ANNOTATIONS_MAX_BYTES} (256 KiB)`;
  }
  return undefined;
}

function isValidTimeZone(zone: string): boolean {
  return DateTime.now().setZone(zone).isValid;
}

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;
const Count = z.number().int().min(0);
const Name = z
  .string()
  .regex(
    /^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/,
    'expected a Cloud Run name: lower-case letters, digits and "-"',
  );
export const Region = z
  .string()
  .regex(/^[a-z]+-[a-z]+\d+$/, 'expected a region such as "us-central1"');
/**
 * An accelerator in the form the governor reads (core/pool.ts ACCELERATOR_NAME): words of
 * lower-case letters and digits joined by single hyphens. An empty word ("nvidia-l4-") would give
 * another type's Cloud Quotas id.
 */
export const Accelerator = z
  .string()
  .max(63)
  .regex(
    ACCELERATOR_NAME,
    'expected an accelerator such as "nvidia-l4": lower-case letters and digits, words joined by "-"',
  );
const TimeZone = z
  .string()
  .refine(isValidTimeZone, 'expected an IANA time zone such as "Europe/Paris"');
const Instant = z.iso.datetime({ offset: true });

/**
 * The most instances a service may want in a minute (10,000). The fleet model plays every instance
 * each minute: a hundred thousand took 8 s an hour of simulation, ten million over two minutes and
 * 3 GB. GPU quotas are counted in tens.
 */
export const MAX_INSTANCES_WANTED = 10_000;

/**
 * The longest instance start a fleet may model, an hour: past the longest startup probe window
 * Cloud Run documents (1,800 s, for GPU jobs:
 * https://cloud.google.com/run/docs/configuring/jobs/healthchecks), after which it shuts the
 * container down, so never a real start; 1e300 s would leave every instance starting for the
 * whole run without a word.
 */
export const MAX_STARTUP_SECONDS = 3600;
const Instances = z.number().min(0).max(MAX_INSTANCES_WANTED);

const DiurnalDemand = z
  .strictObject({
    base: Instances.describe('Instances wanted at the quietest hour.'),
    peak: Instances.describe('Instances wanted at the busiest hour.'),
    peakHour: z.number().min(0).lt(24).describe('Local hour of the peak (fractions allowed).'),
    timezone: TimeZone.optional().describe("Time zone of peakHour (default: the fleet's)."),
  })
  .describe('A smooth daily curve (cosine) between base and peak.');
type DiurnalDemand = z.infer<typeof DiurnalDemand>;

export const DemandStep = z.strictObject({
  at: z
    .string()
    .refine(
      (s) => CLOCK.test(s) || Instant.safeParse(s).success,
      'expected "HH:MM" (every day) or an ISO instant with offset',
    ),
  value: Instances,
});
export type DemandStep = z.infer<typeof DemandStep>;

const TraceDemand = z.strictObject({
  file: z.string().min(1).describe('CSV file, relative to the fleet file.'),
  scale: Instances.default(1).describe('Instances per unit of the (normalised) trace.'),
  normalize: z.boolean().default(true).describe('Divide the trace by its mean first.'),
  offsetMinutes: Count.default(0).describe('Minute of the trace played at the virtual start.'),
});
type TraceDemand = z.infer<typeof TraceDemand>;

const DemandObject = z
  .strictObject({
    constant: Instances.optional(),
    diurnal: DiurnalDemand.optional(),
    steps: z.array(DemandStep).min(1).optional(),
    trace: TraceDemand.optional(),
  })
  .superRefine((d, ctx) => {
    const kinds = (['constant', 'diurnal', 'steps', 'trace'] as const).filter(
      (k) => d[k] !== undefined,
    );
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected exactly one of constant, diurnal, steps, trace (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`,
      });
    }
    if (d.steps) {
      const daily = d.steps.filter((s) => CLOCK.test(s.at)).length;
      if (daily !== 0 && daily !== d.steps.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps'],
          message: 'steps must be all "HH:MM" (daily) or all ISO instants, not a mix',
        });
      }
    }
  });

/** Demand in instances: a number is shorthand for `{constant: N}`. */
export const Demand = z.preprocess(
  (v) => (typeof v === 'number' ? { constant: v } : v),
  DemandObject,
);
export type Demand = z.infer<typeof Demand>;

export const Gpu = z.strictObject({
  accelerator: Accelerator.default(DEFAULT_ACCELERATOR),
  count: z.number().int().min(1).max(8).default(1).describe('GPUs per instance.'),
  zonalRedundancy: z.boolean().default(true),
});
export type Gpu = z.infer<typeof Gpu>;

const Sidecar = z.strictObject({
  name: Name,
  image: z.string().min(1).default('us-docker.pkg.dev/cloudrun/container/placeholder'),
  cpu: z.string().min(1).default('1'),
  memory: z.string().min(1).default('512Mi'),
  gpus: z
    .number()
    .int()
    .min(0)
    .max(8)
    .default(0)
    .describe(
      "nvidia.com/gpu limit of the sidecar (default 0). Cloud Run allows a GPU on one container only: for audits; the quota model counts the service's gpu.count.",
    ),
});
type Sidecar = z.infer<typeof Sidecar>;

/**
 * IAM permissions the caller lacks, for trying permission checks and denials: each listed
 * permission makes the calls that need it fail with PERMISSION_DENIED, and TestIamPermissions
 * leaves it out (src/emulator/iam.ts). An IAM permission name is `service.resource.verb`.
 */
const FleetIam = z.strictObject({
  denied: z
    .array(
      z
        .string()
        .regex(
          /^[a-z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*$/,
          'expected an IAM permission such as "run.services.update"',
        ),
    )
    .default([])
    .describe('Permissions the caller does not hold here.'),
});
type FleetIam = z.infer<typeof FleetIam>;

/**
 * The most labels a resource may have: Cloud Run takes only valid Google Cloud labels
 * (https://cloud.google.com/run/docs/configuring/services/labels), and "No more than 64 labels
 * can be associated with a given resource"
 * (https://cloud.google.com/resource-manager/docs/creating-managing-labels). The policy's rules
 * read every label of every service every minute, so 500,000 of them took 19 s an hour.
 */
const MAX_LABELS = 64;

/** A service's, worker pool's or job's labels, at most {@link MAX_LABELS}. */
export const Labels = StringMap.refine((labels) => Object.keys(labels).length <= MAX_LABELS, {
  message: `expected at most ${MAX_LABELS} labels (Cloud Run takes no more)`,
});

/** A service's annotations, as Cloud Run takes them from a user (the fleet file, another writer). */
export const Annotations = StringMap.superRefine((annotations, ctx) => {
  const fault = annotationsFault(annotations);
  if (fault) ctx.addIssue({ code: 'custom', message: fault });
  for (const key of Object.keys(annotations)) {
    if (isReservedAnnotation(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'this annotation namespace is reserved by Cloud Run',
      });
    }
  }
});

export const FleetService = z
  .strictObject({
    name: Name,
    region: Region,
    labels: Labels.default({}),
    annotations: Annotations.default({}),
    gpu: Gpu.optional().describe('Absent for a service without a GPU.'),
    maxInstances: Count.max(1000).optional().describe('Service-level scaling.max_instance_count.'),
    minInstances: Count.max(1000).default(0).describe('Service-level scaling.min_instance_count.'),
    revisionMaxInstances: Count.max(1000)
      .optional()
      .describe('Revision template max (absent: unset).'),
    revisionMinInstances: Count.max(1000).default(0),
    noTrafficRevision: z
      .strictObject({
        maxInstances: Count.max(1000)
          .optional()
          .describe("The new revision's template max (absent: unset)."),
        minInstances: Count.max(1000)
          .default(0)
          .describe(
            "The new revision's template min (0: unset). Of a manually scaled service, a revision only tagged runs this many instances, or one without it (https://cloud.google.com/run/docs/configuring/services/manual-scaling).",
          ),
        tag: z
          .string()
          .regex(/^[a-z][a-z0-9-]{0,45}$/, 'a tag: lower-case letters, digits and hyphens')
          .optional()
          .describe(
            'A tag on the new revision (gcloud run deploy --no-traffic --tag): a 0% target of its own, started, and not bounded by the service-level max.',
          ),
        gpu: Gpu.nullable()
          .optional()
          .describe(
            "The new revision's GPU, when its deploy changed it (another type or zonal redundancy; null: the GPU removed); absent: the service's. The template shows it, while the serving revision keeps the service's GPU and its instances hold GPUs of that pool.",
          ),
        failed: z
          .boolean()
          .default(false)
          .describe(
            'The new revision failed to become ready (a failed deployment): it is the latest created, not the latest ready, and traffic goes to LATEST, which is the serving revision.',
          ),
      })
      .optional()
      .describe(
        'A newer revision deployed without traffic (gcloud run deploy --no-traffic): the template shows it, while all traffic stays pinned to the serving revision, whose max is revisionMaxInstances.',
      ),
    previousRevision: z
      .strictObject({
        maxInstances: Count.max(1000)
          .optional()
          .describe("The older revision's own max (absent: unset)."),
        percent: z.number().int().min(1).max(99).describe('Its share of the traffic.'),
      })
      .optional()
      .describe(
        'A traffic split: an older revision keeps this share of the traffic by name, the serving revision (also by name) the rest.',
      ),
    taggedRevision: z
      .strictObject({
        maxInstances: Count.max(1000)
          .optional()
          .describe("The older revision's own max (absent: unset)."),
        tag: z
          .string()
          .regex(/^[a-z][a-z0-9-]{0,45}$/, 'a tag: lower-case letters, digits and hyphens')
          .describe(
            'Its tag: a 0% target of its own, started, and not bounded by the service-level max.',
          ),
      })
      .optional()
      .describe(
        'An older revision that keeps a tag and no traffic while all the traffic goes to LATEST, the serving revision (a canary deployed with --no-traffic --tag, its traffic sent to the latest and deployed over; or gcloud run services update-traffic --set-tags): the template is what serves, and the tagged revision is started beside it.',
      ),
    scalingMode: z.enum(['AUTOMATIC', 'MANUAL']).default('AUTOMATIC'),
    manualInstanceCount: Count.max(1000).optional(),
    image: z.string().min(1).optional(),
    cpu: z.string().min(1).optional().describe('Default "8" with a GPU, "1" without.'),
    memory: z.string().min(1).optional().describe('Default "32Gi" with a GPU, "512Mi" without.'),
    cpuIdle: z
      .boolean()
      .optional()
      .describe('CPU throttled between requests (default: false with a GPU).'),
    concurrency: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(4)
      .describe("max_instance_request_concurrency (default 4); 0: unset (Cloud Run's default 80)."),
    startupProbeSeconds: z.number().int().min(1).max(3600).optional(),
    sidecars: z.array(Sidecar).default([]),
    startupSeconds: z
      .number()
      .min(0)
      .max(MAX_STARTUP_SECONDS)
      .optional()
      .describe('Instance start time, model load included.'),
    requestSeconds: z
      .number()
      .positive()
      .max(3600)
      .default(6)
      .describe(
        "Mean time a request holds one of an instance's concurrency slots (default 6 s): an instance serves concurrency × 60 ÷ requestSeconds requests a minute.",
      ),
    pendingSeconds: z
      .number()
      .positive()
      .max(3600)
      .optional()
      .describe(
        "How long a request waits for an instance before Cloud Run refuses it (default: Google's rule, the greater of 10 s and 3.5 × the start-up time).",
      ),
    demand: Demand.default({ constant: 0 }),
    iam: FleetIam.optional().describe(
      'Permissions denied on this service only (run.services.get, run.services.update, iam.serviceAccounts.actAs).',
    ),
  })
  .superRefine((s, ctx) => {
    // The emulator models one revision before the serving one and one tag.
    if (s.taggedRevision && s.previousRevision)
      ctx.addIssue({
        code: 'custom',
        path: ['taggedRevision'],
        message: 'not with previousRevision: both are the revision before the serving one',
      });
    if (s.taggedRevision && s.noTrafficRevision)
      ctx.addIssue({
        code: 'custom',
        path: ['taggedRevision'],
        message: 'not with noTrafficRevision: the traffic goes to LATEST, not pinned by name',
      });
    const mins: [string, number | undefined][] = [
      ['minInstances', s.minInstances],
      ['revisionMinInstances', s.revisionMinInstances],
    ];
    for (const [key, min] of mins) {
      for (const [maxKey, max] of [
        ['maxInstances', s.maxInstances],
        ['revisionMaxInstances', s.revisionMaxInstances],
      ] as const) {
        if (min !== undefined && max !== undefined && max > 0 && min > max) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `${key} ${min} is above ${maxKey} ${max}`,
          });
        }
      }
    }
  });
export type FleetService = z.infer<typeof FleetService>;

export const FleetWorkerPool = z.strictObject({
  name: Name,
  region: Region,
  labels: Labels.default({}),
  gpu: Gpu.optional(),
  manualInstanceCount: Count.max(1000).default(1),
  previousRevision: z
    .strictObject({
      gpu: Gpu.nullable()
        .optional()
        .describe(
          "The older revision's GPU, when the deploy after it changed the pool's (another type or zonal redundancy; null: it has none); absent: the pool's.",
        ),
      percent: z.number().int().min(1).max(99).describe('Its share of the instances.'),
    })
    .optional()
    .describe(
      'An instance split: an older revision keeps this share of the instances by name, the latest revision (also by name) the rest; of manualInstanceCount the older one runs the share rounded up.',
    ),
});
export type FleetWorkerPool = z.infer<typeof FleetWorkerPool>;

/**
 * The most executions a job of a fleet may list: as many as Cloud Run shows the details of ("the
 * most recent 1,000 executions of a job", https://cloud.google.com/run/docs/execute/jobs; those
 * of the last seven days too, which a fleet has no need to list). The model steps every execution
 * every minute, so a job of 300,000 took as long as as many services, and overflowed the stack
 * before the first minute.
 */
const MAX_JOB_EXECUTIONS = 1000;

const FleetJobExecution = z
  .strictObject({
    startMinute: z
      .number()
      .int()
      .describe('Minute after the virtual start at which it begins (negative: before the start).'),
    taskMinutes: z.number().int().min(1).default(30).describe('Minutes each task runs.'),
  })
  .describe(
    'One execution: its tasks run in waves of `parallelism`, each wave for taskMinutes, so it completes after ceil(taskCount / parallelism) waves.',
  );
type FleetJobExecution = z.infer<typeof FleetJobExecution>;

export const FleetJob = z.strictObject({
  name: Name,
  region: Region,
  labels: Labels.default({}),
  gpu: Gpu.optional().describe('Absent for a job without a GPU. Each task holds gpu.count GPUs.'),
  taskCount: z.number().int().min(1).max(10_000).default(1).describe('Tasks per execution.'),
  parallelism: Count.max(10_000)
    .default(0)
    .describe('Tasks run at once (0: as many as possible, i.e. taskCount).'),
  executions: z
    .array(FleetJobExecution)
    .max(
      MAX_JOB_EXECUTIONS,
      `expected at most ${MAX_JOB_EXECUTIONS} executions (the model steps each every minute)`,
    )
    .default([]),
});
export type FleetJob = z.infer<typeof FleetJob>;

const FleetPool = z
  .strictObject({
    region: Region.optional().describe('Absent: the regionless default entry of the quota.'),
    accelerator: Accelerator.default(DEFAULT_ACCELERATOR),
    zonalRedundancy: z.boolean().default(true),
    quota: Count.optional().describe('GPUs; absent: the Quotas API has no entry for this pool.'),
  })
  .describe('One GPU quota pool of a project.');
type FleetPool = z.infer<typeof FleetPool>;

/**
 * Cloud Run's default limit of services, of worker pools and of jobs per project and region
 * (https://cloud.google.com/run/quotas, "Resource limits for Cloud Run": 1000 each, "can be
 * increased": Google raises it on request). The emulator holds a project's fleet to it unless the
 * project says it was raised (`perRegionLimit`), up to {@link MAX_RAISED_PER_REGION}.
 */
export const MAX_RESOURCES_PER_REGION = 1000;
/** The most a fleet may raise `perRegionLimit` to: a bound on the emulator's work, not Google's. */
const MAX_RAISED_PER_REGION = 20_000;

/** Each item's place among those of its region, from 1, in the order given. */
function placeInRegion(items: readonly { region: string }[]): number[] {
  const seen = new Map<string, number>();
  return items.map(({ region }) => {
    const n = (seen.get(region) ?? 0) + 1;
    seen.set(region, n);
    return n;
  });
}

/**
 * The `perRegionLimit` a fleet built from what a project holds (a replay, a simulation scenario)
 * needs: Google's default, or the most of one kind in one region when the project holds more (its
 * limit was raised, or a what-if asks for it).
 */
export function perRegionLimitFor(...kinds: readonly (readonly { region: string }[])[]): number {
  return kinds
    .flatMap(placeInRegion)
    .reduce((most, n) => Math.max(most, n), MAX_RESOURCES_PER_REGION);
}
const RESOURCE_WORDS = { services: 'services', workerPools: 'worker pools', jobs: 'jobs' } as const;

export const FleetProject = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'expected a project id such as "my-project"'),
  pools: z.array(FleetPool).default([]),
  services: z.array(FleetService).default([]),
  workerPools: z.array(FleetWorkerPool).default([]),
  jobs: z.array(FleetJob).default([]),
  perRegionLimit: Count.min(1)
    .max(MAX_RAISED_PER_REGION)
    .default(MAX_RESOURCES_PER_REGION)
    .describe(
      "Cloud Run's limit of services, of worker pools and of jobs in each region of this project: Google's default 1000, or what it was raised to.",
    ),
  iam: FleetIam.optional().describe(
    'Permissions denied in the whole project: on its services, worker pools, jobs, Monitoring, Cloud Quotas, and its Pub/Sub topics.',
  ),
  unknownMetrics: z
    .array(z.string().min(1))
    .default([])
    .describe(
      'Metric types Monitoring has no descriptor of in this project, such as the logs-based metric of terraform/ where it is not deployed: ListTimeSeries naming one answers INVALID_ARGUMENT.',
    ),
});
export type FleetProject = z.infer<typeof FleetProject>;

/**
 * The regions a project's fleet uses (its services, worker pools, jobs and regional quota pools),
 * sorted: where Cloud Run is "available" to the project as the emulator answers it (ListLocations,
 * List calls, and the locations a quota's regionless entry applies to). `live`: the services the
 * model holds now, so that one another writer created in a new region (POST /create) is listed
 * there, as Cloud Run lists it.
 */
export function fleetRegions(
  project: FleetProject,
  live: readonly { readonly region: string }[] = [],
): string[] {
  return [
    ...new Set([
      ...project.services.map((s) => s.region),
      ...live.map((s) => s.region),
      ...project.workerPools.map((w) => w.region),
      ...project.jobs.map((j) => j.region),
      ...project.pools.flatMap((p) => (p.region === undefined ? [] : [p.region])),
    ]),
  ].sort();
}

/**
 * The earliest start: 32 days past the Unix epoch. The governor reads no Monitoring window before
 * 1970 (adapters/monitoring.ts), and reads up to 32 days before the clock: a replay's 31 days
 * (`governor replay --since`) and a day of warm-up. A fleet starting in year 0 or in 1969 ran,
 * and every read of every run was refused. (Google's clock is never there either: a Timestamp
 * starts at 0001-01-01, https://protobuf.dev/reference/protobuf/google.protobuf/#timestamp.)
 */
const EARLIEST_START_MS = Date.parse('1970-02-02T00:00:00Z');

export const Fleet = z
  .strictObject({
    version: z.literal(1).default(1),
    start: Instant.default('2026-11-27T00:00:00Z')
      .refine(
        (start) => !(Date.parse(start) < EARLIEST_START_MS),
        `expected ${new Date(EARLIEST_START_MS).toISOString()} or later: the governor reads no time before 1970, and up to 32 days before the clock`,
      )
      .describe('Virtual time at which the emulator starts.'),
    timezone: TimeZone.default('UTC').describe('Time zone of "HH:MM" steps and diurnal peaks.'),
    startupSeconds: z
      .number()
      .min(0)
      .max(MAX_STARTUP_SECONDS)
      .default(35)
      .describe('Default instance start time (5 s + model load).'),
    idleMinutes: Count.max(60)
      .default(2)
      .describe('Minutes an instance no longer needed stays idle.'),
    warmupMinutes: Count.max(1440)
      .default(60)
      .describe('Minutes simulated before start, so metrics exist.'),
    projects: z.array(FleetProject).min(1),
    topics: z
      .array(
        z.string().superRefine((name, ctx) => {
          const fault = topicNameFault(name);
          if (fault) ctx.addIssue({ code: 'custom', message: `${fault} (got "${name}")` });
        }),
      )
      .default([])
      .describe('Pub/Sub topics that exist from the start, as projects/PROJECT/topics/TOPIC.'),
    // Organisation scale: the organisation and folders above the projects (hierarchy.ts).
    hierarchy: FleetHierarchy.optional(),
  })
  .superRefine((fleet, ctx) => {
    // One look per topic (a Set, not indexOf): 20,000 topics took 12 s the quadratic way.
    const topics = new Set<string>();
    fleet.topics.forEach((name, i) => {
      if (topics.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['topics', i], message: `duplicate topic ${name}` });
      }
      topics.add(name);
    });
    fleet.projects.forEach((project, p) => {
      const limit =
        project.perRegionLimit === MAX_RESOURCES_PER_REGION
          ? `Cloud Run's limit per project and region (perRegionLimit, if Google raised it for this project)`
          : `this project's perRegionLimit`;
      for (const kind of ['services', 'workerPools', 'jobs'] as const) {
        placeInRegion(project[kind]).forEach((n, i) => {
          if (n !== project.perRegionLimit + 1) return;
          ctx.addIssue({
            code: 'custom',
            path: ['projects', p, kind, i],
            message: `more than ${project.perRegionLimit} ${RESOURCE_WORDS[kind]} in ${project[kind][i]?.region}: ${limit}`,
          });
        });
      }
      const seen = new Set<string>();
      project.services.forEach((s, i) => {
        const key = `${s.region}/${s.name}`;
        if (seen.has(key)) {
          ctx.addIssue({
            code: 'custom',
            path: ['projects', p, 'services', i, 'name'],
            message: `duplicate service ${key}`,
          });
        }
        seen.add(key);
      });
      const pools = new Set<string>();
      project.pools.forEach((pool, i) => {
        const key = `${pool.region ?? '(any region)'}/${pool.accelerator}/${pool.zonalRedundancy}`;
        if (pools.has(key)) {
          ctx.addIssue({
            code: 'custom',
            path: ['projects', p, 'pools', i],
            message: `duplicate pool ${key}`,
          });
        }
        pools.add(key);
      });
    });
  });
export type Fleet = z.infer<typeof Fleet>;
/** What a fleet file may say before defaults are filled in. */
export type FleetInput = z.input<typeof Fleet>;

type Issue = z.core.$ZodIssue;

function describeIssues(issues: readonly Issue[], prefix: readonly PropertyKey[] = []): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the branch that got furthest: the one whose deepest issue has the longest path.
      const depth = (branch: readonly Issue[]): number =>
        Math.max(0, ...branch.map((i) => i.path.length + 1));
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0] ?? [];
      out.push(...describeIssues(best, path));
      continue;
    }
    if (issue.code === 'unrecognized_keys') {
      // zod's message already names the key; the path says where it is, once.
      for (const key of issue.keys) out.push(`${formatPath([...path, key])}: unknown key`);
      continue;
    }
    out.push(`${path.length === 0 ? '(top level)' : formatPath(path)}: ${issue.message}`);
  }
  return out;
}

/** Validates an already-parsed fleet value (from YAML, JSON or code). */
export function validateFleet(value: unknown, source = 'fleet'): Fleet {
  const result = Fleet.safeParse(value);
  if (!result.success) {
    const faults = describeIssues(result.error.issues);
    const shown = capFaults(
      faults.map((message) => ({ path: '', message })),
      MESSAGE_FAULTS,
      300,
    ).map(faultText);
    throw new FleetError(`${source} is not a valid fleet:\n  ${shown.join('\n  ')}`, faults);
  }
  return result.data;
}

/**
 * Parses the text of a fleet file, YAML or JSON, as the governor reads its own documents
 * (`parseDocument`: JSON by `JSON.parse`, duplicate keys refused, nesting bounded).
 */
export function parseFleet(text: string, source = 'fleet'): Fleet {
  let value: unknown;
  try {
    value = parseDocument(text, source);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    const details = error.faults.map(faultText);
    throw new FleetError(
      details.length ? `${error.what}: ${details.join('; ')}` : error.what,
      details,
      { cause: error },
    );
  }
  return validateFleet(value, source);
}

/** Per-minute samples of every trace a fleet uses, keyed by the trace's `file` as written. */
export type Traces = ReadonlyMap<string, readonly number[]>;

/**
 * The longest span a trace of request arrivals may cover, in minutes (31 days, the longest
 * simulation: `MAX_SIMULATED_HOURS` of src/simulate/scenario.ts). A trace is played minute by minute, so a file of two arrivals a thousand years apart
 * would ask for 500 million minutes and exhaust memory.
 */
export const MAX_TRACE_SPAN_MINUTES = 31 * 24 * 60;

/**
 * The arrival time of an Azure LLM trace row, ms since the epoch (NaN if not a time): its
 * TIMESTAMP ("2023-11-16 18:17:03.9799600") read as UTC, to the millisecond. Both readers of
 * these traces (this one, counting arrivals, and the simulator's, modelling service time) use it.
 */
export function traceArrivalMs(stamp: string): number {
  return Date.parse(`${stamp.trim().replace(' ', 'T').slice(0, 23)}Z`);
}

/**
 * Reads a trace CSV into per-minute values. Two shapes are understood: request arrivals with a
 * first column `TIMESTAMP` (the Azure LLM traces: counted per minute), or one number per line
 * (optionally after a header, optionally as the last column of `minute,value`).
 */
export function parseTrace(text: string, source = 'trace'): number[] {
  // The non-blank lines, each with its line number in the file (errors name that one).
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ text: line, number: i + 1 }))
    .filter((l) => l.text.trim() !== '');
  const header = lines[0]?.text.split(',')[0]?.trim().toUpperCase();
  if (header === 'TIMESTAMP') {
    const counts = new Map<number, number>();
    let first: number | undefined;
    let last = -Infinity;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const ms = traceArrivalMs(line?.text.split(',')[0] ?? '');
      // Errors name the line, never its text: a trace error must not show a file's contents.
      if (Number.isNaN(ms))
        throw new FleetError(`${source}: line ${line?.number ?? i + 1}: not a timestamp`);
      const minute = Math.floor(ms / 60_000);
      first = first === undefined ? minute : Math.min(first, minute);
      last = Math.max(last, minute);
      counts.set(minute, (counts.get(minute) ?? 0) + 1);
    }
    if (first === undefined) throw new FleetError(`${source}: no arrivals`);
    if (last - first >= MAX_TRACE_SPAN_MINUTES) {
      throw new FleetError(
        `${source}: its arrivals span ${Math.round((last - first) / 1440)} days; a trace may span at most 31`,
      );
    }
    const samples: number[] = [];
    for (let m = first; m <= last; m++) samples.push(counts.get(m) ?? 0);
    return samples;
  }
  const samples: number[] = [];
  lines.forEach(({ text: line, number }, i) => {
    const cell = line.split(',').at(-1)?.trim() ?? '';
    const value = Number(cell);
    // Number() reads "Infinity" too: played, it made every strategy's refusals Infinity.
    if (cell === '' || !Number.isFinite(value)) {
      if (i === 0) return; // a header line
      throw new FleetError(`${source}: line ${number} is not a number`);
    }
    if (value < 0) throw new FleetError(`${source}: line ${number} is negative`);
    samples.push(value);
  });
  if (samples.length === 0) throw new FleetError(`${source}: no samples`);
  return samples;
}

/** Every trace file named by the fleet. */
export function traceFiles(fleet: Fleet): string[] {
  const files = new Set<string>();
  for (const project of fleet.projects) {
    for (const service of project.services) {
      if (service.demand.trace) files.add(service.demand.trace.file);
    }
  }
  return [...files];
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String(error.code)
    : error instanceof Error
      ? error.message
      : String(error);
}

/**
 * Reads one trace file, confined to `baseDir` (the fleet file's folder): `file` is resolved
 * against it and must not name `..`; once symlinks are resolved it must still be inside it; it
 * must be a regular file (not a device, a FIFO or a folder) of at most {@link MAX_TRACE_BYTES},
 * and is read with that cap (a file that grows past it meanwhile is refused). Errors name the file and
 * the fault, never the file's contents.
 */
export function readTrace(baseDir: string, file: string): number[] {
  return parseTrace(readTraceText(baseDir, file), `trace ${file}`);
}

/**
 * The text of one trace file, confined to `baseDir` as {@link readTrace} says: the one reading of a
 * trace file for the emulator's fleets and the simulator's scenarios alike. Errors (FleetError)
 * name the file and the fault, never the file's contents.
 */
export function readTraceText(baseDir: string, file: string): string {
  if (file.split(/[\\/]/).includes('..')) {
    throw new FleetError(`trace ${file}: ".." is not allowed; name a file in the fleet's folder`);
  }
  let base: string;
  let real: string;
  try {
    base = realpathSync(baseDir);
  } catch (error) {
    throw new FleetError(
      `trace ${file}: the fleet's folder ${baseDir} cannot be read (${errorCode(error)})`,
    );
  }
  try {
    real = realpathSync(resolve(base, file));
  } catch (error) {
    throw new FleetError(`trace ${file}: cannot be read (${errorCode(error)})`);
  }
  const inside = relative(base, real);
  if (inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    throw new FleetError(
      `trace ${file}: outside the fleet's folder ${base} (trace files must be in it or below it)`,
    );
  }
  let fd: number;
  try {
    // Non-blocking: opening a FIFO must not wait for a writer (it is refused just below).
    fd = openSync(real, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new FleetError(`trace ${file}: cannot be read (${errorCode(error)})`);
  }
  let buffer: Buffer;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FleetError(`trace ${file}: not a regular file`);
    if (stat.size > MAX_TRACE_BYTES) {
      throw new FleetError(
        `trace ${file}: ${stat.size} bytes, over the ${sizeText(MAX_TRACE_BYTES)} a trace may have`,
      );
    }
    // Read with the cap, not the size: a file that grows meanwhile is refused over it.
    const read = readCappedSync(fd, MAX_TRACE_BYTES);
    if (read === null)
      throw new FleetError(`trace ${file}: over the ${sizeText(MAX_TRACE_BYTES)} a trace may have`);
    buffer = read;
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/**
 * Why a trace's demand cannot be played, or null: like a constant, a step or a trace's `scale`,
 * what it asks for in a minute is at most {@link MAX_INSTANCES_WANTED} (the emulator plays every
 * instance), however the samples and their normalisation get there (one busy minute in 20,000
 * idle ones is 20,000 times the mean).
 */
export function traceDemandFault(trace: TraceDemand, samples: readonly number[]): string | null {
  const peak = tracePeak(trace, samples);
  if (peak <= MAX_INSTANCES_WANTED) return null;
  const most = Number.isFinite(peak) ? String(Math.ceil(peak - 1e-9)) : 'more than any number of';
  return `trace ${trace.file} asks for up to ${most} instances in a minute; a service may want at most ${MAX_INSTANCES_WANTED}`;
}

/**
 * Reads the traces a fleet uses, each confined to `baseDir` (see {@link readTrace}), and checks
 * what each service plays of them ({@link traceDemandFault}).
 */
export function loadTraces(fleet: Fleet, baseDir: string): Promise<Map<string, number[]>> {
  const traces = new Map<string, number[]>();
  for (const file of traceFiles(fleet)) {
    try {
      traces.set(file, readTrace(baseDir, file));
    } catch (error) {
      return Promise.reject(
        error instanceof FleetError
          ? error
          : new FleetError(`trace ${file}: cannot be read (${errorCode(error)})`, [], {
              cause: error,
            }),
      );
    }
  }
  for (const [p, project] of fleet.projects.entries()) {
    for (const [s, service] of project.services.entries()) {
      const trace = service.demand.trace;
      const fault = trace && traceDemandFault(trace, traces.get(trace.file) ?? []);
      if (fault) {
        return Promise.reject(
          new FleetError(`projects[${p}].services[${s}].demand.trace: ${fault}`),
        );
      }
    }
  }
  return Promise.resolve(traces);
}

/** Reads and validates a fleet file and the traces it names. */
export async function loadFleet(
  path: string,
): Promise<{ fleet: Fleet; traces: Map<string, number[]> }> {
  let text: string;
  try {
    text = await readInputText(path, 'fleet', MAX_DOCUMENT_BYTES);
  } catch (error) {
    // The same words as every file the tools read, as the emulator's own error.
    throw new FleetError((error as Error).message, [], { cause: error });
  }
  const fleet = parseFleet(text, path);
  return { fleet, traces: await loadTraces(fleet, dirname(resolve(path))) };
}
