import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliIn, type CliResult } from '../support/cli-run.js';
import { Plan } from '../../src/core/plan.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import type { FleetInput } from '../../src/emulator/fleet.js';

/**
 * `governor snapshot`, then `governor plan --snapshot FILE --at <takenAt>`, plans what `governor
 * plan` plans live at the same instant (the emulator's clock paused), and says the same on
 * stderr: whoever replays a decision sees what the governor saw, what it could not read included.
 */

const tmp = mkdtempSync(join(tmpdir(), 'governor-replay-'));
const A = 'gpu-governor.dev/';

/** Two projects, three regions, and every kind of GPU holder an observation counts. */
function fleet(): FleetInput {
  return {
    start: '2026-11-27T12:00:00Z',
    startupSeconds: 30,
    idleMinutes: 1,
    warmupMinutes: 40,
    projects: [
      {
        id: 'proj-alpha',
        pools: [
          { region: 'us-central1', quota: 10 },
          { region: 'us-central1', zonalRedundancy: false, quota: 4 },
          { region: 'europe-west4', quota: 6 },
        ],
        services: [
          {
            name: 'chat',
            region: 'us-central1',
            gpu: {},
            maxInstances: 2,
            demand: 5, // above its cap: 429s every minute
            labels: { team: 'search' },
            annotations: {
              [`${A}last-changed`]: '2026-11-27T11:50:00.123+01:00',
              [`${A}last-lowered`]: '2026-11-27T11:45:00Z',
              [`${A}writer`]: 'another-governor/abc',
              [`${A}original-max`]: '3',
            },
          },
          {
            name: 'embed',
            region: 'us-central1',
            gpu: {},
            maxInstances: 4,
            revisionMaxInstances: 2,
            demand: 1.5,
          },
          { name: 'unset', region: 'us-central1', gpu: {}, demand: 1 },
          { name: 'warm', region: 'us-central1', gpu: {}, maxInstances: 3, minInstances: 2 },
          { name: 'render-a', region: 'us-central1', gpu: {}, maxInstances: 1, demand: 1 },
          {
            name: 'manual',
            region: 'us-central1',
            gpu: {},
            scalingMode: 'MANUAL',
            manualInstanceCount: 2,
          },
          {
            name: 'canary',
            region: 'us-central1',
            gpu: {},
            maxInstances: 2,
            revisionMaxInstances: 2,
            demand: 1,
            noTrafficRevision: { maxInstances: 1, gpu: { zonalRedundancy: false } },
          },
          {
            name: 'split',
            region: 'us-central1',
            gpu: {},
            maxInstances: 3,
            demand: 2,
            previousRevision: { maxInstances: 2, percent: 30 },
          },
          {
            name: 'asr',
            region: 'us-central1',
            gpu: { zonalRedundancy: false },
            maxInstances: 2,
            demand: { diurnal: { base: 0, peak: 3, peakHour: 12 } },
          },
          { name: 'eu-llm', region: 'europe-west4', gpu: {}, maxInstances: 3, demand: 2.2 },
          { name: 'web', region: 'us-central1', maxInstances: 10, demand: 3 },
        ],
        workerPools: [{ name: 'encoder', region: 'us-central1', gpu: {}, manualInstanceCount: 1 }],
        jobs: [
          {
            name: 'batch',
            region: 'us-central1',
            gpu: { zonalRedundancy: false },
            taskCount: 2,
            parallelism: 1,
            executions: [{ startMinute: -5, taskMinutes: 60 }],
          },
        ],
      },
      {
        id: 'proj-beta',
        pools: [{ region: 'us-central1', quota: 5 }],
        // The logs-based metric of 429s was never defined here: refusals unknown.
        unknownMetrics: ['logging.googleapis.com/user/gpu_governor_refused_requests'],
        iam: { denied: ['run.workerpools.list', 'cloudquotas.quotas.get'] },
        services: [
          { name: 'b-one', region: 'us-central1', gpu: {}, maxInstances: 2, demand: 3 },
          { name: 'b-two', region: 'us-central1', gpu: { count: 2 }, maxInstances: 1 },
        ],
      },
    ],
  };
}

const POLICY = `version: 1
projects: [proj-alpha, proj-beta]
regions: [us-central1, europe-west4]
services:
  - match: { name: "render-*" }
    managed: false
  - match: { name: chat }
    priority: 10
    weight: 3
  - match: {}
`;

/** The command line in this process, with the emulator's environment (or none). */
function governor(env: Record<string, string>, ...argv: string[]): Promise<CliResult> {
  return cliIn({ ...env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' }, ...argv);
}

let emulator: RunningEmulator | undefined;
afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
});

/** Snapshot, then plan live and from the file at its takenAt: the outputs of each. */
async function replay(name: string, policy: string, json: boolean) {
  emulator = await startEmulator({ fleet: fleet(), speed: 'manual' });
  const policyFile = join(tmp, `${name}.policy.yaml`);
  writeFileSync(policyFile, policy);
  const taken = await governor(emulator.env, 'snapshot', '--policy', policyFile);
  expect(taken.code).toBe(0);
  const file = join(tmp, `${name}.snapshot.json`);
  writeFileSync(file, taken.stdout);
  const { takenAt } = JSON.parse(taken.stdout) as { takenAt: string };
  const out = json ? ['--json'] : [];
  const live = await governor(emulator.env, 'plan', '--policy', policyFile, ...out);
  const offline = await governor(
    {},
    'plan',
    '--policy',
    policyFile,
    '--snapshot',
    file,
    '--at',
    takenAt,
    ...out,
  );
  expect(live.code).toBe(0);
  expect(offline.code).toBe(0);
  return { taken, live, offline };
}

describe('snapshot, then plan from it', () => {
  it('plans what the live plan plans, to the last field', async () => {
    const { live, offline } = await replay('json', POLICY, true);
    const plan = Plan.parse(JSON.parse(live.stdout));
    expect(Plan.parse(JSON.parse(offline.stdout))).toEqual(plan);
    // The fleet's kinds all reached the plan: a sanity check that the comparison compares much.
    const pools = plan.pools.map((p) => `${p.project}/${p.region}/${p.zonalRedundancy}`);
    expect(pools).toEqual(
      expect.arrayContaining([
        'proj-alpha/europe-west4/true',
        'proj-alpha/us-central1/false',
        'proj-alpha/us-central1/true',
        'proj-beta/us-central1/true',
      ]),
    );
    expect(plan.services.find((s) => s.name === 'render-a')?.managed).toBe(false);
  });

  it('says on stderr what the live plan says: what could not be read, and no warning it could not make', async () => {
    // europe-west4 is no region of proj-beta: its services cannot be listed there.
    const { taken, live, offline } = await replay('partial', POLICY, false);
    expect(taken.stderr).toMatch(/proj-beta\/europe-west4: services unreadable, region skipped/);
    expect(taken.stderr).toMatch(/worker pools unreadable/);
    expect(taken.stderr).toMatch(/refused requests unreadable/);
    expect(offline.stderr).toBe(live.stderr);
    expect(offline.stdout).toBe(live.stdout);
  });
});
