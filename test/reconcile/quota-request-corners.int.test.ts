import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { GooglePorts } from '../../src/adapters/index.js';
import type { QuotaPreferenceAdapter } from '../../src/adapters/quota-preferences.js';
import type { Alert } from '../../src/core/alert.js';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import {
  decideQuotaPreference,
  quotaPreferences,
  setQuotaIncreaseEligibility,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import type { memoryLogger } from '../../src/log.js';
import type { QuotaRequestPort, StateStore } from '../../src/ports/index.js';
import { reconcile, type RunReport } from '../../src/reconcile/reconcile.js';
import { openQuotaWorld, quotaPools, type QuotaWorld } from '../support/quota-world.js';

/**
 * Quota requests at their corners, in real runs (the emulator over gRPC, the real Cloud Quotas
 * client, the file state store): preferences of other quotas and values no GPU count can be,
 * a preference answered without an etag, and a hand-edited ledger naming another project's
 * preference.
 */

const P = 'qc-project';
const US = 'us-central1';
const EU = 'europe-west4';
const { hot: HOT, calm: CALM } = quotaPools(P);
const PARENT = `projects/${P}/locations/global`;
const L4 = 'NvidiaL4GpuAllocPerProjectRegion';

const policy: Policy = parsePolicy({
  version: 1,
  projects: [P],
  regions: [US, EU],
  defaults: { headroom: 0 },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
  quotaRequests: { enabled: true, contactEmail: 'ops@example.com', maxIncrease: 4 },
});

let world: QuotaWorld;
let emulator: RunningEmulator;
let ports: GooglePorts;
let prefs: QuotaPreferenceAdapter;
let store: StateStore;
let log: ReturnType<typeof memoryLogger>;
let dir: string;

beforeEach(async () => {
  world = await openQuotaWorld(P);
  ({ emulator, ports, prefs, store, log, dir } = world);
});

afterEach(() => world.close());

/** Both pools under pressure all week: the newest record's ledger, its calm days made hot. */
async function bothPressed(): Promise<void> {
  const [seed] = await store.listRuns(P);
  const ledger = seed?.pressure;
  const hot = ledger?.pools[HOT];
  const calm = ledger?.pools[CALM];
  if (!seed || !ledger || !hot || !calm) throw new Error('no seeded ledger');
  await store.recordRun(P, {
    ...seed,
    runId: 'run-seed-both',
    finishedAt: '2026-11-27T11:55:02.000Z',
    pressure: { ...ledger, pools: { ...ledger.pools, [CALM]: { ...calm, days: hot.days } } },
  });
}

let seq = 0;
async function run(q: QuotaRequestPort = prefs): Promise<RunReport> {
  return reconcile(
    policy,
    {
      ports,
      store,
      sink: null,
      log,
      now: () => Promise.resolve(emulator.now().getTime()),
      sleep: async () => {},
      quotaRequests: q,
    },
    { runId: `run-${++seq}`, deadlineMs: 60_000 },
  );
}

const requested = (r: RunReport) =>
  r.alerts.filter((a) => a.type === 'quota.requested').map((a) => a.region);
const degraded = (r: RunReport): Alert | undefined =>
  r.alerts.find((a) => a.type === 'governor.degraded' && a.dedupKey.endsWith(':quota-requests'));
const calls = (method: string) => emulator.calls().filter((c) => c.method.endsWith(method));

describe('preferences the governor does not act on, and values no GPU count can be', () => {
  it("another quota's -1 or 2^53 + 1 does not stop the requests; the pool's own -1 stops that pool's only, named", async () => {
    await bothPressed();
    // Someone's preferences for Cloud Run quotas the governor never acts on (a CPU quota, a
    // memory quota), with values Google allows: -1 (unlimited) and an int64 beyond 2^53.
    emulator.seedQuotaPreference({
      name: `${PARENT}/quotaPreferences/cpu-unlimited`,
      quotaId: 'CpuAllocPerProjectRegion',
      region: US,
      preferredValue: '-1',
      grantedValue: '-1',
    });
    emulator.seedQuotaPreference({
      name: `${PARENT}/quotaPreferences/memory-huge`,
      quotaId: 'MemAllocPerProjectRegion',
      preferredValue: '9007199254740993',
      grantedValue: '9007199254740993',
    });
    // Unlimited granted for the GPU quota of europe-west4: the governor cannot budget it.
    const unlimited = `${PARENT}/quotaPreferences/l4-eu-unlimited`;
    emulator.seedQuotaPreference({
      name: unlimited,
      quotaId: L4,
      region: EU,
      preferredValue: '-1',
      grantedValue: '-1',
    });
    const r = await run();
    expect(r.error).toBeNull();
    // us-central1 is filed; europe-west4 is not, and the run says which preference and why.
    expect(requested(r)).toEqual([US]);
    expect(calls('/CreateQuotaPreference')).toHaveLength(1);
    expect(quotaPreferences(emulator.model).find((p) => p.dimensions['region'] === EU)?.name).toBe(
      unlimited,
    );
    const d = degraded(r);
    expect(d?.summary).toMatch(
      /nothing filed for a pool: quota preference .*l4-eu-unlimited, granted value: -1 is not a GPU count/,
    );
    expect(d?.details['failures']).toEqual([
      expect.objectContaining({ call: 'list', resource: unlimited, kind: 'refused' }),
    ]);
  });
});

describe('an update without the etag read', () => {
  it('a lower preference answered without an etag is not raised: nothing sent, the run says why', async () => {
    // Someone's earlier preference for the pressed pool, denied at 5, that Google answers without
    // an etag (QuotaPreference.etag is optional): an update would overwrite it unchecked.
    const name = `${PARENT}/quotaPreferences/old-no-etag`;
    emulator.seedQuotaPreference({
      name,
      quotaId: L4,
      region: US,
      preferredValue: '5',
      grantedValue: '4',
      etag: false,
    });
    const r = await run();
    expect(r.error).toBeNull();
    expect(requested(r)).toEqual([]);
    expect(calls('/UpdateQuotaPreference')).toEqual([]);
    expect(calls('/CreateQuotaPreference')).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([
      expect.objectContaining({ name, preferredValue: 5 }),
    ]);
    const d = degraded(r);
    expect(d?.summary).toContain(
      `nothing filed for a pool: ${name} was read without an etag: an update without one would overwrite any change made since it was read, so none is sent`,
    );
    expect(d?.details['failures']).toEqual([
      expect.objectContaining({ call: 'update', resource: name, kind: 'refused' }),
    ]);
  });
});

describe("a hand-edited ledger naming another project's preference", () => {
  /** The state file of the project, edited by hand: `edit` changes its newest run's ledger. */
  async function editLedger(edit: (ledger: Record<string, unknown>) => void): Promise<string> {
    const file = join(dir, `${P}.json`);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      runs: { runId: string; pressure?: Record<string, unknown> }[];
    };
    const newest = doc.runs.find((r) => r.pressure !== undefined);
    if (!newest?.pressure) throw new Error('no ledger in the state file');
    edit(newest.pressure);
    const text = JSON.stringify(doc);
    writeFileSync(file, text);
    return text;
  }
  const pending = (name: string, over: object = {}) => ({
    name,
    quotaId: L4,
    preferredValue: 8,
    from: 4,
    filedAt: '2026-11-27T11:00:00.000Z',
    by: 'governor',
    state: 'pending',
    decidedAt: null,
    grantedValue: null,
    stateDetail: '',
    traceId: '',
    ...over,
  });

  it('refused when the state is read: an error naming the entry, nothing called, nothing written', async () => {
    const other = 'projects/someone-else/locations/global/quotaPreferences/theirs';
    const text = await editLedger((l) => {
      l['requests'] = { [HOT]: pending(other) };
    });
    const e = await run().then(
      () => null,
      (error: unknown) => error,
    );
    // The state store's own form: what is unreadable, then one line per fault, naming the entry.
    expect(String((e as Error).message)).toContain(
      `\n  - pressure.requests.${HOT}.name: names a preference of project "someone-else", not of "${P}"`,
    );
    expect(calls('QuotaPreference')).toEqual([]);
    expect(readFileSync(join(dir, `${P}.json`), 'utf8')).toBe(text);
  });
});

describe('a ledger entry refused when it is used', () => {
  const entry = (name: string, over: object = {}) => ({
    name,
    quotaId: L4,
    preferredValue: 8,
    from: 4,
    filedAt: '2026-11-27T11:00:00.000Z',
    by: 'found' as const,
    state: 'pending' as const,
    decidedAt: null,
    grantedValue: null,
    stateDetail: '',
    traceId: '',
    ...over,
  });
  /** The newest record again, its ledger tracking `requests` (valid as the state is read). */
  async function track(requests: Record<string, ReturnType<typeof entry>>): Promise<void> {
    const [seed] = await store.listRuns(P);
    if (!seed?.pressure) throw new Error('no seeded ledger');
    await store.recordRun(P, {
      ...seed,
      runId: 'run-seed-tracked',
      finishedAt: '2026-11-27T11:55:02.000Z',
      pressure: { ...seed.pressure, requests },
    });
  }

  it("another project's pool, another quota, or a project number Google never answered: not read, named, nothing filed", async () => {
    // Each entry passes the state's checks on its own (its name is of its key's project, or a
    // number), but none is this project's pool's to read or raise.
    const otherPool = `someone-else/${US}/nvidia-l4/zonal`;
    const theirs = 'projects/someone-else/locations/global/quotaPreferences/theirs';
    const byNumber = 'projects/123456789012/locations/global/quotaPreferences/gpu-governor-x';
    const cpu = `${PARENT}/quotaPreferences/cpu`;
    await track({
      [otherPool]: entry(theirs),
      [HOT]: entry(byNumber),
      [CALM]: entry(cpu, { quotaId: 'CpuAllocPerProjectRegion' }),
    });
    const r = await run();
    expect(r.error).toBeNull();
    expect(calls('/GetQuotaPreference')).toEqual([]);
    expect(calls('/CreateQuotaPreference')).toEqual([]);
    expect(calls('/UpdateQuotaPreference')).toEqual([]);
    const failures = degraded(r)?.details['failures'] as { resource: string; error: string }[];
    expect(failures.map((f) => [f.resource, f.error])).toEqual([
      [
        theirs,
        `the ledger's request under "${otherPool}" (${theirs}) is not of a pool of ${P}: it is not read or changed`,
      ],
      [
        byNumber,
        `the ledger's request under "${HOT}" (${byNumber}) names project number 123456789012, which no preference Google listed for ${P} carries: it is not read or changed`,
      ],
      [
        cpu,
        `the ledger's request under "${CALM}" (${cpu}) is for quota CpuAllocPerProjectRegion, not the pool's ${L4}: it is not read or changed`,
      ],
    ]);
    // Kept as they were: the next run refuses them again, and a person sees why.
    expect(Object.keys((await store.listRuns(P))[0]?.pressure?.requests ?? {}).sort()).toEqual(
      [CALM, HOT, otherPool].sort(),
    );
  });

  it("a name carrying the number Google answers for this project is read as the pool's", async () => {
    // Google's examples name preferences by project number (projects/123/...): a port that
    // answers names so, as Google may, and reads them back by either form.
    const NUMBER = '123456789012';
    const byNumber = (name: string) => name.replace(`projects/${P}/`, `projects/${NUMBER}/`);
    const byId = (name: string) => name.replace(`projects/${NUMBER}/`, `projects/${P}/`);
    const numbered: QuotaRequestPort = {
      quotaIdOf: (a, z) => prefs.quotaIdOf(a, z),
      listPreferences: async (p) =>
        (await prefs.listPreferences(p)).map((x) => ({ ...x, name: byNumber(x.name) })),
      getPreference: async (name) => {
        const v = await prefs.getPreference(byId(name));
        return { ...v, name: byNumber(v.name) };
      },
      createPreference: (input) => prefs.createPreference(input),
      updatePreference: (input) => prefs.updatePreference({ ...input, name: byId(input.name) }),
    };
    const filed = await prefs.createPreference({
      project: P,
      id: 'gpu-governor-hot',
      quotaId: L4,
      region: US,
      preferredValue: 8,
      justification: '',
      contactEmail: 'ops@example.com',
    });
    await track({ [HOT]: entry(byNumber(filed.name)) });
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: filed.name,
      decision: 'granted',
    });
    const r = await run(numbered);
    expect(degraded(r)).toBeUndefined();
    expect(r.alerts.filter((a) => a.type === 'quota.granted')).toHaveLength(1);
    expect(calls('/GetQuotaPreference')).toHaveLength(1);
  });
});

describe('a decision in a pool the ledger no longer carries', () => {
  it('is announced all the same: quota.granted, not only tracked as decided', async () => {
    // The pool of us-central1 without zonal redundancy: no service of it is left (its services
    // were moved to zonal redundancy), so neither the plan nor the ledger's pools show it, but
    // the request filed for it is still tracked, pending.
    const key = `${P}/${US}/nvidia-l4/no-zonal`;
    const quotaId = prefs.quotaIdOf('nvidia-l4', false);
    // Google has since granted it.
    const filed = emulator.seedQuotaPreference({
      name: `${PARENT}/quotaPreferences/gpu-governor-no-zonal`,
      quotaId,
      region: US,
      preferredValue: '8',
      grantedValue: '8',
    });
    const [seed] = await store.listRuns(P);
    if (!seed?.pressure) throw new Error('no seeded ledger');
    expect(seed.pressure.pools[key]).toBeUndefined();
    await store.recordRun(P, {
      ...seed,
      runId: 'run-seed-emptied-pool',
      finishedAt: '2026-11-27T11:55:02.000Z',
      pressure: {
        ...seed.pressure,
        requests: {
          [key]: {
            name: filed.name,
            quotaId,
            preferredValue: 8,
            from: 4,
            filedAt: '2026-11-27T11:00:00.000Z',
            by: 'governor',
            state: 'pending',
            decidedAt: null,
            grantedValue: null,
            stateDetail: '',
            traceId: '',
          },
        },
      },
    });
    const r = await run();
    expect(r.error).toBeNull();
    // Tracked as decided from now on, so this run is the only one that can tell it.
    expect((await store.listRuns(P))[0]?.pressure?.requests?.[key]?.state).toBe('granted');
    const granted = r.alerts.filter((a) => a.type === 'quota.granted');
    expect(granted).toEqual([
      expect.objectContaining({
        project: P,
        region: US,
        accelerator: 'nvidia-l4',
        zonalRedundancy: false,
      }),
    ]);
    expect(granted[0]?.details['preference']).toBe(filed.name);
  });
});

/**
 * A create answered under another name (`rename` of the one filed): the run says so in its
 * degraded failure (`error`), tracks nothing, and the next run lists the preferences and settles
 * the one filed, filing nothing again.
 */
async function oddNameSettled(rename: (name: string) => string, error: RegExp): Promise<void> {
  const odd: QuotaRequestPort = {
    quotaIdOf: (a, z) => prefs.quotaIdOf(a, z),
    listPreferences: (p) => prefs.listPreferences(p),
    getPreference: (name) => prefs.getPreference(name),
    createPreference: async (input) => {
      const v = await prefs.createPreference(input);
      return { ...v, name: rename(v.name) };
    },
    updatePreference: (input) => prefs.updatePreference(input),
  };
  const first = await run(odd);
  expect(first.error).toBeNull();
  expect(calls('/CreateQuotaPreference')).toHaveLength(1);
  expect(degraded(first)?.details['failures']).toEqual([
    expect.objectContaining({ call: 'create', error: expect.stringMatching(error) }),
  ]);
  expect((await store.listRuns(P))[0]?.pressure?.requests).toBeUndefined();
  emulator.advance(5 * 60_000);
  const next = await run();
  expect(next.error).toBeNull();
  expect(calls('/CreateQuotaPreference')).toHaveLength(1);
  expect((await store.listRuns(P))[0]?.pressure?.requests?.[HOT]?.name).toBe(
    quotaPreferences(emulator.model)[0]?.name,
  );
}

describe('a filed preference Google names otherwise', () => {
  it('is not tracked under a name the state would refuse: the next run reads the state and settles it', async () => {
    // A create answered with a name of another project (Google names none so; a name the state
    // refuses would make every later run fail to read it).
    await oddNameSettled(
      (name) => name.replace(`projects/${P}/`, 'projects/someone-else/'),
      /names a preference of project "someone-else"/,
    );
  });
});

describe('a filed preference answered as another one of the project', () => {
  it('is not tracked under the other name: the next run lists the preferences and settles it', async () => {
    // A create answered with another preference's name (another id of the same project) would
    // have every later run read back, and judge the request on, that other preference.
    await oddNameSettled((name) => name.replace(/[^/]+$/, 'someone-elses'), /someone-elses/);
  });
});

describe('a quota Google says cannot be raised', () => {
  it('QuotaInfo says no increase may be requested: nothing filed, the reason named; filed once eligible again', async () => {
    // QuotaInfo.quota_increase_eligibility: "Whether it is eligible to request a higher quota
    // value for this quota", with the reason when not (google/api/cloudquotas/v1/resources.proto).
    setQuotaIncreaseEligibility(emulator.model, P, L4, 'NO_VALID_BILLING_ACCOUNT');
    const r = await run();
    expect(r.outcome).toBe('ok');
    expect(requested(r)).toEqual([]);
    expect(quotaPreferences(emulator.model)).toEqual([]);
    expect(calls('CreateQuotaPreference')).toHaveLength(0);
    const failures = degraded(r)?.details['failures'] as Record<string, unknown>[];
    expect(failures).toEqual([
      expect.objectContaining({
        call: 'get',
        kind: 'refused',
        resource: `projects/${P}/locations/global/services/run.googleapis.com/quotaInfos/${L4}`,
      }),
    ]);
    expect(String(failures[0]?.['error'])).toMatch(
      /not eligible for an increase.*NO_VALID_BILLING_ACCOUNT/,
    );

    setQuotaIncreaseEligibility(emulator.model, P, L4, null);
    emulator.advance(5 * 60_000);
    const next = await run();
    expect(requested(next)).toEqual([US]);
    expect(quotaPreferences(emulator.model)).toHaveLength(1);
    expect(degraded(next)?.status ?? 'none').not.toBe('firing');
  });
});
