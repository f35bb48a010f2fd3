import { distance } from 'fastest-levenshtein';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { capFaults, faultText, InputError, type Fault, errorMessage } from './errors.js';
import { hasUnshown, oneLine, quotedText } from './text.js';

/**
 * Reading an input document (a policy, a snapshot, a scenario, a request body, a stored record)
 * and saying what is wrong with it: YAML or JSON text to a value, and zod's issues to faults a
 * person can act on, each with a readable path.
 */

/**
 * A map of keys chosen by the user (labels, annotations) to strings. A plain `z.record` silently
 * drops a `__proto__` key: JSON.parse and YAML make it an own property, but copying it into the
 * parsed object sets the prototype instead. It is refused here, with its path, rather than
 * dropped (no Cloud Run label key can be `__proto__` anyway: keys start with a lowercase letter).
 */
export const StringMap = z.preprocess(
  (value, ctx) => {
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
      ctx.addIssue({
        code: 'custom',
        path: ['__proto__'],
        message: '"__proto__" cannot be a key here (it would be dropped, not kept)',
        input: value,
      });
    }
    return value;
  },
  z.record(z.string(), z.string()),
);

/**
 * Turns zod issues into faults with readable paths and messages. Given the schema that was
 * parsed, an unknown key that is a typo of a known one at the same place says which
 * (`servcies` → "did you mean \"services\"?").
 */
export function zodFaults(error: z.ZodError, schema?: z.ZodType): Fault[] {
  const faults: Fault[] = [];
  let looked = 0;
  // The paths told something other than a whole number past 2^53 (below).
  const bounded = new Set(
    error.issues.filter((i) => !isSafeIntRange(i)).map((i) => formatPath(i.path)),
  );
  for (const issue of error.issues) {
    const path = formatPath(issue.path);
    // `1e300` is a whole number, so `.int()` refuses it as outside the safe integers ("expected
    // int to be <=9007199254740991") beside the key's own bound ("<=100000"): one value, two
    // faults, the first naming a bound no one set. The key's own is told alone.
    if (isSafeIntRange(issue) && bounded.has(path)) continue;
    if (issue.code === 'unrecognized_keys') {
      const known = schema ? keysAt(schema, issue.path) : [];
      for (const key of issue.keys) {
        // A document of 100,000 unknown keys is shown by its first 100 faults: only so many get
        // a suggestion, so that a hostile one costs no more than a typo.
        const near = looked++ < MAX_SUGGESTIONS ? nearestKey(key, known) : null;
        faults.push({
          path: formatPath([...issue.path, key]),
          message: near === null ? 'unknown key' : `unknown key (did you mean "${near}"?)`,
        });
      }
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      faults.push({ path, message: issue.message });
    } else if (issue.code === 'invalid_type' && isMissing(issue)) {
      // A key left out reads "expected string, received undefined": say it is missing.
      const expected = issue.expected === 'nonoptional' ? '' : ` (expected ${issue.expected})`;
      faults.push({ path, message: `missing${expected}` });
    } else if (issue.code === 'invalid_value' && isMissing(issue)) {
      // The same for a fixed value (`version: 1`).
      faults.push({ path, message: `missing (expected ${issue.values.map(String).join(' or ')})` });
    } else {
      faults.push({ path, message: issue.message });
    }
  }
  return faults;
}

/** zod's refusal of a whole number outside ±(2^53 − 1), the range `.int()` checks. */
function isSafeIntRange(issue: z.core.$ZodIssue): boolean {
  return (
    (issue.code === 'too_big' || issue.code === 'too_small') &&
    issue.origin === 'int' &&
    Math.abs(Number(issue.code === 'too_big' ? issue.maximum : issue.minimum)) ===
      Number.MAX_SAFE_INTEGER
  );
}

/** The unknown keys of one document a suggestion is looked for. */
const MAX_SUGGESTIONS = 1000;

/** The longest key a suggestion is looked for: past it, a key is no typo of a schema's key. */
const MAX_SUGGESTED_KEY = 64;

/**
 * The known key nearest to `key`: at most 2 edits away, and fewer than half its length (so that
 * `ab` does not suggest `min`); the first in the schema's order on a tie; null when none is.
 */
function nearestKey(key: string, known: readonly string[]): string | null {
  if (key.length > MAX_SUGGESTED_KEY) return null;
  let best: string | null = null;
  let bestDistance = Math.min(2, Math.ceil(key.length / 2) - 1);
  for (const k of known) {
    const d = distance(key, k);
    if (d <= bestDistance && (best === null || d < distance(key, best))) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * The keys an object of `schema` may have at `path` (object shapes through optional, default,
 * nullable, pipe, array and record wrappers; every branch of a union): what an unknown key there
 * may have been meant as. Empty when the path leads to no object.
 */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const keys = new Set<string>();
  const walk = (s: z.core.$ZodType, at: number, depth: number): void => {
    if (depth > 64) return;
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    const inner = (key: string) => def[key] as z.core.$ZodType;
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        return walk(inner('innerType'), at, depth + 1);
      case 'pipe':
        walk(inner('in'), at, depth + 1);
        return walk(inner('out'), at, depth + 1);
      case 'union':
        for (const option of def['options'] as z.core.$ZodType[]) walk(option, at, depth + 1);
        return;
      case 'array':
        if (at < path.length && typeof path[at] === 'number')
          walk(inner('element'), at + 1, depth + 1);
        return;
      case 'record':
        if (at < path.length) walk(inner('valueType'), at + 1, depth + 1);
        return;
      case 'object': {
        const shape = def['shape'] as Record<string, z.core.$ZodType>;
        if (at === path.length) for (const k of Object.keys(shape)) keys.add(k);
        else {
          const next = shape[String(path[at])];
          if (next) walk(next, at + 1, depth + 1);
        }
        return;
      }
      default:
        return;
    }
  };
  walk(schema, 0, 0);
  return [...keys];
}

/**
 * A key left out rather than given a wrong value: told by the issue's input where the parse
 * reported it (`safeParse(raw, { reportInput: true })`), else only by zod's "received undefined".
 */
function isMissing(issue: z.core.$ZodIssue): boolean {
  return 'input' in issue ? issue.input === undefined : / received undefined$/.test(issue.message);
}

export { capFaults } from './errors.js';

/**
 * zod's issues as one line for an answer to someone else's input (the emulator's admin bodies):
 * `path: message; …`, the first `max` told, each cut and on one line, then a count of the rest. A
 * body's key of 500 KB, or 60,000 unknown keys, was echoed whole into a 400 of as many bytes.
 */
export function issuesLine(error: z.ZodError, max = 10): string {
  const faults = error.issues.map((i) => ({
    path: oneLine(i.path.length ? i.path.map(String).join('.') : '(body)'),
    message: oneLine(i.message),
  }));
  return capFaults(faults, max).map(faultText).join('; ');
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    // An empty key (YAML's `~:` or `"":`) is shown quoted, so the fault still says where it is;
    // so is one with a control character (a terminal escape, a newline), a line separator or a
    // bidirectional control, each escaped, so that it neither acts on the terminal nor forges a
    // line of its own.
    else if (String(part) === '') out += '[""]';
    else if (hasUnshown(String(part))) out += `[${quotedText(String(part))}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

type DocumentFormat = 'JSON' | 'YAML';

/**
 * The format a document is meant to be in: JSON when it is named `*.json` or opens with `{` or
 * `[`, YAML otherwise. Every JSON document is also YAML and is read as YAML; the format only
 * decides whose words an error is told in, so truncated JSON is not reported as a YAML error.
 */
export function expectedFormat(text: string, name = ''): DocumentFormat {
  return /\.json$/i.test(name.trim()) || /^\s*[[{]/.test(text) ? 'JSON' : 'YAML';
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return `line ${lines.length}, column ${(lines.at(-1)?.length ?? 0) + 1}`;
}

/** The deepest brackets (`[`, `{`) may nest: far beyond any policy, snapshot or fleet. */
const MAX_FLOW_DEPTH = 100;
/** The most columns a line may be indented (or nested by `- - -` on one line). */
const MAX_INDENT = 256;

/**
 * Where `text` nests deeper than a document of ours ever does, before the YAML parser sees it:
 * the parser recurses once per level and runs out of stack somewhere between 400 and 1,000
 * levels, taking seconds on a few megabytes and, measured here, sometimes failing the process on
 * a later parse. Brackets are counted outside quotes and comments; a line's depth is its
 * indentation plus two columns for each `- ` that opens it.
 */
export function nestingFault(text: string): Fault | null {
  let depth = 0;
  let quote = '';
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === ' ' || (c === '-' && text[i + 1] === ' ')) {
        indent += c === '-' ? 2 : 1;
        if (c === '-') i++;
        if (indent > MAX_INDENT) {
          return {
            path: lineAndColumn(text, i),
            message: `indented or nested more than ${MAX_INDENT} columns deep`,
          };
        }
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
      continue;
    }
    const prev = i === 0 ? ' ' : text[i - 1];
    if (c === '"' || (c === "'" && /[\s[{,:]/.test(prev ?? ' '))) quote = c;
    else if (c === '#' && /\s/.test(prev ?? ' ')) {
      const end = text.indexOf('\n', i);
      i = (end === -1 ? text.length : end) - 1;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > MAX_FLOW_DEPTH) {
        return {
          path: lineAndColumn(text, i),
          message: `brackets nested more than ${MAX_FLOW_DEPTH} deep`,
        };
      }
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return null;
}

/**
 * Why JSON.parse refused a text, without the excerpt of the text Node quotes in its message
 * (`Unexpected token 'r', "root:x:0:0"... is not valid JSON`, or `..."tions":nul\n" is not
 * valid JSON` from the middle of a text): a stored file's content is not echoed into logs and
 * alerts, whatever the file turns out to hold.
 */
export function jsonErrorText(error: unknown): string {
  return errorMessage(error)
    .replace(/,\s*(?:\.\.\.)?"[\s\S]*"(?:\.\.\.)?\s+is not valid JSON$/, '')
    .replace(/ in JSON at position (\d+)[\s\S]*$/, ' at position $1');
}

/** Where and why `text` does not parse, said in the terms of `format`. */
function syntaxFault(text: string, error: unknown, format: DocumentFormat): Fault {
  if (format === 'JSON') {
    try {
      JSON.parse(text);
    } catch (e) {
      const message = errorMessage(e);
      const at = /at position (\d+)/.exec(message);
      const end = text.trimEnd().length;
      const offset = Math.min(at ? Number(at[1]) : end, end);
      const what = message
        .replace(/ in JSON at position \d+.*$/, '')
        .replace(/ of JSON input$/, '');
      // An error at the very end of the text is a document cut short, whatever the parser calls it.
      return {
        path: lineAndColumn(text, offset),
        message:
          offset >= end - 1 ? `the JSON ends before it is complete (${what.toLowerCase()})` : what,
      };
    }
    // Valid JSON that YAML refuses: a key written twice.
  }
  if (error instanceof YAMLParseError) {
    const where = error.linePos?.[0]
      ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}`
      : '';
    // The parser's message repeats the position the path already gives ("… at line 3, column 1:").
    const first = (error.message.split('\n')[0] ?? error.message).replace(
      /\s+at line \d+, column \d+:?$/,
      '',
    );
    // Thousands of brackets deep: the parser's recursion ran out of stack, which it words in
    // the engine's terms.
    if (first.startsWith('Maximum call stack size exceeded')) {
      return { path: where, message: `nested too deeply to read (brackets or indents)` };
    }
    // The parser's advice is for programmers ("please use YAML.parseAllDocuments()").
    if (error.code === 'MULTIPLE_DOCS') {
      return {
        path: where,
        message: 'a second document starts here (a line "---"): the file must hold one',
      };
    }
    return { path: where, message: first };
  }
  // The parser also throws plain errors for a bad document (an alias to no anchor is a
  // ReferenceError): still bad input, never a crash (found by test/fuzz).
  return { path: '', message: errorMessage(error) };
}

/**
 * The first key written twice in one object of a JSON text and where it starts, or null when
 * there is none; `text` is valid JSON. `JSON.parse` keeps the last of two such keys without a word, where
 * the YAML parser refuses them: this scan keeps a JSON document to the same rule, in one pass.
 */
export function duplicateKey(text: string): { key: string; offset: number } | null {
  const objects: (Set<string> | null)[] = []; // null for an array
  let atKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      let escaped = false;
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\') {
          escaped = true;
          i++;
        }
      }
      const keys = objects.at(-1);
      if (atKey && keys) {
        const key = escaped
          ? (JSON.parse(text.slice(start, i + 1)) as string)
          : text.slice(start + 1, i);
        if (keys.has(key)) return { key, offset: start };
        keys.add(key);
      }
      atKey = false;
    } else if (c === '{') {
      objects.push(new Set());
      atKey = true;
    } else if (c === '[') {
      objects.push(null);
    } else if (c === '}' || c === ']') {
      objects.pop();
    } else if (c === ',') {
      atKey = objects.at(-1) != null;
    }
  }
  return null;
}

/** The largest policy file read, in bytes (4 MiB: thousands of rules). */
export const MAX_POLICY_BYTES = 4 << 20;

/**
 * The longest text read by the YAML parser, a document written in YAML or one meant to be JSON
 * that JSON.parse refused (a policy written in YAML's flow style, `{version: 1, projects: [p]}`):
 * no longer than a policy may be. The parser takes about 200 bytes of memory for each character
 * it reads: a fleet file of 8 MB took 20 s and 1.7 GB, one of 60 MB (under the 64 MiB a fleet or
 * a snapshot may have) exhausted the heap after 4 minutes. JSON.parse reads larger ones.
 */
const MAX_YAML_CHARS = MAX_POLICY_BYTES;

/**
 * A document expected to be JSON, read by `JSON.parse`; undefined when it is not JSON (then it
 * is read as YAML, which reports where it fails, up to {@link MAX_YAML_CHARS}). The YAML
 * parser builds a syntax tree of every token first: a 17 MB snapshot took 11.5 s and 1.3 GB to
 * read that way and 0.25 s and 0.1 GB this way, and a snapshot near the 64 MiB limit ran out of
 * memory.
 */
function parseJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const twice = duplicateKey(text);
  if (twice) {
    throw new InputError(`${what} is not valid JSON`, [
      {
        path: lineAndColumn(text, twice.offset),
        message: `the key "${oneLine(twice.key).slice(0, 100)}" is written twice in one object`,
      },
    ]);
  }
  return value;
}

/**
 * Reads a YAML or JSON document (JSON is YAML), naming the line of a syntax error in the words of
 * the format expected, and refusing an empty document by name rather than as a `null` value.
 */
export function parseDocument(text: string, what: string): unknown {
  const format = expectedFormat(text, what);
  const deep = nestingFault(text);
  if (deep) throw new InputError(`${what} is not valid ${format}`, [deep]);
  let value: unknown = format === 'JSON' ? parseJson(text, what) : undefined;
  if (value === undefined) {
    // Past a policy's size, a document meant to be JSON is a snapshot or a state file: one that
    // JSON.parse refused (cut short, a trailing comma) is told so rather than handed to the YAML
    // parser, which took 143 s and 4.3 GB to refuse a 60 MB snapshot cut short.
    if (format === 'JSON' && text.length > MAX_YAML_CHARS)
      throw new InputError(`${what} is not valid JSON`, [syntaxFault(text, undefined, format)]);
    if (text.length > MAX_YAML_CHARS) {
      throw new InputError(
        `${what} is too large for YAML: ${text.length} characters, over the ${MAX_YAML_CHARS >> 20} MiB read as YAML (its parser takes about 200 bytes of memory for each); write it as JSON`,
        [],
      );
    }
    try {
      value = parseYaml(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
    } catch (e) {
      throw new InputError(`${what} is not valid ${format}`, [syntaxFault(text, e, format)], {
        cause: e,
      });
    }
  }
  if (value === null || value === undefined)
    throw new InputError(`${what} is empty: expected a ${format} document`, []);
  return value;
}
