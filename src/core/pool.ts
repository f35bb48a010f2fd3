/**
 * Pools: what one is, how it is named, and what the policy says about it. Every rule about pool
 * identity and pool settings lives here, once:
 *
 * - identity: (project, region, accelerator, zonal redundancy), one key format, `samePool`;
 * - settings: the policy's `pools` entries for a pool, merged field by field (see `poolSettings`);
 * - budget: quota − reserve − unmanaged caps − other unmanaged usage (docs/rules.md "Words");
 * - a service's cap in force: the lower of its service-level and revision-level max, or Cloud
 *   Run's default when neither is set.
 */

/** A pool: one quota, keyed by (project, region, accelerator, zonal redundancy). */
export interface PoolId {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}

/**
 * The accelerator where none is named: a policy `pools` entry (the schema's default too), and in
 * the tools a fleet's GPU or pool, a quota set through the emulator, an invariant pool, a scenario.
 */
export const DEFAULT_ACCELERATOR = 'nvidia-l4';

/**
 * The form of an accelerator (a GPU type) as Cloud Run names one: lower-case words of letters
 * and digits joined by hyphens (`nvidia-l4`). The Cloud Quotas id is derived from it
 * (adapters/quotas.ts), so nothing else could be read.
 */
export const ACCELERATOR_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * The GPU types Cloud Run documents ("Supported GPU types",
 * https://cloud.google.com/run/docs/configuring/services/gpu): the NVIDIA L4 and the NVIDIA RTX
 * PRO 6000 Blackwell (preview). Google adds types, so another well-formed name is only warned
 * about, never refused.
 */
export const DOCUMENTED_ACCELERATORS: readonly string[] = ['nvidia-l4', 'nvidia-rtx-pro-6000'];

/**
 * The pool a GPU service, worker pool or job draws from: its project and region, its GPU's
 * accelerator and zonal redundancy.
 */
export function gpuPool(s: {
  project: string;
  region: string;
  gpu: { accelerator: string; zonalRedundancy: boolean };
}): PoolId {
  return {
    project: s.project,
    region: s.region,
    accelerator: s.gpu.accelerator,
    zonalRedundancy: s.gpu.zonalRedundancy,
  };
}

/** Just the four fields of a pool, from anything that has them (a service, a plan row). */
export function poolIdOf(p: PoolId): PoolId {
  return {
    project: p.project,
    region: p.region,
    accelerator: p.accelerator,
    zonalRedundancy: p.zonalRedundancy,
  };
}

/**
 * The one string key of a pool: `project/region/accelerator/zonal|no-zonal`. Also the place of a
 * pool's alerts (dedup keys, ordering keys, `locationKey`), so it must never change shape.
 * Nothing reads a key back into fields: keep the PoolId beside the key where fields are needed.
 */
export function poolKey(p: PoolId): string {
  return `${p.project}/${p.region}/${p.accelerator}/${p.zonalRedundancy ? 'zonal' : 'no-zonal'}`;
}

/**
 * The pool a key names (the inverse of {@link poolKey}), or null when the string is not a pool
 * key: four non-empty parts, an accelerator name, `zonal` or `no-zonal`.
 */
export function poolOfKey(key: string): PoolId | null {
  const parts = key.split('/');
  const [project = '', region = '', accelerator = '', zonal = ''] = parts;
  if (parts.length !== 4 || project === '' || region === '') return null;
  if (!ACCELERATOR_NAME.test(accelerator) || (zonal !== 'zonal' && zonal !== 'no-zonal'))
    return null;
  return { project, region, accelerator, zonalRedundancy: zonal === 'zonal' };
}

export function samePool(a: PoolId, b: PoolId): boolean {
  return (
    a.project === b.project &&
    a.region === b.region &&
    a.accelerator === b.accelerator &&
    a.zonalRedundancy === b.zonalRedundancy
  );
}

/**
 * The one order of text in the governor: by UTF-16 code unit (code-point order for the ASCII names
 * of projects, regions and services), the same on every machine. Never `localeCompare` or
 * `Intl.Collator`: they sort by the process's locale (LC_ALL, LANG), where Danish puts `aa` after
 * `z`; the lint rules forbid them.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Pools in key order. */
export function comparePools(a: PoolId, b: PoolId): number {
  return compareText(poolKey(a), poolKey(b));
}

// --- what the policy says about a pool ---

/** A `pools` entry of the policy (the shape of `PoolSettings` in policy.ts, which imports this). */
interface PoolEntry {
  project?: string | undefined;
  region: string;
  accelerator?: string | undefined;
  zonalRedundancy: boolean;
  quota?: number | undefined;
  reserve?: number | undefined;
}

/** What the pool rules read of a policy. */
interface PoolPolicy {
  pools: readonly PoolEntry[];
  reserve: number;
}

interface PoolSettingsOf {
  /** GPUs the policy sets as the pool's quota (over the Cloud Quotas API); null: it sets none. */
  quota: number | null;
  /** GPUs kept free in the pool. */
  reserve: number;
}

/**
 * The policy's settings for one pool. A `pools` entry applies to a pool when its region,
 * accelerator and zonal redundancy are the pool's, and it names the pool's project or no project
 * (every project). The policy allows at most one entry of each kind per pool, and the settings
 * merge per field: **the most specific entry that sets a field wins** — the project's own entry
 * over the entry for every project — and a field neither sets falls back to the policy-wide value
 * (`reserve`) or to none (`quota`: read from the Cloud Quotas API). So an entry for one project
 * that sets only `reserve` does not hide the `quota` an every-project entry sets.
 */
export function poolSettings(policy: PoolPolicy, id: PoolId): PoolSettingsOf {
  let own: PoolEntry | undefined;
  let all: PoolEntry | undefined;
  for (const p of policy.pools) {
    if (
      p.region !== id.region ||
      (p.accelerator ?? DEFAULT_ACCELERATOR) !== id.accelerator ||
      p.zonalRedundancy !== id.zonalRedundancy
    )
      continue;
    if (p.project === id.project) own ??= p;
    else if (p.project === undefined) all ??= p;
  }
  return {
    quota: own?.quota ?? all?.quota ?? null,
    reserve: own?.reserve ?? all?.reserve ?? policy.reserve,
  };
}

/** The quota the policy sets for a pool, or null when it is to be read from Cloud Quotas. */
export function quotaFromPolicy(policy: PoolPolicy, id: PoolId): number | null {
  return poolSettings(policy, id).quota;
}

/** GPUs the policy keeps free in a pool. */
export function reserveOf(policy: PoolPolicy, id: PoolId): number {
  return poolSettings(policy, id).reserve;
}

/**
 * The pools the policy's `pools` entries name with a setting (quota or reserve), one per project
 * an entry covers: planned even where no service was seen, so their quota shows in the plan.
 */
export function policyPools(policy: {
  pools: readonly PoolEntry[];
  projects: readonly string[];
}): PoolId[] {
  const out: PoolId[] = [];
  for (const p of policy.pools) {
    if (p.quota === undefined && p.reserve === undefined) continue;
    for (const project of p.project ? [p.project] : policy.projects)
      out.push(entryPool(p, project));
  }
  return out;
}

/** The pool a policy's `pools` entry names in `project` (the default accelerator when it names none). */
export function entryPool(p: PoolEntry, project: string): PoolId {
  return {
    project,
    region: p.region,
    accelerator: p.accelerator ?? DEFAULT_ACCELERATOR,
    zonalRedundancy: p.zonalRedundancy,
  };
}

// --- budget ---

interface BudgetInput {
  /** GPUs; null when unknown. */
  quota: number | null;
  reserve: number;
  /** Caps (max instances × GPUs) of the pool's unmanaged services. */
  unmanagedCapsGpus: number;
  /** GPUs held outside any service's cap: worker pools, manually scaled services, jobs. */
  otherUsageGpus: number;
}

/**
 * What the governed services of a pool may hold together: quota − reserve − unmanaged caps −
 * other unmanaged usage. Null when the quota is unknown (fail static: nothing is raised).
 */
export function poolBudget(b: BudgetInput): number | null {
  return b.quota === null ? null : b.quota - b.reserve - b.unmanagedCapsGpus - b.otherUsageGpus;
}

// --- the cap in force ---

/**
 * The most GPUs a pool's quota may have, whether the policy gives it, Cloud Quotas answers it or a snapshot
 * holds it. `fill` and `cut` (core/allocate.ts) move instances in bulk, whatever the quota, but the
 * planner's demand step still places a pool's GPUs one instance at a time, each where it is
 * likeliest used (core/planner.ts, `fillByLikelihood`): services wanting a quota in the billions
 * would keep a run planning for hours, its lease held. (1,000 services over 10 pools of 1,000,000
 * GPUs whose peaks want them all take about 2.5 s to plan.)
 */
export const MAX_QUOTA_GPUS = 1_000_000;

/**
 * The max instances the proto documents when neither the service nor its revision sets one
 * (`RevisionScaling.max_instance_count`: "a default value of 100"). Google's current "About
 * maximum instances" page says instead that an unset maximum is derived from the regional CPU,
 * memory and GPU quotas (https://cloud.google.com/run/docs/configuring/max-instances-limits): for
 * a GPU service that is quota ÷ GPUs per instance (`unsetMaxFor`). 100 is used only when that quota is
 * unknown; the audit tells the team to set a max either way.
 */
export const DEFAULT_MAX_INSTANCES = 100;

/** A pool in words: "us-central1 nvidia-l4", and " (no zonal redundancy)" for that pool. */
export function poolWords(p: Pick<PoolId, 'region' | 'accelerator' | 'zonalRedundancy'>): string {
  return `${p.region} ${p.accelerator}${p.zonalRedundancy ? '' : ' (no zonal redundancy)'}`;
}

/**
 * The most max instances Cloud Run accepts for a service of `gpusPerInstance` GPUs in a pool of
 * `quota` GPUs: it refuses one whose GPUs exceed the quota ("Max instances must be set to N or
 * fewer ... Quota violated"), and derives an unset max from the same quota.
 */
export function quotaInstances(quota: number, gpusPerInstance: number): number {
  return Math.floor(quota / Math.max(1, gpusPerInstance));
}

/** What Cloud Run allows a GPU service that sets no max: as many instances as its pool's quota. */
export function unsetMaxFor(quota: number | null, gpusPerInstance: number): number {
  return quota === null ? DEFAULT_MAX_INSTANCES : quotaInstances(quota, gpusPerInstance);
}

/** A serving revision's own max: null when unset, absent while unread. */
interface ServingMax {
  maxInstances?: number | null | undefined;
  /**
   * It takes a share of the traffic; false: only tagged, counted apart as unmanaged usage of its
   * pool (`countedRevisions`, revision-pools.ts). Absent: true.
   */
  inSplit?: boolean | undefined;
}

interface MaxLevels {
  /** Service-level `scaling.max_instance_count`; null (or 0) when unset. */
  serviceMaxInstances: number | null;
  /** The serving revision's `scaling.max_instance_count`; null (or 0) when unset. */
  revisionMaxInstances: number | null;
  /**
   * False when `revisionMaxInstances` (read from the service's template, the latest revision) is
   * not known to be the max of the revision(s) serving: traffic pinned on another revision, or
   * the latest revision not ready. It then bounds nothing here, and the service's instances are
   * held by its service-level max alone. Absent: true.
   */
  templateServes?: boolean | undefined;
  /**
   * With `templateServes: false`: the revisions that can hold instances, with their own max once
   * read; beside a template that serves, the revisions only tagged, which no cap here counts.
   */
  servingRevisions?: readonly ServingMax[] | undefined;
  /** Why they could not be read. */
  revisionsUnread?: string | undefined;
  /**
   * The max Cloud Run derives when neither level sets one (`unsetMaxFor`), once the pool's quota
   * is known; absent: {@link DEFAULT_MAX_INSTANCES}.
   */
  unsetMax?: number | undefined;
}

export interface MaxInForce {
  max: number;
  /**
   * Which level sets it: the lower of the two, Cloud Run's default when neither is set, or
   * (`revisions`) the sum of the own max of the revisions in the traffic split when the template
   * does not serve.
   */
  level: 'service' | 'revision' | 'revisions' | 'default';
}

/**
 * The max in force and where it comes from. When the template does not serve
 * (`templateServes: false`), the service-level max when set; else, once every revision that can
 * hold instances was read (`servingRevisions`), the sum of the own max of those in the traffic
 * split (`splitRevisions`; one only tagged is counted apart), each revision scaling
 * up to its own `scaling.max_instance_count` (RevisionScaling, google/cloud/run/v2/vendor_settings.proto;
 * "Revision-level: upon deployment of the revision", https://cloud.google.com/run/docs/configuring/max-instances),
 * a revision without one at the unset max; else (unread) the unset max, as for a service that
 * sets none.
 */
export function maxInForce(s: MaxLevels): MaxInForce {
  const svc = positive(s.serviceMaxInstances);
  const rev = revisionBound(s);
  if (svc !== null && (rev === null || svc <= rev)) return { max: svc, level: 'service' };
  if (rev !== null) return { max: rev, level: 'revision' };
  const unset = s.unsetMax ?? DEFAULT_MAX_INSTANCES;
  const serving = s.templateServes === false ? splitRevisions(s) : null;
  if (serving !== null) {
    const sum = serving.reduce((n, r) => n + (positive(r.maxInstances ?? null) ?? unset), 0);
    return { max: Math.min(sum, MAX_QUOTA_GPUS), level: 'revisions' };
  }
  return { max: unset, level: 'default' };
}

/**
 * The serving revision's own max when it is known to serve (`templateServes`) and sets one: the
 * cap in force is never above it, whatever the service-level max ("Revision-level" and
 * "Service-level" in https://cloud.google.com/run/docs/configuring/max-instances: the lower
 * applies), and only a deploy changes it, so no service-level max the governor writes can raise
 * the cap past it. Null otherwise.
 */
export function revisionBound(s: MaxLevels): number | null {
  return s.templateServes === false ? null : positive(s.revisionMaxInstances);
}

/** {@link revisionBound} as the snapshot's (and a fleet's) `revisionMaxInstances` field, absent when null. */
export function revisionMaxOf(s: MaxLevels): { revisionMaxInstances?: number } {
  const max = revisionBound(s);
  return max === null ? {} : { revisionMaxInstances: max };
}

/**
 * The serving revisions in the traffic split when every serving revision was read (a tagged one
 * too: one unread leaves the service counted at the unset max), else null. A revision only tagged
 * is not among them: its instances are not the service's to bound ("Tagged revisions are started,
 * but only count toward the service-level maximum instances if they are a part of a traffic
 * split", https://cloud.google.com/run/docs/configuring/max-instances) and it is counted apart,
 * at its own max in its own pool (`countedRevisions`, revision-pools.ts), never twice.
 */
export function splitRevisions<R extends ServingMax>(s: {
  revisionsUnread?: string | undefined;
  servingRevisions?: readonly R[] | undefined;
}): readonly R[] | null {
  const revisions = s.servingRevisions ?? [];
  if (s.revisionsUnread !== undefined) return null;
  if (!revisions.every((r) => r.maxInstances !== undefined)) return null;
  const split = revisions.filter((r) => r.inSplit !== false);
  return split.length > 0 ? split : null;
}

/** The lower of the service-level and revision-level max; Cloud Run's default when neither is set. */
export function effectiveMax(s: MaxLevels): number {
  return maxInForce(s).max;
}

function positive(n: number | null): number | null {
  return n !== null && n > 0 ? n : null;
}
