import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { sendUnit, startWorker, stopWorkers, type OrgProcsBench } from '../../bench/org-procs.js';

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
async function dyingWorker(onUnit = 'process.exit(3)'): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'governor-org-worker-'));
  const file = join(dir, 'dying-worker.mjs');
  await writeFile(
    file,
    [
      `process.on('message', (m) => { if (m.kind === 'unit') ${onUnit}; });`,
      "process.send({ kind: 'ready' });",
    ].join('\n'),
  );
  return file;
}

describe("the organisation bench's workers", () => {
  it("say why a worker crashed, in its error's line rather than its stack trace", async () => {
    // Its stack trace is kept from the terminal: the bench's one line says why (bench/failure.ts).
    const w = await startWorker(
      { ...process.env },
      await dyingWorker("throw new Error('boom in a unit')"),
    );
    const failed = sendUnit(w, { message: {} });
    await expect(failed).rejects.toThrow(/exited \(1\): [\s\S]*Error: boom in a unit/);
    expect(() => stopWorkers([w])).not.toThrow();
  }, 20_000);

  it('fail the units of a worker that died, and stop the rest without throwing', async () => {
    const w = await startWorker({ ...process.env }, await dyingWorker());
    await expect(sendUnit(w, { message: {} })).rejects.toThrow(/exited \(3\)/);
    // Another unit for the dead worker fails at once too.
    await expect(sendUnit(w, { message: {} })).rejects.toThrow(/exited|closed/);
    expect(() => stopWorkers([w])).not.toThrow();
  }, 20_000);
});

describe('the organisation bench', () => {
  it('governs a small organisation as deployed, every unit answered', async () => {
    // The built bench in its own process, as `BENCH_ONLY=org npm run bench` runs it: the emulator,
    // the dispatch and the units through the functions' own entries. A product change that makes
    // the units refuse the bench's setup shows here, not in the next long bench run.
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/org-procs.js'], {
      env: {
        ...process.env,
        BENCH_ORG_PROJECTS: '4',
        BENCH_ORG_INSTANCES: '4',
        BENCH_ORG_WORKERS: '1',
      },
      maxBuffer: 16 * 2 ** 20,
    });
    const r = JSON.parse(stdout.slice(stdout.indexOf('\n{') + 1)) as OrgProcsBench;
    expect(r.projects).toBe(4);
    expect(r.org.unitFailures).toBe(0);
    expect(r.readsPerProjectAlone).toBeGreaterThan(0);
    expect(r.org.readsPerProject).toBeGreaterThan(0);
  }, 120_000);
});
