import { Instant } from '../core/duration.js';
import type { RestoreTarget } from '../core/restore.js';
import { MAX_INSTANCE_COUNT } from '../core/service.js';
import { cutText } from '../core/errors.js';

/**
 * The governor's own annotations on a service: its per-service state, so the function is
 * stateless. Only these keys are ever written; labels and the revision template never are.
 */
const ANNOTATION_PREFIX = 'gpu-governor.dev/';
export const ANNOTATIONS = {
  /** ISO time of the governor's last raise of the cap (starts the scale-down delay). */
  lastChanged: `${ANNOTATION_PREFIX}last-changed`,
  /** ISO time of the governor's last decrease of the cap (starts the reverse delay). */
  lastLowered: `${ANNOTATION_PREFIX}last-lowered`,
  /** The service-level max before the governor first changed it ("" when it was unset). */
  originalMax: `${ANNOTATION_PREFIX}original-max`,
  /** The reason of the governor's last write, cut to a readable length. */
  reason: `${ANNOTATION_PREFIX}reason`,
  /**
   * The governor that last wrote the service (its name and its state store's id), and when (the
   * wall clock, ISO). A governor that finds another one's stamp in a pool, fresher than a lease,
   * writes nothing there: two governors that do not share a state store (so not a lease) see
   * each other here.
   */
  writer: `${ANNOTATION_PREFIX}writer`,
  writtenAt: `${ANNOTATION_PREFIX}written-at`,
} as const;

/** The governor's last raise, from its annotation; null when absent or not a valid time. */
export function lastChangedAt(annotations: Record<string, string>): string | null {
  return annotatedTime(annotations, ANNOTATIONS.lastChanged);
}

/** The governor's last decrease, from its annotation; null when absent or not a valid time. */
export function lastLoweredAt(annotations: Record<string, string>): string | null {
  return annotatedTime(annotations, ANNOTATIONS.lastLowered);
}

/**
 * The time of a governor's stamp (ANNOTATIONS.writtenAt), read the same strict way: `absent` when
 * there is none, `unreadable` when there is text that is no such time ("garbage 2026", a time
 * without its offset), else the time. The two are not the same: a stamp removed ends another
 * governor's hold on a pool, an unreadable one does not (reconcile/room.ts, otherWriter).
 */
export function writtenAtOf(
  annotations: Record<string, string>,
): { absent: true } | { unreadable: string } | { at: string } {
  const text = annotations[ANNOTATIONS.writtenAt];
  if (!text) return { absent: true };
  const at = annotatedTime(annotations, ANNOTATIONS.writtenAt);
  return at === null ? { unreadable: text } : { at };
}

/**
 * An annotation anyone may have edited, read only as what the governor writes: an RFC 3339 time
 * with its offset, of a four-digit year (the snapshot's `Instant`). `Date.parse` alone took
 * "garbage 2026" as 2026-01-01, read a time without an offset in the machine's own zone (two
 * machines, two instants), and let through a year past 9999 that the snapshot then refused. Any
 * other text reads as no time at all: no delay starts from it.
 */
function annotatedTime(annotations: Record<string, string>, key: string): string | null {
  const text = annotations[key];
  if (!text || !Instant.safeParse(text).success) return null;
  return new Date(Date.parse(text)).toISOString();
}

/** Per service the governor has changed (it carries the annotation), what `restore` puts back. */
export function originalMaxes(
  services: readonly {
    project: string;
    region: string;
    name: string;
    etag: string;
    annotations: Record<string, string>;
    revisionMaxInstances: number | null;
  }[],
): RestoreTarget[] {
  const out: RestoreTarget[] = [];
  for (const s of services) {
    const original = s.annotations[ANNOTATIONS.originalMax];
    if (original === undefined) continue; // never changed by the governor
    const id = { project: s.project, region: s.region, name: s.name, etag: s.etag };
    if (original === '') {
      const to = s.revisionMaxInstances;
      out.push({ ...id, to: to !== null && to >= 1 ? to : null, source: 'revision-max' });
      continue;
    }
    const to = maxOf(original);
    out.push(
      to === null
        ? { ...id, to: null, source: 'original-max', unreadable: cutText(original, 200) }
        : { ...id, to, source: 'original-max' },
    );
  }
  return out;
}

/**
 * A max as the governor writes it in the annotation (String of a whole number): decimal digits
 * only, from 1 to what Cloud Run's `max_instance_count` (an int32) holds; null for anything else.
 * The annotation is anyone's to edit, and Number() would read "0x10", "1e3", " 4 " or "4.0" as
 * maxes nobody wrote.
 */
function maxOf(text: string): number | null {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_INSTANCE_COUNT ? n : null;
}
