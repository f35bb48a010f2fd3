import { randomBytes } from 'node:crypto';
import { createClock } from './adapters/clock.js';
import { createFileStateStore } from './adapters/file-store.js';
import { createFirestoreStateStore } from './adapters/firestore-store.js';
import { createGooglePorts, type GooglePorts } from './adapters/index.js';
import { createPubSubAlertSink, type PubSubAlertSink } from './adapters/pubsub.js';
import { createQuotaPreferenceAdapter } from './adapters/quota-preferences.js';
import type { Policy } from './core/policy.js';
import type { Logger } from './log.js';
import type { StateStore } from './ports/index.js';
import type { ReconcileDeps } from './reconcile/reconcile.js';
import type { RuntimeOptions, StateStoreOptions } from './runtime-options.js';

/**
 * Builds a run's outside systems from the runtime options (src/runtime-options.ts), for the CLI
 * and the function alike: the Google ports (or the emulator), the state store, the alert sink and
 * the clock.
 */
export interface Runtime extends ReconcileDeps {
  store: StateStore;
  close(): Promise<void>;
}

export function createRuntime(
  policy: Policy,
  options: RuntimeOptions,
  log: Logger,
  overrides: { stateDir?: string } = {},
): Runtime {
  const store = createStore(options.stateStore, overrides.stateDir);
  const ports: GooglePorts = createGooglePorts(options);
  const sink: PubSubAlertSink | null = policy.alerts.topic
    ? createPubSubAlertSink({
        topic: policy.alerts.topic,
        emulatorHost: options.pubsubEmulatorHost,
      })
    : null;
  if (!sink) log.log('WARNING', 'the policy sets no alerts.topic: alerts are only logged');
  // Only a policy that opts in gets a client that can file quota requests.
  const quotaRequests = policy.quotaRequests?.enabled
    ? createQuotaPreferenceAdapter({ emulatorHost: options.emulatorHost })
    : undefined;
  return {
    ports,
    store,
    sink,
    log,
    now: createClock(options),
    ...(quotaRequests ? { quotaRequests } : {}),
    close: async () => {
      await Promise.all([ports.close(), store.close(), sink?.close(), quotaRequests?.close()]);
    },
  };
}

/** The state store the options name; `stateDir` (the CLI's --state-dir) overrides the file's. */
export function createStore(options: StateStoreOptions, stateDir?: string): StateStore {
  if (options.kind === 'firestore') {
    return createFirestoreStateStore({
      ...(options.databaseId ? { databaseId: options.databaseId } : {}),
      ...(options.collection ? { collection: options.collection } : {}),
    });
  }
  const dir = stateDir ?? options.dir;
  return createFileStateStore(dir ? { dir } : {});
}

/** A run id: the time and a little randomness, sortable and unique enough for one project. */
export function newRunId(nowMs: number): string {
  return `run-${new Date(nowMs).toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}
