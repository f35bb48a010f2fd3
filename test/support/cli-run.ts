import { execFile, type ExecFileOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { main } from '../../src/cli/main.js';

/**
 * The command line two ways, for the tests of test/cli: as a process, `node bin/governor.js`
 * (built by `npm test`), where the process is what is checked: its exit, a stack trace or a
 * client's background report reaching the user, Google's credentials (read from the process's
 * environment by the client libraries), a pipe, the time zone; and in the test's own process
 * through `main`, which is what the process runs, for bad input refused before any call: a start
 * of Node and a load of the governor saved per command (about half a second of CPU each).
 */

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const run = promisify(execFile);

/**
 * A process run to its end: its exit code and output, whatever the code (an exit other than 0 is
 * a result here, not a throw). A process that could not be started, or was killed by a signal,
 * still throws.
 */
export async function processResult(
  file: string,
  args: readonly string[],
  options: ExecFileOptions = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(file, args, { ...options, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `governor ...args` as a process in the environment given: its exit code and output. */
export async function governorIn(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return processResult(process.execPath, ['bin/governor.js', ...args], { env });
}

/** `governor ...args` in this process (`main`), in the environment given: its exit code and output. */
export async function cliIn(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env,
  });
  return { code, stdout, stderr };
}
