import type { Plan } from './plan.js';
import type { Snapshot } from './snapshot.js';

/**
 * The snapshot as it would be observed right after `plan` was carried out, on the same usage
 * data (the same usage, minute by minute): each changed service gets its new max, a raised one
 * its `lastChangedAt`, a lowered one its `lastLoweredAt`. Used to check idempotence (rule 7):
 * nothing of the usage is adjusted to the new caps, so a cap alone must not read as evidence.
 */
export function applyPlan(snapshot: Snapshot, plan: Plan): Snapshot {
  const byKey = new Map(plan.changes.map((c) => [`${c.project}/${c.region}/${c.name}`, c]));
  return {
    ...snapshot,
    services: snapshot.services.map((s) => {
      const change = byKey.get(`${s.project}/${s.region}/${s.name}`);
      if (!change) return s;
      return {
        ...s,
        maxInstances: change.to,
        lastChangedAt: change.to > change.from ? plan.at : s.lastChangedAt,
        lastLoweredAt: change.to < change.from ? plan.at : (s.lastLoweredAt ?? null),
      };
    }),
  };
}
