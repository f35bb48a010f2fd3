/**
 * The structure checks bite: a wrong-way import fails `npx eslint .`, and the layers allow no
 * cycle between folders. Lints snippets as if they were files of src/, through ESLint's own API
 * and the project's real config.
 */
import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

// @ts-expect-error: the config is JavaScript without declarations.
import { LAYERS } from '../../eslint.config.js';

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint();
});

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

const use = (name: string) => `\nexport const used = ${name};\n`;

describe('a wrong-way import fails lint', () => {
  it.each([
    ['core → ports', 'src/core/plan.ts', `import type { CloudRunPort } from '../ports/index.js';`],
    ['core → adapters', 'src/core/audit.ts', `import { createClock } from '../adapters/clock.js';`],
    ['core → log', 'src/core/notify.ts', `import { textLogger } from '../log.js';`],
    ['core → read-capped', 'src/core/x.ts', `import { readCapped } from '../read-capped.js';`],
    ['core → anything at the root of src', 'src/core/x.ts', `import { x } from '../anything.js';`],
    [
      'adapters → emulator',
      'src/adapters/x.ts',
      `import { startEmulator } from '../emulator/index.js';`,
    ],
    [
      'adapters (nested) → emulator',
      'src/adapters/memory/x.ts',
      `import { FleetModel } from '../../emulator/model.js';`,
    ],
    ['adapters → observe', 'src/adapters/x.ts', `import { observe } from '../observe/observe.js';`],
    [
      'adapters → reconcile',
      'src/adapters/x.ts',
      `import { reconcile } from '../reconcile/reconcile.js';`,
    ],
    ['ports → adapters', 'src/ports/x.ts', `import { createClock } from '../adapters/clock.js';`],
    ['reconcile → chaos', 'src/reconcile/x.ts', `import { runChaos } from '../chaos/chaos.js';`],
    [
      'reconcile → simulate',
      'src/reconcile/x.ts',
      `import { simulate } from '../simulate/simulate.js';`,
    ],
    ['runtime → simulate', 'src/runtime.ts', `import { simulate } from './simulate/simulate.js';`],
    [
      'function → chaos',
      'src/function/handler.ts',
      `import { runChaos } from '../chaos/chaos.js';`,
    ],
    ['cli → chaos', 'src/cli/x.ts', `import { runChaos } from '../chaos/chaos.js';`],
    ['emulator → planner', 'src/emulator/x.ts', `import { plan } from '../core/planner.js';`],
    [
      'emulator → reconcile',
      'src/emulator/x.ts',
      `import { reconcile } from '../reconcile/reconcile.js';`,
    ],
    [
      'emulator → simulate',
      'src/emulator/x.ts',
      `import { simulate } from '../simulate/simulate.js';`,
    ],
    [
      'emulator → adapters',
      'src/emulator/x.ts',
      `import { createClock } from '../adapters/clock.js';`,
    ],
    ['observe → Google', 'src/observe/x.ts', `import { PubSub } from '@google-cloud/pubsub';`],
    ['emulator → allocation', 'src/emulator/x.ts', `import { x } from '../core/allocate.js';`],
    ['core → os (no node: prefix)', 'src/core/x.ts', `import { hostname } from 'os';`],
    ['core → crypto', 'src/core/x.ts', `import { randomUUID } from 'crypto';`],
    ['core → node:crypto', 'src/core/x.ts', `import { randomUUID } from 'node:crypto';`],
    [
      "the function's host → Firestore",
      'src/function/index.ts',
      `import { Firestore } from '@google-cloud/firestore';`,
    ],
    [
      "the function's host → gRPC",
      'src/function/index.ts',
      `import { Server } from '@grpc/grpc-js';`,
    ],
    [
      "the function's host → chaos",
      'src/function/index.ts',
      `import { runChaos } from '../chaos/chaos.js';`,
    ],
    ['cli/io.ts → chaos', 'src/cli/io.ts', `import { runChaos } from '../chaos/chaos.js';`],
    // The CLI wires the tools in as commands; its product commands never load them.
    [
      'a product command → simulate',
      'src/cli/apply-command.ts',
      `import { simulate } from '../simulate/simulate.js';`,
    ],
    [
      'a product command → emulator',
      'src/cli/check-command.ts',
      `import { startEmulator } from '../emulator/index.js';`,
    ],
    [
      'cli/io.ts → simulate',
      'src/cli/io.ts',
      `import { simulate } from '../simulate/simulate.js';`,
    ],
    [
      'cli/main.ts → simulate, beyond its options’ defaults',
      'src/cli/main.ts',
      `import { simulate } from '../simulate/simulate.js';`,
    ],
    [
      'a product command → a tool command (which brings the tools)',
      'src/cli/apply-command.ts',
      `import { runSimulate } from './simulate-command.js';`,
    ],
    [
      'cli/main.ts → emulator',
      'src/cli/main.ts',
      `import { startEmulator } from '../emulator/index.js';`,
    ],
    [
      'observe → gaxios (beneath the Google clients)',
      'src/observe/x.ts',
      `import { x } from 'gaxios';`,
    ],
    [
      'emulator → a planner module',
      'src/emulator/x.ts',
      `import { x } from '../core/planner-x.js';`,
    ],
    ['core → p-retry (a timer)', 'src/core/x.ts', `import { x } from 'p-retry';`],
    ['core → picocolors (the terminal)', 'src/core/x.ts', `import { x } from 'picocolors';`],
    [
      'createRequire outside the emulator',
      'src/function/handler.ts',
      `import { createRequire } from 'node:module';`,
    ],
    [
      "createRequire in the function's host",
      'src/function/index.ts',
      `import { createRequire } from 'module';`,
    ],
    [
      "node:module's default export (m.createRequire)",
      'src/runtime.ts',
      `import m from 'node:module';`,
    ],
    [
      "node:module's Module (Module._load)",
      'src/observe/x.ts',
      `import { Module } from 'node:module';`,
    ],
  ])('%s', async (_, filePath, importLine) => {
    const name = /import(?: type)? \{ (\w+) \}/.exec(importLine)?.[1] ?? 'x';
    const found = await problems(filePath, importLine + use(name));
    expect(
      found.some((p) => p.startsWith('no-restricted-imports')),
      found.join('\n'),
    ).toBe(true);
  });

  it('a re-export counts as an import', async () => {
    const found = await problems(
      'src/core/x.ts',
      `export { observe } from '../observe/observe.js';\n`,
    );
    expect(found.some((p) => p.startsWith('no-restricted-imports'))).toBe(true);
  });

  it.each([
    [
      'cli/main.ts → a tool command',
      'src/cli/main.ts',
      `import { runSimulate } from './simulate-command.js';`,
    ],
    [
      'cli/main.ts → a tool command, its types named inline',
      'src/cli/main.ts',
      `import { type SimulateFlags } from './simulate-command.js';\nexport type F = SimulateFlags;`,
    ],
    [
      'cli/main.ts → a tool command, re-exported',
      'src/cli/main.ts',
      `export * from './demo-command.js';`,
    ],
    [
      'simulate/result.ts (loaded by cli/main.ts) → the emulator',
      'src/simulate/result.ts',
      `import { startEmulator } from '../emulator/index.js';`,
    ],
    [
      'simulate/result.ts (loaded by cli/main.ts) → the simulator',
      'src/simulate/result.ts',
      `import { simulate } from './simulate.js';`,
    ],
    [
      'simulate/result.ts (loaded by cli/main.ts) → a package',
      'src/simulate/result.ts',
      `import { z } from 'zod';`,
    ],
  ])('what the CLI loads at start loads no tool: %s fails lint', async (_, filePath, line) => {
    const name = /import \{ (\w+) \}/.exec(line)?.[1];
    const found = await problems(filePath, line + (name ? use(name) : '\n'));
    expect(
      found.some((p) => p.startsWith('no-restricted-syntax')),
      found.join('\n'),
    ).toBe(true);
  });

  it('a dynamic import may not leave its folder', async () => {
    // Built from parts, so that test/support/projects.test.ts does not read it as this file's own.
    const target = "'../chaos/chaos.js'";
    const found = await problems(
      'src/reconcile/x.ts',
      `export const load = () => import(${target});\n`,
    );
    expect(found.some((p) => p.startsWith('no-restricted-syntax'))).toBe(true);
  });

  it.each([
    // Built from parts, so that test/support/projects.test.ts does not read them as this file's own.
    ['a template literal', 'src/function/handler.ts', `import(${'`../emulator/index.js`'})`],
    [
      'a computed path',
      'src/function/handler.ts',
      `import(${"['..', 'emulator', 'index.js'].join('/')"})`,
    ],
    [
      'a module at the root of src/ into a folder',
      'src/runtime.ts',
      `import(${"'./emulator/index.js'"})`,
    ],
    ['a module at the root of src/ to another', 'src/log.ts', `import(${"'./runtime.js'"})`],
    ['the core, of a Node.js module', 'src/core/x.ts', `import(${"'node:fs'"})`],
    ['the core, within its folder', 'src/core/x.ts', `import(${"'./alert.js'"})`],
    [
      'a product command, of a tool command',
      'src/cli/apply-command.ts',
      `import(${"'./emulator-command.js'"})`,
    ],
  ])('a dynamic import the layer rules cannot follow: %s', async (_, filePath, expression) => {
    const found = await problems(filePath, `export const load = () => ${expression};\n`);
    expect(
      found.some((p) => p.startsWith('no-restricted-syntax')),
      found.join('\n'),
    ).toBe(true);
  });

  it('only adapters load a Google library, dynamically as statically', async () => {
    const load = (pkg: string) => `export const load = () => import(${`'${pkg}'`});\n`;
    for (const pkg of ['@google-cloud/run', 'google-gax', 'google-auth-library', '@grpc/grpc-js']) {
      const outside = await problems('src/runtime.ts', load(pkg));
      expect(
        outside.some((p) => p.startsWith('no-restricted-syntax')),
        `${pkg}: ${outside.join('\n')}`,
      ).toBe(true);
      expect(await problems('src/adapters/x.ts', load(pkg))).toEqual([]);
    }
    // Other packages load dynamically anywhere (the rule names Google's, not every package).
    expect(await problems('src/runtime.ts', load('yaml'))).toEqual([]);
  });

  it('only src/runtime-options.ts and the two entry points read process.env', async () => {
    const code = `export const host = process.env.GOVERNOR_EMULATOR_HOST;\n`;
    expect(await problems('src/adapters/x.ts', code)).toEqual([
      expect.stringMatching(/^no-restricted-properties/),
    ]);
    expect(await problems('src/function/handler.ts', code)).toEqual([
      expect.stringMatching(/^no-restricted-properties/),
    ]);
    // Importing `env`, or `process` as the default export, reads it all the same.
    for (const from of ['node:process', 'process']) {
      const whole = `import p from '${from}';\nexport const host = p.env.GOVERNOR_EMULATOR_HOST;\n`;
      expect(await problems('src/adapters/x.ts', whole)).toEqual([
        expect.stringMatching(/^no-restricted-imports/),
      ]);
      const imported = `import { env } from '${from}';\nexport const host = env.GOVERNOR_EMULATOR_HOST;\n`;
      expect(await problems('src/adapters/x.ts', imported)).toEqual([
        expect.stringMatching(/^no-restricted-imports/),
      ]);
      for (const reader of ['src/runtime-options.ts', 'src/cli/io.ts', 'src/function/index.ts'])
        expect(await problems(reader, imported), reader).toEqual([]);
    }
    for (const reader of ['src/runtime-options.ts', 'src/cli/io.ts', 'src/function/index.ts'])
      expect(await problems(reader, code), reader).toEqual([]);
  });

  it.each([
    ['new Date()', 'export const now = new Date();'],
    ['Date()', 'export const now = Date();'],
    ['Date.now()', 'export const now = Date.now();'],
    ['performance.now()', 'export const now = performance.now();'],
    ['Math.random()', 'export const pick = Math.random();'],
    ['process', 'export const t = process.hrtime();'],
    ['console', "console.log('x');"],
    ['setTimeout', 'export const later = () => setTimeout(() => 0, 1);'],
    ['fetch', "export const get = () => fetch('http://127.0.0.1/');"],
    ['new Date(undefined)', 'export const now = new Date(undefined);'],
    ['new Date(...times)', 'export const now = (t: number[]) => new Date(...t);'],
    ['Date by another name', 'const D = Date;\nexport const now = D.now();'],
    ['Date as an argument', 'export const now = Reflect.construct(Date, []);'],
    ["Math['random']()", "export const pick = Math['random']();"],
    ['random taken from Math', 'const { random } = Math;\nexport const pick = random();'],
    ['clearTimeout', 'export const stop = (t: number) => clearTimeout(t);'],
    ['AbortSignal.timeout()', 'export const signal = AbortSignal.timeout(5);'],
    // With a locale and a zone named: outside the core only the locale rules below would object.
    [
      'Intl (the clock, the locale)',
      "export const now = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' }).format();",
    ],
    ['MessageChannel', 'export const channel = new MessageChannel();'],
    ['WeakRef', 'export const ref = new WeakRef({});'],
    ['import.meta', 'export const here = import.meta.url;'],
    [
      "luxon's DateTime.now()",
      "import { DateTime } from 'luxon';\nexport const now = DateTime.now();",
    ],
    [
      "luxon's DateTime.utc()",
      "import { DateTime } from 'luxon';\nexport const now = DateTime.utc();",
    ],
    [
      "luxon's diffNow()",
      "import { DateTime } from 'luxon';\nexport const d = (t: DateTime) => t.diffNow();",
    ],
    [
      "luxon's toRelative()",
      "import { DateTime } from 'luxon';\nexport const d = (t: DateTime) => t.toRelative();",
    ],
    [
      "luxon's toRelativeCalendar()",
      "import { DateTime } from 'luxon';\nexport const d = (t: DateTime) => t.toRelativeCalendar();",
    ],
    // A time without a date is taken as today's: DateTime.fromObject({ hour: 1 }) is 01:00 today.
    [
      "luxon's DateTime.fromObject()",
      "import { DateTime } from 'luxon';\nexport const t = DateTime.fromObject({ hour: 1 }, { zone: 'UTC' });",
    ],
    [
      "luxon's DateTime.fromISO() (a time alone is today's)",
      "import { DateTime } from 'luxon';\nexport const t = DateTime.fromISO('10:00:00', { zone: 'UTC' });",
    ],
    [
      "luxon's DateTime.fromFormat() (a time alone is today's)",
      "import { DateTime } from 'luxon';\nexport const t = DateTime.fromFormat('10:00', 'HH:mm', { zone: 'UTC' });",
    ],
    [
      "luxon's DateTime.fromSQL() (a time alone is today's)",
      "import { DateTime } from 'luxon';\nexport const t = DateTime.fromSQL('10:00:00', { zone: 'UTC' });",
    ],
  ])('the core has no clock, no I/O and no randomness: %s fails lint', async (_, code) => {
    const found = await problems('src/core/x.ts', code + '\n');
    expect(found.length, `${code}: ${found.join('\n')}`).toBeGreaterThan(0);
    expect(
      found.every((p) => p.startsWith('no-restricted-')),
      found.join('\n'),
    ).toBe(true);
    // The same line is fine outside the core (the adapters own the clock and the I/O).
    expect(await problems('src/adapters/x.ts', code + '\n')).toEqual([]);
  });
});

describe('the loggers are pure as the core is, writing only to the stream they are given', () => {
  it.each([
    ['new Date()', 'export const now = new Date();'],
    ['Date.now()', 'export const now = Date.now();'],
    ['Math.random()', 'export const pick = Math.random();'],
    ['process', 'export const write = (t: string) => process.stderr.write(t);'],
    ['console', 'export const say = (t: string) => console.log(t);'],
    ['setTimeout', 'export const later = () => setTimeout(() => 0, 1);'],
  ])('%s in src/log.ts fails lint', async (_, code) => {
    const found = await problems('src/log.ts', code + '\n');
    expect(
      found.some((p) => p.startsWith('no-restricted-')),
      `${code}: ${found.join('\n')}`,
    ).toBe(true);
  });
});

describe("what reads the machine's locale or time zone fails lint", () => {
  const FILES = [
    'src/core/x.ts',
    'src/adapters/x.ts',
    'src/emulator/x.ts',
    'bench/x.ts',
    'scripts/x.ts',
  ];
  it.each([
    ['localeCompare', "export const o = ['b', 'a'].sort((x, y) => x.localeCompare(y));"],
    ['Intl.Collator', "export const c = new Intl.Collator('da');"],
    ['toLocaleUpperCase', "export const u = 'i'.toLocaleUpperCase();"],
    ['a local-time getter', 'export const h = (d: Date) => d.getHours();'],
    ['toLocaleString() without a locale', 'export const n = (5).toLocaleString();'],
    ['an Intl formatter without a locale', 'export const f = new Intl.NumberFormat();'],
    ['new Date(year, month, day)', 'export const d = new Date(2026, 11, 1);'],
    [
      "luxon's DateTime.fromMillis() without a zone",
      "import { DateTime } from 'luxon';\nexport const t = DateTime.fromMillis(0);",
    ],
    [
      "luxon's DateTime.local(…)",
      "import { DateTime } from 'luxon';\nexport const t = DateTime.local(2026, 12, 1);",
    ],
  ])('%s', async (_, code) => {
    for (const file of FILES) {
      const found = (await problems(file, code + '\n')).filter((p) => p.startsWith('machine/'));
      expect(found.length, `${file}: ${code}`).toBeGreaterThan(0);
    }
  });

  it('their explicit forms pass', async () => {
    const code = [
      "import { DateTime } from 'luxon';",
      "export const n = (5).toLocaleString('en-US');",
      'export const h = (d: Date) => d.getUTCHours();',
      'export const d = new Date(Date.UTC(2026, 11, 1));',
      "export const t = DateTime.fromMillis(0, { zone: 'UTC' }).toFormat('HH:mm');",
      "export const u = 'i'.toUpperCase();",
      '',
    ].join('\n');
    for (const file of FILES)
      expect((await problems(file, code)).filter((p) => p.startsWith('machine/'))).toEqual([]);
  });
});

describe('a path the layer rules would not read fails lint', () => {
  it.each([
    [
      'a detour through the own folder',
      'src/core/x.ts',
      `import { c } from './../adapters/clock.js';`,
    ],
    [
      'a detour through another folder',
      'src/core/x.ts',
      `import { c } from '../core/../adapters/clock.js';`,
    ],
    [
      'a detour out of src/ and back',
      'src/core/x.ts',
      `import { c } from '../../src/adapters/clock.js';`,
    ],
    ['a doubled slash', 'src/core/x.ts', `import { c } from '..//adapters/clock.js';`],
    ['a re-export by a detour', 'src/core/x.ts', `export { c } from './../adapters/clock.js';`],
    ['out of src/', 'src/core/x.ts', `import { c } from '../../bench/fleet.js';`],
  ])('%s', async (_, filePath, line) => {
    const found = await problems(filePath, line + (line.startsWith('import') ? use('c') : '\n'));
    expect(
      found.some((p) => p.startsWith('house/import-path')),
      found.join('\n'),
    ).toBe(true);
  });

  it.each([
    [
      'an absolute path',
      'src/function/x.ts',
      `import { x } from '/srv/governor/src/emulator/index.js';`,
    ],
    [
      'a file: URL',
      'src/function/x.ts',
      `import { x } from 'file:///srv/governor/src/emulator/index.js';`,
    ],
    ['a subpath import', 'src/function/x.ts', `import { x } from '#emulator';`],
    [
      "the package's own name",
      'src/function/x.ts',
      `import { x } from 'cloud-run-gpu-governor/dist/src/emulator/index.js';`,
    ],
  ])('the own code by another way than a relative path: %s', async (_, filePath, line) => {
    const found = await problems(filePath, line + use('x'));
    expect(
      found.some((p) => p.startsWith('house/import-path')),
      found.join('\n'),
    ).toBe(true);
  });

  it("a package's type imported by `import(…)` outside the adapters", async () => {
    const code = `export type C = import(${"'@google-cloud/run'"}).ServicesClient;\n`;
    expect(await problems('src/observe/x.ts', code)).toEqual([
      expect.stringMatching(/^house\/import-path: .*import type/),
    ]);
  });

  it('a module of Node.js taken by process.getBuiltinModule fails lint, entry points too', async () => {
    const code = "export const m = process.getBuiltinModule('node:module');\n";
    for (const file of ['src/adapters/x.ts', 'src/cli/io.ts', 'src/function/index.ts'])
      expect(await problems(file, code), file).toEqual([
        expect.stringMatching(/^no-restricted-properties/),
      ]);
  });

  it('code run from a string fails lint anywhere in src/', async () => {
    for (const code of [
      "export const x = eval('Date.now()');",
      "export const x = new Function('return 1');",
    ]) {
      const found = await problems('src/adapters/x.ts', code + '\n');
      expect(
        found.some((p) => /^no-(eval|new-func)/.test(p)),
        `${code}: ${found.join('\n')}`,
      ).toBe(true);
    }
  });

  it('a type imported by `import(…)` across folders', async () => {
    // Built from parts, so that test/support/projects.test.ts does not read it as this file's own.
    const typeFrom = (path: string, name: string) =>
      `export type C = import(${`'${path}'`}).${name};\n`;
    const code = typeFrom('../adapters/clock.js', 'Clock');
    expect(await problems('src/core/x.ts', code)).toEqual([
      expect.stringMatching(/^house\/import-path: .*import type/),
    ]);
    // Within its folder, as a dynamic import may.
    expect(await problems('src/core/x.ts', typeFrom('./alert.js', 'Alert'))).toEqual([]);
  });

  it.each([
    ['globalThis.process.env', 'src/adapters/x.ts', 'export const h = globalThis.process.env.X;'],
    ['global.process.env', 'src/cli/x.ts', "export const h = global['process'].env.X;"],
    [
      'globalThis.Date.now() in the core',
      'src/core/x.ts',
      'export const h = globalThis.Date.now();',
    ],
    [
      'Reflect.get(globalThis, …)',
      'src/core/x.ts',
      "export const f = Reflect.get(globalThis, 'fetch');",
    ],
    ["the function's host", 'src/function/index.ts', 'export const h = globalThis.process.env.X;'],
  ])('a global reached through the global object: %s', async (_, filePath, code) => {
    const found = await problems(filePath, code + '\n');
    expect(
      found.some((p) => p.startsWith('no-restricted-globals')),
      found.join('\n'),
    ).toBe(true);
  });

  it.each([
    ['crypto.randomUUID()', 'export const id = crypto.randomUUID();'],
    ['queueMicrotask', 'export const later = () => queueMicrotask(() => undefined);'],
  ])('the core has no randomness and no scheduling: %s', async (_, code) => {
    expect(await problems('src/core/x.ts', code + '\n')).toEqual([
      expect.stringMatching(/^no-restricted-globals/),
    ]);
    expect(await problems('src/adapters/x.ts', code + '\n')).toEqual([]);
  });
});

describe('the right-way imports pass', () => {
  it.each([
    ['core → core', 'src/core/x.ts', `import { InputError } from './errors.js';`],
    [
      'adapters → ports',
      'src/adapters/x.ts',
      `import type { StateStore } from '../ports/index.js';`,
    ],
    [
      'adapters (nested) → core',
      'src/adapters/memory/x.ts',
      `import type { Alert } from '../../core/alert.js';`,
    ],
    [
      'reconcile → observe',
      'src/reconcile/x.ts',
      `import { observe } from '../observe/observe.js';`,
    ],
    [
      'cli → simulate (a tool command)',
      'src/cli/simulate-command.ts',
      `import { simulate } from '../simulate/simulate.js';`,
    ],
    ['chaos → emulator', 'src/chaos/x.ts', `import { FleetModel } from '../emulator/model.js';`],
    [
      'emulator → ports',
      'src/emulator/x.ts',
      `import type { QuotaPort } from '../ports/index.js';`,
    ],
    [
      "the function's host → functions-framework",
      'src/function/index.ts',
      `import { http } from '@google-cloud/functions-framework';`,
    ],
    [
      'a tool command → emulator',
      'src/cli/demo-command.ts',
      `import { startEmulator } from '../emulator/index.js';`,
    ],
    [
      "cli/main.ts → a tool command's types",
      'src/cli/main.ts',
      `import type { SimulateFlags } from './simulate-command.js';`,
    ],
    [
      'simulate/result.ts → the types of the emulator',
      'src/simulate/result.ts',
      `import type { PublishedMessage } from '../emulator/pubsub-store.js';`,
    ],
    [
      "cli/main.ts → the simulate command's option defaults",
      'src/cli/main.ts',
      `import { DEFAULT_TICK_MINUTES } from '../simulate/result.js';`,
    ],
    [
      "the emulator → createRequire (Google's .proto files)",
      'src/emulator/x.ts',
      `import { createRequire } from 'node:module';`,
    ],
    ['core → zod', 'src/core/x.ts', `import { z } from 'zod';`],
    ['core → luxon', 'src/core/x.ts', `import { DateTime } from 'luxon';`],
  ])('%s', async (_, filePath, importLine) => {
    const name = /import(?: type)? \{ (\w+) \}/.exec(importLine)?.[1] ?? 'x';
    expect(await problems(filePath, importLine + use(name))).toEqual([]);
  });
});

describe('the layers', () => {
  it('form no cycle: each may import only layers below it', () => {
    const layers = LAYERS as Record<string, string[]>;
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (layer: string, path: string[]): void => {
      if (state.get(layer) === 'done') return;
      if (state.get(layer) === 'visiting')
        throw new Error(`cycle: ${[...path, layer].join(' → ')}`);
      state.set(layer, 'visiting');
      for (const below of layers[layer] ?? []) visit(below, [...path, layer]);
      state.set(layer, 'done');
      order.push(layer);
    };
    for (const layer of Object.keys(layers)) visit(layer, []);
    expect(order).toHaveLength(Object.keys(layers).length);
    for (const may of Object.values(layers))
      for (const below of may) expect(Object.keys(layers)).toContain(below);
  });
});

describe('the core keeps what needs no clock', () => {
  it('builds a date from a time it was given', async () => {
    const code = `export const at = (ms: number) => new Date(ms).toISOString();\nexport const t = Date.parse('2026-01-01T00:00:00Z') + Date.UTC(2026, 0);\nexport const isDate = (d: unknown): d is Date => d instanceof Date;\nexport const most = Math.max(1, 2);\n`;
    expect(await problems('src/core/x.ts', code)).toEqual([]);
  });
});

describe('every file of src/ is under the layer rules', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
    );

  it('each folder and module at the top of src/ is a layer of LAYERS', () => {
    const layers = Object.keys(LAYERS as Record<string, string[]>);
    const top = readdirSync('src', { withFileTypes: true }).map((e) =>
      e.isDirectory() ? e.name : e.name.replace(/\.ts$/, ''),
    );
    expect(top.length).toBeGreaterThan(10);
    // A folder missing here would be linted with no layer rule at all: add it to LAYERS in
    // eslint.config.js and to the table of docs/architecture.md.
    expect(top.filter((name) => !layers.includes(name))).toEqual([]);
  });

  it('every file of src/ is TypeScript that the rules read (.ts)', () => {
    // The rules cover src/**/*.ts: a .js, .mts, .cts or .tsx file would be compiled or run unread.
    expect(files('src').filter((f) => !f.endsWith('.ts') || f.endsWith('.d.ts'))).toEqual([]);
  });

  it('no file sits deeper than the rules reach (src/<layer>/a/b/file.ts)', async () => {
    const deepest = files('src').map((f) => relative('src', f).split(sep).length);
    expect(Math.max(...deepest)).toBeLessThanOrEqual(4);
    // What the test above relies on: at that depth a wrong-way import still fails.
    const found = await problems(
      'src/adapters/a/b/x.ts',
      `import { x } from '../../../emulator/model.js';\nexport const used = x;\n`,
    );
    expect(found.some((p) => p.startsWith('no-restricted-imports'))).toBe(true);
  });
});
