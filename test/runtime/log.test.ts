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
      // The list is cut to its first items, not dropped.
      truncated: { omittedFields: [], cutFields: ['undelivered'] },
    });
    expect((line?.undelivered as unknown[])[0]).toEqual(huge[0]);
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

describe('jsonLogger: a line past the entry limit', () => {
  /** A high surrogate without its low half: no character, which UTF-8 cannot encode. */
  const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

  it('stays under the limit however many small fields it has', () => {
    const { log, raw } = captured();
    const fields = Object.fromEntries(
      Array.from({ length: 80 }, (_, i) => [`field${i}`, 'x'.repeat(3_000)]),
    );
    log.log('INFO', 'many fields', { runId: 'run-1', ...fields });
    expect(Buffer.byteLength(raw[0] ?? '')).toBeLessThanOrEqual(MAX_LINE_BYTES);
    const parsed = JSON.parse(raw[0] ?? '{}') as Record<string, unknown>;
    expect(parsed).toMatchObject({ severity: 'INFO', message: 'many fields', runId: 'run-1' });
    expect(parsed.truncated).toMatchObject({ omittedFields: expect.arrayContaining(['field79']) });
  });

  it("keeps a big field's small members and the first items of its long list, not nothing", () => {
    // A failed run's field: its counts, and the ids of the alerts it could not publish, which
    // grow with the fleet (thousands of services).
    const { log, raw, lines } = captured();
    const undelivered = Array.from({ length: 5_000 }, (_, i) => ({
      id: `alert-${i}`,
      type: 'governor.service-at-cap',
      project: 'gpu-project-with-a-long-name',
    }));
    log.log('ERROR', 'run failed: the alert topic is unreachable (run-1)', {
      runFailed: { runId: 'run-1', written: 3, failedWrites: 0, published: 0, undelivered },
    });
    expect(Buffer.byteLength(raw[0] ?? '')).toBeLessThanOrEqual(MAX_LINE_BYTES);
    const [line] = lines();
    const kept = line?.runFailed as Record<string, unknown> | undefined;
    expect(kept).toMatchObject({ runId: 'run-1', written: 3, failedWrites: 0, published: 0 });
    const list = kept?.undelivered as unknown[];
    expect(list[0]).toEqual(undelivered[0]);
    expect(list.at(-1)).toMatch(/^… and \d+ more$/);
    expect(line?.truncated).toMatchObject({ omittedFields: [], cutFields: ['runFailed'] });
  });

  it('never cuts a character in two', () => {
    const { log, lines } = captured();
    const emoji = '😀'.repeat(150_000);
    log.log('ERROR', emoji, { stack_trace: emoji, detail: 'ok' });
    const [line] = lines();
    expect(String(line?.message)).toMatch(/^(😀)+…$/);
    expect(String(line?.stack_trace)).toMatch(/^(😀)+…$/);
    expect(String(line?.message)).not.toMatch(LONE);
    expect(line?.detail).toBe('ok');
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

describe('jsonLogger: fields that have no JSON form', () => {
  it('still logs the line, its severity and message, and names the fields it could not write', () => {
    // Before, JSON.stringify's TypeError escaped the logger: the line was lost, and the run that
    // logged it failed on its log rather than on what it was saying.
    const { log, raw, lines } = captured();
    const loop: Record<string, unknown> = { name: 'a' };
    loop.self = loop;
    log.log('ERROR', 'run failed: boom', { runId: 'run-1', loop, big: 10n });
    log.log('INFO', 'next');
    expect(raw).toHaveLength(2);
    expect(raw.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(
      true,
    );
    expect(lines()).toEqual([
      {
        severity: 'ERROR',
        message: 'run failed: boom',
        runId: 'run-1',
        unwritable: { omittedFields: ['loop', 'big'] },
      },
      { severity: 'INFO', message: 'next' },
    ]);
  });
});

describe("jsonLogger: a line's severity and message are its own", () => {
  it('a field named severity or message does not replace them', () => {
    // Cloud Logging reads `severity` and `message` from the entry's top level
    // (https://cloud.google.com/logging/docs/structured-logging): a field of the same name would
    // turn an INFO line into an ERROR (or an error into nothing), with another text.
    const { log, lines } = captured();
    log.log('INFO', 'the real text', { severity: 'ERROR', message: 'forged', runId: 'run-1' });
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    log.log('WARNING', 'the real warning', { severity: 'DEBUG', message: 'forged', loop });
    expect(lines()).toEqual([
      { severity: 'INFO', message: 'the real text', runId: 'run-1' },
      {
        severity: 'WARNING',
        message: 'the real warning',
        unwritable: { omittedFields: ['loop'] },
      },
    ]);
  });
});
