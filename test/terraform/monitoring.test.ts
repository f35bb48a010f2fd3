import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GOVERNOR_METRICS, METRIC_PREFIX } from '../../src/core/governor-metrics.js';
import { block, type Body, type Config, loadConfig, resource } from './hcl.js';

/**
 * terraform/monitoring.tf and terraform/dashboards/governor.json, read offline: the governor's
 * dashboard and its not-running alert policy, on the metrics the governor writes.
 */

let module: Config;
beforeAll(async () => {
  module = await loadConfig('terraform');
});

/** The labels each metric carries (src/core/governor-metrics.ts). */
const POOL = ['region', 'accelerator', 'zonal_redundancy'];
const LABELS: Record<string, string[]> = {
  'pool/quota': POOL,
  'pool/budget': POOL,
  'pool/caps': POOL,
  'pool/in_use': POOL,
  'pool/demand': POOL,
  'service/cap': [...POOL, 'service'],
  'service/refused': [...POOL, 'service'],
  'unit/writes': ['unit', 'outcome'],
  'unit/duration': ['unit'],
};

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
      // GAUGE INT64/DOUBLE points: aligned per run (5 min), by a numeric aligner and reducer.
      expect(f.aggregation['alignmentPeriod']).toBe('300s');
      expect(f.aggregation['perSeriesAligner']).toBe('ALIGN_MAX');
      expect(['REDUCE_MAX', 'REDUCE_SUM']).toContain(f.aggregation['crossSeriesReducer']);
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
      'metric.type="${local.run_metric}" AND resource.type="global" AND resource.labels.project_id="${each.key}"',
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
