/**
 * Logs: one JSON object per line with `severity` and `message` (Cloud Logging's structured format)
 * in the function; short readable lines for a person at a terminal. Never credentials or tokens:
 * callers pass facts, not request objects.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

export interface Logger {
  log(severity: Severity, message: string, fields?: Record<string, unknown>): void;
}

/**
 * The most bytes one JSON line may have. Cloud Logging takes entries of up to about 256 KB, the
 * metadata Cloud Run adds included ("based on internal data sizes"), and refuses larger ones
 * (https://cloud.google.com/logging/quotas, "Size of a LogEntry"): a line past this keeps its
 * severity, its message (cut) and its small fields (the run id, the trace), and names the fields
 * it left out, rather than being lost whole. The governor's lines are far shorter (at most a few
 * KB at 3,000 services, docs/applying.md, "The Cloud Function"); this keeps one that is not from vanishing.
 */
export const MAX_LINE_BYTES = 200 * 1024;

/** A field past this many bytes is what an over-long line leaves out (text: cuts). */
const KEPT_FIELD_BYTES = 4 * 1024;

/** The most characters of the message an over-long line keeps. */
const KEPT_MESSAGE_CHARS = 8 * 1024;

export function jsonLogger(stream: { write(s: string): unknown }): Logger {
  return {
    log: (severity, message, fields = {}) => {
      const line = JSON.stringify({ severity, message, ...fields });
      // A UTF-16 unit is at most 3 bytes of UTF-8: a short line is not measured.
      stream.write((line.length <= MAX_LINE_BYTES / 3 ? line : fitLine(line)) + '\n');
    },
  };
}

/** `line` as it is when it fits MAX_LINE_BYTES; else its severity, message and small fields. */
function fitLine(line: string): string {
  const bytes = Buffer.byteLength(line, 'utf8');
  if (bytes <= MAX_LINE_BYTES) return line;
  const { severity, message, ...fields } = JSON.parse(line) as Record<string, unknown>;
  const kept: Record<string, unknown> = {};
  const omitted: string[] = [];
  const cut: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8') <= KEPT_FIELD_BYTES)
      kept[key] = value;
    else if (typeof value === 'string') {
      // Text is cut, not dropped: a stack trace's first frames are where Error Reporting looks.
      kept[key] = `${value.slice(0, KEPT_FIELD_BYTES / 4 - 1)}…`;
      cut.push(key);
    } else omitted.push(key);
  }
  const text = String(message);
  return JSON.stringify({
    severity,
    message: text.length > KEPT_MESSAGE_CHARS ? `${text.slice(0, KEPT_MESSAGE_CHARS - 1)}…` : text,
    ...kept,
    truncated: { bytes, omittedFields: omitted, ...(cut.length > 0 ? { cutFields: cut } : {}) },
  });
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
export const ALERT_FIELD = 'alert';

/**
 * The field of the one structured line a failed run logs (reconcile's `logRunFailed`). A terminal
 * leaves it out: the command prints the failure itself, as one `error:` line.
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
        if (options.alerts) stream.write(`${message}\n`);
        return;
      }
      if (RUN_FAILED_FIELD in fields) return;
      const prefix = severity === 'INFO' ? '' : `${severity.toLowerCase()}: `;
      stream.write(`${prefix}${message}\n`);
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
