/**
 * The asset search, and its one Google implementation: Cloud Asset Inventory v1
 * `SearchAllResources` over the asset types of Cloud Run services and worker pools, every page
 * read (page_size at Google's cap of 500, page_token as Google returned it). Sources and the
 * permission it needs: src/core/discovery.ts and docs/organization.md.
 *
 * Emulator mode: given `emulatorHost` (GOVERNOR_EMULATOR_HOST), the client connects there.
 */
import { AssetServiceClient } from '@google-cloud/asset';

import { MAX_SEARCH_PAGE_SIZE, RUN_ASSET_TYPES, type FoundResource } from '../core/discovery.js';
import type { AssetSearchPort } from '../ports/index.js';
import { clientConfig, closeClients } from './client-config.js';
import { translateGrpcError } from './grpc-errors.js';
import { defaultRetryPolicy, gaxReadOptions, withRetryInfo } from './retry.js';

const SCOPE = /^(organizations|folders)\/[1-9]\d{0,24}$/;

/** Most pages one search reads (500 results each): a bound, far above any real organisation. */
export const MAX_SEARCH_PAGES = 400;

export function createAssetSearchAdapter(options: {
  emulatorHost?: string | null;
}): AssetSearchPort {
  const client = new AssetServiceClient(clientConfig(options).options);
  return {
    async searchRunResources(scope) {
      if (!SCOPE.test(scope)) {
        throw new RangeError(
          `scope must be organizations/N or folders/N, not ${JSON.stringify(scope)}`,
        );
      }
      const found: FoundResource[] = [];
      let pageToken = '';
      for (let page = 0; page < MAX_SEARCH_PAGES; page++) {
        let response;
        try {
          // autoPaginate off: one request per page, each with the read retries of every adapter.
          [, , response] = await withRetryInfo(defaultRetryPolicy, () =>
            client.searchAllResources(
              { scope, assetTypes: RUN_ASSET_TYPES, pageSize: MAX_SEARCH_PAGE_SIZE, pageToken },
              { ...gaxReadOptions(defaultRetryPolicy), autoPaginate: false },
            ),
          );
        } catch (error) {
          throw translateGrpcError(
            error,
            `searching ${scope} for Cloud Run resources (SearchAllResources)`,
          );
        }
        for (const r of response?.results ?? []) {
          found.push({
            name: r.name ?? '',
            assetType: r.assetType ?? '',
            labels: { ...(r.labels ?? {}) },
            location: r.location ?? '',
          });
        }
        pageToken = response?.nextPageToken ?? '';
        if (pageToken === '') return found;
      }
      throw new RangeError(
        `searching ${scope}: more than ${MAX_SEARCH_PAGES} pages of Cloud Run resources; narrow the scope with folders`,
      );
    },
    // Its operations client's channel too, opened as it was built (client-config.ts closeClients).
    close: () => closeClients([client]),
  };
}
