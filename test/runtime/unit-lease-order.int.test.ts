import { describe, expect, it, vi } from 'vitest';
import type { DiscoveryCache } from '../../src/core/discovery.js';
import type { Policy } from '../../src/core/policy.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { memoryLogger } from '../../src/log.js';
import {
  countedRegions,
  projectUnitStore,
  regionalUnitStore,
} from '../../src/reconcile/unit-lease.js';
import { closeRuntime, createRuntime } from '../../src/runtime.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import type { StateStore } from '../../src/ports/index.js';

// Module mocks need a worker of their own (the unit tests share theirs), hence an integration file.
// No Google client is opened: only the run's store is looked at.
vi.mock('../../src/adapters/load.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/adapters/load.js')>();
  return { ...actual, loadGooglePorts: () => Promise.resolve({ close: () => Promise.resolve() }) };
});

/**
 * A run of a whole project and a regional unit of it share one store, so one governor id, and
 * only the leases keep them from writing the same pools at once (src/reconcile/unit-lease.ts).
 * The run of the whole project looks at the regional leases of the regions the kept discovery
 * counts: that discovery must be read once its own lease is held. Read before (by the unit's
 * decision, or beside the lease request), it can miss a region a dispatch added in between, whose
 * regional unit took its lease and found the project's free: both would then raise on the same
 * room of that region's pools.
 */
const PROJECT = 'gpu-split-proj';
const TTL = 60_000;
const at = () => new Date().toISOString();
const iso = (ms: number) => new Date(ms).toISOString();
const discovery = (regions: Record<string, number>): DiscoveryCache => ({
  key: 'k',
  foundAt: '2026-11-27T10:00:00.000Z',
  projects: [PROJECT],
  services: { [PROJECT]: regions },
});
// Before: one region only, so not split. After: a second region, and the project splits.
const BEFORE = discovery({ 'us-central1': 3 });
const AFTER = discovery({ 'us-central1': 3, 'us-east4': 2 });

/** A regional unit of the new region takes its lease, and finds the project's free. */
async function regionalTakes(store: StateStore, now: string): Promise<void> {
  const east = regionalUnitStore(store, 'us-east4');
  const mine = await east.acquireLease(PROJECT, 'regional-run', TTL, now);
  expect(mine.acquired).toBe(true);
}

describe('a run of the whole project reads the regions to check once its lease is held', () => {
  it('the decision read the discovery before a dispatch split the project: the run still sees the new regional unit', async () => {
    const store = createMemoryStateStore();
    await store.saveDiscovery(BEFORE);
    // The unit's decision read the kept discovery (one region: the project is governed whole),
    // and its runtime was made: neither may stand for the regions its lease checks.
    expect(countedRegions(await store.loadDiscovery(), PROJECT)).toEqual(['us-central1']);
    const policy = { alerts: { topic: null } } as unknown as Policy;
    const runtime = await createRuntime(policy, parseRuntimeOptions({}), memoryLogger(), { store });
    try {
      // Meanwhile a dispatch found a second region and split the project; its regional unit ran.
      await store.saveDiscovery(AFTER);
      await regionalTakes(store, at());
      const whole = await runtime.store.acquireLease(PROJECT, 'whole-run', TTL, at());
      expect(whole.acquired).toBe(false);
      expect(whole.heldBy).toContain('regional-run');
      expect(await store.readLease(PROJECT)).toBeNull();
    } finally {
      await closeRuntime(runtime, memoryLogger());
    }
  });

  it('a renewal after a prompt that outlived the lease reads the regions again, not those of the first request', async () => {
    const store = createMemoryStateStore();
    await store.saveDiscovery(BEFORE);
    const policy = { alerts: { topic: null } } as unknown as Policy;
    const runtime = await createRuntime(policy, parseRuntimeOptions({}), memoryLogger(), { store });
    try {
      const t0 = Date.parse('2026-11-27T10:00:00Z');
      const first = await runtime.store.acquireLease(PROJECT, 'whole-run', TTL, iso(t0));
      expect(first.acquired).toBe(true);
      // A person took longer than the lease to answer: it expired, a dispatch split the project,
      // and the new region's unit took its lease, finding the project's expired.
      await store.saveDiscovery(AFTER);
      await regionalTakes(store, iso(t0 + TTL + 1_000));
      const renewed = await runtime.store.renewLease(
        PROJECT,
        'whole-run',
        TTL,
        iso(t0 + TTL + 2_000),
      );
      expect(renewed.acquired).toBe(false);
      expect(renewed.heldBy).toContain('regional-run');
      expect(await store.readLease(PROJECT)).toBeNull();
    } finally {
      await closeRuntime(runtime, memoryLogger());
    }
  });

  it('the discovery read beside the lease request answered first: the run still sees the new regional unit', async () => {
    const store = createMemoryStateStore();
    await store.saveDiscovery(BEFORE);
    // The project's lease request is slow to answer; the store grants it when `open` is called.
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const slow: StateStore = {
      ...store,
      acquireLease: async (project, holder, ttlMs, now) => {
        if (project === PROJECT) await opened;
        return store.acquireLease(project, holder, ttlMs, now);
      },
    };
    const whole = projectUnitStore(slow, async (project) =>
      countedRegions(await store.loadDiscovery(), project),
    );
    const asked = whole.acquireLease(PROJECT, 'whole-run', TTL, at());
    // Whatever reads the request starts now have answered.
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    await store.saveDiscovery(AFTER);
    await regionalTakes(store, at());
    open();
    const result = await asked;
    expect(result.acquired).toBe(false);
    expect(result.heldBy).toContain('regional-run');
    expect(await store.readLease(PROJECT)).toBeNull();
  });
});
