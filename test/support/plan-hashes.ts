import { createHash } from 'node:crypto';
import pc from 'picocolors';
import { renderPlan } from '../../src/cli/render.js';
import type { Plan } from '../../src/core/plan.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The hashes a recorded plan is compared by: `decisions`, the plan JSON without its reasons (`why`,
 * `reason`) and its alerts' one-line `summary` (what was decided, not how it is told); `json`, the whole plan JSON; `text`, its
 * rendering with every row (`governor plan --all`). A change to how a reason is told re-records
 * `json` and `text` and leaves every `decisions` as it was, so the fixture's diff shows that no
 * decision moved.
 */
export function planHashes(p: Plan): { decisions: string; json: string; text: string } {
  return {
    decisions: sha(
      JSON.stringify(p, (key, value: unknown) =>
        key === 'why' || key === 'reason' || key === 'summary' ? undefined : value,
      ),
    ),
    json: sha(JSON.stringify(p)),
    text: sha(renderPlan(p, pc.createColors(false), { all: true })),
  };
}
