/**
 * The custom metric points the emulator keeps are bounded, oldest dropped first: a governor writes
 * about a hundred series every run, and a `governor emulator` left running under a governor every 5
 * minutes for days grew without end.
 */
import { describe, expect, it } from 'vitest';
import { CustomMetricStore, MAX_KEPT_POINTS } from '../../src/emulator/custom-metrics.js';

const PROJECT = 'test-project';
const TYPE = 'custom.googleapis.com/test/figure';
const START = Date.parse('2026-11-27T12:00:00Z');

/** One CreateTimeSeries request, as the emulator's gRPC server decodes it: a point per pool. */
function request(pools: readonly string[], atMs: number, value: number) {
  const seconds = String(Math.floor(atMs / 1000));
  return {
    name: `projects/${PROJECT}`,
    time_series: pools.map((pool) => ({
      metric: { type: TYPE, labels: { pool } },
      resource: { type: 'global', labels: { project_id: PROJECT } },
      points: [
        {
          interval: { end_time: { seconds, nanos: 0 } },
          value: { value: 'int64_value', int64_value: String(value) },
        },
      ],
    })),
  };
}

/** `runs` writes 5 minutes apart, each of one point to each pool's series; the clock follows. */
function writeRuns(store: CustomMetricStore, pools: readonly string[], runs: number): void {
  for (let run = 0; run < runs; run++) {
    const at = START + run * 5 * 60_000;
    store.createTimeSeries(request(pools, at, run), { fleet: [{ id: PROJECT }], nowMs: at });
  }
}

const kept = (store: CustomMetricStore) =>
  store.written().reduce((n, series) => n + series.points.length, 0);

describe('the custom metric points kept', () => {
  it('are bounded by default', () => {
    expect(MAX_KEPT_POINTS).toBe(100_000);
    const store = new CustomMetricStore();
    writeRuns(store, ['a', 'b', 'c', 'd'], 25_010);
    expect(kept(store)).toBe(MAX_KEPT_POINTS);
    expect(store.droppedPoints).toBe(4 * 25_010 - MAX_KEPT_POINTS);
  });

  it('keep the newest points of every series, oldest dropped first and counted', () => {
    const store = new CustomMetricStore(6);
    writeRuns(store, ['a', 'b'], 5);
    expect(
      store.written().map((s) => [s.metric.labels['pool'], s.points.map((p) => p.value)]),
    ).toEqual([
      ['a', [2, 3, 4]],
      ['b', [2, 3, 4]],
    ]);
    expect(store.droppedPoints).toBe(4);
  });

  it('delete a series whose points were all dropped, as Google deletes an expired one', () => {
    const store = new CustomMetricStore(3);
    writeRuns(store, ['old'], 1);
    writeRuns(store, ['new'], 3);
    expect(store.written().map((s) => s.metric.labels['pool'])).toEqual(['new']);
    expect(kept(store)).toBe(3);
  });

  it('still refuse a point older than the newest kept in its series', () => {
    const store = new CustomMetricStore(2);
    writeRuns(store, ['a'], 4);
    const at = START + 2 * 5 * 60_000;
    expect(() =>
      store.createTimeSeries(request(['a'], at, 9), {
        fleet: [{ id: PROJECT }],
        nowMs: START + 4 * 5 * 60_000,
      }),
    ).toThrow(/Points must be written in order/);
  });
});
