import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';

/** An error answered to the client with a gRPC status code. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

export const invalid = (message: string): RpcError =>
  new RpcError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): RpcError => new RpcError(status.NOT_FOUND, message);

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

/**
 * Opaque page tokens bound to the request that produced them (AIP-158): a token used with other
 * filters is rejected rather than silently paging something else.
 */
export function paginate<T>(
  items: readonly T[],
  request: {
    pageSize: number;
    pageToken: string;
    defaultPageSize: number;
    fingerprint: unknown;
    /** Largest page served whatever the request asks (default 1000). */
    maxPageSize?: number;
  },
): { page: T[]; nextPageToken: string } {
  if (request.pageSize < 0) throw invalid('page_size must not be negative');
  const size = Math.min(
    request.pageSize > 0 ? request.pageSize : request.defaultPageSize,
    request.maxPageSize ?? 1000,
  );
  const print = createHash('sha256')
    .update(JSON.stringify(request.fingerprint))
    .digest('base64url')
    .slice(0, 12);
  let offset = 0;
  if (request.pageToken !== '') {
    const [p, o] = Buffer.from(request.pageToken, 'base64url').toString('utf8').split(':');
    offset = Number(o);
    if (p !== print || !Number.isInteger(offset) || offset < 0) {
      throw invalid(
        'page_token is not valid for this request (it was issued for another request, or is corrupt)',
      );
    }
  }
  const page = items.slice(offset, offset + size);
  const next = offset + size;
  return {
    page,
    nextPageToken: next < items.length ? Buffer.from(`${print}:${next}`).toString('base64url') : '',
  };
}
