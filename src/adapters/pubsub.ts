/**
 * The alert sink's Google implementation: a Pub/Sub topic (the port is src/ports/alerts.ts).
 *
 * Each alert is one message (JSON `data`, string `attributes`, one ordering key per pool). A call
 * to `publish` settles only once the server has acknowledged every message, or once it is sure
 * some were not: an alert never vanishes silently.
 *
 * Emulator mode: given `emulatorHost` (PUBSUB_EMULATOR_HOST), the client connects there without
 * credentials.
 */
import { PubSub } from '@google-cloud/pubsub';
import { GoogleAuth } from 'google-auth-library';
import type { Topic } from '@google-cloud/pubsub';
import pLimit from 'p-limit';
import pRetry from 'p-retry';
import { status } from '@grpc/grpc-js';

import { groupBy } from '../core/collections.js';
import { compareText } from '../core/pool.js';
import { oneLine } from '../core/text.js';
import { CredentialsError, cutText, InputError, errorMessage } from '../core/errors.js';
import type { Fault } from '../core/errors.js';
import { openStubs } from './client-config.js';
import { translateGrpcError } from './grpc-errors.js';
import {
  checkRetryPolicy,
  defaultRetryPolicy,
  definedOnly,
  grpcCode,
  grpcCodeName,
  isTransient,
} from './retry.js';
import type { RetryPolicy } from './retry.js';
import {
  PartialPublishError,
  type AlertSink,
  type OutgoingMessage,
  type PublishResult,
} from '../ports/index.js';

/** An {@link AlertSink} holding a Pub/Sub client, to be closed once no longer needed. */
export interface PubSubAlertSink extends AlertSink {
  canPublish: NonNullable<AlertSink['canPublish']>;
  /** The full topic name, `projects/P/topics/T`. */
  readonly topic: string;
  /** Releases the client's connections. Publishing afterwards fails. */
  close(): Promise<void>;
}

export interface PubSubAlertSinkOptions extends Partial<RetryPolicy> {
  /** The full topic name, `projects/P/topics/T`. */
  topic: string;
  /** Defaults to the project of `topic`. */
  projectId?: string;
  /** `HOST:PORT` of a Pub/Sub emulator; absent or null: Google. */
  emulatorHost?: string | null;
}

/** Why one ordering key's messages were not all published. */
interface KeyFailure {
  orderingKey: string;
  attempts: number;
  /** The error of the last attempt. */
  error: unknown;
}

/** Some messages were not acknowledged by Pub/Sub, even after the retries. */
export class PublishError extends PartialPublishError {
  readonly topic: string;
  readonly published: number;
  readonly notPublished: number;
  readonly failures: readonly KeyFailure[];

  constructor(
    topic: string,
    results: readonly (PublishResult | undefined)[],
    failures: readonly KeyFailure[],
  ) {
    const published = results.filter((r) => r !== undefined).length;
    const notPublished = results.length - published;
    super(
      `Published ${published} of ${results.length} message(s) to ${topic}; ` +
        `${notPublished} not published (${failureText(failures)})`,
      results,
      {
        cause:
          failures.length === 1
            ? failures[0]?.error
            : new AggregateError(
                failures.map((f) => f.error),
                `${failures.length} ordering keys failed`,
              ),
      },
    );
    this.topic = topic;
    this.published = published;
    this.notPublished = notPublished;
    this.failures = failures;
  }
}

/** Distinct reasons, and keys per reason, a PublishError's message names at most. */
const REASONS_SHOWN = 3;
const KEYS_SHOWN = 3;
/** Characters of one reason a PublishError's message keeps. */
const REASON_CHARS = 300;

/**
 * Why keys failed, on one line of bounded length: the keys that failed alike (the same attempts
 * and error) share one reason, named once with the first few keys, so a topic deleted mid-run
 * reads as one NOT_FOUND however many pools there are, not one per pool.
 */
function failureText(failures: readonly KeyFailure[]): string {
  const byReason = new Map<string, string[]>();
  for (const f of failures) {
    const why = `after ${f.attempts} attempt(s): ${cutText(oneLine(describe(f.error)), REASON_CHARS)}`;
    byReason.set(why, [...(byReason.get(why) ?? []), f.orderingKey]);
  }
  const groups = [...byReason].map(([why, keys]) => ({ why, keys: keys.sort(compareText) }));
  groups.sort((a, b) => b.keys.length - a.keys.length || compareText(a.why, b.why));
  const shown = groups.slice(0, REASONS_SHOWN).map(({ why, keys }) => {
    const named = keys
      .slice(0, KEYS_SHOWN)
      .map((k) => `"${cutText(k, 200)}"`)
      .join(', ');
    const more = keys.length > KEYS_SHOWN ? ` and ${keys.length - KEYS_SHOWN} more` : '';
    return keys.length === 1
      ? `ordering key ${named} failed ${why}`
      : `${keys.length} ordering keys (${named}${more}) failed ${why}`;
  });
  const rest = groups.slice(REASONS_SHOWN).reduce((n, g) => n + g.keys.length, 0);
  return `${shown.join('; ')}${rest > 0 ? `; ${rest} more ordering key(s) failed for other reasons` : ''}`;
}

const topicName = /^projects\/([^/]+)\/topics\/([^/]+)$/;

/**
 * Creates the Pub/Sub alert sink.
 *
 * Retries: p-retry around each ordering key's messages, and none inside the client (its gax
 * retry settings are turned off; each RPC only gets a deadline, `attemptTimeoutMs`). Why here:
 * the client's own default for Publish retries for up to 600 s, a silent hang for a reconcile run;
 * once it gives up on a key, every message queued behind on that key is rejected too and the key
 * is paused until `resumePublishing(key)`, which only our code can call before resending. One
 * layer also keeps the worst case plain: `maxAttempts` RPCs, separated by backoff from
 * `minBackoffMs` doubling up to `maxBackoffMs` (times a random 1-2 jitter). Only transient gRPC
 * codes are retried (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...); NOT_FOUND,
 * PERMISSION_DENIED, INVALID_ARGUMENT fail at once. A retry resends only the messages not yet
 * acknowledged, in their order, so a key never goes out of order; a message whose
 * acknowledgement was lost (a deadline hit after the server took it) can arrive twice, which is
 * why alerts carry an `id` (delivery is at least once, as with Pub/Sub itself).
 */
export function createPubSubAlertSink(options: PubSubAlertSinkOptions): PubSubAlertSink {
  const { topic: name, projectId, emulatorHost, ...retryOverrides } = options;
  const match = topicName.exec(name);
  if (!match) {
    throw new InputError('Invalid Pub/Sub topic', [
      { path: 'topic', message: `must read projects/PROJECT/topics/TOPIC, not "${name}"` },
    ]);
  }
  const policy = checkRetryPolicy({ ...defaultRetryPolicy, ...definedOnly(retryOverrides) });
  // Against an emulator, say so outright and name the universe: google-gax then takes the
  // universe from the options instead of asking google-auth-library, which would look for
  // credentials and the metadata server (a warning on every run without credentials) although
  // the emulator needs none.
  const pubsub = new PubSub({
    projectId: projectId ?? match[1],
    ...(emulatorHost
      ? { apiEndpoint: emulatorHost, emulatorMode: true, universeDomain: 'googleapis.com' }
      : {}),
  });
  const topic = pubsub.topic(name, {
    messageOrdering: true,
    gaxOpts: { retry: null, timeout: policy.attemptTimeoutMs },
  });
  // One publish call at a time: were two calls to interleave, the retry of the first could land
  // after the second's messages on the same key.
  const exclusive = pLimit(1);

  // Without an emulator the client needs Application Default Credentials. Look for them first,
  // once: the client's IAM helper prints a missing-credentials error with its stack trace to the
  // console (google-gax's `initialize().catch(console.error)`) before rejecting.
  // The library's own decision: an emulator named here, or its PUBSUB_EMULATOR_HOST.
  const emulated = pubsub.isEmulator;
  let credentials: Promise<void> | undefined;
  const credentialsReady = (): Promise<void> =>
    emulated
      ? Promise.resolve()
      : (credentials ??= new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/pubsub'] })
          .getClient()
          .then(
            () => undefined,
            (error: unknown) => {
              throw (
                asCredentialsError(error, name) ??
                translateGrpcError(error, 'finding Google credentials')
              );
            },
          ));

  return {
    topic: name,
    publish: (messages) =>
      exclusive(async () => {
        await credentialsReady();
        return publishAll(topic, policy, messages);
      }),
    canPublish: async () => {
      await credentialsReady();
      const opts = { retry: null, timeout: policy.attemptTimeoutMs };
      try {
        const [granted] = await topic.iam.testPermissions([PUBLISH], opts);
        return granted[PUBLISH] === true;
      } catch (error) {
        const credentials = asCredentialsError(error, name);
        if (credentials) throw credentials;
        if (grpcCode(error) !== status.UNIMPLEMENTED) {
          throw translateGrpcError(error, `testing ${PUBLISH} on ${name}`);
        }
      }
      // Google's Pub/Sub emulator serves no IAM (UNIMPLEMENTED, cloud-pubsub-emulator 0.8.20)
      // and checks no permission: there, the topic's existence (GetTopic) is what can fail.
      try {
        const [exists] = await topic.exists();
        return exists;
      } catch (error) {
        throw translateGrpcError(error, `reading topic ${name}`);
      }
    },
    close: () => closePubSub(pubsub),
  };
}

/**
 * Closes the client and every gRPC channel it opened. A generated client of @google-cloud/pubsub
 * (5.x) closes its IAM helper's channel only when its own stub was opened (v1 SubscriberClient and
 * PublisherClient `close()`: `if (this.subscriberStub && !this._terminated) { ...
 * this.iamClient.close() }`), and `topic.iam.testPermissions` (canPublish) goes through the
 * SubscriberClient's IAM helper alone, never opening the SubscriberClient's stub: its channel
 * stayed open, one per run. grpc-js holds an open channel, its resolver and timers until 30
 * minutes of idleness (its idle timer), and its channelz record until it is closed: a warm
 * function instance, which serves a run every 5 minutes for hours, grew run after run
 * (docs/performance.md, "A warm instance over days"). Opening each client's stub first
 * (`initialize()`, the clients' public way to do so; a channel connects only when called) makes
 * the library's close reach the IAM helper too.
 */
export async function closePubSub(pubsub: PubSub): Promise<void> {
  // A client that cannot open its stub (no credentials) opened no channel either: its failure
  // is not the close's, and the close goes on (client-config.ts openStubs).
  await openStubs(Object.values(pubsub.api) as { initialize?: () => Promise<unknown> }[]);
  await pubsub.close();
}

const PUBLISH = 'pubsub.topics.publish';

/**
 * google-auth-library's "Could not load the default credentials" (no ADC and no
 * PUBSUB_EMULATOR_HOST), as one line that says what to do; null for any other error.
 */
function asCredentialsError(error: unknown, topic: string): CredentialsError | null {
  if (!(error instanceof Error) || !/Could not load the default credentials/.test(error.message))
    return null;
  return new CredentialsError(
    `no Google credentials to publish to ${topic}: run \`gcloud auth application-default login\`, or set PUBSUB_EMULATOR_HOST to a Pub/Sub emulator (\`governor emulator\` prints it)`,
    { cause: error },
  );
}

interface Encoded {
  slot: number;
  message: { data: Buffer; attributes: Record<string, string>; orderingKey: string };
}

async function publishAll(
  topic: Topic,
  policy: RetryPolicy,
  messages: readonly OutgoingMessage[],
): Promise<PublishResult[]> {
  const byKey = groupBy(encode(messages), (e) => e.message.orderingKey);
  const results: (PublishResult | undefined)[] = messages.map(() => undefined);
  const failures: KeyFailure[] = [];

  // Keys are independent: one pool's trouble must not hold back another pool's alerts.
  await Promise.all(
    [...byKey].map(async ([orderingKey, items]) => {
      let attempts = 0;
      try {
        await pRetry(
          async () => {
            attempts += 1;
            // The client's contract: a failed publish pauses its key, failing what is queued
            // and later publishes on it, until resumed
            // (https://cloud.google.com/pubsub/docs/samples/pubsub-resume-publish-with-ordering-keys).
            // (The 5.x client drops a queue once emptied, pause included, but that is not promised.)
            topic.resumePublishing(orderingKey);
            const pending = items.filter((item) => results[item.slot] === undefined);
            const outcomes = await Promise.allSettled(
              pending.map(async ({ slot, message }) => {
                results[slot] = { messageId: await topic.publishMessage(message), orderingKey };
              }),
            );
            const failed = outcomes.find((o) => o.status === 'rejected');
            if (failed) throw asError(failed.reason);
          },
          {
            retries: policy.maxAttempts - 1,
            factor: 2,
            minTimeout: policy.minBackoffMs,
            maxTimeout: policy.maxBackoffMs,
            randomize: true,
            shouldRetry: ({ error }) => isTransient(error),
          },
        );
      } catch (error) {
        failures.push({ orderingKey, attempts, error });
      }
    }),
  );

  if (failures.length > 0) throw new PublishError(topic.name, results, failures);
  return results.map((r, slot) => {
    if (r === undefined) throw new Error(`bug: message ${slot} neither published nor failed`);
    return r;
  });
}

/** Serialises every message first, so a bad one is reported before anything is sent. */
function encode(messages: readonly OutgoingMessage[]): Encoded[] {
  const faults: Fault[] = [];
  const encoded: Encoded[] = [];
  messages.forEach(({ data, attributes, orderingKey }, slot) => {
    if (orderingKey === '') {
      faults.push({ path: `messages[${slot}].orderingKey`, message: 'must not be empty' });
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(data);
    } catch (error) {
      faults.push({ path: `messages[${slot}].data`, message: `is not JSON: ${describe(error)}` });
      return;
    }
    if (json === undefined) {
      faults.push({ path: `messages[${slot}].data`, message: 'has no JSON form' });
      return;
    }
    encoded.push({ slot, message: { data: Buffer.from(json, 'utf8'), attributes, orderingKey } });
  });
  if (faults.length > 0) throw new InputError('Invalid alert messages', faults);
  return encoded;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

function describe(error: unknown): string {
  const code = grpcCodeName(grpcCode(error));
  const message = errorMessage(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
