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
 * finish removes it. A run killed before its teardown leaves one directory, named
 * `governor-tests-*`, not one per test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const shared = globalThis as {
  governorTestTemp?: { root: string; outer: string | undefined; users: number };
};

export default function setup(): () => void {
  if (shared.governorTestTemp === undefined) {
    const outer = process.env.TMPDIR;
    const root = mkdtempSync(join(tmpdir(), 'governor-tests-'));
    shared.governorTestTemp = { root, outer, users: 0 };
    process.env.TMPDIR = root;
  }
  const temp = shared.governorTestTemp;
  temp.users += 1;
  return () => {
    temp.users -= 1;
    if (temp.users > 0) return;
    shared.governorTestTemp = undefined;
    if (temp.outer === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = temp.outer;
    rmSync(temp.root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  };
}
