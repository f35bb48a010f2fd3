/**
 * The quota request port on Cloud Quotas API v1 quota preferences (`@google-cloud/cloudquotas`).
 *
 * - CreateQuotaPreference(parent `projects/{p}/locations/global`, quota_preference_id,
 *   quota_preference{service, quota_id, dimensions{region}, quota_config.preferred_value,
 *   justification, contact_email}); UpdateQuotaPreference(quota_preference with its etag,
 *   update_mask); GetQuotaPreference; ListQuotaPreferences (paged). Fields and behaviours:
 *   google/api/cloudquotas/v1 (in the pinned client) and
 *   https://cloud.google.com/docs/quotas/reference/rest/v1/folders.locations.quotaPreferences
 *   (".../patch": "It can updates the config in any states, not just the ones pending
 *   approval"; a stale etag is ABORTED).
 * - Zonal redundancy is not a dimension: it picks the quota id (as for reading the quota, quotas.ts); the only
 *   dimension sent is `region`.
 * - A listing keeps only the preferences of the GPU quota ids (`isGpuQuotaId`): another quota's,
 *   whatever its values, is never read. One of a GPU quota whose value is no GPU count (a granted
 *   -1, "unlimited", or beyond 2^53) or whose name is malformed is listed as unreadable, never
 *   failing the whole listing.
 * - An update is never sent without the etag read: the etag is optional, and without one Google
 *   makes no concurrency check (QuotaPreference.etag).
 * - A listing page that names an `unreachable` location is incomplete: the listing fails
 *   (UpstreamError) rather than answer without that location's preferences.
 * - Writes are not retried (a create that timed out may have been made: the next run lists the
 *   preferences first and finds it); reads are, as every read of the governor. A write answered
 *   with a value no GPU count can be was made all the same: its outcome is unknown to the caller
 *   (UnavailableError), never a refusal.
 * - The caller needs `cloudquotas.quotas.update` on the project to create or update, and
 *   `cloudquotas.quotas.get` to read (the method pages' "IAM Permissions"); the Terraform module
 *   grants the first only when quota requests are enabled.
 */
import { status } from '@grpc/grpc-js';
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import type { protos } from '@google-cloud/cloudquotas';

import {
  AlreadyExistsError,
  cutText,
  InputError,
  UnavailableError,
  UpstreamError,
} from '../core/errors.js';
import { preferenceNameFault, QUOTA_ID, samePreference } from '../core/preference-name.js';
import type {
  ListedPreference,
  NewQuotaPreference,
  QuotaPreferenceChange,
  QuotaPreferenceView,
  QuotaRequestPort,
} from '../ports/index.js';
import { clientConfig, projectFaults } from './client-config.js';
import { translateGrpcError } from './grpc-errors.js';
import { endlessListing, MAX_EMPTY_PAGES } from './paging.js';
import { gpuQuotaId, isGpuQuotaId, parseQuotaValue } from './quotas.js';
import {
  checkRetryPolicy,
  closingRetries,
  defaultRetryPolicy,
  definedOnly,
  gaxReadOptions,
  grpcCode,
} from './retry.js';
import type { RetryPolicy } from './retry.js';

type Preference = protos.google.api.cloudquotas.v1.IQuotaPreference;

const RUN = 'run.googleapis.com';
const ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** gRPC codes of a write's answer that do not say the write was not made (see `failWrite`). */
const MAYBE_WRITTEN = new Set<number>([
  status.UNKNOWN,
  status.INTERNAL,
  status.CANCELLED,
  status.DATA_LOSS,
  // "For operations that change the state of the system, this error may be returned even if the
  // operation has completed successfully" (https://grpc.io/grpc/core/status_8h.html); and an
  // UNAVAILABLE answer may come from a connection lost after the request was sent.
  status.DEADLINE_EXCEEDED,
  status.UNAVAILABLE,
]);

export interface QuotaPreferenceAdapterOptions {
  emulatorHost?: string | null;
  retry?: Partial<RetryPolicy>;
}

export interface QuotaPreferenceAdapter extends QuotaRequestPort {
  close(): Promise<void>;
}

export function createQuotaPreferenceAdapter(
  options: QuotaPreferenceAdapterOptions = {},
): QuotaPreferenceAdapter {
  const policy = checkRetryPolicy({ ...defaultRetryPolicy, ...definedOnly(options.retry ?? {}) });
  const client = new CloudQuotasClient(clientConfig(options).options);
  const retries = closingRetries(policy);
  const write = { timeout: policy.attemptTimeoutMs, retry: null };

  const fail = (what: string) => (error: unknown) => {
    if (grpcCode(error) === status.ALREADY_EXISTS)
      throw new AlreadyExistsError(`${what} failed: it already exists`, { cause: error });
    throw translateGrpcError(error, what);
  };
  // A create or update answered with an error that does not say nothing was filed: UNKNOWN ("errors
  // raised by APIs that do not return enough error information"), INTERNAL ("some invariants
  // expected by the underlying system have been broken"), CANCELLED, DATA_LOSS
  // (google/rpc/code.proto), DEADLINE_EXCEEDED and UNAVAILABLE (no answer came, or none in time:
  // MAYBE_WRITTEN). Google may have filed it: the outcome is
  // unknown (UnavailableError), and the next run settles it against the preferences it lists.
  const failWrite = (what: string) => (error: unknown) => {
    const code = grpcCode(error);
    if (code !== undefined && MAYBE_WRITTEN.has(code))
      throw new UnavailableError(
        `${translateGrpcError(error, what).message}; it may have been filed`,
        { cause: error },
      );
    return fail(what)(error);
  };

  return {
    quotaIdOf: gpuQuotaId,
    async listPreferences(project) {
      checkProject(project);
      const parent = `projects/${project}/locations/global`;
      const out: ListedPreference[] = [];
      let pageToken = '';
      const seen = new Set<string>();
      let empty = 0;
      for (let page = 0; page < 1000; page++) {
        const [list, , response] = await retries
          .retry(() =>
            client.listQuotaPreferences(
              { parent, pageToken, pageSize: 100 },
              { ...gaxReadOptions(policy), autoPaginate: false },
            ),
          )
          .catch(fail(`listing quota preferences of ${parent}`));
        // A location Google could not reach has its preferences left out of the answer, which is
        // not an error ("Locations that could not be reached": ListQuotaPreferencesResponse.
        // unreachable, google/api/cloudquotas/v1/cloudquotas.proto). Taken as complete, such a
        // listing would show no pending request where one is: it is refused as incomplete.
        const unreachable = (response?.unreachable ?? []).filter((u) => u !== '');
        if (unreachable.length > 0)
          throw new UpstreamError(
            `listing quota preferences of ${parent}: Google could not reach ${unreachable.slice(0, 5).join(', ')}, so the listing is incomplete`,
          );
        // Only the GPU quotas are the governor's: another quota's preference (a CPU quota of
        // Cloud Run, say) is never read, so no value of it can stop the governor's own requests.
        for (const p of list)
          if (p.service === RUN && isGpuQuotaId(p.quotaId ?? '')) out.push(listed(p, project));
        pageToken = response?.nextPageToken ?? '';
        if (pageToken === '') return out;
        // Fresh tokens on empty pages: bounded as every listing is (paging.ts), not read on to
        // the page bound, each page a read of the project's quota.
        empty = list.length === 0 ? empty + 1 : 0;
        if (empty >= MAX_EMPTY_PAGES)
          throw endlessListing(`listing quota preferences of ${parent}`, empty);
        // A token offered twice would read the same pages again up to the bound, each a read of
        // the project's quota: refused at once, as every other listing refuses it (paging.ts).
        if (seen.has(pageToken))
          throw new UpstreamError(
            `listing quota preferences of ${parent}: the page token "${pageToken}" came back twice`,
          );
        seen.add(pageToken);
      }
      throw new UpstreamError(`listing quota preferences of ${parent}: more than 1000 pages`);
    },
    async getPreference(name) {
      const fault = preferenceNameFault(name);
      if (fault !== null)
        throw new InputError('Invalid quota preference', [{ path: 'name', message: fault }]);
      const [p] = await retries
        .retry(() => client.getQuotaPreference({ name }, gaxReadOptions(policy)))
        .catch(fail(`reading quota preference ${name}`));
      // GetQuotaPreference answers the preference it names: one answered under another name
      // (another id, another project) is not this one, and its state would decide the request
      // asked about. Refused, as quotas.ts refuses another quota's info; the project's number in
      // place of its id is the same preference (preference-name.ts samePreference).
      const answered = p.name ?? '';
      if (answered !== '' && !samePreference(answered, name))
        throw new UpstreamError(
          `reading quota preference ${name}: Cloud Quotas answered ${JSON.stringify(cutText(answered, 300))}; not used`,
        );
      return view(p);
    },
    async createPreference(input: NewQuotaPreference) {
      checkNew(input);
      const parent = `projects/${input.project}/locations/global`;
      const [p] = await client
        .createQuotaPreference(
          {
            parent,
            quotaPreferenceId: input.id,
            quotaPreference: {
              service: RUN,
              quotaId: input.quotaId,
              dimensions: { region: input.region },
              quotaConfig: { preferredValue: String(input.preferredValue) },
              justification: input.justification,
              contactEmail: input.contactEmail,
            },
          },
          write,
        )
        .catch(failWrite(`filing quota preference ${parent}/quotaPreferences/${input.id}`));
      return written(p, `filing quota preference ${parent}/quotaPreferences/${input.id}`);
    },
    async updatePreference(input: QuotaPreferenceChange) {
      const faults = [];
      const nameFault = preferenceNameFault(input.name);
      if (nameFault !== null) faults.push({ path: 'name', message: nameFault });
      if (!Number.isSafeInteger(input.preferredValue) || input.preferredValue < 0)
        faults.push({
          path: 'preferredValue',
          message: `${input.preferredValue} is not a GPU count`,
        });
      // The etag is what makes an update conditional: "If an etag is provided on update and does
      // not match the current server's etag of the quota preference, the request will be blocked
      // and an ABORTED error will be returned" (QuotaPreference.etag, optional:
      // https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).
      // Without one, whatever another writer changed since the read is overwritten: never sent.
      if (typeof input.etag !== 'string' || input.etag.trim() === '')
        faults.push({
          path: 'etag',
          message: `${nameFault === null ? input.name : 'the preference'} has no etag: an update without the etag read would overwrite any change made since, so none is sent`,
        });
      if (faults.length > 0) throw new InputError('Invalid quota preference change', faults);
      const [p] = await client
        .updateQuotaPreference(
          {
            quotaPreference: {
              name: input.name,
              etag: input.etag,
              quotaConfig: { preferredValue: String(input.preferredValue) },
              justification: input.justification,
              contactEmail: input.contactEmail,
            },
            updateMask: {
              paths: ['quota_config.preferred_value', 'justification', 'contact_email'],
            },
          },
          write,
        )
        .catch(failWrite(`changing quota preference ${input.name}`));
      return written(p, `changing quota preference ${input.name}`);
    },
    close: () => {
      retries.close();
      return client.close();
    },
  };
}

function checkProject(project: string): void {
  const faults = projectFaults(project);
  if (faults.length > 0) throw new InputError('Invalid quota preference', faults);
}

function checkNew(input: NewQuotaPreference): void {
  checkProject(input.project);
  const faults = [];
  if (!ID.test(input.id))
    faults.push({ path: 'id', message: `"${input.id}" is not a preference id` });
  if (!QUOTA_ID.test(input.quotaId))
    faults.push({ path: 'quotaId', message: `"${input.quotaId}" is not a quota id` });
  if (!/^[a-z0-9-]{1,63}$/.test(input.region))
    faults.push({ path: 'region', message: `"${input.region}" is not a region` });
  if (!Number.isSafeInteger(input.preferredValue) || input.preferredValue < 0)
    faults.push({ path: 'preferredValue', message: `${input.preferredValue} is not a GPU count` });
  if (faults.length > 0) throw new InputError('Invalid quota preference', faults);
}

/**
 * A listed preference of a GPU quota: read, or, when its name or a value is not what the governor
 * can use (a granted value of -1, Google's "unlimited", or beyond 2^53), named as unreadable with
 * the reason, so that the caller files nothing beside it and the other pools go on.
 */
function listed(p: Preference, project: string): ListedPreference {
  const name = p.name ?? '';
  const region = p.dimensions?.['region'] || null;
  const quotaId = p.quotaId ?? '';
  const fault = preferenceNameFault(name, project);
  if (fault !== null)
    return { name, quotaId, region, unreadable: `quota preference name ${fault}` };
  try {
    return view(p);
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
    return { name, quotaId, region, unreadable: e.message };
  }
}

/**
 * The answer to a create or an update that Google made: one whose values cannot be read (a
 * granted -1, or beyond 2^53) does not undo the write. Its outcome is then unknown to the caller
 * (UnavailableError, as for a write that got no answer), never a refusal: the next run settles it
 * against the preferences it lists.
 */
function written(p: Preference, what: string): QuotaPreferenceView {
  try {
    return view(p);
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
    throw new UnavailableError(
      `${what}: Google made it, but its answer cannot be read: ${e.message}`,
      { cause: e },
    );
  }
}

function view(p: Preference): QuotaPreferenceView {
  const name = p.name ?? '';
  const what = `quota preference ${name}`;
  const granted = p.quotaConfig?.grantedValue;
  return {
    name,
    quotaId: p.quotaId ?? '',
    region: p.dimensions?.['region'] || null,
    preferredValue: preferred(p.quotaConfig?.preferredValue, `${what}, preferred value`),
    grantedValue:
      granted === null || granted === undefined
        ? null
        : parseQuotaValue(granted.value ?? '0', `${what}, granted value`),
    reconciling: p.reconciling === true,
    stateDetail: p.quotaConfig?.stateDetail ?? '',
    traceId: p.quotaConfig?.traceId ?? '',
    etag: p.etag ?? '',
    justification: p.justification ?? '',
  };
}

/** A preferred value: a GPU count, or -1 (Google's "unlimited", which another actor may ask). */
function preferred(raw: unknown, what: string): number {
  if (raw === -1 || String(raw) === '-1') return -1;
  return parseQuotaValue(raw ?? '', what);
}
