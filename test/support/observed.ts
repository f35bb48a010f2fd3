import type { ObservedContainer, ObservedService } from '../../src/ports.js';

/**
 * Builders for what the Cloud Run adapter returns, for tests that feed observation and the audit
 * directly: a GPU service that passes every audit rule, changed by `more`.
 */

export function observedContainer(more: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    name: 'model',
    cpu: '8',
    vcpus: 8,
    memory: '32Gi',
    memoryBytes: 32 * 2 ** 30,
    gpus: 1,
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
