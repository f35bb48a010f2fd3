import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { discoveryKey } from '../../src/core/discovery.js';
import { parsePolicy } from '../../src/core/policy.js';
import { parseWorkMessage, staleReason } from '../../src/core/work.js';
import { memoryLogger } from '../../src/log.js';
import { dispatch } from '../../src/org/dispatch.js';
import type { WorkPublisher } from '../../src/ports/index.js';

type Sent = Parameters<WorkPublisher['publish']>[0][number][];

/**
 * A work topic that refuses the messages of the projects in `refused`, as a publish that fails for
 * some messages of a batch does (the adapter settles each message and lists those that failed);
 * every message it is given is added to `sent`.
 */
function topic(refused: ReadonlySet<string>, sent: Sent = []): WorkPublisher {
  return {
    topic: 'projects/org-admin/topics/gpu-governor-work',
    publish: async (messages) => {
      sent.push(...messages);
      return {
        failed: messages.flatMap((m, index) =>
          refused.has(m.attributes['project'] ?? '')
            ? [{ index, error: 'UNAVAILABLE: the topic is not reachable' }]
            : [],
        ),
      };
    },
    close: async () => {},
  };
}

/** The first `n` words of a message, as Error Reporting takes its first literal tokens. */
function opening(message: string, n = 3): string {
  return message
    .split(/[\s:;,()]+/)
    .filter(Boolean)
    .slice(0, n)
    .join(' ');
}

describe('a dispatch that could not send every unit', () => {
  // Error Reporting groups an error without a stack trace by "the first 3 literal tokens of the
  // message" (https://cloud.google.com/error-reporting/docs/grouping-errors): the same failure
  // must open with the same words, whatever the counts.
  it('is one error event whose message opens with the same words whatever how many units failed', async () => {
    const policy = parsePolicy({ version: 1, projects: ['proj-a', 'proj-b', 'proj-c', 'proj-d'] });
    const events: string[] = [];
    for (const refused of [['proj-a'], ['proj-a', 'proj-b', 'proj-c']]) {
      const log = memoryLogger();
      const report = await dispatch(policy, {
        search: null,
        cache: createMemoryStateStore(),
        publisher: topic(new Set(refused)),
        nowMs: Date.parse('2026-11-27T12:00:00Z'),
        log,
      });
      // Each unit not sent is named, so that the log says which projects went ungoverned.
      expect(report.failed.map((f) => f.project)).toEqual(refused);
      const errors = log.lines.filter((l) => l.severity === 'ERROR');
      expect(errors).toHaveLength(1);
      expect(errors[0]?.fields['@type']).toMatch(/ReportedErrorEvent$/);
      events.push(errors[0]?.message ?? '');
    }
    expect(opening(events[0] ?? '')).toBe(opening(events[1] ?? ''));
    // No count among the words that group it.
    expect(opening(events[0] ?? '')).not.toMatch(/\d/);
    // The counts are still said.
    expect(events[0]).toContain('3 of 4 unit(s) sent');
    expect(events[1]).toContain('1 of 4 unit(s) sent');
  });
});

describe("a dispatch's work messages", () => {
  // A unit drops a message issued more than `fanout.staleAfter` ago (core/work.ts staleReason), so
  // a message must be dated when it is sent: dated when the dispatch started, a search slower than
  // `staleAfter` (1m at least) made every message it sent stale on arrival, and no unit ran.
  it('are dated when they are sent, not when the dispatch started its search', async () => {
    const policy = parsePolicy({
      version: 1,
      discovery: { organization: '123456789012' },
      fanout: { topic: 'projects/org-admin/topics/gpu-governor-work', staleAfter: '1m' },
      services: [{ match: {} }],
    });
    const started = Date.parse('2026-11-27T12:00:00Z');
    let wall = started;
    const sent: Sent = [];
    const report = await dispatch(policy, {
      search: {
        // A search that takes two minutes.
        searchRunResources: async () => {
          wall += 120_000;
          return [
            {
              name: '//run.googleapis.com/projects/proj-a/locations/us-central1/services/s',
              assetType: 'run.googleapis.com/Service',
              labels: {},
              location: 'us-central1',
            },
          ];
        },
        close: async () => {},
      },
      cache: createMemoryStateStore(),
      publisher: topic(new Set(), sent),
      nowMs: started,
      clock: () => wall,
      log: memoryLogger(),
    });
    expect(report.published).toBe(1);
    expect(sent).toHaveLength(1);
    const message = parseWorkMessage(Buffer.from(sent[0]?.data ?? ''));
    expect(Date.parse(message.issuedAt)).toBe(started + 120_000);
    // As the unit judges it when the message arrives at once.
    expect(staleReason(message, wall, 60_000)).toBeNull();
  });
});

describe('a work message as a unit dates it', () => {
  // The dispatch and the unit read different clocks: a message dated a little ahead of the unit's
  // clock (within the minute of skew allowed everywhere) is governed, not acknowledged unread.
  it('is governed within the clock skew allowed, and refused beyond it or past staleAfter', () => {
    const now = Date.parse('2026-11-27T12:00:00Z');
    const at = (ms: number) =>
      parseWorkMessage(
        Buffer.from(
          JSON.stringify({
            version: 1,
            kind: 'govern',
            project: 'proj-a',
            dispatchId: 'd-1',
            issuedAt: new Date(ms).toISOString(),
          }),
        ),
      );
    expect(staleReason(at(now + 30_000), now, 60_000)).toBeNull();
    expect(staleReason(at(now + 60_000), now, 60_000)).toBeNull();
    expect(staleReason(at(now + 61_000), now, 60_000)).toBe('issued 61 s in the future');
    expect(staleReason(at(now - 60_000), now, 60_000)).toBeNull();
    expect(staleReason(at(now - 61_000), now, 60_000)).toMatch(/^issued 61 s ago, more than 60 s/);
  });
});

describe('a work message as a unit reads it', () => {
  it('is read up to 4 KiB of data, and refused unread beyond', () => {
    const message = JSON.stringify({
      version: 1,
      kind: 'govern',
      project: 'proj-a',
      dispatchId: 'd-1',
      issuedAt: '2026-11-27T12:00:00.000Z',
    });
    // JSON allows white space after the value: the same message, at the cap and one byte past it.
    const padded = (bytes: number) => Buffer.from(message.padEnd(bytes, ' '));
    expect(parseWorkMessage(padded(4096)).project).toBe('proj-a');
    expect(() => parseWorkMessage(padded(4097))).toThrow(
      'the work message has 4097 bytes: at most 4096 are read',
    );
  });
});

describe('a dispatch whose search does not answer', () => {
  // The function gives the search part of its timeout (function/org.ts); past it, the kept
  // result is used, as for a failed search, rather than the request ending with nothing sent.
  it('sends the units of the kept result once its search deadline has passed', async () => {
    const policy = parsePolicy({
      version: 1,
      discovery: { organization: '123456789012' },
      fanout: { topic: 'projects/org-admin/topics/gpu-governor-work' },
      services: [{ match: {} }],
    });
    const d = policy.discovery;
    if (!d) throw new Error('the policy has discovery');
    const cache = createMemoryStateStore();
    await cache.saveDiscovery({
      key: discoveryKey(d),
      foundAt: '2026-11-27T10:00:00.000Z',
      projects: ['proj-kept'],
    });
    const sent: Sent = [];
    const nowMs = Date.now();
    const report = await dispatch(policy, {
      search: { searchRunResources: () => new Promise(() => undefined), close: async () => {} },
      cache,
      publisher: topic(new Set(), sent),
      nowMs,
      clock: Date.now,
      log: memoryLogger(),
      searchDeadline: nowMs + 50,
    });
    expect(report).toMatchObject({ discovery: 'stale-cache', units: 1, published: 1 });
    expect(parseWorkMessage(Buffer.from(sent[0]?.data ?? '')).project).toBe('proj-kept');
  });
});

describe('a dispatch whose work topic does not answer', () => {
  // The function gives the dispatch part of its timeout to send (function/org.ts); past it, the
  // dispatch fails in its own words, rather than the request ending with nothing logged.
  it('fails once its send deadline has passed, naming the messages it was sending', async () => {
    const policy = parsePolicy({ version: 1, projects: ['proj-a', 'proj-b'] });
    const nowMs = Date.now();
    const hung: WorkPublisher = {
      topic: 'projects/org-admin/topics/gpu-governor-work',
      publish: () => new Promise(() => undefined),
      close: async () => {},
    };
    await expect(
      dispatch(policy, {
        search: null,
        cache: createMemoryStateStore(),
        publisher: hung,
        nowMs,
        clock: Date.now,
        log: memoryLogger(),
        sendDeadline: nowMs + 50,
      }),
    ).rejects.toThrow(
      /passed while sending 2 work messages to projects\/org-admin\/topics\/gpu-governor-work/,
    );
  });
});
