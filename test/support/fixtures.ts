import { parsePolicy, type Policy, type PolicyInput } from '../../src/core/policy.js';
import type { SnapshotService, Usage, UsageMinutes } from '../../src/core/snapshot.js';
import type { ObservedContainer, ObservedService } from '../../src/core/service.js';
import type { RunRecord } from '../../src/ports/state.js';
import type { WriteResult } from '../../src/core/write-result.js';
import {
  buildScenario,
  parseScenario,
  type ScenarioInput,
  type SimulationInput,
} from '../../src/simulate/scenario.js';
import { TRACE_DIR } from '../../src/simulate/scenarios.js';
import type { FunctionResources } from '../../bench/cost.js';

/**
 * The fleets the tests share, built one way: a pool, policies that govern everything, snapshot
 * services, what the Cloud Run adapter returns, the emulator's test fleet and constant-demand
 * simulation scenarios. A fleet shaped for one test's story stays in that test.
 */

/** The pool most pure tests use: project p, us-central1, nvidia-l4 with zonal redundancy. */
export const POOL = {
  project: 'p',
  region: 'us-central1',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
} as const;

// Policies

/** A policy for project p that governs every service; `extra` overrides any top-level field. */
export function governAll(extra: Partial<PolicyInput> = {}): Policy {
  return parsePolicy({ version: 1, projects: [POOL.project], services: [{ match: {} }], ...extra });
}

/** The project of every simulation scenario (the scenario format's default). */
export const SIM_PROJECT = 'sim-project';

/** A policy that governs every service of a simulation scenario. */
export function governSimulation(extra: Partial<PolicyInput> = {}): Policy {
  return governAll({ projects: [SIM_PROJECT], ...extra });
}

// Write results

/** A write of service `a` in POOL that landed as planned; `w` sets any other field. */
export function writeResult(
  w: Partial<WriteResult> & Pick<WriteResult, 'from' | 'planned'>,
): WriteResult {
  return {
    project: POOL.project,
    region: POOL.region,
    name: 'a',
    written: w.planned,
    outcome: 'written',
    cause: 'written',
    reason: '',
    ...w,
  };
}

// Run records

/**
 * The record of an enforce run that started and ended at `at`, changed, skipped and published
 * nothing; `extra` sets any other field (the pressure ledger, an outcome, quotas).
 */
export function quietRun(runId: string, at: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId,
    startedAt: at,
    finishedAt: at,
    mode: 'enforce',
    outcome: 'ok',
    changes: 0,
    skips: 0,
    alerts: 0,
    error: null,
    ...extra,
  };
}

// Snapshot services

/**
 * A usage's per-minute evidence ending at `end` (the default sample time): instances in use each
 * minute, requests refused (429) each minute (default none), and requests served (default 100
 * per instance in use).
 */
export function minutes(
  inUse: number[],
  refused: number[] = inUse.map(() => 0),
  served: number[] = inUse.map((n) => n * 100),
  end = '2026-11-27T14:57:00Z',
): UsageMinutes {
  return {
    start: new Date(Date.parse(end) - (inUse.length - 1) * 60_000).toISOString(),
    inUse,
    served,
    refused,
  };
}

/**
 * A snapshot service in POOL: one GPU per instance, max `max`, usage `use` (sampled at
 * `use.sampledAt`, by default 2026-11-27T14:57:00Z) or unknown (`null`), changed by `more`.
 */
export function snapshotService(
  name: string,
  max: number,
  use: (Omit<Usage, 'sampledAt'> & { sampledAt?: string }) | null,
  more: Partial<SnapshotService> = {},
): SnapshotService {
  return {
    ...POOL,
    name,
    gpusPerInstance: 1,
    labels: {},
    maxInstances: max,
    minInstances: 0,
    reconciling: false,
    etag: `etag-${name}`,
    lastChangedAt: null,
    usage: use && { sampledAt: '2026-11-27T14:57:00Z', ...use },
    ...more,
  };
}

// What the Cloud Run adapter returns, for tests that feed observation and the audit directly: a
// GPU service in POOL that passes every audit rule, changed by `more`.

export function observedContainer(more: Partial<ObservedContainer> = {}): ObservedContainer {
  const gpus = more.gpus ?? 1;
  return {
    name: 'model',
    cpu: '8',
    vcpus: 8,
    memory: '32Gi',
    memoryBytes: 32 * 2 ** 30,
    gpuLimit: gpus > 0 ? String(gpus) : null,
    gpus,
    cpuIdle: false,
    startupProbe: {
      periodSeconds: 10,
      failureThreshold: 24,
      initialDelaySeconds: 0,
      timeoutSeconds: 5,
    },
    ...more,
  };
}

export function observedService(
  name: string,
  more: Partial<ObservedService> = {},
): ObservedService {
  const project = more.project ?? 'p';
  const region = more.region ?? 'us-central1';
  return {
    project,
    region,
    name,
    resourceName: `projects/${project}/locations/${region}/services/${name}`,
    gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
    labels: {},
    annotations: {},
    serviceMaxInstances: 3,
    revisionMaxInstances: null,
    serviceMinInstances: null,
    revisionMinInstances: null,
    scalingMode: 'AUTOMATIC',
    manualInstanceCount: null,
    reconciling: false,
    etag: `e-${name}`,
    generation: 1,
    observedGeneration: 1,
    updateTime: null,
    containers: [observedContainer({ name })],
    concurrency: 8,
    ...more,
  };
}

// The emulator's test fleet

export const TEST_FLEET_PROJECT = 'test-project';
export const TEST_FLEET_REGION = 'us-central1';

/**
 * A small fleet: quota 5 in the zonal L4 pool of us-central1 (one GPU of it held by a worker
 * pool), no regional quota in europe-west4 but a regionless default of 6, and quota 2 without
 * zonal redundancy. Virtual time starts at 12:00 UTC.
 */
export function testFleet() {
  return {
    start: '2026-11-27T12:00:00Z',
    startupSeconds: 30,
    idleMinutes: 0,
    warmupMinutes: 30,
    projects: [
      {
        id: TEST_FLEET_PROJECT,
        pools: [
          { region: TEST_FLEET_REGION, quota: 5 },
          { region: TEST_FLEET_REGION, zonalRedundancy: false, quota: 2 },
          { quota: 6 },
          { region: 'europe-west4', accelerator: 'nvidia-rtx-pro-6000' },
        ],
        services: [
          {
            name: 'alpha',
            region: TEST_FLEET_REGION,
            gpu: {},
            maxInstances: 2,
            demand: 2,
            labels: { team: 'a' },
          },
          { name: 'beta', region: TEST_FLEET_REGION, gpu: {}, maxInstances: 3, demand: 1 },
          { name: 'gamma', region: TEST_FLEET_REGION, gpu: {}, maxInstances: 2, demand: 0 },
          {
            name: 'delta',
            region: TEST_FLEET_REGION,
            gpu: { zonalRedundancy: false },
            maxInstances: 2,
            demand: 1,
          },
          {
            name: 'render-x',
            region: TEST_FLEET_REGION,
            gpu: {},
            maxInstances: 1,
            minInstances: 1,
            demand: 0,
          },
          { name: 'web', region: TEST_FLEET_REGION, maxInstances: 10, demand: 3 },
          { name: 'eu-model', region: 'europe-west4', gpu: {}, maxInstances: 2, demand: 1 },
        ],
        workerPools: [
          { name: 'encoder', region: TEST_FLEET_REGION, gpu: {}, manualInstanceCount: 1 },
          { name: 'cpu-worker', region: TEST_FLEET_REGION, manualInstanceCount: 2 },
        ],
      },
    ],
  };
}

// Simulation scenarios

/** A scenario of constant-demand services in one pool (no warm-up noise, instant start-up). */
export async function constantFleet(
  quota: number,
  services: { name: string; cap: number; demand: number }[],
  hours = 1,
): Promise<SimulationInput> {
  const scenario: ScenarioInput = {
    scenario: 1,
    start: '2026-11-24T00:00:00Z',
    hours,
    quota,
    startupSeconds: 0,
    idleMinutes: 0,
    warmupMinutes: 0,
    services: services.map((s) => ({
      name: s.name,
      maxInstances: s.cap,
      demand: { shape: { kind: 'constant', value: s.demand } },
    })),
  };
  return buildScenario(parseScenario(scenario), TRACE_DIR);
}

/**
 * An emulator fleet file's content: one project with one zonal L4 pool of `quota` in `region`,
 * and GPU services of constant demand, each as [name, max instances, demand]. Virtual time starts
 * at 12:00 UTC after 40 warm-up minutes; instances never idle. `project` adds to the project
 * (jobs, worker pools).
 */
export function onePoolFleet(
  id: string,
  region: string,
  quota: number,
  services: readonly (readonly [name: string, max: number, demand: number])[],
  project: Record<string, unknown> = {},
) {
  return {
    start: '2026-11-27T12:00:00Z',
    warmupMinutes: 40,
    idleMinutes: 0,
    projects: [
      {
        id,
        pools: [{ region, quota }],
        services: services.map(([name, max, demand]) => ({
          name,
          region,
          gpu: {},
          maxInstances: max,
          demand: { constant: demand },
        })),
        ...project,
      },
    ],
  };
}

/**
 * Quota 12: `idle` (4, unused) lowered to make room for two raises, svc-a and svc-b 1 → 4 (their
 * demand); `ext`, unmanaged (see {@link twoRaisesPolicy}), is what another writer raises to fill
 * the pool. An emulator fleet file's content.
 */
export function twoRaisesFleet(project: string, region: string) {
  return onePoolFleet(project, region, 12, [
    ['idle', 4, 0],
    ['svc-a', 1, 4],
    ['svc-b', 1, 4],
    ['ext', 1, 0],
  ]);
}

/** The policy of {@link twoRaisesFleet}: no headroom, a max of 4, `ext` left alone. */
export function twoRaisesPolicy(project: string, region: string) {
  return {
    version: 1,
    projects: [project],
    regions: [region],
    defaults: { headroom: 0, max: 4, scaleDownDelay: '0s' },
    services: [{ match: { name: 'ext' }, managed: false }, { match: {} }],
    limits: { writesPerMinute: 6000 },
  };
}

/**
 * Caps 14 on a quota of `quota` (12 in the chaos tests): four idle services capped 3, 3, 2, 2
 * (`idle-0` … `idle-3`) that can come down to 1, and four (`hi-0` … `hi-3`) capped at 1 that a
 * policy can raise. An emulator fleet file's content.
 */
const OVER_COMMITTED_IDLE_MAX = [3, 3, 2, 2];

/**
 * The max of each service of {@link overCommittedFleet} as the fleet starts (before any governor),
 * as the `gpu-governor.dev/original-max` annotation keeps it.
 */
export const OVER_COMMITTED_ORIGINAL_MAX: Record<string, string> = Object.fromEntries([
  ...OVER_COMMITTED_IDLE_MAX.map((max, i) => [`idle-${i}`, String(max)]),
  ...[0, 1, 2, 3].map((i) => [`hi-${i}`, '1']),
]);

export function overCommittedFleet(project: string, region: string, quota: number) {
  return {
    start: '2026-11-27T12:00:00Z',
    warmupMinutes: 40,
    idleMinutes: 0,
    projects: [
      {
        id: project,
        pools: [{ region, quota }],
        services: [
          ...OVER_COMMITTED_IDLE_MAX.map((max, i) => ({
            name: `idle-${i}`,
            region,
            gpu: {},
            maxInstances: max,
            demand: 0,
          })),
          ...[0, 1, 2, 3].map((i) => ({
            name: `hi-${i}`,
            region,
            gpu: {},
            maxInstances: 1,
            demand: 0,
          })),
        ],
      },
    ],
  };
}

/**
 * The policy the tests of {@link overCommittedFleet} govern it with: no headroom and no delay, so
 * `apply` lowers the idle services to 1 and raises hi-* to their minimum 2.
 */
export function overCommittedPolicy(project: string, region: string) {
  return {
    version: 1,
    projects: [project],
    regions: [region],
    defaults: { headroom: 0, scaleDownDelay: '0s' },
    services: [{ match: { name: 'hi-*' }, min: 2 }, { match: {} }],
    limits: { writesPerMinute: 6000, writeConcurrency: 1 },
  };
}

/**
 * How soon a run against the emulator polls a write's operation: 20 ms, not Google's 1 s
 * (GOVERNOR_EMULATOR_OPERATION_POLL). The tests' emulators finish an operation in 20 to 120 ms,
 * so at 1 s each write waited most of a second for nothing. For `createGooglePorts` in-process,
 * and as the variable for a command line.
 */
export const QUICK_POLL_MS = 20;
export const QUICK_POLL_ENV = { GOVERNOR_EMULATOR_OPERATION_POLL: `${QUICK_POLL_MS}ms` } as const;

/** The function's resources as the bench reads them: 512 MiB, 1 vCPU, a run every 5 minutes. */
export const FUNCTION_RESOURCES: FunctionResources = {
  memory: '512Mi',
  cpu: '1',
  schedule: '*/5 * * * *',
  memoryGiB: 0.5,
  vcpu: 1,
  runsPerMonth: 8640,
};
