import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * package.json's `dependencies` are what an install of the package (and the function's build,
 * which installs with devDependencies omitted) puts beside the code: exactly the packages the
 * product loads at run time. A package the product loads without declaring it is found only while
 * npm happens to hoist it to the top of node_modules (another version sits there in a project that
 * depends on one itself; pnpm hoists nothing). A declared package the product never loads is
 * installed with every copy of the governor and of the function for nothing.
 */
const root = join(import.meta.dirname, '../..');

/** Files of the product: what `bin` runs and what the function's archive holds come from these. */
function productFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) found.push(...productFiles(rel));
    else if (/\.(ts|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) found.push(rel);
  }
  return found;
}

/** The package a bare specifier names: `@scope/name` or `name`, without a subpath. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

const isBuiltin = (specifier: string) =>
  specifier.startsWith('node:') || builtinModules.includes(packageOf(specifier));

/**
 * Every package a file loads at run time: static imports and re-exports (not `import type`, which
 * the compiler erases), dynamic `import()`, `require()` and `require.resolve()` with a literal,
 * and the emulator's `protosOf('pkg')`, which resolves a package to read the .proto files it
 * ships.
 */
function packagesLoaded(text: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bprotosOf\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) {
      const specifier = match[1];
      if (specifier === undefined || specifier.startsWith('.') || isBuiltin(specifier)) continue;
      found.add(packageOf(specifier));
    }
  }
  return [...found];
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Package → the product files that load it. */
function loadedBy(dirs: string[]): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const dir of dirs) {
    for (const file of productFiles(dir)) {
      for (const name of packagesLoaded(readFileSync(join(root, file), 'utf8'))) {
        users.set(name, [...(users.get(name) ?? []), relative(root, join(root, file))]);
      }
    }
  }
  return users;
}

describe("the package's dependencies", () => {
  it('finds what a file loads, and leaves out what only its types use', () => {
    const text = [
      `import { z } from 'zod';`,
      `import type { Status } from '@grpc/grpc-js';`,
      `import { type Foo, bar } from '@scope/pkg/sub/path.js';`,
      `export { x } from 'yaml';`,
      `import './side-effect.js';`,
      `import { readFile } from 'node:fs/promises';`,
      `import { join } from 'path';`,
      `const m = await import('p-retry');`,
      `const gax = protosOf('google-gax');`,
      `const f = require.resolve('echarts');`,
      `const text = "import { no } from 'inside-a-string'"; // not at a line's start`,
    ].join('\n');
    expect(packagesLoaded(text).sort()).toEqual(
      ['@scope/pkg', 'echarts', 'google-gax', 'p-retry', 'yaml', 'zod'].sort(),
    );
  });

  it('declares every package the product loads, in dependencies', () => {
    const used = loadedBy(['src', 'bin']);
    const undeclared = [...used]
      .filter(([name]) => !(name in pkg.dependencies))
      .map(([name, files]) => `${name} (${files.slice(0, 3).join(', ')})`);
    expect(undeclared, 'loaded by the product but not in dependencies').toEqual([]);
  });

  it('declares in dependencies only packages the product loads', () => {
    const used = loadedBy(['src', 'bin']);
    const unused = Object.keys(pkg.dependencies).filter((name) => !used.has(name));
    expect(unused, 'in dependencies but never loaded by src/ or bin/').toEqual([]);
  });

  it('declares, in one list or the other, every package the build scripts and benchmarks load', () => {
    const used = loadedBy(['scripts', 'bench']);
    const undeclared = [...used.keys()].filter(
      (name) => !(name in pkg.dependencies) && !(name in pkg.devDependencies),
    );
    expect(undeclared).toEqual([]);
  });
});
