import { afterEach } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import type { Policy } from '../../src/core/policy.js';
import {
  startEmulator,
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
 * the run's report and the emulator to look at. Call it once at the top of a test file: whatever
 * a test started is stopped once the test ends.
 */
export function emulatorRuns(): (
  fleet: FleetInput,
  policy: Policy,
  run: { runId: string; deadlineMs?: number; faults?: FaultHook },
) => Promise<{ report: RunReport; emulator: RunningEmulator }> {
  let emulator: RunningEmulator | undefined;
  let ports: GooglePorts | undefined;
  afterEach(async () => {
    await ports?.close();
    await emulator?.stop();
    ports = undefined;
    emulator = undefined;
  });
  return async (fleet, policy, { runId, deadlineMs = 60_000, faults }) => {
    const started = await startEmulator({ fleet, speed: 'manual', ...(faults ? { faults } : {}) });
    emulator = started;
    ports = createGooglePorts({ emulatorHost: started.host, emulatorOperationPollMs: 20 });
    const report = await reconcileReport(
      policy,
      { ports, clock: () => started.now().getTime() },
      { runId, deadlineMs, writerId: 'me' },
    );
    return { report, emulator: started };
  };
}
