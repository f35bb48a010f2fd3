import { BENCH_QUOTA_FACTORS } from '../src/simulate/scenarios.js';
import type { ExcessCauses } from '../src/simulate/simulate.js';
import {
  meanWorst,
  referenceGap,
  SCENARIO_KINDS,
  seedGap,
  SCENARIO_NAMES,
  towardWorse,
  type QualityRow,
} from './quality.js';
import type { AddFigure } from './targets.js';

/**
 * The targets of decision quality (docs/simulation.md "Bench"), each figure with its target, and a "why" when it
 * is missed, read from the governor's refusals by cause (docs/decision-quality.md "Why the governor
 * refuses").
 */

const GAP_TARGET: Partial<Record<QualityRow['kind'], number>> = { mixed: 0.9, traces: 0.8 };
const WORST_GAP_TARGET: Partial<Record<QualityRow['kind'], number>> = { mixed: 0.8 };
const TOP_PRIORITY_VS_TICK_BEST = 1.1;
const WRITES_PER_SERVICE_HOUR = 2;
const REVERSALS_PER_SERVICE_DAY = 1;
const IDEMPOTENCE_CASES = 10_000;

/**
 * Where the governor's excess over the best at the same tick went, in words: the causes of
 * `RefusalCauses.excess` (src/simulate/diagnosis.ts), largest first, mean GPU-minutes a run.
 */
function whyGap(rows: readonly QualityRow[], top = false): string {
  const sum = (f: (r: QualityRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const n = rows.length;
  const per = (x: number) => Math.round(x / n);
  const k = top ? 'refusedTop' : 'refused';
  const excess = sum((r) => (r[k].governor ?? 0) - (r[k]['cadence-oracle'] ?? 0));
  // The excess of the whole pool, or of its highest priority's services alone.
  const of = (r: QualityRow, c: keyof ExcessCauses): number =>
    top
      ? r.topServices.reduce((a, s) => a + (r.causes?.excessByService[s]?.[c] ?? 0), 0)
      : (r.causes?.excess[c] ?? 0);
  const causes: [keyof ExcessCauses, string][] = [
    [
      'headroom',
      "while a higher priority held room above its use (its headroom and peak: the policy's priority)",
    ],
    [
      'ranked',
      'while room sat under same- or lower-priority caps its evidence ranked more likely used',
    ],
    ['hysteresis', 'held by the reverse delay before its 429s were visible'],
    ['lag', 'after demand rose before any evidence reached the plan (3 min lag)'],
    ['step', 'with refusals seen but an estimate from them still short'],
    [
      'lowerInUse',
      "with every GPU held, lower priorities' instances in use (protected by rule 5, or preempted only at the next tick)",
    ],
    ['othersInUse', 'with every GPU held by busy instances of the same or higher priority'],
    [
      'idleTail',
      'with every GPU held, some idle (start-up and idle tail, which the oracle does not pay)',
    ],
  ];
  const parts = causes
    .map(([c, words]) => ({ x: per(sum((r) => of(r, c))), words }))
    .filter((c) => c.x > 0)
    .sort((a, b) => b.x - a.x)
    .map((c) => `${c.x} ${c.words}`);
  const ahead = per(sum((r) => of(r, 'ahead')));
  const noGap = rows
    .filter((r) => seedGap(r) === -Infinity)
    .map(
      (r) =>
        `seed ${r.seed} had no gap to close (the equal split refused ${Math.round(r.refused['equal-split'] ?? NaN)} GPU-min, no more than the best at the tick) and the governor refused ${Math.round(r.refused.governor ?? NaN)}; `,
    )
    .join('');
  return `${noGap}the governor refused ${per(excess)} GPU-min a run more than the best at the same tick${top ? ' to its highest priority' : ''}: ${parts.join('; ')}${ahead > 0 ? `; less ${ahead} it served where the best at the tick refused` : ''}`;
}

/** The seeds whose figure is over its target, each with its figure (rounded up), for a miss's why. */
function seedsOver(
  rows: readonly QualityRow[],
  figure: (r: QualityRow) => number,
  target: number,
  unit: string,
): string {
  return rows
    .filter((r) => figure(r) > target)
    .map((r) => `seed ${r.seed}: ${towardWorse(figure(r), 'high')} ${unit}`)
    .join('; ');
}

export function addQualityFigures(rows: readonly QualityRow[], add: AddFigure): void {
  for (const kind of SCENARIO_KINDS) {
    const ofKind = rows.filter((r) => r.kind === kind);
    if (ofKind.length === 0) continue;
    const name = SCENARIO_NAMES[kind];
    for (const factor of BENCH_QUOTA_FACTORS) {
      const rs = ofKind.filter((r) => r.quotaFactor === factor);
      if (rs.length === 0) continue;
      const f = `${name} ${factor}×, ${rs.length} seeds`;
      const gaps = rs.map((r) => seedGap(r));
      const gap = meanWorst(gaps, 'low');
      const target = GAP_TARGET[kind];
      // Shown where the policy's priority binds the best at the tick (it differs from it).
      const po = referenceGap(
        rs,
        'policy-oracle',
        'cadence-oracle',
        (r) => r.gapClosedByPolicyOracle,
      );
      const beyondPolicy =
        po !== null && target !== undefined && po.mean < target
          ? `; even with hindsight, the best at the tick that serves a higher priority's demand (headroom included) first, as the policy asks, closes ${po.mean.toFixed(3)}: the target asks for less than the policy's headroom`
          : '';
      add(
        `gap closed vs best at the tick, ${f}, mean`,
        gap.mean,
        `${towardWorse(gap.mean, 'low', 3)} (clairvoyant ${meanWorst(
          rs.map((r) => seedGap(r, 'oracle')),
          'low',
        ).mean.toFixed(2)})`,
        target === undefined ? '—' : `≥ ${target}`,
        target === undefined || gap.mean >= target,
        whyGap(rs) + beyondPolicy,
      );
      // A reference strategy's gap closed, mean (worst seed): no target, shown when it ran.
      const reference = (
        label: string,
        g: { mean: number; worst: number } | null,
        note: string,
      ) => {
        if (g !== null)
          add(label, g.mean, `${g.mean.toFixed(2)} (worst ${g.worst.toFixed(2)})`, note, true, '');
      };
      const evidence = rs
        .map((r) => r.gapClosedByEvidenceOracle)
        .filter((g): g is number => g !== null);
      reference(
        `gap closed by the best at the tick without hindsight (lagged evidence), ${f}, mean`,
        evidence.length > 0 ? meanWorst(evidence, 'low') : null,
        '— (reference, not a bound)',
      );
      const pe = referenceGap(
        rs,
        'policy-evidence-oracle',
        'evidence-oracle',
        (r) => r.gapClosedByPolicyEvidenceOracle,
      );
      reference(
        `gap closed by the same keeping the policy's priority, ${f}, mean`,
        pe,
        '— (reference, not a bound)',
      );
      reference(
        `gap closed by the best at the tick keeping the policy's priority (hindsight), ${f}, mean`,
        po,
        '— (reference: what the headroom of a higher priority costs even with hindsight)',
      );
      const worstTarget = WORST_GAP_TARGET[kind];
      add(
        `gap closed vs best at the tick, ${f}, worst seed`,
        gap.worst,
        towardWorse(gap.worst, 'low', 3),
        worstTarget === undefined ? '—' : `≥ ${worstTarget}`,
        worstTarget === undefined || gap.worst >= worstTarget,
        whyGap(rs.filter((r) => seedGap(r) === gap.worst)),
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
          whyGap(rs, true),
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
        `${towardWorse(writes.worst, 'high')} (mean ${towardWorse(writes.mean, 'high')})`,
        `≤ ${WRITES_PER_SERVICE_HOUR}`,
        writes.worst <= WRITES_PER_SERVICE_HOUR,
        seedsOver(rs, (r) => r.writesPerServiceHour, WRITES_PER_SERVICE_HOUR, 'a service an hour'),
      );
      const rev = meanWorst(
        rs.map((r) => r.reversalsPerServiceDay),
        'high',
      );
      add(
        `reversals / service / day, ${f}, worst seed`,
        rev.worst,
        `${towardWorse(rev.worst, 'high')} (mean ${towardWorse(rev.mean, 'high')})`,
        `≤ ${REVERSALS_PER_SERVICE_DAY}`,
        rev.worst <= REVERSALS_PER_SERVICE_DAY,
        seedsOver(
          rs,
          (r) => r.reversalsPerServiceDay,
          REVERSALS_PER_SERVICE_DAY,
          'a service a day',
        ) +
          '; a service lowered for a refused neighbour is raised back within 30 min when its own use returns before any 429 (its reverse delay yields to evidence of use)',
      );
      const violations = rs.reduce((a, r) => a + r.invariantViolations + r.failedRuns, 0);
      add(
        `rule violations and failed runs, ${f}`,
        violations,
        String(violations),
        '0',
        violations === 0,
        rs
          .filter((r) => r.invariantViolations + r.failedRuns > 0)
          .map(
            (r) =>
              `seed ${r.seed}: ${r.problems[0] ?? `${r.invariantViolations} violation(s), ${r.failedRuns} failed run(s)`}`,
          )
          .join('; '),
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
