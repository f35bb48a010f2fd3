import { describe, expect, it } from 'vitest';
import {
  chaosVerdict,
  largestFitting,
  orgVerdict,
  readsVerdict,
  roundMet,
} from '../../bench/org-verdict.js';

/** The arithmetic behind the organisation bench's verdict (bench/org-verdict.ts). */
describe("the organisation bench's verdict", () => {
  it('says how many cores the CPU-seconds need when no schedule on these cores can meet 2×', () => {
    const v = orgVerdict({
      orgMs: 226_106,
      slowestSingleMs: 847,
      cpuS: 108.03,
      cores: 2,
      unitFailures: 0,
    });
    expect(v.met).toBe(false);
    expect(v.targetMs).toBe(1694);
    expect(v.minWallMs).toBeCloseTo(54_015, 0);
    // 108.03 CPU-s within 1.694 s: 63.8 cores, so 64.
    expect(v.coresNeeded).toBe(64);
    expect(v.text).toBe('missed: needs ≥ 64 cores: 108.0 CPU-s over 2 cores = 54.0 s > 2× 0.85 s');
  });

  it('tells a miss the cores could have avoided from one they could not', () => {
    const v = orgVerdict({
      orgMs: 5000,
      slowestSingleMs: 1000,
      cpuS: 1.5,
      cores: 2,
      unitFailures: 0,
    });
    expect(v.met).toBe(false);
    expect(v.text).toBe('missed: 5.00 s > 2× 1.00 s, though its 1.5 CPU-s fit in 0.8 s on 2 cores');
  });

  it('says met within 2×, the bound included', () => {
    expect(
      orgVerdict({ orgMs: 2000, slowestSingleMs: 1000, cpuS: 100, cores: 2, unitFailures: 0 }).met,
    ).toBe(true);
    expect(
      orgVerdict({ orgMs: 2001, slowestSingleMs: 1000, cpuS: 1, cores: 2, unitFailures: 0 }).met,
    ).toBe(false);
  });

  it('never says met when a unit failed, however fast the organisation was', () => {
    // A unit that fails at once (a 500 before any read) makes the organisation quicker, not
    // governed: 3 of them must not pass for an organisation within 2×.
    const v = orgVerdict({
      orgMs: 1500,
      slowestSingleMs: 1000,
      cpuS: 1,
      cores: 2,
      unitFailures: 3,
    });
    expect(v.met).toBe(false);
    expect(v.text).toBe(
      'missed: 3 unit(s) failed (1.50 s ≤ 2× 1.00 s, but a failed unit was not governed)',
    );
    expect(roundMet({ ratio: 1.5, unitFailures: 3 })).toBe(false);
    expect(roundMet({ ratio: 1.5, unitFailures: 0 })).toBe(true);
    expect(roundMet({ ratio: 2, unitFailures: 0 })).toBe(true);
    expect(roundMet({ ratio: 2.01, unitFailures: 0 })).toBe(false);
  });

  it('sizes the organisation to 70% of the cores over the target', () => {
    // 0.7 × 2 cores × 1.694 s = 2.37 CPU-s; at 0.108 CPU-s a unit, 21 units.
    expect(largestFitting({ perUnitCpuS: 0.108, cores: 2, targetMs: 1694 })).toBe(21);
    expect(largestFitting({ perUnitCpuS: 0.108, cores: 2, targetMs: 1694, share: 1 })).toBe(31);
    expect(largestFitting({ perUnitCpuS: 10, cores: 2, targetMs: 1000 })).toBe(0);
    // No CPU measured (a broken reading): nothing is sized from it.
    expect(largestFitting({ perUnitCpuS: 0, cores: 2, targetMs: 1000 })).toBe(0);
    expect(largestFitting({ perUnitCpuS: Number.NaN, cores: 2, targetMs: 1000 })).toBe(0);
  });

  it('never says the chaos was survived when no unit was made to fail', () => {
    // Under 5 projects the seeded 5% picks none: every unit completes, and nothing was tested.
    const none = chaosVerdict({
      projects: 3,
      failingUnits: 0,
      completedOthers: 3,
      others: 3,
      poolsOverQuota: 0,
    });
    expect(none.met).toBe(false);
    expect(none.why).toBe(
      'no unit was made to fail among 3 projects (a seeded 5% of them; 5 projects or more pick one): the chaos was not played',
    );
    const met = chaosVerdict({
      projects: 50,
      failingUnits: 3,
      completedOthers: 47,
      others: 47,
      poolsOverQuota: 0,
    });
    expect(met).toEqual({ met: true, why: '' });
  });

  it('says which part of the chaos failed', () => {
    const v = chaosVerdict({
      projects: 50,
      failingUnits: 3,
      completedOthers: 45,
      others: 47,
      poolsOverQuota: 1,
    });
    expect(v.met).toBe(false);
    expect(v.why).toBe(
      "2 of the 47 units made to fail by nothing did not complete; 1 write left a pool's caps above its quota",
    );
  });

  it('never says the reads matched when none were counted', () => {
    expect(readsVerdict(10, 10)).toEqual({ met: true, why: '' });
    expect(readsVerdict(0, 0)).toEqual({
      met: false,
      why: "no reads were counted (the emulator's call log was empty): nothing was compared",
    });
    expect(readsVerdict(10, 19.5)).toEqual({
      met: false,
      why: '9.5 more reads a project in the organisation than alone: calls retried (an answer later than the client waits, on a loaded machine) or reads that grow with the organisation',
    });
    expect(readsVerdict(10, 9)).toEqual({
      met: false,
      why: '1 fewer read a project in the organisation than alone: a unit that stopped before its reads',
    });
  });
});
