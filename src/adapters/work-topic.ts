import { PubSub } from '@google-cloud/pubsub';
import pLimit from 'p-limit';
import { InputError } from '../core/errors.js';
import type { WorkPublisher } from '../ports/index.js';
import { closePubSub } from './pubsub.js';

/**
 * The fan-out's work topic on Pub/Sub: one message per unit. The client batches publishes; at
 * most `concurrency` are in flight. Each publish keeps the client's own retry settings (a
 * dispatch is a short run of its own, with nothing queued behind a failed message); a message
 * that still fails is reported, and the dispatch says so (the next dispatch sends it again).
 */
export function createWorkPublisher(options: {
  topic: string;
  emulatorHost?: string | null;
  concurrency?: number;
}): WorkPublisher {
  const m = /^projects\/([^/]+)\/topics\/([^/]+)$/.exec(options.topic);
  if (!m) {
    throw new InputError('Invalid Pub/Sub topic', [
      {
        path: 'fanout.topic',
        message: `must read projects/PROJECT/topics/TOPIC, not "${options.topic}"`,
      },
    ]);
  }
  const pubsub = new PubSub({
    projectId: m[1],
    ...(options.emulatorHost
      ? { apiEndpoint: options.emulatorHost, emulatorMode: true, universeDomain: 'googleapis.com' }
      : {}),
  });
  const topic = pubsub.topic(options.topic, {
    batching: { maxMessages: 100, maxMilliseconds: 10 },
  });
  const limit = pLimit(options.concurrency ?? 200);
  return {
    topic: options.topic,
    async publish(messages) {
      const results = await Promise.allSettled(
        messages.map((msg) =>
          limit(() =>
            topic.publishMessage({ data: Buffer.from(msg.data), attributes: msg.attributes }),
          ),
        ),
      );
      const failed: { index: number; error: string }[] = [];
      results.forEach((r, index) => {
        if (r.status === 'rejected') {
          failed.push({
            index,
            error: r.reason instanceof Error ? r.reason.message : String(r.reason),
          });
        }
      });
      return { failed };
    },
    // Every client it opened, whatever a later change calls through it (pubsub.ts closePubSub).
    close: () => closePubSub(pubsub),
  };
}
