import { describe, expect, it } from 'vitest';
import { validateFleet } from '../../src/emulator/fleet.js';
import { InvariantMonitor } from '../../src/emulator/invariants.js';
import { FleetModel } from '../../src/emulator/model.js';

/**
 * The invariant monitor's judgement of a race (a raise another writer took over the quota inside
 * Cloud Run's window): the governor must lower it back once it sees the pool again, unless it
 * may not write the service then (it saw it reconciling: rule 3, hands off).
 */

const KEY = { project: 'race-project', region: 'us-central1', name: 'mine' };

function raced(): { model: FleetModel; monitor: InvariantMonitor } {
  const model = new FleetModel(
    validateFleet({
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 0,
      idleMinutes: 0,
      projects: [
        {
          id: 'race-project',
          pools: [{ region: 'us-central1', quota: 4 }],
          services: [
            { name: 'mine', region: 'us-central1', gpu: {}, maxInstances: 1, demand: 0 },
            { name: 'theirs', region: 'us-central1', gpu: {}, maxInstances: 1, demand: 0 },
          ],
        },
      ],
    }),
  );
  const monitor = new InvariantMonitor();
  monitor.configure({ unmanaged: [{ name: 'theirs' }] });
  const pool = model.poolOf(model.getService(KEY)!)!;
  // The governor reads the pool; another writer fills it; the governor's raise lands over it.
  monitor.listed('race-project', 'us-central1');
  model.update({ ...KEY, name: 'theirs' }, { maxInstances: 3 });
  monitor.otherActed(pool, 'caps');
  model.update(KEY, { maxInstances: 3 });
  monitor.afterWrite(model, KEY, 1, 'now', 1, 3);
  return { model, monitor };
}

describe('the invariant monitor judges races', () => {
  it('a race the governor saw again and did not lower is uncompensated', () => {
    const { model, monitor } = raced();
    expect(monitor.races()).toHaveLength(1);
    monitor.listed('race-project', 'us-central1');
    monitor.saw(KEY, false);
    monitor.judgeRaces(model);
    expect(monitor.violations().map((v) => v.kind)).toEqual(['uncompensated']);
  });

  it('a race whose service the governor then saw reconciling is left to the next run', () => {
    const { model, monitor } = raced();
    monitor.listed('race-project', 'us-central1');
    // Its own update's operation still running: Cloud Run would refuse a write, rule 3 forbids it.
    monitor.saw(KEY, true);
    monitor.judgeRaces(model);
    expect(monitor.violations()).toEqual([]);
  });

  it('a race whose service another writer then switched to manual scaling is not the governor’s', () => {
    // Seen in the chaos runs (CHAOS_SEED=1765000000, fleet 1820240805): after the governor raised
    // `mine`, another writer switched it to manual scaling at the min instances that fill the pool,
    // so the pool stayed over its quota. Its max no longer counts (a MANUAL service runs its manual
    // count or min), and the governor, seeing it MANUAL, may not write it: no violation of its.
    const { model, monitor } = raced();
    model.update(KEY, { scalingMode: 'MANUAL', minInstances: 2, manualInstanceCount: null });
    monitor.listed('race-project', 'us-central1');
    monitor.saw(KEY, false);
    expect(monitor.poolLoad(model, KEY)).toMatchObject({ quota: 4 });
    const load = monitor.poolLoad(model, KEY);
    expect(load && load.quota !== null && load.used + load.reserve > load.quota).toBe(true);
    monitor.judgeRaces(model);
    expect(monitor.violations()).toEqual([]);
  });
});
