import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPacer, type Place } from '../../src/reconcile/pacing.js';
import { fcParams } from '../support/fleet-arbitrary.js';
import { virtualTime } from '../support/virtual-time.js';
import { busiestMinute } from '../support/paced-fleet.js';

/**
 * The paced call counts a call when it starts. Its places are granted in an order the pacer does
 * not choose (here: any waiting call, picked by the property's seed) and held for any time,
 * around the one-second tolerance of an on-time start included: whatever the order, no 60 s of
 * a key, from any instant, holds more than `perMinute` starts, and every call is made.
 */

/** At most `n` tasks at once; a place that frees goes to the waiting task `pick` chooses. */
function placesInAnyOrder(n: number, pick: (waiting: number) => number): Place {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active < n) active += 1;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await task();
    } finally {
      const [next] = waiting.length > 0 ? waiting.splice(pick(waiting.length), 1) : [];
      if (next) next();
      else active -= 1;
    }
  };
}

const HOLDS = [0, 1, 300, 900, 999, 1_000, 1_001, 1_500, 20_000, 59_000];

describe('the paced call', () => {
  it('never lets more than perMinute calls of a key start in any 60 s, whatever order the places come in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          perMinute: fc.integer({ min: 1, max: 5 }),
          places: fc.integer({ min: 1, max: 4 }),
          calls: fc.array(
            fc.record({
              key: fc.constantFrom('p/a', 'p/b', 'q/a'),
              arrives: fc.constantFrom(0, 0, 0, 500, 30_000, 61_000),
              holds: fc.constantFrom(...HOLDS),
            }),
            { minLength: 1, maxLength: 24 },
          ),
          picks: fc.infiniteStream(fc.nat()),
        }),
        async ({ perMinute, places, calls, picks }) => {
          const time = virtualTime(0);
          const pacer = createPacer(perMinute, time.now, time.sleep);
          const place = placesInAnyOrder(places, (n) => (picks.next().value as number) % n);
          const starts = new Map<string, number[]>();
          const made = await Promise.all(
            calls.map(async (c) => {
              if (c.arrives > 0) await time.sleep(c.arrives);
              return pacer.run(
                c.key,
                place,
                async () => {
                  starts.set(c.key, [...(starts.get(c.key) ?? []), time.now()]);
                  await time.sleep(c.holds);
                },
                Infinity,
              );
            }),
          );
          expect(made.every((m) => m !== null)).toBe(true);
          for (const [key, at] of starts)
            expect(busiestMinute(at), `starts of ${key}: ${at.join(', ')}`).toBeLessThanOrEqual(
              perMinute,
            );
        },
      ),
      fcParams(200),
    );
  });

  it('does not slow a run with no more calls than the quota', async () => {
    const time = virtualTime(0);
    const pacer = createPacer(4, time.now, time.sleep);
    const place = placesInAnyOrder(4, () => 0);
    const starts: number[] = [];
    await Promise.all(
      [1, 2, 3, 4].map(() =>
        pacer.run('p/a', place, async () => starts.push(time.now()), Infinity),
      ),
    );
    expect(starts).toEqual([0, 0, 0, 0]);
  });

  it('skips a call whose slot, or place, would come after notAfter, and waits for neither', async () => {
    const time = virtualTime(0);
    const pacer = createPacer(1, time.now, time.sleep);
    let held = (): void => {};
    const place = placesInAnyOrder(1, () => 0);
    // The one place is held until 40 s; the minute's one slot is taken by the call holding it.
    const first = pacer.run('p/a', place, () => new Promise<void>((r) => (held = r)), Infinity);
    // Its key's next slot would be at 60 s, after 30 s: not waited for.
    expect(await pacer.run('p/a', place, async () => 'a', 30_000)).toBeNull();
    expect(time.now()).toBe(0);
    const other = pacer.run('p/c', place, async () => 'c', 30_000);
    await time.sleep(40_000);
    held();
    await first;
    // Its slot was on time, its place came at 40 s, after 30 s: not made.
    expect(await other).toBeNull();
    expect(time.now()).toBe(40_000);
  });

  it('takes a fractional quota as the whole calls it allows: 2.5 a minute is 2, and never below 1', async () => {
    for (const [perMinute, atOnce] of [
      [2.5, 2],
      [0.5, 1],
    ] as const) {
      let t = 0;
      const pacer = createPacer(
        perMinute,
        () => t,
        async (ms) => void (t += ms),
      );
      const slots: (number | null)[] = [];
      for (let i = 0; i <= atOnce; i++) slots.push(await pacer.slot('p/a', Infinity));
      // The first `atOnce` go now; the next waits a minute.
      expect(slots).toEqual([...Array<number>(atOnce).fill(0), 60_000]);
    }
  });

  it('counts a window of 60 s from a start up to, not including, the instant a minute later', () => {
    // Two a minute. A start at 0; a slot booked for 60 s (on time, it counts for a call whose own
    // slot is no earlier); a call of a slot at 0 whose place came late, at 1 001 ms. The 60 s from
    // 0 hold the starts at 0 and 1 001 only (60 s is the next window's), so it may start.
    let t = 0;
    const pacer = createPacer(
      2,
      () => t,
      async () => {},
    );
    const booked = [0, 0].map(() => pacer.slot('p/a', Infinity));
    expect(pacer.start('p/a', 0)).toBe(true);
    return Promise.all(booked).then(async () => {
      expect(await pacer.slot('p/a', Infinity)).toBe(60_000);
      t = 1_001;
      expect(pacer.start('p/a', 0)).toBe(true);
    });
  });
});
