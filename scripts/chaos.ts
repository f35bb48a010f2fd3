import { chaosProblems, chaosSettings, runChaos, renderChaosReport } from '../src/chaos/chaos.js';
import { argumentsOrExit } from './arguments.js';

/**
 * `npm run chaos`: randomized governor runs under injected faults (src/chaos/chaos.ts), many
 * more than the test suite makes. Prints the seed and a table of runs, faults by kind, invariant
 * violations, alerts lost and writes skipped by reason; exits 1 on any of `chaosProblems` (a
 * violation, a lost alert, a crash, a lease left held or refused, a pool a quiet run left over
 * its quota, or another writer that acted in fewer runs than asked). CHAOS_SEED and CHAOS_RUNS
 * override the seed (default: random) and the run count (default 20,000); the runs go on until
 * another writer has acted in CHAOS_OTHER_RUNS of them too (default: CHAOS_RUNS).
 */

argumentsOrExit({
  name: 'chaos',
  text: '[CHAOS_SEED=N] [CHAOS_RUNS=N] [CHAOS_OTHER_RUNS=N] npm run chaos (settings are variables, not arguments)',
});
const settings = chaosSettings(process.env, {
  seed: Math.floor(Math.random() * 2 ** 31),
  runs: 20_000,
});
if ('error' in settings) {
  process.stderr.write(`${settings.error}\n`);
  process.exit(2);
}
const { seed, runs, otherActorRuns } = settings;
process.stdout.write(
  `chaos: seed ${seed}, ${runs} runs or more, until another writer acted in ${otherActorRuns} (reproduce: CHAOS_SEED=${seed})\n`,
);
const started = Date.now();
// CHAOS_FAIL_REVISIONS=1: GetRevision calls fail at each run's error rate too.
const failRevisionReads = process.env['CHAOS_FAIL_REVISIONS'] === '1';
const report = await runChaos({ seed, runs, otherActorRuns, failRevisionReads });
process.stdout.write(`${renderChaosReport(report)}\n`);
process.stdout.write(`(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
const problems = chaosProblems(report, otherActorRuns);
for (const line of problems.slice(0, 40)) process.stdout.write(`${line}\n`);
process.exitCode = problems.length > 0 ? 1 : 0;
