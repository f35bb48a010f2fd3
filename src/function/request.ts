import type { Answer } from './handler.js';

/**
 * What the HTTP entry point accepts before it reads the body: only `POST /`, a JSON body (or
 * none) of at most MAX_BODY_BYTES. Everything else is answered here and nothing runs.
 *
 * functions-framework parses the body before the function is called (express body-parser with a
 * fixed 1024mb limit, `server.ts` in GoogleCloudPlatform/functions-framework-nodejs: "larger than
 * 32MB, which is maximum limit of higher level layers anyway"); the limit is not configurable, so
 * the cap is applied to the bytes it read, before the body is validated. What a request may ask
 * is tens of bytes: a body past the cap is refused without looking at it, so neither validation
 * nor the answer grows with it.
 */
export const MAX_BODY_BYTES = 64 * 1024;

export interface HttpRequestHead {
  method: string;
  /** The path without the query string. */
  path: string;
  contentType: string | undefined;
  /** Bytes of body the framework read (its `rawBody`), or the Content-Length it was sent with. */
  bodyBytes: number;
}

export type Refusal = Answer & { headers?: Record<string, string> };

export function refuseRequest(req: HttpRequestHead): Refusal | null {
  if (req.path !== '/') {
    return {
      status: 404,
      body: { error: `no such path ${JSON.stringify(cut(req.path))}: POST to /` },
    };
  }
  if (req.method !== 'POST') {
    return {
      status: 405,
      headers: { Allow: 'POST' },
      body: { error: `method ${cut(req.method)} is not allowed: POST to /` },
    };
  }
  if (req.bodyBytes > MAX_BODY_BYTES) {
    return {
      status: 413,
      body: {
        error: `the request body has ${req.bodyBytes} bytes: at most ${MAX_BODY_BYTES} are accepted`,
      },
    };
  }
  if (req.bodyBytes > 0 && !isJson(req.contentType)) {
    return {
      status: 415,
      body: { error: 'the request body must be JSON (Content-Type: application/json)' },
    };
  }
  return null;
}

function isJson(contentType: string | undefined): boolean {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json';
}

/** Anything of the request echoed in an answer is kept short. */
function cut(s: string): string {
  return s.length > 100 ? `${s.slice(0, 99)}…` : s;
}

/**
 * Whether an error handed to Express's default error handler carries a request's text. The JSON
 * body parser functions-framework installs (body-parser) rejects a body it cannot parse with an
 * error whose `body` is the text and whose message may quote it (`type` entity.parse.failed,
 * body-parser's lib/read.js), and Express 5's default handler prints such errors with
 * `console.error`. functions-framework offers no hook to handle them first
 * (https://github.com/GoogleCloudPlatform/functions-framework-nodejs/issues/686, open).
 */
export function carriesRequestText(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const type = (e as { type?: unknown }).type;
  return Object.hasOwn(e, 'body') || (typeof type === 'string' && type.startsWith('entity.'));
}
