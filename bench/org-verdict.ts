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

/**
 * The chaos part's verdict (bench/org.ts): every unit not made to fail completed, and no write left
 * a pool's caps above its quota; and some unit was made to fail, else nothing was tested (the
 * seeded 5% picks none among fewer than 5 projects) and the figure would pass by doing nothing.
 */
export function chaosVerdict(c: {
  projects: number;
  failingUnits: number;
  completedOthers: number;
  others: number;
  poolsOverQuota: number;
}): { met: boolean; why: string } {
  if (c.failingUnits === 0)
    return {
      met: false,
      why: `no unit was made to fail among ${c.projects} projects (a seeded 5% of them; 5 projects or more pick one): the chaos was not played`,
    };
  const why: string[] = [];
  if (c.completedOthers !== c.others)
    why.push(
      `${c.others - c.completedOthers} of the ${c.others} units made to fail by nothing did not complete`,
    );
  if (c.poolsOverQuota > 0)
    why.push(
      `${c.poolsOverQuota} write${c.poolsOverQuota === 1 ? '' : 's'} left a pool's caps above its quota`,
    );
  return { met: why.length === 0, why: why.join('; ') };
}

/**
 * Reads per project alone and in the organisation (bench/org-procs.ts) must be the same, and some:
 * none counted on either side is an empty call log, not a match.
 */
export function readsVerdict(alone: number, inOrg: number): { met: boolean; why: string } {
  if (alone === 0 && inOrg === 0)
    return {
      met: false,
      why: "no reads were counted (the emulator's call log was empty): nothing was compared",
    };
  if (alone === inOrg) return { met: true, why: '' };
  const d = Math.abs(inOrg - alone);
  const n = Number(d.toFixed(2));
  return inOrg > alone
    ? {
        met: false,
        why: `${n} more read${n === 1 ? '' : 's'} a project in the organisation than alone: calls retried (an answer later than the client waits, on a loaded machine) or reads that grow with the organisation`,
      }
    : {
        met: false,
        why: `${n} fewer read${n === 1 ? '' : 's'} a project in the organisation than alone: a unit that stopped before its reads`,
      };
}
