import type {
  ObservePorts,
  CloudRunPort,
  MaxInstancesUpdate,
  MetricSeries,
  MonitoringPort,
  ObservedJobExecution,
  ObservedWorkerPool,
  QuotaPort,
  TimeWindow,
} from '../ports/index.js';
import { ConflictError, InputError, NotFoundError, QuotaRejectedError } from '../core/errors.js';
import {
  effectiveMax,
  jobExecutions,
  workerPoolRevisions,
  type FleetModel,
  type MinuteSample,
  type ServiceState,
  type WorkerPoolState,
} from './model.js';
import {
  latestRevision,
  observedContainerFacts,
  serviceRevisions,
  templateOf,
} from './resources.js';
import {
  GPU_UTILIZATIONS,
  INSTANCE_COUNT,
  REFUSED_REQUESTS,
  REQUEST_COUNT,
} from './monitoring-api.js';
import type { GpuSpec, ObservedService, ServingRevision } from '../core/service.js';

/**
 * The governor's ports in memory, over the emulator's fleet model: what the Google adapters would
 * read from the emulator, without gRPC. Cloud Run reads and writes the model's services (etag
 * check, Cloud Run's per-service quota check); Monitoring serves the model's per-minute history
 * `lagMs` late, one series per service summed over revisions, nothing while a service is at zero
 * (request counts: only minutes with such requests);
 * Cloud Quotas serves the model's quota.
 */

interface SimPortsOptions {
  /** Virtual ms before a metric point is visible (Cloud Monitoring is about 3 minutes behind). */
  lagMs: number;
}

/** Index of the first row after `ms` (rows are oldest first). */
function firstAfter(rows: readonly { at: number }[], ms: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((rows[mid]?.at ?? Infinity) <= ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The same port, calling `after` once each write has succeeded. */
export function watchWrites(
  run: CloudRunPort,
  after: (update: MaxInstancesUpdate) => void,
): CloudRunPort {
  return {
    listRegions: (p) => run.listRegions(p),
    listServices: (p, r) => run.listServices(p, r),
    getService: (p, r, n) => run.getService(p, r, n),
    listWorkerPools: (p, r) => run.listWorkerPools(p, r),
    listRunningExecutions: (p, r) => run.listRunningExecutions(p, r),
    ...(run.getRevisionMax ? { getRevisionMax: run.getRevisionMax.bind(run) } : {}),
    updateMaxInstances: async (update) => {
      const written = await run.updateMaxInstances(update);
      after(update);
      return written;
    },
  };
}

/**
 * The revisions that can hold instances of `s`, as the Google adapter reads them from the
 * service's traffic (adapters/cloud-run.ts): nothing when its template (the latest created
 * revision) is what serves; else those the traffic sends a share to (`inSplit`) or tags, each by
 * name, their own max and GPU left to `getRevisionMax`.
 */
function revisionsOfService(
  s: ServiceState,
): { templateServes: false; servingRevisions: ServingRevision[] } | Record<string, never> {
  if (s.split === null && s.tagged === null && s.latestIndex === s.revisionIndex) return {};
  const revs = serviceRevisions(s);
  const targets = revs.filter((r) => r.percent > 0 || (r.ready && r.tag !== undefined));
  const latest = latestRevision(s, revs);
  const serves =
    latest !== undefined && latest.ready && targets.every((r) => r.name === latest.name);
  if (serves) return {};
  return {
    templateServes: false,
    servingRevisions: targets.map((r) => ({ name: r.name, inSplit: r.percent > 0 })),
  };
}

/** A worker pool's instance split as the adapter reads it: the revisions by name, when split. */
function revisionsOfPool(
  w: WorkerPoolState,
): { templateServes: false; servingRevisions: ServingRevision[] } | Record<string, never> {
  if (!w.spec.previousRevision) return {};
  return {
    templateServes: false,
    servingRevisions: workerPoolRevisions(w).map((r) => ({ name: r.name, inSplit: true })),
  };
}

function gpuOf(
  gpu: { accelerator: string; count: number; zonalRedundancy: boolean } | undefined,
): GpuSpec | null {
  return gpu
    ? { accelerator: gpu.accelerator, count: gpu.count, zonalRedundancy: gpu.zonalRedundancy }
    : null;
}

function toObserved(s: ServiceState): ObservedService {
  // The template's own GPU and scaling, as GetService shows them (resources.ts): the latest
  // created revision's, also while another serves.
  const own = templateOf(s);
  const gpu = own.gpu;
  return {
    project: s.project,
    region: s.region,
    name: s.name,
    resourceName: `projects/${s.project}/locations/${s.region}/services/${s.name}`,
    gpu: gpu
      ? { accelerator: gpu.accelerator, count: gpu.count, zonalRedundancy: gpu.zonalRedundancy }
      : null,
    labels: { ...s.labels },
    annotations: { ...s.annotations },
    serviceMaxInstances: s.maxInstances > 0 ? s.maxInstances : null,
    revisionMaxInstances: own.maxInstances > 0 ? own.maxInstances : null,
    serviceMinInstances: s.minInstances > 0 ? s.minInstances : null,
    revisionMinInstances: own.minInstances > 0 ? own.minInstances : null,
    scalingMode: s.spec.scalingMode,
    manualInstanceCount: s.spec.manualInstanceCount ?? null,
    reconciling: s.deployingUntil !== null,
    etag: s.etag,
    generation: s.generation,
    observedGeneration: s.generation,
    updateTime: new Date(s.updateTime).toISOString(),
    createTime: new Date(s.createTime).toISOString(),
    ...observedContainerFacts(s, gpu),
    ...revisionsOfService(s),
  };
}

export function createSimPorts(model: FleetModel, options: SimPortsOptions): ObservePorts {
  const inProject = (project: string) => model.listServices(project);

  const run: CloudRunPort = {
    async listRegions(project) {
      const regions = new Set(inProject(project).map((s) => s.region));
      for (const w of model.listWorkerPools(project)) regions.add(w.region);
      return [...regions].sort();
    },
    async listServices(project, region) {
      return inProject(project)
        .filter((s) => s.region === region)
        .map(toObserved);
    },
    async getService(project, region, name) {
      const s = model.getService({ project, region, name });
      if (!s) throw new NotFoundError(`service ${project}/${region}/${name} not found`);
      return toObserved(s);
    },
    async listWorkerPools(project, region): Promise<ObservedWorkerPool[]> {
      return model
        .listWorkerPools(project)
        .filter((w) => w.region === region)
        .map((w) => ({
          project: w.project,
          region: w.region,
          name: w.name,
          gpu: w.spec.gpu
            ? {
                accelerator: w.spec.gpu.accelerator,
                count: w.spec.gpu.count,
                zonalRedundancy: w.spec.gpu.zonalRedundancy,
              }
            : null,
          manualInstanceCount: w.spec.manualInstanceCount,
          ...revisionsOfPool(w),
        }));
    },
    async getRevisionMax(project, region, parent, revision, kind = 'services') {
      if (kind === 'workerPools') {
        const w = model
          .listWorkerPools(project)
          .find((x) => x.region === region && x.name === parent);
        const r = w ? workerPoolRevisions(w).find((x) => x.name === revision) : undefined;
        if (!r) throw new NotFoundError(`revision ${revision} of worker pool ${parent} not found`);
        return { maxInstances: null, minInstances: null, gpu: gpuOf(r.gpu) };
      }
      const s = model.getService({ project, region, name: parent });
      const r = s ? serviceRevisions(s).find((x) => x.name === revision) : undefined;
      if (!r) throw new NotFoundError(`revision ${revision} of service ${parent} not found`);
      return {
        maxInstances: r.maxInstances > 0 ? r.maxInstances : null,
        minInstances: r.minInstances > 0 ? r.minInstances : null,
        gpu: gpuOf(r.gpu),
      };
    },
    async listRunningExecutions(project, region): Promise<ObservedJobExecution[]> {
      return model
        .listJobs(project)
        .filter((j) => j.region === region)
        .flatMap((j) => jobExecutions(j, model.now))
        .filter((e) => e.completedAt === undefined)
        .map((e) => ({
          project: e.job.project,
          region: e.job.region,
          job: e.job.name,
          name: e.name,
          gpu: e.job.spec.gpu
            ? {
                accelerator: e.job.spec.gpu.accelerator,
                count: e.job.spec.gpu.count,
                zonalRedundancy: e.job.spec.gpu.zonalRedundancy,
              }
            : null,
          runningTasks: e.running,
          parallelism: e.parallelism,
          taskCount: e.taskCount,
        }));
    },
    async updateMaxInstances(update) {
      const key = { project: update.project, region: update.region, name: update.name };
      const s = model.getService(key);
      if (!s)
        throw new NotFoundError(
          `service ${update.project}/${update.region}/${update.name} not found`,
        );
      if (update.etag && update.etag !== s.etag)
        throw new ConflictError(`etag mismatch on ${s.name}`);
      if (!Number.isInteger(update.maxInstances) || update.maxInstances < 1) {
        throw new InputError(`max instances ${update.maxInstances} is not a whole number ≥ 1`, []);
      }
      // Cloud Run checks one service against the quota, never the sum.
      const pool = model.poolOf(s);
      const quota = pool ? model.quotaFor(pool) : undefined;
      const gpus = s.spec.gpu?.count ?? 0;
      const after = effectiveMax({
        maxInstances: update.maxInstances,
        revisionMaxInstances: s.revisionMaxInstances,
      });
      if (quota !== undefined && after * gpus > quota) {
        throw new QuotaRejectedError(
          `Max instances must be set to ${Math.floor(quota / Math.max(1, gpus))} or fewer (quota ${quota})`,
        );
      }
      const written = model.update(key, {
        maxInstances: update.maxInstances,
        annotations: { ...s.annotations, ...update.annotations },
      });
      return toObserved(written);
    },
  };

  const series = (
    project: string,
    window: TimeWindow,
    value: (row: MinuteSample) => number,
    only: 'all' | 'gpu' | 'requests',
  ): MetricSeries[] => {
    const visibleUntil = model.now - options.lagMs;
    const out: MetricSeries[] = [];
    // Deleted services too, while their minutes are kept, as Monitoring does (model.monitored).
    for (const { state: s, rows } of model.monitored(project)) {
      if (only === 'gpu' && !s.spec.gpu) continue;
      const points: MetricSeries['points'] = [];
      const last = Math.min(visibleUntil, window.endMs);
      // Monitoring reads (start, end], as the emulator's ListTimeSeries does (monitoring-api.ts).
      for (let i = firstAfter(rows, window.startMs); i < rows.length; i++) {
        const row = rows[i];
        if (!row || row.at > last) break;
        if (only === 'requests') {
          // A request count has a point only in a minute with such requests.
          if (value(row) > 0) points.push({ at: row.at, value: value(row) });
          continue;
        }
        if (row.active + row.idle === 0) continue; // at zero Cloud Run writes no point
        points.push({ at: row.at, value: value(row) });
      }
      if (points.length > 0) out.push({ service: s.name, region: s.region, points });
    }
    return out;
  };

  /**
   * A metric the project's fleet lists in `unknownMetrics` is one Monitoring knows nothing of:
   * NotFoundError, as the Monitoring adapter answers (ListTimeSeries: INVALID_ARGUMENT).
   */
  const known = (project: string, metric: string): void => {
    if (model.fleet.projects.find((p) => p.id === project)?.unknownMetrics.includes(metric))
      throw new NotFoundError(`project ${project} has no metric ${metric}`);
  };
  const monitoring: MonitoringPort = {
    async instanceCounts(project, window) {
      known(project, INSTANCE_COUNT);
      return series(project, window, (r) => r.active + r.idle, 'all');
    },
    async gpuUtilization(project, window) {
      // Optional, as for the adapter: a project that knows no such metric has none.
      if (
        model.fleet.projects
          .find((p) => p.id === project)
          ?.unknownMetrics.includes(GPU_UTILIZATIONS)
      )
        return [];
      return series(project, window, (r) => r.utilization, 'gpu');
    },
    // As the emulator serves them: requests that reached an instance, and Cloud Run's 429s.
    async servedRequests(project, window) {
      known(project, REQUEST_COUNT);
      return series(project, window, (r) => r.requests.served, 'requests');
    },
    async refusedRequests(project, window) {
      known(project, REFUSED_REQUESTS);
      return series(project, window, (r) => r.requests.refused, 'requests');
    },
  };

  const quotas: QuotaPort = {
    async gpuQuota(q) {
      return (
        model.quotaFor({
          project: q.project,
          region: q.region,
          accelerator: q.accelerator,
          zonalRedundancy: q.zonalRedundancy,
        }) ?? null
      );
    },
  };

  return { run, monitoring, quotas };
}
