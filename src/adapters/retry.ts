/**
 * How the Google adapters retry a call: a bounded number of attempts, each with its own deadline,
 * separated by exponential backoff with jitter. Only transient gRPC failures are retried; a
 * missing resource, a denied permission or a bad request fails at once, since trying again cannot
 * help and would only delay the report.
 */
import { status } from '@grpc/grpc-js';

import { InputError } from '../errors.js';
import type { Fault } from '../errors.js';

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
 * brief outage or a throttling burst, and gives up within about two minutes in the worst case,
 * well inside one reconcile run.
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
 * google-gax's retry loop for an idempotent read: retried on UNAVAILABLE, DEADLINE_EXCEEDED and
 * RESOURCE_EXHAUSTED, waiting `random() x delay`, the delay starting at `minBackoffMs` and doubling
 * up to `maxBackoffMs`. gax's `maxRetries` bounds the number of calls in all, the first one
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

/** Call options for an idempotent read: transient codes retried, a deadline per attempt. */
export function gaxReadOptions(policy: RetryPolicy) {
  return {
    timeout: policy.attemptTimeoutMs,
    retry:
      policy.maxAttempts <= 1
        ? null
        : {
            retryCodes: [status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED],
            backoffSettings: gaxBackoff(policy),
          },
  };
}

/** Options without their undefined keys, to spread over the defaults. */
export function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(values).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
