import { mkdir, writeFile } from 'node:fs/promises';
import { settingOrExit, wholeNumberSetting } from '../src/chaos/settings.js';
import { failInOneLine, refuseArguments, step } from './failure.js';
import { benchFunction } from './function.js';
import { benchObservation } from './observation.js';
import {
  benchPlanner,
  benchPolicyFit,
  plannerGrowth,
  benchRanked,
  benchRuleLookup,
  benchRuleScan,
  fitWarningsExpected,
} from './planner.js';
import { addQualityFigures } from './quality-figures.js';
import { benchQuality, qualitySubset, towardWorse } from './quality.js';
import type { Strategy } from '../src/simulate/simulate.js';
import { benchRtt } from './rtt.js';
import { RTT_CHANGES, rttRunWhole } from './rtt-verdict.js';
import { benchOrg, type OrgBench } from './org.js';
import { benchOrgProcesses, orgProcsLines, orgSize, type OrgProcsBench } from './org-procs.js';
import {
  benchQuotaRequests,
  quotaWeekLines,
  quotaWeekMet,
  quotaWeekWhy,
} from './quota-requests.js';
import { benchOrgSoak, orgSoakLines } from './org-soak.js';
import { chaosVerdict, readsVerdict, roundMet } from './org-verdict.js';
import { benchSoak, soakLines } from './soak.js';
import {
  figureAdder,
  type Figure,
  TARGET_10K_MS,
  TARGET_FIT_RATIO,
  TARGET_GROWTH,
  TARGET_RANKED_RATIO,
  TARGET_RTT_RATIO,
  TARGET_RTT_ROUNDS,
  TARGET_SCAN_RATIO,
} from './targets.js';

/**
 * SOAK_SNAPSHOTS=100,300: heap snapshots of the soaked processes after those runs or rounds. An
 * entry that is not a whole number from 1, or is past the soak's `last` run or round, stops the
 * bench before it starts anything (it would never match a run, and the snapshot asked for would
 * silently not be taken).
 */
function soakSnapshots(last: number, unit: 'runs' | 'rounds'): number[] {
  const entries = (process.env.SOAK_SNAPSHOTS ?? '').split(',').map((x) => x.trim());
  const bad = entries.find((x) => x !== '' && !/^[1-9]\d*$/.test(x));
  if (bad !== undefined) {
    console.error(
      `SOAK_SNAPSHOTS must list whole numbers of runs or rounds from 1, as 20,60: not ${JSON.stringify(bad)}`,
    );
    process.exit(2);
  }
  const after = entries.filter((x) => x !== '').map(Number);
  const past = after.find((n) => n > last);
  if (past !== undefined) {
    console.error(
      `SOAK_SNAPSHOTS: ${past} is past the soak's ${last} ${unit} (SOAK_RUNS), so no snapshot would be taken after it`,
    );
    process.exit(2);
  }
  return after;
}

/** A soak's size (SOAK_RUNS and the others): a whole number from `min` to 100,000, else exit code 2 before it starts. */
const soakSize = (name: string, fallback: number, min: number): number =>
  settingOrExit(wholeNumberSetting(process.env, name, fallback, min, 100_000));

/**
 * `npm run bench`: one command, one run, ratios. Timing goals are compared here, within one
 * run on one machine, never in timed unit tests.
 *
 * BENCH_ONLY=quality runs the decision-quality part alone (with BENCH_SCENARIOS and BENCH_SEEDS
 * to pick a subset, see quality.ts) and writes bench/results-quality.json instead;
 * BENCH_ONLY=planner runs the planner's timings alone and writes bench/results-planner.json.
 * BENCH_ONLY=quota-requests runs the quota-request week alone (bench/quota-requests.ts) and writes
 * bench/results-quota-requests.json.
 * BENCH_ONLY=soak runs the soak alone (bench/soak.ts: SOAK_RUNS runs of one warm function, default
 * 300, over SOAK_SERVICES services, default 40, the state in SOAK_STORE, file or firestore;
 * BENCH_PROGRESS=1 prints each run) and writes bench/results-soak.json. With SOAK_TARGET=org it
 * soaks the organisation's functions instead (bench/org-soak.ts: the dispatch and a unit, each
 * warm over SOAK_RUNS rounds, default 60, of SOAK_DISPATCHES dispatches, default 4, and one
 * delivery of each work message of the last, over SOAK_PROJECTS projects, default 4, of SOAK_SERVICES
 * services, default 8) and writes bench/results-org-soak.json. It takes minutes, so the default
 * run leaves it out.
 * BENCH_ONLY=org runs the organisation alone and writes bench/results-org.json: BENCH_ORG_PROJECTS
 * projects (default 50) × 10 services at an injected RTT of 50 ms, the emulator in its own
 * process and the units in BENCH_ORG_WORKERS worker processes (default 4), at most
 * BENCH_ORG_INSTANCES units at once (the unit function's max instances; default 50) (bench/org-procs.ts);
 * then the chaos part in one process (bench/org.ts). The issue's target, 1,000 projects:
 * BENCH_ONLY=org BENCH_ORG_PROJECTS=1000 BENCH_ORG_INSTANCES=500 (docs/performance.md).
 *
 * Bad input (an argument, a setting out of range) is refused in one line, exit code 2, before any
 * part runs; a part that fails ends the bench in one line naming it, exit code 1 (bench/failure.ts).
 */
refuseArguments('npm run bench', 'BENCH_ONLY chooses a part, as BENCH_ONLY=planner npm run bench');
failInOneLine();

/** BENCH_PROGRESS=1: a line per run on stderr. Any other value than 1, 0 or none is refused. */
const progress = ((): boolean => {
  const v = process.env.BENCH_PROGRESS ?? '';
  if (v !== '' && v !== '0' && v !== '1') {
    console.error(`BENCH_PROGRESS must be 1 (a line per run) or 0, not ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return v === '1';
})();

/** The organisation bench's size: small by default (docs/performance.md gives the 1,000 run). */
const orgOptions = () => orgSize(process.env, { projects: 50, instances: 50, workers: 4 });

interface OrgResults {
  processes: OrgProcsBench;
  chaos: OrgBench;
}

async function benchOrgAll(o: ReturnType<typeof orgOptions>): Promise<OrgResults> {
  const processes = await step('the organisation in processes', () => benchOrgProcesses(o));
  // Chaos in one process, at the default size at most: what it checks does not grow with the
  // organisation, and the timing above is the part that must.
  const chaos = await step("the organisation's chaos", () =>
    benchOrg({
      projects: Math.min(o.projects, 50),
      concurrency: Math.min(o.instances, 50),
      timing: false,
    }),
  );
  return { processes, chaos };
}

/** Writes a part's results: the last step, named like the others should it fail. */
const writeResults = (file: string, results: unknown) =>
  step(`writing ${file}`, async () => {
    await mkdir('bench', { recursive: true });
    await writeFile(file, JSON.stringify(results, null, 2) + '\n');
  });

function orgLines(r: OrgResults): string[] {
  const c = r.chaos.chaos;
  return [
    ...orgProcsLines(r.processes),
    `  reads per project: ${r.processes.readsPerProjectAlone} alone, ${r.processes.org.readsPerProject} in the organisation`,
    `Organisation chaos: ${r.chaos.projects} projects in one process (bench/org.ts): ${c.failingUnits} unit(s) failing; ${c.completedOthers} of ${c.others} others completed; ${c.retriedAndRecovered} recovered on retry, ${c.deadLettered} dead-lettered; ${c.poolsOverQuota} write(s) leaving a pool's caps over its quota`,
  ];
}

if (process.env.BENCH_ONLY === 'org') {
  const r = await benchOrgAll(orgOptions());
  console.log(orgLines(r).join('\n'));
  await writeResults('bench/results-org.json', { node: process.version, org: r });
  process.exit(0);
}

if (process.env.BENCH_ONLY === 'soak' && process.env.SOAK_TARGET === 'org') {
  // bench/org-soak.ts: the dispatch and a unit, each warm over SOAK_RUNS rounds (default 60).
  const rounds = soakSize('SOAK_RUNS', 60, 8);
  const dispatches = soakSize('SOAK_DISPATCHES', 4, 1);
  const projects = soakSize('SOAK_PROJECTS', 4, 4);
  const services = soakSize('SOAK_SERVICES', 8, 2);
  const snapshotAfter = soakSnapshots(rounds, 'rounds');
  const soak = await step("the organisation's soak", () =>
    benchOrgSoak({
      rounds,
      dispatches,
      projects,
      services,
      snapshotAfter,
      progress: (s) => {
        if (progress)
          console.error(
            `round ${s.round}: dispatch ${JSON.stringify(s.dispatch.discovery)} ${Math.round(s.dispatch.ms)} ms, units ${JSON.stringify(s.units.statuses)} ${Math.round(s.units.ms)} ms; heap dispatch ${(s.dispatchFn.heapUsedBytes / 2 ** 20).toFixed(2)} MiB, unit ${(s.unitFn.heapUsedBytes / 2 ** 20).toFixed(2)} MiB; channels dispatch ${JSON.stringify(s.dispatchFn.grpcChannels)}, unit ${JSON.stringify(s.unitFn.grpcChannels)}`,
          );
      },
    }),
  );
  console.log(orgSoakLines(soak).join('\n'));
  await writeResults('bench/results-org-soak.json', { node: process.version, soak });
  process.exit(0);
}

if (process.env.BENCH_ONLY === 'soak') {
  if (process.env.SOAK_TARGET !== undefined && process.env.SOAK_TARGET !== 'regional') {
    console.error('SOAK_TARGET must be regional (the default) or org');
    process.exit(2);
  }
  const runs = soakSize('SOAK_RUNS', 300, 8);
  const snapshotAfter = soakSnapshots(runs, 'runs');
  const services = soakSize('SOAK_SERVICES', 40, 8);
  const store = process.env.SOAK_STORE ?? 'file';
  if (store !== 'file' && store !== 'firestore') {
    console.error('SOAK_STORE must be file or firestore');
    process.exit(2);
  }
  const soak = await step('the soak', () =>
    benchSoak({
      runs,
      services,
      store,
      snapshotAfter,
      progress: (s) => {
        if (progress)
          console.error(
            `run ${s.run}: ${s.outcome}, ${s.written} written, ${s.alerts} alerts, ${Math.round(s.ms)} ms; function heap ${(s.fn.heapUsedBytes / 2 ** 20).toFixed(2)} MiB, emulator heap ${(s.emulator.heapUsedBytes / 2 ** 20).toFixed(2)} MiB`,
          );
      },
    }),
  );
  console.log(soakLines(soak).join('\n'));
  await writeResults('bench/results-soak.json', { node: process.version, soak });
  process.exit(0);
}

if (process.env.BENCH_ONLY === 'quota-requests') {
  const week = await step('the quota-request week', () => benchQuotaRequests());
  console.log(quotaWeekLines(week).join('\n'));
  await writeResults('bench/results-quota-requests.json', {
    node: process.version,
    quotaRequests: week,
    met: quotaWeekMet(week),
  });
  process.exit(0);
}

const only = process.env.BENCH_ONLY ?? '';
if (!['', 'quality', 'planner'].includes(only)) {
  console.error(
    `BENCH_ONLY=${only}: expected quality, planner, quota-requests, org or soak (or unset for every part)`,
  );
  process.exit(2);
}
const full = only === '';
const withPlanner = full || only === 'planner';
const withQuality = full || only === 'quality';
// The subset is read before any part runs: a mistyped one is told at once, not after the planner.
let subset: ReturnType<typeof qualitySubset> | null = null;
try {
  if (withQuality) subset = qualitySubset();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
// The organisation's size too, read before the parts that run before it.
const orgSizes = full ? orgOptions() : null;

const planner = withPlanner ? await step('the planner', () => benchPlanner()) : [];
// Pools of 100,000 GPUs (a quota a policy may set, up to MAX_QUOTA_GPUS): the plan's cost once grew
// with the GPUs handed out, one instance at a time (docs/performance.md).
const LARGE_POOL_QUOTA = 100_000;
const largePools = withPlanner
  ? await step('the planner on large pools', () =>
      benchPlanner(
        [
          [1_000, 10],
          [1_000, 200],
        ],
        LARGE_POOL_QUOTA,
      ),
    )
  : [];
const ruleLookup = withPlanner ? await step('the rule lookup', () => benchRuleLookup()) : [];
const ruleScan = withPlanner ? await step('the rule scan', () => benchRuleScan()) : null;
const scanRatio = ruleScan ? ruleScan.scanMs / ruleScan.lookupMs : NaN;
const policyFit = withPlanner ? await step('the policy fit', () => benchPolicyFit()) : [];
const ranked = withPlanner ? await step('the ranked pool', () => benchRanked()) : null;
const rankedRatio = ranked ? ranked.rankedMs / ranked.fiveMs : NaN;
const lines: string[] = [];
// A part not run says nothing: no table, and no verdict on figures it did not measure.
if (withPlanner) {
  lines.push('Planner: plan(snapshot, policy, time), median of repeated runs after warm-up');
  lines.push(
    "  (wall time; the CPU time is the process's, garbage collector included, and varies less on a loaded machine)",
  );
  lines.push('');
  lines.push(
    '  services    pools   median ms    min ms   CPU median ms   growth per 10×   changes',
  );
}
const plannerGrowthOf = plannerGrowth(planner, TARGET_GROWTH);
const growth = plannerGrowthOf.steps;
planner.forEach((r, i) => {
  const g = i === 0 ? null : (growth[i - 1] ?? NaN);
  lines.push(
    `  ${String(r.services).padStart(8)} ${String(r.pools).padStart(8)} ${r.medianMs.toFixed(2).padStart(11)} ${r.minMs.toFixed(2).padStart(9)} ${r.cpuMedianMs.toFixed(2).padStart(15)} ${(g === null ? '—' : `${g.toFixed(1)}×`).padStart(16)} ${String(r.changes).padStart(9)}`,
  );
});
const tenK = planner.find((r) => r.services === 10_000)?.medianMs ?? NaN;
const tenKCpu = planner.find((r) => r.services === 10_000)?.cpuMedianMs ?? NaN;
const worstGrowth = plannerGrowthOf.worst;
const [smallLookup, largeLookup] = ruleLookup;
const lookupGrowth = smallLookup && largeLookup ? largeLookup.ms / smallLookup.ms : NaN;
// The fit and the lookup at the same, largest size, in the same run: their ratio.
const largeFit = policyFit.at(-1);
const fitRatio =
  largeFit && largeLookup && largeFit.rules === largeLookup.rules
    ? largeFit.ms / largeLookup.ms
    : NaN;
// The fit is judged only where it warned of every rule that governs nothing: one that warned of
// fewer did less than the work timed, and its ratio would meet the target by doing less.
const fitWhole =
  largeFit !== undefined &&
  largeFit.warnings === fitWarningsExpected(largeFit.rules, largeFit.services);
if (withPlanner) {
  lines.push('');
  lines.push(
    `Planner on large pools: every pool's quota ${LARGE_POOL_QUOTA.toLocaleString('en-US')} GPUs`,
  );
  lines.push('  services    pools   median ms    min ms   CPU median ms   changes');
  for (const r of largePools)
    lines.push(
      `  ${String(r.services).padStart(8)} ${String(r.pools).padStart(8)} ${r.medianMs.toFixed(2).padStart(11)} ${r.minMs.toFixed(2).padStart(9)} ${r.cpuMedianMs.toFixed(2).padStart(15)} ${String(r.changes).padStart(9)}`,
    );
  lines.push('');
  lines.push(
    'Rule lookup: compiling the rules and resolving every service once (best of five, after a warm-up)',
  );
  lines.push('     rules   services          ms   matched   growth');
  ruleLookup.forEach((r, i) =>
    lines.push(
      `  ${String(r.rules).padStart(8)} ${String(r.services).padStart(10)} ${r.ms.toFixed(1).padStart(11)} ${String(r.matched).padStart(9)} ${(i === 0 ? '—' : `${lookupGrowth.toFixed(1)}×`).padStart(8)}`,
    ),
  );
  if (ruleScan)
    lines.push(
      `  the same ${ruleScan.rules.toLocaleString('en-US')} rules scanned in order for each of ${ruleScan.services.toLocaleString('en-US')} services: ${ruleScan.scanMs.toFixed(1)} ms against the lookup's ${ruleScan.lookupMs.toFixed(1)} ms (medians, alternating)`,
    );
  lines.push('');
  lines.push(
    "Policy fit: the warnings of the rules that govern no service seen (best of three; the rule lookup's shape)",
  );
  lines.push('     rules   services          ms  warnings');
  for (const r of policyFit)
    lines.push(
      `  ${String(r.rules).padStart(8)} ${String(r.services).padStart(10)} ${r.ms.toFixed(1).padStart(11)} ${String(r.warnings).padStart(9)}`,
    );
  if (ranked) {
    lines.push('');
    lines.push(
      `Ranked pool: ${ranked.services.toLocaleString('en-US')} services in one pool, a rule each; median of alternating plans`,
    );
    lines.push(
      `  every service its own priority ${ranked.rankedMs.toFixed(1)} ms, five priorities ${ranked.fiveMs.toFixed(1)} ms`,
    );
  }
}
if (withPlanner) {
  lines.push('');
  lines.push(
    `  10,000 services: ${towardWorse(tenK, 'high', 1)} ms (target ≤ ${TARGET_10K_MS} ms) ${tenK <= TARGET_10K_MS ? 'met' : 'MISSED'}`,
  );
  lines.push(
    `  worst growth per 10× services: ${towardWorse(worstGrowth, 'high', 1)}× (target ≤ ${TARGET_GROWTH}×) ${worstGrowth <= TARGET_GROWTH ? 'met' : 'MISSED'}`,
  );
}

const observation = full ? await step('the observation', () => benchObservation()) : [];
if (full) {
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
}

// Decision quality on simulated days (docs/rules.md "How decisions are judged").
if (withQuality) {
  lines.push('');
  lines.push(
    'Decision quality: refused GPU-minutes on the same demand (governor every 5 min, metrics 3 min behind)',
  );
  lines.push('');
  lines.push(
    '  scenario                     quota  seed  governor  equal  over-commit  clairv.  tick-best  30m-best   gap  gap(clairv.)  top prio: gov / tick-best / over-commit  writes/svc/h  rev/svc/day  violations  idempotent',
  );
}
const quality = !subset
  ? []
  : await step('the decision quality', () =>
      benchQuality((r) => {
        const n = (k: Strategy) => String(Math.round(r.refused[k] ?? 0));
        const t = (k: Strategy) => String(Math.round(r.refusedTop[k] ?? 0));
        const line = `  ${r.scenario.padEnd(26)} ${`${r.quotaFactor}×`.padStart(6)} ${String(r.seed).padStart(5)} ${n('governor').padStart(9)} ${n('equal-split').padStart(6)} ${n('over-commit').padStart(12)} ${n('oracle').padStart(8)} ${n('cadence-oracle').padStart(10)} ${n('writes-oracle').padStart(9)} ${(r.gapClosed === null ? '—' : r.gapClosed.toFixed(2)).padStart(5)} ${(r.gapClosedClairvoyant === null ? '—' : r.gapClosedClairvoyant.toFixed(2)).padStart(13)} ${`${t('governor')} / ${t('cadence-oracle')} / ${t('over-commit')}`.padStart(42)} ${r.writesPerServiceHour.toFixed(2).padStart(13)} ${r.reversalsPerServiceDay.toFixed(2).padStart(12)} ${String(r.invariantViolations).padStart(11)} ${`${r.idempotence.cases - r.idempotence.failures}/${r.idempotence.cases}`.padStart(11)}`;
        lines.push(line);
        if (progress) console.error(line);
      }, subset),
    );

const rtt = full ? await step('the round trips of one run', () => benchRtt(50)) : null;
// The function's memory, cold start and cost (bench/function.ts; `npm run bench:function` alone).
const fn = full ? await benchFunction({ step }) : null;
if (fn) {
  lines.push('');
  lines.push(...fn.lines);
}
const quotaWeek = full ? await step('the quota-request week', () => benchQuotaRequests()) : null;
if (quotaWeek) {
  lines.push('');
  lines.push(...quotaWeekLines(quotaWeek));
}
const org = orgSizes ? await benchOrgAll(orgSizes) : null;
if (org) {
  lines.push('');
  lines.push(...orgLines(org));
}

const figures: Figure[] = [];
const add = figureAdder(figures);
if (withPlanner)
  add(
    'planner, 10,000 services (ms)',
    tenK,
    towardWorse(tenK, 'high', 1),
    `≤ ${TARGET_10K_MS}`,
    tenK <= TARGET_10K_MS,
    `CPU ${tenKCpu.toFixed(0)} ms: most goes to allocating the plan's 10,000 rows, reasons, alerts and working rows, and to collecting them (profile in docs/performance.md; a larger young generation, node --max-semi-space-size=64, about meets the target); the wall time also waits for a core on a loaded machine`,
  );
if (withPlanner)
  add(
    'planner growth per 10× services',
    worstGrowth,
    `${towardWorse(worstGrowth, 'high', 1)}×`,
    `≤ ${TARGET_GROWTH}×`,
    worstGrowth <= TARGET_GROWTH,
    plannerGrowthOf.why,
  );
if (ruleScan)
  add(
    `a scan of every rule ÷ the rule lookup, ${ruleScan.rules.toLocaleString('en-US')} rules and ${ruleScan.services.toLocaleString('en-US')} services`,
    scanRatio,
    `${towardWorse(scanRatio, 'low', 0)}×`,
    `≥ ${TARGET_SCAN_RATIO}×`,
    scanRatio >= TARGET_SCAN_RATIO,
    'near 1×: the lookup tries every rule again, as the scan does; rules should sit in buckets by literal name and project (src/core/rules.ts, docs/performance.md)',
  );
if (withPlanner)
  add(
    `policy fit ÷ rule lookup, ${(largeFit?.rules ?? NaN).toLocaleString('en-US')} rules and ${(largeFit?.services ?? NaN).toLocaleString('en-US')} services`,
    fitRatio,
    `${towardWorse(fitRatio, 'high', 1)}×`,
    `≤ ${TARGET_FIT_RATIO}×`,
    fitWhole && fitRatio <= TARGET_FIT_RATIO,
    !fitWhole
      ? `the fit warned of ${largeFit?.warnings ?? 'no'} rules where ${largeFit ? fitWarningsExpected(largeFit.rules, largeFit.services) : '?'} govern no service: not the work timed`
      : 'the fit reads the fleet once (src/core/policy-fit.ts, docs/performance.md): a ratio far above the target is a scan of the fleet per rule again; near it, the collector on a loaded machine',
  );
if (ranked)
  add(
    `planner, ${ranked.services.toLocaleString('en-US')} ranked services ÷ five priorities`,
    rankedRatio,
    `${towardWorse(rankedRatio, 'high', 1)}×`,
    `≤ ${TARGET_RANKED_RATIO}×`,
    rankedRatio <= TARGET_RANKED_RATIO,
    'far above the target: work for each priority that reads the whole pool again (docs/performance.md, "Every service its own priority")',
  );
addQualityFigures(quality, add);
if (rtt) {
  // A run that failed or wrote less waits for fewer rounds: its figures are not the run's.
  const whole = rttRunWhole(rtt);
  const notWhole = `the run ended ${rtt.outcome} with ${rtt.writes} of its ${RTT_CHANGES} changes written: not the run measured`;
  add(
    `one run, round trips (100 services, ${rtt.writes} changes, RTT ${rtt.rttMs} ms)`,
    rtt.rounds,
    `${rtt.rounds} rounds of calls (${rtt.rpcs} RPCs)`,
    `≤ ${TARGET_RTT_ROUNDS}`,
    whole && rtt.rounds <= TARGET_RTT_ROUNDS,
    whole
      ? `the run waited for ${rtt.rounds} rounds of calls one after another: a step that calls after another's answer where it could call beside it (docs/performance.md, "The round trips of one run")`
      : notWhole,
  );
  add(
    `one run, wall ÷ RTT (the same run)`,
    rtt.ratio,
    `${towardWorse(rtt.ratio, 'high', 1)} RTT (${Math.round(rtt.wallMs)} ms)`,
    `≤ ${TARGET_RTT_RATIO}`,
    whole && rtt.ratio <= TARGET_RTT_RATIO,
    whole
      ? `the round trips are ${rtt.rounds}; the rest is CPU of the governor and of the emulator in the same process (decoding and encoding 100 services' Monitoring history, planning), ${Math.round(rtt.wallMs - rtt.rounds * rtt.rttMs)} ms here: docs/performance.md`
      : notWhole,
  );
}
if (fn) figures.push(...fn.figures);

if (quotaWeek)
  add(
    'quota requests in a week: pressured pool / calm pool',
    quotaWeek.requestsHot,
    `${quotaWeek.requestsHot} / ${quotaWeek.requestsCalm}`,
    '1 / 0',
    quotaWeekMet(quotaWeek),
    quotaWeekWhy(quotaWeek),
  );

if (org) {
  const p = org.processes;
  add(
    `organisation (${p.projects} projects) ÷ slowest single project`,
    p.org.ratio,
    `${towardWorse(p.org.ratio, 'high', 1)}×`,
    '≤ 2×',
    roundMet(p.org),
    `${p.verdict} (every unit's CPU and the emulator's share this machine's ${p.cores} cores, where Google runs each unit in its own instance: docs/organization.md)`,
  );
  if (p.sized)
    add(
      `organisation sized to this machine (${p.sized.projects} projects, ≤ 70% CPU) ÷ slowest single`,
      p.sized.ratio,
      `${towardWorse(p.sized.ratio, 'high', 1)}×`,
      '≤ 2×',
      roundMet(p.sized),
      `${p.sized.unitFailures} failed unit(s); ${Math.round(p.sized.cpuShare * 100)}% of ${p.cores} cores busy with this bench; the rest of the wall time is waiting for a core the machine's other load holds (load average ${p.load.after[0]?.toFixed(1)})`,
    );
  const reads = readsVerdict(p.readsPerProjectAlone, p.org.readsPerProject);
  add(
    'organisation: reads per project, alone / in the organisation',
    p.org.readsPerProject,
    `${p.readsPerProjectAlone} / ${p.org.readsPerProject}`,
    'equal',
    reads.met,
    reads.why,
  );
  const c = org.chaos.chaos;
  const chaos = chaosVerdict({ projects: org.chaos.projects, ...c });
  add(
    'organisation chaos: others completed, writes over quota',
    c.poolsOverQuota,
    `${c.completedOthers}/${c.others}, ${c.poolsOverQuota}`,
    'all, 0',
    chaos.met,
    chaos.why,
  );
}

lines.push('');
lines.push('Figures');
lines.push('');
const width = Math.max(...figures.map((f) => f.figure.length));
const shownWidth = Math.max(...figures.map((f) => f.shown.length));
lines.push(`  ${'figure'.padEnd(width)}  ${'value'.padEnd(shownWidth)}  target    `);
for (const f of figures)
  lines.push(
    `  ${f.figure.padEnd(width)}  ${f.shown.padEnd(shownWidth)}  ${f.target.padEnd(8)}  ${f.target.startsWith('—') ? '' : f.met ? 'met' : 'MISSED'}${f.why ? `\n  ${''.padEnd(width)}  why: ${f.why}` : ''}`,
  );
console.log(lines.join('\n'));

const out = full ? 'bench/results.json' : `bench/results-${only}.json`;
await writeResults(out, {
  node: process.version,
  planner: {
    rows: planner,
    largePools,
    growth,
    ruleLookup,
    ruleScan,
    policyFit,
    ranked,
    targets: {
      tenThousandMs: TARGET_10K_MS,
      growthPer10x: TARGET_GROWTH,
      fitToLookup: TARGET_FIT_RATIO,
      scanToLookup: TARGET_SCAN_RATIO,
      rankedToFive: TARGET_RANKED_RATIO,
    },
  },
  observation,
  quality,
  rtt,
  function: fn?.results ?? null,
  quotaRequests: quotaWeek,
  org,
  figures,
});
console.log(`\nwrote ${out}`);
