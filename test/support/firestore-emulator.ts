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
