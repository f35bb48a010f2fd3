import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { COMPILED, staleBuild } from './built.js';

let root: string | undefined;
afterEach(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

/** A project with these files, each given its modification time in seconds. */
function project(files: Record<string, number>): string {
  root = mkdtempSync(join(tmpdir(), 'governor-built-'));
  for (const dir of ['src', 'bench', 'scripts']) mkdirSync(join(root, dir));
  for (const [path, seconds] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), '');
    utimesSync(join(root, path), seconds, seconds);
  }
  return root;
}

describe('staleBuild', () => {
  it('is null when every source has its build, newer than it', () => {
    const dir = project({
      'src/core/a.ts': 100,
      'src/core/a.d.ts': 300,
      'bench/run.ts': 100,
      'dist/src/core/a.js': 200,
      'dist/bench/run.js': 200,
    });
    expect(staleBuild(dir)).toBeNull();
  });

  it('names a source with no build (a fresh clone)', () => {
    const dir = project({ 'src/cli/main.ts': 100, 'scripts/x.ts': 100 });
    expect(staleBuild(dir)).toMatch(
      /^dist\/src\/cli\/main\.js and 1 more not built: .*npm run build/,
    );
  });

  it('names a source changed after the build', () => {
    const dir = project({ 'src/core/a.ts': 300, 'dist/src/core/a.js': 200 });
    expect(staleBuild(dir)).toMatch(/^src\/core\/a\.ts changed after the last build: .*old code/);
  });

  it('reads the folders tsconfig.json compiles', () => {
    const tsconfig = JSON.parse(readFileSync('tsconfig.json', 'utf8')) as { include: string[] };
    expect([...COMPILED]).toEqual(tsconfig.include);
  });
});
