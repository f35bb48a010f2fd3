import { durationMs } from '../core/duration.js';
import type { Policy } from '../core/policy.js';
import { staleReason, type WorkMessage } from '../core/work.js';
import type { DiscoveryCacheStore } from '../ports/index.js';

/**
 * The unit side of the fan-out: may this work message be governed, and with which policy. A
 * message may only name a project the policy governs: one it lists, or one its discovery found
 * (the kept result, whatever its age). Anything else is refused before any read or write, so
 * that whoever can publish to the work topic cannot point the governor at another project.
 */
export type UnitDecision =
  | { kind: 'govern'; policy: Policy }
  | { kind: 'refuse'; reason: string }
  | { kind: 'stale'; reason: string };

export async function decideUnit(
  policy: Policy,
  message: WorkMessage,
  deps: { cache: DiscoveryCacheStore; nowMs: number },
): Promise<UnitDecision> {
  const staleAfter = durationMs(policy.fanout?.staleAfter ?? '30m');
  const stale = staleReason(message, deps.nowMs, staleAfter);
  if (stale) return { kind: 'stale', reason: `${message.project}: ${stale}` };
  let known = policy.projects.includes(message.project);
  if (!known && policy.discovery) {
    const cached = await deps.cache.loadDiscovery();
    known = cached?.projects.includes(message.project) ?? false;
  }
  if (!known) {
    return {
      kind: 'refuse',
      reason: `project ${message.project} is neither in the policy's projects nor among those its discovery found`,
    };
  }
  // The unit: the same policy, narrowed to its one project (its lease, state and run record).
  return { kind: 'govern', policy: { ...policy, projects: [message.project] } };
}
