/**
 * A project outside the fleet is refused by every emulated API in the same words, naming the
 * permission the call needs and the resource it was asked on (rpc.ts, permissionDenied), before
 * anything is looked up (AIP-211, https://google.aip.dev/211): the governor's adapters read the
 * permission from these words (src/adapters/grpc-errors.ts).
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { codeOf, emulatorAndClients, REGION } from './helpers.js';

const once = { timeout: 10_000, retry: null };
const OTHER = 'other-project';
const QUOTAS = `projects/${OTHER}/locations/global/services/run.googleapis.com`;
const PREFERENCES = `projects/${OTHER}/locations/global`;

const t = emulatorAndClients();

describe('a project outside the fleet', () => {
  it('is PERMISSION_DENIED by every API, naming the permission and the resource', async () => {
    const c = t.clients;
    const calls: [string, string, () => Promise<unknown>][] = [
      [
        'run.services.list',
        `projects/${OTHER}/locations/${REGION}`,
        () => c.services.listServices({ parent: `projects/${OTHER}/locations/${REGION}` }, once),
      ],
      [
        'run.workerpools.list',
        `projects/${OTHER}/locations/${REGION}`,
        () =>
          c.workerPools.listWorkerPools({ parent: `projects/${OTHER}/locations/${REGION}` }, once),
      ],
      [
        'run.locations.list',
        `projects/${OTHER}`,
        async () => {
          for await (const l of c.services.listLocationsAsync({ name: `projects/${OTHER}` }, once))
            return l;
          return undefined;
        },
      ],
      [
        'monitoring.timeSeries.list',
        `projects/${OTHER}`,
        () =>
          c.metrics.listTimeSeries(
            {
              name: `projects/${OTHER}`,
              filter: 'metric.type = "run.googleapis.com/container/instance_count"',
              interval: { endTime: { seconds: 1_800_000_000 } },
            },
            once,
          ),
      ],
      [
        'monitoring.timeSeries.create',
        `projects/${OTHER}`,
        () => c.metrics.createTimeSeries({ name: `projects/${OTHER}`, timeSeries: [] }, once),
      ],
      [
        'cloudquotas.quotas.get',
        `${QUOTAS}/quotaInfos/NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion`,
        () =>
          c.quotas.getQuotaInfo(
            { name: `${QUOTAS}/quotaInfos/NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion` },
            once,
          ),
      ],
      ['cloudquotas.quotas.get', QUOTAS, () => c.quotas.listQuotaInfos({ parent: QUOTAS }, once)],
      [
        'cloudquotas.quotas.get',
        `${PREFERENCES}/quotaPreferences/p1`,
        () => c.quotas.getQuotaPreference({ name: `${PREFERENCES}/quotaPreferences/p1` }, once),
      ],
      [
        'cloudquotas.quotas.update',
        PREFERENCES,
        () =>
          c.quotas.createQuotaPreference(
            {
              parent: PREFERENCES,
              quotaPreferenceId: 'p1',
              quotaPreference: {
                service: 'run.googleapis.com',
                quotaId: 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
                quotaConfig: { preferredValue: 1 },
                dimensions: { region: REGION },
              },
            },
            once,
          ),
      ],
    ];
    for (const [permission, resource, call] of calls) {
      const denied = await codeOf(call());
      expect(denied.code, permission).toBe(status.PERMISSION_DENIED);
      expect(denied.message).toBe(
        `7 PERMISSION_DENIED: Permission '${permission}' denied on resource '${resource}' (or resource may not exist).`,
      );
    }
  });
});
