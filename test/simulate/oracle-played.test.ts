import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel, MINUTE_MS } from '../../src/emulator/model.js';
import { Accounting } from '../../src/simulate/accounting.js';
import { PolicyView, type PoolInfo, type SimContext } from '../../src/simulate/context.js';
import { WRITES_ORACLE_MINUTES } from '../../src/simulate/result.js';
import type { SimulationInput } from '../../src/simulate/scenario.js';
import { gapClosed, simulate, type Strategy } from '../../src/simulate/simulate.js';
import { fcParams } from '../support/fleet-arbitrary.js';

/**
 * The yardsticks of docs/simulation.md "Baselines", checked without their code, through the
 * simulator's own entry (`simulate`) on fleets built as a fleet file is: every feasible whole-instance cap
 * vector of each window is tried by brute force (each governed service within [floor, ceiling],
 * Σ caps × GPUs within the budget: the fewest GPUs available in the window less the reserve and
 * the unmanaged services' caps), priorities served highest first (lexicographic refusals per
 * tier). The best of them must refuse what the oracle reports; played minute by minute through
 * the fleet model (with a start-up time and an idle tail), the same caps must refuse just that
 * too: the oracle's accounting is the model's. Every minute's split is tried for the clairvoyant
 * oracle. Seeded (FC_SEED), scaled by FC_RUNS_SCALE (test/support/fleet-arbitrary.ts).
 */

const PROJECT = 'sim-project';
const REGION = 'us-central1';
const START = Date.parse('2026-11-24T00:00:00Z');

interface Svc {
  gpus: number;
  priority: number;
  weight: number;
  /** The policy's min. */
  min: number;
  minInstances: number;
  /** The policy's max; null: none. */
  max: number | null;
  managed: boolean;
  /** Its max instances in the fleet (what an unmanaged service keeps). */
  fleetCap: number;
}

interface Case {
  quota: number;
  reserve: number;
  services: Svc[];
  /** Instances wanted, per service per minute. */
  want: number[][];
  tick: number;
  idleMinutes: number;
  startupSeconds: number;
}

const minutesOf = (c: Case) => c.want[0]?.length ?? 0;
const floorOf = (s: Svc) => Math.max(1, s.minInstances, s.min);
const ceilingOf = (s: Svc, quota: number) =>
  Math.max(floorOf(s), Math.min(s.max ?? Infinity, Math.floor(quota / s.gpus)));
const iso = (t: number) => new Date(START + t * MINUTE_MS).toISOString();

function fleetOf(c: Case, caps: readonly number[] = c.services.map((s) => s.fleetCap)) {
  return validateFleet({
    start: iso(0),
    warmupMinutes: 0,
    idleMinutes: c.idleMinutes,
    startupSeconds: c.startupSeconds,
    projects: [
      {
        id: PROJECT,
        pools: [{ region: REGION, quota: c.quota }],
        services: c.services.map((s, i) => ({
          name: `s${i}`,
          region: REGION,
          gpu: { count: s.gpus },
          maxInstances: caps[i],
          minInstances: s.minInstances,
          demand: { steps: (c.want[i] ?? []).map((value, t) => ({ at: iso(t), value })) },
        })),
      },
    ],
  });
}

function policyOf(c: Case) {
  return parsePolicy({
    version: 1,
    projects: [PROJECT],
    reserve: c.reserve,
    services: c.services.map((s, i) =>
      s.managed
        ? {
            match: { name: `s${i}` },
            priority: s.priority,
            weight: s.weight,
            min: s.min,
            ...(s.max === null ? {} : { max: Math.max(s.max, s.min) }),
          }
        : { match: { name: `s${i}` }, managed: false },
    ),
  });
}

async function run(c: Case, strategies: Strategy[]) {
  const input: SimulationInput = {
    label: 'brute',
    fleet: fleetOf(c),
    traces: new Map(),
    hours: null,
  };
  const r = await simulate(input, policyOf(c), {
    hours: minutesOf(c) / 60,
    tickMinutes: c.tick,
    strategies,
    series: false,
  });
  return new Map(r.strategies.map((s) => [s.strategy, s.totals.refusedGpuMinutes]));
}

/** Tier index of a service: unmanaged first, then the governed priorities, highest first. */
function tierOf(c: Case): (i: number) => number {
  const tiers = [...new Set(c.services.filter((s) => s.managed).map((s) => s.priority))].sort(
    (a, b) => b - a,
  );
  return (i) => {
    const s = c.services[i] as Svc;
    return s.managed ? 1 + tiers.indexOf(s.priority) : 0;
  };
}

/** Every integer vector v with lo ≤ v ≤ hi, componentwise. */
function* box(lo: readonly number[], hi: readonly number[]): Generator<number[]> {
  if (lo.length === 0) {
    yield [];
    return;
  }
  for (const rest of box(lo.slice(1), hi.slice(1)))
    for (let x = lo[0] ?? 0; x <= (hi[0] ?? 0); x++) yield [x, ...rest];
}

const better = (a: readonly number[], b: readonly number[] | null) => {
  if (b === null) return true;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return (a[k] ?? 0) < (b[k] ?? 0);
  return false;
};

/**
 * One minute served within the pool: every vector served[i] ≤ through[i] whose GPUs fit the
 * pool, the lexicographically least refusals per tier. Refusals per tier.
 */
function bestMinute(c: Case, t: number, through: readonly number[]): number[] {
  const tier = tierOf(c);
  const tiers = 1 + new Set(c.services.filter((s) => s.managed).map((s) => s.priority)).size;
  let best: number[] | null = null;
  for (const served of box(
    through.map(() => 0),
    through,
  )) {
    if (served.reduce((a, n, i) => a + n * (c.services[i]?.gpus ?? 1), 0) > c.quota) continue;
    const per = new Array<number>(tiers).fill(0);
    c.services.forEach((s, i) => {
      per[tier(i)] = (per[tier(i)] ?? 0) + ((c.want[i]?.[t] ?? 0) - (served[i] ?? 0)) * s.gpus;
    });
    if (better(per, best)) best = per;
  }
  return best ?? [];
}

/** The best caps of window [from, to) by brute force, and their refusals per tier. */
function bestWindow(c: Case, from: number, to: number): { caps: number[]; perTier: number[] } {
  const tier = tierOf(c);
  const tiers = 1 + new Set(c.services.filter((s) => s.managed).map((s) => s.priority)).size;
  const budget =
    c.quota - c.reserve - c.services.reduce((a, s) => a + (s.managed ? 0 : s.fleetCap * s.gpus), 0);
  const lo = c.services.map((s) => (s.managed ? floorOf(s) : s.fleetCap));
  const hi = c.services.map((s) => (s.managed ? ceilingOf(s, c.quota) : s.fleetCap));
  const floors = c.services.reduce((a, s, i) => a + (s.managed ? (lo[i] ?? 0) * s.gpus : 0), 0);
  let best: { caps: number[]; perTier: number[] } | null = null;
  for (const caps of box(lo, hi)) {
    const governed = c.services.reduce(
      (a, s, i) => a + (s.managed ? (caps[i] ?? 0) * s.gpus : 0),
      0,
    );
    // Within the budget; floors above it leave the floors alone feasible.
    if (governed > Math.max(budget, floors)) continue;
    const per = new Array<number>(tiers).fill(0);
    for (let t = from; t < to; t++) {
      const through = c.services.map((_, i) => Math.min(c.want[i]?.[t] ?? 0, caps[i] ?? 0));
      const gpus = through.reduce((a, n, i) => a + n * (c.services[i]?.gpus ?? 1), 0);
      if (gpus > c.quota) {
        bestMinute(c, t, through).forEach((r, k) => (per[k] = (per[k] ?? 0) + r));
        continue;
      }
      c.services.forEach((s, i) => {
        per[tier(i)] = (per[tier(i)] ?? 0) + ((c.want[i]?.[t] ?? 0) - (through[i] ?? 0)) * s.gpus;
      });
    }
    if (best === null || better(per, best.perTier)) best = { caps, perTier: per };
  }
  if (!best) throw new Error('no feasible cap vector');
  return best;
}

function bestSchedule(c: Case, window: number): { refused: number; caps: number[][] } {
  let refused = 0;
  const caps: number[][] = [];
  for (let from = 0; from < minutesOf(c); from += window) {
    const w = bestWindow(c, from, Math.min(minutesOf(c), from + window));
    refused += w.perTier.reduce((a, x) => a + x, 0);
    caps.push(w.caps);
  }
  return { refused, caps };
}

/**
 * The caps of each window played through the fleet model, written at each window's start as a
 * governor's writes land (the model steps minute t with the caps in force before it). Refused
 * GPU-minutes as the model counts them (above the cap, and no free GPU).
 */
function played(c: Case, window: number, caps: readonly number[][]): number {
  return playedSchedule(c, (t) => (t % window === 0 ? (caps[t / window] ?? null) : null));
}

/** A schedule of caps played through the fleet model: `capsAt(t)` is written before minute t. */
function playedSchedule(c: Case, capsAt: (t: number) => readonly number[] | null): number {
  const model = new FleetModel(fleetOf(c, capsAt(0) ?? undefined), { historyMinutes: 10 });
  for (let t = 1; t < minutesOf(c); t++) {
    capsAt(t)?.forEach((cap, i) =>
      model.update({ project: PROJECT, region: REGION, name: `s${i}` }, { maxInstances: cap }),
    );
    model.advanceTo(START + t * MINUTE_MS);
  }
  return model
    .listServices()
    .reduce((a, s) => a + s.refused.capGpuMinutes + s.refused.quotaGpuMinutes, 0);
}

function bestClairvoyant(c: Case): number {
  let refused = 0;
  for (let t = 0; t < minutesOf(c); t++) {
    const through = c.services.map((s, i) =>
      Math.min(c.want[i]?.[t] ?? 0, s.managed ? Infinity : s.fleetCap),
    );
    refused += bestMinute(c, t, through).reduce((a, x) => a + x, 0);
  }
  return refused;
}

const caseArb = (gpus: fc.Arbitrary<number>, windows: { tick: number; count: number } | null) =>
  fc
    .record({
      n: fc.integer({ min: 2, max: 4 }),
      tick: fc.integer({ min: 2, max: 5 }),
      ticks: fc.integer({ min: 1, max: 3 }),
      quota: fc.integer({ min: 2, max: 6 }),
      reserve: fc.constantFrom(0, 0, 1),
      unmanaged: fc.boolean(),
      idleMinutes: fc.integer({ min: 0, max: 2 }),
      startupSeconds: fc.constantFrom(0, 20, 90),
    })
    .chain((k) => {
      const minutes = windows ? windows.tick * windows.count : k.tick * k.ticks;
      return fc
        .record({
          services: fc.array(
            fc.record({
              gpus,
              priority: fc.constantFrom(0, 5, 10),
              weight: fc.constantFrom(1, 2),
              min: fc.integer({ min: 0, max: 2 }),
              minInstances: fc.integer({ min: 0, max: 1 }),
              max: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
              managed: fc.constant(true),
              fleetCap: fc.integer({ min: 1, max: 3 }),
            }),
            { minLength: k.n, maxLength: k.n },
          ),
          want: fc.array(
            fc.array(fc.integer({ min: 0, max: 5 }), { minLength: minutes, maxLength: minutes }),
            { minLength: k.n, maxLength: k.n },
          ),
        })
        .map(({ services, want }): Case => ({
          quota: k.quota,
          reserve: k.reserve,
          services: services.map((s, i) => ({ ...s, managed: !(k.unmanaged && i === 0) })),
          want,
          tick: windows ? windows.tick : k.tick,
          idleMinutes: k.idleMinutes,
          startupSeconds: k.startupSeconds,
        }));
    });

/** The caps of every window fit the pool: the model then refuses only above the caps. */
const fits = (c: Case, caps: readonly number[][]) =>
  caps.every((v) => v.reduce((a, n, i) => a + n * (c.services[i]?.gpus ?? 1), 0) <= c.quota);

describe('the oracles against brute force, through simulate() and the fleet model', () => {
  for (const [label, gpus] of [
    ['one GPU an instance', fc.constant(1)],
    ['one or two GPUs an instance', fc.integer({ min: 1, max: 2 })],
  ] as const) {
    it(`the best at the tick refuses what the best cap vectors do, played or not, ${label}`, async () => {
      await fc.assert(
        fc.asyncProperty(caseArb(gpus, null), async (c) => {
          const got = await run(c, ['cadence-oracle', 'oracle']);
          const best = bestSchedule(c, c.tick);
          expect(got.get('cadence-oracle')).toBe(best.refused);
          if (fits(c, best.caps)) expect(played(c, c.tick, best.caps)).toBe(best.refused);
          expect(got.get('oracle')).toBe(bestClairvoyant(c));
        }),
        fcParams(150),
      );
    });
  }

  it('the writes-limited best refuses what the best cap vectors of 30 minutes do', async () => {
    await fc.assert(
      fc.asyncProperty(
        caseArb(fc.constant(1), { tick: WRITES_ORACLE_MINUTES, count: 2 }).map((c) => ({
          ...c,
          tick: 5,
        })),
        async (c) => {
          const got = await run(c, ['writes-oracle']);
          const best = bestSchedule(c, WRITES_ORACLE_MINUTES);
          expect(got.get('writes-oracle')).toBe(best.refused);
          if (fits(c, best.caps))
            expect(played(c, WRITES_ORACLE_MINUTES, best.caps)).toBe(best.refused);
        },
      ),
      fcParams(40),
    );
  });
});

const svcOf = (priority: number, more: Partial<Svc> = {}): Svc => ({
  gpus: 1,
  priority,
  weight: 1,
  min: 0,
  minInstances: 0,
  max: null,
  managed: true,
  fleetCap: 1,
  ...more,
});

/** Five minutes of n instances, for each n in turn. */
/** Service `s<i>` of the test pool as the accounting sees it: one GPU, at `fleetCap`. */
const memberOf = (i: number, fleetCap: number): PoolInfo['members'][number] => ({
  id: `${PROJECT}/${REGION}/s${i}`,
  name: `s${i}`,
  project: PROJECT,
  region: REGION,
  gpus: 1,
  labels: {},
  accelerator: 'nvidia-l4',
  minInstances: 0,
  fleetCap,
});

/** The test pool, quota 4, all of it for its members. */
const poolOf = (members: PoolInfo['members']): PoolInfo => ({
  id: { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true },
  key: 'pool',
  quota: 4,
  available: 4,
  changes: [],
  members,
});

const fives = (...ns: number[]) => ns.flatMap((n) => new Array<number>(5).fill(n));

describe('the headline metrics on a pool checked by hand', () => {
  // Quota 4, ticks of 5 minutes over 15. s0 (priority 10) wants 3, 1, 3 in the three ticks, s1
  // (priority 0) 1, 3, 1: 4 GPUs every minute. The fleet's caps are 1 and 3.
  const c: Case = {
    quota: 4,
    reserve: 0,
    services: [svcOf(10), svcOf(0, { fleetCap: 3 })],
    want: [fives(3, 1, 3), fives(1, 3, 1)],
    tick: 5,
    idleMinutes: 0,
    startupSeconds: 0,
  };

  it('refused GPU-minutes, by priority, and the gap closed', async () => {
    const input: SimulationInput = {
      label: 'hand',
      fleet: fleetOf(c),
      traces: new Map(),
      hours: null,
    };
    const r = await simulate(input, policyOf(c), {
      hours: 0.25,
      tickMinutes: 5,
      series: false,
      strategies: [
        'governor',
        'equal-split',
        'fleet-caps',
        'over-commit',
        'oracle',
        'cadence-oracle',
        'writes-oracle',
      ],
    });
    const get = (k: Strategy) => r.strategies.find((s) => s.strategy === k);
    const byService = (k: Strategy) => get(k)?.services.map((s) => s.refusedGpuMinutes);
    // Equal split, caps 2 and 2: s0 short 1 for 10 minutes, s1 1 for 5.
    expect(byService('equal-split')).toEqual([10, 5]);
    // The fleet's caps 1 and 3: s0 short 2 for 10 minutes.
    expect(byService('fleet-caps')).toEqual([20, 0]);
    // Over-commit: caps 4 and 4, the pool holds the 4 wanted every minute.
    expect(byService('over-commit')).toEqual([0, 0]);
    // Both oracles follow the demand exactly.
    expect(byService('oracle')).toEqual([0, 0]);
    expect(byService('cadence-oracle')).toEqual([0, 0]);
    // One window of 30 minutes: s0 (priority 10) gets 3 (its 2nd and 3rd serve 10 minutes), s1
    // keeps 1 and is short 2 for 5 minutes.
    expect(byService('writes-oracle')).toEqual([0, 10]);
    // The priority each refusal is counted at.
    expect(get('equal-split')?.services.map((s) => s.priority)).toEqual([10, 0]);
    // Gap closed: (equal split − strategy) ÷ (equal split − best at the tick) = (15 − 10) ÷ 15.
    expect(gapClosed(15, 10, 0)).toBeCloseTo(1 / 3, 12);
    expect(gapClosed(15, 20, 0)).toBeCloseTo(-1 / 3, 12);
    expect(gapClosed(0, 0, 0)).toBeNull();
    const g = get('governor')?.totals.refusedGpuMinutes ?? NaN;
    expect(r.headline?.gapClosed).toBeCloseTo((15 - g) / 15, 12);
    expect(r.headline?.gapClosedClairvoyant).toBeCloseTo((15 - g) / 15, 12);
    expect(r.headline?.refusedVsEqualSplit).toBeCloseTo(g / 15, 12);
  });
});

describe('reversals as docs/simulation.md "Metrics" defines them, by hand', () => {
  /**
   * One service over an hour whose cap is 2, lowered to 1 at minute 10 and raised to 2 at minute
   * `raisedAt`; `refusedAt`: a minute it is refused (at its cap, or for want of a GPU).
   */
  function reversals(raisedAt: number, refusedAt: { minute: number; atCap: boolean } | null) {
    const one: Case = {
      quota: 4,
      reserve: 0,
      services: [svcOf(0)],
      want: [new Array<number>(60).fill(1)],
      tick: 5,
      idleMinutes: 0,
      startupSeconds: 0,
    };
    const policy = policyOf(one);
    const member = memberOf(0, 2);
    const pool = poolOf([member]);
    const ctx: SimContext = {
      input: { label: 'hand', fleet: fleetOf(one), traces: new Map(), hours: null },
      policy,
      options: { hours: 1, series: false },
      pools: [pool],
      want: new Map([[member.id, new Int32Array(60).fill(1)]]),
      ideal: new Map(),
      view: new PolicyView(policy),
      startMs: START,
      minutes: 60,
      tick: 5,
      lag: 3,
    };
    const acc = new Accounting(ctx, START);
    for (let t = 0; t < 60; t++) {
      const cap = t >= 10 && t < raisedAt ? 1 : 2;
      const refused = refusedAt?.minute === t ? 1 : 0;
      acc.minute(pool, t, [
        {
          member,
          want: 1 + refused,
          cap,
          served: 1,
          refused,
          refusedCap: refusedAt?.atCap ? refused : 0,
          idle: 0,
        },
      ]);
    }
    const result = acc.result('fleet-caps', {
      violations: [],
      violationCount: null,
      failedRuns: [],
    });
    return { count: result.services[0]?.reversals, perDay: result.totals.reversalsPerServiceDay };
  }

  it('counts a raise 30 minutes after the lowering, not 31', () => {
    // One reversal of one service in one hour: 24 a service a day.
    expect(reversals(40, null)).toEqual({ count: 1, perDay: 24 });
    expect(reversals(41, null)).toEqual({ count: 0, perDay: 0 });
  });

  it('does not count a raise after the service was refused at its lowered cap', () => {
    expect(reversals(30, { minute: 20, atCap: true }).count).toBe(0);
    // Refused for want of a GPU only: the lowered cap did not refuse it.
    expect(reversals(30, { minute: 20, atCap: false }).count).toBe(1);
  });
});

describe('share error, priority inversions and caps over quota as docs/simulation.md "Metrics" defines them, by hand', () => {
  // Two services in a pool of 4 GPUs, each at floor 1: s0 at priority 10, s1 at priority 0.
  // Each minute, per service: [want, cap, served, refused at the cap] (instances = GPUs).
  type Row = [want: number, cap: number, served: number, refused: number];
  const minutes: { s0: Row; s1: Row; ideal: [number, number] }[] = [
    // s0 refused with every GPU under a cap, s1 holding 2 it does not use: an inversion.
    { s0: [3, 2, 2, 1], s1: [0, 2, 0, 0], ideal: [3, 0] },
    // Demand equal to the pool's GPUs: not scarce.
    { s0: [2, 2, 2, 0], s1: [2, 2, 2, 0], ideal: [2, 2] },
    // Scarce (5 > 4): served 2 + 2 against the split 3 + 1, half of 2 over 4 GPUs, 0.25; s1's
    // cap is its demand: no inversion.
    { s0: [3, 2, 2, 1], s1: [2, 2, 2, 0], ideal: [3, 1] },
    // s0 refused with a GPU no cap covers (caps 3 + refused 1 = 4): it need not come from s1.
    { s0: [2, 1, 1, 1], s1: [0, 2, 0, 0], ideal: [2, 0] },
    // Caps 3 + 2 above the 4 GPUs.
    { s0: [1, 3, 1, 0], s1: [1, 2, 1, 0], ideal: [1, 1] },
    // s1 refused while the higher priority holds cap it does not use: no inversion.
    { s0: [0, 3, 0, 0], s1: [2, 1, 1, 1], ideal: [0, 2] },
  ];
  const two: Case = {
    quota: 4,
    reserve: 0,
    services: [svcOf(10), svcOf(0)],
    want: [minutes.map((m) => m.s0[0]), minutes.map((m) => m.s1[0])],
    tick: 5,
    idleMinutes: 0,
    startupSeconds: 0,
  };
  const members = [0, 1].map((i) => memberOf(i, 1));
  const pool = poolOf(members);

  /** The pool's metrics of `rows` accounted minute by minute for the services of `c`. */
  function account(c: Case, rows: readonly { s0: Row; s1: Row; ideal: [number, number] }[]) {
    const policy = policyOf(c);
    const column = (i: number, f: (m: (typeof rows)[number]) => number) =>
      [members[i]?.id ?? '', Int32Array.from(rows.map(f))] as const;
    const ctx: SimContext = {
      input: { label: 'hand', fleet: fleetOf(c), traces: new Map(), hours: null },
      policy,
      options: { hours: rows.length / 60, series: false },
      pools: [pool],
      want: new Map([column(0, (m) => m.s0[0]), column(1, (m) => m.s1[0])]),
      ideal: new Map([column(0, (m) => m.ideal[0]), column(1, (m) => m.ideal[1])]),
      view: new PolicyView(policy),
      startMs: START,
      minutes: rows.length,
      tick: 5,
      lag: 3,
    };
    const acc = new Accounting(ctx, START);
    rows.forEach((m, t) => {
      acc.minute(
        pool,
        t,
        [m.s0, m.s1].map(([want, cap, served, refused], i) => ({
          member: members[i] as (typeof members)[number],
          want,
          cap,
          served,
          refused,
          refusedCap: refused,
          idle: 0,
        })),
      );
    });
    return acc.result('fleet-caps', { violations: [], violationCount: null, failedRuns: [] })
      .pools[0];
  }

  it('counts each minute as the definitions say', () => {
    expect(account(two, minutes)).toMatchObject({
      scarceMinutes: 1,
      shareError: 0.25,
      priorityInversions: 1,
      capsOverQuotaMinutes: 1,
    });
  });

  it('counts no inversion for cap held at the floor, nor for cap held at the same priority', () => {
    // s0 refused, the caps 3 + 1 and the refusal above the 4 GPUs, but s1 holds only its floor.
    const atFloor = [
      { s0: [4, 3, 3, 1] as Row, s1: [0, 1, 0, 0] as Row, ideal: [4, 0] as [number, number] },
    ];
    expect(account(two, atFloor)?.priorityInversions).toBe(0);
    // The first minute above, an inversion at priorities 10 and 0, with both at priority 5.
    const level: Case = { ...two, services: [svcOf(5), svcOf(5)] };
    expect(account(level, minutes.slice(0, 1))?.priorityInversions).toBe(0);
  });
});

describe('priority inversions in a large pool', () => {
  /**
   * `n` services refused at their cap of 1 every minute for `minutes`, in one pool of 4 GPUs, under
   * one rule; `slack`: the last, at priority −1 where the others are at 0, holds a cap of 2 it does
   * not use.
   */
  function inversions(n: number, minutes: number, slack: boolean) {
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      services: [
        { match: { name: `s${n - 1}` }, priority: slack ? -1 : 0 },
        { match: {}, priority: 0 },
      ],
    });
    const members = Array.from({ length: n }, (_, i) => memberOf(i, 1));
    const pool = poolOf(members);
    const one: Case = {
      quota: 4,
      reserve: 0,
      services: [svcOf(0)],
      want: [[1]],
      tick: 5,
      idleMinutes: 0,
      startupSeconds: 0,
    };
    const ctx: SimContext = {
      input: { label: 'hand', fleet: fleetOf(one), traces: new Map(), hours: null },
      policy,
      options: { hours: minutes / 60, series: false },
      pools: [pool],
      want: new Map(members.map((m) => [m.id, new Int32Array(minutes).fill(2)])),
      ideal: new Map(),
      view: new PolicyView(policy),
      startMs: START,
      minutes,
      tick: 5,
      lag: 3,
    };
    const acc = new Accounting(ctx, START);
    const rows = members.map((member, i) =>
      slack && i === n - 1
        ? { member, want: 0, cap: 2, served: 0, refused: 0, refusedCap: 0, idle: 0 }
        : { member, want: 2, cap: 1, served: 1, refused: 1, refusedCap: 1, idle: 0 },
    );
    const started = Date.now();
    for (let t = 0; t < minutes; t++) acc.minute(pool, t, rows);
    const took = Date.now() - started;
    const result = acc.result('fleet-caps', {
      violations: [],
      violationCount: null,
      failedRuns: [],
    });
    return { count: result.pools[0]?.priorityInversions, took };
  }

  it('are found in time that grows with the services, not with their square', () => {
    // Before: each refused service was held against every other, every minute: 3,000 services of
    // one priority cost 9 million comparisons a minute, and a simulation of 5,000 services over two
    // hours, within the most a simulation plays, ran for hours.
    const level = inversions(3_000, 20, false);
    expect(level.count).toBe(0);
    expect(level.took).toBeLessThan(2_000);
    // The lower priority holding cap it does not use is still found, every minute.
    expect(inversions(3_000, 20, true).count).toBe(20);
    expect(inversions(3, 3, true).count).toBe(3);
  });
});

describe('the writes-limited best', () => {
  it('is the best with caps changed every 30 minutes, not of every schedule of two writes an hour', async () => {
    // Quota 3, two services at floor 1: one GPU to move. s0 wants 2 from minute 10 to 39, s1
    // from 0 to 9 and from 40 on. On the half hour the best is s0 in the first half (s1 short
    // 10 minutes), s1 in the second (s0 short 10): 20 GPU-minutes, one write each.
    const c: Case = {
      quota: 3,
      reserve: 0,
      services: [svcOf(0), svcOf(0)],
      want: [
        Array.from({ length: 60 }, (_, t) => (t >= 10 && t < 40 ? 2 : 1)),
        Array.from({ length: 60 }, (_, t) => (t < 10 || t >= 40 ? 2 : 1)),
      ],
      tick: 5,
      idleMinutes: 0,
      startupSeconds: 0,
    };
    const input: SimulationInput = {
      label: 'hand',
      fleet: fleetOf(c),
      traces: new Map(),
      hours: null,
    };
    const r = await simulate(input, policyOf(c), {
      hours: 1,
      tickMinutes: 5,
      series: false,
      strategies: ['writes-oracle'],
    });
    expect(r.strategies[0]?.totals.refusedGpuMinutes).toBe(20);
    expect(r.strategies[0]?.services.map((s) => s.writes)).toEqual([1, 1]);
    // Writes at minutes 10 and 40 instead, two a service in the hour, refuse nothing.
    const schedule = (t: number) => (t === 0 || t === 40 ? [1, 2] : t === 10 ? [2, 1] : null);
    expect(playedSchedule(c, schedule)).toBe(0);
  });
});
