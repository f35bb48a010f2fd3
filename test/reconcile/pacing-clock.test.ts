import { describe, expect, it } from 'vitest';
import { createPacer, type Place } from '../../src/reconcile/pacing.js';

/**
 * The pacer on a wall clock that steps back (an NTP step, a virtual machine's clock corrected):
 * the calls it counted stay as old as they are, so it neither waits for the clock to come back to
 * them (a stall as long as the step) nor forgets them (a burst over the quota).
 */

const MINUTE = 60_000;
const anyPlace: Place = (task) => task();

/** A wall clock that moves with the sleeps and can be stepped; `real` is the time that passed. */
function steppingClock() {
  let wall = 0;
  let real = 0;
  const sleeps: number[] = [];
  return {
    now: () => wall,
    sleep: (ms: number) => {
      sleeps.push(ms);
      wall += ms;
      real += ms;
      return Promise.resolve();
    },
    step: (ms: number) => {
      wall += ms;
    },
    real: () => real,
    sleeps,
  };
}

describe('the pacer under a clock that steps back', () => {
  for (const back of [30_000, 3_600_000]) {
    it(`by ${back / 1000} s: no wait past a minute, and no 60 s holds more than perMinute starts`, async () => {
      const clock = steppingClock();
      const pacer = createPacer(2, clock.now, clock.sleep);
      const starts: number[] = [];
      const call = () =>
        pacer.run('p/r', anyPlace, async () => starts.push(clock.real()), Infinity);
      await call();
      await call();
      clock.step(-back);
      for (let i = 0; i < 4; i += 1) await call();
      expect(starts).toHaveLength(6);
      expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(MINUTE);
      for (const from of starts)
        expect(starts.filter((t) => t >= from && t < from + MINUTE).length).toBeLessThanOrEqual(2);
      // Paced as without the step: two a minute.
      expect(starts).toEqual([0, 0, MINUTE, MINUTE, 2 * MINUTE, 2 * MINUTE]);
    });
  }

  it('a reserve after the step keeps its slots, and the deadline keeps to the wall clock', async () => {
    const clock = steppingClock();
    const pacer = createPacer(1, clock.now, clock.sleep);
    await pacer.run('p/r', anyPlace, async () => {}, Infinity);
    clock.step(-3_600_000);
    // The next slot is a minute after the call made, whatever the wall clock reads now: past a
    // deadline 30 s away on the wall clock, so none is taken and nothing waits.
    expect(await pacer.reserve('p/r', 1, clock.now() + 30_000)).toMatchObject({ slots: 0 });
    expect(clock.sleeps).toEqual([]);
    const reserved = await pacer.reserve('p/r', 1, clock.now() + 120_000);
    expect(reserved.slots).toBe(1);
    expect(clock.sleeps).toEqual([MINUTE]);
    expect(
      await pacer.runReserved('p/r', reserved.at, anyPlace, async () => 'made', clock.now() + 1),
    ).toEqual({ value: 'made' });
  });
});
