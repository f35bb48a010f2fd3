/**
 * Every admin request is answered (attack finding 2): an answer too large to send is a 500 with
 * one JSON line naming the route, never a request left open with an unhandled rejection.
 */
import { v1 } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { MAX_RESPONSE_CHARS } from '../../src/emulator/admin.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { testFleet } from '../support/fixtures.js';
import { PROJECT } from './helpers.js';

const TOPIC = `projects/${PROJECT}/topics/big`;
const QUIET = `projects/${PROJECT}/topics/quiet`;

let emulator: RunningEmulator;
let publisher: v1.PublisherClient;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: { ...testFleet(), topics: [TOPIC, QUIET] },
    speed: 'manual',
  });
  publisher = new v1.PublisherClient(emulatorClientOptions(emulator.host));
});
afterAll(async () => {
  await publisher.close();
  await emulator.stop();
});

describe('the admin endpoint answers every request', () => {
  it('answers 500 in one line when the answer is too large to send, and goes on serving', async () => {
    // Each message is listed as text and as base64: about 2.3 x its size in the answer.
    const data = Buffer.alloc(9_500_000, 'a');
    const messages = Math.ceil(MAX_RESPONSE_CHARS / (2.3 * data.length)) + 1;
    for (let i = 0; i < messages; i++) {
      await publisher.publish({ topic: TOPIC, messages: [{ data }] }, { retry: null });
    }
    const res = await fetch(`${emulator.adminUrl}/published`);
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(text.trim().split('\n')).toHaveLength(1);
    const error = String((JSON.parse(text) as { error?: unknown }).error);
    expect(error).toContain('GET /published');
    expect(error).toContain(`over the ${MAX_RESPONSE_CHARS}`);
    expect((await fetch(`${emulator.adminUrl}/clock`)).status).toBe(200);
    // Nothing dropped yet: the header says so, on a listing small enough to send.
    const none = await fetch(`${emulator.adminUrl}/published?topic=${QUIET}`);
    expect(none.headers.get('x-emulator-published-dropped')).toBe('0');
  }, 60_000);
});
