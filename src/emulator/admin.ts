import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AdvanceInput,
  ControlError,
  DecideQuotaPreferenceInput,
  DeployInput,
  CreateServiceInput,
  ScaleWorkerPoolInput,
  DeleteServiceInput,
  EditInput,
  ResetCallsInput,
  parse,
  SeedQuotaPreferenceInput,
  SetDemandInput,
  SetQuotaInput,
  type EmulatorControl,
} from './control.js';
import { portInUse } from './listen.js';
import { oneLine } from '../core/text.js';
import { cutText, errorMessage } from '../core/errors.js';

/**
 * The HTTP admin endpoint (JSON, 127.0.0.1 only) over the control API:
 * GET /state, /writes, /calls, /faults, /violations, /published, /metrics-written,
 * /quota-preferences; POST /advance {ms}, /demand, /quota, /deploy, /edit, /create, /delete,
 * /scale-worker-pool, /faults, /invariants,
 * /reset-calls, /quota-preferences/decide, /quota-preferences/seed.
 *
 * A development tool, but not a hazard: a POST with a body must say `content-type:
 * application/json` (415 otherwise, so a browser's cross-site form post or a stray `text/plain`
 * body is refused before anything is read), a body is at most {@link MAX_BODY_BYTES} bytes
 * (413: refused from its `content-length` before reading, or as soon as the bytes received pass
 * the limit), and must be UTF-8 JSON (400). Every request is answered: an answer too large to
 * send ({@link MAX_RESPONSE_CHARS}) is a 500 with one JSON line.
 */

/** The largest request body accepted, in bytes (1 MiB). */
const MAX_BODY_BYTES = 1 << 20;

/** A request refused before it reaches the control API, with its HTTP status. */
class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** True when the request says it carries a body (a length above 0, or a chunked one). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) !== 0;
  return req.headers['transfer-encoding'] !== undefined;
}

function isJsonType(header: string | undefined): boolean {
  const type = header?.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json';
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!hasBody(req)) return {};
  checkBodyType(req);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    throw new HttpError(
      413,
      `request body is ${declared} bytes; the admin endpoint accepts at most ${MAX_BODY_BYTES}`,
    );
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), 'utf8');
    bytes += buffer.length;
    if (bytes > MAX_BODY_BYTES) {
      throw new HttpError(
        413,
        `request body is over ${MAX_BODY_BYTES} bytes; the admin endpoint accepts at most ${MAX_BODY_BYTES}`,
      );
    }
    chunks.push(buffer);
  }
  let body: string;
  try {
    body = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch (error) {
    throw new ControlError(`request body is not UTF-8: ${errorMessage(error)}`);
  }
  if (body.trim() === '') return {};
  try {
    return JSON.parse(body) as unknown;
  } catch (error) {
    throw new ControlError(`request body is not JSON: ${errorMessage(error)}`);
  }
}

/**
 * The largest answer sent, in characters of JSON (64 MiB). A bigger one (the published messages
 * of a long run, say) is refused with 500 naming the route, rather than built: past V8's longest
 * string (about 512 MiB) `JSON.stringify` throws, and well before it the answer costs the emulator
 * gigabytes.
 */
export const MAX_RESPONSE_CHARS = 64 << 20;

/** The answer's text: the value as JSON, or a one-line 500 naming why it cannot be sent. */
function answerText(what: string, code: number, value: unknown): [number, string] {
  let text: string;
  try {
    // An error is one line; other answers are indented for people reading them.
    text = `${code >= 400 ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`;
  } catch (error) {
    // V8's RangeError "Invalid string length", or a value JSON cannot hold: answered, not lost.
    return [500, errorLine(`cannot send the answer to ${what}: ${errorMessage(error)}`)];
  }
  if (text.length > MAX_RESPONSE_CHARS) {
    return [
      500,
      errorLine(
        `the answer to ${what} is ${text.length} characters of JSON, over the ${MAX_RESPONSE_CHARS} the admin endpoint sends: ask for less (GET /published?topic=..., GET /metrics-written?type=...) or POST /reset-calls`,
      ),
    ];
  }
  return [code, text];
}

function errorLine(message: string): string {
  return `${JSON.stringify({ error: oneLine(message) })}\n`;
}

/**
 * Answers the request, whatever happens: a value that cannot be serialized is a 500 with one JSON
 * line; if even writing fails (the client went away, headers already sent) the connection is
 * closed rather than left open with no answer.
 */
function send(
  req: IncomingMessage,
  res: ServerResponse,
  code: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const [status, text] = answerText(`${req.method ?? 'GET'} ${routePath(req)}`, code, value);
  try {
    res.writeHead(status, {
      ...(status === code ? headers : {}),
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  } catch (error) {
    res.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * The request's URL. Node's parser takes request targets that are no URL (`GET http://[`); one is
 * refused (400) rather than left to throw where it cannot be answered.
 */
function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    throw new HttpError(
      400,
      `the request target ${JSON.stringify(cutText(req.url ?? '', 100))} is not a URL`,
    );
  }
}

/** The request's path, for an error message (cut to 100 characters: it is the client's). */
function routePath(req: IncomingMessage): string {
  try {
    return cutText(requestUrl(req).pathname, 100);
  } catch {
    return cutText(req.url ?? '/', 100);
  }
}

/** The body as an object; anything else ([], null, "x", 3) is refused and nothing changes. */
function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value))
    return value as Record<string, unknown>;
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
  throw new ControlError(`${what}: expected an object, got ${got}`);
}

/**
 * The Host header names the admin endpoint itself: 127.0.0.1, localhost or [::1] with its port.
 * Anything else (a missing Host included) is refused, so a web page whose name a DNS-rebinding
 * attack points at 127.0.0.1 cannot drive the emulator from a browser.
 */
function checkHost(req: IncomingMessage, port: number): void {
  const host = req.headers.host?.toLowerCase();
  const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
  if (host === undefined || !allowed.includes(host)) {
    throw new HttpError(
      403,
      `the Host header must be ${allowed.join(', ')} (got ${host === undefined ? 'none' : JSON.stringify(host.slice(0, 100))})`,
    );
  }
}

/**
 * Any POST with a body must declare it JSON, on every route, whether or not the route reads it:
 * a browser's cross-site form post (`/reset-calls` with a text/plain body) is refused with 415
 * before anything happens.
 */
function checkBodyType(req: IncomingMessage): void {
  if (hasBody(req) && !isJsonType(req.headers['content-type'])) {
    throw new HttpError(
      415,
      `request body must be JSON sent with content-type: application/json (got ${req.headers['content-type'] === undefined ? 'no content-type' : JSON.stringify(req.headers['content-type'].slice(0, 100))})`,
    );
  }
}

/** Every route, and the query parameters it reads (most read none). */
export const ADMIN_ROUTES: Readonly<Record<string, readonly string[]>> = {
  'GET /state': [],
  'GET /clock': [],
  'GET /writes': [],
  'GET /calls': [],
  'GET /published': ['topic'],
  'GET /metrics-written': ['type'],
  'GET /faults': [],
  'GET /violations': [],
  'GET /quota-preferences': [],
  'POST /advance': [],
  'POST /demand': [],
  'POST /quota': [],
  'POST /deploy': [],
  'POST /edit': [],
  'POST /create': [],
  'POST /delete': [],
  'POST /scale-worker-pool': [],
  'POST /faults': [],
  'POST /invariants': [],
  'POST /reset-calls': [],
  'POST /quota-preferences/decide': [],
  'POST /quota-preferences/seed': [],
};

/**
 * A query parameter the route does not read, or one given twice, is refused (400): ignored, it
 * answered the unfiltered list as if filtered (`/published?type=…` returned every message).
 */
function checkQuery(key: string, params: URLSearchParams): void {
  const known = ADMIN_ROUTES[key];
  if (known === undefined) return; // no such route: answered 404 below
  const seen = new Set<string>();
  for (const name of params.keys()) {
    const shown = JSON.stringify(cutText(name, 100));
    if (!known.includes(name)) {
      throw new ControlError(
        `${cutText(key, 100)}: unknown query parameter ${shown} (${known.length ? `it takes ${known.join(', ')}` : 'it takes none'})`,
      );
    }
    if (seen.has(name))
      throw new ControlError(`${cutText(key, 100)}: query parameter ${shown} given twice`);
    seen.add(name);
  }
}

/** "GET /state /clock …; POST /advance …": every route, by method. */
function routeList(): string {
  const byMethod = new Map<string, string[]>();
  for (const key of Object.keys(ADMIN_ROUTES)) {
    const [method = '', path = ''] = key.split(' ');
    byMethod.set(method, [...(byMethod.get(method) ?? []), path]);
  }
  return [...byMethod].map(([method, paths]) => `${method} ${paths.join(' ')}`).join('; ');
}

async function route(
  control: EmulatorControl,
  req: IncomingMessage,
  port: number,
): Promise<[number, unknown, Record<string, string>?]> {
  checkHost(req, port);
  if (req.method !== 'GET') checkBodyType(req);
  const url = requestUrl(req);
  const path = url.pathname;
  const key = `${req.method ?? 'GET'} ${path}`;
  checkQuery(key, url.searchParams);
  switch (key) {
    case 'GET /state':
      return [200, control.state()];
    case 'GET /clock':
      return [200, { now: control.now().toISOString() }];
    case 'GET /writes':
      // The write records are bounded (context.ts, `writes`): how many older ones were dropped.
      return [
        200,
        control.writes(),
        { 'x-emulator-writes-dropped': String(control.droppedWrites()) },
      ];
    case 'GET /calls':
      // The call log is bounded (context.ts, `calls`): how many older calls it dropped.
      return [200, control.calls(), { 'x-emulator-calls-dropped': String(control.droppedCalls()) }];
    case 'GET /metrics-written':
      return [
        200,
        control.metricsWritten(url.searchParams.get('type') ?? undefined),
        { 'x-emulator-points-dropped': String(control.droppedMetricPoints()) },
      ];
    case 'GET /published':
      return [
        200,
        control.published(url.searchParams.get('topic') ?? undefined),
        { 'x-emulator-published-dropped': String(control.droppedPublished()) },
      ];
    case 'POST /reset-calls':
      parse(ResetCallsInput, await readJson(req), 'reset-calls');
      control.resetCalls();
      return [200, { ok: true }];
    case 'POST /advance': {
      const { ms } = parse(AdvanceInput, await readJson(req), 'advance');
      return [200, { now: control.advance(ms).toISOString() }];
    }
    case 'POST /demand':
      return [200, control.setDemand(parse(SetDemandInput, await readJson(req), 'demand'))];
    case 'POST /quota':
      return [200, control.setQuota(parse(SetQuotaInput, await readJson(req), 'quota'))];
    case 'POST /deploy':
      return [200, control.deploy(parse(DeployInput, await readJson(req), 'deploy'))];
    case 'POST /edit':
      return [200, control.edit(parse(EditInput, await readJson(req), 'edit'))];
    case 'POST /create':
      return [
        200,
        control.createService(parse(CreateServiceInput, await readJson(req), 'service to create')),
      ];
    case 'POST /delete':
      return [
        200,
        control.deleteService(parse(DeleteServiceInput, await readJson(req), 'service to delete')),
      ];
    case 'POST /scale-worker-pool':
      return [
        200,
        control.scaleWorkerPool(
          parse(ScaleWorkerPoolInput, await readJson(req), 'worker pool to scale'),
        ),
      ];
    case 'GET /quota-preferences':
      return [200, control.quotaPreferences()];
    case 'POST /quota-preferences/decide':
      return [
        200,
        control.decideQuotaPreference(
          parse(DecideQuotaPreferenceInput, await readJson(req), 'quota preference decision'),
        ),
      ];
    case 'POST /quota-preferences/seed':
      return [
        200,
        control.seedQuotaPreference(
          parse(SeedQuotaPreferenceInput, await readJson(req), 'quota preference seed'),
        ),
      ];
    case 'GET /faults':
      return [200, control.faults()];
    case 'POST /faults':
      return [200, control.setFaults(asRecord(await readJson(req), 'faults'))];
    case 'POST /invariants':
      return [200, control.setInvariants(asRecord(await readJson(req), 'invariants'))];
    case 'GET /violations':
      return [200, control.violations()];
    default:
      return [
        404,
        {
          error: `no route ${cutText(key, 100)}: ${routeList()}`,
        },
      ];
  }
}

/**
 * A request Node's parser refuses (a malformed request line or header, headers over its limit) is
 * answered, as every other error, with one JSON line naming what is wrong: Node's own answer is a
 * bare 400 or 431 without a body ("Default behavior is to try close the socket with a HTTP '400
 * Bad Request', or a HTTP '431 Request Header Fields Too Large' in the case of a
 * HPE_HEADER_OVERFLOW error", https://nodejs.org/api/http.html#event-clienterror). A socket
 * already closed or answered is left to close.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'the request took too long to arrive']
        : [400, 'Bad Request', `malformed HTTP request (${error.code ?? 'unparsable'})`];
  const body = errorLine(message);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

interface AdminServer {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startAdminServer(control: EmulatorControl, port = 0): Promise<AdminServer> {
  const server = createServer((req, res) => {
    route(control, req, (server.address() as AddressInfo).port)
      .then(
        ([code, value, headers]) => send(req, res, code, value, headers),
        (error: unknown) => {
          if (error instanceof HttpError) {
            // The rest of an unread body is not wanted: close the connection after answering.
            res.setHeader('connection', 'close');
            send(req, res, error.status, { error: error.message });
          } else if (error instanceof ControlError) send(req, res, 400, { error: error.message });
          else send(req, res, 500, { error: errorMessage(error) });
        },
      )
      // Never an unhandled rejection, which would end the process: the connection is closed.
      .catch((error: unknown) => res.destroy(error instanceof Error ? error : undefined));
  });
  server.on('clientError', answerClientError);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (error) => reject(portInUse(error, port, '--admin-port') ?? error));
    server.listen(port, '127.0.0.1', () => resolveListen());
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    stop: () =>
      new Promise<void>((resolveClose, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolveClose()));
      }),
  };
}
