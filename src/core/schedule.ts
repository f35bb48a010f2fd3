import { DateTime, IANAZone } from 'luxon';

/**
 * Time windows: "on these weekdays, from `start` to `end` local time in `timezone`". A window whose
 * end is not after its start crosses midnight and ends on the next day; its weekday is the day it
 * starts. Bounds are turned into instants with the usual ("compatible") rule for daylight-saving
 * changes: a wall time that does not exist (02:30 on a spring-forward night) moves forward by the
 * gap (03:30), and an ambiguous one (01:30 on a fall-back night) takes the earlier instant. Each
 * window day is one half-open interval of instants, so a window can never match twice and never
 * throws on a DST night.
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface WindowSpec {
  /** Weekdays on which the window starts; absent means every day. */
  days?: readonly Weekday[] | undefined;
  /** "HH:MM" (00:00–23:59). */
  start: string;
  /** "HH:MM" (00:00–24:00); before `start` means the next day (the policy refuses it equal). */
  end: string;
  /** IANA time zone, e.g. "America/New_York". */
  timezone: string;
}

const CLOCK = /^(\d{2}):(\d{2})$/;

/** Minutes after midnight of "HH:MM", or null when it is not a clock time (24:00 allowed). */
export function clockMinutes(text: string): number | null {
  const m = CLOCK.exec(text);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && min !== 0)) return null;
  return h * 60 + min;
}

/**
 * Whether `zone` names an IANA time zone. luxon's `IANAZone.create` keeps each zone it made (and
 * whether it is valid) by name, where `IANAZone.isValidZone` builds an Intl.DateTimeFormat on
 * every call: a few hundred microseconds and the zone's data each time, so that a policy of
 * 10,000 windows took seconds and hundreds of megabytes to validate.
 */
export function isValidTimeZone(zone: string): boolean {
  return !UTC_OFFSET.test(zone) && IANAZone.create(zone).isValid;
}

/**
 * A UTC offset ("+05:00", "-0330", "+05"). ECMA-402 takes one as a time zone since its 11th
 * edition (2024, https://github.com/tc39/ecma402/pull/788), and Node 22 does where Node 20 does
 * not, so luxon would call it valid on one and not the other. A window's zone is an IANA name,
 * whose offset follows daylight saving; a fixed offset is refused on every Node.
 */
const UTC_OFFSET = /^[+\-\u2212]/;

const DAY_MS = 86_400_000;

/**
 * The instant of `minutes` after midnight (24:00 is the next midnight) on the local date whose
 * midnight in UTC is `dateMs`, with the compatible DST rule: of the offsets the zone has a day
 * before and a day after, each that reads the wall time back is an instant of it, the earlier
 * wins (an ambiguous time); none (a time in a gap) reads it with the offset before the gap, which
 * moves it forward by the gap. Only the zone's offset at an instant is asked: luxon's own wall time
 * to instant starts from a guess at the zone's offset of the machine's clock now, and where that
 * guess was far off (Samoa, UTC-11 in 2010 and UTC+13 now) it read a whole day an hour late.
 */
function wallInstant(zone: IANAZone, dateMs: number, minutes: number): number {
  const naive = dateMs + minutes * 60_000;
  const before = zone.offset(naive - DAY_MS);
  const after = zone.offset(naive + DAY_MS);
  let found: number | null = null;
  for (const offset of before === after ? [before] : [before, after]) {
    const t = naive - offset * 60_000;
    if (zone.offset(t) === offset && (found === null || t < found)) found = t;
  }
  return found ?? naive - before * 60_000;
}

/**
 * Whether the window holds at instant `atMs` (milliseconds since the epoch). Pure: the time is an
 * argument, never the wall clock.
 */
export function windowHolds(window: WindowSpec, atMs: number): boolean {
  const start = clockMinutes(window.start);
  const end = clockMinutes(window.end);
  if (start === null || end === null || start === 24 * 60) {
    throw new RangeError(`bad window bounds ${window.start}-${window.end}`);
  }
  const crosses = end <= start;
  const zone = IANAZone.create(window.timezone);
  if (!isValidTimeZone(window.timezone)) throw new RangeError(`bad time zone ${window.timezone}`);
  const local = DateTime.fromMillis(atMs, { zone });
  // Not Date.UTC, which reads the years 0 to 99 as 1900 to 1999.
  const today = new Date(0).setUTCFullYear(local.year, local.month - 1, local.day);
  // The window that holds now started today or, if it crosses midnight, yesterday, or the day
  // before yesterday where the zone skipped the day between: Samoa went from Thursday 29 December
  // 2011 to Saturday 31, and a Thursday window ending 02:00 ends at Saturday 02:00 (the end moves
  // forward by the gap), six hours after it started. A window on a skipped day (a non-crossing one
  // on Friday 30, which was never "today") does not hold; a crossing one's start moves past its end.
  const candidates = crosses ? [today - 2 * DAY_MS, today - DAY_MS, today] : [today];
  for (const day of candidates) {
    const weekday = WEEKDAYS[(new Date(day).getUTCDay() + 6) % 7];
    if (window.days && weekday && !window.days.includes(weekday)) continue;
    const from = wallInstant(zone, day, start);
    const to = wallInstant(zone, crosses ? day + DAY_MS : day, end);
    if (from <= atMs && atMs < to) return true;
  }
  return false;
}
