/**
 * Logs: one JSON object per line with `severity` and `message` (Cloud Logging's structured format)
 * in the function; short readable lines for a person at a terminal. Never credentials or tokens:
 * callers pass facts, not request objects.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

export interface Logger {
  log(severity: Severity, message: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(stream: { write(s: string): unknown }): Logger {
  return {
    log: (severity, message, fields = {}) => {
      stream.write(JSON.stringify({ severity, message, ...fields }) + '\n');
    },
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
