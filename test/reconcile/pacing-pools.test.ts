import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { reconcileReport } from '../support/reconcile-run.js';
import { virtualTime } from '../support/virtual-time.js';

/**
 * Promise 1 orders writes within a pool: its decreases before its increases. It says nothing of
 * other pools, each its own quota. Before, the act step wrote every decrease of every pool before
 * any raise, so in a fleet where one region had more decreases than a minute of Cloud Run's write
 * quota (paced per region), every other pool's raises waited for that backlog, whole minutes, and
 * with a deadline just after the backlog's last minute they were skipped (`deadline`): services
 * refused demand waited a run or more for nothing. Now a region's raises wait for that region's
 * decreases only (its pools go on together, on one listing of it, as before).
 */

const PROJECT = 'pools-project';
const BUSY = 'asia-east1'; // first in the plan's order: its decreases are listed first
const SMALL = 'us-central1';
/** How long a write's long-running operation takes, in virtual time. */
const WRITE_MS = 5_000;

/**
 * With `busyRaise`, the busy pool also has a raise, funded by its own paced decreases; without
 * `smallIdle`, the small pool's raise needs no decrease.
 */
function model({ busyRaise = false, smallIdle = true } = {}): FleetModel {
  const idle = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      name: `busy-idle-${i}`,
      region: BUSY,
      gpu: {},
      maxInstances: 3,
      demand: { constant: 0 },
    }));
  return new FleetModel(
    validateFleet({
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      idleMinutes: 0,
      projects: [
        {
          id: PROJECT,
          pools: [
            { region: BUSY, quota: busyRaise ? 8 : 6 },
            { region: SMALL, quota: 6 },
          ],
          services: [
            ...idle(6),
            ...(busyRaise
              ? [
                  {
                    name: 'busy-busy',
                    region: BUSY,
                    gpu: {},
                    maxInstances: 1,
                    demand: { constant: 4 },
                  },
                ]
              : []),
            // The small pool: one decrease that funds one raise; an unmanaged service beside.
            ...(smallIdle
              ? [
                  {
                    name: 'small-idle',
                    region: SMALL,
                    gpu: {},
                    maxInstances: 3,
                    demand: { constant: 0 },
                  },
                ]
              : []),
            {
              name: 'small-busy',
              region: SMALL,
              gpu: {},
              maxInstances: 1,
              demand: { constant: 4 },
            },
            { name: 'ext-small', region: SMALL, gpu: {}, maxInstances: 1, demand: { constant: 0 } },
          ],
        },
      ],
    }),
  );
}

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [BUSY, SMALL],
  defaults: { max: 4, headroom: 0, scaleDownDelay: '0s' },
  services: [{ match: { name: 'ext-*' }, managed: false }, { match: {} }],
  limits: { writesPerMinute: 2, writeConcurrency: 2 },
});

/** Sum of the caps (GPUs) of the small pool's services, as the model holds them now. */
function smallPoolCaps(m: FleetModel): number {
  return m
    .listServices(PROJECT)
    .filter((s) => s.region === SMALL)
    .reduce((sum, s) => sum + (s.maxInstances ?? 0), 0);
}

/**
 * One run over the model, writes taking WRITE_MS of virtual time each; `other` is called after
 * each of the governor's writes and each listing of the small region (another writer's hook).
 */
async function run(
  other: (event: { kind: 'write' | 'list'; name?: string; m: FleetModel }) => void,
  deadlineMs: number,
  shape: Parameters<typeof model>[0] = {},
  limits = policy.limits,
) {
  const m = model(shape);
  const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
  const start = Date.parse('2026-11-27T13:00:00Z');
  const time = virtualTime(start);
  const writes: { name: string; region: string; at: number; to: number }[] = [];
  const overAfterWrite: number[] = [];
  const ports: CloudRunPort = {
    ...sim.run,
    listServices: async (project, region) => {
      const listed = await sim.run.listServices(project, region);
      if (region === SMALL) other({ kind: 'list', m });
      return listed;
    },
    updateMaxInstances: async (u) => {
      const at = time.now();
      await time.sleep(WRITE_MS);
      const written = await sim.run.updateMaxInstances(u);
      writes.push({ name: u.name, region: u.region, at, to: u.maxInstances });
      // Promise 1, after every single write: the small pool within its quota of 6.
      if (u.region === SMALL) overAfterWrite.push(Math.max(0, smallPoolCaps(m) - 6));
      other({ kind: 'write', name: u.name, m });
      return written;
    },
  };
  const report = await reconcileReport(
    { ...policy, limits },
    {
      ports: { ...sim, run: ports },
      clock: () => m.now,
      wallClock: time.now,
      sleep: time.sleep,
    },
    { runId: 'pools', deadlineMs, writerId: 'me' },
  );
  return { m, report, writes, overAfterWrite, start, time };
}

const byName = <T extends { name: string }>(ws: readonly T[], name: string): T | undefined =>
  ws.find((w) => w.name === name);

describe("a region's raises wait for its own decreases only", () => {
  it("are not held back by another region's decrease backlog", async () => {
    // Deadline 62 s: the busy region's decreases take slots at 0 and 60 s (2 a minute).
    const { report, writes, overAfterWrite, start, time } = await run(() => {}, 62_000);
    const planned = report.plan?.changes ?? [];
    expect(planned.filter((c) => c.region === BUSY && c.to < c.from)).toHaveLength(6);
    expect(byName(planned, 'small-busy')).toMatchObject({ from: 1, to: 4 });
    // The small pool's raise went out just after its own decrease, before the busy region's
    // second minute: not after the whole backlog (then with less than a write left: `deadline`).
    expect(byName(report.writes, 'small-idle')?.cause).toBe('written');
    expect(byName(report.writes, 'small-busy')).toMatchObject({ cause: 'written', written: 4 });
    const idleAt = byName(writes, 'small-idle')?.at ?? NaN;
    const raiseAt = byName(writes, 'small-busy')?.at ?? NaN;
    expect(raiseAt).toBeGreaterThanOrEqual(idleAt + WRITE_MS);
    expect(raiseAt).toBeLessThan(start + 60_000);
    // The busy region is paced as before: 2 a minute, the rest skipped for the deadline.
    const busy = report.writes.filter((w) => w.region === BUSY);
    expect(busy.filter((w) => w.cause === 'written')).toHaveLength(4);
    expect(busy.filter((w) => w.cause === 'deadline')).toHaveLength(2);
    expect(overAfterWrite.every((o) => o === 0)).toBe(true);
    expect(time.now() - start).toBeLessThanOrEqual(62_000 + WRITE_MS);
    expect(report.outcome).toBe('ok');
  });

  it('sees another writer that raised a cap in the pool between its decreases and its raise', async () => {
    // The unmanaged service goes from 1 to 2 just after the small pool's decrease: the raise
    // has room up to 6 − 2 (unmanaged) − small-idle's cap, not the 4 planned.
    const { report, overAfterWrite } = await run(({ kind, name, m }) => {
      if (kind === 'write' && name === 'small-idle')
        m.update({ project: PROJECT, region: SMALL, name: 'ext-small' }, { maxInstances: 2 });
    }, 62_000);
    const idle = byName(report.writes, 'small-idle');
    expect(idle?.cause).toBe('written');
    const room = 6 - 2 - (idle?.written ?? NaN);
    expect(room).toBeLessThan(4);
    expect(byName(report.writes, 'small-busy')).toMatchObject({ cause: 'written', written: room });
    expect(overAfterWrite.every((o) => o === 0)).toBe(true);
    expect(report.outcome).toBe('ok');
  });

  it('lowers its raise back when another writer fills the pool between its fresh read and its raise', async () => {
    let lists = 0;
    const { report, m } = await run(({ kind, m }) => {
      // The second listing of the small region is the fresh read before its raise (the first
      // is the observation); just after it, the unmanaged service takes 2 more.
      if (kind === 'list' && ++lists === 2)
        m.update({ project: PROJECT, region: SMALL, name: 'ext-small' }, { maxInstances: 3 });
    }, 62_000);
    const raise = byName(report.writes, 'small-busy');
    expect(raise?.cause).toBe('written');
    // Verified on the read just after: over by the other writer's 2 GPUs, lowered back by them.
    const back = report.writes.filter((w) => w.name === 'small-busy' && w.cause === 'compensated');
    expect(back).toHaveLength(1);
    expect(back[0]?.written).toBe((raise?.written ?? NaN) - 2);
    expect(smallPoolCaps(m)).toBeLessThanOrEqual(6);
    expect(report.outcome).toBe('ok');
  });

  it("still wait for all of their own region's decreases, paced over minutes", async () => {
    // The busy pool is over its quota of 8 (6 × 3 + 1): its six decreases take its region's
    // slots at 0, 60 and 120 s, and only then may its own raise go out; the small pool's does
    // not wait for them.
    const { report, writes, m } = await run(() => {}, 200_000, { busyRaise: true });
    expect(byName(report.plan?.changes ?? [], 'busy-busy')).toMatchObject({ from: 1 });
    const lastDecreaseEnd = Math.max(
      ...writes.filter((w) => w.name.startsWith('busy-idle-')).map((w) => w.at + WRITE_MS),
    );
    expect(writes.filter((w) => w.name.startsWith('busy-idle-'))).toHaveLength(6);
    expect(byName(report.writes, 'busy-busy')?.cause).toBe('written');
    expect(byName(writes, 'busy-busy')?.at).toBeGreaterThanOrEqual(lastDecreaseEnd);
    expect(byName(writes, 'small-busy')?.at).toBeLessThan(lastDecreaseEnd - 60_000);
    const busyCaps = m
      .listServices(PROJECT)
      .filter((s) => s.region === BUSY)
      .reduce((sum, s) => sum + (s.maxInstances ?? 0), 0);
    expect(busyCaps).toBeLessThanOrEqual(8);
    expect(report.outcome).toBe('ok');
  });

  it('go out decided on their read, ahead of the decreases queued for a place in flight', async () => {
    // One write in flight at a time: the busy region's six decreases queue for it at once. The
    // small pool's raise, with no decrease of its own, is decided on a read at once; it takes the
    // first place that frees, not the seventh, so no queue widens the window after its read.
    const { report, writes, start } = await run(
      () => {},
      120_000,
      { smallIdle: false },
      { ...policy.limits, writesPerMinute: 10, writeConcurrency: 1 },
    );
    expect(byName(report.writes, 'small-busy')).toMatchObject({ cause: 'written', written: 4 });
    console.log(
      JSON.stringify(writes.map((w) => [w.name, w.at - start])),
      JSON.stringify(report.writes.map((w) => [w.name, w.cause])),
    );
    expect(byName(writes, 'small-busy')?.at).toBe(start + WRITE_MS);
    expect(writes.filter((w) => w.name.startsWith('busy-idle-'))).toHaveLength(6);
    expect(report.outcome).toBe('ok');
  });
});
