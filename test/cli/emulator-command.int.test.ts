import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../support/wait.js';

/** `governor emulator` through the real process (the demo: demo-command.int.test.ts). */

const run = promisify(execFile);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  NO_COLOR: '1',
  METADATA_SERVER_DETECTION: 'none',
};
// A newcomer's machine: no Google credentials, and no Pub/Sub emulator of Google's.
delete env['GOOGLE_APPLICATION_CREDENTIALS'];
delete env['PUBSUB_EMULATOR_HOST'];

/**
 * Waits for `governor emulator`'s exports (up to its "Ctrl-C" line), at most 20 s; what it has
 * printed so far, as it grows.
 */
async function exported(child: ChildProcessWithoutNullStreams): Promise<() => string> {
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exports within 20 s: ${out}`)), 20_000);
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
  });
  return () => out;
}

describe('governor emulator', () => {
  it('prints the variables to export, serves until interrupted, then exits 0', async () => {
    const child = spawn(process.execPath, ['bin/governor.js', 'emulator', '--speed', 'manual'], {
      env,
    });
    try {
      const output = await exported(child);
      const out = output();
      const host = /^export GOVERNOR_EMULATOR_HOST=(127\.0\.0\.1:\d+)$/m.exec(out)?.[1];
      const admin = /^export GOVERNOR_EMULATOR_ADMIN=(http:\/\/127\.0\.0\.1:\d+)$/m.exec(out)?.[1];
      expect(host).toBeDefined();
      expect(admin).toBeDefined();
      // Its own Pub/Sub publisher, on the same port.
      expect(out).toMatch(new RegExp(`^export PUBSUB_EMULATOR_HOST=${host ?? '-'}$`, 'm'));
      expect(out).toContain(
        '# Pub/Sub topics: projects/demo-gpu-project/topics/gpu-governor-alerts',
      );
      const clock = (await (await fetch(`${admin}/clock`)).json()) as { now: string };
      expect(clock.now).toBe('2026-11-27T06:00:00.000Z'); // the example fleet's start

      // The demo policy applied with the printed environment publishes its alerts here.
      const apply = await run(
        process.execPath,
        ['bin/governor.js', 'apply', '--policy', 'examples/demo-policy.yaml', '--yes'],
        {
          env: {
            ...env,
            GOVERNOR_EMULATOR_HOST: host,
            GOVERNOR_EMULATOR_ADMIN: admin,
            PUBSUB_EMULATOR_HOST: host,
            GOVERNOR_STATE_DIR: mkdtempSync(join(tmpdir(), 'governor-emulator-')),
          },
        },
      );
      expect(apply.stdout).toMatch(/[1-9]\d* alert message\(s\)/);
      const published = (await (
        await fetch(
          `${admin}/published?topic=${encodeURIComponent('projects/demo-gpu-project/topics/gpu-governor-alerts')}`,
        )
      ).json()) as { attributes: Record<string, string>; data: string }[];
      expect(published.length).toBeGreaterThan(0);
      expect(published.map((m) => m.attributes['type'])).toContain('pool.over-budget');
      // ... and the emulator's terminal shows each one on one line.
      const shown =
        /^2026-11-27T06:00:00\.000Z published projects\/demo-gpu-project\/topics\/gpu-governor-alerts #\d+ key=demo-gpu-project\/us-central1\/nvidia-l4\/zonal type=pool\.over-budget severity=ERROR status=firing .*: Caps in us-central1 nvidia-l4 sum to \d+ GPUs/m;
      await waitUntil("the alert on the emulator's terminal", output, (o) => shown.test(o));
      const exit = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => resolve(code)),
      );
      child.kill('SIGINT');
      expect(await exit).toBe(0);
    } finally {
      // A failed check above would leave it serving for good.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('names the fleet file on one line, without its control characters', async () => {
    // A file name is anyone's text (a repository's, a script's): its escape acted on the terminal.
    const scratch = mkdtempSync(join(tmpdir(), 'governor-emulator-'));
    const dir = join(scratch, 'f\u001b]0;title\u0007\u202e');
    mkdirSync(dir);
    const fleet = join(dir, 'fleet.yaml');
    copyFileSync('examples/demo-fleet.yaml', fleet);
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'emulator', '--speed', 'manual', '--fleet', fleet],
      { env },
    );
    try {
      const out = (await exported(child))();
      const head = out.split('\n')[0] ?? '';
      expect(head).toMatch(/\(fleet .*f ]0;title \/fleet\.yaml\)$/);
      expect(out.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\u202e]/u);
    } finally {
      child.kill('SIGKILL');
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('refuses a huge POST /advance at once instead of hanging', async () => {
    const child = spawn(process.execPath, ['bin/governor.js', 'emulator', '--speed', 'manual'], {
      env,
    });
    try {
      const out = (await exported(child))();
      const admin = /^export GOVERNOR_EMULATOR_ADMIN=(http:\/\/127\.0\.0\.1:\d+)$/m.exec(out)?.[1];
      const res = await fetch(`${admin}/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ms: 1e15 }),
        signal: AbortSignal.timeout(5_000),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/^bad advance: ms: /);
      const clock = await fetch(`${admin}/clock`, { signal: AbortSignal.timeout(5_000) });
      expect(((await clock.json()) as { now: string }).now).toBe('2026-11-27T06:00:00.000Z');
    } finally {
      // A hung emulator does not handle SIGINT: SIGKILL it.
      child.kill('SIGKILL');
    }
  });

  it('rejects a bad fleet file with exit 2', async () => {
    const r = await run(
      process.execPath,
      ['bin/governor.js', 'emulator', '--fleet', 'examples/policy.yaml'],
      { env },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not a valid fleet');
  });

  it.each([
    ['--port', 'gRPC'],
    ['--admin-port', 'admin'],
  ])(
    'a %s already in use (%s) is one line naming the port, exit 1, no stack trace',
    async (option) => {
      // Another program holds a port on 127.0.0.1 (here an HTTP server of this test's own).
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      const taken = (holder.address() as AddressInfo).port;
      try {
        const r = await run(
          process.execPath,
          ['bin/governor.js', 'emulator', '--speed', 'manual', option, String(taken)],
          { env },
        ).then(
          () => ({ code: 0, stderr: '' }),
          (e: { code: number; stderr: string }) => e,
        );
        expect(r.code).toBe(1);
        // That one line and nothing else: no stack trace, and no log line of grpc-js's own.
        expect(r.stderr.trim().split('\n')).toEqual([
          `error: port ${taken} on 127.0.0.1 is already in use (another emulator?): stop what listens there, or pass another ${option}, or leave it out for a free port`,
        ]);
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    },
  );

  it('the same port for --port and --admin-port is refused as such before anything starts, exit 2', async () => {
    const r = await run(
      process.execPath,
      [
        'bin/governor.js',
        'emulator',
        '--speed',
        'manual',
        '--port',
        '47123',
        '--admin-port',
        '47123',
      ],
      { env },
    ).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      'error: --port and --admin-port are both 47123: the gRPC and admin endpoints each need a port of their own (leave one out for a free port)',
    ]);
  });

  it('a --speed faster than a virtual day a second is refused before anything starts, exit 2', async () => {
    // At 1e308 (refused now as not written in decimal) the clock ran so far ahead that the
    // emulator spent its CPU modelling minutes and never printed the variables to export.
    const r = await run(process.execPath, ['bin/governor.js', 'emulator', '--speed', '100000'], {
      env,
    }).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      'error: --speed 100000: at most 86400 (a virtual day a second); the emulator plays every virtual minute and would never catch up',
    ]);
  });
});
