/**
 * Organisation chaos through Google's real Pub/Sub emulator (docs/organization.md, "What was
 * verified where"). The fleet emulator serves an organisation of 40 projects, one GPU pool each;
 * the function's own entry points run under functions-framework; Google's Pub/Sub emulator holds
 * the work topic, a push subscription to the unit entry point with a retry policy and a
 * dead-letter policy (5 attempts), the dead-letter topic and the alert topic. A dispatch publishes
 * one work message per project and the emulator pushes each to the unit, redelivers what the unit
 * refuses and dead-letters what it refused five times: nothing of that is imitated here.
 *
 * Seeded faults: 5% of the units (2 of 40), drawn at random, fail on some deliveries: every
 * Cloud Run call of the project never answers (a hang past the unit's run deadline), or answers
 * an error the client does not retry (the run fails at once). The hung one recovers on its second
 * delivery; the failing one never does. Meanwhile another writer fills pools and cuts quotas between the governor's reads and
 * writes (the fleet emulator's `otherActor`).
 *
 * Between Pub/Sub and the function sits what Cloud Run puts there: a front that forwards each push
 * and answers 504 when the function's timeout passes, as Cloud Run does
 * (https://cloud.google.com/run/docs/configuring/request-timeout; the emulator's pusher itself
 * waits forever); it also notes each delivery and its answer, for the assertions.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import type { Alert } from '../../src/core/alert.js';
import {
  RpcError,
  seededRandom,
  startEmulator,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import { sharedPubSubEmulator, type SharedEmulator } from '../support/shared-emulators.js';
import { ORG, orgFleet, orgProjectId } from '../support/org-fleet.js';
import { QUICK_POLL_ENV } from '../support/fixtures.js';

// Its own project in the run's shared Pub/Sub emulator (test/support/shared-emulators.ts).
const HOME = 'org-pubsub-home';
const N = 40;
const SEED = 17;
const MAX_ATTEMPTS = 5;
/** The unit's run deadline (GOVERNOR_RUN_DEADLINE): a hung call fails the run after this. */
const RUN_DEADLINE_S = 8;
/** The function's timeout, as Cloud Run enforces it; the subscription's ack deadline is the same. */
const FUNCTION_TIMEOUT_S = 15;
const QUOTA = 4;

type Fault = { mode: 'error' | 'hang'; failFor: number };

// 40 projects of 2 services that each want 2 GPUs of a pool of 4, at 1 today: every unit raises.
const fleet = orgFleet({ projects: N, services: 2, quota: QUOTA });
for (const p of fleet.projects) for (const s of p.services ?? []) s.demand = 2;

// 5% of the units, picked by a seeded draw; what each does is fixed so that every path is taken.
const faults = new Map<string, Fault>();
{
  const random = seededRandom(SEED);
  const plans: Fault[] = [
    { mode: 'hang', failFor: 1 },
    { mode: 'error', failFor: Infinity },
  ];
  while (faults.size < plans.length) {
    const id = orgProjectId(Math.floor(random() * N));
    if (!faults.has(id)) faults.set(id, plans[faults.size] as Fault);
  }
}

const WORK = 'gpu-governor-work';
const DEAD = 'gpu-governor-work-dead-letter';
const ALERTS = 'gpu-governor-alerts';
const POLICY = JSON.stringify({
  version: 1,
  discovery: { organization: ORG },
  fanout: { topic: `projects/${HOME}/topics/${WORK}` },
  defaults: { headroom: 0, max: QUOTA },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: `projects/${HOME}/topics/${ALERTS}` },
});

interface Delivery {
  project: string;
  n: number;
  status: number | null;
  answeredAt: number | null;
  /** The unit's own outcome, from its answer's body (none for the front's 504). */
  outcome?: string;
}

let emulator: RunningEmulator;
let pubsub: SharedEmulator;
let client: PubSub;
/** The push subscription to the front, deleted at the end. */
let pushed: Subscription | undefined;
const pulls: Subscription[] = [];
const servers: Server[] = [];
let dir: string;
const saved = { ...process.env };
const deliveries: Delivery[] = [];
/** The fault of the delivery each project is in now, if any. */
const now = new Map<string, Fault['mode']>();
/** Hung calls, let go (with an error) when the test ends. */
const hung: (() => void)[] = [];
const deadLetters: Message[] = [];
const alerts: { alert: Alert; publishedAt: number }[] = [];

function projectOf(request: unknown): string | null {
  return /projects\/([a-z][-a-z0-9]{4,28}[a-z0-9])\b/.exec(JSON.stringify(request))?.[1] ?? null;
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Cloud Run's part: forwards a push to the function, answers 504 past the function's timeout. */
function front(unit: string): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const pushed = JSON.parse(body.toString()) as { message: { data: string } };
      const { project } = JSON.parse(Buffer.from(pushed.message.data, 'base64').toString()) as {
        project: string;
      };
      const n = deliveries.filter((d) => d.project === project).length + 1;
      const d: Delivery = { project, n, status: null, answeredAt: null };
      deliveries.push(d);
      const fault = faults.get(project);
      if (fault && n <= fault.failFor) now.set(project, fault.mode);
      else now.delete(project);
      fetch(unit, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(FUNCTION_TIMEOUT_S * 1000),
      })
        .then(async (r) => ({ status: r.status, text: await r.text() }))
        .catch(() => ({ status: 504, text: 'the function timed out' }))
        .then(({ status: code, text }) => {
          d.status = code;
          d.answeredAt = Date.now();
          d.outcome = outcomeOf(text);
          res.statusCode = code;
          res.end(text);
        });
    });
  });
}

/** The `outcome` of a unit's JSON answer, if it has one. */
function outcomeOf(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { outcome?: unknown };
    return typeof body.outcome === 'string' ? body.outcome : undefined;
  } catch {
    return undefined;
  }
}

function collect(sub: Subscription, into: (m: Message) => void): void {
  pulls.push(sub);
  sub.on('message', (m: Message) => {
    into(m);
    m.ack();
  });
}

beforeAll(async () => {
  [pubsub, emulator] = await Promise.all([
    sharedPubSubEmulator(HOME),
    startEmulator({
      fleet,
      speed: 'manual',
      operationDelayMs: 20,
      inject: {
        seed: SEED,
        otherActor: { rate: 0.1, kinds: ['fill', 'cut-quota'], maxCut: 1 },
      },
      faults: ({ request }) => {
        const project = projectOf(request);
        const mode = project ? now.get(project) : undefined;
        if (mode === 'error')
          return new RpcError(
            status.FAILED_PRECONDITION,
            `injected: Cloud Run failed for ${project}`,
          );
        if (mode === 'hang')
          return new Promise((resolve) =>
            hung.push(() => resolve(new RpcError(status.CANCELLED, 'the test ended'))),
          );
        return undefined;
      },
    }),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'org-chaos-'));
  Object.assign(process.env, {
    ...emulator.env,
    ...QUICK_POLL_ENV,
    GOVERNOR_POLICY: POLICY,
    GOVERNOR_STATE_DIR: dir,
    GOVERNOR_RUN_DEADLINE: `${RUN_DEADLINE_S}s`,
    GOVERNOR_MAX_DELIVERY_ATTEMPTS: String(MAX_ATTEMPTS),
    PUBSUB_EMULATOR_HOST: pubsub.endpoint,
  });
  await import('../../src/function/index.js');
  const unit = await listen(getTestServer('governorUnit'));
  const endpoint = await listen(front(unit));

  client = new PubSub({ projectId: HOME, apiEndpoint: pubsub.endpoint });
  const [[work], [dead], [alertTopic]] = await Promise.all([
    client.createTopic(WORK),
    client.createTopic(DEAD),
    client.createTopic(ALERTS),
  ]);
  const [[deadSub], [alertSub]] = await Promise.all([
    dead.createSubscription(DEAD),
    alertTopic.createSubscription('alerts-capture'),
  ]);
  collect(deadSub, (m) => deadLetters.push(m));
  collect(alertSub, (m) =>
    alerts.push({
      alert: JSON.parse(m.data.toString()) as Alert,
      publishedAt: m.publishTime.getTime(),
    }),
  );
  // The module's subscription (terraform/organization/pubsub.tf) with test-sized backoffs.
  [pushed] = await work.createSubscription(WORK, {
    pushConfig: { pushEndpoint: endpoint },
    ackDeadlineSeconds: FUNCTION_TIMEOUT_S,
    retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
    deadLetterPolicy: { deadLetterTopic: dead.name, maxDeliveryAttempts: MAX_ATTEMPTS },
  });
}, 90_000);

afterAll(async () => {
  for (const release of hung) release();
  // The emulator outlives this file (it is the run's): no pushes to the front once it is closed.
  await pushed?.delete();
  await Promise.allSettled(pulls.map((s) => s.close()));
  await Promise.allSettled(servers.map((s) => new Promise((r) => s.close(r))));
  await client?.close();
  await emulator?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  process.env = saved;
});

const deadLettered = (): Set<string> =>
  new Set(deadLetters.map((m) => (JSON.parse(m.data.toString()) as { project: string }).project));
const of = (p: string): Delivery[] => deliveries.filter((d) => d.project === p);
const ok = (d: Delivery | undefined): boolean =>
  d !== undefined && d.status !== null && d.status >= 200 && d.status < 300;

/** Every unit completed (its last delivery acknowledged) or dead-lettered. */
function settled(): boolean {
  const dead = deadLettered();
  for (let i = 0; i < N; i++) {
    const p = orgProjectId(i);
    if (!dead.has(p) && !ok(of(p).at(-1))) return false;
  }
  return true;
}

describe('organisation chaos through Pub/Sub push, retries and dead letters', () => {
  it('completes every other unit, retries or dead-letters and alerts the failed ones, within every budget', async () => {
    const t0 = Date.now();
    const dispatch = await fetch(await listen(getTestServer('governorDispatch')), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(dispatch.status).toBe(200);
    expect(await dispatch.json()).toMatchObject({ units: N, published: N, failed: [] });

    const until = Date.now() + 150_000;
    while (!settled()) {
      if (Date.now() > until) {
        const open = [...Array(N).keys()].map(orgProjectId).filter((p) => !ok(of(p).at(-1)));
        throw new Error(
          `not settled after 150 s: ${open.join(', ')} (${deliveries.length} deliveries)`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // The alert of a last answer is published before that answer: it is here by now or never.
    await new Promise((r) => setTimeout(r, 1_000));
    const wallMs = Date.now() - t0;
    if (process.env['ORG_CHAOS_DEBUG']) {
      for (const d of deliveries)
        console.log(`${d.project} #${d.n} ${d.status} at ${(d.answeredAt ?? 0) - t0} ms`);
      for (const a of alerts)
        console.log(
          `${a.alert.type} ${a.alert.status} ${a.alert.project} ${a.alert.dedupKey} at ${a.publishedAt - t0}`,
        );
    }

    const store = createFileStateStore({ dir });
    const dead = deadLettered();
    const failedUnits = new Set(deliveries.filter((d) => !ok(d)).map((d) => d.project));
    const delivery = alerts.filter((a) =>
      /^governor\.degraded:[^:]+:delivery$/.test(a.alert.dedupKey),
    );

    // A pool whose quota the other writer cut below its floors (pool.infeasible) cannot be
    // governed: Cloud Run refuses every max instances above the quota, even a decrease to the
    // floor, so each of its runs fails its writes and its message may be dead-lettered like a
    // faulted one's. That is the other writer's doing, alerted (pool.infeasible, and the delivery
    // alert checked below), not a unit the fan-out lost.
    const infeasible = new Set(
      alerts
        .filter((a) => a.alert.type === 'pool.infeasible' && a.alert.status === 'firing')
        .map((a) => a.alert.project),
    );
    const cutOff = [...dead].filter((p) => !faults.has(p) && infeasible.has(p));

    // Every other unit without a fault completed. Only a faulted unit is expected to fail a
    // delivery; one that failed without a fault (its run past the deadline on a loaded machine)
    // must have been delivered again and completed like any other, and is named in the summary.
    for (let i = 0; i < N; i++) {
      const p = orgProjectId(i);
      if (faults.has(p) || cutOff.includes(p)) continue;
      expect(dead.has(p), p).toBe(false);
      expect(ok(of(p).at(-1)), p).toBe(true);
      expect(
        (await store.listRuns(p)).some((r) => r.outcome === 'ok'),
        p,
      ).toBe(true);
    }
    for (const p of faults.keys()) expect(failedUnits.has(p), p).toBe(true);
    const unexpected = [...failedUnits].filter((p) => !faults.has(p));

    // Every failed unit was delivered again, then completed or was dead-lettered after five.
    for (const p of failedUnits) {
      const mine = of(p);
      expect(mine.length, p).toBeGreaterThan(1);
      if (dead.has(p)) {
        expect(mine.map((d) => d.status)).toEqual(Array(MAX_ATTEMPTS).fill(500));
        const letter = deadLetters.find((m) => m.data.toString().includes(p));
        expect(letter?.attributes['CloudPubSubDeadLetterSourceDeliveryCount']).toBe(
          String(MAX_ATTEMPTS),
        );
      } else {
        const firstOk = mine.findIndex((d) => ok(d));
        expect(firstOk, p).toBe(mine.length - 1);
        // Each delivery the unit answered "failed" left a failed run. One the front timed out
        // (504: the run went on past the function's timeout on a loaded machine, and may have
        // failed or succeeded) or answered lease-held (a redelivery that met the run still going)
        // may have left none, so the failed runs are at least the former, at most the deliveries
        // before the last.
        const runs = await store.listRuns(p);
        const failedRuns = runs.filter((r) => r.outcome === 'failed').length;
        expect(failedRuns, p).toBeGreaterThanOrEqual(
          mine.filter((d) => d.outcome === 'failed').length,
        );
        expect(failedRuns, p).toBeLessThanOrEqual(mine.length - 1);
        expect(
          runs.some((r) => r.outcome === 'ok'),
          p,
        ).toBe(true);
      }
    }
    // The faults took the paths they were drawn for.
    for (const [p, fault] of faults) {
      if (fault.failFor === Infinity) expect(dead.has(p), p).toBe(true);
      else expect(of(p).map((d) => ok(d))).toEqual([...Array(fault.failFor).fill(false), true]);
    }

    // Every failed unit alerted (governor.degraded, reason delivery) once, before it answered;
    // the emulator sends no deliveryAttempt, so the first failed delivery may be the last (fail
    // safe). A unit that completed later resolved it; a dead-lettered one did not.
    for (const p of failedUnits) {
      const firing = delivery.filter((a) => a.alert.project === p && a.alert.status === 'firing');
      expect(firing, p).toHaveLength(1);
      const { alert, publishedAt } = firing[0] as (typeof delivery)[number];
      expect(alert.details).toMatchObject({ attempt: null, maxAttempts: MAX_ATTEMPTS });
      const fault = faults.get(p);
      if (fault)
        expect(String(alert.details['cause'])).toMatch(
          fault.mode === 'error' ? /FAILED_PRECONDITION/ : /deadline/,
        );
      expect(alert.summary).toContain(p);
      expect(publishedAt).toBeLessThanOrEqual(of(p)[0]?.answeredAt ?? 0);
      const resolved = delivery.filter(
        (a) => a.alert.project === p && a.alert.status === 'resolved',
      );
      expect(resolved, p).toHaveLength(dead.has(p) ? 0 : 1);
    }
    expect(new Set(delivery.map((a) => a.alert.project))).toEqual(failedUnits);

    // No pool above its quota after any write, while another writer filled pools and cut quotas.
    emulator.judgeRaces();
    const { violations, checks, races } = emulator.violations();
    expect(violations, JSON.stringify(violations.slice(0, 3))).toEqual([]);
    expect(checks).toBeGreaterThanOrEqual(N - faults.size);
    const injected = emulator.faults().injected;
    expect(injected['other-actor-fill'] ?? 0).toBeGreaterThan(0);
    expect(injected['other-actor-cut-quota'] ?? 0).toBeGreaterThan(0);

    console.log(
      `org chaos (seed ${SEED}): ${N} units, ${faults.size} faulted, ${deliveries.length} deliveries, ` +
        `${dead.size} dead-lettered, ${delivery.length} delivery alerts, ${checks} writes checked, ` +
        `${races.length} races with the other writer, ${wallMs} ms from dispatch to settled` +
        (unexpected.length > 0 ? `; failed without a fault: ${unexpected.join(', ')}` : '') +
        (cutOff.length > 0
          ? `; dead-lettered after the other writer cut the quota below the floors: ${cutOff.join(', ')}`
          : ''),
    );
  }, 240_000);
});
