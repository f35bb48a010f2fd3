/**
 * Vitest global setup of the integration projects: one Pub/Sub and one Firestore emulator JVM for
 * the whole run, shared by the test files that only need a running emulator (a JVM costs seconds
 * of CPU to start; most files used to start their own).
 *
 * Global setup runs in vitest's main process, before the workers exist, and hands them
 * serializable values only (`provide`/`inject`, https://vitest.dev/config/globalsetup). So it
 * provides the address of a small HTTP service on 127.0.0.1 that starts an emulator on the first
 * request for it (a run of files that need none starts none) and answers with its endpoint, or
 * with what went wrong (status 500 and the emulator's own output) so that the test fails loudly.
 *
 * The test files stay independent: each one names the Google Cloud projects it uses, and a
 * project already taken by another file is refused (status 409). Files that stop or restart an
 * emulator as part of what they test start their own (`startPubSubEmulator`).
 * `test/support/shared-emulators.ts` is the test side.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startFirestoreEmulator } from './firestore-emulator.js';
import type { RunningEmulator } from './java-emulator.js';
import { startPubSubEmulator } from './pubsub-emulator.js';
import type { SharedEmulator } from './shared-emulators.js';
import { oncePerRun } from './once-per-run.js';

const starters = { pubsub: startPubSubEmulator, firestore: startFirestoreEmulator } as const;
type Kind = keyof typeof starters;

/** The service, made once for the run whichever projects list this setup (oncePerRun). */
interface Service {
  /** The service's address, once it listens. */
  url: Promise<string>;
  /** Stops the emulators started, leaving the service up. */
  stopAll(): Promise<void>;
  close(): Promise<void>;
}

export default async function setup(project: TestProject): Promise<() => void | Promise<void>> {
  const shared = oncePerRun('java-emulators', startService, (service) => service.close());
  project.provide('sharedJavaEmulators', await shared.value.url);
  // Watch mode runs the files again in this process: they create their topics again, so they get
  // fresh emulators.
  project.onTestsRerun(() => shared.value.stopAll());
  return shared.release;
}

function startService(): Service {
  let running: Partial<Record<Kind, Promise<RunningEmulator>>> = {};
  /** `kind project` → the test file that uses it. */
  let claims = new Map<string, string>();

  const emulator = (kind: Kind): Promise<RunningEmulator> => {
    running[kind] ??= starters[kind]();
    return running[kind];
  };
  const stopAll = async (): Promise<void> => {
    const started = Object.values(running);
    running = {};
    claims = new Map();
    // One that failed to start has nothing left to stop (its start stopped it).
    await Promise.all(started.map((p) => p.then((e) => e.stop()).catch(() => undefined)));
  };

  const answer = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const kind = url.pathname.slice(1);
    const file = url.searchParams.get('file') ?? '';
    const projects = url.searchParams.getAll('project');
    // Own keys only: `in` would take `toString` and its kin for an emulator.
    if (!Object.hasOwn(starters, kind) || file === '' || projects.length === 0) {
      answer(res, 400, { error: `Ask for /pubsub or /firestore with ?file=…&project=…` });
      return;
    }
    for (const p of projects) {
      const owner = claims.get(`${kind} ${p}`);
      if (owner !== undefined && owner !== file) {
        answer(res, 409, {
          error: `Project ${p} of the shared ${kind} emulator is already used by ${owner}; give ${file} a project of its own`,
        });
        return;
      }
    }
    for (const p of projects) claims.set(`${kind} ${p}`, file);
    try {
      const e = await emulator(kind as Kind);
      const shared: SharedEmulator = {
        host: e.host,
        port: e.port,
        endpoint: e.endpoint,
        pid: e.pid,
      };
      answer(res, 200, shared);
    } catch (error) {
      answer(res, 500, { error: error instanceof Error ? error.message : String(error) });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => answer(res, 500, { error: String(error) }));
  });
  const url = new Promise<string>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
  return {
    url,
    stopAll,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stopAll();
    },
  };
}
