import { describe, expect, it } from 'vitest';
import { validateFleet } from '../../src/emulator/fleet.js';
import {
  effectiveMax,
  FleetModel,
  MINUTE_MS,
  pendingSecondsOf,
  requestsPerInstanceMinute,
} from '../../src/emulator/model.js';
import { serviceResource, serviceRevisions, templateOf } from '../../src/emulator/resources.js';

const START = '2026-11-27T12:00:00Z';

/** A one-project fleet starting at 12:00 UTC, quota 4 in the zonal L4 pool of us-central1 by default. */
function model(
  services: unknown[],
  settings: Record<string, unknown> = {},
  pools: unknown[] = [{ region: 'us-central1', quota: 4 }],
  workerPools: unknown[] = [],
) {
  const fleet = validateFleet({
    start: START,
    warmupMinutes: 0,
    idleMinutes: 0,
    startupSeconds: 0,
    ...settings,
    projects: [{ id: 'model-project', pools, services, workerPools }],
  });
  return new FleetModel(fleet);
}

const svc = (name: string, fields: Record<string, unknown>) => ({
  name,
  region: 'us-central1',
  gpu: {},
  ...fields,
});

describe('the fleet model in requests', () => {
  // concurrency 4, 6 s a request: 40 requests an instance-minute.
  const requests = (m: FleetModel, name: string) =>
    m.history(m.findService(name)).map((r) => r.requests);

  it('queues what the capped instances cannot serve for the pending window, then answers 429', () => {
    const m = model([svc('a', { maxInstances: 2, demand: 4, pendingSeconds: 60 })]);
    m.advance(3 * MINUTE_MS);
    expect(requestsPerInstanceMinute(m.findService('a').spec)).toBe(40);
    // 160 arrive a minute and 2 instances serve 80, the longest waiting first: a minute's rest
    // waits into the next, and what is still waiting a minute later is refused.
    expect(requests(m, 'a')).toEqual([
      { arrived: 160, served: 80, refused: 0, unavailable: 0, pending: 80 },
      { arrived: 160, served: 80, refused: 0, unavailable: 0, pending: 160 },
      { arrived: 160, served: 80, refused: 80, unavailable: 0, pending: 160 },
      { arrived: 160, served: 80, refused: 80, unavailable: 0, pending: 160 },
    ]);
  });

  it('shows each minute its peak concurrency and the cap in force', () => {
    // Concurrency 4: at its cap of 2 with requests waiting, every instance is full; at 1.5
    // instances' worth under a cap of 2, each serves 3 of its 4 on average.
    const full = model([svc('a', { maxInstances: 2, demand: 4, pendingSeconds: 60 })]);
    full.advance(2 * MINUTE_MS);
    expect(full.history(full.findService('a')).map((r) => [r.peakConcurrency, r.cap])).toEqual([
      [4, 2],
      [4, 2],
      [4, 2],
    ]);
    const part = model([svc('a', { maxInstances: 2, demand: 1.5, pendingSeconds: 60 })]);
    part.advance(2 * MINUTE_MS);
    const last = part.history(part.findService('a')).at(-1);
    expect(last?.active).toBe(2);
    expect(last?.peakConcurrency).toBeCloseTo(3, 6);
  });

  it('serves all of a demand within the cap, and absorbs a burst shorter than the window', () => {
    const m = model([svc('a', { maxInstances: 2, demand: 1.5, pendingSeconds: 120 })], {
      idleMinutes: 2,
    });
    m.advance(2 * MINUTE_MS);
    expect(requests(m, 'a').every((r) => r.served === 60 && r.refused === 0)).toBe(true);
    // One minute at twice the cap: the rest waits, and the instance left idle serves it.
    m.setDemand(m.findService('a'), { constant: 4 });
    m.advance(MINUTE_MS);
    m.setDemand(m.findService('a'), { constant: 0.5 });
    m.advance(3 * MINUTE_MS);
    const after = requests(m, 'a').slice(3);
    expect(after.map((r) => r.refused)).toEqual([0, 0, 0, 0]);
    expect(after.at(-1)?.pending).toBe(0);
    expect(after.reduce((sum, r) => sum + r.served, 0)).toBe(160 + 3 * 20);
  });

  it('answers 503, not 429, for the requests an instance the quota kept from starting would serve', () => {
    const m = model([svc('a', { maxInstances: 3, demand: 2, pendingSeconds: 60 })], {}, [
      { region: 'us-central1', quota: 1 },
    ]);
    m.advance(2 * MINUTE_MS);
    const last = requests(m, 'a').at(-1);
    expect(last).toMatchObject({ arrived: 80, served: 40, refused: 0, unavailable: 40 });
  });

  it("waits Google's pending window: 3.5 x the start-up time, at least 10 s", () => {
    const spec = model([svc('a', {})]).findService('a').spec;
    expect(pendingSecondsOf(spec, 35)).toBe(122.5);
    expect(pendingSecondsOf(spec, 2)).toBe(10);
    expect(pendingSecondsOf({ ...spec, pendingSeconds: 60 }, 35)).toBe(60);
  });
});

describe('the fleet model', () => {
  it('follows demand up to the effective max and counts the rest as refused for the cap', () => {
    const m = model([svc('a', { maxInstances: 3, demand: 5 })]);
    m.advance(10 * MINUTE_MS);
    const a = m.findService('a');
    expect(a.instances).toHaveLength(3);
    // Minutes 12:00 .. 12:10 inclusive: 11 steps, 2 instances refused each.
    expect(a.refused.capInstanceMinutes).toBe(22);
    expect(a.refused.capGpuMinutes).toBe(22);
    expect(a.refused.quotaGpuMinutes).toBe(0);
  });

  it('takes the lower of the service-level and the revision-level max', () => {
    expect(effectiveMax({ maxInstances: 5, revisionMaxInstances: 2 })).toBe(2);
    expect(effectiveMax({ maxInstances: 0, revisionMaxInstances: 3 })).toBe(3);
    expect(effectiveMax({ maxInstances: 0, revisionMaxInstances: 0 })).toBe(100);
    const m = model([svc('a', { maxInstances: 4, revisionMaxInstances: 2, demand: 3 })]);
    expect(m.findService('a').instances).toHaveLength(2);
    expect(m.findService('a').refused.capInstanceMinutes).toBe(1);
  });

  it('refuses instances for quota when the pool is full, worker pools included', () => {
    const m = model(
      [svc('a', { maxInstances: 4, demand: 2 }), svc('b', { maxInstances: 4, demand: 3 })],
      {},
      undefined,
      [{ name: 'w', region: 'us-central1', gpu: {}, manualInstanceCount: 1 }],
    );
    m.advance(4 * MINUTE_MS); // five minutes in all
    const a = m.findService('a');
    const b = m.findService('b');
    // Quota 4 - 1 worker-pool GPU = 3 free GPUs, shared in turn: a 2, b 1... a wants 2, b wants 3.
    expect(a.instances.length + b.instances.length).toBe(3);
    expect(a.instances).toHaveLength(2);
    expect(b.instances).toHaveLength(1);
    expect(b.refused.quotaGpuMinutes).toBe(2 * 5);
    expect(b.refused.capGpuMinutes).toBe(0);
    const [pool] = m.pools();
    expect(pool).toMatchObject({ quota: 4, serviceGpus: 3, workerPoolGpus: 1, capsGpus: 8 });
  });

  it('counts GPUs per instance against the quota', () => {
    const m = model([svc('big', { gpu: { count: 2 }, maxInstances: 4, demand: 3 })]);
    expect(m.findService('big').instances).toHaveLength(2);
    expect(m.findService('big').refused.quotaGpuMinutes).toBe(2);
  });

  it('keeps min instances idle and lets instances no longer needed idle before they stop', () => {
    const m = model([svc('a', { maxInstances: 4, minInstances: 1, demand: 3 })], {
      idleMinutes: 2,
    });
    m.setDemand(m.findService('a'), { constant: 0 });
    m.advance(MINUTE_MS);
    const rows = () => m.history(m.findService('a'));
    expect(rows().at(-1)).toMatchObject({ active: 0, idle: 3 });
    m.advance(2 * MINUTE_MS);
    expect(rows().at(-1)).toMatchObject({ active: 0, idle: 1 });
    m.advance(10 * MINUTE_MS);
    expect(rows().at(-1)).toMatchObject({ active: 0, idle: 1 });
  });

  it('keeps an instance no longer needed idle for exactly idleMinutes whole minutes', () => {
    // Busy in the minute from 12:00 (demand 1), no longer needed from 12:01: with idleMinutes k
    // it is idle in the k minutes 12:01 ... 12:0k and gone from 12:0(k+1).
    for (const idleMinutes of [0, 1, 2, 3]) {
      const m = model([svc('a', { maxInstances: 1, demand: 1 })], { idleMinutes });
      m.setDemand(m.findService('a'), { constant: 0 });
      m.advance(5 * MINUTE_MS);
      const idle = m.history(m.findService('a')).map((r) => r.active + r.idle);
      expect(idle, `idleMinutes ${idleMinutes}`).toEqual(
        [1, 1, 1, 1, 1, 1].map((_, i) => (i <= idleMinutes ? 1 : 0)),
      );
    }
  });

  it('stops instances above a lowered max at once', () => {
    const m = model([svc('a', { maxInstances: 4, demand: 4 })]);
    const a = m.findService('a');
    expect(a.instances).toHaveLength(4);
    const before = a.etag;
    m.update(a, { maxInstances: 1 });
    expect(a.instances).toHaveLength(1);
    expect(a.generation).toBe(2);
    expect(a.etag).not.toBe(before);
  });

  it('counts the start-up time of new instances as cold-start minutes, not refusals', () => {
    const m = model([svc('a', { maxInstances: 4, demand: 2, startupSeconds: 30 })]);
    const a = m.findService('a');
    expect(a.coldStartInstanceMinutes).toBeCloseTo(1); // two instances, half a minute each
    expect(a.refused.capInstanceMinutes + a.refused.quotaInstanceMinutes).toBe(0);
  });

  it('follows diurnal and step demand in their time zones', () => {
    const m = model(
      [
        svc('d', {
          maxInstances: 10,
          demand: { diurnal: { base: 0, peak: 4, peakHour: 13, timezone: 'Europe/Paris' } },
        }),
        svc('s', {
          maxInstances: 10,
          demand: {
            steps: [
              { at: '00:00', value: 1 },
              { at: '12:30', value: 3 },
            ],
          },
        }),
      ],
      {},
      [{ region: 'us-central1' }],
    );
    // 12:00 UTC is 13:00 in Paris in November: the peak.
    expect(m.findService('d').lastDemand).toBeCloseTo(4);
    expect(m.findService('s').instances).toHaveLength(1);
    m.advance(30 * MINUTE_MS);
    expect(m.findService('s').instances).toHaveLength(3);
    m.advance(12 * 60 * MINUTE_MS); // 00:30: the lowest point of the curve
    expect(m.findService('d').lastDemand).toBeCloseTo(0.0, 1);
  });

  it('runs a manual-scaling service at its manual count whatever the demand', () => {
    const m = model([
      svc('m', { scalingMode: 'MANUAL', manualInstanceCount: 2, maxInstances: 1, demand: 0 }),
    ]);
    expect(m.findService('m').instances).toHaveLength(2);
  });

  it('runs a manual-scaling service without a manual count at its min instances', () => {
    // ScalingMode.MANUAL: "Scale to exactly min instances and ignore max instances".
    const m = model([
      svc('m', { scalingMode: 'MANUAL', minInstances: 3, maxInstances: 5, demand: 0 }),
    ]);
    expect(m.findService('m').instances).toHaveLength(3);
  });

  it('changes revision when a deployment ends', () => {
    const m = model([svc('a', { maxInstances: 2, demand: 1 })]);
    const a = m.findService('a');
    m.startDeployment(a, 90_000);
    expect(a.deployingUntil).not.toBeNull();
    m.advance(2 * MINUTE_MS);
    expect(a.deployingUntil).toBeNull();
    const revisions = new Set(m.history(a).map((r) => r.revision));
    expect(revisions.size).toBe(2);
  });

  it('gives the serving revision all the traffic once the split ends, and after a deployment', () => {
    const m = model([
      svc('a', { revisionMaxInstances: 2, previousRevision: { maxInstances: 5, percent: 20 } }),
    ]);
    const a = m.findService('a');
    const shares = () => serviceRevisions(a).map((r) => [r.role, r.percent]);
    expect(shares()).toEqual([
      ['previous', 20],
      ['serving', 80],
    ]);
    // Another writer sends all the traffic back to the serving revision: the older one is
    // retired, kept as Cloud Run keeps it.
    m.update(a, { previousRevision: null });
    expect(shares()).toEqual([
      ['serving', 100],
      ['retired', 0],
    ]);
    // Traffic to LATEST again: a deployment moves it to the new revision, with no split left.
    m.startDeployment(a, 0);
    expect(shares()).toEqual([
      ['serving', 100],
      ['retired', 0],
      ['retired', 0],
    ]);
    expect(a.split).toBeNull();
  });

  it("keeps up to 1000 revisions a service, dropping the oldest retired ones, as Cloud Run's limit does", () => {
    // "There is a maximum of 1000 revisions per service: If you exceed that limit, older
    // revisions are automatically deleted" (https://cloud.google.com/run/docs/managing/revisions).
    const m = model([
      svc('a', { revisionMaxInstances: 2, previousRevision: { maxInstances: 5, percent: 20 } }),
    ]);
    const a = m.findService('a');
    // The split stays on the first two revisions while deployments pile up without traffic.
    for (let i = 0; i < 1005; i++) m.startDeployment(a, 0);
    const revs = serviceRevisions(a);
    expect(revs).toHaveLength(1000);
    expect(revs.filter((r) => r.percent > 0).map((r) => [r.name.split('-')[1], r.percent])).toEqual(
      [
        ['00001', 20],
        ['00002', 80],
      ],
    );
    // The oldest retired ones went first; the newest is still the latest created.
    expect(revs.some((r) => r.name.startsWith('a-00003-'))).toBe(false);
    expect(revs.some((r) => r.name.startsWith('a-01007-'))).toBe(true);
  });

  it("makes a split's or tag's new revision from the template, as a deploy without traffic would", () => {
    // A revision is made from the service's template ("The template used to create revisions",
    // service.proto): the one an edit makes for a split or tag keeps the template's min, and its
    // max unless the edit gives one.
    const m = model([svc('warm', { revisionMinInstances: 2, revisionMaxInstances: 4 })]);
    const warm = m.findService('warm');
    m.update(warm, { previousRevision: { maxInstances: 6, percent: 20 } });
    expect(templateOf(warm)).toMatchObject({ minInstances: 2, maxInstances: 6 });
    const tagged = m.findService('warm');
    m.update(tagged, { previousRevision: null });
    expect(templateOf(tagged)).toMatchObject({ minInstances: 2, maxInstances: 6 });

    const other = model([svc('cold', { revisionMinInstances: 1, revisionMaxInstances: 3 })]);
    const cold = other.findService('cold');
    other.update(cold, { tagPrevious: { tag: 'canary' } });
    expect(templateOf(cold)).toMatchObject({ minInstances: 1, maxInstances: 3 });
  });

  it('counts only live revisions against the 1000: a deleted one frees its place, once', () => {
    const m = model([svc('a', { revisionMaxInstances: 2 })]);
    const a = m.findService('a');
    for (let i = 0; i < 1000; i++) m.startDeployment(a, 0);
    expect(serviceRevisions(a)).toHaveLength(1000);
    // Another writer deletes the ten oldest retired revisions: 990 live.
    const oldest = serviceRevisions(a)
      .filter((r) => r.role === 'retired')
      .slice(-10)
      .map((r) => r.name);
    a.deletedRevisions.push(...oldest);
    expect(serviceRevisions(a)).toHaveLength(990);
    // Twenty deployments: ten fill the freed places, the next ten each drop the oldest live one.
    const live: number[] = [];
    for (let i = 0; i < 20; i++) {
      m.startDeployment(a, 0);
      live.push(serviceRevisions(a).length);
    }
    expect(live).toEqual([
      ...[991, 992, 993, 994, 995, 996, 997, 998, 999],
      ...Array(11).fill(1000),
    ]);
    // The deleted ones' records went with the oldest, and their names with them.
    expect(a.deletedRevisions).toEqual([]);
  });

  it('fills the history during warm-up but counts refusals from the start', () => {
    const m = model([svc('a', { maxInstances: 1, demand: 2 })], { warmupMinutes: 10 });
    const a = m.findService('a');
    expect(m.history(a)).toHaveLength(11);
    expect(a.refused.capInstanceMinutes).toBe(1); // the start minute only
    m.advance(MINUTE_MS);
    expect(a.refused.capInstanceMinutes).toBe(2);
  });
});

describe('the fleet model by project', () => {
  // Three projects whose names sort differently from their order in the fleet, with services,
  // worker pools, a job and quotas (one regionless) in several regions.
  const fleet = () =>
    validateFleet({
      start: START,
      warmupMinutes: 0,
      idleMinutes: 0,
      startupSeconds: 0,
      projects: ['proj-c', 'proj-a', 'proj-b'].map((id, i) => ({
        id,
        pools: [
          { region: 'us-central1', quota: 4 + i },
          { region: 'europe-west4', quota: 2 },
          ...(i === 1 ? [{ quota: 9 }] : []),
        ],
        services: [
          svc(`z-${i}`, { maxInstances: 2, demand: 1 }),
          svc('a', { region: 'europe-west4', maxInstances: 1, demand: 2 }),
          svc('cpu', { gpu: undefined, demand: 1 }),
          svc('m', { region: 'asia-east1', demand: 1 }),
        ],
        workerPools: [{ name: 'w', region: 'us-central1', gpu: {}, manualInstanceCount: 1 }],
        jobs:
          i === 2
            ? [
                {
                  name: 'j',
                  region: 'us-central1',
                  gpu: {},
                  taskCount: 2,
                  executions: [{ startMinute: 0, taskMinutes: 5 }],
                },
              ]
            : [],
      })),
    });

  /** What a project's own answers must equal: the whole fleet's, filtered by project. */
  const sameAsFiltered = (m: FleetModel) => {
    for (const p of ['proj-a', 'proj-b', 'proj-c', 'proj-unknown']) {
      expect(m.listServices(p)).toEqual(m.listServices().filter((s) => s.project === p));
      expect(m.pools(p)).toEqual(m.pools().filter((x) => x.project === p));
      expect(m.quotaEntries(p)).toEqual(m.quotaEntries().filter((e) => e.key.project === p));
      expect(m.listWorkerPools(p)).toEqual(m.listWorkerPools().filter((w) => w.project === p));
      expect(m.listJobs(p)).toEqual(m.listJobs().filter((j) => j.project === p));
      for (const pool of m.pools(p)) expect(m.pool(pool)).toEqual(pool);
    }
  };

  it("answers a project's services, pools, quotas, worker pools and jobs as the fleet filtered", () => {
    const m = new FleetModel(fleet());
    m.advance(2 * MINUTE_MS);
    expect(m.listServices('proj-b').map((s) => s.name)).toEqual(['m', 'a', 'cpu', 'z-2']);
    expect(m.pools('proj-b').find((p) => p.region === 'us-central1')?.jobGpus).toBe(2);
    expect(m.pool({ ...m.pools('proj-a')[0]!, project: 'proj-unknown' })).toBeUndefined();
    sameAsFiltered(m);
  });

  it('keeps them equal after quotas change, a new entry included, and derives unset maxes per project', () => {
    const m = new FleetModel(fleet());
    const key = { project: 'proj-a', accelerator: 'nvidia-l4', zonalRedundancy: true };
    m.setQuota({ ...key, region: 'asia-east1' }, 3);
    m.setQuota({ ...key, region: 'us-central1' }, 1);
    sameAsFiltered(m);
    // asia-east1's service sets no max: Cloud Run derives it from its own project's quota alone.
    expect(effectiveMax(m.findService('m', 'proj-a'))).toBe(3);
    expect(effectiveMax(m.findService('m', 'proj-c'))).toBe(100);
    expect(m.quotaEntries('proj-a').at(-1)).toEqual({
      key: { ...key, region: 'asia-east1' },
      quota: 3,
    });
  });
});

describe('another writer scaling a worker pool', () => {
  // Worker pool names are per region: one project may have `enc` in two regions.
  const twoRegions = () =>
    model(
      [],
      {},
      [
        { region: 'us-central1', quota: 4 },
        { region: 'europe-west4', quota: 4 },
      ],
      [
        { name: 'enc', region: 'us-central1', gpu: {} },
        { name: 'enc', region: 'europe-west4', gpu: {} },
      ],
    );
  const counts = (m: FleetModel) =>
    m.listWorkerPools().map((w) => `${w.region} ${w.spec.manualInstanceCount}`);

  it('scales the one of the region named, where one name is in two regions', () => {
    const m = twoRegions();
    m.scaleWorkerPool('enc', 3, 'model-project', 'europe-west4');
    expect(counts(m)).toEqual(['us-central1 1', 'europe-west4 3']);
  });

  it('refuses a name in two regions when no region is named, saying to name it', () => {
    const m = twoRegions();
    expect(() => m.scaleWorkerPool('enc', 3, 'model-project')).toThrow(
      'worker pool enc is in several regions or projects: name its project and region',
    );
    expect(counts(m)).toEqual(['us-central1 1', 'europe-west4 1']);
  });
});

describe('another writer deleting a service and creating it again under its name', () => {
  it('makes a new resource: a uid and etags of its own, never the deleted one’s', () => {
    const m = model([svc('llm', { maxInstances: 1, demand: 0 })]);
    const key = { project: 'model-project', region: 'us-central1', name: 'llm' };
    const old = m.getService(key);
    if (!old) throw new Error('no llm');
    const etags = [old.etag];
    const uid = (s: NonNullable<typeof old>) => serviceResource(s, false, s.updateTime)['uid'];
    const oldUid = uid(old);
    // Created again twice, each at the generation the deleted one had when read.
    for (let i = 0; i < 2; i++) {
      m.removeService(key);
      const again = m.addService('model-project', {
        ...old.spec,
        gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: false },
      });
      expect(again.generation).toBe(old.generation);
      expect(etags).not.toContain(again.etag);
      expect(uid(again)).not.toBe(oldUid);
      etags.push(again.etag);
    }
    // The fleet's own service keeps the etag it always had: a write sent with it is not refused.
    expect(old.etag).toBe(etags[0]);
  });
});
