/**
 * Whether `dist/` holds what the sources say. The integration tests that run the command line
 * (`node bin/governor.js`), the function under functions-framework or a script of `dist/` run the
 * build, not the sources: with no build they fail for a reason their output does not show, and
 * with a build older than the sources they test the old code. `npm test` and
 * `npm run test:integration` build first; `npx vitest run <file>` does not.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The folders `tsconfig.json` compiles into `dist/`. */
export const COMPILED = ['src', 'bench', 'scripts'] as const;

function sources(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(root, path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** What is wrong with the build under `root`, in one sentence; null when it is up to date. */
export function staleBuild(root = '.'): string | null {
  const missing: string[] = [];
  const older: string[] = [];
  for (const dir of COMPILED) {
    for (const source of sources(root, dir)) {
      const built = join('dist', source.replace(/\.ts$/, '.js'));
      let builtAt: number;
      try {
        builtAt = statSync(join(root, built)).mtimeMs;
      } catch {
        missing.push(built);
        continue;
      }
      if (statSync(join(root, source)).mtimeMs > builtAt) older.push(source);
    }
  }
  const fix = 'run `npm run build` (npm test and npm run test:integration do it first)';
  if (missing.length > 0) {
    return `${missing[0]}${missing.length > 1 ? ` and ${missing.length - 1} more` : ''} not built: the tests that run bin/governor.js or dist/ will fail; ${fix}`;
  }
  if (older.length > 0) {
    return `${older[0]}${older.length > 1 ? ` and ${older.length - 1} more` : ''} changed after the last build: the tests that run bin/governor.js or dist/ test the old code; ${fix}`;
  }
  return null;
}
