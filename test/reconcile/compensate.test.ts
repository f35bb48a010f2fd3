import { describe, expect, it } from 'vitest';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { effectiveMax, FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { ConflictError, PermissionError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/log.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { busiestMinute } from '../support/paced-fleet.js';
import { reconcileReport } from '../support/reconcile-run.js';
import type { RunReport } from '../../src/reconcile/reconcile.js';

/**
 * Lowering this run's raises back when the read just after them finds the pool over its quota
 * (another writer in the round trip). Quota 8: `svc-a` (two GPUs an instance) and `svc-b` (one),
 * governed at max 1, svc-a wanting 3; `ext-render` (one GPU, max 1) is not governed. The plan raises
 * svc-a to 3 (6 GPUs), which fills the pool; the other writer acts right after that raise.
 */

const PROJECT = 'lower-back-project';
const REGION = 'us-central1';

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 3 },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: `projects/${PROJECT}/topics/alerts` },
});

const key = (name: string) => ({ project: PROJECT, region: REGION, name });

/** The pool of quota 8; `services` each one GPU by default (svc-a two, wanting 3, and so on). */
function model(
  services: [name: string, gpus: number, demand: number][] = [
    ['svc-a', 2, 3],
    ['svc-b', 1, 1],
    ['ext-render', 1, 0],
  ],
): FleetModel {
  return new FleetModel(
    validateFleet({
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 8 }],
          services: services.map(([name, count, demand]) => ({
            name,
            region: REGION,
            gpu: { count },
            maxInstances: 1,
            demand: { constant: demand },
          })),
        },
      ],
    }),
  );
}

/**
 * A run where `other` acts right after the governor's raise of svc-a lands, and `lowering` may
 * refuse the writes that lower a service (the governor's lowering back).
 */
async function race(
  other: (m: FleetModel) => void,
  lowering?: (name: string) => Error | null,
  services?: Parameters<typeof model>[0],
) {
  const m = model(services);
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  let raced = false;
  const downs: string[] = [];
  const run: CloudRunPort = {
    ...sim.run,
    updateMaxInstances: async (u) => {
      const s = m.getService(u);
      const down = s !== undefined && u.maxInstances < effectiveMax(s);
      if (down) downs.push(u.name);
      const refused = down ? (lowering?.(u.name) ?? null) : null;
      if (refused) throw refused;
      const done = await sim.run.updateMaxInstances(u);
      if (!raced && u.name === 'svc-a' && !down) {
        raced = true;
        other(m);
      }
      return done;
    },
  };
  const sink = new RecordingSink();
  const log = memoryLogger();
  const report = await reconcileReport(
    policy,
    { ports: { ...sim, run }, clock: () => m.now, sink, log },
    { runId: 'lower-back', deadlineMs: 60_000, writerId: 'me' },
  );
  expect(raced).toBe(true);
  const caps = m.pools(PROJECT)[0]?.capsGpus;
  const overAfter = report.alerts.filter(
    (a) => a.type === 'pool.over-budget' && a.details['source'] === 'verify',
  );
  return { m, report, caps, overAfter, downs, log };
}

const maxOf = (m: FleetModel, name: string) => {
  const s = m.getService(key(name));
  return s ? effectiveMax(s) : null;
};

describe('lowering raises back after another writer fills the pool', () => {
  for (const extra of [1, 2])
    it(`over by ${extra} GPU(s): a service of two GPUs an instance comes down by whole instances that free enough`, async () => {
      const { m, report, caps, overAfter } = await race((m) =>
        m.update(key('ext-render'), { maxInstances: 1 + extra }),
      );
      expect(
        report.writes.find((w) => w.name === 'svc-a' && w.cause === 'compensated'),
      ).toMatchObject({
        from: 3,
        written: 2,
      });
      expect(maxOf(m, 'ext-render')).toBe(1 + extra);
      // Within the quota once lowered back, and no alert says it is still over.
      expect(caps).toBeLessThanOrEqual(8);
      expect(overAfter).toEqual([]);
    });

  it('over by 2 with raises of one and of two GPUs an instance: only the last, of two GPUs, comes down, by one instance', async () => {
    // svc-a (one GPU) raised 1 → 3 and svc-b (two GPUs) 1 → 2: the quota of 8 with ext-render.
    // Another writer raises ext-render to 3 right after: one instance of svc-b frees the 2 GPUs.
    const { m, report, caps } = await race(
      (m) => m.update(key('ext-render'), { maxInstances: 3 }),
      undefined,
      [
        ['svc-a', 1, 3],
        ['svc-b', 2, 2],
        ['ext-render', 1, 0],
      ],
    );
    const raised = report.writes.filter((w) => w.cause === 'written' && w.planned > w.from);
    expect(raised.map((w) => [w.name, w.from, w.written])).toEqual([
      ['svc-a', 1, 3],
      ['svc-b', 1, 2],
    ]);
    const back = report.writes.filter((w) => w.cause === 'compensated');
    expect(back.map((w) => [w.name, w.from, w.written])).toEqual([['svc-b', 2, 1]]);
    expect([maxOf(m, 'svc-a'), maxOf(m, 'svc-b')]).toEqual([3, 1]);
    expect(caps).toBe(8);
  });

  it('a pool another writer fills exactly to its quota after the raises is not over: nothing lowered, nothing said', async () => {
    // svc-a raised 1 → 3 (its max); right after, ext-render goes from 1 to 5: 3 + 5 = 8, the quota.
    const { report, caps, overAfter, log } = await race(
      (m) => m.update(key('ext-render'), { maxInstances: 5 }),
      undefined,
      [
        ['svc-a', 1, 3],
        ['ext-render', 1, 0],
      ],
    );
    expect(report.writes.find((w) => w.name === 'svc-a')).toMatchObject({
      from: 1,
      written: 3,
      cause: 'written',
    });
    expect(caps).toBe(8);
    expect(report.writes.filter((w) => w.cause === 'compensated')).toEqual([]);
    expect(overAfter).toEqual([]);
    expect(log.lines.filter((l) => l.message.includes('over its quota'))).toEqual([]);
  });

  it('leaves alone a raised service someone else changed since, even when the pool stays over', async () => {
    const { m, report, caps, overAfter } = await race((m) => {
      m.update(key('svc-a'), { maxInstances: 4 });
      m.update(key('svc-b'), { maxInstances: 4 });
    });
    // Their maxes are the other writer's now, not this run's to lower.
    expect(maxOf(m, 'svc-a')).toBe(4);
    expect(maxOf(m, 'svc-b')).toBe(4);
    expect(report.writes.filter((w) => w.cause === 'compensated')).toEqual([]);
    expect(caps).toBeGreaterThan(8);
    expect(overAfter).toHaveLength(1);
  });

  it('leaves alone a raised service that started deploying since: nothing is written to it', async () => {
    const { m, report, downs, overAfter } = await race((m) => {
      m.update(key('ext-render'), { maxInstances: 4 });
      m.startDeployment(key('svc-a'), 10 * 60_000);
    });
    expect(downs).toEqual([]);
    expect(maxOf(m, 'svc-a')).toBe(3);
    expect(report.writes.filter((w) => w.cause === 'compensated')).toEqual([]);
    expect(overAfter).toHaveLength(1);
  });

  for (const [what, error, cause] of [
    ['denied', new PermissionError('PERMISSION_DENIED: injected'), 'denied'],
    ['conflict', new ConflictError('ABORTED: injected'), 'conflict'],
  ] as const)
    it(`a lowering that is refused (${what}) says so, and the pool is reported still over`, async () => {
      const { report, caps, overAfter } = await race(
        (m) => m.update(key('ext-render'), { maxInstances: 4 }),
        () => error,
      );
      const back = report.writes.filter((w) => w.name === 'svc-a' && w.from === 3);
      expect(back.map((w) => [w.cause, w.written])).toEqual([[cause, null]]);
      expect(caps).toBeGreaterThan(8);
      expect(overAfter).toHaveLength(1);
    });

  it('counts a lowering back under the write quota: the next raise of the region waits a minute after it', async () => {
    // One write a minute; svc-a and svc-b (one GPU each) want 3: two rounds of raises. Right
    // after the first, the other writer fills the pool; once it is lowered back, it empties it
    // again, so the second round has room and writes.
    const m = model([
      ['svc-a', 1, 3],
      ['svc-b', 1, 3],
      ['ext-render', 1, 0],
    ]);
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const starts: number[] = [];
    let raises = 0;
    let lowered = false;
    const run: CloudRunPort = {
      ...sim.run,
      updateMaxInstances: async (u) => {
        starts.push(m.now);
        const s = m.getService(u);
        const down = s !== undefined && u.maxInstances < effectiveMax(s);
        m.advance(1_000);
        const done = await sim.run.updateMaxInstances(u);
        if (!down && ++raises === 1) m.update(key('ext-render'), { maxInstances: 5 });
        if (down && u.name !== 'ext-render' && !lowered) {
          lowered = true;
          m.update(key('ext-render'), { maxInstances: 1 });
        }
        return done;
      },
    };
    const report = await reconcileReport(
      { ...policy, limits: { ...policy.limits, writesPerMinute: 1 } },
      {
        ports: { ...sim, run },
        clock: () => m.now,
        wallClock: () => m.now,
        sleep: async (ms) => m.advance(ms),
      },
      { runId: 'paced-back', deadlineMs: 10 * 60_000, writerId: 'me' },
    );
    expect(lowered).toBe(true);
    expect(report.writes.filter((w) => w.cause === 'compensated')).toHaveLength(1);
    expect(raises).toBe(2);
    // The lowering back does not wait for the quota (it comes a second after the raise), but it
    // spends it: the writes from it on keep to one in any 60 s.
    expect(busiestMinute(starts.slice(1)), `writes started at ${starts.join(', ')}`).toBe(1);
  });
});

describe('lowering raises back counts what else fills the pool by its GPUs an instance', () => {
  // Quota 8: svc-a and svc-b (one GPU each) raised from 1 to 3 on one read, ext-render (two GPUs,
  // not governed) at 1: the quota, once raised. Right after svc-a's raise another writer takes 4
  // more GPUs in instances of two GPUs each (12 on 8): both raises come back. Counted as one GPU
  // an instance, the pool would look over by 2 at most, and svc-a would keep its raise.
  const GPU = { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true };

  async function filledByTwoGpuInstances(
    other: (m: FleetModel) => void,
    listed: (filled: boolean) => Pick<CloudRunPort, 'listWorkerPools' | 'listRunningExecutions'>,
  ) {
    const m = model([
      ['svc-a', 1, 3],
      ['svc-b', 1, 1],
      ['ext-render', 2, 0],
    ]);
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let filled = false;
    const run: CloudRunPort = {
      ...sim.run,
      listWorkerPools: (p, r) => listed(filled).listWorkerPools(p, r),
      listRunningExecutions: (p, r) => listed(filled).listRunningExecutions(p, r),
      updateMaxInstances: async (u) => {
        const s = m.getService(u);
        const up = s !== undefined && u.maxInstances > effectiveMax(s);
        const done = await sim.run.updateMaxInstances(u);
        if (up && u.name === 'svc-a' && !filled) {
          filled = true;
          other(m);
        }
        return done;
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'two-gpu-others', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(filled).toBe(true);
    const raised = report.writes.filter((w) => w.cause === 'written' && w.planned > w.from);
    expect(raised.map((w) => [w.name, w.from, w.written])).toEqual([
      ['svc-a', 1, 3],
      ['svc-b', 1, 3],
    ]);
    const back = report.writes.filter((w) => w.cause === 'compensated');
    return { m, back: back.map((w) => [w.name, w.from, w.written]).sort() };
  }

  const none = <T>(): Promise<T[]> => Promise.resolve([]);

  it('a worker pool started with two instances of two GPUs: both raises come back', async () => {
    const { m, back } = await filledByTwoGpuInstances(
      () => undefined,
      (filled) => ({
        listWorkerPools: async (project, region) =>
          filled ? [{ project, region, name: 'encoder', gpu: GPU, manualInstanceCount: 2 }] : [],
        listRunningExecutions: none,
      }),
    );
    expect(back).toEqual([
      ['svc-a', 3, 1],
      ['svc-b', 3, 1],
    ]);
    expect([maxOf(m, 'svc-a'), maxOf(m, 'svc-b')]).toEqual([1, 1]);
  });

  it('a job execution running two tasks of two GPUs: both raises come back', async () => {
    const { m, back } = await filledByTwoGpuInstances(
      () => undefined,
      (filled) => ({
        listWorkerPools: none,
        listRunningExecutions: async (project, region) =>
          filled
            ? [
                {
                  project,
                  region,
                  job: 'batch',
                  name: 'batch-x1',
                  gpu: GPU,
                  runningTasks: 2,
                  parallelism: 2,
                  taskCount: 2,
                },
              ]
            : [],
      }),
    );
    expect(back).toEqual([
      ['svc-a', 3, 1],
      ['svc-b', 3, 1],
    ]);
    expect([maxOf(m, 'svc-a'), maxOf(m, 'svc-b')]).toEqual([1, 1]);
  });

  it('an unmanaged two-GPU service switched to manual scaling at 3 instances: both raises come back', async () => {
    const { m, back } = await filledByTwoGpuInstances(
      (m) => m.update(key('ext-render'), { scalingMode: 'MANUAL', manualInstanceCount: 3 }),
      () => ({ listWorkerPools: none, listRunningExecutions: none }),
    );
    expect(back).toEqual([
      ['svc-a', 3, 1],
      ['svc-b', 3, 1],
    ]);
    expect([maxOf(m, 'svc-a'), maxOf(m, 'svc-b')]).toEqual([1, 1]);
  });

  it('one worker pool instance of two GPUs: the raise planned last comes back first, and only it', async () => {
    const { m, back } = await filledByTwoGpuInstances(
      () => undefined,
      (filled) => ({
        listWorkerPools: async (project, region) =>
          filled ? [{ project, region, name: 'encoder', gpu: GPU, manualInstanceCount: 1 }] : [],
        listRunningExecutions: none,
      }),
    );
    // Over by 2: svc-b, raised after svc-a in the plan's order, frees them alone.
    expect(back).toEqual([['svc-b', 3, 1]]);
    expect([maxOf(m, 'svc-a'), maxOf(m, 'svc-b')]).toEqual([3, 1]);
  });
});

describe('two governors on different state stores that only raise, started together', () => {
  it('may both raise on the same room; each lowers its own raise back and the pool ends within quota', async () => {
    // Quota 8; svc-a and svc-b (one GPU each) at max 1 want 6. Governor alpha governs svc-a and
    // beta governs svc-b (each policy leaves the other's service unmanaged), so each sees room
    // for 6 and nothing to lower first. Both take their read before the raises before either
    // raise lands: neither has stamped anything the other could see.
    const m = model([
      ['svc-a', 1, 6],
      ['svc-b', 1, 6],
    ]);
    const governing = (name: string) =>
      parsePolicy({
        version: 1,
        projects: [PROJECT],
        regions: [REGION],
        defaults: { headroom: 0, max: 6 },
        services: [
          { match: { name }, managed: true },
          { match: {}, managed: false },
        ],
        limits: { writesPerMinute: 6000 },
      });
    let arrived = 0;
    let bothRead: () => void = () => {};
    const barrier = new Promise<void>((done) => (bothRead = done));
    const peaks: number[] = [];
    const governor = (writerId: string, name: string) => {
      const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
      let lists = 0;
      const run: CloudRunPort = {
        ...sim.run,
        // The second listing is the read before the raises (the first, the observation).
        listServices: async (p, r) => {
          const listed = await sim.run.listServices(p, r);
          if (++lists === 2 && ++arrived === 2) bothRead();
          if (lists === 2) await barrier;
          return listed;
        },
        updateMaxInstances: async (u) => {
          const done = await sim.run.updateMaxInstances(u);
          peaks.push(m.pools(PROJECT)[0]?.capsGpus ?? 0);
          return done;
        },
      };
      return reconcileReport(
        governing(name),
        { ports: { ...sim, run }, clock: () => m.now },
        { runId: `together-${writerId}`, deadlineMs: 60_000, writerId },
      );
    };
    const [alpha, beta] = await Promise.all([
      governor('alpha', 'svc-a'),
      governor('beta', 'svc-b'),
    ]);
    const raised = (r: RunReport, name: string) =>
      r.writes.find((w) => w.name === name && w.planned > w.from)?.cause;
    // Nothing told either of the other: both raised, and for a round trip the pool was over.
    expect(raised(alpha, 'svc-a')).toBe('written');
    expect(raised(beta, 'svc-b')).toBe('written');
    expect(Math.max(...peaks)).toBeGreaterThan(8);
    // The reads just after the raises brought it back within its quota.
    const back = [...alpha.writes, ...beta.writes].filter((w) => w.cause === 'compensated');
    expect(back.length).toBeGreaterThan(0);
    expect(m.pools(PROJECT)[0]?.capsGpus).toBeLessThanOrEqual(8);
  });
});
