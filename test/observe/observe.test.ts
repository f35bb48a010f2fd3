import { describe, expect, it } from 'vitest';
import { effectiveMax, revisionBound } from '../../src/core/pool.js';
import { renderProblem } from '../../src/core/problems.js';
import { PermissionError, RateLimitedError, UnavailableError } from '../../src/core/errors.js';
import { observe } from '../../src/observe/observe.js';
import { plan } from '../../src/core/planner.js';
import { parseSnapshot } from '../../src/core/snapshot.js';
import { degradedAlert } from '../../src/core/run-alerts.js';
import { governAll, observedService } from '../support/fixtures.js';
import type {
  CloudRunPort,
  MetricSeries,
  MonitoringPort,
  QuotaPort,
} from '../../src/ports/index.js';
import type { ObservedService } from '../../src/core/service.js';

/**
 * How observation turns what the APIs answer into a snapshot: in-memory ports here (the Google
 * adapters have their own tests against the emulator); the rules of staleness, failures and
 * counting are the observer's.
 */

const NOW = Date.parse('2026-11-27T12:00:00Z');
const MIN = 60_000;

function service(name: string, more: Partial<ObservedService> = {}): ObservedService {
  return observedService(name, { region: 'us-east1', concurrency: 4, ...more });
}

function ports(opts: {
  services?: ObservedService[];
  series?: MetricSeries[];
  served?: MetricSeries[];
  refused?: MetricSeries[];
  utilization?: MetricSeries[];
  countsFail?: boolean;
  servedFail?: boolean;
  utilizationFail?: boolean;
  refusedFail?: boolean;
  quota?: (region: string) => number | null;
  failRegion?: string;
}): { run: CloudRunPort; monitoring: MonitoringPort; quotas: QuotaPort; quotaReads: string[] } {
  const quotaReads: string[] = [];
  return {
    quotaReads,
    run: {
      listRegions: () => Promise.resolve(['us-east1', 'us-west1']),
      listServices: (_p, region) =>
        region === opts.failRegion
          ? Promise.reject(new UnavailableError('listing us-west1 timed out'))
          : Promise.resolve((opts.services ?? []).filter((s) => s.region === region)),
      getService: () => Promise.reject(new Error('not used')),
      listWorkerPools: () => Promise.resolve([]),
      listRunningExecutions: () => Promise.resolve([]),
      updateMaxInstances: () => Promise.reject(new Error('observation never writes')),
    },
    monitoring: {
      instanceCounts: () =>
        opts.countsFail
          ? Promise.reject(new UnavailableError('monitoring down'))
          : Promise.resolve(opts.series ?? []),
      gpuUtilization: () =>
        opts.utilizationFail
          ? Promise.reject(new UnavailableError('utilization timed out'))
          : Promise.resolve(opts.utilization ?? []),
      servedRequests: () =>
        opts.servedFail
          ? Promise.reject(new UnavailableError('request counts timed out'))
          : Promise.resolve(opts.served ?? []),
      refusedRequests: () =>
        opts.refusedFail
          ? Promise.reject(new PermissionError('monitoring.timeSeries.list denied'))
          : Promise.resolve(opts.refused ?? []),
    },
    quotas: {
      gpuQuota: (q) => {
        quotaReads.push(`${q.region}/${q.zonalRedundancy}`);
        return Promise.resolve(opts.quota ? opts.quota(q.region) : 8);
      },
    },
  };
}

const points = (...vals: [minutesAgo: number, value: number][]) =>
  vals.map(([ago, value]) => ({ at: NOW - ago * MIN, value }));
const policy = governAll;

/** What a snapshot's JSON holds of `value`. */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

describe('observe', () => {
  it('reads in use and peak from the per-minute counts', async () => {
    const o = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([20, 1], [10, 3], [3, 2]) }],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]?.usage).toMatchObject({
      current: 2,
      peak: 3,
      sampledAt: new Date(NOW - 3 * MIN).toISOString(),
    });
  });

  it('counts a fraction of an instance in use as a whole one, as the peak and the minutes do', async () => {
    // A gauge read off Monitoring's grid can be fractional: 2.4 instances held is 3 held, in the
    // latest minute as in every other, so that in use never reads below that minute's count.
    const o = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([10, 1], [3, 2.4]) }],
      }),
      NOW,
    );
    const usage = o.snapshot.services[0]?.usage;
    expect(usage).toMatchObject({ current: 3, peak: 3 });
    expect(usage?.perMinute?.inUse.at(-1)).toBe(usage?.current);
  });

  it("counts no minute from before the service was created: they are a deleted namesake's", async () => {
    // 'a' was deleted and made again 8 minutes ago (on another GPU type, say). Monitoring groups
    // by service name, so the old one's 5 instances and its 429s come back under the new name.
    const o = await observe(
      policy(),
      ports({
        services: [service('a', { createTime: new Date(NOW - 8 * MIN).toISOString() })],
        series: [
          { service: 'a', region: 'us-east1', points: points([20, 5], [10, 5], [8, 1], [2, 1]) },
        ],
        refused: [{ service: 'a', region: 'us-east1', points: points([12, 40]) }],
      }),
      NOW,
    );
    const usage = o.snapshot.services[0]?.usage;
    expect(usage).toMatchObject({ current: 1, peak: 1 });
    expect(Math.max(...(usage?.perMinute?.inUse ?? []))).toBe(1);
    expect(usage?.perMinute?.refused?.reduce((a, b) => a + b, 0)).toBe(0);
    // Without a creation time (an older snapshot, a port that does not say), every minute counts.
    const unknown = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([20, 5], [2, 1]) }],
      }),
      NOW,
    );
    expect(unknown.snapshot.services[0]?.usage).toMatchObject({ current: 1, peak: 5 });
  });

  it('takes no request served nor GPU used before the service was created as a sign it is active', async () => {
    // 'a' was made 8 minutes ago and has had no instance since; its namesake served requests and
    // used its GPU 9 minutes ago. Taken as this service's, they would hold its usage unknown.
    const born = { createTime: new Date(NOW - 8 * MIN).toISOString() };
    const counts = [{ service: 'a', region: 'us-east1', points: points([20, 5], [9, 5]) }];
    for (const namesake of [
      { served: [{ service: 'a', region: 'us-east1', points: points([9, 30]) }] },
      { utilization: [{ service: 'a', region: 'us-east1', points: points([9, 0.5]) }] },
    ]) {
      const o = await observe(
        policy(),
        ports({ services: [service('a', born)], series: counts, ...namesake }),
        NOW,
      );
      expect(o.snapshot.services[0]?.usage).toMatchObject({ current: 0, peak: 0 });
    }
  });

  it('counts no minute that ends at the creation time: Monitoring reads a point as its interval (start, end]', async () => {
    // The point at 8 minutes ago covers the minute before it: all of it before 'a' was made then.
    const o = await observe(
      policy(),
      ports({
        services: [service('a', { createTime: new Date(NOW - 8 * MIN).toISOString() })],
        series: [{ service: 'a', region: 'us-east1', points: points([8, 5], [7, 2], [2, 1]) }],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]?.usage).toMatchObject({ current: 1, peak: 2 });
  });

  it('counts every minute when the creation time lies beyond the clock skew: taken at its word, the service would read as at zero', async () => {
    // A create_time an hour ahead of this clock (a wrong clock, a hand-made answer) would drop
    // every minute the service has, and a service at zero is planned from nothing.
    const ahead = await observe(
      policy(),
      ports({
        services: [service('a', { createTime: new Date(NOW + 60 * MIN).toISOString() })],
        series: [{ service: 'a', region: 'us-east1', points: points([20, 5], [2, 1]) }],
      }),
      NOW,
    );
    expect(ahead.snapshot.services[0]?.usage).toMatchObject({ current: 1, peak: 5 });
    // Within the skew, it is taken at its word: no minute before it is this service's.
    const justNow = await observe(
      policy(),
      ports({
        services: [service('a', { createTime: new Date(NOW + 30_000).toISOString() })],
        series: [{ service: 'a', region: 'us-east1', points: points([20, 5], [2, 1]) }],
      }),
      NOW,
    );
    expect(justNow.snapshot.services[0]?.usage).toMatchObject({ current: 0, peak: 0 });
  });

  it('reads GPU utilization over the last staleAfter only, the counts over the lookback, and uses its latest minute', async () => {
    const windows: Record<string, { startMs: number; endMs: number }> = {};
    const base = ports({
      services: [service('a')],
      series: [{ service: 'a', region: 'us-east1', points: points([20, 1], [3, 2]) }],
    });
    const o = await observe(
      policy({ defaults: { lookback: '30m', staleAfter: '10m' } }),
      {
        ...base,
        monitoring: {
          ...base.monitoring,
          instanceCounts: (p, w) => ((windows.counts = w), base.monitoring.instanceCounts(p, w)),
          gpuUtilization: (_p, w) => {
            windows.utilization = w;
            return Promise.resolve([
              { service: 'a', region: 'us-east1', points: points([4, 0.2], [3, 0.6]) },
            ]);
          },
        },
      },
      NOW,
    );
    expect(windows.counts).toEqual({ startMs: NOW - 30 * MIN, endMs: NOW });
    expect(windows.utilization).toEqual({ startMs: NOW - 10 * MIN, endMs: NOW });
    expect(o.snapshot.services[0]?.usage?.utilization).toBe(0.6);
  });

  it('keeps the lookback minute by minute: instances in use, requests served and refused', async () => {
    const o = await observe(
      policy(),
      ports({
        services: [service('a'), service('b')],
        series: [
          { service: 'a', region: 'us-east1', points: points([5, 2], [4, 3], [3, 3]) },
          { service: 'b', region: 'us-east1', points: points([3, 1]) },
        ],
        served: [{ service: 'a', region: 'us-east1', points: points([5, 80], [4, 120], [3, 90]) }],
        refused: [{ service: 'a', region: 'us-east1', points: points([3, 40]) }],
      }),
      NOW,
    );
    // The default lookback is 30 minutes; the newest point of the project is 3 minutes old.
    // Monitoring reads (start, end]: the minute 30 minutes ago is not in the window, so the
    // grid starts a minute later rather than with a minute of 0 nothing was read for.
    const zeros = (n: number) => Array<number>(n).fill(0);
    const a = o.snapshot.services.find((s) => s.name === 'a')?.usage?.perMinute;
    expect(a).toEqual({
      start: new Date(NOW - 29 * MIN).toISOString(),
      inUse: [...zeros(24), 2, 3, 3],
      served: [...zeros(24), 80, 120, 90],
      refused: [...zeros(26), 40],
    });
    // Read, and none: zeros, not absent.
    const b = o.snapshot.services.find((s) => s.name === 'b')?.usage?.perMinute;
    expect(b?.served).toEqual(zeros(27));
    expect(b?.refused).toEqual(zeros(27));
    expect(b?.inUse.at(-1)).toBe(1);
    expect(o.problems).toEqual([]);
  });

  it('leaves refusals out, and says so, when they cannot be read', async () => {
    const o = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([3, 2]) }],
        served: [{ service: 'a', region: 'us-east1', points: points([3, 50]) }],
        refusedFail: true,
      }),
      NOW,
    );
    const usage = o.snapshot.services[0]?.usage;
    expect(usage).toMatchObject({ current: 2, peak: 2 });
    expect(usage?.perMinute?.served?.at(-1)).toBe(50);
    expect(usage?.perMinute).not.toHaveProperty('refused');
    expect(o.problems).toEqual([
      {
        project: 'p',
        region: null,
        pool: null,
        subject: 'refused-requests',
        error: 'monitoring.timeSeries.list denied',
      },
    ]);
    expect(o.problems.map(renderProblem)).toEqual([
      'p: refused requests unreadable: monitoring.timeSeries.list denied',
    ]);
  });

  it('reads usage from the instance counts alone when requests served or GPU use cannot be read, and says what was not read', async () => {
    const o = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([3, 2]) }],
        servedFail: true,
        utilizationFail: true,
      }),
      NOW,
    );
    const usage = o.snapshot.services[0]?.usage;
    expect(usage).toMatchObject({ current: 2, peak: 2 });
    expect(usage).not.toHaveProperty('utilization');
    expect(usage?.perMinute).not.toHaveProperty('served');
    expect(o.problems.map((p) => `${p.subject}: ${p.error}`).sort()).toEqual([
      'gpu-utilization: utilization timed out',
      'served-requests: request counts timed out',
    ]);
  });

  it('tells a service that scaled to zero (its series stopped, others go on) from metrics that are behind', async () => {
    const fresh = { service: 'b', region: 'us-east1', points: points([2, 1]) };
    const stopped = { service: 'a', region: 'us-east1', points: points([25, 2], [20, 2]) };
    const o = await observe(
      policy(),
      ports({ services: [service('a'), service('b')], series: [stopped, fresh] }),
      NOW,
    );
    expect(o.snapshot.services.find((s) => s.name === 'a')?.usage).toMatchObject({
      current: 0,
      peak: 2,
    });

    const behind = await observe(
      policy(),
      ports({ services: [service('a')], series: [stopped] }),
      NOW,
    );
    expect(behind.snapshot.services[0]?.usage).toBeNull();
    expect(behind.snapshot.services[0]?.usageNote).toContain('metrics are behind');

    // A newest point exactly staleAfter (10 minutes) old is still fresh: its value is in use.
    const edge = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([10, 2]) }],
      }),
      NOW,
    );
    expect(edge.snapshot.services[0]?.usage).toMatchObject({ current: 2, peak: 2 });
  });

  it('holds unknown a service whose series stopped while it served requests since, however long ago it also did', async () => {
    const o = await observe(
      policy(),
      ports({
        services: [service('a'), service('b')],
        series: [
          { service: 'a', region: 'us-east1', points: points([25, 2]) },
          { service: 'b', region: 'us-east1', points: points([2, 1]) },
        ],
        served: [{ service: 'a', region: 'us-east1', points: points([20, 5], [3, 5]) }],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]?.usage).toBeNull();
    expect(o.snapshot.services[0]?.usageNote).toContain('served requests or used its GPU');
  });

  it('a service with no series in a successful query is idle; a failed query makes usage unknown', async () => {
    const idle = await observe(policy(), ports({ services: [service('a')], series: [] }), NOW);
    expect(idle.snapshot.services[0]?.usage).toMatchObject({ current: 0, peak: 0 });
    const failed = await observe(
      policy(),
      ports({ services: [service('a')], countsFail: true }),
      NOW,
    );
    expect(failed.snapshot.services[0]?.usage).toBeNull();
    expect(failed.snapshot.services[0]?.usageNote).toContain('monitoring down');
    expect(failed.problems).toContainEqual(
      expect.objectContaining({
        project: 'p',
        region: null,
        pool: null,
        subject: 'instance-counts',
      }),
    );
    expect(failed.problems.map(renderProblem).join('\n')).toContain('instance counts unreadable');
  });

  it('no series at all while a service keeps min instances is metrics behind, not a project at zero', async () => {
    // Monitoring further behind than the whole lookback answers no series at all: a service that
    // keeps a min instance cannot be at zero, so every usage is unknown (nothing lowered on it).
    const o = await observe(
      policy(),
      ports({ services: [service('a', { serviceMinInstances: 1 }), service('b')], series: [] }),
      NOW,
    );
    for (const s of o.snapshot.services) {
      expect(s.usage).toBeNull();
      expect(s.usageNote).toContain('metrics are behind');
      expect(s.usageNote).toContain('us-east1/a keeps 1 min instance');
    }
    // A series of no listed service does not stand for theirs: still behind.
    const stray = await observe(
      policy(),
      ports({
        services: [service('a', { serviceMinInstances: 1 }), service('b')],
        series: [{ service: 'ghost', region: 'us-east1', points: points([1, 1]) }],
      }),
      NOW,
    );
    for (const s of stray.snapshot.services) {
      expect(s.usage).toBeNull();
      expect(s.usageNote).toContain('metrics are behind');
    }
  });

  it('no series at all while a manually scaled service runs instances is metrics behind too', async () => {
    // Manual scaling runs "a specific instance count ... regardless of traffic or utilization"
    // (https://cloud.google.com/run/docs/configuring/services/manual-scaling): while it runs any,
    // the project has a series, so none at all is Monitoring behind, not a project at zero, and
    // the autoscaled services' caps are held rather than lowered on usage read as zero.
    const o = await observe(
      policy(),
      ports({
        services: [service('m', { scalingMode: 'MANUAL', manualInstanceCount: 2 }), service('b')],
        series: [],
      }),
      NOW,
    );
    const [b] = o.snapshot.services;
    expect(b?.usage).toBeNull();
    expect(b?.usageNote).toContain('metrics are behind');
    expect(b?.usageNote).toContain('us-east1/m runs 2 instance(s)');
    // One scaled manually to zero runs none: the project may well be at zero.
    const none = await observe(
      policy(),
      ports({
        services: [service('m', { scalingMode: 'MANUAL', manualInstanceCount: 0 }), service('b')],
        series: [],
      }),
      NOW,
    );
    expect(none.snapshot.services[0]?.usage).toMatchObject({ current: 0, peak: 0 });
  });

  it('a series missing from a fresh answer is not read as zero when the service cannot be at zero', async () => {
    const fresh = { service: 'b', region: 'us-east1', points: points([2, 1]) };
    const o = await observe(
      policy(),
      ports({
        services: [service('warm', { revisionMinInstances: 2 }), service('busy'), service('b')],
        series: [fresh],
        served: [{ service: 'busy', region: 'us-east1', points: points([4, 0], [3, 120]) }],
      }),
      NOW,
    );
    const by = (name: string) => o.snapshot.services.find((s) => s.name === name);
    expect(by('warm')?.usage).toBeNull();
    expect(by('warm')?.usageNote).toContain('keeps 2 min instance(s) (its series is missing)');
    expect(by('busy')?.usage).toBeNull();
    expect(by('busy')?.usageNote).toContain('served requests or used its GPU');
    expect(by('b')?.usage).toMatchObject({ current: 1 });
  });

  it('a service whose series is missing keeps its cap while a neighbour is refused (fail static, rule 4)', async () => {
    // warm keeps a min instance, so its missing series is a gap, not a service at zero whose
    // room could move to the refused neighbour; the plan leaves its cap where it is.
    const o = await observe(
      policy(),
      ports({
        services: [
          service('warm', { serviceMaxInstances: 4, serviceMinInstances: 1 }),
          service('pressed', { serviceMaxInstances: 4 }),
        ],
        series: [
          { service: 'pressed', region: 'us-east1', points: points([5, 4], [4, 4], [3, 4]) },
        ],
        served: [
          { service: 'pressed', region: 'us-east1', points: points([5, 80], [4, 80], [3, 80]) },
        ],
        refused: [
          { service: 'pressed', region: 'us-east1', points: points([5, 40], [4, 40], [3, 40]) },
        ],
      }),
      NOW,
    );
    const planned = plan(o.snapshot, policy(), new Date(NOW).toISOString());
    const warm = planned.services.find((s) => s.name === 'warm');
    expect(warm?.inUse).toBeNull();
    expect(warm?.to).toBe(warm?.from);
  });

  it('skips a region it cannot list, and says so', async () => {
    const o = await observe(
      policy(),
      ports({
        services: [service('a'), service('z', { region: 'us-west1' })],
        failRegion: 'us-west1',
      }),
      NOW,
    );
    expect(o.snapshot.services.map((s) => s.name)).toEqual(['a']);
    // Only the region read counts: none read at all is a run that could read nothing.
    expect(o.regionsListed).toBe(1);
    expect(o.problems).toEqual([
      expect.objectContaining({
        project: 'p',
        region: 'us-west1',
        pool: null,
        subject: 'services',
      }),
    ]);
    expect(o.problems.map(renderProblem).join('\n')).toContain(
      'p/us-west1: services unreadable, region skipped',
    );
  });

  it('skips a project whose regions it cannot list, and still reads the others', async () => {
    // A policy without regions lists each project's Cloud Run regions first. Refused for one
    // project (its read quota spent for the minute, say), that project is left out whole, as a
    // region that cannot be listed is: the other projects are observed (and so governed: their
    // decreases are what keeps a pool within a cut quota), and the run says what it skipped.
    const base = ports({ services: [service('a')] });
    const refusal = new RateLimitedError(
      "listing the Cloud Run regions of projects/q failed: RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'Read requests'",
    );
    const run: CloudRunPort = {
      ...base.run,
      listRegions: (project) =>
        project === 'q' ? Promise.reject(refusal) : Promise.resolve(['us-east1', 'us-west1']),
    };
    const o = await observe(policy({ projects: ['p', 'q'] }), { ...base, run }, NOW);
    expect(o.snapshot.services.map((s) => `${s.project}/${s.name}`)).toEqual(['p/a']);
    expect(o.regionsListed).toBe(2);
    expect(o.problems).toEqual([
      { project: 'q', region: null, pool: null, subject: 'services', error: refusal.message },
    ]);
    expect(o.problems.map(renderProblem)).toEqual([
      `q: its Cloud Run regions could not be listed, so none of them is governed: ${refusal.message}`,
    ]);
    const alert = degradedAlert({ at: new Date(NOW).toISOString(), runId: 'r' }, 'q', o.problems);
    expect(alert?.severity).toBe('ERROR');
    expect(alert?.summary).toContain('q is not governed in any region');
    expect(
      degradedAlert({ at: new Date(NOW).toISOString(), runId: 'r' }, 'p', o.problems),
    ).toBeNull();
  });

  it('fails when no project could be listed: nothing is governed, and a retry may help', async () => {
    const base = ports({ services: [service('a')] });
    const refusal = new RateLimitedError('RESOURCE_EXHAUSTED: Quota exceeded');
    const run: CloudRunPort = { ...base.run, listRegions: () => Promise.reject(refusal) };
    for (const projects of [['p'], ['p', 'q']])
      await expect(observe(policy({ projects }), { ...base, run }, NOW)).rejects.toBe(refusal);
  });

  it('reads each quota the policy does not set, and leaves a failed one unknown', async () => {
    const p = ports({
      services: [
        service('a'),
        service('n', { gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: false } }),
      ],
    });
    const o = await observe(
      policy({ regions: ['us-east1'], pools: [{ region: 'us-east1', quota: 5 }] }),
      p,
      NOW,
    );
    expect(p.quotaReads).toEqual(['us-east1/false']); // the zonal pool's quota comes from the policy
    expect(o.snapshot.pools).toHaveLength(1);

    // A pools entry of a region Cloud Run does not list costs no read: nothing there is planned.
    const elsewhere = ports({ services: [service('a')] });
    await observe(policy({ pools: [{ region: 'europe-west4', reserve: 1 }] }), elsewhere, NOW);
    expect(elsewhere.quotaReads).toEqual(['us-east1/true']);

    // A quota Cloud Quotas holds no entry for is unknown, and its source says why.
    const none = await observe(
      policy({ regions: ['us-east1'] }),
      ports({ services: [service('a')], quota: () => null }),
      NOW,
    );
    expect(none.snapshot.pools[0]).toMatchObject({
      quota: null,
      quotaSource: 'cloudquotas: no entry for the region',
    });

    const failing: QuotaPort = {
      gpuQuota: () => Promise.reject(new UnavailableError('quotas down')),
    };
    const f = await observe(
      policy({ regions: ['us-east1'] }),
      { ...ports({ services: [service('a')] }), quotas: failing },
      NOW,
    );
    expect(f.snapshot.pools[0]).toMatchObject({ quota: null });
    expect(f.problems).toEqual([
      {
        project: 'p',
        region: 'us-east1',
        pool: { project: 'p', region: 'us-east1', accelerator: 'nvidia-l4', zonalRedundancy: true },
        subject: 'quota',
        error: 'quotas down',
      },
    ]);
    expect(f.problems.map(renderProblem).join('\n')).toContain(
      'p/us-east1/nvidia-l4/zonal: quota unreadable: quotas down',
    );
  });

  it('counts worker pools and manually scaled services as unmanaged usage', async () => {
    const manual = service('m', { scalingMode: 'MANUAL', manualInstanceCount: 2 });
    const p = ports({ services: [manual] });
    p.run.listWorkerPools = () =>
      Promise.resolve([
        {
          project: 'p',
          region: 'us-east1',
          name: 'enc',
          gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
          manualInstanceCount: 1,
        },
      ]);
    const o = await observe(policy({ regions: ['us-east1'] }), p, NOW);
    expect(o.snapshot.services).toEqual([]);
    expect(o.snapshot.unmanagedUsage.map((u) => [u.source, u.gpus])).toEqual([
      ['service/m (manual scaling)', 2],
      ['worker-pool/enc', 1],
    ]);
  });

  it('counts a manually scaled service without a manual instance count at its min instances', async () => {
    // ServiceScaling.ScalingMode MANUAL: "Scale to exactly min instances and ignore max
    // instances" (google/cloud/run/v2/vendor_settings.proto); manual_instance_count is optional.
    const unset = service('u', {
      scalingMode: 'MANUAL',
      manualInstanceCount: null,
      serviceMinInstances: 3,
    });
    const both = service('b', {
      scalingMode: 'MANUAL',
      manualInstanceCount: 1,
      serviceMinInstances: 2,
    });
    const o = await observe(
      policy({ regions: ['us-east1'] }),
      ports({ services: [unset, both] }),
      NOW,
    );
    expect(o.snapshot.unmanagedUsage.map((u) => [u.source, u.gpus])).toEqual([
      ['service/b (manual scaling)', 2],
      ['service/u (manual scaling)', 3],
    ]);
  });

  it('counts the running tasks of job executions as unmanaged usage of their pool', async () => {
    const p = ports({ services: [service('a')] });
    const execution = (job: string, name: string, runningTasks: number, gpus: number | null) => ({
      project: 'p',
      region: 'us-east1',
      job,
      name,
      gpu: gpus === null ? null : { accelerator: 'nvidia-l4', count: gpus, zonalRedundancy: false },
      runningTasks,
      parallelism: 4,
      taskCount: 10,
    });
    p.run.listRunningExecutions = () =>
      Promise.resolve([
        execution('embed', 'embed-abc12', 3, 1),
        execution('embed', 'embed-def34', 0, 1), // tasks queued, none running
        execution('render', 'render-x1y2z', 2, 2),
        execution('etl', 'etl-qqqqq', 5, null), // no GPU
      ]);
    const o = await observe(policy({ regions: ['us-east1'] }), p, NOW);
    expect(o.snapshot.unmanagedUsage.map((u) => [u.source, u.gpus, u.zonalRedundancy])).toEqual([
      ['job/embed', 3, false],
      ['job/embed', 0, false],
      ['job/render', 4, false],
    ]);
    // The pool without zonal redundancy is observed (its quota read) although no service uses it.
    expect(o.snapshot.pools.map((pool) => pool.zonalRedundancy).sort()).toEqual([false, true]);
    expect(o.jobExecutions).toHaveLength(4);
  });

  it('a region whose job executions cannot be listed is still read; its pools raise nothing', async () => {
    const p = ports({ services: [service('a'), service('b', { region: 'us-west1' })] });
    p.run.listRunningExecutions = (_p, region) =>
      region === 'us-east1'
        ? Promise.reject(new PermissionError('run.executions.list denied'))
        : Promise.resolve([]);
    const o = await observe(policy(), p, NOW);
    expect(o.snapshot.services.map((s) => `${s.region}/${s.name}`)).toEqual([
      'us-east1/a',
      'us-west1/b',
    ]);
    expect(o.problems).toEqual([
      {
        project: 'p',
        region: 'us-east1',
        pool: null,
        subject: 'jobs',
        error: expect.stringContaining('run.executions.list denied'),
      },
    ]);
    const r1 = o.snapshot.pools.find((pool) => pool.region === 'us-east1');
    expect(r1?.budgetUnknown).toContain('job executions could not be listed');
    expect(
      o.snapshot.pools.find((pool) => pool.region === 'us-west1')?.budgetUnknown,
    ).toBeUndefined();
  });

  it('a failed worker-pool listing leaves only that region’s pool budgets unknown: services still read, nothing raised there, degraded says why', async () => {
    // The region used to be skipped whole.
    const p = ports({
      services: [
        service('a', { serviceMaxInstances: 1 }),
        service('b', { region: 'us-west1', serviceMaxInstances: 1 }),
      ],
      series: [
        { service: 'a', region: 'us-east1', points: points([10, 1], [1, 1]) },
        { service: 'b', region: 'us-west1', points: points([10, 1], [1, 1]) },
      ],
    });
    p.run.listWorkerPools = (_p, region) =>
      region === 'us-east1'
        ? Promise.reject(new PermissionError("Permission 'run.workerpools.list' denied"))
        : Promise.resolve([]);
    const o = await observe(policy(), p, NOW);
    expect(o.snapshot.services.map((s) => `${s.region}/${s.name}`)).toEqual([
      'us-east1/a',
      'us-west1/b',
    ]);
    expect(o.problems.map((x) => [x.region, x.subject])).toEqual([['us-east1', 'worker-pools']]);
    expect(renderProblem(o.problems[0]!)).toContain('worker pools unreadable');
    const planned = plan(o.snapshot, policy(), new Date(NOW).toISOString());
    const r1 = planned.pools.find((pool) => pool.region === 'us-east1');
    expect(r1?.budget).toBeNull();
    expect(r1?.status).toBe('unknown-quota');
    expect(r1?.note).toContain('worker pools could not be listed');
    // Saturated at 1 and with room: r2's service is raised, r1's is not.
    const to = Object.fromEntries(planned.services.map((s) => [s.name, s.to]));
    expect(to['a']).toBe(1);
    expect(to['b']).toBeGreaterThan(1);
    expect(planned.services.find((s) => s.name === 'a')?.reason).toContain('pool budget unknown');
    const degraded = degradedAlert({ at: planned.at, runId: 'r' }, 'p', o.problems);
    expect(degraded?.details['problems']).toEqual([
      expect.stringContaining('worker pools unreadable'),
    ]);
  });

  it('an unset max is not 100: counted at quota ÷ GPUs per instance, and the reason says so', async () => {
    // Google derives an unset max from the regional quota.
    const unset = service('free', {
      serviceMaxInstances: null,
      revisionMaxInstances: null,
      gpu: { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true },
    });
    const o = await observe(
      policy({ regions: ['us-east1'] }),
      ports({ services: [unset], series: [], quota: () => 8 }),
      NOW,
    );
    expect(o.snapshot.services[0]).toMatchObject({ maxInstances: 4, maxUnset: true });
    const planned = plan(
      o.snapshot,
      policy({ regions: ['us-east1'] }),
      new Date(NOW).toISOString(),
    );
    const row = planned.services.find((s) => s.name === 'free');
    expect(row?.from).toBe(4);
    expect(row?.reason).toContain(
      'no max instances set: Cloud Run derives it from the regional quota, so it counts as 4',
    );
  });

  it('reads the effective max, min instances and the governor annotation', async () => {
    expect(effectiveMax({ serviceMaxInstances: null, revisionMaxInstances: null })).toBe(100);
    expect(effectiveMax({ serviceMaxInstances: 5, revisionMaxInstances: 3 })).toBe(3);
    // The revision's own max bounds the cap only while that revision is known to serve.
    expect(revisionBound({ serviceMaxInstances: 2, revisionMaxInstances: 3 })).toBe(3);
    expect(revisionBound({ serviceMaxInstances: 2, revisionMaxInstances: 0 })).toBeNull();
    const pinned = { serviceMaxInstances: 2, revisionMaxInstances: 3, templateServes: false };
    expect(revisionBound(pinned)).toBeNull();
    const o = await observe(
      policy({ regions: ['us-east1'] }),
      ports({
        services: [
          service('a', {
            serviceMinInstances: 1,
            revisionMinInstances: 2,
            annotations: {
              'gpu-governor.dev/last-changed': '2026-11-27T11:50:00Z',
              'gpu-governor.dev/last-lowered': '2026-11-27T11:40:00Z',
            },
          }),
          service('b', {
            annotations: { 'gpu-governor.dev/last-changed': '2026-11-27T11:50:00Z' },
          }),
        ],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]).toMatchObject({
      minInstances: 2,
      maxInstances: 3,
      lastChangedAt: '2026-11-27T11:50:00.000Z',
      lastLoweredAt: '2026-11-27T11:40:00.000Z',
    });
    // A raise starts no reverse delay: never lowered, no last decrease.
    // Absent from the snapshot's JSON (the service object carries it as undefined: one shape).
    expect(asJson(o.snapshot.services[1])).not.toHaveProperty('lastLoweredAt');
    // One shape for both (core/snapshot.ts oneShapeService): the planner reads them alike.
    const [one, two] = o.snapshot.services.map((s) => Object.keys(s));
    expect(two).toEqual(one);
  });

  it('reads an annotated time only as an RFC 3339 time with its offset, so the snapshot replays and reads the same on every machine', async () => {
    // Anyone can edit an annotation. `Date.parse` took "garbage 2026" as 2026-01-01, a time
    // without an offset in the machine's own zone (a laptop in New York and the function read
    // different instants), and a time past 9999 that the snapshot's schema then refused.
    const cases: [text: string, read: string | null][] = [
      ['2026-11-27T11:50:00+01:00', '2026-11-27T10:50:00.000Z'],
      ['2026-11-27T11:50:00.5Z', '2026-11-27T11:50:00.500Z'],
      ['garbage 2026', null],
      ['1', null],
      ['2026-11-27 11:50', null],
      ['2026-11-27T11:50:00', null],
      ['Nov 27 2026', null],
      ['2026-02-30T00:00:00Z', null],
      ['9999-12-31T23:59:59-12:00', null],
      ['+010000-01-01T00:00:00Z', null],
    ];
    for (const [text, read] of cases) {
      const o = await observe(
        policy({ regions: ['us-east1'] }),
        ports({
          services: [
            service('a', {
              annotations: {
                'gpu-governor.dev/last-changed': text,
                'gpu-governor.dev/last-lowered': text,
              },
            }),
          ],
        }),
        NOW,
      );
      const s = o.snapshot.services[0];
      expect(s?.lastChangedAt ?? null, text).toBe(read);
      expect(s?.lastLoweredAt ?? null, text).toBe(read);
      expect(() => parseSnapshot(JSON.parse(JSON.stringify(o.snapshot))), text).not.toThrow();
    }
  });

  it('a Monitoring answer beyond what a snapshot counts leaves that service usage-unknown: the snapshot stays one its schema accepts, and the plan holds the cap', async () => {
    const observeWith = (counts: number, served: number, refused: number) =>
      observe(
        policy({ regions: ['us-east1'] }),
        ports({
          services: [service('a'), service('b')],
          series: [
            { service: 'a', region: 'us-east1', points: points([3, counts]) },
            { service: 'b', region: 'us-east1', points: points([3, 2]) },
          ],
          served: [{ service: 'a', region: 'us-east1', points: points([3, served]) }],
          refused: [{ service: 'a', region: 'us-east1', points: points([3, refused]) }],
        }),
        NOW,
      );
    const cases: [counts: number, served: number, refused: number, note: string][] = [
      [5_000_000, 10, 0, 'Monitoring reported 5000000 instances in a minute'],
      [2, 300_000_000, 0, 'Monitoring reported 300000000 served requests in a minute'],
      [2, 10, 1e17, 'Monitoring reported 100000000000000000 refused requests in a minute'],
      // One past the bounds: the snapshot's schema would refuse it.
      [1_000_001, 10, 0, 'Monitoring reported 1000001 instances in a minute'],
      [2, 100_000_001, 0, 'Monitoring reported 100000001 served requests in a minute'],
    ];
    for (const [counts, served, refused, note] of cases) {
      const { snapshot } = await observeWith(counts, served, refused);
      const [a, b] = snapshot.services;
      expect(a?.usage).toBeNull();
      expect(a?.usageNote).toContain(note);
      expect(b?.usage?.current).toBe(2);
      // What `governor snapshot` saves, `plan --snapshot` reads back.
      const reread = parseSnapshot(JSON.parse(JSON.stringify(snapshot)));
      const row = plan(reread, policy({ regions: ['us-east1'] }), reread.takenAt).services.find(
        (s) => s.name === 'a',
      );
      expect(row?.to).toBe(row?.from);
      expect(row?.reason).toContain('corrupt answer');
    }
    // At the bounds themselves, the answer is usage as usual.
    const { snapshot } = await observeWith(1_000_000, 100_000_000, 100_000_000);
    expect(snapshot.services[0]?.usage?.current).toBe(1_000_000);
    expect(() => parseSnapshot(JSON.parse(JSON.stringify(snapshot)))).not.toThrow();
  });

  it('series of services it does not list, names Cloud Run refuses and regions not governed change no row, at any number', async () => {
    const ghost = (service: string, region = 'us-east1'): MetricSeries => ({
      service,
      region,
      points: points([9, 50], [2, 50]),
    });
    const own: MetricSeries = { service: 'a', region: 'us-east1', points: points([5, 3], [2, 1]) };
    const odd = [ghost('Not_A/Cloud Run name'), ghost('a', 'mars-north1'), ghost('gone')];
    const many = Array.from({ length: 20_000 }, (_, i) => ghost(`ghost-${i}`));
    for (const series of [[own], [...odd, own], [...many, own, ...odd]]) {
      const o = await observe(
        policy({ regions: ['us-east1'] }),
        ports({ services: [service('a')], series }),
        NOW,
      );
      expect(o.snapshot.services.map((s) => s.name)).toEqual(['a']);
      expect(o.snapshot.services[0]?.usage).toMatchObject({ current: 1, peak: 3 });
      expect(o.snapshot.unmanagedUsage).toEqual([]);
      expect(o.problems).toEqual([]);
    }
  });

  it('two instance counts that fall in one minute count its instances once; two request counts add up', async () => {
    // Off the minute grid (Monitoring aligns to it; an odd answer need not): 20 s apart.
    const pair = (value: number) => [
      { at: NOW - 3 * MIN, value },
      { at: NOW - 3 * MIN + 20_000, value },
    ];
    const o = await observe(
      policy({ regions: ['us-east1'] }),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: pair(4) }],
        served: [{ service: 'a', region: 'us-east1', points: pair(5) }],
        refused: [{ service: 'a', region: 'us-east1', points: pair(6) }],
      }),
      NOW,
    );
    const minutes = o.snapshot.services[0]?.usage?.perMinute;
    expect(Math.max(...(minutes?.inUse ?? []))).toBe(4);
    expect(Math.max(...(minutes?.served ?? []))).toBe(10);
    expect(Math.max(...(minutes?.refused ?? []))).toBe(12);
  });

  it("a fresh series of a service it does not list does not make the project's old series read as services at zero", async () => {
    // 'a' last reported 25 minutes ago: Monitoring is behind, unless the project's other services
    // go on. A series of no listed service (a namesake in another region, a name no service has)
    // is not one of them.
    const old: MetricSeries = { service: 'a', region: 'us-east1', points: points([25, 3]) };
    for (const other of [
      { service: 'ghost', region: 'us-east1' },
      { service: 'a', region: 'mars-north1' },
    ]) {
      const o = await observe(
        policy({ regions: ['us-east1'] }),
        ports({ services: [service('a')], series: [old, { ...other, points: points([1, 1]) }] }),
        NOW,
      );
      const [a] = o.snapshot.services;
      expect(a?.usage).toBeNull();
      expect(a?.usageNote).toContain('metrics are behind');
      const row = plan(o.snapshot, policy({ regions: ['us-east1'] }), o.snapshot.takenAt)
        .services[0];
      expect(row?.to).toBe(row?.from);
    }
    // A listed service that goes on does tell 'a' stopped.
    const o = await observe(
      policy({ regions: ['us-east1'] }),
      ports({
        services: [service('a'), service('b')],
        series: [old, { service: 'b', region: 'us-east1', points: points([1, 1]) }],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]?.usage).toMatchObject({ current: 0, peak: 3 });
  });

  it('reads a series of a million points without running out of stack', async () => {
    // Far more than Monitoring's one point a minute, each at its own millisecond of the window:
    // spread into Math.max, as many arguments overflowed the call stack and failed the run.
    const many = Array.from({ length: 1_000_000 }, (_, i) => ({
      at: NOW - 1_000_000 + i,
      value: 2,
    }));
    const o = await observe(
      policy({ regions: ['us-east1'] }),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: many }],
        served: [{ service: 'a', region: 'us-east1', points: many }],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]?.usage).toMatchObject({ current: 2, peak: 2 });
  });

  it('takes only requests served (not a count of none), or GPU use, within staleAfter as a sign its series is missing', async () => {
    // 'b' goes on, so the project is fresh; 'a' last reported instances 25 minutes ago.
    const counts: MetricSeries[] = [
      { service: 'a', region: 'us-east1', points: points([25, 2]) },
      { service: 'b', region: 'us-east1', points: points([2, 1]) },
    ];
    const a = async (more: { served?: MetricSeries[]; utilization?: MetricSeries[] }) =>
      (
        await observe(
          policy(),
          ports({ services: [service('a'), service('b')], series: counts, ...more }),
          NOW,
        )
      ).snapshot.services.find((s) => s.name === 'a');
    // GPU use 4 minutes ago: it had instances then, so its series is missing, not at zero.
    const used = await a({
      utilization: [{ service: 'a', region: 'us-east1', points: points([4, 0.3]) }],
    });
    expect(used?.usage).toBeNull();
    expect(used?.usageNote).toContain('served requests or used its GPU');
    // No sign: a minute of no requests, or requests older than staleAfter (they say nothing of
    // now). At zero now, with the window's peak, so its cap may be lowered.
    for (const served of [points([25, 5], [4, 0]), points([20, 5])]) {
      const idle = await a({ served: [{ service: 'a', region: 'us-east1', points: served }] });
      expect(idle?.usage, JSON.stringify(served)).toMatchObject({ current: 0, peak: 2 });
    }
  });

  it('puts a point of the first minute of the lookback in that minute', async () => {
    // The grid's first minute is the one a minute after the lookback's start (Monitoring reads
    // (start, end]); what it holds counts toward the minutes demand is estimated from.
    const o = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([29, 4], [3, 1]) }],
        served: [{ service: 'a', region: 'us-east1', points: points([29, 60], [3, 10]) }],
      }),
      NOW,
    );
    const minutes = o.snapshot.services[0]?.usage?.perMinute;
    expect(minutes?.start).toBe(new Date(NOW - 29 * MIN).toISOString());
    expect(minutes?.inUse[0]).toBe(4);
    expect(minutes?.served?.[0]).toBe(60);
  });

  it("counts a service without a max at the policy's quota for its pool, as the write path counts it", async () => {
    // The policy's quota is the pool's quota for the plan, and the writes read the service again
    // counting its unset max from the plan's pools: observation must count it the same way, not
    // at 100 as for a quota unknown.
    const unset = service('free', {
      serviceMaxInstances: null,
      revisionMaxInstances: null,
      gpu: { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true },
    });
    const p = ports({ services: [unset], series: [] });
    const o = await observe(
      policy({ regions: ['us-east1'], pools: [{ region: 'us-east1', quota: 6 }] }),
      p,
      NOW,
    );
    expect(p.quotaReads).toEqual([]);
    expect(o.snapshot.services[0]).toMatchObject({ maxInstances: 3, maxUnset: true });
  });

  it('counts every GPU of an instance a manually scaled service or a worker pool holds', async () => {
    const twoGpus = { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true };
    const p = ports({
      services: [service('m', { scalingMode: 'MANUAL', manualInstanceCount: 3, gpu: twoGpus })],
    });
    p.run.listWorkerPools = () =>
      Promise.resolve([
        { project: 'p', region: 'us-east1', name: 'enc', gpu: twoGpus, manualInstanceCount: 2 },
      ]);
    const o = await observe(policy({ regions: ['us-east1'] }), p, NOW);
    expect(o.snapshot.unmanagedUsage.map((u) => [u.source, u.gpus])).toEqual([
      ['service/m (manual scaling)', 6],
      ['worker-pool/enc', 4],
    ]);
  });

  it('reads a utilization past 1 by a rounding alone as 1, so that the snapshot reads back', async () => {
    // The adapter passes a mean past 1 by a double's rounding as a ratio; a snapshot holds 0 to 1.
    const o = await observe(
      policy(),
      ports({
        services: [service('a')],
        series: [{ service: 'a', region: 'us-east1', points: points([3, 2]) }],
        utilization: [{ service: 'a', region: 'us-east1', points: points([3, 1 + 1e-12]) }],
      }),
      NOW,
    );
    expect(o.snapshot.services[0]?.usage?.utilization).toBe(1);
    expect(() => parseSnapshot(JSON.parse(JSON.stringify(o.snapshot)))).not.toThrow();
  });

  it('counts a split whose one revision sets no max at that pool’s unset max, and does not call the service unset', async () => {
    // Traffic split over two older revisions: one with its own max of 2, one without (Cloud Run
    // lets it run up to quota ÷ GPUs per instance, 8 ÷ 2 = 4). The service sets a max of its own
    // nowhere, yet its cap is those revisions' own, not the unset max of a service that sets none.
    const gpu = { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true };
    const split = service('split', {
      serviceMaxInstances: null,
      revisionMaxInstances: null,
      gpu,
      templateServes: false,
      servingRevisions: [
        { name: 'split-00001', inSplit: true },
        { name: 'split-00002', inSplit: true },
      ],
    });
    const p = ports({ services: [split], series: [], quota: () => 8 });
    p.run.getRevisionMax = (_p, _r, _s, revision) =>
      Promise.resolve({
        maxInstances: revision === 'split-00001' ? 2 : null,
        minInstances: null,
        gpu,
      });
    const o = await observe(policy({ regions: ['us-east1'] }), p, NOW);
    const [row] = o.snapshot.services;
    expect(row?.maxInstances).toBe(6);
    expect(asJson(row)).not.toHaveProperty('maxUnset');
    expect(row?.maxNote).toContain('split-00001 2 + split-00002 unset (4) = 6');
  });

  describe('whatever order the APIs list things in', () => {
    // Cloud Run lists services "sorted by creation time, descending"
    // (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/list), and
    // neither Monitoring's ListTimeSeries nor the regions' listing promises an order: a service
    // made again, or an answer in another order, must not change the snapshot or the plan.
    const warm = { serviceMinInstances: 1 };
    const fleet = [
      service('b-warm', warm),
      service('a-warm', warm),
      service('c', { region: 'us-west1' }),
      service('m2', { scalingMode: 'MANUAL', manualInstanceCount: 1 }),
      service('m1', { scalingMode: 'MANUAL', manualInstanceCount: 2 }),
    ];
    const series: MetricSeries[] = [
      { service: 'c', region: 'us-west1', points: points([30, 2], [25, 1]) },
      { service: 'b-warm', region: 'us-east1', points: points([30, 1], [28, 2]) },
      { service: 'a-warm', region: 'us-east1', points: points([30, 3]) },
    ];
    const orders = <T>(xs: readonly T[]): T[][] => [[...xs], [...xs].reverse()];

    it.each([
      ['with series', series],
      // No series at all while services keep min instances: Monitoring is behind, and the note
      // names one of those services.
      ['without a series', []],
    ])('gives the same snapshot and plan %s', async (_, all) => {
      const seen = [];
      for (const services of orders(fleet))
        for (const listed of orders(all)) {
          const o = await observe(policy(), ports({ services, series: listed }), NOW);
          const at = o.snapshot.takenAt;
          seen.push({ snapshot: o.snapshot, plan: plan(o.snapshot, policy(), at) });
        }
      for (const other of seen.slice(1)) expect(other).toEqual(seen[0]);
    });

    it('lists what it could not read in the same order, whichever read failed first', async () => {
      // Regions and projects are read at once: the order their failures come in is the order
      // Google answered in.
      const failing = (slow: string) => {
        const base = ports({ services: fleet, series });
        const late = (region: string) =>
          new Promise((r) => setTimeout(r, region === slow ? 20 : 0));
        return {
          ...base,
          run: {
            ...base.run,
            listWorkerPools: async (_: string, region: string) => {
              await late(region);
              throw new UnavailableError(`worker pools of ${region} timed out`);
            },
            listRunningExecutions: async (_: string, region: string) => {
              await late(region);
              throw new UnavailableError(`jobs of ${region} timed out`);
            },
          },
        };
      };
      const east = await observe(policy(), failing('us-east1'), NOW);
      const west = await observe(policy(), failing('us-west1'), NOW);
      expect(east.problems.map((p) => `${p.region} ${p.subject}`)).toEqual([
        'us-east1 worker-pools',
        'us-east1 jobs',
        'us-west1 worker-pools',
        'us-west1 jobs',
      ]);
      expect(west.problems).toEqual(east.problems);
    });
  });
});
