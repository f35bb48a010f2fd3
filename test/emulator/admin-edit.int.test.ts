/**
 * The admin calls of another writer (POST /edit, /create, /invariants) and the errors that quote
 * the caller: what Cloud Run refuses of such a writer is refused here too (400, one line naming
 * the field), and a refused call changes nothing at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { serviceRevisions } from '../../src/emulator/resources.js';
import { clientsFor, closeClients } from './helpers.js';
import { TEST_FLEET_PROJECT, TEST_FLEET_REGION, testFleet } from '../support/fixtures.js';

let emulator: RunningEmulator;
let admin: string;

beforeAll(async () => {
  emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
  admin = emulator.env['GOVERNOR_EMULATOR_ADMIN'] ?? '';
});
afterAll(() => emulator.stop());

async function edit(body: unknown): Promise<{ status: number; text: string; error: string }> {
  const res = await fetch(`${admin}/edit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    error: String((JSON.parse(text) as { error?: unknown }).error ?? ''),
  };
}

/** The service as GET /state shows it. */
function service(name: string) {
  const s = emulator.state().services.find((x) => x.name === name);
  if (!s) throw new Error(`no service ${name}`);
  return s;
}

describe('POST /edit', () => {
  it('refuses a min above the max of an automatically scaled service, changing nothing', async () => {
    // beta: max 3, min 0, automatic scaling.
    const before = JSON.stringify(service('beta'));
    const refused: object[] = [
      { service: 'beta', minInstances: 4 },
      { service: 'beta', minInstances: 3, maxInstances: 1 },
      { service: 'beta', scalingMode: 'AUTOMATIC', minInstances: 9 },
    ];
    for (const body of refused) {
      const r = await edit(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.error).toMatch(
        /max_instance_count \(\d+\) must be greater than or equal to scaling\.min_instance_count \(\d+\)/,
      );
      expect(r.text.trim().split('\n')).toHaveLength(1);
      expect(JSON.stringify(service('beta'))).toBe(before);
    }
    // A max lowered below a min already set.
    expect((await edit({ service: 'beta', minInstances: 2 })).status).toBe(200);
    const withMin = JSON.stringify(service('beta'));
    expect((await edit({ service: 'beta', maxInstances: 1 })).status).toBe(400);
    expect(JSON.stringify(service('beta'))).toBe(withMin);
    // Max 0 is unset: nothing to compare with. The min equal to the max is allowed.
    expect((await edit({ service: 'beta', maxInstances: 2 })).status).toBe(200);
    expect(service('beta')).toMatchObject({ maxInstances: 2, minInstances: 2 });
  });

  it('lets a manually scaled service run a min above its max, which manual scaling ignores', async () => {
    expect((await edit({ service: 'gamma', scalingMode: 'MANUAL', minInstances: 4 })).status).toBe(
      200,
    );
    expect(service('gamma')).toMatchObject({ scalingMode: 'MANUAL', minInstances: 4 });
    // Back to automatic scaling with that min above the max (2): refused, still manual.
    expect((await edit({ service: 'gamma', scalingMode: 'AUTOMATIC' })).status).toBe(400);
    expect(service('gamma').scalingMode).toBe('MANUAL');
  });

  it('deletes no revision when the rest of the edit is refused, nor one that serves', async () => {
    // alpha (max 2, serving its first revision, 00001) splits its traffic with another revision,
    // which another writer may delete once it serves no more and is not the latest. None is
    // before 00001: the split's is made after it, 00002, as Cloud Run numbers revisions.
    expect(
      (await edit({ service: 'alpha', previousRevision: { maxInstances: 1, percent: 10 } })).status,
    ).toBe(200);
    const state = emulator.model.getService({
      project: TEST_FLEET_PROJECT,
      region: TEST_FLEET_REGION,
      name: 'alpha',
    });
    if (!state) throw new Error('no service alpha');
    const older = serviceRevisions(state).find((r) => r.role === 'previous')?.name ?? '';
    expect(older).toMatch(/^alpha-00002-/);
    // It keeps a share of the traffic: Cloud Run refuses to delete it (FAILED_PRECONDITION).
    const serving = await edit({ service: 'alpha', deleteRevision: older });
    expect(serving.status).toBe(400);
    expect(serving.error).toMatch(/FAILED_PRECONDITION.*actively serving/);
    // Another writer sends all the traffic back to the serving revision by name; the split's
    // is still the latest created, which Cloud Run does not delete either.
    expect((await edit({ service: 'alpha', previousRevision: null })).status).toBe(200);
    const latest = await edit({ service: 'alpha', deleteRevision: older });
    expect(latest.status).toBe(400);
    expect(latest.error).toMatch(/FAILED_PRECONDITION.*latest revision/);
    // A deployment makes a newer one (the traffic stays pinned by name): the split's retires.
    const deployed = await fetch(`${admin}/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'alpha', seconds: 0 }),
    });
    expect(deployed.status).toBe(200);
    const before = JSON.stringify(service('alpha'));
    const r = await edit({ service: 'alpha', minInstances: 3, deleteRevision: older });
    expect(r.status).toBe(400);
    expect(state.deletedRevisions).toEqual([]);
    expect(JSON.stringify(service('alpha'))).toBe(before);
    // Nor deleted and tagged in one edit: the tag would reach a revision that is gone.
    const both = await edit({
      service: 'alpha',
      deleteRevision: older,
      tagPrevious: { tag: 'old' },
    });
    expect(both.status).toBe(400);
    expect(both.error).toMatch(/was deleted: no traffic can go to it/);
    expect(state.deletedRevisions).toEqual([]);
    // Alone, the deletion is taken.
    expect((await edit({ service: 'alpha', deleteRevision: older })).status).toBe(200);
    expect(state.deletedRevisions).toEqual([older]);
  });
  it('tags a revision other than the serving one without traffic, once, and removes the tag', async () => {
    const state = emulator.model.getService({
      project: TEST_FLEET_PROJECT,
      region: TEST_FLEET_REGION,
      name: 'beta',
    });
    if (!state) throw new Error('no service beta');
    const tagged = () => serviceRevisions(state).filter((r) => r.tag !== undefined);
    expect(
      (await edit({ service: 'beta', tagPrevious: { tag: 'canary', maxInstances: 1 } })).status,
    ).toBe(200);
    // beta serves its first revision (00001): the tagged one is made after it, 00002, the latest
    // created (as `gcloud run deploy --no-traffic --tag` makes it), never a 00000.
    expect(tagged().map((r) => [r.name, r.role, r.percent, r.tag, r.maxInstances])).toEqual([
      [expect.stringMatching(/^beta-00002-/), 'new', 0, 'canary', 1],
    ]);
    // The emulator models one tag, and a revision keeps the max it was made with.
    const before = JSON.stringify(service('beta'));
    expect((await edit({ service: 'beta', tagPrevious: { tag: 'other' } })).status).toBe(400);
    expect(JSON.stringify(service('beta'))).toBe(before);
    expect((await edit({ service: 'beta', tagPrevious: null })).status).toBe(200);
    expect(tagged()).toEqual([]);
    expect(
      (await edit({ service: 'beta', tagPrevious: { tag: 'canary', maxInstances: 4 } })).error,
    ).toContain('revisions are immutable');
  });

  it('refuses annotations Cloud Run refuses: a reserved namespace, a key it cannot hold, over 256 KiB', async () => {
    const before = JSON.stringify(service('delta'));
    const refused: [Record<string, string>, RegExp][] = [
      [{ 'run.googleapis.com/launch-stage': 'BETA' }, /reserved by Cloud Run/],
      [{ 'autoscaling.knative.dev/maxScale': '100' }, /reserved by Cloud Run/],
      [{ 'a\nb': 'x' }, /key "a b" is not valid/],
      [{ ['k'.repeat(64)]: 'x' }, /is not valid: an optional DNS-subdomain prefix/],
      [{ 'Bad_Prefix/x': 'x' }, /is not valid/],
      [{ big: 'v'.repeat(300_000) }, /they must take at most 262144 \(256 KiB\)/],
    ];
    for (const [annotations, why] of refused) {
      const r = await edit({ service: 'delta', annotations });
      expect(r.status, Object.keys(annotations)[0]).toBe(400);
      expect(r.error).toMatch(why);
      expect(r.error.length).toBeLessThan(1000);
      expect(r.text.trim().split('\n')).toHaveLength(1);
      expect(JSON.stringify(service('delta'))).toBe(before);
    }
    const ok = await edit({ service: 'delta', annotations: { 'example.com/owner': 'team-a' } });
    expect(ok.status).toBe(200);
    expect(service('delta').annotations).toEqual({ 'example.com/owner': 'team-a' });
  });

  it('refuses the same annotations on a service created by another writer, creating nothing', async () => {
    const count = emulator.state().services.length;
    const res = await fetch(`${admin}/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        project: TEST_FLEET_PROJECT,
        service: { name: 'made', region: TEST_FLEET_REGION, annotations: { 'a\nb': 'x' } },
      }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/key \\"a b\\" is not valid/);
    expect(emulator.state().services).toHaveLength(count);
  });
});

describe('POST /create', () => {
  it('holds the revision-level max of the deploy to the quota too, creating nothing', async () => {
    const count = emulator.state().services.length;
    const create = async (name: string, extra: object) => {
      const res = await fetch(`${admin}/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          project: TEST_FLEET_PROJECT,
          service: { name, region: TEST_FLEET_REGION, gpu: {}, ...extra },
        }),
      });
      return { status: res.status, text: await res.text() };
    };
    // The zonal L4 pool of us-central1 holds 5 GPUs.
    const refused = await create('rev-too-high', { revisionMaxInstances: 6 });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('revision max instances 6 x 1 GPUs is over the quota of 5');
    expect(emulator.state().services).toHaveLength(count);
    expect((await create('rev-fits', { revisionMaxInstances: 5 })).status).toBe(200);
  });
});

describe('POST /create in a full region', () => {
  it("refuses a service past the project's limit per region, as the fleet file does", async () => {
    const small = await startEmulator({
      speed: 'manual',
      fleet: {
        start: '2026-11-27T12:00:00Z',
        projects: [
          {
            id: 'small-project',
            perRegionLimit: 2,
            services: [
              { name: 'a', region: 'us-central1' },
              { name: 'b', region: 'us-central1' },
            ],
          },
        ],
      },
    });
    try {
      const create = (region: string) =>
        fetch(`${small.env['GOVERNOR_EMULATOR_ADMIN'] ?? ''}/create`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ project: 'small-project', service: { name: 'c', region } }),
        });
      const full = await create('us-central1');
      expect(full.status).toBe(400);
      expect(await full.text()).toContain('already has 2 services in us-central1');
      expect(small.state().services).toHaveLength(2);
      // Another region of the project has room, and Cloud Run lists the service there (and
      // answers the region among its locations) as it would any service of that region.
      expect((await create('europe-west4')).status).toBe(200);
      const clients = clientsFor(small);
      try {
        const [listed] = await clients.services.listServices({
          parent: 'projects/small-project/locations/europe-west4',
        });
        expect(listed.map((s) => s.name)).toEqual([
          'projects/small-project/locations/europe-west4/services/c',
        ]);
        const [locations] = await clients.services.locationsClient.listLocations({
          name: 'projects/small-project',
        });
        expect(locations.map((l) => l.locationId)).toEqual(['europe-west4', 'us-central1']);
      } finally {
        await closeClients(clients);
      }
    } finally {
      await small.stop();
    }
  });
});

describe('POST /invariants', () => {
  it('refuses a pool or a service of a project the fleet does not have: it would never be checked', async () => {
    const post = async (body: unknown) => {
      const res = await fetch(`${admin}/invariants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    };
    const typo = await post({
      pools: [{ project: 'test-projet', region: TEST_FLEET_REGION, reserve: 2 }],
    });
    expect(typo.status).toBe(400);
    expect(typo.text).toContain('pools[0].project: test-projet is not a project of the fleet');
    const unmanaged = await post({ unmanaged: [{ name: 'alpha', project: 'other-project' }] });
    expect(unmanaged.status).toBe(400);
    expect(unmanaged.text).toContain('unmanaged[0].project: other-project is not a project');
    const region = await post({ pools: [{ project: TEST_FLEET_PROJECT, region: '../x' }] });
    expect(region.status).toBe(400);
    expect(region.text).toContain('pools.0.region');
    const ok = await post({
      pools: [{ project: TEST_FLEET_PROJECT, region: TEST_FLEET_REGION, reserve: 2 }],
    });
    expect(ok.status).toBe(200);
  });
});

describe('errors that quote the caller', () => {
  const huge = 'x'.repeat(200_000);
  const send = async (path: string, body?: unknown) => {
    const res = await fetch(`${admin}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      error: String((JSON.parse(text) as { error?: unknown }).error),
    };
  };

  it('quote a name, a revision, a path or a topic cut short, on one line', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/demand', { service: huge, demand: 1 }, 400, /no service named "x+…"/],
      ['/deploy', { service: `a\n${huge}`, seconds: 1 }, 400, /no service named "a x+…"/],
      [
        '/edit',
        { service: 'beta', project: huge },
        400,
        /no service named "beta" in project "x+…"/,
      ],
      ['/edit', { service: 'beta', deleteRevision: huge }, 400, /"x+…" is not a revision of beta/],
      [`/${'p'.repeat(10_000)}`, undefined, 404, /no route GET \/p+…/],
      [`/published?topic=projects/p/topics/${huge.slice(0, 10_000)}`, undefined, 400, /topic/],
    ];
    for (const [path, body, status, why] of cases) {
      const r = await send(path, body);
      expect(r.status, path.slice(0, 20)).toBe(status);
      expect(r.error, path.slice(0, 20)).toMatch(why);
      expect(r.text.length, path.slice(0, 20)).toBeLessThan(1_000);
      expect(r.text.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('a demand of many steps', () => {
  it('is played without stalling the emulator: a virtual day of 24,000 steps, each parsed once', async () => {
    // One step a minute, as much as fits in the 1 MiB a body may hold.
    const start = Date.parse(emulator.now().toISOString());
    const steps = Array.from({ length: 24_000 }, (_, i) => ({
      at: new Date(start + i * 60_000).toISOString().replace('.000Z', 'Z'),
      value: i % 7,
    }));
    const post = (path: string, body: unknown) =>
      fetch(`${admin}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/demand', { service: 'gamma', demand: { steps } })).status).toBe(200);
    // Each minute used to sort and parse every step again: 1,440 x 24,000 parses, over 30 s for
    // this day. Counted, not timed, so that the machine's load decides nothing: each step's time
    // is parsed once, whatever else the day parses.
    const parse = Date.parse;
    let parses = 0;
    Date.parse = (text: string) => {
      parses += 1;
      return parse(text);
    };
    try {
      const res = await post('/advance', { ms: 24 * 60 * 60_000 });
      expect(res.status).toBe(200);
    } finally {
      Date.parse = parse;
    }
    expect(parses).toBeLessThan(2 * steps.length);
    expect(service('gamma').demand).toBe(1440 % 7);
  }, 120_000);
});

describe('POST /scale-worker-pool', () => {
  async function scale(body: unknown): Promise<{ status: number; text: string }> {
    const res = await fetch(`${admin}/scale-worker-pool`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  }
  const pool = () =>
    emulator.state().pools.find((p) => p.region === TEST_FLEET_REGION && p.zonalRedundancy);
  const encoder = () => emulator.state().workerPools.find((w) => w.name === 'encoder');

  it("sets a worker pool's manual instance count: its pool counts the GPUs at once", async () => {
    expect(encoder()?.gpus).toBe(1);
    const before = pool()?.workerPoolGpus ?? NaN;
    const r = await scale({ workerPool: 'encoder', manualInstanceCount: 3 });
    expect(r.status, r.text).toBe(200);
    expect(encoder()?.gpus).toBe(3);
    expect(pool()?.workerPoolGpus).toBe(before + 2);
    expect((await scale({ workerPool: 'encoder', manualInstanceCount: 1 })).status).toBe(200);
    expect(encoder()?.gpus).toBe(1);
  });

  it('refuses a worker pool that does not exist, or a count that is no count, in one line, changing nothing', async () => {
    const before = JSON.stringify(emulator.state().workerPools);
    for (const body of [
      { workerPool: 'nope', manualInstanceCount: 1 },
      { workerPool: 'encoder', manualInstanceCount: -1 },
      { workerPool: 'encoder', manualInstanceCount: 1.5 },
    ]) {
      const r = await scale(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.text.trim().split('\n')).toHaveLength(1);
    }
    expect(JSON.stringify(emulator.state().workerPools)).toBe(before);
  });
});
