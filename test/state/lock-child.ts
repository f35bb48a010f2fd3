/**
 * A process that uses the file store's lock, for the crash tests in file-store.int.test.ts.
 * Arguments: the state directory, the project, and what to do:
 * - `hold`: take the project's lock, print `locked`, and hold it until killed;
 * - `save`: save an empty condition state; print `saved`, or `failed <message>` and exit 1.
 */
import { join } from 'node:path';

import { withFileLock } from '../../src/adapters/file-lock.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';

const [dir, project, what] = process.argv.slice(2);
if (dir === undefined || project === undefined) {
  throw new Error('usage: lock-child DIR PROJECT hold|save');
}
if (what === 'hold') {
  const lock = join(dir, `${encodeURIComponent(project)}.json.lock`);
  await withFileLock(lock, { timeoutMs: 5_000, staleMs: 60_000 }, async () => {
    process.stdout.write('locked\n');
    await new Promise(() => setInterval(() => {}, 1_000));
  });
} else {
  try {
    await createFileStateStore({ dir }).saveConditions(project, {}, null);
    process.stdout.write('saved\n');
  } catch (error) {
    process.stdout.write(`failed ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
