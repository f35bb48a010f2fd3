import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createAssetSearchAdapter, MAX_SEARCH_PAGES } from '../../src/adapters/assets.js';
import { parsePolicy } from '../../src/core/policy.js';
import { selectProjects, type Discovery } from '../../src/core/discovery.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { AnswerHook, RunningEmulator } from '../../src/emulator/index.js';
import { UpstreamError } from '../../src/core/errors.js';
import { ERROR_EVENT, memoryLogger } from '../../src/log.js';
import { discoverProjects } from '../../src/org/discover.js';
import type { AssetSearchPort, DiscoveryCache } from '../../src/ports/index.js';
import { FOLDERS, ORG, orgFleet } from '../support/org-fleet.js';

/**
 * What discovery makes of SearchAllResources answers Cloud Asset Inventory could put on the wire
 * but should not, or odd ones it may: the emulator sends each raw answer as given (its
 * `answer` seam), through the real client library. An answer that cannot be the scope's (a
 * result of another organisation or folder, pages that never end) is refused whole with an
 * UpstreamError, so discovery fails static (the projects found before, the failure logged); a
 * result that names no project id, or a type not asked for, is skipped and said so; nothing
 * outside the scope asked is ever governed.
 */

type Raw = Record<string, unknown>;
const SCOPE = `organizations/${ORG}`;
const NAME = (project: string, region = 'us-central1', s = 'svc') =>
  `//run.googleapis.com/projects/${project}/locations/${region}/services/${s}`;

/** The seam's answer to this file's one read (EmulatorOptions.answer). */
type Hook = (
  request: Parameters<AnswerHook>[1],
  fleetAnswer: Parameters<AnswerHook>[2],
) => ReturnType<AnswerHook>;
let hook: Hook | undefined;
let emulator: RunningEmulator;
let search: AssetSearchPort;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: orgFleet({ projects: 3 }),
    speed: 'manual',
    answer: (method, request, fleet) =>
      method === 'SearchAllResources' ? hook?.(request, fleet) : undefined,
  });
  search = createAssetSearchAdapter({ emulatorHost: emulator.host });
});

afterEach(() => {
  hook = undefined;
});

afterAll(async () => {
  await search?.close();
  await emulator?.stop();
});

/** A result as the fleet gives them, in the organisation and its first folder. */
function result(name: string, edit: Raw = {}): Raw {
  return {
    name,
    asset_type: 'run.googleapis.com/Service',
    location: 'us-central1',
    labels: {},
    project: 'projects/123',
    folders: [`folders/${FOLDERS[0]}`],
    organization: SCOPE,
    ...edit,
  };
}

/** Answers these pages in turn, page i+1 offered by the token `p{i+1}`. */
function pages(...all: Raw[][]): void {
  hook = (request) => {
    const token = String(request['page_token'] ?? '');
    const i = token === '' ? 0 : Number(token.slice(1));
    return { results: all[i] ?? [], next_page_token: i + 1 < all.length ? `p${i + 1}` : '' };
  };
}

const discovery = (d: Raw = {}): Discovery =>
  parsePolicy({ version: 1, discovery: { organization: ORG, ...d } }).discovery as Discovery;

async function failure(scope = SCOPE): Promise<string> {
  const error: unknown = await search.searchRunResources(scope).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UpstreamError);
  return (error as Error).message;
}

describe('a result outside the scope asked', () => {
  it('of another organisation is refused whole, naming it', async () => {
    pages([
      result(NAME('ours-proj')),
      result(NAME('theirs-proj'), { organization: 'organizations/999' }),
    ]);
    expect(await failure()).toContain(
      `${NAME('theirs-proj')} belongs to organizations/999, not to ${SCOPE}`,
    );
  });

  it('with no organisation at all is refused (Google gives it whenever the resource has one)', async () => {
    pages([result(NAME('theirs-proj'), { organization: '' })]);
    expect(await failure()).toContain(`belongs to no organization, not to ${SCOPE}`);
  });

  it('of another folder is refused when a folder is searched', async () => {
    pages([result(NAME('theirs-proj'), { folders: ['folders/4242'] })]);
    expect(await failure(`folders/${FOLDERS[1]}`)).toContain(
      `belongs to folders/4242, not to folders/${FOLDERS[1]}`,
    );
    pages([result(NAME('theirs-proj'), { folders: [] })]);
    expect(await failure(`folders/${FOLDERS[1]}`)).toContain(
      `belongs to no folder, not to folders/${FOLDERS[1]}`,
    );
  });

  it("leaves discovery on the projects found before, with an error event; the other organisation's project is never governed", async () => {
    const policy = parsePolicy({ version: 1, discovery: { organization: ORG, cacheTtl: '10m' } });
    let kept: DiscoveryCache | null = null;
    const cache = {
      loadDiscovery: () => Promise.resolve(kept),
      saveDiscovery: (c: DiscoveryCache) => {
        kept = c;
        return Promise.resolve();
      },
    };
    const log = memoryLogger();
    const first = await discoverProjects(policy, { search, cache, nowMs: 0, log });
    expect(first.projects).toEqual(['gpu-proj-0000', 'gpu-proj-0001', 'gpu-proj-0002']);
    hook = (_request, fleet) => {
      const answer = fleet();
      const results = answer['results'] as Raw[];
      return {
        ...answer,
        results: [...results, result(NAME('theirs-proj'), { organization: 'organizations/999' })],
      };
    };
    const later = await discoverProjects(policy, { search, cache, nowMs: 3_600_000, log });
    expect(later.source).toBe('stale-cache');
    expect(later.projects).toEqual(first.projects);
    const error = log.lines.find((e) => e.severity === 'ERROR');
    expect(error?.message).toContain(`${NAME('theirs-proj')} belongs to organizations/999`);
    expect(error?.fields).toMatchObject(ERROR_EVENT);
  });

  it('in a nested folder is kept: its folders list every folder above it', async () => {
    // The fleet's own answer: FOLDERS[2] sits in FOLDERS[1].
    const found = await search.searchRunResources(`folders/${FOLDERS[1]}`);
    expect(found.map((r) => r.name)).toContain(NAME('gpu-proj-0002', 'us-central1', 'llm-0'));
  });
});

describe('odd results in the scope asked', () => {
  it('a malformed name or a project number in it is skipped and said so; the others are governed', async () => {
    pages([
      result('//run.googleapis.com/projects/good-proj/services/svc'),
      result(NAME('123456789')),
      result(NAME('good-proj') + '/revisions/r1'),
      result(NAME('good-proj')),
    ]);
    const found = await search.searchRunResources(SCOPE);
    const { projects, skipped } = selectProjects(found, discovery());
    expect(projects).toEqual(['good-proj']);
    expect(skipped).toHaveLength(3);
    expect(skipped[0]).toContain('no project id in the resource name');
  });

  it('`project` as an id rather than projects/NUMBER changes nothing: the id is read from the name', async () => {
    pages([result(NAME('good-proj'), { project: 'projects/other-proj' })]);
    const { projects } = selectProjects(await search.searchRunResources(SCOPE), discovery());
    expect(projects).toEqual(['good-proj']);
  });

  it('a location that disagrees with the name keeps the project but counts the service in no region', async () => {
    pages([result(NAME('good-proj', 'us-central1'), { location: 'europe-west4' })]);
    const { projects, services } = selectProjects(
      await search.searchRunResources(SCOPE),
      discovery(),
    );
    expect(projects).toEqual(['good-proj']);
    expect(services).toEqual({});
  });

  it('the same result on two pages is counted once', async () => {
    pages([result(NAME('good-proj'))], [result(NAME('good-proj'))]);
    const found = await search.searchRunResources(SCOPE);
    expect(found).toHaveLength(2);
    expect(selectProjects(found, discovery()).services).toEqual({
      'good-proj': { 'us-central1': 1 },
    });
  });

  it('an asset type not asked for governs nothing, and is said so', async () => {
    pages([result(NAME('job-proj'), { asset_type: 'run.googleapis.com/Job' })]);
    const { projects, skipped } = selectProjects(
      await search.searchRunResources(SCOPE),
      discovery(),
    );
    expect(projects).toEqual([]);
    expect(skipped).toEqual([
      `${NAME('job-proj')}: asset type "run.googleapis.com/Job" was not asked for`,
    ]);
  });
});

describe('pages', () => {
  it('stops a search whose page token never ends, rather than reading for ever', async () => {
    let asked = 0;
    hook = (request) => {
      asked++;
      return { results: [], next_page_token: `t${String(request['page_token'] ?? '')}x` };
    };
    expect(await failure()).toContain('the listing did not end (100 pages in a row held nothing');
    expect(asked).toBe(100);
  });

  it('stops a search whose page token comes back', async () => {
    let asked = 0;
    hook = () => {
      asked++;
      return { results: [result(NAME('good-proj'))], next_page_token: 'again' };
    };
    expect(await failure()).toContain('the page token "again" came back twice');
    expect(asked).toBe(2);
  });

  it(`stops a search of more than ${MAX_SEARCH_PAGES} pages, each read`, async () => {
    let asked = 0;
    hook = (request) => {
      asked++;
      const token = String(request['page_token'] ?? '');
      return { results: [result(NAME(`proj-${asked}`))], next_page_token: `${token}+` };
    };
    expect(await failure()).toContain(`more than ${MAX_SEARCH_PAGES} pages`);
    expect(asked).toBe(MAX_SEARCH_PAGES);
  });

  it('reads tens of thousands of results, every one', async () => {
    const perPage = 500;
    const count = 100;
    pages(
      ...Array.from({ length: count }, (_, p) =>
        Array.from({ length: perPage }, (_, i) =>
          result(NAME(`proj-${String(p).padStart(4, '0')}`, 'us-central1', `s${i}`)),
        ),
      ),
    );
    const before = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const found = await search.searchRunResources(SCOPE);
    const { projects, services } = selectProjects(found, discovery());
    // A figure for the record, not an assertion.
    console.log(
      `${found.length} results: ${Math.round(performance.now() - t0)} ms, heap +${Math.round((process.memoryUsage().heapUsed - before) / 1e6)} MB`,
    );
    expect(found).toHaveLength(perPage * count);
    expect(projects).toHaveLength(count);
    expect(services['proj-0042']).toEqual({ 'us-central1': perPage });
  });
});
