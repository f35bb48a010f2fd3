import pc from 'picocolors';
import type { Alert } from '../core/alert.js';
import type { Plan, PlanPool, PlanService } from '../core/plan.js';
import { poolKey, poolWords, type PoolId } from '../core/pool.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { oneLine, someOf } from '../core/text.js';
import { groupBy } from '../core/collections.js';
import { ALIKE_LISTED, ALIKE_NAMED, alike, type Alike } from './alike.js';

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
  return groupBy(plan.services, poolKey);
}

/**
 * Why a plan row may be counted rather than listed, or null when it must be listed: a change, or a
 * service with a problem of its own (usage unknown, deploying, no max Cloud Run accepts, short of
 * its demand, cut, preempted, below its floor, a floor above its ceiling, no max set, a stamp
 * from the future; and any the plan alerts about, see {@link alerted}). What is left says nothing
 * its pool's lines do not: unchanged, unmanaged, or deferred by limits.maxChangesPerRun (the limit
 * is the same for all).
 */
function quiet(s: PlanService): 'unchanged' | 'unmanaged' | 'deferred' | null {
  const w = s.why;
  if (s.to !== s.from) return null;
  if (w.basis.kind === 'usage-unknown' || w.basis.kind === 'deploying') return null;
  if (w.basis.kind === 'unwritable') return null;
  if (
    w.shortBy ||
    w.cut ||
    w.preempted ||
    w.floorAboveCeiling ||
    w.maxUnset ||
    w.maxCounted ||
    w.futureStamps
  )
    return null;
  if (w.pool?.kind === 'infeasible' && w.pool.belowFloor) return null;
  if (!s.managed) return 'unmanaged';
  return w.deferred ? 'deferred' : 'unchanged';
}

/**
 * The services the plan's alerts name (`service.starved`: a raise deferred by
 * limits.maxChangesPerRun leaves a service short of its demand): always listed, each problem in
 * its pool's rows.
 */
function alerted(plan: Plan): Set<string> {
  return new Set(
    plan.alerts.flatMap((a) =>
      a.service === null ? [] : [`${a.project}/${a.region}/${a.service}`],
    ),
  );
}

/**
 * A pool's rows for people: each on its own, or (unless `all`) each group of more than
 * ALIKE_LISTED quiet rows of one kind as one line, after the rows listed.
 */
function poolRows(
  rows: readonly PlanService[],
  named: ReadonlySet<string>,
  all: boolean,
): { listed: PlanService[]; groups: PlanService[][] } {
  const entries: Alike<PlanService>[] = all
    ? rows.map((item) => ({ item }))
    : alike(rows, (s) => (named.has(`${s.project}/${s.region}/${s.name}`) ? null : quiet(s)));
  return {
    listed: entries.flatMap((e) => (e.item ? [e.item] : [])),
    groups: entries.flatMap((e) => (e.group ? [e.group] : [])),
  };
}

/** A group of quiet rows on one line: how many, what they are, and the first few. */
function groupLine(group: readonly PlanService[]): string {
  const [first] = group;
  if (!first) return '';
  const names = (name: (s: PlanService) => string) => someOf(group.map(name), ALIKE_NAMED);
  const deferred = first.why.deferred;
  if (quiet(first) === 'deferred' && deferred)
    return `${group.length} deferred, limits.maxChangesPerRun (${deferred.limit}) reached: for a later run (${names((s) => `${nameOf(s)} ${s.from} → ${s.why.deferred?.planned ?? s.to}`)})`;
  const what =
    quiet(first) === 'unmanaged'
      ? 'unmanaged, counted at their caps'
      : 'unchanged, with nothing to report';
  return `${group.length} ${what} (${names(nameOf)})`;
}

/** The line under a plan or status that counted services rather than listing them. */
function countedNote(groups: readonly PlanService[][], command: string): string {
  const n = groups.reduce((sum, g) => sum + g.length, 0);
  return `${n} services with nothing to report are counted, not listed: governor ${command} --all lists each (--json too).`;
}

/** "project/region accelerator", and "(no zonal redundancy)" for that pool. */
export function poolTitle(p: PoolId & { project: string }): string {
  return oneLine(`${p.project}/${poolWords(p)}`);
}

/**
 * A service's name as shown: on one line. A snapshot file's names are checked when it is read,
 * but an observation's are as Cloud Run answered them.
 */
function nameOf(s: { name: string }): string {
  return oneLine(s.name);
}

/**
 * The widest the name column grows: a longer name takes the room of its own row only (a name of
 * 30 MB in a snapshot file, padded onto every row of its pool, failed the command).
 */
const NAME_COLUMN = 63;

/** The name column's width: the longest name shown, at least `least`, at most NAME_COLUMN. */
function nameWidth(rows: readonly { name: string }[], least: number): number {
  return Math.min(widest(rows, nameOf, least), Math.max(least, NAME_COLUMN));
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

/**
 * "3 (service render-frames: 2, worker pool video-encoder: 1)": what the unmanaged GPUs are. Past
 * ALIKE_LISTED, the largest few and how many more (unless `all`), as their rows are counted.
 */
function unmanaged(p: PlanPool, all: boolean): string {
  if (p.unmanaged.length === 0) return String(p.unmanagedGpus);
  const each = p.unmanaged.map((u) => `${oneLine(u.source)}: ${u.gpus}`);
  const shown = all || each.length <= ALIKE_LISTED ? each.join(', ') : someOf(each, ALIKE_NAMED);
  return `${p.unmanagedGpus} (${shown})`;
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
  const width = nameWidth(rows, 7);
  const num = (v: number | null, w: number) => (v === null ? '–' : String(v)).padStart(w);
  const out = [c.dim(`    ${'service'.padEnd(width)}  priority  weight  cap`)];
  for (const s of rows) {
    const name = nameOf(s).padEnd(width);
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
  options: { status?: boolean; alike?: string } = {},
): string[] {
  const out = [c.bold(title)];
  // With `alike` (where each alert of a group can be read whole), more than ALIKE_LISTED alerts
  // of services of one type, severity and status are one line naming the first few, as Terraform
  // gathers warnings alike: 644 service.starved of 3,000 services, one per deferred raise.
  const entries: Alike<Alert>[] =
    options.alike !== undefined
      ? alike(alerts, (a) =>
          a.service === null ? null : JSON.stringify([a.type, a.severity, a.status]),
        )
      : alerts.map((item) => ({ item }));
  const shown = entries.flatMap((e) => (e.item ? [e.item] : e.group.slice(0, 1)));
  const sevWidth = widest(shown, (a) => a.severity);
  const statusWidth = widest(shown, alertStatus);
  const typeWidth = widest(shown, (a) => a.type);
  for (const { item, group } of entries) {
    const a = item ?? group[0];
    if (!a) continue;
    const padded = a.severity.padEnd(sevWidth);
    const sev =
      a.severity === 'WARNING' ? c.yellow(padded) : a.severity === 'INFO' ? padded : c.red(padded);
    const status = options.status ? `${alertStatus(a).padEnd(statusWidth)}  ` : '';
    const text = group
      ? `${group.length} services (${someOf(
          group.map((g) => oneLine(g.service ?? '')),
          ALIKE_NAMED,
        )}): ${options.alike ?? ''}`
      : oneLine(a.summary);
    out.push(`  ${sev}  ${status}${a.type.padEnd(typeWidth)}  ${text}`);
  }
  return out;
}

/**
 * The alerts a run sent, as `governor apply` lists them: alike alerts of more than ALIKE_LISTED
 * services are one line, each of them being a message of its own on the topic (a run of 3,000
 * services printed 644 service.starved lines). Without a topic nothing was sent, and `governor
 * plan --all` lists each.
 */
export function renderRunAlerts(
  alerts: readonly Alert[],
  c: Colors,
  topic: string | null,
): string[] {
  const where = topic ? `published to ${topic}` : 'not published: the policy sets no alerts.topic';
  return renderAlerts(alerts, c, `Alerts (${alerts.length}, ${where}):`, {
    status: true,
    alike: topic ? 'each a message of its own on the topic' : 'governor plan --all lists each',
  });
}

/** Text from elsewhere on one line (core/text.ts). */
export { oneLine };

/**
 * A plan for people, in the manner of `terraform plan`. `alerts: false` leaves out the plan's
 * alerts (for a run that prints the alerts it published instead). Every change and every service
 * with a problem has its row; past ALIKE_LISTED alike in a pool, the quiet ones are counted on one
 * line, and so are alike alerts of services, unless `all`.
 */
export function renderPlan(
  plan: Plan,
  c: Colors,
  options: { alerts?: boolean; all?: boolean } = {},
): string {
  const out: string[] = [];
  const counted: PlanService[][] = [];
  const named = alerted(plan);
  out.push(c.bold(`Governor plan at ${plan.at}`) + c.dim(` (mode: ${plan.mode})`));
  const byPool = servicesByPool(plan);
  for (const p of plan.pools) {
    const color = c[STATUS_COLOR[p.status]] as (s: string) => string;
    out.push('');
    out.push(`${c.bold(`pool ${poolTitle(p)}`)}  ${color(`[${p.status}]`)}`);
    // Unknown: its source says so, with why when the observation recorded it (core/planner.ts).
    const quota =
      p.quota === null ? oneLine(p.quotaSource) : `${p.quota} (${oneLine(p.quotaSource)})`;
    out.push(
      `  quota ${quota} · reserve ${p.reserve} · unmanaged ${unmanaged(p, options.all ?? false)} · budget ${p.budget ?? 'unknown'} GPUs`,
    );
    const rows = byPool.get(poolKey(p)) ?? [];
    out.push(
      `  caps ${p.capsBefore} → ${p.capsAfter} · in use ${inUseText(p, rows)} · demand ${p.demand} · floors ${p.floors}`,
    );
    if (p.note) out.push(c.dim(`  ${oneLine(p.note)}`));
    if (rows.length === 0) continue;
    out.push('');
    const { listed, groups } = poolRows(rows, named, options.all ?? false);
    for (const row of serviceRows(listed, c)) out.push(row);
    for (const group of groups)
      out.push(c.dim(`  ${group[0]?.managed === false ? '=' : ' '} … ${groupLine(group)}`));
    counted.push(...groups);
  }
  if (options.alerts !== false && plan.alerts.length > 0) {
    out.push('');
    for (const line of renderAlerts(
      plan.alerts,
      c,
      `Alerts (${plan.alerts.length}):`,
      options.all ? {} : { alike: "each in its pool's rows above" },
    ))
      out.push(line);
  }
  const raise = plan.changes.filter((x) => x.to > x.from).length;
  const lower = plan.changes.filter((x) => x.to < x.from).length;
  // A deferred service keeps its cap this run, but it is counted once: among the deferred.
  const same = plan.services.filter((s) => s.managed && s.to === s.from && !s.why.deferred).length;
  out.push('');
  out.push(
    c.bold('Plan: ') +
      `${raise} to raise, ${lower} to lower, ${same} unchanged` +
      (plan.deferred.length ? `, ${plan.deferred.length} deferred` : '') +
      '. Changes run in order: within each pool every decrease before any increase.',
  );
  if (counted.length > 0) out.push(c.dim(countedNote(counted, 'plan')));
  return out.join('\n') + '\n';
}

/**
 * Each pool at a glance: quota, budget, caps, use and demand, and a row per service (past
 * ALIKE_LISTED alike, the quiet ones counted unless `all`, as in the plan). The pool's figures
 * are GPUs, a service's are instances, each of its GPUs per instance (`× 2`): without them the
 * rows of a pool of 2-GPU services summed to half its line.
 */
export function renderStatus(plan: Plan, c: Colors, options: { all?: boolean } = {}): string {
  const out: string[] = [c.bold(`Governor status at ${plan.at}`)];
  const counted: PlanService[][] = [];
  const named = alerted(plan);
  const byPool = servicesByPool(plan);
  for (const p of plan.pools) {
    const color = c[STATUS_COLOR[p.status]] as (s: string) => string;
    out.push('');
    out.push(`${c.bold(poolTitle(p))}  ${color(`[${p.status}]`)}`);
    const rows = byPool.get(poolKey(p)) ?? [];
    out.push(
      `  quota ${p.quota ?? 'unknown'} · reserve ${p.reserve} · unmanaged ${unmanaged(p, options.all ?? false)} · budget ${p.budget ?? 'unknown'} · caps ${p.capsBefore} · in use ${inUseText(p, rows)} · demand ${p.demand} GPUs`,
    );
    if (rows.length === 0) continue;
    const { listed, groups } = poolRows(rows, named, options.all ?? false);
    const width = nameWidth(listed, 7);
    const cell = (v: number | null) => String(v ?? '?').padStart(6);
    out.push(
      c.dim(
        `  ${'service'.padEnd(width)}  in use   peak demand    cap   plan  × GPUs  governed  (instances)`,
      ),
    );
    for (const s of listed) {
      const plan = s.to === s.from ? '     =' : cell(s.to);
      out.push(
        `  ${nameOf(s).padEnd(width)}  ${cell(s.inUse)} ${cell(s.peak)} ${cell(s.demand)} ${cell(s.from)} ${plan}  ${`× ${s.gpusPerInstance}`.padStart(6)}  ${s.managed ? 'yes' : c.dim('no')}`,
      );
    }
    for (const group of groups) out.push(c.dim(`  … ${groupLine(group)}`));
    counted.push(...groups);
  }
  if (counted.length > 0) out.push('', c.dim(countedNote(counted, 'status')));
  out.push('');
  return out.join('\n');
}
