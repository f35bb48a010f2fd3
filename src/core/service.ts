/**
 * A Cloud Run service as the governor reads it: what the Cloud Run port returns and what the core
 * (the fleet audit, the restore plan) reasons about. Plain data, no behaviour.
 */

export interface GpuSpec {
  /** Node selector accelerator, e.g. "nvidia-l4". */
  accelerator: string;
  /** `nvidia.com/gpu` limit of the container that has one (per instance). */
  count: number;
  /** false when the revision template sets gpu_zonal_redundancy_disabled. */
  zonalRedundancy: boolean;
}

/** A container's startup probe, with Cloud Run's defaults filled in where the wire leaves 0. */
export interface StartupProbe {
  periodSeconds: number;
  failureThreshold: number;
  initialDelaySeconds: number;
  timeoutSeconds: number;
}

/** One container of a service's revision template, as far as the fleet audit needs it. */
export interface ObservedContainer {
  name: string;
  /** `resources.limits.cpu` as on the wire ("8", "4000m"); null when unset. */
  cpu: string | null;
  /** `cpu` in vCPUs; null when unset or not a CPU quantity. */
  vcpus: number | null;
  /** `resources.limits.memory` as on the wire ("32Gi"); null when unset. */
  memory: string | null;
  /** `memory` in bytes; null when unset or not a memory quantity. */
  memoryBytes: number | null;
  /** `resources.limits["nvidia.com/gpu"]` as on the wire ("1"); null when unset. */
  gpuLimit: string | null;
  /** `gpuLimit` as a count; 0 when unset or not a whole number (`gpuLimit` says what was sent). */
  gpus: number;
  /**
   * `resources.cpu_idle`: true means CPU is throttled between requests (also when the container has
   * no `resources` at all: Cloud Run's default); null when not sent (proto3: false).
   */
  cpuIdle: boolean | null;
  startupProbe: StartupProbe | null;
}

/**
 * A revision that can hold instances of a service whose template does not serve, or a revision
 * only tagged beside a template that serves.
 */
export interface ServingRevision {
  /** Short name. */
  name: string;
  /** It takes a share of the traffic (else it is only tagged). */
  inSplit: boolean;
  /** Its own `scaling.max_instance_count`: null when unset; absent until read. */
  maxInstances?: number | null;
  /**
   * Its own `scaling.min_instance_count`: null when unset; absent until read. What a revision only
   * tagged of a manually scaled service runs (`countedRevisions` in core/revision-pools.ts).
   */
  minInstances?: number | null;
  /**
   * Its own GPU (null: none), which may not be the template's: a redeploy that changed the GPU
   * type or zonal redundancy, or removed the GPU, leaves the older revision serving with its own
   * until the new one takes the traffic (`countedRevisions` in core/revision-pools.ts). Absent
   * until read.
   */
  gpu?: GpuSpec | null;
}

/**
 * What a revision belongs to, as its name says: `services/S/revisions/R` or
 * `workerPools/W/revisions/R` (`Revisions.GetRevision` answers both, google/cloud/run/v2/revision.proto).
 */
export type RevisionKind = 'services' | 'workerPools';

/** What `Revisions.GetRevision` tells of one revision: its own max and min, and its own GPU. */
export interface RevisionRead {
  /** Its own `scaling.max_instance_count`; null when unset. */
  maxInstances: number | null;
  /** Its own `scaling.min_instance_count`; null when unset. */
  minInstances: number | null;
  /** Its node selector's accelerator, its containers' GPU limit and zonal redundancy; null: none. */
  gpu: GpuSpec | null;
}

/** One Cloud Run service as the governor reads it. */
export interface ObservedService {
  project: string;
  region: string;
  /** Short name, e.g. "llm-chat". */
  name: string;
  /** Full name, projects/P/locations/R/services/NAME. */
  resourceName: string;
  /** null for a service without a GPU. */
  gpu: GpuSpec | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Service-level scaling.max_instance_count; null when unset (0 on the wire). */
  serviceMaxInstances: number | null;
  /** Revision template scaling.max_instance_count; null when unset. */
  revisionMaxInstances: number | null;
  /**
   * False when the template (the latest revision) is not known to be what serves: traffic goes
   * to another revision by name, or the latest created revision is not the latest ready one. Its
   * max is then not counted as the cap's (`maxInForce` in pool.ts). Absent: true.
   */
  templateServes?: boolean;
  /**
   * When the template does not serve: the revisions that can hold instances, those the traffic
   * sends a share to or tags (a LATEST target is the latest ready revision); when it serves, the
   * revisions only tagged beside it (absent: none). Each with its own max once read
   * (`maxInstances`: null when unset, absent while unread).
   */
  servingRevisions?: ServingRevision[];
  /** Why `servingRevisions` could not be read (the service is then counted coarsely). */
  revisionsUnread?: string;
  /**
   * Set with `revisionsUnread`: `budget` when they were left unread for the reads a listing allows
   * (observe/serving-revisions.ts REVISION_READS), `failed` when a read was refused or could not
   * be made. Decisions read this, never the words of `revisionsUnread`.
   */
  revisionsUnreadFor?: 'budget' | 'failed';
  /**
   * When neither max is set: what Cloud Run derives from the pool's quota (quota ÷ GPUs per
   * instance), filled in once the quota is known (observation, `withUnsetMax`); the API itself
   * shows only that both are unset.
   */
  unsetMax?: number;
  serviceMinInstances: number | null;
  revisionMinInstances: number | null;
  scalingMode: 'AUTOMATIC' | 'MANUAL' | 'UNSPECIFIED';
  manualInstanceCount: number | null;
  reconciling: boolean;
  etag: string;
  generation: number;
  observedGeneration: number;
  /** ISO time of the last update, when known. */
  updateTime: string | null;
  /**
   * ISO time the service was created, when known (Cloud Run's `create_time`): a service deleted
   * and created again under the same name is a new resource, with a new `uid` and `create_time`
   * (https://cloud.google.com/php/docs/reference/cloud-run/latest/V2.Service), but the same
   * `service_name` in Monitoring, so what Monitoring holds from before that time is the deleted
   * one's (observe/observe.ts drops it). Absent, null, unparsable or later than the reader's
   * clock by more than the clock skew allowed: unknown, every minute counts.
   */
  createTime?: string | null;
  /** The revision template's containers, ingress container and sidecars, in template order. */
  containers: ObservedContainer[];
  /** `template.max_instance_request_concurrency`; null when unset (0 on the wire). */
  concurrency: number | null;
}

/**
 * The requests one instance serves at once when the template sets none. Cloud Run Admin API v2,
 * `RevisionTemplate.max_instance_request_concurrency`: "If not specified or 0, concurrency
 * defaults to 80 when requested CPU >= 1 and defaults to 1 when requested CPU < 1"; a GPU
 * instance has at least 4 CPUs (Google, "GPU support for services"), so 80.
 */
export const DEFAULT_CONCURRENCY = 80;

/**
 * The largest max instances Cloud Run can hold: `max_instance_count` is an int32 in
 * google/cloud/run/v2/vendor_settings.proto (ServiceScaling and RevisionScaling).
 */
export const MAX_INSTANCE_COUNT = 2 ** 31 - 1;

/**
 * The annotation namespaces Cloud Run keeps for itself: "Cloud Run API v2 does not support
 * annotations with run.googleapis.com, cloud.googleapis.com, serving.knative.dev, or
 * autoscaling.knative.dev namespaces, and they will be rejected" (`Service.annotations` and
 * `RevisionTemplate.annotations`, google/cloud/run/v2/service.proto;
 * https://cloud.google.com/php/docs/reference/cloud-run/latest/V2.Service).
 */
const RESERVED_ANNOTATION_PREFIXES = [
  'run.googleapis.com/',
  'autoscaling.knative.dev/',
  'serving.knative.dev/',
  'cloud.googleapis.com/',
] as const;

/** The reserved namespace an annotation key is in ({@link RESERVED_ANNOTATION_PREFIXES}), if any. */
export function reservedAnnotationPrefix(key: string): string | undefined {
  return RESERVED_ANNOTATION_PREFIXES.find((prefix) => key.startsWith(prefix));
}

/**
 * The instances a MANUAL-scaling service holds. `ServiceScaling.manual_instance_count` is the
 * "total instance count for the service in manual scaling mode", and optional; the mode itself
 * says "Scale to exactly min instances and ignore max instances" (ScalingMode.MANUAL, both in
 * google/cloud/run/v2/vendor_settings.proto). Google does not say which wins when both are set,
 * nor what an unset count means beyond that comment, so the higher of the two is counted: never
 * fewer GPUs than the service may hold.
 */
export function manualInstances(
  s: Pick<ObservedService, 'manualInstanceCount' | 'serviceMinInstances'>,
): number {
  return Math.max(s.manualInstanceCount ?? 0, s.serviceMinInstances ?? 0);
}

/**
 * Whether a service's serving revisions must be read (`Revisions.GetRevision`,
 * `run.revisions.get`): a service that names revisions apart from its template: its latest
 * revision does not serve and its serving revisions are named, or a revision only tagged is
 * started beside it. Without a service-level max the cap of one automatically scaled whose latest
 * revision does not serve is made of their own max; and whatever its max or scaling mode, each of
 * them may hold GPUs of another pool than the template's (or hold GPUs while the template has
 * none): a revision keeps its own node selector, GPU limit and zonal redundancy
 * (google/cloud/run/v2/revision.proto), and one only tagged holds GPUs outside the service-level
 * max, or outside a manually scaled service's manual count
 * (https://cloud.google.com/run/docs/configuring/services/manual-scaling, `countedRevisions` in
 * core/revision-pools.ts). Observation reads them for it, and `governor check` probes the
 * permission only where one is.
 */
export function needsServingRevisions(s: ObservedService): boolean {
  return (s.servingRevisions ?? []).length > 0;
}

/**
 * Cloud Run Admin API reads the governor allows itself per project, region and minute: half of
 * Cloud Run's read quota as public reports give it. The quota is "Read requests per minute per
 * region" (`ReadPerMinutePerProjectRegion`, metric `run.googleapis.com/read_regional`, as Cloud
 * Run's 429 names it: https://github.com/googleapis/repo-automation-bots/issues/4469); Google's
 * quotas page (https://cloud.google.com/run/quotas) says Cloud Run's quotas include the Admin
 * API's rate limits but gives no default, and public reports give 600. Deploys and the console
 * spend the same quota: half of it leaves them the rest. `governor check` paces its reads to it
 * (reconcile/preflight.ts), and observation reads at most this many revisions per listing of a region
 * (observe/serving-revisions.ts).
 */
export const RUN_READS_PER_MINUTE = 300;
