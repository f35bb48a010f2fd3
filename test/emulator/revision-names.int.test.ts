/**
 * A revision's name always means the same revision: Cloud Run's revision is "an immutable
 * snapshot of code and configuration"
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions),
 * and the governor keeps what it read of one by its full name for a run
 * (observe/serving-revisions.ts). Read here with Google's own clients (GetService, GetRevision)
 * over gRPC, across what another writer does between reads: a traffic split (`edit` with
 * `previousRevision`) and deployments (`deploy`).
 */
import { v2 as run } from '@google-cloud/run';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { startEmulator, type FleetInput, type RunningEmulator } from '../../src/emulator/index.js';

const PROJECT = 'names-project';
const REGION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: REGION, quota: 16 },
        { region: REGION, zonalRedundancy: false, quota: 16 },
      ],
      services: [
        // Its template serves: traffic to LATEST.
        { name: 'plain', region: REGION, gpu: {}, revisionMaxInstances: 2 },
        // 20% on an older revision of its own max 5, 80% on the serving one of max 2.
        {
          name: 'split',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          previousRevision: { maxInstances: 5, percent: 20 },
        },
        // Deployed with --no-traffic, with another max and GPU (no zonal redundancy) and a tag.
        {
          name: 'pinned',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 3,
          noTrafficRevision: { maxInstances: 1, gpu: { zonalRedundancy: false }, tag: 'canary' },
        },
        // Its latest deployment failed: LATEST is the serving revision.
        {
          name: 'failed',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          noTrafficRevision: { maxInstances: 6, failed: true },
        },
      ],
    },
  ],
};

/** What a revision is, as GetRevision answers it: what must never change under its name. */
interface Seen {
  max: number;
  accelerator: string;
  zonalRedundancyDisabled: boolean;
  gpus: string;
  ready: boolean;
}

let emulator: RunningEmulator;
let services: run.ServicesClient;
let revisions: run.RevisionsClient;
/** Every revision read so far in a test, by its full name. */
let seen: Map<string, Seen>;

beforeEach(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 10 });
  const options = emulatorClientOptions(emulator.env['GOVERNOR_EMULATOR_HOST'] ?? '');
  services = new run.ServicesClient(options);
  revisions = new run.RevisionsClient(options);
  seen = new Map();
});
afterEach(async () => {
  await Promise.all([services.close(), revisions.close()]);
  await emulator.stop();
});

/** The short names of the revisions a service names now: its traffic and latest revisions. */
async function named(service: string): Promise<{ serving: string[]; all: string[] }> {
  const [s] = await services.getService({ name: `${PARENT}/services/${service}` });
  const short = (n: string | null | undefined) => (n ?? '').split('/').pop() ?? '';
  const serving = (s.trafficStatuses ?? [])
    .filter((t) => (t.percent ?? 0) > 0)
    .map((t) => short(t.revision));
  const all = [
    ...(s.trafficStatuses ?? []).map((t) => short(t.revision)),
    short(s.latestCreatedRevision),
    short(s.latestReadyRevision),
  ].filter((n) => n !== '');
  return { serving, all: [...new Set(all)].sort() };
}

/**
 * Reads every revision the service names with GetRevision and checks each against what its name
 * meant at any earlier read of the test. Returns what each is, by short name.
 */
async function readAll(service: string): Promise<Map<string, Seen>> {
  const out = new Map<string, Seen>();
  for (const short of (await named(service)).all) {
    const name = `${PARENT}/services/${service}/revisions/${short}`;
    const [r] = await revisions.getRevision({ name });
    const now: Seen = {
      max: r.scaling?.maxInstanceCount ?? 0,
      accelerator: r.nodeSelector?.accelerator ?? '',
      zonalRedundancyDisabled: r.gpuZonalRedundancyDisabled ?? false,
      gpus: r.containers?.[0]?.resources?.limits?.['nvidia.com/gpu'] ?? '',
      ready: r.conditions?.find((c) => c.type === 'Ready')?.state === 'CONDITION_SUCCEEDED',
    };
    const before = seen.get(name);
    if (before) expect(now, `${short} read again`).toEqual(before);
    else seen.set(name, now);
    out.set(short, now);
  }
  return out;
}

/** The max of the revision of `service` that serves `percent` of its traffic. */
async function maxServing(service: string, percent: number): Promise<number | undefined> {
  const [s] = await services.getService({ name: `${PARENT}/services/${service}` });
  const target = (s.trafficStatuses ?? []).find((t) => t.percent === percent);
  const name = target?.revision ?? '';
  const [r] = await revisions.getRevision({
    name: `${PARENT}/services/${service}/revisions/${name}`,
  });
  return r.scaling?.maxInstanceCount ?? undefined;
}

describe('a revision name read twice', () => {
  it('keeps its max when another writer splits traffic to it again: a split moves the percent only', async () => {
    const first = await readAll('split');
    const [older] = [...first.entries()].find(([, r]) => r.max === 5) ?? [];
    expect(older).toBeDefined();
    // Another max for the older revision would change a revision: refused, nothing changed.
    expect(() =>
      emulator.edit({ service: 'split', previousRevision: { maxInstances: 1, percent: 30 } }),
    ).toThrow(new RegExp(`${older}.*immutable`));
    expect(await maxServing('split', 20)).toBe(5);
    // The percent alone moves: the older revision keeps its own max.
    emulator.edit({ service: 'split', previousRevision: { percent: 30 } });
    expect(await maxServing('split', 30)).toBe(5);
    await readAll('split');
    // All traffic back to the serving revision, then split again: still the same older revision.
    emulator.edit({ service: 'split', previousRevision: null });
    await readAll('split');
    expect(() =>
      emulator.edit({ service: 'split', previousRevision: { maxInstances: 9, percent: 10 } }),
    ).toThrow(/immutable/);
    emulator.edit({ service: 'split', previousRevision: { maxInstances: 5, percent: 10 } });
    expect(await maxServing('split', 10)).toBe(5);
    await readAll('split');
  });

  it('refuses over the admin API with a 400 naming the revision', async () => {
    const res = await fetch(`${emulator.env['GOVERNOR_EMULATOR_ADMIN'] ?? ''}/edit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        service: 'split',
        previousRevision: { maxInstances: 1, percent: 30 },
      }),
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).toMatch(/split-00001-\w+.*immutable/);
  });

  it('keeps its max after a deployment of a service whose template serves, and a split to the older one', async () => {
    const before = await readAll('plain');
    expect([...before.values()].map((r) => r.max)).toEqual([2]);
    emulator.deploy({ service: 'plain', seconds: 0 });
    const after = await readAll('plain');
    const { serving } = await named('plain');
    // A new name serves: LATEST moved to it.
    expect(serving).toHaveLength(1);
    expect(before.has(serving[0] ?? '')).toBe(false);
    expect(after.get(serving[0] ?? '')?.max).toBe(2);
    // The revision that served before is the older one a split can send traffic to, as it is.
    const [old] = [...before.keys()];
    expect(() =>
      emulator.edit({ service: 'plain', previousRevision: { maxInstances: 7, percent: 50 } }),
    ).toThrow(new RegExp(`${old}.*immutable`));
    emulator.edit({ service: 'plain', previousRevision: { percent: 50 } });
    const split = await readAll('plain');
    expect(split.get(old ?? '')?.max).toBe(2);
  });

  it('keeps its max and GPU after a deployment of a service pinned on a revision with a newer one without traffic', async () => {
    const before = await readAll('pinned');
    expect(before.size).toBe(2);
    const { serving: servingBefore } = await named('pinned');
    emulator.deploy({ service: 'pinned', seconds: 0 });
    const after = await readAll('pinned');
    // Traffic pinned by name stays where it was; the deployment made a name never used before.
    expect((await named('pinned')).serving).toEqual(servingBefore);
    const [s] = await services.getService({ name: `${PARENT}/services/pinned` });
    const latest = (s.latestCreatedRevision ?? '').split('/').pop() ?? '';
    expect(before.has(latest)).toBe(false);
    expect(after.get(latest)).toMatchObject({ max: 3, zonalRedundancyDisabled: false });
    // The tagged revision keeps its tag, its own max and its GPU.
    const tagged = (s.traffic ?? []).find((t) => t.tag === 'canary');
    expect(tagged?.percent ?? 0).toBe(0);
    expect(after.get(tagged?.revision ?? '')).toMatchObject({
      max: 1,
      zonalRedundancyDisabled: true,
    });
    // Another deployment: another new name again.
    emulator.deploy({ service: 'pinned', seconds: 0 });
    await readAll('pinned');
  });

  it('keeps its max after a deployment of a service whose traffic is split by name', async () => {
    const before = await readAll('split');
    const { serving } = await named('split');
    emulator.deploy({ service: 'split', seconds: 0 });
    await readAll('split');
    // The split pattern is kept for later deployments: the same two revisions serve.
    expect((await named('split')).serving).toEqual(serving);
    expect(await maxServing('split', 20)).toBe(5);
    expect(await maxServing('split', 80)).toBe(2);
    const [s] = await services.getService({ name: `${PARENT}/services/split` });
    const latest = (s.latestCreatedRevision ?? '').split('/').pop() ?? '';
    expect(before.has(latest)).toBe(false);
  });

  it('keeps what it was after a deployment that follows a failed one: the new one skips its name', async () => {
    const before = await readAll('failed');
    const failed = [...before.entries()].find(([, r]) => !r.ready)?.[0] ?? '';
    expect(failed).not.toBe('');
    emulator.deploy({ service: 'failed', seconds: 0 });
    const after = await readAll('failed');
    const { serving } = await named('failed');
    expect(serving).toHaveLength(1);
    expect(serving[0]).not.toBe(failed);
    expect(before.has(serving[0] ?? '')).toBe(false);
    expect(after.get(serving[0] ?? '')?.max).toBe(2);
    // The revision before the new serving one is the failed one: no split can send it traffic.
    expect(() => emulator.edit({ service: 'failed', previousRevision: { percent: 10 } })).toThrow(
      new RegExp(`${failed}.*not ready`),
    );
    await readAll('failed');
  });
});

describe('a revision read again after a write of its service', () => {
  it('keeps its Ready condition, which no service-level write changes', async () => {
    const name = `${PARENT}/services/split/revisions/`;
    const { all } = await named('split');
    const read = async () =>
      Promise.all(
        all.map(async (r) => (await revisions.getRevision({ name: name + r }))[0].conditions),
      );
    const before = await read();
    emulator.advance(5 * 60_000);
    emulator.edit({ service: 'split', maxInstances: 7 });
    expect(await read()).toEqual(before);
  });
});

describe('a revision name of a service deleted and created again', () => {
  it('is not the new service revision: the new one has names of its own', async () => {
    const service = { name: 'again', region: REGION, gpu: {}, revisionMaxInstances: 2 };
    emulator.createService({ project: PROJECT, service });
    const first = await readAll('again');
    emulator.deleteService({ service: 'again' });
    emulator.createService({ project: PROJECT, service: { ...service, revisionMaxInstances: 4 } });
    const second = await readAll('again');
    expect([...second.values()].map((r) => r.max)).toEqual([4]);
    for (const name of second.keys()) expect(first.has(name)).toBe(false);
  });
});
