import { createServer } from 'node:net';
import { GovernorError, errorMessage } from '../core/errors.js';

/**
 * A port the emulator was asked to listen on is taken (EADDRINUSE, from Node's `listen` or
 * grpc-js's `bindAsync`): one line that says which and what to do, for the command line, instead
 * of the socket library's message. Null for any other error, which is passed on as it is.
 */
export function portInUse(error: unknown, port: number, option: string): GovernorError | null {
  const text = errorMessage(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'EADDRINUSE' && !text.includes('EADDRINUSE')) return null;
  return new GovernorError(
    `port ${port} on 127.0.0.1 is already in use (another emulator?): stop what listens there, or pass another ${option}, or leave it out for a free port`,
  );
}

/**
 * Fails with {@link portInUse}'s one line when `port` on 127.0.0.1 is taken, by listening on it a
 * moment and closing again; port 0 (any free port) always passes. grpc-js, asked to bind a taken
 * port, first logs "E No address added out of total 1 resolved" on its own, which a newcomer
 * would see above that line; trying first keeps it off the terminal. (Something may still take
 * the port between the two: then the bind's own error is turned into the same line.)
 */
export async function checkPortFree(port: number, option: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(portInUse(error, port, option) ?? error));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}
