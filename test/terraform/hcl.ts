import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';

/**
 * A Terraform configuration read offline with @cdktf/hcl2json (there is no terraform binary in
 * the test environment). hcl2json gives every block as an array of bodies and every expression
 * that is not a literal as a "${...}" string.
 */

export type Body = Record<string, unknown>;

export interface Config {
  dir: string;
  /** Raw text of each .tf file, by file name. */
  text: Map<string, string>;
  variables: Map<string, Body>;
  outputs: Map<string, Body>;
  /** `${type}.${name}` → body, for resources. */
  resources: Map<string, Body>;
  /** `${type}.${name}` → body, for data sources. */
  data: Map<string, Body>;
  modules: Map<string, Body>;
  providers: Map<string, Body>;
  locals: Body;
  terraform: Body[];
}

export function isBody(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first body of a nested block (`scaling { }` → body), or undefined. */
export function block(body: Body | undefined, name: string): Body | undefined {
  const value = body?.[name];
  if (Array.isArray(value)) {
    const first: unknown = value[0];
    return isBody(first) ? first : undefined;
  }
  return isBody(value) ? value : undefined;
}

/** The content of a `dynamic "name" { content { } }` block. */
export function dynamicContent(body: Body | undefined, name: string): Body | undefined {
  return block(block(block(body, 'dynamic'), name), 'content');
}

export function dynamicBlock(body: Body | undefined, name: string): Body | undefined {
  return block(block(body, 'dynamic'), name);
}

function labelled(section: unknown, into: Map<string, Body>, prefix = ''): void {
  if (!isBody(section)) return;
  for (const [label, bodies] of Object.entries(section)) {
    const first: unknown = Array.isArray(bodies) ? bodies[0] : undefined;
    if (!isBody(first)) throw new Error(`block ${prefix}${label} has no body`);
    if (into.has(prefix + label)) throw new Error(`block ${prefix}${label} is declared twice`);
    into.set(prefix + label, first);
  }
}

function typed(section: unknown, into: Map<string, Body>): void {
  if (!isBody(section)) return;
  for (const [type, byName] of Object.entries(section)) labelled(byName, into, `${type}.`);
}

export async function loadConfig(dir: string): Promise<Config> {
  const config: Config = {
    dir,
    text: new Map(),
    variables: new Map(),
    outputs: new Map(),
    resources: new Map(),
    data: new Map(),
    modules: new Map(),
    providers: new Map(),
    locals: {},
    terraform: [],
  };
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    config.text.set(file, text);
    const parsed: unknown = await parse(file, text);
    if (!isBody(parsed)) continue;
    labelled(parsed['variable'], config.variables);
    labelled(parsed['output'], config.outputs);
    labelled(parsed['module'], config.modules);
    labelled(parsed['provider'], config.providers);
    typed(parsed['resource'], config.resources);
    typed(parsed['data'], config.data);
    for (const locals of Array.isArray(parsed['locals']) ? parsed['locals'] : []) {
      if (isBody(locals)) Object.assign(config.locals, locals);
    }
    for (const tf of Array.isArray(parsed['terraform']) ? parsed['terraform'] : []) {
      if (isBody(tf)) config.terraform.push(tf);
    }
  }
  return config;
}

/** Resources of one type, by name. */
export function resourcesOf(config: Config, type: string): Map<string, Body> {
  const out = new Map<string, Body>();
  for (const [key, body] of config.resources) {
    if (key.startsWith(`${type}.`)) out.set(key.slice(type.length + 1), body);
  }
  return out;
}

export function resource(config: Config, type: string, name: string): Body {
  const body = config.resources.get(`${type}.${name}`);
  if (body === undefined) throw new Error(`resource ${type}.${name} is missing`);
  return body;
}

/** All text of the configuration, for "never anywhere" checks. */
export function allText(config: Config): string {
  return [...config.text.values()].join('\n');
}

/** Every string found anywhere inside a value (expressions included). */
export function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (isBody(value)) return Object.values(value).flatMap(stringsIn);
  return [];
}
