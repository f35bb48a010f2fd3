import type { Alert } from '../core/alert.js';
import { discoveryKey } from '../core/discovery.js';
import { durationMs } from '../core/duration.js';
import type { ConditionState } from '../core/notify.js';
import { fanoutStaleAfter, type Policy } from '../core/policy.js';
import { alertMessage, deliveryFailedAlert, type FailedDelivery } from '../core/run-alerts.js';
import { splitUnits, unitLabel } from '../core/units.js';
import { staleReason, type WorkMessage } from '../core/work.js';
import type { Logger } from '../log.js';
import type { AlertSink, DiscoveryCacheStore, StateStore } from '../ports/index.js';
import { elapsedClock } from '../reconcile/elapsed.js';
import { beforeDeadline } from '../reconcile/act.js';
import { sendWithoutLease } from '../reconcile/alerts.js';
import { errorMessage } from '../core/errors.js';

/**
 * The unit side of the fan-out: may this work message be governed, and with which policy. A
 * message may only name a project the policy governs: one it lists, or one its discovery found
 * (the kept result, whatever its age). Anything else is refused before any read or write, so
 * that whoever can publish to the work topic cannot point the governor at another project.
 */
export type UnitDecision =
  /**
   * `region`: a regional unit (its state under `project@region`: src/core/units.ts).
   * `siblings`, for a regional unit: the project's regional units as the policy splits it now,
   * and when the discovery that counts them was found (a unit that stopped is noticed by the
   * others: reconcile/other-units.ts stoppedUnits). `wholeNow`, for a whole project of a policy
   * that splits projects: the fan-out governs it whole now, so it takes back what a split of it
   * left (ReconcileOptions.wholeNow).
   */
  | {
      kind: 'govern';
      policy: Policy;
      region?: string;
      siblings?: { regions: string[]; foundAt: string | null };
      wholeNow?: boolean;
    }
  | { kind: 'refuse'; reason: string }
  /** `why`: the staleness alone, without the unit's label. */
  | { kind: 'stale'; reason: string; why: string };

export async function decideUnit(
  policy: Policy,
  message: WorkMessage,
  deps: { cache: DiscoveryCacheStore; nowMs: number },
): Promise<UnitDecision> {
  const staleAfter = durationMs(fanoutStaleAfter(policy));
  const stale = staleReason(message, deps.nowMs, staleAfter);
  const label = unitLabel(message);
  if (stale) return { kind: 'stale', reason: `${label}: ${stale}`, why: stale };
  const { region } = message;
  // Only a policy that splits governs a project by region.
  if (region !== undefined && policy.fanout?.splitAbove === undefined) {
    return {
      kind: 'refuse',
      reason: `${label}: the policy sets no fanout.splitAbove, so it governs no project by region`,
    };
  }
  if (region !== undefined && policy.regions !== undefined && !policy.regions.includes(region)) {
    return {
      kind: 'refuse',
      reason: `${label}: the policy's regions (${policy.regions.join(', ')}) leave out ${region}`,
    };
  }
  let known = policy.projects.includes(message.project);
  const splits = policy.fanout?.splitAbove !== undefined;
  // A regional unit also needs its region counted by the kept discovery: the regions a run of
  // the whole project checks for regional leases (src/reconcile/unit-lease.ts); a whole project,
  // under a policy that splits, needs the kept discovery not to split it now (below). The run of
  // a whole project reads it again once its lease is held (src/reconcile/unit-lease.ts): a
  // dispatch may split the project between this read and that lease.
  const cached =
    (!known || region !== undefined || splits) && policy.discovery
      ? await deps.cache.loadDiscovery()
      : null;
  // Only what this policy's discovery found counts: a discovery kept from other scopes or filters
  // (the policy changed, and no dispatch has searched with it yet) may list a project the policy
  // now excludes. A dispatch with this policy searches again before it sends anything (its key
  // differs: org/discover.ts), so no message it sends is refused here.
  const ours =
    cached !== null && policy.discovery && cached.key === discoveryKey(policy.discovery)
      ? cached
      : null;
  const other =
    cached !== null && ours === null
      ? ` (the kept discovery was made with other discovery settings, at ${cached.foundAt}; the next dispatch searches again)`
      : '';
  if (!known) known = ours?.projects.includes(message.project) ?? false;
  if (!known) {
    return {
      kind: 'refuse',
      reason: `project ${message.project} is neither in the policy's projects nor among those its discovery found${other}`,
    };
  }
  if (region !== undefined && !ours?.services?.[message.project]?.[region]) {
    return {
      kind: 'refuse',
      reason: `${label}: the kept discovery counts no Cloud Run service of ${message.project} in ${region}, so no regional unit governs it${other}`,
    };
  }
  // The unit: the same policy, narrowed to its one project (its lease, state and run record),
  // and for a regional unit to its one region.
  // The regional units the fan-out splits the project into now (none: it governs it whole).
  const regions = splitUnits(
    [message.project],
    ours?.services,
    policy.fanout?.splitAbove,
    policy.regions,
  ).flatMap((u) => (u.region === undefined ? [] : [u.region]));
  // Likewise a regional message for a project the kept discovery does not split (now, or not
  // into this region): the dispatch sends that project whole, and a regional unit of it would
  // take over the whole project's project-wide conditions and judge them under its own keys.
  if (region !== undefined && !regions.includes(region)) {
    return {
      kind: 'refuse',
      reason: `${label}: the kept discovery does not split ${message.project} into regional units (it counts no more than fanout.splitAbove services, or in one region); it is governed whole`,
    };
  }
  if (region === undefined) {
    // A message of the whole project while the kept discovery splits it was sent before the split
    // (or by someone else): the dispatch that split it sent its regional units, which govern it. A
    // run of the whole project would hold each of them off while it runs, and, told that the
    // fan-out governs the project whole (wholeNow), take back what they keep firing.
    if (regions.length > 0) {
      return {
        kind: 'refuse',
        reason: `${label}: the kept discovery splits it into regional units (${regions.join(', ')}), which govern it; a message of the whole project is from before the split`,
      };
    }
    return {
      kind: 'govern',
      policy: { ...policy, projects: [message.project] },
      ...(splits ? { wholeNow: true } : {}),
    };
  }
  return {
    kind: 'govern',
    policy: { ...policy, projects: [message.project], regions: [region] },
    region,
    siblings: { regions, foundAt: ours?.foundAt ?? null },
  };
}

/**
 * Alerts a failed delivery that was, or may be, the last of its work message (core/work.ts
 * deliveryVerdict), before the unit answers: governor.degraded (reason delivery), a condition of
 * the project's state, so that it fires once per episode (again after `renotifyAfter`) and the
 * project's next run that reads everything resolves it. Pub/Sub then dead-letters the message
 * (https://cloud.google.com/pubsub/docs/handling-failures#dead_letter_topic), where the module's
 * alert policy fires as well.
 *
 * The unit holds no lease here (its run gave it back; another run may hold it), so the alert goes
 * through the outbox with the store's atomic calls only (reconcile/alerts.ts sendWithoutLease):
 * stored with its id before the state is saved and before it is published, so that a unit killed
 * in between, or whose publish failed, has the next failed delivery, or the project's next run,
 * send it again under the same id.
 *
 * Nothing here may hide the alert: when the condition state or the outbox cannot be read the alert
 * is published anyway (it may repeat, under another id); when it cannot be published, an ERROR line
 * carries it whole, which Cloud Logging keeps. Bounded by `timeoutMs` (the function must still answer within its timeout).
 * Says whether the alert was published (with it), fires already (published before, within
 * `renotifyAfter`: nothing sent), or could not be published (carried by the ERROR line only).
 */
export async function alertFailedDelivery(
  policy: Policy,
  deps: {
    store: Pick<
      StateStore,
      'loadConditions' | 'saveConditions' | 'listOutbox' | 'putOutbox' | 'removeOutbox'
    >;
    sink: AlertSink | null;
    log: Logger;
    nowMs: number;
    runId: string;
    timeoutMs: number;
  },
  failed: FailedDelivery,
): Promise<DeliveryAlertOutcome> {
  const { store, sink, log } = deps;
  const at = new Date(deps.nowMs).toISOString();
  const alert = deliveryFailedAlert({ at, runId: deps.runId }, failed);
  // On the time elapsed (reconcile/elapsed.ts): the function's timeout counts in real
  // time, and a wall clock stepping back mid-alert would otherwise lengthen each call's wait past
  // it. The wall clock (`wall`) still stamps the outbox's entries, which other runs read.
  const elapsed = elapsedClock();
  const bound = { deadline: elapsed() + deps.timeoutMs, clock: elapsed };
  const { project } = failed;
  let loaded: { state: ConditionState; version: string | null } | null = null;
  try {
    loaded = await beforeDeadline(
      () => store.loadConditions(project),
      bound,
      `reading the alert state of ${project}`,
    );
  } catch (e) {
    log.log(
      'ERROR',
      `${project}: the alert state could not be read, the delivery alert is sent anyway: ${errorMessage(e)}`,
    );
  }
  // Stored in the outbox before it is published, as a run's alerts are (sendWithoutLease): a unit
  // killed before its state is saved has the next failed delivery send it again under its id.
  let outgoing: Alert[] = [];
  let sent: Awaited<ReturnType<typeof sendWithoutLease>>;
  try {
    sent = await sendWithoutLease(
      { store, log, bound, wall: Date.now },
      project,
      alert,
      { now: at, runId: deps.runId, renotifyAfterMs: durationMs(policy.alerts.renotifyAfter) },
      loaded,
      async (messages) => {
        outgoing = messages;
        if (sink)
          await beforeDeadline(
            () => sink.publish(messages.map(alertMessage)),
            bound,
            `publishing the delivery alert of ${project}`,
          );
      },
    );
  } catch (e) {
    // Stored in the outbox (unless the store failed too): the next run sends it, under its id.
    log.log('ERROR', `${project}: the delivery alert could not be published: ${errorMessage(e)}`, {
      undeliveredAlerts: outgoing,
    });
    return { outcome: 'unpublished' };
  }
  if (sent.sent.length === 0) {
    log.log('INFO', `${project}: the delivery alert already fires: ${alert.summary}`);
    return { outcome: 'firing' };
  }
  for (const a of sent.sent)
    log.log('ERROR', `alert ${a.type} ${a.status}: ${a.summary}`, { alert: a.dedupKey });
  if (sent.unsaved !== undefined) {
    // Other runs kept saving meanwhile: the message stays in the outbox, and the next failed
    // delivery or run sends it again under its id.
    log.log(
      'ERROR',
      `${project}: the delivery alert's state could not be saved: ${errorMessage(sent.unsaved)}`,
    );
  }
  return {
    outcome: 'published',
    alert: sent.sent.find((a) => a.dedupKey === alert.dedupKey) ?? alert,
  };
}

/** What {@link alertFailedDelivery} did. */
type DeliveryAlertOutcome =
  { outcome: 'published'; alert: Alert } | { outcome: 'firing' } | { outcome: 'unpublished' };
