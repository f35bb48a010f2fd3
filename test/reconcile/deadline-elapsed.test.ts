import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { leaseTtlMs } from '../../src/reconcile/lease.js';
import { onePoolFleet, twoRaisesFleet, twoRaisesPolicy } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The run deadline is a time elapsed since the run started, not a time of the wall clock. A wall
 * clock that steps back (an NTP step, a clock corrected) would otherwise lengthen the run in real
 * time, past the lease other governors judge on their own clocks; one that jumps forward would
 * end it early and make a read across the jump look slow. The wall clock (`wallClock`) and the
 * time elapsed (`elapsedClock`) are injected apart, as a machine whose clock steps has them.
 */

const PROJECT = 'elapsed-project';
const REGION = 'us-central1';
const START = Date.parse('2026-11-27T13:00:00Z');

/** Two raises and the room for them (fixtures.ts, twoRaisesFleet). */
const raisesFleet = () => new FleetModel(validateFleet(twoRaisesFleet(PROJECT, REGION)));
const RAISES_POLICY = parsePolicy(twoRaisesPolicy(PROJECT, REGION));

describe('the run deadline on the time elapsed', () => {
  it('a wall clock stepping back 10 minutes mid-run: no call after start + deadlineMs of elapsed time', async () => {
    // Two idle services to lower and four busy ones to raise, one write a minute: not all fit in
    // 150 s.
    const busy = ['busy-c', 'busy-d', 'busy-e', 'busy-f'].map((n) => [n, 1, 2] as const);
    const m = new FleetModel(
      validateFleet(
        onePoolFleet(PROJECT, REGION, 12, [['idle-a', 4, 0], ['idle-b', 4, 0], ...busy]),
      ),
    );
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    // Every call the run makes to Cloud Run, at its time elapsed.
    const calls: number[] = [];
    let t = START;
    let wallOffset = 0;
    const deadlineMs = 150_000;
    const store = createMemoryStateStore();
    const at = () => calls.push(t);
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        at();
        return sim.run.listServices(p, r);
      },
      getService: async (...args: Parameters<typeof sim.run.getService>) => {
        at();
        return sim.run.getService(...args);
      },
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        at();
        // Right after the first write the wall clock steps back 10 minutes.
        if (wallOffset === 0) wallOffset = -600_000;
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      parsePolicy({
        version: 1,
        projects: [PROJECT],
        regions: [REGION],
        defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
        services: [{ match: {} }],
        limits: { writesPerMinute: 1 },
      }),
      {
        ports: { ...sim, run },
        store,
        clock: () => m.now,
        wallClock: () => t + wallOffset,
        elapsedClock: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
      { runId: 'stepped-back', deadlineMs, writerId: 'me' },
    );
    expect(wallOffset).toBe(-600_000);
    // Its record ends as long after its start as the run took, not 10 minutes before it.
    const [record] = await store.listRuns(PROJECT);
    expect(record).toMatchObject({
      startedAt: new Date(START).toISOString(),
      finishedAt: new Date(t).toISOString(),
    });
    expect(calls.length).toBeGreaterThan(0);
    expect(Math.max(...calls) - START, calls.map((c) => c - START).join(', ')).toBeLessThanOrEqual(
      deadlineMs,
    );
    const causes = report.writes.map((w) => w.cause);
    // The two decreases fit in the deadline; the raises' slots, a minute apart, would not.
    expect(causes).toEqual(['written', 'written', 'deadline', 'deadline', 'deadline', 'deadline']);
  });

  it('a wall clock jumping 45 s forward during the read before the raises: the raises are made, and lowered back when another writer filled the pool', async () => {
    // Quota 12: idle (4, unused) is lowered, svc-a and svc-b (1, want 4) raised; ext (unmanaged)
    // is another writer's, which fills the pool right after the read the raises are decided on.
    const m = raisesFleet();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const caps = () => m.listServices().reduce((a, s) => a + s.maxInstances, 0);
    let t = START;
    let jumped = 0;
    let wrote = false;
    let filled = false;
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        t += 100;
        const read = await sim.run.listServices(p, r);
        if (wrote && !filled) {
          filled = true;
          // The wall clock jumps while the read is in flight, and another writer raises ext.
          jumped = 45_000;
          const ext = m.findService('ext', PROJECT, REGION);
          m.update(ext, { maxInstances: ext.maxInstances + (12 - caps()) });
        }
        return read;
      },
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        t += 3_000;
        wrote = true;
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      RAISES_POLICY,
      {
        ports: { ...sim, run },
        clock: () => m.now,
        wallClock: () => t + jumped,
        elapsedClock: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
      { runId: 'jumped-forward', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(filled).toBe(true);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.map((w) => w.cause)).toEqual(['written', 'written']);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(caps()).toBeLessThanOrEqual(12);
  });

  it('a wall clock jumping 10 minutes forward past the lease: no write after it, though another governor took the lease', async () => {
    // As above, but the jump takes the wall clock past the lease's expiry: another governor on the
    // same store judges the lease on its own clock, finds it expired and takes it, between this
    // run's reading of its lease and its raises. The run stops at the lease's deadline, not only
    // at its own on the time elapsed.
    const m = raisesFleet();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const store = createMemoryStateStore();
    let t = START;
    let jumped = 0;
    let wrote = false;
    let taken: boolean | null = null;
    const writesAfterJump: string[] = [];
    const deadlineMs = 60_000;
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        t += 100;
        const read = await sim.run.listServices(p, r);
        if (wrote && taken === null) {
          jumped = 600_000;
          const other = await store.acquireLease(
            PROJECT,
            'gpu-governor/other/run-b@elsewhere:1',
            leaseTtlMs({ deadlineMs }),
            new Date(t + jumped).toISOString(),
          );
          taken = other.acquired;
        }
        return read;
      },
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        if (jumped > 0) writesAfterJump.push(u.name);
        t += 3_000;
        wrote = true;
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      RAISES_POLICY,
      {
        ports: { ...sim, run },
        store,
        clock: () => m.now,
        wallClock: () => t + jumped,
        elapsedClock: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
      { runId: 'jumped-past-lease', deadlineMs, writerId: 'me' },
    );
    expect(taken).toBe(true);
    expect(writesAfterJump).toEqual([]);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.map((w) => w.cause)).toEqual(['deadline', 'deadline']);
  });
});
