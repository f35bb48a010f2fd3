import { afterEach, describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../../src/observe/annotations.js';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { status } from '@grpc/grpc-js';
import { RpcError, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { ObservePorts } from '../../src/ports/index.js';
import type { RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { waitUntil } from '../support/wait.js';

/**
 * A raise whose UpdateService the governor gives up on (no answer within its deadline) but that
 * Cloud Run takes only later, after the read that verifies the raises: DEADLINE_EXCEEDED "may be
 * returned even if the operation has completed successfully" (google/rpc/code.proto), and Google
 * does not say how late such a request may still apply. Meanwhile another writer filled the pool
 * with the room the raise was decided on, so the raise, landing late, takes the pool over its
 * quota unless the run fenced it off.
 *
 * Quota 12: svc-a wants 4 at max 1; svc-b, svc-c, svc-d are held at 1 by the policy; ext-render
 * (not governed) at max 1. The plan raises svc-a to 4, its one change.
 */

const PROJECT = 'late-project';
const REGION = 'us-central1';
const QUOTA = 12;

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
        ...(['a', 'b', 'c', 'd'] as const).map((n) => ({
          name: `svc-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 1,
          demand: n === 'a' ? 4 : 1,
        })),
        { name: 'ext-render', region: REGION, gpu: {}, maxInstances: 1, demand: 0 },
      ],
    },
  ],
};

const policy: Policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 4 },
  services: [
    { match: { name: 'ext-*' }, managed: false },
    { match: { name: 'svc-a' } },
    // The others are held at 1: svc-a's is the one raise.
    { match: {}, max: 1 },
  ],
  limits: { writesPerMinute: 6000 },
});

let emulator: RunningEmulator;
let ports: ObservePorts & { close(): Promise<void> };

/** Lets the held UpdateService through to Cloud Run's handler. */
let release: () => void = () => {};

/**
 * `fill`: another writer fills the pool in the round trip of svc-a's raise. `blind`: from svc-a's
 * raise on, the region's services cannot be listed (the read that verifies the raise fails).
 * `meddle` (with `blind`): the raise lands before that read, and another writer then changes svc-a.
 */
async function start(fill: boolean, blind = false, meddle = false): Promise<void> {
  let held = false;
  let meddled = false;
  const gate = new Promise<void>((resolve) => (release = resolve));
  emulator = await startEmulator({
    fleet,
    speed: 'manual',
    operationDelayMs: 20,
    invariants: { unmanaged: [{ name: 'ext-render' }] },
    faults: async ({ method, request }) => {
      const name = (request as { service?: { name?: string } }).service?.name ?? '';
      if (blind && held && method.endsWith('/ListServices')) {
        if (meddle && !meddled) {
          // Before the read that verifies it fails: the raise lands, then another writer
          // changes svc-a (to 2, a new etag).
          meddled = true;
          release();
          await waitUntil('the raise to land', heldAnswer, (code) => code !== 'PENDING');
          emulator.edit({ service: 'svc-a', maxInstances: 2 });
        }
        return new RpcError(status.UNAVAILABLE, 'injected: the services cannot be listed');
      }
      if (held || !method.endsWith('/UpdateService') || !name.endsWith('/services/svc-a'))
        return undefined;
      held = true;
      // The other writer, in the round trip of the raise: ext-render takes the room svc-a's raise
      // was decided on (the pool holds 5 GPUs: to 12 with ext-render at 8).
      if (fill) emulator.edit({ service: 'ext-render', maxInstances: 8 });
      // The request reaches Cloud Run's handler only once the test lets it: the governor's call
      // has long timed out by then.
      await gate;
      return undefined;
    },
  });
  const emulatorHost = emulator.host;
  // One attempt of at most 10 s: the held write times out at the client. The bound is every
  // Cloud Run call's, not the held write's alone: at 1.5 s, the run's first ListServices (a new
  // channel) took 2.3 s on 2 busy cores, the region went unobserved and the run planned nothing.
  const retry = { maxAttempts: 1, minBackoffMs: 1, maxBackoffMs: 2, attemptTimeoutMs: 10_000 };
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

afterEach(async () => {
  release();
  await ports.close();
  await emulator.stop();
});

async function run(): Promise<RunReport> {
  return reconcileReport(
    policy,
    { ports, clock: () => emulator.now().getTime() },
    { runId: `late-${Math.random().toString(16).slice(2)}`, deadlineMs: 30_000, writerId: 'me' },
  );
}

/** The pool's caps in GPUs, now. */
function poolCaps(): number {
  return emulator.state().pools.reduce((a, p) => a + p.capsGpus, 0);
}

/** What Cloud Run answered the held UpdateService of svc-a (`PENDING` until it did). */
function heldAnswer(): string {
  const first = emulator
    .calls()
    .find(
      (c) =>
        c.method.endsWith('/UpdateService') &&
        JSON.stringify(c.request).includes('/services/svc-a'),
    );
  return first?.code ?? 'PENDING';
}

/** The run is over: the request it gave up on reaches Cloud Run now. */
async function landLate(): Promise<string> {
  release();
  return waitUntil(
    'the held UpdateService of svc-a to be answered',
    heldAnswer,
    (code) => code !== 'PENDING',
  );
}

describe('act: a raise Cloud Run takes only after the read that verifies it', () => {
  it('is fenced off on that read: landing late, it cannot take the pool over its quota', async () => {
    await start(true);
    const report = await run();
    const raise = report.writes.find((w) => w.name === 'svc-a' && w.planned > w.from);
    expect(raise).toMatchObject({ from: 1, planned: 4, outcome: 'failed', cause: 'uncertain' });
    // Counted as if it applied, the pool is 3 GPUs over: the raise is lowered back whole, to the
    // max svc-a still has, with the etag the raise was sent with.
    expect(report.writes.find((w) => w.cause === 'compensated')).toMatchObject({
      name: 'svc-a',
      from: 4,
      written: 1,
    });
    // So the raise, reaching Cloud Run late, is refused for its stale etag.
    expect(await landLate()).toBe('ABORTED');
    expect(poolCaps()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
    // The other writer's change stands: only the governor's own raise was undone.
    expect(emulator.state().services.find((s) => s.name === 'ext-render')?.maxInstances).toBe(8);
  });

  it('is fenced off where the pool had room for it too: another writer filling the pool after that read does not meet it landing', async () => {
    await start(false);
    const report = await run();
    expect(report.writes.find((w) => w.name === 'svc-a' && w.planned > w.from)).toMatchObject({
      cause: 'uncertain',
    });
    // Not shown on the read after the raises, it is written back to the max svc-a has, with the
    // etag it was sent with, though the pool had room for it: fenced off, no cap changed.
    expect(report.writes.find((w) => w.cause === 'fenced')).toMatchObject({
      name: 'svc-a',
      from: 4,
      written: 1,
    });
    expect(report.writes.filter((w) => w.cause === 'compensated')).toEqual([]);
    // Its cap never moved, so it is not stamped as lowered: the reverse delay (rule 8) holds no
    // later raise of svc-a for it.
    const a = () => emulator.state().services.find((s) => s.name === 'svc-a');
    expect(Object.keys(a()?.annotations ?? {})).not.toContain(ANNOTATIONS.lastLowered);
    // Another writer takes the pool's room once the run is over, as it may at any time.
    emulator.edit({ service: 'ext-render', maxInstances: 8 });
    // The raise reaching Cloud Run only now is refused for its stale etag: it cannot land on it.
    expect(await landLate()).toBe('ABORTED');
    expect(a()?.maxInstances).toBe(1);
    expect(poolCaps()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('is fenced off when the read after it fails: landing late, it cannot meet another writer there', async () => {
    await start(false, true);
    const report = await run();
    expect(report.writes.find((w) => w.name === 'svc-a' && w.planned > w.from)).toMatchObject({
      cause: 'uncertain',
    });
    // The pool could not be read again: whether it stayed within its quota is unknown (alerted),
    // but the raise that got no answer is written back all the same, to the max svc-a had on the
    // read the raise was decided on, with the etag it was sent with.
    expect(report.alerts.some((a) => a.details.reason === 'unverified')).toBe(true);
    expect(report.writes.find((w) => w.cause === 'fenced')).toMatchObject({
      name: 'svc-a',
      from: 4,
      written: 1,
    });
    // Another writer takes the pool's room once the run is over, as it may at any time.
    emulator.edit({ service: 'ext-render', maxInstances: 8 });
    // The raise reaching Cloud Run only now is refused for its stale etag.
    expect(await landLate()).toBe('ABORTED');
    expect(emulator.state().services.find((s) => s.name === 'svc-a')?.maxInstances).toBe(1);
    expect(poolCaps()).toBeLessThanOrEqual(QUOTA);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('is not written back over another writer once it has landed, when the read after it fails', async () => {
    await start(false, true, true);
    const report = await run();
    expect(heldAnswer()).toBe('OK');
    // The fence is sent with the etag of the read the raise was decided on, which no longer holds:
    // whether Cloud Run refuses a stale etag its reference does not say (AIP-154 says it should),
    // so the service is read again first, as every write is, and nothing is sent over the change.
    const stale = emulator
      .calls()
      .filter(
        (c) =>
          c.method.endsWith('/UpdateService') &&
          JSON.stringify(c.request).includes('/services/svc-a') &&
          c.code !== 'OK',
      );
    expect(stale).toEqual([]);
    expect(report.writes.filter((w) => w.cause === 'fenced')).toEqual([]);
    expect(emulator.state().services.find((s) => s.name === 'svc-a')?.maxInstances).toBe(2);
    expect(report.alerts.some((a) => a.details.reason === 'unverified')).toBe(true);
  });
});
