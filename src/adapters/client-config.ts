/**
 * Where the Google clients connect, read from the environment once for every adapter.
 *
 * - `GOVERNOR_EMULATOR_HOST=127.0.0.1:PORT`: the local emulator (docs/emulator.md), over plain
 *   gRPC, with no credentials at all (none is looked up, so none can leak to it).
 * - unset: Google's endpoints (`run.googleapis.com`, ...) with Application Default Credentials,
 *   which is what the clients do when given no options.
 */
import { emulatorClientOptions } from './emulator-options.js';
import type { EmulatorClientOptions } from './emulator-options.js';
import { InputError } from '../errors.js';

/** Points the Cloud Run, Monitoring and Cloud Quotas adapters at the emulator. */
export const EMULATOR_HOST_ENV = 'GOVERNOR_EMULATOR_HOST';

/** Options for a google-gax client constructor: the emulator's, or none (Google's defaults). */
export type GoogleClientOptions = EmulatorClientOptions | Record<string, never>;

export interface ClientConfig {
  /** Pass to the client constructor as they are. */
  readonly options: GoogleClientOptions;
  /** `127.0.0.1:PORT` when talking to the emulator, else null. */
  readonly emulatorHost: string | null;
}

/** The client options the environment asks for; a malformed emulator address is an InputError. */
export function clientConfig(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const host = env[EMULATOR_HOST_ENV]?.trim();
  if (host === undefined || host === '') return { options: {}, emulatorHost: null };
  try {
    return { options: emulatorClientOptions(host), emulatorHost: host };
  } catch (error) {
    throw new InputError(
      'Invalid environment',
      [{ path: EMULATOR_HOST_ENV, message: `must read HOST:PORT, not "${host}"` }],
      { cause: error },
    );
  }
}
