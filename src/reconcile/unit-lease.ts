import { UNIT_SEPARATOR, unitKey } from '../core/units.js';
import type { DiscoveryCache, Lease, LeaseResult, OtherUnit, StateStore } from '../ports/index.js';

/**
 * The state of a regional unit, and why a regional unit and a run of its whole project never
 * write at the same time (docs/organization.md, "Regional units").
 *
 * A regional unit (src/core/units.ts) runs the same reconcile as a project, on a store whose
 * every call for project `p` goes to the unit key `p@region`: its own lease, conditions, outbox
 * and run records, and nothing else changes in the run. Two regional units of one project take
 * different leases and run at once: they list, plan and write disjoint services against disjoint
 * quotas.
 *
 * A run of the whole project writes every region, so it must not overlap a regional unit of the
 * same project. Both runs share one store, so one governor id, and the services' writer stamps
 * (reconcile/room.ts) do not tell them apart: the leases must. Each side takes its own lease
 * first and then reads the other's:
 * - the regional unit takes `p@r`, then reads `p`;
 * - a run of the whole project takes `p`, then reads `p@r` for every region the kept discovery
 *   counts for `p` (the only regions a dispatch splits into, and a regional unit refuses a region
 *   the kept discovery no longer counts: org/unit.ts). It does so whatever its own policy says:
 *   a command line may run with a policy that sets no `fanout.splitAbove` on the store the
 *   organisation's units use. Where nothing was discovered there is nothing to read. The kept
 *   discovery is read once the lease is granted, never before: a region a dispatch added in
 *   between would be missed while its unit found the project's lease free.
 * A lease another holds and that has not expired makes the reader give its own back and answer
 * "held" (the run then ends `lease-held`, like any held lease). A renewal reads the other side
 * again, the same way: a lease that expired while a person took minutes to confirm (lease.ts,
 * renewAfterPrompt) may meanwhile have let the other side take its own, and the renewal, granted
 * by the store to a holder nobody replaced, would have two runs write. Given back, the lease reads
 * as lost, and the run makes no raise (act.ts, leaseLost). Every lease call is atomic in the
 * store, so of two such runs the one that reads second sees the other's lease: at most one of
 * them writes (both may step back, and the next delivery or run tries again).
 *
 * Each side also reaches the other's run records and conditions (`otherUnits`): a unit
 * with no pressure ledger of its own yet starts from the other side's (core/quota-pressure.ts
 * adoptLedger), the regional unit from the project's, the whole project from its regional units'
 * (the same regions as the leases).
 *
 * What it does not cover: a region the discovery dropped between a regional unit's check and the
 * project run's read (a region where the search found no Cloud Run service any more), and a store
 * other than the units' (the leases are the store's).
 */

/** A lease someone else holds and that is still live at `now`. */
function heldByOther(lease: Lease | null, holder: string, now: string): lease is Lease {
  return lease !== null && lease.holder !== holder && Date.parse(lease.expiresAt) > Date.parse(now);
}

/**
 * The lease of the other side, kept under `key`. One whose expiry lies beyond `now` plus the
 * reader's time-to-live was written on a wrong clock or by hand: it is capped as the store caps
 * it for anyone who asks for it (core decideLease), by a renewal that is never granted (the
 * holder is not the reader), so that it ends like any other lease. Read only, a lease stamped to
 * expire in 2099 on a side that no longer runs (a project now governed per region, or whole
 * again) would hold the other side off until 2099. Capped, it still holds now: a holder that is
 * alive is not overrun; one that is gone lets go within a time-to-live.
 */
async function otherLease(
  store: StateStore,
  key: string,
  holder: string,
  ttlMs: number,
  now: string,
): Promise<Lease | null> {
  const lease = await store.readLease(key);
  if (lease === null || lease.holder === holder) return lease;
  if (!(Date.parse(lease.expiresAt) > Date.parse(now) + ttlMs)) return lease;
  const capped = await store.renewLease(key, holder, ttlMs, now);
  if (capped.acquired) throw new Error(`bug: a renewal of another's lease ${key} was granted`);
  const { heldBy, acquiredAt, expiresAt } = capped;
  return heldBy === undefined || acquiredAt === undefined || expiresAt === undefined
    ? null
    : { holder: heldBy, acquiredAt, expiresAt };
}

/**
 * `look` at the other side while holding the lease just taken; should it fail (the other side's
 * lease unreadable, the store unreachable), the lease is given back before the error goes on: the
 * run that fails never learns it held it, so would leave it held until it expires. A lease that
 * cannot be given back either (the store gone) expires by itself; the first error is the one told.
 */
async function givingBackOnError<T>(
  look: () => Promise<T>,
  giveBack: () => Promise<unknown>,
): Promise<T> {
  try {
    return await look();
  } catch (error) {
    await giveBack().catch(() => undefined);
    throw error;
  }
}

function refused(lease: Lease, whose: string): LeaseResult {
  return {
    acquired: false,
    heldBy: `${lease.holder} (${whose})`,
    acquiredAt: lease.acquiredAt,
    expiresAt: lease.expiresAt,
  };
}

/** A store whose project `p` is `key(p)`, every call passed through. */
function keyed(store: StateStore, key: (project: string) => string): StateStore {
  return {
    governorId: () => store.governorId(),
    loadConditions: (p) => store.loadConditions(key(p)),
    saveConditions: (p, state, version) => store.saveConditions(key(p), state, version),
    recordRun: (p, record) => store.recordRun(key(p), record),
    listRuns: (p, limit) => store.listRuns(key(p), limit),
    acquireLease: (p, holder, ttlMs, now) => store.acquireLease(key(p), holder, ttlMs, now),
    renewLease: (p, holder, ttlMs, now) => store.renewLease(key(p), holder, ttlMs, now),
    releaseLease: (p, holder) => store.releaseLease(key(p), holder),
    readLease: (p) => store.readLease(key(p)),
    breakLease: (p, seen) => store.breakLease(key(p), seen),
    putOutbox: (p, entries) => store.putOutbox(key(p), entries),
    listOutbox: (p) => store.listOutbox(key(p)),
    removeOutbox: (p, ids, dropped) => store.removeOutbox(key(p), ids, dropped),
    close: () => store.close(),
  };
}

/** The other unit of a project kept under `key` in `store` (see OtherUnit). */
function otherUnit(store: StateStore, region: string | null, key: string): OtherUnit {
  return {
    region,
    listRuns: (limit) => store.listRuns(key, limit),
    loadConditions: () => store.loadConditions(key),
    saveConditions: (state, version) => store.saveConditions(key, state, version),
  };
}

/**
 * The regions of `project` the kept discovery counts: those a dispatch splits it into, and so
 * the regional units a run of the whole project looks at. None where nothing was discovered.
 */
export function countedRegions(kept: DiscoveryCache | null, project: string): string[] {
  return Object.keys(kept?.services?.[project] ?? {});
}

/**
 * The store of the regional unit `region` of its project: see above. `siblings`: the project's
 * regional units as the fan-out splits it (this one left out or not), and when the discovery that
 * counts them was found.
 */
export function regionalUnitStore(
  store: StateStore,
  region: string,
  siblings: { regions: readonly string[]; foundAt: string | null } = { regions: [], foundAt: null },
): StateStore {
  const key = (project: string) => unitKey({ project, region });
  const inner = keyed(store, key);
  return {
    ...inner,
    // The whole project: its key is the project id itself.
    otherUnits: async (project) => [otherUnit(store, null, project)],
    siblingUnits: async (project) => ({
      foundAt: siblings.foundAt,
      units: [...new Set(siblings.regions)]
        .filter((r) => r !== region)
        .map((r) => otherUnit(store, r, unitKey({ project, region: r }))),
    }),
    async acquireLease(project, holder, ttlMs, now) {
      return alone(
        await inner.acquireLease(project, holder, ttlMs, now),
        project,
        holder,
        ttlMs,
        now,
      );
    },
    async renewLease(project, holder, ttlMs, now) {
      return alone(
        await inner.renewLease(project, holder, ttlMs, now),
        project,
        holder,
        ttlMs,
        now,
      );
    },
  };

  /** `mine` as granted, unless a run of the whole project holds its lease: then given back. */
  async function alone(
    mine: LeaseResult,
    project: string,
    holder: string,
    ttlMs: number,
    now: string,
  ): Promise<LeaseResult> {
    if (!mine.acquired) return mine;
    const whole = await givingBackOnError(
      () => otherLease(store, project, holder, ttlMs, now),
      () => inner.releaseLease(project, holder),
    );
    if (!heldByOther(whole, holder, now)) return mine;
    await inner.releaseLease(project, holder);
    return refused(whole, `a run of the whole project ${project}`);
  }
}

/**
 * The store of a run of whole projects: a project's lease is kept only when no regional unit of
 * it holds one. `regionsOf` names the regions to look at. For a lease (`fresh`) it is asked once
 * the lease is granted, and must read them then (see `checked`); for the other units' records and
 * conditions it may answer from its latest read.
 */
export function projectUnitStore(
  store: StateStore,
  regionsOf: (project: string, fresh: boolean) => Promise<readonly string[]>,
): StateStore {
  return {
    ...keyed(store, (p) => p),
    // Each counted regional unit (a regional unit's own key has no other side here).
    async otherUnits(project) {
      if (project.includes(UNIT_SEPARATOR)) return [];
      return (await regionsOf(project, false)).map((region) =>
        otherUnit(store, region, unitKey({ project, region })),
      );
    },
    async acquireLease(project, holder, ttlMs, now) {
      // A regional unit's own key goes through as it is (its store checks the other way).
      if (project.includes(UNIT_SEPARATOR)) return store.acquireLease(project, holder, ttlMs, now);
      return checked(
        await store.acquireLease(project, holder, ttlMs, now),
        project,
        holder,
        ttlMs,
        now,
      );
    },
    async renewLease(project, holder, ttlMs, now) {
      const mine = await store.renewLease(project, holder, ttlMs, now);
      if (project.includes(UNIT_SEPARATOR)) return mine;
      return checked(mine, project, holder, ttlMs, now);
    },
  };

  /**
   * `mine` once the regions are read, after it was granted, never beside the request: a dispatch
   * may add a region to the kept discovery at any time, and its regional unit takes its lease and
   * then reads the project's. Read after this lease is held, the discovery either counts that
   * region (its lease is read below) or was saved after this read, so after this lease was taken,
   * and that unit finds it held. Read before (beside the request, or by a unit's decision), it
   * could miss the region while the unit found the project's lease still free: both would write
   * that region's pools, on the same room. Not knowing the regions is not knowing whether a unit
   * writes: the lease is given back, and why is the error told (even when giving it back fails
   * too: it then expires by itself).
   */
  async function checked(
    mine: LeaseResult,
    project: string,
    holder: string,
    ttlMs: number,
    now: string,
  ): Promise<LeaseResult> {
    if (!mine.acquired) return mine;
    const counted = await givingBackOnError(
      () => regionsOf(project, true),
      () => store.releaseLease(project, holder),
    );
    return alone(mine, counted, project, holder, ttlMs, now);
  }

  /** `mine` as granted, unless a regional unit of `regions` holds its lease: then given back. */
  async function alone(
    mine: LeaseResult,
    regions: readonly string[],
    project: string,
    holder: string,
    ttlMs: number,
    now: string,
  ): Promise<LeaseResult> {
    for (const region of regions) {
      const theirs = await givingBackOnError(
        () => otherLease(store, unitKey({ project, region }), holder, ttlMs, now),
        () => store.releaseLease(project, holder),
      );
      if (!heldByOther(theirs, holder, now)) continue;
      await store.releaseLease(project, holder);
      return refused(theirs, `the regional unit ${project} (${region})`);
    }
    return mine;
  }
}
