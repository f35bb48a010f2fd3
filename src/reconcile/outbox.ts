import { alertBytes, fitWhole, MAX_ALERT_BYTES, type Alert } from '../core/alert.js';
import { plannedEvents, settlePlannedEvent } from '../core/run-alerts.js';
import { cutText, faultText } from '../core/errors.js';
import type { Outbox, OutboxEntry, RunRecord } from '../ports/index.js';
import type { Logger } from '../log.js';
import { beforeDeadline } from './act.js';
import { legacyUndelivered, stripLegacyUndelivered } from './run-record.js';
import { alertGrace, runBound, type Decided, type Run } from './run.js';

/**
 * The run's outbox in the state store, and what goes into it.
 *
 * Events are never only in memory: before the first write, the run stores the `rebalance.applied`
 * it expects (pending outcome) in the store's outbox; once it knows how its writes went it
 * replaces them with its real events, publishes the outbox oldest first, and removes what Pub/Sub
 * acknowledged. A run that died in between leaves its planned events behind: the next run settles
 * them against what it observes (a change shows as applied only if the service has the planned
 * max now) and sends them first.
 */

/**
 * Before any write: settles the planned events of runs that ended before reporting (against what
 * this run observed, in the outbox read beside it), and stores this run's own planned events.
 * Nothing is written unless this succeeded, so an event is always stored before the writes it
 * describes.
 */
export async function prepareOutbox(
  run: Run,
  project: string,
  decided: Decided,
  box: Outbox,
): Promise<void> {
  const { deps, ctx } = run;
  const bound = runBound(run);
  const pending = box.entries.filter((e) => e.state === 'pending-outcome');
  // Planned quota requests are settled against the quota preferences, by the quota request step.
  const left = pending.filter((e) => e.alert.type !== 'quota.requested');
  run.quotaOrphans.set(
    project,
    pending.filter((e) => e.alert.type === 'quota.requested').map((e) => e.alert),
  );
  let settled: OutboxEntry[] = [];
  if (left.length > 0) {
    const max = new Map(
      decided.observed
        .filter((s) => s.project === project)
        .map((s) => [`${s.region}/${s.name}`, s.serviceMaxInstances]),
    );
    const maxOf = (region: string, name: string) => max.get(`${region}/${name}`) ?? null;
    // Every planned event is settled and kept, confirmed or not: none is dropped unpublished.
    settled = left.map((entry) => ({
      ...entry,
      alert: settlePlannedEvent(entry.alert, maxOf, ctx.runId),
      state: 'ready',
    }));
    const confirmed = settled.filter(
      (e) => e.alert.details['outcome'] === 'confirmed-by-observation',
    ).length;
    deps.log.log(
      'WARNING',
      `${project}: ${left.length} planned event(s) of runs that ended before reporting: ${confirmed} confirmed by observation, ${left.length - confirmed} not confirmed (announced as such)`,
    );
  }
  const planned = run.mode === 'enforce' ? plannedEvents(ctx, project, decided.plan) : [];
  // The settled events and this run's planned ones in one store call (one round trip).
  const stored = [...settled, ...planned.map((alert) => entry(run, alert, 'pending-outcome'))];
  if (stored.length > 0) {
    await beforeDeadline(
      () => deps.store.putOutbox(project, stored),
      bound,
      planned.length > 0
        ? `storing the planned events of ${project}`
        : `settling the outbox of ${project}`,
    );
  }
}

/**
 * An outbox entry of `alert`, fitted to what one entry holds (fitted below), so that a pool of
 * thousands of services does not make every run fail at storing its events, before its writes or
 * after them. The writes a cut event leaves out have each their own line (act.ts), and its
 * summary counts them all.
 */
export function entry(
  run: Pick<Fitter, 'deps'> & { wall: () => number },
  alert: Alert,
  state: OutboxEntry['state'],
): OutboxEntry {
  return { alert: fitted(run, alert), state, storedAt: new Date(run.wall()).toISOString() };
}

/**
 * `alert` within the MAX_ALERT_BYTES one alert may hold (core/alert.ts fitWhole: the longest lists
 * of its details cut, `details.truncated` saying how many items were kept of how many; then, if
 * need be, its largest details left out, named with their size in `details.omitted`, and its
 * summary cut), logged as a WARNING when anything was cut. Every message is fitted before it is
 * stored and again before it is published: a condition's details grow with the fleet, and a
 * record read back from the store may be larger than any the governor writes (a hand edit, a
 * corrupt file). Pub/Sub refuses a message over 10 MB
 * (https://cloud.google.com/pubsub/quotas#resource_limits), and with it every message of its
 * ordering key, the pool, at every run.
 */
export function fitted(run: Fitter, alert: Alert): Alert {
  const fit = fitWhole(alert);
  if (fit.truncated === null && fit.omitted === null && fit.summaryCut === null) return fit.alert;
  const cuts = [
    ...(fit.truncated === null
      ? []
      : [
          `its details keep ${Object.entries(fit.truncated)
            .map(([key, t]) => `${key}: ${t.kept} of ${t.of}`)
            .join(', ')} (details.truncated)`,
        ]),
    ...(fit.omitted === null
      ? []
      : [
          `${Object.entries(fit.omitted)
            .map(([key, bytes]) => `${key} (${bytes} bytes)`)
            .join(', ')} omitted (details.omitted)`,
        ]),
    ...(fit.summaryCut === null ? [] : [`its summary cut from ${fit.summaryCut} characters`]),
  ];
  const bytes = alertBytes(fit.alert);
  run.deps.log.log(
    'WARNING',
    `${alert.project}: the ${alert.type} ${alert.status === 'event' ? 'event' : 'alert'} ${cutText(alert.id, 200)} is over the ${MAX_ALERT_BYTES} bytes one alert may hold; ${cuts.join('; ')}${bytes > MAX_ALERT_BYTES ? `; still ${bytes} bytes` : ''}`,
  );
  return fit.alert;
}

/** What fitting a message needs of its run: the log its cuts are told in. */
interface Fitter {
  deps: { log: Logger };
}

/** Events earlier versions kept in run records go to the outbox, and leave the records. */
export async function moveLegacyUndelivered(
  run: Run,
  project: string,
  runs: readonly RunRecord[],
): Promise<void> {
  const legacy = legacyUndelivered(runs);
  for (const { record, faults } of legacy.unreadable) {
    run.deps.log.log(
      'ERROR',
      `${project}: the undelivered events run ${cutText(record.runId, 200)} kept in its record (an earlier version's) cannot be read and are left there, not published: ${faults.map(faultText).join('; ') || 'no detail'}; see docs/alerts.md`,
    );
  }
  if (legacy.records.length === 0) return;
  const grace = alertGrace(run);
  await beforeDeadline(
    () =>
      run.deps.store.putOutbox(
        project,
        legacy.alerts.map((a) => entry(run, a, 'ready')),
      ),
    grace,
    `moving the undelivered events of ${project} to the outbox`,
  );
  await stripLegacyUndelivered(run.deps.store, project, legacy.records);
}

/**
 * Each outbox entry the store set aside as unreadable in this read (`Outbox.setAside`), in one
 * ERROR line each: its id, where it now is, and why. It is also counted in the outbox's dropped
 * messages, so `governor.degraded` (reason `outbox`) tells subscribers.
 */
export function logSetAside(run: Run, project: string, box: Outbox): void {
  for (const entry of box.setAside ?? []) {
    const why = entry.faults.map(faultText);
    run.deps.log.log(
      'ERROR',
      `${project}: outbox entry ${entry.id} cannot be read and was set aside, not published (${why.join('; ') || 'no detail'}); see docs/alerts.md`,
    );
  }
}

/**
 * The outbox's count of dropped entries, when the store could not read it
 * (`Outbox.droppedUnreadable`), in one ERROR line per run: where it is, what it holds (quoted,
 * cut short) and why. The run goes on: the count is taken as at least 1, announced by
 * `governor.degraded` (reason `outbox`) as a number unknown, and replaced by a number once
 * announced.
 */
export function logUnreadableCount(run: Run, project: string, box: Outbox): void {
  const count = box.droppedUnreadable;
  if (!count || run.unreadableCounts.has(project)) return;
  run.unreadableCounts.add(project);
  const why = count.faults.map(faultText);
  run.deps.log.log(
    'ERROR',
    `${project}: the outbox's count of dropped entries cannot be read (${count.where} holds ${count.stored}: ${why.join('; ') || 'no detail'}); counted as at least 1 dropped, the number unknown, for governor.degraded (reason outbox) to announce; see docs/alerts.md`,
  );
}
