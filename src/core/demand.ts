import { z } from 'zod';
import { RefusalEvidence, refusalText, RisingEvidence, risingText } from './evidence.js';
import type { Usage } from './snapshot.js';

/**
 * Demand: the instances a service needs, estimated from what it used. The formula (also in the
 * README, and spelled out in every service's reason):
 *
 *   base      = max(peak over the lookback, in use now)
 *   demand    = ceil(base × (1 + headroom))                          (0 when base is 0)
 *   refused   = Cloud Run answered it 429 within the reclaim window (per-minute evidence,
 *               evidence.ts): the minute that wanted the most, W instances
 *             → demand ≥ ceil(W × (1 + headroom))
 *   saturated = the snapshot says it ran at its cap (usage.saturated; older snapshots without
 *               refusal counts)
 *             → demand ≥ base + max(1, ceil(base × 2 × headroom)): it may need more than it
 *               could show, so it gets twice the headroom
 *   busy GPUs = in use × utilization ÷ target utilization, where utilization is known
 *             → demand ≥ ceil(busy GPUs)
 *
 * A cap alone is not evidence (rule 7): a peak equal to the cap is not read as saturation, so
 * planning again after a plan lowered a cap to a service's peak does not raise it back.
 */
const Int = z.number().int().min(0);

/** The estimate, with each step that set it: what a service's reason says about its demand. */
export const DemandEstimate = z.strictObject({
  instances: Int.describe('The estimate, in instances.'),
  saturated: z
    .boolean()
    .describe('It was refused within the reclaim window, or the snapshot says it ran at its cap.'),
  peak: Int.describe('Peak over the lookback.'),
  inUse: Int.describe('In use at the latest sample.'),
  headroom: z.number().min(0),
  withHeadroom: Int.describe('ceil(max(peak, in use) × (1 + headroom)); 0 when idle.'),
  atCap: z
    .strictObject({ cap: Int, instances: Int })
    .nullable()
    .describe(
      'The snapshot says it ran at its cap (usage.saturated), so twice the headroom: set when that raised the estimate.',
    ),
  refusals: RefusalEvidence.nullable()
    .optional()
    .describe('Refusals in the reclaim window; absent or null when the snapshot has no counts.'),
  rising: RisingEvidence.optional().describe(
    'Set when use rose in each of the newest three minutes: its next step counts as one more minute of the likelihood (evidence.ts).',
  ),
  refusedTo: Int.nullable()
    .optional()
    .describe('Instances wanted when refused, plus headroom: set when that raised the estimate.'),
  busy: z
    .strictObject({
      utilization: z.number().min(0).max(1),
      target: z.number(),
      inUse: Int,
      instances: Int,
    })
    .nullable()
    .describe('GPU utilization over the target: set when that raised the estimate.'),
});
export type DemandEstimate = z.infer<typeof DemandEstimate>;

const EPS = 1e-9;

/** The policy's demand from a peak: ceil(base × (1 + headroom)), 0 when base is 0. */
export function withHeadroom(base: number, headroom: number): number {
  return base === 0 ? 0 : Math.ceil(base * (1 + headroom) - EPS);
}
/**
 * A share as a percentage to two decimals (0.125 → "12.5%", 0.2 → "20%"): a headroom or target
 * the policy sets to a part percent is told as it is, so the reason's sum gives its result.
 */
const pct = (x: number): string => `${Math.round(x * 10_000) / 100}%`;

export function estimateDemand(
  usage: Usage,
  maxInstances: number,
  headroom: number,
  targetUtilization: number,
  refusals: RefusalEvidence | null = null,
  rising: RisingEvidence | null = null,
): DemandEstimate {
  const base = Math.max(usage.peak, usage.current);
  const headroomed = withHeadroom(base, headroom);
  let instances = headroomed;
  let atCap: DemandEstimate['atCap'] = null;
  let busy: DemandEstimate['busy'] = null;
  let refusedTo: number | null = null;
  const refused = refusals !== null && refusals.minutes > 0;
  if (refused && refusals.wanted) {
    const need = Math.ceil(refusals.wanted.instances * (1 + headroom) - EPS);
    if (need > instances) instances = refusedTo = need;
  }
  // Refusal counts, where read, are the evidence; otherwise only what the snapshot says.
  const told = refusals === null && usage.saturated === true;
  const saturated = refused || told;
  if (told) {
    // It used all it was allowed, so its real demand is unknown: grow by twice the headroom (at
    // least one instance). Measured from the peak, not the cap, so that raising the cap does not
    // raise the estimate again on the same data.
    const grown = base + Math.max(1, Math.ceil(base * 2 * headroom - EPS));
    if (grown > instances) {
      instances = grown;
      atCap = { cap: maxInstances, instances: grown };
    }
  }
  const util = usage.utilization;
  if (util !== null && util !== undefined && usage.current > 0) {
    const need = Math.ceil((usage.current * util) / targetUtilization - EPS);
    if (need > instances) {
      instances = need;
      busy = {
        utilization: util,
        target: targetUtilization,
        inUse: usage.current,
        instances: need,
      };
    }
  }
  const estimate: DemandEstimate = {
    instances,
    saturated,
    peak: usage.peak,
    inUse: usage.current,
    headroom,
    withHeadroom: headroomed,
    atCap,
    busy,
  };
  // Present only where the snapshot has refusal counts (and last, in the JSON as before).
  if (refusals !== null) {
    estimate.refusals = refusals;
    estimate.refusedTo = refusedTo;
  }
  if (rising) estimate.rising = rising;
  return estimate;
}

/** The estimate in words, step by step. */
export function explainDemand(d: DemandEstimate): string {
  let text =
    Math.max(d.peak, d.inUse) === 0
      ? 'idle over the lookback'
      : `peak ${d.peak}${d.inUse > d.peak ? ` (in use ${d.inUse})` : ''} + ${pct(d.headroom)} headroom = ${d.withHeadroom}`;
  if (d.refusals) text += `; ${refusalText(d.refusals)}`;
  if (d.refusedTo) text += `, + ${pct(d.headroom)} headroom = ${d.refusedTo}`;
  if (d.rising) text += `; ${risingText(d.rising)}`;
  if (d.atCap)
    text += `; ran at its cap of ${d.atCap.cap}, so twice the headroom: ${d.atCap.instances}`;
  if (d.busy)
    text += `; GPU utilization ${pct(d.busy.utilization)} over target ${pct(d.busy.target)} on ${d.busy.inUse} in use, so ${d.busy.instances}`;
  return text;
}
