import { z } from 'zod';

/**
 * The policy's `quotaRequests` section: whether the governor may ask Google for more quota where
 * a pool is under sustained pressure (src/core/quota-pressure.ts), by how much, and who Google
 * contacts. Off unless the policy turns it on.
 *
 * Google requires a contact email for an increase and accepts none for nothing else it needs:
 * `QuotaPreference.contact_email` "When requesting a quota increase, the email address is
 * required" (google/api/cloudquotas/v1/resources.proto, and
 * https://cloud.google.com/docs/quotas/reference/rest/v1/folders.locations.quotaPreferences).
 */

/** Characters a justification may not hold: control characters other than none at all. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export const QuotaRequestsSettings = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'true: file a quota increase request (QuotaPreference) for a pool under sustained pressure.',
      ),
    maxIncrease: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(4)
      .describe('Most GPUs one request asks above the current quota (default 4).'),
    justification: z
      .string()
      .trim()
      .min(1)
      .max(500)
      .refine((s) => !CONTROL.test(s), 'must be one line of text without control characters')
      .optional()
      .describe("Opening words of every request's justification; the evidence follows."),
    contactEmail: z
      .email('expected an email address such as "gpu-team@example.com"')
      .max(254)
      .optional()
      .describe('Whom Google contacts about a request; required when enabled.'),
  })
  .describe('Quota increase requests to the Cloud Quotas API: docs/quota-requests.md.');
export type QuotaRequestsSettings = z.infer<typeof QuotaRequestsSettings>;

/** Faults of the section that span fields, on the raw document (see policy.ts `crossCheck`). */
export function checkQuotaRequests(raw: unknown): { path: string; message: string }[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return [];
  const r = raw as Record<string, unknown>;
  if (r.enabled === true && (r.contactEmail === undefined || r.contactEmail === '')) {
    return [
      {
        path: 'quotaRequests.contactEmail',
        message:
          'required when quotaRequests.enabled is true: Google requires a contact email for a quota increase',
      },
    ];
  }
  return [];
}
