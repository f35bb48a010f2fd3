import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from '@cdktf/hcl2json';
import * as prettier from 'prettier';
import { argumentsOrExit } from './arguments.js';
import { errorMessage } from '../src/core/errors.js';

/**
 * Writes the inputs and outputs tables of each module's README (`terraform/README.md`,
 * `terraform/organization/README.md`) from the module's `variable` and
 * `output` blocks, between the markers below, then formats the README with the project's prettier
 * settings (so `prettier --check` and this script agree).
 *
 *   npm run build && node dist/scripts/terraform-docs.js           rewrite the READMEs
 *   npm run build && node dist/scripts/terraform-docs.js --check   exit 1 when it is stale
 */

export const BEGIN_MARKER = '<!-- BEGIN_TF_DOCS -->';
export const END_MARKER = '<!-- END_TF_DOCS -->';

export interface ModuleInput {
  name: string;
  type: string;
  description: string;
  required: boolean;
  default?: unknown;
}

export interface ModuleOutput {
  name: string;
  description: string;
}

export interface ModuleInterface {
  inputs: ModuleInput[];
  outputs: ModuleOutput[];
}

type Block = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every `kind` block (variable, output, ...) of the .tf files in dir, by label. */
async function blocksOf(dir: string, kind: string): Promise<Map<string, Block>> {
  const blocks = new Map<string, Block>();
  const files = (await readdir(dir)).filter((f) => f.endsWith('.tf')).sort();
  for (const file of files) {
    const parsed: unknown = await parse(file, await readFile(join(dir, file), 'utf8'));
    const section = isRecord(parsed) ? parsed[kind] : undefined;
    if (!isRecord(section)) continue;
    for (const [label, bodies] of Object.entries(section)) {
      const body: unknown = Array.isArray(bodies) ? bodies[0] : undefined;
      if (!isRecord(body)) throw new Error(`${file}: ${kind} "${label}" has no body`);
      if (blocks.has(label)) throw new Error(`${file}: ${kind} "${label}" is declared twice`);
      blocks.set(label, body);
    }
  }
  return blocks;
}

/** `${object({\n a = string\n b = number\n})}` → `object({ a = string, b = number })`. */
export function typeExpression(raw: unknown): string {
  if (typeof raw !== 'string') return 'any';
  const inner = raw.startsWith('${') && raw.endsWith('}') ? raw.slice(2, -1) : raw;
  const lines = inner
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  let out = '';
  for (const line of lines) {
    if (out === '') out = line;
    else if (/[{(,]$/.test(out) || /^[})]/.test(line)) out += ` ${line}`;
    else out += `, ${line}`;
  }
  return out;
}

/** The module's variables and outputs, sorted by name. */
export async function readModuleInterface(moduleDir: string): Promise<ModuleInterface> {
  const inputs: ModuleInput[] = [];
  for (const [name, body] of await blocksOf(moduleDir, 'variable')) {
    const input: ModuleInput = {
      name,
      type: typeExpression(body['type']),
      description: typeof body['description'] === 'string' ? body['description'] : '',
      required: !('default' in body),
    };
    if ('default' in body) input.default = body['default'];
    inputs.push(input);
  }
  const outputs: ModuleOutput[] = [];
  for (const [name, body] of await blocksOf(moduleDir, 'output')) {
    outputs.push({
      name,
      description: typeof body['description'] === 'string' ? body['description'] : '',
    });
  }
  const byName = (a: { name: string }, b: { name: string }): number =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  return { inputs: inputs.sort(byName), outputs: outputs.sort(byName) };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|');
}

/** Prose in a table cell: `<name>` must not read as an HTML tag, nor `*` as emphasis. */
function cell(text: string): string {
  return oneLine(text).replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\*/g, '\\*');
}

function code(text: string): string {
  return '`' + oneLine(text) + '`';
}

/** The markdown between the markers (before formatting). */
export function renderTables(module: ModuleInterface): string {
  const lines: string[] = [
    '### Inputs',
    '',
    '| Name | Description | Type | Default | Required |',
    '| --- | --- | --- | --- | :-: |',
  ];
  for (const input of module.inputs) {
    const fallback = input.required ? 'n/a' : code(JSON.stringify(input.default ?? null));
    lines.push(
      `| ${code(input.name)} | ${cell(input.description)} | ${code(input.type)} | ${fallback} | ${input.required ? 'yes' : 'no'} |`,
    );
  }
  lines.push('', '### Outputs', '', '| Name | Description |', '| --- | --- |');
  for (const output of module.outputs) {
    lines.push(`| ${code(output.name)} | ${cell(output.description)} |`);
  }
  return lines.join('\n');
}

/** README text with the tables replaced, formatted as prettier would leave it. */
export async function renderReadme(
  readme: string,
  module: ModuleInterface,
  filepath: string,
): Promise<string> {
  const begin = readme.indexOf(BEGIN_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (begin < 0 || end < begin) {
    throw new Error(
      `${filepath} needs the markers ${BEGIN_MARKER} and ${END_MARKER}, in that order`,
    );
  }
  const text =
    readme.slice(0, begin + BEGIN_MARKER.length) +
    '\n\n' +
    renderTables(module) +
    '\n\n' +
    readme.slice(end);
  const config = (await prettier.resolveConfig(filepath)) ?? {};
  return prettier.format(text, { ...config, filepath });
}

/** What a module's README.md should hold, and what it holds. */
export async function expectedModuleReadme(
  moduleDir: string,
): Promise<{ path: string; current: string; expected: string }> {
  const path = join(moduleDir, 'README.md');
  const current = await readFile(path, 'utf8');
  const expected = await renderReadme(current, await readModuleInterface(moduleDir), path);
  return { path, current, expected };
}

/** The modules whose README carries generated tables. */
export const MODULE_DIRS = ['terraform', 'terraform/organization'] as const;

async function main(): Promise<void> {
  const { flags } = argumentsOrExit({
    name: 'terraform-docs',
    flags: ['--check'],
    text: 'node dist/scripts/terraform-docs.js [--check] (--check: exit 1 when a README is stale, write nothing)',
  });
  const check = flags.has('--check');
  for (const dir of MODULE_DIRS) {
    const { path, current, expected } = await expectedModuleReadme(resolve(process.cwd(), dir));
    if (current === expected) {
      console.log(`${dir}/README.md is up to date`);
    } else if (check) {
      console.error(
        `${dir}/README.md is stale: run npm run build && node dist/scripts/terraform-docs.js`,
      );
      process.exitCode = 1;
    } else {
      await writeFile(path, expected);
      console.log(`wrote ${dir}/README.md`);
    }
  }
}

const invoked = process.argv[1];
if (invoked !== undefined && import.meta.url === pathToFileURL(resolve(invoked)).href) {
  main().catch((error: unknown) => {
    console.error(`terraform-docs: ${errorMessage(error)}`);
    process.exitCode = 1;
  });
}
