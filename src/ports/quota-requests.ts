import type { SeenPreference } from '../core/quota-requests.js';

/**
 * Cloud Quotas v1 quota preferences: how the governor asks Google for more GPU quota
 * (docs/quota-requests.md). Only `run.googleapis.com` quotas of a project, one region each.
 */

/** A quota preference as the governor reads it: what a run settles requests against, and more. */
export interface QuotaPreferenceView extends SeenPreference {
  stateDetail: string;
  /** Google's trace id of an increase request (empty for decreases). */
  traceId: string;
  etag: string;
  justification: string;
}

export interface NewQuotaPreference {
  project: string;
  /** The preference id (unique under the project). */
  id: string;
  quotaId: string;
  region: string;
  preferredValue: number;
  justification: string;
  contactEmail: string;
}

export interface QuotaPreferenceChange {
  name: string;
  /** The etag read: the update is refused (ConflictError) when the preference changed since. */
  etag: string;
  preferredValue: number;
  justification: string;
  contactEmail: string;
}

export interface QuotaRequestPort {
  /** The Cloud Quotas id of a GPU pool's quota (the one GetQuotaInfo reads). */
  quotaIdOf(accelerator: string, zonalRedundancy: boolean): string;
  /** Every quota preference of `run.googleapis.com` in the project (all pages). */
  listPreferences(project: string): Promise<QuotaPreferenceView[]>;
  getPreference(name: string): Promise<QuotaPreferenceView>;
  /**
   * Files a new preference. ConflictError when one exists for the same quota and region, or
   * with the same id (someone filed first).
   */
  createPreference(input: NewQuotaPreference): Promise<QuotaPreferenceView>;
  /** Changes a preference's value; ConflictError when its etag no longer matches. */
  updatePreference(input: QuotaPreferenceChange): Promise<QuotaPreferenceView>;
}
