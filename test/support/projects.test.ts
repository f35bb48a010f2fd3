import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { integrationFiles } from '../../vitest.config.js';

/**
 * The unit project (`npm run test:unit`) is the quick loop: it holds every `*.test.ts` that is not
 * `*.int.test.ts`. A test that starts a process, a server, a JVM or a browser belongs in the
 * integration project; this check reads the imports of each unit test (and of the test helpers it
 * imports) and names the ones that would start something.
 */

const TEST_DIR = resolve(import.meta.dirname, '..');

/** Import specifiers that start a process, a server, an emulator or a browser. */
const STARTS_SOMETHING: { pattern: RegExp; why: string }[] = [
  { pattern: /^(node:)?child_process$/, why: 'child processes' },
  { pattern: /^(node:)?(net|http|http2|https)$/, why: 'sockets and servers' },
  { pattern: /^@grpc\/grpc-js$/, why: 'gRPC' },
  { pattern: /^@google-cloud\/(pubsub|firestore)$/, why: 'a client of a Java emulator' },
  { pattern: /^@google-cloud\/functions-framework\/testing$/, why: 'an HTTP server' },
  { pattern: /^playwright-core$/, why: 'Chromium' },
  { pattern: /\/emulator\/index\.js$/, why: "the emulator's gRPC servers" },
  { pattern: /-emulator\.js$/, why: 'a Java emulator' },
];

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? testFiles(join(dir, e.name))
      : e.name.endsWith('.test.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? '');
}

/** Every specifier a test file reaches through itself and the helpers under test/ it imports. */
function reach(file: string, seen = new Set<string>()): { from: string; specifier: string }[] {
  if (seen.has(file)) return [];
  seen.add(file);
  return importsOf(file).flatMap((specifier) => {
    const own = [{ from: file, specifier }];
    if (!specifier.startsWith('.')) return own;
    const target = resolve(dirname(file), specifier).replace(/\.js$/, '.ts');
    if (!target.startsWith(TEST_DIR + '/')) return own;
    return [...own, ...reach(target, seen)];
  });
}

const unitTests = testFiles(TEST_DIR).filter((f) => !f.endsWith('.int.test.ts'));

describe('the unit project', () => {
  it('finds the unit tests and reads their imports', () => {
    expect(unitTests.length).toBeGreaterThan(10);
    expect(importsOf(join(TEST_DIR, 'support/projects.test.ts'))).toContain('vitest');
  });

  it.each(unitTests.map((f) => relative(TEST_DIR, f)))(
    '%s starts no process, server, JVM or browser (else name it *.int.test.ts)',
    (name) => {
      const offending = reach(join(TEST_DIR, name)).flatMap(({ from, specifier }) =>
        STARTS_SOMETHING.filter((s) => s.pattern.test(specifier)).map(
          (s) => `${relative(TEST_DIR, from)} imports ${specifier} (${s.why})`,
        ),
      );
      expect(offending).toEqual([]);
    },
  );

  it('would flag an integration test', () => {
    const flagged = reach(join(TEST_DIR, 'adapters/pubsub.int.test.ts')).filter(({ specifier }) =>
      STARTS_SOMETHING.some((s) => s.pattern.test(specifier)),
    );
    expect(flagged.map((f) => f.specifier)).toContain('../support/pubsub-emulator.js');
  });
});

describe('the integration projects', () => {
  const { own, shared } = integrationFiles();
  const everyFile = testFiles(TEST_DIR)
    .filter((f) => f.endsWith('.int.test.ts'))
    .map((f) => relative(resolve(TEST_DIR, '..'), f));

  it('place every integration file in one of them, once', () => {
    expect([...own, ...shared].sort()).toEqual(everyFile.sort());
    expect(shared.length).toBeGreaterThan(own.length);
  });

  it('give a registry of its own to a file that mocks a module or loads the function', () => {
    // vi.mock, vi.doMock, and the function's entry point, each as one of the files has it.
    expect(own).toContain('test/cli/apply-close.int.test.ts');
    expect(own).toContain('test/state/file-lock-race.int.test.ts');
    expect(own).toContain('test/function/regional.int.test.ts');
    expect(own).toContain('test/adapters/pubsub.int.test.ts'); // vi.stubEnv
    expect(shared).toContain('test/adapters/monitoring.int.test.ts');
    for (const file of shared) {
      const text = readFileSync(resolve(TEST_DIR, '..', file), 'utf8');
      expect(text, file).not.toMatch(/\bvi\.\w*mock\w*\(|vi\.stub|function\/index\.js/i);
    }
  });
});
