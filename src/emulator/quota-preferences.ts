import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';

import type { EmulatorContext } from './context.js';
import { ANNOTATIONS_MAX_BYTES } from './fleet.js';
import type { FleetModel } from './model.js';
import { gpuQuotaId, refuseContainer } from './quotas-api.js';
import {
  bool,
  checkSegment,
  field,
  invalid,
  notEmulated,
  notFound,
  listPaging,
  paginate,
  requireFleetProject,
  RpcError,
  stringMap,
  strings,
  text,
  timestamp,
  type Handlers,
  type Message,
  shown,
} from './rpc.js';

/**
 * Cloud Quotas v1 quota preferences: Create, Get, List and Update, with a state a test moves
 * (`decideQuotaPreference`: pending → granted or denied).
 *
 * What it checks, from google/api/cloudquotas/v1 (cloudquotas.proto, resources.proto, in the
 * pinned @google-cloud/cloudquotas) and
 * https://cloud.google.com/docs/quotas/reference/rest/v1/folders.locations.quotaPreferences:
 * - the parent's location must be `global` ("The path that follows /locations must be /global");
 * - `service`, `quota_id` and `quota_config.preferred_value` are required; the value must be at
 *   least -1 (-1 is unlimited);
 * - `contact_email` is required for an increase (a preferred value above the current one);
 * - `user` and `resource` dimensions must not be set; here also any dimension the quota info
 *   does not list (it lists `region`);
 * - "There is only one QuotaPreference resource for a quota value targeting a unique set of
 *   dimensions": a second for the same quota and dimensions is ALREADY_EXISTS, as is an id
 *   already used under the parent;
 * - `dimensions` is immutable; an update whose etag no longer matches is ABORTED (resources.proto
 *   `etag`); an update of a missing preference is NOT_FOUND unless `allow_missing`;
 * - -1 is "unlimited" (QuotaConfig.preferred_value), so it is an increase whatever the quota:
 *   it needs a contact email and waits for Google's decision;
 * - a decrease passes Google's quota safety checks (`QuotaSafetyCheck` in resources.proto,
 *   https://cloud.google.com/docs/quotas/reference/rest/v1/QuotaSafetyCheck) unless the request's
 *   `ignore_safety_checks` names them: `QUOTA_DECREASE_PERCENTAGE_TOO_HIGH`, the limit may not
 *   fall by more than 10 percent; `QUOTA_DECREASE_BELOW_USAGE`, nor below the GPUs in use (the
 *   most any region it applies to holds now). Google does not say which code a failed check gets:
 *   the emulator answers FAILED_PRECONDITION, the code for a request refused for the system's
 *   state (google/rpc/code.proto), naming the check to ignore;
 * - a list is in creation order ("By default, the results are ordered by create time",
 *   ListQuotaPreferencesRequest.order_by).
 * Where Google is silent, the emulator takes the strict side and says so: a preference id must
 * look like an AIP-122 resource id (lower case letters, digits, hyphens; at most 63) or like
 * Google's own example (underscores too: {@link PREFERENCE_ID}), and the
 * preferred value must be at most 1,000,000 (Google states no upper bound).
 *
 * State: a created or changed increase is `reconciling` (pending Google's decision) with a
 * `trace_id`; a decrease or an unchanged value is applied at once. `decideQuotaPreference`
 * grants (granted_value = preferred value, and the quota info takes it) or denies
 * (granted_value = the quota before, `state_detail` says why), and reconciling ends.
 */

const RUN = 'run.googleapis.com';
const PARENT = /^projects\/([^/]+)\/locations\/([^/]+)$/;

/**
 * The project of a request's `parent` (projects/{project}/locations/global), checked; the call
 * needs `permission` on it.
 */
function parentProject(ctx: EmulatorContext, request: Message, permission: string): string {
  const parent = text(request, 'parent');
  const m = PARENT.exec(parent);
  if (!m) refuseContainer(PARENT, parent, 'a quota preference parent');
  if (!m)
    throw invalid(
      `parent must look like projects/{project}/locations/global, got "${shown(parent)}"`,
    );
  const [, project = '', location = ''] = m;
  checkProject(ctx, project, location, permission, parent);
  return project;
}
const NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/quotaPreferences\/([^/]+)$/;
/**
 * Google states no form for a preference id; its own example files
 * `example_default-limit_us-central1` (`gcloud quotas preferences create --preference-id`,
 * https://cloud.google.com/sdk/gcloud/reference/beta/quotas/preferences/create). The emulator
 * takes lower-case letters, digits, hyphens and underscores, beginning with a letter and ending
 * with a letter or digit, at most 63 (AIP-122's length): strict beyond that example.
 */
export const PREFERENCE_ID = /^[a-z]([a-z0-9_-]{0,61}[a-z0-9])?$/;
/** The most GPUs a preference asks for or is granted here: what a pool's quota holds. */
export const MAX_PREFERRED = 1_000_000;
const UPDATABLE = [
  'quota_config',
  'quota_config.preferred_value',
  'quota_config.annotations',
  'justification',
  'contact_email',
];

export interface StoredPreference {
  name: string;
  project: string;
  service: string;
  quotaId: string;
  dimensions: Record<string, string>;
  preferredValue: number;
  grantedValue: number | null;
  reconciling: boolean;
  stateDetail: string;
  traceId: string;
  justification: string;
  /** QuotaConfig.annotations: the client's own, kept and answered as set. */
  annotations: Record<string, string>;
  /** Input only: kept for the tests, never answered. */
  contactEmail: string;
  etag: string;
  createMs: number;
  updateMs: number;
  /**
   * A seeded preference's values as answered, int64 in decimal (see {@link seedQuotaPreference}):
   * what Google may hold and a GPU count cannot, beyond 2^53 or -1. Dropped by the next change.
   */
  wire?: { preferredValue: string; grantedValue: string | null };
}

interface PreferenceStore {
  byName: Map<string, StoredPreference>;
  serial: number;
}

const stores = new WeakMap<FleetModel, PreferenceStore>();

function storeOf(model: FleetModel): PreferenceStore {
  let s = stores.get(model);
  if (!s) {
    s = { byName: new Map(), serial: 0 };
    stores.set(model, s);
  }
  return s;
}

/**
 * The quota entry that applies to a (service, project, quota id, region) now, as
 * FleetModel.quotaFor picks it: the region's own entry while it has a value, else the regionless
 * one; undefined when there is none, and for any service but Cloud Run's (the fleet's pools are
 * Cloud Run's GPU quotas: another service's quota of the same id is another quota). `key` is
 * where a decision for that region lands: the region's own entry, so that a preference for one
 * region never changes the quota of the others (its `dimensions` name it).
 */
function quotaEntry(
  model: FleetModel,
  service: string,
  project: string,
  quotaId: string,
  region: string | undefined,
): { key: Parameters<FleetModel['setQuota']>[0]; quota: number | undefined } | undefined {
  if (service !== RUN) return undefined;
  const entries = model
    .quotaEntries(project)
    .filter((e) => gpuQuotaId(e.key.accelerator, e.key.zonalRedundancy) === quotaId);
  const own = entries.find((e) => e.key.region === region);
  const applies =
    own?.quota !== undefined ? own : (entries.find((e) => e.key.region === undefined) ?? own);
  return applies && { key: { ...applies.key, region }, quota: applies.quota };
}

function hasQuotaId(model: FleetModel, project: string, quotaId: string): boolean {
  return model
    .quotaEntries(project)
    .some((e) => gpuQuotaId(e.key.accelerator, e.key.zonalRedundancy) === quotaId);
}

function etagOf(p: StoredPreference, serial: number): string {
  return createHash('sha256')
    .update(`${p.name}:${p.preferredValue}:${p.reconciling}:${p.grantedValue}:${serial}`)
    .digest('base64url')
    .slice(0, 16);
}

function toMessage(p: StoredPreference): Message {
  return {
    name: p.name,
    dimensions: p.dimensions,
    quota_config: {
      preferred_value: p.wire?.preferredValue ?? String(p.preferredValue),
      state_detail: p.stateDetail,
      ...(p.wire
        ? p.wire.grantedValue === null
          ? {}
          : { granted_value: { value: p.wire.grantedValue } }
        : p.grantedValue === null
          ? {}
          : { granted_value: { value: String(p.grantedValue) } }),
      trace_id: p.traceId,
      annotations: { ...p.annotations },
      request_origin: 'ORIGIN_UNSPECIFIED',
    },
    etag: p.etag,
    create_time: timestamp(p.createMs),
    update_time: timestamp(p.updateMs),
    service: p.service,
    quota_id: p.quotaId,
    reconciling: p.reconciling,
    justification: p.justification,
    // contact_email is input only: never answered.
  };
}

/**
 * The location and project of a request, checked: the call needs `permission` on `resource` (the
 * request's name or parent), and `cloudquotas.quotas.get` to read or `cloudquotas.quotas.update`
 * to create or change (iam.ts).
 */
function checkProject(
  ctx: EmulatorContext,
  project: string,
  location: string,
  permission: string,
  resource: string,
): void {
  // Resource ids checked before anything is looked up, as quota infos' are (rpc.ts checkSegment):
  // "Listing across different resource containers (such as 'projects/-') is not allowed"
  // (ListQuotaPreferencesRequest.parent in cloudquotas.proto).
  checkSegment('project', 'the project of the name', project);
  checkSegment('id', 'the location of the name', location);
  if (location !== 'global')
    throw invalid(`the location of a quota preference must be "global", got "${shown(location)}"`);
  // Permission before existence (AIP-211; rpc.ts, requireFleetProject), as quota infos are.
  requireFleetProject(ctx.model.fleet.projects, project, permission, resource);
}

function preferredValue(config: Message | undefined): number {
  const raw = config?.['preferred_value'];
  if (raw === undefined || raw === null || raw === '')
    throw invalid('quota_preference.quota_config.preferred_value is required');
  const v = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(v) || v < -1)
    throw invalid(
      `quota_preference.quota_config.preferred_value must be an integer >= -1, got ${shown(String(raw))}`,
    );
  if (v > MAX_PREFERRED)
    throw invalid(
      `quota_preference.quota_config.preferred_value ${v} is out of range (the emulator takes at most ${MAX_PREFERRED})`,
    );
  return v;
}

function checkDimensions(dimensions: Record<string, string>): void {
  for (const [k, v] of Object.entries(dimensions)) {
    if (k === 'user' || k === 'resource')
      throw invalid(`quota_preference.dimensions: "${shown(k)}" must not be set`);
    if (k !== 'region')
      throw invalid(`quota_preference.dimensions: "${shown(k)}" is not a dimension of this quota`);
    if (!/^[a-z0-9-]{1,63}$/.test(v))
      throw invalid(`quota_preference.dimensions.region: "${shown(v)}" is not a region`);
  }
}

function checkEmail(email: string, increase: boolean): void {
  if (email === '') {
    if (increase)
      throw invalid('quota_preference.contact_email is required when requesting a quota increase');
    return;
  }
  if (email.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email))
    throw invalid(`quota_preference.contact_email "${shown(email)}" is not an email address`);
}

function sameDimensions(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** The value the quota has now for a preference's dimensions (what an increase is judged by). */
function currentValue(
  model: FleetModel,
  p: Pick<StoredPreference, 'service' | 'project' | 'quotaId' | 'dimensions'>,
): number {
  return quotaEntry(model, p.service, p.project, p.quotaId, p.dimensions['region'])?.quota ?? 0;
}

/** Whether a preferred value asks for more than the quota has now (-1, unlimited, always does). */
function isIncrease(
  model: FleetModel,
  p: Pick<StoredPreference, 'service' | 'project' | 'quotaId' | 'dimensions' | 'preferredValue'>,
): boolean {
  return p.preferredValue === -1 || p.preferredValue > currentValue(model, p);
}

/**
 * GPUs in use now where a preference applies: its region's pool, or for a preference without a
 * region every pool of the quota id that has no regional entry of its own (the most of them).
 */
function usageOf(
  model: FleetModel,
  p: Pick<StoredPreference, 'service' | 'project' | 'quotaId' | 'dimensions'>,
): number {
  if (p.service !== RUN) return 0;
  const region = p.dimensions['region'];
  const ownEntry = new Set(
    model
      .quotaEntries(p.project)
      .filter((e) => e.key.region !== undefined && e.quota !== undefined)
      .map((e) => `${gpuQuotaId(e.key.accelerator, e.key.zonalRedundancy)}/${e.key.region}`),
  );
  const pools = model
    .pools(p.project)
    .filter(
      (pool) =>
        gpuQuotaId(pool.accelerator, pool.zonalRedundancy) === p.quotaId &&
        (region === undefined
          ? !ownEntry.has(`${p.quotaId}/${pool.region}`)
          : pool.region === region),
    );
  return Math.max(0, ...pools.map((pool) => pool.serviceGpus + pool.workerPoolGpus + pool.jobGpus));
}

const SAFETY_CHECKS = ['QUOTA_DECREASE_BELOW_USAGE', 'QUOTA_DECREASE_PERCENTAGE_TOO_HIGH'] as const;

/**
 * Google's quota safety checks on a decrease (see the top of this file), each skipped when the
 * request's `ignore_safety_checks` names it. An unknown enum number there is INVALID_ARGUMENT.
 */
function checkSafety(
  model: FleetModel,
  request: Message,
  p: Pick<StoredPreference, 'service' | 'project' | 'quotaId' | 'dimensions' | 'preferredValue'>,
): void {
  const raw = request['ignore_safety_checks'];
  const ignored = new Set<string>();
  for (const v of Array.isArray(raw) ? (raw as unknown[]) : []) {
    if (typeof v !== 'string')
      throw invalid(
        `ignore_safety_checks has an unknown value ${String(v)}: not a QuotaSafetyCheck`,
      );
    ignored.add(v);
  }
  if (isIncrease(model, p)) return;
  const current = currentValue(model, p);
  const value = p.preferredValue;
  const where = `${p.quotaId}${p.dimensions['region'] ? ` in ${p.dimensions['region']}` : ''}`;
  const usage = usageOf(model, p);
  if (!ignored.has(SAFETY_CHECKS[0]) && value < usage)
    throw new RpcError(
      status.FAILED_PRECONDITION,
      `quota safety check ${SAFETY_CHECKS[0]} failed: ${value} is below the ${usage} in use for ${where}; to decrease anyway, set ignore_safety_checks to ${SAFETY_CHECKS[0]}`,
    );
  if (!ignored.has(SAFETY_CHECKS[1]) && (current - value) * 10 > current)
    throw new RpcError(
      status.FAILED_PRECONDITION,
      `quota safety check ${SAFETY_CHECKS[1]} failed: ${current} to ${value} for ${where} is a decrease of more than 10 percent; to decrease anyway, set ignore_safety_checks to ${SAFETY_CHECKS[1]}`,
    );
}

/**
 * A QuotaConfig's `annotations` ("Optional. The annotations map for clients to store small amounts
 * of arbitrary data", resources.proto; https://cloud.google.com/php/docs/reference/cloud-quotas/latest/V1.QuotaConfig).
 * Google states no limit: the emulator takes at most 256 KiB of keys and values, Kubernetes' limit
 * for annotations (as for Cloud Run's, fleet.ts), so that a client cannot store megabytes in the
 * model.
 */
function annotationsOf(config: Message | undefined): Record<string, string> {
  const annotations = stringMap(config, 'annotations');
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations))
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  if (bytes > ANNOTATIONS_MAX_BYTES)
    throw invalid(
      `quota_preference.quota_config.annotations take ${bytes} bytes; the emulator takes at most ${ANNOTATIONS_MAX_BYTES} (256 KiB)`,
    );
  return annotations;
}

function settle(ctx: EmulatorContext, p: StoredPreference, store: PreferenceStore): void {
  const now = ctx.clock.now();
  const increase = isIncrease(ctx.model, p);
  p.updateMs = now;
  if (increase) {
    p.reconciling = true;
    p.stateDetail = 'Pending review';
    p.traceId = `trace-${createHash('sha256').update(`${p.name}:${store.serial}`).digest('hex').slice(0, 12)}`;
    p.grantedValue = null;
  } else {
    // A decrease (or the same value) applies at once and has no trace id.
    p.reconciling = false;
    p.stateDetail = '';
    p.traceId = '';
    p.grantedValue = p.preferredValue;
    const entry = quotaEntry(ctx.model, p.service, p.project, p.quotaId, p.dimensions['region']);
    if (entry) ctx.model.setQuota(entry.key, p.preferredValue);
  }
  store.serial++;
  p.etag = etagOf(p, store.serial);
}

/**
 * What `settle` would make of `p`, with nothing stored and no quota changed: a validate_only
 * request's answer. AIP-163 (https://google.aip.dev/163): an API validating a request provides
 * "the same response ... that it would have provided if the request was actually executed", and
 * "should omit" what only execution makes: here the etag and the trace id, left empty, so that no
 * client writes back an etag no stored preference has.
 */
function previewed(ctx: EmulatorContext, p: StoredPreference): StoredPreference {
  const increase = isIncrease(ctx.model, p);
  return {
    ...p,
    updateMs: ctx.clock.now(),
    reconciling: increase,
    stateDetail: increase ? 'Pending review' : '',
    traceId: '',
    grantedValue: increase ? null : p.preferredValue,
    etag: '',
  };
}

export function quotaPreferenceHandlers(ctx: EmulatorContext): Handlers {
  const store = storeOf(ctx.model);
  /**
   * A new preference `id` under `project`, checked as CreateQuotaPreference checks it (also what
   * UpdateQuotaPreference does with `allow_missing` for a preference not found); stored unless
   * `validateOnly`.
   */
  const create = (
    project: string,
    id: string,
    pref: Message,
    request: Message,
    validateOnly: boolean,
  ): StoredPreference => {
    if (!PREFERENCE_ID.test(id))
      throw invalid(
        `quota_preference_id "${shown(id)}" must be lower case letters, digits, hyphens and underscores, start with a letter, end with a letter or digit and be at most 63 characters`,
      );
    const service = text(pref, 'service');
    if (service === '') throw invalid('quota_preference.service is required');
    // Any service's quota may be asked for (QuotaPreference.service in
    // google/api/cloudquotas/v1/resources.proto, "The name of the service to which the quota
    // preference is applied"); the emulator models Cloud Run's alone.
    if (service !== RUN)
      throw notEmulated(
        `A quota preference for ${shown(service)}`,
        `the emulator models the quotas of ${RUN} only`,
      );
    const quotaId = text(pref, 'quota_id');
    if (quotaId === '') throw invalid('quota_preference.quota_id is required');
    if (!hasQuotaId(ctx.model, project, quotaId))
      throw invalid(
        `quota_preference.quota_id "${shown(quotaId)}" is not a quota of ${shown(service)} in ${project}`,
      );
    const dimensions = stringMap(pref, 'dimensions');
    checkDimensions(dimensions);
    const value = preferredValue(field(pref, 'quota_config'));
    const name = `projects/${project}/locations/global/quotaPreferences/${id}`;
    if (store.byName.has(name))
      throw new RpcError(status.ALREADY_EXISTS, `QuotaPreference ${shown(name)} already exists`);
    // A quota is a service's: another service's preference of the same quota id is no twin (as
    // seedQuotaPreference holds it).
    const twin = [...store.byName.values()].find(
      (p) =>
        p.project === project &&
        p.service === service &&
        p.quotaId === quotaId &&
        sameDimensions(p.dimensions, dimensions),
    );
    if (twin)
      throw new RpcError(
        status.ALREADY_EXISTS,
        `a QuotaPreference for ${shown(quotaId)} with these dimensions already exists: ${twin.name}`,
      );
    const asked = { service, project, quotaId, dimensions, preferredValue: value };
    checkEmail(text(pref, 'contact_email'), isIncrease(ctx.model, asked));
    checkSafety(ctx.model, request, asked);
    const now = ctx.clock.now();
    const created: StoredPreference = {
      name,
      project,
      service,
      quotaId,
      dimensions,
      preferredValue: value,
      grantedValue: null,
      reconciling: false,
      stateDetail: '',
      traceId: '',
      justification: text(pref, 'justification'),
      annotations: annotationsOf(field(pref, 'quota_config')),
      contactEmail: text(pref, 'contact_email'),
      etag: '',
      createMs: now,
      updateMs: now,
    };
    if (validateOnly) return previewed(ctx, created);
    settle(ctx, created, store);
    store.byName.set(name, created);
    return created;
  };
  return {
    CreateQuotaPreference: (request) => {
      const project = parentProject(ctx, request, 'cloudquotas.quotas.update');
      const pref = field(request, 'quota_preference');
      if (!pref) throw invalid('quota_preference is required');
      // "If client does not set this field, the service will generate one", unique under the
      // parent (CreateQuotaPreferenceRequest.quota_preference_id): never one a client chose.
      let id = text(request, 'quota_preference_id');
      for (let n = store.serial + 1; id === ''; n++) {
        const generated = `pref-${n}`;
        if (!store.byName.has(`projects/${project}/locations/global/quotaPreferences/${generated}`))
          id = generated;
      }
      if (bool(request, 'validate_only'))
        throw invalid('validate_only is not a field of CreateQuotaPreferenceRequest');
      return toMessage(create(project, id, pref, request, false));
    },
    GetQuotaPreference: (request) => {
      const name = text(request, 'name');
      const m = NAME.exec(name);
      if (!m) refuseContainer(NAME, name, 'a quota preference');
      if (!m)
        throw invalid(
          `name must look like projects/{project}/locations/global/quotaPreferences/{id}, got "${shown(name)}"`,
        );
      checkProject(ctx, m[1] ?? '', m[2] ?? '', 'cloudquotas.quotas.get', name);
      const p = store.byName.get(name);
      if (!p) throw notFound(`QuotaPreference ${shown(name)} was not found`);
      return toMessage(p);
    },
    ListQuotaPreferences: (request) => {
      const project = parentProject(ctx, request, 'cloudquotas.quotas.get');
      const filter = text(request, 'filter');
      // Filters are not modelled: an unfiltered list is the safe answer only when none is asked.
      if (filter !== '')
        throw notEmulated('ListQuotaPreferences filter', 'list and filter client side');
      // "By default, the results are ordered by create time" (ListQuotaPreferencesRequest.order_by
      // in cloudquotas.proto): that order is served; another (`quota_id`, `service, create_time`)
      // is not emulated, never answered in creation order as if it were.
      const orderBy = text(request, 'order_by').trim();
      if (orderBy !== '' && !/^create_time(\s+asc)?$/i.test(orderBy))
        throw notEmulated(`ListQuotaPreferences order_by "${shown(orderBy)}"`, 'sort client side');
      // In creation order: the map keeps the order preferences were created in (an update
      // replaces its entry in place).
      const all = [...store.byName.values()].filter((p) => p.project === project).map(toMessage);
      const { page, nextPageToken } = paginate(
        all,
        listPaging(request, ctx, [
          'ListQuotaPreferences',
          text(request, 'parent'),
          filter,
          text(request, 'order_by'),
        ]),
      );
      // A location Google could not reach answers none of its preferences and is named in
      // `unreachable` (ListQuotaPreferencesResponse.unreachable, cloudquotas.proto): the page is
      // not an error, and its preferences are missing from it.
      if (ctx.injector.unreachable())
        return { quota_preferences: [], next_page_token: nextPageToken, unreachable: ['global'] };
      return { quota_preferences: page, next_page_token: nextPageToken, unreachable: [] };
    },
    UpdateQuotaPreference: (request) => {
      const pref = field(request, 'quota_preference');
      if (!pref) throw invalid('quota_preference is required');
      const name = text(pref, 'name');
      const m = NAME.exec(name);
      if (!m) refuseContainer(NAME, name, 'a quota preference');
      if (!m)
        throw invalid(
          `quota_preference.name must look like projects/{project}/locations/global/quotaPreferences/{id}, got "${shown(name)}"`,
        );
      checkProject(ctx, m[1] ?? '', m[2] ?? '', 'cloudquotas.quotas.update', name);
      const existing = store.byName.get(name);
      if (!existing) {
        // "If set to true, and the quota preference is not found, a new one will be created. In
        // this situation, update_mask is ignored." (UpdateQuotaPreferenceRequest.allow_missing)
        if (bool(request, 'allow_missing'))
          return toMessage(
            create(m[1] ?? '', m[3] ?? '', pref, request, bool(request, 'validate_only')),
          );
        throw notFound(`QuotaPreference ${shown(name)} was not found`);
      }
      const etag = text(pref, 'etag');
      if (etag !== '' && etag !== existing.etag)
        throw new RpcError(
          status.ABORTED,
          `the etag of ${shown(name)} does not match: it changed since it was read`,
        );
      // "*" is full replacement (AIP-134, https://google.aip.dev/134: "Update masks must support a
      // special value `*`, meaning full replacement"), what no mask does here: "If the user does
      // not provide a mask then all fields will be overwritten" (UpdateQuotaPreferenceRequest).
      const asked = strings(field(request, 'update_mask'), 'paths');
      const mask = asked.includes('*') ? [] : asked;
      for (const path of mask)
        if (!UPDATABLE.includes(path))
          throw invalid(`update_mask path "${shown(path)}" cannot be updated`);
      const has = (p: string): boolean => mask.length === 0 || mask.includes(p);
      const dimensions = stringMap(pref, 'dimensions');
      if (mask.length === 0 && !sameDimensions(dimensions, existing.dimensions))
        throw invalid('quota_preference.dimensions is immutable');
      // Without a mask every field is overwritten: Google states no rule for moving a preference
      // to another service or quota that way; the emulator takes the strict side and refuses it.
      for (const [key, was] of [
        ['service', existing.service],
        ['quota_id', existing.quotaId],
      ] as const)
        if (mask.length === 0 && text(pref, key) !== was)
          throw invalid(
            `quota_preference.${key} "${shown(text(pref, key))}" is not the preference's ("${shown(was)}"): a preference cannot move to another ${key === 'service' ? 'service' : 'quota'}`,
          );
      const next = { ...existing };
      delete next.wire;
      if (has('quota_config') || has('quota_config.preferred_value'))
        next.preferredValue = preferredValue(field(pref, 'quota_config'));
      if (has('quota_config') || has('quota_config.annotations'))
        next.annotations = annotationsOf(field(pref, 'quota_config'));
      if (has('justification')) next.justification = text(pref, 'justification');
      if (has('contact_email')) next.contactEmail = text(pref, 'contact_email');
      checkEmail(next.contactEmail, isIncrease(ctx.model, next));
      checkSafety(ctx.model, request, next);
      if (bool(request, 'validate_only')) return toMessage(previewed(ctx, next));
      settle(ctx, next, store);
      store.byName.set(name, next);
      return toMessage(next);
    },
  };
}

/** A test's view of the preferences, contact emails included. */
export function quotaPreferences(model: FleetModel): StoredPreference[] {
  return [...storeOf(model).byName.values()].map((p) => ({
    ...p,
    dimensions: { ...p.dimensions },
  }));
}

/**
 * Google's decision on a pending preference: `granted` sets the granted value to the preferred
 * value (or `grantedValue`, a partial grant) and the quota info takes it; `denied` leaves the
 * quota as it was, with `stateDetail` saying why. Either ends `reconciling`.
 */
export function decideQuotaPreference(
  model: FleetModel,
  clockNow: number,
  input: {
    name: string;
    decision: 'granted' | 'denied';
    grantedValue?: number;
    stateDetail?: string;
  },
): StoredPreference {
  const store = storeOf(model);
  const p = store.byName.get(input.name);
  if (!p) throw new Error(`no quota preference ${input.name}`);
  if (!p.reconciling) throw new Error(`quota preference ${input.name} is not pending`);
  const before = currentValue(model, p);
  const granted = input.decision === 'granted' ? (input.grantedValue ?? p.preferredValue) : before;
  if (granted === -1)
    throw new Error(
      `quota preference ${input.name} asks for unlimited (-1): grant a number of GPUs (grantedValue), the emulator's pools hold a count`,
    );
  if (!Number.isInteger(granted) || granted < 0) throw new Error(`bad granted value ${granted}`);
  // A seeded value up to int64's most, granted as it is, would be a quota past 2^53 (answered
  // wrapped negative): a pool holds at most what CreateQuotaPreference takes.
  if (granted > MAX_PREFERRED)
    throw new Error(
      `quota preference ${input.name}: a grant of ${p.wire?.preferredValue ?? granted} is beyond the ${MAX_PREFERRED} GPUs a pool's quota holds here; grant a number of GPUs (grantedValue)`,
    );
  const next: StoredPreference = {
    ...p,
    reconciling: false,
    grantedValue: granted,
    stateDetail:
      input.stateDetail ?? (input.decision === 'granted' ? 'Approved' : 'Request denied'),
    updateMs: clockNow,
  };
  if (input.decision === 'granted') {
    const entry = quotaEntry(model, p.service, p.project, p.quotaId, p.dimensions['region']);
    if (entry) model.setQuota(entry.key, granted);
  }
  // A decision sets the values: a seed's int64 text no longer answers for them.
  delete next.wire;
  store.serial++;
  next.etag = etagOf(next, store.serial);
  store.byName.set(p.name, next);
  return next;
}

/** The int64 range of a QuotaConfig value (preferred_value and granted_value are int64). */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A preference as Google may hold it, put in place by a test or a person, not filed through the
 * API: of any quota of `service` (a CPU quota of Cloud Run, say, which the fleet has no pool
 * for), with any int64 values at least -1 (QuotaConfig.preferred_value: "Must be greater than or
 * equal to -1. If set to -1, it means the value is "unlimited""; granted_value is an Int64Value),
 * given as decimal text so that values beyond 2^53 are answered exactly, and, with `etag: false`,
 * answered without an etag (QuotaPreference.etag is optional). Refused (Error) when the name is
 * taken, or its quota and dimensions already have a preference.
 */
export function seedQuotaPreference(
  model: FleetModel,
  clockNow: number,
  input: {
    name: string;
    service: string;
    quotaId: string;
    region?: string | undefined;
    preferredValue: string;
    grantedValue: string | null;
    reconciling: boolean;
    etag: boolean;
    stateDetail?: string | undefined;
  },
): StoredPreference {
  const store = storeOf(model);
  const m = NAME.exec(input.name);
  if (!m || m[2] !== 'global') throw new Error(`not a quota preference name: ${input.name}`);
  const project = m[1] ?? '';
  if (!model.fleet.projects.some((p) => p.id === project))
    throw new Error(`project ${project} is not in the fleet`);
  if (store.byName.has(input.name)) throw new Error(`quota preference ${input.name} exists`);
  const dimensions: Record<string, string> =
    input.region === undefined ? {} : { region: input.region };
  const twin = [...store.byName.values()].find(
    (p) =>
      p.project === project &&
      p.service === input.service &&
      p.quotaId === input.quotaId &&
      sameDimensions(p.dimensions, dimensions),
  );
  if (twin) throw new Error(`${twin.name} is already the preference of that quota and dimensions`);
  const value = (raw: string, what: string): number => {
    const v = BigInt(raw);
    if (v < -1n || v < INT64_MIN || v > INT64_MAX)
      throw new Error(`${what} ${raw} is not an int64 of at least -1`);
    return Number(v);
  };
  const seeded: StoredPreference = {
    name: input.name,
    project,
    service: input.service,
    quotaId: input.quotaId,
    dimensions,
    preferredValue: value(input.preferredValue, 'preferredValue'),
    grantedValue: input.grantedValue === null ? null : value(input.grantedValue, 'grantedValue'),
    reconciling: input.reconciling,
    stateDetail: input.stateDetail ?? '',
    traceId: '',
    justification: '',
    annotations: {},
    contactEmail: '',
    etag: '',
    createMs: clockNow,
    updateMs: clockNow,
    wire: { preferredValue: input.preferredValue, grantedValue: input.grantedValue },
  };
  store.serial++;
  if (input.etag) seeded.etag = etagOf(seeded, store.serial);
  store.byName.set(input.name, seeded);
  return { ...seeded, dimensions: { ...dimensions } };
}
