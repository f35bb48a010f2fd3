import { expect, it, vi } from 'vitest';
import { simulate } from '../../src/simulate/simulate.js';
import { constantFleet, governSimulation } from '../support/fixtures.js';

/**
 * The governor's run through the emulator whose Google clients fail to close: every other
 * cleanup still runs (the emulator stops, its folder is removed), and the failure is reported.
 * Before, the first failing cleanup skipped the rest: the emulator kept listening, and the
 * process that asked for the simulation never exited.
 */

const stopped = vi.hoisted(() => ({ count: 0 }));

vi.mock('../../src/adapters/index.js', async (importOriginal) => {
  const { adaptersFailingToClose } = await import('../support/failing-close.js');
  return adaptersFailingToClose(importOriginal, 'the clients failed to close (for the test)');
});

vi.mock('../../src/emulator/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/emulator/index.js')>();
  return {
    ...real,
    startEmulator: async (...args: Parameters<typeof real.startEmulator>) => {
      const emulator = await real.startEmulator(...args);
      const stop = emulator.stop.bind(emulator);
      return Object.assign(emulator, {
        stop: async () => {
          stopped.count += 1;
          await stop();
        },
      });
    },
  };
});

it('stops the emulator when the clients fail to close, and says so', async () => {
  const input = await constantFleet(4, [{ name: 'a', cap: 2, demand: 1 }]);
  await expect(
    simulate(input, governSimulation(), {
      hours: 0.1,
      viaEmulator: true,
      series: false,
      strategies: ['governor'],
    }),
  ).rejects.toThrow('the clients failed to close');
  expect(stopped.count).toBe(1);
});

it("reports the run's own failure, not the cleanup's that followed it", async () => {
  const input = await constantFleet(4, [{ name: 'a', cap: 2, demand: 1 }]);
  const before = stopped.count;
  await expect(
    simulate(input, governSimulation(), {
      hours: 0.1,
      viaEmulator: true,
      series: false,
      strategies: ['governor'],
      onTick: () => {
        throw new Error('the live view failed (for the test)');
      },
    }),
  ).rejects.toThrow('the live view failed');
  expect(stopped.count).toBe(before + 1);
});

it('with onCloseFailure: the finished result stands, the failure is given to it, the emulator stopped', async () => {
  const input = await constantFleet(4, [{ name: 'a', cap: 2, demand: 1 }]);
  const before = stopped.count;
  const failures: unknown[] = [];
  const result = await simulate(input, governSimulation(), {
    hours: 0.1,
    viaEmulator: true,
    series: false,
    strategies: ['governor'],
    onCloseFailure: (e) => failures.push(e),
  });
  expect(result.strategies.map((s) => s.strategy)).toEqual(['governor']);
  expect(failures.map((e) => String(e))).toEqual([
    'Error: the clients failed to close (for the test)',
  ]);
  expect(stopped.count).toBe(before + 1);
});
