import { describe, expect, it } from 'vitest';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy, type PolicyInput } from '../../src/core/policy.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { validateFleet, type FleetInput } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { UnavailableError } from '../../src/core/errors.js';
import { observe } from '../../src/observe/observe.js';
import type { ObservePorts } from '../../src/ports/index.js';
import { plan } from '../../src/core/planner.js';
import { type RunReport } from '../../src/reconcile/reconcile.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * Runs over more than one project, through the in-memory ports over the emulator's fleet model:
 * a project's settings and problems are its own, whatever its name shares with another's, and a
 * pool's settings are one lookup, the same in observation and in the planner.
 */

const REGION = 'us-central1';
const START = '2026-11-27T12:00:00Z';

function fleetOf(projects: string[], quota: number): FleetInput {
  return {
    start: START,
    startupSeconds: 30,
    idleMinutes: 0,
    warmupMinutes: 40,
    projects: projects.map((id) => ({
      id,
      pools: [{ region: REGION, quota }],
      services: [
        { name: 'llm', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: 2 } },
        { name: 'idle', region: REGION, gpu: {}, maxInstances: 2, demand: { constant: 0 } },
      ],
    })),
  };
}

const policyOf = (projects: string[], extra: Partial<PolicyInput> = {}) =>
  parsePolicy({
    version: 1,
    projects,
    regions: [REGION],
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    alerts: { topic: `projects/${projects[0]}/topics/alerts` },
    ...extra,
  });

async function runOnce(
  projects: string[],
  ports: (sim: ObservePorts) => ObservePorts,
): Promise<{ report: RunReport; delivered: Alert[] }> {
  const model = new FleetModel(validateFleet(fleetOf(projects, 8)));
  const sink = new RecordingSink();
  const report = await reconcileReport(
    policyOf(projects),
    {
      ports: ports(createSimPorts(model, { lagMs: 3 * 60_000 })),
      sink,
      clock: () => model.now,
    },
    { runId: 'run-1', deadlineMs: 60_000 },
  );
  return { report, delivered: sink.delivered };
}

describe('a project is judged on its own problems', () => {
  it('a problem of team-acme-ml is not one of team-acme (a project name that begins another)', async () => {
    const { report, delivered } = await runOnce(['team-acme', 'team-acme-ml'], (sim) => ({
      ...sim,
      run: {
        ...sim.run,
        listServices: (project, region) =>
          project === 'team-acme-ml'
            ? Promise.reject(new UnavailableError('UNAVAILABLE: listing failed'))
            : sim.run.listServices(project, region),
      },
    }));
    expect(report.problems).toEqual([
      {
        project: 'team-acme-ml',
        region: REGION,
        pool: null,
        subject: 'services',
        error: 'UNAVAILABLE: listing failed',
      },
    ]);
    const degraded = delivered.filter((a) => a.type === 'governor.degraded');
    expect(degraded.map((a) => a.project)).toEqual(['team-acme-ml']);
    expect(degraded[0]?.details.problems).toEqual([
      `team-acme-ml/${REGION}: services unreadable, region skipped: UNAVAILABLE: listing failed`,
    ]);
    // team-acme was read whole: its pool is planned and written as usual.
    expect(report.plan?.pools.map((p) => [p.project, p.status])).toEqual([['team-acme', 'ok']]);
    expect(
      report.writes.filter((w) => w.project === 'team-acme' && w.cause === 'written'),
    ).not.toEqual([]);
  });
});

describe("a pool's settings are one lookup, used by observation and the planner alike", () => {
  // One project's entry sets only the reserve; a later entry sets the quota for every project.
  const pools: PolicyInput['pools'] = [
    { project: 'team-acme', region: REGION, reserve: 1 },
    { region: REGION, quota: 6 },
  ];

  it("the every-project quota applies beside the project's own reserve", async () => {
    const model = new FleetModel(validateFleet(fleetOf(['team-acme', 'team-beta'], 8)));
    const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
    const quotaReads: string[] = [];
    const ports: ObservePorts = {
      ...sim,
      quotas: {
        gpuQuota: (id) => {
          quotaReads.push(id.project);
          return sim.quotas.gpuQuota(id);
        },
      },
    };
    const policy = policyOf(['team-acme', 'team-beta'], { pools });
    const observation = await observe(policy, ports, model.now);
    // The policy gives both pools a quota, so Cloud Quotas is not read for either...
    expect(quotaReads).toEqual([]);
    expect(observation.problems).toEqual([]);
    // ...and the planner finds that quota too, with team-acme's own reserve.
    const p = plan(observation.snapshot, policy, new Date(model.now).toISOString());
    expect(
      p.pools.map((x) => ({
        project: x.project,
        quota: x.quota,
        quotaSource: x.quotaSource,
        reserve: x.reserve,
      })),
    ).toEqual([
      { project: 'team-acme', quota: 6, quotaSource: 'policy', reserve: 1 },
      { project: 'team-beta', quota: 6, quotaSource: 'policy', reserve: 0 },
    ]);
    expect(p.pools.map((x) => x.status)).not.toContain('unknown-quota');
    // Not fail static: the busy service is raised within the budget.
    const raised = p.changes.filter((c) => c.name === 'llm' && c.to > c.from);
    expect(raised.map((c) => c.project)).toEqual(['team-acme', 'team-beta']);
  });
});

describe("a project's run record", () => {
  it('counts the alert messages of its own project, not those of every project of the run', async () => {
    // team-acme's listing fails: it alone gets governor.degraded, so the projects' counts differ.
    const projects = ['team-acme', 'team-beta'];
    const model = new FleetModel(validateFleet(fleetOf(projects, 8)));
    const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
    const sink = new RecordingSink();
    const store = createMemoryStateStore();
    const report = await reconcileReport(
      policyOf(projects),
      {
        ports: {
          ...sim,
          run: {
            ...sim.run,
            listServices: (project, region) =>
              project === 'team-acme'
                ? Promise.reject(new UnavailableError('UNAVAILABLE: listing failed'))
                : sim.run.listServices(project, region),
          },
        },
        sink,
        store,
        clock: () => model.now,
      },
      { runId: 'run-1', deadlineMs: 60_000 },
    );
    expect(report.published).toBe(sink.delivered.length);
    const counts = await Promise.all(
      projects.map(async (p) => (await store.listRuns(p))[0]?.alerts),
    );
    const sent = projects.map((p) => sink.delivered.filter((a) => a.project === p).length);
    expect(sent[0]).not.toBe(sent[1]);
    expect(counts).toEqual(sent);
  });
});
