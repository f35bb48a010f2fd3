import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { gpuQuotaId, gpuQuotaMetric } from '../../src/emulator/quotas-api.js';
import { clientsFor, closeClients, codeOf, PROJECT, type Clients } from './helpers.js';
import { testFleet } from '../support/fixtures.js';

const info = (id: string) =>
  `projects/${PROJECT}/locations/global/services/run.googleapis.com/quotaInfos/${id}`;

describe('Cloud Quotas API v1 through @google-cloud/cloudquotas', () => {
  let emulator: RunningEmulator;
  let clients: Clients;

  beforeAll(async () => {
    emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
    clients = clientsFor(emulator);
  });
  afterAll(async () => {
    await closeClients(clients);
    await emulator.stop();
  });

  it('names quotas as Cloud Run does', () => {
    expect(gpuQuotaId('nvidia-l4', true)).toBe('NvidiaL4GpuAllocPerProjectRegion');
    expect(gpuQuotaId('nvidia-l4', false)).toBe(
      'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
    );
    expect(gpuQuotaId('nvidia-rtx-pro-6000', true)).toBe(
      'NvidiaRtxPro6000GpuAllocPerProjectRegion',
    );
    expect(gpuQuotaMetric('nvidia-l4', false)).toBe(
      'run.googleapis.com/nvidia_l4_gpu_allocation_no_zonal_redundancy',
    );
  });

  it('gives one dimensions info per region, plus the regionless default entry', async () => {
    const [quota] = await clients.quotas.getQuotaInfo({
      name: info('NvidiaL4GpuAllocPerProjectRegion'),
    });
    expect(quota.quotaId).toBe('NvidiaL4GpuAllocPerProjectRegion');
    expect(quota.metric).toBe('run.googleapis.com/nvidia_l4_gpu_allocation');
    const entries = (quota.dimensionsInfos ?? []).map((d) => ({
      region: d.dimensions?.['region'],
      value: Number(d.details?.value),
    }));
    expect(entries).toEqual([
      { region: 'us-central1', value: 5 },
      { region: undefined, value: 6 },
    ]);
    // The way a governor picks: its region's entry, else the one without a region that lists the
    // region among the locations it applies to.
    const pick = (region: string) =>
      (quota.dimensionsInfos ?? []).find((d) => d.dimensions?.['region'] === region) ??
      (quota.dimensionsInfos ?? []).find(
        (d) =>
          d.dimensions?.['region'] === undefined && (d.applicableLocations ?? []).includes(region),
      );
    expect(Number(pick('europe-west4')?.details?.value)).toBe(6);
    // A region where Cloud Run does not run for the project (not in its ListLocations) has none.
    expect(pick('asia-southeast1')).toBeUndefined();
    // Each entry lists where it applies (DimensionsInfo.applicable_locations, resources.proto):
    // its own region, or every region of the project without an entry of its own.
    expect((quota.dimensionsInfos ?? []).map((d) => d.applicableLocations)).toEqual([
      ['us-central1'],
      ['europe-west4'],
    ]);
  });

  it('answers NOT_FOUND for a quota the project does not have', async () => {
    const missing = await codeOf(
      clients.quotas.getQuotaInfo({ name: info('NvidiaRtxPro6000GpuAllocPerProjectRegion') }),
    );
    expect(missing.code).toBe(status.NOT_FOUND);
    const other = await codeOf(
      clients.quotas.getQuotaInfo({ name: info('CpuAllocPerProjectRegion') }),
    );
    expect(other.code).toBe(status.NOT_FOUND);
  });

  it("answers Cloud Run's quota infos under locations/global only, and for no other service", async () => {
    // A quota info is named projects/{p}/locations/global/services/{service}/quotaInfos/{id}
    // (https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.services.quotaInfos/get).
    // A regional location is refused; another service's listing never answers Cloud Run's GPUs.
    const regional = await codeOf(
      clients.quotas.getQuotaInfo({
        name: `projects/${PROJECT}/locations/us-central1/services/run.googleapis.com/quotaInfos/NvidiaL4GpuAllocPerProjectRegion`,
      }),
    );
    expect(regional.code).toBe(status.INVALID_ARGUMENT);
    // Another service's quotas are valid on Google: "Example names:
    // projects/123/locations/global/services/compute.googleapis.com" (ListQuotaInfosRequest.parent
    // in google/api/cloudquotas/v1/cloudquotas.proto). The emulator models Cloud Run's alone:
    // UNIMPLEMENTED, never NOT_FOUND as if the service had no quotas.
    const compute = await codeOf(
      clients.quotas.listQuotaInfos({
        parent: `projects/${PROJECT}/locations/global/services/compute.googleapis.com`,
      }),
    );
    expect(compute.code).toBe(status.UNIMPLEMENTED);
    expect(compute.message).toContain('compute.googleapis.com');
    const computeInfo = await codeOf(
      clients.quotas.getQuotaInfo({
        name: `projects/${PROJECT}/locations/global/services/compute.googleapis.com/quotaInfos/CPUS-per-project-region`,
      }),
    );
    expect(computeInfo.code).toBe(status.UNIMPLEMENTED);
  });

  it('answers UNIMPLEMENTED for the folder and organisation quotas Google has, not INVALID_ARGUMENT', async () => {
    // QuotaInfo and QuotaPreference are resources of projects, folders and organizations alike
    // (their resource patterns in google/api/cloudquotas/v1/resources.proto, and the example
    // parents of ListQuotaInfosRequest): valid names the emulator does not model.
    const q = clients.quotas;
    // Each call's outcome is taken as it is made: awaited one after the other, a later call's
    // rejection would arrive before its handler, an unhandled rejection.
    const calls: [string, ReturnType<typeof codeOf>][] = [];
    const call = (what: string, made: Promise<unknown>): [string, ReturnType<typeof codeOf>] => [
      what,
      codeOf(made),
    ];
    for (const container of ['folders/234', 'organizations/345']) {
      const parent = `${container}/locations/global`;
      calls.push(
        call(
          `GetQuotaInfo ${container}`,
          q.getQuotaInfo({
            name: `${parent}/services/run.googleapis.com/quotaInfos/NvidiaL4GpuAllocPerProjectRegion`,
          }),
        ),
        call(
          `ListQuotaInfos ${container}`,
          q.listQuotaInfos({ parent: `${parent}/services/run.googleapis.com` }),
        ),
        call(`ListQuotaPreferences ${container}`, q.listQuotaPreferences({ parent })),
        call(
          `GetQuotaPreference ${container}`,
          q.getQuotaPreference({ name: `${parent}/quotaPreferences/p` }),
        ),
        call(
          `CreateQuotaPreference ${container}`,
          q.createQuotaPreference({
            parent,
            quotaPreferenceId: 'p',
            quotaPreference: {
              service: 'run.googleapis.com',
              quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
              quotaConfig: { preferredValue: 1 },
            },
          }),
        ),
        call(
          `UpdateQuotaPreference ${container}`,
          q.updateQuotaPreference({
            quotaPreference: {
              name: `${parent}/quotaPreferences/p`,
              quotaConfig: { preferredValue: 1 },
            },
          }),
        ),
      );
    }
    for (const [what, outcome] of calls)
      expect((await outcome).code, what).toBe(status.UNIMPLEMENTED);
  });

  it('lists the quota infos of Cloud Run and follows quota changes', async () => {
    const parent = `projects/${PROJECT}/locations/global/services/run.googleapis.com`;
    const [before] = await clients.quotas.listQuotaInfos({ parent });
    expect(before.map((q) => q.quotaId)).toEqual([
      'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
      'NvidiaL4GpuAllocPerProjectRegion',
    ]);
    emulator.setQuota({
      project: PROJECT,
      region: 'europe-west4',
      accelerator: 'nvidia-rtx-pro-6000',
      quota: 4,
    });
    emulator.setQuota({ project: PROJECT, region: null, quota: null });
    const [after] = await clients.quotas.listQuotaInfos({ parent });
    expect(after.map((q) => q.quotaId)).toContain('NvidiaRtxPro6000GpuAllocPerProjectRegion');
    const l4 = after.find((q) => q.quotaId === 'NvidiaL4GpuAllocPerProjectRegion');
    expect(l4?.dimensionsInfos).toHaveLength(1);
  });
});
