import { InputError } from '../core/errors.js';
import { NO_PROJECTS, parsePolicyText, type Policy } from '../core/policy.js';
import { formatSnapshot, parseSnapshotText, type Snapshot } from '../core/snapshot.js';
import { MAX_DOCUMENT_BYTES, readInputText, sizeText } from '../read-capped.js';
import { MAX_POLICY_BYTES } from '../core/document.js';
import type { Streams } from './io.js';

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

/** The largest snapshot file read (`plan --snapshot`, `status --snapshot`), in bytes. */
export const MAX_SNAPSHOT_BYTES = MAX_DOCUMENT_BYTES;

/** `maxBytes`: {@link MAX_SNAPSHOT_BYTES}, smaller in tests. */
export async function loadSnapshot(path: string, maxBytes = MAX_SNAPSHOT_BYTES): Promise<Snapshot> {
  return parseSnapshotText(await readInputText(path, 'snapshot', maxBytes), `snapshot ${path}`);
}

/**
 * `governor snapshot`'s output: the snapshot on stdout, whole (it is what was observed, and a
 * tool other than the governor may read it), and, when it is larger than a snapshot file may be
 * (`maxBytes`: {@link MAX_SNAPSHOT_BYTES}, smaller in tests), a warning on stderr first, naming
 * both sizes: saved, it would be refused when read back. Its size is the service count times the
 * minutes of the policy's `lookback` (a week of minutes is about 75 KB a service).
 */
export function writeSnapshot(
  io: Streams,
  snapshot: Snapshot,
  maxBytes = MAX_SNAPSHOT_BYTES,
): void {
  const text = formatSnapshot(snapshot);
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes)
    io.stderr.write(
      `warning: this snapshot is ${bytes} bytes, over the ${sizeText(maxBytes)} a snapshot file may have: \`governor plan --snapshot\` and \`status --snapshot\` will refuse it (observe fewer projects, or a policy with a shorter lookback)\n`,
    );
  io.stdout.write(text);
}
