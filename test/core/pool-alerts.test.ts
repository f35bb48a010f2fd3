import { describe, expect, it } from 'vitest';
import { syntheticFleet } from '../../bench/fleet.js';
import { alertPoolKey, dedupKeyOf } from '../../src/core/conditions.js';
import { plan } from '../../src/core/planner.js';

/**
 * A pool's alerts are made with the pool's place in their dedupKey computed once for the pool, and
 * the floors of a pool gathered only where `pool.infeasible` names them. Both must answer as
 * `makeAlert` and the full list of floors would: the same dedupKey and id for every alert, and every
 * governed service of an infeasible pool named in its floors. Planned on the bench fleet, four of its
 * pools with no quota (infeasible), at three times of its schedule: every kind of pool alert.
 */
const keyOf = (reason: unknown): string | undefined =>
  reason === 'usage-unknown' ? 'usage' : reason === undefined ? undefined : 'quota';

describe("a pool's alerts", () => {
  for (const at of [
    '2026-11-27T15:00:00.000Z',
    '2026-11-27T03:00:00.000Z',
    '2026-11-28T15:00:00.000Z',
  ]) {
    it(`have the dedupKey makeAlert gives, and infeasible pools name every floor (${at})`, () => {
      const { snapshot, policy } = syntheticFleet(2_000, 40, 7);
      for (const p of snapshot.pools.slice(0, 4)) p.quota = 0; // infeasible: floors of 1 or more
      const planned = plan(snapshot, policy, at);
      const types = new Set(planned.alerts.map((a) => a.type));
      expect([...types].sort()).toEqual([
        'governor.degraded',
        'pool.infeasible',
        'pool.over-budget',
        'pool.pressure',
        'service.starved',
      ]);
      for (const a of planned.alerts) {
        const key = a.type === 'governor.degraded' ? keyOf(a.details['reason']) : undefined;
        expect(a.dedupKey).toBe(dedupKeyOf(a.type, a, a.service, key));
        expect(a.id).toBe(`${planned.runId}:${a.dedupKey}`);
      }
      const infeasible = planned.alerts.filter((a) => a.type === 'pool.infeasible');
      expect(infeasible.length).toBeGreaterThanOrEqual(4);
      for (const a of infeasible) {
        const governed = planned.services.filter(
          (s) => s.managed && alertPoolKey(a) === alertPoolKey(s),
        );
        const floorsBy = a.details['floorsBy'] as { service: string }[];
        expect(floorsBy.map((f) => f.service).sort()).toEqual(governed.map((s) => s.name).sort());
      }
    });
  }
});
