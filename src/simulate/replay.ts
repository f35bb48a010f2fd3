import { durationMs } from '../core/duration.js';
import type { Policy } from '../core/policy.js';
import { validateFleet, type FleetInput } from '../emulator/fleet.js';
import { effectiveMax, poolKey, quotaFromPolicy, type PoolId } from '../core/pool.js';
import type { ObservePorts } from '../ports/index.js';
import { MINUTE_MS } from '../emulator/model.js';
import type { SimulationInput } from './scenario.js';

/**
 * `governor replay`: what the governor would have done over a past window. Reads the project as
 * it is now (services, their caps, worker pools, quotas) and ONE Monitoring call per project for
 * the instance counts over the window, and turns each service's instances per minute into its
 * demand. Demand a service could not show (it ran at its cap, or its instances could not start)
 * is not in Monitoring: the replay sees at most what was served, so it understates refusals.
 */
export async function buildReplayInput(
  policy: Policy,
  ports: ObservePorts,
  nowMs: number,
  sinceMs: number,
): Promise<SimulationInput> {
  const endMs = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
  const startMs = endMs - Math.floor(sinceMs / MINUTE_MS) * MINUTE_MS;
  const minutes = Math.max(1, (endMs - startMs) / MINUTE_MS);
  const warmup = Math.min(120, Math.ceil(durationMs(policy.defaults.lookback) / MINUTE_MS));
  const traces = new Map<string, number[]>();
  const projects: NonNullable<FleetInput['projects']> = [];
  for (const project of policy.projects) {
    const regions = policy.regions ?? (await ports.run.listRegions(project));
    const listed = await Promise.all(
      regions.map(async (r) => ({
        services: await ports.run.listServices(project, r),
        workerPools: await ports.run.listWorkerPools(project, r),
      })),
    );
    const counts = await ports.monitoring.instanceCounts(project, { startMs, endMs });
    const byService = new Map(counts.map((s) => [`${s.region}/${s.service}`, s]));
    const services = listed.flatMap((l) => l.services).filter((s) => s.gpu !== null);
    const workerPools = listed.flatMap((l) => l.workerPools).filter((w) => w.gpu !== null);
    const pools = new Map<string, PoolId>();
    for (const s of [...services, ...workerPools]) {
      if (!s.gpu) continue;
      const id = {
        project,
        region: s.region,
        accelerator: s.gpu.accelerator,
        zonalRedundancy: s.gpu.zonalRedundancy,
      };
      pools.set(poolKey(id), id);
    }
    const poolList = await Promise.all(
      [...pools.values()].map(async (id) => {
        const quota = quotaFromPolicy(policy, id) ?? (await ports.quotas.gpuQuota(id));
        return {
          region: id.region,
          accelerator: id.accelerator,
          zonalRedundancy: id.zonalRedundancy,
          ...(quota === null ? {} : { quota }),
        };
      }),
    );
    projects.push({
      id: project,
      pools: poolList,
      services: services.map((s) => {
        const series = new Array<number>(minutes + warmup).fill(0);
        for (const p of byService.get(`${s.region}/${s.name}`)?.points ?? []) {
          const m = Math.round((p.at - startMs) / MINUTE_MS) - 1;
          if (m >= 0 && m < minutes) series[m + warmup] = p.value;
        }
        // The warm-up replays the window's first minutes' level, so metrics exist at the start.
        for (let m = 0; m < warmup; m++) series[m] = series[warmup] ?? 0;
        const key = `replay:${project}/${s.region}/${s.name}`;
        traces.set(key, series);
        return {
          name: s.name,
          region: s.region,
          labels: s.labels,
          gpu: s.gpu ?? undefined,
          maxInstances: effectiveMax(s),
          minInstances: Math.min(
            effectiveMax(s),
            Math.max(s.serviceMinInstances ?? 0, s.revisionMinInstances ?? 0),
          ),
          ...(s.scalingMode === 'MANUAL'
            ? { scalingMode: 'MANUAL' as const, manualInstanceCount: s.manualInstanceCount ?? 0 }
            : {}),
          demand: { trace: { file: key, normalize: false, scale: 1, offsetMinutes: warmup } },
        };
      }),
      workerPools: workerPools.map((w) => ({
        name: w.name,
        region: w.region,
        gpu: w.gpu ?? undefined,
        manualInstanceCount: w.manualInstanceCount,
      })),
    });
  }
  const fleet = validateFleet(
    {
      version: 1,
      start: new Date(startMs).toISOString(),
      warmupMinutes: warmup,
      projects,
    } satisfies FleetInput,
    'replayed fleet',
  );
  return {
    label: `replay of ${policy.projects.join(', ')} from ${new Date(startMs).toISOString()}`,
    fleet,
    traces,
    hours: minutes / 60,
  };
}
