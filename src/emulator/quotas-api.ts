import { answerOf, type EmulatorContext } from './context.js';
import { compareText } from '../core/pool.js';
import type { FleetModel } from './model.js';
import { fleetRegions } from './fleet.js';
import {
  requireFleetProject,
  invalid,
  notEmulated,
  notFound,
  listPaging,
  paginate,
  text,
  type Handlers,
  type Message,
  shown,
  checkSegment,
} from './rpc.js';

/** Cloud Quotas API v1: the GPU allocation quotas of Cloud Run, one QuotaInfo per (accelerator, zonal redundancy). */

const RUN = 'run.googleapis.com';
const INFO_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/services\/([^/]+)\/quotaInfos\/([^/]+)$/;
const PARENT = /^projects\/([^/]+)\/locations\/([^/]+)\/services\/([^/]+)$/;

function pascal(words: string): string {
  return words
    .split(/[-_]/)
    .filter((w) => w !== '')
    .map((w) => (w[0] ?? '').toUpperCase() + w.slice(1))
    .join('');
}

/** `nvidia-l4`, zonal redundancy on → `NvidiaL4GpuAllocPerProjectRegion`. */
export function gpuQuotaId(accelerator: string, zonalRedundancy: boolean): string {
  return `${pascal(accelerator)}GpuAlloc${zonalRedundancy ? '' : 'NoZonalRedundancy'}PerProjectRegion`;
}

/** `nvidia-l4`, zonal redundancy off → `run.googleapis.com/nvidia_l4_gpu_allocation_no_zonal_redundancy`. */
export function gpuQuotaMetric(accelerator: string, zonalRedundancy: boolean): string {
  return `${RUN}/${accelerator.replace(/-/g, '_')}_gpu_allocation${zonalRedundancy ? '' : '_no_zonal_redundancy'}`;
}

/**
 * Why a higher value of a quota cannot be requested (QuotaIncreaseEligibility.IneligibilityReason
 * in google/api/cloudquotas/v1/resources.proto), as a test or a person sets it; QuotaInfo answers
 * `quota_increase_eligibility { is_eligible: false, ineligibility_reason }` for it.
 */
const INELIGIBILITY_REASONS = [
  'NO_VALID_BILLING_ACCOUNT',
  'NOT_SUPPORTED',
  'NOT_ENOUGH_USAGE_HISTORY',
  'OTHER',
] as const;
type IneligibilityReason = (typeof INELIGIBILITY_REASONS)[number];

const ineligible = new WeakMap<FleetModel, Map<string, IneligibilityReason>>();

/**
 * Makes a quota of a project ineligible for an increase (`reason`), or eligible again (null): what
 * its QuotaInfo's `quota_increase_eligibility` answers. Google does not say what it answers to an
 * increase requested for such a quota: the emulator's quota preferences take it as every other.
 */
export function setQuotaIncreaseEligibility(
  model: FleetModel,
  project: string,
  quotaId: string,
  reason: IneligibilityReason | null,
): void {
  if (reason !== null && !INELIGIBILITY_REASONS.includes(reason))
    throw new Error(`not an ineligibility reason: ${String(reason)}`);
  let m = ineligible.get(model);
  if (!m) ineligible.set(model, (m = new Map()));
  if (reason === null) m.delete(`${project}/${quotaId}`);
  else m.set(`${project}/${quotaId}`, reason);
}

interface QuotaGroup {
  accelerator: string;
  zonalRedundancy: boolean;
  entries: { region: string | undefined; quota: number }[];
}

function groups(ctx: EmulatorContext, project: string): Map<string, QuotaGroup> {
  const out = new Map<string, QuotaGroup>();
  const entries = ctx.model.quotaEntries(project);
  for (const { key, quota } of entries) {
    if (quota === undefined) continue;
    const id = gpuQuotaId(key.accelerator, key.zonalRedundancy);
    const group = out.get(id) ?? {
      accelerator: key.accelerator,
      zonalRedundancy: key.zonalRedundancy,
      entries: [],
    };
    group.entries.push({ region: key.region, quota });
    out.set(id, group);
  }
  return out;
}

/**
 * One quota info. `regions`: where Cloud Run is available to the project (the emulator's
 * ListLocations). Each dimensions info lists the locations it applies to
 * (`DimensionsInfo.applicable_locations` in google/api/cloudquotas/v1/resources.proto: "set to
 * the list of locations this dimension info is applicable to"): a region's own entry that region,
 * the regionless entry every other region ("applies to all the dimension values except for those
 * that have another DimensionInfo instance configured for the specific value").
 */
function quotaInfo(
  project: string,
  id: string,
  g: QuotaGroup,
  regions: readonly string[],
  reason: IneligibilityReason | undefined,
): Message {
  const gpu = g.accelerator.replace(/^nvidia-/, '').toUpperCase();
  const regional = g.entries
    .filter((e) => e.region !== undefined)
    .sort((a, b) => compareText(a.region ?? '', b.region ?? ''));
  const fallback = g.entries.filter((e) => e.region === undefined);
  return {
    name: `projects/${project}/locations/global/services/${RUN}/quotaInfos/${id}`,
    quota_id: id,
    metric: gpuQuotaMetric(g.accelerator, g.zonalRedundancy),
    service: RUN,
    is_precise: true,
    container_type: 'PROJECT',
    dimensions: ['region'],
    metric_display_name: `Total Nvidia ${gpu} GPU allocation${g.zonalRedundancy ? '' : ' without zonal redundancy'}, per project per region`,
    quota_display_name: `Total Nvidia ${gpu} GPU allocation${g.zonalRedundancy ? '' : ' without zonal redundancy'}, per project per region`,
    metric_unit: '1/{project}/{region}',
    quota_increase_eligibility:
      reason === undefined
        ? { is_eligible: true }
        : { is_eligible: false, ineligibility_reason: reason },
    is_fixed: false,
    is_concurrent: false,
    dimensions_infos: [
      ...regional.map((e) => ({
        dimensions: { region: e.region ?? '' },
        details: { value: String(e.quota) },
        applicable_locations: [e.region ?? ''],
      })),
      ...fallback.map((e) => ({
        dimensions: {},
        details: { value: String(e.quota) },
        applicable_locations: regions.filter((r) => !regional.some((o) => o.region === r)),
      })),
    ],
  };
}

function reasonOf(
  ctx: EmulatorContext,
  project: string,
  quotaId: string,
): IneligibilityReason | undefined {
  return ineligible.get(ctx.model)?.get(`${project}/${quotaId}`);
}

function regionsOf(ctx: EmulatorContext, project: string): string[] {
  const p = ctx.model.fleet.projects.find((x) => x.id === project);
  return p ? fleetRegions(p, ctx.model.listServices(project)) : [];
}

/**
 * A name or parent `pattern` would take were its `projects/{project}` a folder's or an
 * organisation's: Cloud Quotas has quota infos and preferences for those too (the resource
 * patterns of QuotaInfo and QuotaPreference in google/api/cloudquotas/v1/resources.proto:
 * `folders/{folder}/locations/...`, `organizations/{organization}/locations/...`), which the
 * emulator does not model: UNIMPLEMENTED, never a refusal Google would not make.
 */
export function refuseContainer(pattern: RegExp, name: string, what: string): void {
  const m = /^(folders|organizations)\/([^/]+)(\/.*)$/.exec(name);
  if (m && pattern.test(`projects/${m[2] ?? ''}${m[3] ?? ''}`))
    throw notEmulated(`${what} of ${shown(name)}`, 'the emulator models the quotas of projects');
}

/** The scope of a quota info request, checked; `resource` is the request's name or parent. */
function checkScope(
  ctx: EmulatorContext,
  project: string,
  location: string,
  service: string,
  resource: string,
): void {
  // Resource ids checked before anything is looked up (AIP-122; the rules are in checkSegment).
  checkSegment('project', 'the project of the name', project);
  checkSegment('id', 'the location of the name', location);
  checkSegment('id', 'the service of the name', service);
  // Permission before existence (AIP-211; rpc.ts, requireFleetProject).
  requireFleetProject(ctx.model.fleet.projects, project, 'cloudquotas.quotas.get', resource);
  if (location !== 'global')
    throw invalid(`location must be "global" for quota infos, got "${shown(location)}"`);
  // Every service's quotas are Cloud Quotas' ("Example names:
  // projects/123/locations/global/services/compute.googleapis.com", ListQuotaInfosRequest.parent in
  // google/api/cloudquotas/v1/cloudquotas.proto): valid, and not modelled here. NOT_FOUND would
  // say the service has no quotas.
  if (service !== RUN)
    throw notEmulated(
      `The quota infos of ${shown(service)}`,
      `the emulator models the quotas of ${RUN} only`,
    );
}

export function quotasHandlers(ctx: EmulatorContext): Handlers {
  return {
    GetQuotaInfo: (request) => {
      const name = text(request, 'name');
      const m = INFO_NAME.exec(name);
      if (!m) {
        refuseContainer(INFO_NAME, name, 'GetQuotaInfo');
        throw invalid(
          `name must look like projects/{project}/locations/global/services/{service}/quotaInfos/{quotaId}, got "${shown(name)}"`,
        );
      }
      const [, project = '', location = '', service = '', id = ''] = m;
      checkScope(ctx, project, location, service, name);
      checkSegment('id', 'the quota id of the name', id);
      const fleetAnswer = (): Message => {
        const group = groups(ctx, project).get(id);
        if (!group) throw notFound(`QuotaInfo ${shown(name)} was not found`);
        return quotaInfo(project, id, group, regionsOf(ctx, project), reasonOf(ctx, project, id));
      };
      return answerOf(ctx, 'GetQuotaInfo', request, fleetAnswer);
    },
    ListQuotaInfos: (request) => {
      const parent = text(request, 'parent');
      const m = PARENT.exec(parent);
      if (!m) refuseContainer(PARENT, parent, 'ListQuotaInfos');
      if (!m)
        throw invalid(
          `parent must look like projects/{project}/locations/global/services/{service}, got "${shown(parent)}"`,
        );
      const [, project = '', location = '', service = ''] = m;
      checkScope(ctx, project, location, service, parent);
      const infos = [...groups(ctx, project).entries()]
        .sort(([a], [b]) => compareText(a, b))
        .map(([id, g]) =>
          quotaInfo(project, id, g, regionsOf(ctx, project), reasonOf(ctx, project, id)),
        );
      const { page, nextPageToken } = paginate(
        infos,
        listPaging(request, ctx, ['ListQuotaInfos', parent]),
      );
      return { quota_infos: page, next_page_token: nextPageToken };
    },
  };
}
