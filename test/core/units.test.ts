import { describe, expect, it } from 'vitest';
import { selectProjects, Discovery, DiscoveryCache } from '../../src/core/discovery.js';
import { parsePolicy } from '../../src/core/policy.js';
import {
  ProjectId,
  REGION_NAME,
  splitUnits,
  stoppedSiblings,
  unitKey,
  unitLabel,
} from '../../src/core/units.js';
import { MAX_WORK_MESSAGE_BYTES, parseWorkMessage } from '../../src/core/work.js';
import { InputError } from '../../src/core/errors.js';

/**
 * Regional units (src/core/units.ts): which projects a dispatch splits, how a unit is keyed, what
 * discovery counts per region, and the work message's `region`, hostile variants included.
 */

const svc = (
  project: string,
  region: string,
  name = 'llm',
  location: string | undefined = region,
) => ({
  name: `//run.googleapis.com/projects/${project}/locations/${region}/services/${name}`,
  assetType: 'run.googleapis.com/Service',
  labels: {},
  ...(location === undefined ? {} : { location }),
});

describe('splitUnits', () => {
  const counts = {
    'big-proj': { 'us-central1': 3, 'europe-west4': 2 },
    'one-region': { 'us-central1': 9 },
    'small-proj': { 'us-central1': 1, 'us-east4': 1 },
  };
  const projects = ['small-proj', 'big-proj', 'one-region', 'listed-only'];

  it('never splits without splitAbove: one unit per project, as before', () => {
    expect(splitUnits(projects, counts, undefined, undefined)).toEqual([
      { project: 'big-proj' },
      { project: 'listed-only' },
      { project: 'one-region' },
      { project: 'small-proj' },
    ]);
  });

  it('splits a project above the threshold in two or more regions, one unit per region', () => {
    expect(splitUnits(projects, counts, 4, undefined)).toEqual([
      { project: 'big-proj', region: 'europe-west4' },
      { project: 'big-proj', region: 'us-central1' },
      // Not counted by discovery: nothing says where its services are.
      { project: 'listed-only' },
      // Large but in one region: nothing to split.
      { project: 'one-region' },
      // At or below the threshold.
      { project: 'small-proj' },
    ]);
    // Exactly at the threshold is not above it.
    expect(splitUnits(['big-proj'], counts, 5, undefined)).toEqual([{ project: 'big-proj' }]);
  });

  it("counts and splits only the policy's regions", () => {
    expect(splitUnits(['big-proj'], counts, 1, ['us-central1'])).toEqual([{ project: 'big-proj' }]);
    expect(splitUnits(['big-proj'], counts, 2, ['us-central1', 'europe-west4'])).toHaveLength(2);
    // 2 + 0 counted in the policy's regions: not above 2.
    expect(splitUnits(['big-proj'], counts, 2, ['europe-west4', 'us-east1'])).toEqual([
      { project: 'big-proj' },
    ]);
  });

  it('ignores counts under names that are no region (a hand-edited cache)', () => {
    const odd = { p: { 'us-central1': 5, 'x@y': 5, '../etc': 5, global: 5 } };
    expect(splitUnits(['p'], odd, 1, undefined)).toEqual([{ project: 'p' }]);
  });

  it('is deterministic whatever the order of its inputs', () => {
    const a = splitUnits(
      ['b-proj1', 'a-proj1', 'b-proj1'],
      { 'b-proj1': { 'us-east1': 2, 'asia-east1': 2 } },
      1,
      undefined,
    );
    const b = splitUnits(
      ['a-proj1', 'b-proj1'],
      { 'b-proj1': { 'asia-east1': 2, 'us-east1': 2 } },
      1,
      undefined,
    );
    expect(a).toEqual(b);
    expect(a.map(unitKey)).toEqual(['a-proj1', 'b-proj1@asia-east1', 'b-proj1@us-east1']);
  });
});

describe('unit keys', () => {
  it('is the project id for a project, project@region for a regional unit', () => {
    expect(unitKey({ project: 'my-project' })).toBe('my-project');
    expect(unitKey({ project: 'my-project', region: 'us-central1' })).toBe(
      'my-project@us-central1',
    );
    expect(unitLabel({ project: 'my-project', region: 'us-central1' })).toBe(
      'my-project (us-central1)',
    );
  });

  it('can never equal a project id: @ is in no project id or region', () => {
    const key = unitKey({ project: 'my-project', region: 'us-central1' });
    expect(ProjectId.safeParse(key).success).toBe(false);
    expect(REGION_NAME.test('us@central1')).toBe(false);
  });
});

describe('region names', () => {
  it.each([
    'us-central1',
    'europe-west12',
    'northamerica-northeast2',
    'me-central2',
    'asia-south1',
  ])('accepts %s', (r) => expect(REGION_NAME.test(r)).toBe(true));
  it.each([
    '',
    'global',
    'us',
    'us-central1-a',
    'US-CENTRAL1',
    'us-central',
    'us-central0',
    'us-central123',
    'us_central1',
    '../us-central1',
    'us-central1/',
    'us-central1\n',
    ' us-central1',
    'us-central1@x',
    'a'.repeat(200),
  ])('refuses %j', (r) => expect(REGION_NAME.test(r)).toBe(false));
});

describe('the work message region', () => {
  const good = {
    version: 1,
    kind: 'govern',
    project: 'gpu-proj-0001',
    dispatchId: 'd-1',
    issuedAt: '2026-12-02T00:00:00Z',
  };
  const parse = (m: unknown) => parseWorkMessage(Buffer.from(JSON.stringify(m)));

  it('is optional, and kept when it names a region', () => {
    expect(parse(good)).toEqual(good);
    expect(parse({ ...good, region: 'europe-west4' }).region).toBe('europe-west4');
  });

  it.each([
    ['a zone', 'us-central1-a'],
    ['global', 'global'],
    ['a path', '../../etc/passwd'],
    ['the separator', 'us-central1@evil'],
    ['a control character', 'us-central1\u0000'],
    ['upper case', 'US-CENTRAL1'],
    ['empty', ''],
    ['oversized', `us-${'a'.repeat(3000)}1`],
    ['a number', 7],
    ['an array', ['us-central1']],
    ['an object', { toString: 'us-central1' }],
    ['null', null],
  ])('refuses %s, naming region', (_, region) => {
    let error: unknown;
    try {
      parse({ ...good, region });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    const faults = (error as InputError).faults;
    const text = faults.map((f) => `${f.path}: ${f.message}`).join('\n');
    // Refused for its region (or, oversized, before it is read at all).
    if (JSON.stringify({ ...good, region }).length > MAX_WORK_MESSAGE_BYTES)
      expect((error as Error).message).toMatch(/at most 4096/);
    else expect(text).toMatch(/^region: /m);
    expect(text).not.toContain('etc/passwd');
  });
});

describe('the work message project', () => {
  const message = (project: unknown) =>
    Buffer.from(
      JSON.stringify({
        version: 1,
        kind: 'govern',
        project,
        dispatchId: 'd-1',
        issuedAt: '2026-12-02T00:00:00Z',
      }),
    );
  const taken = (project: unknown) => {
    try {
      parseWorkMessage(message(project));
      return true;
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      return false;
    }
  };

  // A dispatch sends the policy's projects as they are: a unit that refused one of them would
  // drop its every message, and the project would go ungoverned while `governor check` passes.
  it.each([
    'my-project',
    'gpu-proj-0001',
    '123456789012',
    'example.com:my-project',
    'abc1',
    '',
    'My-Project',
    'my-project-',
    '../x',
    'a/b',
    'my project',
    'my-project@us-central1',
    'a'.repeat(31),
    7,
    null,
  ])('takes %j exactly when a policy may list it', (project) => {
    expect(taken(project)).toBe(ProjectId.safeParse(project).success);
  });

  it("takes every project of a fan-out policy, a project number's and a domain's too", () => {
    const policy = parsePolicy({
      version: 1,
      projects: ['my-project', '123456789012', 'example.com:my-project'],
      fanout: { topic: 'projects/gov/topics/work' },
    });
    for (const project of policy.projects) expect(taken(project), project).toBe(true);
  });
});

describe('discovery counts services per project and region', () => {
  const d = (raw: object) => Discovery.parse(raw);

  it('counts services (not worker pools) by their location', () => {
    const found = [
      svc('big-proj', 'us-central1', 'a'),
      svc('big-proj', 'us-central1', 'b'),
      svc('big-proj', 'europe-west4', 'c'),
      {
        name: '//run.googleapis.com/projects/big-proj/locations/us-east4/workerPools/w',
        assetType: 'run.googleapis.com/WorkerPool',
        labels: {},
        location: 'us-east4',
      },
      svc('other-proj', 'us-east1'),
    ];
    const result = selectProjects(found, d({ organization: '1' }));
    expect(result.projects).toEqual(['big-proj', 'other-proj']);
    expect(result.services).toEqual({
      'big-proj': { 'europe-west4': 1, 'us-central1': 2 },
      'other-proj': { 'us-east1': 1 },
    });
  });

  it('falls back on the name when Google leaves location out, and never guesses', () => {
    const found = [
      svc('p-missing', 'us-central1', 'a', undefined),
      svc('p-empty', 'us-central1', 'a', ''),
      // The location and the name disagree: counted in no region.
      svc('p-disagree', 'us-central1', 'a', 'europe-west4'),
      // A zonal location is not a region.
      svc('p-zonal', 'us-central1', 'a', 'us-central1-a'),
    ];
    const result = selectProjects(found, d({ organization: '1' }));
    expect(result.projects).toEqual(['p-disagree', 'p-empty', 'p-missing', 'p-zonal']);
    expect(result.services).toEqual({
      'p-empty': { 'us-central1': 1 },
      'p-missing': { 'us-central1': 1 },
    });
  });

  it('counts only projects the filters keep', () => {
    const found = [svc('prod-a1', 'us-central1'), svc('dev-a11', 'us-central1')];
    const result = selectProjects(found, d({ organization: '1', include: ['prod-*'] }));
    expect(Object.keys(result.services)).toEqual(['prod-a1']);
  });

  it('keeps the counts in the cache, refusing hostile keys', () => {
    const base = { key: 'k', foundAt: '2026-12-02T00:00:00Z', projects: ['big-proj'] };
    expect(
      DiscoveryCache.parse({ ...base, services: { 'big-proj': { 'us-central1': 2 } } }).services,
    ).toEqual({ 'big-proj': { 'us-central1': 2 } });
    // Caches of earlier versions have none.
    expect(DiscoveryCache.parse(base).services).toBeUndefined();
    for (const services of [
      { 'big-proj': { 'us-central1@x': 2 } },
      { '../etc': { 'us-central1': 2 } },
      { 'big-proj': { 'us-central1': 0 } },
      { 'big-proj': { 'us-central1': 1.5 } },
    ])
      expect(
        DiscoveryCache.safeParse({ ...base, services }).success,
        JSON.stringify(services),
      ).toBe(false);
  });
});

describe('fanout.splitAbove in the policy', () => {
  it('needs discovery, whose counts it splits by', () => {
    let faults: string[] = [];
    try {
      parsePolicy({
        version: 1,
        projects: ['p-12345'],
        fanout: { topic: 'projects/h/topics/work', splitAbove: 10 },
      });
    } catch (e) {
      faults = (e as InputError).faults.map((f) => `${f.path}: ${f.message}`);
    }
    expect(faults).toEqual([
      expect.stringMatching(/^fanout\.splitAbove: splits only what discovery counted/),
    ]);
  });

  const policy = (fanout: object) =>
    parsePolicy({
      discovery: { organization: '1234' },
      version: 1,
      projects: ['p-12345'],
      fanout: { topic: 'projects/h/topics/work', ...fanout },
    });

  it('is absent by default: nothing is split', () => {
    expect(policy({}).fanout?.splitAbove).toBeUndefined();
    expect(policy({ splitAbove: 40 }).fanout?.splitAbove).toBe(40);
  });

  it.each([0, -1, 1.5, '10', null, 1e12])('refuses %j, naming the key', (splitAbove) => {
    expect(() => policy({ splitAbove })).toThrow(InputError);
    try {
      policy({ splitAbove });
    } catch (e) {
      expect((e as InputError).faults.map((f) => f.path)).toContain('fanout.splitAbove');
    }
  });
});

describe('stoppedSiblings', () => {
  const MIN = 60_000;
  /** A sibling whose newest run was `min` minutes ago (null: none). */
  const sib = (region: string, min: number | null) => ({
    region,
    lastRunAt: min === null ? null : `t-${min}`,
    ageMs: min === null ? null : min * MIN,
  });
  const judge = (
    region: string,
    siblings: ReturnType<typeof sib>[],
    firstRunMin: number | null = 120,
    countedForMs: number | null = null,
  ) =>
    stoppedSiblings({
      region,
      siblings,
      firstRunAgeMs: firstRunMin === null ? null : firstRunMin * MIN,
      countedForMs,
      staleAfterMs: 30 * MIN,
    });

  it('finds none while every sibling ran within staleAfter (30 min exactly still counts)', () => {
    expect(judge('us-central1', [sib('europe-west4', 5), sib('asia-east1', 30)])).toEqual({
      stopped: [],
      reporter: false,
    });
  });

  it('names a sibling whose newest run is older, sorted by region', () => {
    const v = judge('us-central1', [
      sib('us-east1', 31),
      sib('europe-west4', 45),
      sib('asia-east1', 1),
    ]);
    expect(v.stopped.map((s) => s.region)).toEqual(['europe-west4', 'us-east1']);
  });

  it('says so from the first running unit by region name only, whichever judges', () => {
    const all = [sib('asia-east1', 90), sib('europe-west4', 2), sib('us-central1', 3)];
    const others = (self: string) => all.filter((s) => s.region !== self);
    // asia-east1 stopped: europe-west4 is the first of the running ones.
    expect(judge('europe-west4', others('europe-west4')).reporter).toBe(true);
    expect(judge('us-central1', others('us-central1')).reporter).toBe(false);
    // Both agree on what stopped.
    expect(judge('us-central1', others('us-central1')).stopped).toEqual(
      judge('europe-west4', others('europe-west4')).stopped,
    );
  });

  it('counts a sibling that never ran only once this unit has run for staleAfter itself', () => {
    const never = [sib('europe-west4', null)];
    expect(judge('us-central1', never, null).stopped).toEqual([]);
    expect(judge('us-central1', never, 10).stopped).toEqual([]);
    expect(judge('us-central1', never, 40).stopped).toEqual(never);
  });

  it('and only once the discovery that counts it is that old: a region new to the split waits', () => {
    const never = [sib('europe-west4', null)];
    expect(judge('us-central1', never, 40, 5 * MIN).stopped).toEqual([]);
    expect(judge('us-central1', never, 40, 31 * MIN).stopped).toEqual(never);
    // Exactly staleAfter old is not older than it, as for a run (30 min exactly still counts).
    expect(judge('us-central1', never, 40, 30 * MIN).stopped).toEqual([]);
    expect(judge('us-central1', never, 30).stopped).toEqual([]);
    // A sibling that ran is judged by its run, whenever the discovery was found.
    const ran = [sib('europe-west4', 45)];
    expect(judge('us-central1', ran, 40, 5 * MIN).stopped).toEqual(ran);
  });

  it('leaves itself out of its siblings', () => {
    expect(judge('us-central1', [sib('us-central1', 90)])).toEqual({
      stopped: [],
      reporter: true,
    });
  });
});
