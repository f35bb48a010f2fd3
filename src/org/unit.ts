import { durationMs } from '../core/duration.js';
import type { Policy } from '../core/policy.js';
import { unitLabel } from '../core/units.js';
import { staleReason, type WorkMessage } from '../core/work.js';
import type { DiscoveryCacheStore } from '../ports/index.js';

/**
 * The unit side of the fan-out: may this work message be governed, and with which policy. A
 * message may only name a project the policy governs: one it lists, or one its discovery found
 * (the kept result, whatever its age). Anything else is refused before any read or write, so
 * that whoever can publish to the work topic cannot point the governor at another project.
 */
export type UnitDecision =
  /** `region`: a regional unit (its state under `project@region`: src/core/units.ts). */
  | { kind: 'govern'; policy: Policy; region?: string }
  | { kind: 'refuse'; reason: string }
  | { kind: 'stale'; reason: string };

export async function decideUnit(
  policy: Policy,
  message: WorkMessage,
  deps: { cache: DiscoveryCacheStore; nowMs: number },
): Promise<UnitDecision> {
  const staleAfter = durationMs(policy.fanout?.staleAfter ?? '30m');
  const stale = staleReason(message, deps.nowMs, staleAfter);
  const label = unitLabel(message);
  if (stale) return { kind: 'stale', reason: `${label}: ${stale}` };
  const { region } = message;
  // Only a policy that splits has its whole-project runs look for regional leases.
  if (region !== undefined && policy.fanout?.splitAbove === undefined) {
    return {
      kind: 'refuse',
      reason: `${label}: the policy sets no fanout.splitAbove, so it governs no project by region`,
    };
  }
  if (region !== undefined && policy.regions !== undefined && !policy.regions.includes(region)) {
    return {
      kind: 'refuse',
      reason: `${label}: the policy's regions (${policy.regions.join(', ')}) leave out ${region}`,
    };
  }
  let known = policy.projects.includes(message.project);
  // A regional unit also needs its region counted by the kept discovery: the regions a run of
  // the whole project checks for regional leases (src/reconcile/unit-lease.ts).
  const cached =
    (!known || region !== undefined) && policy.discovery ? await deps.cache.loadDiscovery() : null;
  if (!known) known = cached?.projects.includes(message.project) ?? false;
  if (!known) {
    return {
      kind: 'refuse',
      reason: `project ${message.project} is neither in the policy's projects nor among those its discovery found`,
    };
  }
  if (region !== undefined && !cached?.services?.[message.project]?.[region]) {
    return {
      kind: 'refuse',
      reason: `${label}: the kept discovery counts no Cloud Run service of ${message.project} in ${region}, so no regional unit governs it`,
    };
  }
  // The unit: the same policy, narrowed to its one project (its lease, state and run record),
  // and for a regional unit to its one region.
  if (region === undefined)
    return { kind: 'govern', policy: { ...policy, projects: [message.project] } };
  return {
    kind: 'govern',
    policy: { ...policy, projects: [message.project], regions: [region] },
    region,
  };
}
