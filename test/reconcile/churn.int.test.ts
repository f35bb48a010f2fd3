import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { StateStore } from '../../src/ports/index.js';
import { type RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { QUICK_POLL_MS } from '../support/fixtures.js';

/**
 * A fleet that changes over weeks, through the emulator and Google's clients: services deleted,
 * pools emptied. What the governor keeps of them in its state store (the firing conditions) must
 * end with them, or it fires for good.
 */

const PROJECT = 'churn-project';
const TOPIC = `projects/${PROJECT}/topics/alerts`;
const RTX = 'nvidia-rtx-pro-6000';
const EU = 'europe-west4';

let emulator: RunningEmulator;
let ports: GooglePorts;

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

async function start(): Promise<void> {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [
            { region: 'us-central1', quota: 4 },
            { region: EU, quota: 2 },
          ],
          services: [
            { name: 'a', region: 'us-central1', maxInstances: 2, demand: 1, gpu: {} },
            // No RTX PRO 6000 quota in the project: Cloud Quotas answers NOT_FOUND for it, so this
            // pool's quota is unknown at every run, a problem that lasts.
            {
              name: 'rtx',
              region: 'us-central1',
              maxInstances: 1,
              demand: 1,
              cpu: '20',
              memory: '80Gi',
              gpu: { accelerator: RTX },
            },
            {
              name: 'rtx-idle',
              region: 'us-central1',
              maxInstances: 1,
              demand: 0,
              cpu: '20',
              memory: '80Gi',
              gpu: { accelerator: RTX },
            },
            // Two services wanting 3 each in a pool of 2: starved, and the pool under pressure.
            { name: 'eu-1', region: EU, maxInstances: 1, demand: 3, gpu: {} },
            { name: 'eu-2', region: EU, maxInstances: 1, demand: 3, gpu: {} },
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

const policyInput = () => ({
  version: 1 as const,
  projects: [PROJECT],
  regions: ['us-central1', EU],
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: TOPIC, renotifyAfter: '1h' },
});
const policy = parsePolicy(policyInput());

function run(store: StateStore, sink: RecordingSink, n: number): Promise<RunReport> {
  return reconcileReport(
    policy,
    { ports, store, sink, clock: () => emulator.now().getTime() },
    { runId: `churn-${n}`, deadlineMs: 30_000, writerId: 'me' },
  );
}

describe('a pool whose last service is deleted', () => {
  it('resolves its conditions once, even while another pool has a problem that lasts', async () => {
    await start();
    const store = createMemoryStateStore();
    const sink = new RecordingSink();
    expect((await run(store, sink, 1)).outcome).toBe('ok');
    const inEu = (status: string) =>
      sink.delivered
        .filter((a) => a.region === EU && a.status === status)
        .map((a) => a.dedupKey)
        .sort();
    const fired = inEu('firing');
    expect(fired).toEqual(
      expect.arrayContaining([
        `pool.pressure:${PROJECT}/${EU}/nvidia-l4/zonal`,
        `service.starved:${PROJECT}/${EU}/nvidia-l4/zonal:eu-1`,
      ]),
    );

    emulator.deleteService({ project: PROJECT, region: EU, service: 'eu-1' });
    emulator.deleteService({ project: PROJECT, region: EU, service: 'eu-2' });
    emulator.advance(5 * 60_000);
    sink.delivered.length = 0;
    const second = await run(store, sink, 2);
    expect(second.outcome).toBe('ok');
    // The RTX pool's quota is still unknown: the project is not judged whole.
    expect(second.problems.map((p) => p.subject)).toEqual(['quota']);
    expect(inEu('resolved')).toEqual(fired);
    const kept = Object.keys((await store.loadConditions(PROJECT)).state);
    expect(kept.filter((k) => k.includes(EU))).toEqual([]);
    // The pool of unknown quota keeps its own, as it did.
    expect(kept).toContain(`governor.degraded:${PROJECT}/us-central1/${RTX}/zonal:quota`);

    // And once: the next run has nothing more to say about the pool that is gone.
    emulator.advance(5 * 60_000);
    sink.delivered.length = 0;
    await run(store, sink, 3);
    expect(sink.delivered.filter((a) => a.region === EU)).toEqual([]);
  });
});

describe('a service deleted from a pool whose quota is unknown', () => {
  it('resolves its own conditions; the pool keeps its', async () => {
    await start();
    const store = createMemoryStateStore();
    const sink = new RecordingSink();
    await run(store, sink, 1);
    const starved = `service.starved:${PROJECT}/us-central1/${RTX}/zonal:rtx`;
    const quota = `governor.degraded:${PROJECT}/us-central1/${RTX}/zonal:quota`;
    const ofRtx = (status: string) =>
      sink.delivered
        .filter((a) => a.service === 'rtx' && a.status === status)
        .map((a) => a.dedupKey)
        .sort();
    const fired = ofRtx('firing');
    expect(fired).toContain(starved);

    emulator.deleteService({ project: PROJECT, region: 'us-central1', service: 'rtx' });
    emulator.advance(5 * 60_000);
    sink.delivered.length = 0;
    const second = await run(store, sink, 2);
    expect(second.problems.map((p) => p.subject)).toEqual(['quota']);
    expect(ofRtx('resolved')).toEqual(fired);
    const kept = Object.keys((await store.loadConditions(PROJECT)).state);
    expect(kept.filter((k) => k.endsWith(':rtx'))).toEqual([]);
    expect(kept).toContain(quota);
  });
});

describe('a governor redeployed under another GOVERNOR_ID', () => {
  it('keeps writing on the same store: its earlier stamps are its own, told by the store id', async () => {
    emulator = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: 'us-central1', quota: 6 }],
            services: [
              { name: 'x', region: 'us-central1', maxInstances: 1, demand: 2, gpu: {} },
              { name: 'y', region: 'us-central1', maxInstances: 1, demand: 0, gpu: {} },
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
    const store = createMemoryStateStore();
    const one = { policy: parsePolicy({ ...policyInput(), regions: ['us-central1'] }) };
    const runAs = (writerId: string, n: number, on: StateStore) =>
      reconcileReport(
        one.policy,
        { ports, store: on, sink: new RecordingSink(), clock: () => emulator.now().getTime() },
        { runId: `redeploy-${n}`, deadlineMs: 30_000, writerId },
      );
    const first = await runAs('gpu-governor', 1, store);
    expect(first.writes.filter((w) => w.cause === 'written').map((w) => w.name)).toContain('x');
    const writer = emulator.state().services.find((s) => s.name === 'x')?.annotations[
      'gpu-governor.dev/writer'
    ];
    expect(writer).toMatch(/^gpu-governor\/gov-[0-9a-f]{12}$/);

    // Redeployed as "gpu-governor-v2" on the same store, a minute later: x needs more again.
    emulator.setDemand({ project: PROJECT, region: 'us-central1', service: 'x', demand: 5 });
    emulator.advance(10 * 60_000);
    const second = await runAs('gpu-governor-v2', 2, store);
    expect(second.writes.map((w) => w.cause)).not.toContain('other-governor');
    expect(second.writes.filter((w) => w.cause === 'written').map((w) => w.name)).toContain('x');
    expect(
      emulator.state().services.find((s) => s.name === 'x')?.annotations['gpu-governor.dev/writer'],
    ).toBe(writer?.replace('gpu-governor/', 'gpu-governor-v2/'));

    // A new store is another governor: the stamps it finds hold the pool, for one lease only.
    // (x idle past its scale-down delay and y refused at its cap: x is due to come down.)
    emulator.setDemand({ project: PROJECT, region: 'us-central1', service: 'x', demand: 0 });
    emulator.setDemand({ project: PROJECT, region: 'us-central1', service: 'y', demand: 3 });
    emulator.advance(40 * 60_000);
    const other = await runAs('gpu-governor-v2', 3, createMemoryStateStore());
    expect(other.writes.length).toBeGreaterThan(0);
    expect(new Set(other.writes.map((w) => w.cause))).toEqual(new Set(['other-governor']));
  });
});
