import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { NO_PROJECTS, parsePolicyText, type Policy } from '../core/policy.js';
import { parseSnapshotText, type Snapshot } from '../core/snapshot.js';
import { MAX_DOCUMENT_BYTES, MAX_POLICY_BYTES, readInputText } from '../read-capped.js';

/**
 * The policy file, parsed. `forProjects`: the command observes or writes the policy's projects,
 * so a policy that only finds them by `discovery` (its `projects` empty) is refused here, naming
 * what to do, rather than running on nothing.
 */
export async function loadPolicy(
  path: string,
  use: { forProjects?: string } = {},
): Promise<Policy> {
  const policy = parsePolicyText(
    await readInputText(path, 'policy', MAX_POLICY_BYTES),
    `policy ${path}`,
  );
  if (use.forProjects && policy.projects.length === 0) {
    throw new InputError(`policy ${path} cannot be used by \`governor ${use.forProjects}\``, [
      { path: 'projects', message: NO_PROJECTS },
    ]);
  }
  return policy;
}

export async function loadSnapshot(path: string): Promise<Snapshot> {
  return parseSnapshotText(
    await readInputText(path, 'snapshot', MAX_DOCUMENT_BYTES),
    `snapshot ${path}`,
  );
}

/** A file shipped with the package (examples/…), wherever the package is installed. */
export function packagedFile(relative: string): string {
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}
