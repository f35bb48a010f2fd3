import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import { RecordingSink } from '../../src/adapters/memory/alert-sink.js';
import { RpcError, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile, type RunReport } from '../../src/reconcile/reconcile.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { summary } from '../../src/cli/apply-command.js';
import type { StateStore } from '../../src/ports/index.js';
import { clockStillUntilWrites, reconcileReport } from '../support/reconcile-run.js';

/**
 * The act step against another writer, through the emulator and Google's clients: the pool is
 * read just before the increases, a raise that the read shows no room for is not made (and is
 * counted), and a raise another writer's change takes over the quota inside the one round trip
 * Cloud Run leaves open is lowered back in the same run. The first test is the race that once took a pool to 17 GPUs on a
 * quota of 12.
 */

const PROJECT = 'race-project';
const REGION = 'us-central1';

// Quota 12; four governed services at max 1 that each want 4; one unmanaged service at max 1.
const fleet = (extra: { annotations?: Record<string, string> } = {}) => ({
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 12 }],
      services: [
        ...['a', 'b', 'c', 'd'].map((n) => ({
          name: `svc-${n}`,
          region: REGION,
          gpu: {},
          maxInstances: 1,
          demand: 4,
          ...(n === 'a' && extra.annotations ? { annotations: extra.annotations } : {}),
        })),
        { name: 'ext-render', region: REGION, gpu: {}, maxInstances: 1, demand: 0 },
      ],
    },
  ],
});

const policy: Policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 1, max: 4 },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 6000 },
  alerts: { topic: `projects/${PROJECT}/topics/alerts`, renotifyAfter: '1h' },
});

let emulator: RunningEmulator;
let ports: GooglePorts;
let hook: ((method: string, request: unknown) => RpcError | undefined) | null;
const calls: Record<string, number> = {};

async function start(
  extra: Parameters<typeof fleet>[0] = {},
  operationDelayMs = 20,
): Promise<void> {
  emulator = await startEmulator({
    fleet: fleet(extra),
    speed: 'manual',
    operationDelayMs,
    invariants: { unmanaged: [{ name: 'ext-render' }] },
    faults: ({ method, request }) => {
      const name = method.split('/').pop() ?? method;
      calls[name] = (calls[name] ?? 0) + 1;
      return hook?.(name, request) ?? undefined;
    },
  });
  ports = createGooglePorts({ emulatorHost: emulator.host });
}

beforeEach(() => {
  hook = null;
  for (const k of Object.keys(calls)) delete calls[k];
});

afterEach(async () => {
  await ports.close();
  await emulator.stop();
});

async function run(
  sink: RecordingSink | null = null,
  store: StateStore = createMemoryStateStore(),
): Promise<RunReport> {
  return reconcileReport(
    policy,
    {
      ports,
      store,
      sink,
      clock: () => emulator.now().getTime(),
    },
    { runId: `race-${Math.random().toString(16).slice(2)}`, deadlineMs: 30_000, writerId: 'me' },
  );
}

/** Caps of every service in the pool, in GPUs. */
function poolCaps(): number {
  return emulator.state().pools.reduce((a, p) => a + p.capsGpus, 0);
}

/** The other writer: raises ext-render's max until the pool's caps reach the quota. */
function fillThePool(): void {
  const ext = emulator.state().services.find((s) => s.name === 'ext-render');
  const room = 12 - poolCaps();
  if (ext && room > 0)
    emulator.edit({ service: 'ext-render', maxInstances: ext.maxInstances + room });
}

describe('act: another writer between the governor reads and its writes', () => {
  it('finding 1: another writer fills the pool right after the first raise: the raises end within quota', async () => {
    await start();
    // Right after the governor's first raise is applied, before the next write is handled,
    // another writer legally raises ext-render until the pool is full.
    let writes = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 2) fillThePool();
      return undefined;
    };
    const report = await run();
    const raised = report.writes.filter((w) => w.planned > w.from);
    expect(raised.length).toBeGreaterThanOrEqual(3);
    // The raises this run made do not leave the pool over its quota: either they were not made
    // (no room on a read just before them) or, made inside Cloud Run's window, lowered back.
    expect(poolCaps()).toBeLessThanOrEqual(12);
    emulator.judgeRaces();
    const { violations, races } = emulator.violations();
    expect(violations).toEqual([]);
    const lowered = report.writes.filter((w) => w.cause === 'compensated');
    expect(lowered.length).toBeGreaterThan(0);
    expect(lowered.length).toBeLessThanOrEqual(races.length);
    expect(summary(report)).toContain(`${lowered.length} raise(s) lowered back`);
  });

  it('another writer fills the pool and deploys the raised services: what cannot be lowered back fires pool.over-budget in this run', async () => {
    await start();
    // Right after the last raise, another writer fills the pool, and before the read that
    // verifies it, every service this run raised starts a deployment: hands off (reconciling),
    // so none of the raises can be lowered back.
    let writes = 0;
    let deployed = false;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 4) fillThePool();
      if (name === 'ListServices' && writes >= 4 && !deployed) {
        deployed = true;
        for (const s of ['svc-a', 'svc-b', 'svc-c', 'svc-d'])
          emulator.deploy({ project: PROJECT, region: REGION, service: s, seconds: 600 });
      }
      return undefined;
    };
    const sink = new RecordingSink();
    const store = createMemoryStateStore();
    const report = await run(sink, store);
    expect(report.writes.filter((w) => w.cause === 'compensated')).toEqual([]);
    expect(poolCaps()).toBeGreaterThan(12);
    const over = sink.delivered.filter(
      (a: Alert) => a.type === 'pool.over-budget' && a.status === 'firing',
    );
    expect(over).toHaveLength(1);
    expect(over[0]?.details['source']).toBe('verify');
    expect(over[0]?.summary).toContain("just after this run's raises");
    // The next run plans from the pool as it is: the same condition, not notified twice.
    emulator.advance(60_000);
    const next = new RecordingSink();
    await run(next, store);
    expect(next.delivered.filter((a: Alert) => a.type === 'pool.over-budget')).toEqual([]);
  });

  it('the read after the raises refused for the minute (RESOURCE_EXHAUSTED): the run says the pool is unverified, and the next run judges it again', async () => {
    await start();
    // Right after the last raise another writer fills the pool, and Cloud Run refuses the read
    // that would verify it: its read quota is spent for longer than a call waits (RetryInfo past
    // the minute), so the adapter gives the read up at once.
    let writes = 0;
    let refused = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 4) fillThePool();
      if (name === 'ListServices' && writes >= 4) {
        refused += 1;
        return new RpcError(
          status.RESOURCE_EXHAUSTED,
          "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per region' of service 'run.googleapis.com'",
          90_000,
        );
      }
      return undefined;
    };
    const sink = new RecordingSink();
    const store = createMemoryStateStore();
    const report = await run(sink, store);
    expect(refused).toBeGreaterThan(0);
    expect(report.writes.filter((w) => w.outcome === 'written').length).toBeGreaterThan(0);
    expect(poolCaps()).toBeGreaterThan(12);
    // Not a silent success: the run's alerts name the pool, the refusal and what follows.
    const unverified = report.alerts.filter(
      (a: Alert) =>
        a.type === 'governor.degraded' &&
        a.details['reason'] === 'unverified' &&
        a.status !== 'resolved',
    );
    expect(unverified).toHaveLength(1);
    expect(unverified[0]?.severity).toBe('WARNING');
    expect(unverified[0]?.summary).toContain(REGION);
    expect(unverified[0]?.summary).toContain('RESOURCE_EXHAUSTED');
    expect(unverified[0]?.summary).toContain('next run');
    expect(sink.delivered.map((a: Alert) => a.id)).toContain(unverified[0]?.id);
    // The next run, with the read quota back, reads the pool as it is: the pool is judged again
    // (over its budget here, held by the services' instances, so pool.over-budget fires and the
    // caps it can lower come down), and the unverified condition resolves.
    hook = null;
    emulator.advance(60_000);
    const next = new RecordingSink();
    const again = await run(next, store);
    expect(
      again.writes.filter((w) => w.outcome === 'written' && w.planned < w.from).length,
    ).toBeGreaterThan(0);
    expect(
      next.delivered
        .filter((a: Alert) => a.type === 'pool.over-budget')
        .map((a: Alert) => a.status),
    ).toEqual(['firing']);
    const resolved = next.delivered.filter((a: Alert) => a.dedupKey === unverified[0]?.dedupKey);
    expect(resolved.map((a: Alert) => a.status)).toEqual(['resolved']);
  });

  it('a fresh read that shows the pool filled: no raise is written, each counted with its reason', async () => {
    await start();
    // The other writer fills the pool just before the governor's read before its increases
    // (the second listing of the region: the first is the observation).
    let lists = 0;
    hook = (name) => {
      if (name === 'ListServices' && ++lists === 2) fillThePool();
      return undefined;
    };
    const store = createMemoryStateStore();
    const report = await run(null, store);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) {
      expect(w.outcome).toBe('skipped');
      expect(w.cause).toBe('no-room');
      expect(w.reason).toContain('no room in the pool');
    }
    // Counted, with their reason, in the run record and in what `governor apply` prints.
    const [record] = await store.listRuns(PROJECT);
    expect(record?.skipsByCause).toEqual({ 'no-room': raises.length });
    expect(summary(report)).toContain(
      `not written, by cause: no room in the pool ${raises.length}`,
    );
    expect(emulator.writes()).toEqual([]);
    expect(poolCaps()).toBe(12);
    expect(emulator.violations().violations).toEqual([]);
  });

  it('a quota cut between the two phases: the raises fit the cut quota', async () => {
    await start();
    // The second quota read is the one just before the increases.
    let reads = 0;
    hook = (name) => {
      if (name === 'GetQuotaInfo' && ++reads === 2)
        emulator.setQuota({ project: PROJECT, region: REGION, quota: 6 });
      return undefined;
    };
    const report = await run();
    expect(report.writes.some((w) => w.cause === 'no-room' || (w.written ?? 0) < w.planned)).toBe(
      true,
    );
    expect(poolCaps()).toBeLessThanOrEqual(6);
    expect(emulator.violations().violations).toEqual([]);
  });

  it('finding 1, the variant: the quota cut to 7 right after the first raise: the raises end within it', async () => {
    await start();
    // The second case: the same moment, but the quota is cut to 7 instead (it ended at
    // 12/7). The raises were decided on a read that showed room, and are in flight: those that
    // land over the cut quota are lowered back in the same run.
    let writes = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 2)
        emulator.setQuota({ project: PROJECT, region: REGION, quota: 7 });
      return undefined;
    };
    const report = await run();
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(poolCaps()).toBeLessThanOrEqual(7);
    emulator.judgeRaces();
    const { violations, races } = emulator.violations();
    expect(violations).toEqual([]);
    expect(races.length).toBeGreaterThan(0);
  });

  it('a quota cut right after the read before the raises: none is sent past it, or each comes back', async () => {
    await start();
    let writes = 0;
    hook = (name) => {
      if (name === 'UpdateService' && ++writes === 1)
        emulator.setQuota({ project: PROJECT, region: REGION, quota: 6 });
      return undefined;
    };
    const report = await run();
    expect(report.writes.some((w) => w.cause === 'compensated')).toBe(true);
    expect(poolCaps()).toBeLessThanOrEqual(6);
    emulator.judgeRaces();
    expect(emulator.violations().violations).toEqual([]);
  });

  it('part of a parallel batch fails or hangs: the pool stays within quota after every write', async () => {
    await start();
    let writes = 0;
    hook = (name) => {
      if (name !== 'UpdateService') return undefined;
      writes += 1;
      if (writes === 1) return new RpcError(status.INTERNAL, 'injected: the write failed');
      if (writes === 2) return new RpcError(status.UNAVAILABLE, 'injected: no answer');
      return undefined;
    };
    const report = await run();
    expect(report.outcome).toBe('failed');
    expect(report.writes.filter((w) => w.outcome === 'failed').length).toBeGreaterThanOrEqual(2);
    for (const w of emulator.writes()) expect((w.pool?.capsGpus ?? 0) <= 12).toBe(true);
    expect(emulator.violations().violations).toEqual([]);
  });

  it('a governed service deleted before its raise (NOT_FOUND): skipped as gone, no apply.failed, the rest within quota', async () => {
    await start();
    // Cloud Run answers NOT_FOUND to an update of a service someone deleted (the update is sent
    // without allow_missing, so nothing is created).
    hook = (name, request) =>
      name === 'UpdateService' && JSON.stringify(request).includes('/services/svc-a"')
        ? new RpcError(status.NOT_FOUND, 'Resource svc-a of kind SERVICE does not exist.')
        : undefined;
    const sink = new RecordingSink();
    const report = await run(sink);
    const a = report.writes.find((w) => w.name === 'svc-a');
    expect(a?.outcome).toBe('skipped');
    expect(a?.cause).toBe('gone');
    expect(a?.reason).toContain('deleted');
    expect(report.outcome).toBe('ok');
    expect(sink.delivered.filter((x: Alert) => x.type === 'apply.failed')).toEqual([]);
    expect(report.writes.some((w) => w.outcome === 'written')).toBe(true);
    expect(poolCaps()).toBeLessThanOrEqual(12);
    expect(emulator.violations().violations).toEqual([]);
  });

  for (const [code, why] of [
    [status.FAILED_PRECONDITION, 'the service is reconciling (another operation is in progress)'],
    [status.INVALID_ARGUMENT, 'the request is invalid for this service'],
  ] as const)
    it(`raises refused outright (${status[code]}): failed writes, none read back as if it might apply`, async () => {
      await start();
      // Another writer's operation is in flight on every service when its raise arrives, or
      // Cloud Run finds the request invalid: it refuses the update, and no operation comes back
      // (a FAILED_PRECONDITION's service read again has the etag sent: no conflict).
      hook = (name) =>
        name === 'UpdateService' ? new RpcError(code, `injected: ${why}`) : undefined;
      const report = await run();
      const raises = report.writes.filter((w) => w.planned > w.from);
      expect(raises.length).toBeGreaterThan(0);
      for (const w of raises) {
        expect(w).toMatchObject({ outcome: 'failed', cause: 'failed', written: null });
        expect(w.reason).not.toContain('may still apply');
      }
      expect(report.outcome).toBe('failed');
      // The observation and the read before the raises: no read after raises that never applied.
      expect(calls['ListServices']).toBe(2);
      expect(emulator.writes()).toEqual([]);
    });

  it('NOT_FOUND while polling an accepted write is not a deleted service: the write may still apply', async () => {
    // Operations that take a minute: each accepted write is polled (at 20 ms, a loaded machine
    // could answer the update with its operation already done, and nothing would be polled).
    await start({}, 60_000);
    hook = (name) =>
      name === 'GetOperation' ? new RpcError(status.NOT_FOUND, 'operation not found') : undefined;
    const report = await run();
    const raised = report.writes.filter((w) => w.planned > w.from);
    expect(raised.length).toBeGreaterThan(0);
    for (const w of raised) expect(w.cause, w.name).toBe('uncertain');
    expect(report.outcome).toBe('failed');
    expect(poolCaps()).toBeLessThanOrEqual(12);
  });

  it('a write denied for a permission ends in one alert that names the permission and the service', async () => {
    await start();
    hook = (name, request) =>
      name === 'UpdateService' && JSON.stringify(request).includes('/services/svc-a')
        ? new RpcError(
            status.PERMISSION_DENIED,
            "Permission 'iam.serviceaccounts.actAs' denied on service account svc-a-runtime@race-project.iam.gserviceaccount.com (or it may not exist).",
          )
        : undefined;
    const sink = new RecordingSink();
    const report = await run(sink);
    const denied = report.writes.find((w) => w.name === 'svc-a');
    expect(denied?.cause).toBe('denied');
    expect(denied?.permissions).toEqual(['iam.serviceaccounts.actAs']);
    const aboutA = sink.delivered.filter(
      (a: Alert) => a.service === 'svc-a' && a.status !== 'resolved' && a.type === 'apply.failed',
    );
    expect(aboutA).toHaveLength(1);
    expect(aboutA[0]?.summary).toContain('Permission denied');
    expect(aboutA[0]?.summary).toContain('iam.serviceaccounts.actAs');
    expect(aboutA[0]?.summary).toContain('svc-a');
    // And the resource it lacks it on, as Google's error names it: here the runtime account.
    const account = 'svc-a-runtime@race-project.iam.gserviceaccount.com';
    expect(aboutA[0]?.details).toMatchObject({
      permissions: ['iam.serviceaccounts.actAs'],
      resource: account,
    });
    expect(aboutA[0]?.summary).toContain(`iam.serviceaccounts.actAs on ${account}`);
  });

  it('every write refused for the write quota (RESOURCE_EXHAUSTED): nothing lands, the pool stays within quota, and apply.failed names the refusal', async () => {
    await start();
    const before = poolCaps();
    // Longer than a call waits for a retry delay: each write is given up at once, as refused.
    hook = (name) =>
      name === 'UpdateService'
        ? new RpcError(
            status.RESOURCE_EXHAUSTED,
            "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per region' of service 'run.googleapis.com'",
            90_000,
          )
        : undefined;
    const sink = new RecordingSink();
    const report = await run(sink);
    expect(report.writes.length).toBeGreaterThan(0);
    for (const w of report.writes) {
      expect(w.outcome, w.name).toBe('failed');
      expect(w.cause, w.name).toBe('failed');
      expect(w.reason, w.name).toContain('RESOURCE_EXHAUSTED');
    }
    expect(emulator.writes()).toEqual([]);
    expect(poolCaps()).toBe(before);
    expect(poolCaps()).toBeLessThanOrEqual(12);
    const failed = sink.delivered.filter((a: Alert) => a.type === 'apply.failed');
    expect(failed.length).toBeGreaterThan(0);
    for (const a of failed) expect(a.summary).toContain('RESOURCE_EXHAUSTED');
  });

  it('a write refused for the minute is not sent again after the run deadline, whatever delay Google asked', async () => {
    await start();
    // Every write refused with a RetryInfo longer than the whole run: the adapter would wait and
    // send again after the run had given the write up (and perhaps its lease). The run has 3 s
    // for its writes, however long its reads took (on the wall clock alone, a loaded machine
    // spent all 3 s on them and wrote nothing). The delay asked is a second longer than that, so
    // a write sent again would be sent after the run ended; the test waits past that moment.
    const asked = 4_000;
    let lastRefusal = 0;
    hook = (name) => {
      if (name !== 'UpdateService') return undefined;
      lastRefusal = Date.now();
      return new RpcError(
        status.RESOURCE_EXHAUSTED,
        'Quota exceeded: write requests per minute',
        asked,
      );
    };
    const { store, wallClock, writing } = clockStillUntilWrites(60_000, 3_000);
    const report = await reconcileReport(
      policy,
      { ports, store, wallClock, sink: null, clock: () => emulator.now().getTime() },
      { runId: 'refused-late', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(writing()).toBe(true);
    const sent = calls['UpdateService'] ?? 0;
    expect(sent).toBeGreaterThan(0);
    expect(report.writes.filter((w) => w.outcome === 'written')).toEqual([]);
    // Past the delay asked after the last refusal, plus the backoff's jitter (under
    // the policy's first backoff, 250 ms).
    await new Promise((done) =>
      setTimeout(done, Math.max(0, lastRefusal + asked + 1_000 - Date.now())),
    );
    expect(calls['UpdateService']).toBe(sent);
    expect(emulator.writes()).toEqual([]);
  });

  /** A stamp of another governor (on its own store), `agoMs` ago on the wall clock. */
  const otherStamp = (agoMs: number) => ({
    'gpu-governor.dev/writer': 'cli:someone@elsewhere/gov-0123456789ab',
    'gpu-governor.dev/written-at': new Date(Date.now() - agoMs).toISOString(),
  });

  it("another governor's fresh stamp in the pool: nothing raised there, and an alert says so", async () => {
    await start({ annotations: otherStamp(30_000) });
    const sink = new RecordingSink();
    const report = await run(sink);
    const raises = report.writes.filter((w) => w.planned > w.from);
    expect(raises.length).toBeGreaterThan(0);
    for (const w of raises) expect(w.cause).toBe('other-governor');
    expect(emulator.writes().filter((w) => w.after.maxInstances > w.before.maxInstances)).toEqual(
      [],
    );
    const alert = sink.delivered.find(
      (a: Alert) => a.type === 'governor.degraded' && a.details['reason'] === 'other-governor',
    );
    expect(alert?.summary).toContain('Another governor');
  });

  it("another governor's fresh stamp: nothing lowered there either, so only it writes the pool", async () => {
    await start({ annotations: otherStamp(30_000) });
    // ext-render (unmanaged) up to 8: the governed caps (4) are over the budget (12 - 8 - ...),
    // so the plan lowers as well as raises.
    emulator.edit({ project: PROJECT, region: REGION, service: 'svc-d', maxInstances: 4 });
    emulator.edit({ project: PROJECT, region: REGION, service: 'ext-render', maxInstances: 6 });
    const report = await run();
    const lowered = report.writes.filter((w) => w.planned < w.from);
    expect(lowered.length).toBeGreaterThan(0);
    for (const w of report.writes) expect(w.cause, w.name).toBe('other-governor');
    expect(emulator.writes()).toEqual([]);
  });

  it("another governor's stamp from the future holds the pool, and the alert says where it is and how to end it", async () => {
    // Written on a clock a year ahead (or by hand): no write is the safe side, until that time.
    await start({ annotations: otherStamp(-365 * 86_400_000) });
    const sink = new RecordingSink();
    const report = await run(sink);
    expect(report.writes.length).toBeGreaterThan(0);
    for (const w of report.writes) expect(w.cause, w.name).toBe('other-governor');
    const alert = sink.delivered.find(
      (a: Alert) => a.type === 'governor.degraded' && a.details['reason'] === 'other-governor',
    );
    // A human reading the page alone learns the writer, the service, the annotation and the fix.
    expect(alert?.summary).toContain('cli:someone@elsewhere/gov-0123456789ab');
    expect(alert?.summary).toContain('later than this governor');
    expect(alert?.summary).toContain('gpu-governor.dev/written-at annotation of svc-a');
    expect(alert?.summary).toContain('fix the clock');
  });

  // "garbage 2026" (Date.parse: 2026-01-01) and a time without an offset (Date.parse: this
  // machine's own zone) are no times the governor writes: when that governor wrote is unknown.
  it.each([
    ['garbage 2026', () => 'garbage 2026'],
    ['a time without an offset', () => new Date(Date.now() - 30_000).toISOString().slice(0, 19)],
  ])(
    "another governor's stamp whose time cannot be read (%s) holds the pool, and the alert says how to end it",
    async (_, at) => {
      await start({ annotations: { ...otherStamp(0), 'gpu-governor.dev/written-at': at() } });
      const sink = new RecordingSink();
      const report = await run(sink);
      expect(report.writes.length).toBeGreaterThan(0);
      for (const w of report.writes) expect(w.cause, w.name).toBe('other-governor');
      expect(emulator.writes()).toEqual([]);
      const alert = sink.delivered.find(
        (a: Alert) => a.type === 'governor.degraded' && a.details['reason'] === 'other-governor',
      );
      expect(alert?.summary).toContain('cli:someone@elsewhere/gov-0123456789ab');
      expect(alert?.summary).toContain('cannot be read');
      expect(alert?.summary).toContain('gpu-governor.dev/written-at annotation of svc-a');
    },
  );

  it("another governor's stamp of 20,000 characters is shown cut, not carried whole into the alert", async () => {
    const writer = `cli:${'x'.repeat(20_000)}/gov-0123456789ab`;
    await start({
      annotations: { ...otherStamp(30_000), 'gpu-governor.dev/writer': writer },
    });
    const sink = new RecordingSink();
    const report = await run(sink);
    expect(report.writes.length).toBeGreaterThan(0);
    for (const w of report.writes) {
      expect(w.cause, w.name).toBe('other-governor');
      expect(w.reason.length, w.name).toBeLessThan(1_000);
    }
    const alert = sink.delivered.find(
      (a: Alert) => a.type === 'governor.degraded' && a.details['reason'] === 'other-governor',
    );
    expect(alert?.summary).toContain('another governor (cli:xxx');
    expect(alert?.summary.length).toBeLessThan(1_000);
  });

  it('a stamp older than a lease on the wall clock holds nothing back, whatever the emulator clock says', async () => {
    // The emulator's virtual time is days behind the wall clock here: only the wall clock counts.
    await start({ annotations: otherStamp(30_000 + 60_000 + 60_000) });
    const report = await run();
    expect(report.writes.filter((w) => w.cause === 'other-governor')).toEqual([]);
    expect(emulator.writes().length).toBeGreaterThan(0);
  });

  it('its own stamps, from an earlier run on the same store, hold nothing back', async () => {
    await start();
    const store = createMemoryStateStore();
    const first = await run(null, store);
    expect(first.writes.some((w) => w.outcome === 'written')).toBe(true);
    emulator.advance(60_000);
    emulator.edit({ project: PROJECT, region: REGION, service: 'ext-render', maxInstances: 3 });
    const second = await run(null, store);
    expect(second.writes.length).toBeGreaterThan(0);
    expect(second.writes.filter((w) => w.cause === 'other-governor')).toEqual([]);
  });

  it('stamps its name and store id, and the wall-clock time, on every service it writes', async () => {
    await start();
    const store = createMemoryStateStore();
    const before = Date.now();
    await run(null, store);
    const after = Date.now();
    expect(emulator.writes().length).toBeGreaterThan(0);
    const id = await store.governorId();
    for (const w of emulator.writes()) {
      expect(w.after.annotations['gpu-governor.dev/writer']).toBe(`me/${id}`);
      const at = Date.parse(w.after.annotations['gpu-governor.dev/written-at'] ?? '');
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(after);
    }
  });
});

describe('act: floors yield to the quota', () => {
  it('a pool infeasible only because a service is deploying: no raise past the quota, and the reason says so', async () => {
    // Chaos seed 20261127, fleet seed 109237999: quota 8; svc-z0 takes 2 GPUs an instance and
    // has a floor of 3; svc-z1 is deploying at 3, so it is held there. The governor once raised
    // svc-z0 to its floor, leaving the pool at 10/8.
    emulator = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        startupSeconds: 30,
        idleMinutes: 0,
        warmupMinutes: 40,
        projects: [
          {
            id: PROJECT,
            pools: [{ region: REGION, quota: 8 }],
            services: [
              { name: 'svc-z0', region: REGION, gpu: { count: 2 }, maxInstances: 1, demand: 3 },
              { name: 'svc-z1', region: REGION, gpu: {}, maxInstances: 3, demand: 0 },
              { name: 'svc-z2', region: REGION, gpu: {}, maxInstances: 1, demand: 1 },
            ],
          },
        ],
      },
      speed: 'manual',
      operationDelayMs: 5,
    });
    ports = createGooglePorts({ emulatorHost: emulator.host });
    emulator.deploy({ service: 'svc-z1', seconds: 600 });
    const floors = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      services: [{ match: { name: 'svc-z0' }, min: 3, priority: 10 }, { match: {} }],
      limits: { writesPerMinute: 6000 },
    });
    const report = await reconcile(
      floors,
      {
        ports,
        store: createMemoryStateStore(),
        sink: null,
        log: memoryLogger(),
        now: async () => emulator.now().getTime(),
        sleep: async () => {},
      },
      { runId: 'floors', deadlineMs: 30_000, writerId: 'me' },
    );
    expect(report.plan?.pools[0]?.status).toBe('infeasible');
    const z0 = report.writes.find((w) => w.name === 'svc-z0');
    // Raised as far as the quota allows (1 → 2: 4 + 3 + 1 = 8), not to its floor of 3.
    expect(z0?.written).toBe(2);
    expect(z0?.reason).toContain('the quota comes before floors');
    expect(poolCaps()).toBeLessThanOrEqual(8);
    for (const w of emulator.writes()) expect(w.pool?.capsGpus ?? 0).toBeLessThanOrEqual(8);
    expect(emulator.violations().violations).toEqual([]);
  });
});
