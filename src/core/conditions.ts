import { restated, type Alert, type AlertType, type Severity } from './alert.js';
import {
  CAP_UNKNOWN,
  capsAsLeft,
  capWritten,
  poolCapsAsLeft,
  writesInPool,
  writesOf,
} from './as-left.js';
import type { Plan, PlanPool } from './plan.js';
import { compareText, poolKey, poolWords } from './pool.js';
import { plural, someOf } from './text.js';
import { heldBound } from './why.js';
import type { WriteResult } from './write-result.js';

/**
 * The condition alerts a plan implies: what is wrong right now. Whether each one is new, still
 * firing or resolved (fire once, re-notify, resolve once) is decided against the state store when
 * the run publishes; the plan only lists what holds at its instant.
 */

export interface AlertContext {
  at: string;
  runId: string;
  pressure: number;
}

/** What the conditions need to know of one governed service. */
interface ServiceFacts {
  name: string;
  /** Its cap before the plan, and after. */
  from: number;
  to: number;
  /** Its demand held within its floor and ceiling: what `to` is measured against. */
  want: number;
  /** Its demand estimate before that (null: usage unknown). */
  demand: number | null;
  peak: number | null;
  inUse: number | null;
  usageUnknown: boolean;
  /** Why its usage is unknown: read only when `usageUnknown`. */
  usageNote: string | undefined;
}

export function makeAlert(
  ctx: Pick<AlertContext, 'at' | 'runId'>,
  where: AlertPlace,
  a: AlertFields,
): Alert {
  return alertAt(ctx, where, placeOf(where), a);
}

/** What an alert says besides where it is. */
interface AlertFields {
  type: AlertType;
  status?: Alert['status'];
  severity: Severity;
  service?: string | null;
  summary: string;
  details: Record<string, unknown>;
  key?: string;
}

/** `makeAlert` with the place of `where` (`placeOf`) already known: a pool's alerts share it. */
function alertAt(
  ctx: Pick<AlertContext, 'at' | 'runId'>,
  where: AlertPlace,
  place: string,
  a: AlertFields,
): Alert {
  const service = a.service ?? null;
  const dedupKey = dedupKeyAt(a.type, place, service, a.key);
  return {
    version: 1,
    id: `${ctx.runId}:${dedupKey}`,
    type: a.type,
    status: a.status ?? 'firing',
    severity: a.severity,
    project: where.project,
    region: where.region,
    accelerator: where.accelerator,
    zonalRedundancy: where.zonalRedundancy,
    service,
    summary: a.summary,
    details: a.details,
    runId: ctx.runId,
    time: ctx.at,
    dedupKey,
  };
}

/** `type:place[:service][:key]`: the same condition keeps it from firing to resolved. */
export function dedupKeyOf(
  type: AlertType,
  where: AlertPlace,
  service: string | null = null,
  key?: string,
): string {
  return dedupKeyAt(type, placeOf(where), service, key);
}

function dedupKeyAt(
  type: AlertType,
  place: string,
  service: string | null,
  key: string | undefined,
): string {
  // Each part that is present, joined by ':' (an array filtered and joined for every alert made
  // 1.5 MB of garbage a plan of 10,000 services).
  return `${type}${place ? `:${place}` : ''}${service ? `:${service}` : ''}${key ? `:${key}` : ''}`;
}

/** The place of a dedupKey: the pool's key, else the project and the region it names. */
function placeOf(where: AlertPlace): string {
  return alertPoolKey(where) ?? [where.project, where.region].filter((x) => x !== null).join('/');
}

/** Where an alert is: a project, a region of it or one of its pools (null: not that narrow). */
export type AlertPlace = Pick<Alert, 'project' | 'region' | 'accelerator' | 'zonalRedundancy'>;

/** The key of the pool an alert is about (core/pool.ts poolKey); null when it names no pool. */
export function alertPoolKey(a: AlertPlace): string | null {
  if (a.region === null || a.accelerator === null || a.zonalRedundancy === null) return null;
  return poolKey({
    project: a.project,
    region: a.region,
    accelerator: a.accelerator,
    zonalRedundancy: a.zonalRedundancy,
  });
}

/**
 * Where a project-wide alert of a run is: the project, and the region of a regional unit
 * (`ctx.region`, core/units.ts), so that each unit of a project has its own dedupKey for what it
 * alone keeps in its state; a run of whole projects leaves the region null, as it always did.
 */
export function projectWide(
  ctx: { region?: string },
  project: string,
): { project: string; region: string | null; accelerator: null; zonalRedundancy: null } {
  return { project, region: ctx.region ?? null, accelerator: null, zonalRedundancy: null };
}

/**
 * What one governed service adds to its pool's floors, in GPUs: its floor (the highest of 1, its
 * own min instances and the policy's min), or its cap when the planner cannot move it (deploying,
 * or min instances above what Cloud Run accepts within the quota). `pool.infeasible` names them,
 * so the person paged knows which min instances to lower.
 */
interface FloorFacts {
  name: string;
  gpus: number;
  /** The service's own min instances (Cloud Run's `scaling.min_instance_count`). */
  minInstances: number;
  /** Counted at its cap: the planner cannot move it this run. */
  atCap: boolean;
}

/**
 * Where a pool's budget went besides its reserve, when GPUs outside the governed caps (unmanaged
 * services' caps, worker pools, jobs) took part of the quota: " (quota 4 − 5 GPUs outside the
 * governed caps: worker-pool/encoder 5)". Empty when they took none. Such GPUs can leave the
 * budget below even a floor of 0, and then lowering min instances cannot help.
 */
function budgetInWords(pool: PlanPool): string {
  if (pool.unmanagedGpus <= 0 || pool.quota === null) return '';
  const sources =
    pool.unmanaged.length > 0
      ? `: ${someOf(
          pool.unmanaged.map((u) => `${u.source} ${u.gpus}`),
          FLOORS_NAMED,
        )}`
      : '';
  const reserve = pool.reserve > 0 ? ` − reserve ${pool.reserve}` : '';
  return ` (quota ${pool.quota}${reserve} − ${pool.unmanagedGpus} GPUs outside the governed caps${sources})`;
}

/** What can make an infeasible pool's floors fit: only what holds part of its budget. */
function infeasibleFixes(pool: PlanPool): string[] {
  return [
    'raise the quota',
    ...(pool.unmanagedGpus > 0 ? ['lower what uses GPUs outside the governed caps'] : []),
    ...(pool.floors > 0 ? ["lower min instances (the services' own, or the policy's min)"] : []),
  ];
}

/** "a", "a, or b", "a, b, or c". */
function orList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')}, or ${items[items.length - 1] ?? ''}`;
}

/** Services named in a pool.infeasible summary, the largest floors first; the rest are counted. */
const FLOORS_NAMED = 3;

function floorsInWords(floors: readonly FloorFacts[]): string {
  const named = floors
    .slice(0, FLOORS_NAMED)
    .map((f) => `${f.name} ${f.gpus}${f.atCap ? ' (at its cap)' : ''}`);
  const rest = floors.length - named.length;
  return `${named.join(', ')}${rest > 0 ? ` and ${rest} more` : ''}`;
}

/** Starved: the cap ends below demand and gives no room above what the service already used. */
export function isStarved(to: number, want: number, peak: number | null): boolean {
  return to < want && peak !== null && to <= peak;
}

/**
 * The conditions of one pool. `services` needs to hold only the services that may raise one:
 * those with unknown usage and the starved ones (the others are never looked at).
 */
export function poolConditions(
  ctx: AlertContext,
  pool: PlanPool,
  services: readonly ServiceFacts[],
  /** Read for an infeasible pool only: none other names its floors. */
  floors: readonly FloorFacts[] = [],
): Alert[] {
  const alerts: Alert[] = [];
  const where = poolWords(pool);
  // Every alert of the pool has the pool's place in its dedupKey: made once, not per alert.
  const place = placeOf(pool);
  // A new object for each alert, extended with Object.assign rather than `{ ...numbers(), … }`:
  // on V8 an object literal that begins with a spread gets a hidden class of its own, built
  // property by property (planner.ts poolRow).
  const numbers = () => ({
    quota: pool.quota,
    reserve: pool.reserve,
    unmanagedGpus: pool.unmanagedGpus,
    budget: pool.budget,
    capsBefore: pool.capsBefore,
    capsAfter: pool.capsAfter,
    demand: pool.demand,
    floors: pool.floors,
  });
  if (pool.budget === null) {
    // The quota may be known while the budget is not (unmanaged usage in the region could not be
    // read): say which, under the same key, so that one condition fires and resolves either way.
    alerts.push(
      alertAt(ctx, pool, place, {
        type: 'governor.degraded',
        severity: 'WARNING',
        key: 'quota',
        summary:
          pool.quota === null
            ? `Quota of ${where} unknown: nothing in the pool is raised until it can be read`
            : `Budget of ${where} unknown: the GPUs its worker pools and jobs use could not be read, so nothing in the pool is raised until they can be`,
        details: {
          reason: pool.quota === null ? 'quota-unknown' : 'budget-unknown',
          ...numbers(),
          note: pool.note,
        },
      }),
    );
  } else {
    if (pool.status === 'infeasible') {
      // The largest floors first, then by name: what to lower first.
      const floorsFirst = [...floors].sort(
        (a, b) => b.gpus - a.gpus || compareText(a.name, b.name),
      );
      alerts.push(
        alertAt(ctx, pool, place, {
          type: 'pool.infeasible',
          severity: 'CRITICAL',
          summary: `Floors in ${where} need ${pool.floors} GPUs but the budget is ${pool.budget}${budgetInWords(pool)}${floors.length > 0 ? ` (${floorsInWords(floorsFirst)})` : ''}: caps are held at their floors at most; ${orList(infeasibleFixes(pool))}`,
          details: Object.assign(numbers(), {
            floorsBy: floorsFirst.map((f) => ({
              service: f.name,
              gpus: f.gpus,
              minInstances: f.minInstances,
              atCap: f.atCap,
            })),
          }),
        }),
      );
    }
    if (pool.capsBefore > pool.budget) {
      alerts.push(
        alertAt(ctx, pool, place, {
          type: 'pool.over-budget',
          severity: 'ERROR',
          // Observed before the plan: say what the plan does about it, so that a page for a pool
          // the same run brings back within its budget does not read as work for a person.
          summary: overBudgetSummary(where, pool),
          details: numbers(),
        }),
      );
    }
    const ratio = pool.budget > 0 ? pool.demand / pool.budget : pool.demand > 0 ? Infinity : 0;
    if (ratio >= ctx.pressure) {
      alerts.push(
        alertAt(ctx, pool, place, {
          type: 'pool.pressure',
          severity: 'WARNING',
          summary: `Demand in ${where} is ${pool.demand} GPUs, ${Number.isFinite(ratio) ? `${Math.round(ratio * 100)}%` : 'all'} of the budget of ${pool.budget}`,
          details: Object.assign(numbers(), {
            ratio: Number.isFinite(ratio) ? Math.round(ratio * 1000) / 1000 : null,
            threshold: ctx.pressure,
          }),
        }),
      );
    }
  }
  const unknown = services.filter((s) => s.usageUnknown);
  if (unknown.length > 0) {
    alerts.push(
      alertAt(ctx, pool, place, {
        type: 'governor.degraded',
        severity: 'WARNING',
        key: 'usage',
        summary: usageUnknownSummary(where, unknown),
        details: {
          reason: 'usage-unknown',
          services: unknown.map((s) => ({
            name: s.name,
            note: s.usageNote ?? null,
            from: s.from,
            to: s.to,
          })),
        },
      }),
    );
  }
  for (const s of services) {
    if (isStarved(s.to, s.want, s.peak)) {
      alerts.push(
        alertAt(ctx, pool, place, {
          type: 'service.starved',
          severity: 'WARNING',
          service: s.name,
          summary: `${starvedLead(s.name, s.to)}, short of ${wantWords(s)}`,
          details: {
            cap: s.to,
            demand: s.want,
            peak: s.peak,
            inUse: s.inUse,
            shortfall: s.want - s.to,
          },
        }),
      );
    }
  }
  return alerts;
}

/** pool.over-budget in words: the caps observed, and what the plan does about them. */
function overBudgetSummary(where: string, pool: PlanPool): string {
  return `Caps in ${where} sum to ${pool.capsBefore} GPUs, over the budget of ${pool.budget}: ${
    pool.capsAfter >= pool.capsBefore
      ? 'the plan cannot lower them (governor plan shows what holds each)'
      : pool.budget !== null && pool.capsAfter <= pool.budget
        ? `the plan lowers them to ${pool.capsAfter}`
        : `the plan lowers them to ${pool.capsAfter}, still over (governor plan shows what holds the rest)`
  }`;
}

/**
 * The plan's `pool.over-budget` conditions told with the caps the run's writes left (core/as-left.ts):
 * the condition itself is judged on the caps observed before the plan, and holds either way, but
 * its "the plan lowers them to N" is only true of the fleet when the lowerings landed. Where they
 * did not all land (denied, skipped, refused, deferred), the summary says what the writes left and
 * `details.capsLeft` holds it. A pool where a write may or may not have landed, or where someone
 * else changed a service, keeps the plan's word. Not for a dry run: nothing was meant to be written.
 */
function overBudgetAsLeft(
  conditions: readonly Alert[],
  plan: Plan,
  writes: readonly WriteResult[],
): Alert[] {
  return conditions.map((a) => {
    if (a.type !== 'pool.over-budget' || a.details['source'] === 'verify') return a;
    const pool = plan.pools.find((p) => alertPoolKey(p) === alertPoolKey(a));
    if (!pool || pool.budget === null || pool.capsAfter >= pool.capsBefore) return a;
    if (writesInPool(plan, pool, writes).some((w) => CAP_UNKNOWN.has(w.cause))) return a;
    const left = poolCapsAsLeft(plan, pool, capsAsLeft(plan, pool.project, writes));
    if (left === pool.capsAfter) return a;
    // The plan's words, as poolConditions wrote them: anything else is left as it is.
    if (a.summary !== overBudgetSummary(poolWords(pool), pool)) return a;
    const still =
      left > pool.budget ? ", still over (the run's apply.failed or skipped writes say why)" : '';
    return restated(
      a,
      `Caps in ${poolWords(pool)} sum to ${pool.capsBefore} GPUs, over the budget of ${pool.budget}: the plan lowers them to ${pool.capsAfter}, but its writes left them at ${left}${still}`,
      { capsLeft: left },
    );
  });
}

/**
 * governor.degraded (usage-unknown) in words. Fail static holds their caps, except where the
 * budget or a ceiling comes first (rules 1, 2).
 */
function usageUnknownSummary(
  where: string,
  unknown: readonly { from: number; to: number }[],
): string {
  const lowered = unknown.filter((s) => s.to < s.from).length;
  const held =
    lowered === 0
      ? unknown.length === 1
        ? 'its cap is held'
        : 'their caps are held'
      : lowered === unknown.length
        ? `${lowered === 1 ? 'its cap is' : 'their caps are'} lowered all the same: the budget or a ceiling requires it`
        : `their caps are held, except ${lowered} lowered because the budget or a ceiling requires it`;
  return `Usage unknown for ${plural(unknown.length, 'service')} in ${where}: ${held}`;
}

/**
 * The plan's `governor.degraded` (usage-unknown) conditions told with the caps the run's writes
 * left: a lowering the budget or a ceiling required that was not written (denied, skipped) leaves
 * the cap held, so "lowered all the same" would tell the plan, not the fleet. Each such service's
 * `to` becomes the cap in force (its `planned` keeps the plan's), and the summary is said again.
 * A write that may have landed, or a service someone else changed, keeps the plan's word (capLeft).
 */
export function usageUnknownAsLeft(
  conditions: readonly Alert[],
  writes: readonly WriteResult[],
): Alert[] {
  return conditions.map((a) => {
    if (a.type !== 'governor.degraded' || a.details['reason'] !== 'usage-unknown') return a;
    const { region, accelerator, zonalRedundancy } = a;
    const listed = a.details['services'];
    if (region === null || accelerator === null || zonalRedundancy === null) return a;
    if (!Array.isArray(listed)) return a;
    const where = poolWords({ region, accelerator, zonalRedundancy });
    const services = listed as { name?: unknown; from?: unknown; to?: unknown }[];
    if (!services.every((s) => typeof s.from === 'number' && typeof s.to === 'number')) return a;
    const told = services as { name: string; from: number; to: number }[];
    if (a.summary !== usageUnknownSummary(where, told)) return a;
    let changed = false;
    const asLeft = told.map((s) => {
      const cap = capLeft(writesOf(writes, { project: a.project, region: a.region, name: s.name }));
      if (cap === null || cap === s.to) return s;
      changed = true;
      return { ...s, to: cap, planned: s.to };
    });
    if (!changed) return a;
    return restated(a, usageUnknownSummary(where, asLeft), { services: asLeft });
  });
}

/**
 * The plan's conditions told as the run's writes left the fleet: `service.starved` judged on the
 * caps in force, and in an enforcing run `pool.over-budget` and usage-unknown with what the writes
 * left of the plan's lowerings (a dry run writes nothing: its plan is what it tells).
 */
export function conditionsAsLeft(
  conditions: readonly Alert[],
  plan: Plan,
  writes: readonly WriteResult[],
  mode: Plan['mode'],
): Alert[] {
  const told =
    mode === 'enforce'
      ? usageUnknownAsLeft(overBudgetAsLeft(conditions, plan, writes), writes)
      : conditions;
  return starvedAsLeft(told, writes);
}

/** How a starved service's summary begins: the cap it is left with. */
function starvedLead(name: string, cap: number): string {
  return `${name} gets ${plural(cap, 'instance')}`;
}

/**
 * The plan's `service.starved` conditions judged on the caps the run left in force, not the ones
 * it planned: a lowering that was not written (denied, skipped, refused) leaves the service its
 * old cap, and a raise written short of the plan (room ran out) or lowered back leaves it less.
 * Such a condition is restated with the cap in force, or left out when that cap is no longer
 * starved. A write that may or may not have landed (`uncertain`) and a service with no write keep
 * the plan's word. A raise not written does not make its service starved here: the run's
 * `apply.failed` or skipped write says so, and the next run plans again on what is in force.
 */
export function starvedAsLeft(
  conditions: readonly Alert[],
  writes: readonly WriteResult[],
): Alert[] {
  return conditions.flatMap((a) => {
    if (a.type !== 'service.starved' || a.service === null) return [a];
    const cap = capLeft(writesOf(writes, { ...a, name: a.service }));
    const planned = a.details.cap;
    if (cap === null || typeof planned !== 'number' || cap === planned) return [a];
    const want = a.details.demand;
    const peak = a.details.peak;
    if (typeof want !== 'number' || !(typeof peak === 'number' || peak === null)) return [a];
    if (!isStarved(cap, want, peak)) return [];
    const lead = starvedLead(a.service, planned);
    const summary = a.summary.startsWith(lead)
      ? starvedLead(a.service, cap) + a.summary.slice(lead.length)
      : a.summary;
    return [restated(a, summary, { cap, shortfall: want - cap })];
  });
}

/**
 * The cap one service's writes of a run left in force, in the order they were made (a raise, then
 * its lowering back); null when nothing was tried or the run cannot tell: a write that may or may
 * not have landed, or a service someone else changed or deleted since it was observed.
 */
function capLeft(writes: readonly WriteResult[]): number | null {
  if (writes.some((w) => CAP_UNKNOWN.has(w.cause))) return null;
  return capWritten(writes) ?? writes[0]?.from ?? null;
}

/** What a starved service is short of, as its plan row tells it. */
function wantWords(s: ServiceFacts): string {
  const bound = heldBound(s.want, s.demand);
  return bound === null
    ? `its demand of ${s.want}`
    : `its ${bound} of ${s.want} (its demand is ${s.demand ?? '?'})`;
}
