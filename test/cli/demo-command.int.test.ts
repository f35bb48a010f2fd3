import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import pc from 'picocolors';
import { alertLine, fit, poolLabels } from '../../src/cli/demo-command.js';
import { main } from '../../src/cli/main.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate } from '../../src/simulate/simulate.js';

/**
 * `governor demo` as a newcomer meets it: `npm start` itself as a child process, no terminal, no
 * Google credentials, the whole simulated day. It must end by itself in under two minutes, print
 * the closing summary, and leave no process behind. Then the same command on a terminal, where
 * the view is redrawn in place.
 */

const env: NodeJS.ProcessEnv = {
  ...process.env,
  NO_COLOR: '1',
  METADATA_SERVER_DETECTION: 'none',
};
delete env['GOOGLE_APPLICATION_CREDENTIALS'];
delete env['PUBSUB_EMULATOR_HOST'];
delete env['GOVERNOR_EMULATOR_HOST'];

/** The promise for `npm start`: the demo in under two minutes. */
const BOUND_MS = 120_000;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  pid: number;
}

/** Runs a command in a process group of its own, so that what it leaves behind can be found. */
function run(command: string, args: string[]): Promise<Ran> {
  const started = Date.now();
  const child = spawn(command, args, {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-(child.pid as number), 'SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')} did not end within ${BOUND_MS} ms:\n${stdout}\n${stderr}`,
        ),
      );
    }, BOUND_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started, pid: child.pid as number });
    });
  });
}

/** Processes still in the group the command led (none, once it is done). */
function leftInGroup(pgid: number): string[] {
  const ps = spawnSync('ps', ['-o', 'pid=,args=', '-g', String(pgid)], { encoding: 'utf8' });
  // ps exits 1 when it selects nothing, the answer hoped for; a ps that could not list (no ps, an
  // option it does not take) says so on stderr, and its empty output would read as nothing left.
  if (ps.error !== undefined || ps.stderr !== '') {
    throw new Error(`ps could not list the group ${pgid}: ${ps.error?.message ?? ps.stderr}`);
  }
  return ps.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Text with its line breaks and runs of spaces as one space: prose wrapped for a terminal. */
const squash = (s: string) => s.replace(/\s+/g, ' ');

/** The summary's row for a strategy: refused, at the cap, no GPU free, caps > quota, writes. */
function summaryRow(stdout: string, label: string): number[] {
  const m = new RegExp(
    `^ {2}${label} +([\\d,]+) +([\\d,]+) +([\\d,]+) +([\\d,]+) min +([\\d,]+)$`,
    'm',
  ).exec(stdout);
  expect(m, `no summary row "${label}" in:\n${stdout}`).not.toBeNull();
  return (m ?? []).slice(1).map((x) => Number(x.replace(/,/g, '')));
}

/**
 * What a terminal shows after `text`: enough of one to replay the live view (lines, carriage
 * return, cursor up, erase line). Returns the screen's lines and the cursor-ups seen.
 */
function terminal(text: string): { screen: string[]; ups: number } {
  const screen: string[] = [''];
  let row = 0;
  let ups = 0;
  // eslint-disable-next-line no-control-regex
  for (const token of text.split(/(\u001b\[\d*[A-Za-z]|\r|\n)/)) {
    if (token === '') continue;
    // eslint-disable-next-line no-control-regex
    const esc = /^\u001b\[(\d*)([A-Za-z])$/.exec(token);
    if (esc) {
      if (esc[2] === 'A') {
        row = Math.max(0, row - Number(esc[1] || 1));
        ups += 1;
      } else if (esc[2] === 'K') screen[row] = '';
      else throw new Error(`unexpected escape ${JSON.stringify(token)}`);
    } else if (token === '\r') continue;
    else if (token === '\n') {
      row += 1;
      if (screen.length <= row) screen.push('');
    } else screen[row] = (screen[row] ?? '') + token;
  }
  return { screen, ups };
}

describe('governor demo (npm start)', () => {
  it(
    'npm start plays the day on the emulator in under two minutes, prints plain lines off a terminal, ends with the summary and leaves nothing running',
    async () => {
      expect(JSON.parse(readFileSync('package.json', 'utf8')).scripts.start).toBe(
        'node bin/governor.js demo',
      );
      const r = await run('npm', ['start', '--silent']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.ms).toBeLessThan(BOUND_MS);
      expect(leftInGroup(r.pid)).toEqual([]);

      // Not a terminal: plain lines, no cursor movement, no colour.
      // eslint-disable-next-line no-control-regex
      expect(r.stdout).not.toMatch(/\u001b\[/);
      expect(r.stdout).toContain('Every 5 virtual minutes for 24 h');
      const pool = (title: string) =>
        [
          ...r.stdout.matchAll(
            new RegExp(
              `^(2026-11-2[78] \\d\\d:\\d\\d) UTC {2}${title}: quota (\\d+) · caps (\\d+) · in use (\\d+) · demand (\\d+) · refused so far (\\d+) GPU-min \\(static caps (\\d+)\\) · writes (\\d+)$`,
              'gm',
            ),
          ),
        ].map((m) => ({
          at: m[1],
          quota: Number(m[2]),
          caps: Number(m[3]),
          refused: Number(m[6]),
          fleetCaps: Number(m[7]),
        }));
      const zonal = pool('us-central1 nvidia-l4');
      const single = pool('us-central1 nvidia-l4 \\(no zonal redundancy\\)');
      // One line per pool each virtual hour, then one at the end of the day.
      expect(zonal).toHaveLength(25);
      expect(single).toHaveLength(25);
      expect(zonal.at(-1)?.at).toBe('2026-11-28 00:00');
      for (const p of zonal) expect(p.caps).toBeLessThanOrEqual(p.quota);
      // What a subscriber of the alerts topic received, as it arrived.
      expect(r.stdout).toMatch(
        /^ {2}\d\d:\d\d (INFO|WARNING|ERROR|CRITICAL) +(firing|still firing|resolved|event) +[a-z]+\.[a-z-]+ +\S/m,
      );
      expect(r.stdout).toMatch(/^ {2}\d\d:\d\d WARNING +still firing +\S/m);

      // The closing summary: the three figures on the same demand, and the writes.
      const [govRefused, govAtCap, govNoGpu, govOver, writes] = summaryRow(
        r.stdout,
        'the governor',
      );
      const [capsRefused, , , capsOver, capsWrites] = summaryRow(
        r.stdout,
        "the fleet's static caps",
      );
      const [overRefused, , overNoGpu, overOver] = summaryRow(r.stdout, 'over-commit');
      expect(writes).toBeGreaterThan(0);
      expect(capsWrites).toBe(0);
      // The governor refuses fewer GPU-minutes than the static caps, only at its caps, within the quota.
      expect(govRefused).toBeLessThan(capsRefused ?? 0);
      expect(govAtCap).toBe(govRefused);
      expect(govNoGpu).toBe(0);
      expect(govOver).toBe(0);
      expect(capsOver).toBe(0);
      // Over-commit's caps are over the quota all day in both pools; what it refuses, it refuses for want of a GPU.
      expect(overOver).toBe(2 * 24 * 60);
      expect(overNoGpu).toBe(overRefused);
      // The last lines of the live view add up to the summary.
      expect((zonal.at(-1)?.refused ?? 0) + (single.at(-1)?.refused ?? 0)).toBe(govRefused);
      expect((zonal.at(-1)?.fleetCaps ?? 0) + (single.at(-1)?.fleetCaps ?? 0)).toBe(capsRefused);
      // Prose wrapped for an 80-column terminal.
      for (const line of r.stdout.slice(r.stdout.indexOf('Summary of the day')).split('\n'))
        expect(line.length, line).toBeLessThan(80);
      const prose = squash(r.stdout);
      expect(prose).toContain(
        `Writes: ${writes} max-instances updates through the Cloud Run Admin API; none broke a rule`,
      );
      // The README's sample is this summary.
      const readme = readFileSync('README.md', 'utf8');
      const sample = /Sample closing summary \(24 h\):\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(sample).toBeDefined();
      for (const line of (sample ?? '').split('\n').filter((l) => l.trim() !== ''))
        expect(r.stdout.split('\n')).toContain(line);
      expect(prose).toMatch(
        /Alerts: a subscriber of projects\/demo-gpu-project\/topics\/gpu-governor-alerts received [1-9]\d* messages \(\d+ firing, /,
      );
    },
    BOUND_MS + 10_000,
  );

  it('on a terminal, redraws one view per pool in place: quota, caps, in use, demand, refused so far, and the alerts received', async () => {
    let out = '';
    let err = '';
    const code = await main(
      [
        'demo',
        '--hours',
        '2',
        '--fleet',
        'examples/demo-fleet.yaml',
        '--policy',
        'examples/demo-policy.yaml',
      ],
      {
        stdout: { isTTY: true, columns: 80, write: (s: string) => (out += s) },
        stderr: { write: (s: string) => (err += s) },
        env: { NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
      },
    );
    expect(err).toBe('');
    expect(code).toBe(0);
    // Its title says how long it plays: two hours, not a day.
    expect(out).toContain('Cloud Run GPU governor: 2 simulated hours\n');
    expect(out).not.toContain('a simulated day');
    const { screen, ups } = terminal(out);
    // Redrawn in place: many frames were drawn, and one is left on the screen.
    expect(ups).toBeGreaterThan(3);
    // What the pools share heads their column; the columns fit an 80-column terminal.
    const headers = screen.filter((l) =>
      /^ {2}us-central1 nvidia-l4 +quota +caps +in use +demand +refused +static caps$/.test(l),
    );
    expect(headers).toHaveLength(1);
    for (const l of screen) expect(l.length, l).toBeLessThan(80);
    expect(screen.filter((l) => l.startsWith('Alerts received by a subscriber'))).toHaveLength(1);
    // No plain hourly lines on a terminal.
    expect(screen.some((l) => /^2026-11-27 \d\d:\d\d UTC {2}us-central1/.test(l))).toBe(false);
    // The last frame: the end of the day, and its refusals are the summary's.
    expect(screen).toContainEqual(
      expect.stringMatching(/^2026-11-27 02:00 UTC {2}\[#{24}\] 100% {2}writes \d+$/),
    );
    const rows = screen
      .map((l) =>
        /^ {2}((?:no )?zonal redundancy) +(\d+) +(\d+) +(\d+) +(\d+) +([\d,]+) +([\d,]+)$/.exec(l),
      )
      .filter((m) => m !== null);
    expect(
      rows
        .map((m) => [m[1], Number(m[2])])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    ).toEqual([
      ['no zonal redundancy', 3],
      ['zonal redundancy', 10],
    ]);
    // Two hours are no day, and an over-commit that refused nothing is not said to refuse.
    const text = screen.join('\n');
    expect(text).toContain('Summary of the 2 h played (the same demand for all three):');
    expect(text).not.toContain('Summary of the day');
    expect(text).toMatch(/Over-commit refused nothing here, with its caps above the quota for/);
    expect(text).not.toMatch(/refused 0 GPU-minutes, none of them/);
    const refused = rows.reduce((a, m) => a + Number((m[6] ?? '').replace(/,/g, '')), 0);
    const gov = summaryRow(screen.join('\n'), 'the governor');
    expect(refused).toBe(gov[0]);
    // The latest alerts a subscriber received, under the pools, in columns.
    const alertRows = screen.filter((l) =>
      /^ {2}\d\d:\d\d (INFO|WARNING|ERROR|CRITICAL) +(firing|still firing|resolved|event) +[a-z]+\.[a-z-]+ +\S/.test(
        l,
      ),
    );
    expect(alertRows.length).toBeGreaterThan(0);
    expect(alertRows.length).toBeLessThanOrEqual(6);
  });

  it('on a terminal that cannot move its cursor (TERM=dumb), prints plain lines, no cursor movement', async () => {
    let out = '';
    const code = await main(
      [
        'demo',
        '--hours',
        '1',
        '--every',
        '30',
        '--fleet',
        'examples/demo-fleet.yaml',
        '--policy',
        'examples/demo-policy.yaml',
      ],
      {
        stdout: { isTTY: true, columns: 80, write: (s: string) => (out += s) },
        stderr: { write: () => undefined },
        env: { TERM: 'dumb', METADATA_SERVER_DETECTION: 'none' },
      },
    );
    expect(code).toBe(0);
    // Before, the live view went up and cleared lines with escapes a dumb terminal prints as text.
    expect(out).not.toContain('\u001b');
    expect(out).toMatch(/^2026-11-27 \d\d:\d\d UTC {2}us-central1/m);
  });

  it('names the fleet and policy files on one line, without their control characters', async () => {
    // A file name is anyone's text (a repository's, a script's): its escape acted on the terminal.
    const dir = join(mkdtempSync(join(tmpdir(), 'governor-demo-')), 'd\u001b]0;title\u0007\u202e');
    mkdirSync(dir);
    const fleet = join(dir, 'fleet.yaml');
    const policy = join(dir, 'policy.yaml');
    copyFileSync('examples/demo-fleet.yaml', fleet);
    copyFileSync('examples/demo-policy.yaml', policy);
    let out = '';
    const code = await main(
      ['demo', '--hours', '1', '--every', '30', '--fleet', fleet, '--policy', policy],
      {
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: () => undefined },
        env: { METADATA_SERVER_DETECTION: 'none', NO_COLOR: '1' },
      },
    );
    expect(code).toBe(0);
    expect(out).toMatch(/^fleet .*d ]0;title \/fleet\.yaml, policy .*d ]0;title \/policy\.yaml$/m);
    expect(out.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\u202e]/u);
  });

  it('puts each alert in columns as wide as the longest severity, status and alert type', () => {
    const base: Alert = {
      version: 1,
      id: 'a',
      type: 'pool.pressure',
      status: 'firing',
      severity: 'WARNING',
      project: 'p',
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      service: null,
      summary: 'Demand is high',
      details: {},
      runId: 'r',
      time: '2026-11-27T10:05:00.000Z',
      dedupKey: 'k',
    };
    const c = pc.createColors(false);
    const lines = [
      alertLine(
        { ...base, severity: 'CRITICAL', type: 'service.misconfigured', summary: 'a\nb' },
        c,
      ),
      alertLine({ ...base, details: { renotify: true } }, c),
      alertLine({ ...base, severity: 'INFO', status: 'event', type: 'rebalance.applied' }, c),
    ];
    expect(lines).toEqual([
      '10:05 CRITICAL firing       service.misconfigured a b',
      '10:05 WARNING  still firing pool.pressure         Demand is high',
      '10:05 INFO     event        rebalance.applied     Demand is high',
    ]);
  });

  it('cuts a line to the terminal width, colours kept, so that a redraw never wraps', () => {
    expect(fit('abcdef', 4)).toBe('abc…');
    expect(fit('abcd', 4)).toBe('abcd');
    const c = pc.createColors(true);
    const cut = fit(`${c.red('ab')}cdef`, 4);
    expect(cut).toBe(`${c.red('ab')}c…\u001b[0m`);
  });

  it('labels pools by what tells them apart, and heads the column with what they share', () => {
    const pool = (project: string, region: string, zonalRedundancy: boolean) => ({
      project,
      region,
      accelerator: 'nvidia-l4',
      zonalRedundancy,
    });
    expect(poolLabels([pool('p', 'us-central1', true), pool('p', 'us-central1', false)])).toEqual({
      shared: 'us-central1 nvidia-l4',
      labels: ['zonal redundancy', 'no zonal redundancy'],
    });
    expect(poolLabels([pool('p', 'us-central1', true), pool('p', 'europe-west4', true)])).toEqual({
      shared: 'nvidia-l4',
      labels: ['us-central1', 'europe-west4'],
    });
    expect(poolLabels([pool('a', 'us-central1', false), pool('b', 'us-central1', false)])).toEqual({
      shared: 'us-central1 nvidia-l4 no zonal redundancy',
      labels: ['a', 'b'],
    });
    expect(poolLabels([pool('p', 'us-central1', true)])).toEqual({
      shared: 'pool',
      labels: ['us-central1 nvidia-l4'],
    });
  });

  it('refuses a fleet the policy governs nothing of, before playing a day of failed runs (exit 2)', async () => {
    // The README's `--fleet`, with the default policy, whose project is not the fleet's.
    const r = await run(process.execPath, [
      'bin/governor.js',
      'demo',
      '--fleet',
      'examples/sim-mixed.yaml',
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "error: policy examples/demo-policy.yaml governs none of the 7 GPU service(s) of examples/sim-mixed.yaml: the policy's projects are demo-gpu-project (regions us-central1), the fleet's sim-project; check projects, regions and the rules under services\n",
    );
  });

  it("refuses a fleet without the policy's alerts topic, before playing a day of failed runs (exit 2)", async () => {
    // Every run publishes its alerts before it writes: without the topic, each one would fail.
    const dir = mkdtempSync(join(tmpdir(), 'governor-demo-topic-'));
    try {
      const fleet = join(dir, 'fleet.yaml');
      writeFileSync(
        fleet,
        readFileSync('examples/demo-fleet.yaml', 'utf8').replace(/^topics:\n(?: {2}- .*\n)+/m, ''),
      );
      const r = await run(process.execPath, ['bin/governor.js', 'demo', '--fleet', fleet]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(
        'error: policy examples/demo-policy.yaml publishes its alerts on projects/demo-gpu-project/topics/gpu-governor-alerts, which the fleet does not list under topics',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 when runs of the day failed, naming each in the summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-demo-denied-'));
    try {
      const fleet = join(dir, 'fleet.yaml');
      writeFileSync(
        fleet,
        readFileSync('examples/demo-fleet.yaml', 'utf8').replace(
          '  - id: demo-gpu-project\n',
          '  - id: demo-gpu-project\n    iam: { denied: [pubsub.topics.publish] }\n',
        ),
      );
      const r = await run(process.execPath, [
        'bin/governor.js',
        'demo',
        '--fleet',
        fleet,
        '--hours',
        '1',
        '--every',
        '30',
      ]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        / {2}failed run: 2026-11-27T00:00:00\.000Z: run sim-0 failed: .*pubsub\.topics\.publish/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad --hours as bad usage (exit 2)', async () => {
    const r = await run(process.execPath, ['bin/governor.js', 'demo', '--hours', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--hours "0": expected a whole number from 1 to 48');
  });
});

describe("the demo's view of a pool whose quota is cut", () => {
  it('shows the quota the pool has from the cut on, not the one it began with', async () => {
    // Before: "quota 8 · caps 4" for the rest of the run after a cut to 4 GPUs: the caps the
    // governor lowered to fit sat under a quota the pool no longer had.
    const input = await buildScenario(
      parseScenario({
        scenario: 1,
        hours: 2,
        quota: 8,
        warmupMinutes: 0,
        quotaCut: { atHour: 1, factor: 0.5 },
        services: ['a', 'b'].map((name) => ({
          name,
          maxInstances: 4,
          demand: { shape: { kind: 'constant', value: 3 } },
        })),
      }),
      TRACE_DIR,
    );
    const seen: { minute: number; quota: number; available: number }[] = [];
    await simulate(input, parsePolicy(benchPolicy()), {
      hours: 2,
      strategies: ['governor'],
      series: false,
      onTick: (view) => {
        const [p] = view.pools;
        if (p) seen.push({ minute: view.minute, quota: p.quota, available: p.available });
      },
    });
    expect(seen.find((s) => s.minute === 1)).toMatchObject({ quota: 8, available: 8 });
    expect(seen.filter((s) => s.minute > 60).length).toBeGreaterThan(0);
    for (const s of seen.filter((x) => x.minute > 60))
      expect(s).toMatchObject({ quota: 4, available: 4 });
  });
});
