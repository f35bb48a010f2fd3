import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `governor simulate` and `governor replay` refuse bad usage (a bad --hours, --report naming an
 * input file, ...) before they load the simulator, the report page or Google's clients: those
 * take about 2 s of CPU to load, which a refusal spent for nothing. The command's module imports
 * them only dynamically, once the checks have passed; this follows its static imports (not
 * `import type`, not `import()`) through src/ and names what would load at once.
 */

const SRC = resolve(import.meta.dirname, '../../src');

/** Value imports and re-exports: `import … from`, `export … from`, `import '…'`; not types. */
const STATIC = /(?:^|\n)\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s*)?['"]([^'"]+)['"]/g;

function staticReach(file: string, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(file)) return seen;
  const specifiers = [...readFileSync(file, 'utf8').matchAll(STATIC)].map((m) => m[1] ?? '');
  seen.set(file, specifiers);
  for (const s of specifiers)
    if (s.startsWith('.')) staticReach(resolve(dirname(file), s).replace(/\.js$/, '.ts'), seen);
  return seen;
}

/**
 * What a refusal must not load: the simulator, the report page, the emulator's servers, any
 * Google client. (The fleet file's schema reaches @grpc/grpc-js for its status codes: light.)
 */
const HEAVY = [
  'simulate/simulate.ts',
  'simulate/report.ts',
  'adapters/index.ts',
  'emulator/index.ts',
  /^@google-cloud\//,
  /^google-gax$/,
];

function heavyIn(entry: string): string[] {
  const reach = staticReach(resolve(SRC, entry));
  const files = [...reach.keys()].map((f) => relative(SRC, f));
  const packages = [...new Set([...reach.values()].flat())].filter((s) => !s.startsWith('.'));
  return [
    ...files.filter((f) => HEAVY.includes(f)),
    ...packages.filter((p) => HEAVY.some((h) => h instanceof RegExp && h.test(p))),
  ].sort();
}

describe('simulate and replay: bad usage is refused before the heavy modules load', () => {
  it('src/cli/simulate-command.ts loads the simulator, the report and Google clients only dynamically', () => {
    expect(heavyIn('cli/simulate-command.ts')).toEqual([]);
  });

  it('would name them when imported statically', () => {
    // The simulator reaches the emulator and Google's clients (its --via-emulator backend).
    expect(heavyIn('simulate/simulate.ts')).toEqual(
      expect.arrayContaining(['adapters/index.ts', '@google-cloud/run']),
    );
    expect(heavyIn('simulate/report.ts')).toEqual(['simulate/report.ts']);
  });
});
