import { describe, expect, it } from 'vitest';
import {
  cacheFresh,
  discoveryKey,
  discoveryScopes,
  selectProjects,
  Discovery,
  DiscoveryCache,
  SERVICE_COUNTING,
  type FoundResource,
} from '../../src/core/discovery.js';
import { parsePolicy } from '../../src/core/policy.js';
import { InputError } from '../../src/core/errors.js';

const svc = (project: string, labels: Record<string, string> = {}): FoundResource => ({
  name: `//run.googleapis.com/projects/${project}/locations/us-central1/services/llm`,
  assetType: 'run.googleapis.com/Service',
  labels,
});

function faultsOf(raw: unknown): string[] {
  try {
    parsePolicy(raw);
  } catch (e) {
    if (e instanceof InputError) return e.faults.map((f) => `${f.path}: ${f.message}`);
    throw e;
  }
  return [];
}

describe('discovery in the policy', () => {
  it('lets an organisation or folders stand in for the project list', () => {
    const p = parsePolicy({ version: 1, discovery: { organization: '123456' } });
    expect(p.projects).toEqual([]);
    expect(p.discovery?.cacheTtl).toBe('1h');
    expect(
      parsePolicy({ version: 1, discovery: { folders: ['1', '2'] } }).discovery?.folders,
    ).toEqual(['1', '2']);
  });

  it('still needs projects without discovery, and a scope with it', () => {
    expect(faultsOf({ version: 1 })).toContain(
      'projects: expected at least one project, or a discovery section naming an organization or folders',
    );
    expect(faultsOf({ version: 1, projects: ['p'], discovery: {} })).toContain(
      'discovery: expected an organization or folders to search for projects',
    );
  });

  it('names every bad, hostile or oversized discovery field', () => {
    const faults = faultsOf({
      version: 1,
      discovery: {
        organization: 'organizations/123',
        folders: ['-1', '0'],
        include: ['*a*a*a*a*a*'],
        exclude: ['[oops'],
        labels: { __proto__: 'x' },
        cacheTtl: 'forever',
        extra: true,
      },
    });
    const text = faults.join('\n');
    expect(text).toMatch(/^discovery\.organization: expected an organization number/m);
    expect(text).toMatch(/^discovery\.folders\[0\]: expected a folder number/m);
    expect(text).toMatch(/^discovery\.include\[0\]: glob .* wildcards/m);
    expect(text).toMatch(/^discovery\.exclude\[0\]: invalid glob/m);
    expect(text).toMatch(/^discovery\.cacheTtl: /m);
    expect(text).toMatch(/discovery.*extra/);
    expect(faultsOf({ version: 1, discovery: { folders: Array(101).fill('1') } }).join()).toMatch(
      /discovery\.folders/,
    );
  });

  it('refuses discovery labels no Cloud Run resource can carry, which would find nothing', () => {
    // Google's labels: keys of 1 to 63 lowercase letters, digits, "_" and "-", beginning with a
    // letter; values of at most 63 of those; at most 64 labels on a resource.
    const faults = faultsOf({
      version: 1,
      discovery: { organization: '1', labels: { Team: 'search', tier: 'Gold', ok: 'on' } },
    });
    expect(faults.map((f) => f.split(': ')[0])).toEqual([
      'discovery.labels.Team',
      'discovery.labels.tier',
    ]);
    expect(faults[0]).toContain('cannot be a label key');
    expect(faults[1]).toContain('"Gold" cannot be a label value');
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(faultsOf({ version: 1, discovery: { organization: '1', labels: many } })).toEqual([
      expect.stringMatching(/^discovery\.labels: 65 labels: .*at most 64/),
    ]);
    const most = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v']));
    expect(faultsOf({ version: 1, discovery: { organization: '1', labels: most } })).toEqual([]);
  });

  it('refuses an empty include, which would keep no project found', () => {
    expect(faultsOf({ version: 1, discovery: { organization: '1', include: [] } })).toEqual([
      expect.stringMatching(/^discovery\.include: .*no project.*leave it out/),
    ]);
  });

  it('accepts a fan-out topic and rejects a malformed one', () => {
    const p = parsePolicy({
      version: 1,
      projects: ['p'],
      fanout: { topic: 'projects/p/topics/work' },
    });
    expect(p.fanout).toEqual({ topic: 'projects/p/topics/work', staleAfter: '30m' });
    expect(faultsOf({ version: 1, projects: ['p'], fanout: { topic: 'work' } }).join()).toMatch(
      /fanout\.topic/,
    );
  });
});

describe('selectProjects', () => {
  const d = (raw: unknown) => Discovery.parse(raw);

  it('keeps each project with a Cloud Run resource once, sorted, with the listed ones', () => {
    const found = [svc('beta-proj'), svc('alpha-proj'), svc('beta-proj')];
    expect(selectProjects(found, d({ organization: '1' }), ['listed-proj']).projects).toEqual([
      'alpha-proj',
      'beta-proj',
      'listed-proj',
    ]);
  });

  it('counts a resource found twice (two overlapping scopes) once', () => {
    const r = selectProjects([svc('alpha-proj'), svc('alpha-proj')], d({ organization: '1' }));
    expect(r.services).toEqual({ 'alpha-proj': { 'us-central1': 1 } });
  });

  it('counts every service of a project its labels keep: the unit governs them all', () => {
    // The labels choose projects, not services: a kept project's run reads and plans each of its
    // services, so fanout.splitAbove weighs them all.
    const other = (region: string, name: string): FoundResource => ({
      name: `//run.googleapis.com/projects/prod-search/locations/${region}/services/${name}`,
      assetType: 'run.googleapis.com/Service',
      labels: {},
      location: region,
    });
    const r = selectProjects(
      [
        svc('prod-search', { team: 'search' }),
        other('us-central1', 'web'),
        other('europe-west4', 'batch'),
        other('europe-west4', 'api'),
        svc('prod-ads', { team: 'ads' }),
      ],
      d({ organization: '1', labels: { team: 'search' } }),
    );
    expect(r.projects).toEqual(['prod-search']);
    expect(r.services).toEqual({ 'prod-search': { 'europe-west4': 2, 'us-central1': 2 } });
  });

  it('filters by include and exclude globs and by labels', () => {
    const found = [
      svc('prod-search', { team: 'search' }),
      svc('prod-ads', { team: 'ads' }),
      svc('dev-search', { team: 'search' }),
    ];
    const r = selectProjects(
      found,
      d({
        organization: '1',
        include: ['prod-*', 'dev-*'],
        exclude: ['dev-*'],
        labels: { team: 'search' },
      }),
    );
    expect(r.projects).toEqual(['prod-search']);
  });

  it('skips, and says so, a resource whose name carries no project id, or of a type not asked for', () => {
    const r = selectProjects(
      [
        { ...svc('x'), name: '//run.googleapis.com/projects/123456/locations/r/services/s' },
        { ...svc('x'), name: '//evil/../../etc/passwd' },
        { ...svc('other-proj'), assetType: 'compute.googleapis.com/Instance' },
      ],
      d({ organization: '1' }),
    );
    expect(r.projects).toEqual([]);
    expect(r.skipped).toHaveLength(3);
    expect(r.skipped[0]).toMatch(/no project id/);
    // Not asked for (only Cloud Run's types are): it finds no project, and is said so.
    expect(r.skipped[2]).toMatch(/asset type "compute.googleapis.com\/Instance" was not asked for/);
  });
});

describe('the discovery cache', () => {
  const dd = Discovery.parse({ organization: '1', folders: ['3', '2'] });
  it('searches the organisation, then the folders in order', () => {
    expect(discoveryScopes(dd)).toEqual(['organizations/1', 'folders/2', 'folders/3']);
  });
  it('keeps the key of the largest discovery settings a policy may have', () => {
    // Globs of control characters (six characters each in JSON), labels of astral letters (two
    // UTF-16 units each): the longest key a policy the checks accept can make.
    const glob = (i: number) => `${i}`.padEnd(99, '\u0001') + '*';
    const p = parsePolicy({
      version: 1,
      discovery: {
        organization: '9'.repeat(25),
        folders: Array.from({ length: 100 }, (_, i) => `${'9'.repeat(22)}${100 + i}`),
        include: Array.from({ length: 100 }, (_, i) => glob(i)),
        exclude: Array.from({ length: 100 }, (_, i) => glob(100 + i)),
        labels: Object.fromEntries(
          Array.from({ length: 64 }, (_, i) => [`k${i}`.padEnd(63, 'k'), '\u{20000}'.repeat(63)]),
        ),
      },
    });
    if (!p.discovery) throw new Error('the policy has discovery');
    const key = discoveryKey(p.discovery);
    expect(key.length).toBeGreaterThan(100_000);
    expect(
      DiscoveryCache.safeParse({ key, foundAt: '2026-11-27T12:00:00.000Z', projects: [] }).success,
    ).toBe(true);
  });
  it('is fresh only for the same search within its time to live', () => {
    const key = discoveryKey(dd);
    const cache = {
      key,
      foundAt: '2026-11-27T12:00:00.000Z',
      projects: ['abc-proj'],
      counting: SERVICE_COUNTING,
    };
    const at = Date.parse(cache.foundAt);
    expect(cacheFresh(cache, key, 3_600_000, at + 59 * 60_000)).toBe(true);
    // Counted by other rules (an earlier version's cache has no `counting`): searched again.
    expect(cacheFresh({ ...cache, counting: undefined }, key, 3_600_000, at + 60_000)).toBe(false);
    expect(cacheFresh({ ...cache, counting: SERVICE_COUNTING + 1 }, key, 3_600_000, at)).toBe(
      false,
    );
    expect(cacheFresh(cache, key, 3_600_000, at + 60 * 60_000)).toBe(false);
    expect(cacheFresh(cache, key, 3_600_000, at - 1)).toBe(false);
    expect(cacheFresh(cache, discoveryKey({ ...dd, exclude: ['x'] }), 3_600_000, at)).toBe(false);
    expect(cacheFresh(null, key, 3_600_000, at)).toBe(false);
  });
});
