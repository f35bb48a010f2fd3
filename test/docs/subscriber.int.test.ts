import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { alertsDocJsonBlocks as jsonBlocks } from '../support/alerts-doc.js';

/**
 * docs/alerts.md shows a subscriber: the Slack relay must post the page's sample message
 * (alerts-doc.test.ts checks the sample is one the governor could send). The relay is plain JavaScript run as it is deployed;
 * the webhook is a local HTTP server.
 */

interface Relay {
  relay(
    event: unknown,
    env: Record<string, string | undefined>,
    post?: typeof fetch,
  ): Promise<string>;
}

function cloudEvent(data: unknown, attributes: Record<string, string>) {
  return {
    specversion: '1.0',
    type: 'google.cloud.pubsub.topic.v1.messagePublished',
    data: {
      message: {
        data: Buffer.from(JSON.stringify(data)).toString('base64'),
        attributes,
        messageId: '1',
      },
      subscription: 'projects/p/subscriptions/s',
    },
  };
}

describe('docs/alerts.md', () => {
  it('relays the sample to a Slack webhook, and leaves INFO events out', async () => {
    const [data, attributes] = await jsonBlocks();
    const posts: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        posts.push({
          method: req.method,
          type: req.headers['content-type'],
          body: JSON.parse(body),
        });
        res.writeHead(posts.length > 1 ? 500 : 200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const env = { SLACK_WEBHOOK_URL: `http://127.0.0.1:${port}/services/T/B/x` };
      const { relay } = (await import(
        '../../examples/subscribers/slack-relay/index.js' as string
      )) as Relay;
      const event = cloudEvent(data, attributes as Record<string, string>);
      expect(await relay(event, env)).toBe('posted');
      expect(posts).toEqual([
        {
          method: 'POST',
          type: 'application/json',
          body: {
            text: ':warning: *service.starved* firing in demo-gpu-project/us-central1/llm-chat: llm-chat gets 2 instances, short of its demand of 3',
          },
        },
      ]);
      const info = { ...(data as object), severity: 'INFO', type: 'rebalance.applied' };
      expect(await relay(cloudEvent(info, {}), env)).toBe('skipped');
      // A failing webhook fails the invocation, so it shows in the function's errors.
      await expect(relay(event, env)).rejects.toThrow(/Slack answered 500/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
