/**
 * The asset search, and its one Google implementation: Cloud Asset Inventory v1
 * `SearchAllResources` over the asset types of Cloud Run services and worker pools, every page
 * read (page_size at Google's cap of 500, page_token as Google returned it; the pages bounded as
 * every adapter's: paging.ts) and every result checked to lie in the scope asked
 * ({@link outsideScope}). Sources and the permission it needs: src/core/discovery.ts and
 * docs/organization.md.
 *
 * Emulator mode: given `emulatorHost` (GOVERNOR_EMULATOR_HOST), the client connects there.
 */
import { AssetServiceClient } from '@google-cloud/asset';

import { MAX_SEARCH_PAGE_SIZE, RUN_ASSET_TYPES, type FoundResource } from '../core/discovery.js';
import type { AssetSearchPort } from '../ports/index.js';
import { clientConfig, closeClients } from './client-config.js';
import { cutText, UpstreamError } from '../core/errors.js';
import { allPages } from './paging.js';
import { closingRetries, defaultRetryPolicy, gaxReadOptions } from './retry.js';

const SCOPE = /^(organizations|folders)\/[1-9]\d{0,24}$/;

/** Most pages one search reads (500 results each): a bound, far above any real organisation. */
export const MAX_SEARCH_PAGES = 400;

/**
 * Where a result lies, when not in `scope`: "The search is limited to the resources within the
 * `scope`" (SearchAllResourcesRequest.scope), and a result's `organization` is "the organization
 * that this resource belongs to", `folders` "the folder(s) that this resource belongs to", each
 * documented as what a search with that scope matches ("Specify the `scope` field as this
 * organization [folder] in your search request"): ResourceSearchResult in
 * google/cloud/asset/v1/assets.proto of @google-cloud/asset and
 * https://cloud.google.com/asset-inventory/docs/reference/rest/v1/TopLevel/searchAllResources#resourcesearchresult.
 * So a result of an organisation search carries that organisation, and one of a folder search that
 * folder among its folders (every folder above the resource: a folder search finds the nested
 * folders' resources too). Anything else, an absent field included, is outside the scope asked:
 * never governed (the project may be another organisation's).
 */
function outsideScope(
  scope: string,
  organization: string,
  folders: readonly string[],
): string | null {
  if (scope.startsWith('organizations/'))
    return organization === scope ? null : organization || 'no organization';
  return folders.includes(scope) ? null : folders.join(', ') || 'no folder';
}

export function createAssetSearchAdapter(options: {
  emulatorHost?: string | null;
}): AssetSearchPort {
  const client = new AssetServiceClient(clientConfig(options).options);
  const retries = closingRetries(defaultRetryPolicy);
  return {
    async searchRunResources(scope) {
      if (!SCOPE.test(scope)) {
        throw new RangeError(
          `scope must be organizations/N or folders/N, not ${JSON.stringify(scope)}`,
        );
      }
      const what = `searching ${scope} for Cloud Run resources (SearchAllResources)`;
      // autoPaginate off: one request per page, each with the read retries of every adapter.
      const results = await allPages(
        (pageToken) =>
          retries.retry(() =>
            client.searchAllResources(
              { scope, assetTypes: RUN_ASSET_TYPES, pageSize: MAX_SEARCH_PAGE_SIZE, pageToken },
              { ...gaxReadOptions(defaultRetryPolicy), autoPaginate: false },
            ),
          ),
        what,
        MAX_SEARCH_PAGES,
      );
      return results.map((r): FoundResource => {
        const name = r.name ?? '';
        const outside = outsideScope(scope, r.organization ?? '', r.folders ?? []);
        if (outside !== null)
          throw new UpstreamError(
            `${what}: ${cutText(name, 200)} belongs to ${cutText(outside, 200)}, not to ${scope}: an answer outside the scope asked is not used`,
          );
        return {
          name,
          assetType: r.assetType ?? '',
          labels: { ...(r.labels ?? {}) },
          location: r.location ?? '',
        };
      });
    },
    // Its operations client's channel too, opened as it was built (client-config.ts closeClients).
    close: () => {
      retries.close();
      return closeClients([client]);
    },
  };
}
