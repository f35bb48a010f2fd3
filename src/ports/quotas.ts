/** Cloud Quotas v1: each pool's GPU quota. */

export interface QuotaQuery {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}

/** Cloud Quotas v1. */
export interface QuotaPort {
  /**
   * The GPU quota of one pool: the dimension entry whose region matches, else the regionless
   * entry; null when the quota info has neither. Throws when it could not be read.
   */
  gpuQuota(query: QuotaQuery): Promise<number | null>;
  /**
   * Forgets what earlier reads cached. An adapter may cache within one observation (several pools
   * share a quota id); observe() calls this first so that no run sees an older run's quota.
   */
  clearCache?(): void;
}
