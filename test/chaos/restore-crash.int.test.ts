import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { emulator, inProcess, POLL, PROJECT, QUOTA, unlock, type Exit } from './crash-runs.js';
import { OVER_COMMITTED_ORIGINAL_MAX } from '../support/fixtures.js';

/**
 * `governor restore` killed half way (SIGKILL: no finally, the lease left held), then run again
 * after `governor unlock`, as a person would: the second restore finishes what the first began,
 * within the quota after every write, and what remembers each service's max from before the
 * governor (its original-max annotation) is never lost or rewritten. A third restore writes
 * nothing.
 *
 * The fleet (crash-runs.ts): caps 14 on a quota of 12; `apply` lowers the idle services to 1 and
 * raises hi-* to their minimum 2. Restore lowers hi-* back to 1 and raises the idle ones back
 * toward 3, 3, 2, 2 as far as the pool has room.
 */

const caps = (em: RunningEmulator) =>
  Object.fromEntries(em.state().services.map((s) => [s.name, s.maxInstances]));
const originals = (em: RunningEmulator) =>
  Object.fromEntries(
    em.state().services.map((s) => [s.name, s.annotations['gpu-governor.dev/original-max']]),
  );
const totals = (em: RunningEmulator) =>
  em.writes().map((w) => (w.pool ? w.pool.capsGpus + w.pool.workerPoolGpus : NaN));

/** `governor restore --yes` as a process, SIGKILLed once the emulator has seen `atWrite` writes. */
function restoreKilled(
  em: RunningEmulator,
  stateDir: string,
  policyFile: string,
  atWrite: number,
): Promise<Exit> {
  return new Promise<Exit>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'restore', '--yes', '--policy', policyFile, '--state-dir', stateDir],
      {
        env: { ...process.env, ...em.env, ...POLL, GOVERNOR_RUN_DEADLINE: '20s', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const timer = setInterval(() => {
      if (em.writes().length < atWrite) return;
      clearInterval(timer);
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, 2);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stderr });
    });
  });
}

const policy = JSON.stringify({
  version: 1,
  projects: [PROJECT],
  regions: ['us-central1'],
  defaults: { headroom: 0, scaleDownDelay: '0s' },
  services: [{ match: { name: 'hi-*' }, min: 2 }, { match: {} }],
  limits: { writesPerMinute: 6000, writeConcurrency: 1 },
});

/** The emulator after `apply`: the governor has changed every service. */
async function governed(dir: string, name: string) {
  const em = await emulator();
  em.advance(2 * 60_000);
  const stateDir = join(dir, name);
  const policyFile = join(dir, 'policy.json');
  const applied = await inProcess(em, [
    'apply',
    '--yes',
    '--policy',
    policyFile,
    '--state-dir',
    stateDir,
  ]);
  expect(applied.code, applied.stderr).toBe(0);
  expect(originals(em)).toEqual(OVER_COMMITTED_ORIGINAL_MAX);
  return { em, stateDir, policyFile, applied: em.writes().length };
}

describe('crash: governor restore killed half way, then run again', () => {
  it('the next restore finishes it within the quota; the maxes from before the governor are kept; a third writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-restore-crash-'));
    writeFileSync(join(dir, 'policy.json'), policy);
    try {
      // What an uninterrupted restore leaves.
      const ref = await governed(dir, 'ref');
      let expected: Record<string, number>;
      try {
        const done = await inProcess(ref.em, [
          'restore',
          '--yes',
          '--policy',
          ref.policyFile,
          '--state-dir',
          ref.stateDir,
        ]);
        expect(done.code, done.stderr).toBe(0);
        expected = caps(ref.em);
        expect(ref.em.writes().length - ref.applied).toBe(6);
      } finally {
        await ref.em.stop();
      }

      // Killed after its first write (a decrease), and after its fifth (its first raise).
      for (const restoreWrites of [1, 5]) {
        const { em, stateDir, policyFile, applied } = await governed(dir, `crash-${restoreWrites}`);
        const where = `killed after restore write ${restoreWrites}`;
        try {
          const killed = await restoreKilled(em, stateDir, policyFile, applied + restoreWrites);
          expect(killed.signal, `${where}: ${killed.stderr}`).toBe('SIGKILL');
          expect(em.writes().length, where).toBeLessThan(applied + 6);
          await unlock(em, stateDir, policyFile);
          const again = await inProcess(em, [
            'restore',
            '--yes',
            '--policy',
            policyFile,
            '--state-dir',
            stateDir,
          ]);
          expect(again.code, `${where}: ${again.stderr}`).toBe(0);
          expect(caps(em), where).toEqual(expected);
          expect(originals(em), where).toEqual(OVER_COMMITTED_ORIGINAL_MAX);
          for (const total of totals(em)) expect(total, where).toBeLessThanOrEqual(QUOTA);
          const before = em.writes().length;
          const third = await inProcess(em, [
            'restore',
            '--yes',
            '--policy',
            policyFile,
            '--state-dir',
            stateDir,
          ]);
          expect(third.code, `${where}: ${third.stderr}`).toBe(0);
          expect(em.writes().length, where).toBe(before);
        } finally {
          await em.stop();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
