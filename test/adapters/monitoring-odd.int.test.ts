import { status } from '@grpc/grpc-js';
import { MetricServiceClient } from '@google-cloud/monitoring';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  createMonitoringAdapter,
  GPU_UTILIZATION_METRIC,
  INSTANCE_COUNT_METRIC,
  REQUEST_COUNT_METRIC,
} from '../../src/adapters/monitoring.js';
import type { MonitoringAdapter } from '../../src/adapters/monitoring.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { InputError, UpstreamError } from '../../src/core/errors.js';
import { observe } from '../../src/observe/observe.js';
import { plan } from '../../src/core/planner.js';
import type { MetricSeries } from '../../src/ports/index.js';
import { clientsFor, closeClients, PROJECT, type Clients } from '../emulator/helpers.js';
import { governAll, observedService } from '../support/fixtures.js';

/**
 * What the adapter makes of answers Monitoring could put on the wire but should not, or odd ones
 * it may: the emulator sends each raw answer as given (its `answer` seam), through the
 * real client library. Refused: the whole read fails with an UpstreamError naming the point, so
 * the project's usage is unknown and every cap there is held (observe, usage-unknown).
 */

const MINUTE = 60_000;
const US = 'us-central1';
const WEB = { project_id: PROJECT, service_name: 'web', location: US };

type Raw = Record<string, unknown>;
let pages: Raw[] | undefined;
let emulator: RunningEmulator;
let monitoring: MonitoringAdapter;
let clients: Clients;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      projects: [
        {
          id: PROJECT,
          pools: [{ region: US, quota: 10 }],
          services: [{ name: 'web', region: US, gpu: {}, maxInstances: 4, demand: 1 }],
        },
      ],
    },
    speed: 'manual',
    // Page i of the answer for page token "i" ("" for the first).
    answer: (method, request) => {
      if (!pages || method !== 'ListTimeSeries') return undefined;
      const token = typeof request['page_token'] === 'string' ? request['page_token'] : '';
      return pages[token === '' ? 0 : Number(token)];
    },
  });
  monitoring = createMonitoringAdapter({
    emulatorHost: emulator.host,
    retry: { maxAttempts: 1, attemptTimeoutMs: 10_000 },
  });
  clients = clientsFor(emulator);
});

afterEach(() => {
  pages = undefined;
});

afterAll(async () => {
  await monitoring?.close();
  if (clients) await closeClients(clients);
  await emulator?.stop();
});

const ts = (ms: number) => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });

interface RawPoint {
  at: number;
  value: Raw;
  /** The interval's start: the end itself unless given (a GAUGE point); null for none. */
  start?: number | null;
}

function series(
  points: RawPoint[],
  opts: {
    labels?: Record<string, string>;
    metricLabels?: Record<string, string>;
    kind?: string;
    valueType?: string;
    type?: string;
  } = {},
): Raw {
  return {
    metric: { type: opts.type ?? INSTANCE_COUNT_METRIC, labels: opts.metricLabels ?? {} },
    resource: { type: 'cloud_run_revision', labels: opts.labels ?? WEB },
    metric_kind: opts.kind ?? 'GAUGE',
    value_type: opts.valueType ?? 'INT64',
    // Newest first, as Monitoring lists them.
    points: points.map((p) => ({
      interval: {
        end_time: ts(p.at),
        ...(p.start === null ? {} : { start_time: ts(p.start ?? p.at) }),
      },
      value: p.value,
    })),
  };
}

/** Monitoring answers these pages, one after the other, each a list of series. */
function answer(...pageSeries: Raw[][]): void {
  pages = pageSeries.map((time_series, i) => ({
    time_series,
    next_page_token: i + 1 < pageSeries.length ? String(i + 1) : '',
    execution_errors: [],
    unit: '',
  }));
}

const int = (n: number | string) => ({ int64_value: String(n) });
const double = (n: number) => ({ double_value: n });

/** The last ten minutes of virtual time. */
function lastMinutes() {
  const now = emulator.now().getTime();
  return { now, window: { startMs: now - 10 * MINUTE, endMs: now } };
}

async function counts(): Promise<MetricSeries[]> {
  return monitoring.instanceCounts(PROJECT, lastMinutes().window);
}

async function refusal(read: () => Promise<unknown>): Promise<UpstreamError> {
  const error = await read().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

describe('points outside the interval asked', () => {
  it('refuses a point stamped after the end of the window, naming it: the answer holds (start, end]', async () => {
    const { now } = lastMinutes();
    // The reader's clock behind by five minutes, or a stamp years ahead: neither is in the answer,
    // nor is one half a second past the end (a time is read to its nanos, not to the second).
    for (const at of [now + 5 * MINUTE, now + 1e12, now + 500]) {
      answer([
        series([
          { at, value: int(3) },
          { at: now, value: int(1) },
        ]),
      ]);
      const e = await refusal(counts);
      expect(e.message).toContain(
        `service web in ${US} has a point at ${new Date(at).toISOString()}`,
      );
      expect(e.message).toContain('outside the interval asked');
    }
  });

  it('refuses a point at or before the start of the window', async () => {
    const { now } = lastMinutes();
    for (const at of [now - 60 * MINUTE, now - 10 * MINUTE]) {
      answer([
        series([
          { at: now, value: int(1) },
          { at, value: int(9) },
        ]),
      ]);
      expect((await refusal(counts)).message).toContain('outside the interval asked');
    }
    // The minute just after the start is in it.
    answer([series([{ at: now - 9 * MINUTE, value: int(2) }])]);
    expect((await counts())[0]?.points).toEqual([{ at: now - 9 * MINUTE, value: 2 }]);
  });
});

describe('the order and the repetition of points', () => {
  it('reads points in any order oldest first', async () => {
    const { now } = lastMinutes();
    answer([
      series([
        { at: now - 2 * MINUTE, value: int(1) },
        { at: now, value: int(2) },
        { at: now - MINUTE, value: int(3) },
      ]),
    ]);
    expect((await counts())[0]?.points).toEqual([
      { at: now - 2 * MINUTE, value: 1 },
      { at: now - MINUTE, value: 3 },
      { at: now, value: 2 },
    ]);
  });

  it('keeps a point repeated across pages once, and refuses two values at one time', async () => {
    const { now } = lastMinutes();
    answer(
      [
        series([
          { at: now, value: int(1) },
          { at: now - MINUTE, value: int(2) },
        ]),
      ],
      [
        series([
          { at: now - MINUTE, value: int(2) },
          { at: now - 2 * MINUTE, value: int(3) },
        ]),
      ],
    );
    expect((await counts())[0]?.points.map((p) => p.value)).toEqual([3, 2, 1]);
    answer([
      series([
        { at: now, value: int(1) },
        { at: now, value: int(2) },
      ]),
    ]);
    expect((await refusal(counts)).message).toContain('has two values at');
    answer([series([{ at: now, value: int(1) }])], [series([{ at: now, value: int(4) }])]);
    expect((await refusal(counts)).message).toContain('(1 and 4)');
  });
});

describe('values', () => {
  it('refuses a negative count, a non-finite number, and a value that is not a number', async () => {
    const { now } = lastMinutes();
    const cases: [Raw, string][] = [
      [int(-4), 'with a negative count (-4)'],
      [double(-0.5), 'with a negative count (-0.5)'],
      [double(NaN), 'whose value is not a finite number (NaN)'],
      [double(Infinity), 'whose value is not a finite number (Infinity)'],
      [double(-Infinity), 'whose value is not a finite number (-Infinity)'],
      [{ distribution_value: { count: '3', mean: 2 } }, 'without a numeric value'],
      [{ bool_value: true }, 'without a numeric value'],
      [{ string_value: '7' }, 'without a numeric value'],
      [{}, 'without a numeric value'],
    ];
    for (const [value, words] of cases) {
      answer([series([{ at: now, value }])]);
      expect((await refusal(counts)).message).toContain(
        `has a point at ${new Date(now).toISOString()} ${words}`,
      );
    }
  });

  it('reads an int64 or a double as its number, whichever the series declares', async () => {
    const { now } = lastMinutes();
    answer([
      series([
        { at: now, value: double(2) },
        { at: now - MINUTE, value: double(0) },
      ]),
      series([{ at: now, value: int(3) }], {
        valueType: 'DOUBLE',
        labels: { ...WEB, service_name: 'api' },
      }),
    ]);
    const read = await counts();
    expect(read.map((s) => s.points.map((p) => p.value))).toEqual([[0, 2], [3]]);
  });

  it('reads an int64 beyond 2^53 as the nearest number, for observation to refuse', async () => {
    const { now } = lastMinutes();
    answer([series([{ at: now, value: int('9007199254740993') }])]);
    const [web] = await counts();
    expect(web?.points[0]?.value).toBe(2 ** 53);
  });

  it('refuses a GPU utilization that is not a finite distribution of ratios, and skips an empty one', async () => {
    const { now } = lastMinutes();
    const dist = (count: string, mean: number) => ({ distribution_value: { count, mean } });
    const gpu = (value: Raw, at = now) =>
      series([{ at, value, start: at - MINUTE }], {
        type: GPU_UTILIZATION_METRIC,
        kind: 'DELTA',
        valueType: 'DISTRIBUTION',
      });
    const read = () => monitoring.gpuUtilization(PROJECT, lastMinutes().window);
    answer([gpu(dist('2', NaN))]);
    expect((await refusal(read)).message).toContain('whose distribution is not finite numbers');
    for (const mean of [-0.1, 1.001, 1.5, 37]) {
      answer([gpu(dist('2', mean))]);
      expect((await refusal(read)).message).toContain(`mean utilization ${mean} is not a ratio`);
    }
    answer([gpu(double(0.5))]);
    expect((await refusal(read)).message).toContain('without a distribution');
    answer([gpu(dist('0', 0))]);
    expect(await read()).toEqual([{ service: 'web', region: US, points: [] }]);
    answer([gpu(dist('2', 0.25))]);
    expect((await read())[0]?.points).toEqual([{ at: now, value: 0.25 }]);
    // Its ends are ratios, and a mean past 1 by a double's rounding alone is one too.
    for (const mean of [0, 1, 1 + 1e-12]) {
      answer([gpu(dist('2', mean))]);
      expect((await read())[0]?.points).toEqual([{ at: now, value: mean }]);
    }
  });
});

describe('intervals', () => {
  it('refuses a point whose interval ends before it starts, and a DELTA point without a start', async () => {
    const { now } = lastMinutes();
    answer([series([{ at: now, value: int(1), start: now + MINUTE }])]);
    expect((await refusal(counts)).message).toContain('whose interval starts after it ends');
    for (const start of [null, now]) {
      answer([series([{ at: now, value: int(1), start }], { kind: 'DELTA' })]);
      expect((await refusal(counts)).message).toContain(
        'without the interval a DELTA point covers',
      );
    }
    // A GAUGE point without a start is an instant; a DELTA point covers its minute.
    answer([
      series([{ at: now, value: int(1), start: null }]),
      series([{ at: now, value: int(2), start: now - MINUTE }], {
        kind: 'DELTA',
        labels: { ...WEB, service_name: 'api' },
      }),
    ]);
    expect((await counts()).map((s) => s.points)).toEqual([
      [{ at: now, value: 1 }],
      [{ at: now, value: 2 }],
    ]);
  });

  it('is still a read the emulator checks as Monitoring does, whatever the seam answers', async () => {
    const { now } = lastMinutes();
    answer([series([{ at: now, value: int(1) }])]);
    const seconds = Math.floor(now / 1000);
    const refused = await clients.metrics
      .listTimeSeries({
        name: `projects/${PROJECT}`,
        filter: `metric.type = "${INSTANCE_COUNT_METRIC}"`,
        interval: { startTime: { seconds: seconds + 60 }, endTime: { seconds } },
      })
      .then(
        () => undefined,
        (e: unknown) => e as { code: number },
      );
    expect(refused?.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('the window asked', () => {
  it('refuses a window before 1970 saying so, not that its start is after its end', async () => {
    // An emulator whose fleet starts in year 0 asked for every window before the epoch; the
    // refusal said "must be finite times with startMs < endMs" of a window whose start was before
    // its end.
    const startMs = Date.parse('1969-12-31T23:00:00Z');
    const error: unknown = await monitoring
      .instanceCounts(PROJECT, { startMs, endMs: startMs + MINUTE })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect(String(error)).toContain('before 1970');
    expect(String(error)).not.toContain('startMs < endMs');
  });
});

describe('labels', () => {
  it('refuses a series without its service_name or location label', async () => {
    const { now } = lastMinutes();
    const cases: Record<string, string>[] = [
      { location: US },
      { service_name: 'web' },
      { service_name: '', location: US },
    ];
    for (const labels of cases) {
      answer([series([{ at: now, value: int(1) }], { labels })]);
      expect((await refusal(counts)).message).toContain('lacks its service_name or location label');
    }
    answer([
      series([{ at: lastMinutes().now, value: int(1) }], {
        labels: { service_name: 'web', location: US },
      }),
    ]);
    expect((await refusal(counts)).message).toContain('lacks its project_id label');
  });

  it('passes on series of services and regions it does not know, for observation to leave out', async () => {
    const { now } = lastMinutes();
    const names = ['Not_A/Cloud Run name', 'ghost', 'web'];
    answer(
      names.map((name, i) =>
        series([{ at: now, value: int(i + 1) }], {
          labels: { ...WEB, service_name: name, location: i === 1 ? 'mars-north1' : US },
        }),
      ),
    );
    expect((await counts()).map((s) => `${s.service}@${s.region}`)).toEqual([
      `Not_A/Cloud Run name@${US}`,
      'ghost@mars-north1',
      `web@${US}`,
    ]);
  });

  it("leaves out another project's series of a metrics scope: its namesake's instances are not this one's", async () => {
    const { now } = lastMinutes();
    // The project read is the scoping project of a metrics scope that also holds "staging": its
    // service of the same name and region comes back in the same answer, told apart only by the
    // project_id label (https://cloud.google.com/monitoring/settings).
    answer([
      series([{ at: now, value: int(1) }]),
      series([{ at: now, value: int(7) }], { labels: { ...WEB, project_id: 'staging' } }),
    ]);
    expect(await counts()).toEqual([
      { service: 'web', region: US, points: [{ at: now, value: 1 }] },
    ]);
  });

  it('reads a project named by its number while the answer is of one project, and refuses one of several', async () => {
    const { now, window } = lastMinutes();
    // The emulator knows projects by id only: Monitoring's answer is given to the client here.
    const seriesOf = (owner: string, n: number) => ({
      metric: { type: INSTANCE_COUNT_METRIC, labels: {} },
      resource: { type: 'cloud_run_revision', labels: { ...WEB, project_id: owner } },
      metricKind: 'GAUGE',
      valueType: 'INT64',
      points: [{ interval: { endTime: ts(now) }, value: { int64Value: String(n) } }],
    });
    const list = vi.spyOn(MetricServiceClient.prototype, 'listTimeSeries');
    try {
      const answerWith = (...s: unknown[]) =>
        list.mockImplementation((() =>
          Promise.resolve([s, null, { nextPageToken: '', executionErrors: [] }])) as never);
      answerWith(seriesOf('prod', 2));
      expect(await monitoring.instanceCounts('123456789012', window)).toEqual([
        { service: 'web', region: US, points: [{ at: now, value: 2 }] },
      ]);
      answerWith(seriesOf('prod', 2), seriesOf('staging', 7));
      expect(
        (await refusal(() => monitoring.instanceCounts('123456789012', window))).message,
      ).toContain('series of several projects (prod, staging)');
    } finally {
      list.mockRestore();
    }
  });

  it('reads thousands of series of services that do not exist, page by page', async () => {
    const { now } = lastMinutes();
    const ghosts = (page: number) =>
      Array.from({ length: 2_500 }, (_, i) =>
        series(
          Array.from({ length: 10 }, (_, k) => ({ at: now - k * MINUTE, value: int(1) })),
          { labels: { ...WEB, service_name: `ghost-${page}-${i}` } },
        ),
      );
    answer(ghosts(0), ghosts(1), [...ghosts(2), series([{ at: now, value: int(2) }])]);
    const read = await counts();
    expect(read).toHaveLength(7_501);
    expect(read.find((s) => s.service === 'web')?.points).toEqual([{ at: now, value: 2 }]);
  });
});

describe('an answer that does not end as Monitoring ends one', () => {
  it('fails the read on an execution error on any page, naming it: a partial answer must not pass for a whole one', async () => {
    const { now } = lastMinutes();
    const page = (ago: number, next: string, errors: Raw[]) => ({
      time_series: [series([{ at: now - ago * MINUTE, value: int(1) }])],
      next_page_token: next,
      execution_errors: errors,
      unit: '',
    });
    pages = [
      page(2, '1', []),
      page(1, '', [{ code: status.UNAVAILABLE, message: 'some data could not be read' }]),
    ];
    expect((await refusal(counts)).message).toContain(
      'the answer is incomplete (1 execution error(s): UNAVAILABLE: some data could not be read)',
    );
  });

  it('fails the read when a page token comes back twice, rather than reading the same pages forever', async () => {
    const { now } = lastMinutes();
    const page = {
      time_series: [series([{ at: now, value: int(1) }])],
      next_page_token: '1',
      execution_errors: [],
      unit: '',
    };
    pages = [page, page];
    expect((await refusal(counts)).message).toContain('the page token "1" came back twice');
  });

  it('fails the read when empty pages keep offering another, rather than reading for ever', async () => {
    // Fresh tokens on empty pages: the 100th empty page in a row that offers another ends the
    // read, as every other listing ends it (paging.ts). This answer would end only at page 1000.
    let asked = 0;
    pages = new Proxy([] as Raw[], {
      get: (target, key) => {
        if (typeof key !== 'string' || !/^\d+$/.test(key)) return Reflect.get(target, key);
        asked++;
        const next = Number(key) + 1;
        return { time_series: [], next_page_token: next < 1000 ? String(next) : '', unit: '' };
      },
    });
    expect((await refusal(counts)).message).toContain(
      'the listing did not end (100 pages in a row held nothing, and another was offered)',
    );
    expect(asked).toBe(100);
  });
});

describe('requests served', () => {
  it("adds up a service's response codes minute by minute, across pages, and leaves its 429s out", async () => {
    const { now, window } = lastMinutes();
    // request_count is grouped by response_code as well: one series per code, each a DELTA.
    const requests = (code: string, ago: number, n: number) =>
      series([{ at: now - ago * MINUTE, value: int(n), start: now - (ago + 1) * MINUTE }], {
        type: REQUEST_COUNT_METRIC,
        kind: 'DELTA',
        metricLabels: { response_code: code },
      });
    answer(
      [requests('200', 2, 30), requests('429', 2, 70)],
      [requests('200', 1, 40), requests('500', 1, 5), requests('429', 1, 80)],
    );
    expect(await monitoring.servedRequests(PROJECT, window)).toEqual([
      {
        service: 'web',
        region: US,
        points: [
          { at: now - 2 * MINUTE, value: 30 },
          { at: now - MINUTE, value: 45 },
        ],
      },
    ]);
  });
});

describe('observation of an answer refused', () => {
  it('holds the cap of every service of the project, saying why', async () => {
    const { now } = lastMinutes();
    // Its cap is 4, its usage would read as 40: a stamp in the future must not be planned on.
    const web = observedService('web', { project: PROJECT, region: US, serviceMaxInstances: 4 });
    answer([
      series([
        { at: now + 3 * MINUTE, value: int(40) },
        { at: now, value: int(40) },
      ]),
    ]);
    const policy = governAll({ projects: [PROJECT], regions: [US] });
    const o = await observe(
      policy,
      {
        run: {
          listRegions: () => Promise.resolve([US]),
          listServices: () => Promise.resolve([web]),
          getService: () => Promise.reject(new Error('not read')),
          listWorkerPools: () => Promise.resolve([]),
          listRunningExecutions: () => Promise.resolve([]),
          updateMaxInstances: () => Promise.reject(new Error('observation never writes')),
        },
        monitoring,
        quotas: { gpuQuota: () => Promise.resolve(10) },
      },
      now,
    );
    const [row] = o.snapshot.services;
    expect(row?.usage).toBeNull();
    expect(row?.usageNote).toContain('outside the interval asked');
    expect(o.problems.map((p) => p.subject)).toContain('instance-counts');
    const decided = plan(o.snapshot, policy, o.snapshot.takenAt).services.find(
      (s) => s.name === 'web',
    );
    expect(decided?.to).toBe(4);
  });
});
