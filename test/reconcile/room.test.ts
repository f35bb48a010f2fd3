import { describe, expect, it } from 'vitest';
import { plan } from '../../src/core/planner.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { observe } from '../../src/observe/observe.js';
import { createPacer } from '../../src/reconcile/pacing.js';
import { otherWriter, roomOf, sameGovernor } from '../../src/reconcile/room.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { onePoolFleet } from '../support/fixtures.js';

/**
 * The room a read of a pool leaves for raises, and the pacer. The first case is the over-quota
 * write `CHAOS_SEED=1686767842 npm run chaos` found (fleet seed 1081505782): a deploying service
 * held at 4 made the pool look infeasible (floors 10 > budget 7), the plan raised svc-z0 to its
 * floor of 2, and the act step allowed raises up to the plan's caps, past the quota. The second is
 * the rule that settles both: floors yield to the quota, so the room is the budget, never the
 * floors' sum (chaos seed 20261127 found svc-z0 raised to its floor of 3 at 10/8 that way, on a
 * branch whose room counted the floors).
 */

const REGION = 'us-central1';
const PROJECT = 'room-project';

/** `m` observed and planned under `under` now: its ports, the observation, the plan and its pool. */
async function planned(m: FleetModel, under: Policy) {
  const ports = createSimPorts(m, { lagMs: 3 * 60_000 });
  const seen = await observe(under, ports, m.now);
  const p = plan(seen.snapshot, under, new Date(m.now).toISOString(), { runId: 'r' });
  const pool = p.pools[0];
  if (!pool) throw new Error('no pool planned');
  return { ports, seen, p, pool };
}

function model(): FleetModel {
  const small = [0, 1, 2, 3, 4].map((i) => [`svc-z${i}`, 1, 0.5] as const);
  return new FleetModel(
    validateFleet(onePoolFleet(PROJECT, REGION, 8, [...small, ['svc-z5', 4, 0.5]])),
  );
}

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  reserve: 1,
  services: [{ match: { name: 'svc-z0' }, min: 2, priority: 10 }, { match: {} }],
});

describe('room for raises on a read of the pool', () => {
  it('a pool infeasible only because of a deploying service gets no raise past its quota', async () => {
    const m = model();
    m.startDeployment({ project: PROJECT, region: REGION, name: 'svc-z5' }, 10 * 60_000);
    const { seen, p, pool } = await planned(m, policy);
    // The planner holds svc-z5 at 4 (deploying) and finds the floors do not fit: floors yield
    // to the quota, so it plans no raise (it used to raise svc-z0 to its floor of 2)...
    expect(pool.status).toBe('infeasible');
    expect(p.changes.filter((c) => c.to > c.from)).toEqual([]);
    expect(p.services.find((r) => r.name === 'svc-z0')?.reason).toContain(
      'the quota comes before floors',
    );
    // ...and the act step, on its own read, finds no room either: the caps (9) are over the
    // budget (8 - 1), whatever the policy's floors (2 + 5 x 1 = 7).
    const room = roomOf(p, pool, { services: seen.services, quota: 8 });
    expect(room.allowed).toBe(7);
    expect(room.governed).toBe(9);
    expect(room.room).toBeLessThan(0);
  });

  it('a pool whose floors alone do not fit its budget: the room never goes past the budget', async () => {
    // Quota 6; svc-z0 takes 2 GPUs an instance and has a floor of 3: floors 6 + 1 + 1 = 8 > 6.
    const m = new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: 6 }],
            services: ['svc-z0', 'svc-z1', 'svc-z2'].map((name) => ({
              name,
              region: REGION,
              gpu: { count: name === 'svc-z0' ? 2 : 1 },
              maxInstances: 1,
              demand: { constant: 1 },
            })),
          },
        ],
      }),
    );
    const strict = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: { name: 'svc-z0' }, min: 3, priority: 10 }, { match: {} }],
    });
    const { seen, p, pool } = await planned(m, strict);
    expect(pool.status).toBe('infeasible');
    const room = roomOf(p, pool, { services: seen.services, quota: 6 });
    // The caps (2 + 1 + 1) leave 2 GPUs of the quota: svc-z0 may get one more instance, not two.
    expect(room.allowed).toBe(6);
    expect(room.room).toBe(2);
  });

  it('counts what worker pools and unmanaged services hold once, whether the read lists them or the plan does', async () => {
    // Quota 12, reserve 1. svc-z5 (cap 4) is unmanaged; a worker pool runs 2 one-GPU instances.
    // Budget for the governed caps: 12 - 1 - 4 - 2 = 5; they hold 5 x 1 now: no room.
    const m = new FleetModel(
      validateFleet(
        onePoolFleet(
          PROJECT,
          REGION,
          12,
          [0, 1, 2, 3, 4, 5].map((i) => [`svc-z${i}`, i === 5 ? 4 : 1, 0.5] as const),
          { workerPools: [{ name: 'encoder', region: REGION, gpu: {}, manualInstanceCount: 2 }] },
        ),
      ),
    );
    const some = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      reserve: 1,
      services: [{ match: { name: 'svc-z[0-4]' } }],
    });
    const { ports, seen, p, pool } = await planned(m, some);
    expect(p.services.find((r) => r.name === 'svc-z5')?.managed).toBe(false);
    const workerPools = await ports.run.listWorkerPools(PROJECT, REGION);
    const listed = { workerPools, executions: [] };
    // A read that lists the worker pools counts their GPUs...
    expect(roomOf(p, pool, { services: seen.services, quota: 12, others: listed })).toEqual({
      allowed: 5,
      governed: 5,
      room: 0,
    });
    // ...one that does not takes them from the plan, without counting the unmanaged cap twice
    // (the plan's unmanaged GPUs hold it too, and the read counts it from the services)...
    expect(roomOf(p, pool, { services: seen.services, quota: 12 }).allowed).toBe(5);
    // ...and a worker pool scaled up to 4 since leaves 2 GPUs fewer for the governed caps.
    const grown = { workerPools: workerPools.map((w) => ({ ...w, manualInstanceCount: 4 })) };
    expect(
      roomOf(p, pool, { services: seen.services, quota: 12, others: { ...listed, ...grown } }).room,
    ).toBe(-2);
  });

  it('counts an unmanaged service of two GPUs an instance once, whether the read lists what else holds the pool or not', async () => {
    // Quota 12: four governed one-GPU services at max 1, and svc-z5 (two GPUs an instance, max 2)
    // not governed. Budget for the governed caps: 12 - 2 x 2 = 8; they hold 4.
    const m = new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: 12 }],
            services: ['svc-z0', 'svc-z1', 'svc-z2', 'svc-z3', 'svc-z5'].map((name) => ({
              name,
              region: REGION,
              gpu: { count: name === 'svc-z5' ? 2 : 1 },
              maxInstances: name === 'svc-z5' ? 2 : 1,
              demand: { constant: 0.5 },
            })),
          },
        ],
      }),
    );
    const some = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: { name: 'svc-z[0-4]' } }],
    });
    const { seen, p, pool } = await planned(m, some);
    expect(p.services.find((r) => r.name === 'svc-z5')?.managed).toBe(false);
    const want = { allowed: 8, governed: 4, room: 4 };
    const listed = { workerPools: [], executions: [] };
    expect(roomOf(p, pool, { services: seen.services, quota: 12, others: listed })).toEqual(want);
    expect(roomOf(p, pool, { services: seen.services, quota: 12 })).toEqual(want);
  });

  it("another governor's stamp counts within the TTL, its own and an old one do not", async () => {
    const m = model();
    const stamp = (writer: string, at: string) =>
      m.update(
        { project: PROJECT, region: REGION, name: 'svc-z1' },
        {
          annotations: { 'gpu-governor.dev/writer': writer, 'gpu-governor.dev/written-at': at },
        },
      );
    const { ports, pool } = await planned(m, policy);
    const now = m.now;
    const read = async () => ({
      services: await ports.run.listServices(PROJECT, REGION),
      quota: 8,
    });
    stamp('other', new Date(now - 60_000).toISOString());
    expect(otherWriter(pool, await read(), 'me', now, 120_000)?.writer).toBe('other');
    expect(otherWriter(pool, await read(), 'other', now, 120_000)).toBeNull();
    stamp('other', new Date(now - 10 * 60_000).toISOString());
    expect(otherWriter(pool, await read(), 'me', now, 120_000)).toBeNull();
    // Governors are told apart by their store's id: two names on one store are one governor, one
    // name on two stores (two state directories on one machine) are two.
    stamp('function:gpu-governor/gov-aaaaaaaaaaaa', new Date(now - 60_000).toISOString());
    expect(otherWriter(pool, await read(), 'cli:ann@laptop/gov-aaaaaaaaaaaa', now, 120_000)).toBe(
      null,
    );
    stamp('cli:ann@laptop/gov-bbbbbbbbbbbb', new Date(now - 60_000).toISOString());
    expect(
      otherWriter(pool, await read(), 'cli:ann@laptop/gov-aaaaaaaaaaaa', now, 120_000)?.writer,
    ).toBe('cli:ann@laptop/gov-bbbbbbbbbbbb');
  });

  it('names the latest of several fresh stamps of other governors, and whether it is ahead of the clock', async () => {
    const m = model();
    const { ports, pool } = await planned(m, policy);
    const now = m.now;
    const stamp = (name: string, writer: string, at: number) =>
      m.update(
        { project: PROJECT, region: REGION, name },
        {
          annotations: {
            'gpu-governor.dev/writer': writer,
            'gpu-governor.dev/written-at': new Date(at).toISOString(),
          },
        },
      );
    const read = async () => ({
      services: await ports.run.listServices(PROJECT, REGION),
      quota: 8,
    });
    // Two governors wrote within the TTL; the one that wrote last is named.
    stamp('svc-z1', 'early', now - 60_000);
    stamp('svc-z2', 'late', now - 30_000);
    expect(otherWriter(pool, await read(), 'me', now, 120_000)).toMatchObject({
      writer: 'late',
      service: 'svc-z2',
      ahead: false,
    });
    // A stamp ten minutes ahead of this clock is the latest: the hold lasts until its time.
    stamp('svc-z3', 'ahead', now + 10 * 60_000);
    expect(otherWriter(pool, await read(), 'me', now, 120_000)).toMatchObject({
      writer: 'ahead',
      ahead: true,
    });
  });

  it('tells governors apart by the store id of their stamps', () => {
    expect(sameGovernor('a/gov-0123456789ab', 'b/gov-0123456789ab')).toBe(true);
    expect(sameGovernor('a/gov-0123456789ab', 'a/gov-ba9876543210')).toBe(false);
    expect(sameGovernor('me', 'me')).toBe(true);
    expect(sameGovernor('me', 'me/gov-0123456789ab')).toBe(false);
  });
});

describe('pacing under a per-minute write quota', () => {
  it('lets a burst within the quota go at once, and spaces the rest a minute after', async () => {
    let t = 0;
    const slept: number[] = [];
    const pacer = createPacer(
      3,
      () => t,
      async (ms) => {
        slept.push(ms);
        t += ms;
      },
    );
    for (let i = 0; i < 3; i++) expect(await pacer.slot('r1', Infinity)).toBe(0);
    expect(slept).toEqual([]);
    // Another region has its own quota.
    expect(await pacer.slot('r2', Infinity)).toBe(0);
    expect(slept).toEqual([]);
    // The fourth write of r1 waits until the first is a minute old; not past the deadline given:
    // then it takes nothing and waits for nothing.
    t = 10_000;
    expect(await pacer.slot('r1', 59_999)).toBeNull();
    expect(slept).toEqual([]);
    expect(await pacer.slot('r1', 60_000)).toBe(60_000);
    expect(slept).toEqual([50_000]);
  });
  it('lets a write that waited for its place past its slot start only within the quota', async () => {
    let t = 0;
    // Booking does not move this clock: the slots are handed out at once, as to writes that then
    // wait for their times outside the gate.
    const pacer = createPacer(
      2,
      () => t,
      async () => {},
    );
    const booked = [];
    for (let i = 0; i < 4; i++) booked.push(await pacer.slot('r1', Infinity));
    expect(booked).toEqual([0, 0, 60_000, 60_000]);
    // On time, or a timer's moment late: it starts on its slot.
    t = 500;
    expect(pacer.start('r1', 0)).toBe(true);
    // It waited for a place until 55 s: with the two booked at 60 s, three would start within a
    // minute. It gives its slot back and takes another, after them.
    t = 55_000;
    expect(pacer.start('r1', 0)).toBe(false);
    expect(await pacer.slot('r1', Infinity)).toBe(120_000);
    // Late, with room in the minute around it: it starts now, its slot moved to now.
    const other = createPacer(
      2,
      () => t,
      async () => {},
    );
    t = 0;
    await other.slot('r2', Infinity);
    await other.slot('r2', Infinity);
    t = 30_000;
    expect(other.start('r2', 0)).toBe(true);
    // The slots of r2 are now at 0 and 30 s: the next is free at 60 s.
    expect(await other.slot('r2', Infinity)).toBe(60_000);
  });
  it('reserves several slots at once, before a read: they start together, within the quota', async () => {
    let t = 0;
    const slept: number[] = [];
    const pacer = createPacer(
      3,
      () => t,
      async (ms) => {
        slept.push(ms);
        t += ms;
      },
    );
    await pacer.slot('r1', Infinity);
    await pacer.slot('r1', Infinity);
    // One slot is free now; three together start once the first two are a minute old.
    expect(await pacer.reserve('r1', 3, Infinity)).toEqual({ slots: 3, at: 60_000 });
    expect(slept).toEqual([60_000]);
    // Never more than a minute's quota at once, and nothing when the start would pass the limit.
    expect((await pacer.reserve('r2', 5, Infinity)).slots).toBe(3);
    expect((await pacer.reserve('r2', 1, t + 30_000)).slots).toBe(0);
    expect(slept).toEqual([60_000]);
    // take: a slot now, counted, without waiting (a compensation must not wait for the quota).
    pacer.take('r3');
    pacer.take('r3');
    pacer.take('r3');
    expect((await pacer.reserve('r3', 1, t + 30_000)).slots).toBe(0);
  });
});
