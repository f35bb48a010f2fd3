import { describe, expect, it } from 'vitest';
import { FIRST_INSTANT, LAST_INSTANT, writableInstant } from '../../src/core/duration.js';

describe('writable instants', () => {
  it('run from FIRST_INSTANT to LAST_INSTANT, both included', () => {
    expect(writableInstant(FIRST_INSTANT)).toBe(true);
    expect(writableInstant(LAST_INSTANT)).toBe(true);
    expect(writableInstant('2026-11-27T15:00:00Z')).toBe(true);
    // A millisecond outside either end is not.
    expect(writableInstant('-000001-12-31T23:59:59.999Z')).toBe(false);
    expect(writableInstant('+010000-01-01T00:00:00.000Z')).toBe(false);
  });
});
