import { describe, expect, it } from 'vitest';
import { jsonLogger, MAX_LINE_BYTES, withFields } from '../../src/log.js';

/** A JSON logger writing into a list of parsed lines. */
function captured() {
  const raw: string[] = [];
  const log = jsonLogger({ write: (s: string) => raw.push(s) });
  const lines = () => raw.map((s) => JSON.parse(s) as Record<string, unknown>);
  return { log, raw, lines };
}

describe('jsonLogger: one structured entry a line', () => {
  it('writes severity, message and fields as one JSON line', () => {
    const { log, raw } = captured();
    log.log('ERROR', 'two\nlines', { runId: 'run-1' });
    expect(raw).toEqual(['{"severity":"ERROR","message":"two\\nlines","runId":"run-1"}\n']);
  });

  it('keeps a line past the entry limit under it: severity, message and small fields kept', () => {
    // Cloud Logging refuses an entry over about 256 KB; such a line would be lost whole.
    const { log, raw, lines } = captured();
    const huge = Array.from({ length: 5_000 }, (_, i) => ({
      id: `alert-${i}`,
      type: 'x'.repeat(60),
    }));
    log.log('ERROR', `run failed: ${'é'.repeat(100_000)}`, {
      runId: 'run-1',
      'logging.googleapis.com/trace': 'abc',
      undelivered: huge,
    });
    expect(Buffer.byteLength(raw[0] ?? '')).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(raw[0]?.endsWith('\n')).toBe(true);
    const [line] = lines();
    expect(line).toMatchObject({
      severity: 'ERROR',
      runId: 'run-1',
      'logging.googleapis.com/trace': 'abc',
      truncated: { omittedFields: ['undelivered'] },
    });
    expect(String(line?.message)).toMatch(/^run failed: é+…$/);
    expect((line?.truncated as { bytes: number }).bytes).toBeGreaterThan(MAX_LINE_BYTES);
  });

  it('cuts a long text field rather than dropping it: a stack trace keeps its first frames', () => {
    const { log, raw, lines } = captured();
    const stack = `Error: boom\n${'    at frame (file.js:1:1)\n'.repeat(20_000)}`;
    log.log('ERROR', 'x'.repeat(300_000), { runId: 'run-1', stack_trace: stack });
    expect(Buffer.byteLength(raw[0] ?? '')).toBeLessThanOrEqual(MAX_LINE_BYTES);
    const [line] = lines();
    expect(String(line?.stack_trace)).toMatch(/^Error: boom\n {4}at frame \(file\.js:1:1\)\n/);
    expect(String(line?.stack_trace).endsWith('…')).toBe(true);
    expect(line?.truncated).toMatchObject({ omittedFields: [], cutFields: ['stack_trace'] });
  });

  it('leaves a line within the limit as it is, however many non-ASCII characters it has', () => {
    const { log, lines } = captured();
    const text = 'é'.repeat(Math.floor(MAX_LINE_BYTES / 2) - 100);
    log.log('INFO', text);
    expect(lines()).toEqual([{ severity: 'INFO', message: text }]);
  });
});

describe('withFields: the fields of a run on each of its lines', () => {
  it("adds them to every line; a line's own field of the same name wins", () => {
    const { log, lines } = captured();
    const run = withFields(log, { runId: 'run-1', project: 'p' });
    run.log('INFO', 'a');
    run.log('WARNING', 'b', { project: 'q', service: 's' });
    expect(lines()).toEqual([
      { severity: 'INFO', message: 'a', runId: 'run-1', project: 'p' },
      { severity: 'WARNING', message: 'b', runId: 'run-1', project: 'q', service: 's' },
    ]);
  });
});
