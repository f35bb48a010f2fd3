import { createClock } from '../adapters/clock.js';
import { assertCredentials } from '../adapters/credentials.js';
import { createGooglePorts } from '../adapters/index.js';
import { createPubSubAlertSink } from '../adapters/pubsub.js';
import { checkPassed, type CheckItem, type CheckReport } from '../core/permissions.js';
import { checkPolicy } from '../reconcile/preflight.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import type { Streams } from './io.js';
import { colorsFor, type Colors } from './render.js';

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
  await assertCredentials(options);
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
    report = await checkPolicy(policy, ports, sink, now);
  } finally {
    await Promise.allSettled([ports.close(), sink?.close()]);
  }
  const passed = checkPassed(report);
  if (opts.json) {
    io.stdout.write(JSON.stringify({ passed, ...report }, null, 2) + '\n');
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

export function renderCheck(file: string, mode: string, report: CheckReport, c: Colors): string {
  const out = [c.bold(`Governor check of ${file}`) + c.dim(` (mode: ${mode})`), ''];
  const width = Math.max(...report.items.map((i) => i.subject.length));
  const permissionWidth = Math.max(...report.items.map((i) => (i.permission ?? '').length));
  for (const i of report.items) {
    const color = i.status === 'ok' ? c.green : i.status === 'unverified' ? c.yellow : c.red;
    out.push(
      `  ${color(LABEL[i.status].padEnd(10))} ${i.subject.padEnd(width)}  ${(i.permission ?? '').padEnd(permissionWidth)} ${c.dim(i.detail)}`,
    );
    if (i.fix && i.status !== 'ok') out.push(`  ${''.padEnd(10)} ${''.padEnd(width)}  → ${i.fix}`);
  }
  const count = (s: CheckItem['status']) => report.items.filter((i) => i.status === s).length;
  out.push('');
  out.push(
    c.bold('Check: ') +
      `${count('ok')} ok, ${count('missing')} missing, ${count('error')} failed, ${count('unverified')} unverified; ${report.governed} governed service(s). ` +
      (checkPassed(report)
        ? 'The run can do what it plans.'
        : 'Grant what is missing (→ lines above), then run governor check again.'),
  );
  return out.join('\n') + '\n';
}
