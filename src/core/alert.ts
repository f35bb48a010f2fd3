import { z } from 'zod';
import { cutUtf8, utf8Length } from './text.js';
import { cutText } from './errors.js';

/**
 * The alert message: one JSON object per event, the subscribers' contract (docs/alerts.md).
 * Conditions (`firing` / `resolved`) and events (`event`) share this shape.
 */
export const ALERT_TYPES = [
  'rebalance.applied',
  'rebalance.planned',
  'service.starved',
  'pool.pressure',
  'pool.infeasible',
  'pool.over-budget',
  'quota.changed',
  'apply.failed',
  'governor.degraded',
  'service.misconfigured',
  // Quota requests (docs/quota-requests.md).
  'quota.requested',
  'quota.granted',
  'quota.denied',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const Severity = z.enum(['INFO', 'WARNING', 'ERROR', 'CRITICAL']);
export type Severity = z.infer<typeof Severity>;

export const Alert = z.strictObject({
  version: z.literal(1),
  id: z.string().min(1),
  type: z.enum(ALERT_TYPES),
  status: z.enum(['firing', 'resolved', 'event']),
  severity: Severity,
  // Never empty: an alert about no pool is ordered by its project (its Pub/Sub ordering key), and
  // Pub/Sub takes no empty key with message ordering. A stored one without it (a hand edit) is
  // then unreadable, set aside, rather than refused by the publisher at every run.
  project: z.string().min(1),
  region: z.string().nullable(),
  accelerator: z.string().nullable(),
  zonalRedundancy: z.boolean().nullable(),
  service: z.string().nullable(),
  summary: z.string().min(1),
  details: z.record(z.string(), z.unknown()),
  runId: z.string().min(1),
  time: z.iso.datetime({ offset: true }),
  dedupKey: z.string().min(1),
});
export type Alert = z.infer<typeof Alert>;

/**
 * An alert (or the condition record of one, core/notify.ts) told again: its summary replaced and
 * `details` laid over its details, every other field, and the order of the fields, as it was, so
 * that its JSON differs in these alone. How a plan's conditions are told as the run's writes left
 * them (core/conditions.ts), a planned event before its outcome is known (core/run-alerts.ts,
 * core/quota-requests.ts) and a condition handed back between a project and its regional units.
 */
export function restated<T extends Pick<Alert, 'summary' | 'details'>>(
  a: T,
  summary: string,
  details: Record<string, unknown>,
): T {
  return { ...a, summary, details: { ...a.details, ...details } };
}

/**
 * The most bytes of UTF-8 Pub/Sub takes in one attribute value, and in an ordering key ("1 KB"):
 * https://cloud.google.com/pubsub/quotas#resource_limits. It refuses a longer one with
 * INVALID_ARGUMENT, the whole message, and with it every message of its ordering key. The
 * governor's own names are far shorter (a project id is at most 30 characters, a Cloud Run
 * service name at most 49), but a message read back from the store may name anything (a hand
 * edit): its attributes and ordering key are cut to fit ({@link alertAttributes}, run-alerts.ts
 * orderingKey), never its data, which keeps the names whole.
 */
export const MAX_ATTRIBUTE_VALUE_BYTES = 1_024;
export const MAX_ORDERING_KEY_BYTES = 1_024;

/**
 * Pub/Sub attributes of an alert, so that subscriptions can filter without parsing `data`; each
 * value cut to {@link MAX_ATTRIBUTE_VALUE_BYTES} (ending in `…`).
 */
export function alertAttributes(a: Alert): Record<string, string> {
  return Object.fromEntries(
    Object.entries(wholeAttributes(a)).map(([key, value]) => [
      key,
      cutUtf8(value, MAX_ATTRIBUTE_VALUE_BYTES),
    ]),
  );
}

/** The attributes an alert names, before {@link alertAttributes} cuts them to fit. */
export function wholeAttributes(a: Alert): Record<string, string> {
  const attrs: Record<string, string> = {
    type: a.type,
    severity: a.severity,
    status: a.status,
    project: a.project,
  };
  if (a.region !== null) attrs.region = a.region;
  if (a.service !== null) attrs.service = a.service;
  return attrs;
}

/**
 * The most bytes of JSON one alert may have: what one outbox entry holds. The Firestore store keeps
 * an entry in one document, at most 1 MiB (1,048,576 bytes) with its name and other fields
 * (https://cloud.google.com/firestore/quotas; a name here is at most a few KB:
 * https://cloud.google.com/firestore/docs/storage-size), and Pub/Sub takes messages of up to
 * 10 MB (https://cloud.google.com/pubsub/quotas#resource_limits). Every store refuses a larger
 * entry (ports/state.ts checkOutboxEntries); the run fits its events first (fitAlert).
 */
export const MAX_ALERT_BYTES = 1_000_000;

/** The bytes of an alert as it is stored and published (its JSON text in UTF-8). */
export function alertBytes(a: Alert): number {
  return utf8Length(JSON.stringify(a));
}

/** How many items a list of an alert's details kept when it was cut, of how many it had. */
const ListCut = z.object({ kept: z.number(), of: z.number() });
type ListCut = z.infer<typeof ListCut>;

/** Per list cut, by its key in the details: `details.truncated` of a fitted alert. */
const Truncated = z.record(z.string(), ListCut);

/** An alert fitted by {@link fitAlert}, and what was cut of it. */
interface FittedAlert {
  alert: Alert;
  /**
   * `alert.details.truncated`: per list cut, how many items it kept of how many; null when the
   * alert is returned as it was given (it fits, or has no list left to cut).
   */
  truncated: Record<string, ListCut> | null;
}

/**
 * `a` within `maxBytes` of JSON. The lists of its `details` grow with the fleet (a pool's
 * `writes`, `skipped` or `changes`: about 150 bytes a service, so 7,000 services of one pool
 * are over 1 MiB): the longest is cut from its end, then the next, until the alert fits, and
 * `details.truncated` says, per list cut, how many items it kept of how many. A list one level
 * down, in an object of the details, is cut the same way and named by its path (a resolved
 * message's `lastDetails.floorsBy`). The summary, which counts them all, is left whole, and so is
 * everything else; an alert that still does not fit (no list left to cut) is returned as it is
 * (fitWhole goes further).
 */
export function fitAlert(a: Alert, maxBytes: number = MAX_ALERT_BYTES): FittedAlert {
  const asItIs = { alert: a, truncated: null };
  if (alertBytes(a) <= maxBytes) return asItIs;
  const details: Record<string, unknown> = { ...a.details };
  // An alert fitted before (a planned event, settled since) keeps the counts it had.
  const truncated: Record<string, ListCut> = Truncated.safeParse(a.details['truncated']).data ?? {};
  const fitted = () => ({ ...a, details: { ...details, truncated } });
  for (;;) {
    const alert = fitted();
    const excess = alertBytes(alert) - maxBytes;
    if (excess <= 0) return { alert, truncated };
    const longest = listsOf(details).sort((x, y) => y.bytes - x.bytes)[0];
    if (longest === undefined) return asItIs;
    // Drop from the end the fewest items whose JSON (and a comma each) covers the excess, and a
    // few more bytes for the count in `truncated`, which grows as they go.
    let freed = 0;
    let keep = longest.items.length;
    while (keep > 0 && freed < excess + 64) {
      keep -= 1;
      freed += utf8Length(JSON.stringify(longest.items[keep]) ?? 'null') + 1;
    }
    const name = longest.inner === null ? longest.key : `${longest.key}.${longest.inner}`;
    const of = truncated[name]?.of ?? longest.items.length;
    const cut = longest.items.slice(0, keep);
    details[longest.key] =
      longest.inner === null ? cut : { ...(details[longest.key] as object), [longest.inner]: cut };
    truncated[name] = { kept: keep, of };
  }
}

/** A list of an alert's details that may be cut: `details[key]`, or `details[key][inner]`. */
interface CuttableList {
  key: string;
  inner: string | null;
  items: unknown[];
  bytes: number;
}

/**
 * The non-empty lists of `details`, and those one level down in an object of it (a resolved
 * message's `lastDetails.floorsBy`), never `truncated` itself.
 */
function listsOf(details: Record<string, unknown>): CuttableList[] {
  const lists: CuttableList[] = [];
  const add = (key: string, inner: string | null, value: unknown) => {
    if (Array.isArray(value) && value.length > 0)
      lists.push({ key, inner, items: value, bytes: utf8Length(JSON.stringify(value)) });
  };
  for (const [key, value] of Object.entries(details)) {
    if (key === 'truncated') continue;
    add(key, null, value);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      for (const [inner, v] of Object.entries(value)) add(key, inner, v);
  }
  return lists;
}

/** Per detail left out, by its key in the details: `details.omitted` of an alert cut whole. */
const Omitted = z.record(z.string(), z.number());

/** An alert cut by {@link fitWhole}: what {@link fitAlert} cut, and what else had to go. */
interface WholeFit extends FittedAlert {
  /**
   * `alert.details.omitted`: per detail left out whole, the bytes of JSON it had; null when
   * none was.
   */
  omitted: Record<string, number> | null;
  /** The summary's length in characters when it had to be cut, else null. */
  summaryCut: number | null;
}

/** Room kept for what `details.omitted` and the cut summary add as they grow. */
const FIT_SLACK = 256;

/**
 * `a` within `maxBytes` of JSON, whatever it holds: {@link fitAlert} first (its longest lists cut,
 * `details.truncated`); when that is not enough (a long text, a large object, an edited or
 * corrupt record read back), the largest details are left out one by one, largest first, each
 * named with its size in `details.omitted`; then, if still too long, the summary is cut (ending
 * in `…`). Only an alert whose fixed fields alone (ids, names) are over `maxBytes` is returned
 * over it; none the governor makes is.
 */
export function fitWhole(a: Alert, maxBytes: number = MAX_ALERT_BYTES): WholeFit {
  const first = fitAlert(a, maxBytes);
  if (alertBytes(first.alert) <= maxBytes) return { ...first, omitted: null, summaryCut: null };
  const details: Record<string, unknown> = { ...first.alert.details };
  const omitted: Record<string, number> = Omitted.safeParse(details['omitted']).data ?? {};
  const withDetails = (): Alert => ({
    ...first.alert,
    details: Object.keys(omitted).length > 0 ? { ...details, omitted } : { ...details },
  });
  let alert = withDetails();
  while (alertBytes(alert) > maxBytes) {
    const largest = Object.entries(details)
      .filter(([key]) => key !== 'truncated' && key !== 'omitted')
      .map(([key, value]) => ({ key, bytes: utf8Length(JSON.stringify(value) ?? '') }))
      .sort((x, y) => y.bytes - x.bytes)[0];
    if (largest === undefined) break;
    delete details[largest.key];
    omitted[largest.key] = largest.bytes;
    alert = withDetails();
  }
  if (alertBytes(alert) > maxBytes && Object.keys(alert.details).length > 0) {
    // Only `truncated` and `omitted` are left, too large themselves (a stored record edited so):
    // the details go whole, their size said.
    const bytes = utf8Length(JSON.stringify(first.alert.details));
    for (const key of Object.keys(omitted)) delete omitted[key];
    for (const key of Object.keys(details)) delete details[key];
    omitted['details'] = bytes;
    alert = withDetails();
  }
  let summaryCut: number | null = null;
  const excess = alertBytes(alert) - maxBytes;
  if (excess > 0) {
    // A character is at most 6 bytes of JSON (an escape); cut enough, keep at least one.
    const keep = Math.max(1, alert.summary.length - excess - FIT_SLACK);
    if (keep < alert.summary.length) {
      summaryCut = alert.summary.length;
      alert = { ...alert, summary: cutText(alert.summary, keep) };
      while (alertBytes(alert) > maxBytes && alert.summary.length > 1) {
        alert = { ...alert, summary: cutText(alert.summary, alert.summary.length / 2) };
      }
    }
  }
  return {
    alert,
    truncated: first.truncated,
    omitted: Object.keys(omitted).length > 0 ? omitted : null,
    summaryCut,
  };
}
