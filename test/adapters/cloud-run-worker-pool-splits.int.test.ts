/**
 * A worker pool whose instances are split between revisions (`instance_splits`,
 * google/cloud/run/v2/worker_pool.proto;
 * https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks), an older one
 * of which has another GPU than the template: a redeploy that changed the zonal redundancy, or
 * added a GPU. The older revision's instances hold GPUs of its own pool. Read with the real
 * `@google-cloud/run` clients over gRPC against the emulator.
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

const PROJECT = 'wpsplit-project';
const REGION = 'us-central1';
const ZONAL = { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true };

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
        // Governed, in the zonal pool, held at 1 and wanting more.
        { name: 'neighbour', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: 8 } },
      ],
      workerPools: [
        // Redeployed with --no-gpu-zonal-redundancy, half its instances left on the older
        // revision, which holds zonal GPUs.
        {
          name: 'encoder',
          region: REGION,
          gpu: { zonalRedundancy: false },
          manualInstanceCount: 4,
          previousRevision: { percent: 50, gpu: {} },
        },
        // Not split: all its instances on its latest revision, the template's (no GPU).
        { name: 'transcoder', region: REGION, manualInstanceCount: 1 },
        // Its template has no GPU; an older revision with one keeps a quarter of its instances.
        {
          name: 'indexer',
          region: REGION,
          manualInstanceCount: 2,
          previousRevision: { percent: 25, gpu: {} },
        },
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
  services: [{ match: { name: 'neighbour' } }],
});

describe('a worker pool split between revisions of different pools', () => {
  it('is read as split only where its instances go to another revision than the template', async () => {
    const listed = new Map(
      (await adapter.listWorkerPools(PROJECT, REGION)).map((w) => [w.name, w]),
    );
    expect(listed.get('transcoder')?.templateServes).toBeUndefined();
    expect(listed.get('encoder')).toMatchObject({
      templateServes: false,
      servingRevisions: [
        { name: expect.stringMatching(/^encoder-00001-/), inSplit: true },
        { name: expect.stringMatching(/^encoder-00002-/), inSplit: true },
      ],
    });
    const [older] = listed.get('encoder')?.servingRevisions ?? [];
    expect(
      await adapter.getRevisionMax(PROJECT, REGION, 'encoder', older?.name ?? '', 'workerPools'),
    ).toEqual({
      maxInstances: null,
      minInstances: null,
      gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
    });
  });

  it("observation counts the older revision's GPUs in its own pool, at all the pool's instances", async () => {
    const o = await observe(policy, ports, emulator.now().getTime());
    expect(o.problems).toEqual([]);
    const zonal = o.snapshot.unmanagedUsage.filter((u) => u.zonalRedundancy);
    // How Cloud Run divides manual_instance_count between the revisions Google does not say:
    // each pool counts all the worker pool's instances it may hold.
    expect(zonal.map((u) => [u.gpus, u.source]).sort()).toEqual([
      [2, expect.stringMatching(/^worker-pool\/indexer revision indexer-00001-\S+/)],
      [4, expect.stringMatching(/^worker-pool\/encoder revision encoder-00001-\S+/)],
    ]);
    const noZonal = o.snapshot.unmanagedUsage.filter((u) => !u.zonalRedundancy);
    expect(noZonal.map((u) => [u.gpus, u.source])).toEqual([[4, 'worker-pool/encoder']]);
    const planned = plan(o.snapshot, policy, emulator.now().toISOString());
    expect(planned.pools.find((p) => p.zonalRedundancy)?.unmanagedGpus).toBe(6);
    expect(planned.services.find((s) => s.name === 'neighbour')?.to).toBeLessThanOrEqual(2);
  });

  it('governor check probes run.revisions.get on a revision of the split', async () => {
    const check = await checkPolicy(policy, ports, null, emulator.now().getTime());
    expect(check.items.find((i) => i.permission === 'run.revisions.get')).toMatchObject({
      subject: expect.stringMatching(/^worker pool /),
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
        { runId: 'wpsplit-1', deadlineMs: 60_000 },
      );
      expect(result.outcome).toBe('ok');
      // The emulator runs 2 of encoder's instances and 1 of indexer's on their older, zonal
      // revisions.
      const usage = emulator.model.pool(ZONAL);
      expect(usage?.workerPoolGpus).toBe(3);
      expect((usage?.capsGpus ?? 0) + (usage?.workerPoolGpus ?? 0)).toBeLessThanOrEqual(8);
    } finally {
      await store.close();
    }
  });
});

describe('a worker pool split whose revisions cannot be read', () => {
  it('leaves the budget of its region unknown: nothing there is raised', async () => {
    const denied = structuredClone(fleet);
    const [project] = denied.projects;
    if (project) project.iam = { denied: ['run.revisions.get'] };
    const em = await startEmulator({ fleet: denied, speed: 'manual' });
    const gp = createGooglePorts({ emulatorHost: em.host });
    try {
      const o = await observe(policy, gp, em.now().getTime());
      expect(o.problems.filter((p) => p.subject === 'worker-pools').map((p) => p.error)).toEqual([
        expect.stringMatching(
          /^worker pool encoder: the revisions of its instance split could not be read/,
        ),
        expect.stringMatching(
          /^worker pool indexer: the revisions of its instance split could not be read/,
        ),
      ]);
      for (const pool of o.snapshot.pools) expect(pool.budgetUnknown).toBeDefined();
      const planned = plan(o.snapshot, policy, em.now().toISOString());
      expect(planned.services.find((s) => s.name === 'neighbour')?.to).toBe(1);
    } finally {
      await gp.close();
      await em.stop();
    }
  });
});
