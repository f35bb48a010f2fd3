import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';

/**
 * A fleet of idle services for the act step under Cloud Run's write quota (per project and
 * region): in each region, `count` services at max 3 with no demand in a pool of `count` GPUs, so
 * the plan lowers every one (each a write the pacer must place). Regions in the order given, which is the plan's.
 */
export function idleFleet(project: string, regions: Record<string, number>): FleetModel {
  const entries = Object.entries(regions);
  return new FleetModel(
    validateFleet({
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: project,
          pools: entries.map(([region, count]) => ({ region, quota: count })),
          services: entries.flatMap(([region, count]) =>
            Array.from({ length: count }, (_, i) => ({
              name: `${region}-idle-${i}`,
              region,
              gpu: {},
              maxInstances: 3,
              demand: { constant: 0 },
            })),
          ),
        },
      ],
    }),
  );
}

/** A policy governing every service of those regions, at 2 writes a minute and 2 in flight. */
export function pacedPolicy(project: string, regions: readonly string[]): Policy {
  return parsePolicy({
    version: 1,
    projects: [project],
    regions: [...regions],
    defaults: { max: 3, scaleDownDelay: '0s' },
    services: [{ match: {} }],
    limits: { writesPerMinute: 2, writeConcurrency: 2 },
  });
}

/** The most calls started in any 60 s of `starts` (ms), from any instant: a busiest window starts at a call. */
export function busiestMinute(starts: readonly number[]): number {
  return Math.max(0, ...starts.map((s) => starts.filter((x) => x >= s && x < s + 60_000).length));
}
