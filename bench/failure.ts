import { cutText } from '../src/core/errors.js';

/**
 * How a bench that cannot finish ends (docs/performance.md, "When a bench fails"): one line on
 * stderr, `bench failed: STEP: WHY`, and exit code 1; never a stack trace. The processes it started
 * and its temporary directories go with it (bench/stop-on-signal.ts cleans up on exit).
 *
 * Each part of a bench runs as a named step ({@link step}); an error outside any step (or one
 * thrown later by something a step left running) still ends the bench in one line, named by the
 * last step begun.
 */

let current = 'starting';
let installed = false;

/** A line of a stack trace (or of Node's report of one) that says where, not why. */
const whereLine = (l: string): boolean =>
  /^at\s/.test(l) ||
  /^\^+$/.test(l) ||
  /^Node\.js v\d/.test(l) ||
  /^(node:|file:\/\/|\/)\S+:\d+$/.test(l);

/**
 * An error's message on one line, at most 600 characters, with no stack trace: a child process's
 * last words (which a message may quote) are cut down to the error they report.
 */
export function failureReason(e: unknown): string {
  const text = e instanceof Error ? e.message || e.name : String(e);
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const [first = '', ...rest] = lines;
  // A child's crash quoted after the message's own words: its error line is the why.
  const error = rest.findLast((l) => /^([A-Z]\w*)?Error( \[\w+\])?: /.test(l));
  const kept =
    error !== undefined
      ? `${first.replace(/\s*(node:|file:\/\/|\/)\S+:\d+$/, '')} ${error}`
      : lines.filter((l) => !whereLine(l)).join(' ');
  return cutText(kept, 600) || 'no reason given';
}

function fail(name: string, e: unknown): never {
  console.error(`bench failed: ${name}: ${failureReason(e)}`);
  // The exit hook of bench/stop-on-signal.ts stops the processes still running and removes the
  // temporary directories.
  process.exit(1);
}

/** Ends the bench in one line on any error not caught in a step. Call once, before any step. */
export function failInOneLine(): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtException', (e) => fail(current, e));
  process.on('unhandledRejection', (e) => fail(current, e));
}

/** Runs one part of a bench; should it fail, the bench ends with its name and why. */
export async function step<T>(name: string, run: () => T | Promise<T>): Promise<T> {
  failInOneLine();
  current = name;
  try {
    return await run();
  } catch (e) {
    return fail(name, e);
  }
}

/**
 * Neither `npm run bench` nor `npm run bench:function` reads an argument: one given is a mistake
 * (a part named where BENCH_ONLY names it), refused before anything runs, exit code 2.
 */
export function refuseArguments(command: string, hint: string): void {
  const given = process.argv.slice(2);
  if (given.length === 0) return;
  console.error(
    `${command} takes no arguments (${hint}): not ${given.map((a) => JSON.stringify(a)).join(' ')}`,
  );
  process.exit(2);
}
