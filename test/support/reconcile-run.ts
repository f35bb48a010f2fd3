import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import type { Policy } from '../../src/core/policy.js';
import { memoryLogger } from '../../src/log.js';
import {
  reconcile,
  RunFailedError,
  type ReconcileDeps,
  type ReconcileOptions,
  type RunReport,
} from '../../src/reconcile/reconcile.js';

/**
 * One reconcile run and its report, whether it ended well or failed (a failed run throws
 * RunFailedError, which carries the report; any other error is the test's to see). The deps a
 * test does not set are the quiet ones: a memory state store, no alert sink, a memory log, no
 * waiting, and `now` from `clock` (the emulator's or the model's virtual time).
 */
export async function reconcileReport(
  policy: Policy,
  deps: Pick<ReconcileDeps, 'ports'> & Partial<ReconcileDeps> & { clock: () => number },
  options: ReconcileOptions,
): Promise<RunReport> {
  const { clock, ...rest } = deps;
  try {
    return await reconcile(
      policy,
      {
        store: createMemoryStateStore(),
        sink: null,
        log: memoryLogger(),
        now: async () => clock(),
        sleep: async () => {},
        ...rest,
      },
      options,
    );
  } catch (e) {
    if (e instanceof RunFailedError) return e.report;
    throw e;
  }
}
