import { v2 as run } from '@google-cloud/run';
import { MetricServiceClient } from '@google-cloud/monitoring';
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { TEST_FLEET_PROJECT, TEST_FLEET_REGION } from '../support/fixtures.js';

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

export const PROJECT = TEST_FLEET_PROJECT;
export const REGION = TEST_FLEET_REGION;
export const PARENT = `projects/${PROJECT}/locations/${REGION}`;

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
