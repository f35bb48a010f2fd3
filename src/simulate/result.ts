import type { PublishedMessage } from '../emulator/pubsub-store.js';

/**
 * What the simulator is asked (the options), the strategies it compares, and what it returns: per strategy, metrics per pool
 * and per service, the per-minute series for the report, and for the governor the violations
 * and, when asked, its refusals by cause. docs/simulation.md defines every metric.
 */

export const STRATEGIES = [
  'governor',
  'fleet-caps',
  'equal-split',
  'peak-proportional',
  'over-commit',
  'oracle',
  'cadence-oracle',
  // The same held to the policy's priority, headroom included (docs/decision-quality.md "What the
  // policy's priority costs"): beside the governor, what the policy's headroom costs.
  'policy-oracle',
  'writes-oracle',
] as const;
/**
 * Strategies run only when asked (`strategies`), not in the default comparison: the same greedy
 * as the cadence-limited oracle, fed only what the governor could see (docs/decision-quality.md
 * "Where the gap is"), free of the policy's headroom or held to it.
 */
export const EXTRA_STRATEGIES = ['evidence-oracle', 'policy-evidence-oracle'] as const;
export type Strategy = (typeof STRATEGIES)[number] | (typeof EXTRA_STRATEGIES)[number];

export const STRATEGY_LABELS: Record<Strategy, string> = {
  governor: 'governor',
  'fleet-caps': "fleet's static caps",
  'equal-split': 'static equal split',
  'peak-proportional': 'static, proportional to peak',
  'over-commit': 'over-commit (all at quota)',
  oracle: 'clairvoyant oracle',
  'cadence-oracle': 'best at the same tick (hindsight)',
  'writes-oracle': 'best at ≤ 2 writes/svc/h (hindsight)',
  'evidence-oracle': 'best at the same tick on lagged evidence (no hindsight)',
  'policy-oracle': 'best at the same tick, policy kept (hindsight)',
  'policy-evidence-oracle': 'best at the same tick, policy kept, on lagged evidence (no hindsight)',
};

/** Minutes of lagged evidence the evidence oracle splits each tick on. */
export const EVIDENCE_ORACLE_MINUTES = 10;

/** The writes-limited oracle re-splits every this many minutes: at most 2 writes a service an hour. */
export const WRITES_ORACLE_MINUTES = 30;

/**
 * Virtual minutes between governor runs when not told (`--tick`, the demo's `--every`): the
 * Terraform module's default schedule, every 5 minutes (`schedule` in terraform/variables.tf).
 */
export const DEFAULT_TICK_MINUTES = 5;

/**
 * Minutes before a Monitoring point is visible when not told (`--lag`): the emulator's
 * `DEFAULT_METRICS_LAG_MS` (src/emulator/model.ts, not loaded for the command line's
 * help; test/simulate/defaults.test.ts holds the two equal).
 */
export const DEFAULT_LAG_MINUTES = 3;

export interface SimulationOptions {
  hours: number;
  /** Virtual minutes between governor runs (Cloud Scheduler's cadence): {@link DEFAULT_TICK_MINUTES}. */
  tickMinutes?: number;
  /** Minutes before a Monitoring point is visible: {@link DEFAULT_LAG_MINUTES}. */
  lagMinutes?: number;
  strategies?: readonly Strategy[];
  /** Run the governor through the gRPC emulator and Google's clients instead of in-memory ports. */
  viaEmulator?: boolean;
  /** Called as virtual minutes are done, across all strategies. */
  onProgress?: (done: number, total: number, what: string) => void;
  /** Keeps per-minute series for the report (default true). */
  series?: boolean;
  /** Governor only: sorts its refused GPU-minutes by cause (`causes`; default false). */
  diagnose?: boolean;
  /**
   * Governor only: at every tick, plans the observed snapshot, applies the plan to it (same
   * usage, new caps) and plans again, which must change nothing (rule 7; `idempotence`).
   */
  checkIdempotence?: boolean;
  /**
   * Governor only: called after each of its runs with the pools as they stand (a live view),
   * and once more at the end of the last minute (`final`). The next minute waits for the
   * promise it returns.
   */
  onTick?: (view: TickView) => void | Promise<void>;
  /**
   * Governor through the emulator only: the governor publishes its alerts to the policy's topic
   * on the emulator's Pub/Sub (the topic must be in the fleet's `topics`), and each message, once
   * recorded, is given here as a subscriber would receive it.
   */
  onPublish?: (message: PublishedMessage) => void;
  /**
   * Governor through the emulator only: called when the emulator or Google's clients fail to
   * close after the strategy finished (every cleanup still ran); its result stands. Absent: that
   * failure is thrown. A strategy that failed reports its own failure, not the cleanup's.
   */
  onCloseFailure?: (error: unknown) => void;
}

/** One pool after a governor run: this minute's figures (GPUs) and the refusals so far. */
export interface TickPool {
  pool: string;
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
  quota: number;
  /** What its services may use: the quota less worker pools and jobs. */
  available: number;
  caps: number;
  inUse: number;
  demand: number;
  /** GPU-minutes refused since the start. */
  refusedSoFar: number;
}

export interface TickView {
  /** The virtual time of the run (ISO). */
  at: string;
  /** Minutes done, and in all. */
  minute: number;
  minutes: number;
  /** The end of the simulation: every minute played, the refusals so far are the totals. */
  final: boolean;
  pools: TickPool[];
  /** Caps the governor has written so far. */
  writes: number;
  /** Runs that failed so far. */
  failedRuns: number;
}

/** The GPU-minutes a service and its pool add up, minute by minute. */
export interface GpuMinutes {
  demandGpuMinutes: number;
  refusedGpuMinutes: number;
  /** Of which: above the service's cap. */
  refusedCapGpuMinutes: number;
  /** Of which: the pool had no free GPU. */
  refusedQuotaGpuMinutes: number;
  idleGpuMinutes: number;
}

export interface ServiceMetrics extends GpuMinutes {
  pool: string;
  name: string;
  /** False for a service the policy leaves alone (`managed: false`, or no rule matches). */
  managed: boolean;
  priority: number;
  weight: number;
  writes: number;
  /** Caps raised back within 30 minutes of being lowered, with no refusal at the lower cap. */
  reversals: number;
}

export interface PoolMetrics extends GpuMinutes {
  pool: string;
  quota: number;
  available: number;
  services: number;
  writes: number;
  writesPerServiceHour: number;
  /** Minutes in which the pool's demand exceeded what it has. */
  scarceMinutes: number;
  /** Mean over scarce minutes of the share of the pool served differently from the oracle's weighted split (0–1). */
  shareError: number | null;
  /** Minutes in which a service was refused while a lower-priority one held cap it did not use. */
  priorityInversions: number;
  /** Minutes in which the pool's caps summed above what it has (over-commit by design). */
  capsOverQuotaMinutes: number;
  /** Governor only: rules of docs/rules.md broken at a write (null for baselines). */
  invariantViolations: number | null;
}

export interface PoolSeries {
  pool: string;
  /** The quota at the start; `quotaChanges` says how it changed. */
  quota: number;
  available: number;
  /** Quota changes during the run (a scenario's quotaCut), in minute order: from `minute` on. */
  quotaChanges: { minute: number; quota: number }[];
  services: string[];
  /** Per minute, GPUs wanted by the pool's services. */
  demand: number[];
  /** Per service, per minute: the cap in GPUs (for the oracle: its split). */
  caps: Record<string, number[]>;
  /** Per minute: GPUs refused in the pool. */
  refused: number[];
}

/**
 * Governor only, with `diagnose`: each refused GPU-minute by cause (docs/decision-quality.md
 * "Why the governor refuses"). Every refusal of a capped strategy is at a cap (the caps sum within
 * the pool), so the question is where the GPUs the refused service could not have were.
 */
export interface RefusalCauses {
  /** Refused while every GPU of the pool was held by a busy instance: no cap could have helped. */
  poolBusy: number;
  /** Refused while the pool's GPUs were all held, some by idle instances (their idle tail). */
  poolIdleHeld: number;
  /** Refused at the cap while the pool had free GPUs, split by the refused service's last plan: */
  free: {
    /** The cap was below the service's own demand estimate (the pool was scarce by the estimates). */
    shortOfDemand: number;
    /** The cap met the estimate but demand rose past it since (lag, lookback, headroom too small). */
    aboveEstimate: number;
  };
  /** Where the free GPUs sat, in the same minutes (GPU-minutes, at most the refusal): */
  freeRoomAt: {
    /** Cap room of others given as burst room in their last plan. */
    burst: number;
    /** Cap room of others kept by the scale-down delay. */
    sticky: number;
    /** Cap room of others within their own demand estimate (headroom, peak). */
    demand: number;
    /** GPUs no cap covered (the caps summed below the pool). */
    uncapped: number;
  };
  /** Ticks whose plan left some service short of its demand estimate (scarce), and all ticks. */
  scarceTicks: number;
  ticks: number;
  /**
   * The governor's refusals above the best at the same tick's, per service and minute (positive
   * part), by cause; in total and per service name. `ahead` is the other way round: GPU-minutes
   * the best at the tick refused and the governor served (its headroom or burst room guessed a
   * spike the tick's split did not cover).
   */
  excess: ExcessCauses;
  excessByService: Record<string, ExcessCauses>;
}

/** The governor's excess over the best at the same tick, by cause (diagnosis.ts). */
export interface ExcessCauses {
  /** Free GPUs; its plan met its estimate and saw no refusal: demand rose before the evidence. */
  lag: number;
  /** Free GPUs; its plan saw refusals and met the estimate from them: the step was too small. */
  step: number;
  /** Free GPUs; its plan left it short, held by the reverse delay (hysteresis). */
  hysteresis: number;
  /** Free GPUs; its plan left it short while a higher priority held room above its use. */
  headroom: number;
  /** Free GPUs; its plan left it short, the room under same- or lower-priority caps. */
  ranked: number;
  /** Every GPU held; a lower priority held more than the best at the tick gave it. */
  lowerInUse: number;
  /** Every GPU held; others of the same or higher priority held them, busy. */
  othersInUse: number;
  /** Every GPU held, some by idle instances (idle tail after a spike). */
  idleTail: number;
  /** The best at the tick refused, the governor served. */
  ahead: number;
}

export function noExcess(): ExcessCauses {
  return {
    lag: 0,
    step: 0,
    hysteresis: 0,
    headroom: 0,
    ranked: 0,
    lowerInUse: 0,
    othersInUse: 0,
    idleTail: 0,
    ahead: 0,
  };
}

export interface StrategyResult {
  strategy: Strategy;
  label: string;
  pools: PoolMetrics[];
  services: ServiceMetrics[];
  totals: {
    refusedGpuMinutes: number;
    idleGpuMinutes: number;
    writesPerServiceHour: number;
    reversalsPerServiceDay: number;
    invariantViolations: number | null;
    /** Governor runs that failed, every one (0 for a baseline). */
    failedRuns: number;
  };
  /** First few violations, in words. */
  violations: string[];
  /** The first 20 governor runs that failed (and why): `totals.failedRuns` counts them all. */
  failedRuns: string[];
  series: PoolSeries[];
  /** Governor only, with `diagnose`. */
  causes?: RefusalCauses;
  /** Governor only, with `checkIdempotence`: snapshots checked, and those whose re-plan changed something. */
  idempotence?: { cases: number; failures: number; examples: string[] };
}

export interface Headline {
  /**
   * (static equal split − governor) ÷ (static equal split − the cadence-limited oracle), refused
   * GPU-minutes: the share of the gap any governor at the same tick could close; null without a
   * gap. Against the clairvoyant oracle when the cadence-limited one was not run.
   */
  gapClosed: number | null;
  /** The same against the clairvoyant oracle (re-split every minute): reported beside it. */
  gapClosedClairvoyant: number | null;
  /** Governor ÷ static equal split, refused GPU-minutes; null when the split refuses nothing. */
  refusedVsEqualSplit: number | null;
  writesPerServiceHour: number;
  invariantViolations: number;
}

export interface SimulationResult {
  label: string;
  start: string;
  /** IANA time zone the report shows times in (the scenario's or fleet's `timezone`). */
  timezone: string;
  minutes: number;
  tickMinutes: number;
  lagMinutes: number;
  viaEmulator: boolean;
  strategies: StrategyResult[];
  headline: Headline | null;
}
