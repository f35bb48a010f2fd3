import { createClock } from '../adapters/clock.js';
import { createGooglePorts } from '../adapters/index.js';
import { createPubSubAlertSink } from '../adapters/pubsub.js';
import { checkPassed, type CheckItem, type CheckReport } from '../core/permissions.js';
import { oneLine, plural, printedJson, someOf } from '../core/text.js';
import { checkPolicy } from '../reconcile/preflight.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import { closeOrWarn, type Streams } from './io.js';
import { ALIKE_NAMED, alike } from './alike.js';
import { colorsFor, type Colors } from './render.js';
import { assertReadyToRead } from './ready.js';

/**
 * `governor check --policy P [--json]`: every permission a run of the policy needs, checked
 * before anything is written; exit 0 when everything is there, 1 otherwise.
 */
export async function runCheck(
  opts: { policy: string; json?: boolean },
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const policy = await loadPolicy(opts.policy, { forProjects: 'check' });
  await assertReadyToRead(options);
  const now = await createClock(options)();
  const ports = createGooglePorts(options);
  const sink = policy.alerts.topic
    ? createPubSubAlertSink({
        topic: policy.alerts.topic,
        emulatorHost: options.pubsubEmulatorHost,
      })
    : null;
  let report: CheckReport;
  try {
    // A wait for Cloud Run's read quota (preflight.ts) said on stderr, so --json stays one document.
    report = await checkPolicy(policy, ports, sink, now, {
      onWait: (message) => io.stderr.write(`${message}\n`),
    });
  } finally {
    // Both closed; a failure to close is a warning, as in every command (io.ts closeOrWarn).
    await Promise.all([
      closeOrWarn(() => ports.close(), "Google's clients", io),
      sink ? closeOrWarn(() => sink.close(), 'the alert topic client', io) : undefined,
    ]);
  }
  const passed = checkPassed(report);
  if (opts.json) {
    io.stdout.write(printedJson({ passed, ...report }));
  } else {
    io.stdout.write(renderCheck(opts.policy, policy.mode, report, colorsFor(io.stdout, options)));
  }
  return passed ? 0 : 1;
}

const LABEL: Record<CheckItem['status'], string> = {
  ok: 'OK',
  missing: 'MISSING',
  unverified: 'UNVERIFIED',
  error: 'FAILED',
};

/** Re-exported: the tests of the check's lines count with it. */
export { ALIKE_LISTED } from './alike.js';

/** A line of the check: one item, or many alike checks of services (`services` names them). */
type Row = CheckItem & { services?: string[] };

/**
 * The items in order, each group of more than {@link ALIKE_LISTED} alike checks of services (the
 * same outcome, permission, detail and fix: 3,000 services are 6,000 checks) as one row, where its
 * first was. `--json` lists each.
 */
function rows(items: readonly CheckItem[]): Row[] {
  const service = /^service (.+)$/;
  return alike(items, (i) =>
    service.test(i.subject) ? JSON.stringify([i.status, i.permission, i.detail, i.fix]) : null,
  ).map(({ item, group }): Row => {
    if (item) return item;
    const services = group.map((g) => service.exec(g.subject)?.[1] ?? g.subject);
    return { ...group[0]!, subject: `${services.length} services`, services };
  });
}

/**
 * The check for people. What an item quotes of Google's answers (its error text, the names it
 * listed), and the policy file's name, is shown on one line, its control characters as spaces: a
 * terminal escape or a newline in it would act on the terminal or forge a line.
 */
export function renderCheck(file: string, mode: string, report: CheckReport, c: Colors): string {
  const out = [c.bold(`Governor check of ${oneLine(file)}`) + c.dim(` (mode: ${mode})`), ''];
  const shown = rows(
    report.items.map((i) => ({
      ...i,
      subject: oneLine(i.subject),
      detail: oneLine(i.detail),
      fix: i.fix === null ? null : oneLine(i.fix),
    })),
  );
  const width = Math.max(...shown.map((i) => i.subject.length));
  const permissionWidth = Math.max(...shown.map((i) => (i.permission ?? '').length));
  for (const i of shown) {
    const color = i.status === 'ok' ? c.green : i.status === 'unverified' ? c.yellow : c.red;
    out.push(
      `  ${color(LABEL[i.status].padEnd(10))} ${i.subject.padEnd(width)}  ${(i.permission ?? '').padEnd(permissionWidth)} ${c.dim(i.detail)}`,
    );
    if (i.services && i.status !== 'ok')
      out.push(
        `  ${''.padEnd(10)} ${''.padEnd(width)}  ${someOf(i.services, ALIKE_NAMED)} (--json lists each)`,
      );
    if (i.fix && i.status !== 'ok') out.push(`  ${''.padEnd(10)} ${''.padEnd(width)}  → ${i.fix}`);
  }
  const count = (s: CheckItem['status']) => report.items.filter((i) => i.status === s).length;
  const warnings = report.warnings ?? [];
  if (warnings.length > 0) {
    out.push(
      '',
      c.bold('Policy') + c.dim(' (what it names that matches nothing seen; runs go on)'),
    );
    for (const w of warnings)
      out.push(`  ${c.yellow('WARNING'.padEnd(10))} ${oneLine(w.path)}: ${oneLine(w.message)}`);
  }
  out.push('');
  out.push(
    c.bold('Check: ') +
      `${count('ok')} ok, ${count('missing')} missing, ${count('error')} failed, ${count('unverified')} unverified; ${report.governed} governed service(s)${warnings.length > 0 ? `; ${plural(warnings.length, 'policy warning')}` : ''}. ` +
      (checkPassed(report)
        ? 'The run can do what it plans.'
        : nextStep(count('missing'), count('error'))),
  );
  return out.join('\n') + '\n';
}

/**
 * What to do after a failed check: grant what is missing, mend what could not be checked (a
 * call that failed is no missing permission), or both; said only of what there is.
 */
function nextStep(missing: number, failed: number): string {
  const todo =
    missing > 0 && failed > 0
      ? 'Grant what is missing and mend what failed'
      : missing > 0
        ? 'Grant what is missing'
        : 'Mend what failed';
  return `${todo} (→ lines above), then run governor check again.`;
}
