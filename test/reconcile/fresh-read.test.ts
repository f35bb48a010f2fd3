import { describe, expect, it } from 'vitest';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { UnavailableError } from '../../src/core/errors.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The read before the raises is fresh for everything that holds the pool's GPUs, not only the
 * services: a GPU job that starts between the observation and that read takes room the raises
 * then do not get. Quota 12; four governed services at max 1 that want 4; a job of four
 * one-GPU tasks starts just before the read.
 */

const PROJECT = 'fresh-project';
const GPU = { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true };
const REGION = 'us-central1';

function model(): FleetModel {
  const services = ['a', 'b', 'c', 'd'].map((n) => [`svc-${n}`, 1, 4] as const);
  const batch = { name: 'batch', region: REGION, gpu: {}, taskCount: 4, parallelism: 4 };
  const executions = [{ startMinute: 5, taskMinutes: 60 }];
  return new FleetModel(
    validateFleet(
      onePoolFleet(PROJECT, REGION, 12, services, { jobs: [{ ...batch, executions }] }),
    ),
  );
}

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 4 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

describe('the read before the raises', () => {
  it('sees a GPU job started since the observation: the raises leave it its GPUs', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run = {
      ...sim.run,
      // The second listing of the region is the read before the raises: the job starts first.
      listServices: (p: string, r: string) => {
        if (++lists === 2) m.advance(6 * 60_000);
        return sim.run.listServices(p, r);
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        clock: () => m.now,
      },
      { runId: 'fresh', deadlineMs: 60_000, writerId: 'me' },
    );
    const pool = m.pools()[0];
    expect(pool?.jobGpus).toBe(4);
    // The plan, made before the job, raised to the whole quota...
    expect(report.plan?.pools[0]?.capsAfter).toBe(12);
    // ...the raises left the job its four GPUs, and said why.
    expect((pool?.capsGpus ?? 0) + (pool?.jobGpus ?? 0)).toBeLessThanOrEqual(12);
    expect(report.writes.some((w) => (w.written ?? 0) < w.planned || w.cause === 'no-room')).toBe(
      true,
    );
  });

  it('sees a worker pool scaled up since the observation: the raises leave it its GPUs', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const encoder = { project: PROJECT, region: REGION, name: 'encoder' };
    const run = {
      ...sim.run,
      // The second listing is the read before the raises: by then another writer has set the
      // worker pool to 4 one-GPU instances (none at the observation).
      listWorkerPools: async (p: string, r: string) => [
        ...(await sim.run.listWorkerPools(p, r)),
        ...(++lists >= 2 ? [{ ...encoder, gpu: GPU, manualInstanceCount: 4 }] : []),
      ],
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'fresh-wp', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(lists).toBeGreaterThanOrEqual(2);
    // The plan, made before the worker pool grew, raised to the whole quota; the writes left the
    // worker pool its four GPUs.
    expect(report.plan?.pools[0]?.capsAfter).toBe(12);
    expect(m.pools()[0]?.capsGpus).toBe(8);
    expect(report.writes.some((w) => (w.written ?? 0) < w.planned || w.cause === 'no-room')).toBe(
      true,
    );
  });

  it('sends a raise refused for the minute again only while it could still be read back', async () => {
    // Each listing of the services takes 5 s: a read and two writes take 15 s here (a write is
    // counted at least as long as a read), so a raise may be sent again (after a 429) only until
    // 15 s before the run deadline. The run's deadline
    // is set so that the first raise starts 50 ms before that point: its resends stop then.
    const attempt = async (deadlineMs: number) => {
      const m = model();
      const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
      const start = m.now;
      let first: { at: number; stopped: boolean } | null = null;
      const run = {
        ...sim.run,
        listServices: (p: string, r: string) => {
          m.advance(5_000);
          return sim.run.listServices(p, r);
        },
        updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
          if (!first) {
            const at = m.now - start;
            const stopped = await new Promise<boolean>((done) => {
              if (u.signal?.aborted) return done(true);
              u.signal?.addEventListener('abort', () => done(true));
              setTimeout(() => done(false), 1_000);
            });
            first = { at, stopped };
          }
          return sim.run.updateMaxInstances(u);
        },
      };
      await reconcileReport(
        policy,
        {
          ports: { ...sim, run },
          clock: () => m.now,
          wallClock: () => m.now,
          sleep: async (ms) => m.advance(ms),
        },
        { runId: 'resend', deadlineMs, writerId: 'me' },
      );
      return first as { at: number; stopped: boolean } | null;
    };
    const probe = await attempt(10 * 60_000);
    if (!probe) throw new Error('no raise was sent');
    const tight = await attempt(probe.at + 15_000 + 50);
    expect(tight?.at).toBe(probe.at);
    expect(tight?.stopped).toBe(true);
    // With the whole run left, the resends are not cut short.
    expect(probe.stopped).toBe(false);
  });

  it('takes a quota raised since the observation as the one planned on: the rise waits a run', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const entry = m.quotaEntries(PROJECT)[0];
    if (!entry) throw new Error('the fleet has no quota entry');
    let lists = 0;
    let reads = 0;
    const run = {
      ...sim.run,
      // Just before the read before the raises, the job starts...
      listServices: (p: string, r: string) => {
        if (++lists === 2) m.advance(6 * 60_000);
        return sim.run.listServices(p, r);
      },
    };
    const quotas = {
      ...sim.quotas,
      // ...and the quota goes up from 12 to 16.
      gpuQuota: (q: Parameters<typeof sim.quotas.gpuQuota>[0]) => {
        if (++reads === 2) m.setQuota(entry.key, 16);
        return sim.quotas.gpuQuota(q);
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run, quotas }, clock: () => m.now },
      { runId: 'raised-quota', deadlineMs: 60_000, writerId: 'me' },
    );
    const pool = m.pools()[0];
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(pool?.quota).toBe(16);
    expect(pool?.jobGpus).toBe(4);
    // The plan was made on 12. The raises leave the job its GPUs within those 12, not within the
    // 16 read since: the room is on the lower of the two (docs/performance.md).
    expect(report.plan?.pools[0]?.capsAfter).toBe(12);
    expect((pool?.capsGpus ?? 0) + (pool?.jobGpus ?? 0)).toBe(12);
  });

  it('raises nothing when the quota read again has no entry for the region any more', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let reads = 0;
    const quotas = {
      ...sim.quotas,
      // The observation reads the quota; the read before the raises finds no entry.
      gpuQuota: async (q: Parameters<typeof sim.quotas.gpuQuota>[0]) =>
        ++reads === 2 ? null : sim.quotas.gpuQuota(q),
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, quotas }, clock: () => m.now },
      { runId: 'no-entry', deadlineMs: 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    // Not read, so held back as unreadable (and alerted as such), not taken as a quota of 0.
    for (const w of raises) {
      expect(w.cause).toBe('pool-unreadable');
      expect(w.reason).toContain('the quota has no entry for the region any more');
    }
    expect(m.listServices().every((s) => s.maxInstances === 1)).toBe(true);
  });

  it('restores no cap above where it is in a pool whose quota is unknown', async () => {
    // svc-a had a max of 4 before the governor first lowered it to 1 (its original-max
    // annotation); the pool's quota has no entry, so its room is unknown and nothing is raised,
    // as in any run (an unknown quota raises nothing).
    const m = model();
    m.update(
      { project: PROJECT, region: REGION, name: 'svc-a' },
      { annotations: { 'gpu-governor.dev/original-max': '4' } },
    );
    const key = m.quotaEntries(PROJECT)[0]?.key;
    if (!key) throw new Error('no quota entry');
    m.setQuota(key, undefined);
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const report = await reconcileReport(
      policy,
      { ports: sim, clock: () => m.now },
      { runId: 'restore-unknown', deadlineMs: 60_000, writerId: 'me', restore: true },
    );
    expect(report.plan?.pools[0]?.quota).toBeNull();
    const raise = report.writes.find((w) => w.name === 'svc-a');
    expect(raise, JSON.stringify(report.writes)).toMatchObject({
      from: 1,
      planned: 4,
      written: null,
      cause: 'no-room',
    });
    expect(m.getService({ project: PROJECT, region: REGION, name: 'svc-a' })?.maxInstances).toBe(1);
  });

  it('raises a service of two GPUs an instance only by whole instances that fit the room', async () => {
    // Quota 8: two services of 2 GPUs an instance at max 1 that want more. A job task of one GPU
    // starts just before the read before the raises, leaving 3 GPUs of room: one instance (2
    // GPUs) fits, a second would take the pool to 9.
    const job = { name: 'batch', region: REGION, gpu: {}, taskCount: 1, parallelism: 1 };
    const m = new FleetModel(
      validateFleet({
        ...onePoolFleet(PROJECT, REGION, 8, [], {
          services: ['svc-a', 'svc-b'].map((name) => ({
            name,
            region: REGION,
            gpu: { count: 2 },
            maxInstances: 1,
            demand: { constant: 4 },
          })),
          jobs: [{ ...job, executions: [{ startMinute: 5, taskMinutes: 60 }] }],
        }),
      }),
    );
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const held: number[] = [];
    const run = {
      ...sim.run,
      listServices: (p: string, r: string) => {
        if (++lists === 2) m.advance(6 * 60_000);
        return sim.run.listServices(p, r);
      },
      updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
        const done = await sim.run.updateMaxInstances(u);
        const pool = m.pools()[0];
        held.push((pool?.capsGpus ?? 0) + (pool?.jobGpus ?? 0));
        return done;
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'two-gpus', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(m.pools()[0]?.jobGpus).toBe(1);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(
      raises.map((w) => [w.name, w.cause, w.written]),
      JSON.stringify(report.writes),
    ).toEqual([
      ['svc-a', 'written', 2],
      ['svc-b', 'no-room', null],
    ]);
    // Not even for a round trip over the quota.
    for (const gpus of held) expect(gpus).toBeLessThanOrEqual(8);
  });

  it('leaves alone a raise whose service another writer changed since the observation', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run = {
      ...sim.run,
      // Just before the read before the raises, another writer changes svc-a (not its max: a
      // new etag) and raises svc-b to 3.
      listServices: (p: string, r: string) => {
        if (++lists === 2) {
          const a = m.findService('svc-a', PROJECT, REGION);
          m.update(a, { annotations: { ...a.annotations, team: 'ml' } });
          m.update(m.findService('svc-b', PROJECT, REGION), { maxInstances: 3 });
        }
        return sim.run.listServices(p, r);
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'changed', deadlineMs: 60_000, writerId: 'me' },
    );
    const cause = (name: string) => report.writes.find((w) => w.name === name)?.cause;
    expect(cause('svc-a')).toBe('etag');
    expect(cause('svc-b')).toBe('etag');
    // What the other writer set stays: the next run plans from it.
    expect(m.findService('svc-a', PROJECT, REGION).maxInstances).toBe(1);
    expect(m.findService('svc-b', PROJECT, REGION).maxInstances).toBe(3);
  });

  it('leaves alone a raise whose max another writer changed, when the service is read without an etag', async () => {
    // A listing whose services carry no etag (read as empty): nothing to compare but the max.
    // Just before the read before the raises, another writer raises svc-b to 3.
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        if (++lists === 2) m.update(m.findService('svc-b', PROJECT, REGION), { maxInstances: 3 });
        return (await sim.run.listServices(p, r)).map((s) => ({ ...s, etag: '' }));
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'changed-no-etag', deadlineMs: 60_000, writerId: 'me' },
    );
    const b = report.writes.find((w) => w.name === 'svc-b');
    expect(b, JSON.stringify(report.writes)).toMatchObject({ from: 1, cause: 'changed' });
    expect(m.findService('svc-b', PROJECT, REGION).maxInstances).toBe(3);
  });

  it('leaves alone a raise whose service another writer moved to another GPU pool or off GPUs, saying which', async () => {
    // Just before the read before the raises, another writer redeploys svc-a on another
    // accelerator and svc-b without a GPU (each a new etag): neither is this pool's any more.
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run = {
      ...sim.run,
      listServices: async (p: string, r: string) => {
        const listed = await sim.run.listServices(p, r);
        if (++lists < 2) return listed;
        return listed.map((s) => {
          if (s.name === 'svc-a' && s.gpu)
            return { ...s, etag: 'moved', gpu: { ...s.gpu, accelerator: 'nvidia-rtx-pro-6000' } };
          if (s.name === 'svc-b') return { ...s, etag: 'no-gpu', gpu: null };
          return s;
        });
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'moved', deadlineMs: 60_000, writerId: 'me' },
    );
    const write = (name: string) => report.writes.find((w) => w.name === name);
    expect(write('svc-a')).toMatchObject({ outcome: 'skipped', cause: 'etag', written: null });
    expect(write('svc-a')?.reason).toContain('it was moved to another GPU pool');
    expect(write('svc-b')).toMatchObject({ outcome: 'skipped', cause: 'etag', written: null });
    expect(write('svc-b')?.reason).toContain('it no longer has a GPU');
    expect(m.findService('svc-a', PROJECT, REGION).maxInstances).toBe(1);
    expect(m.findService('svc-b', PROJECT, REGION).maxInstances).toBe(1);
    // The other two are raised on the same read.
    expect(write('svc-c')?.cause).toBe('written');
    expect(write('svc-d')?.cause).toBe('written');
  });

  it('goes by the quota the policy sets, not one read from Cloud Quotas', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    // Cloud Quotas answers 2 (a stale or wrong entry); the policy sets the pool's quota to 12.
    const quotas = { ...sim.quotas, gpuQuota: async () => 2 };
    const report = await reconcileReport(
      parsePolicy({
        version: 1,
        projects: [PROJECT],
        regions: [REGION],
        pools: [{ region: REGION, quota: 12 }],
        defaults: { headroom: 1, max: 4 },
        services: [{ match: {} }],
        limits: { writesPerMinute: 6000 },
      }),
      { ports: { ...sim, quotas }, clock: () => m.now },
      { runId: 'policy-quota', deadlineMs: 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('written');
    expect(m.pools()[0]?.capsGpus).toBe(report.plan?.pools[0]?.capsAfter);
  });

  it('raises nothing when what else holds the pool cannot be read again', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run = {
      ...sim.run,
      listRunningExecutions: async (p: string, r: string) => {
        if (++lists === 2) throw new UnavailableError('UNAVAILABLE: injected');
        return sim.run.listRunningExecutions(p, r);
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports: { ...sim, run },
        clock: () => m.now,
      },
      { runId: 'blind', deadlineMs: 60_000, writerId: 'me' },
    );
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('pool-unreadable');
    expect(m.listServices().every((s) => s.maxInstances === 1)).toBe(true);
  });

  it('tells the raises it held back, and forgets them once a run can read the pool', async () => {
    const m = model();
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run = {
      ...sim.run,
      listRunningExecutions: async (p: string, r: string) => {
        if (++lists === 2) throw new UnavailableError('UNAVAILABLE: injected');
        return sim.run.listRunningExecutions(p, r);
      },
    };
    const store = createMemoryStateStore();
    const first = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now, store, sink: new RecordingSink() },
      { runId: 'blind', deadlineMs: 60_000, writerId: 'me' },
    );
    // Nothing in the pool was written, so no rebalance.applied carries the skipped raises.
    expect(first.writes.every((w) => w.cause === 'pool-unreadable')).toBe(true);
    expect(first.alerts.some((a) => a.type === 'rebalance.applied')).toBe(false);
    const held = first.alerts.filter(
      (a) => a.type === 'governor.degraded' && a.details['reason'] === 'pool-unreadable',
    );
    expect(held.map((a) => [a.status, a.severity, a.region, a.summary])).toEqual([
      [
        'firing',
        'WARNING',
        REGION,
        `4 raises in ${REGION} nvidia-l4 not made: the pool could not be read again before its increases (UNAVAILABLE: injected): left for the next run`,
      ],
    ]);
    expect(held[0]?.details['services']).toEqual(['svc-a', 'svc-b', 'svc-c', 'svc-d']);
    m.advance(60_000);
    const second = await reconcileReport(
      policy,
      { ports: sim, clock: () => m.now, store, sink: new RecordingSink() },
      { runId: 'sighted', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(second.writes.some((w) => w.cause === 'written')).toBe(true);
    expect(
      second.alerts.filter((a) => a.dedupKey === held[0]?.dedupKey).map((a) => a.status),
    ).toEqual(['resolved']);
  });
});
