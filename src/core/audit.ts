import type { Alert } from './alert.js';
import {
  CHECKS,
  minInstances,
  type EffectiveSettings,
  type GpuService,
  type ServiceContext,
  type Thresholds,
} from './audit-checks.js';
import {
  AUDIT_RULE_IDS,
  AUDIT_RULES,
  type AuditRuleId,
  type AuditSeverity,
} from './audit-rules.js';
import { dedupKeyOf, makeAlert } from './conditions.js';
import { inPolicyScope, type AuditOverride, type AuditSettings, type Policy } from './policy.js';
import { compareText, gpuPool, poolKey, quotaFromPolicy, type PoolId } from './pool.js';
import { parseMemory } from './quantity.js';
import { compileRules } from './rules.js';
import type { Snapshot } from './snapshot.js';
import type { ObservedService } from './service.js';
import { plural } from './text.js';

export {
  AUDIT_RULE_IDS,
  AUDIT_RULES,
  type AuditRuleId,
  type AuditSeverity,
} from './audit-rules.js';

/**
 * The fleet audit: every GPU service checked against what Cloud Run's GPU documentation says a
 * GPU service must and should have. Pure: the services as read, the snapshot (usage, quotas) and
 * the policy in, the findings out, in a deterministic order. No I/O, no clock. This file runs the
 * rules (audit-rules.ts) through their checks (audit-checks.ts) and turns findings into alerts.
 *
 * Sources: https://cloud.google.com/run/docs/configuring/services/gpu (instance-based billing,
 * 4 vCPU and 16 GiB at least for an L4, 20 vCPU and 80 GiB for an RTX PRO 6000, one GPU per
 * instance on one container only, the per-region quota), the default TCP startup probe of
 * https://cloud.google.com/run/docs/configuring/healthchecks (240 s), the concurrency defaults of
 * https://cloud.google.com/run/docs/about-concurrency (80, or 80 × vCPUs with gcloud and
 * Terraform), and service-level max instances,
 * https://cloud.google.com/run/docs/configuring/max-instances.
 */

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

interface AuditInput {
  services: readonly ObservedService[];
  snapshot: Snapshot;
  policy: Policy;
}

/** Documented minimums per accelerator; a policy threshold below them is raised to them. */
const ACCELERATOR_MINIMUMS: Readonly<Record<string, { cpu: number; memory: string }>> = {
  'nvidia-l4': { cpu: 4, memory: '16Gi' },
  'nvidia-rtx-pro-6000': { cpu: 20, memory: '80Gi' },
};

/**
 * The GPU services of the policy's projects (and regions), each with the audit settings of the
 * rule that matches it and its usage as the snapshot read it: what every part of
 * {@link auditFleet} judges.
 */
interface Audited {
  s: GpuService;
  config: ReturnType<typeof effectiveSettings>;
  usage: Snapshot['services'][number]['usage'];
}

function auditedServices(input: AuditInput): Audited[] {
  const { services, snapshot, policy } = input;
  const resolve = compileRules(policy, Date.parse(snapshot.takenAt));
  const usage = new Map(snapshot.services.map((s) => [`${s.project}/${s.region}/${s.name}`, s]));
  const inScope = (s: ObservedService) => inPolicyScope(policy, s);
  return services
    .filter((s): s is GpuService => s.gpu !== null && inScope(s))
    .map((s) => {
      const settings = resolve({
        project: s.project,
        region: s.region,
        accelerator: s.gpu.accelerator,
        name: s.name,
        labels: s.labels,
      });
      const rule = settings.rule === null ? undefined : policy.services[settings.rule];
      return {
        s,
        config: effectiveSettings(policy.audit, rule?.audit),
        usage: usage.get(`${s.project}/${s.region}/${s.name}`)?.usage ?? null,
      };
    });
}

/**
 * The whole audit of a fleet from one resolution of the policy's rules: the findings (every GPU
 * service of the policy's projects and regions against every rule that is on), what it could not
 * judge (`unjudged`, `quotaUnjudged`) and the conditions of every service it judged (`audited`).
 */
export function auditFleet(input: AuditInput): {
  findings: AuditFinding[];
  unjudged: string[];
  quotaUnjudged: string[];
  audited: string[];
} {
  const audited = auditedServices(input);
  const quotaOf = quotaLookup(input.snapshot, input.policy);
  return {
    findings: findingsOfAudited(audited, quotaOf),
    unjudged: unjudgedOf(audited),
    quotaUnjudged: quotaUnjudgedOf(audited, quotaOf),
    audited: auditedKeysOf(audited),
  };
}

function findingsOfAudited(
  audited: readonly Audited[],
  quotaOf: (id: PoolId) => number | null,
): AuditFinding[] {
  const minLocked = minLockedByPool(audited.map((a) => a.s));

  const findings: AuditFinding[] = [];
  for (const { s, config, usage } of audited) {
    const pool = gpuPool(s);
    findings.push(
      ...findingsOf({
        s,
        config,
        thresholds: thresholdsFor(config, s.gpu.accelerator),
        quota: quotaOf(pool),
        usage,
        minLocked: minLocked.get(poolKey(pool)) ?? 0,
      }),
    );
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

/** GPUs that min instances hold, per pool (automatic scaling only: manual ones are fixed). */
function minLockedByPool(services: readonly GpuService[]): Map<string, number> {
  const minLocked = new Map<string, number>();
  for (const s of services) {
    if (s.scalingMode === 'MANUAL') continue;
    const key = poolKey(gpuPool(s));
    minLocked.set(key, (minLocked.get(key) ?? 0) + minInstances(s) * s.gpu.count);
  }
  return minLocked;
}

/** The rules one service breaks, each at the severity its settings give the rule. */
function findingsOf(ctx: ServiceContext): AuditFinding[] {
  const { s, config } = ctx;
  const pool = gpuPool(s);
  const findings: AuditFinding[] = [];
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
  return findings;
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
          summary: `${first.service} breaks ${plural(list.length, 'GPU rule')} (${counts}): ${list.map((f) => f.rule).join(', ')}`,
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

/**
 * The `service.misconfigured` conditions (dedupKeys) this audit could not judge whole: those of
 * the services whose `min-instances-unused` rule is on and would be checked (min instances above
 * 0, scaled automatically), but whose usage or GPU utilization observation could not read. The
 * check then finds nothing; that is not knowing, not fixed. Pass them, with the rule, to
 * {@link unjudgedMisconfigured}: a stored condition that holds that finding is kept as it is,
 * neither resolved nor re-notified, until a run can judge it (a run that reads the usage again,
 * or one that finds the min instances gone, the rule off or the service gone).
 */
function unjudgedOf(audited: readonly Audited[]): string[] {
  const keys: string[] = [];
  for (const { s, config, usage: read } of audited) {
    if (s.scalingMode === 'MANUAL' || minInstances(s) === 0) continue;
    if (config.rules['min-instances-unused'] === 'off') continue;
    // Judged when the usage is known and either its utilization is, or its peak alone passes it.
    if (read !== null && (read.peak > minInstances(s) || typeof read.utilization === 'number'))
      continue;
    const pool = gpuPool({ project: s.project, region: s.region, gpu: s.gpu });
    keys.push(dedupKeyOf('service.misconfigured', pool, s.name));
  }
  return keys.sort(compareText);
}

/**
 * The `service.misconfigured` conditions (dedupKeys) of every service this audit judged, with
 * findings or not: a stored one among them is about a service still there, so it is never "gone"
 * (a manually scaled service is in no plan, yet audited). Absent from the findings it resolves
 * only where the run judged its pool, and is kept where it did not (a quota that could not be
 * read leaves `max-within-quota` unjudged).
 */
function auditedKeysOf(audited: readonly Audited[]): string[] {
  return audited
    .map(({ s }) => dedupKeyOf('service.misconfigured', gpuPool(s), s.name))
    .sort(compareText);
}

/**
 * Of the conditions the audit found unjudged ({@link auditFleet}'s `unjudged`), those whose stored record holds the
 * finding this run could not judge (`details.findings`, rule `min-instances-unused`): they are
 * kept as stored when this run does not find them. A stored condition of other findings only is
 * judged as usual: resolved once those are fixed.
 */
export function unjudgedMisconfigured(
  unjudged: readonly string[],
  stored: Readonly<Record<string, { details: Record<string, unknown> }>>,
): string[] {
  return unjudged.filter((key) => {
    const findings = stored[key]?.details['findings'];
    return (
      Array.isArray(findings) &&
      findings.some(
        (f: unknown) =>
          typeof f === 'object' &&
          f !== null &&
          (f as { rule?: unknown }).rule === 'min-instances-unused',
      )
    );
  });
}

/**
 * The pools (keys, sorted) where a required `max-within-quota` could not be judged: a service's
 * rule is required there and the pool's quota is unknown (not in the policy, and not read), so
 * the check finds nothing. That is not a pass: `governor audit` exits 1 on it, as it does when
 * services could not be listed.
 */
function quotaUnjudgedOf(
  audited: readonly Audited[],
  quotaOf: (id: PoolId) => number | null,
): string[] {
  const keys = new Set<string>();
  for (const { s, config } of audited) {
    const level = config.rules['max-within-quota'] ?? AUDIT_RULES['max-within-quota'].severity;
    const pool = gpuPool(s);
    if (level === 'required' && quotaOf(pool) === null) keys.add(poolKey(pool));
  }
  return [...keys].sort(compareText);
}

/** True when a required rule failed: `governor audit` exits 1. */
export function hasRequiredFailure(findings: readonly AuditFinding[]): boolean {
  return findings.some((f) => f.severity === 'required');
}

// --- settings ---

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
  return (id) => quotaFromPolicy(policy, id) ?? read.get(poolKey(id)) ?? null;
}
