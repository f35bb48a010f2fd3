import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { checkEmulatorMix, checkRunOptions, emulatorAsideWarnings } from '../../src/runtime.js';
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

  const EMULATOR = {
    GOVERNOR_EMULATOR_HOST: '127.0.0.1:8085',
    GOVERNOR_EMULATOR_ADMIN: 'http://127.0.0.1:8086',
  };

  it("refuses the emulator's services beside Google's Pub/Sub: their alerts would go to Google", () => {
    // Alerts (and a dispatch's work messages) built from the emulator's data would be published
    // to the real topic whenever credentials are found.
    expect(refusal(EMULATOR)).toMatch(
      /^GOVERNOR_EMULATOR_HOST is set but PUBSUB_EMULATOR_HOST is not: .*export PUBSUB_EMULATOR_HOST as `governor emulator` prints it \(or unset GOVERNOR_EMULATOR_HOST to use Google\)$/,
    );
    expect(() => checkEmulatorMix(parseRuntimeOptions(EMULATOR))).toThrow(InputError);
  });

  it("refuses the emulator's services beside Google's Firestore: a run would lease there", () => {
    const env = {
      ...EMULATOR,
      PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
      GOVERNOR_STATE_STORE: 'firestore',
    };
    expect(refusal(env)).toMatch(
      /^GOVERNOR_EMULATOR_HOST is set but FIRESTORE_EMULATOR_HOST is not, with GOVERNOR_STATE_STORE=firestore: .*set FIRESTORE_EMULATOR_HOST to a Firestore emulator/,
    );
    expect(refusal({ ...env, FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' })).toBeNull();
  });

  it('takes Google alone, or the emulator with its admin URL and a Pub/Sub emulator', () => {
    expect(refusal({})).toBeNull();
    expect(refusal({ ...EMULATOR, PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' })).toBeNull();
    // Google's services with emulators for Pub/Sub and Firestore: nothing of the emulator's data
    // reaches Google.
    expect(
      refusal({
        PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
        FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080',
        GOVERNOR_STATE_STORE: 'firestore',
      }),
    ).toBeNull();
  });
});

describe('emulatorAsideWarnings', () => {
  // Google's Cloud Run and Monitoring with an emulator's Pub/Sub or Firestore is taken (nothing of
  // an emulator's data reaches Google), but a run that writes real caps would then publish its
  // alerts, or keep its lease, where nobody else looks: a variable left over from a local session.
  const warnings = (env: Record<string, string>, publishes: string | null = "the run's alerts") =>
    emulatorAsideWarnings(parseRuntimeOptions(env), publishes);

  it("warns that alerts go to the Pub/Sub emulator while the caps are Google's", () => {
    expect(warnings({ PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' })).toEqual([
      "PUBSUB_EMULATOR_HOST is set (127.0.0.1:8085) but GOVERNOR_EMULATOR_HOST is not, so the services read are Google's: the run's alerts go to that Pub/Sub emulator, not to Google's topic; unset PUBSUB_EMULATOR_HOST to publish them to Google",
    ]);
  });

  it("warns that a dispatch's work messages go to the Pub/Sub emulator", () => {
    expect(
      warnings({ PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' }, "the dispatch's work messages"),
    ).toEqual([
      "PUBSUB_EMULATOR_HOST is set (127.0.0.1:8085) but GOVERNOR_EMULATOR_HOST is not, so the services read are Google's: the dispatch's work messages go to that Pub/Sub emulator, not to Google's topic; unset PUBSUB_EMULATOR_HOST to publish them to Google",
    ]);
  });

  it('warns that the lease and run records are in the Firestore emulator', () => {
    expect(
      warnings(
        { FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080', GOVERNOR_STATE_STORE: 'firestore' },
        null,
      ),
    ).toEqual([
      "FIRESTORE_EMULATOR_HOST is set (127.0.0.1:8080) but GOVERNOR_EMULATOR_HOST is not, so the services read are Google's: its state (leases, run records, discovery) is kept in that Firestore emulator, where a governor elsewhere does not see it; unset FIRESTORE_EMULATOR_HOST to keep them in Google's Firestore",
    ]);
  });

  it('says nothing where the variable is not used, or everything is the emulator', () => {
    // No topic: nothing is published. The file store: Firestore is not used.
    expect(
      warnings(
        { PUBSUB_EMULATOR_HOST: '127.0.0.1:8085', FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' },
        null,
      ),
    ).toEqual([]);
    expect(
      warnings({
        GOVERNOR_EMULATOR_HOST: '127.0.0.1:8085',
        GOVERNOR_EMULATOR_ADMIN: 'http://127.0.0.1:8086',
        PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
      }),
    ).toEqual([]);
    expect(warnings({})).toEqual([]);
  });
});
