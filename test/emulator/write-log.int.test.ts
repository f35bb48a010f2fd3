/**
 * The write records (`writes()`, `GET /writes`) are bounded as the call log is: an emulator left
 * running under a governor for days kept every write it ever took, each holding the service's
 * annotations before and after (up to 256 KiB each), and grew without end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_WRITE_LOG_BYTES } from '../../src/emulator/context.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { testFleet } from '../support/fixtures.js';
import { clientsFor, closeClients, PARENT, type Clients } from './helpers.js';

// Operations done at once: the test writes a hundred and fifty times.
const t = {} as { emulator: RunningEmulator; clients: Clients };
beforeAll(async () => {
  t.emulator = await startEmulator({ fleet: testFleet(), speed: 'manual', operationDelayMs: 0 });
  t.clients = clientsFor(t.emulator);
});
afterAll(async () => {
  await closeClients(t.clients);
  await t.emulator.stop();
});

describe('the write records', () => {
  it('drop the oldest once the records kept pass their byte bound, and say how many', async () => {
    const name = `${PARENT}/services/alpha`;
    // Each write changes a 120,000-character annotation: its record holds it before and after,
    // about 240 KB of JSON.
    const bound = 32 << 20;
    expect(MAX_WRITE_LOG_BYTES).toBe(bound);
    const rounds = Math.ceil(bound / 240_000) + 4;
    const before = t.emulator.writes().length;
    for (let i = 0; i < rounds; i++) {
      const [service] = await t.clients.services.getService({ name });
      const [operation] = await t.clients.services.updateService({
        service: {
          name,
          etag: service.etag,
          annotations: {
            ...service.annotations,
            'test.example/big': String(i % 10).repeat(120_000),
          },
        },
        updateMask: { paths: ['annotations'] },
      });
      await operation.promise();
    }
    const kept = t.emulator.writes();
    expect(kept.length).toBeLessThan(before + rounds);
    expect(kept.length + t.emulator.droppedWrites()).toBe(before + rounds);
    expect(kept.reduce((sum, w) => sum + JSON.stringify(w).length, 0)).toBeLessThanOrEqual(bound);
    // The newest write is kept, last.
    expect(kept.at(-1)?.seq).toBe(Math.max(...kept.map((w) => w.seq)));
    const res = await fetch(`${t.emulator.adminUrl}/writes`);
    expect(res.headers.get('x-emulator-writes-dropped')).toBe(String(t.emulator.droppedWrites()));
    expect(((await res.json()) as unknown[]).length).toBe(kept.length);
  }, 120_000);
});
