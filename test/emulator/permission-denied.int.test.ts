/**
 * A project outside the fleet is refused by every emulated API in the same words, naming the
 * permission the call needs and the resource it was asked on (rpc.ts, permissionDenied), before
 * anything is looked up (AIP-211, https://google.aip.dev/211): the governor's adapters read the
 * permission from these words (src/adapters/grpc-errors.ts).
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { v2 as run } from '@google-cloud/run';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { startEmulator } from '../../src/emulator/index.js';
import {
  clientsFor,
  closeClients,
  codeOf,
  emulatorAndClients,
  REGION,
  type Clients,
} from './helpers.js';

const once = { timeout: 10_000, retry: null };
const OTHER = 'other-project';
const QUOTAS = `projects/${OTHER}/locations/global/services/run.googleapis.com`;
const PREFERENCES = `projects/${OTHER}/locations/global`;

/** A quota preference created under `parent` (a project's locations/global). */
const createPreference = (c: Clients, parent: string) =>
  c.quotas.createQuotaPreference(
    {
      parent,
      quotaPreferenceId: 'p1',
      quotaPreference: {
        service: 'run.googleapis.com',
        quotaId: 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
        quotaConfig: { preferredValue: 1 },
        dimensions: { region: REGION },
      },
    },
    once,
  );

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
      ['cloudquotas.quotas.update', PREFERENCES, () => createPreference(c, PREFERENCES)],
    ];
    for (const [permission, resource, call] of calls) {
      const denied = await codeOf(call());
      expect(denied.code, permission).toBe(status.PERMISSION_DENIED);
      expect(denied.message).toBe(
        `7 PERMISSION_DENIED: Permission '${permission}' denied on resource '${resource}' (or resource may not exist).`,
      );
    }
  });

  it('includes a project number: well formed, but no fleet project has one', async () => {
    // Google takes a project number in place of an id ("{project} can be project id or number",
    // GetServiceRequest.name in google/cloud/run/v2/service.proto). A fleet names its projects by
    // id alone, so the emulator cannot tell which project a number is: it answers as Google
    // answers a project the caller cannot reach, never INVALID_ARGUMENT and never another
    // project's resources.
    const c = t.clients;
    const parent = `projects/123456789012/locations/${REGION}`;
    const denied = await codeOf(c.services.listServices({ parent }, once));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toContain(
      `Permission 'run.services.list' denied on resource '${parent}'`,
    );
    const quotas = 'projects/123456789012/locations/global/services/run.googleapis.com';
    expect((await codeOf(c.quotas.listQuotaInfos({ parent: quotas }, once))).code).toBe(
      status.PERMISSION_DENIED,
    );
  });
});

// The permission each method needs, as Google's method references give it under "IAM
// Permissions" (e.g. https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/list,
// https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/list,
// https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.services.quotaInfos/list,
// https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences/create)
// and Cloud Run's permission list (https://cloud.google.com/run/docs/reference/iam/permissions:
// run.services.*, run.jobs.list, run.executions.list, run.locations.list).
// Each project below lacks that one permission only: a call checked against another one goes on.
describe('a project that lacks one permission', () => {
  it('refuses the method that needs it, naming the permission, and no other', async () => {
    const projectFor = (permission: string) =>
      `deny-${permission.replace(/\./g, '-')}`.slice(0, 30);
    const parent = (p: string) => `projects/${p}/locations/${REGION}`;
    type Callers = { c: Clients; jobs: run.JobsClient; executions: run.ExecutionsClient };
    const cases: [string, (k: Callers, project: string) => Promise<unknown>][] = [
      ['run.services.list', (k, p) => k.c.services.listServices({ parent: parent(p) }, once)],
      [
        'run.services.get',
        (k, p) => k.c.services.getService({ name: `${parent(p)}/services/svc` }, once),
      ],
      ['run.jobs.list', (k, p) => k.jobs.listJobs({ parent: parent(p) }, once)],
      [
        'run.executions.list',
        (k, p) => k.executions.listExecutions({ parent: `${parent(p)}/jobs/job` }, once),
      ],
      [
        'run.locations.list',
        (k, p) =>
          k.c.services.locationsClient.listLocations(
            { name: `projects/${p}` },
            { autoPaginate: false },
          ),
      ],
      [
        'cloudquotas.quotas.get',
        (k, p) =>
          k.c.quotas.listQuotaInfos(
            { parent: `projects/${p}/locations/global/services/run.googleapis.com` },
            once,
          ),
      ],
      [
        'cloudquotas.quotas.update',
        (k, p) => createPreference(k.c, `projects/${p}/locations/global`),
      ],
    ];
    const own = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        projects: cases.map(([permission]) => ({
          id: projectFor(permission),
          iam: { denied: [permission] },
          services: [{ name: 'svc', region: REGION, maxInstances: 1, demand: 0 }],
        })),
      },
      speed: 'manual',
    });
    const options = emulatorClientOptions(own.env['GOVERNOR_EMULATOR_HOST'] ?? '');
    const k: Callers = {
      c: clientsFor(own),
      jobs: new run.JobsClient(options),
      executions: new run.ExecutionsClient(options),
    };
    try {
      for (const [permission, call] of cases) {
        const denied = await codeOf(call(k, projectFor(permission)));
        expect(denied.code, permission).toBe(status.PERMISSION_DENIED);
        expect(denied.message).toContain(`Permission '${permission}' denied`);
        // A call that needs another permission goes on in the same project.
        const other = cases.find(([p]) => p !== permission && p.startsWith('run.services.'));
        await expect(other?.[1](k, projectFor(permission)), permission).resolves.toBeDefined();
      }
    } finally {
      await Promise.all([closeClients(k.c), k.jobs.close(), k.executions.close()]);
      await own.stop();
    }
  });
});
