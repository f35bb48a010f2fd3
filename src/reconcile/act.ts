import pLimit from 'p-limit';
import type { Plan, PlanChange, PlanPool } from '../core/plan.js';
import { effectiveMax, poolBudget, poolIdOf, poolKey, samePool } from '../core/pool.js';
import {
  mayHaveLanded,
  type WriteCause,
  type WriteOutcome,
  type WriteResult,
} from '../core/write-result.js';
import { ConflictError, GovernorError, PermissionError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { ANNOTATIONS } from '../observe/annotations.js';
import type { CloudRunPort, QuotaPort } from '../ports/index.js';
import type { ObservedService } from '../core/service.js';
import type { Pacer } from './pacing.js';

/**
 * Acting on a plan, pool by pool: every decrease of the pool (a few at once, paced), then a fresh
 * read of the pool, then the increases, one at a time, each only as large as the room the fresh
 * state leaves. Before each write the service is read again: if it is deploying, or someone
 * changed it since the snapshot (etag, max), the write is skipped with a reason and the next run
 * decides. So the pool's caps stay within budget after every write, whatever fails.
 */

export type { WriteCause, WriteOutcome, WriteResult };

export interface ActOptions {
  run: CloudRunPort;
  pacer: Pacer;
  log: Logger;
  /** The run's time, for the governor's annotations. */
  nowIso: string;
  /** Wall-clock instant after which no write starts. */
  deadline: number;
  clock: () => number;
  writeConcurrency: number;
  /**
   * Read again before a pool's increases, so that a quota lowered since the observation is
   * honoured (a quota set by the policy is not read). Without it the plan's quota is used.
   */
  quotas?: QuotaPort;
}

/** The run deadline passed while a call was in flight (it may still complete on the server). */
export class DeadlineError extends UnavailableError {}

/**
 * Bounds an outside call by the run deadline: a call still unanswered when the deadline passes
 * is given up (DeadlineError), so a hung API cannot hold the run past it.
 */
export async function beforeDeadline<T>(
  call: () => Promise<T>,
  opts: Pick<ActOptions, 'deadline' | 'clock'>,
  what: string,
): Promise<T> {
  const left = opts.deadline - opts.clock();
  if (left <= 0) throw new DeadlineError(`the run deadline had passed before ${what}`);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`the run deadline passed while ${what}`)),
      left,
    );
    timer.unref();
  });
  try {
    return await Promise.race([call(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

const REASON_MAX = 500;

export async function actOnPlan(plan: Plan, opts: ActOptions): Promise<WriteResult[]> {
  const byPool = new Map<string, PlanChange[]>();
  for (const c of plan.changes) {
    const key = poolKey(c);
    const list = byPool.get(key);
    if (list) list.push(c);
    else byPool.set(key, [c]);
  }
  const pools = new Map(plan.pools.map((p) => [poolKey(p), p]));
  const results: WriteResult[] = [];
  // Pools are independent budgets: act on them one after another, in plan order (urgent first).
  for (const [key, changes] of byPool) {
    const pool = pools.get(key);
    if (!pool)
      throw new GovernorError(`bug: changes for pool ${key}, which the plan does not list`);
    results.push(...(await actOnPool(plan, pool, changes, opts)));
  }
  return results;
}

async function actOnPool(
  plan: Plan,
  pool: PlanPool,
  changes: PlanChange[],
  opts: ActOptions,
): Promise<WriteResult[]> {
  const decreases = changes.filter((c) => c.to < c.from);
  const increases = changes.filter((c) => c.to > c.from);
  const results = await writeDecreases(decreases, opts);
  if (increases.length === 0) return results;
  const fresh = await readPoolAgain(pool, opts);
  if ('error' in fresh) {
    const why = `the pool could not be read again after its decreases (${fresh.error}): increases left for the next run`;
    return [...results, ...increases.map((c) => skipped(c, 'pool-unreadable', why))];
  }
  return [...results, ...(await writeIncreases(plan, pool, increases, fresh, opts))];
}

/** 1. Decreases, a few at once. */
async function writeDecreases(decreases: PlanChange[], opts: ActOptions): Promise<WriteResult[]> {
  const limit = pLimit(opts.writeConcurrency);
  return Promise.all(
    decreases.map((c) =>
      limit(async () => {
        // Paced before the read, so that the read is the last word before the write and the
        // adapter need not read the service again.
        await opts.pacer.slot(c.region);
        const fresh = await readForWrite(c, opts);
        if ('skip' in fresh) return fresh.skip;
        return write(c, c.to, fresh.service, opts, '', { paced: true, justRead: true });
      }),
    ),
  );
}

interface FreshPool {
  services: ObservedService[];
  quota: number | null;
}

/** 2. A fresh read of the region: the room the decreases made, and what others changed. */
async function readPoolAgain(
  pool: PlanPool,
  opts: ActOptions,
): Promise<FreshPool | { error: string }> {
  try {
    const services = await beforeDeadline(
      () => opts.run.listServices(pool.project, pool.region),
      opts,
      `listing ${pool.project}/${pool.region} again`,
    );
    // The quota last: what is read last is the freshest, and the quota bounds every increase.
    if (!opts.quotas || pool.quota === null || pool.quotaSource === 'policy')
      return { services, quota: pool.quota };
    const quotas = opts.quotas;
    quotas.clearCache?.();
    const now = await beforeDeadline(
      () => quotas.gpuQuota(poolIdOf(pool)),
      opts,
      `reading the quota of ${poolKey(pool)} again`,
    );
    if (now === null) throw new GovernorError('the quota has no entry for the region any more');
    // Only ever the lower of the two: a quota raised since the observation waits a run.
    return { services, quota: Math.min(pool.quota, now) };
  } catch (e) {
    return { error: message(e) };
  }
}

/** The GPUs the governed services of the pool may still gain, on its fresh state. */
function roomNow(plan: Plan, pool: PlanPool, fresh: FreshPool): number {
  if (fresh.quota === null) return 0;
  const rows = plan.services.filter((r) => samePool(r, pool));
  const managed = new Set(rows.filter((r) => r.managed).map((r) => r.name));
  // Other unmanaged usage (worker pools, manually scaled services) as observed for the plan.
  const otherUsage =
    pool.unmanagedGpus -
    rows.filter((r) => !r.managed).reduce((a, r) => a + r.from * r.gpusPerInstance, 0);
  // Every cap as it is now; a service the plan did not know counts as unmanaged.
  let governedNow = 0;
  let unmanagedNow = 0;
  for (const s of inPool(pool, fresh.services)) {
    const cap = effectiveMax(s) * (s.gpu?.count ?? 1);
    if (managed.has(s.name)) governedNow += cap;
    else unmanagedNow += cap;
  }
  const budgetNow =
    poolBudget({
      quota: fresh.quota,
      reserve: pool.reserve,
      unmanagedCapsGpus: unmanagedNow,
      otherUsageGpus: otherUsage,
    }) ?? 0;
  // Within the budget; above it only in an infeasible pool, up to the plan's own floors.
  const allowed = pool.status === 'infeasible' ? Math.max(budgetNow, pool.capsAfter) : budgetNow;
  return allowed - governedNow;
}

/** The automatically scaled GPU services of the pool, among those listed in its region. */
function inPool(pool: PlanPool, services: ObservedService[]): ObservedService[] {
  return services.filter(
    (s) =>
      s.gpu !== null &&
      s.scalingMode !== 'MANUAL' &&
      samePool(pool, { project: s.project, region: s.region, ...s.gpu }),
  );
}

/** 3. Increases, one at a time, each within the room left. */
async function writeIncreases(
  plan: Plan,
  pool: PlanPool,
  increases: PlanChange[],
  fresh: FreshPool,
  opts: ActOptions,
): Promise<WriteResult[]> {
  const results: WriteResult[] = [];
  let room = roomNow(plan, pool, fresh);
  const byName = new Map(inPool(pool, fresh.services).map((s) => [s.name, s]));
  for (const c of increases) {
    const svc = byName.get(c.name);
    const check = svc ? validate(c, svc) : { cause: 'gone' as const, why: 'the service is gone' };
    if (check !== null || !svc) {
      results.push(skipped(c, check?.cause ?? 'gone', check?.why ?? 'the service is gone'));
      continue;
    }
    const g = svc.gpu?.count ?? c.gpusPerInstance;
    const fits = Math.min(c.to, c.from + Math.floor(Math.max(0, room) / g));
    if (fits <= c.from) {
      const why = `no room in the pool (${Math.max(0, room)} GPUs free after the decreases): left for the next run`;
      results.push(skipped(c, 'no-room', why));
      continue;
    }
    const note = fits < c.to ? `; smaller than planned (${c.to}): only room for ${fits}` : '';
    const result = await write(c, fits, svc, opts, note);
    // A write that failed in a way that may still land counts as landed.
    if (mayHaveLanded(result)) room -= (fits - c.from) * g;
    results.push(result);
  }
  return results;
}

/** Reads the service again just before writing it, and says why not to write when it changed. */
async function readForWrite(
  c: PlanChange,
  opts: ActOptions,
): Promise<{ service: ObservedService } | { skip: WriteResult }> {
  try {
    const service = await beforeDeadline(
      () => opts.run.getService(c.project, c.region, c.name),
      opts,
      `reading ${c.name} before writing it`,
    );
    const check = validate(c, service);
    return check ? { skip: skipped(c, check.cause, check.why) } : { service };
  } catch (e) {
    const cause: WriteCause =
      e instanceof DeadlineError
        ? 'deadline'
        : e instanceof PermissionError
          ? 'denied'
          : 'unreadable';
    return { skip: failed(c, cause, `could not read it before writing: ${message(e)}`) };
  }
}

/** Null when the service is still as the plan saw it; else why it must be left alone. */
function validate(
  c: PlanChange,
  s: ObservedService,
): { cause: 'reconciling' | 'etag' | 'changed'; why: string } | null {
  if (s.reconciling)
    return {
      cause: 'reconciling',
      why: 'a deployment is in progress now (reconciling): left for the next run',
    };
  if (c.etag && s.etag !== c.etag)
    return { cause: 'etag', why: 'changed since it was observed (etag): left for the next run' };
  const max = effectiveMax(s);
  if (max !== c.from)
    return {
      cause: 'changed',
      why: `its max changed since it was observed (${c.from} → ${max}): left for the next run`,
    };
  return null;
}

async function write(
  c: PlanChange,
  to: number,
  svc: ObservedService,
  opts: ActOptions,
  note = '',
  how: { paced?: boolean; justRead?: boolean } = {},
): Promise<WriteResult> {
  const late = () => skipped(c, 'deadline', 'the run deadline was reached before this write');
  if (opts.clock() > opts.deadline) return late();
  if (!how.paced) await opts.pacer.slot(c.region);
  if (opts.clock() > opts.deadline) return late();
  const annotations: Record<string, string> = { [ANNOTATIONS.reason]: truncate(c.reason + note) };
  if (svc.annotations[ANNOTATIONS.originalMax] === undefined) {
    annotations[ANNOTATIONS.originalMax] =
      svc.serviceMaxInstances === null ? '' : String(svc.serviceMaxInstances);
  }
  if (to > c.from) annotations[ANNOTATIONS.lastChanged] = opts.nowIso;
  if (to < c.from) annotations[ANNOTATIONS.lastLowered] = opts.nowIso;
  try {
    await beforeDeadline(
      () =>
        opts.run.updateMaxInstances({
          project: c.project,
          region: c.region,
          name: c.name,
          maxInstances: to,
          etag: svc.etag,
          annotations,
          // Read just now: the adapter merges into these instead of reading the service again.
          ...(how.justRead ? { currentAnnotations: svc.annotations } : {}),
        }),
      opts,
      `writing ${c.name}`,
    );
  } catch (e) {
    return writeFailed(c, to, e, opts);
  }
  opts.log.log('INFO', `${c.project}/${c.region}/${c.name}: max instances ${c.from} → ${to}`, {
    service: c.name,
    from: c.from,
    to,
  });
  return { ...base(c), written: to, outcome: 'written', cause: 'written', reason: c.reason + note };
}

/** What a write that threw means: skipped on a conflict, else failed (maybe still applying). */
function writeFailed(c: PlanChange, to: number, e: unknown, opts: ActOptions): WriteResult {
  if (e instanceof ConflictError)
    return skipped(
      c,
      'conflict',
      `changed while the governor was writing it (${message(e)}): left for the next run`,
    );
  opts.log.log(
    'ERROR',
    `${c.project}/${c.region}/${c.name}: write ${c.from} → ${to} failed: ${message(e)}`,
    { service: c.name },
  );
  if (e instanceof UnavailableError)
    return failed(c, 'uncertain', `write failed: ${message(e)}; the write may still apply`);
  return failed(
    c,
    e instanceof PermissionError ? 'denied' : 'failed',
    `write failed: ${message(e)}`,
  );
}

function base(
  c: PlanChange,
): Pick<WriteResult, 'project' | 'region' | 'name' | 'from' | 'planned'> {
  return { project: c.project, region: c.region, name: c.name, from: c.from, planned: c.to };
}

function skipped(c: PlanChange, cause: WriteCause, reason: string): WriteResult {
  return { ...base(c), written: null, outcome: 'skipped', cause, reason };
}

function failed(c: PlanChange, cause: WriteCause, reason: string): WriteResult {
  return { ...base(c), written: null, outcome: 'failed', cause, reason };
}

function truncate(s: string): string {
  return s.length <= REASON_MAX ? s : `${s.slice(0, REASON_MAX - 1)}…`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
