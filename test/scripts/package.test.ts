import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFunctionPackage, FUNCTION_MAIN, functionPackageJson } from '../../scripts/package.js';

/** A project root as `npm run build` leaves it, in a temporary directory. */
async function fixture(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'governor-package-'));
  const files: Record<string, string> = {
    'package.json': JSON.stringify({
      name: 'cloud-run-gpu-governor',
      version: '0.1.0',
      type: 'module',
      bin: { governor: 'bin/governor.js' },
      main: 'dist/src/index.js',
      files: ['bin', 'dist/src'],
      scripts: { build: 'tsc', prepare: 'npm run build', test: 'vitest' },
      engines: { node: '>=20.12' },
      dependencies: { yaml: '^2.0.0' },
      devDependencies: { typescript: '~5.9' },
    }),
    'package-lock.json': '{"lockfileVersion":3}\n',
    // What the function loads: a static import, a re-export, a literal dynamic import (the
    // adapters are loaded so on the first run), written here with a space after `import`, which
    // JavaScript allows, so that test/support/projects.test.ts does not take it for this file's
    // own. A path in a comment is not an import.
    [FUNCTION_MAIN]: [
      `import { a } from '../core/a.js';`,
      `export { c } from './c.js';`,
      `// import { server } from '../emulator/server.js';`,
      `export const governorHttp = () => a;`,
      `export const load = () => import ('../core/b.js');`,
      '',
    ].join('\n'),
    'dist/src/function/c.js': `import { z } from 'zod';\nexport const c = z;\n`,
    // Never loaded by the function: the CLI and the emulator.
    'dist/src/cli/main.js': `import { a } from '../core/a.js';\nexport const main = a;\n`,
    'dist/src/emulator/server.js': 'export const server = 1;\n',
    'dist/src/function/index.js.map': '{}',
    'dist/src/function/index.d.ts': 'export {};\n',
    'dist/src/core/b.js': 'export const b = 2;\n',
    'dist/src/core/a.js': 'export const a = 1;\n',
    'dist/scripts/package.js': '// not part of the function\n',
    'src/core/a.ts': 'export const a = 1;\n',
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

interface ZipEntry {
  name: string;
  mode: number;
  dosTime: number;
  dosDate: number;
  extraLength: number;
  data: Buffer;
}

/** Reads a zip's central directory (enough of the format for what the packager writes). */
function readZip(zip: Buffer): ZipEntry[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd).toBeGreaterThan(0);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    expect(zip.readUInt32LE(at)).toBe(0x02014b50);
    const method = zip.readUInt16LE(at + 10);
    const dosTime = zip.readUInt16LE(at + 12);
    const dosDate = zip.readUInt16LE(at + 14);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const external = zip.readUInt32LE(at + 38);
    const localAt = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    const dataAt = localAt + 30 + zip.readUInt16LE(localAt + 26) + zip.readUInt16LE(localAt + 28);
    const raw = zip.subarray(dataAt, dataAt + compressedSize);
    entries.push({
      name,
      mode: external >>> 16,
      dosTime,
      dosDate,
      extraLength,
      data: method === 8 ? inflateRawSync(raw) : Buffer.from(raw),
    });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

const savedTz = process.env['TZ'];
afterEach(() => {
  if (savedTz === undefined) delete process.env['TZ'];
  else process.env['TZ'] = savedTz;
});

describe('npm run package', () => {
  it('holds the compiled JavaScript, the rewritten package.json and the lock, sorted', async () => {
    const root = await fixture();
    const result = await buildFunctionPackage({ root });
    expect(result.path).toBe(join(root, 'dist/function.zip'));
    const entries = readZip(await readFile(result.path));
    expect(entries.map((e) => e.name)).toEqual([
      'dist/src/core/a.js',
      'dist/src/core/b.js',
      'dist/src/function/c.js',
      'dist/src/function/index.js',
      'package-lock.json',
      'package.json',
    ]);
    expect(result.entries).toEqual(entries.map((e) => e.name));
    expect(result.size).toBe((await readFile(result.path)).length);
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);

    const pkg = JSON.parse(
      entries.find((e) => e.name === 'package.json')?.data.toString('utf8') ?? '{}',
    ) as Record<string, unknown>;
    expect(pkg['main']).toBe('dist/src/function/index.js');
    expect(pkg['scripts']).toEqual({ 'gcp-build': '' });
    expect(pkg['type']).toBe('module');
    expect(pkg['bin']).toBeUndefined();
    expect(pkg['dependencies']).toEqual({ yaml: '^2.0.0' });
    expect(entries.find((e) => e.name === 'package-lock.json')?.data.toString()).toBe(
      '{"lockfileVersion":3}\n',
    );
  });

  it('fixes permissions and timestamps, with no extra timestamp fields', async () => {
    const result = await buildFunctionPackage({ root: await fixture() });
    for (const entry of readZip(await readFile(result.path))) {
      expect(entry.mode, entry.name).toBe(0o100644);
      expect(entry.extraLength, entry.name).toBe(0);
      expect(entry.dosDate, entry.name).toBe(((2000 - 1980) << 9) | (1 << 5) | 1);
      expect(entry.dosTime, entry.name).toBe(0);
    }
  });

  it('gives byte-identical archives on two runs, whatever the file times and the time zone', async () => {
    const root = await fixture();
    process.env['TZ'] = 'UTC';
    const first = await buildFunctionPackage({ root, out: 'one.zip' });
    const later = new Date('2031-05-06T07:08:09Z');
    await utimes(join(root, FUNCTION_MAIN), later, later);
    await utimes(join(root, 'package.json'), later, later);
    process.env['TZ'] = 'Asia/Kolkata';
    const second = await buildFunctionPackage({ root, out: 'two.zip' });
    expect(second.sha256).toBe(first.sha256);
    expect(Buffer.compare(await readFile(first.path), await readFile(second.path))).toBe(0);
  });

  it('changes when the code changes', async () => {
    const root = await fixture();
    const before = await buildFunctionPackage({ root, out: 'one.zip' });
    await writeFile(join(root, 'dist/src/core/a.js'), 'export const a = 3;\n');
    const after = await buildFunctionPackage({ root, out: 'two.zip' });
    expect(after.sha256).not.toBe(before.sha256);
  });

  it('holds only the modules the function loads, not the CLI or the emulator', async () => {
    const root = await fixture();
    const result = await buildFunctionPackage({ root });
    expect(result.entries).not.toContain('dist/src/cli/main.js');
    expect(result.entries).not.toContain('dist/src/emulator/server.js');
    // So a change to them is not a new archive, and not a redeploy.
    await writeFile(join(root, 'dist/src/emulator/server.js'), 'export const server = 2;\n');
    const again = await buildFunctionPackage({ root, out: 'again.zip' });
    expect(again.sha256).toBe(result.sha256);
  });

  it('refuses a module the function imports that the build did not write', async () => {
    const root = await fixture();
    const { rm } = await import('node:fs/promises');
    await rm(join(root, 'dist/src/core/b.js'));
    await expect(buildFunctionPackage({ root })).rejects.toThrow(
      /dist\/src\/core\/b\.js is imported by the function but missing/,
    );
  });

  it('refuses an import whose module is named at run time', async () => {
    const root = await fixture();
    await writeFile(
      join(root, 'dist/src/function/c.js'),
      `const name = './x.js';\nexport const c = () => import (name);\n`,
    );
    await expect(buildFunctionPackage({ root })).rejects.toThrow(
      /dist\/src\/function\/c\.js imports a module whose name is computed at run time/,
    );
  });

  it('refuses to package without the function entry module', async () => {
    const root = await fixture();
    await writeFile(join(root, 'package.json'), '{}');
    const { rm } = await import('node:fs/promises');
    await rm(join(root, FUNCTION_MAIN));
    await expect(buildFunctionPackage({ root })).rejects.toThrow(/dist\/src\/function\/index\.js/);
  });
});

describe('functionPackageJson', () => {
  it("keeps the decisions on dependencies' install scripts", () => {
    const out = functionPackageJson({
      name: 'x',
      dependencies: { protobufjs: '^7.0.0' },
      allowScripts: { protobufjs: false },
    });
    expect(out['allowScripts']).toEqual({ protobufjs: false });
  });

  it('drops prepare and every other script, and points main at the function', () => {
    const out = functionPackageJson({
      name: 'x',
      type: 'module',
      scripts: { prepare: 'npm run build', build: 'tsc' },
      main: 'dist/src/index.js',
      types: 'dist/src/index.d.ts',
      files: ['dist'],
    });
    expect(out).toEqual({
      name: 'x',
      type: 'module',
      main: FUNCTION_MAIN,
      scripts: { 'gcp-build': '' },
    });
  });
});

describe("the project's package.json", () => {
  it('names as entry points only files the repository holds or the build writes', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
      main?: string;
      types?: string;
      bin: Record<string, string>;
    };
    const entries = [pkg.main, pkg.types, ...Object.values(pkg.bin)].filter(
      (e): e is string => e !== undefined,
    );
    expect(entries.length).toBeGreaterThan(0);
    // dist/X.js and dist/X.d.ts come from X.ts (tsconfig.json: rootDir ., outDir dist).
    const source = (entry: string) =>
      entry.startsWith('dist/') ? entry.slice(5).replace(/(\.d\.ts|\.js)$/, '.ts') : entry;
    expect(entries.filter((e) => !existsSync(source(e)))).toEqual([]);
  });
});
