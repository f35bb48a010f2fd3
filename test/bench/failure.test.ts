import { describe, expect, it } from 'vitest';
import { failureReason } from '../../bench/failure.js';

/** A failed bench's one line (bench/failure.ts): the why, never a stack trace. */
describe('failureReason', () => {
  it('keeps the message of an error, not its stack', () => {
    const e = new Error("ENOENT: no such file or directory, open 'terraform/variables.tf'");
    expect(failureReason(e)).toBe(
      "ENOENT: no such file or directory, open 'terraform/variables.tf'",
    );
  });

  it("cuts a child's quoted crash down to the error it reports", () => {
    const e = new Error(
      [
        'the function exited (1): node:internal/modules/cjs/loader:1210',
        '  throw err;',
        '  ^',
        '',
        "Error: Cannot find module '/x/dist/src/function/index.js'",
        '    at Module._resolveFilename (node:internal/modules/cjs/loader:1207:15)',
        '    at node:internal/main/run_main_module:28:49 {',
        "  code: 'MODULE_NOT_FOUND',",
        '}',
        '',
        'Node.js v20.20.2',
      ].join('\n'),
    );
    expect(failureReason(e)).toBe(
      "the function exited (1): Error: Cannot find module '/x/dist/src/function/index.js'",
    );
  });

  it('joins a message of several lines without frames, and bounds it', () => {
    expect(
      failureReason(new Error('the run answered 500:\n{"error":"boom"}\n    at f (a.js:1:1)')),
    ).toBe('the run answered 500: {"error":"boom"}');
    expect(failureReason('x'.repeat(2_000))).toHaveLength(600);
    expect(failureReason(new Error(''))).toBe('Error');
  });
});
