import { inspect } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { PubSub } from '@google-cloud/pubsub';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { runUnlock } from '../../src/cli/unlock-command.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import {
  sharedFirestoreEmulator,
  sharedPubSubEmulator,
  type SharedEmulator,
} from '../support/shared-emulators.js';
import { QUICK_POLL_ENV } from '../support/fixtures.js';

/**
 * The Cloud Function through its real HTTP surface (functions-framework's server), configured the
 * way the Terraform module configures it: the policy in GOVERNOR_POLICY, Firestore as the state
 * store (the real Firestore emulator), alerts to Pub/Sub (the real Pub/Sub emulator), Cloud Run,
 * Monitoring and Quotas from the emulator.
 */

const PROJECT = 'fn-project';
const REGION = 'us-central1';
const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 5 }],
      services: [
        { name: 'idle', region: REGION, gpu: {}, maxInstances: 4, demand: 0 },
        { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: 3 },
      ],
    },
  ],
};
const POLICY_FIELDS = {
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: `projects/${PROJECT}/topics/alerts` },
};
const POLICY = JSON.stringify(POLICY_FIELDS);
const policyWith = (extra: Record<string, unknown>) =>
  JSON.stringify({ ...POLICY_FIELDS, ...extra });

let emulator: RunningEmulator;
let pubsub: SharedEmulator;
let firestore: SharedEmulator;
let http: Server;
let events: Server;
const saved = { ...process.env };
const consoleError = console.error;
const printed: string[] = [];

function base(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function listen(server: Server): Promise<Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

beforeAll(async () => {
  [pubsub, firestore] = await Promise.all([
    sharedPubSubEmulator(PROJECT),
    sharedFirestoreEmulator(PROJECT),
  ]);
  const admin = new PubSub({ projectId: PROJECT, apiEndpoint: pubsub.endpoint });
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  await admin.createTopic('alerts');
  await admin.close();
  // What reaches console.error, as Node would print it (the function's module wraps it on import).
  console.error = (...args: unknown[]) => {
    printed.push(args.map((a) => inspect(a)).join(' '));
    consoleError(...args);
  };
  await import('../../src/function/index.js');
  // As deployed: vitest's NODE_ENV=test would silence Express's default error handler.
  process.env.NODE_ENV = 'production';
  http = await listen(getTestServer('governorHttp'));
  events = await listen(getTestServer('governorEvent'));
});

beforeEach(async () => {
  await emulator?.stop();
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 20 });
  // A test on the file store sets its folder: gone again, as the Firestore store refuses it.
  delete process.env.GOVERNOR_STATE_DIR;
  Object.assign(process.env, {
    ...emulator.env,
    ...QUICK_POLL_ENV,
    GOVERNOR_POLICY: POLICY,
    GOVERNOR_STATE_STORE: 'firestore',
    GOVERNOR_FIRESTORE_COLLECTION: `fn-${Math.random().toString(16).slice(2)}`,
    FIRESTORE_EMULATOR_HOST: firestore.endpoint,
    GOOGLE_CLOUD_PROJECT: PROJECT,
    GOVERNOR_RUN_DEADLINE: '60s',
    PUBSUB_EMULATOR_HOST: pubsub.endpoint,
  });
});

afterAll(async () => {
  console.error = consoleError;
  await new Promise((r) => http?.close(r));
  await new Promise((r) => events?.close(r));
  await emulator?.stop();
  process.env = saved;
});

async function post(
  server: Server,
  body: unknown,
  headers: Record<string, string> = {},
  path = '/',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base(server) + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('the Cloud Function (HTTP entry point)', () => {
  it('runs the governor: 200, the caps written, the run summarised', async () => {
    const r = await post(http, {});
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      outcome: 'ok',
      mode: 'enforce',
      failed: 0,
      notWrittenByCause: {},
      compensated: 0,
    });
    expect(r.json.written).toBeGreaterThan(0);
    expect(emulator.writes().length).toBe(r.json.written);
    for (const w of emulator.writes()) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
  });

  it("every line of a run is one structured entry with the run's id and the request's trace", async () => {
    // Cloud Run sends the trace in X-Cloud-Trace-Context; the run's lines carry it, and the run id
    // that its answer, its run record and its alerts carry, so that one filter finds the run.
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    let r = { status: 0, json: {} as Record<string, unknown> };
    const log = await logOf(async () => {
      r = await post(http, {}, { 'x-cloud-trace-context': `${trace}/123;o=1` });
    });
    expect(r.status).toBe(200);
    const lines = log.trim().split('\n');
    // The run writes caps and publishes an alert: more than its summary line.
    expect(lines.length).toBeGreaterThan(3);
    for (const text of lines) {
      const line = JSON.parse(text) as Record<string, unknown>;
      expect(line.severity, text).toMatch(/^(DEBUG|INFO|WARNING|ERROR)$/);
      expect(line.runId, text).toBe(r.json.runId);
      // In Google's form, named by the function's own project (GOOGLE_CLOUD_PROJECT).
      expect(line['logging.googleapis.com/trace'], text).toBe(
        `projects/${PROJECT}/traces/${trace}`,
      );
    }
    const writes = lines.filter((l) => l.includes('max instances'));
    expect(writes.length).toBe(r.json.written);
    for (const w of writes)
      expect(JSON.parse(w)).toMatchObject({ project: PROJECT, region: REGION });
  });

  it('answers 400 naming the field for a bad request, and writes nothing', async () => {
    const bad = await post(http, { mode: 'yolo', extra: 1 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('mode');
    expect(JSON.stringify(bad.json)).toContain('extra');
    expect(emulator.writes()).toEqual([]);
  });

  it('a dry run asked in the body writes nothing, where the policy allows asking', async () => {
    process.env.GOVERNOR_POLICY = policyWith({ function: { allow: { dryRun: true } } });
    const r = await post(http, { mode: 'dry-run' });
    expect(r.status).toBe(200);
    expect(r.json.mode).toBe('dry-run');
    expect(emulator.writes()).toEqual([]);
  });

  it('the policy decides: a request cannot override its mode or ask for a restore (403)', async () => {
    process.env.GOVERNOR_POLICY = policyWith({ mode: 'dry-run' });
    const r = await post(http, { mode: 'enforce', restore: true });
    expect(r.status).toBe(403);
    expect(JSON.stringify(r.json)).toContain('function.allow.enforce');
    expect(JSON.stringify(r.json)).toContain('function.allow.restore');
    expect(emulator.writes()).toEqual([]);
    // Enforcing policy, a dry run asked without function.allow.dryRun: refused as well.
    process.env.GOVERNOR_POLICY = POLICY;
    const dry = await post(http, { mode: 'dry-run' });
    expect(dry.status).toBe(403);
    expect(JSON.stringify(dry.json)).toContain('function.allow.dryRun');
    // Asking for what the policy already says is no override.
    process.env.GOVERNOR_POLICY = policyWith({ mode: 'dry-run' });
    const same = await post(http, { mode: 'dry-run', restore: false });
    expect(same.status).toBe(200);
    expect(emulator.writes()).toEqual([]);
  });

  it('a request may ask what function.allow lets it: to enforce, to restore', async () => {
    // Asking for what the policy already says is no override, whatever function.allow says.
    const same = await post(http, { mode: 'enforce' });
    expect(same.status).toBe(200);
    expect(same.json.mode).toBe('enforce');
    const planned = emulator.writes().length;
    expect(planned).toBeGreaterThan(0);
    process.env.GOVERNOR_POLICY = policyWith({
      mode: 'dry-run',
      function: { allow: { enforce: true, restore: true } },
    });
    // The policy's own mode writes nothing; the restore asked for puts back each service's max
    // from before the governor, as `governor apply --restore` does.
    const restore = await post(http, { mode: 'enforce', restore: true });
    expect(restore.status).toBe(200);
    expect(restore.json).toMatchObject({ mode: 'enforce', outcome: 'ok' });
    const writes = emulator.writes();
    expect(writes.length).toBeGreaterThan(planned);
    const first = new Map<string, number>();
    const last = new Map<string, number>();
    for (const w of writes) {
      if (!first.has(w.service.name)) first.set(w.service.name, w.before.maxInstances);
      last.set(w.service.name, w.after.maxInstances);
    }
    expect(last).toEqual(first);
  });

  it('only POST / runs: 405 with Allow for other methods, 404 for other paths', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await fetch(base(http), { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    }
    const other = await post(http, {}, {}, '/run');
    expect(other.status).toBe(404);
    expect(emulator.writes()).toEqual([]);
  });

  it('takes an empty body as no request, whatever Content-Type it declares', async () => {
    // The framework's parser for a type it has no other parser for makes an empty body an empty
    // Buffer: read as the request, its methods were "unknown keys" (400).
    process.env.GOVERNOR_POLICY = policyWith({ mode: 'dry-run' });
    for (const type of ['application/octet-stream', 'image/png']) {
      const res = await fetch(base(http), {
        method: 'POST',
        headers: { 'content-type': type },
        body: '',
      });
      const json = (await res.json()) as Record<string, unknown>;
      expect(res.status, type).toBe(200);
      expect(json, type).toMatchObject({ outcome: 'ok', mode: 'dry-run' });
    }
    expect(emulator.writes()).toEqual([]);
  });

  it('refuses a query string (400): the request goes in the body, and nothing runs', async () => {
    // `?mode=dry-run` read as nothing would start an enforcing run for a caller who asked for a
    // dry run; the function reads no parameter from the URL.
    for (const query of ['?mode=dry-run', '?restore=true', '?x']) {
      const r = await post(http, {}, {}, `/${query}`);
      expect(r.status, query).toBe(400);
      expect(String(r.json.error), query).toMatch(
        /^the function reads no query string: put the request in the JSON body/,
      );
      expect(JSON.stringify(r.json), query).not.toContain('restore=true');
    }
    expect(emulator.writes()).toEqual([]);
  });

  it('logs each refused request in one line, without a stack trace or the body', async () => {
    process.env.GOVERNOR_POLICY = policyWith({ mode: 'dry-run' });
    const refused: [string, () => Promise<number>, RegExp][] = [
      [
        'GET',
        async () => (await fetch(base(http), { method: 'GET' })).status,
        /\(405\): method GET/,
      ],
      ['path', async () => (await post(http, {}, {}, '/run')).status, /\(404\): no such path/],
      [
        'query',
        async () => (await post(http, {}, {}, '/?mode=enforce')).status,
        /\(400\): the function reads no query string/,
      ],
      [
        'type',
        async () => (await post(http, 'SECRET-1', { 'content-type': 'text/plain' })).status,
        /\(415\): the request body must be JSON/,
      ],
      [
        'size',
        async () => (await post(http, { mode: 'SECRET-2'.repeat(10_000) })).status,
        /\(413\): the request body has \d+ bytes/,
      ],
      [
        'field',
        async () => (await post(http, { mode: 'SECRET-3' })).status,
        /\(400\): bad request body/,
      ],
      [
        'policy',
        async () => (await post(http, { restore: true })).status,
        /\(403\): the policy does not allow what the request asks/,
      ],
    ];
    for (const [name, send, line] of refused) {
      let status = 0;
      const log = await logOf(async () => {
        status = await send();
      });
      expect(status, name).toBeGreaterThanOrEqual(400);
      expect(status, name).toBeLessThan(500);
      const lines = log.trim().split('\n');
      expect(lines, name).toHaveLength(1);
      const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      expect(entry.severity, name).toBe('WARNING');
      expect(entry, name).not.toHaveProperty('@type');
      expect(String(entry.message), name).toMatch(/^refused a request /);
      expect(String(entry.message), name).toMatch(line);
      expect(entry, name).not.toHaveProperty('stack_trace');
      expect(log, name).not.toContain('SECRET');
    }
    expect(emulator.writes()).toEqual([]);
  });

  it('never logs a JSON body it cannot parse, not even through the framework', async () => {
    const before = printed.length;
    const log = await logOf(async () => {
      for (const body of ['{"token": "SECRET-5e1d', '{"token": SECRET-5e1d}']) {
        const res = await fetch(`${base(http)}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        expect(res.status).toBe(400);
      }
    });
    const seen = printed.slice(before).join('\n');
    expect(seen).not.toContain('SECRET');
    expect(log).not.toContain('SECRET');
    expect(log.match(/could not be parsed/g)).toHaveLength(2);
    expect(emulator.writes()).toEqual([]);
  });

  it('logs what else reaches console.error as one structured ERROR entry, its stack for Error Reporting', async () => {
    // Plain text on stderr has no severity in Cloud Logging, and a stack trace printed as text is
    // one entry a line. functions-framework prints an uncaught exception or an unhandled rejection
    // so (its invoker.js): `console.error('Uncaught exception')`, then the error's stack.
    const before = printed.length;
    const error = new Error('an error that is not a request body');
    const log = await logOf(async () => {
      console.error('Uncaught exception');
      console.error(error.stack);
      console.error(error);
      console.error('a library says', { code: 14 });
    });
    expect(printed.slice(before)).toEqual([]);
    const lines = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.severity)).toEqual(['ERROR', 'ERROR', 'ERROR', 'ERROR']);
    expect(lines[0]?.message).toBe('Uncaught exception');
    // Error Reporting reads a stack trace in `message`, or first in `stack_trace`
    // (https://cloud.google.com/error-reporting/docs/formatting-error-messages).
    expect(lines[1]?.message).toBe(error.stack);
    expect(String(lines[1]?.message)).toMatch(
      /^Error: an error that is not a request body\n\s+at /,
    );
    expect(lines[2]).toMatchObject({
      message: 'Error: an error that is not a request body',
      stack_trace: error.stack,
    });
    expect(lines[3]?.message).toBe('a library says { code: 14 }');
  });

  it('logs one line, no stack trace, for a body the framework refuses before the function runs', async () => {
    const before = printed.length;
    const refused: [Record<string, string>, string, number, RegExp][] = [
      [
        { 'content-type': 'application/json; charset=latin1' },
        '{}',
        415,
        /refused a request \(415\): unsupported charset \W*LATIN1/,
      ],
      [
        { 'content-type': 'application/json', 'content-encoding': 'x-evil' },
        '{}',
        415,
        /refused a request \(415\): unsupported content encoding \W*x-evil/,
      ],
      [
        { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        'not gzip at all',
        400,
        /refused a request \(400\): /,
      ],
    ];
    for (const [headers, body, status, line] of refused) {
      const log = await logOf(async () => {
        const res = await fetch(`${base(http)}/`, { method: 'POST', headers, body });
        expect(res.status, JSON.stringify(headers)).toBe(status);
      });
      expect(log, JSON.stringify(headers)).toMatch(line);
      expect(log.trim().split('\n'), JSON.stringify(headers)).toHaveLength(1);
    }
    const seen = printed.slice(before).join('\n');
    expect(seen).not.toMatch(/\bat \S+ \(|node_modules|UnsupportedMediaTypeError/);
    expect(emulator.writes()).toEqual([]);
  });

  it('logs a path Express cannot decode as one refused request, no stack trace, not the path', async () => {
    // Express's router refuses a path whose percent-encoding does not decode (400, before the
    // function runs) and prints the URIError, which quotes the path and carries no `expose`.
    for (const [name, server] of [
      ['governorHttp', http],
      ['governorEvent', events],
    ] as const) {
      let status = 0;
      const log = await logOf(async () => {
        const res = await fetch(`${base(server)}/SECRET-9%E0%A4%A`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        status = res.status;
        expect(await res.text(), name).not.toMatch(/SECRET|\w+Error|\bat \S+ \(/);
      });
      expect(status, name).toBe(400);
      const lines = log.trim().split('\n');
      expect(lines, name).toHaveLength(1);
      expect(JSON.parse(lines[0] ?? ''), name).toEqual({
        severity: 'WARNING',
        message: 'refused a request (400): its path is not valid percent-encoding',
      });
    }
    expect(emulator.writes()).toEqual([]);
  });

  it('caps the body (413), refuses a body that is not JSON (415), and caps the faults', async () => {
    const big = await post(http, { mode: 'x'.repeat(100 * 1024) });
    expect(big.status).toBe(413);
    expect(JSON.stringify(big.json).length).toBeLessThan(500);
    const text = await post(http, 'mode=enforce', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    // 6000 unknown keys in 60 KB: the answer names the first 20 and counts the rest.
    const keys = Object.fromEntries(Array.from({ length: 6000 }, (_, i) => [`k${i}`, 0]));
    const many = await post(http, keys);
    expect(many.status).toBe(400);
    const faults = many.json.faults as { path: string; message: string }[];
    expect(faults).toHaveLength(21);
    expect(faults[20]?.message).toBe('and 5980 more problems');
    expect(JSON.stringify(many.json).length).toBeLessThan(8 * 1024);
    expect(emulator.writes()).toEqual([]);
  });

  it('refuses a chunked body of no JSON type (415) as one sent with its length, and caps it (413)', async () => {
    // Sent without Content-Length (Transfer-Encoding: chunked) and without a Content-Type, a body
    // is read by none of the framework's parsers: taken as empty, its `{"mode": "dry-run"}` would
    // have started the policy's enforcing run.
    const chunked = (chunks: string[]) =>
      fetch(base(http), {
        method: 'POST',
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const asked = await chunked(['{"mode":', ' "dry-run"}']);
    expect(asked.status).toBe(415);
    expect(await asked.json()).toEqual({
      error: 'the request body must be JSON (Content-Type: application/json)',
    });
    const big = await chunked(Array.from({ length: 70 }, () => 'x'.repeat(1024)));
    expect(big.status).toBe(413);
    expect(emulator.writes()).toEqual([]);
    // A chunked body with no bytes is no request, as an empty one of any type.
    const none = await chunked([]);
    expect(none.status).toBe(200);
    expect(await none.json()).toMatchObject({ outcome: 'ok', mode: 'enforce' });
  });

  it('answers 500 while another governor holds the lease, even one set to end in year 9999, and writes nothing', async () => {
    const store = createFirestoreStateStore({
      projectId: PROJECT,
      collection: process.env.GOVERNOR_FIRESTORE_COLLECTION ?? '',
    });
    try {
      const now = new Date().toISOString();
      await store.acquireLease(PROJECT, 'someone-else', 60_000, now);
      await store.renewLease(
        PROJECT,
        'someone-else',
        Date.parse('9999-12-31T23:59:59Z') - Date.now(),
        now,
      );
      let r = { status: 0, json: {} as Record<string, unknown> };
      const log = await logOf(async () => {
        r = await post(http, {});
      });
      expect(r.status).toBe(500);
      expect(r.json).toMatchObject({ outcome: 'lease-held' });
      // The failure is one error event (its summary), whatever other lines name the lease.
      const events = log
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => '@type' in l);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ severity: 'ERROR', runId: r.json.runId });
      expect(String(events[0]?.message)).toMatch(
        new RegExp(`^run failed: another governor holds the lease of ${PROJECT} \\(run-`),
      );
      expect(emulator.writes()).toEqual([]);
      // Capped at the run's now + time-to-live (deadline 60 s + 60 s) on the wall clock: it ends.
      const lease = await store.readLease(PROJECT);
      expect(lease?.holder).toBe('someone-else');
      expect(Date.parse(lease?.expiresAt ?? '')).toBeLessThanOrEqual(Date.now() + 120_000);
    } finally {
      await store.close();
    }
  });

  it('governor unlock breaks such a lease in the same Firestore store; the next run runs', async () => {
    const store = createFirestoreStateStore({
      projectId: PROJECT,
      collection: process.env.GOVERNOR_FIRESTORE_COLLECTION ?? '',
    });
    const dir = await mkdtemp(join(tmpdir(), 'unlock-'));
    try {
      const now = new Date().toISOString();
      await store.acquireLease(PROJECT, 'someone-else', 60_000, now);
      const policyFile = join(dir, 'policy.json');
      await writeFile(policyFile, POLICY);
      let out = '';
      // The CLI's command, with the store its options name (loaded on demand, as in a run).
      const code = await runUnlock(
        { policy: policyFile, yes: true },
        { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } },
        parseRuntimeOptions(process.env),
      );
      expect(code).toBe(0);
      expect(out).toContain(`${PROJECT}: lease held by someone-else`);
      expect(out).toContain(`${PROJECT}: lease broken`);
      expect(await store.readLease(PROJECT)).toBeNull();
      const r = await post(http, {});
      expect(r.status).toBe(200);
      expect(emulator.writes().length).toBeGreaterThan(0);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a failed run is one error event for Error Reporting, with its run id, trace and reason', async () => {
    // A state store that cannot be read: the run fails before it writes (RunFailedError). Error
    // Reporting makes an event of an entry with a stack trace or typed as a ReportedErrorEvent
    // (https://cloud.google.com/error-reporting/docs/formatting-error-messages), and groups one
    // without a stack by its message's first words
    // (https://cloud.google.com/error-reporting/docs/grouping-errors).
    const dir = await mkdtemp(join(tmpdir(), 'fn-failing-store-'));
    const trace = '0af7651916cd43dd8448eb211c80319c';
    try {
      await writeFile(join(dir, 'not-a-folder'), 'x');
      // The Firestore store's collection is refused beside the file store: not this test's fault.
      delete process.env.GOVERNOR_FIRESTORE_COLLECTION;
      Object.assign(process.env, {
        GOVERNOR_STATE_STORE: 'file',
        GOVERNOR_STATE_DIR: join(dir, 'not-a-folder', 'state'),
      });
      const runs: { status: number; json: Record<string, unknown> }[] = [];
      const log = await logOf(async () => {
        for (let i = 0; i < 2; i++)
          runs.push(await post(http, {}, { 'x-cloud-trace-context': `${trace}/1;o=1` }));
      });
      const lines = log
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const events = lines.filter((l) => '@type' in l || 'stack_trace' in l);
      expect(runs.map((r) => r.status)).toEqual([500, 500]);
      // One event a failed run, and no other ERROR line to count it twice.
      expect(events).toHaveLength(2);
      expect(lines.filter((l) => l.severity === 'ERROR')).toEqual(events);
      for (const [i, event] of events.entries()) {
        expect(event).toMatchObject({
          severity: 'ERROR',
          '@type':
            'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent',
          runId: runs[i]?.json.runId,
          'logging.googleapis.com/trace': `projects/${PROJECT}/traces/${trace}`,
        });
        expect(String(event.message)).toMatch(
          /^run failed: the state store could not say which governor this is: .*not-a-folder/,
        );
      }
      // The two runs' events open with the same words: one group, counted twice.
      const opening = events.map((e) => String(e.message).split(' ').slice(0, 4).join(' '));
      expect(opening[0]).toBe(opening[1]);
      // The run's summary is still logged, below ERROR.
      const summaries = lines.filter((l) => l.outcome === 'failed');
      expect(summaries.map((l) => l.severity)).toEqual(['WARNING', 'WARNING']);
      expect(emulator.writes()).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers 500 naming the misconfiguration when the emulator is set without its admin URL', async () => {
    // The CLI refuses it in one line (adapters/clock.ts): the function says the same, as a
    // misconfigured deployment, not as an unexpected failure with a stack trace.
    delete process.env.GOVERNOR_EMULATOR_ADMIN;
    let r = { status: 0, json: {} as Record<string, unknown> };
    const log = await logOf(async () => {
      r = await post(http, {});
    });
    expect(r.status).toBe(500);
    expect(String(r.json.error)).toMatch(
      /^misconfigured: GOVERNOR_EMULATOR_HOST is set but GOVERNOR_EMULATOR_ADMIN is not/,
    );
    const lines = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      severity: 'ERROR',
      '@type': 'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent',
    });
    expect(String(lines[0]?.message)).toMatch(/^misconfigured: GOVERNOR_EMULATOR_HOST is set/);
    expect(lines[0]).not.toHaveProperty('stack_trace');
    expect(emulator.writes()).toEqual([]);
  });

  it('answers 500 when its policy is invalid, and writes nothing', async () => {
    process.env.GOVERNOR_POLICY = '{"version": 1}';
    const r = await post(http, {});
    expect(r.status).toBe(500);
    expect(String(r.json.error)).toContain('projects');
    expect(emulator.writes()).toEqual([]);
  });
});

/** Posts `body` as Eventarc delivers a Pub/Sub message (a binary-mode CloudEvent); the status. */
async function postEvent(
  body: unknown,
  id: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(base(events), {
    method: 'POST',
    headers: {
      ...headers,
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/${PROJECT}/topics/governor-trigger`,
      'ce-id': id,
    },
    body: JSON.stringify(body),
  });
  return res.status;
}

/** Delivers a Pub/Sub message whose data is `data` (base64), or none. */
function deliver(data: string | undefined, id: string): Promise<number> {
  return postEvent({ message: data === undefined ? {} : { data }, subscription: 'y' }, id);
}

/** What the function writes to stdout (its log) while `f` runs; the output still goes through. */
async function logOf(f: () => Promise<unknown>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return write(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    await f();
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('the Cloud Function (CloudEvent entry point, Pub/Sub trigger)', () => {
  it('obeys the policy as the HTTP entry point does: no override it does not allow', async () => {
    process.env.GOVERNOR_POLICY = policyWith({ mode: 'dry-run' });
    const log = await logOf(async () => {
      expect(await deliver(b64('{"mode":"enforce","restore":true}'), 'override-1')).toBeLessThan(
        300,
      );
    });
    expect(emulator.writes()).toEqual([]);
    expect(log).toContain('function.allow.enforce');
  });

  it('never logs a message that is not JSON, and ignores one past the size cap', async () => {
    const log = await logOf(async () => {
      expect(await deliver(b64('{"token": SECRET-7f3a9c}'), 'bad-json')).toBeLessThan(300);
      expect(await deliver(b64(`{"mode":"${'x'.repeat(100 * 1024)}"}`), 'too-big')).toBeLessThan(
        300,
      );
    });
    expect(log).toContain('not valid JSON');
    expect(log).toContain('at most 65536');
    expect(log).not.toContain('SECRET');
    expect(log.length).toBeLessThan(2000);
    expect(emulator.writes()).toEqual([]);
  });

  it('ignores what is not a Pub/Sub message, in one log line without a stack trace', async () => {
    const log = await logOf(async () => {
      expect(await postEvent({ message: { data: 42 } }, 'data-number')).toBeLessThan(300);
      expect(await postEvent({ message: { data: { a: 1 } } }, 'data-object')).toBeLessThan(300);
      expect(await postEvent({ message: 'hello' }, 'message-text')).toBeLessThan(300);
      expect(await postEvent([1, 2], 'a-list')).toBeLessThan(300);
      expect(await postEvent({ message: { data: '!!!@@@###' } }, 'not-base64')).toBeLessThan(300);
      const attributes = { big: 'x'.repeat(400 * 1024) };
      expect(await postEvent({ message: { attributes } }, 'big-attribute')).toBeLessThan(300);
    });
    expect(log.match(/"severity":"ERROR"/g)).toHaveLength(6);
    expect(log).toContain('not base64 text but a JSON number');
    expect(log).toContain('not a Pub/Sub message');
    expect(log).toContain('not base64 (9 characters)');
    expect(log).toMatch(/a trigger event of \d+ bytes: at most/);
    expect(log).not.toMatch(/TypeError|\bat \S+ \(/);
    expect(emulator.writes()).toEqual([]);
  });

  it('logs a request functions-framework cannot read as an event in one line, without its text or a stack trace', async () => {
    // functions-framework converts legacy background events before the function runs, and its
    // middleware throws on a body that is not a JSON object (text/plain, none at all) or a
    // malformed legacy event: Express answers 500 and prints the error, whose message quotes the
    // request (V8's "Cannot use 'in' operator to search for 'context' in …") and whose stack is the
    // framework's (docs/applying.md).
    const ce = {
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/${PROJECT}/topics/governor-trigger`,
      'ce-id': 'framework-1',
    };
    const json = { 'content-type': 'application/json' };
    const requests: [string, Record<string, string>, string | undefined][] = [
      ['text, structured', { 'content-type': 'text/plain' }, 'SECRET-1'],
      ['text, binary', { ...ce, 'content-type': 'text/plain' }, 'SECRET-2'],
      ['no body', {}, undefined],
      ['a context that is text', json, '{"context": "SECRET-3", "data": {}}'],
      [
        'Pub/Sub data that is text',
        json,
        JSON.stringify({
          data: 'SECRET-4',
          eventType: 'providers/cloud.pubsub/eventTypes/topic.publish',
          resource: `projects/${PROJECT}/topics/t`,
        }),
      ],
      [
        // The middleware's Object.entries throws, V8's built-in the stack's first frame.
        'Firebase Auth metadata that is null',
        json,
        JSON.stringify({
          data: { metadata: null, uid: 'SECRET-6' },
          eventType: 'providers/firebase.auth/eventTypes/user.create',
          resource: 'projects/SECRET-7',
        }),
      ],
      [
        'a resource of no known form',
        json,
        JSON.stringify({
          data: {},
          eventType: 'toString',
          resource: { service: 'firestore.googleapis.com', name: 'SECRET-5' },
        }),
      ],
    ];
    for (const [name, headers, body] of requests) {
      let status = 0;
      let answer = '';
      const log = await logOf(async () => {
        const res = await fetch(base(events), { method: 'POST', headers, body });
        status = res.status;
        answer = await res.text();
      });
      // The framework's answer, before the function runs: no option of it makes this a 4xx.
      expect(status, name).toBe(500);
      expect(answer, name).not.toMatch(/SECRET|\w+Error|\bat \S+ \(|node_modules/);
      const lines = log.trim().split('\n');
      expect(lines, name).toHaveLength(1);
      const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      expect(entry, name).toEqual({
        severity: 'WARNING',
        message:
          'refused a request (500): functions-framework could not read it as an event; its content is not logged',
      });
    }
    expect(emulator.writes()).toEqual([]);
  });

  it("logs the framework's warnings on a raw Pub/Sub push as structured lines, never plain text", async () => {
    // functions-framework reads a raw push (not a CloudEvent) to an event function for the Pub/Sub
    // emulator's sake, and warns with console.warn when the path names no topic
    // (its pubsub_middleware.js): plain text on stderr, which Cloud Logging files with no severity.
    let status = 0;
    const log = await logOf(async () => {
      const res = await fetch(base(events), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          subscription: 'projects/x/subscriptions/y',
          message: { data: '!!', messageId: 'raw-1' },
        }),
      });
      status = res.status;
    });
    expect(status).toBeLessThan(300);
    const lines = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.severity)).toEqual(['WARNING', 'WARNING', 'ERROR']);
    expect(lines[0]?.message).toBe('Failed to extract the topic name from the URL path.');
    expect(lines[2]?.message).toMatch(/^ignored a trigger message whose data is not base64/);
    expect(emulator.writes()).toEqual([]);
  });

  it('a run that fails answers 500 (a failed invocation), logged once without a stack trace', async () => {
    // Eventarc counts a non-2xx answer as a failed delivery; the module's trigger does not retry
    // it (RETRY_POLICY_DO_NOT_RETRY). The handler's own ERROR line says why; what the framework
    // prints of the thrown error must not add a stack trace of the function's code.
    process.env.GOVERNOR_POLICY = '{"version": 1, "projects": 3}';
    printed.length = 0;
    let status = 0;
    const log = await logOf(async () => {
      status = await deliver(undefined, 'bad-policy');
    });
    expect(status).toBe(500);
    // One structured ERROR entry: the framework's print of the error thrown to fail the invocation
    // would only repeat it (as plain text, which Cloud Logging files with no severity).
    expect(log.trim().split('\n')).toHaveLength(1);
    expect(log.match(/"severity":"ERROR"/g)).toHaveLength(1);
    expect(log).toContain('misconfigured: GOVERNOR_POLICY is invalid');
    expect(log).not.toMatch(/\bat \S+:\d+:\d+|processTicksAndRejections/);
    expect(printed).toEqual([]);
    expect(emulator.writes()).toEqual([]);
  });

  it('a deployment with the emulator but not its admin URL fails as misconfigured, in one line', async () => {
    delete process.env.GOVERNOR_EMULATOR_ADMIN;
    printed.length = 0;
    let status = 0;
    const log = await logOf(async () => {
      status = await deliver(undefined, 'no-admin');
    });
    expect(status).toBe(500);
    expect(log.trim().split('\n')).toHaveLength(1);
    expect(log).toContain(
      'misconfigured: GOVERNOR_EMULATOR_HOST is set but GOVERNOR_EMULATOR_ADMIN',
    );
    expect(log).not.toMatch(/stack_trace|\bat \S+:\d+:\d+/);
    expect(printed).toEqual([]);
    expect(emulator.writes()).toEqual([]);
  });

  it("a deployment with the emulator beside Google's Pub/Sub or Firestore fails as misconfigured", async () => {
    // Alerts of the emulator's services would be published to the real topic, and the run would
    // lease and record in the real database, whenever credentials are found.
    for (const [unset, line] of [
      ['PUBSUB_EMULATOR_HOST', 'GOVERNOR_EMULATOR_HOST is set but PUBSUB_EMULATOR_HOST is not'],
      [
        'FIRESTORE_EMULATOR_HOST',
        'GOVERNOR_EMULATOR_HOST is set but FIRESTORE_EMULATOR_HOST is not',
      ],
    ] as const) {
      const kept = process.env[unset];
      delete process.env[unset];
      printed.length = 0;
      let status = 0;
      try {
        const log = await logOf(async () => {
          status = await deliver(undefined, `no-${unset}`);
        });
        expect(status, unset).toBe(500);
        expect(log.trim().split('\n'), unset).toHaveLength(1);
        expect(log, unset).toContain(`misconfigured: ${line}`);
      } finally {
        process.env[unset] = kept;
      }
      expect(printed).toEqual([]);
      expect(emulator.writes()).toEqual([]);
    }
  });

  it('an unexpected failure is one ERROR entry, its stack for Error Reporting, as governorHttp logs it', async () => {
    // A client that cannot be built: the Pub/Sub client throws as the alert sink opens its topic,
    // before the run starts. (A malformed FIRESTORE_EMULATOR_HOST did this once; it is refused as
    // a misconfiguration now, runtime-options.ts.)
    const topic = vi.spyOn(PubSub.prototype, 'topic').mockImplementation(() => {
      throw new Error('the Pub/Sub client could not be built');
    });
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traceparent = `00-${trace}-00f067aa0ba902b7-01`;
    printed.length = 0;
    let event = 0;
    let httpAnswer = { status: 0, json: {} as Record<string, unknown> };
    let log: string;
    let built = 0;
    try {
      log = await logOf(async () => {
        event = await postEvent({ message: {}, subscription: 'y' }, 'no-client', { traceparent });
        httpAnswer = await post(http, {}, { traceparent });
      });
    } finally {
      built = topic.mock.calls.length;
      topic.mockRestore();
    }
    expect(built).toBeGreaterThan(0);
    expect([event, httpAnswer.status]).toEqual([500, 500]);
    expect(httpAnswer.json).toEqual({ error: 'unexpected failure; see the logs' });
    const lines = log
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const errors = lines.filter((l) => l.severity === 'ERROR');
    // One line each, alike but for the entry point: the reason in the message, on one line; the
    // stack where Error Reporting reads it first
    // (https://cloud.google.com/error-reporting/docs/formatting-error-messages); the request's trace.
    expect(errors).toHaveLength(2);
    for (const line of errors) {
      expect(String(line.message)).toMatch(
        /^unexpected failure: the Pub\/Sub client could not be built$/,
      );
      expect(String(line.message)).not.toContain('\n');
      expect(String(line.stack_trace)).toMatch(/\n\s+at /);
      expect(line['logging.googleapis.com/trace']).toBe(`projects/${PROJECT}/traces/${trace}`);
    }
    expect(printed).toEqual([]);
    expect(emulator.writes()).toEqual([]);
  });

  it('runs on a Pub/Sub message whose data is the same optional JSON', async () => {
    process.env.GOVERNOR_POLICY = policyWith({ function: { allow: { dryRun: true } } });
    const data = Buffer.from(JSON.stringify({ mode: 'dry-run' })).toString('base64');
    const dry = { message: { data }, subscription: 'projects/x/subscriptions/y' };
    expect(await postEvent(dry, 'trigger-1')).toBeLessThan(300);
    expect(emulator.writes()).toEqual([]);
    expect(await postEvent({ message: {} }, 'trigger-2')).toBeLessThan(300);
    expect(emulator.writes().length).toBeGreaterThan(0);
  });
});
