import picomatch from 'picomatch';
import { z } from 'zod';
import { Duration } from './duration.js';
import { compareText } from './pool.js';
import { LabelsToMatch, REGION_NAME } from './units.js';

/**
 * Organisation scale, part one: which projects the governor governs when the policy names an
 * organisation or folders instead of (or beside) a list of projects.
 *
 * Projects are found with Cloud Asset Inventory `SearchAllResources` in each scope, over the
 * asset types of Cloud Run services and worker pools. Sources:
 * - request fields (scope, asset_types, page_size capped at 500, page_token) and the result's
 *   fields: the `google/cloud/asset/v1/asset_service.proto` and `assets.proto` of
 *   @google-cloud/asset, and
 *   https://cloud.google.com/asset-inventory/docs/reference/rest/v1/TopLevel/searchAllResources
 * - asset type names `run.googleapis.com/Service` and `run.googleapis.com/WorkerPool`:
 *   https://cloud.google.com/asset-inventory/docs/asset-types
 * - permission `cloudasset.assets.searchAllResources` on the scope (organisation or folder):
 *   https://cloud.google.com/asset-inventory/docs/access-control#required_permissions
 * - quota: 400 SearchAllResources requests per minute per consumer project, 1,500 per minute
 *   per organisation: https://cloud.google.com/asset-inventory/docs/quota
 *
 * A result's `project` field is the project NUMBER (`projects/{PROJECT_NUMBER}`); the project id
 * the rest of the governor uses (Cloud Run, Monitoring, the state store) is read from the
 * resource's full name, `//run.googleapis.com/projects/{PROJECT}/locations/{LOCATION}/...`
 * (https://cloud.google.com/asset-inventory/docs/resource-name-format). Google does not promise
 * that segment is the id rather than the number: a numeric one (a project id never is all digits:
 * https://cloud.google.com/resource-manager/docs/creating-managing-projects) is reported and
 * skipped, never guessed.
 *
 * This file is pure: the search itself is a port (src/ports/discovery.ts).
 */

export const RUN_ASSET_TYPES = ['run.googleapis.com/Service', 'run.googleapis.com/WorkerPool'];

/** Google's cap on `page_size` (asset_service.proto: "capped at 500 even if a larger value"). */
export const MAX_SEARCH_PAGE_SIZE = 500;

const OrganizationId = z
  .string()
  .regex(/^[1-9]\d{0,24}$/, 'expected an organization number such as "123456789012"');
const FolderId = z.string().regex(/^[1-9]\d{0,24}$/, 'expected a folder number such as "1234567"');
const ProjectGlob = z.string().min(1).max(100);

export const Discovery = z
  .strictObject({
    organization: OrganizationId.optional().describe(
      'Organization number: every project of the organisation with Cloud Run services or worker pools.',
    ),
    folders: z
      .array(FolderId)
      .min(1)
      .max(100)
      .optional()
      .describe('Folder numbers: every project under these folders (nested folders included).'),
    include: z
      .array(ProjectGlob)
      .min(
        1,
        'an empty include keeps no project found, so nothing would be governed: leave it out to keep every project',
      )
      .max(100)
      .optional()
      .describe('Globs on project ids; absent: every project found.'),
    exclude: z
      .array(ProjectGlob)
      .max(100)
      .default([])
      .describe('Globs on project ids never governed, even when included.'),
    labels: LabelsToMatch.optional().describe(
      'A project is kept when one of its Cloud Run services or worker pools has all these labels.',
    ),
    cacheTtl: Duration.default('1h').describe(
      'How long the projects found are reused before searching again.',
    ),
  })
  .describe(
    'Find projects with Cloud Asset Inventory in an organisation or folders (docs/organization.md).',
  );
export type Discovery = z.infer<typeof Discovery>;

/** The scopes to search, in a stable order: the organisation first, then the folders. */
export function discoveryScopes(d: Discovery): string[] {
  const scopes: string[] = [];
  if (d.organization) scopes.push(`organizations/${d.organization}`);
  for (const f of [...new Set(d.folders ?? [])].sort()) scopes.push(`folders/${f}`);
  return scopes;
}

/** One resource a search found (the fields of ResourceSearchResult the governor reads). */
export interface FoundResource {
  /** Full resource name, `//run.googleapis.com/projects/P/locations/R/services/S`. */
  name: string;
  assetType: string;
  labels: Record<string, string>;
  /**
   * The result's `location` (ResourceSearchResult field 6: "Location can be `global`, regional
   * like `us-east1`, or zonal like `us-west1-b`. This field is available only when the resource's
   * Protobuf contains it": google/cloud/asset/v1/assets.proto of @google-cloud/asset;
   * https://cloud.google.com/asset-inventory/docs/reference/rest/v1/TopLevel/searchAllResources#resourcesearchresult).
   * Empty or absent when Google left it out.
   */
  location?: string;
}

interface DiscoveryResult {
  /** Project ids to govern, sorted. */
  projects: string[];
  /** Resources that could not be attributed to a project id, or of a type not asked for, one line each. */
  skipped: string[];
  /**
   * Cloud Run services (not worker pools) found per kept project and region, for
   * `fanout.splitAbove`. A service whose region is unknown (no location, or one that disagrees
   * with its name) is not counted in any region.
   */
  services: Record<string, Record<string, number>>;
}

const RUN_NAME =
  /^\/\/run\.googleapis\.com\/projects\/([^/]+)\/locations\/([^/]+)\/(services|workerPools)\/[^/]+$/;
const PROJECT_ID = /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/;

/** The projects to govern from what the searches found, the policy's own projects and filters. */
export function selectProjects(
  found: readonly FoundResource[],
  d: Discovery,
  listed: readonly string[] = [],
): DiscoveryResult {
  const include = d.include?.map((g) => picomatch(g)) ?? null;
  const exclude = d.exclude.map((g) => picomatch(g));
  const wanted = Object.entries(d.labels ?? {});
  const projects = new Set<string>();
  const counts = new Map<string, Map<string, number>>();
  const skipped: string[] = [];
  // A resource is counted once by its full name: an organisation and one of its folders (both
  // may be given) return the same resources, as do two nested folders.
  const seen = new Set<string>();
  for (const r of found) {
    // Only these were asked for: another type is not a Cloud Run service or worker pool the
    // governor can cap, so it finds no project; said so, as Google answered what was not asked.
    if (!RUN_ASSET_TYPES.includes(r.assetType)) {
      skipped.push(
        `${r.name.slice(0, 200)}: asset type ${JSON.stringify(r.assetType.slice(0, 100))} was not asked for`,
      );
      continue;
    }
    if (seen.has(r.name)) continue;
    seen.add(r.name);
    const m = RUN_NAME.exec(r.name);
    const project = m?.[1];
    if (!project || !PROJECT_ID.test(project)) {
      skipped.push(`${r.name.slice(0, 200)}: no project id in the resource name`);
      continue;
    }
    // Every service is counted, whatever its labels: they choose projects, not services, and a
    // kept project's run governs all of them (fanout.splitAbove weighs the run).
    const region = regionOf(r, m?.[2]);
    if (r.assetType === RUN_ASSET_TYPES[0] && region !== null) {
      const byRegion = counts.get(project) ?? new Map<string, number>();
      byRegion.set(region, (byRegion.get(region) ?? 0) + 1);
      counts.set(project, byRegion);
    }
    if (wanted.every(([k, v]) => r.labels[k] === v)) projects.add(project);
  }
  const kept = [...projects].filter(
    (p) => (include === null || include.some((m) => m(p))) && !exclude.some((m) => m(p)),
  );
  const services: Record<string, Record<string, number>> = {};
  for (const p of kept.sort()) {
    const byRegion = counts.get(p);
    if (byRegion)
      services[p] = Object.fromEntries([...byRegion].sort(([a], [b]) => compareText(a, b)));
  }
  // The policy's own list is always governed, whatever the filters (they apply to what is found).
  return { projects: [...new Set([...kept, ...listed])].sort(), skipped, services };
}

/**
 * A service's region: its `location` when it is a region name and agrees with the location in
 * its full name (`.../locations/{LOCATION}/...`), else that segment when Google left `location`
 * out; null when neither is a region, or they disagree (not counted: never guessed).
 */
function regionOf(r: FoundResource, fromName: string | undefined): string | null {
  const location = r.location ?? '';
  const named = fromName !== undefined && REGION_NAME.test(fromName) ? fromName : null;
  if (location === '') return named;
  return REGION_NAME.test(location) && (named === null || named === location) ? location : null;
}

/**
 * The most projects a kept discovery holds (see {@link DiscoveryCache}'s `projects`). One search
 * reads up to 200,000 resources a scope, so more can be found; the bound stays, as a version
 * running beside this one during a deploy or a rollback reads the same kept result with it.
 */
export const MAX_DISCOVERED_PROJECTS = 100_000;

/** The longest cache key kept (see {@link DiscoveryCache}'s `key`). */
const MAX_DISCOVERY_KEY = 200_000;

/**
 * How the kept `services` were counted: 2 counts every service of a kept project once, whatever
 * its labels and however many scopes found it. Caches of earlier versions carry none: they
 * counted only the labelled services, each once per scope that found it, so their counts are
 * not reused (see {@link cacheFresh}). Raise it whenever the counting changes.
 */
export const SERVICE_COUNTING = 2;

/** What the state store keeps between runs: the projects found, when, and for which search. */
export const DiscoveryCache = z.strictObject({
  /**
   * The scopes and filters the projects were found with (a changed policy searches again). Its
   * bound holds the longest a valid policy makes, about 135,000 characters (100 folders, 100
   * include and 100 exclude globs of 100 characters, each escaped in JSON, and 64 labels); at
   * 10,000, a policy with long globs could never keep what it found, and every dispatch failed.
   */
  key: z.string().min(1).max(MAX_DISCOVERY_KEY),
  foundAt: z.iso.datetime({ offset: true }),
  projects: z.array(z.string().regex(PROJECT_ID)).max(MAX_DISCOVERED_PROJECTS),
  /**
   * Cloud Run services found per project and region (`fanout.splitAbove`). Absent in caches of
   * earlier versions, which carry no `counting` either, so they are searched again.
   */
  services: z
    .record(
      z.string().regex(PROJECT_ID),
      z.record(z.string().regex(REGION_NAME), z.number().int().min(1).max(1_000_000)),
    )
    .optional(),
  /** {@link SERVICE_COUNTING} of the version that searched; absent in earlier versions' caches. */
  counting: z.number().int().min(1).max(1_000_000).optional(),
});
export type DiscoveryCache = z.infer<typeof DiscoveryCache>;

/** The cache key of a discovery setting: what, if changed, makes the cached projects stale. */
export function discoveryKey(d: Discovery): string {
  return JSON.stringify({
    scopes: discoveryScopes(d),
    include: d.include ?? null,
    exclude: d.exclude,
    labels: Object.entries(d.labels ?? {}).sort(([a], [b]) => compareText(a, b)),
  });
}

/** True when the cached projects may be reused at `nowMs`. */
export function cacheFresh(
  cache: DiscoveryCache | null,
  key: string,
  ttlMs: number,
  nowMs: number,
): boolean {
  if (!cache || cache.key !== key) return false;
  // Counted by other rules (an earlier version's, or a later one's beside it during a deploy):
  // searched again rather than split by those counts until the TTL. Still the kept result when
  // the search fails (org/discover.ts): its projects were found with the same settings.
  if (cache.counting !== SERVICE_COUNTING) return false;
  const age = nowMs - Date.parse(cache.foundAt);
  // A cache from the future (a clock went back) is not trusted.
  return age >= 0 && age < ttlMs;
}
