import { afterEach, describe, expect, it } from 'vitest';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { createMonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { ObservePorts } from '../../src/ports/index.js';
import { leaseTtlMs } from '../../src/reconcile/lease.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A run over the emulator whose wall clock steps back 10 minutes after its first read, and
 * another governor on the same state store, on a clock that did not step: at each of the run's
 * calls to Cloud Run it asks for the run's lease, and, should it get it, writes the pool too (it
 * raises `ext-render`, not governed by the run). The run's lease was stamped before the step, so
 * it ends for that other governor at the run's start + deadline + 60 s of real time. A run that
 * counted its deadline on its wall clock wrote on for 10 more minutes, past that: two writers at
 * once. On the time elapsed it makes no call after its deadline, and the other governor never
 * gets the lease while it runs.
 *
 * Time here is virtual (`elapsedClock`, moved by the pacer's waits): one write a minute, a
 * deadline of 90 s, so the other governor may take the lease from 150 s on. idle-a to idle-e
 * (4, unused) are lowered to the policy's max of 2.
 */

const PROJECT = 'lease-clock-project';
const REGION = 'us-central1';
const START = Date.parse('2026-11-27T13:00:00Z');
const DEADLINE_MS = 90_000;

const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 22 }],
      services: [
        ...['a', 'b', 'c', 'd', 'e'].map((n) => ({
          name: `idle-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 4,
          demand: 0,
        })),
        { name: 'ext-render', region: REGION, gpu: {}, maxInstances: 0, demand: 0 },
      ],
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 2, scaleDownDelay: '0s' },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 1 },
});

let emulator: RunningEmulator;
let ports: ObservePorts & { close(): Promise<void> };

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

describe('the run deadline and the lease, on a wall clock that steps back', () => {
  it('makes no call after start + deadline of real time, and no other governor gets the lease meanwhile', async () => {
    const store = createMemoryStateStore();
    let t = START;
    let wallOffset = 0;
    /** Each call of the run to Cloud Run, at its real (virtual) time. */
    const calls: { method: string; at: number }[] = [];
    /** What the other governor got when it asked for the lease at each of those calls. */
    const asked: boolean[] = [];
    emulator = await startEmulator({
      fleet,
      speed: 'manual',
      operationDelayMs: 5,
      faults: async ({ method }) => {
        if (!method.includes('run.v2.Services/')) return undefined;
        calls.push({ method, at: t });
        const other = await store.acquireLease(
          PROJECT,
          'gpu-governor/other/run-b@elsewhere:1',
          leaseTtlMs({ deadlineMs: DEADLINE_MS }),
          new Date(t).toISOString(),
        );
        asked.push(other.acquired);
        // Holding the lease, the other governor writes the pool: here ext-render takes 2 GPUs.
        if (other.acquired) emulator.edit({ service: 'ext-render', maxInstances: 2 });
        // The wall clock steps back once the run has started, before it takes its write slots.
        if (wallOffset === 0) wallOffset = -600_000;
        return undefined;
      },
    });
    const emulatorHost = emulator.host;
    const run = createCloudRunAdapter({
      emulatorHost,
      operationPolling: { initialDelayMs: 5, maxDelayMs: 20, timeoutMs: 10_000 },
    });
    const monitoring = createMonitoringAdapter({ emulatorHost });
    const quotas = createQuotaAdapter({ emulatorHost });
    ports = {
      run,
      monitoring,
      quotas,
      close: async () => {
        await Promise.allSettled([run.close(), monitoring.close(), quotas.close()]);
      },
    };
    const report = await reconcileReport(
      policy,
      {
        ports,
        store,
        clock: () => emulator.now().getTime(),
        wallClock: () => t + wallOffset,
        elapsedClock: () => t,
        // Waits overlap, as timers do: each wakes in the order of its time (a millisecond of
        // real time per virtual second), and the clock moves to it.
        sleep: async (ms) => {
          const at = t + ms;
          await new Promise((wake) => setTimeout(wake, (at - START) / 1000));
          t = Math.max(t, at);
        },
      },
      { runId: 'stepped-back', deadlineMs: DEADLINE_MS, writerId: 'me' },
    );
    expect(wallOffset).toBe(-600_000);
    const writes = calls.filter((c) => c.method.endsWith('/UpdateService'));
    expect(writes.length).toBeGreaterThan(0);
    expect(
      Math.max(...calls.map((c) => c.at)) - START,
      calls.map((c) => `${c.method.split('/').pop()}@${c.at - START}`).join(', '),
    ).toBeLessThanOrEqual(DEADLINE_MS);
    expect(asked.every((a) => !a)).toBe(true);
    // What the deadline left out is said so, for the next run.
    expect(report.writes.some((w) => w.cause === 'deadline')).toBe(true);
    expect(emulator.violations().violations).toEqual([]);
  });
});
