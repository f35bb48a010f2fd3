import { afterAll, beforeAll, expect, it } from 'vitest';

import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import type { CloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { PROJECT } from '../emulator/helpers.js';

/**
 * The result of an update's long-running operation is the service as that update left it: a
 * write by another writer after the operation ended is not in it, so the etag the governor keeps
 * for its next write of the service is the one its own write produced, and that next write is
 * refused as stale should someone have changed the service since.
 */

const US = 'us-central1';
let emulator: RunningEmulator;
let governor: CloudRunAdapter;
let other: CloudRunAdapter;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      projects: [
        {
          id: PROJECT,
          pools: [{ region: US, quota: 10 }],
          services: [{ name: 'web', region: US, gpu: {}, maxInstances: 4, demand: 1 }],
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 100,
  });
  const retry = { maxAttempts: 1, attemptTimeoutMs: 10_000 };
  // The governor polls its operation only once it has long ended.
  governor = createCloudRunAdapter({
    emulatorHost: emulator.host,
    retry,
    operationPolling: { initialDelayMs: 3_000, maxDelayMs: 3_000 },
  });
  other = createCloudRunAdapter({
    emulatorHost: emulator.host,
    retry,
    operationPolling: { initialDelayMs: 50, maxDelayMs: 50 },
  });
});

afterAll(async () => {
  await governor?.close();
  await other?.close();
  await emulator?.stop();
});

it("answers an ended update's operation with the service as that update left it, not as another writer left it since", async () => {
  const before = await governor.getService(PROJECT, US, 'web');
  const mine = governor.updateMaxInstances({
    project: PROJECT,
    region: US,
    name: 'web',
    maxInstances: 6,
    etag: before.etag,
    annotations: {},
  });
  // Once the operation has ended (100 ms), and before the governor polls it (3 s).
  await new Promise((resolve) => setTimeout(resolve, 400));
  const seen = await other.getService(PROJECT, US, 'web');
  expect(seen.serviceMaxInstances).toBe(6);
  const theirs = await other.updateMaxInstances({
    project: PROJECT,
    region: US,
    name: 'web',
    maxInstances: 5,
    etag: seen.etag,
    annotations: { 'team.example.com/owner': 'other' },
  });
  const written = await mine;
  expect(written.serviceMaxInstances).toBe(6);
  expect(written.etag).toBe(seen.etag);
  expect(written.annotations['team.example.com/owner']).toBeUndefined();
  // The governor's next write of the service, on the etag its write left, is refused as stale.
  await expect(
    governor.updateMaxInstances({
      project: PROJECT,
      region: US,
      name: 'web',
      maxInstances: 3,
      etag: written.etag,
      currentAnnotations: written.annotations,
      annotations: {},
    }),
  ).rejects.toThrow(/etag|changed/);
  expect((await other.getService(PROJECT, US, 'web')).serviceMaxInstances).toBe(
    theirs.serviceMaxInstances,
  );
});
