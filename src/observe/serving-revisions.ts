import type { ObservationProblem } from '../core/problems.js';
import type { ObservedService, ServingRevision } from '../core/service.js';
import { errorMessage } from '../errors.js';
import type { CloudRunPort } from '../ports/index.js';

/**
 * The own max of each revision that can hold instances of a GPU service whose template does not
 * serve (traffic pinned on another revision, a split, a rollout in progress or a failed latest
 * revision): what its cap is then made of (`maxInForce`), when it sets no service-level max, or
 * beside that max for revisions only tagged.
 * Only those services are read, one GetRevision per revision, so a fleet whose templates serve
 * costs no call. A read that fails leaves the service counted coarsely, at the unset max, with
 * `revisionsUnread` saying why, and a problem noted: the run goes on.
 */
export async function withServingRevisions(
  run: CloudRunPort,
  services: readonly ObservedService[],
  problems: ObservationProblem[],
): Promise<ObservedService[]> {
  return Promise.all(
    services.map(async (s) => {
      if (!needsRevisions(s)) return s;
      const revisions = s.servingRevisions ?? [];
      const get = run.getRevisionMax?.bind(run);
      if (get === undefined)
        return { ...s, revisionsUnread: 'revisions cannot be read through this Cloud Run port' };
      try {
        const read = await Promise.all(
          revisions.map(async (r) =>
            wanted(s, r)
              ? { ...r, maxInstances: await get(s.project, s.region, s.name, r.name) }
              : r,
          ),
        );
        return { ...s, servingRevisions: read };
      } catch (error) {
        const why = errorMessage(error);
        problems.push({
          project: s.project,
          region: s.region,
          pool: null,
          subject: 'revisions',
          error: `${s.name}: ${why}`,
        });
        return { ...s, revisionsUnread: why };
      }
    }),
  );
}

/**
 * Whether a service's count needs its serving revisions read: a GPU service, not MANUAL, whose
 * template does not serve, and either without a service-level max (every serving revision) or
 * with revisions only tagged, which that max does not bound.
 */
export function needsRevisions(s: ObservedService): boolean {
  return (
    s.gpu !== null &&
    s.scalingMode !== 'MANUAL' &&
    s.templateServes === false &&
    (s.servingRevisions ?? []).some((r) => wanted(s, r))
  );
}

/** With a service-level max, only the revisions outside the split are read. */
function wanted(s: ObservedService, r: ServingRevision): boolean {
  return s.serviceMaxInstances === null || !r.inSplit;
}
