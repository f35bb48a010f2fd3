import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { checkRunOptions } from '../../src/runtime.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

/** What a run refuses to start with, before it opens anything (the function's "misconfigured"). */

function refusal(env: Record<string, string>): string | null {
  try {
    checkRunOptions(parseRuntimeOptions(env));
    return null;
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
}

describe('checkRunOptions', () => {
  it('refuses the emulator without its admin URL: no clock', () => {
    expect(refusal({ GOVERNOR_EMULATOR_HOST: '127.0.0.1:8085' })).toMatch(
      /^GOVERNOR_EMULATOR_HOST is set but GOVERNOR_EMULATOR_ADMIN is not/,
    );
  });

  it("refuses the emulator's admin URL without the emulator: its clock would date Google's data", () => {
    // A run would read Google's Cloud Run and Monitoring on the emulator's virtual clock: every
    // observation window would miss the points Google has, and a run would plan and write from that.
    expect(refusal({ GOVERNOR_EMULATOR_ADMIN: 'http://127.0.0.1:8086' })).toMatch(
      /^GOVERNOR_EMULATOR_ADMIN is set but GOVERNOR_EMULATOR_HOST is not: .*unset GOVERNOR_EMULATOR_ADMIN to use Google/,
    );
  });

  it('takes Google alone, or the emulator with its admin URL', () => {
    expect(refusal({})).toBeNull();
    expect(
      refusal({
        GOVERNOR_EMULATOR_HOST: '127.0.0.1:8085',
        GOVERNOR_EMULATOR_ADMIN: 'http://127.0.0.1:8086',
      }),
    ).toBeNull();
  });
});
