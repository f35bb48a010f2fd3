import { createHash } from 'node:crypto';
import { access, mkdir, readFile } from 'node:fs/promises';
import { dirname, join, posix, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ZipFile } from 'yazl';
import { argumentsOrExit } from './arguments.js';
import { errorMessage } from '../src/core/errors.js';
import { writeWhole } from '../src/write-whole.js';

/**
 * Builds the Cloud Function's source archive, `dist/function.zip`, from the compiled code. Run with
 * `npm run package` (which builds first). The archive holds:
 *
 * - The compiled modules the function loads: its entry module and every module it imports, from
 *   there down (static imports and re-exports, and `import()` of a literal path, which is how the
 *   adapters are loaded on the first run). Not the CLI, the emulator, the simulator or the chaos
 *   harness, which it never loads: a change to those is not a new archive, so not a redeploy. No
 *   source maps (they point at `src/*.ts`, which the archive does not carry) and no declarations.
 * - `package.json`, rewritten for the function: `main` is the function's entry module, and the only
 *   script is an empty `gcp-build`, so Google's build neither compiles again (it would run `build`)
 *   nor runs `prepare`. Dependencies are kept as they are so that the lock file stays in sync, and
 *   so is `allowScripts`, the decision on dependencies' install scripts.
 * - `package-lock.json`, as it is, so the build installs exactly the tested dependency tree.
 *
 * The archive is deterministic: entries sorted by path, one fixed timestamp, fixed permissions, no
 * extra timestamp fields. Built twice from the same files with the same Node.js, it is the same
 * bytes, so its SHA-256 (which the Terraform module puts in the object name) changes only when the
 * code or the dependencies do.
 */

/** The function's entry module inside the archive (entry points `governorHttp`, `governorEvent`). */
export const FUNCTION_MAIN = 'dist/src/function/index.js';

/** Where `npm run package` writes the archive, relative to the project root. */
export const DEFAULT_OUTPUT = 'dist/function.zip';

const FILE_MODE = 0o100644;

export interface PackageOptions {
  /** Project root: holds `package.json`, `package-lock.json` and the compiled `dist/src`. */
  root: string;
  /** Output path, relative to root unless absolute. Default `dist/function.zip`. */
  out?: string;
}

export interface PackageResult {
  path: string;
  size: number;
  sha256: string;
  entries: string[];
}

type PackageJson = Record<string, unknown>;

/** The project's package.json as the function's build sees it. */
export function functionPackageJson(pkg: PackageJson): PackageJson {
  const keep = ['name', 'version', 'description', 'license', 'type', 'engines'] as const;
  const out: PackageJson = {};
  for (const key of keep) {
    if (pkg[key] !== undefined) out[key] = pkg[key];
  }
  out['main'] = FUNCTION_MAIN;
  out['scripts'] = { 'gcp-build': '' };
  if (pkg['dependencies'] !== undefined) out['dependencies'] = pkg['dependencies'];
  if (pkg['devDependencies'] !== undefined) out['devDependencies'] = pkg['devDependencies'];
  if (pkg['allowScripts'] !== undefined) out['allowScripts'] = pkg['allowScripts'];
  return out;
}

/** `import(` with something other than a quoted path: which module it loads is known only at run time. */
const COMPUTED_IMPORT = /\bimport\s*\(\s*[^'"\s]/;

/**
 * The compiled modules `entry` loads, from it down, as sorted archive paths (forward slashes)
 * relative to root. Imports are read with TypeScript's own scanner (`preProcessFile`, which skips
 * comments and strings); packages (bare specifiers) are left to the install.
 */
async function loadedModules(root: string, entry: string): Promise<string[]> {
  const found = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const rel = queue.pop() as string;
    if (found.has(rel)) continue;
    let text: string;
    try {
      text = await readFile(join(root, rel), 'utf8');
    } catch (cause) {
      throw new Error(`${rel} is imported by the function but missing: build first`, { cause });
    }
    found.add(rel);
    if (COMPUTED_IMPORT.test(text)) {
      throw new Error(
        `${rel} imports a module whose name is computed at run time: the archive cannot tell which modules the function needs`,
      );
    }
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (fileName.startsWith('./') || fileName.startsWith('../')) {
        queue.push(posix.join(posix.dirname(rel), fileName));
      }
    }
  }
  return [...found].sort(byCodePoint);
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function zipToBuffer(files: ReadonlyMap<string, Buffer>): Promise<Buffer> {
  // yazl writes MS-DOS date fields from the Date's local-time parts, so build the Date from local
  // parts too (here, in the time zone in force now): the fields are then 2000-01-01 00:00 whatever
  // the machine's time zone.
  // eslint-disable-next-line machine/no-restricted-syntax -- local parts on purpose, as above
  const mtime = new Date(2000, 0, 1, 0, 0, 0);
  const zip = new ZipFile();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolvePromise, reject) => {
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('end', () => resolvePromise(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
  for (const name of [...files.keys()].sort(byCodePoint)) {
    const data = files.get(name);
    if (data === undefined) continue;
    zip.addBuffer(data, name, {
      mtime,
      mode: FILE_MODE,
      compress: true,
      forceDosTimestamp: true,
    });
  }
  zip.end({ forceZip64Format: false, comment: '' });
  return done;
}

/**
 * Writes the archive whole or not at all (src/write-whole.ts), so that a write that fails part
 * way (a full disk) leaves the archive that was there before as it was: a cut archive has a
 * SHA-256 of its own, so the next `terraform apply` uploaded it and only Google's build failed on
 * it. A failure names the file.
 */
async function writeArchive(file: string, data: Buffer): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeWhole(file, data);
  } catch (cause) {
    const why = errorMessage(cause);
    throw new Error(`cannot write ${file}: ${why}`, { cause });
  }
}

/** Builds the archive and writes it; returns where, how big, and its SHA-256. */
export async function buildFunctionPackage(options: PackageOptions): Promise<PackageResult> {
  const root = resolve(options.root);
  const outPath = resolve(root, options.out ?? DEFAULT_OUTPUT);

  try {
    await access(join(root, FUNCTION_MAIN));
  } catch (cause) {
    throw new Error(
      `${FUNCTION_MAIN} is missing: build first (npm run package runs npm run build), or the function's entry module has moved`,
      { cause },
    );
  }

  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as PackageJson;
  const files = new Map<string, Buffer>();
  files.set('package.json', Buffer.from(JSON.stringify(functionPackageJson(pkg), null, 2) + '\n'));
  files.set('package-lock.json', await readFile(join(root, 'package-lock.json')));
  for (const rel of await loadedModules(root, FUNCTION_MAIN)) {
    files.set(rel, await readFile(join(root, rel)));
  }

  const zip = await zipToBuffer(files);
  await writeArchive(outPath, zip);
  return {
    path: outPath,
    size: zip.length,
    sha256: createHash('sha256').update(zip).digest('hex'),
    entries: [...files.keys()].sort(byCodePoint),
  };
}

async function main(): Promise<void> {
  const { positionals } = argumentsOrExit({
    name: 'package',
    positionals: 1,
    text: `node dist/scripts/package.js [OUT] (default ${DEFAULT_OUTPUT})`,
  });
  const root = process.cwd();
  const result = await buildFunctionPackage({ root, out: positionals[0] ?? DEFAULT_OUTPUT });
  const shown = result.path.startsWith(root + '/')
    ? result.path.slice(root.length + 1)
    : result.path;
  console.log(`${shown}  ${result.size} bytes  ${result.entries.length} files`);
  console.log(`sha256 ${result.sha256}`);
}

const invoked = process.argv[1];
if (invoked !== undefined && import.meta.url === pathToFileURL(resolve(invoked)).href) {
  main().catch((error: unknown) => {
    console.error(`package: ${errorMessage(error)}`);
    process.exitCode = 1;
  });
}
