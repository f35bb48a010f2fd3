import { describe, expect, it } from 'vitest';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import { parsePolicy } from '../../src/core/policy.js';
import {
  chaosProblems,
  chaosScenario,
  chaosSettings,
  invariantsOf,
  runChaos,
  renderChaosReport,
  CHAOS_PROJECT,
} from '../../src/chaos/chaos.js';
import { FleetModel, startEmulator } from '../../src/emulator/index.js';
import { InvariantMonitor } from '../../src/emulator/invariants.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { UnavailableError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile, RunFailedError, type RunReport } from '../../src/reconcile/reconcile.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { createSimPorts, watchWrites } from '../../src/emulator/ports.js';
import type { StateStore } from '../../src/ports/index.js';
import { clockStillUntilWrites } from '../support/reconcile-run.js';

/**
 * Rules 1, 3 and 9 of docs/rules.md under faults. 2,500 randomized governor runs in process (the
 * emulator's fleet model behind the in-memory ports, every port, the store and the sink faulty),
 * then fewer through the real gRPC emulator and Google's clients with the emulator's own fault
 * injection. The seed is printed; CHAOS_SEED and CHAOS_RUNS reproduce or enlarge a run. Monitoring
 * fails here too, but nothing here judges rule 4 (unknown usage lowers no cap): the planner's
 * property test does (test/core/planner.property.test.ts, "rule 4").
 */

// A fixed seed by default, so that CI is reproducible; `npm run chaos` explores new seeds.
// 2,500 runs: another writer acts in about 3 of 5 (every run draws it, the fault-free last run of
// each fleet too; it acts if the run reaches the read or write it was drawn for): 1,000 and more.
const SETTINGS = chaosSettings(process.env, { seed: 20261127, runs: 2500 });
if ('error' in SETTINGS) throw new Error(SETTINGS.error);
const { seed: SEED, runs: RUNS } = SETTINGS;

describe('chaos: randomized governor runs under faults', () => {
  it(`holds the invariants over ${RUNS} runs (seed ${SEED}; reproduce with CHAOS_SEED=${SEED})`, async () => {
    console.log(`chaos seed ${SEED} (CHAOS_SEED=${SEED} reproduces it)`);
    const report = await runChaos({ seed: SEED, runs: RUNS });
    console.log(renderChaosReport(report));
    const detail = JSON.stringify(
      {
        violations: report.violations.slice(0, 5),
        lost: report.alertsLost.slice(0, 5),
        crashes: report.crashes.slice(0, 3),
        leasesLeft: report.leasesLeft.slice(0, 3),
        overAfterRun: report.overAfterRun.slice(0, 3),
      },
      null,
      2,
    );
    expect(report.runs).toBeGreaterThanOrEqual(RUNS);
    // Rule 1 and rule 3: no write took a pool over quota, none touched an unmanaged or
    // reconciling service.
    expect(report.violations, detail).toEqual([]);
    // Rule 9: every alert decided was published, or the run failed and a later run sent it; every
    // write the fleet applied is described by a published event of its run; every failed run
    // logged its structured ERROR line.
    expect(report.writesAnnounced).toBeGreaterThan(RUNS / 10);
    expect(report.failuresOnlyLogged, 'runs failed with the store down').toBeGreaterThan(0);
    expect(report.alertsLost, detail).toEqual([]);
    expect(report.crashes, detail).toEqual([]);
    // The faults did happen, of every kind.
    for (const kind of [
      'UNAVAILABLE',
      'DEADLINE_EXCEEDED',
      'RESOURCE_EXHAUSTED',
      'ABORTED',
      'PERMISSION_DENIED',
      'INTERNAL',
      'operation-failed',
      'operation-hung',
      'operation-failed-applied',
      'concurrent-deploy',
      'concurrent-max',
      'quota-changed',
      'monitoring-gap',
      'monitoring-stale',
      'store-unavailable',
      'store-answer-lost',
      'publish-failed',
      'other-actor-fill',
      'other-actor-cut-quota',
      'other-actor-deploy',
      'other-actor-redeploy',
      'other-actor-manual',
      'other-actor-revision-max',
      'other-actor-no-traffic',
      'other-actor-canary',
      'other-actor-split',
      'other-actor-pool-split',
    ])
      expect(report.faults[kind] ?? 0, kind).toBeGreaterThan(0);
    // No run left the lease held when it could give it back; the runs without faults or another
    // writer left every pool whose floors fit within its quota.
    expect(report.leasesLeft, detail).toEqual([]);
    // A lease whose release never reached the store stays until it expires, and a later run takes
    // it (a run refused it would be in leasesLeft).
    expect(report.leasesLeftToExpire).toBeGreaterThan(0);
    expect(report.poolsCheckedAfterRun).toBeGreaterThan(0);
    expect(report.overAfterRun, detail).toEqual([]);
    // The other writer acted in a thousand runs and more, got inside Cloud Run's window, and
    // those raises were lowered back.
    if (!process.env.CHAOS_RUNS) expect(report.otherActorRuns).toBeGreaterThanOrEqual(1000);
    expect(report.races, 'raises raced by another writer').toBeGreaterThan(0);
    expect(report.compensated, 'raises lowered back').toBeGreaterThan(0);
    expect(report.writesChecked).toBeGreaterThan(RUNS / 10);
  }, 240_000);

  it('npm run chaos fails when the other writer acted in fewer runs than asked', async () => {
    const report = await runChaos({ seed: SEED, runs: 10 });
    expect(report.otherActorRuns).toBeGreaterThan(0);
    expect(chaosProblems(report, report.otherActorRuns)).toEqual([]);
    expect(chaosProblems(report, report.otherActorRuns + 1)).toEqual([
      `another writer acted in ${report.otherActorRuns} of ${report.runs} runs, fewer than the ${report.otherActorRuns + 1} asked for`,
    ]);
  });

  it('reads CHAOS_SEED, CHAOS_RUNS and CHAOS_OTHER_RUNS as whole numbers, and refuses anything else', () => {
    const defaults = { seed: 7, runs: 30 };
    expect(chaosSettings({}, defaults)).toEqual({ seed: 7, runs: 30, otherActorRuns: 30 });
    expect(chaosSettings({ CHAOS_SEED: '', CHAOS_RUNS: ' ' }, defaults)).toEqual({
      seed: 7,
      runs: 30,
      otherActorRuns: 30,
    });
    expect(
      chaosSettings({ CHAOS_SEED: '4294967295', CHAOS_RUNS: '5', CHAOS_OTHER_RUNS: '0' }, defaults),
    ).toEqual({ seed: 4294967295, runs: 5, otherActorRuns: 0 });
    // A seed that is not a number ran as seed 0 while the report printed NaN.
    for (const [name, value] of [
      ['CHAOS_SEED', 'abc'],
      ['CHAOS_SEED', '1.5'],
      ['CHAOS_SEED', '-1'],
      ['CHAOS_SEED', '4294967296'],
      ['CHAOS_RUNS', '0'],
      ['CHAOS_RUNS', '1e3'],
      ['CHAOS_OTHER_RUNS', 'many'],
    ] as const) {
      const got = chaosSettings({ [name]: value }, defaults);
      expect(got, `${name}=${value}`).toEqual({ error: expect.stringContaining(name) as string });
      expect('error' in got && got.error, `${name}=${value}`).toContain(JSON.stringify(value));
    }
  });

  it('the same seed gives the same runs', async () => {
    const a = await runChaos({ seed: SEED, runs: 40 });
    const b = await runChaos({ seed: SEED, runs: 40 });
    expect(b).toEqual(a);
  });

  it('the invariant monitor flags a raise that takes a pool over quota, and a write to an unmanaged service', () => {
    const setup = () => {
      const model = new FleetModel(validateFleet(chaosScenario(7).fleet));
      const svc = model.listServices().find((s) => s.spec.gpu);
      const pool = svc && model.poolOf(svc);
      if (!svc || !pool) throw new Error('the scenario has no GPU service');
      return { model, svc, quota: model.quotaFor(pool) ?? 0 };
    };
    // Governed: a raise past the quota is a violation; a decrease never is.
    const a = setup();
    const governed = new InvariantMonitor();
    a.model.update(a.svc, { maxInstances: a.quota + 1 });
    expect(governed.afterWrite(a.model, a.svc, 1, 'now', 1, a.quota + 1)?.kind).toBe('over-quota');
    a.model.update(a.svc, { maxInstances: a.quota });
    expect(governed.afterWrite(a.model, a.svc, 2, 'now', a.quota + 1, a.quota)).toBeNull();
    // Unmanaged: any write is a violation.
    const b = setup();
    const hands = new InvariantMonitor();
    hands.configure({ unmanaged: [{ name: b.svc.name }] });
    hands.beforeWrite(b.svc, 1, 'now', 1, 1);
    expect(hands.violations().map((x) => x.kind)).toEqual(['unmanaged']);
  });
});

describe('chaos through the gRPC emulator and Google clients', () => {
  it('seeded fault injection: errors, latency, failed and hung operations, concurrent changes, another writer in the window, gaps; no violation', async () => {
    const totals: Record<string, number> = {};
    let checks = 0;
    // Every kind of fault must have been played: the faults are drawn from a seeded stream, but
    // the order of the draws follows the calls, which latency interleaves differently from run to
    // run, and the other writer's change counts only when it changed something (a full pool
    // cannot be filled, and after a governor's run most pools are full). So one kind could be
    // missing from 12 fleets, and, by chance, from 40 (it happened once in CI). After the first 12
    // fleets the other writer plays only the kinds still unseen, at a higher rate, up to 40
    // fleets; one never seen then fails.
    const kinds = [
      'UNAVAILABLE',
      'ABORTED',
      'latency',
      'operation-failed',
      'operation-hung',
      'other-actor-fill',
      'other-actor-cut-quota',
      'other-actor-deploy',
      'other-actor-manual',
    ];
    const unseen = () => kinds.some((kind) => (totals[kind] ?? 0) === 0);
    const actorKinds = ['fill', 'cut-quota', 'deploy', 'redeploy', 'manual'] as const;
    let fleets = 0;
    for (let i = 0; i < 12 || (unseen() && i < 40); i++) {
      fleets++;
      const scenario = chaosScenario(SEED + i);
      const missing = actorKinds.filter(
        (k) => kinds.includes(`other-actor-${k}`) && (totals[`other-actor-${k}`] ?? 0) === 0,
      );
      const narrowed = i >= 12 && missing.length > 0;
      const emulator = await startEmulator({
        fleet: scenario.fleet,
        speed: 'manual',
        operationDelayMs: 5,
        inject: {
          seed: SEED + i,
          errors: [
            { method: '*', code: 'UNAVAILABLE', rate: 0.05 },
            { method: 'UpdateService', code: 'ABORTED', rate: 0.1 },
            { method: 'GetService', code: 'DEADLINE_EXCEEDED', rate: 0.05 },
            { method: 'ListTimeSeries', code: 'RESOURCE_EXHAUSTED', rate: 0.1 },
            { method: 'GetQuotaInfo', code: 'INTERNAL', rate: 0.1 },
            { method: 'ListWorkerPools', code: 'PERMISSION_DENIED', rate: 0.05 },
          ],
          latency: [{ method: '*', rate: 0.3, distribution: 'exponential', meanMs: 5, maxMs: 50 }],
          operations: { failRate: 0.15, hangRate: 0.15, hangMs: 60_000 },
          monitoring: { gapRate: 0.2, extraLagMs: 0 },
          concurrent: { rate: 0.1, deploySeconds: 60 },
          otherActor: {
            rate: narrowed ? 0.5 : 0.1,
            deploySeconds: 60,
            kinds: narrowed ? missing : [...actorKinds],
          },
        },
        invariants: invariantsOf(scenario),
      });
      const emulatorHost = emulator.host;
      const retry = { maxAttempts: 2, minBackoffMs: 1, maxBackoffMs: 2, attemptTimeoutMs: 2_000 };
      const run = createCloudRunAdapter({
        emulatorHost,
        retry,
        operationPolling: { initialDelayMs: 5, maxDelayMs: 20, timeoutMs: 300 },
      });
      const monitoring = createMonitoringAdapter({ emulatorHost, retry });
      const quotas = createQuotaAdapter({ emulatorHost, retry });
      const store = createMemoryStateStore();
      const sink = new RecordingSink();
      try {
        for (let r = 0; r < 3; r++) {
          await reconcile(
            scenario.policy,
            {
              ports: { run, monitoring, quotas },
              store,
              sink,
              log: memoryLogger(),
              now: async () => emulator.now().getTime(),
              sleep: async () => {},
            },
            { runId: `grpc-${i}-${r}`, deadlineMs: 30_000 },
          ).catch((e: unknown) => {
            if (!(e instanceof RunFailedError)) throw e;
          });
          emulator.judgeRaces();
          emulator.advance(5 * 60_000);
        }
        const { violations, checks: c } = emulator.violations();
        checks += c;
        expect(violations, JSON.stringify(violations.slice(0, 3))).toEqual([]);
        for (const [k, v] of Object.entries(emulator.faults().injected))
          totals[k] = (totals[k] ?? 0) + v;
      } finally {
        await Promise.allSettled([run.close(), monitoring.close(), quotas.close()]);
        await emulator.stop();
      }
    }
    console.log(
      `gRPC chaos (seed ${SEED}): ${fleets} fleets, ${checks} writes checked, faults ${JSON.stringify(totals)}`,
    );
    for (const kind of kinds) expect(totals[kind] ?? 0, kind).toBeGreaterThan(0);
  }, 180_000);

  it('the control surface configures faults and reports violations over HTTP', async () => {
    const emulator = await startEmulator({ fleet: chaosScenario(3).fleet, speed: 'manual' });
    try {
      const admin = emulator.env.GOVERNOR_EMULATOR_ADMIN ?? '';
      const bad = await fetch(`${admin}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ errors: [{ code: 'NOPE', rate: 2 }] }),
      });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(await bad.json())).toContain('errors.0.code');
      const ok = await fetch(`${admin}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          seed: 5,
          errors: [{ method: 'GetService', code: 'INTERNAL', rate: 1 }],
        }),
      });
      expect(ok.status).toBe(200);
      const faults = (await (await fetch(`${admin}/faults`)).json()) as {
        config: { seed: number };
      };
      expect(faults.config.seed).toBe(5);
      const v = (await (await fetch(`${admin}/violations`)).json()) as { violations: unknown[] };
      expect(v.violations).toEqual([]);
    } finally {
      await emulator.stop();
    }
  });
});

describe('two governors at once', () => {
  const policy = parsePolicy({
    version: 1,
    projects: [CHAOS_PROJECT],
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
  });
  const fleet = () =>
    new FleetModel(
      validateFleet({
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 40,
        idleMinutes: 0,
        projects: [
          {
            id: CHAOS_PROJECT,
            pools: [{ region: 'us-central1', quota: 6 }],
            services: [
              { name: 'idle', region: 'us-central1', gpu: {}, maxInstances: 4, demand: 0 },
              { name: 'busy', region: 'us-central1', gpu: {}, maxInstances: 1, demand: 3 },
              { name: 'steady', region: 'us-central1', gpu: {}, maxInstances: 1, demand: 1 },
            ],
          },
        ],
      }),
    );

  it('never both act, and never over budget', async () => {
    for (let round = 0; round < 20; round++) {
      const model = fleet();
      const monitor = new InvariantMonitor();
      const store = createMemoryStateStore();
      const writers = new Set<string>();
      let seq = 0;
      const deps = (who: string) => {
        const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
        return {
          ports: {
            ...sim,
            run: watchWrites(sim.run, (u) => {
              writers.add(who);
              seq += 1;
              const s = model.getService(u);
              if (s) monitor.afterWrite(model, u, seq, 'now', 0, u.maxInstances);
            }),
          },
          store,
          sink: null,
          log: memoryLogger(),
          now: async () => model.now,
          sleep: async () => {},
        };
      };
      const [a, b] = await Promise.all([
        reconcile(policy, deps('a'), { runId: `a-${round}`, deadlineMs: 30_000 }),
        reconcile(policy, deps('b'), { runId: `b-${round}`, deadlineMs: 30_000 }),
      ]);
      const outcomes = [a.outcome, b.outcome].sort();
      expect(outcomes).toEqual(['lease-held', 'ok']);
      expect(writers.size).toBe(1);
      expect(monitor.violations()).toEqual([]);
      expect(model.listServices().reduce((n, s) => n + s.maxInstances, 0)).toBeLessThanOrEqual(6);
    }
  });

  it('with the lease store down, neither acts: both fail loudly and nothing is written', async () => {
    const model = fleet();
    const down = createMemoryStateStore();
    const broken: StateStore = {
      ...down,
      acquireLease: async () => {
        throw new UnavailableError('the state store is unavailable');
      },
    };
    let writes = 0;
    const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
    const deps = {
      ports: { ...sim, run: watchWrites(sim.run, () => (writes += 1)) },
      store: broken,
      sink: null,
      log: memoryLogger(),
      now: async () => model.now,
    };
    const results = await Promise.allSettled([
      reconcile(policy, deps, { runId: 'a', deadlineMs: 30_000 }),
      reconcile(policy, deps, { runId: 'b', deadlineMs: 30_000 }),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(RunFailedError);
        expect((r.reason as RunFailedError).report.error).toContain('lease');
      }
    }
    expect(writes).toBe(0);
  });
});

describe('timeouts and the run deadline', () => {
  it('a write that never answers cannot hold the run past its deadline: the run reports it', async () => {
    const model = new FleetModel(validateFleet(chaosScenario(11).fleet));
    const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
    const policy = parsePolicy({
      version: 1,
      projects: [CHAOS_PROJECT],
      services: [{ match: {} }],
      defaults: { headroom: 0.5, scaleDownDelay: '0s' },
      limits: { writesPerMinute: 6000 },
    });
    let calls = 0;
    const hung = {
      ...sim.run,
      updateMaxInstances: () => {
        calls += 1;
        return new Promise<never>(() => {});
      },
    };
    // 300 ms left for the writes, however long observing and planning took.
    const deadlineMs = 60_000;
    const { store, wallClock, writing } = clockStillUntilWrites(deadlineMs, 300);
    let report: RunReport | null = null;
    try {
      report = await reconcile(
        policy,
        {
          ports: { ...sim, run: hung },
          store,
          sink: null,
          log: memoryLogger(),
          now: async () => model.now,
          wallClock,
        },
        { runId: 'hung', deadlineMs },
      );
    } catch (e) {
      if (!(e instanceof RunFailedError)) throw e;
      report = e.report;
    }
    // A hung write never answers, so returning at all shows the deadline held. The scenario does
    // write (else this would show nothing). The decreases go out together, so each one sent hung;
    // nothing was sent after them: the increases wait for the decreases, and the deadline came.
    const sent = report?.writes.filter((w) => w.cause === 'uncertain') ?? [];
    expect(writing()).toBe(true);
    expect(calls).toBeGreaterThan(0);
    expect(sent).toHaveLength(calls);
    for (const w of sent) expect(w.planned).toBeLessThan(w.from);
    for (const w of report?.writes.filter((x) => x.planned > x.from) ?? [])
      expect(w.cause).toBe('deadline');
    expect(report?.outcome).toBe('failed');
    // The hung write may still land: it is counted as uncertain, and its reason says why.
    const uncertain = report?.writes.find((w) => w.cause === 'uncertain');
    expect(uncertain?.outcome).toBe('failed');
    expect(uncertain?.reason).toContain('deadline');
  });

  it('an observation that never answers fails the run at its deadline', async () => {
    const model = new FleetModel(validateFleet(chaosScenario(12).fleet));
    const sim = createSimPorts(model, { lagMs: 3 * 60_000 });
    const never = { ...sim.run, listServices: () => new Promise<never>(() => {}) };
    const policy = parsePolicy({ version: 1, projects: [CHAOS_PROJECT] });
    await expect(
      reconcile(
        policy,
        {
          ports: { ...sim, run: never },
          store: createMemoryStateStore(),
          sink: null,
          log: memoryLogger(),
          now: async () => model.now,
        },
        { runId: 'stuck', deadlineMs: 200 },
      ),
    ).rejects.toThrow(/deadline/);
  });
});
