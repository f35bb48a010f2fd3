import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { UnavailableError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/log.js';
import {
  MAX_LEASE_CLOCK_SKEW_MS,
  StateCorruptError,
  type StateStore,
} from '../../src/ports/index.js';
import { LEASE_MARGIN_MS } from '../../src/reconcile/lease.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A lease request whose answer is lost after the store committed it: a timeout may come "even if
 * the operation has completed successfully" (Google's client libraries,
 * https://cloud.google.com/java/docs/reference/gax/latest/com.google.api.gax.rpc.DeadlineExceededException).
 * The run fails, and must not leave the lease held by itself: the next run would find the project
 * locked until the lease expires, and page about another governor that is not there.
 */

const PROJECT = 'lease-project';
const REGION = 'us-central1';

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

describe('a lease whose answer was lost', () => {
  it('is given back by the run that failed, so the next run takes it at once', async () => {
    const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, 4, [['svc-a', 1, 1]])));
    const ports = createSimPorts(m, { lagMs: 3 * 60_000 });
    const base = createMemoryStateStore();
    let lose = true;
    const store: StateStore = {
      ...base,
      acquireLease: async (project, holder, ttlMs, now) => {
        const answer = await base.acquireLease(project, holder, ttlMs, now);
        if (!lose) return answer;
        lose = false;
        throw new UnavailableError('DEADLINE_EXCEEDED: the lease request timed out');
      },
    };
    const first = await reconcileReport(
      policy,
      { ports, store, clock: () => m.now, leaseClock: () => m.now },
      { runId: 'first', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(first.outcome).toBe('failed');
    expect(first.error).toContain('the lease could not be taken');
    expect(await base.readLease(PROJECT)).toBeNull();
    const second = await reconcileReport(
      policy,
      { ports, store, clock: () => m.now, leaseClock: () => m.now },
      { runId: 'second', deadlineMs: 60_000, writerId: 'me', leaseAttempts: 1 },
    );
    expect(second.leaseHeld).toEqual([]);
    expect(second.outcome).not.toBe('failed');
  });
});

describe('a lease the store cannot read', () => {
  it('fails the run once, naming the fault, with no warning of a lease left to expire', async () => {
    // The file store refuses a state file it cannot read (corrupt, a directory, a link) on every
    // call: the release after the failed take fails as the take did, and no lease was written.
    const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, 4, [['svc-a', 1, 1]])));
    const ports = createSimPorts(m, { lagMs: 3 * 60_000 });
    const base = createMemoryStateStore();
    const unreadable = () =>
      new StateCorruptError('state file lease-project.json', [{ path: 'runs', message: 'x' }]);
    const store: StateStore = {
      ...base,
      acquireLease: () => Promise.reject(unreadable()),
      releaseLease: () => Promise.reject(unreadable()),
    };
    const log = memoryLogger();
    const report = await reconcileReport(
      policy,
      { ports, store, log, clock: () => m.now, leaseClock: () => m.now },
      { runId: 'unreadable', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(report.outcome).toBe('failed');
    expect(report.error).toContain('the lease could not be taken: Unreadable state file');
    const told = log.lines.filter((l) => l.message.includes('Unreadable state file'));
    expect(told.map((l) => l.severity)).toEqual(['ERROR']);
    expect(log.lines.map((l) => l.message).join('\n')).not.toContain('could not release');
  });
});

describe('a lease another run holds', () => {
  /** A one-service fleet whose project's lease another run holds, in a store of its own. */
  async function heldByAnother() {
    const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, 4, [['svc-a', 1, 1]])));
    const ports = createSimPorts(m, { lagMs: 3 * 60_000 });
    const base = createMemoryStateStore();
    const now = new Date(m.now).toISOString();
    expect((await base.acquireLease(PROJECT, 'other-run', 10 * 60_000, now)).acquired).toBe(true);
    return { m, ports, base };
  }

  it('is asked for leaseAttempts times, no more; an alert that cannot be saved fails loudly', async () => {
    const { m, ports, base } = await heldByAnother();
    let asked = 0;
    const store: StateStore = {
      ...base,
      acquireLease: (...args) => {
        asked += 1;
        return base.acquireLease(...args);
      },
      saveConditions: () => Promise.reject(new UnavailableError('UNAVAILABLE: store gone')),
    };
    const report = await reconcileReport(
      policy,
      { ports, store, clock: () => m.now, leaseClock: () => m.now },
      { runId: 'refused', deadlineMs: 60_000, writerId: 'me', leaseAttempts: 3, leaseRetryMs: 1 },
    );
    expect(report.outcome).toBe('lease-held');
    expect(asked).toBe(3);
    expect(report.leaseHeld.map((h) => h.attempts)).toEqual([3]);
    expect(report.writes).toEqual([]);
    // The lease alert could not be saved: the run's error says so, not only a log line.
    expect(report.error).toContain(`${PROJECT}: could not publish or save the lease alert`);
  });

  it('says it asked once when the deadline left no room to wait and ask again', async () => {
    const { m, ports, base } = await heldByAnother();
    let asked = 0;
    const store: StateStore = {
      ...base,
      acquireLease: (...args) => {
        asked += 1;
        return base.acquireLease(...args);
      },
    };
    // Waiting 60 s before asking again would end past the run's 60 s deadline.
    const report = await reconcileReport(
      policy,
      { ports, store, clock: () => m.now, leaseClock: () => m.now },
      {
        runId: 'refused',
        deadlineMs: 60_000,
        writerId: 'me',
        leaseAttempts: 3,
        leaseRetryMs: 60_000,
      },
    );
    expect(report.outcome).toBe('lease-held');
    expect(asked).toBe(1);
    const alert = report.alerts.find((a) => a.dedupKey === `governor.degraded:${PROJECT}:lease`);
    expect(alert?.details).toMatchObject({ reason: 'lease', attempts: 1 });
  });

  it('keeps its alert as sent when the holder saved its own alert state meanwhile', async () => {
    // The holder's run saves its conditions between this run's read of them and its save: the
    // lease alert went out, so it must be kept, or the holder's next run would never resolve it.
    const { m, ports, base } = await heldByAnother();
    let holderSaved = false;
    const store: StateStore = {
      ...base,
      saveConditions: async (project, state, version) => {
        if (!holderSaved) {
          holderSaved = true;
          const theirs = await base.loadConditions(project);
          await base.saveConditions(project, theirs.state, theirs.version);
        }
        return base.saveConditions(project, state, version);
      },
    };
    const report = await reconcileReport(
      policy,
      { ports, store, clock: () => m.now, leaseClock: () => m.now },
      { runId: 'refused', deadlineMs: 60_000, writerId: 'me', leaseAttempts: 1 },
    );
    expect(report.outcome).toBe('lease-held');
    const key = `governor.degraded:${PROJECT}:lease`;
    expect(report.alerts.map((a) => [a.dedupKey, a.status])).toEqual([[key, 'firing']]);
    expect(Object.keys((await base.loadConditions(PROJECT)).state)).toEqual([key]);
    expect(report.error).toBeNull();
  });

  it('is asked again only while a retry can come before the run deadline', async () => {
    const { m, ports, base } = await heldByAnother();
    const asked: number[] = [];
    const store: StateStore = {
      ...base,
      acquireLease: (...args) => {
        asked.push(m.now);
        return base.acquireLease(...args);
      },
    };
    const start = m.now;
    const report = await reconcileReport(
      policy,
      {
        ports,
        store,
        clock: () => m.now,
        leaseClock: () => m.now,
        wallClock: () => m.now,
        sleep: async (ms) => m.advance(ms),
      },
      {
        runId: 'waits',
        deadlineMs: 60_000,
        writerId: 'me',
        leaseAttempts: 10,
        leaseRetryMs: 20_000,
      },
    );
    // At 0, 20 s and 40 s: the next retry would come at the deadline itself, when no call starts.
    expect(asked.map((t) => t - start)).toEqual([0, 20_000, 40_000]);
    expect(report.outcome).toBe('lease-held');
  });
});

describe('the lease margin', () => {
  it('covers two clocks each off by as much as a lease may be taken on, in opposite directions', () => {
    // The holder's clock behind and a reader's ahead end the lease early, for that reader, by
    // both offsets: within the margin, the holder's run has ended by then.
    expect(LEASE_MARGIN_MS).toBeGreaterThanOrEqual(2 * MAX_LEASE_CLOCK_SKEW_MS);
  });
});
