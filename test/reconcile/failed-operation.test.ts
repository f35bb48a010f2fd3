import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { applyOtherActor } from '../../src/emulator/context.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { effectiveMax, FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { QuotaRejectedError, UnavailableError, UpstreamError } from '../../src/core/errors.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A raise whose operation ends with an error may still have applied: Cloud Run stores the new
 * spec when it accepts an update, and a reconciliation that fails leaves it there (only
 * `observed_generation` and the latest ready revision stay at the last serving state, says the
 * `reconciling` field of
 * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services). Quota 4: two
 * governed services at max 1 that want more, one unmanaged service at max 1. Another writer fills
 * the pool in the round trip between the read before the raises and the first raise, whose
 * operation then fails (INTERNAL) with the new max in place: the verify read finds the pool over,
 * and that raise must come down too.
 */

const PROJECT = 'failed-op-project';
const REGION = 'us-central1';

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 3 },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 6000 },
});

function setup(code: string) {
  const m = new FleetModel(
    validateFleet(
      onePoolFleet(PROJECT, REGION, 4, [
        ['svc-a', 1, 3],
        ['svc-b', 1, 0],
        ['ext-render', 1, 0],
      ]),
    ),
  );
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  const pool = m.pools(PROJECT)[0]!;
  let raced = false;
  const run: CloudRunPort = {
    ...sim.run,
    updateMaxInstances: async (u) => {
      const s = m.getService(u);
      if (raced || !s || u.maxInstances <= effectiveMax(s)) return sim.run.updateMaxInstances(u);
      raced = true;
      // The other writer, inside the window: ext-render takes what is left of the quota.
      applyOtherActor(m, pool, { where: 0, kind: 'fill', pick: 0 });
      // The raise is applied (Cloud Run checks one service at a time), then its operation fails.
      await sim.run.updateMaxInstances(u);
      throw new UpstreamError(`${code}: the update operation of ${u.name} failed`);
    },
  };
  return { m, pool, ports: { ...sim, run }, raced: () => raced };
}

const capsGpus = (m: FleetModel): number =>
  m.listServices(PROJECT).reduce((sum, s) => sum + effectiveMax(s), 0);

describe('a raise whose operation failed', () => {
  for (const code of ['INTERNAL', 'UNKNOWN'])
    it(`is lowered back when the pool is over just after it (${code})`, async () => {
      const { m, ports, raced } = setup(code);
      const report = await reconcileReport(
        policy,
        { ports, clock: () => m.now },
        { runId: 'failed-op', deadlineMs: 60_000, writerId: 'me' },
      );
      expect(raced()).toBe(true);
      expect(
        m.getService({ project: PROJECT, region: REGION, name: 'ext-render' })?.maxInstances,
      ).toBeGreaterThan(1);
      // The run fails loudly (a write failed), and leaves the pool within its quota.
      expect(report.outcome).toBe('failed');
      const failed = report.writes.find((w) => w.name === 'svc-a' && w.outcome === 'failed');
      expect(failed?.reason).toContain('may still apply');
      expect(report.writes.some((w) => w.name === 'svc-a' && w.cause === 'compensated')).toBe(true);
      expect(capsGpus(m)).toBeLessThanOrEqual(4);
    });

  it('refused outright by Cloud Run is not verified: no read after it, no unverified alert', async () => {
    const m = new FleetModel(
      validateFleet(
        onePoolFleet(PROJECT, REGION, 4, [
          ['svc-a', 1, 3],
          ['svc-b', 1, 0],
          ['ext-render', 1, 0],
        ]),
      ),
    );
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    let lists = 0;
    const run: CloudRunPort = {
      ...sim.run,
      // Refused before Cloud Run took it (its quota check): nothing of it can have landed.
      updateMaxInstances: async (u) => {
        const s = m.getService(u);
        if (!s || u.maxInstances <= effectiveMax(s)) return sim.run.updateMaxInstances(u);
        throw new QuotaRejectedError(`FAILED_PRECONDITION: ${u.name} does not fit the GPU quota`);
      },
      // The observation and the read before the raises answer; any read after them fails.
      listServices: async (p, r) => {
        if (++lists > 2) throw new UnavailableError('UNAVAILABLE: injected');
        return sim.run.listServices(p, r);
      },
    };
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, run }, clock: () => m.now },
      { runId: 'refused', deadlineMs: 60_000, writerId: 'me' },
    );
    const refused = report.writes.find((w) => w.name === 'svc-a');
    expect(refused).toMatchObject({ outcome: 'failed', cause: 'failed' });
    expect(lists).toBe(2);
    expect(
      report.alerts.some(
        (a) => a.type === 'governor.degraded' && a.details['reason'] === 'unverified',
      ),
    ).toBe(false);
  });
});
