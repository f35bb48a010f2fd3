/**
 * A process that uses the file store and its lock, for the crash tests (file-store.int.test.ts and
 * test/chaos/lock-crash.int.test.ts). Arguments: the state directory, the project, and what to do:
 * - `hold`: take the project's lock, print `locked`, and hold it until killed;
 * - `save`: save an empty condition state; print `saved`, or `failed <message>` and exit 1;
 * - `acquire HOLDER`, `release HOLDER`: take or give back the project's lease as HOLDER (60 s on
 *   the wall clock); print the answer as JSON, or `failed <message>` and exit 1;
 * - `outbox`: add one alert message to the project's outbox; print `stored`;
 * - `discovery`: save a discovery cache (the project is unused); print `saved`;
 * - `id`: read or make the governor id (the project is unused); print it.
 * With `CHILD_UID` set, a child started as root runs as that user; `LOCK_TIMEOUT_MS` sets the
 * store's `lockTimeoutMs`.
 */
import { join } from 'node:path';

import { makeAlert } from '../../src/core/conditions.js';
import { withFileLock } from '../../src/adapters/file-lock.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';

// Run as another user (CHILD_UID), so that a file mode refuses it even when the tests run as root:
// its modules are loaded by now, only what it reads and writes from here on is checked.
if (process.env.CHILD_UID !== undefined && process.getuid?.() === 0) {
  process.setgid?.(Number(process.env.CHILD_UID));
  process.setuid?.(Number(process.env.CHILD_UID));
}
const [dir, project, what, holder] = process.argv.slice(2);
if (dir === undefined || project === undefined) {
  throw new Error(
    'usage: lock-child DIR PROJECT hold|save|acquire H|release H|outbox|discovery|id',
  );
}
const lockTimeoutMs = process.env.LOCK_TIMEOUT_MS ? Number(process.env.LOCK_TIMEOUT_MS) : undefined;
const store = createFileStateStore({ dir, lockTimeoutMs });
const now = new Date().toISOString();
if (what === 'hold') {
  const lock = join(dir, `${encodeURIComponent(project)}.json.lock`);
  await withFileLock(lock, { timeoutMs: 5_000, staleMs: 60_000 }, async () => {
    process.stdout.write('locked\n');
    await new Promise(() => setInterval(() => {}, 1_000));
  });
} else if (what === 'acquire' || what === 'release') {
  if (holder === undefined) throw new Error(`${what} needs a holder`);
  try {
    const answer =
      what === 'acquire'
        ? await store.acquireLease(project, holder, 60_000, now)
        : await store.releaseLease(project, holder);
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  } catch (error) {
    process.stdout.write(`failed ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
} else if (what === 'discovery') {
  await store.saveDiscovery({ key: 'child', foundAt: now, projects: ['alpha-proj'] });
  process.stdout.write('saved\n');
} else if (what === 'id') {
  process.stdout.write(`${await store.governorId()}\n`);
} else if (what === 'outbox') {
  const alert = makeAlert(
    { at: now, runId: 'child-run' },
    { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
    {
      type: 'rebalance.applied',
      status: 'event',
      severity: 'INFO',
      summary: 'the child changed 1 cap',
      details: { writes: [{ service: 'a', from: 1, to: 2 }] },
    },
  );
  await store.putOutbox(project, [{ alert, state: 'ready', storedAt: now }]);
  process.stdout.write('stored\n');
} else {
  try {
    await store.saveConditions(project, {}, null);
    process.stdout.write('saved\n');
  } catch (error) {
    process.stdout.write(`failed ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
