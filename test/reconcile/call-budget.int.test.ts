import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The calls one run makes, as docs/performance.md ("Google's request quotas") counts them: each
 * region listed once in observation, once for the fresh read before its raises and once to
 * verify them (pages of 100 services), one TestIamPermissions per planned change, one
 * UpdateService per write, no GetService when the caller's read stands in for it. The figures
 * there are what an operator sizes Cloud Run's per-minute read quota by: a change to how a run
 * reads shows here first.
 */

const PROJECT = 'budget-project';
const REGION = 'us-central1';
const SERVICES = 250; // three pages of 100

let emulator: RunningEmulator | undefined;
let ports: GooglePorts | undefined;

afterEach(async () => {
  await ports?.close();
  await emulator?.stop();
});

describe('the calls of one run', () => {
  it('one region of 250 services, 5 decreases and 5 raises: the reads the docs count, and no more', async () => {
    emulator = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 35,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: SERVICES * 3 }],
            services: Array.from({ length: SERVICES }, (_, i) => ({
              name: `svc-${String(i).padStart(3, '0')}`,
              region: REGION,
              gpu: {},
              // 5 above the policy's max come down, 5 saturated at 1 go up, the rest stay at 2.
              maxInstances: i < 5 ? 6 : i < 10 ? 1 : 2,
              demand: i < 5 ? 1 : i < 10 ? 3 : 1,
            })),
          },
        ],
      },
      speed: 'manual',
      operationDelayMs: 0,
      pageSize: 100,
    });
    ports = createGooglePorts({ emulatorHost: emulator.host });
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      defaults: { min: 1, max: 2, headroom: 0 },
      services: [{ match: {} }],
    });
    const running = emulator;
    running.resetCalls();
    const report = await reconcileReport(
      policy,
      {
        ports,
        store: createMemoryStateStore(),
        sink: null,
        clock: () => running.now().getTime(),
      },
      { runId: 'budget', deadlineMs: 60_000, writerId: 'me' },
    );
    const written = report.writes.filter((w) => w.outcome === 'written');
    expect(written.filter((w) => w.planned < w.from)).toHaveLength(5);
    expect(written.filter((w) => w.planned > w.from)).toHaveLength(5);

    const count: Record<string, number> = {};
    for (const c of running.calls()) {
      const method = c.method.split('/').pop() ?? c.method;
      count[method] = (count[method] ?? 0) + 1;
    }
    const pages = Math.ceil(SERVICES / 100);
    // Observation, the fresh read before the raises, the verify read after them.
    expect(count['ListServices']).toBe(3 * pages);
    expect(count['ListWorkerPools']).toBe(3);
    expect(count['ListExecutions']).toBe(3);
    // The policy names its regions: no ListLocations. Every template serves: no GetRevision.
    expect(count['ListLocations']).toBeUndefined();
    expect(count['GetRevision']).toBeUndefined();
    expect(count['TestIamPermissions']).toBe(report.writes.length);
    expect(count['UpdateService']).toBe(written.length);
    expect(count['GetService']).toBeUndefined();
    // Each pool's quota: in observation, and again at the fresh and the verify reads.
    expect(count['GetQuotaInfo']).toBeLessThanOrEqual(3);
    // Monitoring: the four queries of the project (one page each here), and the run's own
    // figures, 200 series a request (about two a service and a few per pool: 3 requests here).
    expect(count['ListTimeSeries']).toBe(4);
    expect(count['CreateTimeSeries']).toBe(3);
  });
});
