/**
 * The Cloud Run adapter through the real `@google-cloud/run` clients, over gRPC, against the
 * emulator started here. Every test accounts for every RPC it caused (`expectCalls`), and a test
 * that leaves one unaccounted for fails in `afterEach`.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { clientConfig } from '../../src/adapters/client-config.js';
import { createCloudRunAdapter, toObservedJobExecution } from '../../src/adapters/cloud-run.js';
import type { CloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { translateGrpcError } from '../../src/adapters/grpc-errors.js';
import { MAX_RETRY_INFO_DELAY_MS } from '../../src/adapters/retry.js';
import { effectiveMax } from '../../src/core/pool.js';
import {
  ConflictError,
  InputError,
  NotFoundError,
  PermissionError,
  QuotaRejectedError,
  RateLimitedError,
  RefusedError,
  UnavailableError,
  UpstreamError,
} from '../../src/core/errors.js';
import { RpcError, startEmulator } from '../../src/emulator/index.js';
import type { FleetInput, RunningEmulator } from '../../src/emulator/index.js';
import type { MaxInstancesUpdate } from '../../src/ports/index.js';

const PROJECT = 'adapter-project';
const REGION = 'us-central1';
const EU = 'europe-west4';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: REGION, quota: 8 },
        { region: REGION, zonalRedundancy: false, quota: 2 },
      ],
      services: [
        {
          name: 'alpha',
          region: REGION,
          gpu: {},
          maxInstances: 3,
          minInstances: 1,
          revisionMaxInstances: 5,
          labels: { team: 'search' },
          annotations: { 'team.example.com/owner': 'ml-platform' },
        },
        {
          name: 'beta',
          region: REGION,
          gpu: { count: 2, zonalRedundancy: false },
          maxInstances: 1,
        },
        {
          name: 'gamma',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 4,
          revisionMinInstances: 1,
        },
        {
          name: 'manual',
          region: REGION,
          gpu: {},
          scalingMode: 'MANUAL',
          manualInstanceCount: 2,
        },
        { name: 'web', region: REGION, maxInstances: 10 },
        { name: 'eu-model', region: EU, gpu: { accelerator: 'nvidia-rtx-pro-6000' } },
        {
          // Traffic pinned on a revision of max 8; a newer revision, deployed without traffic,
          // sets 1 in the template.
          name: 'eu-pinned',
          region: EU,
          gpu: {},
          maxInstances: 4,
          revisionMaxInstances: 8,
          noTrafficRevision: { maxInstances: 1 },
        },
      ],
      workerPools: [
        { name: 'encoder', region: REGION, gpu: {}, manualInstanceCount: 1 },
        { name: 'cpu-worker', region: REGION, manualInstanceCount: 2 },
      ],
      jobs: [
        {
          name: 'embed',
          region: REGION,
          gpu: { zonalRedundancy: false },
          taskCount: 4,
          parallelism: 2,
          executions: [
            { startMinute: -200, taskMinutes: 10 }, // completed long ago
            { startMinute: -5, taskMinutes: 30 },
          ],
        },
        { name: 'etl', region: REGION, executions: [{ startMinute: -1 }] },
      ],
    },
  ],
};

/** What the emulator should answer instead of the handler, set by a test and cleared after it. */
let inject: ((method: string) => RpcError | undefined) | undefined;
let emulator: RunningEmulator;
let adapter: CloudRunAdapter;

/** Short waits, so retries and polls keep the file fast; still more than one attempt. */
const quick = {
  retry: { maxAttempts: 3, minBackoffMs: 10, maxBackoffMs: 40, attemptTimeoutMs: 5_000 },
  operationPolling: { initialDelayMs: 40, maxDelayMs: 100, timeoutMs: 10_000 },
};

/** Wall ms an emulated update operation takes. */
const OPERATION_MS = 150;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet,
    speed: 'manual',
    operationDelayMs: OPERATION_MS,
    pageSize: 50,
    faults: ({ method }) => inject?.(method.slice(method.lastIndexOf('/') + 1)),
  });
  adapter = createCloudRunAdapter({ emulatorHost: emulator.host, pageSize: 2, ...quick });
});

afterEach(() => {
  inject = undefined;
  const left = emulator.calls().map((c) => `${short(c.method)} ${c.code}`);
  emulator.resetCalls();
  expect(left, 'RPCs the test did not account for').toEqual([]);
});

afterAll(async () => {
  await adapter?.close();
  await emulator?.stop();
});

function short(method: string): string {
  return method.slice(method.lastIndexOf('/') + 1);
}

/**
 * The RPCs since the last check, as `Method CODE`, with a run of operation polls folded into
 * `GetOperation+` (their number depends on timing); then forgets them.
 */
function expectCalls(expected: string[]): void {
  const seen: string[] = [];
  for (const call of emulator.calls()) {
    const entry = `${short(call.method)} ${call.code}`;
    if (entry === 'GetOperation OK') {
      if (seen.at(-1) !== 'GetOperation+') seen.push('GetOperation+');
    } else {
      seen.push(entry);
    }
  }
  emulator.resetCalls();
  expect(seen).toEqual(expected);
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected a failure, and it succeeded');
}

describe('reading', () => {
  it('lists every page of a region with a deliberate page size', async () => {
    const services = await adapter.listServices(PROJECT, REGION);
    expect(services.map((s) => s.name)).toEqual(['alpha', 'beta', 'gamma', 'manual', 'web']);
    const pages = emulator.calls().map((c) => c.request);
    expect(pages).toHaveLength(3);
    expect(pages.every((r) => (r as { page_size?: number }).page_size === 2)).toBe(true);
    expectCalls(['ListServices OK', 'ListServices OK', 'ListServices OK']);
  });

  it('reads past any number of empty pages: only an empty token ends a list', async () => {
    // "The API may return fewer results than the number requested (including zero results),
    // even if not at the end of the collection" (https://google.aip.dev/158). google-gax's
    // async iterators stop after ten empty pages in a row, as if the list had ended.
    emulator.setFaults({ paging: { emptyRun: 12 } });
    try {
      const services = await adapter.listServices(PROJECT, REGION);
      expect(services.map((s) => s.name)).toEqual(['alpha', 'beta', 'gamma', 'manual', 'web']);
      expect(await adapter.listRegions(PROJECT)).toEqual([EU, REGION]);
      expect((await adapter.listWorkerPools(PROJECT, REGION)).length).toBeGreaterThan(0);
      expect(emulator.faults().injected['empty-page']).toBeGreaterThan(36);
    } finally {
      emulator.setFaults({});
      emulator.resetCalls();
    }
  });

  it('maps GPU and non-GPU services', async () => {
    const byName = new Map((await adapter.listServices(PROJECT, REGION)).map((s) => [s.name, s]));
    expectCalls(['ListServices OK', 'ListServices OK', 'ListServices OK']);

    const alpha = byName.get('alpha');
    expect(alpha).toMatchObject({
      project: PROJECT,
      region: REGION,
      resourceName: `${PARENT}/services/alpha`,
      gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
      labels: { team: 'search' },
      annotations: { 'team.example.com/owner': 'ml-platform' },
      serviceMaxInstances: 3,
      revisionMaxInstances: 5,
      serviceMinInstances: 1,
      revisionMinInstances: null,
      scalingMode: 'AUTOMATIC',
      manualInstanceCount: null,
      reconciling: false,
      generation: 1,
      observedGeneration: 1,
    });
    expect(alpha?.etag).toMatch(/^".+"$/);
    expect(alpha?.updateTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    // create_time: observation counts no Monitoring minute from before it (a deleted namesake's).
    expect(alpha?.createTime).toMatch(/^\d{4}-\d\d-\d\dT/);

    expect(byName.get('beta')).toMatchObject({
      gpu: { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: false },
      serviceMaxInstances: 1,
      revisionMaxInstances: null,
    });
    expect(byName.get('gamma')).toMatchObject({
      serviceMaxInstances: null,
      revisionMaxInstances: 4,
      serviceMinInstances: null,
      revisionMinInstances: 1,
    });
    expect(byName.get('manual')).toMatchObject({ scalingMode: 'MANUAL', manualInstanceCount: 2 });
    expect(byName.get('web')).toMatchObject({
      gpu: null,
      serviceMaxInstances: 10,
      annotations: {},
      labels: {},
    });
  });

  it('gets one service, in another region too', async () => {
    const eu = await adapter.getService(PROJECT, EU, 'eu-model');
    expect(eu).toMatchObject({
      name: 'eu-model',
      region: EU,
      gpu: { accelerator: 'nvidia-rtx-pro-6000', count: 1, zonalRedundancy: true },
      serviceMaxInstances: null,
    });
    expectCalls(['GetService OK']);
  });

  it("does not take the template's max for the serving revision's when traffic is pinned elsewhere", async () => {
    // The template is the latest revision, which a `--no-traffic` deploy leaves without traffic;
    // the revision that serves keeps its own max (8), so the service runs up to its service-level
    // max (4), not the template's 1.
    const pinned = await adapter.getService(PROJECT, EU, 'eu-pinned');
    expectCalls(['GetService OK']);
    expect(pinned).toMatchObject({ serviceMaxInstances: 4, revisionMaxInstances: 1 });
    expect(effectiveMax(pinned)).toBe(4);
    // A service whose traffic goes to its latest revision keeps the template's max.
    const alpha = await adapter.getService(PROJECT, REGION, 'alpha');
    expectCalls(['GetService OK']);
    expect(effectiveMax(alpha)).toBe(3);
    const gamma = await adapter.getService(PROJECT, REGION, 'gamma');
    expectCalls(['GetService OK']);
    expect(effectiveMax(gamma)).toBe(4);
  });

  it('lists worker pools with their GPUs', async () => {
    const pools = await adapter.listWorkerPools(PROJECT, REGION);
    expect(pools).toEqual([
      {
        project: PROJECT,
        region: REGION,
        name: 'encoder',
        gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
        manualInstanceCount: 1,
      },
      { project: PROJECT, region: REGION, name: 'cpu-worker', gpu: null, manualInstanceCount: 2 },
    ]);
    expectCalls(['ListWorkerPools OK']);
  });

  it('lists the running job executions of a region, across its jobs, with their GPUs', async () => {
    const running = await adapter.listRunningExecutions(PROJECT, REGION);
    expect(running).toEqual([
      {
        project: PROJECT,
        region: REGION,
        job: 'embed',
        name: expect.stringMatching(/^embed-[a-z0-9]{5}$/),
        gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: false },
        runningTasks: 2,
        parallelism: 2,
        taskCount: 4,
      },
      {
        project: PROJECT,
        region: REGION,
        job: 'etl',
        name: expect.stringMatching(/^etl-[a-z0-9]{5}$/),
        gpu: null,
        runningTasks: 1,
        parallelism: 1,
        taskCount: 1,
      },
    ]);
    // One listing for every job of the region (`jobs/-`), three executions in pages of two.
    const parents = emulator.calls().map((c) => (c.request as { parent?: string }).parent);
    expect(parents).toEqual([`${PARENT}/jobs/-`, `${PARENT}/jobs/-`]);
    expectCalls(['ListExecutions OK', 'ListExecutions OK']);
  });

  it('counts a job task without the zonal redundancy flag in the pool without it', () => {
    const execution = {
      name: `${PARENT}/jobs/render/executions/render-abcde`,
      job: 'render',
      runningCount: 3,
      parallelism: 3,
      taskCount: 6,
      template: {
        nodeSelector: { accelerator: 'nvidia-l4' },
        containers: [{ resources: { limits: { 'nvidia.com/gpu': '1' } } }],
      },
    };
    expect(toObservedJobExecution(execution, PROJECT, REGION).gpu).toEqual({
      accelerator: 'nvidia-l4',
      count: 1,
      zonalRedundancy: false,
    });
    const zonal = {
      ...execution,
      template: { ...execution.template, gpuZonalRedundancyDisabled: false },
    };
    expect(toObservedJobExecution(zonal, PROJECT, REGION).gpu?.zonalRedundancy).toBe(true);
  });

  it('lists the regions through the locations mixin', async () => {
    expect(await adapter.listRegions(PROJECT)).toEqual([EU, REGION]);
    expectCalls(['ListLocations OK']);
  });

  it('translates NOT_FOUND and PERMISSION_DENIED', async () => {
    const missing = await failure(adapter.getService(PROJECT, REGION, 'nope'));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing.message).toContain(`getting service ${PARENT}/services/nope failed: NOT_FOUND`);
    expect(grpcCodeOf(missing.cause)).toBe(status.NOT_FOUND);

    const denied = await failure(adapter.listServices('someone-else', REGION));
    expect(denied).toBeInstanceOf(PermissionError);
    expect(denied.message).toContain('listing the services of projects/someone-else');
    // The refusal names the permission, as Google's does: the adapter reads it.
    expect((denied as PermissionError).permissions).toEqual(['run.services.list']);
    const regions = await failure(adapter.listRegions('someone-else'));
    expect(regions).toBeInstanceOf(PermissionError);
    expect((regions as PermissionError).permissions).toEqual(['run.locations.list']);
    expect(await failure(adapter.listWorkerPools('someone-else', REGION))).toBeInstanceOf(
      PermissionError,
    );
    // Not retried: a refusal is not transient.
    expectCalls([
      'GetService NOT_FOUND',
      'ListServices PERMISSION_DENIED',
      'ListLocations PERMISSION_DENIED',
      'ListWorkerPools PERMISSION_DENIED',
    ]);
  });

  it('rejects the "-" region and malformed names without a call', async () => {
    expect(await failure(adapter.listServices(PROJECT, '-'))).toBeInstanceOf(InputError);
    expect(await failure(adapter.getService(PROJECT, REGION, 'a/b'))).toBeInstanceOf(InputError);
    expectCalls([]);
  });

  it('shows a deployment in flight as reconciling', async () => {
    emulator.deploy({ service: 'gamma', project: PROJECT, region: REGION, seconds: 120 });
    const during = await adapter.getService(PROJECT, REGION, 'gamma');
    expect(during.reconciling).toBe(true);
    expect(during.observedGeneration).toBe(during.generation - 1);
    emulator.advance(180_000);
    const after = await adapter.getService(PROJECT, REGION, 'gamma');
    expect(after.reconciling).toBe(false);
    expect(after.observedGeneration).toBe(after.generation);
    expectCalls(['GetService OK', 'GetService OK']);
  });
});

describe('retries', () => {
  it.each(['UNAVAILABLE', 'DEADLINE_EXCEEDED'] as const)('retries a read on %s', async (code) => {
    let failures = 1;
    inject = (method) =>
      method === 'GetService' && failures-- > 0
        ? new RpcError(status[code], 'try again')
        : undefined;
    expect((await adapter.getService(PROJECT, REGION, 'web')).name).toBe('web');
    expectCalls([`GetService ${code}`, 'GetService OK']);
  });

  it('gives up a read that stays UNAVAILABLE after maxAttempts calls in all', async () => {
    inject = (method) =>
      method === 'GetService' ? new RpcError(status.UNAVAILABLE, 'down') : undefined;
    const error = await failure(adapter.getService(PROJECT, REGION, 'web'));
    expect(error).toBeInstanceOf(UnavailableError);
    expectCalls(Array(quick.retry.maxAttempts).fill('GetService UNAVAILABLE'));
  });

  it('with one attempt, a failed read says what failed, not that it was retried', async () => {
    const once = createCloudRunAdapter({
      emulatorHost: emulator.host,
      retry: { ...quick.retry, maxAttempts: 1 },
    });
    inject = (method) =>
      method === 'GetService' ? new RpcError(status.UNAVAILABLE, 'down') : undefined;
    try {
      const error = await failure(once.getService(PROJECT, REGION, 'web'));
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error.message).toMatch(/failed: UNAVAILABLE: down$/);
      expectCalls(['GetService UNAVAILABLE']);
    } finally {
      await once.close();
    }
  });

  it('gives up after maxAttempts and keeps the last code (RESOURCE_EXHAUSTED)', async () => {
    inject = (method) =>
      method === 'ListServices' ? new RpcError(status.RESOURCE_EXHAUSTED, 'slow down') : undefined;
    const error = await failure(adapter.listServices(PROJECT, REGION));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.message).toContain('RESOURCE_EXHAUSTED');
    expectCalls(Array(quick.retry.maxAttempts).fill('ListServices RESOURCE_EXHAUSTED'));
  });

  it('waits the retry delay a read refused with RESOURCE_EXHAUSTED asks for', async () => {
    // Cloud Run's per-minute read quota, played short: refused with a RetryInfo of 300 ms until
    // 300 ms after the first refusal; the policy's own backoff (10 to 40 ms) spends its three
    // attempts within it.
    const delayMs = 300;
    let until: number | undefined;
    inject = (method) => {
      if (method !== 'ListServices') return undefined;
      until ??= Date.now() + delayMs;
      return Date.now() < until
        ? new RpcError(
            status.RESOURCE_EXHAUSTED,
            'Quota exceeded: read requests per minute',
            delayMs,
          )
        : undefined;
    };
    const found = await adapter.listServices(PROJECT, REGION);
    expect(found.length).toBeGreaterThan(0);
    const calls = emulator.calls();
    expect(calls[0]?.code).toBe('RESOURCE_EXHAUSTED');
    expect(calls[1]?.code).toBe('OK');
    const gap = Date.parse(calls[1]?.wallTime ?? '') - Date.parse(calls[0]?.wallTime ?? '');
    expect(gap).toBeGreaterThanOrEqual(delayMs - 5);
    emulator.resetCalls();
  });

  it('retries a write refused with RESOURCE_EXHAUSTED', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    let failures = 1;
    inject = (method) =>
      method === 'UpdateService' && failures-- > 0
        ? new RpcError(status.RESOURCE_EXHAUSTED, 'too many writes this minute')
        : undefined;
    const writes = emulator.writes().length;
    const after = await adapter.updateMaxInstances(update(before.name, before.etag, 9));
    expect(after.serviceMaxInstances).toBe(9);
    expect(emulator.writes()).toHaveLength(writes + 1);
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService RESOURCE_EXHAUSTED',
      'UpdateService OK',
      'GetOperation+',
    ]);
  });

  it('waits the retry delay a write refused with RESOURCE_EXHAUSTED asks for, then sends it again', async () => {
    // Cloud Run's per-minute write quota, played short: refused with a RetryInfo of 300 ms until
    // 300 ms after the first refusal; the policy's own backoff (10 to 40 ms) spends its three
    // attempts within it.
    const before = await adapter.getService(PROJECT, REGION, 'web');
    const to = (before.serviceMaxInstances ?? 1) + 1;
    const delayMs = 300;
    let until: number | undefined;
    inject = (method) => {
      if (method !== 'UpdateService') return undefined;
      until ??= Date.now() + delayMs;
      return Date.now() < until
        ? new RpcError(
            status.RESOURCE_EXHAUSTED,
            'Quota exceeded: write requests per minute',
            delayMs,
          )
        : undefined;
    };
    const writes = emulator.writes().length;
    const after = await adapter.updateMaxInstances(update('web', before.etag, to));
    expect(after.serviceMaxInstances).toBe(to);
    expect(emulator.writes()).toHaveLength(writes + 1);
    const sent = emulator.calls().filter((c) => short(c.method) === 'UpdateService');
    expect(sent.map((c) => c.code)).toEqual(['RESOURCE_EXHAUSTED', 'OK']);
    const gap = Date.parse(sent[1]?.wallTime ?? '') - Date.parse(sent[0]?.wallTime ?? '');
    expect(gap).toBeGreaterThanOrEqual(delayMs - 5);
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService RESOURCE_EXHAUSTED',
      'UpdateService OK',
      'GetOperation+',
    ]);
  });

  it('a write refused with a retry delay past the bound fails at once, naming the delay, and is not sent again', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    inject = (method) =>
      method === 'UpdateService'
        ? new RpcError(
            status.RESOURCE_EXHAUSTED,
            'Quota exceeded: write requests per minute',
            5 * 60_000,
          )
        : undefined;
    // Waiting the 300 s asked would outlast this test's timeout: that is the hang guard, with no
    // bound of its own on the time taken (retry-info.int.test.ts counts the waits themselves).
    const error = await failure(adapter.updateMaxInstances(update('web', before.etag, 7)));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.message).toContain('retry after 300 s');
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService RESOURCE_EXHAUSTED']);
  });

  it('a refused write is not sent again once its caller has given up on it', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    inject = (method) =>
      method === 'UpdateService'
        ? new RpcError(status.RESOURCE_EXHAUSTED, 'Quota exceeded: write requests per minute', 1500)
        : undefined;
    const giveUp = new AbortController();
    setTimeout(() => giveUp.abort(), 100);
    // It ends when its caller gives up, not when the delay it was asked to wait has passed: which
    // comes first, against a timer of that delay set before the call (an order, not a wall-clock
    // bound, so a loaded machine slows both alike).
    const delayPassed = new Promise<'delay passed'>((done) =>
      setTimeout(() => done('delay passed'), 1500),
    );
    const error = await Promise.race([
      failure(
        adapter.updateMaxInstances({ ...update('web', before.etag, 7), signal: giveUp.signal }),
      ),
      delayPassed,
    ]);
    expect(error).toBeInstanceOf(RateLimitedError);
    // Past the delay it asked for: still the one refused send, nothing sent after it.
    await delayPassed;
    await new Promise((done) => setTimeout(done, 200));
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService RESOURCE_EXHAUSTED']);
  });

  // The poll is refused with a delay that a caller honouring it would wait (under
  // MAX_RETRY_INFO_DELAY_MS), longer than this test's timeout: a poll that waited it fails the
  // test by its timeout, a hang guard with no bound of its own on the time taken.
  it("the operation's polls do not wait a retry delay: a refused poll is tried on the policy's short backoff", async () => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    const to = (before.serviceMaxInstances ?? 1) + 1;
    let refusals = 1;
    inject = (method) =>
      method === 'GetOperation' && refusals-- > 0
        ? new RpcError(
            status.RESOURCE_EXHAUSTED,
            'Quota exceeded: read requests per minute',
            MAX_RETRY_INFO_DELAY_MS - 1_000,
          )
        : undefined;
    const after = await adapter.updateMaxInstances(update('web', before.etag, to));
    expect(after.serviceMaxInstances).toBe(to);
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService OK',
      'GetOperation RESOURCE_EXHAUSTED',
      'GetOperation+',
    ]);
  }, 30_000);

  // GetOperation is a read like any other: a poll lost to a network hiccup is tried again, as
  // every read is, rather than turning an accepted write that applied into one that may not have.
  it.each([
    [status.UNAVAILABLE, 'UNAVAILABLE'],
    [status.DEADLINE_EXCEEDED, 'DEADLINE_EXCEEDED'],
  ])('tries a poll that failed with %i %s again, and the write completes', async (code, name) => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    const to = (before.serviceMaxInstances ?? 1) + 1;
    let failures = 1;
    inject = (method) =>
      method === 'GetOperation' && failures-- > 0 ? new RpcError(code, 'poll lost') : undefined;
    const after = await adapter.updateMaxInstances(update('web', before.etag, to));
    expect(after.serviceMaxInstances).toBe(to);
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService OK',
      `GetOperation ${name}`,
      'GetOperation+',
    ]);
  });

  // Accepted, the write may apply whatever polling its operation then answers: a refusal code
  // there (ABORTED, RESOURCE_EXHAUSTED) must not read as "nothing was written".
  it.each([
    [status.ABORTED, 'ABORTED'],
    [status.RESOURCE_EXHAUSTED, 'RESOURCE_EXHAUSTED'],
  ])(
    'reports a write whose operation polling failed (%i %s) as one that may still apply',
    async (code) => {
      const before = await adapter.getService(PROJECT, REGION, 'web');
      const to = (before.serviceMaxInstances ?? 1) + 1;
      inject = (method) =>
        method === 'GetOperation' ? new RpcError(code, 'polling refused') : undefined;
      const writes = emulator.writes().length;
      const error = await failure(adapter.updateMaxInstances(update('web', before.etag, to)));
      inject = undefined;
      expect(emulator.writes()).toHaveLength(writes + 1);
      expect((await adapter.getService(PROJECT, REGION, 'web')).serviceMaxInstances).toBe(to);
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error.message).toContain('may still apply');
      // Its operation ends by itself; the next test writes the same service.
      await new Promise((done) => setTimeout(done, OPERATION_MS * 2));
      emulator.resetCalls();
    },
  );

  it('does not resend a write that failed with UNAVAILABLE', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    inject = (method) =>
      method === 'UpdateService' ? new RpcError(status.UNAVAILABLE, 'connection reset') : undefined;
    const error = await failure(adapter.updateMaxInstances(update('web', before.etag, 8)));
    expect(error).toBeInstanceOf(UnavailableError);
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService UNAVAILABLE']);
  });
});

describe('updateMaxInstances', () => {
  it('writes a minimal service once, merging the annotations', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'alpha');
    const writes = emulator.writes().length;
    const after = await adapter.updateMaxInstances({
      ...update('alpha', before.etag, 4),
      annotations: { 'gpu-governor.dev/reason': 'pool share 4 of 8' },
    });
    const merged = {
      'team.example.com/owner': 'ml-platform',
      'gpu-governor.dev/reason': 'pool share 4 of 8',
    };
    expect(after).toMatchObject({
      serviceMaxInstances: 4,
      annotations: merged,
      generation: before.generation + 1,
      reconciling: false,
    });
    expect(after.etag).not.toBe(before.etag);

    const newWrites = emulator.writes().slice(writes);
    expect(newWrites).toHaveLength(1);
    expect(newWrites[0]).toMatchObject({
      service: { project: PROJECT, region: REGION, name: 'alpha' },
      updateMask: ['scaling.max_instance_count', 'annotations'],
      before: { maxInstances: 3, etag: before.etag },
      after: { maxInstances: 4, annotations: merged },
    });
    const sent = emulator.calls().find((c) => short(c.method) === 'UpdateService')?.request;
    expect(sent).toEqual({
      service: {
        name: `${PARENT}/services/alpha`,
        etag: before.etag,
        scaling: { max_instance_count: 4 },
        annotations: merged,
      },
      update_mask: { paths: ['scaling.max_instance_count', 'annotations'] },
    });
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService OK', 'GetOperation+']);
  });

  it('merges into the annotations the caller has just read, without reading the service again', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'alpha');
    await adapter.updateMaxInstances({
      ...update('alpha', before.etag, 2),
      annotations: { 'gpu-governor.dev/reason': 'read just now' },
      currentAnnotations: before.annotations,
    });
    expect(emulator.writes().at(-1)?.after.annotations).toEqual({
      ...before.annotations,
      'gpu-governor.dev/reason': 'read just now',
    });
    expectCalls(['GetService OK', 'UpdateService OK', 'GetOperation+']);
  });

  it('leaves the annotations alone when none are given', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'alpha');
    await adapter.updateMaxInstances(update('alpha', before.etag, 3));
    const write = emulator.writes().at(-1);
    expect(write?.updateMask).toEqual(['scaling.max_instance_count']);
    expect(write?.after.annotations).toEqual(before.annotations);
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService OK', 'GetOperation+']);
  });

  it('refuses a stale etag without writing', async () => {
    const stale = await adapter.getService(PROJECT, REGION, 'gamma');
    await adapter.updateMaxInstances(update('gamma', stale.etag, 3));
    const writes = emulator.writes().length;
    const error = await failure(adapter.updateMaxInstances(update('gamma', stale.etag, 2)));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toContain('changed since it was read');
    expect(emulator.writes()).toHaveLength(writes);
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService OK',
      'GetOperation+',
      'GetService OK',
    ]);
  });

  it("turns Cloud Run's ABORTED (a write between our read and our write) into ConflictError", async () => {
    const before = await adapter.getService(PROJECT, REGION, 'web');
    // Another writer gets in just before our UpdateService reaches the handler.
    inject = (method) => {
      if (method === 'UpdateService') {
        emulator.model.update({ project: PROJECT, region: REGION, name: 'web' }, {});
      }
      return undefined;
    };
    const writes = emulator.writes().length;
    const error = await failure(adapter.updateMaxInstances(update('web', before.etag, 5)));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toContain('ABORTED');
    expect(emulator.writes()).toHaveLength(writes);
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService ABORTED']);
  });

  it('turns a FAILED_PRECONDITION for a service changed since it was read into ConflictError', async () => {
    // AIP-154 has a stale etag answered FAILED_PRECONDITION; Cloud Run documents no code.
    const before = await adapter.getService(PROJECT, REGION, 'web');
    inject = (method) => {
      if (method !== 'UpdateService') return undefined;
      emulator.model.update({ project: PROJECT, region: REGION, name: 'web' }, {});
      return new RpcError(status.FAILED_PRECONDITION, 'etag mismatch');
    };
    const writes = emulator.writes().length;
    const error = await failure(adapter.updateMaxInstances(update('web', before.etag, 5)));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toContain('changed since it was read');
    expect(error.message).toContain('FAILED_PRECONDITION');
    expect(emulator.writes()).toHaveLength(writes);
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService FAILED_PRECONDITION',
      'GetService OK',
    ]);
  });

  it('keeps a quota refusal answered as FAILED_PRECONDITION a quota refusal, even if the service changed', async () => {
    // Cloud Run's words for a max above the GPU quota, whatever code carries them: only another
    // FAILED_PRECONDITION is a reason to read the service again (a stale etag, AIP-154).
    const before = await adapter.getService(PROJECT, REGION, 'web');
    inject = (method) => {
      if (method !== 'UpdateService') return undefined;
      emulator.model.update({ project: PROJECT, region: REGION, name: 'web' }, {});
      return new RpcError(
        status.FAILED_PRECONDITION,
        'Max instances must be set to 1 or fewer in order to set GPU requirements in region us-central1. Quota violated: NvidiaL4GpuAllocPerProjectRegion requested: 5 allowed: 1',
      );
    };
    const error = await failure(adapter.updateMaxInstances(update('web', before.etag, 5)));
    expect(error).toBeInstanceOf(QuotaRejectedError);
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService FAILED_PRECONDITION']);
  });

  it('keeps a FAILED_PRECONDITION a refusal, not a conflict, when the service cannot be read again to tell', async () => {
    // A conflict is left quietly for the next run; a refusal is reported as a failed write.
    const before = await adapter.getService(PROJECT, REGION, 'web');
    let refused = false;
    inject = (method) => {
      if (method === 'UpdateService') {
        refused = true;
        return new RpcError(status.FAILED_PRECONDITION, 'a deployment is in progress');
      }
      return method === 'GetService' && refused
        ? new RpcError(status.PERMISSION_DENIED, "Permission 'run.services.get' denied")
        : undefined;
    };
    const error = await failure(adapter.updateMaxInstances(update('web', before.etag, 5)));
    expect(error.constructor).toBe(RefusedError);
    expect(error.message).toContain('FAILED_PRECONDITION');
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService FAILED_PRECONDITION',
      'GetService PERMISSION_DENIED',
    ]);
  });

  it('refuses an update without the etag read, before any call: nothing is written unchecked', async () => {
    for (const currentAnnotations of [undefined, {}]) {
      const error = await failure(
        adapter.updateMaxInstances({ ...update('alpha', '', 2), currentAnnotations }),
      );
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).faults.map((f) => f.path)).toEqual(['etag']);
    }
    expectCalls([]);
  });

  it('gives up waiting for an operation that does not end in time: the write may still apply', async () => {
    const impatient = createCloudRunAdapter({
      emulatorHost: emulator.host,
      ...quick,
      operationPolling: { initialDelayMs: 40, maxDelayMs: 100, timeoutMs: 500 },
    });
    // The change applies, but its operation runs on (for an hour).
    emulator.setFaults({ operations: { hangRate: 1 } });
    try {
      const before = await impatient.getService(PROJECT, EU, 'eu-model');
      const error = await failure(
        impatient.updateMaxInstances({
          project: PROJECT,
          region: EU,
          name: 'eu-model',
          maxInstances: 2,
          etag: before.etag,
          annotations: {},
        }),
      );
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error.message).toContain('may still apply');
      expect((await impatient.getService(PROJECT, EU, 'eu-model')).serviceMaxInstances).toBe(2);
    } finally {
      emulator.setFaults({});
      await impatient.close();
    }
    expectCalls([
      'GetService OK',
      'GetService OK',
      'UpdateService OK',
      'GetOperation+',
      'GetService OK',
    ]);
  });

  it('reports a max above the quota as QuotaRejectedError, writing nothing', async () => {
    const beta = await adapter.getService(PROJECT, REGION, 'beta');
    const writes = emulator.writes().length;
    const error = await failure(adapter.updateMaxInstances(update('beta', beta.etag, 2)));
    expect(error).toBeInstanceOf(QuotaRejectedError);
    expect(error.message).toContain('Max instances must be set to 1 or fewer');
    expect(emulator.writes()).toHaveLength(writes);
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService INVALID_ARGUMENT']);
  });

  it('leaves a max above 1000 to Cloud Run, which holds it to the quota', async () => {
    const beta = await adapter.getService(PROJECT, REGION, 'beta');
    const error = await failure(adapter.updateMaxInstances(update('beta', beta.etag, 1001)));
    expect(error).toBeInstanceOf(QuotaRejectedError);
    expect(error.message).toContain('Max instances must be set to 1 or fewer');
    expectCalls(['GetService OK', 'GetService OK', 'UpdateService INVALID_ARGUMENT']);
  });

  it('rejects reserved annotation namespaces and bad numbers before any call', async () => {
    for (const key of ['run.googleapis.com/maxScale', 'autoscaling.knative.dev/maxScale']) {
      const error = await failure(
        adapter.updateMaxInstances({ ...update('alpha', '"x"', 2), annotations: { [key]: '2' } }),
      );
      expect(error).toBeInstanceOf(InputError);
      expect(error.message).toContain(key);
    }
    for (const max of [0, 1.5, 2 ** 31]) {
      expect(await failure(adapter.updateMaxInstances(update('alpha', '"x"', max)))).toBeInstanceOf(
        InputError,
      );
    }
    expectCalls([]);
  });

  it('reports a write refused during a deployment as a refusal: nothing of it was accepted', async () => {
    const before = await adapter.getService(PROJECT, REGION, 'manual');
    emulator.deploy({ service: 'manual', project: PROJECT, region: REGION, seconds: 60 });
    const during = await adapter.getService(PROJECT, REGION, 'manual');
    expect(during.reconciling).toBe(true);
    expect(during.etag).not.toBe(before.etag);
    const error = await failure(adapter.updateMaxInstances(update('manual', during.etag, 2)));
    expect(error.constructor).toBe(RefusedError);
    expect(error.message).toContain('FAILED_PRECONDITION');
    emulator.advance(120_000);
    // The refusal is not a conflict: the service read again still has the etag sent.
    expectCalls([
      'GetService OK',
      'GetService OK',
      'GetService OK',
      'UpdateService FAILED_PRECONDITION',
      'GetService OK',
    ]);
  });
});

describe('translateGrpcError', () => {
  const cases: [number, string, new (...args: never[]) => Error][] = [
    [status.ABORTED, 'etag mismatch', ConflictError],
    [status.NOT_FOUND, 'gone', NotFoundError],
    [status.RESOURCE_EXHAUSTED, 'slow down', RateLimitedError],
    [status.UNAVAILABLE, 'down', UnavailableError],
    [status.DEADLINE_EXCEEDED, 'late', UnavailableError],
    [status.PERMISSION_DENIED, 'no', PermissionError],
    [status.UNAUTHENTICATED, 'who', PermissionError],
    [status.INVALID_ARGUMENT, 'x: Quota violated: Q requested: 3 allowed: 2', QuotaRejectedError],
    [status.FAILED_PRECONDITION, 'Max instances must be set to 2 or fewer', QuotaRejectedError],
    [status.INVALID_ARGUMENT, 'bad mask', UpstreamError],
    [status.INTERNAL, 'oops', UpstreamError],
  ];
  it.each(cases)('code %i (%s)', (code, details, expected) => {
    const cause = Object.assign(new Error(`${code} ${status[code]}: ${details}`), {
      code,
      details,
    });
    const error = translateGrpcError(cause, 'doing X');
    expect(error.constructor).toBe(expected);
    expect(error.message).toBe(`doing X failed: ${status[code]}: ${details}`);
    expect(error.cause).toBe(cause);
  });

  it("names the permission and resource from Google's ErrorInfo when the text names neither", () => {
    // google-gax decodes a status's ErrorInfo detail into `reason` and `errorInfoMetadata`
    // (google-gax googleError.ts); IAM_PERMISSION_DENIED carries `permission` and `resource`
    // (https://github.com/googleapis/googleapis/blob/master/google/api/error_reason.proto).
    const resource = `${PARENT}/services/alpha`;
    const details = 'The caller does not have permission';
    const cause = Object.assign(new Error(`7 PERMISSION_DENIED: ${details}`), {
      code: status.PERMISSION_DENIED,
      details,
      reason: 'IAM_PERMISSION_DENIED',
      errorInfoMetadata: { permission: 'run.services.update', resource },
    });
    const error = translateGrpcError(cause, 'x');
    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({
      permissions: ['run.services.update'],
      resource,
      refusal: 'permission',
    });
  });

  it('recovers the last code from google-gax exhausted retries, and wraps anything else', () => {
    const exhausted = Object.assign(
      new Error(
        'Exceeded maximum number of retries retrying error Error: 14 UNAVAILABLE: down before any response was received',
      ),
      { code: status.DEADLINE_EXCEEDED },
    );
    expect(translateGrpcError(exhausted, 'x')).toBeInstanceOf(UnavailableError);
    // The last error's words, not google-gax's account of every attempt.
    const retried = Object.assign(
      new Error(
        'Exceeded maximum number of retries retrying error Error: 14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note:  before any response was received : Previous errors : [{message: 14 UNAVAILABLE: No connection established, code: 14}]',
      ),
      { code: status.DEADLINE_EXCEEDED },
    );
    expect(translateGrpcError(retried, 'x').message).toBe(
      'x failed: UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1 (after retries)',
    );
    const plain = translateGrpcError(new Error('socket hang up'), 'x');
    expect(plain.constructor).toBe(UpstreamError);
    const ours = new ConflictError('already translated');
    expect(translateGrpcError(ours, 'x')).toBe(ours);
  });
});

describe('adapter options', () => {
  it('refuses a page size outside 1 to 1000 and a polling time of 0, before any client is made', () => {
    for (const options of [
      { pageSize: 0 },
      { pageSize: 1001 },
      { operationPolling: { initialDelayMs: 0 } },
      { operationPolling: { timeoutMs: 0 } },
    ])
      expect(() => createCloudRunAdapter({ emulatorHost: emulator.host, ...options })).toThrow(
        InputError,
      );
  });
});

describe('clientConfig', () => {
  it("uses Google's defaults without an emulator address and rejects a bad one", () => {
    expect(clientConfig({})).toEqual({ options: {}, emulatorHost: null });
    expect(clientConfig({ emulatorHost: null })).toEqual({ options: {}, emulatorHost: null });
    expect(clientConfig({ emulatorHost: '127.0.0.1:7000' })).toMatchObject({
      emulatorHost: '127.0.0.1:7000',
      options: { apiEndpoint: '127.0.0.1', port: 7000, universeDomain: 'googleapis.com' },
    });
    expect(() => clientConfig({ emulatorHost: 'nowhere' })).toThrow(InputError);
  });
});

function update(name: string, etag: string, maxInstances: number): MaxInstancesUpdate {
  return { project: PROJECT, region: REGION, name, maxInstances, etag, annotations: {} };
}

function grpcCodeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}
