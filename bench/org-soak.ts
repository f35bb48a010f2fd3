import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { createFileStateStore } from '../src/adapters/file-store.js';
import type { FleetInput } from '../src/emulator/fleet.js';
import { orgFleet, orgProjectId, ORG } from '../test/support/org-fleet.js';
import { startPubSubEmulator } from '../test/support/pubsub-emulator.js';
import { startEmulatorProcess, startFunction, type ProcessMemory } from './function-host.js';
import { advance, trend, type Trend } from './soak.js';
import { benchTempDir, removeBenchTempDir } from './stop-on-signal.js';

/**
 * The soak of the organisation's functions (docs/organization.md): the dispatch
 * (`governorDispatch`) and the unit (`governorUnit`), each kept warm in a process of its own, as
 * functions-framework runs them (bench/function-host.ts, with the probe), serve round after round:
 *
 * - before each round the emulator's clock (its own process, bench/emulator-child.ts) moves 5
 *   minutes, as the module's scheduler calls the dispatch every 5 minutes;
 * - the dispatch is called SOAK_DISPATCHES times (default 4; `POST /` with `{}`, as the
 *   scheduler's job sends; a dispatch costs far less than the units it sends): it finds the
 *   organisation's projects (a search of the emulator's Cloud Asset Inventory, or the discovery it
 *   kept) and publishes one work message per unit to the work topic on Google's Pub/Sub emulator;
 * - every message of the round's last dispatch (those of the others are acknowledged unsent) is
 *   pulled from a subscription of the topic and sent to the unit as the push
 *   subscription would (`POST /` with the push envelope), one at a time (the module's units serve
 *   one request an instance).
 *
 * The organisation: SOAK_PROJECTS projects (default 4), each with SOAK_SERVICES GPU services
 * (default 8) over two regions, each with a daily curve of demand peaking at its own hour, quotas
 * that peaks overrun (so caps change, conditions open and close, and alerts are published to a
 * topic on the same Pub/Sub emulator). So that a round also takes the paths that fail: the first
 * project has twice the services and is governed as one unit per region (`fanout.splitAbove`),
 * the second refuses its writes (its runs fail whenever they would write), and the third's lease
 * is held by a unit that died (every delivery ends `lease-held`, answered 500). The kept
 * discovery lasts 5 seconds of wall time (`discovery.cacheTtl`; the default is an hour, 12
 * dispatches at 5 minutes apart), so that dispatches both search and reuse it.
 *
 * After every round, from the dispatch, the unit and the emulator: the V8 heap after a full
 * garbage collection, RSS, active resources, and the gRPC channels not closed (grpc-js's channelz
 * registry, as test/function/warm-instance.int.test.ts counts them). The trend is soak.ts's.
 *
 *   SOAK_TARGET=org BENCH_ONLY=soak npm run bench     (SOAK_RUNS rounds, default 60, each of
 *                                                      SOAK_DISPATCHES dispatches, default 4)
 */

const HOME = 'soak-org-home';
const WORK_TOPIC = `projects/${HOME}/topics/governor-work`;
const ALERT_TOPIC = `projects/${HOME}/topics/governor-alerts`;
const TICK_MS = 5 * 60_000;
const REGIONS = ['us-central1', 'us-east1'] as const;

export function orgSoakFleet(projects: number, services: number): FleetInput {
  const fleet = orgFleet({ projects, services });
  fleet.projects = fleet.projects.map((p, i) => {
    if (!p.services || p.services.length === 0) return p;
    // The first project is split by region: more services than splitAbove (= services).
    const count = i === 0 ? services * 2 : services;
    const perRegion = Math.ceil(count / REGIONS.length);
    return {
      ...p,
      pools: REGIONS.map((region) => ({ region, quota: Math.ceil(perRegion * 2.5) })),
      services: Array.from({ length: count }, (_, s) => ({
        name: `llm-${s}`,
        region: REGIONS[s % REGIONS.length] ?? 'us-central1',
        gpu: {},
        maxInstances: 3,
        startupProbeSeconds: 240,
        demand: { diurnal: { base: 0, peak: 1 + (s % 5), peakHour: (s * 5 + i * 7) % 24 } },
      })),
      ...(i === 1 ? { iam: { denied: ['run.services.update'] } } : {}),
    };
  });
  return fleet;
}

export interface OrgSoakSample {
  round: number;
  /** The round's dispatches: their time, where each found the projects, the last one's units. */
  dispatch: { count: number; ms: number; discovery: Record<string, number>; published: number };
  /** The units' answers by status, and their outcomes. */
  units: { statuses: Record<string, number>; outcomes: Record<string, number>; ms: number };
  written: number;
  alerts: number;
  dispatchFn: ProcessMemory;
  unitFn: ProcessMemory;
  emulator: ProcessMemory;
}

interface ProcessTrends {
  heap: Trend;
  rss: Trend;
  handles: Trend;
  channels: Trend;
}

export interface OrgSoakResult {
  rounds: number;
  dispatches: number;
  projects: number;
  services: number;
  unitRuns: number;
  virtualHours: number;
  wallSeconds: number;
  cores: number;
  load: { before: number[]; after: number[] };
  discovery: Record<string, number>;
  statuses: Record<string, number>;
  outcomes: Record<string, number>;
  written: number;
  alerts: number;
  dispatch: ProcessTrends;
  unit: ProcessTrends;
  emulator: Omit<ProcessTrends, 'channels'>;
  samples: OrgSoakSample[];
  snapshots: { round: number; dispatch: string; unit: string }[];
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const add = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

export async function benchOrgSoak(
  options: {
    rounds?: number;
    /** Dispatches a round; the units get the last one's messages. */
    dispatches?: number;
    projects?: number;
    services?: number;
    progress?: (s: OrgSoakSample) => void;
    /** After these rounds, a heap snapshot of each function (files in the working directory). */
    snapshotAfter?: readonly number[];
  } = {},
): Promise<OrgSoakResult> {
  const rounds = options.rounds ?? 60;
  const dispatches = options.dispatches ?? 4;
  const projects = options.projects ?? 4;
  const services = options.services ?? 8;
  if (projects < 4) throw new RangeError('the organisation soak needs at least 4 projects');
  const dir = await benchTempDir('governor-org-soak-');
  const loadBefore = loadavg();
  const t0 = performance.now();
  const samples: OrgSoakSample[] = [];
  const snapshots: OrgSoakResult['snapshots'] = [];
  const stops: (() => Promise<void>)[] = [];
  try {
    const pubsub = await startPubSubEmulator();
    stops.push(() => pubsub.stop());
    const admin = new PubSub({ projectId: HOME, apiEndpoint: pubsub.endpoint });
    stops.push(() => admin.close());
    const [work] = await admin.createTopic('governor-work');
    await admin.createTopic('governor-alerts');
    const [subscription] = await work.createSubscription('soak-units');
    const pulled: Message[] = [];
    let pullError: unknown = null;
    subscription.on('message', (m: Message) => pulled.push(m));
    subscription.on('error', (e: unknown) => (pullError = e));
    stops.push(() => subscription.close());

    const fleetFile = join(dir, 'fleet.json');
    await writeFile(fleetFile, JSON.stringify(orgSoakFleet(projects, services)));
    const emulator = await startEmulatorProcess(fleetFile, { probe: true });
    stops.push(() => emulator.stop());
    const stateDir = join(dir, 'state');
    const env = {
      ...emulator.env,
      PUBSUB_EMULATOR_HOST: pubsub.endpoint,
      GOOGLE_CLOUD_PROJECT: HOME,
      GOVERNOR_STATE_STORE: 'file',
      GOVERNOR_STATE_DIR: stateDir,
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        discovery: { organization: ORG, cacheTtl: '5s' },
        fanout: { topic: WORK_TOPIC, splitAbove: services },
        services: [{ match: {} }],
        limits: { writesPerMinute: 6000 },
        alerts: { topic: ALERT_TOPIC },
      }),
    };
    // A unit that died holding its lease: every delivery for the project finds it held. A run's
    // lease request caps a stored lease at its own time-to-live (src/ports/state.ts decideLease),
    // so the dead unit's lease is taken again before each round, as a unit that keeps dying would.
    const held = orgProjectId(2);
    const heldStore = createFileStateStore({ dir: stateDir });
    const holdLease = async (round: number) => {
      const lease = await heldStore.acquireLease(
        held,
        'dead-unit',
        3_600_000,
        new Date().toISOString(),
      );
      if (!lease.acquired) throw new Error(`round ${round}: could not hold ${held}'s lease`);
    };
    const dispatchFn = await startFunction({ probe: true, target: 'governorDispatch', env });
    stops.push(() => dispatchFn.stop());
    const unitFn = await startFunction({ probe: true, target: 'governorUnit', env });
    stops.push(() => unitFn.stop());

    for (let round = 1; round <= rounds; round++) {
      await advance(emulator, TICK_MS);
      await holdLease(round);
      // The dispatches of the round: the units get the last one's messages; the others' are
      // taken off the subscription unsent (a dispatch costs far less than the units it sends).
      const discovery: Record<string, number> = {};
      let dispatchMs = 0;
      let messages: Message[] = [];
      for (let k = 0; k < dispatches; k++) {
        const d = await dispatchFn.run({});
        if (d.status !== 200)
          throw new Error(
            `round ${round}: the dispatch answered ${d.status}: ${JSON.stringify(d.body).slice(0, 500)}`,
          );
        dispatchMs += d.ms;
        add(discovery, String(d.body.discovery));
        const published = Number(d.body.published);
        const deadline = performance.now() + 30_000;
        while (pulled.length < published) {
          if (pullError !== null)
            throw new Error(`round ${round}: pulling failed`, { cause: pullError });
          if (performance.now() > deadline)
            throw new Error(
              `round ${round}: pulled ${pulled.length} of ${published} work messages`,
            );
          await delay(5);
        }
        messages = pulled.splice(0, published);
        if (k < dispatches - 1) for (const m of messages) m.ack();
      }
      const statuses: Record<string, number> = {};
      const outcomes: Record<string, number> = {};
      let written = 0;
      let alerts = 0;
      let unitMs = 0;
      for (const m of messages) {
        m.ack();
        const answer = await unitFn.run({
          message: {
            data: m.data.toString('base64'),
            messageId: m.id,
            attributes: m.attributes,
          },
          subscription: subscription.name,
        });
        unitMs += answer.ms;
        add(statuses, String(answer.status));
        add(outcomes, String(answer.body.outcome ?? answer.status));
        written += Number(answer.body.written ?? 0);
        alerts += Number(answer.body.alertsPublished ?? 0);
      }
      const sample: OrgSoakSample = {
        round,
        dispatch: { count: dispatches, ms: dispatchMs, discovery, published: messages.length },
        units: { statuses, outcomes, ms: unitMs },
        written,
        alerts,
        dispatchFn: await dispatchFn.memory(),
        unitFn: await unitFn.memory(),
        emulator: await emulator.memory(),
      };
      samples.push(sample);
      options.progress?.(sample);
      if (options.snapshotAfter?.includes(round))
        snapshots.push({
          round,
          dispatch: await dispatchFn.snapshot(),
          unit: await unitFn.snapshot(),
        });
    }
  } finally {
    // The last started, stopped first; each by its own handle.
    for (const stop of stops.reverse())
      await stop().catch((e: unknown) =>
        console.error(`stopping the soak's processes: ${String(e)}`),
      );
    await removeBenchTempDir(dir);
  }
  const discovery: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  for (const s of samples) {
    for (const [k, n] of Object.entries(s.dispatch.discovery))
      discovery[k] = (discovery[k] ?? 0) + n;
    for (const [k, n] of Object.entries(s.units.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
    for (const [k, n] of Object.entries(s.units.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
  }
  const trends = (m: (s: OrgSoakSample) => ProcessMemory): ProcessTrends => ({
    heap: trend(samples.map((s) => m(s).heapUsedBytes)),
    rss: trend(samples.map((s) => m(s).rssBytes)),
    handles: trend(samples.map((s) => sum(m(s).activeResources))),
    channels: trend(samples.map((s) => sum(m(s).grpcChannels))),
  });
  const emulatorTrends = trends((s) => s.emulator);
  return {
    rounds,
    dispatches: rounds * dispatches,
    projects,
    services,
    unitRuns: sum(statuses),
    virtualHours: (rounds * TICK_MS) / 3_600_000,
    wallSeconds: (performance.now() - t0) / 1000,
    cores: cpus().length,
    load: { before: loadBefore, after: loadavg() },
    discovery,
    statuses,
    outcomes,
    written: samples.reduce((a, s) => a + s.written, 0),
    alerts: samples.reduce((a, s) => a + s.alerts, 0),
    dispatch: trends((s) => s.dispatchFn),
    unit: trends((s) => s.unitFn),
    emulator: {
      heap: emulatorTrends.heap,
      rss: emulatorTrends.rss,
      handles: emulatorTrends.handles,
    },
    samples,
    snapshots,
  };
}

const MiB = 2 ** 20;

export function orgSoakLines(r: OrgSoakResult): string[] {
  const mb = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const bytes = (t: Trend) =>
    `${mb(t.first)} → ${mb(t.last)} (max ${mb(t.max)}); after warm-up ${kb(t.bytesPerRun)}/round, last quarter − second quarter ${kb(t.lateMinusEarlyBytes)}`;
  const count = (t: Trend) =>
    `${t.first} → ${t.last} (max ${t.max}); after warm-up ${t.bytesPerRun.toFixed(3)}/round`;
  const lines = [
    `Organisation soak: ${r.rounds} rounds (${r.projects} projects of ${r.services} services, ${r.virtualHours.toFixed(0)} virtual hours, 5 min apart): ${r.dispatches} dispatches (discovery ${JSON.stringify(r.discovery)}), ${r.unitRuns} unit runs (answers ${JSON.stringify(r.statuses)}, outcomes ${JSON.stringify(r.outcomes)}), ${r.written} writes, ${r.alerts} alerts; ${r.wallSeconds.toFixed(0)} s wall, ${r.cores} cores, load ${r.load.before[0]?.toFixed(1)} → ${r.load.after[0]?.toFixed(1)}`,
  ];
  for (const [name, t] of [
    ['dispatch', r.dispatch],
    ['unit', r.unit],
  ] as const) {
    lines.push(
      `  ${name} heap after GC: ${bytes(t.heap)}`,
      `  ${name} RSS:           ${bytes(t.rss)}`,
      `  ${name} handles:       ${count(t.handles)}`,
      `  ${name} gRPC channels: ${count(t.channels)}`,
    );
  }
  lines.push(
    `  emulator heap after GC: ${bytes(r.emulator.heap)}`,
    `  emulator RSS:           ${bytes(r.emulator.rss)}`,
    `  emulator handles:       ${count(r.emulator.handles)}`,
  );
  return lines;
}
