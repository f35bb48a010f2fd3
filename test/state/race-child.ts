/**
 * One contender in the file store's cross-process race (see file-store.int.test.ts). Arguments: the
 * state directory, the project, this contender's name, the epoch millisecond to start at (so the
 * contenders start together), and what to race for: `lease` or `save`. Prints one JSON line.
 */
import { ConflictError } from '../../src/core/errors.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';

const [dir, project, holder, startAt, what] = process.argv.slice(2);
if (dir === undefined || project === undefined || holder === undefined || startAt === undefined) {
  throw new Error('usage: race-child DIR PROJECT HOLDER START_AT lease|save');
}
const store = createFileStateStore({ dir });
while (Date.now() < Number(startAt)) {
  // Spin rather than sleep: a timer's late wake-up would spread the contenders apart.
}
if (what === 'lease') {
  const result = await store.acquireLease(project, holder, 60_000, new Date().toISOString());
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  try {
    await store.saveConditions(project, {}, null);
    process.stdout.write(`${JSON.stringify({ saved: true })}\n`);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    process.stdout.write(`${JSON.stringify({ saved: false })}\n`);
  }
}
