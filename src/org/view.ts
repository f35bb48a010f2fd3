import pLimit from 'p-limit';
import { discoveryKey, type Discovery, type DiscoveryCache } from '../core/discovery.js';
import { beyondSkew, durationMs } from '../core/duration.js';
import { fanoutStaleAfter, type Policy } from '../core/policy.js';
import { compareText } from '../core/pool.js';
import { listOnOneLine, oneLine } from '../core/text.js';
import { cutText } from '../core/errors.js';
import { splitUnits, unitKey, unitLabel, type Unit } from '../core/units.js';
import {
  plannedAt,
  runAgeMs,
  runDatedAhead,
  StateCorruptError,
  type DiscoveryCacheStore,
  type RunRecord,
  type StateStore,
} from '../ports/index.js';

/**
 * The organisation view (`governor status --org`): every unit (a project, or a region of it past
 * `fanout.splitAbove`, shown as `project (region)`) from the state store
 * alone, without reading any project: its pools as its last run left them, the pressure and
 * an estimate of refused demand, its last run, its failures, and whether it is stuck.
 *
 * - pressure: demand ÷ budget of a pool (null when the budget is unknown, 0 or below). A pool is
 *   under pressure as the planner judges it (core/planner.ts): demand ÷ budget, unrounded, at least
 *   `alerts.pressure`, or demand with a budget of 0 or below (every GPU of it refused).
 * - refused estimate: GPUs of demand above the budget (max(0, demand − max(0, budget))), what the pool
 *   could not serve had every service wanted its estimated demand at once.
 * - stuck: no run recorded, the last run older than `fanout.staleAfter` (default 30m), a lease
 *   left behind past its expiry (a run that died holding it), or a stored state (document or
 *   lease) nobody can read, which every run of the unit fails on.
 *
 * Times are on the clock the records use, as `governor status` takes its time from what it
 * observes: the runs' own time (`at`: the emulator's virtual clock against the emulator, else the
 * wall clock) for the view's time and a last run's age; the wall clock for leases, which are always
 * on it (and for the age of records of earlier versions, which have only their wall-clock start).
 */
interface UnitPool {
  pool: string;
  budget: number | null;
  caps: number;
  /**
   * The caps are a dry run's plan, not what writes left: no run of the unit that writes has
   * recorded its pools (a unit governed in dry run only).
   */
  capsPlanned: boolean;
  demand: number;
  inUse: number;
  status: string;
  pressure: number | null;
  refusedEstimate: number;
}

export interface UnitView {
  project: string;
  /** A regional unit's region; absent for a whole project. */
  region?: string;
  lastRun: {
    runId: string;
    /** The run's own time (the clock of `takenAt`); null in records of earlier versions. */
    at: string | null;
    /** Wall clock. */
    startedAt: string;
    outcome: RunRecord['outcome'];
    ageSeconds: number;
  } | null;
  /**
   * Why the unit's state cannot be read (its document, or its lease alone), on one line; null
   * when it can. Every run of the unit fails on it, so the unit shows as stuck, and the view goes
   * on with the other units.
   */
  unreadable: string | null;
  /** Failed runs in a row, most recent first (a lease-held run counts as failed). */
  failingRuns: number;
  /** Failed runs among the kept records. */
  failedRuns: number;
  lastError: string | null;
  stuck: string | null;
  pools: UnitPool[];
}

/** The kept discovery the units come from: when it was made, and whether it is out of date. */
export interface DiscoveryView {
  /** When the search was made (the wall clock, as the dispatch stamps it); null: none kept. */
  foundAt: string | null;
  /** Its age on the wall clock (null: none kept). */
  ageSeconds: number | null;
  /** Made with the policy's own discovery settings (the units trust no other). */
  current: boolean;
  /** Why a dispatch should have replaced it by now; null when it is not out of date. */
  stale: string | null;
}

export interface OrgView {
  /** Now, on the runs' clock: the emulator's virtual time against the emulator. */
  takenAt: string;
  /** Which clock `takenAt` and the ages are on. */
  clock: OrgClock;
  /**
   * The kept discovery (null: the policy has no discovery). A search that fails
   * leaves the older result in use (org/discover.ts), so its age tells whether the units are
   * still the organisation's.
   */
  discovery: DiscoveryView | null;
  units: UnitView[];
  totals: {
    units: number;
    ok: number;
    failing: number;
    stuck: number;
    pools: number;
    poolsUnderPressure: number;
    refusedEstimate: number;
  };
}

const failed = (r: RunRecord): boolean => r.outcome !== 'ok';

/**
 * Demand ÷ budget, unrounded: Infinity for demand with no budget (0, or below 0 when unmanaged use
 * exceeds the quota: core/pool.ts poolBudget), as the pool.pressure alert judges it
 * (core/conditions.ts); null when it is unknown.
 */
function ratio(p: Pick<UnitPool, 'budget' | 'demand'>): number | null {
  if (p.budget === null) return null;
  if (p.budget <= 0) return p.demand > 0 ? Infinity : null;
  return p.demand / p.budget;
}

/**
 * Whether the pool is under pressure at `at`, as the planner judges its pool status: on the ratio
 * itself, not on its rounded `pressure` (179 of 200 is 0.895, short of 0.9), and a pool whose
 * demand has no budget at all is the most pressed of all, though its `pressure` is null.
 */
function underPressure(p: UnitPool, at: number): boolean {
  const r = ratio(p);
  return r !== null && r >= at;
}

/** `emulator`: the emulator's virtual clock (GOVERNOR_EMULATOR_ADMIN); `wall`: the wall clock. */
export type OrgClock = 'emulator' | 'wall';

/** Now on both clocks: the runs' (`nowMs`) and the wall clock, for leases. */
interface OrgNow {
  nowMs: number;
  wallMs: number;
  clock: OrgClock;
}

function unitView(
  unit: Unit,
  runs: readonly RunRecord[],
  lease: { expiresAt: string } | null,
  unreadable: string | null,
  now: OrgNow,
  staleAfterMs: number,
): UnitView {
  const last = runs[0] ?? null;
  let failingRuns = 0;
  for (const r of runs) {
    if (!failed(r)) break;
    failingRuns++;
  }
  // The caps the newest enforcing run's writes left: a dry run's are a plan nobody wrote (a
  // restore dry run plans the caps from before the governor, over the budget as they may be), so
  // they are shown only where no enforcing run recorded the pools, and said to be planned.
  const withPools =
    runs.find((r) => r.pools !== undefined && r.mode === 'enforce') ??
    runs.find((r) => r.pools !== undefined);
  const capsPlanned = withPools?.mode === 'dry-run';
  const pools: UnitPool[] = Object.entries(withPools?.pools ?? {})
    .map(([pool, p]) => ({
      pool,
      ...p,
      capsPlanned,
      pressure:
        p.budget !== null && p.budget > 0 ? Math.round((p.demand / p.budget) * 100) / 100 : null,
      // A budget below 0 refuses all the demand, and no more.
      refusedEstimate: p.budget === null ? 0 : Math.max(0, p.demand - Math.max(0, p.budget)),
    }))
    .sort((a, b) => compareText(a.pool, b.pool));
  const age = last ? Math.round(runAgeMs(last, now) / 1000) : null;
  let stuck: string | null = null;
  if (!last) stuck = 'no run recorded';
  else if (age !== null && age * 1000 > staleAfterMs) stuck = `last run ${age} s ago`;
  else if (runDatedAhead(last, now))
    stuck = `last run dated ${plannedAt(last)}, later than now: a wrong clock or a hand edit stamped it`;
  if (lease && Date.parse(lease.expiresAt) < now.wallMs)
    stuck = `a lease expired at ${lease.expiresAt} is still held${stuck ? `; ${stuck}` : ''}`;
  if (unreadable !== null) stuck = last ? `${unreadable}${stuck ? `; ${stuck}` : ''}` : unreadable;
  return {
    project: unit.project,
    ...(unit.region === undefined ? {} : { region: unit.region }),
    lastRun: last
      ? {
          runId: last.runId,
          at: last.at ?? null,
          startedAt: last.startedAt,
          outcome: last.outcome,
          ageSeconds: age ?? 0,
        }
      : null,
    unreadable,
    failingRuns,
    failedRuns: runs.filter(failed).length,
    lastError: runs.find((r) => r.error !== null)?.error ?? null,
    stuck,
    pools,
  };
}

/**
 * The units: the policy's projects and those its discovery last found, `kept` (no search is
 * made), split as a dispatch splits them from the same kept discovery.
 */
function unitsOf(policy: Policy, kept: DiscoveryCache | null): Unit[] {
  return splitUnits(
    [...policy.projects, ...(kept?.projects ?? [])],
    kept?.services,
    policy.fanout?.splitAbove,
    policy.regions,
  );
}

export async function orgView(
  policy: Policy,
  store: StateStore & DiscoveryCacheStore,
  now: OrgNow,
): Promise<OrgView> {
  const staleAfterMs = durationMs(fanoutStaleAfter(policy));
  const limit = pLimit(16);
  const kept = policy.discovery ? await store.loadDiscovery() : null;
  const all = unitsOf(policy, kept);
  const units = await Promise.all(
    all.map((u) =>
      limit(async () => {
        const key = unitKey(u);
        const [runs, lease] = await Promise.allSettled([store.listRuns(key), store.readLease(key)]);
        // A unit whose stored state cannot be read shows as such, with the others: it is the one
        // an operator must find. Any other failure (the store itself) fails the view.
        const why = [runs, lease].flatMap((r) => {
          if (r.status === 'fulfilled') return [];
          if (!(r.reason instanceof StateCorruptError)) throw r.reason;
          return [oneLine(listOnOneLine(r.reason.message))];
        });
        return unitView(
          u,
          runs.status === 'fulfilled' ? runs.value : [],
          lease.status === 'fulfilled' ? lease.value : null,
          why.length === 0 ? null : [...new Set(why)].join('; '),
          now,
          staleAfterMs,
        );
      }),
    ),
  );
  const pools = units.flatMap((u) => u.pools);
  return {
    takenAt: new Date(now.nowMs).toISOString(),
    clock: now.clock,
    discovery: policy.discovery ? discoveryView(kept, policy.discovery, policy, now.wallMs) : null,
    units,
    totals: {
      units: units.length,
      ok: units.filter((u) => u.lastRun?.outcome === 'ok' && !u.stuck).length,
      failing: units.filter((u) => u.failingRuns > 0).length,
      stuck: units.filter((u) => u.stuck !== null).length,
      pools: pools.length,
      poolsUnderPressure: pools.filter((p) => underPressure(p, policy.alerts.pressure)).length,
      refusedEstimate: pools.reduce((s, p) => s + p.refusedEstimate, 0),
    },
  };
}

/**
 * How old the kept discovery is, on the wall clock. A dispatch searches again once it is older
 * than `discovery.cacheTtl`, and dispatches come more often than `fanout.staleAfter` (the
 * schedule's rule: docs/organization.md), so one older than both together was not replaced: the
 * dispatch's searches fail (each an error event saying why) or it does not run.
 */
function discoveryView(
  kept: DiscoveryCache | null,
  d: Discovery,
  policy: Policy,
  wallMs: number,
): DiscoveryView {
  if (kept === null) return { foundAt: null, ageSeconds: null, current: false, stale: null };
  const ageMs = wallMs - Date.parse(kept.foundAt);
  const ttl = d.cacheTtl;
  const staleAfter = fanoutStaleAfter(policy);
  const current = kept.key === discoveryKey(d);
  const stale = !current
    ? 'found with other discovery settings: no dispatch has searched since the policy changed, and the units refuse these projects until one does'
    : beyondSkew(kept.foundAt, wallMs)
      ? 'dated later than now: a wrong clock or a hand edit stamped it'
      : ageMs > durationMs(ttl) + durationMs(staleAfter)
        ? `older than discovery.cacheTtl (${ttl}) and fanout.staleAfter (${staleAfter}) together: the dispatch's searches fail (its error events say why), or it does not run`
        : null;
  return { foundAt: kept.foundAt, ageSeconds: Math.round(ageMs / 1000), current, stale };
}

/** The view as text: totals, then the units that need a look, then every pool under pressure. */
export function renderOrgView(view: OrgView, pressureAt: number, maxLines = 50): string {
  const t = view.totals;
  const out: string[] = [
    `Organisation at ${view.takenAt}${view.clock === 'emulator' ? " (the emulator's virtual clock, as the runs recorded)" : ''}: ${t.units} unit(s), ${t.ok} ok, ${t.failing} failing, ${t.stuck} stuck; ${t.pools} pool(s), ${t.poolsUnderPressure} under pressure, about ${t.refusedEstimate} GPU(s) of demand above budget`,
  ];
  const k = view.discovery;
  if (k !== null) {
    out.push(
      k.foundAt === null
        ? "no discovery kept: the dispatch has not searched yet (only the policy's projects are shown)"
        : `projects found by discovery at ${k.foundAt} (${k.ageSeconds} s ago)${k.stale ? `; out of date: ${k.stale}` : ''}`,
    );
  }
  const attention = view.units.filter((u) => u.failingRuns > 0 || u.stuck !== null);
  if (attention.length > 0) out.push('', 'Needs a look:');
  for (const u of attention.slice(0, maxLines)) {
    const bits = [
      u.lastRun ? `last run ${u.lastRun.outcome} ${u.lastRun.ageSeconds} s ago` : 'never ran',
      u.failingRuns > 0 ? `${u.failingRuns} failed in a row` : '',
      u.stuck ? `stuck: ${u.stuck}` : '',
      // A record's error is the store's text, which any writer of the store may have set: on one
      // line first, then cut (whole characters, marked), so blank lines opening it cut nothing.
      u.lastError ? `error: ${cutText(oneLine(u.lastError), 120)}` : '',
    ].filter((b) => b !== '');
    out.push(`  ${unitLabel(u)}: ${bits.join('; ')}`);
  }
  if (attention.length > maxLines) out.push(`  … and ${attention.length - maxLines} more (--json)`);
  const hot = view.units
    .flatMap((u) => u.pools)
    .filter((p) => underPressure(p, pressureAt))
    .sort((a, b) => (ratio(b) ?? 0) - (ratio(a) ?? 0));
  if (hot.length > 0) out.push('', 'Pools under pressure (demand ÷ budget):');
  for (const p of hot.slice(0, maxLines)) {
    // A pool's key is the store's text, as a record's error is.
    out.push(
      `  ${oneLine(p.pool)}: ${p.pressure === null ? 'no budget' : p.pressure.toFixed(2)} (demand ${p.demand}, budget ${p.budget}, caps ${p.caps}${p.capsPlanned ? ' as a dry run planned them' : ''}, in use ${p.inUse}, ~${p.refusedEstimate} refused)`,
    );
  }
  if (hot.length > maxLines) out.push(`  … and ${hot.length - maxLines} more (--json)`);
  return out.join('\n') + '\n';
}
