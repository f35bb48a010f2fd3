/**
 * Virtual time in which waits overlap, as timers do: once every task waits, the earliest sleeper
 * wakes and the clock moves to its time (a sleep that moved the clock at once would make
 * concurrent waits add up). For the pacer's waits and for writes that take time.
 *
 * A task that waits on real I/O (a call to the emulator) is not a sleeper, and the clock cannot
 * see it: `busy`, when given, says such calls are in flight, and the clock does not move until
 * they are answered (a call that takes a few real milliseconds takes no virtual time).
 */
interface VirtualTime {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export function virtualTime(start: number, busy: () => boolean = () => false): VirtualTime {
  let t = start;
  const sleepers: { at: number; wake: () => void }[] = [];
  const next = () => {
    if (sleepers.length === 0) return;
    if (busy()) {
      setTimeout(next, 1);
      return;
    }
    sleepers.sort((a, b) => a.at - b.at);
    const first = sleepers.shift();
    if (!first) return;
    t = Math.max(t, first.at);
    first.wake();
  };
  return {
    now: () => t,
    sleep: (ms) =>
      new Promise<void>((wake) => {
        sleepers.push({ at: t + ms, wake });
        setImmediate(next);
      }),
  };
}
