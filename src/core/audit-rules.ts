/**
 * The fleet audit's rules: each id with its default severity, why it matters and how to fix it in
 * general (the README's table), each with the Google source it rests on. The checks that find a
 * broken rule are in audit-checks.ts, the runner that applies them to a fleet in audit.ts. "GPU
 * page" below is https://cloud.google.com/run/docs/configuring/services/gpu.
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
  'max-unset',
  'revision-max-override',
  'service-level-max',
  'min-instances-unused',
  'min-instances-pool-share',
  'concurrency-set',
  'startup-probe',
] as const;
export type AuditRuleId = (typeof AUDIT_RULE_IDS)[number];

export type AuditSeverity = 'required' | 'recommended';

interface AuditRule {
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
  // GPU page: "You must use instance-based billing to use the GPU feature"; the field
  // is resources.cpu_idle, "true by default" (ResourceRequirements in
  // google/cloud/run/v2/k8s.min.proto).
  'cpu-always-allocated': {
    id: 'cpu-always-allocated',
    severity: 'required',
    why: 'GPU services need instance-based billing (CPU always allocated); a throttled CPU does not deploy with a GPU.',
    fix: 'deploy with --no-cpu-throttling (resources.cpu_idle: false on every container)',
  },
  // GPU page: "For L4 GPUs, you must use a minimum of 4 CPU and 16 GiB of memory";
  // 20 CPU and 80 GiB for the NVIDIA RTX PRO 6000 Blackwell.
  'cpu-minimum': {
    id: 'cpu-minimum',
    severity: 'required',
    why: 'Cloud Run requires at least 4 vCPU on an L4 instance (20 on an RTX PRO 6000); below it the revision does not deploy.',
    fix: 'deploy with --cpu set to the minimum or more on the GPU container',
  },
  // Google documents only the minimum: 8 vCPU is the policy's default (audit.recommendedCpu).
  'cpu-recommended': {
    id: 'cpu-recommended',
    severity: 'recommended',
    why: 'Model loading, tokenisation and request handling run on the CPU; a starved CPU leaves the GPU idle.',
    fix: 'deploy with --cpu 8 (or the policy’s audit.recommendedCpu) on the GPU container',
  },
  // GPU page: 16 GiB (binary: "16Gi") for an L4, 80 GiB for an RTX PRO 6000.
  'memory-minimum': {
    id: 'memory-minimum',
    severity: 'required',
    why: 'Cloud Run requires at least 16 GiB on an L4 instance (80 GiB on an RTX PRO 6000); below it the revision does not deploy.',
    fix: 'deploy with --memory set to the minimum or more on the GPU container',
  },
  // Google documents only the minimum: 32 GiB is the policy's default (audit.recommendedMemory).
  'memory-recommended': {
    id: 'memory-recommended',
    severity: 'recommended',
    why: 'Model weights pass through instance memory while they load; too little memory slows or kills cold starts.',
    fix: 'deploy with --memory 32Gi (or the policy’s audit.recommendedMemory) on the GPU container',
  },
  // GPU page: "You can configure one GPU per Cloud Run instance"; "The only supported
  // 'nvidia.com/gpu' value is '1'" (ResourceRequirements.limits in
  // google/cloud/run/v2/k8s.min.proto).
  'gpu-per-instance': {
    id: 'gpu-per-instance',
    severity: 'required',
    why: 'Cloud Run attaches exactly one GPU to an instance; any other count does not deploy, and the quota is counted per GPU.',
    fix: 'set resources.limits nvidia.com/gpu: "1" on one container (deploy with --gpu 1)',
  },
  // GPU page: "If you use sidecar containers, note that the GPU can only be attached to one
  // container."
  'gpu-single-container': {
    id: 'gpu-single-container',
    severity: 'required',
    why: 'With sidecars, the GPU can be attached to one container only.',
    fix: 'remove the nvidia.com/gpu limit from every container but the one that runs the model',
  },
  // Cloud Run's deploy error: "Max instances must be set to N or fewer in order to set GPU
  // requirements" (the per-region GPU quota of https://cloud.google.com/run/quotas).
  'max-within-quota': {
    id: 'max-within-quota',
    severity: 'required',
    why: 'Cloud Run refuses a deployment whose max instances × GPUs exceeds the pool’s quota, and the governor cannot keep such a service within it.',
    fix: 'set the service-level max instances to quota ÷ GPUs per instance or fewer',
  },
  // https://cloud.google.com/run/docs/configuring/max-instances-limits: without a max, the default
  // is the lowest of the regional CPU, memory and GPU quotas divided by the service's configuration.
  'max-unset': {
    id: 'max-unset',
    severity: 'required',
    why: 'With no max instances at either level, Cloud Run derives the max from the regional quotas: the service may take its whole pool, and the governor must count it at quota ÷ GPUs per instance.',
    fix: 'set a service-level max: gcloud run services update SERVICE --max N',
  },
  // https://cloud.google.com/run/docs/configuring/max-instances: service-level max instances, and
  // a revision's own max (template.scaling.max_instance_count), which applies only to new revisions.
  'revision-max-override': {
    id: 'revision-max-override',
    severity: 'required',
    why: 'The effective cap is the lower of the service and revision max: a lower revision max silently overrides what the governor writes.',
    fix: 'deploy a revision without a revision-level max (template.scaling.max_instance_count) and keep the cap at service level',
  },
  // https://cloud.google.com/run/docs/configuring/max-instances: a service-level max applies without
  // deploying a new revision.
  'service-level-max': {
    id: 'service-level-max',
    severity: 'recommended',
    why: 'A service-level max applies at once without a new revision; a cap only at revision level changes only by deploying.',
    fix: 'set the cap at service level: gcloud run services update SERVICE --max N',
  },
  // GPU page: "minimum instances are charged at the full rate even when idle".
  'min-instances-unused': {
    id: 'min-instances-unused',
    severity: 'recommended',
    why: 'Each min instance holds a GPU at full price even when idle, and holds it out of the pool.',
    fix: 'lower min instances (gcloud run services update SERVICE --min 0), or keep them only when cold starts are not acceptable',
  },
  // https://cloud.google.com/run/docs/configuring/max-instances-limits: GPU quotas count every
  // running instance in the region, idle min instances included.
  'min-instances-pool-share': {
    id: 'min-instances-pool-share',
    severity: 'recommended',
    why: 'GPUs held by min instances are locked out of the pool: the governor cannot lend them to a busy service.',
    fix: 'lower min instances in the pool, or raise the pool’s quota',
  },
  // https://cloud.google.com/run/docs/about-concurrency: 80 × vCPUs with gcloud and Terraform, 80
  // from the console; max_instance_request_concurrency unset or 0 is 80 (revision_template.proto).
  'concurrency-set': {
    id: 'concurrency-set',
    severity: 'recommended',
    why: 'The default concurrency (80, or 80 × vCPUs) is made for CPU work; a GPU serves a few requests at once, and too many queue on one instance instead of scaling.',
    fix: 'deploy with --concurrency set to what one GPU serves well (measured; often 4 to 32)',
  },
  // https://cloud.google.com/run/docs/configuring/healthchecks: the default TCP startup probe
  // (timeoutSeconds 240, periodSeconds 240, failureThreshold 1) gives a container 240 s.
  'startup-probe': {
    id: 'startup-probe',
    severity: 'recommended',
    why: 'Loading a model takes long; a startup probe that gives up sooner kills instances that were about to serve, and holds their GPUs meanwhile.',
    fix: 'give the GPU container a startup probe (ideally HTTP on a readiness endpoint) with initial delay + failure threshold × period at least the policy’s audit.minStartupProbeSeconds',
  },
};
