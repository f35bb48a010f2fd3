import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { CONTROL } from '../core/text.js';
import { cutText } from '../core/errors.js';

/**
 * An error answered to the client with a gRPC status code. `retryDelayMs`, when given, is answered
 * as a `google.rpc.RetryInfo` detail (its `retry_delay`), as Google attaches one to a refusal the
 * client may retry later: "Clients should wait until `retry_delay` amount of time has passed since
 * receiving the error response before retrying"
 * (https://cloud.google.com/dotnet/docs/reference/Google.Api.CommonProtos/latest/Google.Rpc.RetryInfo).
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: status,
    message: string,
    readonly retryDelayMs?: number,
  ) {
    super(message);
  }
}

/** The most characters one piece of the client's input takes in an error message. */
export const SHOWN_INPUT = 200;

const CONTROLS = new RegExp(CONTROL.source, 'gu');

/** Each control character (core/text.ts, CONTROL) as a space: the text keeps its length. */
function spaced(text: string): string {
  return text.replace(CONTROLS, ' ');
}

/**
 * A piece of the client's input (a name, an etag, a mask path, a filter) as an error message
 * quotes it: control characters as spaces, and cut to {@link SHOWN_INPUT} characters, "…"
 * included (cutText). Echoed whole, a name of megabytes made a grpc-message trailer too large to send
 * (past about 64 KiB grpc-js drops it and the client's channel waits forever).
 */
export function shown(input: string): string {
  return cutText(spaced(input), SHOWN_INPUT);
}

/**
 * The most characters of an error message answered: a safety net under {@link shown}, well below
 * the ~64 KiB past which grpc-js drops the grpc-message trailer (Google documents no limit).
 */
export const MAX_ERROR_MESSAGE = 16 << 10;

/** An error message as answered: one line, at most {@link MAX_ERROR_MESSAGE} characters. */
export function answeredMessage(message: string): string {
  return cutText(spaced(message), MAX_ERROR_MESSAGE);
}

/**
 * The ids in a resource name (AIP-122, https://google.aip.dev/122: "resource ID segments"),
 * checked before anything is looked up, so a malformed or huge id is INVALID_ARGUMENT naming the
 * segment, not NOT_FOUND. `kind` says which rule applies:
 * - `project`: Google's project ids "must be 6 to 30 characters" of lower-case letters, digits and
 *   hyphens, starting with a letter (https://cloud.google.com/resource-manager/docs/creating-managing-projects);
 *   a project number (digits) is accepted too;
 * - `service`: a Cloud Run service id "must begin with letter, and cannot end with hyphen; must
 *   contain fewer than 50 characters" (CreateServiceRequest.service_id in
 *   google/cloud/run/v2/service.proto; the same rule for worker pools and jobs);
 * - `id`: every other id (a location, a quota id, a preference id): Google states no one length for
 *   them, so the emulator is strict and safe: at most 63 characters of letters, digits, `-`, `_`
 *   and `.` (AIP-122 ids are at most 63 characters), or `-` where a wildcard is meant.
 */
export function checkSegment(
  kind: 'project' | 'service' | 'id',
  what: string,
  value: string,
): void {
  const ok =
    kind === 'project'
      ? /^([a-z][-a-z0-9]{4,28}[a-z0-9]|\d{1,20})$/.test(value)
      : kind === 'service'
        ? /^[a-zA-Z]([-a-zA-Z0-9]{0,47}[a-zA-Z0-9])?$/.test(value)
        : /^[-a-zA-Z0-9_.]{1,63}$/.test(value);
  if (!ok) {
    const rule =
      kind === 'project'
        ? 'a project id of 6 to 30 lower-case letters, digits and hyphens, or a project number'
        : kind === 'service'
          ? 'an id that begins with a letter, does not end with a hyphen and has fewer than 50 characters of letters, digits and hyphens'
          : 'an id of at most 63 letters, digits, "-", "_" and "."';
    throw invalid(`${what} must be ${rule}, got "${shown(value)}" (${value.length} characters)`);
  }
}

export const invalid = (message: string): RpcError =>
  new RpcError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): RpcError => new RpcError(status.NOT_FOUND, message);
/**
 * What Google's API accepts and the emulator does not serve: UNIMPLEMENTED, never a refusal Google
 * would not make (INVALID_ARGUMENT) and never an empty answer.
 */
export const notEmulated = (what: string, hint?: string): RpcError =>
  new RpcError(
    status.UNIMPLEMENTED,
    `${what} is valid on Google's API but not emulated${hint ? `: ${hint}` : ''}`,
  );

/**
 * PERMISSION_DENIED: the caller lacks `permission` on `resource` (a resource name from the
 * request). Every API answers it in these words, as Cloud Run does (`Permission 'run.services.get'
 * denied on resource '...' (or resource may not exist).`): Google's permission errors name "the
 * missing required permissions" and "the resource that you tried to access"
 * (https://cloud.google.com/iam/docs/permission-error-messages), and the governor's adapters read
 * the permission from these words (src/adapters/grpc-errors.ts). Pub/Sub words its own denial
 * differently (iam.ts).
 */
export function permissionDenied(permission: string, resource: string): RpcError {
  return new RpcError(
    status.PERMISSION_DENIED,
    `Permission '${permission}' denied on resource '${shown(resource)}' (or resource may not exist).`,
  );
}

/**
 * Refuses a request on a project outside the fleet, before anything is looked up: "If the user
 * does not have permission to access the resource or parent, regardless of whether or not it
 * exists, the service must error with PERMISSION_DENIED ... Permission must be checked prior to
 * checking if the resource or parent exists" (AIP-211, https://google.aip.dev/211). The emulator's
 * caller holds permissions in the fleet's projects (`fleet`) only; `permission` is the one the
 * method needs on `resource` (the request's name or parent), as iam.ts lists them.
 *
 * A project number is refused here too. Google takes one in place of the id ("where {project} can
 * be project id or number", the Format of Cloud Run v2's names, as GetServiceRequest.name in
 * google/cloud/run/v2/service.proto), but a fleet names its projects by id alone: a number cannot
 * be told apart from another project's, so it is answered as a project the caller cannot reach,
 * never with a fleet project's resources. The governor asks by id; in what Google answers, its
 * adapters take a numeric project in place of the id asked (src/adapters/resource-names.ts).
 */
export function requireFleetProject(
  fleet: readonly { readonly id: string }[],
  project: string,
  permission: string,
  resource: string,
): void {
  if (!fleet.some((p) => p.id === project)) throw permissionDenied(permission, resource);
}

export type Message = Record<string, unknown>;

/** One API's methods by name, each answering a request (or throwing an RpcError). */
export type UnaryHandler = (request: Message) => unknown;
export type Handlers = Readonly<Record<string, UnaryHandler>>;

export function isMessage(value: unknown): value is Message {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
  );
}

export function field(msg: Message | undefined, name: string): Message | undefined {
  const v = msg?.[name];
  return isMessage(v) ? v : undefined;
}

export function text(msg: Message | undefined, name: string): string {
  const v = msg?.[name];
  return typeof v === 'string' ? v : '';
}

export function int(msg: Message | undefined, name: string): number {
  const v = msg?.[name];
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') return Number(v);
  return 0;
}

export function bool(msg: Message | undefined, name: string): boolean {
  return msg?.[name] === true;
}

export function strings(msg: Message | undefined, name: string): string[] {
  const v = msg?.[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function stringMap(msg: Message | undefined, name: string): Record<string, string> {
  const v = msg?.[name];
  const out: Record<string, string> = {};
  if (isMessage(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** A protobuf Timestamp or Duration as milliseconds. */
export function millis(msg: Message | undefined): number | undefined {
  if (!msg) return undefined;
  return int(msg, 'seconds') * 1000 + Math.floor(int(msg, 'nanos') / 1e6);
}

export function timestamp(ms: number): { seconds: string; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** True when a decoded value carries something (proto3 defaults count as nothing). */
export function isSet(value: unknown): boolean {
  if (
    value === undefined ||
    value === null ||
    value === '' ||
    value === 0 ||
    value === false ||
    value === '0'
  )
    return false;
  if (Array.isArray(value)) return value.length > 0;
  if (Buffer.isBuffer(value)) return value.length > 0;
  if (isMessage(value)) return Object.values(value).some(isSet);
  return true;
}

/** What {@link paginate} is told of a request. */
interface Paging {
  pageSize: number;
  pageToken: string;
  defaultPageSize: number;
  fingerprint: unknown;
  /** Largest page served whatever the request asks (default 1000). */
  maxPageSize?: number;
  /**
   * How many of the `n` results a whole page would hold from here to serve this time
   * (FaultInjector.pageCut), `empties` the empty pages already answered at this point of the
   * list: fewer, even none, is a short page that still has a next_page_token, as AIP-158 lets
   * Google answer (https://google.aip.dev/158). Absent: whole pages.
   */
  cut?: (n: number, empties: number) => number;
}

/**
 * A List request's paging as every List method of the emulator reads it: the request's
 * `page_size` and `page_token`, the emulator's page size when the request names none, and the
 * short pages its fault injector serves. `fingerprint` is what else the request asks, which a
 * page token is bound to; `sizes` a method's own default and largest page.
 */
export function listPaging(
  request: Message,
  ctx: {
    settings: { pageSize: number };
    injector: { pageCut: (n: number, empties: number) => number };
  },
  fingerprint: unknown,
  sizes: { defaultPageSize?: number; maxPageSize?: number } = {},
): Paging {
  return {
    pageSize: int(request, 'page_size'),
    pageToken: text(request, 'page_token'),
    defaultPageSize: sizes.defaultPageSize ?? ctx.settings.pageSize,
    ...(sizes.maxPageSize === undefined ? {} : { maxPageSize: sizes.maxPageSize }),
    fingerprint,
    cut: ctx.injector.pageCut,
  };
}

/** Short pages served so far: each one's token is new (see paginate). */
let shortPages = 0;

/**
 * Opaque page tokens bound to the request that produced them (AIP-158): a token used with other
 * filters is rejected rather than silently paging something else.
 */
export function paginate<T>(
  items: readonly T[],
  request: Paging,
): { page: T[]; nextPageToken: string } {
  if (request.pageSize < 0) throw invalid('page_size must not be negative');
  const full = Math.min(
    request.pageSize > 0 ? request.pageSize : request.defaultPageSize,
    request.maxPageSize ?? 1000,
  );
  const print = createHash('sha256')
    .update(JSON.stringify(request.fingerprint))
    .digest('base64url')
    .slice(0, 12);
  let offset = 0;
  let empties = 0;
  if (request.pageToken !== '') {
    const [p, o, , e] = Buffer.from(request.pageToken, 'base64url').toString('utf8').split(':');
    offset = Number(o);
    empties = Number(e ?? 0) || 0;
    if (p !== print || !Number.isInteger(offset) || offset < 0) {
      throw invalid(
        'page_token is not valid for this request (it was issued for another request, or is corrupt)',
      );
    }
  }
  // What a whole page would hold from here, and what is served of it this time.
  const whole = Math.max(0, Math.min(full, items.length - offset));
  const served = Math.max(0, Math.min(whole, request.cut?.(whole, empties) ?? whole));
  const size = served < whole ? served : full;
  const page = items.slice(offset, offset + size);
  const next = offset + size;
  // A short page's token also carries a serial, so that an empty page's token is never the one
  // it was asked with (a client that sees a token twice may take it for a loop), and the empty
  // pages answered in a row at this point.
  const token =
    size < full
      ? `${print}:${next}:${++shortPages}:${size === 0 ? empties + 1 : 0}`
      : `${print}:${next}`;
  return {
    page,
    nextPageToken: next < items.length ? Buffer.from(token).toString('base64url') : '',
  };
}
