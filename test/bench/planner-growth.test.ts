import { describe, expect, it } from 'vitest';
import { fitWarningsExpected, plannerGrowth, type PlannerRow } from '../../bench/planner.js';

/** The planner's growth per 10× services in `npm run bench`, and why a miss is a miss. */
const row = (services: number, medianMs: number, cpuMedianMs: number): PlannerRow => ({
  services,
  pools: services / 50,
  medianMs,
  minMs: medianMs,
  cpuMedianMs,
  runs: 15,
  changes: 0,
});

describe("the planner's growth per 10× services", () => {
  it('is the worst step, and a miss whose CPU grew within the target is the wall time waiting', () => {
    const g = plannerGrowth(
      [row(1_000, 10, 10), row(10_000, 150, 100), row(100_000, 1_200, 1_100)],
      12,
    );
    expect(g.steps).toEqual([15, 8]);
    expect(g.worst).toBe(15);
    expect(g.why).toBe(
      "worst from 1,000 to 10,000 services: 10.00 → 150.00 ms wall, 15.0×; the CPU grew 10.0×, within the target: the wall time waited for a core (a plan of 10 ms is moved by the machine's load)",
    );
  });

  it('says the work grows faster than the services when the CPU grew past the target too', () => {
    const g = plannerGrowth([row(1_000, 10, 10), row(10_000, 200, 200)], 12);
    expect(g.worst).toBe(20);
    expect(g.why).toBe(
      "worst from 1,000 to 10,000 services: 10.00 → 200.00 ms wall, 20.0×; the CPU grew 20.0× too: the plan's work grows faster than its services (docs/performance.md)",
    );
  });

  it('is no figure without two sizes', () => {
    const g = plannerGrowth([row(1_000, 10, 10)], 12);
    expect(g.worst).toBeNaN();
    expect(g.why).toBe('fewer than two sizes timed: no growth to judge');
  });
});

describe("the policy fit's timing", () => {
  it('knows how many rules of its shape govern no service seen, so that a fit that warned of none is not timed as one', () => {
    expect(fitWarningsExpected(2_000, 5_000)).toBe(200);
    expect(fitWarningsExpected(20_000, 50_000)).toBe(2_000);
    // Rules naming services beyond the fleet govern nothing either.
    expect(fitWarningsExpected(10, 5)).toBe(5);
  });
});
