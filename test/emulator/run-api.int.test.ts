import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import {
  clientsFor,
  closeClients,
  codeOf,
  PARENT,
  PROJECT,
  REGION,
  type Clients,
} from './helpers.js';
import type { FleetInput } from '../../src/emulator/fleet.js';
import { testFleet } from '../support/fixtures.js';

const name = (service: string) => `${PARENT}/services/${service}`;

/** An emulator of its own over `fleet` (one service or pool more than the test fleet), stopped after `use`. */
async function onOwnFleet(
  fleet: FleetInput,
  use: (own: RunningEmulator, clients: Clients) => Promise<void>,
): Promise<void> {
  const own = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 10 });
  const clients = clientsFor(own);
  try {
    await use(own, clients);
  } finally {
    await closeClients(clients);
    await own.stop();
  }
}

/** UpdateService of a service's max instances alone, as the governor writes it. */
const setMax = (clients: Clients, service: string, maxInstanceCount: number) =>
  clients.services.updateService({
    service: { name: service, scaling: { maxInstanceCount } },
    updateMask: { paths: ['scaling.max_instance_count'] },
  });

describe('Cloud Run Admin API v2 through @google-cloud/run', () => {
  let emulator: RunningEmulator;
  let clients: Clients;

  beforeAll(async () => {
    emulator = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      operationDelayMs: 300,
      pageSize: 2,
    });
    clients = clientsFor(emulator);
  });
  afterAll(async () => {
    await closeClients(clients);
    await emulator.stop();
  });
  beforeEach(() => emulator.resetCalls());

  it('lists a region page by page', async () => {
    const [services, , response] = await clients.services.listServices(
      { parent: PARENT },
      { autoPaginate: false },
    );
    expect(services).toHaveLength(2);
    expect(response?.nextPageToken).not.toBe('');
    const all = await clients.services.listServicesAsync({ parent: PARENT });
    const names: string[] = [];
    for await (const s of all) names.push(s.name ?? '');
    expect(names).toEqual(['alpha', 'beta', 'delta', 'gamma', 'render-x', 'web'].map(name));
    const pages = emulator
      .calls()
      .filter((c) => c.method === 'google.cloud.run.v2.Services/ListServices');
    expect(pages.length).toBe(1 + 3); // one page above, then three pages of two
    const [three] = await clients.services.listServices(
      { parent: PARENT, pageSize: 3 },
      { autoPaginate: false },
    );
    expect(three).toHaveLength(3);
  });

  it('refuses a negative page size, and caps a huge one at a page of them all', async () => {
    // AIP-158 (https://google.aip.dev/158): "If the user specifies a negative value for
    // page_size, the API must send an INVALID_ARGUMENT error", and one above the maximum is
    // coerced down to it.
    const negative = await codeOf(
      clients.services.listServices({ parent: PARENT, pageSize: -1 }, { autoPaginate: false }),
    );
    expect(negative.code).toBe(status.INVALID_ARGUMENT);
    expect(negative.message).toContain('page_size must not be negative');
    const [all, , response] = await clients.services.listServices(
      { parent: PARENT, pageSize: 2_147_483_647 },
      { autoPaginate: false },
    );
    expect(all).toHaveLength(6);
    expect(response?.nextPageToken ?? '').toBe('');
  });

  it('rejects a page token issued for another request', async () => {
    const [, , response] = await clients.services.listServices(
      { parent: PARENT },
      { autoPaginate: false },
    );
    const token = response?.nextPageToken ?? '';
    const other = `projects/${PROJECT}/locations/europe-west4`;
    const { code } = await codeOf(
      clients.services.listServices({ parent: other, pageToken: token }, { autoPaginate: false }),
    );
    expect(code).toBe(status.INVALID_ARGUMENT);
  });

  it('does not answer show_deleted with the live resources only: UNIMPLEMENTED', async () => {
    // "If true, returns deleted (but unexpired) resources along with active ones"
    // (ListServicesRequest.show_deleted, google/cloud/run/v2/service.proto): the emulator deletes
    // services but keeps no deleted ones to list, so it does not answer as if none existed.
    for (const call of [
      clients.services.listServices({ parent: PARENT, showDeleted: true }, { autoPaginate: false }),
      clients.workerPools.listWorkerPools(
        { parent: PARENT, showDeleted: true },
        { autoPaginate: false },
      ),
    ]) {
      const { code, message } = await codeOf(call);
      expect(code).toBe(status.UNIMPLEMENTED);
      expect(message).toContain('show_deleted');
    }
    const [live] = await clients.services.listServices(
      { parent: PARENT, showDeleted: false },
      { autoPaginate: false },
    );
    expect(live.length).toBeGreaterThan(0);
  });

  it('rejects the "-" location wildcard', async () => {
    const { code, message } = await codeOf(
      clients.services.listServices({ parent: `projects/${PROJECT}/locations/-` }),
    );
    expect(code).toBe(status.INVALID_ARGUMENT);
    expect(message).toMatch(/each region/);
  });

  it('refuses a location where its Cloud Run does not run, as Cloud Run does, not with an empty list', async () => {
    // Cloud Run: "Error 400: region: Unsupported region northamerica-south1"
    // (https://github.com/turbot/steampipe-plugin-gcp/issues/696). The emulator's Cloud Run runs
    // in the regions its ListLocations answers; a misspelt region is one it does not.
    const parent = `projects/${PROJECT}/locations/us-centrall1`;
    for (const call of [
      clients.services.listServices({ parent }, { autoPaginate: false }),
      clients.workerPools.listWorkerPools({ parent }, { autoPaginate: false }),
    ]) {
      const { code, message } = await codeOf(call);
      expect(code).toBe(status.INVALID_ARGUMENT);
      expect(message).toContain('Unsupported region us-centrall1');
    }
    // A region it lists is served, empty or not.
    const [located] = await clients.services.locationsClient.listLocations({
      name: `projects/${PROJECT}`,
    });
    for (const l of located) {
      await clients.services.listServices(
        { parent: `projects/${PROJECT}/locations/${l.locationId}` },
        { autoPaginate: false },
      );
    }
  });

  it('gets a GPU service with everything a governor reads', async () => {
    const [s] = await clients.services.getService({ name: name('delta') });
    expect(s.name).toBe(name('delta'));
    expect(s.scaling?.maxInstanceCount).toBe(2);
    expect(s.template?.nodeSelector?.accelerator).toBe('nvidia-l4');
    expect(s.template?.gpuZonalRedundancyDisabled).toBe(true);
    expect(s.template?.containers?.[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('1');
    expect(s.reconciling).toBe(false);
    expect(s.etag).toMatch(/^".+"$/);
    expect(Number(s.generation)).toBe(1);
    expect(s.terminalCondition?.type).toBe('Ready');
    const [web] = await clients.services.getService({ name: name('web') });
    expect(web.template?.nodeSelector).toBeFalsy();
  });

  it('answers NOT_FOUND for an unknown service', async () => {
    const { code } = await codeOf(clients.services.getService({ name: name('nope') }));
    expect(code).toBe(status.NOT_FOUND);
  });

  it('updates the service-level max through a long-running operation', async () => {
    // An emulator of its own whose operations run 1.5 s: the read right after the update must find
    // it still reconciling, which the file's 300 ms did not ensure on a loaded machine.
    const emulator = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      operationDelayMs: 1500,
      pageSize: 2,
    });
    const clients = clientsFor(emulator);
    try {
      await updatesThroughAnOperation(emulator, clients);
    } finally {
      await closeClients(clients);
      await emulator.stop();
    }
  });

  async function updatesThroughAnOperation(emulator: RunningEmulator, clients: Clients) {
    const [before] = await clients.services.getService({ name: name('gamma') });
    const [operation] = await clients.services.updateService({
      service: { name: name('gamma'), etag: before.etag, scaling: { maxInstanceCount: 1 } },
      updateMask: { paths: ['scaling.max_instance_count'] },
    });
    expect(operation.done).toBe(false);
    const [during] = await clients.services.getService({ name: name('gamma') });
    expect(during.reconciling).toBe(true);
    expect(during.scaling?.maxInstanceCount).toBe(1);
    const [after] = await operation.promise();
    expect(after.scaling?.maxInstanceCount).toBe(1);
    expect(after.etag).not.toBe(before.etag);
    expect(Number(after.generation)).toBe(Number(before.generation) + 1);
    const [got] = await clients.services.getService({ name: name('gamma') });
    expect(got.reconciling).toBe(false);
    const polls = emulator
      .calls()
      .filter((c) => c.method === 'google.longrunning.Operations/GetOperation');
    expect(polls.length).toBeGreaterThan(0);
    const write = emulator.writes().at(-1);
    expect(write).toMatchObject({
      service: { project: PROJECT, region: REGION, name: 'gamma' },
      before: { maxInstances: 2 },
      after: { maxInstances: 1 },
      // alpha 2 + beta 3 + gamma 1 + render-x 1
      pool: { accelerator: 'nvidia-l4', zonalRedundancy: true, capsGpus: 7, quota: 5 },
    });
  }

  it('answers the update that starts an operation as not done, however slow its handler', async () => {
    // A wall clock that moves a second at each read: the handler takes longer than the
    // operation's 300 ms, as on a loaded machine. Its answer is still not done, so the caller
    // polls, as it does on an idle machine; read against the clock, it answered done.
    let wall = Date.parse('2026-11-27T12:00:00Z');
    const slow = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      operationDelayMs: 300,
      wallClock: () => (wall += 1_000),
    });
    const slowClients = clientsFor(slow);
    try {
      const [before] = await slowClients.services.getService({ name: name('gamma') });
      const [operation] = await slowClients.services.updateService({
        service: { name: name('gamma'), etag: before.etag, scaling: { maxInstanceCount: 1 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      });
      expect(operation.done).toBe(false);
      const [after] = await operation.promise();
      expect(after.scaling?.maxInstanceCount).toBe(1);
      const polls = slow
        .calls()
        .filter((c) => c.method === 'google.longrunning.Operations/GetOperation');
      expect(polls.length).toBeGreaterThan(0);
    } finally {
      await closeClients(slowClients);
      await slow.stop();
    }
  });

  it('writes annotations and rejects the reserved namespaces', async () => {
    const [operation] = await clients.services.updateService({
      service: {
        name: name('beta'),
        annotations: { 'gpu-governor.dev/last-change': '2026-11-27T12:00:00Z' },
      },
      updateMask: { paths: ['annotations'] },
    });
    const [after] = await operation.promise();
    expect(after.annotations?.['gpu-governor.dev/last-change']).toBe('2026-11-27T12:00:00Z');
    for (const key of ['run.googleapis.com/maxScale', 'autoscaling.knative.dev/maxScale']) {
      const { code, message } = await codeOf(
        clients.services.updateService({
          service: { name: name('beta'), annotations: { [key]: '3' } },
          updateMask: { paths: ['annotations'] },
        }),
      );
      expect(code).toBe(status.INVALID_ARGUMENT);
      expect(message).toContain(key);
    }
  });

  it('rejects a stale etag with ABORTED', async () => {
    const [s] = await clients.services.getService({ name: name('alpha') });
    const [op] = await clients.services.updateService({
      service: { name: name('alpha'), etag: s.etag, scaling: { maxInstanceCount: 1 } },
      updateMask: { paths: ['scaling.max_instance_count'] },
    });
    await op.promise();
    const { code } = await codeOf(
      clients.services.updateService({
        service: { name: name('alpha'), etag: s.etag, scaling: { maxInstanceCount: 2 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      }),
    );
    expect(code).toBe(status.ABORTED);
  });

  it("holds a max to the service's min: below it refused, equal to it or unset (0) written", async () => {
    // Cloud Run's words: "max_instance_count: must be greater or equal than min_instance_count"
    // (a BadRequest field violation, https://github.com/goblet/goblet/issues/287): a max equal to
    // the min is taken; 0 is unset, with no service-level max to compare.
    const fleet = testFleet();
    fleet.projects[0]?.services.push({
      name: 'floored',
      region: REGION,
      maxInstances: 4,
      minInstances: 2,
      demand: 0,
    } as (typeof fleet.projects)[0]['services'][0]);
    await onOwnFleet(fleet, async (own, ownClients) => {
      const write = (maxInstanceCount: number) =>
        setMax(ownClients, name('floored'), maxInstanceCount);
      const below = await codeOf(write(1));
      expect(below.code).toBe(status.INVALID_ARGUMENT);
      expect(below.message).toContain('min_instance_count');
      expect(own.writes()).toHaveLength(0);
      for (const max of [2, 0]) {
        const [op] = await write(max);
        const [after] = await op.promise();
        expect(after.scaling?.maxInstanceCount ?? 0, String(max)).toBe(max);
      }
      expect(own.writes().map((w) => w.after.maxInstances)).toEqual([2, 0]);
    });
  });

  it('holds a max written back to unset (0) to the revision-level max then in force', async () => {
    // Unset, the service runs up to its revision-level max, which the quota bounds as any max
    // (https://cloud.google.com/run/docs/configuring/max-instances-limits): 8 instances of one
    // GPU in a pool of 5 are refused, not let through as "0".
    const fleet = testFleet();
    fleet.projects[0]?.services.push({
      name: 'wide',
      region: REGION,
      gpu: {},
      maxInstances: 2,
      revisionMaxInstances: 8,
      demand: 0,
    } as (typeof fleet.projects)[0]['services'][0]);
    await onOwnFleet(fleet, async (own, ownClients) => {
      const { code, message } = await codeOf(setMax(ownClients, name('wide'), 0));
      expect(code).toBe(status.INVALID_ARGUMENT);
      expect(message).toContain('requested: 8 allowed: 5');
      expect(own.writes()).toHaveLength(0);
    });
  });

  it('does not answer allow_missing for an unknown service as if it were refused: UNIMPLEMENTED', async () => {
    // UpdateServiceRequest.allow_missing: "If set to true, and if the Service does not exist, it
    // will create a new one"
    // (https://cloud.google.com/ruby/docs/reference/google-cloud-run-v2/latest/Google-Cloud-Run-V2-UpdateServiceRequest).
    // The emulator creates no service: not emulated, never NOT_FOUND.
    const { code } = await codeOf(
      clients.services.updateService({
        service: { name: name('not-yet'), scaling: { maxInstanceCount: 1 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
        allowMissing: true,
      }),
    );
    expect(code).toBe(status.UNIMPLEMENTED);
  });

  it('checks a validate_only update and writes nothing', async () => {
    // UpdateServiceRequest.validate_only: "the request should be validated and default values
    // populated, without persisting the request or updating any resources"
    // (https://cloud.google.com/python/docs/reference/run/latest/google.cloud.run_v2.types.UpdateServiceRequest).
    const [before] = await clients.services.getService({ name: name('gamma') });
    const writes = emulator.writes().length;
    const refused = await codeOf(
      clients.services.updateService({
        service: { name: name('gamma'), scaling: { maxInstanceCount: 6 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
        validateOnly: true,
      }),
    );
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    expect(refused.message).toContain('requested: 6 allowed: 5');
    const [op] = await clients.services.updateService({
      service: { name: name('gamma'), etag: before.etag, scaling: { maxInstanceCount: 1 } },
      updateMask: { paths: ['scaling.max_instance_count'] },
      validateOnly: true,
    });
    const [preview] = await op.promise();
    expect(preview.scaling?.maxInstanceCount).toBe(1);
    const [after] = await clients.services.getService({ name: name('gamma') });
    expect(after.scaling?.maxInstanceCount).toBe(before.scaling?.maxInstanceCount);
    expect(after.etag).toBe(before.etag);
    expect(emulator.writes()).toHaveLength(writes);
  });

  it("rejects a max above the pool's quota with Cloud Run's message", async () => {
    const { code, message } = await codeOf(setMax(clients, name('delta'), 3));
    expect(code).toBe(status.INVALID_ARGUMENT);
    expect(message).toContain(
      'Max instances must be set to 2 or fewer in order to set GPU requirements',
    );
    expect(message).toContain(
      'Quota violated: NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion requested: 3 allowed: 2',
    );
    const [s] = await clients.services.getService({ name: name('delta') });
    expect(s.scaling?.maxInstanceCount).toBe(2);
  });

  it('checks the regionless quota entry where a region has none', async () => {
    const { message } = await codeOf(
      clients.services.updateService({
        service: {
          name: `projects/${PROJECT}/locations/europe-west4/services/eu-model`,
          scaling: { maxInstanceCount: 7 },
        },
        updateMask: { paths: ['scaling.max_instance_count'] },
      }),
    );
    expect(message).toContain('requested: 7 allowed: 6');
  });

  it('checks the max written against the quota, whatever the revision-level max', async () => {
    // "the maximum number of instances available for your service is the minimum of ... regional
    // GPU quota ... divided by the GPU configuration for the service", and a quota "would allow a
    // deployment ... to specify a maximum of" that many (Google's "About maximum instances",
    // https://cloud.google.com/run/docs/configuring/max-instances-limits): the max a request
    // specifies is what is held to the quota. A lower revision-level max does not let a
    // service-level max above the quota through.
    const fleet = testFleet();
    fleet.projects[0]?.services.push({
      name: 'capped',
      region: REGION,
      gpu: {},
      maxInstances: 2,
      revisionMaxInstances: 2,
      demand: 0,
    } as (typeof fleet.projects)[0]['services'][0]);
    await onOwnFleet(fleet, async (own, ownClients) => {
      const { code, message } = await codeOf(setMax(ownClients, name('capped'), 6));
      expect(code).toBe(status.INVALID_ARGUMENT);
      expect(message).toContain(
        'Quota violated: NvidiaL4GpuAllocPerProjectRegion requested: 6 allowed: 5',
      );
      expect(own.writes()).toHaveLength(0);
      // Within the quota it is written, and the revision-level max still caps the instances.
      const [op] = await setMax(ownClients, name('capped'), 5);
      const [after] = await op.promise();
      expect(after.scaling?.maxInstanceCount).toBe(5);
      expect(after.template?.scaling?.maxInstanceCount).toBe(2);
    });
  });

  it("holds the max times the GPUs per instance to the quota of the service's own GPU type and zonal redundancy", async () => {
    // "the maximum number of instances available for your service is the minimum of ... regional
    // GPU quota, with or without zonal redundancy, divided by the GPU configuration for the
    // service" (https://cloud.google.com/run/docs/configuring/max-instances-limits): a quota
    // counts GPUs, each GPU type and each zonal-redundancy setting its own.
    const fleet: FleetInput = testFleet();
    const pools = fleet.projects[0]!.pools!;
    const services = fleet.projects[0]!.services!;
    pools.push(
      { region: REGION, accelerator: 'nvidia-rtx-pro-6000', quota: 3 },
      { accelerator: 'nvidia-rtx-pro-6000', quota: 1 },
    );
    const pro = { accelerator: 'nvidia-rtx-pro-6000' };
    services.push(
      { name: 'pair', region: REGION, gpu: { count: 2 }, maxInstances: 1, demand: 0 },
      {
        name: 'pair-nz',
        region: REGION,
        gpu: { count: 2, zonalRedundancy: false },
        maxInstances: 1,
        demand: 0,
      },
      { name: 'pro', region: REGION, gpu: pro, maxInstances: 1, demand: 0 },
      { name: 'pro-eu', region: 'europe-west4', gpu: pro, maxInstances: 1, demand: 0 },
    );
    await onOwnFleet(fleet, async (own, ownClients) => {
      const written = async (service: string, maxInstanceCount: number) => {
        const [op] = await setMax(ownClients, service, maxInstanceCount);
        const [after] = await op.promise();
        return after.scaling?.maxInstanceCount ?? 0;
      };
      const refusal = async (service: string, maxInstanceCount: number) => {
        const { code, message } = await codeOf(setMax(ownClients, service, maxInstanceCount));
        expect(code, `${service} ${maxInstanceCount}`).toBe(status.INVALID_ARGUMENT);
        return message;
      };
      // Two GPUs an instance in the zonal L4 pool of 5: 2 instances (4 GPUs) fit, 3 (6) do not.
      expect(await written(name('pair'), 2)).toBe(2);
      const pair = await refusal(name('pair'), 3);
      expect(pair).toContain('Max instances must be set to 2 or fewer');
      expect(pair).toContain(
        'Quota violated: NvidiaL4GpuAllocPerProjectRegion requested: 6 allowed: 5',
      );
      // Unset (0): the max Cloud Run derives, quota ÷ GPUs per instance, 2 instances, fits.
      expect(await written(name('pair'), 0)).toBe(0);
      // Without zonal redundancy, the pool of 2: one instance of two GPUs exactly fits.
      expect(await written(name('pair-nz'), 1)).toBe(1);
      expect(await refusal(name('pair-nz'), 2)).toContain(
        'Quota violated: NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion requested: 4 allowed: 2',
      );
      // Another GPU type: its own regional quota of 3, not the L4's 5.
      expect(await written(name('pro'), 3)).toBe(3);
      expect(await refusal(name('pro'), 4)).toContain(
        'Quota violated: NvidiaRtxPro6000GpuAllocPerProjectRegion requested: 4 allowed: 3',
      );
      // A pool listed without a value has no entry of its own: the regionless value applies.
      expect(
        await refusal(`projects/${PROJECT}/locations/europe-west4/services/pro-eu`, 2),
      ).toContain('requested: 2 allowed: 1');
      expect(own.writes().map((w) => `${w.service.name} ${w.after.maxInstances}`)).toEqual([
        'pair 2',
        'pair 0',
        'pair-nz 1',
        'pro 3',
      ]);
    });
  });

  it('takes a max above 1000 that the quota allows: no other ceiling is documented', async () => {
    // "the maximum number of instances available for your service is the minimum of ... regional
    // GPU quota ... divided by the GPU configuration for the service"
    // (https://cloud.google.com/run/docs/configuring/max-instances-limits); the field is an int32.
    const fleet = testFleet();
    const pool = fleet.projects[0]!.pools[0]!;
    pool.quota = 1500;
    await onOwnFleet(fleet, async (own, ownClients) => {
      const [s] = await ownClients.services.getService({ name: name('alpha') });
      const [op] = await ownClients.services.updateService({
        service: { name: name('alpha'), etag: s.etag, scaling: { maxInstanceCount: 1200 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      });
      const [after] = await op.promise();
      expect(after.scaling?.maxInstanceCount).toBe(1200);
      const above = await codeOf(setMax(ownClients, name('alpha'), 1501));
      expect(above.code).toBe(status.INVALID_ARGUMENT);
      expect(above.message).toContain('requested: 1501 allowed: 1500');
    });
  });

  it('refuses the whole fetched Service even with a mask, as Cloud Run does', async () => {
    const [full] = await clients.services.getService({ name: name('beta') });
    const before = emulator.writes().length;
    // Cloud Run answers the whole fetched Service 409 even with an update mask
    // (https://github.com/googleapis/google-cloud-python/issues/14259).
    const whole = await codeOf(
      clients.services.updateService({
        service: full,
        updateMask: { paths: ['scaling.max_instance_count'] },
      }),
    );
    expect(whole.code).toBe(status.ALREADY_EXISTS);
    expect(whole.message).toContain('with different configuration already exists');
    // Other fields outside the minimal Service: undocumented, refused to fail safe.
    const labelled = await codeOf(
      clients.services.updateService({
        service: { name: name('beta'), labels: { a: 'b' }, scaling: { maxInstanceCount: 1 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      }),
    );
    expect(labelled.code).toBe(status.INVALID_ARGUMENT);
    expect(labelled.message).toContain('Service.labels is set');
    const minCount = await codeOf(
      clients.services.updateService({
        service: { name: name('beta'), scaling: { maxInstanceCount: 1, minInstanceCount: 1 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      }),
    );
    expect(minCount.code).toBe(status.INVALID_ARGUMENT);
    expect(emulator.writes().length).toBe(before);
    const noMask = await codeOf(
      clients.services.updateService({
        service: { name: name('beta'), scaling: { maxInstanceCount: 1 } },
      }),
    );
    expect(noMask.code).toBe(status.UNIMPLEMENTED);
    // A valid path the emulator does not write is UNIMPLEMENTED; a path naming no field is refused.
    const otherPath = await codeOf(
      clients.services.updateService({
        service: { name: name('beta'), labels: { a: 'b' } },
        updateMask: { paths: ['labels'] },
      }),
    );
    expect(otherPath.code).toBe(status.UNIMPLEMENTED);
    const noField = await codeOf(
      clients.services.updateService({
        service: { name: name('beta') },
        updateMask: { paths: ['no_such_field'] },
      }),
    );
    expect(noField.code).toBe(status.INVALID_ARGUMENT);
  });

  it('refuses a mask path that maps to no field at any depth, as FieldMask verification requires', async () => {
    // "return an INVALID_ARGUMENT error if any path is unmappable" (google/protobuf/field_mask.proto),
    // and "a repeated field is not allowed except at the last position of a paths string".
    const before = emulator.writes().length;
    for (const path of [
      'scaling.no_such_field',
      'scaling.max_instance_count.more',
      'name.first',
      'template.containers.image',
      'template.no_such_field',
    ]) {
      const refused = await codeOf(
        clients.services.updateService({
          service: { name: name('beta') },
          updateMask: { paths: [path] },
        }),
      );
      expect(refused.code, path).toBe(status.INVALID_ARGUMENT);
      expect(refused.message, path).toContain(path);
    }
    // Mappable paths the emulator does not write stay UNIMPLEMENTED, a map key among them.
    for (const path of ['scaling.min_instance_count', 'template.scaling', 'labels.team']) {
      const valid = await codeOf(
        clients.services.updateService({
          service: { name: name('beta') },
          updateMask: { paths: [path] },
        }),
      );
      expect(valid.code, path).toBe(status.UNIMPLEMENTED);
    }
    expect(emulator.writes().length).toBe(before);
  });

  it('takes the "*" mask as the whole replacement AIP-134 makes it, not as a path naming no field', async () => {
    // "Update masks must support a special value `*`, meaning full replacement (the equivalent of
    // PUT)" (https://google.aip.dev/134): valid on Google, and a whole replacement is not
    // emulated, as with no mask at all: UNIMPLEMENTED, not INVALID_ARGUMENT.
    const before = emulator.writes().length;
    for (const paths of [['*'], ['*', 'scaling.max_instance_count']]) {
      const refused = await codeOf(
        clients.services.updateService({
          service: { name: name('beta'), scaling: { maxInstanceCount: 2 } },
          updateMask: { paths },
        }),
      );
      expect(refused.code, paths.join(',')).toBe(status.UNIMPLEMENTED);
      expect(refused.message).toContain('whole');
    }
    expect(emulator.writes().length).toBe(before);
  });

  it('ignores output-only fields of the Service sent back, as field_behavior requires', async () => {
    // google/api/field_behavior.proto: OUTPUT_ONLY "including the field in a request does nothing
    // (the server *must* ignore it and *must not* throw an error as a result of the field's
    // presence)". A client that sends back what it read of them is not refused.
    const [read] = await clients.services.getService({ name: name('web') });
    const [operation] = await clients.services.updateService({
      service: {
        name: name('web'),
        etag: read.etag,
        scaling: { maxInstanceCount: 4 },
        uid: read.uid,
        generation: read.generation,
        createTime: read.createTime,
        updateTime: read.updateTime,
        observedGeneration: read.observedGeneration,
        terminalCondition: read.terminalCondition,
        conditions: read.conditions,
        latestReadyRevision: read.latestReadyRevision,
        latestCreatedRevision: read.latestCreatedRevision,
        uri: read.uri,
        reconciling: true,
      },
      updateMask: { paths: ['scaling.max_instance_count'] },
    });
    const [after] = await operation.promise();
    expect(after.scaling?.maxInstanceCount).toBe(4);
    // Ignored, not written: the service's own output-only values stand.
    expect(after.uid).toBe(read.uid);
    expect(after.reconciling).toBe(false);
    expect(Number(after.generation)).toBe(Number(read.generation) + 1);
    // A field that is not output only (labels) is still refused, the fail-safe side.
    const labelled = await codeOf(
      clients.services.updateService({
        service: { name: name('web'), uid: read.uid, labels: { a: 'b' } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      }),
    );
    expect(labelled.code).toBe(status.INVALID_ARGUMENT);
    expect(labelled.message).toContain('Service.labels is set');
  });

  it('shows a deployment in flight as reconciling and refuses to write it', async () => {
    emulator.deploy({ service: 'render-x', seconds: 120 });
    const [s] = await clients.services.getService({ name: name('render-x') });
    expect(s.reconciling).toBe(true);
    expect(s.terminalCondition?.state).toBe('CONDITION_RECONCILING');
    const { code } = await codeOf(setMax(clients, name('render-x'), 2));
    expect(code).toBe(status.FAILED_PRECONDITION);
    emulator.advance(180_000);
    const [done] = await clients.services.getService({ name: name('render-x') });
    expect(done.reconciling).toBe(false);
    expect(done.latestReadyRevision).toMatch(/render-x-00002-/);
  });

  it('lists worker pools with their GPUs', async () => {
    const [pools] = await clients.workerPools.listWorkerPools({ parent: PARENT });
    const encoder = pools.find((p) => p.name === `${PARENT}/workerPools/encoder`);
    expect(encoder?.scaling?.manualInstanceCount).toBe(1);
    expect(encoder?.template?.nodeSelector?.accelerator).toBe('nvidia-l4');
    expect(encoder?.template?.containers?.[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('1');
    expect(pools).toHaveLength(2);
  });

  it("lists the project's regions through the locations mixin", async () => {
    const regions: string[] = [];
    for await (const location of clients.services.listLocationsAsync({
      name: `projects/${PROJECT}`,
    })) {
      regions.push(location.locationId ?? '');
      expect(location.name).toBe(`projects/${PROJECT}/locations/${location.locationId}`);
    }
    expect(regions).toEqual(['europe-west4', REGION]);
    const { code } = await codeOf(
      clients.services.getLocation({ name: `projects/${PROJECT}/locations/${REGION}` }),
    );
    expect(code).toBe(status.UNIMPLEMENTED);
    const denied = clients.services.listLocationsAsync({ name: 'projects/someone-else' });
    const { code: deniedCode } = await codeOf(
      (async () => {
        for await (const location of denied) expect(location).toBeUndefined();
      })(),
    );
    expect(deniedCode).toBe(status.PERMISSION_DENIED);
    expect(emulator.calls().map((c) => `${c.method} ${c.code}`)).toEqual([
      'google.cloud.location.Locations/ListLocations OK',
      'google.cloud.location.Locations/GetLocation UNIMPLEMENTED',
      'google.cloud.location.Locations/ListLocations PERMISSION_DENIED',
    ]);
  });

  it('checks the ids of a TestIamPermissions resource before anything else', async () => {
    // Resource ids in Cloud Run names are checked before anything is looked up (AIP-122,
    // rpc.ts checkSegment): a malformed service id is INVALID_ARGUMENT, not an empty answer.
    for (const resource of [name('1starts-with-a-digit'), name(`s${'x'.repeat(60)}`)]) {
      const { code, message } = await codeOf(
        clients.services.testIamPermissions({ resource, permissions: ['run.services.get'] }),
      );
      expect(code, resource).toBe(status.INVALID_ARGUMENT);
      expect(message).toContain('the service id of resource');
    }
    // A service that does not exist still answers no permission (iam_policy.proto).
    const [none] = await clients.services.testIamPermissions({
      resource: name('no-such-service'),
      permissions: ['run.services.get'],
    });
    expect(none.permissions ?? []).toEqual([]);
  });

  it('refuses ListOperations on a project outside the fleet before looking anything up', async () => {
    // "Permission must be checked prior to checking if the resource or parent exists" (AIP-211,
    // https://google.aip.dev/211): a project outside the fleet, as GetOperation answers it.
    const operations = clients.services.operationsClient;
    type ListRequest = Parameters<typeof operations.listOperations>[0];
    const list = (parent: string) =>
      operations.listOperations({ name: parent, filter: '' } as ListRequest);
    const { code } = await codeOf(list(`projects/someone-else/locations/${REGION}`));
    expect(code).toBe(status.PERMISSION_DENIED);
    await list(PARENT);
  });

  it("pages ListOperations over its location's operations only, and binds each page token to its request", async () => {
    // ListOperationsRequest.name: "The name of the operation's parent resource"; page_size and
    // page_token: "The standard list page size/token"
    // (https://cloud.google.com/dotnet/docs/reference/Google.LongRunning/latest/Google.LongRunning.ListOperationsRequest).
    // A token is for the request that produced it: "if any arguments are different, the API
    // should send an INVALID_ARGUMENT error" (https://google.aip.dev/158).
    await onOwnFleet(testFleet(), async (own, ownClients) => {
      const operations = ownClients.services.operationsClient;
      type ListRequest = Parameters<typeof operations.listOperations>[0];
      const europe = `projects/${PROJECT}/locations/europe-west4`;
      const page = async (parent: string, more: Record<string, unknown> = {}) => {
        // Without auto-paging the client answers [operations, next request, response], whatever
        // its declared type says.
        const [ops, , response] = (await operations.listOperations(
          { name: parent, filter: '', ...more } as ListRequest,
          { autoPaginate: false },
        )) as unknown as [{ name?: string }[], unknown, { nextPageToken?: string } | undefined];
        const next = response?.nextPageToken ?? '';
        return { names: ops.map((o) => o.name ?? ''), next };
      };
      const started: string[] = [];
      for (const service of [name('alpha'), name('beta'), `${europe}/services/eu-model`]) {
        const [op] = await setMax(ownClients, service, 1);
        started.push(op.name ?? '');
      }
      const first = await page(PARENT, { pageSize: 1 });
      expect(first.names).toHaveLength(1);
      expect(first.next).not.toBe('');
      const second = await page(PARENT, { pageSize: 1, pageToken: first.next });
      expect(second.next).toBe('');
      expect([...first.names, ...second.names].sort()).toEqual(started.slice(0, 2).sort());
      expect((await page(europe)).names).toEqual([started[2]]);
      const foreign = await codeOf(page(europe, { pageSize: 1, pageToken: first.next }));
      expect(foreign.code).toBe(status.INVALID_ARGUMENT);
      // "The standard list filter": valid, and not evaluated here, so never answered unfiltered.
      const filtered = await codeOf(page(PARENT, { filter: 'done = true' }));
      expect(filtered.code).toBe(status.UNIMPLEMENTED);
    });
  });

  it("lists the other operations of a location once a service is deleted, and answers the deleted one's as gone", async () => {
    await onOwnFleet(testFleet(), async (own, ownClients) => {
      const operations = ownClients.services.operationsClient;
      type ListRequest = Parameters<typeof operations.listOperations>[0];
      type GetRequest = Parameters<typeof operations.getOperation>[0];
      const [gone] = await setMax(ownClients, name('alpha'), 1);
      const [kept] = await setMax(ownClients, name('beta'), 1);
      own.deleteService({ service: 'alpha' });
      // Without auto-paging the client answers [operations, next request, response], whatever
      // its declared type says.
      const [listed] = (await operations.listOperations(
        { name: PARENT, filter: '' } as ListRequest,
        { autoPaginate: false },
      )) as unknown as [{ name?: string }[]];
      expect(listed.map((o) => o.name)).toEqual([kept.name]);
      const get = await codeOf(operations.getOperation({ name: gone.name ?? '' } as GetRequest));
      expect(get.code).toBe(status.NOT_FOUND);
      expect(get.message).toContain(`Operation ${gone.name ?? ''} was not found`);
    });
  });

  it('binds a ListLocations page token to its project, and does not answer a filter unfiltered', async () => {
    // ListLocationsRequest.filter: "A filter to narrow down results to a preferred subset"
    // (https://cloud.google.com/media-cdn/docs/reference/rest/Shared.Types/ListLocationsRequest);
    // a page token of another request is INVALID_ARGUMENT (https://google.aip.dev/158).
    const fleet: FleetInput = testFleet();
    fleet.projects.push({
      id: 'second-project',
      services: [
        { name: 'one', region: 'us-east4', maxInstances: 1, demand: 0 },
        { name: 'two', region: 'europe-west1', maxInstances: 1, demand: 0 },
      ],
    });
    const own = await startEmulator({ fleet, speed: 'manual' });
    const ownClients = clientsFor(own);
    try {
      const [mine, , response] = await ownClients.services.locationsClient.listLocations(
        { name: `projects/${PROJECT}`, pageSize: 1 },
        { autoPaginate: false },
      );
      expect(mine.map((l) => l.locationId)).toEqual(['europe-west4']);
      const token = response?.nextPageToken ?? '';
      expect(token).not.toBe('');
      const [next] = await ownClients.services.locationsClient.listLocations(
        { name: `projects/${PROJECT}`, pageSize: 1, pageToken: token },
        { autoPaginate: false },
      );
      expect(next.map((l) => l.locationId)).toEqual([REGION]);
      const foreign = await codeOf(
        ownClients.services.locationsClient.listLocations(
          { name: 'projects/second-project', pageSize: 1, pageToken: token },
          { autoPaginate: false },
        ),
      );
      expect(foreign.code).toBe(status.INVALID_ARGUMENT);
      const filtered = await codeOf(
        ownClients.services.locationsClient.listLocations(
          { name: `projects/${PROJECT}`, filter: 'displayName=tokyo' },
          { autoPaginate: false },
        ),
      );
      expect(filtered.code).toBe(status.UNIMPLEMENTED);
    } finally {
      await closeClients(ownClients);
      await own.stop();
    }
  });

  it('answers UNIMPLEMENTED for every other method, and logs it', async () => {
    const { code, message } = await codeOf(clients.services.deleteService({ name: name('web') }));
    expect(code).toBe(status.UNIMPLEMENTED);
    expect(message).toContain('DeleteService');
    const unexpected = emulator.calls().filter((c) => c.code === 'UNIMPLEMENTED');
    expect(unexpected.map((c) => c.method)).toEqual(['google.cloud.run.v2.Services/DeleteService']);
    expect(unexpected[0]?.request).toMatchObject({ name: name('web') });
  });
});
