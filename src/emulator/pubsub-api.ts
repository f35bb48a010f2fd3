import { isUtf8 } from 'node:buffer';
import { status } from '@grpc/grpc-js';
import type { EmulatorContext } from './context.js';
import {
  invalid,
  isMessage,
  listPaging,
  paginate,
  RpcError,
  stringMap,
  text,
  type Handlers,
  type Message,
  shown,
} from './rpc.js';
import { checkTopicName, PUBSUB_LIMITS, type TopicRecord } from './pubsub-store.js';

/**
 * Pub/Sub's publisher (`google.pubsub.v1.Publisher`): topics, and every message published to
 * them, recorded for the admin endpoint (`GET /published`) and the `governor emulator` terminal.
 * No subscriptions: for delivery, ordering and redelivery the tests use Google's own Pub/Sub
 * emulator.
 *
 * What is checked, as Pub/Sub does it (sources beside each rule):
 * - topic names: `Topic.name` in google/pubsub/v1/pubsub.proto (shipped in @google-cloud/pubsub):
 *   `projects/{project}/topics/{topic}`, `{topic}` starts with a letter, has only letters, digits,
 *   `-_.~+%`, is 3 to 255 characters long and does not start with `goog`. Wrong: INVALID_ARGUMENT
 *   `Invalid [topics] name: (name=...)`, the text of Google's own emulator.
 * - a missing topic: NOT_FOUND `Resource not found (resource=TOPIC).` (the text Pub/Sub answers,
 *   as reported in googleapis/google-cloud-node#1052 and googleapis/nodejs-pubsub#1269); creating
 *   one that exists: ALREADY_EXISTS `Resource already exists in the project (resource=TOPIC).`
 *   (GoogleCloudPlatform/nodejs-getting-started#351). Publishing never creates a topic.
 * - resource limits, https://cloud.google.com/pubsub/quotas#resource_limits: a publish request at
 *   most 10 MB (10,000,000 bytes; its size counted as on that page: the messages' data,
 *   attributes and ordering keys plus the topic name) and at most 1,000 messages; at most 100
 *   attributes per message; an attribute key at most 256 bytes and a value at most 1,024 bytes
 *   (counted in bytes of UTF-8, as Pub/Sub does: googleapis/java-pubsub#2312); an ordering key at
 *   most 1 KB (1,024 bytes). The error texts follow the ones Pub/Sub returns
 *   (googleapis/google-cloud-python#5898 for request_size, snowplow/enrich#485 for attributes).
 * - a message needs non-empty data or at least one attribute (`PubsubMessage` in the reference,
 *   https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage); INVALID_ARGUMENT
 *   `One or more messages in the publish request is empty. ...` (snowplow/snowbridge#34).
 * - all messages of one publish request share one ordering key, or none has one
 *   (`PubsubMessage.ordering_key` in pubsub.proto); otherwise FAILED_PRECONDITION, the code
 *   Pub/Sub answers (yoshidan/google-cloud-rust#226).
 */

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function tooLarge(value: number, what: string, max: number): RpcError {
  return invalid(
    `The value for ${value} is too large. You passed ${what} in the request, but the maximum value is ${max}.`,
  );
}

function attributeTooLong(key: string, part: 'key' | 'value', length: number, max: number) {
  const cutKey = key.length > 64 ? `${key.slice(0, 64)}...` : key;
  return invalid(
    `The attribute "${cutKey}" in the request has a ${part} that is too long. The length is ${length} bytes, but the maximum allowed is ${max}. Refer to https://cloud.google.com/pubsub/quotas for more information.`,
  );
}

interface Incoming {
  data: Buffer;
  attributes: Record<string, string>;
  orderingKey: string;
}

function decodeMessages(request: Message): Incoming[] {
  const raw = request['messages'];
  const list = Array.isArray(raw) ? raw : [];
  return list.map((m: unknown) => {
    const msg = isMessage(m) ? m : {};
    const data = msg['data'];
    return {
      data: Buffer.isBuffer(data) ? data : Buffer.alloc(0),
      attributes: stringMap(msg, 'attributes'),
      orderingKey: text(msg, 'ordering_key'),
    };
  });
}

/** Checks a publish request against Pub/Sub's limits (see the top of this file). */
function checkPublish(topic: string, messages: readonly Incoming[]): void {
  if (messages.length === 0) throw invalid('The request must contain at least one message.');
  if (messages.length > PUBSUB_LIMITS.messagesPerRequest) {
    throw tooLarge(messages.length, 'message_count', PUBSUB_LIMITS.messagesPerRequest);
  }
  let size = bytes(topic);
  for (const m of messages) {
    size += m.data.length + bytes(m.orderingKey);
    for (const [k, v] of Object.entries(m.attributes)) size += bytes(k) + bytes(v);
  }
  if (size > PUBSUB_LIMITS.requestBytes) {
    throw tooLarge(size, 'request_size', PUBSUB_LIMITS.requestBytes);
  }
  for (const m of messages) {
    const keys = Object.keys(m.attributes);
    if (m.data.length === 0 && keys.length === 0) {
      throw invalid(
        'One or more messages in the publish request is empty. Each message must contain either non-empty data, or at least one attribute.',
      );
    }
    if (keys.length > PUBSUB_LIMITS.attributesPerMessage) {
      throw invalid(
        `A message in the request has ${keys.length} attributes, but the maximum allowed is ${PUBSUB_LIMITS.attributesPerMessage}. Refer to https://cloud.google.com/pubsub/quotas for more information.`,
      );
    }
    for (const [k, v] of Object.entries(m.attributes)) {
      if (bytes(k) > PUBSUB_LIMITS.attributeKeyBytes) {
        throw attributeTooLong(k, 'key', bytes(k), PUBSUB_LIMITS.attributeKeyBytes);
      }
      if (bytes(v) > PUBSUB_LIMITS.attributeValueBytes) {
        throw attributeTooLong(k, 'value', bytes(v), PUBSUB_LIMITS.attributeValueBytes);
      }
    }
    if (bytes(m.orderingKey) > PUBSUB_LIMITS.orderingKeyBytes) {
      throw invalid(
        `The ordering key in the request is too long. The length is ${bytes(m.orderingKey)} bytes, but the maximum allowed is ${PUBSUB_LIMITS.orderingKeyBytes}. Refer to https://cloud.google.com/pubsub/quotas for more information.`,
      );
    }
  }
  const keys = new Set(messages.map((m) => m.orderingKey));
  if (keys.size > 1) {
    throw new RpcError(
      status.FAILED_PRECONDITION,
      'In a single publish request, all messages must have no ordering key or they must all have the same ordering key.',
    );
  }
}

function topicMessage(t: TopicRecord): Message {
  return { name: t.name, labels: t.labels, state: 'ACTIVE' };
}

export function publisherHandlers(ctx: EmulatorContext): Handlers {
  const store = ctx.pubsub;
  return {
    CreateTopic: (req) =>
      topicMessage(store.createTopic(text(req, 'name'), stringMap(req, 'labels'))),
    GetTopic: (req) => topicMessage(store.getTopic(text(req, 'topic'))),
    ListTopics: (req) => {
      const project = text(req, 'project');
      const match = /^projects\/([^/]+)$/.exec(project);
      if (!match?.[1]) throw invalid(`Invalid [projects] name: (name=${shown(project)})`);
      const { page, nextPageToken } = paginate(
        store.topicsOf(match[1]),
        listPaging(req, ctx, { project }, { defaultPageSize: 100 }),
      );
      return { topics: page.map(topicMessage), next_page_token: nextPageToken };
    },
    Publish: (req) => {
      const topic = text(req, 'topic');
      checkTopicName(topic);
      const messages = decodeMessages(req);
      checkPublish(topic, messages);
      store.getTopic(topic);
      const publishTime = ctx.nowIso();
      const wallTime = new Date(ctx.wallNow()).toISOString();
      const ids = messages.map(
        (m) =>
          store.record({
            topic,
            data: isUtf8(m.data) ? m.data.toString('utf8') : null,
            dataBase64: m.data.toString('base64'),
            attributes: m.attributes,
            orderingKey: m.orderingKey,
            publishTime,
            wallTime,
          }).messageId,
      );
      return { message_ids: ids };
    },
  };
}
