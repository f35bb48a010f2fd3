import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What `npm pack` (and so `npm publish`) puts in the package, listed by `npm pack --dry-run
 * --json` from the built tree: the command and everything it loads, the schemas and examples, the
 * docs and the pictures they show, the licence, and nothing else. Source maps would point at
 * `src/*.ts`, which the package does not carry, and declarations serve no one: the package has no
 * `main`, `types` or `exports`, it is a command. Needs `npm run build` first (dist/ is what is
 * listed).
 */
const root = join(import.meta.dirname, '../..');
const exec = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let files: string[] = [];

beforeAll(async () => {
  // --ignore-scripts: the listing, not the build (`prepare`); --offline: nothing to fetch.
  const { stdout } = await exec(
    npm,
    ['pack', '--dry-run', '--json', '--ignore-scripts', '--offline', '--no-update-notifier'],
    { cwd: root },
  );
  const [packed] = JSON.parse(stdout) as [{ files: { path: string }[] }];
  files = packed.files.map((f) => f.path).sort();
}, 60_000);

/** Relative modules a compiled file loads: static imports and re-exports, literal `import()`. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s+(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm,
    /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) if (match[1] !== undefined) found.push(match[1]);
  }
  return found;
}

describe('the npm package', () => {
  it('holds the command, the compiled code, the schemas, the examples, the docs and the licence only', () => {
    expect(files.length).toBeGreaterThan(0);
    const allowed = [
      /^package\.json$/,
      /^README\.md$/,
      /^LICENSE$/,
      /^bin\/governor\.js$/,
      /^dist\/src\/.+\.js$/,
      /^schema\/[^/]+\.schema\.json$/,
      /^examples\//,
      /^docs\/[^/]+\.(md|png)$/,
    ];
    expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map') || f.endsWith('.d.ts'))).toEqual([]);
    // The chaos harness is a tool beside the product (`npm run chaos`), which no command loads.
    expect(files.filter((f) => f.startsWith('dist/src/chaos/'))).toEqual([]);
  });

  it('ships the Apache 2.0 licence its package.json declares', () => {
    expect(files).toContain('LICENSE');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      license: string;
    };
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(join(root, 'LICENSE'), 'utf8');
    expect(text).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(text).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
  });

  it('ships every module the command loads, from bin/governor.js down', () => {
    const shipped = new Set(files);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    const queue = Object.values(pkg.bin).map((b) => posix.normalize(b));
    const seen = new Set<string>();
    const missing: string[] = [];
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      if (!shipped.has(file)) {
        missing.push(file);
        continue;
      }
      for (const spec of relativeImports(readFileSync(join(root, file), 'utf8'))) {
        queue.push(posix.join(dirname(file), spec));
      }
    }
    expect(missing).toEqual([]);
    // The whole command: its CLI, the emulator that `demo` and `emulator` start, the simulator.
    for (const dir of ['dist/src/cli/', 'dist/src/emulator/', 'dist/src/simulate/']) {
      expect(
        [...seen].some((f) => f.startsWith(dir)),
        dir,
      ).toBe(true);
    }
  });

  it('ships every document the command names in its help and messages', () => {
    const named = new Set<string>();
    for (const file of files.filter((f) => f.startsWith('dist/src/') && f.endsWith('.js'))) {
      // Comments are gone from what a user reads; string literals are what the command prints.
      const code = readFileSync(join(root, file), 'utf8').replace(
        /\/\*[\s\S]*?\*\/|\/\/[^\n]*/g,
        '',
      );
      for (const m of code.matchAll(/docs\/[a-z-]+\.md/g)) named.add(m[0]);
    }
    expect(named).toContain('docs/quota-requests.md');
    expect([...named].filter((d) => !files.includes(d))).toEqual([]);
  });

  it('ships every picture its README and docs show', () => {
    // Before: the README showed docs/report.png, which `files` did not pack: the README of the
    // installed package showed a broken image.
    const documents = [
      'README.md',
      ...readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const shown: string[] = [];
    for (const doc of documents) {
      const text = readFileSync(join(root, doc), 'utf8');
      const targets = [
        ...[...text.matchAll(/!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(
          (m) => m[1],
        ),
        ...[...text.matchAll(/<img\b[^>]*\bsrc\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]),
      ];
      for (const target of targets) {
        // A picture on the web is not the package's to carry.
        if (target === undefined || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        shown.push(posix.normalize(posix.join(posix.dirname(doc), target.split(/[?#]/)[0] ?? '')));
      }
    }
    expect(shown).toContain('docs/report.png');
    expect(shown.filter((p) => !files.includes(p))).toEqual([]);
  });

  it("prints package.json's version for --version", async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      version: string;
    };
    // The CLI states its version itself (src/cli/main.ts): a release bumps both.
    const { stdout } = await exec(process.execPath, [join(root, 'bin/governor.js'), '--version']);
    expect(stdout.trim()).toBe(pkg.version);
  });

  it('ships every file the command reads by default (`demo`, `emulator`)', () => {
    const main = readFileSync(join(root, 'src/cli/main.ts'), 'utf8');
    const defaults = [...main.matchAll(/['"](examples\/[^'"]+)['"]/g)].map((m) => m[1]);
    expect(defaults).toEqual(
      expect.arrayContaining([
        'examples/fleet.yaml',
        'examples/demo-fleet.yaml',
        'examples/demo-policy.yaml',
      ]),
    );
    expect(defaults.filter((f) => !files.includes(f as string))).toEqual([]);
  });
});

describe('what `npm pack` and `npm publish` build', () => {
  it('empties dist before building, so a compiled file whose source is gone is not shipped', async () => {
    // `tsc -b` never deletes what a removed source compiled to, and `files` ships dist/src whole.
    // npm runs `prepack`, then `prepare` (the build), before it packs
    // (https://docs.npmjs.com/cli/v11/using-npm/scripts, "Life Cycle Scripts").
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['prepare']).toBe('npm run build');
    const scratch = mkdtempSync(join(tmpdir(), 'governor-prepack-'));
    try {
      writeFileSync(
        join(scratch, 'package.json'),
        JSON.stringify({
          name: 'prepack-check',
          version: '0.0.0',
          scripts: { prepack: pkg.scripts['prepack'] },
        }),
      );
      mkdirSync(join(scratch, 'dist/src/removed'), { recursive: true });
      writeFileSync(join(scratch, 'dist/src/removed/gone.js'), 'export {};\n');
      await exec(npm, ['run', 'prepack', '--offline', '--no-update-notifier'], { cwd: scratch });
      expect(readdirSync(scratch)).toEqual(['package.json']);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the npm package, unpacked', () => {
  // The tarball `npm pack` writes, unpacked as npm installs it (package/ becomes the package's
  // folder), its dependencies this tree's; the command run from a folder of the user's own.
  let scratch: string;
  let installed: string;
  let elsewhere: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'governor-npm-package-'));
    await exec(
      npm,
      [
        'pack',
        '--ignore-scripts',
        '--offline',
        '--no-update-notifier',
        '--pack-destination',
        scratch,
      ],
      { cwd: root },
    );
    const [tarball] = readdirSync(scratch).filter((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    await exec('tar', ['-xzf', join(scratch, tarball as string), '-C', scratch]);
    installed = join(scratch, 'package');
    symlinkSync(join(root, 'node_modules'), join(installed, 'node_modules'), 'dir');
    elsewhere = join(scratch, 'work');
    mkdirSync(elsewhere);
  }, 60_000);

  afterAll(() => {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  const governor = (...args: string[]) =>
    exec(process.execPath, [join(installed, 'bin/governor.js'), ...args], {
      cwd: elsewhere,
      env: { ...process.env, NO_COLOR: '1' },
    });

  it('validates the example policy it ships', async () => {
    const { stdout } = await governor(
      'validate',
      '--policy',
      join(installed, 'examples/policy.yaml'),
    );
    expect(stdout).toContain('valid (version 1');
  }, 30_000);

  it('plays the demo from its shipped examples, outside the package', async () => {
    const { stdout } = await governor('demo', '--hours', '1');
    expect(stdout).toMatch(/Writes: \d+ max-instances updates/);
    expect(readdirSync(elsewhere)).toEqual([]);
  }, 60_000);
});
