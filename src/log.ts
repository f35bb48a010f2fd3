/**
 * Logs: one JSON object per line with `severity` and `message` (Cloud Logging's structured format)
 * in the function; short readable lines for a person at a terminal. Never credentials or tokens:
 * callers pass facts, not request objects.
 */
import { listOnOneLine, oneLine } from './core/text.js';
import { cutText } from './core/errors.js';

export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

export interface Logger {
  log(severity: Severity, message: string, fields?: Record<string, unknown>): void;
}

/**
 * The most bytes one JSON line may have. Cloud Logging takes entries of up to about 256 KB, the
 * metadata Cloud Run adds included ("based on internal data sizes"), and refuses larger ones
 * (https://cloud.google.com/logging/quotas, "Size of a LogEntry"; "Cloud Logging limits the size
 * on incoming logs to 256KB and drops anything bigger",
 * https://developers.google.com/maps/documentation/mobility/operations/cloud-logging/split-logs):
 * a line past this keeps its severity, its message (cut) and its fields, those that do not fit
 * cut (a text's first characters, a list's first items, an object's members that fit) or left
 * out, and names them, rather than being lost whole. The governor's lines are far shorter (at most a few KB at 3,000
 * services, docs/applying.md, "The Cloud Function"); this keeps one that is not from vanishing.
 */
export const MAX_LINE_BYTES = 200 * 1024;

/** The most bytes a field of an over-long line keeps (a text, a list or an object, cut). */
const KEPT_FIELD_BYTES = 4 * 1024;

/** The most characters of the message an over-long line keeps. */
const KEPT_MESSAGE_CHARS = 8 * 1024;

/** Room kept in an over-long line for its severity, its `truncated` note and the JSON around. */
const NOTE_BYTES = 8 * 1024;

/** The most field names the note lists, each cut to NOTE_NAME_CHARS characters. */
const NOTE_NAMES = 20;
const NOTE_NAME_CHARS = 100;

/** What a list cut keeps after its first items, so a reader sees it was cut. */
const MORE_BYTES = 32;

export function jsonLogger(stream: { write(s: string): unknown }): Logger {
  return {
    log: (severity, message, fields = {}) => {
      const line = entryLine(severity, message, fields);
      // A UTF-16 unit is at most 3 bytes of UTF-8: a short line is not measured.
      stream.write((line.length <= MAX_LINE_BYTES / 3 ? line : fitLine(line)) + '\n');
    },
  };
}

/**
 * One entry as JSON text. A field with no JSON form (a cycle, a BigInt, a `toJSON` that throws,
 * nesting too deep for the stack) is left out and named under `unwritable`, rather than the
 * logger throwing: the line is kept, and the run that logs it does not fail on its own log.
 */
function entryLine(severity: Severity, message: string, fields: Record<string, unknown>): string {
  try {
    // Severity and message first, and the line's own whatever its fields hold: Cloud Logging
    // reads them from the entry's top level (https://cloud.google.com/logging/docs/structured-logging),
    // so a field of either name would change how the entry is filed.
    return JSON.stringify(Object.assign({ severity, message }, fields, { severity, message }));
  } catch {
    const kept: Record<string, unknown> = {};
    const omitted: string[] = [];
    try {
      for (const [key, value] of Object.entries(fields)) {
        if (key === 'severity' || key === 'message') continue;
        try {
          JSON.stringify(value);
          kept[key] = value;
        } catch {
          omitted.push(key);
        }
      }
    } catch {
      // Fields that cannot even be listed (a Proxy that throws): none is kept.
      return JSON.stringify({ severity, message: String(message), unwritable: { fields: 'all' } });
    }
    return JSON.stringify({
      severity,
      message: String(message),
      ...kept,
      unwritable: { omittedFields: noteNames(omitted) },
    });
  }
}

/** `line` as it is when it fits MAX_LINE_BYTES; else its severity, message and fields, cut. */
function fitLine(line: string): string {
  const bytes = Buffer.byteLength(line, 'utf8');
  if (bytes <= MAX_LINE_BYTES) return line;
  const { severity, message, ...fields } = JSON.parse(line) as Record<string, unknown>;
  const text = cutText(String(message), KEPT_MESSAGE_CHARS);
  let room = MAX_LINE_BYTES - NOTE_BYTES - jsonBytes(severity) - jsonBytes(text);
  const kept: Record<string, unknown> = {};
  const omitted: string[] = [];
  const cut: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    // The key, its quotes, its colon and the comma after the value.
    const cost = jsonBytes(key) + 2;
    const size = jsonBytes(value);
    if (size <= KEPT_FIELD_BYTES && cost + size <= room) {
      kept[key] = value;
      room -= cost + size;
      continue;
    }
    // Text is cut, not dropped: a stack trace's first frames are where Error Reporting looks.
    const shrunk = shrink(value, Math.min(KEPT_FIELD_BYTES, room - cost));
    if (shrunk === undefined) {
      omitted.push(key);
      continue;
    }
    kept[key] = shrunk;
    cut.push(key);
    room -= cost + jsonBytes(shrunk);
  }
  const fitted = JSON.stringify({
    severity,
    message: text,
    ...kept,
    truncated: {
      bytes,
      omittedFields: noteNames(omitted),
      ...(cut.length > 0 ? { cutFields: noteNames(cut) } : {}),
    },
  });
  // The accounting above keeps it within; should it not, the line is still not lost.
  return Buffer.byteLength(fitted, 'utf8') <= MAX_LINE_BYTES
    ? fitted
    : JSON.stringify({ severity, message: cutText(text, 1000), truncated: { bytes } });
}

/**
 * `value` (parsed JSON) in at most `max` bytes of JSON: a text's first characters, a list's first
 * items (then how many more it had), an object's members that fit; undefined when nothing does.
 */
function shrink(value: unknown, max: number): unknown {
  if (max <= 0) return undefined;
  if (jsonBytes(value) <= max) return value;
  if (typeof value === 'string') {
    // A character is at most 3 bytes of UTF-8, or 6 as a JSON escape (a control character).
    for (const width of [3, 6]) {
      const text = cutText(value, Math.floor((max - 2) / width));
      if (text.length > 1 && jsonBytes(text) <= max) return text;
    }
    return undefined;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    let used = 2 + MORE_BYTES;
    for (const item of value) {
      const size = jsonBytes(item) + 1;
      if (used + size > max) {
        const first = out.length === 0 ? shrink(item, max - used - 1) : undefined;
        if (first !== undefined) out.push(first);
        break;
      }
      out.push(item);
      used += size;
    }
    if (out.length === 0) return undefined;
    if (out.length < value.length) out.push(`… and ${value.length - out.length} more`);
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    let used = 2;
    for (const [key, member] of Object.entries(value)) {
      const cost = jsonBytes(key) + 2;
      const kept = shrink(member, max - used - cost);
      if (kept === undefined) continue;
      out[key] = kept;
      used += cost + jsonBytes(kept);
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return undefined;
}

/** The names a note lists: the first NOTE_NAMES, cut, then how many more. */
function noteNames(names: readonly string[]): string[] {
  const listed = names.slice(0, NOTE_NAMES).map((n) => cutText(n, NOTE_NAME_CHARS));
  return names.length > NOTE_NAMES
    ? [...listed, `… and ${names.length - NOTE_NAMES} more`]
    : listed;
}

/**
 * The bytes of `value` as JSON text (UTF-8), as a log line counts them. Throws as JSON.stringify
 * does on what has no JSON form: a TypeError for a cycle or a BigInt (a RangeError when nested too
 * deep for the stack).
 */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/**
 * A logger that adds `fields` to every line it logs: one run's lines all carry its run id (and
 * the trace of the request that started it), so that Cloud Logging finds the whole run with one
 * filter. A line's own fields come after, and win over a field of the same name.
 */
export function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  return {
    log: (severity, message, own = {}) => log.log(severity, message, { ...fields, ...own }),
  };
}

/**
 * The field that marks a line as one of the run's alerts. Its severity is the alert's (so Cloud
 * Logging can route an ERROR alert), but it is news about the fleet, not a fault of the program:
 * a terminal prints the run's alerts as alerts, from the run's report, and the text logger leaves
 * these lines out unless asked for them.
 */
const ALERT_FIELD = 'alert';

/**
 * The field of the one structured line a failed run logs (`logRunFailed` in reconcile/run.ts). A
 * terminal leaves it out: the command prints the failure itself, as one `error:` line.
 */
export const RUN_FAILED_FIELD = 'runFailed';

/**
 * The fields that make a line one error event for Error Reporting. It makes an event of an entry
 * with a stack trace, or of one typed as a ReportedErrorEvent, whose `message` it then reads as
 * the error's text (https://cloud.google.com/error-reporting/docs/formatting-error-messages, "Log
 * text messages"); an ERROR line without either is no event. One failure is one such line, its
 * message opening with the same words at every occurrence: Error Reporting groups an error
 * without a stack by its message's first literal tokens
 * (https://cloud.google.com/error-reporting/docs/grouping-errors), so a run id or a count there
 * would open a group a failure. The other lines of that failure stay below ERROR, or plain ERROR
 * lines that are no event, so that a failure is counted once.
 */
export const ERROR_EVENT: Readonly<Record<string, string>> = {
  '@type': 'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent',
};

export function textLogger(
  stream: { write(s: string): unknown },
  minimum: Severity = 'INFO',
  options: { alerts?: boolean } = {},
): Logger {
  const rank: Record<Severity, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };
  return {
    log: (severity, message, fields = {}) => {
      if (rank[severity] < rank[minimum]) return;
      if (ALERT_FIELD in fields) {
        // On one line as every other line: an alert read back from the store says what anyone wrote.
        if (options.alerts) stream.write(`${oneLine(message)}\n`);
        return;
      }
      if (RUN_FAILED_FIELD in fields) return;
      const prefix = severity === 'INFO' ? '' : `${severity.toLowerCase()}: `;
      // One line each, whatever a message quotes (a name from Google or the state store): a
      // terminal escape or a carriage return in it would act on the terminal that shows it.
      stream.write(`${prefix}${oneLine(listOnOneLine(message))}\n`);
    },
  };
}

/** Keeps every line, for tests. */
export function memoryLogger(): Logger & {
  lines: { severity: Severity; message: string; fields: Record<string, unknown> }[];
} {
  const lines: { severity: Severity; message: string; fields: Record<string, unknown> }[] = [];
  return {
    lines,
    log: (severity, message, fields = {}) => lines.push({ severity, message, fields }),
  };
}
