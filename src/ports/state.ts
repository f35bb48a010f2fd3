/**
 * The state store: what survives between runs besides the services' own annotations. Per
 * governed project it holds the firing conditions (for fire once / re-notify / resolve once), the
 * last run records, the writer's lease (one governor writes a project at a time) and the outbox
 * (alert events not yet published). Per store it holds the governor's id.
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
import { randomBytes } from 'node:crypto';

import { z } from 'zod';

import { Alert, alertBytes, MAX_ALERT_BYTES } from '../core/alert.js';
import { ConditionRecord, ConditionState } from '../core/notify.js';
import { zodFaults } from '../core/document.js';
import { beyondSkew, MAX_CLOCK_SKEW_MS } from '../core/duration.js';
import { PressureLedger } from '../core/quota-pressure.js';
import { capFaults, ConflictError, cutText, faultText, UpstreamError } from '../core/errors.js';
import type { Fault } from '../core/errors.js';

export { ConditionState };

/** The condition state as read, with the version to pass back when saving it. */
export interface VersionedConditions {
  state: ConditionState;
  /** Opaque; null when nothing was ever saved for the project. */
  version: string | null;
  /**
   * The stored condition records this version cannot read (a newer version's alert type or
   * field, a hand edit), by key, with why: left out of `state`, so never published, re-notified
   * or resolved here, and kept as stored by every save (see {@link readConditions}). Absent when
   * none.
   */
  unreadable?: readonly UnreadableCondition[];
}

/** A stored condition record nobody here can read: its key (dedupKey) and why. */
export interface UnreadableCondition {
  key: string;
  faults: readonly Fault[];
}

/**
 * A stored condition state, record by record: those that read (`state`) and those that do not,
 * as stored (`kept`) and why (`unreadable`). One record a newer version wrote (an alert type or a
 * field this version does not know: versions of the governor run side by side during a deploy,
 * and after a rollback) must not make the whole state unreadable: every run would fail to
 * publish any alert, for good, since only the version that wrote the record can resolve it. The
 * record is kept as stored by {@link keepUnreadable} on every save, so the newer version finds
 * it again. A state that is not an object at all is unreadable as a whole (StateCorruptError).
 */
export function readConditions(
  stored: unknown,
  what: string,
): { state: ConditionState; kept: Record<string, unknown>; unreadable: UnreadableCondition[] } {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    throw new StateCorruptError(what, [
      { path: '', message: 'not an object of condition records' },
    ]);
  }
  // Entries, then fromEntries: a key such as `__proto__` stays a key, never a prototype.
  const read: [string, ConditionRecord][] = [];
  const kept: [string, unknown][] = [];
  const unreadable: UnreadableCondition[] = [];
  for (const [key, value] of Object.entries(stored)) {
    const parsed = ConditionRecord.safeParse(value);
    if (parsed.success && key !== '') read.push([key, parsed.data]);
    else {
      kept.push([key, value]);
      const faults = parsed.success
        ? [{ path: '', message: 'an empty key' }]
        : zodFaults(parsed.error);
      unreadable.push({ key, faults: capFaults(faults, 5) });
    }
  }
  return { state: Object.fromEntries(read), kept: Object.fromEntries(kept), unreadable };
}

/**
 * The state to store: `next` and the records `kept` as stored (unreadable here) beside it. A key
 * `next` has wins: this version judged that condition afresh.
 */
export function keepUnreadable(
  next: ConditionState,
  kept: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  return { ...kept, ...next };
}

/**
 * Checks a condition state before it is stored, so a bad one fails the caller in one line naming
 * the record and each fault (RangeError, as {@link checkRunRecord}); nothing is written then.
 */
export function checkConditionState(state: ConditionState): ConditionState {
  const parsed = ConditionState.safeParse(state);
  if (!parsed.success) throw new RangeError(`Invalid condition state: ${faultLine(parsed.error)}`);
  return parsed.data;
}

/** One governor run, as kept for `governor status` and for people looking into the store. */
export const RunRecord = z.strictObject({
  runId: z.string().min(1),
  /** When the run started and ended, on the wall clock (as leases are). */
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  /**
   * The run's own time, the one it planned at: its clock, which is the emulator's virtual clock
   * against the emulator (the pools and pressure of the record are at this time). Absent in
   * records of earlier versions and of runs that planned nothing.
   */
  at: z.iso.datetime({ offset: true }).optional(),
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
  /** Alert messages published about this project. */
  alerts: z.number().int().min(0),
  /** One line on what went wrong, when something did. */
  error: z.string().nullable(),
  /** Each pool's quota as this run read it (pool key → GPUs, null unknown), for quota.changed. */
  quotas: z.record(z.string(), z.number().int().nullable()).optional(),
  /**
   * Written by earlier versions only: events the run could not publish, as the JSON text of the
   * alerts. A run that reads one moves them into the outbox and records the run again without.
   */
  undelivered: z.string().min(1).optional(),
  /** The ids of this run's events still in the outbox when it ended (not yet published). */
  undeliveredIds: z.array(z.string().min(1)).optional(),
  /**
   * Each pool's pressure over the last days, rolled forward by every run from the newest record
   * that has it (src/core/quota-pressure.ts): what `governor quota recommend` reads.
   */
  pressure: PressureLedger.optional(),
  /**
   * Each pool as this run left it (pool key → GPUs; `caps`: the caps its writes left, as planned
   * in a dry run), for the organisation view
   * (`governor status --org`). Absent in records of earlier versions.
   */
  pools: z
    .record(
      z.string(),
      z.strictObject({
        budget: z.number().int().nullable(),
        caps: z.number().int(),
        demand: z.number().int(),
        inUse: z.number().int(),
        status: z.string().max(40),
      }),
    )
    .optional(),
});
export type RunRecord = z.infer<typeof RunRecord>;

/**
 * The longest lease holder. A governor's is `<governor id>/<run id>@<host>:<pid>`, about 130
 * characters at most; a longer one was written by something else, and echoed in every answer,
 * alert and log line that names the holder. Stored, it makes the lease unreadable (`governor
 * unlock` removes it).
 */
const MAX_HOLDER_LENGTH = 256;

/** The writer's lease on a project, as stored. */
export const Lease = z.strictObject({
  holder: z.string().min(1).max(MAX_HOLDER_LENGTH),
  acquiredAt: z.iso.datetime({ offset: true }),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type Lease = z.infer<typeof Lease>;

/** The answer to a lease request. */
export interface LeaseResult {
  acquired: boolean;
  /** Who holds the lease after the request (absent when nobody does). */
  heldBy?: string;
  /** Since when (ISO 8601). */
  acquiredAt?: string;
  /** Until when (ISO 8601). */
  expiresAt?: string;
}

/**
 * One alert message waiting to be published. Events are stored before the writes they describe
 * and removed only once Pub/Sub acknowledged them.
 */
export const OutboxEntry = z.strictObject({
  alert: Alert,
  /**
   * `pending-outcome`: stored before the writes by a run that has not yet said how they went;
   * `ready`: final, to be published as it is.
   */
  state: z.enum(['pending-outcome', 'ready']),
  /** When it was first stored (wall clock). The outbox is published oldest first. */
  storedAt: z.iso.datetime({ offset: true }),
});
export type OutboxEntry = z.infer<typeof OutboxEntry>;

/**
 * A project's outbox as read: oldest first, and how many entries will not be published and were
 * not yet announced: dropped by the bound, or set aside because they could not be read.
 */
export interface Outbox {
  entries: OutboxEntry[];
  dropped: number;
  /**
   * Entries this read found unreadable (garbage, or a newer version's) and set aside, out of the
   * outbox, into the store's quarantine (never deleted: see `SetAsideEntry`); each also counted
   * in `dropped`, so the run's `governor.degraded` (reason `outbox`) tells subscribers. Absent
   * when none.
   */
  setAside?: readonly SetAsideReport[];
  /**
   * The stored count of dropped entries could not be read (a hand edit, another program): it
   * counts as 1 in `dropped` (at least one entry was dropped; how many is unknown), so the run
   * announces it, and it says what was stored and why it is unreadable. A count nobody can read is
   * never a reason to stop: it is reported by every read until a writer replaces it with a number
   * (`removeOutbox` acknowledging the announcement, or a change that adds to the count). Absent
   * when the count read.
   */
  droppedUnreadable?: UnreadableCount;
}

/** A stored count nobody can read: where it is, what it holds (quoted, cut short), and why. */
export interface UnreadableCount {
  where: string;
  stored: string;
  faults: readonly Fault[];
}

/** A stored count of dropped outbox entries: a whole number, 0 or more. */
export const DroppedCount = z.number().int().min(0);

/** The longest quote of an unreadable stored value a report (and so a log line) carries. */
const MAX_QUOTED_VALUE = 100;

/**
 * A stored count of dropped outbox entries as read through `schema` (it makes the number of what
 * is stored): the number, or, when it does not parse, 1 (at least one entry was dropped) and what
 * was stored at `where`, quoted and cut to {@link MAX_QUOTED_VALUE} characters, with the faults.
 * Never throws: a count is not worth stopping a run for. Writers that change the count start from
 * `dropped` (so an unreadable one is replaced by a number, a lower bound); the others leave it
 * as it is stored.
 */
export function readDroppedCount(
  stored: unknown,
  where: string,
  schema: z.ZodType<number> = DroppedCount,
): { dropped: number; unreadable?: UnreadableCount } {
  const parsed = schema.safeParse(stored);
  if (parsed.success) return { dropped: parsed.data };
  return {
    dropped: 1,
    unreadable: {
      where,
      stored: cutText(quoteStored(stored), MAX_QUOTED_VALUE),
      faults: capFaults(zodFaults(parsed.error), 5),
    },
  };
}

/**
 * The count once `announced` dropped entries were told to subscribers: never below 0. An
 * unreadable count read as 1, so any announcement replaces it with a number.
 */
export function acknowledgeDropped(count: { dropped: number }, announced: number): number {
  return Math.max(0, count.dropped - announced);
}

/** What was stored, as JSON where it can be (a string quoted, `undefined` for nothing). */
function quoteStored(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** One unreadable outbox entry set aside: its id in the store, and why it was unreadable. */
export interface SetAsideReport {
  id: string;
  faults: readonly Fault[];
}

/**
 * An outbox entry nobody can read, as kept in the store's quarantine: what was stored, as it was,
 * why it could not be read, and when it was set aside. A person looks at it, or removes it.
 */
export const SetAsideEntry = z.strictObject({
  id: z.string(),
  stored: z.unknown(),
  faults: z.array(z.strictObject({ path: z.string(), message: z.string() })),
  setAsideAt: z.iso.datetime({ offset: true }),
});
export type SetAsideEntry = z.infer<typeof SetAsideEntry>;

/**
 * Sorts stored outbox entries into those that read (`entries`, in order) and those that do not
 * (`setAside`, each with its faults and when, `setAsideAt`).
 */
export function sortOutOutbox(
  stored: readonly unknown[],
  setAsideAt: string,
): { entries: OutboxEntry[]; setAside: SetAsideEntry[] } {
  const entries: OutboxEntry[] = [];
  const setAside: SetAsideEntry[] = [];
  stored.forEach((value, i) => {
    const parsed = OutboxEntry.safeParse(value);
    if (parsed.success) {
      entries.push(parsed.data);
      return;
    }
    setAside.push({
      id: outboxIdOf(value) ?? `entry-${i}`,
      stored: value,
      faults: capFaults(zodFaults(parsed.error)),
      setAsideAt,
    });
  });
  return { entries, setAside };
}

/** The alert id of a stored entry, when it has a readable one (for naming what was set aside). */
function outboxIdOf(value: unknown): string | undefined {
  const id = z.object({ alert: z.object({ id: z.string().min(1).max(500) }) }).safeParse(value);
  return id.success ? id.data.alert.id : undefined;
}

export interface StateStore {
  /**
   * This governor's id: random, made on first use and kept in the store, so every run against the
   * same store (the same state directory, the same Firestore collection) has the same id, and
   * governors on different stores have different ones.
   */
  governorId(): Promise<string>;
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
  /**
   * The kept run records, the most recent (by `startedAt`) first; at most `limit` of them when
   * given (a positive whole number), so that reading the newest one costs one record's read.
   * Records started beyond the store's wall clock plus the allowed skew (`fromTheFuture`) come
   * after all others: never the newest.
   */
  listRuns(project: string, limit?: number): Promise<RunRecord[]>;
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
  /** The lease as stored, whoever holds it, expired or not; null when there is none. */
  readLease(project: string): Promise<Lease | null>;
  /**
   * Removes the lease whoever holds it (`governor unlock`); true when it did. With `seen` (the
   * lease as shown to the person who confirmed), only if the stored lease is still that one
   * ({@link stillTheLease}): a run that took the lease since is not broken (false).
   */
  breakLease(project: string, seen?: SeenLease): Promise<boolean>;
  /**
   * Adds entries to the project's outbox. An entry whose alert id is already there replaces it
   * and keeps its place (and its `storedAt`). Beyond the store's bound the oldest entries are
   * dropped and counted (see `listOutbox`). Returns how many this call dropped.
   */
  putOutbox(project: string, entries: readonly OutboxEntry[]): Promise<number>;
  /** The outbox, oldest first, with the count of entries dropped and not yet acknowledged. */
  listOutbox(project: string): Promise<Outbox>;
  /**
   * Removes published entries by alert id (ids not there are ignored), and takes
   * `droppedAnnounced` off the dropped count (the run told subscribers about them). A count that
   * was unreadable counts as 1 (see `Outbox.droppedUnreadable`): announcing it stores a number.
   */
  removeOutbox(project: string, ids: readonly string[], droppedAnnounced?: number): Promise<void>;
  /**
   * Only on the store of a unit (src/reconcile/unit-lease.ts; docs/organization.md, "Regional
   * units"): the project's other units. For a regional unit, the whole project (`region` null);
   * for a run of the whole project, each regional unit the kept discovery counts. A plain store
   * has none: nothing to adopt or hand over.
   */
  otherUnits?(project: string): Promise<OtherUnit[]>;
  /**
   * Only on the store of a regional unit: the project's other regional units, as the fan-out
   * splits it now (core/units.ts splitUnits on the kept discovery), and when that discovery was
   * found (null when unknown), for noticing one that stopped running (core/units.ts
   * stoppedSiblings).
   */
  siblingUnits?(project: string): Promise<{ foundAt: string | null; units: OtherUnit[] }>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/**
 * Another unit of a project, as a unit's store reaches it (`region` null for the whole project's):
 * its run records, read only (what a unit adopts from them is decided in core,
 * quota-pressure.ts adoptLedger), and its condition state, read and saved versioned as
 * `loadConditions` / `saveConditions`, for the handover of conditions (core/notify.ts).
 */
export interface OtherUnit {
  region: string | null;
  listRuns(limit?: number): Promise<RunRecord[]>;
  loadConditions(): Promise<VersionedConditions>;
  saveConditions(state: ConditionState, expectedVersion: string | null): Promise<string>;
}

/** How many run records a store keeps per project by default. */
export const DEFAULT_KEEP_RUNS = 50;

/** How many undelivered alert messages a store keeps per project by default. */
export const DEFAULT_OUTBOX_LIMIT = 500;

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
  if (request.holder.length > MAX_HOLDER_LENGTH) {
    throw new RangeError(
      `holder must be at most ${MAX_HOLDER_LENGTH} characters, not ${request.holder.length}`,
    );
  }
  return request;
}

export function decideLease(
  stored: Lease | null,
  request: LeaseRequest,
): { write: Lease | null; result: LeaseResult } {
  const { kind, holder, ttlMs, now } = checkLeaseRequest(request);
  const nowMs = Date.parse(now);
  // No governor writes an expiry beyond now + its time-to-live: a later one was edited by hand or
  // written on a wrong clock. Capped (and the cap stored), it ends like any other lease.
  const capped =
    stored !== null && Date.parse(stored.expiresAt) > nowMs + ttlMs
      ? { ...stored, expiresAt: new Date(nowMs + ttlMs).toISOString() }
      : stored;
  const mine = capped !== null && capped.holder === holder;
  const live = capped !== null && Date.parse(capped.expiresAt) > nowMs;
  const grant = kind === 'acquire' ? mine || !live : mine;
  if (!grant) {
    return {
      write: capped === stored ? null : capped,
      result:
        capped === null
          ? { acquired: false }
          : {
              acquired: false,
              heldBy: capped.holder,
              acquiredAt: capped.acquiredAt,
              expiresAt: capped.expiresAt,
            },
    };
  }
  const expiresAt = new Date(nowMs + ttlMs).toISOString();
  const acquiredAt = mine && capped ? capped.acquiredAt : new Date(nowMs).toISOString();
  return {
    write: { holder, acquiredAt, expiresAt },
    result: { acquired: true, heldBy: holder, acquiredAt, expiresAt },
  };
}

/**
 * The most bytes of alert JSON (core/alert.ts alertBytes) one project's outbox holds, its entries
 * together: 16 MiB, 16 of the largest entries (MAX_ALERT_BYTES each) or thousands of the usual few
 * KB. Every run reads the outbox whole, and the Cloud Function runs in 512 MiB by default
 * (terraform/variables.tf): parsed, JSON takes several times its text. Each store drops the
 * oldest entries beyond it, as beyond `outboxLimit` entries, counted (`Outbox.dropped`) and
 * announced ({@link outboxOverflow}).
 */
export const MAX_OUTBOX_BYTES = 16 * 1024 * 1024;

/**
 * How many of an outbox's readable entries (`bytes`: each one's alert JSON, oldest first) to drop,
 * oldest first, so that at most `limit` stay and at most `maxBytes` together: the one rule of both
 * stores. Entries nobody can read are not given here: they are kept, to be set aside.
 */
export function outboxOverflow(
  bytes: readonly number[],
  limit: number,
  maxBytes: number = MAX_OUTBOX_BYTES,
): number {
  let drop = Math.max(0, bytes.length - limit);
  let total = bytes.slice(drop).reduce((sum, b) => sum + b, 0);
  while (total > maxBytes && drop < bytes.length) total -= bytes[drop++] ?? 0;
  return drop;
}

/**
 * The outbox after adding `entries` to `kept` (oldest first): a known id replaced in place, new
 * ones appended, then the oldest dropped beyond `limit` entries and `maxBytes` of alert JSON
 * ({@link outboxOverflow}). Both stores that keep the outbox as one list use it; the answer says
 * how many it dropped.
 */
export function addToOutbox(
  kept: readonly OutboxEntry[],
  entries: readonly OutboxEntry[],
  limit: number,
  maxBytes: number = MAX_OUTBOX_BYTES,
): { entries: OutboxEntry[]; dropped: number } {
  const next = [...kept];
  for (const entry of entries) {
    const at = next.findIndex((e) => e.alert.id === entry.alert.id);
    if (at === -1) next.push(entry);
    else next[at] = { ...entry, storedAt: next[at]?.storedAt ?? entry.storedAt };
  }
  const dropped = outboxOverflow(
    next.map((e) => alertBytes(e.alert)),
    limit,
    maxBytes,
  );
  return { entries: next.slice(dropped), dropped };
}

/**
 * Checks outbox entries before they are stored, so a bad one fails the caller: one that is not an
 * entry (RangeError), one over MAX_ALERT_BYTES of core/alert.ts (StateTooLargeError, naming it).
 * Nothing of the call is written then. Every store refuses the same entries, so that what a run stores in
 * one it could store in another.
 */
export function checkOutboxEntries(entries: readonly OutboxEntry[]): OutboxEntry[] {
  return entries.map((entry) => {
    const parsed = OutboxEntry.safeParse(entry);
    if (!parsed.success) {
      throw new RangeError(`Invalid outbox entry: ${faultLine(parsed.error)}`);
    }
    const { alert } = parsed.data;
    const bytes = alertBytes(alert);
    if (bytes > MAX_ALERT_BYTES) {
      const n = (x: number) => x.toLocaleString('en-US');
      throw new StateTooLargeError(
        `the ${alert.type} ${alert.status === 'event' ? 'event' : 'alert'} ${cutText(alert.id, 200)} is ${n(bytes)} bytes as JSON, over the ${n(MAX_ALERT_BYTES)} bytes one outbox entry may hold; nothing of it was stored`,
      );
    }
    return parsed.data;
  });
}

/** A store's count argument: a whole number, at least 1 (RangeError otherwise, before any I/O). */
function atLeastOne(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`${name} must be an integer >= 1, not ${n}`);
  return n;
}

export function checkOutboxLimit(limit: number): number {
  return atLeastOne('outboxLimit', limit);
}

/** A new governor id: random, short enough for an annotation value. */
export function newGovernorId(): string {
  return `gov-${randomBytes(6).toString('hex')}`;
}

export const GovernorId = z.string().regex(/^gov-[0-9a-f]{12}$/);

/**
 * What to do about an unreadable governor id (`stored`: how the store keeps it), added to the
 * error of either store. A new id makes the services the old one stamped read as another
 * governor's writes, which keep their pools from any write for a lease's time
 * (reconcile/act.ts, otherWriter): so mending it is better, removing it is safe.
 */
export function governorIdFix(stored: string): string {
  return (
    `No run starts until it is mended or removed: mend it (${stored}, gov- and 12 hex digits, ` +
    'as after the slash of gpu-governor.dev/writer on the services) or remove it: the next run ' +
    'makes a new id, and for a run deadline and a minute leaves alone the pools the old id last ' +
    "wrote, as another governor's"
  );
}

/**
 * The records to keep: `record` added (replacing its runId), most recent first, at most `keep`.
 * Records from the future (see {@link sortRuns}) rank last, so they are the first pruned.
 */
export function keepRuns(
  runs: readonly RunRecord[],
  record: RunRecord,
  keep: number,
  nowMs: number,
): RunRecord[] {
  return sortRuns([record, ...runs.filter((r) => r.runId !== record.runId)], nowMs).slice(0, keep);
}

/**
 * How many run records a `listRuns` with `limit` answers at most: `limit`, or `all` without one.
 * Anything but a positive whole number is refused (a RangeError, as the stores' other arguments
 * are: a caller's mistake, not a user's input), before any read.
 */
export function checkLimit(limit: number | undefined, all: number): number {
  return limit === undefined ? all : Math.min(atLeastOne('limit', limit), all);
}

/**
 * When a run planned, on the clock it planned at (`at`: the emulator's, against it), or when it
 * started for records without one (earlier versions, runs that planned nothing).
 */
export function plannedAt(record: RunRecord): string {
  return record.at ?? record.startedAt;
}

/**
 * How long ago a run was, each time on its own clock: its `at` against the runs' clock (`nowMs`:
 * the emulator's, against it), else its start against the wall clock (`wallMs`), as leases are.
 */
export function runAgeMs(record: RunRecord, now: { nowMs: number; wallMs: number }): number {
  return record.at !== undefined
    ? now.nowMs - Date.parse(record.at)
    : now.wallMs - Date.parse(record.startedAt);
}

/**
 * Whether a run is dated later than now, on its own clock ({@link runAgeMs}), by more than the
 * clock skew allowed: a wrong clock or a hand edit stamped it. Its age says nothing of when its
 * unit last ran; taken at its word, it would never grow old.
 */
export function runDatedAhead(record: RunRecord, now: { nowMs: number; wallMs: number }): boolean {
  return runAgeMs(record, now) < -MAX_CLOCK_SKEW_MS;
}

/**
 * Whether a record started beyond `nowMs` (the wall clock, as `startedAt`) plus the allowed clock
 * skew (core/duration.ts MAX_CLOCK_SKEW_MS): a writer with a wrong clock or a hand edit
 * made it. Such a record is never the newest: it would stay so for good, its quotas and pressure
 * read by every later run. The stores list it after every other record, and prune it first.
 */
export function fromTheFuture(record: Pick<RunRecord, 'startedAt'>, nowMs: number): boolean {
  return beyondSkew(record.startedAt, nowMs);
}

/**
 * Most recent first (by `startedAt`, then runId), the same on every machine; records from the
 * future ({@link fromTheFuture} at `nowMs`) after all others, in the same order among themselves.
 */
export function sortRuns<R extends Pick<RunRecord, 'runId' | 'startedAt'>>(
  runs: readonly R[],
  nowMs: number,
): R[] {
  return [...runs].sort(
    (a, b) =>
      Number(fromTheFuture(a, nowMs)) - Number(fromTheFuture(b, nowMs)) ||
      Date.parse(b.startedAt) - Date.parse(a.startedAt) ||
      (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0),
  );
}

/**
 * The longest `error` a run record is stored with: one line on what went wrong. A longer one (a
 * message quoting a megabyte of someone's input) is cut, with `…`, when the record is written.
 */
export const MAX_RUN_ERROR_LENGTH = 2_000;

/**
 * Checks a record before it is stored, so a bad one fails the caller, not a later reader; its
 * `error` cut to {@link MAX_RUN_ERROR_LENGTH}.
 */
export function checkRunRecord(record: RunRecord): RunRecord {
  const parsed = RunRecord.safeParse(
    typeof record.error === 'string' && record.error.length > MAX_RUN_ERROR_LENGTH
      ? { ...record, error: cutText(record.error, MAX_RUN_ERROR_LENGTH) }
      : record,
  );
  // One line of a few faults: the run logs it, and a log entry is at most 256 KiB
  // (https://cloud.google.com/logging/quotas); a ledger of 200 pools can hold 14,000 faults.
  if (!parsed.success) throw new RangeError(`Invalid run record: ${faultLine(parsed.error)}`);
  return parsed.data;
}

/**
 * Stored data read as this version reads it: fields it does not know, at any depth, are left
 * out, as a reader of a document it did not write should, and the rest is checked as strictly
 * as ever (StateCorruptError, naming where). Versions of the governor run side by side during a
 * deploy, and after a rollback the older one reads what the newer wrote: one field a newer
 * version added must not stop the older for good. A value this version cannot read (a new enum
 * value, a field of another type) is still refused. Dropping the unknown fields drops nothing
 * this version uses; a newer version reading what this one writes next finds them absent, as in
 * an earlier version's documents.
 */
export function parseStoredKnown<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  if (!parsed.error.issues.every((i) => i.code === 'unrecognized_keys')) {
    throw storedRefusal(what, parsed.error);
  }
  // Copied only along the paths to what is left out, never whole: an unknown field may hold
  // anything (nested deeper than structuredClone can copy, or large), and none of it is read.
  const own = (node: object, key: PropertyKey): unknown =>
    Object.getOwnPropertyDescriptor(node, key)?.value;
  const copy = (node: unknown): Record<PropertyKey, unknown> =>
    (Array.isArray(node) ? [...node] : { ...(node as object) }) as Record<PropertyKey, unknown>;
  const pruned = copy(value);
  for (const issue of parsed.error.issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    let at = pruned;
    for (const key of issue.path) {
      const child = copy(own(at, key));
      // Defined, not assigned: a key such as `__proto__` stays a key, never a prototype.
      Object.defineProperty(at, key, {
        value: child,
        writable: true,
        enumerable: true,
        configurable: true,
      });
      at = child;
    }
    for (const key of issue.keys) delete at[key];
  }
  return parseStored(schema, pruned, what);
}

/**
 * A stored run record (parseStoredKnown). Without it, one field a newer version added to its
 * records (to a pool of the pressure ledger, say) made every run of the older version fail:
 * with Firestore once its caps were written, before any alert. A value it cannot read (a new
 * outcome) is still refused: such a record's ledger cannot be trusted.
 */
export function parseRunRecord(value: unknown, what: string): RunRecord {
  return parseStoredKnown(RunRecord, value, what);
}

/** The first few faults of a refused document, in one line, and how many more there are. */
function faultLine(error: z.ZodError): string {
  return capFaults(zodFaults(error), 5).map(faultText).join('; ');
}

/** Checks a project id before it names a file or a document. */
export function checkProject(project: string): string {
  if (project === '' || project.length > 200) {
    throw new RangeError(`Invalid project id: ${JSON.stringify(project)}`);
  }
  return project;
}

export function checkKeep(keep: number): number {
  return atLeastOne('keepRuns', keep);
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
    const lines = faults.map((f) => `  - ${faultText(f)}`);
    super(`Unreadable ${what}:\n${lines.join('\n')}`, options);
    this.faults = faults;
  }
}

/**
 * What a store was asked to keep is larger than it can hold (a Firestore document is at most
 * 1 MiB). Nothing was written: what was stored before stays. Exit code 1.
 */
export class StateTooLargeError extends UpstreamError {}

/**
 * This machine's clock is too far from the state store's to time a lease (the Firestore store
 * compares it with the server's read time). Nothing was taken or written. Exit code 1.
 */
export class ClockSkewError extends UpstreamError {}

/**
 * The most a machine's clock may be from the store's to take or renew a lease there (the Firestore
 * store, ClockSkewError). A lease is timed on its taker's clock and judged on each reader's own:
 * a holder's clock behind and a reader's ahead make it end, for that reader, earlier by both
 * offsets. A lease outlives its run's deadline by a margin (reconcile/lease.ts LEASE_MARGIN_MS, a
 * minute), so each clock may be off by half of it at most; off by more, another governor takes
 * the lease while its holder still writes.
 */
export const MAX_LEASE_CLOCK_SKEW_MS = 30_000;

/** What clears a lease nobody can take: printed wherever such a lease stops a run. */
const UNLOCK_FIX = 'governor unlock --policy <file> --yes';

/**
 * A stored lease that does not parse (a hand edit, another program, a newer version): no run can
 * take it, and every run fails on it until it is removed, which `governor unlock` does. The
 * message says so.
 */
export class LeaseCorruptError extends StateCorruptError {
  constructor(what: string, faults: readonly Fault[], options?: { cause?: unknown }) {
    super(what, faults, options);
    this.message +=
      `\nNo run can take this lease until it is removed: if no other governor is running, ` +
      `remove it with \`${UNLOCK_FIX}\``;
  }
}

/** A lease as `governor unlock` showed it: as read, or `unreadable` (it did not parse). */
export type SeenLease = Lease | 'unreadable';

/**
 * Whether the stored lease (as stored, unparsed) is still the one `seen`: the same holder taking
 * it at the same time, or still unreadable. Between `governor unlock` showing a lease and
 * breaking it (a confirmation prompt may take minutes), the lease may expire and a run take it:
 * breaking that run's lease would let two governors write the same pools at once.
 */
export function stillTheLease(stored: unknown, seen: SeenLease): boolean {
  if (stored === null || stored === undefined) return false;
  const parsed = Lease.safeParse(stored);
  if (seen === 'unreadable') return !parsed.success;
  return (
    parsed.success &&
    parsed.data.holder === seen.holder &&
    parsed.data.acquiredAt === seen.acquiredAt
  );
}

/** A stored lease (null or absent: none), or LeaseCorruptError naming `what` and each fault. */
export function parseStoredLease(value: unknown, what: string): Lease | null {
  if (value === null || value === undefined) return null;
  const parsed = Lease.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new LeaseCorruptError(what, zodFaults(parsed.error), { cause: parsed.error });
}

/** Parses stored data, naming where it came from when it does not fit. */
export function parseStored<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw storedRefusal(what, parsed.error);
}

/** Stored data that does not fit its schema, naming where it came from and every fault. */
function storedRefusal(what: string, error: z.ZodError): StateCorruptError {
  return new StateCorruptError(what, zodFaults(error), { cause: error });
}

function checkTime(text: string, what: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new RangeError(`${what} is not a time: ${JSON.stringify(text)}`);
  return ms;
}
