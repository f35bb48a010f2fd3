import { mkdir, writeFile } from 'node:fs/promises';
import { benchObservation } from './observation.js';
import { benchPlanner } from './planner.js';

/**
 * `npm run bench`: one command, one run, ratios. Timing goals are compared here, within one
 * run on one machine, never in timed unit tests.
 */

const TARGET_10K_MS = 50;
const TARGET_GROWTH = 12;

const planner = benchPlanner();
const lines: string[] = [];
lines.push('Planner: plan(snapshot, policy, time), median of repeated runs after warm-up');
lines.push('');
lines.push('  services    pools   median ms    min ms   growth per 10×   changes');
let prev: number | null = null;
const growth: number[] = [];
for (const r of planner) {
  const g = prev === null ? null : r.medianMs / prev;
  if (g !== null) growth.push(g);
  lines.push(
    `  ${String(r.services).padStart(8)} ${String(r.pools).padStart(8)} ${r.medianMs.toFixed(2).padStart(11)} ${r.minMs.toFixed(2).padStart(9)} ${(g === null ? '—' : `${g.toFixed(1)}×`).padStart(16)} ${String(r.changes).padStart(9)}`,
  );
  prev = r.medianMs;
}
const tenK = planner.find((r) => r.services === 10_000)?.medianMs ?? NaN;
const worstGrowth = Math.max(...growth);
lines.push('');
lines.push(
  `  10,000 services: ${tenK.toFixed(1)} ms (target ≤ ${TARGET_10K_MS} ms) ${tenK <= TARGET_10K_MS ? 'met' : 'MISSED'}`,
);
lines.push(
  `  worst growth per 10× services: ${worstGrowth.toFixed(1)}× (target ≤ ${TARGET_GROWTH}×) ${worstGrowth <= TARGET_GROWTH ? 'met' : 'MISSED'}`,
);

const observation = await benchObservation();
lines.push('');
lines.push('Observation: RPCs per observation through the real clients and the emulator');
lines.push('');
lines.push('  services  regions   reads  writes   by method');
for (const r of observation) {
  const methods = Object.entries(r.byMethod)
    .map(([m, n]) => `${m} ${n}`)
    .join(', ');
  lines.push(
    `  ${String(r.services).padStart(8)} ${String(r.regions).padStart(8)} ${String(r.reads).padStart(7)} ${String(r.writes).padStart(7)}   ${methods}`,
  );
}
const sameRegions = observation.filter((r) => r.regions === 1);
const flat =
  sameRegions.length >= 2 &&
  sameRegions.every(
    (r) =>
      r.reads - (r.byMethod.ListServices ?? 0) ===
      (sameRegions[0]?.reads ?? 0) - (sameRegions[0]?.byMethod.ListServices ?? 0),
  );
lines.push('');
lines.push(
  `  reads grow with regions and pages, not services: ${flat ? 'yes' : 'NO'} (1 region: ${sameRegions.map((r) => `${r.services} services → ${r.reads} reads`).join(', ')})`,
);
console.log(lines.join('\n'));

await mkdir('bench', { recursive: true });
await writeFile(
  'bench/results.json',
  JSON.stringify(
    {
      node: process.version,
      planner: {
        rows: planner,
        growth,
        targets: { tenThousandMs: TARGET_10K_MS, growthPer10x: TARGET_GROWTH },
      },
    },
    null,
    2,
  ) + '\n',
);
console.log('\nwrote bench/results.json');
