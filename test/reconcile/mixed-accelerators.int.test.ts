import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
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

describe('a project with two GPU types in one region', () => {
  it('observes, plans and writes one pool per GPU type', async () => {
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
              { region: REGION, accelerator: RTX, quota: 2 },
            ],
            services: [
              { name: 'l4-a', region: REGION, maxInstances: 5, demand: 1, gpu: {} },
              { name: 'l4-b', region: REGION, maxInstances: 5, demand: 1, gpu: {} },
              {
                name: 'rtx-a',
                region: REGION,
                maxInstances: 3,
                demand: 1,
                cpu: '20',
                memory: '80Gi',
                gpu: { accelerator: RTX },
              },
              {
                name: 'rtx-b',
                region: REGION,
                maxInstances: 3,
                demand: 1,
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
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000 },
    });
    const report = await reconcileReport(
      policy,
      { ports, sink: new RecordingSink(), clock: () => emulator.now().getTime() },
      { runId: 'mixed-1', deadlineMs: 30_000, writerId: 'me' },
    );
    expect(report.problems).toEqual([]);
    expect(report.outcome).toBe('ok');
    const pools = (report.plan?.pools ?? []).map((p) => [p.accelerator, p.quota]);
    expect(pools.sort()).toEqual([
      ['nvidia-l4', 6],
      [RTX, 2],
    ]);
    // Each pool's services draw on that pool's quota alone: 10 L4 GPUs were allowed on a quota
    // of 6 and 6 RTX GPUs on a quota of 2; both are brought within their own quota.
    const caps = Object.fromEntries(
      emulator.state().services.map((s) => [s.name, s.maxInstances ?? 0]),
    );
    expect((caps['l4-a'] ?? 0) + (caps['l4-b'] ?? 0)).toBeLessThanOrEqual(6);
    expect((caps['rtx-a'] ?? 0) + (caps['rtx-b'] ?? 0)).toBeLessThanOrEqual(2);
    expect(caps['rtx-a']).toBeGreaterThanOrEqual(1);
    expect(caps['rtx-b']).toBeGreaterThanOrEqual(1);
    expect(caps['l4-a']).toBeGreaterThanOrEqual(1);
    expect(caps['l4-b']).toBeGreaterThanOrEqual(1);
  });
});
