import { v2 as run } from '@google-cloud/run';
import { MetricServiceClient } from '@google-cloud/monitoring';
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { afterAll, beforeAll } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { TEST_FLEET_PROJECT, TEST_FLEET_REGION, testFleet } from '../support/fixtures.js';

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

/**
 * An emulator on the test fleet (manual clock) and clients for it, for the whole test file: started
 * before its first test, stopped after its last. Read `emulator` and `clients` inside tests.
 */
export function emulatorAndClients(): {
  readonly emulator: RunningEmulator;
  readonly clients: Clients;
} {
  let emulator: RunningEmulator | undefined;
  let clients: Clients | undefined;
  beforeAll(async () => {
    emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
    clients = clientsFor(emulator);
  });
  afterAll(async () => {
    if (clients) await closeClients(clients);
    await emulator?.stop();
  });
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('the emulator is started before the first test');
    return x;
  };
  return {
    get emulator() {
      return started(emulator);
    },
    get clients() {
      return started(clients);
    },
  };
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
