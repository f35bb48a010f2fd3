import { parsePolicy, type Policy } from '../src/core/policy.js';
import { oneShapeService, type Snapshot, type SnapshotService } from '../src/core/snapshot.js';

/** A seeded synthetic fleet for benchmarks: `services` GPU services spread over `pools` pools. */

function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

export const BENCH_AT = '2026-11-27T15:00:00.000Z';

export function syntheticFleet(
  services: number,
  pools: number,
  seed = 1,
): { snapshot: Snapshot; policy: Policy } {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const regions = Array.from({ length: Math.ceil(pools / 2) }, (_, i) => `region-${i}`);
  const poolIds = Array.from({ length: pools }, (_, i) => ({
    project: `project-${i % 4}`,
    region: regions[Math.floor(i / 2)] ?? 'region-0',
    accelerator: 'nvidia-l4',
    zonalRedundancy: i % 2 === 0,
  }));
  const perPool = services / pools;
  const list: SnapshotService[] = [];
  for (let i = 0; i < services; i++) {
    const pool = poolIds[i % pools] ?? poolIds[0];
    if (!pool) throw new Error('no pool');
    const max = int(1, 12);
    const current = int(0, max);
    // Built as observation builds a snapshot's services: of one shape (oneShapeService).
    list.push(
      oneShapeService({
        ...pool,
        name: `${['llm', 'embed', 'asr', 'render'][i % 4]}-${i}`,
        gpusPerInstance: 1,
        labels: { team: ['search', 'ads', 'media'][i % 3] ?? 'search' },
        maxInstances: max,
        minInstances: int(0, 1),
        reconciling: rand() < 0.02,
        etag: `e${i}`,
        lastChangedAt: rand() < 0.3 ? '2026-11-27T14:50:00.000Z' : null,
        usage:
          rand() < 0.03
            ? null
            : {
                current,
                peak: current + int(0, 3),
                sampledAt: '2026-11-27T14:57:00.000Z',
                utilization: rand() < 0.5 ? rand() : null,
              },
      }),
    );
  }
  const snapshot: Snapshot = {
    version: 1,
    takenAt: BENCH_AT,
    pools: poolIds.map((p) => ({ ...p, quota: Math.round(perPool * int(3, 6)) })),
    services: list,
    unmanagedUsage: poolIds
      .filter((_, i) => i % 5 === 0)
      .map((p) => ({ ...p, gpus: 1, source: 'worker-pool/w' })),
  };
  const policy = parsePolicy({
    version: 1,
    projects: ['project-0', 'project-1', 'project-2', 'project-3'],
    services: [
      {
        match: { name: 'llm-*', labels: { team: 'search' } },
        priority: 10,
        weight: 3,
        min: 1,
        max: 10,
      },
      { match: { name: 'render-*' }, managed: false },
      {
        match: { name: 'asr-*' },
        schedule: [
          {
            days: ['mon', 'tue', 'wed', 'thu', 'fri'],
            start: '08:00',
            end: '20:00',
            timezone: 'America/New_York',
            min: 2,
          },
        ],
      },
      { match: {} },
    ],
    limits: { maxChangesPerRun: 10_000 },
  });
  return { snapshot, policy };
}
