import { z } from 'zod';
import { DemandEstimate, explainDemand } from './demand.js';
import { formatDuration } from './duration.js';
import { oneLine, plural, someOf } from './text.js';
import { gcloudUpdate } from './gcloud.js';
import { cutText } from './errors.js';
import { MAX_INSTANCE_COUNT } from './service.js';

/**
 * Why a service's cap is what the plan makes it, as data: the plan row's `why`. The human
 * `reason` is rendered from it by `renderReason`, the only place that words it, and nothing reads
 * a reason back: a consumer that wants to know whether a service was short of demand reads
 * `why.shortBy`, not the text.
 *
 * `basis` is what the cap was decided from; every other field is set only when that step of the
 * planner touched the service (absent: it did not), in the order the reason lists them.
 */

const Count = z.number().int().min(0);

const Basis = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('unmanaged'),
        rule: Count.nullable().describe('The `managed: false` rule; null when no rule matches.'),
        capGpus: Count,
      })
      .describe('Not governed: counted against the pool at its cap, never written.'),
    z
      .strictObject({ kind: z.literal('deploying') })
      .describe('A deployment is in flight (reconciling): left as it is, counted at its cap.'),
    z
      .strictObject({ kind: z.literal('unwritable') })
      .describe(
        "Cloud Run accepts no max instances for it: its min instances need more GPUs than the quota (see floorAboveCeiling), and a max must be at least the min and within the quota; or its min instances are above its serving revision's own max, so no max Cloud Run accepts moves the cap in force (floorAboveCeiling wins revision). Left as it is, counted at its cap.",
      ),
    z
      .strictObject({
        kind: z.literal('usage-unknown'),
        heldAt: Count,
        note: z.string().nullable().describe('Why usage is unknown, where known.'),
        bound: z
          .enum(['floor', 'ceiling'])
          .optional()
          .describe(
            'Set when its cap was outside its bounds: held at its floor (raised to it) or its ceiling (lowered to it). Absent, with `heldAt` its cap, when the pool left it below its floor (see `pool`).',
          ),
      })
      .describe('Fail static: usage unknown or stale, so the cap is held.'),
    z
      .strictObject({ kind: z.literal('demand'), estimate: DemandEstimate })
      .describe('Usage known: the cap follows the demand estimate.'),
    z
      .strictObject({
        kind: z.literal('restore'),
        to: Count.min(1),
        source: z
          .enum(['original-max', 'revision-max'])
          .describe(
            'original-max: its service-level max before the governor; revision-max: it had none, so the revision max.',
          ),
      })
      .describe('`restore`: back to the max it had before the governor first changed it.'),
    z
      .strictObject({
        kind: z.literal('restore-none'),
        why: z
          .enum(['never-changed', 'no-original', 'unreadable'])
          .describe(
            'never-changed: the governor never wrote it; no-original: it had no max before the governor, and an unset max cannot be written back; unreadable: its original-max annotation is not a max (a decimal whole number from 1 to 2147483647), so nothing is written.',
          ),
        annotation: z
          .string()
          .optional()
          .describe('With `unreadable`: the annotation as found (its first characters).'),
      })
      .describe('`restore`: nothing to put back; left as it is.'),
  ])
  .describe('What the cap was decided from.');
type Basis = z.infer<typeof Basis>;

const PoolCase = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('quota-unknown'),
        loweredToCeiling: Count.nullable().describe('Set when the cap was above the ceiling.'),
        budgetUnknown: z
          .string()
          .optional()
          .describe('Set when the quota is known but the budget is not, and why.'),
      })
      .describe(
        'Fail static: the quota is unknown and the policy gives none, so nothing is raised.',
      ),
    z
      .strictObject({
        kind: z.literal('infeasible'),
        floorsGpus: Count,
        budget: z.number().int(),
        floor: Count,
        belowFloor: z
          .strictObject({ from: Count, to: Count })
          .optional()
          .describe(
            'Set when the cap stays below the floor: raised from `from` only to `to` (or not at all), because the budget had no more room. The quota comes before floors.',
          ),
        aboveFloor: Count.min(1)
          .optional()
          .describe(
            'Set when the cap stays above the floor, at this many instances: the room left once every floor below got what the budget allows could not buy another of their instances, so it stays where it was.',
          ),
      })
      .describe(
        'The floors do not fit the budget: caps above their floor come down to it, caps below it rise toward it only as far as the budget allows, highest priority first; room that buys no instance of a floor below stays where it was.',
      ),
  ])
  .describe('The pool could not be split normally.');
type PoolCase = z.infer<typeof PoolCase>;

export const PlanWhy = z
  .strictObject({
    basis: Basis,
    floorAboveCeiling: z
      .strictObject({
        floor: Count,
        ceiling: Count,
        wins: z
          .enum(['quota', 'neither', 'revision'])
          .optional()
          .describe(
            "Absent: the ceiling is the policy's max, and the floor wins. quota: the ceiling is the quota ÷ GPUs per instance, the most Cloud Run accepts, so the floor yields to it. neither: the service's own min instances are above that too, so Cloud Run accepts no max for it (basis unwritable). revision: the ceiling is the serving revision's own max, which bounds the cap in force whatever service-level max is written, so the floor yields to it; with minInstances, the service's own min instances are above that max, so no max Cloud Run accepts moves the cap in force (basis unwritable).",
          ),
        minInstances: Count.optional().describe(
          "With `neither`, or `revision` when they are above the revision's max: its min instances.",
        ),
      })
      .optional()
      .describe('The floor is above the ceiling.'),
    pool: PoolCase.optional(),
    notRestored: z
      .strictObject({ before: Count.min(1).nullable() })
      .optional()
      .describe(
        '`restore`: the governor changed this service, but the policy no longer governs it, so restore leaves it as it is (hands off). `before`: its max before the governor (null: none that can be written back).',
      ),
    maxUnset: z
      .strictObject({
        countedAt: Count,
        quotaUnknown: z
          .literal(true)
          .optional()
          .describe(
            "Set when the pool's quota is unknown: counted at its max as observed (100, the API's default), not quota ÷ GPUs per instance.",
          ),
      })
      .optional()
      .describe(
        'It sets no max instances: Cloud Run derives one from the regional quota, so it is counted at quota ÷ GPUs per instance.',
      ),
    maxCounted: z
      .strictObject({ countedAt: Count, how: z.string().min(1) })
      .optional()
      .describe(
        "Its latest revision does not serve: how its cap was counted (the sum of its serving revisions' own max, or, when they could not be read, quota ÷ GPUs per instance, and why). In place of maxUnset.",
      ),
    futureStamps: z
      .strictObject({ lastChangedAt: z.string().optional(), lastLoweredAt: z.string().optional() })
      .optional()
      .describe(
        "The service's last raise or decrease is dated later than the plan's time by more than the clock skew allowed (a minute): a wrong clock or a hand edit stamped it, so it starts no scale-down or reverse delay.",
      ),
    cut: z
      .strictObject({ from: Count, to: Count, priority: z.number() })
      .optional()
      .describe(
        'Cut below what it has in use (usage unknown: below the cap it held): that room did not fit the budget.',
      ),
    atFloor: z
      .strictObject({
        floor: Count,
        set: z
          .enum(['min-instances', 'defaults', 'rule', 'window'])
          .describe(
            "What set the floor: the service's own min instances, the policy's `defaults.min`, its rule's `min`, or the `min` of its rule's schedule window in force.",
          ),
        rule: Count.nullable().describe('The rule, with `set` rule or window.'),
        window: Count.nullable().describe('The schedule window, with `set` window.'),
      })
      .optional()
      .describe(
        'Its floor is above its demand: the floor, not the usage, sets the cap (or the base that the scale-down delay, burst room or the loan guard keep more above).',
      ),
    atCeiling: z
      .strictObject({
        ceiling: Count,
        set: z
          .enum(['quota', 'defaults', 'rule', 'window', 'revision'])
          .describe(
            "What set the ceiling: the pool's quota ÷ GPUs per instance (the most Cloud Run accepts), the policy's `defaults.max`, its rule's `max`, the `max` of its rule's schedule window in force, or the serving revision's own max (a deploy sets it; the cap in force is never above it, whatever service-level max is written).",
          ),
        rule: Count.nullable().describe('The rule, with `set` rule or window.'),
        window: Count.nullable().describe('The schedule window, with `set` window.'),
      })
      .optional()
      .describe(
        'Its ceiling is below its demand: the ceiling, not the pool, sets the cap (or what it is short of, with shortBy and shortOf).',
      ),
    stickyOverridden: z
      .literal(true)
      .optional()
      .describe('Room needed by others: its scale-down delay was overridden.'),
    sticky: z
      .strictObject({
        kept: Count.describe('Instances kept above its share.'),
        raisedAt: z.string(),
        scaleDownDelayMs: Count,
        until: z.string(),
      })
      .optional()
      .describe(
        'Calm: raised recently, so it keeps room above its share until the delay runs out.',
      ),
    burstKept: z
      .strictObject({ instances: Count.min(1), cap: Count })
      .optional()
      .describe('Leftover GPUs let it keep this much of its current cap above its demand.'),
    burstShared: Count.min(1).optional().describe('Leftover GPUs shared by weight, in instances.'),
    preempted: z
      .strictObject({
        instances: Count.min(1),
        priority: z.number(),
        priorities: z
          .array(z.number())
          .min(2)
          .optional()
          .describe(
            'Set when the demand of more than one higher priority took its instances: each of them, highest first (`priority` is the first); `instances` is their sum.',
          ),
      })
      .optional()
      .describe(
        "In-use instances cut for a higher priority's demand: its rule sets `preempt: true`.",
      ),
    loanGuard: z
      .strictObject({
        kept: Count.describe('Instances of its cap kept above its share by the guard.'),
        level: Count.describe('The guard: most wanted + largest one-minute rise.'),
        most: Count.describe('The most instances it wanted in a minute of the lookback.'),
        jump: Count.describe('The largest rise of instances wanted from one minute to the next.'),
      })
      .optional()
      .describe(
        "Loan guard: every lower priority may be preempted, so room it holds up to its guard is not lent to them (taking it back would wait a run and Monitoring's lag).",
      ),
    loanHeld: z
      .strictObject({
        gpus: Count.min(1),
        priority: z.number(),
        priorities: z
          .array(z.number())
          .min(2)
          .optional()
          .describe(
            'Set when the guards of more than one higher priority kept room: each of them, highest first (`priority` is the first); `gpus` is their sum.',
          ),
      })
      .optional()
      .describe(
        'GPUs a higher priority kept by its loan guard instead of lending them to this preemptible service; set only when it ends short of what it wants or below the cap it had (otherwise the guard kept nothing it could have had).',
      ),
    reclaimed: z
      .strictObject({
        instances: Count.min(1),
        likelihood: z
          .number()
          .min(0)
          .max(1)
          .nullable()
          .describe(
            'Share of recent minutes that used its next instance; null without per-minute counts.',
          ),
        forPriority: z
          .number()
          .int()
          .optional()
          .describe(
            "Set when a higher priority was raised in the pool: the room went to that priority's demand first (rule 6).",
          ),
      })
      .optional()
      .describe(
        "Room it held above its use moved to a higher priority's demand, or to where it is more likely used (rules 5 and 6).",
      ),
    tailHeld: z
      .strictObject({
        instances: Count.min(1).describe('Held instances above the most wanted kept sticky.'),
        most: Count.describe('The most instances wanted in a minute of the lookback.'),
        swing: z.number().min(0).describe('Mean change of instances wanted from minute to minute.'),
        likelihood: z
          .number()
          .min(0)
          .max(1)
          .describe('Tail likelihood of the instance above the most wanted.'),
      })
      .optional()
      .describe(
        'Room above all of its use that stays sticky although another service is refused: its minutes swing enough that the next instance above its most wanted is likely (rule 5).',
      ),
    reverseHeld: z
      .strictObject({ loweredAt: z.string(), until: z.string() })
      .optional()
      .describe(
        'Lowered recently to make room, not refused since: not raised above its cap until the reverse delay runs out.',
      ),
    shortBy: Count.min(1)
      .optional()
      .describe(
        'Instances the planned cap is short of its demand, or of the bound shortOf names (the reason says why: a scarce pool, the reverse delay, an unknown quota).',
      ),
    shortOf: z
      .strictObject({ bound: z.enum(['floor', 'ceiling']), instances: Count })
      .optional()
      .describe(
        'With shortBy, when the demand is outside the floor and ceiling: the cap is short of this bound (the floor above its demand, or the ceiling below it), not of the demand.',
      ),
    scarce: z
      .literal(true)
      .optional()
      .describe('Short because what the plan leaves free in the pool buys none of its instances.'),
    belowInUse: Count.optional().describe('Lowered below this many instances in use.'),
    deferred: z
      .strictObject({ limit: Count, stays: Count, planned: Count })
      .optional()
      .describe('limits.maxChangesPerRun was reached: stays at its cap, planned for a later run.'),
  })
  .describe('Why the cap is what the plan makes it; `reason` is this in words.')
  // One definition in the JSON Schema (`$defs`), referred to by every row that carries it.
  .meta({ id: 'PlanWhy' });
export type PlanWhy = z.infer<typeof PlanWhy>;

/**
 * Which bound holds a service's demand, where what it wants (its demand held within its floor and
 * ceiling) is not its demand: its floor (above the demand) or its ceiling (below it). Null when it
 * wants its demand, or the demand is unknown. The plan's `shortOf` and the starved alert's words
 * both name it.
 */
export function heldBound(want: number, demand: number | null): 'floor' | 'ceiling' | null {
  if (demand === null || demand === want) return null;
  return want > demand ? 'floor' : 'ceiling';
}

/** The reason of a plan row: its `why` in words, one clause per step, joined by "; ". */
export function renderReason(why: PlanWhy): string {
  const clauses: string[] = [];
  if (why.floorAboveCeiling) {
    const { floor, ceiling, wins, minInstances } = why.floorAboveCeiling;
    clauses.push(
      wins === 'quota'
        ? `floor ${floor} is above ${ceiling}, the most Cloud Run accepts within the quota: the quota wins`
        : wins === 'neither'
          ? ceiling === 0
            ? 'the quota holds no instance of it: Cloud Run refuses any max instances for it'
            : `its min instances (${minInstances ?? floor}) are above ${ceiling}, the most Cloud Run accepts within the quota: Cloud Run refuses any max instances for it`
          : wins === 'revision'
            ? minInstances !== undefined
              ? `its min instances (${minInstances}) are above ${ceiling}, its serving revision's own max: Cloud Run takes no service-level max below them, and any it takes leaves the cap in force at ${ceiling} (a deploy sets it)`
              : `floor ${floor} is above ${ceiling}, its serving revision's own max, which no service-level max can raise (a deploy sets it): the revision's max wins`
            : `floor ${floor} is above ceiling ${ceiling}: the floor wins`,
    );
  }
  if (why.maxCounted) clauses.push(why.maxCounted.how);
  if (why.maxUnset) {
    const { countedAt, quotaUnknown } = why.maxUnset;
    clauses.push(
      quotaUnknown
        ? `no max instances set: Cloud Run derives it from the regional quota, which is unknown, so it counts as ${countedAt}`
        : `no max instances set: Cloud Run derives it from the regional quota, so it counts as ${countedAt} (quota ÷ GPUs per instance)`,
    );
  }
  // Where the quota holds no instance of it, no min instances would make it writable.
  clauses.push(
    basisText(why.basis, why.floorAboveCeiling?.ceiling === 0, why.floorAboveCeiling?.wins),
  );
  if (why.futureStamps) {
    const { lastChangedAt, lastLoweredAt } = why.futureStamps;
    const stamps = [
      ...(lastChangedAt ? [`last raised at ${lastChangedAt}`] : []),
      ...(lastLoweredAt ? [`last lowered at ${lastLoweredAt}`] : []),
    ];
    clauses.push(
      `${stamps.join(' and ')}, later than now (a wrong clock or a hand edit stamped it): no delay taken from it`,
    );
  }
  if (why.atFloor) {
    const { floor } = why.atFloor;
    const who = boundText('min', floor, why.atFloor);
    // Above the floor only by what a later clause tells (the delay, burst room, the loan guard).
    clauses.push(
      aboveFloor(why)
        ? `its floor ${floor} is above its demand: ${who}`
        : `at its floor ${floor}, above its demand: ${who}`,
    );
  }
  if (why.atCeiling) {
    const { ceiling } = why.atCeiling;
    const who = boundText('max', ceiling, why.atCeiling);
    // Below the ceiling only by what `shortBy` tells.
    clauses.push(
      why.shortBy
        ? `its ceiling ${ceiling} is below its demand: ${who}`
        : `at its ceiling ${ceiling}, below its demand: ${who}`,
    );
  }
  if (why.pool) clauses.push(poolText(why.pool));
  if (why.cut) {
    const { from, to, priority } = why.cut;
    // Usage unknown: what it held was its cap (fail static), not instances known to be in use.
    const room = why.basis.kind === 'usage-unknown' ? 'the cap held' : 'in-use room';
    clauses.push(
      `cut from ${from} to ${to}: ${room} does not fit the budget (lower priorities are cut first; this is priority ${priority})`,
    );
  }
  if (why.notRestored) {
    const { before } = why.notRestored;
    clauses.push(
      `restore: not governed now, so not written (${before === null ? 'it had no max before the governor that can be written back' : `its max before the governor was ${before}`})`,
    );
  }
  if (why.stickyOverridden) clauses.push('room needed by others: scale-down delay overridden');
  if (why.sticky) {
    const s = why.sticky;
    clauses.push(
      `keeps ${s.kept} above its share: raised at ${s.raisedAt}, scale-down delay ${formatDuration(s.scaleDownDelayMs)} runs until ${s.until}`,
    );
  }
  if (why.burstKept)
    clauses.push(
      `+${why.burstKept.instances} burst room (leftover GPUs left where they were, toward its cap of ${why.burstKept.cap})`,
    );
  if (why.burstShared)
    clauses.push(`+${why.burstShared} burst room (leftover GPUs shared by weight)`);
  if (why.preempted) {
    const { instances, priority, priorities } = why.preempted;
    const whose = priorities
      ? `the demand of priorities ${priorityList(priorities)}`
      : `priority ${priority} demand`;
    clauses.push(
      `preempted: ${plural(instances, 'in-use instance')} cut for ${whose} (preempt: true)`,
    );
  }
  if (why.loanGuard) {
    const { kept, level, most, jump } = why.loanGuard;
    const guard = `guard ${level} = most wanted ${most} + largest one-minute rise ${jump}`;
    clauses.push(
      kept > 0
        ? `keeps ${kept} above its share (${guard}): not lent to a preemptible lower priority, which could give it back only a run and Monitoring's lag later`
        : `its ${guard}: room above it may go to a preemptible lower priority`,
    );
  }
  if (why.loanHeld) {
    const { gpus: n, priority, priorities } = why.loanHeld;
    const by = priorities
      ? `the loan guards of priorities ${priorityList(priorities)}`
      : `priority ${priority}'s loan guard`;
    clauses.push(
      `${gpus(n)} kept by ${by} (preempt: true: room lent to it would come back only a run and a lag later)`,
    );
  }
  if (why.reclaimed) {
    const { instances, likelihood, forPriority } = why.reclaimed;
    const used =
      likelihood === null
        ? ''
        : ` (its next instance was used ${Math.round(likelihood * 100)}% of recent minutes)`;
    clauses.push(
      forPriority === undefined
        ? `gives ${instances} to where ${instances === 1 ? 'it is' : 'they are'} more likely used${used}`
        : `gives ${instances} to priority ${forPriority}'s demand, served first${used}`,
    );
  }
  if (why.tailHeld) {
    const { instances, most, swing, likelihood } = why.tailHeld;
    clauses.push(
      `keeps ${instances} above its most wanted (${most}) while others are refused: its use swings by ${swing} a minute, so instance ${most + 1} is ${pct1(likelihood)} likely`,
    );
  }
  if (why.reverseHeld) {
    const { loweredAt, until } = why.reverseHeld;
    clauses.push(
      `not raised back: lowered at ${loweredAt}, not refused since, reverse delay runs until ${until}`,
    );
  }
  if (why.shortBy) {
    const of = why.shortOf ? `its ${why.shortOf.bound} ${why.shortOf.instances}` : 'demand';
    clauses.push(`short of ${of} by ${why.shortBy}${why.scarce ? ': pool is scarce' : ''}`);
  }
  if (why.belowInUse !== undefined) clauses.push(`below the ${why.belowInUse} in use`);
  if (why.deferred) {
    // The clauses before tell the cap planned, which this names: the cap that waits.
    const { limit, stays, planned } = why.deferred;
    clauses.push(
      `deferred: limits.maxChangesPerRun (${limit}) reached: stays ${stays}, the ${planned} planned waits for a later run`,
    );
  }
  return clauses.join('; ');
}

/** The priorities a reason names of several (loan guards, preemptors), before "and N more". */
const PRIORITIES_NAMED = 5;

/**
 * "10, 5 and 1": several priorities in words, or the first few of many and how many more (a
 * priority each service may have).
 */
function priorityList(priorities: readonly number[]): string {
  if (priorities.length > PRIORITIES_NAMED) return someOf(priorities.map(String), PRIORITIES_NAMED);
  return `${priorities.slice(0, -1).join(', ')} and ${priorities[priorities.length - 1]}`;
}

/** A later step kept the cap above its floor: the scale-down delay, burst room, the loan guard. */
function aboveFloor(why: PlanWhy): boolean {
  return (
    why.sticky !== undefined ||
    why.burstKept !== undefined ||
    why.burstShared !== undefined ||
    (why.loanGuard?.kept ?? 0) > 0
  );
}

/** Who set a floor (`min`) or a ceiling (`max`), in words. */
function boundText(
  key: 'min' | 'max',
  value: number,
  b: { set: string; rule: number | null; window: number | null },
): string {
  switch (b.set) {
    case 'min-instances':
      return `its own min instances (${value})`;
    case 'quota':
      return `the quota holds ${plural(value, 'instance')} of it, the most Cloud Run accepts`;
    case 'revision':
      return `its serving revision's own max (${value}), which no service-level max can raise (a deploy sets it)`;
    case 'defaults':
      return `the policy's defaults.${key} (${value})`;
    case 'window':
      return `${key} ${value} of rule ${b.rule}'s schedule window ${b.window}, in force now`;
    default:
      return `${key} ${value} of rule ${b.rule}`;
  }
}

function basisText(
  b: Basis,
  noInstance: boolean,
  wins: NonNullable<PlanWhy['floorAboveCeiling']>['wins'],
): string {
  switch (b.kind) {
    case 'unmanaged':
      return b.rule === null
        ? `unmanaged (no policy rule matches): counted at its cap of ${gpus(b.capGpus)}`
        : `unmanaged (rule ${b.rule}, managed: false): counted at its cap of ${gpus(b.capGpus)}`;
    case 'deploying':
      return 'deploying (reconciling): left as it is, counted at its cap';
    case 'unwritable':
      return wins === 'revision'
        ? 'left as it is, counted at its cap (lower its min instances, or deploy a revision whose max is not below them)'
        : `left as it is, counted at its cap (raise the quota${noInstance ? '' : ' or lower its min instances'})`;
    case 'usage-unknown': {
      const held =
        b.bound === 'floor'
          ? `raised to its floor ${b.heldAt}`
          : b.bound === 'ceiling'
            ? `lowered to its ceiling ${b.heldAt}`
            : `held at ${b.heldAt}`;
      return `usage unknown${b.note ? ` (${b.note})` : ''}: ${held} (fail static)`;
    }
    case 'demand':
      return `demand ${b.estimate.instances}: ${explainDemand(b.estimate)}`;
    case 'restore-none':
      if (b.why === 'unreadable') return `restore: ${unreadableOriginal(b.annotation ?? '')}`;
      return b.why === 'never-changed'
        ? 'restore: never changed by the governor: left as it is'
        : 'restore: it had no max before the governor, which cannot be written back: left as it is (unset it by hand if you want it unset)';
    case 'restore':
      return `restore: back to ${b.source === 'revision-max' ? `the revision max ${b.to} (it had no service-level max)` : `its max before the governor, ${b.to}`}`;
  }
}

function poolText(p: PoolCase): string {
  switch (p.kind) {
    case 'quota-unknown': {
      // Lowering a cap above its ceiling needs no quota; the rest of fail static still holds.
      const unknown = p.budgetUnknown
        ? `pool budget unknown (${p.budgetUnknown})`
        : 'pool quota unknown';
      return p.loweredToCeiling !== null
        ? `${unknown}: lowered to ceiling ${p.loweredToCeiling}, nothing raised (fail static)`
        : `${unknown}: not raised (fail static)`;
    }
    case 'infeasible': {
      const head = `pool infeasible (floors ${p.floorsGpus} > budget ${p.budget})`;
      const b = p.belowFloor;
      if (p.aboveFloor !== undefined)
        return `${head}: kept at ${p.aboveFloor}, above its floor ${p.floor}: the room would buy no floor's instance`;
      if (!b) return `${head}: set to floor ${p.floor}`;
      return b.to > b.from
        ? `${head}: raised to ${b.to} of its floor ${p.floor}, no further: the quota comes before floors`
        : `${head}: left at ${b.to}, below its floor ${p.floor}: the quota comes before floors`;
    }
  }
}

/** A small likelihood as a percentage with one decimal: 0.043 → "4.3%". */
function pct1(p: number): string {
  return `${Math.round(p * 1000) / 10}%`;
}

function gpus(n: number): string {
  return plural(n, 'GPU');
}

/**
 * Why restore leaves a service whose original-max annotation (`annotation`) is not a max; with
 * the service's place, the gcloud command that sets it names it.
 */
export function unreadableOriginal(
  annotation: string,
  place?: { project: string; region: string; name: string },
): string {
  const update = place ? gcloudUpdate(place) : 'gcloud run services update SERVICE';
  return `its gpu-governor.dev/original-max annotation ${JSON.stringify(shortText(annotation))} is not a max (a whole number from 1 to ${MAX_INSTANCE_COUNT}): left as it is, nothing written (set its max by hand: ${update} --max N)`;
}

/** Text read from a service (someone else's), on one line and at most 40 characters. */
function shortText(text: string): string {
  return cutText(oneLine(text), 40);
}
