import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { cliIn } from './cli-run.js';

/**
 * A newcomer's machine, for the tests of the newcomer path (test/cli/newcomer*.int.test.ts): no
 * Google credentials, no emulator of Google's; and the governor run as the newcomer runs it, a
 * process of its own per command ({@link governor}), or, for a command whose process another call
 * of the same test has checked already, in the test's own process ({@link governorHere}).
 */

const exec = promisify(execFile);

/** The demo's policy, which `governor emulator`'s default fleet is governed by. */
export const DEMO = 'examples/demo-policy.yaml';

/**
 * The environment without colour, credentials, the metadata server, any emulator's address or any
 * setting of the governor's own (`GOVERNOR_*`): the machine's own settings, a Firestore state
 * store say, would change what every step does.
 */
export const NEWCOMER_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  NO_COLOR: '1',
  METADATA_SERVER_DETECTION: 'none',
};
const NOT_ON_A_NEW_MACHINE = [
  'GOOGLE_APPLICATION_CREDENTIALS',
  'PUBSUB_EMULATOR_HOST',
  'FIRESTORE_EMULATOR_HOST',
];
for (const k of Object.keys(NEWCOMER_ENV)) {
  if (k.startsWith('GOVERNOR_') || NOT_ON_A_NEW_MACHINE.includes(k)) delete NEWCOMER_ENV[k];
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node bin/governor.js ...args` in `env`: its exit code and output, checked for a stack trace. */
export async function governor(env: NodeJS.ProcessEnv, ...args: string[]): Promise<Result> {
  let r: Result;
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/governor.js', ...args], { env });
    r = { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    r = { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
  return withoutStackTrace(r);
}

/**
 * `governor ...args` in this process (`main`, test/support/cli-run.ts), in `env`: its exit code
 * and output, checked for a stack trace as {@link governor} checks them. For a variant of a
 * command that the same file also runs as a process: what only a process shows (its exit through
 * bin/governor.js, a client's report in the background, Google's credentials) is that call's to
 * check.
 */
export async function governorHere(env: NodeJS.ProcessEnv, ...args: string[]): Promise<Result> {
  return withoutStackTrace(await cliIn(env, ...args));
}

function withoutStackTrace(r: Result): Result {
  // Never a stack trace, whatever happened.
  expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/^\s+at .+[(:]\d+/m);
  return r;
}
