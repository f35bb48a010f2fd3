import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { Alert, alertAttributes } from '../../src/core/alert.js';
import {
  decideNotifications,
  DEMAND_CONDITIONS,
  DEMAND_RESOLVE_AFTER_MS,
} from '../../src/core/notify.js';
import { orderingKey } from '../../src/core/run-alerts.js';
import { alertsDocJsonBlocks as jsonBlocks } from '../support/alerts-doc.js';

/**
 * docs/alerts.md and the README's alert format against the code: the sample is a message the
 * governor could send, every type and every reason of governor.degraded is named. Unit tests, so
 * that `npm run test:unit` catches a new alert type the docs do not list; the Slack relay the
 * page shows is run in subscriber.int.test.ts.
 */
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

  it('sets the attributes the page lists, region and service only when the alert has them', async () => {
    const [data] = await jsonBlocks();
    const alert = Alert.parse(data);
    const doc = (await readFile('docs/alerts.md', 'utf8')).replace(/\s+/g, ' ');
    expect(doc).toContain(
      'Attributes: `type`, `severity`, `status`, `project`, `region` (when set) and `service` (when set).',
    );
    const always = ['project', 'severity', 'status', 'type'];
    const keys = (a: Alert) => Object.keys(alertAttributes(a)).sort();
    expect(keys(alert)).toEqual([...always, 'region', 'service'].sort());
    // A pool alert: no service attribute, so that `attributes:service` finds service alerts only.
    expect(keys({ ...alert, service: null })).toEqual([...always, 'region'].sort());
    // A project alert: neither.
    const project = { ...alert, region: null, accelerator: null, zonalRedundancy: null };
    expect(keys({ ...project, service: null })).toEqual(always);
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

  it('gives the hold of the conditions judged on demand that the governor keeps', async () => {
    const doc = (await readFile('docs/alerts.md', 'utf8')).replace(/\s+/g, ' ');
    const types = [...DEMAND_CONDITIONS].map((t) => `\`${t}\``).join(' and ');
    const minutes = DEMAND_RESOLVE_AFTER_MS / 60_000;
    expect(doc).toContain(
      `${types}, resolve only once runs that could see them have found them gone for ${minutes} minutes`,
    );
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
});
