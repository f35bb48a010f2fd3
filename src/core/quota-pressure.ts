import { z } from 'zod';
import { beyondSkew } from './duration.js';
import type { Plan } from './plan.js';
import { compareText, poolIdOf, poolKey, poolOfKey, poolWords } from './pool.js';
import { MAX_PREFERENCE_NAME, preferenceNameFault, QUOTA_ID } from './preference-name.js';
import { policyMax, type PolicyMaxes } from './policy-max.js';
import { plural } from './text.js';

/**
 * Sustained pressure per pool, from the runs' records, and the quota it argues for.
 *
 * Every run rolls its plan into a small per-project ledger that its run record carries (the
 * record's `pressure`): per pool, one row per UTC day with the minutes the runs covered, the
 * minutes the pool was at its budget, an estimate of the GPU-minutes it refused, and the most
 * GPUs it wanted. The newest record alone therefore holds the last {@link LEDGER_DAYS} days, however
 * few records the store keeps.
 *
 * Per run and pool (all in GPUs):
 *
 *   wanted   = the pool's demand, plus what each governed service's own estimate wanted above
 *              the ceiling it was clamped to, where that ceiling is the quota's (a service's
 *              ceiling is at most the quota, so the clamped demand alone can never show a need
 *              beyond the quota; a policy's `max` is no need a larger quota would serve)
 *   minutes  = minutes of the clock begun since the previous run (each minute counted once,
 *              however often the runs come), at most {@link MAX_GAP_MINUTES} (a run that did not
 *              happen is not evidence), 0 for the first run
 *   at budget: the budget is known and wanted ≥ budget
 *   refused GPU-minutes += max(0, wanted − budget) × minutes
 *
 * The refused figure is an estimate of demand the pool could not serve: it counts the governor's
 * demand estimate (peak, headroom, refusals, utilization: docs/rules.md), not requests Cloud Run
 * actually refused for quota, which only show in Cloud Run's logs.
 *
 * A recommendation (see {@link recommendQuotas}) is made only for sustained pressure over enough
 * history; the arithmetic is here, once, for `governor quota recommend`, for quota requests and
 * for the bench.
 */

/** Days the ledger keeps per pool. */
export const LEDGER_DAYS = 14;
/** Most minutes one run counts for: longer gaps between runs are not evidence. */
export const MAX_GAP_MINUTES = 60;

const Int = z.number().int().min(0);

export const PressureDay = z.strictObject({
  day: z.iso.date().describe('UTC day, YYYY-MM-DD.'),
  minutes: Int.max(1440).describe('Minutes the runs of this day covered.'),
  minutesAtBudget: Int.max(1440).describe('Of those, minutes the pool wanted its whole budget.'),
  refusedGpuMinutes: Int.describe('Estimated GPU-minutes wanted above the budget.'),
  peakWanted: Int.describe('The most GPUs the pool wanted in one run.'),
  quota: Int.nullable().describe('The quota at the last run of the day; null unknown.'),
  // The plan's budget: below 0 where unmanaged caps are over the quota (Cloud Run checks each
  // service's max against the quota, never their sum), so not `Int` like the counts above.
  budget: z
    .number()
    .int()
    .nullable()
    .describe(
      'The budget at the last run of the day (below 0: unmanaged caps over the quota); null unknown.',
    ),
});
export type PressureDay = z.infer<typeof PressureDay>;

const PressurePool = z.strictObject({
  project: z.string().min(1),
  region: z.string().min(1),
  accelerator: z.string().min(1),
  zonalRedundancy: z.boolean(),
  days: z.array(PressureDay).max(LEDGER_DAYS),
});
type PressurePool = z.infer<typeof PressurePool>;

/** A quota request the governor tracks for a pool (docs/quota-requests.md). */
export const TrackedRequest = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(MAX_PREFERENCE_NAME)
    .describe(
      "The QuotaPreference resource name: projects/PROJECT/locations/global/quotaPreferences/ID, of the pool's project (its id, or its number).",
    ),
  quotaId: z
    .string()
    .regex(QUOTA_ID, 'expected a quota id such as "NvidiaL4GpuAllocPerProjectRegion"'),
  preferredValue: z.number().int().min(-1),
  from: Int.nullable().describe('The quota when it was filed (or found).'),
  filedAt: z.iso.datetime({ offset: true }),
  /** `governor`: this governor filed it; `found`: it was pending when the governor looked. */
  by: z.enum(['governor', 'found']),
  state: z.enum(['pending', 'granted', 'denied']),
  decidedAt: z.iso.datetime({ offset: true }).nullable(),
  grantedValue: z.number().int().min(-1).nullable(),
  stateDetail: z.string().max(2000),
  traceId: z.string().max(500),
});
export type TrackedRequest = z.infer<typeof TrackedRequest>;

export const PressureLedger = z
  .strictObject({
    at: z.iso.datetime({ offset: true }).describe('The run that rolled the ledger last.'),
    pools: z.record(z.string().min(1), PressurePool).describe('By pool key.'),
    requests: z
      .record(z.string().min(1), TrackedRequest)
      .optional()
      .describe('By pool key: the last quota request of the pool and its state.'),
  })
  .superRefine((ledger, ctx) => {
    // A tracked request is read and raised by its name: one naming another project's preference
    // (or not a preference name at all) would have the governor read, track and update what is
    // not its pool's. The name's project must be the pool's; a project number is let through
    // here and checked when the request is used (src/core/preference-name.ts).
    for (const [key, req] of Object.entries(ledger.requests ?? {})) {
      const pool = poolOfKey(key);
      const fault =
        pool === null
          ? 'is not a pool key (PROJECT/REGION/ACCELERATOR/zonal or no-zonal)'
          : preferenceNameFault(req.name, pool.project);
      if (fault !== null)
        ctx.addIssue({
          code: 'custom',
          path: pool === null ? ['requests', key] : ['requests', key, 'name'],
          message: fault,
        });
    }
    // A ledger is read back from a state file or document anyone may edit. Its rows are rolled
    // forward under their key but reported (and quota requests filed) under their fields, so a
    // key that names another pool would put one pool's history, or a request, on another.
    // A run writes the row of its own UTC day and dates the ledger then, so no row is after the
    // ledger's day: one that is would be kept by every roll (it never ages out) and, once its day
    // came, taken as that day's evidence.
    const atMs = Date.parse(ledger.at);
    const lastDay = Number.isFinite(atMs) ? new Date(atMs).toISOString().slice(0, 10) : null;
    for (const [key, pool] of Object.entries(ledger.pools)) {
      if (key !== poolKey(pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['pools', key],
          message: `is the key of another pool than its fields name (${poolKey(pool)})`,
        });
      }
      pool.days.forEach((d, i) => {
        const before = pool.days[i - 1];
        if (before !== undefined && before.day >= d.day) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', key, 'days', i, 'day'],
            message: `is not after the row before it (${before.day}): one row a day, oldest first`,
          });
        }
        if (lastDay !== null && d.day > lastDay) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', key, 'days', i, 'day'],
            message: `is after the day of the ledger (${lastDay}): no run wrote it`,
          });
        }
        if (d.minutesAtBudget > d.minutes) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', key, 'days', i, 'minutesAtBudget'],
            message: `is more than the day's minutes (${d.minutes})`,
          });
        }
      });
    }
  });
export type PressureLedger = z.infer<typeof PressureLedger>;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * What a pool wanted in one plan, in GPUs: its demand plus what the quota's ceilings cut off.
 * Demand above a ceiling the policy sets (a `max`, or a floor above it) is not counted, whether
 * or not the quota holds the service lower still: a larger quota would leave that service at the
 * policy's ceiling, so what is above it is no pressure a quota request relieves.
 */
export function poolWanted(plan: Plan, key: string, policy: PolicyMaxes): number {
  const pool = plan.pools.find((p) => poolKey(p) === key);
  if (!pool) return 0;
  let above = 0;
  for (const s of plan.services) {
    if (!s.managed || poolKey(s) !== key || s.demand === null) continue;
    // `demand` is the service's raw estimate; the pool's demand counts it clamped to its ceiling.
    if (s.why.basis.kind !== 'demand' || s.ceiling === null) continue;
    // The ceiling is the quota's (quota ÷ GPUs per instance) only where the plan says so.
    const quotaCeiling =
      s.why.atCeiling?.set === 'quota' || s.why.floorAboveCeiling?.wins === 'quota';
    if (!quotaCeiling) continue;
    // The most `policy` (the one the plan was made with) lets it have whatever the quota (a
    // policy's min above its max is refused, so no floor it sets is above it).
    const wanted = Math.min(s.demand, policyMax(policy, s.rule, s.window) ?? Infinity);
    above += Math.max(0, wanted - s.ceiling) * s.gpusPerInstance;
  }
  return pool.demand + above;
}

/**
 * The project's ledger after this plan (made with `policy`): this run's minutes added to today's row of each of its
 * pools, rows older than {@link LEDGER_DAYS} dropped. Pools the plan does not show keep their rows
 * (they age out). A plan older than the ledger (within the clock skew allowed, MAX_CLOCK_SKEW_MS
 * in duration.ts) adds nothing. A ledger dated beyond the plan's time plus that skew is not
 * history (a wrong clock or a hand edit wrote it; returned unchanged, it would be copied by every
 * later run for good): its rows are ignored and a new ledger starts at the plan, keeping only its
 * tracked quota requests (what was filed at Google's side, so that nothing is filed twice).
 */
export function rollPressure(
  given: PressureLedger | undefined,
  plan: Plan,
  project: string,
  policy: PolicyMaxes,
): PressureLedger {
  const atMs = Date.parse(plan.at);
  if (!Number.isFinite(atMs)) throw new RangeError(`plan.at is not a time: ${plan.at}`);
  const previous =
    given && beyondSkew(given.at, atMs)
      ? { at: plan.at, pools: {}, ...(given.requests ? { requests: given.requests } : {}) }
      : given;
  const prevMs = previous ? Date.parse(previous.at) : NaN;
  if (previous && Number.isFinite(prevMs) && prevMs > atMs) return previous;
  // The minutes of the clock begun since the previous run: summed over runs, the minutes their
  // span covers, each once. A gap rounded run by run would count runs 30 s apart twice over and
  // runs 29 s apart never.
  const minutes = Number.isFinite(prevMs)
    ? Math.min(
        MAX_GAP_MINUTES,
        Math.max(0, Math.floor(atMs / MINUTE_MS) - Math.floor(prevMs / MINUTE_MS)),
      )
    : 0;
  const day = new Date(atMs).toISOString().slice(0, 10);
  const oldest = new Date(atMs - (LEDGER_DAYS - 1) * DAY_MS).toISOString().slice(0, 10);
  const pools: Record<string, PressurePool> = {};
  for (const [key, pool] of Object.entries(previous?.pools ?? {})) {
    const days = pool.days.filter((d) => d.day >= oldest);
    if (days.length > 0) pools[key] = { ...pool, days };
  }
  for (const p of plan.pools) {
    if (p.project !== project) continue;
    const key = poolKey(p);
    const wanted = poolWanted(plan, key, policy);
    const atBudget = p.budget !== null && wanted >= p.budget;
    const refused = p.budget === null ? 0 : Math.max(0, wanted - p.budget) * minutes;
    const entry: PressurePool = pools[key] ?? { ...poolIdOf(p), days: [] };
    const today = entry.days.find((d) => d.day === day);
    const row: PressureDay = {
      day,
      minutes: Math.min(1440, (today?.minutes ?? 0) + minutes),
      minutesAtBudget: Math.min(1440, (today?.minutesAtBudget ?? 0) + (atBudget ? minutes : 0)),
      // At most the largest count a ledger holds: a row edited up to it would otherwise roll
      // into one no run record accepts, and no run could be recorded again.
      refusedGpuMinutes: Math.min(
        Number.MAX_SAFE_INTEGER,
        (today?.refusedGpuMinutes ?? 0) + refused,
      ),
      peakWanted: Math.max(today?.peakWanted ?? 0, wanted),
      quota: p.quota,
      budget: p.budget,
    };
    const days = [...entry.days.filter((d) => d.day !== day), row]
      .sort((a, b) => compareText(a.day, b.day))
      .slice(-LEDGER_DAYS);
    pools[key] = { ...entry, days };
  }
  return { at: plan.at, pools, ...(previous?.requests ? { requests: previous.requests } : {}) };
}

/**
 * The ledger of the newest run record that carries one (records most recent first). Given `at`
 * (the reader's time), a ledger dated beyond it plus the clock skew allowed (MAX_CLOCK_SKEW_MS,
 * duration.ts) is passed over.
 */
export function newestLedger(
  runs: readonly { pressure?: PressureLedger | undefined }[],
  at?: string,
): PressureLedger | undefined {
  const nowMs = at === undefined ? NaN : Date.parse(at);
  return runs.find(
    (r) =>
      r.pressure !== undefined && (!Number.isFinite(nowMs) || !beyondSkew(r.pressure.at, nowMs)),
  )?.pressure;
}

/**
 * The ledger of another unit of the same project, as another unit sees it (docs/organization.md,
 * "Regional units"): a project governed whole and its regional units (src/core/units.ts) keep
 * their ledgers apart, under their own unit keys. `region` is the region of the unit the ledger
 * came from; null: the whole project's.
 */
export interface UnitLedger {
  region: string | null;
  ledger: PressureLedger;
}

/** The region part of a pool key (`project/region/accelerator/zonal`; see poolKey). */
function keyRegion(key: string): string | undefined {
  return key.split('/')[1];
}

/**
 * Only the pools of `region`, and the tracked requests of those pools (by their keys, whether or
 * not the pool's rows are still kept).
 */
export function regionOfLedger(ledger: PressureLedger, region: string): PressureLedger {
  const pools = Object.fromEntries(
    Object.entries(ledger.pools).filter(([, p]) => p.region === region),
  );
  const requests = Object.entries(ledger.requests ?? {}).filter(
    ([key]) => keyRegion(key) === region,
  );
  return {
    at: ledger.at,
    pools,
    ...(requests.length > 0 ? { requests: Object.fromEntries(requests) } : {}),
  };
}

/**
 * Whether a unit should look at the other side of its project before rolling its ledger
 * (docs/organization.md, "Regional units"): when it has no ledger of its own yet, or when its own
 * is older than {@link MAX_GAP_MINUTES} at `at`. A gap no run of this unit covered is where the
 * other side may have governed (the project was split, or governed whole again, meanwhile); a
 * unit that runs every few minutes reads nothing more.
 */
export function lookAtOtherUnits(own: PressureLedger | undefined, at: string): boolean {
  if (!own) return true;
  const gap = Date.parse(at) - Date.parse(own.at);
  return !(gap <= MAX_GAP_MINUTES * MINUTE_MS);
}

/**
 * The ledger a unit rolls forward when it looked at the other side of its project (see
 * {@link lookAtOtherUnits}): its own, with what the other side knows newer, so that a project
 * newly split (or governed whole again) keeps its evidence and its pending quota requests.
 *
 * - A regional unit (`region` given) takes, from the project's ledger, its own region's pools and
 *   their requests only: the unit that owns a pool is the only one that tracks or files for it.
 * - A whole project (`region` undefined) takes its regional units' ledgers, each cut to its own
 *   region first (a unit writes no other region's pools; a cut ledger cannot bring one in).
 *
 * Per pool, the rows of the newest ledger (by `at`) that has the pool are kept, and per pool the
 * tracked request of the newest ledger that has one: replaced, never summed, so a minute is
 * counted once and a request is tracked by one unit. (Whoever governed a pool last knows it best:
 * the two sides never write at once, unit-lease.ts.) The result's `at` is the newest of them, so
 * the next roll counts no minute twice; a pool whose rows come from an older ledger loses the
 * minutes in between (a run that did not happen is not evidence). Undefined when there is
 * nothing at all.
 */
export function adoptLedger(
  region: string | undefined,
  own: PressureLedger | undefined,
  others: readonly UnitLedger[],
): PressureLedger | undefined {
  const cut = others
    .map((o) => (o.region === null ? o.ledger : regionOfLedger(o.ledger, o.region)))
    .map((l) => (region === undefined ? l : regionOfLedger(l, region)));
  // Oldest first, the unit's own last among equals: a newer ledger's pool or request replaces.
  const all = [...cut.map((l) => ({ l, mine: 0 })), ...(own ? [{ l: own, mine: 1 }] : [])]
    .filter(({ l }) => Number.isFinite(Date.parse(l.at)))
    .sort((a, b) => Date.parse(a.l.at) - Date.parse(b.l.at) || a.mine - b.mine)
    .map(({ l }) => l);
  const newest = all[all.length - 1];
  if (!newest) return own;
  const pools: Record<string, PressurePool> = {};
  const requests: Record<string, TrackedRequest> = {};
  for (const l of all) {
    Object.assign(pools, l.pools);
    Object.assign(requests, l.requests ?? {});
  }
  if (!own && Object.keys(pools).length === 0 && Object.keys(requests).length === 0)
    return undefined;
  return {
    at: newest.at,
    pools,
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
  };
}

/** The quotas one unit's newest run read (RunRecord `quotas`), at that run's time. */
interface UnitQuotas {
  region: string | null;
  at: string;
  quotas: Readonly<Record<string, number | null>>;
}

/**
 * The quotas a unit compares this run's with (`quota.changed`), when it looked at the other side
 * of its project as for its ledger ({@link adoptLedger}): per pool, the newest of its own and the
 * other side's (each cut to its region, then to the unit's), so that a change the other side
 * already told is not told again, and one it did not see is told once. `own` undefined and nothing
 * from the other side: undefined (nothing to compare with).
 */
export function adoptQuotas(
  region: string | undefined,
  own: UnitQuotas | undefined,
  others: readonly UnitQuotas[],
): Record<string, number | null> | undefined {
  const cut = (q: UnitQuotas, r: string | null | undefined): UnitQuotas =>
    r === null || r === undefined
      ? q
      : {
          ...q,
          quotas: Object.fromEntries(Object.entries(q.quotas).filter(([k]) => keyRegion(k) === r)),
        };
  const all = [
    ...others.map((o) => ({ q: cut(cut(o, o.region), region), mine: 0 })),
    ...(own ? [{ q: own, mine: 1 }] : []),
  ]
    .filter(({ q }) => Number.isFinite(Date.parse(q.at)))
    .sort((a, b) => Date.parse(a.q.at) - Date.parse(b.q.at) || a.mine - b.mine);
  if (all.length === 0) return own ? { ...own.quotas } : undefined;
  const out: Record<string, number | null> = {};
  for (const { q } of all) Object.assign(out, q.quotas);
  return out;
}

/**
 * The time runs covered, precisely: `45 minutes` under a day, else days to one decimal with the
 * minutes (`6.2 days (8928 minutes)`).
 */
export function covered(minutes: number): string {
  if (minutes < 1440) return plural(minutes, 'minute');
  return `${plural(Math.round((minutes / 1440) * 10) / 10, 'day')} (${minutes} minutes)`;
}

interface RecommendSettings {
  /** Days of history looked at, back from `at` (default 7). */
  days: number;
  /** Fewer days covered than this: too little history to say (default 1). */
  minDays: number;
  /** Minutes at budget a pool needs in the window to be under sustained pressure (default 120). */
  minMinutesAtBudget: number;
  /** …and as a share of the minutes covered (default 0.05). */
  minShareAtBudget: number;
}

const DEFAULT_RECOMMEND: RecommendSettings = {
  days: 7,
  minDays: 1,
  minMinutesAtBudget: 120,
  minShareAtBudget: 0.05,
};

export type RecommendationStatus =
  'recommend' | 'no-pressure' | 'too-little-history' | 'unknown-quota';

export interface QuotaRecommendation {
  key: string;
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
  status: RecommendationStatus;
  /** Days the runs covered in the window (minutes ÷ 1440, one decimal). */
  daysCovered: number;
  /** Distinct days with any run in the window. */
  daysSeen: number;
  minutesCovered: number;
  minutesAtBudget: number;
  refusedGpuMinutes: number;
  peakWanted: number;
  /** The quota and budget at the newest run. */
  quota: number | null;
  budget: number | null;
  /** The quota asked for; null unless `status` is `recommend`. */
  recommended: number | null;
  why: string;
}

/**
 * One recommendation per pool of the ledger, sorted by pool key. A quota is recommended only
 * where the window covers at least `minDays` of runs and the pool was at its budget for at least
 * `minMinutesAtBudget` minutes and `minShareAtBudget` of the time covered, with refused demand;
 * the value is the quota at which the peak it wanted would have fitted:
 *
 *   recommended = max(quota + 1, peak wanted + (quota − budget))
 *
 * (`quota − budget` is what the reserve and unmanaged use take from the pool.)
 */
export function recommendQuotas(
  ledger: PressureLedger | undefined,
  at: string,
  settings: Partial<RecommendSettings> = {},
): QuotaRecommendation[] {
  const s = { ...DEFAULT_RECOMMEND, ...settings };
  checkSettings(s);
  const atMs = Date.parse(at);
  if (!Number.isFinite(atMs)) throw new RangeError(`at is not a time: ${at}`);
  const from = new Date(atMs - (s.days - 1) * DAY_MS).toISOString().slice(0, 10);
  const to = new Date(atMs).toISOString().slice(0, 10);
  const out: QuotaRecommendation[] = [];
  for (const [key, pool] of Object.entries(ledger?.pools ?? {})) {
    const days = pool.days.filter((d) => d.day >= from && d.day <= to);
    const last = days[days.length - 1];
    const minutesCovered = sum(days, (d) => d.minutes);
    const minutesAtBudget = sum(days, (d) => d.minutesAtBudget);
    const refusedGpuMinutes = sum(days, (d) => d.refusedGpuMinutes);
    const peakWanted = Math.max(0, ...days.map((d) => d.peakWanted));
    const quota = last?.quota ?? null;
    const budget = last?.budget ?? null;
    const daysCovered = Math.round((minutesCovered / 1440) * 10) / 10;
    const base = {
      key,
      project: pool.project,
      region: pool.region,
      accelerator: pool.accelerator,
      zonalRedundancy: pool.zonalRedundancy,
      daysCovered,
      daysSeen: days.length,
      minutesCovered,
      minutesAtBudget,
      refusedGpuMinutes,
      peakWanted,
      quota,
      budget,
    };
    const evidence = `${covered(minutesCovered)} covered, ${plural(minutesAtBudget, 'minute')} at budget, ${refusedGpuMinutes} GPU-minutes refused (estimate), peak wanted ${peakWanted} GPUs`;
    if (minutesCovered < s.minDays * 1440) {
      out.push({
        ...base,
        status: 'too-little-history',
        recommended: null,
        why: `too little history: the runs cover ${covered(minutesCovered)} of the last ${plural(s.days, 'day')}, and ${plural(s.minDays, 'day')} ${s.minDays === 1 ? 'is' : 'are'} needed`,
      });
      continue;
    }
    if (quota === null || budget === null) {
      out.push({
        ...base,
        status: 'unknown-quota',
        recommended: null,
        why: `the quota was unknown at the newest run; ${evidence}`,
      });
      continue;
    }
    const share = minutesAtBudget / minutesCovered;
    const sustained =
      minutesAtBudget >= s.minMinutesAtBudget &&
      share >= s.minShareAtBudget &&
      refusedGpuMinutes > 0 &&
      peakWanted > budget;
    if (!sustained) {
      out.push({
        ...base,
        status: 'no-pressure',
        recommended: null,
        why: `no sustained pressure (needs ≥ ${s.minMinutesAtBudget} min and ≥ ${pct(s.minShareAtBudget)} of the time at budget, with demand above it): ${evidence}`,
      });
      continue;
    }
    const recommended = Math.max(quota + 1, peakWanted + (quota - budget));
    out.push({
      ...base,
      status: 'recommend',
      recommended,
      why: `at budget ${pct(share)} of the time (${plural(minutesAtBudget, 'minute')} of ${covered(minutesCovered)}), ${refusedGpuMinutes} GPU-minutes refused (estimate); the peak of ${peakWanted} GPUs wanted fits a quota of ${recommended} (quota ${quota} − budget ${budget} goes to reserve and unmanaged use)`,
    });
  }
  return out.sort((a, b) => compareText(a.key, b.key));
}

/**
 * The recommendations for `project`'s own pools, and apart those of other projects' pools a
 * ledger may hold (a state file copied or edited by hand): only the own are filed or shown.
 */
export function recommendQuotasOf(
  project: string,
  ledger: PressureLedger | undefined,
  at: string,
  settings: Partial<RecommendSettings> = {},
): { own: QuotaRecommendation[]; foreign: QuotaRecommendation[] } {
  const all = recommendQuotas(ledger, at, settings);
  return {
    own: all.filter((r) => r.project === project),
    foreign: all.filter((r) => r.project !== project),
  };
}

/**
 * The quota requests `ledger` tracks for `project`'s own pools, and apart the keys of other
 * projects' pools it names: as with {@link recommendQuotasOf}, only the own stand for their pool
 * (one a copied state names for another project's pool would stand for that pool's own).
 */
export function trackedRequestsOf(
  project: string,
  ledger: PressureLedger | undefined,
): { own: Record<string, TrackedRequest>; foreign: string[] } {
  const own: Record<string, TrackedRequest> = {};
  const foreign: string[] = [];
  for (const [key, request] of Object.entries(ledger?.requests ?? {})) {
    if (poolOfKey(key)?.project === project) own[key] = request;
    else foreign.push(key);
  }
  return { own, foreign };
}

function checkSettings(s: RecommendSettings): void {
  const bad = (name: string, v: number): never => {
    throw new RangeError(`${name} out of range: ${v}`);
  };
  if (!Number.isInteger(s.days) || s.days < 1 || s.days > LEDGER_DAYS) bad('days', s.days);
  if (!(s.minDays >= 0) || s.minDays > s.days) bad('minDays', s.minDays);
  if (!(s.minMinutesAtBudget >= 0)) bad('minMinutesAtBudget', s.minMinutesAtBudget);
  if (!(s.minShareAtBudget >= 0 && s.minShareAtBudget <= 1))
    bad('minShareAtBudget', s.minShareAtBudget);
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  return xs.reduce((acc, x) => acc + f(x), 0);
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** The justification sent with a quota request: the evidence, in one paragraph (≤ 1,000 chars). */
export function quotaJustification(r: QuotaRecommendation, prefix: string): string {
  const text = `${prefix.trim()}${prefix.trim() === '' ? '' : ' '}Cloud Run GPU pool ${poolWords(r)}: over the last ${r.daysCovered} day(s) of governed runs it was at its budget for ${r.minutesAtBudget} minutes, about ${r.refusedGpuMinutes} GPU-minutes of demand did not fit, and it wanted up to ${r.peakWanted} GPUs at once against a quota of ${r.quota ?? 'unknown'}.`;
  return text.length <= 1000 ? text : `${text.slice(0, 997)}...`;
}
