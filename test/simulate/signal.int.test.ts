import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { FleetModel, MINUTE_MS } from '../../src/emulator/model.js';
import { observe } from '../../src/observe/observe.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { governAll } from '../support/fixtures.js';

/**
 * `governor simulate` gives the governor the same evidence in memory as through the gRPC
 * emulator and Google's clients: the same fleet, observed at the same virtual time both ways,
 * gives the same snapshot, per-minute instances and requests included.
 */

const LAG = 3 * MINUTE_MS;
const fleet = validateFleet({
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  startupSeconds: 20,
  projects: [
    {
      id: 'signal-project',
      pools: [{ region: 'us-central1', quota: 5 }],
      services: [
        // Above its cap all along: refused every minute.
        { name: 'capped', region: 'us-central1', gpu: {}, maxInstances: 2, demand: 3.5 },
        // A step within its cap, after a quiet start.
        {
          name: 'stepping',
          region: 'us-central1',
          gpu: {},
          maxInstances: 3,
          demand: {
            steps: [
              { at: '11:50', value: 0 },
              { at: '12:10', value: 2.2 },
            ],
          },
        },
        { name: 'asleep', region: 'us-central1', gpu: {}, maxInstances: 2, demand: 0 },
      ],
    },
  ],
});

describe('the signal in memory and through the emulator', () => {
  let emulator: RunningEmulator;
  let google: GooglePorts;

  beforeAll(async () => {
    emulator = await startEmulator({ fleet, speed: 'manual', metricsLagMs: LAG });
    google = createGooglePorts({ emulatorHost: emulator.host });
  });
  afterAll(async () => {
    await google.close();
    await emulator.stop();
  });

  it('gives observe() the same snapshot, minute by minute', async () => {
    const model = new FleetModel(fleet);
    const memory = createSimPorts(model, { lagMs: LAG });
    const at = Date.parse(fleet.start) + 25 * MINUTE_MS;
    model.advanceTo(at);
    emulator.advance(at - emulator.now().getTime());

    const policy = governAll({ projects: ['signal-project'] });
    const [viaMemory, viaEmulator] = [
      await observe(policy, memory, at),
      await observe(policy, google, at),
    ];
    expect(viaEmulator.problems).toEqual([]);
    expect(viaMemory.problems).toEqual([]);
    expect(viaEmulator.snapshot).toEqual(viaMemory.snapshot);

    // And the evidence is there: the capped service refused, the other not.
    const usage = (name: string) =>
      viaEmulator.snapshot.services.find((s) => s.name === name)?.usage?.perMinute;
    const capped = usage('capped');
    expect(capped?.inUse.every((n) => n === 2)).toBe(true);
    expect(capped?.refused?.some((n) => n > 0)).toBe(true);
    expect(usage('stepping')?.refused?.every((n) => n === 0)).toBe(true);
    expect(usage('stepping')?.served?.some((n) => n > 0)).toBe(true);
  });
});
