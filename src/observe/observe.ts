import pLimit from 'p-limit';
import { beyondSkew, durationMs } from '../core/duration.js';
import type { Policy } from '../core/policy.js';
import {
  comparePools,
  compareText,
  DEFAULT_ACCELERATOR,
  effectiveMax,
  entryPool,
  gpuPool,
  maxInForce,
  revisionMaxOf,
  poolIdOf,
  poolKey,
  quotaFromPolicy,
  samePool,
  splitRevisions,
  unsetMaxFor,
  type PoolId,
} from '../core/pool.js';
import {
  compareProblems,
  quotaUnreadable,
  type ObservationProblem,
  type ProblemSubject,
} from '../core/problems.js';
import { manualSource } from '../core/policy-fit.js';
import {
  MAX_INSTANCES,
  MAX_NOTE_CHARS,
  MAX_REQUESTS_PER_MINUTE,
  oneShapeService,
  type Snapshot,
  type SnapshotPool,
  type SnapshotService,
  type UnmanagedUsage,
  serviceKey,
  unreadListingsNote,
  type Usage,
  type UsageMinutes,
} from '../core/snapshot.js';
import { cutText, errorMessage } from '../core/errors.js';
import { manualInstances, type GpuSpec, type ObservedService } from '../core/service.js';
import { minInstances } from '../core/audit-checks.js';
import type {
  MetricSeries,
  ObservedJobExecution,
  ObservedWorkerPool,
  ObservePorts,
} from '../ports/index.js';
import { lastChangedAt, lastLoweredAt } from './annotations.js';
import { countedPoolRevisions, countedRevisions } from '../core/revision-pools.js';
import { RevisionMemo, taggedUnknown, withRevisionsRead } from './serving-revisions.js';

/**
 * Observation: reads the project through the ports and builds the snapshot (docs/rules.md). All regions and
 * metrics are read in parallel; Monitoring is read once per metric per project, not per service.
 * What could not be read becomes `null` with a note (fail static), never a guess.
 */

export interface Observation {
  snapshot: Snapshot;
  /** Every service read (GPU or not), for re-validation before writes and for the audit. */
  services: ObservedService[];
  workerPools: ObservedWorkerPool[];
  /** Job executions not yet completed, GPU or not. */
  jobExecutions: ObservedJobExecution[];
  /** What could not be read. */
  problems: ObservationProblem[];
  /** Regions whose services were listed, over every project: 0 means nothing could be read. */
  regionsListed: number;
}

const READ_CONCURRENCY = 8;

/**
 * `revisions`: what the run read of its revisions so far, which it goes on to fill (a run passes
 * its own, so its write path's reads of the same revisions make no call: RevisionMemo); absent,
 * this observation's own.
 */
export async function observe(
  policy: Policy,
  ports: ObservePorts,
  nowMs: number,
  revisions: RevisionMemo = new RevisionMemo(),
): Promise<Observation> {
  const limit = pLimit(READ_CONCURRENCY);
  const lookbackMs = durationMs(policy.defaults.lookback);
  const staleAfterMs = durationMs(policy.defaults.staleAfter);
  const window = { startMs: nowMs - lookbackMs, endMs: nowMs };
  // GPU utilization counts only at its latest minute, and only while fresh (usageOf): its query,
  // the heaviest (a histogram a minute for each service), reads the last staleAfter alone.
  const recent = { startMs: Math.max(window.startMs, nowMs - staleAfterMs), endMs: nowMs };
  const problems: ObservationProblem[] = [];
  ports.quotas.clearCache?.();

  // The quotas of the pools the policy lets us foresee are read at once, beside the lists, so
  // that observation is one round of reads (docs/performance.md); a pool found only by listing
  // (another accelerator) is read after. A foreseen pool that does not exist is not planned, so
  // its answer is not needed.
  const early = new Map<string, Promise<Settled<number | null>>>();
  const readEarly = (regions: readonly string[], project: string) => {
    for (const id of foreseenPools(policy, project, regions))
      if (quotaFromPolicy(policy, id) === null)
        early.set(poolKey(id), settle(limit(() => ports.quotas.gpuQuota(id))));
  };

  const unlistedCauses: unknown[] = [];
  const perProject = await Promise.all(
    policy.projects.map(async (project) => {
      // A project whose regions cannot be listed (refused for the minute's read quota, denied)
      // is left out whole, as a region whose services cannot be listed is: nothing of it is
      // planned or written, the problem is reported, and the other projects are governed (their
      // decreases are what keeps a pool within a cut quota), where a throw would stop them all.
      // When no project could be listed, the run has nothing to govern: it fails (below).
      const listedRegions = policy.regions
        ? { ok: true as const, value: policy.regions }
        : await settle(ports.run.listRegions(project));
      if (!listedRegions.ok) {
        unlistedCauses.push(listedRegions.cause);
        problems.push({
          project,
          region: null,
          pool: null,
          subject: 'services',
          error: listedRegions.error,
        });
        return unlisted(project);
      }
      const regions = listedRegions.value;
      readEarly(regions, project);
      const [lists, counts, utilization, served, refused] = await Promise.all([
        Promise.all(
          regions.map((region) =>
            limit(async () => {
              // A region whose services cannot be listed is left out whole: none of its pools is
              // planned, so nothing there is written (fail static), and the problem is reported.
              // Worker pools and running job executions draw on the same pools: when they cannot
              // be read, the services are still read (and counted), but the budget of the
              // region's GPU pools is unknown, so nothing in them is raised.
              const [listed, pools, jobs] = await Promise.all([
                settle(ports.run.listServices(project, region)),
                settle(ports.run.listWorkerPools(project, region)),
                settle(ports.run.listRunningExecutions(project, region)),
              ]);
              if (!listed.ok) {
                problems.push({
                  project,
                  region,
                  pool: null,
                  subject: 'services',
                  error: listed.error,
                });
                return {
                  region,
                  listed: false,
                  services: [],
                  workerPools: [],
                  jobExecutions: [],
                  unknown: null,
                };
              }
              const unread = new Set<ProblemSubject>();
              if (!pools.ok) {
                problems.push({
                  project,
                  region,
                  pool: null,
                  subject: 'worker-pools',
                  error: pools.error,
                });
                unread.add('worker-pools');
              }
              if (!jobs.ok) {
                problems.push({ project, region, pool: null, subject: 'jobs', error: jobs.error });
                unread.add('jobs');
              }
              // The revisions of services and worker pools whose template does not serve, under
              // one budget for the region. A worker pool whose split's revisions are unread may
              // hold GPUs of any pool of the region: as a listing of worker pools not read.
              const read = await withRevisionsRead(
                ports.run,
                { services: listed.value, workerPools: pools.ok ? pools.value : [] },
                problems,
                revisions,
              );
              if (read.workerPools.some((w) => w.revisionsUnread !== undefined))
                unread.add('worker-pools');
              // A revision only tagged that could not be read: its pool and GPUs unknown.
              if (read.services.some(taggedUnknown)) unread.add('tagged-revisions');
              return {
                region,
                listed: true,
                services: read.services,
                workerPools: read.workerPools,
                jobExecutions: jobs.ok ? jobs.value : [],
                unknown: unreadListingsNote(region, unread),
              };
            }),
          ),
        ),
        settle(ports.monitoring.instanceCounts(project, window)),
        settle(ports.monitoring.gpuUtilization(project, recent)),
        settle(ports.monitoring.servedRequests(project, window)),
        settle(ports.monitoring.refusedRequests(project, window)),
      ]);
      const whole = { project, region: null, pool: null };
      if (!counts.ok) problems.push({ ...whole, subject: 'instance-counts', error: counts.error });
      if (!utilization.ok)
        problems.push({ ...whole, subject: 'gpu-utilization', error: utilization.error });
      // Request counts only add evidence: without them usage stands on the instance counts.
      if (!served.ok) problems.push({ ...whole, subject: 'served-requests', error: served.error });
      if (!refused.ok)
        problems.push({ ...whole, subject: 'refused-requests', error: refused.error });
      return {
        project,
        regionsListed: lists.filter((l) => l.listed).length,
        /** Regions whose unmanaged usage could not be read, and why. */
        unknownRegions: new Map(
          lists.flatMap((l) => (l.unknown === null ? [] : [[l.region, l.unknown] as const])),
        ),
        services: lists.flatMap((l) => l.services),
        workerPools: lists.flatMap((l) => l.workerPools),
        jobExecutions: lists.flatMap((l) => l.jobExecutions),
        counts,
        utilization,
        served,
        refused,
      };
    }),
  );

  const services: SnapshotService[] = [];
  /** GPU services that set no max, by their index in `services`: counted once quotas are read. */
  const unset: [number, ObservedService][] = [];
  const unmanagedUsage: UnmanagedUsage[] = [];
  /** Services with a serving revision of another pool than the template's: counted once quotas are read. */
  const otherPools: ObservedService[] = [];
  const poolIds = new Map<string, PoolId>();
  /** The pool a GPU service, worker pool or job draws from, noted as seen. */
  const poolOf = (project: string, region: string, gpu: GpuSpec): PoolId => {
    const id = gpuPool({ project, region, gpu });
    poolIds.set(poolKey(id), id);
    return id;
  };

  // Not one project's regions could be listed: a failed run, as a refused read of the only
  // project always was (a Pub/Sub delivery of a unit is then refused and retried, which a read
  // quota spent for the minute needs), not an ok one that governed nothing.
  if (policy.projects.length > 0 && unlistedCauses.length === policy.projects.length)
    throw unlistedCauses[0];
  for (const p of perProject) {
    const counts = p.counts.ok ? indexSeries(p.counts.value) : null;
    const utilization = p.utilization.ok
      ? indexSeries(p.utilization.value)
      : new Map<string, MetricSeries>();
    // The newest point of the project's services tells apart "Monitoring is behind" (every series
    // old) from "this service scaled to zero" (its series stopped while others go on). Only the
    // series of services listed count: one of a service the listing does not hold (a name no
    // service has, a region not read) cannot be vouched for, and alone it would make every
    // stopped series of the project read as a service at zero, its cap then planned from nothing.
    const known = counts
      ? p.services.flatMap((s) => counts.get(seriesKey(s.region, s.name)) ?? [])
      : [];
    const newest = known.reduce((n, s) => Math.max(n, s.points.at(-1)?.at ?? -Infinity), -Infinity);
    // No series at all is a project scaled to zero, or Monitoring further behind than the whole
    // lookback: a service that keeps min instances, or a manually scaled one that runs any, always
    // has instances, hence a series (only a service at zero has none:
    // https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run lists the instance count per
    // revision, written while it has instances), so one without tells the two apart.
    // The first by region and name, not by the listing's order (Cloud Run lists the newest first).
    const warm =
      counts !== null && known.length === 0
        ? p.services
            .filter((s) => instancesKept(s) > 0)
            .reduce<ObservedService | undefined>(
              (first, s) =>
                first === undefined || compareText(serviceKey(s), serviceKey(first)) < 0
                  ? s
                  : first,
              undefined,
            )
        : undefined;
    const projectFresh =
      counts !== null &&
      warm === undefined &&
      (known.length === 0 || nowMs - newest <= staleAfterMs);
    const served = p.served.ok ? indexSeries(p.served.value) : null;
    const refused = p.refused.ok ? indexSeries(p.refused.value) : null;
    // The minutes of the window, one a minute, up to the newest the project has.
    const minutes =
      counts !== null && newest > window.startMs ? minuteGrid(window.startMs, newest) : null;
    for (const svc of p.services) {
      // Its serving revisions of other pools draw on those pools, whatever the template says.
      // Here only which pools they hold is kept, so that those pools' quotas are read; their GPUs
      // are counted again below, once the quotas are known: a revision without a max counts at
      // its pool's unset max (quota ÷ GPUs per instance), 100 instances while the quota is
      // unknown, as it is here. The set of revisions is the same both times; only the GPUs differ.
      const held = countedRevisions(svc, () => null);
      for (const h of held) poolIds.set(poolKey(h), poolIdOf(h));
      if (held.length > 0) otherPools.push(svc);
      if (!svc.gpu) continue;
      const id = poolOf(svc.project, svc.region, svc.gpu);
      if (svc.scalingMode === 'MANUAL') {
        // Manually scaled: its instance count is fixed, not capped; count it, never write it.
        unmanagedUsage.push({
          ...id,
          gpus: manualInstances(svc) * svc.gpu.count,
          source: manualSource(svc.name),
        });
        continue;
      }
      const key = seriesKey(svc.region, svc.name);
      // Monitoring groups by service name: minutes from before this service was created are a
      // deleted namesake's (see ObservedService.createTime), never this one's usage or refusals.
      // A creation time beyond now plus the clock skew was stamped on a wrong clock: taken at its
      // word it would drop every minute, and the service would read as at zero, its cap planned
      // from nothing; it counts as unknown (every minute counts), as an unparsable one does.
      // A point covers the minute that ends at its time (the interval (start, end], minuteGrid):
      // one that ends at the creation time is wholly the namesake's.
      const born =
        svc.createTime && !beyondSkew(svc.createTime, nowMs) ? Date.parse(svc.createTime) : NaN;
      const own = <S extends MetricSeries | undefined>(series: S): S =>
        series === undefined || !Number.isFinite(born)
          ? series
          : ({ ...series, points: series.points.filter((pt) => pt.at > born) } as S);
      const ownCounts = own(counts?.get(key));
      const ownUtilization = own(utilization.get(key));
      const ownServed = own(served?.get(key));
      const read = usageOf(ownCounts, ownUtilization, {
        queried: counts !== null,
        projectFresh,
        nowMs,
        staleAfterMs,
        error: p.counts.ok ? null : p.counts.error,
        ...(warm
          ? {
              behind: `no instance-count series in the ${Math.round(lookbackMs / 60_000)}m lookback for the project, though ${warm.region}/${warm.name} ${warm.scalingMode === 'MANUAL' ? `runs ${instancesKept(warm)}` : `keeps ${instancesKept(warm)} min`} instance(s) (metrics are behind)`,
            }
          : {}),
        minInstances: keepsWarm(svc) ? minInstances(svc) : 0,
        activeAt: newestActivity(ownServed, ownUtilization),
      });
      if (read.usage && minutes) {
        read.usage.perMinute = perMinute(minutes, {
          inUse: ownCounts,
          served: served ? (ownServed ?? EMPTY) : null,
          refused: refused ? (own(refused.get(key)) ?? EMPTY) : null,
        });
      }
      const beyond = read.usage ? beyondBounds(read.usage) : null;
      const usage = beyond ? { usage: null, note: beyond } : read;
      if (countsUnset(svc)) unset.push([services.length, svc]);
      services.push({
        ...id,
        name: svc.name,
        gpusPerInstance: svc.gpu.count,
        labels: svc.labels,
        maxInstances: effectiveMax(svc),
        ...maxNoteOf(svc),
        ...revisionMaxOf(svc),
        minInstances: Math.max(svc.serviceMinInstances ?? 0, svc.revisionMinInstances ?? 0),
        reconciling: svc.reconciling,
        etag: svc.etag,
        lastChangedAt: lastChangedAt(svc.annotations),
        ...(lastLoweredAt(svc.annotations)
          ? { lastLoweredAt: lastLoweredAt(svc.annotations) }
          : {}),
        usage: usage.usage,
        ...(usage.note ? { usageNote: usage.note } : {}),
      });
    }
    for (const wp of p.workerPools) {
      // The revisions of its instance split of other pools draw on those pools, each at all the
      // worker pool's instances (core/revision-pools.ts).
      for (const h of countedPoolRevisions(wp)) {
        poolIds.set(poolKey(h), poolIdOf(h));
        unmanagedUsage.push({ ...poolIdOf(h), gpus: h.gpus, source: h.source });
      }
      if (!wp.gpu) continue;
      const id = poolOf(wp.project, wp.region, wp.gpu);
      unmanagedUsage.push({
        ...id,
        gpus: wp.manualInstanceCount * wp.gpu.count,
        source: `worker-pool/${wp.name}`,
      });
    }
    for (const ex of p.jobExecutions) {
      if (!ex.gpu) continue;
      // Each running task is one instance with the task template's GPUs; tasks still queued hold
      // none yet (and are not visible as usage: see docs/observing.md, "What observation cannot see").
      unmanagedUsage.push({
        ...poolOf(ex.project, ex.region, ex.gpu),
        gpus: ex.runningTasks * ex.gpu.count,
        source: `job/${ex.job}`,
      });
    }
  }

  /** Why a pool's budget cannot be known: its region's unmanaged usage was not read. */
  const budgetUnknown = (id: PoolId): string | undefined =>
    perProject.find((p) => p.project === id.project)?.unknownRegions.get(id.region);
  // Quotas: one read per pool whose quota the policy does not set (the adapter caches per quota
  // id); a failure leaves the quota unknown, so nothing in that pool is raised.
  const withPolicyQuota: SnapshotPool[] = [...poolIds.values()]
    .filter((id) => quotaFromPolicy(policy, id) !== null && budgetUnknown(id) !== undefined)
    .map((id) => ({
      ...id,
      quota: null,
      quotaSource: 'policy',
      budgetUnknown: budgetUnknown(id) ?? '',
    }));
  const read: SnapshotPool[] = await Promise.all(
    [...poolIds.values()]
      .filter((id) => quotaFromPolicy(policy, id) === null)
      .map((id) =>
        limit(async (): Promise<SnapshotPool> => {
          const unknown = budgetUnknown(id);
          return { ...(await readQuota(id)), ...(unknown ? { budgetUnknown: unknown } : {}) };
        }),
      ),
  );
  const pools = [...read, ...withPolicyQuota];

  async function readQuota(id: PoolId): Promise<SnapshotPool> {
    try {
      const foreseen = early.get(poolKey(id));
      const settled = foreseen ? await foreseen : null;
      if (settled && !settled.ok) throw settled.cause;
      const quota = settled ? settled.value : await ports.quotas.gpuQuota(id);
      return {
        ...id,
        quota,
        quotaSource: quota === null ? 'cloudquotas: no entry for the region' : 'cloudquotas',
      };
    } catch (e) {
      // The error's own words: a NOT_FOUND from Cloud Quotas names the quota id the governor
      // derived for the pool's accelerator (adapters/quotas.ts gpuQuotaId), the one to check.
      const why = errorMessage(e);
      problems.push({
        project: id.project,
        region: id.region,
        pool: id,
        subject: 'quota',
        error: why,
      });
      return { ...id, quota: null, quotaSource: quotaUnreadable(why) };
    }
  }

  // An unset max is derived from the regional quota (Google's "About maximum instances"): count
  // such a service at quota ÷ GPUs per instance, the most Cloud Run lets it run (100 while the
  // quota is unknown), and say so.
  const quotaOf = (id: PoolId): number | null =>
    quotaFromPolicy(policy, id) ?? pools.find((pool) => samePool(pool, id))?.quota ?? null;
  for (const [i, svc] of unset) {
    const row = services[i];
    if (!row || !svc.gpu) continue;
    const quota = quotaOf(row);
    svc.unsetMax = unsetMaxFor(quota, svc.gpu.count);
    const { max, level } = maxInForce(svc);
    services[i] = {
      ...row,
      maxInstances: max,
      ...(level === 'default' ? { maxUnset: true } : {}),
      ...maxNoteOf(svc),
    };
  }

  // A serving revision of another pool holds that pool's GPUs: unmanaged usage there, at its own
  // max (or its pool's unset max, now that the quotas are read), named by the revision.
  for (const svc of otherPools)
    for (const h of countedRevisions(svc, quotaOf))
      unmanagedUsage.push({ ...poolIdOf(h), gpus: h.gpus, source: h.source });

  // In an order of their own, not the order the APIs answered in (Cloud Run lists services by
  // creation time, newest first; Monitoring, Cloud Quotas and the listing of regions promise no
  // order) nor the order concurrent reads finished in: the same fleet gives the same snapshot.
  const snapshot: Snapshot = {
    version: 1,
    takenAt: new Date(nowMs).toISOString(),
    pools: pools.sort(comparePools),
    // Each of one shape, as the planner reads them (core/snapshot.ts oneShapeService).
    services: services
      .map(oneShapeService)
      .sort((a, b) => compareText(serviceKey(a), serviceKey(b))),
    unmanagedUsage: unmanagedUsage.sort(
      (a, b) => comparePools(a, b) || compareText(a.source, b.source) || b.gpus - a.gpus,
    ),
  };
  return {
    snapshot,
    services: perProject.flatMap((p) => p.services),
    workerPools: perProject.flatMap((p) => p.workerPools),
    jobExecutions: perProject.flatMap((p) => p.jobExecutions),
    problems: problems.sort(compareProblems),
    regionsListed: perProject.reduce((n, p) => n + p.regionsListed, 0),
  };
}

/**
 * Whether a service's count depends on the unset max, known once its pool's quota is: it sets no
 * max at all, or one of its serving revisions sets none.
 */
function countsUnset(svc: ObservedService): boolean {
  const { level } = maxInForce(svc);
  if (level === 'default') return true;
  return level === 'revisions' && (splitRevisions(svc) ?? []).some((r) => r.maxInstances === null);
}

/**
 * How the cap of a service whose latest revision does not serve was counted, for its reason:
 * the sum of the own max of its revisions in the traffic split, or, when they could not be read,
 * the unset max.
 */
function maxNoteOf(svc: ObservedService): { maxNote?: string } {
  if (svc.templateServes !== false) return {};
  const { max, level } = maxInForce(svc);
  const unset = svc.unsetMax;
  if (level === 'revisions') {
    const parts = (splitRevisions(svc) ?? []).map((r) =>
      typeof r.maxInstances === 'number' && r.maxInstances > 0
        ? `${r.name} ${r.maxInstances}`
        : `${r.name} unset (${unset ?? 'quota ÷ GPUs per instance'})`,
    );
    // A revision only tagged is counted apart, as unmanaged usage of its pool (countedRevisions).
    const tagged = (svc.servingRevisions ?? []).some((r) => !r.inSplit);
    const head = tagged
      ? 'its latest revision does not serve: counted at the own max of its revisions in the traffic split (one only tagged is counted apart, as unmanaged usage of its pool), '
      : "its latest revision does not serve: counted at its serving revisions' own max, ";
    return { maxNote: `${head}${sumWithin(parts, MAX_NOTE_CHARS - head.length, max)}` };
  }
  if (level !== 'default') return {};
  // An error's own words can be long; the note must stay within what a snapshot holds.
  const why =
    svc.revisionsUnread !== undefined
      ? `its serving revisions could not be read (${cutText(svc.revisionsUnread, MAX_NOTE_CHARS / 2)})`
      : 'no serving revision is named';
  return {
    maxNote: `its latest revision does not serve and ${why}: counted at ${max}, the most Cloud Run allows it (quota ÷ GPUs per instance)`,
  };
}

/**
 * `a 1 + b 2 + … = total` in at most `room` characters: a traffic split over many revisions names
 * as many as fit, then how many more there are. Google states no limit on the revisions a split
 * names (https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration), so none is
 * assumed.
 */
function sumWithin(parts: readonly string[], room: number, total: number): string {
  const whole = `${parts.join(' + ')} = ${total}`;
  if (whole.length <= room) return whole;
  let shown = parts.length;
  const text = (n: number) =>
    `${parts.slice(0, n).join(' + ')} + ${parts.length - n} more revision(s) = ${total}`;
  while (shown > 0 && text(shown).length > room) shown--;
  return text(shown);
}

function indexSeries(series: MetricSeries[]): Map<string, MetricSeries> {
  return new Map(series.map((s) => [seriesKey(s.region, s.service), s]));
}

/** The key {@link indexSeries} files a service's series under: its region and name. */
function seriesKey(region: string, service: string): string {
  return `${region}/${service}`;
}

const EMPTY: MetricSeries = { service: '', region: '', points: [] };
const MINUTE_MS = 60_000;

/**
 * Minute times from the first after `startMs` to `endMs`, stepping back from `endMs`. Monitoring
 * reads the interval (start, end] ("It includes the end time but excludes the start time",
 * TimeInterval: https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#timeinterval),
 * so a minute at `startMs` has no point and would read as a minute of 0.
 */
function minuteGrid(startMs: number, endMs: number): { start: number; length: number } {
  const length = Math.floor((endMs - startMs - 1) / MINUTE_MS) + 1;
  return { start: endMs - (length - 1) * MINUTE_MS, length };
}

/**
 * A service's lookback minute by minute: each series' points put on the grid (a point between
 * two grid times goes to the nearest), a minute without a point 0: Cloud Run writes no instance
 * count at zero and no request count without requests. A request count not read (null) is left
 * out, so that it is not taken for "none".
 */
function perMinute(
  grid: { start: number; length: number },
  series: {
    inUse: MetricSeries | undefined;
    served: MetricSeries | null;
    refused: MetricSeries | null;
  },
): UsageMinutes {
  // Two points that fall in one minute (off the grid Monitoring aligns to): an instance count is
  // a gauge, the instances held then, so the minute holds the higher, as ALIGN_MAX would; request
  // counts are each their own interval's, so they add up.
  const place = (
    s: MetricSeries | undefined,
    round: (v: number) => number,
    merge: (a: number, b: number) => number,
  ): number[] => {
    const out = Array<number>(grid.length).fill(0);
    for (const p of s?.points ?? []) {
      const i = Math.round((p.at - grid.start) / MINUTE_MS);
      if (i >= 0 && i < grid.length) out[i] = merge(out[i] ?? 0, Math.max(0, round(p.value)));
    }
    return out;
  };
  const add = (a: number, b: number) => a + b;
  return {
    start: new Date(grid.start).toISOString(),
    // In use as the peak counts it: a fraction of an instance is a whole one held.
    inUse: place(series.inUse, Math.ceil, Math.max),
    ...(series.served ? { served: place(series.served, Math.round, add) } : {}),
    ...(series.refused ? { refused: place(series.refused, Math.round, add) } : {}),
  };
}

/**
 * What in a service's usage no snapshot may hold, in words; null when it all fits. Monitoring
 * answering more instances or requests in a minute than a snapshot's bounds (core/snapshot.ts) is
 * a corrupt answer, not a busy service: planned, it would give figures no plan can hold, and the
 * snapshot `governor snapshot` saves would be refused by `plan --snapshot`. The service's usage is
 * then unknown, which the planner treats with caution (it holds the cap and says why), as it does a
 * failed read.
 */
function beyondBounds(usage: Usage): string | null {
  const minutes = usage.perMinute;
  const over = (values: readonly number[] | undefined, max: number) =>
    (values ?? []).find((v) => v > max);
  const instances = Math.max(usage.current, usage.peak, over(minutes?.inUse, MAX_INSTANCES) ?? 0);
  if (instances > MAX_INSTANCES)
    return `Monitoring reported ${instances} instances in a minute, more than a snapshot counts (${MAX_INSTANCES.toLocaleString('en-US')}): taken as a corrupt answer`;
  for (const key of ['served', 'refused'] as const) {
    const v = over(minutes?.[key], MAX_REQUESTS_PER_MINUTE);
    if (v !== undefined)
      return `Monitoring reported ${v} ${key} requests in a minute, more than a snapshot counts (${MAX_REQUESTS_PER_MINUTE.toLocaleString('en-US')}): taken as a corrupt answer`;
  }
  return null;
}

interface UsageContext {
  queried: boolean;
  projectFresh: boolean;
  nowMs: number;
  staleAfterMs: number;
  error: string | null;
  /** Why the project's metrics are taken as behind, when not by the age of its newest point. */
  behind?: string;
  /** Min instances the service keeps (0 for none): it is never at zero, so never without points. */
  minInstances?: number;
  /** The newest minute it served requests or reported GPU utilization: it had instances then. */
  activeAt?: number | null;
}

/** The newest minute with requests served or a GPU utilization point, or null. */
function newestActivity(
  served: MetricSeries | undefined,
  utilization: MetricSeries | undefined,
): number | null {
  const times = [
    ...(served?.points ?? []).filter((p) => p.value > 0).map((p) => p.at),
    ...(utilization?.points ?? []).map((p) => p.at),
  ];
  // Folded, not spread: a series is as long as Monitoring's answer makes it, and a spread of
  // hundreds of thousands of arguments overflows the call stack.
  return times.length > 0 ? times.reduce((a, b) => Math.max(a, b)) : null;
}

/** An autoscaled service that keeps min instances: it always has instances, so a series. */
function keepsWarm(svc: ObservedService): boolean {
  return svc.scalingMode !== 'MANUAL' && minInstances(svc) > 0 && effectiveMax(svc) > 0;
}

/**
 * The instances a service always has, so that it always has a series: an autoscaled one's min
 * instances ({@link keepsWarm}), a manually scaled one's fixed count ("a specific instance count
 * ... regardless of traffic or utilization":
 * https://cloud.google.com/run/docs/configuring/services/manual-scaling).
 */
function instancesKept(svc: ObservedService): number {
  if (svc.scalingMode === 'MANUAL') return manualInstances(svc);
  return keepsWarm(svc) ? minInstances(svc) : 0;
}

/**
 * Usage from the per-minute instance counts of one service:
 * - the query failed → unknown;
 * - the newest point of the project is older than staleAfter → unknown (Monitoring is behind);
 * - no series, or a series that stopped while the project's others go on → it is at zero now,
 *   with the peak of what the window holds;
 * - else the latest point is what is in use, the highest point the peak.
 */
function usageOf(
  counts: MetricSeries | undefined,
  utilization: MetricSeries | undefined,
  ctx: UsageContext,
): { usage: Usage | null; note?: string } {
  if (!ctx.queried)
    return { usage: null, note: `Monitoring read failed: ${ctx.error ?? 'unknown error'}` };
  const noPoint = `no instance-count point in the last ${Math.round(ctx.staleAfterMs / 60_000)}m`;
  if (!ctx.projectFresh) {
    return {
      usage: null,
      note: ctx.behind ?? `${noPoint} for the project (metrics are behind)`,
    };
  }
  const points = counts?.points ?? [];
  const last = points.at(-1);
  const peak = Math.ceil(points.reduce((m, p) => Math.max(m, p.value), 0));
  const stopped = last === undefined || ctx.nowMs - last.at > ctx.staleAfterMs;
  // A service that keeps min instances is never at zero: its series missing is a gap in
  // Monitoring's answer, not a service that scaled to zero.
  if (stopped && (ctx.minInstances ?? 0) > 0) {
    return {
      usage: null,
      note: `${noPoint} though it keeps ${ctx.minInstances} min instance(s) (its series is missing)`,
    };
  }
  // Nor is one that served requests (or reported GPU use) since its newest instance count.
  const activeAt = ctx.activeAt ?? null;
  if (
    stopped &&
    activeAt !== null &&
    ctx.nowMs - activeAt <= ctx.staleAfterMs &&
    (last === undefined || activeAt > last.at)
  ) {
    return {
      usage: null,
      note: `${noPoint} though it served requests or used its GPU at ${new Date(activeAt).toISOString()} (its series is missing)`,
    };
  }
  // A fraction of an instance is a whole one held, as the peak and the minutes count it.
  const current = stopped ? 0 : Math.ceil(last.value);
  const sampledAt = new Date(stopped ? ctx.nowMs : last.at).toISOString();
  const util = utilization?.points.at(-1);
  return {
    usage: {
      current,
      peak: Math.max(peak, current),
      sampledAt,
      ...(util && !stopped ? { utilization: Math.min(1, Math.max(0, util.value)) } : {}),
    },
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: string; cause: unknown };

/** A project none of whose regions could be listed: nothing of it read, nothing more asked. */
function unlisted(project: string) {
  const none = { ok: true as const, value: [] as MetricSeries[] };
  return {
    project,
    regionsListed: 0,
    unknownRegions: new Map<string, string>(),
    services: [] as ObservedService[],
    workerPools: [] as ObservedWorkerPool[],
    jobExecutions: [] as ObservedJobExecution[],
    counts: none as Settled<MetricSeries[]>,
    utilization: none as Settled<MetricSeries[]>,
    served: none as Settled<MetricSeries[]>,
    refused: none as Settled<MetricSeries[]>,
  };
}

async function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return { ok: false, error: errorMessage(e), cause: e };
  }
}

/**
 * The pools whose quota can be read before the services are listed: those the policy's `pools`
 * name, and the default one (the default accelerator, with zonal redundancy) in the first region.
 * The Cloud Quotas adapter reads one quota info per (project, quota id), which holds every region,
 * and keeps it for the observation: the same pool kind in other regions then costs no round trip.
 * A pool found only by listing (another accelerator, no zonal redundancy) is read after.
 */
function foreseenPools(policy: Policy, project: string, regions: readonly string[]): PoolId[] {
  const out: PoolId[] = policy.pools
    .filter((p) => (p.project ?? project) === project && regions.includes(p.region))
    .map((p) => entryPool(p, project));
  const first = regions[0];
  if (first !== undefined)
    out.push({ project, region: first, accelerator: DEFAULT_ACCELERATOR, zonalRedundancy: true });
  return out;
}
