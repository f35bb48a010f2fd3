import type { ObservationProblem } from '../core/problems.js';
import type { ObservedService } from '../core/service.js';
import { errorMessage } from '../errors.js';
import type { CloudRunPort } from '../ports/index.js';

/**
 * The own max of each revision that can hold instances of a GPU service whose template does not
 * serve (traffic pinned on another revision, a split, a rollout in progress or a failed latest
 * revision) and that sets no service-level max: what its cap is then made of (`maxInForce`).
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
          revisions.map(async (r) => ({
            ...r,
            maxInstances: await get(s.project, s.region, s.name, r.name),
          })),
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

function needsRevisions(s: ObservedService): boolean {
  return (
    s.gpu !== null &&
    s.scalingMode !== 'MANUAL' &&
    s.templateServes === false &&
    s.serviceMaxInstances === null &&
    (s.servingRevisions ?? []).length > 0
  );
}
