import { existsSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, errorMessage } from './core/errors.js';

/**
 * Reading a file someone named, never more than a limit. `readFile` reads until the end, so a
 * policy named `/dev/zero` or a multi-gigabyte snapshot fills memory before any check runs and
 * fails with V8's "Invalid string length". Every file the tools read for a user (policy, snapshot,
 * fleet, trace, the file state store's documents) goes through here with its own limit, and a
 * file over it is refused by its caller, naming the limit. Pipes and devices are read like files
 * (`--policy <(…)` works); only the limit stops an endless one.
 */

/** The largest snapshot, fleet or scenario file and state document read, in bytes (64 MiB). */
export const MAX_DOCUMENT_BYTES = 64 << 20;
/** The largest request trace read, in bytes (64 MiB; the Azure traces are under 1 MiB). */
export const MAX_TRACE_BYTES = 64 << 20;

const CHUNK = 1 << 16;

/**
 * The file's bytes, or `null` when it holds more than `maxBytes` (at most `maxBytes + 1` are
 * read). File-system errors (ENOENT, EISDIR, EACCES, …) are thrown as they come.
 */
export async function readCapped(path: string, maxBytes: number): Promise<Buffer | null> {
  const handle = await open(path, 'r');
  try {
    return await readHandleCapped(handle, maxBytes);
  } finally {
    await handle.close();
  }
}

/** {@link readCapped} on a file already open, from where it stands; the caller closes it. */
export async function readHandleCapped(
  handle: FileHandle,
  maxBytes: number,
): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const want = Math.min(CHUNK, maxBytes + 1 - total);
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(want), 0, want, null);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
    if (total > maxBytes) return null;
  }
  return Buffer.concat(chunks, total);
}

/** {@link readCapped} on a descriptor already open, synchronously; the caller closes it. */
export function readCappedSync(fd: number, maxBytes: number): Buffer | null {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const want = Math.min(CHUNK, maxBytes + 1 - total);
    const buffer = Buffer.alloc(want);
    const n = readSync(fd, buffer, 0, want, null);
    if (n === 0) break;
    chunks.push(buffer.subarray(0, n));
    total += n;
    if (total > maxBytes) return null;
  }
  return Buffer.concat(chunks, total);
}

/** How a limit reads in an error: "4 MiB", "64 MiB", or bytes below 1 KiB. */
export function sizeText(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes >> 20} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes >> 10} KiB`;
  return `${bytes} bytes`;
}

/** The errno of a failed read or write, in words ("no such file", "is a directory", …). */
export function fileFaultText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'ENOTDIR') return 'a part of the path that should be a folder is not one';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOSPC') return 'no space left on device';
  if (code === 'EROFS') return 'read-only file system';
  return errorMessage(error);
}

/**
 * {@link fileFaultText} of a file the message names already: Node's own message for these
 * repeats the path, the whole of a name too long (twice a line of 100 KB for one of 50 KB).
 */
function namedFileFault(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENAMETOOLONG') return 'its name is too long for the file system';
  if (code === 'ELOOP') return 'too many symbolic links to follow (a loop?)';
  return fileFaultText(error);
}

/**
 * A file the user named (`what`: "policy", "snapshot", "fleet", …), as UTF-8 text of at most
 * `maxBytes`. Unreadable or over the limit is bad input (InputError, exit 2), naming the file.
 */
export async function readInputText(path: string, what: string, maxBytes: number): Promise<string> {
  // `--policy=` or `--fleet "$UNSET"`: read as a path, it was "cannot read the policy file : no
  // such file", which named no file and blamed one.
  if (path.trim() === '') {
    throw new InputError(
      `cannot read the ${what} file ${JSON.stringify(path)}: its name is empty; name the file to read`,
      [],
    );
  }
  let bytes: Buffer | null;
  try {
    bytes = await readCapped(path, maxBytes);
  } catch (e) {
    throw new InputError(`cannot read the ${what} file ${path}: ${namedFileFault(e)}`, [], {
      cause: e,
    });
  }
  if (bytes === null) {
    throw new InputError(
      `cannot read the ${what} file ${path}: over ${sizeText(maxBytes)}, the most a ${what} file may have`,
      [],
    );
  }
  const text = utf8Text(bytes);
  if (text === null) {
    throw new InputError(
      `cannot read the ${what} file ${path}: line ${invalidUtf8Line(bytes)} is not UTF-8 text`,
      [],
    );
  }
  // Valid UTF-8, but neither YAML (its printable characters leave out x00:
  // https://yaml.org/spec/1.2.2/#51-character-set) nor JSON (a control character only escaped,
  // in a string: https://www.rfc-editor.org/rfc/rfc8259#section-7): binary data, or UTF-16
  // text without its byte order mark. Parsed on, it read as a key no one wrote ("version:
  // missing"), or a file of zeros as "expected object".
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    throw new InputError(
      `cannot read the ${what} file ${path}: line ${lineOf(bytes, nul)} holds a NUL byte: binary data or UTF-16, not UTF-8 text`,
      [],
    );
  }
  return text;
}

/** The 1-based line of the byte at `offset`. */
function lineOf(bytes: Buffer, offset: number): number {
  let line = 1;
  for (let at = bytes.indexOf(0x0a); at !== -1 && at < offset; at = bytes.indexOf(0x0a, at + 1))
    line += 1;
  return line;
}

/**
 * The bytes as UTF-8 text, or null when they are not UTF-8: `toString('utf8')` would turn each
 * bad byte into U+FFFD silently, so a policy saved in Latin-1 would match or name something else.
 */
function utf8Text(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** The 1-based line holding the first byte that is not UTF-8. */
function invalidUtf8Line(bytes: Buffer): number {
  let line = 1;
  let start = 0;
  for (;;) {
    const end = bytes.indexOf(0x0a, start);
    if (utf8Text(bytes.subarray(start, end === -1 ? bytes.length : end)) === null) return line;
    if (end === -1) return line;
    line += 1;
    start = end + 1;
  }
}

/**
 * A file or folder the package ships (examples/…), wherever the package is installed: `relative`
 * under the nearest folder above this module that holds it, so that the sources (src/) and the
 * build (dist/src/) find the same one. Not found anywhere: `relative` under this module's folder,
 * for the read that follows to fail naming it.
 */
export function shippedPath(relative: string): string {
  const from = dirname(fileURLToPath(import.meta.url));
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return join(from, relative);
  }
}
