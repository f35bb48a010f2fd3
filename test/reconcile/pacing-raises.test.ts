import { describe, expect, it } from 'vitest';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { ConflictError, QuotaRejectedError, UnavailableError } from '../../src/core/errors.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { virtualTime } from '../support/virtual-time.js';
import { busiestMinute } from '../support/paced-fleet.js';

/**
 * A pool's raises take their write slots before the read they are decided on, and go out once it
 * is answered: they start as long after their slots as the read took. They are counted when they
 * start (reconcile/pacing.ts), so a slow read before one round of raises and a quick one before
 * the next never put two rounds in one 60 s.
 */

const PROJECT = 'raise-project';
const REGION = 'us-central1';
const START = Date.parse('2026-11-27T13:00:00Z');

/**
 * One run over `model` at two writes a minute, under virtual time: the times of its writes from
 * START, and its report. `slowReadMs`: the fresh read before the first round of raises takes it.
 */
async function raiseUnderQuota(model: FleetModel, runId: string, slowReadMs = 0) {
  const policy = parsePolicy({
    version: 1,
    projects: [PROJECT],
    regions: [REGION],
    defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
    services: [{ match: {} }],
    limits: { writesPerMinute: 2 },
  });
  const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
  const time = virtualTime(START);
  const writes: number[] = [];
  let reads = 0;
  const run = {
    ...sim.run,
    listServices: async (p: string, r: string) => {
      reads += 1;
      // The fresh read before the first round of raises is slow; the others are quick.
      if (reads === 2 && slowReadMs > 0) await time.sleep(slowReadMs);
      return sim.run.listServices(p, r);
    },
    updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
      writes.push(time.now() - START);
      return sim.run.updateMaxInstances(u);
    },
  };
  const report = await reconcileReport(
    policy,
    { ports: { ...sim, run }, clock: () => model.now, wallClock: time.now, sleep: time.sleep },
    { runId, deadlineMs: 5 * 60_000, writerId: 'me' },
  );
  return { report, writes };
}

describe('raises under the write quota', () => {
  it.each([900, 5_000])(
    'never start more than writesPerMinute in any 60 s when the read before them took %i ms',
    async (slowReadMs) => {
      const busy = ['busy-a', 'busy-b', 'busy-c', 'busy-d'].map((n) => [n, 1, 2] as const);
      const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, 12, busy)));
      const { report, writes } = await raiseUnderQuota(m, 'raises', slowReadMs);
      const raised = report.writes.filter((w) => w.planned > w.from);
      expect(raised.map((w) => w.cause)).toEqual(['written', 'written', 'written', 'written']);
      // Before, the first round went out after the slow read, counted at its slots' time, and
      // the second a minute after those slots: four in 60 s at two a minute.
      expect(busiestMinute(writes), `writes at ${writes.join(', ')}`).toBeLessThanOrEqual(2);
    },
  );

  it('never start more than writesPerMinute in any 60 s when two pools of a region reserve together', async () => {
    // Two pools in one region (zonal redundancy on and off), two raises each, two writes a
    // minute: the second pool's slots come a minute after the first's, and the region's one read
    // waits for both.
    const services = [true, false].flatMap((zonalRedundancy) =>
      [0, 1].map((i) => ({
        name: `busy-${zonalRedundancy ? 'zr' : 'nozr'}-${i}`,
        region: REGION,
        gpu: { zonalRedundancy },
        maxInstances: 1,
        demand: { constant: 2 },
      })),
    );
    const m = new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: [true, false].map((zonalRedundancy) => ({
              region: REGION,
              zonalRedundancy,
              quota: 12,
            })),
            services,
          },
        ],
      }),
    );
    const { report, writes } = await raiseUnderQuota(m, 'pools');
    const raised = report.writes.filter((w) => w.planned > w.from);
    expect(raised.map((w) => w.cause)).toEqual(['written', 'written', 'written', 'written']);
    // Before, the first pool's raises, counted at 0 s, went out at 60 s with the second's.
    expect(busiestMinute(writes), `writes at ${writes.join(', ')}`).toBeLessThanOrEqual(2);
  });
});

describe('raises in rounds against another writer', () => {
  /**
   * Four services at 1 of 2 busy instances, on a quota of 8, at two writes a minute: two rounds;
   * or with `gpus` GPUs an instance on a quota of `quota`.
   */
  function fourRaises(quota = 8, gpus = 1) {
    const busy = ['busy-a', 'busy-b', 'busy-c', 'busy-d'].map((n) => [n, 1, 2] as const);
    const fleet = onePoolFleet(PROJECT, REGION, quota, busy);
    for (const s of fleet.projects[0]?.services ?? []) s.gpu = { count: gpus };
    const m = new FleetModel(validateFleet(fleet));
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      limits: { writesPerMinute: 2 },
    });
    return {
      m,
      policy,
      sim: createSimPorts(m, { lagMs: 3 * 60_000 }),
      time: virtualTime(START),
    };
  }

  type Update = Parameters<CloudRunPort['updateMaxInstances']>[0];
  /**
   * fourRaises(quota, gpus) run once, its first write given no answer (it may still apply);
   * `before(m, n, u)` runs before each later write, the n-th, and may refuse it by throwing. The
   * raises' causes, and `landed()`: the GPUs the pool's caps hold once that write lands after all.
   */
  async function firstUnansweredRun(
    quota: number,
    gpus: number,
    before: (m: FleetModel, n: number, u: Update) => void,
  ) {
    const { m, policy, sim, time } = fourRaises(quota, gpus);
    let held: Update | null = null;
    let writes = 0;
    const run = {
      ...sim.run,
      updateMaxInstances: async (u: Update) => {
        writes += 1;
        if (writes === 1) {
          held = u;
          throw new UnavailableError('UNAVAILABLE: no answer to the update');
        }
        before(m, writes, u);
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now, wallClock: time.now, sleep: time.sleep },
      { runId: `rounds-uncertain-${quota}`, deadlineMs: 5 * 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    return {
      causes: raises.map((w) => w.cause),
      writes: JSON.stringify(report.writes),
      /** The unanswered write reaching Cloud Run after the run: how it was answered, the caps then. */
      landed: async () => {
        if (held === null) throw new Error('no write went unanswered');
        const answer = await sim.run.updateMaxInstances(held).then(
          () => 'applied',
          (e: unknown) => (e instanceof ConflictError ? 'refused as stale' : String(e)),
        );
        return { answer, caps: m.pools(PROJECT)[0]?.capsGpus };
      },
    };
  }

  it('a quota cut just after the first round: its raises come back before the next round waits for slots', async () => {
    // Four raises of one at two writes a minute: two rounds, a minute apart. The quota is cut
    // from 8 to 5 as the first round's second write lands, so the pool holds 6 on a quota of 5.
    const { m, policy, sim, time } = fourRaises();
    const writes: { at: number; name: string; to: number }[] = [];
    const run = {
      ...sim.run,
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        writes.push({ at: time.now() - START, name: u.name, to: u.maxInstances });
        const done = await sim.run.updateMaxInstances(u);
        const key = m.quotaEntries(PROJECT)[0]?.key;
        if (writes.length === 2 && key) m.setQuota(key, 5);
        return done;
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now, wallClock: time.now, sleep: time.sleep },
      { runId: 'rounds-cut', deadlineMs: 5 * 60_000, writerId: 'me' },
    );
    const back = report.writes.filter((w) => w.cause === 'compensated');
    expect(back.length, JSON.stringify(report.writes)).toBeGreaterThan(0);
    const firstRound = writes[1]?.at ?? 0;
    const lowered = writes.find((w, i) => i >= 2 && w.to === 1);
    // Lowered back within about a round trip of the first round, not after the minute the
    // second round waits for its slots (docs/applying.md, "Limits").
    expect(lowered, JSON.stringify(writes)).toBeDefined();
    expect((lowered?.at ?? Infinity) - firstRound, JSON.stringify(writes)).toBeLessThan(30_000);
  });

  it('a lease broken after the first round: the later rounds raise nothing', async () => {
    // Four raises of one at two writes a minute: two rounds. As the first round's second write
    // lands, the lease is broken (governor unlock) and another run takes it: it may be raising
    // on the same room, so the second round must not.
    const { m, policy, sim, time } = fourRaises();
    const store = createMemoryStateStore();
    const written: string[] = [];
    const run = {
      ...sim.run,
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        const n = written.push(u.name);
        const done = await sim.run.updateMaxInstances(u);
        if (n === 2) {
          expect(await store.breakLease(PROJECT)).toBe(true);
          const other = await store.acquireLease(
            PROJECT,
            'other-run',
            60_000,
            new Date(time.now()).toISOString(),
          );
          expect(other.acquired).toBe(true);
        }
        return done;
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        store,
        clock: () => m.now,
        wallClock: time.now,
        leaseClock: time.now,
        sleep: time.sleep,
      },
      { runId: 'rounds-lease', deadlineMs: 5 * 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(
      raises.map((w) => w.cause),
      JSON.stringify(report.writes),
    ).toEqual(['written', 'written', 'other-governor', 'other-governor']);
    expect(written).toHaveLength(2);
    expect(raises[2]?.reason).toContain('other-run');
  });

  it('a raise whose write went unanswered keeps its GPUs spent in the later rounds, and is fenced off', async () => {
    // Four raises of one at two writes a minute, on a quota of 8: two rounds. The first write
    // is not answered (it may still apply); the quota is cut to 7 as the first round ends. The
    // second round has room for one raise beside it, not two: should the unanswered write land
    // later, the pool still fits its quota.
    const { causes, writes, landed } = await firstUnansweredRun(8, 1, (m, n) => {
      if (n === 2) m.setQuota(m.quotaEntries(PROJECT)[0]!.key, 7);
    });
    expect(causes, writes).toEqual(['uncertain', 'written', 'written', 'no-room']);
    // Not shown on the reads after it, it was written back with the etag it was sent with:
    // reaching Cloud Run after all, it is refused, and the pool holds its quota, no more.
    expect(await landed()).toEqual({ answer: 'refused as stale', caps: 6 });
  });

  it('a raise of two GPUs an instance whose write went unanswered keeps all its GPUs spent in the later rounds, a refused one none, and is fenced off', async () => {
    // Four services of two GPUs an instance at 1 of 2 busy instances, on a quota of 16, at two
    // writes a minute: two rounds of four raises of one instance. The first write is not answered
    // (it may still apply); the quota is cut to 13 as the second is sent, which Cloud Run refuses
    // for its quota. The second round reads 8 GPUs held, 5 free, 2 of them the unanswered raise's:
    // room for one raise, not two.
    const { causes, writes, landed } = await firstUnansweredRun(16, 2, (m, n, u) => {
      if (n !== 2) return;
      m.setQuota(m.quotaEntries(PROJECT)[0]!.key, 13);
      throw new QuotaRejectedError(`FAILED_PRECONDITION: ${u.name} does not fit the GPU quota`);
    });
    expect(causes, writes).toEqual(['uncertain', 'failed', 'written', 'no-room']);
    // Written back with the etag it was sent with, the unanswered write is refused should it
    // reach Cloud Run after all: the pool stays within its quota.
    expect(await landed()).toEqual({ answer: 'refused as stale', caps: 10 });
  });

  it('a lease that cannot be read again after the first round: the later rounds raise nothing', async () => {
    // Four raises of one at two writes a minute: two rounds. The lease reads before the first
    // round, then the store stops answering: whether another run took the lease since is unknown,
    // so the second round must not raise on the room it would share with it.
    const { m, policy, sim, time } = fourRaises();
    const base = createMemoryStateStore();
    let reads = 0;
    const store = {
      ...base,
      readLease: async (project: string) => {
        if (++reads > 1) throw new UnavailableError('UNAVAILABLE: the state store did not answer');
        return base.readLease(project);
      },
    };
    const written: string[] = [];
    const run = {
      ...sim.run,
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        written.push(u.name);
        return sim.run.updateMaxInstances(u);
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        store,
        clock: () => m.now,
        wallClock: time.now,
        leaseClock: time.now,
        sleep: time.sleep,
      },
      { runId: 'rounds-lease-unread', deadlineMs: 5 * 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(
      raises.map((w) => w.cause),
      JSON.stringify(report.writes),
    ).toEqual(['written', 'written', 'other-governor', 'other-governor']);
    expect(written).toHaveLength(2);
    expect(raises[2]?.reason).toContain('could not be read before the increases');
  });

  it('a pool still over on the read between rounds, within its quota by the last: no over-budget alert', async () => {
    // Four raises of one at two writes a minute, on a quota of 8: two rounds. As the first
    // round's second raise lands, another writer sets busy-a (raised by this run) to 6: 10 on 8.
    // The read before the second round's wait lowers busy-b back, and the pool stays over by 1
    // with busy-a the other writer's. It then sets busy-a back to 1 before the second round's
    // read: the last read after the raises finds the pool within its quota, so nothing is over.
    const { m, sim, time } = fourRaises();
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
      services: [{ match: {} }],
      limits: { writesPerMinute: 2 },
      alerts: { topic: `projects/${PROJECT}/topics/alerts` },
    });
    const busyA = { project: PROJECT, region: REGION, name: 'busy-a' };
    let writes = 0;
    let lists = 0;
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        // The observation, the first round's read, the read between the rounds, then the second
        // round's read: the other writer takes its change back just before that one.
        if (++lists === 4) m.update(busyA, { maxInstances: 1 });
        return sim.run.listServices(p, r);
      },
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        const done = await sim.run.updateMaxInstances(u);
        if (++writes === 2) m.update(busyA, { maxInstances: 6 });
        return done;
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        clock: () => m.now,
        wallClock: time.now,
        sleep: time.sleep,
        sink: new RecordingSink(),
      },
      { runId: 'rounds-over-between', deadlineMs: 5 * 60_000, writerId: 'me' },
    );
    expect(lists, JSON.stringify(report.writes)).toBeGreaterThanOrEqual(5);
    const back = report.writes.filter((w) => w.cause === 'compensated');
    expect(back.map((w) => [w.name, w.from, w.written])).toEqual([['busy-b', 2, 1]]);
    expect(m.pools(PROJECT)[0]?.capsGpus).toBeLessThanOrEqual(8);
    const over = report.alerts.filter(
      (a) => a.type === 'pool.over-budget' && a.details['source'] === 'verify',
    );
    expect(over).toEqual([]);
  });

  it("raises past a round's write slots are decided on a later read, not judged out of room on this one", async () => {
    // Four raises of one at two writes a minute, on a quota of 8: two rounds. Another writer has
    // the quota at 6 on the first round's read (room for two raises) and back at 8 by the second
    // round's: the last two raises are decided there, and fit.
    const { m, policy, sim, time } = fourRaises();
    let quotaReads = 0;
    const quotas = {
      ...sim.quotas,
      gpuQuota: async (q: Parameters<typeof sim.quotas.gpuQuota>[0]) => {
        quotaReads += 1;
        // The observation, the first round's read, the read between the rounds, the second
        // round's read, the read after it.
        return quotaReads === 2 || quotaReads === 3 ? 6 : sim.quotas.gpuQuota(q);
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, quotas }, clock: () => m.now, wallClock: time.now, sleep: time.sleep },
      { runId: 'rounds-later-read', deadlineMs: 5 * 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(
      raises.map((w) => w.cause),
      JSON.stringify(report.writes),
    ).toEqual(['written', 'written', 'written', 'written']);
    expect(quotaReads).toBeGreaterThanOrEqual(4);
    expect(m.pools(PROJECT)[0]?.capsGpus).toBe(8);
  });

  it('raises whose next round the write quota would hold past the deadline wait for the next run, which the reason names', async () => {
    // Four raises of one at two writes a minute, with 40 s of the run: the first round goes out
    // at once; the second round's slots would come a minute later, past the deadline.
    const { m, policy, sim, time } = fourRaises();
    const report = await reconcileReport(
      policy,
      { ports: sim, clock: () => m.now, wallClock: time.now, sleep: time.sleep },
      { runId: 'rounds-deadline', deadlineMs: 40_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.map((w) => w.cause)).toEqual(['written', 'written', 'deadline', 'deadline']);
    for (const w of raises.slice(2))
      expect(w.reason).toContain(
        "Cloud Run's write quota (limits.writesPerMinute) would have held it past the run deadline",
      );
  });
});
