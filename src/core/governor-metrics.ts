import type { Plan } from './plan.js';
import { samePool } from './pool.js';
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
 * | `pool/caps`           | INT64  | region, accelerator, zonal_redundancy           | governed caps in GPUs after this run's writes         |
 * | `pool/in_use`         | INT64  | region, accelerator, zonal_redundancy           | GPUs the governed services had in use                 |
 * | `pool/demand`         | INT64  | region, accelerator, zonal_redundancy           | GPUs the governed services are estimated to need      |
 * | `service/cap`         | INT64  | region, accelerator, zonal_redundancy, service  | the service's cap in GPUs after this run              |
 * | `service/refused`     | INT64  | region, accelerator, zonal_redundancy, service  | GPUs of its estimated demand its cap leaves out       |
 * | `run/writes`          | INT64  | outcome (written, skipped, failed)              | max-instances writes of this run                      |
 * | `run/duration`        | DOUBLE | (none)                                          | seconds from the run's start to this write            |
 *
 * `run/duration` is written by every run that gets this far, so its absence means the governor has
 * stopped running: the Terraform module's alert policy watches it.
 */

export const METRIC_PREFIX = 'custom.googleapis.com/gpu_governor/';

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
  'run/writes',
  'run/duration',
] as const;
export type GovernorMetric = (typeof GOVERNOR_METRICS)[number];

const WRITE_OUTCOMES = ['written', 'skipped', 'failed'] as const;

export function governorMetrics(
  project: string,
  plan: Plan,
  writes: readonly WriteResult[],
  durationSeconds: number,
): GovernorMetricPoint[] {
  const points: GovernorMetricPoint[] = [];
  const int = (metric: GovernorMetric, labels: Record<string, string>, value: number) =>
    points.push({ metric, labels, valueType: 'INT64', value: Math.round(value) });
  /** The cap each service of the project has after the run: what was written, else as it was. */
  const capAfter = new Map<string, number>();
  for (const s of plan.services) {
    if (s.project !== project) continue;
    const w = writes.find(
      (x) => x.project === project && x.region === s.region && x.name === s.name,
    );
    capAfter.set(`${s.region}/${s.name}`, w?.written ?? s.from);
  }
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
    const caps = members.reduce(
      (a, s) => a + (capAfter.get(`${s.region}/${s.name}`) ?? s.from) * s.gpusPerInstance,
      0,
    );
    int('pool/caps', labels, caps);
    int('pool/in_use', labels, p.inUse);
    int('pool/demand', labels, p.demand);
    for (const s of members) {
      const cap = capAfter.get(`${s.region}/${s.name}`) ?? s.from;
      const service = { ...labels, service: s.name };
      int('service/cap', service, cap * s.gpusPerInstance);
      const short = s.demand === null ? 0 : Math.max(0, s.demand - cap) * s.gpusPerInstance;
      int('service/refused', service, short);
    }
  }
  const mine = writes.filter((w) => w.project === project);
  for (const outcome of WRITE_OUTCOMES)
    int('run/writes', { outcome }, mine.filter((w) => w.outcome === outcome).length);
  points.push({
    metric: 'run/duration',
    labels: {},
    valueType: 'DOUBLE',
    value: Math.max(0, durationSeconds),
  });
  return points;
}
