/**
 * Paces writes per region under the Admin API's write rate (about 30–60 writes per minute per
 * region, GCP-FACTS): each region hands out write slots at most `perMinute` a minute, spaced
 * evenly. The sleep is injected so that tests and the simulator need not wait.
 */
export interface Pacer {
  /** Resolves when the next write to `region` may start. */
  slot(region: string): Promise<void>;
}

export function createPacer(
  perMinute: number,
  now: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Pacer {
  const gap = 60_000 / perMinute;
  const next = new Map<string, number>();
  return {
    slot: async (region) => {
      const t = now();
      const at = Math.max(t, next.get(region) ?? t);
      next.set(region, at + gap);
      if (at > t) await sleep(at - t);
    },
  };
}
