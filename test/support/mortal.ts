import type { StateStore } from '../../src/ports/index.js';

/**
 * A process that dies mid-run, in-process: `target` stops answering anything once `dead()` is
 * true (every later call pends forever: no finally, no cleanup, the lease left held), as after a
 * SIGKILL.
 */
export function mortal<T extends object>(target: T, dead: () => boolean): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) =>
        dead() ? new Promise(() => {}) : (v as (...a: unknown[]) => unknown).apply(t, args);
    },
  });
}

/** The store's methods bound to it, as a plain object that {@link mortal} can wrap. */
export function pick(s: StateStore): StateStore {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(s) as (keyof StateStore)[]) {
    const v = s[k];
    out[k] = typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(s) : v;
  }
  return out as unknown as StateStore;
}
