import pLimit from 'p-limit';
import type { ObservationProblem } from '../core/problems.js';
import {
  needsServingRevisions,
  RUN_READS_PER_MINUTE,
  type GpuSpec,
  type ObservedService,
  type RevisionKind,
  type RevisionRead,
  type ServingRevision,
} from '../core/service.js';
import { errorMessage } from '../core/errors.js';
import type { CloudRunPort, ObservedWorkerPool } from '../ports/index.js';

/**
 * What one run has read of its revisions: each revision's own max and GPU, by its full name
 * (`projects/P/locations/L/services/S/revisions/R`), so that a run that lists a region again
 * (just before its raises, and just after them: reconcile/act.ts) reads each revision once. A
 * revision is "an immutable snapshot of code and configuration" and revisions "are only created
 * by updates to its parent Service"
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions):
 * what a read found of a revision stays true of that name. Whether a name could come back as
 * another revision once its revision is deleted Google does not say (its `name` is "the unique
 * name of this Revision"); a memo lives for one run, so the next run reads it again whatever
 * happened. Only reads that succeeded are kept: a failed one is tried again at the next listing.
 * Which revisions serve is never taken from it: each listing says that, and the memo only
 * answers what a named revision is. It holds at most what the run read, each read under a
 * listing's budget (`REVISION_READS`).
 */
export class RevisionMemo {
  readonly #reads = new Map<string, RevisionRead>();

  /**
   * What an earlier read of this run found of `revision` of `s` (a service, or with `kind`
   * `workerPools` a worker pool); undefined: not read yet.
   */
  get(s: Parent, revision: string, kind: RevisionKind = 'services'): RevisionRead | undefined {
    return this.#reads.get(revisionKey(s, revision, kind));
  }

  /** Keeps what a read found of `revision` of `s`, which succeeded. */
  set(s: Parent, revision: string, read: RevisionRead, kind: RevisionKind = 'services'): void {
    this.#reads.set(revisionKey(s, revision, kind), read);
  }
}

/** What a revision belongs to: a service or a worker pool. */
type Parent = { project: string; region: string; name: string };

/** A revision's full name, as Cloud Run names it. */
function revisionKey(s: Parent, revision: string, kind: RevisionKind): string {
  return `projects/${s.project}/locations/${s.region}/${kind}/${s.name}/revisions/${revision}`;
}

/**
 * The own max, min and GPU of each revision that can hold instances of a service whose template
 * does not serve (traffic pinned on another revision, a split, a rollout in progress or a failed
 * latest revision), and of each revision only tagged beside a template that serves, as
 * `needsServingRevisions` says: without a service-level max the cap of the former is made of their
 * max (`maxInForce`), a revision of another pool than the template's holds GPUs of that pool, and
 * one only tagged its own max of GPUs in its own pool (`countedRevisions`, core/revision-pools.ts).
 * Only those services are read, one GetRevision per revision not in `memo` (what the run read of
 * them already, {@link RevisionMemo}; without one, each is read), so a fleet whose templates serve
 * with no tag costs no call. A read that fails leaves the service counted coarsely, at the unset
 * max when its template does not serve, with `revisionsUnread` saying why, and a problem noted:
 * the run goes on (one only tagged unread holds its region's raises: `taggedUnknown`).
 */
export async function withServingRevisions(
  run: CloudRunPort,
  services: readonly ObservedService[],
  problems: ObservationProblem[],
  memo: RevisionMemo = new RevisionMemo(),
): Promise<ObservedService[]> {
  return (await withRevisionsRead(run, { services, workerPools: [] }, problems, memo)).services;
}

/**
 * {@link withServingRevisions} of one listing's services and worker pools together, under one
 * budget: the GPU of each revision of a worker pool's instance split, when its template does not
 * serve (its instances split by name, or its latest revision not ready), so that a revision of
 * another pool is counted in it (`countedPoolRevisions`, core/revision-pools.ts). A worker pool
 * whose revisions could not be read carries `revisionsUnread`, and a problem is noted: which
 * pools its instances hold is then unknown.
 */
export async function withRevisionsRead(
  run: CloudRunPort,
  listing: { services: readonly ObservedService[]; workerPools: readonly ObservedWorkerPool[] },
  problems: ObservationProblem[],
  memo: RevisionMemo = new RevisionMemo(),
): Promise<{ services: ObservedService[]; workerPools: ObservedWorkerPool[] }> {
  const { services, workerPools } = listing;
  // A listing is one project and region, whose reads share Cloud Run's read quota: at most
  // REVISION_READS of them per listing, a few at a time (the rest counted coarsely, said once).
  // What the memo answers is no call, so it costs none of them.
  const limit = pLimit(REVISION_READ_CONCURRENCY);
  let budget = REVISION_READS;
  const skipped: Parent[] = [];
  const get = run.getRevisionMax?.bind(run);
  // The revisions of `s` (of `kind`), each with what its read found, or why they are unread.
  const readAll = async <T extends Parent & { servingRevisions?: ServingRevision[] }>(
    s: T,
    kind: RevisionKind,
  ): Promise<{ revisions: ServingRevision[] } | Unread> => {
    const revisions = s.servingRevisions ?? [];
    if (get === undefined)
      return { unread: 'revisions cannot be read through this Cloud Run port', for: 'failed' };
    const toRead = revisions.filter((r) => memo.get(s, r.name, kind) === undefined).length;
    if (toRead > budget) {
      // Services past the budget are said once, below; a worker pool, by its own problem.
      if (kind === 'services') skipped.push(s);
      return { unread: kind === 'services' ? OVER_BUDGET : POOL_OVER_BUDGET, for: 'budget' };
    }
    budget -= toRead;
    try {
      return {
        revisions: await Promise.all(
          revisions.map((r) => {
            const known = memo.get(s, r.name, kind);
            if (known) return { ...r, ...known };
            return limit(async () => {
              const own = await get(s.project, s.region, s.name, r.name, kind);
              memo.set(s, r.name, own, kind);
              return { ...r, ...own };
            });
          }),
        ),
      };
    } catch (error) {
      const why = errorMessage(error);
      problems.push(unreadProblem(s, kind, why));
      return { unread: why, for: 'failed' };
    }
  };
  const read = async (s: ObservedService): Promise<ObservedService> => {
    if (!needsServingRevisions(s)) return s;
    const found = await readAll(s, 'services');
    if ('unread' in found) {
      const unread = { ...s, revisionsUnread: found.unread, revisionsUnreadFor: found.for };
      // Past the budget a GPU service with a revision only tagged holds its region as a refused
      // read does (`taggedUnknown`), said on its own.
      if (found.for === 'budget' && taggedUnknown(unread))
        problems.push(unreadProblem(s, 'services', found.unread));
      return unread;
    }
    return { ...s, servingRevisions: found.revisions, ...widestGpu(s, found.revisions) };
  };
  const readPool = async (w: ObservedWorkerPool): Promise<ObservedWorkerPool> => {
    if (w.templateServes !== false || (w.servingRevisions ?? []).length === 0) return w;
    const found = await readAll(w, 'workerPools');
    if ('unread' in found) {
      if (found.for === 'budget') problems.push(unreadProblem(w, 'workerPools', found.unread));
      return { ...w, revisionsUnread: found.unread };
    }
    return { ...w, servingRevisions: found.revisions, ...widestGpu(w, found.revisions) };
  };
  // The budget goes to GPU services and worker pools first, whose cap or count may be made of
  // these reads; then to services whose template has no GPU, read only in case an older revision
  // serving still has one. Else a region of many services without GPUs, listed first, would leave
  // a GPU service counted coarsely.
  const keys = [...services.keys()];
  const gpuFirst = keys.filter((i) => services[i]?.gpu !== null);
  const rest = keys.filter((i) => services[i]?.gpu === null);
  // Started in that order (each takes its share of the budget before its first await), answered
  // in the listing's.
  const pending: Promise<ObservedService>[] = [];
  for (const i of gpuFirst) pending[i] = read(services[i] as ObservedService);
  const pools = workerPools.map(readPool);
  for (const i of rest) pending[i] = read(services[i] as ObservedService);
  const result = await Promise.all(pending);
  const readPools = await Promise.all(pools);
  const [first] = skipped;
  if (first !== undefined) {
    problems.push({
      project: first.project,
      region: first.region,
      pool: null,
      subject: 'revisions',
      error: `${skipped.length} service(s) from ${first.name} on: ${OVER_BUDGET}`,
    });
  }
  return { services: result, workerPools: readPools };
}

/**
 * The problem of revisions of `s` that could not be read (`why`). A worker pool's unread is a
 * region's worker pools not read: its pools' budgets unknown. So is a service's revision only
 * tagged: which pool it holds GPUs of, and how many, is unknown. Any other is the service's alone.
 */
function unreadProblem(
  s: Parent & { servingRevisions?: readonly ServingRevision[] | undefined },
  kind: RevisionKind,
  why: string,
): ObservationProblem {
  const tagged = kind === 'services' ? taggedOf(s.servingRevisions ?? []) : [];
  const where = { project: s.project, region: s.region, pool: null };
  if (kind !== 'services')
    return { ...where, subject: 'worker-pools', error: poolUnread(s.name, why) };
  if (tagged.length > 0)
    return { ...where, subject: 'tagged-revisions', error: taggedUnread(s.name, tagged, why) };
  return { ...where, subject: 'revisions', error: `${s.name}: ${why}` };
}

/** The short names of the revisions only tagged, outside the traffic split. */
function taggedOf(revisions: readonly ServingRevision[]): string[] {
  return revisions.filter((r) => !r.inSplit).map((r) => r.name);
}

/** The problem of a service whose revisions only tagged were not read. */
function taggedUnread(name: string, tagged: readonly string[], why: string): string {
  return `${name}: its revision(s) ${tagged.join(', ')}, only tagged (outside the traffic split), could not be read (${why}), so which pool they hold GPUs of, and how many, is unknown: no service-level max bounds them`;
}

/**
 * Whether a service holds GPUs nothing counts: a revision of it only tagged, outside the traffic
 * split, could not be read. Such a revision is started and no service-level max bounds it
 * ("Tagged revisions are started, but only count toward the service-level maximum instances if
 * they are a part of a traffic split", https://cloud.google.com/run/docs/configuring/max-instances),
 * and its own max and GPU come from its GetRevision alone: which pool of the region it holds GPUs
 * of, and how many, is unknown. Observation then marks the budgets of the region's pools unknown,
 * so nothing there is raised, as for a worker pool whose split was not read (`poolUnread`); the
 * write path's read before the raises holds them the same way (reconcile/act.ts). Past the reads
 * allowed, only a GPU service holds them, as on the write path: a region of many services whose
 * template has no GPU would otherwise never be governed again.
 */
export function taggedUnknown(s: ObservedService): boolean {
  return (
    s.revisionsUnread !== undefined &&
    (s.servingRevisions ?? []).some((r) => !r.inSplit) &&
    (s.gpu !== null || !unreadPastBudget(s))
  );
}

/** The problem of a worker pool whose split's revisions were not read. */
export function poolUnread(name: string, why: string): string {
  return `worker pool ${name}: the revisions of its instance split could not be read (${why}), so which pools they hold GPUs of is unknown`;
}

/**
 * The service's GPU counted at the most GPUs an instance of it may hold in its template's pool.
 * Its instances are its serving revisions' (a revision is an immutable snapshot with its own GPU
 * limit, google/cloud/run/v2/revision.proto), so a revision of the same pool that serves with
 * more GPUs an instance than the template (a redeploy with `--no-traffic` that changed
 * `nvidia.com/gpu`, a split, a rollout) holds that many per instance: counted at the template's,
 * its cap would read as fewer GPUs than it may hold, and a raise would take more of the pool than
 * the room it was given (the plan, the read before the raises and the one after them all count
 * it this way). The most is the safe side, as each pool counts all it may hold. Revisions of
 * other pools are counted in theirs, and a revision only tagged, outside the traffic split, at its
 * own GPUs apart from the service (`countedRevisions`, core/revision-pools.ts).
 */
function widestGpu(
  s: { gpu: GpuSpec | null },
  revisions: readonly ServingRevision[],
): { gpu: GpuSpec } | Record<string, never> {
  const gpu = s.gpu;
  if (!gpu) return {};
  let count = gpu.count;
  for (const r of revisions)
    if (
      r.inSplit &&
      r.gpu &&
      r.gpu.accelerator === gpu.accelerator &&
      r.gpu.zonalRedundancy === gpu.zonalRedundancy
    )
      count = Math.max(count, r.gpu.count);
  return count === gpu.count ? {} : { gpu: { ...gpu, count } };
}

/**
 * GetRevision calls per listing (one project and region) at most: the governor's share of Cloud
 * Run's read quota (`RUN_READS_PER_MINUTE`, core/service.ts, which cites it), so that deploys and
 * the console, which spend the same quota, are not refused while a run reads. Only services whose
 * latest revision does not serve are read, and each revision once a run (RevisionMemo: a run's
 * later listings of the region read only what it has not read yet), so a fleet rarely comes near
 * it.
 */
export const REVISION_READS = RUN_READS_PER_MINUTE;

/** GetRevision calls in flight at once per listing. */
const REVISION_READ_CONCURRENCY = 8;

const OVER_BUDGET = `not read: more than ${REVISION_READS} revisions to read in one region in a run (half of Cloud Run's read quota per minute); counted at the unset max, as a service that sets none`;

const POOL_OVER_BUDGET = `not read: more than ${REVISION_READS} revisions to read in one region in a run (half of Cloud Run's read quota per minute)`;

/** Whether `s`'s serving revisions were left unread for the reads a listing allows, not refused. */
export function unreadPastBudget(s: ObservedService): boolean {
  return s.revisionsUnreadFor === 'budget';
}

/** Why revisions are unread: the words said (`revisionsUnread`) and what happened (`revisionsUnreadFor`). */
interface Unread {
  unread: string;
  for: NonNullable<ObservedService['revisionsUnreadFor']>;
}
