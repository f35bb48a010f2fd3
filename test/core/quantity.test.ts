import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { parsePolicy } from '../../src/core/policy.js';
import { parseCpu, parseGpuCount, parseMemory } from '../../src/core/quantity.js';

const GiB = 2 ** 30;

describe('quantities', () => {
  it('parses CPU and memory as Cloud Run writes them', () => {
    expect(parseCpu('8')).toBe(8);
    expect(parseCpu('4000m')).toBe(4);
    expect(parseCpu('0.5')).toBe(0.5);
    expect(parseCpu('eight')).toBeNull();
    expect(parseMemory('32Gi')).toBe(32 * GiB);
    expect(parseMemory('512Mi')).toBe(512 * 2 ** 20);
    expect(parseMemory('16G')).toBe(16e9);
    expect(parseMemory('1073741824')).toBe(GiB);
    expect(parseMemory('lots')).toBeNull();
  });

  it('reads a GPU count as a whole number only', () => {
    expect(parseGpuCount('1')).toBe(1);
    expect(parseGpuCount(' 2 ')).toBe(2);
    expect(parseGpuCount('0')).toBe(0);
    for (const bad of ['0.5', 'lots', '', '-1', '1e0', '1Gi'])
      expect(parseGpuCount(bad)).toBeNull();
  });

  it('takes every suffix, fractions and surrounding blanks, and nothing else', () => {
    expect(parseCpu(' 250m ')).toBe(0.25);
    expect(parseCpu('1.5')).toBe(1.5);
    for (const bad of ['', 'm', '4 m', '-1', '1e3', '.5', '4000u', '2 vCPU']) {
      expect(parseCpu(bad), bad).toBeNull();
    }
    const units: [string, number][] = [
      ['k', 1e3],
      ['K', 1e3],
      ['M', 1e6],
      ['G', 1e9],
      ['T', 1e12],
      ['Ki', 2 ** 10],
      ['Mi', 2 ** 20],
      ['Gi', 2 ** 30],
      ['Ti', 2 ** 40],
    ];
    for (const [suffix, bytes] of units) expect(parseMemory(`2${suffix}`), suffix).toBe(2 * bytes);
    expect(parseMemory('\t1.5Gi\n')).toBe(1.5 * GiB);
    for (const bad of ['', 'Gi', '16 Gi', '16GiB', '16gi', '-1Gi', '1e9', '16P', '16Pi']) {
      expect(parseMemory(bad), bad).toBeNull();
    }
  });

  it("the policy's memory thresholds accept the quantities the audit reads, written without blanks", () => {
    const policy = (minMemory: string) => () =>
      parsePolicy({ version: 1, projects: ['p'], audit: { minMemory } });
    for (const size of ['16Gi', '32768Mi', '16G', '1073741824', '1.5Gi', '16 Gi', 'lots', 'Gi']) {
      if (parseMemory(size) === null) expect(policy(size), size).toThrow(InputError);
      else expect(policy(size), size).not.toThrow();
    }
  });
});
