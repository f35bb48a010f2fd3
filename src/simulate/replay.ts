import { durationMs } from '../core/duration.js';
import type { Policy } from '../core/policy.js';
import { perRegionLimitFor, validateFleet, type FleetInput } from '../emulator/fleet.js';
import {
  effectiveMax,
  gpuPool,
  poolKey,
  quotaFromPolicy,
  revisionMaxOf,
  type PoolId,
} from '../core/pool.js';
import type { MetricSeries, ObservePorts } from '../ports/index.js';
import { MINUTE_MS } from '../emulator/model.js';
import { manualInstances } from '../core/service.js';
import { plural } from '../core/text.js';
import type { SimulationInput } from './scenario.js';

/** How a report and a summary name a replay: its projects and its minutes, as a person reads them. */
export function replayLabel(projects: readonly string[], startMs: number, stopMs: number): string {
  const shown =
    projects.length > 3
      ? `${projects.slice(0, 2).join(', ')} and ${projects.length - 2} more`
      : projects.join(', ');
  const from = new Date(startMs).toISOString();
  const to = new Date(stopMs).toISOString();
  const day = (iso: string) => iso.slice(0, 10);
  const time = (iso: string) => iso.slice(11, 16);
  const end = day(from) === day(to) ? time(to) : `${day(to)} ${time(to)}`;
  return `replay of ${shown}, ${day(from)} ${time(from)} to ${end} UTC`;
}

/**
 * `governor replay`: what the governor would have done over a past window. Reads the project as
 * it is now (services, their caps, worker pools, quotas) and ONE Monitoring call per project for
 * the instance counts over the window, and turns each service's instances per minute into its
 * demand. Demand a service could not show (it ran at its cap, or its instances could not start)
 * is not in Monitoring: the replay sees at most what was served, so it understates refusals.
 *
 * When Monitoring's history begins after the window asked for (a new project, a new service, data
 * past retention), the window is shortened to the history there is, and `history` says so: the
 * minutes before it would replay as no demand at all, which flatters every strategy equally and
 * turns the comparison into noise.
 */

/** How much of the window asked for Monitoring could show. */
export interface ReplayHistory {
  requestedMinutes: number;
  /** Minutes replayed: from the first minute with an instance count to the end of the window (0: none). */
  minutes: number;
  /** Start of the window replayed (ISO). */
  start: string;
  /** True when the window was shortened to the history there is. */
  shortened: boolean;
  /** GPU services listed now, over every project: 0 means there is nothing to replay. */
  gpuServices: number;
  /**
   * Services (`project/region/name`) with instance counts in the window that are not listed now,
   * in the regions read: deleted within the window, or since. Left out of the replay.
   */
  gone: string[];
}

export interface ReplayInput extends SimulationInput {
  history: ReplayHistory;
}

/** History that starts this close to the window's start still counts as the whole window. */
const SLACK_MINUTES = 5;

export async function buildReplayInput(
  policy: Policy,
  ports: ObservePorts,
  nowMs: number,
  sinceMs: number,
): Promise<ReplayInput> {
  const endMs = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
  const requestedStartMs = endMs - Math.floor(sinceMs / MINUTE_MS) * MINUTE_MS;
  const requestedMinutes = Math.max(1, (endMs - requestedStartMs) / MINUTE_MS);
  const warmup = Math.min(120, Math.ceil(durationMs(policy.defaults.lookback) / MINUTE_MS));
  const counts = new Map<string, MetricSeries[]>();
  for (const project of policy.projects) {
    counts.set(
      project,
      await ports.monitoring.instanceCounts(project, { startMs: requestedStartMs, endMs }),
    );
  }
  const listedProjects = [];
  const gone: string[] = [];
  for (const project of policy.projects) {
    const regions = policy.regions ?? (await ports.run.listRegions(project));
    const listed = await Promise.all(
      regions.map(async (r) => ({
        services: await ports.run.listServices(project, r),
        workerPools: await ports.run.listWorkerPools(project, r),
      })),
    );
    const all = listed.flatMap((l) => l.services);
    const services = all.filter((s) => s.gpu !== null);
    const workerPools = listed.flatMap((l) => l.workerPools).filter((w) => w.gpu !== null);
    const keys = new Set(services.map((s) => `${s.region}/${s.name}`));
    // Only the GPU services' series are history: a project's other services (web front ends,
    // services since deleted) have instance counts too, and would pass for GPU demand's history.
    const byService = new Map(
      (counts.get(project) ?? [])
        .map((s) => [`${s.region}/${s.service}`, s] as const)
        .filter(([key]) => keys.has(key)),
    );
    // A service deleted within the window keeps its series in Monitoring until its points expire
    // ("When all the points in a time series have expired, Cloud Monitoring deletes the time
    // series", https://cloud.google.com/monitoring/api/v3/latency-n-retention), but nothing listed
    // now says whether it had a GPU: it is left out, and named.
    const listedKeys = new Set(all.map((s) => `${s.region}/${s.name}`));
    const read = new Set(regions);
    for (const s of counts.get(project) ?? []) {
      if (!read.has(s.region) || listedKeys.has(`${s.region}/${s.service}`)) continue;
      if (s.points.some((p) => p.at > requestedStartMs && p.at <= endMs))
        gone.push(`${project}/${s.region}/${s.service}`);
    }
    listedProjects.push({ project, services, workerPools, byService });
  }
  const startMs = historyStart(
    listedProjects.flatMap((l) => [...l.byService.values()]),
    requestedStartMs,
    endMs,
  );
  const stopMs = historyEnd(
    listedProjects.map((l) => [...l.byService.values()]),
    startMs,
    endMs,
    durationMs(policy.defaults.staleAfter),
  );
  const minutes = Math.max(1, (stopMs - startMs) / MINUTE_MS);
  const traces = new Map<string, number[]>();
  const projects: NonNullable<FleetInput['projects']> = [];
  for (const { project, services, workerPools, byService } of listedProjects) {
    const pools = new Map<string, PoolId>();
    for (const s of [...services, ...workerPools]) {
      if (!s.gpu) continue;
      const id = gpuPool({ project, region: s.region, gpu: s.gpu });
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
      // A project whose limit Google raised may hold more in a region than its default.
      perRegionLimit: perRegionLimitFor(services, workerPools),
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
          // The serving revision's own max, which no service-level max the governor writes can
          // raise the cap past (core/pool.ts revisionBound): replayed, the governor meets it too.
          ...revisionMaxOf(s),
          minInstances: Math.min(
            effectiveMax(s),
            Math.max(s.serviceMinInstances ?? 0, s.revisionMinInstances ?? 0),
          ),
          ...(s.scalingMode === 'MANUAL'
            ? { scalingMode: 'MANUAL' as const, manualInstanceCount: manualInstances(s) }
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
    label: replayLabel(policy.projects, startMs, stopMs),
    fleet,
    traces,
    hours: minutes / 60,
    history: {
      requestedMinutes,
      minutes: (stopMs - startMs) / MINUTE_MS,
      start: new Date(startMs).toISOString(),
      shortened: startMs > requestedStartMs,
      gpuServices: listedProjects.reduce((n, l) => n + l.services.length, 0),
      gone: [...new Set(gone)].sort(),
    },
  };
}

/**
 * The start of the window to replay: the window's own start, or the first minute Monitoring has
 * an instance count for when that is later (points are stamped at the end of their minute). With
 * no point at all there is no history: the window shrinks to nothing.
 */
export function historyStart(
  series: readonly MetricSeries[],
  startMs: number,
  endMs: number,
): number {
  let first = Infinity;
  for (const s of series)
    for (const p of s.points) if (p.at > startMs) first = Math.min(first, p.at);
  if (first === Infinity) return endMs;
  const firstMinute = Math.floor((first - MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
  return firstMinute - startMs > SLACK_MINUTES * MINUTE_MS ? firstMinute : startMs;
}

/**
 * The end of the window to replay: now, or the newest minute Monitoring has an instance count for
 * when that is earlier. Points become visible minutes after their minute (about 3 minutes in
 * Google's example, https://cloud.google.com/monitoring/api/v3/latency-n-retention), so the
 * window's last minutes have no point yet: replayed, they would read as no demand at all. Each
 * project's newest point says how far its Monitoring has got; the window ends at the earliest of
 * them (a project with no point in the window says nothing). At most `maxLagMs` is cut (its whole
 * minutes), the policy's `staleAfter`, as when the governor observes: within it the newest point
 * is where Monitoring has got to, and series that stopped before it scaled to zero.
 */
export function historyEnd(
  projects: readonly (readonly MetricSeries[])[],
  startMs: number,
  endMs: number,
  maxLagMs: number,
): number {
  let end = endMs;
  for (const series of projects) {
    let newest = -Infinity;
    for (const s of series)
      for (const p of s.points)
        if (p.at > startMs && p.at <= endMs) newest = Math.max(newest, p.at);
    if (newest === -Infinity) continue;
    end = Math.min(end, Math.ceil(newest / MINUTE_MS) * MINUTE_MS);
  }
  // The window replays whole minutes: a staleAfter such as 5m30s cuts the whole minutes within it.
  const cut = Math.ceil((endMs - maxLagMs) / MINUTE_MS) * MINUTE_MS;
  return Math.max(end, cut, startMs);
}

/** What to tell the reader about the history, or null when the whole window was there. */
export function historyWarning(history: ReplayHistory, since: string): string | null {
  const hours = (m: number) => `${(m / 60).toFixed(m < 600 ? 1 : 0)} h`;
  if (!history.shortened || history.minutes <= 0) return null;
  return `Monitoring has instance counts for only ${hours(history.minutes)} of the ${hours(history.requestedMinutes)} asked for (--since ${since}): replaying from ${history.start}, the first minute with data, instead.`;
}

/** The most deleted services a note names one by one. */
const GONE_NAMED = 5;

/**
 * What a replay assumed, for the reader of its figures (the table, `--json` and the report): the
 * history it had, that Monitoring shows only demand served, that the project is replayed as it is
 * now, and the services it left out.
 */
export function replayNotes(history: ReplayHistory, since: string): string[] {
  const notes: string[] = [];
  const warning = historyWarning(history, since);
  if (warning) notes.push(warning);
  notes.push(
    'A replay sees only the demand that was served: demand refused at a cap or by the quota never reached Monitoring, so every strategy’s refusals are understated.',
    'The project is replayed as it is now: today’s caps (the fleet’s static caps), quotas and worker pools hold over the whole window, so a quota, a cap or a worker pool changed within it is replayed at today’s value.',
  );
  const n = history.gone.length;
  if (n > 0) {
    const named = history.gone.slice(0, GONE_NAMED).join(', ');
    const more = n > GONE_NAMED ? ` and ${n - GONE_NAMED} more` : '';
    notes.push(
      `${plural(n, 'service')} with instance counts in the window ${n === 1 ? 'is' : 'are'} not listed now (deleted): ${named}${more}; left out, so any GPUs ${n === 1 ? 'it' : 'they'} held are replayed as free.`,
    );
  }
  return notes;
}
