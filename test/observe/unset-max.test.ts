import { describe, expect, it } from 'vitest';
import { effectiveMax, type PoolId } from '../../src/core/pool.js';
import type { ObservedService } from '../../src/core/service.js';
import { withUnsetMax } from '../../src/observe/unset-max.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { observedService } from '../support/fixtures.js';

/**
 * The write path reads services again through `withUnsetMax`: a GPU service that sets no max
 * must count there at its pool's quota ÷ GPUs per instance, as observation and the plan counted
 * it, on every read (the listing, and one service read before its write).
 */

const twoGpus = { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true };
const unset = observedService('free', {
  serviceMaxInstances: null,
  revisionMaxInstances: null,
  gpu: twoGpus,
});
const cpu = observedService('web', { serviceMaxInstances: null, gpu: null });

function port(): CloudRunPort {
  const fail = () => Promise.reject(new Error('not used'));
  return {
    listRegions: fail,
    listServices: () => Promise.resolve([unset, cpu]),
    getService: () => Promise.resolve(unset),
    listWorkerPools: fail,
    listRunningExecutions: fail,
    updateMaxInstances: fail,
  };
}

describe('withUnsetMax', () => {
  it("counts a GPU service without a max at its pool's quota ÷ GPUs per instance, listed or read alone", async () => {
    const asked: PoolId[] = [];
    const run = withUnsetMax(port(), (pool) => (asked.push(pool), 8));
    const listed = await run.listServices('p', 'us-central1');
    const one = await run.getService('p', 'us-central1', 'free');
    const counted = (s: ObservedService | undefined) => s && effectiveMax(s);
    expect(counted(listed.find((s) => s.name === 'free'))).toBe(4);
    expect(counted(one)).toBe(4);
    expect(asked[0]).toEqual({
      project: 'p',
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
    });
    // A service without a GPU draws on no pool: left as read.
    expect(listed.find((s) => s.name === 'web')).toEqual(cpu);
  });
});
