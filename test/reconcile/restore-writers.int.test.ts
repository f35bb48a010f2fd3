import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { restoreSummary } from '../../src/cli/apply-command.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { ReconcileOptions, RunReport } from '../../src/reconcile/reconcile.js';
import type { StateStore } from '../../src/ports/index.js';
import {
  OVER_COMMITTED_ORIGINAL_MAX,
  overCommittedFleet,
  overCommittedPolicy,
  QUICK_POLL_MS,
} from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * `governor restore` with another writer acting between its reads and its writes, through the
 * emulator and Google's clients: a quota cut while its prompt waits, and a service changed
 * between the read a write is sent against and the write (a stale etag). Caps 14 on a quota of
 * 12: `apply` lowers the idle services to 1 and raises hi-* to their minimum 2; restore lowers
 * hi-* back to 1 and raises the idle ones back toward 3, 3, 2, 2 as far as the pool has room.
 */

const PROJECT = 'restore-writers';
const REGION = 'us-central1';
const QUOTA = 12;

const policy = parsePolicy(overCommittedPolicy(PROJECT, REGION));

let emulator: RunningEmulator;
let ports: GooglePorts;
let store: StateStore;
let hook: ((method: string) => void) | null;

beforeEach(async () => {
  hook = null;
  emulator = await startEmulator({
    fleet: overCommittedFleet(PROJECT, REGION, QUOTA),
    speed: 'manual',
    operationDelayMs: 20,
    faults: ({ method }) => {
      hook?.(method.split('/').pop() ?? method);
      return undefined;
    },
  });
  emulator.advance(2 * 60_000);
  ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  store = createMemoryStateStore();
  // The governor's own run first: every service carries its max from before the governor.
  const applied = await run();
  expect(applied.outcome).toBe('ok');
  expect(caps()).toMatchObject({ 'idle-0': 1, 'hi-0': 2 });
});

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

let seq = 0;
function run(options: Partial<ReconcileOptions> = {}): Promise<RunReport> {
  return reconcileReport(
    policy,
    { ports, store, clock: () => emulator.now().getTime() },
    { runId: `restore-${++seq}`, deadlineMs: 30_000, writerId: 'me', ...options },
  );
}

const caps = () =>
  Object.fromEntries(emulator.state().services.map((s) => [s.name, s.maxInstances]));
const held = () => Object.values(caps()).reduce((sum, n) => sum + n, 0);
const originals = () =>
  Object.fromEntries(
    emulator.state().services.map((s) => [s.name, s.annotations['gpu-governor.dev/original-max']]),
  );

describe('restore and another writer', () => {
  it('the quota cut while its prompt waits: decreases made, raises only within the new quota', async () => {
    const before = emulator.writes().length;
    const report = await run({
      restore: true,
      confirm: () => {
        emulator.setQuota({ project: PROJECT, region: REGION, quota: 9 });
        return Promise.resolve(true);
      },
    });
    expect(report.outcome).toBe('ok');
    // hi-* back to 1 (8 GPUs held), then room for 1 only: idle-0 1 → 2, the rest wait.
    expect(held()).toBeLessThanOrEqual(9);
    // The decreases bring the pool down toward the cut quota; no raise takes it past it.
    const raises = emulator
      .writes()
      .slice(before)
      .filter((w) => w.after.maxInstances > w.before.maxInstances);
    expect(
      raises.map((w) => [w.service.name, w.before.maxInstances, w.after.maxInstances]),
    ).toEqual([['idle-0', 1, 2]]);
    for (const w of raises) expect(w.pool?.capsGpus).toBeLessThanOrEqual(9);
    expect(caps()).toMatchObject({ 'hi-0': 1, 'hi-1': 1, 'hi-2': 1, 'hi-3': 1 });
    expect(report.writes.filter((w) => w.cause === 'no-room').map((w) => w.name)).toEqual([
      'idle-1',
      'idle-2',
      'idle-3',
    ]);
    expect(originals()).toEqual(OVER_COMMITTED_ORIGINAL_MAX);
  });

  it('a service changed between its read and its write (stale etag): not written, said, and the next restore finishes', async () => {
    let updates = 0;
    hook = (method) => {
      // Another writer edits hi-0 just as restore's first write (hi-0 2 → 1) reaches Cloud Run.
      if (method === 'UpdateService' && ++updates === 1)
        emulator.edit({
          project: PROJECT,
          region: REGION,
          service: 'hi-0',
          annotations: {
            ...emulator.state().services.find((s) => s.name === 'hi-0')?.annotations,
            owner: 'team-b',
          },
        });
    };
    const report = await run({ restore: true });
    hook = null;
    const hi0 = report.writes.find((w) => w.name === 'hi-0');
    expect(hi0).toMatchObject({ outcome: 'skipped', cause: 'conflict', written: null });
    expect(hi0?.reason).toContain('changed while the governor was writing it');
    expect(caps()['hi-0']).toBe(2);
    const told = report.plan ? restoreSummary(report.plan, report) : '';
    // Before, the pool's maxes from before needing more than its budget was all the summary
    // said: hi-0, a decrease, waited for the quota to grow, not for the next restore.
    expect(told).toContain('restore cannot finish until the quota grows by 2 GPUs');
    expect(told).toContain(
      '    hi-0: not written by this run, for the reason given above: run `governor restore` again.',
    );
    expect(held()).toBeLessThanOrEqual(QUOTA);

    const again = await run({ restore: true });
    expect(again.outcome).toBe('ok');
    expect(caps()).toMatchObject({ 'hi-0': 1, 'hi-1': 1, 'hi-2': 1, 'hi-3': 1 });
    expect(held()).toBe(QUOTA);
    expect(originals()).toEqual(OVER_COMMITTED_ORIGINAL_MAX);
    // The user's annotation kept beside the governor's.
    expect(emulator.state().services.find((s) => s.name === 'hi-0')?.annotations['owner']).toBe(
      'team-b',
    );
  });
});
