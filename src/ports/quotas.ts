/** Cloud Quotas v1: each pool's GPU quota. */

export interface QuotaQuery {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}

/** Whether a higher value of a quota may be requested, and why not. */
export type IncreaseEligibility = { eligible: true } | { eligible: false; reason: string };

/** Cloud Quotas v1. */
export interface QuotaPort {
  /**
   * The GPU quota of one pool: the dimension entry whose region matches, else the regionless
   * entry; null when the quota info has neither. Throws when it could not be read.
   */
  gpuQuota(query: QuotaQuery): Promise<number | null>;
  /**
   * Whether Google lets a higher value of the pool's quota be requested
   * (QuotaInfo.quota_increase_eligibility), and why not. An answer without it is taken as
   * eligible. Throws when the quota info could not be read. Absent: not known (a source with no
   * such notion), and requests are filed as before.
   */
  increaseEligibility?(query: QuotaQuery): Promise<IncreaseEligibility>;
  /**
   * Forgets what earlier reads cached. An adapter may cache within one observation (several pools
   * share a quota id); observe() calls this first so that no run sees an older run's quota.
   */
  clearCache?(): void;
}
