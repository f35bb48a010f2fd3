import { gpuPool, unsetMaxFor, type PoolId } from '../core/pool.js';
import type { ObservedService } from '../core/service.js';
import { GovernorError } from '../core/errors.js';
import type { ObservationProblem } from '../core/problems.js';
import type { CloudRunPort } from '../ports/index.js';
import {
  poolUnread,
  RevisionMemo,
  withRevisionsRead,
  withServingRevisions,
} from './serving-revisions.js';

/**
 * A Cloud Run port whose services carry `unsetMax`, what Cloud Run derives for a GPU service that
 * sets no max (its pool's quota ÷ GPUs per instance), so that every reader of the cap in force
 * (`effectiveMax`) counts such a service as the observation and the plan did. The API shows only
 * that both levels are unset; the quota comes from the caller (the plan's pools). A service whose
 * latest revision does not serve has its serving revisions read as observation read them
 * (`withServingRevisions`), so the write path's fresh reads count it as the plan did: otherwise
 * its change would read as "max changed" and never be written, and a pool read again after its
 * raises would count it at its whole quota. A failed revision read counts it coarsely (at the
 * unset max), as observation would, with `revisionsUnread` saying why. A revision the run already
 * read (`revisions`, the run's RevisionMemo, which observation filled; absent, this port's own) is
 * not read again: only what each listing says serves is looked up there. A worker pool whose
 * instances are split onto revisions other than its template's has them read the same way, so
 * that one of another pool is counted there as the plan counted it (`countedPoolRevisions`,
 * core/revision-pools.ts); when they cannot be read, the listing fails, as a listing of worker
 * pools that failed.
 */
export function withUnsetMax(
  run: CloudRunPort,
  quotaOf: (pool: PoolId) => number | null,
  revisions: RevisionMemo = new RevisionMemo(),
): CloudRunPort {
  const fill = (s: ObservedService): ObservedService => {
    if (!s.gpu) return s;
    const quota = quotaOf(gpuPool({ project: s.project, region: s.region, gpu: s.gpu }));
    return { ...s, unsetMax: unsetMaxFor(quota, s.gpu.count) };
  };
  // The failures are carried by each service (`revisionsUnread`), which the callers log.
  const revised = (services: ObservedService[]) =>
    withServingRevisions(run, services, [] as ObservationProblem[], revisions);
  const test = run.testPermissions?.bind(run);
  const revision = run.getRevisionMax?.bind(run);
  return {
    listRegions: (project) => run.listRegions(project),
    listServices: async (project, region) =>
      (await revised(await run.listServices(project, region))).map(fill),
    getService: async (project, region, name) => {
      const [s] = await revised([await run.getService(project, region, name)]);
      if (!s) throw new Error(`no service ${name} came back from reading its revisions`);
      return fill(s);
    },
    // A worker pool's split revisions are read as observation read them; one whose revisions
    // could not be read fails the listing, as a listing that failed: no raise on a guess.
    listWorkerPools: async (project, region) => {
      const { workerPools } = await withRevisionsRead(
        run,
        { services: [], workerPools: await run.listWorkerPools(project, region) },
        [] as ObservationProblem[],
        revisions,
      );
      const unread = workerPools.find((w) => w.revisionsUnread !== undefined);
      if (unread) throw new GovernorError(poolUnread(unread.name, unread.revisionsUnread ?? ''));
      return workerPools;
    },
    listRunningExecutions: (project, region) => run.listRunningExecutions(project, region),
    updateMaxInstances: async (update) => fill(await run.updateMaxInstances(update)),
    ...(test ? { testPermissions: test } : {}),
    ...(revision ? { getRevisionMax: revision } : {}),
  };
}
