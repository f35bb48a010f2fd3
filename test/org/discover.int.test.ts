import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAssetSearchAdapter, MAX_SEARCH_PAGES } from '../../src/adapters/assets.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import {
  discoveryKey,
  MAX_DISCOVERED_PROJECTS,
  MAX_SEARCH_PAGE_SIZE,
  type FoundResource,
} from '../../src/core/discovery.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { AssetSearchPort } from '../../src/ports/index.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { ERROR_EVENT, memoryLogger, textLogger } from '../../src/log.js';
import { discoverProjects } from '../../src/org/discover.js';
import { PermissionError } from '../../src/core/errors.js';
import { FOLDERS, ORG, orgFleet, orgProjectId } from '../support/org-fleet.js';

describe('discovery through the asset adapter, cached in the file state store', () => {
  let emulator: RunningEmulator;
  let dir: string;
  const lines: string[] = [];
  const log = textLogger({ write: (s: string) => lines.push(s) });

  beforeAll(async () => {
    emulator = await startEmulator({
      fleet: orgFleet({ projects: 9, searchDenied: [`folders/${FOLDERS[0]}`] }),
      speed: 'manual',
    });
    dir = await mkdtemp(join(tmpdir(), 'discover-'));
  });
  afterAll(async () => {
    await emulator.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const host = () => emulator.env['GOVERNOR_EMULATOR_HOST'] ?? '';

  it('finds the projects with Cloud Run resources, filters them, and reuses them until the TTL', async () => {
    const policy = parsePolicy({
      version: 1,
      projects: ['listed-proj'],
      discovery: {
        organization: ORG,
        exclude: [orgProjectId(8)],
        labels: { team: 'search' },
        cacheTtl: '10m',
      },
    });
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    const cache = createFileStateStore({ dir });
    const t0 = Date.parse('2026-11-27T12:00:00Z');
    try {
      const first = await discoverProjects(policy, { search, cache, nowMs: t0, log });
      expect(first.source).toBe('search');
      // Even-numbered projects have team=search; 8 is excluded; no-run-project has no Cloud Run.
      expect(first.projects).toEqual([
        orgProjectId(0),
        orgProjectId(2),
        orgProjectId(4),
        orgProjectId(6),
        'listed-proj',
      ]);
      // Services per project and region, from each result's location (fanout.splitAbove); the
      // policy's own project was not found, so it is not counted.
      const counted = Object.fromEntries(
        [0, 2, 4, 6].map((i) => [orgProjectId(i), { 'us-central1': 2 }]),
      );
      expect(first.services).toEqual(counted);
      expect((await cache.loadDiscovery())?.services).toEqual(counted);
      const calls = emulator.calls().filter((c) => c.method.endsWith('/SearchAllResources'));
      const again = await discoverProjects(policy, { search, cache, nowMs: t0 + 9 * 60_000, log });
      expect(again.source).toBe('cache');
      expect(again.projects).toEqual(first.projects);
      expect(again.services).toEqual(counted);
      expect(emulator.calls().filter((c) => c.method.endsWith('/SearchAllResources'))).toHaveLength(
        calls.length,
      );
      const later = await discoverProjects(policy, { search, cache, nowMs: t0 + 11 * 60_000, log });
      expect(later.source).toBe('search');
    } finally {
      await search.close();
    }
  });

  it('counts a service once when the organisation and one of its folders both find it', async () => {
    // Both scopes may be given (docs/organization.md); a folder's resources are the
    // organisation's too, so the two searches return the same services.
    const policy = parsePolicy({
      version: 1,
      discovery: { organization: ORG, folders: [FOLDERS[1]], labels: { team: 'ads' } },
    });
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    try {
      const cache = createFileStateStore({ dir: join(dir, 'overlap') });
      const r = await discoverProjects(policy, { search, cache, nowMs: Date.now(), log });
      // Odd-numbered projects have team=ads, two services each in us-central1; 1 and 7 sit in
      // folder 1002, 5 in 1003 inside it, 3 in 1001.
      expect(r.projects).toEqual([1, 3, 5, 7].map(orgProjectId));
      expect(r.services).toEqual(
        Object.fromEntries([1, 3, 5, 7].map((i) => [orgProjectId(i), { 'us-central1': 2 }])),
      );
    } finally {
      await search.close();
    }
  });

  it('keeps what it found with the longest globs a policy may have', async () => {
    // 100 include and 100 exclude globs of 100 characters each: a policy the checks accept, whose
    // discovery settings (the kept result's key) run past 20,000 characters.
    const glob = (prefix: string, i: number) => `${prefix}${i}-`.padEnd(99, 'x') + '*';
    const policy = parsePolicy({
      version: 1,
      discovery: {
        organization: ORG,
        include: ['gpu-proj-*', ...Array.from({ length: 99 }, (_, i) => glob('inc', i))],
        exclude: [orgProjectId(8), ...Array.from({ length: 99 }, (_, i) => glob('exc', i))],
      },
    });
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    try {
      const cache = createFileStateStore({ dir: join(dir, 'longest') });
      const t0 = Date.now();
      const first = await discoverProjects(policy, { search, cache, nowMs: t0, log });
      expect(first.projects).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map(orgProjectId));
      const again = await discoverProjects(policy, { search, cache, nowMs: t0 + 60_000, log });
      expect(again).toMatchObject({ source: 'cache', projects: first.projects });
    } finally {
      await search.close();
    }
  });

  it('takes the most one search reads: 200,000 services (10,000 projects of 20)', async () => {
    // The asset adapter reads up to MAX_SEARCH_PAGES pages of 500 results from one scope. Run
    // here in a process's main thread, with Node's default stack, as the dispatch function runs
    // (the unit tests' worker threads have a larger one). The search stands in for the adapter:
    // the emulator takes minutes to build and page 200,000 results.
    const projects = 10_000;
    const perProject = 20;
    expect(projects * perProject).toBe(MAX_SEARCH_PAGES * MAX_SEARCH_PAGE_SIZE);
    const found: FoundResource[] = [];
    for (let p = 0; p < projects; p++) {
      const project = `proj-${String(p).padStart(5, '0')}`;
      for (let s = 0; s < perProject; s++) {
        found.push({
          name: `//run.googleapis.com/projects/${project}/locations/us-central1/services/svc-${s}`,
          assetType: 'run.googleapis.com/Service',
          labels: {},
          location: 'us-central1',
        });
      }
    }
    const search: AssetSearchPort = {
      searchRunResources: (scope) => Promise.resolve(scope === `organizations/${ORG}` ? found : []),
      close: () => Promise.resolve(),
    };
    const policy = parsePolicy({ version: 1, discovery: { organization: ORG } });
    const cache = createFileStateStore({ dir: join(dir, 'scale') });
    const r = await discoverProjects(policy, { search, cache, nowMs: Date.now(), log });
    expect(r.source).toBe('search');
    expect(r.projects).toHaveLength(projects);
    expect(r.services?.['proj-09999']).toEqual({ 'us-central1': perProject });
    expect((await cache.loadDiscovery())?.projects).toHaveLength(projects);
  });

  it('more projects than one result keeps: one line naming the count and the bound, the kept result used', async () => {
    // One service in each of 100,001 projects: within what one search reads (200,000), past the
    // 100,000 projects a kept result holds. Before, saving it failed with the schema's raw
    // message, a JSON list of issues over several lines.
    const found: FoundResource[] = Array.from({ length: MAX_DISCOVERED_PROJECTS + 1 }, (_, p) => ({
      name: `//run.googleapis.com/projects/proj-${String(p).padStart(6, '0')}/locations/us-central1/services/svc`,
      assetType: 'run.googleapis.com/Service',
      labels: {},
      location: 'us-central1',
    }));
    const search: AssetSearchPort = {
      searchRunResources: () => Promise.resolve(found),
      close: () => Promise.resolve(),
    };
    const policy = parsePolicy({ version: 1, discovery: { organization: ORG } });
    const d = policy.discovery;
    if (!d) throw new Error('the policy has discovery');
    const line =
      'discovery found 100,001 projects, more than the 100,000 a discovery keeps: narrow it (discovery.folders, include, exclude or labels), or split the organisation between policies';
    // The bound itself is kept: "more than 100,000" is refused (docs/organization.md).
    const most = createFileStateStore({ dir: join(dir, 'most') });
    const bounded: AssetSearchPort = {
      searchRunResources: () => Promise.resolve(found.slice(0, MAX_DISCOVERED_PROJECTS)),
      close: () => Promise.resolve(),
    };
    const all = await discoverProjects(policy, {
      search: bounded,
      cache: most,
      nowMs: Date.now(),
      log,
    });
    expect(all.source).toBe('search');
    expect((await most.loadDiscovery())?.projects).toHaveLength(MAX_DISCOVERED_PROJECTS);
    const cache = createFileStateStore({ dir: join(dir, 'too-many') });
    const refused = await discoverProjects(policy, { search, cache, nowMs: Date.now(), log }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toBe(line);
    expect(await cache.loadDiscovery()).toBeNull();

    const kept = {
      key: discoveryKey(d),
      foundAt: '2026-11-01T00:00:00.000Z',
      projects: ['kept-proj'],
    };
    await cache.saveDiscovery(kept);
    const events = memoryLogger();
    const r = await discoverProjects(policy, { search, cache, nowMs: Date.now(), log: events });
    expect(r).toMatchObject({ source: 'stale-cache', projects: ['kept-proj'] });
    const failed = events.lines.filter((l) => l.message.startsWith('discovery failed'));
    expect(failed.map((l) => l.message)).toEqual([
      `discovery failed (${line}); governing the 1 project(s) found at 2026-11-01T00:00:00.000Z`,
    ]);
    expect(await cache.loadDiscovery()).toEqual(kept);
  });

  it('says which projects found before a search no longer finds', async () => {
    // Deleted, relabelled, or not yet indexed again: from now on it is not governed, and its
    // services keep the caps it left them. Nothing else would say so.
    const policy = parsePolicy({
      version: 1,
      projects: ['listed-proj'],
      discovery: { folders: [FOLDERS[2]], cacheTtl: '10m' },
    });
    const d = policy.discovery;
    if (!d) throw new Error('the policy has discovery');
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    try {
      const cache = createFileStateStore({ dir: join(dir, 'gone') });
      const t0 = Date.parse('2026-11-27T12:00:00Z');
      await cache.saveDiscovery({
        key: discoveryKey(d),
        foundAt: new Date(t0 - 3_600_000).toISOString(),
        projects: [orgProjectId(2), 'gone-proj-1', 'gone-proj-2', 'listed-proj'],
      });
      const events = memoryLogger();
      const r = await discoverProjects(policy, { search, cache, nowMs: t0, log: events });
      // Folder 1003 holds projects 2, 5 and 8; the policy lists one more, which stays governed.
      expect(r).toMatchObject({
        source: 'search',
        projects: [...[2, 5, 8].map(orgProjectId), 'listed-proj'],
      });
      const gone = events.lines.filter((l) => l.message.includes('no longer found'));
      expect(gone).toHaveLength(1);
      expect(gone[0]?.severity).toBe('WARNING');
      expect(gone[0]?.message).toContain('gone-proj-1, gone-proj-2');
      expect(gone[0]?.message).not.toContain(orgProjectId(2));
      expect(gone[0]?.message).not.toContain('listed-proj');
      // The next search, with nothing dropped, says nothing.
      const quiet = memoryLogger();
      await discoverProjects(policy, { search, cache, nowMs: t0 + 11 * 60_000, log: quiet });
      expect(quiet.lines.filter((l) => l.message.includes('no longer found'))).toEqual([]);
      // A result kept under other settings is not this search's to compare with.
      const other = createFileStateStore({ dir: join(dir, 'gone-other') });
      await other.saveDiscovery({
        key: discoveryKey({ ...d, folders: [FOLDERS[1]] }),
        foundAt: new Date(t0 - 3_600_000).toISOString(),
        projects: ['elsewhere-proj'],
      });
      const changed = memoryLogger();
      await discoverProjects(policy, { search, cache: other, nowMs: t0, log: changed });
      expect(changed.lines.filter((l) => l.message.includes('no longer found'))).toEqual([]);
    } finally {
      await search.close();
    }
  });

  it('counts a search still running at its deadline as failed: the kept result, else a clear error', async () => {
    // A search slower than the dispatch's budget (a large organisation, a slow Cloud Asset
    // answer): before, nothing bounded it, and the function's timeout ended the request with no
    // unit sent, nothing logged, and the kept result never used.
    const policy = parsePolicy({ version: 1, discovery: { folders: [FOLDERS[0]] } });
    const slow: AssetSearchPort = {
      searchRunResources: () => new Promise(() => undefined),
      close: () => Promise.resolve(),
    };
    // A clock that stands still: the search always starts 50 ms before the deadline, which then
    // passes while it hangs, however long this machine took to read the kept result first (a
    // deadline on Date.now() had passed before the search on a loaded machine).
    const searchDeadline = () => ({ deadline: 50, clock: () => 0 });
    const empty = createFileStateStore({ dir: join(dir, 'slow-empty') });
    await expect(
      discoverProjects(policy, {
        search: slow,
        cache: empty,
        nowMs: Date.now(),
        log,
        searchDeadline: searchDeadline(),
      }),
    ).rejects.toThrow(`the run deadline passed while searching folders/${FOLDERS[0]}`);
    const kept = createFileStateStore({ dir: join(dir, 'slow-kept') });
    await kept.saveDiscovery({
      key: JSON.stringify({
        scopes: [`folders/${FOLDERS[0]}`],
        include: null,
        exclude: [],
        labels: [],
      }),
      foundAt: '2026-11-01T00:00:00.000Z',
      projects: [orgProjectId(0)],
    });
    const events = memoryLogger();
    const r = await discoverProjects(policy, {
      search: slow,
      cache: kept,
      nowMs: Date.now(),
      log: events,
      searchDeadline: searchDeadline(),
    });
    expect(r).toMatchObject({ source: 'stale-cache', projects: [orgProjectId(0)] });
    expect(events.lines.map((l) => l.message)).toContainEqual(
      expect.stringMatching(
        /^discovery failed \(the run deadline passed while searching folders\//,
      ),
    );
  });

  it('uses the kept result when a search fails, and fails without one', async () => {
    const denied = parsePolicy({ version: 1, discovery: { folders: [FOLDERS[0]] } });
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    try {
      const empty = createFileStateStore({ dir: join(dir, 'empty') });
      await expect(
        discoverProjects(denied, { search, cache: empty, nowMs: Date.now(), log }),
      ).rejects.toBeInstanceOf(PermissionError);
      expect(await empty.loadDiscovery()).toBeNull();
      const kept = createFileStateStore({ dir: join(dir, 'kept') });
      await kept.saveDiscovery({
        key: JSON.stringify({
          scopes: [`folders/${FOLDERS[0]}`],
          include: null,
          exclude: [],
          labels: [],
        }),
        foundAt: '2026-11-01T00:00:00.000Z',
        projects: [orgProjectId(0)],
      });
      const events = memoryLogger();
      const r = await discoverProjects(denied, {
        search,
        cache: kept,
        nowMs: Date.now(),
        log: events,
      });
      expect(r).toMatchObject({ source: 'stale-cache', projects: [orgProjectId(0)] });
      // A search that fails at every dispatch (a role removed) leaves the kept projects in use
      // for good, new projects never found: each such dispatch is an error event, as a failed
      // one is, not only an ERROR line nobody is told of.
      const failed = events.lines.filter((l) => l.message.startsWith('discovery failed'));
      expect(failed).toHaveLength(1);
      expect(failed[0]?.severity).toBe('ERROR');
      expect(failed[0]?.message).toMatch(/cloudasset\.assets\.searchAllResources/);
      expect(failed[0]?.message).toContain('2026-11-01T00:00:00.000Z');
      expect(failed[0]?.fields).toMatchObject(ERROR_EVENT);
    } finally {
      await search.close();
    }
  });

  it("falls back only on a result of the same settings, with the policy's own projects", async () => {
    // A result kept under other discovery settings (the policy changed since) may list projects
    // the policy now leaves out: a failed search must not bring them back.
    const denied = parsePolicy({
      version: 1,
      projects: ['listed-proj'],
      discovery: { folders: [FOLDERS[0]] },
    });
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    try {
      const kept = createFileStateStore({ dir: join(dir, 'kept-listed') });
      const d = denied.discovery;
      if (!d) throw new Error('the policy has discovery');
      await kept.saveDiscovery({
        key: discoveryKey(d),
        foundAt: '2026-11-01T00:00:00.000Z',
        projects: [orgProjectId(0)],
      });
      const r = await discoverProjects(denied, { search, cache: kept, nowMs: Date.now(), log });
      expect(r).toMatchObject({
        source: 'stale-cache',
        projects: [orgProjectId(0), 'listed-proj'],
      });
      const other = createFileStateStore({ dir: join(dir, 'kept-other') });
      await other.saveDiscovery({
        key: discoveryKey({ ...d, folders: [FOLDERS[1]] }),
        foundAt: '2026-11-01T00:00:00.000Z',
        projects: [orgProjectId(1)],
      });
      await expect(
        discoverProjects(denied, { search, cache: other, nowMs: Date.now(), log }),
      ).rejects.toBeInstanceOf(PermissionError);
    } finally {
      await search.close();
    }
  });

  it('searches again over a kept discovery it cannot read, and the result replaces it', async () => {
    // The kept discovery is a cache of the search: one that cannot be read (a hand edit, a disk
    // fault) failed every dispatch, for good, until a person removed it, though the search that
    // replaces it was one call away.
    const policy = parsePolicy({
      version: 1,
      projects: ['listed-proj'],
      discovery: { organization: ORG, labels: { team: 'search' }, cacheTtl: '10m' },
    });
    const kept = join(dir, 'corrupt-cache');
    await mkdir(kept, { recursive: true });
    await writeFile(join(kept, '%discovery.json'), 'not json');
    const cache = createFileStateStore({ dir: kept });
    const search = createAssetSearchAdapter({ emulatorHost: host() });
    const logged = memoryLogger();
    try {
      const found = await discoverProjects(policy, {
        search,
        cache,
        nowMs: Date.now(),
        log: logged,
      });
      expect(found.source).toBe('search');
      expect(found.projects).toContain(orgProjectId(0));
      expect((await cache.loadDiscovery())?.projects).toContain(orgProjectId(0));
      const errors = logged.lines.filter((e) => e.severity === 'ERROR');
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          /^discovery: the kept discovery cannot be read \(Unreadable discovery cache .*%discovery\.json: .*not JSON.*\); searched again, and the result replaces it$/,
        ),
      ]);
    } finally {
      await search.close();
    }
  });

  it('refuses a corrupt or hostile cache file with the path of the fault', async () => {
    const bad = join(dir, 'bad');
    const store = createFileStateStore({ dir: bad });
    await store.saveDiscovery({ key: 'k', foundAt: '2026-11-01T00:00:00.000Z', projects: [] });
    await writeFile(
      join(bad, '%discovery.json'),
      '{"key":"k","foundAt":"x","projects":["../../etc"]}',
    );
    await expect(store.loadDiscovery()).rejects.toThrow(
      /discovery cache [\s\S]*foundAt[\s\S]*projects\[0\]/,
    );
    await writeFile(join(bad, '%discovery.json'), 'not json');
    await expect(store.loadDiscovery()).rejects.toThrow(/not JSON/);
  });
});

describe('a discovery cache an earlier version kept', () => {
  // The cache as the version before discovery counted every service of a kept project (and each
  // service once however many scopes found it) wrote it: its one project has one service labelled
  // team=search and three others, and the organisation and its folder both found the labelled
  // one, so it counted 2. The same search now counts 4.
  const ORG_ID = '123456789012';
  const KEPT_BY_EARLIER_VERSION =
    '{"key":"{\\"scopes\\":[\\"organizations/123456789012\\",\\"folders/1001\\"],\\"include\\":null,\\"exclude\\":[],\\"labels\\":[[\\"team\\",\\"search\\"]]}","foundAt":"2026-11-27T12:00:00.000Z","projects":["gpu-proj-0000"],"services":{"gpu-proj-0000":{"us-central1":2}}}\n';
  const service = (name: string, labels: Record<string, string>) => ({
    name,
    region: 'us-central1',
    gpu: {},
    maxInstances: 1,
    demand: 1,
    labels,
  });
  let emulator: RunningEmulator;
  let dir: string;
  beforeAll(async () => {
    emulator = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        startupSeconds: 30,
        idleMinutes: 0,
        warmupMinutes: 30,
        topics: [],
        projects: [
          {
            id: 'gpu-proj-0000',
            pools: [{ region: 'us-central1', quota: 8 }],
            services: [
              service('llm-0', { team: 'search' }),
              service('llm-1', {}),
              service('llm-2', {}),
              service('llm-3', {}),
            ],
          },
        ],
        hierarchy: {
          organization: ORG_ID,
          folders: [{ id: '1001' }],
          projects: { 'gpu-proj-0000': 'folders/1001' },
          searchDenied: [],
        },
      },
      speed: 'manual',
    });
    dir = await mkdtemp(join(tmpdir(), 'discover-earlier-'));
  });
  afterAll(async () => {
    await emulator.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is searched again, not reused with counts made by other rules', async () => {
    const policy = parsePolicy({
      version: 1,
      discovery: {
        organization: ORG_ID,
        folders: ['1001'],
        labels: { team: 'search' },
        cacheTtl: '1h',
      },
    });
    await writeFile(join(dir, '%discovery.json'), KEPT_BY_EARLIER_VERSION);
    const cache = createFileStateStore({ dir });
    const search = createAssetSearchAdapter({
      emulatorHost: emulator.env['GOVERNOR_EMULATOR_HOST'] ?? '',
    });
    try {
      // A minute after the earlier version searched: fresh by its age and its key.
      const nowMs = Date.parse('2026-11-27T12:01:00Z');
      const r = await discoverProjects(policy, { search, cache, nowMs, log: memoryLogger() });
      expect(r).toMatchObject({
        source: 'search',
        projects: ['gpu-proj-0000'],
        services: { 'gpu-proj-0000': { 'us-central1': 4 } },
      });
      // What this search found is kept, and reused until the TTL.
      const again = await discoverProjects(policy, {
        search,
        cache,
        nowMs: nowMs + 60_000,
        log: memoryLogger(),
      });
      expect(again).toMatchObject({
        source: 'cache',
        services: { 'gpu-proj-0000': { 'us-central1': 4 } },
      });
    } finally {
      await search.close();
    }
  });

  it('is still used when the search fails', async () => {
    // The organisation's search denied: the kept projects go on being governed, as before.
    const policy = parsePolicy({
      version: 1,
      discovery: { organization: ORG_ID, folders: ['1001'], labels: { team: 'search' } },
    });
    const kept = join(dir, 'denied');
    await mkdir(kept);
    await writeFile(join(kept, '%discovery.json'), KEPT_BY_EARLIER_VERSION);
    const r = await discoverProjects(policy, {
      search: null,
      cache: createFileStateStore({ dir: kept }),
      nowMs: Date.parse('2026-11-27T12:01:00Z'),
      log: memoryLogger(),
    });
    expect(r).toMatchObject({ source: 'stale-cache', projects: ['gpu-proj-0000'] });
  });
});
