import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { alertBytes, MAX_ALERT_BYTES } from '../../src/core/alert.js';
import { makeAlert } from '../../src/core/conditions.js';
import { MAX_OUTBOX_BYTES, type OutboxEntry } from '../../src/ports/index.js';
import { freshProject } from './contract.js';

/**
 * The file store at the size it reads: a state file of 64 MiB written and read back three times,
 * the slowest test of the file store, in a file of its own so that it runs beside the others
 * (file-store.int.test.ts).
 */

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'governor-file-store-size-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file store: on disk, at the size it reads', () => {
  it('never writes a state file over the 64 MiB it reads: the oldest outbox entries are dropped and counted', async () => {
    // The outbox's own bound in bytes (MAX_OUTBOX_BYTES, 16 MiB, the rule of every store) comes
    // first; a state file that other content fills is held to 64 MiB too (file-store.int.test.ts,
    // maxFileBytes).
    // An outbox of 500 entries of up to MAX_ALERT_BYTES each could reach 500 MB. Before, the
    // store wrote it, then refused it as corrupt at every later read: the project stopped. Then
    // it refused the change, and every run that stored events failed before it could publish.
    const big = createFileStateStore({ dir, outboxLimit: 500 });
    const project = freshProject();
    const file = join(dir, `${project}.json`);
    const entry = (n: number): OutboxEntry => {
      const alert = makeAlert(
        { at: '2026-11-27T10:00:00.000Z', runId: `run-${n}` },
        { project, region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
        {
          type: 'rebalance.applied',
          status: 'event',
          severity: 'INFO',
          summary: `entry ${n}`,
          details: { note: 'x'.repeat(MAX_ALERT_BYTES - 1_000) },
        },
      );
      return { alert, state: 'ready', storedAt: '2026-11-27T10:00:00.000Z' };
    };
    // About 1 MB an entry, so 16 fit in the outbox's bytes: 60 at once, then two batches of 10,
    // each dropping as many.
    // (Each put rewrites the whole file: ten batches of 8 wrote and read back 0.8 GB for the same
    // two drops, the slowest test of the file.)
    const drops: number[] = [];
    let stored = 0;
    for (const size of [60, 10, 10]) {
      drops.push(
        await big.putOutbox(
          project,
          Array.from({ length: size }, (_, i) => entry(stored + i)),
        ),
      );
      stored += size;
      expect((await stat(file)).size).toBeLessThanOrEqual(64 << 20);
    }
    expect(drops).toEqual([44, 10, 10]);
    const dropped = drops.reduce((a, b) => a + b, 0);
    const box = await big.listOutbox(project);
    expect(dropped).toBeGreaterThan(0);
    expect(box.dropped).toBe(dropped);
    expect(box.entries.map((e) => e.alert.runId)).toEqual(
      Array.from({ length: 80 - dropped }, (_, i) => `run-${dropped + i}`),
    );
    expect(box.entries.reduce((n, e) => n + alertBytes(e.alert), 0)).toBeLessThanOrEqual(
      MAX_OUTBOX_BYTES,
    );
    await rm(file);
  }, 180_000);
});
