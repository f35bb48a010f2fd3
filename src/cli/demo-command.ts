import { relative } from 'node:path';
import { InputError } from '../core/errors.js';
import { plural } from '../core/text.js';
import { Alert, ALERT_TYPES, Severity } from '../core/alert.js';
import type { PoolId } from '../core/pool.js';
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
import { assertGoverns, notListed } from './simulate-command.js';
import { warnClose, type Streams } from './io.js';
import { alertStatus, colorsFor, oneLine, poolTitle, type Colors } from './render.js';

/**
 * `governor demo` (npm start): a simulated day of a GPU fleet in under two minutes. The real
 * governor runs every few virtual minutes against the embedded emulator through Google's own
 * clients, and publishes its alerts to the emulator's Pub/Sub; the simulator (src/simulate)
 * plays the fleet's demand minute by minute and counts what was refused. The same day is played
 * with the fleet's own static caps and with over-commit (every cap at the quota), on the same
 * demand, so the closing summary says what the governor saved.
 *
 * On a terminal the pools are one compact view redrawn in place; otherwise (a pipe, a CI log, a
 * terminal with TERM=dumb, which cannot move its cursor) a plain line per pool every virtual hour. Colour only on a terminal without NO_COLOR.
 */

export interface DemoFlags {
  fleet: string;
  policy: string;
  hours: number;
  every: number;
}

/** What the demo's text fits in: the width of the smallest usual terminal, less one. */
const WIDTH = 79;
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
  const input = await loadSimulationInput(flags.fleet, flags.hours);
  const c = colorsFor(io.stdout, options);
  // Redrawn in place on a terminal that can move its cursor; plain lines otherwise.
  const live = Boolean(io.stdout.isTTY) && options.cursor;
  const topic = policy.alerts.topic;
  // As shown: a file name is anyone's text, and a terminal escape in it would act on the terminal.
  const fleetName = oneLine(relative(process.cwd(), flags.fleet) || flags.fleet);
  const policyName = oneLine(relative(process.cwd(), flags.policy) || flags.policy);
  // A day of runs that govern nothing, each failing, would say nothing about the governor.
  assertGoverns(policy, input.fleet, { policy: policyName, fleet: fleetName });
  // Each run publishes its alerts before it writes, and the emulator has only the fleet's topics:
  // without the policy's topic every run of the day would fail.
  if (topic && !input.fleet.topics.includes(topic))
    throw new InputError(
      `policy ${policyName} publishes its alerts on ${topic}, which the fleet does not list under topics (${fleetName}): every run would fail before it writes; add the topic to the fleet's topics (docs/emulator.md), or play a policy without alerts.topic`,
      [],
    );
  io.stdout.write(
    [
      c.bold(
        `Cloud Run GPU governor: ${flags.hours === 24 ? 'a simulated day' : plural(flags.hours, 'simulated hour')}`,
      ),
      `fleet ${fleetName}, policy ${policyName}`,
      '',
      ...wrap(
        `Every ${flags.every} virtual minutes for ${flags.hours} h, the governor observes the embedded emulator of Cloud Run, Monitoring and Cloud Quotas through Google's own clients, plans, writes each service's max instances and ${topic ? `publishes its alerts on the emulator's Pub/Sub (${topic})` : 'logs its alerts (the policy sets no alerts.topic)'}. The same demand is played with the fleet's static caps and with over-commit, to compare.`,
      ),
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
    strategies: ['governor'],
    viaEmulator: true,
    series: false,
    onPublish,
    // The day played stands when the emulator fails to close after it.
    onCloseFailure: warnClose("the emulator and Google's clients", io),
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
  return violations > 0 || gov.totals.failedRuns > 0 ? 1 : 0;
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
  const { shared, labels } = poolLabels(view.pools);
  const nameWidth = Math.max(shared.length, ...labels.map((n) => n.length));
  const row = (cells: string[]) =>
    `  ${(cells[0] ?? '').padEnd(nameWidth)}${cells
      .slice(1)
      .map((x, k) => `  ${x.padStart(COLUMNS[k]?.length ?? 0)}`)
      .join('')}`;
  lines.push(c.dim(row([shared, ...COLUMNS])));
  view.pools.forEach((p, i) => {
    lines.push(
      row([
        labels[i] ?? '',
        count(p.quota),
        count(p.caps),
        count(p.inUse),
        count(p.demand),
        count(p.refusedSoFar),
        count(baseline.get(p.pool) ?? 0),
      ]),
    );
  });
  lines.push(c.dim('  refused so far, in GPU-minutes: by the governor, and under the static caps'));
  lines.push('');
  lines.push(c.bold(`Alerts received by a subscriber (${alerts.length}), latest:`));
  const latest = alerts.slice(-ALERTS_SHOWN);
  for (const a of latest) lines.push(`  ${alertLine(a, c)}`);
  for (let i = latest.length; i < ALERTS_SHOWN; i++) lines.push('');
  return lines;
}

/** The live view's columns after the pool's: GPUs, then GPU-minutes refused so far. */
const COLUMNS = ['quota', 'caps', 'in use', 'demand', 'refused', 'static caps'];

/**
 * The pools' labels in the live view: only what tells them apart (project, region, accelerator,
 * zonal redundancy), with what they all share said once, in the column's header, so that the
 * table fits a terminal's width.
 */
export function poolLabels(pools: readonly (PoolId & { project: string })[]): {
  shared: string;
  labels: string[];
} {
  const parts = pools.map((p) => [
    p.project,
    p.region,
    p.accelerator,
    p.zonalRedundancy ? 'zonal redundancy' : 'no zonal redundancy',
  ]);
  const same = [0, 1, 2, 3].map((k) => new Set(parts.map((x) => x[k])).size === 1);
  // Zonal redundancy, the default, goes unsaid when every pool has it.
  // The project, when there is one, is in the fleet the demo names.
  const sharedParts = (parts[0] ?? []).filter(
    (v, k) => same[k] && k !== 0 && v !== 'zonal redundancy',
  );
  const labels = parts.map((x) => x.filter((_, k) => !same[k]).join(' '));
  if (labels.every((l) => l === '')) return { shared: 'pool', labels: [sharedParts.join(' ')] };
  return { shared: sharedParts.join(' ') || 'pool', labels };
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
    // A line longer than the terminal wraps, and the cursor would no longer go back to the top
    // of the block: each is cut to the width.
    const columns = this.io.stdout.columns;
    const lines = (this.pending ?? []).map((l) => (columns ? fit(l, columns - 1) : l));
    this.pending = null;
    // Up to the first line of the block, then each line cleared and written again.
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of lines) out += `\r\x1b[2K${line}\n`;
    this.io.stdout.write(out);
    this.drawn = lines.length;
  }
}

/** The terminal's control sequence introducer (ESC [), and one colour sequence (SGR) as a split group. */
const CSI = '\u001b[';
const SGR = new RegExp(`(${CSI.replace('[', '\\[')}[0-9;]*m)`);

/**
 * A line cut to `width` characters as they show: escape sequences (colours) count for nothing and
 * are kept, and a cut line ends with a reset.
 */
export function fit(line: string, width: number): string {
  let shown = 0;
  let out = '';
  for (const part of line.split(SGR)) {
    if (part.startsWith(CSI)) {
      out += part;
      continue;
    }
    const chars = [...part];
    if (shown + chars.length > width) {
      out += chars.slice(0, Math.max(0, width - shown - 1)).join('') + '…';
      return out.includes(CSI) ? `${out}${CSI}0m` : out;
    }
    out += part;
    shown += chars.length;
  }
  return out;
}

/** Prose for a terminal: words wrapped at `width` characters. */
function wrap(text: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** What one strategy did over the day, for the summary. */
interface DayFigures {
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
function summaryTable(rows: readonly DayFigures[], c: Colors): string[] {
  const columns: [string, (f: DayFigures) => string][] = [
    ['refused', (f) => count(f.refused)],
    ['at cap', (f) => count(f.atCap)],
    ['no GPU', (f) => count(f.noGpu)],
    ['over quota', (f) => `${count(f.capsOverQuotaMinutes)} min`],
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
  const g = figures('the governor', gov, writes);
  const f = figures("the fleet's static caps", strategy(baselines, 'fleet-caps'), 0);
  const o = figures('over-commit', strategy(baselines, 'over-commit'), 0);
  const out = [
    c.bold(
      baselines.minutes === 24 * 60
        ? 'Summary of the day (24 h, the same demand for all three):'
        : `Summary of the ${(baselines.minutes / 60).toFixed(0)} h played (the same demand for all three):`,
    ),
    '',
    ...summaryTable([g, f, o], c),
    '',
    ...wrap(
      'refused: GPU-minutes of demand not served, either at the cap (the service was at its max instances: Cloud Run answers 429) or for want of a GPU (no GPU free in the quota: an instance could not start); over quota: pool-minutes in which the caps summed above the quota; over-commit: every cap at the whole quota, which is all Cloud Run checks.',
    ).map((l) => c.dim(l)),
    '',
  ];
  if (f.refused > 0) {
    const saved = 1 - g.refused / f.refused;
    out.push(
      ...wrap(
        saved >= 0
          ? `The governor refused ${Math.round(saved * 100)}% fewer GPU-minutes than the fleet's static caps, with its caps within the quota at every write.`
          : `The governor refused ${Math.round(-saved * 100)}% more GPU-minutes than the fleet's static caps on this fleet.`,
      ),
    );
  }
  const noGpu =
    o.noGpu === 0
      ? 'none of them for want of a GPU here'
      : `${o.noGpu === o.refused ? 'every one' : `${count(o.noGpu)} of them`} an instance that could not start because other services held every GPU`;
  out.push(
    ...wrap(
      o.refused === 0
        ? `Over-commit refused nothing here, with its caps above the quota for ${count(o.capsOverQuotaMinutes)} pool-minutes: when demand fills the pool, whoever scales up first takes the GPUs, whatever the priorities.`
        : `Over-commit refused ${count(o.refused)} GPU-minutes, ${noGpu}: with caps over the quota, whoever scales up first takes the GPUs, whatever the priorities.`,
    ),
  );
  const violations = gov.totals.invariantViolations ?? 0;
  out.push(
    ...wrap(
      `Writes: ${writes} max-instances ${writes === 1 ? 'update' : 'updates'} through the Cloud Run Admin API; ${violations === 0 ? 'none broke a rule of the governor (within quota, within bounds, hands off).' : `${violations} broke a rule.`}`,
    ),
  );
  for (const v of gov.violations) out.push(c.red(`  violation: ${v}`));
  out.push(...notListed(gov.violations.length, violations, 'violation').map(c.red));
  for (const x of gov.failedRuns) out.push(c.red(`  failed run: ${x}`));
  out.push(...notListed(gov.failedRuns.length, gov.totals.failedRuns, 'failed run').map(c.red));
  const byStatus = new Map<string, number>();
  for (const a of alerts) byStatus.set(alertStatus(a), (byStatus.get(alertStatus(a)) ?? 0) + 1);
  const counts = [...byStatus].map(([k, n]) => `${n} ${k}`).join(', ');
  out.push(
    ...wrap(
      topic
        ? `Alerts: a subscriber of ${topic} received ${alerts.length} ${alerts.length === 1 ? 'message' : 'messages'}${counts ? ` (${counts})` : ''}${undecoded ? `, and ${undecoded} that were not alerts` : ''}.`
        : 'Alerts: the policy sets no alerts.topic, so none were published.',
    ),
  );
  return out;
}
