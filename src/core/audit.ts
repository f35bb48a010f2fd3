import type { Alert } from './alert.js';
import { makeAlert } from './conditions.js';
import type { AuditOverride, AuditSettings, Policy } from './policy.js';
import { compareText, poolKey, type PoolId } from './pool-key.js';
import { compileRules } from './rules.js';
import type { Snapshot } from './snapshot.js';
import type { ObservedContainer, ObservedService } from '../ports.js';

/**
 * The fleet audit: every GPU service checked against what Cloud Run's GPU documentation says a
 * GPU service must and should have. Pure: the services as read, the snapshot (usage, quotas) and
 * the policy in, the findings out, in a deterministic order. No I/O, no clock.
 *
 * Sources: https://cloud.google.com/run/docs/configuring/services/gpu (instance-based billing,
 * 4 vCPU and 16 GiB at least for an L4, 20 vCPU and 80 GiB for an RTX PRO 6000, one GPU per
 * instance on one container only, the per-region quota), the default TCP startup probe of
 * https://cloud.google.com/run/docs/configuring/healthchecks (240 s), the concurrency defaults of
 * https://cloud.google.com/run/docs/about-concurrency (80, or 80 × vCPUs with gcloud and
 * Terraform), and service-level max instances,
 * https://cloud.google.com/run/docs/configuring/max-instances.
 */

/** Every rule, in the order findings are listed within a service. Part of the contract. */
export const AUDIT_RULE_IDS = [
  'cpu-always-allocated',
  'cpu-minimum',
  'cpu-recommended',
  'memory-minimum',
  'memory-recommended',
  'gpu-per-instance',
  'gpu-single-container',
  'max-within-quota',
  'revision-max-override',
  'service-level-max',
  'min-instances-unused',
  'min-instances-pool-share',
  'concurrency-set',
  'startup-probe',
] as const;
export type AuditRuleId = (typeof AUDIT_RULE_IDS)[number];

export type AuditSeverity = 'required' | 'recommended';

export interface AuditRule {
  id: AuditRuleId;
  /** The severity unless the policy changes it. */
  severity: AuditSeverity;
  /** One line: why the rule matters. */
  why: string;
  /** One line: how to fix it, in general (a finding's `fix` is specific to the service). */
  fix: string;
}

/** The rules with their default severity, reason and fix (the README's table). */
export const AUDIT_RULES: Readonly<Record<AuditRuleId, AuditRule>> = {
  'cpu-always-allocated': {
    id: 'cpu-always-allocated',
    severity: 'required',
    why: 'GPU services need instance-based billing (CPU always allocated); a throttled CPU does not deploy with a GPU.',
    fix: 'deploy with --no-cpu-throttling (resources.cpu_idle: false on every container)',
  },
  'cpu-minimum': {
    id: 'cpu-minimum',
    severity: 'required',
    why: 'Cloud Run requires at least 4 vCPU on an L4 instance (20 on an RTX PRO 6000); below it the revision does not deploy.',
    fix: 'deploy with --cpu set to the minimum or more on the GPU container',
  },
  'cpu-recommended': {
    id: 'cpu-recommended',
    severity: 'recommended',
    why: 'Model loading, tokenisation and request handling run on the CPU; a starved CPU leaves the GPU idle.',
    fix: 'deploy with --cpu 8 (or the policy’s audit.recommendedCpu) on the GPU container',
  },
  'memory-minimum': {
    id: 'memory-minimum',
    severity: 'required',
    why: 'Cloud Run requires at least 16 GiB on an L4 instance (80 GiB on an RTX PRO 6000); below it the revision does not deploy.',
    fix: 'deploy with --memory set to the minimum or more on the GPU container',
  },
  'memory-recommended': {
    id: 'memory-recommended',
    severity: 'recommended',
    why: 'Model weights pass through instance memory while they load; too little memory slows or kills cold starts.',
    fix: 'deploy with --memory 32Gi (or the policy’s audit.recommendedMemory) on the GPU container',
  },
  'gpu-per-instance': {
    id: 'gpu-per-instance',
    severity: 'required',
    why: 'Cloud Run attaches exactly one GPU to an instance; any other count does not deploy, and the quota is counted per GPU.',
    fix: 'set resources.limits nvidia.com/gpu: "1" on one container (deploy with --gpu 1)',
  },
  'gpu-single-container': {
    id: 'gpu-single-container',
    severity: 'required',
    why: 'With sidecars, the GPU can be attached to one container only.',
    fix: 'remove the nvidia.com/gpu limit from every container but the one that runs the model',
  },
  'max-within-quota': {
    id: 'max-within-quota',
    severity: 'required',
    why: 'Cloud Run refuses a deployment whose max instances × GPUs exceeds the pool’s quota, and the governor cannot keep such a service within it.',
    fix: 'set the service-level max instances to quota ÷ GPUs per instance or fewer',
  },
  'revision-max-override': {
    id: 'revision-max-override',
    severity: 'required',
    why: 'The effective cap is the lower of the service and revision max: a lower revision max silently overrides what the governor writes.',
    fix: 'deploy a revision without a revision-level max (template.scaling.max_instance_count) and keep the cap at service level',
  },
  'service-level-max': {
    id: 'service-level-max',
    severity: 'recommended',
    why: 'A service-level max applies at once without a new revision; a cap only at revision level changes only by deploying.',
    fix: 'set the cap at service level: gcloud run services update SERVICE --max N',
  },
  'min-instances-unused': {
    id: 'min-instances-unused',
    severity: 'recommended',
    why: 'Each min instance holds a GPU at full price even when idle, and holds it out of the pool.',
    fix: 'lower min instances (gcloud run services update SERVICE --min 0), or keep them only when cold starts are not acceptable',
  },
  'min-instances-pool-share': {
    id: 'min-instances-pool-share',
    severity: 'recommended',
    why: 'GPUs held by min instances are locked out of the pool: the governor cannot lend them to a busy service.',
    fix: 'lower min instances in the pool, or raise the pool’s quota',
  },
  'concurrency-set': {
    id: 'concurrency-set',
    severity: 'recommended',
    why: 'The default concurrency (80, or 80 × vCPUs) is made for CPU work; a GPU serves a few requests at once, and too many queue on one instance instead of scaling.',
    fix: 'deploy with --concurrency set to what one GPU serves well (measured; often 4 to 32)',
  },
  'startup-probe': {
    id: 'startup-probe',
    severity: 'recommended',
    why: 'Loading a model takes long; a startup probe that gives up sooner kills instances that were about to serve, and holds their GPUs meanwhile.',
    fix: 'give the GPU container a startup probe (ideally HTTP on a readiness endpoint) with initial delay + failure threshold × period at least the policy’s audit.minStartupProbeSeconds',
  },
};

/** One broken rule of one service. */
export interface AuditFinding {
  project: string;
  region: string;
  service: string;
  accelerator: string;
  zonalRedundancy: boolean;
  rule: AuditRuleId;
  severity: AuditSeverity;
  /** What is wrong, with the numbers. */
  problem: string;
  /** How to fix it, for this service. */
  fix: string;
  /** Why the rule matters. */
  why: string;
}

export interface AuditInput {
  services: readonly ObservedService[];
  snapshot: Snapshot;
  policy: Policy;
}

/** Documented minimums per accelerator; a policy threshold below them is raised to them. */
const ACCELERATOR_MINIMUMS: Readonly<Record<string, { cpu: number; memory: string }>> = {
  'nvidia-l4': { cpu: 4, memory: '16Gi' },
  'nvidia-rtx-pro-6000': { cpu: 20, memory: '80Gi' },
};

/** Cloud Run's limits when a container sets none. */
const DEFAULT_CPU = 1;
const DEFAULT_MEMORY = 512 * 2 ** 20;
/** Cloud Run's max instances of a revision when neither level sets one. */
const DEFAULT_MAX_INSTANCES = 100;
/** Concurrency Cloud Run, the console and gcloud choose when the deployer does not. */
const DEFAULT_CONCURRENCY = 80;

/** Every GPU service of the policy's projects (and regions) against every rule that is on. */
export function auditServices(input: AuditInput): AuditFinding[] {
  const { services, snapshot, policy } = input;
  const resolve = compileRules(policy, Date.parse(snapshot.takenAt));
  const usage = new Map(snapshot.services.map((s) => [`${s.project}/${s.region}/${s.name}`, s]));
  const quotaOf = quotaLookup(snapshot, policy);
  const inScope = (s: ObservedService) =>
    policy.projects.includes(s.project) &&
    (policy.regions === undefined || policy.regions.includes(s.region));
  const gpuServices = services.filter(
    (s): s is ObservedService & { gpu: NonNullable<ObservedService['gpu']> } =>
      s.gpu !== null && inScope(s),
  );

  // GPUs that min instances hold, per pool (automatic scaling only: manual ones are fixed).
  const minLocked = new Map<string, number>();
  for (const s of gpuServices) {
    if (s.scalingMode === 'MANUAL') continue;
    const key = poolKey(poolOf(s));
    minLocked.set(key, (minLocked.get(key) ?? 0) + minInstances(s) * s.gpu.count);
  }

  const findings: AuditFinding[] = [];
  for (const s of gpuServices) {
    const pool = poolOf(s);
    const settings = resolve({
      project: s.project,
      region: s.region,
      accelerator: s.gpu.accelerator,
      name: s.name,
      labels: s.labels,
    });
    const rule = settings.rule === null ? undefined : policy.services[settings.rule];
    const config = effectiveSettings(policy.audit, rule?.audit);
    const ctx: ServiceContext = {
      s,
      config,
      thresholds: thresholdsFor(config, s.gpu.accelerator),
      quota: quotaOf(pool),
      usage: usage.get(`${s.project}/${s.region}/${s.name}`)?.usage ?? null,
      minLocked: minLocked.get(poolKey(pool)) ?? 0,
    };
    for (const id of AUDIT_RULE_IDS) {
      const level = config.rules[id] ?? AUDIT_RULES[id].severity;
      if (level === 'off') continue;
      const broken = CHECKS[id](ctx);
      if (broken === null) continue;
      findings.push({
        project: s.project,
        region: s.region,
        service: s.name,
        accelerator: pool.accelerator,
        zonalRedundancy: pool.zonalRedundancy,
        rule: id,
        severity: level,
        problem: broken.problem,
        fix: broken.fix ?? AUDIT_RULES[id].fix,
        why: AUDIT_RULES[id].why,
      });
    }
  }
  const order = new Map(AUDIT_RULE_IDS.map((id, i) => [id, i]));
  return findings.sort(
    (a, b) =>
      compareText(a.project, b.project) ||
      compareText(a.region, b.region) ||
      compareText(a.service, b.service) ||
      (order.get(a.rule) ?? 0) - (order.get(b.rule) ?? 0),
  );
}

/**
 * One `service.misconfigured` condition per service with findings: ERROR when a required rule
 * fails, WARNING when only recommended ones do; the details list every finding. Firing once,
 * re-notifying and resolving (when the service is fixed) are the publishing run's job, as for the
 * plan's conditions: pass these with them.
 */
export function auditAlerts(
  findings: readonly AuditFinding[],
  ctx: { at: string; runId: string },
): Alert[] {
  const byService = new Map<string, AuditFinding[]>();
  for (const f of findings) {
    const key = `${f.project}/${f.region}/${f.service}`;
    const list = byService.get(key);
    if (list) list.push(f);
    else byService.set(key, [f]);
  }
  const alerts: Alert[] = [];
  for (const list of byService.values()) {
    const first = list[0];
    if (first === undefined) continue;
    const required = list.filter((f) => f.severity === 'required').length;
    const recommended = list.length - required;
    const counts = [
      required > 0 ? `${required} required` : '',
      recommended > 0 ? `${recommended} recommended` : '',
    ]
      .filter((x) => x)
      .join(', ');
    alerts.push(
      makeAlert(
        ctx,
        {
          project: first.project,
          region: first.region,
          accelerator: first.accelerator,
          zonalRedundancy: first.zonalRedundancy,
        },
        {
          type: 'service.misconfigured',
          severity: required > 0 ? 'ERROR' : 'WARNING',
          service: first.service,
          summary: `${first.service} breaks ${list.length} GPU rule${list.length === 1 ? '' : 's'} (${counts}): ${list.map((f) => f.rule).join(', ')}`,
          details: {
            required,
            recommended,
            findings: list.map((f) => ({
              rule: f.rule,
              severity: f.severity,
              problem: f.problem,
              fix: f.fix,
              why: f.why,
            })),
          },
        },
      ),
    );
  }
  return alerts.sort((a, b) => compareText(a.dedupKey, b.dedupKey));
}

/** True when a required rule failed: `governor audit` exits 1. */
export function hasRequiredFailure(findings: readonly AuditFinding[]): boolean {
  return findings.some((f) => f.severity === 'required');
}

// --- quantities ---

const MEMORY_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes-style CPU quantity ("8", "0.5", "4000m") in vCPUs; null when it is not one. */
export function parseCpu(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)(m?)\s*$/.exec(text);
  if (!m) return null;
  const value = Number(m[1]);
  return m[2] === 'm' ? value / 1000 : value;
}

/** A Kubernetes-style memory quantity ("32Gi", "512Mi", "16G", "1073741824") in bytes. */
export function parseMemory(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$/.exec(text);
  if (!m) return null;
  const unit = MEMORY_UNITS[m[2] ?? ''];
  return unit === undefined ? null : Number(m[1]) * unit;
}

/** Bytes as a person reads them: "16 GiB", "512 MiB". */
function gib(bytes: number): string {
  if (bytes >= 2 ** 30) return `${round(bytes / 2 ** 30)} GiB`;
  return `${round(bytes / 2 ** 20)} MiB`;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

// --- settings ---

type Levels = Partial<Record<AuditRuleId, 'off' | AuditSeverity>>;

interface EffectiveSettings {
  minCpu: number;
  recommendedCpu: number;
  minMemory: string;
  recommendedMemory: string;
  minStartupProbeSeconds: number;
  idleUtilization: number;
  maxMinInstancesShare: number;
  rules: Levels;
}

/** The policy's audit section with the matching service rule's `audit` laid over it. */
function effectiveSettings(
  base: AuditSettings,
  over: AuditOverride | undefined,
): EffectiveSettings {
  return {
    minCpu: over?.minCpu ?? base.minCpu,
    recommendedCpu: over?.recommendedCpu ?? base.recommendedCpu,
    minMemory: over?.minMemory ?? base.minMemory,
    recommendedMemory: over?.recommendedMemory ?? base.recommendedMemory,
    minStartupProbeSeconds: over?.minStartupProbeSeconds ?? base.minStartupProbeSeconds,
    idleUtilization: over?.idleUtilization ?? base.idleUtilization,
    maxMinInstancesShare: over?.maxMinInstancesShare ?? base.maxMinInstancesShare,
    rules: { ...base.rules, ...over?.rules },
  };
}

interface Thresholds {
  minCpu: number;
  recommendedCpu: number;
  minMemory: number;
  recommendedMemory: number;
}

/** The policy's thresholds, never below the accelerator's documented minimums. */
function thresholdsFor(config: EffectiveSettings, accelerator: string): Thresholds {
  const floor = ACCELERATOR_MINIMUMS[accelerator];
  const minCpu = Math.max(config.minCpu, floor?.cpu ?? 0);
  const minMemory = Math.max(
    parseMemory(config.minMemory) ?? 0,
    floor ? (parseMemory(floor.memory) ?? 0) : 0,
  );
  return {
    minCpu,
    recommendedCpu: Math.max(config.recommendedCpu, minCpu),
    minMemory,
    recommendedMemory: Math.max(parseMemory(config.recommendedMemory) ?? 0, minMemory),
  };
}

function quotaLookup(snapshot: Snapshot, policy: Policy): (id: PoolId) => number | null {
  const read = new Map(snapshot.pools.map((p) => [poolKey(p), p.quota]));
  return (id) => {
    const fits = (p: Policy['pools'][number]) =>
      p.quota !== undefined &&
      p.region === id.region &&
      p.accelerator === id.accelerator &&
      p.zonalRedundancy === id.zonalRedundancy;
    const set =
      policy.pools.find((p) => fits(p) && p.project === id.project) ??
      policy.pools.find((p) => fits(p) && p.project === undefined);
    if (set?.quota !== undefined) return set.quota;
    return read.get(poolKey(id)) ?? null;
  };
}

// --- the checks ---

type GpuService = ObservedService & { gpu: NonNullable<ObservedService['gpu']> };

interface ServiceContext {
  s: GpuService;
  config: EffectiveSettings;
  thresholds: Thresholds;
  quota: number | null;
  usage: Snapshot['services'][number]['usage'];
  /** GPUs the min instances of the service's pool hold together. */
  minLocked: number;
}

type Broken = { problem: string; fix?: string } | null;

function poolOf(s: GpuService): PoolId {
  return {
    project: s.project,
    region: s.region,
    accelerator: s.gpu.accelerator,
    zonalRedundancy: s.gpu.zonalRedundancy,
  };
}

function minInstances(s: ObservedService): number {
  return Math.max(s.serviceMinInstances ?? 0, s.revisionMinInstances ?? 0);
}

/** The container the model runs in: the first with a GPU, else the first (the ingress one). */
function gpuContainer(s: ObservedService): ObservedContainer | undefined {
  return s.containers.find((c) => c.gpus > 0) ?? s.containers[0];
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
  return c.memory === null
    ? `no memory limit (Cloud Run's default of 512 MiB)`
    : gib(c.memoryBytes ?? 0);
}

function effectiveMaxOf(s: ObservedService): { max: number; how: string } {
  const levels = [s.serviceMaxInstances, s.revisionMaxInstances].filter(
    (x): x is number => x !== null && x > 0,
  );
  if (levels.length === 0)
    return { max: DEFAULT_MAX_INSTANCES, how: "Cloud Run's default: neither level sets one" };
  const max = Math.min(...levels);
  return { max, how: max === s.serviceMaxInstances ? 'service level' : 'revision level' };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const CHECKS: Readonly<Record<AuditRuleId, (ctx: ServiceContext) => Broken>> = {
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
    if (c === undefined) return { problem: 'the revision template has no container' };
    const vcpus = vcpusOf(c);
    if (vcpus === null)
      return { problem: `the CPU limit "${c.cpu ?? ''}" of ${c.name} is not a CPU quantity` };
    if (vcpus >= thresholds.minCpu) return null;
    return {
      problem: `${c.name} has ${cpuText(c)}, below the minimum of ${thresholds.minCpu} vCPU for ${s.gpu.accelerator}`,
      fix: `deploy with --cpu ${thresholds.minCpu} or more on ${c.name}`,
    };
  },

  'cpu-recommended': ({ s, thresholds }) => {
    const c = gpuContainer(s);
    const vcpus = c === undefined ? null : vcpusOf(c);
    // Below the minimum (or unreadable) is cpu-minimum's finding, not this one's.
    if (c === undefined || vcpus === null || vcpus < thresholds.minCpu) return null;
    if (vcpus >= thresholds.recommendedCpu) return null;
    return {
      problem: `${c.name} has ${cpuText(c)}, below the recommended ${thresholds.recommendedCpu} vCPU`,
      fix: `deploy with --cpu ${thresholds.recommendedCpu} on ${c.name}`,
    };
  },

  'memory-minimum': ({ s, thresholds }) => {
    const c = gpuContainer(s);
    if (c === undefined) return { problem: 'the revision template has no container' };
    const bytes = memoryOf(c);
    if (bytes === null)
      return {
        problem: `the memory limit "${c.memory ?? ''}" of ${c.name} is not a memory quantity`,
      };
    if (bytes >= thresholds.minMemory) return null;
    return {
      problem: `${c.name} has ${memoryText(c)}, below the minimum of ${gib(thresholds.minMemory)} for ${s.gpu.accelerator}`,
      fix: `deploy with --memory ${gibFlag(thresholds.minMemory)} or more on ${c.name}`,
    };
  },

  'memory-recommended': ({ s, thresholds }) => {
    const c = gpuContainer(s);
    const bytes = c === undefined ? null : memoryOf(c);
    if (c === undefined || bytes === null || bytes < thresholds.minMemory) return null;
    if (bytes >= thresholds.recommendedMemory) return null;
    return {
      problem: `${c.name} has ${memoryText(c)}, below the recommended ${gib(thresholds.recommendedMemory)}`,
      fix: `deploy with --memory ${gibFlag(thresholds.recommendedMemory)} on ${c.name}`,
    };
  },

  'gpu-per-instance': ({ s }) => {
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
    const withGpu = s.containers.filter((c) => c.gpus > 0).map((c) => c.name);
    if (withGpu.length <= 1) return null;
    return {
      problem: `${withGpu.length} containers ask for a GPU (${withGpu.join(', ')}); only one may`,
      fix: `keep the nvidia.com/gpu limit on ${withGpu[0] ?? 'the model container'} only`,
    };
  },

  'max-within-quota': ({ s, quota }) => {
    if (quota === null) return null; // unknown quota: governor.degraded says so
    const gpus = s.gpu.count;
    const { max, how } =
      s.scalingMode === 'MANUAL'
        ? { max: s.manualInstanceCount ?? 0, how: 'manual instance count' }
        : effectiveMaxOf(s);
    if (max * gpus <= quota) return null;
    const fit = Math.floor(quota / gpus);
    const what = s.scalingMode === 'MANUAL' ? 'manual instances' : 'max instances';
    return {
      problem: `${what} ${max} (${how}) × ${plural(gpus, 'GPU')} = ${max * gpus} GPUs, above the pool's quota of ${quota}: Cloud Run refuses to deploy it`,
      fix:
        fit === 0
          ? `the pool's quota of ${quota} cannot hold one instance: request GPU quota for ${s.region}`
          : s.scalingMode === 'MANUAL'
            ? `set the manual instance count to ${fit} or fewer`
            : `set the service-level max to ${fit} or fewer: gcloud run services update ${s.name} --region ${s.region} --max ${fit}`,
    };
  },

  'revision-max-override': ({ s }) => {
    if (s.scalingMode === 'MANUAL') return null;
    const rev = s.revisionMaxInstances;
    const svc = s.serviceMaxInstances;
    if (rev === null || svc === null || rev >= svc) return null;
    return {
      problem: `the serving revision sets max instances ${rev}, below the service-level ${svc}: the cap in force is ${rev}, whatever the governor writes`,
      fix: `deploy ${s.name} without a revision-level max (template.scaling.max_instance_count unset; gcloud: omit --max-instances) and keep the cap at service level`,
    };
  },

  'service-level-max': ({ s }) => {
    if (s.scalingMode === 'MANUAL' || s.serviceMaxInstances !== null) return null;
    const { max, how } = effectiveMaxOf(s);
    return {
      problem: `no service-level max instances: the cap is ${max} (${how})`,
      fix: `gcloud run services update ${s.name} --region ${s.region} --max ${Math.min(max, DEFAULT_MAX_INSTANCES)}`,
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
      fix: `gcloud run services update ${s.name} --region ${s.region} --min 0 (or fewer min instances)`,
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
    if (c === undefined) return null;
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
