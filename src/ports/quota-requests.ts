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
  /** Absent: its values were read (see {@link UnreadablePreference}). */
  unreadable?: undefined;
}

/**
 * A listed preference of one of the governor's GPU quotas whose values it cannot take as GPU
 * counts (a granted value of -1, Google's "unlimited", or beyond 2^53; a malformed name). It is
 * listed, not dropped, so that nothing is filed beside it for its quota and region; its values
 * are never used.
 */
export interface UnreadablePreference {
  name: string;
  quotaId: string;
  region: string | null;
  /** Why, naming the preference and the value. */
  unreadable: string;
}

/** A preference as a listing gives it: read, or named as unreadable. */
export type ListedPreference = QuotaPreferenceView | UnreadablePreference;

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
  /**
   * The project's quota preferences of `run.googleapis.com` for a GPU quota (all pages); those of
   * other quotas are left out, unread. One whose values cannot be read is listed as
   * {@link UnreadablePreference}: it never makes the whole listing fail.
   */
  listPreferences(project: string): Promise<ListedPreference[]>;
  getPreference(name: string): Promise<QuotaPreferenceView>;
  /**
   * Files a new preference. ConflictError when one exists for the same quota and region, or
   * with the same id (someone filed first).
   */
  createPreference(input: NewQuotaPreference): Promise<QuotaPreferenceView>;
  /** Changes a preference's value; ConflictError when its etag no longer matches. */
  updatePreference(input: QuotaPreferenceChange): Promise<QuotaPreferenceView>;
}
