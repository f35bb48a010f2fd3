import { AssetServiceClient } from '@google-cloud/asset';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { codeOf } from './helpers.js';
import { ORG, orgFleet } from '../support/org-fleet.js';

/**
 * The emulator's timed match of an `asset_types` pattern (asset-api.ts) on a machine so loaded
 * that every timed match runs out of its budget: the governor's own plain patterns are matched
 * outside the timer and still answered. Before, a loaded CI machine made the organisation's
 * dispatch fail with UNIMPLEMENTED for "run.googleapis.com/WorkerPool".
 */

vi.mock('node:vm', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:vm')>();
  return {
    ...real,
    runInNewContext: () => {
      throw Object.assign(new Error('Script execution timed out.'), {
        code: 'ERR_SCRIPT_EXECUTION_TIMEOUT',
      });
    },
  };
});

let emulator: RunningEmulator;
let client: AssetServiceClient;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: orgFleet({ projects: 3, services: 1 }),
    speed: 'manual',
  });
  client = new AssetServiceClient(
    emulatorClientOptions(emulator.env['GOVERNOR_EMULATOR_HOST'] ?? ''),
  );
});
afterAll(async () => {
  await client.close();
  await emulator.stop();
});

it('answers plain patterns whatever the load; a quantified one is cut off as before', async () => {
  const [results] = await client.searchAllResources(
    {
      scope: `organizations/${ORG}`,
      assetTypes: ['run.googleapis.com/Service', 'run.googleapis.com/WorkerPool'],
      pageSize: 500,
    },
    { autoPaginate: false },
  );
  expect(results.length).toBe(3);
  const slow = await codeOf(
    client.searchAllResources(
      { scope: `organizations/${ORG}`, assetTypes: ['run\\.googleapis\\.com/.*'] },
      { autoPaginate: false },
    ),
  );
  expect(slow.code).toBe(status.UNIMPLEMENTED);
});
