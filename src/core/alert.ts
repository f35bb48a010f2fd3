import { z } from 'zod';

/**
 * The alert message: one JSON object per event, the subscribers' contract (docs/alerts.md).
 * Conditions (`firing` / `resolved`) and events (`event`) share this shape.
 */
export const ALERT_TYPES = [
  'rebalance.applied',
  'rebalance.planned',
  'service.starved',
  'pool.pressure',
  'pool.infeasible',
  'pool.over-budget',
  'quota.changed',
  'apply.failed',
  'governor.degraded',
  'service.misconfigured',
  // Quota requests (docs/quota-requests.md).
  'quota.requested',
  'quota.granted',
  'quota.denied',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const Severity = z.enum(['INFO', 'WARNING', 'ERROR', 'CRITICAL']);
export type Severity = z.infer<typeof Severity>;

export const Alert = z.strictObject({
  version: z.literal(1),
  id: z.string().min(1),
  type: z.enum(ALERT_TYPES),
  status: z.enum(['firing', 'resolved', 'event']),
  severity: Severity,
  project: z.string(),
  region: z.string().nullable(),
  accelerator: z.string().nullable(),
  zonalRedundancy: z.boolean().nullable(),
  service: z.string().nullable(),
  summary: z.string().min(1),
  details: z.record(z.string(), z.unknown()),
  runId: z.string().min(1),
  time: z.iso.datetime({ offset: true }),
  dedupKey: z.string().min(1),
});
export type Alert = z.infer<typeof Alert>;

/** Pub/Sub attributes of an alert, so that subscriptions can filter without parsing `data`. */
export function alertAttributes(a: Alert): Record<string, string> {
  const attrs: Record<string, string> = {
    type: a.type,
    severity: a.severity,
    status: a.status,
    project: a.project,
  };
  if (a.region !== null) attrs.region = a.region;
  if (a.service !== null) attrs.service = a.service;
  return attrs;
}
