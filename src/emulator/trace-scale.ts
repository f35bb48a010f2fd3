/**
 * How a trace's samples become instances wanted: one reading for the model, which plays them
 * (demand.ts), and the fleet file's check of what a trace may ask for (fleet.ts). Apart from both,
 * so that neither imports the other.
 */

/** The two fields of a trace's demand that scale its samples. */
interface TraceScaling {
  readonly normalize: boolean;
  readonly scale: number;
}

/**
 * The means computed, by trace: a trace is loaded once and never changed, and summing millions of
 * samples again for every minute played stalled the emulator for seconds per virtual hour.
 */
const means = new WeakMap<readonly number[], number>();

/** Mean of the samples, for normalising a trace. */
function mean(samples: readonly number[]): number {
  const known = means.get(samples);
  if (known !== undefined) return known;
  const m = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  means.set(samples, m);
  return m;
}

/** What one sample of the trace is divided by: its mean when normalised (1 for an all-zero one). */
export function traceUnit(trace: TraceScaling, samples: readonly number[]): number {
  return trace.normalize ? mean(samples) || 1 : 1;
}

/** The most instances the trace asks for in any minute, as the model plays it. */
export function tracePeak(trace: TraceScaling, samples: readonly number[]): number {
  let most = 0;
  for (const v of samples) most = Math.max(most, v);
  return (most / traceUnit(trace, samples)) * trace.scale;
}
