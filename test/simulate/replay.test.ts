import { describe, expect, it } from 'vitest';
import { historyStart, historyWarning } from '../../src/simulate/replay.js';

const MIN = 60_000;
const start = Date.parse('2026-11-20T00:00:00Z');
const end = start + 7 * 24 * 60 * MIN;
const series = (ats: number[]) => [
  { service: 'a', region: 'us-central1', points: ats.map((at) => ({ at, value: 1 })) },
];

describe('the history a replay covers', () => {
  it('keeps the window when the history starts with it, within a few minutes', () => {
    expect(historyStart(series([start + 3 * MIN, start + 4 * MIN]), start, end)).toBe(start);
  });

  it('starts at the first minute with a count when the history is shorter', () => {
    const first = end - 60 * MIN;
    // Points are stamped at the end of their minute: the minute replayed begins one earlier.
    expect(historyStart(series([first, first + MIN]), start, end)).toBe(first - MIN);
  });

  it('has no window at all without a single count', () => {
    expect(historyStart(series([]), start, end)).toBe(end);
  });

  it('warns only when the window was shortened', () => {
    const whole = { requestedMinutes: 600, minutes: 600, start: 'x', shortened: false };
    expect(historyWarning(whole, '10h')).toBeNull();
    const short = {
      requestedMinutes: 7 * 24 * 60,
      minutes: 61,
      start: '2026-11-26T23:59:00.000Z',
      shortened: true,
    };
    expect(historyWarning(short, '7d')).toBe(
      'Monitoring has instance counts for only 1.0 h of the 168 h asked for (--since 7d): replaying from 2026-11-26T23:59:00.000Z, the first minute with data, instead.',
    );
  });
});
