import { execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { constants as osConstants, hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quotaPreferences, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { cliIn, governorIn } from '../support/cli-run.js';
import { QUICK_POLL_ENV } from '../support/fixtures.js';
import { openQuotaWorld, twoRegionFleet } from '../support/quota-world.js';

/**
 * `governor apply` and `governor restore` through the real process, against the emulator. A run
 * polls a write's operation from 20 ms (QUICK_POLL_ENV) rather than Google's 1 s: the emulator's
 * operations take 20 ms here (1.2 s on the slow one), so each write waited a second for nothing.
 */

const exec = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'governor-apply-'));
const PROJECT = 'cli-project';
const REGION = 'us-central1';
let emulator: RunningEmulator;

const policy = join(tmp, 'policy.yaml');
writeFileSync(
  policy,
  `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\ndefaults: {headroom: 0}\nservices: [{match: {}}]\nlimits: {writesPerMinute: 6000}\n`,
);

/** `governor ...args` as a process, in the environment of {@link governorEnv}. */
const governor = (...args: string[]) => governorIn(governorEnv(), ...args);

/** The environment {@link governor} runs in. */
function governorEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...emulator.env,
    ...QUICK_POLL_ENV,
    NO_COLOR: '1',
    GOVERNOR_STATE_DIR: join(tmp, 'state'),
  };
}

/** `governor ...args` in this process (`main`), in the environment of {@link governor}. */
const inProcess = (...args: string[]) => cliIn(governorEnv(), ...args);

/** Quota 5: `idle` holds 4 and uses nothing, `busy` needs 3 and may use 1. */
const fleet = () => ({
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 5 }],
      services: [
        { name: 'idle', region: REGION, gpu: {}, maxInstances: 4, demand: 0 },
        { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: 3 },
      ],
    },
  ],
});

beforeAll(async () => {
  emulator = await startEmulator({
    speed: 'manual',
    operationDelayMs: 20,
    fleet: fleet(),
  });
});
afterAll(async () => {
  await emulator?.stop();
});

describe('governor apply', () => {
  it('refuses to write without --yes when there is no terminal to ask, exit 2, nothing written', async () => {
    const r = await governor('apply', '--policy', policy);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--yes');
    expect(emulator.writes()).toEqual([]);
  });

  it('--dry-run writes nothing and shows the plan', async () => {
    // In this process: the run and its output are what is checked here, not the process.
    const r = await inProcess('apply', '--policy', policy, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}~ idle +0 +1 +4 → /m);
    expect(r.stdout).toMatch(/\(dry-run\): 0 written/);
    expect(emulator.writes()).toEqual([]);
  });

  it('a policy in mode dry-run writes nothing, so it needs no --yes off a terminal: exit 0', async () => {
    const dry = join(tmp, 'policy-dry-run.yaml');
    writeFileSync(dry, `${readFileSync(policy, 'utf8')}mode: dry-run\n`);
    // In this process: the run and its output are what is checked here, not the process.
    const r = await inProcess('apply', '--policy', dry);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(dry-run\): 0 written/);
    expect(emulator.writes()).toEqual([]);
  });

  it('--yes writes the plan, decreases first, and says what it did', async () => {
    const r = await governor('apply', '--policy', policy, '--yes');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\(enforce\): 2 written, 0 skipped, 0 failed/);
    expect(emulator.writes().map((w) => w.service.name)).toEqual(['idle', 'busy']);
    for (const w of emulator.writes()) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);

    // The alerts once, as a list in columns after the plan: not again as log lines on stderr.
    const list =
      /^Alerts \((\d+), not published: the policy sets no alerts\.topic\):\n((?: {2}.*\n)+)/m.exec(
        r.stdout,
      );
    expect(list, r.stdout).not.toBeNull();
    const lines = (list?.[2] ?? '').trimEnd().split('\n');
    expect(lines).toHaveLength(Number(list?.[1]));
    expect(r.stdout.match(/^Alerts /gm)).toHaveLength(1);
    const both = `${r.stdout}\n${r.stderr}`;
    const parsed = lines.map((line) => {
      const m =
        /^ {2}(INFO|WARNING|ERROR|CRITICAL) +(firing|still firing|resolved|event) +([a-z]+\.[a-z-]+) +(\S.*)$/.exec(
          line,
        );
      expect(m, line).not.toBeNull();
      return {
        line,
        severity: m?.[1] ?? '',
        status: m?.[2] ?? '',
        type: m?.[3] ?? '',
        summary: m?.[4] ?? '',
      };
    });
    const widest = (k: 'severity' | 'status' | 'type') =>
      Math.max(...parsed.map((p) => p[k].length));
    for (const p of parsed) {
      expect(both.split(p.summary).length - 1, `"${p.summary}" printed once`).toBe(1);
      // Each column as wide as its longest entry, the longest alert type too, two spaces apart.
      expect(p.line.length - p.summary.length, p.line).toBe(
        2 + widest('severity') + 2 + widest('status') + 2 + widest('type') + 2,
      );
    }
    expect(r.stderr).not.toMatch(/alert [a-z]+\.[a-z-]+ (firing|resolved|event)/);
  });

  it('restore --yes puts the original max back as far as the quota allows', async () => {
    const before = emulator.writes().length;
    // In this process: what is restored is checked here; the process's exit, by the tests around.
    const r = await inProcess('restore', '--policy', policy, '--yes');
    expect(r.code).toBe(0);
    const restored = emulator.writes().slice(before);
    expect(restored.map((w) => [w.service.name, w.after.maxInstances])).toContainEqual(['busy', 1]);
    for (const w of emulator.writes()) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
  });
});

describe('--state-dir that is no folder', () => {
  // Before, each command got as far as reading the store and failed there: exit 1, as if a run
  // had failed, for what is a wrong flag.
  it('restore, apply, unlock and quota recommend: exit 2, one line naming the flag, nothing written', async () => {
    const aFile = join(tmp, 'not-a-folder');
    writeFileSync(aFile, 'x');
    const before = emulator.writes().length;
    // Blanks alone, as GOVERNOR_STATE_DIR of blanks is unset: a folder named " " beside the
    // default one was a second store, its leases unseen by governors using the default.
    for (const dir of [aFile, join(aFile, 'sub'), '', ' ', '\t']) {
      for (const command of [
        ['restore', '--dry-run'],
        ['restore', '--yes'],
        ['apply', '--yes'],
        ['unlock', '--yes'],
        ['quota', 'recommend'],
      ]) {
        const what = `${command.join(' ')} --state-dir ${JSON.stringify(dir)}`;
        // The first as a process, the others in this process: the same refusal, before any call.
        const asProcess = dir === aFile && command[0] === 'restore' && command[1] === '--dry-run';
        const r = await (asProcess ? governor : inProcess)(
          ...command,
          '--policy',
          policy,
          '--state-dir',
          dir,
        );
        expect(r.code, what).toBe(2);
        expect(r.stderr, what).toMatch(/^error: --state-dir .+\n$/);
        expect(r.stderr, what).not.toContain('    at ');
      }
    }
    expect(emulator.writes().length).toBe(before);
    expect(readFileSync(aFile, 'utf8')).toBe('x');
    expect(existsSync(' ') || existsSync('\t')).toBe(false);
  });

  // A link to a folder that is not there: stat follows it and finds nothing, so the folder
  // looked creatable, and the store's mkdir then met the link itself (EEXIST): exit 1 as a failed
  // run, for what is a wrong flag.
  it('a link to nothing: exit 2 naming the link and its target for the commands that write', async () => {
    const link = join(tmp, 'link-to-nowhere');
    const target = join(tmp, 'nowhere');
    symlinkSync(target, link);
    const before = emulator.writes().length;
    for (const dir of [link, join(link, 'sub')]) {
      for (const command of [
        ['apply', '--yes'],
        ['apply', '--dry-run'],
        ['restore', '--yes'],
        ['unlock', '--yes'],
      ]) {
        const what = `${command.join(' ')} --state-dir ${JSON.stringify(dir)}`;
        const r = await inProcess(...command, '--policy', policy, '--state-dir', dir);
        expect(r.code, `${what}: ${r.stderr}`).toBe(2);
        expect(r.stderr, what).toBe(
          `error: --state-dir ${JSON.stringify(dir)} cannot be created: ${JSON.stringify(link)} is a link to ${JSON.stringify(target)}, which does not exist: create it, or name another folder\n`,
        );
      }
    }
    expect(emulator.writes().length).toBe(before);
    expect(existsSync(target)).toBe(false);
    // Reading needs no folder: a link to nothing reads as an empty store, as a missing folder does.
    const r = await inProcess('quota', 'recommend', '--policy', policy, '--state-dir', link);
    expect(r.code, r.stderr).toBe(0);
  });

  // A folder this user cannot write: the commands that write (apply, restore, unlock --yes take
  // a lease and record runs) got as far as the lease and failed there, exit 1, as if a run had
  // failed. Root writes through any mode bits (its CAP_DAC_OVERRIDE), so as root the command runs
  // without that capability (util-linux's setpriv, https://man7.org/linux/man-pages/man1/setpriv.1.html),
  // where the mode bits hold for root as for anyone: no other user, so nothing about where the
  // repository sits or who may read it.
  it('a folder the user cannot write: exit 2 naming the flag for the commands that write, read-only ones still read', async () => {
    const shared = mkdtempSync(join(tmpdir(), 'governor-readonly-'));
    const readable = join(shared, 'policy.yaml');
    writeFileSync(readable, readFileSync(policy, 'utf8'));
    const locked = join(shared, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const dropped = ['-dac_override', '-dac_read_search'].join(',');
    const [command, prefix] =
      process.getuid?.() === 0
        ? ['setpriv', [`--inh-caps=${dropped}`, `--bounding-set=${dropped}`, process.execPath]]
        : [process.execPath, []];
    const as = (...args: string[]) =>
      exec(command, [...prefix, 'bin/governor.js', ...args], {
        env: { ...governorEnv(), HOME: shared },
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const before = emulator.writes().length;
    const writers = [
      ['apply', '--yes'],
      ['apply', '--dry-run'],
      ['restore', '--yes'],
      ['unlock', '--yes'],
    ];
    // A folder not there yet is created by the store: refused when its folder cannot be written.
    for (const [dir, commands] of [
      [locked, writers],
      [join(locked, 'not-yet'), writers.slice(0, 1)],
    ] as const) {
      for (const command of commands) {
        const what = `${command.join(' ')} --state-dir ${JSON.stringify(dir)}`;
        const r = await as(...command, '--policy', readable, '--state-dir', dir);
        expect(r.code, `${what}: ${r.stderr}`).toBe(2);
        expect(r.stderr, what).toMatch(/^error: --state-dir "[^\n]+" [^\n]*cannot write[^\n]*\n$/);
        expect(r.stderr, what).toContain(JSON.stringify(dir));
      }
    }
    expect(emulator.writes().length).toBe(before);
    // Reading a store needs no write: quota recommend and unlock without --yes still read it.
    for (const command of [['quota', 'recommend'], ['unlock']]) {
      const r = await as(...command, '--policy', readable, '--state-dir', locked);
      expect(r.code, `${command.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });

  it('GOVERNOR_STATE_DIR naming a file: exit 2, naming the variable', async () => {
    const aFile = join(tmp, 'not-a-folder-either');
    writeFileSync(aFile, 'x');
    // In this process: a refusal before any call, as the first test shows of a process.
    const r = await cliIn(
      { ...process.env, ...emulator.env, NO_COLOR: '1', GOVERNOR_STATE_DIR: aFile },
      ...['unlock', '--policy', policy],
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: GOVERNOR_STATE_DIR .+ is not a folder.*\n$/);
  });

  it('--state-dir with the Firestore store: exit 2, rather than a folder silently not used', async () => {
    const dir = join(tmp, 'never-used');
    for (const command of [
      ['restore', '--yes'],
      ['unlock', '--yes'],
      ['quota', 'recommend'],
    ]) {
      // In this process: a refusal before any call, as the first test shows of a process.
      const r = await cliIn(
        {
          ...process.env,
          ...emulator.env,
          NO_COLOR: '1',
          GOVERNOR_STATE_STORE: 'firestore',
          // Never reached (the refusal comes before any client); set, as the emulator beside
          // Google's Firestore is refused on its own.
          FIRESTORE_EMULATOR_HOST: '127.0.0.1:9',
        },
        ...[...command, '--policy', policy, '--state-dir', dir],
      );
      expect(r.code, command.join(' ')).toBe(2);
      expect(r.stderr, command.join(' ')).toMatch(
        /^error: --state-dir .*GOVERNOR_STATE_STORE.*\n$/,
      );
    }
    expect(existsSync(dir)).toBe(false);
  });
});

describe('a lease another governor holds', () => {
  const stateDir = join(tmp, 'state');
  const forever = '9999-12-31T23:59:59.000Z';

  it('apply asks a few times, exits 1 and says who holds it, until when, and how to clear it', async () => {
    const store = createFileStateStore({ dir: stateDir });
    const now = Date.now();
    await store.acquireLease(PROJECT, 'someone-else', 60_000, new Date(now).toISOString());
    // Until year 9999: before, the run said "Nothing done" and exited 0, forever.
    await store.renewLease(
      PROJECT,
      'someone-else',
      Date.parse(forever) - now,
      new Date(now).toISOString(),
    );
    const before = emulator.writes().length;
    const r = await governor('apply', '--policy', policy, '--yes');
    expect(r.code).toBe(1);
    expect(emulator.writes().length).toBe(before);
    const line = r.stderr.split('\n').find((l) => l.startsWith('error: '));
    expect(line).toContain(`${PROJECT}: nothing done: the lease is held by someone-else since`);
    expect(line).toContain(`governor unlock --policy ${policy}`);
    // The stored expiry was capped at the run's now + time-to-live: it ends by itself.
    const lease = await store.readLease(PROJECT);
    expect(Date.parse(lease?.expiresAt ?? forever)).toBeLessThan(Date.now() + 10 * 60_000);
    expect(line).toContain(`until ${lease?.expiresAt ?? '?'}`);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('unlock shows the holder but refuses to break it unasked when there is no terminal (exit 2)', async () => {
    const r = await governor('unlock', '--policy', policy);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(new RegExp(`^${PROJECT}: lease held by someone-else since`, 'm'));
    expect(r.stderr).toContain('--yes');
    expect(await createFileStateStore({ dir: stateDir }).readLease(PROJECT)).toMatchObject({
      holder: 'someone-else',
    });
  });

  it('unlock --yes shows the holder and breaks it; the next apply runs', async () => {
    const r = await governor('unlock', '--policy', policy, '--yes');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^${PROJECT}: lease held by someone-else since \\S+ until \\S+`, 'm'),
    );
    expect(r.stdout).toContain(`${PROJECT}: lease broken`);
    expect(await createFileStateStore({ dir: stateDir }).readLease(PROJECT)).toBeNull();
    // What follows in this process: the state the break left is checked, not the process.
    expect((await inProcess('unlock', '--policy', policy, '--yes')).stdout).toContain(
      'no lease held',
    );
    // With nothing to break, showing needs neither a terminal nor --yes.
    const shown = await inProcess('unlock', '--policy', policy);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe(`${PROJECT}: no lease held\n`);
    const again = await inProcess('apply', '--policy', policy, '--dry-run');
    expect(again.code).toBe(0);
  });
});

describe('text others wrote reaches the terminal without its control characters', () => {
  /** A terminal escape that writes the clipboard (OSC 52), a carriage return, a clear line. */
  const hostile = 'evil\u001b]52;c;SGk=\u0007\r\u001b[2Kgov';
  /** Any control character but the newline that ends each line. */
  const CONTROL_BUT_NEWLINE = /(?!\n)\p{Cc}/u;
  let other: RunningEmulator;
  const dir = mkdtempSync(join(tmpdir(), 'governor-hostile-'));
  const run = async (...args: string[]) => {
    try {
      // The default run deadline: a deadline of 2 s (so that a held lease was asked for once,
      // not three times 2 s apart) passed on a loaded machine before the run had observed.
      const { stdout, stderr } = await exec(process.execPath, ['bin/governor.js', ...args], {
        env: { ...process.env, ...other.env, ...QUICK_POLL_ENV, NO_COLOR: '1' },
      });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  };
  beforeAll(async () => {
    other = await startEmulator({ speed: 'manual', operationDelayMs: 20, fleet: fleet() });
  });
  afterAll(async () => {
    await other?.stop();
  });

  it("another governor's stamp on a service, as anyone may edit it: one line each, no escape", async () => {
    // Over the quota, so the run has decreases to make, which another governor's stamp holds.
    other.edit({
      project: PROJECT,
      region: REGION,
      service: 'idle',
      maxInstances: 5,
      annotations: {
        'gpu-governor.dev/writer': hostile,
        'gpu-governor.dev/written-at': `2026\u001b[31m\r`,
      },
    });
    const r = await run('apply', '--policy', policy, '--yes', '--state-dir', join(dir, 'a'));
    expect(r.stdout + r.stderr).toContain('another governor (evil');
    expect(r.stdout).not.toMatch(CONTROL_BUT_NEWLINE);
    expect(r.stderr).not.toMatch(CONTROL_BUT_NEWLINE);
  });

  it('a lease holder read from the state store: unlock and apply show it on one line, no escape', async () => {
    const stateDir = join(dir, 'b');
    const store = createFileStateStore({ dir: stateDir });
    try {
      await store.acquireLease(PROJECT, hostile, 60_000, new Date().toISOString());
    } finally {
      await store.close();
    }
    const shown = await run('unlock', '--policy', policy, '--state-dir', stateDir);
    expect(shown.code).toBe(2);
    expect(shown.stdout).toContain('lease held by evil');
    const applied = await run('apply', '--policy', policy, '--dry-run', '--state-dir', stateDir);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain('the lease is held by evil');
    for (const out of [shown.stdout, shown.stderr, applied.stdout, applied.stderr])
      expect(out).not.toMatch(CONTROL_BUT_NEWLINE);
  });
});

describe('governor unlock and regional units (fanout.splitAbove)', () => {
  // A large project's regions are fan-out units with leases of their own (`project@region`,
  // src/reconcile/unit-lease.ts): a regional unit that died leaves one, which unlock must show
  // and break like a project's, or that region waits for the lease to expire.
  const stateDir = join(tmp, 'state-regional');
  const split = join(tmp, 'policy-split.yaml');
  writeFileSync(
    split,
    `version: 1\nprojects: [${PROJECT}]\ndiscovery: {organization: "123456789012"}\nfanout: {topic: projects/host-project/topics/work, splitAbove: 1}\nservices: [{match: {}}]\n`,
  );

  it('lists the regional leases discovery counted, breaks them with --yes, and leaves others', async () => {
    const store = createFileStateStore({ dir: stateDir });
    const now = new Date().toISOString();
    await store.saveDiscovery({
      key: 'any',
      foundAt: now,
      projects: [PROJECT],
      services: { [PROJECT]: { 'us-central1': 3, 'europe-west4': 2 } },
    });
    await store.acquireLease(`${PROJECT}@europe-west4`, 'dead-unit', 600_000, now);
    await store.acquireLease('other-project@europe-west4', 'someone', 600_000, now);
    const r = await governor('unlock', '--policy', split, '--yes', '--state-dir', stateDir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${PROJECT}: no lease held`);
    expect(r.stdout).toMatch(
      new RegExp(`^${PROJECT} \\(europe-west4\\): lease held by dead-unit since`, 'm'),
    );
    expect(r.stdout).toContain(`${PROJECT} (europe-west4): lease broken`);
    expect(r.stdout).not.toContain('us-central1'); // no lease there: nothing to say
    expect(await store.readLease(`${PROJECT}@europe-west4`)).toBeNull();
    // Not this policy's project: untouched.
    expect(await store.readLease('other-project@europe-west4')).toMatchObject({
      holder: 'someone',
    });
  });
});

describe('governor apply with a lock left in the state folder', () => {
  // What a run that died, or a full disk, leaves behind: an empty lock, a garbage one, one naming
  // a live process that holds nothing (this test's own). Each is a minute old, as it is when the
  // next scheduled run comes; each used to make every later run wait and exit 1.
  it.each([
    ['empty', () => ''],
    ['garbage', () => 'not a lock {'],
    [
      'naming a live unrelated process',
      () => JSON.stringify({ token: 'old', host: hostname(), pid: process.pid }),
    ],
  ])('a lock that is %s is broken, and the run goes on', async (_, content) => {
    const lock = join(tmp, 'state', `${PROJECT}.json.lock`);
    mkdirSync(dirname(lock), { recursive: true });
    writeFileSync(lock, content());
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(lock, minuteAgo, minuteAgo);
    const r = await governor('apply', '--policy', policy, '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(dry-run\)/);
    expect(existsSync(lock)).toBe(false);
  });
});

describe('governor apply --yes whose reader goes away (`governor apply --yes | head`)', () => {
  it('finishes the run: its writes within quota, the run recorded, the lease released', async () => {
    // The state of the runs above: a fresh one would be another governor, which waits while
    // this one's recent writes may still be going on.
    const stateDir = join(tmp, 'state');
    // Another writer raises a cap so that the caps sum over the quota of 5: the run must lower.
    emulator.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 5 });
    const before = emulator.writes().length;
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'apply', '--policy', policy, '--yes', '--state-dir', stateDir],
      { env: { ...process.env, ...emulator.env, ...QUICK_POLL_ENV, NO_COLOR: '1' } },
    );
    // The reader is gone before the run writes a line. Before, the process ended on the first
    // line it wrote, holding the lease, with nothing recorded.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/error|EPIPE/i);
    expect(code).toBe(0);
    const writes = emulator.writes().slice(before);
    expect(writes.length, stderr).toBeGreaterThan(0);
    for (const w of writes) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
    const store = createFileStateStore({ dir: stateDir });
    try {
      expect(await store.readLease(PROJECT)).toBeNull();
      const [record] = await store.listRuns(PROJECT);
      expect(record).toMatchObject({ outcome: 'ok', changes: writes.length });
      expect(Date.parse(record?.startedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
      expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('governor apply --yes whose output cannot be written (`governor apply --yes > /dev/full`)', () => {
  it('finishes the run, says in one line that its output was lost, and exits 1', async () => {
    const stateDir = join(tmp, 'state');
    // Another writer raises a cap so that the caps sum over the quota of 5: the run must lower.
    emulator.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 5 });
    const before = emulator.writes().length;
    // Every write to /dev/full fails with ENOSPC, as on a full disk. Before, the process ended on
    // the first line it wrote (the plan, before any write), holding the lease, nothing recorded.
    const full = openSync('/dev/full', 'w');
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'apply', '--policy', policy, '--yes', '--state-dir', stateDir],
      {
        env: { ...process.env, ...emulator.env, ...QUICK_POLL_ENV, NO_COLOR: '1' },
        stdio: ['ignore', full, 'pipe'],
      },
    );
    closeSync(full);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    const errors = stderr.split('\n').filter((line) => line.startsWith('error: '));
    expect(errors, stderr).toHaveLength(1);
    expect(errors[0]).toMatch(/standard output.*ENOSPC/);
    expect(stderr).not.toMatch(/\bat .*\.js:\d+/);
    const writes = emulator.writes().slice(before);
    expect(writes.length, stderr).toBeGreaterThan(0);
    for (const w of writes) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
    const store = createFileStateStore({ dir: stateDir });
    try {
      expect(await store.readLease(PROJECT)).toBeNull();
      const [record] = await store.listRuns(PROJECT);
      expect(record).toMatchObject({ outcome: 'ok', changes: writes.length });
      expect(Date.parse(record?.startedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    } finally {
      await store.close();
    }
  });
});

describe('governor apply --yes whose error output cannot be written (`2>/dev/full`)', () => {
  it('finishes the run: its writes, its record, its lease released; exit 0', async () => {
    const stateDir = join(tmp, 'state');
    emulator.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 5 });
    const before = emulator.writes().length;
    // Before, the run's first warning on stderr was an uncaught error: the process exited 1
    // before any write, holding the lease, nothing recorded.
    const full = openSync('/dev/full', 'w');
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'apply', '--policy', policy, '--yes', '--state-dir', stateDir],
      {
        env: { ...process.env, ...emulator.env, ...QUICK_POLL_ENV, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', full],
      },
    );
    closeSync(full);
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stdout).toBe(0);
    const writes = emulator.writes().slice(before);
    expect(writes.length, stdout).toBeGreaterThan(0);
    expect(stdout).toMatch(/\(enforce\): \d+ written/);
    const store = createFileStateStore({ dir: stateDir });
    try {
      expect(await store.readLease(PROJECT)).toBeNull();
      const [record] = await store.listRuns(PROJECT);
      expect(record).toMatchObject({ outcome: 'ok', changes: writes.length });
    } finally {
      await store.close();
    }
  });
});

describe('governor apply --yes interrupted (Ctrl-C, SIGTERM) while it writes', () => {
  let slow: RunningEmulator;
  beforeAll(async () => {
    // Each write takes over a second, so the signal comes while the run is writing.
    slow = await startEmulator({
      speed: 'manual',
      operationDelayMs: 1_200,
      fleet: fleet(),
    });
  });
  afterAll(async () => {
    await slow?.stop();
  });

  /** Runs apply --yes, sends `signals` once the plan is out, and reads what is left. */
  async function interrupted(signals: NodeJS.Signals[], stateDir: string) {
    // Another writer raises a cap over the quota: the run has a change to make.
    slow.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 4 });
    const before = slow.writes().length;
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'apply', '--policy', policy, '--yes', '--state-dir', stateDir],
      { env: { ...process.env, ...slow.env, ...QUICK_POLL_ENV, NO_COLOR: '1' } },
    );
    let stdout = '';
    let stderr = '';
    let sent = false;
    // The second signal once the first is acknowledged: two sent at once may arrive as one.
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const next = signals[1];
      if (next !== undefined && stderr.includes('finishing the run first')) {
        signals.splice(1, 1);
        child.kill(next);
      }
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!sent && stdout.includes('Plan: ')) {
        sent = true;
        child.kill(signals[0]);
      }
    });
    // As the shell counts it: a process that died of a signal is 128 + its number.
    const code = await new Promise<number | null>((resolve) =>
      child.on('close', (c, s) => resolve(c ?? (s === null ? null : 128 + osConstants.signals[s]))),
    );
    expect(sent).toBe(true);
    const store = createFileStateStore({ dir: stateDir });
    try {
      return {
        code,
        stderr,
        writes: slow.writes().slice(before),
        lease: await store.readLease(PROJECT),
        runs: await store.listRuns(PROJECT),
      };
    } finally {
      await store.close();
    }
  }

  it('the first signal lets the run finish: its writes, its record, its lease released', async () => {
    const r = await interrupted(['SIGINT'], join(tmp, 'state-sigint'));
    expect(r.stderr).toContain('SIGINT: finishing the run first');
    expect(r.code).toBe(0);
    expect(r.writes.length).toBeGreaterThan(0);
    for (const w of r.writes) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
    expect(r.lease).toBeNull();
    expect(r.runs[0]).toMatchObject({ outcome: 'ok', changes: r.writes.length });
  });

  it('a hangup (the terminal or the ssh session gone) lets the run finish as SIGTERM does', async () => {
    // The state of the run above: a fresh one would be another governor, which waits while
    // that one's recent writes may still be going on.
    const r = await interrupted(['SIGHUP'], join(tmp, 'state-sigint'));
    expect(r.stderr).toContain('SIGHUP: finishing the run first');
    expect(r.code).toBe(0);
    expect(r.writes.length).toBeGreaterThan(0);
    for (const w of r.writes) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
    expect(r.lease).toBeNull();
    expect(r.runs[0]).toMatchObject({ outcome: 'ok', changes: r.writes.length });
  });

  it('a second signal stops at once, saying the lease stays held and how to break it', async () => {
    const r = await interrupted(['SIGTERM', 'SIGTERM'], join(tmp, 'state-sigterm'));
    expect(r.stderr).toContain('SIGTERM again: stopped during the run');
    expect(r.stderr).toContain('governor unlock');
    expect(r.code).toBe(143);
    expect(r.lease).not.toBeNull();
    for (const w of r.writes) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
  });

  /**
   * Runs apply without --yes on a terminal (util-linux `script` gives it one), and once it asks
   * for confirmation stops it with `stop`: Ctrl-C typed, or a signal sent to the process.
   */
  async function atPrompt(stop: 'ctrl-c' | NodeJS.Signals, stateDir: string) {
    slow.edit({ project: PROJECT, region: REGION, service: 'idle', maxInstances: 4 });
    const before = slow.writes().length;
    mkdirSync(stateDir, { recursive: true });
    const pidFile = join(stateDir, 'governor.pid');
    const runSh = join(stateDir, 'run.sh');
    writeFileSync(
      runSh,
      `echo $$ > '${pidFile}'\nexec '${process.execPath}' bin/governor.js apply --policy '${policy}' --state-dir '${stateDir}'\n`,
    );
    const child = spawn('script', ['-qfec', `sh '${runSh}'`, '/dev/null'], {
      env: { ...process.env, ...slow.env, NO_COLOR: '1' },
    });
    let out = '';
    let stopped = false;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!stopped && out.includes('Only "yes" is accepted')) {
        stopped = true;
        if (stop === 'ctrl-c') child.stdin.write('\x03');
        else process.kill(Number(readFileSync(pidFile, 'utf8')), stop);
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('close', resolve);
      // Never skipped: without `script` the test fails, saying what to install.
      child.on('error', (e) =>
        reject(
          new Error(
            `util-linux script gives the CLI a terminal here and could not run (${e.message}): install it (Debian: bsdutils)`,
          ),
        ),
      );
    });
    expect(stopped).toBe(true);
    const store = createFileStateStore({ dir: stateDir });
    try {
      return {
        code,
        out,
        writes: slow.writes().slice(before),
        lease: await store.readLease(PROJECT),
        runs: await store.listRuns(PROJECT),
      };
    } finally {
      await store.close();
    }
  }

  it.each(['ctrl-c', 'SIGTERM', 'SIGINT'] as const)(
    '%s at the confirmation prompt is a no: nothing written, the lease released, the run recorded',
    async (stop) => {
      const r = await atPrompt(stop, join(tmp, `state-prompt-${stop}`));
      if (stop !== 'ctrl-c') expect(r.out).toContain(`${stop}: not confirmed, nothing written`);
      expect(r.out).toContain('Nothing written: not confirmed.');
      expect(r.code).toBe(0);
      expect(r.writes).toEqual([]);
      expect(r.lease).toBeNull();
      expect(r.runs[0]).toMatchObject({ outcome: 'ok', changes: 0 });
    },
  );
});

describe('governor apply on a state file it cannot read', () => {
  it('fails in one line naming the file, without quoting it, and says what mending it costs', async () => {
    const stateDir = join(tmp, 'state-corrupt');
    mkdirSync(stateDir, { recursive: true });
    const file = join(stateDir, `${PROJECT}.json`);
    writeFileSync(file, `{"schema":1,"project":"${PROJECT}","conditions":nul\n`);
    const before = emulator.writes().length;
    const r = await governor('apply', '--policy', policy, '--yes', '--state-dir', stateDir);
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`Unreadable state file ${file}: not JSON`);
    expect(errors[0]).not.toContain('conditions');
    expect(errors[0]).toContain('moved aside');
    expect(errors[0]).toContain('docs/alerts.md, "When an alert fires"');
    // No warning beside it of a lease left to expire: the store wrote none.
    expect(r.stderr).not.toContain('lease');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(emulator.writes().length).toBe(before);
  });
});

describe('governor apply interrupted at the quota request prompt', () => {
  it('says the request is not filed, not that nothing was written: the caps were', async () => {
    const project = 'cli-quota-prompt';
    // The us-central1 pool pressed for a week (a request to file), and europe-west4 over its
    // quota, so the run lowers a cap there before it asks about the request.
    const world = await openQuotaWorld(project, {
      emulator: { fleet: twoRegionFleet(project, { extra: true }), operationDelayMs: 20 },
    });
    const dir = join(tmp, 'state-quota-prompt');
    mkdirSync(dir, { recursive: true });
    const requestPolicy = join(dir, 'policy.yaml');
    writeFileSync(
      requestPolicy,
      `version: 1\nprojects: [${project}]\nregions: [us-central1, europe-west4]\ndefaults: {headroom: 0}\nservices: [{match: {}}]\nlimits: {writesPerMinute: 6000}\nquotaRequests: {enabled: true, contactEmail: ops@example.com, justification: Search inference.}\n`,
    );
    const pidFile = join(dir, 'governor.pid');
    const runSh = join(dir, 'run.sh');
    writeFileSync(
      runSh,
      `echo $$ > '${pidFile}'\nexec '${process.execPath}' bin/governor.js apply --policy '${requestPolicy}' --state-dir '${world.dir}'\n`,
    );
    try {
      const child = spawn('script', ['-qfec', `sh '${runSh}'`, '/dev/null'], {
        env: { ...process.env, ...world.emulator.env, ...QUICK_POLL_ENV, NO_COLOR: '1' },
      });
      let out = '';
      let confirmed = false;
      let stopped = false;
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (!confirmed && out.includes('change(s)? Only "yes" is accepted')) {
          confirmed = true;
          child.stdin.write('yes\r');
        }
        if (!stopped && out.includes('File this quota request?')) {
          stopped = true;
          process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
        }
      });
      const code = await new Promise<number | null>((resolve, reject) => {
        child.on('close', resolve);
        child.on('error', (e) =>
          reject(
            new Error(
              `util-linux script gives the CLI a terminal here and could not run (${e.message}): install it (Debian: bsdutils)`,
            ),
          ),
        );
      });
      expect(confirmed, out).toBe(true);
      expect(stopped, out).toBe(true);
      expect(code).toBe(0);
      // The cap was lowered before the prompt: the signal's line may not say nothing was written.
      expect(world.emulator.writes().length).toBeGreaterThan(0);
      expect(out).toContain('SIGTERM: quota request not confirmed, not filed');
      expect(out).not.toContain('nothing written');
      expect(quotaPreferences(world.emulator.model)).toEqual([]);
    } finally {
      await world.close();
    }
  });
});
