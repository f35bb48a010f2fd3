import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Policy } from '../../src/core/policy.js';
import { createOrgRuntime } from '../../src/runtime.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

// Module mocks need a worker of their own (the unit tests share theirs), hence an integration file.
// The clients a dispatch opens, with switches: the work topic's publisher fails to open (as a
// client library that cannot be loaded does), and each client's `close` is counted.
const opened = vi.hoisted(() => ({ closed: [] as string[], publisherFails: false }));
vi.mock('../../src/adapters/load.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/adapters/load.js')>();
  const closes = (what: string) => () => {
    opened.closed.push(what);
    return Promise.resolve();
  };
  return {
    ...actual,
    loadFirestoreStateStore: () => Promise.resolve({ close: closes('store') }),
    loadAssetSearchAdapter: () =>
      Promise.resolve({ searchRunResources: () => Promise.resolve([]), close: closes('search') }),
    loadWorkPublisher: () =>
      opened.publisherFails
        ? Promise.reject(new Error('the Pub/Sub client could not be loaded'))
        : Promise.resolve({ publish: () => Promise.resolve([]), close: closes('publisher') }),
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
});
