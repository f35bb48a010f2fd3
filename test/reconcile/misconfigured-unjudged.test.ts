import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import type { MonitoringPort } from '../../src/ports/index.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * A `service.misconfigured` condition whose finding needs the service's usage
 * (`min-instances-unused`) is not resolved by a run that could not read that usage: not knowing
 * is not the same as fixed, and the next run that reads it would fire it again as a new episode.
 * `warm` keeps one min instance on an idle GPU, and breaks no other rule.
 */

const PROJECT = 'audit-unjudged';
const REGION = 'us-central1';

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  limits: { writesPerMinute: 6000 },
});

/** Each service.misconfigured alert of a run: its status, service and the rules it names. */
const misconfigured = (r: { alerts: readonly Alert[] }) =>
  r.alerts
    .filter((a) => a.type === 'service.misconfigured')
    .map((a) => [
      a.status,
      a.service,
      (a.details.findings as { rule: string }[] | undefined)?.map((f) => f.rule),
    ]);

const fleet = (minInstances: number) =>
  validateFleet({
    start: '2026-11-27T12:00:00Z',
    warmupMinutes: 40,
    idleMinutes: 0,
    projects: [
      {
        id: PROJECT,
        pools: [{ region: REGION, quota: 10 }],
        services: [
          {
            name: 'warm',
            region: REGION,
            gpu: {},
            maxInstances: 2,
            minInstances,
            startupProbeSeconds: 600,
            demand: { constant: 0 },
          },
        ],
      },
    ],
  });

describe('service.misconfigured while usage is unknown', () => {
  it('stays firing when the run cannot judge its finding, and resolves once fixed', async () => {
    const store = createMemoryStateStore();
    const m = new FleetModel(fleet(1));
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const blind: MonitoringPort = {
      ...sim.monitoring,
      instanceCounts: async () => {
        throw new Error('PERMISSION_DENIED: monitoring.timeSeries.list');
      },
    };
    const run = async (id: string, monitoring: MonitoringPort, model = m) =>
      reconcileReport(
        policy,
        { ports: { ...sim, monitoring }, clock: () => model.now, store },
        { runId: id, deadlineMs: 60_000, writerId: 'me' },
      );

    const first = await run('r1', sim.monitoring);
    expect(misconfigured(first)).toEqual([['firing', 'warm', ['min-instances-unused']]]);

    const unread = await run('r2', blind);
    expect(unread.problems.some((p) => p.subject === 'instance-counts')).toBe(true);
    expect(misconfigured(unread)).toEqual([]);
    expect(Object.keys(await store.loadConditions(PROJECT).then((c) => c.state))).toContain(
      `service.misconfigured:${PROJECT}/${REGION}/nvidia-l4/zonal:warm`,
    );

    // Its min instances set to 0: judged without usage, fixed, resolved.
    const fixed = new FleetModel(fleet(0));
    const simFixed = createSimPorts(fixed, { lagMs: 3 * 60_000 });
    const after = await reconcileReport(
      policy,
      {
        ports: {
          ...simFixed,
          monitoring: { ...simFixed.monitoring, instanceCounts: blind.instanceCounts },
        },
        clock: () => fixed.now,
        store,
      },
      { runId: 'r3', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(misconfigured(after)).toEqual([['resolved', 'warm', undefined]]);
  });
});

describe('service.misconfigured of a manually scaled service while its quota is unknown', () => {
  it('stays firing when the quota cannot be read, as it does for an autoscaled service', async () => {
    const store = createMemoryStateStore();
    const manualFleet = (manualInstanceCount: number) =>
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: 2 }],
            services: [
              {
                name: 'fixed',
                region: REGION,
                gpu: {},
                scalingMode: 'MANUAL',
                manualInstanceCount,
                concurrency: 8,
                startupProbeSeconds: 600,
                demand: { constant: 0 },
              },
            ],
          },
        ],
      });
    const m = new FleetModel(manualFleet(3));
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const run = async (id: string, quotas = sim.quotas, model = m) =>
      reconcileReport(
        policy,
        {
          ports: { ...createSimPorts(model, { lagMs: 3 * 60_000 }), quotas },
          clock: () => model.now,
          store,
        },
        { runId: id, deadlineMs: 60_000, writerId: 'me' },
      );

    const first = await run('r1');
    expect(misconfigured(first)).toEqual([['firing', 'fixed', ['max-within-quota']]]);

    const unread = await run('r2', {
      gpuQuota: async () => {
        throw new Error('PERMISSION_DENIED: cloudquotas.quotas.get');
      },
    });
    expect(unread.plan?.pools.every((p) => p.quota === null)).toBe(true);
    expect(misconfigured(unread)).toEqual([]);
    expect(Object.keys(await store.loadConditions(PROJECT).then((c) => c.state))).toContain(
      `service.misconfigured:${PROJECT}/${REGION}/nvidia-l4/zonal:fixed`,
    );

    // Two instances, within the quota of 2 read again: fixed, resolved.
    const within = new FleetModel(manualFleet(2));
    const fixed = await run('r3', createSimPorts(within, { lagMs: 3 * 60_000 }).quotas, within);
    expect(misconfigured(fixed)).toEqual([['resolved', 'fixed', undefined]]);
  });
});
