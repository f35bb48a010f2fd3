import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import {
  equalSplit,
  oracleSplit,
  overCommit,
  peakProportional,
} from '../../src/simulate/baselines.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { benchPolicy, mixedFleetScenario, TRACE_DIR } from '../../src/simulate/scenarios.js';
import { simulate, STRATEGIES, type Strategy } from '../../src/simulate/simulate.js';
import { WriteChecker, writeProblems } from '../../src/simulate/write-checks.js';
import { Accounting } from '../../src/simulate/accounting.js';
import { PolicyView, poolsOf, type SimContext } from '../../src/simulate/context.js';
import { FleetModel, MINUTE_MS } from '../../src/emulator/model.js';
import { createSimPorts, watchWrites } from '../../src/emulator/ports.js';
import { parsePolicy } from '../../src/core/policy.js';
import { constantFleet, governSimulation, onePoolFleet } from '../support/fixtures.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import type { ScenarioInput } from '../../src/simulate/scenario.js';

const refused = (r: Awaited<ReturnType<typeof simulate>>, s: Strategy) =>
  r.strategies.find((x) => x.strategy === s)?.totals.refusedGpuMinutes;

describe('accounting on hand-checkable fleets', () => {
  it('refuses what is above a cap, minute by minute', async () => {
    // One service wants 3 instances all hour; its cap is 2; the pool has room: 1 GPU refused a minute.
    const input = await constantFleet(10, [{ name: 'a', cap: 2, demand: 3 }]);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      strategies: ['fleet-caps', 'oracle'],
    });
    const caps = r.strategies[0];
    expect(caps?.totals.refusedGpuMinutes).toBe(60);
    expect(caps?.services[0]).toMatchObject({
      refusedCapGpuMinutes: 60,
      refusedQuotaGpuMinutes: 0,
      demandGpuMinutes: 180,
    });
    expect(refused(r, 'oracle')).toBe(0);
  });

  it('over-commit refuses at the pool when services together want more than the quota', async () => {
    // Quota 3, two services wanting 2 each, each allowed the whole pool: 1 GPU short every minute.
    const input = await constantFleet(3, [
      { name: 'a', cap: 1, demand: 2 },
      { name: 'b', cap: 1, demand: 2 },
    ]);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      strategies: ['over-commit', 'equal-split', 'oracle'],
    });
    const over = r.strategies.find((s) => s.strategy === 'over-commit');
    expect(over?.totals.refusedGpuMinutes).toBe(60);
    expect(over?.services.reduce((a, s) => a + s.refusedQuotaGpuMinutes, 0)).toBe(60);
    expect(over?.pools[0]?.capsOverQuotaMinutes).toBe(60);
    // Equal split: caps 2 and 1 (remainder to the first name): b refused 1 at its cap.
    expect(refused(r, 'equal-split')).toBe(60);
    // The oracle refuses exactly the excess of demand over the quota.
    expect(refused(r, 'oracle')).toBe(60);
    expect(r.strategies.find((s) => s.strategy === 'oracle')?.pools[0]?.scarceMinutes).toBe(60);
  });

  it('the governor raises a capped service into free quota and breaks no rule', async () => {
    const input = await constantFleet(
      8,
      [
        { name: 'a', cap: 1, demand: 4 },
        { name: 'b', cap: 6, demand: 1 },
      ],
      2,
    );
    const r = await simulate(input, governSimulation(), {
      hours: 2,
      strategies: ['governor', 'fleet-caps', 'oracle'],
    });
    const gov = r.strategies.find((s) => s.strategy === 'governor');
    expect(gov?.totals.invariantViolations).toBe(0);
    expect(gov?.failedRuns).toEqual([]);
    expect(refused(r, 'fleet-caps')).toBe(3 * 120);
    expect(gov?.totals.refusedGpuMinutes ?? Infinity).toBeLessThan(3 * 120 * 0.2);
    expect(gov?.services.find((s) => s.name === 'a')?.writes).toBeGreaterThan(0);
  });

  it('the oracle is a floor: at most every baseline and the governor, on a mixed day', async () => {
    const input = await buildScenario(parseScenario(mixedFleetScenario(0.7, 6)), TRACE_DIR);
    const r = await simulate(input, parsePolicy(benchPolicy()), { hours: 6, series: false });
    const oracle = refused(r, 'oracle') ?? Infinity;
    for (const s of r.strategies) expect(oracle).toBeLessThanOrEqual(s.totals.refusedGpuMinutes);
    expect(r.headline?.invariantViolations).toBe(0);
    expect(r.strategies.find((s) => s.strategy === 'oracle')?.pools[0]?.shareError ?? 0).toBe(0);
    // The cadence-limited oracles: above the clairvoyant one (caps fixed between ticks), the
    // writes-limited one above the one at the tick, and within its 2 writes a service an hour.
    const cadence = refused(r, 'cadence-oracle') ?? -1;
    const limited = r.strategies.find((s) => s.strategy === 'writes-oracle');
    expect(cadence).toBeGreaterThan(oracle);
    expect(limited?.totals.refusedGpuMinutes ?? -1).toBeGreaterThanOrEqual(cadence);
    expect(limited?.totals.writesPerServiceHour ?? Infinity).toBeLessThanOrEqual(2);
    expect(cadence).toBeLessThan(refused(r, 'equal-split') ?? -1);
    // The headline's gap is against the oracle at the governor's tick.
    const e = refused(r, 'equal-split') ?? 0;
    const g = refused(r, 'governor') ?? 0;
    expect(r.headline?.gapClosed).toBeCloseTo((e - g) / (e - cadence), 9);
    expect(r.headline?.gapClosedClairvoyant).toBeCloseTo((e - g) / (e - oracle), 9);
  });
});

describe('a pool with no quota', () => {
  it('is refused: there is no pool to split, and no oracle to measure against', async () => {
    // Before: the model let every instance start, while the oracles and the static splits had 0
    // GPUs: the clairvoyant oracle, meant as the floor, refused 240 GPU-minutes against the
    // governor's 60, and over-commit capped every service at 1.
    const fleet = onePoolFleet('sim-project', 'us-central1', 4, [
      ['a', 2, 3],
      ['b', 2, 1],
    ]);
    const input = {
      label: 'no-quota.yaml',
      fleet: validateFleet(
        { ...fleet, projects: fleet.projects.map((p) => ({ ...p, pools: [] })) },
        'fleet',
      ),
      traces: new Map<string, number[]>(),
      hours: null,
    };
    const error: unknown = await simulate(input, governSimulation(), {
      hours: 1,
      strategies: ['fleet-caps', 'oracle'],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      "no-quota.yaml: pool sim-project/us-central1/nvidia-l4/zonal has no GPU quota, and every strategy is compared within its pool's quota: give the pool a quota (a fleet file's pools, or for a replay the policy's pools)",
    );
  });
});

describe("the clairvoyant oracle's writes and reversals", () => {
  it('counts a reversal only where the cap it writes changed, as its writes', async () => {
    // s0 wants 1 instance, none over minutes 10–19, then 1 again: the split goes 1 → 0 → 1, but
    // the cap written stays 1 (a max of 0 is not a cap): no write, so no cap raised back.
    const at = (t: number) =>
      new Date(Date.parse('2026-11-24T00:00:00Z') + t * MINUTE_MS).toISOString();
    const fleet = validateFleet({
      start: at(0),
      warmupMinutes: 0,
      idleMinutes: 0,
      startupSeconds: 0,
      projects: [
        {
          id: 'sim-project',
          pools: [{ region: 'us-central1', quota: 4 }],
          services: [
            {
              name: 's0',
              region: 'us-central1',
              gpu: { count: 1 },
              maxInstances: 2,
              demand: {
                steps: [
                  { at: at(0), value: 1 },
                  { at: at(10), value: 0 },
                  { at: at(20), value: 1 },
                ],
              },
            },
          ],
        },
      ],
    });
    const r = await simulate(
      { label: 'hand', fleet, traces: new Map(), hours: null },
      governSimulation(),
      { hours: 1, series: false, strategies: ['oracle'] },
    );
    expect(r.strategies[0]?.services[0]).toMatchObject({ writes: 0, reversals: 0 });
  });
});

describe('a quota cut', () => {
  /**
   * The fleet's caps and the clairvoyant oracle played for an hour in which the quota falls from 4
   * to 2 at minute 30, and a steps from 1 to 4 instances at `atMinute`.
   */
  const cutAtHalfHour = async (atMinute: number) =>
    simulate(await cutScenario(atMinute), governSimulation(), {
      hours: 1,
      series: false,
      strategies: ['fleet-caps', 'oracle'],
    });
  const cutScenario = (atMinute: number) =>
    buildScenario(
      parseScenario({
        scenario: 1,
        start: '2026-11-24T00:00:00Z',
        hours: 1,
        quota: 4,
        quotaCut: { atHour: 0.5, factor: 0.5 },
        startupSeconds: 0,
        idleMinutes: 0,
        warmupMinutes: 0,
        services: [
          {
            name: 'a',
            maxInstances: 4,
            demand: { shape: { kind: 'step', before: 1, after: 4, atMinute } },
          },
        ],
      }),
      TRACE_DIR,
    );

  it('holds the played strategies to the cut quota from its own minute, as the oracles', async () => {
    // a wants 1 instance, then 4 from minute 30, when the quota falls from 4 to 2. From minute 30
    // the pool has 2 GPUs: the fleet's caps (4) start one more instance and refuse 2 a minute,
    // as the clairvoyant oracle does. Played at the old quota, minute 30 would start all four,
    // and the model lets a service keep what it holds above a cut: 0 refused, below the oracle.
    const r = await cutAtHalfHour(30);
    expect(refused(r, 'oracle')).toBe(2 * 30);
    expect(refused(r, 'fleet-caps')).toBe(2 * 30);
  });

  it('plays the quota before the cut up to the minute before it: instances held then are kept', async () => {
    // a wants 4 from minute 29, a minute before the quota falls from 4 to 2. The fleet's caps
    // start all four at the old quota and keep them past the cut: 0 refused, against the
    // clairvoyant oracle's 2 a minute from minute 30 (the exception of docs/simulation.md).
    const r = await cutAtHalfHour(29);
    expect(refused(r, 'oracle')).toBe(2 * 30);
    expect(refused(r, 'fleet-caps')).toBe(0);
  });
});

describe('refusals by cause', () => {
  it('after a quota cut, counts the cut quota: a full pool is busy, not free', async () => {
    // One service wants 4 all hour; at minute 30 the quota falls from 4 to 2. Afterwards every
    // GPU of the pool is held and 2 a minute are refused: that is the pool being busy, not room
    // left free under someone's cap (the quota before the cut would say 2 GPUs sat free).
    const scenario: ScenarioInput = {
      scenario: 1,
      start: '2026-11-24T00:00:00Z',
      hours: 1,
      quota: 4,
      quotaCut: { atHour: 0.5, factor: 0.5 },
      startupSeconds: 0,
      idleMinutes: 0,
      warmupMinutes: 0,
      services: [{ name: 'a', maxInstances: 4, demand: { shape: { kind: 'constant', value: 4 } } }],
    };
    const input = await buildScenario(parseScenario(scenario), TRACE_DIR);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      series: false,
      diagnose: true,
      strategies: ['governor'],
    });
    const gov = r.strategies[0];
    expect(gov?.totals.refusedGpuMinutes).toBeGreaterThan(2 * 25);
    const causes = gov?.causes;
    expect(causes?.free).toEqual({ shortOfDemand: 0, aboveEstimate: 0 });
    expect(causes?.freeRoomAt.uncapped).toBe(0);
    expect((causes?.poolBusy ?? 0) + (causes?.poolIdleHeld ?? 0)).toBe(
      gov?.totals.refusedGpuMinutes,
    );
  });
});

describe("the governor's excess over the best at the tick, by cause", () => {
  it('sums, cause by cause less what it served ahead, to the difference in refusals', async () => {
    const input = await buildScenario(parseScenario(mixedFleetScenario(0.6, 2)), TRACE_DIR);
    const r = await simulate(input, parsePolicy(benchPolicy()), {
      hours: 2,
      series: false,
      diagnose: true,
      strategies: ['governor', 'cadence-oracle'],
    });
    const excess = r.strategies[0]?.causes?.excess;
    const byService = r.strategies[0]?.causes?.excessByService ?? {};
    if (!excess) throw new Error('no causes');
    const net = (c: typeof excess) =>
      Object.entries(c).reduce((a, [k, v]) => a + (k === 'ahead' ? -v : v), 0);
    const diff = (refused(r, 'governor') ?? 0) - (refused(r, 'cadence-oracle') ?? 0);
    expect(diff).toBeGreaterThan(0);
    expect(net(excess)).toBeCloseTo(diff, 6);
    // Per service, the same causes add up to the pool's.
    const summed = Object.values(byService).reduce((a, c) => a + net(c), 0);
    expect(summed).toBeCloseTo(diff, 6);
    expect(Object.keys(byService).sort()).toEqual(
      (r.strategies[0]?.services ?? []).map((s) => s.name).sort(),
    );
  });
});

describe('the excess by cause where the floors alone are above the pool', () => {
  it('measures the governor against the refusals the best at the tick reports', async () => {
    // Three services want 1 instance each, each at its floor of 1, in a pool of 2 GPUs: every
    // strategy refuses 1 a minute, the best at the tick too (its caps, the floors, let 3 through
    // a pool of 2). The governor refuses no more than it: no excess, and no cause.
    const input = await constantFleet(2, [
      { name: 'a', cap: 1, demand: 1 },
      { name: 'b', cap: 1, demand: 1 },
      { name: 'c', cap: 1, demand: 1 },
    ]);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      series: false,
      diagnose: true,
      strategies: ['governor', 'cadence-oracle'],
    });
    expect(refused(r, 'cadence-oracle')).toBe(60);
    expect(refused(r, 'governor')).toBe(60);
    const excess = r.strategies[0]?.causes?.excess;
    if (!excess) throw new Error('no causes');
    const net = Object.entries(excess).reduce((a, [k, v]) => a + (k === 'ahead' ? -v : v), 0);
    expect(net).toBe(0);
  });
});

describe('the best at the tick without hindsight (evidence-oracle)', () => {
  /** a wants 2 instances all hour; b steps from 1 to 2 at `atMinute`; the pool has room for both. */
  const stepOfB = (atMinute: number) =>
    buildScenario(
      parseScenario({
        scenario: 1,
        start: '2026-11-24T00:00:00Z',
        hours: 1,
        quota: 4,
        startupSeconds: 0,
        idleMinutes: 0,
        warmupMinutes: 60,
        services: [
          { name: 'a', maxInstances: 2, demand: { shape: { kind: 'constant', value: 2 } } },
          {
            name: 'b',
            maxInstances: 2,
            demand: { shape: { kind: 'step', before: 1, after: 2, atMinute } },
          },
        ],
      }),
      TRACE_DIR,
    );

  it('sees a step 3 minutes late and pays until the next tick that shows it', async () => {
    // b steps from 1 to 2 instances at minute 30; the pool has room for both. The tick at 30
    // sees minutes ≤ 27 (b wants 1), so b is refused 1 a minute over 30–34; the tick at 35 sees
    // 30–32 and gives it 2. The best at the tick knows minute 30 in advance: 0 refused. (The
    // tick at 0 sees the warm-up's minutes, as a governor does.)
    const input = await stepOfB(30);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      series: false,
      strategies: ['cadence-oracle', 'evidence-oracle'],
    });
    expect(refused(r, 'cadence-oracle')).toBe(0);
    expect(refused(r, 'evidence-oracle')).toBe(5);
  });

  it('sees at a tick the minute exactly 3 minutes old', async () => {
    // b steps from 1 to 2 instances at minute 32. The tick at 30 sees minutes ≤ 27: b refused 1
    // a minute over 32–34. The tick at 35 sees minute 32 (35 − 3): cap 2, nothing refused after.
    const input = await stepOfB(32);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      series: false,
      strategies: ['evidence-oracle'],
    });
    expect(refused(r, 'evidence-oracle')).toBe(3);
  });

  it('sees at its first tick the warm-up a governor sees, not the tick itself', async () => {
    // a wants 1 instance through the hour of warm-up, 3 from minute 0; quota 4. The tick at 0 sees
    // minutes −12 to −3 (1 a minute): cap 1, refused 2 a minute over 0–4. The tick at 5 sees
    // minutes 0–2 (3): cap 3. Seeing minute 0 at the tick at 0 is hindsight: 0 refused.
    const scenario: ScenarioInput = {
      scenario: 1,
      start: '2026-11-24T00:00:00Z',
      hours: 1,
      quota: 4,
      startupSeconds: 0,
      idleMinutes: 0,
      warmupMinutes: 60,
      services: [
        {
          name: 'a',
          maxInstances: 4,
          demand: { shape: { kind: 'step', before: 1, after: 3, atMinute: 0 } },
        },
      ],
    };
    const input = await buildScenario(parseScenario(scenario), TRACE_DIR);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      series: false,
      strategies: ['cadence-oracle', 'evidence-oracle'],
    });
    expect(refused(r, 'cadence-oracle')).toBe(0);
    expect(refused(r, 'evidence-oracle')).toBe(2 * 5);
  });

  it('refuses between the best at the tick and the static split, and runs only when asked', async () => {
    const input = await buildScenario(parseScenario(mixedFleetScenario(0.6, 6)), TRACE_DIR);
    const r = await simulate(input, parsePolicy(benchPolicy()), {
      hours: 6,
      series: false,
      strategies: ['equal-split', 'cadence-oracle', 'evidence-oracle'],
    });
    const evidence = refused(r, 'evidence-oracle') ?? -1;
    expect(evidence).toBeGreaterThan(refused(r, 'cadence-oracle') ?? Infinity);
    expect(evidence).toBeLessThan(refused(r, 'equal-split') ?? -1);
    expect((STRATEGIES as readonly string[]).includes('evidence-oracle')).toBe(false);
  });
});

describe("the best at the tick keeping the policy's priority (policy-oracle)", () => {
  // hi (priority 10) wants 5 all hour; lo (priority 0) wants 3, then 10 from minute 30; quota 10,
  // floors 1, headroom 20%, no idle tail. Both oracles give hi 5 with hindsight; the policy's
  // demand for hi is ceil(5 × 1.2) = 6 from the tick at 0, which sees the warm-up's minutes.
  const scenario = (loBefore: number): ScenarioInput => ({
    scenario: 1,
    start: '2026-11-24T00:00:00Z',
    hours: 1,
    quota: 10,
    startupSeconds: 0,
    idleMinutes: 0,
    warmupMinutes: 60,
    services: [
      { name: 'hi', maxInstances: 5, demand: { shape: { kind: 'constant', value: 5 } } },
      {
        name: 'lo',
        maxInstances: 5,
        demand: { shape: { kind: 'step', before: loBefore, after: 10, atMinute: 30 } },
      },
    ],
  });
  const policy = governSimulation({
    defaults: { headroom: 0.2 },
    services: [{ match: { name: 'hi' }, priority: 10 }, { match: {} }],
  });
  const run = async (loBefore: number) =>
    simulate(await buildScenario(parseScenario(scenario(loBefore)), TRACE_DIR), policy, {
      hours: 1,
      series: false,
      strategies: ['cadence-oracle', 'policy-oracle', 'evidence-oracle', 'policy-evidence-oracle'],
    });

  it("serves a higher priority's headroom before a lower priority grows", async () => {
    // While lo wants 3, hi's 6th instance comes from free room. From minute 30 lo wants 10 but
    // may not grow past what it had in use (3) while hi lacks its demand: lo holds 4 (refused 6
    // a minute) where the best at the tick gives it 5 (refused 5).
    const r = await run(3);
    expect(refused(r, 'cadence-oracle')).toBe(5 * 30);
    expect(refused(r, 'policy-oracle')).toBe(6 * 30);
  });

  it('without hindsight too: the step is seen 3 minutes late, then the headroom comes first', async () => {
    // The tick at 30 sees minutes ≤ 27 (lo wants 3): lo held at 3 and refused 7 a minute over
    // 30–34 either way. From the tick at 35, which sees lo want 10: the evidence-oracle gives
    // lo 5 (refused 5 a minute), held to the policy it gives hi its 6th first and lo 4 (refused 6).
    const r = await run(3);
    expect(refused(r, 'evidence-oracle')).toBe(7 * 5 + 5 * 25);
    expect(refused(r, 'policy-evidence-oracle')).toBe(7 * 5 + 6 * 25);
  });

  it('keeps what a lower priority has in use, unless it is preemptible', async () => {
    // Quota 8: hi wants 5, lo 3, all along; hi's demand is ceil(5 × 1.2) = 6. Above both floors
    // 6 GPUs: hi takes 4 more (5), and of the 2 left lo keeps the 2 above its floor it has in
    // use: nothing refused. With lo preemptible, hi is raised to its 6th first and lo held at 2:
    // refused 1 a minute.
    const both = (preempt: boolean) =>
      governSimulation({
        defaults: { headroom: 0.2 },
        services: [
          { match: { name: 'hi' }, priority: 10 },
          { match: {}, preempt },
        ],
      });
    const input = await buildScenario(
      parseScenario({
        ...scenario(3),
        quota: 8,
        services: [
          { name: 'hi', maxInstances: 5, demand: { shape: { kind: 'constant', value: 5 } } },
          { name: 'lo', maxInstances: 5, demand: { shape: { kind: 'constant', value: 3 } } },
        ],
      }),
      TRACE_DIR,
    );
    const policyOracle = async (preempt: boolean) =>
      refused(
        await simulate(input, both(preempt), {
          hours: 1,
          series: false,
          strategies: ['policy-oracle'],
        }),
        'policy-oracle',
      );
    expect(await policyOracle(false)).toBe(0);
    expect(await policyOracle(true)).toBe(60);
  });

  it("reads the policy's demand from the warm-up's minutes too, as a governor does", async () => {
    // hi (priority 10, cap 5) wants 5 in the hour of warm-up, 2 from minute 0; lo wants 10 all
    // along at its cap of 5; quota 10, floors 1, headroom 20%, lookback 30 minutes. Until the tick
    // at 35 the lookback (minutes ≤ t − 3) holds a warm-up minute: hi's demand is ceil(5 × 1.2),
    // and lo keeps its 5 in use: hi 5, lo 5, refused 5 a minute (35 minutes). From the tick at 35
    // hi's demand is ceil(2 × 1.2) = 3: lo 7, refused 3 a minute (25 minutes). The best at the
    // tick gives hi 2 and lo 8 all hour: 2 a minute.
    const warm: ScenarioInput = {
      scenario: 1,
      start: '2026-11-24T00:00:00Z',
      hours: 1,
      quota: 10,
      startupSeconds: 0,
      idleMinutes: 0,
      warmupMinutes: 60,
      services: [
        {
          name: 'hi',
          maxInstances: 5,
          demand: { shape: { kind: 'step', before: 5, after: 2, atMinute: 0 } },
        },
        { name: 'lo', maxInstances: 5, demand: { shape: { kind: 'constant', value: 10 } } },
      ],
    };
    const r = await simulate(await buildScenario(parseScenario(warm), TRACE_DIR), policy, {
      hours: 1,
      series: false,
      strategies: ['cadence-oracle', 'policy-oracle'],
    });
    expect(refused(r, 'cadence-oracle')).toBe(2 * 60);
    expect(refused(r, 'policy-oracle')).toBe(5 * 35 + 3 * 25);
  });

  it('lets a lower priority keep what it has in use (rule 6)', async () => {
    // lo wants 10 all hour and runs its 5 from the start: hi's headroom would come only from
    // lo's instances in use, which rule 6 lets it keep, so both oracles split 5 and 5.
    const r = await run(10);
    expect(refused(r, 'policy-oracle')).toBe(refused(r, 'cadence-oracle'));
    expect(refused(r, 'cadence-oracle')).toBe(5 * 60);
    expect((STRATEGIES as readonly string[]).includes('policy-oracle')).toBe(true);
    expect((STRATEGIES as readonly string[]).includes('policy-evidence-oracle')).toBe(false);
  });
});

describe('baselines', () => {
  const members = [
    { name: 'a', gpus: 1 },
    { name: 'b', gpus: 1 },
    { name: 'c', gpus: 1 },
  ];
  it('split equally, the remainder to the first names, at least one each', () => {
    expect([...equalSplit(members, 8)]).toEqual([
      ['a', 3],
      ['b', 3],
      ['c', 2],
    ]);
    expect([...equalSplit(members, 1).values()]).toEqual([1, 1, 1]);
  });
  it('split by peak, and over-commit gives everyone the quota', () => {
    const caps = peakProportional(
      members.map((m, i) => ({ ...m, peakGpus: [6, 3, 1][i] ?? 0 })),
      10,
    );
    // One instance each first, then the 7 GPUs left by peak: 4.2, 2.1, 0.7 → 4, 2, 1 (largest remainder).
    expect([...caps.values()]).toEqual([5, 3, 2]);
    expect([...overCommit(members, 8).values()]).toEqual([8, 8, 8]);
  });
  it('split by peak in GPUs, not in instances, when instances hold different GPUs', async () => {
    // Quota 6: a (2 GPUs an instance) wants 2 instances, 4 GPUs, b (1 GPU) 3. One instance each
    // first, then the 3 GPUs left by peak, 4 : 3: 0.86 of an instance of a, 1.29 of b → caps
    // 2 and 2 (largest remainder), b refused 1 a minute. By instances (2 : 3) a would keep 1
    // and b get 3: 2 a minute.
    const scenario: ScenarioInput = {
      scenario: 1,
      start: '2026-11-24T00:00:00Z',
      hours: 1,
      quota: 6,
      startupSeconds: 0,
      idleMinutes: 0,
      warmupMinutes: 0,
      services: [
        { name: 'a', gpus: 2, maxInstances: 1, demand: { shape: { kind: 'constant', value: 2 } } },
        { name: 'b', maxInstances: 1, demand: { shape: { kind: 'constant', value: 3 } } },
      ],
    };
    const input = await buildScenario(parseScenario(scenario), TRACE_DIR);
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      series: false,
      strategies: ['peak-proportional'],
    });
    expect(refused(r, 'peak-proportional')).toBe(60);
  });
  it('over-commit gives each service the whole quota in whole instances, the split what is left', async () => {
    // Cloud Run checks a service's max against the quota alone, in whole instances: 2 of 2 GPUs
    // on a quota of 5.
    expect([...overCommit([{ name: 'a', gpus: 2 }], 5).values()]).toEqual([2]);
    // Quota 5, one GPU held by a worker pool: over-commit caps a and b at 5 each, the equal split
    // shares the 4 GPUs left, 2 each.
    const fleet = onePoolFleet('sim-project', 'us-central1', 5, [
      ['a', 1, 1],
      ['b', 1, 1],
    ]);
    const input = {
      label: 'worker pool',
      fleet: validateFleet(
        {
          ...fleet,
          projects: fleet.projects.map((p) => ({
            ...p,
            workerPools: [{ name: 'w', region: 'us-central1', gpu: {}, manualInstanceCount: 1 }],
          })),
        },
        'fleet',
      ),
      traces: new Map<string, number[]>(),
      hours: null,
    };
    const r = await simulate(input, governSimulation(), {
      hours: 1,
      strategies: ['over-commit', 'equal-split'],
    });
    const capsOf = (s: Strategy) =>
      Object.values(r.strategies.find((x) => x.strategy === s)?.series[0]?.caps ?? {}).map(
        (c) => c[0],
      );
    expect(capsOf('over-commit')).toEqual([5, 5]);
    expect(capsOf('equal-split')).toEqual([2, 2]);
  });
  it('the oracle serves priority first, then weighted max-min', () => {
    const split = oracleSplit(
      [
        { name: 'hi', gpus: 1, want: 3, priority: 10, weight: 1, fixedCap: null },
        { name: 'x', gpus: 1, want: 6, priority: 0, weight: 2, fixedCap: null },
        { name: 'y', gpus: 1, want: 6, priority: 0, weight: 1, fixedCap: null },
        { name: 'fixed', gpus: 1, want: 5, priority: 99, weight: 1, fixedCap: 1 },
      ],
      10,
    );
    expect(Object.fromEntries(split)).toEqual({ fixed: 1, hi: 3, x: 4, y: 2 });
  });
});

describe('invariant checking', () => {
  const ok = {
    managed: true,
    before: 2,
    after: 3,
    floor: 1,
    ceiling: 8,
    capsGpus: 7,
    budgetGpus: 8,
  };
  it('accepts a write within the rules', () => {
    expect(writeProblems(ok)).toEqual([]);
  });
  it('names each broken rule', () => {
    expect(writeProblems({ ...ok, managed: false })).toEqual([expect.stringContaining('rule 3')]);
    expect(writeProblems({ ...ok, after: 9 })).toEqual([expect.stringContaining('rule 2')]);
    expect(writeProblems({ ...ok, capsGpus: 9 })).toEqual([expect.stringContaining('rule 1')]);
    // A decrease in an over-budget pool is the repair, not a fault; a raise toward a floor that
    // stops short of it (the quota first) is within the rules too.
    expect(writeProblems({ ...ok, after: 1, capsGpus: 9 })).toEqual([]);
    expect(writeProblems({ ...ok, before: 1, after: 2, floor: 3 })).toEqual([]);
  });
});

describe("the governor's writes, checked as they land", () => {
  it("counts a raise into the policy's reserve, and after a cut, into the GPUs the cut took", async () => {
    // Quota 4 cut to 2 at minute 30; a and b at 1 each; the policy keeps 1 GPU in reserve.
    const input = await constantFleet(4, [
      { name: 'a', cap: 1, demand: 1 },
      { name: 'b', cap: 1, demand: 1 },
    ]);
    input.quotaChanges = [{ minute: 30, quota: 2 }];
    const policy = governSimulation({ reserve: 1 });
    const model = new FleetModel(input.fleet, { traces: input.traces });
    const pools = poolsOf(model, input.quotaChanges);
    const view = new PolicyView(policy);
    const ctx: SimContext = {
      input,
      policy,
      options: { hours: 1, series: false },
      pools,
      want: new Map(),
      ideal: new Map(),
      view,
      startMs: model.startMs,
      minutes: 60,
      tick: 5,
      lag: 3,
    };
    const acc = new Accounting(ctx, model.startMs);
    const checker = new WriteChecker(ctx, model, acc);
    const ports = createSimPorts(model, { lagMs: 0 });
    const run = watchWrites(ports.run, (u) => checker.check(u));
    const write = async (name: string, maxInstances: number) => {
      checker.observeCaps();
      const s = await ports.run.getService('sim-project', 'us-central1', name);
      await run.updateMaxInstances({
        project: 'sim-project',
        region: 'us-central1',
        name,
        maxInstances,
        etag: s?.etag ?? '',
        annotations: {},
      });
    };
    // a to 2: caps 3, the budget 4 − 1. Within it.
    await write('a', 2);
    expect(checker.count).toBe(0);
    // a to 3: caps 4, above the budget of 3 by the reserve.
    await write('a', 3);
    expect(checker.count).toBe(1);
    await write('a', 1);
    // After the cut: b to 2 leaves caps 3 above the budget 2 − 1.
    model.advanceTo(model.startMs + 30 * MINUTE_MS);
    const pool = pools[0];
    if (!pool) throw new Error('no pool');
    model.setQuota(pool.id, 2);
    await write('b', 2);
    expect(checker.count).toBe(2);
    expect(checker.violations).toEqual([
      expect.stringMatching(
        / a: raised 2 → 3 leaving the pool's caps at 4 GPUs, above the budget 3 \(rule 1\)$/,
      ),
      expect.stringMatching(
        / b: raised 1 → 2 leaving the pool's caps at 3 GPUs, above the budget 1 \(rule 1\)$/,
      ),
    ]);
  });
});

describe("a result's failed runs", () => {
  it('lists the first 20 and counts every one', async () => {
    const input = await constantFleet(4, [{ name: 'a', cap: 1, demand: 1 }]);
    const policy = governSimulation({});
    const model = new FleetModel(input.fleet, { traces: input.traces });
    const ctx: SimContext = {
      input,
      policy,
      options: { hours: 1, series: false },
      pools: poolsOf(model, []),
      want: new Map(),
      ideal: new Map(),
      view: new PolicyView(policy),
      startMs: model.startMs,
      minutes: 60,
      tick: 5,
      lag: 3,
    };
    const failed = Array.from({ length: 25 }, (_, i) => `run ${i}: the store is gone`);
    const result = new Accounting(ctx, model.startMs).result('governor', {
      violations: [],
      violationCount: 0,
      failedRuns: failed,
    });
    expect(result.failedRuns).toEqual(failed.slice(0, 20));
    expect(result.totals.failedRuns).toBe(25);
  });
});
