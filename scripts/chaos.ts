import { chaosProblems, runChaos, renderChaosReport } from '../src/chaos/chaos.js';

/**
 * `npm run chaos`: randomized governor runs under injected faults (src/chaos/chaos.ts), many
 * more than the test suite makes. Prints the seed and a table of runs, faults by kind, invariant
 * violations, alerts lost and writes skipped by reason; exits 1 on any of `chaosProblems` (a
 * violation, a lost alert, a crash, a lease left held or refused, a pool a quiet run left over
 * its quota, or another writer that acted in fewer runs than asked). CHAOS_SEED and CHAOS_RUNS
 * override the seed (default: random) and the run count (default 20,000); the runs go on until
 * another writer has acted in CHAOS_OTHER_RUNS of them too (default: CHAOS_RUNS).
 */

const seed = process.env.CHAOS_SEED
  ? Number(process.env.CHAOS_SEED)
  : Math.floor(Math.random() * 2 ** 31);
const runs = process.env.CHAOS_RUNS ? Number(process.env.CHAOS_RUNS) : 20_000;
const otherActorRuns = process.env.CHAOS_OTHER_RUNS ? Number(process.env.CHAOS_OTHER_RUNS) : runs;
if (
  !Number.isInteger(seed) ||
  !Number.isInteger(runs) ||
  runs < 1 ||
  !Number.isInteger(otherActorRuns) ||
  otherActorRuns < 0
) {
  process.stderr.write(
    'CHAOS_SEED, CHAOS_RUNS and CHAOS_OTHER_RUNS must be whole numbers (CHAOS_RUNS ≥ 1)\n',
  );
  process.exit(2);
}
process.stdout.write(
  `chaos: seed ${seed}, ${runs} runs or more, until another writer acted in ${otherActorRuns} (reproduce: CHAOS_SEED=${seed})\n`,
);
const started = Date.now();
const report = await runChaos({ seed, runs, otherActorRuns });
process.stdout.write(`${renderChaosReport(report)}\n`);
process.stdout.write(`(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
const problems = chaosProblems(report, otherActorRuns);
for (const line of problems.slice(0, 40)) process.stdout.write(`${line}\n`);
process.exitCode = problems.length > 0 ? 1 : 0;
