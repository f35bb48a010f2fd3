/**
 * The governor's own annotations on a service: its per-service state, so the function is
 * stateless. Only these keys are ever written; labels and the revision template never are.
 */
export const ANNOTATION_PREFIX = 'gpu-governor.dev/';
export const ANNOTATIONS = {
  /** ISO time of the governor's last raise of the cap (starts the scale-down delay). */
  lastChanged: `${ANNOTATION_PREFIX}last-changed`,
  /** The service-level max before the governor first changed it ("" when it was unset). */
  originalMax: `${ANNOTATION_PREFIX}original-max`,
  /** The reason of the governor's last write, cut to a readable length. */
  reason: `${ANNOTATION_PREFIX}reason`,
} as const;

/** The governor's last raise, from its annotation; null when absent or not a valid time. */
export function lastChangedAt(annotations: Record<string, string>): string | null {
  const text = annotations[ANNOTATIONS.lastChanged];
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}
