/**
 * Vitest global setup of the integration projects: says, before the tests and again after them,
 * when `dist/` is missing or older than the sources (test/support/built.ts). A warning, not a
 * failure: most integration files import the sources and need no build. Said once for the run,
 * whichever projects list this setup (oncePerRun).
 */
import { staleBuild } from './built.js';
import { oncePerRun } from './once-per-run.js';

function warn(): void {
  const problem = staleBuild();
  if (problem !== null) process.stderr.write(`\nwarning: ${problem}\n\n`);
}

export default function setup(): () => void | Promise<void> {
  // Again at the end, where it is seen: the tests' own output has scrolled the first away.
  const check = oncePerRun('build-check', () => undefined, warn);
  if (check.first) warn();
  return check.release;
}
