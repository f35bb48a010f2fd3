/**
 * A read that outlives its run: the run deadline passed while it waited the retry delay of a
 * RESOURCE_EXHAUSTED (the run stopped waiting for it, reconcile/act.ts beforeDeadline), and the
 * run then closed its clients. Closing ends the wait at once: the read sends nothing more and
 * fails, and nothing is left to keep the process alive (the command line exits when its work is
 * done). A write waiting such a delay the same, whether or not its caller gave it a signal of its
 * own. Through the real `@google-cloud/run`, `@google-cloud/monitoring`, `@google-cloud/asset` and
 * `@google-cloud/cloudquotas` clients, over gRPC, against the emulator.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createAssetSearchAdapter } from '../../src/adapters/assets.js';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createQuotaPreferenceAdapter } from '../../src/adapters/quota-preferences.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import { RpcError, startEmulator } from '../../src/emulator/index.js';
import type { RunningEmulator } from '../../src/emulator/index.js';

const PROJECT = 'close-project';
const REGION = 'us-central1';
/** A delay asked within the minute a read waits at most (retry.ts MAX_RETRY_INFO_DELAY_MS). */
const DELAY_MS = 30_000;
const retry = { maxAttempts: 3, minBackoffMs: 10, maxBackoffMs: 40, attemptTimeoutMs: 5_000 };

let refuse: string | undefined;
let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 4 }],
          services: [{ name: 'alpha', region: REGION, gpu: {}, maxInstances: 2 }],
        },
      ],
    },
    speed: 'manual',
    faults: ({ method }) =>
      refuse !== undefined && method.endsWith(`/${refuse}`)
        ? new RpcError(status.RESOURCE_EXHAUSTED, 'Quota exceeded: requests per minute', DELAY_MS)
        : undefined,
  });
});

afterAll(async () => {
  await emulator.stop();
});

/** Until `emulator` has answered `count` calls of `method` (a few seconds at most). */
async function answered(method: string, count: number): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (emulator.calls().filter((c) => c.method.endsWith(`/${method}`)).length >= count) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${method} was not called`);
}

/** How the read ended, or 'pending' when it had not within `ms`. */
async function within<T>(read: Promise<T>, ms: number): Promise<'pending' | 'settled'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((r) => {
    timer = setTimeout(() => r('pending'), ms);
  });
  try {
    return await Promise.race([
      read.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('closing the clients ends the calls still waiting', () => {
  it('Cloud Run: a read waiting a retry delay fails at once, and is not sent again', async () => {
    emulator.resetCalls();
    refuse = 'ListServices';
    const adapter = createCloudRunAdapter({ emulatorHost: emulator.host, retry });
    try {
      const read = adapter.listServices(PROJECT, REGION);
      await answered('ListServices', 1);
      await adapter.close();
      expect(await within(read, 3_000)).toBe('settled');
      await expect(read).rejects.toThrow(/RESOURCE_EXHAUSTED/);
      expect(emulator.calls().map((c) => `${c.method.split('/').pop()} ${c.code}`)).toEqual([
        'ListServices RESOURCE_EXHAUSTED',
      ]);
    } finally {
      refuse = undefined;
    }
  });

  it('Monitoring: the same', async () => {
    emulator.resetCalls();
    refuse = 'ListTimeSeries';
    const adapter = createMonitoringAdapter({ emulatorHost: emulator.host, retry });
    try {
      const end = emulator.now().getTime();
      const read = adapter.instanceCounts(PROJECT, { startMs: end - 3_600_000, endMs: end });
      await answered('ListTimeSeries', 1);
      await adapter.close();
      expect(await within(read, 3_000)).toBe('settled');
      expect(
        emulator
          .calls()
          .filter((c) => c.method.endsWith('/ListTimeSeries'))
          .map((c) => c.code),
      ).toEqual(['RESOURCE_EXHAUSTED']);
    } finally {
      refuse = undefined;
    }
  });

  /** `read` of an adapter refused on `method`: settled at once after close, sent once only. */
  async function endsAtClose(
    method: string,
    adapter: { close(): Promise<void> },
    read: () => Promise<unknown>,
  ): Promise<void> {
    emulator.resetCalls();
    refuse = method;
    try {
      const pending = read();
      await answered(method, 1);
      await adapter.close();
      expect(await within(pending, 3_000)).toBe('settled');
      await expect(pending).rejects.toThrow(/RESOURCE_EXHAUSTED/);
      expect(
        emulator
          .calls()
          .filter((c) => c.method.endsWith(`/${method}`))
          .map((c) => c.code),
      ).toEqual(['RESOURCE_EXHAUSTED']);
    } finally {
      refuse = undefined;
    }
  }

  it('Cloud Asset Inventory: the same', async () => {
    const adapter = createAssetSearchAdapter({ emulatorHost: emulator.host });
    await endsAtClose('SearchAllResources', adapter, () =>
      adapter.searchRunResources('organizations/123456789012'),
    );
  });

  it('Cloud Quotas (quota info): the same', async () => {
    const adapter = createQuotaAdapter({ emulatorHost: emulator.host, retry });
    await endsAtClose('GetQuotaInfo', adapter, () =>
      adapter.gpuQuota({
        project: PROJECT,
        region: REGION,
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
      }),
    );
  });

  it('Cloud Quotas (quota preferences): the same, listed or read', async () => {
    const listing = createQuotaPreferenceAdapter({ emulatorHost: emulator.host, retry });
    await endsAtClose('ListQuotaPreferences', listing, () => listing.listPreferences(PROJECT));
    const reading = createQuotaPreferenceAdapter({ emulatorHost: emulator.host, retry });
    await endsAtClose('GetQuotaPreference', reading, () =>
      reading.getPreference(`projects/${PROJECT}/locations/global/quotaPreferences/gpu-l4`),
    );
  });

  it("Cloud Run: a write waiting a retry delay too, with or without its caller's signal", async () => {
    for (const signal of [undefined, new AbortController().signal]) {
      const adapter = createCloudRunAdapter({ emulatorHost: emulator.host, retry });
      const before = await adapter.getService(PROJECT, REGION, 'alpha');
      await endsAtClose('UpdateService', adapter, () =>
        adapter.updateMaxInstances({
          project: PROJECT,
          region: REGION,
          name: 'alpha',
          maxInstances: 3,
          etag: before.etag,
          annotations: {},
          ...(signal ? { signal } : {}),
        }),
      );
    }
  });
});
