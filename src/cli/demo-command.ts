import { relative } from 'node:path';
import { Alert, ALERT_TYPES, Severity } from '../core/alert.js';
import type { PublishedMessage } from '../emulator/index.js';
import { loadSimulationInput } from '../simulate/scenario.js';
import {
  simulate,
  type SimulationResult,
  type StrategyResult,
  type TickView,
} from '../simulate/simulate.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import type { Streams } from './io.js';
import { alertStatus, colorsFor, oneLine, poolTitle, type Colors } from './render.js';

/**
 * `governor demo` (npm start): a simulated day of a GPU fleet in under two minutes. The real
 * governor runs every few virtual minutes against the embedded emulator through Google's own
 * clients, and publishes its alerts to the emulator's Pub/Sub; the simulator (src/simulate)
 * plays the fleet's demand minute by minute and counts what was refused. The same day is played
 * with the fleet's own static caps and with over-commit (every cap at the quota), on the same
 * demand, so the closing summary says what the governor saved.
 *
 * On a terminal the pools are one compact view redrawn in place; otherwise (a pipe, a CI log) a
 * plain line per pool every virtual hour. Colour only on a terminal without NO_COLOR.
 */

export interface DemoFlags {
  fleet: string;
  policy: string;
  hours: number;
  every: number;
}

/** The alert lines kept on screen under the pools. */
const ALERTS_SHOWN = 6;
/** Wall-clock ms between two redraws of the live view. */
const REDRAW_MS = 100;

export async function runDemo(
  flags: DemoFlags,
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const policy = await loadPolicy(flags.policy);
  const input = await loadSimulationInput(flags.fleet);
  const c = colorsFor(io.stdout, options);
  const live = Boolean(io.stdout.isTTY);
  const topic = policy.alerts.topic;
  const fleetName = relative(process.cwd(), flags.fleet) || flags.fleet;

  io.stdout.write(
    [
      `${c.bold('Cloud Run GPU governor: a simulated day')}  (fleet ${fleetName}, policy ${relative(process.cwd(), flags.policy) || flags.policy})`,
      `Every ${flags.every} virtual minutes for ${flags.hours} h, the governor observes the embedded emulator of Cloud Run,`,
      `Monitoring and Cloud Quotas through Google's own clients, plans, writes each service's max instances`,
      topic
        ? `and publishes its alerts on the emulator's Pub/Sub (${topic}).`
        : 'and logs its alerts (the policy sets no alerts.topic).',
      `The same demand is played with the fleet's static caps and with over-commit, to compare.`,
      '',
      '',
    ].join('\n'),
  );

  // The baselines first (in memory, quick): the live view shows their refusals beside the governor's.
  const baselines = await simulate(input, policy, {
    hours: flags.hours,
    tickMinutes: flags.every,
    strategies: ['fleet-caps', 'over-commit'],
  });
  const fleetCaps = strategy(baselines, 'fleet-caps');

  const screen = new Screen(io, live);
  const received: Alert[] = [];
  let undecoded = 0;
  const onPublish = (m: PublishedMessage) => {
    const alert = decode(m);
    if (!alert) {
      undecoded += 1;
      return;
    }
    received.push(alert);
    if (!live) io.stdout.write(`  ${alertLine(alert, c)}\n`);
  };
  let lastHour = -1;
  const governed = await simulate(input, policy, {
    hours: flags.hours,
    tickMinutes: flags.every,
    lagMinutes: 3,
    strategies: ['governor'],
    viaEmulator: true,
    series: false,
    onPublish,
    onTick: (view) => {
      const baseline = refusedSoFar(fleetCaps, view.minute);
      if (live) screen.draw(liveLines(view, flags.every, baseline, received, c), view.final);
      else {
        // A line per pool each virtual hour, and at the end (whose figures are the summary's).
        const hour = Math.floor((view.minute - 1) / 60);
        if (hour !== lastHour || view.final) {
          lastHour = hour;
          io.stdout.write(plainLines(view, baseline).join('\n') + '\n');
        }
      }
    },
  });
  screen.finish();
  const gov = strategy(governed, 'governor');
  io.stdout.write('\n' + summary(gov, baselines, received, undecoded, topic, c).join('\n') + '\n');
  const violations = gov.totals.invariantViolations ?? 0;
  return violations > 0 || gov.failedRuns.length > 0 ? 1 : 0;
}

function strategy(result: SimulationResult, name: StrategyResult['strategy']): StrategyResult {
  const found = result.strategies.find((s) => s.strategy === name);
  if (!found) throw new Error(`bug: the simulation has no ${name} result`);
  return found;
}

/** A published message as the subscriber reads it: an alert, or null when the data is not one. */
function decode(m: PublishedMessage): Alert | null {
  if (m.data === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(m.data);
  } catch {
    // Not JSON: not an alert of the governor's (counted in the summary).
    return null;
  }
  const alert = Alert.safeParse(parsed);
  return alert.success ? alert.data : null;
}

/**
 * Alerts arrive one by one, so their columns cannot be sized on what has arrived: each is as
 * wide as the longest value it can hold (a severity, "still firing", an alert type).
 */
const SEVERITY_WIDTH = Math.max(...Severity.options.map((s) => s.length));
const STATUS_WIDTH = 'still firing'.length;
const TYPE_WIDTH = Math.max(...ALERT_TYPES.map((t) => t.length));

/** One alert as a subscriber received it: time, severity, status, type, summary. */
export function alertLine(a: Alert, c: Colors): string {
  const sev = a.severity.padEnd(SEVERITY_WIDTH);
  const colored =
    a.severity === 'WARNING' ? c.yellow(sev) : a.severity === 'INFO' ? sev : c.red(sev);
  return `${a.time.slice(11, 16)} ${colored} ${alertStatus(a).padEnd(STATUS_WIDTH)} ${a.type.padEnd(TYPE_WIDTH)} ${oneLine(a.summary)}`;
}

/** GPU-minutes a baseline refused in its first `minutes` minutes, per pool key. */
function refusedSoFar(s: StrategyResult, minutes: number): Map<string, number> {
  return new Map(
    s.series.map((p) => [p.pool, p.refused.slice(0, minutes).reduce((a, v) => a + v, 0)]),
  );
}

function clock(view: TickView): string {
  return `${view.at.slice(0, 10)} ${view.at.slice(11, 16)} UTC`;
}

function liveLines(
  view: TickView,
  every: number,
  baseline: Map<string, number>,
  alerts: readonly Alert[],
  c: Colors,
): string[] {
  const width = 24;
  // The run at minute m holds the caps until the next one: its minutes are done with it.
  const done = Math.min(1, (view.minute - 1 + every) / view.minutes);
  const full = Math.round(done * width);
  const lines = [
    `${c.bold(clock(view))}  [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.round(done * 100)).padStart(3)}%  writes ${view.writes}${view.failedRuns ? c.red(` · failed runs ${view.failedRuns}`) : ''}`,
    '',
  ];
  const names = view.pools.map((p) => shortTitle(p, view));
  const nameWidth = Math.max(4, ...names.map((n) => n.length));
  lines.push(
    c.dim(
      `  ${'pool'.padEnd(nameWidth)}  quota  caps  in use  demand  refused so far (static caps)`,
    ),
  );
  view.pools.forEach((p, i) => {
    const refused = `${Math.round(p.refusedSoFar)} GPU-min (${Math.round(baseline.get(p.pool) ?? 0)})`;
    lines.push(
      `  ${(names[i] ?? '').padEnd(nameWidth)}  ${String(p.quota).padStart(5)}  ${String(p.caps).padStart(4)}  ${String(p.inUse).padStart(6)}  ${String(p.demand).padStart(6)}  ${refused}`,
    );
  });
  lines.push('');
  lines.push(c.bold(`Alerts received by a subscriber (${alerts.length}), latest:`));
  const latest = alerts.slice(-ALERTS_SHOWN);
  for (const a of latest) lines.push(`  ${alertLine(a, c)}`);
  for (let i = latest.length; i < ALERTS_SHOWN; i++) lines.push('');
  return lines;
}

/** The pool's title, without the project when there is only one. */
function shortTitle(p: TickView['pools'][number], view: TickView): string {
  const title = poolTitle(p);
  const projects = new Set(view.pools.map((x) => x.project));
  return projects.size === 1 ? title.slice(p.project.length + 1) : title;
}

function plainLines(view: TickView, baseline: Map<string, number>): string[] {
  return view.pools.map(
    (p) =>
      `${clock(view)}  ${shortTitle(p, view)}: quota ${p.quota} · caps ${p.caps} · in use ${p.inUse} · demand ${p.demand} · refused so far ${Math.round(p.refusedSoFar)} GPU-min (static caps ${Math.round(baseline.get(p.pool) ?? 0)}) · writes ${view.writes}`,
  );
}

/** The live view on a terminal: the same block of lines redrawn in place, at most every 100 ms. */
class Screen {
  private drawn = 0;
  private lastDraw = 0;
  private pending: string[] | null = null;

  constructor(
    private readonly io: Streams,
    private readonly live: boolean,
  ) {}

  draw(lines: string[], force: boolean): void {
    if (!this.live) return;
    this.pending = lines;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.flush();
    this.lastDraw = now;
  }

  finish(): void {
    if (this.pending) this.flush();
  }

  private flush(): void {
    const lines = this.pending ?? [];
    this.pending = null;
    // Up to the first line of the block, then each line cleared and written again.
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of lines) out += `\r\x1b[2K${line}\n`;
    this.io.stdout.write(out);
    this.drawn = lines.length;
  }
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** What one strategy did over the day, for the summary. */
export interface DayFigures {
  label: string;
  refused: number;
  /** Of the refused: the service was at its max instances (Cloud Run answers 429). */
  atCap: number;
  /** Of the refused: every GPU of the pool was taken, so the instance could not start. */
  noGpu: number;
  capsOverQuotaMinutes: number;
  writes: number;
}

function figures(label: string, s: StrategyResult, writes: number): DayFigures {
  const sum = (f: (x: StrategyResult['services'][number]) => number) =>
    s.services.reduce((a, x) => a + f(x), 0);
  return {
    label,
    refused: s.totals.refusedGpuMinutes,
    atCap: sum((x) => x.refusedCapGpuMinutes),
    noGpu: sum((x) => x.refusedQuotaGpuMinutes),
    capsOverQuotaMinutes: s.pools.reduce((a, p) => a + p.capsOverQuotaMinutes, 0),
    writes,
  };
}

/** The summary's table: one row per strategy, each number right-aligned under its header. */
export function summaryTable(rows: readonly DayFigures[], c: Colors): string[] {
  const columns: [string, (f: DayFigures) => string][] = [
    ['refused', (f) => count(f.refused)],
    ['at the cap', (f) => count(f.atCap)],
    ['no GPU free', (f) => count(f.noGpu)],
    ['caps > quota', (f) => `${count(f.capsOverQuotaMinutes)} min`],
    ['writes', (f) => count(f.writes)],
  ];
  const label = Math.max(...rows.map((r) => r.label.length));
  const widths = columns.map(([h, v]) => Math.max(h.length, ...rows.map((r) => v(r).length)));
  const line = (first: string, cells: string[]) =>
    `  ${first.padEnd(label)}${cells.map((x, i) => `   ${x.padStart(widths[i] ?? 0)}`).join('')}`;
  return [
    c.dim(
      line(
        '',
        columns.map(([h]) => h),
      ),
    ),
    ...rows.map((r) =>
      line(
        r.label,
        columns.map(([, v]) => v(r)),
      ),
    ),
  ];
}

function summary(
  gov: StrategyResult,
  baselines: SimulationResult,
  alerts: readonly Alert[],
  undecoded: number,
  topic: string | undefined,
  c: Colors,
): string[] {
  const writes = gov.services.reduce((a, s) => a + s.writes, 0);
  const g = figures('with the governor', gov, writes);
  const f = figures("with the fleet's static caps", strategy(baselines, 'fleet-caps'), 0);
  const o = figures(
    'with over-commit (every cap at the quota)',
    strategy(baselines, 'over-commit'),
    0,
  );
  const out = [
    c.bold(
      `Summary of the day (${(baselines.minutes / 60).toFixed(0)} h, the same demand for all three):`,
    ),
    '',
    ...summaryTable([g, f, o], c),
    '',
    c.dim('refused: GPU-minutes of demand not served; at the cap: the service was at its max'),
    c.dim('instances (Cloud Run answers 429); no GPU free: the quota was used up, so an instance'),
    c.dim('could not start; caps > quota: pool-minutes in which the caps summed above the quota.'),
    '',
  ];
  if (f.refused > 0) {
    const saved = 1 - g.refused / f.refused;
    out.push(
      saved >= 0
        ? `The governor refused ${c.bold(`${Math.round(saved * 100)}% fewer`)} GPU-minutes than the fleet's static caps, with its caps within the quota at every write.`
        : `The governor refused ${Math.round(-saved * 100)}% more GPU-minutes than the fleet's static caps on this fleet.`,
    );
  }
  const noGpu =
    o.noGpu === 0
      ? 'none of them for want of a GPU on this day'
      : `${o.noGpu === o.refused ? 'every one' : `${count(o.noGpu)} of them`} an instance that could not start because other services held every GPU`;
  out.push(
    `Over-commit refused ${count(o.refused)} GPU-minutes, ${noGpu}: with caps over the quota, whoever scales up first takes the GPUs, whatever the priorities.`,
  );
  const violations = gov.totals.invariantViolations ?? 0;
  out.push(
    `Writes: ${writes} max-instances ${writes === 1 ? 'update' : 'updates'} through the Cloud Run Admin API; ${violations === 0 ? 'none broke a rule of the governor (within quota, within bounds, hands off)' : c.red(`${violations} broke a rule`)}.`,
  );
  for (const v of gov.violations) out.push(c.red(`  violation: ${v}`));
  for (const x of gov.failedRuns) out.push(c.red(`  failed run: ${x}`));
  const byStatus = new Map<string, number>();
  for (const a of alerts) byStatus.set(alertStatus(a), (byStatus.get(alertStatus(a)) ?? 0) + 1);
  const counts = [...byStatus].map(([k, n]) => `${n} ${k}`).join(', ');
  out.push(
    topic
      ? `Alerts: a subscriber of ${topic} received ${alerts.length} ${alerts.length === 1 ? 'message' : 'messages'}${counts ? ` (${counts})` : ''}${undecoded ? `, and ${undecoded} that were not alerts` : ''}.`
      : 'Alerts: the policy sets no alerts.topic, so none were published.',
  );
  return out;
}
