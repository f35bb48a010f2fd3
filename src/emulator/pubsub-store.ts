import { status } from '@grpc/grpc-js';
import { compareText } from '../core/pool.js';
import { topicNameFault } from '../core/units.js';
import { BoundedLog } from './bounded-log.js';
import { invalid, RpcError, shown } from './rpc.js';

/**
 * The emulator's Pub/Sub state: topics and every message published to them, with the topic name
 * rules the fleet file and the publisher API (pubsub-api.ts, which documents each rule's source)
 * share with the policy (core/units.ts topicNameFault).
 */

/** Pub/Sub's resource limits (https://cloud.google.com/pubsub/quotas#resource_limits). */
export const PUBSUB_LIMITS = {
  requestBytes: 10_000_000,
  messagesPerRequest: 1000,
  attributesPerMessage: 100,
  attributeKeyBytes: 256,
  attributeValueBytes: 1024,
  orderingKeyBytes: 1024,
} as const;

/** One message as published and recorded. */
export interface PublishedMessage {
  readonly seq: number;
  /** `projects/P/topics/T`. */
  readonly topic: string;
  /** Assigned by the emulator, unique within it (decimal digits, as Pub/Sub's). */
  readonly messageId: string;
  /** The data as UTF-8 text, or null when it is not valid UTF-8 (then see `dataBase64`). */
  readonly data: string | null;
  readonly dataBase64: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Empty when none. */
  readonly orderingKey: string;
  /** Virtual time of the publish (ISO), as the message's `publish_time`. */
  readonly publishTime: string;
  readonly wallTime: string;
}

export interface TopicRecord {
  readonly name: string;
  readonly labels: Record<string, string>;
}

/** The most published messages kept: older ones are dropped first. */
export const MAX_KEPT_MESSAGES = 100_000;
/** The most characters of published data (text and base64) kept: older messages are dropped first. */
export const MAX_KEPT_CHARS = 256 << 20;

/**
 * Topics, and the messages published to them. The messages kept are bounded (the newest
 * `maxMessages`, within `maxChars` of data as text and base64): a publish carries up to 10 MB, so
 * an unbounded list filled the emulator's memory after a hundred or so. Dropped messages are
 * counted; the newest message is always kept (a BoundedLog, as the call log is).
 */
export class PubSubStore {
  private readonly topics = new Map<string, TopicRecord>();
  private readonly messages: BoundedLog<PublishedMessage>;
  private readonly listeners: ((message: PublishedMessage) => void)[] = [];
  private nextId = 1;

  constructor(maxMessages = MAX_KEPT_MESSAGES, maxChars = MAX_KEPT_CHARS) {
    this.messages = new BoundedLog(maxMessages, maxChars);
  }

  /** Messages dropped (oldest first) to stay within the bounds. */
  get dropped(): number {
    return this.messages.dropped;
  }

  /** Creates a topic (from the fleet file, or a CreateTopic call); throws RpcError like Pub/Sub. */
  createTopic(name: string, labels: Record<string, string> = {}): TopicRecord {
    checkTopicName(name);
    if (this.topics.has(name)) {
      throw new RpcError(
        status.ALREADY_EXISTS,
        `Resource already exists in the project (resource=${shown(topicId(name))}).`,
      );
    }
    const topic = { name, labels: { ...labels } };
    this.topics.set(name, topic);
    return topic;
  }

  getTopic(name: string): TopicRecord {
    checkTopicName(name);
    const topic = this.topics.get(name);
    if (!topic) {
      throw new RpcError(
        status.NOT_FOUND,
        `Resource not found (resource=${shown(topicId(name))}).`,
      );
    }
    return topic;
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  topicsOf(project: string): TopicRecord[] {
    return [...this.topics.values()]
      .filter((t) => t.name.startsWith(`projects/${project}/topics/`))
      .sort((a, b) => compareText(a.name, b.name));
  }

  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  record(message: Omit<PublishedMessage, 'seq' | 'messageId'>): PublishedMessage {
    // Numbered from 1 in publish order; with drops, the first kept is no longer 1.
    const id = this.nextId++;
    const recorded = { seq: id, messageId: String(id), ...message };
    this.messages.add(recorded, (recorded.data?.length ?? 0) + recorded.dataBase64.length);
    for (const listener of this.listeners) listener(recorded);
    return recorded;
  }

  /** The messages kept (see the class), oldest first; only `topic`'s when given. */
  published(topic?: string): PublishedMessage[] {
    const all = this.messages.list();
    return topic === undefined ? all : all.filter((m) => m.topic === topic);
  }

  /** Calls `listener` with each message once it is published. */
  onPublish(listener: (message: PublishedMessage) => void): void {
    this.listeners.push(listener);
  }
}

function topicId(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

export function checkTopicName(name: string): void {
  if (topicNameFault(name) !== undefined)
    throw invalid(`Invalid [topics] name: (name=${shown(name)})`);
}
