import { afterEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import { createMonitoringAdapter, MAX_SERIES_PER_CREATE } from '../../src/adapters/monitoring.js';
import { GOVERNOR_METRICS, METRIC_PREFIX } from '../../src/core/governor-metrics.js';
import { parsePolicyText } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { permissionDenied } from '../../src/emulator/rpc.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile } from '../../src/reconcile/reconcile.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import type { GovernorMetricPoint } from '../../src/core/governor-metrics.js';

/**
 * The governor's own metrics: the Monitoring adapter's writeGovernorMetrics through
 * @google-cloud/monitoring over the real wire protocol against the emulator, and reconcile
 * writing them once per run per project.
 */

const POLICY = `
version: 1
projects: [demo-gpu-project]
regions: [us-central1]
services:
  - match: { labels: { team: search } }
    priority: 10
  - match: {}
`;

let emulator: RunningEmulator | undefined;
let ports: GooglePorts | undefined;
afterEach(async () => {
  await ports?.close();
  await emulator?.stop();
  ports = undefined;
  emulator = undefined;
});

async function start(faultCreate = false): Promise<RunningEmulator> {
  emulator = await startEmulator({
    fleet: 'examples/demo-fleet.yaml',
    speed: 'manual',
    operationDelayMs: 0,
    ...(faultCreate
      ? {
          faults: ({ method }) =>
            method.endsWith('/CreateTimeSeries')
              ? permissionDenied('monitoring.timeSeries.create', 'projects/demo-gpu-project')
              : undefined,
        }
      : {}),
  });
  return emulator;
}

describe('writeGovernorMetrics (Monitoring adapter)', () => {
  it('writes every point as a GAUGE on the global resource, 200 series per CreateTimeSeries', async () => {
    const em = await start();
    const monitoring = createMonitoringAdapter({ emulatorHost: em.host });
    try {
      const points: GovernorMetricPoint[] = Array.from({ length: 250 }, (_, i) => ({
        metric: 'service/cap',
        labels: {
          region: 'us-central1',
          accelerator: 'nvidia-l4',
          zonal_redundancy: 'true',
          service: `s-${i}`,
        },
        valueType: 'INT64',
        value: i,
      }));
      points.push({
        metric: 'unit/duration',
        labels: { unit: 'project' },
        valueType: 'DOUBLE',
        value: 1.25,
      });
      const at = em.now().getTime();
      const write = monitoring.writeGovernorMetrics?.bind(monitoring);
      if (!write) throw new Error('the Monitoring adapter has no writeGovernorMetrics');
      await write(em.model.fleet.projects[0]?.id ?? '', at, points);
      const calls = em.calls().filter((c) => c.method.endsWith('/CreateTimeSeries'));
      expect(calls.map((c) => c.code)).toEqual(['OK', 'OK']);
      expect(MAX_SERIES_PER_CREATE).toBe(200);
      const caps = em.metricsWritten(`${METRIC_PREFIX}service/cap`);
      expect(caps).toHaveLength(250);
      expect(caps.find((s) => s.metric.labels['service'] === 's-7')).toMatchObject({
        resource: { type: 'global', labels: { project_id: 'demo-gpu-project' } },
        metricKind: 'GAUGE',
        valueType: 'INT64',
        points: [{ at: new Date(at).toISOString(), value: 7 }],
      });
      expect(em.metricsWritten(`${METRIC_PREFIX}unit/duration`)[0]?.points[0]?.value).toBe(1.25);
    } finally {
      await monitoring.close();
    }
  });
});

describe('writeGovernorMetrics: points Monitoring already holds', () => {
  /** A point of `service/cap` for service `name`. */
  const cap = (name: string, labels: Record<string, string> = {}): GovernorMetricPoint => ({
    metric: 'service/cap',
    labels: {
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonal_redundancy: 'true',
      service: name,
      ...labels,
    },
    valueType: 'INT64',
    value: 1,
  });

  async function writer() {
    const em = await start();
    const monitoring = createMonitoringAdapter({ emulatorHost: em.host });
    const write = monitoring.writeGovernorMetrics?.bind(monitoring);
    if (!write) throw new Error('the Monitoring adapter has no writeGovernorMetrics');
    return { em, monitoring, write, at: em.now().getTime() };
  }

  // Monitoring names each failure with its reason before the series' indices, as public
  // reports quote it (see src/emulator/custom-metrics.ts): the adapter reads each reason.
  it('a request whose one series already has its point is too soon, not a failure', async () => {
    const { monitoring, write, at } = await writer();
    try {
      await write('demo-gpu-project', at, [cap('a')]);
      // `a` again, after a new series: only timeSeries[1] is refused.
      await expect(write('demo-gpu-project', at, [cap('b'), cap('a')])).resolves.toBe('too-soon');
    } finally {
      await monitoring.close();
    }
  });

  it('a request with points too soon and points refused for another reason fails', async () => {
    const { em, monitoring, write, at } = await writer();
    try {
      await write('demo-gpu-project', at, [cap('a'), cap('b')]);
      // `a` and `b` are too soon; `c` and `d` carry a label key Monitoring refuses.
      const bad = { 'Not-A-Key': 'x' };
      await expect(
        write('demo-gpu-project', at, [cap('a'), cap('b'), cap('c', bad), cap('d', bad)]),
      ).rejects.toThrow(/not a valid label key/);
      expect(em.metricsWritten(`${METRIC_PREFIX}service/cap`)).toHaveLength(2);
    } finally {
      await monitoring.close();
    }
  });
});

describe('reconcile writes the run’s figures', () => {
  const policy = parsePolicyText(POLICY, 'policy');

  async function runOnce(em: RunningEmulator, runId: string, region?: string) {
    ports = ports ?? createGooglePorts({ emulatorHost: em.host });
    const log = memoryLogger();
    const report = await reconcile(
      region ? { ...policy, regions: [region] } : policy,
      {
        ports,
        store,
        sink: null,
        log,
        now: () => Promise.resolve(em.now().getTime()),
        sleep: async () => undefined,
      },
      { runId, deadlineMs: 120_000, ...(region ? { region } : {}) },
    );
    return { report, log };
  }
  let store = createMemoryStateStore();

  it('once per run per project: every metric, labelled by pool and service', async () => {
    store = createMemoryStateStore();
    const em = await start();
    const { report } = await runOnce(em, 'run-1');
    expect(report.outcome).toBe('ok');
    em.advance(5 * 60_000);
    await runOnce(em, 'run-2');
    expect(em.calls().filter((c) => c.method.endsWith('/CreateTimeSeries'))).toHaveLength(2);
    const types = new Set(em.metricsWritten().map((s) => s.metric.type));
    expect([...types].sort()).toEqual(GOVERNOR_METRICS.map((m) => `${METRIC_PREFIX}${m}`).sort());
    const quota = em
      .metricsWritten(`${METRIC_PREFIX}pool/quota`)
      .map((s) => [s.metric.labels['zonal_redundancy'], s.points.map((p) => p.value)])
      .sort();
    expect(quota).toEqual([
      ['false', [3, 3]],
      ['true', [10, 10]],
    ]);
    expect(em.metricsWritten(`${METRIC_PREFIX}pool/quota`)[0]?.metric.labels).toMatchObject({
      region: 'us-central1',
      accelerator: 'nvidia-l4',
    });
    // The caps the metrics give are those the emulator holds after the run's writes.
    const caps = em.metricsWritten(`${METRIC_PREFIX}pool/caps`);
    const zonal = caps.find((s) => s.metric.labels['zonal_redundancy'] === 'true');
    const pool = em.state().pools.find((p) => p.zonalRedundancy);
    expect(zonal?.points.at(-1)?.value).toBe(pool?.capsGpus);
    const refused = em.metricsWritten(`${METRIC_PREFIX}service/refused`);
    expect(refused.map((s) => s.metric.labels['service']).sort()).toEqual([
      'asr-emea',
      'asr-us',
      'batch-rerank',
      'llm-apac',
      'llm-chat',
      'llm-code',
    ]);
    const writes = em.metricsWritten(`${METRIC_PREFIX}unit/writes`);
    expect(writes.map((s) => s.metric.labels['outcome']).sort()).toEqual([
      'failed',
      'skipped',
      'written',
    ]);
    // A run of the whole project is the unit `project`.
    expect(writes.map((s) => s.metric.labels['unit'])).toEqual(['project', 'project', 'project']);
    expect(em.metricsWritten(`${METRIC_PREFIX}unit/duration`)).toMatchObject([
      { metric: { labels: { unit: 'project' } }, points: [{}, {}] },
    ]);
  });

  it('a regional unit writes its own unit series, beside a whole-project run at the same instant', async () => {
    store = createMemoryStateStore();
    const em = await start();
    await runOnce(em, 'run-whole');
    // Another unit of the same project, ending at the same instant (the emulator's clock stands).
    const { report, log } = await runOnce(em, 'run-regional', 'us-central1');
    expect(report.outcome).toBe('ok');
    expect(report.alerts.filter((a) => a.type === 'governor.degraded')).toEqual([]);
    const duration = em.metricsWritten(`${METRIC_PREFIX}unit/duration`);
    expect(duration.map((s) => [s.metric.labels['unit'], s.points.length]).sort()).toEqual([
      ['project', 1],
      ['us-central1', 1],
    ]);
    const writes = em.metricsWritten(`${METRIC_PREFIX}unit/writes`);
    expect(writes.filter((s) => s.metric.labels['unit'] === 'us-central1')).toHaveLength(3);
    // Its pool series are the whole run's (same labels, same instant): those alone were too soon.
    expect(em.metricsWritten(`${METRIC_PREFIX}pool/quota`)[0]?.points).toHaveLength(1);
    expect(log.lines.map((l) => l.message)).toContain(
      "demo-gpu-project: the governor's metrics already have points from a run less than 5 s ago; this run's were not needed",
    );
  });

  it('refuses a regional unit whose policy governs other regions, or whose region is no region', async () => {
    store = createMemoryStateStore();
    const em = await start();
    ports = createGooglePorts({ emulatorHost: em.host });
    const deps = {
      ports,
      store,
      sink: null,
      log: memoryLogger(),
      now: () => Promise.resolve(em.now().getTime()),
    };
    const cases: [Parameters<typeof reconcile>[0], string, RegExp][] = [
      [{ ...policy, regions: undefined }, 'us-central1', /regions: .*not every region/],
      [
        { ...policy, regions: ['us-central1', 'europe-west4'] },
        'us-central1',
        /not us-central1, europe-west4/,
      ],
      [{ ...policy, regions: ['europe-west4'] }, 'us-central1', /governs that region only/],
      [policy, 'us-central1/../x', /region: must be a Cloud Run region/],
      [policy, 'x'.repeat(5000), /region: must be a Cloud Run region/],
    ];
    for (const [p, region, why] of cases) {
      const run = reconcile(p, deps, { runId: 'r', deadlineMs: 60_000, region });
      await expect(run, region.slice(0, 20)).rejects.toThrow(why);
    }
    // Refused before anything: no call, no lease.
    expect(em.calls()).toEqual([]);
    expect(await store.readLease('demo-gpu-project')).toBeNull();
  });

  it('a second run at the same instant finds the points written: neither a warning nor an alert', async () => {
    store = createMemoryStateStore();
    const em = await start();
    await runOnce(em, 'run-1');
    const { report, log } = await runOnce(em, 'run-2');
    expect(report.outcome).toBe('ok');
    expect(report.alerts.filter((a) => a.type === 'governor.degraded')).toEqual([]);
    expect(log.lines.filter((l) => l.severity === 'WARNING')).toEqual([]);
    expect(log.lines.map((l) => l.message)).toContain(
      "demo-gpu-project: the governor's metrics already have points from a run less than 5 s ago; this run's were not needed",
    );
    // Monitoring refused them (not newer than the latest): one point per series, from run-1.
    const calls = em.calls().filter((c) => c.method.endsWith('/CreateTimeSeries'));
    expect(calls.map((c) => c.code)).toEqual(['OK', 'INVALID_ARGUMENT']);
    expect(em.metricsWritten(`${METRIC_PREFIX}unit/duration`)[0]?.points).toHaveLength(1);
  });

  it('a failed write is a warning and governor.degraded, never a failed run', async () => {
    store = createMemoryStateStore();
    const em = await start(true);
    const { report, log } = await runOnce(em, 'run-1');
    expect(report.outcome).toBe('ok');
    expect(log.lines.filter((l) => l.severity === 'WARNING').map((l) => l.message)).toContainEqual(
      expect.stringMatching(
        /^demo-gpu-project: the governor's metrics were not written: .*monitoring\.timeSeries\.create/,
      ),
    );
    expect(report.alerts.filter((a) => a.type === 'governor.degraded')).toMatchObject([
      { status: 'firing', details: { reason: 'metrics' } },
    ]);
  });
});
