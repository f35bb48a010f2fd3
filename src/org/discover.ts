import {
  cacheFresh,
  discoveryKey,
  MAX_DISCOVERED_PROJECTS,
  SERVICE_COUNTING,
  discoveryScopes,
  selectProjects,
  type DiscoveryCache,
  type FoundResource,
} from '../core/discovery.js';
import { durationMs } from '../core/duration.js';
import { listOnOneLine, oneLine, plural, someOf } from '../core/text.js';
import type { Policy } from '../core/policy.js';
import { ERROR_EVENT, type Logger } from '../log.js';
import {
  StateCorruptError,
  type AssetSearchPort,
  type DiscoveryCacheStore,
} from '../ports/index.js';
import { errorMessage, GovernorError } from '../core/errors.js';
import { beforeDeadline } from '../reconcile/act.js';

/**
 * The projects a policy governs: its `projects`, plus (with `discovery`) every project Cloud
 * Asset Inventory finds in its organisation or folders, filtered (src/core/discovery.ts). What was
 * found is kept in the state store and reused for `discovery.cacheTtl`, so a dispatch every few
 * minutes searches about once an hour. When a search fails and an older result is kept, the
 * older result is used (fail static) and the failure logged; with nothing kept, it throws. A kept
 * result that cannot be read counts as none (readKept).
 */
export interface Discovered {
  projects: string[];
  source: 'policy' | 'cache' | 'search' | 'stale-cache';
  /** Found resources not attributed to a project id. */
  skipped: string[];
  /** Cloud Run services per project and region, as the search counted them (none: absent). */
  services?: Record<string, Record<string, number>>;
}

export async function discoverProjects(
  policy: Policy,
  deps: {
    search: AssetSearchPort | null;
    cache: DiscoveryCacheStore;
    nowMs: number;
    log: Logger;
    /**
     * When the search must have answered, on `clock` (the dispatch's: the time elapsed since
     * the request arrived, which no step of the wall clock moves): past it the search counts as failed,
     * so the kept result is used, as for any failed search, rather than the request being cut
     * off by the function's timeout with nothing sent. Default: no bound.
     */
    searchDeadline?: { deadline: number; clock: () => number };
  },
): Promise<Discovered> {
  const d = policy.discovery;
  if (!d) return { projects: [...policy.projects].sort(), source: 'policy', skipped: [] };
  const key = discoveryKey(d);
  const cached = await readKept(deps.cache, deps.log);
  if (cached && cacheFresh(cached, key, durationMs(d.cacheTtl), deps.nowMs)) {
    return {
      projects: [...new Set([...cached.projects, ...policy.projects])].sort(),
      source: 'cache',
      skipped: [],
      ...(cached.services ? { services: cached.services } : {}),
    };
  }
  try {
    if (!deps.search) throw new Error('no asset search is configured');
    const found: FoundResource[] = [];
    for (const scope of discoveryScopes(d)) {
      // One by one: spread as arguments, the up to 200,000 results of a search (the adapter's
      // MAX_SEARCH_PAGES) overflowed the stack ("Maximum call stack size exceeded").
      const search = deps.search;
      const searched = deps.searchDeadline
        ? await beforeDeadline(
            () => search.searchRunResources(scope),
            deps.searchDeadline,
            `searching ${scope}`,
          )
        : await search.searchRunResources(scope);
      for (const r of searched) found.push(r);
    }
    const result = selectProjects(found, d, []);
    // More than a kept result holds: one line, rather than the schema's list of issues when it
    // is saved. Fail static as for a failed search: the result kept before, if any, is used.
    if (result.projects.length > MAX_DISCOVERED_PROJECTS)
      throw new GovernorError(
        `discovery found ${result.projects.length.toLocaleString('en-US')} projects, more than the ${MAX_DISCOVERED_PROJECTS.toLocaleString('en-US')} a discovery keeps: narrow it (discovery.folders, include, exclude or labels), or split the organisation between policies`,
      );
    await deps.cache.saveDiscovery({
      key,
      foundAt: new Date(deps.nowMs).toISOString(),
      projects: result.projects,
      services: result.services,
      counting: SERVICE_COUNTING,
    });
    for (const line of result.skipped.slice(0, 20)) deps.log.log('WARNING', `discovery: ${line}`);
    // A project the kept result (same settings) had and this search did not find is governed no
    // more: its services keep the caps its last run left, and nothing else would say so. Deleted,
    // relabelled, or missing from the search for a while (Google: "Due to delays in resource data
    // collection and indexing, there is a volatile window during which running the same query may
    // get different results": ListAssetsRequest.read_time in google/cloud/asset/v1/asset_service.proto
    // of @google-cloud/asset, https://cloud.google.com/python/docs/reference/cloudasset/3.14.0/google.cloud.asset_v1.types.ListAssetsRequest;
    // SearchAllResources says nothing of it, so it is taken to hold there too).
    if (cached && cached.key === key) {
      const now = new Set(result.projects);
      const gone = cached.projects.filter((p) => !now.has(p) && !policy.projects.includes(p));
      if (gone.length > 0)
        deps.log.log(
          'WARNING',
          `discovery: ${plural(gone.length, 'project')} found at ${cached.foundAt} no longer found, so no longer governed (their services keep the caps they have): ${someOf(gone, 20)}`,
        );
    }
    return {
      projects: [...new Set([...result.projects, ...policy.projects])].sort(),
      source: 'search',
      skipped: result.skipped,
      services: result.services,
    };
  } catch (e) {
    const why = errorMessage(e);
    if (cached && cached.key === key) {
      // An error event (log.ts ERROR_EVENT), as a dispatch that fails is: a search that fails at
      // every dispatch (its role removed) keeps these projects in use for good and never finds
      // a new one, and the dispatch still answers 200, so no alert on its answers fires.
      deps.log.log(
        'ERROR',
        `discovery failed (${why}); governing the ${cached.projects.length} project(s) found at ${cached.foundAt}`,
        ERROR_EVENT,
      );
      return {
        projects: [...new Set([...cached.projects, ...policy.projects])].sort(),
        source: 'stale-cache',
        skipped: [],
        ...(cached.services ? { services: cached.services } : {}),
      };
    }
    throw e;
  }
}

/**
 * The kept discovery, or null when there is none or it cannot be read (StateCorruptError): it is
 * only a cache of the search, so the dispatch searches again, and the result replaces it. Refused,
 * it failed every dispatch for good until a person removed it. Said in an ERROR line (an error
 * event), since the older result a failed search falls back on is gone with it.
 */
async function readKept(cache: DiscoveryCacheStore, log: Logger): Promise<DiscoveryCache | null> {
  try {
    return await cache.loadDiscovery();
  } catch (e) {
    if (!(e instanceof StateCorruptError)) throw e;
    log.log(
      'ERROR',
      `discovery: the kept discovery cannot be read (${oneLine(listOnOneLine(errorMessage(e)))}); searched again, and the result replaces it`,
      ERROR_EVENT,
    );
    return null;
  }
}
