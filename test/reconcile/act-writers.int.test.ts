import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { status } from '@grpc/grpc-js';
import { RpcError, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { FleetInput } from '../../src/emulator/fleet.js';
import type { RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The act step against other writers of kinds the race suite does not try, through the emulator
 * and Google's clients: what holds the pool's GPUs is counted on the read before the raises and
 * on the read that verifies them as the observation counts it.
 */

const PROJECT = 'writers-project';
const REGION = 'us-central1';
const QUOTA = 12;

// Quota 12; four governed services at max 1 that each want 4; one unmanaged service at max 1;
// one manually scaled service that sets no manual instance count: Cloud Run runs its min
// instances ("Scale to exactly min instances and ignore max instances", ScalingMode.MANUAL).
/** A service as the fleet file describes one. */
type ServiceInput = NonNullable<FleetInput['projects'][number]['services']>[number];

/** A worker pool as the fleet file describes one. */
type WorkerPoolInput = NonNullable<FleetInput['projects'][number]['workerPools']>[number];

const fleet = (extra: ServiceInput[] = [], workerPools: WorkerPoolInput[] = []) => ({
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: QUOTA }],
      services: [
        ...['a', 'b', 'c', 'd'].map((n) => ({
          name: `svc-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 1,
          demand: 4,
        })),
        { name: 'ext-render', region: REGION, gpu: {}, maxInstances: 1, demand: 0 },
        {
          name: 'ext-encoder',
          region: REGION,
          gpu: {},
          scalingMode: 'MANUAL' as const,
          minInstances: 2,
          demand: 0,
        },
        ...extra,
      ],
      workerPools,
    },
  ],
});

const policy: Policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 4 },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 6000 },
});

let emulator: RunningEmulator;
let ports: GooglePorts;
let hook: ((method: string) => RpcError | undefined) | null;

async function start(
  extra: ServiceInput[] = [],
  workerPools: WorkerPoolInput[] = [],
): Promise<void> {
  emulator = await startEmulator({
    fleet: fleet(extra, workerPools),
    speed: 'manual',
    operationDelayMs: 20,
    invariants: {
      unmanaged: [{ name: 'ext-render' }, { name: 'ext-encoder' }, { name: 'ext-split' }],
    },
    faults: ({ method }) => hook?.(method.split('/').pop() ?? method) ?? undefined,
  });
  ports = createGooglePorts({ emulatorHost: emulator.host });
}

beforeEach(() => {
  hook = null;
});

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

/** Another writer's act, done when the run makes its `nth` call of `method` (before it is answered). */
function atCall(method: string, nth: number, act: () => void): void {
  let calls = 0;
  hook = (name) => {
    if (name === method && ++calls === nth) act();
    return undefined;
  };
}

async function run(restore = false): Promise<RunReport> {
  return reconcileReport(
    policy,
    { ports, clock: () => emulator.now().getTime() },
    {
      runId: `writers-${Math.random().toString(16).slice(2)}`,
      deadlineMs: 30_000,
      writerId: 'me',
      ...(restore ? { restore: true } : {}),
    },
  );
}

/** The pool's GPUs as Cloud Run holds them: a manually scaled service at its min instances. */
function held(): number {
  return emulator
    .state()
    .services.filter((s) => s.gpu !== null)
    .reduce(
      (sum, s) =>
        sum + (s.scalingMode === 'MANUAL' ? s.minInstances : s.effectiveMax) * (s.gpu?.count ?? 1),
      0,
    );
}

/** Another writer raises ext-render's max until the pool holds its quota. */
function fillThePool(): void {
  const ext = emulator.state().services.find((s) => s.name === 'ext-render');
  const room = QUOTA - held();
  if (ext && room > 0)
    emulator.edit({ service: 'ext-render', maxInstances: ext.maxInstances + room });
}

describe('act: a manually scaled service that sets no instance count', () => {
  it('is counted at its min instances on the read that verifies the raises: they come back within quota', async () => {
    await start();
    expect(held()).toBe(7);
    // Right after the governor's second raise, another writer fills the pool.
    atCall('UpdateService', 2, fillThePool);
    const report = await run();
    expect(report.writes.filter((w) => w.planned > w.from).length).toBeGreaterThanOrEqual(3);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });
});

describe('act: another writer scales a worker pool of the pool by hand mid-run', () => {
  // ext-batch holds no instance at first; scaled by hand, it holds its count's GPUs at once.
  const batch: WorkerPoolInput = {
    name: 'ext-batch',
    region: REGION,
    gpu: {},
    manualInstanceCount: 0,
  };
  /** The pool's GPUs: the services', and the worker pools' (their manual instance count). */
  const all = () => held() + emulator.state().workerPools.reduce((sum, w) => sum + w.gpus, 0);
  /** Another writer scales ext-batch up until the pool holds its quota. */
  function scaleToFill(): void {
    const now = emulator.state().workerPools.find((w) => w.name === 'ext-batch')?.gpus ?? 0;
    emulator.scaleWorkerPool({ workerPool: 'ext-batch', manualInstanceCount: now + QUOTA - all() });
  }

  it('scaled up just after the first raise, to fill the pool: the raises come back within quota', async () => {
    await start([], [batch]);
    expect(all()).toBe(7);
    atCall('UpdateService', 1, scaleToFill);
    const report = await run();
    expect(emulator.state().workerPools.find((w) => w.name === 'ext-batch')?.gpus).toBe(5);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(all()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('scaled up before the read before the raises: counted there, so no raise takes the pool past its quota', async () => {
    await start([], [batch]);
    atCall('ListWorkerPools', 2, scaleToFill);
    const report = await run();
    expect(emulator.state().workerPools.find((w) => w.name === 'ext-batch')?.gpus).toBe(5);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('no-room');
    expect(all()).toBe(QUOTA);
    expect(emulator.violations().violations).toEqual([]);
  });
});

describe('act: another writer switches a service to manual scaling mid-run', () => {
  it('an unmanaged service switched to manual at 4 instances just after the first raise: the raises come back within quota', async () => {
    await start();
    // Manual scaling is changed without a new revision: no deployment, only a new etag.
    atCall('UpdateService', 1, () =>
      emulator.edit({ service: 'ext-render', scalingMode: 'MANUAL', minInstances: 4 }),
    );
    const report = await run();
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('switched to manual just after the first raise, its worker pools unlistable on the verify read: still counted there', async () => {
    await start();
    // The verify read lists the services but not the worker pools: what those hold comes from
    // the read before the raises, while the services listed show the switch.
    let failing = false;
    let writes = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 1) {
        emulator.edit({ service: 'ext-render', scalingMode: 'MANUAL', minInstances: 4 });
        failing = true;
      }
      return failing && name === 'ListWorkerPools'
        ? new RpcError(status.INTERNAL, 'injected: the worker pools cannot be listed')
        : undefined;
    };
    const report = await run();
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('a governed service switched to manual at 6 instances just after its raise: the other raises come back within quota', async () => {
    await start();
    // Between the raises and the read that verifies them (the run's third listing): svc-a, raised,
    // now runs 6 instances whatever its max says, so it is no longer one of the pool's caps.
    atCall('ListServices', 3, () =>
      emulator.edit({
        service: 'svc-a',
        scalingMode: 'MANUAL',
        minInstances: 1,
        manualInstanceCount: 6,
      }),
    );
    const report = await run();
    const raised = report.writes.filter((w) => w.cause === 'written' && w.planned > w.from);
    expect(raised.map((w) => w.name)).toContain('svc-a');
    expect(raised.length).toBeGreaterThan(1);
    // svc-a is not the governor's to lower any more; every other raise comes back.
    const back = report.writes.filter((w) => w.cause === 'compensated');
    expect(back.map((w) => w.name).sort()).toEqual(
      raised
        .map((w) => w.name)
        .filter((n) => n !== 'svc-a')
        .sort(),
    );
    // The pool's caps as Cloud Run holds them: svc-a at its 6 manual instances.
    expect(emulator.state().pools.find((p) => p.region === REGION)?.capsGpus).toBeLessThanOrEqual(
      QUOTA,
    );
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('a governed service switched to manual before the read before the raises: not raised, and the reason says why', async () => {
    await start();
    // svc-a to manual scaling at 3 instances just before the governor's second listing (the
    // read before the increases; the first is the observation).
    atCall('ListServices', 2, () =>
      emulator.edit({
        service: 'svc-a',
        scalingMode: 'MANUAL',
        minInstances: 1,
        manualInstanceCount: 3,
      }),
    );
    const report = await run();
    const a = report.writes.find((w) => w.name === 'svc-a');
    expect(a?.outcome).toBe('skipped');
    expect(a?.reason).toContain('manual scaling');
    expect(report.writes.some((w) => w.outcome === 'written')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    expect(emulator.violations().violations).toEqual([]);
  });
});

describe('act: another writer creates or deletes a GPU service in the pool mid-run', () => {
  /** Another writer creates ext-new in the pool at the max that fills it. */
  function createFilling(): void {
    emulator.createService({
      project: PROJECT,
      service: { name: 'ext-new', region: REGION, gpu: {}, maxInstances: QUOTA - held() },
    });
  }

  it('created just after the first raise, at the max that fills the pool: the raises come back within quota', async () => {
    await start();
    atCall('UpdateService', 1, createFilling);
    const report = await run();
    expect(emulator.state().services.some((s) => s.name === 'ext-new')).toBe(true);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('created before the read before the raises: counted there, so no raise takes the pool past its quota', async () => {
    await start();
    atCall('ListServices', 2, createFilling);
    const report = await run();
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('no-room');
    expect(held()).toBe(QUOTA);
    expect(emulator.violations().violations).toEqual([]);
  });

  it('a governed service deleted after the observation: its raise is skipped as gone, the others fit', async () => {
    await start();
    atCall('ListServices', 2, () => emulator.deleteService({ service: 'svc-a' }));
    const report = await run();
    const a = report.writes.find((w) => w.name === 'svc-a');
    expect(a?.cause).toBe('gone');
    expect(report.outcome).toBe('ok');
    expect(report.writes.some((w) => w.name !== 'svc-a' && w.outcome === 'written')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    expect(emulator.violations().violations).toEqual([]);
  });
});

describe('act: another writer scales a worker pool split onto a revision of the pool mid-run', () => {
  // ext-split-pool's template is in the pool without zonal redundancy; an older revision of its
  // instance split, with zonal redundancy, draws on this pool. It holds no instance at first.
  const split: WorkerPoolInput = {
    name: 'ext-split-pool',
    region: REGION,
    gpu: { zonalRedundancy: false },
    manualInstanceCount: 0,
    previousRevision: { percent: 50, gpu: {} },
  };
  const key = { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true };
  /** This pool's GPUs as Cloud Run holds them: the services', and the older revision's instances. */
  const all = () => held() + (emulator.model.pool(key)?.workerPoolGpus ?? 0);
  /** Another writer scales ext-split-pool up until its older revision fills the pool. */
  function scaleToFill(): void {
    const room = QUOTA - all();
    emulator.scaleWorkerPool({ workerPool: 'ext-split-pool', manualInstanceCount: 2 * room });
  }

  it('scaled up just after the first raise: counted in this pool on the verify read, the raises come back within quota', async () => {
    await start([], [split]);
    expect(all()).toBe(7);
    atCall('UpdateService', 1, scaleToFill);
    const report = await run();
    expect(emulator.model.pool(key)?.workerPoolGpus).toBeGreaterThan(0);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(all()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('scaled up before the read before the raises: counted there, so no raise takes the pool past its quota', async () => {
    await start([], [split]);
    atCall('ListWorkerPools', 2, scaleToFill);
    const report = await run();
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('no-room');
    expect(all()).toBeLessThanOrEqual(QUOTA);
    expect(emulator.violations().violations).toEqual([]);
  });
});

describe('act: the quota between the reads', () => {
  it('raised after the observation: the raises go no further than planned on the quota observed', async () => {
    await start();
    // Raised just before the read before the raises (the first quota read is the observation's).
    atCall('GetQuotaInfo', 2, () =>
      emulator.setQuota({ project: PROJECT, region: REGION, quota: 40 }),
    );
    const report = await run();
    for (const w of report.writes) expect(w.written ?? w.from).toBeLessThanOrEqual(w.planned);
    expect(held()).toBeLessThanOrEqual(QUOTA);
  });

  it('unreadable on the read before the raises: nothing is raised, each says why', async () => {
    await start();
    let reads = 0;
    hook = (name) =>
      name === 'GetQuotaInfo' && ++reads >= 2
        ? new RpcError(status.INTERNAL, 'injected: the quota cannot be read')
        : undefined;
    const report = await run();
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('pool-unreadable');
    expect(emulator.writes()).toEqual([]);
  });

  it('unreadable on the read that verifies the raises, the pool filled meanwhile: verified against the quota read before them', async () => {
    await start();
    let failing = false;
    let writes = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 1) {
        fillThePool();
        failing = true;
      }
      return failing && name === 'GetQuotaInfo'
        ? new RpcError(status.INTERNAL, 'injected: the quota cannot be read')
        : undefined;
    };
    const report = await run();
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });
});

describe('act: another writer splits the traffic of an unmanaged service that sets no service-level max', () => {
  it('to an older revision with a larger max, just before the read before the raises: counted there, no raise past the quota', async () => {
    // ext-split sets only its revision's max (1); its cap is what its serving revisions may run.
    await start([
      { name: 'ext-split', region: REGION, gpu: {}, revisionMaxInstances: 1, demand: 0 },
    ]);
    atCall('ListServices', 2, () =>
      emulator.edit({ service: 'ext-split', previousRevision: { maxInstances: 6, percent: 50 } }),
    );
    const report = await run();
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    // 12 GPUs: ext-render 1, ext-encoder 2 (manual), ext-split 6 + 1 once split, and the
    // governed services at 1 each: no room is left for any raise.
    for (const w of raises) expect(w.cause).toBe('no-room');
    expect(emulator.writes()).toEqual([]);
  });
});

describe('restore: another writer between its reads and its writes', () => {
  /** The governor lowered each governed service from 4 to 1 (its annotation says 4). */
  function lowered(): void {
    for (const n of ['a', 'b', 'c', 'd'])
      emulator.edit({ service: `svc-${n}`, annotations: { 'gpu-governor.dev/original-max': '4' } });
  }

  it('fills the pool just after the first raise back: the restore comes back within quota', async () => {
    await start();
    lowered();
    atCall('UpdateService', 1, fillThePool);
    const report = await run(true);
    expect(report.writes.filter((w) => w.planned > w.from).length).toBeGreaterThan(0);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('lowers the quota before the read before the raises back: no raise past the new quota', async () => {
    await start();
    lowered();
    atCall('ListServices', 2, () =>
      emulator.setQuota({ project: PROJECT, region: REGION, quota: 8 }),
    );
    const report = await run(true);
    expect(emulator.state().pools.find((p) => p.region === REGION)?.quota).toBe(8);
    expect(report.writes.filter((w) => w.planned > w.from).length).toBeGreaterThan(0);
    expect(held()).toBeLessThanOrEqual(8);
    expect(emulator.violations().violations).toEqual([]);
  });

  it('run again after a restore the room cut short: the second goes no further than the room', async () => {
    await start();
    lowered();
    const first = await run(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    const second = await run(true);
    expect(second.writes.filter((w) => w.outcome === 'written' && w.planned > w.from)).toEqual([]);
    expect(first.writes.some((w) => w.outcome === 'written')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    expect(emulator.violations().violations).toEqual([]);
  });
});

/**
 * The hook of the lowering-back tests: the read after the raises (the run's third listing) finds
 * the pool filled `over` GPUs more by another writer (ext-render), and the first write after it,
 * a lowering back, is refused with nothing of it applied. Returns whether it was refused.
 */
function fillThenRefuseFirstLowering(over: number): () => boolean {
  let lists = 0;
  let refused = false;
  hook = (name) => {
    if (name === 'ListServices' && ++lists === 3) {
      const ext = emulator.state().services.find((s) => s.name === 'ext-render');
      if (ext) emulator.edit({ service: 'ext-render', maxInstances: ext.maxInstances + over });
    }
    if (lists >= 3 && name === 'UpdateService' && !refused) {
      refused = true;
      return new RpcError(status.FAILED_PRECONDITION, 'injected: another operation is in flight');
    }
    return undefined;
  };
  return () => refused;
}

describe('act: a lowering back that fails', () => {
  it('another raise of the run comes down in its place: the pool ends within quota', async () => {
    await start();
    // The read after the raises (the run's third listing) finds the pool filled past its quota by
    // another writer; the first lowering back is refused, nothing of it applied.
    const refused = fillThenRefuseFirstLowering(2);
    const report = await run();
    const raised = report.writes.filter((w) => w.cause === 'written' && w.planned > w.from);
    expect(raised.length).toBeGreaterThan(1);
    expect(refused()).toBe(true);
    expect(report.writes.some((w) => w.cause === 'failed' && w.from > w.planned)).toBe(true);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(held()).toBeLessThanOrEqual(QUOTA);
    expect(report.alerts.filter((a) => a.type === 'pool.over-budget')).toEqual([]);
  });
});

describe('act: a lowering back that fails, where the raise before it was lowered only in part', () => {
  it('that raise comes down further in its place: the pool ends within quota', async () => {
    await start();
    // The read after the raises finds the pool 4 over: the last planned raises come back whole,
    // the first only in part. The first lowering back sent is refused, nothing of it applied.
    const refused = fillThenRefuseFirstLowering(4);
    const report = await run();
    expect(refused()).toBe(true);
    expect(report.writes.some((w) => w.cause === 'failed' && w.from > w.planned)).toBe(true);
    // A raise this run lowered in part, lowered again from what it wrote: the pool fits.
    expect(held()).toBeLessThanOrEqual(QUOTA);
    expect(report.alerts.filter((a) => a.type === 'pool.over-budget')).toEqual([]);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });
});
