import { describe, expect, it } from 'vitest';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { TRACE_DIR } from '../../src/simulate/scenarios.js';
import { synthesize } from '../../src/simulate/synthetic.js';
import {
  concurrencyPerMinute,
  instancesPerMinute,
  parseAzureTrace,
  readAzureTrace,
  ServiceTimeModel,
} from '../../src/simulate/trace-model.js';
import { InputError } from '../../src/core/errors.js';
import { FleetModel } from '../../src/emulator/model.js';
import { demandTable } from '../../src/simulate/context.js';

describe('the trace demand model', () => {
  const csv = [
    'TIMESTAMP,ContextTokens,GeneratedTokens',
    '2023-11-16 18:00:00.0000000,1000,30',
    '2023-11-16 18:00:45.0000000,0,30',
    '2023-11-16 18:01:10.0000000,0,0',
  ].join('\n');
  // 1 s per 1,000 context tokens, 1 s per generated token, no overhead.
  const model = ServiceTimeModel.parse({
    overheadMs: 0,
    prefillMsPerToken: 1,
    decodeMsPerToken: 1000,
    concurrency: 0.5,
  });

  it('turns requests into requests in flight per minute, by hand', () => {
    const requests = parseAzureTrace(csv);
    expect(requests.map((r) => r.atMs)).toEqual([0, 45_000, 70_000]);
    // Request 1: 0–31 s. Request 2: 45–75 s (15 s in minute 0, 15 s in minute 1). Request 3: none.
    expect(concurrencyPerMinute(requests, model)).toEqual([(31 + 15) / 60, 15 / 60]);
    // Instances = requests in flight ÷ per-instance concurrency.
    expect(instancesPerMinute(requests, model)).toEqual([(46 / 60) * 2, 0.5]);
  });

  it('reads a trace of 600,000 requests, and refuses one that spans more than 31 days', () => {
    // Before: Math.min(...rows) overflowed the stack ("unexpected failure"), and two rows a
    // thousand years apart made the minute-by-minute series exhaust memory (a fatal crash).
    const header = 'TIMESTAMP,ContextTokens,GeneratedTokens';
    const rows = Array.from(
      { length: 600_000 },
      (_, i) => `2023-11-16 18:${String(Math.floor(i / 12_000)).padStart(2, '0')}:00.000,10,5`,
    );
    const requests = parseAzureTrace([header, ...rows].join('\n'));
    expect(requests).toHaveLength(600_000);
    expect(concurrencyPerMinute(requests, model)).toHaveLength(50);
    const far = `${header}\n2023-11-16 18:17:03,1,1\n2999-11-16 18:17:03,1,1\n`;
    expect(() => parseAzureTrace(far, 'trace far.csv')).toThrow(
      /^trace far\.csv spans too long:\n {2}- its requests span \d+ days; a trace may span at most 31/,
    );
    // 31 days less a minute is still read.
    const month = `${header}\n2023-11-01 00:00:00,1,1\n2023-12-01 23:59:00,1,1\n`;
    expect(parseAzureTrace(month)).toHaveLength(2);
  });

  it('counts a request that runs for weeks in time that does not grow with its length', () => {
    // Before: each request was walked minute by minute over its service time, so a trace of long
    // requests (a huge token count, or a model's large decodeMsPerToken) cost rows × minutes: 300,000
    // rows over 30 days took 38 s per service, and a scenario runs it for each service.
    const header = 'TIMESTAMP,ContextTokens,GeneratedTokens';
    const rows = Array.from({ length: 200_000 }, (_, i) => {
      const at = new Date(Date.UTC(2023, 10, 1) + Math.floor(i * 12.96) * 1000);
      return `${at.toISOString().replace('T', ' ').slice(0, 23)},1,1000000000`;
    });
    const requests = parseAzureTrace([header, ...rows].join('\n'));
    const started = Date.now();
    const per = concurrencyPerMinute(requests, model);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(per).toHaveLength(30 * 24 * 60);
    // Every request runs past the last minute: in flight from its arrival on.
    const lastStart = (per.length - 1) * 60_000;
    const inLast = requests.reduce(
      (sum, r) => sum + (r.atMs < lastStart ? 1 : (per.length * 60_000 - r.atMs) / 60_000),
      0,
    );
    expect(per.at(-1)).toBeCloseTo(inLast, 9);
    expect(per[1]).toBeCloseTo(
      requests.reduce(
        (sum, r) => sum + (r.atMs < 60_000 ? 1 : (120_000 - Math.min(r.atMs, 120_000)) / 60_000),
        0,
      ),
      9,
    );
  });

  it('gives each minute the sum of the overlaps of the requests with it, however they fall', () => {
    // The same figures as a walk over every minute of every request, on requests of every length.
    const reference = (rs: { atMs: number; ms: number }[]): number[] => {
      const minutes = Math.floor(Math.max(...rs.map((r) => r.atMs)) / 60_000) + 1;
      const busy = new Array<number>(minutes).fill(0);
      for (const r of rs) {
        const end = r.atMs + r.ms;
        for (let m = Math.floor(r.atMs / 60_000); m < minutes && m * 60_000 < end; m++) {
          const overlap = Math.min(end, (m + 1) * 60_000) - Math.max(r.atMs, m * 60_000);
          if (overlap > 0) busy[m] = (busy[m] ?? 0) + overlap;
        }
      }
      return busy.map((ms) => ms / 60_000);
    };
    const lengths = [0, 1, 59_999, 60_000, 60_001, 119_999, 120_000, 185_250.5, 10_000_000];
    const rs = Array.from({ length: 400 }, (_, i) => ({
      atMs: (i * 7_919_357) % 1_800_000,
      ms: lengths[i % lengths.length] ?? 0,
    }));
    const unit = ServiceTimeModel.parse({
      overheadMs: 0,
      prefillMsPerToken: 0,
      decodeMsPerToken: 0.5,
      concurrency: 1,
    });
    const requests = rs.map((r) => ({ atMs: r.atMs, contextTokens: 0, generatedTokens: r.ms * 2 }));
    expect(concurrencyPerMinute(requests, unit)).toEqual(reference(rs));
  });

  it('rejects a file that is not an Azure trace, naming the line', () => {
    expect(() => parseAzureTrace('a,b\n1,2')).toThrow(InputError);
    expect(() =>
      parseAzureTrace('TIMESTAMP,ContextTokens,GeneratedTokens\nnot-a-time,1,2'),
    ).toThrow(/line 2/);
  });

  it('refuses a row whose token counts are missing or not decimal, naming its line', () => {
    // Before: Number('') is 0 and Number('0x10') 16, so a row cut short played as a request of
    // no tokens and a hexadecimal count as another number, without a word.
    const header = 'TIMESTAMP,ContextTokens,GeneratedTokens';
    const good = '2023-11-16 18:17:03.9799600,4808,10';
    for (const row of [
      '2023-11-16 18:17:04.0319600,,',
      '2023-11-16 18:17:04.0319600',
      '2023-11-16 18:17:04.0319600,3180, ',
      '2023-11-16 18:17:04.0319600,0x10,8',
      '2023-11-16 18:17:04.0319600,3180,1e3',
    ]) {
      expect(() => parseAzureTrace([header, good, row].join('\n'), 'trace t.csv'), row).toThrow(
        /^trace t\.csv has a bad row:\n {2}- line 3: expected a TIMESTAMP and two token counts of 0 or more, in decimal$/,
      );
    }
    // The line is the file's, blank lines counted.
    expect(() => parseAzureTrace(`${header}\n\n${good}\n\n,1,2`, 'trace t.csv')).toThrow(/line 5:/);
    // Spaces around a count, a CRLF line end and a byte order mark are still read.
    const read = parseAzureTrace(`\ufeff${header}\r\n${good}\r\n2023-11-16 18:17:05, 7 ,2.5\r\n`);
    expect(read.map((r) => [r.contextTokens, r.generatedTokens])).toEqual([
      [4808, 10],
      [7, 2.5],
    ]);
  });

  it('reads the shipped traces: an hour each, bursty', async () => {
    for (const file of ['azure-llm-2023-conv.csv', 'azure-llm-2023-code.csv']) {
      const per = instancesPerMinute(await readAzureTrace(TRACE_DIR, file));
      expect(per.length).toBeGreaterThanOrEqual(58);
      expect(per.length).toBeLessThanOrEqual(61);
      const mean = per.reduce((a, b) => a + b, 0) / per.length;
      expect(mean).toBeGreaterThan(0.2);
      expect(Math.max(...per) / mean).toBeGreaterThan(1.1);
    }
  });

  it('gives a shape the texture of a trace, normalised to its mean', async () => {
    const input = await buildScenario(
      parseScenario({
        scenario: 1,
        hours: 2,
        quota: 10,
        warmupMinutes: 0,
        services: [
          {
            name: 'a',
            maxInstances: 2,
            demand: {
              shape: { kind: 'constant', value: 4 },
              trace: { file: 'azure-llm-2023-conv.csv' },
            },
          },
        ],
      }),
      TRACE_DIR,
    );
    const series = input.traces.get('sim:a') ?? [];
    const firstHour = series.slice(0, 60);
    const mean = firstHour.reduce((a, b) => a + b, 0) / firstHour.length;
    expect(mean).toBeGreaterThan(3.8);
    expect(mean).toBeLessThan(4.2);
    expect(new Set(firstHour.map((v) => v.toFixed(3))).size).toBeGreaterThan(30);
  });

  it('refuses a diurnal shape in an unknown time zone, naming it (not a fleet with a NaN quota)', () => {
    const scenario = (timezone: string) => () =>
      parseScenario(
        {
          scenario: 1,
          quotaFactor: 0.8,
          services: [
            {
              name: 'a',
              maxInstances: 2,
              demand: { shape: { kind: 'diurnal', base: 0, peak: 3, peakHour: 14, timezone } },
            },
          ],
        },
        'scenario s.yaml',
      );
    expect(scenario('Mars/Phobos')).toThrow(InputError);
    expect(scenario('Mars/Phobos')).toThrow(
      'scenario s.yaml is not valid:\n  - services[0].demand.shape.timezone: expected an IANA time zone such as "Europe/Paris"',
    );
    expect(scenario('America/New_York')).not.toThrow();
  });

  it('refuses a service that wants more than 10,000 instances in a minute, naming it', async () => {
    // A peak of a billion instances ran for minutes and gigabytes before: every instance is played.
    const scenario = (peak: number) =>
      parseScenario({
        scenario: 1,
        hours: 1,
        quota: 10,
        warmupMinutes: 0,
        services: [
          { name: 'a', maxInstances: 2, demand: { shape: { kind: 'constant', value: 1 } } },
          {
            name: 'b',
            maxInstances: 2,
            demand: {
              shape: { kind: 'constant', value: 1 },
              trace: { file: 'azure-llm-2023-conv.csv' },
            },
          },
          { name: 'c', maxInstances: 2, demand: { shape: { kind: 'constant', value: peak } } },
        ],
      });
    const error: unknown = await buildScenario(scenario(1e9), TRACE_DIR, 'scenario s.yaml').catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      'scenario s.yaml is not valid:\n  - services[2].demand: wants 1000000000 instances in a minute; a service may want at most 10000 (the simulation plays every instance)',
    );
    await expect(buildScenario(scenario(10_000), TRACE_DIR)).resolves.toBeDefined();
  });
});

describe('the synthetic generator', () => {
  const start = Date.parse('2026-11-24T00:00:00Z');
  it('is seeded: the same seed gives the same series, another seed another', () => {
    const shape = {
      kind: 'bursty',
      base: 1,
      burstPeak: 4,
      burstsPerHour: 2,
      burstMinutes: 10,
    } as const;
    expect(synthesize(shape, start, 600, 1, 0.1)).toEqual(synthesize(shape, start, 600, 1, 0.1));
    expect(synthesize(shape, start, 600, 1, 0.1)).not.toEqual(
      synthesize(shape, start, 600, 2, 0.1),
    );
  });
  it('peaks at the local peak hour, steps at its minute, and idles mostly', () => {
    const day = synthesize(
      {
        kind: 'diurnal',
        base: 0,
        peak: 10,
        peakHour: 14,
        timezone: 'America/New_York',
        sharpness: 2,
      },
      start,
      1440,
      1,
    );
    const busiest = day.indexOf(Math.max(...day));
    expect(busiest).toBe(19 * 60); // 14:00 in New York is 19:00 UTC in November
    const step = synthesize({ kind: 'step', before: 1, after: 4, atMinute: 30 }, start, 60, 1);
    expect([step[29], step[30]]).toEqual([1, 4]);
    const idle = synthesize(
      { kind: 'idle', active: 3, sessionsPerDay: 3, sessionMinutes: 20 },
      start,
      1440,
      3,
    );
    expect(idle.filter((v) => v === 0).length / idle.length).toBeGreaterThan(0.8);
  });
  it("steps at its minute of the simulation, counted from the scenario's start after the warm-up", async () => {
    // The warm-up's 60 minutes come before minute 0: a step at minute 30 is at 00:30, not 23:30.
    const parsed = parseScenario({
      scenario: 1,
      start: '2026-11-24T00:00:00Z',
      hours: 1,
      quota: 4,
      warmupMinutes: 60,
      services: [
        {
          name: 'a',
          maxInstances: 4,
          demand: { shape: { kind: 'step', before: 1, after: 3, atMinute: 30 } },
        },
      ],
    });
    const input = await buildScenario(parsed, TRACE_DIR);
    const probe = new FleetModel(input.fleet, { traces: input.traces, historyMinutes: 1 });
    const want = demandTable(input, probe, 60).get('sim-project/us-central1/a');
    expect([want?.[0], want?.[29], want?.[30], want?.[59]]).toEqual([1, 1, 3, 3]);
  });
});
