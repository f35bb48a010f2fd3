import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * `npm run build` on a build that is up to date writes nothing. The first `npx governor` in a
 * clone installs the clone into npx's cache, which runs the package's `prepare` script, the build:
 * recompiling everything there kept the newcomer's first command silent for a minute or more after
 * `npm ci` had just built the same files. `npm test` and the other scripts build first too.
 */
const root = join(import.meta.dirname, '../..');
const exec = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Every file under `dist/src` with its modification time. */
function builtFiles(dir = join(root, 'dist', 'src')): Map<string, number> {
  const files = new Map<string, number>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) for (const [p, t] of builtFiles(path)) files.set(p, t);
    else files.set(path, statSync(path).mtimeMs);
  }
  return files;
}

describe('npm run build', () => {
  it('rewrites nothing when the build is up to date', { timeout: 300_000 }, async () => {
    // The first build brings dist/ up to date with the sources, whatever state it was in.
    await exec(npm, ['run', 'build'], { cwd: root });
    const before = builtFiles();
    expect(before.size).toBeGreaterThan(0);
    await exec(npm, ['run', 'build'], { cwd: root });
    const after = builtFiles();
    const rewritten = [...after].filter(([p, t]) => before.get(p) !== t).map(([p]) => p);
    expect(rewritten, 'files the second build wrote again').toEqual([]);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  });
});
