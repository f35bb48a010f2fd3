import { v2 as run } from '@google-cloud/run';
import { MetricServiceClient } from '@google-cloud/monitoring';
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { emulatorClientOptions } from '../../src/emulator/client-options.js';
import type { RunningEmulator } from '../../src/emulator/index.js';

/** Real Google client libraries pointed at a running emulator. */
export function clientsFor(emulator: RunningEmulator) {
  const host = emulator.env['GOVERNOR_EMULATOR_HOST'];
  if (host === undefined) throw new Error('the emulator did not export GOVERNOR_EMULATOR_HOST');
  const options = emulatorClientOptions(host);
  return {
    services: new run.ServicesClient(options),
    workerPools: new run.WorkerPoolsClient(options),
    metrics: new MetricServiceClient(options),
    quotas: new CloudQuotasClient(options),
  };
}

export type Clients = ReturnType<typeof clientsFor>;

export async function closeClients(clients: Clients): Promise<void> {
  await Promise.all(Object.values(clients).map((c) => c.close()));
}

export const PROJECT = 'test-project';
export const REGION = 'us-central1';
export const PARENT = `projects/${PROJECT}/locations/${REGION}`;

/**
 * A small fleet: quota 5 in the zonal L4 pool of us-central1 (one GPU of it held by a worker
 * pool), no regional quota in europe-west4 but a regionless default of 6, and quota 2 without
 * zonal redundancy. Virtual time starts at 12:00 UTC.
 */
export function testFleet() {
  return {
    start: '2026-11-27T12:00:00Z',
    startupSeconds: 30,
    idleMinutes: 0,
    warmupMinutes: 30,
    projects: [
      {
        id: PROJECT,
        pools: [
          { region: REGION, quota: 5 },
          { region: REGION, zonalRedundancy: false, quota: 2 },
          { quota: 6 },
          { region: 'europe-west4', accelerator: 'nvidia-rtx-pro-6000' },
        ],
        services: [
          {
            name: 'alpha',
            region: REGION,
            gpu: {},
            maxInstances: 2,
            demand: 2,
            labels: { team: 'a' },
          },
          { name: 'beta', region: REGION, gpu: {}, maxInstances: 3, demand: 1 },
          { name: 'gamma', region: REGION, gpu: {}, maxInstances: 2, demand: 0 },
          {
            name: 'delta',
            region: REGION,
            gpu: { zonalRedundancy: false },
            maxInstances: 2,
            demand: 1,
          },
          {
            name: 'render-x',
            region: REGION,
            gpu: {},
            maxInstances: 1,
            minInstances: 1,
            demand: 0,
          },
          { name: 'web', region: REGION, maxInstances: 10, demand: 3 },
          { name: 'eu-model', region: 'europe-west4', gpu: {}, maxInstances: 2, demand: 1 },
        ],
        workerPools: [
          { name: 'encoder', region: REGION, gpu: {}, manualInstanceCount: 1 },
          { name: 'cpu-worker', region: REGION, manualInstanceCount: 2 },
        ],
      },
    ],
  };
}

/** The gRPC status code of a rejected call. */
export async function codeOf(
  promise: Promise<unknown>,
): Promise<{ code: number | undefined; message: string }> {
  try {
    await promise;
  } catch (error) {
    const code =
      typeof error === 'object' && error !== null && 'code' in error
        ? Number(error.code)
        : undefined;
    return { code, message: error instanceof Error ? error.message : String(error) };
  }
  throw new Error('expected the call to fail, and it succeeded');
}
