import { createHash } from 'node:crypto';

import type { Alert } from '../core/alert.js';
import type { Policy } from '../core/policy.js';
import {
  quotaJustification,
  recommendQuotasOf,
  type PressureLedger,
  type QuotaRecommendation,
  type TrackedRequest,
} from '../core/quota-pressure.js';
import {
  judgeRequest,
  plannedQuotaRequest,
  quotaDecidedAlert,
  quotaRequestedAlert,
  redateDecisions,
  askedAbove,
  requestToFile,
  settlePlannedRequest,
  type QuotaCall,
  type QuotaCallFailure,
} from '../core/quota-requests.js';
import { poolOfKey } from '../core/pool.js';
import { preferenceNameFault, preferenceProject, samePreference } from '../core/preference-name.js';
import { alertPoolKey } from '../core/conditions.js';
import type { RunContext } from '../core/run-alerts.js';
import {
  AlreadyExistsError,
  ConflictError,
  cutText,
  InputError,
  NotFoundError,
  PermissionError,
  UnavailableError,
  UpstreamError,
  errorMessage,
} from '../core/errors.js';
import type { Logger } from '../log.js';
import type {
  ListedPreference,
  QuotaPort,
  QuotaQuery,
  QuotaPreferenceView,
  QuotaRequestPort,
  UnreadablePreference,
} from '../ports/index.js';
import type { GovernorPermission } from '../core/permissions.js';

/**
 * The permission each Cloud Quotas call of quota requests needs, from Google's method pages
 * (https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences),
 * named in a failure the call's error did not name one for.
 */
const QUOTA_CALL_PERMISSION = {
  list: 'cloudquotas.quotas.get',
  get: 'cloudquotas.quotas.get',
  create: 'cloudquotas.quotas.update',
  update: 'cloudquotas.quotas.update',
} as const satisfies Record<QuotaCall, GovernorPermission>;

/**
 * Quota requests in a run (docs/quota-requests.md): settle the planned `quota.requested` of runs
 * that ended before reporting, refresh the pools' pending requests (granted or denied → an event),
 * then file one for each pool whose pressure argues for it and that has none pending.
 *
 * An event is stored before the write it describes (docs/rules.md, "Alerts"): before each create or update
 * the run stores its planned `quota.requested` (pending outcome) through `stage`; once Google
 * answered, the real event replaces it (same id). A call refused for certain (denied, invalid, a
 * lost race) withdraws it: nothing was filed. A call whose outcome is unknown (UNAVAILABLE, a
 * deadline: Google may have filed it) leaves it pending; the next run settles it against the
 * preferences it lists, as planned `rebalance.applied` events are settled against the caps seen.
 *
 * Another actor is expected: the project's preferences are listed before any write; a preference
 * pending for the pool (whoever filed it) is tracked, never doubled; one for as much or more is
 * left alone; a lower one is raised with its etag; a create or update that loses a race
 * (ALREADY_EXISTS, ABORTED) files nothing this run.
 *
 * A failed Cloud Quotas call never stops the run (its caps are written before this step): it is
 * logged and returned in `failures`, which the run raises as `governor.degraded` (reason
 * `quota-requests`, naming the permission and resource of a denial). What Google answers, by
 * code: https://cloud.google.com/docs/quotas/troubleshoot (PERMISSION_DENIED when the caller may
 * not, or when the API has no quota project); the permission each method needs is on its page,
 * e.g. https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences/create
 * (`cloudquotas.quotas.update`) and .../list, .../get (`cloudquotas.quotas.get`).
 */
interface QuotaRequestsInput {
  policy: Policy;
  port: QuotaRequestPort | undefined;
  /**
   * Google's quotas, read again just before a request is filed: a preference below Google's
   * quota now is a decrease, which Google fulfils at once.
   */
  quotas: QuotaPort;
  ctx: RunContext;
  project: string;
  ledger: PressureLedger;
  /**
   * The keys of the pools this run planned. The ledger keeps a pool's days after the runs stop
   * planning it (its region dropped from the policy, say): nothing is filed for such a pool,
   * which this run neither observed nor planned.
   */
  planned: ReadonlySet<string>;
  mode: Policy['mode'];
  log: Logger;
  /** Planned `quota.requested` events of runs that ended before reporting (pending outcome). */
  orphans?: readonly Alert[];
  /** Stores a planned event in the outbox (pending outcome); a failure stops filing (it throws). */
  stage?: (planned: Alert) => Promise<void>;
  /**
   * Asked before each request is filed (stored, created or updated); false: nothing is filed for
   * the pool this run. Absent: filed without asking (the function; `governor apply --yes`).
   */
  confirm?: (request: QuotaRequestToConfirm) => Promise<boolean>;
  /** Bounds one Cloud Quotas call (the run's deadline); default: unbounded. */
  bound?: <T>(call: () => Promise<T>, what: string) => Promise<T>;
  /**
   * Reads the run's lease of the project again, right before a request is filed: null while the
   * run still holds it, else what holds it now. A lease broken or taken by another run (an
   * `apply` whose person answered after the lease ran out) files nothing, as the act step makes
   * no raise on it: the other run may be filing for the same pool. Absent: not read.
   */
  leaseLost?: (project: string) => Promise<string | null>;
}

/** A quota request about to be filed, as a person confirms it. */
export interface QuotaRequestToConfirm {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
  /** Google's quota, read just before. */
  from: number;
  preferredValue: number;
  /** `create`: a new preference; `update`: raising an existing one (`preference`). */
  kind: 'create' | 'update';
  preference: string;
  justification: string;
}

interface QuotaRequestsResult {
  ledger: PressureLedger;
  /** This run's events (ids are given when the run decides its notifications). */
  events: Alert[];
  /** Planned events of earlier runs, settled: stored and published with their own ids. */
  settled: Alert[];
  /** Ids of this run's planned events whose call was refused for certain: nothing was filed. */
  withdrawn: string[];
  failures: QuotaCallFailure[];
}

export async function runQuotaRequests(input: QuotaRequestsInput): Promise<QuotaRequestsResult> {
  const { policy, port, ctx, project, log } = input;
  const bound = input.bound ?? (<T>(call: () => Promise<T>) => call());
  const settings = policy.quotaRequests;
  // A decision dated later than now is dated now (its cooldown would otherwise never end).
  const tracked: Record<string, TrackedRequest> = redateDecisions(
    input.ledger.requests ?? {},
    ctx.at,
  );
  const events: Alert[] = [];
  const settled: Alert[] = [];
  const withdrawn: string[] = [];
  const failures: QuotaCallFailure[] = [];
  const parent = `projects/${project}/locations/global`;
  const failed = (
    call: QuotaCall,
    resource: string,
    e: unknown,
    what: string,
    refused = false,
  ): void => {
    const denied = e instanceof PermissionError;
    failures.push({
      call,
      resource,
      kind: refused ? 'refused' : denied ? 'denied' : 'failed',
      permissions:
        denied && e.permissions.length > 0 ? [...e.permissions] : [QUOTA_CALL_PERMISSION[call]],
      error: errorMessage(e),
    });
    log.log('WARNING', `${what}: ${errorMessage(e)}`);
  };
  let listed: ListedPreference[] | null = null;
  const list = async (): Promise<ListedPreference[]> => {
    if (!port) throw new Error('bug: no quota request port');
    listed ??= await bound(
      () => port.listPreferences(project),
      `listing the quota preferences of ${project}`,
    );
    return listed;
  };
  const done = (): QuotaRequestsResult => {
    const ledger: PressureLedger = { ...input.ledger };
    if (Object.keys(tracked).length > 0) ledger.requests = tracked;
    else delete ledger.requests;
    return { ledger, events, settled, withdrawn, failures };
  };

  // A preference of the pool's quota whose values cannot be read (a granted -1, Google's
  // "unlimited", or beyond 2^53) stops the pool's requests only: the run says which and why.
  const unreadable = (p: UnreadablePreference, what: string): void =>
    failed('list', p.name, new UpstreamError(p.unreadable), what, true);

  // Planned events of runs that died before reporting: settled against the preferences now.
  const orphans = input.orphans ?? [];
  // The pools of planned requests kept unsettled: nothing is filed for them this run, even if a
  // later listing answers. Filed now, the planned request would later be confirmed by this
  // run's preference, and the one filing announced twice.
  const unsettled = new Set<string>();
  const keep = (orphan: Alert): void => {
    const key = alertPoolKey(orphan);
    if (key) unsettled.add(key);
  };
  if (orphans.length > 0) {
    let all: ListedPreference[] = [];
    let seen: QuotaPreferenceView[] | undefined;
    let readable = true;
    if (port) {
      try {
        all = await list();
        seen = all.filter((p): p is QuotaPreferenceView => p.unreadable === undefined);
      } catch (e) {
        readable = false;
        orphans.forEach(keep);
        failed(
          'list',
          parent,
          e,
          `${project}: could not list quota preferences to settle ${orphans.length} planned request(s); kept for the next run`,
        );
      }
    }
    if (readable) {
      for (const orphan of orphans) {
        const bad = all.find(
          (p): p is UnreadablePreference =>
            p.unreadable !== undefined &&
            (samePreference(p.name, String(orphan.details['preference'])) ||
              (p.quotaId === orphan.details['quotaId'] && p.region === orphan.region)),
        );
        if (bad) {
          keep(orphan);
          unreadable(
            bad,
            `${project}: planned quota request ${orphan.id} kept for a later run: ${bad.name} cannot be read`,
          );
          continue;
        }
        const { alert, confirmed } = settlePlannedRequest(orphan, seen, ctx.runId);
        settled.push(alert);
        const key = alertPoolKey(orphan);
        // Tracked as the governor's pending request unless it is already: the preference the
        // pool tracks as decided (a denial after the cooldown, raised by the planned update) is
        // pending again, and its decision is read and told below.
        const already = key ? tracked[key] : undefined;
        if (
          confirmed &&
          key &&
          !(already?.name === confirmed.name && already.state === 'pending')
        ) {
          tracked[key] = {
            name: confirmed.name,
            quotaId: confirmed.quotaId,
            preferredValue: confirmed.preferredValue,
            from: typeof orphan.details['from'] === 'number' ? orphan.details['from'] : null,
            filedAt: orphan.time,
            by: 'governor',
            state: 'pending',
            decidedAt: null,
            grantedValue: confirmed.grantedValue,
            stateDetail: '',
            traceId: '',
          };
        }
      }
      log.log(
        'WARNING',
        `${project}: ${orphans.length} planned quota request(s) of runs that ended before reporting: ${settled.filter((a) => a.details['outcome'] === 'confirmed-by-observation').length} confirmed by observation, the others not confirmed (announced as such)`,
      );
    }
  }

  if (!settings?.enabled || !port || input.mode !== 'enforce') return done();
  const pools = input.ledger.pools;

  /**
   * Why a tracked request of the ledger (which anyone may edit) is not the pool's to read or
   * raise, or null when it is: its key must be a pool of this project, its quota id the pool's,
   * and its name a preference of this project, by id or by the project number Google answered
   * in this project's listing (src/core/preference-name.ts). Undefined: the listing failed.
   */
  const foreign = async (key: string, req: TrackedRequest): Promise<string | null | undefined> => {
    const at = `the ledger's request under "${key}" (${req.name})`;
    const pool = poolOfKey(key);
    if (pool === null || pool.project !== project)
      return `${at} is not of a pool of ${project}: it is not read or changed`;
    const quotaId = port?.quotaIdOf(pool.accelerator, pool.zonalRedundancy);
    if (req.quotaId !== quotaId)
      return `${at} is for quota ${req.quotaId}, not the pool's ${quotaId}: it is not read or changed`;
    const fault = preferenceNameFault(req.name, project);
    if (fault !== null) return `${at}: its name ${fault}; it is not read or changed`;
    const segment = preferenceProject(req.name);
    if (segment === project) return null;
    let all: ListedPreference[];
    try {
      all = await list();
    } catch (e) {
      failed('list', parent, e, `${key}: could not list quota preferences to check ${req.name}`);
      return undefined;
    }
    return all.some((p) => preferenceProject(p.name) === segment)
      ? null
      : `${at} names project number ${segment}, which no preference Google listed for ${project} carries: it is not read or changed`;
  };

  for (const [key, req] of Object.entries(tracked)) {
    if (req.state !== 'pending') continue;
    const refusal = await foreign(key, req);
    if (refusal === undefined) continue;
    if (refusal !== null) {
      failed('get', req.name, new InputError(refusal, []), `${key}: ${refusal}`, true);
      continue;
    }
    // The pool as its key names it when the ledger no longer carries its rows (its services
    // gone, its days aged out): the decision is announced all the same, since from now on the
    // request is tracked as decided and no later run reads it again.
    const pool = pools[key] ?? poolOfKey(key);
    let view: QuotaPreferenceView;
    try {
      view = await bound(() => port.getPreference(req.name), `reading ${req.name}`);
    } catch (e) {
      if (e instanceof NotFoundError) {
        log.log('WARNING', `${key}: quota request ${req.name} no longer exists; no longer tracked`);
        delete tracked[key];
      } else {
        failed('get', req.name, e, `${key}: could not read quota request ${req.name}`);
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

  const recs = recommendQuotasOf(project, input.ledger, ctx.at).own;
  for (const rec of recs) {
    if (!input.planned.has(rec.key)) continue;
    if (unsettled.has(rec.key)) {
      log.log(
        'INFO',
        `${rec.key}: no quota request filed: a planned request of an earlier run is not settled yet`,
      );
      continue;
    }
    const decided = requestToFile(rec, tracked[rec.key], settings, ctx.at);
    if (!decided.file) continue;
    let decision = decided;
    const quotaId = port.quotaIdOf(rec.accelerator, rec.zonalRedundancy);
    let existing: QuotaPreferenceView | undefined;
    let everyRegion: QuotaPreferenceView | undefined;
    let bearing: ListedPreference | undefined;
    let decidedOn = '';
    /** The pool's preferences of this quota, listed afresh, in the form `decidedOn` has. */
    const poolPreferencesNow = async (): Promise<string> => {
      listed = null;
      return preferencesOfPool(
        (await list()).filter((p) => p.quotaId === quotaId),
        rec.region,
      );
    };
    try {
      const ofQuota = (await list()).filter((p) => p.quotaId === quotaId);
      decidedOn = preferencesOfPool(ofQuota, rec.region);
      const own = ofQuota.find((p) => p.region === rec.region);
      const all = ofQuota.find((p) => p.region === null);
      // The region's own preference decides its quota; without one, the one for every region.
      bearing = own ?? all;
      existing = own?.unreadable === undefined ? own : undefined;
      everyRegion = all?.unreadable === undefined ? all : undefined;
    } catch (e) {
      failed(
        'list',
        parent,
        e,
        `${rec.key}: could not file a quota request: the preferences could not be listed`,
      );
      break;
    }
    if (bearing?.unreadable !== undefined) {
      unreadable(
        bearing,
        `${rec.key}: no quota request filed: ${bearing.name}, which decides the pool's quota, cannot be read`,
      );
      continue;
    }
    // The quota the run planned with is not always Google's: a policy's pools[].quota, or one
    // raised since the observation. A preference below Google's quota asks for a decrease, and
    // "quota decreases are fulfilled immediately"
    // (https://cloud.google.com/sdk/gcloud/reference/beta/quotas/preferences): read it now.
    const info = `projects/${project}/locations/global/services/run.googleapis.com/quotaInfos/${quotaId}`;
    const query: QuotaQuery = {
      project,
      region: rec.region,
      accelerator: rec.accelerator,
      zonalRedundancy: rec.zonalRedundancy,
    };
    // One read of the quota info again, bounded; a failure is the run's, and files nothing.
    const readAgain = async <T>(
      read: (q: QuotaQuery) => Promise<T>,
      what: string,
    ): Promise<{ ok: true; value: T } | { ok: false }> => {
      try {
        return { ok: true, value: await bound(() => read(query), `reading ${info}`) };
      } catch (e) {
        failed(
          'get',
          info,
          e,
          `${rec.key}: could not file a quota request: ${what} could not be read again`,
        );
        return { ok: false };
      }
    };
    input.quotas.clearCache?.();
    const quota = await readAgain((q) => input.quotas.gpuQuota(q), "Google's quota");
    if (!quota.ok) continue;
    const google = quota.value;
    if (google !== null)
      decision = {
        ...decision,
        preferredValue: askedAbove(google, decision.preferredValue, settings),
      };
    if (google === null || google >= decision.preferredValue) {
      log.log(
        'INFO',
        `${rec.key}: no quota request filed: ${google === null ? "Google's quota info has no entry for the region now" : `the quota is ${google} at Google now (this run planned with ${rec.quota ?? 'unknown'}: a quota the policy sets, or one changed since it was read), so a request for ${decision.preferredValue} would not raise it${google > decision.preferredValue ? ' but lower it' : ''}`}`,
      );
      continue;
    }
    const justification = quotaJustification(rec, settings.justification ?? '');
    const filing = plan(rec, quotaId, existing, everyRegion, decision.preferredValue, project);
    if (filing.kind === 'refuse') {
      failed(
        'update',
        filing.name,
        new UpstreamError(filing.why),
        `${rec.key}: no quota request filed`,
        true,
      );
      continue;
    }
    if (filing.kind === 'skip') {
      log.log('INFO', `${rec.key}: no quota request filed: ${filing.why}`);
      if (filing.track) tracked[rec.key] = track(filing.track, google, ctx.at, 'found');
      continue;
    }
    // QuotaInfo.quota_increase_eligibility: "Whether a higher quota value can be requested for
    // the quota" (google/api/cloudquotas/v1/resources.proto). Google does not say what it answers
    // to a request for a quota it calls ineligible: none is sent, and the reason is named.
    const eligibilityOf = input.quotas.increaseEligibility?.bind(input.quotas);
    if (eligibilityOf) {
      const read = await readAgain(eligibilityOf, "Google's quota info");
      if (!read.ok) continue;
      const eligible = read.value;
      if (!eligible.eligible) {
        failed(
          'get',
          info,
          new UpstreamError(
            `${quotaId} of ${project} is not eligible for an increase (${eligible.reason}), Google's quota info says: no request is filed for ${rec.region}`,
          ),
          `${rec.key}: no quota request filed`,
          true,
        );
        continue;
      }
    }
    if (
      input.confirm &&
      !(await input.confirm({
        project,
        region: rec.region,
        accelerator: rec.accelerator,
        zonalRedundancy: rec.zonalRedundancy,
        from: google,
        preferredValue: decision.preferredValue,
        kind: filing.kind,
        preference: filing.name,
        justification,
      }))
    ) {
      log.log('INFO', `${rec.key}: no quota request filed: not confirmed`);
      continue;
    }
    if (input.leaseLost) {
      let lost: string | null;
      try {
        lost = await bound(() => input.leaseLost!(project), `reading the lease of ${project}`);
      } catch (e) {
        lost = `could not be read (${errorMessage(e)})`;
      }
      if (lost !== null) {
        log.log(
          'WARNING',
          `${rec.key}: no quota request filed: the lease of ${project} ${lost}: another run of this state store may be filing for the same pool; left for the next run`,
        );
        continue;
      }
    }
    // A person's answer may have taken minutes: what the filing was decided on (the pool's
    // preferences, Google's quota) is read again, and anything changed meanwhile files nothing
    // this run, as the raises of the caps wait for a fresh read after the plan's prompt. A
    // preference for every region filed meanwhile would be doubled, and a quota raised meanwhile
    // would turn the request into a decrease. The next run decides, and asks, again.
    if (input.confirm) {
      let now: string;
      try {
        now = await poolPreferencesNow();
      } catch (e) {
        failed(
          'list',
          parent,
          e,
          `${rec.key}: could not file the confirmed quota request: the preferences could not be listed again`,
        );
        break;
      }
      input.quotas.clearCache?.();
      const again = await readAgain((q) => input.quotas.gpuQuota(q), "Google's quota");
      if (!again.ok) continue;
      if (now !== decidedOn || again.value !== google) {
        log.log(
          'WARNING',
          `${rec.key}: no quota request filed: ${now !== decidedOn ? "the pool's quota preferences" : `Google's quota (${google} when asked, ${again.value ?? 'none'} now)`} changed while the request was being confirmed; the next run decides again`,
        );
        continue;
      }
    }
    const planned = plannedQuotaRequest(
      ctx,
      rec,
      {
        name: filing.name,
        quotaId,
        preferredValue: decision.preferredValue,
        from: google,
        filedAt: ctx.at,
        by: 'governor',
        state: 'pending',
        decidedAt: null,
        grantedValue: existing?.grantedValue ?? null,
        stateDetail: '',
        traceId: '',
      },
      justification,
    );
    // Stored before the call: a run that dies after it leaves an event to settle, not a secret.
    if (input.stage) await input.stage(planned);
    const call: QuotaCall = filing.kind === 'create' ? 'create' : 'update';
    // Google checks a create on its parent, an update on the preference itself.
    const resource = filing.kind === 'create' ? parent : filing.name;
    /**
     * Why a create refused as existing (ALREADY_EXISTS) is no lost race, or null when it may be
     * one (every other conflict, ABORTED, is one). Google refuses a second preference for the same
     * quota and dimensions, and an id already used under the parent ("There is only one QuotaPreference resource for a quota
     * value targeting a unique set of dimensions": QuotaPreference,
     * https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).
     * When the pool's preferences, listed again, are still those the filing was decided on, no
     * one filed for the pool meanwhile: the id is another preference's (another quota's, or one
     * without this region), and Cloud Quotas has no call to delete one, so every later run would
     * lose the same "race". Said as a refusal, run after run, rather than as a race. A listing
     * that fails says nothing either way: taken as a race, as before.
     */
    const idTaken = async (e: ConflictError): Promise<string | null> => {
      if (filing.kind !== 'create' || !(e instanceof AlreadyExistsError)) return null;
      let again: string;
      try {
        again = await poolPreferencesNow();
      } catch (listing) {
        log.log(
          'WARNING',
          `${rec.key}: the preferences could not be listed again to tell a lost race from an id taken, so taken as a race: ${errorMessage(listing)}`,
        );
        return null;
      }
      if (again !== decidedOn) return null;
      return `its id is taken by another preference (another quota's, or one without a region): Cloud Quotas refused the create as existing, yet the pool's preferences, listed again, are as they were; nothing can be filed under that id (Cloud Quotas cannot delete a preference): file the request by hand (gcloud quotas preferences create), ${errorMessage(e)}`;
    };
    try {
      const what = { justification, contactEmail: settings.contactEmail ?? '' };
      const view = await bound(
        () =>
          filing.kind === 'create'
            ? port.createPreference({
                project,
                id: filing.id,
                quotaId,
                region: rec.region,
                preferredValue: decision.preferredValue,
                ...what,
              })
            : port.updatePreference({
                name: filing.name,
                etag: filing.etag,
                preferredValue: decision.preferredValue,
                ...what,
              }),
        `filing ${filing.name}`,
      );
      // What is tracked is read back from the state, which refuses a name that is not the
      // pool's project's preference: one Google answered otherwise is not tracked (the planned
      // event stays, and the next run settles it against the preferences it lists).
      // The answer must also be the preference filed (its project's number in place of its id
      // aside): tracked under another name, every later run would read back, and judge the
      // request on, that other preference.
      const answered =
        preferenceNameFault(view.name, project) ??
        (samePreference(view.name, filing.name)
          ? null
          : `${JSON.stringify(cutText(view.name, 300))} is another preference`);
      if (answered !== null) {
        listed = null;
        failed(
          call,
          resource,
          new UpstreamError(
            `Google answered the preference filed as ${filing.name}: its name ${answered}`,
          ),
          `${rec.key}: the quota request was filed but is not tracked`,
        );
        continue;
      }
      const req = track(view, google, ctx.at, 'governor');
      tracked[rec.key] = req;
      events.push(quotaRequestedAlert(ctx, rec, req, justification));
    } catch (e) {
      listed = null;
      if (e instanceof ConflictError) {
        // Someone filed or changed this quota's preference between our read and our write.
        withdrawn.push(planned.id);
        const taken = await idTaken(e);
        if (taken !== null) {
          failed(
            'create',
            filing.name,
            new UpstreamError(taken),
            `${rec.key}: no quota request filed`,
            true,
          );
          continue;
        }
        log.log(
          'INFO',
          `${rec.key}: no quota request filed: another change won the race (${errorMessage(e)})`,
        );
        continue;
      }
      if (uncertain(e)) {
        failed(
          call,
          resource,
          e,
          `${rec.key}: the quota request may or may not have been filed (the next run settles it against the preferences it lists)`,
        );
        continue;
      }
      withdrawn.push(planned.id);
      failed(call, resource, e, `${rec.key}: could not file a quota request`);
    }
  }
  return done();
}

/**
 * Whether Google may have acted on a call that failed: it did not answer (UNAVAILABLE, a deadline,
 * the run's own deadline), or answered an error that does not say nothing was filed (INTERNAL,
 * UNKNOWN: the adapter reports those as UnavailableError). Every other error is a refusal:
 * nothing was filed.
 */
function uncertain(e: unknown): boolean {
  return e instanceof UnavailableError || !(e instanceof UpstreamError || e instanceof InputError);
}

/**
 * The preferences that bear on a pool's region (its own, and the one for every region), as they
 * were read: compared before and after a person's confirmation.
 */
function preferencesOfPool(ofQuota: readonly ListedPreference[], region: string): string {
  return JSON.stringify(
    ofQuota
      .filter((p) => p.region === region || p.region === null)
      .map((p) =>
        p.unreadable !== undefined
          ? [p.name, p.region, p.unreadable]
          : [p.name, p.region, p.etag, p.preferredValue, p.grantedValue, p.reconciling],
      ),
  );
}

type Filing =
  | { kind: 'create'; id: string; name: string }
  | { kind: 'update'; name: string; etag: string }
  | { kind: 'skip'; why: string; track?: QuotaPreferenceView }
  | { kind: 'refuse'; name: string; why: string };

/**
 * What to do for a pool: file a new preference, raise the existing one, or nothing (why).
 *
 * `everyRegion` is a preference of the quota without a region: it applies to every region that
 * has no preference of its own ("If a dimension is missing from the map of dimensions, the quota
 * preference applies to all the dimension values except for those that have other quota
 * preferences configured for the specific value": QuotaPreference.dimensions,
 * https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).
 * While it is pending and the region has none of its own, it is the pool's pending request: a
 * regional preference filed now would take the region out of it (and out of a larger value it
 * asks) once granted, so it is tracked instead, as a pending regional one is.
 */
function plan(
  rec: QuotaRecommendation,
  quotaId: string,
  existing: QuotaPreferenceView | undefined,
  everyRegion: QuotaPreferenceView | undefined,
  preferredValue: number,
  project: string,
): Filing {
  if (!existing && everyRegion?.reconciling)
    return {
      kind: 'skip',
      why: `${everyRegion.name}, for every region without a preference of its own, is already pending for ${everyRegion.preferredValue}`,
      track: everyRegion,
    };
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
  // Without the etag it read, an update is not conditional (QuotaPreference.etag is optional:
  // "If an etag is provided on update and does not match ... ABORTED"), and would overwrite
  // whatever someone changed since: Google answered none, so nothing is sent.
  if (existing && existing.etag.trim() === '')
    return {
      kind: 'refuse',
      name: existing.name,
      why: `${existing.name} was read without an etag: an update without one would overwrite any change made since it was read, so none is sent`,
    };
  if (existing) return { kind: 'update', name: existing.name, etag: existing.etag };
  const id = preferenceId(rec.region, quotaId);
  return {
    kind: 'create',
    id,
    name: `projects/${project}/locations/global/quotaPreferences/${id}`,
  };
}

/** A stable id per (region, quota id): `gpu-governor-REGION-HASH`, at most 63 characters. */
export function preferenceId(region: string, quotaId: string): string {
  const hash = createHash('sha256').update(`${region}/${quotaId}`).digest('hex').slice(0, 8);
  return `gpu-governor-${region.slice(0, 40)}-${hash}`;
}

/**
 * A request as tracked. `from` is Google's quota read just before filing, not the quota the run
 * planned with (a policy's `pools[].quota`, or one changed since the observation): a decision is
 * told against it (a granted value above it is a partial grant, one at it a denial).
 */
function track(
  view: QuotaPreferenceView,
  from: number,
  at: string,
  by: TrackedRequest['by'],
): TrackedRequest {
  return {
    name: view.name,
    quotaId: view.quotaId,
    preferredValue: view.preferredValue,
    from,
    filedAt: at,
    by,
    state: 'pending',
    decidedAt: null,
    grantedValue: view.grantedValue,
    stateDetail: view.stateDetail.slice(0, 2000),
    traceId: view.traceId.slice(0, 500),
  };
}
