import * as echarts from 'echarts';
import type { PoolSeries, SimulationResult, StrategyResult } from './result.js';

/**
 * The report: one static HTML page, no script. Per pool, the governor's caps stacked under the
 * quota line with the demand and the refused demand over time, and every strategy's refused
 * GPU-minutes accumulated; then the comparison table. Charts are drawn by ECharts' server-side
 * SVG renderer, so the page opens anywhere, offline.
 */

const WIDTH = 1100;
const HEIGHT = 380;
/** Most points per series drawn; longer runs are averaged into buckets. */
const MAX_POINTS = 1440;

export interface ReportOptions {
  title?: string;
  /** One line on what was simulated (the policy, the fleet). */
  subtitle?: string;
}

function escape(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** Means over buckets of `size` minutes, stamped with the bucket's first minute. */
function bucket(values: readonly number[], startMs: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < values.length; i += size) {
    let sum = 0;
    let n = 0;
    for (let j = i; j < Math.min(values.length, i + size); j++) {
      sum += values[j] ?? 0;
      n += 1;
    }
    out.push([startMs + i * 60_000, Math.round((sum / Math.max(1, n)) * 100) / 100]);
  }
  return out;
}

function render(option: echarts.EChartsOption): string {
  const chart = echarts.init(null, null, {
    renderer: 'svg',
    ssr: true,
    width: WIDTH,
    height: HEIGHT,
  });
  try {
    chart.setOption({ animation: false, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

function capsChart(series: PoolSeries, startMs: number, size: number, refusedBy: string): string {
  const caps = series.services.map((name) => ({
    name: `cap ${name}`,
    type: 'line' as const,
    stack: 'caps',
    step: 'end' as const,
    symbol: 'none',
    lineStyle: { width: 0.5 },
    areaStyle: { opacity: 0.55 },
    data: bucket(series.caps[name] ?? [], startMs, size),
  }));
  const minutes = series.demand.length;
  return render({
    title: {
      text: `${series.pool}: governor caps, demand and refused demand`,
      left: 'center',
      textStyle: { fontSize: 14 },
    },
    legend: { top: 26, type: 'scroll' },
    grid: { top: 70, left: 60, right: 30, bottom: 40 },
    tooltip: { show: false },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', name: 'GPUs' },
    series: [
      ...caps,
      {
        name: 'quota',
        type: 'line',
        symbol: 'none',
        lineStyle: { color: '#000', width: 2, type: 'dashed' },
        data: [
          [startMs, series.quota],
          [startMs + (minutes - 1) * 60_000, series.quota],
        ],
      },
      {
        name: 'demand',
        type: 'line',
        symbol: 'none',
        lineStyle: { color: '#1f3b73', width: 1.5 },
        data: bucket(series.demand, startMs, size),
      },
      {
        name: `refused (${refusedBy})`,
        type: 'line',
        symbol: 'none',
        lineStyle: { color: '#d62728', width: 1 },
        areaStyle: { color: '#d62728', opacity: 0.5 },
        data: bucket(series.refused, startMs, size),
      },
    ],
  });
}

function cumulativeChart(
  pool: string,
  strategies: readonly StrategyResult[],
  startMs: number,
  size: number,
): string {
  const lines = strategies.flatMap((s) => {
    const series = s.series.find((p) => p.pool === pool);
    if (!series) return [];
    let sum = 0;
    const cumulative = series.refused.map((v) => (sum += v));
    const points: [number, number][] = [];
    for (let i = 0; i < cumulative.length; i += size)
      points.push([startMs + i * 60_000, cumulative[i] ?? 0]);
    points.push([startMs + (cumulative.length - 1) * 60_000, cumulative.at(-1) ?? 0]);
    return [
      {
        name: s.label,
        type: 'line' as const,
        symbol: 'none',
        lineStyle: { width: s.strategy === 'governor' ? 3 : 1.5 },
        data: points,
      },
    ];
  });
  return render({
    title: {
      text: `${pool}: refused GPU-minutes so far, by strategy`,
      left: 'center',
      textStyle: { fontSize: 14 },
    },
    legend: { top: 26 },
    grid: { top: 70, left: 70, right: 30, bottom: 40 },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', name: 'GPU-minutes' },
    series: lines,
  });
}

const fmt = (n: number | null, digits = 0): string =>
  n === null
    ? '—'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function comparisonTable(result: SimulationResult): string {
  const rows = result.strategies.map((s) => {
    const share = s.pools.filter((p) => p.shareError !== null);
    const shareError =
      share.length === 0 ? null : share.reduce((a, p) => a + (p.shareError ?? 0), 0) / share.length;
    const inversions = s.pools.reduce((a, p) => a + p.priorityInversions, 0);
    const over = s.pools.reduce((a, p) => a + p.capsOverQuotaMinutes, 0);
    return `<tr class="${s.strategy}"><th>${escape(s.label)}</th><td>${fmt(s.totals.refusedGpuMinutes)}</td><td>${fmt(s.totals.idleGpuMinutes)}</td><td>${fmt(s.totals.writesPerServiceHour, 2)}</td><td>${fmt(shareError, 3)}</td><td>${fmt(inversions)}</td><td>${fmt(over)}</td><td>${fmt(s.totals.invariantViolations)}</td></tr>`;
  });
  return `<table class="comparison"><thead><tr><th>strategy</th><th>refused GPU-min</th><th>idle GPU-min held</th><th>writes / service / h</th><th>share error under scarcity</th><th>priority inversions (min)</th><th>caps over quota (min)</th><th>invariant violations</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function servicesTable(result: SimulationResult, pool: string): string {
  const names =
    result.strategies[0]?.services.filter((s) => s.pool === pool).map((s) => s.name) ?? [];
  const head = result.strategies.map((s) => `<th>${escape(s.label)}</th>`).join('');
  const body = names.map((name) => {
    const cells = result.strategies.map((s) => {
      const m = s.services.find((x) => x.pool === pool && x.name === name);
      return `<td>${m ? `${fmt(m.refusedGpuMinutes)}${m.writes > 0 ? ` <small>(${m.writes} writes)</small>` : ''}` : '—'}</td>`;
    });
    const any = result.strategies[0]?.services.find((x) => x.pool === pool && x.name === name);
    return `<tr><th>${escape(name)} <small>p${any?.priority ?? 0} w${any?.weight ?? 1}</small></th><td>${fmt(any?.demandGpuMinutes ?? 0)}</td>${cells.join('')}</tr>`;
  });
  return `<table class="services"><thead><tr><th>service</th><th>demand GPU-min</th>${head}</tr></thead><tbody>${body.join('')}</tbody></table><p class="note">Refused GPU-minutes per service and strategy.</p>`;
}

export function renderReport(result: SimulationResult, options: ReportOptions = {}): string {
  const startMs = Date.parse(result.start);
  const size = Math.max(1, Math.ceil(result.minutes / MAX_POINTS));
  const governor = result.strategies.find((s) => s.strategy === 'governor') ?? result.strategies[0];
  const h = result.headline;
  const sections = (governor?.series ?? []).map((series) => {
    const points = series.demand.length;
    return `<section class="pool">
<h2>${escape(series.pool)}</h2>
<p>quota ${series.quota} GPUs (${series.available} for these services) · ${series.services.length} services</p>
<figure class="chart" data-chart="caps" data-pool="${escape(series.pool)}" data-points="${points}">${capsChart(series, startMs, size, governor?.label ?? 'governor')}</figure>
<figure class="chart" data-chart="refused" data-pool="${escape(series.pool)}" data-points="${points}">${cumulativeChart(series.pool, result.strategies, startMs, size)}</figure>
${servicesTable(result, series.pool)}
</section>`;
  });
  const title = options.title ?? `Governor simulation: ${result.label}`;
  const headline = h
    ? `<ul class="headline">
<li>Gap closed, (equal split − governor) ÷ (equal split − oracle): <b>${h.gapClosed === null ? 'no gap' : fmt(h.gapClosed, 2)}</b></li>
<li>Refused GPU-minutes, governor ÷ equal split: <b>${h.refusedVsEqualSplit === null ? '—' : fmt(h.refusedVsEqualSplit, 2)}</b></li>
<li>Writes per service per hour: <b>${fmt(h.writesPerServiceHour, 2)}</b> · invariant violations: <b>${h.invariantViolations}</b></li>
</ul>`
    : '';
  const violations = (governor?.violations ?? []).map((v) => `<li>${escape(v)}</li>`).join('');
  const failed = (governor?.failedRuns ?? []).map((v) => `<li>${escape(v)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1140px;color:#222}
table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child{text-align:left}tr.governor{background:#eef4ff;font-weight:600}figure{margin:12px 0}
.note,small{color:#666}
</style></head><body>
<h1>${escape(title)}</h1>
${options.subtitle ? `<p>${escape(options.subtitle)}</p>` : ''}
<p>From ${escape(result.start)} for ${fmt(result.minutes / 60, 1)} h, minute by minute; the governor runs every ${result.tickMinutes} min on Monitoring data ${result.lagMinutes} min behind${result.viaEmulator ? ', through the gRPC emulator' : ''}. Every strategy sees the same demand.</p>
${headline}
<h2>Comparison</h2>
${comparisonTable(result)}
${violations ? `<h3>Invariant violations</h3><ul>${violations}</ul>` : ''}
${failed ? `<h3>Failed governor runs</h3><ul>${failed}</ul>` : ''}
${sections.join('\n')}
<p class="note">How to read this page: docs/simulation.md. Refused: demand (instances × GPUs) above a service's cap or beyond the pool's free GPUs. Idle held: GPUs held by instances with no demand. Share error: under scarcity, the part of the pool served differently from the oracle's weighted split.</p>
</body></html>
`;
}
