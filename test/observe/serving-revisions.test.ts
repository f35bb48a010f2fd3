import { describe, expect, it } from 'vitest';
import { maxInForce } from '../../src/core/pool.js';
import type { ObservationProblem } from '../../src/core/problems.js';
import type { ObservedService } from '../../src/core/service.js';
import { REVISION_READS, withServingRevisions } from '../../src/observe/serving-revisions.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { observedService } from '../support/fixtures.js';

/**
 * The revisions read for services whose latest revision does not serve share Cloud Run's read
 * quota per region with deploys and the console: a listing reads at most REVISION_READS of them,
 * a few at a time, and counts the rest coarsely, saying so once.
 */

/** A service with traffic pinned on an older revision and no service-level max. */
function pinned(name: string, revisions = 1): ObservedService {
  return observedService(name, {
    serviceMaxInstances: null,
    revisionMaxInstances: 1,
    templateServes: false,
    servingRevisions: Array.from({ length: revisions }, (_, i) => ({
      name: `${name}-0000${i}`,
      inSplit: true,
    })),
    unsetMax: 8,
  });
}

function port(): { run: CloudRunPort; calls: () => number; mostInFlight: () => number } {
  let calls = 0;
  let inFlight = 0;
  let most = 0;
  const fail = () => Promise.reject(new Error('not used'));
  return {
    calls: () => calls,
    mostInFlight: () => most,
    run: {
      listRegions: fail,
      listServices: fail,
      getService: fail,
      listWorkerPools: fail,
      listRunningExecutions: fail,
      updateMaxInstances: fail,
      async getRevisionMax() {
        calls += 1;
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight -= 1;
        return {
          maxInstances: 3,
          gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
        };
      },
    },
  };
}

describe('withServingRevisions', () => {
  it('reads at most REVISION_READS revisions of a listing, a few at a time, and says the rest were not read', async () => {
    const { run, calls, mostInFlight } = port();
    const services = Array.from({ length: REVISION_READS + 12 }, (_, i) =>
      pinned(`svc-${String(i).padStart(3, '0')}`),
    );
    const problems: ObservationProblem[] = [];
    const read = await withServingRevisions(run, services, problems);
    expect(calls()).toBe(REVISION_READS);
    expect(mostInFlight()).toBeLessThanOrEqual(8);
    expect(read.slice(0, REVISION_READS).every((s) => maxInForce(s).max === 3)).toBe(true);
    const rest = read.slice(REVISION_READS);
    expect(rest.map((s) => [maxInForce(s).max, s.revisionsUnread?.startsWith('not read')])).toEqual(
      Array(12).fill([8, true]),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]?.error).toMatch(/^12 service\(s\) from svc-300 on: not read: more than 300/);
  });

  it('reads a later service that still fits after one that does not', async () => {
    const { run, calls } = port();
    const services = [
      ...Array.from({ length: REVISION_READS - 1 }, (_, i) => pinned(`a-${i}`)),
      pinned('two', 2),
      pinned('one'),
    ];
    const read = await withServingRevisions(run, services, []);
    expect(calls()).toBe(REVISION_READS);
    expect(read.map((s) => s.revisionsUnread === undefined).slice(-2)).toEqual([false, true]);
  });

  it('spends the reads on GPU services first: a listing of services without a GPU cannot leave one counted coarsely', async () => {
    const { run, calls } = port();
    // Pinned services without a GPU in their template, listed (by name) before the GPU one: their
    // revisions are read too (an older one may hold a GPU), but only with what the GPU services leave.
    const cpu = Array.from({ length: REVISION_READS }, (_, i) => ({
      ...pinned(`a-${String(i).padStart(3, '0')}`),
      gpu: null,
    }));
    const problems: ObservationProblem[] = [];
    const read = await withServingRevisions(run, [...cpu, pinned('z-gpu')], problems);
    expect(calls()).toBe(REVISION_READS);
    expect(read.at(-1)?.name).toBe('z-gpu');
    expect(read.at(-1)?.revisionsUnread).toBeUndefined();
    expect(maxInForce(read.at(-1) as ObservedService).max).toBe(3);
    expect(read.filter((s) => s.revisionsUnread !== undefined).map((s) => s.name)).toEqual([
      `a-${String(REVISION_READS - 1).padStart(3, '0')}`,
    ]);
    expect(problems[0]?.error).toMatch(/^1 service\(s\) from a-299 on: not read/);
  });

  it('makes no call for services whose template serves, nor for a manually scaled one', async () => {
    // A manually scaled service runs its fixed count whatever its revisions' max: nothing to read.
    const { run, calls } = port();
    const manual = { ...pinned('manual'), scalingMode: 'MANUAL' as const, manualInstanceCount: 1 };
    const read = await withServingRevisions(run, [observedService('plain'), manual], []);
    expect(calls()).toBe(0);
    expect(read[0]?.revisionsUnread).toBeUndefined();
    expect(read[1]).toEqual(manual);
  });
});
