/**
 * Where the Google clients connect, the same for every adapter.
 *
 * - `GOVERNOR_EMULATOR_HOST=127.0.0.1:PORT`: the local emulator (docs/emulator.md), over plain
 *   gRPC, with no credentials at all (none is looked up, so none can leak to it).
 * - unset: Google's endpoints (`run.googleapis.com`, ...) with Application Default Credentials,
 *   which is what the clients do when given no options.
 */
import { emulatorClientOptions } from './emulator-options.js';
import type { EmulatorClientOptions } from './emulator-options.js';
import { ProjectId } from '../core/units.js';
import { InputError, type Fault } from '../errors.js';

/** Options for a google-gax client constructor: the emulator's, or none (Google's defaults). */
export type GoogleClientOptions = EmulatorClientOptions | Record<string, never>;

export interface ClientConfig {
  /** Pass to the client constructor as they are. */
  readonly options: GoogleClientOptions;
  /** `127.0.0.1:PORT` when talking to the emulator, else null. */
  readonly emulatorHost: string | null;
}

/** Where the adapters connect: the emulator at `HOST:PORT`, or (null) Google. */
export interface Endpoint {
  emulatorHost: string | null;
}

/** The client options for an endpoint; a malformed emulator address is an InputError. */
export function clientConfig(endpoint: Partial<Endpoint>): ClientConfig {
  const host = endpoint.emulatorHost?.trim();
  if (host === undefined || host === '') return { options: {}, emulatorHost: null };
  try {
    return { options: emulatorClientOptions(host), emulatorHost: host };
  } catch (error) {
    throw new InputError(
      'Invalid emulator address',
      [{ path: 'emulatorHost', message: `must read HOST:PORT, not "${host}"` }],
      { cause: error },
    );
  }
}

/**
 * A project's fault, if any, before an adapter puts it in a resource name or a filter: it must be
 * a project as a policy may list it (`ProjectId`, core/units.ts), so that "a/b" or a space never
 * reaches Google as part of a name. Every adapter checks its project with this one rule.
 */
export function projectFaults(project: string): Fault[] {
  return ProjectId.safeParse(project).success
    ? []
    : [{ path: 'project', message: `must be a project id, not "${project}"` }];
}
