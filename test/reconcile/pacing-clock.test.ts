import { describe, expect, it } from 'vitest';
import { createPacer, type Place } from '../../src/reconcile/pacing.js';
import { busiestMinute } from '../support/paced-fleet.js';
import { virtualTime } from '../support/virtual-time.js';

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

  it('a reserve after the step keeps its slots, and the deadline keeps to the clock given', async () => {
    const clock = steppingClock();
    const pacer = createPacer(1, clock.now, clock.sleep);
    await pacer.run('p/r', anyPlace, async () => {}, Infinity);
    clock.step(-3_600_000);
    // The next slot is a minute after the call made, whatever the wall clock reads now: past a
    // deadline 30 s away on the clock given (the one clock of this world), so none is taken and
    // nothing waits.
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

/**
 * The pacer, given the time elapsed, beside a run's wall clock that jumps (an NTP step, a virtual
 * machine resumed) while the time elapsed does not: the calls it counted are as old as the time elapsed since, not as the
 * wall clock says, so no real 60 s holds more than `perMinute` starts; the deadline (`notAfter`)
 * is a time elapsed too, which no jump of the wall clock moves.
 */
function jumpingClock() {
  const time = virtualTime(0);
  let jumped = 0;
  return {
    /** The wall clock: the time elapsed, and every jump. */
    wall: () => time.now() + jumped,
    /** The time elapsed. */
    elapsed: time.now,
    sleep: time.sleep,
    jump: (ms: number) => {
      jumped += ms;
    },
  };
}

describe('the pacer under a wall clock that jumps', () => {
  for (const jump of [45_000, 600_000, -3_600_000]) {
    it(`by ${jump / 1000} s in the middle of a burst: no real 60 s holds more than perMinute starts`, async () => {
      const clock = jumpingClock();
      const pacer = createPacer(4, clock.elapsed, clock.sleep);
      const starts: number[] = [];
      const made = await Promise.all(
        Array.from({ length: 12 }, () =>
          pacer.run(
            'p/r',
            anyPlace,
            async () => {
              starts.push(clock.elapsed());
              if (starts.length === 2) clock.jump(jump);
            },
            Infinity,
          ),
        ),
      );
      expect(made.every((m) => m !== null)).toBe(true);
      expect(busiestMinute(starts), starts.join(', ')).toBeLessThanOrEqual(4);
      // Paced as without the jump: four a minute, none of them kept waiting longer.
      expect(starts).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2].map((m) => m * MINUTE));
    });
  }

  for (const jump of [45_000, 600_000])
    it(`by ${jump / 1000} s between two calls: the calls after it wait for the minute`, async () => {
      const clock = jumpingClock();
      const pacer = createPacer(2, clock.elapsed, clock.sleep);
      const starts: number[] = [];
      const call = () =>
        pacer.run('p/r', anyPlace, async () => starts.push(clock.elapsed()), Infinity);
      await call();
      await call();
      clock.jump(jump);
      await Promise.all(Array.from({ length: 4 }, call));
      expect(starts).toEqual([0, 0, 1, 1, 2, 2].map((m) => m * MINUTE));
    });

  it('a jump forward does not bring the deadline nearer: the calls after it start up to it', async () => {
    const clock = jumpingClock();
    const pacer = createPacer(2, clock.elapsed, clock.sleep);
    const notAfter = clock.elapsed() + 120_000;
    const starts: number[] = [];
    const call = () =>
      pacer.run('p/r', anyPlace, async () => starts.push(clock.elapsed()), notAfter);
    await call();
    await call();
    clock.jump(600_000);
    const made = await Promise.all(Array.from({ length: 6 }, call));
    // Two a minute up to the deadline, 120 s after the start on the time elapsed; none after it.
    expect(starts).toEqual([0, 0, 1, 1, 2, 2].map((m) => m * MINUTE));
    expect(made.filter((m) => m === null)).toHaveLength(2);
    expect(await pacer.reserve('p/r', 1, notAfter)).toMatchObject({ slots: 0 });
  });

  it('a slot past the deadline is not waited for, whatever the wall clock reads', async () => {
    const clock = jumpingClock();
    const pacer = createPacer(2, clock.elapsed, clock.sleep);
    const notAfter = clock.elapsed() + 45_000;
    await pacer.run('p/r', anyPlace, async () => {}, notAfter);
    await pacer.run('p/r', anyPlace, async () => {}, notAfter);
    clock.jump(-3_600_000);
    // The next slot, a minute after the first calls, comes after the deadline: a wall clock an
    // hour behind does not make room for it.
    expect(await pacer.run('p/r', anyPlace, async () => 'made', notAfter)).toBeNull();
    expect(await pacer.reserve('p/r', 1, notAfter)).toMatchObject({ slots: 0 });
    expect(clock.elapsed()).toBe(0);
    // A deadline that leaves room for it: the slot a minute after the first calls.
    const reserved = await pacer.reserve('p/r', 1, clock.elapsed() + 61_000);
    expect(reserved.slots).toBe(1);
    expect(clock.elapsed()).toBe(MINUTE);
    expect(
      await pacer.runReserved(
        'p/r',
        reserved.at,
        anyPlace,
        async () => 'made',
        clock.elapsed() + 1,
      ),
    ).toEqual({ value: 'made' });
    // Once the deadline has passed on the time elapsed, nothing starts, however far back the wall
    // clock reads.
    clock.jump(-3_600_000);
    expect(
      await pacer.runReserved(
        'p/r',
        reserved.at,
        anyPlace,
        async () => 'made',
        clock.elapsed() - 1,
      ),
    ).toBeNull();
  });
});
