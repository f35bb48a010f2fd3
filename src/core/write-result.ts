/**
 * What became of one planned write. `cause` says why, as a value to branch on; `reason` is the
 * same for people (and for the service's reason annotation), never read back.
 */

export type WriteOutcome = 'written' | 'skipped' | 'failed';

/**
 * - `written`: the write landed (`written` may be below `planned` when room ran short).
 * - `compensated`: written too: a raise of this run lowered back in the same run, because the
 *   read just after the increases found the pool over its quota (another writer filled it, or
 *   the quota was cut, inside the one round trip between the fresh read and the raise).
 * - `fenced`: written too, no cap changed: a raise of this run got no answer and did not show on
 *   the read just after it, where the pool had room; its service's max written back, with the
 *   etag the raise was sent with, so that the raise is refused should it reach Cloud Run later.
 *
 * Skipped, nothing sent; the next run decides again:
 * - `deadline`: the run deadline came before the write (or while reading the service for it);
 * - `reconciling`: a deployment is in progress;
 * - `etag`: the service changed since it was observed;
 * - `changed`: its max changed since it was observed;
 * - `gone`: the service is no longer there (the read no longer lists it, or Cloud Run answered
 *   NOT_FOUND to the write: someone deleted it);
 * - `no-room`: the pool, read again after its decreases, has no room for this increase;
 * - `pool-unreadable`: the pool could not be read again after its decreases;
 * - `other-governor`: another governor's stamp on a service of the pool is fresher than a lease:
 *   it may be writing the pool now, so nothing is written there;
 * - `conflict`: someone changed it while the governor was writing it (stale etag, ABORTED).
 *
 * Failed, and the run fails loudly:
 * - `unreadable`: it could not be read just before the write;
 * - `uncertain`: the write failed in a way that may still apply (no answer, unavailable, or an
 *   error of its operation or of the call that does not say it was refused);
 * - `denied`: the governor may not read or write it (a permission);
 * - `failed`: refused before it applied (Cloud Run's own quota check, the write quota, a bad
 *   request, a refusal in the service's state such as another operation in flight).
 */
export type WriteCause =
  | 'written'
  | 'compensated'
  | 'fenced'
  | 'deadline'
  | 'reconciling'
  | 'etag'
  | 'changed'
  | 'gone'
  | 'no-room'
  | 'pool-unreadable'
  | 'other-governor'
  | 'conflict'
  | 'unreadable'
  | 'uncertain'
  | 'denied'
  | 'failed';

export interface WriteResult {
  project: string;
  region: string;
  name: string;
  from: number;
  /** What the plan asked for. */
  planned: number;
  /** What was written (equal to `planned`, or less when room ran short); null when nothing was. */
  written: number | null;
  outcome: WriteOutcome;
  cause: WriteCause;
  reason: string;
  /**
   * For `denied`: the permission(s) the error names, else the ones such a write needs
   * (`run.services.update` on the service, `iam.serviceAccounts.actAs` on its runtime account).
   */
  permissions?: string[];
  /**
   * For `denied`: the resource the permission is lacked on, as the error names it, else the
   * service (`projects/P/locations/R/services/S`).
   */
  resource?: string;
}

/** A write that landed, or may still land: its room is spent either way. */
export function mayHaveLanded(w: Pick<WriteResult, 'cause'>): boolean {
  return w.cause === 'written' || w.cause === 'uncertain';
}

/**
 * A write that landed at a cap other than the planned one (room ran short): the plan printed or
 * published before the writes told a cap the fleet does not hold, so the run's summary names it.
 */
export function writtenShort(w: Pick<WriteResult, 'cause' | 'written' | 'planned'>): boolean {
  return w.cause === 'written' && w.written !== null && w.written !== w.planned;
}

/** Each cause in a few words, for reports that count writes by cause. */
export const CAUSE_LABELS: Readonly<Record<WriteCause, string>> = {
  written: 'written',
  compensated: 'raise lowered back (pool filled meanwhile)',
  fenced: 'unanswered raise fenced off (no cap changed)',
  deadline: 'run deadline',
  reconciling: 'deploying (reconciling)',
  etag: 'changed since observed (etag)',
  changed: 'max changed since observed',
  gone: 'service gone',
  'no-room': 'no room in the pool',
  'pool-unreadable': 'pool unreadable before increases',
  'other-governor': 'another governor writes the pool',
  conflict: 'conflict while writing',
  unreadable: 'unreadable before writing',
  uncertain: 'write failed (may still apply)',
  denied: 'permission denied',
  failed: 'write failed',
};
