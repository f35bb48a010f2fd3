import { capsAsLeft, poolCapsAsLeft } from './as-left.js';
import type { Plan } from './plan.js';
import { samePool } from './pool.js';
import { serviceKey } from './snapshot.js';
import type { WriteResult } from './write-result.js';

/**
 * The governor's own figures, written once per run per project as custom metrics so that platform
 * teams see them in Cloud Monitoring (the dashboard in terraform/dashboards/governor.json).
 * Every metric is a GAUGE under {@link METRIC_PREFIX}, on the `global` monitored resource:
 *
 * | metric                | value  | labels                                          | what                                                  |
 * | --------------------- | ------ | ----------------------------------------------- | ----------------------------------------------------- |
 * | `pool/quota`          | INT64  | region, accelerator, zonal_redundancy           | the pool's GPU quota (absent when unknown)            |
 * | `pool/budget`         | INT64  | region, accelerator, zonal_redundancy           | quota − reserve − unmanaged (absent when unknown)     |
 * | `pool/caps`           | INT64  | region, accelerator, zonal_redundancy           | governed caps in GPUs the run's writes left in force |
 * | `pool/in_use`         | INT64  | region, accelerator, zonal_redundancy           | GPUs the governed services had in use                 |
 * | `pool/demand`         | INT64  | region, accelerator, zonal_redundancy           | GPUs the governed services are estimated to need      |
 * | `service/cap`         | INT64  | region, accelerator, zonal_redundancy, service  | the service's cap in GPUs after this run              |
 * | `service/refused`     | INT64  | region, accelerator, zonal_redundancy, service  | GPUs of its estimated demand its cap leaves out       |
 * | `unit/writes`         | INT64  | unit, outcome (written, skipped, failed)        | max-instances writes of this unit's run               |
 * | `unit/duration`       | DOUBLE | unit                                            | seconds from the run's start to this write            |
 *
 * The pool and service metrics carry their pool's region. The two `unit/*` metrics carry `unit`,
 * which unit ran (src/core/units.ts): a regional unit's region, or {@link WHOLE_PROJECT_UNIT}
 * (`project`) for a run of the whole project. Monitoring takes one point per 5 s per time series
 * ("one point each 5 seconds", Cloud Monitoring quotas and limits:
 * https://cloud.google.com/monitoring/quotas), so without it two regional units of one project
 * that end within 5 s of each other wrote the same series and the second's points were refused.
 * The label is not `region`: the dashboard's region filter applies to every chart whose series
 * carry a `region` label (https://cloud.google.com/monitoring/dashboards/filter-permanent), and
 * picking a pool's region must not hide the runs of a project governed whole. The value is never
 * empty: "All labels listed in the `MetricDescriptor` must be assigned values"
 * (google/api/metric.proto, Metric.labels) and Google documents nothing on an empty value, so the
 * governor does not rely on one; `project` is no region name (core/units.ts REGION_NAME), so it
 * never meets a regional unit's series.
 *
 * They are new metric types, not the `run/writes` and `run/duration` of earlier versions with a
 * label added: "Once a metric descriptor is created, deleting or altering it stops data collection
 * and makes the metric type's existing data unusable" (google/api/metric.proto, MetricDescriptor;
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.metricDescriptors); the one
 * documented way to add a label, CreateMetricDescriptor ("updated if it already exists, except that
 * metric labels are never removed"), "is executed asynchronously" (metric_service.proto) and needs
 * `monitoring.metricDescriptors.create`, which the governor's roles do not grant; and what a write
 * with a label the existing descriptor lacks does is not documented. A new type's descriptor
 * is created by its first write, with "the labels that appear in the Metric object"
 * (https://cloud.google.com/monitoring/custom-metrics/creating-metrics#auto-creation), so every
 * point of a metric carries the same labels. The old types get no more points.
 *
 * `unit/duration` is written by every run that gets this far, so its absence across all of a
 * project's units means the governor has stopped governing it: the Terraform module's alert policy
 * watches it, taken over every `unit` (terraform/monitoring.tf).
 */

export const METRIC_PREFIX = 'custom.googleapis.com/gpu_governor/';

/** The kind of every metric the governor writes: one instant's value a point. */
export const GOVERNOR_METRIC_KIND = 'GAUGE';

/** One figure of the governor's own: a point of the custom metric `METRIC_PREFIX + metric`. */
export interface GovernorMetricPoint {
  /** The metric after the prefix, e.g. "pool/quota". */
  metric: string;
  /** Metric labels: region, accelerator, zonal_redundancy, service, as the metric has them. */
  labels: Record<string, string>;
  valueType: 'INT64' | 'DOUBLE';
  value: number;
}

export const GOVERNOR_METRICS = [
  'pool/quota',
  'pool/budget',
  'pool/caps',
  'pool/in_use',
  'pool/demand',
  'service/cap',
  'service/refused',
  'unit/writes',
  'unit/duration',
] as const;
type GovernorMetric = (typeof GOVERNOR_METRICS)[number];

const WRITE_OUTCOMES = ['written', 'skipped', 'failed'] as const;

/** The `unit` label of the `unit/*` metrics for a run of a whole project (not one region of it). */
export const WHOLE_PROJECT_UNIT = 'project';

/**
 * The points of one project's run. `unitRegion`: the region of a regional unit; absent for a run
 * of the whole project.
 */
export function governorMetrics(
  project: string,
  plan: Plan,
  writes: readonly WriteResult[],
  durationSeconds: number,
  unitRegion?: string,
): GovernorMetricPoint[] {
  const unit = { unit: unitRegion ?? WHOLE_PROJECT_UNIT };
  const points: GovernorMetricPoint[] = [];
  const int = (metric: GovernorMetric, labels: Record<string, string>, value: number) =>
    points.push({ metric, labels, valueType: 'INT64', value: Math.round(value) });
  // The caps the writes left (core/as-left.ts): a raise lowered back is told at its lowered cap.
  const capAfter = capsAsLeft(plan, project, writes);
  for (const p of plan.pools) {
    if (p.project !== project) continue;
    const labels = {
      region: p.region,
      accelerator: p.accelerator,
      zonal_redundancy: String(p.zonalRedundancy),
    };
    if (p.quota !== null) int('pool/quota', labels, p.quota);
    if (p.budget !== null) int('pool/budget', labels, p.budget);
    const members = plan.services.filter((s) => s.managed && samePool(s, p));
    const caps = poolCapsAsLeft(plan, p, capAfter);
    int('pool/caps', labels, caps);
    int('pool/in_use', labels, p.inUse);
    int('pool/demand', labels, p.demand);
    for (const s of members) {
      const cap = capAfter.get(serviceKey(s)) ?? s.from;
      const service = { ...labels, service: s.name };
      int('service/cap', service, cap * s.gpusPerInstance);
      const short = s.demand === null ? 0 : Math.max(0, s.demand - cap) * s.gpusPerInstance;
      int('service/refused', service, short);
    }
  }
  const mine = writes.filter((w) => w.project === project);
  for (const outcome of WRITE_OUTCOMES)
    int('unit/writes', { ...unit, outcome }, mine.filter((w) => w.outcome === outcome).length);
  points.push({
    metric: 'unit/duration',
    labels: unit,
    valueType: 'DOUBLE',
    value: Math.max(0, durationSeconds),
  });
  return points;
}
