/**
 * ListTimeSeries refuses enum numbers its protos do not declare and Timestamps outside
 * timestamp.proto's range (attack findings 4 and 5), instead of reading them as defaults.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { testFleet } from '../support/fixtures.js';
import { clientsFor, closeClients, codeOf, PROJECT, type Clients } from './helpers.js';

const FILTER = 'metric.type = "run.googleapis.com/container/instance_count"';
const once = { timeout: 10_000, retry: null };

let emulator: RunningEmulator;
let clients: Clients;
let now: number;

beforeAll(async () => {
  emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
  clients = clientsFor(emulator);
  now = Math.floor(emulator.now().getTime() / 1000);
});
afterAll(async () => {
  await closeClients(clients);
  await emulator.stop();
});

function list(more: Record<string, unknown>) {
  return clients.metrics.listTimeSeries(
    {
      name: `projects/${PROJECT}`,
      filter: FILTER,
      interval: { startTime: { seconds: now - 600 }, endTime: { seconds: now } },
      ...more,
    },
    once,
  );
}

describe('ListTimeSeries refuses a read interval Monitoring does not take', () => {
  it('refuses a missing start time, and a start not earlier than the end', async () => {
    // TimeInterval (common.proto), reads: "(startTime, endTime]. The start time must be
    // specified, must be earlier than the end time".
    const missing = await codeOf(list({ interval: { endTime: { seconds: now } } }));
    expect(missing.code).toBe(status.INVALID_ARGUMENT);
    expect(missing.message).toContain('interval.start_time is required');
    for (const start of [now, now + 60]) {
      const refused = await codeOf(
        list({ interval: { startTime: { seconds: start }, endTime: { seconds: now } } }),
      );
      expect(refused.code).toBe(status.INVALID_ARGUMENT);
      expect(refused.message).toContain('must be earlier than interval.end_time');
    }
    const [series] = await list({
      interval: { startTime: { seconds: now - 1 }, endTime: { seconds: now } },
    });
    expect(Array.isArray(series)).toBe(true);
  });

  it('refuses a missing end time', async () => {
    // TimeInterval.end_time: "Required. The end of the time interval."
    // (https://cloud.google.com/ruby/docs/reference/google-cloud-monitoring-v3/latest/Google-Cloud-Monitoring-V3-TimeInterval.html)
    const missing = await codeOf(list({ interval: { startTime: { seconds: now - 600 } } }));
    expect(missing.code).toBe(status.INVALID_ARGUMENT);
    expect(missing.message).toContain('interval.end_time is required');
  });

  it('reads (start, end]: a point at the end time is in, one at the start time is not', async () => {
    // TimeInterval, reads: "It includes the end time but excludes the start time: (startTime,
    // endTime]" (the page above). Points are a minute apart: the minute from the newest visible
    // point back holds that point only.
    const [all] = await list({});
    const newest = Math.max(
      ...all.flatMap((s) => (s.points ?? []).map((p) => Number(p.interval?.endTime?.seconds))),
    );
    const [series] = await list({
      interval: { startTime: { seconds: newest - 60 }, endTime: { seconds: newest } },
    });
    expect(series.length).toBeGreaterThan(0);
    for (const s of series) {
      expect((s.points ?? []).map((p) => Number(p.interval?.endTime?.seconds))).toEqual([newest]);
    }
  });
});

describe('ListTimeSeries refuses values outside their types', () => {
  it('refuses an enum number the proto does not declare, naming the field and the value', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { aggregation: { alignmentPeriod: { seconds: 60 }, perSeriesAligner: 999 } },
        'aggregation.per_series_aligner has an unknown value 999',
      ],
      [
        {
          aggregation: {
            alignmentPeriod: { seconds: 60 },
            perSeriesAligner: 'ALIGN_MAX',
            crossSeriesReducer: 999,
          },
        },
        'aggregation.cross_series_reducer has an unknown value 999',
      ],
      [{ view: 99 }, 'view has an unknown value 99'],
    ];
    for (const [more, message] of cases) {
      const refused = await codeOf(list(more));
      expect(refused.code).toBe(status.INVALID_ARGUMENT);
      expect(refused.message).toContain(message);
    }
  });

  it('refuses Timestamps outside timestamp.proto range', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { startTime: { seconds: now - 600 }, endTime: { seconds: 253402300800 } },
        'interval.end_time.seconds',
      ],
      [
        { startTime: { seconds: -62135596801 }, endTime: { seconds: now } },
        'interval.start_time.seconds',
      ],
      [
        { startTime: { seconds: now - 600 }, endTime: { seconds: now, nanos: -1 } },
        'interval.end_time.nanos',
      ],
      [
        { startTime: { seconds: now - 600, nanos: 1_000_000_000 }, endTime: { seconds: now } },
        'interval.start_time.nanos',
      ],
    ];
    for (const [interval, path] of cases) {
      const refused = await codeOf(list({ interval }));
      expect(refused.code).toBe(status.INVALID_ARGUMENT);
      expect(refused.message).toContain(`${path}`);
      expect(refused.message).toContain('out of range');
    }
    // The edges themselves are accepted.
    const [series] = await list({
      interval: {
        startTime: { seconds: -62135596800 },
        endTime: { seconds: now, nanos: 999_999_999 },
      },
    });
    expect(series.length).toBeGreaterThan(0);
    const [latest] = await list({
      interval: { startTime: { seconds: now - 600 }, endTime: { seconds: 253402300799 } },
    });
    expect(latest.length).toBeGreaterThan(0);
  });
});
