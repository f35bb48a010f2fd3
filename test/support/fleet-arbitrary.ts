import fc from 'fast-check';
import { expect } from 'vitest';
import {
  decimalSetting,
  MAX_SEED,
  settingOrThrow,
  wholeNumberSetting,
} from '../../src/chaos/settings.js';
import { Policy, type PolicyInput } from '../../src/core/policy.js';
import type { Snapshot, SnapshotService } from '../../src/core/snapshot.js';

/**
 * Random fleets and policies for the property tests. Sizes are small enough to run thousands of
 * cases and large enough to hit scarcity, over-budget pools, unknown quotas, stale usage,
 * deployments in flight and the scale-down delay.
 */

export const AT = '2026-11-27T10:00:00.000Z';
const AT_MS = Date.parse(AT);
const POOLS = [
  { project: 'p1', region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
  { project: 'p1', region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: false },
  { project: 'p1', region: 'europe-west4', accelerator: 'nvidia-l4', zonalRedundancy: true },
  { project: 'p2', region: 'us-central1', accelerator: 'nvidia-l4', zonalRedundancy: true },
] as const;
const TEAMS = ['search', 'ads', 'media'] as const;

interface GenOptions {
  /** Allow GPUs per instance other than 1 (Cloud Run has exactly 1 today). */
  mixedGpus?: boolean;
  maxServices?: number;
}

const serviceArb = (opts: GenOptions): fc.Arbitrary<ServiceDraft> =>
  fc.record({
    pool: fc.integer({ min: 0, max: POOLS.length - 1 }),
    prefix: fc.constantFrom('llm', 'embed', 'render', 'asr'),
    g: opts.mixedGpus ? fc.constantFrom(1, 1, 1, 2) : fc.constant(1),
    team: fc.constantFrom(...TEAMS),
    maxInstances: fc.integer({ min: 0, max: 14 }),
    minInstances: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
    reconcilingPick: fc.integer({ min: 0, max: 9 }),
    usageKind: fc.integer({ min: 0, max: 9 }),
    current: fc.integer({ min: 0, max: 14 }),
    peakExtra: fc.integer({ min: 0, max: 6 }),
    utilization: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
    changedAgoMin: fc.option(fc.integer({ min: 0, max: 60 }), { nil: null }),
    loweredAgoMin: fc.option(fc.integer({ min: 0, max: 60 }), { nil: null }),
    // Per-minute evidence (optional in a snapshot): instances in use and 429s over the last 10 minutes.
    minutes: fc.option(
      fc.record({
        inUse: fc.array(fc.integer({ min: 0, max: 14 }), { minLength: 10, maxLength: 10 }),
        refused: fc.array(
          fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 400 })),
          {
            minLength: 10,
            maxLength: 10,
          },
        ),
        servedPerInstance: fc.constantFrom(0, 50, 100),
      }),
      { nil: null, freq: 2 },
    ),
  });

function toService(r: ServiceDraft, i: number): SnapshotService {
  const pool = POOLS[r.pool] ?? POOLS[0];
  // Physically consistent: what runs is within the cap (peak may exceed a cap lowered since).
  const ev = r.minutes;
  const inUse = ev ? ev.inUse.map((n) => Math.min(n, r.maxInstances + r.peakExtra)) : null;
  const current = inUse
    ? Math.min(inUse.at(-1) ?? 0, r.maxInstances)
    : Math.min(r.current, r.maxInstances);
  if (inUse) inUse[inUse.length - 1] = current;
  const sampledAt = new Date(AT_MS - 120_000).toISOString();
  return {
    ...pool,
    name: `${r.prefix}-${i}`,
    gpusPerInstance: r.g,
    labels: { team: r.team },
    maxInstances: r.maxInstances,
    minInstances: Math.min(r.minInstances, r.maxInstances),
    reconciling: r.reconcilingPick === 0,
    etag: `e${i}`,
    lastChangedAt:
      r.changedAgoMin === null ? null : new Date(AT_MS - r.changedAgoMin * 60_000).toISOString(),
    ...(r.loweredAgoMin === null
      ? {}
      : { lastLoweredAt: new Date(AT_MS - r.loweredAgoMin * 60_000).toISOString() }),
    usage:
      r.usageKind === 0
        ? null
        : {
            current,
            peak: inUse ? Math.max(...inUse) : current + r.peakExtra,
            sampledAt,
            ...(inUse && ev
              ? {
                  perMinute: {
                    start: new Date(AT_MS - 120_000 - (inUse.length - 1) * 60_000).toISOString(),
                    inUse,
                    served: inUse.map((n) => n * ev.servedPerInstance),
                    refused: ev.refused,
                  },
                }
              : {}),
            ...(r.utilization !== undefined && r.usageKind > 6
              ? { utilization: r.utilization }
              : {}),
          },
  };
}

interface ServiceDraft {
  pool: number;
  prefix: string;
  g: number;
  team: string;
  maxInstances: number;
  minInstances: number;
  reconcilingPick: number;
  usageKind: number;
  current: number;
  peakExtra: number;
  utilization: number | undefined;
  changedAgoMin: number | null;
  loweredAgoMin: number | null;
  minutes: { inUse: number[]; refused: number[]; servedPerInstance: number } | null;
}

const ruleArb = fc.record(
  {
    match: fc.oneof(
      fc.record({ name: fc.constantFrom('llm-*', 'embed-*', 'asr-*') }),
      fc.record({ labels: fc.record({ team: fc.constantFrom(...TEAMS) }) }),
      fc.record({ region: fc.constantFrom('us-central1', 'europe-west4') }),
      fc.constant({}),
    ),
    managed: fc.constantFrom(true, true, true, false),
    min: fc.integer({ min: 0, max: 3 }),
    max: fc.integer({ min: 3, max: 12 }),
    weight: fc.constantFrom(1, 1, 2, 3, 0.5),
    priority: fc.constantFrom(0, 0, 5, 10),
    headroom: fc.constantFrom(0, 0.2, 0.5),
    scaleDownDelay: fc.constantFrom('0s', '15m', '30m'),
    reclaimWindow: fc.constantFrom('5m', '10m'),
    reverseDelay: fc.constantFrom('0s', '30m'),
    preempt: fc.constantFrom(false, false, true),
  },
  { requiredKeys: ['match'] },
);

const policyArb = fc.record({
  rules: fc.array(ruleArb, { maxLength: 4 }),
  catchAll: fc.boolean(),
  reserve: fc.integer({ min: 0, max: 2 }),
  defaultsMax: fc.option(fc.integer({ min: 4, max: 12 }), { nil: undefined }),
  poolQuotaOverride: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
  maxChangesPerRun: fc.constantFrom(1, 2, 3, 50, 50, 50),
});

export interface Case {
  snapshot: Snapshot;
  policy: Policy;
}

export function caseArb(opts: GenOptions = {}): fc.Arbitrary<Case> {
  return fc
    .record({
      services: fc.array(serviceArb(opts), { maxLength: opts.maxServices ?? 14 }),
      quotas: fc.array(fc.option(fc.integer({ min: 0, max: 24 }), { nil: null, freq: 6 }), {
        minLength: POOLS.length,
        maxLength: POOLS.length,
      }),
      listPool: fc.array(fc.boolean(), { minLength: POOLS.length, maxLength: POOLS.length }),
      unmanagedGpus: fc.array(fc.integer({ min: 0, max: 3 }), {
        minLength: POOLS.length,
        maxLength: POOLS.length,
      }),
      policy: policyArb,
    })
    .map(({ services, quotas, listPool, unmanagedGpus, policy }) => {
      const snapshot: Snapshot = {
        version: 1,
        takenAt: AT,
        pools: POOLS.flatMap((p, i) =>
          listPool[i] !== false ? [{ ...p, quota: quotas[i] ?? null }] : [],
        ),
        services: services.map((s, i) => toService(s, i)),
        unmanagedUsage: POOLS.flatMap((p, i) =>
          (unmanagedGpus[i] ?? 0) > 0
            ? [{ ...p, gpus: unmanagedGpus[i] ?? 0, source: `worker-pool/w${i}` }]
            : [],
        ),
      };
      const input: PolicyInput = {
        version: 1,
        projects: ['p1', 'p2'],
        reserve: policy.reserve,
        defaults: {
          min: 1,
          ...(policy.defaultsMax !== undefined ? { max: policy.defaultsMax } : {}),
        },
        pools:
          policy.poolQuotaOverride !== undefined
            ? [{ region: 'us-central1', quota: policy.poolQuotaOverride }]
            : [],
        services: [...policy.rules, ...(policy.catchAll ? [{ match: {} }] : [])],
        limits: { maxChangesPerRun: policy.maxChangesPerRun },
      };
      return { snapshot, policy: Policy.parse(input) };
    });
}

/**
 * fast-check settings: seeded for reproducibility. FC_SEED sets the seed, FC_RUNS the number of
 * runs of every property; FC_RUNS_SCALE multiplies each property's own count instead (the quick
 * loop, `npm run test:unit`, runs a quarter of the cases; `npm test` runs them all). A value that
 * is not a number in range fails the test file with one line naming it (a seed of NaN would run
 * unseeded, and a count of NaN would run no case at all).
 */
export function fcParams(numRuns: number): fc.Parameters<unknown> {
  const env = process.env;
  const seed = settingOrThrow(wholeNumberSetting(env, 'FC_SEED', 20261127, 0, MAX_SEED));
  const scale = settingOrThrow(decimalSetting(env, 'FC_RUNS_SCALE', 1, 0.001, 1000));
  const fallback = Math.max(1, Math.round(numRuns * scale));
  const runs = settingOrThrow(wholeNumberSetting(env, 'FC_RUNS', fallback, 1, 10_000_000));
  return { seed, numRuns: runs };
}

/**
 * `fc.assert`, then a bound on the cases `fc.pre` skipped: a precondition that rejects most
 * generated cases would leave a property checked on few of them without saying so. (The planner
 * properties that need a full plan skip the partial ones: about 18% of the generated cases.)
 */
export function assertProperty<Ts>(
  property: fc.IProperty<Ts>,
  params: fc.Parameters<Ts>,
  { maxSkipShare = 0.25 }: { maxSkipShare?: number } = {},
): fc.RunDetails<Ts> {
  const details = fc.check(property, params);
  if (details.failed) {
    throw new Error(fc.defaultReportMessage(details) ?? 'property failed', {
      cause: details.errorInstance,
    });
  }
  const generated = details.numRuns + details.numSkips;
  expect(
    details.numSkips / generated,
    `${details.numSkips} of ${generated} generated cases skipped by fc.pre`,
  ).toBeLessThanOrEqual(maxSkipShare);
  return details;
}
