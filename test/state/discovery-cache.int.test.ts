/**
 * The discovery cache (organisation scale) in every state store: the file and memory stores, and
 * the Firestore store against Google's real Firestore emulator. What is read back is parsed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import type { DiscoveryCacheStore, StateStore } from '../../src/ports/index.js';
import { StateCorruptError } from '../../src/ports/index.js';
import { FIRESTORE_CALL_TIMEOUT_MS } from '../support/firestore-emulator.js';
import { sharedFirestoreEmulator, type SharedEmulator } from '../support/shared-emulators.js';

type Store = StateStore & DiscoveryCacheStore;
const cache = {
  key: '{"scopes":["organizations/1"]}',
  foundAt: '2026-11-27T10:00:00.000Z',
  projects: ['alpha-proj', 'beta-proj'],
};

function contract(name: string, open: () => Store): void {
  describe(`${name}: discovery cache`, () => {
    it('is empty at first, then holds the last one saved', async () => {
      const store = open();
      expect(await store.loadDiscovery()).toBeNull();
      await store.saveDiscovery(cache);
      expect(await store.loadDiscovery()).toEqual(cache);
      await store.saveDiscovery({ ...cache, projects: ['gamma-proj'] });
      expect((await store.loadDiscovery())?.projects).toEqual(['gamma-proj']);
    });
    it('holds the discovery of 30,000 projects (1.9 MB of JSON, over a 1 MiB Firestore document)', async () => {
      // https://cloud.google.com/firestore/quotas: a document is at most 1 MiB.
      const store = open();
      const ids = Array.from(
        { length: 30_000 },
        (_, i) => `inference-team-${String(i).padStart(5, '0')}`,
      );
      const large = {
        ...cache,
        projects: ids,
        services: Object.fromEntries(ids.map((id) => [id, { 'us-central1': 3 }])),
      };
      expect(Buffer.byteLength(JSON.stringify(large))).toBeGreaterThan(1_900_000);
      await store.saveDiscovery(large);
      expect(await store.loadDiscovery()).toEqual(large);
      await store.saveDiscovery(cache);
      expect(await store.loadDiscovery()).toEqual(cache);
    });
    // Before, the file store kept both in `discovery.json`: a project named `discovery` (a valid
    // project id) was governed once, then every run failed on its state file read as the cache,
    // and a saved discovery replaced its lease, conditions and outbox.
    it('keeps a project named discovery apart from the cache', async () => {
      const store = open();
      const lease = await store.acquireLease('discovery', 'a', 60_000, cache.foundAt);
      expect(lease.acquired).toBe(true);
      await store.saveConditions('discovery', {}, null);
      await store.saveDiscovery(cache);
      expect(await store.loadDiscovery()).toEqual(cache);
      expect((await store.readLease('discovery'))?.holder).toBe('a');
      expect((await store.loadConditions('discovery')).version).not.toBeNull();
      expect(await store.releaseLease('discovery', 'a')).toBe(true);
      expect(await store.loadDiscovery()).toEqual(cache);
    });
    it('refuses to save a malformed one, and keeps the last good one', async () => {
      const store = open();
      await store.saveDiscovery(cache);
      await expect(
        store.saveDiscovery({ ...cache, projects: ['../../etc/passwd'] }),
      ).rejects.toThrow();
      await expect(store.saveDiscovery({ ...cache, foundAt: 'yesterday' })).rejects.toThrow();
      expect(await store.loadDiscovery()).toEqual(cache);
    });
  });
}

let dir: string;
let emulator: SharedEmulator;
const opened: Store[] = [];
let raw: Firestore;
const projectId = 'governor-test';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'discovery-cache-'));
  emulator = await sharedFirestoreEmulator(projectId);
  vi.stubEnv('FIRESTORE_EMULATOR_HOST', emulator.endpoint);
  raw = new Firestore({ projectId });
});
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await raw?.terminate();
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
contract('memory store', () => createMemoryStateStore());
contract('file store', () => createFileStateStore({ dir: join(dir, String(n++)) }));
contract('Firestore store', () => {
  const store = createFirestoreStateStore({
    projectId,
    collection: `c${n++}`,
    timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
  });
  opened.push(store);
  return store;
});

/**
 * A cache a newer version wrote with a field this one does not know (both run during a deploy;
 * after a rollback the older reads what the newer wrote) reads without it. Before, it was refused
 * as corrupt, and the dispatcher failed at every run without ever writing a cache it could read.
 */
describe('a discovery cache a newer version wrote', () => {
  const newer = { ...cache, services: { 'alpha-proj': { 'us-central1': 2 } }, hotSpares: 3 };
  const read = { ...cache, services: { 'alpha-proj': { 'us-central1': 2 } } };

  it('file store: reads, the unknown field left out', async () => {
    const at = join(dir, 'newer');
    const store = createFileStateStore({ dir: at });
    await store.saveDiscovery(cache);
    await writeFile(join(at, '%discovery.json'), JSON.stringify(newer));
    expect(await store.loadDiscovery()).toEqual(read);
  });

  it('Firestore store: reads, the unknown field left out; a value it cannot read is refused', async () => {
    const store = createFirestoreStateStore({
      projectId,
      collection: 'newer',
      timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    });
    try {
      await store.saveDiscovery(cache);
      await raw
        .collection('newer')
        .doc('%discovery')
        .set({ json: JSON.stringify(newer) });
      expect(await store.loadDiscovery()).toEqual(read);
      await raw
        .collection('newer')
        .doc('%discovery')
        .set({ json: JSON.stringify({ ...newer, foundAt: 'yesterday' }) });
      await expect(store.loadDiscovery()).rejects.toBeInstanceOf(StateCorruptError);
    } finally {
      await store.close();
    }
  });
});

describe('Firestore store: a hand-edited discovery document', () => {
  it('is refused with the path of the fault', async () => {
    const store = createFirestoreStateStore({
      projectId,
      collection: 'edited',
      timeoutMs: FIRESTORE_CALL_TIMEOUT_MS,
    });
    try {
      await raw.collection('edited').doc('%discovery').set({ json: '{"key":"k","foundAt":"x"}' });
      await expect(store.loadDiscovery()).rejects.toBeInstanceOf(StateCorruptError);
      await raw.collection('edited').doc('%discovery').set({ json: 'not json' });
      await expect(store.loadDiscovery()).rejects.toThrow();
    } finally {
      await store.close();
    }
  });
});
