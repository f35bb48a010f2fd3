import { mkdir, writeFile } from 'node:fs/promises';
import { benchColdStart } from './cold-start.js';
import { benchMemory } from './memory.js';
import { benchObservation } from './observation.js';
import { benchPlanner } from './planner.js';
import { benchQuality } from './quality.js';
import { benchRtt } from './rtt.js';

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

// Decision quality on simulated days (docs/rules.md "How decisions are judged").
const quality = await benchQuality();
lines.push('');
lines.push(
  'Decision quality: refused GPU-minutes on the same demand (governor every 5 min, metrics 3 min behind)',
);
lines.push('');
lines.push(
  '  scenario                          quota  governor  equal split  fleet caps  over-commit  oracle   gap closed  gov÷equal  writes/svc/h  violations',
);
for (const r of quality) {
  const n = (k: string) =>
    String(Math.round(r.refused[k] ?? 0)).padStart(r.refused[k] === undefined ? 0 : 1);
  lines.push(
    `  ${r.scenario.padEnd(32)} ${String(r.quota).padStart(6)} ${n('governor').padStart(9)} ${n('equal-split').padStart(12)} ${n('fleet-caps').padStart(11)} ${n('over-commit').padStart(12)} ${n('oracle').padStart(7)} ${(r.gapClosed === null ? '—' : r.gapClosed.toFixed(2)).padStart(11)} ${(r.refusedVsEqualSplit === null ? '—' : r.refusedVsEqualSplit.toFixed(2)).padStart(10)} ${r.writesPerServiceHour.toFixed(2).padStart(13)} ${String(r.invariantViolations).padStart(11)}`,
  );
}

const rtt = await benchRtt(50);
const cold = await benchColdStart();
const memory = await benchMemory(10_000);

interface Figure {
  figure: string;
  value: number;
  shown: string;
  target: string;
  met: boolean;
}
const figures: Figure[] = [];
const add = (figure: string, value: number, shown: string, target: string, met: boolean) =>
  figures.push({ figure, value, shown, target, met });
add(
  'planner, 10,000 services (ms)',
  tenK,
  tenK.toFixed(1),
  `≤ ${TARGET_10K_MS}`,
  tenK <= TARGET_10K_MS,
);
add(
  'planner growth per 10× services',
  worstGrowth,
  `${worstGrowth.toFixed(1)}×`,
  `≤ ${TARGET_GROWTH}×`,
  worstGrowth <= TARGET_GROWTH,
);
for (const r of quality.filter((q) => q.kind === 'fleet')) {
  const f = `${r.quotaFactor}× peak`;
  add(
    `gap closed, mixed fleet ${f}`,
    r.gapClosed ?? 1,
    r.gapClosed === null ? 'no gap' : r.gapClosed.toFixed(2),
    '≥ 0.9',
    (r.gapClosed ?? 1) >= 0.9,
  );
  add(
    `governor ÷ equal split, mixed fleet ${f}`,
    r.refusedVsEqualSplit ?? 0,
    r.refusedVsEqualSplit === null ? '—' : r.refusedVsEqualSplit.toFixed(2),
    '≤ 0.5',
    (r.refusedVsEqualSplit ?? 0) <= 0.5,
  );
  add(
    `writes / service / hour, mixed fleet ${f}`,
    r.writesPerServiceHour,
    r.writesPerServiceHour.toFixed(2),
    '≤ 2',
    r.writesPerServiceHour <= 2,
  );
  add(
    `invariant violations, mixed fleet ${f}`,
    r.invariantViolations,
    String(r.invariantViolations),
    '0',
    r.invariantViolations === 0,
  );
}
for (const r of quality.filter((q) => q.kind === 'traces')) {
  const f = `${r.quotaFactor}× peak`;
  add(
    `gap closed, traces alone ${f} (reported apart)`,
    r.gapClosed ?? 1,
    r.gapClosed === null ? 'no gap' : r.gapClosed.toFixed(2),
    '≥ 0.9',
    (r.gapClosed ?? 1) >= 0.9,
  );
  add(
    `writes / service / hour, traces alone ${f}`,
    r.writesPerServiceHour,
    r.writesPerServiceHour.toFixed(2),
    '≤ 2',
    r.writesPerServiceHour <= 2,
  );
  add(
    `invariant violations, traces alone ${f}`,
    r.invariantViolations,
    String(r.invariantViolations),
    '0',
    r.invariantViolations === 0,
  );
}
add(
  `one run ÷ RTT (100 services, ${rtt.writes} changes, RTT ${rtt.rttMs} ms)`,
  rtt.ratio,
  `${rtt.ratio.toFixed(1)} RTT (${Math.round(rtt.wallMs)} ms, ${rtt.rounds} rounds of calls, ${rtt.rpcs} RPCs)`,
  '≤ 6',
  rtt.ratio <= 6,
);
add(
  'function cold start → listening (ms)',
  cold.listeningMs,
  cold.listeningMs.toFixed(0),
  '≤ 1000',
  cold.listeningMs <= 1000,
);
add(
  'function cold start → first run done (ms)',
  cold.firstRunMs,
  cold.firstRunMs.toFixed(0),
  '—',
  true,
);
add(
  `peak memory, one run over ${memory.services.toLocaleString('en-US')} services (MiB RSS)`,
  memory.peakRssMb,
  `${memory.peakRssMb.toFixed(0)} (run ${Math.round(memory.runMs)} ms, ${memory.writes} writes)`,
  '≤ 256',
  memory.peakRssMb <= 256,
);

lines.push('');
lines.push('Figures');
lines.push('');
const width = Math.max(...figures.map((f) => f.figure.length));
const shownWidth = Math.max(...figures.map((f) => f.shown.length));
lines.push(`  ${'figure'.padEnd(width)}  ${'value'.padEnd(shownWidth)}  target    `);
for (const f of figures)
  lines.push(
    `  ${f.figure.padEnd(width)}  ${f.shown.padEnd(shownWidth)}  ${f.target.padEnd(8)}  ${f.target === '—' ? '' : f.met ? 'met' : 'MISSED'}`,
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
      observation,
      quality,
      rtt,
      coldStart: cold,
      memory,
      figures,
    },
    null,
    2,
  ) + '\n',
);
console.log('\nwrote bench/results.json');
