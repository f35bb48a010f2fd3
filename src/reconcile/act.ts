import { groupBy } from '../core/collections.js';
import type { GovernorPermission } from '../core/permissions.js';
import { oneLine } from '../core/text.js';
import { gcloudToLatest } from '../core/gcloud.js';
import { quotaInPlan, type Plan, type PlanChange, type PlanPool } from '../core/plan.js';
import type { OverAfterRaises, UnverifiedRaises } from '../core/run-alerts.js';
import { effectiveMax, poolIdOf, poolKey, poolWords, samePool } from '../core/pool.js';
import { mayHaveLanded, type WriteCause, type WriteResult } from '../core/write-result.js';
import {
  ConflictError,
  GovernorError,
  InputError,
  NotFoundError,
  PermissionError,
  QuotaRejectedError,
  RateLimitedError,
  RefusedError,
  UnavailableError,
  cutText,
  errorMessage,
} from '../core/errors.js';
import type { Logger } from '../log.js';
import { taggedUnknown, unreadPastBudget } from '../observe/serving-revisions.js';
import { ANNOTATIONS } from '../observe/annotations.js';
import type {
  CloudRunPort,
  ObservedJobExecution,
  ObservedWorkerPool,
  QuotaPort,
} from '../ports/index.js';
import { needsServingRevisions, type ObservedService } from '../core/service.js';
import type { Pacer, Place, Reserved } from './pacing.js';
import {
  grownElsewhere,
  inPool,
  instanceGpus,
  otherWriter,
  roomOf,
  type OtherWriter,
  type PoolRead,
} from './room.js';

/**
 * Acting on a plan, in as few round trips as Cloud Run allows (docs/performance.md):
 *
 * 1. Decreases, all at once, each against the latest read of its service (the observation, or a
 *    listing of its region when a pause came between, such as a confirmation prompt) and
 *    conditional on that read's etag. A decrease only lowers: alone it keeps its pool within
 *    budget, whichever others fail. Their operations are awaited together, region by region:
 *    the pools of a region (a project's region) go on to steps 2 to 4 once the decreases of that
 *    region are done, not every region's. A pool is its own budget (one quota, core/pool.ts), so
 *    promise 1 (docs/rules.md) orders the writes within a pool only, and one region's backlog of
 *    decreases (paced under its write quota) holds back no other region's raises. A region's
 *    pools go on together, as all pools did before: one listing of the region serves them all,
 *    and no pool's read of the region lands between another pool's read of it and the raises
 *    decided on that one (they would go by an older read than the run holds). The decreases ask
 *    for their write slots first, and the writeConcurrency places go to raises (and lowering
 *    back) before decreases: a raise decided on a read does not queue behind other regions'
 *    decreases.
 * 2. The write slots the increases need under Cloud Run's write quota (docs/performance.md,
 *    pacing), taken first: a wait for the quota comes before the read, never between the read
 *    and the raises. Then the run's lease, read again (`leaseLost`): a project whose lease this
 *    run no longer holds gets no raise. Then one fresh read of every pool of the region that has increases, all at
 *    once: the region's services, worker pools and running job executions, and each pool's quota
 *    (unless the policy sets it). It shows the room the decreases made and whatever anyone else
 *    changed since the observation.
 * 3. The increases that fit that read, in plan order, each as large as the room left, each
 *    re-validated against the same read (reconciling, etag, max) and conditional on its etag; a
 *    raise that does not fit is skipped (`no-room`), counted, and left for the next run. All at
 *    once; their operations awaited together. A pool with more increases than a minute of the
 *    write quota takes steps 2 and 3 again for the rest: slots, a fresh read, raises; before each
 *    such wait for slots, step 4 for the raises so far (without its alerts, which the last round's
 *    verify read gives).
 * 4. Verify: the region's pools raised are read again. Cloud Run has no multi-service
 *    transaction and no write conditional on another resource (the Admin API v2 updates one
 *    service per call,
 *    https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/patch), so
 *    between the read of step 2 and the raises of step 3 (one round trip) another writer may fill
 *    the pool or the quota may be cut. If this read finds the pool over, the governor lowers its
 *    own raises of this run back (`compensated`), at most to where they were: a lasting
 *    over-quota becomes a blip of about one round trip. A raise that got no answer and does not
 *    show on it is written back, over or not (`fenced` where the pool had room), so that it
 *    cannot land later (compensate).
 *
 * The room of step 3 is the budget on the fresh read, in every pool: floors yield to the quota
 * (docs/rules.md, promise 1), so an infeasible pool gets no raise past it either. What Google
 * documents of the etag and the operation, and how the governor fails safe where it is silent:
 * docs/performance.md ("What Google documents").
 *
 * Every call is bounded by the run deadline, and no write starts after it. A pool's raises start
 * only while enough of the run is left to verify them (step 4): the time a read and a write took
 * in this run (raiseMargin), asked when the raises are decided and again when each one's place
 * comes (a raise may wait for a place while other regions' writes are in flight). A raise sent
 * later could be neither read back nor lowered back before the deadline, should another writer
 * fill the pool in its round trip: it waits for the next run instead (`deadline`).
 *
 * The governor stamps its id and the wall-clock time on every service it writes; a pool where
 * another governor's stamp is fresher than a lease gets no write (`other-governor`): not its
 * decreases, on the read they go by, and not its increases, on the fresh read of step 2 (which
 * also sees the stamps of a governor that started writing during step 1).
 */

export type { WriteResult };

interface ActOptions {
  run: CloudRunPort;
  pacer: Pacer;
  log: Logger;
  /** The run's time, for the governor's annotations. */
  nowIso: string;
  /** The instant of `clock` after which no write starts. */
  deadline: number;
  /**
   * The clock the deadline is read on (reconcile/run.ts, deadlineClock): the time elapsed, set
   * ahead when the lease's own deadline comes sooner. Never a measure of a duration.
   */
  clock: () => number;
  /**
   * The time elapsed (reconcile/run.ts, `elapsed`), no step of the wall clock moves it: every
   * duration measured (a read's, a write's, for raiseMargin), and the pacer's time.
   */
  elapsed: () => number;
  /**
   * The wall clock: the time stamped on the services written, and against which another
   * governor's stamp is judged (both compared with other machines' clocks).
   */
  wall: () => number;
  /** At most this many writes in flight at once (all regions). */
  writeConcurrency: number;
  /**
   * Read again before a pool's increases, so that a quota lowered since the observation is
   * honoured (a quota set by the policy is not read). Without it the plan's quota is used.
   */
  quotas?: QuotaPort;
  /**
   * The services as the observation read them, just before planning. Absent (a pause came
   * between, such as a confirmation), the regions with decreases are listed again first.
   */
  observed?: readonly ObservedService[];
  /** This governor's id, stamped on every service it writes. */
  writerId: string;
  /** Another governor's stamp fresher than this (ms, wall clock) keeps a pool from any write. */
  otherWriterTtlMs: number;
  /**
   * Whether this run still holds the lease of a project: null while it does, else in words who
   * holds it now. Asked before each read that raises are decided on (never between that read and
   * the raises): a lease broken while the run writes (`governor unlock` on a live run) may now be
   * another run's of the same store, whose stamps this run takes for its own, so two runs would
   * raise on the same room. Decreases go on (lowering never takes a pool over its quota); raises
   * wait for the next run. Absent: not asked.
   */
  leaseLost?: (project: string) => Promise<string | null>;
  /**
   * Told of each pool the verify read finds over its budget just after the raises and that stays
   * over once this run's raises are lowered back as far as they can be (for an alert).
   */
  onOverAfterRaises?: (over: OverAfterRaises) => void;
  /**
   * Told of each pool whose read just after this run's raises failed (Cloud Run refused it for
   * the minute's read quota, say): whether the pool stayed within its quota is not known until
   * the next run reads it (for an alert).
   */
  onUnverified?: (unverified: UnverifiedRaises) => void;
}

/**
 * The options as the steps see them: with what this run has seen of how long a write takes
 * (the slowest so far, measured on `clock`), for raiseMargin.
 */
interface Acting extends ActOptions {
  timing: { slowestWriteMs: number };
}

/**
 * A time of the deadline's clock (`at`) on the pacer's, the time elapsed: as far after its reading
 * now as it is after the deadline clock's. The same unless the lease's deadline is the nearer.
 */
function onPacer(at: number, opts: Pick<ActOptions, 'clock' | 'elapsed'>): number {
  return opts.elapsed() + (at - opts.clock());
}

/** The run deadline passed while a call was in flight (it may still complete on the server). */
class DeadlineError extends UnavailableError {}

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

/**
 * The most characters of the reason annotation. Cloud Run's Service.annotations "follows
 * Kubernetes annotations' namespacing, limits, and rules"
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services): no limit of
 * its own for a value, but every key and value of the service together at most 256 KiB
 * (kubernetes/apimachinery pkg/api/validation/objectmeta.go, TotalAnnotationSizeLimitB; the
 * emulator holds a service to it, emulator/fleet.ts). 500 characters (at most 1,500 bytes) stay
 * far within it, and readable in the console.
 */
const REASON_MAX = 500;
/** The most characters of another governor's stamp a reason shows. */
const WRITER_SHOWN = 200;

/** The permissions a scaling write needs, named when a denial does not say which it lacked. */
const WRITE_PERMISSIONS = [
  'run.services.update',
  'iam.serviceAccounts.actAs',
] as const satisfies readonly GovernorPermission[];

export async function actOnPlan(plan: Plan, options: ActOptions): Promise<WriteResult[]> {
  const opts: Acting = { ...options, timing: { slowestWriteMs: 0 } };
  const pools = new Set(plan.pools.map((p) => poolKey(p)));
  for (const c of plan.changes)
    if (!pools.has(poolKey(c)))
      throw new GovernorError(`bug: a change for pool ${poolKey(c)}, which the plan does not list`);
  const gate = limiter(opts.writeConcurrency);
  const decreases = plan.changes.filter((c) => c.to < c.from);
  const increases = plan.changes.filter((c) => c.to > c.from);

  // 1. Decreases, all at once; none in a pool another governor is writing. Each asks for its
  // region's write slot now, before any increase asks for one.
  const latest = await latestReads(decreases, opts);
  const held = otherGovernors(plan, decreases, latest, opts);
  const lowering = decreases.map((c) => {
    const other = held.get(poolKey(c));
    if (other)
      return Promise.resolve(skipped(c, 'other-governor', otherGovernor(other, 'lowered')));
    return decrease(c, latest, gate, opts);
  });

  // 2.–4. Each region with increases on its own, once the decreases of its pools are done: the
  // other regions' decreases are not its pools' budgets (promise 1 orders the writes within a
  // pool), so a long backlog of decreases in one region holds back no other region's raises.
  // A region's pools go on together, as all pools did before: one listing serves them all, and
  // no pool's read of the region lands between another pool's read and the raises decided on it.
  const raisedPools = plan.pools.filter((p) => increases.some((c) => samePool(c, p)));
  const regions = groupBy(raisedPools, regionKey);
  const raising = [...regions.entries()].map(async ([region, pools]) => {
    await Promise.all(decreases.flatMap((c, i) => (regionKey(c) === region ? [lowering[i]] : [])));
    return raiseRegion(plan, pools, increases, gate, opts);
  });
  // Every write settled before the step ends, even when one fails unexpectedly: no write of this
  // run may still be under way once the run goes on to release its lease.
  const [down, up] = await Promise.allSettled([settledAll(lowering), settledAll(raising)]);
  if (down.status === 'rejected') throw down.reason;
  if (up.status === 'rejected') throw up.reason;
  const [lowered, acted] = [down.value, up.value];

  const raised = acted.flatMap((r) => r.raised);
  const byChange = new Map(
    [...lowered, ...raised.map((r) => r.result)].map((w) => [writeKey(w), w]),
  );
  // The lowering back, pool by pool in the plan's order.
  const compensations = new Map(acted.flatMap((r) => [...r.compensations]));
  return [
    ...plan.changes.map((c) => byChange.get(writeKey(c))).filter((w) => w !== undefined),
    ...raisedPools.flatMap((p) => compensations.get(poolKey(p)) ?? []),
  ];
}

/**
 * Steps 2 to 4 for the pools of one region with increases, its decreases done: the write slots
 * of their increases, then one fresh read of them (the region listed once); the increases that
 * fit, all at once (a pool with more, in further rounds of slots, read and raises); then one
 * verify read of the pools raised, and this run's raises lowered back where a pool is over.
 */
async function raiseRegion(
  plan: Plan,
  pools: readonly PlanPool[],
  increases: readonly PlanChange[],
  gate: Gate,
  opts: Acting,
): Promise<{ raised: Raise[]; compensations: Map<string, WriteResult[]> }> {
  const raisesOf = (pool: PlanPool) => increases.filter((c) => samePool(c, pool));
  const firstSlots = await Promise.all(pools.map((p) => slotsFor(p, raisesOf(p), opts)));
  // The lease before the read: a pool of a project whose lease this run lost gets no raise.
  const lost = await lostLeases(pools, opts);
  const keep = pools.filter((p) => !lost.has(p.project));
  const readFrom = opts.elapsed();
  const fresh = await readPools(keep, opts);
  const readMs = opts.elapsed() - readFrom;
  const early = new Map<string, WriteResult[]>();
  const raised = (
    await Promise.all(
      pools.map(async (pool, i) => {
        const gone = lost.get(pool.project);
        if (gone !== undefined)
          return raisesOf(pool).map((c) => notSent(c, skipped(c, gone.cause, gone.why)));
        const done = await raisePool(
          plan,
          pool,
          raisesOf(pool),
          readOf(fresh, pool),
          { slots: firstSlots[i] ?? { slots: 0, at: opts.elapsed() }, readMs },
          gate,
          opts,
        );
        early.set(poolKey(pool), done.compensations);
        return done.raises;
      }),
    )
  ).flat();

  // 4. Verify the pools raised; lower this run's raises back where the pool is over.
  const landed = raised.filter((r) => r.to !== null && mayHaveLanded(r.result));
  const verifyPools = pools.filter((p) => landed.some((r) => samePool(r.change, p)));
  const after = await readPools(verifyPools, opts, fresh);
  const compensations = await Promise.all(
    verifyPools.map(
      async (pool) =>
        [
          poolKey(pool),
          await compensate(
            plan,
            pool,
            landed.filter((r) => samePool(r.change, pool)),
            readOf(after, pool),
            gate,
            opts,
          ),
        ] as const,
    ),
  );
  return {
    raised,
    compensations: new Map(
      compensations.map(([key, late]) => [key, [...(early.get(key) ?? []), ...late]] as const),
    ),
  };
}

// --- 1. decreases ---

/**
 * The latest read of each service with a decrease: the observation's, or, without one, a listing
 * of its region now (one call per region, all at once). A region that cannot be listed leaves its
 * services out: their decreases fail as unreadable (fail loudly; nothing is written blind), or,
 * when the run deadline came before the listing answered, are not made for the deadline.
 */
async function latestReads(
  decreases: readonly PlanChange[],
  opts: ActOptions,
): Promise<Map<string, ObservedService | Error>> {
  const out = new Map<string, ObservedService | Error>();
  if (opts.observed) {
    for (const s of opts.observed) out.set(serviceKey(s), s);
    return out;
  }
  const regions = new Map(decreases.map((c) => [regionKey(c), c]));
  await Promise.all(
    [...regions.values()].map(async (c) => {
      try {
        const listed = await beforeDeadline(
          () => opts.run.listServices(c.project, c.region),
          opts,
          `listing ${c.project}/${c.region} before its decreases`,
        );
        for (const s of listed) out.set(serviceKey(s), s);
      } catch (e) {
        for (const d of decreases)
          if (d.project === c.project && d.region === c.region)
            out.set(serviceKey(d), e instanceof Error ? e : new Error(String(e)));
      }
    }),
  );
  return out;
}

/**
 * The pools with decreases where the latest read shows another governor's fresh stamp: it may be
 * writing them now (its state store, so its lease, is not this one's), so this run writes nothing
 * there. Checked on the read the decreases go by, before any write of this run.
 */
function otherGovernors(
  plan: Plan,
  decreases: readonly PlanChange[],
  latest: Map<string, ObservedService | Error>,
  opts: ActOptions,
): Map<string, OtherWriter> {
  const services = [...latest.values()].filter((s): s is ObservedService => !(s instanceof Error));
  const out = new Map<string, OtherWriter>();
  for (const pool of plan.pools.filter((p) => decreases.some((c) => samePool(c, p)))) {
    const other = otherWriter(
      pool,
      { services, quota: null },
      opts.writerId,
      opts.wall(),
      opts.otherWriterTtlMs,
    );
    if (!other) continue;
    opts.log.log('WARNING', `${poolKey(pool)}: ${otherGovernor(other, 'lowered')}`);
    out.set(poolKey(pool), other);
  }
  return out;
}

function otherGovernor(other: OtherWriter, what: 'raised' | 'lowered'): string {
  // The stamp is anyone's annotation: a name for people, cut to a length a line can carry, on
  // one line (a terminal escape or a carriage return in it would act on the terminal that
  // shows it).
  const writer = oneLine(cutText(other.writer, WRITER_SHOWN));
  if (other.unreadable)
    return `another governor (${writer}) stamped ${other.service} in this pool with a time that cannot be read (${JSON.stringify(other.at)}; the governor writes an RFC 3339 time with its offset, such as 2026-11-27T10:00:00Z), so when it wrote is unknown and it may be writing now: nothing ${what} here until the ${ANNOTATIONS.writtenAt} annotation of ${other.service} is corrected or removed, or that governor writes it again`;
  const said = `another governor (${writer}) wrote ${other.service} in this pool at ${other.at}, within a lease: nothing ${what} here while it may be writing`;
  if (!other.ahead) return said;
  // Held until that time: say where the stamp is and how to end the hold.
  return `${said}; that time is later than this governor's clock by more than a minute (a wrong clock or a hand edit wrote it), so the pool is held until then: fix the clock of the machine that runs ${writer}, or correct or remove the ${ANNOTATIONS.writtenAt} annotation of ${other.service}`;
}

/**
 * One decrease: its region's write slot first, then one of the run's `writeConcurrency` places.
 * Waiting for the slot holds no place: a region with more decreases than its minute's quota
 * (Cloud Run's write quota is per project and region: reconcile/pacing.ts) waits for its own
 * quota, never holding back the other regions' writes. A slot that would come after the run
 * deadline is not waited for: the decrease is skipped at once, so the run reaches its alerts in
 * time.
 */
async function decrease(
  c: PlanChange,
  latest: Map<string, ObservedService | Error>,
  gate: Gate,
  opts: Acting,
): Promise<WriteResult> {
  const svc = latest.get(serviceKey(c));
  // Not read because the run deadline came first: not made for the deadline, as a raise whose
  // pool was not read for it.
  if (svc instanceof DeadlineError) return late(c);
  if (svc instanceof Error)
    return failed(c, 'unreadable', `could not read it before writing: ${errorMessage(svc)}`);
  if (!svc) return skipped(c, 'gone', 'the service is gone');
  const check = validate(c, svc);
  if (check) return skipped(c, check.cause, check.why);
  // Counted when it starts, whatever order the places come in (Pacer.run).
  const done = await opts.pacer.run(
    regionKey(c),
    gate,
    () => write(c, c.to, svc, opts),
    onPacer(opts.deadline, opts),
  );
  return done ? done.value : late(c);
}

// --- 2. the fresh read ---

/**
 * One read of each pool, all at once: the services of its region (listed once per region) and
 * its quota, read again unless the policy sets it; only ever the lower of that and the plan's (a
 * quota raised since the observation waits a run). What could not be read is the error. With
 * `earlier` reads (the verify step), a quota that cannot be read again is taken from them: the
 * services alone still show another writer's raise.
 */
async function readPools(
  pools: readonly PlanPool[],
  opts: ActOptions,
  earlier?: Map<string, PoolRead | Error>,
): Promise<Map<string, PoolRead | Error>> {
  // Per region, all at once: its services, and what else holds GPUs (worker pools, job tasks).
  const regions = new Map<string, Promise<RegionRead>>();
  const regionOf = (pool: PlanPool): Promise<RegionRead> => {
    const key = regionKey(pool);
    let read = regions.get(key);
    if (!read) {
      const call = <T>(f: () => Promise<T>, what: string) =>
        beforeDeadline(f, opts, `${what} ${key} again`);
      const { project, region } = pool;
      read = Promise.all([
        call(() => opts.run.listServices(project, region), 'listing the services of'),
        call(() => opts.run.listWorkerPools(project, region), 'listing the worker pools of')
          .then((v) => ({ ok: true as const, v }))
          .catch((e: unknown) => ({ ok: false as const, e })),
        call(() => opts.run.listRunningExecutions(project, region), 'listing the job executions of')
          .then((v) => ({ ok: true as const, v }))
          .catch((e: unknown) => ({ ok: false as const, e })),
      ]).then(([services, workerPools, executions]) => ({ services, workerPools, executions }));
      regions.set(key, read);
    }
    return read;
  };
  // The cache of an earlier read must not answer: the quota bounds every increase.
  if (pools.length > 0) opts.quotas?.clearCache?.();
  const reads = await Promise.all(
    pools.map(async (pool): Promise<[string, PoolRead | Error]> => {
      const before = earlier?.get(poolKey(pool));
      const known = before && !(before instanceof Error) ? before : null;
      const quotaOrEarlier = quotaNow(pool, opts).catch((e: unknown) => {
        if (!known) throw e;
        opts.log.log(
          'WARNING',
          `${poolKey(pool)}: the quota could not be read again (${errorMessage(e)}): verified against the quota read before the increases`,
        );
        return known.quota;
      });
      try {
        const [r, quota] = await Promise.all([regionOf(pool), quotaOrEarlier]);
        // What holds the pool's GPUs beside its services must be read before the increases: no
        // raise on a guess. On the verify read, a listing that failed is taken from the read
        // before the increases; the services are always the ones listed now (one switched to
        // manual scaling since, or a revision of another pool serving since, holds GPUs the
        // earlier read did not count).
        const failed = !r.workerPools.ok
          ? r.workerPools.e
          : !r.executions.ok
            ? r.executions.e
            : null;
        if (failed !== null && !known?.others) throw failed;
        // A service whose serving revisions could not be read (run.revisions.get denied, a
        // revision deleted meanwhile, past the reads allowed) may hold GPUs of any pool of the
        // region through them, and a raise of it may let them take more: no raise on a guess, as
        // for worker pools not listed. The read after the raises counts the services as listed.
        // Past the reads allowed, only a GPU service holds the raises: services whose template
        // has no GPU are read after every GPU service's (observe/serving-revisions.ts), so in a
        // region of many services with tags or pinned traffic they are the ones left unread, at
        // every run; holding the region's raises on them would stop governing it for good. An
        // older revision of such a service still serving with a GPU stays among what escapes the
        // count, which the pool's `reserve` covers (docs/observing.md).
        // On the read after the raises, a revision only tagged that cannot be read (tagged since
        // the read before them, or read in vain then too) holds GPUs counted nowhere, beside no
        // service-level max: the pool is not verified, and the run says so (compensate).
        const unread = known
          ? r.services.find(taggedUnknown)
          : r.services.find(
              (s) =>
                needsServingRevisions(s) &&
                s.revisionsUnread !== undefined &&
                (s.gpu !== null || !unreadPastBudget(s)),
            );
        if (unread)
          throw new GovernorError(
            taggedUnknown(unread)
              ? `the revisions of ${unread.name}, one only tagged among them, could not be read (${unread.revisionsUnread}), so which pools they hold GPUs of is unknown`
              : `the serving revisions of ${unread.name} could not be read (${unread.revisionsUnread}), so which pools they hold GPUs of is unknown`,
          );
        if (failed !== null)
          opts.log.log(
            'WARNING',
            `${poolKey(pool)}: its worker pools or job executions could not be listed again (${errorMessage(failed)}): verified against the read before the increases`,
          );
        const others = {
          workerPools: r.workerPools.ok ? r.workerPools.v : (known?.others?.workerPools ?? []),
          executions: r.executions.ok ? r.executions.v : (known?.others?.executions ?? []),
        };
        return [poolKey(pool), { services: r.services, quota, others }];
      } catch (e) {
        return [poolKey(pool), e instanceof Error ? e : new Error(String(e))];
      }
    }),
  );
  return new Map(reads);
}

type Settled<T> = { ok: true; v: T } | { ok: false; e: unknown };

/** One region's read: its services, and its worker pools and job executions (each may fail). */
interface RegionRead {
  services: ObservedService[];
  workerPools: Settled<ObservedWorkerPool[]>;
  executions: Settled<ObservedJobExecution[]>;
}

async function quotaNow(pool: PlanPool, opts: ActOptions): Promise<number | null> {
  const quotas = opts.quotas;
  if (!quotas || pool.quota === null || pool.quotaSource === 'policy') return pool.quota;
  const now = await beforeDeadline(
    () => quotas.gpuQuota(poolIdOf(pool)),
    opts,
    `reading the quota of ${poolKey(pool)} again`,
  );
  if (now === null) throw new GovernorError('the quota has no entry for the region any more');
  return Math.min(pool.quota, now);
}

// --- 3. increases ---

/** An increase and what became of it; `to`: the max it was sent with (null: not sent). */
interface Raise {
  change: PlanChange;
  to: number | null;
  result: WriteResult;
  /** The etag the raise was sent with, conditional on it (null: not sent). */
  etag: string | null;
  /** The read of its service the raise was sent against (null: not sent). */
  sentOn: ObservedService | null;
  /**
   * A raise that got no answer can no longer land: a read after it showed its service changed
   * since it was sent (it landed, or another writer changed it), or it was written back.
   */
  settled: boolean;
}

/**
 * Write slots for `raises` of one pool, taken before the read they will be decided on (at most a
 * minute's quota; none when the quota would hold them past the run deadline).
 */
async function slotsFor(
  pool: PlanPool,
  raises: readonly PlanChange[],
  opts: ActOptions,
): Promise<Reserved> {
  return opts.pacer.reserve(regionKey(pool), raises.length, onPacer(opts.deadline, opts));
}

/**
 * The increases of one pool, in rounds: each decided on a read taken after its write slots, so
 * that nothing but the room is computed between the read and the raises. The first round's read
 * is `read` (step 2, with `first.slots` taken; it took `first.readMs`); a pool with more raises
 * than slots takes slots and reads again for the rest. A raise of an earlier round that may still
 * apply (no answer) keeps its room spent in the rounds after. Before each further round waits for
 * its slots, the pool is read and the raises so far lowered back where it is over (step 4).
 */
async function raisePool(
  plan: Plan,
  pool: PlanPool,
  increases: readonly PlanChange[],
  read: PoolRead | Error,
  first: { slots: Reserved; readMs: number },
  gate: Gate,
  opts: Acting,
): Promise<{ raises: Raise[]; compensations: WriteResult[] }> {
  const out: Raise[] = [];
  const compensations: WriteResult[] = [];
  let pending = [...increases];
  let uncertain = 0;
  for (let round = 0; pending.length > 0; round++) {
    if (round > 0) {
      // The raises so far are verified before the wait for the next round's slots (up to a
      // minute): a pool another writer took over its quota in their round trip comes back now,
      // not once the last round is done. The verify read after the last round reports.
      const landed = out.filter((r) => r.to !== null && mayHaveLanded(r.result));
      if (landed.length > 0) {
        const now = readOf(await readPools([pool], opts), pool);
        if (!(now instanceof Error))
          compensations.push(...(await compensate(plan, pool, landed, now, gate, opts, false)));
      }
    }
    const taken = round === 0 ? first.slots : await slotsFor(pool, pending, opts);
    if (taken.slots === 0) {
      const why = `Cloud Run's write quota (limits.writesPerMinute) would have held it past the run deadline: left for the next run`;
      out.push(...pending.map((c) => notSent(c, skipped(c, 'deadline', why))));
      break;
    }
    if (round > 0) {
      const gone = (await lostLeases([pool], opts)).get(pool.project);
      if (gone !== undefined) {
        out.push(...pending.map((c) => notSent(c, skipped(c, gone.cause, gone.why))));
        break;
      }
    }
    const readFrom = opts.elapsed();
    const now = round === 0 ? read : readOf(await readPools([pool], opts), pool);
    const readMs = round === 0 ? first.readMs : opts.elapsed() - readFrom;
    const { raises, rest } = await raiseRound(
      plan,
      pool,
      pending,
      { read: now, readMs },
      taken,
      uncertain,
      gate,
      opts,
    );
    out.push(...raises);
    for (const r of raises)
      if (r.to !== null && r.result.cause === 'uncertain')
        uncertain += (r.to - r.change.from) * r.change.gpusPerInstance;
    pending = rest;
  }
  return { raises: out, compensations };
}

const notSent = (change: PlanChange, result: WriteResult): Raise => ({
  change,
  to: null,
  result,
  etag: null,
  sentOn: null,
  settled: false,
});

/** Why a project's raises are not sent after its lease check (lostLeases). */
interface LostLease {
  cause: 'other-governor' | 'deadline';
  why: string;
}

/**
 * The projects of `pools` whose lease this run no longer holds, each with why its raises are not
 * sent. A lease that cannot be read counts as lost: a raise is never sent without knowing that no
 * other run of this store may be raising on the same room. A lease not read because the run
 * deadline came first says so (`deadline`), as a pool not read for it does: no other run is named
 * where none was seen.
 */
async function lostLeases(
  pools: readonly PlanPool[],
  opts: ActOptions,
): Promise<Map<string, LostLease>> {
  const out = new Map<string, LostLease>();
  const ask = opts.leaseLost;
  if (!ask) return out;
  const projects = [...new Set(pools.map((p) => p.project))];
  await Promise.all(
    projects.map(async (project) => {
      let what: string;
      try {
        const now = await beforeDeadline(
          () => ask(project),
          opts,
          `reading the lease of ${project}`,
        );
        if (now === null) return;
        what = `was broken while this run wrote (governor unlock) and ${now}`;
      } catch (e) {
        if (e instanceof DeadlineError) {
          const why = `the run deadline came before the lease of ${project} could be read again for its increases: left for the next run`;
          out.set(project, { cause: 'deadline', why });
          return;
        }
        what = `could not be read before the increases (${errorMessage(e)})`;
      }
      const why = `the lease of ${project} ${what}: another run of this state store may be raising on the same room, so no raise: left for the next run`;
      opts.log.log('ERROR', why);
      out.set(project, { cause: 'other-governor', why });
    }),
  );
  return out;
}

/**
 * How much of the run must be left for a pool's raises to start: enough for one write (the raise),
 * one read (step 4's, which verifies it) and one more write (lowering it back, or fencing off a
 * raise that got no answer), so that a raise that another writer's change took over the quota, or
 * that may still land, can be read back and lowered back or fenced before the deadline. Google documents
 * no duration for either (the update answers with a long-running operation and says not when it
 * completes, docs/performance.md), so the margin is what this run measured: the read the raises
 * are decided on (the same calls as the verify read), and the slowest write so far; before any
 * write, the read again (a write is at least a round trip). A first write slower than that read
 * can still end too late to be verified: the run then logs the pool as not verified, as before.
 */
function raiseMargin(readMs: number, opts: Acting): number {
  return readMs + 2 * Math.max(opts.timing.slowestWriteMs, readMs);
}

/**
 * Why no raise may start now, or null: less of the run is left than raiseMargin (a read that took
 * `readMs`, and the slowest write so far). Asked when a pool's raises are decided, and again when
 * each one's place comes.
 */
function tooLittleLeft(readMs: number, opts: Acting): string | null {
  const left = opts.deadline - opts.clock();
  const margin = raiseMargin(readMs, opts);
  if (left >= margin) return null;
  return `too little of the run was left to verify it (${Math.max(0, Math.round(left))} ms before the run deadline; a read and two writes take ${Math.round(margin)} ms in this run: the raise, and lowering it back): a raise that could not be read back could not be lowered back, should another writer fill the pool meanwhile; left for the next run`;
}

/**
 * One round of a pool's increases on one read (which took `readMs`): decided in plan order, at
 * most `slots` sent (the others are `rest`, for the next round), then sent all at once. `spent`:
 * GPUs of earlier rounds' raises that may still apply, kept off the room. None is sent with less
 * of the run left than raiseMargin.
 */
async function raiseRound(
  plan: Plan,
  pool: PlanPool,
  increases: readonly PlanChange[],
  { read, readMs }: { read: PoolRead | Error; readMs: number },
  slots: Reserved,
  spent: number,
  gate: Gate,
  opts: Acting,
): Promise<{ raises: Raise[]; rest: PlanChange[] }> {
  if (read instanceof Error) {
    const late = read instanceof DeadlineError;
    const why = late
      ? 'the run deadline came before the pool could be read again for its increases: left for the next run'
      : `the pool could not be read again before its increases (${read.message}): left for the next run`;
    return {
      raises: increases.map((c) =>
        notSent(c, skipped(c, late ? 'deadline' : 'pool-unreadable', why)),
      ),
      rest: [],
    };
  }
  const other = otherWriter(pool, read, opts.writerId, opts.wall(), opts.otherWriterTtlMs);
  if (other) {
    const why = otherGovernor(other, 'raised');
    opts.log.log('WARNING', `${poolKey(pool)}: ${why}`);
    return {
      raises: increases.map((c) => notSent(c, skipped(c, 'other-governor', why))),
      rest: [],
    };
  }
  const tooLate = tooLittleLeft(readMs, opts);
  if (tooLate !== null) {
    return {
      raises: increases.map((c) => notSent(c, skipped(c, 'deadline', tooLate))),
      rest: [],
    };
  }
  // Decide every raise on this one read, in plan order; then send them all at once.
  let room = roomOf(plan, pool, read).room - spent;
  const yields =
    pool.status === 'infeasible'
      ? ' (the floors do not fit this pool, and the quota comes before floors)'
      : '';
  const byName = new Map(inPool(pool, read.services).map((s) => [s.name, s]));
  const decided: (Raise | { c: PlanChange; to: number; svc: ObservedService; note: string })[] = [];
  let rest: PlanChange[] = [];
  let sending = 0;
  for (const [i, c] of increases.entries()) {
    if (sending === slots.slots) {
      rest = increases.slice(i);
      break;
    }
    const svc = byName.get(c.name);
    if (!svc) {
      decided.push(notSent(c, notInPool(c, read)));
      continue;
    }
    const check = validate(c, svc);
    if (check) {
      decided.push(notSent(c, skipped(c, check.cause, check.why)));
      continue;
    }
    const g = svc.gpu?.count ?? c.gpusPerInstance;
    const fits = Math.min(c.to, c.from + Math.floor(Math.max(0, room) / g));
    if (fits <= c.from) {
      const why = `no room in the pool (${Math.max(0, room)} GPUs free on a read just before the increases)${yields}: left for the next run`;
      decided.push(notSent(c, skipped(c, 'no-room', why)));
      continue;
    }
    // A serving revision of another pool that the service-level max bounds would take more of
    // that pool, whose room this raise is not decided on (nor read back after it): no raise.
    // Any raise does (that revision counts at the lower of its own max and the service's, the
    // service's below its own), so there is no smaller one to send instead.
    // Every run skips it while that revision serves: a revision cannot be changed ("Revisions
    // are immutable", https://cloud.google.com/run/docs/resource-model), so what ends it is the
    // traffic leaving that revision, which the reason gives as a command.
    const elsewhere = grownElsewhere(pool, svc, fits, (id) => quotaInPlan(plan, id));
    if (elsewhere) {
      const why = `no room it may take: ${elsewhere.source} holds GPUs of the ${poolWords(elsewhere)} pool, and a higher service-level max lets it hold more there (that max bounds every revision in the traffic split), room this raise is not decided on: left for the next run, and every run until that revision stops serving (a revision cannot be changed; to send the traffic to its template's revision: ${gcloudToLatest(svc)})`;
      decided.push(notSent(c, skipped(c, 'no-room', why)));
      continue;
    }
    // Spent whether or not the write lands: a write that fails may still apply.
    room -= (fits - c.from) * g;
    sending += 1;
    const note =
      fits < c.to ? `; smaller than planned (${c.to}): only room for ${fits}${yields}` : '';
    decided.push({ c, to: fits, svc, note });
  }
  // Their slots were taken before the read: nothing waits between the read and the writes. Each
  // is counted when it starts (Pacer.runReserved); one the quota no longer allows then (the read
  // took long, and slots were booked since) is not sent, and is decided again on a later read.
  const urgent: Place = (task) => gate(task, true);
  const sent = await Promise.all(
    decided.map(async (d) => {
      if ('result' in d) return d;
      const done = await opts.pacer.runReserved(
        regionKey(pool),
        slots.at,
        urgent,
        async (): Promise<Raise> => {
          // Its place may come long after the read: every place held by writes in flight (other
          // regions' decreases, whose operations may take minutes). The margin is asked again
          // now, with the writes measured meanwhile: a raise sent with less of the run left
          // could be neither read back nor lowered back before the deadline, should another
          // writer have filled the pool while it waited.
          const tooLate = tooLittleLeft(readMs, opts);
          if (tooLate !== null) return notSent(d.c, skipped(d.c, 'deadline', tooLate));
          // Sent again after a refusal only while it could still be read back and lowered back.
          const resendUntil = opts.deadline - raiseMargin(readMs, opts);
          const result = await write(d.c, d.to, d.svc, opts, d.note, resendUntil);
          return {
            change: d.c,
            to: d.to,
            result,
            etag: d.svc.etag,
            sentOn: d.svc,
            settled: false,
          };
        },
        onPacer(opts.deadline, opts),
      );
      if (done) return done.value;
      return opts.clock() > opts.deadline ? notSent(d.c, late(d.c)) : d.c;
    }),
  );
  const raises = sent.filter((r): r is Raise => 'result' in r);
  const again = sent.filter((r): r is PlanChange => !('result' in r));
  return { raises, rest: [...again, ...rest] };
}

/**
 * Why a raise's service is not among the pool's automatically scaled GPU services on the read
 * before the raises: gone, or still listed but changed out of the pool by another writer
 * (switched to manual scaling, which Cloud Run changes without a new revision, moved to another
 * GPU pool, or its GPU removed): left for the next run, which plans it where it now is.
 */
function notInPool(c: PlanChange, read: PoolRead): WriteResult {
  const listed = read.services.find((s) => s.name === c.name);
  if (!listed) return skipped(c, 'gone', 'the service is gone');
  const what =
    listed.gpu === null
      ? 'it no longer has a GPU'
      : listed.scalingMode === 'MANUAL'
        ? 'it was switched to manual scaling'
        : 'it was moved to another GPU pool';
  return skipped(
    c,
    'etag',
    `changed since it was observed: ${what}, so it is no longer an automatically scaled service of this pool: left for the next run`,
  );
}

// --- 4. verify and compensate ---

/**
 * On the read just after the raises: when the pool is over what its governed services may hold,
 * this run's raises come back down, the last planned first, each at most to where it was before
 * this run, until the pool fits or none is left. A service someone changed since the raise (its
 * service-level max is no longer what was written) is not ours to lower any more and is left
 * alone. A raise that got no answer and does not show is counted as applied and written back
 * whole, with the etag it was sent with, whether or not the pool is over (`fenced` where it is
 * not: no cap changes; mayStillApply). `last`:
 * the read after a pool's last round of raises, the one that reports a pool still over (an
 * earlier round's read only lowers back).
 */
async function compensate(
  plan: Plan,
  pool: PlanPool,
  raises: readonly Raise[],
  read: PoolRead | Error,
  gate: Gate,
  opts: Acting,
  last = true,
): Promise<WriteResult[]> {
  if (read instanceof Error) {
    opts.log.log(
      'WARNING',
      `${poolKey(pool)}: could not read the pool again after its increases (${read.message}): not verified; the next run will see it`,
    );
    opts.onUnverified?.({ ...poolIdOf(pool), raises: raises.length, error: read.message });
    return fenceUnread(raises, gate, opts);
  }
  const byName = new Map(inPool(pool, read.services).map((s) => [s.name, s]));
  // The raises that got no answer and that this read does not show: each may still apply, so its
  // room is still spent here, as it is for the rounds after it (raisePool).
  const pending = new Set(raises.filter((r) => mayStillApply(r, byName.get(r.change.name))));
  // One this read shows changed since it was sent can no longer land (its etag is stale).
  for (const r of raises) if (r.result.cause === 'uncertain' && !pending.has(r)) r.settled = true;
  const pendingGpus = [...pending].reduce((sum, r) => {
    const svc = byName.get(r.change.name);
    return sum + ((r.to ?? r.change.from) - r.change.from) * (svc ? instanceGpus(svc) : 0);
  }, 0);
  const now = roomOf(plan, pool, read);
  const [room, allowed, governed] = [
    now.room - pendingGpus,
    now.allowed,
    now.governed + pendingGpus,
  ];
  // A raise that may still apply is written back even where the pool has room for it: landing
  // later, it could meet another writer's change made after this read, and land over the quota.
  if (room >= 0 && pending.size === 0) return [];
  let over = Math.max(0, -room);
  type Lowering = {
    raise: Raise;
    svc: ObservedService;
    to: number;
    from: number;
    unanswered: boolean;
  };
  /**
   * The raises to lower back next, the last planned first, until `over` is spent. A raise already
   * lowered back is done (`null`), but for one lowered only in part: it may come down further,
   * from the service as that write left it (its new etag), should a lowering of another not land.
   */
  const tried = new Map<Raise, ObservedService | null>();
  const next = (): Lowering[] => {
    const plans: Lowering[] = [];
    for (const r of [...raises].reverse()) {
      const lowered = tried.get(r);
      if (lowered === null) continue;
      if (over <= 0 && (lowered !== undefined || !pending.has(r))) continue;
      const svc = lowered ?? byName.get(r.change.name);
      if (!svc || r.to === null || svc.reconciling) continue;
      const unanswered = lowered === undefined && pending.has(r);
      // This run's raise stands while the service-level max is what it wrote. The cap in force may
      // be lower: the serving revision's own max, when lower, holds it ("the lower of the two",
      // core/pool.ts maxInForce; https://cloud.google.com/run/docs/configuring/max-instances). The
      // planner plans no cap above the revision's max it read, but a deploy in the round trip may
      // have lowered it. Such a raise landed up to that max, and is still this run's to lower back.
      if (lowered === undefined && svc.serviceMaxInstances !== r.to && !unanswered) continue;
      const g = instanceGpus(svc);
      // What it holds now (or, unanswered, may hold once it lands).
      const held = unanswered ? r.to : effectiveMax(svc);
      // A raise that may still apply is lowered back whole, over or not, to the max the service has
      // now (so this write raises nothing, whether or not that raise ever lands), from what it would
      // set. Sent
      // with the etag that raise was sent with (the service is unchanged since), this write changes
      // the etag, so that raise, should it reach Cloud Run only now, is refused as stale instead of
      // applying over the other writer's change (see mayStillApply). A raise that landed comes down
      // from the cap it holds in force, by whole instances that free enough.
      const to = unanswered ? r.change.from : Math.max(r.change.from, held - Math.ceil(over / g));
      if (to >= held) continue;
      over -= (held - to) * g;
      tried.set(r, null);
      plans.push({ raise: r, svc, to, from: held, unanswered });
    }
    return plans;
  };
  const late =
    pending.size > 0
      ? `, counting ${pending.size} raise(s) that got no answer and may still apply`
      : '';
  const send = (plans: readonly Lowering[]): Promise<WriteResult[]> =>
    Promise.all(
      plans.map(({ raise, svc, to, from, unanswered }) =>
        gate(async () => {
          const { change } = raise;
          const noAnswer = unanswered
            ? ' (that raise got no answer and may still apply: lowered back before it can)'
            : '';
          const reason =
            room < 0
              ? `lowered back from ${from}${noAnswer}: just after this run raised it, the pool was over its quota by ${-room} GPUs (another writer, or a quota cut, in the meantime)`
              : fenceReason(from, to, 'did not show on the read just after it');
          const c: PlanChange = { ...change, from, to, etag: svc.etag, reason };
          // Lowering back must not wait for the write quota: it takes a slot now.
          opts.pacer.take(regionKey(c));
          // Lowered in part, it may come down further from where this write leaves it.
          const result = await write(c, to, svc, opts, '', opts.deadline, (after) => {
            if (to > change.from) tried.set(raise, after);
          });
          if (result.outcome !== 'written') return result;
          raise.settled = true;
          return { ...result, cause: room < 0 ? ('compensated' as const) : ('fenced' as const) };
        }, true),
      ),
    );
  let plans = next();
  opts.log.log(
    'WARNING',
    room < 0
      ? `${poolKey(pool)}: over its quota by ${-room} GPUs just after this run's raises${late} (another writer, or a quota cut, in the round trip before them): lowering ${plans.length} raise(s) back`
      : `${poolKey(pool)}: ${pending.size} raise(s) got no answer and do not show on the read just after the raises: writing ${plans.length} back to the max they had, so that none can land later (the next run decides again)`,
  );
  const results: WriteResult[] = [];
  // What the pool holds once the raises that could be lowered back are: still over is said.
  let lowered = 0;
  while (plans.length > 0) {
    const done = await send(plans);
    results.push(...done);
    let missed = 0;
    for (const [i, w] of done.entries()) {
      const p = plans[i];
      if (!p) continue;
      const freed = (p.from - p.to) * instanceGpus(p.svc);
      if ((w.cause === 'compensated' || w.cause === 'fenced') && w.written !== null)
        lowered += freed;
      else {
        // A lowering back that did not land frees nothing (one that got no answer may not apply):
        // the GPUs it was to free are still over, for the next of this run's raises to free. Left
        // counted as freed, the pool would stay over with a raise of this run still up.
        over += freed;
        missed += 1;
      }
    }
    if (missed === 0 || over <= 0) break;
    plans = next();
    if (plans.length > 0)
      opts.log.log(
        'WARNING',
        `${poolKey(pool)}: ${missed} lowering(s) back did not land and the pool is still ${over} GPUs over: lowering ${plans.length} more raise(s) back`,
      );
  }
  const caps = governed - lowered;
  if (last && caps > allowed) {
    opts.log.log(
      'ERROR',
      `${poolKey(pool)}: still over its budget (${caps} GPUs on ${allowed}) once this run lowered back what it could: another writer's change (or a deploying service) holds the rest; the next run lowers the pool`,
    );
    opts.onOverAfterRaises?.({ ...poolIdOf(pool), quota: read.quota, budget: allowed, caps });
  }
  return results;
}

/** The reason of a fence: a raise that got no answer, written back to `to` from the `raised` it sent. */
function fenceReason(raised: number, to: number, why: string): string {
  return `written back to ${to}, not raised to ${raised}: that raise got no answer and ${why}, so it is fenced off with the etag it was sent with (it could otherwise land later, over another writer's change); the next run decides again`;
}

/**
 * When the read after the raises failed: each raise that got no answer and that no read has shown
 * settled is written back all the same, to the max its service had on the read it was sent
 * against, with that read's etag. Whether it landed is unknown without a read, and Google does not
 * say how late a request the client gave up on may still be taken (see mayStillApply): left as it
 * is, it could land after the run, once another writer has taken the room it was decided on, and
 * take the pool over its quota with nobody reading the pool until the next run. Sent with the etag
 * the raise was sent with, the write needs no read: Cloud Run takes it only while the service is
 * unchanged since that read (https://google.aip.dev/154), so it changes no cap (the raise has not
 * landed: `fenced`), and its new etag has the raise refused should it arrive later; a raise that
 * did land has changed the etag, so the write is refused instead (`conflict`) and the raise
 * stands, as unverified as the pool (its alert). Whether Cloud Run itself refuses a stale etag its
 * reference does not say (adapters/cloud-run.ts updateMaxInstances, which reads first for that),
 * and the read the raise was sent against is older than the raise: so the service is read again
 * first, and one whose etag or max changed since is not written (the raise landed, or another
 * writer changed it; either way it can no longer land); only where that read fails too is the
 * write sent on the old read's etag alone.
 */
async function fenceUnread(
  raises: readonly Raise[],
  gate: Gate,
  opts: Acting,
): Promise<WriteResult[]> {
  const open = raises.filter(
    (r): r is Raise & { to: number; sentOn: ObservedService } =>
      r.result.cause === 'uncertain' &&
      !r.settled &&
      r.to !== null &&
      r.sentOn !== null &&
      r.to > r.change.from,
  );
  if (open.length === 0) return [];
  opts.log.log(
    'WARNING',
    `${open.length} raise(s) got no answer and the pool could not be read again after them: writing back to the max it had each one its service shows unchanged since it was sent (or that cannot be read), with the etag it was sent with, so that none can land later (the next run decides again)`,
  );
  return Promise.all(
    open.map((r) =>
      gate(async () => {
        const reason = fenceReason(
          r.to,
          r.change.from,
          'the pool could not be read again after it',
        );
        const c: PlanChange = {
          ...r.change,
          from: r.to,
          to: r.change.from,
          etag: r.sentOn.etag,
          reason,
        };
        const { project, region, name } = r.change;
        const now = await beforeDeadline(
          () => opts.run.getService(project, region, name),
          opts,
          `reading ${name}`,
        ).catch(() => null);
        if (now !== null && !mayStillApply(r, now)) {
          r.settled = true;
          return null;
        }
        // As lowering back: it takes its slot now, never waiting for the write quota.
        opts.pacer.take(regionKey(c));
        const result = await write(c, r.change.from, now ?? r.sentOn, opts);
        if (result.outcome !== 'written') return result;
        r.settled = true;
        return { ...result, cause: 'fenced' as const };
      }, true),
    ),
  ).then((results) => results.filter((w): w is WriteResult => w !== null));
}

/**
 * Whether a raise that got no answer may still apply on `svc`, as a read just after the raises
 * shows it: the raise failed in a way that may still apply (`uncertain`: no answer, a timeout),
 * and the service is exactly as it was when the raise was sent (the same etag, the max it had).
 *
 * Google documents that an update Cloud Run has taken changes the service at once: its desired
 * state (`generation`, the max) is stored, and only reconciliation runs on asynchronously
 * (`reconciling` in
 * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services). So a raise
 * taken before the read shows on it. But a call that got no answer may not have reached Cloud
 * Run yet: DEADLINE_EXCEEDED "may be returned even if the operation has completed successfully"
 * (google/rpc/code.proto, https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto),
 * and Google does not say how late a request the client gave up on may still be taken. Failing
 * safe, such a raise counts as if it applied, as its room stays spent in the rounds after it
 * (raisePool), and the read after the raises writes it back with the etag it was sent with
 * (compensate), the pool over or not. Once the service's etag changed it cannot apply any more: it
 * was sent conditional on the old one (a stale etag is refused, https://google.aip.dev/154).
 */
function mayStillApply(r: Raise, svc: ObservedService | undefined): boolean {
  return (
    r.to !== null &&
    r.result.cause === 'uncertain' &&
    svc !== undefined &&
    r.etag !== null &&
    svc.etag === r.etag &&
    effectiveMax(svc) === r.change.from &&
    r.to > r.change.from
  );
}

// --- one write ---

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

/** A change not written because the run deadline came first. */
function late(c: PlanChange): WriteResult {
  return skipped(c, 'deadline', 'the run deadline was reached before this write');
}

/**
 * Writes `to` with the etag of `svc` (the read it was validated against). Google's v2 reference
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services) says only that
 * the etag "may be used to detect modification conflict during updates", not how a stale one is
 * answered. AIP-154 (https://google.aip.dev/154) says ABORTED (its code since 2021; it said
 * FAILED_PRECONDITION before): a conflict, skipped and decided again next run. A
 * FAILED_PRECONDITION the adapter finds with the etag changed is the same conflict; any other is
 * a failed write, never one made. The update
 * answers with a long-running operation and Google does not say when the max takes effect: a
 * write is made once its operation is done; one whose operation does not answer is `uncertain`
 * (its room stays spent). The governor's annotations merge into the ones of that read. Its write
 * slot was taken by the caller (see {@link decrease}).
 */
async function write(
  c: PlanChange,
  to: number,
  svc: ObservedService,
  opts: Acting,
  note = '',
  resendUntil = opts.deadline,
  onWritten?: (after: ObservedService) => void,
): Promise<WriteResult> {
  // At the deadline itself no call starts (beforeDeadline refuses it at once): a write not sent
  // then is late, not one that may have applied.
  if (opts.clock() >= opts.deadline) return late(c);
  const annotations: Record<string, string> = {
    // One line without control characters: the reason may quote an error in Google's words (usage
    // unknown: "Monitoring read failed: …"), and people read it in the console and in `gcloud run
    // services describe`, where a newline or a terminal escape would act on what shows it.
    [ANNOTATIONS.reason]: cutText(oneLine(c.reason + note), REASON_MAX),
    [ANNOTATIONS.writer]: opts.writerId,
    // On the wall clock, as a lease: another governor judges it against its own wall clock.
    [ANNOTATIONS.writtenAt]: new Date(opts.wall()).toISOString(),
  };
  if (svc.annotations[ANNOTATIONS.originalMax] === undefined) {
    annotations[ANNOTATIONS.originalMax] =
      svc.serviceMaxInstances === null ? '' : String(svc.serviceMaxInstances);
  }
  // Against the cap the service shows (validate makes it c.from for every write but a fence,
  // whose c.from is the raise it fences off, which never showed): a fence changes no cap, so it
  // stamps neither, and holds no later raise for the reverse delay (rule 8).
  const shown = effectiveMax(svc);
  if (to > shown) annotations[ANNOTATIONS.lastChanged] = opts.nowIso;
  if (to < shown) annotations[ANNOTATIONS.lastLowered] = opts.nowIso;
  const started = opts.elapsed();
  // A write refused for a per-minute quota may be sent again after the delay Google asks for
  // (adapters/cloud-run.ts): not past `resendUntil`, and not once this run has given up on it
  // (aborted as it ends, whatever ended it: a write abandoned at the deadline sends nothing more).
  const giveUp = new AbortController();
  const stop = setTimeout(() => giveUp.abort(), Math.max(0, resendUntil - opts.clock()));
  stop.unref();
  try {
    const after = await beforeDeadline(
      () =>
        opts.run.updateMaxInstances({
          project: c.project,
          region: c.region,
          name: c.name,
          maxInstances: to,
          etag: svc.etag,
          annotations,
          currentAnnotations: svc.annotations,
          signal: giveUp.signal,
        }),
      opts,
      `writing ${c.name}`,
    );
    onWritten?.(after);
  } catch (e) {
    return writeFailed(c, to, svc, e, opts);
  } finally {
    clearTimeout(stop);
    giveUp.abort();
    // For raiseMargin: how long a write takes here, its operation included.
    const took = opts.elapsed() - started;
    opts.timing.slowestWriteMs = Math.max(opts.timing.slowestWriteMs, took);
  }
  opts.log.log('INFO', `${c.project}/${c.region}/${c.name}: max instances ${c.from} → ${to}`, {
    project: c.project,
    region: c.region,
    service: c.name,
    from: c.from,
    to,
  });
  return { ...base(c), written: to, outcome: 'written', cause: 'written', reason: c.reason + note };
}

/**
 * What a write that threw means: skipped on a conflict or a service deleted meanwhile, else
 * failed (maybe still applying). The update is sent without `allow_missing`, so Cloud Run
 * creates nothing and answers NOT_FOUND for a service someone deleted after the read
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/patch,
 * https://google.aip.dev/134): it holds no GPUs any more, like a service the read no longer
 * lists (`gone`), and is not a failure of the run.
 */
function writeFailed(
  c: PlanChange,
  to: number,
  svc: ObservedService,
  e: unknown,
  opts: ActOptions,
): WriteResult {
  if (e instanceof ConflictError)
    return skipped(
      c,
      'conflict',
      `changed while the governor was writing it (${errorMessage(e)}): left for the next run`,
    );
  if (e instanceof NotFoundError)
    return skipped(
      c,
      'gone',
      `the service was deleted while the governor was writing it (${errorMessage(e)})`,
    );
  opts.log.log(
    'ERROR',
    `${c.project}/${c.region}/${c.name}: write ${c.from} → ${to} failed: ${errorMessage(e)}`,
    { project: c.project, region: c.region, service: c.name },
  );
  if (e instanceof PermissionError) {
    const named = e.permissions.length > 0;
    const permissions = named ? [...e.permissions] : [...WRITE_PERMISSIONS];
    // The resource: as the error names it, else the service written (a subscriber's alert
    // names the permission and the resource, docs/alerts.md).
    const resource = e.resource ?? svc.resourceName;
    const which = named
      ? `it lacks ${permissions.join(' and ')}`
      : `it likely lacks run.services.update on the service or iam.serviceAccounts.actAs on the service's runtime service account`;
    return {
      ...failed(
        c,
        'denied',
        `permission denied: the governor may not write ${c.name} (${which}): ${errorMessage(e)}`,
      ),
      permissions,
      resource,
    };
  }
  // Refused before Cloud Run took the write: its quota check, the write quota, a bad request, a
  // refusal in the service's state (FAILED_PRECONDITION, such as another operation in flight:
  // adapters/cloud-run.ts).
  if (
    e instanceof QuotaRejectedError ||
    e instanceof RateLimitedError ||
    e instanceof InputError ||
    e instanceof RefusedError
  )
    return failed(c, 'failed', `write failed: ${errorMessage(e)}`);
  // Anything else may have applied: no answer (unavailable, a timeout), or an error of the
  // operation or of the call (INTERNAL, UNKNOWN). Cloud Run keeps an accepted update's spec when
  // its reconciliation fails: only observed_generation and the latest ready revision stay at the
  // last serving state (the `reconciling` field of
  // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services). Google does
  // not say that an INTERNAL answer means nothing was stored, so the room stays spent and step 4
  // may lower the raise back.
  return failed(c, 'uncertain', `write failed: ${errorMessage(e)}; the write may still apply`);
}

// --- helpers ---

/**
 * One of the run's `writeConcurrency` places for `task`. An `urgent` task (a raise, decided on a
 * read just before it; lowering a raise back) waits ahead of the decreases: other regions'
 * decreases in flight must not widen the window between a read and the raises decided on it.
 */
type Gate = <T>(task: () => Promise<T>, urgent?: boolean) => Promise<T>;

/** At most `n` tasks at once; a place that frees goes straight to the next waiting. */
function limiter(n: number): Gate {
  let active = 0;
  const urgentWaiting: (() => void)[] = [];
  const waiting: (() => void)[] = [];
  return async (task, urgent = false) => {
    if (active < n) active += 1;
    // The place is handed over by the task that frees it (active stays counted).
    else await new Promise<void>((r) => (urgent ? urgentWaiting : waiting).push(r));
    try {
      return await task();
    } finally {
      const next = urgentWaiting.shift() ?? waiting.shift();
      if (next) next();
      else active -= 1;
    }
  };
}

function serviceKey(s: { project: string; region: string; name: string }): string {
  return `${s.project}/${s.region}/${s.name}`;
}

/** What one listing reads, and what a region's pools share: `project/region`. */
function regionKey(p: { project: string; region: string }): string {
  return `${p.project}/${p.region}`;
}

function writeKey(w: { project: string; region: string; name: string }): string {
  return serviceKey(w);
}

function readOf(reads: Map<string, PoolRead | Error>, pool: PlanPool): PoolRead | Error {
  return reads.get(poolKey(pool)) ?? new GovernorError(`bug: pool ${poolKey(pool)} was not read`);
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

/** The values of `promises` once every one has settled; the first rejection's reason if any. */
async function settledAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}
