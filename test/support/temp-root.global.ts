/**
 * Vitest global setup of both projects: one temporary directory for the whole run, removed when
 * the run ends. Tests and the processes they start make their scratch directories with
 * `mkdtemp(join(tmpdir(), …))`; pointing `TMPDIR` at this directory before the workers exist
 * (https://vitest.dev/config/globalsetup: global setup runs in the main process first) makes every
 * such directory one of its entries, so a test that forgets to remove its own leaves nothing
 * behind on the machine. Node's `os.tmpdir()` reads `TMPDIR` on each call
 * (https://nodejs.org/api/os.html#ostmpdir), and child processes inherit it.
 *
 * Each project runs its global setup, so the first to run makes the directory and the last to
 * finish removes it (oncePerRun). A run killed before its teardown leaves one directory, named
 * `governor-tests-*`, not one per test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oncePerRun } from './once-per-run.js';

export default function setup(): () => void | Promise<void> {
  const temp = oncePerRun(
    'temp-root',
    () => {
      const outer = process.env.TMPDIR;
      const root = mkdtempSync(join(tmpdir(), 'governor-tests-'));
      process.env.TMPDIR = root;
      return { root, outer };
    },
    ({ root, outer }) => {
      if (outer === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = outer;
      rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  );
  return temp.release;
}
