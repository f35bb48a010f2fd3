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

export default defineConfig({
  test: {
    environment: 'node',
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
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [INTEGRATION],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
