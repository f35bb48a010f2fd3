import { z } from 'zod';
import { zodFaults, capFaults } from './document.js';
import { MAX_CLOCK_SKEW_MS } from './duration.js';
import { InputError } from './errors.js';
import { ProjectId, RegionName } from './units.js';

/**
 * A work message of the fan-out: "govern this project (or this region of it) now". A dispatch
 * run publishes one per unit (src/core/units.ts) to the work topic; the unit entry point of the
 * function governs exactly that unit (its own lease, state and run record). Whoever can publish to the topic can send anything, so
 * a message is parsed strictly, its size capped before it is decoded, and a bad one is refused
 * before anything is read or written.
 */

/** Bytes of message data read at most: a real message is about 200. */
export const MAX_WORK_MESSAGE_BYTES = 4 * 1024;

export const WorkMessage = z.strictObject({
  version: z.literal(1),
  kind: z.literal('govern'),
  /** Any project a policy may list (a dispatch sends the policy's own projects as they are). */
  project: ProjectId,
  /** Present: govern only this region of the project (a regional unit, `fanout.splitAbove`). */
  region: RegionName.optional(),
  /** The dispatch run that sent it. */
  dispatchId: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected a dispatch id'),
  /** When it was sent (wall clock): a message older than `fanout.staleAfter` is dropped. */
  issuedAt: z.iso.datetime({ offset: true }),
});
export type WorkMessage = z.infer<typeof WorkMessage>;

/** Parses a work message's decoded data; InputError (capped faults) when it is not one. */
export function parseWorkMessage(data: Buffer): WorkMessage {
  if (data.length > MAX_WORK_MESSAGE_BYTES) {
    throw new InputError(
      `the work message has ${data.length} bytes: at most ${MAX_WORK_MESSAGE_BYTES} are read`,
      [],
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch {
    // Not the parser's message: it quotes the text, which is someone else's.
    throw new InputError(`the work message is not JSON (${data.length} bytes; not logged)`, []);
  }
  const parsed = WorkMessage.safeParse(raw);
  if (!parsed.success)
    throw new InputError('the work message is invalid', capFaults(zodFaults(parsed.error)));
  return parsed.data;
}

/** How old a message is at `nowMs` (negative: from the future, beyond clock skew). */
function messageAgeMs(message: WorkMessage, nowMs: number): number {
  return nowMs - Date.parse(message.issuedAt);
}

/** One line saying why a message is not worth governing now, or null when it is. */
export function staleReason(
  message: WorkMessage,
  nowMs: number,
  staleAfterMs: number,
): string | null {
  const age = messageAgeMs(message, nowMs);
  // The clock skew allowed everywhere (a minute) between the dispatcher's clock and this one.
  if (age < -MAX_CLOCK_SKEW_MS) return `issued ${Math.round(-age / 1000)} s in the future`;
  if (age > staleAfterMs)
    return `issued ${Math.round(age / 1000)} s ago, more than ${Math.round(staleAfterMs / 1000)} s: a newer dispatch has sent its own`;
  return null;
}

/**
 * Pub/Sub's dead-letter policy counts delivery attempts and moves a message to the dead-letter
 * topic after `max_delivery_attempts`, which must be between 5 and 100 (`DeadLetterPolicy` in
 * `google/pubsub/v1/pubsub.proto` of `@google-cloud/pubsub`;
 * https://cloud.google.com/java/docs/reference/google-cloud-pubsub/latest/com.google.pubsub.v1.DeadLetterPolicy).
 * A push request carries the attempt as `deliveryAttempt` (https://cloud.google.com/pubsub/docs/push,
 * the request "with maximum values"); `ReceivedMessage.delivery_attempt` of the same proto is 0
 * when the subscription has no dead-letter policy. Google's Pub/Sub emulator sends no
 * `deliveryAttempt` at all, even with a dead-letter policy (tried: docs/organization.md).
 */
export const MIN_DELIVERY_ATTEMPTS = 5;
export const MAX_DELIVERY_ATTEMPTS = 100;

/**
 * Whether a failed delivery of a work message was its last: `last` when its attempt reached the
 * subscription's max; `unknown` when the push gave no attempt (or 0) or the function was not told
 * the max, which is treated as possibly the last (fail safe: a unit dead-lettered in silence is
 * worse than an alert for a unit that a later delivery completes); `retried` otherwise.
 */
export type DeliveryVerdict =
  | { kind: 'last'; attempt: number; maxAttempts: number }
  | { kind: 'unknown'; attempt: number | null; maxAttempts: number | null; why: string }
  | { kind: 'retried'; attempt: number; maxAttempts: number };

export function deliveryVerdict(
  attempt: number | undefined,
  maxAttempts: number | null,
): DeliveryVerdict {
  const known = attempt !== undefined && attempt >= 1 ? attempt : null;
  if (known === null)
    return {
      kind: 'unknown',
      attempt: null,
      maxAttempts,
      why: 'the push request carried no deliveryAttempt (a subscription without a dead-letter policy, or an emulator)',
    };
  if (maxAttempts === null)
    return {
      kind: 'unknown',
      attempt: known,
      maxAttempts: null,
      why: 'the function was not told the subscription max_delivery_attempts (GOVERNOR_MAX_DELIVERY_ATTEMPTS)',
    };
  return known >= maxAttempts
    ? { kind: 'last', attempt: known, maxAttempts }
    : { kind: 'retried', attempt: known, maxAttempts };
}
