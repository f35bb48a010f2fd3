import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { syntheticFleet } from '../../bench/fleet.js';
import { plan } from '../../src/core/planner.js';
import type { Snapshot } from '../../src/core/snapshot.js';
import { planHashes } from '../support/plan-hashes.js';

/**
 * The planner's answers where pools hold tens of thousands of GPUs or more, recorded when `fill`
 * and `cut` still moved one instance at a time: handing out or taking back many instances at once
 * must give the same plans. The bench fleet, scaled: caps, usage and quotas ×1,000 (the demand
 * step's cuts and raises in the thousands), quotas of 100,000 under what is protected (large
 * repair cuts), and quotas of 1,000,000 on the fleet as it is (the burst up to the quota).
 *
 * Re-record only for a deliberate change of decisions, or of how reasons are told (every
 * `decisions` hash then stays as it was: see planHashes):
 *   PLAN_FIXTURE_WRITE=1 npx vitest run test/core/planner.large-quota.test.ts
 */

const FIXTURE = new URL('./fixtures/planner-large-quota.json', import.meta.url);

interface Recorded {
  case: string;
  decisions: string;
  json: string;
  text: string;
  changes: number;
}

function scaled(snapshot: Snapshot, factor: number, quota: (q: number) => number): Snapshot {
  return {
    ...snapshot,
    pools: snapshot.pools.map((p) => ({ ...p, quota: p.quota === null ? null : quota(p.quota) })),
    services: snapshot.services.map((s) => ({
      ...s,
      maxInstances: s.maxInstances * factor,
      usage: s.usage && {
        ...s.usage,
        current: s.usage.current * factor,
        peak: s.usage.peak * factor,
      },
    })),
  };
}

function cases(): {
  name: string;
  snapshot: Snapshot;
  at: string;
  policy: ReturnType<typeof syntheticFleet>['policy'];
}[] {
  const out = [];
  for (const seed of [1, 2, 3]) {
    const { snapshot, policy } = syntheticFleet(200, 4, seed);
    const shapes: [string, Snapshot][] = [
      ['caps, usage and quotas ×1,000', scaled(snapshot, 1_000, (q) => q * 1_000)],
      ['caps and usage ×1,000, quotas 100,000', scaled(snapshot, 1_000, () => 100_000)],
      ['quotas 1,000,000', scaled(snapshot, 1, () => 1_000_000)],
    ];
    for (const [shape, s] of shapes)
      for (const at of ['2026-11-27T15:00:00.000Z', '2026-11-28T03:00:00.000Z'])
        out.push({ name: `seed ${seed}, ${shape}, at ${at}`, snapshot: s, at, policy });
  }
  return out;
}

describe('planner on large pools: the same answers as one instance at a time', () => {
  it('answers each recorded case with the same plan JSON and text', () => {
    const now: Recorded[] = cases().map((c) => {
      const p = plan(c.snapshot, c.policy, c.at);
      return {
        case: c.name,
        ...planHashes(p),
        changes: p.changes.length,
      };
    });
    if (process.env.PLAN_FIXTURE_WRITE === '1') {
      writeFileSync(FIXTURE, JSON.stringify(now, null, 2) + '\n');
    }
    const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Recorded[];
    expect(recorded.length).toBe(now.length);
    // Plans that change nothing would prove nothing.
    expect(recorded.every((r) => r.changes > 0)).toBe(true);
    for (let i = 0; i < now.length; i++) {
      expect(now[i]?.case).toBe(recorded[i]?.case);
      expect(now[i]?.decisions, `${now[i]?.case}: decisions`).toBe(recorded[i]?.decisions);
      expect(now[i]?.json, `${now[i]?.case}: plan JSON`).toBe(recorded[i]?.json);
      expect(now[i]?.text, `${now[i]?.case}: plan text`).toBe(recorded[i]?.text);
      expect(now[i]?.changes, `${now[i]?.case}: changes`).toBe(recorded[i]?.changes);
    }
  });
});
