import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { grpcCode, retryDelayOf } from '../../src/adapters/retry.js';
import { RpcError, startEmulator } from '../../src/emulator/index.js';
import { clientsFor, closeClients, codeOf, PARENT } from './helpers.js';
import { testFleet } from '../support/fixtures.js';
import { waitUntil } from '../support/wait.js';

describe('the emulator seams', () => {
  it('lets a fault hook answer any RPC instead of its handler, and logs it', async () => {
    const emulator = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      faults: ({ method }) =>
        method.endsWith('/GetService')
          ? new RpcError(status.RESOURCE_EXHAUSTED, 'Quota exceeded for reads')
          : undefined,
    });
    const clients = clientsFor(emulator);
    try {
      const { code } = await codeOf(
        clients.services.getService({ name: `${PARENT}/services/alpha` }),
      );
      expect(code).toBe(status.RESOURCE_EXHAUSTED);
      const [services] = await clients.services.listServices({ parent: PARENT });
      expect(services.length).toBeGreaterThan(0);
      // Six services at the default page size of five: two pages.
      expect(emulator.calls().map((c) => c.code)).toEqual(['RESOURCE_EXHAUSTED', 'OK', 'OK']);
    } finally {
      await closeClients(clients);
      await emulator.stop();
    }
  });

  it('answers an error rule with a retry delay as a google.rpc.RetryInfo the client decodes', async () => {
    const emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
    emulator.setFaults({
      errors: [{ method: 'GetService', code: 'RESOURCE_EXHAUSTED', rate: 1, retryDelayMs: 1_500 }],
    });
    const clients = clientsFor(emulator);
    try {
      const error: unknown = await clients.services
        .getService({ name: `${PARENT}/services/alpha` }, { retry: null })
        .catch((e: unknown) => e);
      expect(grpcCode(error)).toBe(status.RESOURCE_EXHAUSTED);
      expect(retryDelayOf(error)).toBe(1_500);
      emulator.setFaults({ errors: [{ method: 'GetService', code: 'UNAVAILABLE', rate: 1 }] });
      const plain: unknown = await clients.services
        .getService({ name: `${PARENT}/services/alpha` }, { retry: null })
        .catch((e: unknown) => e);
      expect(grpcCode(plain)).toBe(status.UNAVAILABLE);
      expect(retryDelayOf(plain)).toBeUndefined();
    } finally {
      await closeClients(clients);
      await emulator.stop();
    }
  });

  it('lets the other writer act after an applied UpdateService only, not a validate_only or failed one', async () => {
    // At rate 1 the other writer cuts alpha's pool quota (5) by one GPU after each call it acts on.
    const emulator = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      inject: { seed: 7, otherActor: { rate: 1, kinds: ['cut-quota'], maxCut: 1 } },
    });
    const clients = clientsFor(emulator);
    const quota = () =>
      emulator.state().pools.find((p) => p.region === 'us-central1' && p.zonalRedundancy)?.quota;
    const acted = () => emulator.faults().injected['other-actor-cut-quota'] ?? 0;
    const write = (max: number, validateOnly: boolean) =>
      clients.services.updateService({
        service: { name: `${PARENT}/services/alpha`, scaling: { maxInstanceCount: max } },
        updateMask: { paths: ['scaling.max_instance_count'] },
        validateOnly,
      });
    try {
      expect(quota()).toBe(5);
      // Checked and not stored: nothing was written for another writer to follow.
      await write(1, true);
      expect([acted(), quota()]).toEqual([0, 5]);
      // The operation fails: nothing changed.
      emulator.setFaults({
        otherActor: { rate: 1, kinds: ['cut-quota'], maxCut: 1 },
        operations: { failRate: 1 },
      });
      const [failed] = await write(1, false);
      await expect(failed.promise()).rejects.toThrow(/injected/);
      expect([acted(), quota()]).toEqual([0, 5]);
      // Applied: the other writer acts on the pool.
      emulator.setFaults({ otherActor: { rate: 1, kinds: ['cut-quota'], maxCut: 1 } });
      const [applied] = await write(1, false);
      await applied.promise();
      expect([acted(), quota()]).toEqual([1, 4]);
    } finally {
      await closeClients(clients);
      await emulator.stop();
    }
  });

  it('counts the other writer only when it acted: a fill of full pools is no change', async () => {
    // Both pools of us-central1 are full (caps of 8 on 5 GPUs; 2 on 2): the other writer's fill,
    // drawn at rate 1 after each listing, can change nothing. Before, the draw itself was counted,
    // so a check that "a fill was played" passed on runs where none happened.
    const emulator = await startEmulator({
      fleet: testFleet(),
      speed: 'manual',
      inject: { seed: 7, otherActor: { rate: 1, kinds: ['fill'] } },
    });
    const clients = clientsFor(emulator);
    const caps = () => emulator.state().services.map((s) => [s.name, s.maxInstances]);
    try {
      const before = caps();
      await clients.services.listServices({ parent: PARENT });
      await clients.services.listServices({ parent: PARENT });
      expect(caps()).toEqual(before);
      expect(emulator.faults().injected['other-actor-fill'] ?? 0).toBe(0);
    } finally {
      await closeClients(clients);
      await emulator.stop();
    }
  });

  it('runs the clock at N times real time', async () => {
    const emulator = await startEmulator({ fleet: testFleet(), speed: 3600 });
    try {
      // Virtual time moves by itself, and never faster than 3600 virtual ms per wall ms: the
      // virtual interval lies inside the wall interval measured around it.
      const wallBefore = Date.now();
      const start = emulator.now().getTime();
      const elapsed = await waitUntil(
        'six virtual minutes',
        () => emulator.now().getTime() - start,
        (ms) => ms >= 6 * 60_000,
      );
      const wall = Date.now() - wallBefore;
      expect(elapsed).toBeLessThanOrEqual(3600 * (wall + 1));
      expect(emulator.state().clock).toEqual({ mode: 'real', speed: 3600 });
    } finally {
      await emulator.stop();
    }
  });

  it('runs a simulated day of the example fleet, within its pools', async () => {
    const emulator = await startEmulator({ fleet: 'examples/fleet.yaml', speed: 'manual' });
    try {
      const start = emulator.now().getTime();
      emulator.advance(24 * 60 * 60_000);
      expect(emulator.now().getTime() - start).toBe(24 * 60 * 60_000);
      const state = emulator.state();
      for (const pool of state.pools) {
        expect(pool.serviceGpus + pool.workerPoolGpus).toBeLessThanOrEqual(pool.quota ?? Infinity);
      }
      const refused = state.services.reduce(
        (sum, s) => sum + s.refused.capGpuMinutes + s.refused.quotaGpuMinutes,
        0,
      );
      expect(refused).toBeGreaterThan(0); // the static caps of the example do not fit the peaks
    } finally {
      await emulator.stop();
    }
  });
});
