import { gpuPool, unsetMaxFor, type PoolId } from '../core/pool.js';
import type { ObservedService } from '../core/service.js';
import type { CloudRunPort } from '../ports/index.js';

/**
 * A Cloud Run port whose services carry `unsetMax`, what Cloud Run derives for a GPU service that
 * sets no max (its pool's quota ÷ GPUs per instance), so that every reader of the cap in force
 * (`effectiveMax`) counts such a service as the observation and the plan did. The API shows only
 * that both levels are unset; the quota comes from the caller (the plan's pools).
 */
export function withUnsetMax(
  run: CloudRunPort,
  quotaOf: (pool: PoolId) => number | null,
): CloudRunPort {
  const fill = (s: ObservedService): ObservedService => {
    if (!s.gpu) return s;
    const quota = quotaOf(gpuPool({ project: s.project, region: s.region, gpu: s.gpu }));
    return { ...s, unsetMax: unsetMaxFor(quota, s.gpu.count) };
  };
  const test = run.testPermissions?.bind(run);
  const revision = run.getRevisionMax?.bind(run);
  return {
    listRegions: (project) => run.listRegions(project),
    listServices: async (project, region) => (await run.listServices(project, region)).map(fill),
    getService: async (project, region, name) => fill(await run.getService(project, region, name)),
    listWorkerPools: (project, region) => run.listWorkerPools(project, region),
    listRunningExecutions: (project, region) => run.listRunningExecutions(project, region),
    updateMaxInstances: async (update) => fill(await run.updateMaxInstances(update)),
    ...(test ? { testPermissions: test } : {}),
    ...(revision ? { getRevisionMax: revision } : {}),
  };
}
