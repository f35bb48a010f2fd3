import type { Usage } from './snapshot.js';

/**
 * Demand: the instances a service needs, estimated from what it used. The formula (also in the
 * README, and spelled out in every service's reason):
 *
 *   base      = max(peak over the lookback, in use now)
 *   demand    = ceil(base × (1 + headroom))                          (0 when base is 0)
 *   saturated = the service ran at its cap during the lookback
 *               (usage.saturated, or else peak ≥ current max)
 *             → demand ≥ base + max(1, ceil(base × 2 × headroom)): it may need more than it
 *               could show, so it gets twice the headroom
 *   busy GPUs = in use × utilization ÷ target utilization, where utilization is known
 *             → demand ≥ ceil(busy GPUs)
 */
export interface DemandEstimate {
  instances: number;
  saturated: boolean;
  explain: string;
}

const EPS = 1e-9;
const pct = (x: number): string => `${Math.round(x * 100)}%`;

export function estimateDemand(
  usage: Usage,
  maxInstances: number,
  headroom: number,
  targetUtilization: number,
): DemandEstimate {
  const base = Math.max(usage.peak, usage.current);
  let instances = base === 0 ? 0 : Math.ceil(base * (1 + headroom) - EPS);
  let explain =
    base === 0
      ? 'idle over the lookback'
      : `peak ${usage.peak}${usage.current > usage.peak ? ` (in use ${usage.current})` : ''} + ${pct(headroom)} headroom = ${instances}`;
  const saturated = usage.saturated ?? (maxInstances > 0 && usage.peak >= maxInstances);
  if (saturated) {
    // It used all it was allowed, so its real demand is unknown: grow by twice the headroom (at
    // least one instance). Measured from the peak, not the cap, so that raising the cap does not
    // raise the estimate again on the same data.
    const grown = base + Math.max(1, Math.ceil(base * 2 * headroom - EPS));
    if (grown > instances) {
      instances = grown;
      explain += `; ran at its cap of ${maxInstances}, so twice the headroom: ${grown}`;
    }
  }
  const util = usage.utilization;
  if (util !== null && util !== undefined && usage.current > 0) {
    const busy = Math.ceil((usage.current * util) / targetUtilization - EPS);
    if (busy > instances) {
      instances = busy;
      explain += `; GPU utilization ${pct(util)} over target ${pct(targetUtilization)} on ${usage.current} in use, so ${busy}`;
    }
  }
  return { instances, saturated, explain };
}
