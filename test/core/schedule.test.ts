import { describe, expect, it } from 'vitest';
import { windowHolds, type WindowSpec } from '../../src/core/schedule.js';

const at = (iso: string) => Date.parse(iso);

describe('time windows', () => {
  const office: WindowSpec = {
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
    start: '08:00',
    end: '20:00',
    timezone: 'America/New_York',
  };

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

  it('a window spanning the whole spring-forward night is an hour shorter, and does not crash', () => {
    const w: WindowSpec = { start: '00:00', end: '06:00', timezone: 'Europe/Berlin' };
    let minutes = 0;
    for (let t = at('2026-03-28T20:00:00Z'); t < at('2026-03-29T08:00:00Z'); t += 60_000)
      if (windowHolds(w, t)) minutes += 1;
    expect(minutes).toBe(5 * 60);
  });
});
