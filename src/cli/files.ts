import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { parsePolicyText, type Policy } from '../core/policy.js';
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

export async function loadPolicy(path: string): Promise<Policy> {
  return parsePolicyText(await readInputFile(path, 'policy'), `policy ${path}`);
}

export async function loadSnapshot(path: string): Promise<Snapshot> {
  return parseSnapshotText(await readInputFile(path, 'snapshot'), `snapshot ${path}`);
}
