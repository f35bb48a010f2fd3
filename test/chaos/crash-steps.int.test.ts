import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { transpileForNode } from '../state/transpile.js';
import {
  PROJECT,
  QUOTA,
  TOPIC,
  announced,
  apply,
  applied,
  caps,
  fleet,
  inProcess,
  policyWithTopic,
  writesOf,
} from './crash-runs.js';

/**
 * Crash suite, part two (crash.int.test.ts has the kills at random moments): the governor process
 * killed right after each change of its state document, for every one of them, then run again;
 * the next run must be loud about a lease left held, safe, and leave nothing unannounced.
 */
describe('crash: the governor killed after each change of its state, then run again', () => {
  it('a run killed after each change of its state (lease, outbox, alerts, record, release): loud, safe, nothing unannounced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-crash-steps-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, policyWithTopic);
    const compiled = await transpileForNode(join(import.meta.dirname, '../support/crash-at.ts'));
    const withTopic = () =>
      startEmulator({
        fleet: { ...fleet, topics: [TOPIC] },
        speed: 'manual',
        operationDelayMs: 20,
      });
    try {
      // How many times an uninterrupted run changes its state document (each change lands with
      // one rename), and the caps it ends with.
      const ref = await withTopic();
      let changes: number;
      let expected: Record<string, number>;
      try {
        ref.advance(2 * 60_000);
        const trace = join(dir, 'trace');
        const done = await apply(ref, join(dir, 'ref'), policyFile, undefined, {
          NODE_OPTIONS: `--import ${compiled.script}`,
          CRASH_FILTER: join(dir, 'ref', `${PROJECT}.json`),
          CRASH_CALLS: 'rename',
          CRASH_TRACE: trace,
        });
        expect(done.code, done.stderr).toBe(0);
        expected = caps(ref);
        changes = (await readFile(trace, 'utf8')).trim().split('\n').length;
        // Lease, planned events, events, published, alert state, record, release at least.
        expect(changes).toBeGreaterThanOrEqual(7);
        expect(applied(ref)).toHaveLength(1);
      } finally {
        await ref.stop();
      }

      let leasesLeft = 0;
      let announcedByNext = 0;
      // Each kill point has an emulator and a state folder of its own: two at a time, so the
      // test is not a chain of a dozen processes one after the other.
      const limit = pLimit(2);
      const outcomes = await Promise.allSettled(
        Array.from({ length: changes }, (_, i) => i + 1).map((k) =>
          limit(async () => {
            const em = await withTopic();
            const where = `killed after state change ${k} of ${changes}`;
            try {
              em.advance(2 * 60_000);
              const stateDir = join(dir, `crash-${k}`);
              const killed = await apply(em, stateDir, policyFile, undefined, {
                NODE_OPTIONS: `--import ${compiled.script}`,
                CRASH_FILTER: join(stateDir, `${PROJECT}.json`),
                CRASH_CALLS: 'rename',
                CRASH_AT: String(k),
                CRASH_WHEN: 'after',
              });
              expect(killed.signal, `${where}: ${killed.stderr}`).toBe('SIGKILL');
              const written = writesOf(em);
              const sentBeforeKill = applied(em).length;

              // The next run (the same command line, in this process to save a start-up): a lease
              // the dead run still holds fails it loudly, naming the holder and the way out, once
              // it has asked a few times (within its 20 s deadline: no wait for the lease to end);
              // once unlocked, it runs.
              em.advance(60_000);
              const next = () =>
                inProcess(em, ['apply', '--yes', '--policy', policyFile, '--state-dir', stateDir]);
              const store = createFileStateStore({ dir: stateDir });
              const lease = await store.readLease(PROJECT);
              if (lease !== null) {
                leasesLeft += 1;
                if (leasesLeft === 1) {
                  const refused = await next();
                  expect(refused.code, where).toBe(1);
                  expect(refused.stderr, where).toContain(`the lease is held by ${lease.holder}`);
                  expect(refused.stderr, where).toContain('governor unlock');
                }
                // What `governor unlock --yes` does (crash.int.test.ts runs the command itself).
                expect(await store.breakLease(PROJECT), where).toBe(true);
              }
              const again = await next();
              expect(again.code, `${where}: ${again.stderr}`).toBe(0);

              // Safe: the pool within its quota at every write, and the same caps as without a kill.
              expect(caps(em), where).toEqual(expected);
              const over = em.writes().filter((w) => w.pool === null || w.pool.capsGpus > QUOTA);
              expect(over, where).toEqual([]);
              // Nothing unannounced: every cap the killed run changed is in a rebalance.applied
              // (its own, or one the next run settled from its outbox), and nothing announced as
              // applied that was not written.
              const said = announced(em);
              for (const w of written) expect(said, `${where}: ${w}`).toContain(w);
              const all = new Set(writesOf(em));
              for (const w of said) expect(all, `${where}: announced ${w}`).toContain(w);
              if (written.length > 0 && sentBeforeKill === 0) announcedByNext += 1;
              expect(
                (await createFileStateStore({ dir: stateDir }).listOutbox(PROJECT)).entries,
                where,
              ).toEqual([]);
            } finally {
              await em.stop();
            }
          }),
        ),
      );
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
      console.log(
        `crash steps: ${changes} state changes; ${leasesLeft} kills left the lease held, ${announcedByNext} had their writes announced by the next run`,
      );
      expect(leasesLeft).toBeGreaterThan(0);
      expect(announcedByNext).toBeGreaterThan(0);
    } finally {
      await rm(compiled.dir, { recursive: true, force: true });
    }
  }, 300_000);
});
