import { compareText, poolKey, type PoolId } from './pool.js';

/**
 * What observation could not read, as records: which project, region and pool it concerns, what
 * was being read, and the error. Code filters and judges on the fields; `renderProblem` words one
 * for logs and people.
 */

export type ProblemSubject =
  /**
   * A region's services could not be listed: the region is skipped whole; with no region, the
   * project's regions could not be listed: the project is skipped whole.
   */
  | 'services'
  /** A region's worker pools could not be listed: its pools' budgets are unknown, nothing raised. */
  | 'worker-pools'
  /** A region's running job executions could not be listed: the same. */
  | 'jobs'
  /** The project's per-minute instance counts: usage unknown (fail static). */
  | 'instance-counts'
  /** The project's GPU utilization: demand is estimated without it. */
  | 'gpu-utilization'
  /** The project's requests served per minute: the snapshot's usage has no `served` counts. */
  | 'served-requests'
  /**
   * The project's requests refused (429) per minute: no `refused` counts (where the logs-based
   * metric of terraform/ is not defined, Monitoring knows no such metric, and the error says so).
   */
  | 'refused-requests'
  /** A pool's quota: unknown, so nothing in the pool is raised. */
  | 'quota'
  /**
   * A service's serving revisions (its latest revision does not serve): it is counted at the
   * unset max, its pool's quota ÷ GPUs per instance. The error begins with the service's name.
   */
  | 'revisions'
  /**
   * A service's revision only tagged, outside the traffic split, could not be read: its own max and
   * GPU, so which pool of the region it holds GPUs of and how many, are unknown (no service-level
   * max bounds it). As a listing not read: the budgets of the region's pools are unknown, nothing
   * there is raised. The error begins with the service's name and names the revision.
   */
  | 'tagged-revisions';

/** The subjects of a listing of what runs on GPUs: one of them unread leaves the fleet partly unseen. */
const LISTINGS: ReadonlySet<ProblemSubject> = new Set(['services', 'worker-pools', 'jobs']);

/** Whether every listing of the fleet was read (no region skipped, no worker pools or jobs unread). */
export function fleetFullySeen(problems: readonly ObservationProblem[]): boolean {
  return !problems.some((p) => LISTINGS.has(p.subject));
}

/** How a pool's quota that could not be read is told as its source (the snapshot's `quotaSource`). */
export function quotaUnreadable(error: string): string {
  return `unreadable: ${error}`;
}

/**
 * Why a pool's quota is unknown, as the problems of its snapshot recorded it (in the words of
 * {@link quotaUnreadable}); null when they record nothing for it (or a snapshot has none).
 */
export function quotaProblem(
  problems: readonly ObservationProblem[] | undefined,
  key: string,
): string | null {
  const found = problems?.find(
    (p) => p.subject === 'quota' && p.pool !== null && poolKey(p.pool) === key,
  );
  return found ? quotaUnreadable(found.error) : null;
}

export interface ObservationProblem {
  project: string;
  /** The region it concerns; null when the whole project. */
  region: string | null;
  /** The pool it concerns; null when not one pool. */
  pool: PoolId | null;
  subject: ProblemSubject;
  error: string;
}

/** The subjects in the order a project's problems are listed: the listings, then the reads. */
const SUBJECT_ORDER: Record<ProblemSubject, number> = {
  services: 0,
  'worker-pools': 1,
  jobs: 2,
  'instance-counts': 3,
  'gpu-utilization': 4,
  'served-requests': 5,
  'refused-requests': 6,
  quota: 7,
  revisions: 8,
  'tagged-revisions': 9,
};

/**
 * The order problems are reported in: by project, region (the whole project first), pool,
 * subject, then error. Observation reads regions, pools and projects at once, so the order they
 * fail in is the order their answers came; this one is the same every run.
 */
export function compareProblems(a: ObservationProblem, b: ObservationProblem): number {
  return (
    compareText(a.project, b.project) ||
    compareText(a.region ?? '', b.region ?? '') ||
    compareText(a.pool ? poolKey(a.pool) : '', b.pool ? poolKey(b.pool) : '') ||
    SUBJECT_ORDER[a.subject] - SUBJECT_ORDER[b.subject] ||
    compareText(a.error, b.error)
  );
}

export function renderProblem(p: ObservationProblem): string {
  switch (p.subject) {
    case 'services':
      return p.region === null
        ? `${p.project}: its Cloud Run regions could not be listed, so none of them is governed: ${p.error}`
        : `${p.project}/${p.region}: services unreadable, region skipped: ${p.error}`;
    case 'worker-pools':
      return `${p.project}/${p.region ?? '?'}: worker pools unreadable, so the budget of its GPU pools is unknown and nothing there is raised: ${p.error}`;
    case 'jobs':
      return `${p.project}/${p.region ?? '?'}: job executions unreadable, so the budget of its GPU pools is unknown and nothing there is raised: ${p.error}`;
    case 'instance-counts':
      return `${p.project}: instance counts unreadable: ${p.error}`;
    case 'gpu-utilization':
      return `${p.project}: GPU utilization unreadable: ${p.error}`;
    case 'served-requests':
      return `${p.project}: served requests unreadable: ${p.error}`;
    case 'refused-requests':
      return `${p.project}: refused requests unreadable: ${p.error}`;
    case 'quota':
      return `${p.pool ? poolKey(p.pool) : p.project}: quota unreadable: ${p.error}`;
    case 'revisions':
      return `${p.project}/${p.region ?? '?'}: serving revisions unreadable, so the service is counted at its pool's quota ÷ GPUs per instance: ${p.error}`;
    case 'tagged-revisions':
      return `${p.project}/${p.region ?? '?'}: a revision only tagged unreadable, so the budget of its GPU pools is unknown and nothing there is raised: ${p.error}`;
  }
}

/** The problems of one project (exactly that project, not every project its name begins). */
export function problemsOf(
  problems: readonly ObservationProblem[],
  project: string,
): ObservationProblem[] {
  return problems.filter((p) => p.project === project);
}
