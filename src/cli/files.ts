import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { NO_PROJECTS, parsePolicyText, type Policy } from '../core/policy.js';
import { parseSnapshotText, type Snapshot } from '../core/snapshot.js';

/** Reads a file named on the command line; a missing or unreadable file is bad input (exit 2). */
export async function readInputFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : (e as Error).message;
    throw new InputError(`cannot read the ${what} file ${path}: ${why}`, [], { cause: e });
  }
}

/**
 * The policy file, parsed. `forProjects`: the command observes or writes the policy's projects,
 * so a policy that only finds them by `discovery` (its `projects` empty) is refused here, naming
 * what to do, rather than running on nothing.
 */
export async function loadPolicy(
  path: string,
  use: { forProjects?: string } = {},
): Promise<Policy> {
  const policy = parsePolicyText(await readInputFile(path, 'policy'), `policy ${path}`);
  if (use.forProjects && policy.projects.length === 0) {
    throw new InputError(`policy ${path} cannot be used by \`governor ${use.forProjects}\``, [
      { path: 'projects', message: NO_PROJECTS },
    ]);
  }
  return policy;
}

export async function loadSnapshot(path: string): Promise<Snapshot> {
  return parseSnapshotText(await readInputFile(path, 'snapshot'), `snapshot ${path}`);
}

/** A file shipped with the package (examples/…), wherever the package is installed. */
export function packagedFile(relative: string): string {
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}
