import type { AuditRuleId, AuditSeverity } from './audit-rules.js';
import { gcloudUpdate } from './gcloud.js';
import { DEFAULT_MAX_INSTANCES, maxInForce, quotaInstances, type MaxInForce } from './pool.js';
import type { Snapshot } from './snapshot.js';
import {
  DEFAULT_CONCURRENCY,
  manualInstances,
  type ObservedContainer,
  type ObservedService,
} from './service.js';
import { parseGpuCount } from './quantity.js';
import { plural } from './text.js';

/**
 * The fleet audit's checks: one pure function per rule (audit-rules.ts), given one GPU service
 * with its settings, thresholds, pool quota and usage, returning what is wrong with it or null.
 * The numbers come from Cloud Run's documentation, cited at the top of audit.ts.
 */

/** Cloud Run's limits when a container sets none. */
const DEFAULT_CPU = 1;
const DEFAULT_MEMORY = 512 * 2 ** 20;

export type Levels = Partial<Record<AuditRuleId, 'off' | AuditSeverity>>;

/** The audit settings that apply to one service. */
export interface EffectiveSettings {
  minCpu: number;
  recommendedCpu: number;
  minMemory: string;
  recommendedMemory: string;
  minStartupProbeSeconds: number;
  idleUtilization: number;
  maxMinInstancesShare: number;
  rules: Levels;
}

/** CPU (vCPUs) and memory (bytes) thresholds for one service, its accelerator's minimums applied. */
export interface Thresholds {
  minCpu: number;
  recommendedCpu: number;
  minMemory: number;
  recommendedMemory: number;
}

export type GpuService = ObservedService & { gpu: NonNullable<ObservedService['gpu']> };

/** What a check is given about one GPU service. */
export interface ServiceContext {
  s: GpuService;
  config: EffectiveSettings;
  thresholds: Thresholds;
  quota: number | null;
  usage: Snapshot['services'][number]['usage'];
  /** GPUs the min instances of the service's pool hold together. */
  minLocked: number;
}

/** What is wrong (null: nothing), and a fix for this service when the rule's general one will not do. */
type Broken = { problem: string; fix?: string } | null;

export function minInstances(s: ObservedService): number {
  return Math.max(s.serviceMinInstances ?? 0, s.revisionMinInstances ?? 0);
}

/**
 * An `nvidia.com/gpu` limit that is set but is not a GPU count ("lots", "0.5"): it cannot be judged
 * to hold no GPU. The only value Cloud Run supports is "1" (`ResourceRequirements.limits` in
 * google/cloud/run/v2/k8s.min.proto).
 */
function unreadableGpu(c: ObservedContainer): boolean {
  return c.gpuLimit !== null && parseGpuCount(c.gpuLimit) === null;
}

/** A container that asks for a GPU: a count above 0, or a limit that cannot be read. */
function asksForGpu(c: ObservedContainer): boolean {
  return c.gpus > 0 || unreadableGpu(c);
}

/** The container the model runs in: the first with a GPU, else the first (the ingress one). */
function gpuContainer(s: ObservedService): ObservedContainer | undefined {
  return s.containers.find(asksForGpu) ?? s.containers[0];
}

function vcpusOf(c: ObservedContainer): number | null {
  return c.cpu === null ? DEFAULT_CPU : c.vcpus;
}

function memoryOf(c: ObservedContainer): number | null {
  return c.memory === null ? DEFAULT_MEMORY : c.memoryBytes;
}

function cpuText(c: ObservedContainer): string {
  return c.cpu === null
    ? `no CPU limit (Cloud Run's default of ${DEFAULT_CPU} vCPU)`
    : `${c.vcpus} vCPU`;
}

function memoryText(c: ObservedContainer): string {
  if (c.memory === null) return `no memory limit (Cloud Run's default of 512 MiB)`;
  const bytes = gib(c.memoryBytes ?? 0);
  // A decimal unit reads like the binary one of the documented minimums ("16G" is not "16Gi").
  const unit = /([kKMGT])$/.exec(c.memory.trim())?.[1];
  return unit === undefined
    ? bytes
    : `${c.memory.trim()} (${bytes}: ${unit} is 10^${DECIMAL_POWER[unit] ?? 3} bytes, ${unit.toUpperCase()}i 2^${BINARY_POWER[unit] ?? 10})`;
}

const DECIMAL_POWER: Readonly<Record<string, number>> = { k: 3, K: 3, M: 6, G: 9, T: 12 };
const BINARY_POWER: Readonly<Record<string, number>> = { k: 10, K: 10, M: 20, G: 30, T: 40 };

const LEVEL_TEXT: Readonly<Record<MaxInForce['level'], string>> = {
  service: 'service level',
  revision: 'revision level',
  revisions: "the sum of its serving revisions' own max (its latest revision does not serve)",
  default: 'neither level sets one: Cloud Run derives it from the regional quota',
};

function effectiveMaxOf(s: ObservedService): { max: number; how: string } {
  const { max, level } = maxInForce(s);
  return { max, how: LEVEL_TEXT[level] };
}

const NO_CONTAINER: Broken = { problem: 'the revision template has no container' };

function unreadableCpu(c: ObservedContainer): Broken {
  return { problem: `the CPU limit "${c.cpu ?? ''}" of ${c.name} is not a CPU quantity` };
}

function unreadableMemory(c: ObservedContainer): Broken {
  return { problem: `the memory limit "${c.memory ?? ''}" of ${c.name} is not a memory quantity` };
}

/** One check per rule: what is wrong with the service, or null. */
export const CHECKS: Readonly<Record<AuditRuleId, (ctx: ServiceContext) => Broken>> = {
  'cpu-always-allocated': ({ s }) => {
    const throttled = s.containers.filter((c) => c.cpuIdle === true).map((c) => c.name);
    if (throttled.length === 0) return null;
    return {
      problem: `CPU is throttled between requests (cpu_idle: true) on ${throttled.join(', ')}: request-based billing, which GPU services cannot use`,
      fix: `deploy with --no-cpu-throttling (resources.cpu_idle: false on ${throttled.join(', ')})`,
    };
  },

  'cpu-minimum': ({ s, thresholds }) => {
    const c = gpuContainer(s);
    if (c === undefined) return NO_CONTAINER;
    const vcpus = vcpusOf(c);
    if (vcpus === null) return unreadableCpu(c);
    if (vcpus >= thresholds.minCpu) return null;
    return {
      problem: `${c.name} has ${cpuText(c)}, below the minimum of ${thresholds.minCpu} vCPU for ${s.gpu.accelerator}`,
      fix: `deploy with --cpu ${thresholds.minCpu} or more on ${c.name}`,
    };
  },

  'cpu-recommended': ({ s, thresholds, config }) => {
    const c = gpuContainer(s);
    const vcpus = c === undefined ? null : vcpusOf(c);
    // Below the minimum (or unreadable) is cpu-minimum's finding, not this one's; with that rule
    // off, what cannot be read is still said, never passed.
    if (config.rules['cpu-minimum'] === 'off') {
      if (c === undefined) return NO_CONTAINER;
      if (vcpus === null) return unreadableCpu(c);
    }
    if (c === undefined || vcpus === null || vcpus < thresholds.minCpu) return null;
    if (vcpus >= thresholds.recommendedCpu) return null;
    return {
      problem: `${c.name} has ${cpuText(c)}, below the recommended ${thresholds.recommendedCpu} vCPU`,
      fix: `deploy with --cpu ${thresholds.recommendedCpu} on ${c.name}`,
    };
  },

  'memory-minimum': ({ s, thresholds }) => {
    const c = gpuContainer(s);
    if (c === undefined) return NO_CONTAINER;
    const bytes = memoryOf(c);
    if (bytes === null) return unreadableMemory(c);
    if (bytes >= thresholds.minMemory) return null;
    return {
      problem: `${c.name} has ${memoryText(c)}, below the minimum of ${gib(thresholds.minMemory)} for ${s.gpu.accelerator}`,
      fix: `deploy with --memory ${gibFlag(thresholds.minMemory)} or more on ${c.name}`,
    };
  },

  'memory-recommended': ({ s, thresholds, config }) => {
    const c = gpuContainer(s);
    const bytes = c === undefined ? null : memoryOf(c);
    if (config.rules['memory-minimum'] === 'off') {
      if (c === undefined) return NO_CONTAINER;
      if (bytes === null) return unreadableMemory(c);
    }
    if (c === undefined || bytes === null || bytes < thresholds.minMemory) return null;
    if (bytes >= thresholds.recommendedMemory) return null;
    return {
      problem: `${c.name} has ${memoryText(c)}, below the recommended ${gib(thresholds.recommendedMemory)}`,
      fix: `deploy with --memory ${gibFlag(thresholds.recommendedMemory)} on ${c.name}`,
    };
  },

  'gpu-per-instance': ({ s }) => {
    const unreadable = s.containers.find(unreadableGpu);
    if (unreadable !== undefined) {
      return {
        problem: `the nvidia.com/gpu limit "${unreadable.gpuLimit ?? ''}" of ${unreadable.name} is not a whole number of GPUs (Cloud Run accepts "1")`,
        fix: `set resources.limits nvidia.com/gpu: "1" on ${unreadable.name} (deploy with --gpu 1), or remove it`,
      };
    }
    const total = s.containers.reduce((sum, c) => sum + c.gpus, 0);
    if (total === 1) return null;
    if (total === 0) {
      return {
        problem: `the template asks for ${s.gpu.accelerator} but no container sets an nvidia.com/gpu limit`,
      };
    }
    const where = s.containers
      .filter((c) => c.gpus > 0)
      .map((c) => `${c.name}: ${c.gpus}`)
      .join(', ');
    return { problem: `${total} GPUs per instance (${where}); Cloud Run attaches exactly one` };
  },

  'gpu-single-container': ({ s }) => {
    const withGpu = s.containers.filter(asksForGpu).map((c) => c.name);
    if (withGpu.length <= 1) return null;
    return {
      problem: `${withGpu.length} containers ask for a GPU (${withGpu.join(', ')}); only one may`,
      fix: `keep the nvidia.com/gpu limit on ${withGpu[0] ?? 'the model container'} only`,
    };
  },

  'max-within-quota': ({ s, quota }) => {
    if (quota === null) return null; // unknown quota: governor.degraded says so
    // An unset max is derived from the quota, so it never exceeds it: max-unset reports it.
    if (s.scalingMode !== 'MANUAL' && maxInForce(s).level === 'default') return null;
    const gpus = s.gpu.count;
    const { max, how } =
      s.scalingMode === 'MANUAL'
        ? { max: manualInstances(s), how: 'manual instance count' }
        : effectiveMaxOf(s);
    if (max * gpus <= quota) return null;
    const fit = quotaInstances(quota, gpus);
    const what = s.scalingMode === 'MANUAL' ? 'manual instances' : 'max instances';
    return {
      problem: `${what} ${max} (${how}) × ${plural(gpus, 'GPU')} = ${max * gpus} GPUs, above the pool's quota of ${quota}: Cloud Run refuses to deploy it`,
      fix:
        fit === 0
          ? `the pool's quota of ${quota} cannot hold one instance: request GPU quota for ${s.region}`
          : s.scalingMode === 'MANUAL'
            ? `set the manual instance count to ${fit} or fewer`
            : `set the service-level max to ${fit} or fewer: ${gcloudUpdate(s)} --max ${fit}`,
    };
  },

  'revision-max-override': ({ s }) => {
    // The template's max is not the serving revision's when traffic is pinned elsewhere.
    if (s.scalingMode === 'MANUAL' || s.templateServes === false) return null;
    const rev = s.revisionMaxInstances;
    const svc = s.serviceMaxInstances;
    if (rev === null || svc === null || rev >= svc) return null;
    return {
      problem: `the serving revision sets max instances ${rev}, below the service-level ${svc}: the cap in force is ${rev}, whatever the governor writes`,
      // A new revision keeps the revision-level max unless it is changed ("Subsequent revisions
      // will also automatically get this configuration setting unless you make explicit updates
      // to change it", https://cloud.google.com/run/docs/configuring/max-instances): omitting
      // the flag keeps it. `default` clears it ("To clear the max instances setting, specify
      // default", gcloud run services update --max-instances,
      // https://cloud.google.com/kubernetes-engine/enterprise/knative-serving/docs/configuring/max-instances).
      fix: `deploy ${s.name} without a revision-level max (template.scaling.max_instance_count unset): ${gcloudUpdate(s)} --max-instances default, and keep the cap at service level`,
    };
  },

  'max-unset': ({ s, quota }) => {
    if (s.scalingMode === 'MANUAL' || maxInForce(s).level !== 'default') return null;
    const counted = quota === null ? null : quotaInstances(quota, s.gpu.count);
    const fix = `${gcloudUpdate(s)} --max N (N: what it should be allowed${counted === null ? '' : `, at most ${counted}`})`;
    // The template sets one, but another revision serves and could not be read (observe's
    // serving revisions): what it may run is unknown, and counted as if unset.
    if (s.revisionsUnread !== undefined && s.templateServes === false) {
      return {
        problem: `no service-level max instances, and its serving revisions could not be read (${s.revisionsUnread}): ${counted === null ? 'this pool’s quota is unknown' : `the governor counts it at ${counted} (quota ${quota} ÷ ${plural(s.gpu.count, 'GPU')}), its whole pool`}`,
        fix,
      };
    }
    return {
      problem:
        counted === null
          ? 'no max instances at either level: Cloud Run derives it from the regional quotas (this pool’s quota is unknown)'
          : `no max instances at either level: Cloud Run derives it from the regional quota, so it may run ${plural(counted, 'instance')} (quota ${quota} ÷ ${plural(s.gpu.count, 'GPU')}), its whole pool; the governor counts it at ${counted}`,
      fix,
    };
  },

  'service-level-max': ({ s }) => {
    if (s.scalingMode === 'MANUAL' || s.serviceMaxInstances !== null) return null;
    // Neither level sets one, or none that is known to serve: max-unset reports it.
    if (s.revisionMaxInstances === null || maxInForce(s).level === 'default') return null;
    const { max, how } = effectiveMaxOf(s);
    return {
      problem: `no service-level max instances: the cap is ${max} (${how})`,
      fix: `${gcloudUpdate(s)} --max ${Math.min(max, DEFAULT_MAX_INSTANCES)}`,
    };
  },

  'min-instances-unused': ({ s, usage, config }) => {
    const min = minInstances(s);
    if (s.scalingMode === 'MANUAL' || min === 0 || usage === null) return null;
    const utilization = usage.utilization;
    // Instance counts include idle min instances, so only a known, low GPU utilization shows that
    // the service never needed more than its idle minimum.
    if (utilization === null || utilization === undefined) return null;
    if (usage.peak > min || utilization >= config.idleUtilization) return null;
    return {
      problem: `${plural(min, 'min instance')} hold${min === 1 ? 's' : ''} ${plural(min * s.gpu.count, 'GPU')} at full price, but over the lookback it never ran more than ${usage.peak} and its GPU is ${Math.round(utilization * 100)}% busy`,
      // The min in force is the higher of the service's and the revision's: each set is lowered.
      // `--min` is the service level; `--min-instances` the revision level, off at 0 ("By
      // default, container instances have min-instances turned off, with a setting of 0",
      // https://cloud.google.com/run/docs/configuring/min-instances).
      fix: `${gcloudUpdate(s)}${(s.serviceMinInstances ?? 0) > 0 ? ' --min 0' : ''}${(s.revisionMinInstances ?? 0) > 0 ? ' --min-instances 0' : ''} (or fewer min instances)`,
    };
  },

  'min-instances-pool-share': ({ s, quota, minLocked, config }) => {
    const min = minInstances(s);
    if (s.scalingMode === 'MANUAL' || min === 0 || quota === null || quota === 0) return null;
    const share = minLocked / quota;
    if (share <= config.maxMinInstancesShare) return null;
    return {
      problem: `min instances in this pool hold ${minLocked} of its ${quota} GPUs (${Math.round(share * 100)}%, above ${Math.round(config.maxMinInstancesShare * 100)}%); this service holds ${min * s.gpu.count}`,
    };
  },

  'concurrency-set': ({ s }) => {
    const c = gpuContainer(s);
    const vcpus = c === undefined ? null : vcpusOf(c);
    if (s.concurrency === null) {
      return {
        problem: `request concurrency is not set: Cloud Run's default of ${DEFAULT_CONCURRENCY} applies`,
      };
    }
    const defaults = new Set([DEFAULT_CONCURRENCY]);
    if (vcpus !== null) defaults.add(Math.min(1000, Math.round(DEFAULT_CONCURRENCY * vcpus)));
    if (!defaults.has(s.concurrency)) return null;
    return {
      problem: `request concurrency is ${s.concurrency}, a default of Cloud Run's tools (80, or 80 × vCPUs), not a value chosen for GPU work`,
    };
  },

  'startup-probe': ({ s, config }) => {
    const c = gpuContainer(s);
    if (c === undefined) return NO_CONTAINER;
    const p = c.startupProbe;
    const want = config.minStartupProbeSeconds;
    if (p === null) {
      return {
        problem: `${c.name} has no startup probe: nothing tells Cloud Run when the model is loaded`,
        fix: `add a startup probe to ${c.name} allowing ${want} s or more (e.g. periodSeconds 10, failureThreshold ${Math.ceil(want / 10)})`,
      };
    }
    const window = p.initialDelaySeconds + p.failureThreshold * p.periodSeconds;
    if (window >= want) return null;
    return {
      problem: `the startup probe of ${c.name} gives up after ${window} s (${p.initialDelaySeconds} + ${p.failureThreshold} × ${p.periodSeconds} s), under ${want} s for model loading`,
      fix: `raise the probe's failureThreshold to ${Math.ceil(Math.max(0, want - p.initialDelaySeconds) / p.periodSeconds)} or more (period ${p.periodSeconds} s)`,
    };
  },
};

/** A memory flag value: whole GiB when it is one, else MiB. */
function gibFlag(bytes: number): string {
  return bytes % 2 ** 30 === 0 ? `${bytes / 2 ** 30}Gi` : `${Math.ceil(bytes / 2 ** 20)}Mi`;
}

/**
 * Bytes as a person reads them, never rounded: "16 GiB", "17.5 GiB", "512 MiB", "16383 MiB". A
 * rounded value could read as the very threshold it is below ("16 GiB, below the minimum of 16
 * GiB" for 16383 MiB), so a size that is not a whole hundredth of a GiB is shown in MiB, and one
 * that is not a whole MiB in bytes.
 */
function gib(bytes: number): string {
  if (bytes >= 2 ** 30 && (bytes * 100) % 2 ** 30 === 0)
    return `${(bytes * 100) / 2 ** 30 / 100} GiB`;
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`;
  return `${bytes} bytes`;
}
