import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { settingOrExit, wholeNumberSetting } from '../src/chaos/settings.js';
import { handleDispatch } from '../src/function/org.js';
import type { Logger } from '../src/log.js';
import { stopProcess } from './function-host.js';
import { largestFitting, orgVerdict } from './org-verdict.js';
import { benchTempDir, removeBenchTempDir, stopWithBench } from './stop-on-signal.js';

/**
 * The organisation as it is deployed (docs/organization.md), on this machine:
 * - the emulator in a process of its own (`governor emulator`), every RPC delayed by the
 *   injected RTT (its `POST /faults` latency rule);
 * - the dispatch by the function's own code (`handleDispatch`, what `governorDispatch` runs):
 *   Cloud Asset Inventory search of the organisation, one work message per project published to
 *   the work topic (the emulator's Pub/Sub);
 * - every published message delivered as a Pub/Sub push request to the unit function's own entry
 *   (`handleUnitPush`, what `governorUnit` runs), in `workers` worker processes that stand in for
 *   the function's instances, at most `instances` units at once (the function's max instances,
 *   one request an instance);
 * - the state store of the function's default (files), shared by every process;
 * - the emulator's clock at the wall clock's pace (`--speed 1`), the fleet starting now.
 * The policy is a dry run, so that every unit reads the same fleet, alone or in the organisation.
 *
 * Measured within one run: the slowest of three projects governed alone (the same path, one at a
 * time), the whole organisation (dispatch to the last unit's answer), reads per project, and the
 * CPU each process spent (the workers' process.cpuUsage, the emulator's /proc/PID/stat). From the
 * CPU: the least wall time this machine's cores can give that work, and whether the target
 * (≤ 2× the slowest project) fits in it; then the largest organisation whose work fits in 70% of
 * the cores within 2× the slowest project, governed the same way, which is the test of the
 * fan-out design itself on this machine.
 */

export interface OrgRound {
  projects: number;
  /** Dispatch (search and publish) to the last unit's answer; null for a round without dispatch. */
  orgMs: number | null;
  dispatchMs: number | null;
  /** First unit sent to the last unit's answer. */
  unitsMs: number;
  ratio: number;
  unitFailures: number;
  readsPerProject: number;
  /** Every call of the round (the dispatch's included), by method and answer. */
  calls: Record<string, number>;
  cpu: { unitsS: number; emulatorS: number; dispatchS: number; totalS: number };
  /** CPU-seconds ÷ (wall × cores): 1 is every core busy for the whole round. */
  cpuShare: number;
}

export interface OrgProcsBench {
  projects: number;
  services: number;
  instances: number;
  workers: number;
  rttMs: number;
  cores: number;
  load: { before: number[]; after: number[] };
  slowestSingleMs: number;
  readsPerProjectAlone: number;
  /** The calls of the last project governed alone, by method and answer. */
  callsAlone: Record<string, number>;
  org: OrgRound;
  /** CPU-milliseconds a unit costs, its own process and the emulator's share. */
  perUnitCpuMs: { unit: number; emulator: number };
  /** totalS ÷ cores: no schedule on these cores governs the organisation faster. */
  minWallMs: number;
  targetMs: number;
  /** Cores the organisation's CPU-seconds need to fit within the target. */
  coresNeeded: number;
  verdict: string;
  /** The largest organisation whose work fits in 70% of the cores within the target. */
  sized: OrgRound | null;
}

const HOME = 'gov-home-proj';
const TOPIC = `projects/${HOME}/topics/gpu-governor-work`;
const ORG = '123456789012';
const WRITES = new Set(['UpdateService']);
const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '..', '..');
const quiet: Logger = {
  log: (severity, message) => {
    if (severity === 'ERROR') process.stderr.write(`org bench: ${message}\n`);
  },
};

export function orgFleet(projects: number, services: number, start: string) {
  const id = (i: number) => `org-proj-${String(i).padStart(4, '0')}`;
  return {
    start,
    warmupMinutes: 35,
    topics: [TOPIC],
    hierarchy: { organization: ORG },
    projects: Array.from({ length: projects }, (_, i) => ({
      id: id(i),
      pools: [{ region: 'us-central1', quota: 2 * services }],
      services: Array.from({ length: services }, (_, s) => ({
        name: `llm-${s}`,
        region: 'us-central1',
        gpu: {},
        maxInstances: s === 0 ? 1 : 2,
        demand: s === 0 ? 3 : 1,
      })),
    })),
  };
}

interface Emulator {
  child: ChildProcess;
  env: Record<string, string>;
  admin: string;
}

/** `governor emulator` on a fleet file, in its own process; resolves once it prints its variables. */
async function startEmulatorProcess(fleetFile: string): Promise<Emulator> {
  const child = spawn(
    process.execPath,
    [join(repo, 'bin', 'governor.js'), 'emulator', '--fleet', fleetFile, '--speed', '1'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1' } },
  );
  // It runs until stopped, and does not notice this process has gone: killed with the bench.
  stopWithBench(child);
  const env: Record<string, string> = {};
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the emulator exited (${code}) before it ran`)));
    lines.on('line', (line) => {
      const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) env[m[1]] = m[2];
      if (line.startsWith('# Ctrl-C')) resolve();
    });
  });
  const admin = env['GOVERNOR_EMULATOR_ADMIN'];
  if (!admin) {
    await stopProcess(child);
    throw new Error('the emulator printed no GOVERNOR_EMULATOR_ADMIN');
  }
  return { child, env, admin };
}

/** CPU-seconds a process has spent (user + system), from /proc (Linux; clock ticks of 1/100 s). */
async function procCpuS(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function admin<T>(e: Emulator, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${e.admin}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`emulator ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function readsSince(e: Emulator): Promise<number> {
  const calls = await admin<{ method: string }[]>(e, '/calls');
  return calls.filter((c) => !WRITES.has(c.method.split('/')[1] ?? '')).length;
}

/** The calls since the last reset, by method and answer (`ListServices OK`: 1000). */
async function callsByMethod(e: Emulator): Promise<Record<string, number>> {
  const calls = await admin<{ method: string; code: string }[]>(e, '/calls');
  const out: Record<string, number> = {};
  for (const c of calls) {
    const k = `${c.method.split('/')[1] ?? c.method} ${c.code}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

interface Worker {
  child: ChildProcess;
  inFlight: number;
  waiting: Map<number, (r: { status: number; ms: number; error?: string }) => void>;
  cpu: {
    resolve: (c: { userUs: number; systemUs: number }) => void;
    reject: (e: Error) => void;
  } | null;
  /** Why the worker takes no more work (it exited), or null while it runs. */
  gone: string | null;
}

/** A worker process: bench/org-worker.ts, or the module given (a stand-in, in tests). */
export async function startWorker(
  env: Record<string, string | undefined>,
  module = join(here, 'org-worker.js'),
): Promise<Worker> {
  // Its stderr is read here: the worker's own lines ("org worker: …") are passed on, anything
  // else (a crash's stack trace) is kept for the reason its exit gives, in one line.
  const child = fork(module, [], { env, stdio: ['inherit', 'inherit', 'pipe', 'ipc'] });
  stopWithBench(child);
  let lastWords = '';
  if (child.stderr)
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (line.startsWith('org worker: ')) process.stderr.write(`${line}\n`);
      else lastWords = `${lastWords}\n${line}`.slice(-4_000);
    });
  const w: Worker = { child, inFlight: 0, waiting: new Map(), cpu: null, gone: null };
  await new Promise<void>((ready, failed) => {
    child.on('message', (m: { kind: string; id?: number; status?: number; ms?: number }) => {
      if (m.kind === 'ready') ready();
      if (m.kind === 'cpu') w.cpu?.resolve(m as unknown as { userUs: number; systemUs: number });
      if (m.kind === 'done' && m.id !== undefined) {
        w.waiting.get(m.id)?.(m as { status: number; ms: number });
        w.waiting.delete(m.id);
      }
    });
    // A worker that died answers nothing more: what waits for it fails now, so that the bench
    // stops (and stops its other processes) instead of waiting for ever.
    // 'close', not 'exit': its stderr is read to the end by then.
    child.once('close', (code, signal) => {
      const gone = `the worker exited (${code ?? signal})${lastWords.trim() ? `: ${lastWords.trim()}` : ''}`;
      w.gone = gone;
      failed(new Error(gone));
      for (const done of w.waiting.values()) done({ status: 0, ms: 0, error: gone });
      w.waiting.clear();
      w.cpu?.reject(new Error(gone));
      w.cpu = null;
    });
  });
  return w;
}

/** Tells each worker still connected to stop (it exits when its channel closes). */
export function stopWorkers(workers: readonly Worker[]): void {
  for (const w of workers) if (w.child.connected) w.child.disconnect();
}

async function workerCpuS(w: Worker): Promise<number> {
  if (w.gone !== null) throw new Error(w.gone);
  const got = new Promise<{ userUs: number; systemUs: number }>(
    (resolve, reject) => (w.cpu = { resolve, reject }),
  );
  w.child.send({ kind: 'cpu' }, (e) => {
    if (e) w.cpu?.reject(e);
  });
  const c = await got;
  return (c.userUs + c.systemUs) / 1e6;
}

let nextId = 1;
export function sendUnit(w: Worker, body: unknown): Promise<{ status: number; ms: number }> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (w.gone !== null) {
      reject(new Error(`a unit could not be sent: ${w.gone}`));
      return;
    }
    w.inFlight++;
    w.waiting.set(id, (r) => {
      w.inFlight--;
      if (r.status === 0) reject(new Error(`a unit failed with a bug: ${r.error ?? '?'}`));
      else resolve(r);
    });
    w.child.send({ kind: 'unit', id, body }, (e) => {
      if (!e) return;
      w.waiting.get(id)?.({ status: 0, ms: 0, error: e.message });
      w.waiting.delete(id);
    });
  });
}

/** Every body delivered, at most `instances` at once, each to the least busy worker. */
async function deliverAll(
  workers: Worker[],
  bodies: unknown[],
  instances: number,
): Promise<{ failures: number }> {
  let next = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: Math.min(instances, bodies.length) }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const w = workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
        const r = await sendUnit(w, body);
        if (r.status !== 200) failures++;
      }
    }),
  );
  return { failures };
}

interface Published {
  topic: string;
  messageId: string;
  dataBase64: string;
  attributes: Record<string, string>;
}

/** The function's dispatch, then its messages as the push subscription would deliver them. */
async function dispatchOnce(
  e: Emulator,
  env: Record<string, string | undefined>,
): Promise<unknown[]> {
  const answer = await handleDispatch(undefined, env, quiet);
  const dispatchId = (answer.body as { dispatchId?: string }).dispatchId;
  if (answer.status !== 200 || !dispatchId)
    throw new Error(`the dispatch answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  const published = await admin<Published[]>(e, `/published?topic=${encodeURIComponent(TOPIC)}`);
  return published
    .filter((m) => m.attributes['dispatchId'] === dispatchId)
    .map((m) => ({
      message: { data: m.dataBase64, messageId: m.messageId, attributes: m.attributes },
      subscription: `projects/${HOME}/subscriptions/gpu-governor-work-push`,
      deliveryAttempt: 1,
    }));
}

export async function benchOrgProcesses(opts: {
  projects: number;
  services?: number;
  instances: number;
  workers?: number;
  rttMs?: number;
}): Promise<OrgProcsBench> {
  const P = opts.projects;
  const S = opts.services ?? 10;
  const I = opts.instances;
  const W = Math.max(1, Math.min(opts.workers ?? 4, I));
  const rttMs = opts.rttMs ?? 50;
  const cores = availableParallelism();
  const log = (m: string) => process.stderr.write(`org bench: ${m}\n`);
  const before = loadavg();
  const dir = await benchTempDir('org-bench-');
  // The directory is removed however the bench ends, an emulator that never started included.
  try {
    const fleetFile = join(dir, 'fleet.json');
    // The emulator's clock runs at the wall clock's pace from now, as Google's does. The units read
    // it on the emulator's admin endpoint, as any governor pointed at the emulator must (the clock
    // refuses GOVERNOR_EMULATOR_HOST without GOVERNOR_EMULATOR_ADMIN: src/adapters/clock.ts); that
    // call is not delayed by the injected RTT, which the faults put on the RPCs alone.
    await writeFile(fleetFile, JSON.stringify(orgFleet(P, S, new Date().toISOString())));
    log(`${P} projects × ${S} services; the emulator starts`);
    const emulator = await startEmulatorProcess(fleetFile);
    const workers: Worker[] = [];
    try {
      await admin(emulator, '/faults', {
        latency: [{ method: '*', minMs: rttMs, maxMs: rttMs }],
      });
      const env: Record<string, string | undefined> = {
        ...process.env,
        ...emulator.env,
        METADATA_SERVER_DETECTION: 'none',
        GOVERNOR_STATE_DIR: join(dir, 'state'),
        GOVERNOR_RUN_DEADLINE: '10m',
        GOVERNOR_POLICY: JSON.stringify({
          version: 1,
          mode: 'dry-run',
          discovery: { organization: ORG },
          fanout: { topic: TOPIC },
          defaults: { min: 1, max: 4, headroom: 0 },
          services: [{ match: {} }],
        }),
      };
      for (let i = 0; i < W; i++) workers.push(await startWorker(env));
      // Warm-up: a first dispatch, and one unit in every worker (its modules load, as in an
      // instance that has served before).
      log(`warm-up: ${W} worker(s)`);
      const warm = await dispatchOnce(emulator, env);
      if (warm.length !== P) throw new Error(`the dispatch published ${warm.length} of ${P}`);
      await Promise.all(workers.map((w, i) => sendUnit(w, warm[i % P])));

      // Three projects alone, one after another, through the same entry.
      let slowestSingleMs = 0;
      let readsAlone = 0;
      let callsAlone: Record<string, number> = {};
      for (const body of warm.slice(-3)) {
        await admin(emulator, '/reset-calls', {});
        const r = await sendUnit(workers[0] as Worker, body);
        if (r.status !== 200) throw new Error(`a project alone answered ${r.status}`);
        slowestSingleMs = Math.max(slowestSingleMs, r.ms);
        readsAlone = Math.max(readsAlone, await readsSince(emulator));
        callsAlone = await callsByMethod(emulator);
      }
      log(`slowest single ${Math.round(slowestSingleMs)} ms; the organisation next`);

      const round = async (bodies: unknown[] | null, size: number): Promise<OrgRound> => {
        await admin(emulator, '/reset-calls', {});
        const cpu0 = await Promise.all(workers.map(workerCpuS));
        const emu0 = await procCpuS(emulator.child.pid ?? 0);
        const own0 = process.cpuUsage();
        const t0 = performance.now();
        let units = bodies;
        let dispatchMs: number | null = null;
        let dispatchReads = 0;
        if (!units) {
          units = await dispatchOnce(emulator, env);
          dispatchMs = performance.now() - t0;
          dispatchReads = await readsSince(emulator);
        }
        const dispatchCpu = process.cpuUsage(own0);
        const t1 = performance.now();
        const { failures } = await deliverAll(workers, units.slice(0, size), I);
        const t2 = performance.now();
        const cpu1 = await Promise.all(workers.map(workerCpuS));
        const emu1 = await procCpuS(emulator.child.pid ?? 0);
        const unitsS = cpu1.reduce((a, c, i) => a + c - (cpu0[i] ?? 0), 0);
        const emulatorS = emu1 - emu0;
        const dispatchS = (dispatchCpu.user + dispatchCpu.system) / 1e6;
        const totalS = unitsS + emulatorS + dispatchS;
        const wall = t2 - t0;
        return {
          projects: size,
          orgMs: dispatchMs === null ? null : wall,
          dispatchMs,
          unitsMs: t2 - t1,
          ratio: wall / slowestSingleMs,
          unitFailures: failures,
          readsPerProject: ((await readsSince(emulator)) - dispatchReads) / size,
          calls: await callsByMethod(emulator),
          cpu: { unitsS, emulatorS, dispatchS, totalS },
          cpuShare: totalS / ((wall / 1000) * cores),
        };
      };

      const org = await round(null, P);
      log(`organisation ${Math.round(org.orgMs ?? 0)} ms, ${org.cpu.totalS.toFixed(1)} CPU-s`);
      const perUnitCpuMs = {
        unit: (org.cpu.unitsS / P) * 1000,
        emulator: (org.cpu.emulatorS / P) * 1000,
      };
      const v = orgVerdict({
        orgMs: org.orgMs ?? 0,
        slowestSingleMs,
        cpuS: org.cpu.totalS,
        cores,
        unitFailures: org.unitFailures,
      });
      const { targetMs, minWallMs, coresNeeded } = v;
      const verdict = v.text;

      // The largest organisation whose CPU fits in 70% of the cores within the target, from the
      // CPU a unit cost above (its process and the emulator's share), governed the same way from
      // the same dispatch's messages (redelivered: the dispatch is not timed again).
      const fit = largestFitting({
        perUnitCpuS: (org.cpu.unitsS + org.cpu.emulatorS) / P,
        cores,
        targetMs,
      });
      let sized: OrgRound | null = null;
      if (fit >= 1 && fit < P) {
        const bodies = await dispatchOnce(emulator, env);
        log(`sized to this machine: ${fit} projects`);
        sized = await round(bodies, fit);
        sized.ratio = sized.unitsMs / slowestSingleMs;
      }
      return {
        projects: P,
        services: S,
        instances: I,
        workers: W,
        rttMs,
        cores,
        load: { before, after: loadavg() },
        slowestSingleMs,
        readsPerProjectAlone: readsAlone,
        callsAlone,
        org,
        perUnitCpuMs,
        minWallMs,
        targetMs,
        coresNeeded,
        verdict,
        sized,
      };
    } finally {
      // Each by its own handle; one already gone (a worker that died, an emulator killed) is no
      // reason to leave the others running or to hide why the bench stopped.
      stopWorkers(workers);
      await stopProcess(emulator.child);
    }
  } finally {
    await removeBenchTempDir(dir);
  }
}

export function orgProcsLines(r: OrgProcsBench): string[] {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const roundLine = (o: OrgRound) =>
    `  ${o.projects} projects: ${o.orgMs === null ? `units ${s(o.unitsMs)}` : `${s(o.orgMs)} (dispatch ${s(o.dispatchMs ?? 0)}, units ${s(o.unitsMs)})`}, ${o.ratio.toFixed(1)}× the slowest single; ${o.cpu.totalS.toFixed(1)} CPU-s (units ${o.cpu.unitsS.toFixed(1)}, emulator ${o.cpu.emulatorS.toFixed(1)}, dispatch ${o.cpu.dispatchS.toFixed(1)}), ${Math.round(o.cpuShare * 100)}% of ${r.cores} cores; ${o.readsPerProject} reads a project; ${o.unitFailures} failed unit(s)`;
  return [
    `Organisation in processes: ${r.projects} projects × ${r.services} services, RTT ${r.rttMs} ms, emulator in its own process, ${r.workers} worker process(es) for at most ${r.instances} instances (bench/org-procs.ts)`,
    `  load average ${r.load.before.map((l) => l.toFixed(1)).join(' ')} before, ${r.load.after.map((l) => l.toFixed(1)).join(' ')} after`,
    `  slowest single project ${Math.round(r.slowestSingleMs)} ms, ${r.readsPerProjectAlone} reads alone`,
    roundLine(r.org),
    `  CPU a unit: ${r.perUnitCpuMs.unit.toFixed(0)} ms in its instance + ${r.perUnitCpuMs.emulator.toFixed(0)} ms in the emulator`,
    `  target ≤ 2× the slowest single = ${s(r.targetMs)}; the least wall ${r.cores} cores give ${r.org.cpu.totalS.toFixed(1)} CPU-s is ${s(r.minWallMs)}: ${r.verdict}`,
    ...(r.sized
      ? [
          `  the largest organisation this machine hosts within 70% of its cores over the target:`,
          roundLine(r.sized),
        ]
      : []),
  ];
}

/**
 * The organisation bench's size from `env`: BENCH_ORG_PROJECTS, BENCH_ORG_INSTANCES (units at once;
 * BENCH_ORG_CONCURRENCY, its older name, when it is unset) and BENCH_ORG_WORKERS, each a whole
 * number from 1 to 100,000; unset or blank, `defaults`. A bad one stops the bench before it starts
 * anything, one line naming it (exit code 2).
 */
export function orgSize(
  env: Readonly<Record<string, string | undefined>>,
  defaults: { projects: number; instances: number; workers: number },
): { projects: number; instances: number; workers: number } {
  const read = (name: string, fallback: number): number =>
    settingOrExit(wholeNumberSetting(env, name, fallback, 1, 100_000));
  return {
    projects: read('BENCH_ORG_PROJECTS', defaults.projects),
    instances: read('BENCH_ORG_INSTANCES', read('BENCH_ORG_CONCURRENCY', defaults.instances)),
    workers: read('BENCH_ORG_WORKERS', defaults.workers),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await benchOrgProcesses(
    orgSize(process.env, { projects: 50, instances: 50, workers: 4 }),
  );
  console.log(orgProcsLines(r).join('\n'));
  console.log(JSON.stringify(r, null, 2));
}
