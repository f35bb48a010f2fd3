/**
 * How the Google adapters retry a call: a bounded number of attempts, each with its own deadline,
 * separated by exponential backoff with jitter. Only transient gRPC failures are retried; a
 * missing resource, a denied permission or a bad request fails at once, since trying again cannot
 * help and would only delay the report.
 */
import { status } from '@grpc/grpc-js';

import { InputError } from '../core/errors.js';
import type { Fault } from '../core/errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first one included (1 = no retry). */
  maxAttempts: number;
  /** Wait before the first retry; each later wait doubles, up to `maxBackoffMs`. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Deadline of one attempt (one RPC), so that a silent server cannot hold a call forever. */
  attemptTimeoutMs: number;
}

/**
 * Five attempts spaced 0.25 s, 0.5 s, 1 s, 2 s (with jitter), each bounded to 20 s: rides out a
 * brief outage or a throttling burst, and a call never answered gives up within about two
 * minutes, well inside one reconcile run. The attempts google-gax makes (UNAVAILABLE,
 * DEADLINE_EXCEEDED) and those withRetryInfo makes (RESOURCE_EXHAUSTED) are counted apart, each
 * of the latter starting google-gax's count afresh: a call failing both ways in turn may make up
 * to `maxAttempts` squared attempts, and the caller's deadline is what bounds it then.
 */
export const defaultRetryPolicy: Readonly<RetryPolicy> = {
  maxAttempts: 5,
  minBackoffMs: 250,
  maxBackoffMs: 8_000,
  attemptTimeoutMs: 20_000,
};

/** The codes Google documents as transient: retrying the same request may succeed. */
const transientCodes: ReadonlySet<number> = new Set([
  status.CANCELLED,
  status.UNKNOWN,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.INTERNAL,
  status.UNAVAILABLE,
]);

/** The gRPC status code an error carries, if it carries one. */
export function grpcCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'number' ? error.code : undefined;
}

/** The name of a gRPC status code (`UNAVAILABLE`), or `undefined` for an unknown code. */
export function grpcCodeName(code: number | undefined): string | undefined {
  return code === undefined ? undefined : status[code];
}

/** Whether an error from a Google client is worth another attempt. */
export function isTransient(error: unknown): boolean {
  const code = grpcCode(error);
  return code !== undefined && transientCodes.has(code);
}

/** Checks a policy's numbers, so that a typo cannot turn into an endless or zero-attempt loop. */
export function checkRetryPolicy(policy: RetryPolicy): RetryPolicy {
  const { maxAttempts, minBackoffMs, maxBackoffMs, attemptTimeoutMs } = policy;
  const faults: Fault[] = [];
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    faults.push({ path: 'maxAttempts', message: `must be an integer >= 1, not ${maxAttempts}` });
  }
  for (const [path, value] of Object.entries({ minBackoffMs, maxBackoffMs, attemptTimeoutMs })) {
    if (!Number.isFinite(value) || value < 0) {
      faults.push({ path, message: `must be a finite number of milliseconds >= 0, not ${value}` });
    }
  }
  if (maxBackoffMs < minBackoffMs) {
    faults.push({ path: 'maxBackoffMs', message: `is below minBackoffMs (${minBackoffMs})` });
  }
  if (attemptTimeoutMs === 0) faults.push({ path: 'attemptTimeoutMs', message: 'must be above 0' });
  if (faults.length > 0) throw new InputError('Invalid retry policy', faults);
  return policy;
}

/**
 * google-gax's retry loop for an idempotent read: retried on UNAVAILABLE and DEADLINE_EXCEEDED
 * (RESOURCE_EXHAUSTED is {@link withRetryInfo}'s), waiting `random() x delay`, the delay starting
 * at `minBackoffMs` and doubling up to `maxBackoffMs`. gax's `maxRetries` bounds the number of calls in all, the first one
 * included (google-gax 5 `normalCalls/retries.js`), so it takes `maxAttempts` as it is. The
 * per-attempt deadline stays `attemptTimeoutMs` (multiplier 1), so a silent server cannot hold a
 * call for longer.
 */
export function gaxBackoff(policy: RetryPolicy) {
  return {
    maxRetries: policy.maxAttempts,
    initialRetryDelayMillis: policy.minBackoffMs,
    retryDelayMultiplier: 2,
    maxRetryDelayMillis: policy.maxBackoffMs,
    initialRpcTimeoutMillis: policy.attemptTimeoutMs,
    rpcTimeoutMultiplier: 1,
    maxRpcTimeoutMillis: policy.attemptTimeoutMs,
  };
}

/**
 * Call options for an idempotent read: UNAVAILABLE and DEADLINE_EXCEEDED retried by google-gax, a
 * deadline per attempt. RESOURCE_EXHAUSTED is left to {@link withRetryInfo}, around the call:
 * gax's loop waits its own backoff only and drops the server's RetryInfo.
 */
export function gaxReadOptions(policy: RetryPolicy) {
  return {
    timeout: policy.attemptTimeoutMs,
    retry:
      policy.maxAttempts <= 1
        ? null
        : {
            retryCodes: [status.UNAVAILABLE, status.DEADLINE_EXCEEDED],
            backoffSettings: gaxBackoff(policy),
          },
  };
}

/**
 * The longest a call waits in all for the retry delays RESOURCE_EXHAUSTED asks for: a minute, the
 * window of the per-minute quotas (Cloud Run's "Read requests per minute per region" and "Write
 * requests per minute per region", Monitoring's per-minute time series queries). A delay that
 * would take the call past it is not waited: the call fails at once, naming the delay. So one
 * refused read costs a run at most a minute, well within its deadline (240 s by default), and the
 * observation can still report it unread (fail static) rather than the run ending at its deadline
 * with nothing planned; a refused write is left for the next run.
 */
export const MAX_RETRY_INFO_DELAY_MS = 60_000;

/**
 * The retry delay a Google error asks for, in ms: its `google.rpc.RetryInfo` detail, which
 * google-gax decodes from the `grpc-status-details-bin` trailer into `statusDetails`. "Clients
 * should wait until `retry_delay` amount of time has passed since receiving the error response
 * before retrying. If retrying requests also fail, clients should use an exponential backoff
 * scheme to gradually increase the delay between retries based on `retry_delay`"
 * (https://cloud.google.com/dotnet/docs/reference/Google.Api.CommonProtos/latest/Google.Rpc.RetryInfo).
 * Undefined when the error carries none.
 */
export function retryDelayOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('statusDetails' in error)) return undefined;
  const details = error.statusDetails;
  if (!Array.isArray(details)) return undefined;
  for (const detail of details as unknown[]) {
    if (typeof detail !== 'object' || detail === null || !('retryDelay' in detail)) continue;
    const delay = detail.retryDelay;
    if (typeof delay !== 'object' || delay === null) continue;
    const seconds = 'seconds' in delay ? Number(delay.seconds ?? 0) : 0;
    const nanos = 'nanos' in delay ? Number(delay.nanos ?? 0) : 0;
    const ms = seconds * 1000 + nanos / 1e6;
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  return undefined;
}

/**
 * Runs a Google call (a read is itself retried by google-gax on UNAVAILABLE and DEADLINE_EXCEEDED;
 * Cloud Run's UpdateService is not: adapters/cloud-run.ts writeOptions) and tries it again on
 * RESOURCE_EXHAUSTED, up to `maxAttempts` calls in all: after the delay the error's
 * RetryInfo asks for (retryDelayOf) plus the policy's backoff with full jitter, or the backoff
 * alone when it asks for none. A delay over {@link MAX_RETRY_INFO_DELAY_MS} is not waited: the
 * error is thrown at once, its message naming the delay; nor is the call sent again once the
 * waits, backoffs included, have spent that minute. Once `signal` is aborted (the caller
 * gave up on the call) nothing is sent again: the wait ends and the refusal is thrown. Only for
 * calls that a refusal leaves unapplied, so that sending again cannot apply anything twice (a
 * 429 is a refusal before any work).
 */
export async function withRetryInfo<T>(
  policy: RetryPolicy,
  call: () => Promise<T>,
  sleep: (ms: number, signal?: AbortSignal) => Promise<void> = abortableSleep,
  signal?: AbortSignal,
): Promise<T> {
  let backoff = policy.minBackoffMs;
  let waited = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (grpcCode(error) !== status.RESOURCE_EXHAUSTED) throw error;
      const asked = retryDelayOf(error);
      if (asked !== undefined && waited + asked > MAX_RETRY_INFO_DELAY_MS)
        throw tooLong(error, asked);
      // Once the minute is spent nothing is sent again: a wait clamped to what is left of it
      // would be none, and the call sent again at once, over and over.
      if (attempt >= policy.maxAttempts || signal?.aborted || waited >= MAX_RETRY_INFO_DELAY_MS)
        throw error;
      // The backoff added to a delay asked stays within the minute too: the delays asked fit it
      // (above), and the jitter takes at most what is left of it.
      const wait = Math.min(
        (asked ?? 0) + Math.random() * backoff,
        Math.max(asked ?? 0, MAX_RETRY_INFO_DELAY_MS - waited),
      );
      waited += wait;
      await sleep(wait, signal);
      if (signal?.aborted) throw error;
      backoff = Math.min(backoff * 2, policy.maxBackoffMs);
    }
  }
}

/**
 * The calls of one adapter, each run by {@link withRetryInfo} under the adapter's policy: `retry`
 * runs one, `close` is called as the adapter's clients close. Once closed, a call still waiting a
 * retry delay sends nothing more and fails at once, as does one whose caller's own `signal` (a
 * write's, MaxInstancesUpdate.signal) is aborted. The run stops waiting for a call at its deadline
 * (reconcile/act.ts beforeDeadline) and closes its clients once it ends; without this, such a call
 * would wait on (up to a minute) and be sent again after its run, and its timer would keep the
 * command line's process alive until then.
 */
export interface ClosingRetries {
  readonly retry: <T>(call: () => Promise<T>, signal?: AbortSignal) => Promise<T>;
  readonly close: () => void;
}

/** {@link ClosingRetries} under `policy`: one per adapter, its `close` called in the adapter's. */
export function closingRetries(policy: RetryPolicy): ClosingRetries {
  const closing = new AbortController();
  return {
    retry: (call, signal) =>
      withRetryInfo(
        policy,
        call,
        undefined,
        signal ? AbortSignal.any([signal, closing.signal]) : closing.signal,
      ),
    close: () => closing.abort(),
  };
}

/** Waits `ms`, or less when `signal` is aborted first. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The error, its text saying how long Google asked to wait (not waited). */
function tooLong(error: unknown, delayMs: number): unknown {
  if (!(error instanceof Error)) return error;
  const said = `retry after ${Math.ceil(delayMs / 1000)} s, past the ${MAX_RETRY_INFO_DELAY_MS / 1000} s a call waits in all`;
  if ('details' in error && typeof error.details === 'string' && error.details !== '')
    error.details = `${error.details} (${said})`;
  else error.message = `${error.message} (${said})`;
  return error;
}

/** Options without their undefined keys, to spread over the defaults. */
export function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(values).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
