import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { PlanWhy } from '../../src/core/why.js';
import { ADMIN_ROUTES } from '../../src/emulator/admin.js';
import { parseRuntimeOptions, RuntimeOptions } from '../../src/runtime-options.js';

/**
 * The documentation stands on its own: every relative link opens a file of the repository (and its
 * `#anchor` a heading there), a section named in quotes is a heading of its page, no page leans on
 * a document or an issue a reader cannot open (another repository's issue is named
 * `owner/repo#N`), every environment variable the code reads is in the README's table, the
 * README's list of commands is the command line's, every option written after a `governor` command
 * is one of that command's, and every `npm run` script and emulator admin route the docs name
 * exists, and the other way round.
 */

const PAGES = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

/** The pages whose links and commands are checked: the README, docs/ and the Terraform guides. */
const GUIDES = [...PAGES, 'terraform/README.md', 'terraform/organization/README.md'];

/**
 * The anchors of a markdown page, as GitHub makes them from its headings: lower case, markup and
 * punctuation dropped, spaces as hyphens, a repeated heading numbered from `-1`.
 */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const slug = (m[1] ?? '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/**
 * The environment variables a source file reads: `env.NAME` or `env['NAME']`, a name passed with
 * the environment (`listEnv(env, 'NAME', …)`), and a name passed to a helper of the file that
 * reads the variable it is given (`const size = (name: string) => … env[name] …`, then
 * `size('NAME')`).
 */
function envNamesRead(text: string): string[] {
  const names = [...text.matchAll(/env(?:\.|\[')([A-Z][A-Z0-9_]+)/g)].map((m) => m[1] ?? '');
  for (const m of text.matchAll(/\benv, '([A-Z][A-Z0-9_]+)'/g)) names.push(m[1] ?? '');
  const helpers = text.matchAll(
    /(?:function (\w+)|const (\w+) =)\s*(?:<[^>]*>)?\(\s*name\b[^)]*\)[^{=]*(?:=>|\{)([\s\S]{0,300})/g,
  );
  for (const h of helpers) {
    if (!/env\[name\]|env, name\b/.test(h[3] ?? '')) continue;
    const call = new RegExp(`\\b${h[1] ?? h[2]}\\('([A-Z][A-Z0-9_]+)'`, 'g');
    for (const m of text.matchAll(call)) names.push(m[1] ?? '');
  }
  return names;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe('the docs', () => {
  it('link only to files that exist', () => {
    const broken: string[] = [];
    for (const page of GUIDES) {
      const text = readFileSync(page, 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] ?? '';
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(page), target))) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('name only files and folders of the repository that exist, in code spans too', () => {
    // `src/core/planner.ts`, `examples/fleet.yaml`, `node dist/bench/org.js`: a path a reader is
    // told to open or run, from the repository's root or the page's folder (terraform/README.md's
    // `examples/basic`). A compiled file stands for its source (the unit tests need no build);
    // what a command writes (bench/results.json, dist/function.zip) is named in .gitignore.
    const ignored = readFileSync('.gitignore', 'utf8').split('\n');
    const root = /^(?:\.\.\/)*(?:src|test|bench|scripts|examples|schema|dist|terraform|docs|bin)\//;
    const missing: string[] = [];
    let checked = 0;
    for (const page of GUIDES) {
      for (const m of readFileSync(page, 'utf8').matchAll(/`([^`\s]+)`/g)) {
        const named = (m[1] ?? '').replace(/[.,:;]$/, '');
        if (!root.test(named) || /[*{}<>…]/.test(named)) continue;
        const path = named.startsWith('../') ? join(dirname(page), named) : named;
        if (path.startsWith('..')) continue; // outside the repository: an example of a bad path
        checked += 1;
        const source = path.startsWith('dist/')
          ? path
              .replace(/^dist\/(src\/)?/, (_, src?: string) => (src ? 'src/' : ''))
              .replace(/\.js$/, '.ts')
          : path;
        if (existsSync(source) || existsSync(join(dirname(page), path))) continue;
        if (ignored.includes(path)) continue;
        if (path.startsWith('dist/') && !path.endsWith('.js')) continue;
        missing.push(`${page}: ${named}`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(missing).toEqual([]);
  });

  it('link only to headings that exist', () => {
    const broken: string[] = [];
    for (const page of GUIDES) {
      const text = readFileSync(page, 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]*)#([^)\s]+)\)/g)) {
        const target = m[1] ?? '';
        if (/^[a-z]+:/.test(target)) continue;
        const file = target === '' ? page : join(dirname(page), target);
        if (!file.endsWith('.md') || !existsSync(file)) {
          broken.push(`${page}: ${m[0]} (no markdown page there)`);
          continue;
        }
        if (!anchorsOf(readFileSync(file, 'utf8')).has(m[2] ?? ''))
          broken.push(`${page}: ${target}#${m[2]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('refer to sections by the names of their headings', () => {
    // `(see "The call log")`, `([emulator.md](emulator.md), "Admin")`: a quoted section name
    // after "see" or a link to a page must open a heading (or a bold paragraph) of that page.
    const missing: string[] = [];
    for (const page of GUIDES) {
      const text = readFileSync(page, 'utf8');
      const refs = [
        ...[...text.matchAll(/\b[Ss]ee "([^"]+)"/g)].map((m) => ({ file: page, name: m[1] })),
        ...[...text.matchAll(/\]\(([^)#\s]+\.md)\),? "([^"]+)"/g)].map((m) => ({
          file: join(dirname(page), m[1] ?? ''),
          name: m[2],
        })),
      ];
      for (const { file, name } of refs) {
        const opens = (line: string) =>
          line.replace(/^#{1,6} /, '').startsWith(name ?? '') || line.includes(`**${name}`);
        const lines = readFileSync(file, 'utf8').split('\n');
        if (!lines.some((l) => (/^#{1,6} /.test(l) || l.includes('**')) && opens(l)))
          missing.push(`${page}: "${name}" in ${file}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('are named in the code, its messages and its tests by sections they have', () => {
    // A comment, an error's hint or a test naming a page and a quoted section (docs/alerts.md "Receiving them",
    // with or without a comma): the section must be a heading (or a bold paragraph) of that
    // page, so that a section moved to another page takes the messages that send readers to it.
    const files = [
      ...walk('src'),
      ...walk('test'),
      ...walk('bench'),
      ...walk('scripts'),
      ...walk('examples'),
      ...walk('terraform'),
    ].filter((f) => /\.(ts|ya?ml|tf)$/.test(f));
    const missing: string[] = [];
    let checked = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const refs = text.matchAll(
        /\b(README(?:\.md)?|docs\/[a-z-]+\.md|terraform\/(?:organization\/)?README\.md),? "([^"\n]+)"/g,
      );
      for (const m of refs) {
        const page = m[1] === 'README' ? 'README.md' : (m[1] ?? '');
        const name = m[2] ?? '';
        checked += 1;
        const lines = existsSync(page) ? readFileSync(page, 'utf8').split('\n') : [];
        const opens = (line: string) =>
          (/^#{1,6} /.test(line) && line.replace(/^#{1,6} /, '').startsWith(name)) ||
          line.includes(`**${name}`);
        if (!lines.some(opens)) missing.push(`${file}: ${page} "${name}"`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });

  it('refer to the rules in the repository, not to a document or an issue outside it', () => {
    const files = [...GUIDES, ...walk('src'), ...walk('test'), ...walk('bench')].filter((f) =>
      /\.(md|ts)$/.test(f),
    );
    const outside = files.filter((f) => {
      const text = readFileSync(f, 'utf8');
      return /\bSPEC\b(?!IFIED)|SPEC\.md|GCP-FACTS|the project's issue \d+|\b[Ii]ssues? #\d+|\bbefore #\d+/.test(
        text.replace(/UNSPECIFIED/g, ''),
      );
    });
    expect(outside.filter((f) => f !== join('test', 'docs', 'docs.test.ts'))).toEqual([]);
    expect(existsSync('docs/rules.md')).toBe(true);
  });

  it('list every environment variable the code reads in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const table = readme.slice(readme.indexOf('## Environment variables'));
    const read = new Set<string>();
    for (const file of walk('src').filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(file, 'utf8');
      for (const name of envNamesRead(text)) read.add(name);
      for (const m of text.matchAll(/'((?:GOVERNOR|PUBSUB|FIRESTORE)_[A-Z_]+)'/g))
        read.add(m[1] ?? '');
    }
    // Every variable RuntimeOptions parses, however the code then reads it.
    for (const name of Object.keys(RuntimeOptions.in.shape)) read.add(name);
    expect(read.size).toBeGreaterThan(8);
    const missing = [...read].filter(
      (name) => !table.includes(`\`${name}\``) && !table.includes(`${name}=`),
    );
    expect(missing).toEqual([]);
  });

  it('name every environment variable the benchmarks and scripts read in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const read = new Set<string>();
    for (const file of [...walk('bench'), ...walk('scripts')].filter((f) => f.endsWith('.ts'))) {
      for (const name of envNamesRead(readFileSync(file, 'utf8'))) read.add(name);
    }
    // Read through a helper too (evidence-gap.ts's list('VARIANTS'), profile-planner.ts's size(…)).
    expect(read).toContain('PROFILE_SERVICES');
    expect(read.size).toBeGreaterThan(8);
    const missing = [...read].filter((name) => !new RegExp(`\\b${name}\\b`).test(readme));
    expect(missing).toEqual([]);
  });

  it("list each command of the command line with exactly its options in the README's Commands", () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('## Commands'));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const documented = new Map<string, Set<string>>();
    for (const line of block.split('\n')) {
      const m = /^governor ((?:[a-z]+ )*?[a-z]+)(?= +\[|\s+--|$)/.exec(line.trimEnd());
      if (!m?.[1]) continue;
      const flags = documented.get(m[1]) ?? new Set<string>();
      for (const f of line.matchAll(/--[a-z][a-z-]*/g)) flags.add(f[0]);
      documented.set(m[1], flags);
    }
    const program = buildProgram(
      { stdout: { write: () => true }, stderr: { write: () => true } },
      parseRuntimeOptions({}),
      () => undefined,
    );
    const actual = new Map<string, Set<string>>();
    const visit = (command: Command, prefix: string) => {
      for (const sub of command.commands) {
        const name = `${prefix}${sub.name()}`;
        if (sub.commands.length > 0) visit(sub, `${name} `);
        else actual.set(name, new Set(sub.options.map((o) => o.long ?? '')));
      }
    };
    visit(program, '');
    actual.set('--help', new Set());
    documented.delete('--help');
    actual.delete('--help');
    const asObject = (m: Map<string, Set<string>>) =>
      Object.fromEntries([...m].map(([k, v]) => [k, [...v].sort()]).sort());
    expect(asObject(documented)).toEqual(asObject(actual));
    // docs/rules.md names the same commands.
    const rules = readFileSync('docs/rules.md', 'utf8');
    const line = rules.slice(rules.indexOf('## The command line')).split('\n\n')[1] ?? '';
    const named = [...line.matchAll(/`(?:governor )?([a-z][a-z ]*)`/g)].map((m) => m[1]);
    expect(named.sort()).toEqual([...actual.keys()].sort());
  });

  it('name only options the command line has, after each `governor` command', () => {
    const program = buildProgram(
      { stdout: { write: () => true }, stderr: { write: () => true } },
      parseRuntimeOptions({}),
      () => undefined,
    );
    const options = new Map<string, Set<string>>();
    const visit = (command: Command, prefix: string) => {
      for (const sub of command.commands) {
        const name = `${prefix}${sub.name()}`;
        if (sub.commands.length > 0) visit(sub, `${name} `);
        options.set(name, new Set(sub.options.map((o) => o.long ?? '')));
      }
    };
    visit(program, '');
    const unknown: string[] = [];
    let checked = 0;
    for (const page of GUIDES) {
      for (const line of readFileSync(page, 'utf8').split('\n')) {
        for (const m of line.matchAll(/\bgovernor ([a-z]+)(?: ([a-z]+))?/g)) {
          const two = `${m[1]} ${m[2]}`;
          const name = options.has(two) ? two : (m[1] ?? '');
          const known = options.get(name);
          if (!known) continue;
          // The command's words run to the end of its code span, its comment or its line.
          const rest = line.slice((m.index ?? 0) + m[0].length).split(/`| # /)[0] ?? '';
          for (const f of rest.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)) {
            checked += 1;
            if (f[0] !== '--help' && !known.has(f[0]))
              unknown.push(`${page}: governor ${name} ${f[0]}`);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(unknown).toEqual([]);
  });

  it('name only npm scripts that exist', () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
        .scripts,
    );
    const unknown: string[] = [];
    for (const page of GUIDES) {
      const text = readFileSync(page, 'utf8');
      for (const m of text.matchAll(/npm run ([a-z][a-z0-9:-]*[a-z0-9])/g))
        if (!scripts.includes(m[1] ?? '')) unknown.push(`${page}: npm run ${m[1]}`);
    }
    expect(unknown).toEqual([]);
  });

  it("document every route of the emulator's admin endpoint in docs/emulator.md, and no other", () => {
    const admin = readFileSync('src/emulator/admin.ts', 'utf8');
    const routes = [...admin.matchAll(/case '((?:GET|POST) \/[a-z/-]*)':/g)].map((m) => m[1] ?? '');
    expect(routes.length).toBeGreaterThan(10);
    // The routes the endpoint serves are the ones it lists (404) and checks the query of.
    expect([...routes].sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    const page = readFileSync('docs/emulator.md', 'utf8');
    expect(routes.filter((r) => !page.includes(r))).toEqual([]);
    const named = [...page.matchAll(/`((?:GET|POST) \/[a-z/-]*)/g)].map((m) => m[1] ?? '');
    expect([...new Set(named)].filter((r) => !routes.includes(r))).toEqual([]);
  });

  it("name every folder and file of src/ in the README's Layout", () => {
    const readme = readFileSync('README.md', 'utf8');
    const start = readme.indexOf('## Layout');
    expect(start).toBeGreaterThan(0);
    const layout = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const entries = readdirSync('src', { withFileTypes: true }).map((e) =>
      e.isDirectory() ? `src/${e.name}/` : `src/${e.name}`,
    );
    expect(entries.length).toBeGreaterThan(10);
    expect(entries.filter((e) => !layout.includes(e))).toEqual([]);
  });

  it("name every field of a plan row's `why`, and what its bounds' `set` may say, in the README's \"Why, as data\"", () => {
    const readme = readFileSync('README.md', 'utf8');
    const start = readme.indexOf('**Why, as data.**');
    expect(start).toBeGreaterThan(0);
    const paragraph = readme.slice(start, readme.indexOf('\n\n', start));
    const fields = Object.keys(PlanWhy.shape);
    expect(fields.length).toBeGreaterThan(20);
    expect(fields.filter((f) => !paragraph.includes(`\`${f}\``))).toEqual([]);
    // What sets a floor or a ceiling, in the words the paragraph uses for each value.
    const words: Record<string, string> = {
      'min-instances': "the service's min instances",
      quota: 'the quota',
      defaults: "the policy's defaults",
      rule: 'the rule',
      window: 'schedule window',
      revision: "the serving revision's own max",
    };
    const sets = new Set(
      [PlanWhy.shape.atFloor, PlanWhy.shape.atCeiling].flatMap((s) => s.unwrap().shape.set.options),
    );
    expect([...sets].filter((v) => !(v in words) || !paragraph.includes(words[v] ?? ''))).toEqual(
      [],
    );
  });
});

describe('docs/emulator.md', () => {
  it('names every gRPC service the emulator serves in its table of APIs', () => {
    const source = readFileSync('src/emulator/protos.ts', 'utf8');
    const body = /export const SERVICES = \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';
    const served = [...body.matchAll(/^ {2}\w+: '([\w.]+)',/gm)].map((m) => m[1] ?? '');
    expect(served.length).toBeGreaterThan(8);
    const page = readFileSync('docs/emulator.md', 'utf8');
    const table = page.slice(page.indexOf('| API '), page.indexOf('Error messages quote'));
    expect(served.filter((name) => !table.includes(`\`${name}\``))).toEqual([]);
  });

  it("names every API of its table in `governor emulator`'s description", () => {
    // The products, not the mixins every gRPC server of them carries (operations, locations, IAM).
    const page = readFileSync('docs/emulator.md', 'utf8');
    const table = page.slice(page.indexOf('| API '), page.indexOf('Error messages quote'));
    const products = [...table.matchAll(/^\| ([A-Z][^|]*?) +\| `google\.([a-z]+)/gm)]
      .filter((m) => !['longrunning', 'iam'].includes(m[2] ?? '') && !/mixin/.test(m[1] ?? ''))
      .map((m) => (m[1] ?? '').replace(/ v\d+$| \(.*\)$/g, '').replace(/ Admin$/, ''));
    expect(products.length).toBeGreaterThan(4);
    const program = buildProgram(
      { stdout: { write: () => true }, stderr: { write: () => true } },
      parseRuntimeOptions({}),
      () => undefined,
    );
    const description = program.commands.find((c) => c.name() === 'emulator')?.description() ?? '';
    expect(products.filter((name) => !description.includes(name))).toEqual([]);
  });

  it('names every field of a message GET /published lists', () => {
    const source = readFileSync('src/emulator/pubsub-store.ts', 'utf8');
    const body = /export interface PublishedMessage \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';
    const fields = [...body.matchAll(/^ {2}readonly (\w+)\??:/gm)].map((m) => m[1] ?? '');
    expect(fields.length).toBeGreaterThan(6);
    const page = readFileSync('docs/emulator.md', 'utf8');
    const record = page.slice(page.indexOf('**The record**'), page.indexOf('- The fault injector'));
    expect(fields.filter((f) => !record.includes(`\`${f}\``))).toEqual([]);
  });

  it('lists every option of startEmulator in its table, and no other', () => {
    const source = readFileSync('src/emulator/index.ts', 'utf8');
    const body = /export interface EmulatorOptions \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';
    const options = [...body.matchAll(/^ {2}readonly (\w+)\??:/gm)].map((m) => m[1] ?? '');
    expect(options.length).toBeGreaterThan(10);
    const page = readFileSync('docs/emulator.md', 'utf8');
    const table = page.slice(
      page.indexOf('| option '),
      page.indexOf('The returned `RunningEmulator`'),
    );
    const listed = [...table.matchAll(/^\| `(\w+)`/gm)].map((m) => m[1] ?? '');
    expect(listed.sort()).toEqual(options.sort());
  });
});
