import { applyPlan } from '../core/apply.js';
import { durationMs } from '../core/duration.js';
import { plan } from '../core/planner.js';
import { observe } from '../observe/observe.js';
import type { Policy } from '../core/policy.js';
import { FleetModel, MINUTE_MS, type ServiceState } from '../emulator/model.js';
import { InputError } from '../core/errors.js';
import type { Logger } from '../log.js';
import type { AlertSink, ObservePorts } from '../ports/index.js';
import { reconcile, RunFailedError } from '../reconcile/reconcile.js';
import { Accounting, type MinuteRow } from './accounting.js';
import { openBackend } from './backend.js';
import {
  capOf,
  demandTable,
  PolicyView,
  poolAt,
  poolsOf,
  type PoolInfo,
  type SimContext,
} from './context.js';
import { checkInputSize } from './scenario.js';
import { diagnoseMinute, newDiagnosis, notePlan, type Diagnosis } from './diagnosis.js';
import { createMemoryStateStore } from '../adapters/memory/state-store.js';
import { watchWrites } from '../emulator/ports.js';
import {
  DEFAULT_LAG_MINUTES,
  DEFAULT_TICK_MINUTES,
  STRATEGIES,
  WRITES_ORACLE_MINUTES,
  EVIDENCE_ORACLE_MINUTES,
  type Headline,
  type SimulationOptions,
  type SimulationResult,
  type Strategy,
  type StrategyResult,
  type TickPool,
  type TickView,
} from './result.js';
import type { SimulationInput } from './scenario.js';
import {
  cadenceCaps,
  fleetFor,
  idealSplits,
  PriorityOracle,
  runCadenceOracle,
  runOracle,
} from './strategies.js';
import { WriteChecker } from './write-checks.js';

export { STRATEGIES } from './result.js';
export type {
  ExcessCauses,
  RefusalCauses,
  SimulationResult,
  Strategy,
  StrategyResult,
  TickView,
} from './result.js';

/**
 * The simulator: the real planner and reconcile run minute by minute on a virtual clock against
 * the emulator's fleet model, beside the baselines, all on the same demand. docs/simulation.md
 * explains the loop, the metrics and the baselines. This file is the loop; beside it:
 * context.ts (what the strategies share), strategies.ts (baselines and the oracle),
 * backend.ts (the model in memory or behind the emulator), accounting.ts (the per-minute sums),
 * write-checks.ts (the governor's writes against the rules of docs/rules.md), diagnosis.ts (refusals by cause).
 */

/**
 * Every this many simulated minutes the loop lets the event loop run. Its awaits on the in-memory
 * ports resolve at once, as microtasks, so nothing else ran until a strategy's whole simulation
 * was done: not the handler of Ctrl-C or SIGTERM (a week of 100 services kept running for minutes
 * after either). Five minutes of a 100-service fleet take a fraction of a second.
 */
const BREATHE_MINUTES = 5;
const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs every strategy on the same demand. */
export async function simulate(
  input: SimulationInput,
  policy: Policy,
  options: SimulationOptions,
): Promise<SimulationResult> {
  const ctx = createContext(input, policy, options);
  const strategies = options.strategies ?? STRATEGIES;
  const total = ctx.minutes * strategies.length;
  let done = 0;
  const progress = (what: string) => {
    done += 1;
    if (options.onProgress && (done % 30 === 0 || done === total))
      options.onProgress(done, total, what);
  };

  const results: StrategyResult[] = [];
  for (const strategy of strategies) {
    const result = await runStrategy(strategy, ctx, () => progress(strategy));
    results.push(result);
  }
  return {
    label: input.label,
    start: new Date(ctx.startMs).toISOString(),
    timezone: input.fleet.timezone,
    minutes: ctx.minutes,
    tickMinutes: ctx.tick,
    lagMinutes: ctx.lag,
    viaEmulator: options.viaEmulator ?? false,
    strategies: results,
    headline: headline(results),
  };
}

/**
 * One strategy over the run: the oracles computed (each tick's caps chosen with hindsight, or on
 * the lagged evidence, and held to the policy's priority or not), everything else played in the
 * fleet model.
 */
async function runStrategy(
  strategy: Strategy,
  ctx: SimContext,
  progress: () => void,
): Promise<StrategyResult> {
  const lagged = { minutes: EVIDENCE_ORACLE_MINUTES, lag: ctx.lag };
  const priority = () => new PriorityOracle(ctx.minutes, ctx.lag, ctx.input.fleet.idleMinutes);
  switch (strategy) {
    case 'oracle':
      return runOracle(ctx, progress);
    case 'cadence-oracle':
      return runCadenceOracle(ctx, strategy, ctx.tick, progress);
    case 'writes-oracle':
      return runCadenceOracle(ctx, strategy, WRITES_ORACLE_MINUTES, progress);
    case 'evidence-oracle':
      return runCadenceOracle(ctx, strategy, ctx.tick, progress, lagged);
    case 'policy-oracle':
      return runCadenceOracle(ctx, strategy, ctx.tick, progress, null, priority());
    case 'policy-evidence-oracle':
      return runCadenceOracle(ctx, strategy, ctx.tick, progress, lagged, priority());
    default:
      return runModel(strategy, ctx, progress);
  }
}

/** What every strategy shares: pools, demand, the oracle's split, settings, cadence. */
function createContext(
  input: SimulationInput,
  policy: Policy,
  options: SimulationOptions,
): SimContext {
  const minutes = Math.max(1, Math.round(options.hours * 60));
  checkInputSize(input, options.hours);
  const probe = new FleetModel(input.fleet, { traces: input.traces, historyMinutes: 1 });
  const pools = poolsOf(probe, input.quotaChanges);
  // Without a quota the model starts every instance while the oracles and the static splits
  // have no GPU to share: the figures would compare nothing.
  const unbounded = pools.find((p) => probe.quotaFor(p.id) === undefined);
  if (unbounded) {
    throw new InputError(
      `${input.label}: pool ${unbounded.key} has no GPU quota, and every strategy is compared within its pool's quota: give the pool a quota (a fleet file's pools, or for a replay the policy's pools)`,
      [],
    );
  }
  const want = demandTable(input, probe, minutes);
  const warmup = input.fleet.warmupMinutes;
  const view = new PolicyView(policy);
  return {
    input,
    policy,
    options,
    pools,
    want,
    wantBefore: demandTable(input, probe, warmup, -warmup),
    ideal: idealSplits(pools, want, view, probe.startMs, minutes),
    view,
    startMs: probe.startMs,
    minutes,
    tick: options.tickMinutes ?? DEFAULT_TICK_MINUTES,
    lag: options.lagMinutes ?? DEFAULT_LAG_MINUTES,
  };
}

/**
 * The share of the gap between the static equal split and a best strategy that another closes,
 * in refused GPU-minutes: (equal − other) ÷ (equal − best); null when there is no gap.
 */
export function gapClosed(equal: number, other: number, best: number): number | null {
  return equal - best > 0 ? (equal - other) / (equal - best) : null;
}

function headline(results: readonly StrategyResult[]): Headline | null {
  const get = (s: Strategy) => results.find((r) => r.strategy === s);
  const gov = get('governor');
  const equal = get('equal-split');
  const oracle = get('oracle');
  const cadence = get('cadence-oracle') ?? oracle;
  if (!gov || !equal || !oracle || !cadence) return null;
  const g = gov.totals.refusedGpuMinutes;
  const e = equal.totals.refusedGpuMinutes;
  const o = oracle.totals.refusedGpuMinutes;
  const c = cadence.totals.refusedGpuMinutes;
  return {
    gapClosed: gapClosed(e, g, c),
    gapClosedClairvoyant: gapClosed(e, g, o),
    refusedVsEqualSplit: e > 0 ? g / e : null,
    writesPerServiceHour: gov.totals.writesPerServiceHour,
    invariantViolations: gov.totals.invariantViolations ?? 0,
  };
}

const quietLogger: Logger = { log: () => undefined };

/** A strategy on a fleet model: minute by minute, the governor (if it is one) every tick. */
async function runModel(
  strategy: Strategy,
  ctx: SimContext,
  progress: () => void,
): Promise<StrategyResult> {
  const fleet = fleetFor(strategy, ctx);
  const historyMinutes =
    fleet.warmupMinutes + ctx.minutes + durationMs(ctx.policy.defaults.lookback) / MINUTE_MS + 10;
  const governed = strategy === 'governor';
  const backend = await openBackend(ctx, { fleet, governed, historyMinutes });
  let result: StrategyResult;
  try {
    const { model } = backend;
    const acc = new Accounting(ctx, model.startMs);
    const checker = new WriteChecker(ctx, model, acc);
    let writes = 0;
    const watched: ObservePorts | null = backend.ports
      ? {
          ...backend.ports,
          run: watchWrites(backend.ports.run, (u) => {
            writes += 1;
            checker.check(u);
          }),
        }
      : null;
    if (watched) checker.observeCaps();
    const governor = watched ? new Governor(ctx, watched, backend.now, model, backend.sink) : null;
    const diag =
      governed && (ctx.options.diagnose ?? false) ? newDiagnosis(cadenceCaps(ctx, ctx.tick)) : null;
    const live = governor && ctx.options.onTick ? new LiveView(ctx) : null;
    for (let t = 0; t < ctx.minutes; t++) {
      const at = model.startMs + t * MINUTE_MS;
      if (t % BREATHE_MINUTES === BREATHE_MINUTES - 1) await breathe();
      // A quota change holds from its own minute, as for the oracles and the accounting: set
      // before the model plays that minute. (Minute 0 is played when the model is built.)
      for (const pool of ctx.pools)
        for (const c of pool.changes) if (c.minute === t) model.setQuota(pool.id, c.quota);
      if (t > 0) await backend.advance(at);
      for (const pool of ctx.pools) {
        const rows = minuteRows(ctx, model, pool, t, at);
        acc.minute(pool, t, rows);
        live?.minute(pool, t, rows);
        if (diag) diagnoseMinute(diag, pool, t, rows);
      }
      if (governor && t % ctx.tick === 0) {
        checker.observeCaps();
        await governor.run(t, at, diag);
        if (live && ctx.options.onTick) {
          // The caps as the run left them: the minute's rows were taken before it.
          live.caps(model);
          await ctx.options.onTick(live.view(at, t + 1, writes, governor.failedRuns.length, false));
        }
      }
      progress();
    }
    if (live && governor && ctx.options.onTick) {
      // The end of the last minute: the refusals so far are the strategy's totals.
      const end = model.startMs + ctx.minutes * MINUTE_MS;
      await ctx.options.onTick(
        live.view(end, ctx.minutes, writes, governor.failedRuns.length, true),
      );
    }
    result = acc.result(strategy, {
      violations: checker.violations,
      violationCount: governed ? checker.count : null,
      failedRuns: governor?.failedRuns ?? [],
      ...(diag ? { causes: diag.causes } : {}),
      ...(governor?.idempotence ? { idempotence: governor.idempotence } : {}),
    });
  } catch (e) {
    // The run's own failure is the one to report, not a cleanup's that followed it.
    await backend.close().catch(() => undefined);
    throw e;
  }
  try {
    await backend.close();
  } catch (e) {
    if (!ctx.options.onCloseFailure) throw e;
    ctx.options.onCloseFailure(e);
  }
  return result;
}

/** What each member of a pool wanted and got in minute `t`, as the model recorded it. */
function minuteRows(
  ctx: SimContext,
  model: FleetModel,
  pool: PoolInfo,
  t: number,
  at: number,
): MinuteRow[] {
  return pool.members.map((member) => {
    const s = model.getService(member) as ServiceState;
    const row = model.history(s).at(-1);
    const g = member.gpus;
    const cap = capOf(model, member) * g;
    const w = ctx.want.get(member.id)?.[t] ?? 0;
    if (!row || row.at !== at)
      return { member, want: w, cap, served: 0, refused: w * g, refusedCap: 0, idle: 0 };
    return {
      member,
      want: w,
      cap,
      served: row.active * g,
      refused: (row.refusedCap + row.refusedQuota) * g,
      refusedCap: row.refusedCap * g,
      idle: row.idle * g,
    };
  });
}

/** The pools as a live view shows them: the latest minute, and the refusals so far. */
class LiveView {
  private readonly pools = new Map<string, TickPool>();

  constructor(private readonly ctx: SimContext) {
    for (const p of ctx.pools) {
      this.pools.set(p.key, {
        pool: p.key,
        ...p.id,
        quota: p.quota,
        available: p.available,
        caps: 0,
        inUse: 0,
        demand: 0,
        refusedSoFar: 0,
      });
    }
  }

  minute(pool: PoolInfo, t: number, rows: readonly MinuteRow[]): void {
    const p = this.pools.get(pool.key);
    if (!p) return;
    // The quota as it is this minute: after a cut, the one the pool has, not the one it began with.
    Object.assign(p, poolAt(pool, t));
    p.caps = rows.reduce((a, r) => a + r.cap, 0);
    p.inUse = rows.reduce((a, r) => a + r.served + r.idle, 0);
    p.demand = rows.reduce((a, r) => a + r.want * r.member.gpus, 0);
    p.refusedSoFar += rows.reduce((a, r) => a + r.refused, 0);
  }

  caps(model: FleetModel): void {
    for (const pool of this.ctx.pools) {
      const p = this.pools.get(pool.key);
      if (p) p.caps = pool.members.reduce((a, m) => a + capOf(model, m) * m.gpus, 0);
    }
  }

  view(atMs: number, minute: number, writes: number, failedRuns: number, final: boolean): TickView {
    return {
      at: new Date(atMs).toISOString(),
      minute,
      minutes: this.ctx.minutes,
      final,
      pools: [...this.pools.values()].map((p) => ({ ...p })),
      writes,
      failedRuns,
    };
  }
}

/** The real reconcile on the simulated fleet, with its state in memory across ticks. */
class Governor {
  /** Runs that failed, the first 20 kept by the result. */
  readonly failedRuns: string[] = [];
  private readonly store = createMemoryStateStore();
  readonly idempotence: { cases: number; failures: number; examples: string[] } | null;

  constructor(
    private readonly ctx: SimContext,
    private readonly ports: ObservePorts,
    private readonly now: () => Promise<number>,
    private readonly model: FleetModel,
    private readonly sink: AlertSink | null = null,
  ) {
    this.idempotence = ctx.options.checkIdempotence
      ? { cases: 0, failures: 0, examples: [] }
      : null;
  }

  /** Rule 7 on what the governor sees now: plan, apply the plan, plan again: no change. */
  private async checkIdempotence(at: number): Promise<void> {
    const check = this.idempotence;
    if (!check) return;
    const { snapshot } = await observe(this.ctx.policy, this.ports, at);
    const iso = new Date(at).toISOString();
    const first = plan(snapshot, this.ctx.policy, iso);
    if (first.deferred.length > 0) return; // a partial plan leaves work for the next run
    const again = plan(applyPlan(snapshot, first), this.ctx.policy, iso);
    check.cases += 1;
    if (again.changes.length > 0) {
      check.failures += 1;
      if (check.examples.length < 5)
        check.examples.push(
          `${iso}: ${again.changes.map((c) => `${c.name} ${c.from}→${c.to} (${c.reason})`).join('; ')}`,
        );
    }
  }

  async run(t: number, at: number, diag: Diagnosis | null): Promise<void> {
    await this.checkIdempotence(at);
    try {
      const report = await reconcile(
        this.ctx.policy,
        {
          ports: this.ports,
          store: this.store,
          sink: this.sink,
          log: quietLogger,
          now: this.now,
          wallClock: () => this.model.now,
          sleep: async () => undefined,
        },
        { runId: `sim-${t}`, deadlineMs: 240_000 },
      );
      if (diag && report.plan) notePlan(diag, report.plan.services);
    } catch (e) {
      if (!(e instanceof RunFailedError)) throw e;
      this.failedRuns.push(`${new Date(at).toISOString()}: ${e.message}`);
    }
  }
}
