import { describe, expect, it } from 'vitest';
import { groupBy } from '../../src/core/collections.js';

describe('groupBy', () => {
  it('keeps groups in the order of their first item, and items in their order', () => {
    const groups = groupBy(['b1', 'a1', 'b2', 'c1', 'a2'], (s) => s.slice(0, 1));
    expect([...groups.entries()]).toEqual([
      ['b', ['b1', 'b2']],
      ['a', ['a1', 'a2']],
      ['c', ['c1']],
    ]);
    expect(groupBy([], String).size).toBe(0);
  });
});
