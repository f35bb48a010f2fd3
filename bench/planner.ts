import { performance } from 'node:perf_hooks';
import { plan } from '../src/core/planner.js';
import { parsePolicy, type Policy } from '../src/core/policy.js';
import { policyWarnings } from '../src/core/policy-fit.js';
import { compileRules, matcherOf } from '../src/core/rules.js';
import { BENCH_AT, syntheticFleet } from './fleet.js';
import { median } from './function-host.js';

export interface PlannerRow {
  services: number;
  pools: number;
  medianMs: number;
  minMs: number;
  /**
   * Median CPU time of the process over one plan (the garbage collector's threads included): on a
   * shared, loaded machine it varies far less than the wall time, which includes waiting for a core.
   */
  cpuMedianMs: number;
  runs: number;
  changes: number;
  /** GPUs of each pool's quota when the row sets it (the large pools' row); else the fleet's own. */
  quota?: number;
}

/**
 * Times the planner alone (parsing excluded) on synthetic fleets of growing size. With `quota`,
 * every pool's quota is that many GPUs: most of the fleet's services set no max, so the burst
 * hands each pool out up to its quota (the GPUs moved, not the services, are what grows).
 */
export function benchPlanner(
  sizes: readonly [number, number][] = [
    [1_000, 10],
    [10_000, 200],
    [100_000, 2_000],
  ],
  quota: number | null = null,
): PlannerRow[] {
  const rows: PlannerRow[] = [];
  for (const [services, pools] of sizes) {
    const { snapshot, policy } = syntheticFleet(services, pools);
    if (quota !== null) for (const p of snapshot.pools) p.quota = quota;
    const runs = services >= 100_000 || quota !== null ? 5 : 15;
    plan(snapshot, policy, BENCH_AT); // warm-up: JIT and caches
    plan(snapshot, policy, BENCH_AT);
    const times: number[] = [];
    const cpu: number[] = [];
    let changes = 0;
    for (let i = 0; i < runs; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const p = plan(snapshot, policy, BENCH_AT);
      times.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      changes = p.changes.length;
    }
    times.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    rows.push({
      services,
      pools,
      medianMs: round(times[Math.floor(times.length / 2)] ?? NaN),
      minMs: round(times[0] ?? NaN),
      cpuMedianMs: round(cpu[Math.floor(cpu.length / 2)] ?? NaN),
      runs,
      changes,
      ...(quota !== null ? { quota } : {}),
    });
  }
  return rows;
}

/**
 * The growth per 10× services of the planner's rows (each row's median ÷ the one before), its
 * worst step, and why that step is what it is: the CPU medians of the same rows tell a plan whose
 * work grows faster than its services from a wall time that waited for a core.
 */
export function plannerGrowth(
  rows: readonly PlannerRow[],
  target: number,
): { steps: number[]; worst: number; why: string } {
  const steps = rows.slice(1).map((r, i) => r.medianMs / (rows[i]?.medianMs ?? NaN));
  if (steps.length === 0)
    return { steps, worst: NaN, why: 'fewer than two sizes timed: no growth to judge' };
  const worst = Math.max(...steps);
  const at = steps.indexOf(worst);
  const [a, b] = [rows[at], rows[at + 1]];
  if (!a || !b) return { steps, worst, why: '' };
  const cpu = b.cpuMedianMs / a.cpuMedianMs;
  const n = (x: number) => x.toLocaleString('en-US');
  const step = `worst from ${n(a.services)} to ${n(b.services)} services: ${a.medianMs.toFixed(2)} → ${b.medianMs.toFixed(2)} ms wall, ${worst.toFixed(1)}×`;
  return {
    steps,
    worst,
    why:
      cpu <= target
        ? `${step}; the CPU grew ${cpu.toFixed(1)}×, within the target: the wall time waited for a core (a plan of ${Math.round(a.medianMs)} ms is moved by the machine's load)`
        : `${step}; the CPU grew ${cpu.toFixed(1)}× too: the plan's work grows faster than its services (docs/performance.md)`,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export interface RuleLookupRow {
  rules: number;
  services: number;
  /** Compiling the rules and looking up every service once (wall time, best of three). */
  ms: number;
  /** Services that matched a rule: every one but those named by no rule. */
  matched: number;
}

/**
 * The rule lookup's shape, the one large organisations write: one rule per service by its exact
 * name (and project), then a glob and a label rule; and a fleet of which most services are named.
 */
function lookupShape(rules: number, services: number) {
  const project = (i: number) => `project-${i % 4}`;
  const policy = parsePolicy({
    version: 1,
    projects: ['project-0', 'project-1', 'project-2', 'project-3'],
    services: [
      ...Array.from({ length: rules }, (_, i) => ({
        match: { project: project(i), name: `svc-${i}` },
        priority: i % 3,
      })),
      { match: { name: 'batch-*' }, priority: 0 },
      { match: { labels: { tier: 'gold' } }, priority: 5 },
    ],
  });
  const fleet = Array.from({ length: services }, (_, i) => ({
    project: project(i),
    region: 'us-central1',
    accelerator: 'nvidia-l4',
    name: i % 10 === 9 ? `batch-${i}` : `svc-${i}`,
    labels: (i % 7 === 0 ? { tier: 'gold' } : {}) as Record<string, string>,
  }));
  return { policy, fleet };
}

/** Compiles the rules and resolves every service once: the services a rule matched. */
function lookUp({ policy, fleet }: ReturnType<typeof lookupShape>): number {
  const resolve = compileRules(policy, Date.parse(BENCH_AT));
  let matched = 0;
  for (const s of fleet) if (resolve(s).rule !== null) matched++;
  return matched;
}

/**
 * Times looking the policy's rules up for every service (best of five, after one untimed run that
 * compiles the code), on the lookup's shape at each size. A scan of every rule for every service
 * is quadratic (20,000 rules against 50,000 services took 636 s); the lookup by name and project
 * grows with rules + services in work, and more in time as the larger case leaves the processor's
 * caches (docs/performance.md): these rows are shown, `benchRuleScan` is the target.
 */
export function benchRuleLookup(
  sizes: readonly [number, number][] = [
    [2_000, 5_000],
    [20_000, 50_000],
  ],
): RuleLookupRow[] {
  const [first] = sizes;
  if (first) lookUp(lookupShape(...first));
  return sizes.map(([rules, services]) => {
    const shape = lookupShape(rules, services);
    let best = Infinity;
    let matched = 0;
    for (let run = 0; run < 5; run++) {
      const t0 = performance.now();
      matched = lookUp(shape);
      best = Math.min(best, performance.now() - t0);
    }
    return { rules, services, ms: round(best), matched };
  });
}

export interface RuleScanRow {
  rules: number;
  services: number;
  /** The lookup (compiling the rules included), median of alternating runs, ms. */
  lookupMs: number;
  /** Every service tested against the rules in the policy's order until one matches, the same. */
  scanMs: number;
}

/**
 * The lookup against the scan it replaced, on the same policy and fleet, alternating in one
 * process after a warm-up: the scan tests each service against every rule before its match, so
 * it does about rules ÷ 2 tests a service where the lookup does at most three; a lookup that
 * scanned again would take about as long as the scan. Both answer the same rules (checked).
 */
export function benchRuleScan(rules = 2_000, services = 5_000, runs = 5): RuleScanRow {
  const shape = lookupShape(rules, services);
  const scan = () => {
    const matchers = shape.policy.services.map((r) => matcherOf(r.match));
    let matched = 0;
    for (const s of shape.fleet) if (matchers.some((m) => m(s))) matched++;
    return matched;
  };
  const time = (f: () => number) => {
    const t0 = performance.now();
    const matched = f();
    return { ms: performance.now() - t0, matched };
  };
  const a: number[] = [];
  const b: number[] = [];
  for (let i = -1; i < runs; i++) {
    const l = time(() => lookUp(shape));
    const s = time(scan);
    if (l.matched !== s.matched)
      throw new Error(`the lookup matched ${l.matched} services, the scan ${s.matched}`);
    if (i < 0) continue; // the warm-up
    a.push(l.ms);
    b.push(s.ms);
  }
  return { rules, services, lookupMs: round(median(a)), scanMs: round(median(b)) };
}

export interface PolicyFitRow {
  rules: number;
  services: number;
  /** The policy's warnings against the fleet seen (wall time, best of three). */
  ms: number;
  /** Warnings: one per rule that governs no service. */
  warnings: number;
}

/**
 * Times the policy's fit to the fleet seen (`policyWarnings` with the fleet: what `governor plan`,
 * `status` and `check` tell of each rule that governs nothing), on the rule lookup's shape: one rule
 * per service by its exact name and project, a tenth of them naming a service not seen. Reading the
 * whole fleet again for each such rule is quadratic (20,000 rules against 50,000 services took
 * minutes); the fleet read once should make it grow with rules + services.
 */
export function benchPolicyFit(
  sizes: readonly [number, number][] = [
    [2_000, 5_000],
    [20_000, 50_000],
  ],
): PolicyFitRow[] {
  return sizes.map(([rules, services]) => {
    const project = (i: number) => `project-${i % 4}`;
    const policy = parsePolicy({
      version: 1,
      projects: ['project-0', 'project-1', 'project-2', 'project-3'],
      services: Array.from({ length: rules }, (_, i) => ({
        match: { project: project(i), name: `svc-${i}` },
      })),
    });
    const fleet = Array.from({ length: services }, (_, i) => ({
      project: project(i),
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      name: i % 10 === 9 ? `batch-${i}` : `svc-${i}`,
      labels: { team: `team-${i % 7}` },
    }));
    let best = Infinity;
    let warnings = 0;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      warnings = policyWarnings(policy, { services: fleet, pools: fleet }).length;
      best = Math.min(best, performance.now() - t0);
    }
    return { rules, services, ms: round(best), warnings };
  });
}

/**
 * The rules of `benchPolicyFit`'s shape that govern no service seen, so one warning each: rule i
 * names svc-i, which is not in the fleet when i is past it or the fleet calls that service
 * batch-i (every tenth). A fit that warned of fewer did less than the work it is timed on.
 */
export function fitWarningsExpected(rules: number, services: number): number {
  let n = 0;
  for (let i = 0; i < rules; i++) if (i >= services || i % 10 === 9) n++;
  return n;
}

export interface RankedRow {
  services: number;
  /** Median of plans with every service its own priority, ms. */
  rankedMs: number;
  /** Median of plans of the same pool and rules at five priorities, ms. */
  fiveMs: number;
}

/**
 * One pool of the bench fleet, each service named by a rule of its own: plans with every service
 * its own priority (a ranking) against plans with the same rules at five priorities, alternating
 * in one process. Work done for each priority that reads the whole pool makes the ranking
 * quadratic (5,000 ranked services took 5 s against 0.15 s).
 */
export function benchRanked(services = 5_000, runs = 7): RankedRow {
  const { snapshot } = syntheticFleet(services, 1);
  const policyOf = (priority: (i: number) => number) =>
    parsePolicy({
      version: 1,
      projects: [...new Set(snapshot.services.map((s) => s.project))],
      services: snapshot.services.map((s, i) => ({
        match: { name: s.name },
        priority: priority(i),
        ...(i % 2 === 0 ? { preempt: true } : {}),
      })),
      limits: { maxChangesPerRun: 10_000 },
    });
  const ranked = policyOf((i) => i);
  const five = policyOf((i) => i % 5);
  const time = (policy: Policy) => {
    const t0 = performance.now();
    plan(snapshot, policy, BENCH_AT);
    return performance.now() - t0;
  };
  time(ranked); // warm-up
  time(five);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(time(ranked));
    b.push(time(five));
  }
  return { services, rankedMs: round(median(a)), fiveMs: round(median(b)) };
}
