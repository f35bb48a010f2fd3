import { status } from '@grpc/grpc-js';
import type { EmulatorContext } from './context.js';
import { gpusPerInstance, MINUTE_MS, type MinuteSample, type ServiceState } from './model.js';
import {
  field,
  int,
  invalid,
  millis,
  paginate,
  RpcError,
  strings,
  text,
  timestamp,
  type Message,
} from './rpc.js';
import type { Handlers } from './run-api.js';

/**
 * Cloud Monitoring v3 `ListTimeSeries`, for the Cloud Run revision metrics a governor reads:
 * `run.googleapis.com/container/instance_count` (label `state`: active | idle, INT64 gauge) and
 * `run.googleapis.com/container/gpu/utilizations` (a DOUBLE gauge here, 0..1; a distribution on
 * Google Cloud). One raw point per revision per minute while the revision has instances; points
 * become visible `metricsLagMs` after their minute. Anything outside this is INVALID_ARGUMENT.
 */

export const INSTANCE_COUNT = 'run.googleapis.com/container/instance_count';
export const GPU_UTILIZATIONS = 'run.googleapis.com/container/gpu/utilizations';
const RESOURCE_TYPE = 'cloud_run_revision';
const RESOURCE_LABELS = [
  'project_id',
  'service_name',
  'revision_name',
  'configuration_name',
  'location',
] as const;
const ALIGNERS = ['ALIGN_MEAN', 'ALIGN_MAX', 'ALIGN_MIN', 'ALIGN_SUM'] as const;
const REDUCERS = ['REDUCE_SUM', 'REDUCE_MAX', 'REDUCE_MIN', 'REDUCE_MEAN'] as const;
type Aligner = (typeof ALIGNERS)[number];
type Reducer = (typeof REDUCERS)[number];

interface Query {
  metricType: string;
  resourceLabels: Map<string, string>;
  metricLabels: Map<string, string>;
}

interface Series {
  resource: Record<string, string>;
  metric: Record<string, string>;
  valueType: 'INT64' | 'DOUBLE';
  /** Oldest first while computing. */
  points: { at: number; value: number }[];
}

const TERM = /^\s*([a-z_.]+)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*$/;

export function parseFilter(filter: string): Query {
  if (filter.trim() === '')
    throw invalid(
      'filter is required, e.g. metric.type = "run.googleapis.com/container/instance_count"',
    );
  if (
    /\b(OR|NOT)\b|[()]|!=|:|\b(starts_with|ends_with|has_substring|one_of|monitoring\.regex)\b/.test(
      filter.replace(/"[^"]*"|'[^']*'/g, '""'),
    )
  ) {
    throw invalid(
      `filter "${filter}" is not supported by the emulator: use only terms key = "value" joined by AND (metric.type, resource.type, resource.labels.*, metric.labels.state)`,
    );
  }
  let metricType: string | undefined;
  const resourceLabels = new Map<string, string>();
  const metricLabels = new Map<string, string>();
  for (const term of filter.split(/\s+AND\s+/)) {
    const m = TERM.exec(term);
    if (!m) throw invalid(`filter term "${term.trim()}" is not supported: expected key = "value"`);
    const key = m[1] ?? '';
    const value = m[2] ?? m[3] ?? '';
    if (key === 'metric.type') {
      if (metricType !== undefined) throw invalid('filter names metric.type twice');
      metricType = value;
      continue;
    }
    if (key === 'resource.type') {
      if (value !== RESOURCE_TYPE) {
        throw invalid(
          `resource.type "${value}" is not served by the emulator: only "${RESOURCE_TYPE}"`,
        );
      }
      continue;
    }
    const resource = /^resource\.labels?\.([a-z_]+)$/.exec(key);
    if (resource) {
      const label = resource[1] ?? '';
      if (!(RESOURCE_LABELS as readonly string[]).includes(label)) {
        throw invalid(
          `resource label "${label}" does not exist on ${RESOURCE_TYPE} (labels: ${RESOURCE_LABELS.join(', ')})`,
        );
      }
      resourceLabels.set(label, value);
      continue;
    }
    const metric = /^metric\.labels?\.([a-z_]+)$/.exec(key);
    if (metric && metric[1] === 'state') {
      metricLabels.set('state', value);
      continue;
    }
    throw invalid(`filter key "${key}" is not supported by the emulator`);
  }
  if (metricType === undefined) throw invalid('filter must name exactly one metric.type');
  if (metricType !== INSTANCE_COUNT && metricType !== GPU_UTILIZATIONS) {
    throw invalid(
      `metric.type "${metricType}" is not served by the emulator (only ${INSTANCE_COUNT} and ${GPU_UTILIZATIONS})`,
    );
  }
  if (metricType === GPU_UTILIZATIONS && metricLabels.size > 0)
    throw invalid(`${GPU_UTILIZATIONS} has no metric label "state"`);
  return { metricType, resourceLabels, metricLabels };
}

function normalizeGroupBy(fieldName: string, metricType: string): string {
  const resource = /^resource\.labels?\.([a-z_]+)$/.exec(fieldName);
  if (resource && (RESOURCE_LABELS as readonly string[]).includes(resource[1] ?? ''))
    return `resource.${resource[1]}`;
  const metric = /^metric\.labels?\.([a-z_]+)$/.exec(fieldName);
  if (metric && metric[1] === 'state' && metricType === INSTANCE_COUNT) return 'metric.state';
  throw invalid(
    `group_by_fields "${fieldName}" is not supported (resource.label.{${RESOURCE_LABELS.join(',')}}, metric.label.state)`,
  );
}

function rawSeries(
  ctx: EmulatorContext,
  project: string,
  q: Query,
  startMs: number,
  endMs: number,
): Series[] {
  const visibleUntil = ctx.model.now - ctx.settings.metricsLagMs - ctx.injector.extraLagMs;
  const out: Series[] = [];
  const services: ServiceState[] = ctx.model
    .listServices()
    .filter(
      (s) => s.project === project && (q.metricType !== GPU_UTILIZATIONS || gpusPerInstance(s) > 0),
    );
  for (const s of services) {
    const byRevision = new Map<string, MinuteSample[]>();
    for (const row of ctx.model.history(s)) {
      if (row.at > visibleUntil || row.at < startMs || row.at > endMs) continue;
      if (row.active + row.idle === 0) continue; // scaled to zero: Cloud Run writes nothing
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
      const matches = [...q.resourceLabels].every(([k, v]) => resource[k] === v);
      if (!matches) continue;
      if (q.metricType === GPU_UTILIZATIONS) {
        out.push({
          resource,
          metric: {},
          valueType: 'DOUBLE',
          points: rows.map((r) => ({ at: r.at, value: r.utilization })),
        });
        continue;
      }
      for (const state of ['active', 'idle'] as const) {
        if (q.metricLabels.has('state') && q.metricLabels.get('state') !== state) continue;
        out.push({
          resource,
          metric: { state },
          valueType: 'INT64',
          points: rows.map((r) => ({ at: r.at, value: r[state] })),
        });
      }
    }
  }
  return out;
}

function align(values: number[], aligner: Aligner): number {
  switch (aligner) {
    case 'ALIGN_MAX':
      return Math.max(...values);
    case 'ALIGN_MIN':
      return Math.min(...values);
    case 'ALIGN_SUM':
      return values.reduce((a, b) => a + b, 0);
    case 'ALIGN_MEAN':
      return values.reduce((a, b) => a + b, 0) / values.length;
  }
}

function reduce(values: number[], reducer: Reducer): number {
  switch (reducer) {
    case 'REDUCE_MAX':
      return Math.max(...values);
    case 'REDUCE_MIN':
      return Math.min(...values);
    case 'REDUCE_SUM':
      return values.reduce((a, b) => a + b, 0);
    case 'REDUCE_MEAN':
      return values.reduce((a, b) => a + b, 0) / values.length;
  }
}

/** Buckets (end - (k+1)P, end - kP] for k = 0, 1, ...; a point is stamped with its bucket's end. */
function alignSeries(series: Series, aligner: Aligner, periodMs: number, endMs: number): Series {
  const buckets = new Map<number, number[]>();
  for (const p of series.points) {
    const k = Math.floor((endMs - p.at) / periodMs);
    const bucketEnd = endMs - k * periodMs;
    const list = buckets.get(bucketEnd) ?? [];
    list.push(p.value);
    buckets.set(bucketEnd, list);
  }
  const valueType = series.valueType === 'INT64' && aligner !== 'ALIGN_MEAN' ? 'INT64' : 'DOUBLE';
  const points = [...buckets]
    .sort(([a], [b]) => a - b)
    .map(([at, values]) => ({ at, value: align(values, aligner) }));
  return { ...series, valueType, points };
}

function reduceSeries(all: Series[], reducer: Reducer, groupBy: string[]): Series[] {
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
    const byTime = new Map<number, number[]>();
    for (const m of members)
      for (const p of m.points) byTime.set(p.at, [...(byTime.get(p.at) ?? []), p.value]);
    const int = members.every((m) => m.valueType === 'INT64') && reducer !== 'REDUCE_MEAN';
    return {
      resource,
      metric,
      valueType: int ? 'INT64' : 'DOUBLE',
      points: [...byTime]
        .sort(([a], [b]) => a - b)
        .map(([at, values]) => ({ at, value: reduce(values, reducer) })),
    };
  });
}

function toProto(s: Series, metricType: string, withPoints: boolean): Message {
  return {
    metric: { type: metricType, labels: s.metric },
    resource: { type: RESOURCE_TYPE, labels: s.resource },
    metric_kind: 'GAUGE',
    value_type: s.valueType,
    unit: metricType === GPU_UTILIZATIONS ? '10^2.%' : '1',
    points: withPoints
      ? [...s.points]
          .sort((a, b) => b.at - a.at)
          .map((p) => ({
            interval: { start_time: timestamp(p.at), end_time: timestamp(p.at) },
            value:
              s.valueType === 'INT64'
                ? { int64_value: String(Math.round(p.value)) }
                : { double_value: p.value },
          }))
      : [],
  };
}

function enumName(msg: Message | undefined, name: string, fallback: string): string {
  const v = msg?.[name];
  return typeof v === 'string' && v !== '' ? v : fallback;
}

function listTimeSeries(ctx: EmulatorContext, request: Message): Message {
  const name = text(request, 'name');
  const project = /^projects\/([^/]+)$/.exec(name)?.[1];
  if (project === undefined) throw invalid(`name must look like projects/{project}, got "${name}"`);
  if (!ctx.model.fleet.projects.some((p) => p.id === project)) {
    throw new RpcError(
      status.PERMISSION_DENIED,
      `Permission monitoring.timeSeries.list denied on project ${project} (not in the emulated fleet)`,
    );
  }
  const q = parseFilter(text(request, 'filter'));
  const interval = field(request, 'interval');
  const endMs = millis(field(interval, 'end_time'));
  if (endMs === undefined) throw invalid('interval.end_time is required');
  const startMs = millis(field(interval, 'start_time')) ?? endMs;
  if (startMs > endMs) throw invalid('interval.start_time is after interval.end_time');
  if (field(request, 'secondary_aggregation'))
    throw invalid('secondary_aggregation is not supported by the emulator');
  if (text(request, 'order_by') !== '') throw invalid('order_by is not supported by the emulator');
  const view = enumName(request, 'view', 'FULL');

  let series = rawSeries(ctx, project, q, startMs, endMs);
  const aggregation = field(request, 'aggregation');
  const aligner = enumName(aggregation, 'per_series_aligner', 'ALIGN_NONE');
  const reducer = enumName(aggregation, 'cross_series_reducer', 'REDUCE_NONE');
  const groupBy = strings(aggregation, 'group_by_fields').map((g) =>
    normalizeGroupBy(g, q.metricType),
  );
  if (aligner === 'ALIGN_NONE') {
    if (reducer !== 'REDUCE_NONE')
      throw invalid('The aligner cannot be ALIGN_NONE if a cross-series reducer is specified');
    if (groupBy.length > 0)
      throw invalid('group_by_fields needs a per_series_aligner and a cross_series_reducer');
  } else {
    if (!(ALIGNERS as readonly string[]).includes(aligner)) {
      throw invalid(
        `per_series_aligner ${aligner} is not supported by the emulator (${ALIGNERS.join(', ')})`,
      );
    }
    const periodMs = millis(field(aggregation, 'alignment_period'));
    if (periodMs === undefined || periodMs < MINUTE_MS || periodMs % MINUTE_MS !== 0) {
      throw invalid('aggregation.alignment_period must be a whole number of minutes, at least 60s');
    }
    series = series.map((s) => alignSeries(s, aligner as Aligner, periodMs, endMs));
    if (reducer !== 'REDUCE_NONE') {
      if (!(REDUCERS as readonly string[]).includes(reducer)) {
        throw invalid(
          `cross_series_reducer ${reducer} is not supported by the emulator (${REDUCERS.join(', ')}, REDUCE_NONE)`,
        );
      }
      series = reduceSeries(series, reducer as Reducer, groupBy);
    } else if (groupBy.length > 0) {
      throw invalid('group_by_fields needs a cross_series_reducer other than REDUCE_NONE');
    }
  }
  series = series
    .filter((s) => s.points.length > 0)
    .sort((a, b) =>
      JSON.stringify([a.resource, a.metric]).localeCompare(JSON.stringify([b.resource, b.metric])),
    );
  const { page, nextPageToken } = paginate(series, {
    pageSize: int(request, 'page_size'),
    pageToken: text(request, 'page_token'),
    defaultPageSize: ctx.settings.pageSize,
    fingerprint: [
      'ListTimeSeries',
      name,
      text(request, 'filter'),
      startMs,
      endMs,
      aggregation ?? null,
      view,
    ],
  });
  return {
    time_series: page
      .filter(() => !ctx.injector.dropSeries())
      .map((s) => toProto(s, q.metricType, view !== 'HEADERS')),
    next_page_token: nextPageToken,
    execution_errors: [],
    unit: '',
  };
}

export function monitoringHandlers(ctx: EmulatorContext): Handlers {
  return { ListTimeSeries: (request) => listTimeSeries(ctx, request) };
}
