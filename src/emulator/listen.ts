import { GovernorError } from '../errors.js';

/**
 * A port the emulator was asked to listen on is taken (EADDRINUSE, from Node's `listen` or
 * grpc-js's `bindAsync`): one line that says which and what to do, for the command line, instead
 * of the socket library's message. Null for any other error, which is passed on as it is.
 */
export function portInUse(error: unknown, port: number, option: string): GovernorError | null {
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'EADDRINUSE' && !text.includes('EADDRINUSE')) return null;
  return new GovernorError(
    `port ${port} on 127.0.0.1 is already in use (another emulator?): stop what listens there, or pass another ${option}, or leave it out for a free port`,
  );
}
