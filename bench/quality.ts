import { parsePolicy } from '../src/core/policy.js';
import { buildScenario, parseScenario } from '../src/simulate/scenario.js';
import {
  benchPolicy,
  mixedFleetScenario,
  TRACE_DIR,
  tracesAloneScenario,
} from '../src/simulate/scenarios.js';
import { simulate, type RefusalCauses, type SimulationResult } from '../src/simulate/simulate.js';

/**
 * Decision quality (docs/rules.md "How decisions are judged"): a simulated day of the mixed fleet
 * at a quota of 0.6, 0.8 and 1.0 × its aggregate peak, and the traces alone, each against the
 * baselines on the same demand.
 */

export interface QualityRow {
  scenario: string;
  kind: 'fleet' | 'traces';
  quotaFactor: number;
  quota: number;
  hours: number;
  refused: Record<string, number>;
  gapClosed: number | null;
  refusedVsEqualSplit: number | null;
  writesPerServiceHour: number;
  invariantViolations: number;
  failedRuns: number;
  /** The governor's refused GPU-minutes by cause (docs/simulation.md "Why the governor refuses"). */
  causes: RefusalCauses | null;
}

export async function benchQuality(): Promise<QualityRow[]> {
  const policy = parsePolicy(benchPolicy());
  const cases: {
    name: string;
    kind: 'fleet' | 'traces';
    factor: number;
    scenario: ReturnType<typeof mixedFleetScenario>;
  }[] = [
    ...[0.6, 0.8, 1.0].map((f) => ({
      name: `mixed fleet, quota ${f}× peak`,
      kind: 'fleet' as const,
      factor: f,
      scenario: mixedFleetScenario(f),
    })),
    ...[0.6, 0.8, 1.0].map((f) => ({
      name: `traces alone, quota ${f}× peak`,
      kind: 'traces' as const,
      factor: f,
      scenario: tracesAloneScenario(f),
    })),
  ];
  const rows: QualityRow[] = [];
  for (const c of cases) {
    const parsed = parseScenario(c.scenario);
    const input = await buildScenario(parsed, TRACE_DIR, c.name);
    const result: SimulationResult = await simulate(input, policy, {
      hours: parsed.hours,
      tickMinutes: 5,
      lagMinutes: 3,
      series: false,
      diagnose: true,
    });
    const gov = result.strategies.find((s) => s.strategy === 'governor');
    rows.push({
      scenario: c.name,
      kind: c.kind,
      quotaFactor: c.factor,
      quota: gov?.pools[0]?.quota ?? 0,
      hours: parsed.hours,
      refused: Object.fromEntries(
        result.strategies.map((s) => [s.strategy, s.totals.refusedGpuMinutes]),
      ),
      gapClosed: result.headline?.gapClosed ?? null,
      refusedVsEqualSplit: result.headline?.refusedVsEqualSplit ?? null,
      writesPerServiceHour: result.headline?.writesPerServiceHour ?? 0,
      invariantViolations: result.headline?.invariantViolations ?? 0,
      failedRuns: gov?.failedRuns.length ?? 0,
      causes: gov?.causes ?? null,
    });
  }
  return rows;
}
