import { z } from 'zod';
import type { Usage } from './snapshot.js';

/**
 * The evidence a service's usage gives, minute by minute (the snapshot's optional
 * `usage.perMinute`): how often each next instance would have been used, and whether it was
 * refused. One place reads it; the planner and every reason use what it returns.
 *
 * Per minute of the lookback, the **instances wanted**:
 *
 *   wanted = in use                                          no request refused that minute
 *   wanted = ceil(in use × (served + refused) ÷ served)      some refused (429: at its max)
 *   wanted = in use + 1                                      refused, none served (or served
 *                                                            not read: the ratio is unknown)
 *
 * The ratio assumes each instance serves about as many requests a minute as it did; it
 * overstates demand when 429s come from instances still starting or from clients retrying, and
 * understates it when refused clients give up. It is a minute's evidence, not a forecast.
 *
 * The **likelihood** that a service uses its k-th instance is the share of the lookback's minutes
 * in which it wanted at least k, each minute weighted by its recency (a minute one reclaim window
 * older counts half as much). A cap alone is no evidence (rule 7): a service that ran at its cap
 * with nothing refused wanted exactly what it had.
 *
 * **Spikes**: the most instances wanted in a minute of the lookback (`most`) and the largest rise
 * from one minute to the next (`jump`): the planner's loan guard keeps a service's cap up to
 * most + jump rather than lend it to lower priorities that may all be preempted.
 *
 * **Anticipation**: when the instances wanted rose in each of the newest three minutes (a < b < c),
 * the next step, c + (c − b), counts as one more minute, one minute newer than the newest, so
 * that a service climbing toward its cap is likelier to get its next instance before its first
 * 429 shows (Monitoring is minutes late). It reads only the minutes, never the cap, so planning
 * again after the plan is applied reads the same rise (rule 7).
 *
 * **Tail**: above the most a service wanted in the lookback (W), the likelihood of the
 * (W + j)-th instance is taken as likelihood(W) × e^(−j ÷ d), where d is the mean change of
 * instances wanted from one minute to the next (its swing): a service whose minutes swing by
 * several instances is likelier to exceed its lookback's most than a smooth one. It only keeps
 * held room sticky (planner.ts); like the rest, it reads the minutes, never the cap.
 */

export const RisingEvidence = z
  .strictObject({
    wanted: z.array(z.number().int().min(0)).length(3).describe('The newest three minutes.'),
    next: z.number().int().min(0).describe('Their next step, c + (c − b), counted as a minute.'),
  })
  .describe('Instances wanted rose in each of the newest three minutes.');
export type RisingEvidence = z.infer<typeof RisingEvidence>;

export const RefusalEvidence = z
  .strictObject({
    minutes: z.number().int().min(0).describe('Minutes with 429s in the reclaim window.'),
    window: z.number().int().min(1).describe('The reclaim window, in minutes of evidence.'),
    wanted: z
      .strictObject({
        instances: z.number().int().min(0),
        inUse: z.number().int().min(0),
        served: z
          .number()
          .int()
          .min(0)
          .nullable()
          .describe('Requests served that minute; null when the snapshot has no served counts.'),
        refused: z.number().int().min(0),
      })
      .nullable()
      .describe(
        'The minute of the window that wanted the most: in use × (served + refused) ÷ served.',
      ),
  })
  .describe('Refusals (HTTP 429 at the max instances) in the reclaim window.');
export type RefusalEvidence = z.infer<typeof RefusalEvidence>;

export interface Evidence {
  /** Null when the snapshot has no refusal counts (older snapshots). */
  refusals: RefusalEvidence | null;
  /** The newest minute with a refusal (ms), or null. */
  lastRefusedMs: number | null;
  /** Instances wanted per minute, highest first, with each minute's share of the weight. */
  profile: { wanted: number; share: number }[];
  /** The rise that counted one more minute (anticipation), or null. */
  rising: RisingEvidence | null;
  /**
   * The most instances wanted in a minute of the evidence (W), the anticipated step included:
   * the one "most wanted" the loan guard and the tail both read.
   */
  most: number;
  /** The largest rise of instances wanted from one minute to the next over the lookback. */
  jump: number;
  /** Mean change of instances wanted from one minute to the next over the lookback (the tail's d). */
  swing: number;
}

const MINUTE_MS = 60_000;

interface Point {
  wanted: number;
  weight: number;
}

/**
 * The evidence of one service, or null without per-minute counts. `lookbackMs` bounds the
 * minutes read, counted back from `observedMs`, the time the usage was observed (the snapshot's
 * `takenAt`, not the plan's time: planning for another instant does not age the observation);
 * `reclaimWindowMs` is the window refusals are counted in (back from the newest minute) and the
 * half-life of a minute's weight.
 */
export function readEvidence(
  usage: Usage,
  observedMs: number,
  lookbackMs: number,
  reclaimWindowMs: number,
): Evidence | null {
  const pm = usage.perMinute;
  if (!pm || pm.inUse.length === 0) return null;
  const startMs = Date.parse(pm.start);
  const n = pm.inUse.length;
  const newestMs = startMs + (n - 1) * MINUTE_MS;
  const halfLife = Math.max(1, Math.round(reclaimWindowMs / MINUTE_MS));
  // No minute older than the lookback is read: a longer reclaim window counts the lookback's
  // refusals (and says so), while its half-life still weighs the minutes. A lookback of a part
  // minute reads the minute that ends within it (30m30s reads 31), so the count rounds up.
  const windowMinutes = Math.max(1, Math.min(halfLife, Math.ceil(lookbackMs / MINUTE_MS)));
  const points: Point[] = [];
  let total = 0;
  let refusedMinutes = 0;
  let lastRefusedMs: number | null = null;
  let most: RefusalEvidence['wanted'] = null;
  for (let i = 0; i < n; i++) {
    const minuteMs = startMs + i * MINUTE_MS;
    if (minuteMs <= observedMs - lookbackMs) continue;
    const inUse = pm.inUse[i] ?? 0;
    const refused = pm.refused?.[i] ?? 0;
    // Served counts not read are not "none served": the minute still wants one more than it had
    // (no ratio can be taken), and its reason says the count is unknown.
    const served = pm.served ? (pm.served[i] ?? 0) : null;
    const wanted = wantedInstances(inUse, served ?? 0, refused);
    const age = (newestMs - minuteMs) / MINUTE_MS;
    const weight = Math.pow(2, -age / halfLife);
    points.push({ wanted, weight });
    total += weight;
    if (refused > 0) {
      lastRefusedMs = minuteMs;
      if (age < windowMinutes) {
        refusedMinutes += 1;
        if (!most || wanted > most.instances) most = { instances: wanted, inUse, served, refused };
      }
    }
  }
  // Spikes and swing (the tail's d): points are in minute order here, newest last.
  let highest = 0;
  let jump = 0;
  let change = 0;
  for (let i = 0; i < points.length; i++) {
    const w = (points[i] as Point).wanted;
    highest = Math.max(highest, w);
    if (i > 0) {
      const prev = (points[i - 1] as Point).wanted;
      jump = Math.max(jump, w - prev);
      change += Math.abs(w - prev);
    }
  }
  const swing = points.length > 1 ? change / (points.length - 1) : 0;
  // Anticipation (the module's comment): points are in minute order here, newest last.
  let rising: RisingEvidence | null = null;
  const tail = points.slice(-3).map((p) => p.wanted);
  if (tail.length === 3) {
    const [a, b, c] = tail as [number, number, number];
    if (a < b && b < c) {
      const weight = Math.pow(2, 1 / halfLife);
      rising = { wanted: tail, next: c + (c - b) };
      points.push({ wanted: rising.next, weight });
      total += weight;
    }
  }
  points.sort((a, b) => b.wanted - a.wanted);
  return {
    refusals: pm.refused ? { minutes: refusedMinutes, window: windowMinutes, wanted: most } : null,
    lastRefusedMs,
    profile: points.map((p) => ({ wanted: p.wanted, share: total > 0 ? p.weight / total : 0 })),
    rising,
    // The anticipated step counts as a minute's use (above), so as a minute's most too.
    most: Math.max(highest, rising?.next ?? 0),
    jump,
    swing,
  };
}

/** One minute's instances wanted (see the module's comment). */
export function wantedInstances(inUse: number, served: number, refused: number): number {
  if (refused <= 0) return inUse;
  if (served <= 0) return inUse + 1;
  return Math.max(inUse + 1, byRatio(inUse, served, refused));
}

/** ceil(in use × (served + refused) ÷ served): the ratio's instances, before the "+ 1" floor. */
function byRatio(inUse: number, served: number, refused: number): number {
  return Math.ceil((inUse * (served + refused)) / served - 1e-9);
}

/** Share of the (weighted) minutes that wanted at least `k` instances: 0 to 1. */
export function likelihood(ev: Evidence, k: number): number {
  let p = 0;
  for (const pt of ev.profile) {
    if (pt.wanted < k) break;
    p += pt.share;
  }
  return Math.min(1, p);
}

/**
 * The likelihood of the k-th instance with the tail above the most wanted (the module's comment):
 * likelihood(W) × e^(−(k − W) ÷ swing) for k > W; 0 when the minutes never change.
 */
export function tailLikelihood(ev: Evidence, k: number): number {
  const most = ev.most;
  if (k <= most) return likelihood(ev, k);
  if (ev.swing <= 0) return 0;
  return likelihood(ev, most) * Math.exp(-(k - most) / ev.swing);
}

/**
 * The likelihood scaled by weight: 1 − (1 − p)^weight. Weight 1 leaves it as it is; a heavier
 * service's uncertain instance counts as more likely, a certain one (p = 1) or one never used
 * (p = 0) stays where it is, so between certain or unused instances weight acts only through the
 * weighted max-min tie-break (rule 6: equal evidence, shares in proportion to weight).
 */
export function weightedLikelihood(p: number, weight: number): number {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  return 1 - Math.pow(1 - p, weight);
}

export function risingText(r: RisingEvidence): string {
  return `use rose 3 min running (${r.wanted.join(', ')}): its next step, ${r.next}, counted as a minute's use`;
}

export function refusalText(r: RefusalEvidence): string {
  if (r.minutes === 0) return `no 429s in the last ${r.window} min`;
  const w = r.wanted;
  const wanted = w
    ? w.served === null
      ? `; wanted ${w.instances} (in use ${w.inUse}, ${w.refused} refused, served not read)`
      : w.served === 0
        ? `; wanted ${w.instances} (in use ${w.inUse}, ${w.refused} refused, none served)`
        : w.instances > byRatio(w.inUse, w.served, w.refused)
          ? // The ratio reaches no further than in use (none in use: 0 × anything is 0).
            `; wanted ${w.instances} (in use ${w.inUse}, ${w.refused} refused, ${w.served} served: one more than in use)`
          : `; wanted ${w.instances} (in use ${w.inUse} × ${w.served + w.refused} requests ÷ ${w.served} served)`
    : '';
  return `refused ${r.minutes} min of the last ${r.window}${wanted}`;
}
