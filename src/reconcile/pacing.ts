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
 * A run with fewer writes than that is not slowed at all. A write waits for its region's slot
 * before it takes one of the run's `limits.writeConcurrency` places (reconcile/act.ts), so one
 * region's backlog never holds back another region's writes; a slot that would come after the run
 * deadline is not waited for. Other writers (deploys) spend the same
 * quota: the adapter retries a 429 (RESOURCE_EXHAUSTED) with backoff, which sends nothing twice.
 * The sleep is injected so that tests and the simulator need not wait.
 */
export interface Pacer {
  /**
   * Waits until the next write to `region` may start and resolves true; resolves false at once,
   * taking nothing, when that is later than `notAfter` (the run deadline: a write that could not
   * start by then is skipped now rather than waited for).
   */
  slot(region: string, notAfter: number): Promise<boolean>;
  /**
   * Up to `count` slots of `region` that start together (never more than a minute's quota),
   * waiting until they can; resolves to how many were taken: 0 when they could not start by
   * `notAfter` (nothing taken, nothing waited). A caller that must not wait between a read and
   * its writes takes the slots first, then reads, then writes.
   */
  reserve(region: string, count: number, notAfter: number): Promise<number>;
  /**
   * A slot now, whatever the quota's state, counted for the writes after it: for a write that must
   * not wait (lowering back a raise that left its pool over quota). Were the quota spent, Cloud
   * Run would answer 429, which the adapter retries with backoff.
   */
  take(region: string): void;
}

const MINUTE_MS = 60_000;

export function createPacer(
  perMinute: number,
  now: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Pacer {
  const budget = Math.max(1, Math.floor(perMinute));
  /** Per region, the start times of the slots handed out, in order (a minute old: dropped). */
  const given = new Map<string, number[]>();
  const slotsOf = (region: string, t: number): number[] => {
    const times = given.get(region) ?? [];
    given.set(region, times);
    while (times.length > 0 && (times[0] ?? t) <= t - MINUTE_MS) times.shift();
    return times;
  };
  /**
   * When `count` more slots may start together: now, or a minute after the slot the last of them
   * replaces (the window before it then holds at most `budget`).
   */
  const startOf = (times: readonly number[], count: number, t: number): number => {
    const over = times.length + count - budget;
    return over <= 0 ? t : Math.max(t, (times[over - 1] ?? t) + MINUTE_MS);
  };
  const record = (times: number[], at: number, count: number): void => {
    for (let i = 0; i < count; i++) times.push(at);
    times.sort((a, b) => a - b);
  };
  const reserve = async (region: string, count: number, notAfter: number): Promise<number> => {
    const n = Math.min(Math.max(0, Math.floor(count)), budget);
    if (n === 0) return 0;
    const t = now();
    const times = slotsOf(region, t);
    const at = startOf(times, n, t);
    if (at > notAfter) return 0;
    record(times, at, n);
    if (at > t) await sleep(at - t);
    return n;
  };
  return {
    slot: async (region, notAfter) => (await reserve(region, 1, notAfter)) === 1,
    reserve,
    take: (region) => {
      const t = now();
      record(slotsOf(region, t), t, 1);
    },
  };
}
