/**
 * What the organisation bench (bench/org-procs.ts) concludes from one run's figures: whether the
 * organisation was governed within 2× the slowest single project, and, when it was not, whether
 * the machine's cores could have done it at all. No schedule governs work of `cpuS` CPU-seconds
 * on `cores` cores in less than cpuS ÷ cores.
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
}): OrgVerdict {
  const targetMs = 2 * f.slowestSingleMs;
  const minWallMs = (f.cpuS / f.cores) * 1000;
  const coresNeeded = Math.ceil((f.cpuS * 1000) / targetMs);
  const s = (ms: number, digits: number) => (ms / 1000).toFixed(digits);
  const met = f.orgMs <= targetMs;
  const text = met
    ? `met: ${s(f.orgMs, 2)} s ≤ 2× ${s(f.slowestSingleMs, 2)} s`
    : minWallMs > targetMs
      ? `missed: needs ≥ ${coresNeeded} cores: ${f.cpuS.toFixed(1)} CPU-s over ${f.cores} cores = ${s(minWallMs, 1)} s > 2× ${s(f.slowestSingleMs, 2)} s`
      : `missed: ${s(f.orgMs, 2)} s > 2× ${s(f.slowestSingleMs, 2)} s, though its ${f.cpuS.toFixed(1)} CPU-s fit in ${s(minWallMs, 1)} s on ${f.cores} cores`;
  return { targetMs, minWallMs, coresNeeded, met, text };
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
