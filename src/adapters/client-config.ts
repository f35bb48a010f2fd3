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
import { InputError, type Fault } from '../core/errors.js';

/** Options for a google-gax client constructor: the emulator's, or none (Google's defaults). */
type GoogleClientOptions = EmulatorClientOptions | Record<string, never>;

interface ClientConfig {
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

/** What closeClients needs of a generated Google client (google-gax). */
interface ClosableClient {
  initialize(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Opens each generated client's stub, so that its `close()` then reaches every channel it holds.
 * A client whose API has long-running operations (Cloud Run v2's services, worker pools and
 * executions, Cloud Asset Inventory) builds its operations client in its constructor, and that
 * one opens its gRPC channel at once (google-gax's OperationsClient: `createStub` in the
 * constructor); the generated `close()` closes it only `if (this.<service>Stub &&
 * !this._terminated)`, that is only when the client's own stub was opened (the generator stopped
 * opening it in `close()`: https://github.com/googleapis/gapic-generator-typescript/issues/1108).
 * A client never called in a run (the dispatch's asset search when it reuses the kept discovery;
 * Cloud Run's clients in a run that ends before it reads Cloud Run, its lease held) left that
 * channel open: grpc-js keeps the channel and its channelz record until it is closed, so a warm
 * instance gained channels run after run (docs/performance.md, "The organisation's functions
 * kept warm"). Opening a stub connects nothing (a channel connects when first called); on Google
 * it looks up the credentials, as the run's other clients did. A client that cannot open its stub
 * (no credentials) opened no channel of its own either, and its close rejects with that same
 * failure: neither stops the others' closes.
 */
export async function openStubs(
  clients: readonly { initialize?: () => Promise<unknown> }[],
): Promise<void> {
  await Promise.allSettled(clients.map((client) => client.initialize?.()));
}

/** Closes generated clients and every channel they opened (see openStubs). */
export async function closeClients(clients: readonly ClosableClient[]): Promise<void> {
  await openStubs(clients);
  await Promise.allSettled(clients.map((client) => client.close()));
}
