import { createInterface } from 'node:readline/promises';
import type { Plan } from '../core/plan.js';
import { UsageError } from '../errors.js';
import { assertCredentials } from '../adapters/credentials.js';
import { textLogger } from '../log.js';
import { reconcile, RunFailedError, type RunReport } from '../reconcile/reconcile.js';
import { createRuntime, newRunId } from '../runtime.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import type { Streams } from './io.js';
import { colorsFor, renderPlan } from './render.js';

export interface ApplyFlags {
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
  const policy = await loadPolicy(flags.policy);
  const interactive = Boolean(process.stdin.isTTY && io.stdout.isTTY);
  const willWrite = !flags.dryRun && policy.mode === 'enforce';
  if (willWrite && !flags.yes && !interactive) {
    throw new UsageError(
      'not on a terminal, so nothing can be confirmed: pass --yes to write, or --dry-run',
    );
  }
  const log = textLogger(io.stderr);
  await assertCredentials(options);
  const runtime = createRuntime(
    policy,
    options,
    log,
    flags.stateDir ? { stateDir: flags.stateDir } : {},
  );
  const c = colorsFor(io.stdout, options);
  let report: RunReport;
  try {
    const runId = newRunId(Date.now());
    report = await reconcile(policy, runtime, {
      runId,
      deadlineMs: options.runDeadlineMs,
      restore,
      ...(flags.dryRun ? { mode: 'dry-run' as const } : {}),
      confirm: async (plan: Plan) => {
        io.stdout.write(renderPlan(plan, c));
        if (flags.yes) return true;
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        try {
          const answer = await rl.question(
            `\nWrite these ${plan.changes.length} change(s)? Only "yes" is accepted: `,
          );
          return answer.trim() === 'yes';
        } finally {
          rl.close();
        }
      },
    });
  } catch (e) {
    if (!(e instanceof RunFailedError)) throw e;
    io.stderr.write(`error: ${e.message}\n${summary(e.report)}\n`);
    return 1;
  } finally {
    await runtime.close();
  }
  if (report.plan && (report.mode === 'dry-run' || report.plan.changes.length === 0))
    io.stdout.write(renderPlan(report.plan, c));
  io.stdout.write('\n' + summary(report) + '\n');
  return report.outcome === 'failed' ? 1 : 0;
}

export function summary(r: RunReport): string {
  if (r.outcome === 'lease-held') {
    return `Nothing done: another governor holds the lease (${r.leaseHeld.map((l) => `${l.project}: ${l.heldBy ?? '?'} until ${l.expiresAt ?? '?'}`).join('; ')}).`;
  }
  if (r.outcome === 'declined') return 'Nothing written: not confirmed.';
  const count = (o: string) => r.writes.filter((w) => w.outcome === o).length;
  const misconfigured = new Set(r.findings.map((f) => `${f.project}/${f.region}/${f.service}`))
    .size;
  const lines = [
    `Run ${r.runId} (${r.mode}): ${count('written')} written, ${count('skipped')} skipped, ${count('failed')} failed, ${r.plan?.deferred.length ?? 0} deferred; ${misconfigured} misconfigured service(s); ${r.published} alert message(s).`,
  ];
  for (const w of r.writes.filter((x) => x.outcome !== 'written')) {
    lines.push(
      `  ${w.outcome}: ${w.project}/${w.region}/${w.name} ${w.from} → ${w.planned}: ${w.reason}`,
    );
  }
  return lines.join('\n');
}
