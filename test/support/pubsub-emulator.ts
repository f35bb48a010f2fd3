/**
 * The Pub/Sub emulator (Debian package google-cloud-cli-pubsub-emulator), for adapter tests.
 * Clients reach it through `PUBSUB_EMULATOR_HOST=<endpoint>`.
 */
import { startJavaEmulator } from './java-emulator.js';
import type { JavaEmulatorSpec, RunningEmulator, StartOptions } from './java-emulator.js';

export const pubSubEmulator: JavaEmulatorSpec = {
  name: 'Pub/Sub emulator',
  debianPackage: 'google-cloud-cli-pubsub-emulator',
  jar: /\/cloud-pubsub-emulator-[^/]*-all\.jar$/,
  // What the package's own bin/cloud-pubsub-emulator script runs, minus the script.
  javaArgs: (jar, host, port) => ['-jar', jar, `--host=${host}`, `--port=${port}`],
  ready: (port) => new RegExp(`Server started, listening on ${port}\\b`),
};

export function startPubSubEmulator(options?: StartOptions): Promise<RunningEmulator> {
  return startJavaEmulator(pubSubEmulator, options);
}
