import { setTimeout as delay } from 'node:timers/promises';
import pLimit from 'p-limit';
import { createGooglePorts } from '../src/adapters/index.js';
import { createMemoryStateStore } from '../src/adapters/memory/state-store.js';
import { parsePolicy, type Policy } from '../src/core/policy.js';
import { startEmulator } from '../src/emulator/index.js';
import { UnavailableError } from '../src/core/errors.js';
import type { StateStore } from '../src/ports/index.js';
import { reconcile, RunFailedError } from '../src/reconcile/reconcile.js';
import { orgSize } from './org-procs.js';

/**
 * Organisation scale: `projects` projects × `services` GPU services each, every RPC delayed by an
 * injected RTT. Each project is one unit, governed by its own reconcile run exactly as the unit
 * function runs it (the policy narrowed to the project), at most `concurrency` at once (the unit
 * function's max instances). Measured within one run:
 * - the slowest of a few projects governed alone, and the whole organisation, wall clock;
 * - reads per project, alone and within the organisation (they must be the same);
 * - chaos: a share of units fail (UNAVAILABLE on every call of theirs) on their first deliveries;
 *   each is redelivered (up to `attempts`, as the work subscription does), then counted as
 *   dead-lettered; every other unit must complete and no pool may end above its quota.
 *
 * Units run in this one process, on this machine's cores, against one emulator: the CPU the
 * emulator and the clients spend is shared here, where Google runs each unit in its own instance.
 * `npm run bench` takes the chaos part from here (`timing: false`) and the timing from
 * bench/org-procs.ts, which runs the emulator and the units in processes of their own, as deployed;
 * the timing here remains for profiling the emulator and the governor in one process.
 */
export interface OrgBench {
  projects: number;
  services: number;
  concurrency: number;
  rttMs: number;
  /** Null when the timing was not asked for (`timing: false`: the chaos part alone). */
  timing: {
    slowestSingleMs: number;
    orgMs: number;
    ratio: number;
    /** CPU this process (the units and the emulator together) spent a unit in the organisation. */
    cpuPerUnitMs: number;
    readsPerProjectAlone: number;
    readsPerProjectInOrg: number;
  } | null;
  chaos: {
    failingUnits: number;
    completedOthers: number;
    others: number;
    retriedAndRecovered: number;
    deadLettered: number;
    /** Writes after which their pool's caps were above its quota (a count of writes, not pools). */
    poolsOverQuota: number;
  };
}

const WRITES = new Set(['UpdateService']);

export async function benchOrg(
  opts: {
    projects?: number;
    services?: number;
    concurrency?: number;
    rttMs?: number;
    seed?: number;
    /** False: the chaos part alone (the timing is bench/org-procs.ts's, in processes). */
    timing?: boolean;
  } = {},
): Promise<OrgBench> {
  const P = opts.projects ?? 1000;
  const S = opts.services ?? 10;
  const C = opts.concurrency ?? 500;
  const rttMs = opts.rttMs ?? 50;
  const id = (i: number) => `org-proj-${String(i).padStart(4, '0')}`;
  const projects = Array.from({ length: P }, (_, i) => ({
    id: id(i),
    pools: [{ region: 'us-central1', quota: 2 * S }],
    services: Array.from({ length: S }, (_, s) => ({
      name: `llm-${s}`,
      region: 'us-central1',
      gpu: {},
      maxInstances: s === 0 ? 1 : 2,
      demand: s === 0 ? 3 : 1,
    })),
  }));
  // Which units fail, and for how many deliveries: a seeded 5%, half recovering on redelivery.
  let seed = opts.seed ?? 17;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const failing = new Map<string, number>();
  for (let i = 0; i < P; i++) if (random() < 0.05) failing.set(id(i), random() < 0.5 ? 1 : 99);
  let chaosOn = false;
  const emulator = await startEmulator({
    fleet: { start: '2026-11-27T12:00:00Z', warmupMinutes: 35, projects },
    speed: 'manual',
    operationDelayMs: 0,
    pageSize: 100,
    faults: async () => {
      await delay(rttMs);
      return undefined;
    },
  });
  const ports = createGooglePorts({ emulatorHost: emulator.host });
  const inner = createMemoryStateStore();
  // Chaos: a failing unit's run cannot take its lease (the store is unreachable for it), as a
  // unit that crashes or times out before doing anything; it is redelivered like any other.
  const store: StateStore = {
    ...inner,
    acquireLease: async (project, holder, ttl, now) => {
      const left = failing.get(project);
      if (chaosOn && left !== undefined && left > 0)
        throw new UnavailableError(`chaos: the store is unreachable for ${project}`);
      return inner.acquireLease(project, holder, ttl, now);
    },
  };
  const base = parsePolicy({
    version: 1,
    discovery: { organization: '1' },
    defaults: { min: 1, max: 4, headroom: 0 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
  });
  const deps = {
    ports,
    store,
    sink: null,
    log: { log: () => undefined },
    now: async () => emulator.now().getTime(),
  };
  const unit = (p: string): Policy => ({ ...base, projects: [p], regions: ['us-central1'] });
  let runs = 0;
  const govern = (p: string, mode?: 'dry-run') =>
    reconcile(unit(p), deps, {
      runId: `bench-${runs++}`,
      deadlineMs: 600_000,
      ...(mode ? { mode } : {}),
    });
  const reads = () =>
    emulator.calls().filter((c) => !WRITES.has(c.method.split('/')[1] ?? '')).length;
  try {
    const log = (m: string) => process.stderr.write(`org bench: ${m}\n`);
    let timing: OrgBench['timing'] = null;
    if (opts.timing !== false) {
      log(`warm-up of ${P} projects`);
      // Warm-up: the clients load their protos, the emulator builds every project's history.
      await pLimit(C).map(projects, (p) => govern(p.id, 'dry-run'));
      // A few projects alone, one after another: the slowest is the yardstick.
      let slowestSingleMs = 0;
      let aloneReads = 0;
      const alone = [id(P - 1), id(P - 2), id(P - 3)];
      for (const p of alone) {
        emulator.resetCalls();
        const t0 = performance.now();
        await govern(p, 'dry-run');
        slowestSingleMs = Math.max(slowestSingleMs, performance.now() - t0);
        aloneReads = Math.max(aloneReads, reads());
      }
      log(`slowest single ${Math.round(slowestSingleMs)} ms; the organisation next`);
      // The whole organisation, dry-run (the same reads), at most C at once.
      emulator.resetCalls();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await pLimit(C).map(projects, (p) => govern(p.id, 'dry-run'));
      const orgMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      log(`organisation ${Math.round(orgMs)} ms`);
      timing = {
        slowestSingleMs,
        orgMs,
        ratio: orgMs / slowestSingleMs,
        cpuPerUnitMs: (cpu.user + cpu.system) / 1000 / P,
        readsPerProjectAlone: aloneReads,
        readsPerProjectInOrg: reads() / P,
      };
    }

    // Chaos, enforcing: every unit delivered; a failed one redelivered up to 5 times.
    chaosOn = true;
    const failingAtStart = [...failing.keys()];
    log(`chaos: ${failingAtStart.length} failing unit(s)`);
    emulator.resetCalls();
    const attempts = 5;
    const outcome = new Map<string, 'ok' | 'dead'>();
    let recovered = 0;
    await pLimit(C).map(projects, async (p) => {
      for (let a = 1; a <= attempts; a++) {
        let ok: boolean;
        try {
          ok = (await govern(p.id)).outcome === 'ok';
        } catch (e) {
          // A unit that throws is a failed delivery (the function answers 500): counted below.
          if (!(e instanceof RunFailedError) && !(e instanceof UnavailableError)) throw e;
          ok = false;
        }
        if (ok) {
          outcome.set(p.id, 'ok');
          if (a > 1) recovered++;
          return;
        }
        const left = failing.get(p.id);
        if (left !== undefined) failing.set(p.id, left - 1);
      }
      outcome.set(p.id, 'dead');
    });
    const failingIds = new Set(failingAtStart);
    const others = projects.filter((p) => !failingIds.has(p.id));
    const over = emulator.writes().filter((w) => w.pool !== null && w.pool.capsGpus > 2 * S).length;
    return {
      projects: P,
      services: S,
      concurrency: C,
      rttMs,
      timing,
      chaos: {
        failingUnits: failingIds.size,
        completedOthers: others.filter((p) => outcome.get(p.id) === 'ok').length,
        others: others.length,
        retriedAndRecovered: recovered,
        deadLettered: [...outcome.values()].filter((o) => o === 'dead').length,
        poolsOverQuota: over,
      },
    };
  } finally {
    await ports.close();
    await emulator.stop();
  }
}

// `node dist/bench/org.js`: everything in this one process (the profile of docs/performance.md).
// BENCH_ORG_PROJECTS (default 200) and BENCH_ORG_INSTANCES (units at once, default 500), the names
// npm run bench reads; BENCH_ORG_CONCURRENCY is the older name of the second.
if (process.argv[1]?.endsWith('/org.js')) {
  const size = orgSize(process.env, { projects: 200, instances: 500, workers: 1 });
  const r = await benchOrg({ projects: size.projects, concurrency: size.instances });
  console.log(JSON.stringify(r, null, 2));
}
