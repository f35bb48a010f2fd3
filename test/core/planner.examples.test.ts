import { describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/core/apply.js';
import { likelihood, readEvidence, tailLikelihood } from '../../src/core/evidence.js';
import { plan } from '../../src/core/planner.js';
import type { PolicyInput } from '../../src/core/policy.js';
import type { Plan } from '../../src/core/plan.js';
import type { Snapshot, SnapshotService } from '../../src/core/snapshot.js';
import { governAll, minutes, POOL, snapshotService } from '../support/fixtures.js';

/**
 * The planner by example: one small fleet per rule of docs/rules.md, to read as documentation.
 * Pool: project p, us-central1, nvidia-l4 with zonal redundancy, unless a test says otherwise.
 */

const AT = '2026-11-27T15:00:00.000Z'; // a Friday, 10:00 in New York
const svc = snapshotService;

function snap(quota: number | null, services: SnapshotService[], unmanagedGpus = 0): Snapshot {
  return {
    version: 1,
    takenAt: AT,
    pools: quota === null ? [] : [{ ...POOL, quota }],
    services,
    unmanagedUsage: unmanagedGpus
      ? [{ ...POOL, gpus: unmanagedGpus, source: 'worker-pool/encoder' }]
      : [],
  };
}

/** Every service governed, without headroom unless a test sets it. */
const policy = (extra: Partial<PolicyInput> = {}) =>
  governAll({ defaults: { headroom: 0 }, ...extra });

const to = (p: Plan, name: string) => p.services.find((s) => s.name === name)?.to;
const reason = (p: Plan, name: string) => p.services.find((s) => s.name === name)?.reason ?? '';
const types = (p: Plan) => p.alerts.map((a) => a.type);

/** Per-minute evidence as the planner reads it, with the default lookback and reclaim window. */
function evidenceOf(s: SnapshotService) {
  const ev = s.usage && readEvidence(s.usage, Date.parse(AT), 30 * 60_000, 10 * 60_000);
  if (!ev) throw new Error(`${s.name} has no per-minute evidence`);
  return ev;
}

describe('the budget', () => {
  it('is quota − reserve − unmanaged caps − other unmanaged usage', () => {
    const p = plan(
      snap(
        8,
        [svc('llm', 1, { current: 1, peak: 1 }), svc('render', 2, { current: 2, peak: 2 })],
        1,
      ),
      policy({
        reserve: 1,
        services: [{ match: { name: 'render' }, managed: false }, { match: {} }],
      }),
      AT,
    );
    expect(p.pools[0]).toMatchObject({ quota: 8, reserve: 1, unmanagedGpus: 3, budget: 4 });
    expect(p.services.find((s) => s.name === 'render')).toMatchObject({
      managed: false,
      from: 2,
      to: 2,
    });
  });

  it('takes the quota from the policy over the one observed', () => {
    const p = plan(
      snap(8, [svc('llm', 1, { current: 1, peak: 1 })]),
      policy({ pools: [{ region: 'us-central1', quota: 5 }] }),
      AT,
    );
    expect(p.pools[0]).toMatchObject({ quota: 5, quotaSource: 'policy', budget: 5 });
  });
});

describe('rule 1: within quota, decreases before increases', () => {
  it('lowers the idle service before raising the busy one, so the sum never exceeds the budget', () => {
    const p = plan(
      snap(6, [
        // At its cap of 2, 50 of 250 requests refused in the latest minute: it wanted 3.
        svc('busy', 2, { current: 2, peak: 2, perMinute: minutes([2, 2, 2], [0, 0, 50]) }),
        svc('idle', 4, { current: 0, peak: 0 }),
      ]),
      policy(),
      AT,
    );
    // busy was refused: demand 3. The 2 GPUs left over keep idle's cap as far as they go.
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['idle', 4, 3],
      ['busy', 2, 3],
    ]);
    expect(reason(p, 'busy')).toContain(
      'refused 1 min of the last 10; wanted 3 (in use 2 × 250 requests ÷ 200 served)',
    );
  });

  it('is observed after it is carried out (applyPlan) as the writes stamp it: raised, lowered', () => {
    // What the idempotence checks plan again from: the new caps, the raised service's last
    // raise and the lowered one's last decrease at the plan's time, every other stamp as it was.
    const before = '2026-11-27T14:00:00.000Z';
    const snapshot = snap(7, [
      svc(
        'busy',
        2,
        { current: 2, peak: 2, perMinute: minutes([2, 2, 2], [0, 0, 50]) },
        { lastChangedAt: before, lastLoweredAt: before },
      ),
      svc('idle', 4, { current: 0, peak: 0 }, { lastChangedAt: before, lastLoweredAt: before }),
      svc('same', 1, { current: 1, peak: 1 }, { lastChangedAt: before, lastLoweredAt: before }),
    ]);
    const p = plan(snapshot, policy(), AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['idle', 4, 3],
      ['busy', 2, 3],
    ]);
    const after = applyPlan(snapshot, p).services;
    const stamps = (name: string) => {
      const s = after.find((x) => x.name === name);
      return [s?.maxInstances, s?.lastChangedAt, s?.lastLoweredAt];
    };
    expect(stamps('busy')).toEqual([3, AT, before]);
    expect(stamps('idle')).toEqual([3, before, AT]);
    expect(stamps('same')).toEqual([1, before, before]);
  });

  it('brings a pool that someone raised by hand back within budget, lowest priority first', () => {
    const p = plan(
      snap(6, [svc('gold', 4, { current: 4, peak: 4 }), svc('bronze', 4, { current: 4, peak: 4 })]),
      policy({ services: [{ match: { name: 'gold' }, priority: 10 }, { match: {} }] }),
      AT,
    );
    expect(p.pools[0]?.status).toBe('over-budget');
    expect(to(p, 'gold')).toBe(4);
    expect(to(p, 'bronze')).toBe(2);
    expect(reason(p, 'bronze')).toContain('cut from 4 to 2');
    expect(reason(p, 'bronze')).toContain('below the 4 in use');
    expect(types(p)).toContain('pool.over-budget');
  });

  it('takes an over-budget pool down write by write: over until its last decrease, never higher', () => {
    const p = plan(
      snap(
        6,
        ['a', 'b', 'c'].map((n) => svc(n, 4, { current: 2, peak: 2 })),
      ),
      policy(),
      AT,
    );
    expect(p.pools[0]).toMatchObject({ status: 'over-budget', capsBefore: 12, budget: 6 });
    let caps = 12;
    const after = p.changes.map((c) => (caps += (c.to - c.from) * c.gpusPerInstance));
    expect(after).toEqual([10, 8, 6]);
  });
});

describe('rule 2: floors and ceilings', () => {
  it('raises to the floor (min instances, policy min) and lowers to the ceiling (policy max, quota)', () => {
    const p = plan(
      snap(7, [
        svc('small', 1, { current: 0, peak: 0 }, { minInstances: 2 }),
        svc('huge', 9, { current: 9, peak: 9 }),
      ]),
      policy({ services: [{ match: { name: 'huge' }, max: 5 }, { match: {} }] }),
      AT,
    );
    expect(to(p, 'small')).toBe(2);
    expect(to(p, 'huge')).toBe(5); // a cap comes down to its ceiling even below what is in use
  });

  it('makes no cut that funds nothing in a pool whose floors do not fit', () => {
    // Budget 8 − 4 unmanaged = 4; floors 1 + 4 (one 4-GPU instance) = 5. Cutting busy to its
    // floor would leave 3 GPUs, not enough for one instance of big: busy keeps its 3 in use.
    const p = plan(
      snap(
        8,
        [
          svc('busy', 3, { current: 3, peak: 3 }),
          svc('big', 0, { current: 0, peak: 0 }, { gpusPerInstance: 4 }),
        ],
        4,
      ),
      policy({ services: [{ match: {}, min: 1 }] }),
      AT,
    );
    expect(p.pools[0]).toMatchObject({ status: 'infeasible', budget: 4, floors: 5 });
    expect(to(p, 'busy')).toBe(3);
    expect(to(p, 'big')).toBe(0);
    expect(p.changes).toEqual([]);
    expect(reason(p, 'busy')).toContain('kept at 3, above its floor 1');
    expect(reason(p, 'big')).toContain('the quota comes before floors');
  });

  it('lowers everyone to the floor and raises pool.infeasible when the floors do not fit', () => {
    const p = plan(
      snap(3, [svc('a', 3, { current: 3, peak: 3 }), svc('b', 1, { current: 1, peak: 1 })]),
      policy({ defaults: { min: 2 } }),
      AT,
    );
    expect(p.pools[0]?.status).toBe('infeasible');
    // a comes down to its floor; b, below its floor, is not raised past the quota (2 + 1 = 3).
    expect([to(p, 'a'), to(p, 'b')]).toEqual([2, 1]);
    expect(reason(p, 'b')).toContain('the quota comes before floors');
    expect(p.alerts.find((a) => a.type === 'pool.infeasible')?.severity).toBe('CRITICAL');
  });

  it('pool.infeasible names the services whose floors fill the pool, and what to do', () => {
    // big's own min instances (3) hold most of the floors; c is counted at its cap (deploying).
    const p = plan(
      snap(4, [
        svc('a', 1, { current: 1, peak: 1 }),
        svc('big', 3, { current: 3, peak: 3 }, { minInstances: 3 }),
        svc('c', 2, { current: 2, peak: 2 }, { reconciling: true }),
      ]),
      policy(),
      AT,
    );
    const alert = p.alerts.find((a) => a.type === 'pool.infeasible');
    expect(alert?.details).toMatchObject({
      floors: 6,
      budget: 4,
      floorsBy: [
        { service: 'big', gpus: 3, minInstances: 3, atCap: false },
        { service: 'c', gpus: 2, minInstances: 0, atCap: true },
        { service: 'a', gpus: 1, minInstances: 0, atCap: false },
      ],
    });
    expect(alert?.summary).toBe(
      "Floors in us-central1 nvidia-l4 need 6 GPUs but the budget is 4 (big 3, c 2 (at its cap), a 1): caps are held at their floors at most; raise the quota, or lower min instances (the services' own, or the policy's min)",
    );
  });

  it('pool.infeasible says where the budget went when GPUs outside the caps took it', () => {
    // A worker pool holds 5 of the quota's 4 GPUs: the budget is −1, below even a floor of 0.
    // Lowering min instances cannot help; the summary says what holds the GPUs.
    const p = plan(snap(4, [], 5), policy(), AT);
    expect(p.pools[0]).toMatchObject({ status: 'infeasible', budget: -1, floors: 0 });
    expect(p.alerts.find((a) => a.type === 'pool.infeasible')?.summary).toBe(
      'Floors in us-central1 nvidia-l4 need 0 GPUs but the budget is -1 (quota 4 − 5 GPUs outside the governed caps: worker pool encoder 5): caps are held at their floors at most; raise the quota, or lower what uses GPUs outside the governed caps',
    );
    // With a floor of its own as well, both causes are named.
    const q = plan(
      snap(8, [svc('a', 2, { current: 2, peak: 2 })], 7),
      policy({ defaults: { min: 2 } }),
      AT,
    );
    expect(q.alerts.find((a) => a.type === 'pool.infeasible')?.summary).toBe(
      "Floors in us-central1 nvidia-l4 need 2 GPUs but the budget is 1 (quota 8 − 7 GPUs outside the governed caps: worker pool encoder 7) (a 2): caps are held at their floors at most; raise the quota, lower what uses GPUs outside the governed caps, or lower min instances (the services' own, or the policy's min)",
    );
  });

  it('floors yield to the quota: a raise to a floor stops at the budget, highest priority first', () => {
    // Infeasible only because a service is deploying: held at its cap of 3, it leaves 5 GPUs of
    // the 8 for svc-z0 (2 GPUs an instance, floor 3) and svc-z2 (floor 1). The chaos suite found
    // svc-z0 raised to its floor of 3, leaving the pool at 10/8.
    const p = plan(
      snap(8, [
        svc('svc-z0', 1, { current: 1, peak: 1 }, { gpusPerInstance: 2 }),
        svc('svc-z1', 3, { current: 0, peak: 0 }, { reconciling: true }),
        svc('svc-z2', 1, { current: 1, peak: 1 }),
      ]),
      policy({
        services: [{ match: { name: 'svc-z0' }, min: 3, priority: 10 }, { match: {} }],
      }),
      AT,
    );
    const pool = p.pools[0];
    expect(pool?.status).toBe('infeasible');
    expect(pool?.capsAfter).toBeLessThanOrEqual(8);
    expect([to(p, 'svc-z0'), to(p, 'svc-z1'), to(p, 'svc-z2')]).toEqual([2, 3, 1]);
    expect(reason(p, 'svc-z0')).toContain('raised to 2 of its floor 3');
    // Every raise, in the order written, leaves the pool within its quota.
    let caps = 2 + 3 + 1;
    for (const c of p.changes) {
      caps += (c.to - c.from) * c.gpusPerInstance;
      expect(caps).toBeLessThanOrEqual(8);
    }
  });

  it('floors yield to the quota when the floors alone do not fit either', () => {
    const p = plan(
      snap(6, [
        svc('svc-z0', 1, { current: 1, peak: 1 }, { gpusPerInstance: 2 }),
        svc('svc-z1', 1, { current: 1, peak: 1 }),
        svc('svc-z2', 1, { current: 1, peak: 1 }),
      ]),
      policy({
        services: [{ match: { name: 'svc-z0' }, min: 3, priority: 10 }, { match: {} }],
      }),
      AT,
    );
    expect(p.pools[0]?.status).toBe('infeasible');
    expect(p.pools[0]?.capsAfter).toBe(6);
    expect(to(p, 'svc-z0')).toBe(2);
  });

  it('a floor yielded to the quota makes the pool infeasible only when the floors then exceed the budget', () => {
    // The policy's min (6) is above quota 4 ÷ 1 GPU: the floor is 4, which fits the budget of 4.
    const fits = plan(
      snap(4, [svc('a', 2, { current: 1, peak: 1 })]),
      policy({ defaults: { min: 6 } }),
      AT,
    );
    expect(fits.services[0]?.why.floorAboveCeiling).toEqual({
      floor: 6,
      ceiling: 4,
      wins: 'quota',
    });
    expect(fits.services[0]).toMatchObject({ floor: 4, to: 4 });
    expect(fits.pools[0]?.status).not.toBe('infeasible');
    expect(types(fits)).not.toContain('pool.infeasible');
    // Two such services: floors 4 + 4 of a budget of 4.
    const both = plan(
      snap(4, [svc('a', 2, { current: 1, peak: 1 }), svc('b', 2, { current: 1, peak: 1 })]),
      policy({ defaults: { min: 6 } }),
      AT,
    );
    expect(both.pools[0]).toMatchObject({ status: 'infeasible', floors: 8, budget: 4 });
    expect(types(both)).toContain('pool.infeasible');
  });

  it('leaves a service of which the quota holds not one instance as it is, min instances 0 or not', () => {
    // 2 GPUs an instance in a pool of 1: Cloud Run accepts no max instances for it.
    const p = plan(
      snap(1, [svc('wide', 1, { current: 0, peak: 0 }, { gpusPerInstance: 2 })]),
      policy(),
      AT,
    );
    expect(p.services[0]?.why).toMatchObject({
      floorAboveCeiling: { floor: 1, ceiling: 0, wins: 'neither', minInstances: 0 },
      basis: { kind: 'unwritable' },
    });
    expect(reason(p, 'wide')).toContain(
      'the quota holds no instance of it: Cloud Run refuses any max instances for it',
    );
    expect(p.changes).toEqual([]);
    // Counted at its cap of 2 GPUs, over the budget of 1.
    expect(p.pools[0]).toMatchObject({ status: 'infeasible', floors: 2, budget: 1 });
  });

  it("plans no cap above the serving revision's own max, and gives the room to others", () => {
    // chat's serving revision sets max 2 (a deploy's --max-instances): the cap in force is never
    // above it, whatever service-level max is written. Both run at their caps, refused.
    const busy = { current: 2, peak: 2, saturated: true };
    const snapshot = snap(12, [
      svc('chat', 2, busy, { revisionMaxInstances: 2 }),
      svc('code', 2, busy),
    ]);
    const p = plan(snapshot, policy({ defaults: { headroom: 0, max: 12 } }), AT);
    expect(p.services.find((s) => s.name === 'chat')).toMatchObject({ to: 2, ceiling: 2 });
    expect(p.services.find((s) => s.name === 'chat')?.why.atCeiling).toMatchObject({
      ceiling: 2,
      set: 'revision',
    });
    expect(reason(p, 'chat')).toContain(
      "its serving revision's own max (2), which no service-level max can raise (a deploy sets it)",
    );
    // The room chat cannot use goes to code: all of the quota but chat's 2.
    expect(to(p, 'code')).toBe(10);
    expect(p.changes.map((c) => c.name)).toEqual(['code']);
    // Applied and planned again on the same usage: nothing more to write (rule 7).
    expect(
      plan(applyPlan(snapshot, p), policy({ defaults: { headroom: 0, max: 12 } }), AT).changes,
    ).toEqual([]);
  });

  it("lowers below the revision's own max as ever, and a floor above it yields to it", () => {
    const idle = { current: 0, peak: 0 };
    // code is refused at its cap: the room chat holds above its use moves to it.
    const low = plan(
      snap(12, [
        svc('chat', 3, idle, { revisionMaxInstances: 3 }),
        svc('code', 9, { current: 9, peak: 9, saturated: true }),
      ]),
      policy(),
      AT,
    );
    expect(to(low, 'chat')).toBeLessThan(3);
    expect((to(low, 'chat') ?? 0) + (to(low, 'code') ?? 0)).toBe(12);
    const floored = plan(
      snap(12, [svc('chat', 2, idle, { revisionMaxInstances: 2 })]),
      policy({ defaults: { headroom: 0, min: 4 } }),
      AT,
    );
    expect(floored.services[0]).toMatchObject({ to: 2, floor: 2, ceiling: 2 });
    expect(floored.services[0]?.why.floorAboveCeiling).toEqual({
      floor: 4,
      ceiling: 2,
      wins: 'revision',
    });
    expect(reason(floored, 'chat')).toContain("the revision's max wins");
    expect(floored.changes).toEqual([]);
    // Its own min instances above the revision's max: Cloud Run takes no service-level max
    // below them, and any it takes leaves the cap in force at the revision's max. No write moves
    // that cap, so none is planned (a raise would be written again every run, its room unused).
    const pinned = plan(
      snap(12, [svc('chat', 2, idle, { revisionMaxInstances: 2, minInstances: 3 })]),
      policy(),
      AT,
    );
    expect(pinned.services[0]).toMatchObject({ from: 2, to: 2 });
    expect(pinned.services[0]?.why.basis).toEqual({ kind: 'unwritable' });
    expect(pinned.services[0]?.why.floorAboveCeiling).toEqual({
      floor: 3,
      ceiling: 2,
      wins: 'revision',
      minInstances: 3,
    });
    expect(reason(pinned, 'chat')).toContain(
      "its min instances (3) are above 2, its serving revision's own max",
    );
    expect(reason(pinned, 'chat')).not.toContain('raise the quota');
    expect(pinned.changes).toEqual([]);
  });
});

describe('rule 3: hands off', () => {
  it('never writes an unmanaged service or one that is deploying, and counts both at their caps', () => {
    const p = plan(
      snap(6, [
        svc('mine', 1, { current: 1, peak: 1 }),
        svc('theirs', 2, { current: 0, peak: 0 }),
        svc('deploying', 2, { current: 0, peak: 0 }, { reconciling: true }),
      ]),
      policy({ services: [{ match: { name: 'theirs' }, managed: false }, { match: {} }] }),
      AT,
    );
    expect(p.changes.map((c) => c.name)).toEqual(['mine']);
    expect(to(p, 'mine')).toBe(2); // 6 − 2 (theirs) − 2 (deploying)
    expect(reason(p, 'deploying')).toContain('reconciling');
    // The pool's floors and demand count it at its cap too, not at its row's floor of 1.
    expect(p.services.find((s) => s.name === 'deploying')).toMatchObject({
      floor: 1,
      demand: null,
    });
    expect(p.pools[0]).toMatchObject({ floors: 1 + 2, demand: 1 + 2 });
  });
});

describe('rule 4: fail static', () => {
  it('holds the cap of a service whose usage is unknown, and says so', () => {
    const p = plan(
      snap(8, [
        svc('blind', 5, null, { usageNote: 'no point since 14:31' }),
        svc('other', 1, { current: 1, peak: 1 }),
      ]),
      policy(),
      AT,
    );
    expect(to(p, 'blind')).toBe(5);
    expect(reason(p, 'blind')).toContain('usage unknown (no point since 14:31)');
    const degraded = p.alerts.find((a) => a.type === 'governor.degraded');
    expect(degraded?.details).toMatchObject({
      reason: 'usage-unknown',
      services: [{ name: 'blind', note: 'no point since 14:31', from: 5, to: 5 }],
    });
    expect(degraded?.summary).toMatch(/: its cap is held$/);
  });

  it('says so when the budget lowers a cap whose usage is unknown all the same', () => {
    // The pool is over budget (caps 9 of 6): rule 1 comes before fail static.
    const p = plan(
      snap(6, [
        svc('blind', 5, null, { usageNote: 'no point since 14:31' }),
        svc('dim', 1, null),
        svc('other', 3, { current: 3, peak: 3 }),
      ]),
      policy(),
      AT,
    );
    expect(to(p, 'blind')).toBe(3);
    expect(to(p, 'dim')).toBe(1);
    // Its usage is unknown: the cap it held, not what it has in use, is what did not fit.
    expect(reason(p, 'blind')).toContain(
      'cut from 5 to 3: the cap held does not fit the budget (lower priorities are cut first; this is priority 0)',
    );
    expect(reason(p, 'other')).toContain('cut from 3 to 2: in-use room does not fit the budget');
    const degraded = p.alerts.find(
      (a) => a.type === 'governor.degraded' && a.details.reason === 'usage-unknown',
    );
    expect(degraded?.summary).toBe(
      'Usage unknown for 2 services in us-central1 nvidia-l4: their caps are held, except 1 lowered because the budget or a ceiling requires it',
    );
  });

  it('gives a service whose usage is unknown back the room a coarse cut freed beyond the excess', () => {
    // Caps 11 of 8. Lowest priority first: blind down to its floor of 1 (2 GPUs), still 1 over;
    // then big, 4 GPUs an instance, gives one instance: 3 GPUs more than needed, which go back
    // to blind's cap before anything else. Without that the pool would end at 5 of 8.
    const p = plan(
      snap(8, [
        svc('big', 2, { current: 2, peak: 2 }, { gpusPerInstance: 4 }),
        svc('blind', 3, null, { usageNote: 'no point since 14:31' }),
      ]),
      policy({
        services: [
          { match: { name: 'big' }, priority: 10 },
          { match: { name: 'blind' }, min: 1 },
        ],
      }),
      AT,
    );
    expect(to(p, 'big')).toBe(1);
    expect(to(p, 'blind')).toBe(3);
    // Its cap is held in the end: no cut is told.
    expect(reason(p, 'blind')).not.toContain('cut from');
    expect(p.pools[0]?.status).toBe('over-budget');
  });

  it('gives room a coarse cut freed beyond the excess to a held service before anyone rises', () => {
    // Caps 10 of 9. The repair takes one 2-GPU instance of prio (usage unknown, priority 10): one
    // GPU more than needed. It goes back to blind's cap, not to refused's headroom.
    const p = plan(
      snap(9, [
        svc('refused', 0, { current: 0, peak: 0, perMinute: minutes([0], [101]) }),
        svc('blind', 2, null),
        svc('prio', 4, null, { gpusPerInstance: 2 }),
      ]),
      policy({
        defaults: { headroom: 0.2 },
        services: [{ match: { name: 'prio' }, priority: 10 }, { match: {} }],
      }),
      AT,
    );
    expect([to(p, 'refused'), to(p, 'blind'), to(p, 'prio')]).toEqual([1, 2, 3]);
    expect(reason(p, 'blind')).not.toContain('cut from');
  });

  it('tells a cut net of what the demand step gave back', () => {
    // Caps 17 of 15: busy is cut to its floor first, then blind (3 GPUs an instance) frees 3,
    // two more than needed, and busy's demand takes them back and one more.
    const p = plan(
      snap(15, [
        svc('busy', 2, { current: 2, peak: 2 }),
        svc('blind', 5, null, { gpusPerInstance: 3 }),
      ]),
      policy({
        defaults: { headroom: 0.2, min: 1 },
        services: [{ match: { name: 'blind' }, priority: 5 }, { match: {} }],
      }),
      AT,
    );
    expect([to(p, 'busy'), to(p, 'blind')]).toEqual([3, 4]);
    expect(reason(p, 'busy')).not.toContain('cut from');
    expect(reason(p, 'blind')).toContain('cut from 5 to 4');
  });

  it('raises nothing in a pool whose quota is unknown', () => {
    const p = plan(
      snap(null, [svc('a', 1, { current: 1, peak: 1 }), svc('b', 6, { current: 0, peak: 0 })]),
      policy({ defaults: { headroom: 0, max: 4 } }),
      AT,
    );
    expect(p.pools[0]?.status).toBe('unknown-quota');
    expect(to(p, 'a')).toBe(1); // saturated, but not raised
    expect(to(p, 'b')).toBe(4); // only lowered to its ceiling
    expect(p.alerts.find((a) => a.type === 'governor.degraded')?.details).toMatchObject({
      reason: 'quota-unknown',
    });
  });

  it('leaves a cap below its floor there while the quota is unknown', () => {
    const p = plan(
      snap(null, [svc('a', 1, { current: 1, peak: 1 })]),
      policy({ defaults: { headroom: 0, min: 3 } }),
      AT,
    );
    expect(p.services[0]).toMatchObject({ floor: 3, from: 1, to: 1 });
    expect(p.changes).toEqual([]);
  });

  it('says the budget, not the quota, is unknown when only the unmanaged use could not be read', () => {
    const s = snap(8, [svc('a', 1, { current: 1, peak: 1 })]);
    s.pools = [
      { ...POOL, quota: 8, budgetUnknown: 'us-central1: its worker pools could not be listed' },
    ];
    const p = plan(s, policy(), AT);
    expect(p.pools[0]?.status).toBe('unknown-quota');
    const degraded = p.alerts.find((a) => a.type === 'governor.degraded');
    expect(degraded?.summary).toMatch(
      /^Budget of us-central1 nvidia-l4 unknown: the GPUs its worker pools/,
    );
    expect(degraded?.details).toMatchObject({
      reason: 'budget-unknown',
      quota: 8,
      budget: null,
      note: expect.stringContaining('its worker pools could not be listed'),
    });
  });
});

describe('rule 5: enough for what is used', () => {
  it('in a calm pool, serves the peaks of one priority before its headroom', () => {
    const p = plan(
      snap(10, [svc('vip', 4, { current: 4, peak: 4 }), svc('plain', 6, { current: 3, peak: 6 })]),
      policy({ defaults: { headroom: 0.5 } }),
      AT,
    );
    expect(to(p, 'plain')).toBe(6); // its peak, although vip wanted headroom: nothing moves
    expect(to(p, 'vip')).toBe(4);
    expect(p.changes).toEqual([]);
  });

  it("but a higher priority's demand, headroom included, before a lower one's peak (rule 6)", () => {
    const p = plan(
      snap(10, [svc('vip', 4, { current: 4, peak: 4 }), svc('plain', 6, { current: 3, peak: 6 })]),
      policy({
        defaults: { headroom: 0.5 },
        services: [{ match: { name: 'vip' }, priority: 10 }, { match: {} }],
      }),
      AT,
    );
    expect(to(p, 'vip')).toBe(6); // peak 4 + 50%
    expect(to(p, 'plain')).toBe(4); // the rest, above the 3 it has in use
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['plain', 6, 4],
      ['vip', 4, 6],
    ]);
    expect(reason(p, 'plain')).toContain("gives 2 to priority 10's demand, served first");
  });

  it('does not reclaim below what a service has in use to fund another', () => {
    const p = plan(
      snap(6, [
        svc('vip', 2, { current: 2, peak: 2, perMinute: minutes([2, 2], [40, 40]) }),
        svc('steady', 4, { current: 4, peak: 4 }),
      ]),
      policy({ services: [{ match: { name: 'vip' }, priority: 10 }, { match: {} }] }),
      AT,
    );
    expect(to(p, 'steady')).toBe(4);
    expect(to(p, 'vip')).toBe(2);
    expect(types(p)).toContain('service.starved');
  });

  it('protects what is in use only up to the current cap, not instances above a cap lowered by hand', () => {
    // lowered was cut to 2 by hand while 5 of its instances still ran: step 1 protects 2, so
    // the 4 that steady uses are not cut to fund the 3 above lowered's cap.
    const p = plan(
      snap(6, [
        svc('lowered', 2, { current: 5, peak: 5 }),
        svc('steady', 4, { current: 4, peak: 4 }),
      ]),
      policy(),
      AT,
    );
    expect(to(p, 'steady')).toBe(4);
    expect(to(p, 'lowered')).toBe(2);
    expect(p.changes).toEqual([]);
  });
});

describe('rule 6: priority, then weight', () => {
  it('serves the higher priority first; the lower keeps what it uses', () => {
    const p = plan(
      snap(4, [
        svc('hi', 2, { current: 2, peak: 2, perMinute: minutes([2, 2], [0, 60]) }),
        svc('lo', 6, { current: 1, peak: 1 }),
      ]),
      policy({
        defaults: { headroom: 0.5 },
        services: [{ match: { name: 'hi' }, priority: 10 }, { match: {} }],
      }),
      AT,
    );
    // refused: wanted ceil(2 × 260 ÷ 200) = 3, + 50% headroom = 5
    expect(p.services.find((s) => s.name === 'hi')?.demand).toBe(5);
    expect(to(p, 'hi')).toBe(3); // all that is left once lo keeps the 1 it uses
    expect(to(p, 'lo')).toBe(1); // lo wanted 2, gets nothing above what it has in use
  });

  it('splits contested GPUs 3:1 by weight', () => {
    const p = plan(
      snap(8, [
        svc('heavy', 1, { current: 1, peak: 1 }, { lastChangedAt: null }),
        svc('light', 1, { current: 1, peak: 1 }),
      ]),
      policy({
        defaults: { headroom: 9 },
        services: [{ match: { name: 'heavy' }, weight: 3 }, { match: {} }],
      }),
      AT,
    );
    expect([to(p, 'heavy'), to(p, 'light')]).toEqual([6, 2]);
  });

  it('scales an uncertain likelihood by weight: 1 − (1 − p)^weight', () => {
    // Both ran at their cap of 2 and were refused, wanting 3 (2 × 300 ÷ 200): heavy in the newest
    // 2 of 10 minutes (its 3rd instance 26% likely), light in the newest 4 (48%). One GPU is
    // free. Weighted by 3, heavy's 26% counts as 1 − 0.74³ = 59%, above light's 48%.
    const refusedIn = (n: number) =>
      minutes(
        Array(10).fill(2),
        Array.from({ length: 10 }, (_, i) => (i >= 10 - n ? 100 : 0)),
        Array(10).fill(200),
      );
    const heavy = svc('heavy', 2, { current: 2, peak: 2, perMinute: refusedIn(2) });
    const light = svc('light', 2, { current: 2, peak: 2, perMinute: refusedIn(4) });
    expect(likelihood(evidenceOf(heavy), 3)).toBeCloseTo(0.26, 2);
    expect(likelihood(evidenceOf(light), 3)).toBeCloseTo(0.48, 2);
    const p = plan(
      snap(5, [heavy, light]),
      policy({ services: [{ match: { name: 'heavy' }, weight: 3 }, { match: {} }] }),
      AT,
    );
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([['heavy', 2, 3]]);
    // At weight 1 the likelier instance wins.
    const even = plan(snap(5, [heavy, light]), policy(), AT);
    expect(even.changes.map((c) => [c.name, c.from, c.to])).toEqual([['light', 2, 3]]);
  });
});

describe('burst room (planner step 6): what is left, by weight', () => {
  it('gives what is left to the services by weight, up to their ceilings, and says so', () => {
    const p = plan(
      snap(10, [svc('a', 1, { current: 1, peak: 1 }), svc('b', 1, { current: 1, peak: 1 })]),
      policy({ services: [{ match: { name: 'a' }, max: 3 }, { match: {} }] }),
      AT,
    );
    expect([to(p, 'a'), to(p, 'b')]).toEqual([3, 7]);
    expect(reason(p, 'b')).toContain('burst room');
  });
});

describe('rules 5 and 6: refusals move room to where it is used', () => {
  // Minutes 14:48–14:57: roomy used 1 (2 once, long ago); busy ran at its cap of 2 and Cloud Run
  // refused 3 of its last 10 minutes, wanting 4 (in use 2 × 300 requests ÷ 150 served).
  const roomy = svc('roomy', 4, {
    current: 1,
    peak: 2,
    perMinute: minutes([2, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
  });
  const busy = svc('busy', 2, {
    current: 2,
    peak: 2,
    perMinute: minutes(
      [2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
      [0, 0, 0, 0, 0, 0, 0, 150, 150, 150],
      [200, 200, 200, 200, 200, 200, 200, 150, 150, 150],
    ),
  });

  it('takes room above what another uses, for the refused service, and says why', () => {
    const p = plan(snap(6, [roomy, busy]), policy(), AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['roomy', 4, 2],
      ['busy', 2, 4],
    ]);
    expect(reason(p, 'busy')).toContain(
      'refused 3 min of the last 10; wanted 4 (in use 2 × 300 requests ÷ 150 served)',
    );
    expect(reason(p, 'roomy')).toContain('gives 2 to where they are more likely used');
  });

  it('is the worked example of docs/decision-quality.md: its likelihoods, bands and keys', () => {
    const band = (p: number) => Math.floor(p * 20 + 1e-9);
    // A minute's weight halves every 10 minutes: the ten sum to 7.47, the newest three to 2.80.
    const busyEv = evidenceOf(busy);
    expect(likelihood(busyEv, 3)).toBeCloseTo(2.804 / 7.466, 3);
    expect(likelihood(busyEv, 4)).toBeCloseTo(0.38, 2);
    expect(band(likelihood(busyEv, 4))).toBe(7);
    // roomy's 2nd instance: only the oldest minute (weight 0.54), band 1, + 1 for holding it.
    const roomyEv = evidenceOf(roomy);
    expect(likelihood(roomyEv, 2)).toBeCloseTo(0.536 / 7.466, 3);
    expect(likelihood(roomyEv, 2)).toBeCloseTo(0.07, 2);
    expect(band(likelihood(roomyEv, 2))).toBe(1);
    expect(likelihood(roomyEv, 3)).toBe(0);
    const snapshot = snap(6, [roomy, busy]);
    const p = plan(snapshot, policy(), AT);
    expect(p.pools[0]?.budget).toBe(6);
    expect(p.services.map((s) => [s.name, s.demand, s.inUse])).toEqual([
      ['busy', 4, 2],
      ['roomy', 2, 1],
    ]);
    expect(reason(p, 'busy')).toContain('demand 4:');
    expect(reason(p, 'roomy')).toContain(
      'gives 2 to where they are more likely used (its next instance was used 0% of recent minutes)',
    );
    // Applied, and planned again on the same minutes: busy's 3rd and 4th are held, nothing moves.
    expect(plan(applyPlan(snapshot, p), policy(), AT).changes).toEqual([]);
    // Had nothing been refused, roomy would keep its room and busy, at its cap with no 429,
    // would not be taken to want more: a cap alone is not evidence.
    const quiet = svc('busy', 2, { current: 2, peak: 2, perMinute: minutes(Array(10).fill(2)) });
    const calm = plan(snap(6, [roomy, quiet]), policy(), AT);
    expect(calm.changes).toEqual([]);
    expect(calm.services.find((s) => s.name === 'busy')?.demand).toBe(2);
  });

  it('moves a held instance to a neighbour two bands likelier to use it: stickiness is one band', () => {
    const band = (p: number) => Math.floor(p * 20 + 1e-9);
    // steady used its 2nd instance in two minutes (14:48 and 14:54); refused holds 2 and Cloud
    // Run refused it in the newest two, wanting 4 (in use 2 × 300 requests ÷ 150 served).
    const steady = svc('steady', 3, {
      current: 1,
      peak: 2,
      perMinute: minutes([2, 1, 1, 1, 1, 1, 2, 1, 1, 1]),
    });
    const refused = svc('refused', 2, {
      current: 2,
      peak: 2,
      perMinute: minutes(
        Array(10).fill(2),
        [0, 0, 0, 0, 0, 0, 0, 0, 150, 150],
        [200, 200, 200, 200, 200, 200, 200, 200, 150, 150],
      ),
    });
    // steady's 2nd instance: (0.536 + 0.812) ÷ 7.466 = 0.18, band 3, + 1 for holding it = 4.
    expect(band(likelihood(evidenceOf(steady), 2))).toBe(3);
    // refused's 3rd and 4th: the newest two minutes, (1 + 0.933) ÷ 7.466 = 0.26, band 5.
    expect(band(likelihood(evidenceOf(refused), 3))).toBe(5);
    expect(band(likelihood(evidenceOf(refused), 4))).toBe(5);
    // Budget 5: 1 + 2 in use, 2 GPUs left; both go to refused's 3rd and 4th (5 before 4; steady's
    // 3rd, never used, is no reservation while refused is refused).
    const snapshot = snap(5, [steady, refused]);
    const p = plan(snapshot, policy(), AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['steady', 3, 1],
      ['refused', 2, 4],
    ]);
    expect(reason(p, 'steady')).toContain(
      'gives 2 to where they are more likely used (its next instance was used 18% of recent minutes)',
    );
    // Applied, and planned again on the same minutes: nothing moves back (rule 7).
    expect(plan(applyPlan(snapshot, p), policy(), AT).changes).toEqual([]);
    // One band likelier is not enough: with refused's 429s in the newest minute only (0.13, band
    // 2, its 3rd instance one band below steady's held 2nd + 1), steady keeps its 2nd.
    const once = svc('refused', 2, {
      current: 2,
      peak: 2,
      perMinute: minutes(
        Array(10).fill(2),
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 150],
        [200, 200, 200, 200, 200, 200, 200, 200, 200, 150],
      ),
    });
    expect(band(likelihood(evidenceOf(once), 3))).toBe(2);
    const kept = plan(snap(5, [steady, once]), policy(), AT);
    expect([to(kept, 'steady'), to(kept, 'refused')]).toEqual([2, 3]);
  });

  it('keeps what a service has in use for a higher priority, unless its rule lets it be preempted', () => {
    const chat = svc('chat', 2, busy.usage);
    const batch = svc('batch', 4, { current: 4, peak: 4, perMinute: minutes(Array(10).fill(4)) });
    const rules = (preempt: boolean) =>
      policy({
        services: [
          { match: { name: 'chat' }, priority: 10 },
          { match: { name: 'batch' }, preempt },
        ],
      });
    const kept = plan(snap(6, [chat, batch]), rules(false), AT);
    expect([to(kept, 'chat'), to(kept, 'batch')]).toEqual([2, 4]);
    expect(types(kept)).toContain('service.starved');
    const taken = plan(snap(6, [chat, batch]), rules(true), AT);
    expect([to(taken, 'chat'), to(taken, 'batch')]).toEqual([4, 2]);
    expect(reason(taken, 'batch')).toContain(
      'preempted: 2 in-use instances cut for priority 10 demand (preempt: true)',
    );
    // In use, taken: not room above its use that moved to where it is more likely used.
    expect(taken.services.find((s) => s.name === 'batch')?.why.reclaimed).toBeUndefined();
    expect(reason(taken, 'batch')).not.toContain('gives');
  });

  it('does not raise a service lowered to make room within its reverse delay, unless it is refused', () => {
    const lowered = (refused: number[]) =>
      svc(
        'lowered',
        2,
        { current: 2, peak: 3, perMinute: minutes([3, 3, 3, 2, 2, 2, 2, 2, 2, 2], refused) },
        { lastLoweredAt: '2026-11-27T14:50:00Z' },
      );
    const quiet = plan(snap(8, [lowered(Array(10).fill(0))]), policy(), AT);
    expect(to(quiet, 'lowered')).toBe(2);
    expect(reason(quiet, 'lowered')).toContain(
      'not raised back: lowered at 2026-11-27T14:50:00.000Z, not refused since, reverse delay runs until 2026-11-27T15:20:00.000Z',
    );
    // 429s at the new cap: the hold ends, and the room it needs is there.
    const refused = plan(snap(8, [lowered([0, 0, 0, 0, 0, 0, 0, 0, 0, 100])]), policy(), AT);
    expect(to(refused, 'lowered')).toBeGreaterThan(2);
    // After the delay, the burst room comes back.
    const later = plan(snap(8, [lowered(Array(10).fill(0))]), policy(), '2026-11-27T15:21:00Z');
    expect(to(later, 'lowered')).toBe(8);
  });

  it("names a higher priority's demand as served first only when free room did not pay for it", () => {
    // Budget 7, caps 1 + 4 + 1: 1 GPU free. hi (priority 10) rises 1 → 2 on that free GPU; b,
    // refused, wants 4; a's idle room (4, using 1) goes to b, a peer, not to priority 10.
    const hi = svc('hi', 1, {
      current: 1,
      peak: 2,
      perMinute: minutes([1, 2, ...Array(8).fill(1)]),
    });
    const a = svc('a', 4, { current: 1, peak: 1, perMinute: minutes(Array(10).fill(1)) });
    const b = svc('b', 1, {
      current: 1,
      peak: 1,
      perMinute: minutes(Array(10).fill(1), Array(10).fill(300), Array(10).fill(100)),
    });
    const rules = policy({ services: [{ match: { name: 'hi' }, priority: 10 }, { match: {} }] });
    const p = plan(snap(7, [hi, a, b]), rules, AT);
    expect([to(p, 'hi'), to(p, 'a'), to(p, 'b')]).toEqual([2, 1, 4]);
    expect(reason(p, 'a')).toContain('gives 3 to where they are more likely used');
    expect(reason(p, 'a')).not.toContain('priority 10');
    // Budget 6, nothing free: hi's raise takes one of a's GPUs, and a's reason says so.
    const tight = plan(snap(6, [hi, a, b]), rules, AT);
    expect([to(tight, 'hi'), to(tight, 'a'), to(tight, 'b')]).toEqual([2, 1, 3]);
    expect(reason(tight, 'a')).toContain("gives 3 to priority 10's demand, served first");
  });

  it('names the priority the room went to, not a higher one that free room paid for', () => {
    // Budget 7, caps 2 + 1 + 3: 1 GPU free. hi (priority 10) rises 2 → 3 on that free GPU; mid
    // (priority 5) rises 1 → 3 on the 2 GPUs low holds above its use.
    const p = plan(
      snap(7, [
        svc('hi', 2, { current: 2, peak: 3 }),
        svc('mid', 1, { current: 1, peak: 3 }),
        svc('low', 3, { current: 1, peak: 1 }),
      ]),
      policy({
        services: [
          { match: { name: 'hi' }, priority: 10 },
          { match: { name: 'mid' }, priority: 5 },
          { match: {} },
        ],
      }),
      AT,
    );
    expect([to(p, 'hi'), to(p, 'mid'), to(p, 'low')]).toEqual([3, 3, 1]);
    expect(p.services.find((s) => s.name === 'low')?.why.reclaimed?.forPriority).toBe(5);
    expect(reason(p, 'low')).toContain("gives 2 to priority 5's demand, served first");
  });

  it('holds a service lowered for any reason, not only to make room: it knows when, not why', () => {
    // Lowered at 14:50 to a max of 3 that a schedule window set; the window is over, the rule's
    // max is 10 and the pool has room, but the stamp alone starts the reverse delay (rules.md, 8).
    const capped = svc(
      'capped',
      3,
      { current: 3, peak: 3, perMinute: minutes(Array(10).fill(3)) },
      { lastLoweredAt: '2026-11-27T14:50:00Z' },
    );
    const p = plan(snap(20, [capped]), policy({ defaults: { headroom: 1, max: 10 } }), AT);
    expect(p.services.find((s) => s.name === 'capped')?.demand).toBe(6);
    expect(to(p, 'capped')).toBe(3);
    expect(reason(p, 'capped')).toContain('not raised back: lowered at 2026-11-27T14:50:00.000Z');
  });

  it('ends the reverse hold only on 429s after the lowering, not those of the minute ending at it', () => {
    // Each minute's point is stamped at its end: the one stamped 14:50 counts 14:49 to 14:50, all
    // before a lowering at 14:50, at the cap it had then. Only 429s of a later minute were
    // refused at the new cap (rule 8).
    const lowered = (refusedAt: number) => {
      const refused = Array<number>(10).fill(0);
      refused[refusedAt] = 100;
      return svc(
        'lowered',
        2,
        { current: 2, peak: 3, perMinute: minutes([3, 3, 3, 2, 2, 2, 2, 2, 2, 2], refused) },
        { lastLoweredAt: '2026-11-27T14:50:00Z' },
      );
    };
    const before = plan(snap(8, [lowered(2)]), policy(), AT); // the minute stamped 14:50
    expect(to(before, 'lowered')).toBe(2);
    expect(reason(before, 'lowered')).toContain('not refused since');
    const after = plan(snap(8, [lowered(3)]), policy(), AT); // the minute stamped 14:51
    expect(to(after, 'lowered')).toBeGreaterThan(2);
  });

  it('holds a lowered cap through the last instant of reverseDelay, and not at all under 0s', () => {
    const lowered = (at: string) =>
      svc(
        'lowered',
        2,
        {
          current: 2,
          peak: 3,
          perMinute: minutes([3, 3, 3, 2, 2, 2, 2, 2, 2, 2], Array(10).fill(0)),
        },
        { lastLoweredAt: at },
      );
    // Lowered exactly 30m ago under a 30m delay: a raise now is still "within 30 minutes after
    // being lowered", a reversal as the bench counts it, so the hold includes its last instant.
    const last = plan(snap(8, [lowered('2026-11-27T14:30:00Z')]), policy(), AT);
    expect(to(last, 'lowered')).toBe(2);
    expect(reason(last, 'lowered')).toContain('reverse delay runs until 2026-11-27T15:00:00.000Z');
    // A millisecond more, the delay is over.
    const over = plan(snap(8, [lowered('2026-11-27T14:29:59.999Z')]), policy(), AT);
    expect(to(over, 'lowered')).toBe(8);
    expect(reason(over, 'lowered')).not.toContain('not raised back');
    // `reverseDelay: 0s` is no delay (README), even for a lowering stamped at this very instant:
    // not a hold whose reason says it "runs until" now.
    for (const at of [AT, '2026-11-27T15:00:30Z']) {
      const none = plan(
        snap(8, [lowered(at)]),
        policy({ defaults: { headroom: 0, reverseDelay: '0s' } }),
        AT,
      );
      expect(to(none, 'lowered')).toBe(8);
      expect(reason(none, 'lowered')).not.toContain('not raised back');
    }
  });

  it('judges the stamps of an edited policy by the delays and bounds in force now', () => {
    // Lowered at 14:50 under the default reverse delay of 30m; the policy is then edited. What
    // the service carries is only the time of the lowering: the delay in force decides.
    const lowered = svc(
      'lowered',
      2,
      {
        current: 2,
        peak: 3,
        perMinute: minutes([3, 3, 3, 2, 2, 2, 2, 2, 2, 2], Array(10).fill(0)),
      },
      { lastLoweredAt: '2026-11-27T14:50:00Z' },
    );
    const shorter = plan(
      snap(8, [lowered]),
      policy({ defaults: { headroom: 0, reverseDelay: '5m' } }),
      AT,
    );
    // Under the delay in force when it was lowered (30m, 10 minutes ago) it is held where it is:
    // without this, the edit would be shown to change nothing.
    const before = plan(snap(8, [lowered]), policy({ defaults: { headroom: 0 } }), AT);
    expect(to(before, 'lowered')).toBe(2);
    expect(reason(before, 'lowered')).toContain('not raised back');
    expect(to(shorter, 'lowered')).toBe(8);
    expect(reason(shorter, 'lowered')).not.toContain('not raised back');
    // A floor raised above the cap (a new rule's min) is written at once, reverse delay or not,
    // and the reason names the rule that set the floor.
    const floor = plan(
      snap(8, [lowered]),
      policy({ services: [{ match: { name: 'lowered' }, min: 5, max: 5 }] }),
      AT,
    );
    expect(floor.changes.map((c) => [c.name, c.from, c.to])).toEqual([['lowered', 2, 5]]);
    expect(reason(floor, 'lowered')).toContain('at its floor 5, above its demand: min 5 of rule 0');
  });

  it('starts no reverse delay from a decrease dated later than now (a wrong clock or a hand edit)', () => {
    const lowered = (at: string, refused: number[]) =>
      svc(
        'lowered',
        2,
        { current: 2, peak: 3, perMinute: minutes([3, 3, 3, 2, 2, 2, 2, 2, 2, 2], refused) },
        { lastLoweredAt: at },
      );
    const quiet = Array(10).fill(0);
    const busy = [0, 0, 0, 0, 0, 0, 0, 0, 0, 100];
    // Stamped in 2099, the hold would run until then and, no minute being "since" the lowering,
    // even 429s at the new cap would never end it.
    for (const refused of [quiet, busy]) {
      const p = plan(snap(8, [lowered('2099-01-01T00:00:00Z', refused)]), policy(), AT);
      expect(to(p, 'lowered')).toBeGreaterThan(2);
      expect(reason(p, 'lowered')).not.toContain('not raised back');
      expect(reason(p, 'lowered')).toContain(
        'last lowered at 2099-01-01T00:00:00Z, later than now (a wrong clock or a hand edit stamped it): no delay taken from it',
      );
      expect(p.services.find((s) => s.name === 'lowered')?.why.futureStamps).toEqual({
        lastLoweredAt: '2099-01-01T00:00:00Z',
      });
    }
    // Within the clock skew two machines may have (a minute), the stamp still holds.
    const skewed = plan(snap(8, [lowered('2026-11-27T15:00:30Z', quiet)]), policy(), AT);
    expect(to(skewed, 'lowered')).toBe(2);
    expect(reason(skewed, 'lowered')).toContain('not raised back');
    expect(reason(skewed, 'lowered')).not.toContain('later than now');
  });
});

describe('preempt: all or nothing', () => {
  it('takes no in-use instance when what it could take would not buy the next instance', () => {
    // Budget 14 − 9 unmanaged = 5. big (priority 5, 3 GPUs an instance) gets its floor; its
    // next instance needs 3 GPUs, but small (preempt: true) could give only 1 above its floor.
    const p = plan(
      snap(
        14,
        [
          svc(
            'big',
            0,
            { current: 0, peak: 0, perMinute: minutes([0], [1]) },
            { gpusPerInstance: 3 },
          ),
          svc('small', 2, { current: 2, peak: 2 }),
        ],
        9,
      ),
      policy({
        defaults: { headroom: 0.2, min: 1 },
        services: [
          { match: { name: 'big' }, priority: 5 },
          { match: { name: 'small' }, preempt: true },
        ],
      }),
      AT,
    );
    expect([to(p, 'big'), to(p, 'small')]).toEqual([1, 2]);
    expect(reason(p, 'small')).not.toContain('preempted');
  });

  it('takes the lowest priority down to its floor, never below, then the next lowest', () => {
    // top (priority 10, 2 GPUs an instance) was refused at 1 instance: it wants 2, so 2 more
    // GPUs. low (priority 0) can give 1 above its floor of 1, mid (priority 1) 2: low gives its
    // 1 and mid the other, rather than low going to 0. Raised 5 minutes ago or not, what they
    // give is in use: preempted, not a scale-down delay overridden.
    for (const lastChangedAt of [null, '2026-11-27T14:55:00Z']) {
      const p = plan(
        snap(7, [
          svc(
            'top',
            1,
            { current: 1, peak: 1, perMinute: minutes([1, 1, 1], [0, 0, 50]) },
            { gpusPerInstance: 2 },
          ),
          svc('low', 2, { current: 2, peak: 2 }, { lastChangedAt }),
          svc('mid', 3, { current: 3, peak: 3 }, { lastChangedAt }),
        ]),
        policy({
          services: [
            { match: { name: 'top' }, priority: 10 },
            { match: { name: 'low' }, preempt: true },
            { match: { name: 'mid' }, priority: 1, preempt: true },
          ],
        }),
        AT,
      );
      expect([to(p, 'top'), to(p, 'low'), to(p, 'mid')]).toEqual([2, 1, 2]);
      for (const name of ['low', 'mid']) {
        const why = p.services.find((s) => s.name === name)?.why;
        expect(why?.preempted).toEqual({ instances: 1, priority: 10 });
        expect(why?.stickyOverridden).toBeUndefined();
        expect(reason(p, name)).not.toContain('scale-down delay');
      }
    }
  });
});

describe('preempted by more than one priority', () => {
  it('names each priority whose demand took its instances, not only the last', () => {
    // Budget 6, all of it in use: hi (priority 10) and mid (priority 5) each ran at their cap of
    // 1 and want 2; batch (priority 0, preempt) gives one in-use instance to each.
    const atCap = (name: string) => svc(name, 1, { current: 1, peak: 1, saturated: true });
    const p = plan(
      snap(6, [atCap('hi'), atCap('mid'), svc('batch', 4, { current: 4, peak: 4 })]),
      policy({
        services: [
          { match: { name: 'hi' }, priority: 10 },
          { match: { name: 'mid' }, priority: 5 },
          { match: { name: 'batch' }, preempt: true },
        ],
      }),
      AT,
    );
    expect([to(p, 'hi'), to(p, 'mid'), to(p, 'batch')]).toEqual([2, 2, 2]);
    expect(p.services.find((s) => s.name === 'batch')?.why.preempted).toEqual({
      instances: 2,
      priority: 10,
      priorities: [10, 5],
    });
    expect(reason(p, 'batch')).toContain(
      'preempted: 2 in-use instances cut for the demand of priorities 10 and 5 (preempt: true)',
    );
  });
});

describe('the loan guard: room a preemptible lower priority could only give back late', () => {
  // spiky (priority 10) holds a cap of `cap`; its use went 1 → 4 in one minute and back: most
  // wanted 4, largest one-minute rise 3, so its guard is 4 + 3 = 7. batch (priority 0) runs at
  // its cap of 2, 800 of 1,000 requests refused every minute: it wants ceil(2 × 1000 ÷ 200) = 10.
  const spiky = (cap: number) =>
    svc('spiky', cap, {
      current: 2,
      peak: 4,
      perMinute: minutes([1, 4, 1, 1, 2, 1, 1, 1, 2, 2]),
    });
  const batch = svc('batch', 2, {
    current: 2,
    peak: 2,
    perMinute: minutes(Array(10).fill(2), Array(10).fill(800), Array(10).fill(200)),
  });
  const rules = (preempt: boolean) =>
    policy({
      services: [
        { match: { name: 'spiky' }, priority: 10 },
        { match: { name: 'batch' }, preempt },
      ],
    });

  it("keeps the higher priority's cap up to its guard instead of lending it to a preemptible one", () => {
    // Budget 8. In use: spiky 2, batch 2; 4 GPUs left. spiky rises to its demand 4 (its peak,
    // headroom 0), 2 left. Every lower priority may be preempted, so spiky keeps its cap of 6
    // (below its guard of 7) rather than lend those 2 to batch: nothing is written.
    const p = plan(snap(8, [spiky(6), batch]), rules(true), AT);
    expect(p.pools[0]?.budget).toBe(8);
    expect(p.services.map((s) => [s.name, s.demand, s.inUse])).toEqual([
      ['batch', 10, 2],
      ['spiky', 4, 2],
    ]);
    expect([to(p, 'spiky'), to(p, 'batch')]).toEqual([6, 2]);
    expect(p.changes).toEqual([]);
    expect(p.services.find((s) => s.name === 'spiky')?.why.loanGuard).toEqual({
      kept: 2,
      level: 7,
      most: 4,
      jump: 3,
    });
    expect(reason(p, 'spiky')).toContain(
      "keeps 2 above its share (guard 7 = most wanted 4 + largest one-minute rise 3): not lent to a preemptible lower priority, which could give it back only a run and Monitoring's lag later",
    );
    expect(reason(p, 'batch')).toContain(
      "2 GPUs kept by priority 10's loan guard (preempt: true: room lent to it would come back only a run and a lag later)",
    );
    // Without `preempt` the room lent is lent for good while in use, and the guard does not act:
    // spiky comes down to its demand and batch gets the 2 GPUs (as before the guard).
    const firm = plan(snap(8, [spiky(6), batch]), rules(false), AT);
    expect([to(firm, 'spiky'), to(firm, 'batch')]).toEqual([4, 4]);
    expect(reason(firm, 'spiky')).not.toContain('guard');
    // Nor when only some of the lower priority may be preempted: steady (priority 0, no
    // `preempt`) holds what it uses for good, so the guard's condition, every lower priority
    // preemptible, does not hold. Budget 9: spiky to its demand 4, batch gets the 2 GPUs.
    const steady = svc('steady', 1, { current: 1, peak: 1 });
    const mixedRules = policy({
      services: [
        { match: { name: 'spiky' }, priority: 10 },
        { match: { name: 'batch' }, preempt: true },
        { match: { name: 'steady' } },
      ],
    });
    const mixed = plan(snap(9, [spiky(6), batch, steady]), mixedRules, AT);
    expect([to(mixed, 'spiky'), to(mixed, 'batch'), to(mixed, 'steady')]).toEqual([4, 4, 1]);
    expect(reason(mixed, 'spiky')).not.toContain('guard');
  });

  it('gives back what it holds above its guard, and plans the same once applied', () => {
    // Budget 10, spiky's cap 8: in use 2 + 2, spiky to its demand 4, then to its guard 7 (3
    // kept); the 8th instance is above its guard, so batch gets that 1 GPU: spiky 8 → 7, batch
    // 2 → 3, the decrease first.
    const p = plan(snap(10, [spiky(8), batch]), rules(true), AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['spiky', 8, 7],
      ['batch', 2, 3],
    ]);
    expect(reason(p, 'spiky')).toContain('keeps 3 above its share (guard 7 = most wanted 4');
    expect(reason(p, 'batch')).toContain("3 GPUs kept by priority 10's loan guard");
    // Rule 7: applied to the snapshot (same usage) and planned again, nothing changes: the guard
    // reads the minutes, and the cap only bounds it.
    const again = plan(applyPlan(snap(10, [spiky(8), batch]), p), rules(true), AT);
    expect(again.changes).toEqual([]);
  });

  it('names every priority whose guard kept room from a lower one, not only the highest', () => {
    // a (priority 20) and b (priority 10, preempt) are each spiky with a cap of 6 and a guard of
    // 7; batch (priority 0, preempt) wants 10. Budget 14: a and b rise to their demand 4 and keep
    // 2 each up to their caps; batch stays at 2. Of the 4 GPUs kept from batch, 2 are b's.
    const spikyAs = (name: string) =>
      svc(name, 6, { current: 2, peak: 4, perMinute: minutes([1, 4, 1, 1, 2, 1, 1, 1, 2, 2]) });
    const p = plan(
      snap(14, [spikyAs('a'), spikyAs('b'), batch]),
      policy({
        services: [
          { match: { name: 'a' }, priority: 20 },
          { match: { name: 'b' }, priority: 10, preempt: true },
          { match: { name: 'batch' }, preempt: true },
        ],
      }),
      AT,
    );
    expect([to(p, 'a'), to(p, 'b'), to(p, 'batch')]).toEqual([6, 6, 2]);
    expect(p.services.find((s) => s.name === 'batch')?.why.loanHeld).toEqual({
      gpus: 4,
      priority: 20,
      priorities: [20, 10],
    });
    expect(reason(p, 'batch')).toContain('4 GPUs kept by the loan guards of priorities 20 and 10');
    // b keeps its own cap, above its demand: a's guard kept nothing it could have had.
    expect(p.services.find((s) => s.name === 'b')?.why.loanHeld).toBeUndefined();
  });

  it('guards nothing where no priority is below: the room is burst room, as the reason says', () => {
    // spiky alone, budget 6 (its guard would be 7): demand 4, and its cap of 6 kept as burst room.
    const p = plan(snap(6, [spiky(6)]), rules(true), AT);
    expect(to(p, 'spiky')).toBe(6);
    const why = p.services.find((s) => s.name === 'spiky')?.why;
    expect(why?.loanGuard).toBeUndefined();
    expect(why?.burstKept).toEqual({ instances: 2, cap: 6 });
    expect(reason(p, 'spiky')).not.toContain('guard');
  });

  it('tells a lower priority the guard kept below the cap it had, though it has its demand', () => {
    // Budget 10. idle (priority 0, preempt) uses 2 of its cap of 6 and wants 2. spiky rises to its
    // demand 4 and its guard keeps its cap of 6; idle keeps only 4 of its 6 as burst room: the 2
    // GPUs spiky's guard kept would have stayed with idle.
    const idle = svc('idle', 6, { current: 2, peak: 2, perMinute: minutes(Array(10).fill(2)) });
    const p = plan(
      snap(10, [spiky(6), idle]),
      policy({
        services: [
          { match: { name: 'spiky' }, priority: 10 },
          { match: { name: 'idle' }, preempt: true },
        ],
      }),
      AT,
    );
    expect([to(p, 'spiky'), to(p, 'idle')]).toEqual([6, 4]);
    expect(p.services.find((s) => s.name === 'idle')?.why.loanHeld).toEqual({
      gpus: 2,
      priority: 10,
    });
    expect(reason(p, 'idle')).toContain("2 GPUs kept by priority 10's loan guard");
  });

  it('tells no lower priority of a guard that kept nothing it could have had', () => {
    // Budget 16: spiky keeps its cap of 6 (below its guard of 7), and batch still rises to its
    // demand of 10: the guard held nothing from batch.
    const p = plan(snap(16, [spiky(6), batch]), rules(true), AT);
    expect([to(p, 'spiky'), to(p, 'batch')]).toEqual([6, 10]);
    expect(p.services.find((s) => s.name === 'spiky')?.why.loanGuard?.kept).toBe(2);
    expect(p.services.find((s) => s.name === 'batch')?.why.loanHeld).toBeUndefined();
    expect(reason(p, 'batch')).not.toContain('loan guard');
    // Budget 11: batch reaches 5 of its 10, short by the 2 GPUs spiky kept (and 3 more).
    const short = plan(snap(11, [spiky(6), batch]), rules(true), AT);
    expect([to(short, 'spiky'), to(short, 'batch')]).toEqual([6, 5]);
    expect(short.services.find((s) => s.name === 'batch')?.why.loanHeld).toEqual({
      gpus: 2,
      priority: 10,
    });
  });
});

describe('anticipation: use rising toward the cap', () => {
  // One GPU free. climber's use rose 1, 2, 3 in its newest three minutes, to its cap of 3, with no
  // 429 yet (Monitoring is minutes late); steady never used more than 2.
  const climber = (inUse: number[]) =>
    svc('climber', 3, { current: inUse.at(-1) ?? 0, peak: 3, perMinute: minutes(inUse) });
  const steady = svc('steady', 2, { current: 2, peak: 2, perMinute: minutes(Array(10).fill(2)) });
  const withHeadroom = policy({ defaults: { headroom: 0.2 } });

  it('gives the next instance to the service climbing toward its cap, and says why', () => {
    const p = plan(snap(6, [climber([1, 1, 1, 1, 1, 1, 1, 1, 2, 3]), steady]), withHeadroom, AT);
    expect(p.pools[0]?.budget).toBe(6);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([['climber', 3, 4]]);
    expect(reason(p, 'climber')).toContain(
      "use rose 3 min running (1, 2, 3): its next step, 4, counted as a minute's use",
    );
    // Applied, and planned again on the same minutes: the rise reads the same, nothing moves.
    expect(
      plan(
        applyPlan(snap(6, [climber([1, 1, 1, 1, 1, 1, 1, 1, 2, 3]), steady]), p),
        withHeadroom,
        AT,
      ).changes,
    ).toEqual([]);
  });

  it('without a rise in each of the three minutes, equal evidence goes by weighted max-min', () => {
    const p = plan(snap(6, [climber([1, 1, 1, 1, 1, 1, 1, 3, 3, 3]), steady]), withHeadroom, AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([['steady', 2, 3]]);
    expect(reason(p, 'climber')).not.toContain('use rose');
    // The rise only ranks instances: demand, and so how far a service may rise, is the same.
    const rose = plan(snap(6, [climber([1, 1, 1, 1, 1, 1, 1, 1, 2, 3]), steady]), withHeadroom, AT);
    for (const q of [p, rose]) expect(q.services.find((s) => s.name === 'climber')?.demand).toBe(4);
  });
});

describe('rule 5: room above all use stays sticky when the minutes swing (tail)', () => {
  // Budget 7, headroom 20%, minutes 14:48–14:57 (a minute's weight halves every 10: they sum to
  // 7.466). refused ran at its cap of 1, Cloud Run refused half its requests in the newest three
  // minutes: it wanted 2, demand ceil(2 × 1.2) = 3, its 2nd instance likely 2.804 ÷ 7.466 = 0.38
  // (band 7). spiky wanted 3 in three minutes (weights 0.574 + 0.707 + 0.871 = 2.152: 0.29, band
  // 5, + 2 held), 1 in the others: demand ceil(3 × 1.2) = 4; its 4th instance was never used,
  // but its use swings by 12 ÷ 9 = 1.33 a minute, so its tail is 0.288 × e^(−1 ÷ 1.33) = 0.136
  // ≥ 0.04: held room stays sticky (band 0 + 2). smooth used 1 every minute (swing 0, tail 0): its
  // 2nd instance is no reservation while refused is refused (band 0, not held).
  const refused = svc('refused', 1, {
    current: 1,
    peak: 1,
    perMinute: minutes(
      Array(10).fill(1),
      [0, 0, 0, 0, 0, 0, 0, 100, 100, 100],
      [100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
    ),
  });
  const spiky = (inUse: number[]) =>
    svc('spiky', 4, { current: inUse.at(-1) ?? 0, peak: 3, perMinute: minutes(inUse) });
  const smooth = svc('smooth', 2, { current: 1, peak: 1, perMinute: minutes(Array(10).fill(1)) });
  const withHeadroom = policy({ defaults: { headroom: 0.2 } });
  const swinging = [1, 3, 1, 1, 3, 1, 1, 3, 1, 1];

  it("keeps a spiky service's room for its next spike and moves a smooth one's, and says why", () => {
    // Protected 1 + 1 + 1; 4 GPUs to place: spiky's 2nd and 3rd (7, held), refused's 2nd (7),
    // then spiky's 4th (2, held by its tail) before smooth's 2nd and refused's 3rd (0).
    const snapshot = snap(7, [refused, smooth, spiky(swinging)]);
    const ev = evidenceOf(spiky(swinging));
    expect(ev.swing).toBeCloseTo(12 / 9, 9);
    expect(likelihood(ev, 3)).toBeCloseTo(0.288, 3);
    expect(tailLikelihood(ev, 4)).toBeCloseTo(0.288 * Math.exp(-0.75), 3);
    const p = plan(snapshot, withHeadroom, AT);
    expect(p.pools[0]?.budget).toBe(7);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['smooth', 2, 1],
      ['refused', 1, 2],
    ]);
    expect(reason(p, 'spiky')).toContain(
      'keeps 1 above its most wanted (3) while others are refused: its use swings by 1.33 a minute, so instance 4 is 13.6% likely',
    );
    expect(p.services.find((s) => s.name === 'spiky')?.why.tailHeld).toEqual({
      instances: 1,
      most: 3,
      swing: 1.33,
      likelihood: 0.136,
    });
    expect(reason(p, 'smooth')).toContain('gives 1 to where it is more likely used');
    // Applied, and planned again on the same minutes: the tail reads the minutes, not the cap.
    expect(plan(applyPlan(snapshot, p), withHeadroom, AT).changes).toEqual([]);
  });

  it('without the swing, the room above all use is no reservation: weighted max-min', () => {
    // spiky wanted 3 in nine minutes and 1 in the newest: swing 2 ÷ 9 = 0.22, tail 0.866 ×
    // e^(−4.5) = 0.0096 < 0.04. Its 4th, smooth's 2nd and refused's 3rd all score 0, none held:
    // the lowest level after the instance gets it, smooth (2, against 3 and 4).
    const steady = [3, 3, 3, 3, 3, 3, 3, 3, 3, 1];
    const ev = evidenceOf(spiky(steady));
    expect(ev.swing).toBeCloseTo(0.22, 2);
    expect(tailLikelihood(ev, 4)).toBeCloseTo(0.0096, 4);
    const p = plan(snap(7, [refused, smooth, spiky(steady)]), withHeadroom, AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['spiky', 4, 3],
      ['refused', 1, 2],
    ]);
    expect(p.services.find((s) => s.name === 'spiky')?.why.tailHeld).toBeUndefined();
  });
});

describe('rule 8: calm', () => {
  // was-busy was raised to 6 at some point, and now uses 1; other uses 1 of its 2.
  const fleet = (changedAt: string, otherMax = 2) =>
    snap(8, [
      svc('was-busy', 6, { current: 1, peak: 1 }, { lastChangedAt: changedAt }),
      svc('other', otherMax, { current: 1, peak: 1 }),
    ]);

  it('keeps a cap raised less than scaleDownDelay ago when no one needs the room', () => {
    const p = plan(fleet('2026-11-27T14:50:00Z'), policy(), AT);
    expect(p.changes).toEqual([]);
    expect(reason(p, 'was-busy')).toContain(
      'scale-down delay 15m runs until 2026-11-27T15:05:00.000Z',
    );
  });

  it('holds a cap only while the raise is less than scaleDownDelay old: at 15m it is over', () => {
    const p = plan(fleet('2026-11-27T14:45:00Z'), policy(), AT);
    const wasBusy = p.services.find((s) => s.name === 'was-busy');
    expect(wasBusy?.why.sticky).toBeUndefined();
    expect(wasBusy?.reason).not.toContain('scale-down delay');
    expect(reason(p, 'was-busy')).toContain(
      'burst room (leftover GPUs left where they were, toward its cap of 6)',
    );
    // A millisecond earlier, the delay still holds.
    const before = plan(fleet('2026-11-27T14:45:00.001Z'), policy(), AT);
    expect(before.services.find((s) => s.name === 'was-busy')?.why.sticky).toMatchObject({
      until: '2026-11-27T15:00:00.001Z',
    });
  });

  it('starts no scale-down delay from a raise dated later than now', () => {
    const p = plan(fleet('2099-01-01T00:00:00Z'), policy(), AT);
    expect(reason(p, 'was-busy')).not.toContain('scale-down delay');
    expect(reason(p, 'was-busy')).toContain('burst room');
    expect(reason(p, 'was-busy')).toContain('last raised at 2099-01-01T00:00:00Z, later than now');
  });

  it('once the delay is over, keeps the room where it is while no one needs it: no write', () => {
    const p = plan(fleet('2026-11-27T14:40:00Z'), policy(), AT);
    expect(p.changes).toEqual([]);
    expect(reason(p, 'was-busy')).toContain(
      'burst room (leftover GPUs left where they were, toward its cap of 6)',
    );
  });

  it('once the delay is over, hands over what another demand needs and keeps the rest', () => {
    // other was refused at its cap of 2: it wanted ceil(2 × 230 ÷ 200) = 3.
    const p = plan(
      snap(8, [
        svc('was-busy', 6, { current: 1, peak: 1 }, { lastChangedAt: '2026-11-27T14:40:00Z' }),
        svc('other', 2, { current: 1, peak: 2, perMinute: minutes([2, 2, 1], [0, 30, 0]) }),
      ]),
      policy(),
      AT,
    );
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['was-busy', 6, 5],
      ['other', 2, 3],
    ]);
  });

  it('gives the room up at once, delay or not, when another service needs it', () => {
    const needed = plan(
      snap(7, [
        svc('was-busy', 6, { current: 1, peak: 1 }, { lastChangedAt: '2026-11-27T14:50:00Z' }),
        svc('other', 1, { current: 1, peak: 3 }),
      ]),
      policy(),
      AT,
    );
    // its peak of 3 (under a cap since lowered by hand); a cap alone is no evidence of more
    expect(to(needed, 'other')).toBe(3);
    expect(to(needed, 'was-busy')).toBe(4);
    expect(reason(needed, 'was-busy')).toContain('scale-down delay overridden');
  });

  it('writes at most maxChangesPerRun, decreases first, and defers the rest with a reason', () => {
    const p = plan(
      snap(6, [
        svc('a', 3, { current: 0, peak: 0 }),
        svc('b', 3, { current: 0, peak: 0 }),
        svc('c', 0, { current: 0, peak: 3 }),
      ]),
      policy({ limits: { maxChangesPerRun: 1 } }),
      AT,
    );
    expect(p.changes).toHaveLength(1);
    expect(p.changes[0]?.to).toBeLessThan(p.changes[0]?.from ?? 0);
    expect(p.deferred.length).toBeGreaterThan(0);
    expect(reason(p, p.deferred[0]?.name ?? '')).toContain('deferred: limits.maxChangesPerRun (1)');
  });

  it("lists a pool's decreases lowest priority first and its raises highest first, so a short limit keeps those", () => {
    // Budget 10. a-down and d-up have priority 10, b-down and c-up 0. Each up-service uses its
    // cap of 2 and wants 3 (50% headroom); the idle down-services give 1 each and keep 2.
    const fleet = snap(10, [
      svc('a-down', 3, { current: 0, peak: 0 }),
      svc('b-down', 3, { current: 0, peak: 0 }),
      svc('c-up', 2, { current: 2, peak: 2 }),
      svc('d-up', 2, { current: 2, peak: 2 }),
    ]);
    const rules = (maxChangesPerRun: number) =>
      policy({
        defaults: { headroom: 0.5 },
        services: [{ match: { name: '{a-down,d-up}' }, priority: 10 }, { match: {} }],
        limits: { maxChangesPerRun },
      });
    const p = plan(fleet, rules(50), AT);
    expect(p.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ['b-down', 3, 2],
      ['a-down', 3, 2],
      ['d-up', 2, 3],
      ['c-up', 2, 3],
    ]);
    // Three writes: the priority-10 raise is written, the priority-0 one waits.
    const short = plan(fleet, rules(3), AT);
    expect(short.changes.map((c) => c.name)).toEqual(['b-down', 'a-down', 'd-up']);
    expect(short.deferred.map((c) => c.name)).toEqual(['c-up']);
  });

  it('spends a short change limit on bringing every over-budget pool back before raising in one', () => {
    // Pools are listed by key, so europe-west4 comes before us-central1.
    const EU = { ...POOL, region: 'europe-west4' };
    const eu = (s: SnapshotService): SnapshotService => ({ ...s, ...EU });
    const p = plan(
      {
        version: 1,
        takenAt: AT,
        pools: [
          { ...EU, quota: 6 },
          { ...POOL, quota: 4 },
        ],
        services: [
          // europe-west4: caps 7 of 6, and busy (refused at its cap) wants more.
          eu(svc('busy', 1, { current: 1, peak: 1, perMinute: minutes([1, 1, 1], [0, 0, 50]) })),
          eu(svc('idle', 6, { current: 0, peak: 0 })),
          // us-central1: caps 6 of 4.
          svc('us-idle', 6, { current: 0, peak: 0 }),
        ],
        unmanagedUsage: [],
      },
      policy({ limits: { maxChangesPerRun: 2 } }),
      AT,
    );
    expect(p.pools.map((pool) => [pool.region, pool.status])).toEqual([
      ['europe-west4', 'over-budget'],
      ['us-central1', 'over-budget'],
    ]);
    // Both decreases are written; busy's raise waits for the next run.
    expect(p.changes.map((c) => c.name)).toEqual(['idle', 'us-idle']);
    expect(p.changes.every((c) => c.to < c.from)).toBe(true);
    expect(p.deferred.map((c) => c.name)).toEqual(['busy']);
  });
});

describe('demand', () => {
  it('is peak plus headroom, with the numbers in the reason', () => {
    const p = plan(
      snap(20, [svc('a', 10, { current: 3, peak: 5 })]),
      policy({ defaults: { headroom: 0.2 }, services: [{ match: {}, max: 6 }] }),
      AT,
    );
    expect(p.services[0]?.demand).toBe(6);
    expect(reason(p, 'a')).toContain('demand 6: peak 5');
    expect(reason(p, 'a')).toContain('+ 20% headroom = 6');
  });

  it('tells a headroom or target of a part percent as the policy sets it, so the sum adds up', () => {
    // 8 × 1.125 = 9; told as 13% the sum would read 8 × 1.13 = 9.04, so 10.
    const p = plan(
      snap(20, [svc('a', 10, { current: 8, peak: 8 })]),
      policy({ defaults: { headroom: 0.125 } }),
      AT,
    );
    expect(p.services[0]?.demand).toBe(9);
    expect(reason(p, 'a')).toContain('demand 9: peak 8 + 12.5% headroom = 9');
    // 10 × 0.876 ÷ 0.875 = 10.01, so 11: in whole percents "88% over target 88%" told no excess.
    const busy = plan(
      snap(20, [svc('a', 12, { current: 10, peak: 10, utilization: 0.876 })]),
      policy({ defaults: { headroom: 0, targetUtilization: 0.875 } }),
      AT,
    );
    expect(busy.services[0]?.demand).toBe(11);
    expect(reason(busy, 'a')).toContain(
      'GPU utilization 87.6% over target 87.5% on 10 in use, so 11',
    );
  });

  it('grows with GPU utilization above the target', () => {
    const p = plan(
      snap(20, [svc('a', 10, { current: 4, peak: 4, utilization: 0.95 })]),
      policy({ defaults: { headroom: 0, targetUtilization: 0.5 } }),
      AT,
    );
    expect(p.services[0]?.demand).toBe(8);
    expect(reason(p, 'a')).toContain('GPU utilization 95% over target 50%');
  });

  it("reads 'ran at its cap' only from a snapshot without refusal counts", () => {
    // At its cap of 4. An older snapshot says only that it ran there: twice the headroom, at
    // least one more. Where refusal counts were read and show none, they are the evidence: it
    // wanted exactly what it had (a cap alone is no evidence, rule 7).
    const older = plan(
      snap(20, [svc('a', 4, { current: 4, peak: 4, saturated: true })]),
      policy(),
      AT,
    );
    expect(older.services[0]?.demand).toBe(5);
    expect(reason(older, 'a')).toContain('ran at its cap of 4');
    const counted = plan(
      snap(20, [svc('a', 4, { current: 4, peak: 4, saturated: true, perMinute: minutes([4, 4]) })]),
      policy(),
      AT,
    );
    expect(counted.services[0]?.demand).toBe(4);
    expect(counted.services[0]?.why.basis).toMatchObject({
      estimate: { saturated: false, atCap: null },
    });
    // Minutes without refusal counts, or no minutes at all, are no refusal counts: the older
    // snapshot's word still counts, and no reason tells of 429s that were never read.
    for (const perMinute of [{ ...minutes([4, 4]), refused: undefined }, minutes([])]) {
      const unread = plan(
        snap(20, [svc('a', 4, { current: 4, peak: 4, saturated: true, perMinute })]),
        policy(),
        AT,
      );
      expect(unread.services[0]?.demand).toBe(5);
      expect(reason(unread, 'a')).toContain('ran at its cap of 4');
      expect(reason(unread, 'a')).not.toContain('429');
    }
  });

  it('starts from what is in use now when that is above the peak', () => {
    // base = max(peak, in use): 6 × 1.2 = 7.2, so 8, not the peak's 5.
    const p = plan(
      snap(20, [svc('a', 10, { current: 6, peak: 4 })]),
      policy({ defaults: { headroom: 0.2 } }),
      AT,
    );
    expect(p.services[0]?.demand).toBe(8);
    expect(reason(p, 'a')).toContain('peak 4 (in use 6) + 20% headroom = 8');
  });

  it("'ran at its cap' grows the peak, not the cap, by twice the headroom", () => {
    // It ran at its cap of 5, which has since been raised to 8: 5 + ceil(5 × 2 × 0.2) = 7, above
    // 5 × 1.2 = 6. Measured from the cap, raising the cap would raise the estimate again on the
    // same data (rule 7).
    const p = plan(
      snap(20, [svc('a', 8, { current: 5, peak: 5, saturated: true })]),
      policy({ defaults: { headroom: 0.2 } }),
      AT,
    );
    expect(p.services[0]?.demand).toBe(7);
    expect(p.services[0]?.why.basis).toMatchObject({
      estimate: { withHeadroom: 6, atCap: { cap: 8, instances: 7 } },
    });
    // Where twice the headroom adds no more than the headroom did, the cap is not the reason.
    const even = plan(
      snap(20, [svc('a', 1, { current: 1, peak: 1, saturated: true })]),
      policy({ defaults: { headroom: 0.5 } }),
      AT,
    );
    expect(even.services[0]?.demand).toBe(2);
    expect(even.services[0]?.why.basis).toMatchObject({
      estimate: { saturated: true, withHeadroom: 2, atCap: null },
    });
    expect(reason(even, 'a')).not.toContain('ran at its cap');
  });
});

describe('time windows', () => {
  const weekdays = policy({
    services: [
      {
        match: {},
        schedule: [
          {
            days: ['mon', 'tue', 'wed', 'thu', 'fri'],
            start: '08:00',
            end: '20:00',
            timezone: 'America/New_York',
            min: 3,
          },
        ],
      },
    ],
  });
  const fleet = snap(8, [svc('a', 1, { current: 0, peak: 0 })]);

  it('apply their settings while they hold, at the time of the plan', () => {
    expect(plan(fleet, weekdays, AT).services[0]).toMatchObject({ floor: 3, window: 0 });
    expect(plan(fleet, weekdays, '2026-11-28T15:00:00Z').services[0]).toMatchObject({
      floor: 1,
      window: null,
    });
  });

  it('the first window that holds wins whole, where two overlap', () => {
    const overlapping = policy({
      services: [
        {
          match: {},
          schedule: [
            { start: '14:00', end: '16:00', min: 3 },
            { start: '00:00', end: '24:00', min: 2, max: 4 },
          ],
        },
      ],
    });
    // At 15:00 UTC both hold: the first sets min 3 and, winning whole, no max (the second's
    // max 4 is not merged in).
    expect(plan(fleet, overlapping, AT).services[0]).toMatchObject({
      floor: 3,
      ceiling: 8,
      window: 0,
    });
    expect(plan(fleet, overlapping, '2026-11-27T17:00:00Z').services[0]).toMatchObject({
      floor: 2,
      ceiling: 4,
      window: 1,
    });
  });

  it('set weight, priority and headroom too while they hold', () => {
    const busy = policy({
      services: [
        {
          match: {},
          schedule: [{ start: '14:00', end: '16:00', weight: 3, priority: 5, headroom: 0.5 }],
        },
      ],
    });
    const used = snap(8, [svc('a', 2, { current: 2, peak: 2 })]);
    // 2 in use + 50% headroom = 3 while the window holds; the policy's 0% after it.
    expect(plan(used, busy, AT).services[0]).toMatchObject({
      window: 0,
      weight: 3,
      priority: 5,
      demand: 3,
    });
    expect(plan(used, busy, '2026-11-27T17:00:00Z').services[0]).toMatchObject({
      window: null,
      weight: 1,
      priority: 0,
      demand: 2,
    });
  });
});

describe('a floor or a ceiling that sets the cap is named in the reason', () => {
  const idle = svc('a', 2, { current: 0, peak: 0 });
  const busy = svc('a', 10, { current: 10, peak: 10 });
  const windowed = (bound: { min?: number; max?: number }) =>
    policy({
      services: [
        {
          match: {},
          min: 2,
          max: 8,
          schedule: [{ start: '08:00', end: '20:00', timezone: 'America/New_York', ...bound }],
        },
      ],
    });
  /** A pool of 20 GPUs whose others hold all but `budget`: no room left over to share. */
  const only = (s: SnapshotService, budget: number) => snap(20, [s], 20 - budget);

  it("names the window in force, the rule, the defaults or the service's own min instances", () => {
    const cases: [Plan, number, string][] = [
      [
        plan(only(idle, 4), windowed({ min: 4 }), AT),
        4,
        "min 4 of rule 0's schedule window 0, in force now",
      ],
      [plan(only(idle, 2), windowed({}), AT), 2, 'min 2 of rule 0'],
      [
        plan(only(idle, 3), policy({ defaults: { headroom: 0, min: 3 } }), AT),
        3,
        "the policy's defaults.min (3)",
      ],
      [
        plan(only({ ...idle, minInstances: 5, maxInstances: 5 }, 5), policy(), AT),
        5,
        'its own min instances (5)',
      ],
    ];
    for (const [result, floor, who] of cases) {
      expect(result.services[0]).toMatchObject({ to: floor, floor });
      expect(reason(result, 'a')).toContain(`at its floor ${floor}, above its demand: ${who}`);
      expect(result.services[0]?.why.atFloor).toMatchObject({ floor });
    }
  });

  it('names what holds a service below its demand: the window, the rule, the defaults or the quota', () => {
    const cases: [Plan, number, string][] = [
      [
        plan(snap(20, [busy]), windowed({ max: 3 }), AT),
        3,
        "max 3 of rule 0's schedule window 0, in force now",
      ],
      [plan(snap(20, [busy]), windowed({}), AT), 8, 'max 8 of rule 0'],
      [
        plan(snap(20, [busy]), policy({ defaults: { headroom: 0, max: 4 } }), AT),
        4,
        "the policy's defaults.max (4)",
      ],
      [
        plan(snap(5, [busy]), policy(), AT),
        5,
        'the quota holds 5 instances of it, the most Cloud Run accepts',
      ],
    ];
    for (const [result, ceiling, who] of cases) {
      expect(result.services[0]).toMatchObject({ to: ceiling, ceiling });
      expect(reason(result, 'a')).toContain(`at its ceiling ${ceiling}, below its demand: ${who}`);
    }
  });

  it('a starved service is told short of the bound that holds its demand, as its row says', () => {
    // Demand 10 held to the rule's max of 8; a neighbour's in-use instances leave it 6.
    const p = plan(
      snap(10, [svc('a', 6, { current: 6, peak: 10 }), svc('b', 4, { current: 4, peak: 4 })]),
      policy({ services: [{ match: { name: 'a' }, max: 8 }, { match: {} }] }),
      AT,
    );
    const row = p.services.find((s) => s.name === 'a');
    expect(row).toMatchObject({ to: 6, ceiling: 8, demand: 10 });
    expect(reason(p, 'a')).toContain('short of its ceiling 8 by 2');
    const starved = p.alerts.find((a) => a.type === 'service.starved' && a.service === 'a');
    expect(starved?.summary).toBe(
      'a gets 6 instances, short of its ceiling of 8 (its demand is 10)',
    );
    expect(starved?.details).toMatchObject({ cap: 6, demand: 8, shortfall: 2 });
  });

  it('says nothing of a bound where the usage, not the bound, sets the cap', () => {
    const within = plan(only(svc('a', 2, { current: 3, peak: 3 }), 3), windowed({}), AT);
    expect(within.services[0]).toMatchObject({ to: 3, floor: 2, ceiling: 8 });
    expect(reason(within, 'a')).not.toMatch(/at its (floor|ceiling)/);
    // Outside the window the rule's own bounds hold, and the reason names the rule, not a window.
    const night = plan(only(idle, 2), windowed({ min: 4 }), '2026-11-27T03:00:00.000Z');
    expect(night.services[0]).toMatchObject({ to: 2, window: null });
    expect(reason(night, 'a')).toContain('at its floor 2, above its demand: min 2 of rule 0');
  });

  it('names the floor under the burst room or the delay that raised a cap above it', () => {
    // Idle, floor 2, and 3 GPUs left over: 5 is the floor 2 and 3 of burst room, not 0 + 3.
    const burst = plan(only(idle, 5), windowed({}), AT);
    expect(burst.services[0]).toMatchObject({ to: 5, floor: 2, demand: 0 });
    expect(burst.services[0]?.why).toMatchObject({ atFloor: { floor: 2 }, burstShared: 3 });
    expect(reason(burst, 'a')).toContain('its floor 2 is above its demand: min 2 of rule 0');
    expect(reason(burst, 'a')).not.toContain('at its floor');
  });

  it('names the ceiling a service short of it is short of, not its demand', () => {
    // Demand 10, ceiling 8, room for 5: short of the ceiling by 3, not of the demand by 3.
    const scarce = plan(only(busy, 5), windowed({}), AT);
    expect(scarce.services[0]).toMatchObject({ to: 5, ceiling: 8, demand: 10 });
    expect(scarce.services[0]?.why).toMatchObject({ atCeiling: { ceiling: 8 }, shortBy: 3 });
    expect(reason(scarce, 'a')).toContain('its ceiling 8 is below its demand: max 8 of rule 0');
    expect(reason(scarce, 'a')).toContain('short of its ceiling 8 by 3');
    expect(reason(scarce, 'a')).not.toContain('short of demand');
  });
});

describe('alerts', () => {
  it('follow the message shape of docs/alerts.md, with a pool ordering key in the dedup key', () => {
    const p = plan(
      snap(4, [svc('a', 4, { current: 4, peak: 4 })]),
      policy({ alerts: { pressure: 0.5 } }),
      AT,
    );
    const pressure = p.alerts.find((a) => a.type === 'pool.pressure');
    expect(pressure).toMatchObject({
      version: 1,
      status: 'firing',
      severity: 'WARNING',
      project: 'p',
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      service: null,
      time: AT,
      dedupKey: 'pool.pressure:p/us-central1/nvidia-l4/zonal',
    });
  });

  it('pool.pressure fires from demand ÷ budget equal to alerts.pressure up, not below', () => {
    // Budget 10, demand 9 (no headroom): 9 ÷ 10 is the default threshold of 0.9 itself.
    const at = plan(snap(10, [svc('a', 10, { current: 9, peak: 9 })]), policy(), AT);
    expect(at.pools[0]).toMatchObject({ budget: 10, demand: 9, status: 'pressure' });
    expect(types(at)).toEqual(['pool.pressure']);
    const below = plan(snap(10, [svc('a', 10, { current: 8, peak: 8 })]), policy(), AT);
    expect(below.pools[0]).toMatchObject({ budget: 10, demand: 8, status: 'ok' });
    expect(types(below)).toEqual([]);
  });

  it('pool.pressure fires for any demand on a budget of 0: all of it', () => {
    // Quota 2, all of it reserved: a budget of 0, and a demand of 1.
    const p = plan(snap(2, [svc('a', 1, { current: 1, peak: 1 })]), policy({ reserve: 2 }), AT);
    expect(p.pools[0]).toMatchObject({ budget: 0, demand: 1 });
    const pressure = p.alerts.find((a) => a.type === 'pool.pressure');
    expect(pressure?.summary).toBe(
      'Demand in us-central1 nvidia-l4 is 1 GPUs, all of the budget of 0',
    );
    expect(pressure?.details).toMatchObject({ ratio: null, threshold: 0.9 });
  });
});
