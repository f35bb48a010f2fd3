/**
 * What became of one planned write. `cause` says why, as a value to branch on; `reason` is the
 * same for people (and for the service's reason annotation), never read back.
 */

export type WriteOutcome = 'written' | 'skipped' | 'failed';

/**
 * - `written`: the write landed (`written` may be below `planned` when room ran short).
 *
 * Skipped, nothing sent; the next run decides again:
 * - `deadline`: the run deadline came before the write (or while reading the service for it);
 * - `reconciling`: a deployment is in progress;
 * - `etag`: the service changed since it was observed;
 * - `changed`: its max changed since it was observed;
 * - `gone`: the service is no longer there;
 * - `no-room`: the pool, read again after its decreases, has no room for this increase;
 * - `pool-unreadable`: the pool could not be read again after its decreases;
 * - `conflict`: someone changed it while the governor was writing it (stale etag, ABORTED).
 *
 * Failed, and the run fails loudly:
 * - `unreadable`: it could not be read just before the write;
 * - `uncertain`: the write failed in a way that may still apply (no answer, unavailable);
 * - `denied`: the governor may not read or write it (a permission);
 * - `failed`: any other failure of the write.
 */
export type WriteCause =
  | 'written'
  | 'deadline'
  | 'reconciling'
  | 'etag'
  | 'changed'
  | 'gone'
  | 'no-room'
  | 'pool-unreadable'
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
}

/** A write that landed, or may still land: its room is spent either way. */
export function mayHaveLanded(w: Pick<WriteResult, 'cause'>): boolean {
  return w.cause === 'written' || w.cause === 'uncertain';
}

/** Each cause in a few words, for reports that count writes by cause. */
export const CAUSE_LABELS: Readonly<Record<WriteCause, string>> = {
  written: 'written',
  deadline: 'run deadline',
  reconciling: 'deploying (reconciling)',
  etag: 'changed since observed (etag)',
  changed: 'max changed since observed',
  gone: 'service gone',
  'no-room': 'no room in the pool',
  'pool-unreadable': 'pool unreadable before increases',
  conflict: 'conflict while writing',
  unreadable: 'unreadable before writing',
  uncertain: 'write failed (may still apply)',
  denied: 'permission denied',
  failed: 'write failed',
};
