import { gpuPool, MAX_QUOTA_GPUS, poolKey, unsetMaxFor, type PoolId } from './pool.js';
import {
  manualInstances,
  type GpuSpec,
  type ObservedService,
  type ServingRevision,
} from './service.js';

/**
 * A worker pool as counted here: its template's GPU, its `manual_instance_count` ("the total
 * number of instances in manual scaling mode", WorkerPoolScaling,
 * google/cloud/run/v2/vendor_settings.proto), and, when its template does not serve, the
 * revisions its instances are split onto (`instance_split_statuses`,
 * google/cloud/run/v2/worker_pool.proto), each with its own GPU once read.
 */
export interface SplitWorkerPool {
  project: string;
  region: string;
  name: string;
  gpu: GpuSpec | null;
  manualInstanceCount: number;
  /** False when its instances go to revisions by name, or its latest revision is not ready. */
  templateServes?: boolean;
  /** With `templateServes: false`: the revisions of its instance split. */
  servingRevisions?: ServingRevision[];
}

/** GPUs that a serving revision may hold beyond what its service's (or worker pool's) cap counts. */
export interface RevisionHolding extends PoolId {
  gpus: number;
  /**
   * What holds them, e.g. "service/llm revision llm-00001-abc (serving in another pool than its
   * template)" or "service/llm revision llm-00002-xyz (tagged, outside the traffic split)".
   */
  source: string;
}

/**
 * The serving revisions of a service that hold GPUs no cap of the service counts, each at its own
 * max in its own pool: what observation counts as unmanaged usage of that pool, and the write
 * path's fresh reads count the same way (reconcile/room.ts). Two kinds:
 *
 * - A revision that holds GPUs of another pool than its template's (or holds GPUs while the
 *   template has none). A revision is an immutable snapshot with its own node selector, GPU limit
 *   and zonal redundancy (google/cloud/run/v2/revision.proto), and Cloud Run's GPU quota counts
 *   the GPUs of running instances, each instance those of its revision: a redeploy that changed
 *   the GPU type or zonal redundancy, or removed the GPU, leaves the older revision's instances in
 *   the older pool until the new revision is ready and takes the traffic, for good when traffic
 *   stays pinned on it (`--no-traffic`) or split
 *   (https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration). How its instances
 *   split between the two pools Google does not say: the service is still counted in its
 *   template's pool as before, so each pool counts all it may hold.
 * - A revision outside the traffic split, only tagged (`gcloud run deploy --no-traffic --tag`), in
 *   any pool, its template's too: "Tagged revisions are started, but only count toward the
 *   service-level maximum instances if they are a part of a traffic split"
 *   (https://cloud.google.com/run/docs/configuring/max-instances), so no service-level max the
 *   governor writes bounds it, and the service's own cap leaves it out (`maxInForce` in pool.ts
 *   sums only the revisions in the split).
 *
 * Each counts at its own max, or, when it sets none, at the most Cloud Run lets it run in its
 * pool (`unsetMaxFor` of that pool's quota, from `quotaOf`); one in the traffic split at no more
 * than the service-level max when that is set, which bounds "the total instance count for the
 * service in all revisions with specified traffic" (ServiceScaling.max_instance_count,
 * google/cloud/run/v2/vendor_settings.proto). Only revisions read (`gpu` present) count.
 *
 * A manually scaled service's revisions do not go by their max. Google, "Traffic splits for manual
 * scaling" (https://cloud.google.com/run/docs/configuring/services/manual-scaling): "If a revision
 * is active only because of a traffic tag: if revision-level minimum instances is set, the
 * specified number of instances are started but don't count towards the service's total manual
 * instance count, and the revision won't autoscale; if revision-level minimum instances is not
 * set, the revision scales up to 1 instance in response to traffic sent to the tag URL." So one
 * only tagged counts at its own min, or 1 without one. The revisions of its traffic split share
 * the manual count, "allocated instances proportionally"; how that rounds Google does not say, so
 * one of another pool than the template's counts there at the whole manual count
 * ({@link manualInstances}), as a worker pool's ({@link countedPoolRevisions}).
 */
export function countedRevisions(
  s: ObservedService,
  quotaOf: (pool: PoolId) => number | null,
): RevisionHolding[] {
  return revisionsElsewhere(s, `service/${s.name}`, (r, pool, gpu) => {
    if (s.scalingMode === 'MANUAL')
      return r.inSplit ? manualInstances(s) : Math.max(r.minInstances ?? 0, 1);
    const itsMax =
      r.maxInstances !== undefined && r.maxInstances !== null && r.maxInstances > 0
        ? r.maxInstances
        : unsetMaxFor(quotaOf(pool), gpu.count);
    const serviceMax = s.serviceMaxInstances ?? 0;
    return r.inSplit && serviceMax > 0 ? Math.min(itsMax, serviceMax) : itsMax;
  });
}

/**
 * The revisions of a worker pool's instance split that hold GPUs of another pool than its
 * template's (or hold GPUs while the template has none), as {@link countedRevisions} for a
 * service: an older revision keeps its own GPU, and Cloud Run "transitions workloads between the
 * previous and new revisions according to the updated split", not at once
 * (https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks). Each counts
 * at the worker pool's whole `manual_instance_count`: that is the total over its revisions, and
 * how Cloud Run divides it between them (a percent of 3 instances, the rounding, a transition)
 * Google does not say, so each pool counts all it may hold, and the worker pool is still counted
 * in its template's pool as before. Only revisions read (`gpu` present) count.
 */
export function countedPoolRevisions(w: SplitWorkerPool): RevisionHolding[] {
  return revisionsElsewhere(w, `worker-pool/${w.name}`, () => w.manualInstanceCount);
}

/**
 * The one rule of both: each revision read that serves with a GPU of another pool than the
 * template's while the template does not serve, or that is only tagged (beside a template that
 * serves or not), in its own pool, at `instancesOf` its instances (capped at
 * what a quota can hold).
 */
function revisionsElsewhere<R extends ServingRevision>(
  s: {
    project: string;
    region: string;
    gpu: GpuSpec | null;
    templateServes?: boolean | undefined;
    servingRevisions?: readonly R[] | undefined;
  },
  subject: string,
  instancesOf: (r: R, pool: PoolId, gpu: GpuSpec) => number,
): RevisionHolding[] {
  const own = s.gpu ? poolKey(gpuPool({ project: s.project, region: s.region, gpu: s.gpu })) : null;
  const out: RevisionHolding[] = [];
  for (const r of s.servingRevisions ?? []) {
    // A template that serves is the split's revision: only one only tagged beside it is apart.
    if (!r.gpu || (r.inSplit && s.templateServes !== false)) continue;
    const pool = gpuPool({ project: s.project, region: s.region, gpu: r.gpu });
    // One only tagged (never a worker pool's: an instance split has no tags) is counted in any
    // pool, its template's too: no service-level max bounds it (countedRevisions).
    if (r.inSplit && poolKey(pool) === own) continue;
    const why = !r.inSplit
      ? 'tagged, outside the traffic split'
      : s.gpu
        ? 'serving in another pool than its template'
        : 'serving with a GPU its template has not';
    out.push({
      ...pool,
      gpus: Math.min(instancesOf(r, pool, r.gpu) * r.gpu.count, MAX_QUOTA_GPUS),
      source: `${subject} revision ${r.name} (${why})`,
    });
  }
  return out;
}
