import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { type RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * A floor the quota cannot hold, through the emulator and Google's clients. Cloud Run refuses a
 * max instances whose GPUs exceed the regional quota ("Max instances must be set to N or fewer
 * ... Quota violated") and one below the service's min instances, so the governor plans neither:
 * a policy's floor above the quota yields to it, and a service whose own min instances need more
 * than the quota is left as it is. Before, both planned a write Cloud Run refused, every run.
 */

const PROJECT = 'floors-project';
const REGION = 'us-central1';
const TOPIC = `projects/${PROJECT}/topics/alerts`;

let emulator: RunningEmulator;
let ports: GooglePorts;

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

async function start(
  quota: number,
  services: { name: string; maxInstances: number; minInstances?: number; demand: number }[],
): Promise<void> {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota }],
          services: services.map((s) => ({ ...s, region: REGION, gpu: {} })),
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 20,
  });
  ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
}

async function run(
  policy: ReturnType<typeof parsePolicy>,
  sink: RecordingSink,
): Promise<RunReport> {
  return reconcileReport(
    policy,
    {
      ports,
      sink,
      clock: () => emulator.now().getTime(),
    },
    {
      runId: `floors-${Math.random().toString(16).slice(2)}`,
      deadlineMs: 30_000,
      writerId: 'me',
    },
  );
}

const caps = () =>
  Object.fromEntries(emulator.state().services.map((s) => [s.name, s.maxInstances]));

describe('floors the quota cannot hold', () => {
  it("lowers a cap to the quota's ceiling, not to a policy floor Cloud Run would refuse", async () => {
    // svc-a was deployed at max 6 on a quota of 8; the policy asks every service for at least 5.
    await start(8, [
      { name: 'svc-a', maxInstances: 6, demand: 1 },
      { name: 'svc-b', maxInstances: 1, demand: 1 },
    ]);
    // Another actor: the quota is cut to 4 before the run (a quota decrease takes effect at once).
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 4 });
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      defaults: { min: 5 },
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
      alerts: { topic: TOPIC },
    });
    const sink = new RecordingSink();
    const report = await run(policy, sink);
    // Before, the floor won: svc-a was planned 6 → 5, which Cloud Run refuses on a quota of 4.
    expect(report.writes.filter((w) => w.outcome === 'failed')).toEqual([]);
    expect(report.outcome).toBe('ok');
    for (const r of report.plan?.services ?? [])
      expect(r.why?.floorAboveCeiling).toEqual({ floor: 5, ceiling: 4, wins: 'quota' });
    expect(caps()).toEqual({ 'svc-a': 4, 'svc-b': 1 });
    // Floors of 4 each do not fit a quota of 4: the pool is infeasible, and says so.
    expect(report.plan?.pools[0]?.status).toBe('infeasible');
    expect(sink.delivered.some((a) => a.type === 'pool.infeasible')).toBe(true);
  });

  it('leaves a service whose own min instances need more than the quota as it is', async () => {
    // pinned keeps 3 min instances; another actor cuts the quota to 2 after it was deployed at 5.
    await start(8, [
      { name: 'pinned', maxInstances: 5, minInstances: 3, demand: 3 },
      { name: 'other', maxInstances: 1, demand: 1 },
    ]);
    emulator.setQuota({ project: PROJECT, region: REGION, quota: 2 });
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
      alerts: { topic: TOPIC },
    });
    const sink = new RecordingSink();
    const report = await run(policy, sink);
    const pinned = report.plan?.services.find((s) => s.name === 'pinned');
    expect(pinned?.why?.basis).toEqual({ kind: 'unwritable' });
    expect(pinned?.reason).toContain('Cloud Run refuses any max instances for it');
    expect(report.plan?.changes.map((c) => c.name)).not.toContain('pinned');
    // No write Cloud Run refuses: the run does not fail, and pool.infeasible tells the operator.
    // Before, the floor won: pinned was planned 5 → 3, which Cloud Run refuses on a quota of 2.
    expect(report.writes.filter((w) => w.outcome === 'failed')).toEqual([]);
    expect(report.outcome).toBe('ok');
    expect(caps().pinned).toBe(5);
    expect(report.plan?.pools[0]?.status).toBe('infeasible');
    expect(sink.delivered.some((a) => a.type === 'pool.infeasible')).toBe(true);
  });
});
