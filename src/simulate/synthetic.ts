import { DateTime } from 'luxon';
import { z } from 'zod';
import { isValidTimeZone } from '../core/schedule.js';

/**
 * The seeded synthetic demand generator: per-minute instances wanted, from a few shapes a platform
 * team recognises (a daily curve, bursts, a mostly idle service, a step change), with optional
 * multiplicative noise. The same seed gives the same series on every machine.
 */

const Hour = z.number().min(0).lt(24);

export const SyntheticShape = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant'), value: z.number().min(0) }),
  z.strictObject({
    kind: z.literal('diurnal'),
    base: z.number().min(0).describe('Instances at the quietest hour.'),
    peak: z.number().min(0).describe('Instances at the busiest hour.'),
    peakHour: Hour.describe('Local hour of the peak.'),
    // Checked here: an unknown zone makes every minute NaN, and the scenario's quota with it.
    timezone: z
      .string()
      .refine(isValidTimeZone, 'expected an IANA time zone such as "Europe/Paris"')
      .default('UTC'),
    sharpness: z.number().min(0.1).max(20).default(2).describe('Higher: a shorter busy period.'),
  }),
  z.strictObject({
    kind: z.literal('bursty'),
    base: z.number().min(0),
    burstPeak: z.number().min(0).describe('Instances added at the top of a burst.'),
    burstsPerHour: z.number().min(0).max(60),
    burstMinutes: z.number().int().min(1).max(240).describe('How long a burst lasts.'),
  }),
  z.strictObject({
    kind: z.literal('idle'),
    active: z.number().min(0).describe('Instances while it is in use.'),
    sessionsPerDay: z.number().min(0).max(1440),
    sessionMinutes: z.number().int().min(1).max(1440),
  }),
  z.strictObject({
    kind: z.literal('step'),
    before: z.number().min(0),
    after: z.number().min(0),
    atMinute: z.number().int().min(0).describe('Minute of the simulation at which it steps.'),
  }),
]);
export type SyntheticShape = z.infer<typeof SyntheticShape>;

/** xorshift32: small, fast, and the same everywhere. */
function prng(seed: number): () => number {
  let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A stable 32-bit seed from text (a service name) and a number. */
export function seedOf(text: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}

/**
 * `minutes` values starting at `startMs` (one per minute). `noise` is the spread of a
 * multiplicative factor (0: none; 0.2: about ±20%).
 */
export function synthesize(
  shape: SyntheticShape,
  startMs: number,
  minutes: number,
  seed: number,
  noise = 0,
): number[] {
  const rand = prng(seed);
  const out: number[] = [];
  let burstLeft = 0;
  let sessionLeft = 0;
  for (let m = 0; m < minutes; m++) {
    const at = startMs + m * 60_000;
    let v: number;
    switch (shape.kind) {
      case 'constant':
        v = shape.value;
        break;
      case 'diurnal': {
        const local = DateTime.fromMillis(at, { zone: shape.timezone });
        const hours = local.hour + local.minute / 60;
        const phase = ((hours - shape.peakHour) / 24) * 2 * Math.PI;
        v = shape.base + (shape.peak - shape.base) * ((1 + Math.cos(phase)) / 2) ** shape.sharpness;
        break;
      }
      case 'bursty': {
        if (burstLeft === 0 && rand() < shape.burstsPerHour / 60) burstLeft = shape.burstMinutes;
        if (burstLeft > 0) {
          // A burst ramps up and down (a triangle), so it is not a square wave.
          const pos = shape.burstMinutes - burstLeft;
          const tri = 1 - Math.abs((2 * pos) / Math.max(1, shape.burstMinutes - 1) - 1);
          v = shape.base + shape.burstPeak * Math.max(0.3, tri);
          burstLeft -= 1;
        } else v = shape.base;
        break;
      }
      case 'idle': {
        if (sessionLeft === 0 && rand() < shape.sessionsPerDay / 1440)
          sessionLeft = shape.sessionMinutes;
        v = sessionLeft > 0 ? shape.active : 0;
        if (sessionLeft > 0) sessionLeft -= 1;
        break;
      }
      case 'step':
        v = m < shape.atMinute ? shape.before : shape.after;
        break;
    }
    const factor = noise > 0 ? Math.max(0, 1 + noise * gaussian(rand)) : 1;
    out.push(v * factor);
  }
  return out;
}

/** A standard normal sample (Box–Muller). */
function gaussian(rand: () => number): number {
  const u = Math.max(1e-12, rand());
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
