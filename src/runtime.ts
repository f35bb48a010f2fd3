import { randomBytes } from 'node:crypto';
import { createGooglePorts, type GooglePorts } from './adapters/index.js';
import { createPubSubAlertSink, type PubSubAlertSink } from './adapters/pubsub.js';
import { clockFromEnv } from './adapters/clock.js';
import { durationMs } from './core/duration.js';
import type { Policy } from './core/policy.js';
import { InputError } from './errors.js';
import type { Logger } from './log.js';
import type { ReconcileDeps } from './reconcile/reconcile.js';
import { createFileStateStore } from './adapters/file-store.js';
import { createFirestoreStateStore } from './adapters/firestore-store.js';
import type { StateStore } from './ports/index.js';

/**
 * Builds a run's outside systems from the environment, for the CLI and the function alike:
 *
 * | variable                        | meaning                                                     |
 * | ------------------------------- | ----------------------------------------------------------- |
 * | GOVERNOR_STATE_STORE            | `file` (default) or `firestore`                             |
 * | GOVERNOR_STATE_DIR              | the file store's folder (default `.governor/state`)         |
 * | GOVERNOR_FIRESTORE_DATABASE     | Firestore database id (default `(default)`)                 |
 * | GOVERNOR_FIRESTORE_COLLECTION   | root collection (default `gpu-governor`)                    |
 * | GOVERNOR_RUN_DEADLINE           | no write starts after this long, e.g. `240s` (default 4m)   |
 * | GOVERNOR_EMULATOR_HOST / _ADMIN | the emulator (see the README)                               |
 * | PUBSUB_EMULATOR_HOST            | a Pub/Sub emulator: Google's, or `governor emulator`'s      |
 */
export interface Runtime extends ReconcileDeps {
  store: StateStore;
  close(): Promise<void>;
}

export function createRuntime(
  policy: Policy,
  env: NodeJS.ProcessEnv,
  log: Logger,
  overrides: { stateDir?: string } = {},
): Runtime {
  const store = createStore(env, overrides.stateDir);
  const ports: GooglePorts = createGooglePorts(env);
  const sink: PubSubAlertSink | null = policy.alerts.topic
    ? createPubSubAlertSink({ topic: policy.alerts.topic })
    : null;
  if (!sink) log.log('WARNING', 'the policy sets no alerts.topic: alerts are only logged');
  return {
    ports,
    store,
    sink,
    log,
    now: clockFromEnv(env),
    close: async () => {
      await Promise.all([ports.close(), store.close(), sink?.close()]);
    },
  };
}

export function createStore(env: NodeJS.ProcessEnv, stateDir?: string): StateStore {
  const kind = env.GOVERNOR_STATE_STORE ?? 'file';
  if (kind === 'file') {
    const dir = stateDir ?? env.GOVERNOR_STATE_DIR;
    return createFileStateStore(dir ? { dir } : {});
  }
  if (kind === 'firestore') {
    return createFirestoreStateStore({
      ...(env.GOVERNOR_FIRESTORE_DATABASE ? { databaseId: env.GOVERNOR_FIRESTORE_DATABASE } : {}),
      ...(env.GOVERNOR_FIRESTORE_COLLECTION
        ? { collection: env.GOVERNOR_FIRESTORE_COLLECTION }
        : {}),
    });
  }
  throw new InputError('GOVERNOR_STATE_STORE is invalid', [
    { path: 'GOVERNOR_STATE_STORE', message: `expected "file" or "firestore", not "${kind}"` },
  ]);
}

export function runDeadlineMs(env: NodeJS.ProcessEnv): number {
  const text = env.GOVERNOR_RUN_DEADLINE ?? '4m';
  try {
    return durationMs(text);
  } catch (e) {
    throw new InputError(
      'GOVERNOR_RUN_DEADLINE is invalid',
      [
        {
          path: 'GOVERNOR_RUN_DEADLINE',
          message: `expected a duration such as "240s", not "${text}"`,
        },
      ],
      { cause: e },
    );
  }
}

/** A run id: the time and a little randomness, sortable and unique enough for one project. */
export function newRunId(nowMs: number): string {
  return `run-${new Date(nowMs).toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}
