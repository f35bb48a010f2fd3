import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  createMonitoringAdapter,
  GPU_UTILIZATION_METRIC,
  INSTANCE_COUNT_METRIC,
  REFUSED_REQUESTS_METRIC,
  REQUEST_COUNT_METRIC,
} from '../../src/adapters/monitoring.js';
import type { MonitoringAdapter, MonitoringAdapterOptions } from '../../src/adapters/monitoring.js';
import { startEmulator, RpcError } from '../../src/emulator/index.js';
import type { CallRecord, FaultHook, RunningEmulator } from '../../src/emulator/index.js';
import {
  InputError,
  NotFoundError,
  PermissionError,
  RateLimitedError,
  UnavailableError,
  UpstreamError,
} from '../../src/core/errors.js';
import type { MetricSeries } from '../../src/ports/index.js';
import { clientsFor, closeClients, PROJECT } from '../emulator/helpers.js';

const MINUTE = 60_000;
const LAG = 3 * MINUTE;
const US = 'us-central1';
const EU = 'europe-west4';
const BATCH = ['batch-1', 'batch-2', 'batch-3', 'batch-4', 'batch-5', 'batch-6'];

/**
 * Eleven running services in two regions (one name in both), one scaled to zero, one without a
 * GPU; quotas large enough that nothing is refused. Idle instances stop at once, except min
 * instances: `steady` holds one active and one idle instance every minute.
 */
const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 0,
  idleMinutes: 0,
  warmupMinutes: 30,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: US, quota: 100 },
        { region: EU, quota: 100 },
      ],
      services: [
        { name: 'steady', region: US, gpu: {}, minInstances: 2, maxInstances: 4, demand: 1 },
        { name: 'rolling', region: US, gpu: {}, maxInstances: 4, demand: 3 },
        { name: 'twin', region: US, gpu: {}, maxInstances: 4, demand: 1 },
        { name: 'twin', region: EU, gpu: {}, maxInstances: 4, demand: 2 },
        { name: 'asleep', region: US, gpu: {}, maxInstances: 4, demand: 0 },
        { name: 'web', region: US, maxInstances: 10, demand: 2 },
        ...BATCH.map((name) => ({ name, region: EU, gpu: {}, maxInstances: 2, demand: 1 })),
      ],
    },
  ],
};
const RUNNING = 11;

/** Retries short enough for tests, still more than one attempt. */
const quick = { maxAttempts: 3, minBackoffMs: 20, maxBackoffMs: 50, attemptTimeoutMs: 5_000 };

let emulator: RunningEmulator;
let fault: FaultHook | undefined;
const adapters: MonitoringAdapter[] = [];

beforeAll(async () => {
  emulator = await startEmulator({
    fleet,
    speed: 'manual',
    metricsLagMs: LAG,
    faults: (call) => fault?.(call),
  });
});

afterEach(() => {
  fault = undefined;
  emulator.resetCalls();
});

afterAll(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
  await emulator?.stop();
});

function adapter(options: Omit<MonitoringAdapterOptions, 'env'> = {}): MonitoringAdapter {
  const a = createMonitoringAdapter({ emulatorHost: emulator.host, retry: quick, ...options });
  adapters.push(a);
  return a;
}

/** The last `minutes` of virtual time, ending now. */
function lastMinutes(minutes: number) {
  const now = emulator.now().getTime();
  return { now, window: { startMs: now - minutes * MINUTE, endMs: now } };
}

function find(series: MetricSeries[], service: string, region = US): MetricSeries | undefined {
  return series.find((s) => s.service === service && s.region === region);
}

const values = (s: MetricSeries | undefined) => s?.points.map((p) => p.value);
const keys = (series: MetricSeries[]) => series.map((s) => `${s.service}@${s.region}`).sort();

function listCalls(): (CallRecord & { request: Record<string, unknown> })[] {
  return emulator
    .calls()
    .filter((c) => c.method === 'google.monitoring.v3.MetricService/ListTimeSeries')
    .map((c) => ({ ...c, request: c.request as Record<string, unknown> }));
}

/** Fails `count` ListTimeSeries calls with `code`, after letting the first `skip` through. */
function failNext(count: number, code: status, skip = 0): void {
  let seen = 0;
  fault = ({ method }) => {
    if (!method.endsWith('/ListTimeSeries')) return undefined;
    seen += 1;
    return seen > skip && seen <= skip + count
      ? new RpcError(code, `injected ${status[code]}`)
      : undefined;
  };
}

describe('createMonitoringAdapter: instance counts', () => {
  it('gives one series per service and location, active and idle summed per minute', async () => {
    const { now, window } = lastMinutes(10);
    const series = await adapter().instanceCounts(PROJECT, window);

    expect(keys(series)).toEqual(
      [
        ...BATCH.map((b) => `${b}@${EU}`),
        `rolling@${US}`,
        `steady@${US}`,
        `twin@${EU}`,
        `twin@${US}`,
        `web@${US}`,
      ].sort(),
    );
    // Minutes -9 .. -3: a read interval is (start, end], so the minute at its start is not in it,
    // and the newest point is as old as the metrics lag.
    const steady = find(series, 'steady');
    expect(steady?.points.map((p) => p.at)).toEqual(
      [9, 8, 7, 6, 5, 4, 3].map((m) => now - m * MINUTE),
    );
    expect(values(steady)).toEqual(Array(7).fill(2)); // 1 active + 1 idle
    expect(values(find(series, 'twin', US))).toEqual(Array(7).fill(1));
    expect(values(find(series, 'twin', EU))).toEqual(Array(7).fill(2));
    expect(values(find(series, 'web'))).toEqual(Array(7).fill(2));
  });

  it('asks exactly as documented: one aggregated query per project', async () => {
    const { window } = lastMinutes(10);
    await adapter().instanceCounts(PROJECT, window);
    const [call, ...more] = listCalls();
    expect(more).toEqual([]);
    expect(call?.request).toMatchObject({
      name: `projects/${PROJECT}`,
      filter: `metric.type = "${INSTANCE_COUNT_METRIC}" AND resource.type = "cloud_run_revision"`,
      aggregation: {
        alignment_period: { seconds: '60' },
        per_series_aligner: 'ALIGN_MAX',
        cross_series_reducer: 'REDUCE_SUM',
        group_by_fields: [
          'resource.label.project_id',
          'resource.label.service_name',
          'resource.label.location',
        ],
      },
      view: 'FULL',
    });
  });

  it('merges the revisions of a service into one series', async () => {
    // A deployment that finishes at once: from now on `rolling` runs as revision 2.
    emulator.deploy({ service: 'rolling', region: US, seconds: 0 });
    emulator.advance(6 * MINUTE);
    const { window } = lastMinutes(10);

    // The raw data does have two revisions in the window...
    const clients = clientsFor(emulator);
    try {
      const [raw] = await clients.metrics.listTimeSeries({
        name: `projects/${PROJECT}`,
        filter: `metric.type = "${INSTANCE_COUNT_METRIC}" AND resource.labels.service_name = "rolling" AND metric.labels.state = "active"`,
        interval: {
          startTime: { seconds: window.startMs / 1000 },
          endTime: { seconds: window.endMs / 1000 },
        },
        view: 'FULL',
      });
      const revisions = raw.map((s) => s.resource?.labels?.['revision_name']).sort();
      expect(revisions).toEqual([
        expect.stringMatching(/^rolling-00001-/),
        expect.stringMatching(/^rolling-00002-/),
      ]);
    } finally {
      await closeClients(clients);
    }

    // ...and the adapter sees one service holding three instances every minute.
    const series = await adapter().instanceCounts(PROJECT, window);
    expect(series.filter((s) => s.service === 'rolling')).toHaveLength(1);
    expect(values(find(series, 'rolling'))).toEqual(Array(7).fill(3));
  });

  it('gives a service scaled to zero no series at all', async () => {
    const { window } = lastMinutes(30);
    const series = await adapter().instanceCounts(PROJECT, window);
    expect(series).toHaveLength(RUNNING);
    expect(series.some((s) => s.service === 'asleep')).toBe(false);
  });

  it('shows a change of demand only once the metrics lag has passed', async () => {
    const a = adapter();
    emulator.setDemand({ service: 'twin', region: US, demand: 3 });
    emulator.advance(2 * MINUTE);
    const early = lastMinutes(10);
    const before = find(await a.instanceCounts(PROJECT, early.window), 'twin');
    expect(before?.points.at(-1)?.at).toBe(early.now - LAG);
    expect(values(before)?.every((v) => v === 1)).toBe(true);

    emulator.advance(2 * MINUTE);
    const late = lastMinutes(10);
    const after = find(await a.instanceCounts(PROJECT, late.window), 'twin');
    expect(after?.points.at(-1)).toEqual({ at: late.now - LAG, value: 3 });
    expect(values(after)?.slice(0, 3)).toEqual([1, 1, 1]);
  });

  it('reads every page, and still sends one query whatever the number of services', async () => {
    const { window } = lastMinutes(10);
    const whole = await adapter().instanceCounts(PROJECT, window);
    expect(listCalls()).toHaveLength(1);
    emulator.resetCalls();

    // Pages of 3 points: each series of 8 points spans pages, and is read as one series.
    const paged = await adapter({ pageSize: 3 }).instanceCounts(PROJECT, window);
    expect(paged).toEqual(whole);
    const points = whole.reduce((n, s) => n + s.points.length, 0);
    const calls = listCalls();
    expect(calls).toHaveLength(Math.ceil(points / 3));
    expect(calls.length).toBeGreaterThan(RUNNING);
    // One query: the same request throughout, only the page token moving on.
    const [first, ...rest] = calls.map(({ request }) => {
      const { page_token: token, ...query } = request;
      return { token, query };
    });
    expect(first?.token).toBe('');
    for (const page of rest) {
      expect(page.query).toEqual(first?.query);
      expect(page.token).not.toBe('');
    }
    expect(new Set(rest.map((p) => p.token)).size).toBe(rest.length);
  });

  it('merges a series that continues on the next page, oldest point first', async () => {
    const { now, window } = lastMinutes(10);
    // One point per page: every page repeats a series already seen.
    const series = await adapter({ pageSize: 1 }).instanceCounts(PROJECT, window);
    expect(keys(series)).toHaveLength(RUNNING);
    const steady = find(series, 'steady');
    expect(steady?.points.map((p) => p.at)).toEqual(
      [9, 8, 7, 6, 5, 4, 3].map((m) => now - m * MINUTE),
    );
    expect(values(steady)).toEqual(Array(7).fill(2));
  });

  it('reads the whole answer when pages come back short or empty, each with a token', async () => {
    const { window } = lastMinutes(10);
    const whole = await adapter().instanceCounts(PROJECT, window);
    // Google may answer fewer points than the page size, none at all, before the end
    // (https://google.aip.dev/158): only an empty next_page_token ends the answer.
    emulator.setFaults({ seed: 5, paging: { shortRate: 0.6 } });
    try {
      const paged = await adapter({ pageSize: 4 }).instanceCounts(PROJECT, window);
      expect(paged).toEqual(whole);
      expect(emulator.faults().injected['short-page']).toBeGreaterThan(5);
    } finally {
      emulator.setFaults({});
    }
  });
});

describe('createMonitoringAdapter: GPU utilization', () => {
  it('gives the mean utilization per minute of GPU services only', async () => {
    const { window } = lastMinutes(10);
    const series = await adapter().gpuUtilization(PROJECT, window);
    expect(keys(series)).not.toContain(`web@${US}`);
    expect(keys(series)).not.toContain(`asleep@${US}`);
    expect(series).toHaveLength(RUNNING - 1);
    // Demand 1 on 2 GPUs: one instance busy (1.0), one idle (0.0); the mean, not the median.
    expect(values(find(series, 'steady'))).toEqual(Array(7).fill(0.5));
    expect(values(find(series, 'rolling'))).toEqual(Array(7).fill(1));
    // Paged by a few points, the same answer.
    expect(await adapter({ pageSize: 3 }).gpuUtilization(PROJECT, window)).toEqual(series);
    emulator.resetCalls();
    await adapter().gpuUtilization(PROJECT, window);
    for (const s of series) {
      for (const p of s.points) expect(p.value).toBeGreaterThanOrEqual(0);
      for (const p of s.points) expect(p.value).toBeLessThanOrEqual(1);
    }
    const [call, ...more] = listCalls();
    expect(more).toEqual([]);
    expect(call?.request).toMatchObject({
      filter: `metric.type = "${GPU_UTILIZATION_METRIC}" AND resource.type = "cloud_run_revision"`,
      aggregation: { per_series_aligner: 'ALIGN_SUM', cross_series_reducer: 'REDUCE_SUM' },
    });
  });

  it('reads distributions in pages of their own size, numbers in whole pages', async () => {
    const { window } = lastMinutes(10);
    const small = adapter({ distributionPageSize: 3 });
    const series = await small.gpuUtilization(PROJECT, window);
    expect(series).toEqual(await adapter().gpuUtilization(PROJECT, window));
    const points = series.reduce((n, s) => n + s.points.length, 0);
    expect(points).toBeGreaterThan(3);
    emulator.resetCalls();
    await small.gpuUtilization(PROJECT, window);
    expect(listCalls()).toHaveLength(Math.ceil(points / 3));
    expect(listCalls().every((c) => c.request.page_size === 3)).toBe(true);
    emulator.resetCalls();
    await small.instanceCounts(PROJECT, window);
    expect(listCalls()).toHaveLength(1);
    expect(() =>
      createMonitoringAdapter({ emulatorHost: emulator.host, distributionPageSize: 0 }),
    ).toThrow(/distributionPageSize/);
  });

  it('is read with an aggregation Monitoring accepts for a DELTA distribution', async () => {
    // The query this adapter used to send: ALIGN_MEAN is documented for numeric values only, and
    // Monitoring (like the emulator) refuses it on the distribution.
    const { window } = lastMinutes(10);
    const clients = clientsFor(emulator);
    try {
      const request = {
        name: `projects/${PROJECT}`,
        filter: `metric.type = "${GPU_UTILIZATION_METRIC}" AND resource.type = "cloud_run_revision"`,
        interval: {
          startTime: { seconds: window.startMs / 1000 },
          endTime: { seconds: window.endMs / 1000 },
        },
        view: 'FULL' as const,
      };
      const refused = await clients.metrics
        .listTimeSeries({
          ...request,
          aggregation: {
            alignmentPeriod: { seconds: 60 },
            perSeriesAligner: 'ALIGN_MEAN',
            crossSeriesReducer: 'REDUCE_MEAN',
            groupByFields: ['resource.label.service_name', 'resource.label.location'],
          },
        })
        .then(
          () => undefined,
          (error: unknown) => error as { code?: number; message?: string },
        );
      expect(refused?.code).toBe(status.INVALID_ARGUMENT);
      expect(refused?.message).toContain(
        'The aligner cannot be applied to metrics with kind DELTA and value type DISTRIBUTION',
      );
    } finally {
      await closeClients(clients);
    }
    const series = await adapter().gpuUtilization(PROJECT, window);
    expect(values(find(series, 'steady'))?.length).toBeGreaterThan(0);
  });

  it('answers an empty list when the metric does not exist in the project', async () => {
    fault = ({ method }) =>
      method.endsWith('/ListTimeSeries')
        ? new RpcError(
            status.NOT_FOUND,
            `Cannot find metric(s) that match type = "${GPU_UTILIZATION_METRIC}"`,
          )
        : undefined;
    const { window } = lastMinutes(10);
    await expect(adapter().gpuUtilization(PROJECT, window)).resolves.toEqual([]);
  });

  it('still fails on any other error', async () => {
    const { window } = lastMinutes(10);
    await expect(adapter().gpuUtilization('not-in-fleet', window)).rejects.toBeInstanceOf(
      PermissionError,
    );
  });
});

describe('createMonitoringAdapter: a metric the project does not know', () => {
  // Monitoring answers INVALID_ARGUMENT "The provided filter doesn't refer to any known metric."
  // for a metric type with no descriptor (public reports:
  // https://github.com/prometheus-community/stackdriver_exporter/issues/28): so it answers for the
  // logs-based refusals metric in a project where terraform/ was not deployed.
  it('reads no GPU utilization, and names the fix for the refusals metric', async () => {
    const own = await startEmulator({
      fleet: {
        ...fleet,
        projects: fleet.projects.map((p) => ({
          ...p,
          unknownMetrics: [GPU_UTILIZATION_METRIC, REFUSED_REQUESTS_METRIC],
        })),
      },
      speed: 'manual',
      metricsLagMs: LAG,
    });
    const a = createMonitoringAdapter({ emulatorHost: own.host, retry: quick });
    try {
      const now = own.now().getTime();
      const window = { startMs: now - 10 * MINUTE, endMs: now };
      await expect(a.gpuUtilization(PROJECT, window)).resolves.toEqual([]);
      const error: unknown = await a.refusedRequests(PROJECT, window).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as Error).message).toContain(
        `project ${PROJECT} has no metric ${REFUSED_REQUESTS_METRIC}`,
      );
      expect((error as Error).message).toMatch(/terraform\/.*signals\.tf/);
      // Asked once: a refusal for the request itself is not retried.
      const refusals = own
        .calls()
        .filter((c) => JSON.stringify(c.request).includes(REFUSED_REQUESTS_METRIC));
      expect(refusals).toHaveLength(1);
      // The metrics the project knows read as ever.
      expect(keys(await a.instanceCounts(PROJECT, window))).toHaveLength(RUNNING);
    } finally {
      await a.close();
      await own.stop();
    }
  });

  // Monitoring's other answer for a metric type it has no descriptor of (public reports, and the
  // answer right after a logs-based metric is created): NOT_FOUND "Cannot find metric(s) that
  // match type = ...". The refusals metric gets the same fix named as for the other wording.
  it('names the fix for the refusals metric when Monitoring answers NOT_FOUND for it', async () => {
    fault = ({ method, request }) =>
      method.endsWith('/ListTimeSeries') &&
      JSON.stringify(request).includes(REFUSED_REQUESTS_METRIC)
        ? new RpcError(
            status.NOT_FOUND,
            `Cannot find metric(s) that match type = "${REFUSED_REQUESTS_METRIC}". If a metric was created recently, it could take up to 10 minutes to become available. Please try again soon.`,
          )
        : undefined;
    const { window } = lastMinutes(10);
    const error: unknown = await adapter()
      .refusedRequests(PROJECT, window)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain(
      `project ${PROJECT} has no metric ${REFUSED_REQUESTS_METRIC}`,
    );
    expect((error as Error).message).toMatch(/terraform\/.*signals\.tf/);
    expect((error as Error).message).toMatch(/10 minutes/);
    expect(listCalls()).toHaveLength(1);
  });
});

describe('createMonitoringAdapter: requests served and refused', () => {
  it('reads each in one aggregated query per project, per service and minute', async () => {
    // `capped` wants 4 instances of 40 requests a minute and may have 2: 160 arrive, 80 are
    // served, the rest pends a minute (pendingSeconds 60) and is then refused.
    const own = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        startupSeconds: 0,
        warmupMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: US, quota: 8 }],
            services: [
              {
                name: 'capped',
                region: US,
                gpu: {},
                maxInstances: 2,
                demand: 4,
                pendingSeconds: 60,
              },
              { name: 'easy', region: EU, gpu: {}, maxInstances: 4, demand: 1 },
            ],
          },
        ],
      },
      speed: 'manual',
      metricsLagMs: LAG,
    });
    const reader = createMonitoringAdapter({ emulatorHost: own.host, retry: quick });
    try {
      own.advance(12 * MINUTE);
      const now = own.now().getTime();
      const window = { startMs: now - 10 * MINUTE, endMs: now };
      const [served, refused] = await Promise.all([
        reader.servedRequests(PROJECT, window),
        reader.refusedRequests(PROJECT, window),
      ]);
      const minutes = [9, 8, 7, 6, 5, 4, 3].map((m) => now - m * MINUTE);
      expect(keys(served)).toEqual([`capped@${US}`, `easy@${EU}`]);
      expect(find(served, 'capped')?.points).toEqual(minutes.map((at) => ({ at, value: 80 })));
      expect(values(find(served, 'easy', EU))).toEqual(Array(7).fill(40));
      expect(keys(refused)).toEqual([`capped@${US}`]);
      expect(find(refused, 'capped')?.points).toEqual(minutes.map((at) => ({ at, value: 80 })));

      const calls = own
        .calls()
        .filter((c) => c.method === 'google.monitoring.v3.MetricService/ListTimeSeries')
        .map((c) => c.request as Record<string, unknown>);
      expect(calls).toHaveLength(2);
      const byMetric = new Map(calls.map((r) => [String(r['filter']), r]));
      expect(
        byMetric.get(
          `metric.type = "${REQUEST_COUNT_METRIC}" AND resource.type = "cloud_run_revision"`,
        ),
      ).toMatchObject({
        name: `projects/${PROJECT}`,
        aggregation: {
          alignment_period: { seconds: '60' },
          per_series_aligner: 'ALIGN_SUM',
          cross_series_reducer: 'REDUCE_SUM',
          group_by_fields: [
            'resource.label.project_id',
            'resource.label.service_name',
            'resource.label.location',
            'metric.label.response_code',
          ],
        },
      });
      expect(
        byMetric.get(
          `metric.type = "${REFUSED_REQUESTS_METRIC}" AND resource.type = "cloud_run_revision"`,
        ),
      ).toMatchObject({
        aggregation: {
          per_series_aligner: 'ALIGN_SUM',
          cross_series_reducer: 'REDUCE_SUM',
          group_by_fields: [
            'resource.label.project_id',
            'resource.label.service_name',
            'resource.label.location',
          ],
        },
      });
    } finally {
      await reader.close();
      await own.stop();
    }
  });
});

describe('createMonitoringAdapter: failures', () => {
  it('turns a refusal into a typed error naming the project and metric', async () => {
    const { window } = lastMinutes(10);
    const error: unknown = await adapter()
      .instanceCounts('not-in-fleet', window)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionError);
    expect((error as Error).message).toMatch(
      /instance_count of project not-in-fleet .*PERMISSION_DENIED/,
    );
    // The emulator's refusal names the permission, as Google's does: the adapter reads it.
    expect((error as PermissionError).permissions).toEqual(['monitoring.timeSeries.list']);
    expect(listCalls()).toHaveLength(1); // not worth a retry
  });

  it('does not retry a request the server calls invalid', async () => {
    failNext(5, status.INVALID_ARGUMENT);
    const { window } = lastMinutes(10);
    const error: unknown = await adapter()
      .instanceCounts(PROJECT, window)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as Error).message).toMatch(/INVALID_ARGUMENT/);
    expect(listCalls()).toHaveLength(1);
  });

  it('retries transient failures, page by page', async () => {
    const { window } = lastMinutes(10);
    const expected = await adapter().instanceCounts(PROJECT, window);
    emulator.resetCalls();
    // 77 points in pages of 32: three pages; the second fails twice before it is served.
    expect(expected.reduce((n, s) => n + s.points.length, 0)).toBe(77);
    failNext(2, status.UNAVAILABLE, 1);
    await expect(adapter({ pageSize: 32 }).instanceCounts(PROJECT, window)).resolves.toEqual(
      expected,
    );
    const calls = listCalls();
    expect(calls.map((c) => c.code)).toEqual(['OK', 'UNAVAILABLE', 'UNAVAILABLE', 'OK', 'OK']);
    // The retries resend the very same page request.
    expect(calls[1]?.request['page_token']).not.toBe('');
    expect(calls[3]?.request).toEqual(calls[1]?.request);
  });

  it('gives up after the attempts, keeping the last reason', async () => {
    const { window } = lastMinutes(10);
    failNext(10, status.RESOURCE_EXHAUSTED);
    await expect(adapter().instanceCounts(PROJECT, window)).rejects.toBeInstanceOf(
      RateLimitedError,
    );
    expect(listCalls()).toHaveLength(quick.maxAttempts);
    emulator.resetCalls();
    failNext(10, status.UNAVAILABLE);
    await expect(adapter().instanceCounts(PROJECT, window)).rejects.toBeInstanceOf(
      UnavailableError,
    );
    expect(listCalls()).toHaveLength(quick.maxAttempts);
  });

  it('waits the retry delay a RESOURCE_EXHAUSTED asks for before trying again', async () => {
    const { window } = lastMinutes(10);
    const expected = await adapter().instanceCounts(PROJECT, window);
    emulator.resetCalls();
    // A per-minute read quota, played short: every call is refused, with a RetryInfo of 400 ms,
    // until 400 ms after the first refusal. Retried at the policy's own 20 to 50 ms, the three
    // attempts all come within it.
    const delayMs = 400;
    let until: number | undefined;
    fault = ({ method }) => {
      if (!method.endsWith('/ListTimeSeries')) return undefined;
      until ??= Date.now() + delayMs;
      return Date.now() < until
        ? new RpcError(
            status.RESOURCE_EXHAUSTED,
            'Quota exceeded: read requests per minute',
            delayMs,
          )
        : undefined;
    };
    await expect(adapter().instanceCounts(PROJECT, window)).resolves.toEqual(expected);
    const calls = listCalls();
    expect(calls[0]?.code).toBe('RESOURCE_EXHAUSTED');
    expect(calls[1]?.code).toBe('OK');
    const gap = Date.parse(calls[1]?.wallTime ?? '') - Date.parse(calls[0]?.wallTime ?? '');
    expect(gap).toBeGreaterThanOrEqual(delayMs - 5);
  });

  it('gives up at once on a retry delay longer than it waits, saying so', async () => {
    fault = ({ method }) =>
      method.endsWith('/ListTimeSeries')
        ? new RpcError(status.RESOURCE_EXHAUSTED, 'Quota exceeded', 5 * 60_000)
        : undefined;
    const { window } = lastMinutes(10);
    const error: unknown = await adapter()
      .instanceCounts(PROJECT, window)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as Error).message).toMatch(/retry after 300 s/);
    expect(listCalls()).toHaveLength(1);
  });

  it('refuses a bad window or project before calling', async () => {
    const a = adapter();
    await expect(a.instanceCounts(PROJECT, { startMs: 2_000, endMs: 1_000 })).rejects.toThrow(
      InputError,
    );
    await expect(a.instanceCounts('a/b', { startMs: 0, endMs: 1_000 })).rejects.toThrow(InputError);
    // An empty window: Monitoring reads (start, end], the start earlier than the end.
    await expect(a.instanceCounts(PROJECT, { startMs: 1_000, endMs: 1_000 })).rejects.toThrow(
      /must start before it ends/,
    );
    expect(() => createMonitoringAdapter({ emulatorHost: emulator.host, pageSize: 0 })).toThrow(
      InputError,
    );
    expect(listCalls()).toEqual([]);
  });
});
