import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { effectiveMax, FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { PermissionError } from '../../src/core/errors.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * What a run tells of a pool, against the fleet it left. Quota 10: `a` at max 8 and `b` at max 6,
 * each using 2, sum to 14: the plan lowers both to 5 (10 GPUs). When a's lowering is denied, a
 * keeps 8 and the pool is left at 13, still over: no account of the run may say 10.
 */

const PROJECT = 'over-project';
const REGION = 'us-central1';
const POOL = `${PROJECT}/${REGION}/nvidia-l4/zonal`;

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  services: [{ match: { name: 'a' } }, { match: { name: 'b' } }],
  limits: { writesPerMinute: 6000 },
});

async function runOnce(
  deny: boolean,
  mode?: 'dry-run',
  world: { policy: typeof policy; services: [string, number, number][] } = {
    policy,
    services: [
      ['a', 8, 2],
      ['b', 6, 2],
    ],
  },
) {
  const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, 10, world.services)));
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  const run: CloudRunPort = {
    ...sim.run,
    updateMaxInstances: async (u) => {
      if (deny && u.name === 'a')
        throw new PermissionError(`PERMISSION_DENIED: run.services.update on ${u.name}`, {
          permissions: ['run.services.update'],
        });
      return sim.run.updateMaxInstances(u);
    },
  };
  const store = createMemoryStateStore();
  const report = await reconcileReport(
    world.policy,
    { ports: { ...sim, run }, clock: () => m.now, store },
    {
      runId: `over-${deny}-${mode ?? 'enforce'}`,
      deadlineMs: 60_000,
      writerId: 'me',
      ...(mode ? { mode } : {}),
    },
  );
  const caps = world.services.reduce(
    (sum, [name]) => sum + effectiveMax(m.getService({ project: PROJECT, region: REGION, name })!),
    0,
  );
  const [record] = await store.listRuns(PROJECT);
  const over = report.alerts.find((a) => a.type === 'pool.over-budget');
  const changes = report.plan?.changes.map((c) => [c.name, c.from, c.to]);
  return { report, caps, record, over, changes };
}

describe('a pool over its budget whose lowering was denied', () => {
  it('is recorded with the caps the writes left', async () => {
    const { caps, record, changes } = await runOnce(true);
    expect(changes).toEqual([
      ['a', 8, 5],
      ['b', 6, 5],
    ]);
    expect(caps).toBe(13);
    expect(record?.pools?.[POOL]?.caps).toBe(13);
  });

  it('is told by pool.over-budget as left, still over', async () => {
    const { over } = await runOnce(true);
    expect(over?.summary).toBe(
      "Caps in us-central1 nvidia-l4 sum to 14 GPUs, over the budget of 10: the plan lowers them to 10, but its writes left them at 13, still over (the run's apply.failed or skipped writes say why)",
    );
    expect(over?.details).toMatchObject({ capsBefore: 14, capsAfter: 10, capsLeft: 13 });
  });

  it("keeps the plan's words when every write lands", async () => {
    const { caps, record, over } = await runOnce(false);
    expect(caps).toBe(10);
    expect(record?.pools?.[POOL]?.caps).toBe(10);
    expect(over?.summary).toBe(
      'Caps in us-central1 nvidia-l4 sum to 14 GPUs, over the budget of 10: the plan lowers them to 10',
    );
    expect(over?.details).not.toHaveProperty('capsLeft');
  });

  it('tells a dry run the plan: nothing was meant to be written', async () => {
    const { caps, record, over } = await runOnce(false, 'dry-run');
    expect(caps).toBe(14);
    // The record of a dry run keeps the plan's caps, which it shows as planned.
    expect(record?.pools?.[POOL]?.caps).toBe(10);
    expect(over?.summary).toBe(
      'Caps in us-central1 nvidia-l4 sum to 14 GPUs, over the budget of 10: the plan lowers them to 10',
    );
  });
});

describe('a pool lowered below its budget, whose writes left it exactly at the budget', () => {
  // a and b lowered to their ceilings (6 to 2 each), c already at its ceiling 2: the plan leaves 6
  // GPUs of a budget of 10. a's lowering denied leaves 2 + 6 + 2 = 10: within the budget.
  const atCeilings = {
    policy: parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: ['a', 'b', 'c'].map((name) => ({ match: { name }, max: 2 })),
      limits: { writesPerMinute: 6000 },
    }),
    services: [
      ['a', 6, 1],
      ['b', 6, 1],
      ['c', 2, 1],
    ] as [string, number, number][],
  };

  it('is told as left, and not as still over', async () => {
    const { caps, over, changes } = await runOnce(true, undefined, atCeilings);
    expect(changes).toEqual([
      ['a', 6, 2],
      ['b', 6, 2],
    ]);
    expect(caps).toBe(10);
    expect(over?.summary).toBe(
      'Caps in us-central1 nvidia-l4 sum to 14 GPUs, over the budget of 10: the plan lowers them to 6, but its writes left them at 10',
    );
    expect(over?.details).toMatchObject({ capsBefore: 14, capsAfter: 6, capsLeft: 10 });
  });
});
