import pc from 'picocolors';
import { describe, expect, it } from 'vitest';
import { AUDIT_LISTED, renderAudit, type AuditReport } from '../../src/cli/audit-command.js';
import { AUDIT_RULE_IDS, AUDIT_RULES } from '../../src/core/audit.js';

/**
 * What `governor audit` prints for a large fleet: past a few services with findings, one line
 * per rule (how many, the first few, the rule's fix) instead of a table per service, and clean
 * services counted rather than listed; the summary line as before.
 */

const c = pc.createColors(false);

function audited(services: number, required: number, clean: number): AuditReport {
  const list: AuditReport['services'] = Array.from({ length: services + clean }, (_, i) => {
    const name = `svc-${String(i).padStart(4, '0')}`;
    const findings: AuditReport['services'][number]['findings'] = [];
    if (i < required)
      findings.push({
        rule: 'cpu-minimum',
        severity: 'required',
        problem: `${name} has 2 vCPU`,
        fix: `deploy ${name} with --cpu 4`,
        why: AUDIT_RULES['cpu-minimum'].why,
      });
    if (i < services)
      findings.push({
        rule: 'startup-probe',
        severity: 'recommended',
        problem: `${name} has no startup probe`,
        fix: `add a startup probe to ${name}`,
        why: AUDIT_RULES['startup-probe'].why,
      });
    return {
      project: 'p',
      region: 'us-central1',
      name,
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      result: i < required ? 'required' : i < services ? 'recommended' : 'ok',
      findings,
    };
  });
  return {
    version: 1,
    at: '2026-11-27T10:00:00.000Z',
    summary: {
      services: services + clean,
      failingRequired: required,
      recommendedOnly: services - required,
      clean,
    },
    services: list,
    rules: AUDIT_RULE_IDS,
    problems: [],
  };
}

describe('governor audit on a large fleet', () => {
  it('prints one line per rule, required first, naming a few services of each', () => {
    const text = renderAudit(audited(3_000, 7, 500), c);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(15);
    expect(text).toContain(
      '3000 services have findings, one line per rule below (governor audit --json lists each finding):',
    );
    const required = lines.findIndex((l) => /^ {2}required +cpu-minimum +7: /.test(l));
    const recommended = lines.findIndex((l) => /^ {2}recommended +startup-probe +3000: /.test(l));
    expect(required).toBeGreaterThan(0);
    expect(recommended).toBeGreaterThan(required);
    expect(lines[required]).toContain(
      'p/us-central1/svc-0000, p/us-central1/svc-0001, p/us-central1/svc-0002, p/us-central1/svc-0003, p/us-central1/svc-0004 and 2 more',
    );
    expect(lines[required + 1]).toContain(`fix: ${AUDIT_RULES['cpu-minimum'].fix}`);
    expect(lines[recommended]).toContain('and 2995 more');
    expect(text).not.toMatch(/^[✓!✗] /m);
    expect(lines.at(-1)).toBe(
      'Audit: 3500 GPU services: 7 failing a required rule, 2993 with recommendations only, 500 clean.',
    );
  });

  it('keeps a table per service, and lists clean services, for a small fleet', () => {
    const text = renderAudit(audited(AUDIT_LISTED, 1, 2), c);
    expect(text.match(/^! svc-\d+/gm)).toHaveLength(AUDIT_LISTED - 1);
    expect(text.match(/^✗ svc-0000/gm)).toHaveLength(1);
    expect(text.match(/^✓ svc-\d+/gm)).toHaveLength(2);
    expect(text).not.toContain('one line per rule');
  });
});
