/**
 * A serving revision whose GPU is not its template's: a redeploy that changed the zonal
 * redundancy, the GPU type, or removed the GPU, while the older revision still serves. Its
 * instances hold GPUs of its own pool (a revision is an immutable snapshot with its own node
 * selector, containers and `gpu_zonal_redundancy_disabled`, google/cloud/run/v2/revision.proto),
 * read with the real `@google-cloud/run` clients over gRPC against the emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { createCloudRunAdapter, type CloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { plan } from '../../src/core/planner.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { FleetInput, RunningEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import { observe } from '../../src/observe/observe.js';
import { checkPolicy } from '../../src/reconcile/preflight.js';
import { reconcile } from '../../src/reconcile/reconcile.js';

const PROJECT = 'revpools-project';
const REGION = 'us-central1';
const ZONAL = {
  project: PROJECT,
  region: REGION,
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
};

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: REGION, quota: 8 },
        { region: REGION, zonalRedundancy: false, quota: 8 },
      ],
      services: [
        // Redeployed with --no-gpu-zonal-redundancy and --no-traffic: the template is in the
        // no-zonal pool, while the revision that serves (own max 3) holds zonal GPUs.
        {
          name: 'moved',
          region: REGION,
          gpu: {},
          maxInstances: 4,
          revisionMaxInstances: 3,
          noTrafficRevision: { maxInstances: 3, gpu: { zonalRedundancy: false } },
          demand: { constant: 3 },
        },
        // Redeployed without its GPU, and the new revision failed: the template has no GPU,
        // while the older revision (own max 2) serves with one.
        {
          name: 'dropped',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          noTrafficRevision: { maxInstances: 2, gpu: null, failed: true },
          demand: { constant: 2 },
        },
        // Governed, in the zonal pool, held at 1 and wanting more.
        { name: 'neighbour', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: 8 } },
      ],
    },
  ],
};

let emulator: RunningEmulator;
let adapter: CloudRunAdapter;
let ports: GooglePorts;

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual' });
  adapter = createCloudRunAdapter({ emulatorHost: emulator.host });
  ports = createGooglePorts({ emulatorHost: emulator.host, emulatorOperationPollMs: 20 });
});

afterAll(async () => {
  await adapter?.close();
  await ports?.close();
  await emulator?.stop();
});

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { min: 1, max: 8 },
  services: [{ match: { name: 'neighbour' } }, { match: {}, managed: false }],
});

describe('a serving revision of another pool than its template', () => {
  it('GetRevision gives the revision its own GPU, not the template', async () => {
    const listed = new Map((await adapter.listServices(PROJECT, REGION)).map((s) => [s.name, s]));
    const moved = listed.get('moved');
    expect(moved?.gpu).toEqual({ accelerator: 'nvidia-l4', count: 1, zonalRedundancy: false });
    const [serving] = moved?.servingRevisions ?? [];
    expect(await adapter.getRevisionMax(PROJECT, REGION, 'moved', serving?.name ?? '')).toEqual({
      maxInstances: 3,
      minInstances: null,
      gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
    });
    const dropped = listed.get('dropped');
    expect(dropped?.gpu).toBeNull();
    expect(dropped?.templateServes).toBe(false);
  });

  it("observation counts the older revision's GPUs in its own pool, as unmanaged usage", async () => {
    const o = await observe(policy, ports, emulator.now().getTime());
    expect(o.problems).toEqual([]);
    const zonal = o.snapshot.unmanagedUsage.filter((u) => u.zonalRedundancy);
    expect(zonal.map((u) => [u.gpus, u.source]).sort()).toEqual([
      [2, expect.stringMatching(/^service\/dropped revision dropped-00001-\S+/)],
      [3, expect.stringMatching(/^service\/moved revision moved-00001-\S+/)],
    ]);
    const planned = plan(o.snapshot, policy, emulator.now().toISOString());
    const pool = planned.pools.find((p) => p.zonalRedundancy);
    expect(pool?.unmanagedGpus).toBe(5);
    const neighbour = planned.services.find((s) => s.name === 'neighbour');
    expect(neighbour?.to).toBeLessThanOrEqual(3);
  });

  it('governor check probes run.revisions.get for them', async () => {
    const check = await checkPolicy(policy, ports, null, emulator.now().getTime());
    expect(check.items.find((i) => i.permission === 'run.revisions.get')).toMatchObject({
      status: 'ok',
    });
  });

  it("apply keeps the older revision's pool within its quota, as Cloud Run counts it", async () => {
    const store = createMemoryStateStore();
    try {
      const result = await reconcile(
        policy,
        {
          ports,
          store,
          sink: new RecordingSink(),
          log: memoryLogger(),
          now: () => Promise.resolve(emulator.now().getTime()),
          sleep: async () => {},
        },
        { runId: 'revpools-1', deadlineMs: 60_000 },
      );
      expect(result.outcome).toBe('ok');
      // The emulator counts each service's instances and cap in its serving revision's pool.
      const usage = emulator.model.pool(ZONAL);
      expect([...(usage?.services ?? [])].sort()).toEqual(['dropped', 'moved', 'neighbour']);
      expect(usage?.capsGpus).toBeLessThanOrEqual(8);
    } finally {
      await store.close();
    }
  });
});
