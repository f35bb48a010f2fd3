import { describe, expect, it } from 'vitest';
import {
  buildReplayInput,
  historyEnd,
  historyStart,
  historyWarning,
  replayLabel,
  replayNotes,
} from '../../src/simulate/replay.js';
import type { MetricSeries, ObservePorts } from '../../src/ports/index.js';
import type { ObservedService } from '../../src/core/service.js';
import { governSimulation, observedService, SIM_PROJECT } from '../support/fixtures.js';

const MIN = 60_000;
const start = Date.parse('2026-11-20T00:00:00Z');
const end = start + 7 * 24 * 60 * MIN;
const series = (ats: number[]) => [
  { service: 'a', region: 'us-central1', points: ats.map((at) => ({ at, value: 1 })) },
];

describe('the history a replay covers', () => {
  it('keeps the window when the history starts with it, within a few minutes', () => {
    expect(historyStart(series([start + 3 * MIN, start + 4 * MIN]), start, end)).toBe(start);
  });

  it('starts at the first minute with a count when the history is shorter', () => {
    const first = end - 60 * MIN;
    // Points are stamped at the end of their minute: the minute replayed begins one earlier.
    expect(historyStart(series([first, first + MIN]), start, end)).toBe(first - MIN);
  });

  it('has no window at all without a single count', () => {
    expect(historyStart(series([]), start, end)).toBe(end);
  });

  it('ends at the newest minute Monitoring shows, not at now: its lag is no minute of idleness', () => {
    const lag = 10 * MIN;
    // Points 3 minutes behind now (Monitoring's lag), on minute boundaries.
    expect(historyEnd([series([end - 4 * MIN, end - 3 * MIN])], start, end, lag)).toBe(
      end - 3 * MIN,
    );
    // Every project counts: the window ends where the one furthest behind has got to.
    expect(
      historyEnd([series([end - 2 * MIN]), series([end - 5 * MIN]), series([])], start, end, lag),
    ).toBe(end - 5 * MIN);
    // Up to date, or no point at all: the window keeps its end.
    expect(historyEnd([series([end])], start, end, lag)).toBe(end);
    expect(historyEnd([series([])], start, end, lag)).toBe(end);
    // Series that stopped longer ago than staleAfter: the services scaled to zero, replayed so.
    expect(historyEnd([series([end - 60 * MIN])], start, end, lag)).toBe(end - lag);
  });

  it('warns only when the window was shortened', () => {
    const whole = {
      requestedMinutes: 600,
      minutes: 600,
      start: 'x',
      shortened: false,
      gpuServices: 1,
      gone: [],
    };
    expect(historyWarning(whole, '10h')).toBeNull();
    const short = {
      requestedMinutes: 7 * 24 * 60,
      minutes: 61,
      start: '2026-11-26T23:59:00.000Z',
      shortened: true,
      gpuServices: 1,
      gone: [],
    };
    expect(historyWarning(short, '7d')).toBe(
      'Monitoring has instance counts for only 1.0 h of the 168 h asked for (--since 7d): replaying from 2026-11-26T23:59:00.000Z, the first minute with data, instead.',
    );
  });
});

describe("a replay's name", () => {
  it('says which minutes were replayed as a person reads a time, not a raw timestamp', () => {
    expect(replayLabel(['p'], start, start + 60 * MIN)).toBe(
      'replay of p, 2026-11-20 00:00 to 01:00 UTC',
    );
    expect(replayLabel(['p', 'q'], start, end)).toBe(
      'replay of p, q, 2026-11-20 00:00 to 2026-11-27 00:00 UTC',
    );
    // A policy of many projects does not make a title of them all.
    const many = Array.from({ length: 40 }, (_, i) => `project-${i}`);
    expect(replayLabel(many, start, start + MIN)).toBe(
      'replay of project-0, project-1 and 38 more, 2026-11-20 00:00 to 00:01 UTC',
    );
  });
});

describe('the services a replay reads history from', () => {
  const NOW = end;
  function ports(services: ObservedService[], series: MetricSeries[]): ObservePorts {
    const unused = () => Promise.reject(new Error('not used by a replay'));
    return {
      run: {
        listRegions: () => Promise.resolve(['us-central1']),
        listServices: () => Promise.resolve(services),
        getService: unused,
        listWorkerPools: () => Promise.resolve([]),
        listRunningExecutions: () => Promise.resolve([]),
        updateMaxInstances: unused,
      },
      monitoring: {
        instanceCounts: () => Promise.resolve(series),
        gpuUtilization: () => Promise.resolve([]),
        servedRequests: () => Promise.resolve([]),
        refusedRequests: () => Promise.resolve([]),
      },
      quotas: { gpuQuota: () => Promise.resolve(8) },
    };
  }
  const every = (service: string, from: number) => ({
    service,
    region: 'us-central1',
    points: Array.from({ length: (NOW - from) / MIN }, (_, i) => ({
      at: from + (i + 1) * MIN,
      value: 1,
    })),
  });
  const web = observedService('web', { project: SIM_PROJECT, gpu: null });

  it('dates the history from the GPU services only, not a web service that ran longer', async () => {
    const input = await buildReplayInput(
      governSimulation(),
      ports(
        [observedService('llm', { project: SIM_PROJECT }), web],
        [every('llm', NOW - 60 * MIN), every('web', start)],
      ),
      NOW,
      24 * 60 * MIN,
    );
    expect(input.history).toMatchObject({ shortened: true, minutes: 60, gpuServices: 1 });
  });

  it("replays a serving revision's own max, which the governor cannot raise past, and only one that serves", async () => {
    const input = await buildReplayInput(
      governSimulation(),
      ports(
        [
          observedService('held', {
            project: SIM_PROJECT,
            serviceMaxInstances: 4,
            revisionMaxInstances: 2,
          }),
          observedService('pinned', {
            project: SIM_PROJECT,
            serviceMaxInstances: 3,
            revisionMaxInstances: 1,
            templateServes: false,
          }),
        ],
        [every('held', NOW - 60 * MIN)],
      ),
      NOW,
      60 * MIN,
    );
    const byName = new Map(input.fleet.projects[0]?.services.map((s) => [s.name, s]));
    expect(byName.get('held')).toMatchObject({ maxInstances: 2, revisionMaxInstances: 2 });
    // Its latest revision does not serve: the template's max bounds nothing (observing.md).
    expect(byName.get('pinned')?.maxInstances).toBe(3);
    expect(byName.get('pinned')?.revisionMaxInstances).toBeFalsy();
  });

  it('replays a project holding more GPU services in a region than Cloud Run allows by default', async () => {
    // Google raises the 1000 services per project and region on request: such a project replays.
    const many = Array.from({ length: 1_050 }, (_, i) =>
      observedService(`llm-${i}`, { project: SIM_PROJECT }),
    );
    const input = await buildReplayInput(
      governSimulation(),
      ports(many, [every('llm-0', NOW - 60 * MIN)]),
      NOW,
      60 * MIN,
    );
    expect(input.history).toMatchObject({ minutes: 60, gpuServices: 1_050 });
    expect(input.fleet.projects[0]?.perRegionLimit).toBe(1_050);
  });

  it('ends the window at the newest minute Monitoring shows, so the last minutes replay their demand', async () => {
    const behind = every('llm', start);
    behind.points = behind.points.filter((p) => p.at <= NOW - 3 * MIN);
    const input = await buildReplayInput(
      governSimulation(),
      ports([observedService('llm', { project: SIM_PROJECT })], [behind]),
      NOW,
      60 * MIN,
    );
    expect(input.history).toMatchObject({ shortened: false, minutes: 57 });
    expect(input.hours).toBe(57 / 60);
    // Demand 1 every minute replayed, the last one too: none reads as idle.
    const trace = input.traces.get(`replay:${SIM_PROJECT}/us-central1/llm`) ?? [];
    expect(trace.length).toBeGreaterThan(57);
    expect(Math.min(...trace)).toBe(1);
  });

  it('replays whole minutes when staleAfter is not a whole number of minutes', async () => {
    // Series that stopped an hour ago: the window ends staleAfter (5m30s) before now, which is
    // no minute boundary; its whole minutes are cut, the trace as long as the minutes replayed.
    const stopped = every('llm', NOW - 120 * MIN);
    stopped.points = stopped.points.filter((p) => p.at <= NOW - 60 * MIN);
    const input = await buildReplayInput(
      governSimulation({ defaults: { staleAfter: '5m30s' } }),
      ports([observedService('llm', { project: SIM_PROJECT })], [stopped]),
      NOW,
      120 * MIN,
    );
    expect(input.history.minutes).toBe(115);
    expect(input.hours).toBe(115 / 60);
    const trace = input.traces.get(`replay:${SIM_PROJECT}/us-central1/llm`) ?? [];
    expect(trace.length).toBe(115 + input.fleet.warmupMinutes);
  });

  it('replays each count in the minute it counts: a point is stamped at the end of its minute', async () => {
    // Minute i of the window (its point stamped at its end, i + 1 minutes in) counted i + 1.
    const counted = every('llm', NOW - 60 * MIN);
    counted.points = counted.points.map((p, i) => ({ ...p, value: i + 1 }));
    const input = await buildReplayInput(
      governSimulation(),
      ports([observedService('llm', { project: SIM_PROJECT })], [counted]),
      NOW,
      60 * MIN,
    );
    const warmup = input.fleet.warmupMinutes;
    const trace = input.traces.get(`replay:${SIM_PROJECT}/us-central1/llm`) ?? [];
    expect(trace.slice(warmup, warmup + 60)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    // The warm-up holds the first minute's level.
    expect(trace.slice(0, warmup)).toEqual(new Array<number>(warmup).fill(1));
  });

  it('names the services Monitoring has counts for that are gone now, rather than drop them unsaid', async () => {
    // A GPU service deleted within the window held GPUs of the pool until then; its series stays
    // in Monitoring until its points expire (https://cloud.google.com/monitoring/api/v3/latency-n-retention),
    // but nothing listed now says it had a GPU: the replay leaves it out, and says so.
    const input = await buildReplayInput(
      governSimulation(),
      ports(
        [observedService('llm', { project: SIM_PROJECT }), web],
        [every('llm', start), every('old-llm', start), every('web', start)],
      ),
      NOW,
      60 * MIN,
    );
    expect(input.history.gone).toEqual([`${SIM_PROJECT}/us-central1/old-llm`]);
    const notes = replayNotes(input.history, '1h');
    expect(notes.join('\n')).toContain(
      `1 service with instance counts in the window is not listed now (deleted): ${SIM_PROJECT}/us-central1/old-llm`,
    );
    // What is read as it is now, said whatever the history.
    expect(notes.join('\n')).toMatch(/as it is now.*quota/);
  });

  it('names no service of a region it did not read as gone: it was not listed, not deleted', async () => {
    const elsewhere = { ...every('llm-eu', start), region: 'europe-west4' };
    const input = await buildReplayInput(
      governSimulation(),
      ports([observedService('llm', { project: SIM_PROJECT })], [every('llm', start), elsewhere]),
      NOW,
      60 * MIN,
    );
    expect(input.history.gone).toEqual([]);
  });

  it('warms up with at most two hours, however long the lookback', async () => {
    const input = await buildReplayInput(
      governSimulation({ defaults: { lookback: '3h' } }),
      ports([observedService('llm', { project: SIM_PROJECT })], [every('llm', start)]),
      NOW,
      60 * MIN,
    );
    expect(input.fleet.warmupMinutes).toBe(120);
    const trace = input.traces.get(`replay:${SIM_PROJECT}/us-central1/llm`) ?? [];
    expect(trace.length).toBe(60 + 120);
  });

  it('says there is no GPU service to replay rather than replaying a web service as nothing', async () => {
    const input = await buildReplayInput(
      governSimulation(),
      ports([web], [every('web', start)]),
      NOW,
      60 * MIN,
    );
    expect(input.history.gpuServices).toBe(0);
    expect(input.history.minutes).toBe(0);
  });
});
