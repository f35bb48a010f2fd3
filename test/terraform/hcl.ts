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

/**
 * Evaluates a validation or precondition, as hcl2json gives it ("${...}"), for the given values
 * (`var.x` is `vars.x`, `local.x` is `vars.local.x`, `data.x` is `vars.data.x`, `each.x` is
 * `vars.each.x`). Only the part of Terraform's expression language the modules' checks use is
 * known: numbers, strings and their
 * interpolations, object literals, arithmetic, comparisons, `&&`, `||`, `!`, `?:`,
 * `[for x in list : value]`, and the functions alltrue, can, coalesce, contains, endswith,
 * flatten, floor, lookup, regex, startswith, tolist, tonumber and try, with Terraform's meaning
 * (https://developer.hashicorp.com/terraform/language/functions). Anything else throws, so that a
 * condition written outside this part fails its test instead of passing unread. As in Terraform,
 * an error inside the condition (a regex that does not match, tonumber of text) is an error, not
 * false: conditions guard them with can() or try().
 */
export function evaluateCondition(condition: string, vars: Record<string, unknown>): unknown {
  const source = /^\$\{([\s\S]*)\}$/.exec(condition.trim())?.[1];
  if (source === undefined) throw new Error(`not an expression: ${condition}`);
  // "a${x}b" → `a${(x)}b`, each interpolation translated as an expression of its own.
  const template = (literal: string): string => {
    const text = literal.slice(1, -1);
    let out = '`';
    let i = 0;
    while (i < text.length) {
      const start = text.indexOf('${', i);
      if (start < 0) {
        out += text.slice(i).replace(/`/g, '\\`');
        break;
      }
      out += text.slice(i, start).replace(/`/g, '\\`');
      let depth = 1;
      let end = start + 2;
      while (depth > 0 && end < text.length) {
        if (text[end] === '{') depth++;
        if (text[end] === '}') depth--;
        end++;
      }
      out += `\${(${translate(text.slice(start + 2, end - 1))})}`;
      i = end;
    }
    return `${out}\``;
  };

  function translate(source: string): string {
    const tokens =
      source.match(
        /"(?:[^"\\]|\\.)*"|[0-9]+(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:=()[\]{},]|\S/g,
      ) ?? [];
    let at = 0;
    const bound = new Set<string>();
    const known = new Set([
      'alltrue',
      'base64encode',
      'can',
      'coalesce',
      'contains',
      'endswith',
      'flatten',
      'floor',
      'length',
      'lookup',
      'regex',
      'startswith',
      'tolist',
      'trimsuffix',
    ]);
    const thunked = new Set(['can', 'try']);
    const closers: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

    // Emits tokens up to (not including) a top-level token in `stop`.
    const emit = (stop: ReadonlySet<string>): string => {
      let out = '';
      while (at < tokens.length && !stop.has(tokens[at] ?? '')) {
        const token = tokens[at++] ?? '';
        if (token.startsWith('"')) out += token.includes('${') ? template(token) : token;
        else if (/^[0-9]/.test(token)) out += token;
        else if (token === '==' || token === '!=') out += `${token}=`;
        else if (token === '=') out += ':';
        else if (token === '[' && tokens[at] === 'for') {
          at++;
          const name = tokens[at++] ?? '';
          if (tokens[at++] !== 'in') throw new Error('expected "in" in a for expression');
          const list = emit(new Set([':']));
          at++;
          bound.add(name);
          const value = emit(new Set([']']));
          at++;
          out += `(${list}).map((_${name}) => (${value}))`;
        } else if (token in closers) {
          const close = closers[token] ?? '';
          out += token + emit(new Set([close])) + close;
          at++;
        } else if (/^[A-Za-z_]/.test(token)) {
          if (tokens[at] === '(') {
            at++;
            const args: string[] = [];
            while (tokens[at] !== ')') {
              args.push(emit(new Set([',', ')'])));
              if (tokens[at] === ',') at++;
            }
            at++;
            if (token === 'try' || token === 'can' || token === 'tonumber' || known.has(token)) {
              const list = thunked.has(token) ? args.map((a) => `() => (${a})`) : args;
              out += `f.${token}(${list.join(', ')})`;
            } else throw new Error(`function ${token} is not supported`);
          } else if (tokens[at] === '=')
            out += JSON.stringify(token); // an object key
          else if (/^(var|local|data|each)\./.test(token)) {
            const [root = '', ...path] = token.split('.');
            out += `vars${root === 'var' ? '' : `.${root}`}.${path.join('.')}`;
          } else if (['true', 'false', 'null'].includes(token)) out += token;
          else if (bound.has(token)) out += `_${token}`;
          else throw new Error(`unknown name ${token}`);
        } else if (
          '-+*/%<>!?:,&|'.includes(token[0] ?? '') ||
          ['<=', '>=', '&&', '||'].includes(token)
        )
          out += ` ${token} `;
        else throw new Error(`unsupported token ${token}`);
      }
      return out;
    };
    return emit(new Set());
  }
  const js = translate(source);
  const fail = (what: string): never => {
    throw new Error(what);
  };
  const f = {
    alltrue: (list: unknown[]) => list.every((x) => x === true),
    can: (thunk: () => unknown) => {
      try {
        thunk();
        return true;
      } catch {
        return false;
      }
    },
    // coalesce(): the first argument that is neither null nor "".
    coalesce: (...args: unknown[]) =>
      args.find((a) => a !== null && a !== undefined && a !== '') ?? fail('coalesce: no value'),
    // base64encode(): of the text's UTF-8 bytes, as Terraform encodes strings.
    base64encode: (text: string) => Buffer.from(text, 'utf8').toString('base64'),
    contains: (list: unknown[], x: unknown) => list.includes(x),
    endswith: (text: string, suffix: string) => text.endsWith(suffix),
    flatten: (list: unknown[]): unknown[] => list.flat(Infinity),
    floor: Math.floor,
    // length(): of a string, its characters (code points; Terraform counts grapheme clusters).
    // Of null, an error, as in Terraform ("argument must not be null"): conditions guard it with
    // try() or can().
    length: (x: unknown) =>
      x === null || x === undefined
        ? fail('length: null')
        : typeof x === 'string'
          ? [...x].length
          : Array.isArray(x)
            ? x.length
            : Object.keys(x).length,
    lookup: (map: Record<string, unknown>, key: string) =>
      key in map ? map[key] : fail(`lookup: no key ${key}`),
    // regex(): the captures when the pattern has groups, else the match; no match is an error.
    regex: (pattern: string, text: unknown) => {
      if (typeof text !== 'string') return fail('regex: not a string');
      const m = new RegExp(pattern).exec(text);
      if (m === null) return fail(`regex: ${pattern} does not match ${text}`);
      return m.length > 1 ? m.slice(1) : m[0];
    },
    startswith: (text: string, prefix: string) => text.startsWith(prefix),
    // tolist(): a set (given here as an array) as a list.
    tolist: (set: unknown[]) => [...set],
    // trimsuffix(): the text without the suffix, when it ends with it.
    trimsuffix: (text: string, suffix: string) =>
      suffix !== '' && text.endsWith(suffix) ? text.slice(0, -suffix.length) : text,
    tonumber: (x: unknown) => {
      if (typeof x === 'number' || x === null) return x;
      if (typeof x === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(x)) return Number(x);
      return fail(`tonumber: ${String(x)}`);
    },
    try: (...thunks: (() => unknown)[]) => {
      for (const thunk of thunks) {
        try {
          return thunk();
        } catch {
          // the next one
        }
      }
      return fail('try: every argument failed');
    },
  };
  return new Function('vars', 'f', `return (${js});`)(vars, f) as unknown;
}
