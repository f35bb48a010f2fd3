import { oneLine } from '../core/text.js';
import { ProjectId } from '../core/units.js';
import { cutText } from '../core/errors.js';
import { jsonBytes } from '../log.js';
import type { Answer } from './handler.js';

/**
 * What the HTTP entry point accepts before it reads the body: only `POST /` with no query string,
 * a JSON body (or none) of at most MAX_BODY_BYTES. Everything else is answered here and nothing
 * runs.
 *
 * functions-framework parses the body before the function is called (express body-parser with a
 * fixed 1024mb limit, `server.ts` in GoogleCloudPlatform/functions-framework-nodejs: "larger than
 * 32MB, which is maximum limit of higher level layers anyway"); the limit is not configurable, so
 * the cap is applied to the bytes it read, before the body is validated. What a request may ask
 * is tens of bytes: a body past the cap is refused without looking at it, so neither validation
 * nor the answer grows with it.
 *
 * Not bounded here: what the framework spends before the function runs. A compressed body
 * (`Content-Encoding: gzip`) is inflated and parsed first, up to that 1024mb limit: 194 KB of gzip
 * that inflates to 200 MB was answered 413 here, but left the process at about 730 MB. Only a
 * caller who passes Cloud Run's IAM check (the scheduler's OIDC identity, `roles/run.invoker`)
 * reaches it; the Terraform module grants that to the scheduler alone, and the function's memory
 * limit ends such a request with the instance, not with a wrong write.
 */
export const MAX_BODY_BYTES = 64 * 1024;

/** The most characters of the request (its path, its method) an answer echoes. */
const ECHOED = 100;

interface HttpRequestHead {
  method: string;
  /** The path without the query string. */
  path: string;
  /** The query string, without its `?` (empty when there is none). */
  query: string;
  contentType: string | undefined;
  /** Bytes of body the framework read (its `rawBody`), or the Content-Length it was sent with. */
  bodyBytes: number;
}

type Refusal = Answer & { headers?: Record<string, string> };

/** What governorHttp's body holds, as a refused request is told. */
const HTTP_BODY = 'put the request in the JSON body, e.g. {"mode": "dry-run"}';

/** `body`: what the entry point's body holds, told to a request that put a query string instead. */
export function refuseRequest(req: HttpRequestHead, body = HTTP_BODY): Refusal | null {
  if (req.path !== '/') {
    return {
      status: 404,
      body: { error: `no such path ${JSON.stringify(cutText(req.path, ECHOED))}: POST to /` },
    };
  }
  if (req.method !== 'POST') {
    return {
      status: 405,
      headers: { Allow: 'POST' },
      body: { error: `method ${cutText(req.method, ECHOED)} is not allowed: POST to /` },
    };
  }
  // Nothing is read from the URL: a `?mode=dry-run` taken as no request would start the run the
  // caller did not ask for (an enforcing one). Neither Cloud Scheduler's job nor Pub/Sub's push
  // subscription adds one to the function's URL (the Terraform modules).
  if (req.query !== '') {
    return {
      status: 400,
      body: { error: `the function reads no query string: ${body}` },
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

/**
 * A request the framework refused before the function ran, as the error Express's default handler
 * is given: body-parser's errors (http-errors) carry a 4xx `status` and `expose: true`
 * (body-parser's lib/read.js: an unsupported charset or Content-Encoding is 415, a body that does
 * not inflate is 400), as is Express's router's refusal of a path it cannot decode. What to log
 * for it, in one line: the reason, cut, or, when the error carries the request's text (see
 * carriesRequestText), not even that. Null for any other error.
 */
export function frameworkRefusal(e: unknown): { status: number; reason: string } | null {
  if (typeof e !== 'object' || e === null) return null;
  const { status, statusCode, expose } = e as {
    status?: unknown;
    statusCode?: unknown;
    expose?: unknown;
  };
  const code = typeof status === 'number' ? status : statusCode;
  // Express's router refuses a path whose percent-encoding does not decode with the URIError
  // itself, given status 400 but no `expose`, its message quoting the path (router 2's
  // lib/layer.js decodeParam).
  if (e instanceof URIError && code === 400)
    return { status: 400, reason: 'its path is not valid percent-encoding' };
  if (expose !== true || typeof code !== 'number' || code < 400 || code > 499) return null;
  if (carriesRequestText(e)) return { status: code, reason: 'its content is not logged' };
  const message = (e as { message?: unknown }).message;
  return { status: code, reason: cutText(oneLine(String(message ?? 'no reason given')), ECHOED) };
}

/**
 * Whether an error was thrown by functions-framework's conversion of a request into an event,
 * before the event function runs: its middleware that reads a legacy background event (or a raw
 * Pub/Sub push) throws on a body that is not a JSON object (`text/plain`, none at all) or a
 * malformed legacy event (functions-framework 5.0.5, build/src/middleware/
 * background_event_to_cloud_event.js `isConvertableBackgroundEvent`: `'context' in body`), and
 * Express answers 500 and prints the error. Its message may quote the request (V8: "Cannot use
 * 'in' operator to search for 'context' in …", "Cannot create property 'publishTime' on string
 * '…'"; the framework's EventConversionError names the event's type or resource). Told by the
 * first frame of code in its stack, read after the error's own text (which may hold anything): a
 * built-in the middleware called (V8's `at Function.entries (<anonymous>)`, on a Firebase Auth
 * event whose `metadata` is null) is passed over for the frame that called it.
 */
export function failedEventConversion(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const stack: unknown = e.stack;
  // V8 opens the stack with the error's text: its name, then `: message` when it has one.
  const head = e.message === '' ? String(e.name) : `${e.name}: ${e.message}`;
  if (typeof stack !== 'string' || !stack.startsWith(head)) return false;
  // V8 keeps 10 frames (Error.stackTraceLimit); the first line is the empty rest of the head.
  const [rest, ...lines] = stack.slice(head.length).split('\n', 12);
  if (rest !== '') return false;
  for (const line of lines) {
    const frame = /^\s+at (.*)$/.exec(line)?.[1];
    if (frame === undefined) return false;
    if (/^(?:.* )?\((?:<anonymous>|native)\)$/.test(frame)) continue;
    return /[\\/]@google-cloud[\\/]functions-framework[\\/]build[\\/]src[\\/](?:middleware[\\/]|pubsub_middleware\.js)/.test(
      frame,
    );
  }
  return false;
}

/** MAX_BODY_BYTES in base64, which takes 4 characters for every 3 bytes. */
const MAX_DATA_CHARS = Math.ceil(MAX_BODY_BYTES / 3) * 4;

/**
 * The most JSON a trigger event's `data` may hold: a Pub/Sub message whose `data` is within
 * MAX_BODY_BYTES once decoded (base64 takes 4 characters for every 3 bytes), with Pub/Sub's own
 * ceiling on attributes (at most 100, keys ≤ 256 bytes, values ≤ 1,024 bytes:
 * https://cloud.google.com/pubsub/quotas#resource_limits) and room for the message's ids, times
 * and subscription name. The framework has parsed the event before the function sees it; past
 * this, nothing of it is read.
 */
export const MAX_EVENT_BYTES = MAX_DATA_CHARS + 100 * (256 + 1024 + 8) + 4096;

/**
 * Decodes base64 strictly: the standard or the URL-safe alphabet, padding optional, as the proto3
 * JSON mapping of `bytes` accepts them (https://protobuf.dev/programming-guides/json/, "bytes").
 * Node's decoder skips what is not base64 and stops at the first `=`, so "!!!@@@" would decode
 * to nothing and "e30=garbage" to "{}": anything else is `null` here.
 */
export function decodeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) return null;
  if (/[+/]/.test(text) && /[_-]/.test(text)) return null; // one alphabet, not both
  const bare = text.replace(/=+$/, '');
  if (bare.length % 4 === 1) return null;
  if (bare.length !== text.length && text.length % 4 !== 0) return null;
  return Buffer.from(bare, /[_-]/.test(bare) ? 'base64url' : 'base64');
}

/** What `governorEvent` makes of a trigger event: the request to run with, or why it is ignored. */
type TriggerEvent = { payload: unknown } | { ignored: string };

/**
 * Reads a Pub/Sub trigger event's data: Eventarc delivers a `MessagePublishedData`, an object
 * whose `message` is a PubsubMessage with its `data` in base64
 * (https://cloud.google.com/eventarc/docs/cloudevents, google.cloud.pubsub.topic.v1.messagePublished;
 * https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage). An empty or absent
 * `data` is a run with no request, as the scheduler's ticks are; the text, when there is one,
 * must be JSON. Anything else is not a Pub/Sub message and is ignored: redelivering it could not
 * help. Nothing of the event's content is quoted in the reason.
 */
export function readTriggerEvent(data: unknown): TriggerEvent {
  // Null when it has no JSON form to measure (a cycle, a BigInt, nested past the stack).
  let size: number | null;
  try {
    size = jsonBytes(data);
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
    size = null;
  }
  if (size === null || size > MAX_EVENT_BYTES) {
    return {
      ignored: `a trigger event of ${size === null ? 'unmeasurable size' : `${size} bytes`}: at most ${MAX_EVENT_BYTES} are read`,
    };
  }
  if (!isPlainObject(data) || !isPlainObject(data.message)) {
    return { ignored: 'a trigger event that is not a Pub/Sub message (no `message` object)' };
  }
  // JSON null is a field's default (proto3's JSON mapping): no data.
  const encoded = data.message.data ?? '';
  if (typeof encoded !== 'string') {
    return {
      ignored: `a trigger message whose data is not base64 text but a JSON ${typeName(encoded)}`,
    };
  }
  // The cap is checked before decoding.
  if (encoded.length > MAX_DATA_CHARS) {
    return {
      ignored: `a trigger message of about ${Math.floor((encoded.length * 3) / 4)} bytes: at most ${MAX_BODY_BYTES} are read`,
    };
  }
  const bytes = decodeBase64(encoded);
  if (bytes === null) {
    return { ignored: `a trigger message whose data is not base64 (${encoded.length} characters)` };
  }
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { payload: undefined };
  try {
    return { payload: JSON.parse(text) };
  } catch {
    // Not the parser's message: V8 quotes the text it could not parse ("… is not valid JSON").
    return {
      ignored: `a trigger message that is not valid JSON (${bytes.length} bytes; its content is not logged)`,
    };
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function typeName(x: unknown): string {
  return Array.isArray(x) ? 'list' : typeof x;
}

/** Cloud Logging's field for the trace of a structured entry (its LogEntry's `trace`). */
export const TRACE_FIELD = 'logging.googleapis.com/trace';

/**
 * The trace of the request, as a log field, so that the run's lines are found with the request
 * that started them: Cloud Run sends the trace in `X-Cloud-Trace-Context` (`TRACE_ID/SPAN_ID;o=1`)
 * and in W3C `traceparent` (`00-TRACE_ID-SPAN_ID-FLAGS`), and a structured line's
 * `logging.googleapis.com/trace` becomes its entry's `trace`
 * (https://cloud.google.com/logging/docs/structured-logging), which "must be set to a string with
 * the following format: projects/PROJECT_ID/traces/TRACE_ID"
 * (https://cloud.google.com/trace/docs/trace-log-integration; Cloud Run's own sample builds it so:
 * https://cloud.google.com/run/docs/samples/cloudrun-manual-logging). PROJECT_ID is the function's
 * own project (`GOOGLE_CLOUD_PROJECT`, which the Terraform modules set); without it no trace is
 * logged rather than one Cloud Logging would not link. The headers are the caller's: anything but
 * a well-formed trace id is left out.
 */
export function traceFields(
  headers: { cloudTrace: string | undefined; traceparent: string | undefined },
  project: string | undefined,
): Record<string, string> {
  if (project === undefined || !ProjectId.safeParse(project).success) return {};
  const id =
    /^([0-9a-f]{32})(?:\/|$)/i.exec(headers.cloudTrace ?? '')?.[1] ??
    /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/i.exec(headers.traceparent ?? '')?.[1];
  // An all-zero trace id is invalid in both formats (https://www.w3.org/TR/trace-context/).
  if (!id || /^0+$/.test(id)) return {};
  return { [TRACE_FIELD]: `projects/${project}/traces/${id.toLowerCase()}` };
}
