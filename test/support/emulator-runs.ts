import { afterEach } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import type { Policy } from '../../src/core/policy.js';
import {
  startEmulator,
  type EmulatorOptions,
  type FaultHook,
  type FleetInput,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import type { RunReport } from '../../src/reconcile/reconcile.js';
import { reconcileReport } from './reconcile-run.js';

/*
 * Apart from reconcile-run.ts, which unit tests import: this one starts a server (the emulator),
 * so only *.int.test.ts files may (test/support/projects.test.ts).
 */

/**
 * One run on a fresh emulator of `fleet` (its clock still), through Google's clients, answering
 * the run's report and the emulator to look at, and `again` for a further run of the same policy
 * on that emulator through the same clients and state store (`runId` its own). Call it once at the top of a test
 * file: whatever a test started is stopped once the test ends.
 */
export function emulatorRuns(): (
  fleet: FleetInput,
  policy: Policy,
  run: {
    runId: string;
    deadlineMs?: number;
    /** Asked of every call, with the emulator (to change its fleet between a run's calls). */
    faults?: (call: Parameters<FaultHook>[0], emulator: RunningEmulator) => ReturnType<FaultHook>;
    /** The emulator's own settings beyond the fleet (an operation's delay, its invariants). */
    emulator?: Pick<EmulatorOptions, 'operationDelayMs' | 'invariants'>;
  },
) => Promise<{
  report: RunReport;
  emulator: RunningEmulator;
  again: (runId: string) => Promise<RunReport>;
}> {
  let emulator: RunningEmulator | undefined;
  let ports: GooglePorts | undefined;
  afterEach(async () => {
    await ports?.close();
    await emulator?.stop();
    ports = undefined;
    emulator = undefined;
  });
  return async (fleet, policy, { runId, deadlineMs = 60_000, faults, emulator: settings }) => {
    // No call comes before the emulator is started and set below.
    const hook: FaultHook | undefined = faults
      ? (call) => (emulator ? faults(call, emulator) : undefined)
      : undefined;
    const started = await startEmulator({
      ...settings,
      fleet,
      speed: 'manual',
      ...(hook ? { faults: hook } : {}),
    });
    emulator = started;
    const google = createGooglePorts({
      emulatorHost: started.host,
      emulatorOperationPollMs: 20,
    });
    ports = google;
    // One store for the runs on this emulator: one governor, whose later runs see its own stamps.
    const store = createMemoryStateStore();
    const runOnce = (id: string) =>
      reconcileReport(
        policy,
        { ports: google, store, clock: () => started.now().getTime() },
        { runId: id, deadlineMs, writerId: 'me' },
      );
    const report = await runOnce(runId);
    return { report, emulator: started, again: runOnce };
  };
}
