import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { RpcError, type FleetInput } from '../../src/emulator/index.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A manually scaled service (svc-m, 2 instances) beside a revision deployed with `--no-traffic
 * --tag canary`. Google, "Traffic splits for manual scaling"
 * (https://cloud.google.com/run/docs/configuring/services/manual-scaling): "If a revision is
 * active only because of a traffic tag: if revision-level minimum instances is set, the specified
 * number of instances are started but don't count towards the service's total manual instance
 * count, and the revision won't autoscale; if revision-level minimum instances is not set, the
 * revision scales up to 1 instance in response to traffic sent to the tag URL." So the canary
 * holds max(its min, 1) instances beside the service's 2. svc-b wants the whole quota of 6.
 * Through the emulator and Google's clients.
 */

const PROJECT = 'manual-tagged-project';
const REGION = 'us-central1';
const QUOTA = 6;
const MANUAL = 2;

function fleetWith(canary: { minInstances?: number } | null): FleetInput {
  return {
    start: '2026-11-27T12:00:00Z',
    warmupMinutes: 40,
    idleMinutes: 0,
    projects: [
      {
        id: PROJECT,
        pools: [{ region: REGION, quota: QUOTA }],
        services: [
          {
            name: 'svc-m',
            region: REGION,
            gpu: {},
            scalingMode: 'MANUAL',
            manualInstanceCount: MANUAL,
            demand: { constant: 1 },
            ...(canary ? { noTrafficRevision: { tag: 'canary', ...canary } } : {}),
          },
          { name: 'svc-b', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: QUOTA } },
        ],
      },
    ],
  };
}

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: QUOTA, scaleDownDelay: '0s' },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

const runOn = emulatorRuns();

const TAGGED = /^service[/ ]svc-m revision svc-m-\S+ \(tagged, outside the traffic split\)$/;

describe('a manually scaled service with a revision only tagged', () => {
  it('counts that revision at its own min instances in its pool, beside the manual count', async () => {
    const { report, emulator, again } = await runOn(fleetWith({ minInstances: 2 }), policy, {
      runId: 'manual-tagged-min',
    });
    expect(report.plan?.pools[0]?.unmanaged).toEqual(
      expect.arrayContaining([{ source: expect.stringMatching(TAGGED), gpus: 2 }]),
    );
    // svc-b takes what the manual count (2) and the canary (2) leave of 6.
    expect(emulator.state().services.find((s) => s.name === 'svc-b')?.effectiveMax).toBe(
      QUOTA - MANUAL - 2,
    );
    emulator.advance(5 * 60_000);
    expect((await again('manual-tagged-min-1')).writes).toEqual([]);
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);

  it('counts it at one instance when it sets no min', async () => {
    const { report, emulator } = await runOn(fleetWith({}), policy, {
      runId: 'manual-tagged-one',
    });
    expect(report.plan?.pools[0]?.unmanaged).toEqual(
      expect.arrayContaining([{ source: expect.stringMatching(TAGGED), gpus: 1 }]),
    );
    expect(emulator.state().services.find((s) => s.name === 'svc-b')?.effectiveMax).toBe(
      QUOTA - MANUAL - 1,
    );
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);

  it('holds every raise in its region while that revision cannot be read', async () => {
    const { report, emulator } = await runOn(fleetWith({ minInstances: 2 }), policy, {
      runId: 'manual-tagged-unread',
      faults: ({ method }) =>
        method.endsWith('/GetRevision')
          ? new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied')
          : undefined,
    });
    expect(report.problems.find((p) => p.subject === 'tagged-revisions')?.error).toMatch(
      /^svc-m: its revision\(s\) svc-m-\S+, only tagged/,
    );
    expect(report.plan?.pools[0]?.status).toBe('unknown-quota');
    expect(report.writes.filter((w) => (w.written ?? 0) > w.from)).toEqual([]);
    expect(emulator.state().services.find((s) => s.name === 'svc-b')?.effectiveMax).toBe(1);
  }, 60_000);

  it('counts a revision another writer tags between the observation and the raise', async () => {
    let listings = 0;
    let tagged = false;
    const { emulator } = await runOn(fleetWith(null), policy, {
      runId: 'manual-tag-meanwhile',
      faults: ({ method, request }, emulator) => {
        if (method.endsWith('/ListServices') && !request['page_token']) listings += 1;
        // The listing before the raises: another writer has just tagged svc-m's older revision.
        if (listings === 2 && !tagged) {
          tagged = true;
          emulator.edit({ service: 'svc-m', tagPrevious: { tag: 'canary' } });
        }
        return undefined;
      },
    });
    expect(tagged).toBe(true);
    // The older revision sets no min: one instance, beside the manual count.
    expect(
      emulator.state().services.find((s) => s.name === 'svc-b')?.effectiveMax,
    ).toBeLessThanOrEqual(QUOTA - MANUAL - 1);
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);
});
