import type { DiscoveryCache, FoundResource } from '../core/discovery.js';

/**
 * Organisation scale: finding projects (Cloud Asset Inventory) and remembering what was found
 * between runs (the state store). See src/core/discovery.ts for the Google facts and sources.
 */
export type { DiscoveryCache, FoundResource };

export interface AssetSearchPort {
  /**
   * Every Cloud Run service and worker pool in `scope` (`organizations/N` or `folders/N`), all
   * pages read. Throws PermissionError without `cloudasset.assets.searchAllResources` on the
   * scope, InputError-like UpstreamError for a scope Google rejects.
   */
  searchRunResources(scope: string): Promise<FoundResource[]>;
  close(): Promise<void>;
}

/** The state store's one store-wide document for discovery (beside the per-project ones). */
export interface DiscoveryCacheStore {
  /** The projects last found; null when none were saved. Parsed: stored data is not trusted. */
  loadDiscovery(): Promise<DiscoveryCache | null>;
  /** Replaces them (last writer wins: two dispatches find the same projects). */
  saveDiscovery(cache: DiscoveryCache): Promise<void>;
}

/** The fan-out's work topic. */
export interface WorkPublisher {
  readonly topic: string;
  /**
   * Publishes each message (JSON data, attributes); settles every one. The answer lists what
   * could not be published, by the message's index, with one line on why.
   */
  publish(
    messages: readonly { data: string; attributes: Record<string, string> }[],
  ): Promise<{ failed: { index: number; error: string }[] }>;
  close(): Promise<void>;
}
