import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { clientsFor, closeClients, codeOf, PROJECT, type Clients } from './helpers.js';
import { testFleet } from '../support/fixtures.js';

const INSTANCE_COUNT =
  'metric.type = "run.googleapis.com/container/instance_count" AND resource.type = "cloud_run_revision"';
const UTILIZATION =
  'metric.type = "run.googleapis.com/container/gpu/utilizations" AND resource.type = "cloud_run_revision"';
const seconds = (ms: number) => ({ seconds: Math.floor(ms / 1000) });

interface Point {
  interval?: {
    startTime?: { seconds?: unknown } | null;
    endTime?: { seconds?: unknown } | null;
  } | null;
  value?: {
    int64Value?: unknown;
    doubleValue?: unknown;
    distributionValue?: { count?: unknown; mean?: unknown; bucketCounts?: unknown[] | null } | null;
  } | null;
}
interface Series {
  resource?: { labels?: Record<string, string> | null } | null;
  metric?: { labels?: Record<string, string> | null } | null;
  metricKind?: unknown;
  valueType?: unknown;
  points?: Point[] | null;
}

const endOf = (p: Point | undefined) => Number(p?.interval?.endTime?.seconds) * 1000;
const valueOf = (p: Point | undefined) => Number(p?.value?.int64Value ?? p?.value?.doubleValue);

describe('Cloud Monitoring ListTimeSeries through @google-cloud/monitoring', () => {
  let emulator: RunningEmulator;
  let clients: Clients;

  beforeAll(async () => {
    emulator = await startEmulator({ fleet: testFleet(), speed: 'manual', pageSize: 2 });
    clients = clientsFor(emulator);
  });
  afterAll(async () => {
    await closeClients(clients);
    await emulator.stop();
  });

  async function instanceCounts(groupBy: string[], extraFilter = '', windowMin = 10) {
    const now = emulator.now().getTime();
    const [series] = await clients.metrics.listTimeSeries({
      name: `projects/${PROJECT}`,
      filter: INSTANCE_COUNT + extraFilter,
      interval: { startTime: seconds(now - windowMin * 60_000), endTime: seconds(now) },
      aggregation: {
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_MAX',
        crossSeriesReducer: 'REDUCE_SUM',
        groupByFields: groupBy,
      },
      view: 'FULL',
    });
    return { now, series: series as Series[] };
  }

  const byService = (series: Series[]) =>
    new Map(
      series.map((s) => [
        `${s.resource?.labels?.['service_name']}${s.metric?.labels?.['state'] ? `/${s.metric.labels['state']}` : ''}`,
        s,
      ]),
    );

  it('sums instances per service and location, newest point first and about three minutes old', async () => {
    emulator.resetCalls();
    const { now, series } = await instanceCounts([
      'resource.label.service_name',
      'resource.label.location',
    ]);
    const services = byService(series);
    expect([...services.keys()].sort()).toEqual([
      'alpha',
      'beta',
      'delta',
      'eu-model',
      'render-x',
      'web',
    ]);
    const alpha = services.get('alpha');
    expect(alpha?.resource?.labels).toEqual({ service_name: 'alpha', location: 'us-central1' });
    expect(valueOf(alpha?.points?.[0])).toBe(2);
    expect(endOf(alpha?.points?.[0])).toBe(now - 3 * 60_000);
    const ends = (alpha?.points ?? []).map(endOf);
    expect(ends).toEqual([...ends].sort((a, b) => b - a));
    expect(ends).toHaveLength(7); // minutes -9 .. -3: the interval (start, end] leaves out -10
    expect(valueOf(services.get('render-x')?.points?.[0])).toBe(1); // its min instance, idle
    // 42 points fit one page: ListTimeSeries pages by points (100,000 by default), not by the
    // emulator's page size of other List calls.
    expect(emulator.calls().filter((c) => c.method.endsWith('/ListTimeSeries'))).toHaveLength(1);
  });

  it('splits active and idle instances by metric.label.state', async () => {
    const { series } = await instanceCounts(['resource.label.service_name', 'metric.label.state']);
    const services = byService(series);
    expect(valueOf(services.get('alpha/active')?.points?.[0])).toBe(2);
    expect(valueOf(services.get('alpha/idle')?.points?.[0])).toBe(0);
    expect(valueOf(services.get('render-x/active')?.points?.[0])).toBe(0);
    expect(valueOf(services.get('render-x/idle')?.points?.[0])).toBe(1);
  });

  it('gives a scaled-to-zero service no series at all', async () => {
    const { series } = await instanceCounts(
      ['resource.label.service_name'],
      ' AND resource.labels.service_name = "gamma"',
    );
    expect(series).toEqual([]);
  });

  it('matches no series when the filter asks one label for two values, terms being joined by a logical AND', async () => {
    const alpha = await instanceCounts(
      ['resource.label.service_name', 'metric.label.state'],
      ' AND resource.labels.service_name = "alpha"',
    );
    expect(alpha.series).not.toEqual([]);
    const both = await instanceCounts(
      ['resource.label.service_name'],
      ' AND resource.labels.service_name = "beta" AND resource.labels.service_name = "alpha"',
    );
    expect(both.series).toEqual([]);
    const states = await instanceCounts(
      ['resource.label.service_name', 'metric.label.state'],
      ' AND resource.labels.service_name = "alpha" AND metric.labels.state = "idle" AND metric.labels.state = "active"',
    );
    expect(states.series).toEqual([]);
  });

  it('filters on location and shows new demand only after the lag', async () => {
    emulator.setDemand({ service: 'delta', demand: 2 });
    emulator.setDemand({ service: 'beta', demand: 3 });
    emulator.advance(2 * 60_000);
    const filter = ' AND resource.labels.location = "us-central1" AND resource.labels.service_name';
    const delta = `${filter} = "delta"`;
    const early = await instanceCounts(['resource.label.service_name'], delta);
    expect(early.series).toHaveLength(1);
    expect(valueOf(early.series[0]?.points?.[0])).toBe(1);
    emulator.advance(2 * 60_000);
    const late = await instanceCounts(['resource.label.service_name'], delta);
    expect(valueOf(late.series[0]?.points?.[0])).toBe(2);
    // The zonal pool (quota 5) is full: the encoder worker pool, alpha 2, beta 1 and render-x 1.
    const beta = await instanceCounts(['resource.label.service_name'], `${filter} = "beta"`);
    expect(valueOf(beta.series[0]?.points?.[0])).toBe(1);
    const state = emulator.state().services.find((s) => s.name === 'beta');
    // The new demand holds from the minutes 12:01 to 12:04: two GPUs refused in each.
    expect(state?.refused.quotaGpuMinutes).toBe(2 * 4);
  });

  it('returns raw per-revision series without aggregation', async () => {
    const now = emulator.now().getTime();
    const [series] = await clients.metrics.listTimeSeries({
      name: `projects/${PROJECT}`,
      filter: `${INSTANCE_COUNT} AND resource.labels.service_name = "delta" AND metric.labels.state = "active"`,
      interval: { startTime: seconds(now - 5 * 60_000), endTime: seconds(now) },
      view: 'FULL',
    });
    expect(series).toHaveLength(1);
    const [s] = series as Series[];
    expect(s?.resource?.labels).toMatchObject({
      service_name: 'delta',
      revision_name: expect.stringMatching(/^delta-00001-/),
    });
    expect(s?.points).toHaveLength(2); // minutes -4 and -3: (start, end], 3 minutes' lag
  });

  async function utilization(aggregation: Record<string, unknown> | undefined, extra = '') {
    const now = emulator.now().getTime();
    const [series] = await clients.metrics.listTimeSeries({
      name: `projects/${PROJECT}`,
      filter: UTILIZATION + extra,
      interval: { startTime: seconds(now - 10 * 60_000), endTime: seconds(now) },
      ...(aggregation ? { aggregation } : {}),
      view: 'FULL',
    });
    return series as Series[];
  }

  it('serves GPU utilisation as a DELTA distribution, of GPU services only', async () => {
    const raw = await utilization(undefined, ' AND resource.labels.service_name = "beta"');
    expect(raw).toHaveLength(1);
    const [beta] = raw;
    expect(beta?.metricKind).toBe('DELTA');
    expect(beta?.valueType).toBe('DISTRIBUTION');
    const point = beta?.points?.[0];
    // A DELTA point covers its minute.
    expect(endOf(point) - Number(point?.interval?.startTime?.seconds) * 1000).toBe(60_000);
    const dist = point?.value?.distributionValue;
    expect(Number(dist?.count)).toBe(1); // one instance, one sample
    expect(Number(dist?.mean)).toBeCloseTo(1);
    expect(dist?.bucketCounts?.map(Number).reduce((a, b) => a + b, 0)).toBe(1);

    const merged = byService(
      await utilization({
        alignmentPeriod: { seconds: 300 },
        perSeriesAligner: 'ALIGN_SUM',
        crossSeriesReducer: 'REDUCE_SUM',
        groupByFields: ['resource.label.service_name'],
      }),
    );
    expect(merged.has('web')).toBe(false);
    expect(merged.get('alpha')?.valueType).toBe('DISTRIBUTION');
    // Two instances, one sample each per minute: the newest period holds the two minutes past
    // the metrics lag, the one before it five whole minutes.
    const counts = merged
      .get('alpha')
      ?.points?.map((p) => Number(p.value?.distributionValue?.count));
    expect(counts?.slice(0, 2)).toEqual([4, 10]);
    const alpha = merged.get('alpha')?.points?.[1]?.value?.distributionValue;
    expect(Number(alpha?.mean)).toBeCloseTo(1);
    const idle = merged.get('render-x')?.points?.[0]?.value?.distributionValue;
    expect(Number(idle?.mean)).toBe(0);
  });

  it("answers the unit of the series' values in the response, as ListTimeSeriesResponse.unit does", async () => {
    // metric_service.proto, ListTimeSeriesResponse.unit: "The unit in which all `time_series`
    // point values are reported", UCUM: Cloud Run's instance count is "1", its GPU utilization
    // "10^2.%" (https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run).
    const now = emulator.now().getTime();
    const unitOf = async (filter: string) => {
      const [, , response] = await clients.metrics.listTimeSeries(
        {
          name: `projects/${PROJECT}`,
          filter,
          interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
          view: 'FULL',
        },
        { autoPaginate: false },
      );
      expect(response?.timeSeries?.length).toBeGreaterThan(0);
      return response?.unit;
    };
    expect(await unitOf(INSTANCE_COUNT)).toBe('1');
    expect(await unitOf(UTILIZATION)).toBe('10^2.%');
  });

  it('computes percentiles and means of the distributions', async () => {
    const p50 = byService(
      await utilization({
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_PERCENTILE_50',
        crossSeriesReducer: 'REDUCE_MAX',
        groupByFields: ['resource.label.service_name'],
      }),
    );
    expect(p50.get('alpha')?.valueType).toBe('DOUBLE');
    expect(p50.get('alpha')?.metricKind).toBe('GAUGE');
    expect(valueOf(p50.get('alpha')?.points?.[0])).toBeCloseTo(1, 1);
    expect(valueOf(p50.get('render-x')?.points?.[0])).toBeLessThan(0.01);

    const mean = byService(
      await utilization({
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_DELTA',
        crossSeriesReducer: 'REDUCE_MEAN',
        groupByFields: ['resource.label.service_name'],
      }),
    );
    expect(mean.get('alpha')?.valueType).toBe('DOUBLE');
    expect(valueOf(mean.get('alpha')?.points?.[0])).toBeCloseTo(1);
  });

  it('rejects an aligner or reducer Google documents as invalid for the metric, as Monitoring words it', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      // ALIGN_MEAN: "valid for GAUGE and DELTA metrics with numeric values".
      [{ perSeriesAligner: 'ALIGN_MEAN' }, UTILIZATION, 'ALIGN_MEAN'],
      [{ perSeriesAligner: 'ALIGN_MAX' }, UTILIZATION, 'ALIGN_MAX'],
      [{ perSeriesAligner: 'ALIGN_RATE' }, UTILIZATION, 'ALIGN_RATE'],
      // A percentile aligner is for distributions only; ALIGN_DELTA for DELTA and CUMULATIVE.
      [{ perSeriesAligner: 'ALIGN_PERCENTILE_99' }, INSTANCE_COUNT, 'ALIGN_PERCENTILE_99'],
      [{ perSeriesAligner: 'ALIGN_DELTA' }, INSTANCE_COUNT, 'ALIGN_DELTA'],
      // REDUCE_MAX is for numeric values: not for the distributions ALIGN_SUM keeps.
      [
        { perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_MAX' },
        UTILIZATION,
        'REDUCE_MAX',
      ],
    ];
    const now = emulator.now().getTime();
    for (const [aggregation, filter, culprit] of cases) {
      const { code, message } = await codeOf(
        clients.metrics.listTimeSeries({
          name: `projects/${PROJECT}`,
          filter,
          interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
          aggregation: { alignmentPeriod: { seconds: 60 }, ...aggregation },
          view: 'FULL',
        }),
      );
      expect(code, culprit).toBe(status.INVALID_ARGUMENT);
      expect(message).toMatch(
        new RegExp(
          `had an invalid value of "${culprit}": The (aligner|reducer) cannot be applied to metrics with kind (GAUGE|DELTA) and value type (INT64|DISTRIBUTION)\\.`,
        ),
      );
    }
  });

  // Each aligner's and reducer's "valid for" clause, Aggregation.Aligner
  // (https://cloud.google.com/python/docs/reference/monitoring/latest/google.cloud.monitoring_v3.types.Aggregation.Aligner)
  // and Aggregation.Reducer
  // (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Monitoring.V3/latest/Google.Cloud.Monitoring.V3.Aggregation.Types.Reducer),
  // on a GAUGE INT64 (instance count), a DELTA INT64 (request count) and a DELTA DISTRIBUTION
  // (GPU utilization). A valid pair the emulator does not compute is UNIMPLEMENTED, never refused.
  it('takes each aligner and reducer on the kinds and value types Google documents it for, and refuses it on the others', async () => {
    const REQUESTS =
      'metric.type = "run.googleapis.com/request_count" AND resource.type = "cloud_run_revision"';
    const now = emulator.now().getTime();
    const outcome = async (filter: string, aggregation: Record<string, unknown>) => {
      try {
        await clients.metrics.listTimeSeries({
          name: `projects/${PROJECT}`,
          filter,
          interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
          aggregation: { alignmentPeriod: { seconds: 60 }, ...aggregation },
          view: 'FULL',
        });
        return 'OK';
      } catch (error) {
        return status[Number((error as { code?: unknown }).code)];
      }
    };
    const cases: [string, Record<string, unknown>, string][] = [
      // ALIGN_MIN: "valid for GAUGE and DELTA metrics with numeric values".
      [REQUESTS, { perSeriesAligner: 'ALIGN_MIN' }, 'OK'],
      // ALIGN_COUNT: "numeric or Boolean values"; ALIGN_STDDEV and ALIGN_PERCENT_CHANGE: "numeric
      // values". Not distributions.
      [UTILIZATION, { perSeriesAligner: 'ALIGN_COUNT' }, 'INVALID_ARGUMENT'],
      [UTILIZATION, { perSeriesAligner: 'ALIGN_STDDEV' }, 'INVALID_ARGUMENT'],
      [INSTANCE_COUNT, { perSeriesAligner: 'ALIGN_STDDEV' }, 'UNIMPLEMENTED'],
      [UTILIZATION, { perSeriesAligner: 'ALIGN_PERCENT_CHANGE' }, 'INVALID_ARGUMENT'],
      [REQUESTS, { perSeriesAligner: 'ALIGN_PERCENT_CHANGE' }, 'UNIMPLEMENTED'],
      // Every percentile aligner: "GAUGE and DELTA metrics with distribution values".
      [INSTANCE_COUNT, { perSeriesAligner: 'ALIGN_PERCENTILE_50' }, 'INVALID_ARGUMENT'],
      [REQUESTS, { perSeriesAligner: 'ALIGN_PERCENTILE_05' }, 'INVALID_ARGUMENT'],
      // REDUCE_MIN: "numeric values"; REDUCE_COUNT: "numeric, Boolean, distribution, and string";
      // REDUCE_STDDEV and the percentile reducers: numeric or distribution values.
      [
        UTILIZATION,
        { perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_MIN' },
        'INVALID_ARGUMENT',
      ],
      [UTILIZATION, { perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_COUNT' }, 'OK'],
      [
        UTILIZATION,
        { perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_STDDEV' },
        'UNIMPLEMENTED',
      ],
      [
        UTILIZATION,
        { perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_PERCENTILE_50' },
        'OK',
      ],
      [
        INSTANCE_COUNT,
        { perSeriesAligner: 'ALIGN_MAX', crossSeriesReducer: 'REDUCE_PERCENTILE_05' },
        'OK',
      ],
    ];
    for (const [filter, aggregation, expected] of cases) {
      expect(await outcome(filter, aggregation), `${filter} ${JSON.stringify(aggregation)}`).toBe(
        expected,
      );
    }
  });

  it('answers a percentile aligner as a GAUGE DOUBLE, and REDUCE_COUNT as an INT64 count of series', async () => {
    // The percentile aligners: "The output is a GAUGE metric with value_type DOUBLE"; REDUCE_COUNT:
    // "The value_type of the output is INT64" (the Aligner and Reducer pages above).
    for (const aligner of ['ALIGN_PERCENTILE_99', 'ALIGN_PERCENTILE_95', 'ALIGN_PERCENTILE_05']) {
      const series = await utilization({
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: aligner,
      });
      expect(series.length, aligner).toBeGreaterThan(0);
      for (const s of series) {
        expect(s.metricKind, aligner).toBe('GAUGE');
        expect(s.valueType, aligner).toBe('DOUBLE');
      }
    }
    const perRevision = await utilization(undefined, ' AND resource.labels.service_name = "alpha"');
    const [count] = await utilization(
      {
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_SUM',
        crossSeriesReducer: 'REDUCE_COUNT',
      },
      ' AND resource.labels.service_name = "alpha"',
    );
    expect(count?.valueType).toBe('INT64');
    expect(count?.points?.[0]?.value?.int64Value).toBe(String(perRevision.length));
  });

  it('bounds a FULL page by points, continuing a series on the next page', async () => {
    const now = emulator.now().getTime();
    const request = {
      name: `projects/${PROJECT}`,
      filter: `${INSTANCE_COUNT} AND resource.labels.service_name = "alpha"`,
      interval: { startTime: seconds(now - 10 * 60_000), endTime: seconds(now) },
      aggregation: {
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_MAX' as const,
        crossSeriesReducer: 'REDUCE_SUM' as const,
        groupByFields: ['resource.label.service_name'],
      },
      view: 'FULL' as const,
      pageSize: 3,
    };
    const pages: Series[][] = [];
    let pageToken = '';
    do {
      const [series, , response] = await clients.metrics.listTimeSeries(
        { ...request, pageToken },
        { autoPaginate: false },
      );
      pages.push(series as Series[]);
      pageToken = response?.nextPageToken ?? '';
    } while (pageToken !== '' && pages.length < 10);
    // One series of 7 points, 3 per page: the same series on three pages.
    expect(pages.map((p) => p.map((s) => s.points?.length))).toEqual([[3], [3], [1]]);
    const ends = pages.flat().flatMap((s) => (s.points ?? []).map(endOf));
    expect(ends).toEqual([...new Set(ends)].sort((a, b) => b - a));
    for (const page of pages) expect(page[0]?.resource?.labels).toEqual({ service_name: 'alpha' });

    // HEADERS: the page size counts series.
    const [headers] = await clients.metrics.listTimeSeries(
      { ...request, filter: INSTANCE_COUNT, view: 'HEADERS', pageSize: 2 },
      { autoPaginate: false },
    );
    expect(headers).toHaveLength(2);
    expect(headers.every((h) => (h.points ?? []).length === 0)).toBe(true);
  });

  it("computes a listing's series once, not again for each page", async () => {
    const now = emulator.now().getTime();
    const request = {
      name: `projects/${PROJECT}`,
      filter: INSTANCE_COUNT,
      interval: { startTime: seconds(now - 10 * 60_000), endTime: seconds(now) },
      aggregation: {
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_MAX' as const,
        crossSeriesReducer: 'REDUCE_SUM' as const,
        groupByFields: ['resource.label.service_name'],
      },
      view: 'FULL' as const,
    };
    const points = (series: Series[]) =>
      series.flatMap((s) =>
        (s.points ?? []).map((p) => `${s.resource?.labels?.service_name}@${endOf(p)}`),
      );
    const [whole] = await clients.metrics.listTimeSeries(
      { ...request, pageSize: 100_000 },
      { autoPaginate: false },
    );
    const model = emulator.model;
    const history = model.history.bind(model);
    let read = 0;
    model.history = (key) => {
      read++;
      return history(key);
    };
    try {
      const pages: Series[][] = [];
      let pageToken = '';
      do {
        const [series, , response] = await clients.metrics.listTimeSeries(
          { ...request, pageSize: 3, pageToken },
          { autoPaginate: false },
        );
        pages.push(series as Series[]);
        pageToken = response?.nextPageToken ?? '';
      } while (pageToken !== '' && pages.length < 100);
      expect(pages.length).toBeGreaterThan(3);
      // The pages hold the points of one listing, each once, as one page of them all does.
      expect(points(pages.flat())).toEqual(points(whole as Series[]));
      // Each service's history was read for the first page only.
      expect(read).toBe(model.listServices(PROJECT).length);
    } finally {
      model.history = history;
    }
  });

  it('answers short and empty pages with a next token when told to, as Google may', async () => {
    const now = emulator.now().getTime();
    const request = {
      name: `projects/${PROJECT}`,
      filter: INSTANCE_COUNT,
      interval: { startTime: seconds(now - 10 * 60_000), endTime: seconds(now) },
      view: 'FULL' as const,
      pageSize: 3,
    };
    const read = async () => {
      const pages: { points: number; token: string; asked: string }[] = [];
      let pageToken = '';
      do {
        const [series, , response] = await clients.metrics.listTimeSeries(
          { ...request, pageToken },
          { autoPaginate: false },
        );
        const points = (series as Series[]).reduce((n, s) => n + (s.points ?? []).length, 0);
        pages.push({ points, token: response?.nextPageToken ?? '', asked: pageToken });
        pageToken = response?.nextPageToken ?? '';
      } while (pageToken !== '' && pages.length < 500);
      return pages;
    };
    const whole = await read();
    expect(whole.slice(0, -1).every((p) => p.points === 3)).toBe(true);
    const total = whole.reduce((n, p) => n + p.points, 0);

    // "The API may return fewer results than the number requested (including zero results),
    // even if not at the end of the collection" (https://google.aip.dev/158).
    emulator.setFaults({ seed: 2, paging: { shortRate: 0.7 } });
    try {
      const short = await read();
      expect(short.reduce((n, p) => n + p.points, 0)).toBe(total);
      const cut = short.filter((p) => p.token !== '' && p.points < 3);
      expect(cut.some((p) => p.points === 0)).toBe(true);
      expect(cut.some((p) => p.points > 0)).toBe(true);
      // Never the token it was asked with: a client would take that for a loop.
      for (const p of short) expect(p.token).not.toBe(p.asked);
    } finally {
      emulator.setFaults({});
    }
  });

  it('answers a long run of spaces in a filter at once, and a page_size of 2^31 - 1 with a page', async () => {
    const now = emulator.now().getTime();
    const base = {
      name: `projects/${PROJECT}`,
      interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
      view: 'FULL' as const,
    };
    // Splitting on /\s+AND\s+/ retried the run of spaces from each of its characters: 100,000
    // spaces took 9 s, a filter of 1 MB a quarter of an hour, every RPC of the emulator waiting.
    // Both answers are the same; only the time tells them apart, and the split blocks this
    // process, so no timeout can cut it short. Hence a run of 512 Ki spaces (minutes of the
    // quadratic split, milliseconds of a linear one) against a generous 30 s: a hang guard that
    // the machine's load cannot trip.
    for (const tail of [' '.repeat(512 << 10) + 'x', ` AND${' '.repeat(512 << 10)}x`]) {
      const began = Date.now();
      const { code } = await codeOf(
        clients.metrics.listTimeSeries({ ...base, filter: INSTANCE_COUNT + tail }),
      );
      expect(code).toBe(status.INVALID_ARGUMENT);
      expect(Date.now() - began).toBeLessThan(30_000);
    }
    const [series] = await clients.metrics.listTimeSeries(
      { ...base, filter: INSTANCE_COUNT, pageSize: 2 ** 31 - 1 },
      { autoPaginate: false },
    );
    expect(series.length).toBeGreaterThan(0);
  });

  it('rejects what it does not support instead of answering empty', async () => {
    const now = emulator.now().getTime();
    const base = {
      name: `projects/${PROJECT}`,
      interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
      view: 'FULL' as const,
    };
    // Valid on Cloud Monitoring but not emulated: UNIMPLEMENTED, never an empty answer.
    const notEmulated = [
      { ...base, filter: `${INSTANCE_COUNT} OR resource.labels.location = "x"` },
      { ...base, filter: `NOT ${INSTANCE_COUNT}` },
      { ...base, filter: `${INSTANCE_COUNT} AND resource.labels.service_name != "x"` },
      { ...base, filter: `${INSTANCE_COUNT} AND project = "${PROJECT}"` },
      // secondary_aggregation is valid after an aggregation (ListTimeSeriesRequest,
      // metric_service.proto) and not computed: never answered as if it had been applied.
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: { alignmentPeriod: { seconds: 60 }, perSeriesAligner: 'ALIGN_MAX' as const },
        secondaryAggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX' as const,
        },
      },
      // TimeSeries.metadata (metric.proto): "When reading a time series, this field will include
      // metadata labels that are explicitly named in the reduction": a group_by_fields entry may
      // name a metadata label.
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX' as const,
          crossSeriesReducer: 'REDUCE_SUM' as const,
          groupByFields: ['metadata.user_labels.team'],
        },
      },
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX' as const,
          crossSeriesReducer: 'REDUCE_SUM' as const,
          groupByFields: ['resource.label.service_name', 'metadata.system_labels.name'],
        },
      },
      // metric_service.proto: name may be an organization or a folder too.
      { ...base, filter: INSTANCE_COUNT, name: 'organizations/123' },
      { ...base, filter: INSTANCE_COUNT, name: 'folders/456' },
    ];
    for (const request of notEmulated) {
      const { code } = await codeOf(clients.metrics.listTimeSeries(request));
      expect(code, JSON.stringify(request)).toBe(status.UNIMPLEMENTED);
    }
    // What ListTimeSeriesRequest (metric_service.proto) rules out is refused, not "not emulated":
    // order_by is "Unsupported: must be left blank", and secondary_aggregation "May only be
    // specified if `aggregation` is specified".
    const refused = [
      { ...base, filter: INSTANCE_COUNT, orderBy: 'metric.labels.state' },
      {
        ...base,
        filter: INSTANCE_COUNT,
        secondaryAggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX' as const,
        },
      },
    ];
    for (const request of refused) {
      const { code } = await codeOf(clients.metrics.listTimeSeries(request));
      expect(code, JSON.stringify(request)).toBe(status.INVALID_ARGUMENT);
    }
    const cases = [
      { ...base, filter: 'metric.type = "run.googleapis.com/request_latencies"' },
      {
        ...base,
        filter:
          'metric.type = "run.googleapis.com/request_count" AND resource.type = "gce_instance"',
      },
      { ...base, filter: 'resource.type = "cloud_run_revision"' },
      { ...base, filter: `${INSTANCE_COUNT} AND metric.typo = "x"` },
      // The filter "must specify a single metric type" (ListTimeSeriesRequest.filter,
      // https://cloud.google.com/python/docs/reference/monitoring/latest/google.cloud.monitoring_v3.types.ListTimeSeriesRequest):
      // a second one is refused, never read as the last one named.
      { ...base, filter: `${INSTANCE_COUNT} AND metric.type = "run.googleapis.com/request_count"` },
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: { alignmentPeriod: { seconds: 60 }, perSeriesAligner: 'ALIGN_RATE' as const },
      },
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: { alignmentPeriod: { seconds: 30 }, perSeriesAligner: 'ALIGN_MAX' as const },
      },
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: { crossSeriesReducer: 'REDUCE_SUM' as const },
      },
      {
        ...base,
        filter: INSTANCE_COUNT,
        aggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX' as const,
          crossSeriesReducer: 'REDUCE_SUM' as const,
          groupByFields: ['resource.label.zone'],
        },
      },
    ];
    for (const request of cases) {
      const { code } = await codeOf(clients.metrics.listTimeSeries(request));
      expect(code, JSON.stringify(request)).toBe(status.INVALID_ARGUMENT);
    }
  });

  it('accepts what Google accepts: group_by_fields without a reducer, a period in seconds', async () => {
    // Aggregation in google/monitoring/v3/common.proto: group_by_fields "If cross_series_reducer
    // is not defined, this field is ignored"; alignment_period "must be at least 60 seconds".
    const now = emulator.now().getTime();
    const base = {
      name: `projects/${PROJECT}`,
      filter: `${INSTANCE_COUNT} AND resource.labels.service_name = "alpha"`,
      interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
      view: 'FULL' as const,
    };
    const [ignored] = await clients.metrics.listTimeSeries({
      ...base,
      aggregation: {
        alignmentPeriod: { seconds: 60 },
        perSeriesAligner: 'ALIGN_MAX',
        groupByFields: ['resource.label.service_name', 'resource.label.zone'],
      },
    });
    // Not grouped: one aligned series per revision and state, as without the fields.
    expect((ignored as Series[]).map((s) => s.metric?.labels?.['state']).sort()).toEqual([
      'active',
      'idle',
    ]);
    const [raw] = await clients.metrics.listTimeSeries({
      ...base,
      aggregation: { groupByFields: ['resource.label.service_name'] },
    });
    expect(raw.length).toBeGreaterThan(0);
    // A valid period the emulator does not compute is UNIMPLEMENTED, not a refusal.
    const odd = await codeOf(
      clients.metrics.listTimeSeries({
        ...base,
        aggregation: { alignmentPeriod: { seconds: 90 }, perSeriesAligner: 'ALIGN_MAX' },
      }),
    );
    expect(odd.code).toBe(status.UNIMPLEMENTED);
    // No period with an aligner: refused, as Google refuses it.
    const none = await codeOf(
      clients.metrics.listTimeSeries({ ...base, aggregation: { perSeriesAligner: 'ALIGN_MAX' } }),
    );
    expect(none.code).toBe(status.INVALID_ARGUMENT);
  });

  it("takes a filter and group_by_fields as Google's own dashboards write them", async () => {
    // Google's sample dashboards (GoogleCloudPlatform/monitoring-dashboard-samples,
    // dashboards/google-cloud-run/cloudrun-monitoring.json) write a filter's terms side by side
    // without AND (`metric.type="…" resource.type="cloud_run_revision"`) and quote label keys
    // (`resource.label."service_name"`): the same request as the spelled-out form.
    const now = emulator.now().getTime();
    const read = async (filter: string, groupByFields: string[]) => {
      const [series] = await clients.metrics.listTimeSeries({
        name: `projects/${PROJECT}`,
        filter,
        interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
        aggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX',
          crossSeriesReducer: 'REDUCE_SUM',
          groupByFields,
        },
        view: 'FULL',
      });
      return (series as Series[]).map((s) => [s.resource?.labels, s.points?.map(valueOf)]);
    };
    const spelled = await read(`${INSTANCE_COUNT} AND resource.labels.service_name = "alpha"`, [
      'resource.label.service_name',
      'resource.label.location',
    ]);
    expect(spelled.length).toBeGreaterThan(0);
    const dashboard = await read(
      'metric.type="run.googleapis.com/container/instance_count" resource.type="cloud_run_revision" resource.label."service_name"="alpha"',
      ['resource.label."service_name"', 'resource.label."location"'],
    );
    expect(dashboard).toEqual(spelled);
    // Still one term after another: a term that is not one, a dangling AND, or a quoted part of
    // a key other than a label's name is refused.
    for (const filter of [
      'metric."type"="run.googleapis.com/container/instance_count"',
      `${INSTANCE_COUNT} resource.labels.service_name`,
      `${INSTANCE_COUNT} AND`,
    ]) {
      const { code } = await codeOf(
        clients.metrics.listTimeSeries({
          name: `projects/${PROJECT}`,
          filter,
          interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
        }),
      );
      expect(code, filter).toBe(status.INVALID_ARGUMENT);
    }
    // A term after AND that is not one is named as such: the filter does not end with AND.
    const afterAnd = await codeOf(
      clients.metrics.listTimeSeries({
        name: `projects/${PROJECT}`,
        filter: `${INSTANCE_COUNT} AND Resource.type = "cloud_run_revision"`,
        interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
      }),
    );
    expect(afterAnd.code).toBe(status.INVALID_ARGUMENT);
    expect(afterAnd.message).toContain('filter term "Resource.type');
    expect(afterAnd.message).not.toContain('ends with AND');
  });

  it('takes resource.type in group_by_fields and refuses an alignment period over 104 weeks', async () => {
    const now = emulator.now().getTime();
    const base = {
      name: `projects/${PROJECT}`,
      filter: INSTANCE_COUNT,
      interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
      view: 'FULL' as const,
    };
    const sum = {
      perSeriesAligner: 'ALIGN_MAX' as const,
      crossSeriesReducer: 'REDUCE_SUM' as const,
    };
    // Aggregation.group_by_fields (google/monitoring/v3/common.proto): "It is not possible to
    // reduce across different resource types, so this field implicitly contains resource.type".
    // Naming it is valid and changes nothing.
    const [plain] = await clients.metrics.listTimeSeries({
      ...base,
      aggregation: {
        alignmentPeriod: { seconds: 60 },
        ...sum,
        groupByFields: ['resource.label.service_name'],
      },
    });
    const [typed] = await clients.metrics.listTimeSeries({
      ...base,
      aggregation: {
        alignmentPeriod: { seconds: 60 },
        ...sum,
        groupByFields: ['resource.type', 'resource.label.service_name'],
      },
    });
    expect(plain.length).toBeGreaterThan(0);
    expect(typed).toEqual(plain);
    // Aggregation.alignment_period: "The maximum value of the alignment_period is 104 weeks (2
    // years)". 104 weeks is served; a minute more (still whole minutes) is INVALID_ARGUMENT.
    const week = 7 * 86_400;
    const [longest] = await clients.metrics.listTimeSeries({
      ...base,
      aggregation: { alignmentPeriod: { seconds: 104 * week }, ...sum },
    });
    expect(longest).toHaveLength(1);
    const tooLong = await codeOf(
      clients.metrics.listTimeSeries({
        ...base,
        aggregation: { alignmentPeriod: { seconds: 104 * week + 60 }, ...sum },
      }),
    );
    expect(tooLong.code).toBe(status.INVALID_ARGUMENT);
    expect(tooLong.message).toContain('104 weeks');
  });

  it('refuses an alignment period that is no valid Duration, rather than take it for a period it does not compute', async () => {
    // google.protobuf.Duration: nanos "Must be from -999,999,999 to +999,999,999 inclusive", and
    // "For durations of one second or more, a non-zero value for the nanos field must be of the
    // same sign as the seconds field".
    const now = emulator.now().getTime();
    for (const alignmentPeriod of [
      { seconds: 60, nanos: 1_000_000_000 },
      { seconds: 120, nanos: -5 },
    ]) {
      const refused = await codeOf(
        clients.metrics.listTimeSeries({
          name: `projects/${PROJECT}`,
          filter: INSTANCE_COUNT,
          interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
          aggregation: { alignmentPeriod, perSeriesAligner: 'ALIGN_MAX' },
        }),
      );
      expect(refused.code, JSON.stringify(alignmentPeriod)).toBe(status.INVALID_ARGUMENT);
      expect(refused.message).toContain('aggregation.alignment_period');
    }
  });
});

describe('request counts through @google-cloud/monitoring', () => {
  const REQUESTS =
    'metric.type = "run.googleapis.com/request_count" AND resource.type = "cloud_run_revision"';
  const REFUSED =
    'metric.type = "logging.googleapis.com/user/gpu_governor_refused_requests" AND resource.type = "cloud_run_revision"';
  let emulator: RunningEmulator;
  let clients: Clients;

  beforeAll(async () => {
    // 40 requests an instance-minute (concurrency 4, 6 s each); `capped` wants 4 instances, has 2.
    const service = (name: string, maxInstances: number, demand: number) => ({
      name,
      region: 'us-central1',
      gpu: {},
      maxInstances,
      demand,
      pendingSeconds: 60,
    });
    emulator = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 0,
        startupSeconds: 0,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: 'us-central1', quota: 8 }],
            services: [service('capped', 2, 4), service('easy', 4, 1)],
          },
        ],
      },
      speed: 'manual',
    });
    clients = clientsFor(emulator);
    emulator.advance(10 * 60_000);
  });
  afterAll(async () => {
    await closeClients(clients);
    await emulator.stop();
  });

  async function list(filter: string, aggregation: Record<string, unknown>) {
    const now = emulator.now().getTime();
    const [series] = await clients.metrics.listTimeSeries({
      name: `projects/${PROJECT}`,
      filter,
      interval: { startTime: seconds(now - 10 * 60_000), endTime: seconds(now) },
      aggregation: { alignmentPeriod: { seconds: 60 }, ...aggregation },
      view: 'FULL',
    });
    return series as Series[];
  }
  const perService = (series: Series[]) =>
    new Map(series.map((s) => [s.resource?.labels?.['service_name'], s]));

  it('counts the requests that reached an instance as a DELTA INT64 with its response code, and no 429', async () => {
    const raw = await list(REQUESTS, {});
    const capped = raw.find((s) => s.resource?.labels?.['service_name'] === 'capped');
    expect(capped?.metricKind).toBe('DELTA');
    expect(capped?.valueType).toBe('INT64');
    expect(capped?.metric?.labels).toEqual({ response_code: '200', response_code_class: '2xx' });
    // Each point covers its minute.
    const p = capped?.points?.[0];
    expect(endOf(p) - Number(p?.interval?.startTime?.seconds) * 1000).toBe(60_000);

    const byCode = await list(REQUESTS, {
      perSeriesAligner: 'ALIGN_SUM',
      crossSeriesReducer: 'REDUCE_SUM',
      groupByFields: ['resource.label.service_name', 'metric.label.response_code_class'],
    });
    // The capped service is refused most minutes, yet request_count has no 4xx: Google's
    // description excludes requests refused at max instances.
    expect(byCode.map((s) => s.metric?.labels?.['response_code_class'])).toEqual(['2xx', '2xx']);
    const served = perService(byCode);
    expect(valueOf(served.get('capped')?.points?.[0])).toBe(80);
    expect(valueOf(served.get('easy')?.points?.[0])).toBe(40);
  });

  it("counts Cloud Run's 429s in the logs-based metric when demand is above the cap", async () => {
    const refused = perService(
      await list(REFUSED, {
        perSeriesAligner: 'ALIGN_SUM',
        crossSeriesReducer: 'REDUCE_SUM',
        groupByFields: ['resource.label.service_name', 'resource.label.location'],
      }),
    );
    // Only the capped service is refused: 160 arrive, 80 are served, 80 wait a minute too long.
    expect([...refused.keys()]).toEqual(['capped']);
    const points = refused.get('capped')?.points ?? [];
    expect(points.map(valueOf).every((v) => v === 80)).toBe(true);
    expect(points.length).toBeGreaterThan(3);
  });

  it('rejects what Monitoring rejects on these counters, and labels they do not have', async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [REQUESTS, { perSeriesAligner: 'ALIGN_PERCENTILE_99' }, /kind DELTA and value type INT64/],
      [REFUSED, { perSeriesAligner: 'ALIGN_NEXT_OLDER' }, /kind DELTA and value type INT64/],
      [`${REQUESTS} AND metric.labels.state = "active"`, {}, /has no metric label "state"/],
      [
        REFUSED,
        {
          perSeriesAligner: 'ALIGN_SUM',
          crossSeriesReducer: 'REDUCE_SUM',
          groupByFields: ['metric.label.response_code'],
        },
        /group_by_fields "metric.label.response_code" is not supported/,
      ],
    ];
    const now = emulator.now().getTime();
    for (const [filter, aggregation, message] of cases) {
      const answer = await codeOf(
        clients.metrics.listTimeSeries({
          name: `projects/${PROJECT}`,
          filter,
          interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
          aggregation: { alignmentPeriod: { seconds: 60 }, ...aggregation },
        }),
      );
      expect(answer.code, filter).toBe(status.INVALID_ARGUMENT);
      expect(answer.message).toMatch(message);
    }
  });

  // What Google documents for a DELTA INT64 counter such as the logs-based refusals metric: each
  // aligner's "valid for" clause in google/monitoring/v3/common.proto, and a logs-based counter
  // metric without label extractors has "no labels" (LogMetric.metric_descriptor,
  // https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics): its series carry
  // only the labels of the log entry's monitored resource, cloud_run_revision.
  it('answers the refusals metric with the aligners Google allows on a DELTA INT64, and rejects the others and any metric label', async () => {
    const now = emulator.now().getTime();
    const list = (filter: string, aggregation: Record<string, unknown>) =>
      clients.metrics.listTimeSeries({
        name: `projects/${PROJECT}`,
        filter,
        interval: { startTime: seconds(now - 600_000), endTime: seconds(now) },
        aggregation: { alignmentPeriod: { seconds: 60 }, ...aggregation },
      });
    // Valid: ALIGN_DELTA ("CUMULATIVE and DELTA metrics"), ALIGN_MAX and ALIGN_COUNT ("GAUGE and
    // DELTA metrics with numeric values"), and any label of the resource.
    for (const aggregation of [
      { perSeriesAligner: 'ALIGN_DELTA' },
      { perSeriesAligner: 'ALIGN_MAX' },
      { perSeriesAligner: 'ALIGN_COUNT' },
      {
        perSeriesAligner: 'ALIGN_SUM',
        crossSeriesReducer: 'REDUCE_SUM',
        groupByFields: ['resource.label.revision_name'],
      },
    ]) {
      const [series] = await list(REFUSED, aggregation);
      expect(series.length, JSON.stringify(aggregation)).toBeGreaterThan(0);
    }
    const cases: [string, Record<string, unknown>, RegExp][] = [
      // Distributions only; GAUGE only; BOOL only.
      [REFUSED, { perSeriesAligner: 'ALIGN_PERCENTILE_99' }, /ALIGN_PERCENTILE_99/],
      [REFUSED, { perSeriesAligner: 'ALIGN_INTERPOLATE' }, /ALIGN_INTERPOLATE/],
      [REFUSED, { perSeriesAligner: 'ALIGN_FRACTION_TRUE' }, /ALIGN_FRACTION_TRUE/],
      [
        REFUSED,
        { perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_COUNT_TRUE' },
        /REDUCE_COUNT_TRUE/,
      ],
      // No metric label at all: neither in the filter nor in group_by_fields.
      [`${REFUSED} AND metric.labels.response_code = "429"`, {}, /has no metric label/],
      [
        REFUSED,
        {
          perSeriesAligner: 'ALIGN_SUM',
          crossSeriesReducer: 'REDUCE_SUM',
          groupByFields: ['metric.label.service_name'],
        },
        /group_by_fields "metric.label.service_name" is not supported/,
      ],
      // A resource label cloud_run_revision does not have.
      [`${REFUSED} AND resource.labels.zone = "us-central1-a"`, {}, /resource label "zone"/],
    ];
    for (const [filter, aggregation, message] of cases) {
      const answer = await codeOf(list(filter, aggregation));
      expect(answer.code, `${filter} ${JSON.stringify(aggregation)}`).toBe(status.INVALID_ARGUMENT);
      expect(answer.message).toMatch(message);
    }
  });
});

// Monitoring keeps a deleted resource's series until its points pass their retention
// (https://cloud.google.com/monitoring/api/v3/latency-n-retention): a GPU service deleted by
// another writer is still in ListTimeSeries for the minutes it ran, which is what `governor
// replay` reads to tell that a deleted service held GPUs of the pool.
describe('ListTimeSeries after a service is deleted', () => {
  it("keeps its series until its minutes pass the history's retention, or a service of its name is made again", async () => {
    const emulator = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      historyMinutes: 30,
    });
    const clients = clientsFor(emulator);
    const services = async (windowMin: number) => {
      const now = emulator.now().getTime();
      const [series] = await clients.metrics.listTimeSeries({
        name: `projects/${PROJECT}`,
        filter: INSTANCE_COUNT,
        interval: { startTime: seconds(now - windowMin * 60_000), endTime: seconds(now) },
        aggregation: {
          alignmentPeriod: { seconds: 60 },
          perSeriesAligner: 'ALIGN_MAX',
          crossSeriesReducer: 'REDUCE_SUM',
          groupByFields: ['resource.label.service_name'],
        },
        view: 'FULL',
      });
      return new Map(
        (series as Series[]).map((s) => [
          s.resource?.labels?.['service_name'],
          (s.points ?? []).map(endOf),
        ]),
      );
    };
    try {
      emulator.advance(10 * 60_000);
      const before = await services(10);
      expect(before.get('beta')?.length).toBeGreaterThan(0);
      const deletedAt = emulator.now().getTime();
      emulator.deleteService({ service: 'beta' });
      emulator.advance(5 * 60_000);
      // Its minutes until the deletion, none after.
      const after = await services(15);
      const points = after.get('beta') ?? [];
      expect(points.length).toBeGreaterThan(0);
      expect(Math.max(...points)).toBeLessThanOrEqual(deletedAt);
      expect([...after.keys()]).toEqual(expect.arrayContaining([...before.keys()]));
      // Past the history's 30 minutes, its newest minute is gone and so is the series.
      emulator.advance(30 * 60_000);
      expect((await services(60)).has('beta')).toBe(false);
      expect((await services(60)).has('alpha')).toBe(true);

      // Deleted and made again: the new service's minutes only (one series of its labels).
      emulator.deleteService({ service: 'delta' });
      emulator.advance(2 * 60_000);
      expect((await services(10)).has('delta')).toBe(true);
      const madeAt = emulator.now().getTime();
      emulator.createService({
        project: PROJECT,
        service: {
          name: 'delta',
          region: 'us-central1',
          gpu: { zonalRedundancy: false },
          maxInstances: 1,
          demand: 1,
        },
      });
      emulator.advance(5 * 60_000);
      const again = (await services(15)).get('delta') ?? [];
      expect(again.length).toBeGreaterThan(0);
      expect(Math.min(...again)).toBeGreaterThan(madeAt);
    } finally {
      await closeClients(clients);
      await emulator.stop();
    }
  });
});
