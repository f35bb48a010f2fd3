import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { LEDGER_DAYS } from '../../src/core/quota-pressure.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * Weeks of churn on the file store: every day a batch of GPU services is created in one region
 * (a region of its own each day, so pools come and go too), governed, then deleted. What the
 * state file keeps of them must end with them: its size stays flat once the run records it keeps
 * are full and their pressure ledgers hold their 14 days.
 */

const PROJECT = 'churn-state';
const TOPIC = `projects/${PROJECT}/topics/alerts`;
const REGIONS = ['us-central1', 'europe-west4', 'asia-east1'];
const DAYS = 17;
const PER_DAY = 50;
const KEEP_RUNS = 6;

let emulator: RunningEmulator;
let ports: GooglePorts;
let dir: string;

afterEach(async () => {
  await ports.close();
  await emulator.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('a fleet that churns every day', () => {
  it('keeps a state file of bounded size: nothing of the deleted services is left', async () => {
    dir = await mkdtemp(join(tmpdir(), 'governor-churn-'));
    emulator = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: REGIONS.map((region) => ({ region, quota: 40 })),
            services: [
              // One service that stays, so the project always has a pool.
              { name: 'stays', region: 'us-central1', maxInstances: 2, demand: 1, gpu: {} },
              // And one on a GPU type the project has no quota for: Cloud Quotas answers
              // NOT_FOUND at every run, so the project is never judged whole.
              {
                name: 'no-quota',
                region: 'us-central1',
                maxInstances: 1,
                demand: 0,
                cpu: '20',
                memory: '80Gi',
                gpu: { accelerator: 'nvidia-rtx-pro-6000' },
              },
            ],
          },
        ],
      },
      speed: 'manual',
      operationDelayMs: 5,
    });
    ports = createGooglePorts({
      emulatorHost: emulator.host,
      emulatorOperationPollMs: QUICK_POLL_MS,
    });
    const store = createFileStateStore({ dir, keepRuns: KEEP_RUNS });
    const sink = new RecordingSink();
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: REGIONS,
      services: [{ match: {} }],
      limits: { writesPerMinute: 6000, maxChangesPerRun: 200 },
      alerts: { topic: TOPIC, renotifyAfter: '1h' },
    });
    let n = 0;
    const run = async () => {
      const report = await reconcileReport(
        policy,
        { ports, store, sink, clock: () => emulator.now().getTime() },
        { runId: `churn-${++n}`, deadlineMs: 60_000, writerId: 'me' },
      );
      expect(report.outcome).toBe('ok');
    };
    const file = join(dir, `${PROJECT}.json`);
    const sizes: number[] = [];
    for (let day = 0; day < DAYS; day++) {
      const region = REGIONS[day % REGIONS.length] ?? 'us-central1';
      const names = Array.from({ length: PER_DAY }, (_, i) => `d${day}-s${i}`);
      for (const [i, name] of names.entries()) {
        // Every third service wants more than the pool can give it: starved, pool under pressure.
        emulator.createService({
          project: PROJECT,
          service: { name, region, maxInstances: 1, demand: i % 3 === 0 ? 4 : 0, gpu: {} },
        });
      }
      emulator.advance(30 * 60_000);
      await run();
      for (const name of names) emulator.deleteService({ project: PROJECT, region, service: name });
      emulator.advance(23.5 * 3_600_000);
      await run();
      sizes.push((await readFile(file)).length);
      const kept = Object.keys((await store.loadConditions(PROJECT)).state);
      // Nothing of the deleted services, nor of the pools of the other regions, now empty.
      const gone = kept.filter((k) => /:d\d+-s\d+$/.test(k) || /europe-west4|asia-east1/.test(k));
      expect(gone).toEqual([]);
    }
    console.log(`state file bytes after each day: ${sizes.join(', ')}`);
    // The run records kept are full after KEEP_RUNS / 2 days, and the pressure ledger each one
    // carries after LEDGER_DAYS (14 days a pool, core/quota-pressure.ts): from then on the file
    // stays flat, whatever the number of services deleted.
    const full = sizes.slice(LEDGER_DAYS);
    expect(full.length).toBeGreaterThan(1);
    expect(Math.max(...full)).toBeLessThanOrEqual(Math.min(...full) * 1.1);
  }, 300_000);
});
