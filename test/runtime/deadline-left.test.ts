import { afterEach, describe, expect, it, vi } from 'vitest';
import { deadlineLeft } from '../../src/runtime.js';

/**
 * What is left of a run's deadline when the run starts, counted from the request's arrival on the
 * time elapsed (performance.now(), as the entry points read the arrival): a wall clock that steps
 * between the arrival and the start must neither lengthen the run past its deadline nor hide the
 * time already spent (Cloud Run's request timeout counts in real time).
 */
describe('deadlineLeft', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('takes the time since the arrival out of the deadline', () => {
    const left = deadlineLeft(240_000, performance.now() - 10_000);
    expect(left).toBeGreaterThan(225_000);
    expect(left).toBeLessThanOrEqual(230_000);
  });

  it('never gives more than the deadline', () => {
    expect(deadlineLeft(240_000, performance.now() + 600_000)).toBe(240_000);
  });

  it('gives none once the deadline has passed', () => {
    expect(deadlineLeft(240_000, performance.now() - 300_000)).toBe(0);
  });

  it('counts the 10 s since the arrival when the wall clock stepped back 10 minutes meanwhile', () => {
    // At the arrival the two clocks read the same; 10 s later the wall clock reads 10 minutes less.
    const arrival = 1_000_000;
    vi.spyOn(performance, 'now').mockReturnValue(arrival + 10_000);
    vi.spyOn(Date, 'now').mockReturnValue(arrival + 10_000 - 600_000);
    expect(deadlineLeft(240_000, arrival)).toBe(230_000);
  });

  it('counts only the 10 s since the arrival when the wall clock jumped 10 minutes forward meanwhile', () => {
    const arrival = 1_000_000;
    vi.spyOn(performance, 'now').mockReturnValue(arrival + 10_000);
    vi.spyOn(Date, 'now').mockReturnValue(arrival + 10_000 + 600_000);
    expect(deadlineLeft(240_000, arrival)).toBe(230_000);
  });
});
