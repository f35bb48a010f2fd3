/**
 * Vitest global setup of the integration project: says, before the tests and again after them,
 * when `dist/` is missing or older than the sources (test/support/built.ts). A warning, not a
 * failure: most integration files import the sources and need no build.
 */
import { staleBuild } from './built.js';

export default function setup(): () => void {
  const problem = staleBuild();
  const warn = (): void => {
    if (problem !== null) process.stderr.write(`\nwarning: ${problem}\n\n`);
  };
  warn();
  return warn;
}
