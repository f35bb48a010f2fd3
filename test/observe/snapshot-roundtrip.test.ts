import { describe, expect, it } from 'vitest';
import { observe } from '../../src/observe/observe.js';
import {
  formatSnapshot,
  parseSnapshotText,
  type Snapshot,
  type SnapshotService,
} from '../../src/core/snapshot.js';
import { MAX_LOOKBACK_MS } from '../../src/core/policy.js';
import { MAX_DOCUMENT_BYTES } from '../../src/read-capped.js';
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
              minInstances: null,
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

describe('a saved snapshot fits what plan --snapshot reads', () => {
  /** A service with a whole week minute by minute, the longest lookback a policy may set. */
  function weekLong(i: number): SnapshotService {
    const minutes = MAX_LOOKBACK_MS / 60_000;
    const each = (f: (m: number) => number) => Array.from({ length: minutes }, (_, m) => f(m));
    return {
      project: 'my-project',
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      name: `llm-service-${String(i).padStart(3, '0')}`,
      gpusPerInstance: 1,
      labels: { team: 'search' },
      maxInstances: 4,
      minInstances: 0,
      reconciling: false,
      etag: `e${i}`,
      lastChangedAt: null,
      usage: {
        current: 2,
        peak: 4,
        sampledAt: '2026-11-27T12:00:00.000Z',
        utilization: 0.5,
        perMinute: {
          start: new Date(NOW - (minutes - 1) * 60_000).toISOString(),
          inUse: each((m) => m % 5),
          served: each((m) => (m % 5) * 40),
          refused: each((m) => (m % 97 === 0 ? 12 : 0)),
        },
      },
    };
  }

  it('300 services with a week of minutes each: within the size read back, and read back whole', () => {
    const snapshot: Snapshot = {
      version: 1,
      takenAt: new Date(NOW).toISOString(),
      pools: [],
      services: Array.from({ length: 300 }, (_, i) => weekLong(i)),
      unmanagedUsage: [],
    };
    const text = formatSnapshot(snapshot);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_DOCUMENT_BYTES);
    expect(parseSnapshotText(text)).toEqual(snapshot);
    // A hang guard, not a bound: a few seconds quiet, over 20 on a loaded 2-core CI.
  }, 120_000);

  it('stays JSON a person can read: one key a line, the minutes of each series on one', () => {
    const snapshot: Snapshot = {
      version: 1,
      takenAt: new Date(NOW).toISOString(),
      pools: [],
      services: [weekLong(1)],
      unmanagedUsage: [],
    };
    const lines = formatSnapshot(snapshot).split('\n');
    expect(lines).toContain('  "takenAt": "2026-11-27T12:00:00.000Z",');
    expect(lines).toContain('      "name": "llm-service-001",');
    expect(lines.filter((l) => l.trimStart().startsWith('"inUse": [0,1,2,3,4,0,'))).toHaveLength(1);
    expect(lines.at(-1)).toBe('');
  });
});
