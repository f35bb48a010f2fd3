import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sendUnit, startWorker, stopWorkers } from '../../bench/org-procs.js';

/**
 * The organisation bench's worker processes (bench/org-procs.ts): a worker that dies fails the
 * units it was given, and stopping the workers afterwards neither throws nor hangs, so the bench
 * stops its other processes and reports why, rather than waiting for ever.
 */

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A stand-in worker: ready, then it dies on the first unit, as a worker out of memory would. */
async function dyingWorker(): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'governor-org-worker-'));
  const file = join(dir, 'dying-worker.mjs');
  await writeFile(
    file,
    [
      "process.on('message', (m) => { if (m.kind === 'unit') process.exit(3); });",
      "process.send({ kind: 'ready' });",
    ].join('\n'),
  );
  return file;
}

describe("the organisation bench's workers", () => {
  it('fail the units of a worker that died, and stop the rest without throwing', async () => {
    const w = await startWorker({ ...process.env }, await dyingWorker());
    await expect(sendUnit(w, { message: {} })).rejects.toThrow(/exited \(3\)/);
    // Another unit for the dead worker fails at once too.
    await expect(sendUnit(w, { message: {} })).rejects.toThrow(/exited|closed/);
    expect(() => stopWorkers([w])).not.toThrow();
  }, 20_000);
});
