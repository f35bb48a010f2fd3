import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMonitoringAdapter, type MonitoringAdapter } from '../../src/adapters/monitoring.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { MetricSeries } from '../../src/ports/index.js';
import { PROJECT } from './helpers.js';
import { testFleet } from '../support/fixtures.js';

/**
 * `memoizeMetrics` (the benchmarks' emulator): a ListTimeSeries asked again at the same virtual
 * time is answered from memory, but never across what changes an answer: the time, injected lag.
 */

const MIN = 60_000;
const newest = (series: MetricSeries[]) =>
  Math.max(...series.flatMap((s) => s.points.map((p) => p.at)));

describe('the emulator with memoizeMetrics', () => {
  let emulator: RunningEmulator;
  let monitoring: MonitoringAdapter;
  const read = () => {
    const now = emulator.now().getTime();
    return monitoring.instanceCounts(PROJECT, { startMs: now - 30 * MIN, endMs: now });
  };

  beforeAll(async () => {
    emulator = await startEmulator({ fleet: testFleet(), speed: 'manual', memoizeMetrics: true });
    monitoring = createMonitoringAdapter({ emulatorHost: emulator.host });
  });
  afterAll(async () => {
    await monitoring.close();
    await emulator.stop();
  });

  it('answers the same request at the same time alike, and a later time anew', async () => {
    const first = await read();
    expect(first.length).toBeGreaterThan(0);
    expect(await read()).toEqual(first);
    emulator.advance(2 * MIN);
    const later = await read();
    expect(newest(later)).toBe(newest(first) + 2 * MIN);
  });

  it('answers anew when injected lag changes at the same time', async () => {
    const before = await read();
    emulator.setFaults({ monitoring: { extraLagMs: 5 * MIN } });
    try {
      const lagging = await read();
      expect(newest(lagging)).toBe(newest(before) - 5 * MIN);
    } finally {
      emulator.setFaults({});
    }
  });
});
