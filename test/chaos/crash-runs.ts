import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { MAX_SEED, settingOrThrow, wholeNumberSetting } from '../../src/chaos/settings.js';
import type { Alert } from '../../src/core/alert.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { cliIn, governorIn, type CliResult } from '../support/cli-run.js';
import { overCommittedFleet, overCommittedPolicy, QUICK_POLL_ENV } from '../support/fixtures.js';

/**
 * What the crash suites share (crash.int.test.ts, crash-steps.int.test.ts): the fleet, the
 * policy, the governor run as a process that can be killed or in this process, and what the
 * emulator saw. Two files, so that vitest runs the kills at random moments and the kills after
 * each state change side by side.
 */

// A fixed seed by default, so that CI is reproducible; CHAOS_SEED explores others.
export const SEED = settingOrThrow(
  wholeNumberSetting(process.env, 'CHAOS_SEED', 20261127, 0, MAX_SEED),
);
const REGION = 'us-central1';
export const PROJECT = 'crash-project';
export const QUOTA = 12;
export const TOPIC = `projects/${PROJECT}/topics/alerts`;

// Caps 14 on a quota of 12: four idle services come down to 1, four raised to their minimum 2.
export const fleet = overCommittedFleet(PROJECT, REGION, QUOTA);

const policy = overCommittedPolicy(PROJECT, REGION);
export const policyWithTopic = JSON.stringify({ ...policy, alerts: { topic: TOPIC } });

/**
 * Every run here polls a write's operation from 20 ms rather than Google's 1 s: the emulator's
 * operations take 20 to 120 ms, so each of a run's eight writes waited a second for nothing, and
 * the file took three minutes. An operation is still in flight for about as long as it runs.
 */
export const POLL = QUICK_POLL_ENV;

export async function emulator(): Promise<RunningEmulator> {
  return startEmulator({
    // The emulator's own Pub/Sub keeps what the governor publishes (Google's is used below where
    // a publish must hang).
    fleet: { ...fleet, topics: [TOPIC] },
    speed: 'manual',
    operationDelayMs: 120,
    inject: {
      seed: SEED,
      latency: [{ method: 'UpdateService', minMs: 40, maxMs: 160 }],
    },
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs `governor apply --yes`; with `killAtWrite`, SIGKILLs it once the emulator has seen that many writes, plus `extraMs`. */
export function apply(
  em: RunningEmulator,
  stateDir: string,
  policyFile: string,
  kill?: { atWrite: number; extraMs: number },
  env: Record<string, string> = {},
) {
  return new Promise<Exit>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'apply', '--yes', '--policy', policyFile, '--state-dir', stateDir],
      {
        env: {
          ...process.env,
          ...em.env,
          ...POLL,
          GOVERNOR_RUN_DEADLINE: '20s',
          NO_COLOR: '1',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    let timer: NodeJS.Timeout | undefined;
    if (kill !== undefined) {
      timer = setInterval(() => {
        if (em.writes().length < kill.atWrite) return;
        clearInterval(timer);
        setTimeout(() => {
          if (child.pid !== undefined && child.exitCode === null)
            process.kill(child.pid, 'SIGKILL');
        }, kill.extraMs);
      }, 2);
    }
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stderr });
    });
  });
}

/** `governor unlock --yes`: what a person does after a crash, rather than wait for the lease. */
export async function unlock(
  em: RunningEmulator,
  stateDir: string,
  policyFile: string,
): Promise<string> {
  const r = await governorIn(
    { ...process.env, ...em.env, NO_COLOR: '1' },
    ...['unlock', '--yes', '--policy', policyFile, '--state-dir', stateDir],
  );
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/**
 * The command line in this process (`main`), with the emulator's environment as {@link apply}
 * gives it (as {@link unlock} does with `forUnlock`).
 */
export function inProcess(
  em: RunningEmulator,
  argv: string[],
  forUnlock = false,
): Promise<CliResult> {
  return cliIn(
    forUnlock
      ? { ...process.env, ...em.env, NO_COLOR: '1' }
      : { ...process.env, ...em.env, ...POLL, GOVERNOR_RUN_DEADLINE: '20s', NO_COLOR: '1' },
    ...argv,
  );
}

/** `governor apply --yes` in this process: a run that is not killed. */
export const applyHere = (em: RunningEmulator, stateDir: string, policyFile: string) =>
  inProcess(em, ['apply', '--yes', '--policy', policyFile, '--state-dir', stateDir]);

/** The rebalance.applied events the emulator's Pub/Sub received. */
export const applied = (em: RunningEmulator) =>
  em
    .published(TOPIC)
    .map((m) => JSON.parse(m.data ?? '{}') as Alert)
    .filter((a) => a.type === 'rebalance.applied');

/** Every cap change announced as applied, as `service→max`. */
export const announced = (em: RunningEmulator) =>
  new Set(
    applied(em).flatMap((a) =>
      (a.details.writes as { service: string; to: number }[]).map((w) => `${w.service}→${w.to}`),
    ),
  );

/** Every cap change the emulator saw, as `service→max`. */
export const writesOf = (em: RunningEmulator) =>
  em.writes().map((w) => `${w.service.name}→${w.after.maxInstances}`);

export const caps = (em: RunningEmulator) =>
  Object.fromEntries(em.state().services.map((s) => [s.name, s.maxInstances]));
