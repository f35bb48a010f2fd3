import type { SplitWorkerPool } from '../core/revision-pools.js';
import type { GpuSpec, ObservedService, RevisionKind, RevisionRead } from '../core/service.js';

/** Cloud Run Admin API v2: the services and worker pools of a project, and the one write. */

/**
 * A worker pool: its template's GPU, its `manual_instance_count`, and when its instances are
 * split onto revisions other than the template's, those revisions (core/revision-pools.ts).
 */
export interface ObservedWorkerPool extends SplitWorkerPool {
  /** Why `servingRevisions` could not be read (which pools they hold is then unknown). */
  revisionsUnread?: string;
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
  /**
   * Aborted once the caller has given up on the write (its run's deadline, or for a raise the
   * last moment it could still be read back): an adapter that waits to send a refused write
   * again sends nothing after it. Absent, the adapter's own bounds alone apply.
   */
  signal?: AbortSignal;
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
  /**
   * One revision's own `scaling.max_instance_count` and `scaling.min_instance_count` (null when
   * unset) and its own GPU: `Revisions.GetRevision`, `run.revisions.get`, of service `service`, or
   * with `kind` `workerPools` of that worker pool. Read only for a service or worker pool whose
   * template does not serve, or a service with a revision only tagged. Absent where revisions cannot be read: such a service is counted coarsely.
   */
  getRevisionMax?(
    project: string,
    region: string,
    service: string,
    revision: string,
    kind?: RevisionKind,
  ): Promise<RevisionRead>;
  /** Writes the service-level max (and annotations) and waits for the operation to finish. */
  updateMaxInstances(update: MaxInstancesUpdate): Promise<ObservedService>;
  /**
   * Cloud Run's `TestIamPermissions` on one service: the subset of `permissions` the caller holds
   * there (none at all when the service does not exist). Only `run.services.*` permissions can be
   * tested on a service. Absent where nothing can be tested (in-memory ports): unverified.
   */
  testPermissions?(
    project: string,
    region: string,
    name: string,
    permissions: readonly string[],
  ): Promise<string[]>;
  /**
   * Proves `run.operations.get` in the region (what waiting for every write needs, and which
   * TestIamPermissions on a service cannot test) without writing: resolves when it is held,
   * throws a PermissionError when it is not. Absent where nothing can be probed: unverified.
   */
  probeOperations?(project: string, region: string): Promise<void>;
}
