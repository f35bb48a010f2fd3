import { describe, expect, it } from 'vitest';
import {
  carriesRequestText,
  decodeBase64,
  failedEventConversion,
  frameworkRefusal,
  MAX_BODY_BYTES,
  MAX_EVENT_BYTES,
  readTriggerEvent,
  refuseRequest,
  TRACE_FIELD,
  traceFields,
} from '../../src/function/request.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('decodeBase64: strict, as the proto3 JSON mapping of bytes', () => {
  it('reads the standard and the URL-safe alphabets, with or without padding', () => {
    expect(decodeBase64('e30=')?.toString()).toBe('{}');
    expect(decodeBase64('e30')?.toString()).toBe('{}');
    expect(decodeBase64('')?.toString()).toBe('');
    const bytes = Buffer.from([0xfb, 0xff, 0xfe]);
    expect(decodeBase64(bytes.toString('base64'))).toEqual(bytes); // "+//+"
    expect(decodeBase64(bytes.toString('base64url'))).toEqual(bytes); // "-__-"
  });

  it('refuses what Node would quietly skip or cut', () => {
    // Node's decoder gives "" for the first and "{}" for the second.
    for (const bad of ['!!!@@@###', 'e30=garbage', 'e3 0=', 'e', 'e30===', 'ab+_', 'e3=', '====']) {
      expect(decodeBase64(bad), bad).toBeNull();
    }
  });
});

describe('refuseRequest: only POST / with a JSON body of at most MAX_BODY_BYTES runs', () => {
  const request = (over: Partial<Parameters<typeof refuseRequest>[0]> = {}) => ({
    method: 'POST',
    path: '/',
    query: '',
    contentType: 'application/json',
    bodyBytes: 2,
    ...over,
  });

  it('takes a body of exactly MAX_BODY_BYTES, and refuses one byte more (413)', () => {
    expect(refuseRequest(request({ bodyBytes: MAX_BODY_BYTES }))).toBeNull();
    expect(refuseRequest(request({ bodyBytes: MAX_BODY_BYTES + 1 }))?.status).toBe(413);
  });

  it('takes JSON however its media type is spelled: any case, with parameters (RFC 9110)', () => {
    // "The type and subtype tokens are case-insensitive", and a media type may carry parameters
    // such as a charset: https://www.rfc-editor.org/rfc/rfc9110#section-8.3.1
    for (const contentType of [
      'application/json; charset=utf-8',
      'Application/JSON',
      ' application/json ;charset=UTF-8',
    ])
      expect(refuseRequest(request({ contentType })), contentType).toBeNull();
    for (const contentType of [undefined, 'text/plain', 'application/jsonx', 'text/json'])
      expect(refuseRequest(request({ contentType }))?.status, String(contentType)).toBe(415);
    // No body: nothing to be JSON.
    expect(refuseRequest(request({ contentType: undefined, bodyBytes: 0 }))).toBeNull();
  });
});

describe('readTriggerEvent: a Pub/Sub message or nothing', () => {
  it('the JSON in a message’s data is the request; no data is a run with none', () => {
    expect(readTriggerEvent({ message: { data: b64('{"mode":"dry-run"}') } })).toEqual({
      payload: { mode: 'dry-run' },
    });
    expect(readTriggerEvent({ message: {}, subscription: 'projects/p/subscriptions/s' })).toEqual({
      payload: undefined,
    });
    expect(readTriggerEvent({ message: { data: b64('  \n') } })).toEqual({ payload: undefined });
    // JSON null is a field's default in proto3's JSON mapping: no data.
    expect(readTriggerEvent({ message: { data: null } })).toEqual({ payload: undefined });
  });

  it('ignores what is not a Pub/Sub message, saying what it is and never quoting it', () => {
    const cases: [unknown, RegExp][] = [
      [undefined, /not a Pub\/Sub message/],
      [null, /not a Pub\/Sub message/],
      [[1, 2], /not a Pub\/Sub message/],
      [{ message: 'hello' }, /not a Pub\/Sub message/],
      [{ message: null }, /not a Pub\/Sub message/],
      [{ message: [] }, /not a Pub\/Sub message/],
      [{ message: { data: 42 } }, /data is not base64 text but a JSON number/],
      [{ message: { data: { a: 1 } } }, /not base64 text but a JSON object/],
      [{ message: { data: [] } }, /not base64 text but a JSON list/],
      [{ message: { data: '!!!@@@SECRET' } }, /not base64 \(12 characters\)/],
      [{ message: { data: b64('{"token": SECRET}') } }, /not valid JSON \(17 bytes/],
    ];
    for (const [event, why] of cases) {
      const read = readTriggerEvent(event);
      expect(read, JSON.stringify(event)).toEqual({ ignored: expect.stringMatching(why) });
      expect(JSON.stringify(read)).not.toContain('SECRET');
    }
  });

  it('reads nothing of an event past the cap, whatever part of it is large', () => {
    const data = b64(`{"mode":"${'x'.repeat(MAX_BODY_BYTES)}"}`);
    expect(readTriggerEvent({ message: { data } })).toEqual({
      ignored: expect.stringMatching(/at most 65536 are read/),
    });
    const attributes = { big: 'x'.repeat(MAX_EVENT_BYTES) };
    expect(readTriggerEvent({ message: { attributes } })).toEqual({
      ignored: expect.stringMatching(/a trigger event of \d+ bytes: at most \d+ are read/),
    });
    expect(readTriggerEvent({ message: {}, junk: 'y'.repeat(MAX_EVENT_BYTES) })).toEqual({
      ignored: expect.stringMatching(/at most/),
    });
    // Pub/Sub's largest honest message fits: 100 attributes of 256-byte keys and 1,024-byte values.
    const most = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`${i}`.padStart(256, 'k'), 'v'.repeat(1024)]),
    );
    const full = b64(`{"mode":"dry-run","pad":"${'p'.repeat(MAX_BODY_BYTES - 40)}"}`);
    expect(readTriggerEvent({ message: { data: full, attributes: most } })).toEqual({
      payload: expect.objectContaining({ mode: 'dry-run' }),
    });
  });

  it('an event that cannot be measured (a cycle, a BigInt) is ignored, not thrown', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(readTriggerEvent({ message: cyclic })).toEqual({
      ignored: expect.stringMatching(/unmeasurable size/),
    });
    expect(readTriggerEvent({ message: { data: 1n } })).toEqual({
      ignored: expect.stringMatching(/unmeasurable size/),
    });
  });
});

describe("frameworkRefusal: the framework's 4xx refusals, in one line", () => {
  it('names the reason of an exposed 4xx, cut and on one line, and never a body it carries', () => {
    const charset = Object.assign(new Error('unsupported charset "LATIN1"'), {
      status: 415,
      expose: true,
      type: 'charset.unsupported',
    });
    expect(frameworkRefusal(charset)).toEqual({
      status: 415,
      reason: 'unsupported charset "LATIN1"',
    });
    const long = Object.assign(new Error(`x\n${'y'.repeat(500)}`), {
      statusCode: 400,
      expose: true,
    });
    const cut = frameworkRefusal(long);
    expect(cut?.reason).not.toContain('\n');
    expect(cut?.reason.length).toBeLessThanOrEqual(100);
    const parse = Object.assign(new Error('Unexpected token in "SECRET"'), {
      status: 400,
      expose: true,
      body: 'SECRET',
      type: 'entity.parse.failed',
    });
    expect(JSON.stringify(frameworkRefusal(parse))).not.toContain('SECRET');
  });

  it('never names a reason that may quote the request: a body carried, or an entity error', () => {
    // body-parser's parse error carries the text as `body` and may quote it in its message
    // (type entity.parse.failed); either alone is enough to keep the reason out of the log.
    const quoting = [
      Object.assign(new Error('Unexpected token in "SECRET"'), {
        status: 400,
        expose: true,
        body: 'SECRET',
      }),
      Object.assign(new Error('Unexpected token in "SECRET"'), {
        status: 400,
        expose: true,
        type: 'entity.parse.failed',
      }),
    ];
    for (const e of quoting) {
      expect(carriesRequestText(e)).toBe(true);
      expect(frameworkRefusal(e)).toEqual({ status: 400, reason: 'its content is not logged' });
    }
  });

  it("names a path Express's router cannot decode, never the path", () => {
    const path = Object.assign(new URIError("Failed to decode param 'SECRET%E0'"), { status: 400 });
    expect(frameworkRefusal(path)).toEqual({
      status: 400,
      reason: 'its path is not valid percent-encoding',
    });
    // A URIError of the function's own, with no status, is a bug to print.
    expect(frameworkRefusal(new URIError('URI malformed'))).toBeNull();
  });

  it('leaves every other error to be printed as it is', () => {
    expect(frameworkRefusal(new Error('a bug'))).toBeNull();
    expect(
      frameworkRefusal(Object.assign(new Error('x'), { status: 500, expose: false })),
    ).toBeNull();
    expect(frameworkRefusal(Object.assign(new Error('x'), { status: 415 }))).toBeNull();
    // A 5xx is the server's fault, not a refused request, even when its message is exposed.
    for (const status of [500, 503])
      expect(frameworkRefusal(Object.assign(new Error('x'), { status, expose: true }))).toBeNull();
    expect(frameworkRefusal('text')).toBeNull();
    expect(frameworkRefusal(null)).toBeNull();
  });
});

describe("failedEventConversion: the framework's event middleware failing on a request", () => {
  const MIDDLEWARE =
    '/srv/node_modules/@google-cloud/functions-framework/build/src/middleware/background_event_to_cloud_event.js';
  const withStack = (e: Error, frames: string[]) => {
    e.stack = [String(e), ...frames.map((f) => `    at ${f}`)].join('\n');
    return e;
  };

  it('is told by the first frame of the stack, in the middleware, whatever the message says', () => {
    const thrown = withStack(
      new TypeError("Cannot use 'in' operator to search for 'context' in x"),
      [
        `isConvertableBackgroundEvent (${MIDDLEWARE}:46:31)`,
        '/srv/node_modules/router/index.js:311:9',
      ],
    );
    expect(failedEventConversion(thrown)).toBe(true);
    const legacy = withStack(new Error(''), [
      'legacyPubSubEventMiddleware (C:\\srv\\node_modules\\@google-cloud\\functions-framework\\build\\src\\pubsub_middleware.js:72:5)',
    ]);
    expect(failedEventConversion(legacy)).toBe(true);
    // A built-in the middleware called threw: V8 lists it first, with no file (Object.entries of
    // a null `metadata`, in its conversion of a Firebase Auth event).
    const builtin = withStack(new TypeError('Cannot convert undefined or null to object'), [
      'Function.entries (<anonymous>)',
      `backgroundEventToCloudEventMiddleware (${MIDDLEWARE}:146:43)`,
    ]);
    expect(failedEventConversion(builtin)).toBe(true);
  });

  it('is not an error thrown anywhere else, even one whose message names the middleware', () => {
    // The message may hold the request's text: a frame written in it does not count.
    const forged = withStack(new TypeError(`x\n    at f (${MIDDLEWARE}:1:1)`), [
      'handle (/srv/dist/src/function/handler.js:10:5)',
      `isConvertableBackgroundEvent (${MIDDLEWARE}:46:31)`,
    ]);
    expect(failedEventConversion(forged)).toBe(false);
    const invoker = withStack(new Error('a bug'), [
      'sendResponse (/srv/node_modules/@google-cloud/functions-framework/build/src/invoker.js:40:9)',
    ]);
    expect(failedEventConversion(invoker)).toBe(false);
    // Past a built-in, the first frame of code still decides.
    const ours = withStack(new TypeError('Cannot convert undefined or null to object'), [
      'Function.entries (<anonymous>)',
      'handle (/srv/dist/src/function/handler.js:10:5)',
      `backgroundEventToCloudEventMiddleware (${MIDDLEWARE}:146:43)`,
    ]);
    expect(failedEventConversion(ours)).toBe(false);
    const noStack = new Error('x');
    noStack.stack = undefined;
    expect(failedEventConversion(noStack)).toBe(false);
    expect(failedEventConversion(`TypeError: x\n    at f (${MIDDLEWARE}:1:1)`)).toBe(false);
    expect(failedEventConversion(null)).toBe(false);
  });
});

describe('traceFields: the request trace on its log lines', () => {
  const id = '105445aa7843bc8bf206b12000100000';
  const project = 'gov-home-proj';
  const full = `projects/${project}/traces/${id}`;
  it("reads X-Cloud-Trace-Context, else traceparent, in Google's projects/P/traces/T form", () => {
    expect(traceFields({ cloudTrace: `${id}/1;o=1`, traceparent: undefined }, project)).toEqual({
      [TRACE_FIELD]: full,
    });
    expect(traceFields({ cloudTrace: id, traceparent: undefined }, project)).toEqual({
      [TRACE_FIELD]: full,
    });
    const w3c = `00-${id.toUpperCase()}-00f067aa0ba902b7-01`;
    expect(traceFields({ cloudTrace: undefined, traceparent: w3c }, project)).toEqual({
      [TRACE_FIELD]: full,
    });
  });

  it('leaves out what is not a well-formed trace id: the headers are the caller’s', () => {
    for (const cloudTrace of ['', 'x/1', `${id}0/1`, `${id} {"a":1}`, '0'.repeat(32), `../${id}`])
      expect(traceFields({ cloudTrace, traceparent: undefined }, project), cloudTrace).toEqual({});
    expect(traceFields({ cloudTrace: undefined, traceparent: `00-${id}-xyz-01` }, project)).toEqual(
      {},
    );
    expect(traceFields({ cloudTrace: undefined, traceparent: undefined }, project)).toEqual({});
  });

  it('logs no trace without a project to name it by: a bare id is not a trace Cloud Logging links', () => {
    const headers = { cloudTrace: `${id}/1;o=1`, traceparent: undefined };
    expect(traceFields(headers, undefined)).toEqual({});
    for (const bad of ['', 'A', 'p/traces/x', 'proj"}', 'x'.repeat(100)])
      expect(traceFields(headers, bad), bad).toEqual({});
  });
});
