import type { Alert } from '../core/alert.js';
import { durationMs } from '../core/duration.js';
import { claimConditions, handOverConditions, takeBackConditions } from '../core/notify.js';
import { fanoutStaleAfter } from '../core/policy.js';
import {
  adoptLedger,
  adoptQuotas,
  newestLedger,
  type PressureLedger,
} from '../core/quota-pressure.js';
import { unitsStoppedAlert } from '../core/run-alerts.js';
import { someOf } from '../core/text.js';
import { stoppedSiblings } from '../core/units.js';
import { ConflictError } from '../core/errors.js';
import {
  plannedAt,
  runAgeMs,
  runDatedAhead,
  type ConditionState,
  type OtherUnit,
  type RunRecord,
  type VersionedConditions,
} from '../ports/index.js';
import { beforeDeadline } from './act.js';
import { alertGrace, type Run } from './run.js';

/**
 * A run's dealings with the other units of its project (docs/organization.md, "Regional
 * units"): a regional unit with its project governed whole, a project with its regional units.
 * What it adopts of their ledgers and quotas, whether they stopped running, and the conditions
 * handed over between them.
 */

/**
 * What a unit takes from the other side of its project after a gap in its own ledger
 * (core/quota-pressure.ts lookAtOtherUnits: none yet, or none within the last hour): a regional
 * unit from its project's records, a project from its regional units' (docs/organization.md,
 * "Regional units"). The ledger it rolls forward is its own with what the other side knows newer
 * (adoptLedger: evidence and tracked quota requests, each pool with the unit that owns it), and
 * the quotas `quota.changed` compares with are per pool the newest either side read
 * (adoptQuotas: a change the other side told is not told again). The other side's records are only
 * read, never written, so a run that fails before it records adopts the same again next time. A
 * store that cannot be read fails the run (as the unit's own records would): going on without
 * would record a ledger that misses the other side's for good.
 */
export async function adoptFromOtherUnits(
  run: Run,
  project: string,
  own: PressureLedger | undefined,
  last: RunRecord | undefined,
): Promise<{
  ledger: PressureLedger | undefined;
  quotas: Record<string, number | null> | undefined;
} | null> {
  const { deps } = run;
  const others = deps.store.otherUnits?.bind(deps.store);
  if (!others) return null;
  const sides = await beforeDeadline(
    async () =>
      Promise.all(
        (await others(project)).map(async (u) => ({ region: u.region, runs: await u.listRuns() })),
      ),
    alertGrace(run),
    `reading the run records of the other units of ${project}`,
  );
  const ledgers = sides.flatMap((side) => {
    const ledger = newestLedger(side.runs, run.ctx.at);
    return ledger ? [{ region: side.region, ledger }] : [];
  });
  const quotasOf = (region: string | null, r: RunRecord | undefined) =>
    r?.quotas ? [{ region, at: plannedAt(r), quotas: r.quotas }] : [];
  const ledger = adoptLedger(run.options.region, own, ledgers);
  const quotas = adoptQuotas(
    run.options.region,
    quotasOf(null, last)[0],
    sides.flatMap((side) => quotasOf(side.region, side.runs[0])),
  );
  const newer = ledgers.filter((l) => !own || Date.parse(l.ledger.at) > Date.parse(own.at));
  if (newer.length > 0) {
    const from = newer.map((l) => l.region ?? 'the whole project').join(', ');
    deps.log.log(
      'INFO',
      `${project}: ${own ? `this unit's pressure ledger is from ${own.at}` : 'no pressure ledger of this unit yet'}: took what is newer from ${from} (${Object.keys(ledger?.pools ?? {}).length} pool(s), ${Object.keys(ledger?.requests ?? {}).length} tracked quota request(s))`,
    );
  }
  return { ledger, quotas };
}

/**
 * A regional unit's look at its project's other regional units (core/units.ts stoppedSiblings):
 * governor.degraded (reason units-stopped) when some have not run for over `fanout.staleAfter`
 * and this unit is the one to say so; null otherwise, which resolves it where it fired. Their run
 * records are only read. A store that cannot be read fails the run, as the unit's own would.
 */
export async function stoppedUnits(
  run: Run,
  project: string,
  own: readonly RunRecord[],
): Promise<Alert | null> {
  const region = run.options.region;
  const siblings = run.deps.store.siblingUnits?.bind(run.deps.store);
  if (region === undefined || !siblings) return null;
  const { foundAt, units } = await beforeDeadline(
    async () => {
      const found = await siblings(project);
      return { foundAt: found.foundAt, units: await newestRuns(found.units) };
    },
    alertGrace(run),
    `reading the run records of the other regional units of ${project}`,
  );
  // Each age on its own clock: a run's `at` on the runs' clock (the emulator's, against it), its
  // start and the discovery on the wall clock.
  const now = { nowMs: Date.parse(run.ctx.at), wallMs: run.wall() };
  // A run dated later than now is judged as none: a unit that stopped after it would never be named.
  const ageOf = (r: RunRecord | undefined) =>
    r && !runDatedAhead(r, now) ? runAgeMs(r, now) : null;
  const staleAfter = fanoutStaleAfter(run.policy);
  const verdict = stoppedSiblings({
    region,
    siblings: units.flatMap(({ region, newest }) =>
      region === null
        ? []
        : [{ region, lastRunAt: newest ? plannedAt(newest) : null, ageMs: ageOf(newest) }],
    ),
    firstRunAgeMs: ageOf(own.at(-1)),
    countedForMs: foundAt === null ? null : now.wallMs - Date.parse(foundAt),
    staleAfterMs: durationMs(staleAfter),
  });
  return verdict.reporter ? unitsStoppedAlert(run.ctx, project, verdict.stopped, staleAfter) : null;
}

/**
 * Whether a regional unit of the project ran after `since` (this whole project's newest ledger):
 * the project was split meanwhile, however briefly. Each unit's newest record only (one read).
 */
export async function unitsRanSince(run: Run, project: string, since: string): Promise<boolean> {
  const others = run.deps.store.otherUnits?.bind(run.deps.store);
  if (run.options.region !== undefined || !others) return false;
  const units = await beforeDeadline(
    async () => newestRuns((await others(project)).filter((u) => u.region !== null)),
    alertGrace(run),
    `reading the newest runs of the regional units of ${project}`,
  );
  // On the runs' clock: a run that planned nothing (no `at`) governed nothing either.
  return units.some(
    ({ newest }) => newest?.at !== undefined && Date.parse(newest.at) > Date.parse(since),
  );
}

/** Each unit's newest run record, if any: one record's read each. */
async function newestRuns(
  units: readonly OtherUnit[],
): Promise<{ region: string | null; newest: RunRecord | undefined }[]> {
  return Promise.all(
    units.map(async (u) => ({ region: u.region, newest: (await u.listRuns(1))[0] })),
  );
}

/** How many times a handover is tried when another unit of the project saved meanwhile. */
const HANDOVER_ATTEMPTS = 4;

/**
 * The handover of conditions to a regional unit (core/notify.ts claimConditions,
 * handOverConditions; docs/organization.md, "Regional units"): the conditions of its region, and
 * the project's own project-wide ones, move from the state the project left when it was governed
 * whole into the unit's, in three versioned saves (VersionedConditions):
 *
 * 1. the project's state with what the unit takes marked for it: of two regional units of the
 *    project racing for a project-wide condition, the one that saves second gets a ConflictError,
 *    reads again, and finds it marked for the other;
 * 2. the unit's own state with what is marked for it added;
 * 3. the project's state without it.
 * A run that dies after any step leaves the marks: the next run of the unit takes what is marked
 * for it (whatever it already keeps stays as it is), and no other unit takes it. The unit's run
 * then re-judges what it took, and publishes and saves as for any condition: each resolves once.
 */
export async function handOver(
  run: Run,
  project: string,
  loaded: VersionedConditions,
): Promise<VersionedConditions> {
  const region = run.options.region;
  const others = run.deps.store.otherUnits?.bind(run.deps.store);
  if (region === undefined || !others) return loaded;
  const whole = (
    await beforeDeadline(() => others(project), alertGrace(run), `finding ${project}'s state`)
  ).find((u) => u.region === null);
  if (!whole) return loaded;
  return moveConditions(run, project, loaded, whole, {
    said: 'took over',
    claim: (theirs) => {
      const claim = claimConditions(theirs, project, region);
      return claim.claimed.length > 0 ? claim.whole : null;
    },
    take: (own, theirs) => {
      const next = handOverConditions(own, theirs, region);
      return { own: next.own, rest: next.whole, moved: next.moved };
    },
  });
}

/**
 * The handover back to a project governed whole again (core/notify.ts takeBackConditions), done
 * by a run of the whole project that looked at its regional units (a gap in its own ledger: a
 * project governed whole without a break reads nothing more). Per regional unit, two versioned
 * saves: the project's state with the unit's conditions added, then the unit's state emptied. A
 * run that dies in between leaves them in both; the next finds them already the project's and
 * only empties the unit's. A conflict on a unit's state (its failed-delivery alert, written
 * outside any lease) is retried from a fresh read.
 */
export async function takeBack(
  run: Run,
  project: string,
  loaded: VersionedConditions,
): Promise<VersionedConditions> {
  const others = run.deps.store.otherUnits?.bind(run.deps.store);
  if (run.options.region !== undefined || !others) return loaded;
  const units = await beforeDeadline(
    () => others(project),
    alertGrace(run),
    `reading the regional units of ${project}`,
  );
  let state = loaded;
  for (const unit of units) {
    const region = unit.region;
    if (region === null) continue;
    state = await moveConditions(run, project, state, unit, {
      said: 'took back',
      take: (own, theirs) => ({ ...takeBackConditions(own, theirs, region), rest: {} }),
    });
  }
  return state;
}

/**
 * One move of conditions from another unit of the project (`other`) into this run's state, for
 * the handovers above. `claim`, when it returns a state, is saved on the other's side first (a
 * mark of what this unit takes); `take` says what moves and what the other keeps. This run's
 * state is saved with what it did not keep yet, then the other's without what moved, each
 * versioned. A conflict (another writer saved either side meanwhile) starts again from a fresh
 * read of both, up to
 * HANDOVER_ATTEMPTS times; then the run fails, before anything is published, and the next
 * finishes the move.
 */
async function moveConditions(
  run: Run,
  project: string,
  mine: VersionedConditions,
  other: OtherUnit,
  how: {
    said: string;
    claim?: (theirs: ConditionState) => ConditionState | null;
    take: (
      own: ConditionState,
      theirs: ConditionState,
    ) => { own: ConditionState; rest: ConditionState; moved: string[] };
  },
): Promise<VersionedConditions> {
  const { deps } = run;
  const grace = alertGrace(run);
  const label =
    other.region === null ? 'the whole project' : `the regional unit of ${other.region}`;
  let { state: own, version } = mine;
  for (let attempt = 1; ; attempt += 1) {
    try {
      let theirs = await beforeDeadline(
        () => other.loadConditions(),
        grace,
        `reading the alert state ${label} ${project} left`,
      );
      const claimed = how.claim?.(theirs.state) ?? null;
      if (claimed !== null) {
        const marked = await beforeDeadline(
          () => other.saveConditions(claimed, theirs.version),
          grace,
          `claiming the conditions ${label} ${project} left`,
        );
        theirs = { state: claimed, version: marked };
      }
      const next = how.take(own, theirs.state);
      if (next.moved.length === 0) return { state: own, version };
      if (next.moved.some((k) => own[k] === undefined)) {
        const merged = next.own;
        version = await beforeDeadline(
          () => deps.store.saveConditions(project, merged, version),
          grace,
          `saving the conditions ${project} takes from ${label}`,
        );
        own = merged;
      }
      const expected = theirs.version;
      await beforeDeadline(
        () => other.saveConditions(next.rest, expected),
        grace,
        `taking the conditions off ${label} ${project}`,
      );
      deps.log.log(
        'INFO',
        `${project}: ${how.said} ${next.moved.length} condition(s) ${label} left firing: ${someOf(next.moved, 10)}`,
      );
      return { state: own, version };
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= HANDOVER_ATTEMPTS) throw e;
      // This run's state too may have been saved meanwhile (a failed delivery's alert, a refused
      // run's lease alert, written outside the lease): read again, or every attempt conflicts.
      ({ state: own, version } = await beforeDeadline(
        () => deps.store.loadConditions(project),
        grace,
        `reading the alert state of ${project} again`,
      ));
    }
  }
}
