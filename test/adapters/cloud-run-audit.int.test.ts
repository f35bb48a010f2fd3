/**
 * The container facts the fleet audit reads, through the real `@google-cloud/run` client over gRPC
 * against the emulator: what the fleet file says arrives in `ObservedService.containers` and
 * `concurrency`, and the audit judges a passing and a failing service from it.
 */
import { protos } from '@google-cloud/run';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  createCloudRunAdapter,
  toObservedContainer,
  type CloudRunAdapter,
} from '../../src/adapters/cloud-run.js';
import { auditFleet } from '../../src/core/audit.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { observedContainerFacts } from '../../src/emulator/resources.js';
import type { ObservedService } from '../../src/core/service.js';

const PROJECT = 'audit-project';
const REGION = 'us-central1';
const GiB = 2 ** 30;

const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 4 }],
      services: [
        {
          name: 'good',
          region: REGION,
          gpu: {},
          maxInstances: 2,
          cpu: '8',
          memory: '32Gi',
          concurrency: 8,
          startupProbeSeconds: 240,
          sidecars: [{ name: 'otel', cpu: '1', memory: '512Mi' }],
        },
        {
          name: 'bad',
          region: REGION,
          gpu: {},
          maxInstances: 6,
          revisionMaxInstances: 5,
          cpu: '4000m',
          memory: '8Gi',
          cpuIdle: true,
          concurrency: 0,
          startupProbeSeconds: 30,
          sidecars: [{ name: 'helper', cpu: '1', memory: '1Gi', gpus: 1 }],
        },
        {
          name: 'edge',
          region: REGION,
          gpu: {},
          maxInstances: 4,
          cpu: '4',
          memory: '16Gi',
          concurrency: 80,
        },
        { name: 'web', region: REGION, maxInstances: 10 },
      ],
    },
  ],
};

let emulator: RunningEmulator;
let adapter: CloudRunAdapter;
let services: Map<string, ObservedService>;

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual', pageSize: 50 });
  adapter = createCloudRunAdapter({ emulatorHost: emulator.host });
  services = new Map((await adapter.listServices(PROJECT, REGION)).map((s) => [s.name, s]));
});

afterAll(async () => {
  await adapter?.close();
  await emulator?.stop();
});

describe('container facts through the Cloud Run client', () => {
  it('maps a well configured service: limits, cpu_idle, startup probe, concurrency', () => {
    const good = services.get('good');
    expect(good?.concurrency).toBe(8);
    expect(good?.containers).toEqual([
      {
        name: 'good',
        cpu: '8',
        vcpus: 8,
        memory: '32Gi',
        memoryBytes: 32 * GiB,
        gpuLimit: '1',
        gpus: 1,
        cpuIdle: false,
        startupProbe: {
          periodSeconds: 10,
          failureThreshold: 24,
          initialDelaySeconds: 0,
          timeoutSeconds: 10,
        },
      },
      {
        name: 'otel',
        cpu: '1',
        vcpus: 1,
        memory: '512Mi',
        memoryBytes: 512 * 2 ** 20,
        gpuLimit: null,
        gpus: 0,
        cpuIdle: false,
        startupProbe: null,
      },
    ]);
  });

  it('maps a misconfigured service: millicores, throttled CPU, a GPU on a sidecar, unset concurrency', () => {
    const bad = services.get('bad');
    expect(bad?.concurrency).toBeNull();
    expect(bad?.revisionMaxInstances).toBe(5);
    expect(bad?.containers.map((c) => [c.name, c.vcpus, c.memoryBytes, c.gpus, c.cpuIdle])).toEqual(
      [
        ['bad', 4, 8 * GiB, 1, true],
        ['helper', 1, GiB, 1, true],
      ],
    );
    expect(bad?.containers[0]?.startupProbe).toEqual({
      periodSeconds: 10,
      failureThreshold: 3,
      initialDelaySeconds: 0,
      timeoutSeconds: 10,
    });
    // The web service without a GPU still carries its container.
    expect(services.get('web')?.containers[0]).toMatchObject({ cpu: '1', gpus: 0, cpuIdle: true });
  });

  it("the emulator's in-memory facts (for in-memory ports) equal what the client reads", () => {
    for (const state of emulator.model.listServices()) {
      const read = services.get(state.name);
      expect(observedContainerFacts(state)).toEqual({
        containers: read?.containers,
        concurrency: read?.concurrency,
      });
    }
  });

  it('the audit passes the good service and names every broken rule of the bad one', () => {
    const policy = parsePolicy({ version: 1, projects: [PROJECT] });
    const findings = auditFleet({
      services: [...services.values()],
      snapshot: {
        version: 1,
        takenAt: '2026-11-27T12:00:00Z',
        pools: [
          {
            project: PROJECT,
            region: REGION,
            accelerator: 'nvidia-l4',
            zonalRedundancy: true,
            quota: 4,
          },
        ],
        services: [],
        unmanagedUsage: [],
      },
      policy,
    }).findings;
    expect(findings.map((f) => `${f.service}:${f.rule}:${f.severity}`)).toEqual([
      'bad:cpu-always-allocated:required',
      'bad:cpu-recommended:recommended',
      'bad:memory-minimum:required',
      'bad:gpu-per-instance:required',
      'bad:gpu-single-container:required',
      'bad:max-within-quota:required',
      'bad:revision-max-override:required',
      'bad:concurrency-set:recommended',
      'bad:startup-probe:recommended',
      'edge:cpu-recommended:recommended',
      'edge:memory-recommended:recommended',
      'edge:concurrency-set:recommended',
      'edge:startup-probe:recommended',
    ]);
    expect(findings.find((f) => f.rule === 'max-within-quota')?.problem).toContain(
      'max instances 5 (revision level) × 1 GPU = 5 GPUs',
    );
  });

  it("a container sent without resources has Cloud Run's default, CPU throttled (cpu_idle true), and fails cpu-always-allocated", () => {
    // "Determines whether CPU is only allocated during requests (true by default). However, if
    // ResourceRequirements is set, the caller must explicitly set this field to true to preserve
    // the default behavior." (ResourceRequirements.cpu_idle, google/cloud/run/v2/k8s.min.proto)
    const Container = protos.google.cloud.run.v2.Container;
    const wire = (c: protos.google.cloud.run.v2.IContainer) =>
      Container.decode(Container.encode(Container.fromObject(c)).finish());
    const bare = toObservedContainer(wire({ name: 'log-shipper', image: 'x' }), 1);
    expect(bare).toMatchObject({ cpu: null, gpuLimit: null, gpus: 0, cpuIdle: true });
    // Set resources with cpu_idle false (not sent on the wire: the proto3 default) read as false.
    const set = toObservedContainer(
      wire({ name: 'm', resources: { limits: { cpu: '8' }, cpuIdle: false } }),
      0,
    );
    expect(set.cpuIdle).toBe(false);
    const good = services.get('good');
    if (good === undefined) throw new Error('good not read');
    const policy = parsePolicy({ version: 1, projects: [PROJECT] });
    const findings = auditFleet({
      services: [{ ...good, containers: [...good.containers, bare] }],
      snapshot: {
        version: 1,
        takenAt: '2026-11-27T12:00:00Z',
        pools: [],
        services: [],
        unmanagedUsage: [],
      },
      policy,
    }).findings;
    expect(findings.map((f) => f.rule)).toEqual(['cpu-always-allocated']);
    expect(findings[0]?.problem).toContain('log-shipper');
  });
});
