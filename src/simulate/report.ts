import { DateTime } from 'luxon';
import { oneLine } from '../core/text.js';
import {
  capsChart,
  CHART_WIDTHS,
  offsetChanges,
  refusedChart,
  shownName,
  SMOOTH_MINUTES,
  type Chart,
  type TimeFrame,
} from './report-charts.js';
import type { PoolMetrics, PoolSeries, SimulationResult, StrategyResult } from './result.js';

/**
 * The report: one static HTML page with no script and no external resource, so it opens anywhere,
 * offline, as a single file. Per pool, the governor's caps stacked under the quota line with the
 * demand and the refused demand over time, and every strategy's refused GPU-minutes accumulated
 * (report-charts.ts); the comparison tables, each column explained under its table; why the
 * governor refused more than the fleet's static caps, when it did; and how to read the page.
 */

interface ReportOptions {
  title?: string;
  /** One line on what was simulated (the policy, the fleet). */
  subtitle?: string;
  /** Things the reader must know before trusting the numbers (a shortened replay window). */
  notes?: readonly string[];
}

/**
 * Text as HTML: markup characters as entities, and control characters, line separators and
 * bidirectional overrides as a space (`oneLine`): a path holding U+202E showed the rest of its
 * heading backwards, as it would a terminal's line.
 */
function escape(text: string): string {
  return oneLine(text).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/**
 * A service's name as HTML: whole, or, past the characters the report shows (`shownName`), its
 * start and end, with the whole name in the title.
 */
function nameHtml(name: string): string {
  const shown = shownName(name);
  return shown === name ? escape(name) : `<span title="${escape(name)}">${escape(shown)}</span>`;
}

/**
 * A policy's weight as a person reads it: to three decimals, or to three significant digits where
 * that keeps more (0.000123), thousands grouped. The policy takes any positive number, and a
 * weight of 0.1 + 0.2 was printed 0.30000000000000004.
 */
const WEIGHT = new Intl.NumberFormat('en-US', {
  maximumFractionDigits: 3,
  maximumSignificantDigits: 3,
  roundingPriority: 'morePrecision',
});

const fmt = (n: number | null, digits = 0): string =>
  n === null
    ? '—'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A table column: its header, the tooltip on the header, and the sentence under the table. */
interface Column {
  head: string;
  explain: string;
}

function header(columns: readonly Column[]): string {
  return columns.map((c) => `<th scope="col" title="${escape(c.explain)}">${c.head}</th>`).join('');
}

function columnLegend(columns: readonly Column[]): string {
  const items = columns.map((c) => `<dt>${c.head}</dt><dd>${escape(c.explain)}</dd>`).join('');
  return `<dl class="columns">${items}</dl>`;
}

const COMPARISON_COLUMNS: readonly Column[] = [
  { head: 'strategy', explain: 'How the caps were set (see "How to read this page").' },
  {
    head: 'refused GPU-min',
    explain:
      'GPU-minutes of demand not served: above a service’s cap, or beyond the pool’s free GPUs. Lower is better.',
  },
  {
    head: 'idle GPU-min held',
    explain:
      'GPU-minutes held by started instances that had no demand (the idle tail after a burst).',
  },
  {
    head: 'writes / service / h',
    explain: 'Changes of max instances per service per hour (0 for the static strategies).',
  },
  {
    head: 'share error under scarcity',
    explain:
      'Mean, over the minutes a pool had more demand than GPUs, of the share of the pool served differently from the oracle’s weighted split (0 to 1); — where no minute had more demand than a pool of one GPU or more.',
  },
  {
    head: 'priority inversions (min)',
    explain:
      'Minutes in which a service was refused while a lower-priority service held cap it did not use.',
  },
  {
    head: 'caps over quota (min)',
    explain:
      'Minutes in which the caps summed above the pool: instances may then fail to start. Over-commit does this by design. Where the fleet’s own caps start over the pool, the governor counts the minute before its first writes land.',
  },
  {
    head: 'invariant violations',
    explain:
      'The governor’s rules found broken at a write (docs/rules.md); must be 0. — for the baselines.',
  },
];

function comparisonTable(result: SimulationResult): string {
  const rows = result.strategies.map((s) => {
    const share = s.pools.filter((p) => p.shareError !== null);
    const shareError =
      share.length === 0 ? null : share.reduce((a, p) => a + (p.shareError ?? 0), 0) / share.length;
    const inversions = s.pools.reduce((a, p) => a + p.priorityInversions, 0);
    const over = s.pools.reduce((a, p) => a + p.capsOverQuotaMinutes, 0);
    const cells = [
      fmt(s.totals.refusedGpuMinutes),
      fmt(s.totals.idleGpuMinutes),
      fmt(s.totals.writesPerServiceHour, 2),
      fmt(shareError, 3),
      fmt(inversions),
      fmt(over),
      fmt(s.totals.invariantViolations),
    ];
    return `<tr class="${s.strategy}"><th scope="row">${escape(s.label)}</th>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  return `<table class="comparison"><caption>Every strategy on the same demand, all pools, the whole run</caption><thead><tr>${header(COMPARISON_COLUMNS)}</tr></thead><tbody>${rows.join('')}</tbody></table>
${columnLegend(COMPARISON_COLUMNS)}`;
}

function servicesTable(result: SimulationResult, pool: string): string {
  const first = result.strategies[0]?.services.filter((s) => s.pool === pool) ?? [];
  const columns: Column[] = [
    {
      head: 'service',
      explain: 'The Cloud Run service; unmanaged: the policy leaves it alone, counted at its cap.',
    },
    {
      head: 'priority',
      explain: 'Its priority in the policy: a higher one is served first under scarcity.',
    },
    {
      head: 'weight',
      explain: 'Its weight in the policy: within one priority, unmet demand is shared by weight.',
    },
    { head: 'demand GPU-min', explain: 'GPU-minutes the service asked for over the run.' },
    ...result.strategies.map((s) => ({
      head: escape(s.label),
      explain: `GPU-minutes of this service’s demand that ${s.label} refused; in brackets, the writes it made to the service.`,
    })),
  ];
  const body = first.map((svc) => {
    const cells = result.strategies.map((s) => {
      const m = s.services.find((x) => x.pool === pool && x.name === svc.name);
      if (!m) return '<td>—</td>';
      const writes =
        m.writes > 0 ? ` <small>(${m.writes} ${m.writes === 1 ? 'write' : 'writes'})</small>` : '';
      return `<td>${fmt(m.refusedGpuMinutes)}${writes}</td>`;
    });
    // A service the policy leaves alone has no priority or weight of its own (as in `governor plan`).
    const name = svc.managed
      ? nameHtml(svc.name)
      : `${nameHtml(svc.name)} <small>(unmanaged)</small>`;
    const [priority, weight] = svc.managed
      ? [fmt(svc.priority), WEIGHT.format(svc.weight)]
      : ['–', '–'];
    return `<tr><th scope="row">${name}</th><td>${priority}</td><td>${weight}</td><td>${fmt(svc.demandGpuMinutes)}</td>${cells.join('')}</tr>`;
  });
  const explained = columns.slice(0, 4);
  return `<table class="services"><caption>Refused GPU-minutes per service and strategy</caption><thead><tr>${header(columns)}</tr></thead><tbody>${body.join('')}</tbody></table>
${columnLegend([...explained, { head: 'one column per strategy', explain: 'GPU-minutes of the service’s demand that the strategy refused; in brackets, the writes it made to the service (static strategies make none).' }])}`;
}

/**
 * Why the governor refused more than the fleet's static caps in a pool, when it did. The static
 * caps need no evidence and never move; the governor keeps the caps within the quota and moves
 * them on Monitoring data that is `lag` minutes old, every `tick` minutes.
 */
function versusStaticCaps(result: SimulationResult, pool: string): string {
  const gov = result.strategies.find((s) => s.strategy === 'governor');
  const fixed = result.strategies.find((s) => s.strategy === 'fleet-caps');
  const g = gov?.pools.find((p) => p.pool === pool);
  const f = fixed?.pools.find((p) => p.pool === pool);
  if (!gov || !fixed || !g || !f || g.refusedGpuMinutes <= f.refusedGpuMinutes) return '';
  const reasons: string[] = [];
  const staticSum = staticCapsSum(fixed, pool);
  if (f.capsOverQuotaMinutes > 0 || staticSum > f.available) {
    reasons.push(
      `The fleet’s static caps sum to ${fmt(staticSum)} GPUs against ${fmt(f.available)} available: they over-commit the pool, as Cloud Run alone allows, so one service’s burst is served from GPUs the others are not using, until bursts meet and instances fail to start. The governor keeps the caps within the quota, so it refuses such a burst at the cap instead.`,
    );
  }
  reasons.push(
    `The governor moves caps every ${result.tickMinutes} min on Monitoring data ${result.lagMinutes} min old: demand that rises faster than that is refused at the cap until a later run sees it, where a static cap that happens to be high serves it at once.`,
  );
  const worse = gov.services
    .filter((s) => s.pool === pool)
    .map((s) => ({
      name: s.name,
      gov: s.refusedGpuMinutes,
      fixed:
        fixed.services.find((x) => x.pool === pool && x.name === s.name)?.refusedGpuMinutes ?? 0,
    }))
    .filter((s) => s.gov > s.fixed)
    .sort((a, b) => b.gov - b.fixed - (a.gov - a.fixed))
    .slice(0, 5)
    .map((s) => `${nameHtml(s.name)} (${fmt(s.gov)} against ${fmt(s.fixed)})`);
  const who = worse.length ? ` Most of the difference is in ${worse.join(', ')}.` : '';
  return `<div class="explain" id="versus-static-${escape(slug(pool))}"><h3>Why the governor refused more than the fleet’s static caps here</h3>
<p>In this pool the governor refused ${fmt(g.refusedGpuMinutes)} GPU-minutes, the fleet’s static caps ${fmt(f.refusedGpuMinutes)}.${who}</p>
<ul>${reasons.map((r) => `<li>${r}</li>`).join('')}</ul></div>`;
}

function staticCapsSum(fixed: StrategyResult, pool: string): number {
  const series = fixed.series.find((p) => p.pool === pool);
  if (!series) return 0;
  return Object.values(series.caps).reduce((a, caps) => a + (caps[0] ?? 0), 0);
}

function slug(text: string): string {
  return text.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
}

/**
 * A chart drawn at each of its widths; the style shows the one that fits the window, so the text of a
 * chart keeps its size on a narrow screen instead of shrinking with the picture. Each picture is an
 * image to assistive technology, named by `describe`, and the numbers it draws follow it as a table
 * (closed, so the page stays short): a chart alone tells nothing to a reader who cannot see it.
 */
function figure(
  kind: string,
  pool: string,
  points: number,
  draw: (width: number) => Chart,
  describe: string,
  numbers: string,
): string {
  const drawn = Object.entries(CHART_WIDTHS).map(([name, width]) => {
    const chart = draw(width);
    const series = escape(
      JSON.stringify(chart.series.map(({ name, colour }) => ({ name, colour }))),
    );
    const label = chart.note ? `${describe} ${chart.note}` : describe;
    return `<div class="${name}" role="img" aria-label="${escape(label)}" data-series="${series}">${chart.svg}</div>`;
  });
  return `<figure class="chart" data-chart="${kind}" data-pool="${escape(pool)}" data-points="${points}">${drawn.join('')}
<details><summary>The chart’s numbers</summary>${numbers}</details></figure>`;
}

/** The chart tables' period: an hour, or longer when a run has more than a week of hours. */
function periodMinutes(minutes: number): number {
  return [60, 180, 360, 720].find((p) => minutes / p <= 168) ?? 1440;
}

/**
 * Minute `minute` of the run as its clock reads in the run's zone: with the day for a run longer
 * than a day (or when `withDay`), else the time alone; and, for a time the clocks read twice (the
 * hour repeated when summer time ends), its offset, "01:00 (UTC-05:00)", unless `offset` is
 * false: the period 01:00–01:00 was an hour, not none.
 */
function localTime(
  result: SimulationResult,
  minute: number,
  withDay = result.minutes > 1440,
  offset = true,
): string {
  const t = DateTime.fromMillis(Date.parse(result.start) + minute * 60_000, {
    zone: result.timezone,
  });
  const text = t.toFormat(withDay ? 'ccc d LLL HH:mm' : 'HH:mm');
  return offset && t.getPossibleOffsets().length > 1 ? `${text} (UTC${t.toFormat('ZZ')})` : text;
}

/**
 * The periods of the run, each as [first minute, end minute) and its times in the run's zone, as
 * HTML (escaped).
 */
function periods(result: SimulationResult): { from: number; to: number; label: string }[] {
  const step = periodMinutes(result.minutes);
  const out: { from: number; to: number; label: string }[] = [];
  for (let from = 0; from < result.minutes; from += step) {
    const to = Math.min(result.minutes, from + step);
    const [start, end] = [localTime(result, from), localTime(result, to, false)];
    // A time with its offset is long: the period's end on a line of its own, so that the column
    // of periods, which stays in place as a table scrolls, leaves a phone room for the numbers.
    const html =
      start.includes('(') || end.includes('(')
        ? `${escape(start)}–<br>${escape(end)}`
        : escape(`${start}–${end}`);
    out.push({ from, to, label: html });
  }
  return out;
}

const sum = (values: readonly number[], from = 0, to = values.length): number => {
  let total = 0;
  for (let m = from; m < to; m++) total += values[m] ?? 0;
  return total;
};

/** The pool's quota at a minute of the run. */
function quotaAt(series: PoolSeries, minute: number): number {
  let quota = series.quota;
  for (const c of series.quotaChanges) if (c.minute <= minute) quota = c.quota;
  return quota;
}

/** The governor's caps summed over the pool's services, minute by minute. */
function capsSum(series: PoolSeries): number[] {
  const out = new Array<number>(series.demand.length).fill(0);
  for (const caps of Object.values(series.caps))
    caps.forEach((v, m) => (out[m] = (out[m] ?? 0) + v));
  return out;
}

/** The caps chart in words, and its numbers period by period. */
function capsNumbers(
  result: SimulationResult,
  series: PoolSeries,
  governor: string,
): { describe: string; table: string } {
  const caps = capsSum(series);
  const zone = escape(result.timezone);
  const rows = periods(result).map(({ from, to, label }) => {
    const minutes = to - from;
    const demand = series.demand.slice(from, to);
    // A quota changed within the period reads as it went: "8 → 4", as the chart's line steps.
    const [first, last] = [quotaAt(series, from), quotaAt(series, to - 1)];
    const quota = first === last ? fmt(first) : `${fmt(first)} → ${fmt(last)}`;
    return `<tr><th scope="row">${label}</th><td>${quota}</td><td>${fmt(sum(caps, from, to) / minutes, 1)}</td><td>${fmt(sum(demand) / minutes, 1)}</td><td>${fmt(Math.max(0, ...demand))}</td><td>${fmt(sum(series.refused, from, to))}</td></tr>`;
  });
  const peak = Math.max(0, ...series.demand);
  const peakAt = series.demand.indexOf(peak);
  const when = localTime(result, peakAt);
  const steps = quotaSteps(result, series)
    .map((c) => `, ${fmt(c.quota)} from ${localTime(result, c.minute)}`)
    .join('');
  const describe = `Governor caps, demand and refused demand in ${series.pool}: quota ${fmt(series.quota)} GPUs${steps}; demand at most ${fmt(peak)} GPUs, at ${when} (${result.timezone}); the ${governor}’s caps summed to at most ${fmt(Math.max(0, ...caps))} GPUs; it refused ${fmt(sum(series.refused))} GPU-minutes. The table under the chart gives the numbers.`;
  const table = `<table class="numbers"><caption>Governor caps, demand and refused demand in ${escape(series.pool)}, by period (${zone})</caption><thead><tr><th scope="col">period (${zone})</th><th scope="col">quota (GPUs)</th><th scope="col">caps summed, mean (GPUs)</th><th scope="col">demand, mean (GPUs)</th><th scope="col">demand, busiest minute (GPUs)</th><th scope="col">refused (GPU-min)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  return { describe, table: `${table}${serviceCapsTable(result, series, governor)}` };
}

/**
 * Each service's cap, period by period: the bands of the chart as numbers, one column per service
 * in the pool's order (the chart's order, from the bottom of the stack up), every service whole
 * where the chart sums the services beyond its colours into one band.
 */
function serviceCapsTable(result: SimulationResult, series: PoolSeries, governor: string): string {
  const zone = escape(result.timezone);
  const heads = series.services.map((name) => `<th scope="col">${nameHtml(name)}</th>`).join('');
  const rows = periods(result).map(({ from, to, label }) => {
    const cells = series.services.map(
      (name) => `<td>${fmt(sum(series.caps[name] ?? [], from, to) / (to - from), 1)}</td>`,
    );
    return `<tr><th scope="row">${label}</th>${cells.join('')}</tr>`;
  });
  return `<table class="numbers service-caps"><caption>The ${escape(governor)}’s cap of each service in ${escape(series.pool)}, mean by period (GPUs, ${zone})</caption><thead><tr><th scope="col">period (${zone})</th>${heads}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The refused chart in words, and every strategy's refused GPU-minutes so far, period by period. */
function refusedNumbers(
  result: SimulationResult,
  pool: string,
): { describe: string; table: string } {
  const drawn = result.strategies.flatMap((s) => {
    const series = s.series.find((p) => p.pool === pool);
    return series ? [{ label: s.label, refused: series.refused }] : [];
  });
  const zone = escape(result.timezone);
  const rows = periods(result).map(
    ({ to, label }) =>
      `<tr><th scope="row">${label}</th>${drawn.map((d) => `<td>${fmt(sum(d.refused, 0, to))}</td>`).join('')}</tr>`,
  );
  const totals = drawn.map((d) => `${d.label} ${fmt(sum(d.refused))}`).join(', ');
  const describe = `Refused GPU-minutes so far, by strategy, in ${pool}; at the end of the run: ${totals}. The table under the chart gives the numbers.`;
  const heads = drawn.map((d) => `<th scope="col">${escape(d.label)}</th>`).join('');
  const table = `<table class="numbers"><caption>Refused GPU-minutes so far in ${escape(pool)}, at the end of each period (${zone})</caption><thead><tr><th scope="col">period (${zone})</th>${heads}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
  return { describe, table };
}

function poolSection(
  result: SimulationResult,
  pool: PoolMetrics,
  governor: StrategyResult,
): string {
  const series = governor.series.find((s) => s.pool === pool.pool);
  if (!series) return '';
  const frame = (width: number): TimeFrame => ({
    startMs: Date.parse(result.start),
    minutes: result.minutes,
    timezone: result.timezone,
    width,
  });
  const points = series.demand.length;
  const caps = (w: number) => capsChart(series, frame(w), governor.label);
  const refused = (w: number) => refusedChart(series.pool, result.strategies, frame(w));
  const capsText = capsNumbers(result, series, governor.label);
  // Lines that all lie on 0 tell nothing and hide each other: say it instead.
  const refusedAny = result.strategies.some((s) =>
    s.series.some((p) => p.pool === series.pool && p.refused.some((v) => v > 0)),
  );
  const refusedText = refusedNumbers(result, series.pool);
  const refusedFigure = refusedAny
    ? figure('refused', series.pool, points, refused, refusedText.describe, refusedText.table)
    : '<p class="none">No strategy refused any demand in this pool.</p>';
  return `<section class="pool">
<h2>${escape(series.pool)}</h2>
<p>${quotaLine(result, series)}</p>
${figure('caps', series.pool, points, caps, capsText.describe, capsText.table)}
${refusedFigure}
${versusStaticCaps(result, series.pool)}
${servicesTable(result, series.pool)}
</section>`;
}

function quotaLine(result: SimulationResult, series: PoolSeries): string {
  const { quota, available } = series;
  const services = series.services.length;
  const them = services === 1 ? 'this service' : `these ${services} services`;
  const line =
    available === quota
      ? `Quota ${quota} GPUs, all of them for ${them}`
      : `Quota ${quota} GPUs, ${available} of them for ${them} (the other ${quota - available} ${quota - available === 1 ? 'is' : 'are'} held by worker pools, GPU jobs and manually scaled services)`;
  return `${line}${quotaChangesText(result, series)}.`;
}

/**
 * The changes of the quota during the run, each from its minute on. A cut that rounds back to the
 * quota it cuts (2 GPUs by 0.75) changes nothing, and is left out.
 */
function quotaSteps(
  result: SimulationResult,
  series: PoolSeries,
): { minute: number; quota: number; how: 'cut' | 'raised' }[] {
  let before = series.quota;
  const steps: { minute: number; quota: number; how: 'cut' | 'raised' }[] = [];
  for (const c of series.quotaChanges) {
    if (c.minute >= result.minutes || c.quota === before) continue;
    steps.push({ minute: c.minute, quota: c.quota, how: c.quota < before ? 'cut' : 'raised' });
    before = c.quota;
  }
  return steps;
}

/** "; from 13:00 on, 4 GPUs (the quota was cut)" for each change of the quota during the run. */
function quotaChangesText(result: SimulationResult, series: PoolSeries): string {
  return quotaSteps(result, series)
    .map(
      (c) =>
        `; from ${escape(localTime(result, c.minute))} on, ${c.quota} GPUs (the quota was ${c.how})`,
    )
    .join('');
}

/** " (the clocks moved to UTC-05:00 at Sun 1 Nov 01:00)" when they moved during the run. */
function clockChanges(result: SimulationResult): string {
  const startMs = Date.parse(result.start);
  const changes = offsetChanges({ startMs, minutes: result.minutes, timezone: result.timezone })
    .slice(1)
    .map((c) => `to UTC${c.offset} at ${localTime(result, c.minute, true, false)}`);
  return changes.length ? ` (the clocks moved ${changes.join(', then ')})` : '';
}

function headline(result: SimulationResult): string {
  const h = result.headline;
  if (!h) return '';
  const gap =
    h.gapClosed === null
      ? 'no gap: the equal split refused no more than the best at the same tick'
      : `<b>${fmt(h.gapClosed, 2)}</b>${h.gapClosed < 0 ? ' (negative: the governor refused more than the equal split)' : ''}`;
  return `<ul class="headline">
<li>Gap closed, (equal split − governor) ÷ (equal split − the best at the same tick, with hindsight), in refused GPU-minutes: ${gap}; against the clairvoyant oracle (re-split every minute): ${h.gapClosedClairvoyant === null ? '<b>—</b> (no gap: the equal split refused no more than it)' : `<b>${fmt(h.gapClosedClairvoyant, 2)}</b>`}</li>
<li>Refused GPU-minutes, governor ÷ equal split: <b>${h.refusedVsEqualSplit === null ? '—' : fmt(h.refusedVsEqualSplit, 2)}</b>${h.refusedVsEqualSplit === null ? ' (the equal split refused nothing)' : ''}</li>
<li>Writes per service per hour: <b>${fmt(h.writesPerServiceHour, 2)}</b> · invariant violations: <b>${h.invariantViolations}</b></li>
</ul>`;
}

const HOW_TO_READ = `<section id="how-to-read"><h2>How to read this page</h2>
<p>Every strategy is played minute by minute against the same demand, in the same pools, with the same instance start-up time and idle tail. A service’s <b>demand</b> is the instances it would run with no cap, in GPUs. Demand is <b>refused</b> when it is above the service’s cap, or when the pool has no free GPU for a new instance. In the caps chart each service’s cap is a band of its own colour and its own pattern (lines, dots, checks, grids…), its legend entry drawn alike; the chart’s numbers give each service’s cap period by period. Lines marked “${SMOOTH_MINUTES}-min mean” are averaged over ${SMOOTH_MINUTES} minutes so the level can be read; the thin light line is demand minute by minute or, where a chart has more minutes than pixels, the busiest minute of each few, so that no peak is lost.</p>
<dl class="strategies">
<dt>governor</dt><dd>The policy, planned and applied by the real code every tick on lagged Monitoring data.</dd>
<dt>fleet’s static caps</dt><dd>The max instances the services run with today, never changed. They may sum above the quota.</dd>
<dt>static equal split</dt><dd>The pool divided equally between the services, never changed.</dd>
<dt>static, proportional to peak</dt><dd>The pool divided in proportion to each service’s peak demand over the run (known in hindsight), never changed.</dd>
<dt>over-commit (all at quota)</dt><dd>Every cap at the whole quota: what Cloud Run alone allows. It breaks the quota contract (caps over quota) and is shown so the trade is visible.</dd>
<dt>clairvoyant oracle</dt><dd>Re-splits the pool every minute knowing that minute’s demand, by priority and weight: the floor on refused GPU-minutes.</dd>
<dt>best at the same tick (hindsight)</dt><dd>Sets caps once per governor tick, knowing that tick’s demand: floors, budget and whole instances, the highest priority first. The best any governor at the same cadence can do.</dd>
<dt>best at the same tick, policy kept (hindsight)</dt><dd>The same, but a higher priority first gets its demand as the policy defines it (its peak over the lookback, as Monitoring shows it at the tick, plus headroom) before a lower priority gets more than its floor and what it has in use, as rule 6 asks. Its distance from the line above is what the policy’s headroom costs even with hindsight.</dd>
<dt>best at ≤ 2 writes/svc/h (hindsight)</dt><dd>The same, re-split every 30 minutes: at most two writes a service an hour.</dd>
</dl>
<p>The <b>gap closed</b> is the share of the equal split’s excess refusals over the best at the same tick that the governor removes: 1 is as good as that, 0 no better than the equal split, below 0 worse; the same against the clairvoyant oracle is given beside it. The project’s docs/simulation.md defines every metric and docs/rules.md the rules the invariant check enforces.</p>
</section>`;

/**
 * Below 900 px, a service's name wraps (anywhere: a Cloud Run name has no spaces) in a column of
 * at most 10 em or 40% of the window: on one line, a name of 49 characters made the column that
 * stays in place as the table scrolls wider than a phone's table, and hid every number under it.
 *
 * The page's colours. The body sets its background with its text's colour: a reader may set a
 * dark background in the browser, and text coloured for white would sit on it (WCAG technique F24,
 * https://www.w3.org/WAI/WCAG22/Techniques/failures/F24).
 */
const STYLE = `body{font:14px/1.45 system-ui,sans-serif;overflow-wrap:break-word;margin:24px auto;max-width:1200px;padding:0 16px;color:#222;background:#fff}
table{border-collapse:collapse;margin:12px 0;display:block;overflow-x:auto}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child{text-align:left}tr>:first-child{position:sticky;left:-1px;background:#fff;border-right-style:hidden;box-shadow:inset -1px 0 #ccc}tr.governor>:first-child{background:#eef4ff}th[title]{cursor:help}table.services tbody th,table.services td{white-space:nowrap}tr.governor{background:#eef4ff;font-weight:600}
caption{text-align:left;font-weight:600;padding:4px 0}figure{margin:16px 0}figure svg{max-width:100%;height:auto;display:block}
@media (max-width:900px){figure .wide{display:none}}@media (min-width:901px){figure .narrow{display:none}}
@media (max-width:700px){figure .narrow{display:none}caption{position:sticky;left:0;max-width:calc(100vw - 48px)}}@media (min-width:701px){figure .phone{display:none}}
.note,small{color:#666}.notes{background:#fff6dd;border:1px solid #e8c860;padding:8px 12px}
dl.columns,dl.strategies{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;color:#444}
dl dt{font-weight:600}dl dd{margin:0}.explain{background:#f6f6f6;padding:4px 12px;margin:12px 0}
@media (max-width:760px){dl.columns,dl.strategies{grid-template-columns:1fr}dl dd{margin-bottom:6px}}
@media (max-width:900px){table.services tbody th{white-space:normal;overflow-wrap:anywhere;min-width:min(10em,40vw)}}
details{margin:4px 0 0}summary{cursor:pointer;color:#1f4e9c}table.numbers td{font-variant-numeric:tabular-nums}table.numbers tbody th{white-space:nowrap}
@media print{body{margin:0;max-width:none;font-size:11px}table{display:table;font-size:10px}table.services tbody th,table.services td{white-space:normal}th,td{padding:2px 4px}figure,tr,.explain{break-inside:avoid}details{display:none}}`;

export function renderReport(result: SimulationResult, options: ReportOptions = {}): string {
  const governor = result.strategies.find((s) => s.strategy === 'governor') ?? result.strategies[0];
  const sections = governor
    ? governor.pools.map((pool) => poolSection(result, pool, governor))
    : [];
  const title = options.title ?? `Governor simulation: ${result.label}`;
  const start = DateTime.fromISO(result.start, { zone: result.timezone });
  const notes = (options.notes ?? []).map((n) => `<li>${escape(n)}</li>`).join('');
  // The result keeps the first 20 of each; the rest are counted, not dropped from view.
  const listed = (items: readonly string[], total: number | null | undefined) =>
    items.map((v) => `<li>${escape(v)}</li>`).join('') +
    ((total ?? 0) > items.length ? `<li>… and ${(total ?? 0) - items.length} more</li>` : '');
  const violations = listed(governor?.violations ?? [], governor?.totals.invariantViolations);
  const failed = listed(governor?.failedRuns ?? [], governor?.totals.failedRuns);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)}</title>
<style>
${STYLE}
</style></head><body>
<h1>${escape(title)}</h1>
${options.subtitle ? `<p>${escape(options.subtitle)}</p>` : ''}
${notes ? `<ul class="notes">${notes}</ul>` : ''}
<p>From ${escape(start.toFormat('ccc d LLL yyyy HH:mm'))} (${escape(result.timezone)}) for ${fmt(result.minutes / 60, 1)} h${clockChanges(result)}, minute by minute; the governor runs every ${result.tickMinutes} min on Monitoring data ${result.lagMinutes} min behind${result.viaEmulator ? ', through the gRPC emulator' : ''}. Every strategy sees the same demand. <a href="#how-to-read">How to read this page</a>.</p>
${headline(result)}
<h2>Comparison</h2>
${comparisonTable(result)}
${violations ? `<h3>Invariant violations</h3><ul>${violations}</ul>` : ''}
${failed ? `<h3>Failed governor runs</h3><ul>${failed}</ul>` : ''}
${sections.join('\n')}
${HOW_TO_READ}
</body></html>
`;
}
