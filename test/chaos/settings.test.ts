import { describe, expect, it } from 'vitest';
import { decimalSetting, MAX_SEED, wholeNumberSetting } from '../../src/chaos/settings.js';

/**
 * The tools' numeric settings (chaos, benchmarks, property tests): a value in range is read, unset
 * or blank is the default, and anything else is one line naming the variable and what it accepts.
 */

describe('numeric settings of the tools', () => {
  it('reads a whole number in range, and the default when unset or blank', () => {
    expect(wholeNumberSetting({}, 'N', 7, 1, 10)).toBe(7);
    expect(wholeNumberSetting({ N: '  ' }, 'N', 7, 1, 10)).toBe(7);
    expect(wholeNumberSetting({ N: ' 10 ' }, 'N', 7, 1, 10)).toBe(10);
    expect(wholeNumberSetting({ FC_SEED: String(MAX_SEED) }, 'FC_SEED', 1, 0, MAX_SEED)).toBe(
      MAX_SEED,
    );
  });

  it('refuses a whole number written otherwise or out of range, naming it', () => {
    for (const value of ['abc', '1.5', '-1', '1e3', '0x10', '11', '0'])
      expect(wholeNumberSetting({ N: value }, 'N', 7, 1, 10), value).toEqual({
        error: `N must be a whole number from 1 to 10, not ${JSON.stringify(value)}`,
      });
  });

  it('reads a scale in decimals, and refuses one that is not a number in range', () => {
    expect(decimalSetting({ FC_RUNS_SCALE: '0.25' }, 'FC_RUNS_SCALE', 1, 0.001, 1000)).toBe(0.25);
    expect(decimalSetting({ FC_RUNS_SCALE: '3' }, 'FC_RUNS_SCALE', 1, 0.001, 1000)).toBe(3);
    expect(decimalSetting({}, 'FC_RUNS_SCALE', 1, 0.001, 1000)).toBe(1);
    for (const value of ['quarter', '0', '-0.5', '.5', '1e-1', '1001'])
      expect(decimalSetting({ FC_RUNS_SCALE: value }, 'FC_RUNS_SCALE', 1, 0.001, 1000)).toEqual({
        error: `FC_RUNS_SCALE must be a number from 0.001 to 1,000, not ${JSON.stringify(value)}`,
      });
  });
});
