import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Plan } from '../../src/core/plan.js';
import { Snapshot } from '../../src/core/snapshot.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

/**
 * Observation end to end: a fleet in the emulator → `governor snapshot` (the real process, the
 * real Google clients over gRPC) → the snapshot the fleet implies; then `governor plan` live
 * equals `governor plan --snapshot` of that snapshot. The emulator's call log must hold exactly
 * the RPCs an observation needs.
 */

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'governor-e2e-'));
const PROJECT = 'e2e-project';
const REGION = 'us-central1';

const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 30,
  idleMinutes: 0,
  warmupMinutes: 40,
  projects: [
    {
      id: PROJECT,
      pools: [
        { region: REGION, quota: 8 },
        { region: REGION, zonalRedundancy: false, quota: 3 },
      ],
      services: [
        {
          name: 'chat',
          region: REGION,
          gpu: {},
          maxInstances: 3,
          demand: 3,
          labels: { team: 'search' },
        },
        {
          name: 'embed',
          region: REGION,
          gpu: {},
          maxInstances: 4,
          revisionMaxInstances: 2,
          demand: 1,
        },
        { name: 'idle', region: REGION, gpu: {}, maxInstances: 2, demand: 0 },
        { name: 'render-a', region: REGION, gpu: {}, maxInstances: 1, minInstances: 1, demand: 0 },
        {
          name: 'asr',
          region: REGION,
          gpu: { zonalRedundancy: false },
          maxInstances: 2,
          demand: 1,
        },
        { name: 'web', region: REGION, maxInstances: 10, demand: 3 },
      ],
      workerPools: [{ name: 'encoder', region: REGION, gpu: {}, manualInstanceCount: 1 }],
      jobs: [
        {
          name: 'batch',
          region: REGION,
          gpu: { zonalRedundancy: false },
          taskCount: 2,
          parallelism: 1,
          executions: [{ startMinute: -5, taskMinutes: 60 }],
        },
      ],
    },
  ],
};

const policyFile = join(tmp, 'policy.yaml');
writeFileSync(
  policyFile,
  `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\nservices:\n  - match: { name: "render-*" }\n    managed: false\n  - match: {}\n`,
);

let emulator: RunningEmulator;

async function governor(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/governor.js', ...args], {
      env: { ...process.env, ...emulator.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual' });
});
afterAll(async () => {
  await emulator?.stop();
});

describe('observation end to end', () => {
  let snapshot: Snapshot;

  it('governor snapshot observes the fleet as it is', async () => {
    emulator.resetCalls();
    const r = await governor('snapshot', '--policy', policyFile);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    snapshot = Snapshot.parse(JSON.parse(r.stdout));
    expect(snapshot.takenAt).toBe(emulator.now().toISOString());
    const byName = new Map(snapshot.services.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(['asr', 'chat', 'embed', 'idle', 'render-a']); // web has no GPU
    expect(byName.get('chat')).toMatchObject({
      maxInstances: 3,
      gpusPerInstance: 1,
      zonalRedundancy: true,
      labels: { team: 'search' },
      reconciling: false,
      lastChangedAt: null,
    });
    expect(byName.get('chat')?.usage).toMatchObject({ current: 3, peak: 3, utilization: 1 });
    // Minute by minute: at its cap of 3 with a demand of 3, 40 requests an instance-minute, and
    // none refused (read, so zeros rather than absent).
    const chat = byName.get('chat')?.usage?.perMinute;
    expect(chat?.inUse.at(-1)).toBe(3);
    expect(chat?.served?.at(-1)).toBe(120);
    expect(chat?.refused?.length).toBe(chat?.inUse.length);
    expect(chat?.refused?.every((n) => n === 0)).toBe(true);
    // The lower of service 4 and revision 2; the revision's own max carried, the planner's ceiling.
    expect(byName.get('embed')).toMatchObject({ maxInstances: 2, revisionMaxInstances: 2 });
    expect(byName.get('chat')?.revisionMaxInstances).toBeUndefined();
    expect(byName.get('embed')?.usage).toMatchObject({ current: 1, peak: 1 });
    expect(byName.get('idle')?.usage).toMatchObject({ current: 0, peak: 0 }); // no series at all: idle
    expect(byName.get('render-a')).toMatchObject({ minInstances: 1 });
    expect(byName.get('render-a')?.usage).toMatchObject({ current: 1, utilization: 0 }); // idle
    expect(byName.get('asr')).toMatchObject({ zonalRedundancy: false });
    expect(snapshot.pools.map((p) => [p.zonalRedundancy, p.quota])).toEqual([
      [false, 3],
      [true, 8],
    ]);
    // In pool order, as the pools: without zonal redundancy first.
    expect(snapshot.unmanagedUsage).toEqual([
      {
        project: PROJECT,
        region: REGION,
        accelerator: 'nvidia-l4',
        zonalRedundancy: false,
        gpus: 1,
        source: 'job/batch',
      },
      {
        project: PROJECT,
        region: REGION,
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
        gpus: 1,
        source: 'worker-pool/encoder',
      },
    ]);
  });

  it('makes exactly the reads an observation needs: per region and page, one per metric, one per quota id', () => {
    const methods = emulator.calls().map((c) => c.method.split('/').pop());
    const count = (m: string) => methods.filter((x) => x === m).length;
    expect(count('ListServices')).toBe(1); // one region, one page of up to 100 (paging: adapter tests)
    expect(count('ListWorkerPools')).toBe(1);
    expect(count('ListExecutions')).toBe(1); // every job of the region at once
    // Instance counts, GPU utilization, requests served and requests refused.
    expect(count('ListTimeSeries')).toBe(4);
    expect(count('GetQuotaInfo')).toBe(2); // the zonal and the non-zonal quota ids
    expect(methods.length).toBe(9); // and nothing else: no per-service call, no write
    expect(emulator.writes()).toEqual([]);
  });

  it('governor plan live equals governor plan --snapshot of that snapshot', async () => {
    const file = join(tmp, 'snapshot.json');
    writeFileSync(file, JSON.stringify(snapshot));
    const live = await governor('plan', '--policy', policyFile, '--json');
    const offline = await governor('plan', '--policy', policyFile, '--snapshot', file, '--json');
    expect(live.code).toBe(0);
    expect(offline.code).toBe(0);
    expect(Plan.parse(JSON.parse(live.stdout))).toEqual(Plan.parse(JSON.parse(offline.stdout)));
  });

  it('governor status shows each pool at a glance', async () => {
    const r = await governor('status', '--policy', policyFile);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^e2e-project\/us-central1 nvidia-l4 {2}\[/m);
    expect(r.stdout).toMatch(
      /^ {2}quota 8 · reserve 0 · unmanaged 2 \(service render-a: 1, worker pool encoder: 1\) · budget 6 /m,
    );
    expect(r.stdout).toMatch(/^ {2}chat +3 +3 +\d+ +3 /m);
  });

  it('a quota the API cannot give leaves the pool unknown, and the plan raises nothing there', async () => {
    emulator.setQuota({ project: PROJECT, region: REGION, zonalRedundancy: false, quota: null });
    const r = await governor('plan', '--policy', policyFile, '--json');
    emulator.setQuota({ project: PROJECT, region: REGION, zonalRedundancy: false, quota: 3 });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: .*quota unreadable/);
    const plan = Plan.parse(JSON.parse(r.stdout));
    expect(plan.pools.find((p) => !p.zonalRedundancy)?.status).toBe('unknown-quota');
    expect(plan.alerts.some((a) => a.type === 'governor.degraded')).toBe(true);
  });
});
