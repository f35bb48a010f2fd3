/**
 * The simulator and the report page, loaded when a command first needs them rather than when it
 * starts: with the emulator and Google's clients the simulator may run through, they take about
 * 2 s of CPU to load, which `governor simulate` or `governor replay` refusing bad usage (a bad
 * `--hours`, `--report` naming an input file) would spend for nothing
 * (test/cli/simulate-lazy.test.ts). Only these imports are dynamic, and each stays in this folder,
 * so the layer rules hold as they do for static imports.
 */
import type { renderReport } from './report.js';
import type { simulate } from './simulate.js';

/** `simulate` (./simulate.ts), once loaded. */
export async function loadSimulate(): Promise<typeof simulate> {
  return (await import('./simulate.js')).simulate;
}

/** `renderReport` (./report.ts), once loaded. */
export async function loadRenderReport(): Promise<typeof renderReport> {
  return (await import('./report.js')).renderReport;
}
