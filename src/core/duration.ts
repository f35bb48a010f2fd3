import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PART = /(\d+)(ms|s|m|h|d)/g;
/** Digits and a unit, repeated: what a duration looks like before the order of its units counts. */
const PARTS = /^(\d+(ms|s|m|h|d))+$/;

/**
 * A duration: each unit at most once, largest first (d, h, m, s, ms), so `1h30m` but never
 * `1h1h` or `30m1h`, which in a policy are typos. Written without lookahead so that Terraform's
 * RE2 takes the same pattern (terraform/organization/variables.tf checks `cache_ttl` with it).
 */
export const DURATION_PATTERN =
  /^[0-9]+(d([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?|h([0-9]+m)?([0-9]+s)?([0-9]+ms)?|m([0-9]+s)?([0-9]+ms)?|s([0-9]+ms)?|ms)$/;

/** What a duration whose units repeat or come out of order is told: one text for every caller. */
export const UNIT_ORDER_HINT = 'each unit once, largest first, e.g. "1h30m"';

/** Whether `text` is digits and units that only their order or a repeat keeps from a duration. */
export function unitsOutOfOrder(text: string): boolean {
  return PARTS.test(text) && !DURATION_PATTERN.test(text);
}

/**
 * The longest duration any setting takes (366 days): beyond it a window or a delay is a typo, and
 * far beyond it (`99999999999999999999d`) a time before the first representable date.
 */
const MAX_DURATION_MS = 366 * UNIT_MS.d;

/** A duration written like `90s`, `15m`, `1h30m`, `2d`; at most {@link MAX_DURATION_MS}. */
export const Duration = z
  .string({
    // `lookback: 30` is the likeliest slip: say what a duration looks like, not only "string".
    error: (issue) =>
      typeof issue.input === 'number'
        ? `expected a duration with its unit, such as "${issue.input}m" or "${issue.input}s", not the number ${issue.input}`
        : undefined,
  })
  .regex(DURATION_PATTERN, {
    error: (issue) =>
      typeof issue.input === 'string' && unitsOutOfOrder(issue.input)
        ? `${JSON.stringify(issue.input)}: ${UNIT_ORDER_HINT}`
        : 'expected a duration such as "90s", "15m" or "1h30m"',
  })
  .refine((text) => !DURATION_PATTERN.test(text) || durationMs(text) <= MAX_DURATION_MS, {
    message: 'expected at most 366d',
  })
  .describe(
    'A duration: digits and a unit (d, h, m, s, ms), each unit at most once and largest first, e.g. "90s", "15m", "1h30m"; at most 366d.',
  );
export type Duration = z.infer<typeof Duration>;

/** Milliseconds in a duration string already checked by `Duration`. */
export function durationMs(text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new RangeError(`not a duration: ${JSON.stringify(text)}`);
  let total = 0;
  for (const m of text.matchAll(PART)) {
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  }
  return total;
}

/** A short human form of a duration, for reasons: 900000 → "15m". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [
    ['d', UNIT_MS.d],
    ['h', UNIT_MS.h],
    ['m', UNIT_MS.m],
    ['s', UNIT_MS.s],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 && parts.length === 0) parts.push(`${rest}ms`);
  return parts.join('');
}

/**
 * How far ahead of a reader's clock a stored time may be and still count (clocks of two machines
 * disagree a little). A time written later was written on a wrong clock or edited by hand: a run
 * record or pressure ledger dated so is never "the newest", or it would stay so for good, and a
 * service's last raise or decrease dated so starts no delay, or the delay would hold for good.
 */
export const MAX_CLOCK_SKEW_MS = 60_000;

/** Whether `time` (ISO 8601) lies beyond `nowMs` plus {@link MAX_CLOCK_SKEW_MS}. */
export function beyondSkew(time: string, nowMs: number): boolean {
  return Date.parse(time) > nowMs + MAX_CLOCK_SKEW_MS;
}

/**
 * The first and last instants whose UTC time has a four-digit year. `Date.prototype.toISOString`
 * writes any other with a six-digit year (`+010000-01-01T11:59:59.000Z`), which is no RFC 3339
 * time: a snapshot's `takenAt` or a `--at` of `9999-12-31T23:59:59-12:00` planned a plan whose `at`
 * and alerts' `time` neither the plan's schema nor a subscriber's parser takes.
 */
export const FIRST_INSTANT = '0000-01-01T00:00:00Z';
export const LAST_INSTANT = '9999-12-31T23:59:59.999Z';

/** Whether an ISO 8601 time (parsed by `Date.parse`) lies from FIRST_INSTANT to LAST_INSTANT. */
export function writableInstant(time: string): boolean {
  const ms = Date.parse(time);
  return ms >= Date.parse(FIRST_INSTANT) && ms <= Date.parse(LAST_INSTANT);
}

/** What a time outside them is told, after the time itself. */
export const UNWRITABLE_INSTANT = `is outside ${FIRST_INSTANT} to ${LAST_INSTANT} in UTC, the times with a four-digit year`;

/**
 * An ISO 8601 time with its offset (`Z` or `+01:00`) and a real date, whatever its year: what the
 * command line's `--at` is first checked against, before {@link writableInstant}.
 */
export const OffsetTime = z.iso.datetime({ offset: true });

/**
 * An ISO 8601 time with its offset, whose UTC time has a four-digit year. The range is judged
 * only of a time: zod runs a refinement after a failed format check too, and "yesterday" was told
 * both that it is no ISO time and that it is outside the years 0000–9999.
 */
export const Instant = OffsetTime.refine(writableInstant, {
  error: UNWRITABLE_INSTANT,
  when: (payload) => payload.issues.length === 0,
});
