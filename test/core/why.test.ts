import { describe, expect, it } from 'vitest';
import { PlanWhy, renderReason } from '../../src/core/why.js';
import { plan } from '../../src/core/planner.js';
import { parsePolicy, type PolicyInput } from '../../src/core/policy.js';
import type { Plan } from '../../src/core/plan.js';
import type { Snapshot, SnapshotService } from '../../src/core/snapshot.js';

/**
 * A plan row's `why` says as data what its reason says in words: each step of the planner that
 * touched the service sets its field, and the reason is rendered from it, never the other way.
 */

const AT = '2026-11-27T15:00:00.000Z';
const POOL = { project: 'p', region: 'r1', accelerator: 'nvidia-l4', zonalRedundancy: true };

function svc(
  name: string,
  max: number,
  use: { current: number; peak: number; saturated?: boolean } | null,
  more: Partial<SnapshotService> = {},
): SnapshotService {
  return {
    ...POOL,
    name,
    gpusPerInstance: 1,
    labels: {},
    maxInstances: max,
    minInstances: 0,
    reconciling: false,
    etag: `etag-${name}`,
    lastChangedAt: null,
    usage: use && { ...use, sampledAt: '2026-11-27T14:57:00Z' },
    ...more,
  };
}

const snap = (quota: number | null, services: SnapshotService[]): Snapshot => ({
  version: 1,
  takenAt: AT,
  pools: quota === null ? [] : [{ ...POOL, quota }],
  services,
  unmanagedUsage: [],
});

const policy = (extra: Partial<PolicyInput> = {}) =>
  parsePolicy({
    version: 1,
    projects: ['p'],
    defaults: { headroom: 0 },
    services: [{ match: { name: 'ext' }, managed: false }, { match: {} }],
    ...extra,
  });

const row = (p: Plan, name: string) => {
  const r = p.services.find((s) => s.name === name);
  if (!r) throw new Error(`no row ${name}`);
  return r;
};

/** Every row's reason is its why rendered, and its why matches the schema. */
function consistent(p: Plan): Plan {
  for (const r of [...p.services, ...p.changes, ...p.deferred]) {
    expect(PlanWhy.parse(r.why)).toEqual(r.why);
    expect(r.reason).toBe(renderReason(r.why));
  }
  return p;
}

describe('the structured why of a plan row', () => {
  it('says short of demand, and the demand estimate step by step', () => {
    const p = consistent(
      plan(
        snap(3, [
          // An older snapshot without refusal counts that says a ran at its cap.
          svc('a', 2, { current: 2, peak: 2, saturated: true }),
          svc('b', 1, { current: 1, peak: 1 }),
        ]),
        policy(),
        AT,
      ),
    );
    const a = row(p, 'a').why;
    expect(a.basis).toMatchObject({
      kind: 'demand',
      estimate: { instances: 3, peak: 2, atCap: { cap: 2, instances: 3 } },
    });
    expect(a.shortBy).toBe(1);
    expect(row(p, 'a').reason).toContain('short of demand by 1');
  });

  it('says burst room kept and shared, and nothing of scarcity when there is room', () => {
    const p = consistent(
      plan(
        snap(8, [
          svc('a', 3, { current: 1, peak: 1 }),
          svc('b', 1, { current: 1, peak: 1, saturated: true }),
        ]),
        policy(),
        AT,
      ),
    );
    // Demands 1 and 2 (b ran at its cap); a keeps 2 of its cap, and the 3 GPUs left are shared.
    expect(row(p, 'a').why).toMatchObject({ burstKept: { instances: 2, cap: 3 }, burstShared: 1 });
    expect(row(p, 'b').why).toMatchObject({ burstShared: 2 });
    expect(p.services.map((s) => s.why.shortBy)).toEqual([undefined, undefined]);
    expect(row(p, 'a').reason).toContain(
      '+2 burst room (leftover GPUs left where they were, toward its cap of 3)',
    );
  });

  it('says sticky until the scale-down delay runs out, with when it was raised', () => {
    const raisedAt = '2026-11-27T14:55:00.000Z';
    // a was raised 5 minutes ago and uses 1 of 4; b ran at its cap of 4 and needs 5 of the 8.
    const p = consistent(
      plan(
        snap(8, [
          svc('a', 4, { current: 1, peak: 1 }, { lastChangedAt: raisedAt }),
          svc('b', 4, { current: 4, peak: 4, saturated: true }),
        ]),
        policy({ defaults: { headroom: 0, scaleDownDelay: '15m' } }),
        AT,
      ),
    );
    // b needs one of a's GPUs: a gives that one up, and keeps the rest above its share of 1.
    expect(row(p, 'a').to).toBe(3);
    expect(row(p, 'a').why).toMatchObject({
      stickyOverridden: true,
      sticky: {
        kept: 2,
        raisedAt,
        scaleDownDelayMs: 15 * 60_000,
        until: '2026-11-27T15:10:00.000Z',
      },
    });
    expect(row(p, 'b').to).toBe(5);
  });

  it('tells when it was raised in UTC, as it tells when the delay runs out', () => {
    // The same instant as 14:55Z, stamped with an offset: the reason must not mix zones.
    const p = consistent(
      plan(
        snap(8, [
          svc('a', 4, { current: 1, peak: 1 }, { lastChangedAt: '2026-11-27T16:55:00+02:00' }),
        ]),
        policy({ defaults: { headroom: 0, scaleDownDelay: '15m' } }),
        AT,
      ),
    );
    expect(row(p, 'a').why.sticky).toMatchObject({
      raisedAt: '2026-11-27T14:55:00.000Z',
      until: '2026-11-27T15:10:00.000Z',
    });
    expect(row(p, 'a').reason).toContain(
      'raised at 2026-11-27T14:55:00.000Z, scale-down delay 15m runs until 2026-11-27T15:10:00.000Z',
    );
  });

  it('says fail static for unknown usage and for an unknown quota', () => {
    const p = consistent(
      plan(snap(null, [svc('a', 2, null, { usageNote: 'metrics are behind' })]), policy(), AT),
    );
    expect(row(p, 'a').why).toEqual({
      basis: { kind: 'usage-unknown', heldAt: 2, note: 'metrics are behind' },
      pool: { kind: 'quota-unknown', loweredToCeiling: null },
    });
  });

  it('says the quota is unknown where a cap above its ceiling is lowered in such a pool', () => {
    // Cap 5 over a max of 3: lowered even with the quota unknown, and nothing else moves.
    const p = consistent(
      plan(
        snap(null, [svc('a', 5, { current: 1, peak: 1 })]),
        policy({ defaults: { max: 3 } }),
        AT,
      ),
    );
    expect(row(p, 'a').to).toBe(3);
    expect(row(p, 'a').why.pool).toEqual({ kind: 'quota-unknown', loweredToCeiling: 3 });
    expect(row(p, 'a').reason).toMatch(
      /pool quota unknown: lowered to ceiling 3, nothing raised \(fail static\)$/,
    );
  });

  it('does not say raised to its floor when the pool leaves an unknown-usage cap below it', () => {
    // Usage unknown, cap 1, floor 3: fail static would raise it to its floor, but with the quota
    // unknown nothing is raised, and with the floors over the budget the raise stops short.
    const unknown = consistent(
      plan(snap(null, [svc('a', 1, null)]), policy({ defaults: { headroom: 0, min: 3 } }), AT),
    );
    expect(row(unknown, 'a').to).toBe(1);
    expect(row(unknown, 'a').why.basis).toEqual({ kind: 'usage-unknown', heldAt: 1, note: null });
    expect(row(unknown, 'a').reason).not.toContain('raised to its floor');
    // Floors of 3 and 3 over a budget of 4: b at its floor leaves a no room to rise.
    const infeasible = consistent(
      plan(
        snap(4, [svc('a', 1, null), svc('b', 3, { current: 3, peak: 3 })]),
        policy({ defaults: { headroom: 0, min: 3 } }),
        AT,
      ),
    );
    expect(row(infeasible, 'a').to).toBe(1);
    expect(row(infeasible, 'a').why.basis).toEqual({
      kind: 'usage-unknown',
      heldAt: 1,
      note: null,
    });
    expect(row(infeasible, 'a').reason).toContain('left at 1, below its floor 3');
    expect(row(infeasible, 'a').reason).not.toContain('raised to its floor');
  });

  it('says deferred when the change limit holds a change back, and which cap it would get', () => {
    const p = consistent(
      plan(
        snap(6, [svc('a', 4, { current: 0, peak: 0 }), svc('b', 4, { current: 0, peak: 0 })]),
        policy({ limits: { maxChangesPerRun: 1 } }),
        AT,
      ),
    );
    expect(p.deferred).toHaveLength(1);
    const held = p.deferred[0];
    expect(held?.why.deferred).toEqual({ limit: 1, stays: 4, planned: held?.to });
    expect(row(p, held?.name ?? '').to).toBe(4);
  });

  it('says unmanaged, infeasible and floor-above-ceiling', () => {
    const p = consistent(
      plan(
        snap(2, [
          svc('ext', 1, { current: 1, peak: 1 }),
          svc('a', 3, { current: 0, peak: 0 }, { minInstances: 3 }),
        ]),
        policy(),
        AT,
      ),
    );
    expect(row(p, 'ext').why).toEqual({ basis: { kind: 'unmanaged', rule: 0, capGpus: 1 } });
    // Its min instances need 3 GPUs of a quota of 2: Cloud Run accepts no max for it (a max must
    // be at least the min and within the quota), so nothing is written and it counts at its cap.
    expect(row(p, 'a').why).toEqual({
      floorAboveCeiling: { floor: 3, ceiling: 2, wins: 'neither', minInstances: 3 },
      basis: { kind: 'unwritable' },
    });
    expect(row(p, 'a').to).toBe(3);
    expect(p.changes).toEqual([]);
    expect(row(p, 'a').reason).toBe(
      'its min instances (3) are above 2, the most Cloud Run accepts within the quota: Cloud Run refuses any max instances for it; left as it is, counted at its cap (raise the quota or lower its min instances)',
    );
    expect(p.pools[0]?.status).toBe('infeasible');
  });

  it('tells a service the quota holds no instance of to raise the quota, not to lower its min', () => {
    // Two GPUs an instance in a quota of 1: no max Cloud Run accepts, whatever its min instances.
    const p = consistent(
      plan(snap(1, [svc('a', 1, { current: 0, peak: 0 }, { gpusPerInstance: 2 })]), policy(), AT),
    );
    expect(row(p, 'a').why).toEqual({
      floorAboveCeiling: { floor: 1, ceiling: 0, wins: 'neither', minInstances: 0 },
      basis: { kind: 'unwritable' },
    });
    expect(row(p, 'a').reason).toBe(
      'the quota holds no instance of it: Cloud Run refuses any max instances for it; left as it is, counted at its cap (raise the quota)',
    );
  });

  it("yields a policy's floor above the quota to the quota, and lets a floor win a policy's max", () => {
    // The policy's min (4) is above quota 3 ÷ 1 GPU: Cloud Run would refuse 4, so the floor is 3.
    const quota = consistent(
      plan(snap(3, [svc('a', 1, { current: 1, peak: 1 })]), policy({ defaults: { min: 4 } }), AT),
    );
    expect(row(quota, 'a').why).toMatchObject({
      floorAboveCeiling: { floor: 4, ceiling: 3, wins: 'quota' },
    });
    expect(row(quota, 'a')).toMatchObject({ to: 3, floor: 3, ceiling: 3 });
    expect(row(quota, 'a').reason).toContain(
      'floor 4 is above 3, the most Cloud Run accepts within the quota: the quota wins',
    );
    // Its min instances (2) above the policy's max (1), within the quota: the floor wins.
    const max = consistent(
      plan(
        snap(6, [svc('a', 1, { current: 1, peak: 1 }, { minInstances: 2 })]),
        policy({ defaults: { max: 1 } }),
        AT,
      ),
    );
    expect(row(max, 'a').why).toMatchObject({ floorAboveCeiling: { floor: 2, ceiling: 1 } });
    expect(row(max, 'a').to).toBe(2);
    // A floor exactly at quota ÷ GPUs is not above it: Cloud Run accepts it, so it is the
    // policy's max the floor wins, not the quota that wins the floor.
    const atQuota = consistent(
      plan(
        snap(2, [svc('a', 1, { current: 1, peak: 1 }, { minInstances: 2 })]),
        policy({ defaults: { max: 1 } }),
        AT,
      ),
    );
    expect(row(atQuota, 'a').why.floorAboveCeiling).toEqual({ floor: 2, ceiling: 1 });
    expect(row(atQuota, 'a')).toMatchObject({ to: 2, floor: 2, ceiling: 2 });
    expect(row(atQuota, 'a').reason).toContain('floor 2 is above ceiling 1: the floor wins');
  });

  it('does not count an unset max at quota ÷ GPUs per instance where the quota is unknown', () => {
    // Observation counts a service that sets no max at 100 while its pool's quota is unknown.
    const unset = { maxUnset: true } as const;
    const unknown = consistent(
      plan(
        snap(null, [svc('a', 100, { current: 1, peak: 1 }, unset), svc('ext', 100, null, unset)]),
        policy(),
        AT,
      ),
    );
    for (const name of ['a', 'ext']) {
      expect(row(unknown, name).why.maxUnset).toEqual({ countedAt: 100, quotaUnknown: true });
      expect(row(unknown, name).reason).toContain(
        'no max instances set: Cloud Run derives it from the regional quota, which is unknown, so it counts as 100;',
      );
      expect(row(unknown, name).reason).not.toContain('quota ÷ GPUs per instance');
    }
    // A known quota: counted at quota ÷ GPUs per instance, and said so.
    const known = consistent(
      plan(snap(4, [svc('a', 4, { current: 1, peak: 1 }, unset)]), policy(), AT),
    );
    expect(row(known, 'a').why.maxUnset).toEqual({ countedAt: 4 });
    expect(row(known, 'a').reason).toContain('so it counts as 4 (quota ÷ GPUs per instance)');
  });

  it('tells a likelihood rounded to the nearest percent (a tail one to a tenth of one)', () => {
    const reason = renderReason({
      basis: { kind: 'deploying' },
      reclaimed: { instances: 2, likelihood: 0.675, forPriority: 10 },
      tailHeld: { instances: 1, most: 3, swing: 0.5, likelihood: 0.0436 },
    });
    expect(reason).toContain(
      "gives 2 to priority 10's demand, served first (its next instance was used 68% of recent minutes)",
    );
    expect(reason).toContain('so instance 4 is 4.4% likely');
  });

  it('names the first few loan guards of many, and how many more, in a reason of bounded length', () => {
    const why = (n: number): PlanWhy => ({
      basis: { kind: 'deploying' },
      loanHeld: {
        gpus: n,
        priority: n,
        priorities: Array.from({ length: n }, (_, i) => n - i),
      },
    });
    expect(renderReason(why(3))).toContain(
      '3 GPUs kept by the loan guards of priorities 3, 2 and 1',
    );
    expect(renderReason(why(5))).toContain('the loan guards of priorities 5, 4, 3, 2 and 1 (');
    expect(renderReason(why(6))).toContain(
      'the loan guards of priorities 6, 5, 4, 3, 2 and 1 more (',
    );
    const many = renderReason(why(2000));
    expect(many).toContain(
      '2000 GPUs kept by the loan guards of priorities 2000, 1999, 1998, 1997, 1996 and 1995 more (',
    );
    expect(many.length).toBeLessThan(250);
  });

  it('renders every field, in the order the planner takes its steps', () => {
    expect(
      renderReason({
        basis: { kind: 'deploying' },
        floorAboveCeiling: { floor: 2, ceiling: 1 },
        cut: { from: 3, to: 2, priority: 0 },
        stickyOverridden: true,
        belowInUse: 3,
        deferred: { limit: 5, stays: 3, planned: 2 },
      }),
    ).toBe(
      'floor 2 is above ceiling 1: the floor wins; deploying (reconciling): left as it is, counted at its cap; cut from 3 to 2: in-use room does not fit the budget (lower priorities are cut first; this is priority 0); room needed by others: scale-down delay overridden; below the 3 in use; deferred: limits.maxChangesPerRun (5) reached: stays 3, the 2 planned waits for a later run',
    );
  });
});
