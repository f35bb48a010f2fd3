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

/**
 * A run's wall clock that stands still until the run stores its planned events, the step just
 * before its writes; from then on it runs, with `writingMs` of the run's `deadlineMs` left. A test
 * of what the deadline does to the writes thus gets there however slow this machine is at
 * observing and planning: on the wall clock alone, a loaded machine spent the whole of a short
 * deadline before the writes, and the run sent none. Pass `store` and `wallClock` to the run.
 */
export function clockStillUntilWrites(deadlineMs: number, writingMs: number) {
  const began = Date.now();
  let writingSince: number | null = null;
  const inner = createMemoryStateStore();
  const store: typeof inner = {
    ...inner,
    putOutbox: (...args) => {
      writingSince ??= Date.now();
      return inner.putOutbox(...args);
    },
  };
  return {
    store,
    wallClock: (): number =>
      writingSince === null ? began : began + deadlineMs - writingMs + (Date.now() - writingSince),
    /** Whether the run came to its writes. */
    writing: (): boolean => writingSince !== null,
  };
}
