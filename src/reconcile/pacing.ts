/**
 * Paces calls per key under a per-minute quota, and only under it: Cloud Run Admin API writes
 * keyed `project/region` (reconcile/act.ts), and `governor check`'s reads the same way
 * (reconcile/preflight.ts).
 *
 * Cloud Run's write quota is a number of write requests per minute per project and region: Cloud
 * Run's quotas page (https://cloud.google.com/run/quotas) says its quotas include the Admin API's
 * rate limits, and Cloud Run's 429 names them "Read requests per minute per region"
 * (ReadPerMinutePerProjectRegion, charged to the consumer project: quoted in
 * googleapis/repo-automation-bots#4469) and, for writes, "Write requests per minute per region"
 * (WritePerMinutePerProjectRegion, metric `run.googleapis.com/write_regional`). So two projects
 * in one region each have their own budget. Google's pages we could read do not state the default
 * value; public reports give 30 to 60 writes a minute, so the policy's `limits.writesPerMinute`
 * defaults to 30, and a project with a raised quota may raise it.
 *
 * A per-minute quota allows a burst: so a key hands out up to `perMinute` slots in any 60 s, at
 * once, and only the slot beyond waits until the oldest of the window is a minute old. A run with
 * fewer calls than that is not slowed at all.
 *
 * The paced call (`run`) is the one way a call goes out under the pacer. It waits for its key's
 * slot before it takes one of its caller's places (its concurrency limit), so one key's backlog
 * never holds back another key's calls; a slot that would come after `notAfter` (the run
 * deadline) is not waited for, and a call whose place comes after it is not made. With its place,
 * it starts only if the quota allows it now, and the pacer counts it at the time it starts, not
 * at its slot's: a call may get its place late (the places are held by other calls, and granted
 * in any order), and one counted at its slot while it started later would let two minutes' calls
 * fall in one 60 s (the writes of one minute, held at the gate for 0.9 s, started beside the next
 * minute's: four in 60 s at two a minute). Counted when they start, each checked against every
 * start counted before it, no 60 s (from any instant) holds more than `perMinute` starts of a
 * key, whatever order the places come in. A call the quota does not allow then gives its slot
 * back, leaves its place, and takes another slot.
 *
 * The slots not yet started count too, so that who goes first is fair: a call that starts within
 * ON_TIME_MS of its slot is on time and goes before the slots booked after its own (they were
 * booked on the assumption that it starts then: a timer fires a few milliseconds late, and a
 * burst's calls would otherwise all give way to the next minute's); a later one waited for its
 * place, and goes after every slot already booked.
 *
 * Slots taken together before a read (`reserve`, for raises that must not wait after the read
 * they are decided on) are counted the same way: each call when it starts (`runReserved`); one
 * the quota no longer allows then (the read took long, and slots were booked since) is not made,
 * and is decided again on a later read. Only `take` counts a call without asking: lowering back a
 * raise must not wait.
 *
 * A minute is a minute of the time elapsed, not of the wall clock: a wall clock that jumps
 * forward would otherwise make the calls of the last minute look a minute old at once, and a
 * second minute's calls start within one real minute, beyond the quota. The run deadline
 * (`notAfter`) is a time of that clock too (the run's, reconcile/run.ts): no step back of the wall
 * clock moves it; one forward past the lease's end brings it nearer (deadlineClock), and each
 * call checks it again as it starts.
 *
 * Other writers (deploys) spend the same quota: the adapter retries a 429 (RESOURCE_EXHAUSTED)
 * with backoff, which sends nothing twice. The clocks and the sleep are injected so that tests
 * and the simulator need not wait.
 */

import { elapsedClock } from './elapsed.js';

export interface Pacer {
  /**
   * `call` under the quota of `key`: waits for a slot (holding no place), then for a `place`,
   * then starts it there if the quota allows it now, counted now; else takes another slot.
   * Resolves `{ value }` with what the call answered, or null, the call not made, when its slot
   * would come after `notAfter` or its place came after it.
   */
  run<T>(
    key: string,
    place: Place,
    call: () => Promise<T>,
    notAfter: number,
  ): Promise<{ value: T } | null>;
  /**
   * The first step of `run`: waits until the next call of `key` may start and resolves to the
   * time of its slot; resolves null at once, taking nothing, when that is later than `notAfter`.
   */
  slot(key: string, notAfter: number): Promise<number | null>;
  /**
   * The last step of `run`: whether the call given the slot at `slotAt` may start now. Yes: it is
   * counted now, in place of its slot. No: its slot is given back, and its caller takes another.
   */
  start(key: string, slotAt: number): boolean;
  /**
   * Up to `count` slots of `key` that start together (never more than a minute's quota),
   * waiting until they can; resolves to how many were taken and their time: none when they could
   * not start by `notAfter` (nothing taken, nothing waited). A caller that must not wait between
   * a read and its writes takes the slots first, then reads, then makes each write with
   * `runReserved`.
   */
  reserve(key: string, count: number, notAfter: number): Promise<Reserved>;
  /**
   * `call` on a slot `reserve` took at `slotAt`, without waiting for another: in its `place`, it
   * starts if the quota allows it now, counted now, as in `run`. Resolves null, the call not
   * made and its slot given back, when the quota does not allow it (it started too long after
   * its slot, beside slots booked since) or its place came after `notAfter`.
   */
  runReserved<T>(
    key: string,
    slotAt: number,
    place: Place,
    call: () => Promise<T>,
    notAfter: number,
  ): Promise<{ value: T } | null>;
  /**
   * A slot now, whatever the quota's state, counted for the calls after it: for a write that must
   * not wait (lowering back a raise that left its pool over quota). Were the quota spent, Cloud
   * Run would answer 429, which the adapter retries with backoff.
   */
  take(key: string): void;
}

/**
 * Slots taken together by `reserve`: how many (0: none), and the time they start, on the pacer's
 * own clock (the time elapsed): to be given back to it (`runReserved`), not read as a wall time.
 */
export interface Reserved {
  slots: number;
  at: number;
}

/** One of a caller's places (its concurrency limit): runs `task` once a place is free. */
export type Place = <T>(task: () => Promise<T>) => Promise<T>;

const MINUTE_MS = 60_000;
/**
 * A call that starts this soon after its slot's time is on time: a timer fires a little late, and
 * so does a call whose place was free. One later than this waited for its place.
 */
const ON_TIME_MS = 1_000;

/** A slot handed out and not yet started (`booked`), or a call counted at its time. */
interface Entry {
  at: number;
  booked: boolean;
}

/**
 * A pacer on the time elapsed, `clock` (see {@link elapsedClock}; default performance.now(); a
 * virtual world's one clock, which its `sleep` moves, in tests and the simulator). Every
 * `notAfter` given to it is a time of that same clock, read on it.
 */
export function createPacer(
  perMinute: number,
  clock: () => number = () => performance.now(),
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Pacer {
  const budget = Math.max(1, Math.floor(perMinute));
  const now = elapsedClock(clock);
  /**
   * A time of the clock given (`notAfter`: the run deadline) on the pacer's, from `t`, the
   * pacer's time now: as far after `t` as it is after the clock's reading now. The same unless
   * that clock went back, as a virtual world's one clock may (the run's own never does:
   * reconcile/run.ts).
   */
  const onClock = (at: number, t: number): number => t + (at - clock());
  /** Per key, the slots handed out and the starts counted, in time order (a minute old: dropped). */
  const entries = new Map<string, Entry[]>();
  const entriesOf = (key: string, t: number): Entry[] => {
    const list = entries.get(key) ?? [];
    entries.set(key, list);
    while (list.length > 0 && (list[0]?.at ?? t) <= t - MINUTE_MS) list.shift();
    return list;
  };
  /**
   * When `count` more slots may start together: now, or a minute after the entry the last of
   * them replaces (the window before it then holds at most `budget`).
   */
  const startOf = (list: readonly Entry[], count: number, t: number): number => {
    const over = list.length + count - budget;
    return over <= 0 ? t : Math.max(t, (list[over - 1]?.at ?? t) + MINUTE_MS);
  };
  /**
   * Whether one more start at `t` keeps every 60 s that holds it within the budget, counting
   * `times`: such a window starts at `t` or at one of them in the minute before.
   */
  const fits = (times: readonly number[], t: number): boolean =>
    [t, ...times.filter((x) => x > t - MINUTE_MS && x < t)].every(
      (from) => times.filter((x) => x >= from && x < from + MINUTE_MS).length < budget,
    );
  const record = (list: Entry[], at: number, count: number, booked: boolean): void => {
    for (let i = 0; i < count; i++) list.push({ at, booked });
    list.sort((a, b) => a.at - b.at);
  };
  /** Takes `count` slots of `key` that start together: when they start, or null (none taken). */
  const book = async (key: string, count: number, notAfter: number): Promise<number | null> => {
    const t = now();
    const list = entriesOf(key, t);
    const at = startOf(list, count, t);
    if (at > onClock(notAfter, t)) return null;
    record(list, at, count, true);
    if (at > t) await sleep(at - t);
    return at;
  };
  /** Gives back a slot booked at `slotAt` and not started. */
  const release = (key: string, slotAt: number): void => {
    const list = entries.get(key) ?? [];
    const mine = list.findIndex((e) => e.booked && e.at === slotAt);
    if (mine >= 0) list.splice(mine, 1);
  };
  const slot = (key: string, notAfter: number) => book(key, 1, notAfter);
  const start = (key: string, slotAt: number): boolean => {
    const t = now();
    release(key, slotAt);
    const list = entriesOf(key, t);
    // Every start so far counts; so do the slots not yet started that go first: on time, the
    // ones booked for no later than its own; late, all of them.
    const onTime = t <= slotAt + ON_TIME_MS;
    const counted = list.filter((e) => !e.booked || !onTime || e.at <= slotAt).map((e) => e.at);
    if (!fits(counted, t)) return false;
    record(list, t, 1, false);
    return true;
  };
  /** In its place, the call of the slot at `slotAt`: made, or why not. */
  const startIn = <T>(
    key: string,
    slotAt: number,
    place: Place,
    call: () => Promise<T>,
    notAfter: number,
  ): Promise<{ value: T } | 'late' | 'again'> =>
    place(async () => {
      if (clock() > notAfter) {
        release(key, slotAt);
        return 'late' as const;
      }
      if (!start(key, slotAt)) return 'again' as const;
      return { value: await call() };
    });
  return {
    run: async (key, place, call, notAfter) => {
      for (;;) {
        const slotAt = await slot(key, notAfter);
        if (slotAt === null) return null;
        const done = await startIn(key, slotAt, place, call, notAfter);
        if (done === 'late') return null;
        if (done !== 'again') return done;
      }
    },
    runReserved: async (key, slotAt, place, call, notAfter) => {
      const done = await startIn(key, slotAt, place, call, notAfter);
      return typeof done === 'string' ? null : done;
    },
    slot,
    start,
    reserve: async (key, count, notAfter) => {
      const n = Math.min(Math.max(0, Math.floor(count)), budget);
      const at = n === 0 ? null : await book(key, n, notAfter);
      return at === null ? { slots: 0, at: now() } : { slots: n, at };
    },
    take: (key) => {
      const t = now();
      record(entriesOf(key, t), t, 1, false);
    },
  };
}
