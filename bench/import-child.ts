/**
 * Run in a fresh process by bench/cold-start.ts: imports each module named on the command line,
 * in order, and prints one JSON line with the milliseconds each took. A module already loaded by
 * an earlier one costs only what it adds, so the order tells what each step adds to a start.
 *
 *   node dist/bench/import-child.js MODULE...
 */
const steps: Array<{ module: string; ms: number }> = [];
for (const module of process.argv.slice(2)) {
  const t0 = performance.now();
  await import(module);
  steps.push({ module, ms: performance.now() - t0 });
}
process.stdout.write(JSON.stringify(steps) + '\n');
