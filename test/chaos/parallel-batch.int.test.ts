import { status } from '@grpc/grpc-js';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { parsePolicy } from '../../src/core/policy.js';
import { RpcError, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { memoryLogger, type Logger } from '../../src/log.js';
import type { AlertSink, ObservePorts } from '../../src/ports/index.js';
import { type RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The act step's parallel batches under faults, through gRPC and Google's clients: a pool with
 * three decreases and three increases, so that both batches go out together. Part of a batch
 * fails, part times out (and may land later), and the quota is cut between the two phases; after
 * every write the emulator's invariant monitor checks the pool's caps against its quota, and the
 * run must report each write that did not land as what it is.
 */

const PROJECT = 'batch-project';
const REGION = 'us-central1';
const QUOTA = 12;

// 3 × 3 idle GPUs to give back, 3 × 1 saturated services that want 4: 12 of 12 before the run.
const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: QUOTA }],
      services: [
        ...['a', 'b', 'c'].map((n) => ({
          name: `down-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 3,
          demand: 0,
        })),
        ...['a', 'b', 'c'].map((n) => ({
          name: `up-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 1,
          demand: 4,
        })),
      ],
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, min: 1, max: 4 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: `projects/${PROJECT}/topics/alerts`, renotifyAfter: '1h' },
});

let emulator: RunningEmulator;
let ports: ObservePorts & { close(): Promise<void> };
let hook: ((method: string) => RpcError | undefined | Promise<RpcError | undefined>) | null;

async function start(): Promise<void> {
  emulator = await startEmulator({
    fleet,
    speed: 'manual',
    operationDelayMs: 20,
    faults: ({ method }) => hook?.(method.split('/').pop() ?? method) ?? undefined,
  });
  const emulatorHost = emulator.host;
  // One attempt of at most 6 s: a write held longer times out at the client.
  const retry = { maxAttempts: 1, minBackoffMs: 1, maxBackoffMs: 2, attemptTimeoutMs: 6_000 };
  const run = createCloudRunAdapter({
    emulatorHost,
    retry,
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
}

beforeEach(() => {
  hook = null;
});

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

async function run(
  sink: AlertSink = new RecordingSink(),
  log: Logger = memoryLogger(),
): Promise<RunReport> {
  return reconcileReport(
    policy,
    {
      ports,
      sink,
      log,
      clock: () => emulator.now().getTime(),
    },
    { runId: `batch-${Math.random().toString(16).slice(2)}`, deadlineMs: 30_000 },
  );
}

/** The pool's caps in GPUs, now. */
function poolCaps(): number {
  return emulator.state().pools.reduce((a, p) => a + p.capsGpus, 0);
}

function maxOf(name: string): number {
  return emulator.state().services.find((s) => s.name === name)?.maxInstances ?? NaN;
}

/**
 * Every write the emulator accepted left the pool within the quota in force at that write, and
 * within `quota` once the quota was it; no invariant broke.
 */
function expectWithinQuotaAfterEveryWrite(quota: number): void {
  const writes = emulator.writes();
  expect(writes.length).toBeGreaterThan(0);
  for (const w of writes) {
    const atWrite = w.pool?.quota ?? QUOTA;
    expect(w.pool?.capsGpus ?? 0).toBeLessThanOrEqual(atWrite);
    if (atWrite === quota) expect(w.pool?.capsGpus ?? 0).toBeLessThanOrEqual(quota);
  }
  emulator.judgeRaces();
  expect(emulator.violations().violations).toEqual([]);
}

describe('parallel batches under faults, through gRPC', () => {
  it('without faults: the decreases together, then the raises that fit, within the quota', async () => {
    await start();
    const report = await run();
    expect(report.outcome).toBe('ok');
    const decreases = report.writes.filter((w) => w.planned < w.from);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(decreases.map((w) => w.outcome)).toEqual(['written', 'written', 'written']);
    expect(raises.length).toBeGreaterThan(0);
    expect(poolCaps()).toBeLessThanOrEqual(QUOTA);
    expectWithinQuotaAfterEveryWrite(QUOTA);
  });

  it('part of the decrease batch fails and part times out: the raises take only the room that was freed', async () => {
    await start();
    let writes = 0;
    hook = async (name) => {
      if (name !== 'UpdateService') return undefined;
      writes += 1;
      if (writes === 1) return new RpcError(status.INTERNAL, 'injected: the write failed');
      // Held past the client's deadline: the client gives up, the write may still land.
      if (writes === 2) await delay(8_000);
      return undefined;
    };
    const report = await run();
    expect(report.outcome).toBe('failed');
    const decreases = report.writes.filter((w) => w.planned < w.from);
    expect(decreases.filter((w) => w.outcome === 'failed').length).toBeGreaterThanOrEqual(2);
    expect(decreases.filter((w) => w.outcome === 'written')).toHaveLength(1);
    // The failed decrease is still at 3: the raises were sized on the fresh read, which says so.
    expect(['down-a', 'down-b', 'down-c'].map(maxOf)).toContain(3);
    await delay(3_000);
    expect(poolCaps()).toBeLessThanOrEqual(QUOTA);
    expectWithinQuotaAfterEveryWrite(QUOTA);
  });

  it('part of the raise batch fails and part times out: its room stays spent, the pool within quota', async () => {
    await start();
    let writes = 0;
    hook = async (name) => {
      if (name !== 'UpdateService') return undefined;
      writes += 1;
      if (writes === 4) return new RpcError(status.UNAVAILABLE, 'injected: no answer');
      if (writes === 5) await delay(8_000);
      return undefined;
    };
    const report = await run();
    expect(report.outcome).toBe('failed');
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.filter((w) => w.outcome === 'failed').length).toBeGreaterThanOrEqual(2);
    await delay(3_000);
    // Whatever landed late, the raises were within the room of the one fresh read.
    expect(poolCaps()).toBeLessThanOrEqual(QUOTA);
    expectWithinQuotaAfterEveryWrite(QUOTA);
  });

  it('a quota cut between the two phases, after the decreases: the raises fit the cut quota', async () => {
    await start();
    const cut = 8;
    let quotaReads = 0;
    hook = (name) => {
      // The second quota read is the fresh read after the decreases, before the raises.
      if (name === 'GetQuotaInfo' && ++quotaReads === 2)
        emulator.setQuota({ project: PROJECT, region: REGION, quota: cut });
      return undefined;
    };
    const report = await run();
    const decreases = report.writes.filter((w) => w.planned < w.from);
    expect(decreases.map((w) => w.outcome)).toEqual(['written', 'written', 'written']);
    // 6 GPUs held after the decreases: 2 of room under the cut quota, not the 6 planned on 12.
    const raised = report.writes
      .filter((w) => w.planned > w.from && w.outcome === 'written')
      .reduce((a, w) => a + ((w.written ?? w.planned) - w.from), 0);
    expect(raised).toBeLessThanOrEqual(cut - 6);
    expect(
      report.writes.some((w) => w.cause === 'no-room' || (w.written ?? w.planned) < w.planned),
    ).toBe(true);
    expect(poolCaps()).toBeLessThanOrEqual(cut);
    expectWithinQuotaAfterEveryWrite(cut);
  });

  it('a quota cut between the phases and a failed decrease together: the raises fit what is left', async () => {
    await start();
    const cut = 9;
    let writes = 0;
    let quotaReads = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 1)
        return new RpcError(status.INTERNAL, 'injected: the write failed');
      if (name === 'GetQuotaInfo' && ++quotaReads === 2)
        emulator.setQuota({ project: PROJECT, region: REGION, quota: cut });
      return undefined;
    };
    const report = await run();
    expect(report.outcome).toBe('failed');
    // 3 + 1 + 1 held by the decreases, 3 by the saturated services: 1 GPU of room under 9.
    expect(poolCaps()).toBeLessThanOrEqual(cut);
    expectWithinQuotaAfterEveryWrite(cut);
  });
});

describe('the preflight, folded into the rounds of the run', () => {
  it('a topic that cannot be published to stops the run before any write, though it was read beside the observation', async () => {
    await start();
    const denied: AlertSink = {
      publish: () => Promise.reject(new Error('not reached')),
      canPublish: () => Promise.resolve(false),
    };
    const report = await run(denied);
    expect(report.outcome).toBe('failed');
    expect(report.error).toContain('pubsub.topics.publish is not granted');
    expect(report.plan).not.toBeNull();
    expect(emulator.writes()).toEqual([]);
  });

  it("the services' check failing is a warning: the writes go as planned", async () => {
    await start();
    hook = (name) =>
      name === 'TestIamPermissions'
        ? new RpcError(status.INTERNAL, 'injected: cannot test permissions')
        : undefined;
    const log = memoryLogger();
    const report = await run(new RecordingSink(), log);
    expect(report.outcome).toBe('ok');
    expect(report.writes.filter((w) => w.outcome === 'written').length).toBeGreaterThan(3);
    const warnings = log.lines.filter(
      (l) => l.severity === 'WARNING' && l.message.includes(': check error: '),
    );
    // One per service to write, each naming it.
    expect(warnings.length).toBe(report.plan?.changes.length);
    expect(warnings[0]?.message).toMatch(/^service batch-project\/us-central1\/\S+: /);
  });
});
