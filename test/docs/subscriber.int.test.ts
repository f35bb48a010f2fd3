import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Alert, alertAttributes } from '../../src/core/alert.js';
import { decideNotifications } from '../../src/core/notify.js';
import { orderingKey } from '../../src/core/run-alerts.js';

/**
 * docs/alerts.md shows a message and a subscriber: the message must be one the governor could
 * send, and the Slack relay must post it. The relay is plain JavaScript run as it is deployed;
 * the webhook is a local HTTP server.
 */

interface Relay {
  relay(
    event: unknown,
    env: Record<string, string | undefined>,
    post?: typeof fetch,
  ): Promise<string>;
}

async function jsonBlocks(): Promise<unknown[]> {
  const text = await readFile('docs/alerts.md', 'utf8');
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => JSON.parse(m[1] ?? '') as unknown,
  );
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
  it('shows a message the governor could send, with its attributes and ordering key', async () => {
    const [data, attributes] = await jsonBlocks();
    const alert = Alert.parse(data);
    expect(alertAttributes(alert)).toEqual(attributes);
    const doc = await readFile('docs/alerts.md', 'utf8');
    expect(doc).toContain(`ordering key is the pool, \`${orderingKey(alert)}\``);
    for (const type of Alert.shape.type.options) expect(doc).toContain(`| \`${type}\``);
    // An alert with no pool (about a project, or a regional unit's project alert) is ordered
    // by its project, and the page says so.
    const unit = { ...alert, region: 'us-east1', accelerator: null, zonalRedundancy: null };
    expect(orderingKey(unit)).toBe(alert.project);
    expect(doc).toMatch(/no pool[^.]*ordering key is its `project`/);
    // Ordering holds only within a region and on an ordered subscription: the page says so.
    expect(doc).toContain('(https://cloud.google.com/pubsub/docs/ordering)');
  });

  it('names the details every firing, re-notified and resolved message carries', async () => {
    const [data] = await jsonBlocks();
    const alert = Alert.parse(data);
    const base = { renotifyAfterMs: 0, scope: [alert.project], events: [] };
    const first = decideNotifications({
      ...base,
      previous: {},
      current: [alert],
      now: '2026-11-27T06:00:00Z',
      runId: 'r1',
    });
    const again = decideNotifications({
      ...base,
      previous: first.next,
      current: [alert],
      now: '2026-11-27T07:00:00Z',
      runId: 'r2',
    });
    const resolved = decideNotifications({
      ...base,
      previous: again.next,
      current: [],
      now: '2026-11-27T08:00:00Z',
      runId: 'r3',
    });
    const keys = (m: { details: object } | undefined, without: object) =>
      Object.keys(m?.details ?? {}).filter((k) => !(k in without));
    const added = [
      ...keys(first.publish[0], alert.details),
      ...keys(again.publish[0], alert.details),
      ...keys(resolved.publish[0], {}),
    ];
    expect(resolved.publish.map((m) => m.status)).toEqual(['resolved']);
    expect(added).toContain('renotify');
    const doc = await readFile('docs/alerts.md', 'utf8');
    expect([...new Set(added)].filter((k) => !doc.includes(`\`${k}\``))).toEqual([]);
  });

  it("the README's alert format lists every type", async () => {
    const readme = await readFile('README.md', 'utf8');
    const bullet = readme.slice(
      readme.indexOf('- **Alert** ('),
      readme.indexOf('docs/alerts.md)', readme.indexOf('- **Alert** (')),
    );
    expect(Alert.shape.type.options.filter((t) => !bullet.includes(`\`${t}\``))).toEqual([]);
  });

  it('names every reason of governor.degraded the code can raise, in its row', async () => {
    // Each governor.degraded the code builds sets details.reason to a literal (or picks one of
    // two); a subscriber routes on it, so the row of the type must name each one.
    const files = [
      'src/core/conditions.ts',
      'src/core/run-alerts.ts',
      'src/core/quota-requests.ts',
    ];
    const reasons = new Set<string>();
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      for (const at of text.matchAll(/type: 'governor\.degraded',/g)) {
        const rest = text.slice(at.index);
        const line = /\breason: ([^\n]*)/.exec(rest)?.[1] ?? '';
        for (const m of line.matchAll(/'([a-z]+(?:-[a-z]+)*)'/g)) reasons.add(m[1] ?? '');
      }
    }
    expect(reasons.size).toBeGreaterThan(8);
    const doc = await readFile('docs/alerts.md', 'utf8');
    const row = doc.split('\n').find((l) => l.startsWith('| `governor.degraded`')) ?? '';
    expect([...reasons].filter((r) => !row.includes(`\`${r}\``))).toEqual([]);
  });

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
