import { describe, expect, it } from 'vitest';
import { trend } from '../../bench/soak.js';

/** The soak's fit (bench/soak.ts): bytes per run after the warm-up, and late against early. */
describe("the soak's trend", () => {
  it('finds the slope of a steady growth, the warm-up left out', () => {
    // A jump while loading, then 1,000 bytes a run.
    const values = Array.from({ length: 100 }, (_, i) =>
      i < 20 ? 5e6 * (i / 20) : 5e6 + 1000 * i,
    );
    const t = trend(values);
    expect(t.bytesPerRun).toBeCloseTo(1000, 6);
    // Medians of runs 75–99 and 25–49: 50 runs apart.
    expect(t.lateMinusEarlyBytes).toBe(50_000);
    expect(t.first).toBe(0);
    expect(t.last).toBe(5e6 + 99_000);
  });

  it('finds no slope on a plateau, however big the warm-up', () => {
    const values = Array.from({ length: 100 }, (_, i) => (i < 10 ? 1e6 * i : 6e7 + (i % 2) * 64));
    const t = trend(values);
    expect(Math.abs(t.bytesPerRun)).toBeLessThan(1);
    expect(Math.abs(t.lateMinusEarlyBytes)).toBeLessThanOrEqual(64);
    expect(t.max).toBe(6e7 + 64);
  });
});
