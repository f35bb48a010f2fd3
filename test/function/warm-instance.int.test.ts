import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { handle } from '../../src/function/handler.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { waitUntil } from '../support/wait.js';
import {
  CHANNELS_CLOSE_MS,
  channelMark,
  openChannels as openChannelsTo,
} from '../support/channels.js';

/**
 * A warm instance serves run after run in one process (Cloud Scheduler calls it every 5 minutes
 * for hours or days): each run opens its Google clients and closes them, so after any number of
 * runs no gRPC channel of theirs is left open. grpc-js holds a channel left open, with its
 * resolver, load balancer and timers, until 30 minutes of idleness, and its channelz record until
 * it is closed: the instance's memory grew run after run (docs/performance.md, "A warm instance
 * over days"). Counted here through grpc-js's channelz registry, which lists every channel not yet
 * closed.
 */

const PROJECT = 'warm-project';
const REGION = 'us-central1';
const TOPIC = `projects/${PROJECT}/topics/alerts`;
const RUNS = 4;
const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 35,
  topics: [TOPIC],
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 4 }],
      services: [
        // Demand above the quota: the run writes caps and publishes alerts.
        { name: 'a', region: REGION, gpu: {}, maxInstances: 4, demand: 3 },
        { name: 'b', region: REGION, gpu: {}, maxInstances: 4, demand: 3 },
      ],
    },
  ],
};

let emulator: RunningEmulator;
let stateDir: string;

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 0 });
  stateDir = await mkdtemp(join(tmpdir(), 'governor-warm-'));
});

afterAll(async () => {
  await emulator?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

/**
 * The gRPC channels to the emulator opened since `mark` and not closed (grpc-js's channelz
 * registry; the mark leaves out what other files of the worker left open, support/channels.ts).
 */
const openChannels = (mark: number) => () =>
  openChannelsTo((target) => target === emulator.host, mark);

const silent = { log: () => undefined };

describe('a warm instance, run after run', () => {
  it('leaves no gRPC channel open once its runs have answered', async () => {
    const env = {
      ...emulator.env,
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        projects: [PROJECT],
        services: [{ match: {} }],
        limits: { writesPerMinute: 6000 },
        alerts: { topic: TOPIC },
      }),
      GOVERNOR_STATE_DIR: stateDir,
      METADATA_SERVER_DETECTION: 'none',
    };
    const mark = await channelMark();
    let published = 0;
    for (let run = 0; run < RUNS; run++) {
      emulator.advance(5 * 60_000);
      const answer = await handle({}, env, silent);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      published += Number(answer.body.alertsPublished);
    }
    // The runs used every client, Pub/Sub's permission check and publishing included.
    expect(published).toBeGreaterThan(0);
    expect(emulator.writes().length).toBeGreaterThan(0);
    // A client's close may let its channels go a moment after it resolves: wait for none, and
    // fail naming those still open.
    await waitUntil(
      'every channel of the runs closed',
      openChannels(mark),
      (open) => open.length === 0,
      {
        timeoutMs: CHANNELS_CLOSE_MS,
      },
    );
  });

  it('leaves none open either after runs that found the lease held and read nothing', async () => {
    // Cloud Run's clients open their operations clients' channels as they are built; a run that
    // ends before it reads Cloud Run must still close them (adapters/client-config.ts closeClients).
    const mark = await channelMark();
    const store = createFileStateStore({ dir: stateDir });
    const lease = await store.acquireLease(
      PROJECT,
      'another-run',
      600_000,
      new Date().toISOString(),
    );
    expect(lease.acquired).toBe(true);
    const env = {
      ...emulator.env,
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        projects: [PROJECT],
        services: [{ match: {} }],
      }),
      GOVERNOR_STATE_DIR: stateDir,
      METADATA_SERVER_DETECTION: 'none',
    };
    for (let run = 0; run < 2; run++) {
      const answer = await handle({}, env, silent);
      expect(answer.body.outcome, JSON.stringify(answer.body)).toBe('lease-held');
    }
    await waitUntil(
      'every channel of the runs closed',
      openChannels(mark),
      (open) => open.length === 0,
      {
        timeoutMs: CHANNELS_CLOSE_MS,
      },
    );
  });
});

describe("the run deadline of the function's run", () => {
  it('counts from the request’s arrival, so time spent before the run comes out of it', async () => {
    // The module sets the run deadline at least 15 s short of the function's timeout, which Cloud
    // Run counts from the request's arrival; loading the run's code on a cold start and opening the
    // clients come before the run. Counted from the run's start instead, that time came on top of
    // the deadline and a run could go on past the timeout, killed with no answer and no alert.
    // A state store of its own: the runs above leave a lease held in theirs.
    const dir = await mkdtemp(join(tmpdir(), 'governor-deadline-'));
    const env = {
      ...emulator.env,
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        projects: [PROJECT],
        services: [{ match: {} }],
      }),
      GOVERNOR_STATE_DIR: dir,
      GOVERNOR_RUN_DEADLINE: '2s',
      METADATA_SERVER_DETECTION: 'none',
    };
    emulator.advance(5 * 60_000);
    const before = emulator.writes().length;
    try {
      const answer = await handle({}, env, silent, performance.now() - 5_000);
      expect(answer.status, JSON.stringify(answer.body)).toBe(500);
      expect(String(answer.body.error)).toMatch(/run deadline had passed/);
      expect(emulator.writes().length).toBe(before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
