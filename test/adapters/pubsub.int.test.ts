/**
 * The Pub/Sub alert sink against the real Pub/Sub emulator, started here (a failure to start it
 * fails the tests). Each test uses its own topic; the clients find the emulator through
 * PUBSUB_EMULATOR_HOST.
 */
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

import { PubSub } from '@google-cloud/pubsub';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { createPubSubAlertSink, PublishError } from '../../src/adapters/pubsub.js';
import type { OutgoingMessage } from '../../src/ports/index.js';
import type { PubSubAlertSink } from '../../src/adapters/pubsub.js';
import { InputError } from '../../src/core/errors.js';
import { startPubSubEmulator } from '../support/pubsub-emulator.js';
import { sharedPubSubEmulator, type SharedEmulator } from '../support/shared-emulators.js';
import type { RunningEmulator } from '../support/java-emulator.js';
import { waitUntil } from '../support/wait.js';

const projectId = 'governor-test';
const keyA = 'p/us-central1/nvidia-l4/zonal';
const keyB = 'p/europe-west4/nvidia-l4/non-zonal';
/** Retries short enough for tests, still more than one attempt. */
const quick = { maxAttempts: 2, minBackoffMs: 50, maxBackoffMs: 100, attemptTimeoutMs: 3_000 };

let emulator: SharedEmulator;
let admin: PubSub;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  emulator = await sharedPubSubEmulator(projectId);
  vi.stubEnv('PUBSUB_EMULATOR_HOST', emulator.endpoint);
  admin = new PubSub({ projectId });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await admin?.close();
  vi.unstubAllEnvs();
});

let topicCount = 0;
function topicName(): string {
  topicCount += 1;
  return `alerts-${topicCount}`;
}

function sink(topic: string, options: Partial<typeof quick> = {}): PubSubAlertSink {
  const s = createPubSubAlertSink({ topic: `projects/${projectId}/topics/${topic}`, ...options });
  cleanups.push(() => s.close());
  return s;
}

/** A topic with an ordered subscription, both created on the emulator `client` speaks to. */
async function orderedTopic(client: PubSub = admin): Promise<{ name: string; sub: Subscription }> {
  const name = topicName();
  const [topic] = await client.createTopic(name);
  const [sub] = await topic.createSubscription(`${name}-sub`, { enableMessageOrdering: true });
  return { name, sub };
}

function alert(key: string, seq: number): OutgoingMessage {
  const region = key === keyA ? 'us-central1' : 'europe-west4';
  return {
    data: {
      version: 1,
      id: `${key}#${seq}`,
      type: 'pool.pressure',
      status: 'firing',
      severity: 'WARNING',
      project: 'p',
      region,
      accelerator: 'nvidia-l4',
      zonalRedundancy: key === keyA,
      service: null,
      summary: `pressure ${seq}`,
      details: { seq, ratio: seq / 10, tags: ['a', 'é', '☃'] },
      time: '2026-11-27T10:00:00Z',
    },
    attributes: {
      type: 'pool.pressure',
      severity: 'WARNING',
      status: 'firing',
      project: 'p',
      region,
      seq: String(seq),
    },
    orderingKey: key,
  };
}

interface Received {
  id: string;
  data: unknown;
  attributes: Record<string, string>;
  orderingKey: string;
}

/**
 * Everything the subscription delivers until `count` messages have come, then a quiet period of
 * `quietMs` (an extra or duplicate message would arrive in it; absence cannot be polled for),
 * acknowledging each.
 */
async function receive(sub: Subscription, count: number, quietMs = 1_000): Promise<Received[]> {
  const received: Received[] = [];
  const onMessage = (m: Message): void => {
    received.push({
      id: m.id,
      data: JSON.parse(m.data.toString('utf8')),
      attributes: { ...m.attributes },
      orderingKey: m.orderingKey ?? '',
    });
    m.ack();
  };
  const errors: unknown[] = [];
  sub.on('message', onMessage);
  sub.on('error', (e: unknown) => errors.push(e));
  try {
    await waitUntil(
      `${count} message(s) or a subscription error`,
      () => [received.length, errors.length] as const,
      ([n, failed]) => n >= count || failed > 0,
    );
    await new Promise((r) => setTimeout(r, quietMs));
  } finally {
    sub.removeListener('message', onMessage);
    await sub.close();
  }
  expect(errors).toEqual([]);
  return received;
}

function stripId({ data, attributes, orderingKey }: Received | OutgoingMessage): unknown {
  return { data, attributes, orderingKey };
}

function ofKey<T extends { orderingKey: string }>(items: readonly T[], key: string): T[] {
  return items.filter((i) => i.orderingKey === key);
}

describe('createPubSubAlertSink against the Pub/Sub emulator', () => {
  it('delivers exactly the messages published, in order within each ordering key', async () => {
    const { name, sub } = await orderedTopic();
    const alerts = sink(name);
    const first = [1, 2, 3, 4, 5, 6].map((seq) => alert(seq % 2 ? keyA : keyB, seq));
    const second = [7, 8, 9, 10, 11].map((seq) => alert(seq % 3 ? keyB : keyA, seq));

    const results = [...(await alerts.publish(first)), ...(await alerts.publish(second))];
    const sent = [...first, ...second];

    expect(results.map((r) => r.orderingKey)).toEqual(sent.map((m) => m.orderingKey));
    expect(new Set(results.map((r) => r.messageId)).size).toBe(sent.length);

    const received = await receive(sub, sent.length);
    expect(received).toHaveLength(sent.length);
    expect(received.map((r) => r.id).sort()).toEqual(results.map((r) => r.messageId).sort());
    for (const key of [keyA, keyB]) {
      expect(ofKey(received, key).map(stripId)).toEqual(ofKey(sent, key).map(stripId));
    }
  });

  it('resolves at once with nothing to publish', async () => {
    await expect(sink(topicName()).publish([])).resolves.toEqual([]);
  });

  it('rejects with a PublishError, without retrying, when the topic does not exist', async () => {
    const alerts = sink('no-such-topic', {
      ...quick,
      maxAttempts: 4,
      minBackoffMs: 1_000,
      maxBackoffMs: 2_000,
    });
    const error: unknown = await alerts.publish([alert(keyA, 1), alert(keyB, 2)]).catch((e) => e);

    expect(error).toBeInstanceOf(PublishError);
    const e = error as PublishError;
    expect(e.published).toBe(0);
    expect(e.notPublished).toBe(2);
    expect(e.results).toEqual([undefined, undefined]);
    // One attempt per key of the four allowed: NOT_FOUND is not worth a retry.
    expect(e.failures.map((f) => [f.orderingKey, f.attempts]).sort()).toEqual([
      [keyB, 1],
      [keyA, 1],
    ]);
    expect(e.message).toMatch(/Published 0 of 2 message\(s\) to projects\/governor-test\/topics/);
    expect(e.message).toMatch(/NOT_FOUND/);
    expect(e.cause).toBeInstanceOf(AggregateError);
  });

  it('says once why many ordering keys failed alike, on a line of bounded length', async () => {
    // A topic deleted mid-run: every pool's key fails the same way.
    const keys = Array.from({ length: 60 }, (_, i) => `p/us-central1/nvidia-l4/pool-${i}`);
    const error: unknown = await sink('no-such-topic-either', quick)
      .publish(keys.map((key, i) => ({ ...alert(keyA, i), orderingKey: key })))
      .catch((e) => e);
    expect(error).toBeInstanceOf(PublishError);
    const e = error as PublishError;
    expect(e.failures).toHaveLength(60);
    expect(e.message).toMatch(/^Published 0 of 60 message\(s\) to projects\/governor-test\/topics/);
    expect(e.message).toMatch(
      /60 ordering keys \("p\/us-central1\/nvidia-l4\/pool-\d+", .*and 57 more\)/,
    );
    expect(e.message.match(/NOT_FOUND/g)).toHaveLength(1);
    expect(e.message.length).toBeLessThan(1_000);
  });

  it('publishes again on a key after a failure on it', async () => {
    const name = topicName();
    const alerts = sink(name, quick);
    await expect(alerts.publish([alert(keyA, 1)])).rejects.toBeInstanceOf(PublishError);

    const [topic] = await admin.createTopic(name);
    const [sub] = await topic.createSubscription(`${name}-sub`, { enableMessageOrdering: true });
    const messages = [alert(keyA, 2), alert(keyA, 3)];
    await expect(alerts.publish(messages)).resolves.toHaveLength(2);
    expect((await receive(sub, 2)).map(stripId)).toEqual(messages.map(stripId));
  });

  it('rejects bad input before publishing anything', async () => {
    const { name, sub } = await orderedTopic();
    const alerts = sink(name);
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const bad = [
      alert(keyA, 1),
      { ...alert(keyA, 2), orderingKey: '' },
      { ...alert(keyB, 3), data: circular },
      { ...alert(keyB, 4), data: undefined },
    ];

    const error: unknown = await alerts.publish(bad).catch((e) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).faults.map((f) => f.path)).toEqual([
      'messages[1].orderingKey',
      'messages[2].data',
      'messages[3].data',
    ]);
    expect(await receive(sub, 0, 500)).toEqual([]);
  });

  it('refuses a topic that is not a full topic name, and a retry policy that makes no sense', () => {
    expect(() => createPubSubAlertSink({ topic: 'alerts' })).toThrow(InputError);
    expect(() =>
      createPubSubAlertSink({ topic: 'projects/p/topics/t', maxAttempts: 0, minBackoffMs: -1 }),
    ).toThrow(/maxAttempts[\s\S]*minBackoffMs/);
  });
});

describe('createPubSubAlertSink when the emulator goes away', () => {
  let own: RunningEmulator | undefined;
  let client: PubSub | undefined;
  let proxy: Proxy | undefined;

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await client?.close();
    await own?.stop();
    await proxy?.close();
    [client, own, proxy] = [undefined, undefined, undefined];
    vi.stubEnv('PUBSUB_EMULATOR_HOST', emulator.endpoint);
  });

  it('rejects after the bounded retries instead of hanging', async () => {
    own = await startPubSubEmulator();
    vi.stubEnv('PUBSUB_EMULATOR_HOST', own.endpoint);
    client = new PubSub({ projectId });
    const { name } = await orderedTopic(client);
    const alerts = sink(name, quick);
    await expect(alerts.publish([alert(keyA, 1), alert(keyB, 2)])).resolves.toHaveLength(2);

    await own.stop();
    const error: unknown = await alerts.publish([alert(keyA, 3), alert(keyA, 4)]).catch((e) => e);

    expect(error).toBeInstanceOf(PublishError);
    const e = error as PublishError;
    expect([e.published, e.notPublished]).toEqual([0, 2]);
    // Exactly the allowed attempts, each ended by its deadline or a refused connection.
    expect(e.failures).toMatchObject([{ orderingKey: keyA, attempts: quick.maxAttempts }]);
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(
      (e.cause as { code?: number }).code,
    );
    expect(e.message).toMatch(/Published 0 of 2 message\(s\).*failed after 2 attempt\(s\)/);
  });

  it('recovers when the connection comes back while it retries, keeping the order', async () => {
    // The sink reaches the emulator through a TCP proxy that can cut the connection, so the
    // emulator (and its topic) outlives the outage.
    proxy = await startProxy(emulator.port);
    vi.stubEnv('PUBSUB_EMULATOR_HOST', `127.0.0.1:${proxy.port}`);
    const { name, sub } = await orderedTopic();
    const alerts = sink(name, { maxAttempts: 10, minBackoffMs: 200, maxBackoffMs: 1_000 });
    const before = [alert(keyA, 1)];
    await alerts.publish(before);

    proxy.cut();
    const messages = [alert(keyA, 2), alert(keyB, 3), alert(keyA, 4), alert(keyA, 5)];
    const publishing = alerts.publish(messages);
    // The sink does try while the connection is down.
    await waitUntil(
      'a refused connection',
      () => proxy?.refused ?? 0,
      (n) => n > 0,
    );
    proxy.restore();

    const results = await publishing;
    expect(results.map((r) => r.orderingKey)).toEqual(messages.map((m) => m.orderingKey));
    const sent = [...before, ...messages];
    const received = await receive(sub, sent.length);
    expect(received).toHaveLength(sent.length);
    for (const key of [keyA, keyB]) {
      expect(ofKey(received, key).map(stripId)).toEqual(ofKey(sent, key).map(stripId));
    }
  });
});

interface Proxy {
  port: number;
  /** Connections refused while cut. */
  refused: number;
  /** Drops every open connection and refuses new ones. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 to `targetPort` whose link can be cut and restored. */
async function startProxy(targetPort: number): Promise<Proxy> {
  const open = new Set<Socket>();
  let down = false;
  const track = (socket: Socket): void => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((inbound) => {
    if (down) {
      proxy.refused += 1;
      inbound.destroy();
      return;
    }
    const outbound = connect({ host: '127.0.0.1', port: targetPort });
    track(inbound);
    track(outbound);
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('proxy has no port');
  const proxy: Proxy = {
    port: address.port,
    refused: 0,
    cut: () => {
      down = true;
      for (const socket of open) socket.destroy();
    },
    restore: () => {
      down = false;
    },
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
  return proxy;
}
