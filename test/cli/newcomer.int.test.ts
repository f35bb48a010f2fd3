import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUICK_POLL_ENV } from '../support/fixtures.js';
import { DEMO, governor, NEWCOMER_ENV as base } from '../support/newcomer.js';
import { waitUntil } from '../support/wait.js';

/**
 * The first write, as a newcomer does it: `governor emulator` in one process, and
 * check, plan, apply, status and restore in others, with the printed environment and no Google
 * credentials. Every exit code is the contract's, and no stack trace reaches the user. The ways it
 * used to go wrong are in newcomer-faults.int.test.ts.
 *
 * The commands poll a write's operation from 20 ms (QUICK_POLL_ENV) rather than Google's 1 s:
 * the emulator's operations take 20 ms, and nothing they print depends on it.
 */

const tmp = mkdtempSync(join(tmpdir(), 'governor-newcomer-'));

describe('the newcomer path, each step a process of its own', () => {
  let child: ChildProcessWithoutNullStreams;
  let out = '';
  let env: NodeJS.ProcessEnv;
  let admin = '';

  beforeAll(async () => {
    child = spawn(process.execPath, ['bin/governor.js', 'emulator', '--speed', 'manual'], {
      env: base,
    });
    child.stdout.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no exports within 30 s: ${out}`)), 30_000);
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('Ctrl-C')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`the emulator exited with ${code}: ${out}`)));
    });
    const exports = Object.fromEntries(
      [...out.matchAll(/^export (\w+)=(\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    admin = exports['GOVERNOR_EMULATOR_ADMIN'] ?? '';
    env = { ...base, ...exports, ...QUICK_POLL_ENV, GOVERNOR_STATE_DIR: join(tmp, 'state') };
  });

  afterAll(async () => {
    const exit = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    await exit;
  });

  const writes = async () => ((await (await fetch(`${admin}/writes`)).json()) as unknown[]).length;

  it('check: with quota requests on, their permission is listed unverified, with its grant', async () => {
    const policy = join(tmp, 'quota-requests.yaml');
    writeFileSync(
      policy,
      readFileSync(DEMO, 'utf8') +
        '\nquotaRequests: { enabled: true, maxIncrease: 4, contactEmail: gpu-platform@example.com }\n',
    );
    const check = await governor(env, 'check', '--policy', policy);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(
      /^ {2}UNVERIFIED +project demo-gpu-project +cloudquotas\.quotas\.update +quota requests/m,
    );
    expect(check.stdout).toContain('(Terraform: set `quota_requests = true`)');
    const off = await governor(env, 'check', '--policy', DEMO);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/OK +project demo-gpu-project +run\.operations\.get/);
    expect(off.stdout).not.toContain('cloudquotas.quotas.update');
  });

  it('check: every permission is there, exit 0', async () => {
    const check = await governor(env, 'check', '--policy', DEMO);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(
      /OK +topic projects\/demo-gpu-project\/topics\/gpu-governor-alerts +pubsub\.topics\.publish/,
    );
    expect(check.stdout).toMatch(
      /OK +service demo-gpu-project\/us-central1\/llm-chat +run\.services\.update/,
    );
    expect(check.stdout).toMatch(/OK +project demo-gpu-project +run\.operations\.get/);
    // The governor's own metrics cannot be tested without writing a point: unverified, with the grant.
    expect(check.stdout).toMatch(
      /^ {2}UNVERIFIED +project demo-gpu-project +monitoring\.timeSeries\.create +the governor's own metrics/m,
    );
    expect(check.stdout).toContain('→ grant roles/monitoring.metricWriter on the project');
    // The detail after the permission starts in one column, the longest permission's too.
    const starts = check.stdout
      .split('\n')
      .map((l) =>
        /^ {2}(?:OK|UNVERIFIED) .*? (?:run|monitoring|cloudquotas|pubsub|iam)\.[A-Za-z.]+ +/.exec(
          l,
        ),
      )
      .filter((m) => m !== null)
      .map((m) => m[0].length);
    expect(starts.length).toBeGreaterThan(5);
    expect(new Set(starts).size).toBe(1);
    expect(check.stdout).toContain('The run can do what it plans.');
  });

  it('plan: exit 0, nothing written', async () => {
    const plan = await governor(env, 'plan', '--policy', DEMO);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^Plan: 0 to raise, 3 to lower, 3 unchanged/m);
    expect(await writes()).toBe(0);
  });

  it('apply --yes: three caps written, the alerts published and shown, exit 0', async () => {
    const apply = await governor(env, 'apply', '--policy', DEMO, '--yes');
    expect(apply.code).toBe(0);
    expect(apply.stdout).toMatch(/3 written, 0 skipped, 0 failed/);
    expect(apply.stdout).toMatch(/[1-9]\d* alert message\(s\)/);
    expect(await writes()).toBe(3);
    // The emulator prints what it received as it receives it: waited for, not guessed at.
    const line =
      /published projects\/demo-gpu-project\/topics\/gpu-governor-alerts #\d+ .*type=rebalance\.applied/;
    await waitUntil('the emulator to print the published rebalance.applied', () => line.test(out));
    expect(out).toMatch(line);
  });

  it('status: exit 0', async () => {
    const status = await governor(env, 'status', '--policy', DEMO);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^ {2}llm-chat +\d+ +\d+ +\d+ +2 /m);
  });

  it('restore --yes: shows, counts and writes its own plan; resolves nothing; says what it takes', async () => {
    const published = async () =>
      (await (await fetch(`${admin}/published`)).json()) as {
        attributes: Record<string, string>;
      }[];
    // A dry run says up front that the originals cannot fit, rather than that all would be restored.
    const dry = await governor(env, 'restore', '--policy', DEMO, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /^Restore \(dry run\): 0 of 3 governed service\(s\) already at their max from before the governor; 3 to restore, as far as each pool has room\.$/m,
    );
    expect(dry.stdout).toContain('restore cannot finish until the quota grows by 4 GPUs');
    const before = (await published()).length;
    const restore = await governor(env, 'restore', '--policy', DEMO, '--yes');
    expect(restore.code).toBe(0);
    // The plan shown is the restore plan, counted over the six governed services.
    expect(restore.stdout).toMatch(
      /^ {2}~ llm-chat +10 +2 +2 → 4 +restore: back to its max before the governor, 4/m,
    );
    expect(restore.stdout).toMatch(/^Plan: 3 to raise, 0 to lower, 3 unchanged/m);
    expect(restore.stdout).toMatch(/^Restore: 0 of 3 governed service\(s\) are back/m);
    // The originals never fitted the pool (they were over budget): it says what it takes.
    expect(restore.stdout).toContain(
      'restore cannot finish until the quota grows by 4 GPUs, or you set lower maxes by hand (gcloud run services update S --project demo-gpu-project --region us-central1 --max N)',
    );
    // It decided nothing about starvation, so it resolved nothing.
    const after = (await published()).slice(before);
    expect(after.filter((m) => m.attributes['status'] === 'resolved')).toEqual([]);
  });
});
