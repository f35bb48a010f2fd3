import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { type RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * Two GPU types in one project and region, through the emulator and Google's clients: the NVIDIA
 * L4 and the NVIDIA RTX PRO 6000 Blackwell each have their own regional quota
 * (https://cloud.google.com/run/docs/configuring/services/gpu), so each forms its own pool, read,
 * planned and written apart from the other. Neither type's quota may lend room to the other.
 */

const PROJECT = 'mixed-project';
const REGION = 'us-central1';
const RTX = 'nvidia-rtx-pro-6000';

let emulator: RunningEmulator;
let ports: GooglePorts;

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

async function start(rtxQuota: number | undefined, rtxMax: number): Promise<void> {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [
            { region: REGION, quota: 6 },
            ...(rtxQuota === undefined
              ? []
              : [{ region: REGION, accelerator: RTX, quota: rtxQuota }]),
          ],
          services: [
            { name: 'l4-a', region: REGION, maxInstances: 5, demand: 1, gpu: {} },
            { name: 'l4-b', region: REGION, maxInstances: 5, demand: 1, gpu: {} },
            {
              name: 'rtx-a',
              region: REGION,
              maxInstances: rtxMax,
              demand: 3,
              cpu: '20',
              memory: '80Gi',
              gpu: { accelerator: RTX },
            },
            {
              name: 'rtx-b',
              region: REGION,
              maxInstances: rtxMax,
              demand: 3,
              cpu: '20',
              memory: '80Gi',
              gpu: { accelerator: RTX },
            },
          ],
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

async function run(): Promise<RunReport> {
  const policy = parsePolicy({
    version: 1,
    projects: [PROJECT],
    regions: [REGION],
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
  });
  return reconcileReport(
    policy,
    { ports, sink: new RecordingSink(), clock: () => emulator.now().getTime() },
    { runId: `mixed-${Math.random().toString(16).slice(2)}`, deadlineMs: 30_000, writerId: 'me' },
  );
}

const caps = (): Record<string, number> =>
  Object.fromEntries(emulator.state().services.map((s) => [s.name, s.maxInstances ?? 0]));

describe('a project with two GPU types in one region', () => {
  it('observes, plans and writes one pool per GPU type', async () => {
    await start(2, 3);
    const report = await run();
    expect(report.problems).toEqual([]);
    expect(report.outcome).toBe('ok');
    const pools = (report.plan?.pools ?? []).map((p) => [p.accelerator, p.quota]);
    expect(pools.sort()).toEqual([
      ['nvidia-l4', 6],
      [RTX, 2],
    ]);
    // Each pool's services draw on that pool's quota alone: 10 L4 GPUs were allowed on a quota
    // of 6 and 6 RTX GPUs on a quota of 2; both are brought within their own quota.
    const c = caps();
    expect((c['l4-a'] ?? 0) + (c['l4-b'] ?? 0)).toBeLessThanOrEqual(6);
    expect((c['rtx-a'] ?? 0) + (c['rtx-b'] ?? 0)).toBeLessThanOrEqual(2);
    expect(c['rtx-a']).toBeGreaterThanOrEqual(1);
    expect(c['rtx-b']).toBeGreaterThanOrEqual(1);
    expect(c['l4-a']).toBeGreaterThanOrEqual(1);
    expect(c['l4-b']).toBeGreaterThanOrEqual(1);
  });

  it("leaves a type whose quota cannot be read alone, without lending it the other type's room", async () => {
    // No RTX PRO 6000 quota at all: Cloud Quotas answers NOT_FOUND for its quota id. Its two
    // services sit at 1 each under a demand they would like more for; the L4 pool has room.
    await start(undefined, 1);
    const report = await run();
    const problem = report.problems.find((p) => p.pool?.accelerator === RTX);
    expect(problem?.subject).toBe('quota');
    // The quota id the governor derived for this type is named, so an operator can check it
    // against the console and set the pool's quota in the policy meanwhile.
    expect(problem?.error).toContain('NvidiaRtxPro6000GpuAllocPerProjectRegion');
    const rtxPool = report.plan?.pools.find((p) => p.accelerator === RTX);
    expect(rtxPool?.quota).toBeNull();
    const c = caps();
    expect([c['rtx-a'], c['rtx-b']]).toEqual([1, 1]);
    expect(report.writes.filter((w) => w.name.startsWith('rtx-'))).toEqual([]);
  });
});
