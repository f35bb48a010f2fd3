/**
 * `npm run lint` (after the build, which it needs): every check of the code that runs no test,
 * as many at once as the machine has CPUs. One after the other they took about 75 s on 2 cores,
 * each using little more than one; CI (`.ci/run`) runs them before the tests, within its 15
 * minutes. Each check's output is printed whole once it ends, so that two never interleave; the
 * lint fails when any check does, naming those that failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { delimiter, resolve } from 'node:path';

import pLimit from 'p-limit';
import { argumentsOrExit } from './arguments.js';

argumentsOrExit({
  name: 'lint',
  text: 'npm run lint (every check, as they are; takes no arguments)',
});

interface Check {
  name: string;
  command: string;
  args: string[];
}

/** The longest first, so that the last to start is a short one. */
const CHECKS: Check[] = [
  { name: 'types (tests, bench, scripts)', command: 'tsc', args: ['-p', 'tsconfig.test.json'] },
  { name: 'prettier', command: 'prettier', args: ['--check', '.'] },
  { name: 'eslint', command: 'eslint', args: ['.'] },
  { name: 'unused files and exports', command: 'npm', args: ['run', '--silent', 'check:unused'] },
  { name: 'import cycles', command: 'npm', args: ['run', '--silent', 'check:cycles'] },
];

interface Outcome {
  check: Check;
  code: number | null;
  output: string;
  seconds: number;
}

/**
 * The checks running now. A signal that stops the lint (a CI job's timeout, `kill`) reaches its
 * own process only: it is passed on to each check before the lint exits, or they would go on.
 */
const running = new Set<ChildProcess>();
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    for (const child of running) child.kill(signal);
    process.exit(code);
  });
}

function run(check: Check): Promise<Outcome> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(check.command, check.args, {
      // The project's own tools, also when this runs outside npm (node dist/scripts/lint.js).
      env: {
        ...process.env,
        PATH: `${resolve('node_modules/.bin')}${delimiter}${process.env.PATH ?? ''}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const end = (code: number | null, extra = '') => {
      running.delete(child);
      done({
        check,
        code,
        output: Buffer.concat(chunks).toString('utf8') + extra,
        seconds: (Date.now() - started) / 1000,
      });
    };
    child.on('error', (e) => end(null, `cannot run ${check.command}: ${e.message}\n`));
    child.on('close', (code) => end(code));
  });
}

const limit = pLimit(Math.max(1, availableParallelism()));
const outcomes = await Promise.all(
  CHECKS.map((check) =>
    limit(async () => {
      const o = await run(check);
      const verdict = o.code === 0 ? 'ok' : 'FAILED';
      process.stdout.write(`── ${check.name}: ${verdict} (${o.seconds.toFixed(0)} s)\n${o.output}`);
      return o;
    }),
  ),
);
const failed = outcomes.filter((o) => o.code !== 0).map((o) => o.check.name);
if (failed.length > 0) {
  process.stderr.write(`lint failed: ${failed.join(', ')}\n`);
  process.exitCode = 1;
}
