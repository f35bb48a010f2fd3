import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { effectiveMax, FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { PermissionError } from '../../src/core/errors.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * `service.starved` tells the cap a service is left with. Quota 10: `vip` (priority 10) at max 4
 * uses 4 and wants 6 with its 50% headroom; `plain` at max 6 may be preempted. The plan lowers
 * plain to 4, short of its use, to raise vip. When plain's lowering is denied, plain keeps 6: the
 * run must not publish "plain gets 4 instances". Using 5, plain is not starved at 6 (room above its
 * use); using 6, it wants 9 and is starved at 6 as well.
 */

const PROJECT = 'starved-project';
const REGION = 'us-central1';

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0.5 },
  services: [
    { match: { name: 'vip' }, priority: 10 },
    { match: { name: 'plain' }, priority: 0, preempt: true },
  ],
  limits: { writesPerMinute: 6000 },
});

function setup(plainUse: number, deny: boolean) {
  const m = new FleetModel(
    validateFleet(
      onePoolFleet(PROJECT, REGION, 10, [
        ['vip', 4, 4],
        ['plain', 6, plainUse],
      ]),
    ),
  );
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  const run: CloudRunPort = {
    ...sim.run,
    updateMaxInstances: async (u) => {
      if (deny && u.name === 'plain')
        throw new PermissionError(`PERMISSION_DENIED: run.services.update on ${u.name}`, {
          permissions: ['run.services.update'],
        });
      return sim.run.updateMaxInstances(u);
    },
  };
  return { m, ports: { ...sim, run } };
}

const cap = (m: FleetModel, name: string) =>
  effectiveMax(m.getService({ project: PROJECT, region: REGION, name })!);

async function runOnce(plainUse: number, deny: boolean) {
  const { m, ports } = setup(plainUse, deny);
  const report = await reconcileReport(
    policy,
    { ports, clock: () => m.now },
    { runId: `starved-${plainUse}-${deny}`, deadlineMs: 60_000, writerId: 'me' },
  );
  // The plan starves plain at 4 either way.
  expect(report.plan?.services.find((s) => s.name === 'plain')?.to).toBe(4);
  expect(report.plan?.alerts.find((a) => a.type === 'service.starved')?.summary).toMatch(
    /^plain gets 4 instances, short of its demand of /,
  );
  const starved = report.alerts.filter((a) => a.type === 'service.starved');
  return { m, report, starved };
}

describe('service.starved after the writes', () => {
  for (const use of [5, 6])
    it(`names the cap written when the lowering lands (in use ${use})`, async () => {
      const { m, starved } = await runOnce(use, false);
      expect(cap(m, 'plain')).toBe(4);
      expect(starved.map((a) => [a.service, a.details.cap])).toEqual([['plain', 4]]);
      expect(starved[0]?.details.shortfall).toBe(Number(starved[0]?.details.demand) - 4);
      expect(starved[0]?.summary).toMatch(/^plain gets 4 instances, short of its demand of /);
    });

  it('is not published for a denied lowering that leaves the service enough', async () => {
    const { m, report, starved } = await runOnce(5, true);
    expect(report.writes.find((w) => w.name === 'plain')?.cause).toBe('denied');
    expect(cap(m, 'plain')).toBe(6);
    expect(starved).toEqual([]);
    // What did happen is said: the denied write.
    expect(report.alerts.some((a) => a.type === 'apply.failed')).toBe(true);
  });

  it('names the cap kept for a denied lowering that still leaves the service short', async () => {
    const { m, report, starved } = await runOnce(6, true);
    expect(report.writes.find((w) => w.name === 'plain')?.cause).toBe('denied');
    expect(cap(m, 'plain')).toBe(6);
    expect(starved.map((a) => [a.service, a.details.cap, a.details.shortfall])).toEqual([
      ['plain', 6, 3],
    ]);
    expect(starved[0]?.summary).toBe('plain gets 6 instances, short of its demand of 9');
  });
});
