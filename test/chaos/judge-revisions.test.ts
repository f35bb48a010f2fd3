import { describe, expect, it } from 'vitest';
import { runChaosFleet } from '../../src/chaos/chaos.js';
import { validateFleet, type FleetInput } from '../../src/emulator/fleet.js';
import { InvariantMonitor } from '../../src/emulator/invariants.js';
import { FleetModel } from '../../src/emulator/model.js';

/**
 * The invariant monitor counts what a service's revisions may hold by Google's rules
 * (https://cloud.google.com/run/docs/configuring/max-instances): each revision in the traffic
 * split at its own max, together at most the service-level max; a revision only tagged, outside
 * the split, at its own max whatever the service-level max ("Tagged revisions are started, but
 * only count toward the service-level maximum instances if they are a part of a traffic split").
 */

const PROJECT = 'judge-project';
const REGION = 'us-central1';
const SVC = { project: PROJECT, region: REGION, name: 'svc-a' };

function model(service: Record<string, unknown>, quota = 20): FleetModel {
  const fleet: FleetInput = {
    start: '2026-11-27T12:00:00Z',
    projects: [
      {
        id: PROJECT,
        pools: [{ region: REGION, quota }],
        services: [
          { name: 'svc-a', region: REGION, gpu: {}, demand: { constant: 0 }, ...service },
          { name: 'svc-b', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: 0 } },
        ],
      },
    ],
  } as FleetInput;
  return new FleetModel(validateFleet(fleet));
}

const used = (m: FleetModel) => new InvariantMonitor().poolLoad(m, SVC)?.used;

describe('the invariant monitor counts revisions as Google does', () => {
  it('counts a tagged revision outside the split at its own max, beyond the service-level max', () => {
    const m = model({
      maxInstances: 2,
      revisionMaxInstances: 2,
      noTrafficRevision: { maxInstances: 3, tag: 'canary' },
    });
    expect(used(m)).toBe(2 + 3 + 1);
  });

  it('counts a revision deployed with its own max and a tag by another writer', () => {
    const m = model({ maxInstances: 2 });
    m.deployNoTraffic(SVC, { maxInstances: 4, tag: 'canary' });
    expect(used(m)).toBe(2 + 4 + 1);
    // Without a tag, a revision without traffic runs nothing.
    const n = model({ maxInstances: 2 });
    n.deployNoTraffic(SVC, { maxInstances: 4 });
    expect(used(n)).toBe(2 + 1);
  });

  it('counts the revisions of a traffic split at their own maxes, bounded together by the service-level max', () => {
    const unset = model({
      revisionMaxInstances: 2,
      previousRevision: { maxInstances: 4, percent: 50 },
    });
    expect(used(unset)).toBe(2 + 4 + 1);
    const bounded = model({
      maxInstances: 5,
      revisionMaxInstances: 2,
      previousRevision: { maxInstances: 4, percent: 50 },
    });
    expect(used(bounded)).toBe(5 + 1);
    // A revision with no max of its own (made from a template that sets none) may run what the
    // quota allows, up to the service-level max.
    const unbounded = model({ maxInstances: 6 });
    unbounded.update(SVC, { previousRevision: { percent: 10 } });
    expect(used(unbounded)).toBe(6 + 1);
    // Made from a template that sets one, it keeps that max, as a deploy without traffic would.
    const templated = model({ maxInstances: 6, revisionMaxInstances: 2 });
    templated.update(SVC, { previousRevision: { percent: 10 } });
    expect(used(templated)).toBe(2 + 2 + 1);
  });

  it('counts a tagged revision of a manually scaled service at its own min, or one instance', () => {
    // "If a revision is active only because of a traffic tag: if revision-level minimum
    // instances is set, the specified number of instances are started, but not counted toward
    // the service's manual instance total; if not set, the revision scales up to 1 instance"
    // (https://cloud.google.com/run/docs/configuring/services/manual-scaling).
    const m = model({ scalingMode: 'MANUAL', manualInstanceCount: 3, minInstances: 3 });
    m.deployNoTraffic(SVC, { maxInstances: 12, tag: 'canary' });
    expect(used(m)).toBe(3 + 1 + 1);
  });

  it('fleet seed 2121551806: a tagged canary of a service another writer then switched to manual scaling', async () => {
    // The other writer deploys a canary with its own max 12 on svc-z3, then switches svc-z3 to
    // manual scaling at 8 instances: the canary then runs one instance, not 12. Judged at its own
    // max, the governor's raise of svc-z0 2 → 4 read as taking a pool holding 28 GPUs on a quota
    // of 19 over it; it held 17.
    const report = await runChaosFleet(2121551806, 5);
    expect(report.faults['other-actor-canary']).toBe(1);
    expect(report.faults['other-actor-manual']).toBe(1);
    expect(report.violations).toEqual([]);
  });
});
