import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * Three projects, told apart by file name:
 * - `unit`: `*.test.ts`. Pure: no child process, no server (gRPC, HTTP), no JVM, no browser, no
 *   `dist/` (so it runs without a build). `npm run test:unit` runs it alone.
 * - `integration` and `integration-isolated`: `*.int.test.ts`. Anything that starts one of those:
 *   the CLI as a process, the emulator's gRPC servers, Google's Java emulators, Chromium. The first
 *   shares a module registry per worker, the second gives each file its own (see OWN_REGISTRY).
 *   `npm run test:integration` runs both.
 * `test/support/projects.test.ts` fails when a unit test imports something that starts a process
 * or a server, so a misnamed file is caught rather than slowing the quick loop.
 */
const INTEGRATION = 'test/**/*.int.test.ts';

/**
 * Integration files that need a module registry of their own (`isolate: true`, vitest's default):
 * those that mock a module (`vi.mock` and its kin: with a shared registry a mock does not apply
 * to a module another file loaded first, and leaks into the files after it,
 * https://main.vitest.dev/guide/recipes/disable-isolation), and those that load the function's
 * entry point (src/function/index.ts registers its functions with functions-framework once per
 * registry); and, to be safe, those that stub a global or the environment through vitest. Read
 * from the files themselves, so a new file is placed by what it does. The rest share their
 * worker's registry (`isolate: false`): each used to load the Google clients and their protos
 * afresh, and on 2 cores the integration tests are CPU-bound (the adapters' files: 70 s of CPU
 * isolated, 38 s shared).
 */
const OWN_REGISTRY =
  /\bvi\.(?:mock|doMock|unmock|doUnmock|importMock|resetModules|stubEnv|stubGlobal)\(|\/function\/index\.js['"]/;

export function integrationFiles(dir = 'test'): { own: string[]; shared: string[] } {
  const own: string[] = [];
  const shared: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.int.test.ts'))
        (OWN_REGISTRY.test(readFileSync(path, 'utf8')) ? own : shared).push(path);
    }
  };
  walk(dir);
  return { own: own.sort(), shared: shared.sort() };
}

const INTEGRATION_FILES = integrationFiles();

/** One temporary directory for the run, removed at its end (the file says how). */
const TEMP_ROOT = 'test/support/temp-root.global.ts';

/**
 * Test files at once. https://vitest.dev/config/maxworkers says the default of `vitest run` is all
 * the available parallelism, but vitest 4.1's `resolveMaxWorkers` takes one less than the CPUs: on
 * a 2-core CI machine a single worker, so every file waited for the one before.
 *
 * - `unit`: one file per CPU. They are CPU-bound (the property and fuzz tests keep their 20 s
 *   per-test timeouts), so more would only slow each other.
 * - `integration`: twice as many. They mostly wait: on the CLI processes they start, on emulated
 *   operations (a write's operation is polled from 1 s, from 20 ms where a test sets
 *   QUICK_POLL_ENV or QUICK_POLL_MS of test/support/fixtures.ts), on a JVM, on Chromium. On 2
 *   cores their CPU time was about a fifth of their wall time (the crash and reconcile files:
 *   87 s of CPU in 212 s, before they polled from 20 ms), so two per CPU keep the CPUs busy.
 *
 * Vitest takes one worker count per group of projects, so the two run one after the other
 * (`sequence.groupOrder`: the quick unit tests first). `VITEST_MAX_WORKERS=n` (or `--maxWorkers=n`)
 * overrides both.
 */
const CPUS = Math.max(2, availableParallelism());

/**
 * The machine's own settings of the governor (`GOVERNOR_*`: a Firestore state store set for
 * production, say) are not the tests': each test sets what it needs, and an inherited one changed
 * what every command a test runs does. Emptied, which the governor reads as unset (and so do the
 * processes the tests start, which inherit the tests' environment).
 */
const MACHINE_SETTINGS = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith('GOVERNOR_'))
    .map((k) => [k, '']),
);

/**
 * Both integration projects: one group (`groupOrder` 1, after the unit tests), so they share its
 * workers.
 */
const INTEGRATION_PROJECT = {
  maxWorkers: 2 * CPUS,
  sequence: { groupOrder: 1 },
  // One Pub/Sub and one Firestore emulator for the run, started on first use
  // (test/support/shared-emulators.ts); and a warning when dist/ is missing or older than the
  // sources, which the tests of bin/governor.js run. Each is one for the run, whichever projects
  // list it.
  globalSetup: [
    TEMP_ROOT,
    'test/support/java-emulators.global.ts',
    'test/support/build-check.global.ts',
  ],
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    environment: 'node',
    env: { ...MACHINE_SETTINGS, METADATA_SERVER_DETECTION: 'none', NO_COLOR: '1' },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          maxWorkers: CPUS,
          sequence: { groupOrder: 0 },
          include: ['test/**/*.test.ts'],
          exclude: [INTEGRATION],
          testTimeout: 20_000,
          hookTimeout: 10_000,
          // Pure tests leave no global state behind, so they share a worker's module cache:
          // each module is loaded once per worker, not once per file.
          pool: 'threads',
          isolate: false,
          globalSetup: [TEMP_ROOT],
        },
      },
      {
        extends: true,
        test: {
          ...INTEGRATION_PROJECT,
          name: 'integration',
          include: [INTEGRATION],
          exclude: INTEGRATION_FILES.own,
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          ...INTEGRATION_PROJECT,
          name: 'integration-isolated',
          include: INTEGRATION_FILES.own,
        },
      },
    ],
  },
});
