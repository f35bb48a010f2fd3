import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { overCommittedFleet } from '../support/fixtures.js';

/**
 * Two governors of the same project on different state stores (two `--state-dir`s: the lease of
 * one does not exclude the other), with slow writes: the real CLI twice against the emulator.
 * Their policies differ (a colleague's local copy beside the team's), so each plans increases
 * the other does not know of. Each stamps its name and its store's id on every service it
 * writes, and writes nothing in a pool where another governor's stamp is fresher than a lease
 * (wall clock): the pool stays within its quota at every write, and once one governor's writes
 * are visible, only it writes.
 */

const REGION = 'us-central1';
const PROJECT = 'two-governors';
const QUOTA = 12;

// Caps 14 on a quota of 12: four idle services can come down to 1 (8 GPUs free up to 12).
const fleet = overCommittedFleet(PROJECT, REGION, QUOTA);

/** A policy that raises `favoured` to 3 each: alone, 8 + 2 x 2 = 12 GPUs, within the quota. */
function policy(favoured: string[]): string {
  return JSON.stringify({
    version: 1,
    projects: [PROJECT],
    regions: [REGION],
    defaults: { headroom: 0, scaleDownDelay: '0s' },
    services: [...favoured.map((name) => ({ match: { name }, min: 3 })), { match: {} }],
    limits: { writesPerMinute: 6000, writeConcurrency: 1 },
  });
}

interface Exit {
  code: number | null;
  stderr: string;
}

/** `governor apply --yes` with its own policy and state directory. */
function apply(em: RunningEmulator, dir: string, name: string, favoured: string[]): Promise<Exit> {
  const policyFile = join(dir, `${name}.json`);
  writeFileSync(policyFile, policy(favoured));
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['bin/governor.js', 'apply', '--yes', '--policy', policyFile, '--state-dir', join(dir, name)],
      {
        env: { ...process.env, ...em.env, GOVERNOR_RUN_DEADLINE: '60s', NO_COLOR: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** The store id of the governor whose state directory is `name`. */
const idOf = (dir: string, name: string) =>
  readFileSync(join(dir, name, 'governor-id'), 'utf8').trim();

async function slowEmulator(): Promise<RunningEmulator> {
  const em = await startEmulator({
    fleet,
    speed: 'manual',
    operationDelayMs: 200,
    // Slow writes: each update lands 0.8 to 1.6 s after it is sent.
    inject: { seed: 7, latency: [{ method: 'UpdateService', minMs: 800, maxMs: 1600 }] },
  });
  em.advance(2 * 60_000);
  return em;
}

/** Every write within the quota, and the caps at the end too. */
function expectWithinQuota(em: RunningEmulator): void {
  const over = em.writes().filter((w) => w.pool === null || w.pool.capsGpus > QUOTA);
  expect(
    over.map((w) => `${w.service.name} → ${w.after.maxInstances}: ${w.pool?.capsGpus ?? '?'}`),
  ).toEqual([]);
  const total = em.state().services.reduce((sum, s) => sum + s.maxInstances, 0);
  expect(total).toBeLessThanOrEqual(QUOTA);
}

/** How many writes each made, by the store id in its stamp. */
function writers(em: RunningEmulator, dir: string): { alpha: number; beta: number } {
  const by = (id: string) =>
    em
      .writes()
      .filter((w) => (w.after.annotations['gpu-governor.dev/writer'] ?? '').endsWith(`/${id}`))
      .length;
  return { alpha: by(idOf(dir, 'alpha')), beta: by(idOf(dir, 'beta')) };
}

function raisesBy(em: RunningEmulator, id: string): number {
  return em
    .writes()
    .filter((w) => w.after.maxInstances > w.before.maxInstances)
    .filter((w) => (w.after.annotations['gpu-governor.dev/writer'] ?? '').endsWith(`/${id}`))
    .length;
}

describe('two governors on different state stores', () => {
  it('the second, started while the first writes, writes nothing and says why; the pool stays within quota', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-two-'));
    const em = await slowEmulator();
    try {
      const first = apply(em, dir, 'alpha', ['hi-0', 'hi-1']);
      // The second starts once the first's first write landed (the first is still writing).
      const deadline = Date.now() + 60_000;
      while (em.writes().length === 0 && Date.now() < deadline) {
        await new Promise((done) => setTimeout(done, 20));
      }
      expect(em.writes().length).toBeGreaterThan(0);
      const second = apply(em, dir, 'beta', ['hi-2', 'hi-3']);
      const [a, b] = await Promise.all([first, second]);
      expect(a.code, a.stderr).toBe(0);
      // Held back is not a failure of the run; it is said, and alerted (governor.degraded).
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toContain('another governor');
      expect(b.stderr).toContain(idOf(dir, 'alpha'));
      expect(idOf(dir, 'alpha')).not.toBe(idOf(dir, 'beta'));
      // Only the first writes: every write carries its stamp.
      expect(writers(em, dir)).toEqual({ alpha: em.writes().length, beta: 0 });
      expect(raisesBy(em, idOf(dir, 'alpha'))).toBeGreaterThan(0);
      expectWithinQuota(em);
    } finally {
      await em.stop();
    }
  }, 180_000);

  it('started together: never above the quota, and at most one of them raises', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-two-'));
    const em = await slowEmulator();
    try {
      const [a, b] = await Promise.all([
        apply(em, dir, 'alpha', ['hi-0', 'hi-1']),
        apply(em, dir, 'beta', ['hi-2', 'hi-3']),
      ]);
      // Each exits 0 or 1 (a decrease that lost a race with the other's is a conflict, not a crash).
      expect([0, 1], a.stderr).toContain(a.code);
      expect([0, 1], b.stderr).toContain(b.code);
      expect(em.writes().length).toBeGreaterThan(0);
      expectWithinQuota(em);
      // Whichever saw the other's stamps first raised nothing.
      const raised = [raisesBy(em, idOf(dir, 'alpha')), raisesBy(em, idOf(dir, 'beta'))];
      expect(raised.filter((n) => n > 0).length).toBeLessThanOrEqual(1);
      expect(`${a.stderr}\n${b.stderr}`).toContain('another governor');
    } finally {
      await em.stop();
    }
  }, 180_000);
});
