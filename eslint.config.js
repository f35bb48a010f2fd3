// @ts-check
import { builtinModules } from 'node:module';
import { dirname, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** What the simulator may import: the product below runtime.ts, and the emulator. */
const SIMULATE = [
  'core',
  'ports',
  'adapters',
  'observe',
  'reconcile',
  'emulator',
  'errors',
  'log',
  'read-capped',
];

/**
 * The layers of src/ (docs/architecture.md draws them). Each entry: what a folder (or a module at
 * the root of src/) may import of the project's own code; anything else is a lint error, so a
 * wrong-way import fails the build. The lowest layers first.
 */
export const LAYERS = {
  errors: [],
  // The loggers cut text as the errors do (errors.ts cutText): one cut, not two; and put a
  // message on one line as the rest of the governor does (core/text.ts oneLine, listOnOneLine).
  log: ['errors', 'core'],
  // Reading a file someone named, never more than a limit (any I/O layer may use it).
  'read-capped': ['errors'],
  core: ['errors'],
  ports: ['core', 'errors'],
  adapters: ['core', 'ports', 'errors', 'read-capped'],
  observe: ['core', 'ports', 'errors'],
  reconcile: ['core', 'ports', 'observe', 'errors', 'log'],
  'runtime-options': ['core', 'errors'],
  // Organisation scale: discovery, dispatch and the unit run (docs/organization.md).
  org: ['core', 'ports', 'reconcile', 'errors', 'log'],
  runtime: [
    'core',
    'ports',
    'adapters',
    'observe',
    'reconcile',
    'runtime-options',
    'errors',
    'log',
  ],
  function: [
    'core',
    'ports',
    'org',
    'observe',
    'reconcile',
    'runtime',
    'runtime-options',
    'errors',
    'log',
  ],
  // The command line wires the tools in as commands (simulate, replay, emulator, demo).
  cli: [
    'core',
    'ports',
    'org',
    'adapters',
    'observe',
    'reconcile',
    'runtime',
    'runtime-options',
    'errors',
    'log',
    'read-capped',
    'emulator',
    'simulate',
  ],
  // Tools: never imported by the product (the CLI aside, as above).
  emulator: ['core', 'ports', 'errors', 'read-capped'],
  simulate: SIMULATE,
  // As simulate, and simulate itself.
  chaos: [...SIMULATE, 'simulate'],
};
/** Layers that are one module at the root of src/ rather than a folder. */
const ROOT_MODULES = new Set(['errors', 'log', 'read-capped', 'runtime-options', 'runtime']);

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The start of an import path that climbs from a file `depth` folders below src/ to src/. */
const up = (depth) => (depth === 0 ? '\\./' : `(\\.\\./){${depth}}`);

/** The import paths that reach layer `target` from a file `depth` folders below src/. */
function reaching(target, depth) {
  return ROOT_MODULES.has(target)
    ? `^${up(depth)}${escape(target)}\\.js$`
    : `^${up(depth)}${escape(target)}/`;
}

const GOOGLE = ['@google-cloud/*', 'google-gax', 'google-auth-library'];
/** Every module of Node.js, with and without `node:` (`os` is `node:os`), and their subpaths. */
const NODE_BUILTINS = ['node:*', ...builtinModules.flatMap((m) => [m, `${m}/*`])];
/** Who may import which outside package, beyond the layers. */
const PACKAGE_RULES = {
  adapters: [],
  emulator: [{ group: GOOGLE, message: 'Only adapters import Google libraries.' }],
  core: [
    { group: NODE_BUILTINS, message: 'The core has no I/O: it imports no module of Node.js.' },
    { group: [...GOOGLE, '@grpc/*'], message: 'Only adapters talk to Google.' },
  ],
};
const DEFAULT_PACKAGE_RULES = [
  { group: [...GOOGLE, '@grpc/*'], message: 'Only adapters import Google libraries.' },
];
/** The function's host (function/index.ts): functions-framework is its one Google import. */
const HOST_PACKAGE_RULES = [
  {
    group: [...GOOGLE, '!@google-cloud/functions-framework', '@grpc/*'],
    message: "Only adapters import Google libraries (the function's host: functions-framework).",
  },
];

const HOST = 'src/function/index.ts';
const ENV_READERS = ['src/runtime-options.ts', 'src/cli/io.ts', HOST];
const NO_ENV = {
  object: 'process',
  property: 'env',
  message:
    'Read the environment through RuntimeOptions (src/runtime-options.ts), parsed once by main or the function handler.',
};
const NO_CLOCK = {
  object: 'Date',
  property: 'now',
  message: 'The core has no clock: take the time as input.',
};
/** `import { env } from 'node:process'` reads the environment as `process.env` does. */
const NO_ENV_IMPORT = ['process', 'node:process'].map((name) => ({
  name,
  importNames: ['env'],
  message: NO_ENV.message,
}));
/** The globals through which code reaches a clock, a timer, the process or the network. */
const CORE_GLOBALS = [
  'process',
  'performance',
  'fetch',
  'console',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'require',
  'queueMicrotask',
  // Web Crypto: randomness (randomUUID, getRandomValues).
  'crypto',
  'navigator',
  'WebSocket',
  'XMLHttpRequest',
  'EventSource',
].map((name) => ({ name, message: 'The core is pure: no I/O, no clock, no timer, no process.' }));
/** The global object reaches every global by another name (`globalThis.process.env`), past the rules. */
const GLOBAL_OBJECTS = ['globalThis', 'global', 'self', 'window'].map((name) => ({
  name,
  message:
    'Reach a global by its own name (`process`, not `globalThis.process`), so the lint rules see it.',
}));
const CORE_SYNTAX = [
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: 'The core has no clock: take the time as input (`new Date()` reads it).',
  },
  {
    selector: "CallExpression[callee.name='Date']",
    message: 'The core has no clock: take the time as input (`Date()` reads it).',
  },
  {
    selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']",
    message: 'The core is pure: take randomness as input (a seed), as the tests do.',
  },
];

const ROOT = dirname(fileURLToPath(import.meta.url));

/**
 * The layer rules read an import's path as written, so they see only paths in their shortest form
 * that stay inside src/: `./../adapters/x.js`, `../core/../adapters/x.js` or `../../src/adapters/x.js`
 * would reach a layer past them. This rule holds every relative path of src/ to that form, and
 * keeps `import('…')` types within their folder as the dynamic imports are.
 */
const importPath = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const file = relative(ROOT, context.filename).split(sep).join('/');
    const check = (node, kind) => {
      const path = node?.value;
      if (typeof path !== 'string' || !path.startsWith('.')) return;
      const dir = posix.dirname(file);
      const target = posix.join(dir, path);
      const way = posix.relative(dir, target);
      const shortest = way === '..' || way.startsWith('../') ? way : `./${way}`;
      if (path !== shortest) {
        context.report({
          node,
          message: `Write the path as '${shortest}', so that the layer rules see where it goes.`,
        });
        return;
      }
      if (file.startsWith('src/') && !target.startsWith('src/')) {
        context.report({
          node,
          message: `src/ imports nothing outside src/ by a relative path ('${path}' leaves it).`,
        });
        return;
      }
      if (kind === 'type' && path.startsWith('../')) {
        context.report({
          node,
          message:
            'Import a type across folders with `import type`, so that the layer rules see it.',
        });
      }
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      TSImportType: (node) => check(node.source ?? node.argument?.literal, 'type'),
      TSExternalModuleReference: (node) => check(node.expression),
    };
  },
};
const HOUSE = { rules: { 'import-path': importPath } };

/** One config block per layer and depth, with every import rule of the files it covers. */
function layerConfigs() {
  const configs = [];
  for (const [layer, may] of Object.entries(LAYERS)) {
    const others = Object.keys(LAYERS).filter((l) => l !== layer && !may.includes(l));
    const depths = ROOT_MODULES.has(layer) ? [0] : [1, 2, 3];
    for (const depth of depths) {
      const files = ROOT_MODULES.has(layer)
        ? [`src/${layer}.ts`]
        : [`src/${layer}/${'*/'.repeat(depth - 1)}*.ts`];
      const patterns = [
        ...others.map((other) => ({
          regex: reaching(other, depth),
          message: `${layer} may import only ${may.length ? may.join(', ') : 'no other part of src'}, not ${other} (docs/architecture.md).`,
        })),
        ...(PACKAGE_RULES[layer] ?? DEFAULT_PACKAGE_RULES),
      ];
      if (layer === 'emulator') {
        patterns.push({
          regex: `^${up(depth)}core/(planner|allocate)\\.js$`,
          message:
            "The emulator fakes Google's APIs; it never runs the governor's planner or its allocation.",
        });
      }
      const rules = {
        'no-restricted-imports': ['error', { patterns, paths: NO_ENV_IMPORT }],
        'no-restricted-properties': ['error', NO_ENV, ...(layer === 'core' ? [NO_CLOCK] : [])],
        'no-restricted-globals': [
          'error',
          ...GLOBAL_OBJECTS,
          ...(layer === 'core' ? CORE_GLOBALS : []),
        ],
      };
      configs.push({
        files,
        ignores: layer === 'function' ? [HOST] : [],
        rules,
      });
      // An entry point that reads the environment: the same rules, but for the environment.
      const readers = ENV_READERS.filter((f) =>
        ROOT_MODULES.has(layer)
          ? f === files[0]
          : depth === 1 && f !== HOST && f.slice(0, f.lastIndexOf('/')) === `src/${layer}`,
      );
      if (readers.length > 0) {
        configs.push({
          files: readers,
          rules: {
            ...rules,
            'no-restricted-imports': ['error', { patterns }],
            'no-restricted-properties': 'off',
          },
        });
      }
    }
  }
  // The function's host: functions-framework is its one Google import.
  configs.push({
    files: [HOST],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...Object.keys(LAYERS)
              .filter((l) => !LAYERS.function.includes(l) && l !== 'function')
              .map((other) => ({
                regex: reaching(other, 1),
                message: `function may import only ${LAYERS.function.join(', ')}, not ${other}.`,
              })),
            ...HOST_PACKAGE_RULES,
          ],
        },
      ],
      'no-restricted-properties': 'off',
      'no-restricted-globals': ['error', ...GLOBAL_OBJECTS],
    },
  });
  // The layer rules see static imports only: a dynamic import stays within its folder, and only
  // adapters load Google's libraries, dynamically (src/adapters/load.ts) as statically.
  const acrossFolders = {
    selector: 'ImportExpression[source.value=/^\\.\\./]',
    message: 'Import across folders statically, so that the layer rules see it.',
  };
  const googleDynamic = {
    // esquery's regular expressions cannot hold a slash: \x2F is one.
    selector:
      'ImportExpression[source.value=/^(@google-cloud\\x2F|google-gax|google-auth-library|@grpc\\x2F)/]',
    message: 'Only adapters import Google libraries (src/adapters/load.ts loads them lazily).',
  };
  // Each block replaces the rule's options of the one before for the files both cover.
  configs.push({
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', acrossFolders] },
  });
  configs.push({
    files: ['src/**/*.ts'],
    ignores: ['src/adapters/**'],
    rules: { 'no-restricted-syntax': ['error', acrossFolders, googleDynamic] },
  });
  configs.push({
    files: ['src/core/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', acrossFolders, googleDynamic, ...CORE_SYNTAX] },
  });
  return configs;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { house: HOUSE },
    rules: { 'house/import-path': 'error' },
  },
  ...layerConfigs(),
);
