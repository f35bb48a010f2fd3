import { afterEach, describe, expect, it, vi } from 'vitest';
import { plan } from '../../src/core/planner.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { Snapshot } from '../../src/core/snapshot.js';
import { POOL, snapshotService } from '../support/fixtures.js';

/**
 * A policy may give every service a priority of its own (a ranking): then every tier of the
 * demand step holds one service. Work done for each tier must not read every service of the pool,
 * or a plan grows with the square of the pool (5,000 services ranked took 5 s).
 */
describe('a pool where every service has a priority of its own', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('does not scan the pool for each priority', () => {
    const n = 1_500;
    const snapshot: Snapshot = {
      version: 1,
      takenAt: '2026-11-27T15:00:00.000Z',
      // Scarce: each service uses one instance and peaked at two; the pool funds one each.
      pools: [{ ...POOL, quota: n }],
      services: Array.from({ length: n }, (_, i) =>
        snapshotService(`svc-${i}`, 2, { current: 1, peak: 2 }),
      ),
      unmanagedUsage: [],
    };
    const policy = parsePolicy({
      version: 1,
      projects: [POOL.project],
      services: Array.from({ length: n }, (_, i) => ({
        match: { name: `svc-${i}` },
        priority: i,
      })),
    });
    // Calls of filter on an array of the pool's size: a scan of the pool.
    const filter = Array.prototype.filter;
    let scans = 0;
    vi.spyOn(Array.prototype, 'filter').mockImplementation(function (
      this: unknown[],
      ...args: Parameters<typeof filter>
    ) {
      if (this.length >= n) scans++;
      return filter.apply(this, args);
    });
    const result = plan(snapshot, policy, snapshot.takenAt);
    vi.restoreAllMocks();
    expect(result.services).toHaveLength(n);
    expect(scans).toBeLessThan(50);
  });
});
