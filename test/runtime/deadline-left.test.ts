import { describe, expect, it } from 'vitest';
import { deadlineLeft } from '../../src/runtime.js';

/**
 * What is left of a run's deadline when the run starts, counted from the request's arrival on the
 * wall clock: a wall clock that steps back between the arrival and the start must not lengthen
 * the run past its deadline (Cloud Run's request timeout counts in real time).
 */
describe('deadlineLeft', () => {
  it('takes the time since the arrival out of the deadline', () => {
    const left = deadlineLeft(240_000, Date.now() - 10_000);
    expect(left).toBeGreaterThan(225_000);
    expect(left).toBeLessThanOrEqual(230_000);
  });

  it('never gives more than the deadline: a wall clock that stepped back 10 minutes since the arrival', () => {
    expect(deadlineLeft(240_000, Date.now() + 600_000)).toBe(240_000);
  });

  it('gives none once the deadline has passed', () => {
    expect(deadlineLeft(240_000, Date.now() - 300_000)).toBe(0);
  });
});
