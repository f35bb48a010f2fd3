import { AssetServiceClient } from '@google-cloud/asset';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { codeOf } from './helpers.js';
import { projectNumber } from '../../src/emulator/hierarchy.js';
import { FOLDERS, ORG, orgFleet, orgProjectId } from '../support/org-fleet.js';

const TYPES = ['run.googleapis.com/Service', 'run.googleapis.com/WorkerPool'];

describe('Cloud Asset Inventory SearchAllResources through @google-cloud/asset', () => {
  let emulator: RunningEmulator;
  let client: AssetServiceClient;

  beforeAll(async () => {
    // 260 projects × 2 services: 520 resources, more than one page of 500.
    emulator = await startEmulator({
      fleet: orgFleet({ projects: 260, services: 2, searchDenied: [`folders/${FOLDERS[0]}`] }),
      speed: 'manual',
    });
    client = new AssetServiceClient(
      emulatorClientOptions(emulator.env['GOVERNOR_EMULATOR_HOST'] ?? ''),
    );
  });
  afterAll(async () => {
    await client.close();
    await emulator.stop();
  });

  const page = async (req: Record<string, unknown>) => {
    const [, , response] = await client.searchAllResources(
      { scope: `organizations/${ORG}`, assetTypes: TYPES, ...req },
      { autoPaginate: false },
    );
    return response ?? {};
  };

  it('caps a page at 500 and pages on with the token it gave', async () => {
    const first = await page({ pageSize: 10_000 });
    expect(first.results).toHaveLength(500);
    expect(first.nextPageToken).not.toBe('');
    const second = await page({ pageSize: 10_000, pageToken: first.nextPageToken });
    expect(second.results).toHaveLength(20);
    expect(second.nextPageToken ?? '').toBe('');
    const r = first.results?.[0];
    expect(r?.assetType).toBe('run.googleapis.com/Service');
    expect(r?.name).toMatch(
      /^\/\/run\.googleapis\.com\/projects\/gpu-proj-\d{4}\/locations\/us-central1\/services\/llm-\d$/,
    );
    expect(r?.project).toMatch(/^projects\/\d+$/);
    expect(r?.organization).toBe(`organizations/${ORG}`);
  });

  it('reads every page through the client paging', async () => {
    const [all] = await client.searchAllResources({
      scope: `organizations/${ORG}`,
      assetTypes: TYPES,
      pageSize: 100,
    });
    expect(all).toHaveLength(520);
  });

  it('searches a folder and its sub-folders only', async () => {
    const [inFolder] = await client.searchAllResources({
      scope: `folders/${FOLDERS[1]}`,
      assetTypes: TYPES,
      pageSize: 500,
    });
    const projects = new Set(inFolder.map((r) => /projects\/([^/]+)\//.exec(r.name ?? '')?.[1]));
    // Folder 1002 holds projects 1, 4, 7…; 1003 (projects 2, 5, 8…) sits inside it.
    expect(projects.has(orgProjectId(1))).toBe(true);
    expect(projects.has(orgProjectId(2))).toBe(true);
    expect(projects.has(orgProjectId(0))).toBe(false);
  });

  it('answers an asset_types pattern it cannot match in time, rather than blocking every RPC', async () => {
    // Google matches asset_types with RE2, in linear time; JavaScript's RegExp backtracks, and
    // `(.+)+x` against "run.googleapis.com/Service" took 7 s (`(.*)*(.*)*x` three minutes) with
    // the whole emulator waiting.
    // UNIMPLEMENTED is the sign that the match was cut off at its budget: matched to the end, the
    // pattern matches no type and is INVALID_ARGUMENT. (No bound on the time taken: that would
    // pass or fail with the machine's load.)
    const slow = await codeOf(page({ assetTypes: ['(.+)+x'] }));
    expect(slow.code).toBe(status.UNIMPLEMENTED);
    expect(slow.message).toContain('RE2');
    const [results] = await client.searchAllResources(
      { scope: `organizations/${ORG}`, assetTypes: ['run\\.googleapis\\.com/.*'], pageSize: 500 },
      { autoPaginate: false },
    );
    expect(results.length).toBeGreaterThan(0);
  });

  it('refuses the syntax RE2 does not have, and does not refuse the RE2 it cannot evaluate', async () => {
    // Google matches asset_types with RE2 ("See RE2 for all supported regular expression
    // syntax"), which has no lookaround and no backreference
    // (https://github.com/google/re2/wiki/Syntax,
    // https://cloud.google.com/load-balancing/docs/re2-support): JavaScript's RegExp has both.
    for (const pattern of [
      'run\\.googleapis\\.com/(?!Worker).*',
      'run\\.googleapis\\.com/(?=S).*',
      '.*(?<=Service)',
      '.*(?<!Pool)',
      'run\\.googleapis\\.com/(S)ervice\\1?',
      'run\\.googleapis\\.com/(?<t>S)ervice\\k<t>?',
    ]) {
      const r = await codeOf(page({ assetTypes: [pattern] }));
      expect(r.code, pattern).toBe(status.INVALID_ARGUMENT);
      expect(r.message, pattern).toContain('RE2');
    }
    // Inside a character class, or escaped, those characters are plain.
    const plain = await page({
      assetTypes: ['run\\.googleapis\\.com/[(?!S]ervice', '\\(?=x|run.*'],
    });
    expect(plain.results?.length).toBeGreaterThan(0);
    // RE2 syntax JavaScript lacks: Google would answer it, the emulator cannot evaluate it.
    for (const pattern of [
      '(?i)RUN\\.GOOGLEAPIS\\.COM/SERVICE',
      'run\\.googleapis\\.com/(?P<t>Service)',
    ]) {
      expect((await codeOf(page({ assetTypes: [pattern] }))).code, pattern).toBe(
        status.UNIMPLEMENTED,
      );
    }
  });

  it('rejects what Google rejects', async () => {
    for (const scope of [
      'organisations/1',
      'folders/abc',
      'organizations/',
      '',
      'x'.repeat(5000),
    ]) {
      expect((await codeOf(page({ scope }))).code).toBe(status.INVALID_ARGUMENT);
    }
    expect((await codeOf(page({ assetTypes: ['nothing/Like-a-type'] }))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    // Google searches compute instances; the emulator does not model them: UNIMPLEMENTED, not a
    // refusal Google would not make.
    expect((await codeOf(page({ assetTypes: ['compute.googleapis.com/Instance'] }))).code).toBe(
      status.UNIMPLEMENTED,
    );
    expect((await codeOf(page({ assetTypes: ['(unclosed'] }))).code).toBe(status.INVALID_ARGUMENT);
    const first = await page({ pageSize: 5 });
    const mismatched = codeOf(
      page({ pageSize: 5, pageToken: first.nextPageToken, assetTypes: [TYPES[0]] }),
    );
    expect((await mismatched).code).toBe(status.INVALID_ARGUMENT);
    expect((await codeOf(page({ pageToken: 'not-a-token' }))).code).toBe(status.INVALID_ARGUMENT);
    // "The values of all other method parameters, must be identical to those in the previous
    // call": the page size too.
    expect((await codeOf(page({ pageSize: 6, pageToken: first.nextPageToken }))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    expect((await page({ pageSize: 5, pageToken: first.nextPageToken })).results).toHaveLength(5);
    // asset_types as asked, not as matched: a pattern that matches the same types is another
    // parameter all the same.
    const samePatterns = codeOf(
      page({
        pageSize: 5,
        pageToken: first.nextPageToken,
        assetTypes: ['run.googleapis.com/(Service|WorkerPool)'],
      }),
    );
    expect((await samePatterns).code).toBe(status.INVALID_ARGUMENT);
  });

  it('answers UNIMPLEMENTED for what it does not evaluate, rather than ignore it', async () => {
    for (const req of [
      { query: 'state:ACTIVE' },
      { orderBy: 'location DESC, name' },
      { orderBy: 'displayName, create_time DESC' },
      { readMask: { paths: ['name'] } },
      { readMask: { paths: ['*'] } },
      { readMask: { paths: ['name', 'versionedResources', 'parent_asset_type'] } },
    ]) {
      expect((await codeOf(page(req))).code, JSON.stringify(req)).toBe(status.UNIMPLEMENTED);
    }
  });

  it('refuses a read_mask path or an order_by field that SearchAllResources does not have', async () => {
    // SearchAllResourcesRequest (google/cloud/asset/v1/asset_service.proto): read_mask "Any
    // invalid field path will trigger INVALID_ARGUMENT error"; order_by: "Only the following
    // fields in the response are sortable" (name, assetType, project, displayName, ...).
    for (const req of [
      { readMask: { paths: ['nmae'] } },
      { readMask: { paths: ['name', 'versionedResources.version'] } },
      { orderBy: 'labels' },
      { orderBy: 'name, folders DESC' },
    ]) {
      expect((await codeOf(page(req))).code, JSON.stringify(req)).toBe(status.INVALID_ARGUMENT);
    }
  });

  it('refuses a scope without the search permission, and an unknown organisation', async () => {
    const denied = await codeOf(page({ scope: `folders/${FOLDERS[0]}` }));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toContain('cloudasset.assets.searchAllResources');
    expect((await codeOf(page({ scope: 'organizations/999' }))).code).toBe(
      status.PERMISSION_DENIED,
    );
    // "The caller must be granted the `cloudasset.assets.searchAllResources` permission on the
    // desired scope" (SearchAllResourcesRequest.scope, asset_service.proto), and permission is
    // checked before existence (AIP-211, https://google.aip.dev/211): a project outside the fleet,
    // by id or by number, is refused as an organisation outside it is, not answered empty.
    for (const scope of ['projects/not-in-the-fleet', 'projects/123456789012']) {
      const outside = await codeOf(page({ scope }));
      expect(outside.code, scope).toBe(status.PERMISSION_DENIED);
      expect(outside.message).toContain('cloudasset.assets.searchAllResources');
    }
    const project = orgProjectId(0);
    for (const scope of [`projects/${project}`, `projects/${projectNumber(project)}`])
      expect((await page({ scope })).results?.length, scope).toBeGreaterThan(0);
  });

  it('finds the services another writer created and no longer the ones it deleted, as ListServices does', async () => {
    const own = await startEmulator({
      fleet: orgFleet({ projects: 1, services: 2 }),
      speed: 'manual',
    });
    const ownClient = new AssetServiceClient(
      emulatorClientOptions(own.env['GOVERNOR_EMULATOR_HOST'] ?? ''),
    );
    try {
      const project = orgProjectId(0);
      own.deleteService({ service: 'llm-0', project });
      own.createService({
        project,
        service: { name: 'llm-9', region: 'us-central1', labels: { team: 'new' }, demand: 0 },
      });
      const [found] = await ownClient.searchAllResources({
        scope: `projects/${project}`,
        assetTypes: [TYPES[0] ?? ''],
      });
      expect(found.map((r) => [r.name, r.labels])).toEqual([
        [
          `//run.googleapis.com/projects/${project}/locations/us-central1/services/llm-1`,
          { team: 'search' },
        ],
        [
          `//run.googleapis.com/projects/${project}/locations/us-central1/services/llm-9`,
          { team: 'new' },
        ],
      ]);
    } finally {
      await ownClient.close();
      await own.stop();
    }
  });

  it('takes a zero or negative page size as the default', async () => {
    const r = await page({ pageSize: -3 });
    expect(r.results?.length).toBeGreaterThan(0);
  });
});
