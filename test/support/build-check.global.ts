/**
 * Vitest global setup of the integration projects: says, before the tests and again after them,
 * when `dist/` is missing or older than the sources (test/support/built.ts). A warning, not a
 * failure: most integration files import the sources and need no build. Said once for the run,
 * whichever projects list this setup (each project runs its own).
 */
import { staleBuild } from './built.js';

const run = globalThis as { governorBuildChecked?: { users: number } };

export default function setup(): () => void {
  const first = run.governorBuildChecked === undefined;
  const checked = (run.governorBuildChecked ??= { users: 0 });
  checked.users += 1;
  const problem = first ? staleBuild() : null;
  if (problem !== null) process.stderr.write(`\nwarning: ${problem}\n\n`);
  return () => {
    checked.users -= 1;
    if (checked.users > 0) return;
    run.governorBuildChecked = undefined;
    // Again at the end, where it is seen: the tests' own output has scrolled the first away.
    const after = staleBuild();
    if (after !== null) process.stderr.write(`\nwarning: ${after}\n\n`);
  };
}
