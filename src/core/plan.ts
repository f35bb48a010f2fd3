import { z } from 'zod';
import { Alert } from './alert.js';
import { samePool, type PoolId } from './pool.js';
import { PlanWhy } from './why.js';

/** The plan: what the governor decided, and why. Its JSON is the `--json` output. */

export const POOL_STATUSES = [
  'ok',
  'pressure',
  'over-budget',
  'infeasible',
  'unknown-quota',
] as const;
export type PoolStatus = (typeof POOL_STATUSES)[number];

const Gpus = z.number().int();

export const PlanPool = z.strictObject({
  project: z.string(),
  region: z.string(),
  accelerator: z.string(),
  zonalRedundancy: z.boolean(),
  quota: Gpus.nullable().describe('GPUs; null when unknown.'),
  quotaSource: z
    .string()
    .describe(
      '"policy", or the snapshot\'s source ("cloudquotas", else "snapshot"); when the quota is unknown, "unknown", followed by why in parentheses when the snapshot recorded it: "unknown (unreadable: <error>)".',
    ),
  reserve: Gpus,
  unmanagedGpus: Gpus.describe(
    'Caps of unmanaged services plus other unmanaged usage (worker pools, jobs).',
  ),
  unmanaged: z
    .array(
      z.strictObject({
        source: z.string().describe('"service NAME", "worker pool NAME", "job NAME", ...'),
        gpus: Gpus,
      }),
    )
    .describe('What makes up unmanagedGpus, by source, largest first.'),
  budget: Gpus.nullable().describe(
    "quota − reserve − unmanagedGpus; null when the quota is unknown, or what uses the pool's GPUs outside the governed caps could not be read.",
  ),
  capsBefore: Gpus.describe('Sum of governed caps (max instances × GPUs) before the plan.'),
  capsAfter: Gpus.describe('Sum of governed caps after the plan.'),
  inUse: Gpus.describe(
    'GPUs governed services had in use at the latest sample (known usage only).',
  ),
  floors: Gpus.describe(
    'Sum of governed floors in GPUs; a service left as it is (deploying, or one Cloud Run accepts no max for) counts at its cap.',
  ),
  demand: Gpus.describe(
    'Sum of governed demand in GPUs, each within its floor and ceiling and at least what it has in use up to its cap; a service whose usage is unknown counts at its cap within its floor and ceiling, one left as it is at its cap.',
  ),
  status: z.enum(POOL_STATUSES),
  note: z.string().describe('One line on the state of the pool.'),
});
export type PlanPool = z.infer<typeof PlanPool>;

export const PlanService = z.strictObject({
  project: z.string(),
  region: z.string(),
  name: z.string(),
  accelerator: z.string(),
  zonalRedundancy: z.boolean(),
  managed: z.boolean(),
  gpusPerInstance: z.number().int().min(1),
  from: z.number().int().min(0).describe('Max instances before.'),
  to: z.number().int().min(0).describe('Max instances after.'),
  floor: z.number().int().nullable(),
  ceiling: z.number().int().nullable(),
  demand: z
    .number()
    .int()
    .nullable()
    .describe(
      'Estimated demand in instances; null where none was estimated: usage unknown, the service deploying or its max not writable (its cap held as it is), or unmanaged.',
    ),
  inUse: z.number().int().nullable(),
  peak: z.number().int().nullable(),
  priority: z.number().nullable(),
  weight: z.number().nullable(),
  rule: z.number().int().nullable().describe('Index of the matching policy rule.'),
  window: z.number().int().nullable().describe('Index of the schedule window in force.'),
  why: PlanWhy,
  reason: z.string().describe('`why` in words.'),
});
export type PlanService = z.infer<typeof PlanService>;

export const PlanChange = z.strictObject({
  project: z.string(),
  region: z.string(),
  name: z.string(),
  accelerator: z.string(),
  zonalRedundancy: z.boolean(),
  from: z.number().int().min(0),
  to: z.number().int().min(0),
  gpusPerInstance: z.number().int().min(1),
  etag: z.string(),
  why: PlanWhy,
  reason: z.string().describe('`why` in words.'),
});
export type PlanChange = z.infer<typeof PlanChange>;

export const Plan = z.strictObject({
  version: z.literal(1),
  at: z.iso.datetime({ offset: true }),
  runId: z.string(),
  mode: z.enum(['enforce', 'dry-run']),
  pools: z.array(PlanPool),
  services: z.array(PlanService),
  changes: z.array(PlanChange).describe('In execution order: within each pool, decreases first.'),
  deferred: z.array(PlanChange).describe('Changes held back by limits.maxChangesPerRun.'),
  alerts: z.array(Alert),
});
export type Plan = z.infer<typeof Plan>;

/**
 * The order a plan's changes are carried out in (rule 1: within quota after every write): the
 * decreases of urgent pools (over budget, infeasible), then their increases, then the other pools
 * in the order given, each pool's decreases before its increases. Any prefix of it keeps every
 * pool within budget, and a short limits.maxChangesPerRun spends its writes on bringing urgent
 * pools back before it raises anything in them: the limit keeps a prefix, the rest waits for a
 * later run. Used by the plan and by the restore plan alike.
 */
export function executionOrder<T>(
  pools: readonly { urgent: boolean; changes: readonly T[] }[],
  lowers: (change: T) => boolean,
): T[] {
  const down = (p: { changes: readonly T[] }) => p.changes.filter(lowers);
  const up = (p: { changes: readonly T[] }) => p.changes.filter((c) => !lowers(c));
  const urgent = pools.filter((p) => p.urgent);
  return [
    ...urgent.flatMap(down),
    ...urgent.flatMap(up),
    ...pools.filter((p) => !p.urgent).flatMap((p) => [...down(p), ...up(p)]),
  ];
}

/** An urgent pool: its changes come first (executionOrder). */
export function isUrgent(status: PoolStatus): boolean {
  return status === 'over-budget' || status === 'infeasible';
}

/** A pool's quota as the plan has it (null: unknown, or a pool the plan does not list). */
export function quotaInPlan(plan: Plan, pool: PoolId): number | null {
  return plan.pools.find((p) => samePool(p, pool))?.quota ?? null;
}
