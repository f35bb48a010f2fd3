import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PlanService } from '../../src/core/plan.js';
import { plan } from '../../src/core/planner.js';
import { assertProperty, AT, caseArb, fcParams } from '../support/fleet-arbitrary.js';

/**
 * Every governed row's cap is accounted for by the clauses of its `why` (rules 7 and 9): a cap
 * above the demand names what holds the excess, one below it names what makes it short, one
 * below what is in use says so and why. The conditions are the planner's own steps.
 */

const params = fcParams(3000);

/**
 * A row short of what the plan could give it (its demand within its floor and ceiling, as its
 * row's bounds are) tells what that is and by how much, whatever else holds the cap.
 */
function shortOf(r: PlanService): string | null {
  const { shortBy } = r.why;
  if (shortBy === undefined || r.demand === null || r.why.deferred) return null;
  const want = Math.min(Math.max(r.demand, r.floor ?? 1), r.ceiling ?? Infinity);
  if (r.to + shortBy !== want) return `short by ${shortBy} of ${want}, at ${r.to}`;
  const of =
    want === r.demand
      ? ['demand']
      : r.floor === r.ceiling
        ? [`its floor ${want}`, `its ceiling ${want}`]
        : [want < r.demand ? `its ceiling ${want}` : `its floor ${want}`];
  return of.some((o) => r.reason.includes(`short of ${o} by ${shortBy}`))
    ? null
    : `the reason does not say it is short of ${of.join(' or ')} by ${shortBy}`;
}

/** What is wrong with a row's explanation of its `to`; null when every number is accounted for. */
function unexplained(r: PlanService): string | null {
  const w = r.why;
  const short = shortOf(r);
  if (short) return short;
  const { from, to } = r;
  const ceiling = r.ceiling ?? Infinity;
  if (w.deferred) {
    if (to !== from || w.deferred.stays !== from) return 'deferred moves';
    // The other clauses tell the cap planned: the reason names it.
    return r.reason.includes(`the ${w.deferred.planned} planned`) ? null : 'planned cap untold';
  }
  if (w.basis.kind === 'usage-unknown') {
    if (w.pool) return null;
    if (w.cut) return to === w.cut.to ? null : 'usage unknown: to is neither held nor cut';
    const { heldAt } = w.basis;
    if (to !== heldAt) return `usage unknown: ${to} is not held at ${heldAt}`;
    // Held within its bounds: a cap below its floor or above its ceiling moves, and says to which.
    if (heldAt === from) return null;
    const bound = heldAt > from ? `its floor ${heldAt}` : `its ceiling ${heldAt}`;
    return r.reason.includes(bound) ? null : `usage unknown: ${from} → ${to} without ${bound}`;
  }
  if (w.basis.kind !== 'demand') return to === from ? null : `${w.basis.kind} moves`;
  if (w.pool?.kind === 'quota-unknown') {
    // Nothing raised; only a cap above the ceiling comes down to it.
    if (to !== Math.min(from, ceiling)) return `quota unknown: ${from} → ${to}`;
    if (w.pool.loweredToCeiling !== (to < from ? ceiling : null)) return 'loweredToCeiling';
    return null;
  }
  if (w.pool?.kind === 'infeasible') {
    const { belowFloor, aboveFloor, floor } = w.pool;
    if (floor !== r.floor) return 'infeasible: another floor';
    if (to < floor) return belowFloor?.to === to ? null : 'infeasible: below floor untold';
    if (to > floor) return aboveFloor === to ? null : 'infeasible: above floor untold';
    return belowFloor || aboveFloor ? 'infeasible: at floor told otherwise' : null;
  }
  if (w.floorAboveCeiling) return null;
  const demand = r.demand ?? 0;
  const inUse = r.inUse ?? 0;
  if (to > demand) {
    // The floor of 1 is every cap's least (Cloud Run's max instances is at least 1).
    const base = Math.max(demand, 1, w.atFloor ? w.atFloor.floor : 0);
    const extra =
      (w.burstKept?.instances ?? 0) +
      (w.burstShared ?? 0) +
      (w.sticky?.kept ?? 0) +
      (w.tailHeld?.instances ?? 0) +
      (w.loanGuard?.kept ?? 0);
    if (to > base + extra)
      return `to ${to} above demand ${demand}: only ${base - demand + extra} accounted for`;
    // The room a tail keeps overlaps the others; without it the clauses add up to the cap.
    if (!w.tailHeld && extra > 0 && to !== base + extra)
      return `to ${to}: the demand or floor ${base} and ${extra} more are told`;
  }
  if (to < demand) {
    // What it is short of is its demand, or the ceiling that holds it below its demand.
    const bound = w.atCeiling ? w.atCeiling.ceiling : demand;
    if (to + (w.shortBy ?? 0) !== bound)
      return `to ${to} below demand ${demand}: ${w.shortBy ?? 0} short of ${bound} told`;
    if (w.shortBy !== undefined && !w.scarce && !w.reverseHeld) return 'short: no cause';
    const of = w.atCeiling ? `its ceiling ${w.atCeiling.ceiling}` : 'demand';
    if (w.shortBy !== undefined && !r.reason.includes(`short of ${of} by ${w.shortBy}`))
      return `the reason does not say it is short of ${of} by ${w.shortBy}`;
  }
  if (w.atFloor && !r.reason.includes(`floor ${w.atFloor.floor}`))
    return 'the reason does not name the floor';
  if (to < from && to < inUse) {
    if (w.belowInUse !== inUse) return 'below in use: no belowInUse';
    if (!w.cut && !w.preempted && !(to === ceiling && from > ceiling))
      return `below the ${inUse} in use: no cut, preemption or ceiling`;
  }
  return null;
}

describe('plan reasons', { timeout: 180_000 }, () => {
  it("every governed row's cap is accounted for by its why", () => {
    assertProperty(
      fc.property(caseArb({ mixedGpus: true }), (c) => {
        const p = plan(c.snapshot, c.policy, AT);
        for (const r of p.services) {
          if (!r.managed) continue;
          const wrong = unexplained(r);
          expect(wrong, `${r.name}: ${wrong ?? ''}\n${JSON.stringify(r)}`).toBeNull();
        }
      }),
      params,
    );
  });
});
