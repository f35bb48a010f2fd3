// @ts-check
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import { builtinRules } from 'eslint/use-at-your-own-risk';
import tseslint from 'typescript-eslint';

/** What the simulator may import: the product below runtime.ts, and the emulator. */
const SIMULATE = [
  'core',
  'ports',
  'adapters',
  'observe',
  'reconcile',
  'emulator',
  'log',
  'read-capped',
];

/**
 * The layers of src/ (docs/architecture.md draws them). Each entry: what a folder (or a module at
 * the root of src/) may import of the project's own code; anything else is a lint error, so a
 * wrong-way import fails the build. The lowest layers first.
 */
export const LAYERS = {
  // The loggers cut text as the errors do (core/errors.ts cutText): one cut, not two; and put a
  // message on one line as the rest of the governor does (core/text.ts oneLine, listOnOneLine).
  log: ['core'],
  // Reading a file someone named, never more than a limit (any I/O layer may use it).
  'read-capped': ['core'],
  // Writing a file whole or not at all (the simulation report; scripts/package.ts).
  'write-whole': [],
  core: [],
  ports: ['core'],
  adapters: ['core', 'ports', 'read-capped'],
  observe: ['core', 'ports'],
  reconcile: ['core', 'ports', 'observe', 'log'],
  'runtime-options': ['core'],
  // Organisation scale: discovery, dispatch and the unit run (docs/organization.md).
  org: ['core', 'ports', 'reconcile', 'log'],
  runtime: ['core', 'ports', 'adapters', 'observe', 'reconcile', 'runtime-options', 'log'],
  function: ['core', 'ports', 'org', 'observe', 'reconcile', 'runtime', 'runtime-options', 'log'],
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
    'log',
    'read-capped',
    'write-whole',
    'emulator',
    'simulate',
  ],
  // Tools: never imported by the product (the CLI aside, as above).
  emulator: ['core', 'ports', 'read-capped'],
  simulate: SIMULATE,
  // As simulate, and simulate itself.
  chaos: [...SIMULATE, 'simulate'],
};
/** Layers that are one module at the root of src/ rather than a folder. */
const ROOT_MODULES = new Set(['log', 'read-capped', 'write-whole', 'runtime-options', 'runtime']);
/** The layers held to the core's purity: no clock, no randomness, no I/O of their own. */
const PURE = new Set(['core', 'log']);

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The start of an import path that climbs from a file `depth` folders below src/ to src/. */
const up = (depth) => (depth === 0 ? '\\./' : `(\\.\\./){${depth}}`);

/** The import paths that reach layer `target` from a file `depth` folders below src/. */
function reaching(target, depth) {
  return ROOT_MODULES.has(target)
    ? `^${up(depth)}${escape(target)}\\.js$`
    : `^${up(depth)}${escape(target)}/`;
}

/** Google's client libraries, and the HTTP and metadata clients beneath them. */
const GOOGLE = [
  '@google-cloud/*',
  '@googleapis/*',
  'googleapis',
  'google-gax',
  'google-auth-library',
  'gaxios',
  'gcp-metadata',
];
/** Every module of Node.js, with and without `node:` (`os` is `node:os`), and their subpaths. */
const NODE_BUILTINS = ['node:*', ...builtinModules.flatMap((m) => [m, `${m}/*`])];
/** The outside packages the core may import: parsing and matching, none with I/O or a clock. */
const CORE_PACKAGES = ['zod', 'yaml', 'luxon', 'picomatch', 'fastest-levenshtein'];
/** Who may import which outside package, beyond the layers. */
const PACKAGE_RULES = {
  adapters: [],
  emulator: [{ group: GOOGLE, message: 'Only adapters import Google libraries.' }],
  core: [
    // src/core has no sub-folders: a path that climbs leaves it, whichever layer it reaches.
    { regex: '^\\.\\./', message: 'The core imports nothing outside src/core.' },
    { group: NODE_BUILTINS, message: 'The core has no I/O: it imports no module of Node.js.' },
    { group: [...GOOGLE, '@grpc/*'], message: 'Only adapters talk to Google.' },
    {
      regex: `^(?!\\.|node:|(${CORE_PACKAGES.map(escape).join('|')})(/|$))`,
      message: `The core is pure: of the outside packages it imports only ${CORE_PACKAGES.join(', ')} (others reach a clock, a timer, the terminal or the network).`,
    },
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
const NO_CLOCK = [
  { object: 'Date', property: 'now', message: 'The core has no clock: take the time as input.' },
  // As a property rather than a call, so that `Math['random']` and `const { random } = Math` count.
  {
    object: 'Math',
    property: 'random',
    message: 'The core is pure: take randomness as input (a seed), as the tests do.',
  },
  // Luxon reads the clock when asked for "now" (DateTime.local() and .utc() with no argument too).
  {
    object: 'DateTime',
    property: 'now',
    message: 'The core has no clock: take the time as input.',
  },
  {
    object: 'AbortSignal',
    property: 'timeout',
    message: 'The core is pure: no I/O, no clock, no timer, no process.',
  },
  // Luxon's differences from "now": diffNow() always, toRelative…() unless given a base.
  ...['diffNow', 'toRelative', 'toRelativeCalendar'].map((property) => ({
    property,
    message: `The core has no clock: take the time as input (luxon's ${property}() reads it).`,
  })),
];
/** `import { env } from 'node:process'` reads the environment as `process.env` does. */
const NO_ENV_IMPORT = ['process', 'node:process'].map((name) => ({
  name,
  // The default export is `process` itself (`import p from 'node:process'; p.env`).
  importNames: ['env', 'default'],
  message: NO_ENV.message,
}));
/**
 * Node.js's `module` loads a module by a path no import rule reads (`createRequire`,
 * `Module._load`), however it is imported. The emulator alone uses it, to read the .proto files
 * that Google's packages ship (src/emulator/protos.ts).
 */
const NO_REQUIRE = ['module', 'node:module'].map((name) => ({
  name,
  message: 'Import a module, so that the layer rules see it (`createRequire` loads past them).',
}));
/** `process.getBuiltinModule('node:module')` is the same by another door. */
const NO_BUILTIN_LOADER = {
  object: 'process',
  property: 'getBuiltinModule',
  message: 'Import a module of Node.js, so that the layer rules see it.',
};
/**
 * The command line's tool commands: of src/cli, only they import the tools (simulate/, emulator/),
 * and main.ts loads them only when their command runs (a dynamic import within cli/).
 */
const TOOL_COMMANDS = [
  'src/cli/simulate-command.ts',
  'src/cli/emulator-command.ts',
  'src/cli/demo-command.ts',
];
const CLI_MAIN = 'src/cli/main.ts';
/** Constants and types of the simulate command, which cli/main.ts reads at start. */
const SIMULATE_RESULT = 'src/simulate/result.ts';
/**
 * What a product file of src/cli may not import: the tools. main.ts declares the tool commands'
 * options, so it may read their defaults from simulate/result.ts (constants and types, which loads
 * no other module), and nothing else of a tool.
 */
function cliProduct(depth, file) {
  return [
    file === CLI_MAIN
      ? {
          regex: `^${up(depth)}(emulator/|simulate/(?!result\\.js$))`,
          message: `main.ts loads a tool only through its command (${TOOL_COMMANDS.map((f) => posix.basename(f)).join(', ')}), when that command runs.`,
        }
      : {
          regex: `^${up(depth)}(emulator|simulate)/`,
          message: `Of the command line, only the tool commands (${TOOL_COMMANDS.map((f) => posix.basename(f)).join(', ')}) import the tools: the product's commands never load them.`,
        },
    // Nor a tool command, which would bring the tools with it (main.ts runs them, by command).
    ...(file === CLI_MAIN
      ? []
      : [
          {
            regex: `^\\.\\.?/(cli/)?${TOOL_COMMAND_NAMES}$`,
            message: `Only main.ts loads a tool command (${TOOL_COMMANDS.map((f) => posix.basename(f)).join(', ')}), when that command runs.`,
          },
        ]),
  ];
}
/** The tool commands' module names, as an import reads them: `(simulate|…)-command\.js`. */
const TOOL_COMMAND_NAMES = `(${TOOL_COMMANDS.map((f) => escape(posix.basename(f, '.ts'))).join('|')})\\.js`;
/** The globals through which code reaches a clock, a timer, the process or the network. */
const CORE_GLOBALS = [
  'process',
  'performance',
  'fetch',
  'console',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'clearImmediate',
  'require',
  'queueMicrotask',
  // Channels to other threads and processes.
  'BroadcastChannel',
  'MessageChannel',
  'MessagePort',
  // What the garbage collector did: not a function of the input.
  'WeakRef',
  'FinalizationRegistry',
  // The machine's locale and time zone, and the clock (`new Intl.DateTimeFormat().format()`).
  'Intl',
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
    // `new Date(undefined)` and `new Date(...times)` with no time read the clock as well.
    selector:
      "NewExpression[callee.name='Date'] > :matches(SpreadElement, Identifier[name='undefined']).arguments:first-child",
    message: 'The core has no clock: take the time as input (`new Date(undefined)` reads it).',
  },
  {
    // `const D = Date; D.now()` or `Reflect.construct(Date, [])` would pass the rules above.
    selector:
      "Identifier[name=/^(Date|Math)$/]:not(MemberExpression > Identifier.object, NewExpression > Identifier.callee, BinaryExpression[operator='instanceof'] > Identifier.right, TSTypeReference > Identifier.typeName, MemberExpression[computed=false] > Identifier.property, Property[computed=false] > Identifier.key)",
    message:
      'The core uses `Date` and `Math` only by their members (`Date.parse`, `new Date(t)`), so the clock rules see every use.',
  },
  {
    selector:
      "CallExpression[arguments.length=0] > MemberExpression.callee[object.name='DateTime'][property.name=/^(local|utc)$/]",
    message: 'The core has no clock: take the time as input (`DateTime.local()` reads it).',
  },
  {
    // A time without a date is taken as today's (`DateTime.fromObject({ hour: 1 })`,
    // `DateTime.fromISO('10:00')`): the core reads times from milliseconds (DateTime.fromMillis).
    selector:
      "MemberExpression[object.name='DateTime'][property.name=/^from(Object|ISO|Format|String|SQL)$/]",
    message:
      'The core has no clock: luxon dates a time given without a date today (use DateTime.fromMillis).',
  },
  {
    selector: 'ImportExpression',
    message: 'The core loads no module at run time: import it statically.',
  },
  {
    selector: "MetaProperty[meta.name='import']",
    message: 'The core does not know where its files are: no `import.meta`.',
  },
];

/**
 * What reads the machine's locale or time zone. The governor decides and prints the same whatever
 * LC_ALL, LANG and TZ say on the machine that runs it (a laptop, a function), so none of src/,
 * bench/, scripts/ or bin/ calls these. A property here is forbidden on any object.
 */
const SORT_BY_CODE_UNIT =
  "sorts by the machine's locale (LC_ALL, LANG: Danish puts `aa` after `z`): compare with compareText (src/core/pool.ts)";
const LOCAL_ZONE =
  "reads the machine's time zone (TZ): use the getUTC…/setUTC… form, toISOString, or luxon with an explicit zone";
const LOCALE_PROPERTIES = [
  { property: 'localeCompare', message: `localeCompare ${SORT_BY_CODE_UNIT}.` },
  { object: 'Intl', property: 'Collator', message: `Intl.Collator ${SORT_BY_CODE_UNIT}.` },
  ...['toLocaleUpperCase', 'toLocaleLowerCase'].map((property) => ({
    property,
    message: `${property} follows the machine's locale (Turkish dotted i): use ${property.replace('Locale', '')}.`,
  })),
  ...[
    'getFullYear',
    'getYear',
    'getMonth',
    'getDate',
    'getDay',
    'getHours',
    'getMinutes',
    'getSeconds',
    'getMilliseconds',
    'getTimezoneOffset',
    'setFullYear',
    'setYear',
    'setMonth',
    'setDate',
    'setHours',
    'setMinutes',
    'setSeconds',
    'setMilliseconds',
    'toDateString',
    'toTimeString',
    'toLocaleDateString',
    'toLocaleTimeString',
  ].map((property) => ({ property, message: `${property} ${LOCAL_ZONE}.` })),
  // luxon's DateTime.local(…) is a time in the machine's zone.
  { object: 'DateTime', property: 'local', message: `DateTime.local ${LOCAL_ZONE}.` },
];
const LOCALE_SYNTAX = [
  {
    selector:
      "CallExpression[arguments.length=0] > MemberExpression.callee[property.name='toLocaleString']",
    message:
      "toLocaleString() formats by the machine's locale: name one (`n.toLocaleString('en-US')`).",
  },
  {
    selector:
      ':matches(NewExpression, CallExpression)[arguments.length=0][callee.object.name=Intl]',
    message: "An Intl formatter without a locale takes the machine's: name one ('en-US').",
  },
  {
    // new Date(2026, 11, 1) is a time in the machine's zone; new Date(ms) and new Date(iso) are not.
    selector: "NewExpression[callee.name='Date'][arguments.length>1]",
    message: `new Date(year, month, …) ${LOCAL_ZONE} (Date.UTC(year, month, …)).`,
  },
  {
    // luxon reads a time without a zone option as one in the machine's zone.
    selector:
      "CallExpression[arguments.length<2] > MemberExpression.callee[object.name='DateTime'][property.name=/^from(Millis|Seconds|ISO|JSDate|SQL|RFC2822|HTTP|Object)$/]",
    message: `luxon's DateTime.from…() without { zone } ${LOCAL_ZONE}.`,
  },
  {
    selector:
      "CallExpression[arguments.length<3] > MemberExpression.callee[object.name='DateTime'][property.name='fromFormat']",
    message: `luxon's DateTime.fromFormat() without { zone } ${LOCAL_ZONE}.`,
  },
];
/**
 * The locale rules under names of their own, so that they hold beside the layer blocks below, each
 * of which replaces the options of `no-restricted-properties` and `no-restricted-syntax`.
 */
const MACHINE = {
  rules: {
    'no-restricted-properties': builtinRules.get('no-restricted-properties'),
    'no-restricted-syntax': builtinRules.get('no-restricted-syntax'),
  },
};

const ROOT = dirname(fileURLToPath(import.meta.url));
const OWN_NAME = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).name;
/**
 * Specifiers that reach the project's own code other than by a relative path: an absolute path or
 * a file: URL, a subpath import (`#x`, package.json "imports") or the package's own name.
 */
const OWN_CODE_ELSEWHERE = new RegExp(`^(/|[A-Za-z]:|file:|#|${escape(OWN_NAME)}(/|$))`);

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
      if (typeof path !== 'string') return;
      if (file.startsWith('src/') && OWN_CODE_ELSEWHERE.test(path)) {
        context.report({
          node,
          message: `src/ imports its own code by a relative path only ('${path}' is read by no layer rule).`,
        });
        return;
      }
      if (!path.startsWith('.')) {
        if (kind === 'type' && file.startsWith('src/')) {
          context.report({
            node,
            message: `Import a package's type with \`import type\`, so that the package rules see it ('${path}').`,
          });
        }
        return;
      }
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
    // The loggers sit beside the core (docs/architecture.md): no clock, no I/O but their stream.
    const pure = PURE.has(layer);
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
          regex: `^${up(depth)}core/(planner[\\w-]*|allocate)\\.js$`,
          message:
            "The emulator fakes Google's APIs; it never runs the governor's planner or its allocation.",
        });
      }
      // The command line's product files (every file of cli/ but the tool commands) import no tool.
      const product = layer === 'cli' ? [...patterns, ...cliProduct(depth)] : patterns;
      const rules = {
        'no-restricted-imports': [
          'error',
          {
            patterns: product,
            paths: [...NO_ENV_IMPORT, ...(layer === 'emulator' ? [] : NO_REQUIRE)],
          },
        ],
        'no-restricted-properties': ['error', NO_ENV, NO_BUILTIN_LOADER, ...(pure ? NO_CLOCK : [])],
        'no-restricted-globals': ['error', ...GLOBAL_OBJECTS, ...(pure ? CORE_GLOBALS : [])],
      };
      configs.push({
        files,
        ignores:
          layer === 'function' ? [HOST] : layer === 'cli' ? [...TOOL_COMMANDS, CLI_MAIN] : [],
        rules,
      });
      if (layer === 'cli' && depth === 1) {
        const paths = [...NO_ENV_IMPORT, ...NO_REQUIRE];
        configs.push({
          files: TOOL_COMMANDS,
          rules: { ...rules, 'no-restricted-imports': ['error', { patterns, paths }] },
        });
        configs.push({
          files: [CLI_MAIN],
          rules: {
            ...rules,
            'no-restricted-imports': [
              'error',
              { patterns: [...patterns, ...cliProduct(depth, CLI_MAIN)], paths },
            ],
          },
        });
      }
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
            'no-restricted-imports': ['error', { patterns: product, paths: NO_REQUIRE }],
            'no-restricted-properties': ['error', NO_BUILTIN_LOADER],
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
          paths: NO_REQUIRE,
        },
      ],
      'no-restricted-properties': ['error', NO_BUILTIN_LOADER],
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
      'ImportExpression[source.value=/^(@google-cloud\\x2F|@googleapis\\x2F|googleapis|google-gax|google-auth-library|gaxios|gcp-metadata|@grpc\\x2F)/]',
    message: 'Only adapters import Google libraries (src/adapters/load.ts loads them lazily).',
  };
  // A path the rules cannot read (`import(name)`, `import(\`../${x}\`)`) would load anything.
  const computed = {
    selector: "ImportExpression:not([source.type='Literal'])",
    message:
      'Import a quoted path, so that the layer rules and the function archive (scripts/package.ts) see what it loads.',
  };
  // A module at the root of src/ is a layer of its own: any relative dynamic import leaves it.
  const fromRoot = {
    selector: 'ImportExpression[source.value=/^\\./]',
    message: 'Import another part of src/ statically, so that the layer rules see it.',
  };
  // Each block replaces the rule's options of the one before for the files both cover, so each
  // names the rules every product file keeps (`keep`) before its own.
  const syntax = (
    files,
    extra,
    { ignores, keep = [acrossFolders, computed, googleDynamic] } = {},
  ) =>
    configs.push({
      files,
      ...(ignores ? { ignores } : {}),
      rules: { 'no-restricted-syntax': ['error', ...keep, ...extra] },
    });
  syntax(['src/**/*.ts'], [], { keep: [acrossFolders, computed] });
  syntax(['src/**/*.ts'], [], { ignores: ['src/adapters/**'] });
  syntax(
    ['src/cli/**/*.ts'],
    [
      {
        // esquery's regular expressions cannot hold a slash: \x2F is one.
        selector: `ImportExpression[source.value=/(^|\\x2F)${TOOL_COMMAND_NAMES}$/]`,
        message: 'Only main.ts loads a tool command, when that command runs.',
      },
    ],
    { ignores: [CLI_MAIN, ...TOOL_COMMANDS] },
  );
  // What a module loads when it is imported, not a type it names: `import type` is erased, but
  // `import { type X } from` loads the module all the same (verbatimModuleSyntax).
  const loading = (source) =>
    [
      `ImportDeclaration[importKind!='type'][source.value=${source}]`,
      `ExportNamedDeclaration[exportKind!='type'][source.value=${source}]`,
      `ExportAllDeclaration[exportKind!='type'][source.value=${source}]`,
    ].join(', ');
  // main.ts names the tool commands' types, and loads a tool command only when its command runs.
  syntax(
    [CLI_MAIN],
    [
      {
        selector: loading(`/^\\.\\x2F${TOOL_COMMAND_NAMES}$/`),
        message: 'main.ts loads a tool command only when that command runs: `await import(…)`.',
      },
    ],
  );
  // main.ts reads the simulate command's option defaults from simulate/result.ts at start, so
  // that module loads no other (types only): the product's commands never load the tools.
  syntax(
    [SIMULATE_RESULT],
    [
      {
        selector: loading('/./'),
        message:
          'simulate/result.ts is loaded by every command (cli/main.ts): it imports types only.',
      },
    ],
  );
  syntax(['src/*.ts'], [fromRoot]);
  syntax(['src/log.ts'], [fromRoot, ...CORE_SYNTAX]);
  syntax(['src/core/**/*.ts'], CORE_SYNTAX);
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
    rules: {
      'house/import-path': 'error',
      // Code run from a string is read by no rule (`eval('Date.now()')`, `Function('return this')`).
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
    },
  },
  ...layerConfigs(),
  {
    files: ['src/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'bin/**/*.js'],
    plugins: { machine: MACHINE },
    rules: {
      'machine/no-restricted-properties': ['error', ...LOCALE_PROPERTIES],
      'machine/no-restricted-syntax': ['error', ...LOCALE_SYNTAX],
    },
  },
);
