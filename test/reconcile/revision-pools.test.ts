import { describe, expect, it } from 'vitest';
import type { PlanPool } from '../../src/core/plan.js';
import { needsServingRevisions, type ObservedService } from '../../src/core/service.js';
import { effectiveMax } from '../../src/core/pool.js';
import { countedRevisions } from '../../src/core/revision-pools.js';
import { grownElsewhere, otherUsageOf } from '../../src/reconcile/room.js';
import { observedService } from '../support/fixtures.js';

/**
 * A serving revision whose GPU is not its template's (a redeploy changed the zonal redundancy or
 * the GPU type, or removed the GPU, while the older revision serves) holds GPUs of its own pool:
 * observation reads it, and the write path's fresh reads count it there as observation does.
 */

const L4 = { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true };
const NO_ZONAL = { ...L4, zonalRedundancy: false };

function pool(zonalRedundancy: boolean, quota = 8): PlanPool {
  return {
    project: 'p',
    region: 'us-central1',
    accelerator: 'nvidia-l4',
    zonalRedundancy,
    quota,
    quotaSource: 'policy',
    reserve: 0,
    unmanagedGpus: 0,
    unmanaged: [],
    budget: quota,
    capsBefore: 0,
    capsAfter: 0,
    inUse: 0,
    floors: 0,
    demand: 0,
    status: 'ok',
    note: '',
  };
}

/** Traffic pinned on an older revision, read with its own max and GPU. */
function pinned(
  name: string,
  template: ObservedService['gpu'],
  revision: { maxInstances: number | null; gpu: ObservedService['gpu'] },
  more: Partial<ObservedService> = {},
): ObservedService {
  return observedService(name, {
    gpu: template,
    templateServes: false,
    servingRevisions: [{ name: `${name}-00001-abc`, inSplit: true, ...revision }],
    ...more,
  });
}

describe('serving revisions of another pool', () => {
  it('are read whatever the template: without a GPU, or with a service-level max', () => {
    const unread = (s: ObservedService): ObservedService => ({
      ...s,
      servingRevisions: (s.servingRevisions ?? []).map((r) => ({
        name: r.name,
        inSplit: r.inSplit,
      })),
    });
    expect(
      needsServingRevisions(unread(pinned('dropped', null, { maxInstances: 2, gpu: L4 }))),
    ).toBe(true);
    expect(
      needsServingRevisions(
        unread(pinned('moved', NO_ZONAL, { maxInstances: 3, gpu: L4 }, { serviceMaxInstances: 4 })),
      ),
    ).toBe(true);
    // A manually scaled one too: a revision of its split may be of another pool.
    expect(
      needsServingRevisions(
        unread(pinned('manual', L4, { maxInstances: 3, gpu: L4 }, { scalingMode: 'MANUAL' })),
      ),
    ).toBe(true);
    expect(needsServingRevisions(observedService('plain'))).toBe(false);
  });

  it("of a manually scaled service count at its whole manual count, not at the revision's max", () => {
    // "each revision is allocated instances proportionally" of the manual count
    // (https://cloud.google.com/run/docs/configuring/services/manual-scaling); how it rounds
    // Google does not say: the older revision may hold all of it in its pool.
    const manual = pinned(
      'manual',
      NO_ZONAL,
      { maxInstances: 1, gpu: { ...L4, count: 2 } },
      { scalingMode: 'MANUAL', manualInstanceCount: 3 },
    );
    expect(countedRevisions(manual, () => 8).map((h) => h.gpus)).toEqual([6]);
    expect(otherUsageOf(pool(true), [manual], [], [])).toBe(6);
    // Its template's pool counts the manual count as before.
    expect(otherUsageOf(pool(false), [manual], [], [])).toBe(3);
  });

  it('of a manually scaled service, only tagged, count at their own min, or one instance', () => {
    const tagged = (minInstances: number | null): ObservedService =>
      observedService('manual', {
        gpu: L4,
        scalingMode: 'MANUAL',
        manualInstanceCount: 2,
        servingRevisions: [
          { name: 'manual-00001-abc', inSplit: false, maxInstances: 5, minInstances, gpu: L4 },
        ],
      });
    expect(countedRevisions(tagged(3), () => 8).map((h) => h.gpus)).toEqual([3]);
    expect(countedRevisions(tagged(null), () => 8).map((h) => h.gpus)).toEqual([1]);
    // Beside the manual count, in the same pool.
    expect(otherUsageOf(pool(true), [tagged(3)], [], [])).toBe(5);
  });

  it("count in the older revision's pool on the write path's fresh read, at its own max", () => {
    const services = [
      pinned('moved', NO_ZONAL, { maxInstances: 3, gpu: L4 }, { serviceMaxInstances: 4 }),
      pinned('dropped', null, { maxInstances: 2, gpu: L4 }),
      // Unset own max and no service-level max: the most Cloud Run lets it run in its pool,
      // quota ÷ GPUs per instance (4 instances of 2 GPUs).
      pinned(
        'unset',
        null,
        { maxInstances: null, gpu: { ...L4, count: 2 } },
        { serviceMaxInstances: null },
      ),
      // Same pool as its template: its cap is the service's, counted there, not twice.
      pinned('same', L4, { maxInstances: 5, gpu: L4 }),
    ];
    expect(otherUsageOf(pool(true), services, [], [])).toBe(3 + 2 + 8);
    // The template's pool keeps counting the service as before; nothing is added there.
    expect(otherUsageOf(pool(false), services, [], [])).toBe(0);
  });

  it('in the traffic split, count at no more than the service-level max, which bounds every revision with traffic; only tagged, at their own', () => {
    const bounded = (inSplit: boolean, serviceMaxInstances: number | null) =>
      observedService('moved', {
        gpu: NO_ZONAL,
        templateServes: false,
        serviceMaxInstances,
        servingRevisions: [{ name: 'moved-00001-abc', inSplit, maxInstances: null, gpu: L4 }],
      });
    // Own max unset: quota ÷ GPUs (8); the service-level max of 2 bounds it while it has traffic.
    expect(otherUsageOf(pool(true), [bounded(true, 2)], [], [])).toBe(2);
    expect(otherUsageOf(pool(true), [bounded(true, null)], [], [])).toBe(8);
    expect(otherUsageOf(pool(true), [bounded(false, 2)], [], [])).toBe(8);
  });
});

describe('a revision only tagged, outside the traffic split', () => {
  /** L4 template and serving revision (own max 2), beside a tagged revision of `canary`'s GPU. */
  const withCanary = (
    canary: { maxInstances: number | null; gpu: ObservedService['gpu']; inSplit?: boolean },
    serviceMaxInstances: number | null = null,
  ) =>
    observedService('svc', {
      gpu: L4,
      templateServes: false,
      serviceMaxInstances,
      servingRevisions: [
        { name: 'svc-00001-abc', inSplit: true, maxInstances: 2, gpu: L4 },
        { name: 'svc-00002-xyz', inSplit: false, ...canary },
      ],
    });

  it("counts in its own pool, its template's too, at its own max whatever the service-level max", () => {
    // Not bounded by the service-level max ("only count toward the service-level maximum
    // instances if they are a part of a traffic split"): 3 beside a service-level max of 1.
    expect(otherUsageOf(pool(true), [withCanary({ maxInstances: 3, gpu: L4 }, 1)], [], [])).toBe(3);
    expect(otherUsageOf(pool(true), [withCanary({ maxInstances: 3, gpu: L4 })], [], [])).toBe(3);
    // Without a max of its own: its pool's unset max, quota ÷ GPUs per instance.
    expect(otherUsageOf(pool(true), [withCanary({ maxInstances: null, gpu: L4 })], [], [])).toBe(8);
    // In another pool: there, not in the template's.
    const moved = withCanary({ maxInstances: 3, gpu: NO_ZONAL });
    expect(otherUsageOf(pool(false), [moved], [], [])).toBe(3);
    expect(otherUsageOf(pool(true), [moved], [], [])).toBe(0);
  });

  it("is not also in the service's own cap, and one in the split is unchanged", () => {
    expect(effectiveMax(withCanary({ maxInstances: 3, gpu: L4 }))).toBe(2);
    const inSplit = withCanary({ maxInstances: 3, gpu: L4, inSplit: true });
    expect(effectiveMax(inSplit)).toBe(5);
    expect(otherUsageOf(pool(true), [inSplit], [], [])).toBe(0);
  });

  it('names the revision and why', () => {
    expect(countedRevisions(withCanary({ maxInstances: 3, gpu: L4 }), () => 8)).toEqual([
      {
        project: 'p',
        region: 'us-central1',
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
        gpus: 3,
        source: 'service/svc revision svc-00002-xyz (tagged, outside the traffic split)',
      },
    ]);
  });
});

describe('a raise that would let a serving revision of another pool hold more (grownElsewhere)', () => {
  const H100 = { accelerator: 'nvidia-h100-80gb', count: 1, zonalRedundancy: true };
  /** The template in the no-zonal L4 pool, at a service-level max of 1; `revisions` serving. */
  const moved = (revisions: NonNullable<ObservedService['servingRevisions']>) =>
    observedService('moved', {
      gpu: NO_ZONAL,
      serviceMaxInstances: 1,
      templateServes: false,
      servingRevisions: revisions,
    });
  const quotas = (id: { accelerator: string; zonalRedundancy: boolean }) =>
    id.accelerator === 'nvidia-l4' ? 8 : null;

  it('names the revision that grows, among serving revisions in two other pools', () => {
    const s = moved([
      // Its own max at the service-level max: a raise does not lift it.
      { name: 'moved-00001-aaa', inSplit: true, maxInstances: 1, gpu: L4 },
      { name: 'moved-00002-bbb', inSplit: true, maxInstances: 4, gpu: H100 },
    ]);
    const found = grownElsewhere(pool(false), s, 3, quotas);
    expect(found?.accelerator).toBe('nvidia-h100-80gb');
    expect(found?.source).toContain('moved-00002-bbb');
    expect(found?.gpus).toBe(3);
  });

  it('lets a revision without a max of its own, in a pool whose quota is unknown, grow with the raise', () => {
    const s = moved([{ name: 'moved-00001-aaa', inSplit: true, maxInstances: null, gpu: H100 }]);
    expect(grownElsewhere(pool(false), s, 2, quotas)?.gpus).toBe(2);
  });

  it('leaves alone a revision without a GPU, one only tagged, and a service without a service-level max', () => {
    expect(
      grownElsewhere(
        pool(false),
        moved([{ name: 'moved-00001-aaa', inSplit: true, maxInstances: 4, gpu: null }]),
        4,
        quotas,
      ),
    ).toBeNull();
    expect(
      grownElsewhere(
        pool(false),
        moved([{ name: 'moved-00001-aaa', inSplit: false, maxInstances: 4, gpu: L4 }]),
        4,
        quotas,
      ),
    ).toBeNull();
    const unset = {
      ...moved([{ name: 'moved-00001-aaa', inSplit: true, maxInstances: 4, gpu: L4 }]),
      serviceMaxInstances: null,
    };
    expect(grownElsewhere(pool(false), unset, 4, quotas)).toBeNull();
  });
});

describe('revisions of a worker pool instance split, of another pool', () => {
  const split = {
    project: 'p',
    region: 'us-central1',
    name: 'encoder',
    gpu: NO_ZONAL,
    manualInstanceCount: 3,
    templateServes: false,
    servingRevisions: [
      { name: 'encoder-00001-abc', inSplit: true, maxInstances: null, gpu: { ...L4, count: 2 } },
      { name: 'encoder-00002-def', inSplit: true, maxInstances: null, gpu: NO_ZONAL },
    ],
  };

  it("count in the older revision's pool on the write path's fresh read, at all the worker pool's instances", () => {
    // 3 instances of 2 GPUs in the zonal pool (how Cloud Run divides them Google does not say),
    // and 3 of 1 in the template's pool, as before.
    expect(otherUsageOf(pool(true), [], [split], [])).toBe(6);
    expect(otherUsageOf(pool(false), [], [split], [])).toBe(3);
  });

  it('count nothing elsewhere while the template serves, or before their GPU is read', () => {
    expect(otherUsageOf(pool(true), [], [{ ...split, templateServes: true }], [])).toBe(0);
    const unread = {
      ...split,
      servingRevisions: split.servingRevisions.map(({ name, inSplit }) => ({ name, inSplit })),
    };
    expect(otherUsageOf(pool(true), [], [unread], [])).toBe(0);
  });
});
