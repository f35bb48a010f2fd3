import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { syntheticFleet } from '../../bench/fleet.js';
import type { Plan } from '../../src/core/plan.js';
import { plan } from '../../src/core/planner.js';
import { AT, caseArb, type Case } from '../support/fleet-arbitrary.js';
import { planHashes } from '../support/plan-hashes.js';

/**
 * The planner's answers on seeded inputs, recorded by an earlier planner: a change to how the
 * planner works (data layout, caching, when a reason is rendered) must not change what it
 * answers. Each case compares the plan's JSON and its text rendering (`governor plan`) byte for
 * byte, through their SHA-256, and lists the changes in words so that a difference can be read.
 *
 * Each case also records the plan without its reasons (`decisions`, see planHashes): a change to
 * how reasons are told re-records the file and leaves every `decisions` as it was.
 *
 * A deliberate change of decisions re-records the file:
 *   PLAN_FIXTURE_WRITE=1 npx vitest run test/core/planner.regression.test.ts
 *   npx prettier --write test/core/fixtures/planner-regression.json
 * and the diff of the fixture shows every plan that changed.
 */

const FIXTURE = new URL('./fixtures/planner-regression.json', import.meta.url);
const SEED = 15_2026;

interface Recorded {
  case: string;
  decisions: string;
  json: string;
  text: string;
  changes: string[];
}

function record(name: string, p: Plan, listChanges: boolean): Recorded {
  return {
    case: name,
    // The text has every row (`--all`): the planner's answers, whatever it counts rather than lists.
    ...planHashes(p),
    // The large fleets' changes are too many to list: their count, and the hashes, stand in.
    changes: listChanges
      ? [...p.changes, ...p.deferred].map(
          (c) => `${c.project}/${c.region}/${c.name} ${c.from}→${c.to}: ${c.reason}`,
        )
      : [`${p.changes.length} changes, ${p.deferred.length} deferred`],
  };
}

/** 200 small random fleets (the property tests' generator), and a few large synthetic ones. */
function cases(): { name: string; run: () => Plan; list: boolean }[] {
  const small: Case[] = fc.sample(caseArb({ mixedGpus: true }), { seed: SEED, numRuns: 200 });
  const out = small.map((c, i) => ({
    name: `random ${i}`,
    run: () => plan(c.snapshot, c.policy, AT),
    list: true,
  }));
  // The benchmark's fleet at three times: inside the weekday schedule window, at night, and on a
  // Saturday (its schedule is in America/New_York).
  for (const [services, pools, seed] of [
    [400, 8, 1],
    [1_000, 20, 2],
    [2_000, 40, 3],
  ] as const) {
    const { snapshot, policy } = syntheticFleet(services, pools, seed);
    for (const at of [
      '2026-11-27T15:00:00.000Z',
      '2026-11-27T03:00:00.000Z',
      '2026-11-28T15:00:00.000Z',
    ]) {
      out.push({
        name: `synthetic ${services}/${pools} seed ${seed} at ${at}`,
        run: () => plan(snapshot, policy, at),
        list: false,
      });
    }
  }
  return out;
}

describe('planner regression: the same answers on seeded inputs', () => {
  it('answers each recorded case with the same plan JSON, text and changes', () => {
    const now = cases().map((c) => record(c.name, c.run(), c.list));
    if (process.env.PLAN_FIXTURE_WRITE === '1') {
      writeFileSync(FIXTURE, JSON.stringify(now, null, 2) + '\n');
    }
    const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Recorded[];
    expect(recorded.length).toBe(now.length);
    // The changes must be there to compare: a fixture of empty plans would prove nothing.
    expect(recorded.filter((r) => r.changes.length > 0).length).toBeGreaterThan(100);
    for (let i = 0; i < now.length; i++) {
      expect(now[i]?.case).toBe(recorded[i]?.case);
      expect(now[i]?.decisions, `${now[i]?.case}: decisions`).toBe(recorded[i]?.decisions);
      expect(now[i]?.changes, now[i]?.case).toEqual(recorded[i]?.changes);
      expect(now[i]?.json, `${now[i]?.case}: plan JSON`).toBe(recorded[i]?.json);
      expect(now[i]?.text, `${now[i]?.case}: plan text`).toBe(recorded[i]?.text);
    }
  });
});
