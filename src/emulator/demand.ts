import { DateTime } from 'luxon';
import type { Demand, DemandStep, Traces } from './fleet.js';
import { traceUnit } from './trace-scale.js';

/**
 * How many instances a service is asked for at a given time. Pure: the time and the traces are
 * passed in. Values are fractional; the model rounds them up to whole instances.
 */
export interface DemandContext {
  /** Time zone of "HH:MM" steps and of diurnal curves without their own. */
  readonly timezone: string;
  /** Virtual start of the fleet (ms since the epoch): minute 0 of traces. */
  readonly startMs: number;
  readonly traces: Traces;
}

function localMinuteOfDay(atMs: number, zone: string): number {
  const local = DateTime.fromMillis(atMs, { zone });
  return local.hour * 60 + local.minute + local.second / 60;
}

function clockToMinutes(at: string): number {
  const [h, m] = at.split(':');
  return Number(h) * 60 + Number(m);
}

/** A demand's steps in time order, each at its minute of the day (daily) or its instant (ms). */
interface SortedSteps {
  readonly daily: boolean;
  readonly at: readonly number[];
  readonly values: readonly number[];
}

/**
 * The steps sorted once per demand, not once per minute played: sorting (and parsing) every step
 * each minute made a demand of thousands of steps stall the emulator for minutes per advance.
 */
const sortedSteps = new WeakMap<readonly DemandStep[], SortedSteps>();

function sortSteps(steps: readonly DemandStep[]): SortedSteps {
  const cached = sortedSteps.get(steps);
  if (cached) return cached;
  const daily = steps.every((s) => /^\d\d:\d\d$/.test(s.at));
  const keyed = steps.map((s) => ({
    at: daily ? clockToMinutes(s.at) : Date.parse(s.at),
    value: s.value,
  }));
  // A stable sort: of two steps at the same time, the later one listed holds.
  keyed.sort((a, b) => a.at - b.at);
  const sorted = { daily, at: keyed.map((k) => k.at), values: keyed.map((k) => k.value) };
  sortedSteps.set(steps, sorted);
  return sorted;
}

/** The index of the last step at or before `t`, or -1 (a binary search: `at` is sorted). */
function lastAtOrBefore(at: readonly number[], t: number): number {
  let lo = 0;
  let hi = at.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((at[mid] ?? Infinity) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function stepValue(steps: readonly DemandStep[], atMs: number, zone: string): number {
  const { daily, at, values } = sortSteps(steps);
  if (daily) {
    const i = lastAtOrBefore(at, localMinuteOfDay(atMs, zone));
    // Before the day's first step, yesterday's last step still holds.
    return (i === -1 ? values.at(-1) : values[i]) ?? 0;
  }
  const i = lastAtOrBefore(at, atMs);
  return i === -1 ? 0 : (values[i] ?? 0);
}

export function demandAt(demand: Demand, atMs: number, ctx: DemandContext): number {
  if (demand.constant !== undefined) return demand.constant;
  if (demand.diurnal) {
    const { base, peak, peakHour } = demand.diurnal;
    const hours = localMinuteOfDay(atMs, demand.diurnal.timezone ?? ctx.timezone) / 60;
    const phase = ((hours - peakHour) / 24) * 2 * Math.PI;
    return base + ((peak - base) * (1 + Math.cos(phase))) / 2;
  }
  if (demand.steps) return stepValue(demand.steps, atMs, ctx.timezone);
  if (demand.trace) {
    const samples = ctx.traces.get(demand.trace.file);
    if (!samples || samples.length === 0) {
      throw new Error(`trace ${demand.trace.file} was not loaded`);
    }
    const minute = Math.floor((atMs - ctx.startMs) / 60_000) + demand.trace.offsetMinutes;
    const index = ((minute % samples.length) + samples.length) % samples.length;
    const unit = traceUnit(demand.trace, samples);
    return ((samples[index] ?? 0) / unit) * demand.trace.scale;
  }
  return 0;
}
