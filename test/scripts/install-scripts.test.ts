import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * A dependency's install script runs code at `npm ci`. npm (11.16 and later) reads package.json's
 * `allowScripts` and lists every dependency with an install script that has no decision there;
 * npm 12 skips those scripts (https://docs.npmjs.com/cli/v12/commands/npm-install-scripts). So
 * every package the lock marks `hasInstallScript` must have a decision here, made when it entered
 * the tree, and the README says why.
 */
const root = join(import.meta.dirname, '../..');
const read = (file: string): unknown => JSON.parse(readFileSync(join(root, file), 'utf8'));

describe('install scripts of dependencies', () => {
  it('each one the lock holds has a decision in allowScripts, explained in the README', () => {
    const lock = read('package-lock.json') as {
      packages: Record<string, { hasInstallScript?: boolean; version?: string }>;
    };
    const allow = ((read('package.json') as { allowScripts?: Record<string, boolean> })
      .allowScripts ?? {}) as Record<string, boolean>;
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
      .map(([path, p]) => ({
        name: path.slice(path.lastIndexOf('node_modules/') + 13),
        version: p.version,
      }));
    expect(withScripts.length).toBeGreaterThan(0);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const { name, version } of withScripts) {
      const decided = name in allow || `${name}@${version}` in allow;
      expect(
        decided,
        `${name}@${version} runs an install script with no decision in allowScripts`,
      ).toBe(true);
      expect(
        readme,
        `README.md does not say why ${name}'s install script is allowed or denied`,
      ).toContain(`\`${name}\``);
    }
    // A decision for a package that no longer has an install script is dead weight.
    for (const key of Object.keys(allow)) {
      const name = key.replace(/(?<=.)@[^@]*$/, '');
      expect(
        withScripts.map((p) => p.name),
        `allowScripts names ${key}, which runs no install script`,
      ).toContain(name);
    }
  });
});
