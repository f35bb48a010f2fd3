import { GovernorError } from './errors.js';
import type { Alert } from './alert.js';
import { cut, fill, Heap, type Slot } from './allocate.js';
import { isStarved, poolConditions, type AlertContext } from './conditions.js';
import { estimateDemand } from './demand.js';
import { beyondSkew } from './duration.js';
import {
  likelihood,
  readEvidence,
  tailLikelihood,
  weightedLikelihood,
  type Evidence,
} from './evidence.js';
import {
  executionOrder,
  isUrgent,
  type Plan,
  type PlanChange,
  type PlanPool,
  type PlanService,
  type PoolStatus,
} from './plan.js';
import type { Policy } from './policy.js';
import { quotaProblem } from './problems.js';
import {
  compareText,
  poolBudget,
  poolKey,
  poolSettings,
  policyPools,
  quotaInstances,
  type PoolId,
} from './pool.js';
import { compileRules, type Settings } from './rules.js';
import type { Snapshot, SnapshotService } from './snapshot.js';
import { heldBound, renderReason, type PlanWhy } from './why.js';

/**
 * The planner: (snapshot, policy, time) → plan. Pure: no I/O, no clock, no randomness. For each
 * pool it works in whole instances, in the steps the README numbers ("How the governor decides"),
 * within each service's bounds: floor = max(1, min instances, policy min); ceiling = min(policy
 * max, quota ÷ GPUs).
 *
 *  1. protect: each service starts at what it has in use, at most its current cap, within its
 *     floor and ceiling; usage unknown → its current cap, within them (fail static).
 *  2. repair: if even that does not fit the budget, cut lowest priority first (weighted within a
 *     priority), never below floors.
 *  3. peaks, while nobody in the pool is refused and every peak fits: each tier, as step 4
 *     reaches it, first rises to its peaks.
 *  4. demand: priority tiers, highest first, each next instance where it is most likely used
 *     (likelihood bands, stickiness, then weighted max-min). Loan guard: when every lower
 *     priority may be preempted, a tier keeps its caps up to its guard (most wanted + largest
 *     one-minute rise) before they get the room.
 *  5. calm: a service above its allocation whose scale-down delay has not run out keeps its cap,
 *     unless the room is needed; the room needed is taken back from the highest levels first.
 *  6. burst: what is left first keeps current caps (no write for idle room), then is shared by
 *     weight up to ceilings.
 *  7. order: per pool, decreases then increases, so that the sum stays within budget after every
 *     write (urgent pools' decreases first of all); then limits.maxChangesPerRun keeps a prefix.
 */

interface PlanOptions {
  /** Identifies the run in alerts; defaults to one derived from the time. */
  runId?: string;
  /**
   * Asked every few services while rules are matched, and between steps: true stops planning with
   * a PlanningStoppedError (the caller's run deadline passed). The core has no clock, so the
   * caller decides what time it is.
   */
  shouldStop?: () => boolean;
}

/** Planning was stopped by `PlanOptions.shouldStop`: there is no plan, and nothing to write. */
export class PlanningStoppedError extends GovernorError {}

/** Services matched between two calls to `shouldStop`. */
const STOP_CHECK_EVERY = 32;

/** Rule resolution that asks `shouldStop` every STOP_CHECK_EVERY services. */
function stoppable<S>(resolve: (s: S) => Settings, shouldStop: () => boolean): (s: S) => Settings {
  let matched = 0;
  return (s) => {
    if (matched++ % STOP_CHECK_EVERY === 0 && shouldStop()) {
      throw new PlanningStoppedError(
        `planning stopped after matching ${matched - 1} services against the policy's rules: the run deadline passed`,
      );
    }
    return resolve(s);
  };
}

interface Member {
  svc: SnapshotService;
  /** The service's name (the sort key, and every row's), read once from the snapshot. */
  name: string;
  /** Its place in the pool's name order, once the pool's services are sorted. */
  order: number;
  settings: Settings;
  cap: number; // current max instances
  g: number;
}

interface Governed extends Member, Slot {
  /** Its pool, and the service's etag: what its change carries besides the name. */
  pool: PoolId;
  etag: string;
  kind: 'active' | 'held' | 'fixed';
  floor: number;
  ceiling: number;
  /** The ceiling is the serving revision's own max. */
  ceilingByRevision: boolean;
  inUse: number | null;
  peak: number | null;
  demand: number | null; // raw estimate, instances
  want: number; // demand within [protected, ceiling]
  peakTarget: number; // observed peak within [protected, ceiling]
  protect: number;
  alloc: number; // after steps 1-4
  why: PlanWhy;
  stickyUntil: number | null;
  /** Per-minute evidence (evidence.ts); null without per-minute counts. */
  ev: Evidence | null;
  /** Refused within its reclaim window (or, without counts, the snapshot says it ran at its cap). */
  refused: boolean;
  /** Lowered within its reverse delay and not refused since: not raised above its cap. */
  reverseHold: { loweredAt: string; until: string } | null;
  /** In-use instances taken by a higher priority (`preempt`). */
  preempted: number;
  /** Another service of the pool was refused within the reclaim window. */
  poolRefused: boolean;
  /** The ordering key of its next instance while the tier is filled (scoreNext). */
  nextScore: number;
  nextHeld: boolean;
  deferredTo?: number; // the planned cap, when the change limit held the change back
  reason?: string; // `why` in words, once it is final
}

/** The reason of a service, rendered once its `why` is final. */
function reasonOf(m: Governed): string {
  m.reason ??= renderReason(m.why);
  return m.reason;
}

interface PoolWork {
  id: PoolId;
  key: string;
  quota: number | null;
  quotaSource: string;
  /** Why the budget cannot be known although the quota may be; null when it can. */
  budgetUnknown: string | null;
  reserve: number;
  /** Its services' working rows, in name order once gathered. */
  members: (Member | Governed)[];
  unmanaged: Member[];
  unmanagedUsage: number;
  /** Where `unmanagedUsage` comes from, as the snapshot names it. */
  usageSources: { source: string; gpus: number }[];
  governed: Governed[];
}

interface PoolDecision {
  budget: number | null;
  unmanagedGpus: number;
  capsBefore: number;
  floorsGpus: number;
  status: PoolStatus;
  note: string;
  /** Governed services to write, decreases first. */
  changes: Governed[];
}

export function plan(
  snapshot: Snapshot,
  policy: Policy,
  atIso: string,
  options: PlanOptions = {},
): Plan {
  const atMs = Date.parse(atIso);
  if (Number.isNaN(atMs)) throw new RangeError(`bad time ${atIso}`);
  const at = new Date(atMs).toISOString();
  const runId = options.runId ?? `plan-${at}`;
  const rules = compileRules(policy, atMs);
  const resolve = options.shouldStop ? stoppable(rules, options.shouldStop) : rules;
  const pools = gatherPools(snapshot, policy, resolve, atMs);
  if (options.shouldStop?.()) {
    throw new PlanningStoppedError('planning stopped before allocating: the run deadline passed');
  }

  const ctx: AlertContext = { at, runId, pressure: policy.alerts.pressure };
  const decided = pools.map((work) => ({ work, ...planPool(work, atMs, ctx.pressure) }));

  // Execution order (executionOrder): urgent pools first, decreases before increases; the change
  // limit keeps a prefix, which keeps every pool within budget.
  const ordered = executionOrder(
    decided.map((d) => ({ urgent: isUrgent(d.status), changes: d.changes })),
    (m) => m.level < m.cap,
  );
  const limit = policy.limits.maxChangesPerRun;
  for (const m of ordered.slice(limit)) {
    m.why.deferred = { limit, stays: m.cap, planned: m.level };
    m.deferredTo = m.level;
    m.level = m.cap;
  }

  const planPools: PlanPool[] = [];
  const services: PlanService[] = [];
  const alerts: Alert[] = [];
  for (const d of decided) {
    const pool = poolRow(d.work, d);
    planPools.push(pool);
    // Both lists are in name order: merge them.
    const { unmanaged, governed } = d.work;
    for (let u = 0, g = 0; u < unmanaged.length || g < governed.length;) {
      const um = unmanaged[u];
      const gm = governed[g];
      if (um && (!gm || um.order < gm.order)) {
        services.push(unmanagedRow(um, d.work.quota));
        u++;
      } else if (gm) {
        services.push(governedRow(gm));
        g++;
      }
    }
    // Conditions are judged on the plan as it will be carried out (after deferral).
    alerts.push(
      ...poolConditions(
        ctx,
        pool,
        d.work.governed
          .filter(
            (m) => m.kind === 'held' || (m.kind === 'active' && isStarved(m.level, m.want, m.peak)),
          )
          .map((m) => ({
            name: m.name,
            from: m.cap,
            to: m.level,
            want: m.want,
            demand: m.demand,
            peak: m.peak,
            inUse: m.inUse,
            usageUnknown: m.kind === 'held',
            // Only a service whose usage is unknown is told with its note.
            usageNote: m.kind === 'held' ? m.svc.usageNote : undefined,
          })),
        // Only `pool.infeasible` names the floors: no other pool reads them.
        d.status === 'infeasible'
          ? d.work.governed.map((m) => ({
              name: m.name,
              gpus: (m.kind === 'fixed' ? m.cap : m.floor) * m.g,
              minInstances: m.svc.minInstances,
              atCap: m.kind === 'fixed',
            }))
          : [],
      ),
    );
  }
  const toChange = (m: Governed, to: number): PlanChange => ({
    project: m.pool.project,
    region: m.pool.region,
    name: m.name,
    accelerator: m.pool.accelerator,
    zonalRedundancy: m.pool.zonalRedundancy,
    from: m.cap,
    to,
    gpusPerInstance: m.g,
    etag: m.etag,
    why: m.why,
    reason: reasonOf(m),
  });
  return {
    version: 1,
    at,
    runId,
    mode: policy.mode,
    pools: planPools,
    services,
    changes: ordered.slice(0, limit).map((m) => toChange(m, m.level)),
    deferred: ordered.slice(limit).map((m) => toChange(m, m.deferredTo ?? m.level)),
    alerts,
  };
}

// ---------------------------------------------------------------------------------------------

function gatherPools(
  snapshot: Snapshot,
  policy: Policy,
  resolve: (s: SnapshotService) => Settings,
  atMs: number,
): PoolWork[] {
  const projects = new Set(policy.projects);
  const regions = policy.regions ? new Set(policy.regions) : null;
  const inScope = (p: PoolId) => projects.has(p.project) && (!regions || regions.has(p.region));
  // The usage is what was observed at takenAt: its minutes are read back from then, whatever the
  // plan's time (`--at` moves the policy's clock: windows and delays, not the observation's age).
  const observedMs = Date.parse(snapshot.takenAt);
  const works = new Map<string, PoolWork>();
  // Pools by project, region, accelerator and zonal redundancy, without building a key string for
  // every service.
  const index = new Map<string, Map<string, Map<string, [PoolWork | null, PoolWork | null]>>>();
  const workFor = (id: PoolId): PoolWork => {
    let byRegion = index.get(id.project);
    if (!byRegion) index.set(id.project, (byRegion = new Map()));
    let byAccel = byRegion.get(id.region);
    if (!byAccel) byRegion.set(id.region, (byAccel = new Map()));
    let pair = byAccel.get(id.accelerator);
    if (!pair) byAccel.set(id.accelerator, (pair = [null, null]));
    const slot = id.zonalRedundancy ? 0 : 1;
    let w = pair[slot];
    if (!w) {
      const pid = {
        project: id.project,
        region: id.region,
        accelerator: id.accelerator,
        zonalRedundancy: id.zonalRedundancy,
      };
      const key = poolKey(pid);
      // A quota the policy sets comes before the snapshot's.
      const ps = poolSettings(policy, pid);
      w = {
        id: pid,
        key,
        quota: ps.quota,
        quotaSource: ps.quota !== null ? 'policy' : 'unknown',
        budgetUnknown: null,
        reserve: ps.reserve,
        members: [],
        unmanaged: [],
        unmanagedUsage: 0,
        usageSources: [],
        governed: [],
      };
      pair[slot] = w;
      works.set(key, w);
    }
    return w;
  };
  for (const p of snapshot.pools) {
    if (!inScope(p)) continue;
    const w = workFor(p);
    if (p.budgetUnknown) w.budgetUnknown = p.budgetUnknown;
    if (p.quota !== null && w.quotaSource !== 'policy') {
      w.quota = p.quota;
      w.quotaSource = p.quotaSource ?? 'snapshot';
    } else if (p.quota === null && w.quota === null) {
      // Why it is unknown, in the observation's words (observe: `unreadable: <error>`, or no entry
      // for the region), else as the snapshot's problems recorded it: a plan from a snapshot
      // then tells it as the live plan's observation did, not in a warning line alone.
      const why = p.quotaSource || quotaProblem(snapshot.problems, w.key);
      if (why) w.quotaSource = `unknown (${why})`;
    }
  }
  for (const id of policyPools(policy)) {
    if (inScope(id)) workFor(id);
  }
  for (const u of snapshot.unmanagedUsage) {
    if (!inScope(u)) continue;
    const w = workFor(u);
    w.unmanagedUsage += u.gpus;
    w.usageSources.push({ source: usageSource(u.source), gpus: u.gpus });
  }
  // Every pool's quota is known here: each service's working row is made in the snapshot's order
  // (one pass over it), then the pool's rows are put in name order.
  for (const svc of snapshot.services) {
    if (!inScope(svc)) continue;
    const w = workFor(svc);
    const settings = resolve(svc);
    w.members.push(
      settings.managed
        ? toGoverned(svc, settings, w, atMs, observedMs)
        : {
            svc,
            name: svc.name,
            order: 0,
            settings,
            cap: svc.maxInstances,
            g: svc.gpusPerInstance,
          },
    );
  }
  for (const w of works.values()) {
    // Name order within the pool: the tie-break of every allocation step, whatever the input order.
    const list = w.members.sort((a, b) => compareText(a.name, b.name));
    for (let order = 0; order < list.length; order++) {
      const m = list[order] as Member | Governed;
      m.order = order;
      if ('kind' in m) w.governed.push(m);
      else w.unmanaged.push(m);
    }
  }
  return [...works.values()].sort((a, b) => compareText(a.key, b.key));
}

function toGoverned(
  svc: SnapshotService,
  settings: Settings,
  work: PoolWork,
  atMs: number,
  observedMs: number,
): Governed {
  const quota = work.quota;
  const cap = svc.maxInstances;
  const g = svc.gpusPerInstance;
  let floor = Math.max(1, svc.minInstances, settings.min);
  // Cloud Run refuses a max instances whose GPUs exceed the regional quota, and one below the
  // service's min instances (GCP-facts: "Max instances must be set to N or fewer ... Quota
  // violated"; "max_instance_count must be greater than or equal to min_instance_count"), so a
  // floor above the quota's ceiling yields to it, and a service whose own min instances are above
  // it can be written no max at all: it is left as it is (like one being deployed).
  const quotaCeiling = quota === null ? Infinity : quotaInstances(quota, g);
  let ceiling = Math.min(settings.max ?? Infinity, quotaCeiling);
  let floorAboveCeiling: PlanWhy['floorAboveCeiling'];
  let unwritable = false;
  if (floor > ceiling) {
    if (floor <= quotaCeiling) {
      floorAboveCeiling = { floor, ceiling };
      ceiling = floor;
    } else if (svc.minInstances <= quotaCeiling && quotaCeiling >= 1) {
      // Above the policy's max as well, the floor would win that; not the quota.
      floorAboveCeiling = { floor, ceiling: quotaCeiling, wins: 'quota' };
      floor = ceiling = quotaCeiling;
    } else {
      floorAboveCeiling = {
        floor,
        ceiling: quotaCeiling,
        wins: 'neither',
        minInstances: svc.minInstances,
      };
      unwritable = true;
    }
  }
  // The serving revision's own max bounds the cap in force whatever service-level max is written
  // (snapshot.ts revisionMaxInstances), and only a deploy changes it: planned above it, the room
  // would go to a cap the service cannot reach while others are refused, and every run would write
  // the same raise again with the cap in force unmoved (rule 7). So it is the ceiling, and a floor
  // above it yields to it. Where the service's own min instances are above it, Cloud Run takes no
  // service-level max below them, and any it takes leaves the cap in force at the revision's max:
  // no write moves that cap, so the service is left as it is, counted at its cap (unwritable).
  const revisionMax = svc.revisionMaxInstances;
  if (!unwritable && revisionMax !== undefined && svc.minInstances > revisionMax) {
    floorAboveCeiling = {
      floor,
      ceiling: revisionMax,
      wins: 'revision',
      minInstances: svc.minInstances,
    };
    unwritable = true;
  }
  const byRevision = !unwritable && revisionMax !== undefined && revisionMax < ceiling;
  if (byRevision) {
    ceiling = revisionMax;
    if (floor > ceiling) {
      floorAboveCeiling = { floor, ceiling, wins: 'revision' };
      floor = ceiling;
    }
  }
  const usage = svc.usage;
  let kind: Governed['kind'];
  let demand: number | null = null;
  let protect: number;
  let want: number;
  let peakTarget: number;
  let stickyUntil: number | null = null;
  let ev: Evidence | null = null;
  let refused = false;
  let reverseHold: Governed['reverseHold'] = null;
  let futureStamps: PlanWhy['futureStamps'] = undefined;
  let basis: PlanWhy['basis'];
  if (svc.reconciling) {
    kind = 'fixed';
    protect = want = peakTarget = cap;
    basis = { kind: 'deploying' };
  } else if (unwritable) {
    kind = 'fixed';
    protect = want = peakTarget = cap;
    basis = { kind: 'unwritable' };
  } else if (usage === null) {
    kind = 'held';
    protect = want = peakTarget = clamp(cap, floor, ceiling);
    basis = {
      kind: 'usage-unknown',
      heldAt: protect,
      note: svc.usageNote ?? null,
      ...(protect !== cap
        ? { bound: protect > cap ? ('floor' as const) : ('ceiling' as const) }
        : {}),
    };
  } else {
    kind = 'active';
    ev = readEvidence(usage, observedMs, settings.lookbackMs, settings.reclaimWindowMs);
    const est = estimateDemand(
      usage,
      cap,
      settings.headroom,
      settings.targetUtilization,
      ev?.refusals ?? null,
      ev?.rising ?? null,
    );
    refused = est.saturated;
    demand = est.instances;
    // A last change dated later than now (beyond the clock skew allowed) was stamped on a wrong
    // clock or by hand: it starts no delay, or the delay would hold for good; the reason says so.
    const loweredAhead = stampAhead(svc.lastLoweredAt, atMs);
    const changedAhead = stampAhead(svc.lastChangedAt, atMs);
    if (loweredAhead !== null || changedAhead !== null) {
      futureStamps = {
        ...(changedAhead !== null ? { lastChangedAt: changedAhead } : {}),
        ...(loweredAhead !== null ? { lastLoweredAt: loweredAhead } : {}),
      };
    }
    const lowered =
      svc.lastLoweredAt && loweredAhead === null ? Date.parse(svc.lastLoweredAt) : null;
    // The hold includes its last instant (a raise exactly `reverseDelay` after the lowering is
    // still "within" it, as the bench counts a reversal), and `0s` is no delay at all (README),
    // not a hold of a lowering stamped at this very instant.
    if (
      lowered !== null &&
      settings.reverseDelayMs > 0 &&
      lowered + settings.reverseDelayMs >= atMs
    ) {
      // Refused at its new cap since it was lowered: the hold ends. A minute's point is stamped
      // at its end, so the minute stamped at the lowering counts only 429s before it, at the cap
      // it had then: only a later one was refused at the new cap.
      const refusedSince = ev?.lastRefusedMs != null && ev.lastRefusedMs > lowered;
      if (!refusedSince)
        reverseHold = {
          loweredAt: new Date(lowered).toISOString(),
          until: new Date(lowered + settings.reverseDelayMs).toISOString(),
        };
    }
    protect = clamp(Math.min(cap, usage.current), floor, ceiling);
    want = Math.max(protect, clamp(demand, floor, ceiling));
    const peak = Math.max(usage.peak, usage.current);
    peakTarget = Math.min(want, Math.max(protect, clamp(peak, floor, ceiling)));
    basis = { kind: 'demand', estimate: est };
    if (svc.lastChangedAt !== null && changedAhead === null) {
      const until = Date.parse(svc.lastChangedAt) + settings.scaleDownDelayMs;
      if (until > atMs) stickyUntil = until;
    }
  }
  // Key order is the JSON's: floorAboveCeiling, basis, maxUnset, then the clauses of later steps.
  const why: PlanWhy = floorAboveCeiling ? { floorAboveCeiling, basis } : { basis };
  if (svc.maxNote) why.maxCounted = { countedAt: cap, how: svc.maxNote };
  else if (svc.maxUnset) why.maxUnset = maxUnsetOf(cap, quota);
  if (futureStamps) why.futureStamps = futureStamps;
  return {
    svc,
    name: svc.name,
    order: 0, // set once the pool is in name order
    pool: work.id,
    etag: svc.etag,
    settings,
    cap,
    g,
    level: protect,
    cost: g,
    weight: settings.weight,
    kind,
    floor,
    ceiling,
    ceilingByRevision: byRevision,
    inUse: usage ? usage.current : null,
    peak: usage ? Math.max(usage.peak, usage.current) : null,
    demand,
    want,
    peakTarget,
    protect,
    alloc: protect,
    why,
    stickyUntil,
    ev,
    refused,
    reverseHold,
    preempted: 0,
    poolRefused: false,
    nextScore: 0,
    nextHeld: false,
    // Set later, but present from the start: every working row keeps one shape.
    deferredTo: undefined,
    reason: undefined,
  };
}

/** The stamp when it lies later than `atMs` beyond the clock skew allowed, else null. */
function stampAhead(time: string | null | undefined, atMs: number): string | null {
  return time != null && beyondSkew(time, atMs) ? time : null;
}

function planPool(work: PoolWork, atMs: number, pressure: number): PoolDecision {
  const { quota } = work;
  const unmanagedCaps = sum(work.unmanaged, (m) => m.cap * m.g);
  const unmanagedGpus = unmanagedCaps + work.unmanagedUsage;
  // Unmanaged usage that could not be read leaves the budget unknown, as an unknown quota does.
  const budget =
    work.budgetUnknown !== null
      ? null
      : poolBudget({
          quota,
          reserve: work.reserve,
          unmanagedCapsGpus: unmanagedCaps,
          otherUsageGpus: work.unmanagedUsage,
        });
  const all = work.governed;
  const active = all.filter((m) => m.kind === 'active');
  const movable = all.filter((m) => m.kind !== 'fixed');
  const fixedGpus = sum(all, (m) => (m.kind === 'fixed' ? m.cap * m.g : 0));
  const capsBefore = sum(all, (m) => m.cap * m.g);
  const floorsGpus = fixedGpus + sum(movable, (m) => m.floor * m.g);

  let status: PoolStatus = 'ok';
  let note: string;
  if (budget === null) {
    status = 'unknown-quota';
    const why = work.budgetUnknown;
    note = why
      ? `budget unknown (${why}): nothing raised (fail static)`
      : `quota ${work.quotaSource} and the policy gives none: nothing raised (fail static)`;
    for (const m of movable) {
      const to = Math.min(m.cap, m.ceiling);
      m.level = to;
      m.why.pool = {
        kind: 'quota-unknown',
        loweredToCeiling: to < m.cap ? m.ceiling : null,
        ...(why ? { budgetUnknown: why } : {}),
      };
      heldShort(m);
    }
  } else if (floorsGpus > budget) {
    status = 'infeasible';
    note = `floors need ${floorsGpus} GPUs but the budget is ${budget}: caps lowered to their floors as far as that funds another's floor, none raised past the quota`;
    // Floors yield to the quota (docs/rules.md, promise 1): a cap above its floor comes down to
    // it; a cap below its floor rises toward it only with what the budget has left once every
    // other cap is at its floor (or, deploying, at its cap), highest priority first.
    for (const m of movable) m.level = Math.min(m.cap, m.floor);
    let left = budget - fixedGpus - sum(movable, (m) => m.level * m.g);
    left = fillByPriority(movable, (m) => m.floor, left);
    // What is left cannot buy an instance of any service below its floor: it goes back to the
    // caps just lowered, highest priority first, so no cut is made that funds nothing.
    fillByPriority(movable, (m) => Math.min(m.cap, m.ceiling), left);
    for (const m of movable) {
      const side =
        m.level < m.floor
          ? { belowFloor: { from: m.cap, to: m.level } }
          : m.level > m.floor
            ? { aboveFloor: m.level }
            : {};
      m.why.pool = { kind: 'infeasible', floorsGpus, budget, floor: m.floor, ...side };
      heldShort(m);
    }
  } else {
    const room = budget - fixedGpus;
    status = capsBefore > budget ? 'over-budget' : 'ok';
    note =
      capsBefore > budget
        ? `caps ${capsBefore} exceed the budget ${budget} by ${capsBefore - budget}: lowered to fit`
        : '';
    allocate(movable, active, room);
    const demandGpus = fixedGpus + sum(movable, (m) => m.want * m.g);
    const ratio = budget > 0 ? demandGpus / budget : demandGpus > 0 ? Infinity : 0;
    if (status === 'ok' && ratio >= pressure) status = 'pressure';
    if (status !== 'over-budget') note = `demand ${demandGpus} of budget ${budget} GPUs`;
  }

  const raised = all.some((m) => m.kind !== 'fixed' && m.level > m.cap);
  const overBudget = budget !== null && capsBefore > budget;
  // GPUs the plan leaves free in the pool: none to tell where its quota is unknown, none to give
  // where floors exceed the budget (the rule there raises nothing past a cap).
  const free =
    budget === null
      ? null
      : status === 'infeasible'
        ? 0
        : budget - fixedGpus - sum(movable, (m) => m.level * m.g);
  // The room a lower priority gives goes to a higher one's demand first (rule 6), and room free
  // before the plan to the highest raises first: a lower priority's room went to the first
  // priority, from the highest down, whose raise took more than the free room left it, or the
  // reason would name a priority whose raise the free room paid for alone.
  const freeBefore = budget === null ? 0 : budget - fixedGpus - sum(movable, (m) => m.cap * m.g);
  const raisedBy = new Map<number, number>();
  for (const v of all)
    if (v.kind !== 'fixed' && v.level > v.cap)
      raisedBy.set(
        v.settings.priority,
        (raisedBy.get(v.settings.priority) ?? 0) + (v.level - v.cap) * v.g,
      );
  const raisedDesc = [...raisedBy].sort((a, b) => b[0] - a[0]);
  const servedFirst = (priority: number): number | null => {
    let above = 0;
    for (const [p, gpus] of raisedDesc) {
      if (p <= priority) return null;
      above += gpus;
      if (above > freeBefore) return p;
    }
    return null;
  };
  for (const m of all) describe(m, raised && !overBudget, servedFirst, free);
  return {
    budget,
    unmanagedGpus,
    capsBefore,
    floorsGpus,
    status,
    note,
    changes: orderChanges(all),
  };
}

/**
 * Likelihood resolution of the allocation: instances compare in bands of 1/BANDS (5%) of
 * likelihood, so that noise in the evidence does not reorder them.
 */
const BANDS = 20;
/**
 * Stickiness: an instance a service already holds (within its current cap) counts STICK bands
 * (5%) more likely than it is, and wins a tie of keys. A move costs two writes; it happens only
 * when the receiver's next instance is more likely used than the holder's by more than that (the
 * minimum gain of a move: at least two bands apart). One band, not two: the reverse delay (rule
 * 8) already keeps a lowered service from flapping back, and a second band kept room where it was
 * used less (docs/decision-quality.md, "Stickiness of one band").
 */
const STICK = 1;
/**
 * Room above all of a service's use over the lookback stays sticky while another service is
 * refused only when its tail likelihood (evidence.ts: the most wanted's likelihood, decaying by the
 * service's minute-to-minute swing) is at least this: a spiky service keeps the room its next
 * spike needs, a smooth one's idle room moves (rule 5).
 */
const KEEP_TAIL = 0.04;

/** Likelihood that `m` uses its k-th instance: the per-minute evidence, or its peak and in use. */
function likelihoodOf(m: Governed, k: number): number {
  if (m.ev) return likelihood(m.ev, k);
  // Without per-minute counts: what is in use is certain, up to the peak even odds, beyond none.
  if (m.inUse !== null && k <= m.inUse) return 1;
  if (m.peak !== null && k <= m.peak) return 0.5;
  return 0;
}

/** Its k-th instance was never used over the lookback, but its tail keeps it sticky. */
function tailHeld(m: Governed, k: number): boolean {
  return m.ev !== null && tailLikelihood(m.ev, k) >= KEEP_TAIL;
}

/**
 * The ordering key of a service's next instance (level + 1), kept on the service itself so that
 * the heap allocates nothing per instance.
 */
function scoreNext(m: Governed): void {
  const k = m.level + 1;
  const p = likelihoodOf(m, k);
  // Room above all recent use (never used over the lookback) is no reservation (rule 5): only an
  // instance with some evidence of use, or a tail likely enough, is sticky.
  const held = k <= m.cap && (p > 0 || !m.poolRefused || tailHeld(m, k));
  m.nextHeld = held;
  m.nextScore = Math.floor(weightedLikelihood(p, m.weight) * BANDS + 1e-9) + (held ? STICK : 0);
}

/** Heap order of next instances: score, then held, then weighted max-min, then name. */
function nextFirst(a: Governed, b: Governed): boolean {
  if (a.nextScore !== b.nextScore) return a.nextScore > b.nextScore;
  if (a.nextHeld !== b.nextHeld) return a.nextHeld;
  const x = ((a.level + 1) * a.cost) / a.weight;
  const y = ((b.level + 1) * b.cost) / b.weight;
  return x < y || (x === y && a.order < b.order);
}

/**
 * Rule 6 within one priority: each next instance goes where it is most likely used (likelihood
 * band, scaled by weight, plus stickiness), ties by weighted max-min (GPUs after the instance ÷
 * weight), then name. Raises each service toward `upper`. When the next instance does not fit,
 * `preempt` may free room from lower priorities whose rule allows it (rule 6: the higher
 * priority's demand first). Returns the GPUs left.
 */
function fillByLikelihood(
  tier: readonly Governed[],
  upper: (m: Governed) => number,
  gpus: number,
  preempt: ((need: number) => number) | null,
): number {
  const heap = new Heap<Governed>(nextFirst);
  for (const m of tier) {
    if (m.level >= upper(m)) continue;
    scoreNext(m);
    heap.push(m);
  }
  let left = gpus;
  while (heap.size > 0) {
    const m = heap.pop() as Governed;
    if (m.cost > left && preempt) left += preempt(m.cost - left);
    if (m.cost > left) continue;
    m.level += 1;
    left -= m.cost;
    if (m.level < upper(m)) {
      scoreNext(m);
      heap.push(m);
    }
  }
  return left;
}

/**
 * What a tier may take from lower priorities whose rule sets `preempt`, lowest priority first.
 * The victims are found on the first call, not when the tier starts, among the services that may
 * be preempted only: most tiers never need to preempt, and finding them read every service for
 * each tier, so a policy giving each of 5,000 services its own priority spent seconds on it.
 * Until that first call only the tier's own services (of this priority) have risen, so the
 * victims, their levels and what they hold are those the tier started with.
 */
function preemptor(preemptible: readonly Governed[], priority: number): (need: number) => number {
  let take: ((need: number) => number) | null | undefined;
  return (need) => {
    if (take === undefined) take = victimsOf(preemptible, priority);
    return take ? take(need) : 0;
  };
}

/** `preemptible`: the active services whose rule sets `preempt`, in their order. */
function victimsOf(
  preemptible: readonly Governed[],
  priority: number,
): ((need: number) => number) | null {
  if (preemptible.length === 0) return null;
  const victims = preemptible.filter((v) => v.settings.priority < priority && v.level > v.floor);
  if (victims.length === 0) return null;
  const heap = new Heap<Governed>((a, b) => {
    if (a.settings.priority !== b.settings.priority)
      return a.settings.priority < b.settings.priority;
    const x = (a.level * a.cost) / a.weight;
    const y = (b.level * b.cost) / b.weight;
    return x > y || (x === y && a.order > b.order);
  });
  for (const v of victims) heap.push(v);
  // GPUs the victims hold above their floors: only this closure lowers them while the tier fills.
  let takeable = sum(victims, (v) => (v.level - v.floor) * v.cost);
  return (need) => {
    // All or nothing: instances taken that still leave the next instance unaffordable would be
    // cut for nobody (and given back to the victim's own tier later, with a false reason).
    if (takeable < need) return 0;
    let freed = 0;
    while (freed < need && heap.size > 0) {
      const v = heap.pop() as Governed;
      v.level -= 1;
      takeable -= v.cost;
      v.preempted += 1;
      // Each priority whose demand took its instances is named, highest first (tiers are filled
      // from the highest down), not only the last.
      const told = v.why.preempted;
      if (!told) v.why.preempted = { instances: v.preempted, priority };
      else {
        told.instances = v.preempted;
        if ((told.priorities?.at(-1) ?? told.priority) !== priority)
          (told.priorities ??= [told.priority]).push(priority);
      }
      freed += v.cost;
      if (v.level > v.floor) heap.push(v);
    }
    return freed;
  };
}

/**
 * The loan guard of a service (step 4): the level up to which it keeps its current cap rather than
 * lend the room to lower priorities that may all be preempted. It never raises (at most its cap)
 * and is evidence, not the cap: the most instances it wanted in a minute of the lookback plus the
 * largest rise its wanted instances made from one minute to the next (its own spike allowance).
 */
function guardOf(m: Governed): number {
  if (m.kind !== 'active' || !m.ev) return m.level;
  return Math.min(m.cap, m.ceiling, guardLevel(m, m.ev));
}

function guardLevel(m: Governed, ev: Evidence): number {
  return Math.max(ev.most, m.peak ?? 0) + ev.jump;
}

/** Steps 1–6 on one pool with `room` GPUs for the movable services. */
function allocate(movable: Governed[], active: Governed[], room: number): void {
  for (const m of movable) m.level = m.protect;
  // 2. repair: what is protected does not fit; cut lowest priority first, never below floors.
  let excess = sum(movable, (m) => m.level * m.g) - room;
  if (excess > 0) {
    for (const tier of tiers(movable, 'asc')) {
      const before = tier.map((m) => m.level);
      excess = cut(tier, (m) => m.floor, excess);
      tier.forEach((m, i) => {
        const was = before[i] ?? m.level;
        if (m.level < was) m.why.cut = { from: was, to: m.level, priority: m.settings.priority };
      });
      if (excess <= 0) break;
    }
    // Whole instances can free more than the excess. What they freed beyond it goes back first to
    // services whose usage is unknown, highest priority first: the demand step never raises them,
    // and fail static lowers them only as far as the budget needs.
    if (excess < 0) {
      const cutHeld = movable.filter((m) => m.kind === 'held' && m.why.cut);
      excess = -fillByPriority(cutHeld, (m) => m.why.cut?.from ?? m.level, -excess);
    }
  }
  // 4. demand. Each tier, highest first, rises toward its demand one instance at a time, each
  // where it is most likely used (rule 6), before a lower tier gets more than it has in use. While
  // nobody in the pool was refused and every observed peak fits, a tier's peaks come before its
  // own headroom (calm: nothing moves within a priority), but never before a higher tier's demand.
  // Once someone is refused, room above a service's use is no reservation (rule 5).
  let left = room - sum(movable, (m) => m.level * m.g);
  // The tiers of the demand step, highest first, and what each tier's loan guard kept from those
  // below it: told once the plan is final (loanHeldBy), to the lower services it kept room from.
  let tiersDesc: Governed[][] = [];
  const guardKept: { tier: number; priority: number; gpus: number }[] = [];
  const refusedCount = sum(active, (m) => (m.refused ? 1 : 0));
  const calm = refusedCount === 0;
  for (const m of active) m.poolRefused = refusedCount - (m.refused ? 1 : 0) > 0;
  // A service lowered to make room is not raised above its cap within its reverse delay.
  const held = (m: Governed, to: number) =>
    m.reverseHold ? Math.min(to, Math.max(m.level, m.cap)) : to;
  const peakOf = (m: Governed) => Math.max(m.level, held(m, m.peakTarget));
  // Whether every peak fits is judged on the peaks alone, not on reverse holds: applying a plan
  // sets holds, and the same usage must take the same path again (rule 7).
  const peakNeed = sum(active, (m) => Math.max(m.level, m.peakTarget) * m.g);
  const calmPeaks = calm && excess <= 0 && peakNeed - sum(active, (m) => m.level * m.g) <= left;
  const upper = (m: Governed) => held(m, m.want);
  if (excess <= 0) {
    const ordered = tiers(active, 'desc');
    // The services a higher priority may preempt, in the order of `active`.
    const preemptible = active.filter((v) => v.settings.preempt);
    // The loan guard's condition for each tier: there are lower priorities, and every one's rule
    // sets `preempt`. Read from the lowest tier up once, not from each tier down (quadratic in
    // the tiers: each service its own priority).
    tiersDesc = ordered;
    const guarded: boolean[] = [];
    let belowPreempt = true;
    for (let i = ordered.length - 1; i >= 0; i--) {
      guarded[i] = i < ordered.length - 1 && belowPreempt;
      belowPreempt &&= (ordered[i] ?? []).every((v) => v.settings.preempt);
    }
    for (const [i, tier] of ordered.entries()) {
      const priority = tier[0]?.settings.priority ?? 0;
      // Higher tiers' headroom may have taken the room of this tier's peaks: shared by weight.
      if (calmPeaks) left = fill(tier, peakOf, left);
      left = fillByLikelihood(tier, upper, left, preemptor(preemptible, priority));
      // The loan guard: when every lower priority's rule sets `preempt`, the room this tier
      // holds up to its guard is not lent to them (it could take it back only a run and
      // Monitoring's lag later); the tier keeps it, each next instance where it is likeliest used.
      if (!guarded[i]) continue;
      const before = tier.map((m) => m.level);
      left = fillByLikelihood(tier, guardOf, left, null);
      let keptGpus = 0;
      tier.forEach((m, j) => {
        const kept = m.level - (before[j] ?? m.level);
        keptGpus += kept * m.g;
        if (m.ev && m.cap > (before[j] ?? m.level))
          m.why.loanGuard = {
            kept,
            level: guardLevel(m, m.ev),
            most: Math.max(m.ev.most, m.peak ?? 0),
            jump: m.ev.jump,
          };
      });
      if (keptGpus > 0) guardKept.push({ tier: i, priority, gpus: keptGpus });
    }
  }
  for (const m of movable) m.alloc = m.level;
  // 5. calm: keep caps whose scale-down delay has not run out, unless the room is needed.
  const sticky = active.filter(
    (m) => m.stickyUntil !== null && m.cap > m.level && m.preempted === 0,
  );
  for (const m of sticky) m.level = Math.min(m.cap, m.ceiling);
  let over = sum(movable, (m) => m.level * m.g) - room;
  if (over > 0) {
    cut(sticky, (m) => m.alloc, over);
    for (const m of sticky) {
      if (m.level < Math.min(m.cap, m.ceiling)) m.why.stickyOverridden = true;
    }
    over = sum(movable, (m) => m.level * m.g) - room;
  }
  for (const m of sticky) {
    if (m.level > m.alloc && m.stickyUntil !== null && m.svc.lastChangedAt !== null) {
      m.why.sticky = {
        kept: m.level - m.alloc,
        // In UTC, as `until` and the reverse delay's times are: a snapshot may stamp an offset.
        raisedAt: new Date(Date.parse(m.svc.lastChangedAt)).toISOString(),
        scaleDownDelayMs: m.settings.scaleDownDelayMs,
        until: new Date(m.stickyUntil).toISOString(),
      };
    }
  }
  // 6. burst: what is left goes first to keeping the caps services already have (room nobody
  // needs stays where it is: no write is spent moving it), then by weight up to ceilings (not
  // above its cap for a service within its reverse delay). A service whose usage is unknown
  // takes part in keeping caps, never in rising: the repair cuts whole instances, and room it
  // freed beyond the excess goes back to whom it was cut from before anyone rises.
  if (over < 0) {
    const open = movable.filter(
      (m) => m.kind === 'held' || (m.kind === 'active' && m.preempted === 0),
    );
    // Levels by position in `open`: before the burst, and once caps are kept.
    const before = open.map((m) => m.level);
    const left = fill(open, (m) => Math.min(m.cap, m.ceiling), -over);
    const kept = open.map((m) => m.level);
    if (left > 0)
      fill(
        open,
        (m) =>
          m.kind === 'held'
            ? m.level
            : m.reverseHold
              ? Math.max(m.level, Math.min(m.cap, m.ceiling))
              : m.ceiling,
        left,
      );
    open.forEach((m, i) => {
      const got = m.level - (kept[i] ?? m.level);
      // Burst room kept is what the keep phase gave above the level it had, or above the level a
      // cut took it from: giving back a cut is telling less of the cut, not burst room.
      const base = Math.max(before[i] ?? m.level, m.why.cut?.from ?? 0);
      const above = (kept[i] ?? m.level) - base;
      if (above > 0) m.why.burstKept = { instances: above, cap: m.cap };
      if (got > 0) m.why.burstShared = got;
    });
  }
  // A cut is told net of what later steps gave back (the demand step, the burst); undone, it is
  // not told at all.
  for (const m of movable) {
    const c = m.why.cut;
    if (!c) continue;
    if (m.level >= c.from) delete m.why.cut;
    else c.to = m.level;
  }
  loanHeldBy(tiersDesc, guardKept);
}

/**
 * Tells each service below a tier whose loan guard kept room (`kept`, highest tier first) the
 * GPUs those guards kept, naming every keeper (the sum of two tiers' guards is not the first
 * tier's alone): only a service that ends short of what it wants or below the cap it had, as a
 * service that got both lost nothing to the guards (every GPU they kept is of a cap the burst
 * step would have kept all the same). The keepers are summed tier by tier as the tiers go down,
 * not added to every lower service at each tier, which copied each one's list once per tier
 * above it: cubic in the tiers where each service has its own priority.
 */
function loanHeldBy(
  tiersDesc: readonly Governed[][],
  kept: readonly { tier: number; priority: number; gpus: number }[],
): void {
  if (kept.length === 0) return;
  let next = 0;
  let gpus = 0;
  const priorities: number[] = [];
  for (const [j, tier] of tiersDesc.entries()) {
    for (let k = kept[next]; k !== undefined && k.tier < j; k = kept[++next]) {
      gpus += k.gpus;
      priorities.push(k.priority);
    }
    const [first] = priorities;
    if (first === undefined) continue;
    for (const v of tier) {
      if (v.level >= Math.max(v.want, Math.min(v.cap, v.ceiling))) continue;
      v.why.loanHeld = {
        gpus,
        priority: first,
        ...(priorities.length > 1 ? { priorities: [...priorities] } : {}),
      };
    }
  }
}

/**
 * A service of unknown usage that fail static would raise to its floor, but that the pool left
 * below it (an unknown quota raises nothing; infeasible floors raise it only as far as the budget
 * allows): its basis tells the cap it holds, and the pool's clause what became of the raise.
 */
function heldShort(m: Governed): void {
  const b = m.why.basis;
  if (b.kind === 'usage-unknown' && b.bound === 'floor' && m.level < b.heldAt)
    m.why.basis = { kind: 'usage-unknown', heldAt: m.cap, note: b.note };
}

/** `fill` tier by tier, highest priority first, until the GPUs run out. Returns the GPUs left. */
function fillByPriority(ms: Governed[], upper: (m: Governed) => number, gpus: number): number {
  let left = gpus;
  for (const tier of tiers(ms, 'desc')) {
    if (left <= 0) break;
    left = fill(tier, upper, left);
  }
  return left;
}

/** The rule and window a floor's or ceiling's `set` names, null where it names neither. */
function ruleOf(
  set: string,
  rule: number | null,
  window: number | null,
): { rule: number | null; window: number | null } {
  return {
    rule: set === 'rule' || set === 'window' ? rule : null,
    window: set === 'window' ? window : null,
  };
}

function tiers(ms: Governed[], dir: 'asc' | 'desc'): Governed[][] {
  const byPriority = new Map<number, Governed[]>();
  for (const m of ms) {
    const p = m.settings.priority;
    const list = byPriority.get(p) ?? [];
    list.push(m);
    byPriority.set(p, list);
  }
  const keys = [...byPriority.keys()].sort((a, b) => (dir === 'asc' ? a - b : b - a));
  return keys.map((k) => byPriority.get(k) ?? []);
}

/**
 * The clauses of a service's `why` that depend on the final plan. `moved`: others were raised;
 * `servedFirst`: the highest priority among them whose raise took room held below it, if any.
 */
function describe(
  m: Governed,
  moved: boolean,
  servedFirst: (priority: number) => number | null,
  free: number | null,
): void {
  const to = m.level;
  // Short of its demand in the plan, not at some step of it: where the quota is unknown nothing
  // is allocated, and the calm and burst steps may still give a service its demand. The pool is
  // scarce for it when what the plan leaves free buys none of its instances.
  // A bound that sets the cap, not the usage: the floor above its demand (the cap is the floor,
  // or the floor plus what the calm and burst steps kept above it), the ceiling below it (the cap
  // is the ceiling, or short of it).
  // The pool's own case tells a floor it sets; a ceiling below the demand is told all the same.
  if (m.kind === 'active' && m.demand !== null && !m.why.floorAboveCeiling) {
    const { rule, window } = m.settings;
    if (m.demand < m.floor && m.floor > 1 && !m.why.pool) {
      const set = m.svc.minInstances >= m.settings.min ? 'min-instances' : m.settings.minFrom;
      m.why.atFloor = { floor: m.floor, set, ...ruleOf(set, rule, window) };
    }
    if (m.demand > m.ceiling) {
      const set = m.ceilingByRevision
        ? 'revision'
        : m.settings.max === m.ceiling
          ? m.settings.maxFrom
          : 'quota';
      m.why.atCeiling = { ceiling: m.ceiling, set, ...ruleOf(set, rule, window) };
    }
  }
  if (m.kind === 'active' && to < m.want) {
    m.why.shortBy = m.want - to;
    // Its demand held to a bound: short of that bound, not of the demand.
    const bound = heldBound(m.want, m.demand);
    if (bound !== null) m.why.shortOf = { bound, instances: m.want };
    if (free !== null && free < m.g) m.why.scarce = true;
  }
  if (to < m.cap && m.inUse !== null && to < m.inUse) m.why.belowInUse = m.inUse;
  if (m.kind !== 'active') return;
  const kept = Math.min(m.cap, m.ceiling);
  if (moved && to < kept && !m.why.cut && !m.why.preempted && !m.why.pool) {
    const forPriority = servedFirst(m.settings.priority);
    m.why.reclaimed = {
      instances: kept - to,
      likelihood: m.ev ? Math.round(likelihood(m.ev, to + 1) * 100) / 100 : null,
      ...(forPriority !== null ? { forPriority } : {}),
    };
  }
  // The hold keeps it at what it had or what it must keep (its floor, its instances in use).
  if (m.reverseHold && to <= Math.max(m.cap, m.protect) && to < m.want)
    m.why.reverseHeld = m.reverseHold;
  if (m.ev && m.poolRefused) {
    // Held room above all of its use that its tail kept sticky (KEEP_TAIL).
    const most = m.ev.most;
    let kept = 0;
    for (let k = most + 1; k <= Math.min(to, m.cap) && tailHeld(m, k); k++) kept++;
    if (kept > 0) {
      m.why.tailHeld = {
        instances: kept,
        most,
        swing: Math.round(m.ev.swing * 100) / 100,
        likelihood: Math.round(tailLikelihood(m.ev, most + 1) * 1000) / 1000,
      };
    }
  }
}

function orderChanges(all: Governed[]): Governed[] {
  const moved = all.filter((m) => m.kind !== 'fixed' && m.level !== m.cap);
  const decreases = moved
    .filter((m) => m.level < m.cap)
    .sort((a, b) => a.settings.priority - b.settings.priority || a.order - b.order);
  const increases = moved
    .filter((m) => m.level > m.cap)
    .sort((a, b) => b.settings.priority - a.settings.priority || a.order - b.order);
  return [...decreases, ...increases];
}

function poolRow(work: PoolWork, r: PoolDecision): PlanPool {
  const all = work.governed;
  const { project, region, accelerator, zonalRedundancy } = work.id;
  // The pool's four fields named, not spread: on V8 an object literal that begins with a spread
  // gets a hidden class of its own, built property by property (about 15 µs a row on Node 20), and
  // every later read of such rows is megamorphic.
  return {
    project,
    region,
    accelerator,
    zonalRedundancy,
    quota: work.quota,
    quotaSource: work.quotaSource,
    reserve: work.reserve,
    unmanagedGpus: r.unmanagedGpus,
    unmanaged: unmanagedSources(work),
    budget: r.budget,
    capsBefore: r.capsBefore,
    capsAfter: sum(all, (m) => m.level * m.g),
    inUse: sum(all, (m) => (m.inUse ?? 0) * m.g),
    floors: r.floorsGpus,
    demand: sum(all, (m) => m.want * m.g),
    status: r.status,
    note: r.note,
  };
}

/** A snapshot's usage source in words: "worker-pool/encoder" reads "worker pool encoder". */
function usageSource(source: string): string {
  const m = /^(service|worker-pool|job)\/(.+)$/.exec(source);
  return m ? `${(m[1] as string).replace('-', ' ')} ${m[2] as string}` : source;
}

/** What the pool's unmanaged GPUs are: unmanaged services at their caps, then other usage. */
function unmanagedSources(work: PoolWork): { source: string; gpus: number }[] {
  const all = [
    ...work.unmanaged.map((m) => ({ source: `service ${m.name}`, gpus: m.cap * m.g })),
    ...work.usageSources,
  ];
  // Largest first, then by name: the same order whatever the order of the snapshot.
  return all
    .filter((s) => s.gpus > 0)
    .sort((a, b) => b.gpus - a.gpus || compareText(a.source, b.source));
}

/** A governed service's row. Its pool's id gives the four fields that make the pool. */
function governedRow(m: Governed): PlanService {
  return {
    project: m.pool.project,
    region: m.pool.region,
    name: m.name,
    accelerator: m.pool.accelerator,
    zonalRedundancy: m.pool.zonalRedundancy,
    managed: true,
    gpusPerInstance: m.g,
    from: m.cap,
    to: m.level,
    floor: m.floor,
    ceiling: Number.isFinite(m.ceiling) ? m.ceiling : null,
    demand: m.demand,
    inUse: m.inUse,
    peak: m.peak,
    priority: m.settings.priority,
    weight: m.settings.weight,
    rule: m.settings.rule,
    window: m.settings.window,
    why: m.why,
    reason: reasonOf(m),
  };
}

/**
 * How a service that sets no max is counted: at quota ÷ GPUs per instance, or, where the pool's
 * quota is unknown, at its max as observed (100, the API's default: pool.ts).
 */
function maxUnsetOf(cap: number, quota: number | null): NonNullable<PlanWhy['maxUnset']> {
  return quota === null ? { countedAt: cap, quotaUnknown: true } : { countedAt: cap };
}

function unmanagedRow(m: Member, quota: number | null): PlanService {
  const usage = m.svc.usage;
  const why: PlanWhy = {
    basis: { kind: 'unmanaged', rule: m.settings.rule, capGpus: m.cap * m.g },
  };
  if (m.svc.maxNote) why.maxCounted = { countedAt: m.cap, how: m.svc.maxNote };
  else if (m.svc.maxUnset) why.maxUnset = maxUnsetOf(m.cap, quota);
  return {
    project: m.svc.project,
    region: m.svc.region,
    name: m.svc.name,
    accelerator: m.svc.accelerator,
    zonalRedundancy: m.svc.zonalRedundancy,
    managed: false,
    gpusPerInstance: m.g,
    from: m.cap,
    to: m.cap,
    floor: null,
    ceiling: null,
    demand: null,
    inUse: usage?.current ?? null,
    peak: usage ? Math.max(usage.peak, usage.current) : null,
    priority: null,
    weight: null,
    rule: m.settings.rule,
    window: null,
    why,
    reason: renderReason(why),
  };
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  let total = 0;
  for (const x of xs) total += f(x);
  return total;
}
