import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliIn, governorIn } from '../support/cli-run.js';

/**
 * The command line's environment: live commands without Google credentials, against an emulator
 * that has stopped, with one of the emulator's two addresses but not the other. As a process where
 * the process is what is checked (credentials, which the client libraries read from the process's
 * environment; a stack trace or a client's background report reaching the user), in this process
 * where bad input is refused before any call (test/support/cli-run.ts); each kind of refusal is
 * also run once as a process. The files, flags and output are in cli.int.test.ts.
 */

const tmp = mkdtempSync(join(tmpdir(), 'governor-cli-env-'));

/**
 * `body` with GOOGLE_APPLICATION_CREDENTIALS of this process as `env` has it (unset if unset), as
 * a process started with `env` would read it; put back after.
 */
async function withProcessCredentials<T>(
  env: NodeJS.ProcessEnv,
  body: () => Promise<T>,
): Promise<T> {
  const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  const set = (v: string | undefined) => {
    if (v === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = v;
  };
  set(env.GOOGLE_APPLICATION_CREDENTIALS);
  try {
    return await body();
  } finally {
    set(saved);
  }
}

describe('governor CLI: its environment', () => {
  it.each([
    ['plan'],
    ['snapshot'],
    ['status'],
    ['audit'],
    ['check'],
    ['apply', '--yes'],
    ['restore', '--dry-run'],
    ['replay', '--since', '1d'],
  ])(
    'live %s without Google credentials fails with one clear line and a hint, exit 1',
    async (...command) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        HOME: tmp,
        NO_COLOR: '1',
        METADATA_SERVER_DETECTION: 'none',
        GOVERNOR_STATE_DIR: join(tmp, 'no-credentials-state'),
      };
      delete env.GOOGLE_APPLICATION_CREDENTIALS;
      delete env.GOVERNOR_EMULATOR_HOST;
      delete env.PUBSUB_EMULATOR_HOST;
      const r = await governorIn(env, ...command, '--policy', 'examples/policy.yaml');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^error: no Google credentials: .*gcloud auth application-default login/m,
      );
      // One line: no second report of the same failure from a client in the background.
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toContain('    at ');
    },
  );

  it('live plan with GOOGLE_APPLICATION_CREDENTIALS naming a broken file says to mend that file', async () => {
    // ADC reads that variable before gcloud's own login, so logging in with gcloud mends nothing.
    const file = join(tmp, 'broken-key.json');
    writeFileSync(file, '{"type": "service_account",');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: tmp,
      NO_COLOR: '1',
      METADATA_SERVER_DETECTION: 'none',
      GOVERNOR_STATE_DIR: join(tmp, 'broken-key-state'),
      GOOGLE_APPLICATION_CREDENTIALS: file,
    };
    delete env.GOVERNOR_EMULATOR_HOST;
    delete env.PUBSUB_EMULATOR_HOST;
    const r = await governorIn(env, 'plan', '--policy', 'examples/policy.yaml');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no Google credentials: .*GOOGLE_APPLICATION_CREDENTIALS/m);
    expect(r.stderr).toMatch(/Fix the file GOOGLE_APPLICATION_CREDENTIALS names, or unset it/);
    expect(r.stderr).not.toContain('gcloud auth application-default login');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  // Side by side: each case is a process of its own, with its own ports and state folder, that
  // mostly waits for its client library's retries against a port nothing listens on.
  it.concurrent.each([
    ['plan', false],
    ['apply', false],
    ['plan', true],
  ])(
    '%s against an emulator that has stopped (admin URL too: %s): one short line saying so, exit 1',
    async (command, adminGone) => {
      // Ports nothing listens on: the emulator was stopped, or started again elsewhere.
      const closed = async () => {
        const server = createServer();
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as AddressInfo;
        await new Promise((resolve) => server.close(resolve));
        return `127.0.0.1:${port}`;
      };
      const host = await closed();
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NO_COLOR: '1',
        METADATA_SERVER_DETECTION: 'none',
        GOVERNOR_EMULATOR_HOST: host,
        PUBSUB_EMULATOR_HOST: host,
        GOVERNOR_STATE_DIR: join(tmp, `gone-${command}-${String(adminGone)}`),
      };
      // The admin URL gone too, or still answering the time: then the gRPC host is what fails.
      const clock = createHttpServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ now: '2026-11-27T06:00:00.000Z' }));
      });
      await new Promise<void>((resolve) => clock.listen(0, '127.0.0.1', resolve));
      env.GOVERNOR_EMULATOR_ADMIN = adminGone
        ? `http://${await closed()}`
        : `http://127.0.0.1:${(clock.address() as AddressInfo).port}`;
      const args = [command, '--policy', 'examples/demo-policy.yaml'];
      if (command === 'apply') args.push('--yes');
      const r = await governorIn(env, ...args).finally(() => clock.close());
      expect(r.code).toBe(1);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
      expect(errors).toHaveLength(1);
      const line = errors[0] ?? '';
      expect(line).toContain('is `governor emulator` still running?');
      // Not google-gax's account of every retry, nor grpc-js's empty note.
      expect(line).not.toContain('Previous errors');
      expect(line).not.toContain('Resolution note');
      expect(line.length).toBeLessThan(600);
      expect(r.stderr).not.toContain('    at ');
    },
  );

  it.each([
    'plan',
    'snapshot',
    'status',
    'check',
    'audit',
    'apply --yes',
    'restore --dry-run',
    'replay --since 1d',
    'status --org',
    'quota recommend',
  ])(
    '%s with GOVERNOR_EMULATOR_HOST but no GOVERNOR_EMULATOR_ADMIN: one line naming the variable to export, exit 2, before any call',
    async (line) => {
      const command = line.split(' ');
      // The emulator's clock is virtual (examples/fleet.yaml starts on 2026-11-27T06:00Z): on the
      // wall clock every Monitoring window misses its points, and runs are dated a week apart.
      // Nothing listens on the host: a call would fail with exit 1 instead.
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      await new Promise((resolve) => server.close(resolve));
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NO_COLOR: '1',
        METADATA_SERVER_DETECTION: 'none',
        GOVERNOR_EMULATOR_HOST: host,
        PUBSUB_EMULATOR_HOST: host,
        GOVERNOR_STATE_DIR: join(tmp, `no-admin-${command.join('')}`),
      };
      delete env.GOVERNOR_EMULATOR_ADMIN;
      // The first as a process, the others in this process: the same refusal, before any call.
      const run = line === 'plan' ? governorIn : cliIn;
      const r = await run(env, ...command, '--policy', 'examples/demo-policy.yaml');
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        "error: GOVERNOR_EMULATOR_HOST is set but GOVERNOR_EMULATOR_ADMIN is not: the governor takes its time from the emulator's virtual clock, on its admin endpoint; export GOVERNOR_EMULATOR_ADMIN as `governor emulator` prints it (or unset GOVERNOR_EMULATOR_HOST to use Google)\n",
      );
    },
  );

  it.each([
    'plan',
    'snapshot',
    'status',
    'check',
    'audit',
    'apply --yes',
    'restore --dry-run',
    'replay --since 1d',
  ])(
    '%s with GOVERNOR_EMULATOR_ADMIN but no GOVERNOR_EMULATOR_HOST: one line naming both, exit 2, before credentials',
    async (line) => {
      // It would read Google's services on the emulator's virtual clock. Without credentials,
      // the refusal is still this one, not a hint to point the governor at the emulator.
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NO_COLOR: '1',
        METADATA_SERVER_DETECTION: 'none',
        GOVERNOR_EMULATOR_ADMIN: 'http://127.0.0.1:9',
        GOOGLE_APPLICATION_CREDENTIALS: join(tmp, 'no-such-credentials.json'),
        GOVERNOR_STATE_DIR: join(tmp, `no-host-${line.replace(/\W/g, '')}`),
      };
      delete env.GOVERNOR_EMULATOR_HOST;
      delete env.PUBSUB_EMULATOR_HOST;
      // The first as a process, the others in this process: the same refusal, before any call.
      // The client libraries read credentials from the process's environment, so in this process
      // the same missing key file is set there for the call: a command that looked for
      // credentials first would fail on it instead.
      const args = [...line.split(' '), '--policy', 'examples/demo-policy.yaml'];
      const r =
        line === 'plan'
          ? await governorIn(env, ...args)
          : await withProcessCredentials(env, () => cliIn(env, ...args));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /^error: GOVERNOR_EMULATOR_ADMIN is set but GOVERNOR_EMULATOR_HOST is not: [^\n]+\n$/,
      );
    },
  );

  it('with GOVERNOR_EMULATOR_HOST alone, a command that reads no time runs as before', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NO_COLOR: '1',
      METADATA_SERVER_DETECTION: 'none',
      GOVERNOR_EMULATOR_HOST: '127.0.0.1:9',
      GOVERNOR_STATE_DIR: join(tmp, 'no-admin-at'),
    };
    delete env.GOVERNOR_EMULATOR_ADMIN;
    for (const command of [
      ['validate'],
      // The time given: nothing is read of the emulator's clock.
      ['quota', 'recommend', '--at', '2026-11-27T06:00:00Z'],
    ]) {
      const r = await governorIn(env, ...command, '--policy', 'examples/demo-policy.yaml');
      expect(r.code, command.join(' ')).toBe(0);
      expect(r.stderr, command.join(' ')).toBe('');
    }
  });
});
