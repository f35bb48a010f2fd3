import { afterEach, describe, expect, it, vi } from 'vitest';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { deliveryVerdict } from '../../src/core/work.js';
import { memoryLogger } from '../../src/log.js';
import { alertFailedDelivery } from '../../src/org/unit.js';
import { UnavailableError } from '../../src/core/errors.js';
import type { StateStore } from '../../src/ports/index.js';

/**
 * The unit's last-delivery alert (src/org/unit.ts) when its state or Pub/Sub fail: the alert is
 * never hidden (sent without the state, or carried whole by an ERROR line).
 */

const policy = parsePolicy({ version: 1, projects: ['gpu-proj-0001'], services: [{ match: {} }] });
const failed = {
  project: 'gpu-proj-0001',
  verdict: { kind: 'last', attempt: 5, maxAttempts: 5 } as const,
  cause: 'the run deadline passed while observing',
  messageId: '7',
  dispatchId: 'd-1',
};
type Deps = Parameters<typeof alertFailedDelivery>[1];
// The sink and the log a test looks into are its own variables: `over` may replace them with
// any AlertSink or Logger, which need not keep what they received.
const deps = (over: Partial<Deps> = {}): Deps => ({
  store: createMemoryStateStore(),
  sink: new RecordingSink(),
  log: memoryLogger(),
  nowMs: Date.parse('2026-12-02T01:00:00Z'),
  runId: 'run-1',
  timeoutMs: 5_000,
  ...over,
});

/** The outbox of `store`, for a test store that changes only how the condition state is kept. */
const outboxOf = (
  store: StateStore,
): Pick<StateStore, 'listOutbox' | 'putOutbox' | 'removeOutbox'> => ({
  listOutbox: store.listOutbox.bind(store),
  putOutbox: store.putOutbox.bind(store),
  removeOutbox: store.removeOutbox.bind(store),
});

describe('alertFailedDelivery', () => {
  it('publishes once per episode and keeps the state', async () => {
    const sink = new RecordingSink();
    const d = deps({ sink });
    const first = await alertFailedDelivery(policy, d, failed);
    expect(first).toMatchObject({
      outcome: 'published',
      alert: { type: 'governor.degraded', status: 'firing' },
    });
    expect(sink.delivered).toHaveLength(1);
    expect(await alertFailedDelivery(policy, d, failed)).toEqual({ outcome: 'firing' });
    expect(sink.delivered).toHaveLength(1);
    const { state } = await d.store.loadConditions('gpu-proj-0001');
    expect(Object.keys(state)).toEqual(['governor.degraded:gpu-proj-0001:delivery']);
  });

  it.each([
    ['cannot be read', 'listOutbox', 'the outbox could not be read, so'],
    [
      'refuses the message',
      'putOutbox',
      'could not be stored in the outbox, so it is sent without it',
    ],
  ] as const)(
    'publishes and saves the alert when the outbox %s (a WARNING says it went without it)',
    async (_, method, warning) => {
      const store = createMemoryStateStore();
      const sink = new RecordingSink();
      const log = memoryLogger();
      const d = deps({
        sink,
        log,
        store: {
          ...outboxOf(store),
          [method]: () => Promise.reject(new UnavailableError('store down')),
          loadConditions: store.loadConditions.bind(store),
          saveConditions: store.saveConditions.bind(store),
        },
      });
      expect(await alertFailedDelivery(policy, d, failed)).toMatchObject({ outcome: 'published' });
      expect(sink.delivered).toHaveLength(1);
      expect(log.lines.some((l) => l.severity === 'WARNING' && l.message.includes(warning))).toBe(
        true,
      );
      // Saved without the outbox: the next failed delivery does not fire it again.
      const { state } = await store.loadConditions('gpu-proj-0001');
      expect(Object.keys(state)).toEqual(['governor.degraded:gpu-proj-0001:delivery']);
      expect((await store.listOutbox('gpu-proj-0001')).entries).toEqual([]);
    },
  );

  it('keeps the alert it sent when another run saved the state since it was read', async () => {
    // A run of the project saves its conditions between this alert's read of them and its save:
    // the alert went out, so it is kept, or no run would ever resolve it.
    const store = createMemoryStateStore();
    let otherSaved = false;
    const d = deps({
      store: {
        ...outboxOf(store),
        loadConditions: store.loadConditions.bind(store),
        saveConditions: async (project, state, version) => {
          if (!otherSaved) {
            otherSaved = true;
            const theirs = await store.loadConditions(project);
            await store.saveConditions(project, theirs.state, theirs.version);
          }
          return store.saveConditions(project, state, version);
        },
      },
    });
    expect((await alertFailedDelivery(policy, d, failed)).outcome).toBe('published');
    expect(Object.keys((await store.loadConditions('gpu-proj-0001')).state)).toEqual([
      'governor.degraded:gpu-proj-0001:delivery',
    ]);
  });

  it('sends the alert when the state cannot be read, and saves nothing', async () => {
    const store = createMemoryStateStore();
    const sink = new RecordingSink();
    const log = memoryLogger();
    const d = deps({
      store: {
        ...outboxOf(store),
        loadConditions: () => Promise.reject(new UnavailableError('store down')),
        saveConditions: store.saveConditions.bind(store),
      },
      sink,
      log,
    });
    expect((await alertFailedDelivery(policy, d, failed)).outcome).toBe('published');
    expect(sink.delivered).toHaveLength(1);
    expect(
      log.lines.some((l) => l.severity === 'ERROR' && /sent anyway: store down/.test(l.message)),
    ).toBe(true);
    expect((await store.loadConditions('gpu-proj-0001')).state).toEqual({});
  });

  it('tells why the state was not saved when the publish after it fails too', async () => {
    const sink = new RecordingSink(() => 0);
    sink.failRate = 1;
    const log = memoryLogger();
    const memory = createMemoryStateStore();
    const store = {
      ...outboxOf(memory),
      loadConditions: memory.loadConditions.bind(memory),
      saveConditions: async (): Promise<string> => {
        throw new UnavailableError('state store down');
      },
    };
    expect(await alertFailedDelivery(policy, deps({ sink, log, store }), failed)).toEqual({
      outcome: 'unpublished',
    });
    expect(
      log.lines.some(
        (l) =>
          l.severity === 'WARNING' &&
          /could not be saved before its publish failed.*state store down/.test(l.message),
      ),
    ).toBe(true);
  });

  it('logs the whole alert when Pub/Sub refuses it, and keeps it for the next to send', async () => {
    const sink = new RecordingSink(() => 0);
    sink.failRate = 1;
    const log = memoryLogger();
    const d = deps({ sink, log });
    expect(await alertFailedDelivery(policy, d, failed)).toEqual({ outcome: 'unpublished' });
    const line = log.lines.find((l) => /could not be published/.test(l.message));
    expect(line?.severity).toBe('ERROR');
    expect(JSON.stringify(line?.fields)).toContain('failed its last delivery (5 of 5)');
    // Kept in the outbox, counted as sent: the next failed delivery sends it again, under its id.
    const [kept] = (await d.store.listOutbox('gpu-proj-0001')).entries;
    expect(kept?.alert.id).toBe('run-1:governor.degraded:gpu-proj-0001:delivery:firing');
    expect(Object.keys((await d.store.loadConditions('gpu-proj-0001')).state)).toEqual([
      'governor.degraded:gpu-proj-0001:delivery',
    ]);
    sink.failRate = 0;
    expect(await alertFailedDelivery(policy, { ...d, runId: 'run-2' }, failed)).toMatchObject({
      outcome: 'published',
      alert: { id: kept?.alert.id },
    });
    expect(sink.delivered).toHaveLength(1);
    expect((await d.store.listOutbox('gpu-proj-0001')).entries).toEqual([]);
  });

  it('without a topic, the alert is only logged, as every alert of a policy without one', async () => {
    const log = memoryLogger();
    const d = deps({ sink: null, log });
    const verdict = deliveryVerdict(undefined, 5);
    if (verdict.kind === 'retried') throw new Error('unreachable');
    expect((await alertFailedDelivery(policy, d, { ...failed, verdict })).outcome).toBe(
      'published',
    );
    expect(
      log.lines.some((l) => /alert governor\.degraded firing: .*may be its last/.test(l.message)),
    ).toBe(true);
  });
});

describe('alertFailedDelivery whose wall clock steps back', () => {
  // Bounded by `timeoutMs` so that the unit still answers within the function's timeout, which
  // counts in real time: a wall clock stepping back 5 minutes after the state was read must not
  // have the publish wait those 5 minutes.
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('gives up publishing at its bound in time elapsed', async () => {
    const store = createMemoryStateStore();
    const now = Date.now.bind(Date);
    let back = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => now() - back);
    const d = deps({
      timeoutMs: 300,
      store: {
        ...outboxOf(store),
        saveConditions: store.saveConditions.bind(store),
        loadConditions: async (project) => {
          back = 5 * 60_000;
          return store.loadConditions(project);
        },
      },
      sink: { publish: () => new Promise(() => undefined) },
    });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      alertFailedDelivery(policy, d, failed),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve('still waiting'), 3_000);
      }),
    ]);
    clearTimeout(timer);
    expect(outcome).toEqual({ outcome: 'unpublished' });
  });
});
