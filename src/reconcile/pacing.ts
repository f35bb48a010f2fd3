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
 * deadline is not waited for. A write that then waited for its place past its slot's time checks
 * its slot again as it starts (`start`): else the writes of one minute, held at the gate, would
 * start beside the next minute's, more than `perMinute` in 60 s. Other writers (deploys) spend the same
 * quota: the adapter retries a 429 (RESOURCE_EXHAUSTED) with backoff, which sends nothing twice.
 * The sleep is injected so that tests and the simulator need not wait.
 */
export interface Pacer {
  /**
   * Waits until the next write to `region` may start and resolves to the time of its slot;
   * resolves null at once, taking nothing, when that is later than `notAfter` (the run deadline:
   * a write that could not start by then is skipped now rather than waited for).
   */
  slot(region: string, notAfter: number): Promise<number | null>;
  /**
   * Whether the write given the slot at `slotAt` may start now. Yes when it is on time; one that
   * starts later (it waited for a place in flight) moves its slot to now, if the minute's quota
   * allows it; else it gives its slot back, and false: its caller takes another slot.
   */
  start(region: string, slotAt: number): boolean;
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
/**
 * A write that starts this soon after its slot's time is on time: a timer fires a little late, and
 * so does a write whose place in flight was free. One later than this waited for its place.
 */
const ON_TIME_MS = 1_000;

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
  /**
   * Whether one more slot at `t` keeps every 60 s that holds it within the budget, the slots
   * booked for later included: such a window starts at `t` or at a slot of the minute before.
   */
  const fits = (times: readonly number[], t: number): boolean =>
    [t, ...times.filter((x) => x > t - MINUTE_MS && x < t)].every(
      (from) => times.filter((x) => x >= from && x < from + MINUTE_MS).length < budget,
    );
  const record = (times: number[], at: number, count: number): void => {
    for (let i = 0; i < count; i++) times.push(at);
    times.sort((a, b) => a - b);
  };
  /** Takes `count` slots of `region` that start together: when they start, or null (none taken). */
  const book = async (region: string, count: number, notAfter: number): Promise<number | null> => {
    const t = now();
    const times = slotsOf(region, t);
    const at = startOf(times, count, t);
    if (at > notAfter) return null;
    record(times, at, count);
    if (at > t) await sleep(at - t);
    return at;
  };
  const reserve = async (region: string, count: number, notAfter: number): Promise<number> => {
    const n = Math.min(Math.max(0, Math.floor(count)), budget);
    if (n === 0) return 0;
    return (await book(region, n, notAfter)) === null ? 0 : n;
  };
  return {
    slot: (region, notAfter) => book(region, 1, notAfter),
    start: (region, slotAt) => {
      const t = now();
      if (t <= slotAt + ON_TIME_MS) return true;
      const times = slotsOf(region, t);
      const mine = times.indexOf(slotAt);
      if (mine >= 0) times.splice(mine, 1);
      if (!fits(times, t)) return false;
      record(times, t, 1);
      return true;
    },
    reserve,
    take: (region) => {
      const t = now();
      record(slotsOf(region, t), t, 1);
    },
  };
}
