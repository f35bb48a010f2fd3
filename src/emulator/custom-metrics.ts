import { compareText } from '../core/pool.js';
import { BoundedLog } from './bounded-log.js';
import {
  field,
  invalid,
  isMessage,
  millis,
  requireFleetProject,
  RpcError,
  stringMap,
  text,
  type Message,
  shown,
} from './rpc.js';

/**
 * Cloud Monitoring v3 `CreateTimeSeries` for user-defined (custom) metrics, with the checks Google
 * documents, so that a write the emulator accepts is one Google accepts:
 *
 * - metric_service.proto, CreateTimeSeriesRequest (the REST page:
 *   https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/create): "Adds at
 *   most one data point to each of several time series. The new data point must be more recent
 *   than any other point in its time series"; every TimeSeries fully specified; "The maximum
 *   number of TimeSeries objects per Create request is 200".
 * - metric.proto, TimeSeries (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/TimeSeries):
 *   when creating, `points` "must contain exactly one point"; `metric_kind`, when set, is the
 *   descriptor's, and a descriptor auto-created by the write is "either GAUGE (the default) or
 *   CUMULATIVE" (so never DELTA); `value_type`, when set, is the point's; the point's type is the
 *   descriptor's, and an auto-created descriptor takes it, which "must be BOOL, INT64, DOUBLE, or
 *   DISTRIBUTION" (so never STRING).
 * - common.proto, TimeInterval, and Point.interval: the end time at most 25 hours in the past and
 *   five minutes in the future; "For GAUGE metrics, the start time is optional, but if it is
 *   supplied, it must equal the end time"; a CUMULATIVE point's start time is before its end time.
 * - Cloud Monitoring quotas and limits (https://cloud.google.com/monitoring/quotas, user-defined
 *   metrics): "one point each 5 seconds" per time series (the page said 10 seconds before, and
 *   Google's own OpenTelemetry samples still space their exports 20 s apart citing it; the governor
 *   writes once per run, minutes apart, so either holds); 30 labels per metric descriptor; label
 *   keys of at most 100 characters, values of at most 1,024. A point that comes too soon is
 *   refused with Google's words, "One or more points were written more frequently than the maximum
 *   sampling period configured for the metric".
 * - Creating user-defined metrics
 *   (https://cloud.google.com/monitoring/custom-metrics/creating-metrics): types under
 *   `custom.googleapis.com/`; label keys start with a lower-case letter, then lower-case letters,
 *   digits and underscores; the monitored resource is one of the types listed there (the emulator
 *   knows `global`, `generic_task` and `generic_node`) with all its labels.
 *
 * - Labels (google/api/metric.proto, shipped in google-gax): a descriptor created by a write takes
 *   "the labels that appear in the Metric object" (creating-metrics, auto-creation), and "All labels
 *   listed in the `MetricDescriptor` must be assigned values" (Metric.labels), so a write that
 *   leaves out one of the descriptor's labels is refused. Where Google says nothing the emulator
 *   refuses, so that the governor never relies on it: a label the existing descriptor lacks (the
 *   one documented way to add one is CreateMetricDescriptor, "executed asynchronously"; altering
 *   a descriptor "stops data collection and makes the metric type's existing data unusable") and
 *   an empty label value.
 *
 * As on Google, the series that pass are written even when others in the same request fail; the
 * call then answers INVALID_ARGUMENT naming each failed series.
 */

const CUSTOM_PREFIX = 'custom.googleapis.com/';
/**
 * The most points the emulator keeps, over all series: the oldest are dropped first. Google keeps
 * a custom metric's points for its retention period, then deletes them, and deletes a series once
 * all its points have expired (https://cloud.google.com/monitoring/api/v3/latency-n-retention);
 * the emulator cannot hold months of them: a governor writing about a hundred series every 5
 * minutes made it grow by some 15 KiB a run, without end. 100,000 points are some 20 MiB.
 */
export const MAX_KEPT_POINTS = 100_000;
const MAX_SERIES_PER_REQUEST = 200;
const MIN_POINT_SPACING_MS = 5_000;
const MAX_PAST_MS = 25 * 3_600_000;
const MAX_FUTURE_MS = 5 * 60_000;
const MAX_LABELS = 30;
const LABEL_KEY = /^[a-z][a-z0-9_]{0,99}$/;
const MAX_LABEL_VALUE = 1024;
const METRIC_TYPE = /^custom\.googleapis\.com\/[A-Za-z0-9_./-]{1,180}$/;

/** The monitored resources user-defined metrics may use (those the emulator knows), and their labels. */
const RESOURCES: Readonly<Record<string, readonly string[]>> = {
  global: ['project_id'],
  generic_task: ['project_id', 'location', 'namespace', 'job', 'task_id'],
  generic_node: ['project_id', 'location', 'namespace', 'node_id'],
};

type Kind = 'GAUGE' | 'CUMULATIVE';
type ValueType = 'BOOL' | 'INT64' | 'DOUBLE' | 'DISTRIBUTION';

interface CustomMetricDescriptor {
  readonly type: string;
  readonly metricKind: Kind;
  readonly valueType: ValueType;
  /** The metric label keys, sorted: those of the write that created it. */
  readonly labels: readonly string[];
}

/** One point as written: its end time (ISO) and value (a number, a boolean, or a distribution). */
export interface WrittenPoint {
  readonly at: string;
  readonly startAt: string | null;
  readonly value: number | boolean | Message;
}

/** A custom time series as the emulator holds it. */
export interface WrittenSeries {
  readonly project: string;
  readonly metric: { readonly type: string; readonly labels: Readonly<Record<string, string>> };
  readonly resource: { readonly type: string; readonly labels: Readonly<Record<string, string>> };
  readonly metricKind: Kind;
  readonly valueType: ValueType;
  readonly points: WrittenPoint[];
}

/** The custom metrics written to the emulator: descriptors (auto-created) and series. */
export class CustomMetricStore {
  private readonly descriptors = new Map<string, CustomMetricDescriptor>();
  private readonly series = new Map<string, WrittenSeries>();
  /**
   * The series of every point kept, in the order written: a point dropped is the first of its
   * series (a series' points are written in order), and a series whose points are all dropped is
   * deleted, as Google deletes one whose points have all expired.
   */
  private readonly order: BoundedLog<string>;

  constructor(maxPoints = MAX_KEPT_POINTS) {
    this.order = new BoundedLog<string>(maxPoints, Infinity, (key) => {
      const series = this.series.get(key);
      series?.points.shift();
      if (series?.points.length === 0) this.series.delete(key);
    });
  }

  /** How many of the oldest points were dropped to keep within the bound. */
  get droppedPoints(): number {
    return this.order.dropped;
  }

  /** Every series written, oldest point first; only those of a metric type if given. */
  written(type?: string): WrittenSeries[] {
    return [...this.series.values()].filter((s) => type === undefined || s.metric.type === type);
  }

  /** `where`: the fleet's projects, and the virtual time the request is answered at. */
  createTimeSeries(
    request: Message,
    where: { fleet: readonly { readonly id: string }[]; nowMs: number },
  ): Message {
    const name = text(request, 'name');
    const project = /^projects\/([^/]+)$/.exec(name)?.[1];
    if (project === undefined)
      throw invalid(`name must look like projects/{project}, got "${shown(name)}"`);
    requireFleetProject(where.fleet, project, 'monitoring.timeSeries.create', name);
    const all = request['time_series'];
    const list = Array.isArray(all) ? all.filter(isMessage) : [];
    if (list.length === 0) throw invalid('time_series: at least one TimeSeries is required');
    if (list.length > MAX_SERIES_PER_REQUEST) {
      throw invalid(
        `time_series: ${list.length} TimeSeries in one request; the maximum is ${MAX_SERIES_PER_REQUEST}`,
      );
    }
    const nowMs = where.nowMs;
    // Each distinct failure once, with the other series it applies to: 200 series failing alike
    // would otherwise make a message past what a grpc-message trailer carries.
    const failures = new Map<string, number[]>();
    let failed = 0;
    const seen = new Set<string>();
    list.forEach((ts, i) => {
      try {
        this.writeOne(project, ts, nowMs, seen);
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        failed += 1;
        failures.set(e.message, [...(failures.get(e.message) ?? []), i]);
      }
    });
    if (failed > 0) {
      // Laid out as Google answers (its reference says nothing of the text; public reports quote
      // it): the reason first, then the resource, the indices (a run as a range) and the metric:
      // "One or more TimeSeries could not be written: One or more points were written more
      // frequently than the maximum sampling period configured for the metric.: prometheus_target{…}
      // timeSeries[0-199]: prometheus.googleapis.com/…{…}"
      // (https://github.com/GoogleCloudPlatform/prometheus-engine/issues/823,
      // https://github.com/google/ts-bridge/issues/7).
      const listed = [...failures].map(
        ([message, indices]) =>
          `${message}: ${seriesText(list[indices[0] ?? 0], 'resource')} timeSeries[${indexRuns(indices)}]: ${seriesText(list[indices[0] ?? 0], 'metric')}`,
      );
      throw invalid(
        `One or more TimeSeries could not be written: ${listed.join('; ')} (${list.length - failed} of ${list.length} written)`,
      );
    }
    return {};
  }

  private writeOne(project: string, ts: Message, nowMs: number, seen: Set<string>): void {
    const metric = field(ts, 'metric');
    const type = text(metric, 'type');
    if (!type.startsWith(CUSTOM_PREFIX)) {
      throw invalid(
        `metric.type "${shown(type)}" is not a user-defined metric: CreateTimeSeries writes custom.googleapis.com/ types only`,
      );
    }
    if (!METRIC_TYPE.test(type))
      throw invalid(`metric.type "${shown(type)}" is not a valid metric type`);
    const labels = stringMap(metric, 'labels');
    const keys = Object.keys(labels);
    if (keys.length > MAX_LABELS)
      throw invalid(
        `metric ${shown(type)} has ${keys.length} labels; the maximum is ${MAX_LABELS}`,
      );
    for (const k of keys) {
      if (!LABEL_KEY.test(k))
        throw invalid(`metric label key "${shown(k)}" is not a valid label key`);
      if ((labels[k] ?? '').length > MAX_LABEL_VALUE)
        throw invalid(`metric label ${shown(k)} is longer than ${MAX_LABEL_VALUE} characters`);
      if ((labels[k] ?? '') === '')
        throw invalid(`metric label ${shown(k)} has an empty value (the emulator refuses one)`);
    }
    const resource = field(ts, 'resource');
    const resourceType = text(resource, 'type');
    const wanted = RESOURCES[resourceType];
    if (!wanted) {
      throw invalid(
        `resource.type "${shown(resourceType)}" cannot hold user-defined metrics in the emulator (${Object.keys(RESOURCES).join(', ')})`,
      );
    }
    const resourceLabels = stringMap(resource, 'labels');
    const missing = wanted.filter((l) => !resourceLabels[l]);
    const extra = Object.keys(resourceLabels).filter((l) => !wanted.includes(l));
    if (missing.length > 0 || extra.length > 0) {
      throw invalid(
        `resource ${resourceType} must have exactly the labels ${wanted.join(', ')}${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; unknown ${shown(extra.join(', '))}` : ''}`,
      );
    }
    if (resourceLabels['project_id'] !== project) {
      throw invalid(
        `resource.labels.project_id "${shown(resourceLabels['project_id'] ?? '')}" is not the project of the request (${project})`,
      );
    }
    const points = Array.isArray(ts['points']) ? ts['points'].filter(isMessage) : [];
    if (points.length !== 1) {
      throw invalid(
        `points: a TimeSeries written must contain exactly one point, not ${points.length}`,
      );
    }
    const point = points[0] as Message;
    const { valueType, value } = pointValue(field(point, 'value'));
    const declaredType = enumText(ts, 'value_type');
    if (declaredType !== '' && declaredType !== valueType)
      throw invalid(`value_type ${declaredType} is not the type of the point (${valueType})`);
    const declaredKind = enumText(ts, 'metric_kind');
    const key = `${project} ${type}`;
    const descriptor = this.descriptors.get(key);
    let kind: Kind;
    if (descriptor) {
      if (declaredKind !== '' && declaredKind !== descriptor.metricKind) {
        throw invalid(
          `metric_kind ${declaredKind} is not the kind of ${shown(type)} (${descriptor.metricKind})`,
        );
      }
      if (valueType !== descriptor.valueType) {
        throw invalid(
          `Value type for metric ${shown(type)} must be ${descriptor.valueType}, but is ${valueType}`,
        );
      }
      const unknown = keys.filter((k) => !descriptor.labels.includes(k));
      const missing = descriptor.labels.filter((k) => !keys.includes(k));
      if (unknown.length > 0 || missing.length > 0) {
        throw invalid(
          `metric ${type} has the labels ${descriptor.labels.join(', ') || '(none)'}${missing.length ? `; missing ${missing.join(', ')}` : ''}${unknown.length ? `; not in its descriptor ${shown(unknown.join(', '))}` : ''}`,
        );
      }
      kind = descriptor.metricKind;
    } else {
      if (declaredKind !== '' && declaredKind !== 'GAUGE' && declaredKind !== 'CUMULATIVE') {
        throw invalid(
          `metric_kind ${declaredKind}: a descriptor created by a write must be GAUGE or CUMULATIVE`,
        );
      }
      kind = declaredKind === 'CUMULATIVE' ? 'CUMULATIVE' : 'GAUGE';
    }
    const interval = field(point, 'interval');
    const endMs = millis(field(interval, 'end_time'));
    if (endMs === undefined) throw invalid('points[0].interval.end_time is required');
    const startMs = millis(field(interval, 'start_time'));
    if (endMs < nowMs - MAX_PAST_MS)
      throw invalid('points[0].interval.end_time is more than 25 hours in the past');
    if (endMs > nowMs + MAX_FUTURE_MS)
      throw invalid('points[0].interval.end_time is more than five minutes in the future');
    if (kind === 'GAUGE' && startMs !== undefined && startMs !== endMs)
      throw invalid(
        'points[0].interval: a GAUGE point must have its start time equal to its end time',
      );
    if (kind === 'CUMULATIVE' && (startMs === undefined || startMs >= endMs))
      throw invalid(
        'points[0].interval: a CUMULATIVE point needs a start time before its end time',
      );
    const id = JSON.stringify([type, sorted(labels), resourceType, sorted(resourceLabels)]);
    if (seen.has(id)) {
      throw invalid(
        'Duplicate TimeSeries encountered. Only one point can be written per TimeSeries per request.',
      );
    }
    seen.add(id);
    const existing = this.series.get(`${project} ${id}`);
    const last = existing?.points.at(-1);
    if (last) {
      const lastMs = Date.parse(last.at);
      if (endMs <= lastMs) {
        throw invalid(
          `Points must be written in order. One or more of the points specified had an older start time than the most recent point (${last.at}).`,
        );
      }
      if (endMs - lastMs < MIN_POINT_SPACING_MS) {
        throw invalid(
          'One or more points were written more frequently than the maximum sampling period configured for the metric (one point each 5 seconds).',
        );
      }
    }
    if (!descriptor)
      this.descriptors.set(key, {
        type,
        metricKind: kind,
        valueType,
        labels: Object.keys(sorted(labels)),
      });
    const written: WrittenPoint = {
      at: new Date(endMs).toISOString(),
      startAt: startMs === undefined ? null : new Date(startMs).toISOString(),
      value,
    };
    const seriesKey = `${project} ${id}`;
    if (existing) existing.points.push(written);
    else {
      this.series.set(seriesKey, {
        project,
        metric: { type, labels: sorted(labels) },
        resource: { type: resourceType, labels: sorted(resourceLabels) },
        metricKind: kind,
        valueType,
        points: [written],
      });
    }
    this.order.add(seriesKey, 0);
  }
}

/** `0-3,7`: the indices, each run of consecutive ones as a range. */
function indexRuns(indices: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < indices.length;) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === (indices[j] ?? 0) + 1) j += 1;
    runs.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j + 1;
  }
  return runs.join(',');
}

/** `global{project_id:p}`: a series' resource or metric as Google's error text names it. */
function seriesText(ts: Message | undefined, which: 'resource' | 'metric'): string {
  const part = field(ts, which);
  const labels = Object.entries(stringMap(part, 'labels'))
    .map(([k, v]) => `${k}:${v}`)
    .join(',');
  return shown(`${text(part, 'type')}{${labels}}`);
}

function sorted(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => compareText(a, b)));
}

function enumText(msg: Message, name: string): string {
  const v = msg[name];
  return typeof v === 'string' && !v.endsWith('_UNSPECIFIED') ? v : '';
}

/** The point's TypedValue: which of its oneof is set, and the value. */
function pointValue(value: Message | undefined): {
  valueType: ValueType;
  value: number | boolean | Message;
} {
  if (!value) throw invalid('points[0].value is required');
  const which = typeof value['value'] === 'string' ? value['value'] : undefined;
  switch (which) {
    case 'bool_value':
      return { valueType: 'BOOL', value: value['bool_value'] === true };
    case 'int64_value':
      return { valueType: 'INT64', value: Number(value['int64_value'] ?? 0) };
    case 'double_value':
      return { valueType: 'DOUBLE', value: Number(value['double_value'] ?? 0) };
    case 'distribution_value': {
      const d = field(value, 'distribution_value');
      return { valueType: 'DISTRIBUTION', value: d ?? {} };
    }
    case 'string_value':
      throw invalid('points[0].value: a STRING point cannot be written to a metric');
    default:
      throw invalid('points[0].value: no value is set');
  }
}
