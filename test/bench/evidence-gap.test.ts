import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EVIDENCE_KINDS, playGovernor, shownMinute, VARIANTS } from '../../bench/evidence-gap.js';
import { wantedInstances } from '../../src/core/evidence.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { MinuteSample } from '../../src/emulator/model.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, mixedFleetScenario, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate } from '../../src/simulate/simulate.js';

/**
 * The analysis of docs/decision-quality.md "What splitting on recent minutes has that the rule
 * lacks".
 */

function row(p: {
  active: number;
  idle: number;
  demand: number;
  served: number;
  refused: number;
  utilization?: number;
  peak?: number;
  cap?: number;
  pending?: number;
}): MinuteSample {
  return {
    at: 0,
    revision: 'r-1',
    active: p.active,
    idle: p.idle,
    utilization: p.utilization ?? 0.5,
    peakConcurrency: p.peak ?? 2,
    cap: p.cap ?? 3,
    demand: p.demand,
    refusedCap: 0,
    refusedQuota: 0,
    requests: {
      arrived: 0,
      served: p.served,
      refused: p.refused,
      unavailable: 0,
      pending: p.pending ?? 0,
    },
  };
}
const wanted = (m: { inUse: number; served: number; refused: number }) =>
  wantedInstances(m.inUse, m.served, m.refused);

describe('the evidence a variant shows', () => {
  // At a cap of 3: 4.2 instances wanted, Cloud Run's queue holding the excess (no 429 yet).
  const queued = row({ active: 3, idle: 0, demand: 4.2, served: 120, refused: 0, utilization: 1 });
  // After a spike: one busy, two idle, 429s of the spike let out of the queue.
  const after = row({ active: 1, idle: 2, demand: 0.8, served: 40, refused: 90 });

  it('observed: what the simulator serves', () => {
    expect(wanted(shownMinute(queued, 'observed'))).toBe(3);
    expect(wanted(shownMinute(after, 'observed'))).toBe(wantedInstances(3, 40, 90));
  });

  it('true: the minute’s own demand, whatever the queue did', () => {
    expect(wanted(shownMinute(queued, 'true'))).toBe(5);
    expect(shownMinute(after, 'true')).toEqual({ inUse: 1, served: 100, refused: 0 });
    expect(shownMinute(after, 'true-with-idle').inUse).toBe(3);
  });

  it('true only where a 429 shows, or only where none does', () => {
    expect(wanted(shownMinute(queued, 'true-where-429'))).toBe(3);
    expect(wanted(shownMinute(queued, 'true-where-no-429'))).toBe(5);
    expect(wanted(shownMinute(after, 'true-where-no-429'))).toBe(wantedInstances(3, 40, 90));
    expect(wanted(shownMinute(after, 'true-where-429'))).toBe(3);
  });

  it('saturation and full utilization: one more than held, not the true magnitude', () => {
    expect(wanted(shownMinute(queued, 'saturation'))).toBe(4);
    expect(wanted(shownMinute(queued, 'util-full'))).toBe(4);
    expect(wanted(shownMinute(after, 'saturation'))).toBe(wantedInstances(3, 40, 90));
    expect(shownMinute(after, 'busy').inUse).toBe(1);
  });
});

describe('two minutes running', () => {
  // Concurrency 4, cap 3: full (every active instance reached 4) without a 429.
  const full = row({ active: 3, idle: 0, demand: 2.9, served: 120, refused: 0, peak: 4 });
  const short = row({ active: 3, idle: 0, demand: 4.2, served: 120, refused: 0, peak: 4 });
  const calm = row({ active: 3, idle: 0, demand: 2.0, served: 80, refused: 0, peak: 2.7 });

  it('full-2: full in this minute and the one before, whatever the demand', () => {
    expect(wanted(shownMinute(full, 'full-2', [full], 4))).toBe(4);
    expect(wanted(shownMinute(full, 'full-2', [calm], 4))).toBe(3);
    expect(wanted(shownMinute(full, 'full-2', [], 4))).toBe(3);
    // A concurrency of 8 is not reached by a peak of 4.
    expect(wanted(shownMinute(full, 'full-2', [full], 8))).toBe(3);
  });

  it('saturation-2: short by true demand in both, not merely full', () => {
    expect(wanted(shownMinute(short, 'saturation-2', [short]))).toBe(4);
    expect(wanted(shownMinute(short, 'saturation-2', [full]))).toBe(3);
  });

  it('full-2-at-cap and full-4-flat: held at the cap, or unchanged for four minutes', () => {
    const below = row({
      active: 3,
      idle: 0,
      demand: 2.9,
      served: 120,
      refused: 0,
      peak: 4,
      cap: 5,
    });
    expect(wanted(shownMinute(full, 'full-2-at-cap', [full], 4))).toBe(4);
    expect(wanted(shownMinute(below, 'full-2-at-cap', [below], 4))).toBe(3);
    expect(wanted(shownMinute(full, 'full-4-flat', [full, full, full], 4))).toBe(4);
    const fewer = row({ active: 2, idle: 0, demand: 2.5, served: 80, refused: 0, peak: 4 });
    expect(wanted(shownMinute(full, 'full-4-flat', [fewer, full, full], 4))).toBe(3);
  });
});

describe("the pending queue's growth as evidence", () => {
  // 3 instances serving 120 requests a minute; the queue grows by 60 over the minute (arrivals
  // 180: 4.5 instances' worth), then by 30, then drains.
  const first = row({ active: 3, idle: 0, demand: 4.5, served: 120, refused: 0, pending: 60 });
  const second = row({ active: 3, idle: 0, demand: 4, served: 120, refused: 0, pending: 90 });
  const drain = row({ active: 3, idle: 0, demand: 2, served: 120, refused: 0, pending: 30 });

  it("counts the queue's growth with the 429s, and nothing while it drains", () => {
    expect(wanted(shownMinute(first, 'queue-growth', []))).toBe(5);
    expect(shownMinute(second, 'queue-growth', [first])).toEqual({
      inUse: 3,
      served: 120,
      refused: 30,
    });
    expect(wanted(shownMinute(drain, 'queue-growth', [first, second]))).toBe(3);
  });

  it('queue-growth-2: only when the queue grew the minute before too', () => {
    const calm = row({ active: 3, idle: 0, demand: 3, served: 120, refused: 0, pending: 0 });
    expect(wanted(shownMinute(first, 'queue-growth-2', [calm]))).toBe(3);
    expect(wanted(shownMinute(second, 'queue-growth-2', [calm, first]))).toBe(4);
  });
});

describe('the harness plays the governor as the simulator does', () => {
  // Three hours of the mixed fleet at 0.6×, seed 7, played by simulate() and by the harness.
  const policy = parsePolicy(benchPolicy());
  let input: Awaited<ReturnType<typeof buildScenario>>;
  let governor: Awaited<ReturnType<typeof simulate>>['strategies'][number] | undefined;
  beforeAll(async () => {
    const parsed = parseScenario(mixedFleetScenario(0.6, 3, 7));
    input = await buildScenario(parsed, TRACE_DIR, 'mixed 0.6 seed 7, 3 h');
    const sim = await simulate(input, policy, {
      hours: 3,
      tickMinutes: 5,
      lagMinutes: 3,
      series: false,
      strategies: ['governor'],
    });
    governor = sim.strategies[0];
  });

  it('refuses exactly what simulate() counts for the governor, on observed evidence', async () => {
    const expected = governor?.totals.refusedGpuMinutes ?? -1;
    expect(expected).toBeGreaterThan(0);
    expect(await playGovernor(input, policy, 'observed', 180)).toBe(expected);
  });

  it("counts one service's refusals when asked, as simulate() counts that service's", async () => {
    const refused = (governor?.services ?? []).filter((s) => s.refusedGpuMinutes > 0);
    expect(refused.length).toBeGreaterThan(1);
    const one = refused[0];
    const got = await playGovernor(input, policy, 'observed', 180, new Set([one?.name ?? '']));
    expect(got).toBe(one?.refusedGpuMinutes);
    expect(got).toBeLessThan(governor?.totals.refusedGpuMinutes ?? 0);
  });
});

describe('what the docs ask the harness to run', () => {
  // The docs quote figures with the command that gives them: a variant or kind they name that the
  // harness does not have would stop it with "unknown".
  const docs = ['README.md', 'docs/decision-quality.md', 'docs/simulation.md']
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const named = (key: string) =>
    [...docs.matchAll(new RegExp(`${key}=([\\w.,-]+)`, 'g'))].flatMap((m) =>
      (m[1] ?? '').split(',').filter(Boolean),
    );

  it('every variant named in VARIANTS=… exists', () => {
    const asked = named('VARIANTS');
    expect(asked.length).toBeGreaterThan(0);
    const known = new Set(VARIANTS.map((v) => v.name));
    expect(asked.filter((n) => !known.has(n))).toEqual([]);
  });

  it('every evidence kind named in KINDS=… exists', () => {
    const asked = named('KINDS');
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.filter((k) => !(EVIDENCE_KINDS as readonly string[]).includes(k))).toEqual([]);
  });
});
