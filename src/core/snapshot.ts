import { z } from 'zod';
import { InputError, type Fault } from './errors.js';
import { parseDocument, StringMap, zodFaults } from './document.js';
import { beyondSkew, formatDuration, Instant } from './duration.js';
import { MAX_QUOTA_GPUS, poolIdOf, poolKey, type PoolId } from './pool.js';
import type { ProblemSubject } from './problems.js';
import { CONTROL, escapedJson } from './text.js';

/**
 * The snapshot: everything the governor observed, the planner's whole input besides the policy and
 * the time. Parsed with zod at the edge; the planner trusts it.
 */

const IsoInstant = Instant;
/**
 * A name of the snapshot (project, region, accelerator, service, source) or an etag: one line,
 * without control characters. A live snapshot never holds one (Google's names are letters, digits
 * and hyphens), but a snapshot file is anyone's, and `governor plan` printed a service named
 * "llm\u001b[31m…" with its terminal escape intact. (Notes may quote an error of several lines:
 * they are put on one line where they are shown.)
 */
const Line = z
  .string()
  .refine((s) => !CONTROL.test(s), 'must be one line of text without control characters');
const Name = Line.min(1);

const PoolFields = {
  project: Name,
  region: Name,
  accelerator: Name,
  zonalRedundancy: z.boolean(),
};

/**
 * The longest `maxNote` or pool `budgetUnknown` a snapshot holds. Observation keeps its notes
 * within it (observe.ts; a budgetUnknown it writes names a region and what was not listed), so
 * that what `governor snapshot` saves, `governor plan --snapshot` reads back.
 */
export const MAX_NOTE_CHARS = 2000;

export const SnapshotPool = z.strictObject({
  ...PoolFields,
  // At most what a policy may give a pool, and what the Cloud Quotas adapter reads as a quota:
  // the planner's demand step places a pool's GPUs one instance at a time, so a snapshot file
  // saying 10^9 GPUs could keep `governor plan` busy for minutes where a live observation reads the
  // pool's quota as unknown.
  quota: z
    .number()
    .int()
    .min(0)
    .max(MAX_QUOTA_GPUS, {
      error: (issue) => `${String(issue.input)} GPUs; a pool may have at most ${MAX_QUOTA_GPUS}`,
    })
    .nullable()
    .describe(`GPUs (at most ${MAX_QUOTA_GPUS}); null when the quota could not be read.`),
  quotaSource: z
    .string()
    .min(1)
    .optional()
    .describe('Where the quota came from, or why it is unknown, for explanations.'),
  // Bounded: every service of the pool quotes it in its reason, so a snapshot file of 2.3 MB (a
  // budgetUnknown of 2 MB, 500 services) made plans of gigabytes, and `governor plan` failed.
  budgetUnknown: z
    .string()
    .min(1)
    .max(MAX_NOTE_CHARS)
    .optional()
    .describe(
      "Why the pool's budget cannot be known although its quota may be (e.g. its region's worker pools could not be listed): nothing in it is raised.",
    ),
});
export type SnapshotPool = z.infer<typeof SnapshotPool>;

/**
 * The most instances a snapshot may count for one service (its max, min, in use, peak, and each
 * minute's): Cloud Run accepts no max instances whose GPUs exceed the pool's quota, which is at
 * most {@link MAX_QUOTA_GPUS}, and every instance has at least one GPU. Counts above it are a
 * hand edit or a corrupt file: planned, they made figures beyond 2^53 that a plan cannot hold
 * (its schema promises safe integers) and that a subscriber's JSON parser rounds.
 */
export const MAX_INSTANCES = MAX_QUOTA_GPUS;

/**
 * The most requests a snapshot may count for one service in one minute, served or refused:
 * 100 million (1.7 million a second), far beyond any GPU service. A minute's instances wanted is
 * in use × (served + refused) ÷ served, its anticipated next step up to twice that, and demand
 * adds up to 10 times headroom: at these bounds every figure of a plan stays below 2^53.
 */
export const MAX_REQUESTS_PER_MINUTE = 100_000_000;

/** A whole number from 0 to `max`; above it, one fault naming the bound and what it counts. */
const Bounded = (max: number, what: string) =>
  z
    .number()
    .int()
    .min(0)
    .max(max, {
      error: (issue) =>
        `${String(issue.input)} ${what}; a snapshot may count at most ${max.toLocaleString('en-US')}`,
    });
const Instances = Bounded(MAX_INSTANCES, 'instances');
const Counts = z.array(Instances);
const Requests = z.array(Bounded(MAX_REQUESTS_PER_MINUTE, 'requests in a minute'));

export const UsageMinutes = z
  .strictObject({
    start: IsoInstant.describe(
      'The time of the first entry: the end of its minute, as Monitoring stamps an aligned point. Entries follow one a minute.',
    ),
    inUse: Counts.describe(
      'Instances (active + idle) each minute, oldest first; 0 for a minute without a point (Cloud Run writes none at zero). The last entry is the newest minute Monitoring had for the project.',
    ),
    served: Requests.optional().describe(
      'Requests that reached an instance each minute (run.googleapis.com/request_count, any response code but 429), aligned with inUse. Absent: not read.',
    ),
    refused: Requests.optional().describe(
      "Requests Cloud Run answered 429 each minute (the request log's 429s: at its max instances, a request pends for a while, then is refused), aligned with inUse. Absent: not read.",
    ),
  })
  .superRefine((m, ctx) => {
    for (const key of ['served', 'refused'] as const) {
      const counts = m[key];
      if (counts !== undefined && counts.length !== m.inUse.length) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `has ${counts.length} entries, inUse has ${m.inUse.length}: one a minute each`,
        });
      }
    }
  });
export type UsageMinutes = z.infer<typeof UsageMinutes>;

export const Usage = z.strictObject({
  current: Instances.describe('Instances (active + idle) in the latest sample.'),
  peak: Instances.describe('Most instances in use over the lookback window.'),
  sampledAt: IsoInstant.describe('Time of the latest sample.'),
  utilization: z
    .number()
    .min(0)
    .max(1)
    .nullable()
    .optional()
    .describe('Mean GPU utilization (0–1) of the instances in use, where known.'),
  saturated: z
    .boolean()
    .optional()
    .describe(
      'The service ran at the cap in force during the lookback (older snapshots). Read only when perMinute has no refusal counts; absent, it is false: it is never derived from peak ≥ maxInstances, as a cap alone is no evidence.',
    ),
  perMinute: UsageMinutes.optional().describe(
    'The lookback minute by minute (optional: older snapshots have none), so that a planner can tell "used its cap" from "needed more than its cap".',
  ),
});
export type Usage = z.infer<typeof Usage>;

export const SnapshotService = z.strictObject({
  ...PoolFields,
  name: Name,
  gpusPerInstance: z.number().int().min(1).max(16),
  labels: StringMap.default({}),
  maxInstances: Instances.describe(
    'Effective max instances: the lower of the service-level and revision-level max; when neither is set, quota ÷ GPUs per instance (see maxUnset).',
  ),
  maxUnset: z
    .boolean()
    .optional()
    .describe(
      'Neither the service nor its revision sets a max: Cloud Run derives one from the regional quotas, so maxInstances counts it at quota ÷ GPUs per instance (100 when the quota is unknown).',
    ),
  maxNote: z
    .string()
    .min(1)
    .max(MAX_NOTE_CHARS)
    .optional()
    .describe(
      "How maxInstances was counted when the service's latest revision does not serve: the sum of its serving revisions' own max, or why they could not be read. Absent: as said in maxInstances.",
    ),
  revisionMaxInstances: Instances.min(1)
    .optional()
    .describe(
      "The serving revision's own max instances (set by a deploy), when its latest revision is the one serving: the cap in force is never above it, whatever service-level max is written (https://cloud.google.com/run/docs/configuring/max-instances), so the governor plans no cap above it. Absent: the revision sets none, or the latest revision does not serve (see maxNote).",
    ),
  minInstances: Instances.default(0),
  reconciling: z.boolean().default(false),
  etag: Line.default(''),
  lastChangedAt: IsoInstant.nullable()
    .default(null)
    .describe("When the governor last raised this service's cap (its annotation)."),
  lastLoweredAt: IsoInstant.nullable()
    .optional()
    .describe(
      "When the governor last lowered this service's cap (its annotation): starts the reverse delay.",
    ),
  usage: Usage.nullable().describe('null when usage could not be read or is stale.'),
  usageNote: z.string().optional().describe('Why usage is null, for explanations.'),
});
export type SnapshotService = z.infer<typeof SnapshotService>;

/**
 * `s` as one object literal, its fields always in this order and the optional ones present as
 * `undefined` (which `JSON.stringify` leaves out: the snapshot's JSON is the same). V8 gives
 * objects built alike one hidden class; services built by spreads, with optional fields present
 * or not, may each get their own, and every read of their fields by the planner is then
 * megamorphic: about a third of the time to plan 10,000 services (docs/performance.md, "A second
 * round"). Observation builds its services through this.
 */
export function oneShapeService(s: SnapshotService): SnapshotService {
  return {
    project: s.project,
    region: s.region,
    accelerator: s.accelerator,
    zonalRedundancy: s.zonalRedundancy,
    name: s.name,
    gpusPerInstance: s.gpusPerInstance,
    labels: s.labels,
    maxInstances: s.maxInstances,
    maxUnset: s.maxUnset,
    maxNote: s.maxNote,
    revisionMaxInstances: s.revisionMaxInstances,
    minInstances: s.minInstances,
    reconciling: s.reconciling,
    etag: s.etag,
    lastChangedAt: s.lastChangedAt,
    lastLoweredAt: s.lastLoweredAt,
    usage: s.usage,
    usageNote: s.usageNote,
  };
}

export const UnmanagedUsage = z.strictObject({
  ...PoolFields,
  gpus: Bounded(MAX_QUOTA_GPUS, 'GPUs'),
  source: Line.min(1).describe('What holds the GPUs, e.g. "worker-pool/encoder".'),
});
export type UnmanagedUsage = z.infer<typeof UnmanagedUsage>;

/** Every subject of an observation problem (core/problems.ts), so the schema lists each. */
const SUBJECTS: Record<ProblemSubject, true> = {
  services: true,
  'worker-pools': true,
  jobs: true,
  'instance-counts': true,
  'gpu-utilization': true,
  'served-requests': true,
  'refused-requests': true,
  quota: true,
  revisions: true,
  'tagged-revisions': true,
};

const SnapshotProblem = z.strictObject({
  project: Name,
  region: Name.nullable().describe('The region it concerns; null when the whole project.'),
  pool: z
    .strictObject(PoolFields)
    .nullable()
    .describe('The pool it concerns; null when not one pool.'),
  subject: z
    .enum(Object.keys(SUBJECTS) as [ProblemSubject, ...ProblemSubject[]])
    .describe('What could not be read (docs/observing.md).'),
  error: z.string().describe('Why, in the words of the API that answered.'),
});
type SnapshotProblem = z.infer<typeof SnapshotProblem>;

export const Snapshot = z.strictObject({
  $schema: z.string().optional(),
  version: z.literal(1),
  takenAt: IsoInstant,
  pools: z.array(SnapshotPool),
  services: z.array(SnapshotService),
  unmanagedUsage: z.array(UnmanagedUsage).default([]),
  problems: z
    .array(SnapshotProblem)
    .optional()
    .describe(
      'What the observation could not read (a region skipped, worker pools, jobs, a metric, a quota, serving revisions): a plan from the snapshot warns of each as the live plan did. Absent (older snapshots): not recorded, and the fleet is taken as fully seen.',
    ),
});
export type Snapshot = z.infer<typeof Snapshot>;

export function serviceKey(s: { project: string; region: string; name: string }): string {
  return `${s.project}/${s.region}/${s.name}`;
}

/** Parses a snapshot document; throws InputError naming every fault. */
export function parseSnapshot(raw: unknown, what = 'snapshot'): Snapshot {
  const result = Snapshot.safeParse(raw, { reportInput: true });
  if (!result.success) {
    throw new InputError(`${what} is invalid`, zodFaults(result.error, Snapshot));
  }
  const faults: Fault[] = [];
  const pools = new Map<string, number>();
  for (const [i, p] of result.data.pools.entries()) {
    const key = poolKey(p);
    const before = pools.get(key);
    if (before !== undefined)
      faults.push({ path: `pools[${i}]`, message: `same pool as pools[${before}] (${key})` });
    else pools.set(key, i);
  }
  const services = new Map<string, number>();
  for (const [i, s] of result.data.services.entries()) {
    const key = serviceKey(s);
    const before = services.get(key);
    if (before !== undefined)
      faults.push({
        path: `services[${i}]`,
        message: `same service as services[${before}] (${key})`,
      });
    else services.set(key, i);
    faults.push(...observedAfter(s, i, result.data.takenAt));
    // The cap in force is the lower of the two levels: one above the revision's own is no observation.
    if (s.revisionMaxInstances !== undefined && s.maxInstances > s.revisionMaxInstances)
      faults.push({
        path: `services[${i}].maxInstances`,
        message: `${s.maxInstances} is above its revisionMaxInstances, ${s.revisionMaxInstances}: the max in force is never above the serving revision's own`,
      });
    if (s.revisionMaxInstances !== undefined && (s.maxNote !== undefined || s.maxUnset))
      faults.push({
        path: `services[${i}].revisionMaxInstances`,
        message:
          s.maxNote !== undefined
            ? 'is the max of a latest revision that serves, maxNote tells of one that does not: not both'
            : 'is a max its revision sets, maxUnset says neither level sets one: not both',
      });
  }
  if (faults.length) throw new InputError(`${what} is invalid`, faults);
  return result.data;
}

/**
 * A usage sampled after the snapshot was taken (beyond the clock skew allowed): an observation
 * holds nothing later than its `takenAt` (Monitoring answers only points up to the end of the
 * interval read, which ends then), so a later time is a wrong clock or a hand edit. Read as
 * evidence, a future minute's 429s would move GPUs on the strength of a time that has not come.
 */
function observedAfter(s: SnapshotService, i: number, takenAt: string): Fault[] {
  const faults: Fault[] = [];
  const iso = (ms: number) => new Date(ms).toISOString();
  const taken = iso(Date.parse(takenAt));
  const tail = `is after the snapshot's takenAt, ${taken}: a snapshot holds only what was observed by then`;
  const usage = s.usage;
  if (!usage) return faults;
  const takenMs = Date.parse(takenAt);
  if (beyondSkew(usage.sampledAt, takenMs)) {
    faults.push({
      path: `services[${i}].usage.sampledAt`,
      message: `${iso(Date.parse(usage.sampledAt))} ${tail}`,
    });
  }
  const pm = usage.perMinute;
  if (pm && pm.inUse.length > 0) {
    const newest = Date.parse(pm.start) + (pm.inUse.length - 1) * 60_000;
    if (beyondSkew(iso(newest), takenMs)) {
      faults.push({
        path: `services[${i}].usage.perMinute`,
        message: `its newest minute, ${iso(newest)}, ${tail}`,
      });
    }
  }
  return faults;
}

export function parseSnapshotText(text: string, what = 'snapshot'): Snapshot {
  return parseSnapshot(parseDocument(text, what), what);
}

/**
 * The snapshot with every usage sampled more than `staleAfterMs` before its `takenAt` read as
 * unknown, so that the planner holds that cap (fail static) rather than lowering it on old figures.
 * An observation never holds such a sample (it reads that service as unknown, or as stopped when
 * its project's metrics go on); a snapshot file that does was edited by hand or made by another
 * tool. Pure: the staleness is the policy's `staleAfter`, the time the snapshot's own.
 */
export function withStaleUsageUnknown(snapshot: Snapshot, staleAfterMs: number): Snapshot {
  const takenMs = Date.parse(snapshot.takenAt);
  const stale = (s: SnapshotService) =>
    s.usage !== null && takenMs - Date.parse(s.usage.sampledAt) > staleAfterMs;
  if (!snapshot.services.some(stale)) return snapshot;
  return {
    ...snapshot,
    services: snapshot.services.map((s) =>
      s.usage && stale(s)
        ? {
            ...s,
            usage: null,
            usageNote: `latest sample ${new Date(Date.parse(s.usage.sampledAt)).toISOString()} is older than ${formatDuration(staleAfterMs)} at the snapshot's takenAt`,
          }
        : s,
    ),
  };
}

/**
 * What a listing not read leaves unknown of a region's budget, in an observation's words: a revision
 * only tagged that could not be read too, whose pool and GPUs are unknown (core/problems.ts).
 */
const UNREAD_LISTING: Partial<Record<ProblemSubject, string>> = {
  'worker-pools': 'its worker pools could not be listed',
  jobs: 'its job executions could not be listed',
  'tagged-revisions': 'a revision only tagged could not be read',
};

/**
 * A region's `budgetUnknown` when some of its listings were not read (`subjects`, of a region's
 * problems): "us-central1: its worker pools could not be listed, …", worker pools first; null when
 * none of them leaves the budget unknown. The observation's words and a snapshot file's reading.
 */
export function unreadListingsNote(
  region: string,
  subjects: ReadonlySet<ProblemSubject>,
): string | null {
  const listed = Object.entries(UNREAD_LISTING)
    .filter(([subject]) => subjects.has(subject as ProblemSubject))
    .map(([, what]) => what);
  return listed.length > 0 ? `${region}: ${listed.join(', ')}` : null;
}

/**
 * The snapshot with every pool of a region whose worker pools or job executions were not listed
 * (its `problems` say so) marked budget unknown, so that nothing in it is raised. An observation
 * marks them itself (`budgetUnknown`); a snapshot file whose problems say so but whose pools do
 * not (edited by hand, or made by another tool) planned raises there, under a warning that
 * "nothing there is raised". A pool of such a region missing from `pools` is added with its quota
 * unknown, as its absence already read. Pure; the snapshot itself when nothing changes.
 */
export function withUnreadListingsUnknown(snapshot: Snapshot): Snapshot {
  // Per project and region (null: every region of the project), what was not listed there.
  const unread = new Map<string, Map<string | null, Set<ProblemSubject>>>();
  for (const p of snapshot.problems ?? []) {
    if (UNREAD_LISTING[p.subject] === undefined) continue;
    let regions = unread.get(p.project);
    if (!regions) unread.set(p.project, (regions = new Map()));
    let subjects = regions.get(p.region);
    if (!subjects) regions.set(p.region, (subjects = new Set()));
    subjects.add(p.subject);
  }
  if (unread.size === 0) return snapshot;
  const why = (id: PoolId): string | null => {
    const regions = unread.get(id.project);
    return unreadListingsNote(
      id.region,
      new Set([...(regions?.get(null) ?? []), ...(regions?.get(id.region) ?? [])]),
    );
  };
  const pools = snapshot.pools.map((p) => {
    const reason = p.budgetUnknown === undefined ? why(p) : null;
    return reason === null ? p : { ...p, budgetUnknown: reason };
  });
  const known = new Set(snapshot.pools.map((p) => poolKey(p)));
  for (const id of [...snapshot.services, ...snapshot.unmanagedUsage]) {
    const key = poolKey(id);
    const reason = known.has(key) ? null : why(id);
    if (reason === null) continue;
    known.add(key);
    pools.push({ ...poolIdOf(id), quota: null, budgetUnknown: reason });
  }
  const changed =
    pools.length !== snapshot.pools.length || pools.some((p, i) => p !== snapshot.pools[i]);
  return changed ? { ...snapshot, pools } : snapshot;
}

/**
 * The snapshot as `governor snapshot` prints it: JSON indented two spaces, one key a line, but each
 * list of numbers (a service's minutes) on one line. Indented one number a line, a week of minutes
 * (the longest lookback) took some 450 KB a service, so a snapshot of 150 such services was more
 * than `plan --snapshot` reads (64 MiB); on one line it takes about a sixth of that.
 */
export function formatSnapshot(snapshot: Snapshot): string {
  // Its notes may quote an error in Google's words: what a terminal would act on is escaped.
  return `${escapedJson(jsonText(snapshot, ''))}\n`;
}

/** JSON.stringify(value, null, 2), but with lists of numbers on one line. */
function jsonText(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.length === 0 || value.every((v) => typeof v === 'number'))
      return JSON.stringify(value);
    const inner = `${indent}  `;
    return `[\n${value.map((v) => `${inner}${jsonText(v ?? null, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const inner = `${indent}  `;
    // As JSON.stringify: a key whose value is undefined is left out.
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const lines = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${jsonText(v, inner)}`);
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
