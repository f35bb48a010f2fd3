import type { Plan } from './plan.js';
import type { Snapshot } from './snapshot.js';
import { estimateDemand } from './demand.js';

/**
 * The snapshot as it would be observed right after `plan` was carried out, on the same usage
 * data: each changed service gets its new max, a raised one its `lastChangedAt`, and each keeps
 * the saturation it showed under the cap in force when it was observed. Used to check idempotence
 * and, later, by the simulator.
 */
export function applyPlan(snapshot: Snapshot, plan: Plan): Snapshot {
  const byKey = new Map(plan.changes.map((c) => [`${c.project}/${c.region}/${c.name}`, c]));
  return {
    ...snapshot,
    services: snapshot.services.map((s) => {
      const change = byKey.get(`${s.project}/${s.region}/${s.name}`);
      if (!change) return s;
      const usage = s.usage && {
        ...s.usage,
        saturated: s.usage.saturated ?? estimateDemand(s.usage, s.maxInstances, 0, 1).saturated,
      };
      return {
        ...s,
        maxInstances: change.to,
        lastChangedAt: change.to > change.from ? plan.at : s.lastChangedAt,
        usage,
      };
    }),
  };
}
