import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cut, fill, Heap, type Slot } from '../../src/core/allocate.js';
import { assertProperty, fcParams } from '../support/fleet-arbitrary.js';

/**
 * `fill` and `cut` hand out and take back many instances at once, with exactly the answers of the
 * greedy that moves one instance at a time through a heap. That greedy is kept here, as it was,
 * as the reference; the properties compare the two on seeded random slots, with the bulk pass
 * forced (`bulkFrom` 0) and at its default.
 */

const norm = (s: Slot, level = s.level): number => (level * s.cost) / s.weight;

function referenceFill<S extends Slot>(
  slots: readonly S[],
  upper: (s: S) => number,
  gpus: number,
): number {
  const heap = new Heap<S>((a, b) => {
    const x = norm(a, a.level + 1);
    const y = norm(b, b.level + 1);
    return x < y || (x === y && a.order < b.order);
  });
  for (const s of slots) if (s.level < upper(s)) heap.push(s);
  let left = gpus;
  while (heap.size > 0 && left > 0) {
    const s = heap.pop() as S;
    if (s.cost > left) continue;
    s.level += 1;
    left -= s.cost;
    if (s.level < upper(s)) heap.push(s);
  }
  return left;
}

function referenceCut<S extends Slot>(
  slots: readonly S[],
  lower: (s: S) => number,
  excess: number,
): number {
  const heap = new Heap<S>((a, b) => {
    const x = norm(a);
    const y = norm(b);
    return x > y || (x === y && a.order > b.order);
  });
  for (const s of slots) if (s.level > lower(s)) heap.push(s);
  let left = excess;
  while (heap.size > 0 && left > 0) {
    const s = heap.pop() as S;
    s.level -= 1;
    left -= s.cost;
    if (s.level > lower(s)) heap.push(s);
  }
  return left;
}

interface TestSlot extends Slot {
  /** The bound `fill` raises toward or `cut` lowers toward. */
  bound: number;
}

/** Weights as policies may write them (positive, at most 10^6), the awkward ones often. */
const weightArb = fc.oneof(
  fc.integer({ min: 1, max: 10 }),
  fc.constantFrom(0.1, 0.3, 1 / 3, 2 / 3, 0.7, 1.1, 2.5, 1e-9, 1e-300, 5e-324, 999_999.9, 1e6),
  fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
  fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true }),
);

interface Shape {
  slots: TestSlot[];
  /** Slots whose norms tie across slots: weight a multiple of cost. */
  ties: boolean;
}

/**
 * Slots in a random input order, unique `order`s; levels 0–60 or in the thousands; bounds above,
 * at or below the level, some far above (whole pools handed out); costs 1–8 or all one.
 */
function slotsArb(maxSlots: number): fc.Arbitrary<Shape> {
  return fc
    .record({
      n: fc.integer({ min: 0, max: maxSlots }),
      ties: fc.boolean(),
      oneCost: fc.boolean(),
      far: fc.integer({ min: 0, max: 3 }),
    })
    .chain(({ n, ties, oneCost, far }) =>
      fc
        .tuple(
          fc.uniqueArray(fc.integer({ min: -1_000, max: 1_000 }), {
            minLength: n,
            maxLength: n,
          }),
          fc.array(
            fc.record({
              level: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 5_000 })),
              cost: oneCost ? fc.constant(1) : fc.integer({ min: 1, max: 8 }),
              weight: weightArb,
              tieUnit: fc.constantFrom(0.5, 1, 3, 1 / 3),
              reach: fc.oneof(
                fc.integer({ min: -20, max: 40 }),
                fc.integer({ min: 0, max: far === 0 ? 40 : 10 ** (far + 1) }),
              ),
            }),
            { minLength: n, maxLength: n },
          ),
        )
        .map(([orders, raw]) => ({
          ties,
          slots: raw.map((r, i) => ({
            level: r.level,
            cost: r.cost,
            // Equal norms across slots: the same GPUs per weight for each.
            weight: ties ? r.cost * r.tieUnit : r.weight,
            order: orders[i] ?? i,
            bound: Math.max(0, r.level + r.reach),
          })),
        })),
    );
}

/** GPUs to hand out or take back: none, a few, about what the bounds allow, or far more. */
const amountArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 30 }),
  fc.double({ min: 0, max: 1.2, noNaN: true }),
  fc.constantFrom(1e9, 2 ** 52),
);

function amountFor(a: number, slots: readonly TestSlot[], dir: 'up' | 'down'): number {
  if (!Number.isInteger(a) || (a > 0 && a < 1)) {
    // A share of what the bounds allow, so that the last instances are contested.
    const room = slots.reduce(
      (t, s) => t + Math.max(0, dir === 'up' ? s.bound - s.level : s.level - s.bound) * s.cost,
      0,
    );
    return Math.round(a * room);
  }
  return a;
}

const clone = (slots: readonly TestSlot[]): TestSlot[] => slots.map((s) => ({ ...s }));
const levels = (slots: readonly TestSlot[]): number[] => slots.map((s) => s.level);

type Bound = (s: TestSlot) => number;
// The planner's bounds: fixed, or max(level, fixed) (`fill` in the burst step).
const fixed: Bound = (s) => s.bound;
const atLeastLevel: Bound = (s) => Math.max(s.level, s.bound);
const atMostLevel: Bound = (s) => Math.min(s.level, s.bound);

describe('fill: the same answers as one instance at a time', () => {
  for (const [label, bulkFrom, runs] of [
    ['bulk pass forced', 0, 3_000],
    ['bulk pass at its default', undefined, 1_500],
  ] as const) {
    it(`${label}: same levels and GPUs left`, () => {
      let bulkCases = 0;
      // The runs made: FC_RUNS, or FC_RUNS_SCALE (npm run test:unit) changes the count.
      const params = fcParams(runs);
      assertProperty(
        fc.property(slotsArb(40), amountArb, fc.boolean(), ({ slots }, a, levelBound) => {
          const upper = levelBound ? atLeastLevel : fixed;
          const gpus = amountFor(a, slots, 'up');
          const want = clone(slots);
          const got = clone(slots);
          const left = referenceFill(want, upper, gpus);
          expect(fill(got, upper, gpus, bulkFrom)).toBe(left);
          expect(levels(got)).toEqual(levels(want));
          if (levels(want).some((l, i) => l - (slots[i]?.level ?? l) > 1)) bulkCases++;
        }),
        params,
      );
      // The cases must move several instances per slot, or they test the loop alone.
      expect(bulkCases).toBeGreaterThan((params.numRuns ?? runs) / 4);
    });
  }

  it('equal norms, one GPU each: ties go by order, whole groups and the group cut short', () => {
    // Six slots of the same weight at the same level: every instance ties with five others.
    const make = () =>
      [5, 3, 0, 4, 1, 2].map((order) => ({ level: 2, cost: 1, weight: 1, order, bound: 1_000 }));
    for (const gpus of [0, 1, 5, 6, 7, 600, 5_988, 5_989, 6_000]) {
      const want = make();
      const got = make();
      const left = referenceFill(want, fixed, gpus);
      expect(fill(got, fixed, gpus, 0)).toBe(left);
      expect(levels(got)).toEqual(levels(want));
    }
  });

  it('a slot whose next instance costs more than what is left drops out; cheaper ones go on', () => {
    const make = (): TestSlot[] => [
      { level: 0, cost: 8, weight: 8, order: 0, bound: 100 },
      { level: 0, cost: 1, weight: 1, order: 1, bound: 100 },
      { level: 0, cost: 3, weight: 2.5, order: 2, bound: 100 },
    ];
    for (let gpus = 0; gpus <= 1_300; gpus += 7) {
      const want = make();
      const got = make();
      const left = referenceFill(want, fixed, gpus);
      expect(fill(got, fixed, gpus, 0)).toBe(left);
      expect(levels(got)).toEqual(levels(want));
    }
  });
});

describe('cut: the same answers as one instance at a time', () => {
  for (const [label, bulkFrom, runs] of [
    ['bulk pass forced', 0, 3_000],
    ['bulk pass at its default', undefined, 1_500],
  ] as const) {
    it(`${label}: same levels and excess left (negative when the last instance overshot)`, () => {
      let bulkCases = 0;
      // The runs made: FC_RUNS, or FC_RUNS_SCALE (npm run test:unit) changes the count.
      const params = fcParams(runs);
      assertProperty(
        fc.property(slotsArb(40), amountArb, fc.boolean(), ({ slots }, a, levelBound) => {
          const lower = levelBound ? atMostLevel : fixed;
          const excess = amountFor(a, slots, 'down');
          const want = clone(slots);
          const got = clone(slots);
          const left = referenceCut(want, lower, excess);
          expect(cut(got, lower, excess, bulkFrom)).toBe(left);
          expect(levels(got)).toEqual(levels(want));
          if (levels(want).some((l, i) => (slots[i]?.level ?? l) - l > 1)) bulkCases++;
        }),
        params,
      );
      expect(bulkCases).toBeGreaterThan((params.numRuns ?? runs) / 4);
    });
  }

  it('overshoots by part of an instance, as one at a time does', () => {
    const make = (): TestSlot[] => [
      { level: 900, cost: 8, weight: 3, order: 2, bound: 0 },
      { level: 700, cost: 3, weight: 1, order: 0, bound: 10 },
      { level: 50, cost: 5, weight: 0.5, order: 1, bound: 60 },
    ];
    for (let excess = 0; excess <= 9_000; excess += 13) {
      const want = make();
      const got = make();
      const left = referenceCut(want, fixed, excess);
      expect(cut(got, fixed, excess, 0)).toBe(left);
      expect(levels(got)).toEqual(levels(want));
    }
  });
});

describe('work bounded by the slots, not by the GPUs moved', () => {
  // Each slot's bound is read when the slot is first met and after each instance the loop moves:
  // one instance at a time read it once per instance moved (millions here).
  const many = (level: number, bound: number): TestSlot[] =>
    Array.from({ length: 200 }, (_, i) => ({
      level,
      cost: 1 + (i % 8),
      weight: 0.5 + (i % 7) * 0.37,
      order: (i * 7919) % 200,
      bound,
    }));

  it('fill hands out 10^7 GPUs reading each bound a few times', () => {
    const slots = many(0, 100_000);
    let reads = 0;
    const left = fill(
      slots,
      (s) => {
        reads++;
        return s.bound;
      },
      10_000_000,
    );
    expect(10_000_000 - left).toBeGreaterThan(9_999_000);
    expect(reads).toBeLessThanOrEqual(4 * slots.length + 64);
  });

  it('cut takes back 10^7 GPUs reading each bound a few times', () => {
    const slots = many(100_000, 0);
    let reads = 0;
    const left = cut(
      slots,
      (s) => {
        reads++;
        return s.bound;
      },
      10_000_000,
    );
    expect(left).toBeLessThanOrEqual(0);
    expect(reads).toBeLessThanOrEqual(4 * slots.length + 64);
  });
});
