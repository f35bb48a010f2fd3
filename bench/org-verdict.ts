/**
 * What the organisation bench (bench/org-procs.ts) concludes from one run's figures: whether the
 * organisation was governed within 2× the slowest single project with every unit answered (a unit
 * that failed was not governed, and failing early only makes the organisation look quicker), and,
 * when it was not within 2×, whether the machine's cores could have done it at all. No schedule
 * governs work of `cpuS` CPU-seconds on `cores` cores in less than cpuS ÷ cores.
 */
export interface OrgVerdict {
  targetMs: number;
  /** cpuS ÷ cores, in ms. */
  minWallMs: number;
  /** Cores the CPU-seconds need to fit within the target. */
  coresNeeded: number;
  met: boolean;
  text: string;
}

export function orgVerdict(f: {
  orgMs: number;
  slowestSingleMs: number;
  cpuS: number;
  cores: number;
  /** Units whose push was answered with anything but 200. */
  unitFailures: number;
}): OrgVerdict {
  const targetMs = 2 * f.slowestSingleMs;
  const minWallMs = (f.cpuS / f.cores) * 1000;
  const coresNeeded = Math.ceil((f.cpuS * 1000) / targetMs);
  const s = (ms: number, digits: number) => (ms / 1000).toFixed(digits);
  const within = f.orgMs <= targetMs;
  const met = within && f.unitFailures === 0;
  const text = met
    ? `met: ${s(f.orgMs, 2)} s ≤ 2× ${s(f.slowestSingleMs, 2)} s`
    : within
      ? `missed: ${f.unitFailures} unit(s) failed (${s(f.orgMs, 2)} s ≤ 2× ${s(f.slowestSingleMs, 2)} s, but a failed unit was not governed)`
      : minWallMs > targetMs
        ? `missed: needs ≥ ${coresNeeded} cores: ${f.cpuS.toFixed(1)} CPU-s over ${f.cores} cores = ${s(minWallMs, 1)} s > 2× ${s(f.slowestSingleMs, 2)} s`
        : `missed: ${s(f.orgMs, 2)} s > 2× ${s(f.slowestSingleMs, 2)} s, though its ${f.cpuS.toFixed(1)} CPU-s fit in ${s(minWallMs, 1)} s on ${f.cores} cores`;
  return { targetMs, minWallMs, coresNeeded, met, text };
}

/** A round of units within the target: within 2× the slowest single project, and none failed. */
export function roundMet(r: { ratio: number; unitFailures: number }): boolean {
  return r.ratio <= 2 && r.unitFailures === 0;
}

/**
 * The largest organisation whose CPU fits in `share` of the cores within the target, from the
 * CPU-seconds one unit cost (its process and the emulator's part); 0 when not even one does.
 */
export function largestFitting(f: {
  perUnitCpuS: number;
  cores: number;
  targetMs: number;
  share?: number;
}): number {
  if (!(f.perUnitCpuS > 0)) return 0;
  return Math.floor(((f.share ?? 0.7) * f.cores * (f.targetMs / 1000)) / f.perUnitCpuS);
}
