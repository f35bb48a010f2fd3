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

function stepValue(steps: readonly DemandStep[], atMs: number, zone: string): number {
  const daily = steps.every((s) => /^\d\d:\d\d$/.test(s.at));
  if (daily) {
    const sorted = [...steps].sort((a, b) => clockToMinutes(a.at) - clockToMinutes(b.at));
    const now = localMinuteOfDay(atMs, zone);
    // Before the day's first step, yesterday's last step still holds.
    let value = sorted.at(-1)?.value ?? 0;
    for (const step of sorted) if (clockToMinutes(step.at) <= now) value = step.value;
    return value;
  }
  const sorted = [...steps].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  let value = 0;
  for (const step of sorted) if (Date.parse(step.at) <= atMs) value = step.value;
  return value;
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
