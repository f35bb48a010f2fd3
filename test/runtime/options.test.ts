import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { InputError } from '../../src/core/errors.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

/** The environment, parsed in one place: defaults, every setting, and each bad value named. */

describe('parseRuntimeOptions', () => {
  it('fills in the defaults for an empty environment, and ignores variables it does not know', () => {
    expect(parseRuntimeOptions({ HOME: '/home/x', PATH: '/bin' })).toEqual({
      policyText: null,
      stateStore: { kind: 'file', dir: null },
      runDeadlineMs: 240_000,
      maxDeliveryAttempts: null,
      emulatorHost: null,
      emulatorAdmin: null,
      emulatorOperationPollMs: null,
      pubsubEmulatorHost: null,
      firestoreEmulatorHost: null,
      governorId: `cli:user@${hostname()}`,
      color: 'auto',
      cursor: true,
      debug: false,
    });
  });

  it('reads every setting', () => {
    const options = parseRuntimeOptions({
      GOVERNOR_POLICY: 'version: 1',
      GOVERNOR_STATE_STORE: 'firestore',
      GOVERNOR_FIRESTORE_DATABASE: 'governor-db',
      GOVERNOR_FIRESTORE_COLLECTION: 'coll',
      GOVERNOR_RUN_DEADLINE: '90s',
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '7',
      GOVERNOR_EMULATOR_HOST: '127.0.0.1:7000',
      GOVERNOR_EMULATOR_ADMIN: 'http://127.0.0.1:7001',
      GOVERNOR_EMULATOR_OPERATION_POLL: '20ms',
      PUBSUB_EMULATOR_HOST: 'localhost:8085',
      FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080',
      GOVERNOR_ID: 'governor-eu',
      GOVERNOR_DEBUG: '1',
      NO_COLOR: '1',
    });
    expect(options).toEqual({
      policyText: 'version: 1',
      stateStore: { kind: 'firestore', databaseId: 'governor-db', collection: 'coll' },
      runDeadlineMs: 90_000,
      maxDeliveryAttempts: 7,
      emulatorHost: '127.0.0.1:7000',
      emulatorAdmin: 'http://127.0.0.1:7001',
      emulatorOperationPollMs: 20,
      pubsubEmulatorHost: 'localhost:8085',
      firestoreEmulatorHost: '127.0.0.1:8080',
      governorId: 'governor-eu',
      color: 'never',
      cursor: true,
      debug: true,
    });
    // Without GOVERNOR_ID: a function's own service, else the user and the host.
    expect(parseRuntimeOptions({ K_SERVICE: 'gpu-governor', USER: 'ann' }).governorId).toBe(
      'function:gpu-governor',
    );
    expect(parseRuntimeOptions({ USER: 'ann' }).governorId).toBe(`cli:ann@${hostname()}`);
    expect(parseRuntimeOptions({ GOVERNOR_STATE_DIR: '/tmp/s' }).stateStore).toEqual({
      kind: 'file',
      dir: '/tmp/s',
    });
  });

  it('counts an empty variable as unset', () => {
    expect(
      parseRuntimeOptions({
        GOVERNOR_EMULATOR_HOST: ' ',
        GOVERNOR_RUN_DEADLINE: '',
        NO_COLOR: '',
        GOVERNOR_STATE_DIR: '',
      }),
    ).toMatchObject({
      emulatorHost: null,
      runDeadlineMs: 240_000,
      color: 'auto',
      // The default folder: an empty GOVERNOR_STATE_DIR is no bad input (docs/applying.md).
      stateStore: { kind: 'file', dir: null },
    });
  });

  it('refuses a run deadline of zero: no write could ever start', () => {
    for (const zero of ['0s', '0m', '0h0m0s']) {
      let told = '';
      try {
        parseRuntimeOptions({ GOVERNOR_RUN_DEADLINE: zero });
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        told = e.message;
      }
      expect(told, zero).toMatch(/GOVERNOR_RUN_DEADLINE: expected more than 0s/);
    }
    expect(parseRuntimeOptions({ GOVERNOR_RUN_DEADLINE: '1s' }).runDeadlineMs).toBe(1_000);
  });

  it('refuses a run deadline longer than a timer holds: every call would be given up at once', () => {
    // Node.js runs a timer of more than 2,147,483,647 ms after 1 ms: a run deadline of 25 days
    // (within the 366 days a duration may have) would give up every call as past the deadline.
    for (const long of ['25d', '24d20h32m', '366d']) {
      let told = '';
      try {
        parseRuntimeOptions({ GOVERNOR_RUN_DEADLINE: long });
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        told = e.message;
      }
      expect(told, long).toMatch(/GOVERNOR_RUN_DEADLINE: expected at most 24d/);
    }
    expect(parseRuntimeOptions({ GOVERNOR_RUN_DEADLINE: '24d' }).runDeadlineMs).toBe(
      24 * 86_400_000,
    );
  });

  it("polls the emulator's operations sooner only when told, only the emulator's, and from 1ms to 1s", () => {
    const host = { GOVERNOR_EMULATOR_HOST: '127.0.0.1:7000' };
    expect(parseRuntimeOptions(host).emulatorOperationPollMs).toBe(null);
    expect(
      parseRuntimeOptions({ ...host, GOVERNOR_EMULATOR_OPERATION_POLL: '1s' })
        .emulatorOperationPollMs,
    ).toBe(1_000);
    const refused = (env: Record<string, string>): string => {
      try {
        parseRuntimeOptions(env);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        return e.faults.map((f) => `${f.path}: ${f.message}`).join('\n');
      }
      return 'accepted';
    };
    // Google's operations keep the default: the variable alone is a mistake, said as one.
    expect(refused({ GOVERNOR_EMULATOR_OPERATION_POLL: '20ms' })).toBe(
      "GOVERNOR_EMULATOR_OPERATION_POLL: set without GOVERNOR_EMULATOR_HOST: it is for the emulator only (Google's operations are polled from 1s)",
    );
    for (const bad of ['0ms', '0s', '1001ms', '2s', '20', 'soon'])
      expect(refused({ ...host, GOVERNOR_EMULATOR_OPERATION_POLL: bad }), bad).toMatch(
        /^GOVERNOR_EMULATOR_OPERATION_POLL: expected /,
      );
  });

  it("takes Pub/Sub's bounds of max_delivery_attempts, 5 to 100, and nothing else", () => {
    for (const [text, value] of [
      ['5', 5],
      [' 100 ', 100],
    ] as const)
      expect(
        parseRuntimeOptions({ GOVERNOR_MAX_DELIVERY_ATTEMPTS: text }).maxDeliveryAttempts,
      ).toBe(value);
    for (const bad of ['4', '101', '0', '-5', '5.5', '1e2', 'five', '9'.repeat(400), '7\u0000']) {
      let error: unknown;
      try {
        parseRuntimeOptions({ GOVERNOR_MAX_DELIVERY_ATTEMPTS: bad });
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(InputError);
      const [fault] = (error as InputError).faults;
      expect(fault?.path, bad).toBe('GOVERNOR_MAX_DELIVERY_ATTEMPTS');
      expect(fault?.message, bad).toMatch(/from 5 to 100/);
      expect(fault?.message, bad).not.toContain('9'.repeat(20));
    }
  });

  it("takes the emulator's admin URL as http://HOST:PORT only: no credentials, path, query or fragment", () => {
    // The clock is read at `/clock` from the URL's origin: a path, a query or a fragment would be
    // dropped without a word, and Node.js's fetch refuses a URL with credentials, so every run
    // failed with the password in its error line.
    const refused = (admin: string): string => {
      try {
        parseRuntimeOptions({
          GOVERNOR_EMULATOR_HOST: '127.0.0.1:8085',
          GOVERNOR_EMULATOR_ADMIN: admin,
        });
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        return e.message;
      }
      return 'accepted';
    };
    for (const ok of ['http://127.0.0.1:8086', 'http://127.0.0.1:8086/', 'https://[::1]:8086'])
      expect(refused(ok), ok).toBe('accepted');
    for (const bad of [
      'http://user:s3cret@127.0.0.1:8086',
      'http://:s3cret@127.0.0.1:8086',
      'http://127.0.0.1:8086/admin',
      'http://127.0.0.1:8086?token=s3cret',
      'http://127.0.0.1:8086/#clock',
    ]) {
      const told = refused(bad);
      expect(told, bad).toMatch(
        /^Invalid environment:\n {2}- GOVERNOR_EMULATOR_ADMIN: expected http:\/\/HOST:PORT with no credentials, path, query or fragment/,
      );
      expect(told, bad).not.toContain('s3cret');
    }
  });

  it('refuses a state store variable set for the other store: the run would keep its state, and its lease, elsewhere', () => {
    const faults = (env: Record<string, string>) => {
      try {
        parseRuntimeOptions(env);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        return e.faults.map((f) => `${f.path}: ${f.message}`);
      }
      return [];
    };
    // Before, the Firestore ids without GOVERNOR_STATE_STORE=firestore were dropped: the command
    // ran on the file store, under a lease of its own, beside a function that holds the
    // Firestore one over the same services.
    expect(
      faults({ GOVERNOR_FIRESTORE_DATABASE: 'governor-db', GOVERNOR_FIRESTORE_COLLECTION: 'c' }),
    ).toEqual([
      'GOVERNOR_FIRESTORE_DATABASE: set without GOVERNOR_STATE_STORE=firestore: the state would be kept in the file store; set GOVERNOR_STATE_STORE=firestore, or unset GOVERNOR_FIRESTORE_DATABASE',
      'GOVERNOR_FIRESTORE_COLLECTION: set without GOVERNOR_STATE_STORE=firestore: the state would be kept in the file store; set GOVERNOR_STATE_STORE=firestore, or unset GOVERNOR_FIRESTORE_COLLECTION',
    ]);
    expect(
      faults({ GOVERNOR_STATE_STORE: 'file', GOVERNOR_FIRESTORE_DATABASE: 'governor-db' }),
    ).toHaveLength(1);
    // The folder beside Firestore, as --state-dir beside it is (runtime.ts checkStateStore).
    expect(faults({ GOVERNOR_STATE_STORE: 'firestore', GOVERNOR_STATE_DIR: '/var/state' })).toEqual(
      [
        "GOVERNOR_STATE_DIR: names the file store's folder, but GOVERNOR_STATE_STORE is firestore: unset GOVERNOR_STATE_DIR, or GOVERNOR_STATE_STORE to use the file store",
      ],
    );
    // Empty is unset, as everywhere.
    expect(faults({ GOVERNOR_FIRESTORE_DATABASE: ' ', GOVERNOR_FIRESTORE_COLLECTION: '' })).toEqual(
      [],
    );
    expect(faults({ GOVERNOR_STATE_STORE: 'firestore', GOVERNOR_STATE_DIR: '' })).toEqual([]);
  });

  it('reads GOVERNOR_STATE_STORE with blanks around it as the other variables are read', () => {
    // Before, " firestore" (a .env file's space) was refused as not one of file or firestore.
    expect(parseRuntimeOptions({ GOVERNOR_STATE_STORE: ' firestore\t' }).stateStore).toMatchObject({
      kind: 'firestore',
    });
    expect(() => parseRuntimeOptions({ GOVERNOR_STATE_STORE: 'Firestore' })).toThrow(
      /GOVERNOR_STATE_STORE: .*"file"\|"firestore"/,
    );
  });

  it('refuses an emulator address with a control character: it is printed in error lines', () => {
    for (const name of ['GOVERNOR_EMULATOR_HOST', 'PUBSUB_EMULATOR_HOST'])
      for (const bad of ['host\u001b[2J:8085', 'ho\u0000st:8085', '[::1\u0007]:8085'])
        expect(
          () => parseRuntimeOptions({ [name]: bad }),
          `${name}=${JSON.stringify(bad)}`,
        ).toThrow(new RegExp(`${name}: expected HOST:PORT`));
  });

  it('a run deadline too long is one fault, not one for each bound it passes', () => {
    let error: unknown;
    try {
      parseRuntimeOptions({ GOVERNOR_RUN_DEADLINE: '99999d' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).faults).toEqual([
      { path: 'GOVERNOR_RUN_DEADLINE', message: 'expected at most 24d, the longest a timer waits' },
    ]);
  });

  it('takes an emulator port from 1 to 65535 only', () => {
    expect(parseRuntimeOptions({ GOVERNOR_EMULATOR_HOST: '[::1]:65535' }).emulatorHost).toBe(
      '[::1]:65535',
    );
    for (const bad of ['127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:99999', 'localhost:00000']) {
      for (const name of ['GOVERNOR_EMULATOR_HOST', 'PUBSUB_EMULATOR_HOST']) {
        expect(() => parseRuntimeOptions({ [name]: bad }), `${name}=${bad}`).toThrow(
          /port from 1 to 65535/,
        );
      }
    }
  });

  it("refuses an emulator address its client would refuse, as bad input rather than the client's failure", () => {
    // The Firestore client reads FIRESTORE_EMULATOR_HOST itself, as it is, and throws from its
    // constructor on one that is no host (an "unexpected failure" to the user before); the
    // three addresses are held to one rule.
    const names = ['GOVERNOR_EMULATOR_HOST', 'PUBSUB_EMULATOR_HOST', 'FIRESTORE_EMULATOR_HOST'];
    for (const name of names)
      for (const bad of [
        'not a host',
        'host/path:8080',
        'user@host:8080',
        'host?q:8080',
        '[zz]:8080',
      ])
        expect(() => parseRuntimeOptions({ [name]: bad }), `${name}=${bad}`).toThrow(
          new RegExp(`${name}: expected HOST:PORT`),
        );
    for (const ok of ['127.0.0.1:8080', '[::1]:8080', 'localhost:8080'])
      expect(parseRuntimeOptions({ FIRESTORE_EMULATOR_HOST: ok }).firestoreEmulatorHost).toBe(ok);
    // Read by the client as it is: blanks around it, or of blanks only, are no host to it.
    for (const bad of [' 127.0.0.1:8080', '127.0.0.1:8080 ', '   '])
      expect(() => parseRuntimeOptions({ FIRESTORE_EMULATOR_HOST: bad }), bad).toThrow(
        /FIRESTORE_EMULATOR_HOST: expected HOST:PORT/,
      );
    expect(parseRuntimeOptions({ FIRESTORE_EMULATOR_HOST: '' }).firestoreEmulatorHost).toBeNull();
  });

  it('refuses a PUBSUB_EMULATOR_HOST of blanks only: the Pub/Sub client takes it for an emulator', () => {
    // Counted as unset here (Google's Pub/Sub), the client read it as an emulator at "   "
    // (plaintext, no credentials) and every publish failed to connect. Blanks around an address
    // are dropped: the sink names the trimmed one to the client, which then ignores the variable.
    for (const blanks of [' ', '   ', '\t'])
      expect(() => parseRuntimeOptions({ PUBSUB_EMULATOR_HOST: blanks }), blanks).toThrow(
        /PUBSUB_EMULATOR_HOST: expected HOST:PORT/,
      );
    expect(parseRuntimeOptions({ PUBSUB_EMULATOR_HOST: '' }).pubsubEmulatorHost).toBeNull();
    expect(
      parseRuntimeOptions({ PUBSUB_EMULATOR_HOST: ' 127.0.0.1:8085 ' }).pubsubEmulatorHost,
    ).toBe('127.0.0.1:8085');
  });

  it("holds Firestore ids to Google's rules, so a bad one is refused before any run", () => {
    const store = (env: Record<string, string>) =>
      parseRuntimeOptions({ GOVERNOR_STATE_STORE: 'firestore', ...env }).stateStore;
    // Database ids: projects.databases.create; collection ids: Firestore's limits page.
    for (const ok of ['(default)', 'gpu-governor', 'abcd', 'a'.repeat(63)])
      expect(store({ GOVERNOR_FIRESTORE_DATABASE: ok })).toMatchObject({ databaseId: ok });
    for (const ok of ['gpu-governor', '__x', 'x__', 'ünïcode', 'é'.repeat(750)])
      expect(store({ GOVERNOR_FIRESTORE_COLLECTION: ok })).toMatchObject({ collection: ok });
    const faults = (env: Record<string, string>) => {
      try {
        store(env);
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as InputError).faults;
      }
      return [];
    };
    for (const bad of [
      'db',
      'Bad_DB',
      '1abc',
      'abc-',
      'a'.repeat(64),
      '(DEFAULT)',
      'abcdef01-0123-4567-89ab-0123456789ab', // UUID-like
    ]) {
      const [fault] = faults({ GOVERNOR_FIRESTORE_DATABASE: bad });
      expect(fault?.path, bad).toBe('GOVERNOR_FIRESTORE_DATABASE');
      expect(fault?.message, bad).toMatch(/Firestore database id/);
    }
    // 'default' is 7 lowercase letters: a valid id, only not the default database.
    expect(faults({ GOVERNOR_FIRESTORE_DATABASE: 'default' })).toEqual([]);
    for (const bad of ['a/b', '.', '..', '__x__', '____', 'é'.repeat(751), 'x'.repeat(1_501)]) {
      const [fault] = faults({ GOVERNOR_FIRESTORE_COLLECTION: bad });
      expect(fault?.path, bad).toBe('GOVERNOR_FIRESTORE_COLLECTION');
      expect(fault?.message, bad).toMatch(/Firestore collection id/);
      expect(fault?.message, bad).not.toContain('x'.repeat(100));
    }
  });

  it('says which rule a refused Firestore database id breaks, as the README states the rules', () => {
    const refusal = (id: string) => {
      try {
        parseRuntimeOptions({ GOVERNOR_STATE_STORE: 'firestore', GOVERNOR_FIRESTORE_DATABASE: id });
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as InputError).faults[0]?.message ?? '';
      }
      throw new Error(`${id} was accepted`);
    };
    // Every other rule it states holds for this id: only its shape, a UUID's, is refused.
    expect(refusal('abcdef01-0123-4567-89ab-0123456789ab')).toMatch(/not UUID-like/);
    expect(refusal('abc-')).toMatch(/ending with a letter or digit/);
    const row = readFileSync('README.md', 'utf8')
      .split('\n')
      .find((line) => line.startsWith('| `GOVERNOR_FIRESTORE_DATABASE`'));
    expect(row).toMatch(/a letter first, a letter or digit last, not UUID-like/);
  });

  it('colours: FORCE_COLOR wins, NO_COLOR and TERM=dumb turn them off', () => {
    expect(parseRuntimeOptions({ FORCE_COLOR: '1', NO_COLOR: '1' }).color).toBe('always');
    expect(parseRuntimeOptions({ TERM: 'dumb' }).color).toBe('never');
    expect(parseRuntimeOptions({}).color).toBe('auto');
  });

  it('TERM=dumb: a terminal that cannot move its cursor, whatever FORCE_COLOR says', () => {
    // "dumb" in terminfo(5): no cursor addressing, so the demo prints plain lines there.
    expect(parseRuntimeOptions({ TERM: 'dumb' }).cursor).toBe(false);
    expect(parseRuntimeOptions({ TERM: 'dumb', FORCE_COLOR: '1' }).cursor).toBe(false);
    expect(parseRuntimeOptions({ TERM: 'xterm-256color' }).cursor).toBe(true);
  });

  it('FORCE_COLOR as Node.js reads it: 1, 2, 3 or true force colours, any other value turns them off', () => {
    for (const on of ['1', '2', '3', 'true'])
      expect(parseRuntimeOptions({ FORCE_COLOR: on, TERM: 'dumb' }).color, on).toBe('always');
    // Before, 0 left them on a terminal, and false or no forced them into files and pipes.
    for (const off of ['0', 'false', 'no'])
      expect(parseRuntimeOptions({ FORCE_COLOR: off }).color, off).toBe('never');
  });

  it('colours: a NO_COLOR or FORCE_COLOR of blanks is set, not unset, as their rules read it', () => {
    // no-color.org: NO_COLOR "when present and not an empty string (regardless of its value)";
    // Node.js: a FORCE_COLOR other than 1, 2, 3 or true turns colours off.
    expect(parseRuntimeOptions({ NO_COLOR: ' ' }).color).toBe('never');
    expect(parseRuntimeOptions({ FORCE_COLOR: ' ' }).color).toBe('never');
    expect(parseRuntimeOptions({ FORCE_COLOR: ' 1 ' }).color).toBe('always');
    expect(parseRuntimeOptions({ NO_COLOR: '', FORCE_COLOR: '' }).color).toBe('auto');
  });

  it('names each variable that is wrong, at once', () => {
    const bad = {
      GOVERNOR_STATE_STORE: 'postgres',
      GOVERNOR_RUN_DEADLINE: 'soon',
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '3',
      GOVERNOR_EMULATOR_HOST: 'nowhere',
      GOVERNOR_EMULATOR_ADMIN: 'not a url',
      PUBSUB_EMULATOR_HOST: 'localhost',
    };
    let error: unknown;
    try {
      parseRuntimeOptions(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).faults.map((f) => f.path).sort()).toEqual(Object.keys(bad).sort());
  });
});

describe('the command line with a bad environment', () => {
  it('exits 2 naming the variable, before doing anything', async () => {
    let stdout = '';
    let stderr = '';
    const code = await main(['validate', '--policy', 'examples/policy.yaml'], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env: { GOVERNOR_RUN_DEADLINE: 'soon' },
    });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('GOVERNOR_RUN_DEADLINE');
  });

  it('GOVERNOR_ID with a control character, or over 200 characters, is refused: it is stamped on every service written', async () => {
    let stderr = '';
    const code = await main(['validate', '--policy', 'examples/policy.yaml'], {
      stdout: { write: () => undefined },
      stderr: { write: (s: string) => (stderr += s) },
      // A clipboard write (OSC 52) and a carriage return: shown to whoever reads the stamp.
      env: { GOVERNOR_ID: 'ops\u001b]52;c;SGk=\u0007\rteam' },
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/GOVERNOR_ID: .*control character/);
    expect(stderr).not.toMatch(/(?!\n)\p{Cc}/u);
    // Too long, in the same words as every other refusal of the environment.
    expect(() => parseRuntimeOptions({ GOVERNOR_ID: 'g'.repeat(201) })).toThrow(
      /GOVERNOR_ID: expected at most 200 characters: it is stamped on every service/,
    );
    expect(parseRuntimeOptions({ GOVERNOR_ID: 'g'.repeat(200) }).governorId).toBe('g'.repeat(200));
    // USER, its default, is the login's: its control characters are spaces, not a refusal.
    expect(parseRuntimeOptions({ USER: 'ann\u001b[2J' }).governorId).toBe(
      `cli:ann [2J@${hostname()}`,
    );
    // Its defaults are held to the same 200 characters: a 1 MB USER (or K_SERVICE) was stamped
    // whole on every service written, an annotation Cloud Run would refuse at every write.
    const long = parseRuntimeOptions({ USER: 'u'.repeat(1 << 20) }).governorId;
    expect(long.length).toBeLessThanOrEqual(200);
    expect(long).toMatch(/^cli:u+…$/);
    const service = parseRuntimeOptions({ K_SERVICE: 's'.repeat(1 << 20) }).governorId;
    expect(service.length).toBeLessThanOrEqual(200);
    expect(service).toMatch(/^function:s+…$/);
    // K_SERVICE, its default in the function (and in any shell that sets it), the same way.
    expect(parseRuntimeOptions({ K_SERVICE: 'gov\r\u001b[2Jx' }).governorId).toBe(
      'function:gov [2Jx',
    );
  });
});
