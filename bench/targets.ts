/**
 * The targets `npm run bench` judges its figures against, in one place, so that the docs that
 * quote them (README "Benchmarks", docs/simulation.md "Bench", docs/performance.md) can be
 * checked against what the bench prints (test/docs/bench-targets.test.ts).
 */

/** The planner's median on 10,000 services over 200 pools, ms. */
export const TARGET_10K_MS = 50;
/** The planner's growth per 10× services, at most. */
export const TARGET_GROWTH = 12;
/**
 * The policy's fit to the fleet seen (the warnings of `plan`, `status` and `check`) ÷ looking the
 * rules up, both at 20,000 rules and 50,000 services, at most: telling why a rule governs nothing
 * reads the fleet once, not once per rule (that was 24.6×: docs/performance.md).
 */
export const TARGET_FIT_RATIO = 10;
/**
 * A scan of every rule in the policy's order for each service ÷ the rule lookup, both at 2,000
 * rules (one per service by name) and 5,000 services, at least: the lookup reads a few rules a
 * service where the scan reads about half the policy (docs/performance.md, "Looking the rules up").
 */
export const TARGET_SCAN_RATIO = 10;
/**
 * One pool of 5,000 services, each named by a rule of its own: plans with every service its own
 * priority ÷ plans with the same rules at five priorities, at most (it was 13×: docs/performance.md).
 */
export const TARGET_RANKED_RATIO = 4;
/** One run (bench/rtt.ts): the rounds of calls it waits for one after another, at most. */
export const TARGET_RTT_ROUNDS = 6;
/** The same run: its wall time ÷ the injected RTT, at most. */
export const TARGET_RTT_RATIO = 6;
/** The function's cold start, process start → listening, median, ms. */
export const TARGET_LISTENING_MS = 1_000;
/** The function's peak RSS over one run, MiB, by the fleet's number of services. */
export const TARGET_RSS_MB: Readonly<Record<number, number>> = { 1_000: 256, 10_000: 512 };

/** A figure of the bench as printed: its value, as shown, its target, and why a missed one was. */
export interface Figure {
  figure: string;
  value: number;
  shown: string;
  target: string;
  met: boolean;
  /** Why a missed target was missed. */
  why?: string;
}

/**
 * Adds a figure. `why`, should `met` be false: every figure with a target says it (README
 * "Benchmarks"); it is kept only on a missed one (empty for a figure with no target).
 */
export type AddFigure = (
  figure: string,
  value: number,
  shown: string,
  target: string,
  met: boolean,
  why: string,
) => void;

/** {@link AddFigure} to `figures`. */
export function figureAdder(figures: Figure[]): AddFigure {
  return (figure, value, shown, target, met, why) => {
    figures.push({ figure, value, shown, target, met, ...(why && !met ? { why } : {}) });
  };
}
