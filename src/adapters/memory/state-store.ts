import { DiscoveryCache } from '../../core/discovery.js';
import type { DiscoveryCacheStore } from '../../ports/index.js';
import { ConflictError } from '../../core/errors.js';
import {
  acknowledgeDropped,
  addToOutbox,
  checkKeep,
  checkOutboxEntries,
  checkOutboxLimit,
  DEFAULT_OUTBOX_LIMIT,
  newGovernorId,
  type OutboxEntry,
  checkProject,
  checkLimit,
  checkRunRecord,
  decideLease,
  DEFAULT_KEEP_RUNS,
  keepRuns,
  readDroppedCount,
  sortRuns,
  stillTheLease,
  versionConflict,
  checkConditionState,
  ConditionState,
  type Lease,
  type LeaseResult,
  type RunRecord,
  type StateStore,
  type VersionedConditions,
} from '../../ports/index.js';

/**
 * The state store in memory, for the simulator and tests: the same contract as the file and
 * Firestore stores (versions, leases, kept run records), nothing persisted.
 */
export function createMemoryStateStore(
  options: {
    keepRuns?: number;
    outboxLimit?: number;
    /** The wall clock that judges run records from the future. Default `Date.now`. */
    wallClock?: () => number;
  } = {},
): StateStore & DiscoveryCacheStore {
  const wall = options.wallClock ?? Date.now;
  const keep = checkKeep(options.keepRuns ?? DEFAULT_KEEP_RUNS);
  const outboxLimit = checkOutboxLimit(options.outboxLimit ?? DEFAULT_OUTBOX_LIMIT);
  const id = newGovernorId();
  // The count is only ever written by this code, so it always reads; it is read the way the other
  // stores read theirs all the same (readDroppedCount: one that does not read counts as 1).
  const outboxes = new Map<string, { entries: OutboxEntry[]; dropped: number }>();
  const countOf = (project: string, dropped: unknown) =>
    readDroppedCount(dropped, `dropped count of the memory outbox of ${project}`);
  const conditions = new Map<string, { version: number; state: ConditionState }>();
  const runs = new Map<string, RunRecord[]>();
  const leases = new Map<string, Lease>();
  let discovery: DiscoveryCache | null = null;
  let closed = false;
  const open = (): void => {
    if (closed) throw new ConflictError('the memory state store is closed');
  };

  const lease = (
    project: string,
    kind: 'acquire' | 'renew',
    holder: string,
    ttlMs: number,
    now: string,
  ): LeaseResult => {
    open();
    checkProject(project);
    const { write, result } = decideLease(leases.get(project) ?? null, {
      kind,
      holder,
      ttlMs,
      now,
    });
    if (write) leases.set(project, write);
    return result;
  };

  return {
    async loadDiscovery() {
      open();
      return discovery ? structuredClone(discovery) : null;
    },
    async saveDiscovery(cache) {
      open();
      discovery = DiscoveryCache.parse(cache);
    },
    async governorId() {
      open();
      return id;
    },
    async loadConditions(project): Promise<VersionedConditions> {
      open();
      const doc = conditions.get(checkProject(project));
      return doc
        ? { state: structuredClone(doc.state), version: String(doc.version) }
        : { state: {}, version: null };
    },
    async saveConditions(project, state, expectedVersion) {
      open();
      const doc = conditions.get(checkProject(project));
      const current = doc ? String(doc.version) : null;
      if (current !== expectedVersion) throw versionConflict(project, expectedVersion, current);
      const version = (doc?.version ?? 0) + 1;
      conditions.set(project, { version, state: checkConditionState(structuredClone(state)) });
      return String(version);
    },
    async recordRun(project, record) {
      open();
      const checked = checkRunRecord(record);
      runs.set(checkProject(project), keepRuns(runs.get(project) ?? [], checked, keep, wall()));
    },
    async listRuns(project, limit) {
      open();
      // Sorted again: a record kept as the newest may have come from the future meanwhile.
      const kept = sortRuns(runs.get(checkProject(project)) ?? [], wall());
      return kept.slice(0, checkLimit(limit, kept.length));
    },
    async acquireLease(project, holder, ttlMs, now) {
      return lease(project, 'acquire', holder, ttlMs, now);
    },
    async renewLease(project, holder, ttlMs, now) {
      return lease(project, 'renew', holder, ttlMs, now);
    },
    async releaseLease(project, holder) {
      open();
      const held = leases.get(checkProject(project));
      if (!held || held.holder !== holder) return false;
      leases.delete(project);
      return true;
    },
    async readLease(project) {
      open();
      const held = leases.get(checkProject(project));
      return held ? { ...held } : null;
    },
    async breakLease(project, seen) {
      open();
      const held = leases.get(checkProject(project));
      if (seen !== undefined && !stillTheLease(held, seen)) return false;
      return leases.delete(project);
    },
    async putOutbox(project, entries) {
      open();
      const checked = structuredClone(checkOutboxEntries(entries));
      const box = outboxes.get(checkProject(project)) ?? { entries: [], dropped: 0 };
      const next = addToOutbox(box.entries, checked, outboxLimit);
      outboxes.set(project, {
        entries: next.entries,
        dropped: countOf(project, box.dropped).dropped + next.dropped,
      });
      return next.dropped;
    },
    async listOutbox(project) {
      open();
      const box = outboxes.get(checkProject(project)) ?? { entries: [], dropped: 0 };
      const count = countOf(project, box.dropped);
      return {
        entries: structuredClone(box.entries),
        dropped: count.dropped,
        ...(count.unreadable ? { droppedUnreadable: count.unreadable } : {}),
      };
    },
    async removeOutbox(project, ids, droppedAnnounced = 0) {
      open();
      const box = outboxes.get(checkProject(project));
      if (!box) return;
      const gone = new Set(ids);
      outboxes.set(project, {
        entries: box.entries.filter((e) => !gone.has(e.alert.id)),
        dropped: acknowledgeDropped(countOf(project, box.dropped), droppedAnnounced),
      });
    },
    async close() {
      closed = true;
    },
  };
}
