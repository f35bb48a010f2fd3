/**
 * Organisation scale through the function's entry points, against the emulator (Cloud Run,
 * Monitoring, Cloud Quotas, Cloud Asset Inventory) and Google's real Pub/Sub emulator: a dispatch
 * publishes one work message per discovered project to the work topic; each message, delivered
 * as a Pub/Sub push request, governs exactly its project (its own lease, state and run record).
 * Malformed, hostile, stale or foreign messages are acknowledged and logged, and nothing is
 * written.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { handleDispatch, handleUnitPush } from '../../src/function/org.js';
import { memoryLogger, textLogger } from '../../src/log.js';
import { sharedPubSubEmulator, type SharedEmulator } from '../support/shared-emulators.js';
import { ORG, orgFleet, orgProjectId } from '../support/org-fleet.js';
import { QUICK_POLL_ENV, quietRun } from '../support/fixtures.js';

// The state store as the function opens it, with switches: its `close` fails (as a Firestore
// client's `terminate` may), its kept discovery is read slowly (as a slow database answers).
const closing = vi.hoisted(() => ({ fails: false, slowDiscoveryMs: 0 }));
vi.mock('../../src/runtime.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/runtime.js')>();
  return {
    ...actual,
    createStore: async (...args: Parameters<typeof actual.createStore>) => {
      const store = await actual.createStore(...args);
      if (closing.fails)
        store.close = () => Promise.reject(new Error('the state store could not be closed'));
      const delay = closing.slowDiscoveryMs;
      if (delay > 0) {
        const load = store.loadDiscovery.bind(store);
        store.loadDiscovery = async () => {
          await new Promise((resolve) => setTimeout(resolve, delay));
          return load();
        };
      }
      return store;
    },
  };
});

const HOME = 'gov-home-proj';
const TOPIC = `projects/${HOME}/topics/gpu-governor-work`;
const N = 6;
const fleet = orgFleet({ projects: N, services: 2, quota: 3 });
// One project whose writes are refused: its unit fails, and no other unit waits for it.
const broken = fleet.projects[1];
if (broken) broken.iam = { denied: ['run.services.update'] };

const POLICY = JSON.stringify({
  version: 1,
  discovery: { organization: ORG },
  fanout: { topic: TOPIC },
  defaults: { headroom: 0 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

let emulator: RunningEmulator;
let pubsub: SharedEmulator;
let admin: PubSub;
let subscription: Subscription;
let dispatchServer: Server;
let unitServer: Server;
let dir: string;
const saved = { ...process.env };

const base = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
async function listen(server: Server): Promise<Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
async function post(server: Server, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(base(server), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}
const push = (data: string | Buffer, extra: Record<string, unknown> = {}) => ({
  message: {
    data: (Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('base64'),
    messageId: '1',
  },
  subscription: 'projects/x/subscriptions/y',
  ...extra,
});

beforeAll(async () => {
  pubsub = await sharedPubSubEmulator(HOME);
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  admin = new PubSub({ projectId: HOME, apiEndpoint: pubsub.endpoint });
  const [topic] = await admin.createTopic('gpu-governor-work');
  [subscription] = await topic.createSubscription('capture');
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 20 });
  dir = await mkdtemp(join(tmpdir(), 'org-fn-'));
  Object.assign(process.env, {
    ...emulator.env,
    ...QUICK_POLL_ENV,
    GOVERNOR_POLICY: POLICY,
    GOVERNOR_STATE_DIR: dir,
    GOVERNOR_RUN_DEADLINE: '60s',
    PUBSUB_EMULATOR_HOST: pubsub.endpoint,
  });
  await import('../../src/function/index.js');
  dispatchServer = await listen(getTestServer('governorDispatch'));
  unitServer = await listen(getTestServer('governorUnit'));
});

afterAll(async () => {
  await new Promise((r) => dispatchServer?.close(r));
  await new Promise((r) => unitServer?.close(r));
  await admin?.close();
  await emulator?.stop();
  await rm(dir, { recursive: true, force: true });
  process.env = saved;
});

async function pullAll(expected: number): Promise<{ data: Buffer; ack(): void }[]> {
  const got: { data: Buffer; ack(): void }[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`pulled ${got.length} of ${expected}`)),
      20_000,
    );
    subscription.on('message', (m: { data: Buffer; ack(): void }) => {
      got.push(m);
      if (got.length === expected) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await subscription.close();
  return got;
}

/** What the function logs (stdout) while `f` runs, as JSON lines; the output still goes through. */
async function linesOf(f: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
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
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The body the organisation module's Cloud Scheduler job sends the dispatch (terraform/organization/
 * function.tf, `body = base64encode("...")`): what the dispatch must take as a dispatch.
 */
function schedulerBody(): unknown {
  const hcl = readFileSync('terraform/organization/function.tf', 'utf8');
  const literal = /\bbody\s*=\s*base64encode\("((?:[^"\\]|\\.)*)"\)/.exec(hcl)?.[1];
  if (literal === undefined) throw new Error('no base64encode("...") body in the scheduler job');
  return JSON.parse(JSON.parse(`"${literal}"`) as string);
}

describe('fan-out: dispatch, then one function run per project', () => {
  it('dispatches every discovered project and governs each in its own run', async () => {
    let d = { status: 0, text: '' };
    // Every line of the dispatch carries its id, as its units' lines do: one filter finds both.
    const dispatchLines = await linesOf(async () => {
      d = await post(dispatchServer, {});
    });
    expect(d.status).toBe(200);
    const report = JSON.parse(d.text) as {
      dispatchId: string;
      units: number;
      published: number;
      failed: unknown[];
    };
    expect(report).toMatchObject({ units: N, published: N, failed: [] });
    expect(dispatchLines.length).toBeGreaterThan(0);
    for (const line of dispatchLines)
      expect(line.dispatchId, JSON.stringify(line)).toBe(report.dispatchId);

    const messages = await pullAll(N);
    for (const m of messages) m.ack();
    const projects = messages.map(
      (m) => (JSON.parse(m.data.toString()) as { project: string }).project,
    );
    expect(projects.sort()).toEqual(Array.from({ length: N }, (_, i) => orgProjectId(i)));

    // The units run at once, as Pub/Sub pushes them; the broken one fails alone. Their lines
    // interleave in the one log: each line names its unit's run, project and dispatch.
    const write = process.stdout.write.bind(process.stdout);
    let out = '';
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return write(chunk, ...rest);
    }) as typeof process.stdout.write;
    const answers = await Promise.all(messages.map((m) => post(unitServer, push(m.data)))).finally(
      () => {
        process.stdout.write = write;
      },
    );
    const runIds = new Map<string, Set<unknown>>();
    for (const text of out.trim().split('\n')) {
      const line = JSON.parse(text) as Record<string, unknown>;
      expect(line.dispatchId, text).toBe((JSON.parse(d.text) as { dispatchId: string }).dispatchId);
      expect(line.runId, text).toMatch(/^run-/);
      const seen = runIds.get(String(line.project)) ?? new Set();
      runIds.set(String(line.project), seen.add(line.runId));
    }
    const byProject = new Map(projects.map((p, i) => [p, answers[i]?.status]));
    for (const [p, code] of byProject) expect(code, p).toBe(p === orgProjectId(1) ? 500 : 200);

    const store = createFileStateStore({ dir });
    for (const p of projects) {
      const runs = await store.listRuns(p);
      expect(runs, p).toHaveLength(1);
      expect(runs[0]?.outcome).toBe(p === orgProjectId(1) ? 'failed' : 'ok');
      expect([...(runIds.get(p) ?? [])], p).toEqual([runs[0]?.runId]);
      expect(Object.keys(runs[0]?.pools ?? {})).toEqual([`${p}/us-central1/nvidia-l4/zonal`]);
      expect(await store.readLease(p)).toBeNull();
    }
    // Writes happened in the projects that could be written, each pool within its quota of 3.
    const written = new Set(emulator.writes().map((w) => w.service.project));
    expect(written.has(orgProjectId(1))).toBe(false);
    expect(written.size).toBeGreaterThan(0);
    for (const w of emulator.writes()) expect(w.pool?.capsGpus ?? 0).toBeLessThanOrEqual(3);
  });

  it('acknowledges and logs a malformed, hostile, stale or foreign message, writing nothing', async () => {
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) });
    const before = emulator.writes().length;
    const runsBefore = await createFileStateStore({ dir }).listRuns(orgProjectId(0));
    const good = {
      version: 1,
      kind: 'govern',
      project: orgProjectId(0),
      dispatchId: 'd-1',
      issuedAt: new Date().toISOString(),
    };
    const cases: [string, unknown, RegExp][] = [
      ['no envelope', { hello: 'world' }, /not a Pub\/Sub push request/],
      ['not JSON', push('{"version":1,'), /not JSON/],
      ['oversized', push(Buffer.alloc(5000, 'a')), /not a Pub\/Sub push request|at most 4096/],
      ['extra key', push(JSON.stringify({ ...good, restore: true })), /invalid/],
      ['path in project', push(JSON.stringify({ ...good, project: '../../etc' })), /invalid/],
      [
        'foreign project',
        push(JSON.stringify({ ...good, project: 'someone-elses' })),
        /neither in the policy/,
      ],
      [
        'not discovered',
        push(JSON.stringify({ ...good, project: 'no-run-project' })),
        /neither in the policy/,
      ],
      [
        'stale',
        push(JSON.stringify({ ...good, issuedAt: '2026-01-01T00:00:00Z' })),
        /s ago, more than 1800 s/,
      ],
      ['prototype', push('{"__proto__":{"x":1},"version":1}'), /invalid/],
      [
        'another version',
        push(JSON.stringify({ ...good, version: 2 })),
        /invalid[\s\S]*version: Invalid input: expected 1/,
      ],
      [
        'another kind',
        push(JSON.stringify({ ...good, kind: 'restore' })),
        /invalid[\s\S]*kind: Invalid input: expected "govern"/,
      ],
      [
        'from the future',
        push(JSON.stringify({ ...good, issuedAt: new Date(Date.now() + 3_600_000).toISOString() })),
        /issued 3600 s in the future/,
      ],
      [
        // Read whatever its subscription's name, as long as Google allows one: an id of up to 255
        // characters in a project id of up to 30 (309 in all); refused for its project, not as a
        // request that is not a push.
        'the longest subscription name',
        {
          ...push(JSON.stringify({ ...good, project: 'someone-elses' })),
          subscription: `projects/${'p'.repeat(30)}/subscriptions/${'s'.repeat(255)}`,
        },
        /neither in the policy/,
      ],
      [
        // Pub/Sub never sends data that is not a string; nor is a number base64.
        'data not a string',
        { ...push(''), message: { data: 12345, messageId: '1' } },
        /not a Pub\/Sub push request/,
      ],
      [
        // Node's decoder would read the message and skip the junk after it.
        'base64 with junk',
        {
          ...push(JSON.stringify(good)),
          message: { data: `${Buffer.from(JSON.stringify(good)).toString('base64')}!!junk` },
        },
        /not base64/,
      ],
    ];
    for (const [name, body, why] of cases) {
      lines.length = 0;
      const answer = await handleUnitPush(body, process.env, log);
      expect(answer.status, name).toBe(204);
      expect(lines.join(''), name).toMatch(/ignored a work message/);
      expect(lines.join(''), name).toMatch(why);
      expect(lines.join(''), name).not.toContain('someone-elses-secret');
    }
    // A message that reads is refused in a line naming its unit and dispatch, as its run's would.
    const memory = memoryLogger();
    const foreign = push(JSON.stringify({ ...good, project: 'someone-elses' }));
    expect((await handleUnitPush(foreign, process.env, memory)).status).toBe(204);
    expect(memory.lines.map((l) => l.fields)).toEqual([
      { project: 'someone-elses', dispatchId: 'd-1' },
    ]);
    expect(emulator.writes()).toHaveLength(before);
    expect(await createFileStateStore({ dir }).listRuns(orgProjectId(0))).toEqual(runsBefore);
    // Over the HTTP entry point, a body past its cap is refused before it is read.
    const big = await post(unitServer, push(Buffer.alloc(70_000, 'a')));
    expect(big.status).toBe(413);
  });

  it('counts the run deadline from the push, so a unit whose checks were slow still answers in time', async () => {
    // The module sets the run deadline 30 s short of the function's timeout so that a run ends,
    // alerts a failed last delivery and answers before Cloud Run ends the request. Counted from
    // the run's start, the time spent checking the message (reading the kept discovery, up to the
    // state store's timeout) came on top, and the run could go on past the timeout: killed, it
    // answers nothing, alerts nothing, and leaves its lease held.
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) }, 'INFO', { alerts: true });
    const project = orgProjectId(2);
    const before = emulator.writes().length;
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project,
      dispatchId: 'd-slow-check',
      issuedAt: new Date().toISOString(),
    });
    closing.slowDiscoveryMs = 2_500;
    try {
      const answer = await handleUnitPush(
        push(work),
        { ...process.env, GOVERNOR_RUN_DEADLINE: '2s' },
        log,
      );
      expect(answer.status).toBe(500);
      expect(String(answer.body.error)).toMatch(/run deadline had passed/);
      // A push without deliveryAttempt may be the last delivery: the failed run is alerted.
      expect(lines.join('')).toMatch(
        /alert governor\.degraded firing: gpu-proj-0002 is not governed: .*may be its last/,
      );
    } finally {
      closing.slowDiscoveryMs = 0;
    }
    expect(emulator.writes()).toHaveLength(before);
    expect(await createFileStateStore({ dir }).readLease(project)).toBeNull();
  });

  it("answers what the run did even when closing the run's clients fails", async () => {
    // A run that completed is answered 200 (acknowledged), whatever closing its clients does
    // after: answered 500, Pub/Sub would deliver it again and the unit would run again, and on
    // its last delivery be dead-lettered and alerted, for work that was done.
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) });
    const project = orgProjectId(0);
    const runs = (await createFileStateStore({ dir }).listRuns(project)).length;
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project,
      dispatchId: 'd-close-run',
      issuedAt: new Date().toISOString(),
    });
    closing.fails = true;
    try {
      const answer = await handleUnitPush(push(work), process.env, log);
      expect(answer.status).toBe(200);
      expect(answer.body.outcome).toBe('ok');
    } finally {
      closing.fails = false;
    }
    expect(lines.join('')).toMatch(
      /closing the run's clients failed: the state store could not be closed/,
    );
    expect(await createFileStateStore({ dir }).listRuns(project)).toHaveLength(runs + 1);
  });

  it('acknowledges a message it refuses even when the state store fails to close', async () => {
    // The refusal is the message's, whatever the store does after: answered 500, Pub/Sub would
    // deliver it again until it is dead-lettered, and its alert would fire for a message that was
    // only refused. The failure to close is told in a line of its own, as on the other paths.
    const good = {
      version: 1,
      kind: 'govern',
      project: orgProjectId(0),
      dispatchId: 'd-close',
      issuedAt: new Date().toISOString(),
    };
    closing.fails = true;
    try {
      for (const [name, body] of [
        ['foreign', { ...good, project: 'someone-elses' }],
        ['stale', { ...good, issuedAt: '2026-01-01T00:00:00Z' }],
      ] as const) {
        const lines: string[] = [];
        const log = textLogger({ write: (s: string) => lines.push(s) });
        const answer = await handleUnitPush(push(JSON.stringify(body)), process.env, log);
        expect(answer.status, name).toBe(204);
        expect(lines.join(''), name).toMatch(/ignored a work message/);
        expect(lines.join(''), name).toMatch(/closing the state store failed/);
      }
    } finally {
      closing.fails = false;
    }
  });

  it('refuses a project only a discovery made under another policy found (the policy changed since)', async () => {
    // The kept discovery was made by the first dispatch, for POLICY. The policy now excludes a
    // project it found: until a dispatch searches again with the new filters, a message naming
    // that project (in flight from before the change, or sent by anyone who can publish) must
    // not govern it.
    const excluded = orgProjectId(3);
    const env = {
      ...process.env,
      GOVERNOR_POLICY: JSON.stringify({
        ...JSON.parse(POLICY),
        discovery: { organization: ORG, exclude: [excluded] },
      }),
    };
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) });
    const store = createFileStateStore({ dir });
    expect((await store.loadDiscovery())?.projects).toContain(excluded);
    const runsBefore = await store.listRuns(excluded);
    const before = emulator.writes().length;
    const work = (project: string) =>
      JSON.stringify({
        version: 1,
        kind: 'govern',
        project,
        dispatchId: 'd-changed',
        issuedAt: new Date().toISOString(),
      });
    const answer = await handleUnitPush(push(work(excluded)), env, log);
    expect(answer.status).toBe(204);
    expect(lines.join('')).toMatch(
      /ignored a work message: project gpu-proj-0003 is neither in the policy's projects nor among those its discovery found \(the kept discovery was made with other discovery settings/,
    );
    expect(await store.listRuns(excluded)).toEqual(runsBefore);
    expect(emulator.writes()).toHaveLength(before);
    expect(await store.readLease(excluded)).toBeNull();
  });

  it('a unit that died holding its lease holds the next delivery off until the lease expires', async () => {
    const project = orgProjectId(2);
    const store = createFileStateStore({ dir });
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project,
      dispatchId: 'd-crash',
      issuedAt: new Date().toISOString(),
    });
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) });
    const env = { ...process.env, GOVERNOR_MAX_DELIVERY_ATTEMPTS: '5' };
    const runs = (await store.listRuns(project)).length;
    // The dead run's lease, still live: the delivery is answered 500 (delivered again later).
    const taken = await store.acquireLease(project, 'dead-unit', 300_000, new Date().toISOString());
    expect(taken.acquired).toBe(true);
    const held = await handleUnitPush(push(work, { deliveryAttempt: 1 }), env, log);
    expect(held.status).toBe(500);
    expect(held.body).toMatchObject({ outcome: 'lease-held', written: 0 });
    expect(lines.join('')).toMatch(/lease is held by dead-unit/);
    expect((await store.readLease(project))?.holder).toBe('dead-unit');
    // Once it has expired, the next delivery governs the project and leaves no lease behind.
    await store.breakLease(project);
    const stale = new Date(Date.now() - 10 * 60_000).toISOString();
    expect((await store.acquireLease(project, 'dead-unit', 300_000, stale)).acquired).toBe(true);
    lines.length = 0;
    const next = await handleUnitPush(push(work, { deliveryAttempt: 2 }), env, log);
    expect(next.status, lines.join('')).toBe(200);
    expect(await store.readLease(project)).toBeNull();
    const after = await store.listRuns(project);
    expect(after.length).toBeGreaterThan(runs);
    expect(after[0]?.outcome).toBe('ok');
  }, 30_000);

  it('answers 500 in one line, no stack trace, when the kept discovery cannot be read to check a message', async () => {
    // Not the message's fault: it is delivered again (the store may be mended meanwhile), and
    // nothing is governed without the check.
    const broken = await mkdtemp(join(tmpdir(), 'org-fn-corrupt-'));
    try {
      await writeFile(join(broken, '%discovery.json'), '{"key":"k","foundAt":"x","projects":[]}');
      const lines: string[] = [];
      const log = textLogger({ write: (s: string) => lines.push(s) });
      const work = JSON.stringify({
        version: 1,
        kind: 'govern',
        project: orgProjectId(0),
        dispatchId: 'd-corrupt',
        issuedAt: new Date().toISOString(),
      });
      const answer = await handleUnitPush(
        push(work),
        { ...process.env, GOVERNOR_STATE_DIR: broken },
        log,
      );
      expect(answer.status).toBe(500);
      expect(answer.body).toMatchObject({
        error: expect.stringMatching(
          /^unit gpu-proj-0000: the work message could not be checked: .*discovery cache .*foundAt/,
        ) as unknown,
      });
      expect(lines).toHaveLength(1);
      // The line opens with the same words for every unit, and says them once.
      expect(lines[0]).toMatch(
        /a work message could not be checked: unit gpu-proj-0000: .*discovery cache .*foundAt/,
      );
      expect(lines[0]?.match(/could not be checked/g)).toHaveLength(1);
      expect(lines[0]).not.toMatch(/\n\s+at /);
      expect(await createFileStateStore({ dir: broken }).listRuns(orgProjectId(0))).toEqual([]);
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });

  it('alerts a failed unit on its last delivery (the push deliveryAttempt at the max), not before', async () => {
    // Google's push body with a dead-letter policy (https://cloud.google.com/pubsub/docs/push),
    // for the project whose writes are refused: every run of its unit fails.
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) }, 'INFO', { alerts: true });
    const fresh = await mkdtemp(join(tmpdir(), 'org-fn-last-'));
    const env = {
      ...process.env,
      GOVERNOR_STATE_DIR: fresh,
      GOVERNOR_POLICY: JSON.stringify({ ...JSON.parse(POLICY), projects: [orgProjectId(1)] }),
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '5',
    };
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project: orgProjectId(1),
      dispatchId: 'd-last',
      issuedAt: new Date().toISOString(),
    });
    const firing =
      /alert governor\.degraded firing: gpu-proj-0001 is not governed: its unit failed its last delivery \(5 of 5\); the work message goes to the dead-letter topic: /;
    try {
      for (const attempt of [1, 4]) {
        lines.length = 0;
        expect(
          (await handleUnitPush(push(work, { deliveryAttempt: attempt }), env, log)).status,
        ).toBe(500);
        expect(lines.join(''), `attempt ${attempt}`).not.toMatch(/alert governor\.degraded/);
      }
      lines.length = 0;
      expect((await handleUnitPush(push(work, { deliveryAttempt: 5 }), env, log)).status).toBe(500);
      expect(lines.join('')).toMatch(firing);
      expect(lines.join('')).toMatch(/run\.services\.update|denied|failed/);
      // A condition: the next dispatch's last delivery, while it still fires, is not sent again.
      lines.length = 0;
      expect((await handleUnitPush(push(work, { deliveryAttempt: 5 }), env, log)).status).toBe(500);
      expect(lines.join('')).toMatch(/the delivery alert already fires/);
      // ...nor resolved by the failed run itself.
      expect(lines.join('')).not.toMatch(/alert governor\.degraded resolved/);
      expect(lines.join('')).not.toMatch(firing);
      // A deliveryAttempt Pub/Sub would never send: not a push request; acknowledged, nothing run.
      const runs = (await createFileStateStore({ dir: fresh }).listRuns(orgProjectId(1))).length;
      // Past the int32 Pub/Sub's delivery_attempt is: not a push request either.
      for (const bad of [-1, 1.5, '5', 2 ** 31, null, { n: 5 }]) {
        lines.length = 0;
        const answer = await handleUnitPush(push(work, { deliveryAttempt: bad }), env, log);
        expect(answer.status, JSON.stringify(bad)).toBe(204);
        expect(lines.join(''), JSON.stringify(bad)).toMatch(/not a Pub\/Sub push request/);
      }
      expect(await createFileStateStore({ dir: fresh }).listRuns(orgProjectId(1))).toHaveLength(
        runs,
      );
      // Pub/Sub honours max_delivery_attempts "on a best effort basis": a delivery past it, even
      // past 100 (its largest max), is still a failed last delivery, not a malformed request.
      for (const [attempt, max] of [
        [7, '5'],
        [101, '100'],
      ] as const) {
        lines.length = 0;
        const past = await handleUnitPush(
          push(work, { deliveryAttempt: attempt }),
          { ...env, GOVERNOR_MAX_DELIVERY_ATTEMPTS: max },
          log,
        );
        expect(past.status, `${attempt} of ${max}`).toBe(500);
        expect(lines.join(''), `${attempt} of ${max}`).not.toMatch(/not a Pub\/Sub push request/);
      }
      // The max told wrong: the function says which variable, and runs nothing.
      lines.length = 0;
      const wrong = await handleUnitPush(
        push(work, { deliveryAttempt: 5 }),
        { ...env, GOVERNOR_MAX_DELIVERY_ATTEMPTS: '500' },
        log,
      );
      expect(wrong.status).toBe(500);
      expect(lines.join('')).toMatch(
        /misconfigured: [\s\S]*GOVERNOR_MAX_DELIVERY_ATTEMPTS: expected a whole number from 5 to 100/,
      );
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('alerts a unit that failed unexpectedly on its last delivery, then reports the failure', async () => {
    // A run that fails outside reconcile's own failures (here: the clock it starts from cannot be
    // read) is thrown to the entry point, which logs it and answers 500; its last delivery is
    // alerted first, as any failed run's is.
    const { createServer } = await import('node:net');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) }, 'INFO', { alerts: true });
    const fresh = await mkdtemp(join(tmpdir(), 'org-fn-unexpected-'));
    const env = {
      ...process.env,
      GOVERNOR_STATE_DIR: fresh,
      GOVERNOR_POLICY: JSON.stringify({ ...JSON.parse(POLICY), projects: [orgProjectId(2)] }),
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '5',
      GOVERNOR_EMULATOR_ADMIN: `http://127.0.0.1:${port}`,
    };
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project: orgProjectId(2),
      dispatchId: 'd-unexpected',
      issuedAt: new Date().toISOString(),
    });
    try {
      await expect(handleUnitPush(push(work, { deliveryAttempt: 4 }), env, log)).rejects.toThrow(
        /emulator's clock/,
      );
      expect(lines.join('')).not.toMatch(/alert governor\.degraded/);
      lines.length = 0;
      await expect(handleUnitPush(push(work, { deliveryAttempt: 5 }), env, log)).rejects.toThrow(
        /emulator's clock/,
      );
      expect(lines.join('')).toMatch(
        /alert governor\.degraded firing: gpu-proj-0002 is not governed: its unit failed its last delivery \(5 of 5\); the work message goes to the dead-letter topic: .*emulator's clock/,
      );
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('alerts a work message that went stale while redelivered, before it is acknowledged', async () => {
    // A unit whose every delivery runs to its deadline: with the module's defaults (timeout 300 s,
    // so a 270 s run deadline, and a backoff of 83 s growing to 600 s) its fifth delivery comes
    // about 4 × 270 + 83 + 166 + 332 + 600 = 2,261 s after the dispatch, past the 30m staleAfter.
    // Acknowledged as stale, it would never reach the dead-letter topic nor alert its last delivery.
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) }, 'INFO', { alerts: true });
    const fresh = await mkdtemp(join(tmpdir(), 'org-fn-stale-'));
    const env = {
      ...process.env,
      GOVERNOR_STATE_DIR: fresh,
      GOVERNOR_POLICY: JSON.stringify({ ...JSON.parse(POLICY), projects: [orgProjectId(1)] }),
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '5',
    };
    const work = (project: string) =>
      JSON.stringify({
        version: 1,
        kind: 'govern',
        project,
        dispatchId: 'd-stale',
        issuedAt: new Date(Date.now() - 38 * 60_000).toISOString(),
      });
    try {
      // Its first delivery, late (a backlog): nothing failed before it, nothing to alert.
      lines.length = 0;
      expect((await handleUnitPush(push(work(orgProjectId(1))), env, log)).status).toBe(204);
      expect(
        (await handleUnitPush(push(work(orgProjectId(1)), { deliveryAttempt: 1 }), env, log))
          .status,
      ).toBe(204);
      expect(lines.join('')).toMatch(/ignored a work message: .*issued 22\d\d s ago/);
      expect(lines.join('')).not.toMatch(/alert governor\.degraded/);
      // A run that succeeded before the message was issued says nothing of its deliveries.
      await createFileStateStore({ dir: fresh }).recordRun(
        orgProjectId(1),
        quietRun('run-before-issue', new Date(Date.now() - 40 * 60_000).toISOString()),
      );
      // A redelivery: the deliveries before it failed. Acknowledged, and alerted first.
      lines.length = 0;
      const answer = await handleUnitPush(
        push(work(orgProjectId(1)), { deliveryAttempt: 5 }),
        env,
        log,
      );
      expect(answer.status).toBe(204);
      expect(lines.join('')).toMatch(
        /alert governor\.degraded firing: gpu-proj-0001 is not governed: its unit failed 4 deliveries and its work message went stale: issued 22\d\d s ago/,
      );
      // Nothing was run: no run record but the one recorded above.
      expect(
        (await createFileStateStore({ dir: fresh }).listRuns(orgProjectId(1))).map((r) => r.runId),
      ).toEqual(['run-before-issue']);
      // Its alert is a condition: a second stale redelivery does not send it again, and is
      // acknowledged (were it answered 500, Pub/Sub would deliver it until it is dead-lettered).
      lines.length = 0;
      const again = await handleUnitPush(
        push(work(orgProjectId(1)), { deliveryAttempt: 5 }),
        env,
        log,
      );
      expect(again.status).toBe(204);
      expect(lines.join('')).toMatch(/the delivery alert already fires/);
      // Once a run of the unit succeeded after the message was issued (a newer dispatch's), the
      // failures are behind it: a stale redelivery then alerts nothing.
      const at = new Date().toISOString();
      await createFileStateStore({ dir: fresh }).recordRun(
        orgProjectId(1),
        quietRun('run-newer', at),
      );
      lines.length = 0;
      const behind = await handleUnitPush(
        push(work(orgProjectId(1)), { deliveryAttempt: 5 }),
        env,
        log,
      );
      expect(behind.status).toBe(204);
      expect(lines.join('')).toMatch(/run run-newer succeeded since the message was issued/);
      expect(lines.join('')).not.toMatch(/alert governor\.degraded firing/);
      // Whatever came after it: a later run that failed (or found the lease held by a redelivery)
      // does not put the failures back in front of that success.
      await createFileStateStore({ dir: fresh }).recordRun(
        orgProjectId(1),
        quietRun('run-failed-later', new Date(Date.parse(at) + 1000).toISOString(), {
          outcome: 'failed',
          error: 'a write failed',
        }),
      );
      lines.length = 0;
      const still = await handleUnitPush(
        push(work(orgProjectId(1)), { deliveryAttempt: 5 }),
        env,
        log,
      );
      expect(still.status).toBe(204);
      expect(lines.join('')).toMatch(/run run-newer succeeded since the message was issued/);
      expect(lines.join('')).not.toMatch(/alert governor\.degraded firing/);
      // One from the future is acknowledged at its first delivery: a "redelivery" of it is forged.
      lines.length = 0;
      const future = JSON.stringify({
        ...(JSON.parse(work(orgProjectId(1))) as object),
        issuedAt: new Date(Date.now() + 10 * 60_000).toISOString(),
      });
      expect((await handleUnitPush(push(future, { deliveryAttempt: 5 }), env, log)).status).toBe(
        204,
      );
      expect(lines.join('')).toMatch(/ignored a work message: .*in the future/);
      expect(lines.join('')).not.toMatch(
        /alert governor\.degraded|stale redelivery|delivery alert/,
      );
      // A stale redelivery of a project the policy does not govern alerts nothing.
      lines.length = 0;
      const foreign = await handleUnitPush(
        push(work('not-governed-here'), { deliveryAttempt: 5 }),
        env,
        log,
      );
      expect(foreign.status).toBe(204);
      expect(lines.join('')).not.toMatch(/alert governor\.degraded/);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('answers 500 to a stale redelivery whose alert could not be published, so it is not lost', async () => {
    // Acknowledged (204) after a failed publish, the redelivery's failures would be told by one
    // ERROR line only. Answered 500, Pub/Sub delivers it again (the alert is tried again) and, at
    // the subscription's max_delivery_attempts, dead-letters it, which the module's alert policy
    // watches: https://cloud.google.com/pubsub/docs/handling-failures#dead_letter_topic
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) }, 'INFO', { alerts: true });
    const fresh = await mkdtemp(join(tmpdir(), 'org-fn-stale-unsent-'));
    const alertTopic = 'gpu-governor-alerts-stale';
    const env = {
      ...process.env,
      GOVERNOR_STATE_DIR: fresh,
      GOVERNOR_POLICY: JSON.stringify({
        ...JSON.parse(POLICY),
        projects: [orgProjectId(1)],
        alerts: { topic: `projects/${HOME}/topics/${alertTopic}` },
      }),
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '5',
    };
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project: orgProjectId(1),
      dispatchId: 'd-stale-unsent',
      issuedAt: new Date(Date.now() - 38 * 60_000).toISOString(),
    });
    try {
      // The alert topic does not exist yet: the publish is refused (NOT_FOUND).
      const refused = await handleUnitPush(push(work, { deliveryAttempt: 4 }), env, log);
      expect(refused.status).toBe(500);
      expect(JSON.stringify(refused.body)).toMatch(/stale redelivery .*could not be alerted/);
      expect(lines.join('')).toMatch(/the delivery alert could not be published/);
      // Nothing was run; the alert is kept in the outbox, counted as sent: the next delivery sends
      // it again, under the same id.
      const kept = createFileStateStore({ dir: fresh });
      expect(await kept.listRuns(orgProjectId(1))).toEqual([]);
      const [entry] = (await kept.listOutbox(orgProjectId(1))).entries;
      expect(entry?.alert.dedupKey).toBe(`governor.degraded:${orgProjectId(1)}:delivery`);
      expect(Object.keys((await kept.loadConditions(orgProjectId(1))).state)).toEqual([
        entry?.alert.dedupKey,
      ]);
      // Pub/Sub delivers it again once the topic is there: published, then acknowledged.
      const [topic] = await admin.createTopic(alertTopic);
      const [sub] = await topic.createSubscription(`${alertTopic}-capture`);
      lines.length = 0;
      const sent = await handleUnitPush(push(work, { deliveryAttempt: 5 }), env, log);
      expect(sent.status).toBe(204);
      expect(lines.join('')).toMatch(
        /alert governor\.degraded firing: gpu-proj-0001 is not governed/,
      );
      const got = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no alert on the topic in 10 s')), 10_000);
        sub.once('message', (m: { data: Buffer; ack(): void }) => {
          clearTimeout(timer);
          m.ack();
          resolve(m.data.toString());
        });
      });
      expect(got).toContain('governor.degraded');
      expect((JSON.parse(got) as { id: string }).id).toBe(entry?.alert.id);
      expect((await kept.listOutbox(orgProjectId(1))).entries).toEqual([]);
      await sub.close();
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('counts a stale redelivery that could not be alerted as one error event, grouped whatever the unit', async () => {
    // Error Reporting makes an event of an entry typed as a ReportedErrorEvent and groups one
    // without a stack trace by "the first 3 literal tokens of the message"
    // (https://cloud.google.com/error-reporting/docs/grouping-errors): the failure is one event,
    // and the project it names is not among those words (one group, not one per unit).
    const fresh = await mkdtemp(join(tmpdir(), 'org-fn-stale-event-'));
    const projects = [orgProjectId(1), orgProjectId(2)];
    const env = {
      ...process.env,
      GOVERNOR_STATE_DIR: fresh,
      GOVERNOR_POLICY: JSON.stringify({
        ...JSON.parse(POLICY),
        projects,
        // No such topic: the publish is refused (NOT_FOUND).
        alerts: { topic: `projects/${HOME}/topics/gpu-governor-alerts-never` },
      }),
      GOVERNOR_MAX_DELIVERY_ATTEMPTS: '5',
    };
    const openings: string[] = [];
    try {
      for (const project of projects) {
        const log = memoryLogger();
        const work = JSON.stringify({
          version: 1,
          kind: 'govern',
          project,
          dispatchId: 'd-stale-event',
          issuedAt: new Date(Date.now() - 38 * 60_000).toISOString(),
        });
        const answer = await handleUnitPush(push(work, { deliveryAttempt: 4 }), env, log);
        expect(answer.status).toBe(500);
        const events = log.lines.filter((l) => '@type' in l.fields);
        expect(events).toHaveLength(1);
        expect(events[0]?.severity).toBe('ERROR');
        expect(events[0]?.message).toContain(project);
        const words = (events[0]?.message ?? '')
          .split(/[\s:;,()]+/)
          .filter(Boolean)
          .slice(0, 3);
        expect(words.join(' ')).not.toContain(project);
        openings.push(words.join(' '));
      }
      expect(openings[0]).toBe(openings[1]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('governs only the project its message names, whatever other projects the policy lists', async () => {
    // Each listed project has its own work message and unit: a unit that governed them all would
    // run each project once per message, every run after the first holding the others off.
    const fresh = await mkdtemp(join(tmpdir(), 'org-fn-listed-'));
    const [named, other] = [orgProjectId(0), orgProjectId(2)];
    const env = {
      ...process.env,
      GOVERNOR_STATE_DIR: fresh,
      GOVERNOR_POLICY: JSON.stringify({ ...JSON.parse(POLICY), projects: [named, other] }),
    };
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project: named,
      dispatchId: 'd-listed',
      issuedAt: new Date().toISOString(),
    });
    try {
      const lines: string[] = [];
      const answer = await handleUnitPush(
        push(work),
        env,
        textLogger({ write: (s: string) => lines.push(s) }),
      );
      expect(answer.status, lines.join('')).toBe(200);
      const store = createFileStateStore({ dir: fresh });
      expect((await store.listRuns(named)).map((r) => r.outcome)).toEqual(['ok']);
      expect(await store.listRuns(other)).toEqual([]);
      expect(Object.keys((await store.listRuns(named))[0]?.pools ?? {})).toEqual([
        `${named}/us-central1/nvidia-l4/zonal`,
      ]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('answers 500 naming the misconfiguration when the emulator is set without its admin URL', async () => {
    // Pub/Sub delivers it again (the deployment may be mended meanwhile); nothing is run.
    const lines: string[] = [];
    const log = textLogger({ write: (s: string) => lines.push(s) });
    const project = orgProjectId(0);
    const runs = (await createFileStateStore({ dir }).listRuns(project)).length;
    const before = emulator.writes().length;
    const work = JSON.stringify({
      version: 1,
      kind: 'govern',
      project,
      dispatchId: 'd-no-admin',
      issuedAt: new Date().toISOString(),
    });
    const env: Record<string, string | undefined> = {
      ...process.env,
      GOVERNOR_POLICY: JSON.stringify({ ...JSON.parse(POLICY), projects: [project] }),
    };
    delete env.GOVERNOR_EMULATOR_ADMIN;
    const answer = await handleUnitPush(push(work), env, log);
    expect(answer.status).toBe(500);
    expect(String(answer.body.error)).toMatch(
      /^misconfigured: GOVERNOR_EMULATOR_HOST is set but GOVERNOR_EMULATOR_ADMIN is not/,
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/misconfigured: GOVERNOR_EMULATOR_HOST is set/);
    expect(emulator.writes()).toHaveLength(before);
    expect(await createFileStateStore({ dir }).listRuns(project)).toHaveLength(runs);
    expect(await createFileStateStore({ dir }).readLease(project)).toBeNull();
  });

  it('refuses a dispatch request that asks for anything (400), in one line, dispatching nothing', async () => {
    // The dispatch takes no request: the policy decides. A body that asks for a dry run must not
    // start the enforcing dispatch its caller did not ask for. (A policy without a work topic:
    // were the request run, it would fail for that, not publish.)
    process.env.GOVERNOR_POLICY = JSON.stringify({ version: 1, projects: ['gpu-proj-0000'] });
    try {
      for (const body of [{ mode: 'dry-run' }, { restore: true }, [], { x: null }]) {
        let d = { status: 0, text: '' };
        const lines = await linesOf(async () => {
          d = await post(dispatchServer, body);
        });
        expect(d.status, JSON.stringify(body)).toBe(400);
        expect(d.text, JSON.stringify(body)).not.toContain('fanout.topic');
        expect(lines, JSON.stringify(body)).toHaveLength(1);
        expect(String(lines[0]?.message), JSON.stringify(body)).toMatch(
          /^governorDispatch: refused a request \(400\)/,
        );
        // Its caller is the module's scheduler job: a refusal means no dispatch runs at all.
        expect(lines[0]?.severity, JSON.stringify(body)).toBe('ERROR');
      }
      // A query string is refused with advice each entry point can follow: neither takes the
      // `{"mode": "dry-run"}` that governorHttp's refusal suggests.
      for (const [server, takes] of [
        [dispatchServer, /governorDispatch takes no request: its body is empty or \{\}/],
        [unitServer, /governorUnit takes a Pub\/Sub push request in its body/],
      ] as const) {
        const asked = await fetch(`${base(server)}/?mode=dry-run`, { method: 'POST' });
        expect(asked.status).toBe(400);
        const error = String(((await asked.json()) as { error: unknown }).error);
        expect(error).toMatch(/^the function reads no query string: /);
        expect(error).toMatch(takes);
        expect(error).not.toContain('dry-run');
      }
      // An empty body, or the one the module's scheduler job sends, is a dispatch.
      const d = await post(dispatchServer, schedulerBody());
      expect(d.status).toBe(500);
      expect(d.text).toContain('fanout.topic');
      const none = await fetch(base(dispatchServer), { method: 'POST' });
      expect(none.status).toBe(500);
      expect(await none.text()).toContain('fanout.topic');
      // An empty body is no request whatever type it declares: the framework's parser for any
      // other type makes it an empty Buffer, which is not `{}`.
      for (const type of ['application/octet-stream', 'image/png', 'text/plain']) {
        const empty = await fetch(base(dispatchServer), {
          method: 'POST',
          headers: { 'content-type': type },
          body: '',
        });
        expect(empty.status, type).toBe(500);
        expect(await empty.text(), type).toContain('fanout.topic');
      }
    } finally {
      process.env.GOVERNOR_POLICY = POLICY;
    }
  });

  it('gives up a search slower than a short run deadline and dispatches the discovery it kept', async () => {
    // The dispatch's search may take 60 s, and no longer than the run deadline (src/function/org.ts):
    // past it the search counts as failed and the discovery kept under the same settings is used.
    // `cacheTtl: 0s` makes every dispatch search; it is not part of the kept result's settings.
    process.env.GOVERNOR_POLICY = JSON.stringify({
      ...JSON.parse(POLICY),
      discovery: { organization: ORG, cacheTtl: '0s' },
    });
    process.env.GOVERNOR_RUN_DEADLINE = '2s';
    try {
      const searched = await post(dispatchServer, {});
      expect(searched.status, searched.text).toBe(200);
      expect(JSON.parse(searched.text)).toMatchObject({ discovery: 'search', published: N });
      for (const m of await pullAll(N)) m.ack();
      // The next search answers after 8 s, well past the 2 s run deadline.
      emulator.setFaults({
        latency: [{ method: 'SearchAllResources', minMs: 8_000, maxMs: 8_000 }],
      });
      const slow = await post(dispatchServer, {});
      expect(slow.status, slow.text).toBe(200);
      expect(JSON.parse(slow.text)).toMatchObject({ discovery: 'stale-cache', published: N });
      for (const m of await pullAll(N)) m.ack();
    } finally {
      emulator.setFaults({});
      process.env.GOVERNOR_POLICY = POLICY;
      process.env.GOVERNOR_RUN_DEADLINE = '60s';
    }
  });

  it('counts the search deadline from the request, so time spent before it (loading the code) comes out of it', async () => {
    // Cloud Run's request timeout counts from the request's arrival
    // (https://cloud.google.com/run/docs/configuring/request-timeout): a cold instance loads the
    // dispatch's code and opens its clients inside it. Counted from after that, the search and
    // the send could run on past the function's timeout, answering nothing. A request that
    // arrived 2.5 s ago, with a 2 s run deadline, has no time left to search: the kept discovery
    // is dispatched.
    process.env.GOVERNOR_POLICY = JSON.stringify({
      ...JSON.parse(POLICY),
      discovery: { organization: ORG, cacheTtl: '0s' },
    });
    try {
      const searched = await post(dispatchServer, {});
      expect(searched.status, searched.text).toBe(200);
      expect(JSON.parse(searched.text)).toMatchObject({ discovery: 'search', published: N });
      for (const m of await pullAll(N)) m.ack();
      const late = await handleDispatch(
        {},
        { ...process.env, GOVERNOR_RUN_DEADLINE: '2s' },
        memoryLogger(),
        performance.now() - 2_500,
      );
      expect(late.status, JSON.stringify(late.body)).toBe(200);
      expect(late.body).toMatchObject({ discovery: 'stale-cache', published: N });
      for (const m of await pullAll(N)) m.ack();
    } finally {
      process.env.GOVERNOR_POLICY = POLICY;
    }
  });

  it("warns that its work messages go to the Pub/Sub emulator when the services read are Google's", async () => {
    // A PUBSUB_EMULATOR_HOST left over from a local session, beside Google's services: taken
    // (nothing of an emulator's data reaches Google), but the units would never get their work.
    // The policy lists its projects, so no search is made of Google's Asset Inventory.
    const env: Record<string, string | undefined> = {
      ...process.env,
      GOVERNOR_POLICY: JSON.stringify({
        ...JSON.parse(POLICY),
        discovery: undefined,
        projects: [orgProjectId(0)],
      }),
    };
    for (const name of [
      'GOVERNOR_EMULATOR_HOST',
      ...Object.keys(emulator.env),
      ...Object.keys(QUICK_POLL_ENV),
    ])
      if (name !== 'PUBSUB_EMULATOR_HOST') delete env[name];
    const log = memoryLogger();
    const answer = await handleDispatch({}, env, log);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toMatchObject({ published: 1 });
    for (const m of await pullAll(1)) m.ack();
    expect(log.lines.filter((l) => l.severity === 'WARNING').map((l) => l.message)).toEqual([
      `PUBSUB_EMULATOR_HOST is set (${pubsub.endpoint}) but GOVERNOR_EMULATOR_HOST is not, so the services read are Google's: the dispatch's work messages go to that Pub/Sub emulator, not to Google's topic; unset PUBSUB_EMULATOR_HOST to publish them to Google`,
    ]);
  });

  it('answers 500 to a dispatch whose work messages could not be published', async () => {
    // Cloud Scheduler counts only a 2xx as done: a dispatch that sent no unit must not be one,
    // or nothing retries it and no alert on the dispatch's answers fires.
    process.env.GOVERNOR_POLICY = JSON.stringify({
      ...JSON.parse(POLICY),
      fanout: { topic: `projects/${HOME}/topics/no-such-work-topic` },
    });
    try {
      let d = { status: 0, text: '' };
      const lines = await linesOf(async () => {
        d = await post(dispatchServer, {});
      });
      expect(d.status, d.text).toBe(500);
      const report = JSON.parse(d.text) as { units: number; published: number; failed: unknown[] };
      expect(report).toMatchObject({ units: N, published: 0 });
      expect(report.failed).toHaveLength(N);
      const events = lines.filter((l) => '@type' in l);
      expect(events).toHaveLength(1);
      expect(String(events[0]?.message)).toMatch(/^dispatch failed to send units: 0 of 6/);
    } finally {
      process.env.GOVERNOR_POLICY = POLICY;
    }
  });

  it('answers 500 in its own words to a dispatch whose work topic does not answer in time', async () => {
    // Pub/Sub's client retries a publish for up to 10 minutes; the dispatch's function times out
    // after 120 s, which would end the request with nothing logged. A work topic that takes the
    // connection and never answers: the dispatch gives up at its send deadline (counted, like
    // the search's, from the run deadline when that is short) and says why.
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    process.env.PUBSUB_EMULATOR_HOST = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    process.env.GOVERNOR_RUN_DEADLINE = '2s';
    try {
      let d = { status: 0, text: '' };
      const lines = await linesOf(async () => {
        d = await post(dispatchServer, {});
      });
      expect(d.status, d.text).toBe(500);
      expect(JSON.parse(d.text)).toMatchObject({
        error: expect.stringMatching(/passed while sending 6 work messages to /) as unknown,
      });
      const events = lines.filter((l) => '@type' in l);
      expect(events).toHaveLength(1);
      expect(String(events[0]?.message)).toMatch(/^dispatch failed: .*sending 6 work messages/);
    } finally {
      process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
      process.env.GOVERNOR_RUN_DEADLINE = '60s';
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('answers 500 with its id when its clients cannot be built, in one line, with its stack', async () => {
    // The Pub/Sub client throws as the work publisher opens its topic, before the dispatch
    // searches. The line said "unexpected failure" without the dispatch's id, which every other
    // line of a dispatch carries. (A malformed FIRESTORE_EMULATOR_HOST did this once; it is
    // refused as a misconfiguration now, runtime-options.ts.)
    const topic = vi.spyOn(PubSub.prototype, 'topic').mockImplementation(() => {
      throw new Error('the Pub/Sub client could not be built');
    });
    try {
      let d = { status: 0, text: '' };
      const lines = await linesOf(async () => {
        d = await post(dispatchServer, {});
      });
      expect(topic).toHaveBeenCalled();
      expect(d.status).toBe(500);
      const body = JSON.parse(d.text) as { dispatchId?: string; error?: string };
      expect(body.dispatchId).toMatch(/^dispatch-/);
      expect(body.error).toBe('dispatch failed: the Pub/Sub client could not be built');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ severity: 'ERROR', dispatchId: body.dispatchId });
      expect(String(lines[0]?.message)).toBe(
        'dispatch failed: its clients could not be built: the Pub/Sub client could not be built',
      );
      expect(String(lines[0]?.stack_trace)).toMatch(/\n\s+at /);
    } finally {
      topic.mockRestore();
    }
  });

  it('refuses a malformed FIRESTORE_EMULATOR_HOST as a misconfiguration, in one line', async () => {
    // The Firestore client threw from its constructor on it: the dispatch failed as its clients
    // could not be built, where the deployment is what is wrong.
    const env = { ...process.env };
    Object.assign(process.env, {
      GOVERNOR_STATE_STORE: 'firestore',
      FIRESTORE_EMULATOR_HOST: 'not a host',
    });
    delete process.env.GOVERNOR_STATE_DIR;
    try {
      let d = { status: 0, text: '' };
      const lines = await linesOf(async () => {
        d = await post(dispatchServer, {});
      });
      expect(d.status).toBe(500);
      expect((JSON.parse(d.text) as { error?: string }).error).toMatch(
        /^misconfigured: Invalid environment:\s+- FIRESTORE_EMULATOR_HOST: expected HOST:PORT/,
      );
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ severity: 'ERROR' });
      expect(String(lines[0]?.message)).toMatch(/^misconfigured: [^]*FIRESTORE_EMULATOR_HOST/);
    } finally {
      process.env = env;
    }
  });

  it("refuses the emulator's discovery beside Google's Pub/Sub as a misconfiguration", async () => {
    // Work messages for the emulator's projects would go to the real work topic.
    const env = { ...process.env };
    delete process.env.PUBSUB_EMULATOR_HOST;
    try {
      let d = { status: 0, text: '' };
      const lines = await linesOf(async () => {
        d = await post(dispatchServer, {});
      });
      expect(d.status).toBe(500);
      expect(d.text).toContain(
        'misconfigured: GOVERNOR_EMULATOR_HOST is set but PUBSUB_EMULATOR_HOST is not',
      );
      expect(lines).toHaveLength(1);
    } finally {
      process.env = env;
    }
  });

  it('answers 500 to a dispatch without a work topic, publishing nothing', async () => {
    process.env.GOVERNOR_POLICY = JSON.stringify({ version: 1, projects: ['gpu-proj-0000'] });
    try {
      let d = { status: 0, text: '' };
      const lines = await linesOf(async () => {
        d = await post(dispatchServer, {});
      });
      expect(d.status).toBe(500);
      expect(d.text).toContain('fanout.topic');
      // One line, the failure's one error event, with the dispatch's id.
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        severity: 'ERROR',
        '@type':
          'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent',
      });
      expect(lines[0]?.dispatchId).toMatch(/^dispatch-/);
    } finally {
      process.env.GOVERNOR_POLICY = POLICY;
    }
  });
});
