import { inspect } from 'node:util';
import { errorMessage } from '../core/errors.js';
import { listOnOneLine } from '../core/text.js';
import { ERROR_EVENT, type Severity } from '../log.js';
import { carriesRequestText, failedEventConversion, frameworkRefusal } from './request.js';

/** One log line: what the function's console.error logs for what it was given. */
interface ConsoleLine {
  severity: Severity;
  message: string;
  fields: Record<string, unknown>;
}

/**
 * What the function logs for what reached console.error (see src/function/index.ts): null for a
 * failed run's error that the run's own ERROR line already told (its text in `announced`, taken
 * out of it), else one line. It never throws, whatever it is given: the values come from the
 * framework, Express and libraries, and may be anything: an object whose getters throw, a
 * Proxy, a revoked Proxy, a circular object, a Symbol. A value that cannot be read is named, not
 * printed, and the rest of the line is kept: the line is never lost, and never carries a
 * request's text (a value that cannot be read could not be checked for one).
 */
export function consoleErrorLine(
  args: readonly unknown[],
  announced: Set<string>,
): ConsoleLine | null {
  const checked = args.map(check);
  if (checked.some((c) => c === 'request-text')) {
    return {
      severity: 'WARNING',
      message: 'refused a request body that could not be parsed (400); its content is not logged',
      fields: {},
    };
  }
  const refusal = checked.find((c) => typeof c === 'object' && c !== null);
  if (typeof refusal === 'object' && refusal !== null) {
    return {
      severity: 'WARNING',
      message: `refused a request (${refusal.status}): ${refusal.reason}`,
      fields: {},
    };
  }
  // A failed run's error, as the framework prints it: the run's own ERROR line already says why.
  if (args.length === 1 && typeof args[0] === 'string' && announced.delete(args[0])) return null;
  const stack = args
    .filter((_, i) => checked[i] !== 'unreadable')
    .map(stackOf)
    .find((s) => s !== null);
  return {
    severity: 'ERROR',
    message: args
      .map((a, i) => (checked[i] === 'unreadable' ? unreadable(a) : textOf(a)))
      .join(' '),
    fields: stack ? { stack_trace: stack } : {},
  };
}

type Checked = 'request-text' | 'unreadable' | { status: number; reason: string } | null;

/** What a value is to the checks above; 'unreadable' if reading it threw. */
function check(a: unknown): Checked {
  try {
    if (carriesRequestText(a)) return 'request-text';
    // Answered 500 by Express, not by the function: a request's fault all the same.
    if (failedEventConversion(a))
      return {
        status: 500,
        reason: 'functions-framework could not read it as an event; its content is not logged',
      };
    return frameworkRefusal(a);
  } catch {
    return 'unreadable';
  }
}

/** An Error's stack, when it is text that can be read. */
function stackOf(a: unknown): string | null {
  try {
    if (!(a instanceof Error)) return null;
    const stack: unknown = a.stack;
    return typeof stack === 'string' ? stack : null;
  } catch {
    return null;
  }
}

/** A value as text: a string as it is, an Error as `name: message`, anything else inspected. */
function textOf(a: unknown): string {
  if (typeof a === 'string') return a;
  try {
    if (a instanceof Error) return `${String(a.name)}: ${String(a.message)}`;
    return inspect(a);
  } catch {
    return unreadable(a);
  }
}

function unreadable(a: unknown): string {
  return `[a value that could not be read (${typeof a})]`;
}

/**
 * The line of an unexpected failure (a bug, a client that cannot be built), for every entry point:
 * its reason on one line, its stack in `stack_trace`, where Error Reporting reads it first
 * (https://cloud.google.com/error-reporting/docs/formatting-error-messages). What was thrown
 * without a stack (a string, an Error whose stack is gone) is typed as an error event instead
 * (ERROR_EVENT), whose `message` Error Reporting then reads as the error's text: an entry with
 * neither a stack trace nor that type is no event, a failure no one would be told of.
 */
export function unexpectedLine(prefix: string, e: unknown): ConsoleLine {
  const stack = stackOf(e);
  return {
    severity: 'ERROR',
    message: `${prefix}unexpected failure: ${listOnOneLine(errorMessage(e))}`,
    fields: stack ? { stack_trace: stack } : { ...ERROR_EVENT },
  };
}
