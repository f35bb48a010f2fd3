import { readFile } from 'node:fs/promises';
import { BENCH_QUOTA_FACTORS } from '../src/simulate/scenarios.js';
import type { ExcessCauses } from '../src/simulate/simulate.js';
import {
  meanWorst,
  referenceGap,
  SCENARIO_KINDS,
  SCENARIO_NAMES,
  seedGap,
  towardWorse,
  type QualityRow,
} from './quality.js';

/**
 * `node dist/bench/quality-table.js [bench/results-quality.json]`: the decision-quality rows of a
 * bench run as Markdown tables (docs/decision-quality.md "Where the gap is"): per scenario and
 * quota the gap closed (mean and worst seed), writes, reversals and violations; then where the
 * governor's refusals above the best at the same tick's come from, by cause and by service
 * (GPU-minutes, mean over seeds).
 */

const CAUSES: { key: keyof ExcessCauses; label: string }[] = [
  { key: 'lag', label: 'lag' },
  { key: 'step', label: 'step' },
  { key: 'hysteresis', label: 'hyst.' },
  { key: 'headroom', label: 'higher prio. headroom' },
  { key: 'ranked', label: 'ranked elsewhere' },
  { key: 'lowerInUse', label: 'lower prio. in use' },
  { key: 'othersInUse', label: 'others in use' },
  { key: 'idleTail', label: 'idle tail' },
  { key: 'ahead', label: 'ahead' },
];

const down2 = (x: number) => towardWorse(x, 'low');
const up2 = (x: number) => towardWorse(x, 'high');
const r0 = (x: number) => String(Math.round(x));

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** The policy-keeping best at the tick's gap closed, mean (worst seed); — where not run or unbound. */
function policyCell(rs: readonly QualityRow[]): string {
  const g = referenceGap(rs, 'policy-oracle', 'cadence-oracle', (r) => r.gapClosedByPolicyOracle);
  return g === null ? '—' : `${down2(g.mean)} (${down2(g.worst)})`;
}

export function qualityTables(rows: readonly QualityRow[]): string {
  const out: string[] = [];
  out.push(
    row([
      'scenario',
      'quota',
      'gap mean',
      'gap worst',
      'writes/svc/h worst',
      'reversals/svc/day worst',
      'violations',
      'top prio. refused (tick best)',
      "tick best within the policy's priority",
    ]),
    row(Array(9).fill('---')),
  );
  for (const kind of SCENARIO_KINDS) {
    for (const factor of BENCH_QUOTA_FACTORS) {
      const rs = rows.filter((r) => r.kind === kind && r.quotaFactor === factor);
      if (rs.length === 0) continue;
      const gap = meanWorst(
        rs.map((r) => seedGap(r)),
        'low',
      );
      const top = meanWorst(
        rs.map((r) => r.refusedTop.governor ?? 0),
        'high',
      );
      const topBest = meanWorst(
        rs.map((r) => r.refusedTop['cadence-oracle'] ?? 0),
        'high',
      );
      out.push(
        row([
          SCENARIO_NAMES[kind],
          `${factor}×`,
          down2(gap.mean),
          down2(gap.worst),
          up2(Math.max(...rs.map((r) => r.writesPerServiceHour))),
          up2(Math.max(...rs.map((r) => r.reversalsPerServiceDay))),
          String(rs.reduce((a, r) => a + r.invariantViolations + r.failedRuns, 0)),
          `${r0(top.mean)} (${r0(topBest.mean)})`,
          policyCell(rs),
        ]),
      );
    }
  }
  out.push('', row(['scenario', 'quota', 'excess', ...CAUSES.map((c) => c.label)]));
  out.push(row(Array(CAUSES.length + 3).fill('---')));
  for (const kind of SCENARIO_KINDS) {
    for (const factor of BENCH_QUOTA_FACTORS) {
      const rs = rows.filter((r) => r.kind === kind && r.quotaFactor === factor && r.causes);
      if (rs.length === 0) continue;
      const mean = (k: keyof ExcessCauses) =>
        rs.reduce((a, r) => a + (r.causes?.excess[k] ?? 0), 0) / rs.length;
      const excess = rs.reduce(
        (a, r) => a + (r.refused.governor ?? 0) - (r.refused['cadence-oracle'] ?? 0),
        0,
      );
      out.push(
        row([
          SCENARIO_NAMES[kind],
          `${factor}×`,
          r0(excess / rs.length),
          ...CAUSES.map((c) => r0(mean(c.key))),
        ]),
      );
    }
  }
  out.push('', row(['scenario', 'quota', 'service', ...CAUSES.map((c) => c.label)]));
  out.push(row(Array(CAUSES.length + 3).fill('---')));
  for (const kind of SCENARIO_KINDS) {
    for (const factor of BENCH_QUOTA_FACTORS) {
      const rs = rows.filter((r) => r.kind === kind && r.quotaFactor === factor && r.causes);
      if (rs.length === 0) continue;
      const names = [...new Set(rs.flatMap((r) => Object.keys(r.causes?.excessByService ?? {})))];
      for (const name of names.sort()) {
        const mean = (k: keyof ExcessCauses) =>
          rs.reduce((a, r) => a + (r.causes?.excessByService[name]?.[k] ?? 0), 0) / rs.length;
        const cells = CAUSES.map((c) => mean(c.key));
        if (cells.every((x) => x < 0.5)) continue;
        out.push(row([SCENARIO_NAMES[kind], `${factor}×`, name, ...cells.map(r0)]));
      }
    }
  }
  return out.join('\n');
}

const file = process.argv[2] ?? 'bench/results-quality.json';
const refuse = (why: string): never => {
  console.error(`${file}: ${why} (run BENCH_ONLY=quality npm run bench first)`);
  process.exit(2);
};
const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) =>
  refuse(`cannot read it (${e.code ?? e.message})`),
);
let data: { quality?: QualityRow[] } | null = null;
try {
  data = JSON.parse(text) as { quality?: QualityRow[] } | null;
} catch {
  refuse('not JSON');
}
if (!Array.isArray(data?.quality)) refuse('no "quality" rows');
console.log(qualityTables(data?.quality ?? []));
