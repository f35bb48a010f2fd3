import { createGooglePorts } from '../src/adapters/index.js';
import { parsePolicy } from '../src/core/policy.js';
import { startEmulator } from '../src/emulator/index.js';
import { observe } from '../src/observe/observe.js';

export interface ObservationRow {
  services: number;
  regions: number;
  reads: number;
  writes: number;
  byMethod: Record<string, number>;
}

const WRITE_METHODS = new Set(['UpdateService']);

/**
 * RPCs per observation through the real clients and the emulator, by fleet size: reads should
 * grow with regions and pages, never with services.
 */
export async function benchObservation(
  sizes: readonly [number, number][] = [
    [10, 1],
    [100, 5],
    [1_000, 20],
    [1_000, 1],
  ],
): Promise<ObservationRow[]> {
  const rows: ObservationRow[] = [];
  for (const [services, regionCount] of sizes) {
    const regions = Array.from({ length: regionCount }, (_, i) => `bench-region${i + 1}`);
    const fleet = {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 35,
      projects: [
        {
          id: 'bench-project',
          pools: regions.map((region) => ({
            region,
            quota: Math.ceil((services / regionCount) * 2),
          })),
          services: Array.from({ length: services }, (_, i) => ({
            name: `svc-${i}`,
            region: regions[i % regionCount] ?? 'bench-region1',
            gpu: {},
            maxInstances: 3,
            demand: i % 3,
          })),
        },
      ],
    };
    const emulator = await startEmulator({ fleet, speed: 'manual' });
    const ports = createGooglePorts({ emulatorHost: emulator.host });
    try {
      const policy = parsePolicy({
        version: 1,
        projects: ['bench-project'],
        services: [{ match: {} }],
      });
      emulator.resetCalls();
      const o = await observe(policy, ports, emulator.now().getTime());
      if (o.snapshot.services.length !== services)
        throw new Error(`observed ${o.snapshot.services.length} of ${services} services`);
      const byMethod: Record<string, number> = {};
      let writes = 0;
      for (const c of emulator.calls()) {
        const m = c.method.split('/').pop() ?? c.method;
        byMethod[m] = (byMethod[m] ?? 0) + 1;
        if (WRITE_METHODS.has(m)) writes += 1;
      }
      rows.push({
        services,
        regions: regionCount,
        reads: emulator.calls().length - writes,
        writes,
        byMethod,
      });
    } finally {
      await ports.close();
      await emulator.stop();
    }
  }
  return rows;
}
