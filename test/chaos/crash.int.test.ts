import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/emulator/faults.js';
import { startEmulator } from '../../src/emulator/index.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import {
  PROJECT,
  POLL,
  QUOTA,
  SEED,
  TOPIC,
  announced,
  apply,
  applied,
  applyHere,
  caps,
  emulator,
  fleet,
  inProcess,
  policyWithTopic,
  unlock,
  writesOf,
  type Exit,
} from './crash-runs.js';

/**
 * Crash suite: the governor process (`governor apply --yes`, the real CLI) is killed with SIGKILL
 * at a random moment of its apply, then run again. The emulator's invariant monitor checks the
 * pool after every write (rule 1 holds at every moment, whatever was cut short), and the run
 * after the crash ends with the same caps as a run that was never interrupted, on the same data
 * and the same virtual time. CHAOS_SEED picks the kill times.
 *
 * The dead run's lease is on the wall clock, so the emulator's virtual minutes do not end it; it
 * is cleared as a person would, with `governor unlock --yes`. Every cap a killed run changed is
 * announced: a run killed before it said how its writes went leaves its planned
 * `rebalance.applied` in the outbox, which the next run settles against what it observes; one
 * killed while it publishes leaves its events there, and the next run sends them.
 *
 * Only the runs that are killed must be processes of their own. The reference runs (but the one
 * traced by a preload), the runs after a kill and the first test's unlocks call the command line
 * in this process (`main`), as the process would: each saves a start of Node and a load of the
 * client libraries, seconds on a busy machine. The second test runs `governor unlock` as a
 * process.
 */

describe('crash: the governor killed during apply, then run again', () => {
  it(`keeps the pool within quota at every write, converges like an uninterrupted run, and announces every write (seed ${SEED})`, async () => {
    console.log(`crash seed ${SEED} (CHAOS_SEED=${SEED} reproduces it)`);
    const dir = mkdtempSync(join(tmpdir(), 'governor-crash-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, policyWithTopic);

    // The reference: one uninterrupted run, two virtual minutes in.
    const ref = await emulator();
    let expected: Record<string, number>;
    let total = 0;
    try {
      ref.advance(2 * 60_000);
      const done = await applyHere(ref, join(dir, 'ref'), policyFile);
      expect(done.code, done.stderr).toBe(0);
      expected = caps(ref);
      total = ref.writes().length;
      expect(total).toBeGreaterThan(2);
      // The writes followed each other sooner than the 1 s a first poll waits by default: the run
      // polled as POLL says (one at a time, so a write starts once the one before is done).
      const starts = ref.writes().map((w) => Date.parse(w.wallTime));
      const gaps = starts.slice(1).map((t, i) => t - (starts[i] ?? t));
      expect(Math.min(...gaps)).toBeLessThan(1_000);
    } finally {
      await ref.stop();
    }

    const random = seededRandom(SEED);
    let killedMidApply = 0;
    let leasesLeft = 0;
    let settled = 0;
    for (let k = 0; k < 4; k++) {
      const em = await emulator();
      try {
        const stateDir = join(dir, `crash-${k}`);
        // After 1 to total-1 writes, and up to 150 ms into what follows (an operation in flight).
        const atWrite = 1 + Math.floor(random() * (total - 1));
        const killed = await apply(em, stateDir, policyFile, {
          atWrite,
          extraMs: Math.floor(random() * 150),
        });
        const writesBeforeKill = em.writes().length;
        if (killed.signal === 'SIGKILL' && writesBeforeKill < total) killedMidApply += 1;
        // An operation in flight at the kill may still land: wait for it.
        await new Promise((done) => setTimeout(done, 500));
        const killedWrites = writesOf(em);
        // The dead run's lease ends on the wall clock (deadline 20 s + 60 s), whatever the
        // emulator's virtual time does; unlock clears it at once.
        const lease = await createFileStateStore({ dir: stateDir }).readLease(PROJECT);
        if (lease !== null) {
          leasesLeft += 1;
          const expires = Date.parse(lease.expiresAt);
          expect(expires).toBeGreaterThan(Date.now());
          expect(expires).toBeLessThanOrEqual(Date.now() + 80_000);
        }
        em.advance(2 * 60_000);
        if (lease !== null) {
          const unlocked = await inProcess(
            em,
            ['unlock', '--yes', '--policy', policyFile, '--state-dir', stateDir],
            true,
          );
          expect(unlocked.code, unlocked.stderr).toBe(0);
          expect(unlocked.stdout).toContain('lease broken');
        }
        const again = await applyHere(em, stateDir, policyFile);
        expect(again.code, again.stderr).toBe(0);
        expect(caps(em)).toEqual(expected);
        const { violations } = em.violations();
        expect(violations).toEqual([]);
        // At every moment: a raise never left the pool above its quota. The run does raise (the
        // hi-* services), so this checks something.
        const raises = em.writes().filter((w) => w.after.maxInstances > w.before.maxInstances);
        expect(raises.length).toBeGreaterThan(0);
        expect(raises.filter((w) => w.pool === null || w.pool.capsGpus > QUOTA)).toEqual([]);
        // Every cap the killed run changed is announced as applied (its planned event, settled by
        // the next run against what it observed), and nothing that was not written.
        const said = announced(em);
        for (const w of killedWrites) expect(said, `killed after ${w}`).toContain(w);
        const all = new Set(writesOf(em));
        for (const w of said) expect(all, `announced ${w}`).toContain(w);
        if (applied(em).some((a) => a.details['outcome'] === 'confirmed-by-observation'))
          settled += 1;
      } finally {
        await em.stop();
      }
    }
    console.log(`crash: ${killedMidApply} of 4 kills landed after some writes and before the end`);
    expect(killedMidApply).toBeGreaterThan(0);
    expect(leasesLeft).toBeGreaterThan(0);
    expect(settled).toBeGreaterThan(0);
  }, 180_000);

  it('a run killed after its writes, while it publishes, has them announced by the next run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-crash-publish-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, policyWithTopic);
    const stateDir = join(dir, 'state');
    // The emulator's Pub/Sub answers the preflight's permission test at once, and holds every
    // publish for 30 s: the run is still publishing when it is killed.
    const em = await startEmulator({
      fleet: { ...fleet, topics: [TOPIC] },
      speed: 'manual',
      operationDelayMs: 20,
      inject: { seed: SEED, latency: [{ method: 'Publish', minMs: 30_000, maxMs: 30_000 }] },
    });
    try {
      em.advance(2 * 60_000);
      const killed = await new Promise<Exit>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['bin/governor.js', 'apply', '--yes', '--policy', policyFile, '--state-dir', stateDir],
          {
            env: {
              ...process.env,
              ...em.env,
              ...POLL,
              GOVERNOR_RUN_DEADLINE: '20s',
              NO_COLOR: '1',
            },
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        // Killed once its first publish reached Pub/Sub: every write is made by then.
        const timer = setInterval(() => {
          if (!em.calls().some((c) => c.method.endsWith('/Publish'))) return;
          clearInterval(timer);
          child.kill('SIGKILL');
        }, 5);
        child.on('error', reject);
        child.on('exit', (code, signal) => {
          clearInterval(timer);
          resolve({ code, signal, stderr });
        });
      });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const written = writesOf(em);
      expect(written).toHaveLength(8); // four down, four up
      expect(applied(em)).toEqual([]);

      em.setFaults({ seed: SEED });
      expect(await unlock(em, stateDir, policyFile)).toContain('lease broken');
      em.advance(60_000);
      const next = await applyHere(em, stateDir, policyFile);
      expect(next.code, next.stderr).toBe(0);
      expect(em.writes()).toHaveLength(8); // nothing left to write

      // The killed run's event, stored before it published, sent by the next run: every write.
      const events = applied(em);
      expect(events).toHaveLength(1);
      expect(events[0]?.runId).not.toBe(undefined);
      expect([...announced(em)].sort()).toEqual([...written].sort());
      expect((await createFileStateStore({ dir: stateDir }).listOutbox(PROJECT)).entries).toEqual(
        [],
      );
    } finally {
      await em.stop();
    }
  }, 180_000);
});
