import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { PubSub } from '@google-cloud/pubsub';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { startFirestoreEmulator } from '../support/firestore-emulator.js';
import { startPubSubEmulator } from '../support/pubsub-emulator.js';
import type { RunningEmulator as JavaEmulator } from '../support/java-emulator.js';

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
const POLICY = JSON.stringify({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: `projects/${PROJECT}/topics/alerts` },
});

let emulator: RunningEmulator;
let pubsub: JavaEmulator;
let firestore: JavaEmulator;
let http: Server;
let events: Server;
const saved = { ...process.env };

function base(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function listen(server: Server): Promise<Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

beforeAll(async () => {
  [pubsub, firestore] = await Promise.all([startPubSubEmulator(), startFirestoreEmulator()]);
  const admin = new PubSub({ projectId: PROJECT, apiEndpoint: pubsub.endpoint });
  process.env.PUBSUB_EMULATOR_HOST = pubsub.endpoint;
  await admin.createTopic('alerts');
  await admin.close();
  await import('../../src/function/index.js');
  http = await listen(getTestServer('governorHttp'));
  events = await listen(getTestServer('governorEvent'));
});

beforeEach(async () => {
  await emulator?.stop();
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 20 });
  Object.assign(process.env, {
    ...emulator.env,
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
  await new Promise((r) => http?.close(r));
  await new Promise((r) => events?.close(r));
  await emulator?.stop();
  await Promise.all([pubsub?.stop(), firestore?.stop()]);
  process.env = saved;
});

async function post(
  server: Server,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base(server), {
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
    expect(r.json).toMatchObject({ outcome: 'ok', mode: 'enforce', failed: 0 });
    expect(r.json.written).toBeGreaterThan(0);
    expect(emulator.writes().length).toBe(r.json.written);
    for (const w of emulator.writes()) expect(w.pool?.capsGpus).toBeLessThanOrEqual(5);
  });

  it('answers 400 naming the field for a bad request, and writes nothing', async () => {
    const bad = await post(http, { mode: 'yolo', extra: 1 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('mode');
    expect(JSON.stringify(bad.json)).toContain('extra');
    expect(emulator.writes()).toEqual([]);
  });

  it('a dry run asked in the body writes nothing', async () => {
    const r = await post(http, { mode: 'dry-run' });
    expect(r.status).toBe(200);
    expect(r.json.mode).toBe('dry-run');
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

describe('the Cloud Function (CloudEvent entry point, Pub/Sub trigger)', () => {
  it('runs on a Pub/Sub message whose data is the same optional JSON', async () => {
    const data = Buffer.from(JSON.stringify({ mode: 'dry-run' })).toString('base64');
    const res = await fetch(base(events), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
        'ce-source': `//pubsub.googleapis.com/projects/${PROJECT}/topics/governor-trigger`,
        'ce-id': 'trigger-1',
      },
      body: JSON.stringify({ message: { data }, subscription: 'projects/x/subscriptions/y' }),
    });
    expect(res.status).toBeLessThan(300);
    expect(emulator.writes()).toEqual([]);
    const enforce = await fetch(base(events), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
        'ce-source': `//pubsub.googleapis.com/projects/${PROJECT}/topics/governor-trigger`,
        'ce-id': 'trigger-2',
      },
      body: JSON.stringify({ message: {} }),
    });
    expect(enforce.status).toBeLessThan(300);
    expect(emulator.writes().length).toBeGreaterThan(0);
  });
});
