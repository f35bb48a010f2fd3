import type { Plan } from '../core/plan.js';
import { restoreProgress } from '../core/restore.js';
import {
  CAUSE_LABELS,
  writtenShort,
  type WriteCause,
  type WriteResult,
} from '../core/write-result.js';
import { poolKey, poolWords } from '../core/pool.js';
import { serviceKey } from '../core/snapshot.js';
import { unreadableOriginal } from '../core/why.js';
import { gcloudUpdate } from '../core/gcloud.js';
import { listOnOneLine, oneLine, someOf } from '../core/text.js';
import { groupBy } from '../core/collections.js';
import { ALIKE_LISTED } from './alike.js';
import { UsageError } from '../core/errors.js';
import { textLogger } from '../log.js';
import type { QuotaRequestToConfirm } from '../reconcile/quota-requests.js';
import { reconcile, RunFailedError, type RunReport } from '../reconcile/reconcile.js';
import { skipsByCause } from '../reconcile/run-record.js';
import { checkStateStore, closeRuntime, createRuntime, newRunId } from '../runtime.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import { failureLine } from './hints.js';
import { askYes, mustFinish } from './finishing.js';
import type { Streams } from './io.js';
import { colorsFor, renderRunAlerts, renderPlan } from './render.js';
import { assertReadyToRead } from './ready.js';

interface ApplyFlags {
  policy: string;
  yes?: boolean;
  dryRun?: boolean;
  stateDir?: string;
}

/**
 * `governor apply` and `governor restore`: observe, plan, write, alert, through the same
 * reconcile run as the Cloud Function. Asks before writing on a terminal unless --yes; refuses to
 * write without --yes when no one can be asked.
 */
export async function runApply(
  flags: ApplyFlags,
  io: Streams,
  options: RuntimeOptions,
  restore = false,
): Promise<number> {
  const policy = await loadPolicy(flags.policy, { forProjects: restore ? 'restore' : 'apply' });
  const interactive = Boolean(process.stdin.isTTY && io.stdout.isTTY);
  const willWrite = !flags.dryRun && policy.mode === 'enforce';
  if (willWrite && !flags.yes && !interactive) {
    throw new UsageError(
      'not on a terminal, so nothing can be confirmed: pass --yes to write, or --dry-run',
    );
  }
  const log = textLogger(io.stderr);
  await assertReadyToRead(options);
  await checkStateStore(options.stateStore, flags.stateDir, 'write');
  const runtime = await createRuntime(
    policy,
    options,
    log,
    flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {},
  );
  const c = colorsFor(io.stdout, options);
  let ended: RunReport | RunFailedError;
  try {
    const runId = newRunId(Date.now());
    ended = await mustFinish(() =>
      reconcile(policy, runtime, {
        runId,
        deadlineMs: options.runDeadlineMs,
        writerId: options.governorId,
        restore,
        unlockHint: `governor unlock --policy ${flags.policy}${flags.stateDir ? ` --state-dir ${flags.stateDir}` : ''}`,
        ...(flags.dryRun ? { mode: 'dry-run' as const } : {}),
        confirm: async (plan: Plan) => {
          // The plan's alerts are left out here: the run prints what it published, once, below.
          io.stdout.write(renderPlan(plan, c, { alerts: false }));
          if (flags.yes) return true;
          return askYes(`\nWrite these ${plan.changes.length} change(s)? Only "yes" is accepted: `);
        },
        // A quota request is a write at Google, apart from the caps: asked for on its own.
        ...(flags.yes
          ? {}
          : {
              confirmQuotaRequest: async (r: QuotaRequestToConfirm) => {
                io.stdout.write(quotaRequestPrompt(r));
                // Asked after the caps were written: a no (or a signal) leaves those written.
                return askYes(
                  'File this quota request? Only "yes" is accepted: ',
                  'quota request not confirmed, not filed; the run goes on to its end (the caps it wrote, its record, its lease)',
                );
              },
            }),
      }),
    );
  } catch (e) {
    if (!(e instanceof RunFailedError)) throw e;
    ended = e;
  } finally {
    await closeRuntime(runtime, log);
  }
  // Printed once the clients are closed, as a run that ends is: a reader gone meanwhile (`| head`)
  // ends the process at the next turn of the event loop, with the exit code set by then, so
  // nothing awaited may come between the last write and the return (bin/governor.js).
  if (ended instanceof RunFailedError) {
    // One line on stderr; how far the run got on stdout.
    io.stderr.write(failureLine(listOnOneLine(ended.message), options));
    io.stdout.write(summary(ended.report) + '\n');
    return 1;
  }
  const report = ended;
  if (report.plan && (report.mode === 'dry-run' || report.plan.changes.length === 0))
    io.stdout.write(renderPlan(report.plan, c, { alerts: false }));
  if (report.alerts.length > 0) {
    io.stdout.write(
      '\n' + renderRunAlerts(report.alerts, c, policy.alerts.topic ?? null).join('\n') + '\n',
    );
  }
  io.stdout.write('\n' + summary(report) + '\n');
  if (restore && report.plan && report.outcome !== 'declined' && report.outcome !== 'lease-held')
    io.stdout.write(restoreSummary(report.plan, report) + '\n');
  return report.outcome === 'failed' || report.outcome === 'lease-held' ? 1 : 0;
}

/** How far `governor restore` got, and what to do when it could not finish. */
export function restoreSummary(plan: Plan, r: RunReport): string {
  const written = new Map(
    r.writes
      .filter((w) => w.outcome === 'written' && w.written !== null)
      .map((w) => [serviceKey(w), w.written as number]),
  );
  // The services whose write this run did not make for a cause other than the room (changed
  // meanwhile, another governor, the deadline, a failure): the room is not what holds them. Any
  // other service still away was held by the room: a raise not sent for it (`no-room`), written
  // short, lowered back as the pool filled, or left short by the plan itself.
  const notForRoom = new Set(
    r.writes
      .filter((w) => w.outcome !== 'written' && w.cause !== 'no-room' && w.cause !== 'compensated')
      .map(serviceKey),
  );
  const dry = r.mode === 'dry-run';
  const p = restoreProgress(plan, dry ? new Map() : written);
  const lines = [
    dry
      ? `Restore (dry run): ${p.restored} of ${p.total} governed service(s) already at their max from before the governor; ${p.total - p.restored} to restore, as far as each pool has room.`
      : `Restore: ${p.restored} of ${p.total} governed service(s) are back at their max from before the governor.`,
  ];
  if (p.deferred) {
    const { count, limit } = p.deferred;
    lines.push(
      dry
        ? `  At most ${limit} change(s) per run (limits.maxChangesPerRun): ${count} left for the next restore.`
        : `  ${count} change(s) left for the next restore: this run made at most ${limit} (limits.maxChangesPerRun); run \`governor restore\` again.`,
    );
  }
  for (const u of p.unreadable) {
    lines.push(`  ${u.service}: ${unreadableOriginal(u.annotation, u.place)}.`);
  }
  for (const n of p.notGoverned) {
    lines.push(
      n.before === null
        ? `  ${n.service} (${n.at}, no max before the governor that can be written back): the governor changed it, but the policy no longer governs it: restore leaves it as it is (set its max by hand, or govern it again).`
        : `  ${n.service} (${n.at}, its max before the governor was ${n.before}): the governor changed it, but the policy no longer governs it: restore leaves it as it is (${gcloudUpdate(n.place)} --max ${n.before} puts it back by hand, or govern it again).`,
    );
  }
  for (const w of p.waiting) {
    const overBudget = w.budget !== null && w.needs > w.budget;
    // A dry run cannot know the room a run would find, but it can tell a restore that cannot fit.
    if (dry && !overBudget) continue;
    const names = w.services
      .map(
        (s) =>
          `${s.name} (${s.at}, back to ${s.target}${s.deferred ? ', by the next restore' : ''})`,
      )
      .join(', ');
    lines.push(`  ${w.pool}: ${dry ? 'to restore' : 'not yet'}: ${names}.`);
    const pool = plan.pools.find((q) => poolKey(q) === w.pool);
    const held = w.services.filter((s) => !s.deferred);
    // Not for the room (changed meanwhile, another writer, the deadline, a failure): the
    // reasons are listed above, with the writes not made. A pool whose maxes from before cannot
    // all fit its budget still has these to run again for: the quota is not what holds them.
    const other = held
      .filter((s) => pool !== undefined && notForRoom.has(serviceKey({ ...pool, name: s.name })))
      .map((s) => s.name);
    if (overBudget && w.budget !== null) {
      const update = pool ? gcloudUpdate({ ...pool, name: 'S' }) : 'gcloud run services update S';
      lines.push(
        `    Their max from before the governor needs ${w.needs} GPUs but the pool's budget is ${w.budget}: restore cannot finish until the quota grows by ${w.needs - w.budget} GPUs, or you set lower maxes by hand (${update} --max N).`,
      );
    } else if (held.length > other.length) {
      lines.push(
        '    The pool has no room for them yet: run `governor restore` again; each run restores as far as the room allows, until every service is back.',
      );
    }
    if (other.length > 0)
      lines.push(
        `    ${other.join(', ')}: not written by this run, for the reason given above: run \`governor restore\` again.`,
      );
  }
  return lines.join('\n');
}

export function summary(r: RunReport): string {
  if (r.outcome === 'lease-held' && r.plan === null) {
    return `Nothing done: another governor holds the lease of ${r.leaseHeld.map((l) => l.project).join(', ')}.`;
  }
  if (r.outcome === 'declined') return 'Nothing written: not confirmed.';
  const count = (o: string) => r.writes.filter((w) => w.outcome === o).length;
  const misconfigured = new Set(r.findings.map((f) => `${f.project}/${f.region}/${f.service}`))
    .size;
  const lines = [
    `Run ${r.runId} (${r.mode}): ${count('written')} written, ${count('skipped')} skipped, ${count('failed')} failed, ${r.plan?.deferred.length ?? 0} deferred; ${misconfigured} misconfigured service(s); ${r.published} alert message(s).`,
  ];
  const compensated = r.writes.filter((w) => w.cause === 'compensated').length;
  if (compensated > 0)
    lines.push(
      `  ${compensated} raise(s) lowered back: the pool was over its quota just after them (another writer, or a quota cut, meanwhile)`,
    );
  const fenced = r.writes.filter((w) => w.cause === 'fenced').length;
  if (fenced > 0)
    lines.push(
      `  ${fenced} raise(s) that got no answer fenced off: their max written back with the etag they were sent with, so that none lands later; no cap changed, the next run decides again`,
    );
  const byCause = Object.entries(skipsByCause(r.writes)).sort(([, a], [, b]) => b - a);
  if (byCause.length > 0)
    lines.push(
      `  not written, by cause: ${byCause.map(([k, n]) => `${CAUSE_LABELS[k as WriteCause]} ${n}`).join(', ')}`,
    );
  // Writes not made, and raises written short of the plan printed above, for the same reason: each on its line, or past a few one line naming the
  // first (a run of 3,000 services that reached its deadline skipped 1,910 alike).
  const alike = groupBy(
    r.writes.filter((x) => x.outcome !== 'written' || writtenShort(x)),
    (w) => JSON.stringify([label(w), w.reason]),
  );
  const change = (w: WriteResult) =>
    `${w.project}/${w.region}/${w.name} ${w.from} → ${
      w.outcome === 'written' ? `${w.written} (${w.planned} planned)` : w.planned
    }`;
  for (const group of alike.values()) {
    const [first] = group;
    if (!first) continue;
    if (group.length <= NOT_WRITTEN_LISTED) {
      for (const w of group) lines.push(`  ${label(w)}: ${change(w)}: ${oneLine(w.reason)}`);
    } else {
      lines.push(
        `  ${label(first)}: ${group.length} changes (${someOf(group.map(change), NOT_WRITTEN_NAMED)}): ${oneLine(first.reason)}`,
      );
    }
  }
  return lines.join('\n');
}

/** How the summary names a write not made, or one written short of the plan. */
function label(w: WriteResult): string {
  return w.outcome === 'written' ? 'written short' : w.outcome;
}

/** More writes not made for the same reason than this print as one line (cli/alike.ts). */
export const NOT_WRITTEN_LISTED = ALIKE_LISTED;
/** The changes such a line names, before "and N more": fewer than the names of other lines, as each is longer. */
const NOT_WRITTEN_NAMED = 3;

/** What `governor apply` shows before it asks to file a quota request (docs/quota-requests.md). */
export function quotaRequestPrompt(r: QuotaRequestToConfirm): string {
  const how =
    r.kind === 'create' ? `a new quota preference ${r.preference}` : `raising ${r.preference}`;
  return (
    `\nQuota request (quotaRequests.enabled): ask Google for a GPU quota of ${r.preferredValue} ` +
    `in ${r.project} ${poolWords(r)}, now ${r.from}, as ${how}.\n` +
    `  Justification: ${oneLine(r.justification)}\n`
  );
}
