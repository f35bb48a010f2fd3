import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { beforeDeadline } from '../../src/reconcile/act.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { twoRaisesFleet, twoRaisesPolicy } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * Raises start only while enough of the run is left to verify them. On a fake wall clock over the
 * emulator's model, a read takes 100 ms and a write 3 s; the run has spent most of its time
 * before it acts (the deadline counts from the person's answer, and the store that renews the
 * lease then is slow). Quota 12: `idle` (4, unused)
 * is lowered, `svc-a` and `svc-b` (1, want 4) raised; `ext` (unmanaged, 1) is another writer's,
 * which fills the pool right after the read before the raises, inside the round trip Cloud Run
 * leaves open.
 */

const PROJECT = 'margin-project';
const REGION = 'us-central1';
const READ_MS = 100;
const WRITE_MS = 3_000;
const DEADLINE_MS = 60_000;

function model(): FleetModel {
  return new FleetModel(validateFleet(twoRaisesFleet(PROJECT, REGION)));
}

const policy = parsePolicy(twoRaisesPolicy(PROJECT, REGION));

/**
 * One run whose act step starts with `leftMs` of the run left (spent renewing the lease after the
 * answer). `stallMs`: the first listing after the confirmation takes that long on the real clock
 * too (the run deadline's timer runs on it).
 */
async function runWith(leftMs: number, stallMs = 0) {
  const m = model();
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  const start = Date.parse('2026-11-27T13:00:00Z');
  let t = start;
  let wrote = false;
  let filled = false;
  let stalled = false;
  let confirmed = false;
  const inner = createMemoryStateStore();
  const store: StateStore = {
    ...inner,
    renewLease: async (...args: Parameters<StateStore['renewLease']>) => {
      const renewed = await inner.renewLease(...args);
      if (confirmed) t = answeredAt + DEADLINE_MS - leftMs;
      return renewed;
    },
  };
  let answeredAt = 0;
  const caps = () => m.listServices().reduce((a, s) => a + s.maxInstances, 0);
  const run = {
    ...sim.run,
    listServices: async (p: string, r: string) => {
      if (confirmed && !stalled && stallMs > 0) {
        stalled = true;
        await new Promise((done) => setTimeout(done, stallMs));
      }
      t += READ_MS;
      const read = await sim.run.listServices(p, r);
      // The read before the raises (the first after a write): right after it, another writer
      // raises ext until the pool is full.
      if (wrote && !filled) {
        filled = true;
        const ext = m.findService('ext', PROJECT, REGION);
        m.update(ext, { maxInstances: ext.maxInstances + (12 - caps()) });
      }
      return read;
    },
    updateMaxInstances: async (u: Parameters<typeof sim.run.updateMaxInstances>[0]) => {
      t += WRITE_MS;
      wrote = true;
      return sim.run.updateMaxInstances(u);
    },
  };
  const log = memoryLogger();
  const report = await reconcileReport(
    policy,
    {
      ports: { ...sim, run },
      store,
      log,
      clock: () => m.now,
      wallClock: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    },
    {
      runId: 'margin',
      deadlineMs: DEADLINE_MS,
      writerId: 'me',
      confirm: () => {
        answeredAt = t;
        confirmed = true;
        return Promise.resolve(true);
      },
    },
  );
  return { report, log, filled, wrote, caps: caps(), m };
}

describe('raises and the run deadline', () => {
  it('with enough of the run left, a raise another writer took over the quota is read back and lowered back', async () => {
    const { report, filled, caps } = await runWith(20_000);
    expect(filled).toBe(true);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.map((w) => w.cause)).toEqual(['written', 'written']);
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(caps).toBeLessThanOrEqual(12);
    // Lowered back to its budget: within it, so no pool.over-budget says otherwise.
    expect(report.alerts.filter((a) => a.type === 'pool.over-budget')).toEqual([]);
  });

  it('stamps when it lowered a cap on the service it lowers, and when it raised on one it raises', async () => {
    // docs/applying.md: last-lowered starts the reverse delay, last-changed the scale-down delay.
    const { report, m } = await runWith(20_000);
    const at = (name: string) => m.findService(name, PROJECT, REGION).annotations;
    expect(report.writes.find((w) => w.name === 'idle')?.cause).toBe('written');
    // The run's time, the same on every service it wrote.
    const lowered = at('idle')['gpu-governor.dev/last-lowered'];
    expect(lowered).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(at('idle')['gpu-governor.dev/last-changed']).toBeUndefined();
    expect(at('svc-a')['gpu-governor.dev/last-changed']).toBe(lowered);
  });

  it('with less left than two writes and a read take, no raise starts: each is left for the next run, with its reason', async () => {
    // The decrease (3 s) leaves about 0.4 s. Before, both raises were sent then, never read back
    // (the verify read came after the deadline: "not verified"), and the pool ended with 15 GPUs
    // of caps on its quota of 12.
    const { report, log, filled, caps } = await runWith(3_500);
    expect(filled).toBe(true);
    expect(report.writes.find((w) => w.name === 'idle')?.cause).toBe('written');
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises).toHaveLength(2);
    for (const w of raises) {
      expect(w.cause).toBe('deadline');
      expect(w.reason).toMatch(
        /^too little of the run was left to verify it \(\d+ ms before the run deadline; a read and two writes take 6100 ms in this run: the raise, and lowering it back\)/,
      );
    }
    expect(caps).toBeLessThanOrEqual(12);
    expect(log.lines.some((l) => l.message.includes('not verified'))).toBe(false);
  });

  it('a write whose turn comes at the deadline itself is not sent, and is skipped as late, not failed', async () => {
    // The listing before the decreases (100 ms) ends exactly at the deadline: the write of idle
    // gets its slot and place then. No call starts once the deadline has come (the call that
    // bounds it refuses at once), so nothing is sent: that is a write not made for the deadline,
    // not one that may have applied (`uncertain`, a failed write that fails the run).
    const { report, wrote } = await runWith(READ_MS);
    expect(wrote).toBe(false);
    const idle = report.writes.find((w) => w.name === 'idle');
    expect(idle?.cause).toBe('deadline');
    expect(idle?.outcome).toBe('skipped');
    expect(report.writes.filter((w) => w.outcome === 'failed')).toEqual([]);
    expect(report.outcome).not.toBe('failed');
  });

  it('raises whose lease check comes at the deadline are skipped for the deadline, not for another governor', async () => {
    // The listing (100 ms) and the decrease of idle (3 s) end exactly at the deadline: the
    // raises' write slots are still granted then, and the lease is read again before their read.
    // That read is refused for the deadline, as the read of the pool would be: no lease was lost
    // and no other governor is there, so neither is said (governor.degraded, other-governor).
    const { report, log } = await runWith(READ_MS + WRITE_MS);
    expect(report.writes.find((w) => w.name === 'idle')?.cause).toBe('written');
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.map((w) => w.cause)).toEqual(['deadline', 'deadline']);
    expect(report.alerts.filter((a) => a.dedupKey.endsWith(':other-governor'))).toEqual([]);
    expect(log.lines.filter((l) => l.message.includes('another run of this state store'))).toEqual(
      [],
    );
  });

  it('decreases whose read the deadline cuts short are skipped for the deadline, as raises are, not failed', async () => {
    // After the confirmation the region is listed again before the decreases; that listing is
    // still unanswered when the deadline passes (250 ms left, the listing takes 1.5 s). The
    // decrease of idle is not made for the deadline, as a raise whose pool read the deadline
    // cut short is: a write not made, not a failed one (which fails the run).
    const { report, wrote } = await runWith(250, 1_500);
    expect(wrote).toBe(false);
    const idle = report.writes.find((w) => w.name === 'idle');
    expect(idle?.cause).toBe('deadline');
    expect(idle?.outcome).toBe('skipped');
    expect(report.writes.filter((w) => w.outcome === 'failed')).toEqual([]);
  });
});

describe('a call bounded by the run deadline', () => {
  it('is not started at the deadline itself', async () => {
    let started = false;
    const call = () => {
      started = true;
      return Promise.resolve('answered');
    };
    await expect(
      beforeDeadline(call, { deadline: 1_000, clock: () => 1_000 }, 'reading'),
    ).rejects.toThrow('the run deadline had passed before reading');
    expect(started).toBe(false);
    await expect(
      beforeDeadline(call, { deadline: 1_000, clock: () => 999 }, 'reading'),
    ).resolves.toBe('answered');
    expect(started).toBe(true);
  });
});
