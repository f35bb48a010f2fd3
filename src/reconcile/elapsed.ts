/**
 * The time elapsed, on which a run's writes are paced (pacing.ts), its deadline and durations
 * counted (run.ts), and an organisation's dispatch and unit count their deadlines (org/):
 * `elapsed`, never the wall clock. A wall clock that steps (an NTP step, a clock corrected, a
 * virtual machine resumed) would change the age of the calls counted: a step forward would make
 * them look a minute old at once, and let a second minute's calls start in the
 * same real minute (over the quota); a step back would make them look as if they were to come,
 * so that the next slot waited as long as the step. The same step would lengthen or shorten a
 * run. By default it is performance.now(), a time "not subject to system clock skew or
 * adjustments" (High Resolution Time, https://www.w3.org/TR/hr-time-2/); a clock that does not run
 * while the machine is suspended makes the calls counted look younger than they are, so the
 * pacer waits longer, never less. A wall clock given without it is a virtual world's (tests, the
 * simulator), one clock that its `sleep` moves: that one counts the time elapsed too. Either way
 * the time is taken forward only: a reading that goes back (`behind`, added to every later
 * reading) leaves the calls counted as old as they are, and the time left to a run as short.
 */
export function elapsedClock(elapsed?: () => number, wall?: () => number): () => number {
  const read = elapsed ?? wall ?? (() => performance.now());
  let behind = 0;
  let last = -Infinity;
  return (): number => {
    const t = read() + behind;
    if (t < last) behind += last - t;
    last = Math.max(last, t);
    return last;
  };
}
