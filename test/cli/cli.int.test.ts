import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Plan } from '../../src/core/plan.js';
import { cliIn, governorIn, type CliResult } from '../support/cli-run.js';

/**
 * The command line's files, flags and output: as a process where the process is what is checked,
 * in this process where it refuses bad input before any call (test/support/cli-run.ts). Each kind
 * of refusal is also run once as a process. How it reads its environment (credentials, the
 * emulator's addresses) is in cli-environment.int.test.ts.
 */

const tmp = mkdtempSync(join(tmpdir(), 'governor-cli-'));

/** `governor ...args` without colour or the metadata server, as {@link governorIn} runs it. */
function governor(...args: string[]): Promise<CliResult> {
  return governorIn({ ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' }, ...args);
}

/** `governor ...args` in this process, with the environment {@link governor} gives. */
function cli(...args: string[]): Promise<CliResult> {
  return cliIn({ ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' }, ...args);
}

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

const EXAMPLE = ['--policy', 'examples/policy.yaml', '--snapshot', 'examples/snapshot.json'];
/** `governor simulate` of the example policy on the example traces. */
const SIM_TRACES = [
  'simulate',
  '--policy',
  'examples/sim-policy.yaml',
  '--fleet',
  'examples/sim-traces.yaml',
];

describe('governor CLI', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await governor('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/plan/);
    expect(r.stdout).toMatch(/validate/);
  });

  it('a reader that closes the pipe early ends the process quietly, exit 0', async () => {
    // `governor plan | head -1`: the reader is gone before the output is written. Before, Node
    // reported the failed write as "error: write EPIPE" and exited 1.
    const child = spawn(process.execPath, ['bin/governor.js', 'plan', '--json', ...EXAMPLE], {
      env: { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('an output that cannot be written (a full disk) ends the command in one line naming it, exit 1', async () => {
    // `governor plan > /dev/full`: every write fails with ENOSPC. Before, the line was
    // "error: ENOSPC: no space left on device, write", which did not say what was written.
    const full = openSync('/dev/full', 'w');
    const r = spawnSync(process.execPath, ['bin/governor.js', 'plan', ...EXAMPLE], {
      env: { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
      stdio: ['ignore', full, 'pipe'],
      encoding: 'utf8',
    });
    closeSync(full);
    expect(r.status).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors).toEqual([
      'error: cannot write to standard output: ENOSPC: no space left on device, write',
    ]);
  });

  it('an error output that cannot be written neither stops the command nor changes its exit', async () => {
    // `governor plan 2>/dev/full`, or `2>&1 | head` once the reader has gone: the warnings cannot
    // be written. Before, the first warning was an uncaught error: exit 1, the plan cut short.
    const args = ['bin/governor.js', 'plan', '--policy', 'examples/demo-policy.yaml'];
    const env = { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' };
    const snapshot = ['--snapshot', 'examples/snapshot.json'];
    const plain = spawnSync(process.execPath, [...args, ...snapshot], { env, encoding: 'utf8' });
    expect(plain.stderr).toMatch(/^warning: /m);
    const full = openSync('/dev/full', 'w');
    const r = spawnSync(process.execPath, [...args, ...snapshot], {
      env,
      stdio: ['ignore', 'pipe', full],
      encoding: 'utf8',
    });
    closeSync(full);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(plain.stdout);
  });

  it('validate accepts the example policy', async () => {
    const r = await governor('validate', '--policy', 'examples/policy.yaml');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid');
  });

  it('plan --json and status --json escape what a terminal would act on, the JSON unchanged', async () => {
    // JSON.stringify escapes C0 controls only: a snapshot's name holding U+202E, or a note holding
    // a C1 control (U+009B, the one-character CSI) or U+2028, reached the terminal as it was.
    const snapshot = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      services: Record<string, unknown>[];
    };
    const [first] = snapshot.services;
    if (!first) throw new Error('the example snapshot has no service');
    const name = `${String(first.name)}\u202eevil`;
    const note = 'metrics behind\u009b31m\u2028\u2066x\u001b[2J';
    Object.assign(first, { name, usage: null, usageNote: note });
    const path = file('bidi-snapshot.json', JSON.stringify(snapshot));
    for (const command of ['plan', 'status']) {
      const r = await cli(
        command,
        '--policy',
        'examples/policy.yaml',
        '--snapshot',
        path,
        '--json',
      );
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).not.toMatch(
        /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069](?<!\n)/u,
      );
      expect(r.stdout, command).toContain('\\u202e');
      const parsed = JSON.parse(r.stdout) as { services: { name: string; reason: string }[] };
      const row = parsed.services.find((s) => s.name === name);
      expect(row?.reason, command).toContain(note);
    }
  });

  it('validate names the file on one line, without its control characters', async () => {
    // A file name is anyone's text (a repository's, a script's): its escape acted on the terminal.
    const r = await cli(
      'validate',
      '--policy',
      file('v\u001b]0;title\u0007\u202e.yaml', 'version: 1\nprojects: [p]\n'),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/v ]0;title \.yaml: valid/);
    expect(r.stdout.replace(/\n$/, '')).not.toMatch(/[\p{Cc}\u202e]/u);
  });

  it('validate: a rule after a catch-all is refused (exit 2); an undocumented GPU type is a warning (exit 0)', async () => {
    const base = 'version: 1\nprojects: [p]\n';
    // In this process: validate as a process is the test above; these check what main writes.
    const dead = await cli(
      'validate',
      '--policy',
      file(
        'dead-rule.yaml',
        `${base}services: [{match: {}}, {match: {name: 'render-*'}, managed: false}]\n`,
      ),
    );
    expect(dead.code).toBe(2);
    expect(dead.stderr).toContain('services[1].match: can never match: services[0] comes first');
    const typo = await cli(
      'validate',
      '--policy',
      file(
        'typo.yaml',
        `${base}pools: [{region: us-central1, accelerator: nvidia-l44, quota: 4}]\n`,
      ),
    );
    expect(typo.code).toBe(0);
    expect(typo.stdout).toContain('valid');
    expect(typo.stderr).toMatch(
      /^warning: policy pools\[0\]\.accelerator: "nvidia-l44" is not a GPU type Cloud Run documents/m,
    );
  });

  it('simulate --report: a folder is refused before simulating, a failed write names the file', async () => {
    const sim = ['simulate', '--policy', 'examples/sim-policy.yaml', '--fleet'];
    const folder = await cli(...sim, 'examples/sim-traces.yaml', '--hours', '1', '--report', tmp);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toBe(
      `error: --report ${tmp}: is a directory; name the HTML file to write\n`,
    );
    expect(folder.stdout).toBe('');
    const full = await cli(
      ...sim,
      'examples/sim-traces.yaml',
      '--hours',
      '1',
      '--report',
      '/dev/full',
    );
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(
      'error: cannot write the report /dev/full: no space left on device',
    );
    expect(full.stderr).not.toContain('unexpected failure');
    // Under a file, as if it were a folder: refused before simulating too.
    const plain = file('plain.txt', 'not a folder');
    const under = await cli(
      ...sim,
      'examples/sim-traces.yaml',
      '--report',
      join(plain, 'sub', 'report.html'),
    );
    expect(under.code).toBe(2);
    expect(under.stderr).toBe(
      `error: --report ${join(plain, 'sub', 'report.html')}: ${plain} is not a folder; name a file in a folder you can write\n`,
    );
    expect(under.stdout).toBe('');
  });

  it('simulate --report in a folder that cannot be made under /proc fails in one line', async () => {
    // procfs answers ENOENT to a mkdir below /proc although /proc exists: the folder is not
    // made, and the command says so rather than retrying it for ever.
    const report = join('/proc', 'governor-reports', 'report.html');
    const sim = ['simulate', '--policy', 'examples/sim-policy.yaml', '--fleet'];
    const r = await cli(...sim, 'examples/sim-traces.yaml', '--hours', '1', '--report', report);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: cannot write the report ${report}: no such file\n`);
  }, 20_000);

  it('simulate --report: a write that fails part-way leaves the report there before, whole', async () => {
    const folder = mkdtempSync(join(tmp, 'report-'));
    const report = join(folder, 'report.html');
    writeFileSync(report, '<p>the report of yesterday</p>');
    // A file size limit of 20 KiB (the report is about 200 KiB) fails the write part-way (EFBIG), as
    // a disk that fills up does (ENOSPC). Before, the old report was left cut at 20 KiB.
    const r = spawnSync(
      '/bin/sh',
      [
        '-c',
        `ulimit -f 20; exec "${process.execPath}" bin/governor.js simulate --policy examples/sim-policy.yaml --fleet examples/sim-mixed.yaml --hours 1 --report "${report}"`,
      ],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`error: cannot write the report ${report}: `);
    expect(readFileSync(report, 'utf8')).toBe('<p>the report of yesterday</p>');
    expect(readdirSync(folder)).toEqual(['report.html']);
  });

  it('simulate --report: an empty path, or one of the input files, is refused before simulating', async () => {
    // Before: `--report ""` (an unset variable, say) ran the whole simulation, wrote no report and
    // exited 0; `--report` naming the fleet or the policy overwrote it with the HTML page.
    const fleet = file(
      'fleet-kept.yaml',
      'scenario: 1\nproject: sim-project\nquota: 2\nservices: [{name: a, maxInstances: 1, demand: {shape: {kind: constant, value: 1}}}]\n',
    );
    const sim = ['simulate', '--policy', 'examples/sim-policy.yaml', '--fleet', fleet];
    const empty = await cli(...sim, '--hours', '1', '--report', '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe('error: --report "": name the HTML file to write\n');
    expect(empty.stdout).toBe('');
    for (const [flag, input] of [
      ['--fleet', fleet],
      ['--policy', 'examples/sim-policy.yaml'],
    ] as const) {
      const before = readFileSync(input, 'utf8');
      const r = await cli(...sim, '--hours', '1', '--report', input);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `error: --report ${input}: is the ${flag} file; name another file for the report\n`,
      );
      expect(readFileSync(input, 'utf8')).toBe(before);
    }
  });

  it('simulate --report naming a trace the fleet plays is refused before simulating, the trace kept', async () => {
    // Before: only the policy and the fleet file were guarded; a report named after a trace the
    // scenario reads replaced the trace with the HTML page.
    const trace = file(
      'code-trace.csv',
      readFileSync('examples/traces/azure-llm-2023-code.csv', 'utf8'),
    );
    const fleet = file(
      'fleet-with-trace.yaml',
      'scenario: 1\nproject: sim-project\nquota: 4\nservices: [{name: a, maxInstances: 4, demand: {trace: {file: code-trace.csv}}}]\n',
    );
    const before = readFileSync(trace, 'utf8');
    const r = await cli(
      'simulate',
      '--policy',
      'examples/sim-policy.yaml',
      '--fleet',
      fleet,
      '--hours',
      '1',
      '--report',
      trace,
    );
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe(
      `error: --report ${trace}: is the trace file; name another file for the report\n`,
    );
    expect(r.stdout).toBe('');
    expect(readFileSync(trace, 'utf8')).toBe(before);
  });

  it('simulate --hours takes a decimal number of hours only', async () => {
    // Before: Number() read "0x10" as 16 hours and "1e1" as 10.
    for (const hours of ['0x10', '1e1', ' 2']) {
      const r = await cli(...SIM_TRACES, '--hours', hours);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `error: --hours ${JSON.stringify(hours)}: expected a number of hours above 0 and at most 744\n`,
      );
    }
  });

  it('simulate --hours shorter than one tick is bad usage, not a run in which nothing is governed', async () => {
    const r = await cli(...SIM_TRACES, '--hours', '0.001');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: --hours 0.001: shorter than one tick of the governor (5 min), which would never run\n',
    );
  });

  it("simulate --hours that ends before a scenario's quota cut is bad usage, not a run without the cut", async () => {
    const cut = file(
      'cut.yaml',
      'scenario: 1\nhours: 3\nquota: 8\nquotaCut: {atHour: 2, factor: 0.5}\nservices: [{name: a, maxInstances: 8, demand: {shape: {kind: constant, value: 1}}}]\n',
    );
    const r = await cli(
      'simulate',
      '--policy',
      'examples/sim-policy.yaml',
      '--fleet',
      cut,
      '--hours',
      '1',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: --hours 1: ends before the quota cut of the scenario, at hour 2 (quotaCut.atHour); ask for more hours\n',
    );
  });

  it('lists the first 100 problems of a policy, each cut to 300 characters, and counts the rest', async () => {
    const keys = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`k${i}`, 1]));
    const many = file('many.json', JSON.stringify({ version: 1, projects: ['p'], ...keys }));
    const r = await cli('validate', '--policy', many);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is invalid (150 problems)');
    expect(r.stderr.split('\n').filter((l) => l.endsWith(': unknown key'))).toHaveLength(100);
    expect(r.stderr).toContain('  - and 50 more problems\n');
    const long = file(
      'long.json',
      JSON.stringify({ version: 1, projects: ['p'], ['x'.repeat(5000)]: 1 }),
    );
    const l = await cli('validate', '--policy', long);
    expect(l.code).toBe(2);
    expect(l.stderr).toContain(`  - ${'x'.repeat(299)}…: unknown key`);
    expect(l.stderr.length).toBeLessThan(1000);
  });

  it('refuses an endless or oversized input file by its limit, and reads a pipe', async () => {
    const cases: [string[], string][] = [
      [['validate', '--policy', '/dev/zero'], 'policy file /dev/zero: over 4 MiB'],
      [
        ['plan', '--policy', 'examples/policy.yaml', '--snapshot', '/dev/urandom'],
        'snapshot file /dev/urandom: over 64 MiB',
      ],
      [
        ['simulate', '--policy', 'examples/sim-policy.yaml', '--fleet', '/dev/zero'],
        'fleet file /dev/zero: over 64 MiB',
      ],
      [['emulator', '--fleet', '/dev/zero'], 'fleet file /dev/zero: over 64 MiB'],
    ];
    for (const [args, why] of cases) {
      const r = await governor(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`cannot read the ${why}`);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
    }
    // A pipe is read like a file: the policy on standard input, through a shell's pipe (Node's
    // own child stdin is a socket, which /dev/stdin cannot open).
    const piped = spawnSync(
      'sh',
      [
        '-c',
        `cat examples/policy.yaml | "${process.execPath}" bin/governor.js validate --policy /dev/stdin`,
      ],
      { encoding: 'utf8' },
    );
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout).toContain('/dev/stdin: valid');
    // Four processes each reading up to 64 MiB: a hang guard for a loaded machine, not a bound.
  }, 180_000);

  it('validate rejects a bad policy with exit 2, naming every fault', async () => {
    const bad = file(
      'bad.yaml',
      'version: 1\nprojects: [p]\ndefaults: {min: 3, max: 2, weight: -1}\nservices: [{match: {}, bogus: 1}]\n',
    );
    const r = await cli('validate', '--policy', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('defaults.weight');
    expect(r.stderr).toContain('services[0].bogus: unknown key');
    expect(r.stderr).toContain('min 3 is greater than max 2');
    expect(r.stdout).toBe('');
  });

  it('plan --json prints only a plan that parses against the plan schema', async () => {
    const r = await cli('plan', ...EXAMPLE, '--json');
    expect(r.code).toBe(0);
    const plan = Plan.parse(JSON.parse(r.stdout));
    expect(plan.at).toBe('2026-11-27T15:00:00.000Z');
    expect(plan.changes.length).toBeGreaterThan(0);
  });

  it('plan prints a readable plan without colour when not on a terminal', async () => {
    const r = await governor('plan', ...EXAMPLE);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pool my-project\/us-central1 nvidia-l4 {2}\[pressure\]$/m);
    expect(r.stdout).toMatch(
      /^ {2}~ llm-chat +10 +3 +3 → 5 +demand 5: peak 3 \+ 25% headroom = 4; refused 3 min of the last 10; wanted 4 \(in use 3 × 360 requests ÷ 300 served\)/m,
    );
    expect(r.stdout).toMatch(/^Plan: \d+ to raise, \d+ to lower/m);
    expect(r.stdout).not.toContain('\u001b[');
  });

  it('--at plans for another time: the weekday window no longer holds on Saturday', async () => {
    const friday = Plan.parse(JSON.parse((await cli('plan', ...EXAMPLE, '--json')).stdout));
    const saturday = Plan.parse(
      JSON.parse((await cli('plan', ...EXAMPLE, '--json', '--at', '2026-11-28T15:00:00Z')).stdout),
    );
    expect(friday.services.find((s) => s.name === 'llm-summarize')?.window).toBe(0);
    expect(saturday.services.find((s) => s.name === 'llm-summarize')?.window).toBeNull();
    expect(saturday.at).toBe('2026-11-28T15:00:00.000Z');
  });

  it('--at needs its offset and a real date: never the machine zone, never a rolled-over day', async () => {
    // Without an offset Date.parse reads the machine's zone: in New York, 10:00 was 15:00Z.
    const at = (text: string) =>
      governorIn(
        { ...process.env, TZ: 'America/New_York', METADATA_SERVER_DETECTION: 'none' },
        ...['plan', ...EXAMPLE, '--json', '--at', text],
      );
    for (const bad of ['2026-11-27T10:00:00', '2026-02-30T10:00:00Z', '']) {
      const r = await at(bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toBe(
        `error: --at ${JSON.stringify(bad)} is not an ISO 8601 time with its offset, such as 2026-11-27T10:00:00Z\n`,
      );
      expect(r.stdout).toBe('');
    }
    const paris = await at('2026-11-27T10:00:00+01:00');
    expect(paris.code).toBe(0);
    expect(Plan.parse(JSON.parse(paris.stdout)).at).toBe('2026-11-27T09:00:00.000Z');
  });

  it('--at of a leap second says that leap seconds are not supported, not that it is no ISO 8601 time', async () => {
    // ISO 8601 and RFC 3339 allow a 60th second; a JavaScript time has none to hold it.
    // In this process: the refusal of an --at as a process is the test above.
    for (const leap of ['2016-12-31T23:59:60Z', '2017-01-01T00:59:60.5+01:00']) {
      const r = await cli('plan', ...EXAMPLE, '--json', '--at', leap);
      expect(r.code, leap).toBe(2);
      expect(r.stderr).toBe(
        `error: --at ${JSON.stringify(leap)} is a leap second (second 60), which the governor cannot represent: use the second before or after it\n`,
      );
      expect(r.stdout).toBe('');
    }
  });

  it('rejects a bad snapshot with exit 2, naming the fields', async () => {
    const bad = file('bad.json', '{"version": 1, "takenAt": "yesterday", "pools": 3}');
    const r = await cli('plan', '--policy', 'examples/policy.yaml', '--snapshot', bad, '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('takenAt');
    expect(r.stderr).toContain('pools');
    expect(r.stderr).toContain('services');
    expect(r.stdout).toBe('');
  });

  it('a plan from a snapshot whose quota could not be read says why, as the observation recorded it', async () => {
    const error = '7 PERMISSION_DENIED: Permission cloudquotas.quotas.get denied';
    const snapshot = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      pools: Record<string, unknown>[];
      problems?: unknown[];
    };
    // The no-zonal pool, whose quota the example policy does not set: as `governor snapshot`
    // records a quota it could not read, in the pool and in the problems.
    const pool = snapshot.pools[1]!;
    const id = {
      project: pool['project'],
      region: pool['region'],
      accelerator: pool['accelerator'],
      zonalRedundancy: pool['zonalRedundancy'],
    };
    const problem = { project: id.project, region: id.region, pool: id, subject: 'quota', error };
    const cases: [string, Record<string, unknown>][] = [
      ['with its quotaSource', { quota: null, quotaSource: `unreadable: ${error}` }],
      // A snapshot that names the reason in its problems alone.
      ['in its problems alone', { quota: null, quotaSource: undefined }],
    ];
    for (const [how, fields] of cases) {
      snapshot.pools[1] = { ...pool, ...fields };
      snapshot.problems = [problem];
      const f = file('quota-unreadable.json', JSON.stringify(snapshot));
      // In this process: a plan from a snapshot as a process is 'plan prints a readable plan'.
      const json = await cli('plan', '--policy', 'examples/policy.yaml', '--snapshot', f, '--json');
      expect(json.code, how).toBe(0);
      const planned = Plan.parse(JSON.parse(json.stdout)).pools.find(
        (p) => p.zonalRedundancy === false,
      );
      expect(planned?.status, how).toBe('unknown-quota');
      expect(planned?.quotaSource, how).toBe(`unknown (unreadable: ${error})`);
      expect(planned?.note, how).toContain(`quota unknown (unreadable: ${error})`);
      const text = await cli('plan', '--policy', 'examples/policy.yaml', '--snapshot', f);
      expect(text.stdout, how).toContain(`  quota unknown (unreadable: ${error}) · reserve 0`);
    }
  });

  it('refuses a snapshot pool quota over the most a pool may have (exit 2), as the policy and Cloud Quotas do', async () => {
    // The planner then handed a pool out one instance at a time: a quota of 10^9 GPUs planned for
    // minutes (a thousand services took 18 s) where a live observation would read it as unknown.
    // Its demand step still places GPUs one at a time, each where it is likeliest used.
    const snapshot = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      pools: { quota: number | null }[];
    };
    snapshot.pools[1]!.quota = 1_000_000_000;
    const big = file('big-quota.json', JSON.stringify(snapshot));
    const r = await cli('plan', '--policy', 'examples/policy.yaml', '--snapshot', big);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `error: snapshot ${big} is invalid:\n  - pools[1].quota: 1000000000 GPUs; a pool may have at most 1000000\n`,
    );
    expect(r.stdout).toBe('');
  });

  it('refuses a simulation past a week of 100 services, scenario or fleet file, before playing it (exit 2)', async () => {
    // 300 services over a day took 139 s and 900 MB; 3,000 over 31 days grew past 4.8 GB, and a
    // CPU-bound run answered Ctrl-C only once it yielded.
    const services = (n: number, line: (i: number) => string) =>
      Array.from({ length: n }, (_, i) => line(i)).join('\n');
    const scenario = file(
      'big-scenario.yaml',
      `scenario: 1\nproject: sim-project\nquota: 10\nservices:\n${services(800, (i) => `  - { name: s${i}, maxInstances: 1, demand: { shape: { kind: constant, value: 1 } } }`)}\n`,
    );
    const fleet = file(
      'big-fleet.yaml',
      `version: 1\nprojects:\n  - id: sim-project\n    pools: [{ region: us-central1, quota: 10 }]\n    services:\n${services(100, (i) => `      - { name: s${i}, region: us-central1, gpu: { accelerator: nvidia-l4 }, maxInstances: 1, demand: 1 }`)}\n`,
    );
    const cases: [string[], string][] = [
      [
        ['--fleet', scenario],
        `error: ${scenario}: 800 services, worker pools and jobs over 1500 minutes (warm-up included) are 1200000 service-minutes; a simulation plays at most 1008000: simulate at most 20 h of this fleet, or fewer services\n`,
      ],
      [
        ['--fleet', fleet, '--hours', '200'],
        `error: ${fleet}: 100 services, worker pools and jobs over 12060 minutes (warm-up included) are 1206000 service-minutes; a simulation plays at most 1008000: simulate at most 167 h of this fleet, or fewer services\n`,
      ],
    ];
    // Refused before any of it is played: the error is the size check's own, and a simulation
    // played to its end would outlast the test's timeout (no bound on the time taken here).
    for (const [args, error] of cases) {
      const r = await cli('simulate', '--policy', 'examples/sim-policy.yaml', ...args);
      expect(r.stderr).toBe(error);
      expect(r.code).toBe(2);
    }
  }, 60_000);

  it('exits 2 for a missing file, a bad --at, an unknown option, and a missing command argument', async () => {
    const missing = await cli(
      'plan',
      '--policy',
      join(tmp, 'nope.yaml'),
      '--snapshot',
      'examples/snapshot.json',
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    const at = await cli('plan', ...EXAMPLE, '--at', 'tomorrow');
    expect(at.code).toBe(2);
    expect(at.stderr).toContain('--at');
    expect((await cli('plan', ...EXAMPLE, '--frobnicate')).code).toBe(2);
    expect((await cli('validate')).code).toBe(2);
    expect((await cli('no-such-command')).code).toBe(2);
  });

  // Before, only apply put the faults of a state file on one line: every other command that reads
  // the store printed the list as it came, its hint after the last fault.
  it('unlock, quota recommend and status on a state file they cannot read: one line naming it, the hint after it', async () => {
    const stateDir = mkdtempSync(join(tmp, 'state-corrupt-'));
    const policy = file('corrupt-state-policy.json', '{"version":1,"projects":["p1"]}');
    const state = join(stateDir, 'p1.json');
    // Two faults: the list the store's error holds.
    writeFileSync(state, JSON.stringify({ schema: 1, project: 'p1' }));
    for (const command of [['unlock'], ['quota', 'recommend'], ['status', '--org']]) {
      const what = command.join(' ');
      const r = await cli(...command, '--policy', policy, '--state-dir', stateDir);
      expect(r.code, what).toBe(1);
      expect(r.stderr, what).toMatch(
        new RegExp(
          `^error: Unreadable state file ${state.replace(/[.*+?^$()|[\]\\]/g, '\\$&')}: \\S+: .+; .+ — every run fails on it until it is mended or moved aside .+\n$`,
        ),
      );
      expect(r.stderr.split('\n'), what).toHaveLength(2);
    }
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual({ schema: 1, project: 'p1' });

    // Another project's file under this project's name (copied, renamed): the same, and says so.
    const foreign = { schema: 1, project: 'p2', conditions: null, lease: null, runs: [] };
    writeFileSync(state, JSON.stringify(foreign));
    const r = await cli('unlock', '--policy', policy, '--state-dir', stateDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: Unreadable state file ${state}: project: the file of project p2, not of p1`,
    );
    expect(r.stderr).toContain('mended or moved aside');
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual(foreign);
  });

  it('plan refuses a project or region that is no resource name segment, exit 2, before any call', async () => {
    // Before any Google call: without credentials, a call would be exit 1 instead.
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: tmp, METADATA_SERVER_DETECTION: 'none' };
    delete env.GOOGLE_APPLICATION_CREDENTIALS;
    delete env.GOVERNOR_EMULATOR_HOST;
    const bad = file('names.yaml', 'version: 1\nprojects: [../x]\nregions: [us central1]\n');
    const r = await governorIn(env, 'plan', '--policy', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('projects[0]: expected a project id such as "my-project"');
    expect(r.stderr).toContain('regions[0]: expected a Cloud Run region such as "us-central1"');
    expect(r.stderr).not.toContain('    at ');
  });

  it('reports a YAML syntax error with its line, exit 2', async () => {
    const broken = file('broken.yaml', 'version: 1\nprojects: [p\n');
    const r = await cli('validate', '--policy', broken);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line \d+/);
  });
});

describe('a failure nobody awaited (an unhandled rejection) during a command', () => {
  it('is one error line and exit 1, not the exit 0 of the command that went on', async () => {
    // A client library's background failure, as a preload plays it: once bin/governor.js has
    // set up its handlers, while main reads its files, a promise nobody awaits is rejected.
    const preload = file(
      'background-failure.mjs',
      `const on = process.on.bind(process);\nprocess.on = (event, listener) => {\n  if (event === 'unhandledRejection') setImmediate(() => void Promise.reject(new Error('background failure')));\n  return on(event, listener);\n};\n`,
    );
    const r = await governorIn(
      {
        ...process.env,
        NO_COLOR: '1',
        METADATA_SERVER_DETECTION: 'none',
        NODE_OPTIONS: `--import ${preload}`,
      },
      'plan',
      ...EXAMPLE,
    );
    expect(r.stdout).toContain('pool ');
    expect(r.stderr).toBe('error: background failure\n');
    expect(r.code).toBe(1);
  });
});
