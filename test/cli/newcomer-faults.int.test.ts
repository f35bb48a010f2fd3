import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { QUICK_POLL_ENV } from '../support/fixtures.js';
import { governor, governorHere, NEWCOMER_ENV as base } from '../support/newcomer.js';

/**
 * The ways the newcomer path (newcomer.int.test.ts) used to go wrong, each command a process of
 * its own against the emulator, with no Google credentials: a publish path that cannot work,
 * permissions the identity lacks, a project nothing of which can be read, a policy that governs
 * nothing. Every exit code is the contract's, and no stack trace reaches the user. Each command
 * (check, plan, snapshot, apply, audit, simulate) runs at least once here as a process; a variant
 * whose process adds nothing to what that one showed (a `--json` of the same check, the fleet read
 * again to see what a run left) runs in this process (`governorHere`, checked for a stack trace
 * alike), saving a start of Node and a load of Google's clients each.
 *
 * The commands poll a write's operation from 20 ms (QUICK_POLL_ENV) rather than Google's 1 s:
 * the emulator's operations take 20 ms, and nothing they print depends on it.
 */

const tmp = mkdtempSync(join(tmpdir(), 'governor-newcomer-faults-'));

describe('what used to go wrong, against the emulator', () => {
  let emulator: RunningEmulator;
  const PROJECT = 'newcomer-project';
  const LOCKED = 'locked-down-project';
  const NO_OPERATIONS = 'no-operations-project';
  const REGION = 'us-central1';
  const TOPIC = `projects/${PROJECT}/topics/gpu-alerts`;
  const policyFile = (name: string, text: string) => {
    const file = join(tmp, name);
    writeFileSync(file, text);
    return file;
  };
  const policy = policyFile(
    'policy.yaml',
    `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\ndefaults: {headroom: 0}\nservices: [{match: {}}]\nalerts: {topic: ${TOPIC}}\n`,
  );
  const envOf = (more: NodeJS.ProcessEnv = {}) => ({
    ...base,
    ...emulator.env,
    ...QUICK_POLL_ENV,
    GOVERNOR_STATE_DIR: join(tmp, 'state2'),
    ...more,
  });

  beforeAll(async () => {
    emulator = await startEmulator({
      speed: 'manual',
      operationDelayMs: 20,
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 30,
        topics: [TOPIC],
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: 6 }],
            services: [
              { name: 'idle', region: REGION, gpu: {}, maxInstances: 4, demand: 0 },
              {
                name: 'locked',
                region: REGION,
                gpu: {},
                maxInstances: 3,
                demand: 0,
                iam: { denied: ['run.services.update'] },
              },
              // Sets no max: Cloud Run derives it from the quota (6), not 100.
              { name: 'unbounded', region: REGION, gpu: { count: 2 }, demand: 1 },
            ],
          },
          {
            id: LOCKED,
            pools: [{ region: REGION, quota: 4 }],
            services: [{ name: 'svc', region: REGION, gpu: {}, maxInstances: 2 }],
            iam: {
              denied: ['run.services.list', 'monitoring.timeSeries.list', 'pubsub.topics.publish'],
            },
          },
          {
            id: NO_OPERATIONS,
            pools: [{ region: REGION, quota: 4 }],
            services: [{ name: 'svc', region: REGION, gpu: {}, maxInstances: 2 }],
            iam: { denied: ['run.operations.get'] },
          },
        ],
      },
    });
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  it("the emulator beside Google's Pub/Sub stops apply before any write: one line, exit 2", async () => {
    // No PUBSUB_EMULATOR_HOST: the alerts of the emulator's services would go to Google's Pub/Sub
    // (where, without credentials, they could not be published either: the adapter's own check,
    // test/adapters/pubsub-credentials.int.test.ts).
    const r = await governor(
      envOf({ PUBSUB_EMULATOR_HOST: '' }),
      'apply',
      '--policy',
      policy,
      '--yes',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error: GOVERNOR_EMULATOR_HOST is set but PUBSUB_EMULATOR_HOST is not: .*export PUBSUB_EMULATOR_HOST/m,
    );
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
    expect(emulator.writes()).toEqual([]);
  });

  it('check names each missing permission and how to grant it; exit 1', async () => {
    const r = await governor(envOf(), 'check', '--policy', policy);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /MISSING +service newcomer-project\/us-central1\/locked +run\.services\.update/,
    );
    expect(r.stdout).toContain(
      'roles/run.developer on the service (Terraform: add the service to `write_access.services`',
    );
    expect(r.stdout).toMatch(
      /OK +service newcomer-project\/us-central1\/idle +run\.services\.update/,
    );

    const locked = policyFile(
      'locked.yaml',
      `version: 1\nprojects: [${LOCKED}]\nregions: [${REGION}]\nservices: [{match: {}}]\nalerts: {topic: projects/${LOCKED}/topics/gpu-alerts}\n`,
    );
    const l = await governor(envOf(), 'check', '--policy', locked);
    expect(l.code).toBe(1);
    expect(l.stdout).toMatch(
      /MISSING +region locked-down-project\/us-central1 +run\.services\.list/,
    );
    expect(l.stdout).toMatch(/MISSING +project locked-down-project +monitoring\.timeSeries\.list/);
    expect(l.stdout).toMatch(
      /MISSING +topic projects\/locked-down-project\/topics\/gpu-alerts +pubsub\.topics\.publish/,
    );
    expect(l.stdout).toContain('roles/pubsub.publisher on the topic');
    const json = await governorHere(envOf(), 'check', '--policy', locked, '--json');
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { passed: boolean }).passed).toBe(false);
  });

  it('check warns of what the policy names that matches nothing seen, and still passes', async () => {
    // A misspelt accelerator in a pool setting, a misspelt label, a rule every service of which
    // an earlier rule takes: each used to validate and be silently ignored.
    const text = [
      'version: 1',
      `projects: [${PROJECT}]`,
      `regions: [${REGION}]`,
      'mode: dry-run',
      'pools:',
      `  - { region: ${REGION}, quota: 6 }`,
      `  - { region: ${REGION}, accelerator: nvidia-l44, quota: 4 }`,
      'services:',
      '  - match: { name: idle, labels: { team: serach } }',
      "  - match: { name: '*ed' }",
      "  - match: { name: 'unb*' }",
      '  - match: {}',
      `alerts: {topic: ${TOPIC}}`,
      '',
    ].join('\n');
    const file = policyFile('typos.yaml', text);
    const r = await governor(envOf(), 'check', '--policy', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^ {2}WARNING +pools\[1\]: applies to no pool seen: nothing draws GPUs from us-central1 nvidia-l44, so its settings \(quota 4\) reach nothing \(pools seen in us-central1: nvidia-l4\)$/m,
    );
    expect(r.stdout).toMatch(
      /^ {2}WARNING +services\[0\]\.match: matches no GPU service seen: none has the label "team"$/m,
    );
    expect(r.stdout).toMatch(
      /^ {2}WARNING +services\[2\]\.match: governs nothing: the 1 GPU service it matches falls to an earlier rule \(services\[1\]\)/m,
    );
    expect(r.stdout).not.toMatch(/WARNING +(pools\[0\]|services\[[13]\])/);
    expect(r.stdout).toMatch(/; 3 policy warnings\. The run can do what it plans\./);
    const json = await governorHere(envOf(), 'check', '--policy', file, '--json');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { warnings: { path: string }[] };
    expect(report.warnings.map((w) => w.path)).toEqual([
      'pools[1]',
      'services[0].match',
      'services[2].match',
    ]);
    // plan says the same on stderr, its output unchanged.
    const plan = await governor(envOf(), 'plan', '--policy', file, '--json');
    expect(plan.code).toBe(0);
    expect(plan.stderr).toContain('warning: policy services[0].match: matches no GPU service seen');
    expect(() => JSON.parse(plan.stdout) as unknown).not.toThrow();
    expect(emulator.writes()).toEqual([]);
  });

  it('check probes run.operations.get, which each write waits with; only when it writes', async () => {
    const text = `version: 1\nprojects: [${NO_OPERATIONS}]\nregions: [${REGION}]\nservices: [{match: {}}]\nalerts: {topic: ${TOPIC}}\n`;
    const r = await governor(envOf(), 'check', '--policy', policyFile('no-ops.yaml', text));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/MISSING +project no-operations-project +run\.operations\.get/);
    expect(r.stdout).toContain('→ grant roles/run.viewer on the project');
    const dry = await governorHere(
      envOf(),
      'check',
      '--policy',
      policyFile('no-ops-dry.yaml', `${text}mode: dry-run\n`),
    );
    expect(dry.code).toBe(0);
    expect(dry.stdout).not.toContain('run.operations.get');
    expect(emulator.writes()).toEqual([]);
  });

  it('a denied topic stops apply before any write; a denied service write is reported, the rest written', async () => {
    const denied = policyFile(
      'denied-topic.yaml',
      `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\ndefaults: {headroom: 0}\nservices: [{match: {}}]\nalerts: {topic: projects/${LOCKED}/topics/gpu-alerts}\n`,
    );
    const stopped = await governor(envOf(), 'apply', '--policy', denied, '--yes');
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain(
      `pubsub.topics.publish is not granted on projects/${LOCKED}/topics/gpu-alerts, or the topic does not exist`,
    );
    expect(emulator.writes()).toEqual([]);

    const r = await governor(envOf(), 'apply', '--policy', policy, '--yes');
    expect(r.stderr).toMatch(
      /service newcomer-project\/us-central1\/locked: run\.services\.update missing/,
    );
    const written = emulator.writes().map((w) => w.service.name);
    expect(written).toContain('idle');
    expect(written).not.toContain('locked');
    // The service that sets no max was counted at 6 ÷ 2 = 3 and written without a "changed" skip.
    expect(written).toContain('unbounded');
    expect(r.code).toBe(1); // the denied write failed
  });

  it('an unset max is counted at quota ÷ GPUs, and audit flags it', async () => {
    const s = await governorHere(envOf(), 'snapshot', '--policy', policy);
    expect(s.code).toBe(0);
    const snap = JSON.parse(s.stdout) as {
      services: { name: string; maxInstances: number; maxUnset?: boolean }[];
    };
    // Written by the apply above: it has a max now; the check is on a fresh fleet below.
    expect(snap.services.find((x) => x.name === 'unbounded')?.maxUnset).toBeUndefined();
    const fresh = await startEmulator({
      speed: 'manual',
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 5,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: 6 }],
            services: [{ name: 'unbounded', region: REGION, gpu: { count: 2 }, demand: 1 }],
          },
        ],
      },
    });
    try {
      const e = { ...base, ...fresh.env, GOVERNOR_STATE_DIR: join(tmp, 'state3') };
      const snap2 = await governorHere(e, 'snapshot', '--policy', policy);
      expect(JSON.parse(snap2.stdout).services[0]).toMatchObject({
        maxInstances: 3,
        maxUnset: true,
      });
      const plan = await governorHere(e, 'plan', '--policy', policy);
      expect(plan.stdout).toContain(
        'no max instances set: Cloud Run derives it from the regional quota, so it counts as 3',
      );
      const audit = await governor(e, 'audit', '--policy', policy);
      expect(audit.code).toBe(1);
      expect(audit.stdout).toContain('max-unset');
    } finally {
      await fresh.stop();
    }
  });

  it('a project nothing of which can be read is an error, not an empty snapshot', async () => {
    const locked = policyFile(
      'locked2.yaml',
      `version: 1\nprojects: [${LOCKED}]\nregions: [${REGION}]\n`,
    );
    const r = await governor(envOf(), 'snapshot', '--policy', locked);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error: nothing could be read in locked-down-project: .*run\.services\.list/m,
    );
  });

  it('a live command with no credentials and no emulator: one line, exit 1', async () => {
    const r = await governor(base, 'plan', '--policy', policy);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('governor emulator');
  });

  it('simulate with a policy that governs nothing in the fleet is bad input, exit 2', async () => {
    const other = policyFile('other.yaml', 'version: 1\nprojects: [some-other-project]\n');
    const r = await governor(
      base,
      'simulate',
      '--policy',
      other,
      '--fleet',
      'examples/fleet.yaml',
      '--hours',
      '1',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/governs none of the \d+ GPU service\(s\) of examples\/fleet\.yaml/);
  });
});
