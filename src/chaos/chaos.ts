import type { Alert } from '../core/alert.js';
import { parsePolicy, type Policy } from '../core/policy.js';
import { DEFAULT_ACCELERATOR, poolKey, samePool, type PoolId } from '../core/pool.js';
import { CAUSE_LABELS } from '../core/write-result.js';
import {
  ConflictError,
  PermissionError,
  RateLimitedError,
  RefusedError,
  UnavailableError,
  UpstreamError,
} from '../core/errors.js';
import { memoryLogger, RUN_FAILED_FIELD } from '../log.js';
import type { ObservedService } from '../core/service.js';
import type {
  CloudRunPort,
  MonitoringPort,
  ObservePorts,
  QuotaPort,
  StateStore,
} from '../ports/index.js';
import { reconcile, RunFailedError, type RunReport } from '../reconcile/reconcile.js';
import { RecordingSink } from '../adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../adapters/memory/state-store.js';
import { createSimPorts } from '../emulator/ports.js';
import { MAX_SEED, wholeNumberSetting } from './settings.js';
import {
  applyConcurrentChange,
  applyOtherActor,
  workerPoolPools,
  type ModelPool,
} from '../emulator/context.js';
import { seededRandom, type OtherActorChange } from '../emulator/faults.js';
import { validateFleet, type FleetInput } from '../emulator/fleet.js';
import { InvariantMonitor, type Violation } from '../emulator/invariants.js';
import { DEFAULT_METRICS_LAG_MS } from '../emulator/index.js';
import { effectiveMax, FleetModel } from '../emulator/model.js';

/**
 * Randomized governor runs in process, fast enough for a thousand in a test: a generated fleet
 * (the emulator's model) behind the in-memory ports, each port, the state store and the alert
 * sink wrapped by a seeded fault layer, and the invariant monitor checking every write. Everything
 * follows from one seed, so any failure is reproducible from the seed printed with it.
 *
 * Faults, per run: every port call may fail with a gRPC-like error (UNAVAILABLE,
 * DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, PERMISSION_DENIED, INTERNAL); a write may fail
 * without applying (a failed operation), apply and never answer (a hung operation), or apply and
 * answer an error (its operation failed with the new max in place); before a
 * Cloud Run read another actor may deploy, edit or re-cap a service; before a quota read the quota
 * may change; Monitoring may drop a service's series or serve only stale points; the state store
 * may be unavailable; a publish may fail whole or after part of the messages.
 *
 * And the other writer: right after one of the governor's reads of a pool (its region's services,
 * its quota) or one of its writes, another actor fills the pool up to its quota by raising a
 * service's max (legally: Cloud Run checks one service at a time), cuts the quota, starts a
 * deployment, redeploys a service from its own configuration as a CI pipeline does (its max
 * back to the configured one, and a deployment), or switches a service to manual scaling at the
 * min instances that fill the pool (no manual instance count), or makes or moves revisions: deploys
 * a revision with its own max (`--max-instances`), deploys one without traffic (`--no-traffic`,
 * the traffic left pinned on the older revision) or a tagged canary outside the traffic split
 * (`--no-traffic --tag`), splits the traffic with the revision before the serving one (one made
 * after it, numbered next, where the serving one is the first: model.ts, otherRevisionIndex), or
 * splits a worker pool's instances with an older revision, of the pool's GPU or the other zonal
 * redundancy's (https://cloud.google.com/run/docs/configuring/max-instances,
 * https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration,
 * https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks). The invariant
 * monitor counts what those revisions may hold by Google's rules (invariants.ts). Once in every
 * run, the fault-free ones included (someone else is always writing), at
 * one of its first six reads and writes (drawn), if the run gets that far (`otherActorRuns`
 * counts the runs it acted in). A raise it takes over the quota inside Cloud Run's window is a
 * race (invariants.ts), which the governor must lower back in the same run once it sees it.
 *
 * Nothing lost: every write the governor made (applied to the fleet, even if its operation never
 * answered) must be described by an event of its run that some run of the fleet published
 * (`rebalance.applied`, settled or not, or `apply.failed`), and every event a failed run could not
 * publish must be published by a later run; else the write or event counts as an alert lost. A
 * failed run logs one structured ERROR line (`runFailed`); one that wrote nothing and published
 * nothing because the state store was down has only that line (`failuresOnlyLogged`).
 */

export const CHAOS_PROJECT = 'chaos-project';
const TOPIC = `projects/${CHAOS_PROJECT}/topics/alerts`;
const START = Date.parse('2026-11-27T12:00:00Z');
const REGIONS = ['us-central1', 'europe-west4'] as const;

interface ChaosOptions {
  seed: number;
  /** Governor runs in all (a fleet gets `runsPerFleet` of them, the last one without faults). */
  runs: number;
  runsPerFleet?: number;
  /** Go on (whole fleets) until the other writer has acted in this many runs too. */
  otherActorRuns?: number;
  /**
   * GetRevision calls fail at the run's error rate too (off by default: a tagged revision whose
   * read fails is not yet counted anywhere by the governor).
   */
  failRevisionReads?: boolean;
}

interface ChaosFailure {
  /**
   * The fleet's seed within the run: `chaosScenario(fleetSeed)` rebuilds its fleet and policy;
   * the run's `CHAOS_SEED` replays every fleet, this one among them.
   */
  fleetSeed: number;
  what: string;
}

interface ChaosReport {
  seed: number;
  runs: number;
  fleets: number;
  failedRuns: number;
  writes: number;
  writesChecked: number;
  faults: Record<string, number>;
  violations: (Violation & { fleetSeed: number })[];
  /** Raises another writer's change took over the quota inside Cloud Run's window. */
  races: number;
  /** Runs in which the other writer acted (once each). */
  otherActorRuns: number;
  /** Raises of a run lowered back in the same run (the verify step). */
  compensated: number;
  /** Conditions never published, or a completed run that published less than it decided. */
  alertsLost: ChaosFailure[];
  /**
   * Failed runs that wrote nothing and published nothing because the state store was down (no
   * alert can be decided without its state, no write starts before its events are stored): their
   * failure is only in the log, as the one structured ERROR line every failed run writes.
   */
  failuresOnlyLogged: number;
  /** Writes the governor made, each checked to be announced by a published event of its run. */
  writesAnnounced: number;
  /** Writes planned but not made, by reason. */
  skipped: Record<string, number>;
  /** Writes that failed, by reason. */
  failedWrites: Record<string, number>;
  /** Anything the governor threw other than RunFailedError: a crash. */
  crashes: ChaosFailure[];
  /**
   * Runs that left the project's lease held once they ended, though every release they asked
   * for reached the store (the next run would find the project locked until the lease expires),
   * and runs refused the lease (no other governor runs here, and a lease left held has expired
   * by the next run).
   */
  leasesLeft: ChaosFailure[];
  /**
   * Leases a run left held because its release never reached the store (it was down): left to
   * expire, and taken by the next run once expired.
   */
  leasesLeftToExpire: number;
  /** Pools a run without faults or another writer left over their quota (floors fitting). */
  overAfterRun: ChaosFailure[];
  /** Pools checked so after a run. */
  poolsCheckedAfterRun: number;
}

function emptyReport(seed: number): ChaosReport {
  return {
    seed,
    runs: 0,
    fleets: 0,
    failedRuns: 0,
    writes: 0,
    writesChecked: 0,
    faults: {},
    violations: [],
    races: 0,
    otherActorRuns: 0,
    compensated: 0,
    alertsLost: [],
    failuresOnlyLogged: 0,
    writesAnnounced: 0,
    skipped: {},
    failedWrites: {},
    crashes: [],
    leasesLeft: [],
    leasesLeftToExpire: 0,
    overAfterRun: [],
    poolsCheckedAfterRun: 0,
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const perFleet = Math.max(2, options.runsPerFleet ?? 5);
  const report = emptyReport(options.seed);
  const seeds = seededRandom(options.seed);
  const others = options.otherActorRuns ?? 0;
  // Bounded: the other writer acts in most runs, so this ends well before 10 times the target.
  const cap = 10 * Math.max(options.runs, others);
  while ((report.runs < options.runs || report.otherActorRuns < others) && report.runs < cap) {
    const fleetSeed = Math.floor(seeds() * 2 ** 31);
    await runChaosFleet(
      fleetSeed,
      report.runs < options.runs
        ? Math.min(perFleet, Math.max(2, options.runs - report.runs))
        : perFleet,
      report,
      options.failRevisionReads === true,
    );
  }
  return report;
}

/** What `npm run chaos` and the chaos test read from the environment. */
interface ChaosSettings {
  seed: number;
  runs: number;
  otherActorRuns: number;
}

/**
 * CHAOS_SEED (0 to 2^32 − 1), CHAOS_RUNS (at least 1) and CHAOS_OTHER_RUNS (at least 0, default
 * CHAOS_RUNS) from `env`, each a whole number written in digits; unset or empty: the defaults. A
 * value that is not is refused with one line naming it, rather than read as NaN (a seed of NaN runs
 * as 0 while the report prints NaN, and no run can be reproduced from it).
 */
export function chaosSettings(
  env: Readonly<Record<string, string | undefined>>,
  defaults: { seed: number; runs: number },
): ChaosSettings | { error: string } {
  const read = (name: string, fallback: number, min: number, max: number) =>
    wholeNumberSetting(env, name, fallback, min, max);
  const seed = read('CHAOS_SEED', defaults.seed, 0, MAX_SEED);
  const runs = read('CHAOS_RUNS', defaults.runs, 1, Number.MAX_SAFE_INTEGER);
  const other = read(
    'CHAOS_OTHER_RUNS',
    typeof runs === 'number' ? runs : 0,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  for (const v of [seed, runs, other]) if (typeof v !== 'number') return v;
  return { seed: seed as number, runs: runs as number, otherActorRuns: other as number };
}

/** A generated fleet and policy, as the chaos runs use them. */
interface ChaosScenario {
  fleet: FleetInput;
  policy: Policy;
  unmanaged: string[];
  /** Per pool (by `poolKey`): GPUs the governed floors take. */
  floors: Map<string, { pool: PoolId; floorGpus: number }>;
}

export function chaosScenario(fleetSeed: number): ChaosScenario {
  const rnd = seededRandom(fleetSeed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const regions = REGIONS.slice(0, int(1, 2));
  const pools: { region: string; quota: number; zonalRedundancy: boolean }[] = [];
  const services: NonNullable<FleetInput['projects'][number]['services']> = [];
  const workerPools: NonNullable<FleetInput['projects'][number]['workerPools']> = [];
  const unmanaged: string[] = [];
  const floors: ChaosScenario['floors'] = new Map();
  const priorityMin = int(1, 3);
  for (const region of regions) {
    for (const zonal of rnd() < 0.3 ? [true, false] : [true]) {
      const quota = int(2, 16);
      pools.push({ region, quota, zonalRedundancy: zonal });
      const count = int(1, 6);
      for (let i = 0; i < count; i++) {
        const ext = rnd() < 0.2;
        const name = `${ext ? 'ext' : 'svc'}-${zonal ? 'z' : 'n'}${i}`;
        const gpus = rnd() < 0.15 ? 2 : 1;
        const max = int(1, Math.max(1, Math.floor(quota / gpus)));
        const min = rnd() < 0.15 ? 1 : 0;
        const demand =
          rnd() < 0.6
            ? { constant: pick([0, 0, 0.5, 1, 2, 3, 5]) }
            : {
                steps: [
                  { at: '00:00', value: int(0, 3) },
                  { at: '12:10', value: int(0, 6) },
                  { at: '12:25', value: int(0, 2) },
                ],
              };
        services.push({
          name,
          region,
          gpu: { count: gpus, zonalRedundancy: zonal },
          maxInstances: max,
          minInstances: Math.min(min, max),
          demand,
        });
        const pool = {
          project: CHAOS_PROJECT,
          region,
          accelerator: DEFAULT_ACCELERATOR,
          zonalRedundancy: zonal,
        };
        if (ext) unmanaged.push(name);
        else {
          const floor = Math.max(1, min, name === 'svc-z0' ? priorityMin : 0);
          const before = floors.get(poolKey(pool))?.floorGpus ?? 0;
          floors.set(poolKey(pool), { pool, floorGpus: before + floor * gpus });
        }
      }
      if (rnd() < 0.3)
        workerPools.push({
          name: `wp-${zonal ? 'z' : 'n'}`,
          region,
          gpu: { zonalRedundancy: zonal },
          manualInstanceCount: 1,
        });
    }
  }
  const fleet: FleetInput = {
    start: new Date(START).toISOString(),
    startupSeconds: 30,
    idleMinutes: 0,
    warmupMinutes: 40,
    projects: [{ id: CHAOS_PROJECT, pools, services, workerPools }],
  };
  const reserve = pick([0, 0, 0, 1, 2]);
  const policy = parsePolicy({
    version: 1,
    projects: [CHAOS_PROJECT],
    reserve,
    defaults: {
      headroom: pick([0, 0.2, 0.5]),
      scaleDownDelay: pick(['0s', '15m']),
    },
    services: [
      { match: { name: 'ext-*' }, managed: false },
      { match: { name: 'svc-z0' }, min: priorityMin, priority: 10, weight: 2 },
      { match: {} },
    ],
    limits: { maxChangesPerRun: pick([1, 3, 50]), writesPerMinute: 6000 },
    alerts: { topic: TOPIC, renotifyAfter: '1h' },
  });
  return { fleet, policy, unmanaged, floors };
}

interface RunFaults {
  errorRate: number;
  writeFailRate: number;
  writeHangRate: number;
  /** A write that applies, then its operation ends with an error (INTERNAL). */
  writeFailAppliedRate: number;
  concurrentRate: number;
  quotaChangeRate: number;
  gapRate: number;
  staleRate: number;
  storeRate: number;
  /** A store write that is committed, and whose answer is lost (a timeout after the commit). */
  storeLostRate: number;
  publishRate: number;
  /** Whether the other writer acts in this run (once, at a hook drawn evenly over the run). */
  otherActor: boolean;
}

const NO_FAULTS: RunFaults = {
  errorRate: 0,
  writeFailRate: 0,
  writeHangRate: 0,
  writeFailAppliedRate: 0,
  concurrentRate: 0,
  quotaChangeRate: 0,
  gapRate: 0,
  staleRate: 0,
  storeRate: 0,
  storeLostRate: 0,
  publishRate: 0,
  otherActor: false,
};

function drawFaults(rnd: () => number): RunFaults {
  const pick = (xs: readonly number[]): number => xs[Math.floor(rnd() * xs.length)] ?? 0;
  return {
    errorRate: pick([0, 0.02, 0.05, 0.15]),
    writeFailRate: pick([0, 0.05, 0.2]),
    writeHangRate: pick([0, 0.05, 0.2]),
    concurrentRate: pick([0, 0.05, 0.2]),
    quotaChangeRate: pick([0, 0.1, 0.3]),
    gapRate: pick([0, 0.1, 0.3]),
    staleRate: pick([0, 0.1]),
    storeRate: pick([0, 0, 0.05, 0.2]),
    publishRate: pick([0, 0.1, 0.4]),
    writeFailAppliedRate: pick([0, 0.05, 0.2]),
    storeLostRate: pick([0, 0, 0.05, 0.2]),
    otherActor: true,
  };
}

const ERRORS: readonly [string, (m: string) => Error][] = [
  ['UNAVAILABLE', (m) => new UnavailableError(`UNAVAILABLE: ${m}`)],
  ['DEADLINE_EXCEEDED', (m) => new UnavailableError(`DEADLINE_EXCEEDED: ${m}`)],
  ['RESOURCE_EXHAUSTED', (m) => new RateLimitedError(`RESOURCE_EXHAUSTED: ${m}`)],
  ['ABORTED', (m) => new ConflictError(`ABORTED: ${m}`)],
  ['PERMISSION_DENIED', (m) => new PermissionError(`PERMISSION_DENIED: ${m}`)],
  ['INTERNAL', (m) => new UpstreamError(`INTERNAL: ${m}`)],
];

class Faulty {
  /** The other writer acts at most once per run: at the `otherActorAt`-th read or write. */
  otherActed = false;
  otherActorAt = 0;
  hooks = 0;
  /** A lease release of this run that never reached the store (it was down). */
  releaseFailed = false;
  /** Whether GetRevision calls fail at the run's error rate too (`ChaosOptions`). */
  failRevisionReads = false;
  constructor(
    readonly rnd: () => number,
    readonly faults: RunFaults,
    readonly counts: Record<string, number>,
  ) {}

  count(kind: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
  }

  chance(rate: number): boolean {
    return rate > 0 && this.rnd() < rate;
  }

  /** Throws an injected error at the error rate. */
  maybeFail(what: string): void {
    if (!this.chance(this.faults.errorRate)) return;
    const [code, make] = ERRORS[Math.floor(this.rnd() * ERRORS.length)] ?? ERRORS[0]!;
    this.count(code);
    throw make(`injected on ${what}`);
  }
}

function faultyPorts(
  inner: ObservePorts,
  model: FleetModel,
  f: Faulty,
  monitor: InvariantMonitor,
  seq: { n: number },
  applied: AppliedWrite[],
): ObservePorts {
  const actor = (): void => {
    if (!f.chance(f.faults.concurrentRate)) return;
    const kinds = ['deploy', 'annotate', 'max'] as const;
    const kind = kinds[Math.floor(f.rnd() * kinds.length)] ?? 'annotate';
    const pick = f.rnd();
    // Counted, and told to the monitor, only as far as it changed something (as the emulator's).
    const key = applyConcurrentChange(
      model,
      kind === 'deploy'
        ? { kind, seconds: 120, pick }
        : kind === 'max'
          ? { kind, pick, delta: f.rnd() < 0.5 ? -1 : 1 }
          : { kind, pick },
      monitor,
    );
    if (key) f.count(`concurrent-${kind}`);
  };
  // The quota of a random pool changes (someone filed a quota request, or it was cut).
  const quotaChange = (): void => {
    if (!f.chance(f.faults.quotaChangeRate)) return;
    const pools = model.pools();
    const pool = pools[Math.floor(f.rnd() * pools.length)];
    if (!pool) return;
    const now = model.quotaFor(pool) ?? 0;
    const next = Math.max(0, now + (f.rnd() < 0.6 ? -1 : 1) * (1 + Math.floor(f.rnd() * 2)));
    // A quota already at 0 cut again is no change: not counted, not another writer's.
    if (next === now) return;
    model.setQuota(pool, next);
    monitor.otherActed(pool, 'quota');
    f.count('quota-changed');
  };
  // The other writer, right after a read or write of a pool (one of `pools`): once per run.
  const other = (pools: readonly ModelPool[]): void => {
    if (!f.faults.otherActor || f.otherActed || pools.length === 0) return;
    // A run reads and writes its pools a few times to a dozen: the hook is drawn among the
    // first six, so the other writer lands right after the read before the increases about as
    // often as anywhere else. (Among the first four it would act in more runs, but mostly during
    // the observation, which the fresh read before the increases already covers: races fall
    // from about 1 in 200 runs to 1 in 2,000.)
    if (f.otherActorAt === 0) f.otherActorAt = 1 + Math.floor(f.rnd() * 6);
    f.hooks += 1;
    if (f.hooks < f.otherActorAt) return;
    const pool = pools[Math.floor(f.rnd() * pools.length)];
    if (!pool) return;
    const pick = f.rnd();
    const changes: OtherActorChange[] = [
      { where: 0, kind: 'fill', pick },
      { where: 0, kind: 'cut-quota', gpus: 1 + Math.floor(f.rnd() * 3) },
      { where: 0, kind: 'deploy', pick, seconds: 120 },
      { where: 0, kind: 'redeploy', pick, seconds: 120 },
      { where: 0, kind: 'manual', pick },
      { where: 0, kind: 'revision-max', pick, size: f.rnd() },
      { where: 0, kind: 'no-traffic', pick, size: f.rnd() },
      { where: 0, kind: 'canary', pick, size: f.rnd() },
      { where: 0, kind: 'split', pick, percent: 1 + Math.floor(f.rnd() * 99), size: f.rnd() },
      {
        where: 0,
        kind: 'pool-split',
        pick,
        percent: 1 + Math.floor(f.rnd() * 99),
        other: f.rnd() < 0.5,
      },
    ];
    // Its first choice, else the next that can be done here (a full pool cannot be filled).
    const first = Math.floor(f.rnd() * changes.length);
    for (let i = 0; i < changes.length; i++) {
      const change = changes[(first + i) % changes.length];
      const what = change ? applyOtherActor(model, pool, change) : null;
      if (!change || !what) continue;
      f.otherActed = true;
      f.count(`other-actor-${change.kind}`);
      monitor.otherActed(pool, what);
      // A worker pool's split revision may hold GPUs of the region's other pool.
      if (change.kind === 'pool-split')
        for (const p of workerPoolPools(model, pool.project, pool.region))
          monitor.otherActed(p, 'caps');
      return;
    }
  };
  const poolsIn = (project: string, region: string): ModelPool[] =>
    model.pools().filter((p) => p.project === project && p.region === region);
  const saw = (s: ObservedService): ObservedService => {
    monitor.saw(s, s.reconciling);
    return s;
  };
  const run: CloudRunPort = {
    listRegions: async (p) => {
      f.maybeFail('ListLocations');
      return inner.run.listRegions(p);
    },
    listServices: async (p, r) => {
      monitor.listAttempt(p, r);
      actor();
      quotaChange();
      f.maybeFail('ListServices');
      // The in-memory ports read the model when called: that is when the governor's read is taken.
      const answer = inner.run.listServices(p, r);
      monitor.listed(p, r, model);
      const listed = (await answer).map(saw);
      other(poolsIn(p, r));
      return listed;
    },
    getService: async (p, r, n) => {
      actor();
      quotaChange();
      f.maybeFail('GetService');
      return saw(await inner.run.getService(p, r, n));
    },
    listWorkerPools: async (p, r) => {
      f.maybeFail('ListWorkerPools');
      return inner.run.listWorkerPools(p, r);
    },
    getRevisionMax: async (p, r, parent, revision, kind) => {
      if (f.failRevisionReads) f.maybeFail('GetRevision');
      return inner.run.getRevisionMax!(p, r, parent, revision, kind);
    },
    listRunningExecutions: async (p, r) => {
      f.maybeFail('ListExecutions');
      return inner.run.listRunningExecutions(p, r);
    },
    updateMaxInstances: async (u) => {
      const key = { project: u.project, region: u.region, name: u.name };
      monitor.writeAttempt(key);
      f.maybeFail('UpdateService');
      const s = model.getService(key);
      const before = s ? effectiveMax(s) : 0;
      const after = s
        ? effectiveMax({
            maxInstances: u.maxInstances,
            revisionMaxInstances: s.revisionMaxInstances,
          })
        : 0;
      seq.n += 1;
      const at = new Date(model.now).toISOString();
      monitor.beforeWrite(key, seq.n, at, before, after);
      // As the emulator: a stale etag first (a deployment changes it), then a deployment.
      if (s && u.etag && u.etag !== s.etag)
        throw new ConflictError(`ABORTED: the etag of ${u.name} changed since it was read`);
      // Cloud Run refuses a write to a service in the middle of a deployment (the adapter's
      // RefusedError: nothing of it applies).
      if (s && s.deployingUntil !== null)
        throw new RefusedError(`FAILED_PRECONDITION: ${u.name} is reconciling`);
      if (f.chance(f.faults.writeFailRate)) {
        f.count('operation-failed');
        throw new UpstreamError(`INTERNAL: injected: the update operation of ${u.name} failed`);
      }
      // The in-memory port applies the write when called: the pool is checked right then, before
      // any other call (another writer's among them) can change it.
      const etag = s?.etag;
      const answer = inner.run.updateMaxInstances(u);
      if (s && s.etag !== etag) {
        monitor.afterWrite(model, key, seq.n, at, before, effectiveMax(s));
        applied.push({ name: u.name, to: effectiveMax(s) });
      }
      const written = await answer;
      const pool = s ? model.poolOf(s) : undefined;
      if (pool) other(model.pools().filter((p) => samePool(p, pool)));
      if (f.chance(f.faults.writeHangRate)) {
        f.count('operation-hung');
        throw new UnavailableError(
          `DEADLINE_EXCEEDED: injected: the update operation of ${u.name} never finished`,
        );
      }
      // Cloud Run keeps an accepted update's spec when its reconciliation fails (the
      // `reconciling` field of
      // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services): the
      // new max is in place, and the operation answers an error.
      if (f.chance(f.faults.writeFailAppliedRate)) {
        f.count('operation-failed-applied');
        throw new UpstreamError(
          `INTERNAL: injected: the update operation of ${u.name} failed after the change applied`,
        );
      }
      return written;
    },
  };
  const monitoring: MonitoringPort = {
    instanceCounts: async (p, w) => {
      f.maybeFail('ListTimeSeries');
      return degrade(await inner.monitoring.instanceCounts(p, w), f);
    },
    gpuUtilization: async (p, w) => {
      f.maybeFail('ListTimeSeries');
      return degrade(await inner.monitoring.gpuUtilization(p, w), f);
    },
    servedRequests: async (p, w) => {
      f.maybeFail('ListTimeSeries');
      return degrade(await inner.monitoring.servedRequests(p, w), f);
    },
    refusedRequests: async (p, w) => {
      f.maybeFail('ListTimeSeries');
      return degrade(await inner.monitoring.refusedRequests(p, w), f);
    },
  };
  const quotas: QuotaPort = {
    gpuQuota: async (q) => {
      monitor.quotaAttempt(q);
      quotaChange();
      f.maybeFail('GetQuotaInfo');
      const answer = inner.quotas.gpuQuota(q);
      monitor.quotaRead(q, model);
      const quota = await answer;
      other(model.pools().filter((p) => samePool(p, q)));
      return quota;
    },
  };
  return { run, monitoring, quotas };
}

function degrade<T extends { points: { at: number; value: number }[] }>(
  series: T[],
  f: Faulty,
): T[] {
  const out: T[] = [];
  for (const s of series) {
    if (f.chance(f.faults.gapRate)) {
      f.count('monitoring-gap');
      continue;
    }
    if (f.chance(f.faults.staleRate)) {
      f.count('monitoring-stale');
      // Only points from more than an hour ago: the service's usage is stale.
      const cut = Math.max(...s.points.map((p) => p.at)) - 60 * 60_000;
      out.push({ ...s, points: s.points.filter((p) => p.at < cut) });
      continue;
    }
    out.push(s);
  }
  return out;
}

function faultyStore(inner: StateStore, f: Faulty): StateStore {
  const wrap =
    <A extends unknown[], R>(what: string, call: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (f.chance(f.faults.storeRate)) {
        f.count('store-unavailable');
        if (what === 'releaseLease') f.releaseFailed = true;
        throw new UnavailableError(`the state store is unavailable (injected, ${what})`);
      }
      return call(...a);
    };
  // A write the store commits and whose answer never comes back: the caller sees a timeout.
  const committed =
    <A extends unknown[], R>(what: string, call: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const answer = await wrap(what, call)(...a);
      if (f.chance(f.faults.storeLostRate)) {
        f.count('store-answer-lost');
        throw new UnavailableError(
          `DEADLINE_EXCEEDED: the state store committed ${what}, and its answer was lost (injected)`,
        );
      }
      return answer;
    };
  return {
    loadConditions: wrap('loadConditions', (p) => inner.loadConditions(p)),
    saveConditions: committed('saveConditions', (p, s, v) => inner.saveConditions(p, s, v)),
    recordRun: committed('recordRun', (p, r) => inner.recordRun(p, r)),
    listRuns: wrap('listRuns', (p, limit?: number) => inner.listRuns(p, limit)),
    acquireLease: committed('acquireLease', (p, h, t, n) => inner.acquireLease(p, h, t, n)),
    renewLease: committed('renewLease', (p, h, t, n) => inner.renewLease(p, h, t, n)),
    releaseLease: committed('releaseLease', (p, h) => inner.releaseLease(p, h)),
    governorId: wrap('governorId', () => inner.governorId()),
    readLease: wrap('readLease', (p) => inner.readLease(p)),
    breakLease: committed('breakLease', (p, seen) => inner.breakLease(p, seen)),
    putOutbox: committed('putOutbox', (p, e) => inner.putOutbox(p, e)),
    listOutbox: wrap('listOutbox', (p) => inner.listOutbox(p)),
    removeOutbox: committed('removeOutbox', (p, i, d) => inner.removeOutbox(p, i, d)),
    close: () => inner.close(),
  };
}

/** A write of the governor's the fleet applied. */
interface AppliedWrite {
  name: string;
  to: number;
}

/** Whether a published event of run `runId` describes its write to `name`. */
function announces(a: Alert, runId: string, name: string): boolean {
  if (a.runId !== runId) return false;
  if (a.type === 'apply.failed') return a.service === name;
  if (a.type !== 'rebalance.applied') return false;
  const listed = [a.details['writes'], a.details['unconfirmed']].flatMap((x) =>
    Array.isArray(x) ? (x as unknown[]) : [],
  );
  return listed.some(
    (w) => typeof w === 'object' && w !== null && (w as { service?: unknown }).service === name,
  );
}

/** What the invariant monitor needs of a scenario: its reserve, unmanaged services and floors. */
export function invariantsOf(scenario: ChaosScenario) {
  return {
    reserve: scenario.policy.reserve,
    unmanaged: scenario.unmanaged.map((name) => ({ name })),
    pools: [...scenario.floors.values()].map(({ pool, floorGpus }) => ({ ...pool, floorGpus })),
  };
}

/** One fleet: `runs` governor runs five virtual minutes apart, the last one without faults. */
export async function runChaosFleet(
  fleetSeed: number,
  runs: number,
  report: ChaosReport = emptyReport(fleetSeed),
  failRevisionReads = false,
): Promise<ChaosReport> {
  const scenario = chaosScenario(fleetSeed);
  const model = new FleetModel(validateFleet(scenario.fleet));
  const monitor = new InvariantMonitor();
  monitor.configure(invariantsOf(scenario));
  const rnd = seededRandom(fleetSeed ^ 0x5bd1e995);
  const baseStore = createMemoryStateStore();
  const sim = createSimPorts(model, { lagMs: DEFAULT_METRICS_LAG_MS });
  const seq = { n: 0 };
  const sink = new RecordingSink(rnd, (k) => {
    report.faults[k] = (report.faults[k] ?? 0) + 1;
  });
  report.fleets += 1;
  const undelivered = new Map<string, string>();
  const writesOfRuns: { run: number; runId: string; writes: AppliedWrite[] }[] = [];
  for (let i = 0; i < runs; i++) {
    const last = i === runs - 1;
    const faults = last ? { ...NO_FAULTS, otherActor: true } : drawFaults(rnd);
    const runId = `chaos-${fleetSeed}-${i}`;
    const applied: AppliedWrite[] = [];
    writesOfRuns.push({ run: i, runId, writes: applied });
    const storeFaultsBefore = report.faults['store-unavailable'] ?? 0;
    const f = new Faulty(rnd, faults, report.faults);
    f.failRevisionReads = failRevisionReads;
    sink.failRate = faults.publishRate;
    const log = memoryLogger();
    const before = sink.delivered.length;
    let runReport: RunReport | null = null;
    let failed: RunReport | null = null;
    try {
      runReport = await reconcile(
        scenario.policy,
        {
          ports: faultyPorts(sim, model, f, monitor, seq, applied),
          store: faultyStore(baseStore, f),
          sink,
          log,
          now: async () => model.now,
          // The store is this fleet's alone and its runs are minutes apart in virtual time
          // only: a lease a failed run could not give back ends in that time, as it would.
          leaseClock: () => model.now,
          sleep: async () => {},
        },
        { runId, deadlineMs: 60_000 },
      );
    } catch (e) {
      if (e instanceof RunFailedError) failed = e.report;
      else
        report.crashes.push({
          fleetSeed,
          what: `run ${i}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
        });
    }
    report.runs += 1;
    if (f.otherActed) report.otherActorRuns += 1;
    // The lease is given back at the end of every run, failed or not; only a release that never
    // reached the store leaves it held, and then it stays, to expire before the next run as it
    // would (its time to live is the run deadline and a minute; the runs are five minutes apart on
    // the lease clock). A lease an earlier run left so is not this run's to give back.
    const lease = await baseStore.readLease(CHAOS_PROJECT);
    const own = lease !== null && lease.holder.includes(`/${runId}@`);
    if (lease && own && f.releaseFailed) report.leasesLeftToExpire += 1;
    else if (lease && own) {
      report.leasesLeft.push({
        fleetSeed,
        what: `run ${i} left the lease held by ${lease.holder}${failed ? ` (the run failed: ${failed.error ?? ''})` : ''}`,
      });
      await baseStore.releaseLease(CHAOS_PROJECT, lease.holder);
    }
    // No other governor runs here, and a lease left to expire has expired by the next run: a run
    // refused the lease is locked out by nobody.
    if (runReport?.outcome === 'lease-held')
      report.leasesLeft.push({
        fleetSeed,
        what: `run ${i} was refused the lease, held by ${runReport.leaseHeld.map((h) => `${h.heldBy ?? 'an unknown holder'} until ${h.expiresAt ?? 'an unknown time'}`).join(', ')}`,
      });
    monitor.judgeRaces(model);
    // Rule 1 after the run: the run without faults, undisturbed by the other writer, leaves every
    // pool whose floors fit within its budget (unless a deploying service holds it).
    if (last && runReport && !f.otherActed && scenario.policy.limits.maxChangesPerRun >= 50) {
      for (const pool of model.pools(CHAOS_PROJECT)) {
        const members = pool.services.map((name) => ({
          project: pool.project,
          region: pool.region,
          name,
        }));
        const first = members[0];
        if (!first || members.some((k) => model.getService(k)?.deployingUntil != null)) continue;
        const load = monitor.poolLoad(model, first);
        if (!load || load.quota === null || !load.floorsFit) continue;
        report.poolsCheckedAfterRun += 1;
        if (load.used + load.reserve > load.quota)
          report.overAfterRun.push({
            fleetSeed,
            what: `run ${i} left ${poolKey(pool)} at ${load.used} GPUs + reserve ${load.reserve} over its quota ${load.quota}`,
          });
      }
    }
    const r = runReport ?? failed;
    if (!runReport || runReport.outcome === 'failed') report.failedRuns += 1;
    for (const w of r?.writes ?? []) {
      if (w.cause === 'compensated') report.compensated += 1;
      if (w.outcome === 'written') report.writes += 1;
      else {
        const bucket = w.outcome === 'skipped' ? report.skipped : report.failedWrites;
        const k = CAUSE_LABELS[w.cause];
        bucket[k] = (bucket[k] ?? 0) + 1;
      }
    }
    if (runReport && sink.delivered.length - before !== runReport.published) {
      report.alertsLost.push({
        fleetSeed,
        what: `run ${i} decided ${runReport.published} alert(s) and ${sink.delivered.length - before} reached the sink`,
      });
    }
    for (const a of failed?.undelivered ?? []) undelivered.set(a.id, `run ${i}: ${a.type}`);
    if (!runReport) {
      // A failed run says so in one structured ERROR line, whatever else was down.
      const line = log.lines.find((l) => l.severity === 'ERROR' && RUN_FAILED_FIELD in l.fields);
      if (!line)
        report.alertsLost.push({ fleetSeed, what: `run ${i} failed without its ERROR line` });
      const storeDown = (report.faults['store-unavailable'] ?? 0) > storeFaultsBefore;
      if (applied.length === 0 && sink.delivered.length === before && storeDown)
        report.failuresOnlyLogged += 1;
    }
    if (last && !runReport) {
      report.alertsLost.push({
        fleetSeed,
        what: `the run without faults failed: ${failed?.error ?? 'crashed'}`,
      });
    }
    model.advance(5 * 60_000);
  }
  // Every condition the store holds as firing was published at least once.
  const { state } = await baseStore.loadConditions(CHAOS_PROJECT);
  const firing = new Set(
    sink.delivered.filter((a) => a.status === 'firing').map((a) => a.dedupKey),
  );
  for (const key of Object.keys(state)) {
    if (!firing.has(key))
      report.alertsLost.push({
        fleetSeed,
        what: `condition ${key} is firing but was never published`,
      });
  }
  // Every event a failed run could not publish was sent by a later one (it was in the outbox).
  const sent = new Set(sink.delivered.map((a) => a.id));
  for (const [id, what] of undelivered) {
    if (!sent.has(id))
      report.alertsLost.push({ fleetSeed, what: `event ${id} (${what}) was never published` });
  }
  // Every write the governor made is described by a published event of its run.
  for (const { run, runId, writes } of writesOfRuns) {
    for (const w of writes) {
      report.writesAnnounced += 1;
      if (!sink.delivered.some((a) => announces(a, runId, w.name)))
        report.alertsLost.push({
          fleetSeed,
          what: `run ${run} set ${w.name} to ${w.to}, and no published event says so`,
        });
    }
  }
  for (const v of monitor.violations()) report.violations.push({ ...v, fleetSeed });
  report.races += monitor.races().length;
  report.writesChecked += monitor.checks;
  return report;
}

/**
 * Why a chaos run fails, one line each (none: it passed): a violation, a lost alert, a crash, a
 * lease left held or refused, a pool a quiet run left over its quota, and the other writer acting
 * in fewer runs than `otherActorRuns` asked for (the runs stop at ten times the target: a writer
 * that never acts must not pass as one that did).
 */
export function chaosProblems(r: ChaosReport, otherActorRuns = 0): string[] {
  const at = (x: { fleetSeed: number }) => `(fleet seed ${x.fleetSeed})`;
  return [
    ...r.violations.map((v) => `violation ${at(v)}: ${v.kind}: ${v.message}`),
    ...r.alertsLost.map((a) => `alert lost ${at(a)}: ${a.what}`),
    ...r.crashes.map((c) => `crash ${at(c)}: ${c.what}`),
    ...r.leasesLeft.map((l) => `lease left ${at(l)}: ${l.what}`),
    ...r.overAfterRun.map((o) => `over after a run ${at(o)}: ${o.what}`),
    ...(r.otherActorRuns < otherActorRuns
      ? [
          `another writer acted in ${r.otherActorRuns} of ${r.runs} runs, fewer than the ${otherActorRuns} asked for`,
        ]
      : []),
  ];
}

/** The report as a table for people. */
export function renderChaosReport(r: ChaosReport): string {
  const rows: [string, string][] = [
    ['seed', String(r.seed)],
    ['fleets', String(r.fleets)],
    ['governor runs', String(r.runs)],
    ['runs that failed loudly', String(r.failedRuns)],
    ['writes made', String(r.writes)],
    ['writes checked by the invariant monitor', String(r.writesChecked)],
    ['invariant violations', String(r.violations.length)],
    ['runs in which another writer acted', String(r.otherActorRuns)],
    ["raises raced by another writer in Cloud Run's window", String(r.races)],
    ['raises lowered back in the same run (compensated)', String(r.compensated)],
    ['alerts lost', String(r.alertsLost.length)],
    ['writes made, each announced by a published event', String(r.writesAnnounced)],
    [
      'failures only in the log (store down: nothing written, nothing published)',
      String(r.failuresOnlyLogged),
    ],
    ['crashes (anything but a reported failure)', String(r.crashes.length)],
    [
      'leases left held by a run that could give them back, or refused a run',
      String(r.leasesLeft.length),
    ],
    ['leases left to expire (release failed), taken by a later run', String(r.leasesLeftToExpire)],
    ['pools checked within quota after a quiet run', String(r.poolsCheckedAfterRun)],
    ['pools a quiet run left over quota', String(r.overAfterRun.length)],
  ];
  const section = (title: string, m: Record<string, number>): [string, string][] =>
    Object.entries(m)
      .sort(([, a], [, b]) => b - a)
      .map(([k, v]) => [`  ${title}: ${k}`, String(v)]);
  rows.push([
    'faults injected, by kind',
    String(Object.values(r.faults).reduce((a, b) => a + b, 0)),
  ]);
  rows.push(...section('fault', r.faults));
  rows.push([
    'writes skipped, by reason',
    String(Object.values(r.skipped).reduce((a, b) => a + b, 0)),
  ]);
  rows.push(...section('skipped', r.skipped));
  rows.push([
    'writes failed, by reason',
    String(Object.values(r.failedWrites).reduce((a, b) => a + b, 0)),
  ]);
  rows.push(...section('failed', r.failedWrites));
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v.padStart(7)}`).join('\n');
}
