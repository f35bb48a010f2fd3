import { parsePolicy, type PolicyInput } from '../src/core/policy.js';
import { buildScenario, parseScenario, type ScenarioInput } from '../src/simulate/scenario.js';
import {
  BENCH_QUOTA_FACTORS,
  BENCH_SEEDS,
  benchPolicy,
  mixedFleetScenario,
  noisyNeighbourPolicy,
  noisyNeighbourScenario,
  quotaCutScenario,
  TRACE_DIR,
  tracesAloneScenario,
} from '../src/simulate/scenarios.js';
import {
  gapClosed,
  simulate,
  type RefusalCauses,
  type SimulationResult,
  type Strategy,
} from '../src/simulate/simulate.js';

/**
 * Decision quality (docs/rules.md "How decisions are
 * judged"): every scenario at a quota of 0.6, 0.8 and 1.0 × its aggregate peak, over the bench
 * seeds, each against the baselines on the same demand. The scenarios' parameters live in
 * src/simulate/scenarios.ts and were fixed before the planner was tuned.
 *
 * Subsets, for a quicker loop: BENCH_SCENARIOS=mixed,traces,noisy,cut and BENCH_SEEDS=7,11 (both
 * comma-separated; default every scenario and every bench seed).
 */

export const SCENARIO_KINDS = ['mixed', 'traces', 'noisy', 'cut'] as const;
export type ScenarioKind = (typeof SCENARIO_KINDS)[number];

export const SCENARIO_NAMES: Record<ScenarioKind, string> = {
  mixed: 'mixed fleet',
  traces: 'traces alone',
  noisy: 'noisy neighbour',
  cut: 'quota cut at midday',
};

const BUILD: Record<ScenarioKind, (f: number, seed: number) => ScenarioInput> = {
  mixed: (f, seed) => mixedFleetScenario(f, 24, seed),
  traces: (f, seed) => tracesAloneScenario(f, 6, seed),
  noisy: (f, seed) => noisyNeighbourScenario(f, 24, seed),
  cut: (f, seed) => quotaCutScenario(f, 24, seed),
};

const POLICY: Record<ScenarioKind, () => PolicyInput> = {
  mixed: () => benchPolicy(),
  traces: () => benchPolicy(),
  noisy: () => noisyNeighbourPolicy(),
  cut: () => benchPolicy(),
};

const STRATEGIES: Strategy[] = [
  'governor',
  'equal-split',
  'over-commit',
  'oracle',
  'cadence-oracle',
  'writes-oracle',
  'evidence-oracle',
  'policy-oracle',
  'policy-evidence-oracle',
];

export interface QualityRow {
  kind: ScenarioKind;
  scenario: string;
  quotaFactor: number;
  seed: number;
  quota: number;
  hours: number;
  /** Refused GPU-minutes per strategy. */
  refused: Partial<Record<Strategy, number>>;
  /** Refused GPU-minutes of the highest-priority services, per strategy. */
  refusedTop: Partial<Record<Strategy, number>>;
  topPriority: number;
  /** The services at the highest priority. */
  topServices: string[];
  gapClosed: number | null;
  gapClosedClairvoyant: number | null;
  /**
   * The gap the same greedy as the best at the tick closes on the governor's evidence alone (the
   * last minutes, 3 min late: no hindsight; no start-up, idle tail or calm either).
   */
  gapClosedByEvidenceOracle: number | null;
  /**
   * The gap the best at the tick closes when it keeps the policy's priority as the governor does
   * (a higher priority's demand, headroom included, served first; hindsight kept).
   */
  gapClosedByPolicyOracle: number | null;
  /** The same without hindsight: the evidence-oracle held to the policy's priority. */
  gapClosedByPolicyEvidenceOracle: number | null;
  writesPerServiceHour: number;
  reversalsPerServiceDay: number;
  invariantViolations: number;
  failedRuns: number;
  /** The governor's first violations and failed runs, in words (what a miss of them says). */
  problems: string[];
  idempotence: { cases: number; failures: number; examples: string[] };
  /**
   * The governor's refused GPU-minutes by cause (docs/decision-quality.md "Why the governor
   * refuses").
   */
  causes: RefusalCauses | null;
}

/**
 * A comma-separated subset from the environment, every one of `all` when unset or empty; an entry
 * not understood, a list of none and an entry twice are refused (they would run nothing, or count
 * a seed as two).
 */
export function listEnv<T>(
  env: NodeJS.ProcessEnv,
  name: string,
  what: string,
  all: readonly T[],
  parse: (s: string) => T,
): T[] {
  const raw = env[name];
  if (!raw) return [...all];
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error(`${name}: no ${what} in "${raw}"`);
  const twice = items.find((s, i) => items.indexOf(s) !== i);
  if (twice !== undefined) throw new Error(`${name}: ${twice} twice`);
  return items.map(parse);
}

/** The scenarios and seeds `npm run bench` runs: BENCH_SCENARIOS and BENCH_SEEDS, or every one. */
export function qualitySubset(env: NodeJS.ProcessEnv = process.env): {
  kinds: ScenarioKind[];
  seeds: number[];
} {
  const kinds = listEnv(env, 'BENCH_SCENARIOS', 'scenario', SCENARIO_KINDS, (s) => {
    if (!(SCENARIO_KINDS as readonly string[]).includes(s))
      throw new Error(`BENCH_SCENARIOS: unknown scenario ${s} (${SCENARIO_KINDS.join(', ')})`);
    return s as ScenarioKind;
  });
  const seeds = listEnv(env, 'BENCH_SEEDS', 'seed', BENCH_SEEDS, (s) => {
    if (!/^-?\d+$/.test(s) || !Number.isSafeInteger(Number(s)))
      throw new Error(`BENCH_SEEDS: ${s} is not a whole number`);
    return Number(s);
  });
  return { kinds, seeds };
}

export async function benchQuality(
  onRow: (r: QualityRow) => void = () => undefined,
  { kinds, seeds } = qualitySubset(),
): Promise<QualityRow[]> {
  const rows: QualityRow[] = [];
  for (const kind of kinds) {
    const policy = parsePolicy(POLICY[kind]());
    for (const factor of BENCH_QUOTA_FACTORS) {
      for (const seed of seeds) {
        const name = `${SCENARIO_NAMES[kind]}, quota ${factor}× peak, seed ${seed}`;
        const parsed = parseScenario(BUILD[kind](factor, seed));
        const input = await buildScenario(parsed, TRACE_DIR, name);
        const result: SimulationResult = await simulate(input, policy, {
          hours: parsed.hours,
          tickMinutes: 5,
          lagMinutes: 3,
          series: false,
          diagnose: true,
          checkIdempotence: true,
          strategies: STRATEGIES,
        });
        const row = toRow(kind, factor, seed, parsed.hours, result);
        rows.push(row);
        onRow(row);
      }
    }
  }
  return rows;
}

function toRow(
  kind: ScenarioKind,
  quotaFactor: number,
  seed: number,
  hours: number,
  result: SimulationResult,
): QualityRow {
  const gov = result.strategies.find((s) => s.strategy === 'governor');
  const topPriority = Math.max(...(gov?.services ?? []).map((s) => s.priority));
  return {
    kind,
    scenario: SCENARIO_NAMES[kind],
    quotaFactor,
    seed,
    quota: gov?.pools[0]?.quota ?? 0,
    hours,
    refused: Object.fromEntries(
      result.strategies.map((s) => [s.strategy, s.totals.refusedGpuMinutes]),
    ),
    refusedTop: Object.fromEntries(
      result.strategies.map((s) => [
        s.strategy,
        s.services
          .filter((x) => x.priority === topPriority)
          .reduce((a, x) => a + x.refusedGpuMinutes, 0),
      ]),
    ),
    topPriority,
    topServices: (gov?.services ?? []).filter((s) => s.priority === topPriority).map((s) => s.name),
    gapClosed: result.headline?.gapClosed ?? null,
    gapClosedClairvoyant: result.headline?.gapClosedClairvoyant ?? null,
    gapClosedByEvidenceOracle: gapClosedBy(result, 'evidence-oracle'),
    gapClosedByPolicyOracle: gapClosedBy(result, 'policy-oracle'),
    gapClosedByPolicyEvidenceOracle: gapClosedBy(result, 'policy-evidence-oracle'),
    writesPerServiceHour: result.headline?.writesPerServiceHour ?? 0,
    reversalsPerServiceDay: gov?.totals.reversalsPerServiceDay ?? 0,
    invariantViolations: result.headline?.invariantViolations ?? 0,
    failedRuns: gov?.totals.failedRuns ?? 0,
    problems: [...(gov?.violations ?? []), ...(gov?.failedRuns ?? [])].slice(0, 3),
    idempotence: gov?.idempotence ?? { cases: 0, failures: 0, examples: [] },
    causes: gov?.causes ?? null,
  };
}

/** The gap a strategy closes against the best at the tick, or null without it or a gap. */
function gapClosedBy(result: SimulationResult, strategy: Strategy): number | null {
  const refused = (k: Strategy) =>
    result.strategies.find((s) => s.strategy === k)?.totals.refusedGpuMinutes;
  const e = refused('equal-split');
  const c = refused('cadence-oracle');
  const v = refused(strategy);
  return e === undefined || c === undefined || v === undefined ? null : gapClosed(e, v, c);
}

/**
 * A reference's gap closed over seeds, mean and worst: where it differs from `same` in some run
 * (a policy-kept oracle from the one it holds to the policy); null where it never does, or was
 * not run.
 */
export function referenceGap(
  rows: readonly QualityRow[],
  reference: Strategy,
  same: Strategy,
  gap: (r: QualityRow) => number | null,
): { mean: number; worst: number } | null {
  const xs = rows.map(gap).filter((g): g is number => g !== null);
  if (xs.length === 0 || rows.every((r) => r.refused[reference] === r.refused[same])) return null;
  return meanWorst(xs, 'low');
}

/**
 * A run's gap closed by the governor against the best at the tick (or the clairvoyant oracle), for
 * the figures: where the equal split refused no more than that best there is no gap to close, and
 * the run counts as closing it in full only if the governor refused no more than the equal split;
 * refusing more is worse than a split that was already the best, −∞, a miss and never a pass.
 */
export function seedGap(r: QualityRow, best: 'cadence-oracle' | 'oracle' = 'cadence-oracle') {
  const g = best === 'oracle' ? r.gapClosedClairvoyant : r.gapClosed;
  if (g !== null) return g;
  return (r.refused.governor ?? NaN) <= (r.refused['equal-split'] ?? NaN) ? 1 : -Infinity;
}

/**
 * A figure to `digits` decimals, rounded toward its worse side: down for a gap closed (`low` is
 * worse), up for writes and reversals, so a figure just short of its target (a gap of 0.796
 * beside ≥ 0.8) never prints as one that meets it. The `1e-9` keeps a figure already at that
 * many decimals (0.29, stored as 0.28999…) where it is.
 */
export function towardWorse(x: number, worse: 'low' | 'high', digits = 2): string {
  const k = 10 ** digits;
  const r = worse === 'low' ? Math.floor(x * k + 1e-9) : Math.ceil(x * k - 1e-9);
  return (r / k).toFixed(digits);
}

/** Mean and worst of a figure over seeds. */
export function meanWorst(
  xs: readonly number[],
  worse: 'low' | 'high',
): { mean: number; worst: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const worst = worse === 'low' ? Math.min(...xs) : Math.max(...xs);
  return { mean, worst };
}
