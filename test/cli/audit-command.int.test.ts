import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../src/cli/audit-command.js';
import type { Io } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

/**
 * `governor audit` on the demo fleet (examples/fleet.yaml, where llm-code is misconfigured on
 * purpose) in the emulator: in process through `main` (as the command line runs it), and through
 * the real process `node bin/governor.js audit` (built by `npm test`), with the emulator's
 * variables passed on.
 */

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'governor-audit-'));
const DEMO_POLICY = 'examples/demo-policy.yaml';

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

/** The demo policy with llm-code's required failure turned off: recommendations only. */
const lenient = file(
  'lenient.yaml',
  'version: 1\nprojects: [demo-gpu-project]\nregions: [us-central1]\naudit:\n  rules: { cpu-minimum: off }\nservices:\n  - match: {}\n',
);

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ fleet: 'examples/fleet.yaml', speed: 'manual' });
});
afterAll(async () => {
  await emulator?.stop();
});

function env(): NodeJS.ProcessEnv {
  return { ...process.env, ...emulator.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' };
}

async function inProcess(opts: {
  policy: string;
  json?: boolean;
}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: env(),
  };
  const code = await main(
    ['audit', '--policy', opts.policy, ...(opts.json === true ? ['--json'] : [])],
    io,
  );
  return { code, stdout, stderr };
}

async function governor(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/governor.js', ...args], {
      env: env(),
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function checkReport(report: AuditReport): void {
  expect(report.version).toBe(1);
  expect(report.at).toBe(emulator.now().toISOString());
  expect(report.summary).toEqual({ services: 7, failingRequired: 1, recommendedOnly: 0, clean: 6 });
  expect(report.services.map((s) => [s.name, s.result])).toEqual([
    ['asr-apac', 'ok'],
    ['batch-rerank', 'ok'],
    ['embed-search', 'ok'],
    ['llm-chat', 'ok'],
    ['llm-code', 'required'],
    ['render-frames', 'ok'],
    ['vision-tagger', 'ok'],
  ]);
  const code = report.services.find((s) => s.name === 'llm-code');
  expect(code).toMatchObject({
    project: 'demo-gpu-project',
    region: 'us-central1',
    accelerator: 'nvidia-l4',
    zonalRedundancy: true,
  });
  expect(code?.findings.map((f) => [f.rule, f.severity])).toEqual([
    ['cpu-minimum', 'required'],
    ['startup-probe', 'recommended'],
  ]);
  for (const f of code?.findings ?? []) {
    expect(f.problem).not.toBe('');
    expect(f.fix).not.toBe('');
    expect(f.why).not.toBe('');
  }
  expect(report.problems).toEqual([]);
}

describe('governor audit (in process)', () => {
  it('prints a table per failing service and exits 1 when a required rule fails', async () => {
    const r = await inProcess({ policy: DEMO_POLICY });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^✗ llm-code {2}demo-gpu-project\/us-central1 nvidia-l4 {2}fails required rules$/m,
    );
    expect(r.stdout).toMatch(
      /^ {4}required {5}cpu-minimum {4}llm-code has 2 vCPU, below the minimum of 4 vCPU/m,
    );
    expect(r.stdout).toMatch(/fix: deploy with --cpu 4 or more on llm-code/);
    expect(r.stdout).toMatch(/^✓ llm-chat .* ok$/m);
    expect(r.stdout).toContain(
      'Audit: 7 GPU services: 1 failing a required rule, 0 with recommendations only, 6 clean.',
    );
  });

  it('--json prints the report alone', async () => {
    const r = await inProcess({ policy: DEMO_POLICY, json: true });
    expect(r.code).toBe(1);
    checkReport(JSON.parse(r.stdout) as AuditReport);
  });

  it('exits 0 when only recommended rules fail (a rule turned off by the policy)', async () => {
    const r = await inProcess({ policy: lenient, json: true });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as AuditReport;
    expect(report.summary).toEqual({
      services: 7,
      failingRequired: 0,
      recommendedOnly: 1,
      clean: 6,
    });
  });

  it('exits 1 when some services could not be listed, though no audited service fails', async () => {
    // A project the policy names and the caller may not list (outside the emulator's fleet every
    // call is denied): its services were never audited, so "no required rule fails" is not known.
    // Before, the lenient policy's audit exited 0, a gate passed on a fleet it had not seen.
    const partial = file(
      'partial.yaml',
      'version: 1\nprojects: [demo-gpu-project, unseen-project]\nregions: [us-central1]\naudit:\n  rules: { cpu-minimum: off }\nservices:\n  - match: {}\n',
    );
    const r = await inProcess({ policy: partial, json: true });
    const report = JSON.parse(r.stdout) as AuditReport;
    expect(report.summary.failingRequired).toBe(0);
    expect(report.problems.join('\n')).toContain('unseen-project');
    expect(r.stderr).toMatch(/^error: the audit does not cover every service: .*unseen-project/m);
    expect(r.code).toBe(1);
  });

  it('exits 0 when only reads other than the services failed: every service was audited', async () => {
    // The worker pools cannot be listed: a warning, but every GPU service was listed and audited,
    // so with no required rule failing the gate passes.
    emulator.setFaults({
      errors: [{ method: 'ListWorkerPools', code: 'PERMISSION_DENIED', rate: 1 }],
    });
    try {
      const r = await inProcess({ policy: lenient, json: true });
      const report = JSON.parse(r.stdout) as AuditReport;
      expect(report.summary).toMatchObject({ services: 7, failingRequired: 0 });
      expect(report.problems.join('\n')).toContain('worker pools');
      expect(r.stderr).toMatch(/^warning: .*worker pools/m);
      expect(r.stderr).not.toContain('error:');
      expect(r.code).toBe(0);
    } finally {
      emulator.setFaults({});
    }
  });

  it("exits 1 when a pool's quota could not be read: max-within-quota was not judged there", async () => {
    // max-within-quota is required, and without the quota it finds nothing: not a pass. As with
    // services that could not be listed, a CI gate on the exit code must not pass on it.
    const quotaDenied = async (policy: string) => {
      emulator.setFaults({
        errors: [{ method: 'GetQuotaInfo', code: 'PERMISSION_DENIED', rate: 1 }],
      });
      try {
        return await inProcess({ policy, json: true });
      } finally {
        emulator.setFaults({});
      }
    };
    const r = await quotaDenied(lenient);
    const report = JSON.parse(r.stdout) as AuditReport;
    expect(report.summary).toMatchObject({ services: 7, failingRequired: 0 });
    expect(r.stderr).toMatch(
      /^error: the audit could not judge max-within-quota in demo-gpu-project\/us-central1\/nvidia-l4\/(no-)?zonal(, .*)?: the quota could not be read \(above\)$/m,
    );
    expect(r.code).toBe(1);
    // The same rule set to recommended by the policy: its not being judged fails no gate.
    const relaxed = file(
      'relaxed.yaml',
      'version: 1\nprojects: [demo-gpu-project]\nregions: [us-central1]\naudit:\n  rules: { cpu-minimum: off, max-within-quota: recommended }\nservices:\n  - match: {}\n',
    );
    const lowered = await quotaDenied(relaxed);
    expect(lowered.stderr).not.toContain('error:');
    expect(lowered.code).toBe(0);
  });

  it('exits 2 on a bad policy, naming the fault, and prints nothing on stdout', async () => {
    const bad = file(
      'bad.yaml',
      'version: 1\nprojects: [p]\naudit: { rules: { cpu-minimum: fatal } }\n',
    );
    const r = await inProcess({ policy: bad });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('audit.rules.cpu-minimum');
    expect(r.stdout).toBe('');
    expect((await inProcess({ policy: join(tmp, 'missing.yaml') })).code).toBe(2);
  });
});

describe('governor audit (the real process)', () => {
  it('exits 1 on the demo fleet and prints the table', async () => {
    const r = await governor('audit', '--policy', DEMO_POLICY);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^✗ llm-code /m);
    expect(r.stdout).toContain('cpu-minimum');
  });

  it('--json gives the report for CI pipelines', async () => {
    const r = await governor('audit', '--policy', DEMO_POLICY, '--json');
    expect(r.code).toBe(1);
    checkReport(JSON.parse(r.stdout) as AuditReport);
  });

  it('exits 0 when no required rule fails, 2 on bad input', async () => {
    expect((await governor('audit', '--policy', lenient)).code).toBe(0);
    const r = await governor('audit', '--policy', join(tmp, 'missing.yaml'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.yaml');
  });
});
