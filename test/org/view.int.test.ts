import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { main } from '../../src/cli/main.js';
import { discoveryKey } from '../../src/core/discovery.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { RunRecord } from '../../src/ports/index.js';
import type { OrgView } from '../../src/org/view.js';
import { startEmulator } from '../../src/emulator/index.js';
import { quietRun, testFleet } from '../support/fixtures.js';

/**
 * `governor status --org`: every unit from the state store alone (the CLI with a file store):
 * pools, pressure, refused estimate, last run, failures, stuck units.
 */
const NOW = Date.now();
const ago = (min: number) => new Date(NOW - min * 60_000).toISOString();
const record = (id: string, minAgo: number, extra: Partial<RunRecord> = {}): RunRecord =>
  quietRun(id, ago(minAgo), extra);
const pool = (budget: number | null, demand: number) => ({
  budget,
  caps: Math.min(budget ?? demand, demand),
  demand,
  inUse: demand,
  status: 'ok',
});

let dir: string;
let policyFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'org-view-'));
  const store = createFileStateStore({ dir });
  await store.saveDiscovery({
    key: 'k',
    foundAt: ago(5),
    projects: ['calm-proj', 'hot-proj', 'failing-proj', 'stale-proj', 'never-proj', 'dead-proj'],
  });
  await store.recordRun(
    'calm-proj',
    record('r1', 3, { pools: { 'calm-proj/us-central1/nvidia-l4/zonal': pool(8, 2) } }),
  );
  await store.recordRun(
    'hot-proj',
    record('r1', 4, { pools: { 'hot-proj/us-central1/nvidia-l4/zonal': pool(8, 11) } }),
  );
  await store.recordRun(
    'failing-proj',
    record('r1', 20, { pools: { 'failing-proj/us-central1/nvidia-l4/zonal': pool(4, 1) } }),
  );
  await store.recordRun(
    'failing-proj',
    record('r2', 10, { outcome: 'failed', error: '1 write failed' }),
  );
  await store.recordRun(
    'failing-proj',
    record('r3', 2, { outcome: 'lease-held', error: 'lease held' }),
  );
  await store.recordRun('stale-proj', record('r1', 90));
  await store.recordRun('dead-proj', record('r1', 1));
  // A run that died holding its lease: expired, still there.
  await store.acquireLease('dead-proj', 'gone', 60_000, ago(10));
  await store.close();
  policyFile = join(dir, 'policy.json');
  await writeFile(
    policyFile,
    JSON.stringify({
      version: 1,
      discovery: { organization: '1' },
      fanout: { topic: 'projects/p/topics/work' },
    }),
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function status(
  args: string[],
  at = { policy: policyFile, dir },
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(
    ['status', '--org', '--policy', at.policy, '--state-dir', at.dir, ...args],
    {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: {},
    },
  );
  return { code, out, err };
}

/** `governor status --org` on another state folder and policy, which must answer 0: its stdout. */
async function statusOk(args: string[], at: { policy: string; dir: string }): Promise<string> {
  const { code, out, err } = await status(args, at);
  expect(code, err).toBe(0);
  return out;
}

describe('governor status --org', () => {
  it('summarises every unit as JSON for tooling', async () => {
    const { code, out } = await status(['--json']);
    expect(code).toBe(0);
    const view = JSON.parse(out) as OrgView;
    expect(view.units.map((u) => u.project)).toEqual([
      'calm-proj',
      'dead-proj',
      'failing-proj',
      'hot-proj',
      'never-proj',
      'stale-proj',
    ]);
    const by = new Map(view.units.map((u) => [u.project, u]));
    expect(by.get('hot-proj')?.pools[0]).toMatchObject({ pressure: 1.38, refusedEstimate: 3 });
    expect(by.get('calm-proj')?.pools[0]).toMatchObject({ pressure: 0.25, refusedEstimate: 0 });
    expect(by.get('failing-proj')).toMatchObject({
      failingRuns: 2,
      failedRuns: 2,
      lastError: 'lease held',
    });
    // Pools come from the last run that planned them.
    expect(by.get('failing-proj')?.pools).toHaveLength(1);
    expect(by.get('stale-proj')?.stuck).toMatch(/last run \d+ s ago/);
    expect(by.get('never-proj')?.stuck).toBe('no run recorded');
    expect(by.get('dead-proj')?.stuck).toMatch(/lease expired .* is still held/);
    expect(by.get('calm-proj')?.stuck).toBeNull();
    expect(view.totals).toEqual({
      units: 6,
      ok: 2,
      failing: 1,
      stuck: 3,
      pools: 3,
      poolsUnderPressure: 1,
      refusedEstimate: 3,
    });
  });

  it('prints what needs a look, and the pools under pressure', async () => {
    const { code, out } = await status([]);
    expect(code).toBe(0);
    expect(out).toMatch(/6 unit\(s\), 2 ok, 1 failing, 3 stuck/);
    expect(out).toMatch(/failing-proj: last run lease-held \d+ s ago; 2 failed in a row/);
    expect(out).toMatch(/never-proj: never ran; stuck: no run recorded/);
    expect(out).toMatch(/hot-proj\/us-central1\/nvidia-l4\/zonal: 1\.38 \(demand 11, budget 8/);
    expect(out).not.toMatch(/calm-proj:/);
  });

  it('says when the projects were found, and whether that result is out of date', async () => {
    // The units come from the kept discovery; a search that keeps failing leaves it in use, so
    // its age is part of what the view shows.
    const here = await mkdtemp(join(tmpdir(), 'org-view-discovery-'));
    try {
      const file = join(here, 'policy.json');
      const raw = {
        version: 1,
        discovery: { organization: '1', cacheTtl: '1h' },
        fanout: { topic: 'projects/p/topics/work', staleAfter: '30m' },
      };
      await writeFile(file, JSON.stringify(raw));
      const discovery = parsePolicy(raw).discovery;
      if (!discovery) throw new Error('the policy has discovery');
      const key = discoveryKey(discovery);
      const viewWith = async (kept: { key: string; foundAt: string } | null) => {
        const store = createFileStateStore({ dir: here });
        if (kept) await store.saveDiscovery({ ...kept, projects: ['one-proj'] });
        await store.close();
        let out = '';
        let text = '';
        const args = ['status', '--org', '--policy', file, '--state-dir', here];
        const io = (write: (s: string) => void) => ({
          stdout: { write },
          stderr: { write: () => {} },
          env: {},
        });
        expect(
          await main(
            [...args, '--json'],
            io((s) => (out += s)),
          ),
        ).toBe(0);
        expect(
          await main(
            args,
            io((s) => (text += s)),
          ),
        ).toBe(0);
        return { view: JSON.parse(out) as OrgView, text };
      };
      const none = await viewWith(null);
      expect(none.view.discovery).toEqual({
        foundAt: null,
        ageSeconds: null,
        current: false,
        stale: null,
      });
      expect(none.text).toMatch(/no discovery kept: the dispatch has not searched yet/);
      const fresh = await viewWith({ key, foundAt: ago(20) });
      expect(fresh.view.discovery).toMatchObject({ foundAt: ago(20), current: true, stale: null });
      expect(fresh.view.discovery?.ageSeconds).toBeGreaterThanOrEqual(1200);
      expect(fresh.text).toMatch(/projects found by discovery at .* \(\d+ s ago\)\n/);
      // Past its TTL, so the next dispatch searches again, but not yet past TTL + staleAfter:
      // a dispatch may simply not have come since.
      const due = await viewWith({ key, foundAt: ago(70) });
      expect(due.view.discovery).toMatchObject({ current: true, stale: null });
      expect(due.text).not.toMatch(/out of date/);
      const old = await viewWith({ key, foundAt: ago(3 * 60) });
      expect(old.view.discovery?.stale).toMatch(
        /older than discovery\.cacheTtl .* fanout\.staleAfter/,
      );
      expect(old.text).toMatch(/projects found by discovery at .*; out of date: older than/);
      const other = await viewWith({ key: 'other settings', foundAt: ago(5) });
      expect(other.view.discovery).toMatchObject({ current: false });
      expect(other.view.discovery?.stale).toMatch(/other discovery settings/);
    } finally {
      await rm(here, { recursive: true, force: true });
    }
  });

  it('refuses --org with --snapshot, and fails on a corrupt run record, naming its unit', async () => {
    const both = await status(['--snapshot', 'x.json']);
    expect(both.code).not.toBe(0);
    expect(both.err).toMatch(/--org reads the state store/);
    await writeFile(join(dir, 'calm-proj.json'), '{"schema":1,"runs":"nope"}');
    const bad = await status([]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/calm-proj/);
    expect(bad.err).not.toMatch(/\n\s+at /);
  });
});

describe('governor status --org with a run error that quotes terminal escapes', () => {
  it("shows the error on the unit's line, its control characters as spaces", async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-escapes-'));
    try {
      const store = createFileStateStore({ dir: own });
      // A record from a shared store: any error text another writer of the store put there.
      await store.recordRun(
        'calm-proj',
        record('r1', 1, {
          outcome: 'failed',
          error: 'boom\u001b]52;c;SGk=\u0007\r\u001b[2Kfake',
        }),
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(policy, JSON.stringify({ version: 1, projects: ['calm-proj'] }));
      const out = await statusOk([], { policy, dir: own });
      expect(out).toContain('error: boom ]52;c;SGk= [2Kfake');
      expect(out).not.toMatch(/(?!\n)\p{Cc}/u);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('shows a pool key from the store on one line, its control characters as spaces', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-pool-escapes-'));
    try {
      const store = createFileStateStore({ dir: own });
      // The pools of a record are keyed by text any writer of the store may have set, as its error.
      await store.recordRun(
        'calm-proj',
        record('r1', 1, {
          pools: { 'calm-proj/us-central1\u001b[2J\r\nfake: 9.99/nvidia-l4/zonal': pool(4, 8) },
        }),
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(policy, JSON.stringify({ version: 1, projects: ['calm-proj'] }));
      const out = await statusOk([], { policy, dir: own });
      expect(out).toContain('calm-proj/us-central1 [2J fake: 9.99/nvidia-l4/zonal: 2.00');
      expect(out).not.toMatch(/(?!\n)\p{Cc}/u);
      expect(out).not.toMatch(/^fake/m);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org against the emulator', () => {
  it("shows the runs' own time, on the emulator's virtual clock, not the wall clock", async () => {
    const emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
    const here = await mkdtemp(join(tmpdir(), 'org-view-virtual-'));
    try {
      const virtualNow = emulator.now().getTime(); // 2026-11-27T12:00:00Z, days from the wall clock
      const at = (min: number) => new Date(virtualNow - min * 60_000).toISOString();
      const store = createFileStateStore({ dir: here });
      await store.saveDiscovery({
        key: 'k',
        foundAt: ago(1),
        projects: ['fresh-proj', 'late-proj', 'future-proj', 'dead-proj'],
      });
      // Started on the wall clock a minute ago (as leases are), planned at the emulator's time.
      await store.recordRun('fresh-proj', record('r1', 1, { at: at(4) }));
      await store.recordRun('late-proj', record('r1', 1, { at: at(95) }));
      // Planned "in 2099" (a wrong clock or a hand edit): it would never look stale.
      await store.recordRun('future-proj', record('r1', 1, { at: '2099-01-01T00:00:00.000Z' }));
      // A lease is on the wall clock, against the emulator too: expired nine minutes ago there,
      // though days ahead of the emulator's time.
      await store.recordRun('dead-proj', record('r1', 1, { at: at(4) }));
      await store.acquireLease('dead-proj', 'gone', 60_000, ago(10));
      await store.close();
      const file = join(here, 'policy.json');
      await writeFile(
        file,
        JSON.stringify({
          version: 1,
          discovery: { organization: '1' },
          fanout: { topic: 'projects/p/topics/work' },
        }),
      );
      let out = '';
      const run = (json: boolean) =>
        main(
          ['status', '--org', '--policy', file, '--state-dir', here, ...(json ? ['--json'] : [])],
          {
            stdout: { write: (s: string) => (out += s) },
            stderr: { write: () => {} },
            env: { ...emulator.env },
          },
        );
      expect(await run(true)).toBe(0);
      const view = JSON.parse(out) as OrgView;
      expect(view.takenAt).toBe('2026-11-27T12:00:00.000Z');
      expect(view.clock).toBe('emulator');
      const by = new Map(view.units.map((u) => [u.project, u]));
      expect(by.get('fresh-proj')?.lastRun).toMatchObject({ at: at(4), ageSeconds: 240 });
      expect(by.get('fresh-proj')?.stuck).toBeNull();
      expect(by.get('dead-proj')?.stuck).toBe(
        `a lease expired at ${new Date(NOW - 9 * 60_000).toISOString()} is still held`,
      );
      // Stale on the runs' clock, though it started a minute ago on the wall clock.
      expect(by.get('late-proj')?.stuck).toBe('last run 5700 s ago');
      expect(by.get('future-proj')?.stuck).toBe(
        'last run dated 2099-01-01T00:00:00.000Z, later than now: a wrong clock or a hand edit stamped it',
      );
      out = '';
      expect(await run(false)).toBe(0);
      expect(out).toMatch(
        /^Organisation at 2026-11-27T12:00:00\.000Z \(the emulator's virtual clock, as the runs recorded\):/,
      );
    } finally {
      await emulator.stop();
      await rm(here, { recursive: true, force: true });
    }
  });
});

describe('governor status --org judging a unit by its latest runs', () => {
  it('a unit whose last run succeeded is not failing; one whose run holds a live lease is not stuck', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-mended-'));
    try {
      const store = createFileStateStore({ dir: own });
      // Failed, then governed again: the failure is behind it.
      await store.recordRun(
        'mended-proj',
        record('r1', 10, { outcome: 'failed', error: '1 write failed' }),
      );
      await store.recordRun('mended-proj', record('r2', 5));
      // A run under way: its lease, taken a minute ago, runs for four more.
      await store.recordRun('busy-proj', record('r1', 3));
      expect((await store.acquireLease('busy-proj', 'running', 300_000, ago(1))).acquired).toBe(
        true,
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(
        policy,
        JSON.stringify({ version: 1, projects: ['busy-proj', 'mended-proj'] }),
      );
      const run = (args: string[]) => statusOk(args, { policy, dir: own });
      const view = JSON.parse(await run(['--json'])) as OrgView;
      const by = new Map(view.units.map((u) => [u.project, u]));
      // Its last error is still told, from the run that failed.
      expect(by.get('mended-proj')).toMatchObject({
        failingRuns: 0,
        failedRuns: 1,
        stuck: null,
        lastError: '1 write failed',
      });
      expect(by.get('busy-proj')).toMatchObject({ failingRuns: 0, stuck: null });
      expect(view.totals).toMatchObject({ units: 2, ok: 2, failing: 0, stuck: 0 });
      expect(await run([])).not.toMatch(/Needs a look/);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org judging pressure', () => {
  it('as the planner does: on demand ÷ budget unrounded, and a pool with demand and no budget under pressure', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-pressure-'));
    try {
      const store = createFileStateStore({ dir: own });
      await store.recordRun(
        'calm-proj',
        record('r1', 1, {
          pools: {
            // 179 ÷ 200 = 0.895: below the policy's 0.9, though it rounds to 0.90.
            'calm-proj/us-central1/nvidia-l4/zonal': { ...pool(200, 179), status: 'ok' },
            // 180 ÷ 200 = 0.9: at the policy's 0.9, which the planner counts as pressure.
            'calm-proj/europe-west4/nvidia-l4/zonal': { ...pool(200, 180), status: 'pressure' },
            // Unmanaged use takes the whole quota: every GPU of demand is refused.
            'calm-proj/us-east4/nvidia-l4/zonal': { ...pool(0, 3), status: 'pressure' },
          },
        }),
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(policy, JSON.stringify({ version: 1, projects: ['calm-proj'] }));
      const run = (args: string[]) => statusOk(args, { policy, dir: own });
      const view = JSON.parse(await run(['--json'])) as OrgView;
      expect(view.totals).toMatchObject({ pools: 3, poolsUnderPressure: 2, refusedEstimate: 3 });
      const text = await run([]);
      expect(text).toMatch(/3 pool\(s\), 2 under pressure/);
      expect(text).toContain('calm-proj/europe-west4/nvidia-l4/zonal: 0.90 (demand 180');
      expect(text).toContain(
        'calm-proj/us-east4/nvidia-l4/zonal: no budget (demand 3, budget 0, caps 0, in use 3, ~3 refused)',
      );
      expect(text).not.toContain('calm-proj/us-central1/nvidia-l4/zonal');
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org after a dry run', () => {
  it("shows the caps the last enforcing run left, not a dry run's plan, and says when only a plan is known", async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-dry-run-'));
    try {
      const store = createFileStateStore({ dir: own });
      const key = (p: string) => `${p}/us-central1/nvidia-l4/zonal`;
      // Written down to 7; then a restore dry run planned the caps from before the governor, 11.
      await store.recordRun(
        'both-proj',
        record('r1', 3, { pools: { [key('both-proj')]: { ...pool(7, 10), caps: 7 } } }),
      );
      await store.recordRun(
        'both-proj',
        record('r2', 1, {
          mode: 'dry-run',
          pools: { [key('both-proj')]: { ...pool(7, 10), caps: 11 } },
        }),
      );
      // Governed in dry run only: the plan is all there is.
      await store.recordRun(
        'trial-proj',
        record('r1', 1, {
          mode: 'dry-run',
          pools: { [key('trial-proj')]: { ...pool(4, 6), caps: 4 } },
        }),
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(
        policy,
        JSON.stringify({ version: 1, projects: ['both-proj', 'trial-proj'] }),
      );
      const view = JSON.parse(await statusOk(['--json'], { policy, dir: own })) as OrgView;
      const by = new Map(view.units.map((u) => [u.project, u]));
      expect(by.get('both-proj')?.pools).toEqual([
        expect.objectContaining({ pool: key('both-proj'), caps: 7, capsPlanned: false }),
      ]);
      expect(by.get('trial-proj')?.pools).toEqual([
        expect.objectContaining({ pool: key('trial-proj'), caps: 4, capsPlanned: true }),
      ]);
      const text = await statusOk([], { policy, dir: own });
      expect(text).toContain(`${key('both-proj')}: 1.43 (demand 10, budget 7, caps 7, in use 10,`);
      expect(text).toContain(
        `${key('trial-proj')}: 1.50 (demand 6, budget 4, caps 4 as a dry run planned them, in use 6,`,
      );
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org judging a pool whose budget is below 0', () => {
  it('counts it under pressure, as its runs alert, and no more GPUs refused than demanded', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-negative-budget-'));
    try {
      const store = createFileStateStore({ dir: own });
      // Unmanaged use of 6 GPUs in a quota of 4: a budget of -2 (core/pool.ts poolBudget), and a
      // demand of 3 the pool cannot serve at all; pool.pressure fires for it (core/conditions.ts).
      await store.recordRun(
        'over-proj',
        record('r1', 1, {
          pools: {
            'over-proj/us-central1/nvidia-l4/zonal': {
              budget: -2,
              caps: 0,
              demand: 3,
              inUse: 0,
              status: 'infeasible',
            },
          },
        }),
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(policy, JSON.stringify({ version: 1, projects: ['over-proj'] }));
      const view = JSON.parse(await statusOk(['--json'], { policy, dir: own })) as OrgView;
      expect(view.units[0]?.pools[0]).toMatchObject({ pressure: null, refusedEstimate: 3 });
      expect(view.totals).toMatchObject({ pools: 1, poolsUnderPressure: 1, refusedEstimate: 3 });
      expect(await statusOk([], { policy, dir: own })).toContain(
        'over-proj/us-central1/nvidia-l4/zonal: no budget (demand 3, budget -2, caps 0, in use 0, ~3 refused)',
      );
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org with more units than it prints', () => {
  it('prints at most 50 whole lines of each list, in order, and says how many more there are', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-many-'));
    try {
      const store = createFileStateStore({ dir: own });
      const projects = Array.from(
        { length: 53 },
        (_, i) => `many-proj-${String(i).padStart(2, '0')}`,
      );
      for (const [i, project] of projects.entries()) {
        await store.recordRun(
          project,
          record('r1', 1, {
            // Exactly 50 units need a look: all of them are printed, and nothing said of more.
            ...(i < 50 ? { outcome: 'failed', error: 'quota read failed' } : {}),
            pools: { [`${project}/us-central1/nvidia-l4/zonal`]: pool(8, 10 + i) },
          }),
        );
      }
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(policy, JSON.stringify({ version: 1, projects }));
      const lines = (await statusOk([], { policy, dir: own })).split('\n');
      const look = lines.indexOf('Needs a look:');
      const hot = lines.indexOf('Pools under pressure (demand ÷ budget):');
      expect(look).toBeGreaterThan(0);
      expect(hot).toBeGreaterThan(look);
      const unitLines = lines.slice(look + 1, hot - 1);
      expect(unitLines).toHaveLength(50);
      expect(unitLines.map((l) => l.split(':')[0])).toEqual(
        projects.slice(0, 50).map((p) => `  ${p}`),
      );
      for (const l of unitLines)
        expect(l).toMatch(
          /^ {2}many-proj-\d\d: last run failed \d+ s ago; 1 failed in a row; error: quota read failed$/,
        );
      const poolLines = lines.slice(hot + 1).filter((l) => l !== '');
      expect(poolLines).toHaveLength(51);
      // Highest demand ÷ budget first: the last unit's pool (62 ÷ 8) down to the fourth's.
      expect(poolLines[0]).toBe(
        '  many-proj-52/us-central1/nvidia-l4/zonal: 7.75 (demand 62, budget 8, caps 8, in use 62, ~54 refused)',
      );
      expect(poolLines[49]).toMatch(/^ {2}many-proj-03\/us-central1\/nvidia-l4\/zonal: 1\.63 /);
      expect(poolLines[50]).toBe('  … and 3 more (--json)');
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org with a long run error', () => {
  it('cuts it whole characters at a time, says it was cut, and skips its leading blank lines', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-long-error-'));
    try {
      const store = createFileStateStore({ dir: own });
      // An emoji is two UTF-16 units: one odd character before them puts a cut of an even count
      // between the two halves of one.
      await store.recordRun(
        'emoji-proj',
        record('r1', 1, { outcome: 'failed', error: `x${'\u{1F600}'.repeat(100)}` }),
      );
      await store.recordRun(
        'blank-proj',
        record('r1', 1, { outcome: 'failed', error: `\n\n${' '.repeat(130)}quota read failed` }),
      );
      await store.close();
      const policy = join(own, 'policy.json');
      await writeFile(
        policy,
        JSON.stringify({ version: 1, projects: ['blank-proj', 'emoji-proj'] }),
      );
      const out = await statusOk([], { policy, dir: own });
      expect(out).toMatch(
        /blank-proj: last run failed \d+ s ago; 1 failed in a row; error: quota read failed\n/,
      );
      const line = out.split('\n').find((l) => l.includes('emoji-proj:')) ?? '';
      expect(line).toMatch(/error: x(\u{1F600})+…$/u);
      expect(line).not.toMatch(/[\uD800-\uDFFF](?![\uDC00-\uDFFF])/u);
      expect(line).not.toContain('\uFFFD');
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('governor status --org with a unit whose state cannot be read', () => {
  it('shows every other unit, that one as stuck saying why, and exits 1', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-unreadable-'));
    try {
      const store = createFileStateStore({ dir: own });
      await store.recordRun('calm-proj', record('r1', 1));
      await store.recordRun(
        'hot-proj',
        record('r1', 1, { pools: { 'hot-proj/us-central1/nvidia-l4/zonal': pool(4, 8) } }),
      );
      await store.recordRun('lease-proj', record('r1', 1));
      await store.close();
      // A lease nobody can read (its runs still can), and another project's file under this
      // one's name: each stops that unit's runs, and neither may hide the other units.
      const leaseFile = join(own, 'lease-proj.json');
      const doc = JSON.parse(await readFile(leaseFile, 'utf8')) as Record<string, unknown>;
      await writeFile(leaseFile, JSON.stringify({ ...doc, lease: { holder: 5 } }));
      await writeFile(
        join(own, 'copied-proj.json'),
        JSON.stringify({
          schema: 1,
          project: 'calm-proj',
          conditions: null,
          lease: null,
          runs: [],
        }),
      );
      const policy = join(own, 'policy.json');
      await writeFile(
        policy,
        JSON.stringify({
          version: 1,
          projects: ['calm-proj', 'copied-proj', 'hot-proj', 'lease-proj'],
        }),
      );
      const text = await status([], { policy, dir: own });
      expect(text.code).toBe(1);
      expect(text.out).toMatch(
        /^Organisation at .*: 4 unit\(s\), 2 ok, 0 failing, 2 stuck; 1 pool/,
      );
      expect(text.out).toMatch(
        /\n {2}copied-proj: never ran; stuck: Unreadable state file .*copied-proj\.json: project: the file of project calm-proj, not of copied-proj/,
      );
      expect(text.out).toMatch(
        /\n {2}lease-proj: last run ok \d+ s ago; stuck: Unreadable lease in state file .*lease-proj\.json: holder: .*governor unlock/,
      );
      expect(text.out).toContain('hot-proj/us-central1/nvidia-l4/zonal: 2.00');
      expect(text.out).not.toMatch(/(?!\n)\p{Cc}/u);
      // One line for each, as any command that reads the store prints it.
      const err = text.err.split('\n');
      expect(err).toHaveLength(3);
      expect(err[0]).toMatch(
        /^error: Unreadable state file .*copied-proj\.json: .*mended or moved aside/,
      );
      expect(err[1]).toMatch(/^error: Unreadable lease in state file .*lease-proj\.json: /);
      const json = await status(['--json'], { policy, dir: own });
      expect(json.code).toBe(1);
      const view = JSON.parse(json.out) as OrgView;
      const by = new Map(view.units.map((u) => [u.project, u]));
      expect(by.get('calm-proj')).toMatchObject({ unreadable: null, stuck: null });
      expect(by.get('copied-proj')?.unreadable).toMatch(/^Unreadable state file /);
      expect(by.get('lease-proj')?.unreadable).toMatch(/^Unreadable lease /);
      expect(by.get('lease-proj')?.lastRun).toMatchObject({ outcome: 'ok' });
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('fails, showing nothing, when the store cannot be read rather than a state in it', async () => {
    const own = await mkdtemp(join(tmpdir(), 'org-view-store-fails-'));
    try {
      const store = createFileStateStore({ dir: own });
      await store.recordRun('calm-proj', record('r1', 1));
      await store.close();
      // Not a state nobody can read, but no state file at all where the store keeps one.
      await mkdir(join(own, 'odd-proj.json'));
      const policy = join(own, 'policy.json');
      await writeFile(policy, JSON.stringify({ version: 1, projects: ['calm-proj', 'odd-proj'] }));
      const r = await status([], { policy, dir: own });
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toMatch(
        /^error: State store: .*odd-proj\.json is a directory, not a regular file/,
      );
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
