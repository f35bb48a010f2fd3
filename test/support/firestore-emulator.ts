/**
 * The Firestore emulator (Debian package google-cloud-cli-firestore-emulator), for adapter tests.
 * Clients reach it through `FIRESTORE_EMULATOR_HOST=<endpoint>`.
 */
import { startJavaEmulator } from './java-emulator.js';
import type { JavaEmulatorSpec, RunningEmulator, StartOptions } from './java-emulator.js';

const firestoreEmulator: JavaEmulatorSpec = {
  name: 'Firestore emulator',
  debianPackage: 'google-cloud-cli-firestore-emulator',
  jar: /\/cloud-firestore-emulator\.jar$/,
  // What the package's cloud_firestore_emulator script runs, with the `start` arguments gcloud's
  // firestore_util.py passes (host, port, native mode). The emulator's WebSocket server for its
  // UI takes an ephemeral port of its own on the same host.
  javaArgs: (jar, host, port) => [
    '-Duser.language=en',
    '-cp',
    jar,
    'com.google.cloud.datastore.emulator.firestore.CloudFirestore',
    'start',
    `--host=${host}`,
    `--port=${port}`,
    '--database-mode=firestore-native',
  ],
  ready: (port) => new RegExp(`API endpoint: http://[^\\s]+:${port}\\b`),
};

export function startFirestoreEmulator(options?: StartOptions): Promise<RunningEmulator> {
  return startJavaEmulator(firestoreEmulator, options);
}

/**
 * The per-call time bound (`timeoutMs`) of the Firestore stores of tests whose subject is not
 * that bound: a guard against a call that hangs, not a deadline. Under load the emulator's JVM
 * took over 10 s for one read, and 10 s bounds failed tests that had nothing to do with time;
 * below the integration tests' 60 s timeout, so a hang still fails with the store's own message.
 * The bound itself is tested with a short one against a stopped emulator.
 */
export const FIRESTORE_CALL_TIMEOUT_MS = 45_000;

/**
 * Tests that run side by side against one emulator give each a database of its own (a project of
 * its own, here). The emulator locks more than Firestore does: Firestore locks the documents, and
 * the query ranges, a transaction reads
 * (https://cloud.google.com/firestore/docs/transaction-data-contention), so transactions on
 * different collections never wait for each other; in the emulator they do. Measured on 2 busy
 * cores: three tests' outbox transactions, each on a collection of its own in one database, took
 * 3 to 6 s at once (30 to 100 ms each when alone), and a fourth failed ABORTED ("Transaction lock
 * timeout") after its five attempts; each in a database of its own, none took over 0.3 s. What
 * the tests then saw was the emulator's contention, not the governor's.
 */
export function databasesFor(prefix: string, count: number): [string, ...string[]] {
  return [`${prefix}-0`, ...Array.from({ length: count - 1 }, (_, i) => `${prefix}-${i + 1}`)];
}
