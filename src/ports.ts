/**
 * The narrow interfaces between the governor and the outside systems it observes and changes.
 * Google adapters (src/adapters) implement them on the official clients; tests and the simulator
 * may implement them in memory. Nothing here imports a Google library.
 *
 * Every method either returns what it read or throws one of the typed errors of src/errors.ts
 * (ConflictError, NotFoundError, QuotaRejectedError, RateLimitedError, UnavailableError,
 * PermissionError, or UpstreamError for anything else), with the original error as `cause`.
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
  /** `resources.limits["nvidia.com/gpu"]`; 0 when none. */
  gpus: number;
  /** `resources.cpu_idle`: true means CPU is throttled between requests; null when not sent. */
  cpuIdle: boolean | null;
  startupProbe: StartupProbe | null;
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
  /** The revision template's containers, ingress container and sidecars, in template order. */
  containers: ObservedContainer[];
  /** `template.max_instance_request_concurrency`; null when unset (0 on the wire). */
  concurrency: number | null;
}

export interface ObservedWorkerPool {
  project: string;
  region: string;
  name: string;
  gpu: GpuSpec | null;
  manualInstanceCount: number;
}

/**
 * One execution of a Cloud Run job that has not completed. Its running tasks hold GPUs from the
 * same regional pool as services (each task is one instance).
 */
export interface ObservedJobExecution {
  project: string;
  region: string;
  /** The job's short name. */
  job: string;
  /** The execution's short name. */
  name: string;
  /** From the execution's task template; null for a job without a GPU. */
  gpu: GpuSpec | null;
  /** `running_count`: tasks running now (queued tasks hold nothing yet). */
  runningTasks: number;
  /** `parallelism`: most tasks run at once. */
  parallelism: number;
  taskCount: number;
}

export interface MaxInstancesUpdate {
  project: string;
  region: string;
  name: string;
  /** The new service-level max instances (≥ 1). */
  maxInstances: number;
  /** The etag read before deciding; a mismatch must fail with ConflictError. */
  etag: string;
  /** The governor's own annotations to set (keys with the governor's prefix only). */
  annotations: Record<string, string>;
  /**
   * The service's annotations as the caller read them with `etag`, just before deciding. Given,
   * the adapter merges into them and does not read the service again (one round trip less per
   * write); the etag still goes with the write. Absent, the adapter reads the service first.
   */
  currentAnnotations?: Record<string, string>;
}

/** Cloud Run Admin API v2. */
export interface CloudRunPort {
  /** Regions (locations) of the project where Cloud Run is available. */
  listRegions(project: string): Promise<string[]>;
  /** Every service of one region (all pages). */
  listServices(project: string, region: string): Promise<ObservedService[]>;
  getService(project: string, region: string, name: string): Promise<ObservedService>;
  /** Every worker pool of one region (all pages). */
  listWorkerPools(project: string, region: string): Promise<ObservedWorkerPool[]>;
  /** Every job execution of one region that has not completed (all pages). */
  listRunningExecutions(project: string, region: string): Promise<ObservedJobExecution[]>;
  /** Writes the service-level max (and annotations) and waits for the operation to finish. */
  updateMaxInstances(update: MaxInstancesUpdate): Promise<ObservedService>;
}

/** One time series: one service in one region, one value per aligned minute. */
export interface MetricSeries {
  service: string;
  region: string;
  /** Oldest first; `at` is the end of the aligned interval, milliseconds since the epoch. */
  points: { at: number; value: number }[];
}

export interface TimeWindow {
  startMs: number;
  endMs: number;
}

/** Cloud Monitoring v3: one ListTimeSeries per metric per project, grouped by service and region. */
export interface MonitoringPort {
  /** Instances (active + idle) per minute, summed across revisions. */
  instanceCounts(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /** Mean GPU utilization (0–1) per minute across the service's instances. */
  gpuUtilization(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /**
   * Requests per minute that reached an instance (`run.googleapis.com/request_count`, every
   * response code but 429), summed across revisions. A minute without a point had none.
   */
  servedRequests(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /**
   * Requests per minute Cloud Run answered 429, summed across revisions: the logs-based counter
   * metric on Cloud Run's request log that terraform/ defines (`request_count` leaves them out).
   * A minute without a point had none. Where the metric is not defined, Monitoring answers either
   * no series or NOT_FOUND (unconfirmed which): deploy it, or read "no refusals" as "not known".
   */
  refusedRequests(project: string, window: TimeWindow): Promise<MetricSeries[]>;
}

export interface QuotaQuery {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}

/** Cloud Quotas v1. */
export interface QuotaPort {
  /**
   * The GPU quota of one pool: the dimension entry whose region matches, else the regionless
   * entry; null when the quota info has neither. Throws when it could not be read.
   */
  gpuQuota(query: QuotaQuery): Promise<number | null>;
  /**
   * Forgets what earlier reads cached. An adapter may cache within one observation (several pools
   * share a quota id); observe() calls this first so that no run sees an older run's quota.
   */
  clearCache?(): void;
}
