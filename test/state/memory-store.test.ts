/**
 * The in-memory store (the simulator's and the chaos harness's): the shared contract, so that
 * what the simulator shows of conditions, leases and run records is what the real stores do.
 */
import { afterAll, beforeAll } from 'vitest';

import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import type { StateStore } from '../../src/ports/index.js';
import { CONTRACT_KEEP_RUNS, CONTRACT_OUTBOX_LIMIT, stateStoreContract } from './contract.js';

let store: StateStore;

beforeAll(() => {
  store = createMemoryStateStore({
    keepRuns: CONTRACT_KEEP_RUNS,
    outboxLimit: CONTRACT_OUTBOX_LIMIT,
  });
});

afterAll(async () => {
  await store?.close();
});

stateStoreContract('memory store', () => store);
