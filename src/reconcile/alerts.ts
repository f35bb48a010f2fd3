import { alertBytes, MAX_ATTRIBUTE_VALUE_BYTES, type Alert } from '../core/alert.js';
import { unjudgedMisconfigured } from '../core/audit.js';
import { conditionsAsLeft } from '../core/conditions.js';
import { durationMs } from '../core/duration.js';
import {
  decideNotifications,
  DEMAND_RESOLVE_AFTER_MS,
  endedInOutbox,
  keptState,
  rebaseConditions,
  withStoredMessages,
} from '../core/notify.js';
import { poolKey } from '../core/pool.js';
import { lookAtOtherUnits, newestLedger, rollPressure } from '../core/quota-pressure.js';
import { quotaRequestsDegradedAlert } from '../core/quota-requests.js';
import {
  alertMessage,
  contendedAlert,
  degradedAlert,
  goneConditions,
  heldDeliveryCondition,
  judgedScope,
  messageCuts,
  metricsDegradedAlert,
  outboxDroppedAlert,
  overAfterRaisesAlerts,
  plannedEvents,
  quotaChanges,
  runEvents,
  runJudgedConditions,
  unjudgedConditions,
  unraisedAlerts,
  unverifiedRaisesAlerts,
} from '../core/run-alerts.js';
import { ConflictError, cutText, errorMessage, faultText, GovernorError } from '../core/errors.js';
import {
  DEFAULT_OUTBOX_LIMIT,
  fromTheFuture,
  MAX_OUTBOX_BYTES,
  PartialPublishError,
  type Outbox,
  type ConditionState,
  type StateStore,
  type VersionedConditions,
} from '../ports/index.js';
import type { Logger } from '../log.js';
import { beforeDeadline } from './act.js';
import {
  adoptFromOtherUnits,
  handOver,
  stoppedUnits,
  takeBack,
  unitsRanSince,
} from './other-units.js';
import { entry, fitted, logSetAside, logUnreadableCount, moveLegacyUndelivered } from './outbox.js';
import { runQuotaRequests } from './quota-requests.js';
import { alertGrace, leaseLost, type Decided, type Run } from './run.js';

/**
 * The run's alerts, once its writes are done: per held project, the conditions and events decided
 * against the stored state, published from the outbox, and the state saved.
 */

/**
 * alertProject for every held project, one after another (each bounded by the alert grace), and
 * each on its own: a project whose alerting fails (its run records or conditions unreadable, its
 * store failing) does not keep the projects after it from publishing theirs. Otherwise one such
 * project, failing at every run, would hold back every other project's alerts for good. Every
 * project is tried; then the run fails with each project's error, the first as the cause.
 */
export async function alertEachProject(
  run: Run,
  held: readonly string[],
  decided: Decided,
  metricErrors: ReadonlyMap<string, string>,
): Promise<void> {
  const failures: { project: string; error: unknown }[] = [];
  for (const project of held) {
    try {
      await alertProject(run, project, decided, metricErrors.get(project) ?? null);
    } catch (error) {
      failures.push({ project, error });
    }
  }
  const [first] = failures;
  if (first === undefined) return;
  // Named even when one failed: the error itself (a store's UNAVAILABLE) may not say which.
  if (failures.length === 1)
    throw new GovernorError(`alerting failed in ${first.project}: ${errorMessage(first.error)}`, {
      cause: first.error,
    });
  throw new GovernorError(
    `alerting failed in ${failures.length} projects: ${failures
      .map((f) => `${f.project}: ${errorMessage(f.error)}`)
      .join('; ')}`,
    { cause: first.error },
  );
}

/**
 * The project's alerts: the plan's conditions and the degraded ones, decided against the stored
 * state; this run's events, stored in the outbox (replacing its planned ones); then the outbox
 * published oldest first with the conditions before this run's events, what was acknowledged
 * removed, and the state saved. Alerts and their state get a short grace after the write
 * deadline, never more: the run must answer before the function's timeout (terraform keeps 15 s
 * between the two).
 */
async function alertProject(
  run: Run,
  project: string,
  decided: Decided,
  metricsError: string | null,
): Promise<void> {
  const { deps, report, ctx } = run;
  const { plan, problems } = decided;
  const audited = new Set(decided.audited);
  const grace = alertGrace(run);
  // Told as the writes left the fleet, not as planned (a lowering denied): core/conditions.ts.
  const conditions = conditionsAsLeft(
    [...plan.alerts, ...decided.misconfigured].filter((a) => a.project === project),
    plan,
    report.writes,
    run.mode,
  );
  const degraded = degradedAlert(ctx, project, problems);
  if (degraded) conditions.push(degraded);
  if (metricsError !== null) conditions.push(metricsDegradedAlert(ctx, project, metricsError));
  const contended = contendedAlert(ctx, project, report.writes);
  if (contended) conditions.push(contended);
  conditions.push(...overAfterRaisesAlerts(ctx, project, run.overAfterRaises, conditions));
  conditions.push(...unverifiedRaisesAlerts(ctx, project, run.unverifiedRaises));
  conditions.push(...unraisedAlerts(ctx, project, plan, report.writes));
  const lastRun = await beforeDeadline(
    () => deps.store.listRuns(project),
    grace,
    `reading the last run of ${project}`,
  );
  // Records are stamped on the wall clock (the store's, as the lease), not the plan's time.
  const ahead = lastRun.filter((r) => fromTheFuture(r, run.wall()));
  if (ahead.length > 0) {
    deps.log.log(
      'WARNING',
      `${project}: ${ahead.length} run record(s) dated ahead of the wall clock (${ahead
        .slice(0, 3)
        .map((r) => `${r.runId} at ${r.startedAt}`)
        .join(
          ', ',
        )}${ahead.length > 3 ? ', …' : ''}): a writer with a wrong clock, or a hand edit; they are not taken as the last run and are pruned first`,
    );
  }
  await moveLegacyUndelivered(run, project, lastRun);
  const stopped = await stoppedUnits(run, project, lastRun);
  if (stopped) conditions.push(stopped);
  // A restore's plan is not the governing one: it says nothing of pressure.
  const quotaEvents: Alert[] = [];
  // The quotas quota.changed compares with: the unit's last run's, or after a gap the newest its
  // project's other units read (see adoptFromOtherUnits).
  let seenQuotas = lastRun[0]?.quotas;
  // Whether this run looked at the other units of its project (a gap in its own ledger).
  let looked = false;
  const settledRequests: Alert[] = [];
  const withdrawn: string[] = [];
  if (!run.options.restore) {
    const own = newestLedger(lastRun, ctx.at);
    const look =
      lookAtOtherUnits(own, ctx.at) ||
      (run.options.wholeNow === true &&
        own !== undefined &&
        (await unitsRanSince(run, project, own.at)));
    const adopted = look ? await adoptFromOtherUnits(run, project, own, lastRun[0]) : null;
    const before = adopted ? adopted.ledger : own;
    if (adopted) seenQuotas = adopted.quotas;
    looked = adopted !== null;
    const requests = await runQuotaRequests({
      policy: run.policy,
      port: deps.quotaRequests,
      quotas: deps.ports.quotas,
      ctx,
      project,
      ledger: rollPressure(before, plan, project, run.policy),
      planned: new Set(plan.pools.filter((p) => p.project === project).map(poolKey)),
      mode: run.mode,
      log: deps.log,
      orphans: run.quotaOrphans.get(project) ?? [],
      // The planned quota.requested, stored before the preference is filed (docs/rules.md, "Alerts").
      stage: (planned) =>
        beforeDeadline(
          () => deps.store.putOutbox(project, [entry(run, planned, 'pending-outcome')]),
          grace,
          `storing the planned quota request of ${project}`,
        ).then(() => undefined),
      bound: (call, what) => beforeDeadline(call, grace, what),
      ...(run.options.confirmQuotaRequest ? { confirm: run.options.confirmQuotaRequest } : {}),
      leaseLost: (p) => leaseLost(run, p),
    });
    report.pressure[project] = requests.ledger;
    quotaEvents.push(...requests.events);
    settledRequests.push(...requests.settled);
    withdrawn.push(...requests.withdrawn);
    const degradedRequests = quotaRequestsDegradedAlert(ctx, project, requests.failures);
    if (degradedRequests) conditions.push(degradedRequests);
  } else {
    // A restore rolls no pressure: its record carries the ledger as the records just read hold it
    // (run-record.ts recordRuns reads them again only for a run that never got here).
    const kept = newestLedger(lastRun, ctx.at);
    if (kept) report.pressure[project] = kept;
  }
  const events = [
    ...runEvents(ctx, project, plan, report.writes, run.mode),
    ...quotaChanges(ctx, project, plan, seenQuotas),
    ...quotaEvents,
  ];
  const loaded = await beforeDeadline(
    () => deps.store.loadConditions(project),
    grace,
    `reading the alert state of ${project}`,
  );
  logUnreadableConditions(run, project, loaded);
  // A regional unit first takes over what its project left firing when it was governed whole;
  // a project governed whole again after a gap, what its regional units left; one the fan-out
  // governs whole now, at every run (a unit's state read each; nothing written when it is empty),
  // so that a split however short, or followed by a command line's run, leaves nothing behind.
  const { state: previous, version } =
    looked || run.options.wholeNow === true
      ? await takeBack(run, project, await handOver(run, project, loaded))
      : await handOver(run, project, loaded);
  // Ids first: the planned events carry the ids their real events get here.
  const decidedEvents = decideNotifications({
    previous: {},
    current: [],
    events,
    now: ctx.at,
    renotifyAfterMs: 0,
    runId: ctx.runId,
    scope: [],
  }).publish;
  const outcome = new Set(decidedEvents.map((e) => e.id));
  const notHappened = [
    ...plannedEvents(ctx, project, plan)
      .map((e) => e.id)
      .filter((id) => !outcome.has(id)),
    ...withdrawn,
  ];
  await beforeDeadline(
    async () => {
      // Settled planned requests of earlier runs keep their ids (and so their place).
      await deps.store.putOutbox(
        project,
        [...settledRequests, ...decidedEvents].map((e) => entry(run, e, 'ready')),
      );
      await deps.store.removeOutbox(project, notHappened);
    },
    grace,
    `storing the events of ${project}`,
  );
  const box = await beforeDeadline(
    () => deps.store.listOutbox(project),
    grace,
    `reading the outbox of ${project}`,
  );
  logSetAside(run, project, box);
  logUnreadableCount(run, project, box);
  if (box.dropped > 0) {
    conditions.push(
      outboxDroppedAlert(
        ctx,
        project,
        box.dropped,
        box.entries.length,
        run.unreadableCounts.has(project),
      ),
    );
  }
  const ready = box.entries.filter((e) => e.state === 'ready').map((e) => e.alert);
  const earlier = ready.filter((a) => a.runId !== ctx.runId);
  const mine = ready.filter((a) => a.runId === ctx.runId);
  // The condition messages a run that died stored and may not have sent (core/notify.ts
  // withStoredMessages): counted as sent, for they go out again below under their own ids.
  const earlierConditions = earlier.filter((a) => a.status !== 'event');
  const stored = withStoredMessages(previous, earlierConditions);
  // A unit's failed delivery (organisation scale) is resolved by a run that succeeds, not by one
  // whose writes failed (the function answers it 500, and the delivery fails again). Held as the
  // state counts it with the outbox's messages: a unit may have stored and saved it since this run
  // read the state.
  if (report.writes.some((w) => w.project === project && w.outcome === 'failed'))
    conditions.push(...heldDeliveryCondition(ctx, project, stored));
  const notifications = decideNotifications({
    previous: stored,
    current: conditions,
    events: [],
    now: ctx.at,
    renotifyAfterMs: durationMs(run.policy.alerts.renotifyAfter),
    resolveAfterMs: DEMAND_RESOLVE_AFTER_MS,
    runId: ctx.runId,
    // A restore judges no condition (its plan is not the governing one): none may resolve.
    scope: run.options.restore ? [] : judgedScope(project, plan, problems, Object.values(stored)),
    // The run's own conditions resolve where it judged them, though a pool stays unknown.
    judged: run.options.restore ? [] : runJudgedConditions(ctx, project),
    unjudged: [
      ...unjudgedConditions(project, plan),
      ...unjudgedMisconfigured(decided.unjudgedAudit, stored),
    ],
    // A service the audit judged is there, whether the plan has it or not (manual scaling).
    gone: run.options.restore
      ? []
      : goneConditions(project, plan, problems, stored).filter((k) => !audited.has(k)),
  });
  // The conditions' messages are stored in the outbox before the state that counts them is saved
  // and before they are published, as events are: a run killed at any step leaves them there, and
  // the next run sends them under the same ids (a subscriber drops the second copy by id) rather
  // than deciding them again under its own. Fitted as stored, so that the copy sent now and any
  // sent again later are the same message.
  const decidedConditions = notifications.publish.map((a) => entry(run, a, 'ready'));
  const outgoing = conditionsFirst([...ready, ...decidedConditions.map((e) => e.alert)]);
  // Stored as far as they leave the outbox room for events (roomFor): more would have its bound
  // drop its oldest entries, events among them, which are kept until published. The rest go out
  // from here alone, and the state counts them as sent once Pub/Sub took them.
  const storing = decidedConditions.slice(
    0,
    roomFor(
      box.entries.map((e) => alertBytes(e.alert)),
      decidedConditions.map((e) => alertBytes(e.alert)),
    ),
  );
  // What the outbox's bound dropped all the same (a store holding fewer entries): its oldest
  // entries, all of them among `outgoing` when it holds nothing else (no entry pending an outcome).
  // Counted as dropped, for the next announcement, unless every message of `outgoing` goes out:
  // then none of them was lost.
  let droppedHere = 0;
  for (let i = 0; i < storing.length; i += CONDITIONS_PER_PUT) {
    const some = storing.slice(i, i + CONDITIONS_PER_PUT);
    droppedHere += await beforeDeadline(
      () => deps.store.putOutbox(project, some),
      grace,
      `storing the alerts of ${project}`,
    );
  }
  const sentIfAllOut = box.entries.every((e) => e.state === 'ready') ? droppedHere : 0;
  // Some of this run's messages not stored, or dropped by the bound: their only copy is the
  // publish below. The state saved before it counts only those the outbox kept (core/notify.ts
  // keptState); the rest are counted once Pub/Sub took them, so that a run dying in between
  // leaves them to be decided again, not lost as sent.
  const kept =
    droppedHere > 0
      ? new Set(
          (
            await beforeDeadline(
              () => deps.store.listOutbox(project),
              grace,
              `reading the outbox of ${project} again`,
            )
          ).entries.map((e) => e.alert.id),
        )
      : storing.length < decidedConditions.length
        ? new Set(storing.map((e) => e.alert.id))
        : null;
  const counted = kept === null ? notifications.next : keptState(stored, notifications, kept);
  // Saved before the publish: what it counts as sent is in the outbox until Pub/Sub takes it. Over
  // another writer's save, the stored messages are counted in what it saved too, and this run's
  // decisions laid over that (core/notify.ts rebaseConditions): so a firing a run refused the
  // lease stored, saved and left here, which this run resolves, is not kept firing by its save.
  const saved = await saveRebased(run, project, stored, counted, version, earlierConditions);
  // Some messages may go out when others fail (another pool's, on its own ordering key): those
  // leave the outbox; what did not go out stays there, and the next run sends it again.
  await publish(run, project, outgoing, mine, (acknowledged) =>
    removeAcknowledged(run, project, {
      acknowledged,
      outgoing,
      dropped: box.dropped,
      announced: notifications.publish,
    }),
  );
  if (counted !== notifications.next)
    await saveRebased(
      run,
      project,
      saved.state,
      rebaseConditions(counted, notifications.next, saved.state),
      saved.version,
    );
  // Once every message is acknowledged. The dropped count is cleared only when this run announced
  // it: while governor.degraded (reason outbox) is already firing and not due again, drops since
  // are kept for the message that is. What the bound dropped for this run's conditions went out.
  await beforeDeadline(
    () =>
      deps.store.removeOutbox(
        project,
        outgoing.map((a) => a.id),
        (announcesDrops(notifications.publish) ? box.dropped : 0) + sentIfAllOut,
      ),
    grace,
    `removing the published alerts of ${project}`,
  );
}

/**
 * Condition messages stored per call: a project's first run may fire thousands at once (a pool of
 * thousands of services starved), and one Firestore transaction of them all outlasted the store's
 * time bound. Each call is whole or nothing; a run killed between two has the next run send what
 * was stored and decide the rest again (none of it was sent).
 */
const CONDITIONS_PER_PUT = 200;

/**
 * How many of `adding` (a run's condition messages, each one's alert JSON in bytes) to store after
 * `held` (the outbox's entries): as long as the outbox stays within half its bound at the default
 * (DEFAULT_OUTBOX_LIMIT entries, MAX_OUTBOX_BYTES together: ports/state.ts outboxOverflow). The
 * other half is for events, which are kept until published: a run firing thousands of conditions
 * while Pub/Sub is down would otherwise fill the outbox, and the next events stored (its own, or
 * the next run's, before its publish) would drop the oldest events to make room. A condition
 * message not stored is no loss: the state counts it as sent only once Pub/Sub took it.
 */
function roomFor(held: readonly number[], adding: readonly number[]): number {
  let fit = 0;
  let bytes = held.reduce((sum, b) => sum + b, 0);
  for (const b of adding) {
    bytes += b;
    if (held.length + fit + 1 > DEFAULT_OUTBOX_LIMIT / 2 || bytes > MAX_OUTBOX_BYTES / 2) break;
    fit += 1;
  }
  return fit;
}

/**
 * The messages in the order they go out: each run's, in the order its first message comes, and of
 * one run its conditions (`resolved`, then `firing`, as decided) before its events, as that run
 * published them. A run that died leaves its events in the outbox before its conditions (the
 * events are stored first); sent again, they keep the order of the first attempt.
 */
function conditionsFirst(messages: readonly Alert[]): Alert[] {
  const runs = [...new Set(messages.map((a) => a.runId))];
  return runs.flatMap((runId) => {
    const of = messages.filter((a) => a.runId === runId);
    return [...of.filter((a) => a.status !== 'event'), ...of.filter((a) => a.status === 'event')];
  });
}

/**
 * The stored condition records this version cannot read (`VersionedConditions.unreadable`: a
 * newer version's alert type or field, a hand edit), in one ERROR line per run: how many, the
 * first few keys and why. The run goes on without them: they are not published, re-notified or
 * resolved here, and the store keeps them as stored for the version that reads them.
 */
function logUnreadableConditions(run: Run, project: string, loaded: VersionedConditions): void {
  const unreadable = loaded.unreadable ?? [];
  if (unreadable.length === 0) return;
  const first = unreadable
    .slice(0, 3)
    .map((u) => `${cutText(u.key, 200)} (${u.faults.map(faultText).join('; ') || 'no detail'})`);
  const more = unreadable.length > 3 ? `, and ${unreadable.length - 3} more` : '';
  run.deps.log.log(
    'ERROR',
    `${project}: ${unreadable.length} stored alert condition(s) cannot be read by this version and are left as stored, neither published nor resolved by it: ${first.join(', ')}${more}. A newer version of the governor wrote them (it reads them again), or a hand edit did; see docs/applying.md, "Upgrades and rollbacks"`,
  );
}

/** Attempts at saving a run's condition state over another writer's before the run fails. */
const SAVE_ATTEMPTS = 3;

/**
 * Saves the condition state this run decided from `base` (read at `version`, with `folded`, the
 * outbox's condition messages of earlier runs, counted in it: core/notify.ts withStoredMessages).
 * When another writer saved in between (a run refused the lease, or a unit whose delivery failed,
 * saving its `governor.degraded`), the state is read again, `folded` counted in it as in `base`,
 * and this run's decisions are laid over it (core/notify.ts rebaseConditions), rather than failing
 * a run whose alerts are already stored to go out: its next run would decide them again. Counted
 * on both sides, a message the other writer stored and saved, which this run resolves, is resolved
 * in the state saved, not kept firing as the other writer saved it.
 * Returns the state saved and its version.
 */
async function saveRebased(
  run: Run,
  project: string,
  base: ConditionState,
  mine: ConditionState,
  version: string | null,
  folded: readonly Alert[] = [],
): Promise<{ state: ConditionState; version: string }> {
  return saveConditionsRebased(
    { store: run.deps.store, log: run.deps.log, bound: alertGrace(run) },
    project,
    base,
    mine,
    version,
    folded,
  );
}

/**
 * {@link saveRebased} for a caller outside a run (sendWithoutLease, when it sends without the
 * outbox): each call to the store bounded by `bound`, as beforeDeadline takes it.
 */
async function saveConditionsRebased(
  deps: {
    store: Pick<StateStore, 'saveConditions' | 'loadConditions'>;
    log: Logger;
    bound: Parameters<typeof beforeDeadline>[1];
  },
  project: string,
  base: ConditionState,
  mine: ConditionState,
  version: string | null,
  folded: readonly Alert[] = [],
): Promise<{ state: ConditionState; version: string }> {
  return saveVersioned(deps, project, mine, version, (fresh) => {
    deps.log.log(
      'INFO',
      `${project}: the alert state was saved by another run since this one read it; this run's conditions are laid over it`,
    );
    return Promise.resolve(rebaseConditions(base, mine, withStoredMessages(fresh.state, folded)));
  });
}

/**
 * Saves `first`, a condition state decided over the one stored at `version`. When another writer
 * saved since (a version conflict), the state is read again and `redo` decides what to save over
 * it, up to SAVE_ATTEMPTS saves in all; null from either: nothing to save. Returns the state saved
 * and its version, or null when nothing was saved; other errors are thrown as they come.
 */
async function saveVersioned<T extends ConditionState | null>(
  deps: {
    store: Pick<StateStore, 'saveConditions' | 'loadConditions'>;
    bound: Parameters<typeof beforeDeadline>[1];
  },
  project: string,
  first: T,
  version: string | null,
  redo: (fresh: VersionedConditions) => Promise<T>,
): Promise<T extends ConditionState ? { state: ConditionState; version: string } : null> {
  type Saved = T extends ConditionState ? { state: ConditionState; version: string } : null;
  let state: ConditionState | null = first;
  let expected = version;
  for (let attempt = 1; ; attempt += 1) {
    if (state === null) return null as Saved;
    const next: ConditionState = state;
    try {
      const saved = await beforeDeadline(
        () => deps.store.saveConditions(project, next, expected),
        deps.bound,
        `saving the alert state of ${project}`,
      );
      return { state: next, version: saved } as Saved;
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= SAVE_ATTEMPTS) throw e;
    }
    const fresh = await beforeDeadline(
      () => deps.store.loadConditions(project),
      deps.bound,
      `reading the alert state of ${project} again`,
    );
    state = await redo(fresh);
    expected = fresh.version;
  }
}

/**
 * A condition told by a process that does not hold the project's lease, so owns neither its
 * condition state nor its outbox: the `governor.degraded` (reason `lease`) of a run refused the
 * lease, and (reason `delivery`) of an organisation's unit whose delivery failed. It keeps the
 * outbox's guarantee all the same (docs/alerts.md): the message
 * is stored in the outbox with its id, then the state that counts it is saved, then it is
 * published and removed. A process killed in between leaves it there: the next such process finds
 * it (its `firing` counted as sent, core/notify.ts withStoredMessages) and sends it again under
 * its first id, and so does the holder's next run, which resolves it.
 *
 * Only through the store's atomic calls, never over the holder's writes: the entry is added to the
 * outbox (one store call, which keeps the holder's entries; stored only while the outbox has room
 * for it below half its bound, as the holder's own conditions are: roomFor), and the state is
 * saved versioned. When the holder saved since, nothing is laid over its state blindly: the state
 * is read again with the outbox, and what the outbox still holds of this condition (this
 * message, the holder's `resolved` of it) is folded into it ({@link saveCounting}). A message the
 * outbox no longer holds was published and removed by the holder's run, whose saved state
 * counts it already (resolved, or firing on).
 *
 * `loaded`: the state as the caller read it; null when it could not be read, and then, as when the
 * outbox cannot be read or written, the message is published without it and the state saved
 * after (at least once: the next such process may send it again under its own id). `publish`
 * throws when the messages did not all go out; they stay in the outbox then, counted as sent, and
 * the next process sends them under the same ids. Returns the messages sent (those left by a
 * process that died, then the new one; none when the condition fires already) and the error the
 * state's save failed with, if it did: the message went out all the same, and stays in the outbox
 * for the next process to count.
 */
export async function sendWithoutLease(
  deps: {
    store: Pick<
      StateStore,
      'loadConditions' | 'saveConditions' | 'listOutbox' | 'putOutbox' | 'removeOutbox'
    >;
    log: Logger;
    bound: Parameters<typeof beforeDeadline>[1];
    wall: () => number;
  },
  project: string,
  condition: Alert,
  decide: { now: string; runId: string; renotifyAfterMs: number },
  loaded: VersionedConditions | null,
  publish: (outgoing: Alert[]) => Promise<void>,
): Promise<{ sent: Alert[]; unsaved?: unknown }> {
  const { store, log, bound } = deps;
  const key = condition.dedupKey;
  const what = `the ${condition.type} alert (reason ${String(condition.details['reason'])}) of ${project}`;
  let box: Outbox | null = null;
  if (loaded !== null) {
    try {
      box = await beforeDeadline(
        () => store.listOutbox(project),
        bound,
        `reading the outbox of ${project}`,
      );
    } catch (e) {
      log.log(
        'WARNING',
        `${project}: the outbox could not be read, so ${what} is sent without it: ${errorMessage(e)}`,
      );
    }
  }
  // What the outbox holds of this condition is counted as sent (core/notify.ts withStoredMessages),
  // the holder's `resolved` too, whether or not its state counts it yet: a condition it resolved
  // fires anew here, as a new episode, rather than be taken as still firing and left untold. A
  // `firing` a process that died left is sent again under its id (not decided again under a new
  // one), unless a `resolved` of its episode follows it: the holder's run sends those two.
  const told = box === null ? [] : toldOf(box, key);
  const ended = endedInOutbox(told);
  const leftovers = told.filter((a) => a.status === 'firing' && !ended.has(a.id));
  const notifications = decideNotifications({
    previous: loaded === null ? {} : withStoredMessages(loaded.state, told),
    current: [condition],
    events: [],
    now: decide.now,
    renotifyAfterMs: decide.renotifyAfterMs,
    runId: decide.runId,
    scope: [],
  });
  const fresh = notifications.publish.map((a) =>
    entry({ deps: { log }, wall: deps.wall }, a, 'ready'),
  );
  const outgoing = [...leftovers, ...fresh.map((e) => e.alert)];
  if (outgoing.length === 0) return { sent: [] };
  let stored = false;
  if (loaded !== null && box !== null) {
    const room = roomFor(
      box.entries.map((e) => alertBytes(e.alert)),
      fresh.map((e) => alertBytes(e.alert)),
    );
    if (room < fresh.length) {
      log.log(
        'WARNING',
        `${project}: the outbox is over half its bound, so ${what} is sent without it`,
      );
    } else {
      try {
        if (fresh.length > 0)
          await beforeDeadline(() => store.putOutbox(project, fresh), bound, `storing ${what}`);
        stored = true;
      } catch (e) {
        log.log(
          'WARNING',
          `${project}: ${what} could not be stored in the outbox, so it is sent without it: ${errorMessage(e)}`,
        );
      }
    }
  }
  let unsaved: unknown;
  let saved = false;
  if (stored && loaded !== null && box !== null) {
    try {
      await saveCounting(deps, project, loaded, [...told, ...fresh.map((e) => e.alert)], key);
      saved = true;
    } catch (e) {
      unsaved = e;
    }
  }
  try {
    await publish(outgoing);
  } catch (e) {
    // The publish's error is thrown; the save's, which would be lost with it, is told here.
    if (unsaved !== undefined)
      log.log(
        'WARNING',
        `${project}: the alert state counting ${what} could not be saved before its publish failed; the message stays in the outbox for the next process: ${errorMessage(unsaved)}`,
      );
    throw e;
  }
  if (saved) {
    try {
      await beforeDeadline(
        () =>
          store.removeOutbox(
            project,
            outgoing.map((a) => a.id),
          ),
        bound,
        `removing the published ${what}`,
      );
    } catch (e) {
      log.log(
        'WARNING',
        `${project}: could not remove from the outbox ${what}, published; the next run sends it again, under the same id: ${errorMessage(e)}`,
      );
    }
  } else if (!stored && loaded !== null) {
    try {
      await saveConditionsRebased(deps, project, loaded.state, notifications.next, loaded.version);
    } catch (e) {
      unsaved = e;
    }
  }
  return unsaved === undefined ? { sent: outgoing } : { sent: outgoing, unsaved };
}

/** The condition messages of `key` ready in the outbox, oldest first. */
function toldOf(box: Outbox, key: string): Alert[] {
  return box.entries
    .filter((e) => e.state === 'ready' && e.alert.dedupKey === key && e.alert.status !== 'event')
    .map((e) => e.alert);
}

/**
 * Saves `loaded` with `told` (the outbox's messages of condition `key`, this process's among them)
 * counted as sent (withStoredMessages: a `resolved` the holder stored after a firing undoes it).
 * Versioned: when another writer saved since, the state and the outbox are read again and what the
 * outbox still holds of `key` is counted over the state as stored now. Nothing is saved when the
 * state counts it all already.
 */
async function saveCounting(
  deps: {
    store: Pick<StateStore, 'loadConditions' | 'saveConditions' | 'listOutbox'>;
    log: Logger;
    bound: Parameters<typeof beforeDeadline>[1];
  },
  project: string,
  loaded: VersionedConditions,
  told: readonly Alert[],
  key: string,
): Promise<void> {
  // What to save over `state`: it with `told` counted; null when it counts them all already.
  const counted = (state: ConditionState, told: readonly Alert[]): ConditionState | null => {
    const next = withStoredMessages(state, told);
    return JSON.stringify(next) === JSON.stringify(state) ? null : next;
  };
  await saveVersioned(deps, project, counted(loaded.state, told), loaded.version, async (fresh) => {
    const box = await beforeDeadline(
      () => deps.store.listOutbox(project),
      deps.bound,
      `reading the outbox of ${project} again`,
    );
    deps.log.log(
      'INFO',
      `${project}: the alert state was saved by another run since this one read it; what the outbox holds of ${key} is counted over it`,
    );
    return counted(fresh.state, toldOf(box, key));
  });
}

/**
 * Whether the alerts that went out announce the outbox's dropped count: governor.degraded with
 * reason outbox. Only then may the store's count be cleared.
 */
function announcesDrops(sent: readonly Alert[]): boolean {
  return sent.some((a) => a.type === 'governor.degraded' && a.details['reason'] === 'outbox');
}

/**
 * The ids of the messages a failed publish still got acknowledged: a PartialPublishError (the
 * sink port's) lists one result per message given, `undefined` for those not published. Any other
 * error: none.
 */
function acknowledgedIds(error: unknown, outgoing: readonly Alert[]): Set<string> {
  if (!(error instanceof PartialPublishError) || error.results.length !== outgoing.length)
    return new Set();
  const { results } = error;
  return new Set(outgoing.filter((_, i) => results[i] !== undefined).map((a) => a.id));
}

/**
 * After a publish that failed part-way: the acknowledged messages leave the outbox (and the
 * dropped count, if its announcement went out). Best effort: if the store fails too, the run's
 * error stands and the next run sends them again, under the same ids.
 */
async function removeAcknowledged(
  run: Run,
  project: string,
  p: {
    acknowledged: ReadonlySet<string>;
    outgoing: readonly Alert[];
    dropped: number;
    announced: readonly Alert[];
  },
): Promise<void> {
  // The count of dropped events is announced by governor.degraded (reason outbox): cleared only
  // when that message went out.
  const announced = announcesDrops(p.announced.filter((a) => p.acknowledged.has(a.id)));
  try {
    await beforeDeadline(
      () =>
        run.deps.store.removeOutbox(
          project,
          p.outgoing.filter((a) => p.acknowledged.has(a.id)).map((a) => a.id),
          announced ? p.dropped : 0,
        ),
      alertGrace(run),
      `removing the published alerts of ${project}`,
    );
  } catch (e) {
    run.deps.log.log(
      'WARNING',
      `${project}: could not remove from the outbox the ${p.acknowledged.size} alert(s) published before the publish failed; the next run sends them again, under the same ids: ${errorMessage(e)}`,
    );
  }
}

/** Publishes and logs the project's alerts; on failure keeps this run's events in the report. */
export async function publish(
  run: Run,
  project: string,
  outgoing: Alert[],
  decided: Alert[],
  afterPartial?: (acknowledged: ReadonlySet<string>) => Promise<void>,
): Promise<void> {
  const { deps, report } = run;
  if (outgoing.length === 0) return;
  // Conditions are not stored fitted, and a stored message may be larger than the governor stores.
  outgoing = outgoing.map((a) => fitted(run, a));
  // Or name more than a Pub/Sub attribute or ordering key holds: those are cut (alertMessage).
  for (const a of outgoing) {
    const cuts = messageCuts(a);
    if (cuts.length > 0)
      deps.log.log(
        'WARNING',
        `${project}: the ${a.type} ${a.status === 'event' ? 'event' : 'alert'} ${cutText(a.id, 200)} names more than Pub/Sub takes in an attribute or an ordering key (${MAX_ATTRIBUTE_VALUE_BYTES} bytes): ${cuts.join(', ')} cut to fit; its data names them whole`,
      );
  }
  const sink = deps.sink;
  if (sink) {
    try {
      await beforeDeadline(
        () => sink.publish(outgoing.map(alertMessage)),
        alertGrace(run),
        `publishing ${outgoing.length} alert(s) of ${project}`,
      );
    } catch (e) {
      // What went out is told as published; the rest is decided again by the next run (the
      // state is not saved for it), events stay in the outbox, and this run's record names its
      // own that did not go out.
      const sent = acknowledgedIds(e, outgoing);
      announce(
        run,
        outgoing.filter((a) => sent.has(a.id)),
      );
      report.undelivered.push(...decided.filter((a) => !sent.has(a.id)));
      if (sent.size > 0) await afterPartial?.(sent);
      throw e;
    }
  }
  announce(run, outgoing);
}

/** Alerts Pub/Sub acknowledged: logged as alerts, and counted in the run's report. */
function announce(run: Run, published: readonly Alert[]): void {
  for (const a of published) {
    const severity =
      a.status !== 'firing' || a.severity === 'INFO'
        ? 'INFO'
        : a.severity === 'WARNING'
          ? 'WARNING'
          : 'ERROR';
    // `alert` marks the line as an alert, not a fault of the run: a terminal prints these as
    // alerts (from `report.alerts`), not as log lines (see ALERT_FIELD in log.ts).
    run.deps.log.log(severity, `alert ${a.type} ${a.status}: ${a.summary}`, { alert: a.dedupKey });
  }
  run.report.published += published.length;
  run.report.alerts.push(...published);
}
