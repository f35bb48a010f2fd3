/**
 * The emulator's bounded logs (the call log, the published Pub/Sub messages) keep the newest items
 * within a count and a size, drop the oldest first and count them, and always keep the newest.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundedLog } from '../../src/emulator/bounded-log.js';
import { fcParams } from '../support/fleet-arbitrary.js';

/** Adds each `[name, bytes]` in turn. */
function filled(log: BoundedLog<string>, items: [string, number][]): BoundedLog<string> {
  for (const [name, bytes] of items) log.add(name, bytes);
  return log;
}

describe('BoundedLog', () => {
  it('keeps the newest items within the count, oldest first, counting those dropped', () => {
    const log = filled(new BoundedLog(3, 1000), [
      ['a', 1],
      ['b', 1],
      ['c', 1],
      ['d', 1],
      ['e', 1],
    ]);
    expect(log.list()).toEqual(['c', 'd', 'e']);
    expect(log.length).toBe(3);
    expect(log.dropped).toBe(2);
  });

  it('keeps the newest items within the bytes', () => {
    const log = filled(new BoundedLog(100, 10), [
      ['a', 4],
      ['b', 4],
    ]);
    expect(log.dropped).toBe(0);
    log.add('c', 4); // 12 bytes: a goes
    expect(log.list()).toEqual(['b', 'c']);
    log.add('d', 2); // 10 bytes: within
    expect(log.list()).toEqual(['b', 'c', 'd']);
    expect(log.dropped).toBe(1);
  });

  it('keeps a single item over the bytes, alone, until a newer one comes', () => {
    const log = filled(new BoundedLog(100, 10), [
      ['a', 4],
      ['huge', 1000],
    ]);
    expect(log.list()).toEqual(['huge']);
    expect(log.dropped).toBe(1);
    log.add('b', 4);
    expect(log.list()).toEqual(['b']);
    expect(log.dropped).toBe(2);
    expect(filled(new BoundedLog(1, 0), [['first', 5]]).list()).toEqual(['first']);
  });

  it('forgets everything on reset, the dropped count too', () => {
    const log = filled(new BoundedLog(1, 10), [
      ['a', 1],
      ['b', 1],
    ]);
    log.reset();
    expect(log.list()).toEqual([]);
    expect(log.dropped).toBe(0);
    log.add('c', 1);
    expect(log.list()).toEqual(['c']);
  });

  it('refuses bounds that would keep nothing', () => {
    expect(() => new BoundedLog(0, 10)).toThrow(RangeError);
    expect(() => new BoundedLog(1.5, 10)).toThrow(RangeError);
    expect(() => new BoundedLog(1, -1)).toThrow(RangeError);
    expect(() => new BoundedLog(1, Number.NaN)).toThrow(RangeError);
  });

  it('agrees with dropping from the front of a plain list', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 200 }),
        (maxItems, maxBytes, sizes) => {
          const log = new BoundedLog<number>(maxItems, maxBytes);
          let model: { i: number; bytes: number }[] = [];
          let dropped = 0;
          sizes.forEach((bytes, i) => {
            log.add(i, bytes);
            model.push({ i, bytes });
            const total = (): number => model.reduce((s, m) => s + m.bytes, 0);
            while (model.length > 1 && (model.length > maxItems || total() > maxBytes)) {
              model = model.slice(1);
              dropped += 1;
            }
            expect(log.list()).toEqual(model.map((m) => m.i));
            expect(log.dropped).toBe(dropped);
          });
        },
      ),
      fcParams(200),
    );
  });

  it('tells of each item it drops, oldest first, as it drops it', () => {
    const told: string[] = [];
    const log = new BoundedLog<string>(2, 10, (item) => told.push(item));
    log.add('a', 1);
    log.add('b', 1);
    log.add('c', 1);
    expect(told).toEqual(['a']);
    log.add('big', 10);
    expect(told).toEqual(['a', 'b', 'c']);
    expect(log.list()).toEqual(['big']);
  });

  it('adds in constant time once full: 300,000 adds over 100,000 kept', () => {
    // Copying the kept items on every add once full (as the Pub/Sub store did) takes 2 x 10^10 steps.
    // The copying version runs for hours and blocks the worker, so any bound fails it; this one is
    // generous (under half a second here, 15 s allowed, just under the test's own timeout) so
    // that a loaded machine never trips it.
    const log = new BoundedLog<number>(100_000, Number.MAX_SAFE_INTEGER);
    const started = performance.now();
    for (let i = 0; i < 300_000; i++) log.add(i, 1);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(log.length).toBe(100_000);
    expect(log.dropped).toBe(200_000);
    expect(log.list()[0]).toBe(200_000);
  });
});
