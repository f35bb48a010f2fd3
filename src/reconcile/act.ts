import pLimit from 'p-limit';
import type { Plan, PlanChange, PlanPool } from '../core/plan.js';
import { poolKey } from '../core/pool-key.js';
import { ConflictError, GovernorError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { ANNOTATIONS } from '../observe/annotations.js';
import { effectiveMax } from '../observe/observe.js';
import type { CloudRunPort, ObservedService, QuotaPort } from '../ports.js';
import type { Pacer } from './pacing.js';

/**
 * Acting on a plan, pool by pool: every decrease of the pool (a few at once, paced), then a fresh
 * read of the pool, then the increases, one at a time, each only as large as the room the fresh
 * state leaves. Before each write the service is read again: if it is deploying, or someone
 * changed it since the snapshot (etag, max), the write is skipped with a reason and the next run
 * decides. So the pool's caps stay within budget after every write, whatever fails.
 */

export type WriteOutcome = 'written' | 'skipped' | 'failed';

export interface WriteResult {
  project: string;
  region: string;
  name: string;
  from: number;
  /** What the plan asked for. */
  planned: number;
  /** What was written (equal to `planned`, or less when room ran short); null when nothing was. */
  written: number | null;
  outcome: WriteOutcome;
  reason: string;
}

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
  const results: WriteResult[] = [];
  // Pools are independent budgets: act on them one after another, in plan order (urgent first).
  for (const [key, changes] of byPool) {
    const pool = plan.pools.find((p) => poolKey(p) === key);
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
  const results: WriteResult[] = [];
  const decreases = changes.filter((c) => c.to < c.from);
  const increases = changes.filter((c) => c.to > c.from);

  // 1. Decreases, a few at once.
  const limit = pLimit(opts.writeConcurrency);
  results.push(
    ...(await Promise.all(
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
    )),
  );
  if (increases.length === 0) return results;

  // 2. A fresh read of the region: the room the decreases made, and what others changed.
  let services: ObservedService[];
  let quota = pool.quota;
  try {
    services = await beforeDeadline(
      () => opts.run.listServices(pool.project, pool.region),
      opts,
      `listing ${pool.project}/${pool.region} again`,
    );
    // The quota last: what is read last is the freshest, and the quota bounds every increase.
    if (opts.quotas && pool.quota !== null && pool.quotaSource !== 'policy') {
      const quotas = opts.quotas;
      quotas.clearCache?.();
      const now = await beforeDeadline(
        () =>
          quotas.gpuQuota({
            project: pool.project,
            region: pool.region,
            accelerator: pool.accelerator,
            zonalRedundancy: pool.zonalRedundancy,
          }),
        opts,
        `reading the quota of ${key(pool)} again`,
      );
      if (now === null) throw new GovernorError('the quota has no entry for the region any more');
      // Only ever the lower of the two: a quota raised since the observation waits a run.
      quota = Math.min(pool.quota, now);
    }
  } catch (e) {
    const why = `the pool could not be read again after its decreases (${message(e)}): increases left for the next run`;
    return [...results, ...increases.map((c) => skipped(c, why))];
  }
  const inPool = services.filter(
    (s) =>
      s.gpu !== null &&
      s.scalingMode !== 'MANUAL' &&
      s.gpu.accelerator === pool.accelerator &&
      s.gpu.zonalRedundancy === pool.zonalRedundancy,
  );
  const rows = plan.services.filter(
    (r) =>
      r.project === pool.project &&
      r.region === pool.region &&
      r.accelerator === pool.accelerator &&
      r.zonalRedundancy === pool.zonalRedundancy,
  );
  const managed = new Set(rows.filter((r) => r.managed).map((r) => r.name));
  // Other unmanaged usage (worker pools, manually scaled services) as observed for the plan.
  const otherUsage =
    pool.unmanagedGpus -
    rows.filter((r) => !r.managed).reduce((a, r) => a + r.from * r.gpusPerInstance, 0);
  // Every cap as it is now; a service the plan did not know counts as unmanaged.
  let governedNow = 0;
  let unmanagedNow = 0;
  for (const s of inPool) {
    const cap = effectiveMax(s) * (s.gpu?.count ?? 1);
    if (managed.has(s.name)) governedNow += cap;
    else unmanagedNow += cap;
  }
  const budgetNow = (quota ?? 0) - pool.reserve - otherUsage - unmanagedNow;
  // Within the budget; above it only in an infeasible pool, up to the plan's own floors.
  const allowed = pool.status === 'infeasible' ? Math.max(budgetNow, pool.capsAfter) : budgetNow;
  let room = quota === null ? 0 : allowed - governedNow;
  const fresh = new Map(inPool.map((s) => [s.name, s]));

  // 3. Increases, one at a time, each within the room left.
  for (const c of increases) {
    const svc = fresh.get(c.name);
    const check = svc ? validate(c, svc) : 'the service is gone';
    if (check !== null || !svc) {
      results.push(skipped(c, check ?? 'the service is gone'));
      continue;
    }
    const g = svc.gpu?.count ?? c.gpusPerInstance;
    const fits = Math.min(c.to, c.from + Math.floor(Math.max(0, room) / g));
    if (fits <= c.from) {
      results.push(
        skipped(
          c,
          `no room in the pool (${Math.max(0, room)} GPUs free after the decreases): left for the next run`,
        ),
      );
      continue;
    }
    const result = await write(
      c,
      fits,
      svc,
      opts,
      fits < c.to ? `; smaller than planned (${c.to}): only room for ${fits}` : '',
    );
    // A write that failed in a way that may still land counts as landed.
    if (result.outcome === 'written' || result.reason.includes('may still apply'))
      room -= (fits - c.from) * g;
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
    const why = validate(c, service);
    return why ? { skip: skipped(c, why) } : { service };
  } catch (e) {
    return {
      skip: {
        ...base(c),
        written: null,
        outcome: 'failed',
        reason: `could not read it before writing: ${message(e)}`,
      },
    };
  }
}

/** Null when the service is still as the plan saw it; else why it must be left alone. */
function validate(c: PlanChange, s: ObservedService): string | null {
  if (s.reconciling) return 'a deployment is in progress now (reconciling): left for the next run';
  if (c.etag && s.etag !== c.etag)
    return 'changed since it was observed (etag): left for the next run';
  const max = effectiveMax(s);
  if (max !== c.from)
    return `its max changed since it was observed (${c.from} → ${max}): left for the next run`;
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
  if (opts.clock() > opts.deadline)
    return skipped(c, 'the run deadline was reached before this write');
  if (!how.paced) await opts.pacer.slot(c.region);
  if (opts.clock() > opts.deadline)
    return skipped(c, 'the run deadline was reached before this write');
  const annotations: Record<string, string> = { [ANNOTATIONS.reason]: truncate(c.reason + note) };
  if (svc.annotations[ANNOTATIONS.originalMax] === undefined) {
    annotations[ANNOTATIONS.originalMax] =
      svc.serviceMaxInstances === null ? '' : String(svc.serviceMaxInstances);
  }
  if (to > c.from) annotations[ANNOTATIONS.lastChanged] = opts.nowIso;
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
    opts.log.log('INFO', `${c.project}/${c.region}/${c.name}: max instances ${c.from} → ${to}`, {
      service: c.name,
      from: c.from,
      to,
    });
    return { ...base(c), written: to, outcome: 'written', reason: c.reason + note };
  } catch (e) {
    if (e instanceof ConflictError)
      return skipped(
        c,
        `changed while the governor was writing it (${message(e)}): left for the next run`,
      );
    const uncertain = e instanceof UnavailableError ? '; the write may still apply' : '';
    opts.log.log(
      'ERROR',
      `${c.project}/${c.region}/${c.name}: write ${c.from} → ${to} failed: ${message(e)}`,
      { service: c.name },
    );
    return {
      ...base(c),
      written: null,
      outcome: 'failed',
      reason: `write failed: ${message(e)}${uncertain}`,
    };
  }
}

function key(p: PlanPool): string {
  return `${p.project}/${p.region}/${p.accelerator}`;
}

function base(c: PlanChange): Omit<WriteResult, 'written' | 'outcome' | 'reason'> {
  return { project: c.project, region: c.region, name: c.name, from: c.from, planned: c.to };
}

function skipped(c: PlanChange, reason: string): WriteResult {
  return { ...base(c), written: null, outcome: 'skipped', reason };
}

function truncate(s: string): string {
  return s.length <= REASON_MAX ? s : `${s.slice(0, REASON_MAX - 1)}…`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
