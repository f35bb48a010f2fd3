import { BENCH_QUOTA_FACTORS } from '../src/simulate/scenarios.js';
import { meanWorst, SCENARIO_KINDS, SCENARIO_NAMES, type QualityRow } from './quality.js';

/**
 * The targets of decision quality (docs/simulation.md "Bench"), each figure with its target, and a "why" when it
 * is missed, read from the governor's refusals by cause (docs/simulation.md "Why the governor
 * refuses").
 */

type Add = (
  figure: string,
  value: number,
  shown: string,
  target: string,
  met: boolean,
  why?: string,
) => void;

const GAP_TARGET: Partial<Record<QualityRow['kind'], number>> = { mixed: 0.9, traces: 0.8 };
const WORST_GAP_TARGET: Partial<Record<QualityRow['kind'], number>> = { mixed: 0.8 };
const TOP_PRIORITY_VS_TICK_BEST = 1.1;
const WRITES_PER_SERVICE_HOUR = 2;
const REVERSALS_PER_SERVICE_DAY = 1;
const IDEMPOTENCE_CASES = 10_000;

/** Where the governor's excess over the best at the same tick went, in words. */
function whyGap(rows: readonly QualityRow[]): string {
  const sum = (f: (r: QualityRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const excess = sum((r) => (r.refused.governor ?? 0) - (r.refused['cadence-oracle'] ?? 0));
  const busy = sum((r) => (r.causes ? r.causes.poolBusy + r.causes.poolIdleHeld : 0));
  const short = sum((r) => r.causes?.free.shortOfDemand ?? 0);
  const above = sum((r) => r.causes?.free.aboveEstimate ?? 0);
  const n = rows.length;
  const per = (x: number) => Math.round(x / n);
  return `the governor refused ${per(excess)} GPU-min a run more than the best at the same tick; of its refusals, ${per(busy)} came with every GPU held (start-up and idle tail, which the computed oracle does not pay), ${per(short)} at caps below its own estimate while GPUs sat under others' caps (what its evidence, 3 min late, did not justify moving), ${per(above)} after demand rose past an estimate it met (lag and headroom)`;
}

export function addQualityFigures(rows: readonly QualityRow[], add: Add): void {
  for (const kind of SCENARIO_KINDS) {
    const ofKind = rows.filter((r) => r.kind === kind);
    if (ofKind.length === 0) continue;
    const name = SCENARIO_NAMES[kind];
    for (const factor of BENCH_QUOTA_FACTORS) {
      const rs = ofKind.filter((r) => r.quotaFactor === factor);
      if (rs.length === 0) continue;
      const f = `${name} ${factor}×, ${rs.length} seeds`;
      const gaps = rs.map((r) => r.gapClosed ?? 1);
      const gap = meanWorst(gaps, 'low');
      const target = GAP_TARGET[kind];
      add(
        `gap closed vs best at the tick, ${f}, mean`,
        gap.mean,
        `${gap.mean.toFixed(2)} (clairvoyant ${meanWorst(
          rs.map((r) => r.gapClosedClairvoyant ?? 1),
          'low',
        ).mean.toFixed(2)})`,
        target === undefined ? '—' : `≥ ${target}`,
        target === undefined || gap.mean >= target,
        whyGap(rs),
      );
      const evidence = rs
        .map((r) => r.gapClosedByEvidenceOracle)
        .filter((g): g is number => g !== null);
      if (evidence.length > 0) {
        const ev = meanWorst(evidence, 'low');
        add(
          `gap closed by the best at the tick without hindsight (lagged evidence), ${f}, mean`,
          ev.mean,
          `${ev.mean.toFixed(2)} (worst ${ev.worst.toFixed(2)})`,
          '— (bound)',
          true,
        );
      }
      const worstTarget = WORST_GAP_TARGET[kind];
      add(
        `gap closed vs best at the tick, ${f}, worst seed`,
        gap.worst,
        gap.worst.toFixed(2),
        worstTarget === undefined ? '—' : `≥ ${worstTarget}`,
        worstTarget === undefined || gap.worst >= worstTarget,
        whyGap(rs.filter((r) => (r.gapClosed ?? 1) === gap.worst)),
      );
      if (kind === 'noisy') {
        const top = (k: 'governor' | 'cadence-oracle' | 'over-commit') =>
          rs.reduce((a, r) => a + (r.refusedTop[k] ?? 0), 0) / rs.length;
        const gov = top('governor');
        const best = top('cadence-oracle');
        const over = top('over-commit');
        add(
          `highest priority refused GPU-min, ${f}, mean: governor ÷ best at the tick`,
          best > 0 ? gov / best : gov === 0 ? 0 : Infinity,
          `${gov.toFixed(0)} ÷ ${best.toFixed(0)}`,
          `≤ ${TOP_PRIORITY_VS_TICK_BEST}×`,
          gov <= TOP_PRIORITY_VS_TICK_BEST * best + 1e-9,
          `the latency services are refused while their demand rises between ticks and while instances start (the computed oracle pays neither); the batch backlog holds the rest`,
        );
        add(
          `highest priority refused GPU-min, ${f}, mean: governor vs over-commit`,
          gov,
          `${gov.toFixed(0)} vs ${over.toFixed(0)}`,
          '< over-commit',
          gov < over || (gov === 0 && over === 0),
          `over-commit lets every latency service burst to the whole quota at once; the governor keeps the quota contract`,
        );
      }
      const writes = meanWorst(
        rs.map((r) => r.writesPerServiceHour),
        'high',
      );
      add(
        `writes / service / hour, ${f}, worst seed`,
        writes.worst,
        `${writes.worst.toFixed(2)} (mean ${writes.mean.toFixed(2)})`,
        `≤ ${WRITES_PER_SERVICE_HOUR}`,
        writes.worst <= WRITES_PER_SERVICE_HOUR,
      );
      const rev = meanWorst(
        rs.map((r) => r.reversalsPerServiceDay),
        'high',
      );
      add(
        `reversals / service / day, ${f}, worst seed`,
        rev.worst,
        `${rev.worst.toFixed(2)} (mean ${rev.mean.toFixed(2)})`,
        `≤ ${REVERSALS_PER_SERVICE_DAY}`,
        rev.worst <= REVERSALS_PER_SERVICE_DAY,
        'a service lowered for a refused neighbour is raised back within 30 min when its own use returns before any 429 (its reverse delay yields to evidence of use)',
      );
      const violations = rs.reduce((a, r) => a + r.invariantViolations + r.failedRuns, 0);
      add(
        `rule violations and failed runs, ${f}`,
        violations,
        String(violations),
        '0',
        violations === 0,
      );
    }
  }
  const cases = rows.reduce((a, r) => a + r.idempotence.cases, 0);
  const failures = rows.reduce((a, r) => a + r.idempotence.failures, 0);
  if (rows.length > 0)
    add(
      'idempotence: plan, apply, plan again changes nothing (snapshots of every tick)',
      failures,
      `${cases - failures} of ${cases}`,
      `0 fail, ≥ ${IDEMPOTENCE_CASES.toLocaleString('en-US')}`,
      failures === 0 && cases >= IDEMPOTENCE_CASES,
      failures > 0
        ? (rows.find((r) => r.idempotence.failures > 0)?.idempotence.examples[0] ?? '')
        : `only ${cases} ticks in this subset`,
    );
}
