/**
 * Permission checks through the real clients over gRPC, against the emulator's IAM (a fleet's
 * `iam.denied`): Cloud Run's and Pub/Sub's TestIamPermissions answer what Google answers, and the
 * calls a denied permission guards fail with PERMISSION_DENIED, so the check and the run agree.
 */
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../../src/adapters/client-config.js';

import { createCloudRunAdapter, type CloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMonitoringAdapter, type MonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createPubSubAlertSink, type PubSubAlertSink } from '../../src/adapters/pubsub.js';
import { createQuotaAdapter, type QuotaAdapter } from '../../src/adapters/quotas.js';
import { PermissionError, UpstreamError } from '../../src/core/errors.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

const OPEN = 'open-project';
const LOCKED = 'locked-project';
const REGION = 'us-central1';
const TOPIC = `projects/${OPEN}/topics/gpu-alerts`;
const LOCKED_TOPIC = `projects/${LOCKED}/topics/gpu-alerts`;

const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  topics: [TOPIC, LOCKED_TOPIC],
  projects: [
    {
      id: OPEN,
      pools: [{ region: REGION, quota: 8 }],
      services: [
        { name: 'writable', region: REGION, gpu: {}, maxInstances: 2 },
        {
          name: 'read-only',
          region: REGION,
          gpu: {},
          maxInstances: 2,
          iam: { denied: ['run.services.update'] },
        },
        {
          name: 'no-act-as',
          region: REGION,
          gpu: {},
          maxInstances: 2,
          iam: { denied: ['iam.serviceAccounts.actAs'] },
        },
      ],
    },
    {
      id: LOCKED,
      pools: [{ region: REGION, quota: 8 }],
      services: [{ name: 'svc', region: REGION, gpu: {}, maxInstances: 2 }],
      iam: {
        denied: [
          'run.workerpools.list',
          'run.operations.get',
          'monitoring.timeSeries.list',
          'monitoring.timeSeries.create',
          'cloudquotas.quotas.get',
          'pubsub.topics.publish',
        ],
      },
    },
  ],
};

let emulator: RunningEmulator;
let run: CloudRunAdapter;
let monitoring: MonitoringAdapter;
let quotas: QuotaAdapter;
const sinks: PubSubAlertSink[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 0 });
  const emulatorHost = emulator.host;
  const retry = { maxAttempts: 1 };
  run = createCloudRunAdapter({ emulatorHost, retry });
  monitoring = createMonitoringAdapter({ emulatorHost, retry });
  quotas = createQuotaAdapter({ emulatorHost, retry });
});

afterAll(async () => {
  await Promise.all([
    run.close(),
    monitoring.close(),
    quotas.close(),
    ...sinks.map((s) => s.close()),
  ]);
  await emulator.stop();
});

function sink(topic: string): PubSubAlertSink {
  const s = createPubSubAlertSink({ topic, maxAttempts: 1, emulatorHost: emulator.host });
  sinks.push(s);
  return s;
}

const BOTH = ['run.services.get', 'run.services.update'];

describe('Cloud Run TestIamPermissions', () => {
  it('answers the subset the caller holds, per service', async () => {
    expect(await run.testPermissions(OPEN, REGION, 'writable', BOTH)).toEqual(BOTH);
    expect(await run.testPermissions(OPEN, REGION, 'read-only', BOTH)).toEqual([
      'run.services.get',
    ]);
  });

  it('takes run.routes.invoke, a permission held on a service', async () => {
    // roles/run.invoker (run.routes.invoke) can be granted on a Cloud Run service
    // (https://cloud.google.com/iam/docs/roles-permissions/run): testable there, not refused.
    expect(await run.testPermissions(OPEN, REGION, 'writable', ['run.routes.invoke'])).toEqual([
      'run.routes.invoke',
    ]);
  });

  it('answers an empty set for a service that does not exist, not NOT_FOUND', async () => {
    expect(await run.testPermissions(OPEN, REGION, 'nobody', BOTH)).toEqual([]);
  });

  it('refuses wildcards and permissions of another resource type (INVALID_ARGUMENT)', async () => {
    await expect(run.testPermissions(OPEN, REGION, 'writable', ['run.*'])).rejects.toThrow(
      /wildcards/,
    );
    await expect(
      run.testPermissions(OPEN, REGION, 'writable', ['iam.serviceAccounts.actAs']),
    ).rejects.toThrow(/not valid for a Cloud Run service/);
  });

  it('a denied permission also refuses the call it guards', async () => {
    const svc = await run.getService(OPEN, REGION, 'read-only');
    const write = run.updateMaxInstances({
      project: OPEN,
      region: REGION,
      name: 'read-only',
      maxInstances: 1,
      etag: svc.etag,
      annotations: {},
    });
    await expect(write).rejects.toBeInstanceOf(PermissionError);
    await expect(write).rejects.toThrow(
      `Permission 'run.services.update' denied on resource 'projects/${OPEN}/locations/${REGION}/services/read-only'`,
    );
    // actAs is asked of the update too, though TestIamPermissions on the service cannot test it.
    // Cloud Run names the runtime service account it is held on, in its own casing.
    const other = await run.getService(OPEN, REGION, 'no-act-as');
    const account = `${OPEN}-run@${OPEN}.iam.gserviceaccount.com`;
    const actAs = await run
      .updateMaxInstances({
        project: OPEN,
        region: REGION,
        name: 'no-act-as',
        maxInstances: 1,
        etag: other.etag,
        annotations: {},
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(actAs).toBeInstanceOf(PermissionError);
    expect(actAs).toMatchObject({ permissions: ['iam.serviceaccounts.actAs'], resource: account });
    expect((actAs as Error).message).toContain(
      `Permission 'iam.serviceaccounts.actAs' denied on service account ${account} (or it may not exist).`,
    );
    expect(emulator.writes()).toEqual([]);
  });

  it('project-level denials refuse listings, Monitoring and Cloud Quotas', async () => {
    await expect(run.listWorkerPools(LOCKED, REGION)).rejects.toBeInstanceOf(PermissionError);
    expect(await run.listServices(LOCKED, REGION)).toHaveLength(1);
    await expect(monitoring.probe(LOCKED, Date.parse(fleet.start))).rejects.toThrow(
      /monitoring\.timeSeries\.list/,
    );
    await expect(
      quotas.gpuQuota({
        project: LOCKED,
        region: REGION,
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
      }),
    ).rejects.toBeInstanceOf(PermissionError);
    await expect(monitoring.probe(OPEN, Date.parse(fleet.start))).resolves.toBeUndefined();
    // The governor's own metrics: CreateTimeSeries needs monitoring.timeSeries.create.
    const point = {
      metric: 'unit/duration',
      labels: { unit: 'project' },
      valueType: 'DOUBLE' as const,
      value: 1,
    };
    const at = emulator.now().getTime();
    const write = monitoring.writeGovernorMetrics?.bind(monitoring);
    if (!write) throw new Error('the Monitoring adapter has no writeGovernorMetrics');
    const denied = write(LOCKED, at, [point]);
    await expect(denied).rejects.toBeInstanceOf(PermissionError);
    await expect(denied).rejects.toThrow(/monitoring\.timeSeries\.create/);
    await expect(write(OPEN, at, [point])).resolves.toBe('written');
  });
});

describe('Cloud Quotas preferences', () => {
  it('an update needs cloudquotas.quotas.update, a read cloudquotas.quotas.get', async () => {
    // The methods' "IAM Permissions"
    // (https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences/patch
    // and .../get): the locked project denies only the read, so an update of a preference it does
    // not have is NOT_FOUND, and a read of it PERMISSION_DENIED.
    const client = new CloudQuotasClient(clientConfig({ emulatorHost: emulator.host }).options);
    const name = `projects/${LOCKED}/locations/global/quotaPreferences/none`;
    const codeOf = (call: Promise<unknown>) =>
      call.then(
        () => 0,
        (e: { code?: number }) => e.code,
      );
    try {
      expect(await codeOf(client.updateQuotaPreference({ quotaPreference: { name } }))).toBe(
        status.NOT_FOUND,
      );
      expect(await codeOf(client.getQuotaPreference({ name }))).toBe(status.PERMISSION_DENIED);
    } finally {
      await client.close();
    }
  });
});

describe('run.operations.get, probed without a write', () => {
  it('GetOperation of an operation that does not exist: NOT_FOUND is allowed, a denial is not', async () => {
    await expect(run.probeOperations(OPEN, REGION)).resolves.toBeUndefined();
    const denied = run.probeOperations(LOCKED, REGION);
    await expect(denied).rejects.toBeInstanceOf(PermissionError);
    await expect(denied).rejects.toThrow(
      new RegExp(
        `Permission 'run\\.operations\\.get' denied on resource 'projects/${LOCKED}/locations/${REGION}/operations/`,
      ),
    );
    expect(emulator.writes()).toEqual([]);
  });
});

describe('Pub/Sub topic TestIamPermissions (google.iam.v1.IAMPolicy)', () => {
  it('says whether the caller may publish, without publishing', async () => {
    expect(await sink(TOPIC).canPublish()).toBe(true);
    expect(await sink(LOCKED_TOPIC).canPublish()).toBe(false);
    // A topic that does not exist reads as not granted: TestIamPermissions answers no NOT_FOUND.
    expect(await sink(`projects/${OPEN}/topics/missing-topic`).canPublish()).toBe(false);
    expect(emulator.published()).toEqual([]);
  });

  it('a denied publish fails as Pub/Sub fails it', async () => {
    const publish = sink(LOCKED_TOPIC).publish([
      { data: { a: 1 }, attributes: { type: 't' }, orderingKey: 'k' },
    ]);
    await expect(publish).rejects.toBeInstanceOf(UpstreamError);
    await expect(publish).rejects.toThrow(/PERMISSION_DENIED|not authorized/);
  });
});
