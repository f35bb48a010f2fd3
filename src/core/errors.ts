/**
 * The project's errors. One base class with a `cause`; each subclass says what kind of failure it
 * is, so callers branch on meaning (bad input, upstream failure) rather than on vendor codes.
 */
export class GovernorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One fault in an input document, located by its path (e.g. `services[0].weight`). */
export interface Fault {
  path: string;
  message: string;
}

/**
 * At most `max` faults, each path and message cut to `width` characters, and one more fault
 * saying how many were left out: what an answer or a log line may carry when the input came from
 * someone else (a request body with two million unknown keys is two million faults).
 */
export function capFaults(faults: readonly Fault[], max = 20, width = 200): Fault[] {
  const kept = faults
    .slice(0, max)
    .map((f) => ({ path: cutText(f.path, width), message: cutText(f.message, width) }));
  const more = faults.length - kept.length;
  if (more > 0)
    kept.push({ path: '', message: `and ${more} more problem${more === 1 ? '' : 's'}` });
  return kept;
}

/** `text` cut to at most `max` characters, with `…` where it was cut. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  // Never between the two halves of a surrogate pair (an emoji): the half left would be no text.
  let end = Math.max(0, Math.floor(max) - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** One fault in words: `path: message`, or the message alone when it has no path. */
export function faultText(fault: Fault): string {
  return fault.path ? `${fault.path}: ${fault.message}` : fault.message;
}

/** The most faults an InputError's message lists (all of them stay in `faults`). */
export const MESSAGE_FAULTS = 100;

/**
 * The user's input (a policy, a snapshot, a flag) is wrong. Exit code 2; nothing is written. The
 * message lists the first {@link MESSAGE_FAULTS} faults, each cut to 300 characters, and how many
 * more there are: a 4 MiB policy of unknown keys is one screen, not a hundred thousand lines.
 */
export class InputError extends GovernorError {
  readonly faults: readonly Fault[];
  constructor(
    /** What is wrong, without the faults: "policy.yaml is not valid YAML". */
    readonly what: string,
    faults: readonly Fault[],
    options?: { cause?: unknown },
  ) {
    const lines = capFaults(faults, MESSAGE_FAULTS, 300).map((f) => `  - ${faultText(f)}`);
    super(faults.length ? `${what}:\n${lines.join('\n')}` : what, options);
    this.faults = faults;
  }
}

/** The command line was used wrongly. Exit code 2. */
export class UsageError extends GovernorError {}

/** An outside system (a Google API, the state store) failed. Exit code 1. */
export class UpstreamError extends GovernorError {}

export function isInputError(e: unknown): e is InputError | UsageError {
  return e instanceof InputError || e instanceof UsageError;
}

/** The resource changed since it was read (stale etag, ABORTED): re-read and decide again. */
export class ConflictError extends UpstreamError {}

/**
 * Refused as existing (ALREADY_EXISTS): a resource of that name, or one it would duplicate, is
 * there already. A conflict too, but not one that reading again and deciding again always clears:
 * the name may be another resource's.
 */
export class AlreadyExistsError extends ConflictError {}

/** The resource does not exist (NOT_FOUND). */
export class NotFoundError extends UpstreamError {}

/** Cloud Run refused the write because it does not fit the GPU quota. */
export class QuotaRejectedError extends UpstreamError {}

/**
 * The API refused the request as sent (INVALID_ARGUMENT) or in the state the resource is in
 * (FAILED_PRECONDITION, such as another operation in flight), for another reason than the quota
 * or a stale etag: nothing of it was done.
 */
export class RefusedError extends UpstreamError {}

/** The API asked us to slow down (RESOURCE_EXHAUSTED, HTTP 429). */
export class RateLimitedError extends UpstreamError {}

/** The API could not be reached or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED). */
export class UnavailableError extends UpstreamError {}

/**
 * What Google refused: a permission not granted (a role mends it), an API not enabled for the
 * project (`service-disabled`), or the credentials themselves (`credentials`: expired, revoked).
 */
export type Refusal = 'permission' | 'service-disabled' | 'credentials';

/** The caller may not do this (PERMISSION_DENIED, UNAUTHENTICATED). */
export class PermissionError extends UpstreamError {
  /** The IAM permission(s) the error names (e.g. `run.services.update`); empty when it names none. */
  readonly permissions: readonly string[];
  /** The resource the error says the permission was denied on; null when it names none. */
  readonly resource: string | null;
  /** What was refused; `permission` unless the adapter that made the error knew better. */
  readonly refusal: Refusal;
  constructor(
    message: string,
    options?: {
      cause?: unknown;
      permissions?: readonly string[];
      resource?: string | null;
      refusal?: Refusal;
    },
  ) {
    super(message, options);
    this.permissions = options?.permissions ?? [];
    this.resource = options?.resource ?? null;
    this.refusal = options?.refusal ?? 'permission';
  }
}

/** No Google credentials could be found (Application Default Credentials), so nothing was asked. */
export class CredentialsError extends UpstreamError {}

/** The message of anything thrown: an Error's message, else its text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
