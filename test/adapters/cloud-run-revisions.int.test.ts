/**
 * The serving revisions of a service whose template does not serve, read with the real
 * `@google-cloud/run` RevisionsClient over gRPC against the emulator, and counted by observation.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import type { CloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { parsePolicy } from '../../src/core/policy.js';
import { plan } from '../../src/core/planner.js';
import { renderReason } from '../../src/core/why.js';
import { NotFoundError, PermissionError } from '../../src/core/errors.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { FleetInput, RunningEmulator } from '../../src/emulator/index.js';
import { observe } from '../../src/observe/observe.js';
import { withUnsetMax } from '../../src/observe/unset-max.js';
import { effectiveMax } from '../../src/core/pool.js';
import { checkPolicy } from '../../src/reconcile/preflight.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { memoryLogger } from '../../src/log.js';

const PROJECT = 'revisions-project';
const DENIED = 'revisions-denied';
const PLAIN = 'revisions-plain';
const TAGGED = 'revisions-tagged';
const LATEST = 'revisions-latest';
const SETTLE = 'revisions-settle';
const REGION = 'us-central1';

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 16 }],
      services: [
        // Traffic pinned by name on the revision of max 3; the newer one (template) sets 1.
        {
          name: 'pinned',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          noTrafficRevision: { maxInstances: 1 },
        },
        // The latest created revision (max 6) failed: LATEST is the older ready one, max 2.
        {
          name: 'failed',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          noTrafficRevision: { maxInstances: 6, failed: true },
        },
        // 20% on an older revision of max 5, 80% on the serving one of max 2.
        {
          name: 'split',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          previousRevision: { maxInstances: 5, percent: 20 },
        },
        // The same split, left whole: 5 + 2.
        {
          name: 'split-kept',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          previousRevision: { maxInstances: 5, percent: 20 },
        },
        // Governed: its template serves.
        { name: 'governed', region: REGION, gpu: {}, maxInstances: 2 },
      ],
    },
    {
      id: PLAIN,
      pools: [{ region: REGION, quota: 8 }],
      services: [
        { name: 'governed', region: REGION, gpu: {}, maxInstances: 2 },
        { name: 'own-max', region: REGION, gpu: {}, revisionMaxInstances: 3 },
      ],
    },
    {
      id: SETTLE,
      pools: [{ region: REGION, quota: 8 }],
      services: [
        // Governed, no service-level max, its latest revision failed: counted at the serving
        // revision's own 3 until the governor's first write sets a service-level max.
        {
          name: 'governed',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          noTrafficRevision: { maxInstances: 2, failed: true },
          demand: { constant: 2 },
        },
        { name: 'other', region: REGION, gpu: {}, maxInstances: 4, demand: { constant: 3 } },
      ],
    },
    {
      id: TAGGED,
      pools: [{ region: REGION, quota: 8 }],
      services: [
        // Governed, with a newer revision deployed with a tag and no traffic (max 2): it runs
        // beside the service-level max, which its writes cannot lower.
        {
          name: 'governed',
          region: REGION,
          gpu: {},
          maxInstances: 4,
          noTrafficRevision: { maxInstances: 2, tag: 'canary' },
        },
      ],
    },
    {
      id: LATEST,
      pools: [{ region: REGION, quota: 8 }],
      services: [
        // All traffic to LATEST (own max 2) beside an older revision only tagged (own max 3).
        {
          name: 'canaried',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          taggedRevision: { maxInstances: 3, tag: 'canary' },
        },
      ],
    },
    {
      id: DENIED,
      pools: [{ region: REGION, quota: 8 }],
      iam: { denied: ['run.revisions.get'] },
      services: [
        {
          name: 'pinned',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          noTrafficRevision: { maxInstances: 1 },
        },
      ],
    },
  ],
};

let emulator: RunningEmulator;
let adapter: CloudRunAdapter;

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual' });
  adapter = createCloudRunAdapter({ emulatorHost: emulator.host });
});

afterEach(() => {
  emulator.resetCalls();
});

afterAll(async () => {
  await adapter?.close();
  await emulator?.stop();
});

function calls(): string[] {
  const seen = emulator
    .calls()
    .map((c) => `${c.method.slice(c.method.lastIndexOf('/') + 1)} ${c.code}`);
  emulator.resetCalls();
  return seen;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error('expected a failure');
}

const byName = async (project: string) =>
  new Map((await adapter.listServices(project, REGION)).map((s) => [s.name, s]));

describe('GetRevision through the adapter', () => {
  it('reads the revision traffic is pinned on, not the template', async () => {
    const pinned = (await byName(PROJECT)).get('pinned');
    expect(pinned).toMatchObject({ templateServes: false, revisionMaxInstances: 1 });
    expect(pinned?.servingRevisions).toEqual([
      { name: expect.stringMatching(/^pinned-00001-/), inSplit: true },
    ]);
    const name = pinned?.servingRevisions?.[0]?.name ?? '';
    expect(await adapter.getRevisionMax(PROJECT, REGION, 'pinned', name)).toEqual({
      maxInstances: 3,
      minInstances: null,
      gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
    });
    expect(calls()).toEqual(['ListServices OK', 'GetRevision OK']);
  });

  it('reads the latest ready revision when the latest created one failed', async () => {
    const failed = (await byName(PROJECT)).get('failed');
    expect(failed?.templateServes).toBe(false);
    const [serving] = failed?.servingRevisions ?? [];
    expect(serving?.name).toMatch(/^failed-00001-/);
    expect(
      (await adapter.getRevisionMax(PROJECT, REGION, 'failed', serving?.name ?? '')).maxInstances,
    ).toBe(2);
    calls();
  });

  it('reads both revisions of a split', async () => {
    const split = (await byName(PROJECT)).get('split');
    expect(split?.templateServes).toBe(false);
    const names = (split?.servingRevisions ?? []).map((r) => r.name);
    expect(names).toHaveLength(2);
    const maxes = await Promise.all(
      names.map((n) => adapter.getRevisionMax(PROJECT, REGION, 'split', n)),
    );
    expect(maxes.map((m) => m.maxInstances).sort()).toEqual([2, 5]);
    calls();
  });

  it('answers NOT_FOUND for a revision another writer deleted between the list and the get', async () => {
    const split = (await byName(PROJECT)).get('split');
    const older = (split?.servingRevisions ?? []).find((r) => r.name.startsWith('split-00001-'));
    expect(older).toBeDefined();
    // Cloud Run deletes only a retired revision ("Only retired revisions can be deleted",
    // DeleteRevisionRequest): another writer first sends all the traffic to the serving
    // revision, then deletes the older one.
    const target = { service: 'split', project: PROJECT, region: REGION };
    emulator.edit({ ...target, previousRevision: null });
    emulator.edit({ ...target, deleteRevision: older?.name ?? '' });
    const error = await failure(
      adapter.getRevisionMax(PROJECT, REGION, 'split', older?.name ?? ''),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(calls()).toEqual(['ListServices OK', 'GetRevision NOT_FOUND']);
    // The split is gone: the serving revision, the latest, takes all the traffic by name, so
    // the template serves again and no revision is to be read.
    const after = (await byName(PROJECT)).get('split');
    expect(after?.templateServes).toBeUndefined();
    expect(after?.servingRevisions).toBeUndefined();
    calls();
  });

  it('answers PERMISSION_DENIED without run.revisions.get', async () => {
    const pinned = (await byName(DENIED)).get('pinned');
    const error = await failure(
      adapter.getRevisionMax(DENIED, REGION, 'pinned', pinned?.servingRevisions?.[0]?.name ?? ''),
    );
    expect(error).toBeInstanceOf(PermissionError);
    expect(error.message).toContain('run.revisions.get');
    calls();
  });
});

describe('observation', () => {
  let ports: GooglePorts;
  beforeAll(() => {
    ports = createGooglePorts({ emulatorHost: emulator.host });
  });
  afterAll(async () => {
    await ports?.close();
  });

  const policyOf = (project: string) =>
    parsePolicy({
      version: 1,
      projects: [project],
      regions: [REGION],
      services: [{ match: { name: 'governed' } }, { match: {}, managed: false }],
    });

  it("counts an unmanaged service at its serving revisions' own max, not the quota", async () => {
    const policy = policyOf(PROJECT);
    const o = await observe(policy, ports, emulator.now().getTime());
    const rows = new Map(o.snapshot.services.map((s) => [s.name, s]));
    expect(rows.get('pinned')).toMatchObject({ maxInstances: 3 });
    expect(rows.get('pinned')?.maxUnset).toBeUndefined();
    expect(rows.get('failed')).toMatchObject({ maxInstances: 2 });
    // The split lost its older revision in the test above: its template serves again (2).
    expect(rows.get('split')).toMatchObject({ maxInstances: 2 });
    expect(rows.get('split')?.maxNote).toBeUndefined();
    expect(rows.get('split-kept')).toMatchObject({ maxInstances: 7 });
    expect(rows.get('split-kept')?.maxNote).toMatch(
      /split-kept-00001-\S+ 5 \+ split-kept-00002-\S+ 2 = 7$/,
    );
    expect(rows.get('pinned')?.maxNote).toContain("serving revisions' own max");
    expect(o.problems).toEqual([]);
    const getRevisions = calls().filter((c) => c.startsWith('GetRevision'));
    expect(getRevisions).toEqual(Array(4).fill('GetRevision OK'));
    const planned = plan(o.snapshot, policy, emulator.now().toISOString());
    const pinnedRow = planned.services.find((s) => s.name === 'pinned');
    expect(pinnedRow?.why.maxUnset).toBeUndefined();
    expect(pinnedRow?.why.maxCounted?.countedAt).toBe(3);
    expect(renderReason(pinnedRow!.why)).not.toContain('no max instances set');
    expect(renderReason(pinnedRow!.why)).toContain("serving revisions' own max");
  });

  it('makes no GetRevision call when every template serves', async () => {
    const o = await observe(policyOf(PLAIN), ports, emulator.now().getTime());
    expect(o.snapshot.services.map((s) => [s.name, s.maxInstances])).toEqual([
      ['governed', 2],
      ['own-max', 3],
    ]);
    const seen = calls();
    expect(seen).toContain('ListServices OK');
    expect(seen.filter((c) => c.startsWith('GetRevision'))).toEqual([]);
  });

  it('lists a revision that is only tagged among those that can hold instances, outside the split', async () => {
    // "Tagged revisions are started, but only count toward the service-level maximum instances
    // if they are a part of a traffic split" (https://cloud.google.com/run/docs/configuring/max-instances).
    const governed = await adapter.getService(TAGGED, REGION, 'governed');
    expect(governed.templateServes).toBe(false);
    expect(governed.servingRevisions?.map((r) => r.inSplit).sort()).toEqual([false, true]);
  });

  it('takes a template that serves all the traffic beside an older revision only tagged as serving, the tagged one listed apart', async () => {
    // A 0% target with a tag sends the split nothing: the serving revision's own max is the
    // service's ceiling, and the tagged one is still started, outside the service-level max.
    const canaried = await adapter.getService(LATEST, REGION, 'canaried');
    expect(canaried.templateServes).toBeUndefined();
    expect(canaried.revisionMaxInstances).toBe(2);
    expect(canaried.servingRevisions).toEqual([
      { name: expect.stringMatching(/^canaried-00001-/), inSplit: false },
    ]);
    const o = await observe(policyOf(LATEST), ports, emulator.now().getTime());
    expect(
      o.snapshot.services.map((s) => [s.name, s.maxInstances, s.revisionMaxInstances]),
    ).toEqual([['canaried', 2, 2]]);
    expect(o.snapshot.unmanagedUsage.map((u) => [u.source, u.gpus])).toEqual([
      [
        expect.stringMatching(
          /^service\/canaried revision canaried-00001-\S+ \(tagged, outside the traffic split\)$/,
        ),
        3,
      ],
    ]);
  });

  it('counts a governed service at the service-level max its writes set, and a tagged revision apart', async () => {
    // A tagged revision outside the split is not bounded by the service-level max (Google's "Set
    // maximum instances"), and the governor can only write that max: counted in the service's
    // cap, it would make every run plan the same decrease, write the max it already has, and
    // leave the pool reading over budget. So it is counted apart, at its own max, as unmanaged
    // usage of its pool, which no write of the governor changes.
    const policy = policyOf(TAGGED);
    const o = await observe(policy, ports, emulator.now().getTime());
    expect(o.snapshot.services.map((s) => [s.name, s.maxInstances])).toEqual([['governed', 4]]);
    expect(o.snapshot.unmanagedUsage.map((u) => [u.source, u.gpus])).toEqual([
      [
        expect.stringMatching(
          /^service\/governed revision governed-\S+ \(tagged, outside the traffic split\)$/,
        ),
        2,
      ],
    ]);
    const planned = plan(o.snapshot, policy, emulator.now().toISOString());
    expect(planned.pools.map((p) => [p.status, p.capsBefore, p.unmanagedGpus])).toEqual([
      ['ok', 4, 2],
    ]);
    expect(planned.changes.map((c) => c.from)).toEqual([4]);
    calls();
  });

  it('falls back to the quota, and says why, when a revision cannot be read', async () => {
    const o = await observe(policyOf(DENIED), ports, emulator.now().getTime());
    const row = o.snapshot.services.find((s) => s.name === 'pinned');
    expect(row).toMatchObject({ maxInstances: 8, maxUnset: true });
    expect(row?.maxNote).toContain('could not be read');
    expect(row?.maxNote).toContain('run.revisions.get');
    expect(o.problems.map((p) => p.subject)).toEqual(['revisions']);
    calls();
  });

  it('governor check probes run.revisions.get where a service needs it', async () => {
    const item = async (project: string) =>
      (await checkPolicy(policyOf(project), ports, null, emulator.now().getTime())).items.find(
        (i) => i.permission === 'run.revisions.get',
      );
    expect(await item(PROJECT)).toMatchObject({ status: 'ok' });
    expect(await item(DENIED)).toMatchObject({ status: 'missing' });
    // Nothing to read there: not asked.
    expect(await item(PLAIN)).toBeUndefined();
    calls();
  });

  it('reads again before a write as observation counted (the check that the max has not changed)', async () => {
    // The write path validates each change against a fresh read: counted otherwise (at the unset
    // max), a service observed at its serving revisions' max would read as changed and never be
    // written, and a pool read again after raises would look over its quota.
    const o = await observe(policyOf(PROJECT), ports, emulator.now().getTime());
    const observed = o.snapshot.services.find((s) => s.name === 'pinned')?.maxInstances;
    calls();
    const run = withUnsetMax(ports.run, () => 16);
    expect(effectiveMax(await run.getService(PROJECT, REGION, 'pinned'))).toBe(observed);
    const listed = (await run.listServices(PROJECT, REGION)).find((s) => s.name === 'pinned');
    expect(listed && effectiveMax(listed)).toBe(observed);
    const seen = calls();
    expect(seen.slice(0, 3)).toEqual(['GetService OK', 'GetRevision OK', 'ListServices OK']);
    // One GetRevision for each serving revision of the listed services whose template does not serve.
    expect(new Set(seen.slice(3))).toEqual(new Set(['GetRevision OK']));
  });
});

describe('applied, then applied again', () => {
  it('writes a service counted by its serving revisions once, and then leaves it, another writer acting between runs', async () => {
    const ports = createGooglePorts({ emulatorHost: emulator.host, emulatorOperationPollMs: 20 });
    const store = createMemoryStateStore();
    const policy = parsePolicy({
      version: 1,
      projects: [SETTLE],
      regions: [REGION],
      defaults: { min: 1, max: 8 },
      services: [{ match: {} }],
    });
    const run = (id: string) =>
      reconcile(
        policy,
        {
          ports,
          store,
          sink: new RecordingSink(),
          log: memoryLogger(),
          now: () => Promise.resolve(emulator.now().getTime()),
          sleep: async () => {},
        },
        { runId: id, deadlineMs: 60_000 },
      );
    const caps = async () => {
      const read = withUnsetMax(ports.run, () => 8);
      return new Map(
        (await read.listServices(SETTLE, REGION)).map((s) => [s.name, effectiveMax(s)]),
      );
    };
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    try {
      const first = await run('run-1');
      expect(first.outcome).toBe('ok');
      // Written from the 3 observation counted (a fresh read that counted it otherwise would
      // skip it as changed since observed).
      expect(
        first.writes.filter((w) => w.name === 'governed').map((w) => [w.from, w.outcome]),
      ).toEqual([[3, 'written']]);
      expect(sum(await caps())).toBeLessThanOrEqual(8);
      // Another writer lowers the neighbour by hand between the runs.
      emulator.edit({ service: 'other', project: SETTLE, region: REGION, maxInstances: 2 });
      const second = await run('run-2');
      expect(second.outcome).toBe('ok');
      expect(second.writes.filter((w) => w.outcome === 'written').map((w) => w.name)).not.toContain(
        'governed',
      );
      expect(sum(await caps())).toBeLessThanOrEqual(8);
      const third = await run('run-3');
      expect(third.writes).toEqual([]);
      expect(sum(await caps())).toBeLessThanOrEqual(8);
    } finally {
      await Promise.all([ports.close(), store.close()]);
    }
    calls();
  });
});
