import type { IncomingMessage } from 'node:http';
import { cloudEvent, http, type CloudEvent } from '@google-cloud/functions-framework';
import { listOnOneLine, oneLine } from '../core/text.js';
import { cutText } from '../core/errors.js';
import { jsonLogger, withFields, type Logger } from '../log.js';
import type { Answer } from './handler.js';
import { consoleErrorLine, unexpectedLine } from './console-error.js';
import { MAX_BODY_BYTES, readTriggerEvent, refuseRequest, traceFields } from './request.js';

/**
 * The Cloud Function (2nd gen, functions-framework). Two entry points, one run:
 * - `governorHttp`: Cloud Scheduler calls it with an OIDC token: `POST /`, the JSON body optional.
 * - `governorEvent`: the Pub/Sub-trigger variant; the message data is the same optional JSON.
 * Either way the policy decides: a request may change the run only where `function.allow` says so.
 * A request's body is never logged (it may hold anything, a token pasted by mistake included).
 *
 * This module loads only what answering a request needs; the run itself (./handler.ts: the policy,
 * the planner, Google's clients) is loaded by the first request that runs, so that the function
 * listens as soon as functions-framework has started (a cold start; docs/performance.md). A
 * request refused here loads nothing.
 */
const log = jsonLogger(process.stdout);

// Express, which functions-framework serves with, answers a body its JSON parser refused with its
// own error page, and outside production that page carries the error's stack trace (express's
// finalhandler: "env" defaults to development). The framework builds its Express app after it has
// loaded this module (functions-framework's main.js: getUserFunction, then getServer), so a
// deployment that did not set NODE_ENV still answers as in production. The Terraform module sets it.
// Empty counts as unset, as for the governor's own variables (Express reads `NODE_ENV || …`).
if (!process.env.NODE_ENV) process.env.NODE_ENV = 'production';

// What reaches console.error is logged as one structured line, never as plain text: Cloud Run files
// a plain-text line with no severity (DEFAULT), an ERROR no alert on severity sees, and a stack
// trace printed as text is one entry a line
// (https://cloud.google.com/functions/1stgendocs/monitoring/logging: "Logs to standard output or
// standard error do not have an associated log level"). functions-framework prints with it what a
// function throws and an uncaught exception or unhandled rejection (its logger.js and invoker.js:
// `console.error('Uncaught exception')`, then `console.error(err.stack || err)`), Express its
// errors. A request's text never reaches the log: Express's default error handler prints a body the
// JSON parser refused, text included (see carriesRequestText); those errors are replaced by one
// line that says what happened. The framework's other refusals of a request (an unsupported charset
// or Content-Encoding, a body that does not inflate, a path its router cannot decode) are bad input
// too: one line saying why, not a stack trace; so is its event middleware throwing, before
// governorEvent runs, on a body it cannot read as an event (request.ts failedEventConversion),
// which Express answers 500 (docs/applying.md says why no 4xx can be made of it). Anything else is
// one ERROR line whose stack trace, when there is one, is where Error Reporting reads it
// (`message`, or `stack_trace` for an Error:
// https://cloud.google.com/error-reporting/docs/formatting-error-messages). consoleErrorLine never
// throws, whatever it is given; were writing the line to fail, nothing is thrown back at the caller
// either (the framework's handler of an uncaught exception).
console.error = (...args: unknown[]): void => {
  const line = consoleErrorLine(args, announcedFailures);
  if (line) log.log(line.severity, line.message, line.fields);
};

// console.warn likewise, at WARNING: functions-framework warns so, in plain text, when a raw
// Pub/Sub push reaches governorEvent at a path that names no topic (its pubsub_middleware.js).
console.warn = (...args: unknown[]): void => {
  const line = consoleErrorLine(args, new Set());
  if (line) log.log('WARNING', line.message, line.fields);
};

/** The text of each failed run's error thrown to the framework and not yet printed by it. */
const announcedFailures = new Set<string>();

/** A module loaded on first use; a failed load is tried again next time. */
function onFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | null = null;
  return () =>
    (loading ??= load().catch((e: unknown) => {
      loading = null;
      throw e;
    }));
}

const handler = onFirstUse(() => import('./handler.js'));
/** The organisation entry points' code, loaded on first use like the run's. */
const org = onFirstUse(() => import('./org.js'));

/** One run, the run's code loaded on first use. */
async function handle(
  payload: unknown,
  env: Readonly<Record<string, string | undefined>>,
  requestLog: Logger,
): Promise<Answer> {
  // The run deadline counts from here, before the run's code is loaded, on the time elapsed
  // (handler.ts handle).
  const receivedAt = performance.now();
  return (await handler()).handle(payload, env, requestLog, receivedAt);
}

/**
 * An HTTP entry point: the request checks every entry shares (request.ts), then `run`; an
 * unexpected failure is logged and answered 500 without its text. A refused request (4xx, here
 * or by the run) is one line saying why: WARNING, or ERROR for `named` entries (the organisation's
 * entry points, whose callers are the module's scheduler and push subscription), whose name also
 * leads their log lines, and whose `body` says what their body holds to a request that put a
 * query string instead (governorHttp's advice, a `mode` in the body, is refused by both). Every
 * line logged for the request carries its trace (traceFields).
 */
function serve(
  name: string,
  run: (body: unknown, requestLog: Logger) => Promise<Answer>,
  named: { body: string } | false = false,
): void {
  const prefix = named ? `${name}: ` : '';
  http(name, async (req, res) => {
    const requestLog = withFields(
      log,
      traceFields(
        { cloudTrace: req.get('x-cloud-trace-context'), traceparent: req.get('traceparent') },
        process.env.GOOGLE_CLOUD_PROJECT,
      ),
    );
    const logRefusal = (answer: Answer): void =>
      requestLog.log(
        named ? 'ERROR' : 'WARNING',
        `${prefix}refused a request (${answer.status}): ${cutText(oneLine(listOnOneLine(String(answer.body.error))), 2000)}`,
      );
    const queryAt = req.originalUrl.indexOf('?');
    const bodyBytes = Math.max(
      req.rawBody?.length ?? 0,
      Number(req.get('content-length')) || 0,
      await unreadBodyBytes(req),
    );
    const refusal = refuseRequest(
      {
        method: req.method,
        path: req.path,
        query: queryAt < 0 ? '' : req.originalUrl.slice(queryAt + 1),
        contentType: req.get('content-type'),
        bodyBytes,
      },
      named ? named.body : undefined,
    );
    if (refusal) {
      logRefusal(refusal);
      res.set(refusal.headers ?? {});
      res.status(refusal.status).json(refusal.body);
      return;
    }
    try {
      // An empty body is no request, whatever type it declares: the framework's parsers make it
      // `{}`, `''` or, for a type none of them reads, an empty Buffer (its raw parser).
      const answer = await run(bodyBytes === 0 ? undefined : req.body, requestLog);
      if (answer.status >= 400 && answer.status < 500) logRefusal(answer);
      if (answer.status === 204) res.status(204).end();
      else res.status(answer.status).json(answer.body);
    } catch (e) {
      logUnexpected(requestLog, prefix, e);
      res.status(500).json({ error: 'unexpected failure; see the logs' });
    }
  });
}

/**
 * The bytes of a body none of the framework's parsers read, counted up to one past MAX_BODY_BYTES
 * and not kept. Its parsers read a body by its Content-Type, the last of them of every type, which
 * a request with no Content-Type, or one that does not parse, does not have (its server.js, the
 * raw parser; type-is); such a body sent with Content-Length is measured by it, but one sent chunked
 * (Transfer-Encoding, no Content-Length) has no other measure: taken as empty, it would be a run
 * with no request, not the 415 the same body with its length gets. What is left unread past the
 * count is discarded by Node once the answer is sent.
 */
function unreadBodyBytes(req: IncomingMessage & { rawBody?: Buffer }): Promise<number> {
  if (req.rawBody !== undefined || req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(0);
  }
  if (req.readableEnded || !req.readable) return Promise.resolve(0);
  return new Promise((resolve) => {
    let bytes = 0;
    const done = (): void => {
      req.off('data', onData).off('end', done).off('error', done).off('close', done);
      req.pause();
      resolve(bytes);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > MAX_BODY_BYTES) done();
    };
    req.on('data', onData).once('end', done).once('error', done).once('close', done);
  });
}

/** An unexpected failure, in one error event for every entry point (unexpectedLine), with the request's trace. */
function logUnexpected(requestLog: Logger, prefix: string, e: unknown): void {
  const line = unexpectedLine(prefix, e);
  requestLog.log(line.severity, line.message, line.fields);
}

serve('governorHttp', (body, requestLog) => handle(body, process.env, requestLog));

cloudEvent('governorEvent', async (event: CloudEvent<unknown>) => {
  // The framework copies the request's `traceparent` header onto the event.
  const traceparent: unknown = event.traceparent;
  const eventLog = withFields(
    log,
    traceFields(
      {
        cloudTrace: undefined,
        traceparent: typeof traceparent === 'string' ? traceparent : undefined,
      },
      process.env.GOOGLE_CLOUD_PROJECT,
    ),
  );
  const read = readTriggerEvent(event.data);
  if ('ignored' in read) {
    eventLog.log('ERROR', `ignored ${read.ignored}`);
    return;
  }
  const payload = read.payload;
  let answer: Answer;
  try {
    answer = await handle(payload, process.env, eventLog);
  } catch (e) {
    // Logged as governorHttp logs it, not left to the framework, which would print the stack as
    // the line's text, without the request's trace.
    logUnexpected(eventLog, '', e);
    throw announcedError('unexpected failure; see the logs');
  }
  if (answer.status === 400 || answer.status === 403) {
    // The same rules as the HTTP entry point: whoever can publish to the trigger topic gets no
    // more than the policy allows. Redelivery would be refused again: let the message go.
    eventLog.log('ERROR', `ignored a trigger message: ${String(answer.body.error)}`, {
      faults: answer.body.faults,
    });
    return;
  }
  // A failed run throws so that the invocation is reported as failed (logs, error metrics). It is
  // not redelivered: the module's trigger sets RETRY_POLICY_DO_NOT_RETRY ("if a function
  // invocation terminates with an error, the function is not invoked again and the event is
  // dropped": https://cloud.google.com/functions/docs/writing/retries), and the next scheduled
  // run is the retry (a redelivered, stale tick would run again for up to a day, behind fresh ones).
  if (answer.status >= 500) throw runFailed(answer);
});

/**
 * What a failed run throws: functions-framework answers 500 and prints the error's `stack`
 * (its logger.js, `console.error(err.stack || err)`). The handler has already logged why, in one
 * ERROR line; so the stack is one line too, with no frames of the function's code.
 */
function runFailed(answer: Answer): Error {
  const why = String(answer.body.error ?? answer.body.outcome);
  return announcedError(`run failed: ${cutText(listOnOneLine(why), 300)}`);
}

/** An error to fail the invocation with, whose print by the framework is left out of the log. */
function announcedError(message: string): Error {
  const error = new Error(message);
  error.stack = error.message;
  announcedFailures.add(error.stack);
  return error;
}

/**
 * Organisation scale (docs/organization.md): `governorDispatch` sends one work message per project
 * to the work topic; `governorUnit` receives each, pushed by the topic's subscription, and
 * governs that one project. The same request checks as `governorHttp` apply to both.
 */
serve(
  'governorDispatch',
  async (body, requestLog) => {
    // The search and send deadlines count from here, before the code is loaded, on the time
    // elapsed (org.ts handleDispatch).
    const receivedAt = performance.now();
    return (await org()).handleDispatch(body, process.env, requestLog, receivedAt);
  },
  { body: 'governorDispatch takes no request: its body is empty or {}' },
);
serve(
  'governorUnit',
  async (body, requestLog) => {
    // The run deadline counts from here, before the run's code is loaded, on the time elapsed
    // (org.ts handleUnitPush).
    const receivedAt = performance.now();
    return (await org()).handleUnitPush(body, process.env, requestLog, receivedAt);
  },
  { body: 'governorUnit takes a Pub/Sub push request in its body' },
);
