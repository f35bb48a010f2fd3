import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Policy } from '../../src/core/policy.js';
import { handleDispatch } from '../../src/function/org.js';
import { createOrgRuntime } from '../../src/runtime.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

// Module mocks need a worker of their own (the unit tests share theirs), hence an integration file.
// The clients a dispatch opens, with switches: the work topic's publisher fails to open (as a
// client library that cannot be loaded does), and each client's `close` is counted.
const opened = vi.hoisted(() => ({
  closed: [] as string[],
  publisherFails: false,
  storeCloseFails: false,
}));
vi.mock('../../src/adapters/load.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/adapters/load.js')>();
  const closes = (what: string) => () => {
    opened.closed.push(what);
    return what === 'store' && opened.storeCloseFails
      ? Promise.reject(new Error('the state store failed to close'))
      : Promise.resolve();
  };
  return {
    ...actual,
    loadFirestoreStateStore: () =>
      Promise.resolve({
        loadDiscovery: () => Promise.resolve(null),
        saveDiscovery: () => Promise.resolve(),
        close: closes('store'),
      }),
    loadAssetSearchAdapter: () =>
      Promise.resolve({ searchRunResources: () => Promise.resolve([]), close: closes('search') }),
    loadWorkPublisher: () =>
      opened.publisherFails
        ? Promise.reject(new Error('the Pub/Sub client could not be loaded'))
        : Promise.resolve({
            publish: () => Promise.resolve({ failed: [] }),
            close: closes('publisher'),
          }),
  };
});

const policy = {
  discovery: { organization: 'organizations/1' },
  fanout: { topic: 'projects/home/topics/work' },
} as unknown as Policy;
const options = parseRuntimeOptions({ GOVERNOR_STATE_STORE: 'firestore' });

describe('createOrgRuntime', () => {
  beforeEach(() => {
    opened.closed.length = 0;
    opened.publisherFails = false;
    opened.storeCloseFails = false;
  });

  it('closes every client it opened', async () => {
    const org = await createOrgRuntime(policy, options);
    await org.close();
    expect(opened.closed.sort()).toEqual(['publisher', 'search', 'store']);
  });

  it('lets go of what it opened before a client failed to open, as createRuntime does', async () => {
    opened.publisherFails = true;
    await expect(createOrgRuntime(policy, options)).rejects.toThrow(/could not be loaded/);
    expect(opened.closed.sort()).toEqual(['search', 'store']);
  });

  it('closes every other client when one fails to close, and says which failed', async () => {
    // Before, the failure was dropped: a dispatch whose store never closed logged nothing.
    opened.storeCloseFails = true;
    const org = await createOrgRuntime(policy, options);
    await expect(org.close()).rejects.toThrow('the state store failed to close');
    expect(opened.closed.sort()).toEqual(['publisher', 'search', 'store']);
  });
});

describe('a dispatch whose clients fail to close', () => {
  beforeEach(() => {
    opened.closed.length = 0;
    opened.storeCloseFails = true;
  });

  it('answers as the dispatch went, and logs the close as a WARNING', async () => {
    const lines: { severity: string; message: string }[] = [];
    const log = { log: (severity: string, message: string) => lines.push({ severity, message }) };
    const env = {
      GOVERNOR_STATE_STORE: 'firestore',
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        discovery: { organization: '123456789012' },
        fanout: { topic: 'projects/home/topics/work' },
        services: [{ match: {} }],
      }),
    };
    const answer = await handleDispatch({}, env, log);
    // The organisation holds no project (the search finds none): a dispatch of nothing, done.
    expect(answer.status).toBe(200);
    expect(JSON.stringify(answer.body)).not.toContain('failed to close');
    expect(opened.closed).toContain('store');
    expect(lines).toContainEqual({
      severity: 'WARNING',
      message: "closing the run's clients failed: the state store failed to close",
    });
  });
});
