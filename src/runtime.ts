import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, lstat, readlink, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createClock } from './adapters/clock.js';
import { createFileStateStore, DEFAULT_STATE_DIR } from './adapters/file-store.js';
import type { GooglePorts } from './adapters/index.js';
import {
  loadAssetSearchAdapter,
  loadFirestoreStateStore,
  loadGooglePorts,
  loadPubSubAlertSink,
  loadQuotaPreferenceAdapter,
  loadWorkPublisher,
} from './adapters/load.js';
import type { PubSubAlertSink } from './adapters/pubsub.js';
import type { QuotaPreferenceAdapter } from './adapters/quota-preferences.js';
import type { Policy } from './core/policy.js';
import { errorMessage, InputError, UsageError } from './core/errors.js';
import { listOnOneLine } from './core/text.js';
import type { Logger } from './log.js';
import type {
  AssetSearchPort,
  Clock,
  DiscoveryCacheStore,
  StateStore,
  WorkPublisher,
} from './ports/index.js';
import type { ReconcileDeps } from './reconcile/reconcile.js';
import { countedRegions, projectUnitStore } from './reconcile/unit-lease.js';
import type { RuntimeOptions, StateStoreOptions } from './runtime-options.js';

/**
 * Builds a run's outside systems from the runtime options (src/runtime-options.ts), for the CLI
 * and the function alike: the Google ports (or the emulator), the state store, the alert sink and
 * the clock. Google's client libraries are loaded here, when a run needs them, not when the
 * program starts (src/adapters/load.ts): only those the run uses.
 */
interface Runtime extends ReconcileDeps {
  store: StateStore;
  close(): Promise<void>;
}

export async function createRuntime(
  policy: Policy,
  options: RuntimeOptions,
  log: Logger,
  /**
   * `stateDir`: the CLI's --state-dir. `store`: one the caller already opened (the unit entry
   * reads its discovery cache before deciding to run); the runtime then owns and closes it.
   */
  overrides: {
    stateDir?: string;
    store?: StateStore & DiscoveryCacheStore;
  } = {},
): Promise<Runtime> {
  const stored = overrides.store ?? (await createStore(options.stateStore, overrides.stateDir));
  // A project's lease excludes its regional units (and they it): src/reconcile/unit-lease.ts.
  // Whatever this run's own policy says: the units are split by the organisation's policy, which
  // may not be the one a command line runs with on the same store. The regions are those the kept
  // discovery counts (none where nothing was ever discovered), read each time a lease is granted:
  // a discovery read earlier (a unit's decision, an earlier lease call) may predate a dispatch that
  // added a region whose unit has taken its lease since. The other units' records and conditions
  // go by the latest of those reads.
  let latest: ReturnType<typeof stored.loadDiscovery> | null = null;
  const store = projectUnitStore(stored, async (project, fresh) => {
    if (fresh || latest === null) latest = stored.loadDiscovery();
    return countedRegions(await latest, project);
  });
  let ports: GooglePorts | null = null;
  let sink: PubSubAlertSink | null = null;
  let quotaRequests: QuotaPreferenceAdapter | undefined;
  let now: Clock;
  try {
    // First: options no run can start with (the emulator without its admin URL, or the reverse)
    // open no client.
    checkRunOptions(options);
    now = createClock(options);
    ports = await loadGooglePorts(options);
    sink = policy.alerts.topic
      ? await loadPubSubAlertSink({
          topic: policy.alerts.topic,
          emulatorHost: options.pubsubEmulatorHost,
        })
      : null;
    // Only a policy that opts in gets a client that can file quota requests.
    quotaRequests = policy.quotaRequests?.enabled
      ? await loadQuotaPreferenceAdapter({ emulatorHost: options.emulatorHost })
      : undefined;
  } catch (e) {
    // What was built before the failure is let go, not left holding connections.
    await Promise.allSettled([ports?.close(), sink?.close(), store.close()]);
    throw e;
  }
  if (!sink) log.log('WARNING', 'the policy sets no alerts.topic: alerts are only logged');
  for (const line of emulatorAsideWarnings(options, sink ? "the run's alerts" : null))
    log.log('WARNING', line);
  const built = { ports, sink, quotaRequests };
  return {
    ports: built.ports,
    store,
    sink: built.sink,
    log,
    now,
    ...(built.quotaRequests ? { quotaRequests: built.quotaRequests } : {}),
    // Every client is closed, and waited for, whatever another did; the first failure is then
    // thrown, for the caller to tell (closeRuntime). Not Promise.all: it settles at the first
    // failure, and the run would answer (the command line exit) with the others still closing,
    // their own failures never told.
    close: async () => {
      const closed = await Promise.allSettled([
        built.ports.close(),
        store.close(),
        built.sink?.close(),
        built.quotaRequests?.close(),
      ]);
      const failed = closed.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/** What {@link checkEmulatorMix} and {@link emulatorAsideWarnings} read of the options. */
type EmulatorMixOptions = Pick<
  RuntimeOptions,
  'emulatorHost' | 'pubsubEmulatorHost' | 'firestoreEmulatorHost' | 'stateStore'
>;

/** What {@link checkRunOptions} reads of the options. */
type RunCheckedOptions = EmulatorMixOptions & Pick<RuntimeOptions, 'emulatorAdmin'>;

/**
 * Refuses, before anything is opened, options that no run can start with: an InputError that
 * names the variables. The emulator without its admin URL has no clock (adapters/clock.ts); its
 * admin URL without the emulator would date a run that reads Google's Cloud Run and Monitoring
 * on the emulator's virtual clock, so that every observation window misses Google's points and
 * the run plans and writes from that; the emulator beside Google's Pub/Sub or Firestore is
 * refused too ({@link checkEmulatorMix}). createRuntime refuses them too; the function checks
 * them with the rest of its configuration, so that such a deployment fails as misconfigured
 * rather than as an unexpected failure; the commands that read Google (plan, status, snapshot,
 * check, replay, apply, restore) check them before their credentials. (Commands that read only
 * the state store, such as `quota recommend`, take the emulator's clock alone: they do not come
 * here.)
 */
export function checkRunOptions(options: RunCheckedOptions): void {
  if (options.emulatorAdmin && !options.emulatorHost) {
    throw new InputError(
      "GOVERNOR_EMULATOR_ADMIN is set but GOVERNOR_EMULATOR_HOST is not: a run would read Google's services on the emulator's virtual clock; unset GOVERNOR_EMULATOR_ADMIN to use Google (or export GOVERNOR_EMULATOR_HOST as `governor emulator` prints it)",
      [],
    );
  }
  createClock(options);
  checkEmulatorMix(options);
}

/**
 * The emulator's Cloud Run, Monitoring and Cloud Quotas (GOVERNOR_EMULATOR_HOST) beside Google's
 * Pub/Sub or Firestore: refused, so that nothing built from the emulator's data reaches Google.
 * Each Google client library goes to Google unless its own variable names an emulator
 * (PUBSUB_EMULATOR_HOST, https://cloud.google.com/pubsub/docs/emulator; FIRESTORE_EMULATOR_HOST,
 * https://cloud.google.com/firestore/docs/emulator), and with credentials found a run would
 * publish its alerts, or a dispatch its work messages, to the real topic, and lease and record
 * its runs in the real database. The reverse (Google's services, emulators for Pub/Sub or
 * Firestore) sends nothing to Google that it did not come from, and is taken.
 */
export function checkEmulatorMix(options: EmulatorMixOptions): void {
  if (!options.emulatorHost) return;
  if (!options.pubsubEmulatorHost) {
    throw new InputError(
      "GOVERNOR_EMULATOR_HOST is set but PUBSUB_EMULATOR_HOST is not: alerts and work messages built from the emulator's data would be published to Google's Pub/Sub; export PUBSUB_EMULATOR_HOST as `governor emulator` prints it (or unset GOVERNOR_EMULATOR_HOST to use Google)",
      [],
    );
  }
  if (options.stateStore.kind === 'firestore' && !options.firestoreEmulatorHost) {
    throw new InputError(
      "GOVERNOR_EMULATOR_HOST is set but FIRESTORE_EMULATOR_HOST is not, with GOVERNOR_STATE_STORE=firestore: runs of the emulator's services would lease and record in Google's Firestore; set FIRESTORE_EMULATOR_HOST to a Firestore emulator, or unset GOVERNOR_STATE_STORE for the file store (or unset GOVERNOR_EMULATOR_HOST to use Google)",
      [],
    );
  }
}

/**
 * The reverse of {@link checkEmulatorMix}: Google's Cloud Run and Monitoring beside an emulator's
 * Pub/Sub or Firestore. Taken, since nothing of an emulator's data reaches Google, but told in a
 * WARNING line each: a run that writes real caps would publish its alerts (a dispatch its work
 * messages: `publishes`) to the emulator the variable names, and keep its lease where a governor
 * elsewhere does not look; most often a variable left over from a local session. Each client
 * library honours its own variable (https://cloud.google.com/pubsub/docs/emulator,
 * https://cloud.google.com/firestore/docs/emulator).
 */
export function emulatorAsideWarnings(
  options: EmulatorMixOptions,
  /** What the caller publishes: "the run's alerts", "the dispatch's work messages"; null: nothing. */
  publishes: string | null,
): string[] {
  if (options.emulatorHost) return [];
  const google = "but GOVERNOR_EMULATOR_HOST is not, so the services read are Google's";
  const lines: string[] = [];
  const pubsub = options.pubsubEmulatorHost;
  if (pubsub && publishes !== null) {
    lines.push(
      `PUBSUB_EMULATOR_HOST is set (${pubsub}) ${google}: ${publishes} go to that Pub/Sub emulator, not to Google's topic; unset PUBSUB_EMULATOR_HOST to publish them to Google`,
    );
  }
  const firestore = options.firestoreEmulatorHost;
  if (firestore && options.stateStore.kind === 'firestore') {
    lines.push(
      `FIRESTORE_EMULATOR_HOST is set (${firestore}) ${google}: its state (leases, run records, discovery) is kept in that Firestore emulator, where a governor elsewhere does not see it; unset FIRESTORE_EMULATOR_HOST to keep them in Google's Firestore`,
    );
  }
  return lines;
}

/** The state store the options name; `stateDir` (the CLI's --state-dir) overrides the file's. */
export async function createStore(
  options: StateStoreOptions,
  stateDir?: string,
): Promise<StateStore & DiscoveryCacheStore> {
  if (options.kind === 'firestore') {
    return loadFirestoreStateStore({
      ...(options.databaseId ? { databaseId: options.databaseId } : {}),
      ...(options.collection ? { collection: options.collection } : {}),
    });
  }
  const dir = stateDir ?? options.dir;
  return createFileStateStore(dir ? { dir } : {});
}

/**
 * The command line's state store as its flag and the environment name it, refused before anything
 * is read or written when no store can be that: bad input (UsageError, exit 2) naming where it
 * came from, not a run that failed. A `--state-dir` beside the Firestore store (it would be
 * ignored); an empty folder name (it would be the default); a path that is a file, or has a file
 * in it; for a command that writes (`use` 'write': a run takes a lease and records itself), a
 * folder this user cannot write, or, when it does not exist yet, cannot create (the store creates
 * it on its first write). A command that only reads may read a folder it cannot write. Any other
 * fault (a file in the folder it cannot read or write, a full disk) is the store's to report when
 * it reads or writes.
 */
export async function checkStateStore(
  options: StateStoreOptions,
  stateDir: string | undefined,
  use: 'read' | 'write',
): Promise<void> {
  if (options.kind === 'firestore') {
    if (stateDir !== undefined)
      throw new UsageError(
        "--state-dir names the file store's folder, but GOVERNOR_STATE_STORE is firestore: drop --state-dir, or unset GOVERNOR_STATE_STORE to use the file store",
      );
    return;
  }
  const dir = stateDir ?? options.dir;
  if (dir === null) return;
  const source = stateDir !== undefined ? '--state-dir' : 'GOVERNOR_STATE_DIR';
  // Blanks alone too: GOVERNOR_STATE_DIR of blanks is unset (runtime-options.ts), and a folder
  // named " " would be a second store beside the default, whose leases no governor using the
  // default one sees.
  if (dir.trim() === '')
    throw new UsageError(
      `${source} is ${dir === '' ? 'empty' : 'blank'}: name the state store's folder, or leave it out for ${DEFAULT_STATE_DIR}`,
    );
  const named = `${source} ${JSON.stringify(dir)}`;
  // The folder, or the nearest folder above it that exists: the one the store writes in first.
  let existing = dir;
  let isFolder: boolean;
  for (;;) {
    try {
      isFolder = (await stat(existing)).isDirectory();
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOTDIR')
        throw new UsageError(`${named} is not a folder: a part of its path is a file`, {
          cause: e,
        });
      // Anything but a missing folder (a folder above it this user cannot enter) is the store's.
      const above = dirname(existing);
      if (code !== 'ENOENT' || above === existing) return;
      // A link to nothing: stat follows it and finds nothing, but the store's mkdir meets the
      // link itself. Nothing to create for a command that reads (a missing folder is an empty
      // store); one that writes could never make its folder.
      const link = use === 'write' ? await danglingLink(existing) : null;
      if (link !== null)
        throw new UsageError(
          `${named} cannot be created: ${JSON.stringify(existing)} is a link to ${JSON.stringify(link)}, which does not exist: create it, or name another folder`,
        );
      existing = above;
    }
  }
  // (Below a file, stat fails with ENOTDIR: only the folder itself can be a file here.)
  if (!isFolder)
    throw new UsageError(`${named} is not a folder: name a folder for the state store`);
  if (use === 'read') return;
  try {
    // Write to create the store's files, search to open them.
    await access(existing, fsConstants.W_OK | fsConstants.X_OK);
  } catch (e) {
    throw new UsageError(
      existing === dir
        ? `${named} is a folder this user cannot write: name one it can write, or run as its owner`
        : `${named} cannot be created: this user cannot write ${JSON.stringify(existing)} to create it`,
      { cause: e },
    );
  }
}

/** Where `path` points when it is a symbolic link whose target is not there; null otherwise. */
async function danglingLink(path: string): Promise<string | null> {
  try {
    if (!(await lstat(path)).isSymbolicLink()) return null;
    return await readlink(path);
  } catch {
    // Gone meanwhile, or not readable: not a link this check can name; the store reports it.
    return null;
  }
}

/**
 * The command line's state store: {@link checkStateStore} (bad input exits 2 before anything is
 * read), then {@link createStore}. The function opens its store with createStore alone: a store
 * that fails there is a failed run, not bad input.
 */
export async function openCliStore(
  options: StateStoreOptions,
  stateDir: string | undefined,
  use: 'read' | 'write',
): Promise<StateStore & DiscoveryCacheStore> {
  await checkStateStore(options, stateDir, use);
  return createStore(options, stateDir);
}

/** A run id: the time and a little randomness, sortable and unique enough for one project. */
export function newRunId(nowMs: number): string {
  return `run-${new Date(nowMs).toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** What a dispatch run (organisation scale) needs: the asset search, the store, the work topic. */
interface OrgRuntime {
  search: AssetSearchPort | null;
  store: StateStore & DiscoveryCacheStore;
  publisher: WorkPublisher | null;
  close(): Promise<void>;
}

export async function createOrgRuntime(
  policy: Policy,
  options: RuntimeOptions,
  overrides: { stateDir?: string } = {},
): Promise<OrgRuntime> {
  // Before any client: the emulator's discovery beside Google's Pub/Sub or Firestore is refused.
  checkEmulatorMix(options);
  const store = await createStore(options.stateStore, overrides.stateDir);
  let search: AssetSearchPort | null = null;
  let publisher: WorkPublisher | null = null;
  try {
    search = policy.discovery
      ? await loadAssetSearchAdapter({ emulatorHost: options.emulatorHost })
      : null;
    publisher = policy.fanout
      ? await loadWorkPublisher({
          topic: policy.fanout.topic,
          emulatorHost: options.pubsubEmulatorHost,
        })
      : null;
  } catch (e) {
    // What was opened before the failure is let go, as createRuntime does: the function serves
    // many dispatches, and each would leave a state store's client open.
    await Promise.allSettled([store.close(), search?.close()]);
    throw e;
  }
  return {
    search,
    store,
    publisher,
    // Every client is closed whatever another did; the first failure is then thrown, for the
    // caller to tell (closeRuntime), as a run's clients' is.
    close: async () => {
      const closed = await Promise.allSettled([store.close(), search?.close(), publisher?.close()]);
      const failed = closed.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/**
 * Closes a run's clients (its state store, Google's clients); a failure to close them is told in a
 * WARNING line, never thrown over the answer: the run is done, and answered as it went (the
 * function's 500 would have the scheduler, or Pub/Sub, run it again for work that was done; the
 * command line's exit 1 and lost summary would hide the writes it made).
 */
export async function closeRuntime(
  runtime: { close(): Promise<void> },
  log: Logger,
): Promise<void> {
  await runtime
    .close()
    .catch((e: unknown) =>
      log.log('WARNING', `closing the run's clients failed: ${listOnOneLine(errorMessage(e))}`),
    );
}

/**
 * What is left of a run's deadline of `runDeadlineMs` counted from `receivedAt`, when the request
 * arrived: Cloud Run's request timeout counts from the arrival
 * (https://cloud.google.com/run/docs/configuring/request-timeout), so loading the run's code and
 * opening its clients come out of it. None left (0): the run takes no lease and fails at once.
 * `receivedAt` is a reading of performance.now(), the time elapsed (reconcile/pacing.ts,
 * elapsedClock), as is the time now here: the request's timeout counts in real time, and a wall
 * clock that stepped back since the arrival would otherwise hide the time already spent (one that
 * jumped forward, take time not spent). Never more than `runDeadlineMs` (the run counts its own
 * deadline on the time elapsed from here: reconcile/run.ts).
 */
export function deadlineLeft(runDeadlineMs: number, receivedAt: number): number {
  const since = Math.max(0, performance.now() - receivedAt);
  return Math.max(0, runDeadlineMs - since);
}
