import { hostname } from 'node:os';
import { z } from 'zod';
import { Duration, DURATION_PATTERN, durationMs } from './core/duration.js';
import { zodFaults } from './core/document.js';
import { CONTROL, oneLine } from './core/text.js';
import { MAX_DELIVERY_ATTEMPTS, MIN_DELIVERY_ATTEMPTS } from './core/work.js';
import { cutText, InputError, type Fault } from './core/errors.js';

/**
 * The governor's settings from the environment, read here and only here: the CLI's `main` and the
 * function's handler parse `process.env` once per run and pass the result down; nothing else looks
 * at the environment but the function's entry (src/function/index.ts), which sets NODE_ENV when it
 * loads and reads GOOGLE_CLOUD_PROJECT to name the trace of its log lines. A variable set to the
 * empty string counts as unset, and so does one of blanks only (but NO_COLOR and FORCE_COLOR,
 * whose rules read blanks as a value, and PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST,
 * which their clients read as they are).
 *
 * | variable                        | meaning                                                     |
 * | ------------------------------- | ----------------------------------------------------------- |
 * | GOVERNOR_POLICY                 | the function's policy (YAML or JSON text)                   |
 * | GOVERNOR_STATE_STORE            | `file` (default) or `firestore`                             |
 * | GOVERNOR_STATE_DIR              | the file store's folder (default `.governor/state`); file   |
 * | GOVERNOR_FIRESTORE_DATABASE     | Firestore database id (default `(default)`); with firestore |
 * | GOVERNOR_FIRESTORE_COLLECTION   | root collection (default `gpu-governor`); with firestore    |
 * | GOVERNOR_RUN_DEADLINE           | no write starts after this long, e.g. `240s` (default 4m)   |
 * | GOVERNOR_MAX_DELIVERY_ATTEMPTS  | the work subscription's max_delivery_attempts (5 to 100)    |
 * | GOVERNOR_EMULATOR_HOST          | the emulator's gRPC `HOST:PORT` (see docs/emulator.md)      |
 * | GOVERNOR_EMULATOR_ADMIN         | the emulator's admin URL: its virtual clock is the run's    |
 * | GOVERNOR_EMULATOR_OPERATION_POLL| a write polls the emulator's operation from this, e.g. 20ms |
 * | PUBSUB_EMULATOR_HOST            | a Pub/Sub emulator: Google's, or `governor emulator`'s      |
 * | FIRESTORE_EMULATOR_HOST         | Google's Firestore emulator (read by its client, as it is)  |
 * | GOVERNOR_ID                     | this governor's name, stamped on what it writes (see below) |
 * | K_SERVICE, USER                 | the defaults of GOVERNOR_ID: the function's service, a user |
 * | GOVERNOR_DEBUG                  | `1`: the CLI prints the stack trace of an unexpected error  |
 * | NO_COLOR, FORCE_COLOR, TERM     | colours on a terminal (https://no-color.org)                |
 */

const unsetWhenEmpty = (value: unknown): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess(unsetWhenEmpty, schema.optional());
}

/**
 * A variable whose blanks are a value to whoever else reads it (a Google client library,
 * no-color.org, Node.js): only the empty string counts as unset.
 */
function optionalUnlessEmpty<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
}

const HOST_PORT = 'expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:8085';

/**
 * An emulator's address, one rule for the three: a host and a port, and nothing a URL would read
 * as more (a path, a query, credentials), which is how the Firestore client checks
 * FIRESTORE_EMULATOR_HOST before throwing from its constructor (its validateHost parses
 * `http://VALUE/`).
 */
function isHostPort(text: string): boolean {
  // No control character: the address is printed in error lines, on terminals.
  const m = /^(\[[^\]\p{Cc}]+\]|[^:\s\p{Cc}/?#@]+):(\d{1,5})$/u.exec(text);
  const port = Number(m?.[2]);
  if (!(port >= 1 && port <= 65_535)) return false;
  if (!URL.canParse(`http://${text}/`)) return false;
  const url = new URL(`http://${text}/`);
  return url.pathname === '/' && url.search === '' && url.username === '' && url.hash === '';
}

const HostPort = z.string().trim().refine(isHostPort, HOST_PORT);

/**
 * An address a Google client library reads from the environment itself, as it is set
 * (FIRESTORE_EMULATOR_HOST): only the empty string is unset to it, and blanks are part of the
 * value, so they are refused here rather than dropped.
 */
const RawHostPort = optionalUnlessEmpty(z.string().refine(isHostPort, HOST_PORT));

/**
 * A Firestore database id as Google's CreateDatabase takes it: 4 to 63 characters of [a-z0-9-],
 * a letter first, a letter or digit last, not UUID-like; or `(default)`
 * (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases/create).
 */
const FIRESTORE_DATABASE =
  'expected a Firestore database id: (default), or 4 to 63 lowercase letters, digits or hyphens, starting with a letter, ending with a letter or digit, and not UUID-like (8-4-4-4-12 hexadecimal digits)';
const FirestoreDatabase = z
  .string()
  .trim()
  .refine(
    (id) =>
      id === '(default)' ||
      (/^[a-z][a-z0-9-]{2,61}[a-z0-9]$/.test(id) &&
        !/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(id)),
    FIRESTORE_DATABASE,
  );

/**
 * A Firestore collection id: at most 1,500 bytes of UTF-8, no `/`, not `.` or `..`, not matching
 * `__.*__` (https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields).
 * Checked here so that a bad one is a usage error before any run, not a failed run.
 */
const FIRESTORE_COLLECTION =
  'expected a Firestore collection id: at most 1,500 bytes, no "/", not "." or "..", not __…__';
const FirestoreCollection = z
  .string()
  .trim()
  .refine(
    (id) =>
      Buffer.byteLength(id, 'utf8') <= 1_500 &&
      !id.includes('/') &&
      id !== '.' &&
      id !== '..' &&
      !/^__.*__$/s.test(id),
    FIRESTORE_COLLECTION,
  );

/**
 * The longest run deadline: 24 days. Every outside call waits on a timer of what is left of it,
 * and Node.js runs a timer of more than 2,147,483,647 ms (24.8 days) after 1 ms ("When delay is
 * larger than 2147483647 or less than 1 or NaN, the delay will be set to 1",
 * https://nodejs.org/api/timers.html#settimeoutcallback-delay-args): a longer deadline would give
 * up every call at once as past it.
 */
export const MAX_RUN_DEADLINE_MS = 24 * 86_400_000;

const DELIVERY_ATTEMPTS = `expected a whole number from ${MIN_DELIVERY_ATTEMPTS} to ${MAX_DELIVERY_ATTEMPTS} (the bounds of Pub/Sub's max_delivery_attempts)`;

/** The longest governor name: it is stamped on every service written (GOVERNOR_ID, or its defaults). */
const MAX_GOVERNOR_ID = 200;

/** The variables as they are set. Unknown variables are ignored. */
const RuntimeEnv = z.object({
  GOVERNOR_POLICY: optional(z.string()),
  // Blanks around it are dropped, as around the other variables' values.
  GOVERNOR_STATE_STORE: optional(
    z
      .string()
      .trim()
      .pipe(z.enum(['file', 'firestore'])),
  ),
  GOVERNOR_STATE_DIR: optional(z.string()),
  GOVERNOR_FIRESTORE_DATABASE: optional(FirestoreDatabase),
  GOVERNOR_FIRESTORE_COLLECTION: optional(FirestoreCollection),
  // Zero would fail every run before its first read ("the run deadline had passed"), which reads
  // as a failing state store rather than a deployment misconfigured (the Terraform module asks for
  // at least 1s too).
  GOVERNOR_RUN_DEADLINE: optional(
    // The longest first: one past it is told this bound alone, not also every duration's 366d.
    z
      .string()
      .refine(
        (text) => !DURATION_PATTERN.test(text) || durationMs(text) <= MAX_RUN_DEADLINE_MS,
        'expected at most 24d, the longest a timer waits',
      )
      .pipe(
        // A duration is more than zero when a digit of it is; a text that is no duration is told
        // so once.
        Duration.refine(
          (text) => !DURATION_PATTERN.test(text) || /[1-9]/.test(text),
          'expected more than 0s, such as "240s"',
        ),
      ),
  ),
  // The unit's last delivery is alerted (src/function/org.ts); Pub/Sub's bounds (core/work.ts).
  GOVERNOR_MAX_DELIVERY_ATTEMPTS: optional(
    z
      .string()
      .trim()
      .regex(/^\d{1,3}$/, DELIVERY_ATTEMPTS)
      .transform(Number)
      .pipe(
        z
          .number()
          .min(MIN_DELIVERY_ATTEMPTS, DELIVERY_ATTEMPTS)
          .max(MAX_DELIVERY_ATTEMPTS, DELIVERY_ATTEMPTS),
      ),
  ),
  GOVERNOR_EMULATOR_HOST: optional(HostPort),
  // The clock is read at `/clock` on the URL's origin (adapters/clock.ts): a path, a query or a
  // fragment would be dropped without a word, and credentials are refused by Node.js's fetch
  // ("Request cannot be constructed from a URL that includes credentials",
  // https://fetch.spec.whatwg.org/#dom-request) after being printed in the run's error line.
  GOVERNOR_EMULATOR_ADMIN: optional(
    z
      .url({ protocol: /^https?$/, error: 'expected an http URL, e.g. http://127.0.0.1:8086' })
      .refine((text) => {
        // Not a URL: told so once, above.
        if (!URL.canParse(text)) return true;
        const url = new URL(text);
        return (
          url.username === '' &&
          url.password === '' &&
          url.pathname === '/' &&
          url.search === '' &&
          url.hash === '' &&
          !text.includes('#') &&
          !text.includes('?')
        );
      }, 'expected http://HOST:PORT with no credentials, path, query or fragment, e.g. http://127.0.0.1:8086'),
  ),
  // Polling an operation of the emulator (on this machine, so a read costs nothing) sooner than
  // Google's from 1 s: more than 1 s would only slow a run, and 0 is no interval.
  GOVERNOR_EMULATOR_OPERATION_POLL: optional(
    Duration.refine(
      (text) => !DURATION_PATTERN.test(text) || (durationMs(text) > 0 && durationMs(text) <= 1_000),
      'expected from 1ms to 1s, such as "20ms"',
    ),
  ),
  // Only empty is unset: the Pub/Sub client reads the variable itself and takes blanks for an
  // emulator's address (plaintext, no credentials). Blanks around an address are dropped: the
  // sinks name the trimmed one to the client (its apiEndpoint), which then ignores the variable.
  PUBSUB_EMULATOR_HOST: optionalUnlessEmpty(HostPort),
  // Not given to the client: it reads the variable itself (adapters/firestore-store.ts). Checked
  // here so that a malformed one is bad input, not a client that throws when it is built.
  FIRESTORE_EMULATOR_HOST: RawHostPort,
  // Stamped on every service written and named in leases, alerts and logs, which show it to
  // people: a terminal escape or a newline in it would act on their terminals.
  GOVERNOR_ID: optional(
    z
      .string()
      .trim()
      .max(
        MAX_GOVERNOR_ID,
        'expected at most 200 characters: it is stamped on every service the governor writes',
      )
      .refine(
        (id) => !CONTROL.test(id),
        'expected no control character (a newline, a terminal escape): it is stamped on every service the governor writes',
      ),
  ),
  K_SERVICE: optional(z.string().trim()),
  USER: optional(z.string().trim()),
  GOVERNOR_DEBUG: optional(z.string()),
  // Only empty is unset here: blanks are a value to no-color.org ("present and not an empty
  // string (regardless of its value)") and to Node.js's FORCE_COLOR (colorMode, below).
  NO_COLOR: optionalUnlessEmpty(z.string()),
  FORCE_COLOR: optionalUnlessEmpty(z.string()),
  TERM: optional(z.string()),
});
type RuntimeEnv = z.infer<typeof RuntimeEnv>;

/** Where the state store keeps its documents. */
export type StateStoreOptions =
  | { kind: 'file'; dir: string | null }
  | { kind: 'firestore'; databaseId: string | null; collection: string | null };

function stateStoreOptions(env: RuntimeEnv): StateStoreOptions {
  if (env.GOVERNOR_STATE_STORE === 'firestore') {
    return {
      kind: 'firestore',
      databaseId: env.GOVERNOR_FIRESTORE_DATABASE ?? null,
      collection: env.GOVERNOR_FIRESTORE_COLLECTION ?? null,
    };
  }
  return { kind: 'file', dir: env.GOVERNOR_STATE_DIR ?? null };
}

/** The FORCE_COLOR values that ask for colours; any other turns them off (Node.js, below). */
const FORCE_COLOR_ON = ['1', '2', '3', 'true'];

/**
 * Colours on a terminal. FORCE_COLOR wins, read as Node.js reads it: `1`, `true`, `2` or `3`
 * force colours, "Any other value will result in colorized output being disabled"
 * (https://nodejs.org/api/cli.html#force_color1-2-3), so `FORCE_COLOR=0` or `false` turns them
 * off even on a terminal. Then NO_COLOR or TERM=dumb turn them off: NO_COLOR "when present and
 * not an empty string (regardless of its value)" (https://no-color.org).
 */
function colorMode(env: RuntimeEnv): 'always' | 'never' | 'auto' {
  if (env.FORCE_COLOR !== undefined)
    return FORCE_COLOR_ON.includes(env.FORCE_COLOR.trim().toLowerCase()) ? 'always' : 'never';
  if (env.NO_COLOR !== undefined || env.TERM === 'dumb') return 'never';
  return 'auto';
}

/**
 * The name a governor stamps, with its state store's id, on every service it writes
 * (`gpu-governor.dev/writer`; see reconcile's writerStamp): for people to tell who wrote. The
 * store's id is what tells governors apart (two state directories on one machine are two
 * governors under one name). GOVERNOR_ID; else, in a Cloud Function, its Cloud Run service
 * (K_SERVICE, set by the runtime); else the user and the host.
 */
function governorId(env: RuntimeEnv): string {
  if (env.GOVERNOR_ID) return env.GOVERNOR_ID;
  // The defaults are read as they come, their control characters as spaces (GOVERNOR_ID refuses
  // them): a name stamped on every service written is shown to people.
  // Cut to GOVERNOR_ID's bound, too: the name is stamped on every service written.
  const service = oneLine(env.K_SERVICE ?? '');
  if (service) return cutText(`function:${service}`, MAX_GOVERNOR_ID);
  return cutText(`cli:${oneLine(env.USER ?? '') || 'user'}@${hostname()}`, MAX_GOVERNOR_ID);
}

/** What a run needs of the environment, parsed and with the defaults filled in. */
export const RuntimeOptions = RuntimeEnv.transform((env) => ({
  /** GOVERNOR_POLICY: the function's policy text (the CLI reads its policy from --policy). */
  policyText: env.GOVERNOR_POLICY ?? null,
  stateStore: stateStoreOptions(env),
  /** No write starts after this long (ms). */
  runDeadlineMs: durationMs(env.GOVERNOR_RUN_DEADLINE ?? '4m'),
  /**
   * The work subscription's max_delivery_attempts, for the unit to know its last delivery; null:
   * not told, so every failed delivery counts as possibly the last (core/work.ts).
   */
  maxDeliveryAttempts: env.GOVERNOR_MAX_DELIVERY_ATTEMPTS ?? null,
  /** `HOST:PORT` of the emulator for the Cloud Run, Monitoring and Quotas clients; null: Google. */
  emulatorHost: env.GOVERNOR_EMULATOR_HOST ?? null,
  /**
   * The emulator's admin URL, whose virtual clock is the run's time; null: the wall clock, or,
   * beside `emulatorHost`, no clock at all (adapters/clock.ts refuses it).
   */
  emulatorAdmin: env.GOVERNOR_EMULATOR_ADMIN ?? null,
  /**
   * GOVERNOR_EMULATOR_OPERATION_POLL (ms): a write against the emulator polls its long-running
   * operation from this (then 1.5 times longer each time, as against Google); null: from 1 s, as
   * against Google (adapters/cloud-run.ts). Only with `emulatorHost`: parseRuntimeOptions refuses
   * it alone, so that Google's operations are never polled faster than the governor's default.
   */
  emulatorOperationPollMs:
    env.GOVERNOR_EMULATOR_OPERATION_POLL === undefined
      ? null
      : durationMs(env.GOVERNOR_EMULATOR_OPERATION_POLL),
  /** `HOST:PORT` of a Pub/Sub emulator for the alert sink; null: Google. */
  pubsubEmulatorHost: env.PUBSUB_EMULATOR_HOST ?? null,
  /** `HOST:PORT` of a Firestore emulator, read by the Firestore client itself; null: Google. */
  firestoreEmulatorHost: env.FIRESTORE_EMULATOR_HOST ?? null,
  governorId: governorId(env),
  color: colorMode(env),
  /**
   * Whether a terminal may have its cursor moved (the demo's view redrawn in place): not with
   * TERM=dumb, which says the terminal has no cursor addressing ("dumb" in terminfo(5)).
   */
  cursor: env.TERM !== 'dumb',
  /** GOVERNOR_DEBUG=1: an unexpected failure (a bug) prints its stack trace too. */
  debug: env.GOVERNOR_DEBUG === '1',
}));
export type RuntimeOptions = z.output<typeof RuntimeOptions>;

/** Parses the environment; a bad value is an InputError naming each variable that is wrong. */
export function parseRuntimeOptions(
  env: Readonly<Record<string, string | undefined>>,
): RuntimeOptions {
  const parsed = RuntimeOptions.safeParse(env);
  if (!parsed.success) throw new InputError('Invalid environment', zodFaults(parsed.error));
  const faults = [...wrongStoreFaults(env)];
  if (parsed.data.emulatorOperationPollMs !== null && parsed.data.emulatorHost === null) {
    faults.push({
      path: 'GOVERNOR_EMULATOR_OPERATION_POLL',
      message:
        "set without GOVERNOR_EMULATOR_HOST: it is for the emulator only (Google's operations are polled from 1s)",
    });
  }
  if (faults.length > 0) throw new InputError('Invalid environment', faults);
  return parsed.data;
}

/**
 * A variable of the state store the environment does not select: refused, not dropped. The
 * Firestore ids without GOVERNOR_STATE_STORE=firestore would run on the file store, under a lease
 * of its own, beside the function that holds the Firestore one over the same services; the file
 * store's folder beside Firestore is refused as `--state-dir` beside it is (runtime.ts).
 */
function wrongStoreFaults(env: Readonly<Record<string, string | undefined>>): Fault[] {
  const set = (name: string) => unsetWhenEmpty(env[name]) !== undefined;
  if (env.GOVERNOR_STATE_STORE?.trim() === 'firestore') {
    return set('GOVERNOR_STATE_DIR')
      ? [
          {
            path: 'GOVERNOR_STATE_DIR',
            message:
              "names the file store's folder, but GOVERNOR_STATE_STORE is firestore: unset GOVERNOR_STATE_DIR, or GOVERNOR_STATE_STORE to use the file store",
          },
        ]
      : [];
  }
  return ['GOVERNOR_FIRESTORE_DATABASE', 'GOVERNOR_FIRESTORE_COLLECTION']
    .filter(set)
    .map((name) => ({
      path: name,
      message: `set without GOVERNOR_STATE_STORE=firestore: the state would be kept in the file store; set GOVERNOR_STATE_STORE=firestore, or unset ${name}`,
    }));
}
