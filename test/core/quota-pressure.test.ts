import { describe, expect, it } from 'vitest';
import { plan } from '../../src/core/planner.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { Plan } from '../../src/core/plan.js';
import {
  LEDGER_DAYS,
  MAX_GAP_MINUTES,
  newestLedger,
  PressureLedger,
  type PressureDay,
  adoptLedger,
  adoptQuotas,
  lookAtOtherUnits,
  poolWanted,
  regionOfLedger,
  quotaJustification,
  recommendQuotas,
  rollPressure,
} from '../../src/core/quota-pressure.js';
import type { Snapshot, SnapshotService } from '../../src/core/snapshot.js';
import { MAX_CLOCK_SKEW_MS } from '../../src/core/duration.js';
import { checkRunRecord } from '../../src/ports/index.js';
import { quietRun } from '../support/fixtures.js';

/** Pressure from the runs' records: the ledger each run rolls, and the quota it argues for. */

const HOT = 'acme/us-central1/nvidia-l4/zonal';
const CALM = 'acme/europe-west4/nvidia-l4/zonal';

function svc(region: string, name: string, max: number, used: number, at: string) {
  const s: SnapshotService = {
    project: 'acme',
    region,
    accelerator: 'nvidia-l4',
    zonalRedundancy: true,
    name,
    gpusPerInstance: 1,
    labels: {},
    maxInstances: max,
    minInstances: 0,
    reconciling: false,
    etag: `etag-${name}`,
    lastChangedAt: null,
    usage: {
      current: used,
      peak: used,
      sampledAt: at,
      ...(used > 0 && used >= max ? { saturated: true } : {}),
    },
  };
  return s;
}

const policy = parsePolicy({
  version: 1,
  projects: ['acme'],
  defaults: { headroom: 0.2 },
  services: [{ match: {} }],
});

/** A pool of project acme (nvidia-l4, zonal redundancy) with its quota. */
function acmePool(region: string, quota: number): Snapshot['pools'][number] {
  return { project: 'acme', region, accelerator: 'nvidia-l4', zonalRedundancy: true, quota };
}

/** Two pools: us-central1 (quota 4) with two services each at their cap; europe-west4 calm. */
function runPlan(at: string, hot = true): Plan {
  const snapshot: Snapshot = {
    version: 1,
    takenAt: at,
    pools: [acmePool('us-central1', 4), acmePool('europe-west4', 8)],
    services: [
      svc('us-central1', 'llm-a', 2, hot ? 2 : 0, at),
      svc('us-central1', 'llm-b', 2, hot ? 2 : 0, at),
      svc('europe-west4', 'quiet', 2, 1, at),
    ],
    unmanagedUsage: [],
  };
  return plan(snapshot, policy, at, { runId: `run-${at}` });
}

const iso = (ms: number) => new Date(ms).toISOString();
const T0 = Date.parse('2026-11-23T00:00:00.000Z');

/** Runs every `everyMin` minutes for `hours`, from T0, hot while `hot(ms)` says so. */
function week(hours: number, everyMin: number, hot: (ms: number) => boolean = () => true) {
  let ledger: PressureLedger | undefined;
  let at = T0;
  for (let ms = T0; ms <= T0 + hours * 3_600_000; ms += everyMin * 60_000) {
    ledger = rollPressure(ledger, runPlan(iso(ms), hot(ms)), 'acme', policy);
    at = ms;
  }
  return { ledger: PressureLedger.parse(ledger), at: iso(at) };
}

describe('the pressure ledger', () => {
  it('a pool whose services run at their caps wants more than its budget', () => {
    const p = runPlan(iso(T0));
    const hot = p.pools.find((x) => x.region === 'us-central1');
    expect(hot?.budget).toBe(4);
    // Each service at its cap of 2 asks for more (twice the headroom): 3 each, 6 in all.
    expect(poolWanted(p, HOT, policy)).toBeGreaterThan(4);
    expect(poolWanted(p, CALM, policy)).toBeLessThan(8);
    expect(poolWanted(p, 'nobody/x/y/zonal', policy)).toBe(0);
  });

  it("counts demand cut off by the quota's ceiling as wanted, not demand a policy max holds back", () => {
    // "capped" runs at its cap of 2 and asks for 3; "idle" holds its floor of 1.
    const policyOf = (rules: object[]) =>
      parsePolicy({ version: 1, projects: ['acme'], defaults: { headroom: 0.2 }, services: rules });
    const pool = (quota: number, rules: object[]) => (at: string) => {
      const snapshot: Snapshot = {
        version: 1,
        takenAt: at,
        pools: [acmePool('us-central1', quota)],
        services: [svc('us-central1', 'capped', 2, 2, at), svc('us-central1', 'idle', 1, 0, at)],
        unmanagedUsage: [],
      };
      return plan(snapshot, policyOf(rules), at, { runId: `run-${at}` });
    };
    const day = (planAt: (at: string) => Plan, rules: object[]) => {
      let ledger: PressureLedger | undefined;
      for (let ms = T0; ms <= T0 + 26 * 3_600_000; ms += 5 * 60_000)
        ledger = rollPressure(ledger, planAt(iso(ms)), 'acme', policyOf(rules));
      return recommendQuotas(ledger, iso(T0 + 26 * 3_600_000))[0];
    };
    // The policy holds "capped" at 2: a quota of 4 would leave it at 2 all the same, so the pool
    // (demand 3, its budget 3) is under no pressure a quota request could relieve.
    const heldRules = [{ match: { name: 'capped' }, max: 2 }, { match: {} }];
    const held = pool(3, heldRules);
    const first = held(iso(T0));
    expect(first.services.find((s) => s.name === 'capped')?.why.atCeiling?.set).toBe('rule');
    expect(poolWanted(first, HOT, policyOf(heldRules))).toBe(first.pools[0]?.demand);
    expect(day(held, heldRules)).toMatchObject({ status: 'no-pressure', refusedGpuMinutes: 0 });
    // A quota of 2 holds it instead (its ceiling is the quota ÷ GPUs per instance): that is wanted.
    const shortRules = [{ match: {} }];
    const short = pool(2, shortRules);
    const cut = short(iso(T0));
    expect(cut.services.find((s) => s.name === 'capped')?.why.atCeiling?.set).toBe('quota');
    expect(poolWanted(cut, HOT, policyOf(shortRules))).toBe((cut.pools[0]?.demand ?? 0) + 1);
    expect(day(short, shortRules)).toMatchObject({ status: 'recommend' });
  });

  it('counts no demand above a max the policy or its window sets, where the quota holds it lower', () => {
    // "a" runs at its cap of 4 (the quota's ceiling) and asks for far more; the policy's max of 5
    // holds it at 5 whatever the quota: a quota of 5 is all it could use.
    const at = iso(T0);
    const snapshot: Snapshot = {
      version: 1,
      takenAt: at,
      pools: [acmePool('us-central1', 4)],
      services: [svc('us-central1', 'a', 4, 4, at)],
      unmanagedUsage: [],
    };
    const wantedUnder = (rule: object) => {
      const ruled = parsePolicy({
        version: 1,
        projects: ['acme'],
        defaults: { headroom: 1 },
        services: [rule],
      });
      const p = plan(snapshot, ruled, at, { runId: 'r' });
      const s = p.services[0];
      expect(s?.why.atCeiling?.set ?? s?.why.floorAboveCeiling?.wins).toBe('quota');
      expect(s?.demand).toBeGreaterThan(6);
      return poolWanted(p, HOT, ruled);
    };
    expect(wantedUnder({ match: {} })).toBeGreaterThan(5);
    expect(wantedUnder({ match: {}, max: 5 })).toBe(5);
    // A schedule window in force sets the max the same way (T0 is a Monday, 00:00 UTC).
    expect(wantedUnder({ match: {}, schedule: [{ start: '00:00', end: '23:59', max: 5 }] })).toBe(
      5,
    );
    // So does a max where the policy's floor is above the quota's ceiling (the quota wins it).
    expect(wantedUnder({ match: {}, min: 5, max: 5 })).toBe(5);
  });

  it('counts each minute of the clock once, however often the runs come', () => {
    // Runs closer than a minute apart (a retried run, two triggers in one minute) count neither
    // twice nor nothing: the minutes a day covers are the minutes of the clock its runs spanned.
    for (const everyS of [20, 29, 30, 45, 61]) {
      let ledger = rollPressure(undefined, runPlan(iso(T0)), 'acme', policy);
      let last = T0;
      for (let ms = T0 + everyS * 1000; ms <= T0 + 3_600_000; ms += everyS * 1000) {
        ledger = rollPressure(ledger, runPlan(iso(ms)), 'acme', policy);
        last = ms;
      }
      const spanned = Math.floor((last - T0) / 60_000);
      expect(ledger.pools[HOT]?.days[0]?.minutes, `every ${everyS} s`).toBe(spanned);
      expect(ledger.pools[HOT]?.days[0]?.minutesAtBudget, `every ${everyS} s`).toBe(spanned);
    }
  });

  it("cuts days at UTC midnight across a year end, on the runs' own clock", () => {
    // Runs every 5 minutes from 23:30 UTC on New Year's Eve; each counts the minutes since the
    // run before it on the day it runs.
    const start = Date.parse('2026-12-31T23:30:00.000Z');
    let ledger = rollPressure(undefined, runPlan(iso(start)), 'acme', policy);
    for (let ms = start + 5 * 60_000; ms <= start + 60 * 60_000; ms += 5 * 60_000)
      ledger = rollPressure(ledger, runPlan(iso(ms)), 'acme', policy);
    expect(ledger.pools[HOT]?.days.map((d) => [d.day, d.minutes])).toEqual([
      ['2026-12-31', 25],
      ['2027-01-01', 35],
    ]);
    // Read on 2027-01-06 a 7-day window still holds both years' days; on 2027-01-07 it does not.
    const at = (d: string) =>
      recommendQuotas(ledger, `${d}T12:00:00.000Z`).find((r) => r.key === HOT)?.daysSeen;
    expect(at('2027-01-06')).toBe(2);
    expect(at('2027-01-07')).toBe(1);
  });

  it('counts the time between runs, 0 for the first, at most MAX_GAP_MINUTES for a gap', () => {
    const first = rollPressure(undefined, runPlan(iso(T0)), 'acme', policy);
    expect(first.pools[HOT]?.days[0]?.minutes).toBe(0);
    expect(first.pools[HOT]?.days[0]?.peakWanted).toBeGreaterThan(4);
    const next = rollPressure(first, runPlan(iso(T0 + 5 * 60_000)), 'acme', policy);
    expect(next.pools[HOT]?.days[0]).toMatchObject({ minutes: 5, minutesAtBudget: 5 });
    expect(next.pools[CALM]?.days[0]).toMatchObject({ minutes: 5, minutesAtBudget: 0 });
    expect(next.pools[CALM]?.days[0]?.refusedGpuMinutes).toBe(0);
    const wanted = poolWanted(runPlan(iso(T0)), HOT, policy);
    expect(next.pools[HOT]?.days[0]?.refusedGpuMinutes).toBe((wanted - 4) * 5);
    const late = rollPressure(next, runPlan(iso(T0 + 6 * 3_600_000)), 'acme', policy);
    expect(late.pools[HOT]?.days[0]?.minutes).toBe(5 + MAX_GAP_MINUTES);
  });

  it('refuses a ledger whose key names another pool than its fields, or whose days disagree', () => {
    const { ledger } = week(48, 60);
    const hot = ledger.pools[HOT];
    if (hot === undefined) throw new Error('no hot pool');
    // The rows of us-central1 filed under the key of another region: rolled forward under the key
    // but recommended (and filed) for the fields, one pool's history would land on another.
    const moved = { ...ledger, pools: { [CALM]: hot } };
    const issues = PressureLedger.safeParse(moved).error?.issues ?? [];
    expect(issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      [`pools.${CALM}`, `is the key of another pool than its fields name (${HOT})`],
    ]);
    const [first, second] = hot.days;
    if (first === undefined || second === undefined) throw new Error('two days expected');
    const twice = { ...ledger, pools: { [HOT]: { ...hot, days: [second, first] } } };
    expect(PressureLedger.safeParse(twice).error?.issues.map((i) => i.path.join('.'))).toEqual([
      `pools.${HOT}.days.1.day`,
    ]);
    // The same day twice, in order or not, is not one row a day either.
    const same = { ...ledger, pools: { [HOT]: { ...hot, days: [first, first] } } };
    expect(PressureLedger.safeParse(same).error?.issues.map((i) => i.message)).toEqual([
      `is not after the row before it (${first.day}): one row a day, oldest first`,
    ]);
    const over = { ...first, minutesAtBudget: first.minutes + 1 };
    const wrong = { ...ledger, pools: { [HOT]: { ...hot, days: [over] } } };
    expect(PressureLedger.safeParse(wrong).error?.issues.map((i) => i.message)).toEqual([
      `is more than the day's minutes (${first.minutes})`,
    ]);
    // What the runs themselves roll is consistent.
    expect(PressureLedger.safeParse(ledger).success).toBe(true);
  });

  it('refuses a row dated after the ledger itself, which no run writes and none would age out', () => {
    const { ledger } = week(2, 60);
    const hot = ledger.pools[HOT];
    const [first] = hot?.days ?? [];
    if (hot === undefined || first === undefined) throw new Error('a row expected');
    // The ledger is of 2026-11-23; a row of 2026-11-30 would wait there, kept by every roll, and
    // count as that day's evidence once it came: a week of pressure no run saw.
    const planted = { ...first, day: '2026-11-30', minutes: 1440, minutesAtBudget: 1440 };
    const forged = { ...ledger, pools: { [HOT]: { ...hot, days: [first, planted] } } };
    expect(
      PressureLedger.safeParse(forged).error?.issues.map((i) => [i.path.join('.'), i.message]),
    ).toEqual([
      [`pools.${HOT}.days.1.day`, 'is after the day of the ledger (2026-11-23): no run wrote it'],
    ]);
    // A row of the ledger's own day is what the runs write; an offset on its time is read as UTC.
    const late = { ...ledger, at: '2026-11-23T22:30:00.000-02:00' };
    const nextDay = { ...first, day: '2026-11-24' };
    expect(
      PressureLedger.safeParse({ ...late, pools: { [HOT]: { ...hot, days: [first, nextDay] } } })
        .success,
    ).toBe(true);
  });

  it("refuses a tracked request naming another project's preference, and every hostile variant, each with one line naming it", () => {
    const { ledger } = week(2, 60);
    const request = {
      name: 'projects/acme/locations/global/quotaPreferences/gpu-governor-us-central1-1a2b3c4d',
      quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
      preferredValue: 8,
      from: 4,
      filedAt: '2026-11-27T11:00:00.000Z',
      by: 'governor',
      state: 'pending',
      decidedAt: null,
      grantedValue: null,
      stateDetail: '',
      traceId: '',
    };
    const withRequests = (requests: unknown) => ({ ...ledger, requests });
    const at = (over: object, key = HOT) => withRequests({ [key]: { ...request, ...over } });
    // The governor's own, by project id or by the project number Google may answer with.
    expect(PressureLedger.safeParse(at({})).success).toBe(true);
    const byNumber = { name: 'projects/123456789012/locations/global/quotaPreferences/x-1' };
    expect(PressureLedger.safeParse(at(byNumber)).success).toBe(true);
    const refused: [string, unknown, string, RegExp][] = [
      [
        'another project',
        at({ name: 'projects/other/locations/global/quotaPreferences/theirs' }),
        `requests.${HOT}.name`,
        /names a preference of project "other", not of "acme"/,
      ],
      [
        'oversized name',
        at({ name: `projects/acme/${'x'.repeat(10_000)}` }),
        `requests.${HOT}.name`,
        /300/,
      ],
      ['a name of another type', at({ name: 5 }), `requests.${HOT}.name`, /string/],
      [
        'a ".." id',
        at({ name: 'projects/acme/locations/global/quotaPreferences/..' }),
        `requests.${HOT}.name`,
        /must look like projects\/PROJECT/,
      ],
      [
        'extra segments',
        at({ name: 'projects/acme/locations/global/quotaPreferences/a/b' }),
        `requests.${HOT}.name`,
        /must look like/,
      ],
      [
        'a location other than global',
        at({ name: 'projects/acme/locations/us-central1/quotaPreferences/a' }),
        `requests.${HOT}.name`,
        /must look like/,
      ],
      [
        'a project that is no project id',
        at({ name: 'projects/../locations/global/quotaPreferences/a' }),
        `requests.${HOT}.name`,
        /must look like/,
      ],
      ['a key that is no pool key', at({}, 'acme/../x'), 'requests.acme/../x', /not a pool key/],
      ['a quota id with a slash', at({ quotaId: 'a/b' }), `requests.${HOT}.quotaId`, /quota id/],
      [
        'an oversized quota id',
        at({ quotaId: 'Q'.repeat(101) }),
        `requests.${HOT}.quotaId`,
        /quota id/,
      ],
      [
        'a value of another type',
        at({ preferredValue: '8' }),
        `requests.${HOT}.preferredValue`,
        /number/,
      ],
      [
        'an oversized state detail',
        at({ stateDetail: 'x'.repeat(2001) }),
        `requests.${HOT}.stateDetail`,
        /2000/,
      ],
      ['requests of another type', withRequests('x'), 'requests', /record|object/],
    ];
    for (const [what, value, path, why] of refused) {
      const issues = PressureLedger.safeParse(value).error?.issues ?? [];
      expect(issues.length, what).toBeGreaterThan(0);
      expect(issues[0]?.path.join('.'), what).toBe(path);
      expect(issues[0]?.message, what).toMatch(why);
      for (const i of issues) {
        expect(i.message, what).not.toContain('\n');
        expect(i.message.length, what).toBeLessThan(400);
      }
    }
  });

  it('ignores a plan older than the ledger, and other projects', () => {
    const a = rollPressure(undefined, runPlan(iso(T0 + 60_000)), 'acme', policy);
    expect(rollPressure(a, runPlan(iso(T0)), 'acme', policy)).toBe(a);
    // However little older: a ledger never goes back in time, or the next run counts again.
    expect(rollPressure(a, runPlan(iso(T0 + 60_000 - 1)), 'acme', policy)).toBe(a);
    expect(rollPressure(undefined, runPlan(iso(T0)), 'other', policy).pools).toEqual({});
  });

  it('ignores a ledger dated beyond the plan plus the clock skew, instead of copying it for good', () => {
    const real = rollPressure(undefined, runPlan(iso(T0)), 'acme', policy);
    const requests = {
      [HOT]: {
        name: 'projects/acme/locations/global/quotaPreferences/hot',
        quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
        preferredValue: 8,
        from: 4,
        filedAt: iso(T0),
        by: 'governor' as const,
        state: 'pending' as const,
        decidedAt: null,
        grantedValue: null,
        stateDetail: '',
        traceId: '',
      },
    };
    const forged: PressureLedger = {
      ...rollPressure(real, runPlan(iso(T0 + 5 * 60_000)), 'acme', policy),
      at: '2099-01-01T00:00:00.000Z',
      requests,
    };
    const next = rollPressure(forged, runPlan(iso(T0 + 10 * 60_000)), 'acme', policy);
    // A new ledger at the plan: the forged rows are not history, its tracked requests are kept.
    expect(next.at).toBe(iso(T0 + 10 * 60_000));
    expect(next.pools[HOT]?.days[0]?.minutes).toBe(0);
    expect(next.requests).toEqual(requests);
    // And it rolls on from there.
    const after = rollPressure(next, runPlan(iso(T0 + 15 * 60_000)), 'acme', policy);
    expect(after.pools[HOT]?.days[0]?.minutes).toBe(5);
    // Within the allowed skew a later ledger is still the same history, left as it is.
    const skewed = { ...real, at: iso(T0 + 10 * 60_000 + MAX_CLOCK_SKEW_MS) };
    expect(rollPressure(skewed, runPlan(iso(T0 + 10 * 60_000)), 'acme', policy)).toBe(skewed);
  });

  it('finds the newest ledger that is not from the future', () => {
    const a = rollPressure(undefined, runPlan(iso(T0)), 'acme', policy);
    const forged = { ...a, at: '2099-01-01T00:00:00.000Z' };
    const runs = [{ pressure: forged }, {}, { pressure: a }];
    expect(newestLedger(runs, iso(T0 + 60_000))).toBe(a);
    expect(newestLedger(runs)).toBe(forged);
  });

  it('keeps at most LEDGER_DAYS days per pool, dropping the oldest', () => {
    const { ledger } = week(24 * (LEDGER_DAYS + 3), 60);
    const days = ledger.pools[HOT]?.days ?? [];
    expect(days).toHaveLength(LEDGER_DAYS);
    // The last run is on 2026-12-10 00:00: it and the 13 days before it.
    expect(days[0]?.day).toBe('2026-11-27');
    expect(days.every((d) => d.minutes <= 1440)).toBe(true);
  });

  it('ages out the rows of a pool no run plans any more on the same days as the others', () => {
    const { ledger } = week(24 * (LEDGER_DAYS + 3), 60);
    // The next day's run plans other pools only (this pool's region left the policy, say).
    const next = rollPressure(
      ledger,
      runPlan(iso(T0 + 24 * (LEDGER_DAYS + 4) * 3_600_000)),
      'other',
      policy,
    );
    const days = next.pools[HOT]?.days ?? [];
    // The run is on 2026-12-11: the 13 days before it are kept, today has no row.
    expect(days[0]?.day).toBe('2026-11-28');
    expect(days).toHaveLength(LEDGER_DAYS - 1);
    expect(PressureLedger.safeParse(next).error).toBeUndefined();
  });

  it('keeps a pool whose unmanaged caps are over its quota (a budget below 0), as the plan says', () => {
    // Cloud Run checks one service's max against the quota, never their sum: two unmanaged
    // services with a max of 3 each fit a quota of 4 one by one, and leave a budget of -2.
    const at = iso(T0);
    const unmanaged = parsePolicy({
      version: 1,
      projects: ['acme'],
      services: [{ match: { name: 'team-*' }, managed: false }, { match: {} }],
    });
    const snapshot: Snapshot = {
      version: 1,
      takenAt: at,
      pools: [acmePool('us-central1', 4)],
      services: [
        svc('us-central1', 'team-a', 3, 1, at),
        svc('us-central1', 'team-b', 3, 1, at),
        svc('us-central1', 'llm', 1, 1, at),
      ],
      unmanagedUsage: [],
    };
    const p = plan(snapshot, unmanaged, at, { runId: 'r' });
    expect(p.pools[0]?.budget).toBe(-2);
    const ledger = rollPressure(undefined, p, 'acme', unmanaged);
    expect(ledger.pools[HOT]?.days[0]?.budget).toBe(-2);
    // What every run record carries, and what a store checks before writing it.
    expect(PressureLedger.safeParse(ledger).error).toBeUndefined();
    expect(checkRunRecord(quietRun('r', at, { pressure: ledger })).pressure).toEqual(ledger);
  });

  it('rolls a ledger at the largest count it reads into one it can read back', () => {
    // A row a state file holds at the largest whole number it accepts: the next run's minutes
    // must not take it past what a run record can hold, or no run could be recorded again.
    const first = rollPressure(undefined, runPlan(iso(T0)), 'acme', policy);
    const row = first.pools[HOT]?.days[0];
    if (!row) throw new Error('no row');
    const edited: PressureLedger = {
      ...first,
      pools: {
        ...first.pools,
        [HOT]: {
          ...(first.pools[HOT] as NonNullable<(typeof first.pools)[string]>),
          days: [{ ...row, refusedGpuMinutes: Number.MAX_SAFE_INTEGER }],
        },
      },
    };
    expect(PressureLedger.safeParse(edited).error).toBeUndefined();
    const next = rollPressure(edited, runPlan(iso(T0 + 5 * 60_000)), 'acme', policy);
    expect(next.pools[HOT]?.days[0]?.refusedGpuMinutes).toBe(Number.MAX_SAFE_INTEGER);
    expect(PressureLedger.safeParse(next).error).toBeUndefined();
  });

  it('rejects a plan without a time', () => {
    const p = { ...runPlan(iso(T0)), at: 'yesterday' };
    expect(() => rollPressure(undefined, p, 'acme', policy)).toThrow(/not a time/);
  });
});

describe('quota recommendations', () => {
  it("lists pools in code-unit order of their keys, whatever the machine's locale", () => {
    // Under LC_ALL=da_DK.UTF-8 a locale-sorting comparison puts "aa" after "z" (Danish reads it
    // as "å"): the list, and so the order of `governor quota recommend` and of the quota requests
    // a run files, would change with the machine.
    const at = '2026-12-01T12:00:00Z';
    const pool = (project: string) => ({
      project,
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      days: [
        {
          day: '2026-12-01',
          minutes: 600,
          minutesAtBudget: 0,
          refusedGpuMinutes: 0,
          peakWanted: 1,
          quota: 4,
          budget: 4,
        },
      ],
    });
    const ledger = PressureLedger.parse({
      at,
      pools: Object.fromEntries(
        ['z-team', 'ab-team', 'aa-team'].map((p) => [`${p}/us-central1/nvidia-l4/zonal`, pool(p)]),
      ),
    });
    const keys = underLocale('da', () => recommendQuotas(ledger, at).map((r) => r.key));
    expect(keys.map((k) => k.split('/')[0])).toEqual(['aa-team', 'ab-team', 'z-team']);
  });

  it('recommends for the pool under sustained pressure only, with its evidence', () => {
    const { ledger, at } = week(24 * 7, 5);
    const recs = recommendQuotas(ledger, at);
    const hot = recs.find((r) => r.key === HOT);
    const calm = recs.find((r) => r.key === CALM);
    expect(calm?.status).toBe('no-pressure');
    expect(calm?.recommended).toBeNull();
    expect(hot?.status).toBe('recommend');
    // The window is the last 7 UTC days, today (00:00, just begun) included: 6 whole days.
    expect(hot?.daysCovered).toBe(6);
    expect(hot?.daysSeen).toBe(7);
    expect(hot?.minutesAtBudget).toBe(hot?.minutesCovered);
    expect(hot?.peakWanted).toBe(poolWanted(runPlan(at), HOT, policy));
    // quota 4 = budget 4: the peak wanted itself.
    expect(hot?.recommended).toBe(hot?.peakWanted);
    expect(hot?.why).toMatch(/at budget 100% of the time/);
  });

  it('says there is too little history under a day of runs', () => {
    const { ledger, at } = week(6, 5);
    const recs = recommendQuotas(ledger, at);
    expect(recs.map((r) => r.status)).toEqual(['too-little-history', 'too-little-history']);
    expect(recs[0]?.why).toMatch(
      /^too little history: the runs cover \d+ minutes of the last 7 days, and 1 day is needed$/,
    );
    expect(recommendQuotas(undefined, at)).toEqual([]);
  });

  it('a short burst is not sustained pressure', () => {
    // Hot one hour a day: 7 hours of 7 days, below 5% of the time? 60/1440 ≈ 4%.
    const { ledger, at } = week(24 * 7, 5, (ms) => new Date(ms).getUTCHours() === 9);
    const hot = recommendQuotas(ledger, at).find((r) => r.key === HOT);
    expect(hot?.status).toBe('no-pressure');
    expect(hot?.minutesAtBudget).toBeGreaterThan(120);
    expect(hot?.refusedGpuMinutes).toBeGreaterThan(0);
  });

  it('looks only at the window asked for', () => {
    // Hot the first 3 days, calm after: a 2-day window sees no pressure.
    const { ledger, at } = week(24 * 7, 5, (ms) => ms < T0 + 3 * 86_400_000);
    expect(recommendQuotas(ledger, at, { days: 7 }).find((r) => r.key === HOT)?.status).toBe(
      'recommend',
    );
    expect(recommendQuotas(ledger, at, { days: 2 }).find((r) => r.key === HOT)?.status).toBe(
      'no-pressure',
    );
  });

  it('adds what reserve and unmanaged use take to the peak wanted', () => {
    const { ledger, at } = week(24 * 2, 10);
    const pool = ledger.pools[HOT];
    if (!pool) throw new Error('no pool');
    // The same pool with a reserve of 2: budget 2, quota 4.
    const days = pool.days.map((d) => ({ ...d, budget: 2 }));
    const recs = recommendQuotas({ ...ledger, pools: { [HOT]: { ...pool, days } } }, at);
    expect(recs[0]?.recommended).toBe((recs[0]?.peakWanted ?? 0) + 2);
  });

  it('an unknown quota gets no recommendation', () => {
    const { ledger, at } = week(30, 10);
    const pool = ledger.pools[HOT];
    if (!pool) throw new Error('no pool');
    const days = pool.days.map((d) => ({ ...d, quota: null, budget: null }));
    const recs = recommendQuotas({ ...ledger, pools: { [HOT]: { ...pool, days } } }, at);
    expect(recs[0]?.status).toBe('unknown-quota');
  });

  it('rejects settings out of range and a bad time', () => {
    expect(() => recommendQuotas(undefined, iso(T0), { days: 0 })).toThrow(/days/);
    expect(() => recommendQuotas(undefined, iso(T0), { days: LEDGER_DAYS + 1 })).toThrow(/days/);
    expect(() => recommendQuotas(undefined, iso(T0), { minDays: 9 })).toThrow(/minDays/);
    expect(() => recommendQuotas(undefined, iso(T0), { minShareAtBudget: 2 })).toThrow(/Share/);
    expect(() => recommendQuotas(undefined, 'now')).toThrow(/not a time/);
  });

  it('the justification carries the evidence and stays within 1,000 characters', () => {
    const { ledger, at } = week(24 * 3, 15);
    const hot = recommendQuotas(ledger, at).find((r) => r.key === HOT);
    if (!hot) throw new Error('no recommendation');
    const text = quotaJustification(hot, 'Inference for search.');
    expect(text).toMatch(/^Inference for search\. Cloud Run GPU pool us-central1 nvidia-l4/);
    expect(text).toContain(`${hot.minutesAtBudget} minutes`);
    expect(text).toContain(`${hot.refusedGpuMinutes} GPU-minutes`);
    expect(quotaJustification(hot, 'x'.repeat(5000))).toHaveLength(1000);
  });

  it('a stored ledger that is malformed does not parse', () => {
    const { ledger } = week(2, 30);
    const bad = structuredClone(ledger) as unknown as { pools: Record<string, { days: object[] }> };
    const days = bad.pools[HOT]?.days;
    if (days?.[0]) days[0] = { ...days[0], minutes: 99_999 };
    expect(PressureLedger.safeParse(bad).success).toBe(false);
    expect(PressureLedger.safeParse({ at: 'x', pools: {} }).success).toBe(false);
  });
});

describe('quota recommendations on their edges (docs/quota-requests.md)', () => {
  const AT = '2026-11-25T12:00:00.000Z';
  const day = (d: string, more: Partial<PressureDay> = {}): PressureDay => ({
    day: d,
    minutes: 1440,
    minutesAtBudget: 0,
    refusedGpuMinutes: 0,
    peakWanted: 2,
    quota: 4,
    budget: 4,
    ...more,
  });
  const ledgerOf = (days: PressureDay[]): PressureLedger => ({
    at: AT,
    pools: {
      [HOT]: {
        project: 'acme',
        region: 'us-central1',
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
        days,
      },
    },
  });
  const statusOf = (days: PressureDay[]) => recommendQuotas(ledgerOf(days), AT)[0]?.status;

  it('counts a minute the pool wanted exactly its budget as a minute at budget', () => {
    // Budget 4; a and b each use 2 of their cap of 3, headroom 0: the pool wants 4.
    const noHeadroom = parsePolicy({
      version: 1,
      projects: ['acme'],
      defaults: { headroom: 0 },
      services: [{ match: {} }],
    });
    const at = (ms: number): Plan => {
      const t = iso(ms);
      const snapshot: Snapshot = {
        version: 1,
        takenAt: t,
        pools: [acmePool('us-central1', 4)],
        services: [svc('us-central1', 'a', 3, 2, t), svc('us-central1', 'b', 3, 2, t)],
        unmanagedUsage: [],
      };
      return plan(snapshot, noHeadroom, t);
    };
    expect(poolWanted(at(T0), HOT, noHeadroom)).toBe(4);
    const first = rollPressure(undefined, at(T0), 'acme', noHeadroom);
    const next = rollPressure(first, at(T0 + 5 * 60_000), 'acme', noHeadroom);
    expect(next.pools[HOT]?.days[0]).toMatchObject({
      minutes: 5,
      minutesAtBudget: 5,
      refusedGpuMinutes: 0,
      peakWanted: 4,
    });
  });

  it('needs at least a day of runs: exactly a day is enough', () => {
    expect(statusOf([day('2026-11-25', { minutes: 1439 })])).toBe('too-little-history');
    expect(statusOf([day('2026-11-25')])).toBe('no-pressure');
  });

  it('needs 120 minutes and 5% of the time at budget: exactly both is enough', () => {
    // 2,400 minutes covered, 120 of them at budget: exactly 5%.
    const hot = { peakWanted: 6, refusedGpuMinutes: 240 };
    const edge = [
      day('2026-11-24', { ...hot, minutes: 960, minutesAtBudget: 60 }),
      day('2026-11-25', { ...hot, minutesAtBudget: 60 }),
    ];
    expect(statusOf(edge)).toBe('recommend');
    const less = edge.map((d, i) => (i === 0 ? { ...d, minutesAtBudget: 59 } : d));
    expect(statusOf(less)).toBe('no-pressure');
    // Demand above the budget at a run that covered no time (the first) refused nothing.
    const none = edge.map((d) => ({ ...d, refusedGpuMinutes: 0 }));
    expect(statusOf(none)).toBe('no-pressure');
  });

  it("judges with the newest day's quota and budget, not an older one's", () => {
    const hot = { minutesAtBudget: 1440, refusedGpuMinutes: 2880, peakWanted: 10 };
    const raised = [
      day('2026-11-24', { ...hot, quota: 4, budget: 4 }),
      day('2026-11-25', { ...hot, quota: 6, budget: 5 }),
    ];
    expect(recommendQuotas(ledgerOf(raised), AT)[0]).toMatchObject({
      status: 'recommend',
      quota: 6,
      budget: 5,
      recommended: 11,
    });
  });

  it('recommends only with demand above the newest budget, not equal to it', () => {
    // Refused while the budget was 8; the quota was raised to 10 since, which the peak wanted
    // of 10 fits: no more to ask for.
    const hot = { minutesAtBudget: 1440, peakWanted: 10 };
    const raised = [
      day('2026-11-24', { ...hot, refusedGpuMinutes: 2880, quota: 8, budget: 8 }),
      day('2026-11-25', { ...hot, quota: 10, budget: 10 }),
    ];
    expect(statusOf(raised)).toBe('no-pressure');
    // Still at 8: it argues for the quota the peak fits.
    const still = raised.map((d) => ({ ...d, quota: 8, budget: 8 }));
    expect(recommendQuotas(ledgerOf(still), AT)[0]).toMatchObject({
      status: 'recommend',
      recommended: 10,
    });
  });
});

describe("a unit's ledger and the other side of its project", () => {
  const req = (name: string, state: 'pending' | 'granted' = 'pending') => ({
    name: `projects/acme/locations/global/quotaPreferences/${name}`,
    quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
    preferredValue: 8,
    from: 4,
    filedAt: iso(T0),
    by: 'governor' as const,
    state,
    decidedAt: state === 'pending' ? null : iso(T0),
    grantedValue: state === 'pending' ? null : 8,
    stateDetail: '',
    traceId: '',
  });
  /** The whole project's week: both regions, a pending request for the hot pool. */
  const whole = (): PressureLedger => ({
    ...week(48, 15).ledger,
    requests: { [HOT]: req('hot'), [CALM]: req('calm') },
  });
  const at = (l: PressureLedger, ms: number): PressureLedger => ({ ...l, at: iso(ms) });

  it('a regional unit takes only its own region: pools and their requests', () => {
    const project = whole();
    const us = adoptLedger('us-central1', undefined, [{ region: null, ledger: project }]);
    expect(Object.keys(us?.pools ?? {})).toEqual([HOT]);
    expect(us?.pools[HOT]).toEqual(project.pools[HOT]);
    expect(Object.keys(us?.requests ?? {})).toEqual([HOT]);
    expect(us?.at).toBe(project.at);
    const eu = adoptLedger('europe-west4', undefined, [{ region: null, ledger: project }]);
    expect(Object.keys(eu?.pools ?? {})).toEqual([CALM]);
    expect(Object.keys(eu?.requests ?? {})).toEqual([CALM]);
    // A region the project never had: nothing to start from.
    expect(adoptLedger('asia-east1', undefined, [{ region: null, ledger: project }])).toBe(
      undefined,
    );
    expect(adoptLedger('us-central1', undefined, [])).toBe(undefined);
    // A tracked request whose pool's rows aged out still follows its region.
    const aged = { ...project, pools: {} };
    expect(Object.keys(regionOfLedger(aged, 'us-central1').requests ?? {})).toEqual([HOT]);
  });

  it('a whole project merges its regional units, each cut to its own region', () => {
    const project = whole();
    const us = regionOfLedger(project, 'us-central1');
    // A regional ledger that (by a bug or a hand) carries another region's pool brings nothing in.
    const eu = { ...project, at: iso(Date.parse(project.at) - 600_000) };
    const merged = adoptLedger(undefined, undefined, [
      { region: 'us-central1', ledger: us },
      { region: 'europe-west4', ledger: eu },
    ]);
    expect(merged?.pools[HOT]).toEqual(project.pools[HOT]);
    expect(merged?.pools[CALM]).toEqual(project.pools[CALM]);
    expect(merged?.requests).toEqual(project.requests);
    // The newest of them: the next roll counts no minute twice.
    expect(merged?.at).toBe(project.at);
    expect(PressureLedger.safeParse(merged).success).toBe(true);
    // The recommendation is the project's as it was before the split.
    expect(recommendQuotas(merged, project.at)).toEqual(recommendQuotas(project, project.at));
  });

  it('per pool the newest ledger wins, never a sum; the unit keeps its own on a tie', () => {
    const project = whole();
    const own = at(regionOfLedger(project, 'us-central1'), T0 + 49 * 3_600_000);
    const older = at(project, T0 + 10 * 3_600_000);
    const kept = adoptLedger('us-central1', own, [{ region: null, ledger: older }]);
    expect(kept).toEqual(own);
    // The other side governed after this unit's ledger: its rows and its request replace ours.
    const decided = {
      ...at(project, T0 + 60 * 3_600_000),
      requests: { [HOT]: req('hot', 'granted') },
    };
    const taken = adoptLedger('us-central1', own, [{ region: null, ledger: decided }]);
    expect(taken?.at).toBe(decided.at);
    expect(taken?.requests?.[HOT]?.state).toBe('granted');
    expect(taken?.pools[HOT]?.days).toEqual(decided.pools[HOT]?.days);
    const minutes = (l: PressureLedger | undefined) =>
      (l?.pools[HOT]?.days ?? []).reduce((s, d) => s + d.minutes, 0);
    expect(minutes(taken)).toBe(minutes(decided));
    // Same time: the unit's own.
    const tie = adoptLedger('us-central1', own, [
      { region: null, ledger: { ...at(project, Date.parse(own.at)), requests: {} } },
    ]);
    expect(tie?.requests?.[HOT]).toEqual(own.requests?.[HOT]);
  });

  it('a ledger without a time is ignored; a unit with its own keeps it', () => {
    const project = whole();
    const bad = { ...project, at: 'yesterday' };
    expect(adoptLedger('us-central1', undefined, [{ region: null, ledger: bad }])).toBe(undefined);
    const own = regionOfLedger(project, 'us-central1');
    expect(adoptLedger('us-central1', own, [{ region: null, ledger: bad }])).toEqual(own);
  });

  it('quota.changed compares with the newest quotas either side read, per pool, cut to the unit', () => {
    const own = { region: null, at: iso(T0), quotas: { [HOT]: 4, [CALM]: 4 } };
    const us = { region: 'us-central1', at: iso(T0 + 3_600_000), quotas: { [HOT]: 8, [CALM]: 9 } };
    const eu = { region: 'europe-west4', at: iso(T0 - 3_600_000), quotas: { [CALM]: 6 } };
    // The whole project: us-central1's newer read of its pool; europe-west4's is older than its own.
    expect(adoptQuotas(undefined, own, [us, eu])).toEqual({ [HOT]: 8, [CALM]: 4 });
    // A regional unit: the project's, cut to its region.
    const project = { region: null, at: iso(T0 + 60_000), quotas: { [HOT]: 5, [CALM]: 5 } };
    expect(adoptQuotas('europe-west4', undefined, [project])).toEqual({ [CALM]: 5 });
    expect(adoptQuotas('europe-west4', undefined, [])).toBe(undefined);
    expect(adoptQuotas('us-central1', { ...own, quotas: { [HOT]: 4 } }, [project])).toEqual({
      [HOT]: 5,
    });
    // A time that does not parse is not evidence; the unit's own wins a tie.
    expect(adoptQuotas(undefined, own, [{ ...us, at: 'soon' }])).toEqual(own.quotas);
    expect(adoptQuotas(undefined, own, [{ ...us, at: own.at }])).toEqual(own.quotas);
  });

  it('looks at the other side only without a ledger or after a gap longer than an hour', () => {
    const own = week(2, 15).ledger;
    const ms = Date.parse(own.at);
    expect(lookAtOtherUnits(undefined, own.at)).toBe(true);
    expect(lookAtOtherUnits(own, iso(ms + 5 * 60_000))).toBe(false);
    expect(lookAtOtherUnits(own, iso(ms + MAX_GAP_MINUTES * 60_000))).toBe(false);
    expect(lookAtOtherUnits(own, iso(ms + (MAX_GAP_MINUTES + 1) * 60_000))).toBe(true);
    // A time that does not parse is a gap: look.
    expect(lookAtOtherUnits({ ...own, at: 'x' }, iso(ms))).toBe(true);
  });
});

/**
 * `f` run as in a process whose locale is `locale` (LC_ALL, LANG): `localeCompare` without a
 * locale then sorts by that locale's rules.
 */
function underLocale<T>(locale: string, f: () => T): T {
  const own = Object.getOwnPropertyDescriptor(String.prototype, 'localeCompare');
  const collator = new Intl.Collator(locale);
  Object.defineProperty(String.prototype, 'localeCompare', {
    ...own,
    value: function (this: string, that: string) {
      return collator.compare(this, that);
    },
  });
  try {
    return f();
  } finally {
    if (own) Object.defineProperty(String.prototype, 'localeCompare', own);
  }
}
