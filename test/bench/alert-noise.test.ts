import { describe, expect, it } from 'vitest';
import { alertNoise } from '../../bench/alert-noise.js';
import { makeAlert } from '../../src/core/conditions.js';
import type { Alert } from '../../src/core/alert.js';

const T0 = Date.parse('2026-11-27T00:00:00.000Z');
const M = 60_000;
const pool = { project: 'p', region: 'r', accelerator: 'nvidia-l4', zonalRedundancy: true };

function message(status: Alert['status'], atMin: number, details: Record<string, unknown> = {}) {
  const a = makeAlert({ at: new Date(T0 + atMin * M).toISOString(), runId: 'r' }, pool, {
    type: 'service.starved',
    severity: 'WARNING',
    service: 's',
    summary: 's',
    details,
  });
  return { ...a, status };
}

describe('alertNoise', () => {
  it('counts notifications a day, episodes, short episodes and re-fires soon after a resolve', () => {
    const rows = alertNoise(
      [
        message('firing', 0),
        message('firing', 60, { renotify: true }),
        message('resolved', 65, { durationMs: 65 * M }),
        // Back 10 minutes after its resolve: a flap; and over within 5 minutes: a short episode.
        message('firing', 75),
        message('resolved', 80, { durationMs: 5 * M }),
        // Back 20 minutes after: neither.
        message('firing', 100),
      ],
      12,
    );
    expect(rows).toEqual([
      {
        type: 'service.starved',
        severity: 'WARNING',
        firing: 3,
        renotify: 1,
        resolved: 2,
        events: 0,
        perDay: 12,
        episodes: 2,
        short: 1,
        flaps: 1,
      },
    ]);
  });
});
