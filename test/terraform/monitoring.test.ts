import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GOVERNOR_METRIC_KIND,
  GOVERNOR_METRICS,
  governorMetrics,
  METRIC_PREFIX,
} from '../../src/core/governor-metrics.js';
import type { Plan } from '../../src/core/plan.js';
import { block, type Body, type Config, evaluateCondition, loadConfig, resource } from './hcl.js';

/**
 * terraform/monitoring.tf and terraform/dashboards/governor.json, read offline: the governor's
 * dashboard and its not-running alert policy, on the metrics the governor writes.
 */

let module: Config;
let org: Config;
beforeAll(async () => {
  [module, org] = await Promise.all([
    loadConfig('terraform'),
    loadConfig('terraform/organization'),
  ]);
});

/**
 * What the governor writes, as src/core/governor-metrics.ts writes it: the points of a run of a
 * whole project with one pool whose quota is known and one managed service, so that every metric
 * has a point. A label or a value type renamed in the code is renamed here.
 */
const WRITTEN = (() => {
  const where = {
    project: 'p',
    region: 'us-east1',
    accelerator: 'nvidia-l4',
    zonalRedundancy: false,
  };
  const plan = {
    pools: [{ ...where, quota: 8, budget: 8, inUse: 1, demand: 3 }],
    services: [
      { ...where, name: 's', managed: true, gpusPerInstance: 1, from: 1, to: 2, demand: 3 },
    ],
    changes: [],
  } as unknown as Plan;
  const out = new Map<string, { labels: string[]; valueType: string }>();
  for (const p of governorMetrics('p', plan, [], 1)) {
    const seen = { labels: Object.keys(p.labels), valueType: p.valueType };
    // Every point of a metric carries the same labels: its descriptor is made from the first.
    const before = out.get(p.metric);
    if (before) expect([...before.labels].sort(), p.metric).toEqual([...seen.labels].sort());
    if (before) expect(before.valueType, p.metric).toBe(seen.valueType);
    out.set(p.metric, seen);
  }
  return out;
})();

/** The labels each metric carries. */
const LABELS: Record<string, string[]> = Object.fromEntries(
  [...WRITTEN].map(([metric, w]) => [metric, w.labels]),
);
/** The pool's labels: those every pool/* metric carries. */
const POOL = LABELS['pool/quota'] ?? [];

/**
 * Whether Monitoring takes an aligner then a cross-series reducer on a metric of that kind and
 * value type (google/monitoring/v3/common.proto, Aggregation.Aligner and Reducer:
 * https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Monitoring.V3/latest/Google.Cloud.Monitoring.V3.Aggregation.Types.Aligner):
 * ALIGN_MAX, ALIGN_MIN and ALIGN_MEAN are "valid for GAUGE and DELTA metrics with numeric values",
 * ALIGN_SUM for GAUGE and DELTA "with numeric and distribution values"; ALIGN_DELTA and ALIGN_RATE
 * are for CUMULATIVE and DELTA metrics only, so never for a GAUGE. REDUCE_MAX, REDUCE_MIN and
 * REDUCE_MEAN are "valid for DELTA and GAUGE metrics with numeric values", REDUCE_SUM with
 * numeric and distribution values. Only the pairs the modules use are listed: another is refused.
 */
function validAggregation(kind: string, valueType: string, aligner: unknown, reducer: unknown) {
  const numeric = valueType === 'INT64' || valueType === 'DOUBLE';
  const aligners: Record<string, boolean> = {
    ALIGN_MAX: numeric && (kind === 'GAUGE' || kind === 'DELTA'),
    ALIGN_SUM: (numeric || valueType === 'DISTRIBUTION') && (kind === 'GAUGE' || kind === 'DELTA'),
  };
  // The aligners above keep the kind and value type: the reducer sees what the metric has.
  const reducers: Record<string, boolean> = {
    REDUCE_MAX: numeric && (kind === 'GAUGE' || kind === 'DELTA'),
    REDUCE_SUM: (numeric || valueType === 'DISTRIBUTION') && (kind === 'GAUGE' || kind === 'DELTA'),
  };
  return (
    aligners[String(aligner)] === true &&
    (reducer === undefined || reducers[String(reducer)] === true)
  );
}

interface Tile {
  xPos?: number;
  yPos?: number;
  width: number;
  height: number;
  widget: Record<string, unknown> & { title: string };
}

const dashboard = JSON.parse(readFileSync('terraform/dashboards/governor.json', 'utf8')) as {
  displayName: string;
  dashboardFilters?: { filterType: string; labelKey: string; stringValue?: string }[];
  mosaicLayout: { columns: number; tiles: Tile[] };
};

/** Every timeSeriesFilter of the dashboard, with the title of its tile. */
function filters(): { title: string; filter: string; aggregation: Record<string, unknown> }[] {
  const out: { title: string; filter: string; aggregation: Record<string, unknown> }[] = [];
  const visit = (value: unknown, title: string) => {
    if (Array.isArray(value)) value.forEach((v) => visit(v, title));
    else if (typeof value === 'object' && value !== null) {
      const body = value as Record<string, unknown>;
      const f = body['timeSeriesFilter'] as {
        filter: string;
        aggregation: Record<string, unknown>;
      };
      if (f) out.push({ title, filter: f.filter, aggregation: f.aggregation });
      for (const v of Object.values(body)) visit(v, title);
    }
  };
  for (const t of dashboard.mosaicLayout.tiles) visit(t.widget, t.widget.title);
  return out;
}

describe('the dashboard (dashboards/governor.json)', () => {
  it('is a mosaic layout whose tiles fit its columns and do not overlap', () => {
    const { columns, tiles } = dashboard.mosaicLayout;
    // MosaicLayout.columns: from 1 to 12 (dashboard v1 layouts.proto; the REST reference allows 48).
    expect(columns).toBeGreaterThanOrEqual(1);
    expect(columns).toBeLessThanOrEqual(12);
    const taken = new Set<string>();
    for (const t of tiles) {
      const x = t.xPos ?? 0;
      const y = t.yPos ?? 0;
      expect(t.width).toBeGreaterThanOrEqual(1);
      expect(t.height).toBeGreaterThanOrEqual(1);
      expect(x + t.width, t.widget.title).toBeLessThanOrEqual(columns);
      for (let i = x; i < x + t.width; i++)
        for (let j = y; j < y + t.height; j++) {
          expect(taken.has(`${i},${j}`), `${t.widget.title} overlaps at ${i},${j}`).toBe(false);
          taken.add(`${i},${j}`);
        }
      // A widget is one kind of widget, with a title.
      const kinds = Object.keys(t.widget).filter((k) => k !== 'title');
      expect(kinds, t.widget.title).toHaveLength(1);
      expect(['xyChart', 'scorecard', 'text']).toContain(kinds[0]);
    }
  });

  it('charts every metric the governor writes: per pool quota vs caps vs in use vs demand, refused, writes, run health', () => {
    const used = new Set<string>();
    for (const f of filters()) {
      const type = /metric\.type="([^"]+)"/.exec(f.filter)?.[1] ?? '';
      expect(type.startsWith(METRIC_PREFIX), f.filter).toBe(true);
      const metric = type.slice(METRIC_PREFIX.length);
      expect(GOVERNOR_METRICS as readonly string[]).toContain(metric);
      expect(f.filter).toContain('resource.type="global"');
      used.add(metric);
      // Aligned per run (5 min), by an aligner and reducer Monitoring takes for what is written.
      expect(f.aggregation['alignmentPeriod']).toBe('300s');
      const written = WRITTEN.get(metric);
      expect(written, metric).toBeDefined();
      expect(
        validAggregation(
          GOVERNOR_METRIC_KIND,
          written?.valueType ?? '',
          f.aggregation['perSeriesAligner'],
          f.aggregation['crossSeriesReducer'],
        ),
        `${f.title}: ${metric}`,
      ).toBe(true);
      for (const g of (f.aggregation['groupByFields'] as string[] | undefined) ?? []) {
        const label = /^metric\.label\.([a-z_]+)$/.exec(g)?.[1];
        expect(LABELS[metric], `${metric} grouped by ${g}`).toContain(label);
      }
    }
    expect([...used].sort()).toEqual([...GOVERNOR_METRICS].sort());
    const pools = dashboard.mosaicLayout.tiles.find((t) =>
      /quota vs caps vs in use vs demand/.test(t.widget.title),
    );
    expect(pools).toBeDefined();
    const titles = dashboard.mosaicLayout.tiles.map((t) => t.widget.title).join(' | ');
    expect(titles).toMatch(/Refused/);
    expect(titles).toMatch(/Writes/);
    expect(titles).toMatch(/Run health/);
  });
});

describe('what the dashboard names, against what the governor writes', () => {
  it('names in each legend only labels its series carry after their grouping', () => {
    const sets: { title: string; legend: string; filter: string; groupBy?: string[] }[] = [];
    for (const t of dashboard.mosaicLayout.tiles) {
      const chart = t.widget['xyChart'] as
        | {
            dataSets: {
              legendTemplate?: string;
              timeSeriesQuery: {
                timeSeriesFilter: { filter: string; aggregation: { groupByFields?: string[] } };
              };
            }[];
          }
        | undefined;
      for (const d of chart?.dataSets ?? []) {
        const f = d.timeSeriesQuery.timeSeriesFilter;
        sets.push({
          title: t.widget.title,
          legend: d.legendTemplate ?? '',
          filter: f.filter,
          ...(f.aggregation.groupByFields ? { groupBy: f.aggregation.groupByFields } : {}),
        });
      }
    }
    expect(sets.length).toBeGreaterThan(0);
    for (const d of sets) {
      const metric = (/metric\.type="([^"]+)"/.exec(d.filter)?.[1] ?? '').slice(
        METRIC_PREFIX.length,
      );
      // A legend's ${label_name} resolves to the label's value: one the series lacks, or that a
      // reducer dropped, shows empty.
      for (const [, label] of d.legend.matchAll(/\$\{metric\.labels\.([a-z_]+)\}/g)) {
        expect(LABELS[metric], `${d.title}: ${metric} has no ${label}`).toContain(label);
        if (d.groupBy) expect(d.groupBy, `${d.title}: ${label}`).toContain(`metric.label.${label}`);
      }
      expect(d.legend, d.title).not.toMatch(/\$\{(?!metric\.labels\.)/);
    }
  });

  it('has the series per pool, service and unit the README prices, and no label that grows with the runs', () => {
    const where = { project: 'p', region: 'r', accelerator: 'a', zonalRedundancy: false };
    const plan = (pools: number, services: number) =>
      ({
        pools: Array.from({ length: pools }, (_, i) => ({
          ...where,
          region: `r${i}`,
          quota: 1,
          budget: 1,
          inUse: 0,
          demand: 0,
        })),
        services: Array.from({ length: services }, (_, i) => ({
          ...where,
          region: 'r0',
          name: `s${i}`,
          managed: true,
          gpusPerInstance: 1,
          from: 1,
          to: 1,
          demand: 1,
        })),
        changes: [],
      }) as unknown as Plan;
    const count = (pools: number, services: number) =>
      governorMetrics('p', plan(pools, services), [], 1).length;
    const perUnit = count(0, 0);
    const perPool = count(1, 0) - perUnit;
    const perService = count(1, 1) - count(1, 0);
    const readme = readFileSync('terraform/README.md', 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain(
      `${perPool} series per pool, ${perService} per governed service (label \`service\`) and ${perUnit} per unit`,
    );
    expect(readme).toContain(`100 services in 5 pools are ${count(5, 100)} series`);
    expect(readme).toContain(
      `1,000 services in 20 pools ${count(20, 1000).toLocaleString('en-US')} series`,
    );
    // Two runs of the same fleet write the same series: nothing in a label names the run.
    const series = (points: ReturnType<typeof governorMetrics>) =>
      points.map((p) => `${p.metric} ${JSON.stringify(p.labels)}`);
    expect(series(governorMetrics('p', plan(2, 3), [], 1))).toEqual(
      series(governorMetrics('p', plan(2, 3), [], 250)),
    );
  });

  it('filters on labels the governor writes', () => {
    const written = new Set(Object.values(LABELS).flat());
    for (const f of dashboard.dashboardFilters ?? []) {
      if (f.filterType === 'METRIC_LABEL') expect(written, f.labelKey).toContain(f.labelKey);
      // `global`'s only label (https://cloud.google.com/monitoring/api/resources#tag_global).
      else expect(f).toMatchObject({ filterType: 'RESOURCE_LABEL', labelKey: 'project_id' });
    }
  });

  it('watches, for a run, a metric written by every run, even one with nothing to write, with an aggregation Monitoring takes', () => {
    const runMetric = String(module.locals['run_metric']).replace('${local.metric_prefix}/', '');
    const empty = { pools: [], services: [], changes: [] } as unknown as Plan;
    expect(governorMetrics('p', empty, [], 0).map((p) => p.metric)).toContain(runMetric);
    const p = resource(module, 'google_monitoring_alert_policy', 'not_running');
    const aggregations = block(block(block(p, 'conditions'), 'condition_absent'), 'aggregations');
    expect(
      validAggregation(
        GOVERNOR_METRIC_KIND,
        WRITTEN.get(runMetric)?.valueType ?? '',
        aggregations?.['per_series_aligner'],
        aggregations?.['cross_series_reducer'],
      ),
    ).toBe(true);
  });

  // Google's metrics, as Google lists them (https://cloud.google.com/monitoring/api/metrics_gcp_p_z):
  // run.googleapis.com/request_count is DELTA INT64, pubsub.googleapis.com/subscription/
  // num_undelivered_messages GAUGE INT64.
  it.each([
    ['dispatch_not_running', 'condition_absent', 'run.googleapis.com/request_count', 'DELTA'],
    [
      'dead_letters',
      'condition_threshold',
      'pubsub.googleapis.com/subscription/num_undelivered_messages',
      'GAUGE',
    ],
  ])(
    "the organisation module's %s aggregates its metric as Monitoring takes it",
    (name, condition, metric, kind) => {
      const p = resource(org, 'google_monitoring_alert_policy', name);
      const c = block(block(p, 'conditions'), condition);
      expect(String(c?.['filter'])).toContain(`metric.type = "${metric}"`);
      const a = block(c, 'aggregations');
      expect(
        validAggregation(kind, 'INT64', a?.['per_series_aligner'], a?.['cross_series_reducer']),
      ).toBe(true);
    },
  );

  it('the check refuses what Monitoring refuses', () => {
    // ALIGN_RATE and ALIGN_DELTA are for CUMULATIVE and DELTA metrics; none takes a string.
    expect(validAggregation('GAUGE', 'INT64', 'ALIGN_RATE', undefined)).toBe(false);
    expect(validAggregation('GAUGE', 'DOUBLE', 'ALIGN_DELTA', undefined)).toBe(false);
    expect(validAggregation('CUMULATIVE', 'INT64', 'ALIGN_MAX', undefined)).toBe(false);
    expect(validAggregation('GAUGE', 'DISTRIBUTION', 'ALIGN_MAX', undefined)).toBe(false);
    expect(validAggregation('GAUGE', 'DISTRIBUTION', 'ALIGN_SUM', 'REDUCE_MAX')).toBe(false);
    expect(validAggregation('GAUGE', 'STRING', 'ALIGN_SUM', undefined)).toBe(false);
    expect(validAggregation('GAUGE', 'DOUBLE', 'ALIGN_MAX', 'REDUCE_SUM')).toBe(true);
  });
});

describe('the dashboard’s unit charts', () => {
  it('draw each unit of a project apart, and sum the writes of all of them', () => {
    const unit = filters().filter((f) => f.filter.includes('gpu_governor/unit/'));
    expect(unit.length).toBeGreaterThan(0);
    const line = unit.find((f) => /Run health/.test(f.title));
    expect(line?.aggregation['groupByFields']).toEqual(['metric.label.unit']);
    const writes = unit.find((f) => /Writes/.test(f.title));
    expect(writes?.aggregation).toMatchObject({
      crossSeriesReducer: 'REDUCE_SUM',
      groupByFields: ['metric.label.outcome'],
    });
    // The pool filters (region, accelerator, zonal redundancy) are no labels of theirs.
    for (const label of POOL) {
      expect(LABELS['unit/writes']).not.toContain(label);
      expect(LABELS['unit/duration']).not.toContain(label);
    }
  });
});

describe('the dashboard’s pool filters', () => {
  // Pinned filters (Dashboard.dashboardFilters, FilterType METRIC_LABEL): a filter applies to every
  // widget whose data has its label and whose query sets no value for it
  // (https://cloud.google.com/monitoring/dashboards/filter-permanent).
  it('lets a reader pick one pool: region, accelerator and zonal redundancy, all pools by default', () => {
    expect(dashboard.dashboardFilters?.filter((f) => f.filterType === 'METRIC_LABEL')).toEqual(
      POOL.map((labelKey) => ({ filterType: 'METRIC_LABEL', labelKey })),
    );
  });

  it('applies to every pool and service chart: they carry the labels and fix none of them', () => {
    const byTitle = new Map<string, string[]>();
    for (const f of filters()) {
      const metric = /gpu_governor\/([a-z_/]+)"/.exec(f.filter)?.[1] ?? '';
      byTitle.set(f.title, [...(byTitle.get(f.title) ?? []), metric]);
      for (const label of POOL) expect(f.filter, f.title).not.toContain(`metric.label.${label}`);
      // A pool or service metric keeps the pool's labels through its grouping, so the filter applies.
      if (metric.startsWith('pool/') || metric.startsWith('service/')) {
        expect(f.aggregation['groupByFields'], `${f.title}: ${metric}`).toEqual(
          expect.arrayContaining(POOL.map((l) => `metric.label.${l}`)),
        );
      }
    }
    const pools = [...byTitle].filter(([, metrics]) => metrics.some((m) => m.startsWith('pool/')));
    expect(pools.length).toBeGreaterThan(0);
    const about = dashboard.mosaicLayout.tiles.find(
      (t) => t.widget.title === 'About this dashboard',
    );
    expect(JSON.stringify(about?.widget)).toContain('filters at the top');
  });
});

describe('one project’s dashboard and policy, whatever its metrics scope', () => {
  // A dashboard or an alert policy reads every project of its project's metrics scope: "When you
  // create an alerting policy in the scoping project for that metrics scope, the policy monitors
  // the metrics in the three projects" (https://cloud.google.com/monitoring/settings). The
  // governor writes the same metric types in every governed project, on `global`, whose only
  // label is project_id: without naming the project, a project whose scope holds another governed
  // project would chart both projects' pools as one (the max of two quotas, the sum of two
  // projects' writes) and its policy would page, under its own name, for the other's stop.
  it('the JSON file has a project filter, all projects by default, as its only resource filter', () => {
    expect(dashboard.dashboardFilters?.filter((f) => f.filterType === 'RESOURCE_LABEL')).toEqual([
      { filterType: 'RESOURCE_LABEL', labelKey: 'project_id' },
    ]);
    // Every chart's data carries it (`global`'s project_id) and no widget fixes it, so it applies
    // to all of them (https://cloud.google.com/monitoring/dashboards/filter-permanent).
    for (const f of filters()) {
      expect(f.filter, f.title).toContain('resource.type="global"');
      expect(f.filter, f.title).not.toContain('project_id');
    }
  });

  it('the module sets that filter to the project the dashboard is in', () => {
    const d = resource(module, 'google_monitoring_dashboard', 'governor');
    const json = String(d['dashboard_json']);
    // The file's filters but its project filter, then that one with the project as its value.
    expect(json).toContain(
      '[for f in local.dashboard.dashboardFilters : f if f.labelKey != "project_id"]',
    );
    expect(json).toMatch(
      /\[\{ ?filterType = "RESOURCE_LABEL", labelKey = "project_id", stringValue = each\.key ?\}\]/,
    );
    expect(module.locals['dashboard']).toBe(
      '${jsondecode(file("${path.module}/dashboards/governor.json"))}',
    );
  });

  it("the not-running policy judges its own project's runs only", () => {
    const p = resource(module, 'google_monitoring_alert_policy', 'not_running');
    const absent = block(block(p, 'conditions'), 'condition_absent');
    expect(String(absent?.['filter'])).toContain('resource.labels.project_id="${each.key}"');
  });
});

describe('the latest run’s scorecard', () => {
  // unit/duration is the seconds from a run's start to its metrics, which it writes once its
  // writes are done; it stops starting writes at its run deadline (function.run_deadline,
  // GOVERNOR_RUN_DEADLINE). The scorecard's yellow says "near the run deadline": it must follow
  // the deadline the function runs with, not the default's 240 s whatever the deadline.
  const scorecard = () =>
    dashboard.mosaicLayout.tiles.find((t) => t.widget['scorecard'] !== undefined)?.widget[
      'scorecard'
    ] as { thresholds: { value: number; label: string }[] } | undefined;
  const warning = (runDeadline: string) => {
    const seconds = evaluateCondition(String(module.locals['run_deadline_seconds']), {
      function: { run_deadline: runDeadline },
    });
    return evaluateCondition(String(module.locals['latest_run_warning']), {
      local: { run_deadline_seconds: seconds },
    });
  };

  it('turns yellow at five sixths of the run deadline the module gives the function', () => {
    expect(scorecard()?.thresholds).toHaveLength(1);
    expect(scorecard()?.thresholds[0]?.label).toBe('near the run deadline');
    // The file, read alone, is right for the default deadline.
    const defaultDeadline = /run_deadline\s*=\s*optional\(string, "(\d+s)"\)/.exec(
      String(module.variables.get('function')?.['type']),
    )?.[1];
    expect(defaultDeadline).toBe('240s');
    expect(scorecard()?.thresholds[0]?.value).toBe(warning('240s'));
    expect(warning('4m')).toBe(200);
    expect(warning('60s')).toBe(50);
    expect(warning('1700s')).toBe(1416);
    expect(module.text.get('main.tf')).toContain(
      'GOVERNOR_RUN_DEADLINE         = var.function.run_deadline',
    );
  });

  it('the module writes that threshold into the dashboard it creates', () => {
    const tiles = String(module.locals['dashboard_tiles']);
    expect(tiles).toContain('value = local.latest_run_warning');
    // Every tile is kept: the others as they are, the scorecard with its threshold set.
    expect(tiles).toMatch(
      /\[for t in local\.dashboard\.mosaicLayout\.tiles : t if try\(t\.widget\.scorecard, null\) == null\]/,
    );
    expect(tiles).toMatch(/if try\(t\.widget\.scorecard, null\) != null\]/);
    const d = resource(module, 'google_monitoring_dashboard', 'governor');
    expect(String(d['dashboard_json'])).toMatch(
      /mosaicLayout\s*=\s*merge\(local\.dashboard\.mosaicLayout, \{ ?tiles = local\.dashboard_tiles ?\}\)/,
    );
  });
});

describe('the not-running policy against the schedule', () => {
  // A metric-absence condition is met when a series has had no point for its duration
  // (https://cloud.google.com/monitoring/alerts/metric-absence). Between two healthy runs' points
  // lie the schedule's gap, and up to the run deadline more (a quick run, then one that runs to
  // its deadline before it writes its metrics): a shorter absence fires between healthy runs.
  const gap = (schedule: string) =>
    evaluateCondition(String(module.locals['schedule_gap_minutes']), { schedule });
  const accepted = (schedule: string, minutes: number, runDeadline = '240s') => {
    const p = resource(module, 'google_monitoring_alert_policy', 'not_running');
    const conditions = (block(p, 'lifecycle')?.['precondition'] as Body[] | undefined) ?? [];
    expect(conditions.length).toBeGreaterThan(0);
    const seconds = evaluateCondition(String(module.locals['run_deadline_seconds']), {
      function: { run_deadline: runDeadline },
    });
    return conditions.every(
      (c) =>
        evaluateCondition(String(c['condition']), {
          monitoring: { not_running_minutes: minutes },
          local: { schedule_gap_minutes: gap(schedule), run_deadline_seconds: seconds },
        }) === true,
    );
  };

  it('reads the gap of the schedules whose gap is plain, and no other', () => {
    expect(gap('*/5 * * * *')).toBe(5);
    expect(gap(' */30  * * * * ')).toBe(30);
    expect(gap('* * * * *')).toBe(1);
    expect(gap('0 * * * *')).toBe(60);
    expect(gap('*/90 * * * *')).toBe(60);
    // Hours, days, lists and ranges: not read, so not checked.
    expect(gap('*/5 9-17 * * *')).toBeNull();
    expect(gap('0,30 * * * *')).toBeNull();
    expect(gap('0 */2 * * *')).toBeNull();
  });

  it('refuses at plan time an absence no longer than a healthy gap', () => {
    expect(accepted('*/5 * * * *', 20)).toBe(true);
    expect(accepted('*/15 * * * *', 20)).toBe(true);
    expect(accepted('*/15 * * * *', 20, '300s')).toBe(false);
    expect(accepted('*/30 * * * *', 20)).toBe(false);
    expect(accepted('0 * * * *', 20)).toBe(false);
    expect(accepted('0 * * * *', 65)).toBe(true);
    expect(accepted('0 9 * * 1-5', 20)).toBe(true);
    const p = resource(module, 'google_monitoring_alert_policy', 'not_running');
    const message = String(
      ((block(p, 'lifecycle')?.['precondition'] as Body[] | undefined) ?? [])[0]?.['error_message'],
    );
    expect(message).toContain('monitoring.not_running_minutes');
    expect(message).toContain('schedule');
  });
});

describe('monitoring.tf', () => {
  it('creates the dashboard from the JSON file in each governed project', () => {
    const d = resource(module, 'google_monitoring_dashboard', 'governor');
    expect(d['for_each']).toBe('${var.monitoring.dashboard ? local.governed_projects : toset([])}');
    expect(d['project']).toBe('${each.key}');
    expect(String(d['dashboard_json'])).toContain('merge(local.dashboard, {');
  });

  it('adds an alert policy on the absence of the run metric, in every unit of a project, for N minutes', () => {
    const p = resource(module, 'google_monitoring_alert_policy', 'not_running');
    expect(p['for_each']).toBe(
      '${var.monitoring.not_running_minutes == null ? toset([]) : local.governed_projects}',
    );
    expect(p['combiner']).toBe('OR');
    const condition = block(p, 'conditions');
    const absent = block(condition, 'condition_absent');
    expect(absent?.['filter']).toBe(
      'metric.type="${google_monitoring_metric_descriptor.run[each.key].type}" AND resource.type="global" AND resource.labels.project_id="${each.key}"',
    );
    expect(resource(module, 'google_monitoring_metric_descriptor', 'run')['type']).toBe(
      '${local.run_metric}',
    );
    expect(module.locals['run_metric']).toBe('${local.metric_prefix}/unit/duration');
    expect(GOVERNOR_METRICS).toContain('unit/duration');
    // Absence is judged per series, and the run metric has one per unit (`unit`): they are
    // combined into one per project first, so a project that stops being split (or starts) does
    // not leave a series without points that reads as "not running".
    const aggregations = block(absent, 'aggregations');
    expect(aggregations).toMatchObject({
      alignment_period: '300s',
      per_series_aligner: 'ALIGN_MAX',
      cross_series_reducer: 'REDUCE_MAX',
      group_by_fields: ['resource.label.project_id'],
    });
    expect(JSON.stringify(aggregations)).not.toContain('metric.label');
    // The README tells how late that window makes the policy: the same 300 s.
    const readme = readFileSync('terraform/README.md', 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain('a 5-minute rolling window (`alignment_period` 300 s');
    expect(module.locals['metric_prefix']).toBe(METRIC_PREFIX.replace(/\/$/, ''));
    expect(absent?.['duration']).toBe('${var.monitoring.not_running_minutes * 60}s');
    expect(block(absent, 'trigger')?.['count']).toBe(1);
    expect(p['notification_channels']).toBe('${var.monitoring.notification_channels}');
    expect(block(p, 'documentation')?.['mime_type']).toBe('text/markdown');
  });

  it('defaults to a dashboard and a 20-minute policy, bounded as Monitoring bounds an absence', () => {
    const v = module.variables.get('monitoring') as Body;
    expect(String(v['type'])).toContain('not_running_minutes   = optional(number, 20)');
    expect(String(v['type'])).toContain('dashboard             = optional(bool, true)');
    expect(v['default']).toEqual({});
    const validation = (v['validation'] as Body[])[0];
    expect(String(validation?.['condition'])).toContain('<= 1410');
  });
});

// Monitoring refuses an alert policy on a user-defined metric that has no descriptor yet ("Error
// 404: Cannot find metric(s) that match type", on a metric written only by a function:
// https://github.com/world-federation-of-advertisers/cross-media-measurement/issues/4350), and the
// governor's first write creates the run metric's descriptor only at its first run, after the
// apply. The provider's own example creates the descriptor beside the policy that watches it
// (https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/monitoring_metric_descriptor,
// "Monitoring Metric Descriptor Alert").
describe('the run metric exists before the policy that watches it', () => {
  it('creates the descriptor of the run metric in every governed project, as the governor writes it', () => {
    const runMetric = String(module.locals['run_metric']).replace('${local.metric_prefix}/', '');
    const d = resource(module, 'google_monitoring_metric_descriptor', 'run');
    expect(d['for_each']).toBe('${local.governed_projects}');
    expect(d['project']).toBe('${each.key}');
    expect(d['type']).toBe('${local.run_metric}');
    expect(d['metric_kind']).toBe(GOVERNOR_METRIC_KIND);
    expect(d['value_type']).toBe(WRITTEN.get(runMetric)?.valueType);
    // A write whose labels the descriptor does not declare is refused: the same keys, STRING.
    const labels = (d['labels'] ?? []) as Body[];
    expect(labels.map((l) => l['key']).sort()).toEqual([...(LABELS[runMetric] ?? [])].sort());
    for (const l of labels) expect(l['value_type']).toBe('STRING');
    // Nothing the governor's own first write would not give it: no unit, no metadata.
    expect(d['unit']).toBeUndefined();
    expect(d['metadata']).toBeUndefined();
  });

  it('the not-running policy names the metric through its descriptor, so that the descriptor comes first', () => {
    const p = resource(module, 'google_monitoring_alert_policy', 'not_running');
    const absent = block(block(p, 'conditions'), 'condition_absent');
    expect(String(absent?.['filter'])).toContain(
      'metric.type="${google_monitoring_metric_descriptor.run[each.key].type}"',
    );
  });
});
