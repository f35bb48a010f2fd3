import { createHash } from 'node:crypto';

import type { Alert } from '../core/alert.js';
import type { Policy } from '../core/policy.js';
import {
  quotaJustification,
  recommendQuotas,
  type PressureLedger,
  type QuotaRecommendation,
  type TrackedRequest,
} from '../core/quota-pressure.js';
import {
  judgeRequest,
  quotaDecidedAlert,
  quotaRequestedAlert,
  requestToFile,
} from '../core/quota-requests.js';
import type { RunContext } from '../core/run-alerts.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { Logger } from '../log.js';
import type { QuotaPreferenceView, QuotaRequestPort } from '../ports/index.js';

/**
 * Quota requests in a run (docs/quota-requests.md): refresh the pools' pending requests (granted
 * or denied → an event), then file one for each pool whose pressure argues for it and that has
 * none pending. Another actor is expected: the project's preferences are listed before any
 * write; a preference pending for the pool (whoever filed it) is tracked, never doubled; one for
 * as much or more is left alone; a lower one is raised with its etag; a create or update that
 * loses a race (ALREADY_EXISTS, ABORTED) files nothing this run. A failure is logged and files
 * nothing; it never fails the governing run.
 */
export async function runQuotaRequests(input: {
  policy: Policy;
  port: QuotaRequestPort | undefined;
  ctx: RunContext;
  project: string;
  ledger: PressureLedger;
  mode: Policy['mode'];
  log: Logger;
}): Promise<{ ledger: PressureLedger; events: Alert[] }> {
  const { policy, port, ctx, project, log } = input;
  const settings = policy.quotaRequests;
  if (!settings?.enabled || !port || input.mode !== 'enforce')
    return { ledger: input.ledger, events: [] };
  const tracked: Record<string, TrackedRequest> = { ...(input.ledger.requests ?? {}) };
  const events: Alert[] = [];
  const pools = input.ledger.pools;

  for (const [key, req] of Object.entries(tracked)) {
    if (req.state !== 'pending') continue;
    const pool = pools[key];
    let view: QuotaPreferenceView;
    try {
      view = await port.getPreference(req.name);
    } catch (e) {
      if (e instanceof NotFoundError) {
        log.log('WARNING', `${key}: quota request ${req.name} no longer exists; no longer tracked`);
        delete tracked[key];
      } else {
        log.log('WARNING', `${key}: could not read quota request ${req.name}: ${message(e)}`);
      }
      continue;
    }
    const state = judgeRequest(view);
    if (state === 'pending') continue;
    const decided: TrackedRequest = {
      ...req,
      preferredValue: view.preferredValue,
      state,
      decidedAt: ctx.at,
      grantedValue: view.grantedValue,
      stateDetail: view.stateDetail.slice(0, 2000),
      traceId: view.traceId.slice(0, 500) || req.traceId,
    };
    tracked[key] = decided;
    if (pool) events.push(quotaDecidedAlert(ctx, pool, decided));
  }

  const recs = recommendQuotas(input.ledger, ctx.at).filter((r) => r.project === project);
  let listed: QuotaPreferenceView[] | null = null;
  for (const rec of recs) {
    const decision = requestToFile(rec, tracked[rec.key], settings, ctx.at);
    if (!decision.file) continue;
    const quotaId = port.quotaIdOf(rec.accelerator, rec.zonalRedundancy);
    try {
      listed ??= await port.listPreferences(project);
      const existing = listed.find((p) => p.quotaId === quotaId && p.region === rec.region);
      const justification = quotaJustification(rec, settings.justification ?? '');
      const filed = await file(port, rec, quotaId, existing, decision.preferredValue, {
        justification,
        contactEmail: settings.contactEmail ?? '',
        project,
      });
      if (filed.kind === 'skip') {
        log.log('INFO', `${rec.key}: no quota request filed: ${filed.why}`);
        if (filed.track) tracked[rec.key] = track(filed.track, rec, ctx.at, 'found');
        continue;
      }
      const req = track(filed.view, rec, ctx.at, 'governor');
      tracked[rec.key] = req;
      events.push(quotaRequestedAlert(ctx, rec, req, justification));
    } catch (e) {
      if (e instanceof ConflictError) {
        // Someone filed or changed this quota's preference between our read and our write.
        log.log(
          'INFO',
          `${rec.key}: no quota request filed: another change won the race (${message(e)})`,
        );
        listed = null;
        continue;
      }
      log.log('WARNING', `${rec.key}: could not file a quota request: ${message(e)}`);
    }
  }
  const ledger: PressureLedger = { ...input.ledger };
  if (Object.keys(tracked).length > 0) ledger.requests = tracked;
  else delete ledger.requests;
  return { ledger, events };
}

type Filed =
  | { kind: 'filed'; view: QuotaPreferenceView }
  | { kind: 'skip'; why: string; track?: QuotaPreferenceView };

async function file(
  port: QuotaRequestPort,
  rec: QuotaRecommendation,
  quotaId: string,
  existing: QuotaPreferenceView | undefined,
  preferredValue: number,
  what: { justification: string; contactEmail: string; project: string },
): Promise<Filed> {
  if (existing?.reconciling)
    return {
      kind: 'skip',
      why: `${existing.name} is already pending for ${existing.preferredValue}`,
      track: existing,
    };
  if (existing && (existing.preferredValue === -1 || existing.preferredValue >= preferredValue))
    return {
      kind: 'skip',
      why: `${existing.name} already asks for ${existing.preferredValue} (granted ${existing.grantedValue ?? 'nothing'})`,
    };
  if (existing) {
    const view = await port.updatePreference({
      name: existing.name,
      etag: existing.etag,
      preferredValue,
      justification: what.justification,
      contactEmail: what.contactEmail,
    });
    return { kind: 'filed', view };
  }
  const view = await port.createPreference({
    project: what.project,
    id: preferenceId(rec.region, quotaId),
    quotaId,
    region: rec.region,
    preferredValue,
    justification: what.justification,
    contactEmail: what.contactEmail,
  });
  return { kind: 'filed', view };
}

/** A stable id per (region, quota id): `gpu-governor-REGION-HASH`, at most 63 characters. */
export function preferenceId(region: string, quotaId: string): string {
  const hash = createHash('sha256').update(`${region}/${quotaId}`).digest('hex').slice(0, 8);
  return `gpu-governor-${region.slice(0, 40)}-${hash}`;
}

function track(
  view: QuotaPreferenceView,
  rec: QuotaRecommendation,
  at: string,
  by: TrackedRequest['by'],
): TrackedRequest {
  return {
    name: view.name,
    quotaId: view.quotaId,
    preferredValue: view.preferredValue,
    from: rec.quota,
    filedAt: at,
    by,
    state: 'pending',
    decidedAt: null,
    grantedValue: view.grantedValue,
    stateDetail: view.stateDetail.slice(0, 2000),
    traceId: view.traceId.slice(0, 500),
  };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
