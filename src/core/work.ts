import { z } from 'zod';
import { zodFaults, capFaults } from './document.js';
import { InputError } from '../errors.js';
import { RegionName } from './units.js';

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
  project: z
    .string()
    .regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'expected a project id such as "my-project"'),
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
export function messageAgeMs(message: WorkMessage, nowMs: number): number {
  return nowMs - Date.parse(message.issuedAt);
}

/** One line saying why a message is not worth governing now, or null when it is. */
export function staleReason(
  message: WorkMessage,
  nowMs: number,
  staleAfterMs: number,
): string | null {
  const age = messageAgeMs(message, nowMs);
  // A minute of skew between the dispatcher's clock and this one is tolerated.
  if (age < -60_000) return `issued ${Math.round(-age / 1000)} s in the future`;
  if (age > staleAfterMs)
    return `issued ${Math.round(age / 1000)} s ago, more than ${Math.round(staleAfterMs / 1000)} s: a newer dispatch has sent its own`;
  return null;
}
