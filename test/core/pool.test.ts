import { describe, expect, it } from 'vitest';
import { parsePolicy, type PolicyInput } from '../../src/core/policy.js';
import {
  effectiveMax,
  maxInForce,
  poolBudget,
  poolKey,
  poolSettings,
  policyPools,
  samePool,
} from '../../src/core/pool.js';

/** Pool identity and pool settings: the one place each rule is written. */

const ZONAL = {
  project: 'p',
  region: 'us-central1',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
};
const policy = (extra: Partial<PolicyInput> = {}) =>
  parsePolicy({ version: 1, projects: ['p', 'q'], ...extra });

describe('pool identity', () => {
  it('has one key format, and samePool compares the four fields only', () => {
    expect(poolKey(ZONAL)).toBe('p/us-central1/nvidia-l4/zonal');
    expect(poolKey({ ...ZONAL, zonalRedundancy: false })).toBe('p/us-central1/nvidia-l4/no-zonal');
    const row = { ...ZONAL, name: 'svc', quota: 3 };
    expect(samePool(row, ZONAL)).toBe(true);
    for (const change of [
      { project: 'q' },
      { region: 'europe-west4' },
      { accelerator: 'nvidia-rtx-pro-6000' },
      { zonalRedundancy: false },
    ]) {
      expect(samePool({ ...ZONAL, ...change }, ZONAL)).toBe(false);
    }
  });
});

describe("a pool's settings: per field, the most specific entry that sets it wins", () => {
  it("takes the project's own entry over the entry for every project, field by field", () => {
    const p = policy({
      reserve: 2,
      pools: [
        { project: 'p', region: 'us-central1', reserve: 1 },
        { region: 'us-central1', quota: 8, reserve: 3 },
      ],
    });
    // p: its own reserve, the every-project quota.
    expect(poolSettings(p, ZONAL)).toEqual({ quota: 8, reserve: 1 });
    // q has no entry of its own: the every-project entry.
    expect(poolSettings(p, { ...ZONAL, project: 'q' })).toEqual({ quota: 8, reserve: 3 });
    // Both set the quota, in either order: p's own wins it.
    const own = { project: 'p', region: 'us-central1', quota: 4 };
    const all = { region: 'us-central1', quota: 8 };
    for (const pools of [
      [own, all],
      [all, own],
    ]) {
      expect(poolSettings(policy({ pools }), ZONAL).quota).toBe(4);
      expect(poolSettings(policy({ pools }), { ...ZONAL, project: 'q' }).quota).toBe(8);
    }
  });

  it('falls back to the policy-wide reserve and to no quota', () => {
    const p = policy({ reserve: 2, pools: [{ project: 'p', region: 'us-central1', quota: 4 }] });
    expect(poolSettings(p, ZONAL)).toEqual({ quota: 4, reserve: 2 });
    expect(poolSettings(p, { ...ZONAL, project: 'q' })).toEqual({ quota: null, reserve: 2 });
  });

  it('tells the zonal and non-zonal pools, and accelerators, apart', () => {
    const p = policy({
      pools: [
        { region: 'us-central1', zonalRedundancy: false, quota: 3 },
        { region: 'us-central1', accelerator: 'nvidia-rtx-pro-6000', quota: 2 },
      ],
    });
    expect(poolSettings(p, ZONAL).quota).toBeNull();
    expect(poolSettings(p, { ...ZONAL, zonalRedundancy: false }).quota).toBe(3);
    expect(poolSettings(p, { ...ZONAL, accelerator: 'nvidia-rtx-pro-6000' }).quota).toBe(2);
  });

  it('names, per project an entry covers, the pools whose settings the plan must show', () => {
    const p = policy({
      pools: [
        { region: 'us-central1', quota: 8 },
        { project: 'q', region: 'europe-west4', reserve: 1 },
        { region: 'asia-east1' },
      ],
    });
    expect(policyPools(p).map(poolKey)).toEqual([
      'p/us-central1/nvidia-l4/zonal',
      'q/us-central1/nvidia-l4/zonal',
      'q/europe-west4/nvidia-l4/zonal',
    ]);
  });
});

describe('the budget and the cap in force', () => {
  it('budget = quota − reserve − unmanaged caps − other usage; unknown with the quota', () => {
    const b = { reserve: 1, unmanagedCapsGpus: 2, otherUsageGpus: 1 };
    expect(poolBudget({ quota: 8, ...b })).toBe(4);
    expect(poolBudget({ quota: null, ...b })).toBeNull();
  });

  it('is the lower of the two levels, or the default when neither is set', () => {
    expect(maxInForce({ serviceMaxInstances: 5, revisionMaxInstances: 3 })).toEqual({
      max: 3,
      level: 'revision',
    });
    expect(maxInForce({ serviceMaxInstances: 3, revisionMaxInstances: 3 })).toEqual({
      max: 3,
      level: 'service',
    });
    expect(maxInForce({ serviceMaxInstances: null, revisionMaxInstances: 0 })).toEqual({
      max: 100,
      level: 'default',
    });
    expect(effectiveMax({ serviceMaxInstances: 0, revisionMaxInstances: 7 })).toBe(7);
  });

  it("leaves out the template's max when the template is not what serves", () => {
    const pinned = { serviceMaxInstances: 5, revisionMaxInstances: 3, templateServes: false };
    expect(maxInForce(pinned)).toEqual({ max: 5, level: 'service' });
    expect(
      maxInForce({ serviceMaxInstances: null, revisionMaxInstances: 3, templateServes: false }),
    ).toEqual({ max: 100, level: 'default' });
    expect(effectiveMax({ ...pinned, templateServes: true })).toBe(3);
  });

  it("counts a service whose template does not serve at its serving revisions' own max", () => {
    const base = { serviceMaxInstances: null, revisionMaxInstances: 1, templateServes: false };
    const split = [{ maxInstances: 5 }, { maxInstances: 2 }];
    expect(maxInForce({ ...base, servingRevisions: split })).toEqual({
      max: 7,
      level: 'revisions',
    });
    // A revision without its own max counts at the unset max.
    expect(
      maxInForce({
        ...base,
        servingRevisions: [{ maxInstances: 2 }, { maxInstances: null }],
        unsetMax: 8,
      }),
    ).toEqual({ max: 10, level: 'revisions' });
    // Unread, or a read that failed: the unset max, as before.
    expect(maxInForce({ ...base, servingRevisions: [{}], unsetMax: 8 })).toEqual({
      max: 8,
      level: 'default',
    });
    expect(
      maxInForce({ ...base, servingRevisions: split, revisionsUnread: 'denied', unsetMax: 8 }),
    ).toEqual({ max: 8, level: 'default' });
    // The service-level max, when set, is what is counted.
    expect(maxInForce({ ...base, serviceMaxInstances: 4, servingRevisions: split })).toEqual({
      max: 4,
      level: 'service',
    });
  });

  it('leaves a revision only tagged out of the sum: it is counted apart, in its pool', () => {
    const base = { serviceMaxInstances: null, revisionMaxInstances: 1, templateServes: false };
    const canary = { maxInstances: 3, inSplit: false };
    expect(maxInForce({ ...base, servingRevisions: [{ maxInstances: 2 }, canary] })).toEqual({
      max: 2,
      level: 'revisions',
    });
    // Tagged and in the split (a share of the traffic): in the sum, as before.
    expect(
      maxInForce({
        ...base,
        servingRevisions: [{ maxInstances: 2 }, { ...canary, inSplit: true }],
      }),
    ).toEqual({ max: 5, level: 'revisions' });
    // Unread, even only tagged: the unset max, as before.
    expect(
      maxInForce({
        ...base,
        servingRevisions: [{ maxInstances: 2 }, { inSplit: false }],
        unsetMax: 8,
      }),
    ).toEqual({ max: 8, level: 'default' });
  });
});
