/**
 * The emulator's Pub/Sub publisher, through Google's own client library over gRPC: the governor's
 * alert sink publishes to it, the admin endpoint lists what was published, and it refuses what
 * Pub/Sub refuses (see src/emulator/pubsub-api.ts for the sources).
 */
import { PubSub, v1 } from '@google-cloud/pubsub';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPubSubAlertSink, PublishError } from '../../src/adapters/pubsub.js';
import type { Alert } from '../../src/core/alert.js';
import { alertMessage } from '../../src/core/run-alerts.js';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import {
  startEmulator,
  type PublishedMessage,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import { codeOf, PROJECT } from './helpers.js';
import { testFleet } from '../support/fixtures.js';

const TOPIC = `projects/${PROJECT}/topics/gpu-governor-alerts`;
const quick = { maxAttempts: 1, attemptTimeoutMs: 20_000 };
/** One attempt per raw call: a wrong answer fails the test instead of being retried. */
const once = { retry: null, timeout: 20_000 };

let emulator: RunningEmulator;
let admin: string;
let pubsub: PubSub;
let raw: v1.PublisherClient;

beforeAll(async () => {
  const published: PublishedMessage[] = [];
  emulator = await startEmulator({
    fleet: { ...testFleet(), topics: [TOPIC] },
    speed: 'manual',
    onPublish: (m) => published.push(m),
  });
  admin = emulator.env['GOVERNOR_EMULATOR_ADMIN'] ?? '';
  const host = emulator.env['PUBSUB_EMULATOR_HOST'] ?? '';
  vi.stubEnv('PUBSUB_EMULATOR_HOST', host);
  pubsub = new PubSub({ projectId: PROJECT });
  raw = new v1.PublisherClient(emulatorClientOptions(host));
});

afterAll(async () => {
  await pubsub?.close();
  await raw?.close();
  await emulator?.stop();
  vi.unstubAllEnvs();
});

async function publishedOver(topic?: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(
    `${admin}/published${topic === undefined ? '' : `?topic=${encodeURIComponent(topic)}`}`,
  );
  return { status: res.status, body: await res.json() };
}

function alert(key: string, summary: string) {
  return {
    data: { type: 'pool.pressure', status: 'firing', summary },
    attributes: { type: 'pool.pressure', severity: 'WARNING' },
    orderingKey: key,
  };
}

describe("the emulator's Pub/Sub publisher", () => {
  it('exports PUBSUB_EMULATOR_HOST on its gRPC port', () => {
    expect(emulator.env['PUBSUB_EMULATOR_HOST']).toBe(`127.0.0.1:${emulator.port}`);
    expect(emulator.topics()).toEqual([TOPIC]);
  });

  it("takes the alert sink's messages and lists them on the admin endpoint", async () => {
    const sink = createPubSubAlertSink({ topic: TOPIC, ...quick });
    let ids: string[];
    try {
      const results = await sink.publish([
        alert('p/us-central1/nvidia-l4/zonal', 'first'),
        alert('p/us-central1/nvidia-l4/zonal', 'second'),
        alert('p/europe-west4/nvidia-l4/zonal', 'other pool'),
      ]);
      ids = results.map((r) => r.messageId ?? '');
    } finally {
      await sink.close();
    }
    // Pub/Sub orders messages within an ordering key only ("cross-key ordering" is not expected,
    // https://cloud.google.com/pubsub/docs/ordering): the other pool's message may arrive
    // first, so its id is any of the three, while 'first' comes before 'second'.
    expect([...ids].sort()).toEqual(['1', '2', '3']);
    expect(Number(ids[0])).toBeLessThan(Number(ids[1]));
    const { status: code, body } = await publishedOver(TOPIC);
    expect(code).toBe(200);
    const messages = body as PublishedMessage[];
    expect(messages).toHaveLength(3);
    expect(messages.map((m) => m.messageId)).toEqual(['1', '2', '3']);
    const first = messages.find((m) => m.messageId === ids[0]);
    expect(first).toMatchObject({
      topic: TOPIC,
      messageId: ids[0],
      attributes: { type: 'pool.pressure', severity: 'WARNING' },
      orderingKey: 'p/us-central1/nvidia-l4/zonal',
      publishTime: '2026-11-27T12:00:00.000Z',
    });
    expect(JSON.parse(first?.data ?? '')).toEqual({
      type: 'pool.pressure',
      status: 'firing',
      summary: 'first',
    });
    expect(messages.map((m) => JSON.parse(m.data ?? '') as { summary: string })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ summary: 'second' }),
        expect.objectContaining({ summary: 'other pool' }),
      ]),
    );
    expect(emulator.published(TOPIC)).toEqual(messages);
  });

  it('creates, gets and lists topics like Pub/Sub', async () => {
    const [created] = await pubsub.createTopic('made-by-client');
    expect(created.name).toBe(`projects/${PROJECT}/topics/made-by-client`);
    const [exists] = await pubsub.topic('made-by-client').exists();
    expect(exists).toBe(true);
    const [missing] = await pubsub.topic('never-made').exists();
    expect(missing).toBe(false);
    const again = await codeOf(pubsub.createTopic('made-by-client'));
    expect(again.code).toBe(status.ALREADY_EXISTS);
    expect(again.message).toContain(
      'Resource already exists in the project (resource=made-by-client)',
    );
    const [topics] = await pubsub.getTopics();
    expect(topics.map((t) => t.name)).toEqual([TOPIC, `projects/${PROJECT}/topics/made-by-client`]);
    for (const bad of ['ab', 'goog-alerts', '9lives', 'has space', 'a'.repeat(256)]) {
      const r = await codeOf(raw.createTopic({ name: `projects/${PROJECT}/topics/${bad}` }, once));
      expect(r.code, bad).toBe(status.INVALID_ARGUMENT);
      expect(r.message, bad).toContain('Invalid [topics] name');
    }
  });

  it('refuses each publisher method lacking the permission it needs, and no other', async () => {
    // Pub/Sub's table of the permission each method needs
    // (https://cloud.google.com/pubsub/docs/access-control, "Required permissions"; the same per
    // operation in https://cloud.google.com/pubsub/docs/list-topics):
    // Publish needs pubsub.topics.publish, GetTopic pubsub.topics.get, CreateTopic
    // pubsub.topics.create, ListTopics pubsub.topics.list. Each project below lacks one of them.
    const calls: Record<string, (client: v1.PublisherClient, project: string) => Promise<unknown>> =
      {
        'pubsub.topics.publish': (client, p) =>
          client.publish(
            { topic: `projects/${p}/topics/alerts`, messages: [{ data: 'eA==' }] },
            once,
          ),
        'pubsub.topics.get': (client, p) =>
          client.getTopic({ topic: `projects/${p}/topics/alerts` }, once),
        'pubsub.topics.create': (client, p) =>
          client.createTopic({ name: `projects/${p}/topics/new` }, once),
        'pubsub.topics.list': (client, p) =>
          client.listTopics({ project: `projects/${p}` }, { ...once, autoPaginate: false }),
      };
    const permissions = Object.keys(calls);
    const projectOf = (permission: string) => `deny-${permission.replace(/\./g, '-')}`;
    const own = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        projects: permissions.map((permission) => ({
          id: projectOf(permission),
          iam: { denied: [permission] },
          services: [{ name: 'svc', region: 'us-central1', maxInstances: 1, demand: 0 }],
        })),
        topics: permissions.map((permission) => `projects/${projectOf(permission)}/topics/alerts`),
      },
      speed: 'manual',
    });
    const client = new v1.PublisherClient(
      emulatorClientOptions(own.env['PUBSUB_EMULATOR_HOST'] ?? ''),
    );
    try {
      for (const permission of permissions) {
        const project = projectOf(permission);
        const denied = await codeOf(calls[permission]!(client, project));
        expect(denied.code, permission).toBe(status.PERMISSION_DENIED);
        expect(denied.message, permission).toContain('User not authorized to perform this action.');
        // A method that needs another permission goes on in the same project.
        const other =
          permission === 'pubsub.topics.get' ? 'pubsub.topics.list' : 'pubsub.topics.get';
        await expect(calls[other]!(client, project), permission).resolves.toBeDefined();
      }
    } finally {
      await client.close();
      await own.stop();
    }
  });

  it("checks a topic's name in TestIamPermissions as every topic call does", async () => {
    const test = (name: string) =>
      pubsub.topic(name).iam.testPermissions(['pubsub.topics.publish'], { retry: null });
    // Topic.name's rules (google/pubsub/v1/pubsub.proto): a malformed name is INVALID_ARGUMENT,
    // never an empty set of permissions as if the topic were merely missing.
    for (const name of [
      `projects/${PROJECT}/topics/goog-alerts`,
      `projects/${PROJECT}/topics/ab`,
      `projects/${PROJECT}/topics/1alerts`,
      `projects/${PROJECT}/topics/${'t'.repeat(256)}`,
    ]) {
      const refused = await codeOf(test(name));
      expect(refused.code, name).toBe(status.INVALID_ARGUMENT);
      expect(refused.message, name).toContain('Invalid [topics] name');
    }
    const [missing] = await test(`projects/${PROJECT}/topics/missing-topic`);
    expect(missing).toEqual({ 'pubsub.topics.publish': false });
    const [present] = await test(TOPIC);
    expect(present).toEqual({ 'pubsub.topics.publish': true });
  });

  it('answers NOT_FOUND to a publish on a missing topic, and the sink reports it', async () => {
    const sink = createPubSubAlertSink({
      topic: `projects/${PROJECT}/topics/no-such-topic`,
      ...quick,
    });
    try {
      const error = await sink.publish([alert('k', 'lost')]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PublishError);
      expect((error as PublishError).failures[0]?.error).toMatchObject({ code: status.NOT_FOUND });
      expect((error as PublishError).message).toContain(
        'Resource not found (resource=no-such-topic)',
      );
    } finally {
      await sink.close();
    }
    const r = await codeOf(
      raw.publish(
        {
          topic: `projects/${PROJECT}/topics/no-such-topic`,
          messages: [{ data: Buffer.from('x') }],
        },
        once,
      ),
    );
    expect(r.code).toBe(status.NOT_FOUND);
    expect(emulator.published().some((m) => m.topic.endsWith('/no-such-topic'))).toBe(false);
  });

  it('refuses a message over 10 MB', async () => {
    const sink = createPubSubAlertSink({ topic: TOPIC, ...quick });
    try {
      const huge = { ...alert('k', 'huge'), data: { blob: 'x'.repeat(10_000_000) } };
      const error = await sink.publish([huge]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PublishError);
      const cause = (error as PublishError).failures[0]?.error;
      expect(cause).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(String((cause as Error).message)).toMatch(
        /You passed request_size in the request, but the maximum value is 10000000/,
      );
    } finally {
      await sink.close();
    }
    expect(emulator.published(TOPIC)).toHaveLength(3);
  });

  it("checks attributes, ordering keys and empty messages against Pub/Sub's limits", async () => {
    const topic = TOPIC;
    const cases: [string, Parameters<v1.PublisherClient['publish']>[0], number, RegExp][] = [
      ['no messages', { topic, messages: [] }, status.INVALID_ARGUMENT, /at least one message/],
      [
        '1001 messages',
        { topic, messages: Array.from({ length: 1001 }, () => ({ data: Buffer.from('x') })) },
        status.INVALID_ARGUMENT,
        /You passed message_count in the request, but the maximum value is 1000/,
      ],
      [
        'empty message',
        { topic, messages: [{ data: Buffer.alloc(0) }] },
        status.INVALID_ARGUMENT,
        /must contain either non-empty data, or at least one attribute/,
      ],
      [
        '101 attributes',
        {
          topic,
          messages: [
            {
              attributes: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 'v'])),
            },
          ],
        },
        status.INVALID_ARGUMENT,
        /has 101 attributes, but the maximum allowed is 100/,
      ],
      [
        'key of 257 bytes',
        { topic, messages: [{ attributes: { ['k'.repeat(257)]: 'v' } }] },
        status.INVALID_ARGUMENT,
        /has a key that is too long\. The length is 257 bytes, but the maximum allowed is 256/,
      ],
      [
        'value of 1025 bytes in fewer characters',
        { topic, messages: [{ attributes: { note: 'é'.repeat(513) } }] },
        status.INVALID_ARGUMENT,
        /"note" in the request has a value that is too long\. The length is 1026 bytes/,
      ],
      [
        'ordering key of 1025 bytes',
        { topic, messages: [{ data: Buffer.from('x'), orderingKey: 'k'.repeat(1025) }] },
        status.INVALID_ARGUMENT,
        /ordering key in the request is too long/,
      ],
      [
        'two ordering keys in one request',
        {
          topic,
          messages: [
            { data: Buffer.from('a'), orderingKey: 'one' },
            { data: Buffer.from('b'), orderingKey: 'two' },
          ],
        },
        status.FAILED_PRECONDITION,
        /all messages must have no ordering key or they must all have the same ordering key/,
      ],
      [
        'a bad topic name',
        { topic: 'alerts', messages: [{ data: Buffer.from('x') }] },
        status.INVALID_ARGUMENT,
        /Invalid \[topics\] name: \(name=alerts\)/,
      ],
    ];
    for (const [what, request, code, why] of cases) {
      const r = await codeOf(raw.publish(request, once));
      expect(r.code, what).toBe(code);
      expect(r.message, what).toMatch(why);
    }
    // At the limits exactly: accepted.
    const [ok] = await raw.publish({
      topic,
      messages: [
        {
          attributes: { ['k'.repeat(256)]: 'v'.repeat(1024) },
          orderingKey: 'o'.repeat(1024),
        },
      ],
    });
    expect(ok.messageIds).toHaveLength(1);
    expect(emulator.published(TOPIC)).toHaveLength(4);
  });

  it('answers 400 on the admin endpoint for a bad or unknown topic', async () => {
    const bad = await publishedOver('not-a-topic');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('projects/PROJECT/topics/TOPIC');
    const unknown = await publishedOver(`projects/${PROJECT}/topics/nope`);
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain(TOPIC);
    const all = await publishedOver();
    expect((all.body as unknown[]).length).toBe(emulator.published().length);
  });

  it('takes a publish request of exactly 10,000,000 bytes, topic name included, and refuses one byte more', async () => {
    const [topic] = await raw.createTopic({ name: `projects/${PROJECT}/topics/size-limit` }, once);
    const name = topic.name ?? '';
    // The request's size as Pub/Sub counts it: the topic name and the messages' data.
    const data = (bytes: number) => Buffer.alloc(bytes - Buffer.byteLength(name), 'x');
    const [ok] = await raw.publish({ topic: name, messages: [{ data: data(10_000_000) }] }, once);
    expect(ok.messageIds).toHaveLength(1);
    const over = await codeOf(
      raw.publish({ topic: name, messages: [{ data: data(10_000_001) }] }, once),
    );
    expect(over.code).toBe(status.INVALID_ARGUMENT);
    expect(over.message).toMatch(
      /The value for 10000001 is too large\. You passed request_size in the request, but the maximum value is 10000000/,
    );
    expect(emulator.published(name)).toHaveLength(1);
  });

  it('takes an alert that names more than an attribute or an ordering key holds, its data whole', async () => {
    // A message read back from the store may name anything (a hand edit): sent as it was, Pub/Sub
    // refused it, and with it every message of its ordering key (its pool), at every run.
    const [topic] = await raw.createTopic({ name: `projects/${PROJECT}/topics/long-names` }, once);
    const name = topic.name ?? '';
    const long: Alert = {
      version: 1,
      id: 'run-1:rebalance.applied:long',
      type: 'rebalance.applied',
      status: 'event',
      severity: 'INFO',
      project: PROJECT,
      region: `us-${'é'.repeat(600)}`,
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      service: `svc-${'s'.repeat(2000)}`,
      summary: 'a hand-edited event',
      details: {},
      runId: 'run-1',
      time: '2026-11-27T12:00:00.000Z',
      dedupKey: 'rebalance.applied:long',
    };
    const short: Alert = { ...long, id: 'run-1:rebalance.applied:short', service: 'short' };
    const sink = createPubSubAlertSink({ topic: name, ...quick });
    try {
      await sink.publish([alertMessage(long), alertMessage(short)]);
    } finally {
      await sink.close();
    }
    const sent = emulator.published(name);
    expect(sent.map((m) => (JSON.parse(m.data ?? '') as Alert).id)).toEqual([long.id, short.id]);
    expect(JSON.parse(sent[0]?.data ?? '')).toEqual(long);
    expect(sent[0]?.attributes['service']).toMatch(/^svc-s+…$/);
    // One pool, one ordering key: the second message stays behind the first.
    expect(sent[1]?.orderingKey).toBe(sent[0]?.orderingKey);
  });

  it('rejects a bad topic in the fleet file, naming it', async () => {
    await expect(
      startEmulator({ fleet: { ...testFleet(), topics: ['projects/p/topics/goog-x'] } }),
    ).rejects.toThrow(/topics\[0\]: the topic id must not start with "goog"/);
  });
});
