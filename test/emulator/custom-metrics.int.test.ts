import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { testFleet } from '../support/fixtures.js';
import { clientsFor, closeClients, codeOf, PROJECT, type Clients } from './helpers.js';

/**
 * CreateTimeSeries for custom metrics through @google-cloud/monitoring: the emulator accepts what
 * Google documents as valid and refuses what Google refuses (see src/emulator/custom-metrics.ts
 * for the sources), and records what it accepted.
 */

const TYPE = 'custom.googleapis.com/test/figure';
const seconds = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

describe('Cloud Monitoring CreateTimeSeries (custom metrics)', () => {
  let emulator: RunningEmulator;
  let clients: Clients;
  let now: number;

  beforeAll(async () => {
    emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
    clients = clientsFor(emulator);
    now = emulator.now().getTime();
  });
  afterAll(async () => {
    await closeClients(clients);
    await emulator.stop();
  });

  const series = (
    over: {
      type?: string;
      labels?: Record<string, string>;
      at?: number;
      value?: Record<string, unknown>;
      resource?: { type: string; labels: Record<string, string> };
      points?: number;
      metricKind?: string;
      startAt?: number;
    } = {},
  ) => ({
    metric: { type: over.type ?? TYPE, labels: over.labels ?? { pool: 'a' } },
    resource: over.resource ?? { type: 'global', labels: { project_id: PROJECT } },
    ...(over.metricKind ? { metricKind: over.metricKind } : {}),
    points: Array.from({ length: over.points ?? 1 }, () => ({
      interval: {
        endTime: seconds(over.at ?? now),
        ...(over.startAt !== undefined ? { startTime: seconds(over.startAt) } : {}),
      },
      value: over.value ?? { int64Value: 7 },
    })),
  });
  const create = (timeSeries: unknown[], project = PROJECT) =>
    clients.metrics.createTimeSeries({
      name: `projects/${project}`,
      timeSeries: timeSeries as never,
    });

  it('records a point, auto-creating a GAUGE descriptor from it', async () => {
    await create([series({ labels: { pool: 'first' } })]);
    const written = emulator
      .metricsWritten(TYPE)
      .filter((s) => s.metric.labels['pool'] === 'first');
    expect(written).toEqual([
      {
        project: PROJECT,
        metric: { type: TYPE, labels: { pool: 'first' } },
        resource: { type: 'global', labels: { project_id: PROJECT } },
        metricKind: 'GAUGE',
        valueType: 'INT64',
        points: [{ at: new Date(now).toISOString(), startAt: null, value: 7 }],
      },
    ]);
  });

  it('takes 200 series in one request and refuses 201', async () => {
    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => series({ labels: { pool: `many-${i}` } }));
    await create(many(200));
    const r = await codeOf(create(many(201)));
    expect(r.code).toBe(status.INVALID_ARGUMENT);
    expect(r.message).toContain('the maximum is 200');
  });

  it('refuses two points of one series in one request, and a point not newer than the last', async () => {
    const twice = await codeOf(
      create([series({ labels: { pool: 'dup' } }), series({ labels: { pool: 'dup' } })]),
    );
    expect(twice.code).toBe(status.INVALID_ARGUMENT);
    expect(twice.message).toContain('Only one point can be written per TimeSeries per request');
    const points = await codeOf(create([series({ labels: { pool: 'two' }, points: 2 })]));
    expect(points.message).toContain('exactly one point');
    await create([series({ labels: { pool: 'order' }, at: now })]);
    const older = await codeOf(create([series({ labels: { pool: 'order' }, at: now - 60_000 })]));
    expect(older.message).toContain('Points must be written in order');
  });

  it('refuses a point within 5 s of the last one of its series, and takes one 5 s later', async () => {
    await create([series({ labels: { pool: 'rate' }, at: now - 10_000 })]);
    const soon = await codeOf(create([series({ labels: { pool: 'rate' }, at: now - 7_000 })]));
    expect(soon.code).toBe(status.INVALID_ARGUMENT);
    expect(soon.message).toContain('one point each 5 seconds');
    await create([series({ labels: { pool: 'rate' }, at: now - 5_000 })]);
  });

  it('writes the good series of a request and names the bad ones', async () => {
    const r = await codeOf(
      create([
        series({ labels: { pool: 'good' } }),
        series({ type: 'run.googleapis.com/container/instance_count', labels: {} }),
      ]),
    );
    expect(r.code).toBe(status.INVALID_ARGUMENT);
    // The reason first, then the series it names (as Google lays its answer out).
    expect(r.message).toMatch(
      /metric\.type .* is not a user-defined metric.*: global\{.*\} timeSeries\[1\]: /,
    );
    expect(r.message).toContain('1 of 2 written');
    expect(emulator.metricsWritten(TYPE).some((s) => s.metric.labels['pool'] === 'good')).toBe(
      true,
    );
  });

  it("keeps a metric's value type and kind", async () => {
    const type = 'custom.googleapis.com/test/typed';
    await create([series({ type, value: { doubleValue: 1.5 } })]);
    const r = await codeOf(create([series({ type, at: now + 60_000, value: { int64Value: 2 } })]));
    expect(r.message).toContain(`Value type for metric ${type} must be DOUBLE, but is INT64`);
    const delta = await codeOf(
      create([series({ type: 'custom.googleapis.com/test/delta', metricKind: 'DELTA' })]),
    );
    expect(delta.message).toContain('must be GAUGE or CUMULATIVE');
    const gauge = await codeOf(
      create([series({ type: 'custom.googleapis.com/test/g', startAt: now - 60_000 })]),
    );
    expect(gauge.message).toContain('start time equal to its end time');
  });

  it('refuses times too old or too far ahead, bad labels and resources, and other projects', async () => {
    const old = await codeOf(
      create([series({ labels: { pool: 'old' }, at: now - 26 * 3_600_000 })]),
    );
    expect(old.message).toContain('25 hours in the past');
    const ahead = await codeOf(
      create([series({ labels: { pool: 'ahead' }, at: now + 6 * 60_000 })]),
    );
    expect(ahead.message).toContain('five minutes in the future');
    const key = await codeOf(create([series({ labels: { 'Bad-Key': 'x' } })]));
    expect(key.message).toContain('"Bad-Key" is not a valid label key');
    const resource = await codeOf(
      create([
        series({ resource: { type: 'cloud_run_revision', labels: { project_id: PROJECT } } }),
      ]),
    );
    expect(resource.message).toContain('cannot hold user-defined metrics');
    const task = await codeOf(
      create([series({ resource: { type: 'generic_task', labels: { project_id: PROJECT } } })]),
    );
    expect(task.message).toContain('missing location, namespace, job, task_id');
    const other = await codeOf(create([series()], 'someone-else'));
    expect(other.code).toBe(status.PERMISSION_DENIED);
    expect(other.message).toContain('monitoring.timeSeries.create');
  });

  it('keeps the labels of the write that created a descriptor: none added, none left out, none empty', async () => {
    const type = 'custom.googleapis.com/test/labelled';
    await create([series({ type, labels: { unit: 'project', outcome: 'written' } })]);
    // Another series of the same metric, with every label and other values: written.
    await create([series({ type, labels: { unit: 'us-central1', outcome: 'written' } })]);
    expect(emulator.metricsWritten(type).map((s) => s.metric.labels['unit'])).toEqual([
      'project',
      'us-central1',
    ]);
    // A label the descriptor lacks: refused, as is a series without one of the descriptor's.
    const added = await codeOf(
      create([series({ type, labels: { unit: 'project', outcome: 'failed', extra: 'x' } })]),
    );
    expect(added.code).toBe(status.INVALID_ARGUMENT);
    expect(added.message).toContain('not in its descriptor extra');
    const left = await codeOf(create([series({ type, labels: { outcome: 'failed' } })]));
    expect(left.code).toBe(status.INVALID_ARGUMENT);
    expect(left.message).toContain('missing unit');
    // An empty value, on a new metric or an existing one: refused, and no descriptor is made.
    const empty = await codeOf(
      create([series({ type: 'custom.googleapis.com/test/empty', labels: { region: '' } })]),
    );
    expect(empty.message).toContain('metric label region has an empty value');
    expect(emulator.metricsWritten('custom.googleapis.com/test/empty')).toEqual([]);
    // Nothing refused was written; what was stays as it was.
    expect(emulator.metricsWritten(type)).toHaveLength(2);
  });

  it('lists what was written on the admin endpoint, GET /metrics-written', async () => {
    const admin = emulator.env['GOVERNOR_EMULATOR_ADMIN'];
    const res = await fetch(`${admin}/metrics-written?type=${encodeURIComponent(TYPE)}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { metric: { type: string } }[];
    expect(body.length).toBeGreaterThan(200);
    expect(body.every((s) => s.metric.type === TYPE)).toBe(true);
    // Within the bound (custom-metrics.ts, MAX_KEPT_POINTS): nothing dropped, and it says so.
    expect(res.headers.get('x-emulator-points-dropped')).toBe('0');
  });
});
