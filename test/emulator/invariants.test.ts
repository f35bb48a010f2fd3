import { describe, expect, it } from 'vitest';
import { validateFleet } from '../../src/emulator/fleet.js';
import { applyConcurrentChange } from '../../src/emulator/context.js';
import { InvariantMonitor } from '../../src/emulator/invariants.js';
import { FleetModel } from '../../src/emulator/model.js';

/**
 * The invariant monitor's judgement of a race (a raise another writer took over the quota inside
 * Cloud Run's window): the governor must lower it back once it sees the pool again, unless it
 * may not write the service then (it saw it reconciling: rule 3, hands off).
 */

const KEY = { project: 'race-project', region: 'us-central1', name: 'mine' };

function fleet(): FleetModel {
  return new FleetModel(
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
}

/**
 * A run of the governor: `reads` listings of the region (its observation, then again just before
 * its raise); another writer fills the pool after the last; the governor's raise lands over it.
 */
function raised(reads: number): { model: FleetModel; monitor: InvariantMonitor } {
  const model = fleet();
  const monitor = new InvariantMonitor();
  monitor.configure({ unmanaged: [{ name: 'theirs' }] });
  const pool = model.poolOf(model.getService(KEY)!)!;
  for (let i = 0; i < reads; i++) monitor.listed('race-project', 'us-central1');
  model.update({ ...KEY, name: 'theirs' }, { maxInstances: 3 });
  monitor.otherActed(pool, 'caps');
  model.update(KEY, { maxInstances: 3 });
  monitor.afterWrite(model, KEY, 1, 'now', 1, 3);
  return { model, monitor };
}

const raced = () => raised(2);

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

  it('a raise sent on the run’s first read of the pool is over quota, not a race', () => {
    // Cloud Run's window is one round trip because the pool is read again just before the raises:
    // a raise decided on the observation leaves the decreases and the rest of the run in between.
    const { monitor } = raised(1);
    expect(monitor.races()).toEqual([]);
    expect(monitor.violations().map((v) => v.kind)).toEqual(['over-quota']);
  });

  it('counts the reads of each run apart: a later run’s first read is not a read again', () => {
    const model = fleet();
    const monitor = new InvariantMonitor();
    monitor.configure({ unmanaged: [{ name: 'theirs' }] });
    const pool = model.poolOf(model.getService(KEY)!)!;
    monitor.listed('race-project', 'us-central1');
    monitor.judgeRaces(model);
    monitor.listed('race-project', 'us-central1');
    model.update({ ...KEY, name: 'theirs' }, { maxInstances: 3 });
    monitor.otherActed(pool, 'caps');
    model.update(KEY, { maxInstances: 3 });
    monitor.afterWrite(model, KEY, 1, 'now', 1, 3);
    expect(monitor.violations().map((v) => v.kind)).toEqual(['over-quota']);
  });

  it('a quota cut after the quota was read again is a race; after its only read, an error', () => {
    for (const [reads, races] of [
      [2, 1],
      [1, 0],
    ] as const) {
      const model = fleet();
      const monitor = new InvariantMonitor();
      monitor.configure({ unmanaged: [{ name: 'theirs' }] });
      const pool = model.poolOf(model.getService(KEY)!)!;
      monitor.listed('race-project', 'us-central1');
      monitor.listed('race-project', 'us-central1');
      for (let i = 0; i < reads; i++) monitor.quotaRead(pool);
      model.setQuota(pool, 2);
      monitor.otherActed(pool, 'quota');
      model.update(KEY, { maxInstances: 2 });
      monitor.afterWrite(model, KEY, 1, 'now', 1, 2);
      expect(monitor.races(), `${reads} reads`).toHaveLength(races);
      expect(monitor.violations(), `${reads} reads`).toHaveLength(1 - races);
    }
  });

  it('raises that together take more than the room their read showed are over quota, whoever else wrote since', () => {
    // Quota 4, `mine` 1 and `theirs` 1 as read: room for 2 more GPUs. The governor raises `mine`
    // by 2 (all of it), another writer raises `theirs` by 1, and the governor raises `mine` by 1
    // more on the same read: that GPU was never in the room it read, another writer or not.
    const model = fleet();
    const monitor = new InvariantMonitor();
    monitor.configure({ unmanaged: [{ name: 'theirs' }] });
    const pool = model.poolOf(model.getService(KEY)!)!;
    monitor.listed('race-project', 'us-central1', model);
    monitor.listed('race-project', 'us-central1', model);
    monitor.quotaRead(pool, model);
    model.update(KEY, { maxInstances: 3 });
    expect(monitor.afterWrite(model, KEY, 1, 'now', 1, 3)).toBeNull();
    model.update({ ...KEY, name: 'theirs' }, { maxInstances: 2 });
    monitor.otherActed(pool, 'caps');
    model.update(KEY, { maxInstances: 4 });
    monitor.afterWrite(model, KEY, 2, 'now', 3, 4);
    expect(monitor.races()).toEqual([]);
    expect(monitor.violations().map((v) => [v.kind, v.seq])).toEqual([['over-quota', 2]]);
  });
});

describe('a concurrent change counts as another writer only when it moved a cap', () => {
  const THEIRS = { ...KEY, name: 'theirs' };
  /** The region listed twice (a read again before the raise); `pick` 0.99 picks `theirs`. */
  function listedTwice(): { model: FleetModel; monitor: InvariantMonitor } {
    const model = fleet();
    const monitor = new InvariantMonitor();
    monitor.configure({ unmanaged: [{ name: 'theirs' }] });
    monitor.listed('race-project', 'us-central1');
    monitor.listed('race-project', 'us-central1');
    return { model, monitor };
  }

  it('a max raised by another writer makes a raise over the quota after it a race', () => {
    const { model, monitor } = listedTwice();
    expect(applyConcurrentChange(model, { kind: 'max', pick: 0.99, delta: 1 }, monitor)).toEqual(
      expect.objectContaining(THEIRS),
    );
    expect(model.getService(THEIRS)!.maxInstances).toBe(2);
    model.update(KEY, { maxInstances: 3 });
    monitor.afterWrite(model, KEY, 1, 'now', 1, 3);
    expect(monitor.violations()).toEqual([]);
    expect(monitor.races()).toHaveLength(1);
  });

  it('a max set to what it already was is no change: nothing applied, nothing told', () => {
    const { model, monitor } = listedTwice();
    const generation = model.getService(THEIRS)!.generation;
    // At 1 already: one down stays at 1.
    expect(applyConcurrentChange(model, { kind: 'max', pick: 0.99, delta: -1 }, monitor)).toBe(
      null,
    );
    expect(model.getService(THEIRS)!.generation).toBe(generation);
    model.update(KEY, { maxInstances: 4 });
    monitor.afterWrite(model, KEY, 1, 'now', 1, 4);
    expect(monitor.races()).toEqual([]);
    expect(monitor.violations().map((v) => v.kind)).toEqual(['over-quota']);
  });

  it('an annotation edit or a deployment changes the service but not the room: a raise over the quota after it is over-quota', () => {
    for (const change of [
      { kind: 'annotate', pick: 0.99 },
      { kind: 'deploy', pick: 0.99, seconds: 120 },
    ] as const) {
      const { model, monitor } = listedTwice();
      const generation = model.getService(THEIRS)!.generation;
      expect(applyConcurrentChange(model, change, monitor), change.kind).not.toBe(null);
      expect(model.getService(THEIRS)!.generation, change.kind).toBeGreaterThan(generation);
      model.update(KEY, { maxInstances: 4 });
      monitor.afterWrite(model, KEY, 1, 'now', 1, 4);
      expect(monitor.races(), change.kind).toEqual([]);
      expect(
        monitor.violations().map((v) => v.kind),
        change.kind,
      ).toEqual(['over-quota']);
    }
  });
});
