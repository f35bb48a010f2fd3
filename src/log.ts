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

export function textLogger(
  stream: { write(s: string): unknown },
  minimum: Severity = 'INFO',
): Logger {
  const rank: Record<Severity, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };
  return {
    log: (severity, message) => {
      if (rank[severity] < rank[minimum]) return;
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
