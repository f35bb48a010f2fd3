import pc from 'picocolors';
import type { Alert } from '../core/alert.js';
import type { Plan, PlanPool, PlanService } from '../core/plan.js';
import { poolKey, poolWords, type PoolId } from '../core/pool.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { oneLine } from '../core/text.js';

/** Colours for a terminal, or none (not a TTY, NO_COLOR set). */
export type Colors = ReturnType<typeof pc.createColors>;

/** Colours when the options ask for them, or (`auto`) when the stream is a terminal. */
export function colorsFor(
  stream: { isTTY?: boolean },
  options: Pick<RuntimeOptions, 'color'>,
): Colors {
  return pc.createColors(
    options.color === 'always' || (options.color === 'auto' && Boolean(stream.isTTY)),
  );
}

const STATUS_COLOR: Record<PlanPool['status'], keyof Colors> = {
  ok: 'green',
  pressure: 'yellow',
  'over-budget': 'red',
  infeasible: 'red',
  'unknown-quota': 'yellow',
};

/** The plan's service rows grouped by pool key, in plan order. */
function servicesByPool(plan: Plan): Map<string, PlanService[]> {
  const byPool = new Map<string, PlanService[]>();
  for (const s of plan.services) {
    const key = poolKey(s);
    const rows = byPool.get(key);
    if (rows) rows.push(s);
    else byPool.set(key, [s]);
  }
  return byPool;
}

/** "project/region accelerator", and "(no zonal redundancy)" for that pool. */
export function poolTitle(p: PoolId & { project: string }): string {
  return `${p.project}/${poolWords(p)}`;
}

/**
 * The pool's GPUs in use, as far as known: the plan sums known usage only, so a pool whose
 * governed services' usage is partly unknown shows a lower bound, and wholly unknown shows "?".
 */
function inUseText(p: PlanPool, rows: readonly PlanService[]): string {
  const governed = rows.filter((s) => s.managed);
  const unknown = governed.filter((s) => s.inUse === null).length;
  if (unknown === 0) return String(p.inUse);
  if (unknown === governed.length) return '? (usage unknown)';
  return `≥ ${p.inUse} (${unknown} of ${governed.length} unknown)`;
}

/** "3 (service render-frames: 2, worker pool video-encoder: 1)": what the unmanaged GPUs are. */
function unmanaged(p: PlanPool): string {
  if (p.unmanaged.length === 0) return String(p.unmanagedGpus);
  return `${p.unmanagedGpus} (${p.unmanaged.map((u) => `${u.source}: ${u.gpus}`).join(', ')})`;
}

/**
 * The longest text of the items, at least `least`: a loop, as a spread (`Math.max(...rows)`)
 * passes every item as an argument, and a plan of some 120,000 services overflowed the stack.
 */
function widest<T>(items: readonly T[], text: (item: T) => string, least = 0): number {
  let width = least;
  for (const item of items) width = Math.max(width, text(item).length);
  return width;
}

/**
 * One pool's services: priority and weight beside each, so a reader sees why one was cut and
 * another kept; then the cap (before → after) and the reason.
 */
function serviceRows(rows: readonly PlanService[], c: Colors): string[] {
  const width = widest(rows, (s) => s.name, 7);
  const num = (v: number | null, w: number) => (v === null ? '–' : String(v)).padStart(w);
  const out = [c.dim(`    ${'service'.padEnd(width)}  priority  weight  cap`)];
  for (const s of rows) {
    const name = s.name.padEnd(width);
    const pw = `${num(s.priority, 8)}  ${num(s.weight, 6)}`;
    if (!s.managed) {
      out.push(
        c.dim(
          `  = ${name}  ${num(null, 8)}  ${num(null, 6)}  ${String(s.from).padStart(3)}        ${oneLine(s.reason)}`,
        ),
      );
    } else if (s.to === s.from) {
      out.push(
        `    ${name}  ${pw}  ${String(s.from).padStart(3)}        ${c.dim(oneLine(s.reason))}`,
      );
    } else {
      const up = s.to > s.from;
      const mark = up ? c.green('~') : c.red('~');
      const arrow = `${String(s.from).padStart(3)} → ${String(s.to).padEnd(3)}`;
      out.push(
        `  ${mark} ${c.bold(name)}  ${pw}  ${up ? c.green(arrow) : c.red(arrow)}  ${oneLine(s.reason)}`,
      );
    }
  }
  return out;
}

/** How an alert message's status reads: a re-notification of a condition says "still firing". */
export function alertStatus(a: Alert): string {
  if (a.status === 'firing' && a.details['renotify'] === true) return 'still firing';
  return a.status;
}

/**
 * Alerts as a list, one line each: severity, status (for published messages), type and summary,
 * in columns as wide as their longest entry. Not log lines: an ERROR alert is news about the
 * fleet, not a failure of this program.
 */
export function renderAlerts(
  alerts: readonly Alert[],
  c: Colors,
  title: string,
  options: { status?: boolean } = {},
): string[] {
  const out = [c.bold(title)];
  const sevWidth = widest(alerts, (a) => a.severity);
  const statusWidth = widest(alerts, alertStatus);
  const typeWidth = widest(alerts, (a) => a.type);
  for (const a of alerts) {
    const padded = a.severity.padEnd(sevWidth);
    const sev =
      a.severity === 'WARNING' ? c.yellow(padded) : a.severity === 'INFO' ? padded : c.red(padded);
    const status = options.status ? `${alertStatus(a).padEnd(statusWidth)}  ` : '';
    out.push(`  ${sev}  ${status}${a.type.padEnd(typeWidth)}  ${oneLine(a.summary)}`);
  }
  return out;
}

/** Text from elsewhere on one line (core/text.ts). */
export { oneLine };

/**
 * A plan for people, in the manner of `terraform plan`. `alerts: false` leaves out the plan's
 * alerts (for a run that prints the alerts it published instead).
 */
export function renderPlan(plan: Plan, c: Colors, options: { alerts?: boolean } = {}): string {
  const out: string[] = [];
  out.push(c.bold(`Governor plan at ${plan.at}`) + c.dim(` (mode: ${plan.mode})`));
  const byPool = servicesByPool(plan);
  for (const p of plan.pools) {
    const color = c[STATUS_COLOR[p.status]] as (s: string) => string;
    out.push('');
    out.push(`${c.bold(`pool ${poolTitle(p)}`)}  ${color(`[${p.status}]`)}`);
    const quota = p.quota === null ? 'unknown' : `${p.quota} (${oneLine(p.quotaSource)})`;
    out.push(
      `  quota ${quota} · reserve ${p.reserve} · unmanaged ${unmanaged(p)} · budget ${p.budget ?? 'unknown'} GPUs`,
    );
    const rows = byPool.get(poolKey(p)) ?? [];
    out.push(
      `  caps ${p.capsBefore} → ${p.capsAfter} · in use ${inUseText(p, rows)} · demand ${p.demand} · floors ${p.floors}`,
    );
    if (p.note) out.push(c.dim(`  ${oneLine(p.note)}`));
    if (rows.length === 0) continue;
    out.push('');
    for (const row of serviceRows(rows, c)) out.push(row);
  }
  if (options.alerts !== false && plan.alerts.length > 0) {
    out.push('');
    for (const line of renderAlerts(plan.alerts, c, `Alerts (${plan.alerts.length}):`))
      out.push(line);
  }
  const raise = plan.changes.filter((x) => x.to > x.from).length;
  const lower = plan.changes.filter((x) => x.to < x.from).length;
  const same = plan.services.filter((s) => s.managed && s.to === s.from).length;
  out.push('');
  out.push(
    c.bold('Plan: ') +
      `${raise} to raise, ${lower} to lower, ${same} unchanged` +
      (plan.deferred.length ? `, ${plan.deferred.length} deferred` : '') +
      '. Changes run in order: within each pool every decrease before any increase.',
  );
  return out.join('\n') + '\n';
}

/** Each pool at a glance: quota, budget, caps, use and demand, and one row per service. */
export function renderStatus(plan: Plan, c: Colors): string {
  const out: string[] = [c.bold(`Governor status at ${plan.at}`)];
  const byPool = servicesByPool(plan);
  for (const p of plan.pools) {
    const color = c[STATUS_COLOR[p.status]] as (s: string) => string;
    out.push('');
    out.push(`${c.bold(poolTitle(p))}  ${color(`[${p.status}]`)}`);
    const rows = byPool.get(poolKey(p)) ?? [];
    out.push(
      `  quota ${p.quota ?? 'unknown'} · reserve ${p.reserve} · unmanaged ${unmanaged(p)} · budget ${p.budget ?? 'unknown'} · caps ${p.capsBefore} · in use ${inUseText(p, rows)} · demand ${p.demand} GPUs`,
    );
    if (rows.length === 0) continue;
    const width = widest(rows, (s) => s.name, 7);
    const cell = (v: number | null) => String(v ?? '?').padStart(6);
    out.push(c.dim(`  ${'service'.padEnd(width)}  in use   peak demand    cap   plan  governed`));
    for (const s of rows) {
      const plan = s.to === s.from ? '     =' : cell(s.to);
      out.push(
        `  ${s.name.padEnd(width)}  ${cell(s.inUse)} ${cell(s.peak)} ${cell(s.demand)} ${cell(s.from)} ${plan}  ${s.managed ? 'yes' : c.dim('no')}`,
      );
    }
  }
  out.push('');
  return out.join('\n');
}
