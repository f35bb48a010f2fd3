/**
 * Paces writes per region under the Cloud Run Admin API's write quota, and only under it.
 *
 * The quota is a number of write requests per minute per project and region: Cloud Run's
 * quotas page (https://cloud.google.com/run/quotas) says its quotas include the Admin API's rate
 * limits, and Cloud Run's 429 names them "Read requests per minute per region"
 * (ReadPerMinutePerProjectRegion, quoted in googleapis/repo-automation-bots#4469) and, for
 * writes, "Write requests per minute per region" (WritePerMinutePerProjectRegion, metric
 * `run.googleapis.com/write_regional`). Google's pages we could read do not state the default
 * value; public reports give 30 (GCP-FACTS: 30–60), so the policy's `limits.writesPerMinute`
 * defaults to 30, and a project with a raised quota may raise it.
 *
 * A per-minute quota allows a burst: so a region hands out up to `perMinute` write slots in any
 * 60 s, at once, and only the slot beyond waits until the oldest of the window is a minute old.
 * A run with fewer writes than that is not slowed at all. Other writers (deploys) spend the same
 * quota: the adapter retries a 429 (RESOURCE_EXHAUSTED) with backoff, which sends nothing twice.
 * The sleep is injected so that tests and the simulator need not wait.
 */
export interface Pacer {
  /** Resolves when the next write to `region` may start. */
  slot(region: string): Promise<void>;
}

const MINUTE_MS = 60_000;

export function createPacer(
  perMinute: number,
  now: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Pacer {
  const budget = Math.max(1, Math.floor(perMinute));
  /** Per region, the start times of the slots handed out (at most `budget`, oldest first). */
  const given = new Map<string, number[]>();
  return {
    slot: async (region) => {
      const times = given.get(region) ?? [];
      given.set(region, times);
      const t = now();
      while (times.length > 0 && (times[0] ?? t) <= t - MINUTE_MS) times.shift();
      // The slot starts when the window has room: now, or a minute after the slot it replaces.
      const at = times.length < budget ? t : (times[times.length - budget] ?? t) + MINUTE_MS;
      times.push(at);
      if (at > t) await sleep(at - t);
    },
  };
}
