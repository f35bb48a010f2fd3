import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * `governor demo` (npm start) as a newcomer runs it: the built CLI as a child process, no
 * terminal, no Google credentials. It must end by itself within a bound, print the closing
 * summary, and leave no process behind.
 */

const env = { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' };
delete env['GOOGLE_APPLICATION_CREDENTIALS'];
delete env['PUBSUB_EMULATOR_HOST'];
delete env['GOVERNOR_EMULATOR_HOST'];

/** Four virtual hours keep the test short; `npm start` plays 24 the same way. */
const HOURS = '4';
const BOUND_MS = 100_000;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  pid: number;
}

/** Runs the CLI in a process group of its own, so that what it leaves behind can be found. */
function runDemo(args: string[]): Promise<Ran> {
  const started = Date.now();
  const child = spawn(process.execPath, ['bin/governor.js', 'demo', ...args], {
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
      reject(new Error(`governor demo did not end within ${BOUND_MS} ms:\n${stdout}\n${stderr}`));
    }, BOUND_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started, pid: child.pid as number });
    });
  });
}

/** Processes still in the group the demo led (none, once it is done). */
function leftInGroup(pgid: number): string[] {
  const ps = spawnSync('ps', ['-o', 'pid=,args=', '-g', String(pgid)], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

describe('governor demo (npm start)', () => {
  it(
    'plays the fleet on the emulator, prints plain lines off a terminal, ends with the summary and leaves nothing running',
    async () => {
      const r = await runDemo(['--hours', HOURS]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.ms).toBeLessThan(BOUND_MS);
      expect(leftInGroup(r.pid)).toEqual([]);

      // Not a terminal: plain lines, no cursor movement, no colour.
      // eslint-disable-next-line no-control-regex
      expect(r.stdout).not.toMatch(/\u001b\[/);
      expect(r.stdout).toMatch(
        /^2026-11-27 \d\d:\d\d UTC {2}us-central1 nvidia-l4: quota 10 · caps \d+ · in use \d+ · demand \d+ · refused so far \d+ GPU-min \(static caps \d+\) · writes \d+$/m,
      );
      expect(r.stdout).toMatch(
        /^2026-11-27 \d\d:\d\d UTC {2}us-central1 nvidia-l4 \(no zonal redundancy\): quota 3 · /m,
      );
      // What a subscriber of the alerts topic received, as it arrived.
      expect(r.stdout).toMatch(
        /^ {2}\d\d:\d\d (INFO|WARNING|ERROR) +(firing|still firing|resolved|event) +[a-z]+\.[a-z-]+ +\S/m,
      );

      // The closing summary: the three figures on the same demand, and the writes.
      const row = (label: string) =>
        new RegExp(`^ {2}${label} +([\\d,]+) +(\\d+) +(\\d+)$`, 'm').exec(r.stdout);
      const gov = row('with the governor');
      const caps = row("with the fleet's static caps");
      const over = row('with over-commit \\(every cap at the quota\\)');
      expect(gov, r.stdout).not.toBeNull();
      expect(caps, r.stdout).not.toBeNull();
      expect(over, r.stdout).not.toBeNull();
      const writes = Number(gov?.[2]);
      expect(writes).toBeGreaterThan(0);
      // The governor keeps its caps within the quota; over-commit never does.
      expect(Number(gov?.[3])).toBe(0);
      expect(Number(over?.[3])).toBe(2 * 4 * 60);
      expect(r.stdout).toContain(
        `Writes: ${writes} max-instances update(s) through the Cloud Run Admin API; none broke a rule`,
      );
      expect(r.stdout).toMatch(
        /^Alerts: a subscriber of projects\/demo-gpu-project\/topics\/gpu-governor-alerts received [1-9]\d* message\(s\)/m,
      );
    },
    BOUND_MS + 10_000,
  );

  it('refuses a bad --hours as bad usage (exit 2)', async () => {
    const r = await runDemo(['--hours', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--hours "0": expected a whole number from 1 to 48');
  });
});
