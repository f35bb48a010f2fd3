import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { UnavailableError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A person who takes minutes at `governor apply`'s confirmation. The run's deadline (1 minute
 * here) and its lease (the deadline and a minute) were counted from the run's start, so an
 * answer after them skipped every write as "deadline" with the lease already expired. The run
 * now renews its lease at the answer and counts its deadline from it. On a fake wall clock over
 * the emulator's model; quota 6: `idle` (4, unused) is lowered to 2, `busy` (1, wants 4) raised.
 */

const PROJECT = 'prompt-project';
const REGION = 'us-central1';
const DEADLINE_MS = 60_000;
const WAIT_MS = 10 * 60_000;

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 4, scaleDownDelay: '0s' },
  services: [{ match: {} }],
});

async function answeredLate(other?: string, storeDown = false, renewedFor: number | null = null) {
  const m = new FleetModel(
    validateFleet(
      onePoolFleet(PROJECT, REGION, 6, [
        ['idle', 4, 0],
        ['busy', 1, 4],
      ]),
    ),
  );
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  // The listings of what else holds the pool: the observation's, and each read before raises.
  let workerPoolReads = 0;
  const run = {
    ...sim.run,
    listWorkerPools: (p: string, r: string) => {
      workerPoolReads += 1;
      return sim.run.listWorkerPools(p, r);
    },
  };
  let t = Date.parse('2026-11-27T13:00:00Z');
  const inner = createMemoryStateStore();
  const store: StateStore = storeDown
    ? {
        ...inner,
        renewLease: () => Promise.reject(new UnavailableError('the store is unreachable')),
      }
    : renewedFor !== null
      ? {
          ...inner,
          // A store that renews for less than asked: its answer is the lease's end.
          renewLease: (project, holder, _ttlMs, now) =>
            inner.renewLease(project, holder, renewedFor, now),
        }
      : inner;
  const report = await reconcileReport(
    policy,
    {
      ports: { ...sim, run },
      store,
      log: memoryLogger(),
      clock: () => m.now,
      wallClock: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    },
    {
      runId: 'prompt',
      deadlineMs: DEADLINE_MS,
      writerId: 'me',
      confirm: async () => {
        t += WAIT_MS;
        // Meanwhile the lease ran out, and another run (another terminal, CI) took it.
        if (other !== undefined)
          expect(
            (await store.acquireLease(PROJECT, other, 120_000, new Date(t).toISOString())).acquired,
          ).toBe(true);
        return true;
      },
    },
  );
  const caps = Object.fromEntries(m.listServices().map((s) => [s.name, s.maxInstances]));
  return { report, caps, lease: await store.readLease(PROJECT), at: t, workerPoolReads };
}

describe('an answer minutes after the plan', () => {
  it('renews the lease at the answer and writes the plan, the deadline counted from the answer', async () => {
    const { report, caps, lease } = await answeredLate();
    expect(report.writes.map((w) => [w.name, w.cause])).toEqual([
      ['idle', 'written'],
      ['busy', 'written'],
    ]);
    expect(caps).toEqual({ idle: 2, busy: 4 });
    expect(report.outcome).toBe('ok');
    // Given back at the end, as every run's.
    expect(lease).toBeNull();
  });

  it('makes no raise on a lease another run took while the prompt waited; its decreases still', async () => {
    const { report, caps, lease, workerPoolReads } = await answeredLate(
      'gov-x/run-other@elsewhere:1',
    );
    expect(report.writes.find((w) => w.name === 'idle')?.cause).toBe('written');
    const busy = report.writes.find((w) => w.name === 'busy');
    expect(busy).toMatchObject({ outcome: 'skipped', cause: 'other-governor', written: null });
    expect(caps).toEqual({ idle: 2, busy: 1 });
    // The other run's lease is left to it.
    expect(lease).toMatchObject({ holder: 'gov-x/run-other@elsewhere:1' });
    // Its pool is not read again for raises it will not make: the observation's listing only.
    expect(workerPoolReads).toBe(1);
  });

  it("stops at the renewed lease's end, as the store answered it, less the minute it outlives the run", async () => {
    // Renewed for 30 s: the lease ends before the run could store what it plans and write it.
    const { report, caps } = await answeredLate(undefined, false, 30_000);
    expect(report.outcome).toBe('failed');
    expect(report.error).toMatch(/^the run deadline had passed before /);
    expect(report.writes).toEqual([]);
    expect(caps).toEqual({ idle: 4, busy: 1 });
  });

  it('fails before any write when the store cannot renew the lease at the answer', async () => {
    const { report, caps } = await answeredLate(undefined, true);
    expect(report.outcome).toBe('failed');
    expect(report.error).toContain('the store is unreachable');
    expect(report.writes).toEqual([]);
    expect(caps).toEqual({ idle: 4, busy: 1 });
  });
});
