import { z } from 'zod';

import { Alert, restated, Severity } from './alert.js';
import { alertPoolKey, type AlertPlace } from './conditions.js';
import { beyondSkew } from './duration.js';
import { compareText } from './pool.js';

/**
 * Which alerts a run publishes: conditions fire once, re-notify after `renotifyAfter` and resolve
 * once; events go out every time. Pure: the previous condition state, the plan's firing
 * conditions, the run's events and the time in; the messages and the next state out. The caller
 * stores the messages in the outbox, then saves the next state, then publishes them, so a publish
 * that fails or a run that dies is retried by the next run, under the same ids, instead of being
 * lost or decided again ({@link withStoredMessages}).
 *
 * Output order, the same whatever the order of `current` and `previous`:
 *   1. `resolved` messages, by dedupKey;
 *   2. `firing` messages (new and re-notified), by dedupKey;
 *   3. events, in the order given (they happened in that order: writes in execution order),
 *      each keeping its own `time`.
 * Ordering keys are per pool, so within one pool a subscriber sees an ended condition before a
 * new one, and both before the events of the same run.
 */

/** What the store keeps of one firing condition: enough to re-notify and to resolve it. */
export const ConditionRecord = Alert.pick({
  type: true,
  project: true,
  region: true,
  accelerator: true,
  zonalRedundancy: true,
  service: true,
  /**
   * `severity` is the one last published: a fall is not sent until renotifyAfter, so a rise back
   * to what the receiver last heard is no news, and the resolved message keeps the severity a
   * subscription filtered on it received (docs/alerts.md, "Receiving them"); a fall, once due,
   * resolves the episode at that severity and fires a new one at the lower.
   */
  severity: true,
  /** The latest summary and details seen, whether or not they were published. */
  summary: true,
  details: true,
}).extend({
  firingSince: z.iso.datetime({ offset: true }),
  lastNotifiedAt: z.iso.datetime({ offset: true }),
  lastSeenAt: z.iso.datetime({ offset: true }),
  /** Firing messages published so far for this episode (1 after the first). */
  notifications: z.number().int().min(1),
  /**
   * A condition judged on demand ({@link DEMAND_CONDITIONS}) that a run judging it found gone:
   * the time of that first run. It resolves once absent for `resolveAfterMs`; back before then,
   * the episode goes on and this is cleared.
   */
  absentSince: z.iso.datetime({ offset: true }).optional(),
});
export type ConditionRecord = z.infer<typeof ConditionRecord>;

/** The firing conditions of one project, keyed by dedupKey. Plain JSON. */
export const ConditionState = z.record(z.string().min(1), ConditionRecord);
export type ConditionState = z.infer<typeof ConditionState>;

export interface NotifyInput {
  previous: ConditionState;
  /** The conditions that hold now (the plan's `alerts`), each `status: 'firing'`. */
  current: readonly Alert[];
  /** Facts of this run (`status: 'event'`), published as they are, in this order. */
  events: readonly Alert[];
  /** The run's time, ISO 8601. */
  now: string;
  renotifyAfterMs: number;
  runId: string;
  /**
   * What this run judged, as location keys: `project`, `project/region` or a pool key
   * `project/region/accelerator/zonal` (see {@link locationKey}). A condition no longer in
   * `current` resolves only when one of these covers its location (equal to it, or a prefix of
   * it); otherwise the run could not see it and its state is kept as it is. List a project only
   * when the whole project was observed: then pools that vanished resolve too.
   */
  scope: readonly string[];
  /**
   * Conditions (dedupKeys) this run could not judge although `scope` covers their place: a
   * service's `service.starved` while its usage is unknown or it is deploying. Absent from
   * `current`, each is kept as stored, neither resolved nor re-notified: not knowing is not the
   * same as fixed, and a resolve the next run contradicts would page twice for one episode.
   */
  unjudged?: readonly string[];
  /**
   * Conditions (dedupKeys) this run judged whatever `scope` covers: the run's own (its lease, its
   * outbox, its metrics), which no unread pool hides. Absent from `current`, each resolves as one
   * in scope does.
   */
  judged?: readonly string[];
  /**
   * Conditions (dedupKeys) about a service this run saw is gone from its pool (deleted, moved to
   * another pool, no longer on a GPU) although `scope` does not cover their place (a pool whose
   * quota is unknown): absent from `current`, each resolves, since nothing of it is left to hold.
   */
  gone?: readonly string[];
  /**
   * How long a condition judged on demand ({@link DEMAND_CONDITIONS}) must be found absent, by
   * runs that judge it, before it resolves (default 0: at the first such run). Demand moves
   * minute to minute: a starved service or a pressed pool whose demand wiggles around the line
   * would otherwise fire and resolve every few runs, each time a new episode.
   */
  resolveAfterMs?: number;
}

/**
 * The conditions judged on demand, which moves minute to minute: they resolve only once absent
 * for `resolveAfterMs` (docs/alerts.md, "The types"). Every other condition is about a fact (a
 * cap over the budget, a permission, a read that failed) and resolves at the first run that
 * finds it gone; a demand condition of a service that is gone (`gone`) resolves at once too.
 */
export const DEMAND_CONDITIONS: ReadonlySet<string> = new Set(['service.starved', 'pool.pressure']);

/** How long the governor holds a demand condition absent before it resolves it: 15 minutes. */
export const DEMAND_RESOLVE_AFTER_MS = 15 * 60_000;

export interface NotifyOutput {
  /** The messages to publish, in order. */
  publish: Alert[];
  /** The state to save once the messages in `publish` are stored (they count as sent). */
  next: ConditionState;
}

/**
 * Where a condition is: its pool's `poolKey` when it has one, else as far as it has a place
 * (`project[/region[/accelerator]]`), so that a pool's key is a prefix-extension of its region's.
 */
export function locationKey(a: AlertPlace): string {
  return (
    alertPoolKey(a) ??
    [a.project, a.region, a.region === null ? null : a.accelerator]
      .filter((x) => x !== null)
      .join('/')
  );
}

/** Whether a scope entry covers a location: the same key, or a prefix ending at a `/`. */
export function inScope(scope: readonly string[], location: string): boolean {
  return scope.some((s) => s === location || location.startsWith(`${s}/`));
}

export function decideNotifications(input: NotifyInput): NotifyOutput {
  const { previous, current, events, now, renotifyAfterMs, runId, scope } = input;
  const unjudged = new Set(input.unjudged ?? []);
  const gone = new Set(input.gone ?? []);
  const judged = new Set(input.judged ?? []);
  const nowMs = Date.parse(now);
  if (!Number.isFinite(nowMs)) throw new RangeError(`now is not a time: ${JSON.stringify(now)}`);
  if (!Number.isFinite(renotifyAfterMs) || renotifyAfterMs < 0) {
    throw new RangeError(`renotifyAfterMs must be a finite number >= 0, not ${renotifyAfterMs}`);
  }
  const resolveAfterMs = input.resolveAfterMs ?? 0;
  if (!Number.isFinite(resolveAfterMs) || resolveAfterMs < 0) {
    throw new RangeError(`resolveAfterMs must be a finite number >= 0, not ${resolveAfterMs}`);
  }

  const holding = new Map<string, Alert>();
  for (const a of current) {
    if (a.status !== 'firing') {
      throw new Error(`bug: condition ${a.dedupKey} has status ${a.status}, not firing`);
    }
    if (holding.has(a.dedupKey)) throw new Error(`bug: condition ${a.dedupKey} listed twice`);
    holding.set(a.dedupKey, a);
  }
  for (const e of events) {
    if (e.status !== 'event') throw new Error(`bug: event ${e.dedupKey} has status ${e.status}`);
  }

  const resolved: Alert[] = [];
  const firing: Alert[] = [];
  const next: ConditionState = {};

  for (const key of Object.keys(previous).sort(compareText)) {
    const record = previous[key];
    if (record === undefined || holding.has(key)) continue;
    if (gone.has(key)) {
      resolved.push(resolvedMessage(key, record, now, nowMs, runId));
    } else if ((!inScope(scope, locationKey(record)) && !judged.has(key)) || unjudged.has(key)) {
      next[key] = record;
    } else if (resolveAfterMs > 0 && DEMAND_CONDITIONS.has(record.type)) {
      // Held until absent long enough. A hold stamped beyond the clock skew starts now.
      const since =
        record.absentSince === undefined || beyondSkew(record.absentSince, nowMs)
          ? now
          : record.absentSince;
      if (nowMs - Date.parse(since) >= resolveAfterMs) {
        resolved.push(resolvedMessage(key, record, now, nowMs, runId));
      } else {
        next[key] = { ...record, absentSince: since };
      }
    } else {
      resolved.push(resolvedMessage(key, record, now, nowMs, runId));
    }
  }

  for (const key of [...holding.keys()].sort(compareText)) {
    const alert = holding.get(key);
    if (alert === undefined) continue;
    const before = previous[key];
    const seen = {
      type: alert.type,
      severity: alert.severity,
      project: alert.project,
      region: alert.region,
      accelerator: alert.accelerator,
      zonalRedundancy: alert.zonalRedundancy,
      service: alert.service,
      summary: alert.summary,
      details: alert.details,
      lastSeenAt: now,
    };
    if (before === undefined) {
      firing.push(firingMessage(alert, { firingSince: now }, now, runId));
      next[key] = { ...seen, firingSince: now, lastNotifiedAt: now, notifications: 1 };
      continue;
    }
    // Times dated beyond now plus the clock skew allowed were stamped on a wrong clock or by
    // hand: a last notification so dated is due now (taken at its word, the condition would stay
    // silent until then), and an episode so dated is taken to start now.
    const firingSince = beyondSkew(before.firingSince, nowMs) ? now : before.firingSince;
    // A condition whose severity rose (a misconfiguration that now breaks a required rule, a
    // project no longer governed at all) is sent again at once: a pager routes on severity, and
    // waiting for renotifyAfter would keep the worse news at the lesser severity until then.
    const change =
      Severity.options.indexOf(alert.severity) - Severity.options.indexOf(before.severity);
    const escalated = change > 0;
    const due =
      escalated ||
      beyondSkew(before.lastNotifiedAt, nowMs) ||
      nowMs - Date.parse(before.lastNotifiedAt) >= renotifyAfterMs;
    const fell = change < 0;
    if (due && fell) {
      // A fall, due to be told: the episode at the higher severity ends (its resolve at that
      // severity, which a subscription filtering on it receives: the page it opened closes) and
      // one at the lower severity begins. Sent as a re-notification at the lower severity alone,
      // an ERROR-only subscription would never hear the end of what it was paged for.
      resolved.push(resolvedMessage(key, before, now, nowMs, runId));
      firing.push(
        firingMessage(alert, { firingSince: now, fellFrom: before.severity }, now, runId),
      );
      next[key] = { ...seen, firingSince: now, lastNotifiedAt: now, notifications: 1 };
    } else if (due) {
      firing.push(
        firingMessage(
          alert,
          { firingSince, renotify: true, ...(escalated ? { escalatedFrom: before.severity } : {}) },
          now,
          runId,
        ),
      );
      next[key] = {
        ...seen,
        firingSince,
        lastNotifiedAt: now,
        // Held at the largest whole number the state holds (a hand edit may store it): one more
        // would make every save of the state refused, after its messages went out.
        notifications: Math.min(before.notifications + 1, Number.MAX_SAFE_INTEGER),
      };
    } else {
      // Nothing sent: the receiver still knows the condition at the severity last sent (a fall
      // is not news until renotifyAfter; a rise back to it is none at all).
      next[key] = {
        ...seen,
        severity: before.severity,
        firingSince,
        lastNotifiedAt: before.lastNotifiedAt,
        notifications: before.notifications,
      };
    }
  }

  const publish = [...resolved, ...firing, ...events.map((e) => ({ ...e, runId }))];
  return { publish: withUniqueIds(publish, runId), next };
}

/**
 * The state that counts as sent only the messages of `output.publish` whose ids are in `kept`
 * (events aside): a firing kept is notified, a resolve kept is gone; a message not kept leaves its
 * condition as it was in `previous` (a condition new in this run stays unknown, and fires again
 * at the next run that decides it). A fall's new episode not kept after its old one's resolve was:
 * the old episode is over, the new one fires as new. Saved while the outbox's bound dropped some
 * of a run's messages to make room for the rest (their only copy is the publish to come), so that
 * a run that dies before the publish leaves them to be decided again rather than counted as sent.
 */
export function keptState(
  previous: ConditionState,
  output: NotifyOutput,
  kept: ReadonlySet<string>,
): ConditionState {
  const next: ConditionState = { ...output.next };
  for (const m of output.publish) {
    if (m.status === 'event' || kept.has(m.id)) continue;
    if (
      m.status === 'firing' &&
      output.publish.some(
        (r) => r.status === 'resolved' && r.dedupKey === m.dedupKey && kept.has(r.id),
      )
    ) {
      delete next[m.dedupKey];
      continue;
    }
    const before = previous[m.dedupKey];
    if (before === undefined) delete next[m.dedupKey];
    else next[m.dedupKey] = before;
  }
  return next;
}

/** What a firing message adds to its condition's details (firingMessage): not the condition's. */
interface FiringExtras {
  firingSince: string;
  renotify?: true;
  escalatedFrom?: Severity;
  fellFrom?: Severity;
}

/** The keys of {@link FiringExtras}, every one (the type refuses a key missing here). */
const FIRING_EXTRAS: readonly string[] = Object.keys({
  firingSince: true,
  renotify: true,
  escalatedFrom: true,
  fellFrom: true,
} satisfies Record<keyof FiringExtras, true>);

/**
 * The condition state with the condition messages an earlier run stored in the outbox counted as
 * sent (`stored`: oldest first; events are ignored). A run stores its condition messages in the
 * outbox before it saves the state that counts them and before it publishes them, so a run that
 * dies in between leaves them there: the next run sends them again from the outbox, under their
 * own ids, and decides its own conditions on this state, so that it neither sends them a second
 * time under its own ids nor misses the resolve of a condition only the stored message fired.
 *
 * A `resolved` ends the episode it names (its `details.firingSince`, the episode's start), not
 * whatever the state holds of its condition: the state may count a later episode already. A
 * `firing` that a `resolved` of the same episode follows in `stored` ({@link endedInOutbox}) is
 * over, so it is not counted. Told by the outbox's order, which every store keeps (ports/state.ts
 * putOutbox), not by the messages' times: a run refused the lease starts, and stamps its `firing`,
 * after the holder's run that resolves it started (docs/alerts.md). Any other `firing` the state
 * already counts (notified at or after its time) changes nothing, so folding twice is folding once.
 */
export function withStoredMessages(
  state: ConditionState,
  stored: readonly Alert[],
): ConditionState {
  const next: ConditionState = { ...state };
  const ended = endedInOutbox(stored);
  for (const m of stored) {
    const atMs = Date.parse(m.time);
    const record = next[m.dedupKey];
    const notifiedMs = record === undefined ? null : Date.parse(record.lastNotifiedAt);
    if (m.status === 'resolved') {
      if (record !== undefined && endsEpisode(m, record)) delete next[m.dedupKey];
      continue;
    }
    if (m.status !== 'firing' || ended.has(m.id)) continue;
    if (notifiedMs !== null && notifiedMs >= atMs) continue;
    const since = m.details['firingSince'];
    const sameEpisode =
      record !== undefined && m.details['renotify'] === true && m.details['fellFrom'] === undefined;
    const details = Object.fromEntries(
      Object.entries(m.details).filter(([key]) => !FIRING_EXTRAS.includes(key)),
    );
    next[m.dedupKey] = {
      type: m.type,
      project: m.project,
      region: m.region,
      accelerator: m.accelerator,
      zonalRedundancy: m.zonalRedundancy,
      service: m.service,
      severity: m.severity,
      summary: m.summary,
      details,
      firingSince:
        ConditionRecord.shape.firingSince.safeParse(since).success && typeof since === 'string'
          ? since
          : sameEpisode
            ? record.firingSince
            : m.time,
      lastNotifiedAt: m.time,
      lastSeenAt:
        record !== undefined && Date.parse(record.lastSeenAt) > atMs ? record.lastSeenAt : m.time,
      notifications: sameEpisode ? Math.min(record.notifications + 1, Number.MAX_SAFE_INTEGER) : 1,
    };
  }
  return next;
}

/**
 * The episode a message is about: the start its firing was stamped with (a resolve's
 * `stampedSince`, where its `firingSince` says the run's time instead: resolvedMessage), else the
 * `firingSince` it names, else (a hand edit) its time.
 */
function episodeOf(m: Alert): string {
  for (const since of [m.details['stampedSince'], m.details['firingSince']])
    if (typeof since === 'string' && ConditionRecord.shape.firingSince.safeParse(since).success)
      return since;
  return m.time;
}

/** Whether a stored `resolved` ends the episode `record` holds: the one it names, and no other. */
function endsEpisode(m: Alert, record: ConditionRecord): boolean {
  return episodeOf(m) === record.firingSince;
}

/**
 * The ids of the `firing` messages of `messages` (condition messages in outbox order, oldest
 * first) that a later `resolved` of the same condition and episode ends: that episode is over, and
 * its `firing`, sent or not, counts for nothing more (withStoredMessages; a process without the
 * lease does not send it again, the holder's run sends it with the resolve).
 */
export function endedInOutbox(messages: readonly Alert[]): Set<string> {
  const ended = new Set<string>();
  const open = new Map<string, Alert[]>();
  for (const m of messages) {
    if (m.status === 'firing') {
      open.set(m.dedupKey, [...(open.get(m.dedupKey) ?? []), m]);
    } else if (m.status === 'resolved') {
      const episode = episodeOf(m);
      const firings = open.get(m.dedupKey) ?? [];
      for (const f of firings) if (episodeOf(f) === episode) ended.add(f.id);
      open.set(
        m.dedupKey,
        firings.filter((f) => !ended.has(f.id)),
      );
    }
  }
  return ended;
}

function firingMessage(alert: Alert, extra: FiringExtras, now: string, runId: string): Alert {
  return { ...alert, details: { ...alert.details, ...extra }, runId, time: now };
}

function resolvedMessage(
  dedupKey: string,
  record: ConditionRecord,
  now: string,
  nowMs: number,
  runId: string,
): Alert {
  // An episode stamped beyond the clock skew is taken to fire since this run, as it is while it
  // fires on (decideNotifications): its resolve says so rather than a start after its end.
  // `stampedSince` keeps the start the episode was stamped with, which alone tells which episode
  // the resolve ends (withStoredMessages): a run refused the lease stamps its firing after the
  // start of the holder's run that resolves it, by more than the skew when that run is long.
  const renamed = beyondSkew(record.firingSince, nowMs);
  const firingSince = renamed ? now : record.firingSince;
  const durationMs = Math.max(0, nowMs - Date.parse(firingSince));
  return recordAlert(dedupKey, record, {
    id: '',
    status: 'resolved',
    summary: `Resolved: ${record.summary}`,
    details: {
      firingSince,
      ...(renamed ? { stampedSince: record.firingSince } : {}),
      resolvedAt: now,
      durationMs,
      lastSeenAt: record.lastSeenAt,
      lastDetails: record.details,
    },
    runId,
    time: now,
  });
}

/**
 * The alert about what a condition record is about (its type, severity and place), with the
 * message's own id, status, summary, details, run and time; fields in the alert's order.
 */
export function recordAlert(
  dedupKey: string,
  record: ConditionRecord,
  message: Pick<Alert, 'id' | 'status' | 'summary' | 'details' | 'runId' | 'time'>,
): Alert {
  return {
    version: 1,
    id: message.id,
    type: record.type,
    status: message.status,
    severity: record.severity,
    project: record.project,
    region: record.region,
    accelerator: record.accelerator,
    zonalRedundancy: record.zonalRedundancy,
    service: record.service,
    summary: message.summary,
    details: message.details,
    runId: message.runId,
    time: message.time,
    dedupKey,
  };
}

/**
 * Ids `runId:dedupKey:status`; a second message with the same three (two events of one kind on
 * one thing in one run) gets `#2`, `#3`, ... in output order.
 */
export function withUniqueIds(messages: readonly Alert[], runId: string): Alert[] {
  const seen = new Map<string, number>();
  return messages.map((m) => {
    const base = `${runId}:${m.dedupKey}:${m.status}`;
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    return { ...m, id: count === 1 ? base : `${base}#${count}` };
  });
}

/**
 * The handover of conditions when a project is governed per region (docs/organization.md,
 * "Regional units"): what a regional unit of `region` takes from the state its project left when
 * it was governed whole, so that every condition there resolves once rather than fire forever.
 *
 * - A condition of the unit's region (a pool's, a service's, a region's: its `region`) is its:
 *   its dedupKey is the same whichever unit raises it (the place includes the region), so the
 *   unit re-judges it, and it keeps firing without a new message while it holds, or resolves once
 *   when it no longer does.
 * - The project's own project-wide conditions (no region) go to the one unit that claims them
 *   first: no unit raises them again (a regional unit's carry its region, core/conditions.ts
 *   projectWide), so that unit's next run that judges the whole of its unit resolves each once,
 *   saying the project is now governed per region; a unit where the problem holds fires its own.
 *
 * In two steps, each a versioned save of the project's state (the caller's): {@link
 * claimConditions} marks what the unit takes (`details.handedOverTo`), so that of two units
 * racing for a project-wide condition exactly one has it; then {@link handOverConditions} moves
 * what is marked for the unit into its own state (saved first) and off the project's.
 */
const HANDED_OVER_TO = 'handedOverTo';

function handedOverTo(record: ConditionRecord): unknown {
  return record.details[HANDED_OVER_TO];
}

/** Whether a record of the project's state is for the unit of `region` to take. */
function claimable(record: ConditionRecord, project: string, region: string): boolean {
  if (record.project !== project) return false;
  if (record.region === region) return true;
  if (record.region !== null) return false;
  const to = handedOverTo(record);
  return to === undefined || to === region;
}

/**
 * The project's state with what the unit of `region` takes marked for it; `claimed` lists the
 * keys newly marked (none: nothing to save).
 */
export function claimConditions(
  whole: ConditionState,
  project: string,
  region: string,
): { whole: ConditionState; claimed: string[] } {
  const next: ConditionState = { ...whole };
  const claimed: string[] = [];
  for (const key of Object.keys(whole).sort(compareText)) {
    const record = whole[key];
    if (record === undefined || !claimable(record, project, region)) continue;
    if (handedOverTo(record) === region) continue;
    claimed.push(key);
    next[key] = restated(
      record,
      record.region === null
        ? `${record.summary} (the project is now governed per region; handed over to its unit in ${region})`
        : record.summary,
      { [HANDED_OVER_TO]: region },
    );
  }
  return { whole: next, claimed };
}

/**
 * What is marked for the unit of `region` moves from the project's state into the unit's. A key
 * the unit already keeps stays as the unit keeps it (never resolved there: one episode, one
 * resolve); it still leaves the project's state. `moved` lists the keys that leave it.
 */
export function handOverConditions(
  own: ConditionState,
  whole: ConditionState,
  region: string,
): { own: ConditionState; whole: ConditionState; moved: string[] } {
  const nextOwn: ConditionState = { ...own };
  const left: ConditionState = {};
  const moved: string[] = [];
  for (const key of Object.keys(whole).sort(compareText)) {
    const record = whole[key];
    if (record === undefined) continue;
    if (handedOverTo(record) !== region) {
      left[key] = record;
      continue;
    }
    moved.push(key);
    nextOwn[key] ??= record;
  }
  return { own: nextOwn, whole: left, moved };
}

/**
 * The other way (docs/organization.md, "Regional units"): a project governed whole again takes
 * back everything the unit of `region` keeps firing. Its pool, service and region conditions have
 * the dedupKey the project's run raises, so the project re-judges them (firing on without a new
 * message while they hold, resolved once when they ended); the unit's project-wide ones (its
 * region, no accelerator) are raised by no run of the whole project, so they resolve once at its
 * next run that reads everything, saying the project is governed whole again. A key the project
 * already keeps stays as it keeps it. No claim is needed: the project's lease excludes every
 * regional unit of it (src/reconcile/unit-lease.ts), so no one else takes from the unit.
 */
export function takeBackConditions(
  own: ConditionState,
  unit: ConditionState,
  region: string,
): { own: ConditionState; moved: string[] } {
  const next: ConditionState = { ...own };
  const moved: string[] = [];
  for (const key of Object.keys(unit).sort(compareText)) {
    const record = unit[key];
    if (record === undefined) continue;
    moved.push(key);
    next[key] ??=
      record.region === region && record.accelerator === null
        ? restated(record, `${record.summary} (the project is governed whole again)`, {
            takenBackFrom: region,
          })
        : record;
  }
  return { own: next, moved };
}

/**
 * The state to save when the stored one changed after this run read it (`base`): what this run
 * decided (`mine`) laid over what is stored now (`theirs`). Per key, a record this run changed,
 * added or resolved is taken as this run has it (it published that); a record it left as it read
 * it is taken as stored now, added or removed by the other writer; a record it resolved is removed
 * unless the other writer began a new episode of it since (another `firingSince`). The other
 * writer of a project's conditions while a run holds its lease is a run refused the lease, saving
 * its `governor.degraded` (reason lease): kept here, resolved by the next run that judges the project.
 */
export function rebaseConditions(
  base: ConditionState,
  mine: ConditionState,
  theirs: ConditionState,
): ConditionState {
  const next: ConditionState = { ...theirs };
  for (const key of new Set([...Object.keys(base), ...Object.keys(mine)])) {
    const record = mine[key];
    const read = base[key];
    if (JSON.stringify(record) === JSON.stringify(read)) continue;
    if (record !== undefined) next[key] = record;
    // A resolve ends the episode this run read; one the other writer began since (it found this
    // run's resolve in the outbox, and fired anew) is theirs to keep, for the next run to resolve.
    else if (next[key]?.firingSince === read?.firingSince) delete next[key];
  }
  return next;
}
