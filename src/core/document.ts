import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { InputError, type Fault } from '../errors.js';

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

/** Turns zod issues into faults with readable paths and messages. */
export function zodFaults(error: z.ZodError): Fault[] {
  const faults: Fault[] = [];
  for (const issue of error.issues) {
    const path = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        faults.push({ path: formatPath([...issue.path, key]), message: 'unknown key' });
      }
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      faults.push({ path, message: issue.message });
    } else {
      faults.push({ path, message: issue.message });
    }
  }
  return faults;
}

/**
 * At most `max` faults, each path and message cut to `width` characters, and one more fault
 * saying how many were left out: what an answer or a log line may carry when the input came from
 * someone else (a request body with two million unknown keys is two million faults).
 */
export function capFaults(faults: readonly Fault[], max = 20, width = 200): Fault[] {
  const cut = (s: string) => (s.length > width ? `${s.slice(0, width - 1)}…` : s);
  const kept = faults.slice(0, max).map((f) => ({ path: cut(f.path), message: cut(f.message) }));
  const more = faults.length - kept.length;
  if (more > 0)
    kept.push({ path: '', message: `and ${more} more problem${more === 1 ? '' : 's'}` });
  return kept;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** Reads a YAML or JSON document (JSON is YAML), naming the line of a syntax error. */
export function parseDocument(text: string, what: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new InputError(`${what} is not valid YAML or JSON`, [
        { path: where, message: e.message.split('\n')[0] ?? e.message },
      ]);
    }
    // The parser also throws plain errors for a bad document (an alias to no anchor is a
    // ReferenceError): still bad input, never a crash (found by test/fuzz).
    throw new InputError(
      `${what} is not valid YAML or JSON`,
      [{ path: '', message: e instanceof Error ? e.message : String(e) }],
      { cause: e },
    );
  }
}
