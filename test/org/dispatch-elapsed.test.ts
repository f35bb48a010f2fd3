import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { discoveryKey } from '../../src/core/discovery.js';
import { parsePolicy } from '../../src/core/policy.js';
import { parseWorkMessage } from '../../src/core/work.js';
import { memoryLogger } from '../../src/log.js';
import { dispatch } from '../../src/org/dispatch.js';
import type { WorkPublisher } from '../../src/ports/index.js';

/**
 * A dispatch's search and send deadlines are times of the time elapsed since the request arrived,
 * not of the wall clock: the function's timeout counts in real time, and a wall clock stepping back
 * by minutes during a dispatch would otherwise have it wait past that timeout (the request ended
 * with no message sent and no line logged).
 */
const STEP_BACK_MS = 5 * 60_000;
/** Well within the step back: a dispatch still waiting then waits on the wall clock. */
const PATIENCE_MS = 3_000;

/**
 * The time elapsed, from the wall clock's time now: the two agree until the wall clock steps, so
 * that a deadline is the same time on either.
 */
function elapsedFromNow(): () => number {
  const origin = Date.now() - performance.now();
  return () => origin + performance.now();
}

/** The dispatch's answer, or 'still waiting' when it has not come within PATIENCE_MS. */
async function within<T>(p: Promise<T>): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<'still waiting'>((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), PATIENCE_MS);
  });
  try {
    return await Promise.race([p, waited]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a dispatch whose wall clock steps back', () => {
  it('stops searching at its search deadline in elapsed time, and sends the kept result', async () => {
    const policy = parsePolicy({
      version: 1,
      discovery: { organization: '123456789012', folders: ['1001'] },
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
    let back = 0;
    const wall = () => Date.now() - back;
    const sent: { data: string }[] = [];
    const publisher: WorkPublisher = {
      topic: 'projects/org-admin/topics/gpu-governor-work',
      publish: async (messages) => {
        sent.push(...messages);
        return { failed: [] };
      },
      close: async () => {},
    };
    const elapsed = elapsedFromNow();
    const arrived = elapsed();
    const report = await within(
      dispatch(policy, {
        search: {
          // The organisation's search answers after the wall clock stepped back; the folder's
          // never does.
          searchRunResources: async (scope) => {
            if (scope.startsWith('folders/')) return new Promise(() => undefined);
            back = STEP_BACK_MS;
            return [];
          },
          close: async () => {},
        },
        cache,
        publisher,
        nowMs: wall(),
        clock: wall,
        elapsedClock: elapsed,
        log: memoryLogger(),
        searchDeadline: arrived + 200,
        sendDeadline: arrived + 2_000,
      }),
    );
    expect(report).toMatchObject({ discovery: 'stale-cache', units: 1, published: 1 });
    expect(parseWorkMessage(Buffer.from(sent[0]?.data ?? '')).project).toBe('proj-kept');
  });

  it('fails at its send deadline in elapsed time', async () => {
    const policy = parsePolicy({
      version: 1,
      discovery: { organization: '123456789012' },
      fanout: { topic: 'projects/org-admin/topics/gpu-governor-work' },
      services: [{ match: {} }],
    });
    let back = 0;
    const wall = () => Date.now() - back;
    const hung: WorkPublisher = {
      topic: 'projects/org-admin/topics/gpu-governor-work',
      publish: () => new Promise(() => undefined),
      close: async () => {},
    };
    const elapsed = elapsedFromNow();
    const arrived = elapsed();
    const outcome = await within(
      dispatch(policy, {
        search: {
          // The search answers after the wall clock stepped back, then the topic never does.
          searchRunResources: async () => {
            back = STEP_BACK_MS;
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
        publisher: hung,
        nowMs: wall(),
        clock: wall,
        elapsedClock: elapsed,
        log: memoryLogger(),
        searchDeadline: arrived + 200,
        sendDeadline: arrived + 400,
      }).catch((e: unknown) => (e instanceof Error ? e.message : String(e))),
    );
    expect(outcome).toMatch(/passed while sending 1 work message to /);
  });

  it('dates its messages on the wall clock still', async () => {
    const policy = parsePolicy({ version: 1, projects: ['proj-a'] });
    const wall = Date.parse('2026-11-27T12:00:00Z');
    const elapsed = elapsedFromNow();
    const sent: { data: string }[] = [];
    await dispatch(policy, {
      search: null,
      cache: createMemoryStateStore(),
      publisher: {
        topic: 'projects/org-admin/topics/gpu-governor-work',
        publish: async (messages) => {
          sent.push(...messages);
          return { failed: [] };
        },
        close: async () => {},
      },
      nowMs: wall,
      clock: () => wall,
      elapsedClock: elapsed,
      log: memoryLogger(),
      sendDeadline: elapsed() + 1_000,
    });
    expect(parseWorkMessage(Buffer.from(sent[0]?.data ?? '')).issuedAt).toBe(
      '2026-11-27T12:00:00.000Z',
    );
  });
});
