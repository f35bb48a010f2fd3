import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../src/core/alert.js';
import { seededRandom } from '../../src/emulator/faults.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { transpileForNode } from '../state/transpile.js';
import { cliIn, governorIn, type CliResult } from '../support/cli-run.js';
import { overCommittedFleet, QUICK_POLL_ENV } from '../support/fixtures.js';

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

// A fixed seed by default, so that CI is reproducible; CHAOS_SEED explores others.
const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : 20261127;
const REGION = 'us-central1';
const PROJECT = 'crash-project';
const QUOTA = 12;
const TOPIC = `projects/${PROJECT}/topics/alerts`;

// Caps 14 on a quota of 12: four idle services come down to 1, four raised to their minimum 2.
const fleet = overCommittedFleet(PROJECT, REGION, QUOTA);

const policy = {
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, scaleDownDelay: '0s' },
  services: [{ match: { name: 'hi-*' }, min: 2 }, { match: {} }],
  limits: { writesPerMinute: 6000, writeConcurrency: 1 },
};
const policyWithTopic = JSON.stringify({ ...policy, alerts: { topic: TOPIC } });

/**
 * Every run here polls a write's operation from 20 ms rather than Google's 1 s: the emulator's
 * operations take 20 to 120 ms, so each of a run's eight writes waited a second for nothing, and
 * the file took three minutes. An operation is still in flight for about as long as it runs.
 */
const POLL = QUICK_POLL_ENV;

async function emulator(): Promise<RunningEmulator> {
  return startEmulator({
    // The emulator's own Pub/Sub keeps what the governor publishes (Google's is used below where
    // a publish must hang).
    fleet: { ...fleet, topics: [TOPIC] },
    speed: 'manual',
    operationDelayMs: 120,
    inject: {
      seed: SEED,
      latency: [{ method: 'UpdateService', minMs: 40, maxMs: 160 }],
    },
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs `governor apply --yes`; with `killAtWrite`, SIGKILLs it once the emulator has seen that many writes, plus `extraMs`. */
function apply(
  em: RunningEmulator,
  stateDir: string,
  policyFile: string,
  kill?: { atWrite: number; extraMs: number },
  env: Record<string, string> = {},
) {
  return new Promise<Exit>((resolve, reject) => {
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
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    let timer: NodeJS.Timeout | undefined;
    if (kill !== undefined) {
      timer = setInterval(() => {
        if (em.writes().length < kill.atWrite) return;
        clearInterval(timer);
        setTimeout(() => {
          if (child.pid !== undefined && child.exitCode === null)
            process.kill(child.pid, 'SIGKILL');
        }, kill.extraMs);
      }, 2);
    }
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stderr });
    });
  });
}

/** `governor unlock --yes`: what a person does after a crash, rather than wait for the lease. */
async function unlock(em: RunningEmulator, stateDir: string, policyFile: string): Promise<string> {
  const r = await governorIn(
    { ...process.env, ...em.env, NO_COLOR: '1' },
    ...['unlock', '--yes', '--policy', policyFile, '--state-dir', stateDir],
  );
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/**
 * The command line in this process (`main`), with the emulator's environment as {@link apply}
 * gives it (as {@link unlock} does with `forUnlock`).
 */
function inProcess(em: RunningEmulator, argv: string[], forUnlock = false): Promise<CliResult> {
  return cliIn(
    forUnlock
      ? { ...process.env, ...em.env, NO_COLOR: '1' }
      : { ...process.env, ...em.env, ...POLL, GOVERNOR_RUN_DEADLINE: '20s', NO_COLOR: '1' },
    ...argv,
  );
}

/** `governor apply --yes` in this process: a run that is not killed. */
const applyHere = (em: RunningEmulator, stateDir: string, policyFile: string) =>
  inProcess(em, ['apply', '--yes', '--policy', policyFile, '--state-dir', stateDir]);

/** The rebalance.applied events the emulator's Pub/Sub received. */
const applied = (em: RunningEmulator) =>
  em
    .published(TOPIC)
    .map((m) => JSON.parse(m.data ?? '{}') as Alert)
    .filter((a) => a.type === 'rebalance.applied');

/** Every cap change announced as applied, as `service→max`. */
const announced = (em: RunningEmulator) =>
  new Set(
    applied(em).flatMap((a) =>
      (a.details.writes as { service: string; to: number }[]).map((w) => `${w.service}→${w.to}`),
    ),
  );

/** Every cap change the emulator saw, as `service→max`. */
const writesOf = (em: RunningEmulator) =>
  em.writes().map((w) => `${w.service.name}→${w.after.maxInstances}`);

const caps = (em: RunningEmulator) =>
  Object.fromEntries(em.state().services.map((s) => [s.name, s.maxInstances]));

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
      for (let k = 1; k <= changes; k += 1) {
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
            // What `governor unlock --yes` does (the first two tests run the command itself).
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
      }
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
