import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { Alert } from '../../src/core/alert.js';
import { makeAlert } from '../../src/core/conditions.js';
import {
  ConditionState,
  withStoredMessages,
  endedInOutbox,
  keptState,
  claimConditions,
  decideNotifications,
  handOverConditions,
  rebaseConditions,
  takeBackConditions,
  inScope,
  locationKey,
} from '../../src/core/notify.js';
import type { NotifyInput, NotifyOutput } from '../../src/core/notify.js';
import type { PoolId } from '../../src/core/pool.js';
import { poolKey } from '../../src/core/pool.js';
import { fcParams } from '../support/fleet-arbitrary.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();

const east: PoolId = {
  project: 'p',
  region: 'us-east4',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
};
const central: PoolId = { ...east, region: 'us-central1' };

function pressure(pool: PoolId, demand = 9): Alert {
  return makeAlert({ at: at(0), runId: 'plan' }, pool, {
    type: 'pool.pressure',
    severity: 'WARNING',
    summary: `Demand is ${demand} GPUs`,
    details: { demand },
  });
}

function starved(pool: PoolId, service: string): Alert {
  return makeAlert({ at: at(0), runId: 'plan' }, pool, {
    type: 'service.starved',
    severity: 'WARNING',
    service,
    summary: `${service} is short`,
    details: { shortfall: 1 },
  });
}

function applied(pool: PoolId, service: string): Alert {
  return makeAlert({ at: at(0), runId: 'plan' }, pool, {
    type: 'rebalance.applied',
    status: 'event',
    severity: 'INFO',
    service,
    summary: `${service} 2 → 3`,
    details: { from: 2, to: 3 },
  });
}

const everywhere = [poolKey(east), poolKey(central)];

function run(
  previous: ConditionState,
  current: Alert[],
  tMs: number,
  extra: Partial<NotifyInput> = {},
): NotifyOutput {
  return decideNotifications({
    previous,
    current,
    events: [],
    now: at(tMs),
    renotifyAfterMs: HOUR,
    runId: `run-${tMs}`,
    scope: everywhere,
    ...extra,
  });
}

describe('keptState', () => {
  it('counts what the outbox kept and leaves the rest as before, so each fires and resolves once', () => {
    const first = run({}, [pressure(east), pressure(central)], 0);
    // Run 2: east's pressure ends, central's holds, a starved service in each pool is new; only
    // central's messages were kept.
    const second = run(
      first.next,
      [pressure(central), starved(east, 'a'), starved(central, 'b')],
      2 * HOUR,
    );
    const sent = new Set(
      second.publish.filter((m) => m.region === central.region).map((m) => m.id),
    );
    const saved = keptState(first.next, second, sent);
    const third = run(
      saved,
      [pressure(central), starved(east, 'a'), starved(central, 'b')],
      2 * HOUR + 60_000,
    );
    // What was not kept is decided again, once; what was kept is not.
    expect(third.publish.map((m) => [m.type, m.region, m.status])).toEqual([
      ['pool.pressure', east.region, 'resolved'],
      ['service.starved', east.region, 'firing'],
    ]);
    // The re-notification kept is recorded as sent.
    const centralPressure = second.publish.find(
      (m) => m.type === 'pool.pressure' && m.region === central.region,
    );
    expect(saved[centralPressure?.dedupKey ?? '']?.lastNotifiedAt).toBe(at(2 * HOUR));
    // Nothing kept: the state before, but for the conditions no message was about.
    expect(keptState(first.next, second, new Set())).toEqual(first.next);
  });
});

describe('withStoredMessages', () => {
  it('a run that died after storing its messages: the next counts them as sent, and decides none again', () => {
    const first = run({}, [pressure(east)], 0);
    // The state was not saved: the stored firing counts as sent, as a saved state would.
    const folded = withStoredMessages({}, first.publish);
    expect(folded).toEqual(first.next);
    expect(run(folded, [pressure(east)], 60_000).publish).toEqual([]);
    // The condition ended meanwhile: it resolves once, after the firing sent from the outbox.
    expect(run(folded, [], 60_000).publish.map((m) => m.status)).toEqual(['resolved']);
  });

  it('changes nothing a saved state already counts, so folding twice is folding once', () => {
    const first = run({}, [pressure(east)], 0);
    expect(withStoredMessages(first.next, first.publish)).toEqual(first.next);
    const again = run(first.next, [pressure(east)], 2 * HOUR);
    expect(again.publish[0]?.details).toMatchObject({ renotify: true });
    expect(withStoredMessages(first.next, again.publish)).toEqual(again.next);
    expect(withStoredMessages(again.next, [...first.publish, ...again.publish])).toEqual(
      again.next,
    );
    const ended = run(again.next, [], 3 * HOUR);
    expect(withStoredMessages(again.next, ended.publish)).toEqual({});
    expect(withStoredMessages({}, [...first.publish, ...again.publish, ...ended.publish])).toEqual(
      {},
    );
    // A new episode saved after an older resolve is not undone by it.
    const anew = run({}, [pressure(east)], 4 * HOUR);
    expect(withStoredMessages(anew.next, ended.publish)).toEqual(anew.next);
  });

  it('a resolve ends the episode it follows in the outbox, whatever the two messages are stamped', () => {
    // A run refused the lease starts after the holder did: its firing is stamped later than the
    // holder's resolve of it, which the outbox holds after it.
    const refused = run({}, [pressure(east)], 10_000);
    const holder = run(withStoredMessages({}, refused.publish), [], 5_000);
    expect(holder.publish.map((m) => m.status)).toEqual(['resolved']);
    const box = [...refused.publish, ...holder.publish];
    // Folded over the holder's saved state, or over the refused run's: the episode is over.
    expect(withStoredMessages(holder.next, box)).toEqual({});
    expect(withStoredMessages(refused.next, box)).toEqual({});
    // So a refused run after both fires a new episode, and a fold of it keeps that episode.
    const again = run(withStoredMessages(holder.next, box), [pressure(east)], 20_000);
    expect(again.publish.map((m) => m.status)).toEqual(['firing']);
    expect(withStoredMessages(holder.next, [...box, ...again.publish])).toEqual(again.next);
  });

  it('a resolve left alone in the outbox ends only the episode it names', () => {
    const first = run({}, [pressure(east)], 10_000);
    const ended = run(first.next, [], 15_000);
    // A new episode stamped before that resolve (a run refused the lease started earlier), whose
    // firing was sent and removed from the outbox: the resolve is not about it.
    const anew = run({}, [pressure(east)], 12_000);
    expect(withStoredMessages(anew.next, ended.publish)).toEqual(anew.next);
    // The episode it names, re-notified after it (a stale re-notification), is over all the same.
    const renotified = run(first.next, [pressure(east)], 16_000, { renotifyAfterMs: 0 });
    expect(withStoredMessages(renotified.next, ended.publish)).toEqual({});
  });
});

describe('a resolve of an episode stamped after its run started', () => {
  // A run refused the lease fires at 90 s; the holder's run, started at 0, resolves it: its
  // resolve says it fired since 0 (a start after the end reads as a wrong clock) and keeps the
  // start it was stamped with, which alone tells the episode it ends.
  const refused = run({}, [pressure(east)], 90_000);
  const holder = run(withStoredMessages({}, refused.publish), [], 0);
  const resolve = holder.publish[0];

  it('keeps the start the episode was stamped with', () => {
    expect(resolve?.status).toBe('resolved');
    expect(resolve?.details).toMatchObject({ firingSince: at(0), stampedSince: at(90_000) });
  });

  it('ends that episode, and its firing before it in the outbox', () => {
    expect(withStoredMessages(refused.next, [...refused.publish, holder.publish[0]!])).toEqual({});
    expect(endedInOutbox([...refused.publish, ...holder.publish])).toEqual(
      new Set(refused.publish.map((m) => m.id)),
    );
  });

  it('leaves a later episode alone, however late it was stamped', () => {
    // The resolve stays in the outbox (its remove failed); another refused run fires anew at 200 s.
    const anew = run({}, [pressure(east)], 200_000);
    expect(withStoredMessages(anew.next, holder.publish)).toEqual(anew.next);
    expect(endedInOutbox([...holder.publish, ...anew.publish]).size).toBe(0);
  });
});

describe('decideNotifications', () => {
  it('fires a new condition once, with the run id and time', () => {
    const { publish, next } = run({}, [pressure(east)], 0);
    expect(publish).toHaveLength(1);
    const [m] = publish;
    expect(m).toMatchObject({
      status: 'firing',
      type: 'pool.pressure',
      dedupKey: pressure(east).dedupKey,
      runId: 'run-0',
      time: at(0),
      details: { demand: 9, firingSince: at(0) },
    });
    expect(m?.details).not.toHaveProperty('renotify');
    expect(() => Alert.parse(m)).not.toThrow();
    expect(ConditionState.parse(next)).toEqual(next);
    expect(next[pressure(east).dedupKey]).toMatchObject({
      firingSince: at(0),
      lastNotifiedAt: at(0),
      notifications: 1,
    });
  });

  it('sends nothing while the condition holds inside renotifyAfter, but keeps its latest facts', () => {
    const first = run({}, [pressure(east, 9)], 0);
    const second = run(first.next, [pressure(east, 10)], HOUR - 1);
    expect(second.publish).toEqual([]);
    const record = second.next[pressure(east).dedupKey];
    expect(record).toMatchObject({
      summary: 'Demand is 10 GPUs',
      details: { demand: 10 },
      firingSince: at(0),
      lastNotifiedAt: at(0),
      lastSeenAt: at(HOUR - 1),
    });
  });

  it('re-notifies once renotifyAfter has passed since the last notification', () => {
    const s0 = run({}, [pressure(east)], 0).next;
    const s1 = run(s0, [pressure(east)], 30 * 60_000).next;
    const third = run(s1, [pressure(east)], HOUR);
    expect(third.publish).toHaveLength(1);
    expect(third.publish[0]).toMatchObject({
      status: 'firing',
      details: { renotify: true, firingSince: at(0) },
    });
    // The clock restarts from the re-notification.
    expect(run(third.next, [pressure(east)], 2 * HOUR - 1).publish).toEqual([]);
    expect(run(third.next, [pressure(east)], 2 * HOUR).publish).toHaveLength(1);
  });

  it('re-notifies a condition whose stored count is at the largest whole number, with a state that saves', () => {
    // A hand edit (or years of re-notifying): one more would be past what the state may hold,
    // every save refused, and every run failing after it had published, for good.
    const s0 = run({}, [pressure(east)], 0).next;
    const key = pressure(east).dedupKey;
    const stored = s0[key];
    if (!stored) throw new Error('not fired');
    const full = { ...s0, [key]: { ...stored, notifications: Number.MAX_SAFE_INTEGER } };
    expect(ConditionState.safeParse(full).success).toBe(true);
    const again = run(full, [pressure(east)], HOUR);
    expect(again.publish).toHaveLength(1);
    expect(again.next[key]?.notifications).toBe(Number.MAX_SAFE_INTEGER);
    expect(ConditionState.safeParse(again.next).success).toBe(true);
  });

  it('sends a rise in severity at once; a fall, once due, as the end of one episode and the start of another', () => {
    const warning = pressure(east);
    const error: Alert = { ...warning, severity: 'ERROR', summary: 'Demand is 9 GPUs, and worse' };
    const s0 = run({}, [warning], 0).next;
    // Inside renotifyAfter: a rise is sent now, saying from what; the clock restarts from it.
    const rose = run(s0, [error], 10 * 60_000);
    expect(rose.publish).toHaveLength(1);
    expect(rose.publish[0]).toMatchObject({
      status: 'firing',
      severity: 'ERROR',
      details: { renotify: true, escalatedFrom: 'WARNING', firingSince: at(0) },
    });
    expect(() => Alert.parse(rose.publish[0])).not.toThrow();
    expect(rose.next[warning.dedupKey]).toMatchObject({ severity: 'ERROR', notifications: 2 });
    expect(run(rose.next, [error], 20 * 60_000).publish).toEqual([]);
    // A fall waits for renotifyAfter, as any other change of its facts does: the receiver still
    // knows the condition as ERROR, so that is the severity kept.
    const fell = run(rose.next, [warning], 30 * 60_000);
    expect(fell.publish).toEqual([]);
    expect(fell.next[warning.dedupKey]).toMatchObject({
      severity: 'ERROR',
      summary: warning.summary,
    });
    // A rise back to what was last sent is no news: a condition that flaps between WARNING and
    // ERROR pages once per renotifyAfter, not at every rise.
    const back = run(fell.next, [error], 40 * 60_000);
    expect(back.publish).toEqual([]);
    // Resolved now, it says ERROR: a subscription filtered on ERROR got the firing, and gets this.
    const gone = run(back.next, [], 50 * 60_000);
    expect(gone.publish).toMatchObject([{ status: 'resolved', severity: 'ERROR' }]);
    // Once the fall is due (renotifyAfter), the ERROR episode resolves, at ERROR (the page a
    // subscription filtered on ERROR opened closes), and a WARNING one begins.
    const sentFall = run(fell.next, [warning], 10 * 60_000 + HOUR);
    expect(sentFall.publish).toMatchObject([
      { status: 'resolved', severity: 'ERROR', details: { firingSince: at(0) } },
      {
        status: 'firing',
        severity: 'WARNING',
        details: { fellFrom: 'ERROR', firingSince: at(10 * 60_000 + HOUR) },
      },
    ]);
    expect(sentFall.publish[1]?.details).not.toHaveProperty('renotify');
    for (const m of sentFall.publish) expect(() => Alert.parse(m)).not.toThrow();
    expect(new Set(sentFall.publish.map((m) => m.id)).size).toBe(2);
    expect(sentFall.next[warning.dedupKey]).toMatchObject({
      severity: 'WARNING',
      notifications: 1,
      firingSince: at(10 * 60_000 + HOUR),
    });
    // A rise after it is news again.
    expect(run(sentFall.next, [error], 20 * 60_000 + HOUR).publish[0]?.details).toMatchObject({
      escalatedFrom: 'WARNING',
    });
    // Stored, its state not saved: the next run counts the resolve and the new episode as sent.
    expect(withStoredMessages(fell.next, sentFall.publish)).toEqual(sentFall.next);
  });

  it('re-notifies a condition whose last notification is dated later than now (a wrong clock or a hand edit)', () => {
    const s0 = run({}, [pressure(east)], 0).next;
    const key = pressure(east).dedupKey;
    const record = s0[key];
    if (!record) throw new Error('no record');
    const stamped: ConditionState = {
      [key]: {
        ...record,
        firingSince: '2099-01-01T00:00:00.000Z',
        lastNotifiedAt: '2099-01-01T00:00:00.000Z',
      },
    };
    // Taken at its word, the condition would stay silent until 2099.
    const out = run(stamped, [pressure(east)], 5 * 60_000);
    expect(out.publish).toHaveLength(1);
    expect(out.publish[0]).toMatchObject({
      status: 'firing',
      details: { renotify: true, firingSince: at(5 * 60_000) },
    });
    expect(out.next[key]).toMatchObject({
      firingSince: at(5 * 60_000),
      lastNotifiedAt: at(5 * 60_000),
    });
    // Within the clock skew two machines may have (a minute), the stamp still holds.
    const skewed: ConditionState = {
      [key]: { ...record, lastNotifiedAt: at(5 * 60_000 + 30_000) },
    };
    expect(run(skewed, [pressure(east)], 5 * 60_000).publish).toEqual([]);
  });

  it('resolves a condition stamped as firing since a later time as firing since this run', () => {
    const s0 = run({}, [pressure(east)], 0).next;
    const key = pressure(east).dedupKey;
    const record = s0[key];
    if (!record) throw new Error('no record');
    const stamped: ConditionState = {
      [key]: { ...record, firingSince: '2099-01-01T00:00:00.000Z' },
    };
    const now = at(5 * 60_000);
    // Gone: its resolve says it fired since this run, not since 2099.
    expect(run(stamped, [], 5 * 60_000).publish).toMatchObject([
      { status: 'resolved', details: { firingSince: now, resolvedAt: now, durationMs: 0 } },
    ]);
    // Fallen in severity, once due: the episode that ends does too.
    const error: ConditionState = {
      [key]: { ...record, severity: 'ERROR', firingSince: '2099-01-01T00:00:00.000Z' },
    };
    expect(run(error, [pressure(east)], HOUR).publish).toMatchObject([
      { status: 'resolved', severity: 'ERROR', details: { firingSince: at(HOUR), durationMs: 0 } },
      { status: 'firing', severity: 'WARNING', details: { firingSince: at(HOUR) } },
    ]);
  });

  it('resolves once, with the last facts, and forgets the condition', () => {
    const s0 = run({}, [pressure(east, 9)], 0).next;
    const s1 = run(s0, [pressure(east, 11)], 60_000).next;
    const gone = run(s1, [], 5 * 60_000);
    expect(gone.publish).toHaveLength(1);
    const [m] = gone.publish;
    expect(m).toMatchObject({
      status: 'resolved',
      type: 'pool.pressure',
      severity: 'WARNING',
      dedupKey: pressure(east).dedupKey,
      summary: 'Resolved: Demand is 11 GPUs',
      region: 'us-east4',
      details: {
        firingSince: at(0),
        resolvedAt: at(5 * 60_000),
        durationMs: 5 * 60_000,
        lastDetails: { demand: 11 },
      },
    });
    expect(() => Alert.parse(m)).not.toThrow();
    expect(gone.next).toEqual({});
    expect(run(gone.next, [], 10 * 60_000).publish).toEqual([]);
  });

  it('does not resolve a condition of a pool this run could not judge', () => {
    const s0 = run({}, [pressure(east), pressure(central)], 0).next;
    const partial = run(s0, [], 60_000, { scope: [poolKey(central)] });
    expect(partial.publish.map((m) => [m.status, m.region])).toEqual([['resolved', 'us-central1']]);
    expect(partial.next[pressure(east).dedupKey]).toEqual(s0[pressure(east).dedupKey]);
    // Once the pool is judged again, it resolves.
    const later = run(partial.next, [], 120_000, { scope: [poolKey(east)] });
    expect(later.publish.map((m) => [m.status, m.region])).toEqual([['resolved', 'us-east4']]);
  });

  it('resolves within a region or a whole project when the scope says so, and nothing when it is empty', () => {
    const s0 = run({}, [pressure(east), pressure(central)], 0).next;
    expect(run(s0, [], 1, { scope: [] }).publish).toEqual([]);
    expect(run(s0, [], 1, { scope: ['p/us-east4'] }).publish.map((m) => m.region)).toEqual([
      'us-east4',
    ]);
    expect(run(s0, [], 1, { scope: ['p'] }).publish).toHaveLength(2);
    // "p" must not cover project "p2".
    expect(inScope(['p'], 'p2/us-east4/nvidia-l4/zonal')).toBe(false);
    expect(locationKey(pressure(east))).toBe(poolKey(east));
  });

  it('publishes events every time, after the conditions, in the order given', () => {
    const events = [applied(east, 'b'), applied(east, 'a')];
    const first = run({}, [pressure(east)], 0, { events });
    expect(first.publish.map((m) => [m.status, m.service])).toEqual([
      ['firing', null],
      ['event', 'b'],
      ['event', 'a'],
    ]);
    const second = run(first.next, [pressure(east)], 60_000, { events });
    expect(second.publish.map((m) => [m.status, m.service])).toEqual([
      ['event', 'b'],
      ['event', 'a'],
    ]);
    expect(second.publish[0]?.runId).toBe('run-60000');
  });

  it('orders resolved, then firing, then events, whatever the order of its inputs', () => {
    const s0 = run({}, [starved(east, 'x'), pressure(central)], 0).next;
    const current = [starved(east, 'b'), pressure(east), starved(central, 'a')];
    const events = [applied(central, 'a')];
    const one = run(s0, current, 60_000, { events });
    const other = run(
      Object.fromEntries(Object.entries(s0).reverse()),
      [...current].reverse(),
      60_000,
      { events },
    );
    expect(other).toEqual(one);
    expect(one.publish.map((m) => `${m.status} ${m.dedupKey}`)).toEqual([
      'resolved pool.pressure:p/us-central1/nvidia-l4/zonal',
      'resolved service.starved:p/us-east4/nvidia-l4/zonal:x',
      'firing pool.pressure:p/us-east4/nvidia-l4/zonal',
      'firing service.starved:p/us-central1/nvidia-l4/zonal:a',
      'firing service.starved:p/us-east4/nvidia-l4/zonal:b',
      'event rebalance.applied:p/us-central1/nvidia-l4/zonal:a',
    ]);
  });

  it('gives every message its own id, from the run, the dedupKey and the status', () => {
    const s0 = run({}, [pressure(east)], 0).next;
    const events = [applied(east, 'a'), applied(east, 'a')];
    const { publish } = run(s0, [pressure(central)], 60_000, { events });
    const ids = publish.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([
      'run-60000:pool.pressure:p/us-east4/nvidia-l4/zonal:resolved',
      'run-60000:pool.pressure:p/us-central1/nvidia-l4/zonal:firing',
      'run-60000:rebalance.applied:p/us-east4/nvidia-l4/zonal:a:event',
      'run-60000:rebalance.applied:p/us-east4/nvidia-l4/zonal:a:event#2',
    ]);
  });

  it('refuses inputs that are a caller bug', () => {
    expect(() => run({}, [pressure(east), pressure(east)], 0)).toThrow(/listed twice/);
    expect(() => run({}, [applied(east, 'a')], 0)).toThrow(/not firing/);
    expect(() => run({}, [], 0, { events: [pressure(east)] })).toThrow(/status firing/);
    expect(() => run({}, [], 0, { now: 'soon' })).toThrow(RangeError);
    expect(() => run({}, [], 0, { renotifyAfterMs: -1 })).toThrow(RangeError);
    for (const resolveAfterMs of [-1, NaN, Infinity]) {
      expect(() => run({}, [], 0, { resolveAfterMs })).toThrow(/resolveAfterMs must be/);
    }
  });
});

describe('decideNotifications over a sequence of runs (property)', () => {
  const pools = [east, central];
  const universe: Alert[] = pools.flatMap((p) => [pressure(p), starved(p, 'a'), starved(p, 'b')]);
  const poolOf = (a: Alert): string => locationKey(a);

  const stepArb = fc.record({
    gapMs: fc.oneof(
      fc.integer({ min: 0, max: 10 * 60_000 }),
      fc.integer({ min: 0, max: 3 * HOUR }),
    ),
    present: fc.subarray(universe.map((_, i) => i)),
    judged: fc.subarray(pools.map(poolKey), { minLength: 0 }),
    wholeProject: fc.boolean(),
  });

  it('each condition goes firing, (re-notified firing)*, resolved, … with renotifyAfter between firings', () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 2 * HOUR }),
        (steps, renotifyAfterMs) => {
          let state: ConditionState = {};
          let t = 0;
          const streams = new Map<string, Alert[]>();
          const ids = new Set<string>();
          steps.forEach((step, n) => {
            t += step.gapMs;
            const scope = step.wholeProject ? ['p'] : step.judged;
            // A run only sees conditions of the pools it judged.
            const current = step.present
              .map((i) => universe[i])
              .filter((a): a is Alert => a !== undefined && inScope(scope, poolOf(a)));
            const before = state;
            const out = decideNotifications({
              previous: state,
              current,
              events: [],
              now: at(t),
              renotifyAfterMs,
              runId: `run-${n}`,
              scope,
            });
            for (const m of out.publish) {
              expect(ids.has(m.id)).toBe(false);
              ids.add(m.id);
              const stream = streams.get(m.dedupKey) ?? [];
              stream.push(m);
              streams.set(m.dedupKey, stream);
            }
            // The state says exactly what holds: present → kept, absent in scope → gone,
            // out of scope → untouched.
            for (const a of universe) {
              const key = a.dedupKey;
              if (current.some((c) => c.dedupKey === key)) {
                expect(out.next[key]).toBeDefined();
                const lastNotified = before[key]?.lastNotifiedAt;
                const due =
                  lastNotified === undefined ||
                  t - (Date.parse(lastNotified) - T0) >= renotifyAfterMs;
                expect(out.publish.some((m) => m.dedupKey === key && m.status === 'firing')).toBe(
                  due,
                );
              } else if (inScope(scope, poolOf(a))) {
                expect(out.next[key]).toBeUndefined();
              } else {
                expect(out.next[key]).toEqual(before[key]);
              }
            }
            expect(ConditionState.parse(out.next)).toEqual(out.next);
            state = out.next;
          });

          for (const stream of streams.values()) {
            let firingSince: string | null = null;
            let lastFiring: number | null = null;
            for (const m of stream) {
              const time = Date.parse(m.time);
              if (m.status === 'resolved') {
                expect(firingSince).not.toBeNull();
                expect(m.details.firingSince).toBe(firingSince);
                firingSince = null;
                lastFiring = null;
              } else if (firingSince === null) {
                expect(m.status).toBe('firing');
                expect(m.details.renotify).toBeUndefined();
                firingSince = m.time;
                lastFiring = time;
              } else {
                expect(m.status).toBe('firing');
                expect(m.details.renotify).toBe(true);
                expect(m.details.firingSince).toBe(firingSince);
                expect(time - (lastFiring ?? -Infinity)).toBeGreaterThanOrEqual(renotifyAfterMs);
                lastFiring = time;
              }
            }
          }
        },
      ),
      fcParams(300),
    );
  });
});

describe('handOverConditions (a project newly governed per region)', () => {
  const record = (project: string, region: string | null, summary: string) => ({
    type: 'pool.pressure' as const,
    severity: 'WARNING' as const,
    project,
    region,
    accelerator: region === null ? null : 'nvidia-l4',
    zonalRedundancy: region === null ? null : true,
    service: null,
    summary,
    details: { n: 1 },
    firingSince: '2026-11-27T10:00:00.000Z',
    lastNotifiedAt: '2026-11-27T10:00:00.000Z',
    lastSeenAt: '2026-11-27T10:00:00.000Z',
    notifications: 1,
  });
  const whole = {
    'pool.pressure:p/us-central1/nvidia-l4/zonal': record('p', 'us-central1', 'us'),
    'pool.pressure:p/europe-west4/nvidia-l4/zonal': record('p', 'europe-west4', 'eu'),
    'governor.degraded:p:observation': {
      ...record('p', null, 'could not read'),
      type: 'governor.degraded' as const,
    },
    'pool.pressure:q/us-central1/nvidia-l4/zonal': record('q', 'us-central1', 'other project'),
  };

  const handOver = (own: ConditionState, state: ConditionState, region: string) =>
    handOverConditions(own, claimConditions(state, 'p', region).whole, region);

  it("moves the unit's region and the project-wide ones, and leaves the rest", () => {
    const claim = claimConditions(whole, 'p', 'us-central1');
    expect(claim.claimed).toEqual([
      'governor.degraded:p:observation',
      'pool.pressure:p/us-central1/nvidia-l4/zonal',
    ]);
    // Claimed once: a second claim by the same unit marks nothing new.
    expect(claimConditions(claim.whole, 'p', 'us-central1').claimed).toEqual([]);
    const out = handOverConditions({}, claim.whole, 'us-central1');
    expect(out.moved).toEqual(claim.claimed);
    expect(Object.keys(out.whole).sort()).toEqual([
      'pool.pressure:p/europe-west4/nvidia-l4/zonal',
      'pool.pressure:q/us-central1/nvidia-l4/zonal',
    ]);
    expect(out.whole).toEqual({
      'pool.pressure:p/europe-west4/nvidia-l4/zonal':
        whole['pool.pressure:p/europe-west4/nvidia-l4/zonal'],
      'pool.pressure:q/us-central1/nvidia-l4/zonal':
        whole['pool.pressure:q/us-central1/nvidia-l4/zonal'],
    });
    expect(out.own['pool.pressure:p/us-central1/nvidia-l4/zonal']?.summary).toBe('us');
    const pw = out.own['governor.degraded:p:observation'];
    expect(pw?.summary).toMatch(/now governed per region; handed over to its unit in us-central1/);
    expect(pw?.details).toEqual({ n: 1, handedOverTo: 'us-central1' });
    expect(ConditionState.safeParse(out.own).success).toBe(true);
  });

  it('a project-wide condition another unit claimed is not taken', () => {
    const byUs = claimConditions(whole, 'p', 'us-central1').whole;
    const eu = claimConditions(byUs, 'p', 'europe-west4');
    expect(eu.claimed).toEqual(['pool.pressure:p/europe-west4/nvidia-l4/zonal']);
    const out = handOverConditions({}, eu.whole, 'europe-west4');
    expect(Object.keys(out.own)).toEqual(['pool.pressure:p/europe-west4/nvidia-l4/zonal']);
    expect(Object.keys(out.whole)).toContain('governor.degraded:p:observation');
    // Unclaimed records move nothing.
    expect(handOverConditions({}, whole, 'us-central1').moved).toEqual([]);
  });

  it('keeps what the unit already keeps; a second handover moves nothing', () => {
    const mine = { ...record('p', 'us-central1', 'the unit saw it'), notifications: 3 };
    const out = handOver(
      { 'pool.pressure:p/us-central1/nvidia-l4/zonal': mine },
      whole,
      'us-central1',
    );
    expect(out.own['pool.pressure:p/us-central1/nvidia-l4/zonal']).toEqual(mine);
    expect(out.moved).toContain('pool.pressure:p/us-central1/nvidia-l4/zonal');
    const again = handOver(out.own, out.whole, 'us-central1');
    expect(again.moved).toEqual([]);
    expect(again.own).toEqual(out.own);
  });

  it('a resolved handed-over condition says why, once', () => {
    const { own } = handOver({}, whole, 'europe-west4');
    const out = decideNotifications({
      previous: own,
      current: [],
      events: [],
      now: '2026-11-27T11:00:00.000Z',
      renotifyAfterMs: 3_600_000,
      runId: 'r',
      scope: ['p'],
    });
    expect(out.publish.map((a) => [a.dedupKey, a.status])).toEqual([
      ['governor.degraded:p:observation', 'resolved'],
      ['pool.pressure:p/europe-west4/nvidia-l4/zonal', 'resolved'],
    ]);
    expect(out.publish[0]?.summary).toMatch(
      /^Resolved: could not read \(the project is now governed per region/,
    );
    expect(out.next).toEqual({});
  });

  it('a project governed whole again takes back all a unit keeps; the unit-wide ones say why', () => {
    const unitWide = {
      ...record('p', 'us-central1', 'could not read us-central1'),
      type: 'governor.degraded' as const,
      accelerator: null,
      zonalRedundancy: null,
    };
    const unit = {
      'pool.pressure:p/us-central1/nvidia-l4/zonal': record('p', 'us-central1', 'us'),
      'governor.degraded:p/us-central1:observation': unitWide,
    };
    const mine = { ...record('p', 'us-central1', 'the project saw it'), notifications: 2 };
    const out = takeBackConditions(
      { 'pool.pressure:p/us-central1/nvidia-l4/zonal': mine },
      unit,
      'us-central1',
    );
    expect(out.moved).toEqual(Object.keys(unit).sort());
    expect(out.own['pool.pressure:p/us-central1/nvidia-l4/zonal']).toEqual(mine);
    expect(out.own['governor.degraded:p/us-central1:observation']?.summary).toBe(
      'could not read us-central1 (the project is governed whole again)',
    );
    const resolved = decideNotifications({
      previous: out.own,
      current: [],
      events: [],
      now: '2026-11-27T11:00:00.000Z',
      renotifyAfterMs: 3_600_000,
      runId: 'r',
      scope: ['p'],
    });
    expect(resolved.publish.map((a) => a.status)).toEqual(['resolved', 'resolved']);
    expect(takeBackConditions(out.own, {}, 'us-central1').moved).toEqual([]);
  });
});

describe('rebaseConditions', () => {
  const decide = (previous: ConditionState, current: Alert[], ms: number) =>
    decideNotifications({
      previous,
      current,
      events: [],
      now: at(ms),
      renotifyAfterMs: HOUR,
      runId: `run-${ms}`,
      scope: ['p'],
    }).next;

  it('keeps what this run decided, and what another writer added or changed that this run did not', () => {
    const base = decide({}, [pressure(east), starved(central, 'a')], 0);
    // This run: east's pressure still holds, a is fed (resolved), b starves.
    const mine = decide(base, [pressure(east), starved(central, 'b')], 5 * 60_000);
    // Meanwhile a run refused the lease saved its own condition beside what it read.
    const lease = makeAlert(
      { at: at(60_000), runId: 'other' },
      { project: 'p', region: null, accelerator: null, zonalRedundancy: null },
      {
        type: 'governor.degraded',
        severity: 'ERROR',
        key: 'lease',
        summary: 'held',
        details: { reason: 'lease' },
      },
    );
    const theirs = decide(base, [pressure(east), starved(central, 'a'), lease], 60_000);
    const rebased = rebaseConditions(base, mine, theirs);
    expect(Object.keys(rebased).sort()).toEqual(
      [pressure(east).dedupKey, starved(central, 'b').dedupKey, lease.dedupKey].sort(),
    );
    expect(rebased[pressure(east).dedupKey]).toEqual(mine[pressure(east).dedupKey]);
    expect(rebased[lease.dedupKey]).toEqual(theirs[lease.dedupKey]);
    // Nothing changed on either side: as stored.
    expect(rebaseConditions(base, base, theirs)).toEqual(theirs);
    expect(rebaseConditions(base, mine, base)).toEqual(mine);
  });

  it('keeps the new episode another writer saved after this run read the old one', () => {
    // This run read east's pressure firing since 0 and resolves it; meanwhile another writer (a
    // run refused the lease that found this run's resolve in the outbox) fired a new episode.
    const base = decide({}, [pressure(east)], 0);
    const mine = decide(base, [], 5 * 60_000);
    expect(mine).toEqual({});
    const theirs = decide({}, [pressure(east)], 6 * 60_000);
    const key = pressure(east).dedupKey;
    expect(theirs[key]?.firingSince).not.toBe(base[key]?.firingSince);
    expect(rebaseConditions(base, mine, theirs)).toEqual(theirs);
    // The same episode, re-notified by the other writer since: this run's resolve ends it.
    const renotified = decide(base, [pressure(east)], 2 * HOUR);
    expect(renotified[key]?.firingSince).toBe(base[key]?.firingSince);
    expect(rebaseConditions(base, mine, renotified)).toEqual({});
  });
});

describe('resolveAfterMs: conditions judged on demand resolve only once absent that long', () => {
  const M = 60_000;
  const hold = { resolveAfterMs: 15 * M };
  const degraded = makeAlert({ at: at(0), runId: 'plan' }, east, {
    type: 'governor.degraded',
    severity: 'WARNING',
    key: 'quota',
    summary: 'Quota unknown',
    details: { reason: 'quota-unknown' },
  });

  it('a starved service absent for one run and back is one episode: no resolved, no second firing', () => {
    const s0 = run({}, [starved(east, 'a')], 0, hold);
    expect(s0.publish.map((m) => m.status)).toEqual(['firing']);
    // Demand dips below the cap for one run: nothing is sent, the condition is kept.
    const s1 = run(s0.next, [], 5 * M, hold);
    expect(s1.publish).toEqual([]);
    expect(Object.keys(s1.next)).toEqual([starved(east, 'a').dedupKey]);
    // It is back within the hold: the same episode, still silent.
    const s2 = run(s1.next, [starved(east, 'a')], 10 * M, hold);
    expect(s2.publish).toEqual([]);
    expect(s2.next[starved(east, 'a').dedupKey]?.firingSince).toBe(at(0));
    // Absent again: the hold starts over from this run, not from the first absence.
    const s3 = run(s2.next, [], 15 * M, hold);
    const s4 = run(s3.next, [], 25 * M, hold);
    expect(s3.publish).toEqual([]);
    expect(s4.publish).toEqual([]);
  });

  it('resolves at the first judging run once absent for resolveAfterMs, with the facts last seen', () => {
    const s0 = run({}, [pressure(east, 9)], 0, hold);
    const s1 = run(s0.next, [], 5 * M, hold);
    const s2 = run(s1.next, [], 15 * M, hold);
    expect(s2.publish).toEqual([]);
    const s3 = run(s2.next, [], 20 * M, hold);
    expect(s3.publish).toMatchObject([
      {
        status: 'resolved',
        type: 'pool.pressure',
        details: {
          firingSince: at(0),
          resolvedAt: at(20 * M),
          durationMs: 20 * M,
          lastSeenAt: at(0),
          lastDetails: { demand: 9 },
        },
      },
    ]);
    expect(() => Alert.parse(s3.publish[0])).not.toThrow();
    expect(s3.next).toEqual({});
  });

  it('other conditions resolve at once, and so does a demand condition of a service that is gone', () => {
    const s0 = run({}, [degraded, starved(east, 'a')], 0, hold);
    const s1 = run(s0.next, [], 5 * M, { ...hold, gone: [starved(east, 'a').dedupKey] });
    expect(s1.publish.map((m) => [m.type, m.status])).toEqual([
      ['governor.degraded', 'resolved'],
      ['service.starved', 'resolved'],
    ]);
  });

  it('a run that cannot judge the condition neither starts nor ends its hold', () => {
    const s0 = run({}, [starved(east, 'a')], 0, hold);
    const s1 = run(s0.next, [], 5 * M, hold);
    const unjudged = run(s1.next, [], 30 * M, { ...hold, scope: [] });
    expect(unjudged.publish).toEqual([]);
    expect(unjudged.next).toEqual(s1.next);
    expect(run(s1.next, [], 30 * M, hold).publish.map((m) => m.status)).toEqual(['resolved']);
  });

  it('a hold stamped beyond the clock skew starts at this run', () => {
    const s0 = run({}, [starved(east, 'a')], 0, hold);
    const key = starved(east, 'a').dedupKey;
    const record = s0.next[key];
    if (!record) throw new Error('no record');
    const future: ConditionState = { [key]: { ...record, absentSince: at(10 * HOUR) } };
    const s1 = run(future, [], 5 * M, hold);
    expect(s1.publish).toEqual([]);
    expect(s1.next[key]?.absentSince).toBe(at(5 * M));
  });

  it('without a hold, resolves at once whatever hold a record carries (the setting changed since)', () => {
    const s0 = run({}, [starved(east, 'a')], 0, hold);
    const key = starved(east, 'a').dedupKey;
    const record = s0.next[key];
    if (!record) throw new Error('no record');
    // Stamped 30 s ahead of this clock, within the skew allowed: still no hold to wait out.
    const ahead: ConditionState = { [key]: { ...record, absentSince: at(5 * M + 30_000) } };
    expect(run(ahead, [], 5 * M).publish.map((m) => m.status)).toEqual(['resolved']);
  });
});
