import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import type { QuotaAdapter } from '../../src/adapters/quotas.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { AnswerHook, RunningEmulator } from '../../src/emulator/index.js';
import { UpstreamError } from '../../src/core/errors.js';
import type { QuotaQuery } from '../../src/ports/index.js';
import { PROJECT } from '../emulator/helpers.js';

/**
 * What the adapter makes of GetQuotaInfo answers Cloud Quotas could put on the wire but should
 * not, or odd ones it may: the emulator sends each raw answer as given (its `answer`
 * seam), through the real client library. A value is taken only when it is certainly the asked
 * pool's limit; otherwise the read fails with an UpstreamError (the pool's quota is then unknown
 * and nothing in it is raised), never a budget larger than the real quota.
 */

const US = 'us-central1';
const EU = 'europe-west4';
const L4 = 'NvidiaL4GpuAllocPerProjectRegion';

type Raw = Record<string, unknown>;
/** The seam's answer to this file's one read (EmulatorOptions.answer). */
type Hook = (
  request: Parameters<AnswerHook>[1],
  fleetAnswer: Parameters<AnswerHook>[2],
) => ReturnType<AnswerHook>;
let hook: Hook | undefined;
let emulator: RunningEmulator;
let quotas: QuotaAdapter;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      // europe-west4: a region where Cloud Run runs with no entry of its own, which the
      // regionless entry lists among its applicable locations.
      projects: [
        {
          id: PROJECT,
          pools: [{ region: US, quota: 5 }, { quota: 6 }, { region: EU }],
          services: [],
        },
      ],
    },
    speed: 'manual',
    answer: (method, request, fleet) =>
      method === 'GetQuotaInfo' ? hook?.(request, fleet) : undefined,
  });
  quotas = createQuotaAdapter({
    emulatorHost: emulator.host,
    retry: { maxAttempts: 1, attemptTimeoutMs: 10_000 },
  });
});

afterEach(() => {
  hook = undefined;
  quotas.clearCache();
});

afterAll(async () => {
  await quotas?.close();
  await emulator?.stop();
});

const pool = (region = US): QuotaQuery => ({
  project: PROJECT,
  region,
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
});

/** The fleet's quota info with `edit` applied to a copy. */
function answer(edit: (info: Raw) => Raw): void {
  hook = (_request, fleet) => edit(structuredClone(fleet()));
}

/** The fleet's quota info with these dimensions infos. */
function entries(...infos: Raw[]): void {
  answer((info) => ({ ...info, dimensions_infos: infos }));
}

const entry = (region: string | undefined, value: string, locations?: string[]): Raw => ({
  dimensions: region === undefined ? {} : { region },
  details: { value },
  ...(locations ? { applicable_locations: locations } : {}),
});

async function failure(query = pool()): Promise<Error> {
  const error: unknown = await quotas.gpuQuota(query).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UpstreamError);
  return error as Error;
}

describe('odd GetQuotaInfo answers', () => {
  it('reads the fleet answer through the seam unchanged', async () => {
    answer((info) => info);
    await expect(quotas.gpuQuota(pool())).resolves.toBe(5);
    await expect(quotas.gpuQuota(pool(EU))).resolves.toBe(6);
  });

  it('takes the lowest of two entries for the same region, the binding one', async () => {
    entries(entry(US, '9', [US]), entry(US, '3', [US]), entry(undefined, '6'));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(3);
  });

  it("refuses an entry whose region and applicable locations disagree, when either is the pool's", async () => {
    // DimensionsInfo.applicable_locations: "the list of locations this dimension info is
    // applicable to" (google/api/cloudquotas/v1/resources.proto).
    entries(entry(US, '50', [EU]), entry(undefined, '6'));
    expect((await failure()).message).toMatch(/us-central1.*europe-west4/);
    quotas.clearCache();
    expect((await failure(pool(EU))).message).toMatch(/us-central1.*europe-west4/);
    // Another region's entry that keeps to its region is none of this pool's business.
    quotas.clearCache();
    entries(entry(EU, '50', [EU]), entry(US, '2', [US]));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(2);
  });

  it('takes the regionless entry only for a region it lists as applicable', async () => {
    // DimensionsInfo.applicable_locations: "set to ['global'] for quotas that are not per region
    // or per zone. Otherwise, it will be set to the list of locations this dimension info is
    // applicable to" (google/api/cloudquotas/v1/resources.proto): a region it does not list is
    // not one the value applies to.
    entries(entry(EU, '1', [EU]), entry(undefined, '6', [EU, 'asia-southeast1']));
    expect((await failure()).message).toMatch(
      /regionless entry applies to europe-west4, asia-southeast1, not us-central1/,
    );
    quotas.clearCache();
    await expect(quotas.gpuQuota(pool('asia-southeast1'))).resolves.toBe(6);
    // Google is silent on an empty list (or ['global'] on a per-region quota): it names no
    // region, so it is no region's value.
    for (const locations of [[], ['global']]) {
      quotas.clearCache();
      entries(entry(undefined, '6', locations));
      expect((await failure()).message).toMatch(
        /regionless entry applies to (no location|global), not us-central1/,
      );
    }
  });

  it('refuses an entry for the pool that carries another dimension: which value binds is unknown', async () => {
    // "If a dimension does not appear in the map of dimensions, the dimensions info applies to
    // all the dimension values except for those that have another DimensionsInfo instance
    // configured for the specific value": an entry narrowed by another dimension may not be
    // this pool's.
    entries(
      { dimensions: { region: US, zonal_redundancy: 'enabled' }, details: { value: '40' } },
      entry(undefined, '2'),
    );
    expect((await failure()).message).toMatch(/us-central1 is narrowed by zonal_redundancy/);
    // The same of the regionless entry, when it is the one that would be taken.
    quotas.clearCache();
    entries(entry(EU, '1', [EU]), {
      dimensions: { zonal_redundancy: 'enabled' },
      details: { value: '40' },
      applicable_locations: [US],
    });
    expect((await failure()).message).toMatch(/regionless entry is narrowed by zonal_redundancy/);
    quotas.clearCache();
    await expect(quotas.gpuQuota(pool(EU))).resolves.toBe(1);
  });

  it('takes an entry without a dimension the quota is defined on as the value for all its values', async () => {
    // "If a dimension does not appear in the map of dimensions, the dimensions info applies to
    // all the dimension values except for those that have another DimensionsInfo instance".
    answer((info) => ({ ...info, dimensions: ['region', 'zonal_redundancy'] }));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(5);
    await expect(quotas.gpuQuota(pool(EU))).resolves.toBe(6);
  });

  it('reads "0" as no GPUs, and refuses beyond 2^53 and any negative value', async () => {
    entries(entry(US, '0', [US]));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(0);
    quotas.clearCache();
    entries(entry(US, '18014398509481985', [US]));
    expect((await failure()).message).toMatch(/too large/);
    quotas.clearCache();
    entries(entry(US, '-1', [US]));
    expect((await failure()).message).toMatch(/-1 means unlimited/);
    quotas.clearCache();
    entries(entry(US, '-7', [US]));
    expect((await failure()).message).toMatch(/-7 is negative, not a GPU count/);
  });

  it("refuses another quota's or another project's quota info", async () => {
    answer((info) => ({
      ...info,
      name: String(info['name']).replace(L4, 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion'),
    }));
    expect((await failure()).message).toMatch(/NoZonalRedundancy/);
    quotas.clearCache();
    answer((info) => ({ ...info, quota_id: 'CpusPerProjectPerRegion' }));
    expect((await failure()).message).toMatch(/CpusPerProjectPerRegion/);
    quotas.clearCache();
    answer((info) => ({
      ...info,
      name: String(info['name']).replace(`projects/${PROJECT}/`, 'projects/someone-else/'),
    }));
    expect((await failure()).message).toMatch(/someone-else/);
    // Google may name the project by number though asked by id: a number cannot be compared.
    quotas.clearCache();
    answer((info) => ({
      ...info,
      name: String(info['name']).replace(`projects/${PROJECT}/`, 'projects/123456789012/'),
    }));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(5);
    // The whole name is checked, not its start; a project id with digits is an id, not a number.
    for (const name of [
      (n: string) => `${n}Extra`,
      (n: string) => `${n}/more`,
      (n: string) => `organizations/1/${n}`,
      (n: string) => n.replace(`projects/${PROJECT}/`, 'projects/someone-else-2/'),
    ]) {
      quotas.clearCache();
      answer((info) => ({ ...info, name: name(String(info['name'])) }));
      expect((await failure()).message).toMatch(/answered the quota info of/);
    }
    // A field left empty is not checked: it says nothing either way.
    quotas.clearCache();
    answer((info) => ({ ...info, name: '', quota_id: '' }));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(5);
  });

  it("refuses another quota's info when asked whether the quota may be raised", async () => {
    answer((info) => ({ ...info, quota_id: 'CpusPerProjectPerRegion' }));
    const error: unknown = await quotas.increaseEligibility(pool()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as Error).message).toMatch(/CpusPerProjectPerRegion/);
  });

  it('reads an empty region dimension as none, and an empty applicable location as no location', async () => {
    entries(entry(US, '4', [US, '']), entry(undefined, '6', [EU]));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(4);
    quotas.clearCache();
    entries({ dimensions: { region: '' }, details: { value: '7' }, applicable_locations: [US] });
    await expect(quotas.gpuQuota(pool())).resolves.toBe(7);
    // An entry of the region without details has no value to take.
    quotas.clearCache();
    entries({ dimensions: { region: US }, applicable_locations: [US] });
    expect((await failure()).message).toMatch(/us-central1 has no details/);
  });

  it('reads an answer without an eligibility as eligible, and an unspecified reason as none given', async () => {
    // QuotaInfo.quota_increase_eligibility: Google does not say when it is left out; Google still
    // decides each request, so its absence does not stop one.
    answer((info) => ({ ...info, quota_increase_eligibility: undefined }));
    await expect(quotas.increaseEligibility(pool())).resolves.toEqual({ eligible: true });
    quotas.clearCache();
    answer((info) => ({
      ...info,
      quota_increase_eligibility: {
        is_eligible: false,
        ineligibility_reason: 'INELIGIBILITY_REASON_UNSPECIFIED',
      },
    }));
    await expect(quotas.increaseEligibility(pool())).resolves.toEqual({
      eligible: false,
      reason: 'no reason given',
    });
  });

  it('takes the value during an ongoing rollout: Google shows the value before the rollout', async () => {
    // https://cloud.google.com/docs/quotas/view-ongoing-rollouts: rollouts raise default values
    // gradually, and "the quota value that appears in the ... Cloud Quotas API won't reflect
    // the new, increased quota value until the rollout completes".
    answer((info) => ({ ...info, rollout_info: { ongoing_rollout: true } }));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(5);
  });

  it('takes the value of an imprecise quota: precision is of usage tracking, not of the limit', async () => {
    // QuotaInfo.is_precise: "A precise quota is tracked with absolute precision. In contrast,
    // an imprecise quota is not tracked with precision."
    answer((info) => ({ ...info, is_precise: false }));
    await expect(quotas.gpuQuota(pool())).resolves.toBe(5);
  });
});
