/**
 * The Pub/Sub and Firestore emulators shared by the integration test files of one run (started by
 * `java-emulators.global.ts` on first use). A file names the Google Cloud projects it uses in
 * the emulator; another file asking for one of them is refused, so files never see each other's
 * topics or documents. A file that stops or restarts an emulator as part of its test starts its
 * own instead (`startPubSubEmulator`, `startFirestoreEmulator`).
 *
 * When the emulator cannot start, the call rejects with the launcher's message (the missing
 * package, or the JVM's own output): the test fails, it never skips.
 */
import { expect, inject } from 'vitest';

export interface SharedEmulator {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as `PUBSUB_EMULATOR_HOST` and `FIRESTORE_EMULATOR_HOST` want it. */
  readonly endpoint: string;
  /** The PID of the JVM (shared: never stop it from a test). */
  readonly pid: number;
}

export function sharedPubSubEmulator(...projects: [string, ...string[]]): Promise<SharedEmulator> {
  return shared('pubsub', projects);
}

export function sharedFirestoreEmulator(
  ...projects: [string, ...string[]]
): Promise<SharedEmulator> {
  return shared('firestore', projects);
}

async function shared(kind: 'pubsub' | 'firestore', projects: string[]): Promise<SharedEmulator> {
  const base = inject('sharedJavaEmulators');
  if (typeof base !== 'string') {
    throw new Error(
      'No shared Java emulators in this run: the integration projects of vitest.config.ts start ' +
        'them (globalSetup test/support/java-emulators.global.ts)',
    );
  }
  const file = expect.getState().testPath ?? 'an unnamed test file';
  const url = new URL(`/${kind}`, base);
  url.searchParams.set('file', file);
  for (const p of projects) url.searchParams.append('project', p);
  const res = await fetch(url);
  const body = (await res.json()) as SharedEmulator & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `the shared ${kind} emulator: HTTP ${res.status}`);
  return { host: body.host, port: body.port, endpoint: body.endpoint, pid: body.pid };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The address of the service that hands out the shared emulators. */
    sharedJavaEmulators: string;
  }
}
