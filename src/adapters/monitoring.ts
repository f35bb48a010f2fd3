/**
 * The usage source, and its one Google implementation: Cloud Monitoring v3 `ListTimeSeries`.
 *
 * One query per metric per project, never one per service: the filter names the metric and the
 * `cloud_run_revision` resource type, the aggregation aligns every raw series (one per revision
 * and, for instance counts, per `state`) to one value per minute, then reduces the series of each
 * (service, location) into one. The answer is read page by page so that every page's
 * `execution_errors` is checked: a partial answer must not pass for a complete one.
 *
 * Emulator mode: given `emulatorHost` (GOVERNOR_EMULATOR_HOST, see docs/emulator.md), the client
 * connects there; otherwise to Google with Application Default Credentials.
 */
import { MetricServiceClient } from '@google-cloud/monitoring';
import type { protos } from '@google-cloud/monitoring';

import { InputError, NotFoundError, UpstreamError, errorMessage } from '../core/errors.js';
import type { Fault } from '../core/errors.js';
import {
  GOVERNOR_METRIC_KIND,
  METRIC_PREFIX,
  type GovernorMetricPoint,
} from '../core/governor-metrics.js';
import type { MetricSeries, MonitoringPort, TimeWindow } from '../ports/index.js';
import { clientConfig, projectFaults } from './client-config.js';
import { translateGrpcError } from './grpc-errors.js';
import { endlessListing, MAX_EMPTY_PAGES } from './paging.js';
import {
  checkRetryPolicy,
  closingRetries,
  defaultRetryPolicy,
  definedOnly,
  gaxReadOptions,
  grpcCode,
  grpcCodeName,
} from './retry.js';
import type { ClosingRetries, RetryPolicy } from './retry.js';

type ListTimeSeriesRequest = protos.google.monitoring.v3.IListTimeSeriesRequest;
type ListTimeSeriesResponse = protos.google.monitoring.v3.IListTimeSeriesResponse;
type TimeSeries = protos.google.monitoring.v3.ITimeSeries;
type Aligner = keyof typeof protos.google.monitoring.v3.Aggregation.Aligner;
type Reducer = keyof typeof protos.google.monitoring.v3.Aggregation.Reducer;

export const INSTANCE_COUNT_METRIC = 'run.googleapis.com/container/instance_count';
export const GPU_UTILIZATION_METRIC = 'run.googleapis.com/container/gpu/utilizations';
export const REQUEST_COUNT_METRIC = 'run.googleapis.com/request_count';
/** The logs-based counter metric terraform/ defines on Cloud Run's request log (status 429). */
export const REFUSED_REQUESTS_METRIC = 'logging.googleapis.com/user/gpu_governor_refused_requests';
const RESOURCE_TYPE = 'cloud_run_revision';
/**
 * Grouped by project too: a project reads the series of every project of its metrics scope ("The
 * metrics scope of a Google Cloud project defines the set resource containers whose time-series
 * data the project can chart and monitor ... The time-series data stored by a resource container
 * includes a label that identifies the resource container",
 * https://cloud.google.com/monitoring/settings), and "Fields not specified in `group_by_fields`
 * are aggregated away" (Aggregation.group_by_fields, google/monitoring/v3/common.proto,
 * https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#aggregation): without
 * it, a service of a monitored project with the same name and region would be summed into this
 * project's. The label is compared in the answer (ownerOf), not filtered on: a project named by its
 * number would match no `project_id` (the label holds the id).
 */
const GROUP_BY = [
  'resource.label.project_id',
  'resource.label.service_name',
  'resource.label.location',
];

/**
 * How each metric is read.
 *
 * Instance counts: `ALIGN_MAX` per minute, then `REDUCE_SUM` across the revisions and the two
 * `state` values (active, idle) of each service. Cloud Run samples the gauge about once a minute,
 * so a one-minute bucket usually holds one point per series and max, mean and last agree; when
 * sampling jitter puts two points in one bucket, the max keeps the higher occupancy (the mean
 * would give fractional instances, the sum would count one instance twice). Summing per-minute
 * values is what "instances held at that minute" means; a max over the whole window taken before
 * the sum would add peaks of revisions that never ran at the same time.
 *
 * GPU utilization: `ALIGN_SUM` per minute, then `REDUCE_SUM` across revisions, then the `mean` of
 * the resulting distribution. On Google the metric is a DELTA DISTRIBUTION (one sample per
 * instance per sampling period; Cloud Monitoring's metrics list,
 * https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run), and `common.proto` documents
 * `ALIGN_SUM` as "valid for GAUGE and DELTA metrics with numeric and distribution values", keeping
 * the value type, and `REDUCE_SUM` as valid for "numeric and distribution values", keeping it too.
 * So each (service, location, minute) comes back as one distribution holding every instance's
 * sample of that minute, and its `Distribution.mean` ("the arithmetic mean of the values in the
 * population", google/api/distribution.proto,
 * https://cloud.google.com/monitoring/api/ref_v3/rpc/google.api#distribution) is the service's
 * mean GPU utilization, weighted by instance:
 * exactly the "in use x utilization = busy GPUs" figure demand estimation needs. (That a sum of
 * distributions is the union of their populations is how Monitoring merges histograms; the proto
 * does not spell it out.)
 * Not taken: `ALIGN_MEAN` (numeric values only: INVALID_ARGUMENT on a distribution, which is why
 * utilization was never read); `ALIGN_PERCENTILE_50` + `REDUCE_MEAN` (valid, but a median of each
 * revision, then an unweighted mean of medians: not the load); `ALIGN_DELTA` (valid, but periods
 * without data are filled "by interpolation", inventing load for minutes without instances).
 *
 * Requests: `request_count` and the refusals metric are DELTA INT64 counters; `ALIGN_SUM` per
 * minute (valid for DELTA numeric series, keeps INT64: the requests of the minute) then
 * `REDUCE_SUM` across revisions. Served requests are also grouped by `response_code` so that a
 * 429 in `request_count` is left out of them: Google describes the metric as excluding requests
 * refused at max instances, and should that not hold, a 429 counted there is still not "served".
 * (`ALIGN_RATE` would give requests per second; `ALIGN_DELTA` interpolates empty periods.)
 */
const QUERIES = {
  instanceCounts: {
    metric: INSTANCE_COUNT_METRIC,
    aligner: 'ALIGN_MAX',
    reducer: 'REDUCE_SUM',
    value: 'number',
  },
  gpuUtilization: {
    metric: GPU_UTILIZATION_METRIC,
    aligner: 'ALIGN_SUM',
    reducer: 'REDUCE_SUM',
    value: 'distributionMean',
  },
  servedRequests: {
    metric: REQUEST_COUNT_METRIC,
    aligner: 'ALIGN_SUM',
    reducer: 'REDUCE_SUM',
    value: 'number',
    groupBy: 'response_code',
    leaveOut: '429',
  },
  refusedRequests: {
    metric: REFUSED_REQUESTS_METRIC,
    aligner: 'ALIGN_SUM',
    reducer: 'REDUCE_SUM',
    value: 'number',
  },
} as const satisfies Record<
  string,
  {
    metric: string;
    aligner: Aligner;
    reducer: Reducer;
    value: 'number' | 'distributionMean';
    /** A metric label to group by as well; the series are summed per service afterwards. */
    groupBy?: string;
    /** A value of that label whose series are left out of the sum. */
    leaveOut?: string;
  }
>;

type Query = (typeof QUERIES)[keyof typeof QUERIES] & { groupBy?: string; leaveOut?: string };

/**
 * Points per page. With `view: FULL`, `page_size` bounds POINTS, not series (ListTimeSeriesRequest
 * in metric_service.proto,
 * https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#listtimeseriesrequest:
 * "If view is set to FULL, this is the maximum number of Points returned"), so one series may
 * continue on the next page; 100,000 is Monitoring's default and maximum.
 *
 * The client decodes a whole page at once, every point several objects (the point, its interval,
 * two timestamps, its value; each int64 a Long, then a string): about 500 bytes a point for a
 * number, about 5 KiB for a distribution of a hundred buckets, and the four queries of an
 * observation are read at the same time. Pages of Monitoring's 100,000 points held more at once
 * than the function's heap at 10,000 services (docs/performance.md), so pages are smaller: 25,000
 * points of numbers (1,000 services over a 30-minute lookback, 30,000 points, take two), 10,000 of
 * distributions (1,000 services over staleAfter, about 7,000 points, too). A bigger fleet reads a
 * few more pages, one after the other within each query.
 */
const DEFAULT_PAGE_SIZE = 25_000;
const MAX_PAGE_SIZE = 100_000;

/** Points per page of a distribution query (GPU utilization); see DEFAULT_PAGE_SIZE. */
const DEFAULT_DISTRIBUTION_PAGE_SIZE = 10_000;

export interface MonitoringAdapterOptions {
  /** `HOST:PORT` of the emulator (GOVERNOR_EMULATOR_HOST); null or absent: Google. */
  emulatorHost?: string | null;
  /** Points per ListTimeSeries page, 1 to 100,000 (default 25,000). */
  pageSize?: number;
  /** Points per page of a distribution query, 1 to 100,000 (default 10,000; never above pageSize). */
  distributionPageSize?: number;
  /** Retry and deadline settings (default {@link defaultRetryPolicy}). */
  retry?: Partial<RetryPolicy>;
}

/** A {@link MonitoringPort} holding a Monitoring client, to be closed once no longer needed. */
export interface MonitoringAdapter extends MonitoringPort {
  probe: NonNullable<MonitoringPort['probe']>;
  close(): Promise<void>;
}

/**
 * Creates the Cloud Monitoring adapter.
 *
 * Both methods answer one {@link MetricSeries} per (service, region) that had instances in the
 * window, points oldest first, stamped with the end of their minute. Minute buckets end at
 * `window.endMs` and step back from it, so a window ending on a whole minute gives points on whole
 * minutes. A service scaled to zero has no series (Cloud Run writes no points for it), and a
 * missing minute is not filled in: the newest points are about three minutes old (Monitoring's
 * lag), which the caller must not read as zero. `execution_errors` on any page fail the whole read
 * with an {@link UpstreamError} naming them.
 *
 * Retries: google-gax's own, per RPC (so per page), on UNAVAILABLE and DEADLINE_EXCEEDED, and
 * RESOURCE_EXHAUSTED after the delay Google asks for (retry.ts withRetryInfo): `maxAttempts`
 * attempts in all, each with the deadline `attemptTimeoutMs`, separated by a random wait up to
 * `minBackoffMs` doubling to `maxBackoffMs`.
 * Reads are idempotent, so a retry is always safe. Every failure is a typed error of
 * src/core/errors.ts (see grpc-errors.ts: when the attempts run out, the last attempt's code decides,
 * so a persistent RESOURCE_EXHAUSTED is a RateLimitedError) with the client's error as `cause`.
 */
export function createMonitoringAdapter(options: MonitoringAdapterOptions = {}): MonitoringAdapter {
  const pageSize = checkPageSize('pageSize', options.pageSize ?? DEFAULT_PAGE_SIZE);
  const distributionPageSize = Math.min(
    pageSize,
    checkPageSize(
      'distributionPageSize',
      options.distributionPageSize ?? DEFAULT_DISTRIBUTION_PAGE_SIZE,
    ),
  );
  const policy = checkRetryPolicy({ ...defaultRetryPolicy, ...definedOnly(options.retry ?? {}) });
  const client = new MetricServiceClient(clientConfig(options).options);
  const retries = closingRetries(policy);
  const read = (project: string, window: TimeWindow, query: Query): Promise<MetricSeries[]> =>
    listSeries(
      client,
      policy,
      query.value === 'distributionMean' ? distributionPageSize : pageSize,
      project,
      window,
      query,
      retries,
    );

  return {
    instanceCounts: (project, window) => read(project, window, QUERIES.instanceCounts),
    gpuUtilization: async (project, window) => {
      try {
        return await read(project, window, QUERIES.gpuUtilization);
      } catch (error) {
        // GPU utilization is optional: a project where Monitoring knows no such metric has none
        // (INVALID_ARGUMENT "doesn't refer to any known metric", unknownMetricError; NOT_FOUND
        // too, should Google answer so). Any other failure, and the same answer for the other
        // metrics, stays an error.
        if (error instanceof NotFoundError) return [];
        throw error;
      }
    },
    servedRequests: (project, window) => read(project, window, QUERIES.servedRequests),
    refusedRequests: (project, window) => read(project, window, QUERIES.refusedRequests),
    probe: async (project, nowMs) => {
      checkQuery(project, { startMs: nowMs - 120_000, endMs: nowMs });
      const q = QUERIES.instanceCounts;
      try {
        // Series headers only, one per page, over two minutes: the least Monitoring can answer.
        await retries.retry(() =>
          client.listTimeSeries(
            {
              name: `projects/${project}`,
              filter: `metric.type = "${q.metric}" AND resource.type = "${RESOURCE_TYPE}"`,
              interval: { startTime: timestamp(nowMs - 120_000), endTime: timestamp(nowMs) },
              aggregation: {
                alignmentPeriod: { seconds: 60 },
                perSeriesAligner: q.aligner,
                crossSeriesReducer: q.reducer,
                groupByFields: GROUP_BY,
              },
              view: 'HEADERS',
              pageSize: 1,
            },
            { ...gaxReadOptions(policy), autoPaginate: false },
          ),
        );
      } catch (error) {
        throw translateGrpcError(
          error,
          `reading ${q.metric} of project ${project} (ListTimeSeries)`,
        );
      }
    },
    writeGovernorMetrics: (project, atMs, points) =>
      writeGovernorMetrics(client, policy, project, atMs, points),
    close: () => {
      retries.close();
      return client.close();
    },
  };
}

/**
 * Most TimeSeries one CreateTimeSeries request may carry (metric_service.proto,
 * https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#createtimeseriesrequest,
 * CreateTimeSeriesRequest.time_series: "The maximum number of `TimeSeries` objects per `Create`
 * request is 200").
 */
export const MAX_SERIES_PER_CREATE = 200;

/**
 * The run's figures as custom metrics: one GAUGE point per series at `atMs`, on the `global`
 * monitored resource (one of the resource types Google accepts for user-defined metrics:
 * https://cloud.google.com/monitoring/custom-metrics/creating-metrics#custom-metric-resources),
 * whose only label is `project_id`. Pool and service go in the metric's labels. The metric
 * descriptors are not created first: CreateTimeSeries auto-creates a missing custom metric's
 * descriptor from the first point (metric.proto, TimeSeries.metric_kind and points: GAUGE by
 * default, the value type from the point's).
 *
 * One request per 200 series, all at once. Not retried: Monitoring refuses a point not newer than
 * its series' latest (metric_service.proto), so a retry of a write that landed would fail anyway;
 * the next run writes the next points. A failure is an error of src/core/errors.ts, for the caller to
 * report (the run goes on without its metrics).
 */
async function writeGovernorMetrics(
  client: MetricServiceClient,
  policy: RetryPolicy,
  project: string,
  atMs: number,
  points: readonly GovernorMetricPoint[],
): Promise<'written' | 'too-soon'> {
  const faults = projectFaults(project);
  if (faults.length > 0) throw new InputError('Invalid Monitoring write', faults);
  const series: TimeSeries[] = points.map((p) => ({
    metric: { type: `${METRIC_PREFIX}${p.metric}`, labels: p.labels },
    resource: { type: 'global', labels: { project_id: project } },
    metricKind: GOVERNOR_METRIC_KIND,
    valueType: p.valueType,
    points: [
      {
        // A GAUGE point is one instant: the start time, when given, must equal the end time.
        interval: { endTime: timestamp(atMs) },
        value:
          p.valueType === 'INT64' ? { int64Value: Math.round(p.value) } : { doubleValue: p.value },
      },
    ],
  }));
  const what = `writing the governor's metrics to project ${project} (CreateTimeSeries)`;
  const requests: TimeSeries[][] = [];
  for (let i = 0; i < series.length; i += MAX_SERIES_PER_CREATE)
    requests.push(series.slice(i, i + MAX_SERIES_PER_CREATE));
  // At once: each series is in one request only, with one point, so no order between requests
  // matters (Monitoring orders the points of one series). Monitoring's rate quotas count per
  // minute (https://cloud.google.com/monitoring/quotas): a run's few requests need no pacing.
  const answers = await Promise.allSettled(
    requests.map((timeSeries) =>
      client.createTimeSeries(
        { name: `projects/${project}`, timeSeries },
        { timeout: policy.attemptTimeoutMs, retry: null },
      ),
    ),
  );
  let outcome: 'written' | 'too-soon' = 'written';
  for (const answer of answers) {
    if (answer.status === 'fulfilled') continue;
    if (tooSoon(answer.reason)) outcome = 'too-soon';
    else throw translateGrpcError(answer.reason, what);
  }
  return outcome;
}

/**
 * Monitoring's refusal of points that come too soon after its series' latest: not newer
 * ("Points must be written in order"), or within the 5 s a series takes one point in ("written
 * more frequently than the maximum sampling period"). Another run wrote just before this one; the
 * request is otherwise well formed (the emulator checks it as Google does), so nothing is lost.
 * Only when every failure named in the answer is one of those. Google's reference gives no layout
 * for the answer's text; public reports quote one reason per failure, before the series it names
 * ("…: One or more points were written more frequently than the maximum sampling period configured
 * for the metric.: global{…} timeSeries[0-199]: custom.googleapis.com/…",
 * https://github.com/GoogleCloudPlatform/prometheus-engine/issues/823), so what is counted is the
 * reasons, not where they stand: as many too-soon reasons as failures named, else (a failure
 * with another reason among them) it is a failure. An answer that names no series is too soon
 * when its text says so.
 */
function tooSoon(error: unknown): boolean {
  if (grpcCodeName(grpcCode(error)) !== 'INVALID_ARGUMENT') return false;
  const message = errorMessage(error);
  const named = message.match(/timeSeries\[[\d,\s-]*\]/g)?.length ?? 0;
  const soon =
    message.match(
      /Points must be written in order|written more frequently than the maximum sampling period/g,
    )?.length ?? 0;
  return named > 0 ? soon === named : soon > 0;
}

function checkPageSize(path: string, size: number): number {
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new InputError('Invalid Monitoring adapter options', [
      { path, message: `must be an integer from 1 to ${MAX_PAGE_SIZE}, not ${size}` },
    ]);
  }
  return size;
}

/** The whole answer of one query, every page, as one series per (service, region). */
async function listSeries(
  client: MetricServiceClient,
  policy: RetryPolicy,
  pageSize: number,
  project: string,
  window: TimeWindow,
  query: Query,
  retries: ClosingRetries,
): Promise<MetricSeries[]> {
  checkQuery(project, window);
  const what = `reading ${query.metric} of project ${project} (ListTimeSeries)`;
  const request: ListTimeSeriesRequest = {
    name: `projects/${project}`,
    filter: `metric.type = "${query.metric}" AND resource.type = "${RESOURCE_TYPE}"`,
    interval: { startTime: timestamp(window.startMs), endTime: timestamp(window.endMs) },
    aggregation: {
      alignmentPeriod: { seconds: 60 },
      perSeriesAligner: query.aligner,
      crossSeriesReducer: query.reducer,
      groupByFields: query.groupBy ? [...GROUP_BY, `metric.label.${query.groupBy}`] : GROUP_BY,
    },
    view: 'FULL',
    pageSize,
  };
  const callOptions = { ...gaxReadOptions(policy), autoPaginate: false };
  const bySeries = new Map<string, MetricSeries>();
  const tokens = new Set<string>();
  /** The projects whose series were read, when the project is named by its number. */
  const owners = new Set<string>();
  let pageToken = '';
  let empty = 0;
  do {
    let page: [TimeSeries[], unknown, ListTimeSeriesResponse];
    try {
      page = await retries.retry(() =>
        client.listTimeSeries({ ...request, pageToken }, callOptions),
      );
    } catch (error) {
      throw unknownMetricError(error, query, project, what) ?? translateGrpcError(error, what);
    }
    const [series, , response] = page;
    const errors = response.executionErrors ?? [];
    if (errors.length > 0) {
      const listed = errors.map(
        (e) => `${grpcCodeName(e.code ?? undefined) ?? `code ${e.code}`}: ${e.message ?? ''}`,
      );
      throw new UpstreamError(
        `${what}: the answer is incomplete (${errors.length} execution error(s): ${listed.join('; ')})`,
      );
    }
    for (const s of series) {
      const parsed = toMetricSeries(s, query, what, window);
      if (!ofProject(s, project, owners, what)) continue;
      const label = query.groupBy ? (s.metric?.labels?.[query.groupBy] ?? '') : '';
      if (query.groupBy && label === query.leaveOut) continue;
      const key = JSON.stringify([parsed.service, parsed.region, label]);
      // The same series again is its continuation: a page ends after a number of points.
      const seen = bySeries.get(key);
      if (seen) seen.points.push(...parsed.points);
      else bySeries.set(key, parsed);
    }
    pageToken = response.nextPageToken ?? '';
    // Fresh tokens on empty pages without end would read for ever: bounded as every listing is.
    empty = series.length === 0 ? empty + 1 : 0;
    if (pageToken !== '' && empty >= MAX_EMPTY_PAGES) throw endlessListing(what, empty);
    if (tokens.has(pageToken)) {
      throw new UpstreamError(`${what}: the page token "${pageToken}" came back twice`);
    }
    tokens.add(pageToken);
  } while (pageToken !== '');
  // Series of one service told apart by a metric label are summed minute by minute.
  const byService = new Map<string, MetricSeries>();
  for (const s of bySeries.values()) {
    const points = inTimeOrder(s, what);
    const key = JSON.stringify([s.service, s.region]);
    const seen = byService.get(key);
    if (seen) seen.points = sumByTime(seen.points, points);
    else byService.set(key, { ...s, points });
  }
  return [...byService.values()];
}

/**
 * Whether a series is the project's own, not another project's of its metrics scope (GROUP_BY).
 * Named by its id, the project's series carry it as `project_id`. Named by its number, which the
 * label never holds, a series is taken as the project's while the answer holds one project only;
 * series of several projects cannot be told apart, and the read fails rather than sum them.
 */
function ofProject(
  series: TimeSeries,
  project: string,
  owners: Set<string>,
  what: string,
): boolean {
  const owner = series.resource?.labels?.['project_id'] ?? '';
  if (owner === '') throw new UpstreamError(`${what}: a series lacks its project_id label`);
  if (!/^\d+$/.test(project)) return owner === project;
  owners.add(owner);
  if (owners.size > 1) {
    throw new UpstreamError(
      `${what}: the answer holds series of several projects (${[...owners].join(', ')}), which a project named by its number cannot tell apart: name it by its id`,
    );
  }
  return true;
}

/**
 * Monitoring's refusal of a metric type it has no descriptor of in the project. Google's reference
 * documents no code or text for it; public reports quote two answers:
 * - INVALID_ARGUMENT "The provided filter doesn't refer to any known metric."
 *   (https://github.com/prometheus-community/stackdriver_exporter/issues/28);
 * - NOT_FOUND "Cannot find metric(s) that match type = \"...\". If a metric was created recently,
 *   it could take up to 10 minutes to become available." (the answer reported for a logs-based
 *   metric read before Monitoring has its descriptor, as right after terraform/ creates it).
 * Either is what a logs-based metric answers where it was never defined, so the refusals metric
 * where terraform/ is not deployed, or not for long. A NotFoundError saying what to do; null for
 * any other error (a NOT_FOUND in other words stays translateGrpcError's NotFoundError).
 */
function unknownMetricError(
  error: unknown,
  query: Query,
  project: string,
  what: string,
): NotFoundError | null {
  const code = grpcCodeName(grpcCode(error));
  if (code !== 'INVALID_ARGUMENT' && code !== 'NOT_FOUND') return null;
  const text = errorMessage(error);
  if (!/doesn't refer to any known metric|Cannot find metric\(s\) that match type/.test(text))
    return null;
  const fix =
    query.metric === REFUSED_REQUESTS_METRIC
      ? `: it is the logs-based metric terraform/ defines in each governed project (signals.tf); deploy the module (or define the metric as it does; a metric just defined may take up to 10 minutes to become readable), and until then the 429s stay unknown`
      : '';
  return new NotFoundError(
    `${what} failed: project ${project} has no metric ${query.metric}${fix}`,
    { cause: error },
  );
}

/** Two series' points added where their times meet, oldest first. */
function sumByTime(a: MetricSeries['points'], b: MetricSeries['points']): MetricSeries['points'] {
  const byTime = new Map<number, number>();
  for (const p of [...a, ...b]) byTime.set(p.at, (byTime.get(p.at) ?? 0) + p.value);
  return [...byTime].sort(([x], [y]) => x - y).map(([at, value]) => ({ at, value }));
}

/**
 * Points oldest first, one per time: a point repeated across pages with the same value is kept
 * once; the same time with two values is a contradiction in the answer.
 */
function inTimeOrder(series: MetricSeries, what: string): MetricSeries['points'] {
  const byTime = new Map<number, number>();
  for (const p of series.points) {
    const seen = byTime.get(p.at);
    if (seen !== undefined && seen !== p.value) {
      throw new UpstreamError(
        `${what}: service ${series.service} in ${series.region} has two values at ${new Date(p.at).toISOString()} (${seen} and ${p.value})`,
      );
    }
    byTime.set(p.at, p.value);
  }
  return [...byTime].sort(([a], [b]) => a - b).map(([at, value]) => ({ at, value }));
}

function checkQuery(project: string, window: TimeWindow): void {
  const faults: Fault[] = projectFaults(project);
  const { startMs, endMs } = window;
  // Monitoring reads the interval (start, end], "The start time must be specified, must be
  // earlier than the end time" (TimeInterval in google/monitoring/v3/common.proto,
  // https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#timeinterval): an empty
  // window is refused here rather than sent.
  // Each refusal says which rule the window breaks: a window before 1970 (an emulator's clock
  // set there) was told its start must be before its end, which it was.
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) {
    faults.push({ path: 'window', message: `must be finite times, not ${startMs}..${endMs}` });
  } else if (startMs < 0) {
    faults.push({
      path: 'window',
      message: `starts before 1970 (${startMs} ms): the governor reads no time before the Unix epoch`,
    });
  } else if (startMs >= endMs) {
    faults.push({
      path: 'window',
      message: `must start before it ends, not ${startMs}..${endMs}`,
    });
  }
  if (faults.length > 0) throw new InputError('Invalid Monitoring query', faults);
}

function toMetricSeries(
  series: TimeSeries,
  query: Query,
  what: string,
  window: TimeWindow,
): MetricSeries {
  const labels = series.resource?.labels ?? {};
  const service = labels['service_name'];
  const region = labels['location'];
  if (!service || !region) {
    throw new UpstreamError(
      `${what}: a series lacks its service_name or location label (${JSON.stringify(labels)})`,
    );
  }
  // The client decodes enums by name.
  const delta = series.metricKind === 'DELTA';
  const points: MetricSeries['points'] = [];
  for (const p of series.points ?? []) {
    const read = readPoint(p, query, delta, window);
    if (typeof read === 'string') {
      throw new UpstreamError(`${what}: service ${service} in ${region} has a point ${read}`);
    }
    // An empty distribution (no sample in the minute) says nothing about utilization.
    if (read !== null) points.push(read);
  }
  return { service, region, points };
}

/** How far past 1 a mean of ratios may be from rounding alone. */
const UTILIZATION_ROUNDING = 1e-9;

/**
 * One point as Google documents it, or what is wrong with it (a wire-valid answer can still hold
 * what Monitoring never sends; taken as is, it would be planned on). Null: an empty distribution.
 *
 * - Its end time lies in the interval asked: a read is "(startTime, endTime]" (TimeInterval:
 *   https://cloud.google.com/monitoring/api/ref_v3/rest/v3/TimeInterval), so a point after the
 *   end (stamped in the future of the reader's clock) or at or before the start is not of the
 *   answer.
 * - Its interval is one: "The end time must not be earlier than the start time" (same page), and
 *   a DELTA point has a start ("the start and end time should specify a non-zero interval",
 *   Point.interval: https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries#point).
 * - Its value is the number the query reads (TypedValue holds one of int64, double,
 *   distribution, ...: https://cloud.google.com/monitoring/api/ref_v3/rest/v3/TypedValue), finite,
 *   and for a count (every `number` query: instances, requests) not negative.
 * An int64 or a double is read as a number either way: both are exact for any count a snapshot
 * can hold; one beyond that is refused later as a corrupt answer (observe.ts, beyondBounds).
 */
function readPoint(
  p: protos.google.monitoring.v3.IPoint,
  query: Query,
  delta: boolean,
  window: TimeWindow,
): MetricSeries['points'][number] | null | string {
  const at = millis(p.interval?.endTime);
  if (at === undefined || !Number.isFinite(at)) return 'without an end time';
  const stamp = new Date(at).toISOString();
  if (at <= window.startMs || at > window.endMs) {
    return `at ${stamp}, outside the interval asked (${new Date(window.startMs).toISOString()}, ${new Date(window.endMs).toISOString()}]`;
  }
  const start = millis(p.interval?.startTime ?? undefined);
  if (start !== undefined && start > at) return `at ${stamp} whose interval starts after it ends`;
  if (delta && (start === undefined || start === at)) {
    return `at ${stamp} without the interval a DELTA point covers (no start time before its end)`;
  }
  if (query.value === 'distributionMean') {
    const d = p.value?.distributionValue;
    if (!d) return `at ${stamp} without a distribution`;
    const count = toNumber(d.count ?? 0);
    if (count === 0) return null;
    const mean = d.mean ?? 0;
    if (count === undefined || !Number.isFinite(count) || !Number.isFinite(mean)) {
      return `at ${stamp} whose distribution is not finite numbers (count ${String(count)}, mean ${mean})`;
    }
    // A utilization is a ratio of 0 to 1 (the port's contract; Google's metrics list gives no
    // range we could cite): a mean outside it, by more than a double's rounding, is not one, and
    // clipped to 1 it would read every GPU as fully busy and raise demand. Refused, the
    // utilization is unknown and demand is estimated without it.
    if (mean < 0 || mean > 1 + UTILIZATION_ROUNDING) {
      return `at ${stamp} whose mean utilization ${mean} is not a ratio of 0 to 1`;
    }
    return { at, value: mean };
  }
  const raw = p.value?.int64Value ?? p.value?.doubleValue;
  const value = toNumber(raw);
  if (value === undefined) return `at ${stamp} without a numeric value`;
  if (!Number.isFinite(value)) return `at ${stamp} whose value is not a finite number (${value})`;
  if (value < 0) return `at ${stamp} with a negative count (${value})`;
  return { at, value };
}

/** An int64 or double as decoded by the client: a number, a decimal string, or a Long. */
function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string') return raw.trim() === '' ? undefined : Number(raw);
  if (typeof raw === 'object' && raw !== null && 'low' in raw && 'high' in raw) {
    return Number(String(raw));
  }
  return undefined;
}

function millis(t: protos.google.protobuf.ITimestamp | null | undefined): number | undefined {
  if (!t) return undefined;
  const seconds = toNumber(t.seconds ?? 0);
  const nanos = t.nanos ?? 0;
  return seconds === undefined ? undefined : seconds * 1000 + Math.floor(nanos / 1e6);
}

function timestamp(ms: number): protos.google.protobuf.ITimestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}
