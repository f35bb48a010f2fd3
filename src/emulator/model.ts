import { compareText, effectiveMax as maxOfLevels, samePool } from '../core/pool.js';
import { DEFAULT_CONCURRENCY } from '../core/service.js';
import { demandAt, type DemandContext } from './demand.js';
import { shown } from './rpc.js';
import type {
  Demand,
  Fleet,
  FleetJob,
  FleetService,
  FleetWorkerPool,
  Gpu,
  Traces,
} from './fleet.js';

/**
 * The fleet on a clock. Pure: no I/O and no wall clock; time only moves through `advanceTo`.
 *
 * Once per virtual minute every service's instances follow its demand (whole instances), capped
 * by its effective max (the lower of the service-level and the revision-level max; when neither is
 * set, what Cloud Run derives from the regional quota: quota ÷ GPUs per instance, 100 without a
 * quota) and by its pool's quota, which counts the GPUs held by every instance (active or
 * idle) of the pool's services and worker pools, and by the running tasks of job executions. Demand that cannot be served is counted as
 * refused instance- and GPU-minutes, with the reason: `cap` (above the effective max) or `quota`
 * (the pool had no free GPU to start an instance). Instances no longer needed stay idle for
 * `idleMinutes` before they stop; min instances stay idle. A new instance holds its GPU at once
 * but serves only after its start-up time (counted as cold-start minutes, not as refusals).
 *
 * The same minute in requests ({@link RequestMinute}): demand of d instances is d × the
 * service's requests per instance-minute arriving; the instances ready in the minute serve what
 * they can; the rest wait in Cloud Run's pending queue, at most `pendingSeconds` (Google's "About
 * instance autoscaling": requests pend up to 3.5 × the average start-up time or 10 s, whichever
 * is greater, then fail with 429), and what the queue cannot hold is refused.
 */

export const MINUTE_MS = 60_000;

/**
 * How long a metric point takes to become visible when not told (`metricsLagMs`): three minutes,
 * within Google's example of "not visible for up to 240 seconds"
 * (https://cloud.google.com/monitoring/api/v3/latency-n-retention). The simulation's default
 * `--lag` is the same (test/simulate/defaults.test.ts).
 */
export const DEFAULT_METRICS_LAG_MS = 3 * MINUTE_MS;

export interface ServiceKey {
  readonly project: string;
  readonly region: string;
  readonly name: string;
}

interface PoolKey {
  readonly project: string;
  /** Undefined for a quota entry that applies to every region without its own. */
  readonly region: string | undefined;
  readonly accelerator: string;
  readonly zonalRedundancy: boolean;
}

export interface Instance {
  readonly id: number;
  readonly startedAt: number;
  readonly readyAt: number;
  /** The start of the last minute it was busy (or started): busy until a minute later. */
  lastBusyAt: number;
}

export interface Refused {
  /** Instance-minutes refused because the effective max was reached. */
  capInstanceMinutes: number;
  /** Instance-minutes refused because the pool's quota had no free GPU. */
  quotaInstanceMinutes: number;
  capGpuMinutes: number;
  quotaGpuMinutes: number;
}

export interface ServiceState extends ServiceKey {
  /** As the fleet set it, but for the service-level scaling another writer changed since. */
  spec: FleetService;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Service-level `scaling.max_instance_count`; 0 means unset. */
  maxInstances: number;
  minInstances: number;
  /** Revision-level `template.scaling.max_instance_count`; 0 means unset. */
  revisionMaxInstances: number;
  revisionMinInstances: number;
  demand: Demand;
  revisionIndex: number;
  generation: number;
  etag: string;
  /**
   * Which resource of this name it is: 0 for the fleet's, then 1, 2, ... for each service created
   * since. A service deleted and created again under the same name is a new resource: Cloud Run
   * gives it a new `uid` ("guaranteed to remain unchanged until the resource is deleted") and its
   * etag fingerprints "this version of the resource"
   * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services), so its
   * etags are not the deleted one's: a write sent with the old service's etag is refused (ABORTED).
   */
  incarnation: number;
  createTime: number;
  updateTime: number;
  /** Virtual time at which the deployment in flight ends; null when none is. */
  deployingUntil: number | null;
  instances: Instance[];
  refused: Refused;
  coldStartInstanceMinutes: number;
  servedInstanceMinutes: number;
  demandInstanceMinutes: number;
  /** Demand (instances, fractional) at the latest minute. */
  lastDemand: number;
  /**
   * Requests waiting in Cloud Run's pending queue at the end of the latest minute, by the number
   * of minute ends they have waited through (index 0: one).
   */
  pendingRequests: number[];
  /** What Cloud Run derives when neither max is set: the pool's quota ÷ GPUs (100 without one). */
  unsetMax: number;
  /**
   * Retired revisions another writer deleted (short names; Cloud Run deletes no other, see
   * {@link deleteRefusal}): NOT_FOUND when read, and no split can send them traffic again.
   */
  deletedRevisions: string[];
  /**
   * The revisions the emulator models, each as it was made and never changed after (see
   * {@link RevisionRecord}): the serving one, the one a split sends traffic to, the latest
   * created, a tagged one, and the retired ones, kept as Cloud Run keeps them, up to
   * {@link MAX_REVISIONS_KEPT}.
   */
  revisions: RevisionRecord[];
  /** The latest created revision's index: the serving one's, or a newer one's without traffic. */
  latestIndex: number;
  /** An older revision keeping `percent` of the traffic by name; null: none. */
  split: { index: number; percent: number } | null;
  /** A tag on a revision without traffic (a 0% target of its own); null: none. */
  tagged: { index: number; tag: string } | null;
  /**
   * The revision an edit's split or tag made where none is before the serving one (see
   * {@link otherRevisionIndex}); null: none made.
   */
  madeForSplit: number | null;
}

/**
 * A revision as its service made it. A Cloud Run revision is "an immutable snapshot of code and
 * configuration", and revisions "are only created by updates to its parent Service"
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions):
 * once made, a record never changes, so a name always means the same revision.
 */
export interface RevisionRecord {
  /** Its number in its name (`{service}-{index}-{suffix}`). */
  readonly index: number;
  /** Its own `scaling.max_instance_count`; 0: unset. */
  readonly maxInstances: number;
  /** Its own `scaling.min_instance_count`. */
  readonly minInstances: number;
  /** Its own GPU (absent: none). */
  readonly gpu?: Gpu;
  /** Its deployment failed: it never became ready, and no traffic can go to it. */
  readonly failed: boolean;
  /** Virtual time it was made at: its Ready condition's last transition. */
  readonly madeAt: number;
}

export interface WorkerPoolState {
  readonly project: string;
  readonly region: string;
  readonly name: string;
  /** Replaced whole when another writer scales the pool (scaleWorkerPool). */
  spec: FleetWorkerPool;
  readonly createTime: number;
}

/** One revision of a worker pool that holds instances, as the emulator models it. */
export interface WorkerPoolRevision {
  /** Short name. */
  readonly name: string;
  /** Its own GPU (absent: none). */
  readonly gpu: Gpu | undefined;
  /** Its share of the instance split. */
  readonly percent: number;
  /** The instances it runs of the pool's `manual_instance_count`. */
  readonly instances: number;
}

/**
 * The revisions of a worker pool that hold its instances: the latest one, and with an instance
 * split (`previousRevision`) an older one before it, with its own GPU. A worker pool's
 * `manual_instance_count` is "the total number of instances in manual scaling mode"
 * (WorkerPoolScaling, google/cloud/run/v2/vendor_settings.proto); how Cloud Run divides them
 * between the revisions of a split Google does not say
 * (https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks), so the
 * emulator gives the older revision its share rounded up and the latest the rest.
 */
export function workerPoolRevisions(
  w: Pick<WorkerPoolState, 'name' | 'spec'>,
): WorkerPoolRevision[] {
  const { gpu, manualInstanceCount, previousRevision } = w.spec;
  const name = (index: number) => revisionName({ name: w.name, revisionIndex: index });
  if (!previousRevision)
    return [{ name: name(1), gpu, percent: 100, instances: manualInstanceCount }];
  const older = Math.ceil((manualInstanceCount * previousRevision.percent) / 100);
  return [
    {
      name: name(1),
      gpu: previousRevision.gpu === undefined ? gpu : (previousRevision.gpu ?? undefined),
      percent: previousRevision.percent,
      instances: older,
    },
    {
      name: name(2),
      gpu,
      percent: 100 - previousRevision.percent,
      instances: manualInstanceCount - older,
    },
  ];
}

export interface JobState {
  readonly project: string;
  readonly region: string;
  readonly name: string;
  readonly spec: FleetJob;
  readonly createTime: number;
  /** The virtual start, from which executions' `startMinute` count. */
  readonly originMs: number;
}

/** One execution of a job as it stands at a given time. */
export interface ExecutionState {
  readonly job: JobState;
  /** Short name, `{job}-{suffix}` as Cloud Run names executions. */
  readonly name: string;
  readonly startAt: number;
  /** Tasks run at once (the job's parallelism, 0 meaning all of them). */
  readonly parallelism: number;
  readonly taskCount: number;
  readonly running: number;
  readonly succeeded: number;
  /** Set once every task has succeeded. */
  readonly completedAt: number | undefined;
}

/**
 * The executions of a job that have started by `t`: each runs its tasks in waves of
 * `parallelism`, each wave `taskMinutes` long; tasks never fail and always get their GPUs.
 */
export function jobExecutions(job: JobState, t: number): ExecutionState[] {
  const taskCount = job.spec.taskCount;
  const parallelism = Math.min(job.spec.parallelism || taskCount, taskCount);
  return job.spec.executions.flatMap((e, index) => {
    const startAt = job.originMs + e.startMinute * MINUTE_MS;
    if (startAt > t) return [];
    const taskMs = e.taskMinutes * MINUTE_MS;
    const completedAt = startAt + Math.ceil(taskCount / parallelism) * taskMs;
    const waves = Math.floor((t - startAt) / taskMs);
    const succeeded = t >= completedAt ? taskCount : Math.min(taskCount, waves * parallelism);
    return [
      {
        job,
        name: `${job.name}-${executionSuffix(job.name, index)}`,
        startAt,
        parallelism,
        taskCount,
        running: t >= completedAt ? 0 : Math.min(parallelism, taskCount - succeeded),
        succeeded,
        completedAt: t >= completedAt ? completedAt : undefined,
      },
    ];
  });
}

function executionSuffix(job: string, index: number): string {
  let h = 7;
  const raw = `${job}#${index}`;
  for (let i = 0; i < raw.length; i++) h = (h * 33 + raw.charCodeAt(i)) >>> 0;
  return h.toString(36).slice(-5).padStart(5, 'x');
}

/** One service revision's state during one virtual minute. */
export interface MinuteSample {
  /** Start of the minute (ms). */
  readonly at: number;
  readonly revision: string;
  readonly active: number;
  readonly idle: number;
  /** Mean GPU (or CPU) utilisation of the revision's instances, 0..1. */
  readonly utilization: number;
  /**
   * Mean over the active instances of the most requests each served at once in the minute (what
   * `run.googleapis.com/container/max_request_concurrencies` shows, state active): the service's
   * concurrency when requests waited beyond the minute (pending, refused or unavailable), else
   * its concurrency × the share of the active instances' capacity the minute's requests used.
   * A fluid minute's peak is its mean: a real instance's peak within a minute is higher, so the
   * model shows "full" less often than Cloud Run would. Read by bench/evidence-gap.ts only.
   */
  readonly peakConcurrency: number;
  /** The max instances in force that minute (the service's effective cap). */
  readonly cap: number;
  readonly demand: number;
  readonly refusedCap: number;
  readonly refusedQuota: number;
  /** The minute in requests. */
  readonly requests: RequestMinute;
}

/**
 * One service's requests in one minute, as Cloud Run answers them.
 *
 * - `served`: reached an instance (answered by the container; the model's containers answer 200).
 * - `refused`: waited in the pending queue up to the pending window and were answered 429 by Cloud
 *   Run itself: the service was at its max instances (Google, "About instance autoscaling":
 *   "If no instances become available during this window, the request fails with a 429 error
 *   code"), or, rarely, the queue overflowed while instances within the cap were still starting.
 * - `unavailable`: waited for an instance the pool's GPU quota did not let start. How Cloud Run
 *   answers those is not documented for this case (Google's known-issues page reports "429 or
 *   503 errors" with "no available instance" when instances cannot start; docs/rules.md calls them 503s).
 *   The model answers 503, the conservative choice: the governor never counts on seeing them as
 *   429s, and while caps sum within the quota it never happens to a governed service.
 * Both refusals are answered by Cloud Run's front end, so neither reaches a container.
 */
export interface RequestMinute {
  readonly arrived: number;
  readonly served: number;
  readonly refused: number;
  readonly unavailable: number;
  /** Still pending at the end of the minute (served or refused later). */
  readonly pending: number;
}

/** Requests one instance serves at once: its template's concurrency, or Cloud Run's default. */
export function concurrencyOf(spec: FleetService): number {
  return spec.concurrency > 0 ? spec.concurrency : DEFAULT_CONCURRENCY;
}

/** Requests one instance serves in a minute: concurrency × 60 s ÷ the mean request time. */
export function requestsPerInstanceMinute(spec: FleetService): number {
  return (concurrencyOf(spec) * 60) / spec.requestSeconds;
}

/**
 * How long a request pends for an instance before Cloud Run answers 429: the service's own
 * `pendingSeconds`, else Google's rule (docs.cloud.google.com/run/docs/about-instance-autoscaling,
 * "Exceeding maximum instances": "up to 3.5 times the average startup time of container instances
 * of this service, or 10 seconds, whichever is greater"). Other versions of the page say "up to
 * 60 seconds" and "up to 10 seconds"; the window only matters for bursts shorter than it.
 */
export function pendingSecondsOf(spec: FleetService, fleetStartupSeconds: number): number {
  if (spec.pendingSeconds !== undefined) return spec.pendingSeconds;
  return Math.max(10, 3.5 * (spec.startupSeconds ?? fleetStartupSeconds));
}

interface PoolUsage extends PoolKey {
  readonly region: string;
  readonly quota: number | undefined;
  /** Sum over the pool's services of effective max x GPUs per instance. */
  readonly capsGpus: number;
  /** GPUs held right now by services' instances. */
  readonly serviceGpus: number;
  readonly workerPoolGpus: number;
  /** GPUs held right now by the running tasks of job executions. */
  readonly jobGpus: number;
  readonly services: readonly string[];
}

interface ModelOptions {
  readonly traces?: Traces;
  /** Minutes of per-minute history kept (default two days). */
  readonly historyMinutes?: number;
}

function serviceId(k: ServiceKey): string {
  return `${k.project}/${k.region}/${k.name}`;
}

function quotaId(k: PoolKey): string {
  return `${k.project}|${k.region ?? '*'}|${k.accelerator}|${k.zonalRedundancy}`;
}

/** Deterministic fingerprint of a resource version, shaped like Cloud Run's quoted etags. */
function etagFor(key: ServiceKey, generation: number, incarnation: number): string {
  const id = incarnation === 0 ? serviceId(key) : `${serviceId(key)}@${incarnation}`;
  const raw = `${id}#${generation}`;
  let h = 2166136261;
  for (let i = 0; i < raw.length; i++) {
    h ^= raw.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return `"${Buffer.from(`${h.toString(16)}.${generation}`).toString('base64url')}"`;
}

function revisionSuffix(name: string, incarnation = 0): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  // A later incarnation's suffix: mixed so that its leading digits, which the suffix keeps, differ
  // (the hash of `name` and a number after it differs in its low digits only).
  if (incarnation > 0) {
    h = Math.imul(h ^ incarnation, 0x9e3779b1) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
  }
  return h.toString(36).slice(0, 3).padEnd(3, 'x');
}

/**
 * A revision's short name, `{service}-{index}-{suffix}` as Cloud Run names them. The suffix is
 * the service's own: another service created under a deleted one's name (a later `incarnation`)
 * has another, so that a name never comes back as another revision (a revision is "an immutable
 * snapshot of code and configuration",
 * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions).
 */
export function revisionName(
  service: Pick<ServiceState, 'name' | 'revisionIndex'> & { incarnation?: number },
): string {
  const suffix = revisionSuffix(service.name, service.incarnation ?? 0);
  return `${service.name}-${String(service.revisionIndex).padStart(5, '0')}-${suffix}`;
}

/** The revision of `s` numbered `index`, as it was made; undefined: not modeled. */
export function revisionOf(
  s: Pick<ServiceState, 'revisions'>,
  index: number,
): RevisionRecord | undefined {
  return s.revisions.find((r) => r.index === index);
}

/** The short name of the revision of `s` numbered `index`. */
export function nameOf(s: Pick<ServiceState, 'name' | 'incarnation'>, index: number): string {
  return revisionName({ name: s.name, revisionIndex: index, incarnation: s.incarnation });
}

/**
 * Whether the traffic of `s` goes to revisions by name rather than to LATEST: a split with an
 * older revision, or a newer ready revision deployed without traffic (either not deleted).
 */
export function trafficByName(s: ServiceState): boolean {
  const live = (index: number) =>
    s.deletedRevisions.includes(nameOf(s, index)) ? undefined : revisionOf(s, index);
  return (
    (s.split !== null && live(s.split.index) !== undefined) ||
    (s.latestIndex !== s.revisionIndex && live(s.latestIndex)?.failed === false)
  );
}

/**
 * The number a new revision of `s` gets: the next after the highest it ever made. Cloud Run
 * numbers a service's revisions upward from 00001 (Knative's `{service}-{generation}`, see
 * {@link initialRevisions}; Google says only "The revision suffix is assigned automatically",
 * https://cloud.google.com/run/docs/managing/revisions) and never makes a name again: a revision is "an immutable snapshot of
 * code and configuration"
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions).
 * The latest created is the highest: the emulator drops no revision newer than it.
 */
function nextRevisionIndex(s: Pick<ServiceState, 'latestIndex' | 'revisions'>): number {
  return Math.max(s.latestIndex, ...s.revisions.map((r) => r.index)) + 1;
}

/**
 * The revision of `s` an edit's split or tag goes to (the admin `edit`'s `previousRevision` and
 * `tagPrevious`): the one before the serving one. Before a first serving revision (00001) there
 * is none, as Cloud Run numbers from 00001: the edit makes one, as a deployment without traffic
 * would (numbered by {@link nextRevisionIndex}, the latest created), and later edits go to that
 * one; undefined until it is made.
 */
export function otherRevisionIndex(
  s: Pick<ServiceState, 'revisionIndex' | 'madeForSplit'>,
): number | undefined {
  return s.revisionIndex > 1 ? s.revisionIndex - 1 : (s.madeForSplit ?? undefined);
}

/**
 * Why a split of the traffic of `s` with the revision before its serving one (the admin `edit`'s
 * `previousRevision`, see {@link otherRevisionIndex}) is not one Cloud Run takes, or undefined
 * when it is. A split moves traffic
 * between revisions and changes none of them ("Rollbacks, gradual rollouts, and traffic
 * migration", https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration): a revision
 * made with another own max cannot be given this one, as a revision is immutable
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions).
 * Traffic cannot go to a revision that never became ready or that was deleted.
 */
export function splitRefusal(
  s: ServiceState,
  split: { maxInstances?: number | undefined },
  deleted: readonly string[] = s.deletedRevisions,
): string | undefined {
  const index = otherRevisionIndex(s);
  // None yet: the edit makes it, with the max it gives.
  if (index === undefined) return undefined;
  const name = nameOf(s, index);
  if (deleted.includes(name)) return `revision ${name} was deleted: no traffic can go to it`;
  const made = revisionOf(s, index);
  if (made === undefined) return undefined;
  if (made.failed)
    return `revision ${name} is not ready (its deployment failed): no traffic can go to it`;
  if (split.maxInstances !== undefined && split.maxInstances !== made.maxInstances)
    return `revision ${name} has its own max instances ${made.maxInstances}, not ${split.maxInstances}: revisions are immutable, so a split may change only its percent (leave maxInstances out)`;
  return undefined;
}

/**
 * The instances a MANUAL-scaling service runs: its `manual_instance_count`, or without one its
 * service-level min instances (ScalingMode.MANUAL: "Scale to exactly min instances and ignore max
 * instances", google/cloud/run/v2/vendor_settings.proto).
 */
export function manualCount(s: Pick<ServiceState, 'spec' | 'minInstances'>): number {
  return s.spec.manualInstanceCount ?? s.minInstances;
}

/** The cap in force of an emulated service (0: a level that sets none), by Cloud Run's rule. */
export function effectiveMax(
  s: Pick<ServiceState, 'maxInstances' | 'revisionMaxInstances'> & { unsetMax?: number },
): number {
  return maxOfLevels({
    serviceMaxInstances: s.maxInstances,
    revisionMaxInstances: s.revisionMaxInstances,
    unsetMax: s.unsetMax,
  });
}

export function gpusPerInstance(s: { spec: { gpu?: Gpu | undefined } }): number {
  return s.spec.gpu?.count ?? 0;
}

function floorInstances(s: ServiceState): number {
  return Math.min(Math.max(s.minInstances, s.revisionMinInstances), effectiveMax(s));
}

/**
 * The most revisions Cloud Run keeps of a service: "There is a maximum of 1000 revisions per
 * service: If you exceed that limit, older revisions are automatically deleted" (Manage
 * revisions, https://cloud.google.com/run/docs/managing/revisions).
 */
const MAX_REVISIONS_KEPT = 1000;

/**
 * The revisions a service of the fleet starts with, numbered from 00001 as Cloud Run numbers
 * them (its revisions are Knative's, `{service}-{generation}` from generation 1: "created to
 * latest revision 'testsrv-00001'", https://github.com/knative/serving/issues/13743): the older
 * one of its `previousRevision` or `taggedRevision` (1, the serving one then 2), its serving one,
 * and the newer one of its `noTrafficRevision` (after the serving one).
 */
function initialRevisions(
  spec: FleetService,
  madeAt: number,
): Pick<
  ServiceState,
  'revisions' | 'revisionIndex' | 'latestIndex' | 'split' | 'tagged' | 'madeForSplit'
> {
  const own = spec.gpu ? { gpu: spec.gpu } : {};
  const prev = spec.previousRevision;
  const next = spec.noTrafficRevision;
  // The fleet's schema allows one of the two (both are the revision before the serving one).
  const older = prev ?? spec.taggedRevision;
  const serving = older ? 2 : 1;
  const revisions: RevisionRecord[] = [];
  if (older)
    revisions.push({
      index: serving - 1,
      maxInstances: older.maxInstances ?? 0,
      minInstances: 0,
      failed: false,
      madeAt,
      ...own,
    });
  revisions.push({
    index: serving,
    maxInstances: spec.revisionMaxInstances ?? 0,
    minInstances: spec.revisionMinInstances,
    failed: false,
    madeAt,
    ...own,
  });
  if (next) {
    const gpu = next.gpu === undefined ? spec.gpu : (next.gpu ?? undefined);
    revisions.push({
      index: serving + 1,
      maxInstances: next.maxInstances ?? 0,
      minInstances: next.minInstances,
      failed: next.failed,
      madeAt,
      ...(gpu ? { gpu } : {}),
    });
  }
  return {
    revisions,
    revisionIndex: serving,
    latestIndex: next ? serving + 1 : serving,
    split: prev ? { index: serving - 1, percent: prev.percent } : null,
    tagged:
      next?.tag !== undefined
        ? { index: serving + 1, tag: next.tag }
        : spec.taggedRevision
          ? { index: serving - 1, tag: spec.taggedRevision.tag }
          : null,
    madeForSplit: null,
  };
}

/**
 * Whether Cloud Run would delete revision `index` of `s`, or why not (the words of its
 * FAILED_PRECONDITION). "Only retired revisions can
 * be deleted" (DeleteRevisionRequest, google/cloud/run/v2/revision.proto); Cloud Run refuses one
 * that "can receive traffic" (a share of the split, or a tag, whose URL reaches it), "is the
 * only revision of the service" or "is the latest revision of the service" (Manage revisions,
 * https://cloud.google.com/run/docs/managing/revisions), with FAILED_PRECONDITION: "Error 400:
 * Revision "example-nodejs-fgpqh" cannot be directly deleted because it is actively serving.,
 * failedPrecondition" (https://github.com/hashicorp/waypoint/issues/814).
 */
function deleteRefusal(s: ServiceState, index: number): string | undefined {
  const name = nameOf(s, index);
  const serving = (reason: string) =>
    `Revision "${name}" cannot be directly deleted because it is actively serving. (${reason}: only retired revisions can be deleted)`;
  if (index === s.revisionIndex) return serving('it takes the traffic');
  if (s.split !== null && s.split.index === index)
    return serving(`it keeps ${s.split.percent}% of the traffic`);
  if (s.tagged !== null && s.tagged.index === index)
    return serving(`it has the tag ${s.tagged.tag}, whose URL reaches it`);
  if (index === s.latestIndex)
    return `Revision "${name}" cannot be deleted: it is the latest revision of the service (only retired revisions can be deleted)`;
  return undefined;
}

/**
 * Whether another writer may delete the revision of `s` named `name` (the admin `edit`'s
 * `deleteRevision`, and `Revisions.DeleteRevision`): `missing` for one the emulator does not
 * model or that was deleted already (NOT_FOUND, as GetRevision answers it); `refused` with
 * {@link deleteRefusal}'s words for one Cloud Run keeps; else its index.
 */
export function revisionDeletion(
  s: ServiceState,
  name: string,
): { missing: true } | { refused: string } | { index: number } {
  const made = s.deletedRevisions.includes(name)
    ? undefined
    : s.revisions.find((r) => nameOf(s, r.index) === name);
  if (made === undefined) return { missing: true };
  const refused = deleteRefusal(s, made.index);
  return refused === undefined ? { index: made.index } : { refused };
}

/**
 * Drops the oldest revisions of `s` past {@link MAX_REVISIONS_KEPT}, as Cloud Run deletes them;
 * never one in use (what serves, a split's or a tag's, the latest created).
 */
function keepAtMost(s: ServiceState): void {
  const live = s.revisions.filter((r) => !s.deletedRevisions.includes(nameOf(s, r.index)));
  let over = live.length - MAX_REVISIONS_KEPT;
  if (over <= 0) return;
  const dropped = new Set<number>();
  for (const r of [...s.revisions].sort((a, b) => a.index - b.index)) {
    if (over <= 0) break;
    if (deleteRefusal(s, r.index) !== undefined) continue;
    dropped.add(r.index);
    // A deleted revision's record goes too, but it was not one of the 1000.
    if (!s.deletedRevisions.includes(nameOf(s, r.index))) over -= 1;
  }
  s.revisions = s.revisions.filter((r) => !dropped.has(r.index));
  // Nor is its name kept: without its record it is not found all the same.
  const gone = new Set([...dropped].map((i) => nameOf(s, i)));
  s.deletedRevisions = s.deletedRevisions.filter((n) => !gone.has(n));
}

interface ProjectIndex {
  /** Sorted by `serviceId`. */
  readonly services: ServiceState[];
  readonly workerPools: WorkerPoolState[];
  readonly jobs: JobState[];
  /** The project's quota entries, in the order they entered the fleet's map. */
  readonly quotaIds: Set<string>;
}

/** The resources called `name`, in `project` and `region` when they are given. */
function named<T extends { name: string; project: string; region: string }>(
  all: readonly T[],
  name: string,
  project: string | undefined,
  region: string | undefined,
): T[] {
  return all.filter(
    (r) =>
      r.name === name &&
      (project === undefined || r.project === project) &&
      (region === undefined || r.region === region),
  );
}

export class FleetModel {
  readonly startMs: number;
  private nowMs: number;
  private nextStepMs: number;
  private nextInstanceId = 1;
  /** Services created since the fleet was loaded (each one's `incarnation`). */
  private created = 0;
  private readonly services = new Map<string, ServiceState>();
  private readonly workerPools: WorkerPoolState[] = [];
  private readonly jobs: JobState[] = [];
  private readonly quotas = new Map<string, { key: PoolKey; quota: number | undefined }>();
  /**
   * The same resources by project, so that a call about one project costs what that project
   * holds, not what the whole fleet holds (an organisation of 1,000 projects answered each call
   * by scanning 10,000 services). Services come and go only by another writer (addService,
   * removeService).
   */
  private readonly ofProject = new Map<string, ProjectIndex>();
  /** Every service, in `serviceId` order (computed again only when a service comes or goes). */
  private sortedServices: ServiceState[] = [];
  private readonly samples = new Map<string, MinuteSample[]>();
  /**
   * Deleted services by project, with the minutes they had: Monitoring keeps a deleted resource's
   * series until its points pass their retention
   * (https://cloud.google.com/monitoring/api/v3/latency-n-retention), so they stay listed until
   * their newest minute is older than `historyMinutes`, or a service of the same name is created
   * again (its series would share their labels; the emulator keeps the new one's only).
   */
  private readonly departed = new Map<string, { state: ServiceState; rows: MinuteSample[] }[]>();
  private readonly historyMinutes: number;
  private readonly startupMs: number;
  private readonly idleMs: number;
  private readonly demandCtx: DemandContext;

  constructor(
    readonly fleet: Fleet,
    options: ModelOptions = {},
  ) {
    this.startMs = Date.parse(fleet.start);
    this.historyMinutes = options.historyMinutes ?? 2 * 24 * 60;
    this.startupMs = fleet.startupSeconds * 1000;
    this.idleMs = fleet.idleMinutes * MINUTE_MS;
    this.demandCtx = {
      timezone: fleet.timezone,
      startMs: this.startMs,
      traces: options.traces ?? new Map(),
    };
    const begin = this.startMs - fleet.warmupMinutes * MINUTE_MS;
    this.nowMs = begin;
    this.nextStepMs = Math.ceil(begin / MINUTE_MS) * MINUTE_MS;

    for (const project of fleet.projects) {
      for (const pool of project.pools) {
        const key: PoolKey = {
          project: project.id,
          region: pool.region,
          accelerator: pool.accelerator,
          zonalRedundancy: pool.zonalRedundancy,
        };
        this.quotas.set(quotaId(key), { key, quota: pool.quota });
        this.indexOf(project.id).quotaIds.add(quotaId(key));
      }
      for (const spec of project.services) {
        const state = this.newService(project.id, spec, begin);
        this.services.set(serviceId(state), state);
        this.samples.set(serviceId(state), []);
        this.indexOf(project.id).services.push(state);
      }
      for (const spec of project.workerPools) {
        const w: WorkerPoolState = {
          project: project.id,
          region: spec.region,
          name: spec.name,
          spec,
          createTime: begin,
        };
        this.workerPools.push(w);
        this.indexOf(project.id).workerPools.push(w);
      }
      for (const spec of project.jobs) {
        const job: JobState = {
          project: project.id,
          region: spec.region,
          name: spec.name,
          spec,
          // Created before its first execution began.
          createTime: Math.min(
            begin,
            ...spec.executions.map((e) => this.startMs + e.startMinute * MINUTE_MS),
          ),
          originMs: this.startMs,
        };
        this.jobs.push(job);
        this.indexOf(project.id).jobs.push(job);
      }
    }
    const byId = (a: ServiceState, b: ServiceState) => compareText(serviceId(a), serviceId(b));
    this.sortedServices = [...this.services.values()].sort(byId);
    for (const index of this.ofProject.values()) index.services.sort(byId);
    this.deriveUnsetMaxes();
    this.advanceTo(this.startMs - 1);
    // Counters start at the virtual start: the warm-up only fills the metrics history.
    for (const s of this.services.values()) {
      s.refused = {
        capInstanceMinutes: 0,
        quotaInstanceMinutes: 0,
        capGpuMinutes: 0,
        quotaGpuMinutes: 0,
      };
      s.coldStartInstanceMinutes = 0;
      s.servedInstanceMinutes = 0;
      s.demandInstanceMinutes = 0;
    }
    this.advanceTo(this.startMs);
  }

  get now(): number {
    return this.nowMs;
  }

  /** A service's state as created at `at` from its fleet settings. */
  private newService(
    project: string,
    spec: FleetService,
    at: number,
    incarnation = 0,
  ): ServiceState {
    const key = { project, region: spec.region, name: spec.name };
    const state: ServiceState = {
      ...key,
      spec,
      labels: { ...spec.labels },
      annotations: { ...spec.annotations },
      maxInstances: spec.maxInstances ?? 0,
      minInstances: spec.minInstances,
      revisionMaxInstances: spec.revisionMaxInstances ?? 0,
      revisionMinInstances: spec.revisionMinInstances,
      demand: spec.demand,
      generation: 1,
      etag: etagFor(key, 1, incarnation),
      incarnation,
      createTime: at,
      updateTime: at,
      deployingUntil: null,
      instances: [],
      refused: {
        capInstanceMinutes: 0,
        quotaInstanceMinutes: 0,
        capGpuMinutes: 0,
        quotaGpuMinutes: 0,
      },
      coldStartInstanceMinutes: 0,
      servedInstanceMinutes: 0,
      demandInstanceMinutes: 0,
      lastDemand: 0,
      pendingRequests: [],
      unsetMax: 100,
      deletedRevisions: [],
      ...initialRevisions(spec, at),
    };
    return state;
  }

  /**
   * Another writer creates a service (deployed at once: ready, no deployment in flight); the
   * caller checks its max against the quota, as Cloud Run does.
   */
  addService(project: string, spec: FleetService): ServiceState {
    const key = { project, region: spec.region, name: spec.name };
    if (this.services.has(serviceId(key))) throw new Error(`service ${serviceId(key)} exists`);
    this.created += 1;
    const state = this.newService(project, spec, this.nowMs, this.created);
    this.services.set(serviceId(key), state);
    this.samples.set(serviceId(key), []);
    const gone = this.departed.get(project);
    if (gone) {
      const kept = gone.filter((d) => serviceId(d.state) !== serviceId(key));
      if (kept.length === 0) this.departed.delete(project);
      else this.departed.set(project, kept);
    }
    const index = this.indexOf(project);
    index.services.push(state);
    const byId = (a: ServiceState, b: ServiceState) => compareText(serviceId(a), serviceId(b));
    index.services.sort(byId);
    this.sortedServices = [...this.services.values()].sort(byId);
    this.deriveUnsetMaxes(project);
    return state;
  }

  /** Another writer deletes a service: gone from every list, NOT_FOUND when read or written. */
  removeService(key: ServiceKey): void {
    const s = this.mustGet(key);
    const rows = this.samples.get(serviceId(s)) ?? [];
    this.departed.set(s.project, [...(this.departed.get(s.project) ?? []), { state: s, rows }]);
    this.services.delete(serviceId(s));
    this.samples.delete(serviceId(s));
    const index = this.ofProject.get(s.project);
    const at = index?.services.indexOf(s) ?? -1;
    if (index && at >= 0) index.services.splice(at, 1);
    this.sortedServices = this.sortedServices.filter((x) => x !== s);
  }

  /** Moves time forward, running every whole minute crossed. Going back is a no-op. */
  advanceTo(atMs: number): void {
    while (this.nextStepMs <= atMs) {
      this.step(this.nextStepMs);
      this.nextStepMs += MINUTE_MS;
    }
    if (atMs > this.nowMs) this.nowMs = atMs;
  }

  advance(ms: number): void {
    this.advanceTo(this.nowMs + Math.max(0, ms));
  }

  /** Every service (or one project's), sorted by project, region and name. */
  listServices(project?: string): ServiceState[] {
    if (project === undefined) return [...this.sortedServices];
    return [...(this.ofProject.get(project)?.services ?? [])];
  }

  getService(key: ServiceKey): ServiceState | undefined {
    return this.services.get(serviceId(key));
  }

  /** Finds a service by name alone, or by project/region/name; throws when ambiguous or unknown. */
  findService(name: string, project?: string, region?: string): ServiceState {
    const found = named(this.listServices(), name, project, region);
    if (found.length !== 1) {
      // The name, project and region are the caller's: quoted cut short, on one line.
      const where = [
        ...(project === undefined ? [] : [`in project "${shown(project)}"`]),
        ...(region === undefined ? [] : [`in region "${shown(region)}"`]),
      ];
      throw new Error(
        found.length === 0
          ? `no service named "${shown(name)}"${where.length ? ` ${where.join(' ')}` : ''}`
          : `several services named "${shown(name)}": give project and region`,
      );
    }
    return found[0] as ServiceState;
  }

  /** Every worker pool (or one project's), in fleet order. */
  listWorkerPools(project?: string): readonly WorkerPoolState[] {
    if (project === undefined) return this.workerPools;
    return this.ofProject.get(project)?.workerPools ?? [];
  }

  /**
   * Another writer sets a worker pool's manual instance count (Cloud Run scales a worker pool by
   * hand: https://cloud.google.com/run/docs/configuring/workerpools/manual-scaling): it holds that
   * many instances' GPUs from now.
   */
  scaleWorkerPool(
    name: string,
    manualInstanceCount: number,
    project?: string,
    region?: string,
  ): WorkerPoolState {
    // A worker pool's name is unique within its project and region, as a service's is.
    const found = named(this.listWorkerPools(), name, project, region);
    const w = found[0];
    if (found.length !== 1 || w === undefined)
      throw new Error(
        found.length === 0
          ? `no worker pool ${name}`
          : `worker pool ${name} is in several regions or projects: name its project and region`,
      );
    w.spec = { ...w.spec, manualInstanceCount };
    return w;
  }

  /** Every job (or one project's), in fleet order. */
  listJobs(project?: string): readonly JobState[] {
    if (project === undefined) return this.jobs;
    return this.ofProject.get(project)?.jobs ?? [];
  }

  history(key: ServiceKey): readonly MinuteSample[] {
    return this.samples.get(serviceId(key)) ?? [];
  }

  /**
   * What Monitoring has series of in a project: each service with its minutes, then each deleted
   * one whose minutes are still within `historyMinutes` (see `departed`).
   */
  monitored(project: string): { state: ServiceState; rows: readonly MinuteSample[] }[] {
    const live = this.listServices(project).map((state) => ({ state, rows: this.history(state) }));
    const gone = this.departed.get(project);
    if (!gone) return live;
    const oldest = this.nowMs - this.historyMinutes * MINUTE_MS;
    const kept = gone.filter((d) => (d.rows.at(-1)?.at ?? -Infinity) >= oldest);
    if (kept.length === 0) this.departed.delete(project);
    else if (kept.length < gone.length) this.departed.set(project, kept);
    return [...live, ...kept];
  }

  /** Quota entries as configured (region undefined: the regionless default entry). */
  quotaEntries(project?: string): { key: PoolKey; quota: number | undefined }[] {
    if (project === undefined) return [...this.quotas.values()];
    const out: { key: PoolKey; quota: number | undefined }[] = [];
    for (const id of this.ofProject.get(project)?.quotaIds ?? []) {
      const entry = this.quotas.get(id);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** The quota that applies to a concrete regional pool: its own entry, else the regionless one. */
  quotaFor(key: PoolKey & { region: string }): number | undefined {
    const own = this.quotas.get(quotaId(key));
    if (own?.quota !== undefined) return own.quota;
    return this.quotas.get(quotaId({ ...key, region: undefined }))?.quota;
  }

  setQuota(key: PoolKey, quota: number | undefined): void {
    const id = quotaId(key);
    const before = this.quotas.get(id);
    this.quotas.set(id, { key, quota });
    // A new entry goes after the existing ones, as a Map keeps insertion order.
    if (!before) this.indexOf(key.project).quotaIds.add(id);
    this.deriveUnsetMaxes(key.project);
  }

  /**
   * An unset max is derived from the regional quota (Google's "About maximum instances"): a GPU
   * service that sets none may run its pool's quota ÷ its GPUs per instance; without a quota, 100.
   * A quota is a project's: only that project's services change when one does.
   */
  private deriveUnsetMaxes(project?: string): void {
    for (const s of this.listServices(project)) {
      const pool = this.poolOf(s);
      const quota = pool ? this.quotaFor(pool) : undefined;
      s.unsetMax = quota === undefined ? 100 : Math.floor(quota / Math.max(1, gpusPerInstance(s)));
    }
  }

  setDemand(key: ServiceKey, demand: Demand): void {
    this.mustGet(key).demand = demand;
  }

  /**
   * A write through the Admin API: bumps generation and etag. Besides the max and the
   * annotations, another writer may change the service-level scaling: its mode, min instances
   * and manual instance count (null: unset).
   */
  update(
    key: ServiceKey,
    change: {
      maxInstances?: number;
      annotations?: Record<string, string>;
      scalingMode?: 'AUTOMATIC' | 'MANUAL';
      minInstances?: number;
      manualInstanceCount?: number | null;
      /**
       * A traffic split with the revision before the serving one (or, before a first serving
       * revision, one made after it: {@link otherRevisionIndex}); null: none. Its max is that
       * revision's own (absent: the one it was made with, or unset for one not modeled yet).
       */
      previousRevision?: { maxInstances?: number | undefined; percent: number } | null;
      /**
       * A tag on the revision before the serving one, without traffic (`gcloud run services
       * update-traffic --set-tags`); null: the tag removed. Its max as for `previousRevision`.
       */
      tagPrevious?: { tag: string; maxInstances?: number | undefined } | null;
    },
  ): ServiceState {
    const s = this.mustGet(key);
    const split = change.previousRevision;
    const refused = split ? splitRefusal(s, split) : undefined;
    if (refused !== undefined) throw new Error(refused);
    if (change.maxInstances !== undefined) s.maxInstances = change.maxInstances;
    if (change.annotations !== undefined) s.annotations = { ...change.annotations };
    if (change.minInstances !== undefined) s.minInstances = change.minInstances;
    if (change.scalingMode !== undefined || change.manualInstanceCount !== undefined) {
      const count =
        change.manualInstanceCount === undefined
          ? s.spec.manualInstanceCount
          : (change.manualInstanceCount ?? undefined);
      const spec: FleetService = {
        ...s.spec,
        scalingMode: change.scalingMode ?? s.spec.scalingMode,
      };
      if (count === undefined) delete spec.manualInstanceCount;
      else spec.manualInstanceCount = count;
      s.spec = spec;
    }
    // The revision before the serving one, as it was made (otherRevisionIndex); one the emulator
    // never modeled is taken as the split or the tag describes it. Before a first serving
    // revision (00001) there is none: the edit makes one after the highest, the latest created,
    // as `gcloud run deploy --no-traffic` then `update-traffic` would (docs/emulator.md), from
    // the template as every revision is ("The template used to create revisions", service.proto):
    // the template's min, and its max unless the edit gives one.
    const older = (maxInstances: number | undefined): number => {
      const before = otherRevisionIndex(s);
      const index = before ?? nextRevisionIndex(s);
      const fromTemplate = before === undefined;
      if (revisionOf(s, index) === undefined)
        s.revisions = [
          {
            index,
            maxInstances: maxInstances ?? (fromTemplate ? s.revisionMaxInstances : 0),
            minInstances: fromTemplate ? s.revisionMinInstances : 0,
            failed: false,
            // Older than the serving one: made no later than the service; else made now.
            madeAt: fromTemplate ? this.nowMs : s.createTime,
            ...(s.spec.gpu ? { gpu: s.spec.gpu } : {}),
          },
          ...s.revisions,
        ].sort((a, b) => a.index - b.index);
      if (fromTemplate) {
        s.madeForSplit = index;
        s.latestIndex = index;
      }
      return index;
    };
    if (split === null) s.split = null;
    else if (split !== undefined)
      s.split = { index: older(split.maxInstances), percent: split.percent };
    const tag = change.tagPrevious;
    if (tag === null) s.tagged = null;
    else if (tag !== undefined) s.tagged = { index: older(tag.maxInstances), tag: tag.tag };
    this.bump(s);
    // A lower max stops instances above it at once.
    this.trimToCap(s);
    return s;
  }

  /**
   * A deployment made at once without traffic (`gcloud run deploy --no-traffic`, with `--tag` a
   * tag on it): a new revision with its own max (`--max-instances`, the revision-level max; 0:
   * unset), the latest created, while the traffic stays on the revisions it went to, by name
   * ("Rollbacks, gradual rollouts, and traffic migration",
   * https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration). A tagged one is
   * started, and "only count[s] toward the service-level maximum instances if [it is] a part of
   * a traffic split" (https://cloud.google.com/run/docs/configuring/max-instances). The serving
   * revision and its own max stay as they were; a tag already on another revision moves here.
   */
  deployNoTraffic(key: ServiceKey, revision: { maxInstances: number; tag?: string }): ServiceState {
    const s = this.mustGet(key);
    this.bump(s);
    const index = nextRevisionIndex(s);
    s.revisions.push({
      index,
      maxInstances: revision.maxInstances,
      minInstances: 0,
      failed: false,
      madeAt: this.nowMs,
      ...(s.spec.gpu ? { gpu: s.spec.gpu } : {}),
    });
    s.latestIndex = index;
    if (revision.tag !== undefined) s.tagged = { index, tag: revision.tag };
    keepAtMost(s);
    return s;
  }

  /**
   * Another writer splits a worker pool's instances with an older revision (`gcloud beta run
   * worker-pools update-instance-split`,
   * https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks), or ends the
   * split (null): its spec's `previousRevision` (see {@link workerPoolRevisions}).
   */
  splitWorkerPool(
    w: WorkerPoolState,
    previousRevision: FleetWorkerPool['previousRevision'] | null,
  ): WorkerPoolState {
    const spec: FleetWorkerPool = { ...w.spec };
    if (previousRevision) spec.previousRevision = previousRevision;
    else delete spec.previousRevision;
    w.spec = spec;
    return w;
  }

  /** Simulates a deployment (a new revision) in flight for `durationMs` of virtual time. */
  startDeployment(key: ServiceKey, durationMs: number): ServiceState {
    const s = this.mustGet(key);
    this.bump(s);
    s.deployingUntil = this.nowMs + Math.max(0, durationMs);
    if (durationMs <= 0) this.finishDeployment(s);
    return s;
  }

  poolOf(s: ServiceState): (PoolKey & { region: string }) | undefined {
    const gpu = s.spec.gpu;
    if (!gpu) return undefined;
    return {
      project: s.project,
      region: s.region,
      accelerator: gpu.accelerator,
      zonalRedundancy: gpu.zonalRedundancy,
    };
  }

  /**
   * Every concrete (project, region, accelerator, zonal redundancy) pool with a GPU user or a
   * regional quota; given a project, that project's pools alone (the same entries, in the same
   * order, as filtering every pool by project).
   */
  pools(project?: string): PoolUsage[] {
    const keys = new Map<string, PoolKey & { region: string }>();
    const add = (k: PoolKey & { region: string }): void => void keys.set(quotaId(k), k);
    const index = project === undefined ? undefined : this.ofProject.get(project);
    if (project !== undefined && !index) return [];
    // The services of each pool, found in one pass (not one pass per pool: at 10,000 services the
    // emulator spent most of each write here).
    const membersOf = new Map<string, ServiceState[]>();
    for (const s of index?.services ?? this.services.values()) {
      const k = this.poolOf(s);
      if (!k) continue;
      add(k);
      const id = quotaId(k);
      const members = membersOf.get(id);
      if (members) members.push(s);
      else membersOf.set(id, [s]);
    }
    for (const w of this.listWorkerPools(project)) {
      if (w.spec.gpu)
        add({
          project: w.project,
          region: w.region,
          accelerator: w.spec.gpu.accelerator,
          zonalRedundancy: w.spec.gpu.zonalRedundancy,
        });
    }
    for (const j of this.listJobs(project)) {
      if (j.spec.gpu)
        add({
          project: j.project,
          region: j.region,
          accelerator: j.spec.gpu.accelerator,
          zonalRedundancy: j.spec.gpu.zonalRedundancy,
        });
    }
    for (const { key } of index ? this.quotaEntries(project) : this.quotas.values()) {
      if (key.region !== undefined) add({ ...key, region: key.region });
    }
    return [...keys.values()]
      .sort((a, b) => compareText(quotaId(a), quotaId(b)))
      .map((k) => {
        const members = membersOf.get(quotaId(k)) ?? [];
        return {
          ...k,
          quota: this.quotaFor(k),
          // A MANUAL service holds its manual count (or min), whatever its max says.
          capsGpus: members.reduce((sum, s) => sum + this.capOf(s) * gpusPerInstance(s), 0),
          serviceGpus: members.reduce((sum, s) => sum + s.instances.length * gpusPerInstance(s), 0),
          workerPoolGpus: this.workerPoolGpus(k),
          jobGpus: this.jobGpus(k, this.nowMs),
          services: members.map((s) => s.name).sort(),
        };
      });
  }

  /** The usage of one concrete pool, or undefined when the fleet has no such pool. */
  pool(key: PoolKey & { region: string }): PoolUsage | undefined {
    return this.pools(key.project).find((p) => samePool(p, key));
  }

  private workerPoolGpus(k: PoolKey & { region: string }): number {
    // Each revision's instances hold its own GPU, in its own pool.
    let gpus = 0;
    for (const w of this.listWorkerPools(k.project))
      for (const r of workerPoolRevisions(w))
        if (r.gpu !== undefined && samePool({ project: w.project, region: w.region, ...r.gpu }, k))
          gpus += r.instances * r.gpu.count;
    return gpus;
  }

  /** GPUs held at `t` by the running tasks of the pool's job executions. */
  private jobGpus(k: PoolKey & { region: string }, t: number): number {
    let gpus = 0;
    for (const j of this.listJobs(k.project)) {
      const gpu = j.spec.gpu;
      if (gpu === undefined || !samePool({ project: j.project, region: j.region, ...gpu }, k))
        continue;
      for (const e of jobExecutions(j, t)) gpus += e.running * gpu.count;
    }
    return gpus;
  }

  private indexOf(project: string): ProjectIndex {
    let index = this.ofProject.get(project);
    if (!index) {
      index = { services: [], workerPools: [], jobs: [], quotaIds: new Set() };
      this.ofProject.set(project, index);
    }
    return index;
  }

  private mustGet(key: ServiceKey): ServiceState {
    const s = this.getService(key);
    if (!s) throw new Error(`no service ${serviceId(key)}`);
    return s;
  }

  private bump(s: ServiceState): void {
    s.generation += 1;
    s.etag = etagFor(s, s.generation, s.incarnation);
    s.updateTime = this.nowMs;
  }

  /**
   * The end of a deployment: a new revision of the service's own configuration, under a name
   * never used before (after the latest created, one deployed without traffic or failed
   * included: a revision is immutable, so a name is never made again). Traffic to LATEST moves to
   * it; traffic pinned by name stays where it is, as Cloud Run keeps a split or a rollback for
   * "all subsequent deployments" ("Lifecycle of traffic splits",
   * https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration): the new revision is
   * then the latest created, without traffic, like one deployed with `--no-traffic`.
   */
  private finishDeployment(s: ServiceState): void {
    s.deployingUntil = null;
    const pinned = trafficByName(s);
    const index = nextRevisionIndex(s);
    s.revisions.push({
      index,
      maxInstances: s.revisionMaxInstances,
      minInstances: s.revisionMinInstances,
      failed: false,
      madeAt: this.nowMs,
      ...(s.spec.gpu ? { gpu: s.spec.gpu } : {}),
    });
    s.latestIndex = index;
    if (!pinned) {
      s.revisionIndex = index;
      // Whatever split there was had lost its older revision (deleted): none is left.
      s.split = null;
    }
    if (s.tagged !== null && revisionOf(s, s.tagged.index)?.failed !== false) s.tagged = null;
    // Every revision is kept, retired ones too, up to Cloud Run's limit.
    keepAtMost(s);
  }

  private capOf(s: ServiceState): number {
    return s.spec.scalingMode === 'MANUAL' ? manualCount(s) : effectiveMax(s);
  }

  private trimToCap(s: ServiceState): void {
    const cap = this.capOf(s);
    if (s.instances.length > cap) {
      // Stop the newest first.
      s.instances.sort((a, b) => a.startedAt - b.startedAt || a.id - b.id);
      s.instances.length = cap;
    }
  }

  private startInstance(s: ServiceState, t: number): void {
    const startupMs =
      s.spec.startupSeconds === undefined ? this.startupMs : s.spec.startupSeconds * 1000;
    s.instances.push({
      id: this.nextInstanceId++,
      startedAt: t,
      readyAt: t + startupMs,
      lastBusyAt: t,
    });
  }

  /**
   * The minute in requests (a fluid queue, whole requests). Arrivals are the demand × the
   * requests an instance serves a minute; every held instance (busy or idle) serves that many in
   * the part of the minute it is ready, the longest waiting first. What is left waits on, as long
   * as the pending window allows: of the minute's own arrivals the share window ÷ 60 s (a request
   * waits into the next minute only if it came within the window of its end), of the older ones
   * those that have waited fewer whole minutes than the window holds. The rest is refused: 429 for
   * the share of the shortfall above the cap (or with no shortfall at all: instances still
   * starting, a backlog after a burst), 503 for the share the quota kept from starting (see
   * {@link RequestMinute}). Instances follow the demand, not the queue (Cloud Run would also
   * scale out for pending requests), so a backlog left when demand is exactly what the instances
   * serve waits on until the window refuses it.
   */
  private requestMinute(s: ServiceState, t: number, want: number, cap: number): RequestMinute {
    const perInstance = requestsPerInstanceMinute(s.spec);
    const arrived = Math.round(s.lastDemand * perInstance);
    const ready = s.instances.reduce(
      (sum, inst) => sum + Math.min(1, Math.max(0, (t + MINUTE_MS - inst.readyAt) / MINUTE_MS)),
      0,
    );
    let capacity = Math.floor(ready * perInstance + 1e-9);
    const windowMinutes = pendingSecondsOf(s.spec, this.startupMs / 1000) / 60;
    // waiting[k] has waited through k minute ends (the arrivals none); the oldest are served first.
    const waiting = [arrived, ...s.pendingRequests];
    let served = 0;
    for (let k = waiting.length - 1; k >= 0 && capacity > 0; k--) {
      const take = Math.min(capacity, waiting[k] ?? 0);
      waiting[k] = (waiting[k] ?? 0) - take;
      capacity -= take;
      served += take;
    }
    const fresh = waiting[0] ?? 0;
    const next = [Math.floor(fresh * Math.min(1, windowMinutes) + 1e-9)];
    let failed = fresh - (next[0] ?? 0);
    for (let k = 1; k < waiting.length; k++) {
      const n = waiting[k] ?? 0;
      if (k < Math.floor(windowMinutes + 1e-9)) next.push(n);
      else failed += n;
    }
    while (next.length > 0 && next.at(-1) === 0) next.pop();
    s.pendingRequests = next;
    const aboveCap = Math.max(0, want - cap);
    const noGpu = Math.max(0, Math.min(want, cap) - s.instances.length);
    const unavailable =
      aboveCap + noGpu === 0 ? 0 : Math.round((failed * noGpu) / (aboveCap + noGpu));
    return {
      arrived,
      served,
      refused: failed - unavailable,
      unavailable,
      pending: next.reduce((a, b) => a + b, 0),
    };
  }

  /** One virtual minute starting at `t`. */
  private step(t: number): void {
    this.nowMs = Math.max(this.nowMs, t);
    const services = this.listServices();
    const wanted = new Map<ServiceState, number>();
    const targets = new Map<ServiceState, number>();

    for (const s of services) {
      if (s.deployingUntil !== null && s.deployingUntil <= t) this.finishDeployment(s);
      const raw = demandAt(s.demand, t, this.demandCtx);
      s.lastDemand = raw;
      const want = Math.max(0, Math.ceil(raw - 1e-9));
      wanted.set(s, want);
      const cap = this.capOf(s);
      const target =
        s.spec.scalingMode === 'MANUAL' ? cap : Math.min(Math.max(want, floorInstances(s)), cap);
      targets.set(s, target);
      this.trimToCap(s);
      // Scale in: instances idle for long enough stop, down to what is wanted now. An instance is
      // busy through the minute that starts at its `lastBusyAt`, so it has idled `idleMinutes`
      // once `idleMinutes` whole minutes have passed after that one.
      let removable = s.instances.length - target;
      if (removable > 0) {
        const idleFirst = [...s.instances].sort(
          (a, b) => a.lastBusyAt - b.lastBusyAt || b.id - a.id,
        );
        const stop = new Set<Instance>();
        for (const inst of idleFirst) {
          if (removable <= 0) break;
          if (inst.lastBusyAt + MINUTE_MS <= t - this.idleMs) {
            stop.add(inst);
            removable -= 1;
          }
        }
        s.instances = s.instances.filter((i) => !stop.has(i));
      }
    }

    // Scale out: GPU services compete for their pool's free GPUs, one instance at a time in turn.
    const byPool = new Map<
      string,
      { key: PoolKey & { region: string }; members: ServiceState[] }
    >();
    for (const s of services) {
      const key = this.poolOf(s);
      if (!key) {
        const grow = (targets.get(s) ?? 0) - s.instances.length;
        for (let i = 0; i < grow; i++) this.startInstance(s, t);
        continue;
      }
      const entry = byPool.get(quotaId(key)) ?? { key, members: [] };
      entry.members.push(s);
      byPool.set(quotaId(key), entry);
    }
    for (const { key, members } of byPool.values()) {
      const quota = this.quotaFor(key);
      let free =
        quota === undefined
          ? Number.POSITIVE_INFINITY
          : quota -
            this.workerPoolGpus(key) -
            this.jobGpus(key, t) -
            members.reduce((sum, s) => sum + s.instances.length * gpusPerInstance(s), 0);
      let progress = true;
      while (progress) {
        progress = false;
        for (const s of members) {
          const gpus = gpusPerInstance(s);
          if (s.instances.length < (targets.get(s) ?? 0) && free >= gpus) {
            this.startInstance(s, t);
            free -= gpus;
            progress = true;
          }
        }
      }
    }

    for (const s of services) this.account(s, t, wanted.get(s) ?? 0);
  }

  private account(s: ServiceState, t: number, want: number): void {
    const cap = this.capOf(s);
    const held = s.instances.length;
    const busy = Math.min(want, held);
    const byAge = [...s.instances].sort((a, b) => a.readyAt - b.readyAt || a.id - b.id);
    let served = 0;
    byAge.forEach((inst, i) => {
      if (i < busy) {
        inst.lastBusyAt = t;
        served += Math.min(1, Math.max(0, (t + MINUTE_MS - inst.readyAt) / MINUTE_MS));
      }
    });
    const refusedCap = Math.max(0, want - cap);
    const refusedQuota = Math.max(0, Math.min(want, cap) - held);
    const gpus = gpusPerInstance(s);
    s.refused.capInstanceMinutes += refusedCap;
    s.refused.quotaInstanceMinutes += refusedQuota;
    s.refused.capGpuMinutes += refusedCap * gpus;
    s.refused.quotaGpuMinutes += refusedQuota * gpus;
    s.coldStartInstanceMinutes += busy - served;
    s.servedInstanceMinutes += served;
    s.demandInstanceMinutes += want;
    const requests = this.requestMinute(s, t, want, cap);

    const rows = this.samples.get(serviceId(s));
    if (!rows) return;
    const limit = concurrencyOf(s.spec);
    const waited = requests.pending + requests.refused + requests.unavailable > 0;
    const peakConcurrency =
      busy === 0
        ? 0
        : waited
          ? limit
          : limit * Math.min(1, requests.served / (busy * requestsPerInstanceMinute(s.spec)));
    rows.push({
      at: t,
      revision: revisionName(s),
      active: busy,
      idle: held - busy,
      utilization: held === 0 ? 0 : Math.min(1, s.lastDemand / held),
      peakConcurrency,
      cap,
      demand: s.lastDemand,
      refusedCap,
      refusedQuota,
      requests,
    });
    const oldest = t - this.historyMinutes * MINUTE_MS;
    let drop = 0;
    while (drop < rows.length && (rows[drop]?.at ?? t) < oldest) drop++;
    if (drop > 0) rows.splice(0, drop);
  }
}
