/**
 * The operations the emulator keeps are bounded: an emulator left running under a governor kept
 * every operation of every write it ever took (and scanned them all to tell whether a service is
 * reconciling). The newest done ones are kept, and every one still running.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_KEPT_OPERATIONS,
  OperationStore,
  type OperationRecord,
} from '../../src/emulator/context.js';

const service = { project: 'p', region: 'us-central1', name: 'svc' };

function op(name: string, doneAt: number): OperationRecord {
  return { name, service, createdAt: 0, doneAt };
}

describe('the operations kept', () => {
  it('are bounded by default', () => {
    expect(MAX_KEPT_OPERATIONS).toBe(10_000);
    const store = new OperationStore(MAX_KEPT_OPERATIONS, () => 100);
    for (let i = 0; i < MAX_KEPT_OPERATIONS + 50; i++) store.set(`op-${i}`, op(`op-${i}`, 0));
    expect(store.size).toBe(MAX_KEPT_OPERATIONS);
    expect(store.get('op-49')).toBeUndefined();
    expect(store.get('op-50')).toBeDefined();
  });

  it('drop the oldest done ones first, never one still running', () => {
    let now = 10;
    const store = new OperationStore(2, () => now);
    store.set('running', op('running', 1_000));
    for (const name of ['a', 'b', 'c', 'd']) store.set(name, op(name, 5));
    expect([...store.keys()]).toEqual(['running', 'c', 'd']);
    // Once it is done, it is the oldest done one.
    now = 2_000;
    store.set('e', op('e', 5));
    expect([...store.keys()]).toEqual(['d', 'e']);
  });
});
