import { describe, expect, it } from 'vitest';
import { observe } from '../../src/observe/observe.js';
import { parseSnapshotText } from '../../src/core/snapshot.js';
import type { ObservedService } from '../../src/core/service.js';
import type { ObservePorts } from '../../src/ports/index.js';
import { governAll, observedService } from '../support/fixtures.js';

/**
 * What `governor snapshot` saves must be what `governor plan --snapshot` reads back: every
 * observation, written as JSON, parses as a snapshot.
 */

const NOW = Date.parse('2026-11-27T12:00:00Z');
// A service id has fewer than 50 characters; its revisions are named `<service>-<5 digits>-<3>`.
const NAME = 's'.repeat(49);

function ports(services: ObservedService[], revisionError?: string): ObservePorts {
  const none = () => Promise.resolve([]);
  return {
    run: {
      listRegions: () => Promise.resolve(['us-central1']),
      listServices: () => Promise.resolve(services),
      getService: () => Promise.reject(new Error('not used')),
      listWorkerPools: none,
      listRunningExecutions: none,
      updateMaxInstances: () => Promise.reject(new Error('observation never writes')),
      getRevisionMax: () =>
        revisionError === undefined
          ? Promise.resolve({
              maxInstances: 1,
              gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
            })
          : Promise.reject(new Error(revisionError)),
    },
    monitoring: {
      instanceCounts: none,
      gpuUtilization: none,
      servedRequests: none,
      refusedRequests: none,
    },
    quotas: { gpuQuota: () => Promise.resolve(100) },
  };
}

/** A service whose traffic is split by name over `n` older revisions, its template serving none. */
function split(n: number): ObservedService {
  return observedService(NAME, {
    serviceMaxInstances: null,
    templateServes: false,
    servingRevisions: Array.from({ length: n }, (_, i) => ({
      name: `${NAME}-${String(i + 1).padStart(5, '0')}-abc`,
      inSplit: true,
    })),
  });
}

async function saved(services: ObservedService[], revisionError?: string) {
  const o = await observe(governAll(), ports(services, revisionError), NOW);
  return { observed: o.snapshot, text: JSON.stringify(o.snapshot, null, 2) };
}

describe('a saved snapshot reads back', () => {
  it('a service split over 40 revisions: its note of how its cap was counted fits the snapshot', async () => {
    const { observed, text } = await saved([split(40)]);
    expect(observed.services[0]?.maxInstances).toBe(40);
    const read = parseSnapshotText(text);
    expect(read.services[0]?.maxInstances).toBe(40);
    expect(read.services[0]?.maxNote).toMatch(/^its latest revision does not serve: counted at/);
    expect(read.services[0]?.maxNote).toMatch(/ \+ \d+ more revision\(s\) = 40$/);
  });

  it('serving revisions that could not be read, with a long error: the note fits the snapshot', async () => {
    const { text } = await saved(
      [split(2)],
      `UNAVAILABLE: ${'upstream connect error; '.repeat(120)}`,
    );
    const read = parseSnapshotText(text);
    expect(read.services[0]?.maxNote).toMatch(/could not be read \(UNAVAILABLE: upstream/);
  });
});
