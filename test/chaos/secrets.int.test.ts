import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { chaosScenario } from '../../src/chaos/chaos.js';
import { startEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile, RunFailedError } from '../../src/reconcile/reconcile.js';
import { createRuntime } from '../../src/runtime.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

/**
 * Logs and alerts never carry credentials or tokens: the governor runs (the CLI as a real
 * process, and a run in process) with credentials in its environment and a service account key
 * file, under injected faults so that errors are logged, and every line and alert is scanned.
 */

const TOKEN = 'ya29.a0FAKEtokenDoNotLeak0123456789';
const KEY_ID = 'fakekeyid0123456789abcdef';
const PRIVATE = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAAFAKEPRIVATEKEY';
const SECRET_PATTERNS = [
  new RegExp(TOKEN.replace('.', '\\.')),
  /ya29\.[A-Za-z0-9_-]+/,
  /BEGIN [A-Z ]*PRIVATE KEY/,
  new RegExp(PRIVATE),
  new RegExp(KEY_ID),
  /Bearer\s+[A-Za-z0-9._-]+/i,
  /"private_key"/,
];

function leaks(text: string): string[] {
  return SECRET_PATTERNS.filter((p) => p.test(text)).map(String);
}

function credentialsEnv(dir: string): Record<string, string> {
  const keyFile = join(dir, 'sa.json');
  writeFileSync(
    keyFile,
    JSON.stringify({
      type: 'service_account',
      project_id: 'secret-project',
      private_key_id: KEY_ID,
      private_key: `-----BEGIN PRIVATE KEY-----\n${PRIVATE}\n-----END PRIVATE KEY-----\n`,
      client_email: 'governor@secret-project.iam.gserviceaccount.com',
      client_id: '1',
      token_uri: 'https://oauth2.googleapis.com/token',
    }),
  );
  return {
    GOOGLE_APPLICATION_CREDENTIALS: keyFile,
    GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN,
    CLOUDSDK_AUTH_ACCESS_TOKEN: TOKEN,
  };
}

const inject = {
  seed: 3,
  errors: [
    { method: 'UpdateService', code: 'PERMISSION_DENIED' as const, rate: 0.5 },
    { method: 'ListTimeSeries', code: 'UNAVAILABLE' as const, rate: 0.5 },
  ],
};

describe('no credentials in logs or alerts', () => {
  it('the CLI (a real process): stdout and stderr carry no token or key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-secrets-'));
    const scenario = chaosScenario(21);
    const emulator = await startEmulator({ fleet: scenario.fleet, speed: 'manual', inject });
    try {
      const policyFile = join(dir, 'policy.json');
      writeFileSync(
        policyFile,
        JSON.stringify({ version: 1, projects: ['chaos-project'], services: [{ match: {} }] }),
      );
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['bin/governor.js', 'apply', '--yes', '--policy', policyFile, '--state-dir', dir],
          {
            env: { ...process.env, ...emulator.env, ...credentialsEnv(dir), NO_COLOR: '1' },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr.on('data', (d: Buffer) => (text += d.toString()));
        child.on('error', reject);
        child.on('exit', () => resolve(text));
      });
      expect(out.length).toBeGreaterThan(0);
      expect(leaks(out), out).toEqual([]);
    } finally {
      await emulator.stop();
    }
  }, 60_000);

  it('a run in process: every log line and every alert carries no token or key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-secrets-'));
    const scenario = chaosScenario(22);
    const emulator = await startEmulator({ fleet: scenario.fleet, speed: 'manual', inject });
    const log = memoryLogger();
    const env = { ...process.env, ...emulator.env, ...credentialsEnv(dir) };
    const runtime = await createRuntime(scenario.policy, parseRuntimeOptions(env), log, {
      stateDir: dir,
    });
    const sink = new RecordingSink();
    try {
      for (let i = 0; i < 3; i++) {
        await reconcile(
          scenario.policy,
          { ...runtime, sink, sleep: async () => {} },
          { runId: `secret-${i}`, deadlineMs: 30_000 },
        ).catch((e: unknown) => {
          if (!(e instanceof RunFailedError)) throw e;
          expect(leaks(e.message)).toEqual([]);
        });
        emulator.advance(5 * 60_000);
      }
      const text = JSON.stringify(log.lines) + JSON.stringify(sink.delivered);
      expect(log.lines.length).toBeGreaterThan(0);
      expect(leaks(text)).toEqual([]);
    } finally {
      await runtime.close();
      await emulator.stop();
    }
  }, 60_000);
});
