/**
 * A service's revisions over their life, read with Google's own clients over gRPC: which ones
 * another writer may delete, which ones Cloud Run keeps once they serve no more, what the
 * template shows while a revision deployed without traffic is the latest, and how they are
 * numbered.
 *
 * - Deleting: "Only retired revisions can be deleted" (DeleteRevisionRequest,
 *   google/cloud/run/v2/revision.proto); Cloud Run refuses one that "can receive traffic", "is the
 *   only revision of the service" or "is the latest revision of the service" (Manage revisions,
 *   https://cloud.google.com/run/docs/managing/revisions), with FAILED_PRECONDITION: "Revision
 *   ... cannot be directly deleted because it is actively serving., failedPrecondition"
 *   (https://github.com/hashicorp/waypoint/issues/814).
 * - Keeping: "There is a maximum of 1000 revisions per service: If you exceed that limit, older
 *   revisions are automatically deleted" (https://cloud.google.com/run/docs/managing/revisions).
 * - The template: "The template used to create revisions for this Service"
 *   (google/cloud/run/v2/service.proto): the latest created revision's own scaling.
 * - Numbers: a service's first revision is `{service}-00001-{suffix}` (Cloud Run's revisions are
 *   Knative's, named `{service}-{generation}` from generation 1:
 *   https://github.com/knative/serving/issues/13743, "created to latest revision 'testsrv-00001'").
 */
import { v2 as run } from '@google-cloud/run';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { startEmulator, type FleetInput, type RunningEmulator } from '../../src/emulator/index.js';

const PROJECT = 'lifecycle-project';
const REGION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 32 }],
      services: [
        { name: 'plain', region: REGION, gpu: {}, revisionMaxInstances: 2 },
        {
          name: 'split',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          previousRevision: { maxInstances: 5, percent: 20 },
        },
        {
          name: 'tagged',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          taggedRevision: { maxInstances: 3, tag: 'canary' },
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
        {
          name: 'warm',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          revisionMinInstances: 0,
          noTrafficRevision: { maxInstances: 2, minInstances: 2 },
        },
      ],
    },
  ],
};

let emulator: RunningEmulator;
let services: run.ServicesClient;
let revisions: run.RevisionsClient;

beforeEach(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 10 });
  const options = emulatorClientOptions(emulator.env['GOVERNOR_EMULATOR_HOST'] ?? '');
  services = new run.ServicesClient(options);
  revisions = new run.RevisionsClient(options);
});
afterEach(async () => {
  await Promise.all([services.close(), revisions.close()]);
  await emulator.stop();
});

const short = (n: string | null | undefined) => (n ?? '').split('/').pop() ?? '';

async function service(name: string) {
  const [s] = await services.getService({ name: `${PARENT}/services/${name}` });
  return s;
}

async function revision(serviceName: string, name: string) {
  const [r] = await revisions.getRevision({
    name: `${PARENT}/services/${serviceName}/revisions/${name}`,
  });
  return r;
}

async function code(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (error) {
    return (error as { code?: number }).code;
  }
}

/** The traffic of a service: [revision short name, percent, tag]. */
async function traffic(name: string): Promise<[string, number, string][]> {
  const s = await service(name);
  return (s.trafficStatuses ?? []).map((t) => [short(t.revision), t.percent ?? 0, t.tag ?? '']);
}

describe('deleting a revision', () => {
  it('refuses a revision that keeps a share of the traffic, as Cloud Run does (FAILED_PRECONDITION)', async () => {
    const before = await traffic('split');
    const [older] = before.find(([, percent]) => percent === 20) ?? [''];
    expect(older).not.toBe('');
    expect(() => emulator.edit({ service: 'split', deleteRevision: older })).toThrow(
      /FAILED_PRECONDITION.*cannot be directly deleted because it is actively serving/,
    );
    // Nothing changed: the split stands and its revision answers.
    expect(await traffic('split')).toEqual(before);
    expect((await revision('split', older)).scaling?.maxInstanceCount).toBe(5);
  });

  it('refuses a tagged revision, which receives traffic at its tag URL', async () => {
    const [tagged] = (await traffic('tagged')).find(([, , tag]) => tag === 'canary') ?? [''];
    expect(tagged).not.toBe('');
    expect(() => emulator.edit({ service: 'tagged', deleteRevision: tagged })).toThrow(
      /FAILED_PRECONDITION/,
    );
    expect((await revision('tagged', tagged)).scaling?.maxInstanceCount).toBe(3);
  });

  it('refuses the latest created revision, even without traffic', async () => {
    const latest = short((await service('pinned')).latestCreatedRevision);
    expect(() => emulator.edit({ service: 'pinned', deleteRevision: latest })).toThrow(
      /FAILED_PRECONDITION.*latest/,
    );
    expect((await revision('pinned', latest)).scaling?.maxInstanceCount).toBe(1);
  });

  it('deletes a retired revision once another writer moved the traffic away from it', async () => {
    const [older] = (await traffic('split')).find(([, percent]) => percent === 20) ?? [''];
    emulator.edit({ service: 'split', previousRevision: null });
    expect((await traffic('split')).map(([, percent]) => percent)).toEqual([100]);
    // Retired, and kept until deleted.
    expect((await revision('split', older)).scaling?.maxInstanceCount).toBe(5);
    emulator.edit({ service: 'split', deleteRevision: older });
    expect(await code(revision('split', older))).toBe(status.NOT_FOUND);
    // Deleted, it can take no traffic again.
    expect(() => emulator.edit({ service: 'split', previousRevision: { percent: 10 } })).toThrow(
      /deleted/,
    );
  });
});

describe('revisions that serve no more', () => {
  it('are kept: GetRevision answers them after later deployments', async () => {
    const first = short((await service('plain')).latestReadyRevision);
    emulator.deploy({ service: 'plain', seconds: 0 });
    const second = short((await service('plain')).latestReadyRevision);
    emulator.deploy({ service: 'plain', seconds: 0 });
    const third = short((await service('plain')).latestReadyRevision);
    expect(new Set([first, second, third]).size).toBe(3);
    for (const name of [first, second, third])
      expect((await revision('plain', name)).scaling?.maxInstanceCount).toBe(2);
  });

  it('are listed by ListRevisions, newest first, beside those that serve', async () => {
    const list = async (service: string) => {
      const [all] = await revisions.listRevisions({ parent: `${PARENT}/services/${service}` });
      return all.map((r) => short(r.name));
    };
    expect(await list('plain')).toEqual([expect.stringMatching(/^plain-00001-/)]);
    emulator.deploy({ service: 'plain', seconds: 0 });
    emulator.deploy({ service: 'plain', seconds: 0 });
    expect(await list('plain')).toEqual([
      expect.stringMatching(/^plain-00003-/),
      expect.stringMatching(/^plain-00002-/),
      expect.stringMatching(/^plain-00001-/),
    ]);
    // The split's two revisions, and "-" for every service of the region.
    expect(await list('split')).toEqual([
      expect.stringMatching(/^split-00002-/),
      expect.stringMatching(/^split-00001-/),
    ]);
    expect((await list('-')).length).toBe(3 + 2 + 2 + 2 + 2);
    expect(await code(list('missing'))).toBe(status.NOT_FOUND);
  });

  it('are kept after a revision deployed without traffic is deployed over', async () => {
    const pinned = await service('pinned');
    const noTraffic = short(pinned.latestCreatedRevision);
    emulator.deploy({ service: 'pinned', seconds: 0 });
    expect(short((await service('pinned')).latestCreatedRevision)).not.toBe(noTraffic);
    expect((await revision('pinned', noTraffic)).scaling?.maxInstanceCount).toBe(1);
  });
});

describe('the template while a revision deployed without traffic is the latest', () => {
  it("shows that revision's own min instances, not the serving one's", async () => {
    for (const [name, min] of [
      ['pinned', 0],
      ['warm', 2],
    ] as const) {
      const s = await service(name);
      expect(s.template?.scaling?.minInstanceCount ?? 0, name).toBe(min);
      const latest = await revision(name, short(s.latestCreatedRevision));
      expect(latest.scaling?.minInstanceCount ?? 0, name).toBe(min);
    }
  });
});

describe('revision numbers', () => {
  it("number a fleet's older revision 00001, the serving one after it", async () => {
    const split = (await traffic('split')).map(([name]) => name);
    expect(split).toEqual([
      expect.stringMatching(/^split-00001-/),
      expect.stringMatching(/^split-00002-/),
    ]);
    const tagged = (await traffic('tagged')).map(([name]) => name);
    expect(tagged).toEqual([
      expect.stringMatching(/^tagged-00002-/),
      expect.stringMatching(/^tagged-00001-/),
    ]);
    expect(short((await service('plain')).latestReadyRevision)).toMatch(/^plain-00001-/);
  });
});

describe('revision numbers after an edit', () => {
  it('number the revision an edit makes for a split of a first revision after it, never 00000', async () => {
    // plain serves its first revision: none is before it. The split's is made after it, the
    // latest created, as `gcloud run deploy --no-traffic` then `update-traffic` would make it.
    emulator.edit({ service: 'plain', previousRevision: { maxInstances: 1, percent: 10 } });
    const s = await service('plain');
    expect(short(s.latestCreatedRevision)).toMatch(/^plain-00002-/);
    expect(await traffic('plain')).toEqual([
      [expect.stringMatching(/^plain-00002-/), 10, ''],
      [expect.stringMatching(/^plain-00001-/), 90, ''],
    ]);
    // A later deployment takes the next number, the traffic staying pinned by name.
    emulator.deploy({ service: 'plain', seconds: 0 });
    expect(short((await service('plain')).latestCreatedRevision)).toMatch(/^plain-00003-/);
    expect((await traffic('plain')).map(([, percent]) => percent)).toEqual([10, 90]);
  });

  it('number the revision an edit makes for a tag of a first revision after it, never 00000', async () => {
    emulator.edit({ service: 'plain', tagPrevious: { tag: 'canary', maxInstances: 1 } });
    expect(await traffic('plain')).toEqual([
      [expect.stringMatching(/^plain-00001-/), 100, ''],
      [expect.stringMatching(/^plain-00002-/), 0, 'canary'],
    ]);
    // The tag moved away and back: the same revision, which keeps its own max.
    emulator.edit({ service: 'plain', tagPrevious: null });
    emulator.edit({ service: 'plain', tagPrevious: { tag: 'again' } });
    const [, tagged] = await traffic('plain');
    expect(tagged?.[0]).toMatch(/^plain-00002-/);
    expect((await revision('plain', tagged?.[0] ?? '')).scaling?.maxInstanceCount).toBe(1);
  });
});

describe('Revisions.DeleteRevision over gRPC', () => {
  const nameOf = (service: string, revision: string) =>
    `${PARENT}/services/${service}/revisions/${revision}`;
  const names = async (service: string) => {
    const [all] = await revisions.listRevisions({ parent: `${PARENT}/services/${service}` });
    return all.map((r) => short(r.name));
  };

  it('deletes a retired revision in a long-running operation whose response is the revision', async () => {
    const first = short((await service('plain')).latestReadyRevision);
    emulator.deploy({ service: 'plain', seconds: 0 });
    const generation = (await service('plain')).generation;
    const [operation] = await revisions.deleteRevision({ name: nameOf('plain', first) });
    const [deleted] = await operation.promise();
    expect(short(deleted.name)).toBe(first);
    expect(deleted.scaling?.maxInstanceCount).toBe(2);
    expect(await code(revision('plain', first))).toBe(status.NOT_FOUND);
    expect(await names('plain')).toEqual([expect.stringMatching(/^plain-00002-/)]);
    // It changed no service: no new generation, and no operation of the service's runs on.
    expect((await service('plain')).generation).toBe(generation);
    expect((await service('plain')).reconciling).toBe(false);
    // Gone, it is not found again, over gRPC or the admin edit.
    expect(await code(revisions.deleteRevision({ name: nameOf('plain', first) }))).toBe(
      status.NOT_FOUND,
    );
    expect(() => emulator.edit({ service: 'plain', deleteRevision: first })).toThrow(
      /is not a revision/,
    );
  });

  it('refuses, as the admin edit does, a revision that serves, keeps a split, is tagged or is the latest', async () => {
    const serving = short((await service('split')).latestReadyRevision);
    const [older] = (await traffic('split')).find(([, percent]) => percent === 20) ?? [''];
    const [canary] = (await traffic('tagged')).find(([, , tag]) => tag === 'canary') ?? [''];
    const latest = short((await service('pinned')).latestCreatedRevision);
    const refused: [string, string, RegExp][] = [
      ['split', serving, /actively serving.*takes the traffic/],
      ['split', older, /actively serving.*keeps 20% of the traffic/],
      ['tagged', canary, /actively serving.*has the tag canary/],
      ['pinned', latest, /latest revision of the service/],
    ];
    for (const [service, revision, why] of refused) {
      const before = await names(service);
      const error = await revisions.deleteRevision({ name: nameOf(service, revision) }).then(
        () => undefined,
        (e: unknown) => e as { code?: number; details?: string },
      );
      expect(error?.code, revision).toBe(status.FAILED_PRECONDITION);
      expect(error?.details, revision).toMatch(why);
      // validate_only is refused alike.
      expect(
        await code(
          revisions.deleteRevision({ name: nameOf(service, revision), validateOnly: true }),
        ),
      ).toBe(status.FAILED_PRECONDITION);
      expect(await names(service)).toEqual(before);
    }
  });

  it('answers NOT_FOUND for a revision or a service that does not exist', async () => {
    expect(await code(revisions.deleteRevision({ name: nameOf('plain', 'plain-00009-abc') }))).toBe(
      status.NOT_FOUND,
    );
    expect(await code(revisions.deleteRevision({ name: nameOf('nope', 'nope-00001-abc') }))).toBe(
      status.NOT_FOUND,
    );
  });

  it('validates only with validate_only, and refuses an etag other than the revision’s (ABORTED)', async () => {
    const first = short((await service('plain')).latestReadyRevision);
    emulator.deploy({ service: 'plain', seconds: 0 });
    const [checked] = await revisions.deleteRevision({
      name: nameOf('plain', first),
      validateOnly: true,
    });
    expect(checked.done).toBe(true);
    expect(short((await checked.promise())[0].name)).toBe(first);
    expect((await revision('plain', first)).scaling?.maxInstanceCount).toBe(2);
    expect(
      await code(revisions.deleteRevision({ name: nameOf('plain', first), etag: '"stale"' })),
    ).toBe(status.ABORTED);
    expect((await revision('plain', first)).scaling?.maxInstanceCount).toBe(2);
    const { etag } = await revision('plain', first);
    const [operation] = await revisions.deleteRevision({ name: nameOf('plain', first), etag });
    await operation.promise();
    expect(await code(revision('plain', first))).toBe(status.NOT_FOUND);
  });
});
