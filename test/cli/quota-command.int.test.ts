import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import type { PressureDay, PressureLedger } from '../../src/core/quota-pressure.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { DiscoveryCacheStore, StateStore } from '../../src/ports/index.js';
import { cliIn } from '../support/cli-run.js';
import { quietRun } from '../support/fixtures.js';

/** `governor quota recommend` through the real process, from a file state store's records. */

const exec = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'governor-quota-'));
const stateDir = join(tmp, 'state');
const AT = '2026-11-30T12:00:00.000Z';

async function governor(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/governor.js', ...args], {
      env: { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `governor quota recommend` with this policy and state directory, and any further flags. */
function recommend(policyPath: string, dir: string, ...more: string[]) {
  return governor(['quota', 'recommend', '--policy', policyPath, '--state-dir', dir, ...more]);
}

function policy(name: string, extra = ''): string {
  const path = join(tmp, name);
  writeFileSync(path, `version: 1\nprojects: [hot, fresh, never]\n${extra}`);
  return path;
}

const day = (d: string, atBudget: number, refused: number, peak: number): PressureDay => ({
  day: d,
  minutes: 1440,
  minutesAtBudget: atBudget,
  refusedGpuMinutes: refused,
  peakWanted: peak,
  quota: 8,
  budget: 8,
});

const pool = (project: string, region: string, days: PressureDay[]) => ({
  project,
  region,
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
  days,
});

const HOT = 'hot/us-central1/nvidia-l4/zonal';
const HOT_DAYS = ['2026-11-26', '2026-11-27', '2026-11-28', '2026-11-29'];
/** The hot pool over four days: 300 minutes a day at its budget, 900 GPU-minutes refused, peak 12. */
const hotPool = () =>
  pool(
    'hot',
    'us-central1',
    HOT_DAYS.map((d) => day(d, 300, 900, 12)),
  );
/** A request for the hot pool as a run's state keeps it: pending, found, 8 → 16; `over` changes it. */
type Request = NonNullable<PressureLedger['requests']>[string];
const hotRequest = (over: Partial<Request> = {}): Request => ({
  name: 'projects/hot/locations/global/quotaPreferences/by-hand',
  quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
  preferredValue: 16,
  from: 8,
  filedAt: '2026-11-28T09:00:00.000Z',
  by: 'found',
  state: 'pending',
  decidedAt: null,
  grantedValue: null,
  stateDetail: '',
  traceId: '',
  ...over,
});

beforeAll(async () => {
  const days = ['2026-11-26', '2026-11-27', '2026-11-28', '2026-11-29'];
  const hot: PressureLedger = {
    at: AT,
    pools: {
      'hot/us-central1/nvidia-l4/zonal': pool(
        'hot',
        'us-central1',
        days.map((d) => day(d, 300, 900, 12)),
      ),
      'hot/europe-west4/nvidia-l4/zonal': pool(
        'hot',
        'europe-west4',
        days.map((d) => day(d, 0, 0, 5)),
      ),
    },
  };
  const fresh: PressureLedger = {
    at: AT,
    pools: {
      'fresh/us-central1/nvidia-l4/zonal': pool('fresh', 'us-central1', [
        { ...day('2026-11-30', 100, 400, 10), minutes: 120 },
      ]),
    },
  };
  const store = createFileStateStore({ dir: stateDir });
  const record = (runId: string, pressure?: PressureLedger) =>
    quietRun(runId, AT, pressure ? { pressure } : {});
  await store.recordRun('hot', record('run-1', hot));
  await store.recordRun('fresh', record('run-2', fresh));
  await store.recordRun('never', record('run-3'));
  await store.close();
});

/**
 * `quota recommend --json` of split-proj governed per region (the discovery found it with
 * services in us-central1 and europe-west4), on `store`'s folder `dir`, closed first: its answer,
 * which must be a success with nothing on stderr.
 */
async function recommendSplit(
  store: StateStore & DiscoveryCacheStore,
  dir: string,
  policyName: string,
): Promise<unknown> {
  await store.saveDiscovery({
    key: 'k',
    foundAt: AT,
    projects: ['split-proj'],
    services: { 'split-proj': { 'us-central1': 30, 'europe-west4': 20 } },
  });
  await store.close();
  const path = join(tmp, policyName);
  writeFileSync(path, 'version: 1\nprojects: [split-proj]\n');
  const r = await recommend(path, dir, '--at', AT, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('governor quota recommend', () => {
  it('recommends for the pool under pressure only, with its evidence, and says where history is short', async () => {
    const r = await recommend(policy('p.yaml'), stateDir, '--at', AT);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pool hot\/us-central1\/nvidia-l4\/zonal {2}\[recommend\]$/m);
    expect(r.stdout).toContain(
      'at budget 1200 minutes; refused about 3600 GPU-minutes (estimate); peak wanted 12 GPUs',
    );
    // Precise and grammatical: what the runs covered, on how many calendar days.
    expect(r.stdout).toContain(
      '  history: runs covered 4 days (5760 minutes) on 4 calendar days; at budget 1200 minutes;',
    );
    expect(r.stdout).toContain('  history: runs covered 120 minutes on 1 calendar day;');
    expect(r.stdout).not.toMatch(/\(s\)|days covered 0/);
    expect(r.stdout).toContain('1 of 3 pools with history has a recommendation.');
    expect(r.stdout).toMatch(/^ {2}recommended quota: 12$/m);
    expect(r.stdout).toMatch(/^pool hot\/europe-west4\/nvidia-l4\/zonal {2}\[no-pressure\]$/m);
    expect(r.stdout).toMatch(
      /^pool fresh\/us-central1\/nvidia-l4\/zonal {2}\[too-little-history\]$/m,
    );
    expect(r.stdout).toContain('never: no run record with pressure history yet');
    expect(r.stdout).toContain('Nothing was filed: quota requests are off in this policy');
  });

  it("leaves out another project's pools found in a project's state, and says so", async () => {
    const dir = join(tmp, 'state-foreign');
    const store = createFileStateStore({ dir });
    const days = ['2026-11-26', '2026-11-27', '2026-11-28', '2026-11-29'];
    const other = pool(
      'elsewhere',
      'us-central1',
      days.map((d) => day(d, 300, 900, 12)),
    );
    await store.recordRun(
      'hot',
      quietRun('run-9', AT, {
        pressure: { at: AT, pools: { 'elsewhere/us-central1/nvidia-l4/zonal': other } },
      }),
    );
    await store.close();
    const r = await recommend(policy('p.yaml'), dir, '--at', AT, '--json');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { pools: { key: string }[] };
    expect(json.pools.map((p) => p.key)).toEqual([]);
    expect(r.stderr).toContain(
      "warning: the state of hot holds pressure history of other projects' pools (elsewhere/us-central1/nvidia-l4/zonal): left out",
    );
  });

  it('names pools on one line, whatever characters the state gives them', async () => {
    const dir = join(tmp, 'state-foreign-control');
    const store = createFileStateStore({ dir });
    const days = HOT_DAYS.map((d) => day(d, 300, 900, 12));
    const evil = pool('else\nerror: \u001b[2Jwhere', 'us-central1', days);
    const odd = pool('hot', 'us\u001b[2J\ncentral1', days);
    await store.recordRun(
      'hot',
      quietRun('run-10', AT, {
        pressure: {
          at: AT,
          pools: {
            'else\nerror: \u001b[2Jwhere/us-central1/nvidia-l4/zonal': evil,
            'hot/us\u001b[2J\ncentral1/nvidia-l4/zonal': odd,
          },
        },
      }),
    );
    await store.close();
    const r = await recommend(policy('p.yaml'), dir, '--at', AT);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "warning: the state of hot holds pressure history of other projects' pools (else error:  [2Jwhere/us-central1/nvidia-l4/zonal): left out\n",
    );
    expect(r.stdout).toContain('pool hot/us [2J central1/nvidia-l4/zonal  [recommend]\n');
    // eslint-disable-next-line no-control-regex
    expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
  });

  it('a hand-edited ledger is refused in one line naming the field, and the state file is left as it was', async () => {
    type Doc = { runs: { pressure: PressureLedger }[] };
    const hotDays = (l: PressureLedger) => l.pools[HOT]?.days ?? [];
    const first = (l: PressureLedger) => hotDays(l)[0] ?? day('2026-11-26', 0, 0, 0);
    // Sixteen rows a day apart, oldest first: only their number is wrong.
    const sixteen = (l: PressureLedger) => {
      const start = Date.parse('2026-11-14T00:00:00.000Z');
      const days = Array.from({ length: 16 }, (_, i) =>
        day(new Date(start + i * 86_400_000).toISOString().slice(0, 10), 0, 0, 1),
      );
      l.pools[HOT] = { ...hotPool(), days };
    };
    const edits: [string, (l: PressureLedger) => void, string][] = [
      ['negative', (l) => void (first(l).refusedGpuMinutes = -5), 'refusedGpuMinutes'],
      ['huge', (l) => void (first(l).peakWanted = 1e300), 'peakWanted'],
      ['fraction', (l) => void (first(l).quota = 8.5), 'quota'],
      [
        'duplicated day',
        (l) => void ((hotDays(l)[1] ?? first(l)).day = first(l).day),
        'days[1].day',
      ],
      ['oversized', sixteen, `${HOT}.days: Too big`],
      [
        'another pool under the key',
        (l) => l.pools[HOT] && void (l.pools[HOT].region = 'europe-west4'),
        HOT,
      ],
    ];
    for (const [what, edit, field] of edits) {
      const dir = join(tmp, `state-edited-${what.replaceAll(' ', '-')}`);
      const store = createFileStateStore({ dir });
      await store.recordRun(
        'hot',
        quietRun('run-e', AT, { pressure: { at: AT, pools: { [HOT]: hotPool() } } }),
      );
      await store.close();
      const file = join(dir, 'hot.json');
      const doc = JSON.parse(readFileSync(file, 'utf8')) as Doc;
      const ledger = doc.runs[0]?.pressure;
      if (!ledger) throw new Error('no ledger');
      edit(ledger);
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      writeFileSync(file, text);
      const r = await recommend(policy('p.yaml'), dir, '--at', AT);
      expect(r.code, what).toBe(1);
      expect(r.stdout, what).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, what).toHaveLength(1);
      expect(lines[0], what).toMatch(/^error: Unreadable state file /);
      expect(lines[0], what).toContain(field);
      expect(readFileSync(file, 'utf8'), what).toBe(text);
    }
  });

  it('--json: the same, with what a request would ask under maxIncrease', async () => {
    const p = policy(
      'q.yaml',
      'quotaRequests: {enabled: true, maxIncrease: 2, contactEmail: ops@example.com}\n',
    );
    const r = await recommend(p, stateDir, '--at', AT, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      projectsWithoutHistory: string[];
      pools: {
        key: string;
        status: string;
        recommended: number | null;
        wouldFile: number | null;
      }[];
    };
    expect(out.projectsWithoutHistory).toEqual(['never']);
    const hot = out.pools.find((x) => x.key === 'hot/us-central1/nvidia-l4/zonal');
    expect(hot).toMatchObject({ status: 'recommend', recommended: 12, wouldFile: 10 });
    expect(out.pools.filter((x) => x.recommended !== null)).toHaveLength(1);
  });

  it('shows the request a pool has, and files nothing while it is pending or within the cooldown after a decision', async () => {
    const dir = join(tmp, 'state-requests');
    const store = createFileStateStore({ dir });
    const days = ['2026-11-26', '2026-11-27', '2026-11-28', '2026-11-29'];
    const key = 'hot/us-central1/nvidia-l4/zonal';
    const name = 'projects/hot/locations/global/quotaPreferences/by-hand';
    const request = {
      name,
      quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
      preferredValue: 16,
      from: 8,
      filedAt: '2026-11-28T09:00:00.000Z',
      by: 'found' as const,
      state: 'pending' as const,
      decidedAt: null,
      grantedValue: null,
      stateDetail: '',
      traceId: '',
    };
    const ledger = (req: typeof request | Record<string, unknown>): PressureLedger =>
      ({
        at: AT,
        pools: {
          [key]: pool(
            'hot',
            'us-central1',
            days.map((d) => day(d, 300, 900, 12)),
          ),
        },
        requests: { [key]: req },
      }) as PressureLedger;
    await store.recordRun('hot', quietRun('run-p', AT, { pressure: ledger(request) }));
    const p = policy(
      'q-req.yaml',
      'quotaRequests: {enabled: true, maxIncrease: 2, contactEmail: ops@example.com}\n',
    );
    type Out = {
      pools: { key: string; wouldFile: number | null; request: { state: string } | null }[];
    };
    const hotOf = (o: Out) => o.pools.find((x) => x.key === key);

    const pendingJson = await recommend(p, dir, '--at', AT, '--json');
    expect(pendingJson.code).toBe(0);
    expect(hotOf(JSON.parse(pendingJson.stdout) as Out)).toMatchObject({
      wouldFile: null,
      request: { name, state: 'pending', preferredValue: 16, by: 'found' },
    });
    const pending = await recommend(p, dir, '--at', AT);
    expect(pending.stdout).toContain(
      `  request: ${name} for 16 (filed by someone else, found 2026-11-28T09:00:00.000Z): pending at Google`,
    );
    expect(pending.stdout).toContain(
      '  recommended quota: 12 (no request now: a request is pending',
    );
    expect(pending.stdout).not.toContain('a request would ask');

    // Denied two days ago: none within the 7 days of the cooldown, and Google's word is shown.
    await store.close();
    const dirDenied = join(tmp, 'state-requests-denied');
    const deniedStore = createFileStateStore({ dir: dirDenied });
    await deniedStore.recordRun(
      'hot',
      quietRun('run-d', AT, {
        pressure: ledger({
          ...request,
          by: 'governor',
          state: 'denied',
          decidedAt: '2026-11-28T12:00:00.000Z',
          grantedValue: 8,
          stateDetail: 'Not enough capacity',
        }),
      }),
    );
    await deniedStore.close();
    const denied = await recommend(p, dirDenied, '--at', AT);
    expect(denied.stdout).toContain(
      `  request: ${name} for 16 (filed by the governor 2026-11-28T09:00:00.000Z): denied 2026-11-28T12:00:00.000Z, granted 8: Not enough capacity`,
    );
    expect(denied.stdout).toContain(
      '  recommended quota: 12 (no request now: the last request was denied at 2026-11-28T12:00:00.000Z: none within 7 days of a decision)',
    );
    const deniedJson = JSON.parse(
      (await recommend(p, dirDenied, '--at', AT, '--json')).stdout,
    ) as Out;
    expect(hotOf(deniedJson)).toMatchObject({ wouldFile: null, request: { state: 'denied' } });
  });

  it("a request another project's state tracks for a pool is left out: the pool's own says what a run files", async () => {
    // A run of a project reads only the requests of its own pools (src/reconcile/quota-requests.ts),
    // so one that another project's state names for them holds no request back.
    const dir = join(tmp, 'state-foreign-request');
    const store = createFileStateStore({ dir });
    await store.recordRun(
      'hot',
      quietRun('run-h', AT, { pressure: { at: AT, pools: { [HOT]: hotPool() } } }),
    );
    const stray = hotRequest({ name: 'projects/hot/locations/global/quotaPreferences/stray' });
    await store.recordRun(
      'fresh',
      quietRun('run-f', AT, { pressure: { at: AT, pools: {}, requests: { [HOT]: stray } } }),
    );
    await store.close();
    const p = policy(
      'q-foreign-req.yaml',
      'quotaRequests: {enabled: true, maxIncrease: 2, contactEmail: ops@example.com}\n',
    );
    const r = await recommend(p, dir, '--at', AT, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      pools: { key: string; wouldFile: number | null; request: unknown }[];
    };
    expect(out.pools.find((x) => x.key === HOT)).toMatchObject({ wouldFile: 10, request: null });
    expect(r.stderr).toContain(
      `warning: the state of fresh tracks quota requests of other projects' pools (${HOT}): left out`,
    );
  });

  it("a pool whose quota the policy sets: says a request is filed only below Google's quota", async () => {
    const p = policy(
      'q-set.yaml',
      'pools: [{region: us-central1, quota: 8}]\nquotaRequests: {enabled: true, maxIncrease: 2, contactEmail: ops@example.com}\n',
    );
    const r = await recommend(p, stateDir, '--at', AT);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "recommended quota: 12 (pools[].quota sets this pool to 8; a request is filed only if Google's quota is below 10 when the run files it)",
    );
    expect(r.stdout).not.toContain('a request would ask');
  });

  it('--days narrows the window; bad flags and policies exit 2 with a clear message', async () => {
    const p = policy('d.yaml');
    const narrow = await recommend(p, stateDir, '--at', AT, '--days', '1', '--json');
    expect(narrow.code).toBe(0);
    expect(JSON.parse(narrow.stdout).pools[1]).toMatchObject({ status: 'too-little-history' });
    for (const bad of [
      ['--days', '0'],
      ['--days', '15'],
      ['--days', 'many'],
      // Number() would read these as 10, 5, 5 and 0: a whole number is digits.
      ['--days', '1e1'],
      ['--days', '0x5'],
      ['--days', ' 5'],
      ['--days', ''],
      ['--at', 'yesterday'],
    ]) {
      // Each flag's refusal once as a process, the others in this process (`main`): the same
      // refusal, before anything is read, without a start of Node each.
      const r =
        bad[1] === '0' || bad[0] === '--at'
          ? await recommend(p, stateDir, ...bad)
          : await cliIn(
              { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
              ...['quota', 'recommend', '--policy', p, '--state-dir', stateDir, ...bad],
            );
      expect(r.code, bad.join(' ')).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const badPolicy = policy('bad.yaml', 'quotaRequests: {enabled: true}\n');
    const r = await recommend(badPolicy, stateDir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('quotaRequests.contactEmail');
  });

  it("a project governed per region: its regional units' ledgers, the newest per pool, cut to their region", async () => {
    const dir = join(tmp, 'split-state');
    const store = createFileStateStore({ dir });
    const days = ['2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30'];
    const older = new Date(Date.parse(AT) - 3_600_000).toISOString();
    const ledger = (at: string, region: string, atBudget: number): PressureLedger => ({
      at,
      pools: {
        [`split-proj/${region}/nvidia-l4/zonal`]: pool(
          'split-proj',
          region,
          days.map((d) => day(d, atBudget, atBudget * 3, 12)),
        ),
      },
    });
    const record = (runId: string, pressure: PressureLedger) =>
      quietRun(runId, pressure.at, { pressure });
    // The project's own ledger from before the split, older than its us-central1 unit's.
    await store.recordRun('split-proj', record('run-whole', ledger(older, 'us-central1', 10)));
    await store.recordRun(
      'split-proj@us-central1',
      record('run-us', ledger(AT, 'us-central1', 300)),
    );
    // A regional ledger carrying another region's pool brings nothing of it in.
    const stray = ledger(AT, 'europe-west4', 0);
    stray.pools['split-proj/asia-east1/nvidia-l4/zonal'] = pool('split-proj', 'asia-east1', []);
    await store.recordRun('split-proj@europe-west4', record('run-eu', stray));
    const out = (await recommendSplit(store, dir, 'split.yaml')) as {
      projectsWithoutHistory: string[];
      pools: { key: string; status: string; minutesAtBudget: number }[];
    };
    expect(out.projectsWithoutHistory).toEqual([]);
    expect(out.pools.map((p) => [p.key, p.status, p.minutesAtBudget])).toEqual([
      ['split-proj/europe-west4/nvidia-l4/zonal', 'no-pressure', 0],
      ['split-proj/us-central1/nvidia-l4/zonal', 'recommend', 1200],
    ]);
  });

  it("passes over a ledger dated after now, in the project's records and in its units'", async () => {
    const dir = join(tmp, 'split-future');
    const store = createFileStateStore({ dir });
    const days = ['2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30'];
    const older = new Date(Date.parse(AT) - 3_600_000).toISOString();
    const ledger = (at: string, atBudget: number): PressureLedger => ({
      at,
      pools: {
        'split-proj/us-central1/nvidia-l4/zonal': pool(
          'split-proj',
          'us-central1',
          days.map((d) => day(d, atBudget, atBudget * 3, 12)),
        ),
      },
    });
    // Each side's newest record carries a ledger a wrong clock dated in 2099, showing no pressure.
    const forged = ledger('2099-01-01T00:00:00.000Z', 0);
    // The project's own real ledger is older than its unit's: the unit's is the one shown.
    const newer = new Date(Date.parse(AT) - 1_800_000).toISOString();
    for (const [unit, at, atBudget] of [
      ['split-proj', older, 10],
      ['split-proj@us-central1', newer, 300],
    ] as const) {
      await store.recordRun(
        unit,
        quietRun(`run-${unit}-real`, at, { pressure: ledger(at, atBudget) }),
      );
      await store.recordRun(unit, quietRun(`run-${unit}-forged`, AT, { pressure: forged }));
    }
    const out = (await recommendSplit(store, dir, 'split-future.yaml')) as {
      pools: { key: string; status: string; minutesAtBudget: number }[];
    };
    // The unit's real ledger, the newest that is not from the future.
    expect(out.pools.map((p) => [p.key, p.status, p.minutesAtBudget])).toEqual([
      ['split-proj/us-central1/nvidia-l4/zonal', 'recommend', 1200],
    ]);
  });

  it("against the emulator, judges as of the emulator's clock, on which the runs recorded", async () => {
    // The runs of the emulator's fleet date their records on its virtual clock (here AT), which
    // may be days or years from the wall clock; `status --org` reads them on that clock too.
    const emulator = await startEmulator({
      speed: 'manual',
      fleet: { start: AT, warmupMinutes: 1, projects: [{ id: 'clock-project', services: [] }] },
    });
    try {
      const args = ['quota', 'recommend', '--policy', policy('e.yaml'), '--state-dir', stateDir];
      const env = { GOVERNOR_EMULATOR_ADMIN: `http://127.0.0.1:${emulator.adminPort}` };
      const r = await governor([...args, '--json'], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { at: string; pools: { key: string; status: string }[] };
      expect(out.at).toBe(AT);
      expect(out.pools.find((p) => p.key === 'hot/us-central1/nvidia-l4/zonal')?.status).toBe(
        'recommend',
      );
      // --at still wins.
      const at = '2026-12-30T00:00:00.000Z';
      const later = await governor([...args, '--json', '--at', at], env);
      expect((JSON.parse(later.stdout) as { at: string }).at).toBe(at);
    } finally {
      await emulator.stop();
    }
  });

  it('quotaRequests present but not enabled: nothing a request would ask, and says requests are off', async () => {
    const p = policy(
      'q-off.yaml',
      'quotaRequests: {enabled: false, maxIncrease: 2, contactEmail: ops@example.com}\n',
    );
    const text = await recommend(p, stateDir, '--at', AT);
    expect(text.code).toBe(0);
    // The recommendation alone: no request, and no reason why none is filed now.
    expect(text.stdout).toMatch(/^ {2}recommended quota: 12$/m);
    expect(text.stdout).toContain('Nothing was filed: quota requests are off in this policy');
    const json = await recommend(p, stateDir, '--at', AT, '--json');
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout) as { pools: { key: string; wouldFile: number | null }[] };
    expect(out.pools.map((x) => x.wouldFile)).toEqual([null, null, null]);
  });

  it('says what a request would ask: the recommendation itself, or less when maxIncrease caps it', async () => {
    const enabled = (name: string, maxIncrease: number) =>
      policy(
        name,
        `quotaRequests: {enabled: true, maxIncrease: ${maxIncrease}, contactEmail: ops@example.com}\n`,
      );
    // The quota is 8 and the recommendation 12: 4 above it is all of it, 2 above it is 10.
    const whole = await recommend(enabled('q-whole.yaml', 4), stateDir, '--at', AT);
    expect(whole.code).toBe(0);
    expect(whole.stdout).toMatch(/^ {2}recommended quota: 12 \(a request would ask this\)$/m);
    const capped = await recommend(enabled('q-capped.yaml', 2), stateDir, '--at', AT);
    expect(capped.code).toBe(0);
    expect(capped.stdout).toMatch(
      /^ {2}recommended quota: 12 \(a request would ask 10: quotaRequests\.maxIncrease\)$/m,
    );
  });

  it('a pool in a region the policy no longer lists: recommended, but no request, since a run files none there', async () => {
    const p = policy(
      'q-regions.yaml',
      'regions: [europe-west4]\nquotaRequests: {enabled: true, maxIncrease: 4, contactEmail: ops@example.com}\n',
    );
    const text = await recommend(p, stateDir, '--at', AT);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^ {2}recommended quota: 12 \(no request now: the policy does not govern us-central1\)$/m,
    );
    const json = await recommend(p, stateDir, '--at', AT, '--json');
    const out = JSON.parse(json.stdout) as { pools: { key: string; wouldFile: number | null }[] };
    expect(out.pools.find((x) => x.key === HOT)?.wouldFile).toBeNull();
  });

  it('shows a request from the state on one line, control characters as spaces, and -1 as unlimited', async () => {
    // The state is anyone's to edit, and the state detail is Google's words: a terminal escape or
    // a line break in either must not act on the terminal, nor start a line of its own.
    const dir = join(tmp, 'state-hostile-request');
    const store = createFileStateStore({ dir });
    await store.recordRun(
      'hot',
      quietRun('run-x', AT, {
        pressure: {
          at: AT,
          pools: { [HOT]: hotPool() },
          requests: {
            [HOT]: hotRequest({
              // "If set to -1, it means the value is 'unlimited'" (QuotaConfig.preferred_value,
              // https://cloud.google.com/php/docs/reference/cloud-quotas/latest/V1.QuotaConfig).
              preferredValue: -1,
              filedAt: '2026-11-20T09:00:00.000Z',
              by: 'governor',
              state: 'denied',
              decidedAt: '2026-11-21T09:00:00.000Z',
              grantedValue: 8,
              stateDetail: 'Not enough\u001b[2J capacity\r\nwhy: forged',
            }),
          },
        },
      }),
    );
    await store.close();
    const r = await recommend(policy('q-hostile.yaml'), dir, '--at', AT);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '  request: projects/hot/locations/global/quotaPreferences/by-hand for unlimited (filed by the governor 2026-11-20T09:00:00.000Z): denied 2026-11-21T09:00:00.000Z, granted 8: Not enough [2J capacity why: forged\n',
    );
    expect(r.stdout).not.toMatch(/[^\P{Cc}\n]/u);
    expect(r.stdout).not.toMatch(/^why: forged/m);
  });

  it('a decision dated after now is shown dated now, as a run dates it, and holds filing for the cooldown from now', async () => {
    // A wrong clock or a hand edit: kept as written, a decision in 2099 would hold every request
    // of the pool back until after 2099 (src/core/quota-requests.ts, redateDecisions).
    const dir = join(tmp, 'state-future-decision');
    const store = createFileStateStore({ dir });
    const name = 'projects/hot/locations/global/quotaPreferences/later';
    await store.recordRun(
      'hot',
      quietRun('run-future', AT, {
        pressure: {
          at: AT,
          pools: { [HOT]: hotPool() },
          requests: {
            [HOT]: hotRequest({
              name,
              filedAt: '2026-11-20T09:00:00.000Z',
              by: 'governor',
              state: 'denied',
              decidedAt: '2099-01-01T00:00:00.000Z',
              grantedValue: 8,
            }),
          },
        },
      }),
    );
    await store.close();
    const p = policy(
      'q-future.yaml',
      'quotaRequests: {enabled: true, maxIncrease: 2, contactEmail: ops@example.com}\n',
    );
    const r = await recommend(p, dir, '--at', AT);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `  request: ${name} for 16 (filed by the governor 2026-11-20T09:00:00.000Z): denied ${AT}, granted 8\n`,
    );
    expect(r.stdout).toContain(
      `  recommended quota: 12 (no request now: the last request was denied at ${AT}: none within 7 days of a decision)\n`,
    );
    expect(r.stdout).not.toContain('2099');
  });
});
