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

export function isValidTimeZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

/** The instant of a wall-clock time on a local date, with the compatible DST rule. */
function wallInstant(date: DateTime, minutes: number): number {
  const base = DateTime.fromObject(
    { year: date.year, month: date.month, day: date.day },
    { zone: date.zone },
  );
  if (minutes === 24 * 60) {
    return base.plus({ days: 1 }).toMillis();
  }
  const dt = DateTime.fromObject(
    {
      year: date.year,
      month: date.month,
      day: date.day,
      hour: Math.floor(minutes / 60),
      minute: minutes % 60,
    },
    { zone: date.zone },
  );
  // luxon resolves a missing wall time forward by the gap, as wanted, but an ambiguous one to the
  // later offset: when the clock fell back, the same wall time also existed one shift earlier.
  const before = DateTime.fromMillis(dt.toMillis() - 86_400_000, { zone: date.zone }).offset;
  if (before > dt.offset) {
    const earlier = DateTime.fromMillis(dt.toMillis() - (before - dt.offset) * 60_000, {
      zone: date.zone,
    });
    if (earlier.day === dt.day && earlier.hour === dt.hour && earlier.minute === dt.minute) {
      return earlier.toMillis();
    }
  }
  return dt.toMillis();
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
  const local = DateTime.fromMillis(atMs, { zone: window.timezone });
  if (!local.isValid) throw new RangeError(`bad time zone ${window.timezone}`);
  // The window that holds now started today or, if it crosses midnight, yesterday.
  const candidates = crosses ? [local.minus({ days: 1 }), local] : [local];
  for (const day of candidates) {
    const weekday = WEEKDAYS[day.weekday - 1];
    if (window.days && weekday && !window.days.includes(weekday)) continue;
    const from = wallInstant(day, start);
    const to = wallInstant(crosses ? day.plus({ days: 1 }) : day, end);
    if (from <= atMs && atMs < to) return true;
  }
  return false;
}
