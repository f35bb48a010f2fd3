/**
 * From the errors of Google's gRPC clients to the project's typed errors (src/core/errors.ts), so that
 * callers branch on what went wrong (a conflict, a quota refusal, a missing resource) rather than
 * on status codes. Every adapter that calls a google-gax client translates through here.
 */
import { status } from '@grpc/grpc-js';

import {
  ConflictError,
  GovernorError,
  NotFoundError,
  PermissionError,
  QuotaRejectedError,
  RateLimitedError,
  type Refusal,
  UnavailableError,
  UpstreamError,
  errorMessage,
} from '../core/errors.js';
import { permissionsNamedIn } from '../core/permissions.js';
import { grpcCode, grpcCodeName } from './retry.js';

/**
 * Cloud Run's refusal of a max instances above the GPU quota, as it words it (INVALID_ARGUMENT):
 * `... Max instances must be set to N or fewer in order to set GPU requirements in region R.
 * Quota violated: <quotaId> requested: X allowed: Q`.
 */
const quotaRefusal = /Quota violated|Max instances must be set to/;

/**
 * google-gax reports a call whose retries ran out as DEADLINE_EXCEEDED, keeping the last error
 * only in its message: `Exceeded maximum number of retries retrying error Error: 8
 * RESOURCE_EXHAUSTED: ... before any response was received`. The last code is the better guide.
 */
const retriesExhausted = /Exceeded maximum number of retries retrying error \w*:? ?(\d+) [A-Z_]+:/;

/**
 * The typed error for a failed Google API call. `what` says what was being done ("listing services
 * of projects/p/locations/r") and leads the message; the original error is the `cause`. An error
 * that is already one of ours is returned as it is.
 */
export function translateGrpcError(error: unknown, what: string): Error {
  if (error instanceof GovernorError) return error;
  const code = effectiveCode(error);
  const message = `${what} failed: ${describeGrpcError(error, code)}`;
  const options = { cause: error };
  switch (code) {
    case status.ABORTED:
      return new ConflictError(message, options);
    case status.NOT_FOUND:
      return new NotFoundError(message, options);
    case status.RESOURCE_EXHAUSTED:
      return new RateLimitedError(message, options);
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
      return new UnavailableError(message, options);
    case status.PERMISSION_DENIED:
    case status.UNAUTHENTICATED:
      return new PermissionError(message, {
        ...options,
        permissions: permissionsOf(error),
        resource: resourceOf(error),
        refusal: refusalOf(error, code),
      });
    case status.INVALID_ARGUMENT:
    case status.FAILED_PRECONDITION:
      return quotaRefusal.test(detailsOf(error))
        ? new QuotaRejectedError(message, options)
        : new UpstreamError(message, options);
    default:
      return new UpstreamError(message, options);
  }
}

/**
 * The permission(s) a PERMISSION_DENIED names: google-gax decodes Google's ErrorInfo detail into
 * `errorInfoMetadata` (key `permission`, as IAM sends it), and the text says it too, as
 * `Permission 'iam.serviceaccounts.actAs' denied on ...` (core/permissions.ts permissionsNamedIn).
 */
function permissionsOf(error: unknown): string[] {
  const found = new Set<string>();
  if (typeof error === 'object' && error !== null && 'errorInfoMetadata' in error) {
    const meta = error.errorInfoMetadata;
    if (typeof meta === 'object' && meta !== null && 'permission' in meta) {
      const p = meta.permission;
      if (typeof p === 'string' && p !== '') found.add(p);
    }
  }
  for (const p of permissionsNamedIn(detailsOf(error))) found.add(p);
  return [...found];
}

/**
 * What a PERMISSION_DENIED or UNAUTHENTICATED refused. UNAUTHENTICATED: "The request does not have
 * valid authentication credentials for the operation" (google/rpc/code.proto,
 * https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto): no role mends it.
 * A PERMISSION_DENIED whose ErrorInfo reason is `SERVICE_DISABLED` ("The request is calling a
 * disabled service for a consumer",
 * https://github.com/googleapis/googleapis/blob/master/google/api/error_reason.proto), which
 * google-gax sets as the error's `reason`: an API not enabled (or, with user credentials, no quota
 * project), not a missing grant.
 */
function refusalOf(error: unknown, code: number | undefined): Refusal {
  if (code === status.UNAUTHENTICATED) return 'credentials';
  const reason = typeof error === 'object' && error !== null && 'reason' in error && error.reason;
  return reason === 'SERVICE_DISABLED' ? 'service-disabled' : 'permission';
}

/**
 * The resource a PERMISSION_DENIED says the permission was denied on: ErrorInfo's `resource`
 * (reason IAM_PERMISSION_DENIED carries `permission` and `resource`,
 * https://github.com/googleapis/googleapis/blob/master/google/api/error_reason.proto), else the
 * text's `denied on resource '...'` or, for `iam.serviceAccounts.actAs`, `denied on service
 * account ... (or it may not exist)`. Google's permission errors name "the resource that you
 * tried to access" (https://cloud.google.com/iam/docs/permission-error-messages). Null when
 * neither says.
 */
function resourceOf(error: unknown): string | null {
  if (typeof error === 'object' && error !== null && 'errorInfoMetadata' in error) {
    const meta = error.errorInfoMetadata;
    if (typeof meta === 'object' && meta !== null && 'resource' in meta) {
      const r = meta.resource;
      if (typeof r === 'string' && r !== '') return r;
    }
  }
  const m = /denied on (?:resource '([^']+)'|service account '?([^\s'()]+))/.exec(detailsOf(error));
  return m?.[1] ?? m?.[2] ?? null;
}

function effectiveCode(error: unknown): number | undefined {
  const code = grpcCode(error);
  if (code !== status.DEADLINE_EXCEEDED) return code;
  const last = retriesExhausted.exec(detailsOf(error));
  return last?.[1] === undefined ? code : Number(last[1]);
}

/** The server's own words: gRPC `details`, else the message. */
function detailsOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'details' in error) {
    const { details } = error;
    if (typeof details === 'string' && details !== '') return details;
  }
  return errorMessage(error);
}

/**
 * google-gax's message when retries ran out repeats every attempt's error after the last one
 * (`... before any response was received : Previous errors : [{message: ...}, ...]`), a few
 * thousand characters for one unreachable endpoint. The last error's own words say it all.
 */
const retriesText =
  /^Exceeded maximum number of retries retrying error \w*:? ?\d+ [A-Z_]+: ([\s\S]*?)\s*(?:Resolution note: *)?\s*before any response was received[\s\S]*$/;

/** `NOT_FOUND: Resource '...' was not found` (the code by name, then the server's words). */
function describeGrpcError(error: unknown, code: number | undefined): string {
  const name = grpcCodeName(code);
  // grpc-js prefixes its messages with "<code> <NAME>: "; the details are the same without it.
  let details = detailsOf(error).replace(/^\d+ [A-Z_]+: /, '');
  const retried = retriesText.exec(details);
  if (retried?.[1]) details = `${retried[1].replace(/\.$/, '')} (after retries)`;
  // grpc-js ends a connection failure with an empty "Resolution note: ".
  details = details.replace(/\.?\s*Resolution note:\s*$/, '');
  if (name === undefined) return details;
  return details.startsWith(`${name}:`) ? details : `${name}: ${details}`;
}
