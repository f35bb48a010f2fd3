import { describe, expect, it } from 'vitest';
import { demandAt, type DemandContext } from '../../src/emulator/demand.js';

const ctx: DemandContext = {
  timezone: 'UTC',
  startMs: Date.parse('2026-11-27T00:00:00Z'),
  traces: new Map(),
};
const at = (iso: string) => Date.parse(iso);

describe('step demand', () => {
  it('holds the latest daily step, yesterday’s last before the first, the later of two listed at once', () => {
    const steps = [
      { at: '18:00', value: 5 },
      { at: '08:00', value: 2 },
      { at: '08:00', value: 3 },
    ];
    expect(demandAt({ steps }, at('2026-11-27T07:59:00Z'), ctx)).toBe(5);
    expect(demandAt({ steps }, at('2026-11-27T08:00:00Z'), ctx)).toBe(3);
    expect(demandAt({ steps }, at('2026-11-27T17:59:00Z'), ctx)).toBe(3);
    expect(demandAt({ steps }, at('2026-11-27T18:00:00Z'), ctx)).toBe(5);
    expect(demandAt({ steps }, at('2026-11-28T00:00:00Z'), ctx)).toBe(5);
  });

  it('holds the latest instant step, nothing before the first', () => {
    const steps = [
      { at: '2026-11-27T12:00:00Z', value: 4 },
      { at: '2026-11-27T10:00:00+01:00', value: 1 },
    ];
    expect(demandAt({ steps }, at('2026-11-27T08:59:00Z'), ctx)).toBe(0);
    expect(demandAt({ steps }, at('2026-11-27T09:00:00Z'), ctx)).toBe(1);
    expect(demandAt({ steps }, at('2026-11-27T12:00:00Z'), ctx)).toBe(4);
    expect(demandAt({ steps }, at('2026-12-27T12:00:00Z'), ctx)).toBe(4);
  });

  it('reads the daily steps in the fleet’s time zone', () => {
    const steps = [
      { at: '09:00', value: 7 },
      { at: '10:00', value: 1 },
    ];
    const paris = { ...ctx, timezone: 'Europe/Paris' };
    expect(demandAt({ steps }, at('2026-11-27T08:30:00Z'), paris)).toBe(7);
    expect(demandAt({ steps }, at('2026-11-27T08:30:00Z'), ctx)).toBe(1);
  });
});
