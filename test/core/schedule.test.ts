import fc from 'fast-check';
import { Settings } from 'luxon';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import {
  clockMinutes,
  isValidTimeZone,
  WEEKDAYS,
  windowHolds,
  type Weekday,
  type WindowSpec,
} from '../../src/core/schedule.js';
import { fcParams } from '../support/fleet-arbitrary.js';

const at = (iso: string) => Date.parse(iso);

describe('time windows', () => {
  const office: WindowSpec = {
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
    start: '08:00',
    end: '20:00',
    timezone: 'America/New_York',
  };

  it('reads clock times "HH:MM" from 00:00 to 24:00, and nothing past 24:00', () => {
    expect(clockMinutes('00:00')).toBe(0);
    expect(clockMinutes('23:59')).toBe(23 * 60 + 59);
    expect(clockMinutes('24:00')).toBe(24 * 60);
    for (const bad of ['24:01', '24:30', '25:00', '12:60', '7:00', '07:5']) {
      expect(clockMinutes(bad), bad).toBeNull();
      expect(() => windowHolds({ start: '08:00', end: bad, timezone: 'UTC' }, 0), bad).toThrow(
        RangeError,
      );
    }
  });

  it('refuses a UTC offset as a time zone, also where Intl takes one (ECMA-402 since 2024)', () => {
    // Node 22 (the function's runtime) takes "+05:00" as a time zone, Node 20 refuses it: stand in
    // for the newer Intl so that the answer is checked not to depend on it.
    const Real = Intl.DateTimeFormat;
    const offsets = function (locales?: string | string[], options?: Intl.DateTimeFormatOptions) {
      const m = /^([+-])(\d{2})(?::?00)?$/.exec(options?.timeZone ?? '');
      const zone = m ? `Etc/GMT${m[1] === '+' ? '-' : '+'}${Number(m[2])}` : options?.timeZone;
      return new Real(locales, { ...options, timeZone: zone });
    } as unknown as typeof Intl.DateTimeFormat;
    offsets.supportedLocalesOf = Real.supportedLocalesOf.bind(Real);
    Settings.resetCaches();
    Object.defineProperty(Intl, 'DateTimeFormat', { value: offsets, configurable: true });
    try {
      expect(() => new Intl.DateTimeFormat('en-US', { timeZone: '+05:00' })).not.toThrow();
      for (const zone of ['+05:00', '-0300', '+05']) {
        expect(isValidTimeZone(zone), zone).toBe(false);
        expect(() => windowHolds({ start: '08:00', end: '20:00', timezone: zone }, 0)).toThrow(
          RangeError,
        );
        expect(() =>
          parsePolicy({
            version: 1,
            projects: ['p1'],
            services: [{ match: {}, schedule: [{ start: '08:00', end: '20:00', timezone: zone }] }],
          }),
        ).toThrow(/invalid/);
      }
      expect(isValidTimeZone('Asia/Kathmandu')).toBe(true);
    } finally {
      Object.defineProperty(Intl, 'DateTimeFormat', { value: Real, configurable: true });
      Settings.resetCaches();
    }
  });

  it('holds on listed weekdays between start and end, in the window time zone', () => {
    // Friday 27 Nov 2026: New York is UTC-5.
    expect(windowHolds(office, at('2026-11-27T12:59:59Z'))).toBe(false);
    expect(windowHolds(office, at('2026-11-27T13:00:00Z'))).toBe(true);
    expect(windowHolds(office, at('2026-11-28T00:59:59Z'))).toBe(true);
    expect(windowHolds(office, at('2026-11-28T01:00:00Z'))).toBe(false); // end is exclusive
    expect(windowHolds(office, at('2026-11-28T15:00:00Z'))).toBe(false); // Saturday
  });

  it('crosses midnight when the end is not after the start; the weekday is the day it starts', () => {
    const night: WindowSpec = { days: ['fri'], start: '22:00', end: '06:00', timezone: 'UTC' };
    expect(windowHolds(night, at('2026-11-27T21:59:00Z'))).toBe(false);
    expect(windowHolds(night, at('2026-11-27T23:00:00Z'))).toBe(true); // Friday night
    expect(windowHolds(night, at('2026-11-28T05:59:00Z'))).toBe(true); // Saturday morning, started Friday
    expect(windowHolds(night, at('2026-11-28T06:00:00Z'))).toBe(false);
    expect(windowHolds(night, at('2026-11-26T23:00:00Z'))).toBe(false); // Thursday night
  });

  it('without days holds every day; 24:00 ends at the next midnight', () => {
    const evening: WindowSpec = { start: '18:00', end: '24:00', timezone: 'Europe/Amsterdam' };
    expect(windowHolds(evening, at('2026-11-29T22:59:00Z'))).toBe(true); // 23:59 in Amsterdam
    expect(windowHolds(evening, at('2026-11-29T23:00:00Z'))).toBe(false);
  });

  it('survives a spring-forward night: a start in the gap moves forward by the gap, and matches once', () => {
    // 8 March 2026, New York: 02:00 EST jumps to 03:00 EDT.
    const w: WindowSpec = {
      days: ['sun'],
      start: '02:30',
      end: '04:00',
      timezone: 'America/New_York',
    };
    const hits: string[] = [];
    for (let t = at('2026-03-08T05:00:00Z'); t < at('2026-03-08T10:00:00Z'); t += 5 * 60_000) {
      if (windowHolds(w, t)) hits.push(new Date(t).toISOString());
    }
    // 02:30 does not exist; the window opens at 03:30 EDT (07:30Z) and closes at 04:00 EDT (08:00Z).
    expect(hits[0]).toBe('2026-03-08T07:30:00.000Z');
    expect(hits.at(-1)).toBe('2026-03-08T07:55:00.000Z');
    expect(hits).toHaveLength(6);
  });

  it('survives a fall-back night: an ambiguous hour is one interval, never two', () => {
    // 1 November 2026, New York: 02:00 EDT falls back to 01:00 EST; 01:00–02:00 happens twice.
    const w: WindowSpec = {
      days: ['sun'],
      start: '01:15',
      end: '01:45',
      timezone: 'America/New_York',
    };
    const hits: number[] = [];
    for (let t = at('2026-11-01T04:00:00Z'); t < at('2026-11-01T08:00:00Z'); t += 5 * 60_000) {
      if (windowHolds(w, t)) hits.push(t);
    }
    // The earlier 01:15 (EDT, 05:15Z) to the earlier 01:45 (05:45Z): one half-hour.
    expect(hits[0]).toBe(at('2026-11-01T05:15:00Z'));
    expect(hits).toHaveLength(6);
  });

  it('holds the wall times of a day after a zone moved its offset by a day, whatever the machine clock', () => {
    // Samoa (Pacific/Apia) was at UTC-11 until 26 September 2010, when its clocks went from
    // 00:00 to 01:00 (UTC-10); today it is at UTC+13. luxon turns a wall time into an instant
    // from a first guess at the zone's offset of the wall clock's now: 24 hours off, it read every
    // wall time of that day an hour late, so 09:00–17:00 held from 10:00 to 18:00.
    const w: WindowSpec = { start: '09:00', end: '17:00', timezone: 'Pacific/Apia' };
    const held: string[] = [];
    for (let t = at('2010-09-26T11:00:00Z'); t < at('2010-09-27T11:00:00Z'); t += 30 * 60_000) {
      if (windowHolds(w, t)) held.push(new Date(t).toISOString());
    }
    // 09:00 UTC-10 is 19:00Z; 17:00 is 03:00Z the next day.
    expect(held[0]).toBe('2010-09-26T19:00:00.000Z');
    expect(held.at(-1)).toBe('2010-09-27T02:30:00.000Z');
    expect(held).toHaveLength(16);
    // The midnight that did not exist moves forward by the gap, to 01:00: 00:00–01:00 holds not at all.
    const gap: WindowSpec = { start: '00:00', end: '01:00', timezone: 'Pacific/Apia' };
    for (let t = at('2010-09-26T10:00:00Z'); t < at('2010-09-26T13:00:00Z'); t += 5 * 60_000) {
      expect(windowHolds(gap, t), new Date(t).toISOString()).toBe(false);
    }
  });

  it('a window into a day the zone skipped ends when its end, moved forward by the gap, comes', () => {
    // Samoa skipped Friday 30 December 2011: Thursday 23:59:59 (UTC-10) was followed by Saturday
    // 00:00 (UTC+14), at 10:00Z. A Thursday window of 20:00 to 02:00 starts at 06:00Z; its end,
    // Friday 02:00, does not exist and moves forward by the gap (24 hours) to Saturday 02:00 (12:00Z),
    // six hours after its start as on any other night. It was cut at the skip, two hours early,
    // as its start day was looked for only among the local day and the one before.
    const thursday: WindowSpec = {
      days: ['thu'],
      start: '20:00',
      end: '02:00',
      timezone: 'Pacific/Apia',
    };
    const held: number[] = [];
    for (let t = at('2011-12-29T00:00:00Z'); t < at('2012-01-01T00:00:00Z'); t += 15 * 60_000) {
      if (windowHolds(thursday, t)) held.push(t);
    }
    expect(held[0]).toBe(at('2011-12-30T06:00:00Z'));
    expect(held.at(-1)).toBe(at('2011-12-30T11:45:00Z'));
    expect(held).toHaveLength(6 * 4);
    // A window whose own day was skipped does not hold: a Friday window never starts.
    for (const w of [
      { start: '08:00', end: '20:00' },
      { start: '20:00', end: '02:00' },
      { start: '00:00', end: '24:00' },
    ]) {
      const friday: WindowSpec = { ...w, days: ['fri'], timezone: 'Pacific/Apia' };
      for (let t = at('2011-12-29T00:00:00Z'); t < at('2012-01-02T00:00:00Z'); t += 15 * 60_000) {
        expect(windowHolds(friday, t), `${w.start}-${w.end} ${new Date(t).toISOString()}`).toBe(
          false,
        );
      }
    }
  });

  it('reads a zone name whatever its case, and an old name as the zone it links to', () => {
    const names = ['America/New_York', 'america/new_york', 'AMERICA/NEW_YORK', 'US/Eastern'];
    for (const timezone of names) expect(isValidTimeZone(timezone), timezone).toBe(true);
    for (let t = at('2026-03-08T00:00:00Z'); t < at('2026-03-09T00:00:00Z'); t += 15 * 60_000) {
      const held = names.map((timezone) =>
        windowHolds({ start: '01:30', end: '03:30', timezone }, t),
      );
      expect(new Set(held).size, new Date(t).toISOString()).toBe(1);
    }
  });

  it('a window spanning the whole spring-forward night is an hour shorter, and does not crash', () => {
    const w: WindowSpec = { start: '00:00', end: '06:00', timezone: 'Europe/Berlin' };
    let minutes = 0;
    for (let t = at('2026-03-28T20:00:00Z'); t < at('2026-03-29T08:00:00Z'); t += 60_000)
      if (windowHolds(w, t)) minutes += 1;
    expect(minutes).toBe(5 * 60);
  });
});

/**
 * An oracle for windows built on Intl alone (the code uses luxon): a zone's offset at an instant
 * from Intl's wall-clock parts, and a wall time turned into an instant by the "compatible" rule
 * the README promises (Temporal's default: a wall time that exists twice is the earlier instant;
 * one that does not exist moves forward by the gap, i.e. is read with the offset before it).
 */
const formats = new Map<string, Intl.DateTimeFormat>();
function wall(zone: string, ms: number) {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, f);
  }
  const part = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const n = (k: string) => Number(part[k]);
  return {
    y: n('year'),
    mo: n('month'),
    d: n('day'),
    h: n('hour'),
    mi: n('minute'),
    s: n('second'),
  };
}
function offsetMs(zone: string, ms: number): number {
  const w = wall(zone, ms);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
}
const DAY = 86_400_000;
/** The instant of `minutes` after midnight on the local date of UTC-midnight `dateMs`. */
function compatible(zone: string, dateMs: number, minutes: number): number {
  const naive = dateMs + minutes * 60_000;
  const before = offsetMs(zone, naive - DAY);
  const after = offsetMs(zone, naive + DAY);
  const exact = [...new Set([before, after])]
    .map((o) => naive - o)
    .filter((t) => offsetMs(zone, t) === naive - t);
  return exact.length > 0 ? Math.min(...exact) : naive - before;
}
const clock = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
function oracleHolds(w: WindowSpec, t: number): boolean {
  const s = clock(w.start);
  const e = clock(w.end);
  const crosses = e <= s;
  const here = wall(w.timezone, t);
  const today = Date.UTC(here.y, here.mo - 1, here.d);
  for (const day of crosses ? [today - 2 * DAY, today - DAY, today] : [today]) {
    const weekday = WEEKDAYS[(new Date(day).getUTCDay() + 6) % 7] as Weekday;
    if (w.days && !w.days.includes(weekday)) continue;
    const from = compatible(w.timezone, day, s);
    const to = compatible(w.timezone, crosses ? day + DAY : day, e);
    if (from <= t && t < to) return true;
  }
  return false;
}

/** Zones with every kind of offset change: an hour, half an hour (Lord Howe), two hours (Troll), at midnight (Havana, Santiago), quarter-hour offsets (Kathmandu, Chatham), none (UTC, Etc/GMT+5). */
const ZONES = [
  'America/New_York',
  'Europe/Berlin',
  'Australia/Lord_Howe',
  'America/Havana',
  'America/Santiago',
  'Antarctica/Troll',
  'Pacific/Chatham',
  'America/St_Johns',
  'Africa/Casablanca',
  'Asia/Kathmandu',
  'Etc/GMT+5',
  'UTC',
];

/** The instants of 2026 and 2027 at which `zone` changes its offset (to the minute). */
function transitions(zone: string): number[] {
  const out: number[] = [];
  const end = Date.parse('2028-01-01T00:00:00Z');
  for (let t = Date.parse('2026-01-01T00:00:00Z'); t < end; t += 3 * DAY) {
    if (offsetMs(zone, t) === offsetMs(zone, t + 3 * DAY)) continue;
    let lo = t;
    let hi = t + 3 * DAY;
    while (hi - lo > 60_000) {
      const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
      if (offsetMs(zone, mid) === offsetMs(zone, lo)) lo = mid;
      else hi = mid;
    }
    out.push(hi);
  }
  return out;
}

describe('time windows against an oracle', () => {
  const near = new Map(ZONES.map((z) => [z, transitions(z)]));
  const CLOCKS = [
    '00:00',
    '00:30',
    '01:00',
    '01:30',
    '02:00',
    '02:30',
    '03:00',
    '23:00',
    '23:30',
    '24:00',
  ];
  const clockArb = fc.oneof(
    fc.constantFrom(...CLOCKS),
    fc
      .integer({ min: 0, max: 24 * 4 })
      .map(
        (q) =>
          `${String(Math.floor(q / 4)).padStart(2, '0')}:${String((q % 4) * 15).padStart(2, '0')}`,
      ),
  );
  const windowArb = fc
    .record({
      timezone: fc.constantFrom(...ZONES),
      start: clockArb,
      end: clockArb,
      days: fc.option(fc.uniqueArray(fc.constantFrom(...WEEKDAYS), { minLength: 1 }), {
        nil: undefined,
      }),
    })
    .filter((w) => w.start !== '24:00' && w.start !== w.end);

  it('holds exactly when the compatible rule, computed from Intl alone, says so, around every offset change', () => {
    fc.assert(
      fc.property(
        windowArb,
        fc.nat(),
        fc.integer({ min: -36 * 60, max: 36 * 60 }),
        (w, pick, minutes) => {
          const list = near.get(w.timezone) ?? [];
          const base =
            list.length > 0
              ? (list[pick % list.length] as number)
              : Date.parse('2026-06-01T00:00:00Z') + (pick % 365) * DAY;
          const t = base + minutes * 60_000;
          const spec: WindowSpec = w.days
            ? w
            : { start: w.start, end: w.end, timezone: w.timezone };
          expect(
            windowHolds(spec, t),
            `${JSON.stringify(spec)} at ${new Date(t).toISOString()}`,
          ).toBe(oracleHolds(spec, t));
        },
      ),
      fcParams(2_000),
    );
  });

  it('in a zone without offset changes, holds iff the local time of a listed day is in [start, end)', () => {
    const fixed = ['UTC', 'Etc/GMT+5', 'Etc/GMT-14', 'Asia/Kathmandu', 'Asia/Kolkata'];
    fc.assert(
      fc.property(
        windowArb.map((w) => ({
          ...w,
          timezone: fixed[w.timezone.length % fixed.length] as string,
        })),
        fc.integer({
          min: Date.parse('2024-01-01T00:00:00Z'),
          max: Date.parse('2030-01-01T00:00:00Z'),
        }),
        (w, t) => {
          const local = wall(w.timezone, t);
          const minute = local.h * 60 + local.mi;
          const weekdayOf = (dayMs: number) =>
            WEEKDAYS[(new Date(dayMs).getUTCDay() + 6) % 7] as Weekday;
          const today = Date.UTC(local.y, local.mo - 1, local.d);
          const listed = (dayMs: number) => !w.days || w.days.includes(weekdayOf(dayMs));
          const s = clock(w.start);
          const e = clock(w.end);
          const expected =
            e > s
              ? listed(today) && s <= minute && minute < e
              : (listed(today) && minute >= s) || (listed(today - DAY) && minute < e);
          expect(windowHolds(w, t), `${JSON.stringify(w)} at ${new Date(t).toISOString()}`).toBe(
            expected,
          );
        },
      ),
      fcParams(2_000),
    );
  });

  it('the oracle itself knows the documented nights', () => {
    // Berlin, 29 March 2026: 02:30 does not exist and moves to 03:30 CEST (01:30Z); New York,
    // 1 November 2026: 01:30 exists twice, the first at 05:30Z.
    expect(new Date(compatible('Europe/Berlin', Date.UTC(2026, 2, 29), 150)).toISOString()).toBe(
      '2026-03-29T01:30:00.000Z',
    );
    expect(new Date(compatible('America/New_York', Date.UTC(2026, 10, 1), 90)).toISOString()).toBe(
      '2026-11-01T05:30:00.000Z',
    );
    expect(near.get('Australia/Lord_Howe')).toHaveLength(4);
    expect(near.get('UTC')).toEqual([]);
  });
});
