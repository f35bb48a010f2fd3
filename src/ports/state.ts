/**
 * The state store: what survives between runs besides the services' own annotations. Per
 * governed project it holds the firing conditions (for fire once / re-notify / resolve once), the
 * last run records, and the writer's lease (one governor writes a project at a time).
 *
 * Three implementations, in src/adapters: a JSON file per project (the CLI's default,
 * `file-store.ts`), Firestore (the Cloud Function's, `firestore-store.ts`) and memory (the
 * simulator's, `memory/state-store.ts`). All honour the same contract, tested once in
 * `test/state/contract.ts`; the helpers below are the rules they share. Everything read back is
 * parsed (zod): stored data is never trusted.
 *
 * Errors: ConflictError when an expected version no longer holds; UnavailableError when the store
 * could not be reached in time; StateCorruptError for a stored document that does not parse (the
 * message names it and each fault); UpstreamError for any other failure of the store. The
 * original error is the cause.
 */
import { z } from 'zod';

import { ConditionState } from '../core/notify.js';
import { zodFaults } from '../core/document.js';
import { ConflictError, UpstreamError } from '../errors.js';
import type { Fault } from '../errors.js';

export { ConditionState };

/** The condition state as read, with the version to pass back when saving it. */
export interface VersionedConditions {
  state: ConditionState;
  /** Opaque; null when nothing was ever saved for the project. */
  version: string | null;
}

/** One governor run, as kept for `governor status` and for people looking into the store. */
export const RunRecord = z.strictObject({
  runId: z.string().min(1),
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  mode: z.enum(['enforce', 'dry-run']),
  /** `lease-held`: another governor held the project's lease, so this run did nothing. */
  outcome: z.enum(['ok', 'failed', 'lease-held']),
  /** Writes made. */
  changes: z.number().int().min(0),
  /** Writes planned but not made (deferred by the limit, skipped on re-validation, failed). */
  skips: z.number().int().min(0),
  /**
   * The same, by cause: a write result's cause (`no-room`, `etag`, `failed`…; docs/rules.md
   * promise 9), or `deferred` for those `limits.maxChangesPerRun` held back. Absent: none.
   */
  skipsByCause: z.record(z.string(), z.number().int().min(1)).optional(),
  /** Alert messages published. */
  alerts: z.number().int().min(0),
  /** One line on what went wrong, when something did. */
  error: z.string().nullable(),
  /** Each pool's quota as this run read it (pool key → GPUs, null unknown), for quota.changed. */
  quotas: z.record(z.string(), z.number().int().nullable()).optional(),
  /**
   * Events this run could not publish, as the JSON text of the alerts: the next run sends them
   * first and records this run again without them.
   */
  undelivered: z.string().min(1).optional(),
});
export type RunRecord = z.infer<typeof RunRecord>;

/** The writer's lease on a project, as stored. */
export const Lease = z.strictObject({
  holder: z.string().min(1),
  acquiredAt: z.iso.datetime({ offset: true }),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type Lease = z.infer<typeof Lease>;

/** The answer to a lease request. */
export interface LeaseResult {
  acquired: boolean;
  /** Who holds the lease after the request (absent when nobody does). */
  heldBy?: string;
  /** Until when (ISO 8601). */
  expiresAt?: string;
}

export interface StateStore {
  /** The project's firing conditions; an empty state and a null version when none were saved. */
  loadConditions(project: string): Promise<VersionedConditions>;
  /**
   * Replaces the project's condition state if its version is still `expectedVersion` (null: if
   * nothing was saved yet), and returns the new version. Throws ConflictError otherwise, so two
   * writers cannot silently overwrite each other.
   */
  saveConditions(
    project: string,
    state: ConditionState,
    expectedVersion: string | null,
  ): Promise<string>;
  /** Adds a run record (replacing one with the same runId), keeping only the most recent ones. */
  recordRun(project: string, record: RunRecord): Promise<void>;
  /** The kept run records, the most recent (by `startedAt`) first. */
  listRuns(project: string): Promise<RunRecord[]>;
  /**
   * Takes the project's lease for `ttlMs` from `now` if nobody holds it, it has expired, or
   * `holder` already holds it. Otherwise `acquired` is false and the answer names the holder.
   */
  acquireLease(project: string, holder: string, ttlMs: number, now: string): Promise<LeaseResult>;
  /**
   * Extends the lease for `ttlMs` from `now` if `holder` still holds it (an expired lease no one
   * else took still counts). `acquired` is false when it was released or taken by another.
   */
  renewLease(project: string, holder: string, ttlMs: number, now: string): Promise<LeaseResult>;
  /** Gives the lease up if `holder` holds it; true when it did. */
  releaseLease(project: string, holder: string): Promise<boolean>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/** How many run records a store keeps per project by default. */
export const DEFAULT_KEEP_RUNS = 50;

/**
 * The lease decision both stores make inside their atomic read-modify-write: the lease to write
 * (or null to leave it), and the answer.
 */
export interface LeaseRequest {
  kind: 'acquire' | 'renew';
  holder: string;
  ttlMs: number;
  now: string;
}

/** Checks a lease request's arguments, before any I/O. */
export function checkLeaseRequest(request: LeaseRequest): LeaseRequest {
  checkTime(request.now, 'now');
  if (!Number.isFinite(request.ttlMs) || request.ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a finite number above 0, not ${request.ttlMs}`);
  }
  if (request.holder === '') throw new RangeError('holder must not be empty');
  return request;
}

export function decideLease(
  stored: Lease | null,
  request: LeaseRequest,
): { write: Lease | null; result: LeaseResult } {
  const { kind, holder, ttlMs, now } = checkLeaseRequest(request);
  const nowMs = Date.parse(now);
  const mine = stored !== null && stored.holder === holder;
  const live = stored !== null && Date.parse(stored.expiresAt) > nowMs;
  const grant = kind === 'acquire' ? mine || !live : mine;
  if (!grant) {
    return {
      write: null,
      result:
        stored === null
          ? { acquired: false }
          : { acquired: false, heldBy: stored.holder, expiresAt: stored.expiresAt },
    };
  }
  const expiresAt = new Date(nowMs + ttlMs).toISOString();
  const acquiredAt = mine && stored ? stored.acquiredAt : new Date(nowMs).toISOString();
  return {
    write: { holder, acquiredAt, expiresAt },
    result: { acquired: true, heldBy: holder, expiresAt },
  };
}

/** The records to keep: `record` added (replacing its runId), most recent first, at most `keep`. */
export function keepRuns(runs: readonly RunRecord[], record: RunRecord, keep: number): RunRecord[] {
  return sortRuns([record, ...runs.filter((r) => r.runId !== record.runId)]).slice(0, keep);
}

/** Most recent first (by `startedAt`, then runId), the same on every machine. */
export function sortRuns(runs: readonly RunRecord[]): RunRecord[] {
  return [...runs].sort(
    (a, b) =>
      Date.parse(b.startedAt) - Date.parse(a.startedAt) ||
      (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0),
  );
}

/** Checks a record before it is stored, so a bad one fails the caller, not a later reader. */
export function checkRunRecord(record: RunRecord): RunRecord {
  const parsed = RunRecord.safeParse(record);
  if (!parsed.success) throw new RangeError(`Invalid run record: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Checks a project id before it names a file or a document. */
export function checkProject(project: string): string {
  if (project === '' || project.length > 200) {
    throw new RangeError(`Invalid project id: ${JSON.stringify(project)}`);
  }
  return project;
}

export function checkKeep(keep: number): number {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new RangeError(`keepRuns must be an integer >= 1, not ${keep}`);
  }
  return keep;
}

/** The condition state changed since it was read: another writer saved first. */
export function versionConflict(
  project: string,
  expected: string | null,
  found: string | null,
  cause?: unknown,
): ConflictError {
  return new ConflictError(
    `Condition state of ${project} changed since it was read ` +
      `(expected version ${expected ?? 'none'}, found ${found ?? 'none'}): another governor wrote it`,
    { cause },
  );
}

/** What the store holds does not parse: someone edited it, or a bug wrote it. Exit code 1. */
export class StateCorruptError extends UpstreamError {
  readonly faults: readonly Fault[];
  constructor(what: string, faults: readonly Fault[], options?: { cause?: unknown }) {
    const lines = faults.map((f) => `  - ${f.path ? `${f.path}: ` : ''}${f.message}`);
    super(`Unreadable ${what}:\n${lines.join('\n')}`, options);
    this.faults = faults;
  }
}

/** Parses stored data, naming where it came from when it does not fit. */
export function parseStored<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new StateCorruptError(what, zodFaults(parsed.error), { cause: parsed.error });
}

function checkTime(text: string, what: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new RangeError(`${what} is not a time: ${JSON.stringify(text)}`);
  return ms;
}
