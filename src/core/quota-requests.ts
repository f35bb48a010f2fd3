import { z } from 'zod';
import { restated, type Alert } from './alert.js';
import { makeAlert, projectWide } from './conditions.js';
import { beyondSkew } from './duration.js';
import { withUniqueIds } from './notify.js';
import type { QuotaRecommendation, TrackedRequest } from './quota-pressure.js';
import type { RunContext } from './run-alerts.js';
import { CONTROL, oneLine } from './text.js';
import { unitLabel } from './units.js';
import { poolWords } from './pool.js';
import { samePreference } from './preference-name.js';

/**
 * The policy's `quotaRequests` section: whether the governor may ask Google for more quota where
 * a pool is under sustained pressure (src/core/quota-pressure.ts), by how much, and who Google
 * contacts. Off unless the policy turns it on.
 *
 * Google requires a contact email for an increase and accepts none for nothing else it needs:
 * `QuotaPreference.contact_email` "When requesting a quota increase, the email address is
 * required" (google/api/cloudquotas/v1/resources.proto, and
 * https://cloud.google.com/docs/quotas/reference/rest/v1/folders.locations.quotaPreferences).
 */

export const QuotaRequestsSettings = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'true: file a quota increase request (QuotaPreference) for a pool under sustained pressure.',
      ),
    maxIncrease: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(4)
      .describe('Most GPUs one request asks above the current quota (default 4).'),
    justification: z
      .string()
      .trim()
      .min(1)
      .max(500)
      .refine((s) => !CONTROL.test(s), 'must be one line of text without control characters')
      .optional()
      .describe("Opening words of every request's justification; the evidence follows."),
    contactEmail: z
      .email('expected an email address such as "gpu-team@example.com"')
      .max(254)
      .optional()
      .describe('Whom Google contacts about a request; required when enabled.'),
  })
  .describe('Quota increase requests to the Cloud Quotas API: docs/quota-requests.md.');
export type QuotaRequestsSettings = z.infer<typeof QuotaRequestsSettings>;

/** Faults of the section that span fields, on the raw document (see policy.ts `crossCheck`). */
export function checkQuotaRequests(raw: unknown): { path: string; message: string }[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return [];
  const r = raw as Record<string, unknown>;
  if (r.enabled === true && (r.contactEmail === undefined || r.contactEmail === '')) {
    return [
      {
        path: 'quotaRequests.contactEmail',
        message:
          'required when quotaRequests.enabled is true: Google requires a contact email for a quota increase',
      },
    ];
  }
  return [];
}

/**
 * What a pool's recommendation and its last tracked request say about filing one now: the value
 * to ask for, or why not. Never while one is pending; not within `cooldownDays` of the last
 * decision (the evidence before it was gathered under the old quota); at most `maxIncrease` above
 * the quota; only for a pool under sustained pressure (`recommend`).
 */
export function requestToFile(
  rec: QuotaRecommendation,
  last: TrackedRequest | undefined,
  settings: QuotaRequestsSettings,
  at: string,
  cooldownDays = 7,
): { file: true; preferredValue: number } | { file: false; why: string } {
  if (!settings.enabled) return { file: false, why: 'quota requests are off' };
  if (rec.status !== 'recommend' || rec.recommended === null || rec.quota === null)
    return { file: false, why: rec.why };
  if (last?.state === 'pending')
    return { file: false, why: `a request is pending: ${last.name} for ${last.preferredValue}` };
  if (last?.decidedAt && beyondSkew(last.decidedAt, Date.parse(at)))
    return {
      file: false,
      why: `the last request was ${last.state} at ${last.decidedAt}, later than now (a wrong clock or a hand edit): the cooldown of ${cooldownDays} days starts now`,
    };
  if (last?.decidedAt) {
    const since = Date.parse(at) - Date.parse(last.decidedAt);
    if (since < cooldownDays * 86_400_000)
      return {
        file: false,
        why: `the last request was ${last.state} at ${last.decidedAt}: none within ${cooldownDays} days of a decision`,
      };
  }
  return { file: true, preferredValue: askedAbove(rec.quota, rec.recommended, settings) };
}

/**
 * What one request asks: `wanted`, but at most `maxIncrease` above `quota` ("most GPUs one request
 * asks above the current quota"). The run asks it twice: above the quota it planned with when it
 * decides, then above Google's quota read just before filing, which a quota the policy sets above
 * it does not change.
 */
export function askedAbove(
  quota: number,
  wanted: number,
  settings: Pick<QuotaRequestsSettings, 'maxIncrease'>,
): number {
  return Math.min(wanted, quota + settings.maxIncrease);
}

/**
 * The tracked requests with every decision dated beyond `at` plus the clock skew allowed
 * (MAX_CLOCK_SKEW_MS, duration.ts) dated `at` instead: a wrong clock or a hand edit stamped it.
 * Kept as it is, a decision in 2099 would start a cooldown that ends after 2099, so nothing would
 * be filed for the pool again; dated now (the latest it can have happened), the cooldown ends
 * {@link requestToFile}'s days later, never sooner than it would have.
 */
export function redateDecisions(
  requests: Readonly<Record<string, TrackedRequest>>,
  at: string,
): Record<string, TrackedRequest> {
  const atMs = Date.parse(at);
  return Object.fromEntries(
    Object.entries(requests).map(([key, req]) => [
      key,
      req.decidedAt !== null && beyondSkew(req.decidedAt, atMs) ? { ...req, decidedAt: at } : req,
    ]),
  );
}

/**
 * A tracked request against its preference as read: still pending while Google reconciles it;
 * granted when the granted value reaches what was asked (or -1, unlimited); otherwise denied
 * (a partial grant included). Google names no "denied" state: a preference no longer reconciling
 * with a granted value below its preferred value is how a refusal shows (resources.proto
 * `reconciling`, `granted_value`, `state_detail`).
 */
export function judgeRequest(view: {
  reconciling: boolean;
  grantedValue: number | null;
  preferredValue: number;
}): 'pending' | 'granted' | 'denied' {
  if (view.reconciling) return 'pending';
  const g = view.grantedValue;
  if (g !== null && (g === -1 || (view.preferredValue !== -1 && g >= view.preferredValue)))
    return 'granted';
  return 'denied';
}

const where = (
  r: Pick<QuotaRecommendation, 'project' | 'region' | 'accelerator' | 'zonalRedundancy'>,
) => ({
  project: r.project,
  region: r.region,
  accelerator: r.accelerator,
  zonalRedundancy: r.zonalRedundancy,
});

/** quota.requested: the governor filed (or raised) a quota preference, with its evidence. */
export function quotaRequestedAlert(
  ctx: RunContext,
  rec: QuotaRecommendation,
  req: TrackedRequest,
  justification: string,
): Alert {
  return makeAlert(ctx, where(rec), {
    type: 'quota.requested',
    status: 'event',
    severity: 'INFO',
    summary: `Asked Google for a GPU quota of ${req.preferredValue} in ${poolWords(rec)} (now ${req.from ?? 'unknown'})`,
    details: {
      preference: req.name,
      quotaId: req.quotaId,
      // Google's quota when the request was filed (the run may have planned with another).
      from: req.from,
      preferredValue: req.preferredValue,
      traceId: req.traceId,
      justification,
      evidence: {
        daysCovered: rec.daysCovered,
        minutesAtBudget: rec.minutesAtBudget,
        refusedGpuMinutes: rec.refusedGpuMinutes,
        peakWanted: rec.peakWanted,
        recommended: rec.recommended,
      },
    },
  });
}

/** quota.granted / quota.denied: Google decided a tracked request. */
export function quotaDecidedAlert(
  ctx: RunContext,
  pool: { project: string; region: string; accelerator: string; zonalRedundancy: boolean },
  req: TrackedRequest,
): Alert {
  const granted = req.state === 'granted';
  const g = req.grantedValue;
  const detail = req.stateDetail ? `: ${req.stateDetail}` : '';
  // Someone lowered the preference below the quota it was filed at: a decrease, which Google
  // applies at once (no longer reconciling, granted what it asks). Not Google raising the quota.
  const lowered =
    granted && req.from !== null && req.preferredValue !== -1 && req.preferredValue < req.from;
  // Google granted more than the quota had but less than asked: a partial grant.
  const partial = !granted && g !== null && g !== -1 && req.from !== null && g > req.from;
  const summary = lowered
    ? `The GPU quota request in ${poolWords(pool)} now asks ${req.preferredValue}, below the ${req.from} it was filed at: someone lowered it, and the quota is ${g ?? req.preferredValue}`
    : granted
      ? `Google granted a GPU quota of ${g ?? req.preferredValue} in ${poolWords(pool)}`
      : partial
        ? `Google granted part of the GPU quota asked in ${poolWords(pool)}: ${g} of ${req.preferredValue} (it was ${req.from})${detail}`
        : `Google did not grant the GPU quota of ${req.preferredValue} asked in ${poolWords(pool)}${detail}`;
  return makeAlert(ctx, where(pool), {
    type: granted ? 'quota.granted' : 'quota.denied',
    status: 'event',
    severity: granted && !lowered ? 'INFO' : 'WARNING',
    summary: oneLine(summary).slice(0, 1000),
    details: {
      preference: req.name,
      quotaId: req.quotaId,
      from: req.from,
      preferredValue: req.preferredValue,
      grantedValue: req.grantedValue,
      stateDetail: req.stateDetail,
      traceId: req.traceId,
      filedAt: req.filedAt,
      by: req.by,
    },
  });
}

/**
 * The `quota.requested` a run stores in its outbox (pending outcome) before it files the
 * preference, as docs/rules.md, "Alerts" asks of every event: stored before the write it describes. It has
 * the id of the event the run sends once the call answered, which replaces it; a run that dies in
 * between leaves it for the next run to settle (`settlePlannedRequest`).
 */
export function plannedQuotaRequest(
  ctx: RunContext,
  rec: QuotaRecommendation,
  req: TrackedRequest,
  justification: string,
): Alert {
  const event = quotaRequestedAlert(ctx, rec, req, justification);
  const [planned] = withUniqueIds(
    [
      restated(
        event,
        `${event.summary} (planned; the run has not yet reported whether it was filed)`,
        { outcome: 'pending-outcome' },
      ),
    ],
    ctx.runId,
  );
  if (!planned) throw new Error('bug: no planned quota request');
  return planned;
}

/** A quota preference as a run sees it, for settling a planned request. */
export interface SeenPreference {
  /** `projects/{p}/locations/global/quotaPreferences/{id}`. */
  name: string;
  quotaId: string;
  /** Its `region` dimension; null when it has none (it then applies to every other region). */
  region: string | null;
  preferredValue: number;
  /** Null while Google has not granted anything. */
  grantedValue: number | null;
  /** Pending Google's approval and fulfilment. */
  reconciling: boolean;
}

/**
 * A planned `quota.requested` left by a run that ended before it said whether its call went
 * through, settled against the preferences this run listed, as `settlePlannedEvent` settles the
 * planned `rebalance.applied`: confirmed when the preference it names asks for the planned value
 * now (`outcome: confirmed-by-observation`), else `not-confirmed`, with what shows now
 * (`seenNow`: the pool's preference, or null when it has none: never filed). `seen` undefined:
 * the preferences could not be read (no Cloud Quotas port), which confirms nothing. Never
 * dropped: an event stored before its write is published.
 */
export function settlePlannedRequest(
  event: Alert,
  seen: readonly SeenPreference[] | undefined,
  settledBy: string,
): { alert: Alert; confirmed: SeenPreference | null } {
  const name = typeof event.details['preference'] === 'string' ? event.details['preference'] : '';
  const value = event.details['preferredValue'];
  const quotaId = event.details['quotaId'];
  // Google may list it under the project's number where it was filed under its id.
  const mine = seen?.find((p) => samePreference(p.name, name));
  const pools = seen?.find((p) => p.quotaId === quotaId && p.region === event.region);
  const now = mine ?? pools ?? null;
  const confirmed = mine !== undefined && mine.preferredValue === value ? mine : null;
  const ended = `run ${event.runId} ended before reporting`;
  const where = [event.region, event.accelerator].filter((x) => x !== null).join(' ');
  const state = (p: SeenPreference) =>
    p.reconciling ? 'pending' : judgeRequest(p) === 'granted' ? 'granted' : 'not granted';
  const summary = confirmed
    ? `Asked Google for a GPU quota of ${confirmed.preferredValue} in ${where} (${ended}; confirmed by observation: ${state(confirmed)})`
    : `The GPU quota request for ${String(value)} in ${where} is not confirmed (${ended}; ${
        seen === undefined
          ? 'the quota preferences could not be read'
          : now === null
            ? 'no preference for this quota shows: not filed'
            : `${now.name} asks for ${now.preferredValue}: not filed, or changed since`
      })`;
  return {
    confirmed,
    alert: {
      ...event,
      summary,
      details: {
        ...event.details,
        outcome: confirmed ? 'confirmed-by-observation' : 'not-confirmed',
        seenNow:
          now === null
            ? null
            : {
                preference: now.name,
                preferredValue: now.preferredValue,
                grantedValue: now.grantedValue,
                reconciling: now.reconciling,
              },
        settledBy,
      },
    },
  };
}

/** The Cloud Quotas calls of quota requests (the permission each needs: QUOTA_CALL_PERMISSION, reconcile/quota-requests.ts). */
export type QuotaCall = 'list' | 'get' | 'create' | 'update';

/** One Cloud Quotas preference call that failed in a run. */
export interface QuotaCallFailure {
  call: QuotaCall;
  /** The resource the call was on: a parent or a preference name. */
  resource: string;
  /**
   * `denied`: PERMISSION_DENIED or UNAUTHENTICATED; `failed`: every other error; `refused`: the
   * governor did not make the call, or use what it read, for the reason in `error` (a value no
   * GPU count can be, an update without the etag read): nothing was filed for the pool.
   */
  kind: 'denied' | 'failed' | 'refused';
  /** For a denial: what the error names, else the permission Google documents for the call. */
  permissions: string[];
  error: string;
}

/**
 * governor.degraded (reason `quota-requests`): a Cloud Quotas preference call failed, so quota
 * requests are not filed or not tracked in the project. A condition of its own (key
 * `quota-requests`), apart from the caps: it never stops the governing run, and it resolves at the
 * next run whose preference calls all succeed. A denial names the permission and the resource
 * (docs/rules.md, "Alerts").
 */
export function quotaRequestsDegradedAlert(
  ctx: RunContext,
  project: string,
  failures: readonly QuotaCallFailure[],
): Alert | null {
  if (failures.length === 0) return null;
  const denied = failures.filter((f) => f.kind === 'denied');
  const first = denied[0] ?? failures[0];
  if (!first) return null;
  const summary =
    first.kind === 'denied'
      ? `Quota requests in ${unitLabel({ project, ...ctx })} are not filed or tracked: permission ${first.permissions.join(' and ')} denied on ${first.resource}; grant it to the governor's service account`
      : first.kind === 'refused'
        ? `Quota requests in ${unitLabel({ project, ...ctx })}: nothing filed for a pool: ${first.error}`
        : `Quota requests in ${unitLabel({ project, ...ctx })} are not filed or tracked: the Cloud Quotas ${first.call} call on ${first.resource} failed: ${first.error}`;
  return makeAlert(ctx, projectWide(ctx, project), {
    type: 'governor.degraded',
    severity: 'WARNING',
    key: 'quota-requests',
    summary: summary.slice(0, 1000),
    details: {
      reason: 'quota-requests',
      failures: failures.slice(0, 20).map((f) => ({
        call: f.call,
        resource: f.resource,
        kind: f.kind,
        ...(f.kind === 'denied' ? { permissions: f.permissions } : {}),
        error: f.error.slice(0, 500),
      })),
    },
  });
}
