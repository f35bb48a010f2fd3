import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { handleDispatch, handleUnitPush } from '../../src/function/org.js';
import { memoryLogger } from '../../src/log.js';
import { ORG, orgFleet, orgProjectId } from '../support/org-fleet.js';
import { sharedPubSubEmulator, type SharedEmulator } from '../support/shared-emulators.js';
import { waitUntil } from '../support/wait.js';
import {
  CHANNELS_CLOSE_MS,
  channelMark,
  openChannels as openChannelsTo,
} from '../support/channels.js';

/**
 * The organisation's functions kept warm: the dispatch and the unit each serve run after run in
 * one process, and after any number of runs no gRPC channel of theirs is left open, whatever a
 * run called. A Google client whose API has long-running operations (Cloud Asset Inventory,
 * Cloud Run) opens its operations client's channel as it is built, and its `close()` closes that
 * channel only once its own stub was opened: a dispatch that reused the kept discovery (no search)
 * and a unit run that ended before it read Cloud Run (its lease held) each left channels open, a
 * run after run (docs/performance.md, "The organisation's functions kept warm"). Counted, as in
 * warm-instance.int.test.ts, through grpc-js's channelz registry.
 */

const HOME = 'org-warm-home';
const TOPIC = `projects/${HOME}/topics/work`;
const RUNS = 3;
const fleet = orgFleet({ projects: 2, services: 2, quota: 3 });

let emulator: RunningEmulator;
let pubsub: SharedEmulator;
let dir: string;

beforeAll(async () => {
  pubsub = await sharedPubSubEmulator(HOME);
  const admin = new PubSub({ projectId: HOME, apiEndpoint: pubsub.endpoint });
  try {
    await admin.createTopic('work');
  } finally {
    await admin.close();
  }
  emulator = await startEmulator({ fleet, speed: 'manual', operationDelayMs: 0 });
  dir = await mkdtemp(join(tmpdir(), 'governor-org-warm-'));
});

afterAll(async () => {
  await emulator?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * The gRPC channels to either emulator opened since `mark` and not closed (grpc-js's channelz
 * registry; the mark leaves out what other files of the worker left open, support/channels.ts).
 */
const openChannels = (mark: number) => () =>
  openChannelsTo((target) => target === emulator.host || target === pubsub.endpoint, mark);

const env = () => ({
  ...emulator.env,
  PUBSUB_EMULATOR_HOST: pubsub.endpoint,
  GOVERNOR_POLICY: JSON.stringify({
    version: 1,
    discovery: { organization: ORG },
    fanout: { topic: TOPIC },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
  }),
  GOVERNOR_STATE_DIR: dir,
  METADATA_SERVER_DETECTION: 'none',
});

const work = (project: string, dispatchId: string) => ({
  message: {
    data: Buffer.from(
      JSON.stringify({
        version: 1,
        kind: 'govern',
        project,
        dispatchId,
        issuedAt: new Date().toISOString(),
      }),
    ).toString('base64'),
    messageId: dispatchId,
  },
});

describe("the organisation's functions, run after run", () => {
  it('the dispatch leaves no gRPC channel open, searching or reusing the kept discovery', async () => {
    const mark = await channelMark();
    const sources: unknown[] = [];
    for (let run = 0; run < RUNS; run++) {
      const answer = await handleDispatch({}, env(), memoryLogger());
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.published).toBe(2);
      sources.push(answer.body.discovery);
    }
    // The first searched the organisation; the others reused what it kept.
    expect(new Set(sources).size).toBe(2);
    await waitUntil(
      'every channel of the dispatches closed',
      openChannels(mark),
      (o) => o.length === 0,
      {
        timeoutMs: CHANNELS_CLOSE_MS,
      },
    );
  });

  it('a unit leaves no gRPC channel open, whether its run governed or found its lease held', async () => {
    const mark = await channelMark();
    const held = orgProjectId(0);
    const store = createFileStateStore({ dir });
    const lease = await store.acquireLease(held, 'dead-unit', 3_600_000, new Date().toISOString());
    expect(lease.acquired).toBe(true);
    for (let run = 0; run < RUNS; run++) {
      emulator.advance(5 * 60_000);
      const governed = await handleUnitPush(
        work(orgProjectId(1), `d-${run}`),
        env(),
        memoryLogger(),
      );
      expect(governed.status, JSON.stringify(governed.body)).toBe(200);
      const refused = await handleUnitPush(work(held, `d-${run}`), env(), memoryLogger());
      expect(refused.status, JSON.stringify(refused.body)).toBe(500);
      expect(refused.body.outcome).toBe('lease-held');
    }
    await waitUntil(
      'every channel of the units closed',
      openChannels(mark),
      (o) => o.length === 0,
      {
        timeoutMs: CHANNELS_CLOSE_MS,
      },
    );
  });
});
