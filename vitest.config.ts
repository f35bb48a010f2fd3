import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Two projects, told apart by file name:
 * - `unit`: `*.test.ts`. Pure: no child process, no server (gRPC, HTTP), no JVM, no browser, no
 *   `dist/` (so it runs without a build). `npm run test:unit` runs it alone.
 * - `integration`: `*.int.test.ts`. Anything that starts one of those: the CLI as a process, the
 *   emulator's gRPC servers, Google's Java emulators, Chromium.
 * `test/support/projects.test.ts` fails when a unit test imports something that starts a process
 * or a server, so a misnamed file is caught rather than slowing the quick loop.
 */
const INTEGRATION = 'test/**/*.int.test.ts';

/** One temporary directory for the run, removed at its end (the file says how). */
const TEMP_ROOT = 'test/support/temp-root.global.ts';

/**
 * Test files at once: one per CPU. https://vitest.dev/config/maxworkers says the default of
 * `vitest run` is all the available parallelism, but vitest 4.1's `resolveMaxWorkers` takes one
 * less than the CPUs: on a 2-core CI machine a single worker, so every file waited for the one
 * before while the CPUs were half idle (the integration files wait on the CLI processes they start, on emulated operation delays,
 * on a JVM). Not more than the CPUs: the property and fuzz tests are CPU-bound and keep their
 * 20 s / 60 s per-test timeouts. `VITEST_MAX_WORKERS=n` (or `--maxWorkers=n`) overrides it.
 */
const WORKERS = Math.max(2, availableParallelism());

export default defineConfig({
  test: {
    environment: 'node',
    maxWorkers: WORKERS,
    env: { METADATA_SERVER_DETECTION: 'none', NO_COLOR: '1' },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
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
          name: 'integration',
          include: [INTEGRATION],
          // One Pub/Sub and one Firestore emulator for the run, started on first use
          // (test/support/shared-emulators.ts); and a warning when dist/ is missing or older than
          // the sources, which the tests of bin/governor.js run.
          globalSetup: [
            TEMP_ROOT,
            'test/support/java-emulators.global.ts',
            'test/support/build-check.global.ts',
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
