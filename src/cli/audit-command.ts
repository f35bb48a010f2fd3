import {
  AUDIT_RULE_IDS,
  AUDIT_RULES,
  auditFleet,
  hasRequiredFailure,
  type AuditFinding,
  type AuditRuleId,
  type AuditSeverity,
} from '../core/audit.js';
import { inPolicyScope, type Policy } from '../core/policy.js';
import { renderProblem } from '../core/problems.js';
import { oneLine, plural, printedJson, someOf } from '../core/text.js';
import type { Observation } from '../observe/observe.js';
import { loadPolicy } from './files.js';
import { observeLive } from './live.js';
import type { Streams } from './io.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { colorsFor, poolTitle, type Colors } from './render.js';

/**
 * `governor audit --policy P [--json]`: every GPU service of the policy's projects checked against
 * Cloud Run's GPU requirements (src/core/audit.ts), one table per service (one line per rule for
 * a large fleet). Exit 0 when no required
 * rule fails, 1 when one does, 2 on bad input.
 */

interface AuditOptions {
  policy: string;
  json?: boolean;
}

/** One audited service in the report. `result` is the worst severity it fails, or `ok`. */
export interface AuditedService {
  project: string;
  region: string;
  name: string;
  accelerator: string;
  zonalRedundancy: boolean;
  result: 'ok' | AuditSeverity;
  findings: Omit<
    AuditFinding,
    'project' | 'region' | 'service' | 'accelerator' | 'zonalRedundancy'
  >[];
}

/** What `governor audit --json` prints. */
export interface AuditReport {
  version: 1;
  at: string;
  summary: {
    services: number;
    /** Services failing at least one required rule. */
    failingRequired: number;
    /** Services failing recommended rules only. */
    recommendedOnly: number;
    clean: number;
  };
  services: AuditedService[];
  /** Rule ids checked (rules the policy turned off still appear: they are off per service). */
  rules: readonly AuditRuleId[];
  /** What could not be read while observing, one line each. */
  problems: string[];
}

export async function runAudit(
  opts: AuditOptions,
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const policy = await loadPolicy(opts.policy, { forProjects: 'audit' });
  const observation = await observeLive(policy, options, io);
  for (const problem of observation.problems)
    io.stderr.write(`warning: ${oneLine(renderProblem(problem))}\n`);
  const { findings, quotaUnjudged: unjudged } = auditFleet({
    services: observation.services,
    snapshot: observation.snapshot,
    policy,
  });
  const report = auditReport(findings, observation, policy);
  io.stdout.write(
    opts.json ? printedJson(report) : renderAudit(report, colorsFor(io.stdout, options)),
  );
  if (hasRequiredFailure(findings)) return 1;
  // A region (or project) whose services could not be listed was not audited: whether a required
  // rule fails there is not known, and a CI gate on the exit code must not pass on it.
  const unlisted = observation.problems.filter((p) => p.subject === 'services');
  if (unlisted.length > 0) {
    const where = unlisted.map((p) => (p.region ? `${p.project}/${p.region}` : p.project));
    io.stderr.write(
      `error: the audit does not cover every service: the services of ${someOf(where, 5)} could not be listed (above)\n`,
    );
    return 1;
  }
  // The same for a required rule that needs the pool's quota, where it could not be read.
  if (unjudged.length > 0) {
    io.stderr.write(
      `error: the audit could not judge max-within-quota in ${someOf(unjudged, 5)}: the quota could not be read (above)\n`,
    );
    return 1;
  }
  return 0;
}

/** The report of an audit: every GPU service in scope, with its findings (none when clean). */
function auditReport(
  findings: readonly AuditFinding[],
  observation: Pick<Observation, 'services' | 'snapshot' | 'problems'>,
  policy: Pick<Policy, 'projects' | 'regions'>,
): AuditReport {
  const byService = new Map<string, AuditedService>();
  const key = (project: string, region: string, name: string) => `${project}/${region}/${name}`;
  const audited = observation.services
    .filter((s) => s.gpu !== null && inPolicyScope(policy, s))
    .sort((a, b) => (key(a.project, a.region, a.name) < key(b.project, b.region, b.name) ? -1 : 1));
  for (const s of audited) {
    if (s.gpu === null) continue;
    byService.set(key(s.project, s.region, s.name), {
      project: s.project,
      region: s.region,
      name: s.name,
      accelerator: s.gpu.accelerator,
      zonalRedundancy: s.gpu.zonalRedundancy,
      result: 'ok',
      findings: [],
    });
  }
  for (const f of findings) {
    const entry = byService.get(key(f.project, f.region, f.service));
    if (!entry) continue;
    entry.findings.push({
      rule: f.rule,
      severity: f.severity,
      problem: f.problem,
      fix: f.fix,
      why: f.why,
    });
    if (f.severity === 'required') entry.result = 'required';
    else if (entry.result === 'ok') entry.result = 'recommended';
  }
  const services = [...byService.values()];
  return {
    version: 1,
    at: observation.snapshot.takenAt,
    summary: {
      services: services.length,
      failingRequired: services.filter((s) => s.result === 'required').length,
      recommendedOnly: services.filter((s) => s.result === 'recommended').length,
      clean: services.filter((s) => s.result === 'ok').length,
    },
    services,
    rules: AUDIT_RULE_IDS,
    problems: observation.problems.map(renderProblem),
  };
}

/**
 * More services with findings than this, and the audit prints one line per rule instead of a
 * table per service (3,000 services with a recommendation each were 15,000 lines); more clean
 * services than this are counted, not listed. `--json` lists everything.
 */
export const AUDIT_LISTED = 20;
/** The services a rule's line names, before "and N more". */
const AUDIT_NAMED = 5;

/**
 * The audit for people: per failing service a table (severity, rule, what is wrong, fix). What it
 * quotes of Google's answers (names, limits) is shown on one line, its control characters as
 * spaces: a terminal escape or a newline in it would act on the terminal or forge a line.
 */
export function renderAudit(report: AuditReport, c: Colors): string {
  const out: string[] = [c.bold(`Governor audit at ${report.at}`)];
  const failing = report.services.filter((s) => s.result !== 'ok');
  if (failing.length > AUDIT_LISTED) out.push(...byRule(failing, c));
  for (const s of failing.length > AUDIT_LISTED ? [] : failing) {
    const mark = s.result === 'required' ? c.red('✗') : c.yellow('!');
    const label =
      s.result === 'required' ? c.red('fails required rules') : c.yellow('recommendations');
    out.push('');
    out.push(`${mark} ${c.bold(oneLine(s.name))}  ${c.dim(oneLine(poolTitle(s)))}  ${label}`);
    const ruleWidth = Math.max(4, ...s.findings.map((f) => f.rule.length));
    out.push(c.dim(`    ${'severity'.padEnd(11)}  ${'rule'.padEnd(ruleWidth)}  what is wrong`));
    for (const f of s.findings) {
      const severity = f.severity.padEnd(11);
      out.push(
        `    ${f.severity === 'required' ? c.red(severity) : c.yellow(severity)}  ${f.rule.padEnd(ruleWidth)}  ${oneLine(f.problem)}`,
      );
      out.push(
        `    ${' '.repeat(11)}  ${' '.repeat(ruleWidth)}  ${c.dim('fix:')} ${oneLine(f.fix)}`,
      );
    }
  }
  const clean = report.services.filter((s) => s.result === 'ok');
  if (clean.length > 0 && clean.length <= AUDIT_LISTED) {
    out.push('');
    for (const s of clean)
      out.push(`${c.green('✓')} ${oneLine(s.name)}  ${c.dim(oneLine(poolTitle(s)))}  ok`);
  }
  const { services, failingRequired, recommendedOnly } = report.summary;
  out.push('');
  out.push(
    `Audit: ${plural(services, 'GPU service')}: ${failingRequired} failing a required rule, ${recommendedOnly} with recommendations only, ${report.summary.clean} clean.`,
  );
  if (report.problems.length > 0) {
    out.push(
      c.yellow(`${report.problems.length} thing(s) could not be read; the audit covers what was.`),
    );
  }
  return out.join('\n') + '\n';
}

/**
 * The findings of many services, one line per rule and severity (required first, then in the
 * rules' order): how many services break it, the first few of them, and the rule's general fix.
 */
function byRule(failing: readonly AuditedService[], c: Colors): string[] {
  const groups = new Map<string, { severity: AuditSeverity; rule: AuditRuleId; names: string[] }>();
  for (const s of failing)
    for (const f of s.findings) {
      const key = `${f.severity}|${f.rule}`;
      const group = groups.get(key) ?? { severity: f.severity, rule: f.rule, names: [] };
      group.names.push(oneLine(`${s.project}/${s.region}/${s.name}`));
      groups.set(key, group);
    }
  const rank = (g: { severity: AuditSeverity; rule: AuditRuleId }) =>
    (g.severity === 'required' ? 0 : AUDIT_RULE_IDS.length) + AUDIT_RULE_IDS.indexOf(g.rule);
  const sorted = [...groups.values()].sort((a, b) => rank(a) - rank(b));
  const ruleWidth = Math.max(4, ...sorted.map((g) => g.rule.length));
  const out = [
    '',
    `${failing.length} services have findings, one line per rule below (governor audit --json lists each finding):`,
    '',
    c.dim(`  ${'severity'.padEnd(11)}  ${'rule'.padEnd(ruleWidth)}  services`),
  ];
  for (const g of sorted) {
    const severity = g.severity.padEnd(11);
    out.push(
      `  ${g.severity === 'required' ? c.red(severity) : c.yellow(severity)}  ${g.rule.padEnd(ruleWidth)}  ${g.names.length}: ${someOf(g.names, AUDIT_NAMED)}`,
    );
    out.push(
      `  ${' '.repeat(11)}  ${' '.repeat(ruleWidth)}  ${c.dim('fix:')} ${AUDIT_RULES[g.rule].fix}`,
    );
  }
  return out;
}
