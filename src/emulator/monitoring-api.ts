import { status } from '@grpc/grpc-js';
import { compareText } from '../core/pool.js';
import { answerOf, type EmulatorContext } from './context.js';
import { gpusPerInstance, MINUTE_MS, type MinuteSample } from './model.js';
import {
  field,
  int,
  invalid,
  millis,
  listPaging,
  paginate,
  requireFleetProject,
  notEmulated,
  RpcError,
  strings,
  text,
  timestamp,
  type Message,
  type Handlers,
  shown,
} from './rpc.js';

/**
 * Cloud Monitoring v3 `ListTimeSeries`, for the Cloud Run revision metrics a governor reads, with
 * the metric kind and value type Google's metric list gives them
 * (https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run):
 * - `run.googleapis.com/container/instance_count`: GAUGE, INT64, label `state` (active | idle);
 * - `run.googleapis.com/container/gpu/utilizations`: DELTA, DISTRIBUTION, unit `10^2.%` (values
 *   0..1), one sample per instance per sampling period;
 * - `run.googleapis.com/request_count`: DELTA, INT64, labels `response_code` and
 *   `response_code_class` ("2xx" ...). Google's description: "Number of requests reaching the
 *   revision. Excludes requests that are not reaching your container instances (e.g.
 *   unauthorized requests or when maximum number of instances is reached)." So the requests
 *   Cloud Run refuses at the cap (429) or for want of an instance (503) are NOT in it: only the
 *   model's served requests (200) are;
 * - {@link REFUSED_REQUESTS}, the logs-based counter metric the Terraform module defines on Cloud
 *   Run's request log (`httpRequest.status=429`): DELTA, INT64 (Cloud Logging's counter metrics:
 *   "the number of log entries that match a logs filter in a given time interval"), on the log
 *   entry's resource, `cloud_run_revision`, no labels. Cloud Run logs the requests it refuses
 *   ("The request was aborted because there was no available instance"), so this is where the
 *   429s are counted.
 * One raw point per revision per minute while the revision has instances (request counts: in
 * minutes with such requests); points become visible `metricsLagMs` after their minute. Anything
 * outside this is INVALID_ARGUMENT, and so is every aligner or reducer Google documents as
 * invalid for the series' kind and value type ({@link ALIGNERS}, {@link REDUCERS}).
 */

export const INSTANCE_COUNT = 'run.googleapis.com/container/instance_count';
export const GPU_UTILIZATIONS = 'run.googleapis.com/container/gpu/utilizations';
export const REQUEST_COUNT = 'run.googleapis.com/request_count';
/** The logs-based metric of terraform/ (`google_logging_metric.refused_requests`). */
export const REFUSED_REQUESTS = 'logging.googleapis.com/user/gpu_governor_refused_requests';
const RESOURCE_TYPE = 'cloud_run_revision';
const RESOURCE_LABELS = [
  'project_id',
  'service_name',
  'revision_name',
  'configuration_name',
  'location',
] as const;

type Kind = 'GAUGE' | 'DELTA' | 'CUMULATIVE';
type ValueType = 'BOOL' | 'INT64' | 'DOUBLE' | 'STRING' | 'DISTRIBUTION';

interface Descriptor {
  kind: Kind;
  valueType: ValueType;
  unit: string;
  /** Metric labels, for filters and group_by_fields. */
  labels: readonly string[];
}

/** What each served metric is on Google Cloud (metrics list above). */
const METRICS: Readonly<Record<string, Descriptor>> = {
  [INSTANCE_COUNT]: { kind: 'GAUGE', valueType: 'INT64', unit: '1', labels: ['state'] },
  [GPU_UTILIZATIONS]: { kind: 'DELTA', valueType: 'DISTRIBUTION', unit: '10^2.%', labels: [] },
  [REQUEST_COUNT]: {
    kind: 'DELTA',
    valueType: 'INT64',
    unit: '1',
    labels: ['response_code', 'response_code_class'],
  },
  [REFUSED_REQUESTS]: { kind: 'DELTA', valueType: 'INT64', unit: '1', labels: [] },
};

/**
 * A metric type with no descriptor: Google answers INVALID_ARGUMENT "The provided filter doesn't
 * refer to any known metric." (seen in
 * https://github.com/prometheus-community/stackdriver_exporter/issues/28), as the emulator does for
 * every metric it does not serve.
 */
function unknownMetric(metricType: string): RpcError {
  return invalid(
    `The provided filter doesn't refer to any known metric: "${shown(metricType)}" (the emulator serves ${Object.keys(METRICS).join(', ')})`,
  );
}

function descriptor(metricType: string): Descriptor {
  const d = METRICS[metricType];
  if (!d) throw unknownMetric(metricType);
  return d;
}

const NUMERIC: readonly ValueType[] = ['INT64', 'DOUBLE'];
const NUMERIC_OR_DISTRIBUTION: readonly ValueType[] = ['INT64', 'DOUBLE', 'DISTRIBUTION'];
const BOOL: readonly ValueType[] = ['BOOL'];

/**
 * Which series an operation accepts, and what it makes of them: `kind`/`valueType` of the output
 * ('same' keeps the input's).
 */
interface Rule {
  readonly kinds: readonly Kind[];
  readonly types: readonly ValueType[];
  readonly kind: Kind | 'same';
  readonly valueType: ValueType | 'same';
}

const rule = (
  kinds: readonly Kind[],
  types: readonly ValueType[],
  valueType: ValueType | 'same',
  kind: Kind | 'same' = 'same',
): Rule => ({ kinds, types, kind, valueType });

/**
 * Aggregation.Aligner, transcribed from the comments of `google/monitoring/v3/common.proto`
 * (shipped in @google-cloud/monitoring) for every aligner. Where the comment names no value type
 * (ALIGN_DELTA, ALIGN_NEXT_OLDER) the types that make sense are allowed and BOOL and STRING
 * refused, which is the safe side. Output kinds the comment does not give stay the input's.
 */
const ALIGNERS: Readonly<Record<string, Rule>> = {
  ALIGN_DELTA: rule(['CUMULATIVE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'same', 'DELTA'),
  ALIGN_RATE: rule(['CUMULATIVE', 'DELTA'], NUMERIC, 'DOUBLE', 'GAUGE'),
  ALIGN_INTERPOLATE: rule(['GAUGE'], NUMERIC, 'same'),
  ALIGN_NEXT_OLDER: rule(['GAUGE'], [...NUMERIC_OR_DISTRIBUTION, 'BOOL', 'STRING'], 'same'),
  ALIGN_MIN: rule(['GAUGE', 'DELTA'], NUMERIC, 'same'),
  ALIGN_MAX: rule(['GAUGE', 'DELTA'], NUMERIC, 'same'),
  ALIGN_MEAN: rule(['GAUGE', 'DELTA'], NUMERIC, 'DOUBLE'),
  ALIGN_COUNT: rule(['GAUGE', 'DELTA'], [...NUMERIC, 'BOOL'], 'INT64'),
  ALIGN_SUM: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'same'),
  ALIGN_STDDEV: rule(['GAUGE', 'DELTA'], NUMERIC, 'DOUBLE'),
  ALIGN_COUNT_TRUE: rule(['GAUGE'], BOOL, 'INT64'),
  ALIGN_COUNT_FALSE: rule(['GAUGE'], BOOL, 'INT64'),
  ALIGN_FRACTION_TRUE: rule(['GAUGE'], BOOL, 'DOUBLE'),
  ALIGN_PERCENTILE_99: rule(['GAUGE', 'DELTA'], ['DISTRIBUTION'], 'DOUBLE', 'GAUGE'),
  ALIGN_PERCENTILE_95: rule(['GAUGE', 'DELTA'], ['DISTRIBUTION'], 'DOUBLE', 'GAUGE'),
  ALIGN_PERCENTILE_50: rule(['GAUGE', 'DELTA'], ['DISTRIBUTION'], 'DOUBLE', 'GAUGE'),
  ALIGN_PERCENTILE_05: rule(['GAUGE', 'DELTA'], ['DISTRIBUTION'], 'DOUBLE', 'GAUGE'),
  ALIGN_PERCENT_CHANGE: rule(['GAUGE', 'DELTA'], NUMERIC, 'DOUBLE', 'GAUGE'),
};

/**
 * Aggregation.Reducer, from the same comments. Every reducer is documented for DELTA and GAUGE
 * series; it applies to the ALIGNED series (the comment says "the original time series", but the
 * common ALIGN_RATE + REDUCE_SUM over a CUMULATIVE counter is accepted, so the check must be on the
 * aligner's output: a CUMULATIVE series is never reduced as such).
 */
const REDUCERS: Readonly<Record<string, Rule>> = {
  REDUCE_MEAN: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'DOUBLE'),
  REDUCE_MIN: rule(['GAUGE', 'DELTA'], NUMERIC, 'same'),
  REDUCE_MAX: rule(['GAUGE', 'DELTA'], NUMERIC, 'same'),
  REDUCE_SUM: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'same'),
  REDUCE_STDDEV: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'DOUBLE'),
  REDUCE_COUNT: rule(['GAUGE', 'DELTA'], [...NUMERIC_OR_DISTRIBUTION, 'BOOL', 'STRING'], 'INT64'),
  REDUCE_COUNT_TRUE: rule(['GAUGE', 'DELTA'], BOOL, 'INT64'),
  REDUCE_COUNT_FALSE: rule(['GAUGE', 'DELTA'], BOOL, 'INT64'),
  REDUCE_FRACTION_TRUE: rule(['GAUGE', 'DELTA'], BOOL, 'DOUBLE'),
  REDUCE_PERCENTILE_99: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'DOUBLE'),
  REDUCE_PERCENTILE_95: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'DOUBLE'),
  REDUCE_PERCENTILE_50: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'DOUBLE'),
  REDUCE_PERCENTILE_05: rule(['GAUGE', 'DELTA'], NUMERIC_OR_DISTRIBUTION, 'DOUBLE'),
};

/** The operations the emulator computes; a valid one outside these is UNIMPLEMENTED. */
const COMPUTED_ALIGNERS = new Set([
  'ALIGN_DELTA',
  'ALIGN_MIN',
  'ALIGN_MAX',
  'ALIGN_MEAN',
  'ALIGN_COUNT',
  'ALIGN_SUM',
  'ALIGN_PERCENTILE_99',
  'ALIGN_PERCENTILE_95',
  'ALIGN_PERCENTILE_50',
  'ALIGN_PERCENTILE_05',
]);
const COMPUTED_REDUCERS = new Set([
  'REDUCE_MEAN',
  'REDUCE_MIN',
  'REDUCE_MAX',
  'REDUCE_SUM',
  'REDUCE_COUNT',
  'REDUCE_PERCENTILE_99',
  'REDUCE_PERCENTILE_95',
  'REDUCE_PERCENTILE_50',
  'REDUCE_PERCENTILE_05',
]);

/**
 * Monitoring's own words for an aligner that does not fit the series, as public error reports
 * quote them (e.g. google/exposure-notifications-verification-server#659: `Field
 * aggregation.perSeriesAligner had an invalid value of "ALIGN_RATE": The aligner cannot be applied
 * to metrics with kind DELTA and value type DISTRIBUTION.`). The reducer message follows the same
 * pattern (its exact wording is unconfirmed).
 */
function misfit(what: 'aligner' | 'reducer', name: string, kind: Kind, type: ValueType): RpcError {
  const fieldName =
    what === 'aligner' ? 'aggregation.perSeriesAligner' : 'aggregation.crossSeriesReducer';
  return invalid(
    `Field ${fieldName} had an invalid value of "${name}": The ${what} cannot be applied to metrics with kind ${kind} and value type ${type}.`,
  );
}

/**
 * The bucket layout of the emulated utilization distributions: 100 linear buckets of 1 % over
 * 0..1, plus underflow and overflow. Google does not publish the layout Cloud Run uses.
 */
const BUCKETS = { offset: 0, width: 0.01, finite: 100 } as const;

/** A distribution as `google.api.Distribution` carries it (population statistics + histogram). */
interface Dist {
  count: number;
  mean: number;
  /** Sum of squared deviations from the mean. */
  m2: number;
  /**
   * The non-empty buckets: index → count, index 0 the underflow, 1..BUCKETS.finite the finite
   * buckets, BUCKETS.finite + 1 the overflow. Sparse, because a minute's samples fill one or two
   * of them: dense arrays of 102 counts per sample were most of the emulator's work at 10,000
   * services. The wire form is dense (distributionProto).
   */
  buckets: Map<number, number>;
}

type Value = number | Dist;

interface Query {
  metricType: string;
  /**
   * Every label term as written, a label named twice kept twice: the terms are joined by a
   * logical AND ("your filter can consist of the logical AND of the selectors",
   * https://cloud.google.com/monitoring/api/v3/filters), so a series must match each of them.
   */
  resourceLabels: [label: string, value: string][];
  metricLabels: [label: string, value: string][];
}

interface Series {
  resource: Record<string, string>;
  metric: Record<string, string>;
  kind: Kind;
  valueType: ValueType;
  /** Length of each point's interval (0 for a gauge's instant). */
  spanMs: number;
  /** Oldest first while computing. */
  points: { at: number; value: Value }[];
}

/**
 * One term `key = "value"`, read where the last one ended (sticky). A label's name may be quoted,
 * `resource.label."service_name"`, as Google's own dashboards write it (below).
 */
const TERM = /\s*([a-z_]+(?:\.[a-z_]+)*(?:\."[a-z_]+")?)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*/y;
/** A label key with its name quoted: the one part of a key that may be. */
const QUOTED_LABEL = /^((?:resource|metric)\.labels?\.)"([a-z_]+)"$/;
const AND = /AND\s+/y;

/**
 * The terms of a filter, each [key, value], key unquoted. Terms are joined by `AND` or stand side
 * by side, which Monitoring reads as AND: Google's sample dashboards write
 * `metric.type="run.googleapis.com/request_count" resource.type="cloud_run_revision"`
 * (GoogleCloudPlatform/monitoring-dashboard-samples,
 * dashboards/google-cloud-run/cloudrun-monitoring.json). Either way whitespace parts two terms.
 * Read in one pass: splitting on /\s+AND\s+/ tried a run of spaces again from each of its
 * characters, so 100,000 spaces took 9 s and a 1 MB filter a quarter of an hour, the whole
 * emulator waiting.
 */
function filterTerms(filter: string): [key: string, value: string][] {
  const terms: [string, string][] = [];
  let at = 0;
  let joined = false;
  while (at < filter.length) {
    if (terms.length > 0) {
      // TERM ends past the whitespace after its value: none there, and the next term is glued on.
      if (!/\s/.test(filter[at - 1] ?? '')) break;
      AND.lastIndex = at;
      joined = AND.exec(filter) !== null;
      if (joined) at = AND.lastIndex;
    }
    TERM.lastIndex = at;
    const m = TERM.exec(filter);
    if (!m) break;
    const key = m[1] ?? '';
    if (key.includes('"') && !QUOTED_LABEL.test(key))
      throw invalid(`filter key "${shown(key)}": only a label's name may be quoted`);
    terms.push([key.replace(QUOTED_LABEL, '$1$2'), m[2] ?? m[3] ?? '']);
    at = TERM.lastIndex;
    joined = false;
  }
  const rest = filter.slice(at).trim();
  // An AND read and nothing after it, or an AND with no whitespace after it, ends the filter; an
  // AND read and then text that is no term is that term's fault.
  if (rest === '' ? joined : rest === 'AND')
    throw invalid('filter ends with AND: a term must follow it');
  if (rest !== '')
    throw invalid(`filter term "${shown(rest)}" is not supported: expected key = "value"`);
  return terms;
}

/**
 * The filter, read as far as the emulator evaluates it: terms key = "value" joined by AND
 * ({@link filterTerms}). What
 * Monitoring's grammar (https://cloud.google.com/monitoring/api/v3/filters) has beyond that (OR,
 * NOT, parentheses, `:`, `!=`, functions, the project, group.id and metadata selectors) is
 * UNIMPLEMENTED; INVALID_ARGUMENT stays for what Google refuses too: no filter, a key that is no
 * selector, not exactly one metric type, a metric it has no descriptor of, another resource type.
 */
function parseFilter(filter: string): Query {
  if (filter.trim() === '')
    throw invalid(
      'filter is required, e.g. metric.type = "run.googleapis.com/container/instance_count"',
    );
  if (
    /\b(OR|NOT)\b|[()]|!=|:|\b(starts_with|ends_with|has_substring|one_of|monitoring\.regex)\b/.test(
      filter.replace(/"[^"]*"|'[^']*'/g, '""'),
    )
  ) {
    throw notEmulated(
      `filter "${shown(filter)}"`,
      'use only terms key = "value" joined by AND (metric.type, resource.type, resource.labels.*, metric.labels.*)',
    );
  }
  let metricType: string | undefined;
  const resourceLabels: [string, string][] = [];
  const metricLabels: [string, string][] = [];
  for (const [key, value] of filterTerms(filter)) {
    if (key === 'metric.type') {
      if (metricType !== undefined) throw invalid('filter names metric.type twice');
      metricType = value;
      continue;
    }
    if (key === 'resource.type') {
      if (value !== RESOURCE_TYPE) {
        // Google's words for a metric read on a resource type it is not written on (seen in
        // https://github.com/prometheus-community/stackdriver_exporter/issues/104).
        throw invalid(
          `The supplied filter does not specify a valid combination of metric and monitored resource descriptors (resource.type "${shown(value)}"; the emulator serves "${RESOURCE_TYPE}")`,
        );
      }
      continue;
    }
    const resource = /^resource\.labels?\.([a-z_]+)$/.exec(key);
    if (resource) {
      const label = resource[1] ?? '';
      if (!(RESOURCE_LABELS as readonly string[]).includes(label)) {
        throw invalid(
          `resource label "${shown(label)}" does not exist on ${RESOURCE_TYPE} (labels: ${RESOURCE_LABELS.join(', ')})`,
        );
      }
      resourceLabels.push([label, value]);
      continue;
    }
    const metric = /^metric\.labels?\.([a-z_]+)$/.exec(key);
    if (metric) {
      metricLabels.push([metric[1] ?? '', value]);
      continue;
    }
    // The grammar's other selectors (project, group.id, metadata.*) exist; any other key does not.
    if (/^(project|group\.id|metadata\.(system|user)_labels?\.[a-z_]+)$/.test(key))
      throw notEmulated(`filter key "${shown(key)}"`);
    throw invalid(`filter key "${shown(key)}" is not a selector of a Monitoring filter`);
  }
  if (metricType === undefined) throw invalid('filter must name exactly one metric.type');
  const served = METRICS[metricType];
  if (!served) {
    throw unknownMetric(metricType);
  }
  for (const [label] of metricLabels) {
    if (!served.labels.includes(label))
      throw invalid(`${shown(metricType)} has no metric label "${shown(label)}"`);
  }
  return { metricType, resourceLabels, metricLabels };
}

/**
 * A group_by_fields entry as the emulator groups by it (`resource.LABEL` or `metric.LABEL`), or
 * null for `resource.type`: "It is not possible to reduce across different resource types, so this
 * field implicitly contains `resource.type`" (Aggregation.group_by_fields in
 * google/monitoring/v3/common.proto), so naming it is valid and changes nothing here, where every
 * series is a `cloud_run_revision`.
 */
function normalizeGroupBy(written: string, metricType: string): string | null {
  // A label's name may be quoted, `resource.label."service_name"`, as in filters (filterTerms).
  const fieldName = written.replace(QUOTED_LABEL, '$1$2');
  if (fieldName === 'resource.type') return null;
  const resource = /^resource\.labels?\.([a-z_]+)$/.exec(fieldName);
  if (resource && (RESOURCE_LABELS as readonly string[]).includes(resource[1] ?? ''))
    return `resource.${resource[1]}`;
  const labels = METRICS[metricType]?.labels ?? [];
  const metric = /^metric\.labels?\.([a-z_]+)$/.exec(fieldName);
  if (metric && labels.includes(metric[1] ?? '')) return `metric.${metric[1]}`;
  // A metadata label is valid too: TimeSeries.metadata "will include metadata labels that are
  // explicitly named in the reduction" (google/monitoring/v3/metric.proto). Not emulated (its
  // series carry no metadata): UNIMPLEMENTED, as for a metadata selector in the filter, never a
  // refusal Google would not make.
  if (/^metadata\.(system|user)_labels\..+$/.test(fieldName))
    throw notEmulated(`group_by_fields "${shown(written)}"`);
  throw invalid(
    `group_by_fields "${shown(written)}" is not supported (resource.label.{${RESOURCE_LABELS.join(',')}}${labels.map((l) => `, metric.label.${l}`).join('')})`,
  );
}

function bucketOf(value: number): number {
  if (value < BUCKETS.offset) return 0;
  const i = Math.floor((value - BUCKETS.offset) / BUCKETS.width);
  return i >= BUCKETS.finite ? BUCKETS.finite + 1 : i + 1;
}

/** The distribution of `n` samples of `value` each, for each [value, n]. */
function distOf(samples: [value: number, n: number][]): Dist {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const [value, n] of samples) {
    if (n <= 0) continue;
    count += n;
    sum += value * n;
    const i = bucketOf(value);
    buckets.set(i, (buckets.get(i) ?? 0) + n);
  }
  const mean = count === 0 ? 0 : sum / count;
  const m2 = samples.reduce((acc, [value, n]) => acc + (n > 0 ? n * (value - mean) ** 2 : 0), 0);
  return { count, mean, m2, buckets };
}

/** The union of populations (Chan et al.'s pairwise update for the squared deviations). */
function mergeDists(dists: Dist[]): Dist {
  const out: Dist = {
    count: 0,
    mean: 0,
    m2: 0,
    buckets: new Map(),
  };
  for (const d of dists) {
    if (d.count === 0) continue;
    const count = out.count + d.count;
    const delta = d.mean - out.mean;
    out.mean += (delta * d.count) / count;
    out.m2 += d.m2 + (delta * delta * out.count * d.count) / count;
    out.count = count;
    for (const [i, c] of d.buckets) out.buckets.set(i, (out.buckets.get(i) ?? 0) + c);
  }
  return out;
}

/** The q-th percentile (0..100) of a distribution, interpolated inside its bucket. */
function distPercentile(d: Dist, q: number): number {
  if (d.count === 0) return 0;
  const rank = (q / 100) * d.count;
  let seen = 0;
  for (const [i, c] of [...d.buckets].sort(([a], [b]) => a - b)) {
    if (c > 0 && seen + c >= rank) {
      if (i === 0) return BUCKETS.offset;
      if (i === BUCKETS.finite + 1) return BUCKETS.offset + BUCKETS.finite * BUCKETS.width;
      const lower = BUCKETS.offset + (i - 1) * BUCKETS.width;
      return lower + (BUCKETS.width * (rank - seen)) / c;
    }
    seen += c;
  }
  return BUCKETS.offset + BUCKETS.finite * BUCKETS.width;
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] ?? 0;
  const b = sorted[hi] ?? a;
  return a + (b - a) * (rank - lo);
}

const PERCENTILE = /_PERCENTILE_(\d\d)$/;
const isDist = (v: Value): v is Dist => typeof v !== 'number';
const nums = (values: Value[]): number[] => values.filter((v): v is number => !isDist(v));
const dists = (values: Value[]): Dist[] => values.filter(isDist);
const sumOf = (values: number[]): number => values.reduce((a, b) => a + b, 0);

function rawSeries(
  ctx: EmulatorContext,
  project: string,
  q: Query,
  startMs: number,
  endMs: number,
): Series[] {
  const visibleUntil = ctx.model.now - ctx.settings.metricsLagMs - ctx.injector.extraLagMs;
  const { kind, valueType } = descriptor(q.metricType);
  const out: Series[] = [];
  // Deleted services too, while their minutes are kept (Monitoring keeps a deleted resource's
  // series until its points expire: FleetModel.monitored).
  const services = ctx.model
    .monitored(project)
    .filter(({ state }) => q.metricType !== GPU_UTILIZATIONS || gpusPerInstance(state) > 0);
  const requests = q.metricType === REQUEST_COUNT || q.metricType === REFUSED_REQUESTS;
  for (const { state: s, rows: history } of services) {
    const byRevision = new Map<string, MinuteSample[]>();
    for (const row of history) {
      // The interval is (start, end]: a point at the start time is not in it (TimeInterval).
      if (row.at > visibleUntil || row.at <= startMs || row.at > endMs) continue;
      // Scaled to zero, Cloud Run writes no instance or utilization point; a count of requests
      // exists only in minutes with such requests.
      if (!requests && row.active + row.idle === 0) continue;
      const rows = byRevision.get(row.revision) ?? [];
      rows.push(row);
      byRevision.set(row.revision, rows);
    }
    for (const [revision, rows] of byRevision) {
      const resource: Record<string, string> = {
        project_id: s.project,
        service_name: s.name,
        revision_name: revision,
        configuration_name: s.name,
        location: s.region,
      };
      const matches = q.resourceLabels.every(([k, v]) => resource[k] === v);
      if (!matches) continue;
      if (requests) {
        const served = q.metricType === REQUEST_COUNT;
        const metric: Record<string, string> = served
          ? { response_code: '200', response_code_class: '2xx' }
          : {};
        if (q.metricLabels.some(([k, v]) => metric[k] !== v)) continue;
        const points = rows
          .map((r) => ({ at: r.at, value: served ? r.requests.served : r.requests.refused }))
          .filter((p) => p.value > 0);
        if (points.length > 0)
          out.push({ resource, metric, kind, valueType, spanMs: MINUTE_MS, points });
        continue;
      }
      if (q.metricType === GPU_UTILIZATIONS) {
        out.push({
          resource,
          metric: {},
          kind,
          valueType,
          spanMs: MINUTE_MS,
          points: rows.map((r) => ({ at: r.at, value: utilizationSamples(r) })),
        });
        continue;
      }
      for (const state of ['active', 'idle'] as const) {
        if (q.metricLabels.some(([k, v]) => k === 'state' && v !== state)) continue;
        out.push({
          resource,
          metric: { state },
          kind,
          valueType,
          spanMs: 0,
          points: rows.map((r) => ({ at: r.at, value: r[state] })),
        });
      }
    }
  }
  return out;
}

/**
 * One minute of a revision's GPU utilization: one sample per instance. The load the model serves
 * (demand, at most one instance's worth per instance) is spread over the active instances; idle
 * instances sample 0. The mean is the model's utilization (demand / instances, capped at 1).
 */
function utilizationSamples(r: MinuteSample): Dist {
  const held = r.active + r.idle;
  const load = Math.min(r.demand, held);
  const busy = r.active === 0 ? 0 : Math.min(1, load / r.active);
  return distOf([
    [busy, r.active],
    [0, r.idle],
  ]);
}

function checkFits(
  what: 'aligner' | 'reducer',
  name: string,
  r: Rule,
  s: { kind: Kind; valueType: ValueType },
): void {
  if (!r.kinds.includes(s.kind) || !r.types.includes(s.valueType))
    throw misfit(what, name, s.kind, s.valueType);
}

function outputOf(
  r: Rule,
  s: { kind: Kind; valueType: ValueType },
): {
  kind: Kind;
  valueType: ValueType;
} {
  return {
    kind: r.kind === 'same' ? s.kind : r.kind,
    valueType: r.valueType === 'same' ? s.valueType : r.valueType,
  };
}

function align(values: Value[], aligner: string, valueType: ValueType): Value {
  const q = PERCENTILE.exec(aligner)?.[1];
  if (q !== undefined) return distPercentile(mergeDists(dists(values)), Number(q));
  if (valueType === 'DISTRIBUTION') return mergeDists(dists(values)); // ALIGN_SUM, ALIGN_DELTA
  const n = nums(values);
  switch (aligner) {
    case 'ALIGN_MAX':
      return Math.max(...n);
    case 'ALIGN_MIN':
      return Math.min(...n);
    case 'ALIGN_MEAN':
      return sumOf(n) / n.length;
    case 'ALIGN_COUNT':
      return n.length;
    default: // ALIGN_SUM, ALIGN_DELTA (a DELTA series' change over the period)
      return sumOf(n);
  }
}

/**
 * Across series, for one aligned period. Over distributions, Google does not spell out the
 * statistic: the emulator takes the merged population (REDUCE_SUM: the union, REDUCE_MEAN and the
 * percentiles: its mean and percentiles); REDUCE_COUNT counts the points.
 */
function reduce(values: Value[], reducer: string): Value {
  const q = PERCENTILE.exec(reducer)?.[1];
  const merged = values.some(isDist) ? mergeDists(dists(values)) : undefined;
  if (reducer === 'REDUCE_COUNT') return values.length;
  if (q !== undefined)
    return merged ? distPercentile(merged, Number(q)) : percentile(nums(values), Number(q));
  if (merged) return reducer === 'REDUCE_MEAN' ? merged.mean : merged;
  const n = nums(values);
  switch (reducer) {
    case 'REDUCE_MAX':
      return Math.max(...n);
    case 'REDUCE_MIN':
      return Math.min(...n);
    case 'REDUCE_MEAN':
      return sumOf(n) / n.length;
    default: // REDUCE_SUM
      return sumOf(n);
  }
}

/** Buckets (end - (k+1)P, end - kP] for k = 0, 1, ...; a point is stamped with its bucket's end. */
function alignSeries(series: Series, aligner: string, periodMs: number, endMs: number): Series {
  const buckets = new Map<number, Value[]>();
  for (const p of series.points) {
    const k = Math.floor((endMs - p.at) / periodMs);
    const bucketEnd = endMs - k * periodMs;
    const list = buckets.get(bucketEnd) ?? [];
    list.push(p.value);
    buckets.set(bucketEnd, list);
  }
  const out = outputOf(ALIGNERS[aligner] as Rule, series);
  const points = [...buckets]
    .sort(([a], [b]) => a - b)
    .map(([at, values]) => ({ at, value: align(values, aligner, series.valueType) }));
  return { ...series, ...out, spanMs: out.kind === 'GAUGE' ? 0 : periodMs, points };
}

function reduceSeries(all: Series[], reducer: string, groupBy: string[]): Series[] {
  const groups = new Map<
    string,
    { resource: Record<string, string>; metric: Record<string, string>; members: Series[] }
  >();
  for (const s of all) {
    const resource: Record<string, string> = {};
    const metric: Record<string, string> = {};
    for (const g of groupBy) {
      const [kind, label = ''] = g.split('.');
      if (kind === 'resource') resource[label] = s.resource[label] ?? '';
      else metric[label] = s.metric[label] ?? '';
    }
    const key = JSON.stringify([resource, metric]);
    const group = groups.get(key) ?? { resource, metric, members: [] };
    group.members.push(s);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ resource, metric, members }) => {
    const byTime = new Map<number, Value[]>();
    for (const m of members)
      for (const p of m.points) byTime.set(p.at, [...(byTime.get(p.at) ?? []), p.value]);
    const first = members[0] as Series;
    // Integer inputs keep INT64 through the reducers that keep the type.
    return {
      resource,
      metric,
      ...outputOf(REDUCERS[reducer] as Rule, first),
      spanMs: first.spanMs,
      points: [...byTime]
        .sort(([a], [b]) => a - b)
        .map(([at, values]) => ({ at, value: reduce(values, reducer) })),
    };
  });
}

function distributionProto(d: Dist): Message {
  // Counts as numbers, not decimal strings: the encoder turns a small number into a cached Long,
  // a string into a new one parsed digit by digit (a hundred buckets a point, at 10,000 services
  // most of the emulator's time).
  return {
    count: d.count,
    mean: d.mean,
    sum_of_squared_deviation: d.m2,
    bucket_options: {
      linear_buckets: {
        num_finite_buckets: BUCKETS.finite,
        width: BUCKETS.width,
        offset: BUCKETS.offset,
      },
    },
    bucket_counts: Array.from({ length: BUCKETS.finite + 2 }, (_, i) => d.buckets.get(i) ?? 0),
  };
}

function valueProto(value: Value, valueType: ValueType): Message {
  if (isDist(value)) return { distribution_value: distributionProto(value) };
  return valueType === 'INT64'
    ? { int64_value: String(Math.round(value)) }
    : { double_value: value };
}

/** A series' header, with the points given (newest first, as Monitoring answers). */
function toProto(
  s: Series,
  metricType: string,
  points: readonly { at: number; value: Value }[],
): Message {
  return {
    metric: { type: metricType, labels: s.metric },
    resource: { type: RESOURCE_TYPE, labels: s.resource },
    metric_kind: s.kind,
    value_type: s.valueType,
    unit: descriptor(metricType).unit,
    points: points.map((p) => ({
      // A DELTA point covers (end - span, end]; a GAUGE point is an instant.
      interval: { start_time: timestamp(p.at - s.spanMs), end_time: timestamp(p.at) },
      value: valueProto(p.value, s.valueType),
    })),
  };
}

/**
 * An enum field's value name, or `fallback` when unset. The protos are decoded with enums as their
 * names; a number the proto does not declare stays a number. proto3 keeps such a value rather
 * than failing to parse ("unrecognized enum values will be preserved in the message", and what
 * it means is up to the receiver: https://protobuf.dev/programming-guides/proto3/#enum);
 * Monitoring does not say how it treats one, so the emulator fails safe: INVALID_ARGUMENT naming
 * the field and the value, never a silent default.
 */
function enumName(msg: Message | undefined, name: string, fallback: string, path: string): string {
  const v = msg?.[name];
  if (typeof v === 'number') throw invalid(`${path} has an unknown value ${v}: not in its enum`);
  return typeof v === 'string' && v !== '' ? v : fallback;
}

/**
 * The range of a google.protobuf.Timestamp (timestamp.proto: "Must be from
 * 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z inclusive", seconds -62135596800 to 253402300799;
 * nanos "Must be from 0 to 999,999,999 inclusive";
 * https://protobuf.dev/reference/protobuf/google.protobuf/#timestamp).
 */
const TIMESTAMP_SECONDS = { min: -62135596800, max: 253402300799 };

/** A Timestamp field as milliseconds (undefined when unset), refused when out of its range. */
function timestampMillis(msg: Message | undefined, path: string): number | undefined {
  if (!msg) return undefined;
  const seconds = int(msg, 'seconds');
  const nanos = int(msg, 'nanos');
  if (
    !Number.isInteger(seconds) ||
    seconds < TIMESTAMP_SECONDS.min ||
    seconds > TIMESTAMP_SECONDS.max
  ) {
    throw invalid(
      `${path}.seconds ${shown(String(msg['seconds']))} is out of range: a Timestamp is from ${TIMESTAMP_SECONDS.min} to ${TIMESTAMP_SECONDS.max} seconds (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)`,
    );
  }
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw invalid(`${path}.nanos ${nanos} is out of range: from 0 to 999999999`);
  }
  return millis(msg);
}

/**
 * The range of a google.protobuf.Duration (duration.proto: seconds "Must be from -315,576,000,000
 * to +315,576,000,000 inclusive"; nanos "Must be from -999,999,999 to +999,999,999 inclusive", and
 * "For durations of one second or more, a non-zero value for the nanos field must be of the same
 * sign as the seconds field";
 * https://cloud.google.com/java/docs/reference/protobuf/latest/com.google.protobuf.DurationOrBuilder).
 */
const DURATION_SECONDS = 315_576_000_000;

/** A Duration field as milliseconds (undefined when unset), refused when it is no valid Duration. */
function durationMillis(msg: Message | undefined, path: string): number | undefined {
  if (!msg) return undefined;
  const seconds = int(msg, 'seconds');
  const nanos = int(msg, 'nanos');
  if (
    !Number.isInteger(seconds) ||
    Math.abs(seconds) > DURATION_SECONDS ||
    !Number.isInteger(nanos) ||
    Math.abs(nanos) > 999_999_999 ||
    (seconds !== 0 && nanos !== 0 && Math.sign(seconds) !== Math.sign(nanos))
  ) {
    throw invalid(
      `${path} is not a valid Duration (seconds ${shown(String(msg['seconds']))}, nanos ${nanos}): seconds from -${DURATION_SECONDS} to ${DURATION_SECONDS}, nanos from -999999999 to 999999999 and of the sign of seconds`,
    );
  }
  return millis(msg);
}

/**
 * `ListTimeSeriesRequest.page_size` (metric_service.proto): "If `view` is set to `FULL`, this is
 * the maximum number of `Points` returned. If `view` is set to `HEADERS`, this is the maximum
 * number of `TimeSeries` returned", 100,000 when empty or larger.
 */
const MAX_TIME_SERIES_PAGE = 100_000;

/** Aggregation.alignment_period's maximum, 104 weeks (google/monitoring/v3/common.proto). */
const MAX_ALIGNMENT_PERIOD_MS = 104 * 7 * 24 * 60 * MINUTE_MS;

/**
 * A cache of what was computed at the current virtual time (and injected lag: what else changes
 * an answer), by a key of the caller's. Only one instant is kept: a step of the clock starts
 * afresh.
 */
function instantCache<T>(): (ctx: EmulatorContext) => Map<string, T> {
  const byContext = new WeakMap<EmulatorContext, { instant: string; entries: Map<string, T> }>();
  return (ctx) => {
    const instant = `${ctx.model.now}:${ctx.injector.extraLagMs}`;
    let memo = byContext.get(ctx);
    if (memo?.instant !== instant) {
      memo = { instant, entries: new Map() };
      byContext.set(ctx, memo);
    }
    return memo.entries;
  };
}

/** Answers already computed, by request (EmulatorSettings.memoizeMetrics). */
const answered = instantCache<TimeSeriesPage>();

interface TimeSeriesPage {
  timeSeries: Message[];
  nextPageToken: string;
}

function listTimeSeries(ctx: EmulatorContext, request: Message): Message {
  // With the test seam, the request is checked as every read is before the seam sees it (from the
  // first page: a raw answer's page tokens are its own, which the fleet's listing would not know).
  if (ctx.settings.answer) computeTimeSeries(ctx, { ...request, page_token: '' });
  return answerOf(ctx, 'ListTimeSeries', request, () => {
    let page: TimeSeriesPage;
    if (ctx.settings.memoizeMetrics) {
      const byRequest = answered(ctx);
      const requestKey = JSON.stringify(request);
      page = byRequest.get(requestKey) ?? computeTimeSeries(ctx, request);
      byRequest.set(requestKey, page);
    } else {
      page = computeTimeSeries(ctx, request);
    }
    const timeSeries = page.timeSeries.filter(() => !ctx.injector.dropSeries());
    return {
      time_series: timeSeries,
      next_page_token: page.nextPageToken,
      execution_errors: [],
      unit: unitOf(timeSeries),
    };
  });
}

/**
 * ListTimeSeriesResponse.unit (metric_service.proto): "The unit in which all `time_series` point
 * values are reported ... If different `time_series` have different units (for example, because
 * they come from different metric types, or a unit is absent), then `unit` will be
 * "{not_a_unit}"". A page without series reports none (Google does not say what it answers then).
 */
function unitOf(series: readonly Message[]): string {
  const units = new Set(series.map((s) => (typeof s['unit'] === 'string' ? s['unit'] : '')));
  if (units.size === 0) return '';
  const [only] = units;
  return units.size === 1 && only !== '' && only !== undefined ? only : '{not_a_unit}';
}

/** What a listing pages over: its series in order and, for FULL, their points newest first. */
interface Listing {
  series: Series[];
  points: { i: number; p: { at: number; value: Value } }[];
}

/** The listings whose first page was answered, by fingerprint, for the pages after it. */
const listings = instantCache<Listing>();

/**
 * The listing a request pages over. A first page computes it; a later page (a page_token) at the
 * same virtual time is cut from what its first page computed, rather than computing every series
 * again for each page: at 5,000 services a listing of 6 pages read the fleet's history 6 times.
 * Google documents no consistency between the pages of a listing (page_token,
 * ListTimeSeriesRequest:
 * https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#listtimeseriesrequest):
 * here a service created or deleted between two pages at the same virtual time shows from the
 * next listing on.
 */
function listingOf(
  ctx: EmulatorContext,
  paging: { pageToken: string; fingerprint: unknown },
  compute: () => Listing,
): Listing {
  const byQuery = listings(ctx);
  const query = JSON.stringify(paging.fingerprint);
  const known = paging.pageToken === '' ? undefined : byQuery.get(query);
  if (known) return known;
  const listing = compute();
  byQuery.set(query, listing);
  return listing;
}

function computeTimeSeries(ctx: EmulatorContext, request: Message): TimeSeriesPage {
  const name = text(request, 'name');
  const project = /^projects\/([^/]+)$/.exec(name)?.[1];
  // An organization or a folder is a valid scope too (ListTimeSeriesRequest.name in
  // metric_service.proto: projects/, organizations/ or folders/): not emulated, never refused.
  if (project === undefined && /^(organizations|folders)\/[^/]+$/.test(name))
    throw notEmulated(`ListTimeSeries on ${shown(name)}`, 'read each project (projects/{project})');
  if (project === undefined)
    throw invalid(
      `name must look like projects/{project}, organizations/{id} or folders/{id}, got "${shown(name)}"`,
    );
  requireFleetProject(ctx.model.fleet.projects, project, 'monitoring.timeSeries.list', name);
  const q = parseFilter(text(request, 'filter'));
  // A metric with no descriptor in the project (a logs-based metric never defined there): the
  // same refusal as for any unknown metric, not an empty answer.
  if (ctx.model.fleet.projects.find((p) => p.id === project)?.unknownMetrics.includes(q.metricType))
    throw invalid(
      `The provided filter doesn't refer to any known metric: "${shown(q.metricType)}" has no metric descriptor in project ${project}`,
    );
  const interval = field(request, 'interval');
  const endMs = timestampMillis(field(interval, 'end_time'), 'interval.end_time');
  if (endMs === undefined) throw invalid('interval.end_time is required');
  // Reads: "A half-open time interval. It includes the end time but excludes the start time:
  // (startTime, endTime]. The start time must be specified, must be earlier than the end time"
  // (TimeInterval in google/monitoring/v3/common.proto;
  // https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#timeinterval). The
  // field's own comment lets a start default to the end, which is for writes of GAUGE points: a
  // read without a start, or with start = end, is refused, the strict reading.
  const startMs = timestampMillis(field(interval, 'start_time'), 'interval.start_time');
  if (startMs === undefined) {
    throw invalid(
      'interval.start_time is required: a read interval is (start_time, end_time], the start earlier than the end',
    );
  }
  if (startMs >= endMs) {
    throw invalid(
      `interval.start_time must be earlier than interval.end_time (a read interval is (start_time, end_time]), got ${new Date(startMs).toISOString()} and ${new Date(endMs).toISOString()}`,
    );
  }
  // ListTimeSeriesRequest (google/monitoring/v3/metric_service.proto;
  // https://cloud.google.com/monitoring/api/ref_v3/rpc/google.monitoring.v3#listtimeseriesrequest):
  // `order_by` is "Unsupported: must be left blank", and `secondary_aggregation` "May only be
  // specified if `aggregation` is specified". Both are refused; a secondary aggregation after an
  // aggregation is valid and not computed here.
  if (text(request, 'order_by') !== '')
    throw invalid('order_by is unsupported by ListTimeSeries and must be left blank');
  if (field(request, 'secondary_aggregation')) {
    if (!field(request, 'aggregation'))
      throw invalid('secondary_aggregation may only be specified if aggregation is specified');
    throw notEmulated('secondary_aggregation');
  }
  const view = enumName(request, 'view', 'FULL', 'view');

  const { kind, valueType } = descriptor(q.metricType);
  const input = { kind, valueType };
  const aggregation = field(request, 'aggregation');
  const aligner = enumName(
    aggregation,
    'per_series_aligner',
    'ALIGN_NONE',
    'aggregation.per_series_aligner',
  );
  const reducer = enumName(
    aggregation,
    'cross_series_reducer',
    'REDUCE_NONE',
    'aggregation.cross_series_reducer',
  );
  // "If `cross_series_reducer` is not defined, this field is ignored" (Aggregation.group_by_fields
  // in google/monitoring/v3/common.proto): without a reducer the fields are neither checked nor used.
  const groupBy =
    reducer === 'REDUCE_NONE'
      ? []
      : strings(aggregation, 'group_by_fields').flatMap(
          (g) => normalizeGroupBy(g, q.metricType) ?? [],
        );
  let periodMs = 0;
  if (aligner === 'ALIGN_NONE') {
    if (reducer !== 'REDUCE_NONE')
      throw invalid('The aligner cannot be ALIGN_NONE if a cross-series reducer is specified');
  } else {
    // Checked before any data is read, as Monitoring checks the request against the metric's
    // descriptor: an invalid pair is refused even when no series matches.
    const alignRule = ALIGNERS[aligner];
    if (!alignRule) throw invalid(`per_series_aligner ${aligner} is not an Aligner`);
    checkFits('aligner', aligner, alignRule, input);
    const aligned = outputOf(alignRule, input);
    if (reducer !== 'REDUCE_NONE') {
      const reduceRule = REDUCERS[reducer];
      if (!reduceRule) throw invalid(`cross_series_reducer ${reducer} is not a Reducer`);
      checkFits('reducer', reducer, reduceRule, aligned);
    }
    // "The value must be at least 60 seconds. If a per-series aligner other than `ALIGN_NONE` is
    // specified, this field is required or an error is returned" (Aggregation.alignment_period,
    // common.proto). A valid period that is not whole minutes is Google's to serve, not the
    // emulator's (its points are per minute): UNIMPLEMENTED, never a refusal Google would not make.
    const period = durationMillis(
      field(aggregation, 'alignment_period'),
      'aggregation.alignment_period',
    );
    if (period === undefined || period < MINUTE_MS) {
      throw invalid(
        'aggregation.alignment_period is required with a per_series_aligner other than ALIGN_NONE, and must be at least 60s',
      );
    }
    // "The maximum value of the alignment_period is 104 weeks (2 years) for charts, and 90,000
    // seconds (25 hours) for alerting policies" (the same comment): a read is held to the larger.
    if (period > MAX_ALIGNMENT_PERIOD_MS) {
      throw invalid(
        `aggregation.alignment_period of ${period / 1000}s is above the maximum of 104 weeks (${MAX_ALIGNMENT_PERIOD_MS / 1000}s)`,
      );
    }
    if (
      !COMPUTED_ALIGNERS.has(aligner) ||
      (reducer !== 'REDUCE_NONE' && !COMPUTED_REDUCERS.has(reducer))
    ) {
      throw new RpcError(
        status.UNIMPLEMENTED,
        `${aligner}${reducer === 'REDUCE_NONE' ? '' : ` with ${reducer}`} is valid on Cloud Monitoring but not computed by the emulator (aligners: ${[...COMPUTED_ALIGNERS].join(', ')}; reducers: ${[...COMPUTED_REDUCERS].join(', ')})`,
      );
    }
    if (period % MINUTE_MS !== 0) {
      throw new RpcError(
        status.UNIMPLEMENTED,
        `aggregation.alignment_period of ${period / 1000}s is valid on Cloud Monitoring but not computed by the emulator: it aligns whole minutes only`,
      );
    }
    periodMs = period;
  }

  const paging = listPaging(
    request,
    ctx,
    ['ListTimeSeries', name, text(request, 'filter'), startMs, endMs, aggregation ?? null, view],
    { defaultPageSize: MAX_TIME_SERIES_PAGE, maxPageSize: MAX_TIME_SERIES_PAGE },
  );

  const { series, points } = listingOf(ctx, paging, () => {
    let series = rawSeries(ctx, project, q, startMs, endMs);
    if (aligner !== 'ALIGN_NONE') {
      series = series.map((s) => alignSeries(s, aligner, periodMs, endMs));
      if (reducer !== 'REDUCE_NONE') series = reduceSeries(series, reducer, groupBy);
    }
    // Each series' key is written once, not at each comparison of the sort.
    const sortKey = new Map(
      series.map((s) => [s, JSON.stringify([s.resource, s.metric])] as const),
    );
    series = series
      .filter((s) => s.points.length > 0)
      .sort((a, b) => compareText(sortKey.get(a) ?? '', sortKey.get(b) ?? ''));
    // FULL pages over points: a series whose points do not all fit continues on the next page,
    // with the same labels (the client must merge it).
    const points =
      view === 'HEADERS'
        ? []
        : series.flatMap((s, i) =>
            [...s.points].sort((a, b) => b.at - a.at).map((p) => ({ i, p })),
          );
    return { series, points };
  });
  let timeSeries: Message[];
  let nextPageToken: string;
  if (view === 'HEADERS') {
    const paged = paginate(series, paging);
    timeSeries = paged.page.map((s) => toProto(s, q.metricType, []));
    nextPageToken = paged.nextPageToken;
  } else {
    const paged = paginate(points, paging);
    timeSeries = [];
    let current: { i: number; points: { at: number; value: Value }[] } | undefined;
    for (const { i, p } of paged.page) {
      if (current?.i !== i) {
        if (current)
          timeSeries.push(toProto(series[current.i] as Series, q.metricType, current.points));
        current = { i, points: [] };
      }
      current.points.push(p);
    }
    if (current)
      timeSeries.push(toProto(series[current.i] as Series, q.metricType, current.points));
    nextPageToken = paged.nextPageToken;
  }
  return { timeSeries, nextPageToken };
}

export function monitoringHandlers(ctx: EmulatorContext): Handlers {
  return {
    ListTimeSeries: (request) => listTimeSeries(ctx, request),
    CreateTimeSeries: (request) =>
      ctx.customMetrics.createTimeSeries(request, {
        fleet: ctx.model.fleet.projects,
        nowMs: ctx.model.now,
      }),
  };
}
