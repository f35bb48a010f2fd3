/**
 * The emulator's in-memory ports (ports.ts, what the simulator and the chaos runs give the
 * governor) and Google's own clients over gRPC read the same fleet alike: what the governor plans
 * from a service (its GPU and containers, its min instances, its max at each level, which
 * revisions serve) is the same both ways. Service.template is "The template used to create
 * revisions for this Service" (google/cloud/run/v2/service.proto): the latest created revision's
 * own GPU and scaling, also while a revision deployed without traffic (or made for a split) is
 * the latest and another serves.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { startEmulator, type FleetInput, type RunningEmulator } from '../../src/emulator/index.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import type { ObservedService } from '../../src/core/service.js';

const PROJECT = 'agree-project';
const REGION = 'us-central1';

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 32 }],
      services: [
        {
          name: 'plain',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          revisionMinInstances: 1,
        },
        {
          name: 'split',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          previousRevision: { maxInstances: 5, percent: 20 },
        },
        // The serving revision keeps one instance warm; the one deployed without traffic none.
        {
          name: 'pinned',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          revisionMinInstances: 1,
          noTrafficRevision: { maxInstances: 1, minInstances: 0 },
        },
        // The other way round: the latest, without traffic, keeps two warm.
        {
          name: 'warm',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          revisionMinInstances: 0,
          noTrafficRevision: { maxInstances: 2, minInstances: 2, tag: 'next' },
        },
        // The latest, without traffic, runs without a GPU: the template shows none.
        {
          name: 'moved',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          noTrafficRevision: { maxInstances: 2, minInstances: 0, gpu: null },
        },
        // Serving its first revision with a min: an edit's split makes the latest after it.
        {
          name: 'first',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 4,
          revisionMinInstances: 2,
        },
      ],
    },
  ],
};

let emulator: RunningEmulator;
let google: GooglePorts;

beforeEach(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 10 });
  google = createGooglePorts({ emulatorHost: emulator.host, emulatorOperationPollMs: 20 });
});
afterEach(async () => {
  await google.close();
  await emulator.stop();
});

/** What the governor plans a service from. */
function planned(s: ObservedService) {
  return {
    name: s.name,
    gpu: s.gpu,
    serviceMinInstances: s.serviceMinInstances,
    revisionMinInstances: s.revisionMinInstances,
    // observe.ts: the plan's min instances.
    minInstances: Math.max(s.serviceMinInstances ?? 0, s.revisionMinInstances ?? 0),
    serviceMaxInstances: s.serviceMaxInstances,
    revisionMaxInstances: s.revisionMaxInstances,
    containers: s.containers.map((c) => [c.name, c.gpus, c.cpuIdle]),
    templateServes: s.templateServes ?? true,
    servingRevisions: (s.servingRevisions ?? []).map((r) => [r.name, r.inSplit]),
  };
}

async function both(): Promise<{ memory: unknown[]; grpc: unknown[] }> {
  const memory = createSimPorts(emulator.model, { lagMs: 0 });
  const [inMemory, overGrpc] = await Promise.all([
    memory.run.listServices(PROJECT, REGION),
    google.run.listServices(PROJECT, REGION),
  ]);
  return { memory: inMemory.map(planned), grpc: overGrpc.map(planned) };
}

describe('the in-memory ports and gRPC', () => {
  it('read the same GPU, min and max of every service of the fleet', async () => {
    const { memory, grpc } = await both();
    expect(memory).toEqual(grpc);
    // The template's min is the latest created revision's, whatever serves.
    const min = (name: string) =>
      (grpc as ReturnType<typeof planned>[]).find((s) => s.name === name)?.minInstances;
    expect([min('pinned'), min('warm')]).toEqual([0, 2]);
  });

  it('read the same after another writer splits, tags and deploys', async () => {
    emulator.edit({ service: 'first', previousRevision: { maxInstances: 1, percent: 10 } });
    emulator.edit({ service: 'plain', tagPrevious: { tag: 'canary', maxInstances: 1 } });
    emulator.deploy({ service: 'split', seconds: 0, revisionMaxInstances: 4 });
    const { memory, grpc } = await both();
    expect(memory).toEqual(grpc);
  });
});
