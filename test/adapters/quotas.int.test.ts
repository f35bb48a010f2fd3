import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createQuotaAdapter, gpuQuotaId, parseQuotaValue } from '../../src/adapters/quotas.js';
import { MAX_QUOTA_GPUS } from '../../src/core/pool.js';
import type { QuotaAdapter } from '../../src/adapters/quotas.js';
import { setQuotaIncreaseEligibility, startEmulator, RpcError } from '../../src/emulator/index.js';
import type { FaultHook, RunningEmulator } from '../../src/emulator/index.js';
import {
  InputError,
  NotFoundError,
  PermissionError,
  RateLimitedError,
  UnavailableError,
  UpstreamError,
} from '../../src/core/errors.js';
import type { QuotaQuery } from '../../src/ports/index.js';
import { PROJECT } from '../emulator/helpers.js';

const US = 'us-central1';
const EU = 'europe-west4';
const ASIA = 'asia-southeast1';
const L4 = 'NvidiaL4GpuAllocPerProjectRegion';
const L4_NON_ZONAL = 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion';

/**
 * L4 with zonal redundancy: 5 in us-central1, 6 in the project's other regions (europe-west4 and
 * asia-southeast1, where Cloud Run runs for it: the locations the regionless entry applies to).
 * L4 without: 2 in us-central1 only. RTX Pro 6000: 4 in europe-west4. No H100 quota at all.
 */
const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: US, quota: 5 },
        { quota: 6 },
        { region: US, zonalRedundancy: false, quota: 2 },
        { region: EU, accelerator: 'nvidia-rtx-pro-6000', quota: 4 },
        { region: ASIA },
      ],
      services: [],
    },
  ],
};

/** Retries short enough for tests, still more than one attempt. */
const quick = { maxAttempts: 3, minBackoffMs: 20, maxBackoffMs: 50, attemptTimeoutMs: 5_000 };

let emulator: RunningEmulator;
let fault: FaultHook | undefined;
const adapters: QuotaAdapter[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', faults: (call) => fault?.(call) });
});

afterEach(() => {
  fault = undefined;
  emulator.resetCalls();
});

afterAll(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
  await emulator?.stop();
});

function adapter(): QuotaAdapter {
  const a = createQuotaAdapter({ emulatorHost: emulator.host, retry: quick });
  adapters.push(a);
  return a;
}

function pool(region: string, more: Partial<QuotaQuery> = {}): QuotaQuery {
  return { project: PROJECT, region, accelerator: 'nvidia-l4', zonalRedundancy: true, ...more };
}

/** The quota ids read, one entry per GetQuotaInfo call. */
function reads(): string[] {
  return emulator
    .calls()
    .filter((c) => c.method === 'google.api.cloudquotas.v1.CloudQuotas/GetQuotaInfo')
    .map(
      (c) =>
        String((c.request as { name?: unknown }).name)
          .split('/')
          .at(-1) ?? '',
    );
}

/** Fails `count` GetQuotaInfo calls with `code`. */
function failNext(count: number, code: status): void {
  let left = count;
  fault = ({ method }) => {
    if (!method.endsWith('/GetQuotaInfo') || left <= 0) return undefined;
    left -= 1;
    return new RpcError(code, `injected ${status[code]}`);
  };
}

describe('gpuQuotaId', () => {
  it('uses the documented L4 ids, and derives the same shape for other accelerators', () => {
    expect(gpuQuotaId('nvidia-l4', true)).toBe(L4);
    expect(gpuQuotaId('nvidia-l4', false)).toBe(L4_NON_ZONAL);
    expect(gpuQuotaId('nvidia-rtx-pro-6000', true)).toBe(
      'NvidiaRtxPro6000GpuAllocPerProjectRegion',
    );
    expect(gpuQuotaId('nvidia-rtx-pro-6000', false)).toBe(
      'NvidiaRtxPro6000GpuAllocNoZonalRedundancyPerProjectRegion',
    );
    expect(() => gpuQuotaId('NVIDIA L4', true)).toThrow(InputError);
    expect(() => gpuQuotaId('', true)).toThrow(InputError);
  });
});

describe('parseQuotaValue', () => {
  it('reads an int64 however the client decoded it', () => {
    expect(parseQuotaValue('8')).toBe(8);
    expect(parseQuotaValue('0')).toBe(0);
    expect(parseQuotaValue(' 12 ')).toBe(12);
    expect(parseQuotaValue(3)).toBe(3);
    expect(parseQuotaValue(7n)).toBe(7);
    expect(parseQuotaValue(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    // A protobufjs Long: low and high 32-bit words, printed by its toString.
    const long = { low: 9, high: 0, unsigned: false, toString: () => '9' };
    expect(parseQuotaValue(long)).toBe(9);
  });

  it('rejects what is not a GPU count', () => {
    for (const bad of ['', '8.5', '1e3', '0x10', 'eight', 8.5, Number.NaN, null, undefined, {}]) {
      expect(() => parseQuotaValue(bad), String(bad)).toThrow(UpstreamError);
    }
    expect(() => parseQuotaValue('-1')).toThrow(/unlimited/);
    expect(() => parseQuotaValue('9007199254740993')).toThrow(/too large/);
  });
});

describe('createQuotaAdapter against the emulator', () => {
  it("takes the region's own entry", async () => {
    const quotas = adapter();
    await expect(quotas.gpuQuota(pool(US))).resolves.toBe(5);
    await expect(quotas.gpuQuota(pool(US, { zonalRedundancy: false }))).resolves.toBe(2);
    await expect(quotas.gpuQuota(pool(EU, { accelerator: 'nvidia-rtx-pro-6000' }))).resolves.toBe(
      4,
    );
  });

  it('falls back to the regionless entry, and gives null when there is neither', async () => {
    const quotas = adapter();
    await expect(quotas.gpuQuota(pool(EU))).resolves.toBe(6);
    await expect(quotas.gpuQuota(pool(ASIA))).resolves.toBe(6);
    // The non-zonal quota info exists, with an entry for us-central1 only.
    await expect(quotas.gpuQuota(pool(EU, { zonalRedundancy: false }))).resolves.toBeNull();
    // The RTX quota info has europe-west4 only.
    await expect(
      quotas.gpuQuota(pool(US, { accelerator: 'nvidia-rtx-pro-6000' })),
    ).resolves.toBeNull();
  });

  it('reads whether an increase may be requested, and why not, from the same read as the quota', async () => {
    // QuotaInfo.quota_increase_eligibility (google/api/cloudquotas/v1/resources.proto).
    const quotas = adapter();
    await expect(quotas.increaseEligibility(pool(US))).resolves.toEqual({ eligible: true });
    setQuotaIncreaseEligibility(emulator.model, PROJECT, L4_NON_ZONAL, 'NOT_SUPPORTED');
    try {
      const fresh = adapter();
      await expect(fresh.gpuQuota(pool(US, { zonalRedundancy: false }))).resolves.toBe(2);
      await expect(
        fresh.increaseEligibility(pool(US, { zonalRedundancy: false })),
      ).resolves.toEqual({ eligible: false, reason: 'NOT_SUPPORTED' });
      // One GetQuotaInfo for both answers.
      expect(reads().filter((id) => id === L4_NON_ZONAL)).toHaveLength(1);
      await expect(fresh.increaseEligibility(pool(US))).resolves.toEqual({ eligible: true });
    } finally {
      setQuotaIncreaseEligibility(emulator.model, PROJECT, L4_NON_ZONAL, null);
    }
  });

  it('rejects with NotFoundError, naming the quota id, when the quota info does not exist', async () => {
    const error: unknown = await adapter()
      .gpuQuota(pool(US, { accelerator: 'nvidia-h100' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toMatch(/quotaInfos\/NvidiaH100GpuAllocPerProjectRegion/);
    expect(reads()).toEqual(['NvidiaH100GpuAllocPerProjectRegion']); // not retried
  });

  it('reads int64 values sent as strings, up to the most a pool may have', async () => {
    emulator.setQuota({ project: PROJECT, region: ASIA, quota: MAX_QUOTA_GPUS });
    try {
      await expect(adapter().gpuQuota(pool(ASIA))).resolves.toBe(MAX_QUOTA_GPUS);
    } finally {
      emulator.setQuota({ project: PROJECT, region: ASIA, quota: null });
    }
  });

  it('rejects a quota above the most a pool may have, which the planner cannot hand out', async () => {
    // Planned one instance at a time, 10^10 GPUs kept a run planning for many minutes.
    emulator.setQuota({ project: PROJECT, region: ASIA, quota: 10_000_000_000 });
    try {
      const error: unknown = await adapter()
        .gpuQuota(pool(ASIA))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as Error).message).toMatch(
        /10000000000 GPUs is more than the 1000000 a pool's quota may have \(set the quota in the policy\)/,
      );
    } finally {
      emulator.setQuota({ project: PROJECT, region: ASIA, quota: null });
    }
  });

  it('reads each quota info once per adapter, whatever the number of pools sharing it', async () => {
    const quotas = adapter();
    const answers = await Promise.all([
      quotas.gpuQuota(pool(US)),
      quotas.gpuQuota(pool(EU)),
      quotas.gpuQuota(pool(ASIA)),
      quotas.gpuQuota(pool(US, { zonalRedundancy: false })),
      quotas.gpuQuota(pool(EU, { zonalRedundancy: false })),
    ]);
    expect(answers).toEqual([5, 6, 6, 2, null]);
    await expect(quotas.gpuQuota(pool(US))).resolves.toBe(5);
    expect(reads().sort()).toEqual([L4_NON_ZONAL, L4]);

    // The cache holds within the adapter: a change shows only once it is cleared.
    emulator.setQuota({ project: PROJECT, region: US, quota: 7 });
    try {
      await expect(quotas.gpuQuota(pool(US))).resolves.toBe(5);
      expect(reads()).toHaveLength(2);
      quotas.clearCache();
      await expect(quotas.gpuQuota(pool(US))).resolves.toBe(7);
      await expect(quotas.gpuQuota(pool(EU))).resolves.toBe(6);
      expect(reads()).toHaveLength(3);
      // A new adapter (a new observation) reads again.
      await expect(adapter().gpuQuota(pool(US))).resolves.toBe(7);
      expect(reads()).toHaveLength(4);
    } finally {
      emulator.setQuota({ project: PROJECT, region: US, quota: 5 });
    }
  });

  it('remembers a failure too, so pools sharing a quota id agree', async () => {
    failNext(1, status.PERMISSION_DENIED);
    const quotas = adapter();
    await expect(quotas.gpuQuota(pool(US))).rejects.toBeInstanceOf(PermissionError);
    await expect(quotas.gpuQuota(pool(EU))).rejects.toBeInstanceOf(PermissionError);
    expect(reads()).toEqual([L4]);
    quotas.clearCache();
    await expect(quotas.gpuQuota(pool(EU))).resolves.toBe(6);
  });

  it('translates errors into the typed errors', async () => {
    // A project outside the fleet: permission is checked before existence (AIP-211), so the
    // emulator answers PERMISSION_DENIED, as Google does for a project the caller cannot see.
    const outside: unknown = await adapter()
      .gpuQuota({ ...pool(US), project: 'not-in-fleet' })
      .catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(PermissionError);
    expect((outside as PermissionError).permissions).toEqual(['cloudquotas.quotas.get']);

    failNext(10, status.UNAVAILABLE);
    const unavailable: unknown = await adapter()
      .gpuQuota(pool(US))
      .catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(UnavailableError);
    expect((unavailable as Error).message).toMatch(/reading quota info .*NvidiaL4GpuAlloc/);

    failNext(10, status.RESOURCE_EXHAUSTED);
    await expect(adapter().gpuQuota(pool(US))).rejects.toBeInstanceOf(RateLimitedError);

    failNext(1, status.INTERNAL);
    await expect(adapter().gpuQuota(pool(US))).rejects.toBeInstanceOf(UpstreamError);
  });

  it('retries transient failures with backoff', async () => {
    failNext(2, status.UNAVAILABLE);
    await expect(adapter().gpuQuota(pool(US))).resolves.toBe(5);
    expect(
      emulator
        .calls()
        .filter((c) => c.method.endsWith('/GetQuotaInfo'))
        .map((c) => c.code),
    ).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'OK']);
  });

  it('waits the retry delay a RESOURCE_EXHAUSTED asks for before reading again', async () => {
    const delayMs = 300;
    let until: number | undefined;
    fault = ({ method }) => {
      if (!method.endsWith('/GetQuotaInfo')) return undefined;
      until ??= Date.now() + delayMs;
      return Date.now() < until
        ? new RpcError(status.RESOURCE_EXHAUSTED, 'Quota exceeded: reads per minute', delayMs)
        : undefined;
    };
    await expect(adapter().gpuQuota(pool(US))).resolves.toBe(5);
    const calls = emulator.calls().filter((c) => c.method.endsWith('/GetQuotaInfo'));
    expect(calls.map((c) => c.code)).toEqual(['RESOURCE_EXHAUSTED', 'OK']);
    const gap = Date.parse(calls[1]?.wallTime ?? '') - Date.parse(calls[0]?.wallTime ?? '');
    expect(gap).toBeGreaterThanOrEqual(delayMs - 5);
  });

  it('refuses a malformed query before calling', async () => {
    const quotas = adapter();
    await expect(quotas.gpuQuota(pool(''))).rejects.toBeInstanceOf(InputError);
    await expect(quotas.gpuQuota({ ...pool(US), project: 'a/b' })).rejects.toBeInstanceOf(
      InputError,
    );
    await expect(quotas.gpuQuota(pool(US, { accelerator: 'L4 GPU' }))).rejects.toBeInstanceOf(
      InputError,
    );
    expect(reads()).toEqual([]);
  });
});
