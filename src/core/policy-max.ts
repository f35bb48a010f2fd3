/*
 * A policy's max for one service, read from the rule and window a plan row names. Its own module,
 * importing nothing: the quota pressure reads it, and policy.ts imports the quota requests, which
 * import the pressure.
 */

/** What of a policy {@link policyMax} reads: the maxes of its defaults, rules and their windows. */
export interface PolicyMaxes {
  defaults: { max?: number | undefined };
  services: readonly {
    max?: number | undefined;
    schedule: readonly { max?: number | undefined }[];
  }[];
}

/**
 * The max instances the policy sets for a service that matched rule `rule` (null: none) with its
 * schedule window `window` in force (null: none): the window's, else the rule's, else the
 * defaults'; null where none sets one. The one reading of it, for the rules and for a plan's
 * rows (which carry the rule and window indexes).
 */
export function policyMax(
  policy: PolicyMaxes,
  rule: number | null,
  window: number | null,
): number | null {
  const r = rule === null ? undefined : policy.services[rule];
  const w = r && window !== null ? r.schedule[window] : undefined;
  return w?.max ?? r?.max ?? policy.defaults.max ?? null;
}
