import { oneLine } from '../core/text.js';
import { errorMessage } from '../core/errors.js';

/** A stream a command writes to: the process's own, or a buffer in tests. */
export interface Output {
  write(s: string): unknown;
  isTTY?: boolean;
  /** A terminal's width in characters, when it is one. */
  columns?: number;
}

/** Where a command writes. */
export interface Streams {
  stdout: Output;
  stderr: Output;
}

/**
 * What the command line runs with: its streams and its environment, which `main` parses once
 * (src/runtime-options.ts); commands get the parsed options, never the environment.
 */
export interface Io extends Streams {
  env: Readonly<Record<string, string | undefined>>;
}

/** The process's own streams and environment. */
export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/**
 * Closes what a command opened (Google's clients, the state store). A failure to close is a
 * `warning:` line on stderr, never thrown: the command's answer, or its own error, is the outcome
 * to report, as a run's is (runtime.ts closeRuntime).
 */
export async function closeOrWarn(
  close: () => Promise<void>,
  what: string,
  io: Pick<Streams, 'stderr'>,
): Promise<void> {
  await close().catch(warnClose(what, io));
}

/** The `warning:` line of a failure to close `what` (closeOrWarn), for a close done elsewhere. */
export function warnClose(what: string, io: Pick<Streams, 'stderr'>): (e: unknown) => void {
  return (e) => {
    io.stderr.write(`warning: closing ${what} failed: ${oneLine(errorMessage(e))}\n`);
  };
}
