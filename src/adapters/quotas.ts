/**
 * The quota source, and its one Google implementation: Cloud Quotas API v1 `GetQuotaInfo`.
 *
 * Each GPU pool (project, region, accelerator, zonal redundancy) maps to one quota id of
 * `run.googleapis.com`; its QuotaInfo holds one `dimensions_infos` entry per region with its own
 * value, plus possibly one without a region that applies to the other regions its
 * `applicable_locations` lists. The adapter reads each
 * (project, quota id) once per instance and picks the entry of the asked region from it, so one
 * observation of many pools sharing a quota id costs one RPC per quota id.
 *
 * It never guesses: a quota it could not read or make sense of is a typed error (the caller then
 * treats the pool's quota as unknown and leaves it alone).
 *
 * Emulator mode: given `emulatorHost` (GOVERNOR_EMULATOR_HOST, see docs/emulator.md), the client
 * connects there; otherwise to Google with Application Default Credentials.
 */
import { CloudQuotasClient, protos } from '@google-cloud/cloudquotas';

import { InputError, UpstreamError } from '../core/errors.js';
import { ACCELERATOR_NAME, MAX_QUOTA_GPUS } from '../core/pool.js';
import type { Fault } from '../core/errors.js';
import type { IncreaseEligibility, QuotaPort, QuotaQuery } from '../ports/index.js';
import { namedUnder } from './resource-names.js';
import { clientConfig, projectFaults } from './client-config.js';
import { translateGrpcError } from './grpc-errors.js';
import {
  checkRetryPolicy,
  closingRetries,
  defaultRetryPolicy,
  definedOnly,
  gaxReadOptions,
} from './retry.js';
import type { RetryPolicy } from './retry.js';

type QuotaInfo = protos.google.api.cloudquotas.v1.IQuotaInfo;
type DimensionsInfo = protos.google.api.cloudquotas.v1.IDimensionsInfo;

const RUN = 'run.googleapis.com';

/** The quota ids Cloud Run uses for L4 GPUs (its docs, and its deploy-time quota errors). */
const KNOWN_QUOTA_IDS: Readonly<Record<string, { zonal: string; nonZonal: string }>> = {
  'nvidia-l4': {
    zonal: 'NvidiaL4GpuAllocPerProjectRegion',
    nonZonal: 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
  },
};

/**
 * The Cloud Quotas id of a GPU pool of Cloud Run.
 *
 * `nvidia-l4` uses the ids Google documents. Any other accelerator gets an id of the same shape,
 * its name in PascalCase (`nvidia-rtx-pro-6000` → `NvidiaRtxPro6000GpuAllocPerProjectRegion`,
 * `...GpuAllocNoZonalRedundancyPerProjectRegion` without zonal redundancy). That derivation is
 * unconfirmed: should Google name it otherwise, the read fails with NotFoundError naming the id
 * (the quota is then unknown, never guessed), and the policy's quota override is the way out.
 */
export function gpuQuotaId(accelerator: string, zonalRedundancy: boolean): string {
  if (!ACCELERATOR_NAME.test(accelerator)) {
    throw new InputError('Invalid GPU quota query', [
      { path: 'accelerator', message: `must look like "nvidia-l4", not "${accelerator}"` },
    ]);
  }
  const known = KNOWN_QUOTA_IDS[accelerator];
  if (known) return zonalRedundancy ? known.zonal : known.nonZonal;
  const pascal = accelerator
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
  return `${pascal}GpuAlloc${zonalRedundancy ? '' : 'NoZonalRedundancy'}PerProjectRegion`;
}

/**
 * Whether a quota id is one {@link gpuQuotaId} gives, for some accelerator: the quotas of Cloud
 * Run the governor reads and asks for. Any other quota of the service (its CPU or memory quotas,
 * say) is none of the governor's business.
 */
export function isGpuQuotaId(quotaId: string): boolean {
  return /^[A-Z0-9][A-Za-z0-9]{0,60}GpuAlloc(?:NoZonalRedundancy)?PerProjectRegion$/.test(quotaId);
}

interface QuotaAdapterOptions {
  /** `HOST:PORT` of the emulator (GOVERNOR_EMULATOR_HOST); null or absent: Google. */
  emulatorHost?: string | null;
  /** Retry and deadline settings (default {@link defaultRetryPolicy}). */
  retry?: Partial<RetryPolicy>;
}

/** A {@link QuotaPort} holding a Cloud Quotas client, to be closed once no longer needed. */
export interface QuotaAdapter extends QuotaPort {
  /** QuotaInfo.quota_increase_eligibility of the pool's quota, from the same cached read. */
  increaseEligibility(query: QuotaQuery): Promise<IncreaseEligibility>;
  /**
   * Forgets every quota info read so far (and every failure), so the next call reads again. The
   * cache lives as long as the adapter: create one per observation, or clear it between two.
   */
  clearCache(): void;
  close(): Promise<void>;
}

/**
 * Creates the Cloud Quotas adapter.
 *
 * `gpuQuota` resolves with the value of the `dimensions_infos` entry whose `region` dimension is
 * the pool's region, else of the entry without a region that lists the region among its
 * `applicable_locations`, else `null` (the quota info exists but has no entry at all for that
 * region). Should two entries qualify (not seen on Google), the lowest
 * value is taken: the binding one. It rejects with:
 * - {@link NotFoundError} when the quota info does not exist (NOT_FOUND): most likely a quota id
 *   that is not Google's (see {@link gpuQuotaId}), which must not read as "no quota";
 * - {@link UpstreamError} when the answer is another quota's or another project's, when an entry
 *   for the region does not say plainly that it is the region's, or the only entry left is a
 *   regionless one that does not list the region as applicable (see pickValue), when a value is
 *   not a non-negative integer (an int64 beyond 2^53, or -1, which Cloud Quotas uses for
 *   "unlimited" and no budget can be made of), or is above
 *   MAX_QUOTA_GPUS, the most the policy may give (the pool is then planned as one whose quota is
 *   unknown: nothing in it raised);
 * - the other typed errors of src/core/errors.ts for the call's failures.
 *
 * Each (project, quota id) is read once per adapter, failures included: pools sharing a quota id
 * in one observation see the same answer. Retries as in the Monitoring adapter: UNAVAILABLE
 * and DEADLINE_EXCEEDED by google-gax, RESOURCE_EXHAUSTED after the delay its RetryInfo asks for
 * (retry.ts withRetryInfo), `maxAttempts` attempts each, each bounded to `attemptTimeoutMs`, with
 * backoff from `minBackoffMs` to `maxBackoffMs`.
 */
export function createQuotaAdapter(options: QuotaAdapterOptions = {}): QuotaAdapter {
  const policy = checkRetryPolicy({ ...defaultRetryPolicy, ...definedOnly(options.retry ?? {}) });
  const client = new CloudQuotasClient(clientConfig(options).options);
  const retries = closingRetries(policy);
  const cache = new Map<string, Promise<QuotaInfo>>();

  const quotaInfo = (project: string, quotaId: string): Promise<QuotaInfo> => {
    const name = `projects/${project}/locations/global/services/${RUN}/quotaInfos/${quotaId}`;
    let pending = cache.get(name);
    if (!pending) {
      pending = retries
        .retry(() => client.getQuotaInfo({ name }, gaxReadOptions(policy)))
        .then(
          ([info]) => info,
          (error: unknown) => {
            throw translateGrpcError(error, `reading quota info ${name} (GetQuotaInfo)`);
          },
        );
      cache.set(name, pending);
    }
    return pending;
  };

  return {
    gpuQuota: async (query) => {
      checkQuery(query);
      const quotaId = gpuQuotaId(query.accelerator, query.zonalRedundancy);
      const info = await quotaInfo(query.project, quotaId);
      checkIdentity(info, query.project, quotaId);
      return pickValue(
        info.dimensionsInfos ?? [],
        query.region,
        `quota ${quotaId} of ${query.project}`,
      );
    },
    increaseEligibility: async (query) => {
      checkQuery(query);
      const quotaId = gpuQuotaId(query.accelerator, query.zonalRedundancy);
      const info = await quotaInfo(query.project, quotaId);
      checkIdentity(info, query.project, quotaId);
      return eligibility(info.quotaIncreaseEligibility);
    },
    clearCache: () => cache.clear(),
    close: () => {
      retries.close();
      return client.close();
    },
  };
}

function checkQuery({ project, region }: QuotaQuery): void {
  const faults: Fault[] = projectFaults(project);
  if (!/^[a-z0-9-]+$/.test(region)) {
    faults.push({
      path: 'region',
      message: `must be a region such as "us-central1", not "${region}"`,
    });
  }
  if (faults.length > 0) throw new InputError('Invalid GPU quota query', faults);
}

/**
 * QuotaIncreaseEligibility: `is_eligible`, "Whether a higher quota value can be requested for the
 * quota", and `ineligibility_reason` when not (google/api/cloudquotas/v1/resources.proto;
 * https://cloud.google.com/python/docs/reference/google-cloud-cloudquotas/0.1.4/google.cloud.cloudquotas_v1.types.QuotaIncreaseEligibility).
 * Google does not say when it leaves the field out: an answer without it is taken as eligible,
 * as Google's own how-to files requests without reading it, and Google still decides each one.
 */
function eligibility(
  e: protos.google.api.cloudquotas.v1.IQuotaIncreaseEligibility | null | undefined,
): IncreaseEligibility {
  if (e === null || e === undefined || e.isEligible !== false) return { eligible: true };
  const raw = e.ineligibilityReason;
  const Reason = protos.google.api.cloudquotas.v1.QuotaIncreaseEligibility.IneligibilityReason;
  const reason = typeof raw === 'number' ? (Reason[raw] ?? String(raw)) : (raw ?? '');
  return {
    eligible: false,
    reason:
      reason === '' || reason === 'INELIGIBILITY_REASON_UNSPECIFIED' ? 'no reason given' : reason,
  };
}

/**
 * A quota info whose name or quota id is not the one asked is refused whole: its values are
 * another quota's or another project's. The name's project may be a number though asked by id
 * (as Google names resources in what it answers; resource-names.ts namedUnder); a field left empty is
 * not checked.
 */
function checkIdentity(info: QuotaInfo, project: string, quotaId: string): void {
  const what = `quota ${quotaId} of ${project}`;
  const name = info.name ?? '';
  if (
    name !== '' &&
    !namedUnder(name, project, 'global', `services/${RUN}/quotaInfos/${quotaId}`, /^$/)
  ) {
    throw new UpstreamError(
      `${what}: Cloud Quotas answered the quota info of ${JSON.stringify(name)}; not used`,
    );
  }
  if ((info.quotaId ?? '') !== '' && info.quotaId !== quotaId) {
    throw new UpstreamError(
      `${what}: Cloud Quotas answered quota id ${JSON.stringify(info.quotaId)}; not used`,
    );
  }
}

/**
 * The region's entry, else a regionless one listing the region as applicable, else null when
 * there is no entry either way; the lowest if several qualify.
 *
 * An entry that concerns the region (its `region` dimension, or one of its
 * `applicable_locations`, "the list of locations this dimension info is applicable to") must say
 * so plainly, else the quota is refused (UpstreamError: unknown, nothing raised on it):
 * - its region dimension and its applicable locations must agree: an entry for one region that
 *   applies to another is either region's value, maybe the larger;
 * - it may have no dimension but `region`: an entry narrowed by another dimension applies only to
 *   that dimension's value ("If a dimension does not appear in the map of dimensions, the
 *   dimensions info applies to all the dimension values except for those that have another
 *   DimensionsInfo instance configured for the specific value"), and the pool's is unknown.
 * (DimensionsInfo, google/api/cloudquotas/v1/resources.proto;
 * https://cloud.google.com/python/docs/reference/google-cloud-cloudquotas/latest/google.cloud.cloudquotas_v1.types.DimensionsInfo)
 *
 * `rollout_info.ongoing_rollout` and `is_precise` do not change the value taken: a rollout raises
 * default values gradually and the API shows the value from before it until it completes
 * (https://cloud.google.com/docs/quotas/view-ongoing-rollouts), never above the quota in force;
 * `is_precise` is of how usage is tracked ("A precise quota is tracked with absolute precision"),
 * not of the limit.
 */
function pickValue(
  entries: readonly DimensionsInfo[],
  region: string,
  what: string,
): number | null {
  const regionOf = (e: DimensionsInfo): string | undefined => e.dimensions?.['region'] || undefined;
  const locationsOf = (e: DimensionsInfo): string[] =>
    (e.applicableLocations ?? []).filter((l) => l !== '');
  for (const e of entries) {
    const own = regionOf(e);
    const locations = locationsOf(e);
    if (own !== region && !(own !== undefined && locations.includes(region))) continue;
    const elsewhere = locations.filter((l) => l !== own);
    if (elsewhere.length > 0) {
      throw new UpstreamError(
        `${what}: the entry for region ${own} applies to ${elsewhere.join(', ')}; not used`,
      );
    }
  }
  const regional = entries.filter((e) => regionOf(e) === region);
  let chosen = regional;
  if (regional.length === 0) {
    // A regionless entry is the region's value only where it says it applies: Google sets
    // applicable_locations to "the list of locations this dimension info is applicable to" (or
    // ['global'] for a quota that is not per region, which a per-region GPU quota is not). Google
    // does not say what an empty list means: it names no region, so it is taken as no region's,
    // and the quota is unknown rather than a value that may not bind there.
    const regionless = entries.filter((e) => regionOf(e) === undefined);
    chosen = regionless.filter((e) => locationsOf(e).includes(region));
    if (chosen.length === 0 && regionless.length > 0) {
      const named = [...new Set(regionless.flatMap(locationsOf))];
      throw new UpstreamError(
        `${what}: the regionless entry applies to ${named.join(', ') || 'no location'}, not ${region}; not used`,
      );
    }
  }
  if (chosen.length === 0) return null;
  const values = chosen.map((e) => {
    const where = regionOf(e) ?? 'the regionless entry';
    const others = Object.keys(e.dimensions ?? {}).filter((d) => d !== 'region');
    if (others.length > 0) {
      throw new UpstreamError(
        `${what}: ${where} is narrowed by ${others.join(', ')}, so which value binds is unknown (set the quota in the policy)`,
      );
    }
    if (!e.details) throw new UpstreamError(`${what}: ${where} has no details`);
    return parseQuotaValue(e.details.value, `${what}, ${where}`);
  });
  const value = Math.min(...values);
  if (value > MAX_QUOTA_GPUS) {
    throw new UpstreamError(
      `${what}: ${value} GPUs is more than the ${MAX_QUOTA_GPUS} a pool's quota may have (set the quota in the policy)`,
    );
  }
  return value;
}

/**
 * An int64 quota value as the client decodes it (a decimal string; a number or a Long with other
 * decoder settings), as a safe non-negative integer.
 */
export function parseQuotaValue(raw: unknown, what = 'quota value'): number {
  let text: string | undefined;
  if (typeof raw === 'string') text = raw.trim();
  else if (typeof raw === 'number' || typeof raw === 'bigint') text = String(raw);
  else if (typeof raw === 'object' && raw !== null && 'low' in raw && 'high' in raw) {
    text = String(raw);
  }
  if (text === undefined || !/^-?\d+$/.test(text)) {
    throw new UpstreamError(`${what}: ${JSON.stringify(String(raw))} is not an integer`);
  }
  const value = BigInt(text);
  if (value === -1n) {
    throw new UpstreamError(
      `${what}: ${text} is not a GPU count (-1 means unlimited, which cannot be budgeted; set the quota in the policy)`,
    );
  }
  if (value < 0n) throw new UpstreamError(`${what}: ${text} is negative, not a GPU count`);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new UpstreamError(`${what}: ${text} is too large to be a GPU count`);
  }
  return Number(value);
}
